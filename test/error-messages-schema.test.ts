// Validation errors from the request schemas say how to fix the mistake: the attribute, the DMS type expected and
// what was sent (its JSON shape, never the value), with one stable code for one mistake on every route.
import t, { type Test } from 'tap';
import { startTestSidecar, type TestResponse } from './helpers/sidecar.js';

const s = await startTestSidecar();
t.teardown(() => s.close());

const USER = { PK: 'MSG#1', SK: 'PROFILE', email: 'm@example.com' };

function problem(t: Test, res: TestResponse, code: string, words: (string | RegExp)[], label: string): void {
  t.equal(res.status, 400, `${label}: 400`, { body: res.text });
  t.equal(res.json?.code, code, `${label}: ${code}`, { body: res.text });
  for (const w of words) t.match(res.json?.detail, w, `${label}: detail says ${w}`);
}

t.test('a wrong type names the attribute, the DMS type and what was sent, with ErrInvalidItem on every route', async (t) => {
  const int = /age must be an integer number \(or a string of digits\) or null \(DMS N, format int\); got /;
  const routes: [string, string, unknown, string][] = [
    ['POST', '/v1/models/User/items', { ...USER, age: 'thirty' }, 'age'],
    ['PUT', '/v1/models/User/items/MSG%231/PROFILE', { email: 'm@example.com', age: 'thirty' }, 'age'],
    ['PATCH', '/v1/models/User/items/MSG%231/PROFILE', { set: { age: 'thirty' } }, 'set.age'],
    ['POST', '/v1/models/User/batch-write', { puts: [{ ...USER, age: 'thirty' }] }, 'puts.0.age'],
    ['POST', '/v1/transactions/write', { items: [{ op: 'create', model: 'User', item: { ...USER, age: 'thirty' } }] }, 'items.0.item.age'],
    ['POST', '/v1/transactions/write', { items: [{ op: 'update', model: 'User', key: { PK: 'a', SK: 'b' }, update: { set: { age: 'thirty' } } }] }, 'items.0.update.set.age'],
  ];
  for (const [method, path, body, where] of routes) {
    const res = await s.request(method, path, body);
    problem(t, res, 'ErrInvalidItem', [where, int, 'got a string'], `${method} ${path}`);
    t.equal(res.json?.attribute, 'age', `${method} ${path}: attribute member`);
    t.notMatch(res.text, 'thirty', `${method} ${path}: the value is not echoed`);
  }
  problem(t, await s.request('POST', '/v1/models/User/items', { ...USER, age: 1.5 }), 'ErrInvalidItem', [int, 'got a number with a fraction'], 'age 1.5');
  problem(t, await s.request('POST', '/v1/models/User/items', { ...USER, active: 'yes' }), 'ErrInvalidItem', ['active must be true or false or null (DMS BOOL); got a string'], 'active "yes"');
  problem(t, await s.request('PUT', '/v1/models/User/items/a/b', { email: 'x', tags: ['a', 5] }), 'ErrInvalidItem', ['tags must be an array of distinct non-empty strings', '(DMS SS)', 'tags.1 is an integer'], 'set element');
});

t.test('an encrypted attribute of the wrong type: only its JSON shape is said', async (t) => {
  const res = await s.request('POST', '/v1/models/User/items', { ...USER, taxId: 123456789 });
  problem(t, res, 'ErrInvalidItem', ['taxId must be a string or null (DMS S, encrypted); got an integer'], 'taxId');
  t.notMatch(res.text, '123456789', 'the value is not echoed');
});

t.test('enum errors list the allowed values', async (t) => {
  problem(t, await s.request('POST', '/v1/models/User/query', { index: 'nope', partition: 'x' }), 'ErrInvalidRequest', ['index', '"nope" is not allowed; use one of gsi-email, or leave index out'], 'index');
  problem(t, await s.request('POST', '/v1/transactions/write', { items: [{ op: 'bogus', model: 'User' }] }), 'ErrInvalidRequest', ['items.0.op', 'use one of create, put, update, delete, check'], 'transaction op');
  problem(t, await s.request('POST', '/v1/transactions/write', { items: [{ op: 'create', model: 'Nope', item: {} }] }), 'ErrInvalidRequest', ['items.0.model', 'Blob', 'Order', 'User', 'Session'], 'transaction model');
  problem(t, await s.request('POST', '/v1/models/User/scan', { fields: ['nope'] }), 'ErrInvalidRequest', ['fields.0', 'use one of', '"email"'], 'fields');
  problem(t, await s.request('POST', '/v1/models/User/scan', { filter: { attr: 'age', op: '~', value: 1 } }), 'ErrInvalidOperator', ['filter.op', 'use one of = <> < <= > >= between in'], 'condition operator');
  problem(t, await s.request('POST', '/v1/models/User/query', { partition: 'x', sort: { op: 'contains', value: 'a' } }), 'ErrInvalidOperator', [/^unsupported sort key operator at sort\.op; use one of = < <= > >= between begins_with$/], 'sort operator');
  problem(t, await s.request('POST', '/v1/models/Order/query', { partition: 'x', sort: { op: 'begins_with', value: 1 } }), 'ErrInvalidOperator', ['begins_with does not apply', 'use one of = < <= > >= between'], 'begins_with on a number sort key');
});

t.test('PATCH hints: a flat body, lifecycle and key attributes', async (t) => {
  problem(t, await s.request('PATCH', '/v1/models/User/items/a/b', { name: 'Zed' }), 'ErrInvalidRequest', ['unknown field name', '{"set": {"name": …}}'], 'flat body');
  problem(t, await s.request('PATCH', '/v1/models/User/items/a/b', { set: { createdAt: '2026-01-01T00:00:00Z' } }), 'ErrInvalidItem', ['set.createdAt', 'lifecycle attribute owned by the sidecar'], 'set.createdAt');
  problem(t, await s.request('PATCH', '/v1/models/User/items/a/b', { set: { version: 3 } }), 'ErrInvalidItem', ['set.version', 'If-Match'], 'set.version');
  problem(t, await s.request('PATCH', '/v1/models/User/items/a/b', { set: { PK: 'x' } }), 'ErrInvalidItem', ['key attribute PK cannot be updated'], 'set.PK');
  problem(t, await s.request('PATCH', '/v1/models/User/items/a/b', { add: { name: 'x' } }), 'ErrInvalidItem', ['add does not apply to name', 'DMS S'], 'add on a string');
});

t.test('query and transaction shapes say what is missing or not there', async (t) => {
  problem(t, await s.request('POST', '/v1/models/User/query', { index: 'gsi-email', partition: 'x', sort: { op: '=', value: 'a' } }), 'ErrInvalidRequest', ['index gsi-email has no sort key'], 'sort on an index without one');
  problem(t, await s.request('POST', '/v1/models/Session/query', { partition: 'x', sort: { op: '=', value: 'a' } }), 'ErrInvalidRequest', ['model Session has no sort key'], 'sort on a table without one');
  problem(t, await s.request('POST', '/v1/models/User/query', { index: 'gsi-email', partition: 'x', consistent: true }), 'ErrInvalidRequest', ['consistent reads are not supported on global secondary index gsi-email'], 'consistent on a GSI');
  problem(t, await s.request('POST', '/v1/models/Order/query', { partition: 'x', sort: { op: '=', value: 'abc' } }), 'ErrInvalidRequest', ['sort.value must be an integer number', '(DMS N, format int)'], 'sort value type');
  problem(t, await s.request('POST', '/v1/transactions/write', { items: [{ op: 'put', model: 'User' }] }), 'ErrInvalidRequest', ['items.0: op put needs item'], 'put without item');
  problem(t, await s.request('POST', '/v1/models/User/scan', { segment: 1 }), 'ErrInvalidRequest', ['missing totalSegments'], 'segment without totalSegments');
  problem(t, await s.request('GET', '/v1/models/User/items/a/b?fields=name,nope'), 'ErrInvalidRequest', ['unknown attribute nope in model User'], '?fields');
});

t.test('stable codes for keys: empty or malformed keys are ErrMissingPrimaryKey', async (t) => {
  problem(t, await s.request('POST', '/v1/models/User/items', { ...USER, PK: '' }), 'ErrMissingPrimaryKey', ['key attribute PK cannot be empty'], 'empty PK');
  problem(t, await s.request('POST', '/v1/models/User/batch-get', { keys: [{ PK: '', SK: 'b' }] }), 'ErrMissingPrimaryKey', ['key attribute PK cannot be empty'], 'batch-get empty PK');
  problem(t, await s.request('POST', '/v1/transactions/get', { items: [{ model: 'User', key: { PK: '', SK: 'b' } }] }), 'ErrMissingPrimaryKey', ['key attribute PK cannot be empty'], 'transaction empty PK');
  problem(t, await s.request('POST', '/v1/models/User/query', { partition: 'x', sort: { op: '=', value: '' } }), 'ErrMissingPrimaryKey', ['key attribute SK cannot be empty'], 'empty sort value');
  problem(t, await s.request('GET', '/v1/models/Blob/items/x7/AQID'), 'ErrMissingPrimaryKey', ['ns in the path is not a valid N value; send an integer in plain digits'], 'non-numeric N in the path');
  problem(t, await s.request('GET', '/v1/models/Blob/items/7/a'), 'ErrMissingPrimaryKey', ['digest in the path is not a valid B value; send base64url bytes'], 'non-base64url B in the path');
  problem(t, await s.request('POST', '/v1/transactions/write', { items: [{ op: 'create', model: 'User', item: { SK: 'b', email: 'e' } }] }), 'ErrMissingPrimaryKey', ['missing key attribute PK'], 'transaction item without PK');
  problem(t, await s.request('POST', '/v1/models/User/items', { ...USER, email: '' }), 'ErrInvalidItem', ['email is a key of index gsi-email and cannot be empty'], 'empty index key');
});
