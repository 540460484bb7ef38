import type { AttributeValue } from '../codec/attribute-value.js';
import type { DataPlane, ExpressionParams, Item, ReadPageOutput } from './dataplane/port.js';
import type { DmsAttribute } from '../dms/types.js';
import { SidecarError } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import { sameAttributeValue, type AvItem, type LogicalItem } from '../codec/item.js';
import { readItem, readItems, type CryptoPort } from './crypto-port.js';
import { encodeValue } from '../codec/value.js';
import { mapBackendError } from './backend-errors.js';
import { compileCondition, conditionAttributes, operandTypeError } from './condition.js';
import { decodeCursor, encodeCursor, type Cursor } from './cursor.js';
import { ExpressionContext, checkExpressionSize } from './expression.js';
import { projectionExpression } from './items.js';

export const SORT_OPERATORS = ['=', '<', '<=', '>', '>=', 'between', 'begins_with'] as const;
export const DEFAULT_LIMIT = 100;
export const DEFAULT_PAGES = 10;

export interface ReadOptions {
  readonly index?: string;
  readonly filter?: unknown;
  readonly fields?: readonly string[];
  readonly limit?: number;
  readonly cursor?: string;
  readonly consistent?: boolean;
  readonly count?: boolean;
  /** Most DynamoDB calls one request may make; `'all'` reads until the data ends. */
  readonly pages?: number | 'all';
}

export interface QueryOptions extends ReadOptions {
  readonly partition: unknown;
  readonly sort?: { op: string; value?: unknown; values?: unknown[] };
  readonly order?: 'ASC' | 'DESC';
}

export interface ScanOptions extends ReadOptions {
  readonly segment?: number;
  readonly totalSegments?: number;
}

export interface PageResult {
  items: LogicalItem[];
  cursor?: string;
  count: number;
  scannedCount: number;
}

/** A Query or Scan request document (the fields the stores set). */
type ReadInput = ExpressionParams & {
  TableName: string;
  IndexName?: string;
  ConsistentRead?: boolean;
  FilterExpression?: string;
  Select?: 'COUNT';
  ProjectionExpression?: string;
  KeyConditionExpression?: string;
  ScanIndexForward?: boolean;
  Segment?: number;
  TotalSegments?: number;
  ExclusiveStartKey?: Item;
  Limit?: number;
};

interface Prepared {
  readonly kind: 'query' | 'scan';
  readonly input: ReadInput;
  readonly keyAttributes: readonly DmsAttribute[];
  readonly cursorContext: Omit<Cursor, 'lastKey'>;
  /** Query only: the partition being read; a cursor from another partition is refused. */
  readonly partition?: { readonly attribute: string; readonly value: AttributeValue };
}

const invalid = (detail: string) => new SidecarError('ErrInvalidRequest', 400, detail);

function indexOf(model: ModelDef, name: string | undefined) {
  if (name === undefined) return undefined;
  const index = model.indexes.get(name);
  if (!index) throw invalid(`model ${model.name} has no index ${name}`);
  return index;
}

/** Attributes that make up LastEvaluatedKey: the table key plus the index key. */
function keyAttributes(model: ModelDef, indexName: string | undefined): DmsAttribute[] {
  const names = new Set([model.partitionKey.attribute, model.sortKey?.attribute]);
  const index = indexOf(model, indexName);
  if (index) names.add(index.partition.attribute).add(index.sort?.attribute);
  return [...names].filter((n): n is string => n !== undefined).map((n) => model.attributes.get(n)!);
}

const KEY_WORDS = { S: 'a string', N: 'a number or decimal string', B: 'base64url bytes' } as const;

function keyValue(attr: DmsAttribute, value: unknown, what: string) {
  if (value === undefined || value === null) throw new SidecarError('ErrMissingPrimaryKey', 400, `${what} ${attr.attribute} is required`);
  // No format check: key conditions compare prefixes and bounds (begins_with "2026-01"), not whole values.
  let av;
  try {
    av = encodeValue({ ...attr, omit_empty: false, format: undefined }, value, attr.attribute);
  } catch (err) {
    if (!(err instanceof SidecarError) || err.code !== 'ErrInvalidItem') throw err;
    throw operandTypeError(what, attr.attribute, attr.type, KEY_WORDS[attr.type as 'S' | 'N' | 'B'], value, err);
  }
  if (!av || av.NULL) throw new SidecarError('ErrMissingPrimaryKey', 400, `${what} ${attr.attribute} is required`);
  // DynamoDB refuses empty S/B key values in a key condition (dynalite just matches nothing).
  if (av.S === '' || av.B === '') throw new SidecarError('ErrMissingPrimaryKey', 400, `${what} ${attr.attribute} cannot be empty`);
  return av;
}

function commonInput(model: ModelDef, options: ReadOptions, ctx: ExpressionContext): Partial<ReadInput> {
  const index = indexOf(model, options.index);
  if (options.consistent && index?.type === 'GSI') throw invalid(`consistent reads are not supported on global secondary index ${index.name}`);
  const input: Partial<ReadInput> = { TableName: model.table };
  if (index) input.IndexName = index.name;
  if (options.consistent) input.ConsistentRead = true;
  if (options.filter !== undefined) {
    input.FilterExpression = compileCondition(model, options.filter, ctx);
    checkExpressionSize('filter', input.FilterExpression);
  }
  if (options.count) input.Select = 'COUNT';
  else if (options.fields?.length) input.ProjectionExpression = projectionExpression(model, options.fields, ctx);
  return input;
}

function prepareQuery(model: ModelDef, options: QueryOptions): Prepared {
  const ctx = new ExpressionContext();
  const index = indexOf(model, options.index);
  const pkAttr = model.attributes.get(index ? index.partition.attribute : model.partitionKey.attribute)!;
  const skName = index ? index.sort?.attribute : model.sortKey?.attribute;
  refuseKeyFilter(options.filter, pkAttr.attribute, skName, index?.name);
  const partition = keyValue(pkAttr, options.partition, 'partition');
  const parts = [`${ctx.path(pkAttr.attribute)} = ${ctx.value(partition)}`];
  if (options.sort !== undefined) {
    if (!skName) throw invalid(`${index ? `index ${index.name}` : `model ${model.name}`} has no sort key`);
    parts.push(sortCondition(model.attributes.get(skName)!, options.sort, ctx));
  }
  if (options.order !== undefined && options.order !== 'ASC' && options.order !== 'DESC') throw invalid('order must be ASC or DESC');
  const input: ReadInput = {
    ...(commonInput(model, options, ctx) as ReadInput),
    KeyConditionExpression: parts.join(' AND '),
    ScanIndexForward: options.order !== 'DESC',
  };
  checkExpressionSize('key condition', input.KeyConditionExpression!);
  Object.assign(input, ctx.attributes());
  return {
    kind: 'query',
    input,
    keyAttributes: keyAttributes(model, options.index),
    cursorContext: { ...(options.index ? { index: options.index } : {}), sort: options.order ?? 'ASC' },
    partition: { attribute: pkAttr.attribute, value: partition },
  };
}

/**
 * DynamoDB refuses a query filter on the key it queries by ("Filter Expression can only contain non-primary key
 * attributes") with a message that names neither the fix nor our field names: refuse it first, pointing to
 * `partition` / `sort`. Scans may filter on keys, so only queries check this.
 */
function refuseKeyFilter(filter: unknown, partitionKey: string, sortKey: string | undefined, index: string | undefined): void {
  if (filter === undefined) return;
  const of = index ? `index ${index}` : 'the table';
  for (const name of conditionAttributes(filter)) {
    if (name === partitionKey) {
      throw invalid(`filter cannot use ${name}: it is the partition key of ${of}, which "partition" already selects; remove it from filter`);
    }
    if (name === sortKey) {
      throw invalid(`filter cannot use ${name}: it is the sort key of ${of}; put that condition in "sort" instead, e.g. {"sort":{"op":"begins_with","value":"…"}}`);
    }
  }
}

function sortCondition(attr: DmsAttribute, sort: QueryOptions['sort'] & object, ctx: ExpressionContext): string {
  const { op, value, values } = sort;
  if (!(SORT_OPERATORS as readonly string[]).includes(op)) {
    throw new SidecarError('ErrInvalidOperator', 400, `unsupported sort key operator ${JSON.stringify(op)}; use one of ${SORT_OPERATORS.join(' ')}`);
  }
  const name = ctx.path(attr.attribute);
  const v = (x: unknown) => ctx.value(keyValue(attr, x, 'sort key'));
  if (op === 'between') {
    if (!Array.isArray(values) || values.length !== 2) throw invalid('sort between needs values: [low, high]');
    return `${name} BETWEEN ${v(values[0])} AND ${v(values[1])}`;
  }
  if (op === 'begins_with') {
    if (attr.type === 'N') throw new SidecarError('ErrInvalidOperator', 400, 'begins_with does not apply to a number sort key');
    return `begins_with(${name}, ${v(value)})`;
  }
  return `${name} ${op} ${v(value)}`;
}

function prepareScan(model: ModelDef, options: ScanOptions, streaming: boolean): Prepared {
  const ctx = new ExpressionContext();
  const input = commonInput(model, options, ctx) as ReadInput;
  const { segment, totalSegments } = options;
  if (segment !== undefined && totalSegments === undefined) throw invalid('segment needs totalSegments');
  if (totalSegments !== undefined) {
    if (!Number.isInteger(totalSegments) || totalSegments < 1 || totalSegments > 1_000_000) throw invalid('totalSegments must be 1 to 1000000');
    if (segment === undefined && !streaming) throw invalid('segment is required with totalSegments (except for NDJSON export, which reads every segment)');
    if (segment !== undefined && (!Number.isInteger(segment) || segment < 0 || segment >= totalSegments)) {
      throw invalid('segment must be between 0 and totalSegments - 1');
    }
    input.TotalSegments = totalSegments;
    if (segment !== undefined) input.Segment = segment;
  }
  Object.assign(input, ctx.attributes());
  return {
    kind: 'scan',
    input,
    keyAttributes: keyAttributes(model, options.index),
    cursorContext: options.index ? { index: options.index } : {},
  };
}

/** The cursor must belong to this read: same index, same direction, exactly its key attributes. */
function startKey(prepared: Prepared, token: string | undefined): AvItem | undefined {
  if (token === undefined) return undefined;
  const cursor = decodeCursor(token);
  const ctx = prepared.cursorContext;
  if ((cursor.index ?? undefined) !== ctx.index) throw invalid('cursor was issued for a different index');
  if (cursor.sort !== undefined && ctx.sort !== undefined && cursor.sort !== ctx.sort) throw invalid('cursor was issued for the other sort order');
  if (cursor.sort !== undefined && prepared.kind === 'scan') throw invalid('cursor was issued by a query, not a scan');
  const names = Object.keys(cursor.lastKey).sort();
  const expected = prepared.keyAttributes.map((a) => a.attribute).sort();
  if (names.join('\u0000') !== expected.join('\u0000')) throw invalid('cursor does not hold this model\'s key attributes');
  for (const attr of prepared.keyAttributes) {
    const av = cursor.lastKey[attr.attribute] as unknown as Record<string, unknown>;
    if (!(attr.type in av)) throw invalid(`cursor key ${attr.attribute} has the wrong type`);
  }
  const partition = prepared.partition;
  if (partition && !sameAttributeValue(cursor.lastKey[partition.attribute], partition.value)) {
    throw invalid('cursor was issued for a different partition');
  }
  return cursor.lastKey;
}

function pageBudget(pages: number | 'all' | undefined, fallback: number | 'all'): number {
  const p = pages ?? fallback;
  if (p === 'all') return Number.POSITIVE_INFINITY;
  if (!Number.isInteger(p) || p < 1) throw invalid('pages must be a positive integer or "all"');
  return p;
}

/** Query and Scan with pagination, counting and streaming; never builds HTTP responses. */
export class ReadStore {
  readonly #client: DataPlane;
  readonly #crypto: CryptoPort;

  constructor(client: DataPlane, crypto: CryptoPort) {
    this.#client = client;
    this.#crypto = crypto;
  }

  query(model: ModelDef, options: QueryOptions): Promise<PageResult> {
    return this.#collect(model, prepareQuery(model, options), options);
  }

  scan(model: ModelDef, options: ScanOptions): Promise<PageResult> {
    return this.#collect(model, prepareScan(model, options, false), options);
  }

  /** Every matching item, page by page, pulled only as fast as the consumer reads. */
  queryStream(model: ModelDef, options: QueryOptions): AsyncIterable<LogicalItem> {
    return this.#stream(model, prepareQuery(model, options), options);
  }

  scanStream(model: ModelDef, options: ScanOptions): AsyncIterable<LogicalItem> {
    const prepared = prepareScan(model, options, true);
    const total = options.totalSegments;
    if (total === undefined || options.segment !== undefined) return this.#stream(model, prepared, options);
    if (options.cursor !== undefined) throw invalid('a cursor belongs to one segment: send segment with it, or export without a cursor');
    return this.#segments(model, prepared, options, total);
  }

  async #page(prepared: Prepared, startKey: AvItem | undefined, limit: number | undefined): Promise<ReadPageOutput> {
    const input: ReadInput = { ...prepared.input, ...(startKey ? { ExclusiveStartKey: startKey } : {}), ...(limit ? { Limit: limit } : {}) };
    try {
      return (prepared.kind === 'query' ? await this.#client.Query(input) : await this.#client.Scan(input)) as ReadPageOutput;
    } catch (err) {
      throw mapBackendError(err);
    }
  }

  async #collect(model: ModelDef, prepared: Prepared, options: ReadOptions): Promise<PageResult> {
    const limit = options.count ? undefined : (options.limit ?? DEFAULT_LIMIT);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw invalid('limit must be a positive integer');
    let budget = pageBudget(options.pages, options.count ? 'all' : DEFAULT_PAGES);
    let key = startKey(prepared, options.cursor);
    const result: PageResult = { items: [], count: 0, scannedCount: 0 };
    do {
      const remaining = limit === undefined ? undefined : limit - result.items.length;
      const page = await this.#page(prepared, key, remaining);
      result.count += page.Count ?? 0;
      result.scannedCount += page.ScannedCount ?? 0;
      result.items.push(...(await readItems(this.#crypto, model, page.Items ?? [])));
      key = page.LastEvaluatedKey;
      budget -= 1;
    } while (key && budget > 0 && (limit === undefined || result.items.length < limit));
    if (key) result.cursor = encodeCursor({ lastKey: key, ...prepared.cursorContext });
    if (options.count) result.items = [];
    return result;
  }

  async *#stream(model: ModelDef, prepared: Prepared, options: ReadOptions): AsyncGenerator<LogicalItem> {
    let key = startKey(prepared, options.cursor);
    let left = options.limit ?? Number.POSITIVE_INFINITY;
    do {
      const page = await this.#page(prepared, key, undefined);
      for (const item of page.Items ?? []) {
        if (left-- <= 0) return;
        yield await readItem(this.#crypto, model, item);
      }
      key = page.LastEvaluatedKey;
    } while (key);
  }

  /** Parallel scan for export: segments are read concurrently, a bounded number at a time. */
  async *#segments(model: ModelDef, prepared: Prepared, options: ReadOptions, total: number): AsyncGenerator<LogicalItem> {
    const concurrency = Math.min(total, 4);
    const iterators = new Map<number, AsyncIterator<LogicalItem>>();
    let next = 0;
    const open = () => {
      const segment = next++;
      const segmentPrepared = { ...prepared, input: { ...prepared.input, Segment: segment, TotalSegments: total } };
      iterators.set(segment, this.#stream(model, segmentPrepared, { ...options, cursor: undefined, limit: undefined })[Symbol.asyncIterator]());
    };
    while (iterators.size < concurrency && next < total) open();
    const pending = new Map<number, Promise<[number, IteratorResult<LogicalItem>]>>();
    const pull = (segment: number) => pending.set(segment, iterators.get(segment)!.next().then((r) => [segment, r]));
    for (const segment of iterators.keys()) pull(segment);
    let left = options.limit ?? Number.POSITIVE_INFINITY;
    while (pending.size > 0) {
      const [segment, result] = await Promise.race(pending.values());
      pending.delete(segment);
      if (result.done) {
        iterators.delete(segment);
        if (next < total) {
          open();
          pull(next - 1);
        }
        continue;
      }
      if (left-- <= 0) return;
      yield result.value;
      pull(segment);
    }
  }
}
