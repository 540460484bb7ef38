import type { DataPlane, GetItemOutput, PutRequest as Put, UpdateRequest as Update, WriteItemOutput } from './dataplane/port.js';
import { SidecarError, conditionFailed, invalidItem } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import { decodeItem, type AvItem, type LogicalItem } from '../codec/item.js';
import { readItem, type CryptoPort } from './crypto-port.js';
import { checkDecodedFits, checkImageFits } from '../codec/image.js';
import { formatRfc3339Nano } from '../codec/time.js';
import { isConditionFailure, mapBackendError } from './backend-errors.js';
import { ExpressionContext } from './expression.js';
import type { PatchBody } from './patch.js';
import { buildCreate, buildDelete, buildReplace, buildUpdate, type WriteOptions } from './requests.js';

export type { Expected, WriteOptions } from './requests.js';

export interface GetOptions {
  readonly consistent?: boolean;
  readonly fields?: readonly string[];
}

export interface ItemStoreOptions {
  readonly client: DataPlane;
  readonly crypto: CryptoPort;
  readonly now?: () => Date;
}

/** Single-item reads and writes for one model at a time. */
export class ItemStore {
  readonly #client: DataPlane;
  readonly #now: () => Date;
  readonly #crypto: CryptoPort;

  constructor(options: ItemStoreOptions) {
    this.#client = options.client;
    this.#crypto = options.crypto;
    this.#now = options.now ?? (() => new Date());
  }

  now(): string {
    return formatRfc3339Nano(this.#now());
  }

  async create(model: ModelDef, body: unknown, options: { condition?: unknown } = {}): Promise<LogicalItem> {
    const built = await buildCreate(model, body, options.condition, this.now(), this.#crypto);
    try {
      await this.#client.PutItem(built.request);
    } catch (err) {
      if (!isConditionFailure(err)) throw mapBackendError(err);
      if (await this.exists(model, built.key)) throw conditionFailed(409, 'item_exists', `${model.name} with this key already exists`);
      throw conditionFailed(412, 'condition_failed', 'the condition was not met');
    }
    return decodeItem(model, built.plainItem);
  }

  /** Replace or upsert; without `pathKey` the key comes from the body. */
  async put(model: ModelDef, pathKey: AvItem | undefined, body: unknown, options: WriteOptions = {}): Promise<LogicalItem> {
    const built = await buildReplace(model, pathKey, body, options, this.now(), this.#crypto);
    const expected = options.expected ?? bodyVersion(body);
    if (built.request.UpdateExpression) return this.#update(model, built.key, built.request, false, expected);
    try {
      await this.#client.PutItem({ ...keyOnlyPut(built.request), ReturnValuesOnConditionCheckFailure: 'ALL_OLD' });
    } catch (err) {
      throw await this.#conditionError(model, built.key, err, false, expected);
    }
    return decodeItem(model, built.key);
  }

  async patch(model: ModelDef, key: AvItem, patch: PatchBody, options: WriteOptions = {}): Promise<LogicalItem> {
    const built = await buildUpdate(model, key, patch, options, this.now(), this.#crypto);
    return this.#update(model, key, built.request, true, options.expected ?? patch.version);
  }

  /** An image read elsewhere (a stream record) as GET answers it: checked against the model, envelopes opened. */
  async decodeImage(model: ModelDef, image: AvItem, what: string): Promise<LogicalItem> {
    checkImageFits(model, image, what);
    const item = await readItem(this.#crypto, model, image);
    checkDecodedFits(model, item, what);
    return item;
  }

  async get(model: ModelDef, key: AvItem, options: GetOptions = {}): Promise<LogicalItem | undefined> {
    const input: Record<string, unknown> = { TableName: model.table, Key: key, ConsistentRead: options.consistent === true };
    if (options.fields?.length) Object.assign(input, projectionParams(model, options.fields));
    try {
      const out = (await this.#client.GetItem(input as Parameters<DataPlane['GetItem']>[0])) as GetItemOutput;
      if (!out.Item) return undefined;
      // An unencrypted model's item is decoded as it is (readItem would add an async step for nothing).
      return model.encrypted.size === 0 ? decodeItem(model, out.Item) : await readItem(this.#crypto, model, out.Item);
    } catch (err) {
      throw mapBackendError(err);
    }
  }

  async delete(model: ModelDef, key: AvItem, options: WriteOptions & { ifExists?: boolean } = {}): Promise<void> {
    const built = buildDelete(model, key, options);
    try {
      await this.#client.DeleteItem({ ...built.request, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' });
    } catch (err) {
      throw await this.#conditionError(model, key, err, true, options.expected);
    }
  }

  async exists(model: ModelDef, key: AvItem): Promise<boolean> {
    return (await this.#stored(model, key)) !== undefined;
  }

  async #update(model: ModelDef, key: AvItem, request: Update, missingIs404: boolean, expected: unknown) {
    try {
      const out = (await this.#client.UpdateItem({ ...request, ReturnValues: 'ALL_NEW', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' })) as WriteItemOutput;
      return await readItem(this.#crypto, model, out.Attributes ?? key);
    } catch (err) {
      throw await this.#conditionError(model, key, err, missingIs404, expected);
    }
  }

  /**
   * A failed condition means 404 when the item is absent (where the route says so), else 412 with a `reason`:
   * `item_missing`, `version_mismatch` (an expected version that the stored one is not) or `condition_failed`.
   */
  async #conditionError(model: ModelDef, key: AvItem, err: unknown, missingIs404: boolean, expected: unknown): Promise<SidecarError> {
    if (!isConditionFailure(err)) return mapBackendError(err);
    const current = (err.Item as AvItem | undefined) ?? (await this.#stored(model, key));
    if (!current && missingIs404) return new SidecarError('ErrItemNotFound', 404, `${model.name} not found`);
    if (!current) return conditionFailed(412, 'item_missing', `${model.name} does not exist`);
    const stored = model.version ? current[model.version]?.N : undefined;
    if (typeof expected === 'number' && stored !== String(expected)) {
      return conditionFailed(412, 'version_mismatch', 'the expected version was not met');
    }
    return conditionFailed(412, 'condition_failed', 'the condition was not met');
  }

  /** The stored partition key and version (a consistent read), or undefined when the item is absent. */
  async #stored(model: ModelDef, key: AvItem): Promise<AvItem | undefined> {
    const ctx = new ExpressionContext();
    const names = [model.partitionKey.attribute, ...(model.version ? [model.version] : [])];
    try {
      const out = (await this.#client.GetItem({
        TableName: model.table,
        Key: key,
        ConsistentRead: true,
        ProjectionExpression: names.map((n) => ctx.path(n)).join(', '),
        ...ctx.attributes(),
      })) as GetItemOutput;
      return out.Item;
    } catch (err) {
      throw mapBackendError(err);
    }
  }
}

/**
 * A replace on a model of keys only has nothing to set, and an UpdateItem without an expression is not portable
 * (moto refuses it, a transaction's Update requires one): it is sent as a Put of the key, with the same condition.
 */
export function keyOnlyPut(request: Update): Put {
  const { Key, UpdateExpression: _none, ...rest } = request;
  return { ...rest, Item: Key };
}

/** The `version` of a create/put body: the expected current version (validated when the body is encoded). */
function bodyVersion(body: unknown): unknown {
  return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>).version : undefined;
}

/** GetItem/BatchGet/TransactGet parameters projecting `fields` (none when no fields are asked for). */
export function projectionParams(model: ModelDef, fields: readonly string[] | undefined): ReturnType<ExpressionContext['attributes']> & { ProjectionExpression?: string } {
  if (!fields?.length) return {};
  const ctx = new ExpressionContext();
  return { ProjectionExpression: projectionExpression(model, fields, ctx), ...ctx.attributes() };
}

/** Projection by attribute name; keys are always included so every returned item is addressable. */
export function projectionExpression(model: ModelDef, fields: readonly string[], ctx: ExpressionContext): string {
  const names = new Set(model.keyAttributes);
  for (const field of fields) {
    if (!model.attributes.has(field)) throw invalidItem(`unknown attribute ${field} in fields`, field);
    names.add(field);
  }
  return [...names].map((n) => ctx.path(n)).join(', ');
}
