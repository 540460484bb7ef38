import { createHash, randomUUID } from 'node:crypto';
import type { AttributeValue } from '../codec/attribute-value.js';
import type { DataPlane, TransactGetItemsOutput, TransactWriteEntry as TransactWriteItem } from './dataplane/port.js';
import { SidecarError } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import { itemSize } from '../codec/size.js';
import { keyFingerprint, keyFromObject, uniqueKeys, type LogicalItem } from '../codec/item.js';
import { canonicalJson } from '../codec/canonical-json.js';
import { THROTTLING_ERRORS, mapBackendError } from './backend-errors.js';
import { keyOnlyPut, projectionParams } from './items.js';
import type { PatchBody } from './patch.js';
import { buildCheck, buildCreate, buildDelete, buildReplace, buildUpdate, type BuiltWrite } from './requests.js';
import { RetryBudget, type RetryPolicy } from './retry.js';
import { readItem, type CryptoPort } from './crypto-port.js';
import { readRecord, recordPut, type IdempotencyScope } from './idempotency.js';

export const MAX_TRANSACTION_ITEMS = 100;
export const MAX_TRANSACTION_BYTES = 4 * 1024 * 1024;
/** The idempotency record is one more action in the same TransactWriteItems call. */
export const MAX_KEYED_TRANSACTION_ITEMS = MAX_TRANSACTION_ITEMS - 1;
const OPS = new Set(['create', 'put', 'update', 'delete', 'check']);
const RETRYABLE_REASONS = new Set(['TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded']);
const RETRYABLE_ERRORS = new Set(['TransactionInProgressException', ...THROTTLING_ERRORS]);

export interface TransactionOptions {
  readonly client: DataPlane;
  readonly crypto: CryptoPort;
  readonly models: (name: string) => ModelDef | undefined;
  readonly retry: RetryPolicy;
  readonly now: () => string;
  /** Where keyed transactions record their outcome (exactly once across restarts and instances). */
  readonly idempotency: IdempotencyScope;
}

export interface CancellationReason {
  index: number;
  code: string;
  message?: string;
}

interface Keyed {
  readonly key: string;
  readonly fingerprint: string;
}

const invalid = (detail: string) => new SidecarError('ErrInvalidRequest', 400, detail);

function asObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${where} must be an object`);
  return value as Record<string, unknown>;
}

function itemsArray(value: unknown): unknown[] {
  if (!Array.isArray(value) || value.length === 0) throw invalid('items must be a non-empty array');
  if (value.length > MAX_TRANSACTION_ITEMS) throw invalid(`a transaction takes at most ${MAX_TRANSACTION_ITEMS} items; got ${value.length}`);
  return value;
}

function prefixed(err: unknown, where: string): unknown {
  if (err instanceof SidecarError) return new SidecarError(err.code, err.status, `${where}: ${err.detail}`, err.extra);
  return err;
}

/** TransactWriteItems / TransactGetItems across models, with DynamoDB's limits checked before any call. */
export class TransactionStore {
  readonly #options: TransactionOptions;
  /** Keyed transactions in flight in this process, by key: a second one under the key waits for the first. */
  readonly #inFlight = new Map<string, Promise<unknown>>();

  constructor(options: TransactionOptions) {
    this.#options = options;
  }

  #model(name: unknown, where: string): ModelDef {
    if (typeof name !== 'string') throw invalid(`${where}.model must be a model name`);
    const model = this.#options.models(name);
    if (!model) throw new SidecarError('ErrModelNotFound', 404, `${where}: no model named ${name}`);
    return model;
  }

  async #build(raw: unknown, i: number, now: string): Promise<BuiltWrite> {
    const where = `items[${i}]`;
    const entry = asObject(raw, where);
    const { op, model: modelName, item, key, update, version, condition, ...rest } = entry;
    const extra = Object.keys(rest);
    if (extra.length > 0) throw invalid(`${where} has unknown field ${extra[0]}`);
    if (typeof op !== 'string' || !OPS.has(op)) throw invalid(`${where}.op must be one of ${[...OPS].join(', ')}`);
    const model = this.#model(modelName, where);
    const expected = version === undefined ? undefined : expectedVersion(version, where);
    const needs = (field: string, present: boolean) => {
      if (!present) throw invalid(`${where}: op ${op} needs ${field}`);
    };
    try {
      switch (op) {
        case 'create':
          needs('item', item !== undefined);
          return await buildCreate(model, item, condition, now, this.#options.crypto);
        case 'put':
          needs('item', item !== undefined);
          return await buildReplace(model, key === undefined ? undefined : keyFromObject(model, key), item, { expected, condition }, now, this.#options.crypto);
        case 'update':
          needs('key and update', key !== undefined && update !== undefined);
          return await buildUpdate(
            model,
            keyFromObject(model, key),
            asObject(update, `${where}.update`) as PatchBody,
            { expected, condition },
            now,
            this.#options.crypto,
          );
        case 'delete':
          needs('key', key !== undefined);
          return buildDelete(model, keyFromObject(model, key), { expected, condition });
        default:
          needs('key', key !== undefined);
          return buildCheck(model, keyFromObject(model, key), { expected, condition });
      }
    } catch (err) {
      throw prefixed(err, where);
    }
  }

  async write(rawItems: unknown, idempotencyKey?: unknown): Promise<{ committed: number }> {
    const items = itemsArray(rawItems);
    const key = idempotencyToken(idempotencyKey);
    if (!key) return this.#write(items, undefined);
    if (items.length > MAX_KEYED_TRANSACTION_ITEMS) {
      throw invalid(
        `a transaction with an idempotencyKey takes at most ${MAX_KEYED_TRANSACTION_ITEMS} items (its idempotency record is the ${MAX_TRANSACTION_ITEMS}th action); got ${items.length}`,
      );
    }
    const fingerprint = createHash('sha256').update(canonicalJson(items)).digest('hex');
    // The record makes a retry exactly-once wherever it arrives; queueing retries that overlap in one process
    // spares them a conflict (and holds on backends whose transactions are not isolated from each other, e.g. moto).
    const previous = this.#inFlight.get(key) ?? Promise.resolve();
    const run = previous.then(() => this.#write(items, { key, fingerprint }));
    const settled = run.catch(() => undefined);
    this.#inFlight.set(key, settled);
    void settled.then(() => {
      if (this.#inFlight.get(key) === settled) this.#inFlight.delete(key);
    });
    return run;
  }

  /**
   * A keyed transaction also puts its idempotency record, which only a first commit can write: when that put is
   * what canceled it, the record decides — the same request gets the first outcome, another one 409.
   */
  async #write(items: unknown[], keyed: Keyed | undefined): Promise<{ committed: number }> {
    const now = this.#options.now();
    const built: BuiltWrite[] = [];
    for (const [i, raw] of items.entries()) built.push(await this.#build(raw, i, now));
    const seen = new Map<string, number>();
    let bytes = 0;
    built.forEach((b, i) => {
      const fp = keyFingerprint(b.request.TableName!, b.key);
      if (seen.has(fp)) throw invalid(`items[${i}] targets the same item as items[${seen.get(fp)}]; a transaction may touch each item once`);
      seen.set(fp, i);
      bytes += b.kind === 'put' ? itemSize(b.request.Item ?? {}) : itemSize(b.key) + itemSize(b.request.ExpressionAttributeValues ?? {});
    });
    if (bytes > MAX_TRANSACTION_BYTES) throw invalid(`transaction is about ${bytes} bytes; DynamoDB's limit is ${MAX_TRANSACTION_BYTES}`);
    const transactItems: TransactWriteItem[] = built.map(toTransactItem);
    const scope = this.#options.idempotency;
    if (keyed) transactItems.push(recordPut(scope, keyed.key, keyed.fingerprint, built.length, Date.now()));
    // One token per attempt, resent by the retries below: a rebuilt request (new timestamps) never reuses one.
    const token = keyed ? randomUUID() : undefined;
    const budget = new RetryBudget(this.#options.retry);
    for (;;) {
      try {
        await this.#options.client.TransactWriteItems({ TransactItems: transactItems, ...(token ? { ClientRequestToken: token } : {}) });
        return { committed: built.length };
      } catch (err) {
        const all = cancellationReasons(err);
        if (keyed && all?.[built.length]?.code === 'ConditionalCheckFailed') {
          const record = await readRecord(this.#options.client, scope, keyed.key, recordItem(err, built.length), Date.now());
          if (record?.fingerprint === keyed.fingerprint) return { committed: record.committed };
          if (record) throw new SidecarError('ErrIdempotentParameterMismatch', 409, 'idempotencyKey was used for a different transaction');
          // The record expired between the condition and the read: the key is free again.
          if (await budget.wait()) continue;
        }
        const retryable = all
          ? all.some((r) => RETRYABLE_REASONS.has(r.code)) && !all.some((r) => r.code === 'ConditionalCheckFailed')
          : RETRYABLE_ERRORS.has((err as Error).name);
        if (retryable && (await budget.wait())) continue;
        // The caller sees one reason per item it sent; the record's own reason is not one of them.
        const reasons = keyed ? all?.slice(0, built.length) : all;
        if (reasons) {
          throw new SidecarError('ErrTransactionCanceled', 409, 'the transaction was canceled; see reasons (one per item)', { reasons });
        }
        if ((err as Error).name === 'IdempotentParameterMismatchException') {
          throw new SidecarError('ErrIdempotentParameterMismatch', 409, 'idempotencyKey was used for a different transaction');
        }
        throw mapBackendError(err);
      }
    }
  }

  async get(rawItems: unknown): Promise<{ items: (LogicalItem | null)[] }> {
    const entries = itemsArray(rawItems).map((raw, i) => {
      const where = `items[${i}]`;
      const { model: modelName, key, fields, ...rest } = asObject(raw, where);
      if (Object.keys(rest).length > 0) throw invalid(`${where} has unknown field ${Object.keys(rest)[0]}`);
      const model = this.#model(modelName, where);
      if (fields !== undefined && (!Array.isArray(fields) || !fields.every((f) => typeof f === 'string'))) {
        throw invalid(`${where}.fields must be an array of attribute names`);
      }
      try {
        const projection = projectionParams(model, fields as string[] | undefined);
        const k = keyFromObject(model, key, `${where}.key`);
        return { model, request: { TableName: model.table, Key: k, ...projection } };
      } catch (err) {
        throw prefixed(err, where);
      }
    });
    uniqueKeys(entries.map((e) => [e.model.table, e.request.Key] as const), 'items');
    try {
      const out = (await this.#options.client.TransactGetItems({ TransactItems: entries.map((e) => ({ Get: e.request })) })) as TransactGetItemsOutput;
      const items = await Promise.all(
        entries.map((e, i) => {
          const item = out.Responses?.[i]?.Item;
          return item ? readItem(this.#options.crypto, e.model, item) : null;
        }),
      );
      return { items };
    } catch (err) {
      const reasons = cancellationReasons(err);
      if (reasons) throw new SidecarError('ErrTransactionCanceled', 409, 'the read transaction was canceled; see reasons', { reasons });
      throw mapBackendError(err);
    }
  }
}

function toTransactItem(b: BuiltWrite): TransactWriteItem {
  const failure = { ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const };
  switch (b.kind) {
    case 'put':
      return { Put: { ...b.request, ...failure } };
    case 'update':
      return b.request.UpdateExpression ? { Update: { ...b.request, ...failure } } : { Put: { ...keyOnlyPut(b.request), ...failure } };
    case 'delete':
      return { Delete: { ...b.request, ...failure } };
    default:
      return { ConditionCheck: { ...b.request, ...failure } };
  }
}

function expectedVersion(value: unknown, where: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw invalid(`${where}.version must be a non-negative integer`);
}

function idempotencyToken(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[\x21-\x7e]{1,36}$/.test(value)) {
    throw invalid('idempotencyKey must be 1 to 36 printable ASCII characters (DynamoDB ClientRequestToken)');
  }
  return value;
}

/** The item a cancellation reason carries (ReturnValuesOnConditionCheckFailure ALL_OLD), when the backend sent it. */
function recordItem(err: unknown, index: number): Record<string, AttributeValue> | undefined {
  return (err as { CancellationReasons?: { Item?: Record<string, AttributeValue> }[] }).CancellationReasons?.[index]?.Item;
}

function cancellationReasons(err: unknown): CancellationReason[] | undefined {
  const e = err as { name?: string; CancellationReasons?: { Code?: string; Message?: string }[] };
  if (e?.name !== 'TransactionCanceledException' || !Array.isArray(e.CancellationReasons)) return undefined;
  return e.CancellationReasons.map((r, index) => ({
    index,
    code: r.Code ?? 'None',
    ...(r.Message && r.Code !== 'None' ? { message: r.Message } : {}),
  }));
}
