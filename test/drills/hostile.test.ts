// Reliability drill: hostile inputs. Every request here is one a careless or malicious caller could send; each must be
// refused with a 4xx problem+json (or, where the brief allows it, stored exactly) and — the property this file exists
// for — refused BEFORE the backend is called: the sidecar's DynamoDB client is wrapped with a counter and every
// rejection asserts the counter did not move. Where a rejection is about a write, a direct read afterwards shows that
// nothing was written.
//
// Cases: items over 400 KB only once encrypted (taxId is an encrypted attribute), nesting deeper than 32, condition
// and filter expressions over 4 KB, 101-item transactions, batches over the configured cap (batchMaxItems = 10),
// invalid UTF-8, duplicate JSON keys, prototype-pollution keys, numbers DynamoDB cannot hold, invalid base64, and key
// values over DynamoDB's key-size limits.
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { startTestSidecar, type TestResponse } from '../helpers/sidecar.js';
import { DATA_PLANE_OPERATIONS } from '../../src/store/dataplane/port.js';

type Json = Record<string, any>;

const RUN = randomUUID().slice(0, 8);
const MAX_ITEM_BYTES = 400 * 1024;
const J = { 'content-type': 'application/json' };

const s = await startTestSidecar({ batchMaxItems: 10 });
t.teardown(() => s.close());

// Every DynamoDB call the sidecar makes goes through the backend's data plane (transactions included: the embedded
// one routes them to its coordinator). Counting here sees exactly what would reach DynamoDB.
let backendCalls = 0;
const dataPlane = s.sidecar.backend.dataPlane as unknown as Record<string, (input: unknown) => Promise<unknown>>;
for (const operation of DATA_PLANE_OPERATIONS) {
  const original = dataPlane[operation]!.bind(dataPlane);
  dataPlane[operation] = (input: unknown) => {
    backendCalls += 1;
    return original(input);
  };
}
const protoKeysBefore = Object.getOwnPropertyNames(Object.prototype).sort();

const user = (pk: string, extra: Json = {}): Json => ({ PK: `${RUN}#${pk}`, SK: 'P', email: `${pk.toLowerCase().replace(/[^a-z0-9]/g, '')}@example.com`, ...extra });
const userPath = (pk: string) => `/v1/models/User/items/${encodeURIComponent(`${RUN}#${pk}`)}/P`;
const userKey = (pk: string) => ({ PK: `${RUN}#${pk}`, SK: 'P' });
const order = (no: number, extra: Json = {}): Json => ({ customer_id: `${RUN}#C`, order_no: no, total: 1, currency: 'EUR', ...extra });

/** The body as sent: objects are JSON-encoded; strings and bytes go as they are (for hand-made JSON). */
async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<TestResponse & { calls: number }> {
  const before = backendCalls;
  const res = await s.request(method, path, body, body === undefined ? headers : { ...J, ...headers });
  return { ...res, calls: backendCalls - before };
}

/**
 * A refusal: the status (a number, or '4xx'), problem+json with a stable code, and no backend call.
 * Returns the response for further checks.
 */
async function refused(
  t: Test,
  what: string,
  method: string,
  path: string,
  body?: unknown,
  opts: { status?: number | '4xx'; code?: string | RegExp; headers?: Record<string, string> } = {},
): Promise<TestResponse> {
  const res = await call(method, path, body, opts.headers);
  const status = opts.status ?? 400;
  const statusOk = status === '4xx' ? res.status >= 400 && res.status < 500 : res.status === status;
  t.ok(statusOk, `${what}: ${status} (got ${res.status}${statusOk ? '' : ` ${res.text.slice(0, 300)}`})`);
  t.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, `${what}: problem+json`);
  t.match(res.json?.code ?? '', opts.code ?? /^Err[A-Za-z]+$/, `${what}: stable code (${res.json?.code})`);
  t.equal(res.calls, 0, `${what}: no backend call (made ${res.calls})`);
  return res;
}

async function absent(t: Test, what: string, path: string): Promise<void> {
  const res = await call('GET', `${path}?consistent=true`);
  t.equal(res.status, 404, `${what}: nothing was written (GET → ${res.status})`);
}

async function created(t: Test, what: string, path: string, body: unknown): Promise<Json> {
  const res = await call('POST', path, body);
  t.equal(res.status, 201, `${what}: 201 (got ${res.status} ${res.status === 201 ? '' : res.text.slice(0, 300)})`);
  return res.json ?? {};
}

/** DynamoDB's item size: UTF-8 lengths of names and string values; numbers as base-100 digits + 1. */
function plainSize(item: Record<string, string | number>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    size += Buffer.byteLength(name);
    size += typeof value === 'number' ? Math.ceil(String(value).replace(/^-|\.|^0+/g, '').length / 2) + 1 : Buffer.byteLength(value);
  }
  return size;
}

function nest(levels: number, leaf: unknown = 1): unknown {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}

// ---------------------------------------------------------------------------------------------------------------

t.test('items over 400 KB once encrypted: 400 ErrInvalidItem, nothing written, no backend call', async (t) => {
  // Just under the limit in plaintext, over it once taxId is sealed into its envelope (edk, nonce, tag, payload JSON).
  const stamp = '2026-01-01T00:00:00.000000000Z';
  const base = { PK: `${RUN}#BIG1`, SK: 'P', email: 'big1@example.com', createdAt: stamp, updatedAt: stamp, version: 0 };
  const room = MAX_ITEM_BYTES - plainSize(base) - Buffer.byteLength('taxId') - 16;
  const nearLimit = 'x'.repeat(room);
  t.ok(plainSize({ ...base, taxId: nearLimit }) <= MAX_ITEM_BYTES, `plaintext item is ${plainSize({ ...base, taxId: nearLimit })} bytes: under the limit`);
  // A 300 KB value of quotes: 300 KB in plaintext, ~600 KB once sealed (each " is escaped in the payload JSON).
  const quotes = '"'.repeat(300_000);

  await refused(t, 'create, near-limit taxId', 'POST', '/v1/models/User/items', user('BIG1', { taxId: nearLimit }), { code: 'ErrInvalidItem' });
  await absent(t, 'create, near-limit taxId', userPath('BIG1'));
  await refused(t, 'create, 300 KB of quotes', 'POST', '/v1/models/User/items', user('BIG2', { taxId: quotes }), { code: 'ErrInvalidItem' });
  await absent(t, 'create, 300 KB of quotes', userPath('BIG2'));
  await refused(t, 'upsert (ifNotExists=false)', 'POST', '/v1/models/User/items?ifNotExists=false', user('BIG3', { taxId: quotes }), { code: 'ErrInvalidItem' });
  await absent(t, 'upsert', userPath('BIG3'));
  await refused(t, 'PUT', 'PUT', userPath('BIG4'), { email: 'big4@example.com', taxId: nearLimit }, { code: 'ErrInvalidItem' });
  await absent(t, 'PUT', userPath('BIG4'));
  await refused(t, 'batch-write put', 'POST', '/v1/models/User/batch-write', { puts: [user('BIG5'), user('BIG6', { taxId: quotes })] }, { code: 'ErrInvalidItem' });
  await absent(t, 'batch-write: the valid sibling was not written either', userPath('BIG5'));
  await absent(t, 'batch-write: the oversized item', userPath('BIG6'));
  await refused(t, 'transaction create', 'POST', '/v1/transactions/write', { items: [{ op: 'create', model: 'User', item: user('BIG7', { taxId: quotes }) }] }, { code: 'ErrInvalidItem' });
  await absent(t, 'transaction create', userPath('BIG7'));
  await refused(t, 'transaction put', 'POST', '/v1/transactions/write', { items: [{ op: 'put', model: 'User', item: user('BIG8', { taxId: nearLimit }) }] }, { code: 'ErrInvalidItem' });
  await absent(t, 'transaction put', userPath('BIG8'));

  // Updates: the sidecar cannot know the whole stored item, but one value that alone is over 400 KB once sealed can
  // never fit, so it can be refused without asking DynamoDB.
  const existing = await created(t, 'an existing item to update', '/v1/models/User/items', user('BIG9', { taxId: 'small' }));
  await refused(t, 'PATCH set taxId (300 KB of quotes)', 'PATCH', userPath('BIG9'), { set: { taxId: quotes } }, { code: 'ErrInvalidItem' });
  await refused(t, 'PATCH set name (500 KB)', 'PATCH', userPath('BIG9'), { set: { name: 'n'.repeat(500_000) } }, { code: 'ErrInvalidItem' });
  await refused(t, 'transaction update set taxId', 'POST', '/v1/transactions/write', {
    items: [{ op: 'update', model: 'User', key: userKey('BIG9'), update: { set: { taxId: quotes } } }],
  }, { code: 'ErrInvalidItem' });
  const after = await call('GET', `${userPath('BIG9')}?consistent=true`);
  t.equal(after.json?.taxId, 'small', 'the existing item is unchanged');
  t.equal(after.json?.version, existing.version, 'its version did not move');
});

t.test('nesting deeper than 32 levels: 400, no backend call', async (t) => {
  const ok32 = await created(t, 'exactly 32 levels of maps is accepted', '/v1/models/User/items', user('NEST32', { profile: nest(32) }));
  t.same(ok32.profile, nest(32), '32 levels stored as sent');
  await refused(t, 'M attribute, 33 levels', 'POST', '/v1/models/User/items', user('NEST1', { profile: nest(33) }), { code: 'ErrInvalidItem' });
  await refused(t, 'L attribute, 33 levels', 'POST', '/v1/models/User/items', user('NEST2', { history: [nest(33)] }), { code: 'ErrInvalidItem' });
  await refused(t, 'Order.line_items, 40 levels', 'POST', '/v1/models/Order/items', order(1, { line_items: [nest(40)] }), { code: 'ErrInvalidItem' });
  await refused(t, 'json attribute, 300 levels', 'POST', '/v1/models/User/items', user('NEST3', { prefs: JSON.parse('['.repeat(300) + ']'.repeat(300)) }), { code: 'ErrInvalidItem' });
  // Far past any request's depth: refused for the body's depth, whether or not the body has a literal that sends it
  // through the exact-number reviver (which recurses: "3e5" in a string is enough to take that path).
  const deepArrays = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
  const deepObjects = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
  for (const [what, marker] of [['plain', 'n'], ['with a literal that looks inexact', '3e5']] as const) {
    const shapes = [
      ['profile', deepArrays, 'NEST4', '100 000 levels of arrays'],
      ['prefs', deepArrays, 'NEST9', '100 000 levels of arrays'],
      ['prefs', deepObjects, 'NEST5', '50 000 levels of objects'],
    ] as const;
    for (const [attr, nested, pk, depth] of shapes) {
      const body = `{"PK":"${RUN}#${pk}","SK":"P","email":"${marker}@example.com","${attr}":${nested}}`;
      const res = await refused(t, `${attr} nested ${depth}, ${what}`, 'POST', '/v1/models/User/items', body, { code: 'ErrInvalidRequest' });
      t.match(res.json?.detail, /nests \d+ levels deep; the limit is 1000/, 'the detail names the depth limit');
    }
  }
  // At the limit the body is parsed (reviver included) and the item's own 32-level rule refuses it; one more is too deep.
  const atLimit = `{"PK":"${RUN}#NEST4","SK":"P","email":"3e5@example.com","prefs":${'['.repeat(999)}${']'.repeat(999)}}`;
  await refused(t, 'body nested exactly 1000 levels', 'POST', '/v1/models/User/items', atLimit, { code: 'ErrInvalidItem' });
  const overLimit = `{"PK":"${RUN}#NEST4","SK":"P","email":"3e5@example.com","prefs":${'['.repeat(1000)}${']'.repeat(1000)}}`;
  await refused(t, 'body nested 1001 levels', 'POST', '/v1/models/User/items', overLimit, { code: 'ErrInvalidRequest' });
  const deepButBroken = `{"PK":"${RUN}#NEST4","SK":"P","email":"3e5@example.com","profile":${'['.repeat(100_000)}${']'.repeat(99_999)}}`;
  const broken = await refused(t, 'body nested 100 000 levels and missing one bracket', 'POST', '/v1/models/User/items', deepButBroken, { code: 'ErrInvalidRequest' });
  t.match(broken.json?.detail, /not valid JSON/, 'broken JSON is reported as such, not as too deep');
  await refused(t, 'PUT, 33 levels', 'PUT', userPath('NEST6'), { email: 'n@example.com', profile: nest(33) }, { code: 'ErrInvalidItem' });
  await refused(t, 'batch-write put, 33 levels', 'POST', '/v1/models/User/batch-write', { puts: [user('NEST7', { profile: nest(33) })] }, { code: 'ErrInvalidItem' });
  await refused(t, 'transaction create, 33 levels', 'POST', '/v1/transactions/write', { items: [{ op: 'create', model: 'User', item: user('NEST8', { profile: nest(33) }) }] }, { code: 'ErrInvalidItem' });
  for (const pk of ['NEST1', 'NEST2', 'NEST3', 'NEST4', 'NEST5', 'NEST6', 'NEST7', 'NEST8', 'NEST9']) await absent(t, pk, userPath(pk));

  await created(t, 'an item to update', '/v1/models/User/items', user('NEST9'));
  await refused(t, 'PATCH set, 33 levels', 'PATCH', userPath('NEST9'), { set: { profile: nest(33) } }, { code: 'ErrInvalidItem' });
  await refused(t, 'PATCH append, 40 levels', 'PATCH', userPath('NEST9'), { append: { history: [nest(40)] } }, { code: 'ErrInvalidItem' });
  await refused(t, 'condition value, 40 levels', 'PATCH', userPath('NEST9'), { set: { name: 'x' }, condition: { attr: 'profile', op: '=', value: nest(40) } });
  let deep: Json = { attr: 'name', op: 'exists' };
  for (let i = 0; i < 40; i++) deep = { not: deep };
  await refused(t, 'filter tree 40 levels deep', 'POST', '/v1/models/User/scan', { filter: deep });
  await refused(t, 'condition tree 40 levels deep (query string)', 'DELETE', `${userPath('NEST9')}?condition=${encodeURIComponent(JSON.stringify(deep))}`);
  t.equal((await call('GET', userPath('NEST9'))).json?.version, 0, 'the item was never updated');
});

t.test('condition and filter expressions over 4 KB: 400, no backend call', async (t) => {
  const leaves = Array.from({ length: 400 }, (_, i) => ({ attr: 'name', op: '=', value: `v${i}` }));
  // 1 100 path segments: a 2.2 KB attr becomes a 4.4 KB expression (#n1.#n1.…), short enough for a query string.
  const longPath = { attr: `profile${'.a'.repeat(1_100)}`, op: 'exists' };
  await created(t, 'an item to condition on', '/v1/models/User/items', user('EXPR1'));
  await refused(t, 'scan filter (400 leaves)', 'POST', '/v1/models/User/scan', { filter: { or: leaves } }, { code: 'ErrInvalidRequest' });
  await refused(t, 'query filter (400 leaves)', 'POST', '/v1/models/User/query', { partition: `${RUN}#EXPR1`, filter: { or: leaves } }, { code: 'ErrInvalidRequest' });
  await refused(t, 'scan filter (long path)', 'POST', '/v1/models/Order/scan', { filter: { attr: `line_items${'[0]'.repeat(1_400)}`, op: 'exists' } }, { code: 'ErrInvalidRequest' });
  await refused(t, 'PATCH condition', 'PATCH', userPath('EXPR1'), { set: { name: 'x' }, condition: { or: leaves } }, { code: 'ErrInvalidRequest' });
  await refused(t, 'PUT ?condition=', 'PUT', `${userPath('EXPR1')}?condition=${encodeURIComponent(JSON.stringify(longPath))}`, { email: 'e@example.com' }, { code: 'ErrInvalidRequest' });
  await refused(t, 'DELETE ?condition=', 'DELETE', `${userPath('EXPR1')}?condition=${encodeURIComponent(JSON.stringify(longPath))}`, undefined, { code: 'ErrInvalidRequest' });
  await refused(t, 'create ?condition=', 'POST', `/v1/models/User/items?condition=${encodeURIComponent(JSON.stringify(longPath))}`, user('EXPR2'), { code: 'ErrInvalidRequest' });
  await refused(t, 'transaction check condition', 'POST', '/v1/transactions/write', { items: [{ op: 'check', model: 'User', key: userKey('EXPR1'), condition: { or: leaves } }] }, { code: 'ErrInvalidRequest' });
  await refused(t, 'transaction update condition', 'POST', '/v1/transactions/write', { items: [{ op: 'update', model: 'User', key: userKey('EXPR1'), update: { set: { name: 'y' } }, condition: longPath }] }, { code: 'ErrInvalidRequest' });
  const after = await call('GET', `${userPath('EXPR1')}?consistent=true`);
  t.equal(after.json?.version, 0, 'the item was never written');
  await absent(t, 'create with an oversized condition', userPath('EXPR2'));
});

t.test('101 transaction items, batches over batchMaxItems (10): 400, no backend call', async (t) => {
  await refused(t, 'transactions/write with 101 items', 'POST', '/v1/transactions/write', { items: Array.from({ length: 101 }, (_, i) => ({ op: 'create', model: 'User', item: user(`TX${i}`) })) }, { code: 'ErrInvalidRequest' });
  await absent(t, 'transaction item 0', userPath('TX0'));
  await refused(t, 'transactions/get with 101 items', 'POST', '/v1/transactions/get', { items: Array.from({ length: 101 }, (_, i) => ({ model: 'User', key: userKey(`TX${i}`) })) }, { code: 'ErrInvalidRequest' });
  await refused(t, 'batch-get with 11 keys', 'POST', '/v1/models/User/batch-get', { keys: Array.from({ length: 11 }, (_, i) => userKey(`B${i}`)) }, { code: 'ErrInvalidRequest' });
  await refused(t, 'batch-write with 11 puts', 'POST', '/v1/models/User/batch-write', { puts: Array.from({ length: 11 }, (_, i) => user(`B${i}`)) });
  await refused(t, 'batch-write with 11 deletes', 'POST', '/v1/models/User/batch-write', { deletes: Array.from({ length: 11 }, (_, i) => userKey(`B${i}`)) });
  await refused(t, 'batch-write with 6 puts + 5 deletes', 'POST', '/v1/models/User/batch-write', { puts: Array.from({ length: 6 }, (_, i) => user(`B${i}`)), deletes: Array.from({ length: 5 }, (_, i) => userKey(`C${i}`)) }, { code: 'ErrInvalidRequest' });
  await refused(t, 'batch-write with 10 000 puts', 'POST', '/v1/models/Session/batch-write', { puts: Array.from({ length: 10_000 }, (_, i) => ({ id: `${RUN}#S${i}`, userId: 'u' })) });
  await absent(t, 'batch put 0', userPath('B0'));
  const ten = await call('POST', '/v1/models/User/batch-get', { keys: Array.from({ length: 10 }, (_, i) => userKey(`B${i}`)) });
  t.equal(ten.status, 200, 'exactly 10 keys is accepted');
});

t.test('invalid UTF-8 and lone surrogates: 400, no backend call', async (t) => {
  const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));
  const cases: [string, Buffer][] = [
    ['0xFF byte', bytes(`{"PK":"${RUN}#U1`, [0xff], '","SK":"P","email":"u@example.com"}')],
    ['overlong "/" (C0 AF)', bytes(`{"PK":"${RUN}#U2`, [0xc0, 0xaf], '","SK":"P","email":"u@example.com"}')],
    ['UTF-8-encoded surrogate (ED A0 80)', bytes(`{"PK":"${RUN}#U3`, [0xed, 0xa0, 0x80], '","SK":"P","email":"u@example.com"}')],
    ['truncated sequence (E2 82)', bytes(`{"PK":"${RUN}#U4","SK":"P","email":"u@example.com","name":"`, [0xe2, 0x82], '"}')],
    ['code point above U+10FFFF (F4 90 80 80)', bytes(`{"PK":"${RUN}#U5","SK":"P","email":"u@example.com","name":"`, [0xf4, 0x90, 0x80, 0x80], '"}')],
    ['bare continuation byte (80) in a key', bytes(`{"PK":"${RUN}#U6","SK":"P","email":"u@example.com","`, [0x80], '":"x"}')],
  ];
  for (const [what, body] of cases) await refused(t, `create: ${what}`, 'POST', '/v1/models/User/items', body, { code: 'ErrInvalidRequest' });
  for (const pk of ['U1', 'U2', 'U3', 'U4', 'U5', 'U6']) await absent(t, pk, userPath(pk));
  await refused(t, 'batch-write: 0xFF', 'POST', '/v1/models/User/batch-write', bytes(`{"puts":[{"PK":"${RUN}#U7`, [0xff], '","SK":"P","email":"u@example.com"}]}'), { code: 'ErrInvalidRequest' });
  await refused(t, 'transactions/write: 0xFE', 'POST', '/v1/transactions/write', bytes(`{"items":[{"op":"create","model":"User","item":{"PK":"${RUN}#U8`, [0xfe], '","SK":"P","email":"u@example.com"}}]}'), { code: 'ErrInvalidRequest' });
  await refused(t, 'scan filter: 0xC3 0x28', 'POST', '/v1/models/User/scan', bytes('{"filter":{"attr":"name","op":"=","value":"', [0xc3, 0x28], '"}}'), { code: 'ErrInvalidRequest' });
  await refused(t, 'lone high surrogate escape in a key value', 'POST', '/v1/models/User/items', `{"PK":"${RUN}#U9\\ud800","SK":"P","email":"u@example.com"}`);
  await refused(t, 'lone low surrogate escape in a nested map key', 'POST', '/v1/models/User/items', `{"PK":"${RUN}#U10","SK":"P","email":"u@example.com","profile":{"\\udc00":1}}`);
  await refused(t, 'lone surrogate in a json attribute', 'POST', '/v1/models/User/items', `{"PK":"${RUN}#U11","SK":"P","email":"u@example.com","prefs":{"k":"\\ud83d"}}`);
  await refused(t, 'path: %FF', 'GET', '/v1/models/User/items/%FF/P', undefined, { code: 'ErrInvalidRequest' });
  await refused(t, 'path: encoded surrogate %ED%A0%80', 'DELETE', '/v1/models/User/items/%ED%A0%80/P', undefined, { code: 'ErrInvalidRequest' });
  await refused(t, 'query string ?condition=%FF', 'DELETE', `${userPath('U1')}?condition=%FF`);
  await refused(t, 'query string ?condition= with an encoded lone surrogate', 'DELETE', `${userPath('U1')}?condition=${encodeURIComponent('{"attr":"name","op":"=","value":"')}%ED%A0%80${encodeURIComponent('"}')}`);
  for (const pk of ['U7', 'U8', 'U9', 'U10', 'U11']) await absent(t, pk, userPath(pk));
});

t.test('duplicate JSON keys: 4xx with a code, no backend call', async (t) => {
  const p = `${RUN}#DUP`;
  await refused(t, 'top-level PK twice', 'POST', '/v1/models/User/items', `{"PK":"${p}A","PK":"${p}B","SK":"P","email":"d@example.com"}`);
  await absent(t, 'first PK', userPath('DUPA'));
  await absent(t, 'second PK', userPath('DUPB'));
  await refused(t, 'PK twice, one escaped (P\\u004b)', 'POST', '/v1/models/User/items', `{"PK":"${p}C","P\\u004b":"${p}D","SK":"P","email":"d@example.com"}`);
  await refused(t, 'nested map key twice', 'POST', '/v1/models/User/items', `{"PK":"${p}E","SK":"P","email":"d@example.com","profile":{"k":1,"k":2}}`);
  await refused(t, 'json attribute key twice', 'POST', '/v1/models/User/items', `{"PK":"${p}F","SK":"P","email":"d@example.com","prefs":{"a":{"b":1,"b":2}}}`);
  await refused(t, 'PUT: email twice', 'PUT', userPath('DUPG'), `{"email":"a@example.com","email":"b@example.com"}`);
  await created(t, 'an item to update', '/v1/models/User/items', user('DUPH'));
  await refused(t, 'PATCH: "set" twice', 'PATCH', userPath('DUPH'), '{"set":{"name":"a"},"set":{"status":"b"}}');
  await refused(t, 'PATCH: version twice', 'PATCH', userPath('DUPH'), '{"set":{"name":"a"},"version":5,"version":0}');
  await refused(t, 'batch-write: "puts" twice', 'POST', '/v1/models/User/batch-write', `{"puts":[{"PK":"${p}I","SK":"P","email":"d@example.com"}],"puts":[]}`);
  await refused(t, 'transaction entry: "op" twice', 'POST', '/v1/transactions/write', `{"items":[{"op":"check","op":"create","model":"User","item":{"PK":"${p}J","SK":"P","email":"d@example.com"}}]}`);
  await refused(t, 'scan: "limit" twice', 'POST', '/v1/models/User/scan', '{"limit":1,"limit":2}');
  await refused(t, 'condition query string: "attr" twice', 'DELETE', `${userPath('DUPH')}?condition=${encodeURIComponent('{"attr":"name","attr":"PK","op":"not_exists"}')}`);
  for (const pk of ['DUPC', 'DUPD', 'DUPE', 'DUPF', 'DUPG', 'DUPI', 'DUPJ']) await absent(t, pk, userPath(pk));
  const h = await call('GET', `${userPath('DUPH')}?consistent=true`);
  t.equal(h.status, 200, 'the item refused a duplicate-key condition is still there');
  t.equal(h.json?.version, 0, 'and was never updated');
});

t.test('prototype-pollution keys: 4xx, or stored as plain data; Object.prototype untouched', async (t) => {
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    const body = `{"PK":"${RUN}#PP-${key}","SK":"P","email":"p@example.com","${key}":{"polluted":"yes"}}`;
    await refused(t, `top-level ${key}`, 'POST', '/v1/models/User/items', body);
    await refused(t, `top-level ${key} in PATCH`, 'PATCH', userPath('PP-none'), `{"set":{"name":"x"},"${key}":{"polluted":"yes"}}`);
    await refused(t, `${key} inside PATCH set`, 'PATCH', userPath('PP-none'), `{"set":{"${key}":{"polluted":"yes"}}}`);
    await refused(t, `${key} in a scan body`, 'POST', '/v1/models/User/scan', `{"${key}":{"polluted":"yes"}}`);
    await refused(t, `${key} in a batch-get key`, 'POST', '/v1/models/User/batch-get', `{"keys":[{"PK":"a","SK":"b","${key}":{"polluted":"yes"}}]}`);
    await refused(t, `${key} in a transaction item`, 'POST', '/v1/transactions/write', `{"items":[{"op":"create","model":"User","item":{"PK":"${RUN}#PPT-${key}","SK":"P","email":"p@example.com","${key}":{"polluted":"yes"}}}]}`);
    await absent(t, `transaction item with ${key}`, userPath(`PPT-${key}`));
  }
  // Nested in a map (M), a list (L) and a json attribute: refusing is fine; accepting means storing plain data that
  // reads back exactly as written.
  const nested = [
    { what: 'map (M)', attr: 'profile', json: '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"keep":1}' },
    { what: 'list (L)', attr: 'history', json: '[{"__proto__":{"polluted":"yes"}},{"constructor":{"prototype":{"polluted":"yes"}}}]' },
    { what: 'json attribute', attr: 'prefs', json: '{"__proto__":{"polluted":"yes"},"prototype":{"polluted":"yes"}}' },
  ];
  for (const [i, c] of nested.entries()) {
    const pk = `PPN${i}`;
    const res = await call('POST', '/v1/models/User/items', `{"PK":"${RUN}#${pk}","SK":"P","email":"p@example.com","${c.attr}":${c.json}}`);
    if (res.status >= 400 && res.status < 500) {
      t.equal(res.calls, 0, `${c.what}: refused (${res.status}) without a backend call`);
      await absent(t, c.what, userPath(pk));
      continue;
    }
    t.equal(res.status, 201, `${c.what}: accepted`);
    const got = await call('GET', `${userPath(pk)}?consistent=true`);
    const sent = JSON.parse(`{"v":${c.json}}`).v;
    t.same(Object.keys(got.json?.[c.attr] ?? {}).sort(), Object.keys(sent).sort(), `${c.what}: the stored value keeps every key it was acknowledged with (${JSON.stringify(got.json?.[c.attr])})`);
    t.equal(JSON.stringify(got.json?.[c.attr]), JSON.stringify(res.json?.[c.attr]), `${c.what}: reads back exactly as the 201 acknowledged it`);
  }
  await created(t, 'an item to update', '/v1/models/User/items', user('PPU'));
  const patched = await call('PATCH', userPath('PPU'), '{"set":{"profile":{"__proto__":{"polluted":"yes"}}}}');
  t.ok(patched.status === 200 || (patched.status >= 400 && patched.status < 500), `PATCH with a nested __proto__: 200 or 4xx (got ${patched.status})`);
  const scan = await call('POST', '/v1/models/User/scan', { filter: { attr: 'profile.__proto__.polluted', op: 'exists' }, limit: 5 });
  t.ok(scan.status === 200 || (scan.status >= 400 && scan.status < 500), `filter path through __proto__: 200 or 4xx (got ${scan.status})`);

  t.equal(({} as Json).polluted, undefined, '({}).polluted is undefined in the sidecar process');
  t.equal((Object.prototype as Json).polluted, undefined, 'Object.prototype has no polluted property');
  t.same(Object.getOwnPropertyNames(Object.prototype).sort(), protoKeysBefore, 'Object.prototype gained no property');
  t.equal(Object.getPrototypeOf({}), Object.prototype, 'plain objects still have Object.prototype');
  // The sidecar still behaves.
  const fresh = await created(t, 'a normal create afterwards', '/v1/models/User/items', user('PP-AFTER', { profile: { a: 1 } }));
  t.same(fresh.profile, { a: 1 });
  const read = await call('GET', userPath('PP-AFTER'));
  t.equal(read.status, 200, 'a normal read afterwards');
  t.same(read.json?.profile, { a: 1 });
  t.equal((await call('GET', '/healthz')).status, 200, '/healthz still answers');
});

t.test('numbers DynamoDB cannot hold: 400 (no backend call), everything accepted is exact', async (t) => {
  const rejected: [string, string][] = [
    ['1e400', 'magnitude above 1E+126'],
    ['-1e400', 'negative, magnitude above 1E+126'],
    ['1e126', 'just above the largest exponent'],
    ['1e-131', 'just below the smallest magnitude'],
    ['1e-400', 'underflows a double to 0'],
    ['1e-1000', 'underflows a double to 0, 1 000-digit plain form'],
    ['123456789012345678901234567890123456789', '39 significant digits'],
    ['-1234567890.12345678901234567890123456789', '39 significant digits, negative fraction'],
    [`0.${'1'.repeat(600)}`, '600 significant digits (fraction)'],
    [`1.${'0'.repeat(600)}1`, '602 significant digits, rounds to 1 as a double'],
    [`0.${'0'.repeat(2_000)}1`, '1E-2001 written out'],
    [`1${'0'.repeat(2_000)}`, '1E+2000 written out'],
    ['1e99999999999', 'exponent that does not fit anything'],
  ];
  // Each case has its own key, so one wrongly accepted write cannot turn the next case into a 409.
  for (const [i, [literal, what]] of rejected.entries()) {
    await refused(t, `Order.total = ${literal.slice(0, 24)}${literal.length > 24 ? '…' : ''} (${what})`, 'POST', '/v1/models/Order/items', `{"customer_id":"${RUN}#N","order_no":${i},"total":${literal},"currency":"EUR"}`, { code: 'ErrInvalidItem' });
    await absent(t, `Order ${i}`, `/v1/models/Order/items/${encodeURIComponent(`${RUN}#N`)}/${i}`);
    await refused(t, `nested number ${literal.slice(0, 24)} (${what})`, 'POST', '/v1/models/User/items', `{"PK":"${RUN}#NUM${i}","SK":"P","email":"n@example.com","profile":{"n":${literal}}}`, { code: 'ErrInvalidItem' });
    await absent(t, `User NUM${i}`, userPath(`NUM${i}`));
  }
  await refused(t, 'a number set element 1e400', 'POST', '/v1/models/User/items', `{"PK":"${RUN}#NUM","SK":"P","email":"n@example.com","scores":[1,1e400]}`, { code: 'ErrInvalidItem' });
  await refused(t, 'decimal string "1e400"', 'POST', '/v1/models/Order/items', { customer_id: `${RUN}#N`, order_no: 1, total: '1e400', currency: 'EUR' }, { code: 'ErrInvalidItem' });
  await refused(t, 'integer attribute 1.5', 'POST', '/v1/models/User/items', `{"PK":"${RUN}#NUM","SK":"P","email":"n@example.com","age":1.5}`, { code: 'ErrInvalidItem' });
  await refused(t, 'number key in the path 1e400', 'GET', '/v1/models/Order/items/c/1e400', undefined, { code: 'ErrMissingPrimaryKey' });
  await refused(t, 'number key in the path, 39 digits', 'GET', '/v1/models/Order/items/c/123456789012345678901234567890123456789', undefined, { code: 'ErrMissingPrimaryKey' });
  await refused(t, 'Blob.ns key 1e400 in a batch-get', 'POST', '/v1/models/Blob/batch-get', '{"keys":[{"ns":1e400,"digest":"AAAA"}]}');
  await refused(t, 'PATCH add 1e400', 'PATCH', '/v1/models/Order/items/c/1', '{"add":{"total":1e400}}', { code: 'ErrInvalidItem' });
  await absent(t, 'no User was written', userPath('NUM'));

  // Accepted: stored and read back exactly (as a JSON number when a double holds it, else as a decimal string).
  const exact: [string, number | string][] = [
    ['-0', 0],
    ['1E+2', 100],
    ['2.50e-3', 0.0025],
    ['1e125', 1e125],
    ['1e-130', 1e-130],
    ['12345678901234567890123456789012345678', '12345678901234567890123456789012345678'],
    ['-0.12345678901234567890123456789012345678', '-0.12345678901234567890123456789012345678'],
    ['9.9999999999999999999999999999999999999e125', `99999999999999999999999999999999999999${'0'.repeat(88)}`],
    [`1${'0'.repeat(100)}`, 1e100],
  ];
  for (const [i, [literal, want]] of exact.entries()) {
    const res = await call('POST', '/v1/models/Order/items', `{"customer_id":"${RUN}#X","order_no":${i},"total":${literal},"currency":"EUR","line_items":[${literal}]}`);
    t.equal(res.status, 201, `total = ${literal.slice(0, 30)}: accepted (got ${res.status} ${res.status === 201 ? '' : res.text.slice(0, 200)})`);
    const got = await call('GET', `/v1/models/Order/items/${encodeURIComponent(`${RUN}#X`)}/${i}?consistent=true`);
    t.equal(got.json?.total, want, `total = ${literal.slice(0, 30)}: reads back exactly as ${String(want).slice(0, 40)}`);
    t.same(got.json?.line_items, [want], `nested ${literal.slice(0, 30)}: reads back exactly`);
  }
});

t.test('invalid base64: 400, no backend call', async (t) => {
  const bad = ['a', 'ab=', 'ab===', 'YR==', 'YQ=', 'ab-/', '!!!!', 'Y Q==', 'YQ==\n', 'Y\u0000Q=', '====', 'YQ==YQ=='];
  for (const value of bad) {
    await refused(t, `User.avatar ${JSON.stringify(value)}`, 'POST', '/v1/models/User/items', user('B64', { avatar: value }), { code: 'ErrInvalidItem' });
  }
  await refused(t, 'Blob.digest (sort key) in a body', 'POST', '/v1/models/Blob/items', { ns: 1, digest: 'a', label: 'x' });
  await refused(t, 'Blob.digest in the path: standard alphabet "+"', 'GET', '/v1/models/Blob/items/1/ab+c', undefined, { code: 'ErrMissingPrimaryKey' });
  await refused(t, 'Blob.digest in the path: "@@"', 'DELETE', '/v1/models/Blob/items/1/%40%40', undefined, { code: 'ErrMissingPrimaryKey' });
  await refused(t, 'Blob.digest in the path: 5 characters', 'GET', '/v1/models/Blob/items/1/AAAAA', undefined, { code: 'ErrMissingPrimaryKey' });
  await refused(t, 'batch-get key', 'POST', '/v1/models/Blob/batch-get', { keys: [{ ns: 1, digest: '@@' }] });
  await refused(t, 'batch-write delete key', 'POST', '/v1/models/Blob/batch-write', { deletes: [{ ns: 1, digest: 'YR==' }] });
  await refused(t, 'transaction get key', 'POST', '/v1/transactions/get', { items: [{ model: 'Blob', key: { ns: 1, digest: 'a' } }] });
  await refused(t, 'Order.receipt in a transaction create', 'POST', '/v1/transactions/write', { items: [{ op: 'create', model: 'Order', item: order(7, { receipt: '%%%%' }) }] });
  await created(t, 'an item to update', '/v1/models/User/items', user('B64U'));
  await refused(t, 'PATCH set avatar', 'PATCH', userPath('B64U'), { set: { avatar: 'a' } }, { code: 'ErrInvalidItem' });
  await refused(t, 'condition operand on a B attribute', 'PATCH', userPath('B64U'), { set: { name: 'x' }, condition: { attr: 'avatar', op: '=', value: 'YR==' } });
  await absent(t, 'no User was written', userPath('B64'));
  t.equal((await call('GET', `${userPath('B64U')}?consistent=true`)).json?.version, 0, 'the updated item never changed');
});

t.test("key values over DynamoDB's key-size limits: 400, no backend call", async (t) => {
  // DynamoDB: partition key values at most 2048 bytes, sort key values at most 1024 bytes.
  await refused(t, 'PK of 2049 bytes', 'POST', '/v1/models/User/items', { PK: 'K'.repeat(2049), SK: 'P', email: 'k@example.com' });
  await refused(t, 'SK of 1025 bytes', 'POST', '/v1/models/User/items', { PK: `${RUN}#KEY`, SK: 'S'.repeat(1025), email: 'k@example.com' });
  await refused(t, 'PK of 1025 × "é" (2050 bytes) in a batch-get', 'POST', '/v1/models/User/batch-get', { keys: [{ PK: 'é'.repeat(1025), SK: 'P' }] });
  const fits = await call('POST', '/v1/models/User/items', { PK: `${RUN}#${'K'.repeat(2048 - RUN.length - 1)}`, SK: 'S'.repeat(1024), email: 'k@example.com' });
  t.equal(fits.status, 201, 'keys of exactly 2048 and 1024 bytes are accepted');
});

t.test('afterwards: the sidecar still serves, Object.prototype is clean', async (t) => {
  t.equal(({} as Json).polluted, undefined);
  const res = await call('POST', '/v1/models/User/items', user('LAST'));
  t.equal(res.status, 201, 'create');
  t.equal(res.calls, 1, 'one backend call for a plain create');
  t.equal((await call('GET', userPath('LAST'))).status, 200, 'read');
});
