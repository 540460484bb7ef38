import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DescribeTableCommand, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import t from 'tap';
import { startTestSidecar, type TestSidecar } from './helpers/sidecar.js';

const dataDir = await mkdtemp(path.join(tmpdir(), 'dynamorm-data-'));
const open = new Set<TestSidecar>();
t.teardown(async () => {
  for (const s of open) await s.close().catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
});

async function start(): Promise<TestSidecar> {
  const s = await startTestSidecar({ dataDir });
  open.add(s);
  return s;
}
async function close(s: TestSidecar): Promise<void> {
  open.delete(s);
  await s.close();
}

async function creationTimes(s: TestSidecar): Promise<Record<string, number>> {
  const client = s.sidecar.backend.client;
  const { TableNames = [] } = await client.send(new ListTablesCommand({}));
  const out: Record<string, number> = {};
  for (const name of TableNames) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    out[name] = Table?.CreationDateTime?.getTime() ?? NaN;
  }
  return out;
}

const user = { PK: 'USER#p1', SK: 'PROFILE', email: 'p1@example.com', name: 'Pat', tags: ['x', 'y'] };
const order = { customer_id: 'C#1', order_no: 42, total: '19.99', currency: 'EUR', status: 'open' };
const blob = { ns: 7, digest: '3q2+7w==', label: 'persisted' };

t.test('items and tables survive a restart on the same --data-dir', async (t) => {
  const first = await start();
  t.equal(first.sidecar.backend.kind, 'embedded');

  const u = await first.request('POST', '/v1/models/User/items', user);
  t.equal(u.status, 201, 'user created', { body: u.json });
  const o = await first.request('POST', '/v1/models/Order/items', order);
  t.equal(o.status, 201, 'order created', { body: o.json });
  const b = await first.request('POST', '/v1/models/Blob/items', blob);
  t.equal(b.status, 201, 'blob created', { body: b.json });
  const patched = await first.request('PATCH', '/v1/models/User/items/USER%23p1/PROFILE', { set: { name: 'Patricia' } }, { 'if-match': '"0"' });
  t.equal(patched.status, 200);
  t.equal(patched.json.version, 1);

  const tablesBefore = await creationTimes(first);
  t.same(Object.keys(tablesBefore).sort(), ['blobs', 'dynamorm_sidecar_idempotency', 'orders', 'sessions', 'users'], 'every model table and the idempotency table exist');
  await close(first);

  const files = await readdir(dataDir);
  t.ok(files.length > 0, 'the data directory holds the store');

  const second = await start();
  const tablesAfter = await creationTimes(second);
  t.same(tablesAfter, tablesBefore, 'tables are kept, not recreated (same creation times)');

  const gotUser = await second.request('GET', '/v1/models/User/items/USER%23p1/PROFILE');
  t.equal(gotUser.status, 200, 'user readable after restart');
  t.same(gotUser.json, patched.json, 'user unchanged by the restart');
  t.equal(gotUser.headers.get('etag'), '"1"');

  const orderNo = encodeURIComponent(String(o.json.order_no));
  const gotOrder = await second.request('GET', `/v1/models/Order/items/C%231/${orderNo}`);
  t.equal(gotOrder.status, 200, 'order readable after restart');
  t.same(gotOrder.json, o.json);

  const gotBlob = await second.request('GET', '/v1/models/Blob/items/7/3q2-7w');
  t.equal(gotBlob.status, 200, 'blob readable after restart');
  t.same(gotBlob.json, b.json);

  const again = await second.request('POST', '/v1/models/User/items', user);
  t.equal(again.status, 409, 'create on a persisted key is a conflict');
  t.match(again.json, { code: 'ErrConditionFailed', reason: 'item_exists' });

  const stale = await second.request('PATCH', '/v1/models/User/items/USER%23p1/PROFILE', { set: { name: 'X' } }, { 'if-match': '"0"' });
  t.equal(stale.status, 412, 'the persisted version is enforced');

  const del = await second.request('DELETE', '/v1/models/Blob/items/7/3q2-7w');
  t.equal(del.status, 204);
  await close(second);

  const third = await start();
  const gone = await third.request('GET', '/v1/models/Blob/items/7/3q2-7w');
  t.equal(gone.status, 404, 'a delete persists too');
  const still = await third.request('GET', '/v1/models/User/items/USER%23p1/PROFILE');
  t.equal(still.status, 200);
  t.same(await creationTimes(third), tablesBefore, 'third boot keeps the tables too');
  await close(third);
});

t.test('without --data-dir the embedded store starts empty each time', async (t) => {
  const a = await startTestSidecar();
  open.add(a);
  t.equal((await a.request('POST', '/v1/models/User/items', user)).status, 201);
  await close(a);
  const b = await startTestSidecar();
  open.add(b);
  t.equal((await b.request('GET', '/v1/models/User/items/USER%23p1/PROFILE')).status, 404);
  await close(b);
});
