// Codec round trips through the HTTP API: every DMS type of the example models, the wire rules of
// the README ("Values on the wire"), and the 400s for values the codec must refuse.
// A second reader (the AWS SDK straight against the embedded store) checks what is actually stored.
import t, { type Test } from 'tap';
import { DynamoDBClient, GetItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { startTestSidecar, type TestResponse } from './helpers/sidecar.js';

const s = await startTestSidecar();
const ddb = new DynamoDBClient({
  endpoint: s.sidecar.backend.endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'embedded', secretAccessKey: 'embedded' },
});
t.teardown(async () => {
  ddb.destroy();
  await s.close();
});

const USERS = '/v1/models/User/items';
const ORDERS = '/v1/models/Order/items';
const BLOBS = '/v1/models/Blob/items';
const RFC3339_NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;
const BIG38 = '12345678901234567890123456789012345678';
const BIG39 = '123456789012345678901234567890123456789';

const enc = encodeURIComponent;
const userPath = (pk: string, sk = 'PROFILE') => `${USERS}/${enc(pk)}/${enc(sk)}`;
const user = (pk: string, extra: Record<string, unknown> = {}) => ({ PK: pk, SK: 'PROFILE', email: `${pk.toLowerCase()}@example.com`, ...extra });

async function rawGet(table: string, key: Record<string, AttributeValue>): Promise<Record<string, AttributeValue> | undefined> {
  const out = await ddb.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }));
  return out.Item;
}
const rawUser = (pk: string, sk = 'PROFILE') => rawGet('users', { PK: { S: pk }, SK: { S: sk } });

type T = Test;

/** A problem+json error with the given status and code. */
function isProblem(t: T, res: TestResponse, status: number, code: string, what = ''): void {
  t.equal(res.status, status, `${what} status ${status}`.trim());
  t.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, `${what} problem+json`.trim());
  t.equal(res.json?.code, code, `${what} code ${code}`.trim());
}

/** 400 ErrInvalidItem naming `attribute` in detail and never echoing `secret` (the offending value). */
function isInvalid(t: T, res: TestResponse, attribute: string, secret?: string, code = 'ErrInvalidItem'): void {
  isProblem(t, res, 400, code, attribute);
  t.type(res.json?.detail, 'string', 'detail is a string');
  t.ok(String(res.json?.detail).includes(attribute), `detail names ${attribute}: ${res.json?.detail}`);
  if (secret !== undefined) t.notOk(res.text.includes(secret), `response does not echo the offending value ${secret}`);
}

const sortedStrings = (a: unknown) => (Array.isArray(a) ? a.map(String).sort() : a);

t.test('S: strings round trip, unicode included, and an empty string stays a string', async (t) => {
  const name = 'Zoë 😀 — "quoted" \\ back\nline \u0000 end';
  const created = await s.request('POST', USERS, user('VAL#S#1', { name, status: '' }));
  t.equal(created.status, 201);
  t.equal(created.json.name, name);
  t.equal(created.json.status, '', 'a non-omit_empty empty string is kept');
  const got = await s.request('GET', userPath('VAL#S#1'));
  t.equal(got.status, 200);
  t.equal(got.json.name, name);
  t.equal(got.json.status, '');
  const raw = await rawUser('VAL#S#1');
  t.same(raw?.name, { S: name });
  t.same(raw?.status, { S: '' });
  t.same(raw?.email, { S: 'val#s#1@example.com' });
});

t.test('N: integers, fractions, negatives, exponents and 38-digit values come back exactly', async (t) => {
  // [request literal (raw JSON text), expected JSON value in the response, expected stored N]
  const cases: [string, number | string, string][] = [
    ['0', 0, '0'],
    ['42', 42, '42'],
    ['-17', -17, '-17'],
    ['3.14159', 3.14159, '3.14159'],
    ['-0.001', -0.001, '-0.001'],
    ['0.1', 0.1, '0.1'],
    ['1.50', 1.5, '1.5'],
    ['1e2', 100, '100'],
    ['-0', 0, '0'],
    ['9007199254740992', 9007199254740992, '9007199254740992'],
    ['9007199254740993', '9007199254740993', '9007199254740993'],
    [BIG38, BIG38, BIG38],
    [`-${BIG38}`, `-${BIG38}`, `-${BIG38}`],
    ['1234567890123456789.0123456789012345678', '1234567890123456789.0123456789012345678', '1234567890123456789.0123456789012345678'],
    ['0.12345678901234567890123456789012345678', '0.12345678901234567890123456789012345678', '0.12345678901234567890123456789012345678'],
    ['"42.5"', 42.5, '42.5'],
    ['"-7"', -7, '-7'],
    [`"${BIG38}"`, BIG38, BIG38],
    [`"-${BIG38}"`, `-${BIG38}`, `-${BIG38}`],
    ['9.9e125', 9.9e125, '99' + '0'.repeat(124)],
  ];
  let no = 0;
  for (const [literal, expected, stored] of cases) {
    no++;
    const body = `{"customer_id":"VAL#N","order_no":${no},"total":${literal},"currency":"EUR"}`;
    const created = await s.request('POST', ORDERS, body);
    t.equal(created.status, 201, `create with total ${literal}`);
    t.same(created.json?.total, expected, `create echoes total ${literal} as ${JSON.stringify(expected)}`);
    t.equal(typeof created.json?.total, typeof expected, `total ${literal} is a JSON ${typeof expected}`);
    const got = await s.request('GET', `${ORDERS}/${enc('VAL#N')}/${no}`);
    t.equal(got.status, 200);
    t.same(got.json?.total, expected, `read total ${literal}`);
    t.equal(typeof got.json?.total, typeof expected);
    const raw = await rawGet('orders', { customer_id: { S: 'VAL#N' }, order_no: { N: String(no) } });
    t.same(raw?.total, { N: stored }, `stored total for ${literal}`);
  }
  // The wire form of a value a double cannot hold is a quoted decimal string, digit for digit.
  const got = await s.request('GET', `${ORDERS}/${enc('VAL#N')}/12`);
  t.ok(got.text.includes(`"total":"${BIG38}"`), 'raw response text carries the 38 digits as a decimal string');
  const small = await s.request('GET', `${ORDERS}/${enc('VAL#N')}/2`);
  t.ok(small.text.includes('"total":42'), 'raw response text carries 42 as a JSON number');
  t.notOk(small.text.includes('"total":"42"'), 'not as a string');
});

t.test('N: integer format attributes and big numbers in other N places', async (t) => {
  // age is format int.
  const body = `{"PK":"VAL#NI#1","SK":"PROFILE","email":"a@example.com","age":${BIG38},"scores":[${BIG38},1,2.5,"-3"]}`;
  const created = await s.request('POST', USERS, body);
  t.equal(created.status, 201);
  t.equal(created.json?.age, BIG38);
  t.same(sortedStrings(created.json?.scores), sortedStrings([BIG38, 1, 2.5, -3]));
  const raw = await rawUser('VAL#NI#1');
  t.same(raw?.age, { N: BIG38 });
  t.same([...(raw?.scores?.NS ?? [])].sort(), [BIG38, '1', '2.5', '-3'].sort(), 'NS stored exactly');

  const fraction = await s.request('POST', USERS, user('VAL#NI#2', { age: 1.5 }));
  isInvalid(t, fraction, 'age');
  const fractionString = await s.request('POST', USERS, user('VAL#NI#3', { age: '1.5' }));
  isInvalid(t, fractionString, 'age');
  t.equal((await s.request('GET', userPath('VAL#NI#2'))).status, 404, 'nothing written');
});

t.test('N: 39 digits and out-of-range magnitudes are refused with 400 naming the attribute', async (t) => {
  const raw39 = await s.request('POST', ORDERS, `{"customer_id":"VAL#N39","order_no":1,"total":${BIG39},"currency":"EUR"}`);
  isInvalid(t, raw39, 'total');
  const str39 = await s.request('POST', ORDERS, `{"customer_id":"VAL#N39","order_no":2,"total":"${BIG39}","currency":"EUR"}`);
  isInvalid(t, str39, 'total');
  const neg39 = await s.request('POST', ORDERS, `{"customer_id":"VAL#N39","order_no":3,"total":-${BIG39},"currency":"EUR"}`);
  isInvalid(t, neg39, 'total');
  const tooBig = await s.request('POST', ORDERS, `{"customer_id":"VAL#N39","order_no":4,"total":"1e126","currency":"EUR"}`);
  isInvalid(t, tooBig, 'total');
  const tooSmall = await s.request('POST', ORDERS, `{"customer_id":"VAL#N39","order_no":5,"total":"1e-131","currency":"EUR"}`);
  isInvalid(t, tooSmall, 'total');
  const set39 = await s.request('POST', USERS, `{"PK":"VAL#N39","SK":"PROFILE","email":"a@example.com","scores":[1,${BIG39}]}`);
  isInvalid(t, set39, 'scores');
  const notNumber = await s.request('POST', ORDERS, { customer_id: 'VAL#N39', order_no: 6, total: '12abc', currency: 'EUR' });
  isInvalid(t, notNumber, 'total', '12abc');
  for (let no = 1; no <= 6; no++) {
    t.equal((await s.request('GET', `${ORDERS}/${enc('VAL#N39')}/${no}`)).status, 404, `order ${no} not written`);
  }
  t.equal((await s.request('GET', userPath('VAL#N39'))).status, 404);
});

t.test('B: base64 in, standard padded base64 out; invalid base64 is a 400', async (t) => {
  const padded = await s.request('POST', USERS, user('VAL#B#1', { avatar: '3q2+7w==' }));
  t.equal(padded.status, 201);
  t.equal(padded.json?.avatar, '3q2+7w==');
  t.same(Buffer.from((await rawUser('VAL#B#1'))?.avatar?.B ?? []), Buffer.from([0xde, 0xad, 0xbe, 0xef]), 'stored bytes');

  const unpadded = await s.request('POST', USERS, user('VAL#B#2', { avatar: '3q2+7w' }));
  t.equal(unpadded.status, 201, 'padding is optional on input');
  t.equal(unpadded.json?.avatar, '3q2+7w==', 'always padded on output');
  const got = await s.request('GET', userPath('VAL#B#2'));
  t.equal(got.json?.avatar, '3q2+7w==');

  const slashes = await s.request('POST', USERS, user('VAL#B#3', { avatar: '////+++/' }));
  t.equal(slashes.status, 201);
  t.equal(slashes.json?.avatar, '////+++/', 'standard alphabet on output');

  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const all = await s.request('POST', ORDERS, { customer_id: 'VAL#B', order_no: 1, total: 1, currency: 'EUR', receipt: bytes.toString('base64') });
  t.equal(all.status, 201);
  t.equal(all.json?.receipt, bytes.toString('base64'), 'every byte value survives');
  t.same(Buffer.from((await rawGet('orders', { customer_id: { S: 'VAL#B' }, order_no: { N: '1' } }))?.receipt?.B ?? []), bytes);

  for (const [i, bad] of ['not base64!', 'a', '3q2+7w=', '3q2+7w===', '3q2+7w=x', 'ab$d'].entries()) {
    const res = await s.request('POST', USERS, user(`VAL#B#BAD${i}`, { avatar: bad }));
    isInvalid(t, res, 'avatar', bad.length > 3 ? bad : undefined);
    t.equal((await s.request('GET', userPath(`VAL#B#BAD${i}`))).status, 404, `invalid ${JSON.stringify(bad)} not written`);
  }
  const wrongType = await s.request('POST', USERS, user('VAL#B#BADT', { avatar: 123456789 }));
  isInvalid(t, wrongType, 'avatar', '123456789');
});

t.test('BOOL and NULL round trip', async (t) => {
  const yes = await s.request('POST', USERS, user('VAL#BOOL#1', { active: true, deletedAt: null }));
  t.equal(yes.status, 201);
  t.equal(yes.json?.active, true);
  t.equal(yes.json?.deletedAt, null);
  t.ok('deletedAt' in yes.json, 'deletedAt present as null');
  const no = await s.request('POST', USERS, user('VAL#BOOL#2', { active: false }));
  t.equal(no.status, 201);
  t.equal(no.json?.active, false, 'false is kept (active is not omit_empty)');
  const got1 = await s.request('GET', userPath('VAL#BOOL#1'));
  t.equal(got1.json?.active, true);
  t.equal(got1.json?.deletedAt, null);
  t.equal((await s.request('GET', userPath('VAL#BOOL#2'))).json?.active, false);
  const raw1 = await rawUser('VAL#BOOL#1');
  t.same(raw1?.active, { BOOL: true });
  t.same(raw1?.deletedAt, { NULL: true });
  t.same((await rawUser('VAL#BOOL#2'))?.active, { BOOL: false });

  isInvalid(t, await s.request('POST', USERS, user('VAL#BOOL#3', { active: 'SECRET-TRUE' })), 'active', 'SECRET-TRUE');
  isInvalid(t, await s.request('POST', USERS, user('VAL#BOOL#4', { active: 1 })), 'active');
  isInvalid(t, await s.request('POST', USERS, user('VAL#BOOL#5', { deletedAt: 'SECRET-DATE' })), 'deletedAt', 'SECRET-DATE');
  isInvalid(t, await s.request('POST', USERS, user('VAL#BOOL#6', { deletedAt: false })), 'deletedAt');
});

t.test('M: nested values typed naturally and read back unchanged', async (t) => {
  const profile = {
    city: 'Paris',
    zip: 75001,
    ratio: -0.25,
    verified: true,
    banned: false,
    middleName: null,
    geo: { lat: 48.8566, lng: 2.3522, tags: ['a', 1, false, null, { deep: [[]] }] },
    empty: {},
    nothing: [],
    blank: '',
    'key with spaces/and#hash': 'ok',
  };
  const created = await s.request('POST', USERS, user('VAL#M#1', { profile }));
  t.equal(created.status, 201);
  t.same(created.json?.profile, profile);
  const got = await s.request('GET', userPath('VAL#M#1'));
  t.strictSame(got.json?.profile, profile, 'nested types are exact (numbers stay numbers, null stays null)');
  const raw = (await rawUser('VAL#M#1'))?.profile?.M ?? {};
  t.same(raw.city, { S: 'Paris' });
  t.same(raw.zip, { N: '75001' });
  t.same(raw.ratio, { N: '-0.25' });
  t.same(raw.verified, { BOOL: true });
  t.same(raw.middleName, { NULL: true });
  t.same(raw.empty, { M: {} });
  t.same(raw.nothing, { L: [] });
  t.same(raw.geo?.M?.tags, { L: [{ S: 'a' }, { N: '1' }, { BOOL: false }, { NULL: true }, { M: { deep: { L: [{ L: [] }] } } }] });

  const nest = (levels: number): unknown => (levels === 0 ? 'leaf' : { a: nest(levels - 1) });
  const deepOk = await s.request('POST', USERS, user('VAL#M#deep1', { profile: nest(20) as object, history: [[[[[[[[[[1]]]]]]]]]] }));
  t.equal(deepOk.status, 201, '20 levels of nesting are fine');
  t.same(deepOk.json?.profile, nest(20));
  const tooDeep = await s.request('POST', USERS, user('VAL#M#deep2', { profile: nest(40) as object }));
  isInvalid(t, tooDeep, 'profile');
  t.equal((await s.request('GET', userPath('VAL#M#deep2'))).status, 404, 'too deep: not written');
  let deepList: unknown = 1;
  for (let i = 0; i < 40; i++) deepList = [deepList];
  isInvalid(t, await s.request('POST', USERS, user('VAL#M#deep3', { history: deepList as unknown[] })), 'history');

  isInvalid(t, await s.request('POST', USERS, user('VAL#M#2', { profile: ['SECRET-LIST'] })), 'profile', 'SECRET-LIST');
  isInvalid(t, await s.request('POST', USERS, user('VAL#M#3', { profile: 'SECRET-MAP' })), 'profile', 'SECRET-MAP');
});

t.test('M: a 38-digit number inside a map is stored as N, not rounded and not turned into a string', async (t) => {
  const body = `{"PK":"VAL#MBIG#1","SK":"PROFILE","email":"a@example.com","profile":{"big":${BIG38},"list":[${BIG38}],"str":"${BIG38}"}}`;
  const created = await s.request('POST', USERS, body);
  t.equal(created.status, 201);
  t.equal(created.json?.profile?.big, BIG38, 'returned as the exact decimal string');
  const raw = (await rawUser('VAL#MBIG#1'))?.profile?.M ?? {};
  t.same(raw.big, { N: BIG38 }, 'a JSON number in a map is stored as N');
  t.same(raw.list, { L: [{ N: BIG38 }] }, 'a JSON number in a nested list is stored as N');
  t.same(raw.str, { S: BIG38 }, 'a JSON string stays S');

  const too = await s.request('POST', USERS, `{"PK":"VAL#MBIG#2","SK":"PROFILE","email":"a@example.com","profile":{"big":${BIG39}}}`);
  t.equal(too.status, 400, 'a 39-digit JSON number inside a map is refused');
  t.equal(too.json?.code, 'ErrInvalidItem');
  t.equal((await s.request('GET', userPath('VAL#MBIG#2'))).status, 404, 'and not written');
});

t.test('L: lists of mixed values round trip in order', async (t) => {
  const history = [{ at: 'login', n: 1 }, 'x', 2.5, true, null, [1, [2, 'three']], {}];
  const created = await s.request('POST', USERS, user('VAL#L#1', { history }));
  t.equal(created.status, 201);
  t.strictSame(created.json?.history, history);
  t.strictSame((await s.request('GET', userPath('VAL#L#1'))).json?.history, history);
  const raw = await rawUser('VAL#L#1');
  t.same(raw?.history?.L?.[0], { M: { at: { S: 'login' }, n: { N: '1' } } });
  t.same(raw?.history?.L?.[1], { S: 'x' });
  t.equal(raw?.history?.L?.length, 7);

  isInvalid(t, await s.request('POST', USERS, user('VAL#L#2', { history: { SECRET: 'LIST' } })), 'history', 'SECRET');
  isInvalid(t, await s.request('POST', USERS, user('VAL#L#3', { history: 'SECRET-HIST' })), 'history', 'SECRET-HIST');
});

t.test('SS / NS: order-insensitive round trip, duplicates refused, empty sets omitted', async (t) => {
  const created = await s.request('POST', USERS, user('VAL#SET#1', { tags: ['b', 'a', 'c', 'ü'], scores: [3, 1, 2.5, -4] }));
  t.equal(created.status, 201);
  t.same(sortedStrings(created.json?.tags), ['a', 'b', 'c', 'ü']);
  t.same(sortedStrings(created.json?.scores), sortedStrings([3, 1, 2.5, -4]));
  const got = await s.request('GET', userPath('VAL#SET#1'));
  t.same(sortedStrings(got.json?.tags), ['a', 'b', 'c', 'ü']);
  t.same(sortedStrings(got.json?.scores), sortedStrings([3, 1, 2.5, -4]));
  t.ok((got.json?.scores ?? []).every((n: unknown) => typeof n === 'number'), 'NS elements come back as JSON numbers');
  const raw = await rawUser('VAL#SET#1');
  t.same([...(raw?.tags?.SS ?? [])].sort(), ['a', 'b', 'c', 'ü'], 'tags is stored as SS');
  t.same([...(raw?.scores?.NS ?? [])].sort(), ['-4', '1', '2.5', '3'], 'scores is stored as NS');

  isInvalid(t, await s.request('POST', USERS, user('VAL#SET#2', { tags: ['a', 'b', 'a'] })), 'tags');
  isInvalid(t, await s.request('POST', USERS, user('VAL#SET#3', { scores: [1, 2, 1] })), 'scores');
  isInvalid(t, await s.request('POST', USERS, user('VAL#SET#4', { scores: [1, '1.0'] })), 'scores');
  isInvalid(t, await s.request('POST', USERS, user('VAL#SET#5', { tags: 'SECRET-TAG' })), 'tags', 'SECRET-TAG');
  isInvalid(t, await s.request('POST', USERS, user('VAL#SET#6', { tags: [1] })), 'tags');
  isInvalid(t, await s.request('POST', USERS, user('VAL#SET#7', { scores: ['SECRET-SCORE'] })), 'scores', 'SECRET-SCORE');
  for (let i = 2; i <= 7; i++) t.equal((await s.request('GET', userPath(`VAL#SET#${i}`))).status, 404, `set ${i} not written`);

  const empty = await s.request('POST', USERS, user('VAL#SET#8', { tags: [], scores: [] }));
  t.equal(empty.status, 201);
  t.notOk('tags' in (empty.json ?? {}), 'empty omit_empty SS omitted from the response');
  t.notOk('scores' in (empty.json ?? {}), 'empty omit_empty NS omitted from the response');
  const emptyRaw = await rawUser('VAL#SET#8');
  t.ok(emptyRaw, 'item written');
  t.notOk(emptyRaw && 'tags' in emptyRaw, 'tags not stored');
  t.notOk(emptyRaw && 'scores' in emptyRaw, 'scores not stored');
});

t.test('json: true takes any JSON value, stores canonical JSON, reads it back', async (t) => {
  const values: [string, unknown, string][] = [
    ['obj', { b: 1, a: { d: [1, 2, { z: null, y: 'é' }], c: 'x' }, 'ä': true }, '{"a":{"c":"x","d":[1,2,{"y":"é","z":null}]},"b":1,"ä":true}'],
    ['arr', [3, 'x', null, { b: 2, a: 1 }, []], '[3,"x",null,{"a":1,"b":2},[]]'],
    ['num', 42.5, '42.5'],
    ['int', -7, '-7'],
    ['str', 'hello "world"', '"hello \\"world\\""'],
    ['bool', false, 'false'],
    ['empty-obj', {}, '{}'],
  ];
  for (const [suffix, prefs, canonical] of values) {
    const pk = `VAL#JSON#${suffix}`;
    const created = await s.request('POST', USERS, user(pk, { prefs }));
    t.equal(created.status, 201, `create prefs ${suffix}`);
    t.strictSame(created.json?.prefs, prefs, `create echoes prefs ${suffix}`);
    t.strictSame((await s.request('GET', userPath(pk))).json?.prefs, prefs, `read prefs ${suffix}`);
    t.same((await rawUser(pk))?.prefs, { S: canonical }, `stored canonically: ${suffix}`);
  }

  const nul = await s.request('POST', USERS, user('VAL#JSON#null', { prefs: null }));
  t.equal(nul.status, 201);
  t.equal(nul.json?.prefs, null);
  t.ok('prefs' in (nul.json ?? {}));
  t.equal((await s.request('GET', userPath('VAL#JSON#null'))).json?.prefs, null);
  t.same((await rawUser('VAL#JSON#null'))?.prefs, { NULL: true }, 'JSON null is stored as NULL');

  // Whitespace and key order in the request text do not reach the store.
  const spaced = await s.request(
    'POST',
    USERS,
    '{ "PK" : "VAL#JSON#ws", "SK":"PROFILE", "email":"a@example.com",\n "prefs" : { "z" : 1 ,\n\t"a" : [ 1 , 2 ] , "m": { "y": 1, "x": 2 } } }',
  );
  t.equal(spaced.status, 201);
  t.same((await rawUser('VAL#JSON#ws'))?.prefs, { S: '{"a":[1,2],"m":{"x":2,"y":1},"z":1}' });

  // Order.metadata (snake_case model) is json too.
  const order = await s.request('POST', ORDERS, { customer_id: 'VAL#JSON', order_no: 1, total: 1, currency: 'EUR', metadata: { k: ['v'], a: 0 } });
  t.equal(order.status, 201);
  t.same(order.json?.metadata, { k: ['v'], a: 0 });
  t.same((await rawGet('orders', { customer_id: { S: 'VAL#JSON' }, order_no: { N: '1' } }))?.metadata, { S: '{"a":0,"k":["v"]}' });
});

t.test('json: true keeps a 38-digit number a number in the stored JSON', async (t) => {
  const res = await s.request('POST', USERS, `{"PK":"VAL#JSONBIG","SK":"PROFILE","email":"a@example.com","prefs":{"n":${BIG38}}}`);
  t.equal(res.status, 201);
  t.same((await rawUser('VAL#JSONBIG'))?.prefs, { S: `{"n":${BIG38}}` }, 'canonical JSON holds the number literal, not a quoted string');
});

t.test('lifecycle and typed attributes as stored (second reader)', async (t) => {
  const created = await s.request('POST', USERS, user('VAL#RAW#1', { name: 'Ann', tags: ['x', 'y'], ttl: '2030-01-01T00:00:00Z' }));
  t.equal(created.status, 201);
  const raw = await rawUser('VAL#RAW#1');
  t.ok(raw, 'stored');
  t.match(raw?.createdAt?.S, RFC3339_NANO, 'createdAt is RFC3339 with nine fractional digits');
  t.match(raw?.updatedAt?.S, RFC3339_NANO, 'updatedAt is RFC3339 with nine fractional digits');
  t.equal(raw?.createdAt?.S, created.json?.createdAt);
  t.same(raw?.version, { N: '0' }, 'version is N "0"');
  t.same(raw?.ttl, { N: '1893456000' }, 'ttl is N epoch seconds');
  t.same([...(raw?.tags?.SS ?? [])].sort(), ['x', 'y'], 'tags is SS');
  t.same(raw?.PK, { S: 'VAL#RAW#1' });
  t.same(raw?.SK, { S: 'PROFILE' });
  t.same(raw?.name, { S: 'Ann' });
  t.same(Object.keys(raw ?? {}).sort(), ['PK', 'SK', 'createdAt', 'email', 'name', 'tags', 'ttl', 'updatedAt', 'version'].sort(), 'no extra attributes');
  t.equal(created.json?.ttl, 1893456000, 'ttl is returned as epoch seconds');
  const ms = Date.parse(raw?.createdAt?.S ?? '');
  t.ok(Math.abs(Date.now() - ms) < 60_000, 'createdAt is now (UTC)');

  // Lifecycle values in a create body are ignored.
  const forged = await s.request('POST', USERS, user('VAL#RAW#2', { createdAt: '2000-01-01T00:00:00.000000000Z', updatedAt: '2000-01-01T00:00:00.000000000Z' }));
  t.equal(forged.status, 201);
  t.not(forged.json?.createdAt, '2000-01-01T00:00:00.000000000Z', 'createdAt from the body is ignored');
  t.equal(forged.json?.version, 0);
  t.same((await rawUser('VAL#RAW#2'))?.version, { N: '0' });
});

t.test('omit_empty: empty values are not written', async (t) => {
  const created = await s.request('POST', USERS, user('VAL#OE#1', { nickname: '', tags: [], name: 'kept' }));
  t.equal(created.status, 201);
  t.notOk('nickname' in (created.json ?? {}), 'nickname "" omitted');
  t.notOk('tags' in (created.json ?? {}), 'tags [] omitted');
  const got = await s.request('GET', userPath('VAL#OE#1'));
  t.notOk('nickname' in (got.json ?? {}));
  t.notOk('tags' in (got.json ?? {}));
  const raw = await rawUser('VAL#OE#1');
  t.notOk(raw && 'nickname' in raw, 'nickname not stored');
  t.notOk(raw && 'tags' in raw, 'tags not stored');

  const nul = await s.request('POST', USERS, user('VAL#OE#2', { nickname: null }));
  t.equal(nul.status, 201);
  const rawNull = await rawUser('VAL#OE#2');
  t.notOk(rawNull && 'nickname' in rawNull, 'null omit_empty value not stored');

  const set = await s.request('POST', USERS, user('VAL#OE#3', { nickname: 'Nick' }));
  t.equal(set.json?.nickname, 'Nick', 'a non-empty omit_empty value is written');
  t.same((await rawUser('VAL#OE#3'))?.nickname, { S: 'Nick' });
});

t.test('ttl: integer epoch seconds or RFC3339, stored as epoch seconds', async (t) => {
  const cases: [string, unknown, number][] = [
    ['int', 1893456000, 1893456000],
    ['zulu', '2030-01-01T00:00:00Z', 1893456000],
    ['offset', '2030-01-01T01:00:00+01:00', 1893456000],
    ['frac', '2030-01-01T00:00:00.999999999Z', 1893456000],
    ['nano', '2030-01-01T00:00:01.000000000Z', 1893456001],
    ['string-int', '1893456000', 1893456000],
  ];
  for (const [suffix, ttl, epoch] of cases) {
    const pk = `VAL#TTL#${suffix}`;
    const created = await s.request('POST', USERS, user(pk, { ttl }));
    t.equal(created.status, 201, `ttl ${suffix}`);
    t.equal(created.json?.ttl, epoch, `ttl ${suffix} returned as epoch seconds`);
    t.equal((await s.request('GET', userPath(pk))).json?.ttl, epoch);
    t.same((await rawUser(pk))?.ttl, { N: String(epoch) }, `ttl ${suffix} stored as N`);
  }
  isInvalid(t, await s.request('POST', USERS, user('VAL#TTL#bad1', { ttl: 1.5 })), 'ttl');
  isInvalid(t, await s.request('POST', USERS, user('VAL#TTL#bad2', { ttl: 'SECRET-TOMORROW' })), 'ttl', 'SECRET-TOMORROW');
  isInvalid(t, await s.request('POST', USERS, user('VAL#TTL#bad3', { ttl: true })), 'ttl');
  isInvalid(t, await s.request('POST', USERS, user('VAL#TTL#bad4', { ttl: '2030-02-30T00:00:00Z' })), 'ttl', '2030-02-30');
  for (let i = 1; i <= 4; i++) t.equal((await s.request('GET', userPath(`VAL#TTL#bad${i}`))).status, 404);

  // Session's ttl attribute is expiresAt.
  const session = await s.request('POST', '/v1/models/Session/items', { id: 'VAL#TTL#sess', userId: 'u', expiresAt: '2030-01-01T00:00:00Z' });
  t.equal(session.status, 201);
  t.equal(session.json?.expiresAt, 1893456000);
  t.same((await rawGet('sessions', { id: { S: 'VAL#TTL#sess' } }))?.expiresAt, { N: '1893456000' });
});

t.test('wrong types: 400 ErrInvalidItem naming the attribute, value never echoed', async (t) => {
  const cases: [string, unknown, string | undefined][] = [
    ['name', 987654321, '987654321'],
    ['name', ['SECRET-NAME-ARRAY'], 'SECRET-NAME-ARRAY'],
    ['name', { SECRET: 'NAME-OBJ' }, 'NAME-OBJ'],
    ['email', 13371337, '13371337'],
    ['age', 'SECRET-AGE', 'SECRET-AGE'],
    ['age', true, undefined],
    ['age', { n: 1 }, undefined],
    ['active', 'SECRET-ACTIVE', 'SECRET-ACTIVE'],
    ['profile', 'SECRET-PROFILE', 'SECRET-PROFILE'],
    ['history', 'SECRET-HISTORY', 'SECRET-HISTORY'],
    ['tags', 'SECRET-TAGS', 'SECRET-TAGS'],
    ['tags', [{ x: 'SECRET-TAG-OBJ' }], 'SECRET-TAG-OBJ'],
    ['scores', 'SECRET-SCORES', 'SECRET-SCORES'],
    ['scores', ['SECRET-SCORE-EL'], 'SECRET-SCORE-EL'],
    ['avatar', 'SECRET-AVATAR!!', 'SECRET-AVATAR!!'],
    ['deletedAt', 'SECRET-DELETED', 'SECRET-DELETED'],
    ['nickname', 24682468, '24682468'],
  ];
  for (const [i, [attribute, value, secret]] of cases.entries()) {
    const pk = `VAL#TYPE#${i}`;
    const res = await s.request('POST', USERS, user(pk, { [attribute]: value }));
    isInvalid(t, res, attribute, secret);
    t.equal((await s.request('GET', userPath(pk))).status, 404, `${attribute} case ${i} not written`);
  }
  // Same rules on PUT.
  const put = await s.request('PUT', userPath('VAL#TYPE#put'), { email: 'a@example.com', age: 'SECRET-PUT-AGE' });
  isInvalid(t, put, 'age', 'SECRET-PUT-AGE');
  t.equal((await s.request('GET', userPath('VAL#TYPE#put'))).status, 404);
  // Order: snake_case names.
  const order = await s.request('POST', ORDERS, { customer_id: 'VAL#TYPE', order_no: 1, total: 1, currency: 31337313, line_items: 'SECRET-LINES' });
  t.equal(order.status, 400);
  t.equal(order.json?.code, 'ErrInvalidItem');
  t.notOk(order.text.includes('31337313') || order.text.includes('SECRET-LINES'), 'values not echoed');
});

t.test('unknown attribute, missing key, missing required attribute', async (t) => {
  const unknown = await s.request('POST', USERS, user('VAL#REQ#1', { bogusAttr: 'SECRET-BOGUS' }));
  isInvalid(t, unknown, 'bogusAttr', 'SECRET-BOGUS');
  const unknownNested = await s.request('PUT', userPath('VAL#REQ#1'), { email: 'a@example.com', Name: 'x' });
  isInvalid(t, unknownNested, 'Name');
  t.equal((await s.request('GET', userPath('VAL#REQ#1'))).status, 404);

  const noSk = await s.request('POST', USERS, { PK: 'VAL#REQ#2', email: 'a@example.com' });
  isProblem(t, noSk, 400, 'ErrMissingPrimaryKey', 'no SK');
  t.ok(String(noSk.json?.detail).includes('SK'), 'detail names SK');
  const noPk = await s.request('POST', USERS, { SK: 'PROFILE', email: 'a@example.com' });
  isProblem(t, noPk, 400, 'ErrMissingPrimaryKey', 'no PK');
  t.ok(String(noPk.json?.detail).includes('PK'), 'detail names PK');
  const nullPk = await s.request('POST', USERS, { PK: null, SK: 'PROFILE', email: 'a@example.com' });
  t.equal(nullPk.status, 400, 'null PK');
  const emptyPk = await s.request('POST', USERS, { PK: '', SK: 'PROFILE', email: 'a@example.com' });
  t.equal(emptyPk.status, 400, 'empty PK');
  const orderNoSk = await s.request('POST', ORDERS, { customer_id: 'VAL#REQ', total: 1, currency: 'EUR' });
  isProblem(t, orderNoSk, 400, 'ErrMissingPrimaryKey', 'order without order_no');
  const blobNoSk = await s.request('POST', BLOBS, { ns: 1 });
  isProblem(t, blobNoSk, 400, 'ErrMissingPrimaryKey', 'blob without digest');

  const noEmail = await s.request('POST', USERS, { PK: 'VAL#REQ#3', SK: 'PROFILE', name: 'x' });
  isInvalid(t, noEmail, 'email');
  const nullEmail = await s.request('POST', USERS, { PK: 'VAL#REQ#3', SK: 'PROFILE', email: null });
  isInvalid(t, nullEmail, 'email');
  const putNoEmail = await s.request('PUT', userPath('VAL#REQ#3'), { name: 'x' });
  isInvalid(t, putNoEmail, 'email');
  const orderNoCurrency = await s.request('POST', ORDERS, { customer_id: 'VAL#REQ', order_no: 1, total: 1 });
  isInvalid(t, orderNoCurrency, 'currency');
  t.equal((await s.request('GET', userPath('VAL#REQ#3'))).status, 404);
  t.equal((await s.request('GET', `${ORDERS}/${enc('VAL#REQ')}/1`)).status, 404);

  const notObject = await s.request('POST', USERS, [user('VAL#REQ#4')]);
  t.equal(notObject.status, 400, 'an array body is refused');
});

t.test('items over 400 KB once encoded are refused and nothing is written', async (t) => {
  const big = await s.request('POST', USERS, user('VAL#SIZE#1', { name: 'x'.repeat(410 * 1024) }));
  isProblem(t, big, 400, 'ErrInvalidItem', 'create 410 KB');
  t.notOk(big.text.includes('xxxxxxxxxx'), 'the value is not echoed');
  t.equal((await s.request('GET', userPath('VAL#SIZE#1'))).status, 404, 'nothing written');

  // Multi-byte characters count as UTF-8 bytes: 210k chars of "é" are 420 KB.
  const wide = await s.request('POST', USERS, user('VAL#SIZE#2', { name: 'é'.repeat(210 * 1024) }));
  isProblem(t, wide, 400, 'ErrInvalidItem', 'create 420 KB of UTF-8');
  t.equal((await s.request('GET', userPath('VAL#SIZE#2'))).status, 404);

  // Just under the limit is fine.
  const under = await s.request('POST', USERS, user('VAL#SIZE#3', { name: 'y'.repeat(399 * 1024) }));
  t.equal(under.status, 201, '399 KB item accepted');
  t.equal(under.json?.name?.length, 399 * 1024);

  // A replace that would make it too big fails and keeps the old item.
  const put = await s.request('PUT', userPath('VAL#SIZE#3'), { email: 'a@example.com', name: 'z'.repeat(410 * 1024) });
  isProblem(t, put, 400, 'ErrInvalidItem', 'put 410 KB');
  const kept = await s.request('GET', userPath('VAL#SIZE#3'));
  t.equal(kept.status, 200);
  t.equal(kept.json?.version, 0, 'old item untouched');
  t.equal(kept.json?.name?.[0], 'y');
  // A PATCH that would grow the item past the limit fails and keeps the old item.
  const grow = await s.request('PATCH', userPath('VAL#SIZE#3'), { set: { status: 's'.repeat(20 * 1024) } });
  isProblem(t, grow, 400, 'ErrInvalidItem', 'patch past 400 KB');
  t.notOk(grow.text.includes('ssssssssss'), 'the value is not echoed');
  const afterGrow = await s.request('GET', userPath('VAL#SIZE#3'));
  t.equal(afterGrow.json?.version, 0, 'old item untouched by the failed PATCH');
  t.notOk('status' in (afterGrow.json ?? {}));
  const putNew = await s.request('PUT', userPath('VAL#SIZE#4'), { email: 'a@example.com', history: ['h'.repeat(205 * 1024), 'h'.repeat(205 * 1024)] });
  isProblem(t, putNew, 400, 'ErrInvalidItem', 'put new 410 KB');
  t.equal((await s.request('GET', userPath('VAL#SIZE#4'))).status, 404);
});

t.test('Order: N sort key in the path', async (t) => {
  const order = {
    customer_id: 'cust-1',
    order_no: 42,
    total: 19.99,
    currency: 'EUR',
    line_items: [{ sku: 'A', qty: 2, price: 4.5 }],
    status: 'placed',
    placed_at: '2026-01-16T10:20:30.123456789Z',
  };
  const created = await s.request('POST', ORDERS, order);
  t.equal(created.status, 201);
  t.equal(created.headers.get('etag'), '"0"');
  t.match(created.json?.created_at, RFC3339_NANO, 'snake_case lifecycle names');
  t.match(created.json?.updated_at, RFC3339_NANO);
  const got = await s.request('GET', '/v1/models/Order/items/cust-1/42');
  t.equal(got.status, 200);
  t.equal(got.json?.order_no, 42);
  t.equal(got.json?.customer_id, 'cust-1');
  t.equal(got.json?.total, 19.99);
  t.same(got.json?.line_items, order.line_items);
  t.equal(got.json?.placed_at, order.placed_at);
  t.same((await rawGet('orders', { customer_id: { S: 'cust-1' }, order_no: { N: '42' } }))?.order_no, { N: '42' });

  // order_no is an int: the document says plain digits, and other spellings of 42 are refused as it says.
  for (const alias of ['42.0', '4.2e1', '042']) {
    const res = await s.request('GET', `/v1/models/Order/items/cust-1/${alias}`);
    isProblem(t, res, 400, 'ErrMissingPrimaryKey', `${alias}: not plain digits`);
    t.match(res.json?.detail, /order_no .*an integer in plain digits/, `${alias}: says what to send`);
  }
  isProblem(t, await s.request('GET', '/v1/models/Order/items/cust-1/abc'), 400, 'ErrMissingPrimaryKey', 'non-numeric N key');
  t.equal((await s.request('GET', '/v1/models/Order/items/cust-1/43')).status, 404);

  const negative = await s.request('POST', ORDERS, { ...order, customer_id: 'VAL#ORD', order_no: -1 });
  t.equal(negative.status, 201);
  t.equal((await s.request('GET', `${ORDERS}/${enc('VAL#ORD')}/-1`)).json?.order_no, -1);
  const stringKey = await s.request('POST', ORDERS, { ...order, customer_id: 'VAL#ORD', order_no: '7' });
  t.equal(stringKey.status, 201, 'a decimal-string N key');
  t.equal(stringKey.json?.order_no, 7);
  t.equal((await s.request('GET', `${ORDERS}/${enc('VAL#ORD')}/7`)).status, 200);
  const bigKey = await s.request('POST', ORDERS, `{"customer_id":"VAL#ORD","order_no":${BIG38},"total":1,"currency":"EUR"}`);
  t.equal(bigKey.status, 201);
  t.equal(bigKey.json?.order_no, BIG38);
  const bigGot = await s.request('GET', `${ORDERS}/${enc('VAL#ORD')}/${BIG38}`);
  t.equal(bigGot.status, 200, '38-digit N key in the path');
  t.equal(bigGot.json?.order_no, BIG38);
  isInvalid(t, await s.request('POST', ORDERS, { ...order, customer_id: 'VAL#ORD', order_no: 1.5 }), 'order_no');

  // Writes through the N-key path.
  const patched = await s.request('PATCH', '/v1/models/Order/items/cust-1/42', { set: { status: 'shipped' }, add: { total: 0.01 } });
  t.equal(patched.status, 200);
  t.equal(patched.json?.status, 'shipped');
  t.equal(patched.json?.total, 20);
  t.equal(patched.json?.version, 1);
  const put = await s.request('PUT', '/v1/models/Order/items/cust-1/42', { total: 5, currency: 'USD', order_no: 42 });
  t.equal(put.status, 200, 'N key repeated in the body as the same number');
  t.equal(put.json?.order_no, 42);
  const putMismatch = await s.request('PUT', '/v1/models/Order/items/cust-1/42', { total: 5, currency: 'USD', order_no: 43 });
  t.equal(putMismatch.status, 400);
  t.equal((await s.request('DELETE', '/v1/models/Order/items/cust-1/42')).status, 204);
  t.equal((await s.request('GET', '/v1/models/Order/items/cust-1/42')).status, 404);
});

t.test('Blob: N partition key and B sort key (base64url in the path)', async (t) => {
  const created = await s.request('POST', BLOBS, { ns: 7, digest: '3q2+7w==', label: 'x', size: 4 });
  t.equal(created.status, 201);
  t.equal(created.json?.ns, 7);
  t.equal(created.json?.digest, '3q2+7w==');
  const got = await s.request('GET', `${BLOBS}/7/3q2-7w`);
  t.equal(got.status, 200, 'base64url, unpadded');
  t.equal(got.json?.digest, '3q2+7w==', 'B key read back as standard padded base64');
  t.equal(got.json?.label, 'x');
  t.equal(got.json?.size, 4);
  t.equal((await s.request('GET', `${BLOBS}/7/3q2-7w%3D%3D`)).status, 200, 'base64url with padding');
  t.same(
    (await rawGet('blobs', { ns: { N: '7' }, digest: { B: Buffer.from([0xde, 0xad, 0xbe, 0xef]) } }))?.label,
    { S: 'x' },
    'stored under the decoded bytes',
  );

  const slashy = await s.request('POST', BLOBS, { ns: 7, digest: '////', label: 'ff' });
  t.equal(slashy.status, 201);
  const gotSlashy = await s.request('GET', `${BLOBS}/7/____`);
  t.equal(gotSlashy.status, 200, '____ in the path is ////');
  t.equal(gotSlashy.json?.label, 'ff');
  t.equal(gotSlashy.json?.digest, '////');
  t.equal((await s.request('GET', `${BLOBS}/8/3q2-7w`)).status, 404, 'other partition');
  isProblem(t, await s.request('GET', `${BLOBS}/7/3q2+7w`), 400, 'ErrMissingPrimaryKey', 'standard alphabet in the path');
  isProblem(t, await s.request('GET', `${BLOBS}/7/a`), 400, 'ErrMissingPrimaryKey', 'invalid base64url');
  isProblem(t, await s.request('GET', `${BLOBS}/x7/3q2-7w`), 400, 'ErrMissingPrimaryKey', 'non-numeric N');

  const bigNs = await s.request('POST', BLOBS, `{"ns":12345678901234567890,"digest":"AQ==","label":"big"}`);
  t.equal(bigNs.status, 201);
  t.equal(bigNs.json?.ns, '12345678901234567890');
  const gotBig = await s.request('GET', `${BLOBS}/12345678901234567890/AQ`);
  t.equal(gotBig.status, 200);
  t.equal(gotBig.json?.ns, '12345678901234567890');
  t.equal(gotBig.json?.digest, 'AQ==');

  const patched = await s.request('PATCH', `${BLOBS}/7/3q2-7w`, { set: { label: 'y' }, add: { size: 1 } });
  t.equal(patched.status, 200);
  t.equal(patched.json?.label, 'y');
  t.equal(patched.json?.size, 5);
  const put = await s.request('PUT', `${BLOBS}/7/3q2-7w`, { label: 'z', digest: '3q2+7w==' });
  t.equal(put.status, 200, 'B key repeated in the body (standard base64) matches the path');
  t.equal(put.json?.label, 'z');
  t.notOk('size' in (put.json ?? {}), 'replace removed size');
  const putMismatch = await s.request('PUT', `${BLOBS}/7/3q2-7w`, { label: 'z', digest: 'AQ==' });
  t.equal(putMismatch.status, 400);
  t.equal((await s.request('DELETE', `${BLOBS}/7/3q2-7w`)).status, 204);
  t.equal((await s.request('GET', `${BLOBS}/7/3q2-7w`)).status, 404);

  isProblem(t, await s.request('POST', BLOBS, { ns: 7, digest: '' }), 400, 'ErrMissingPrimaryKey', 'empty B key');
  isInvalid(t, await s.request('POST', BLOBS, { ns: 7, digest: 'SECRET!!' }), 'digest', 'SECRET!!');
  isInvalid(t, await s.request('POST', BLOBS, { ns: 1.5, digest: 'AQ==' }), 'ns');
});

t.test('keys with /, #, spaces, + and unicode are percent-encoded in the path', async (t) => {
  const keys: [string, string][] = [
    ['VAL#KEY#a/b/c', 'SK/1'],
    ['VAL#KEY# spaced out ', 'with space'],
    ['VAL#KEY#ünïcødé😀', 'ß→∑'],
    ['VAL#KEY#100%?&=;', 'q?x=1#frag'],
    ['VAL#KEY#a+b', 'c+d'],
    ['VAL#KEY#..', '.x.'],
  ];
  for (const [pk, sk] of keys) {
    const created = await s.request('POST', USERS, { PK: pk, SK: sk, email: 'a@example.com', name: pk });
    t.equal(created.status, 201, `create ${pk}`);
    const path = userPath(pk, sk);
    const got = await s.request('GET', path);
    t.equal(got.status, 200, `GET ${path}`);
    t.equal(got.json?.PK, pk);
    t.equal(got.json?.SK, sk);
    const patched = await s.request('PATCH', path, { set: { status: 'ok' } });
    t.equal(patched.status, 200, `PATCH ${path}`);
    t.equal(patched.json?.PK, pk);
    const put = await s.request('PUT', path, { PK: pk, SK: sk, email: 'b@example.com' });
    t.equal(put.status, 200, `PUT ${path} with matching keys in the body`);
    t.same((await rawUser(pk, sk))?.email, { S: 'b@example.com' }, 'stored under the decoded key');
    t.equal((await s.request('DELETE', path, undefined, { 'if-match': '"2"' })).status, 204, `DELETE ${path}`);
    t.equal(await rawUser(pk, sk), undefined, 'deleted');
  }
  // "+" in a path is a literal plus, not a space.
  await s.request('POST', USERS, { PK: 'VAL#KEY#x+y', SK: 'S', email: 'a@example.com' });
  const plus = await s.request('GET', `${USERS}/VAL%23KEY%23x+y/S`);
  t.equal(plus.status, 200, 'raw + in the path');
  t.equal(plus.json?.PK, 'VAL#KEY#x+y');
  // A literal "/" that is not percent-encoded splits the path.
  t.equal((await s.request('GET', `${USERS}/VAL%23KEY%23a/b/c/SK%2F1`)).status, 404);
});
