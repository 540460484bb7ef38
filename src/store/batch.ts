import type { BatchGetItemOutput, BatchWriteItemOutput, DataPlane, WriteRequest } from './dataplane/port.js';
import { SidecarError } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import {
  checkItemSize,
  decodeItem,
  encodeBody,
  keyFingerprint,
  keyFromObject,
  uniqueKeys,
  withNewLifecycle,
  type AvItem,
  type LogicalItem,
} from '../codec/item.js';
import { THROTTLING_ERRORS, mapBackendError } from './backend-errors.js';
import { ExpressionContext } from './expression.js';
import { projectionExpression, projectionParams } from './items.js';
import { keyOf } from './requests.js';
import { RetryBudget, type RetryPolicy } from './retry.js';
import { isDeadlineError } from './deadline.js';
import { readItems, type CryptoPort } from './crypto-port.js';
import { mapBounded } from './bounded.js';

export const GET_CHUNK = 100;
export const WRITE_CHUNK = 25;

export interface BatchOptions {
  readonly client: DataPlane;
  readonly crypto: CryptoPort;
  readonly retry: RetryPolicy;
  /** Most keys (batch-get) or puts + deletes (batch-write) in one request. */
  readonly maxItems: number;
  /** Chunks in flight at once per request. */
  readonly concurrency: number;
  readonly now: () => string;
  /** Told how many entries are handed back unprocessed (for metrics). */
  readonly onUnprocessed?: (model: string, op: 'batch-get' | 'batch-write', count: number) => void;
}

export interface BatchGetResult {
  items: LogicalItem[];
  unprocessedKeys: LogicalItem[];
  complete: boolean;
}

export interface BatchWriteResult {
  unprocessed: { puts: LogicalItem[]; deletes: LogicalItem[] };
  complete: boolean;
}

const RETRYABLE = new Set([...THROTTLING_ERRORS, 'InternalServerError']);

function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

function checkCount(kind: string, count: number, max: number): void {
  if (count === 0) throw new SidecarError('ErrInvalidRequest', 400, `${kind} needs at least one entry`);
  if (count > max) throw new SidecarError('ErrInvalidRequest', 400, `${kind} takes at most ${max} entries per request; got ${count}`);
}

/** BatchGetItem / BatchWriteItem in DynamoDB-sized chunks, unprocessed entries retried until the deadline. */
export class BatchStore {
  readonly #options: BatchOptions;

  constructor(options: BatchOptions) {
    this.#options = options;
  }

  async get(model: ModelDef, rawKeys: unknown, options: { fields?: readonly string[]; consistent?: boolean } = {}): Promise<BatchGetResult> {
    if (!Array.isArray(rawKeys)) throw new SidecarError('ErrInvalidRequest', 400, 'keys must be an array');
    checkCount('keys', rawKeys.length, this.#options.maxItems);
    const keys = rawKeys.map((k, i) => keyFromObject(model, k, `keys[${i}]`));
    const fingerprints = uniqueKeys(keys.map((key) => [model.table, key] as const), 'keys');
    const projection = projectionParams(model, options.fields);
    const results = await mapBounded(chunks(keys, GET_CHUNK), this.#options.concurrency, (chunk) =>
      this.#getChunk(model, chunk, { ...(options.consistent ? { ConsistentRead: true } : {}), ...projection }),
    );
    const found = new Map<string, AvItem>();
    const unprocessed: AvItem[] = [];
    for (const r of results) {
      for (const item of r.items) found.set(keyFingerprint(model.table, keyOf(model, item)), item);
      unprocessed.push(...r.unprocessed);
    }
    const stored = fingerprints.map((fp) => found.get(fp)).filter((i): i is AvItem => i !== undefined);
    const items = await readItems(this.#options.crypto, model, stored);
    this.#options.onUnprocessed?.(model.name, 'batch-get', unprocessed.length);
    return { items, unprocessedKeys: unprocessed.map((k) => decodeItem(model, k)), complete: unprocessed.length === 0 };
  }

  async write(model: ModelDef, rawPuts: unknown, rawDeletes: unknown): Promise<BatchWriteResult> {
    const puts = rawPuts ?? [];
    const deletes = rawDeletes ?? [];
    if (!Array.isArray(puts) || !Array.isArray(deletes)) throw new SidecarError('ErrInvalidRequest', 400, 'puts and deletes must be arrays');
    checkCount('puts + deletes', puts.length + deletes.length, this.#options.maxItems);
    // One timestamp for the whole request: every item of it was written at the same moment.
    const now = this.#options.now();
    const putItems = await Promise.all(puts.map((body, i) => this.#encodePut(model, body, i, now)));
    const deleteKeys = deletes.map((k, i) => keyFromObject(model, k, `deletes[${i}]`));
    const fingerprints = uniqueKeys([...putItems.map((p) => keyOf(model, p)), ...deleteKeys].map((key) => [model.table, key] as const), 'puts/deletes');
    await this.#carryLifecycle(model, putItems, fingerprints);
    const requests: WriteRequest[] = [
      ...putItems.map((Item) => ({ PutRequest: { Item } })),
      ...deleteKeys.map((Key) => ({ DeleteRequest: { Key } })),
    ];
    const leftovers = (
      await mapBounded(chunks(requests, WRITE_CHUNK), this.#options.concurrency, (chunk) => this.#writeChunk(model, chunk))
    ).flat();
    const unprocessed = {
      puts: await readItems(this.#options.crypto, model, leftovers.filter((r) => r.PutRequest).map((r) => r.PutRequest!.Item!)),
      deletes: leftovers.filter((r) => r.DeleteRequest).map((r) => decodeItem(model, r.DeleteRequest!.Key!)),
    };
    this.#options.onUnprocessed?.(model.name, 'batch-write', leftovers.length);
    return { unprocessed, complete: leftovers.length === 0 };
  }

  async #encodePut(model: ModelDef, body: unknown, i: number, now: string): Promise<AvItem> {
    const encoded = encodeBody(model, body);
    if (encoded.expectedVersion !== undefined) {
      throw new SidecarError('ErrInvalidRequest', 400, `puts[${i}]: a batch put cannot check a version; use a transaction or PUT with If-Match`);
    }
    const item = withNewLifecycle(model, encoded.attrs, now);
    const sealed = await this.#options.crypto.encryptItem(model, item);
    checkItemSize(sealed);
    return sealed;
  }

  /**
   * BatchWriteItem cannot use if_not_exists, so createdAt and version of items that already exist are read first
   * and carried over (createdAt kept, version + 1), as a single PUT would do. `fingerprints[i]` is `items[i]`'s key.
   */
  async #carryLifecycle(model: ModelDef, items: AvItem[], fingerprints: readonly string[]): Promise<void> {
    if (items.length === 0 || (!model.createdAt && !model.version)) return;
    const ctx = new ExpressionContext();
    const projection = projectionExpression(model, [model.createdAt, model.version].filter((n): n is string => n !== undefined), ctx);
    const existing = new Map<string, AvItem>();
    const results = await mapBounded(chunks(items.map((i) => keyOf(model, i)), GET_CHUNK), this.#options.concurrency, (chunk) =>
      this.#getChunk(model, chunk, { ConsistentRead: true, ProjectionExpression: projection, ...ctx.attributes() }),
    );
    for (const r of results) {
      if (r.unprocessed.length > 0) throw new SidecarError('ErrThrottled', 503, 'could not read existing items before a batch put; retry', { retryAfter: 1 });
      for (const item of r.items) existing.set(keyFingerprint(model.table, keyOf(model, item)), item);
    }
    for (const [i, item] of items.entries()) {
      const old = existing.get(fingerprints[i]);
      if (!old) continue;
      if (model.createdAt && old[model.createdAt]) item[model.createdAt] = old[model.createdAt];
      if (model.version && old[model.version]?.N !== undefined) item[model.version] = { N: String(BigInt(old[model.version].N!) + 1n) };
    }
  }

  async #getChunk(model: ModelDef, keys: AvItem[], extra: Record<string, unknown>): Promise<{ items: AvItem[]; unprocessed: AvItem[] }> {
    const budget = new RetryBudget(this.#options.retry);
    const items: AvItem[] = [];
    let pending = keys;
    while (pending.length > 0) {
      try {
        const out = (await this.#options.client.BatchGetItem({ RequestItems: { [model.table]: { Keys: pending, ...extra } } })) as BatchGetItemOutput;
        items.push(...(out.Responses?.[model.table] ?? []));
        pending = out.UnprocessedKeys?.[model.table]?.Keys ?? [];
      } catch (err) {
        if (isDeadlineError(err)) break; // what is left is reported as unprocessed (src/http/deadline.ts)
        if (!RETRYABLE.has((err as Error).name)) throw mapBackendError(err);
      }
      if (pending.length > 0 && !(await budget.wait())) break;
    }
    return { items, unprocessed: pending };
  }

  async #writeChunk(model: ModelDef, requests: WriteRequest[]): Promise<WriteRequest[]> {
    const budget = new RetryBudget(this.#options.retry);
    let pending = requests;
    while (pending.length > 0) {
      try {
        const out = (await this.#options.client.BatchWriteItem({ RequestItems: { [model.table]: pending } })) as BatchWriteItemOutput;
        pending = out.UnprocessedItems?.[model.table] ?? [];
      } catch (err) {
        if (isDeadlineError(err)) break; // what is left is reported as unprocessed (src/http/deadline.ts)
        if (!RETRYABLE.has((err as Error).name)) throw mapBackendError(err);
      }
      if (pending.length > 0 && !(await budget.wait())) break;
    }
    return pending;
  }
}
