import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { AttributeValue } from '../codec/attribute-value.js';
import { SidecarError } from '../errors.js';
import { decodePayload, encodePayload } from './payload.js';

/**
 * DynamORM "envelope v1": one encrypted attribute is stored as
 *   { M: { v: {N:"1"}, edk: {B: encrypted data key}, nonce: {B: 12 bytes}, ct: {B: ciphertext ‖ 16-byte tag} } }
 * sealed with AES-256-GCM under the data key, AAD = "dynamorm:encrypted:v1|attr=<attribute name>".
 */

export const ENVELOPE_VERSION = '1';
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const DATA_KEY_BYTES = 32;
const FIELDS = ['v', 'edk', 'nonce', 'ct'] as const;
/** B values are standard base64 (DynamoDB's JSON protocol, stream records). */
const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A plaintext data key together with its encrypted form (what goes into `edk`). */
export interface DataKey {
  readonly plaintext: Buffer;
  readonly edk: Uint8Array;
}

export interface ParsedEnvelope {
  readonly edk: Buffer;
  readonly nonce: Buffer;
  readonly ct: Buffer;
}

export function aadFor(attribute: string): Buffer {
  return Buffer.from(`dynamorm:encrypted:v1|attr=${attribute}`, 'utf8');
}

const bad = (attribute: string, what: string): SidecarError =>
  new SidecarError('ErrInvalidEncryptedEnvelope', 500, `attribute ${attribute}: invalid encrypted envelope: ${what}`, { attribute });

function assertKey(key: Uint8Array): void {
  if (key.byteLength !== DATA_KEY_BYTES) {
    throw new SidecarError('ErrInternal', 500, `data key must be ${DATA_KEY_BYTES} bytes, got ${key.byteLength}`);
  }
}

/** Own members of an AttributeValue that are set (the SDK leaves exactly one). */
function members(av: object): string[] {
  return Object.keys(av).filter((k) => (av as Record<string, unknown>)[k] !== undefined);
}

function onlyMember(av: unknown, type: keyof AttributeValue): unknown {
  if (typeof av !== 'object' || av === null) return undefined;
  const keys = members(av);
  return keys.length === 1 && keys[0] === type ? (av as Record<string, unknown>)[type] : undefined;
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Encrypt one typed value into an envelope. `nonce` is injectable for test vectors only. */
export function sealAttribute(attribute: string, av: AttributeValue, dataKey: DataKey, nonce?: Uint8Array): AttributeValue {
  assertKey(dataKey.plaintext);
  if (dataKey.edk.byteLength === 0) throw new SidecarError('ErrInternal', 500, 'encrypted data key is empty');
  const iv = nonce ?? randomBytes(NONCE_BYTES);
  if (iv.byteLength !== NONCE_BYTES) throw new SidecarError('ErrInternal', 500, `nonce must be ${NONCE_BYTES} bytes`);
  const cipher = createCipheriv('aes-256-gcm', dataKey.plaintext, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aadFor(attribute));
  const ct = Buffer.concat([cipher.update(encodePayload(av)), cipher.final(), cipher.getAuthTag()]);
  return {
    M: {
      v: { N: ENVELOPE_VERSION },
      edk: { B: asBuffer(dataKey.edk).toString('base64') },
      nonce: { B: asBuffer(iv).toString('base64') },
      ct: { B: ct.toString('base64') },
    },
  };
}

/**
 * Strictly validate an envelope's shape: an M with exactly v (N "1"), edk (non-empty B),
 * nonce (12-byte B) and ct (B of at least the 16-byte tag). Errors name the field, never a value.
 */
export function parseEnvelope(av: AttributeValue, attribute = '(unnamed)'): ParsedEnvelope {
  const m = onlyMember(av, 'M');
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw bad(attribute, 'stored value is not a map (M)');
  const map = m as Record<string, unknown>;
  const extra = members(map).filter((k) => !(FIELDS as readonly string[]).includes(k));
  // Unknown keys are not quoted: a plaintext map stored by mistake could have telling key names.
  if (extra.length > 0) throw bad(attribute, `${extra.length} unexpected field(s) besides v, edk, nonce, ct`);
  for (const f of FIELDS) if (map[f] === undefined) throw bad(attribute, `missing field "${f}"`);

  const v = onlyMember(map.v, 'N');
  if (typeof v !== 'string') throw bad(attribute, 'field "v" must be a number (N)');
  if (v !== ENVELOPE_VERSION) throw bad(attribute, 'unsupported envelope version in field "v"');

  const binary = (f: 'edk' | 'nonce' | 'ct'): Buffer => {
    const b = onlyMember(map[f], 'B');
    if (typeof b !== 'string' || !STD_BASE64.test(b)) throw bad(attribute, `field "${f}" must be binary (B)`);
    return Buffer.from(b, 'base64');
  };
  const edk = binary('edk');
  if (edk.byteLength === 0) throw bad(attribute, 'field "edk" is empty');
  const nonce = binary('nonce');
  if (nonce.byteLength !== NONCE_BYTES) throw bad(attribute, `field "nonce" must be ${NONCE_BYTES} bytes, got ${nonce.byteLength}`);
  const ct = binary('ct');
  if (ct.byteLength < TAG_BYTES) throw bad(attribute, `field "ct" is shorter than the ${TAG_BYTES}-byte tag`);
  return { edk, nonce, ct };
}

/** Decrypt an already-parsed envelope with its plaintext data key. */
export function openParsed(attribute: string, env: ParsedEnvelope, plaintextKey: Uint8Array): AttributeValue {
  assertKey(plaintextKey);
  const body = env.ct.subarray(0, env.ct.byteLength - TAG_BYTES);
  const tag = env.ct.subarray(env.ct.byteLength - TAG_BYTES);
  let payload: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', plaintextKey, env.nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aadFor(attribute));
    decipher.setAuthTag(tag);
    payload = Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw bad(attribute, 'authentication failed (wrong key, wrong attribute, or tampered envelope)');
  }
  try {
    return decodePayload(payload);
  } catch (err) {
    const reason = err instanceof SidecarError ? err.detail : 'decrypted payload could not be decoded';
    throw bad(attribute, reason);
  } finally {
    payload.fill(0);
  }
}

/** Parse and decrypt an envelope; any defect or GCM authentication failure → ErrInvalidEncryptedEnvelope. */
export function openAttribute(attribute: string, envelopeAv: AttributeValue, plaintextKey: Uint8Array): AttributeValue {
  return openParsed(attribute, parseEnvelope(envelopeAv, attribute), plaintextKey);
}
