// Conditional requests by version ETag (RFC 9110): If-Match compares strongly, so a weak tag never matches;
// If-None-Match on a read compares weakly and answers 304 when the caller already has the current version.
import t from 'tap';
import { startTestSidecar, type TestSidecar } from './helpers/sidecar.js';
import { problem } from './helpers/assert.js';

let s: TestSidecar;
t.before(async () => {
  s = await startTestSidecar();
});
t.teardown(() => s?.close());

const item = (pk: string) => `/v1/models/User/items/${encodeURIComponent(pk)}/PROFILE`;

async function create(pk: string): Promise<void> {
  const res = await s.request('POST', '/v1/models/User/items', { PK: pk, SK: 'PROFILE', email: `${pk}@example.com`, name: 'Ann' });
  if (res.status !== 201) throw new Error(`setup: ${res.status} ${res.text}`);
}

t.test('If-Match: a weak ETag never matches (412), a strong one does', async (t) => {
  await create('ET#1');
  for (const [method, body] of [['PATCH', { set: { name: 'Weak' } }], ['PUT', { email: 'w@example.com', name: 'Weak' }], ['DELETE', undefined]] as const) {
    const res = await s.request(method, item('ET#1'), body, { 'if-match': 'W/"0"' });
    problem(t, res, 412, 'ErrConditionFailed', `${method} with W/"0" on version 0`);
    t.match(res.json?.detail, /If-Match uses strong comparison.*weak ETag W\/"0" never matches.*If-Match: "0"/, `${method}: says why and what to send`);
  }
  const after = await s.request('GET', item('ET#1'));
  t.equal(after.status, 200, 'the item is still there');
  t.equal(after.json?.name, 'Ann', 'and unchanged');
  t.equal(after.json?.version, 0);

  const strong = await s.request('PATCH', item('ET#1'), { set: { name: 'Strong' } }, { 'if-match': '"0"' });
  t.equal(strong.status, 200, 'a strong "0" matches version 0');
  t.equal(strong.headers.get('etag'), '"1"');
});

t.test('If-None-Match on GET: 304 with the ETag and no body when a listed tag is the current version', async (t) => {
  await create('ET#2');
  const cases: [string, number][] = [
    ['"0"', 304],
    ['W/"0"', 304], // weak comparison
    ['"7", "0"', 304],
    ['*', 304],
    ['"1"', 200],
    ['W/"1", "2"', 200],
    ['"zero"', 200],
  ];
  for (const [header, status] of cases) {
    const res = await s.request('GET', item('ET#2'), undefined, { 'if-none-match': header });
    t.equal(res.status, status, `If-None-Match: ${header} → ${status}`);
    t.equal(res.headers.get('etag'), '"0"', `${header}: ETag of the current version`);
    if (status === 304) t.equal(res.text, '', `${header}: no body`);
    else t.equal(res.json?.PK, 'ET#2', `${header}: the item`);
  }
  const patched = await s.request('PATCH', item('ET#2'), { set: { name: 'New' } });
  t.equal(patched.headers.get('etag'), '"1"');
  const stale = await s.request('GET', item('ET#2'), undefined, { 'if-none-match': '"0"' });
  t.equal(stale.status, 200, 'an older version held: the new one is sent');
  t.equal(stale.json?.name, 'New');
  problem(t, await s.request('GET', item('ET#missing'), undefined, { 'if-none-match': '*' }), 404, 'ErrItemNotFound', 'If-None-Match: * on a missing item');
});
