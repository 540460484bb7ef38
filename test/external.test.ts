import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DeleteTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  ResourceNotFoundException,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import t from 'tap';
import { startSidecar } from '../src/server.js';
import { MissingTablesError } from '../src/store/tables.js';
import { baseConfig, startTestSidecar, type TestSidecar } from './helpers/sidecar.js';
import { startMoto } from './helpers/moto.js';
import { tools, withTool } from './helpers/tools.js';

// moto is shared by every test file in CI: this file keeps to its own region and drops its tables before and after.
const REGION = 'eu-south-2';
const TABLES = ['blobs', 'orders', 'sessions', 'users'];
const ROOT = fileURLToPath(new URL('../', import.meta.url));

process.env.AWS_ACCESS_KEY_ID = 'testing';
process.env.AWS_SECRET_ACCESS_KEY = 'testing';
delete process.env.AWS_SESSION_TOKEN;
delete process.env.AWS_PROFILE;


// Everything runs inside one subtest: skipped (or failed, under REQUIRE_TOOLS=1) when there is no moto.
await withTool(t, tools.moto(), 'external-endpoint mode (moto)', async (t) => {
  const moto = await startMoto();
  const endpoint = moto.endpoint.replace(/\/+$/, '');
  const client = new DynamoDBClient({ endpoint, region: REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });

  async function dropTables(): Promise<void> {
  for (const name of TABLES) {
    try {
      await client.send(new DeleteTableCommand({ TableName: name }));
    } catch (err) {
      if (!(err instanceof ResourceNotFoundException) && (err as Error).name !== 'ResourceNotFoundException') throw err;
    }
  }
  }

  const sidecars = new Set<TestSidecar>();
  t.teardown(async () => {
  for (const s of sidecars) await s.close().catch(() => undefined);
  await dropTables().catch(() => undefined);
  client.destroy();
    await moto.stop();
  });

  const external = { backend: 'aws' as const, dynamodbEndpoint: endpoint, region: REGION };
  async function start(createTables: boolean): Promise<TestSidecar> {
  const s = await startTestSidecar({ ...external, createTables });
  sidecars.add(s);
  return s;
  }
  async function stop(s: TestSidecar): Promise<void> {
  sidecars.delete(s);
  await s.close();
  }

  async function describe(name: string): Promise<TableDescription> {
  const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
  if (!Table) throw new Error(`no description for ${name}`);
  return Table;
  }

  await dropTables();

  t.test('without --create-tables and no tables, the boot fails naming every missing table', async (t) => {
  const err = await startSidecar({ ...baseConfig, ...external, createTables: false }).then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  t.type(err, MissingTablesError, 'rejects with MissingTablesError');
  const missing = err as MissingTablesError;
  t.same([...(missing.tables ?? [])].sort(), TABLES, 'names all four tables');
  for (const name of TABLES) t.match(missing.message, name, `message names ${name}`);
  t.match(missing.message, /--create-tables/, 'message says how to fix it');

  const { TableNames = [] } = await client.send(new ListTablesCommand({}));
  t.same(TableNames.filter((n) => TABLES.includes(n)), [], 'nothing was created');

  // The CLI reports the same thing and exits 1.
  const env: NodeJS.ProcessEnv = { ...process.env, DYNAMODB_ENDPOINT: endpoint, AWS_REGION: REGION, PORT: '0', LOG_LEVEL: 'silent' };
  delete env.CREATE_TABLES;
  delete env.DATA_DIR;
  delete env.SCHEMAS_DIR;
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'cli.js')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout!.resume();
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  t.equal(code, 1, 'CLI exits 1', { stderr });
  for (const name of TABLES) t.match(stderr, name, `CLI names ${name}`);
  t.notMatch(stderr, /\n\s+at /, 'no stack trace');
  });

  t.test('with createTables the boot creates every table with its indexes and TTL', async (t) => {
  const s = await start(true);
  t.equal(s.sidecar.backend.kind, 'external');
  t.equal(s.sidecar.backend.endpoint, endpoint);

  const users = await describe('users');
  t.equal(users.TableStatus, 'ACTIVE');
  t.same(users.KeySchema, [
    { AttributeName: 'PK', KeyType: 'HASH' },
    { AttributeName: 'SK', KeyType: 'RANGE' },
  ]);
  t.equal(users.BillingModeSummary?.BillingMode, 'PAY_PER_REQUEST');
  t.same(
    Object.fromEntries((users.AttributeDefinitions ?? []).map((d) => [d.AttributeName, d.AttributeType])),
    { PK: 'S', SK: 'S', email: 'S' },
    'users attribute definitions',
  );
  t.equal(users.GlobalSecondaryIndexes?.length, 1);
  t.match(users.GlobalSecondaryIndexes?.[0], {
    IndexName: 'gsi-email',
    KeySchema: [{ AttributeName: 'email', KeyType: 'HASH' }],
    Projection: { ProjectionType: 'ALL' },
  });
  t.notOk(users.LocalSecondaryIndexes?.length, 'users has no LSI');

  const orders = await describe('orders');
  t.same(orders.KeySchema, [
    { AttributeName: 'customer_id', KeyType: 'HASH' },
    { AttributeName: 'order_no', KeyType: 'RANGE' },
  ]);
  const defs = Object.fromEntries((orders.AttributeDefinitions ?? []).map((d) => [d.AttributeName, d.AttributeType]));
  t.same(defs, { customer_id: 'S', order_no: 'N', status: 'S', placed_at: 'S' }, 'orders attribute definitions');
  t.equal(orders.LocalSecondaryIndexes?.length, 1);
  t.match(orders.LocalSecondaryIndexes?.[0], {
    IndexName: 'lsi-status',
    KeySchema: [
      { AttributeName: 'customer_id', KeyType: 'HASH' },
      { AttributeName: 'status', KeyType: 'RANGE' },
    ],
    Projection: { ProjectionType: 'KEYS_ONLY' },
  });
  t.equal(orders.GlobalSecondaryIndexes?.length, 1);
  const gsi = orders.GlobalSecondaryIndexes?.[0];
  t.match(gsi, {
    IndexName: 'gsi-status',
    KeySchema: [
      { AttributeName: 'status', KeyType: 'HASH' },
      { AttributeName: 'placed_at', KeyType: 'RANGE' },
    ],
    Projection: { ProjectionType: 'INCLUDE' },
  });
  t.same([...(gsi?.Projection?.NonKeyAttributes ?? [])].sort(), ['currency', 'total']);

  const blobs = await describe('blobs');
  t.same(blobs.KeySchema, [
    { AttributeName: 'ns', KeyType: 'HASH' },
    { AttributeName: 'digest', KeyType: 'RANGE' },
  ]);
  t.same(Object.fromEntries((blobs.AttributeDefinitions ?? []).map((d) => [d.AttributeName, d.AttributeType])), { ns: 'N', digest: 'B' });

  const sessions = await describe('sessions');
  t.same(sessions.KeySchema, [{ AttributeName: 'id', KeyType: 'HASH' }]);

  const ttl = async (name: string) => (await client.send(new DescribeTimeToLiveCommand({ TableName: name }))).TimeToLiveDescription;
  t.match(await ttl('users'), { AttributeName: 'ttl', TimeToLiveStatus: /^ENABL/ }, 'users TTL on ttl');
  t.match(await ttl('sessions'), { AttributeName: 'expiresAt', TimeToLiveStatus: /^ENABL/ }, 'sessions TTL on expiresAt');
  t.notMatch((await ttl('orders'))?.TimeToLiveStatus ?? 'DISABLED', /^ENABL/, 'orders has no TTL role, no TTL');

  await stop(s);
  });

  t.test('CRUD round trip on User and Order against moto', async (t) => {
  const s = await start(false);

  // User
  const user = { PK: 'USER#m1', SK: 'PROFILE', email: 'm1@example.com', name: 'Moe', status: 'active', tags: ['a', 'b'], ttl: '2030-01-01T00:00:00Z' };
  const created = await s.request('POST', '/v1/models/User/items', user);
  t.equal(created.status, 201, 'create', { body: created.text });
  t.equal(created.headers.get('etag'), '"0"');
  t.equal(created.json.version, 0);
  t.equal(created.json.ttl, 1893456000, 'ttl stored as epoch seconds');
  t.match(created.json.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);

  const raw = await client.send(new GetItemCommand({ TableName: 'users', Key: { PK: { S: 'USER#m1' }, SK: { S: 'PROFILE' } }, ConsistentRead: true }));
  t.same(raw.Item?.tags, { SS: ['a', 'b'] }, 'stored in moto as a string set');
  t.same(raw.Item?.version, { N: '0' });
  t.same(raw.Item?.ttl, { N: '1893456000' });

  const got = await s.request('GET', '/v1/models/User/items/USER%23m1/PROFILE?consistent=true');
  t.equal(got.status, 200);
  t.same(got.json, created.json);

  const dup = await s.request('POST', '/v1/models/User/items', user);
  t.equal(dup.status, 409);
  t.match(dup.json, { code: 'ErrConditionFailed', reason: 'item_exists' });

  const patched = await s.request(
    'PATCH',
    '/v1/models/User/items/USER%23m1/PROFILE',
    { set: { name: 'Moses' }, add: { tags: ['c'] }, remove: ['status'] },
    { 'if-match': '"0"' },
  );
  t.equal(patched.status, 200, 'PATCH with the right If-Match', { body: patched.text });
  t.equal(patched.json.name, 'Moses');
  t.same([...patched.json.tags].sort(), ['a', 'b', 'c']);
  t.equal(patched.json.status, undefined);
  t.equal(patched.json.version, 1);
  t.equal(patched.headers.get('etag'), '"1"');
  t.equal(patched.json.createdAt, created.json.createdAt);

  const stale = await s.request('PATCH', '/v1/models/User/items/USER%23m1/PROFILE', { set: { name: 'X' } }, { 'if-match': '"0"' });
  t.equal(stale.status, 412, 'stale If-Match → 412');
  t.equal(stale.json?.code, 'ErrConditionFailed');
  const staleDelete = await s.request('DELETE', '/v1/models/User/items/USER%23m1/PROFILE', undefined, { 'if-match': '"7"' });
  t.equal(staleDelete.status, 412, 'stale If-Match on DELETE → 412');

  const cond = await s.request('PATCH', '/v1/models/User/items/USER%23m1/PROFILE', {
    set: { status: 'vip' },
    condition: { and: [{ attr: 'name', op: 'begins_with', value: 'Mo' }, { attr: 'status', op: 'not_exists' }] },
  });
  t.equal(cond.status, 200, 'condition on reserved words works on moto', { body: cond.text });
  t.equal(cond.json.version, 2);

  const missingPatch = await s.request('PATCH', '/v1/models/User/items/USER%23nobody/PROFILE', { set: { name: 'X' } });
  t.equal(missingPatch.status, 404, 'PATCH on a missing item → 404');
  t.equal(missingPatch.json?.code, 'ErrItemNotFound');
  const missingGet = await s.request('GET', '/v1/models/User/items/USER%23nobody/PROFILE');
  t.equal(missingGet.status, 404);
  const absent = await client.send(new GetItemCommand({ TableName: 'users', Key: { PK: { S: 'USER#nobody' }, SK: { S: 'PROFILE' } }, ConsistentRead: true }));
  t.equal(absent.Item, undefined, 'the 404 PATCH did not create an item');

  const replaced = await s.request('PUT', '/v1/models/User/items/USER%23m1/PROFILE', { email: 'm1@example.com', age: 40 }, { 'if-match': '"2"' });
  t.equal(replaced.status, 200, 'PUT', { body: replaced.text });
  t.equal(replaced.json.version, 3);
  t.equal(replaced.json.name, undefined, 'PUT removes absent attributes');
  t.equal(replaced.json.createdAt, created.json.createdAt, 'createdAt kept');

  const del = await s.request('DELETE', '/v1/models/User/items/USER%23m1/PROFILE', undefined, { 'if-match': '"3"' });
  t.equal(del.status, 204);
  t.equal((await s.request('GET', '/v1/models/User/items/USER%23m1/PROFILE')).status, 404);
  const delAgain = await s.request('DELETE', '/v1/models/User/items/USER%23m1/PROFILE?ifExists=true');
  t.equal(delAgain.status, 404, 'DELETE ?ifExists=true on a missing item → 404');

  // Order: snake_case, number sort key, LSI/GSI attributes
  const order = {
    customer_id: 'CUST#1',
    order_no: 1001,
    total: '12345678901234567890.123456789',
    currency: 'EUR',
    status: 'open',
    placed_at: '2025-01-02T03:04:05.123456789Z',
    line_items: [{ sku: 'A', qty: 2 }],
    metadata: { b: 1, a: [true, null] },
  };
  const oc = await s.request('POST', '/v1/models/Order/items', order);
  t.equal(oc.status, 201, 'order create', { body: oc.text });
  t.equal(oc.json.total, '12345678901234567890.123456789', 'a decimal a double cannot hold survives');
  t.equal(oc.json.created_at, oc.json.updated_at);
  t.equal(oc.json.version, 0);
  const rawOrder = await client.send(new GetItemCommand({ TableName: 'orders', Key: { customer_id: { S: 'CUST#1' }, order_no: { N: '1001' } }, ConsistentRead: true }));
  t.same(rawOrder.Item?.total, { N: '12345678901234567890.123456789' });
  t.same(rawOrder.Item?.metadata, { S: '{"a":[true,null],"b":1}' }, 'json attribute stored as canonical JSON');

  const og = await s.request('GET', '/v1/models/Order/items/CUST%231/1001');
  t.equal(og.status, 200);
  t.same(og.json, oc.json);
  t.equal((await s.request('POST', '/v1/models/Order/items', order)).status, 409);

  const op = await s.request('PATCH', '/v1/models/Order/items/CUST%231/1001', { set: { status: 'shipped' }, version: 0 });
  t.equal(op.status, 200, 'order PATCH with body version', { body: op.text });
  t.equal(op.json.status, 'shipped');
  t.equal(op.json.version, 1);
  const opStale = await s.request('PATCH', '/v1/models/Order/items/CUST%231/1001', { set: { status: 'lost' } }, { 'if-match': '"0"' });
  t.equal(opStale.status, 412);
  const opMissing = await s.request('PATCH', '/v1/models/Order/items/CUST%231/9999', { set: { status: 'x' } });
  t.equal(opMissing.status, 404, 'PATCH on a missing order → 404');
  t.equal(opMissing.json?.code, 'ErrItemNotFound');

  const od = await s.request('DELETE', '/v1/models/Order/items/CUST%231/1001', undefined, { 'if-match': '"1"' });
  t.equal(od.status, 204);
  t.equal((await s.request('GET', '/v1/models/Order/items/CUST%231/1001')).status, 404);

  // Blob: number partition key, binary sort key
  const bc = await s.request('POST', '/v1/models/Blob/items', { ns: 7, digest: '3q2+7w==', label: 'x' });
  t.equal(bc.status, 201, 'blob create', { body: bc.text });
  const bg = await s.request('GET', '/v1/models/Blob/items/7/3q2-7w');
  t.equal(bg.status, 200);
  t.equal(bg.json.digest, '3q2+7w==');

  await stop(s);
  });

  t.test('a second boot without createTables finds the tables', async (t) => {
  const before = await describe('users');
  const s = await start(false);
  const health = await s.request('GET', '/healthz');
  t.equal(health.status, 200);
  const blob = await s.request('GET', '/v1/models/Blob/items/7/3q2-7w');
  t.equal(blob.status, 200, 'data written by the previous boot is there');
  t.equal((await describe('users')).CreationDateTime?.getTime(), before.CreationDateTime?.getTime(), 'users not recreated');
  await stop(s);

  // createTables on existing tables is idempotent too.
  const again = await start(true);
  t.equal((await again.request('GET', '/v1/models/Blob/items/7/3q2-7w')).status, 200, 'createTables keeps existing tables and data');
  await stop(again);
  });

  t.test('a single missing table is named alone', async (t) => {
  await client.send(new DeleteTableCommand({ TableName: 'sessions' }));
  const err = await startSidecar({ ...baseConfig, ...external, createTables: false }).then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  t.type(err, MissingTablesError);
  t.same((err as MissingTablesError).tables, ['sessions']);
  t.notMatch((err as Error).message, /users|orders|blobs/, 'tables that exist are not named');
  });
});
