import type { AttributeValue } from './attribute-value.js';
import type { DmsAttribute } from '../dms/types.js';
import { SidecarError, invalidItem } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import { decodeBase64Url, encodeBase64 } from './binary.js';
import { binaryLength } from './attribute-value.js';
import { toN } from './number.js';
export { checkItemSize } from './size.js';
import { decodeValue, encodeTtl, encodeValue } from './value.js';

export type AvItem = Record<string, AttributeValue>;
export type LogicalItem = Record<string, unknown>;

export interface EncodedBody {
  /** Caller-supplied attributes, encoded; lifecycle attributes are not included. */
  readonly attrs: AvItem;
  /** Declared, non-key, non-lifecycle attributes absent from the body (a replace removes them). */
  readonly absent: string[];
  /** The body's `version`, read as the expected current version. */
  readonly expectedVersion: number | undefined;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function isKeyAttribute(model: ModelDef, name: string): boolean {
  return name === model.partitionKey.attribute || name === model.sortKey?.attribute;
}

export function expectedVersionOf(value: unknown, source: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw new SidecarError('ErrInvalidItem', 400, `${source} must be a non-negative integer version`);
}

/** Encode one attribute of a write; `undefined` means omit it (omit_empty). */
export function encodeAttributeForWrite(model: ModelDef, attr: DmsAttribute, value: unknown): AttributeValue | undefined {
  const name = attr.attribute;
  if (value === null && (attr.required || isKeyAttribute(model, name))) {
    throw invalidItem(`attribute ${name} is required and cannot be null`, name);
  }
  // omit_empty judges the value as given (`0` is empty), before the TTL becomes epoch seconds.
  if (name === model.ttl) return encodeTtl(attr, value, name);
  const av = encodeValue(attr, value, name);
  if (av && isKeyAttribute(model, name)) checkKeyValue(model, attr, av);
  else if (av && (av.S !== undefined || av.B !== undefined)) checkIndexKeyValue(model, name, av);
  return av;
}

/**
 * DynamoDB refuses an index key value that is empty or over the index key size limits, failing the whole write;
 * dynalite stores it. Checked here so the embedded store behaves like production.
 */
function checkIndexKeyValue(model: ModelDef, name: string, av: AttributeValue): void {
  const role = model.indexKeyRoles.get(name);
  if (!role) return;
  const bytes = av.S !== undefined ? Buffer.byteLength(av.S) : binaryLength(av.B!);
  if (bytes === 0) {
    throw invalidItem(`attribute ${name} is a key of index ${role.indexes} and cannot be empty; leave it out to keep the item out of the index`, name);
  }
  if (bytes > role.maxBytes) {
    throw invalidItem(`attribute ${name} is a key of index ${role.indexes}: ${bytes} bytes; DynamoDB allows at most ${role.maxBytes}`, name);
  }
}

function checkKeyValue(model: ModelDef, attr: DmsAttribute, av: AttributeValue): void {
  const bytes = av.S !== undefined ? Buffer.byteLength(av.S) : av.B !== undefined ? binaryLength(av.B) : 1;
  if (bytes === 0) throw new SidecarError('ErrMissingPrimaryKey', 400, `key attribute ${attr.attribute} cannot be empty`);
  // DynamoDB's limits: partition key values up to 2048 bytes, sort key values up to 1024.
  const max = attr.attribute === model.partitionKey.attribute ? 2048 : 1024;
  if (bytes > max) throw invalidItem(`key attribute ${attr.attribute} is ${bytes} bytes; DynamoDB allows at most ${max}`, attr.attribute);
}

/** A new item's lifecycle: createdAt = updatedAt = `now`, version 0 (each when the model has it). */
export function withNewLifecycle(model: ModelDef, attrs: AvItem, now: string): AvItem {
  const item: AvItem = { ...attrs };
  if (model.createdAt) item[model.createdAt] = { S: now };
  if (model.updatedAt) item[model.updatedAt] = { S: now };
  if (model.version) item[model.version] = { N: '0' };
  return item;
}

/** Encode a create/put body: validates unknown, missing and mistyped attributes. */
export function encodeBody(model: ModelDef, body: unknown): EncodedBody {
  if (!isPlainObject(body)) throw invalidItem('item must be a JSON object');
  const attrs: AvItem = {};
  let expectedVersion: number | undefined;
  for (const [name, value] of Object.entries(body)) {
    const attr = model.attributes.get(name);
    if (!attr) throw invalidItem(`unknown attribute ${name}`, name);
    if (name === model.version) {
      expectedVersion = expectedVersionOf(value, name);
      continue;
    }
    if (model.lifecycle.has(name)) continue;
    if (value === undefined) continue;
    const av = encodeAttributeForWrite(model, attr, value);
    if (av) attrs[name] = av;
  }
  for (const key of [model.partitionKey, model.sortKey]) {
    if (key && !(key.attribute in attrs)) {
      throw new SidecarError('ErrMissingPrimaryKey', 400, `missing key attribute ${key.attribute}`, { attribute: key.attribute });
    }
  }
  for (const name of model.requiredWritable) {
    if (!(name in attrs)) throw invalidItem(`missing required attribute ${name}`, name);
  }
  const absent = model.replaceable.filter((n) => !(n in attrs));
  return { attrs, absent, expectedVersion };
}


/** Decode a stored (already decrypted) item to logical JSON; attributes not declared in the model are left out. */
export function decodeItem(model: ModelDef, item: AvItem): LogicalItem {
  const out: LogicalItem = {};
  // for…in over own keys (Object.entries' order, without its [name, value] pairs).
  for (const name in item) {
    if (!Object.hasOwn(item, name)) continue;
    const attr = model.attributes.get(name);
    if (!attr) continue;
    out[name] = decodeValue(attr, item[name]!);
  }
  return out;
}

/** Parse key values taken from a URL path: S as is, N as a decimal, B as base64url. */
export function keyFromPath(model: ModelDef, pk: string, sk: string | undefined): AvItem {
  const key: AvItem = { [model.partitionKey.attribute]: pathKeyValue(model.partitionKey, pk) };
  if (model.sortKey) {
    if (sk === undefined) throw new SidecarError('ErrMissingPrimaryKey', 400, `missing sort key ${model.sortKey.attribute}`);
    key[model.sortKey.attribute] = pathKeyValue(model.sortKey, sk);
  }
  return key;
}

function pathKeyValue(attr: DmsAttribute, raw: string): AttributeValue {
  const name = attr.attribute;
  if (raw.length === 0) throw new SidecarError('ErrMissingPrimaryKey', 400, `key attribute ${name} cannot be empty`);
  try {
    if (attr.type === 'N') return { N: toN(raw, name) };
    if (attr.type === 'B') return { B: encodeBase64(decodeBase64Url(raw, name)) };
    return { S: raw };
  } catch (err) {
    if (err instanceof SidecarError) {
      throw new SidecarError('ErrMissingPrimaryKey', 400, `key attribute ${name} in the path is not a valid ${attr.type} value`);
    }
    throw err;
  }
}

export function sameAttributeValue(a: AttributeValue, b: AttributeValue): boolean {
  if (a.S !== undefined || b.S !== undefined) return a.S === b.S;
  if (a.N !== undefined || b.N !== undefined) return a.N === b.N;
  if (a.B !== undefined && b.B !== undefined) return Buffer.from(a.B, 'base64').equals(Buffer.from(b.B, 'base64'));
  return false;
}

/** A key given as a JSON object `{pk: value, sk: value}`: exactly the key attributes, typed per the model. */
export function keyFromObject(model: ModelDef, value: unknown, where = 'key'): AvItem {
  if (!isPlainObject(value)) throw new SidecarError('ErrMissingPrimaryKey', 400, `${where} must be an object of key attributes`);
  const key: AvItem = {};
  for (const attr of [model.partitionKey, model.sortKey]) {
    if (!attr) continue;
    const v = value[attr.attribute];
    if (v === undefined || v === null) {
      throw new SidecarError('ErrMissingPrimaryKey', 400, `${where} is missing ${attr.attribute}`, { attribute: attr.attribute });
    }
    key[attr.attribute] = encodeAttributeForWrite(model, attr, v)!;
  }
  const extra = Object.keys(value).find((k) => !(k in key));
  if (extra !== undefined) throw new SidecarError('ErrInvalidRequest', 400, `${where} has ${extra}, which is not a key attribute of ${model.name}`);
  return key;
}

/** A stable string per key, to find duplicates within one request. */
export function keyFingerprint(table: string, key: AvItem): string {
  // Built by hand (it runs for every key of a batch): one or two names, so sorting is at most one swap.
  const names = Object.keys(key);
  if (names.length > 1) names.sort();
  let out = table;
  for (const name of names) {
    const av = key[name];
    if (av.S !== undefined) out += `\u0001${name}\u0000S\u0000${av.S}`;
    else if (av.N !== undefined) out += `\u0001${name}\u0000N\u0000${av.N}`;
    else out += `\u0001${name}\u0000B\u0000${av.B !== undefined ? Buffer.from(av.B, 'base64').toString('base64') : ''}`;
  }
  return out;
}

/** Refuses a request naming one item twice (`what[i] repeats a key`); returns each key's fingerprint, in order. */
export function uniqueKeys(keys: readonly (readonly [table: string, key: AvItem])[], what: string): string[] {
  const seen = new Set<string>();
  return keys.map(([table, key], i) => {
    const fp = keyFingerprint(table, key);
    if (seen.has(fp)) throw new SidecarError('ErrInvalidRequest', 400, `${what}[${i}] repeats a key already in this request`);
    seen.add(fp);
    return fp;
  });
}
