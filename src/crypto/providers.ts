import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KMSClient } from '@aws-sdk/client-kms';
import { SidecarError, withCause } from '../errors.js';
import { DATA_KEY_BYTES, NONCE_BYTES, TAG_BYTES } from './envelope.js';
import { untilDeadline } from '../store/deadline.js';

/** Source of data keys: generates fresh ones and decrypts the `edk` of stored envelopes. */
export interface KeyProvider {
  /** Stable, non-secret identifier (for logs and cache scoping). */
  readonly id: string;
  generateDataKey(): Promise<{ plaintext: Buffer; edk: Buffer }>;
  decryptDataKey(edk: Uint8Array): Promise<Buffer>;
}

/** Calls that reached the real provider (KMS or the local KEK), for metrics. */
export interface CallCounters {
  generateDataKey: number;
  decrypt: number;
}

export const newCallCounters = (): CallCounters => ({ generateDataKey: 0, decrypt: 0 });

const KMS_THROTTLES = new Set(['ThrottlingException', 'LimitExceededException']);
const KMS_BAD_EDK = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);
const KMS_TRANSIENT = new Set(['KMSInternalException', 'DependencyTimeoutException', 'KeyUnavailableException', 'TimeoutError']);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ETIMEDOUT']);

/** KMS failure → sidecar error. Only the AWS error name is kept: KMS messages quote ARNs. */
export function mapKmsError(err: unknown, op: 'GenerateDataKey' | 'Decrypt'): SidecarError {
  if (err instanceof SidecarError) return err;
  const e = err as { name?: string; code?: string } | undefined;
  const name = e?.name ?? '';
  let out: SidecarError;
  if (KMS_THROTTLES.has(name)) {
    out = new SidecarError('ErrThrottled', 503, `KMS ${op} is being throttled; retry after a short delay`, { retryAfter: 1 });
  } else if (op === 'Decrypt' && KMS_BAD_EDK.has(name)) {
    out = new SidecarError('ErrInvalidEncryptedEnvelope', 500, `KMS could not decrypt the envelope's data key (${name})`);
  } else if (op === 'Decrypt' && name === 'AccessDeniedException') {
    // Typically an envelope sealed under another account's key (or IAM missing kms:Decrypt): either way this
    // partner cannot open it, which is what the caller needs to know.
    out = new SidecarError('ErrInvalidEncryptedEnvelope', 500, 'KMS refused to decrypt the data key (AccessDeniedException): the envelope was sealed with a key this partner cannot use, or kms:Decrypt is not allowed');
  } else if (KMS_TRANSIENT.has(name) || NETWORK.has(name) || NETWORK.has(e?.code ?? '')) {
    out = new SidecarError('ErrBackendUnavailable', 503, `KMS ${op} is unavailable (${name || e?.code || 'unknown error'})`);
  } else {
    // AccessDenied, NotFound, Disabled, KMSInvalidState, InvalidKeyUsage, …: a configuration problem.
    out = new SidecarError('ErrInternal', 500, `KMS ${op} failed for the configured key (${name || 'unknown error'})`);
  }
  return withCause(out, err);
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u); // copy: never alias SDK-owned memory
}

/**
 * The KMS command classes, imported on first use: a sidecar without a KMS key never loads @aws-sdk/client-kms
 * (≈190 ms and 26 MB). Where a key is configured, Keyring.loadKms() has loaded it at boot already.
 */
let kmsModule: Promise<typeof import('@aws-sdk/client-kms')> | undefined;
const kmsCommands = () => (kmsModule ??= import('@aws-sdk/client-kms'));

/** AWS KMS: GenerateDataKey (AES_256) per data key, Decrypt per cold edk. */
export class KmsKeyProvider implements KeyProvider {
  readonly id: string;
  readonly counters: CallCounters;
  readonly #kms: Pick<KMSClient, 'send'>;
  readonly #keyArn: string;

  constructor(kms: Pick<KMSClient, 'send'>, keyArn: string, counters: CallCounters = newCallCounters()) {
    if (keyArn.length === 0) throw new Error('KMS key ARN is empty');
    this.#kms = kms;
    this.#keyArn = keyArn;
    this.counters = counters;
    this.id = `kms:${keyArn}`;
  }

  async generateDataKey(): Promise<{ plaintext: Buffer; edk: Buffer }> {
    this.counters.generateDataKey++;
    let out;
    try {
      const { GenerateDataKeyCommand } = await kmsCommands();
      out = await untilDeadline(this.#kms.send(new GenerateDataKeyCommand({ KeyId: this.#keyArn, KeySpec: 'AES_256' })));
    } catch (err) {
      throw mapKmsError(err, 'GenerateDataKey');
    }
    if (!out.Plaintext || out.Plaintext.byteLength !== DATA_KEY_BYTES) {
      throw new SidecarError('ErrInternal', 500, `KMS GenerateDataKey returned a data key of ${out.Plaintext?.byteLength ?? 0} bytes, expected ${DATA_KEY_BYTES}`);
    }
    if (!out.CiphertextBlob || out.CiphertextBlob.byteLength === 0) {
      throw new SidecarError('ErrInternal', 500, 'KMS GenerateDataKey returned an empty encrypted data key');
    }
    return { plaintext: toBuffer(out.Plaintext), edk: toBuffer(out.CiphertextBlob) };
  }

  async decryptDataKey(edk: Uint8Array): Promise<Buffer> {
    this.counters.decrypt++;
    let out;
    try {
      const { DecryptCommand } = await kmsCommands();
      out = await untilDeadline(this.#kms.send(new DecryptCommand({ CiphertextBlob: edk, KeyId: this.#keyArn })));
    } catch (err) {
      throw mapKmsError(err, 'Decrypt');
    }
    if (!out.Plaintext || out.Plaintext.byteLength !== DATA_KEY_BYTES) {
      throw new SidecarError('ErrInvalidEncryptedEnvelope', 500, `KMS Decrypt returned a data key of ${out.Plaintext?.byteLength ?? 0} bytes, expected ${DATA_KEY_BYTES}`);
    }
    return toBuffer(out.Plaintext);
  }
}

const LOCAL_MAGIC = Buffer.from([0x4c, 0x31]); // "L1"
const LOCAL_AAD = Buffer.from('dynamorm-sidecar:local-kek:v1', 'utf8');
/** "L1" ‖ nonce(12) ‖ AES-256-GCM(kek, data key) (32) ‖ tag(16). */
export const LOCAL_EDK_BYTES = LOCAL_MAGIC.length + NONCE_BYTES + DATA_KEY_BYTES + TAG_BYTES;

/** Non-secret fingerprint of a KEK: first 16 hex characters of its SHA-256. */
export function kekFingerprint(kek: Uint8Array): string {
  return createHash('sha256').update(kek).digest('hex').slice(0, 16);
}

/**
 * Development provider: data keys wrapped under a local 32-byte key-encryption key.
 * Not a substitute for KMS (the KEK lives next to the data); its edks are readable only by this sidecar.
 */
export class LocalKeyProvider implements KeyProvider {
  readonly id: string;
  readonly counters: CallCounters;
  readonly #kek: Buffer;

  constructor(kek: Uint8Array, counters: CallCounters = newCallCounters()) {
    if (kek.byteLength !== DATA_KEY_BYTES) throw new Error(`local KEK must be exactly ${DATA_KEY_BYTES} bytes, got ${kek.byteLength}`);
    this.#kek = Buffer.from(kek);
    this.counters = counters;
    this.id = `local:${kekFingerprint(this.#kek)}`;
  }

  async generateDataKey(): Promise<{ plaintext: Buffer; edk: Buffer }> {
    this.counters.generateDataKey++;
    const plaintext = randomBytes(DATA_KEY_BYTES);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#kek, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(LOCAL_AAD);
    const edk = Buffer.concat([LOCAL_MAGIC, nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return { plaintext, edk };
  }

  async decryptDataKey(edk: Uint8Array): Promise<Buffer> {
    this.counters.decrypt++;
    const buf = Buffer.from(edk.buffer, edk.byteOffset, edk.byteLength);
    const bad = (what: string): SidecarError =>
      new SidecarError('ErrInvalidEncryptedEnvelope', 500, `encrypted data key is not usable by the local key provider: ${what}`);
    if (buf.byteLength !== LOCAL_EDK_BYTES) throw bad(`expected ${LOCAL_EDK_BYTES} bytes, got ${buf.byteLength} (written under another key provider?)`);
    if (!buf.subarray(0, LOCAL_MAGIC.length).equals(LOCAL_MAGIC)) throw bad('missing local-provider marker (written under another key provider?)');
    const nonceEnd = LOCAL_MAGIC.length + NONCE_BYTES;
    const ctEnd = nonceEnd + DATA_KEY_BYTES;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#kek, buf.subarray(LOCAL_MAGIC.length, nonceEnd), { authTagLength: TAG_BYTES });
      decipher.setAAD(LOCAL_AAD);
      decipher.setAuthTag(buf.subarray(ctEnd));
      return Buffer.concat([decipher.update(buf.subarray(nonceEnd, ctEnd)), decipher.final()]);
    } catch {
      throw bad('authentication failed (different local KEK, or tampered)');
    }
  }
}

export type LocalKekOrigin = 'env' | 'file' | 'generated-file' | 'generated-memory';

export interface LocalKekSource {
  /** The KEK itself: base64 (standard or URL-safe, padding optional) or 64 hex characters. */
  value?: string;
  /** A file holding the KEK as text (base64/hex) or as 32 raw bytes. */
  file?: string;
  /** Data directory: use `<dir>/local-kek.key`, creating it (mode 0600) when absent. */
  generateAt?: string;
}

export interface LoadedKek {
  kek: Buffer;
  origin: LocalKekOrigin;
  /** The file read or created (origins 'file' and 'generated-file'). */
  path?: string;
}

export const LOCAL_KEK_FILE = 'local-kek.key';
const HEX_KEK = /^[0-9a-fA-F]{64}$/;
const BASE64_BODY = [/^[A-Za-z0-9+/]*$/, /^[A-Za-z0-9_-]*$/];

/** Decode a textual KEK; errors describe the shape, never the characters. */
function parseKekText(text: string, where: string): Buffer {
  const s = text.trim();
  let kek: Buffer;
  if (HEX_KEK.test(s)) {
    kek = Buffer.from(s, 'hex');
  } else {
    const body = s.replace(/={1,2}$/, '');
    const padded = body.length !== s.length;
    if (body.length === 0 || !BASE64_BODY.some((re) => re.test(body)) || body.length % 4 === 1 || (padded && s.length % 4 !== 0)) {
      throw new Error(`${where}: local KEK must be ${DATA_KEY_BYTES} bytes as base64 or 64 hex characters (the value is neither)`);
    }
    kek = Buffer.from(body, 'base64'); // Node's decoder takes both alphabets
  }
  if (kek.byteLength !== DATA_KEY_BYTES) {
    throw new Error(`${where}: local KEK must be exactly ${DATA_KEY_BYTES} bytes (base64 or 64 hex characters), got ${kek.byteLength} bytes`);
  }
  return kek;
}

function readKekFile(path: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read local KEK file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (raw.byteLength === DATA_KEY_BYTES) return raw; // 32 raw bytes (no text encoding of 32 bytes is 32 characters)
  return parseKekText(raw.toString('latin1'), `local KEK file ${path}`);
}

/**
 * Resolve the local KEK: an explicit value wins, then a file, then `<generateAt>/local-kek.key`
 * (created with mode 0600 on first use, reused afterwards), else a random in-memory key
 * (data encrypted under it is unreadable after a restart).
 */
export function loadLocalKek(source: LocalKekSource): LoadedKek {
  if (source.value !== undefined) return { kek: parseKekText(source.value, 'local KEK value'), origin: 'env' };
  if (source.file !== undefined) return { kek: readKekFile(source.file), origin: 'file', path: source.file };
  if (source.generateAt !== undefined) {
    const path = join(source.generateAt, LOCAL_KEK_FILE);
    mkdirSync(source.generateAt, { recursive: true });
    const kek = randomBytes(DATA_KEY_BYTES);
    try {
      writeFileSync(path, `${kek.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { kek: readKekFile(path), origin: 'file', path };
      throw new Error(`cannot create local KEK file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    chmodSync(path, 0o600); // exactly owner read/write, whatever the umask did
    return { kek, origin: 'generated-file', path };
  }
  return { kek: randomBytes(DATA_KEY_BYTES), origin: 'generated-memory' };
}
