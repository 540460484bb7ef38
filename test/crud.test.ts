// Every item route's happy path and semantics over real HTTP: create/upsert, read with projection,
// replace, update clauses, delete, optimistic locking, condition trees, model listing, problem+json
// and request ids.
import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestSidecar, type TestResponse } from './helpers/sidecar.js';

const s = await startTestSidecar();
t.teardown(() => s.close());

const USERS = '/v1/models/User/items';
const SESSIONS = '/v1/models/Session/items';
const ORDERS = '/v1/models/Order/items';
const RFC3339_NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;
const BIG38 = '12345678901234567890123456789012345678';

const enc = encodeURIComponent;
const userPath = (pk: string, sk = 'PROFILE') => `${USERS}/${enc(pk)}/${enc(sk)}`;
const user = (pk: string, extra: Record<string, unknown> = {}) => ({ PK: pk, SK: 'PROFILE', email: 'ann@example.com', ...extra });
const cond = (c: unknown) => `condition=${enc(JSON.stringify(c))}`;
const ifMatch = (v: string) => ({ 'if-match': v });

type T = Test;

/** problem+json with type/title/status/detail/code. */
function isProblem(t: T, res: TestResponse, status: number, code: string | string[], what = ''): void {
  const label = (s: string) => `${what} ${s}`.trim();
  t.equal(res.status, status, label(`status ${status}`));
  t.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, label('problem+json'));
  const codes = Array.isArray(code) ? code : [code];
  t.ok(codes.includes(res.json?.code), label(`code ${codes.join('|')} (got ${res.json?.code})`));
  t.type(res.json?.type, 'string', label('type'));
  t.ok(String(res.json?.type ?? '').length > 0, label('type non-empty'));
  t.type(res.json?.title, 'string', label('title'));
  t.equal(res.json?.status, status, label('status field'));
  t.type(res.json?.detail, 'string', label('detail'));
}

async function create(t: T, pk: string, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const res = await s.request('POST', USERS, user(pk, extra));
  t.equal(res.status, 201, `create ${pk}`);
  return res.json;
}

async function get(pk: string, sk = 'PROFILE'): Promise<TestResponse> {
  return s.request('GET', userPath(pk, sk));
}

const ua_enc = (m: any) => Object.fromEntries(m.attributes.map((a: any) => [a.attribute, a.encrypted]));
const sorted = (a: unknown) => (Array.isArray(a) ? a.map(String).sort() : a);

t.test('GET /v1/models lists the four models with keys, indexes and attributes', async (t) => {
  const res = await s.request('GET', '/v1/models');
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const models = res.json?.models as any[];
  t.equal(models?.length, 4);
  const byName = Object.fromEntries((models ?? []).map((m) => [m.name, m]));
  t.same(Object.keys(byName).sort(), ['Blob', 'Order', 'Session', 'User']);

  const u = byName.User;
  t.equal(u.table, 'users');
  t.same(u.keys, { partition: { attribute: 'PK', type: 'S' }, sort: { attribute: 'SK', type: 'S' } });
  t.equal(u.indexes.length, 1);
  t.match(u.indexes[0], { name: 'gsi-email', type: 'GSI', partition: { attribute: 'email', type: 'S' }, projection: { type: 'ALL' } });
  t.equal(u.attributes.length, 21);
  t.match(ua_enc(u), { taxId: true, medical: true, name: false });
  const ua = Object.fromEntries(u.attributes.map((a: any) => [a.attribute, a]));
  t.match(ua.email, { type: 'S', required: true });
  t.match(ua.tags, { type: 'SS', omit_empty: true, optional: true });
  t.match(ua.prefs, { type: 'S', json: true });
  t.match(ua.ttl, { type: 'N', roles: ['ttl'], format: 'unix_seconds' });
  t.match(ua.version, { type: 'N', roles: ['version'] });
  t.match(ua.deletedAt, { type: 'NULL' });

  const o = byName.Order;
  t.equal(o.table, 'orders');
  t.same(o.keys, { partition: { attribute: 'customer_id', type: 'S' }, sort: { attribute: 'order_no', type: 'N' } });
  const oi = Object.fromEntries(o.indexes.map((i: any) => [i.name, i]));
  t.same(Object.keys(oi).sort(), ['gsi-status', 'lsi-status']);
  t.match(oi['lsi-status'], { type: 'LSI', sort: { attribute: 'status', type: 'S' }, projection: { type: 'KEYS_ONLY' } });
  t.match(oi['gsi-status'], { type: 'GSI', partition: { attribute: 'status' }, sort: { attribute: 'placed_at' } });
  t.same(oi['gsi-status'].projection, { type: 'INCLUDE', fields: ['total', 'currency'] });

  const b = byName.Blob;
  t.same(b.keys, { partition: { attribute: 'ns', type: 'N' }, sort: { attribute: 'digest', type: 'B' } });
  t.same(b.indexes, []);

  const se = byName.Session;
  t.same(se.keys, { partition: { attribute: 'id', type: 'S' } });
  t.same(se.attributes.map((a: any) => a.attribute).sort(), ['createdAt', 'expiresAt', 'id', 'updatedAt', 'userId']);

  const one = await s.request('GET', '/v1/models/User');
  t.equal(one.status, 200);
  t.same(one.json, u, '/v1/models/User is the same summary');
  const order = await s.request('GET', '/v1/models/Order');
  t.equal(order.json?.name, 'Order');
});

t.test('unknown models are 404 ErrModelNotFound under every path', async (t) => {
  isProblem(t, await s.request('GET', '/v1/models/Nope'), 404, 'ErrModelNotFound', 'GET model');
  isProblem(t, await s.request('GET', '/v1/models/Nope/items'), 404, 'ErrModelNotFound', 'GET items');
  isProblem(t, await s.request('POST', '/v1/models/Nope/items', { a: 1 }), 404, 'ErrModelNotFound', 'POST items');
  isProblem(t, await s.request('GET', '/v1/models/Nope/items/a/b'), 404, 'ErrModelNotFound', 'GET item');
  isProblem(t, await s.request('DELETE', '/v1/models/Nope/items/a'), 404, 'ErrModelNotFound', 'DELETE item');
  isProblem(t, await s.request('GET', '/v1/models/user'), 404, 'ErrModelNotFound', 'model names are case-sensitive');
  const detail = (await s.request('GET', '/v1/models/Nope')).json?.detail;
  t.ok(String(detail).includes('Nope'), 'detail names the model');
  isProblem(t, await s.request('GET', '/v1/nothing-here'), 404, 'ErrRouteNotFound', 'unknown route');
});

t.test('problem+json everywhere, x-request-id echoed or generated', async (t) => {
  const mine = await s.request('GET', '/v1/models', undefined, { 'x-request-id': 'req-abc.123:xyz' });
  t.equal(mine.headers.get('x-request-id'), 'req-abc.123:xyz', 'a sane request id is honoured');
  const mineErr = await s.request('GET', userPath('CRUD#RID#missing'), undefined, { 'x-request-id': 'err-req-42' });
  t.equal(mineErr.status, 404);
  t.equal(mineErr.headers.get('x-request-id'), 'err-req-42', 'echoed on errors too');
  isProblem(t, mineErr, 404, 'ErrItemNotFound', 'missing item');

  const a = await s.request('GET', '/v1/models');
  const b = await s.request('GET', '/v1/models');
  const ida = a.headers.get('x-request-id');
  const idb = b.headers.get('x-request-id');
  t.ok(ida && ida.length > 0, 'generated when absent');
  t.ok(idb && idb.length > 0);
  t.not(ida, idb, 'generated ids differ');
  t.match(ida, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a generated id is a version 4 UUID');
  const err = await s.request('GET', '/v1/models/Nope');
  t.ok((err.headers.get('x-request-id') ?? '').length > 0, 'generated on errors');
  const insane = await s.request('GET', '/v1/models', undefined, { 'x-request-id': 'has spaces and <html>' });
  t.ok((insane.headers.get('x-request-id') ?? '').length > 0);
  t.not(insane.headers.get('x-request-id'), 'has spaces and <html>', 'an unsafe id is replaced');

  const malformed = await s.request('POST', USERS, '{"PK": "x",');
  isProblem(t, malformed, 400, 'ErrInvalidRequest', 'malformed JSON');
  await create(t, 'CRUD#RID#1');
  isProblem(t, await s.request('POST', USERS, user('CRUD#RID#1')), 409, 'ErrConditionFailed', 'duplicate create');
  isProblem(t, await s.request('POST', USERS, user('CRUD#RID#2', { bogus: 1 })), 400, 'ErrInvalidItem', 'unknown attribute');
  isProblem(
    t,
    await s.request('PATCH', userPath('CRUD#RID#1'), { set: { name: 'x' } }, ifMatch('"9"')),
    412,
    'ErrConditionFailed',
    'stale If-Match',
  );
});

t.test('create: 201, ETag "0", lifecycle attributes, 409 on an existing key', async (t) => {
  const res = await s.request('POST', USERS, user('CRUD#C#1', { name: 'Ann', status: 'active', age: 30 }));
  t.equal(res.status, 201);
  t.match(res.headers.get('content-type') ?? '', /^application\/json/);
  t.equal(res.headers.get('etag'), '"0"');
  t.equal(res.json?.version, 0);
  t.match(res.json?.createdAt, RFC3339_NANO);
  t.equal(res.json?.updatedAt, res.json?.createdAt);
  t.match(res.json, { PK: 'CRUD#C#1', SK: 'PROFILE', email: 'ann@example.com', name: 'Ann', status: 'active', age: 30 });
  const got = await get('CRUD#C#1');
  t.equal(got.status, 200);
  t.equal(got.headers.get('etag'), '"0"', 'GET carries the ETag');
  t.same(got.json, res.json);

  const dup = await s.request('POST', USERS, user('CRUD#C#1', { name: 'Other' }));
  isProblem(t, dup, 409, 'ErrConditionFailed', 'duplicate');
  t.equal(dup.json?.reason, 'item_exists', 'the reason says the key exists');
  t.equal((await get('CRUD#C#1')).json?.name, 'Ann', 'the existing item is untouched');

  const explicit = await s.request('POST', `${USERS}?ifNotExists=true`, user('CRUD#C#1'));
  t.equal(explicit.status, 409, '?ifNotExists=true is the default');
  const bad = await s.request('POST', `${USERS}?ifNotExists=maybe`, user('CRUD#C#2'));
  isProblem(t, bad, 400, 'ErrInvalidRequest', 'bad boolean query');
  t.equal((await get('CRUD#C#2')).status, 404);

  const withVersion = await s.request('POST', USERS, user('CRUD#C#3', { version: 7 }));
  t.equal(withVersion.status, 201);
  t.equal(withVersion.json?.version, 0, 'a body version is never written on create');
});

t.test('create ?ifNotExists=false upserts', async (t) => {
  const fresh = await s.request('POST', `${USERS}?ifNotExists=false`, user('CRUD#UP#1', { name: 'First', status: 'new' }));
  t.equal(fresh.status, 201);
  t.equal(fresh.json?.version, 0);
  t.equal(fresh.headers.get('etag'), '"0"');
  await sleep(5);
  const again = await s.request('POST', `${USERS}?ifNotExists=false`, user('CRUD#UP#1', { name: 'Second' }));
  t.ok(again.status === 200 || again.status === 201, `upsert over an existing key succeeds (${again.status})`);
  t.equal(again.json?.name, 'Second');
  t.notOk('status' in (again.json ?? {}), 'an upsert replaces the whole item');
  t.equal(again.json?.version, 1, 'version moves on');
  t.equal(again.headers.get('etag'), '"1"');
  t.equal(again.json?.createdAt, fresh.json?.createdAt, 'createdAt kept');
  t.not(again.json?.updatedAt, fresh.json?.updatedAt, 'updatedAt changes');
  const got = await get('CRUD#UP#1');
  t.equal(got.json?.name, 'Second');
  t.equal(got.json?.version, 1);
});

t.test('GET: ?fields projection, ?consistent, 404', async (t) => {
  await create(t, 'CRUD#G#1', { name: 'Ann', status: 'active', age: 30, ttl: 1893456000, tags: ['a'] });
  const proj = await s.request('GET', `${userPath('CRUD#G#1')}?fields=name,status`);
  t.equal(proj.status, 200);
  t.same(Object.keys(proj.json ?? {}).sort(), ['PK', 'SK', 'name', 'status'], 'keys always included');
  t.same(proj.json, { PK: 'CRUD#G#1', SK: 'PROFILE', name: 'Ann', status: 'active' });
  const reserved = await s.request('GET', `${userPath('CRUD#G#1')}?fields=${enc('name,status,ttl')}`);
  t.same(reserved.json, { PK: 'CRUD#G#1', SK: 'PROFILE', name: 'Ann', status: 'active', ttl: 1893456000 }, 'reserved words in projections');
  const spaced = await s.request('GET', `${userPath('CRUD#G#1')}?fields=${enc(' age , tags ')}`);
  t.equal(spaced.status, 200);
  t.same(Object.keys(spaced.json ?? {}).sort(), ['PK', 'SK', 'age', 'tags']);
  const keysOnly = await s.request('GET', `${userPath('CRUD#G#1')}?fields=PK`);
  t.same(keysOnly.json, { PK: 'CRUD#G#1', SK: 'PROFILE' });
  const absent = await s.request('GET', `${userPath('CRUD#G#1')}?fields=nickname`);
  t.same(absent.json, { PK: 'CRUD#G#1', SK: 'PROFILE' }, 'an absent attribute is just not returned');
  const withVersion = await s.request('GET', `${userPath('CRUD#G#1')}?fields=version`);
  t.equal(withVersion.json?.version, 0);

  const unknown = await s.request('GET', `${userPath('CRUD#G#1')}?fields=name,nope`);
  isProblem(t, unknown, 400, ['ErrInvalidRequest', 'ErrInvalidItem'], 'unknown field');
  t.ok(String(unknown.json?.detail).includes('nope'), 'detail names the unknown field');

  const consistent = await s.request('GET', `${userPath('CRUD#G#1')}?consistent=true`);
  t.equal(consistent.status, 200);
  t.equal(consistent.json?.name, 'Ann');
  t.equal(consistent.headers.get('etag'), '"0"');
  const notConsistent = await s.request('GET', `${userPath('CRUD#G#1')}?consistent=false`);
  t.equal(notConsistent.status, 200);
  t.same(notConsistent.json, consistent.json);
  const both = await s.request('GET', `${userPath('CRUD#G#1')}?consistent=true&fields=age`);
  t.same(both.json, { PK: 'CRUD#G#1', SK: 'PROFILE', age: 30 });
  isProblem(t, await s.request('GET', `${userPath('CRUD#G#1')}?consistent=yes`), 400, 'ErrInvalidRequest', 'bad consistent');

  isProblem(t, await get('CRUD#G#missing'), 404, 'ErrItemNotFound', 'missing item');
  isProblem(t, await get('CRUD#G#1', 'OTHER'), 404, 'ErrItemNotFound', 'other sort key');
  const noSortKey = await s.request('GET', `${USERS}/${enc('CRUD#G#1')}`);
  isProblem(t, noSortKey, 400, 'ErrMissingPrimaryKey', 'a User path without its sort key');
  t.match(noSortKey.json?.detail, /\/items\/\{PK\}\/\{SK\}.*%23/, 'names the path shape and the # encoding');
});

t.test('PUT: replace semantics, keys, lifecycle, versions', async (t) => {
  const created = await create(t, 'CRUD#P#1', { name: 'Ann', status: 'active', tags: ['a'] });
  await sleep(5);
  const replaced = await s.request('PUT', userPath('CRUD#P#1'), { email: 'new@example.com', age: 31 });
  t.equal(replaced.status, 200);
  t.equal(replaced.headers.get('etag'), '"1"');
  t.equal(replaced.json?.version, 1, 'version increments');
  t.equal(replaced.json?.createdAt, created.createdAt, 'createdAt kept across PUT');
  t.match(replaced.json?.updatedAt, RFC3339_NANO);
  t.not(replaced.json?.updatedAt, created.updatedAt, 'updatedAt changes');
  t.ok(replaced.json?.updatedAt > created.updatedAt, 'updatedAt moves forward');
  t.same(
    Object.keys(replaced.json ?? {}).sort(),
    ['PK', 'SK', 'age', 'createdAt', 'email', 'updatedAt', 'version'],
    'attributes absent from the body are removed',
  );
  t.same((await get('CRUD#P#1')).json, replaced.json);

  const withKeys = await s.request('PUT', userPath('CRUD#P#1'), { PK: 'CRUD#P#1', SK: 'PROFILE', email: 'a@example.com', name: 'K' });
  t.equal(withKeys.status, 200, 'keys in the body that match the path are fine');
  t.equal(withKeys.json?.version, 2);
  t.equal(withKeys.json?.name, 'K');

  const wrongSk = await s.request('PUT', userPath('CRUD#P#1'), { PK: 'CRUD#P#1', SK: 'OTHER', email: 'a@example.com' });
  isProblem(t, wrongSk, 400, 'ErrInvalidItem', 'SK mismatch');
  t.ok(String(wrongSk.json?.detail).includes('SK'));
  const wrongPk = await s.request('PUT', userPath('CRUD#P#1'), { PK: 'CRUD#P#2', email: 'a@example.com' });
  isProblem(t, wrongPk, 400, 'ErrInvalidItem', 'PK mismatch');
  t.equal((await get('CRUD#P#1')).json?.version, 2, 'mismatched PUTs changed nothing');
  t.equal((await get('CRUD#P#2')).status, 404, 'and wrote nothing under the body key');

  const forged = await s.request('PUT', userPath('CRUD#P#1'), {
    email: 'a@example.com',
    createdAt: '2000-01-01T00:00:00.000000000Z',
    updatedAt: '2000-01-01T00:00:00.000000000Z',
  });
  t.equal(forged.status, 200, 'lifecycle attributes in a PUT body are ignored');
  t.equal(forged.json?.createdAt, created.createdAt);
  t.not(forged.json?.updatedAt, '2000-01-01T00:00:00.000000000Z');
  t.equal(forged.json?.version, 3);

  // Read-modify-write: a GET body can be PUT back as is.
  const current = (await get('CRUD#P#1')).json;
  const roundTrip = await s.request('PUT', userPath('CRUD#P#1'), current);
  t.equal(roundTrip.status, 200, 'a read item PUT back unchanged is accepted (version = expected version)');
  t.equal(roundTrip.json?.version, 4);
  const staleRoundTrip = await s.request('PUT', userPath('CRUD#P#1'), current);
  isProblem(t, staleRoundTrip, 412, 'ErrConditionFailed', 'body version is the expected version');

  const missing = await s.request('PUT', userPath('CRUD#P#new'), { email: 'n@example.com', name: 'New' });
  t.ok(missing.status === 200 || missing.status === 201, `PUT on a missing item creates it (${missing.status})`);
  t.equal(missing.json?.version, 0, 'created with version 0');
  t.equal(missing.headers.get('etag'), '"0"');
  t.match(missing.json?.createdAt, RFC3339_NANO);
  t.equal(missing.json?.createdAt, missing.json?.updatedAt);
  t.equal(missing.json?.PK, 'CRUD#P#new');
  t.equal((await get('CRUD#P#new')).json?.name, 'New');
});

t.test('PUT: If-Match, body version and ?condition', async (t) => {
  await create(t, 'CRUD#PV#1', { name: 'Ann', profile: { city: 'Paris' } });
  const ok = await s.request('PUT', userPath('CRUD#PV#1'), { email: 'a@example.com', name: 'v1', profile: { city: 'Paris' } }, ifMatch('"0"'));
  t.equal(ok.status, 200);
  t.equal(ok.json?.version, 1);
  const stale = await s.request('PUT', userPath('CRUD#PV#1'), { email: 'a@example.com', name: 'x' }, ifMatch('"0"'));
  isProblem(t, stale, 412, 'ErrConditionFailed', 'stale If-Match');
  const weak = await s.request('PUT', userPath('CRUD#PV#1'), { email: 'a@example.com', name: 'v2', profile: { city: 'Paris' } }, ifMatch('W/"1"'));
  isProblem(t, weak, 412, 'ErrConditionFailed', 'a weak ETag never matches If-Match (strong comparison)');
  const strong = await s.request('PUT', userPath('CRUD#PV#1'), { email: 'a@example.com', name: 'v2', profile: { city: 'Paris' } }, ifMatch('"1"'));
  t.equal(strong.status, 200, 'the same version as a strong ETag matches');
  t.equal(strong.json?.version, 2);
  const star = await s.request('PUT', userPath('CRUD#PV#1'), { email: 'a@example.com', name: 'v3', profile: { city: 'Paris' } }, ifMatch('*'));
  t.equal(star.status, 200, 'If-Match * on an existing item');
  t.equal(star.json?.version, 3);
  const bodyVersion = await s.request('PUT', userPath('CRUD#PV#1'), { email: 'a@example.com', name: 'v4', version: 3, profile: { city: 'Paris' } });
  t.equal(bodyVersion.status, 200, 'body version as expected version');
  t.equal(bodyVersion.json?.version, 4);
  const staleBody = await s.request('PUT', userPath('CRUD#PV#1'), { email: 'a@example.com', name: 'x', version: 1 });
  isProblem(t, staleBody, 412, 'ErrConditionFailed', 'stale body version');
  isProblem(t, await s.request('PUT', userPath('CRUD#PV#1'), { email: 'a@example.com' }, ifMatch('abc')), 400, 'ErrInvalidRequest', 'bad If-Match');

  const condOk = await s.request('PUT', `${userPath('CRUD#PV#1')}?${cond({ attr: 'profile.city', op: '=', value: 'Paris' })}`, {
    email: 'a@example.com',
    name: 'v5',
  });
  t.equal(condOk.status, 200, 'passing ?condition');
  t.equal(condOk.json?.version, 5);
  const condFail = await s.request('PUT', `${userPath('CRUD#PV#1')}?${cond({ attr: 'name', op: '=', value: 'nope' })}`, {
    email: 'a@example.com',
    name: 'x',
  });
  isProblem(t, condFail, 412, 'ErrConditionFailed', 'failing ?condition');
  const current = await get('CRUD#PV#1');
  t.equal(current.json?.version, 5, 'failed PUTs changed nothing');
  t.equal(current.json?.name, 'v5');

  const starMissing = await s.request('PUT', userPath('CRUD#PV#missing'), { email: 'a@example.com' }, ifMatch('*'));
  t.ok(starMissing.status === 404 || starMissing.status === 412, `If-Match * on a missing item fails (${starMissing.status})`);
  const versionMissing = await s.request('PUT', userPath('CRUD#PV#missing'), { email: 'a@example.com' }, ifMatch('"0"'));
  t.ok(versionMissing.status === 404 || versionMissing.status === 412, `If-Match "0" on a missing item fails (${versionMissing.status})`);
  t.equal((await get('CRUD#PV#missing')).status, 404, 'nothing created');
});

t.test('PATCH: every clause', async (t) => {
  const created = await create(t, 'CRUD#U#1', {
    name: 'Ann',
    status: 'active',
    age: 30,
    tags: ['a', 'b'],
    scores: [1, 2],
    history: [{ at: 'h1' }],
    nickname: 'nick',
  });
  await sleep(5);
  const set = await s.request('PATCH', userPath('CRUD#U#1'), { set: { name: 'Annie', profile: { city: 'Paris', zip: 75001 } } });
  t.equal(set.status, 200);
  t.equal(set.headers.get('etag'), '"1"');
  t.equal(set.json?.version, 1);
  t.equal(set.json?.name, 'Annie');
  t.same(set.json?.profile, { city: 'Paris', zip: 75001 });
  t.equal(set.json?.status, 'active', 'untouched attributes are kept');
  t.equal(set.json?.createdAt, created.createdAt, 'createdAt kept');
  t.not(set.json?.updatedAt, created.updatedAt, 'updatedAt changes');
  t.match(set.json?.updatedAt, RFC3339_NANO);

  const sine = await s.request('PATCH', userPath('CRUD#U#1'), { setIfNotExists: { name: 'Other', active: true } });
  t.equal(sine.status, 200);
  t.equal(sine.json?.name, 'Annie', 'setIfNotExists does not overwrite');
  t.equal(sine.json?.active, true, 'setIfNotExists sets an absent attribute');
  t.equal(sine.json?.version, 2);
  // An empty omit_empty value in setIfNotExists writes nothing, and names no attribute DynamoDB would find unused.
  const sineItem = await s.request('POST', '/v1/models/User/items', { PK: 'CRUD#SINE#1', SK: 'PROFILE', email: 'sine@example.com' });
  t.equal(sineItem.status, 201);
  const sineEmpty = await s.request('PATCH', userPath('CRUD#SINE#1'), { setIfNotExists: { nickname: '' }, set: { status: 'active' } });
  t.equal(sineEmpty.status, 200, 'setIfNotExists of an empty omit_empty value is accepted', { body: sineEmpty.text });
  t.notOk('nickname' in (sineEmpty.json ?? {}), 'and writes nothing');
  t.equal(sineEmpty.json?.status, 'active');

  const removed = await s.request('PATCH', userPath('CRUD#U#1'), { remove: ['status', 'nickname'] });
  t.equal(removed.status, 200);
  t.notOk('status' in (removed.json ?? {}), 'status removed');
  t.notOk('nickname' in (removed.json ?? {}), 'nickname removed');
  t.equal(removed.json?.version, 3);

  const added = await s.request('PATCH', userPath('CRUD#U#1'), { add: { age: 5, tags: ['c'], scores: [3, 2] } });
  t.equal(added.status, 200);
  t.equal(added.json?.age, 35, 'add to a number');
  t.same(sorted(added.json?.tags), ['a', 'b', 'c'], 'add to a string set');
  t.same(sorted(added.json?.scores), ['1', '2', '3'], 'add to a number set');
  const negative = await s.request('PATCH', userPath('CRUD#U#1'), { add: { age: -40 } });
  t.equal(negative.json?.age, -5, 'add a negative number');

  const deleted = await s.request('PATCH', userPath('CRUD#U#1'), { delete: { tags: ['a', 'zzz'], scores: [1] } });
  t.equal(deleted.status, 200);
  t.same(sorted(deleted.json?.tags), ['b', 'c'], 'delete from a string set');
  t.same(sorted(deleted.json?.scores), ['2', '3'], 'delete from a number set');
  const emptied = await s.request('PATCH', userPath('CRUD#U#1'), { delete: { tags: ['b', 'c'] } });
  t.equal(emptied.status, 200);
  t.ok(emptied.json?.tags === undefined || (Array.isArray(emptied.json?.tags) && emptied.json.tags.length === 0), 'a set emptied by delete is gone');

  const appended = await s.request('PATCH', userPath('CRUD#U#1'), { append: { history: [{ at: 'h2' }, 'h3'] } });
  t.equal(appended.status, 200);
  t.same(appended.json?.history, [{ at: 'h1' }, { at: 'h2' }, 'h3'], 'append at the end');
  const prepended = await s.request('PATCH', userPath('CRUD#U#1'), { prepend: { history: [{ at: 'h0' }] } });
  t.same(prepended.json?.history, [{ at: 'h0' }, { at: 'h1' }, { at: 'h2' }, 'h3'], 'prepend at the start');

  const emptyOmit = await s.request('PATCH', userPath('CRUD#U#1'), { set: { nickname: 'n2', tags: ['t'] } });
  t.equal(emptyOmit.json?.nickname, 'n2');
  const toEmpty = await s.request('PATCH', userPath('CRUD#U#1'), { set: { nickname: '', tags: [], name: 'Still' } });
  t.equal(toEmpty.status, 200);
  t.notOk('nickname' in (toEmpty.json ?? {}), 'omit_empty attribute set to "" is removed');
  t.notOk('tags' in (toEmpty.json ?? {}), 'omit_empty set set to [] is removed');
  t.equal(toEmpty.json?.name, 'Still');
  const got = await get('CRUD#U#1');
  t.notOk('nickname' in (got.json ?? {}));
  t.notOk('tags' in (got.json ?? {}));

  const combined = await s.request('PATCH', userPath('CRUD#U#1'), {
    set: { status: 'vip' },
    setIfNotExists: { nickname: 'first' },
    remove: ['profile'],
    add: { age: 10 },
    append: { history: ['end'] },
  });
  t.equal(combined.status, 200, 'several clauses at once');
  t.match(combined.json, { status: 'vip', nickname: 'first', age: 5 });
  t.notOk('profile' in (combined.json ?? {}));
  t.equal(combined.json?.history?.at(-1), 'end');
  t.equal(combined.json?.version, 12, 'one version step per PATCH');
  t.equal(combined.headers.get('etag'), '"12"');

  const big = await s.request('PATCH', userPath('CRUD#U#1'), `{"set":{"age":${BIG38}}}`);
  t.equal(big.status, 200);
  t.equal(big.json?.age, BIG38, '38-digit value through PATCH set');
  const bigCond = await s.request('PATCH', userPath('CRUD#U#1'), `{"set":{"status":"big"},"condition":{"attr":"age","op":"=","value":${BIG38}}}`);
  t.equal(bigCond.status, 200, 'a 38-digit JSON number in a condition compares exactly');
  const bigCondFail = await s.request('PATCH', userPath('CRUD#U#1'), `{"set":{"status":"x"},"condition":{"attr":"age","op":"=","value":12345678901234567890123456789012345679}}`);
  t.equal(bigCondFail.status, 412, 'and is not rounded onto the stored value');
  const bigAdd = await s.request('PATCH', userPath('CRUD#U#1'), `{"add":{"age":1}}`);
  t.equal(bigAdd.json?.age, '12345678901234567890123456789012345679', 'exact arithmetic on a 38-digit value');
});

t.test('PATCH: add and append on absent attributes', async (t) => {
  await create(t, 'CRUD#UA#1');
  const res = await s.request('PATCH', userPath('CRUD#UA#1'), { add: { age: 3, tags: ['x'] }, append: { history: [1] } });
  t.equal(res.status, 200);
  t.equal(res.json?.age, 3);
  t.same(res.json?.tags, ['x']);
  t.same(res.json?.history, [1]);
  const pre = await s.request('PATCH', userPath('CRUD#UA#1'), { prepend: { history: [0] }, setIfNotExists: { status: 's' } });
  t.same(pre.json?.history, [0, 1]);
  t.equal(pre.json?.status, 's');
});

t.test('PATCH: add and append on an attribute stored as null are 409 ErrStoredTypeMismatch, and set clears it', async (t) => {
  const created = await s.request('POST', '/v1/models/User/items', { PK: 'CRUD#UN#1', SK: 'PROFILE', email: 'un@example.com', age: null, history: null });
  t.equal(created.status, 201);
  for (const [label, body] of [['add', { add: { age: 1 } }], ['append', { append: { history: [1] } }], ['prepend', { prepend: { history: [1] } }]] as const) {
    const res = await s.request('PATCH', userPath('CRUD#UN#1'), body);
    t.equal(res.status, 409, `${label} on null: 409`);
    t.equal(res.json?.code, 'ErrStoredTypeMismatch', `${label}: ErrStoredTypeMismatch`);
    t.match(res.json?.detail, /set the attribute first/, `${label}: says how to fix it`);
  }
  const after = await s.request('GET', userPath('CRUD#UN#1'));
  t.equal(after.json?.version, 0, 'nothing was written');
  const set = await s.request('PATCH', userPath('CRUD#UN#1'), { set: { age: 0 } });
  t.equal(set.status, 200);
  const added = await s.request('PATCH', userPath('CRUD#UN#1'), { add: { age: 2 } });
  t.equal(added.json?.age, 2, 'after a set, add works');
});

t.test('PATCH: 404, If-Match, body version', async (t) => {
  const missing = await s.request('PATCH', userPath('CRUD#UV#missing'), { set: { name: 'x' } });
  isProblem(t, missing, 404, 'ErrItemNotFound', 'missing item');
  t.equal((await get('CRUD#UV#missing')).status, 404, 'PATCH does not create');
  const missingStar = await s.request('PATCH', userPath('CRUD#UV#missing'), { set: { name: 'x' } }, ifMatch('*'));
  isProblem(t, missingStar, 404, 'ErrItemNotFound', 'If-Match * on a missing item');
  const missingSine = await s.request('PATCH', userPath('CRUD#UV#missing'), { setIfNotExists: { name: 'x' } });
  t.equal(missingSine.status, 404, 'setIfNotExists does not create the item either');
  t.equal((await get('CRUD#UV#missing')).status, 404);

  await create(t, 'CRUD#UV#1', { name: 'Ann' });
  const stale = await s.request('PATCH', userPath('CRUD#UV#1'), { set: { name: 'x' } }, ifMatch('"5"'));
  isProblem(t, stale, 412, 'ErrConditionFailed', 'If-Match mismatch');
  const ok = await s.request('PATCH', userPath('CRUD#UV#1'), { set: { name: 'v1' } }, ifMatch('"0"'));
  t.equal(ok.status, 200);
  t.equal(ok.json?.version, 1);
  const star = await s.request('PATCH', userPath('CRUD#UV#1'), { set: { name: 'v2' } }, ifMatch('*'));
  t.equal(star.status, 200, 'If-Match *');
  t.equal(star.json?.version, 2);
  const bodyOk = await s.request('PATCH', userPath('CRUD#UV#1'), { set: { name: 'v3' }, version: 2 });
  t.equal(bodyOk.status, 200, 'body version');
  t.equal(bodyOk.json?.version, 3);
  const bodyStale = await s.request('PATCH', userPath('CRUD#UV#1'), { set: { name: 'x' }, version: 2 });
  isProblem(t, bodyStale, 412, 'ErrConditionFailed', 'stale body version');
  const bareNumber = await s.request('PATCH', userPath('CRUD#UV#1'), { set: { name: 'v4' } }, ifMatch('3'));
  t.equal(bareNumber.status, 200, 'unquoted If-Match number');
  const after = await get('CRUD#UV#1');
  t.equal(after.json?.version, 4);
  t.equal(after.json?.name, 'v4', 'failed PATCHes changed nothing');
  isProblem(t, await s.request('PATCH', userPath('CRUD#UV#1'), { set: { name: 'x' } }, ifMatch('"-1"')), 400, 'ErrInvalidRequest', 'bad If-Match');
});

t.test('PATCH: keys, lifecycle attributes, empty and malformed updates are 400', async (t) => {
  await create(t, 'CRUD#UX#1', { name: 'Ann', age: 1, history: [] });
  const bad: [string, unknown][] = [
    ['set PK', { set: { PK: 'other' } }],
    ['set SK', { set: { SK: 'other' } }],
    ['remove SK', { remove: ['SK'] }],
    ['set createdAt', { set: { createdAt: '2000-01-01T00:00:00.000000000Z' } }],
    ['set updatedAt', { set: { updatedAt: '2000-01-01T00:00:00.000000000Z' } }],
    ['set version', { set: { version: 9 } }],
    ['remove createdAt', { remove: ['createdAt'] }],
    ['add version', { add: { version: 1 } }],
    ['empty body', {}],
    ['empty set', { set: {} }],
    ['only a condition', { condition: { attr: 'name', op: 'exists' } }],
    ['only a version', { version: 0 }],
    ['unknown attribute', { set: { bogus: 1 } }],
    ['unknown clause', { replace: { name: 'x' } }],
    ['attribute in two clauses', { set: { age: 2 }, add: { age: 1 } }],
    ['add to a string', { add: { name: 'x' } }],
    ['delete from a list', { delete: { history: [1] } }],
    ['append to a string', { append: { name: ['x'] } }],
    ['append a non-array', { append: { history: 'x' } }],
    ['remove a required attribute', { remove: ['email'] }],
    ['set a required attribute to null', { set: { email: null } }],
    ['wrong type', { set: { age: 'old' } }],
    ['add a fraction to an int attribute', { add: { age: 1.5 } }],
    ['duplicate set elements', { add: { tags: ['a', 'a'] } }],
  ];
  for (const [label, body] of bad) {
    const res = await s.request('PATCH', userPath('CRUD#UX#1'), body);
    isProblem(t, res, 400, ['ErrInvalidItem', 'ErrInvalidRequest'], label);
  }
  const keyRes = await s.request('PATCH', userPath('CRUD#UX#1'), { set: { SK: 'other' } });
  t.ok(String(keyRes.json?.detail).includes('SK'), 'detail names the key attribute');
  const after = await get('CRUD#UX#1');
  t.equal(after.json?.version, 0, 'nothing was written by the rejected updates');
  t.match(after.json, { name: 'Ann', age: 1, SK: 'PROFILE' });
});

t.test('index key values DynamoDB refuses (empty, over its size limits) are refused on every write path', async (t) => {
  // `email` is the partition key of gsi-email. DynamoDB rejects "" there; dynalite would store it, so the sidecar
  // refuses it itself and the embedded store behaves like production.
  const indexKey = /attribute email is a key of index gsi-email and cannot be empty/;
  const writes: [string, string, string, unknown][] = [
    ['create', 'POST', USERS, user('CRUD#IX#1', { email: '' })],
    ['put', 'PUT', userPath('CRUD#IX#1'), { email: '' }],
    ['batch-write put', 'POST', '/v1/models/User/batch-write', { puts: [user('CRUD#IX#1', { email: '' })] }],
    ['transaction create', 'POST', '/v1/transactions/write', { items: [{ op: 'create', model: 'User', item: user('CRUD#IX#1', { email: '' }) }] }],
  ];
  for (const [label, method, path, body] of writes) {
    const res = await s.request(method, path, body);
    isProblem(t, res, 400, 'ErrInvalidItem', label);
    t.match(res.json?.detail, indexKey, `${label}: the detail names the index`);
  }
  t.equal((await get('CRUD#IX#1')).status, 404, 'nothing was written');
  await create(t, 'CRUD#IX#2');
  const patch = await s.request('PATCH', userPath('CRUD#IX#2'), { set: { email: '' } });
  isProblem(t, patch, 400, 'ErrInvalidItem', 'PATCH set');
  t.match(patch.json?.detail, indexKey);
  t.equal((await get('CRUD#IX#2')).json?.email, 'ann@example.com', 'the item keeps its email');
  // A non-key attribute may still be empty.
  const named = await s.request('PATCH', userPath('CRUD#IX#2'), { set: { name: '' } });
  t.equal(named.status, 200, 'an empty non-key string is fine');
  // Index key size limits (DynamoDB: 2048 bytes for a partition key, 1024 for a sort key), also dynalite-blind.
  const long = (n: number) => 'é'.repeat(n / 2); // two UTF-8 bytes each: the limit is in bytes, not characters
  t.equal((await s.request('POST', USERS, user('CRUD#IX#3', { email: long(2048) }))).status, 201, 'a 2048-byte index partition key');
  const tooLong = await s.request('POST', USERS, user('CRUD#IX#4', { email: long(2050) }));
  isProblem(t, tooLong, 400, 'ErrInvalidItem', '2050 bytes');
  t.match(tooLong.json?.detail, /email is a key of index gsi-email: 2050 bytes; DynamoDB allows at most 2048/);
  // Order.status is the sort key of lsi-status and the partition key of gsi-status: the sort key limit applies.
  const order = (no: number, status: string) => ({ customer_id: 'CRUD#IX', order_no: no, total: 1, currency: 'EUR', status });
  t.equal((await s.request('POST', ORDERS, order(1, long(1024)))).status, 201, 'a 1024-byte index sort key');
  const status = await s.request('POST', ORDERS, order(2, long(1026)));
  isProblem(t, status, 400, 'ErrInvalidItem', '1026 bytes for a key of two indexes');
  t.match(status.json?.detail, /status is a key of index lsi-status, gsi-status: 1026 bytes; DynamoDB allows at most 1024/);
  t.equal((await s.request('GET', `${ORDERS}/CRUD%23IX/2`)).status, 404, 'the refused order was not written');

  const q = await s.request('POST', '/v1/models/User/query', { index: 'gsi-email', partition: '' });
  isProblem(t, q, 400, 'ErrMissingPrimaryKey', 'query with an empty index partition value');
  const q2 = await s.request('POST', '/v1/models/User/query', { partition: 'CRUD#IX#2', sort: { op: 'begins_with', value: '' } });
  isProblem(t, q2, 400, 'ErrMissingPrimaryKey', 'begins_with an empty sort key prefix');
});

t.test('DELETE: 204, idempotent, ?ifExists, If-Match, ?condition', async (t) => {
  await create(t, 'CRUD#D#1');
  const del = await s.request('DELETE', userPath('CRUD#D#1'));
  t.equal(del.status, 204);
  t.equal(del.text, '', '204 has no body');
  t.equal((await get('CRUD#D#1')).status, 404);
  t.equal((await s.request('DELETE', userPath('CRUD#D#1'))).status, 204, 'DELETE of a missing item is 204');
  isProblem(t, await s.request('DELETE', `${userPath('CRUD#D#1')}?ifExists=true`), 404, 'ErrItemNotFound', '?ifExists=true on a missing item');
  t.equal((await s.request('DELETE', `${userPath('CRUD#D#1')}?ifExists=false`)).status, 204);

  await create(t, 'CRUD#D#2');
  t.equal((await s.request('DELETE', `${userPath('CRUD#D#2')}?ifExists=true`)).status, 204, '?ifExists=true on an existing item');
  t.equal((await get('CRUD#D#2')).status, 404);

  await create(t, 'CRUD#D#3');
  await s.request('PATCH', userPath('CRUD#D#3'), { set: { name: 'x' } });
  isProblem(t, await s.request('DELETE', userPath('CRUD#D#3'), undefined, ifMatch('"0"')), 412, 'ErrConditionFailed', 'stale If-Match');
  t.equal((await get('CRUD#D#3')).status, 200, 'still there after a failed delete');
  t.equal((await s.request('DELETE', userPath('CRUD#D#3'), undefined, ifMatch('"1"'))).status, 204, 'matching If-Match');
  t.equal((await get('CRUD#D#3')).status, 404);
  const missingIfMatch = await s.request('DELETE', userPath('CRUD#D#3'), undefined, ifMatch('"1"'));
  t.ok(missingIfMatch.status === 404 || missingIfMatch.status === 412, `If-Match on a missing item fails (${missingIfMatch.status})`);
  await create(t, 'CRUD#D#4');
  t.equal((await s.request('DELETE', userPath('CRUD#D#4'), undefined, ifMatch('*'))).status, 204, 'If-Match *');
  isProblem(t, await s.request('DELETE', userPath('CRUD#D#4'), undefined, ifMatch('*')), 404, 'ErrItemNotFound', 'If-Match * on a missing item');

  await create(t, 'CRUD#D#5', { status: 'active', history: [{ at: 'login' }] });
  const condFail = await s.request('DELETE', `${userPath('CRUD#D#5')}?${cond({ attr: 'history[0].at', op: '=', value: 'logout' })}`);
  isProblem(t, condFail, 412, 'ErrConditionFailed', 'failing ?condition');
  t.equal((await get('CRUD#D#5')).status, 200, 'still there');
  const condOk = await s.request('DELETE', `${userPath('CRUD#D#5')}?${cond({ attr: 'status', op: 'in', values: ['active', 'vip'] })}`);
  t.equal(condOk.status, 204, 'passing ?condition');
  t.equal((await get('CRUD#D#5')).status, 404);
  isProblem(t, await s.request('DELETE', `${userPath('CRUD#D#5')}?condition=not-json`), 400, 'ErrInvalidRequest', 'malformed ?condition');
});

t.test('condition trees on PATCH: every operator, nesting, dotted paths, reserved words', async (t) => {
  await create(t, 'CRUD#COND#1', {
    name: 'Ann',
    status: 'active',
    age: 30,
    tags: ['a', 'b'],
    profile: { city: 'Paris', zip: 75001, tags: ['x'], inner: { deep: true } },
    history: [{ at: 'login' }, { at: 'logout' }, 'marker'],
    ttl: 1893456000,
  });
  const leaf = (attr: string, op: string, value?: unknown) => (value === undefined ? { attr, op } : { attr, op, value });
  const many = (attr: string, op: string, values: unknown[]) => ({ attr, op, values });
  const cases: [string, unknown, boolean][] = [
    ['= string', leaf('name', '=', 'Ann'), true],
    ['= string (fail)', leaf('name', '=', 'Bob'), false],
    ['= number', leaf('age', '=', 30), true],
    ['= decimal string on N', leaf('age', '=', '30'), true],
    ['= number (fail)', leaf('age', '=', 31), false],
    ['= ttl epoch', leaf('ttl', '=', 1893456000), true],
    ['= ttl RFC3339', leaf('ttl', '=', '2030-01-01T00:00:00Z'), true],
    ['<>', leaf('status', '<>', 'gone'), true],
    ['<> (fail)', leaf('status', '<>', 'active'), false],
    ['<', leaf('age', '<', 31), true],
    ['< (fail)', leaf('age', '<', 30), false],
    ['< string', leaf('name', '<', 'B'), true],
    ['<=', leaf('age', '<=', 30), true],
    ['<= (fail)', leaf('age', '<=', 29), false],
    ['>', leaf('age', '>', 29), true],
    ['> (fail)', leaf('age', '>', 30), false],
    ['> ttl', leaf('ttl', '>', 1000), true],
    ['>=', leaf('age', '>=', 30), true],
    ['>= (fail)', leaf('age', '>=', 31), false],
    ['between', many('age', 'between', [18, 65]), true],
    ['between inclusive', many('age', 'between', [30, 30]), true],
    ['between (fail)', many('age', 'between', [31, 40]), false],
    ['between strings', many('name', 'between', ['A', 'B']), true],
    ['in', many('status', 'in', ['active', 'vip']), true],
    ['in (fail)', many('status', 'in', ['vip', 'banned']), false],
    ['in numbers', many('age', 'in', [1, 30]), true],
    ['begins_with', leaf('name', 'begins_with', 'An'), true],
    ['begins_with (fail)', leaf('name', 'begins_with', 'Bo'), false],
    ['contains set', leaf('tags', 'contains', 'a'), true],
    ['contains set (fail)', leaf('tags', 'contains', 'z'), false],
    ['contains string', leaf('name', 'contains', 'nn'), true],
    ['contains string (fail)', leaf('name', 'contains', 'xx'), false],
    ['contains list element', leaf('history', 'contains', 'marker'), true],
    ['contains list element (fail)', leaf('history', 'contains', 'nope'), false],
    ['exists', leaf('name', 'exists'), true],
    ['exists (fail)', leaf('deletedAt', 'exists'), false],
    ['not_exists', leaf('deletedAt', 'not_exists'), true],
    ['not_exists (fail)', leaf('name', 'not_exists'), false],
    ['dotted =', leaf('profile.city', '=', 'Paris'), true],
    ['dotted = (fail)', leaf('profile.city', '=', 'Lyon'), false],
    ['dotted number >', leaf('profile.zip', '>', 75000), true],
    ['dotted deep', leaf('profile.inner.deep', '=', true), true],
    ['dotted contains', leaf('profile.tags', 'contains', 'x'), true],
    ['dotted exists', leaf('profile.city', 'exists'), true],
    ['dotted exists (fail)', leaf('profile.country', 'exists'), false],
    ['list index', leaf('history[0].at', '=', 'login'), true],
    ['list index (fail)', leaf('history[1].at', '=', 'login'), false],
    ['list index begins_with', leaf('history[1].at', 'begins_with', 'log'), true],
    ['list index not_exists', leaf('history[5]', 'not_exists'), true],
    ['list index in', many('history[0].at', 'in', ['x', 'login']), true],
    ['and', { and: [leaf('name', '=', 'Ann'), leaf('age', '=', 30)] }, true],
    ['and (fail)', { and: [leaf('name', '=', 'Ann'), leaf('age', '=', 31)] }, false],
    ['single and', { and: [leaf('name', '=', 'Ann')] }, true],
    ['or', { or: [leaf('name', '=', 'Bob'), leaf('age', '=', 30)] }, true],
    ['or (fail)', { or: [leaf('name', '=', 'Bob'), leaf('age', '=', 31)] }, false],
    ['not', { not: leaf('name', '=', 'Bob') }, true],
    ['not (fail)', { not: leaf('name', '=', 'Ann') }, false],
    [
      'nested',
      {
        and: [
          { or: [leaf('name', '=', 'Bob'), { not: leaf('status', '=', 'gone') }] },
          { not: { and: [leaf('age', '=', 30), leaf('name', '=', 'Bob')] } },
          many('profile.zip', 'between', [75000, 75999]),
        ],
      },
      true,
    ],
    [
      'nested (fail)',
      {
        or: [
          { and: [leaf('name', '=', 'Ann'), { not: leaf('age', '>=', 18) }] },
          { not: { or: [leaf('status', '=', 'active')] } },
        ],
      },
      false,
    ],
  ];
  let version = 0;
  for (const [i, [label, condition, pass]] of cases.entries()) {
    const res = await s.request('PATCH', userPath('CRUD#COND#1'), { set: { nickname: `n${i}` }, condition });
    if (pass) {
      t.equal(res.status, 200, `${label}: passes (${res.json?.detail ?? ''})`);
      if (res.status === 200) {
        t.equal(res.json?.version, version + 1, `${label}: version moved on by one`);
        version = res.json?.version;
      }
    } else {
      isProblem(t, res, 412, 'ErrConditionFailed', label);
    }
  }
  const after = await get('CRUD#COND#1');
  t.equal(after.json?.version, version, 'only passing conditions wrote');

  // A condition together with If-Match: both must hold.
  const both = await s.request('PATCH', userPath('CRUD#COND#1'), { set: { nickname: 'both' }, condition: leaf('name', '=', 'Ann') }, ifMatch(`"${version}"`));
  t.equal(both.status, 200);
  const staleBoth = await s.request('PATCH', userPath('CRUD#COND#1'), { set: { nickname: 'x' }, condition: leaf('name', '=', 'Ann') }, ifMatch('"0"'));
  isProblem(t, staleBoth, 412, 'ErrConditionFailed', 'condition holds, version does not');
  const missing = await s.request('PATCH', userPath('CRUD#COND#missing'), { set: { nickname: 'x' }, condition: leaf('name', 'not_exists') });
  t.equal(missing.status, 404, 'condition on a missing item is still 404');
});

t.test('invalid conditions are 400', async (t) => {
  await create(t, 'CRUD#CI#1', { name: 'Ann' });
  const like = await s.request('PATCH', userPath('CRUD#CI#1'), { set: { status: 'x' }, condition: { attr: 'name', op: 'like', value: 'A%' } });
  isProblem(t, like, 400, 'ErrInvalidOperator', 'PATCH unknown operator');
  const eqeq = await s.request('PATCH', userPath('CRUD#CI#1'), {
    set: { status: 'x' },
    condition: { and: [{ attr: 'name', op: 'exists' }, { attr: 'name', op: '==', value: 'Ann' }] },
  });
  isProblem(t, eqeq, 400, 'ErrInvalidOperator', 'nested unknown operator');
  const badOp = { attr: 'name', op: 'matches', value: 'x' };
  isProblem(t, await s.request('DELETE', `${userPath('CRUD#CI#1')}?${cond(badOp)}`), 400, 'ErrInvalidOperator', 'DELETE unknown operator');
  isProblem(t, await s.request('PUT', `${userPath('CRUD#CI#1')}?${cond(badOp)}`, { email: 'a@example.com' }), 400, 'ErrInvalidOperator', 'PUT unknown operator');
  isProblem(t, await s.request('POST', `${USERS}?${cond(badOp)}`, user('CRUD#CI#2')), 400, 'ErrInvalidOperator', 'POST unknown operator');
  t.equal((await get('CRUD#CI#2')).status, 404, 'nothing created');

  const invalid: [string, unknown][] = [
    ['unknown attribute', { attr: 'nope', op: '=', value: 1 }],
    ['missing value', { attr: 'name', op: '=' }],
    ['between with one value', { attr: 'age', op: 'between', values: [1] }],
    ['in without values', { attr: 'age', op: 'in' }],
    ['empty and', { and: [] }],
    ['extra field', { attr: 'name', op: 'exists', extra: 1 }],
    ['wrong value type', { attr: 'age', op: '=', value: 'old' }],
    ['ttl value that is neither epoch seconds nor RFC3339', { attr: 'ttl', op: '=', value: 'SECRET-TTL-COND' }],
    ['not an object', 'name = Ann'],
  ];
  for (const [label, condition] of invalid) {
    const res = await s.request('PATCH', userPath('CRUD#CI#1'), { set: { status: 'x' }, condition });
    isProblem(t, res, 400, ['ErrInvalidRequest', 'ErrInvalidItem'], label);
    t.notOk(res.text.includes('SECRET-TTL-COND'), `${label}: the value is not echoed`);
  }
  t.equal((await get('CRUD#CI#1')).json?.version, 0, 'nothing written');
});

t.test('conditions on POST, PUT and DELETE via ?condition=', async (t) => {
  const created = await s.request('POST', `${USERS}?${cond({ attr: 'name', op: 'not_exists' })}`, user('CRUD#CQ#1', { name: 'Ann', status: 'active' }));
  t.equal(created.status, 201, 'create with a condition that holds on the absent item');
  const failedCreate = await s.request('POST', `${USERS}?${cond({ attr: 'name', op: 'exists' })}`, user('CRUD#CQ#2'));
  isProblem(t, failedCreate, 412, 'ErrConditionFailed', 'create with a failing condition');
  t.equal((await get('CRUD#CQ#2')).status, 404);
  const existing = await s.request('POST', `${USERS}?${cond({ attr: 'name', op: 'exists' })}`, user('CRUD#CQ#1'));
  t.equal(existing.status, 409, 'create on an existing key is still 409');

  const upsertOk = await s.request(
    'POST',
    `${USERS}?ifNotExists=false&${cond({ and: [{ attr: 'name', op: '=', value: 'Ann' }, { attr: 'status', op: '<>', value: 'gone' }] })}`,
    user('CRUD#CQ#1', { name: 'Upserted' }),
  );
  t.ok(upsertOk.status === 200 || upsertOk.status === 201, `upsert with a passing condition (${upsertOk.status})`);
  t.equal(upsertOk.json?.name, 'Upserted');
  const upsertFail = await s.request('POST', `${USERS}?ifNotExists=false&${cond({ attr: 'name', op: '=', value: 'Ann' })}`, user('CRUD#CQ#1', { name: 'X' }));
  isProblem(t, upsertFail, 412, 'ErrConditionFailed', 'upsert with a failing condition');
  t.equal((await get('CRUD#CQ#1')).json?.name, 'Upserted');

  const putOk = await s.request('PUT', `${userPath('CRUD#CQ#1')}?${cond({ attr: 'name', op: 'begins_with', value: 'Up' })}`, {
    email: 'a@example.com',
    name: 'Put',
    profile: { city: 'Oslo' },
  });
  t.equal(putOk.status, 200);
  const putFail = await s.request('PUT', `${userPath('CRUD#CQ#1')}?${cond({ attr: 'profile.city', op: '=', value: 'Paris' })}`, {
    email: 'a@example.com',
    name: 'X',
  });
  isProblem(t, putFail, 412, 'ErrConditionFailed', 'PUT with a failing dotted condition');
  const delFail = await s.request('DELETE', `${userPath('CRUD#CQ#1')}?${cond({ not: { attr: 'profile.city', op: '=', value: 'Oslo' } })}`);
  isProblem(t, delFail, 412, 'ErrConditionFailed', 'DELETE with a failing condition');
  const delOk = await s.request('DELETE', `${userPath('CRUD#CQ#1')}?${cond({ attr: 'profile.city', op: '=', value: 'Oslo' })}`);
  t.equal(delOk.status, 204);
  t.equal((await get('CRUD#CQ#1')).status, 404);
});

t.test('reserved words (name, status, ttl) in items, updates, conditions and projections', async (t) => {
  await create(t, 'CRUD#RW#1', { name: 'Ann', status: 'active', ttl: '2030-01-01T00:00:00Z' });
  const patched = await s.request('PATCH', userPath('CRUD#RW#1'), {
    set: { name: 'Bea', status: 'vip', ttl: '2031-01-01T00:00:00Z' },
    condition: { and: [{ attr: 'name', op: '=', value: 'Ann' }, { attr: 'status', op: '=', value: 'active' }, { attr: 'ttl', op: '=', value: 1893456000 }] },
  });
  t.equal(patched.status, 200);
  t.match(patched.json, { name: 'Bea', status: 'vip', ttl: 1924992000 });
  const proj = await s.request('GET', `${userPath('CRUD#RW#1')}?fields=name,status,ttl`);
  t.same(proj.json, { PK: 'CRUD#RW#1', SK: 'PROFILE', name: 'Bea', status: 'vip', ttl: 1924992000 });
  const removed = await s.request('PATCH', userPath('CRUD#RW#1'), { remove: ['ttl', 'status'], condition: { attr: 'ttl', op: 'exists' } });
  t.equal(removed.status, 200);
  t.notOk('ttl' in (removed.json ?? {}));
  t.notOk('status' in (removed.json ?? {}));
  const del = await s.request('DELETE', `${userPath('CRUD#RW#1')}?${cond({ and: [{ attr: 'name', op: '=', value: 'Bea' }, { attr: 'ttl', op: 'not_exists' }] })}`);
  t.equal(del.status, 204);

  // Order: status is an index key and a reserved word.
  const order = await s.request('POST', ORDERS, { customer_id: 'CRUD#RW', order_no: 1, total: 10, currency: 'EUR', status: 'placed' });
  t.equal(order.status, 201);
  const shipped = await s.request('PATCH', `${ORDERS}/${enc('CRUD#RW')}/1`, { set: { status: 'shipped' }, condition: { attr: 'status', op: '=', value: 'placed' } });
  t.equal(shipped.status, 200);
  t.equal(shipped.json?.status, 'shipped');
  const orderProj = await s.request('GET', `${ORDERS}/${enc('CRUD#RW')}/1?fields=status`);
  t.same(orderProj.json, { customer_id: 'CRUD#RW', order_no: 1, status: 'shipped' });
});

t.test('Session: no sort key, no version, no ETag', async (t) => {
  const created = await s.request('POST', SESSIONS, { id: 'CRUD#S#1', userId: 'u1', expiresAt: 1893456000 });
  t.equal(created.status, 201);
  t.equal(created.headers.get('etag'), null, 'no ETag without a version attribute');
  t.notOk('version' in (created.json ?? {}));
  t.match(created.json, { id: 'CRUD#S#1', userId: 'u1', expiresAt: 1893456000 });
  t.match(created.json?.createdAt, RFC3339_NANO);
  const path = `${SESSIONS}/${enc('CRUD#S#1')}`;
  const got = await s.request('GET', path);
  t.equal(got.status, 200);
  t.equal(got.headers.get('etag'), null);
  t.same(got.json, created.json);
  isProblem(t, await s.request('POST', SESSIONS, { id: 'CRUD#S#1', userId: 'u2' }), 409, 'ErrConditionFailed', 'duplicate session');

  await sleep(5);
  const patched = await s.request('PATCH', path, { set: { userId: 'u2' } });
  t.equal(patched.status, 200);
  t.equal(patched.headers.get('etag'), null);
  t.equal(patched.json?.userId, 'u2');
  t.not(patched.json?.updatedAt, created.json?.updatedAt);
  const put = await s.request('PUT', path, { userId: 'u3' });
  t.equal(put.status, 200);
  t.equal(put.headers.get('etag'), null);
  t.equal(put.json?.createdAt, created.json?.createdAt);
  t.notOk('expiresAt' in (put.json ?? {}), 'replace removed expiresAt');
  const putId = await s.request('PUT', path, { id: 'CRUD#S#other', userId: 'u3' });
  isProblem(t, putId, 400, 'ErrInvalidItem', 'PUT with a mismatching id');

  const versioned = await s.request('PATCH', path, { set: { userId: 'x' } }, ifMatch('"0"'));
  t.ok(versioned.status === 400 || versioned.status === 412, `If-Match with a version on an unversioned model fails (${versioned.status})`);
  t.equal((await s.request('GET', path)).json?.userId, 'u3');
  const star = await s.request('PATCH', path, { set: { userId: 'u4' } }, ifMatch('*'));
  t.equal(star.status, 200, 'If-Match * works without a version');
  isProblem(t, await s.request('PATCH', path, { set: { id: 'x' } }), 400, ['ErrInvalidItem', 'ErrInvalidRequest'], 'PATCH of the key');
  isProblem(t, await s.request('GET', `${SESSIONS}/${enc('CRUD#S#missing')}`), 404, 'ErrItemNotFound', 'missing session');
  t.equal((await s.request('GET', `${path}/extra`)).status, 404, 'no sort-key segment for Session');
  isProblem(t, await s.request('POST', SESSIONS, { userId: 'u' }), 400, 'ErrMissingPrimaryKey', 'missing id');
  t.equal((await s.request('DELETE', path)).status, 204);
  t.equal((await s.request('GET', path)).status, 404);
});
