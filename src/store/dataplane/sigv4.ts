import { createHmac, createSecretKey, hash, type KeyObject } from 'node:crypto';

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
  readonly expiration?: Date | undefined;
}

export interface SignInput {
  readonly method: string;
  /** Path only, no query (the data plane never sends one). */
  readonly path: string;
  /** Lower-case names; `host` included. Signed as given, minus the headers SigV4 never signs. */
  readonly headers: Record<string, string>;
  readonly body: string | Buffer;
  readonly credentials: Credentials;
  readonly region: string;
  readonly service: string;
  readonly date: Date;
  /** Also send the payload hash as x-amz-content-sha256 (the SDK's `applyChecksum`). */
  readonly contentSha256?: boolean;
}

/** Headers SigV4 leaves out of the signature, as @smithy/signature-v4 does. */
const UNSIGNABLE = new Set([
  'authorization', 'cache-control', 'connection', 'expect', 'from', 'keep-alive', 'max-forwards', 'pragma', 'referer', 'te',
  'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'x-amzn-trace-id',
]);
const isUnsignable = (name: string) => UNSIGNABLE.has(name) || name.startsWith('proxy-') || name.startsWith('sec-');

/**
 * Signing keys by secret, day, region and service. A key is an HMAC chain of four steps; deriving it once a day and
 * holding it as a KeyObject makes each signature two HMACs over a ready key (bench/README.md: KeyObject HMACs are
 * about five times cheaper than HMACs keyed with a plain buffer).
 */
const signingKeys = new Map<string, KeyObject>();
const MAX_KEYS = 256;

/** The key of the previous call: nearly every call signs with the same one (no id string built, no map lookup). */
let last: { secret: string; shortDate: string; region: string; service: string; key: KeyObject } | undefined;

function signingKey(secret: string, shortDate: string, region: string, service: string): KeyObject {
  if (last && last.secret === secret && last.shortDate === shortDate && last.region === region && last.service === service) return last.key;
  const key = derivedKey(secret, shortDate, region, service);
  last = { secret, shortDate, region, service, key };
  return key;
}

function derivedKey(secret: string, shortDate: string, region: string, service: string): KeyObject {
  const id = `${shortDate}\n${region}\n${service}\n${secret}`;
  let key = signingKeys.get(id);
  if (!key) {
    const kDate = createHmac('sha256', `AWS4${secret}`).update(shortDate).digest();
    const kRegion = createHmac('sha256', kDate).update(region).digest();
    const kService = createHmac('sha256', kRegion).update(service).digest();
    key = createSecretKey(createHmac('sha256', kService).update('aws4_request').digest());
    // Yesterday's keys (and rotated secrets) go once the map is full: cheaper than tracking dates.
    if (signingKeys.size >= MAX_KEYS) signingKeys.clear();
    signingKeys.set(id, key);
  }
  return key;
}

/** The formatted date of the last second signed: one toISOString per second, not per request. */
let lastDate: { second: number; longDate: string; shortDate: string } = { second: NaN, longDate: '', shortDate: '' };

/** 20261126T090000Z and 20261126 */
function formatDate(date: Date): { longDate: string; shortDate: string } {
  const second = Math.floor(date.getTime() / 1000);
  if (second === lastDate.second) return lastDate;
  const longDate = date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  lastDate = { second, longDate, shortDate: longDate.slice(0, 8) };
  return lastDate;
}

/** RFC 3986 escaping as the SDK's `escapeUri` does it. */
const escapeUri = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The SDK's canonical path for every service but S3: dot segments removed, then URI-escaped twice. */
function canonicalPath(path: string): string {
  if (path === '/') return path;
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment.length === 0 || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return escapeUri(normalized).replace(/%2F/g, '/');
}

/** One-shot `crypto.hash`: no Hash object per digest. */
export const sha256Hex = (data: string | Buffer) => hash('sha256', data, 'hex');

const WHITESPACE = /\s/;
/** SigV4's canonical header value: trimmed, inner whitespace runs as one space (values without any kept as they are). */
const canonicalValue = (value: string) => (WHITESPACE.test(value) ? value.trim().replace(/\s+/g, ' ') : value);

/** Sets `name` in the name-sorted parallel lists (replacing an earlier value): an insertion sort of a handful. */
function put(names: string[], values: string[], name: string, value: string): void {
  const at = names.indexOf(name);
  if (at >= 0) {
    values[at] = value;
    return;
  }
  let i = names.length;
  names.push(name);
  values.push(value);
  while (i > 0 && names[i - 1]! > name) {
    names[i] = names[i - 1]!;
    values[i] = values[i - 1]!;
    i--;
  }
  names[i] = name;
  values[i] = value;
}

/**
 * SigV4 headers for one request: x-amz-date, x-amz-security-token (with a session token), x-amz-content-sha256 (when
 * asked) and authorization. Byte for byte what @smithy/signature-v4 signs (test/dataplane-sigv4.test.ts).
 */
export function signatureHeaders(input: SignInput): Record<string, string> {
  const { longDate, shortDate } = formatDate(input.date);
  const payloadHash = sha256Hex(input.body);
  const token = input.credentials.sessionToken;
  const added: Record<string, string> = { 'x-amz-date': longDate };
  if (token) added['x-amz-security-token'] = token;
  if (input.contentSha256) added['x-amz-content-sha256'] = payloadHash;
  const parts = canonicalParts(input, longDate, shortDate, added);
  const stringToSign = parts.stringToSignPrefix + sha256Hex(parts.canonicalPrefix + payloadHash);
  const key = signingKey(input.credentials.secretAccessKey, shortDate, input.region, input.service);
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  added.authorization = parts.authorizationPrefix + signature;
  return added;
}

/**
 * What a signature's strings share besides the payload hash and the signature itself: the canonical request up to
 * the payload hash, the string to sign up to the canonical request's hash, and the authorization header up to the
 * signature.
 */
interface CanonicalParts {
  readonly canonicalPrefix: string;
  readonly stringToSignPrefix: string;
  readonly authorizationPrefix: string;
}

interface CachedParts extends CanonicalParts {
  readonly method: string;
  readonly path: string;
  readonly longDate: string;
  readonly token: string | undefined;
  readonly accessKeyId: string;
  readonly region: string;
  readonly service: string;
}

/**
 * Parts by headers object, for frozen headers only (a frozen object's names and values cannot change): the lean
 * client signs each operation's fixed headers, so within one second every signature of an operation shares them.
 */
const partsByHeaders = new WeakMap<Record<string, string>, CachedParts>();

function canonicalParts(input: SignInput, longDate: string, shortDate: string, added: Record<string, string>): CanonicalParts {
  const cacheable = !input.contentSha256 && Object.isFrozen(input.headers);
  const token = input.credentials.sessionToken;
  if (cacheable) {
    const cached = partsByHeaders.get(input.headers);
    if (
      cached &&
      cached.longDate === longDate &&
      cached.method === input.method &&
      cached.path === input.path &&
      cached.token === token &&
      cached.accessKeyId === input.credentials.accessKeyId &&
      cached.region === input.region &&
      cached.service === input.service
    ) {
      return cached;
    }
  }
  const scope = `${shortDate}/${input.region}/${input.service}/aws4_request`;
  // Names and values side by side, sorted by name (code units, as Array#sort compares strings).
  const names: string[] = [];
  const values: string[] = [];
  for (const name in input.headers) {
    if (name === 'authorization' || name === 'x-amz-date' || name === 'date' || isUnsignable(name)) continue;
    put(names, values, name, canonicalValue(input.headers[name]!));
  }
  for (const name in added) put(names, values, name, added[name]!);
  const signedHeaders = names.join(';');
  let headerBlock = '';
  for (let i = 0; i < names.length; i++) headerBlock += `${names[i]}:${values[i]}\n`;
  const parts: CanonicalParts = {
    canonicalPrefix: `${input.method}\n${canonicalPath(input.path)}\n\n${headerBlock}\n${signedHeaders}\n`,
    stringToSignPrefix: `AWS4-HMAC-SHA256\n${longDate}\n${scope}\n`,
    authorizationPrefix: `AWS4-HMAC-SHA256 Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=`,
  };
  if (cacheable) {
    partsByHeaders.set(input.headers, {
      ...parts,
      method: input.method,
      path: input.path,
      longDate,
      token,
      accessKeyId: input.credentials.accessKeyId,
      region: input.region,
      service: input.service,
    });
  }
  return parts;
}
