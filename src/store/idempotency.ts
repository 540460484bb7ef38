import type { AttributeValue } from '../codec/attribute-value.js';
import type { DataPlane, GetItemOutput, ReadPageOutput, TransactWriteEntry } from './dataplane/port.js';
import type { TableDef } from '../model/index.js';

export const DEFAULT_IDEMPOTENCY_TABLE = 'dynamorm_sidecar_idempotency';
/** How long a committed transaction's outcome is kept for retries under its idempotency key. */
export const IDEMPOTENCY_WINDOW_SECONDS = 24 * 60 * 60;
const PK = 'pk';
const EXPIRES = 'expiresAt';

/** Where one set of credentials keeps its idempotency records. */
export interface IdempotencyScope {
  /** The sidecar-owned table (`--idempotency-table`), in the account these credentials reach. */
  readonly table: string;
  /** The partner, when the credentials are a partner's: partners sharing an account never see each other's keys. */
  readonly partner?: string | undefined;
}

/** A committed transaction, as its idempotency record remembers it. */
export interface IdempotencyRecord {
  readonly fingerprint: string;
  readonly committed: number;
  readonly expiresAt: number;
}

/** The table's shape: a string partition key and a TTL attribute (created with `--create-tables`, always when embedded). */
export function idempotencyTableDef(name: string): TableDef {
  return {
    name,
    partition: { attribute: PK, type: 'S' },
    sort: undefined,
    indexes: [],
    ttlAttribute: EXPIRES,
    attributeTypes: new Map([[PK, 'S']]),
  };
}

function recordKey(scope: IdempotencyScope, key: string): Record<string, AttributeValue> {
  const owner = scope.partner === undefined ? 'own' : `partner/${encodeURIComponent(scope.partner)}`;
  return { [PK]: { S: `${owner}/${key}` } };
}

/**
 * The record a keyed transaction also puts: it can only be written if no live record holds the key, so of two
 * transactions under one key at most one commits, and the loser's cancellation names this action.
 */
export function recordPut(scope: IdempotencyScope, key: string, fingerprint: string, committed: number, nowMs: number): TransactWriteEntry {
  const now = Math.floor(nowMs / 1000);
  return {
    Put: {
      TableName: scope.table,
      Item: {
        ...recordKey(scope, key),
        fingerprint: { S: fingerprint },
        committed: { N: String(committed) },
        createdAt: { S: new Date(nowMs).toISOString() },
        [EXPIRES]: { N: String(now + IDEMPOTENCY_WINDOW_SECONDS) },
      },
      // TTL deletes lazily (up to days late): an expired record counts as absent.
      ConditionExpression: 'attribute_not_exists(#pk) OR #exp < :now',
      ExpressionAttributeNames: { '#pk': PK, '#exp': EXPIRES },
      ExpressionAttributeValues: { ':now': { N: String(now) } },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    },
  };
}

function parse(item: Record<string, AttributeValue> | undefined, nowMs: number): IdempotencyRecord | undefined {
  const fingerprint = item?.fingerprint?.S;
  const committed = Number(item?.committed?.N);
  const expiresAt = Number(item?.[EXPIRES]?.N);
  if (fingerprint === undefined || !Number.isFinite(committed) || !(expiresAt >= Math.floor(nowMs / 1000))) return undefined;
  return { fingerprint, committed, expiresAt };
}

/** The live record under `key`: from the cancellation reason when the backend returned it, else read consistently. */
export async function readRecord(
  client: DataPlane,
  scope: IdempotencyScope,
  key: string,
  fromReason: Record<string, AttributeValue> | undefined,
  nowMs: number,
): Promise<IdempotencyRecord | undefined> {
  if (fromReason) return parse(fromReason, nowMs);
  const { Item } = (await client.GetItem({ TableName: scope.table, Key: recordKey(scope, key), ConsistentRead: true })) as GetItemOutput;
  return parse(Item, nowMs);
}

/**
 * Deletes expired records (the embedded store has no TTL, so its table would only grow); returns how many. Each
 * delete re-checks the expiry, so a record written since the scan stays.
 */
export async function sweepExpired(client: DataPlane, table: string, nowMs: number): Promise<number> {
  const now = { ':now': { N: String(Math.floor(nowMs / 1000)) } };
  const names = { '#exp': EXPIRES };
  let swept = 0;
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = (await client.Scan({
      TableName: table,
      FilterExpression: '#exp < :now',
      ProjectionExpression: '#pk',
      ExpressionAttributeNames: { ...names, '#pk': PK },
      ExpressionAttributeValues: now,
      ...(start ? { ExclusiveStartKey: start } : {}),
    })) as ReadPageOutput;
    for (const item of page.Items ?? []) {
      await client
        .DeleteItem({ TableName: table, Key: { [PK]: item[PK]! }, ConditionExpression: '#exp < :now', ExpressionAttributeNames: names, ExpressionAttributeValues: now })
        .then(() => swept++, (err: Error) => {
          if (err.name !== 'ConditionalCheckFailedException') throw err;
        });
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return swept;
}
