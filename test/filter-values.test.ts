// Filter and condition operands are checked against the model before DynamoDB is called: a filter on the query's
// own key, a value the attribute's type cannot hold, an operator the type does not support. What DynamoDB still
// refuses comes back with DynamoDB's own message.
import t from 'tap';
import { startTestSidecar, type TestSidecar } from './helpers/sidecar.js';
import { ok, problem, type Json } from './helpers/assert.js';

let s: TestSidecar;
t.before(async () => {
  s = await startTestSidecar();
});
t.teardown(() => s?.close());

const PK = 'FV#1';
const post = (path: string, body: unknown) => s.request('POST', path, body);
const query = (body: Json) => post('/v1/models/User/query', body);
const scan = (body: Json) => post('/v1/models/User/scan', body);
const userPath = `/v1/models/User/items/${encodeURIComponent(PK)}/PROFILE`;

t.before(async () => {
  const created = await post('/v1/models/User/items', {
    PK,
    SK: 'PROFILE',
    email: 'fv@example.com',
    name: 'Fay',
    age: 40,
    tags: ['a'],
    active: true,
    taxId: 'SECRET-TAX-4242',
  });
  if (created.status !== 201) throw new Error(`setup: ${created.status} ${created.text}`);
});

t.test('a query filter on the key it queries by is refused before DynamoDB, pointing to partition / sort', async (t) => {
  const sort = await query({ partition: PK, filter: { attr: 'SK', op: '=', value: 'PROFILE' } });
  problem(t, sort, 400, 'ErrInvalidRequest', 'filter on the table sort key');
  t.match(sort.json?.detail, /filter cannot use SK: it is the sort key of the table; put that condition in "sort"/, 'names the key and points to sort');
  t.notMatch(sort.json?.detail, /DynamoDB rejected/, 'not DynamoDB\'s generic refusal');

  const nested = await query({ partition: PK, filter: { and: [{ attr: 'name', op: 'exists' }, { not: { attr: 'PK', op: '=', value: PK } }] } });
  problem(t, nested, 400, 'ErrInvalidRequest', 'filter on the partition key deep in a tree');
  t.match(nested.json?.detail, /filter cannot use PK: it is the partition key of the table, which "partition" already selects/);

  const gsi = await query({ index: 'gsi-email', partition: 'fv@example.com', filter: { attr: 'email', op: 'begins_with', value: 'fv' } });
  problem(t, gsi, 400, 'ErrInvalidRequest', 'filter on the queried index\'s partition key');
  t.match(gsi.json?.detail, /email: it is the partition key of index gsi-email/);

  const lsi = await post('/v1/models/Order/query', { index: 'lsi-status', partition: 'c1', filter: { attr: 'status', op: '=', value: 'open' } });
  problem(t, lsi, 400, 'ErrInvalidRequest', 'filter on the queried LSI\'s sort key');
  t.match(lsi.json?.detail, /status: it is the sort key of index lsi-status; put that condition in "sort"/);

  const onGsi = ok(t, await query({ index: 'gsi-email', partition: 'fv@example.com', filter: { attr: 'SK', op: '=', value: 'PROFILE' } }), 'a GSI query may filter on the table key');
  t.equal(onGsi.items?.length, 1);
  const scanned = ok(t, await scan({ filter: { and: [{ attr: 'PK', op: '=', value: PK }, { attr: 'SK', op: '=', value: 'PROFILE' }] } }), 'a scan may filter on keys');
  t.equal(scanned.items?.length, 1, 'and finds the item');
});

t.test('a value the attribute\'s type cannot hold is refused naming attribute and type', async (t) => {
  const cases: [string, Json, RegExp][] = [
    ['N with a word', { attr: 'age', op: '>', value: 'thirty' }, /age is N, so the value must be a number or decimal string; got a string/],
    ['N with a boolean', { attr: 'age', op: '=', value: true }, /age is N, so the value must be a number or decimal string; got true\/false/],
    ['N out of range', { attr: 'age', op: '<', value: '1e999' }, /age is N, so the value must be a number or decimal string; number out of DynamoDB range/],
    ['S with a number', { attr: 'name', op: 'begins_with', value: 7 }, /name is S, so the value must be a string; got a number/],
    ['BOOL with a string', { attr: 'active', op: '=', value: 'yes' }, /active is BOOL, so the value must be true or false/],
    ['SS contains a number', { attr: 'tags', op: 'contains', value: 3 }, /tags is SS, so the value must be one element: a string; got a number/],
    ['SS equals a string', { attr: 'tags', op: '=', value: 'a' }, /tags is SS, so the value must be an array of distinct strings/],
    ['in with one bad value', { attr: 'age', op: 'in', values: [1, 'x'] }, /age is N/],
    ['between with one bad bound', { attr: 'age', op: 'between', values: [1, {}] }, /age is N, so the value must be a number or decimal string; got an object/],
    ['ttl with a word', { attr: 'ttl', op: '>', value: 'soon' }, /ttl is N \(the ttl attribute\), so the value must be integer epoch seconds or an RFC 3339 timestamp/],
    ['a path into a number', { attr: 'age.years', op: '=', value: 1 }, /age\.years reaches into age, which is N: only M and L attributes have nested paths/],
  ];
  for (const [what, filter, detail] of cases) {
    const res = await scan({ filter });
    problem(t, res, 400, 'ErrInvalidRequest', what);
    t.match(res.json?.detail, detail, `${what}: ${res.json?.detail}`);
  }
  const typed = await scan({ filter: { attr: 'age', op: '>', value: 'thirty' } });
  t.equal(typed.json?.attribute, 'age', 'the attribute is named in its own field too');

  // What the codec accepts for N on a write, it accepts here: a decimal string is the number.
  const decimal = ok(t, await scan({ filter: { attr: 'age', op: '>', value: '30' } }), 'a decimal string for N');
  t.equal(decimal.items?.filter((i: Json) => i.PK === PK).length, 1, '"30" compares as the number 30 and matches age 40');
  ok(t, await scan({ filter: { attr: 'tags', op: 'contains', value: 'a' } }), 'a set element');
  ok(t, await scan({ filter: { attr: 'profile.city', op: '=', value: 5 } }), 'nested paths in a map are not typed by the model');
  ok(t, await scan({ filter: { attr: 'age', op: '=', value: null } }), 'null compares with a stored NULL');
  ok(t, await scan({ filter: { attr: 'name', size: true, op: '>', value: 1 } }), 'size of a string');
});

t.test('an operator the attribute\'s type does not support is ErrInvalidOperator', async (t) => {
  const cases: [string, Json, RegExp][] = [
    ['ordering a boolean', { attr: 'active', op: '<', value: true }, /operator < needs a string, number or binary attribute \(S, N, B\); active is BOOL/],
    ['between on a set', { attr: 'tags', op: 'between', values: [['a'], ['b']] }, /operator between needs a string, number or binary attribute.*tags is SS/],
    ['begins_with on a number', { attr: 'age', op: 'begins_with', value: '4' }, /operator begins_with needs a string or binary attribute \(S, B\); age is N/],
    ['contains on a number', { attr: 'age', op: 'contains', value: 4 }, /operator contains needs a string, set or list attribute.*age is N/],
    ['size of a number', { attr: 'age', size: true, op: '>', value: 1 }, /operator > with size needs a string, binary, set, map or list attribute; age is N/],
  ];
  for (const [what, filter, detail] of cases) {
    const res = await scan({ filter });
    problem(t, res, 400, 'ErrInvalidOperator', what);
    t.match(res.json?.detail, detail, `${what}: ${res.json?.detail}`);
  }
});

t.test('conditions on writes and transactions are checked the same way, and nothing is written', async (t) => {
  const patch = await s.request('PATCH', userPath, { set: { name: 'Changed' }, condition: { attr: 'age', op: '=', value: 'forty' } });
  problem(t, patch, 400, 'ErrInvalidRequest', 'PATCH condition of the wrong type');
  t.match(patch.json?.detail, /age is N/);
  const cond = encodeURIComponent(JSON.stringify({ attr: 'active', op: '=', value: 1 }));
  const del = await s.request('DELETE', `${userPath}?condition=${cond}`);
  problem(t, del, 400, 'ErrInvalidRequest', 'DELETE ?condition of the wrong type');
  t.match(del.json?.detail, /active is BOOL, so the value must be true or false; got a number/);
  const put = await s.request('PUT', `${userPath}?condition=${encodeURIComponent(JSON.stringify({ attr: 'tags', op: 'contains', value: [1] }))}`, { email: 'x@example.com' });
  problem(t, put, 400, 'ErrInvalidRequest', 'PUT ?condition of the wrong type');
  const tx = await post('/v1/transactions/write', {
    items: [
      { op: 'update', model: 'User', key: { PK, SK: 'PROFILE' }, update: { set: { name: 'Tx' } } },
      { op: 'check', model: 'User', key: { PK, SK: 'PROFILE' }, condition: { attr: 'age', op: '>', value: [40] } },
    ],
  });
  problem(t, tx, 400, 'ErrInvalidRequest', 'transaction check of the wrong type');
  t.match(tx.json?.detail, /items\[1\]: condition: age is N, so the value must be a number or decimal string; got an array/);
  const after = await s.request('GET', userPath);
  t.equal(after.json?.name, 'Fay', 'the item is unchanged');
  t.equal(after.json?.version, 0, 'its version too');
});

t.test('key values of the wrong type in a query name the key and its type', async (t) => {
  const blob = await post('/v1/models/Blob/query', { partition: 'seven' });
  problem(t, blob, 400, 'ErrInvalidRequest', 'a word for a number partition key');
  // The per-target query schema refuses it before the store's operand check: same code, the DMS type named.
    t.match(blob.json?.detail, /partition must be an integer number .*\(DMS N, format int\); got a string/);
  const sortKey = await query({ partition: PK, sort: { op: '=', value: 5 } });
  problem(t, sortKey, 400, 'ErrInvalidRequest', 'a number for a string sort key');
  t.match(sortKey.json?.detail, /sort\.value must be a non-empty string \(DMS S\); got an integer/);
});

t.test('an encrypted attribute is refused without echoing the value', async (t) => {
  const res = await scan({ filter: { attr: 'taxId', op: '=', value: 'SECRET-TAX-4242' } });
  problem(t, res, 400, 'ErrEncryptedFieldNotQueryable', 'filter on an encrypted attribute');
  t.notMatch(res.text, /SECRET-TAX-4242/, 'the value is not in the body');
});

t.test('a ValidationException DynamoDB still raises carries DynamoDB\'s own message', async (t) => {
  const res = await query({ partition: PK, sort: { op: 'between', values: ['Z', 'A'] } });
  problem(t, res, 400, 'ErrInvalidRequest', 'between with reversed bounds');
  t.match(res.json?.detail, /^DynamoDB rejected the request: .*BETWEEN.*upper bound/i, `DynamoDB's words: ${res.json?.detail}`);
});
