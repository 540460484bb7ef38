// The lean data-plane client and @aws-sdk/client-dynamodb run the same seeded random sequence of the ten data-plane
// operations (failing conditions, cancelled transactions, oversized items included) against twin tables, on dynalite
// (over a Unix socket, as the embedded store is served) and on moto: every step must give the same result or the
// same error (name, message, cancellation reasons, returned item). dynalite has no transactions: those run on moto.
// A third run puts a fault proxy in front of dynalite: every fifth new request is throttled once (both clients must
// retry it to the same answer) and batches get part of their entries back as Unprocessed*.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as sdkModule from '@aws-sdk/client-dynamodb';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import t, { type Test } from 'tap';
import { dynamoClientConfig } from '../src/store/backend.js';
import { LeanDynamoClient } from '../src/store/dataplane/client.js';
import type { DataPlaneOperation, Json } from '../src/store/dataplane/port.js';
import { startMoto } from './helpers/moto.js';
import { prng } from './helpers/prng.js';
import { tools, withTool } from './helpers/tools.js';

const require = createRequire(import.meta.url);
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const LEAN = 'lean_twin';
const SDK = 'sdk_twin';
const SEED = 9;
const STEPS = 160;

type Step = { op: DataPlaneOperation; input: Json };

/** A seeded sequence of requests for table `T` (renamed per client). */
function sequence(seed: number, transactions: boolean): Step[] {
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <X>(xs: readonly X[]): X => xs[int(xs.length)]!;
  const key = () => ({ pk: { S: `p${int(4)}` }, sk: { S: `s${int(4)}` } });
  const value = () =>
    pick([
      { S: pick(['plain', 'ünïcødé 😀', 'x'.repeat(int(50) + 1)]) },
      { N: pick(['0', '-1.5', '12345678901234567890123456789012345678', String(int(1000))]) },
      { B: Buffer.from(`bin-${int(100)}`).toString('base64') },
      { BOOL: random() < 0.5 },
      { NULL: true },
      { SS: ['a', 'b', `c${int(9)}`] },
      { NS: ['1', '2.5'] },
      { L: [{ S: 'l' }, { N: '1' }, { M: { deep: { S: 'yes' } } }] },
      { M: { a: { S: 'm' }, n: { N: String(int(9)) } } },
    ]);
  const item = () => ({ ...key(), n: { N: String(int(10)) }, v: value(), ...(random() < 0.3 ? { w: value() } : {}) });
  const oversized = () => ({ ...key(), big: { S: 'y'.repeat(400 * 1024 + 10) } });
  const makers: (() => Step)[] = [
    () => ({ op: 'PutItem', input: { TableName: 'T', Item: item() } }),
    () => ({
      op: 'PutItem',
      input: { TableName: 'T', Item: item(), ConditionExpression: 'attribute_not_exists(pk)', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' },
    }),
    () => ({ op: 'GetItem', input: { TableName: 'T', Key: key(), ConsistentRead: true } }),
    () => {
      const conditional = random() < 0.4;
      return {
        op: 'UpdateItem',
        input: {
          TableName: 'T',
          Key: key(),
          UpdateExpression: 'SET n = if_not_exists(n, :zero) + :one, tag = :tag',
          ...(conditional ? { ConditionExpression: 'n < :limit' } : {}),
          ExpressionAttributeValues: { ':zero': { N: '0' }, ':one': { N: '1' }, ':tag': value(), ...(conditional ? { ':limit': { N: String(int(8)) } } : {}) },
          ReturnValues: pick(['ALL_NEW', 'UPDATED_OLD', 'NONE']),
        },
      };
    },
    () => ({ op: 'DeleteItem', input: { TableName: 'T', Key: key(), ReturnValues: 'ALL_OLD', ...(random() < 0.3 ? { ConditionExpression: 'attribute_exists(v)' } : {}) } }),
    () => ({
      op: 'Query',
      input: {
        TableName: 'T',
        KeyConditionExpression: 'pk = :p',
        ExpressionAttributeValues: { ':p': { S: `p${int(4)}` } },
        ScanIndexForward: random() < 0.5,
        ...(random() < 0.5 ? { Limit: 1 + int(3) } : {}),
      },
    }),
    () => ({ op: 'Scan', input: { TableName: 'T', ...(random() < 0.5 ? { Limit: 1 + int(5) } : {}) } }),
    () => {
      const keys = new Map<string, Json>();
      for (let i = 0; i < 1 + int(5); i++) {
        const k = key();
        keys.set(JSON.stringify(k), k);
      }
      return { op: 'BatchGetItem', input: { RequestItems: { T: { Keys: [...keys.values()], ConsistentRead: true } } } };
    },
    () => {
      const writes = new Map<string, Json>();
      for (let i = 0; i < 1 + int(6); i++) {
        const it = item();
        const k = { pk: it.pk, sk: it.sk };
        writes.set(JSON.stringify(k), random() < 0.7 ? { PutRequest: { Item: it } } : { DeleteRequest: { Key: k } });
      }
      return { op: 'BatchWriteItem', input: { RequestItems: { T: [...writes.values()] } } };
    },
  ];
  if (transactions) {
    makers.push(
      () => ({ op: 'TransactGetItems', input: { TransactItems: [{ Get: { TableName: 'T', Key: { pk: { S: 'p0' }, sk: { S: 's0' } } } }, { Get: { TableName: 'T', Key: { pk: { S: 'p1' }, sk: { S: 's1' } } } }] } }),
      () => ({
        op: 'TransactWriteItems',
        input: {
          TransactItems: [
            { Put: { TableName: 'T', Item: { ...item(), pk: { S: 'p2' }, sk: { S: `s${int(4)}` } } } },
            {
              ConditionCheck: {
                TableName: 'T',
                Key: { pk: { S: 'p3' }, sk: { S: `s${int(4)}` } },
                ConditionExpression: random() < 0.5 ? 'attribute_exists(pk)' : 'attribute_not_exists(pk)',
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            },
          ],
        },
      }),
    );
  }
  return Array.from({ length: STEPS }, (_, i) => {
    // Now and then an item over DynamoDB's 400 KB limit.
    const step: Step = i % 40 === 7 ? { op: 'PutItem', input: { TableName: 'T', Item: oversized() } } : pick(makers)();
    return { op: step.op, input: JSON.parse(JSON.stringify(step.input)) as Json };
  });
}

/** The step for one twin table: `T` renamed, in a request and (for comparison) back again in an answer. */
const forTable = (input: Json, table: string): Json => JSON.parse(JSON.stringify(input).replaceAll('"T"', JSON.stringify(table))) as Json;
const normalizeNames = (text: string) => text.replaceAll(LEAN, 'T').replaceAll(SDK, 'T');

/** SDK inputs carry binaries as bytes; its outputs do too. Both sides are compared as the JSON protocol writes them. */
function toSdk(value: unknown, parentKey = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => (parentKey === 'BS' ? Buffer.from(v as string, 'base64') : toSdk(v)));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'B' && typeof v === 'string' ? Buffer.from(v, 'base64') : toSdk(v, k)]));
  }
  return value;
}
function fromSdk(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(fromSdk);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([k, v]) => k !== '$metadata' && v !== undefined).map(([k, v]) => [k, fromSdk(v)]));
  }
  return value;
}

function describeError(err: unknown): Json {
  const e = err as { name: string; message: string; CancellationReasons?: unknown; Item?: unknown };
  return { error: e.name, message: normalizeNames(e.message), CancellationReasons: fromSdk(e.CancellationReasons) ?? null, Item: fromSdk(e.Item) ?? null };
}

/** Batch answers list items in the backend's order: sorted here so order alone is no difference. */
function canonical(output: unknown): unknown {
  const out = JSON.parse(normalizeNames(JSON.stringify(output))) as { Responses?: Record<string, unknown[]> };
  if (out.Responses && !Array.isArray(out.Responses)) {
    for (const table of Object.keys(out.Responses)) out.Responses[table] = out.Responses[table]!.map((i) => JSON.stringify(i)).sort();
  }
  return out;
}

async function createTwins(sdk: DynamoDBClient): Promise<void> {
  for (const TableName of [LEAN, SDK]) {
    await sdk.send(
      new CreateTableCommand({
        TableName,
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  }
}

async function differential(t: Test, lean: LeanDynamoClient, sdk: DynamoDBClient, transactions: boolean, steps = STEPS): Promise<Map<string, number>> {
  await createTwins(sdk);
  const seen = new Map<string, number>();
  let same = 0;
  for (const [i, step] of sequence(SEED, transactions).slice(0, steps).entries()) {
    const viaLean = await lean.call(step.op, forTable(step.input, LEAN)).then(canonical, describeError);
    const Command = (sdkModule as unknown as Record<string, new (input: unknown) => sdkModule.GetItemCommand>)[`${step.op}Command`]!;
    const viaSdk = await sdk.send(new Command(toSdk(forTable(step.input, SDK)))).then((out) => canonical(fromSdk(out)), describeError);
    const outcome = `${step.op}:${'error' in viaLean ? String(viaLean.error) : 'ok'}`;
    seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
    if (t.same(viaLean, viaSdk, `step ${i} ${step.op}`, { diagnostic: true })) same++;
  }
  t.equal(same, steps, 'every step gave the same answer');
  const outcomes = [...seen.keys()];
  const ops = new Set(outcomes.map((o) => o.split(':')[0]));
  t.equal(ops.size, transactions ? 10 : 8, `every operation ran (${[...ops].join(', ')})`);
  t.ok(outcomes.includes('PutItem:ConditionalCheckFailedException'), 'failed conditions were among them');
  t.ok(outcomes.includes('PutItem:ValidationException'), 'an oversized item was refused by both');
  if (transactions) t.ok(outcomes.includes('TransactWriteItems:TransactionCanceledException'), 'a transaction was cancelled');
  t.comment([...seen].map(([k, v]) => `${k} ${v}`).join(', '));
  return seen;
}

async function startDynalite(t: Test): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'differential-'));
  const socketPath = join(dir, 'store.sock');
  const server = (require('dynalite') as (o: object) => Server)({ createTableMs: 0 });
  server.listen(socketPath);
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return socketPath;
}

const readBody = async (stream: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

interface FaultStats {
  throttled: number;
  unprocessed: number;
}

/**
 * Between the clients and dynalite: per client (told apart by user agent), every fifth new request (a repeat of the
 * previous body is a retry) is answered 400 ProvisionedThroughputExceededException; a batch of more than one entry per
 * table has its second half held back and returned as UnprocessedItems / UnprocessedKeys.
 */
async function startFaultProxy(t: Test, socketPath: string): Promise<{ endpoint: string; stats: FaultStats }> {
  const stats: FaultStats = { throttled: 0, unprocessed: 0 };
  const clients = new Map<string, { last: string; count: number }>();
  const forward = (req: IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const headers = { ...req.headers, 'content-length': String(body.length) };
      const out = httpRequest({ socketPath, method: 'POST', path: '/', headers }, async (res) => resolve({ status: res.statusCode ?? 0, body: await readBody(res) }));
      out.on('error', reject);
      out.end(body);
    });
  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    const reply = (status: number, data: Buffer) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': data.length, 'x-amz-crc32': String(crc32(data) >>> 0) });
      res.end(data);
    };
    const op = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    const who = String(req.headers['user-agent']).startsWith('dynamorm-sidecar/') ? 'lean' : 'sdk';
    const client = clients.get(who) ?? { last: '', count: 0 };
    clients.set(who, client);
    const text = body.toString('utf8');
    if (op !== 'CreateTable' && text !== client.last) {
      client.last = text;
      if (++client.count % 5 === 0) {
        stats.throttled++;
        return reply(400, Buffer.from(JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'throttled by the fault proxy' })));
      }
    }
    if (op !== 'BatchWriteItem' && op !== 'BatchGetItem') {
      const answer = await forward(req, body);
      return reply(answer.status, answer.body);
    }
    const input = JSON.parse(text) as { RequestItems: Record<string, unknown> };
    const held: Record<string, unknown> = {};
    for (const [table, entries] of Object.entries(input.RequestItems)) {
      const list = op === 'BatchWriteItem' ? (entries as unknown[]) : (entries as { Keys: unknown[] }).Keys;
      if (list.length < 2) continue;
      const keep = list.slice(0, Math.ceil(list.length / 2));
      const rest = list.slice(keep.length);
      stats.unprocessed += rest.length;
      if (op === 'BatchWriteItem') {
        input.RequestItems[table] = keep;
        held[table] = rest;
      } else {
        input.RequestItems[table] = { ...(entries as object), Keys: keep };
        held[table] = { ...(entries as object), Keys: rest };
      }
    }
    const answer = await forward(req, Buffer.from(JSON.stringify(input)));
    if (answer.status !== 200) return reply(answer.status, answer.body);
    const out = JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>;
    const field = op === 'BatchWriteItem' ? 'UnprocessedItems' : 'UnprocessedKeys';
    out[field] = { ...(out[field] as object), ...held };
    reply(200, Buffer.from(JSON.stringify(out)));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stats };
}

t.test('dynalite over a Unix socket', async (t) => {
  const socketPath = await startDynalite(t);
  const endpoint = 'http://embedded.localhost';
  const lean = new LeanDynamoClient({ region: 'us-east-1', endpoint, socketPath, credentials });
  const sdk = new DynamoDBClient(dynamoClientConfig(endpoint, 'us-east-1', credentials, socketPath));
  t.teardown(() => (lean.close(), sdk.destroy()));
  await differential(t, lean, sdk, false);
});

withTool(t, tools.moto(), 'moto', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  const lean = new LeanDynamoClient({ region: 'eu-north-1', endpoint: moto.endpoint, credentials });
  const sdk = new DynamoDBClient(dynamoClientConfig(moto.endpoint, 'eu-north-1', credentials));
  t.teardown(() => (lean.close(), sdk.destroy()));
  await differential(t, lean, sdk, true);
});

t.test('dynalite behind a fault proxy: throttled requests retried alike, unprocessed batch entries returned alike', async (t) => {
  const proxy = await startFaultProxy(t, await startDynalite(t));
  // Full jitter from 0 keeps the run short; retry counts and answers are what is compared.
  const lean = new LeanDynamoClient({ region: 'us-east-1', endpoint: proxy.endpoint, credentials, random: () => 0 });
  const sdk = new DynamoDBClient(dynamoClientConfig(proxy.endpoint, 'us-east-1', credentials));
  t.teardown(() => (lean.close(), sdk.destroy()));
  const seen = await differential(t, lean, sdk, false, 80);
  t.ok(proxy.stats.throttled >= 20, `requests were throttled (${proxy.stats.throttled}) and retried to the same answers`);
  t.ok(proxy.stats.unprocessed > 0, `batch entries were held back (${proxy.stats.unprocessed})`);
  t.notOk([...seen.keys()].some((k) => k.endsWith(':ProvisionedThroughputExceededException')), 'no throttle reached the caller');
});
