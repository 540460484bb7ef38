// POST /v1/models/{Model}/batch-get and /batch-write over real HTTP, on the embedded store and on moto: 1,000 keys
// in request order, missing keys, limits and duplicates, puts + deletes with lifecycle carried over. Then, on the
// embedded store only, a fault-injecting DynamoDB proxy between a second sidecar and the store: unprocessed entries
// are retried until complete, and entries that are never processed come back listed with complete: false.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { forEachBackend } from './helpers/backends.js';
import { startTestSidecar, type TestResponse, type TestSidecar } from './helpers/sidecar.js';
import { problem, ok, type Json } from './helpers/assert.js';

const REGION = 'me-central-1';
const RUN = randomUUID().slice(0, 8);




const user = (pk: string, extra: Json = {}) => ({ PK: pk, SK: 'PROFILE', email: `${pk.toLowerCase().replace(/#/g, '-')}@example.com`, ...extra });
const key = (pk: string) => ({ PK: pk, SK: 'PROFILE' });
const pks = (items: Json[]) => items.map((i) => i.PK);

/** Deterministic shuffle (no flaky orders). */
function shuffled<T>(list: readonly T[], seed = 7): T[] {
  const out = [...list];
  let x = seed;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

async function writeAll(t: Test, s: TestSidecar, model: string, puts: Json[]): Promise<void> {
  for (let i = 0; i < puts.length; i += 1000) {
    const res = await s.request('POST', `/v1/models/${model}/batch-write`, { puts: puts.slice(i, i + 1000) });
    t.equal(res.status, 200, res.status === 200 ? `seed ${i}` : `seed ${i}: ${res.text.slice(0, 300)}`);
    t.equal(res.json?.complete, true, `seed ${i} complete`);
  }
}

await forEachBackend(t, REGION, async (t, { name, sidecar: s }) => {
  const P = `${RUN}#${name}#`;
  const get = (body: Json) => s.request('POST', '/v1/models/User/batch-get', body);
  const write = (body: Json) => s.request('POST', '/v1/models/User/batch-write', body);

  await t.test('batch-get of 1,000 keys returns every item, in request order', async (t) => {
    const all = Array.from({ length: 1000 }, (_, i) => `${P}G#${String(i).padStart(4, '0')}`);
    await writeAll(t, s, 'User', all.map((pk, i) => user(pk, { age: i })));
    const order = shuffled(all);
    const res = ok(t, await get({ keys: order.map(key) }), '1000 keys');
    t.equal(res.complete, true);
    t.same(res.unprocessedKeys, []);
    t.equal(res.items.length, 1000, 'all 1000 items');
    t.same(pks(res.items), order, 'in request order');
    const first = res.items[0];
    t.equal(first.age, all.indexOf(first.PK), 'full items');
    t.equal(first.version, 0);

    const missing = Array.from({ length: 20 }, (_, i) => `${P}MISSING#${i}`);
    const mixed = shuffled([...order.slice(0, 480), ...missing], 3);
    const some = ok(t, await get({ keys: mixed.map(key) }), 'with missing keys');
    t.equal(some.complete, true, 'missing keys do not make it incomplete');
    t.same(some.unprocessedKeys, []);
    t.same(pks(some.items), mixed.filter((pk) => !pk.includes('MISSING')), 'missing keys are just absent; order kept');

    const none = ok(t, await get({ keys: missing.map(key) }), 'only missing keys');
    t.same(none.items, []);
    t.equal(none.complete, true);

    const projected = ok(t, await get({ keys: order.slice(0, 150).map(key), fields: ['age'], consistent: true }), 'fields + consistent');
    t.same(projected.items[0], { ...key(order[0]), age: all.indexOf(order[0]) }, 'keys and the requested fields only');
    t.same(pks(projected.items), order.slice(0, 150));
  });

  await t.test('batch-get limits and duplicates', async (t) => {
    const keys = Array.from({ length: 1001 }, (_, i) => key(`${P}L#${i}`));
    problem(t, await get({ keys }), 400, 'ErrInvalidRequest', '1001 keys');
    ok(t, await get({ keys: keys.slice(0, 1000) }), 'exactly 1000 keys is fine');
    problem(t, await get({ keys: [key(`${P}D#1`), key(`${P}D#2`), key(`${P}D#1`)] }), 400, 'ErrInvalidRequest', 'duplicate keys');
    problem(t, await get({ keys: [] }), 400, 'ErrInvalidRequest', 'no keys');
    const noSk = await get({ keys: [{ PK: `${P}X` }] });
    t.equal(noSk.status, 400, 'key without SK');
    t.match(noSk.json?.code, /^(ErrMissingPrimaryKey|ErrInvalidRequest)$/, 'key without SK: code');
    problem(t, await get({ keys: [key(`${P}X`)], fields: ['nope'] }), 400, 'ErrInvalidRequest', 'unknown field');
  });

  await t.test('batch-write: puts and deletes, lifecycle carried over for existing items', async (t) => {
    const existing = `${P}W#EXISTING`;
    const fresh = `${P}W#FRESH`;
    const doomed = `${P}W#DOOMED`;
    const created = await s.request('POST', '/v1/models/User/items', user(existing, { name: 'Old', age: 1 }));
    t.equal(created.status, 201);
    const patched = await s.request('PATCH', `/v1/models/User/items/${encodeURIComponent(existing)}/PROFILE`, { set: { age: 2 } });
    t.equal(patched.json?.version, 1);
    t.equal((await s.request('POST', '/v1/models/User/items', user(doomed))).status, 201);
    await new Promise((r) => setTimeout(r, 5));

    const res = ok(t, await write({ puts: [user(existing, { name: 'New' }), user(fresh, { name: 'Fresh', createdAt: '2000-01-01T00:00:00.000000000Z' })], deletes: [key(doomed)] }), 'write');
    t.same(res, { unprocessed: { puts: [], deletes: [] }, complete: true });

    const after = ok(t, await get({ keys: [key(existing), key(fresh), key(doomed)], consistent: true }), 'read back');
    t.same(pks(after.items), [existing, fresh], 'the deleted item is gone');
    const [e, f] = after.items;
    t.equal(e.name, 'New', 'put replaced the item');
    t.equal(e.age, undefined, 'attributes absent from the put are gone');
    t.equal(e.createdAt, created.json.createdAt, 'createdAt of the existing item is kept');
    t.equal(e.version, 2, 'version bumped from 1 to 2');
    t.ok(e.updatedAt > created.json.updatedAt, 'updatedAt moves on');
    t.equal(f.version, 0, 'a new item starts at version 0');
    t.equal(f.createdAt, f.updatedAt, 'a new item: createdAt = updatedAt');
    t.not(f.createdAt, '2000-01-01T00:00:00.000000000Z', 'createdAt in the body is ignored');

    const again = ok(t, await write({ puts: [user(existing, { name: 'Newer' })] }), 'write again');
    t.equal(again.complete, true);
    const third = (await s.request('GET', `/v1/models/User/items/${encodeURIComponent(existing)}/PROFILE`)).json;
    t.equal(third.version, 3);
    t.equal(third.createdAt, created.json.createdAt);

    const onlyDeletes = ok(t, await write({ deletes: [key(existing), key(`${P}W#NEVER`)] }), 'deletes only (one missing)');
    t.equal(onlyDeletes.complete, true, 'deleting a missing key is fine');
    t.equal((await s.request('GET', `/v1/models/User/items/${encodeURIComponent(existing)}/PROFILE`)).status, 404);

    const orders = ok(
      t,
      await s.request('POST', '/v1/models/Order/batch-write', {
        puts: [
          { customer_id: `${P}C`, order_no: 1, total: 5, currency: 'EUR' },
          { customer_id: `${P}C`, order_no: 2, total: '12345678901234567890.5', currency: 'EUR' },
        ],
      }),
      'Order batch-write (number sort key)',
    );
    t.equal(orders.complete, true);
    const gotOrders = ok(t, await s.request('POST', '/v1/models/Order/batch-get', { keys: [{ customer_id: `${P}C`, order_no: 2 }, { customer_id: `${P}C`, order_no: 1 }] }), 'Order batch-get');
    t.same(gotOrders.items.map((o: Json) => o.order_no), [2, 1]);
    t.equal(gotOrders.items[0].total, '12345678901234567890.5', 'exact decimal kept');
  });

  await t.test('batch-write validation: nothing is written when the request is refused', async (t) => {
    const a = `${P}V#A`;
    const b = `${P}V#B`;
    problem(t, await write({ puts: [user(a), user(a, { name: 'twice' })] }), 400, 'ErrInvalidRequest', 'same key twice in puts');
    problem(t, await write({ puts: [user(a)], deletes: [key(a)] }), 400, 'ErrInvalidRequest', 'same key in puts and deletes');
    problem(t, await write({ deletes: [key(b), key(b)] }), 400, 'ErrInvalidRequest', 'same key twice in deletes');
    const invalid = await write({ puts: [user(a), { PK: b, SK: 'PROFILE' }] });
    t.equal(invalid.status, 400, 'an invalid item (missing email)');
    t.match(invalid.json?.code, /^(ErrInvalidItem|ErrInvalidRequest)$/, 'an invalid item: code');
    t.match(invalid.json?.detail, /email/, 'an invalid item: names the attribute');
    problem(t, await write({ puts: [user(a, { version: 3 })] }), 400, 'ErrInvalidRequest', 'a version in a batch put');
    problem(t, await write({}), 400, 'ErrInvalidRequest', 'neither puts nor deletes');
    problem(t, await write({ puts: [], deletes: [] }), 400, 'ErrInvalidRequest', 'empty puts and deletes');
    const tooMany = Array.from({ length: 600 }, (_, i) => user(`${P}V#M${i}`));
    const tooManyDeletes = Array.from({ length: 401 }, (_, i) => key(`${P}V#N${i}`));
    problem(t, await write({ puts: tooMany, deletes: tooManyDeletes }), 400, 'ErrInvalidRequest', '1001 puts + deletes');
    const nothing = ok(t, await get({ keys: [key(a), key(b), key(`${P}V#M0`)], consistent: true }), 'nothing written');
    t.same(nothing.items, [], 'no refused request wrote anything');
  });
});

// ------------------------------------------------------------------------------------------------ fault injection

interface Proxy {
  readonly url: string;
  /** BatchWriteItem / BatchGetItem calls seen, and how many entries each carried. */
  readonly calls: { target: string; entries: number; unprocessed: number }[];
  close(): Promise<void>;
}

type Fault = (target: string, entries: unknown[], call: number) => { forward: unknown[]; hold: unknown[] } | undefined;

/**
 * A DynamoDB JSON proxy in front of `upstream`. For BatchWriteItem / BatchGetItem, `fault` may keep some entries
 * back: only `forward` reaches the store and `hold` comes back as UnprocessedItems / UnprocessedKeys.
 * Everything else passes through untouched. The store does not check signatures, so rewriting bodies is fine.
 */
async function startProxy(upstream: string, fault: Fault): Promise<Proxy> {
  const calls: Proxy['calls'] = [];
  const counters = new Map<string, number>();
  const forward = (path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const { host: _host, 'content-length': _length, ...rest } = headers;
      const req = httpRequest(upstream + path, { method: 'POST', headers: { ...rest, 'content-length': String(body.length) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 500, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  const server: Server = createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const raw = Buffer.concat(chunks);
      const target = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
      let plan: ReturnType<Fault> | undefined;
      let table = '';
      let payload: Json = {};
      if (target === 'BatchWriteItem' || target === 'BatchGetItem') {
        payload = JSON.parse(raw.toString('utf8'));
        table = Object.keys(payload.RequestItems)[0];
        const entries: unknown[] = target === 'BatchWriteItem' ? payload.RequestItems[table] : payload.RequestItems[table].Keys;
        const call = (counters.get(target) ?? 0) + 1;
        counters.set(target, call);
        plan = fault(target, entries, call);
        calls.push({ target, entries: entries.length, unprocessed: plan?.hold.length ?? 0 });
      }
      let body = raw;
      if (plan) {
        const request = structuredClone(payload);
        if (target === 'BatchWriteItem') request.RequestItems[table] = plan.forward;
        else request.RequestItems[table].Keys = plan.forward;
        body = Buffer.from(JSON.stringify(request));
      }
      let upstreamRes: { status: number; headers: IncomingHttpHeaders; body: Buffer };
      if (plan && plan.forward.length === 0) {
        // Nothing to forward (DynamoDB refuses empty batches): answer as the store would.
        const empty = target === 'BatchWriteItem' ? { UnprocessedItems: {} } : { Responses: { [table]: [] }, UnprocessedKeys: {} };
        upstreamRes = { status: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: Buffer.from(JSON.stringify(empty)) };
      } else {
        upstreamRes = await forward(req.url ?? '/', req.headers, body);
      }
      let out = upstreamRes.body;
      if (plan && plan.hold.length > 0 && upstreamRes.status === 200) {
        const answer = JSON.parse(out.toString('utf8'));
        if (target === 'BatchWriteItem') {
          answer.UnprocessedItems = { ...answer.UnprocessedItems, [table]: [...(answer.UnprocessedItems?.[table] ?? []), ...plan.hold] };
        } else {
          const { Keys: _keys, ...params } = payload.RequestItems[table];
          answer.UnprocessedKeys = { ...answer.UnprocessedKeys, [table]: { ...params, Keys: [...(answer.UnprocessedKeys?.[table]?.Keys ?? []), ...plan.hold] } };
        }
        out = Buffer.from(JSON.stringify(answer));
      }
      const { 'content-length': _cl, 'x-amz-crc32': _crc, connection: _conn, 'transfer-encoding': _te, ...headers } = upstreamRes.headers;
      res.writeHead(upstreamRes.status, { ...headers, 'content-length': String(out.length) });
      res.end(out);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: String(err) }));
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const pkOfEntry = (entry: any): string => (entry.PutRequest?.Item ?? entry.DeleteRequest?.Key ?? entry).PK?.S ?? '';

t.test('unprocessed entries through a fault-injecting proxy (embedded store)', async (t) => {
  process.env.AWS_ACCESS_KEY_ID ??= 'testing';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
  const a = await startTestSidecar();
  t.teardown(() => a.close());
  const upstream = a.sidecar.backend.endpoint!;
  const P = `${RUN}#proxy#`;

  await t.test('the first calls process only half: the sidecar retries until everything is written and read', async (t) => {
    // The first 6 calls of each kind (per phase) process only the first half of their entries.
    const faulty: Record<string, number> = { BatchWriteItem: 6, BatchGetItem: 6 };
    const proxy = await startProxy(upstream, (target, entries) => {
      if (!(faulty[target]! > 0)) return undefined;
      faulty[target]! -= 1;
      const half = Math.ceil(entries.length / 2);
      return { forward: entries.slice(0, half), hold: entries.slice(half) };
    });
    t.teardown(() => proxy.close());
    const b = await startTestSidecar({ dynamodbEndpoint: proxy.url, region: 'us-east-1' });
    t.teardown(() => b.close());

    const all = Array.from({ length: 120 }, (_, i) => `${P}H#${String(i).padStart(3, '0')}`);
    const existing = `${P}H#EXISTING`;
    const removed = `${P}H#REMOVED`;
    t.equal((await a.request('POST', '/v1/models/User/items', user(existing))).status, 201);
    t.equal((await a.request('POST', '/v1/models/User/items', user(removed))).status, 201);

    const res = ok(t, await b.request('POST', '/v1/models/User/batch-write', { puts: [...all.map((pk) => user(pk)), user(existing, { name: 'x' })], deletes: [key(removed)] }), 'write through the proxy');
    t.same(res, { unprocessed: { puts: [], deletes: [] }, complete: true }, 'complete after retries');
    const writes = proxy.calls.filter((c) => c.target === 'BatchWriteItem');
    t.ok(writes.some((c) => c.unprocessed > 0), 'the proxy did hold items back');
    t.equal(
      writes.reduce((n, c) => n + c.entries - c.unprocessed, 0),
      all.length + 2,
      'every write request reached the store exactly once',
    );

    const check = ok(t, await a.request('POST', '/v1/models/User/batch-get', { keys: [...all, existing, removed].map(key), consistent: true }), 'read back directly');
    t.same(pks(check.items), [...all, existing], 'every item is present; the deleted one is gone');
    t.equal(check.items.at(-1).version, 1, 'the existing item was replaced with its version bumped');

    const before = proxy.calls.length;
    faulty.BatchGetItem = 6;
    const order = shuffled(all, 11);
    const got = ok(t, await b.request('POST', '/v1/models/User/batch-get', { keys: order.map(key) }), 'read through the proxy');
    const gets = proxy.calls.slice(before).filter((c) => c.target === 'BatchGetItem');
    t.equal(got.complete, true);
    t.same(got.unprocessedKeys, []);
    t.same(pks(got.items), order, 'every item, in request order, after retries');
    t.ok(gets.length > 2, `${gets.length} BatchGetItem calls`);
    t.ok(gets.some((c) => c.unprocessed > 0), 'the proxy did hold keys back');
  });

  await t.test('entries never processed: complete false, exactly those listed', async (t) => {
    const stuck = (pk: string) => pk.includes('STUCK');
    let mode: 'write' | 'get' = 'write';
    const proxy = await startProxy(upstream, (target, entries) => {
      if (target !== (mode === 'write' ? 'BatchWriteItem' : 'BatchGetItem')) return undefined;
      return { forward: entries.filter((e) => !stuck(pkOfEntry(e))), hold: entries.filter((e) => stuck(pkOfEntry(e))) };
    });
    t.teardown(() => proxy.close());
    const c = await startTestSidecar({ dynamodbEndpoint: proxy.url, region: 'us-east-1', retryDeadlineMs: 300 });
    t.teardown(() => c.close());

    const fine = Array.from({ length: 40 }, (_, i) => `${P}N#OK#${i}`);
    const stuckPuts = [3, 17, 29].map((i) => `${P}N#STUCK#PUT#${i}`);
    const stuckDeletes = [`${P}N#STUCK#DEL#1`, `${P}N#STUCK#DEL#2`];
    const deletable = `${P}N#DEL#OK`;
    for (const pk of [...stuckDeletes, deletable]) t.equal((await a.request('POST', '/v1/models/User/items', user(pk))).status, 201);
    const puts = fine.map((pk) => user(pk));
    puts.splice(3, 0, user(stuckPuts[0], { name: 'stuck 0' }));
    puts.splice(17, 0, user(stuckPuts[1], { name: 'stuck 1' }));
    puts.splice(29, 0, user(stuckPuts[2], { name: 'stuck 2' }));

    const started = Date.now();
    const res = ok(t, await c.request('POST', '/v1/models/User/batch-write', { puts, deletes: [key(stuckDeletes[0]), key(deletable), key(stuckDeletes[1])] }), 'write');
    const took = Date.now() - started;
    t.equal(res.complete, false, 'not complete');
    t.same(pks(res.unprocessed.puts).sort(), [...stuckPuts].sort(), 'exactly the stuck puts are listed');
    t.same(res.unprocessed.puts.map((p: Json) => p.name).sort(), ['stuck 0', 'stuck 1', 'stuck 2'], 'as the items that were sent');
    t.same(res.unprocessed.deletes, stuckDeletes.map(key), 'exactly the stuck deletes are listed, as keys');
    t.ok(took < 5000, `gave up after the 300 ms retry deadline (${took} ms)`);
    t.ok(proxy.calls.filter((x) => x.target === 'BatchWriteItem').length > 2, 'retried before giving up');

    const check = ok(t, await a.request('POST', '/v1/models/User/batch-get', { keys: [...fine, ...stuckPuts, ...stuckDeletes, deletable].map(key), consistent: true }), 'state');
    t.same(pks(check.items), [...fine, ...stuckDeletes], 'processed puts landed, stuck puts did not; stuck deletes left their items');

    mode = 'get';
    const wanted = shuffled([...fine, ...stuckDeletes], 5);
    const got = ok(t, await c.request('POST', '/v1/models/User/batch-get', { keys: wanted.map(key) }), 'get');
    t.equal(got.complete, false);
    t.same(got.unprocessedKeys.map((k: Json) => k.PK).sort(), [...stuckDeletes].sort(), 'exactly the stuck keys are listed');
    t.same(got.unprocessedKeys, got.unprocessedKeys.map((k: Json) => key(k.PK)), 'unprocessed keys are keys only');
    t.same(pks(got.items), wanted.filter((pk) => !stuck(pk)), 'the rest, in request order');
  });
});
