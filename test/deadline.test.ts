// X-Request-Timeout-Ms: a delaying proxy holds DynamoDB requests for 2 s in front of dynalite; with a 300 ms
// budget every data route (GET, PUT, query, batch-get, batch-write, transactions) answers 504 ErrDeadlineExceeded
// within budget + 20 ms, writes held at the deadline leave nothing behind, a batch cut short says by key what was
// done and what was not, garbage budgets are 400, the server's --request-timeout-ms caps the budget, the embedded
// store's transaction lock wait is bounded, the Lambda invocation deadline applies when no header is given, the lean
// client bounds its attempts, and without the header nothing changes. The core of it again on moto, whose
// transactions are real.
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { startTestSidecar, type TestResponse } from './helpers/sidecar.js';
import { startDelayProxy } from './helpers/delay-proxy.js';
import { startMoto } from './helpers/moto.js';
import { tools, withTool } from './helpers/tools.js';
import { newDeadline, setAmbientDeadline, withDeadline } from '../src/store/deadline.js';
import { LeanDynamoClient } from '../src/store/dataplane/client.js';
import type { EmbeddedDataPlane } from '../src/store/embedded/client.js';

process.env.AWS_ACCESS_KEY_ID ??= 'testing';
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';

type Json = Record<string, any>;
const RUN = randomUUID().slice(0, 8);
const BUDGET = 300;
const SLACK = 20;
const HELD = 2_000;
const user = (pk: string, extra: Json = {}) => ({ PK: pk, SK: 'PROFILE', email: `${RUN}@example.com`, ...extra });
const ukey = (pk: string) => ({ PK: pk, SK: 'PROFILE' });
const userPath = (pk: string) => `/v1/models/User/items/${encodeURIComponent(pk)}/PROFILE`;
const budget = (ms: number | string) => ({ 'x-request-timeout-ms': String(ms) });

const host = await startTestSidecar();
t.teardown(() => host.close());
const proxy = await startDelayProxy(host.sidecar.backend.endpoint!);
t.teardown(() => proxy.close());
const s = await startTestSidecar({ backend: 'aws', dynamodbEndpoint: proxy.url });
t.teardown(() => s.close());

const times: string[] = [];
t.teardown(() => console.log(`# answer times: ${times.join(', ')}`));

async function timed(label: string, run: () => Promise<TestResponse>): Promise<{ res: TestResponse; ms: number }> {
  const started = performance.now();
  const res = await run();
  const ms = Math.round(performance.now() - started);
  times.push(`${label} ${res.status} in ${ms} ms`);
  return { res, ms };
}

function deadline504(t: Test, r: { res: TestResponse; ms: number }, limit: number, what: string): void {
  t.equal(r.res.status, 504, `${what}: 504 (${r.res.text.slice(0, 200)})`);
  t.equal(r.res.json?.code, 'ErrDeadlineExceeded', `${what}: ErrDeadlineExceeded`);
  t.match(r.res.headers.get('content-type') ?? '', /problem\+json/, `${what}: problem+json`);
  t.ok(r.ms <= limit + SLACK, `${what}: answered in ${r.ms} ms ≤ ${limit} + ${SLACK}`);
  t.ok(r.ms >= limit / 2, `${what}: the backend was waited for (${r.ms} ms), not refused at once`);
}

const seeded = `${RUN}#SEED`;
t.equal((await s.request('POST', '/v1/models/User/items', user(seeded, { name: 'Seed' }))).status, 201, 'seed item');

t.test('a budget that is not a whole number of ms from 1 to 600000 is a 400, before any backend call', async (t) => {
  const before = proxy.forwarded.length;
  for (const bad of ['abc', '0', '-5', '1.5', '600001', '300ms', '']) {
    const res = await s.request('GET', userPath(seeded), undefined, budget(bad));
    t.equal(res.status, 400, `${JSON.stringify(bad)}: 400`);
    t.equal(res.json?.code, 'ErrInvalidRequest', `${JSON.stringify(bad)}: ErrInvalidRequest`);
    t.equal(res.json?.header, 'X-Request-Timeout-Ms', `${JSON.stringify(bad)}: names the header`);
  }
  t.equal(proxy.forwarded.length, before, 'nothing reached DynamoDB');
});

t.test('with DynamoDB held for 2 s, every data route answers 504 within the 300 ms budget', async (t) => {
  const fresh = `${RUN}#PUT`;
  // Each route's validator compiles on its first request (CPU time no deadline can cut short): warm them up.
  const warm = `${RUN}#WARM`;
  await s.request('PUT', userPath(warm), user(warm));
  await s.request('POST', '/v1/models/User/items', user(`${warm}2`));
  await s.request('POST', '/v1/models/User/query', { partition: warm });
  await s.request('POST', '/v1/models/User/batch-get', { keys: [ukey(warm)] });
  await s.request('POST', '/v1/models/User/batch-write', { deletes: [ukey(`${warm}3`)] });
  await s.request('POST', '/v1/transactions/write', { items: [{ op: 'put', model: 'User', item: user(`${warm}TX`) }] });
  await s.request('POST', '/v1/transactions/get', { items: [{ model: 'User', key: ukey(warm) }] });
  proxy.delay = () => HELD;
  t.teardown(() => (proxy.delay = () => 0));
  deadline504(t, await timed('GET', () => s.request('GET', userPath(seeded), undefined, budget(BUDGET))), BUDGET, 'GET');
  deadline504(t, await timed('PUT', () => s.request('PUT', userPath(fresh), user(fresh), budget(BUDGET))), BUDGET, 'PUT');
  deadline504(t, await timed('POST create', () => s.request('POST', '/v1/models/User/items', user(`${fresh}2`), budget(BUDGET))), BUDGET, 'POST create');
  deadline504(t, await timed('query', () => s.request('POST', '/v1/models/User/query', { partition: seeded }, budget(BUDGET))), BUDGET, 'query');
  deadline504(t, await timed('batch-get', () => s.request('POST', '/v1/models/User/batch-get', { keys: [ukey(seeded)] }, budget(BUDGET))), BUDGET, 'batch-get');
  deadline504(t, await timed('batch-write', () => s.request('POST', '/v1/models/User/batch-write', { deletes: [ukey(`${fresh}3`)] }, budget(BUDGET))), BUDGET, 'batch-write');
  const tx = { items: [{ op: 'put', model: 'User', item: user(`${fresh}TX`) }] };
  deadline504(t, await timed('transaction write', () => s.request('POST', '/v1/transactions/write', tx, budget(BUDGET))), BUDGET, 'transaction write');
  deadline504(t, await timed('transaction get', () => s.request('POST', '/v1/transactions/get', { items: [{ model: 'User', key: ukey(seeded) }] }, budget(BUDGET))), BUDGET, 'transaction get');
  // The held writes were abandoned by the proxy when the sidecar hung up: nothing was written.
  await new Promise((r) => setTimeout(r, HELD + 100));
  for (const pk of [fresh, `${fresh}2`, `${fresh}TX`]) t.equal((await host.request('GET', userPath(pk))).status, 404, `${pk} not written`);
  t.ok(proxy.abandoned.includes('PutItem'), 'the held PutItem never reached the store');
});

t.test("a throttled backend: the SDK's retry back-off does not carry the answer past the budget", async (t) => {
  proxy.answer = () => ({ status: 400, type: 'ProvisionedThroughputExceededException' });
  t.teardown(() => (proxy.answer = () => undefined));
  for (let i = 0; i < 5; i++) {
    const r = await timed('GET throttled', () => s.request('GET', userPath(seeded), undefined, budget(100)));
    t.ok(r.res.status === 504 || (r.res.status === 503 && r.res.json?.code === 'ErrThrottled'), `504, or 503 ErrThrottled when the SDK gave up first (${r.res.status} ${r.res.json?.code})`);
    t.ok(r.ms <= 100 + SLACK, `answered in ${r.ms} ms ≤ 100 + ${SLACK}`);
  }
});

t.test('a batch-write cut short reports by key what was applied and what was not', async (t) => {
  const puts = Array.from({ length: 30 }, (_, i) => user(`${RUN}#B${i < 25 ? 'FAST' : 'SLOW'}${i}`));
  // The second chunk (25 + 5) is held; the first goes through.
  proxy.delay = (op, body) => (op === 'BatchWriteItem' && body.includes('SLOW') ? HELD : 0);
  t.teardown(() => (proxy.delay = () => 0));
  const r = await timed('batch-write 30', () => s.request('POST', '/v1/models/User/batch-write', { puts }, budget(BUDGET)));
  deadline504(t, r, BUDGET, 'batch-write of 30');
  const body = r.res.json as Json;
  t.equal(body.processed?.puts?.length, 25, '25 puts reported applied');
  t.equal(body.unprocessed?.puts?.length, 5, '5 puts reported not applied');
  t.same(body.unprocessed.puts.map((k: Json) => Object.keys(k).sort()), Array(5).fill(['PK', 'SK']), 'reported by key only');
  t.ok(body.unprocessed.puts.every((k: Json) => k.PK.includes('SLOW')), 'the unapplied ones are the held chunk');
  t.notOk(r.res.text.includes('@example.com'), 'no item values in the problem');
  const check = await host.request('POST', '/v1/models/User/batch-get', { keys: puts.map((p) => ukey(p.PK)), consistent: true });
  const stored = new Set((check.json.items as Json[]).map((i) => i.PK));
  t.equal(stored.size, 25, 'the store holds exactly the 25 reported applied');
  t.ok(body.processed.puts.every((k: Json) => stored.has(k.PK)), 'every key reported applied is stored');
});

t.test("a batch-write whose read of the existing items is held: 504, nothing written", async (t) => {
  const puts = [user(`${RUN}#PRE1`), user(`${RUN}#PRE2`)];
  proxy.delay = (op) => (op === 'BatchGetItem' ? HELD : 0);
  t.teardown(() => (proxy.delay = () => 0));
  deadline504(t, await timed('batch-write (pre-read held)', () => s.request('POST', '/v1/models/User/batch-write', { puts }, budget(BUDGET))), BUDGET, 'batch-write');
  for (const p of puts) t.equal((await host.request('GET', userPath(p.PK))).status, 404, `${p.PK} not written`);
});

t.test('a batch-get cut short reports the keys read and the keys not read', async (t) => {
  const keys = Array.from({ length: 105 }, (_, i) => ukey(`${RUN}#G${i < 100 ? 'FAST' : 'SLOW'}${i}`));
  proxy.delay = (op, body) => (op === 'BatchGetItem' && body.includes('SLOW') ? HELD : 0);
  t.teardown(() => (proxy.delay = () => 0));
  const r = await timed('batch-get 105', () => s.request('POST', '/v1/models/User/batch-get', { keys }, budget(BUDGET)));
  deadline504(t, r, BUDGET, 'batch-get of 105');
  t.equal(r.res.json?.processed?.keys?.length, 100, '100 keys read');
  t.equal(r.res.json?.unprocessed?.keys?.length, 5, '5 keys not read');
});

t.test('without the header nothing changes: a slow backend is waited for', async (t) => {
  proxy.delay = (op) => (op === 'GetItem' ? 500 : 0);
  t.teardown(() => (proxy.delay = () => 0));
  const r = await timed('GET no header', () => s.request('GET', userPath(seeded)));
  t.equal(r.res.status, 200, 'GET answered 200');
  t.ok(r.ms >= 500, `after the backend's ${r.ms} ms`);
  const roomy = await timed('GET 2000 ms budget', () => s.request('GET', userPath(seeded), undefined, budget(2_000)));
  t.equal(roomy.res.status, 200, 'a budget larger than the delay: 200');
});

t.test("the budget is capped at the server's --request-timeout-ms", async (t) => {
  const capped = await startTestSidecar({ backend: 'aws', dynamodbEndpoint: proxy.url, requestTimeoutMs: 250 });
  t.teardown(() => capped.close());
  await capped.request('GET', userPath(seeded));
  proxy.delay = () => HELD;
  t.teardown(() => (proxy.delay = () => 0));
  deadline504(t, await timed('GET capped', () => capped.request('GET', userPath(seeded), undefined, budget(5_000))), 250, 'budget 5000 on a 250 ms server');
});

t.test("without a header, the Lambda invocation's deadline bounds the request", async (t) => {
  proxy.delay = () => HELD;
  t.teardown(() => {
    proxy.delay = () => 0;
    setAmbientDeadline(undefined);
  });
  setAmbientDeadline(Date.now() + BUDGET);
  const r = await timed('GET lambda deadline', () => s.request('GET', userPath(seeded)));
  deadline504(t, r, BUDGET, 'GET under an invocation');
  t.match(r.res.json?.detail, /Lambda invocation/, 'the problem says whose deadline');
  setAmbientDeadline(Date.now() - 1);
  proxy.delay = () => 0;
  t.equal((await s.request('GET', userPath(seeded))).status, 200, 'a past invocation deadline is ignored');
});

t.test("the embedded store's transaction lock is waited for no longer than the budget", async (t) => {
  const pk = `${RUN}#LOCK`;
  // Compiles the route's validator first (once per process, CPU time no deadline can cut short).
  t.equal((await host.request('POST', '/v1/transactions/write', { items: [{ op: 'put', model: 'User', item: user(`${pk}WARM`) }] })).status, 200, 'warm-up transaction');
  const release = await (host.sidecar.backend.dataPlane as EmbeddedDataPlane).lock.acquireWrite();
  let released = false;
  t.teardown(() => {
    if (!released) release();
  });
  const tx = { items: [{ op: 'put', model: 'User', item: user(pk) }] };
  deadline504(t, await timed('embedded tx (lock held)', () => host.request('POST', '/v1/transactions/write', tx, budget(BUDGET))), BUDGET, 'transaction waiting for the lock');
  deadline504(t, await timed('embedded GET (lock held)', () => host.request('GET', userPath(pk), undefined, budget(BUDGET))), BUDGET, 'GET waiting for the lock');
  release();
  released = true;
  t.equal((await host.request('GET', userPath(pk))).status, 404, 'the transaction that timed out waiting was not applied');
  t.equal((await host.request('POST', '/v1/transactions/write', tx, budget(BUDGET))).status, 200, 'with the lock free it commits');
});

t.test('the lean DynamoDB client bounds its attempt by the deadline and retries nothing it cannot finish', async (t) => {
  const client = new LeanDynamoClient({ region: 'us-east-1', endpoint: proxy.url, credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  t.teardown(() => client.close());
  proxy.delay = () => HELD;
  t.teardown(() => (proxy.delay = () => 0));
  const started = performance.now();
  const err = await withDeadline(newDeadline(Date.now(), BUDGET, 'header'), () =>
    client.GetItem({ TableName: 'users', Key: { PK: { S: seeded }, SK: { S: 'PROFILE' } } }),
  ).catch((e: Error) => e);
  const ms = Math.round(performance.now() - started);
  times.push(`lean GetItem in ${ms} ms`);
  t.equal((err as Error).name, 'DeadlineExceeded', 'DeadlineExceeded');
  t.equal((err as { attempts?: number }).attempts, 1, 'one attempt: a retry could not have finished');
  t.ok(ms <= BUDGET + SLACK, `${ms} ms ≤ budget + ${SLACK}`);
});

await withTool(t, tools.moto(), 'on moto (real transactions) behind the delaying proxy', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  const mproxy = await startDelayProxy(moto.endpoint);
  t.teardown(() => mproxy.close());
  const m = await startTestSidecar({ backend: 'aws', dynamodbEndpoint: mproxy.url, createTables: true });
  t.teardown(() => m.close());
  const pk = `${RUN}#MOTO`;
  t.equal((await m.request('POST', '/v1/models/User/items', user(pk))).status, 201, 'seed on moto');
  const tx = (id: string) => ({ items: [{ op: 'put', model: 'User', item: user(id) }] });
  t.equal((await m.request('POST', '/v1/transactions/write', tx(`${pk}#WARM`))).status, 200, 'a transaction commits on moto through the proxy');

  mproxy.delay = () => HELD;
  deadline504(t, await timed('moto GET', () => m.request('GET', userPath(pk), undefined, budget(BUDGET))), BUDGET, 'moto GET');
  deadline504(t, await timed('moto transaction', () => m.request('POST', '/v1/transactions/write', tx(`${pk}#TX`), budget(BUDGET))), BUDGET, 'moto transaction write');

  const puts = Array.from({ length: 30 }, (_, i) => user(`${pk}#B${i < 25 ? 'FAST' : 'SLOW'}${i}`));
  mproxy.delay = (op, body) => (op === 'BatchWriteItem' && body.includes('SLOW') ? HELD : 0);
  const r = await timed('moto batch-write 30', () => m.request('POST', '/v1/models/User/batch-write', { puts }, budget(BUDGET)));
  deadline504(t, r, BUDGET, 'moto batch-write of 30');
  t.equal(r.res.json?.processed?.puts?.length, 25, 'moto: 25 puts reported applied');
  t.equal(r.res.json?.unprocessed?.puts?.length, 5, 'moto: 5 puts reported not applied');

  mproxy.delay = () => 0;
  await new Promise((resolve) => setTimeout(resolve, HELD + 100));
  t.equal((await m.request('GET', userPath(`${pk}#TX`))).status, 404, 'moto: the held transaction was never applied');
  const check = await m.request('POST', '/v1/models/User/batch-get', { keys: puts.map((p) => ukey(p.PK)), consistent: true });
  t.equal((check.json.items as Json[]).length, 25, 'moto: exactly the 25 reported applied are stored');
  mproxy.delay = (op) => (op === 'TransactWriteItems' ? 400 : 0);
  t.equal((await m.request('POST', '/v1/transactions/write', tx(`${pk}#SLOWOK`))).status, 200, 'moto: without the header a slow transaction still commits');
});
