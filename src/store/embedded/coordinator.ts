import type { AttributeValue } from '../../codec/attribute-value.js';
import { isConditionFailure } from '../backend-errors.js';
import { DataPlaneError, type CancellationReason, type DataPlane, type GetItemOutput, type Json } from '../dataplane/port.js';
import type { IntentJournal, IntentEntry } from './journal.js';

type Item = Record<string, AttributeValue>;

/** The store itself, bypassing the transaction lock (the caller already holds it): single-item calls and DescribeTable. */
export type RawStore = Pick<DataPlane, 'GetItem' | 'PutItem' | 'DeleteItem' | 'UpdateItem'> & {
  DescribeTable(input: Json): Promise<Json>;
};

type TransactWriteItem = Partial<Record<ActionKind, ActionSpec>>;
type TransactGetItem = { Get?: ActionSpec & { ProjectionExpression?: string } };
type TransactWriteInput = { TransactItems?: TransactWriteItem[]; ClientRequestToken?: string };
type TransactGetInput = { TransactItems?: TransactGetItem[] };
type ItemResponse = { Item?: Item };

export const MAX_TRANSACT_ITEMS = 100;
const ACTIONS = ['ConditionCheck', 'Put', 'Delete', 'Update'] as const;
type ActionKind = (typeof ACTIONS)[number];

/** The fields of every action kind that the coordinator reads (each kind's SDK shape is a subset). */
interface ActionSpec {
  readonly TableName?: string | undefined;
  readonly Key?: Item | undefined;
  readonly Item?: Item | undefined;
  readonly UpdateExpression?: string | undefined;
  readonly ConditionExpression?: string | undefined;
  readonly ExpressionAttributeNames?: Record<string, string> | undefined;
  readonly ExpressionAttributeValues?: Item | undefined;
  readonly ReturnValuesOnConditionCheckFailure?: string | undefined;
}

interface Action {
  readonly kind: ActionKind;
  readonly table: string;
  readonly key: Item;
  readonly spec: ActionSpec;
}

interface Staged extends Action {
  /** The item before the transaction; undefined when it did not exist. */
  readonly before: Item | undefined;
}

// ---------------------------------------------------------------------------------------------- errors

export function validationError(message: string): DataPlaneError {
  return new DataPlaneError('ValidationException', message, { statusCode: 400 });
}

function cancelled(reasons: CancellationReason[]): DataPlaneError {
  const codes = reasons.map((r) => r.Code).join(', ');
  return new DataPlaneError('TransactionCanceledException', `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes}]`, {
    statusCode: 400,
    CancellationReasons: reasons,
  });
}

function mismatch(): DataPlaneError {
  return new DataPlaneError(
    'IdempotentParameterMismatchException',
    'Request parameters do not match the parameters of the original request with the same ClientRequestToken',
    { statusCode: 400 },
  );
}

// ---------------------------------------------------------------------------------------------- stable keys

/** Deterministic text of a request value: object keys sorted, binary as base64. */
export function stableStringify(value: unknown): string {
  if (value instanceof Uint8Array) return JSON.stringify({ $b: Buffer.from(value).toString('base64') });
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value instanceof Set) return stableStringify([...value]);
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function fingerprint(input: TransactWriteInput): string {
  const { ClientRequestToken: _token, ...rest } = input;
  return stableStringify(rest);
}

// ---------------------------------------------------------------------------------------------- idempotency

export interface IdempotencyOptions {
  readonly ttlMs?: number;
  readonly maxEntries?: number;
  readonly now?: () => number;
}

/** How a completed transaction ended: replaying it returns or throws the same. */
export type Outcome = { readonly ok: true } | { readonly ok: false; readonly error: Error };

interface TokenEntry {
  readonly fingerprint: string;
  readonly outcome: Outcome;
  readonly expiresAt: number;
}

/** ClientRequestToken → outcome for a fixed window, bounded: the oldest entries go first. */
export class IdempotencyCache {
  private readonly entries = new Map<string, TokenEntry>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: IdempotencyOptions = {}) {
    this.ttlMs = options.ttlMs ?? 10 * 60_000;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The recorded outcome for `token`, undefined if unknown or expired; throws when the request differs. */
  lookup(token: string, print: string): Outcome | undefined {
    this.expire();
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (entry.fingerprint !== print) throw mismatch();
    return entry.outcome;
  }

  remember(token: string, print: string, outcome: Outcome): void {
    this.entries.delete(token);
    while (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { fingerprint: print, outcome, expiresAt: this.now() + this.ttlMs });
  }

  // Every entry lives for the same ttl, so insertion order is expiry order.
  private expire(): void {
    const now = this.now();
    for (const [token, entry] of this.entries) {
      if (entry.expiresAt > now) break;
      this.entries.delete(token);
    }
  }
}

// ---------------------------------------------------------------------------------------------- validation

const camel = (name: string): string => name.charAt(0).toLowerCase() + name.slice(1);

function constraintError(value: string, path: string, constraint: string): DataPlaneError {
  return validationError(`1 validation error detected: Value ${value} at '${path}' failed to satisfy constraint: Member must ${constraint}`);
}

function assertCount(items: readonly unknown[] | undefined): asserts items is readonly unknown[] {
  if (!Array.isArray(items) || items.length === 0) {
    throw constraintError('[]', 'transactItems', 'have length greater than or equal to 1');
  }
  if (items.length > MAX_TRANSACT_ITEMS) {
    throw constraintError(`of length ${items.length}`, 'transactItems', `have length less than or equal to ${MAX_TRANSACT_ITEMS}`);
  }
}

function requireField(spec: ActionSpec, field: keyof ActionSpec, where: string): void {
  if (spec[field] == null) throw constraintError('null', `${where}.${camel(field)}`, 'not be null');
}

const PLACEHOLDER = /[#:][A-Za-z0-9_]+/g;

/** DynamoDB rejects names/values that no expression of the action uses; so do we, before anything is written. */
function assertPlaceholdersUsed(spec: ActionSpec, expressions: readonly (string | undefined)[]): void {
  const used = new Set(expressions.flatMap((e) => e?.match(PLACEHOLDER) ?? []));
  const maps = { ExpressionAttributeNames: spec.ExpressionAttributeNames, ExpressionAttributeValues: spec.ExpressionAttributeValues };
  for (const [field, map] of Object.entries(maps)) {
    const unused = Object.keys(map ?? {}).filter((p) => !used.has(p));
    if (unused.length > 0) throw validationError(`Value provided in ${field} unused in expressions: keys: {${unused.join(', ')}}`);
  }
}

const REQUIRED: Record<ActionKind, readonly (keyof ActionSpec)[]> = {
  ConditionCheck: ['TableName', 'Key', 'ConditionExpression'],
  Put: ['TableName', 'Item'],
  Delete: ['TableName', 'Key'],
  Update: ['TableName', 'Key', 'UpdateExpression'],
};

function actionOf(item: TransactWriteItem, index: number): { kind: ActionKind; spec: ActionSpec } {
  const present = ACTIONS.filter((kind) => item?.[kind] != null);
  if (present.length !== 1) throw validationError('TransactItems can only contain one of Check, Put, Update or Delete');
  const kind = present[0];
  const spec = item[kind] as ActionSpec;
  for (const field of REQUIRED[kind]) requireField(spec, field, `transactItems.${index + 1}.member.${camel(kind)}`);
  assertPlaceholdersUsed(spec, [spec.ConditionExpression, spec.UpdateExpression]);
  return { kind, spec };
}

function validateGet(item: TransactGetItem, index: number): void {
  const where = `transactItems.${index + 1}.member.get`;
  const spec = item?.Get;
  if (!spec) throw constraintError('null', where, 'not be null');
  for (const field of ['TableName', 'Key'] as const) requireField(spec, field, where);
  assertPlaceholdersUsed(spec, [spec.ProjectionExpression]);
}

// ---------------------------------------------------------------------------------------------- expressions

/** The names/values of `spec` that `expression` references (the rest would be rejected as unused). */
function placeholdersFor(expression: string, spec: ActionSpec): Pick<ActionSpec, 'ExpressionAttributeNames' | 'ExpressionAttributeValues'> {
  const used = new Set(expression.match(PLACEHOLDER) ?? []);
  const pick = <V>(map: Record<string, V> | undefined): Record<string, V> | undefined => {
    const kept = Object.entries(map ?? {}).filter(([p]) => used.has(p));
    return kept.length > 0 ? Object.fromEntries(kept) : undefined;
  };
  const names = pick(spec.ExpressionAttributeNames);
  const values = pick(spec.ExpressionAttributeValues);
  return { ...(names ? { ExpressionAttributeNames: names } : {}), ...(values ? { ExpressionAttributeValues: values } : {}) };
}

// ---------------------------------------------------------------------------------------------- coordinator

/**
 * Runs TransactWriteItems / TransactGetItems over single-item commands. The caller must hold the store's lock for
 * the whole call — exclusive for transactWrite, shared for transactGet: isolation comes from that lock, atomicity
 * from checking every condition before the first write and restoring snapshots if a write fails.
 */
export class TransactionCoordinator {
  constructor(
    private readonly store: RawStore,
    private readonly tokens: IdempotencyCache = new IdempotencyCache(),
    /** With a data directory: intents made durable before the first write, so a crash can be undone at boot. */
    private readonly journal?: IntentJournal,
  ) {}

  /**
   * Boot, before serving: every transaction a crash interrupted is rolled back to its before-images (what the
   * caller was last acknowledged). Restoring is idempotent, so a crash during recovery is recovered next boot.
   */
  async recover(): Promise<number> {
    if (!this.journal) return 0;
    const pending = await this.journal.pending();
    for (const intent of pending) {
      for (const entry of intent.entries) await this.restore({ table: entry.table, key: entry.key, before: entry.before });
      await this.journal.finish(intent.id);
    }
    return pending.length;
  }

  async transactWrite(input: TransactWriteInput): Promise<Json> {
    assertCount(input?.TransactItems);
    const parsed = input.TransactItems!.map(actionOf);
    const token = input.ClientRequestToken;
    if (token === undefined) return this.execute(parsed);
    const print = fingerprint(input);
    const previous = this.tokens.lookup(token, print);
    if (previous) return replay(previous);
    const outcome = await this.decide(parsed);
    this.tokens.remember(token, print, outcome);
    return replay(outcome);
  }

  async transactGet(input: TransactGetInput): Promise<Json> {
    assertCount(input?.TransactItems);
    input.TransactItems!.forEach(validateGet);
    const Responses = await Promise.all(input.TransactItems!.map(({ Get }) => this.readOne(Get!)));
    return { Responses };
  }

  private async readOne(get: NonNullable<TransactGetItem['Get']>): Promise<ItemResponse> {
    const { Item } = (await this.store.GetItem({ ...get, ConsistentRead: true })) as GetItemOutput;
    return Item ? { Item } : {};
  }

  /** Runs the transaction, turning a cancellation (a decided outcome) into an Outcome; other errors propagate. */
  private async decide(parsed: { kind: ActionKind; spec: ActionSpec }[]): Promise<Outcome> {
    try {
      await this.execute(parsed);
      return { ok: true };
    } catch (err) {
      if (err instanceof DataPlaneError && err.name === 'TransactionCanceledException') return { ok: false, error: err };
      throw err;
    }
  }

  private async execute(parsed: { kind: ActionKind; spec: ActionSpec }[]): Promise<Json> {
    const actions = await this.resolveKeys(parsed);
    const staged = await Promise.all(actions.map((a) => this.snapshot(a)));
    const reasons = await this.checkAll(staged);
    if (reasons.some((r) => r.Code !== 'None')) throw cancelled(reasons);
    const writes = staged.filter((s) => s.kind !== 'ConditionCheck');
    const intent = await this.journal?.begin(writes.map(({ table, key, before }): IntentEntry => ({ table, key, before })));
    await this.applyAll(staged, intent);
    if (intent !== undefined) await this.journal!.finish(intent);
    return {};
  }

  // ---- keys

  private async resolveKeys(parsed: { kind: ActionKind; spec: ActionSpec }[]): Promise<Action[]> {
    const schemas = new Map<string, Promise<string[]>>();
    const keyNames = (table: string): Promise<string[]> => {
      if (!schemas.has(table)) schemas.set(table, this.keyAttributes(table));
      return schemas.get(table)!;
    };
    const actions = await Promise.all(
      parsed.map(async ({ kind, spec }) => {
        const table = spec.TableName!;
        const key = kind === 'Put' ? pickKey(spec.Item!, await keyNames(table)) : spec.Key!;
        return { kind, spec, table, key };
      }),
    );
    assertDistinctItems(actions);
    return actions;
  }

  private async keyAttributes(table: string): Promise<string[]> {
    const { Table } = (await this.store.DescribeTable({ TableName: table })) as { Table?: { KeySchema?: { AttributeName: string }[] } };
    return (Table?.KeySchema ?? []).map((k) => k.AttributeName);
  }

  // ---- phase 1: snapshot and check, nothing changes

  private async snapshot(action: Action): Promise<Staged> {
    const { Item } = (await this.store.GetItem({ TableName: action.table, Key: action.key, ConsistentRead: true })) as GetItemOutput;
    return { ...action, before: Item };
  }

  private async checkAll(staged: Staged[]): Promise<CancellationReason[]> {
    const reasons: CancellationReason[] = [];
    for (const s of staged) reasons.push(await this.check(s));
    return reasons;
  }

  /** Lets the store evaluate the condition with a write that changes nothing: the snapshot itself, or a missing key. */
  private async check(s: Staged): Promise<CancellationReason> {
    const expression = s.spec.ConditionExpression;
    if (!expression) return { Code: 'None' };
    const condition = { TableName: s.table, ConditionExpression: expression, ...placeholdersFor(expression, s.spec) };
    try {
      await (s.before
        ? this.store.PutItem({ ...condition, Item: s.before })
        : this.store.DeleteItem({ ...condition, Key: s.key }));
      return { Code: 'None' };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const withItem = s.before && s.spec.ReturnValuesOnConditionCheckFailure === 'ALL_OLD';
      return { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed', ...(withItem ? { Item: s.before } : {}) };
    }
  }

  // ---- phase 2: apply in order, restore on failure

  private async applyAll(staged: Staged[], intent: string | undefined): Promise<void> {
    const applied: Staged[] = [];
    try {
      for (const s of staged) {
        // Recorded before the write: a write that failed after changing the item must be restored too.
        applied.push(s);
        await this.apply(s);
      }
    } catch (err) {
      // A rollback that fails throws here, past finish(): the intent stays and the next boot restores the rest.
      await this.rollback(applied, err);
      if (intent !== undefined) await this.journal!.finish(intent);
      throw err;
    }
  }

  private async apply(s: Staged): Promise<void> {
    const TableName = s.table;
    switch (s.kind) {
      case 'Put':
        await this.store.PutItem({ TableName, Item: s.spec.Item! });
        return;
      case 'Delete':
        await this.store.DeleteItem({ TableName, Key: s.key });
        return;
      case 'Update': {
        const UpdateExpression = s.spec.UpdateExpression!;
        await this.store.UpdateItem({ TableName, Key: s.key, UpdateExpression, ...placeholdersFor(UpdateExpression, s.spec) });
        return;
      }
      case 'ConditionCheck':
        return;
    }
  }

  private async rollback(applied: Staged[], cause: unknown): Promise<void> {
    const failures: unknown[] = [];
    for (const s of [...applied].reverse()) {
      if (s.kind === 'ConditionCheck') continue;
      try {
        await this.restore(s);
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length > 0) {
      const message = `transaction failed (${(cause as Error)?.message}) and ${failures.length} item(s) could not be restored`;
      throw new DataPlaneError('InternalServerError', message, { statusCode: 500 });
    }
  }

  private async restore(s: Pick<Staged, 'table' | 'key' | 'before'>): Promise<void> {
    if (s.before) await this.store.PutItem({ TableName: s.table, Item: s.before });
    else await this.store.DeleteItem({ TableName: s.table, Key: s.key });
  }
}

function replay(outcome: Outcome): Json {
  if (!outcome.ok) throw outcome.error;
  return {};
}

function pickKey(item: Item, names: string[]): Item {
  const key: Item = {};
  for (const name of names) {
    if (item[name] === undefined) throw validationError('One or more parameter values were invalid: Missing the key ' + name + ' in the item');
    key[name] = item[name];
  }
  return key;
}

function assertDistinctItems(actions: Action[]): void {
  const seen = new Set<string>();
  for (const { table, key } of actions) {
    const id = `${table}\u0000${stableStringify(key)}`;
    if (seen.has(id)) throw validationError('Transaction request cannot include multiple operations on one item');
    seen.add(id);
  }
}
