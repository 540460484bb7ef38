import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { SidecarError, invalidItem } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import {
  checkItemSize,
  decodeItem,
  encodeAttributeForWrite,
  encodeBody,
  sameAttributeValue,
  type AvItem,
  type LogicalItem,
} from '../codec/item.js';
import { formatRfc3339Nano } from '../codec/time.js';
import { isConditionFailure, mapBackendError } from './backend-errors.js';
import { compileCondition } from './condition.js';
import { ExpressionContext, checkExpressionSize } from './expression.js';
import { buildPatch, type PatchBody } from './patch.js';

/** `'*'` (If-Match: *) means "the item must exist", a number means "it must be at this version". */
export type Expected = number | '*' | undefined;

export interface WriteOptions {
  readonly expected?: Expected;
  readonly condition?: unknown;
}

export interface GetOptions {
  readonly consistent?: boolean;
  readonly fields?: readonly string[];
}

export interface ItemStoreOptions {
  readonly client: DynamoDBClient;
  readonly now?: () => Date;
}

export class ItemStore {
  readonly #client: DynamoDBClient;
  readonly #now: () => Date;

  constructor(options: ItemStoreOptions) {
    this.#client = options.client;
    this.#now = options.now ?? (() => new Date());
  }

  async create(model: ModelDef, body: unknown, options: { condition?: unknown } = {}): Promise<LogicalItem> {
    const { attrs } = encodeBody(model, body);
    const now = formatRfc3339Nano(this.#now());
    const item: AvItem = { ...attrs };
    if (model.createdAt) item[model.createdAt] = { S: now };
    if (model.updatedAt) item[model.updatedAt] = { S: now };
    if (model.version) item[model.version] = { N: '0' };
    checkItemSize(item);
    const ctx = new ExpressionContext();
    const parts = [`attribute_not_exists(${ctx.path(model.partitionKey.attribute)})`];
    if (options.condition !== undefined) parts.push(compileCondition(model, options.condition, ctx));
    const condition = parts.join(' AND ');
    checkExpressionSize('condition', condition);
    try {
      await this.#client.send(
        new PutItemCommand({ TableName: model.table, Item: item, ConditionExpression: condition, ...ctx.attributes() }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw mapBackendError(err);
      const key = this.#keyOf(model, item);
      if (await this.#exists(model, key)) {
        throw new SidecarError('ErrItemExists', 409, `${model.name} with this key already exists`);
      }
      throw new SidecarError('ErrConditionFailed', 412, 'the condition was not met');
    }
    return decodeItem(model, item);
  }

  /**
   * Replace (or upsert) an item; `createdAt` survives, `version` moves on by one.
   * Without a path key, the key is taken from the body.
   */
  async put(model: ModelDef, pathKey: AvItem | undefined, body: unknown, options: WriteOptions = {}): Promise<LogicalItem> {
    const encoded = encodeBody(model, pathKey ? mergeKey(model, pathKey, body) : body);
    const key = pathKey ?? this.#keyOf(model, encoded.attrs);
    const expected = options.expected ?? encoded.expectedVersion;
    const ctx = new ExpressionContext();
    const set: string[] = [];
    const sized: AvItem = { ...encoded.attrs };
    for (const [name, av] of Object.entries(encoded.attrs)) {
      if (name in key) continue;
      set.push(`${ctx.path(name)} = ${ctx.value(av)}`);
    }
    const now = formatRfc3339Nano(this.#now());
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
    return this.#update(model, key, update, ctx, this.#conditions(model, ctx, expected, options.condition, false));
  }

  async patch(model: ModelDef, key: AvItem, patch: PatchBody, options: WriteOptions = {}): Promise<LogicalItem> {
    const ctx = new ExpressionContext();
    const built = buildPatch(model, patch, ctx, formatRfc3339Nano(this.#now()));
    const expected = options.expected ?? built.expectedVersion;
    return this.#update(model, key, built.expression, ctx, this.#conditions(model, ctx, expected, options.condition, true));
  }

  async get(model: ModelDef, key: AvItem, options: GetOptions = {}): Promise<LogicalItem | undefined> {
    const ctx = new ExpressionContext();
    const projection = options.fields?.length ? this.#projection(model, options.fields, ctx) : undefined;
    try {
      const out = await this.#client.send(
        new GetItemCommand({
          TableName: model.table,
          Key: key,
          ConsistentRead: options.consistent === true,
          ...(projection ? { ProjectionExpression: projection, ...ctx.attributes() } : {}),
        }),
      );
      return out.Item ? decodeItem(model, out.Item) : undefined;
    } catch (err) {
      throw mapBackendError(err);
    }
  }

  async delete(model: ModelDef, key: AvItem, options: WriteOptions & { ifExists?: boolean } = {}): Promise<void> {
    const ctx = new ExpressionContext();
    const mustExist = options.ifExists === true || options.expected !== undefined;
    const condition = this.#conditions(model, ctx, options.expected, options.condition, mustExist);
    try {
      await this.#client.send(
        new DeleteItemCommand({
          TableName: model.table,
          Key: key,
          ...(condition ? { ConditionExpression: condition } : {}),
          ...ctx.attributes(),
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    } catch (err) {
      throw await this.#conditionError(model, key, err, mustExist);
    }
  }

  async #update(model: ModelDef, key: AvItem, update: string, ctx: ExpressionContext, condition: string | undefined) {
    checkExpressionSize('update', update);
    try {
      const out = await this.#client.send(
        new UpdateItemCommand({
          TableName: model.table,
          Key: key,
          ...(update ? { UpdateExpression: update } : {}),
          ...(condition ? { ConditionExpression: condition } : {}),
          ...ctx.attributes(),
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return decodeItem(model, out.Attributes ?? key);
    } catch (err) {
      throw await this.#conditionError(model, key, err, true);
    }
  }

  #conditions(model: ModelDef, ctx: ExpressionContext, expected: Expected, condition: unknown, mustExist: boolean) {
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

  /** A failed condition means 404 when the item is absent, 412 when it exists but did not match. */
  async #conditionError(model: ModelDef, key: AvItem, err: unknown, missingIs404: boolean): Promise<SidecarError> {
    if (!isConditionFailure(err)) return mapBackendError(err);
    const exists = err.Item !== undefined || (await this.#exists(model, key));
    if (!exists && missingIs404) return new SidecarError('ErrItemNotFound', 404, `${model.name} not found`);
    return new SidecarError('ErrConditionFailed', 412, 'the condition or expected version was not met');
  }

  async #exists(model: ModelDef, key: AvItem): Promise<boolean> {
    const ctx = new ExpressionContext();
    const projection = ctx.path(model.partitionKey.attribute);
    try {
      const out = await this.#client.send(
        new GetItemCommand({ TableName: model.table, Key: key, ConsistentRead: true, ProjectionExpression: projection, ...ctx.attributes() }),
      );
      return out.Item !== undefined;
    } catch (err) {
      throw mapBackendError(err);
    }
  }

  #keyOf(model: ModelDef, item: AvItem): AvItem {
    const key: AvItem = { [model.partitionKey.attribute]: item[model.partitionKey.attribute] };
    if (model.sortKey) key[model.sortKey.attribute] = item[model.sortKey.attribute];
    return key;
  }

  #projection(model: ModelDef, fields: readonly string[], ctx: ExpressionContext): string {
    const names = new Set([model.partitionKey.attribute, ...(model.sortKey ? [model.sortKey.attribute] : [])]);
    for (const field of fields) {
      if (!model.attributes.has(field)) throw invalidItem(`unknown attribute ${field} in fields`, field);
      names.add(field);
    }
    return [...names].map((n) => ctx.path(n)).join(', ');
  }
}

/** Keys come from the path; keys repeated in the body must agree with it. */
function mergeKey(model: ModelDef, key: AvItem, body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidItem('item must be a JSON object');
  const merged: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  const logicalKey = decodeItem(model, key);
  for (const [name, av] of Object.entries(key)) {
    if (name in merged) {
      const given = encodeAttributeForWrite(model, model.attributes.get(name)!, merged[name]);
      if (!given || !sameAttributeValue(given, av)) {
        throw new SidecarError('ErrInvalidItem', 400, `key attribute ${name} in the body does not match the path`, { attribute: name });
      }
    }
    merged[name] = logicalKey[name];
  }
  return merged;
}
