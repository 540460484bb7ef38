import { invalidItem } from '../errors.js';

const STANDARD = /^[A-Za-z0-9+/]*$/;
const URL_SAFE = /^[A-Za-z0-9_-]*$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * Splits off correct padding: none, or `=`/`==` making the length a multiple of 4.
 * Returns the unpadded body, or null when the padding or length is wrong.
 */
function unpad(s: string): string | null {
  const body = s.replace(/={1,2}$/, '');
  const padded = body.length !== s.length;
  if (padded && s.length % 4 !== 0) return null;
  if (body.length % 4 === 1) return null;
  if (padded && body.length % 4 === 0) return null;
  return body;
}

/** Rejects non-zero leftover bits in the last character, so every byte string has one encoding. */
function hasCanonicalTail(body: string): boolean {
  const rem = body.length % 4;
  if (rem === 0) return true;
  const last = body[body.length - 1];
  const index = last === '+' || last === '-' ? 62 : last === '/' || last === '_' ? 63 : ALPHABET.indexOf(last);
  const unusedBits = rem === 2 ? 4 : 2;
  return (index & ((1 << unusedBits) - 1)) === 0;
}

function decode(s: unknown, path: string, alphabets: RegExp[], expected: string): Uint8Array {
  if (typeof s !== 'string') throw invalidItem(`${path}: expected a ${expected} string`, path);
  const body = unpad(s);
  if (body === null || !alphabets.some((re) => re.test(body)) || !hasCanonicalTail(body)) {
    throw invalidItem(`${path}: expected a ${expected} string`, path);
  }
  return new Uint8Array(Buffer.from(body, 'base64'));
}

/** Strict base64 (standard or URL-safe alphabet, not mixed; padding optional but exact). */
export function decodeBase64(s: unknown, path: string): Uint8Array {
  return decode(s, path, [STANDARD, URL_SAFE], 'base64');
}

/** Strict URL-safe base64, padding optional; for keys carried in URL paths. */
export function decodeBase64Url(s: unknown, path: string): Uint8Array {
  return decode(s, path, [URL_SAFE], 'base64url');
}

/** Standard alphabet, padded. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** URL-safe alphabet, unpadded. */
export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}
