import type { AttributeValue } from '../codec/attribute-value.js';
import type { ConditionCheckRequest as ConditionCheck, DeleteRequest as Delete, PutRequest as Put, UpdateRequest as Update } from './dataplane/port.js';
import { SidecarError, invalidItem } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import {
  checkItemSize,
  decodeItem,
  encodeAttributeForWrite,
  encodeBody,
  sameAttributeValue,
  withNewLifecycle,
  type AvItem,
} from '../codec/item.js';
import { compileCondition } from './condition.js';
import { ExpressionContext, checkExpressionSize } from './expression.js';
import { buildPatch, type PatchBody } from './patch.js';
import type { CryptoPort } from './crypto-port.js';

/** `'*'` (If-Match: *) means "the item must exist", a number means "it must be at this version". */
export type Expected = number | '*' | undefined;

export interface WriteOptions {
  readonly expected?: Expected;
  readonly condition?: unknown;
}

/**
 * Write requests in the shape DynamoDB's transaction items take; single-item routes send the same
 * objects as PutItem/UpdateItem/DeleteItem, so both paths share one set of lifecycle and version rules.
 */
export interface BuiltPut {
  readonly kind: 'put';
  readonly request: Put;
  readonly key: AvItem;
  /** The item before encryption (what a response shows). */
  readonly plainItem: AvItem;
}
export interface BuiltUpdate {
  readonly kind: 'update';
  readonly request: Update;
  readonly key: AvItem;
}
export interface BuiltDelete {
  readonly kind: 'delete';
  readonly request: Delete;
  readonly key: AvItem;
}
export interface BuiltCheck {
  readonly kind: 'check';
  readonly request: ConditionCheck;
  readonly key: AvItem;
}
export type BuiltWrite = BuiltPut | BuiltUpdate | BuiltDelete | BuiltCheck;

export function keyOf(model: ModelDef, item: AvItem): AvItem {
  const key: AvItem = { [model.partitionKey.attribute]: item[model.partitionKey.attribute] };
  if (model.sortKey) key[model.sortKey.attribute] = item[model.sortKey.attribute];
  return key;
}

function conditionExpression(
  model: ModelDef,
  ctx: ExpressionContext,
  expected: Expected,
  condition: unknown,
  mustExist: boolean,
): string | undefined {
  const parts: string[] = [];
  if (mustExist || expected !== undefined) parts.push(`attribute_exists(${ctx.path(model.partitionKey.attribute)})`);
  if (typeof expected === 'number') {
    if (!model.version) throw new SidecarError('ErrInvalidRequest', 400, `model ${model.name} has no version attribute`);
    parts.push(`${ctx.path(model.version)} = ${ctx.value({ N: String(expected) })}`);
  }
  if (condition !== undefined) parts.push(compileCondition(model, condition, ctx));
  if (parts.length === 0) return undefined;
  const expression = parts.join(' AND ');
  checkExpressionSize('condition', expression);
  return expression;
}

const withCondition = (condition: string | undefined) => (condition ? { ConditionExpression: condition } : {});

/** Create: fails when the key exists. Lifecycle: createdAt = updatedAt = now, version 0. */
export async function buildCreate(model: ModelDef, body: unknown, condition: unknown, now: string, crypto: CryptoPort): Promise<BuiltPut> {
  const { attrs } = encodeBody(model, body);
  const plainItem = withNewLifecycle(model, attrs, now);
  const ctx = new ExpressionContext();
  const parts = [`attribute_not_exists(${ctx.path(model.partitionKey.attribute)})`];
  if (condition !== undefined) parts.push(compileCondition(model, condition, ctx));
  const expression = parts.join(' AND ');
  checkExpressionSize('condition', expression);
  const item = await crypto.encryptItem(model, plainItem);
  checkItemSize(item);
  return {
    kind: 'put',
    key: keyOf(model, item),
    plainItem,
    request: { TableName: model.table, Item: item, ConditionExpression: expression, ...ctx.attributes() },
  };
}

/**
 * Replace (or upsert) as an UpdateItem, so `createdAt` survives (if_not_exists) and `version` moves on by one
 * atomically. Declared attributes absent from the body are removed. Without a path key the body's key is used.
 */
export async function buildReplace(
  model: ModelDef,
  pathKey: AvItem | undefined,
  body: unknown,
  options: WriteOptions,
  now: string,
  crypto: CryptoPort,
): Promise<BuiltUpdate> {
  const plain = encodeBody(model, pathKey ? mergeKey(model, pathKey, body) : body);
  const encoded = { ...plain, attrs: await crypto.encryptItem(model, plain.attrs) };
  const key = pathKey ?? keyOf(model, encoded.attrs);
  const expected = options.expected ?? encoded.expectedVersion;
  const ctx = new ExpressionContext();
  const set: string[] = [];
  const sized: AvItem = { ...encoded.attrs };
  for (const [name, av] of Object.entries(encoded.attrs)) {
    if (!(name in key)) set.push(`${ctx.path(name)} = ${ctx.value(av)}`);
  }
  if (model.createdAt) {
    const p = ctx.path(model.createdAt);
    set.push(`${p} = if_not_exists(${p}, ${ctx.value({ S: now })})`);
    sized[model.createdAt] = { S: now };
  }
  if (model.updatedAt) {
    set.push(`${ctx.path(model.updatedAt)} = ${ctx.value({ S: now })}`);
    sized[model.updatedAt] = { S: now };
  }
  if (model.version) {
    const p = ctx.path(model.version);
    set.push(`${p} = if_not_exists(${p}, ${ctx.value({ N: '-1' })}) + ${ctx.value({ N: '1' })}`);
    sized[model.version] = { N: '1' };
  }
  checkItemSize(sized);
  const remove = encoded.absent.map((name) => ctx.path(name));
  const update = [set.length ? `SET ${set.join(', ')}` : '', remove.length ? `REMOVE ${remove.join(', ')}` : '']
    .filter(Boolean)
    .join(' ');
  checkExpressionSize('update', update);
  const condition = conditionExpression(model, ctx, expected, options.condition, false);
  return {
    kind: 'update',
    key,
    // A model of keys only has nothing to set: no expression, and the store sends a Put of the key (keyOnlyPut).
    request: { TableName: model.table, Key: key, UpdateExpression: update || undefined, ...withCondition(condition), ...ctx.attributes() },
  };
}

/** Update of an existing item: 404 semantics come from `attribute_exists(pk)`. */
export async function buildUpdate(
  model: ModelDef,
  key: AvItem,
  patch: PatchBody,
  options: WriteOptions,
  now: string,
  crypto: CryptoPort,
): Promise<BuiltUpdate> {
  const ctx = new ExpressionContext();
  const built = await buildPatch(model, patch, ctx, now, crypto);
  checkExpressionSize('update', built.expression);
  // The values alone (sealed, where encrypted) must fit in an item; the final size is DynamoDB's to check.
  checkItemSize({ ...key, ...(ctx.attributes().ExpressionAttributeValues ?? {}) });
  const expected = options.expected ?? built.expectedVersion;
  const condition = conditionExpression(model, ctx, expected, options.condition ?? patch.condition, true);
  return {
    kind: 'update',
    key,
    request: { TableName: model.table, Key: key, UpdateExpression: built.expression, ...withCondition(condition), ...ctx.attributes() },
  };
}

export function buildDelete(model: ModelDef, key: AvItem, options: WriteOptions & { ifExists?: boolean }): BuiltDelete {
  const ctx = new ExpressionContext();
  const mustExist = options.ifExists === true || options.expected !== undefined;
  const condition = conditionExpression(model, ctx, options.expected, options.condition, mustExist);
  return { kind: 'delete', key, request: { TableName: model.table, Key: key, ...withCondition(condition), ...ctx.attributes() } };
}

/** A transaction's `check` item: a condition and/or expected version on an item that is not written. */
export function buildCheck(model: ModelDef, key: AvItem, options: WriteOptions): BuiltCheck {
  const ctx = new ExpressionContext();
  const condition = conditionExpression(model, ctx, options.expected, options.condition, false);
  if (!condition) throw new SidecarError('ErrInvalidRequest', 400, 'a check item needs a condition or a version');
  return { kind: 'check', key, request: { TableName: model.table, Key: key, ConditionExpression: condition, ...ctx.attributes() } };
}

/** Keys come from the path; keys repeated in the body must agree with it. */
function mergeKey(model: ModelDef, key: AvItem, body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidItem('item must be a JSON object');
  const merged: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  const logicalKey = decodeItem(model, key);
  for (const [name, av] of Object.entries(key)) {
    if (name in merged) {
      const given = encodeAttributeForWrite(model, model.attributes.get(name)!, merged[name]);
      if (!given || !sameAttributeValue(given, av as AttributeValue)) {
        throw new SidecarError('ErrInvalidItem', 400, `key attribute ${name} in the body does not match the path`, { attribute: name });
      }
    }
    merged[name] = logicalKey[name];
  }
  return merged;
}
