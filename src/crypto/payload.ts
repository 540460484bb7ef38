import type { AttributeValue } from '../codec/attribute-value.js';
import { normalizeDecimal, setOwn } from '../codec/index.js';
import { SidecarError } from '../errors.js';

/**
 * The plaintext encoding of one typed value inside an "envelope v1" (shared with the
 * DynamORM Go/TS SDKs): compact JSON, `"t"` first, then the single value key.
 *
 *   {"t":"S","s":"x"}  {"t":"N","n":"12"}  {"t":"B","b":"<std base64>"}  {"t":"BOOL","bool":true}
 *   {"t":"NULL","null":true}  {"t":"SS","ss":[…]}  {"t":"NS","ns":[…]}  {"t":"BS","bs":[…base64]}
 *   {"t":"L","l":[…payloads…]}  {"t":"M","m":{"k":payload,…}}   (map keys sorted by UTF-8 bytes)
 *
 * Error messages here never quote a value, a map key or a type tag read from the payload:
 * they are plaintext of an encrypted attribute.
 */

/** Deepest nesting accepted when decoding (DynamoDB itself stops at 32). */
export const MAX_PAYLOAD_DEPTH = 64;

const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

const invalid = (reason: string): SidecarError =>
  new SidecarError('ErrInvalidEncryptedEnvelope', 500, `decrypted payload is not a valid typed value: ${reason}`);


/** Go's json.Marshal sorts map keys by their UTF-8 bytes (not UTF-16 code units). */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function stringArray(values: readonly string[]): string {
  return `[${values.map((s) => JSON.stringify(s)).join(',')}]`;
}

function encodeJson(av: AttributeValue): string {
  if (av.S !== undefined) return `{"t":"S","s":${JSON.stringify(av.S)}}`;
  if (av.N !== undefined) return `{"t":"N","n":${JSON.stringify(av.N)}}`;
  if (av.B !== undefined) return `{"t":"B","b":"${canonicalBase64(av.B)}"}`;
  if (av.BOOL !== undefined) return `{"t":"BOOL","bool":${av.BOOL ? 'true' : 'false'}}`;
  if (av.NULL !== undefined) return '{"t":"NULL","null":true}';
  if (av.SS !== undefined) return `{"t":"SS","ss":${stringArray(av.SS)}}`;
  if (av.NS !== undefined) return `{"t":"NS","ns":${stringArray(av.NS)}}`;
  if (av.BS !== undefined) return `{"t":"BS","bs":[${av.BS.map((b) => `"${canonicalBase64(b)}"`).join(',')}]}`;
  if (av.L !== undefined) return `{"t":"L","l":[${av.L.map(encodeJson).join(',')}]}`;
  if (av.M !== undefined) {
    const m = av.M;
    const keys = Object.keys(m).filter((k) => m[k] !== undefined).sort(compareUtf8);
    return `{"t":"M","m":{${keys.map((k) => `${JSON.stringify(k)}:${encodeJson(m[k])}`).join(',')}}}`;
  }
  throw new SidecarError('ErrInternal', 500, 'cannot encrypt an attribute value with no recognised type member');
}

/** Typed value → payload bytes (UTF-8 JSON). */
export function encodePayload(av: AttributeValue): Buffer {
  return Buffer.from(encodeJson(av), 'utf8');
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: Json | undefined): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function decodeBinary(v: Json, type: string): string {
  if (typeof v !== 'string' || !STD_BASE64.test(v)) throw invalid(`${type} value must be a standard base64 string`);
  return canonicalBase64(v);
}

/** Standard padded base64 with zero tail bits (what Go writes for the bytes; values read back are already so). */
function canonicalBase64(b64: string): string {
  return Buffer.from(b64, 'base64').toString('base64');
}

function strings(v: Json, type: string, check?: (s: string) => boolean): string[] {
  if (!Array.isArray(v)) throw invalid(`${type} value must be an array`);
  return v.map((s) => {
    if (typeof s !== 'string' || (check && !check(s))) throw invalid(`${type} elements must be ${check ? 'decimal ' : ''}strings`);
    return s;
  });
}

/** A set as DynamoDB has it: at least one element, none twice (numbers compared by value, bytes by content). */
function checkSet(type: string, identities: readonly string[]): void {
  if (identities.length === 0) throw invalid(`${type} value is an empty set`);
  if (new Set(identities).size !== identities.length) throw invalid(`${type} value repeats an element`);
}

const VALUE_KEY: Record<string, string> = {
  S: 's', N: 'n', B: 'b', BOOL: 'bool', NULL: 'null', SS: 'ss', NS: 'ns', BS: 'bs', L: 'l', M: 'm',
};

function decodeJson(j: Json, depth: number): AttributeValue {
  if (depth > MAX_PAYLOAD_DEPTH) throw invalid(`nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
  if (!isObject(j)) throw invalid('expected a JSON object');
  const t = j.t;
  if (typeof t !== 'string' || !Object.hasOwn(VALUE_KEY, t)) throw invalid('missing or unknown type tag "t"');
  const valueKey = VALUE_KEY[t];
  for (const k of Object.keys(j)) {
    if (k !== 't' && k !== valueKey) throw invalid(`unexpected field in a ${t} value`);
  }
  const has = Object.hasOwn(j, valueKey);
  const v = j[valueKey];
  if (!has) {
    // Go omits empty collections (`omitempty`): {"t":"L"} / {"t":"M"}; an empty set cannot be
    // stored in DynamoDB, so a missing set becomes NULL. Scalars are always written.
    if (t === 'L') return { L: [] };
    if (t === 'M') return { M: {} };
    if (t === 'SS' || t === 'NS' || t === 'BS') return { NULL: true };
    throw invalid(`${t} value is missing field "${valueKey}"`);
  }
  switch (t) {
    case 'S':
      if (typeof v !== 'string') throw invalid('S value must be a string');
      return { S: v };
    case 'N':
      if (typeof v !== 'string' || !DECIMAL.test(v)) throw invalid('N value must be a decimal string');
      return { N: v };
    case 'B':
      return { B: decodeBinary(v, 'B') };
    case 'BOOL':
      if (typeof v !== 'boolean') throw invalid('BOOL value must be true or false');
      return { BOOL: v };
    case 'NULL':
      if (v !== true) throw invalid('NULL value must be true');
      return { NULL: true };
    case 'SS': {
      const SS = strings(v, 'SS');
      checkSet(t, SS);
      return { SS };
    }
    case 'NS': {
      const NS = strings(v, 'NS', (s) => DECIMAL.test(s));
      checkSet(t, NS.map((n) => normalizeDecimal(n) ?? n));
      return { NS };
    }
    case 'BS': {
      if (!Array.isArray(v)) throw invalid('BS value must be an array');
      const BS = v.map((b) => decodeBinary(b, 'BS'));
      checkSet(t, BS);
      return { BS };
    }
    case 'L':
      if (!Array.isArray(v)) throw invalid('L value must be an array');
      return { L: v.map((e) => decodeJson(e, depth + 1)) };
    default: {
      // 'M'
      if (!isObject(v)) throw invalid('M value must be an object');
      const out: Record<string, AttributeValue> = {};
      for (const k of Object.keys(v)) setOwn(out, k, decodeJson(v[k], depth + 1));
      return { M: out };
    }
  }
}

/**
 * A decrypted value must have the attribute's DMS type, or be NULL (what a write stores for null and for an empty
 * set): an `M` where the model says `S` would otherwise be served with the wrong shape. Never names the type found.
 */
export function checkPayloadType(av: AttributeValue, type: string): void {
  const found = Object.entries(av).find(([, v]) => v !== undefined)?.[0];
  if (found === type || found === 'NULL') return;
  throw invalid(`the decrypted value is not of the attribute's type ${type}`);
}

/** Payload bytes → typed value; anything that is not exactly a typed value → ErrInvalidEncryptedEnvelope. */
export function decodePayload(bytes: Uint8Array): AttributeValue {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw invalid('not UTF-8');
  }
  let parsed: Json;
  try {
    parsed = JSON.parse(text) as Json;
  } catch {
    throw invalid('not JSON');
  }
  try {
    return decodeJson(parsed, 1);
  } catch (err) {
    if (err instanceof SidecarError) throw err;
    throw invalid('could not be decoded'); // e.g. stack exhaustion
  }
}
