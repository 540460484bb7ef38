import type { AttributeValue } from '../codec/attribute-value.js';
import { SidecarError } from '../errors.js';
import { decodeBase64, encodeBase64 } from '../codec/binary.js';
import type { AvItem } from '../codec/item.js';

/**
 * DynamORM's pagination token, byte-compatible with Go's `query.EncodeCursor`:
 * base64url (with `=` padding) of compact JSON `{"lastKey":{…},"index":"…","sort":"ASC|DESC"}`,
 * keys of every map sorted, values in DynamoDB JSON single-key form, bytes as padded standard base64.
 */
export interface Cursor {
  readonly lastKey: AvItem;
  readonly index?: string;
  readonly sort?: 'ASC' | 'DESC';
}


function sortedEntries<T>(record: Record<string, T>): [string, T][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A value with its map keys sorted (Go's encoding/json order). */
function toJsonAv(av: AttributeValue): AttributeValue {
  if (av.S !== undefined) return { S: av.S };
  if (av.N !== undefined) return { N: av.N };
  if (av.B !== undefined) return { B: av.B };
  if (av.BOOL !== undefined) return { BOOL: av.BOOL };
  if (av.NULL !== undefined) return { NULL: true };
  if (av.SS !== undefined) return { SS: av.SS };
  if (av.NS !== undefined) return { NS: av.NS };
  if (av.BS !== undefined) return { BS: av.BS };
  if (av.L !== undefined) return { L: av.L.map(toJsonAv) };
  if (av.M !== undefined) return { M: mapToJson(av.M) };
  throw new Error('unsupported AttributeValue in cursor');
}

function mapToJson(map: Record<string, AttributeValue>): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [k, v] of sortedEntries(map)) out[k] = toJsonAv(v);
  return out;
}

function invalidCursor(detail: string): SidecarError {
  return new SidecarError('ErrInvalidRequest', 400, `invalid cursor: ${detail}`);
}

/**
 * One attribute value in DynamoDB JSON (`{"S": "…"}`, `{"N": "12"}`, `{"B": "<base64>"}`, sets, L, M) as the SDK
 * holds it; numbers stay their exact N text. `fail` phrases the error, `where` names the input in it.
 */
export function avFromJson(value: unknown, fail: (detail: string) => Error, where: string): AttributeValue {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail('attribute value must be an object');
  const entries = Object.entries(value);
  if (entries.length !== 1) throw fail('attribute value must have exactly one type key');
  const [type, v] = entries[0];
  const strings = (x: unknown): string[] => {
    if (!Array.isArray(x) || !x.every((s) => typeof s === 'string')) throw fail(`${type} must be an array of strings`);
    return x;
  };
  const bytes = (x: unknown): string => {
    try {
      return encodeBase64(decodeBase64(x, where));
    } catch {
      throw fail(`${type} must be base64`);
    }
  };
  switch (type) {
    case 'S':
    case 'N':
      if (typeof v !== 'string') throw fail(`${type} must be a string`);
      return type === 'S' ? { S: v } : { N: v };
    case 'B':
      return { B: bytes(v) };
    case 'BOOL':
      if (typeof v !== 'boolean') throw fail('BOOL must be a boolean');
      return { BOOL: v };
    case 'NULL':
      return { NULL: true };
    case 'SS':
      return { SS: strings(v) };
    case 'NS':
      return { NS: strings(v) };
    case 'BS':
      return { BS: strings(v).map(bytes) };
    case 'L':
      if (!Array.isArray(v)) throw fail('L must be an array');
      return { L: v.map((e) => avFromJson(e, fail, where)) };
    case 'M':
      return { M: avMapFromJson(v, fail, where, 'M must be an object') };
    default:
      throw fail(`unknown attribute type ${type}`);
  }
}

/** A map of attribute values in DynamoDB JSON (an item, a key); own properties only, so `__proto__` stays data. */
export function avMapFromJson(value: unknown, fail: (detail: string) => Error, where: string, notObject: string): Record<string, AttributeValue> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail(notObject);
  const out: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(value)) {
    Object.defineProperty(out, k, { value: avFromJson(v, fail, where), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function mapFromJson(value: unknown): Record<string, AttributeValue> {
  return avMapFromJson(value, invalidCursor, 'cursor', 'lastKey must be an object');
}

/** Go's encoding/json escapes these inside strings; matching it keeps cursors byte-identical. */
function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function encodeCursor(cursor: Cursor): string {
  const json: Record<string, unknown> = { lastKey: mapToJson(cursor.lastKey) };
  if (cursor.index) json.index = cursor.index;
  if (cursor.sort) json.sort = cursor.sort;
  const unpadded = Buffer.from(goJson(json), 'utf8').toString('base64url');
  return unpadded.padEnd(Math.ceil(unpadded.length / 4) * 4, '=');
}

const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** Accepts cursors from any DynamORM SDK: padding optional, `+/` alphabet tolerated. */
export function decodeCursor(token: string): Cursor {
  if (typeof token !== 'string' || token.length === 0 || token.length > 16_384) throw invalidCursor('empty or too long');
  const normalized = token.replace(/\+/g, '-').replace(/\//g, '_');
  if (!BASE64URL.test(normalized)) throw invalidCursor('not base64url');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(normalized.replace(/=+$/, ''), 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor('not a DynamORM cursor');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalidCursor('not a DynamORM cursor');
  const { lastKey, index, sort, ...rest } = parsed as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw invalidCursor(`unexpected field ${Object.keys(rest)[0]}`);
  if (index !== undefined && typeof index !== 'string') throw invalidCursor('index must be a string');
  // Go's EncodeCursor writes the caller's OrderBy verbatim ("desc"); any case is read, ASC/DESC is what is written.
  const direction = typeof sort === 'string' ? sort.toUpperCase() : sort;
  if (direction !== undefined && direction !== 'ASC' && direction !== 'DESC') throw invalidCursor('sort must be ASC or DESC');
  return {
    lastKey: mapFromJson(lastKey),
    ...(index ? { index } : {}),
    ...(direction ? { sort: direction } : {}),
  };
}
