import t from 'tap';
import { startTestSidecar } from './helpers/sidecar.js';

const s = await startTestSidecar();
t.teardown(() => s.close());

const user = {
  PK: 'USER#1',
  SK: 'PROFILE',
  email: 'ann@example.com',
  name: 'Ann',
  status: 'active',
};

t.test('create, read, replace, update, delete a User', async (t) => {
  const created = await s.request('POST', '/v1/models/User/items', user);
  t.equal(created.status, 201);
  t.equal(created.headers.get('etag'), '"0"');
  t.equal(created.json.version, 0);
  t.match(created.json.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  t.equal(created.json.createdAt, created.json.updatedAt);

  const got = await s.request('GET', '/v1/models/User/items/USER%231/PROFILE');
  t.equal(got.status, 200);
  t.same(got.json, created.json);

  const again = await s.request('POST', '/v1/models/User/items', user);
  t.equal(again.status, 409);
  t.match(again.json, { code: 'ErrConditionFailed', reason: 'item_exists' });
  t.match(again.headers.get('content-type'), /application\/problem\+json/);

  const patched = await s.request('PATCH', '/v1/models/User/items/USER%231/PROFILE', { set: { name: 'Annie' } }, { 'if-match': '"0"' });
  t.equal(patched.status, 200);
  t.equal(patched.json.name, 'Annie');
  t.equal(patched.json.version, 1);
  t.equal(patched.headers.get('etag'), '"1"');

  const stale = await s.request('PATCH', '/v1/models/User/items/USER%231/PROFILE', { set: { name: 'X' } }, { 'if-match': '"0"' });
  t.equal(stale.status, 412);
  t.equal(stale.json.code, 'ErrConditionFailed');

  const replaced = await s.request('PUT', '/v1/models/User/items/USER%231/PROFILE', { email: 'ann@example.com', age: 31 });
  t.equal(replaced.status, 200);
  t.equal(replaced.json.createdAt, created.json.createdAt, 'createdAt survives a replace');
  t.equal(replaced.json.version, 2);
  t.equal(replaced.json.name, undefined, 'replace removes attributes absent from the body');
  t.equal(replaced.json.age, 31);

  const del = await s.request('DELETE', '/v1/models/User/items/USER%231/PROFILE', undefined, { 'if-match': '"2"' });
  t.equal(del.status, 204);
  const gone = await s.request('GET', '/v1/models/User/items/USER%231/PROFILE');
  t.equal(gone.status, 404);
  t.equal(gone.json.code, 'ErrItemNotFound');
});
