import type { DynamoDBClient, GlobalSecondaryIndex, LocalSecondaryIndex, Projection } from '@aws-sdk/client-dynamodb';
import type { DmsIndex, DmsKey } from '../dms/types.js';
import type { TableDef } from '../model/index.js';
import { BootError } from './backend.js';
import { mapBounded } from './bounded.js';

/** Tables described or created at once at boot (50 models one by one took ~16 s on dynalite). */
const TABLE_CONCURRENCY = 8;

export interface EnsureTablesOptions {
  /** Create missing tables (always for the embedded store; `--create-tables` for an external one). */
  readonly create: boolean;
  /** Also enable the TTL attribute on created tables (the embedded store has no TTL API). */
  readonly enableTtl: boolean;
}

export interface EnsureTablesResult {
  readonly created: string[];
  readonly existing: string[];
  /** Created tables whose TTL could not be turned on: the endpoint has no UpdateTimeToLive (dynalite). */
  readonly withoutTtl: string[];
}

/**
 * Where tables are checked and made: existence through the lean client's DescribeTable (no SDK at boot without
 * --create-tables), creation through the SDK's control plane, loaded only then.
 */
export interface TableTarget {
  readonly describe: { DescribeTable(input: { TableName: string }): Promise<unknown> };
  control(): Promise<DynamoDBClient>;
  /** How boot errors name the store: its endpoint, or "DynamoDB in <region>". */
  readonly where: string;
}

let sdk: Promise<typeof import('@aws-sdk/client-dynamodb')> | undefined;
const controlPlane = () => (sdk ??= import('@aws-sdk/client-dynamodb'));

export class MissingTablesError extends Error {
  readonly tables: string[];
  constructor(tables: string[]) {
    super(`DynamoDB tables missing: ${tables.join(', ')} (create them, or start with --create-tables)`);
    this.tables = tables;
  }
}

const keySchema = (partition: DmsKey, sort: DmsKey | undefined) => [
  { AttributeName: partition.attribute, KeyType: 'HASH' as const },
  ...(sort ? [{ AttributeName: sort.attribute, KeyType: 'RANGE' as const }] : []),
];

function projection(index: DmsIndex): Projection {
  const type = index.projection?.type ?? 'ALL';
  return type === 'INCLUDE'
    ? { ProjectionType: type, NonKeyAttributes: index.projection?.fields ?? [] }
    : { ProjectionType: type };
}

async function tableExists(target: TableTarget, name: string): Promise<boolean> {
  try {
    await target.describe.DescribeTable({ TableName: name });
    return true;
  } catch (err) {
    if ((err as Error).name === 'ResourceNotFoundException') return false;
    throw err;
  }
}

const indexesOfType = (table: TableDef, type: DmsIndex['type']): (GlobalSecondaryIndex & LocalSecondaryIndex)[] =>
  table.indexes
    .filter((i) => i.type === type)
    .map((i) => ({ IndexName: i.name, KeySchema: keySchema(i.partition, i.sort), Projection: projection(i) }));

const waitUntilActive = async (client: DynamoDBClient, name: string) =>
  (await controlPlane()).waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1, maxDelay: 2 }, { TableName: name });

/** Creates the table; false when its TTL could not be turned on because the endpoint lacks UpdateTimeToLive. */
async function createTable(client: DynamoDBClient, table: TableDef, enableTtl: boolean): Promise<boolean> {
  const { CreateTableCommand, UpdateTimeToLiveCommand } = await controlPlane();
  const gsis = indexesOfType(table, 'GSI');
  const lsis = indexesOfType(table, 'LSI');
  await client.send(
    new CreateTableCommand({
      TableName: table.name,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: keySchema(table.partition, table.sort),
      AttributeDefinitions: [...table.attributeTypes].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType })),
      ...(gsis.length > 0 ? { GlobalSecondaryIndexes: gsis } : {}),
      ...(lsis.length > 0 ? { LocalSecondaryIndexes: lsis } : {}),
    }),
  );
  await waitUntilActive(client, table.name);
  if (enableTtl && table.ttlAttribute) {
    try {
      await client.send(
        new UpdateTimeToLiveCommand({
          TableName: table.name,
          TimeToLiveSpecification: { AttributeName: table.ttlAttribute, Enabled: true },
        }),
      );
    } catch (err) {
      // A DynamoDB-compatible endpoint without TTL (dynalite served over HTTP): the table works, items do not expire.
      if ((err as Error).name === 'UnknownOperationException') return false;
      throw err;
    }
  }
  return true;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);
const REFUSED_CREDENTIALS = new Set(['UnrecognizedClientException', 'InvalidSignatureException', 'AccessDeniedException', 'ExpiredTokenException', 'InvalidClientTokenId']);

/** The first call to DynamoDB failed at boot: one line saying what to fix (the SDK's own error is the cause). */
function bootFailure(target: TableTarget, err: unknown): Error {
  if (err instanceof MissingTablesError) return err;
  const e = err as { name?: string; code?: string; message?: string };
  const where = target.where;
  if (e.name === 'CredentialsProviderError') {
    return new BootError(
      `no AWS credentials for ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an IAM role provides them (or use --backend embedded for local work)`,
      { cause: err },
    );
  }
  if (UNREACHABLE.has(e.code ?? '') || UNREACHABLE.has(e.name ?? '')) {
    return new BootError(`${where} is unreachable (${e.code ?? e.name}): check --dynamodb-endpoint / DYNAMODB_ENDPOINT and that the service is listening`, { cause: err });
  }
  if (e.name === 'TimeoutError') {
    return new BootError(`${where} did not answer in time: check --dynamodb-endpoint / DYNAMODB_ENDPOINT and the network`, { cause: err });
  }
  if (REFUSED_CREDENTIALS.has(e.name ?? '')) {
    return new BootError(`${where} refused the credentials (${e.name}): check the access key, secret and session token, and the IAM policy`, { cause: err });
  }
  return new BootError(`checking the tables at ${where} failed: ${e.name ?? 'Error'}: ${e.message ?? String(err)}`, { cause: err });
}

/** Make sure every table exists; idempotent, existing tables are kept as they are. Failures are BootErrors. */
export async function ensureTables(
  target: TableTarget,
  tables: readonly TableDef[],
  options: EnsureTablesOptions,
): Promise<EnsureTablesResult> {
  try {
    return await ensureTablesOnce(target, tables, options);
  } catch (err) {
    throw bootFailure(target, err);
  }
}

async function ensureTablesOnce(
  target: TableTarget,
  tables: readonly TableDef[],
  options: EnsureTablesOptions,
): Promise<EnsureTablesResult> {
  const exists = await mapBounded(tables, TABLE_CONCURRENCY, (table) => tableExists(target, table.name));
  const existing = tables.filter((_, i) => exists[i]).map((t) => t.name);
  const missing = tables.filter((_, i) => !exists[i]);
  if (missing.length > 0 && !options.create) throw new MissingTablesError(missing.map((t) => t.name));
  const client = missing.length > 0 ? await target.control() : undefined;
  const withoutTtl: string[] = [];
  await mapBounded(missing, TABLE_CONCURRENCY, async (table) => {
    try {
      if (!(await createTable(client!, table, options.enableTtl))) withoutTtl.push(table.name);
    } catch (err) {
      // Another process created it between our DescribeTable and CreateTable: it exists now, which is all we need.
      if ((err as Error).name !== 'ResourceInUseException') throw err;
      await waitUntilActive(client!, table.name);
    }
  });
  return { created: missing.map((t) => t.name), existing, withoutTtl };
}
