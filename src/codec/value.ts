import type { AttributeValue } from './attribute-value.js';
import type { DmsAttribute } from '../dms/types.js';
import { invalidItem } from '../errors.js';
import { decodeBase64, encodeBase64 } from './binary.js';
import { canonicalJson, isPlainObject, isWellFormed } from './canonical-json.js';
import { ExactNumber, fromN, isInteger, toN } from './number.js';
import { parseRfc3339, toEpochSeconds } from './time.js';

/** DynamoDB allows at most 32 levels of nested M/L. */
export const MAX_NESTING_DEPTH = 32;

const NULL: AttributeValue = { NULL: true };

/**
 * Defines an own enumerable property, so keys like `__proto__` stay data
 * instead of invoking the prototype setter.
 */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Empty for omit_empty: null/undefined, "", 0, false, [] and {}. */
export function isEmpty(value: unknown): boolean {
  if (value === null || value === undefined || value === '' || value === 0 || value === false) return true;
  if (Array.isArray(value)) return value.length === 0;
  return isPlainObject(value) && Object.keys(value).length === 0;
}

function checkString(value: unknown, path: string): string {
  if (typeof value !== 'string') throw invalidItem(`${path}: expected a string`, path);
  if (!isWellFormed(value)) throw invalidItem(`${path}: string contains a lone surrogate`, path);
  return value;
}

/** A binary given as base64 (either alphabet, padding optional) or bytes → the canonical standard padded base64. */
function toBinary(value: unknown, path: string): string {
  return encodeBase64(value instanceof Uint8Array ? value : decodeBase64(value, path));
}

/** Logical JSON typed by its own shape: string→S, number→N, boolean→BOOL, null→NULL, array→L, object→M. */
export function encodeNatural(value: unknown, path: string, depth: number): AttributeValue {
  if (value === null) return NULL;
  switch (typeof value) {
    case 'string':
      return { S: checkString(value, path) };
    case 'number':
      return { N: toN(value, path) };
    case 'boolean':
      return { BOOL: value };
  }
  if (value instanceof ExactNumber) return { N: toN(value, path) };
  const isContainer = Array.isArray(value) || isPlainObject(value);
  if (!isContainer) throw invalidItem(`${path}: expected a JSON value`, path);
  if (depth > MAX_NESTING_DEPTH) throw invalidItem(`${path}: nesting deeper than ${MAX_NESTING_DEPTH}`, path);
  if (Array.isArray(value)) {
    return { L: value.map((v: unknown, i) => encodeNatural(v, `${path}[${i}]`, depth + 1)) };
  }
  return { M: encodeMap(value as Record<string, unknown>, path, depth) };
}

function encodeMap(value: Record<string, unknown>, path: string, depth: number): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const key of Object.keys(value)) {
    const child = value[key];
    if (child === undefined) continue;
    if (!isWellFormed(key)) throw invalidItem(`${path}: map key contains a lone surrogate`, path);
    // Stores built on plain JS objects (dynalite among them) drop this key silently: refuse it rather than lose it.
    if (key === '__proto__') throw invalidItem(`${path}: map key __proto__ is not allowed`, path);
    out[key] = encodeNatural(child, `${path}.${key}`, depth + 1); // plain assignment: __proto__ is refused above
  }
  return out;
}

function encodeSet(attr: DmsAttribute, value: unknown, path: string): AttributeValue {
  if (!Array.isArray(value)) throw invalidItem(`${path}: expected an array for a ${attr.type} set`, path);
  if (value.length === 0) return NULL;
  const seen = new Set<string>();
  const addUnique = (key: string, i: number): void => {
    if (seen.has(key)) throw invalidItem(`${path}[${i}]: duplicate ${attr.type} set element`, `${path}[${i}]`);
    seen.add(key);
  };
  const elementPath = (i: number): string => `${path}[${i}]`;
  switch (attr.type) {
    case 'SS': {
      const SS = value.map((v: unknown, i) => {
        const s = checkString(v, elementPath(i));
        if (s === '') throw invalidItem(`${elementPath(i)}: string set elements must be non-empty`, elementPath(i));
        addUnique(s, i);
        return s;
      });
      return { SS };
    }
    case 'NS': {
      const NS = value.map((v: unknown, i) => {
        const n = toN(v, elementPath(i));
        addUnique(n, i);
        return n;
      });
      return { NS };
    }
    default: {
      const BS = value.map((v: unknown, i) => {
        const b64 = toBinary(v, elementPath(i));
        if (b64 === '') throw invalidItem(`${elementPath(i)}: binary set elements must be non-empty`, elementPath(i));
        addUnique(b64, i);
        return b64;
      });
      return { BS };
    }
  }
}

function encodeTyped(attr: DmsAttribute, value: unknown, path: string): AttributeValue {
  switch (attr.type) {
    case 'S': {
      if (attr.json) return { S: canonicalJson(value, path) };
      const s = checkString(value, path);
      if (attr.format === 'rfc3339nano' && parseRfc3339(s) === null) {
        throw invalidItem(`${path}: expected an RFC 3339 timestamp`, path);
      }
      return { S: s };
    }
    case 'N': {
      const n = toN(value, path);
      if ((attr.format === 'int' || attr.format === 'unix_seconds') && !isInteger(n)) {
        throw invalidItem(`${path}: expected an integer`, path);
      }
      return { N: n };
    }
    case 'B':
      return { B: toBinary(value, path) };
    case 'BOOL':
      if (typeof value !== 'boolean') throw invalidItem(`${path}: expected a boolean`, path);
      return { BOOL: value };
    case 'NULL':
      throw invalidItem(`${path}: expected null`, path);
    case 'M':
      if (!isPlainObject(value)) throw invalidItem(`${path}: expected an object`, path);
      return encodeNatural(value, path, 1);
    case 'L':
      if (!Array.isArray(value)) throw invalidItem(`${path}: expected an array`, path);
      return encodeNatural(value, path, 1);
    case 'SS':
    case 'NS':
    case 'BS':
      return encodeSet(attr, value, path);
  }
}

/**
 * Logical JSON → AttributeValue for one DMS attribute. `undefined` means "omit the
 * attribute" (omit_empty with an empty value). Whether null is allowed is the caller's call.
 */
export function encodeValue(attr: DmsAttribute, value: unknown, path = attr.attribute): AttributeValue | undefined {
  if (attr.omit_empty && isEmpty(value)) return undefined;
  if (value === undefined) throw invalidItem(`${path}: expected a value`, path);
  if (value === null) return NULL;
  return encodeTyped(attr, value, path);
}

/** TTL attribute: integer epoch seconds or RFC 3339 → N, with the same null/omit_empty rules. */
export function encodeTtl(attr: DmsAttribute, value: unknown, path = attr.attribute): AttributeValue | undefined {
  if (attr.omit_empty && isEmpty(value)) return undefined;
  if (value === undefined) throw invalidItem(`${path}: expected a value`, path);
  if (value === null) return NULL;
  return { N: toEpochSeconds(value, path) };
}

/** AttributeValue → logical JSON by its own type tag: N→number|string, B/BS→base64, sets→arrays. */
export function decodeNatural(av: AttributeValue): unknown {
  if (av.S !== undefined) return av.S;
  if (av.N !== undefined) return fromN(av.N);
  if (av.B !== undefined) return av.B;
  if (av.BOOL !== undefined) return av.BOOL;
  if (av.NULL !== undefined) return null;
  if (av.L !== undefined) return av.L.map(decodeNatural);
  if (av.M !== undefined) {
    const out: Record<string, unknown> = {};
    const map = av.M;
    // for…in over own keys (Object.entries' order, without its [key, value] pairs).
    for (const key in map) if (Object.hasOwn(map, key)) setOwn(out, key, decodeNatural(map[key]!));
    return out;
  }
  if (av.SS !== undefined) return [...av.SS];
  if (av.NS !== undefined) return av.NS.map(fromN);
  if (av.BS !== undefined) return [...av.BS];
  throw new Error('unsupported AttributeValue type');
}

/**
 * AttributeValue → logical JSON for one DMS attribute. Values of an unexpected type
 * (e.g. written by another SDK) decode naturally instead of failing.
 */
export function decodeValue(attr: DmsAttribute, av: AttributeValue): unknown {
  if (av.NULL !== undefined) return attr.type === 'SS' || attr.type === 'NS' || attr.type === 'BS' ? [] : null;
  if (attr.json && av.S !== undefined) {
    try {
      return JSON.parse(av.S) as unknown;
    } catch {
      return av.S;
    }
  }
  return decodeNatural(av);
}
