// POST /v1/models/{Model}/query over real HTTP, on the embedded store and on moto: every sort-key operator on the
// table, a GSI and an LSI (string and number sort keys), DESC order, filter trees, projections, limit/filter
// pagination with DynamORM cursors, counts, and the request errors. Then the cursor golden (unit) and an NDJSON export
// of 10,000+ items read slowly from the embedded store.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { decodeCursor, encodeCursor } from '../src/store/cursor.js';
import { forEachBackend } from './helpers/backends.js';
import { startTestSidecar, type TestResponse, type TestSidecar } from './helpers/sidecar.js';
import { problem, ok, type Json } from './helpers/assert.js';

const REGION = 'ap-south-2';
const RUN = randomUUID().slice(0, 8);
const GOLDEN =
  'eyJsYXN0S2V5Ijp7IlBLIjp7IlMiOiJVU0VSIzEifSwiU0siOnsiUyI6IlBST0ZJTEUifX0sImluZGV4IjoiZ3NpLWVtYWlsIiwic29ydCI6IkFTQyJ9';




/** Decoded cursor JSON text (base64url, padding optional). */
const cursorText = (cursor: string) => Buffer.from(cursor.replace(/=+$/, ''), 'base64url').toString('utf8');

async function batchWrite(t: Test, s: TestSidecar, model: string, puts: Json[]): Promise<void> {
  for (let i = 0; i < puts.length; i += 1000) {
    const res = await s.request('POST', `/v1/models/${model}/batch-write`, { puts: puts.slice(i, i + 1000) });
    t.equal(res.status, 200, res.status === 200 ? `seed ${model} ${i}` : `seed ${model} ${i}: ${res.text.slice(0, 200)}`);
    t.equal(res.json?.complete, true, `seed ${model} ${i} complete`);
  }
}

/** Every page of a query, following cursors; returns the items and how many requests it took. */
async function drain(s: TestSidecar, model: string, body: Json, maxRequests = 200): Promise<{ items: Json[]; requests: number; pages: Json[] }> {
  const items: Json[] = [];
  const pages: Json[] = [];
  let cursor: string | undefined;
  let requests = 0;
  do {
    const res = await s.request('POST', `/v1/models/${model}/query`, { ...body, ...(cursor ? { cursor } : {}) });
    if (res.status !== 200) throw new Error(`query failed: ${res.status} ${res.text}`);
    requests += 1;
    pages.push(res.json);
    items.push(...res.json.items);
    cursor = res.json.cursor;
  } while (cursor && requests < maxRequests);
  return { items, requests, pages };
}

// ------------------------------------------------------------------------------------------------ fixtures

const P = `${RUN}#Q`;
const NS = Number.parseInt(RUN.slice(0, 6), 16);
const SHARED_EMAIL = `${RUN}-shared@example.com`;
const users: Json[] = [
  { SK: 'A#1', name: 'Ann', status: 'active', age: 30, profile: { city: 'Paris', zip: '75001' }, tags: ['a', 'b'], history: [{ at: 'login' }], email: SHARED_EMAIL },
  { SK: 'A#2', name: 'Bob', status: 'inactive', age: 40, profile: { city: 'Lyon' }, tags: ['a'] },
  { SK: 'A#3', name: 'Cid', status: 'active', age: 25, profile: { city: 'Paris' } },
  { SK: 'B#1', name: 'Dee', status: 'banned', age: 50, email: SHARED_EMAIL },
  { SK: 'B#2', name: 'Eve', age: 35, tags: ['x', 'y', 'z'], history: [{ at: 'logout' }] },
  { SK: 'C#1', name: 'Ann', status: 'active', age: 61, prefs: { theme: 'dark' }, email: SHARED_EMAIL },
].map((u) => ({ PK: P, email: `${RUN}-${u.SK.replace('#', '')}@example.com`, ...u }));

const CUSTOMER = `${RUN}-C1`;
const OPEN = `${RUN}-open`;
const PAID = `${RUN}-paid`;
const SHIPPED = `${RUN}-shipped`;
const statusOf = (n: number) => [SHIPPED, OPEN, PAID][n % 3];
const placed = (n: number) => `2024-01-${String(n).padStart(2, '0')}T00:00:00.000000000Z`;
const orders: Json[] = Array.from({ length: 10 }, (_, i) => i + 1).map((n) => ({
  customer_id: CUSTOMER,
  order_no: n,
  total: n * 10,
  currency: 'EUR',
  status: statusOf(n),
  placed_at: placed(n),
  metadata: { n },
  line_items: [{ sku: `S${n}` }],
}));
const byStatus = (s: string) => orders.filter((o) => o.status === s).map((o) => o.order_no);

const PAGE = `${RUN}#PAGE`;
const pageItems: Json[] = Array.from({ length: 60 }, (_, i) => ({
  PK: PAGE,
  SK: `I#${String(i).padStart(2, '0')}`,
  email: `${RUN}-page@example.com`,
  status: i >= 57 ? 'hit' : 'miss',
}));

// ------------------------------------------------------------------------------------------------ both backends

await forEachBackend(t, REGION, async (t, { name, sidecar: s }) => {
  await batchWrite(t, s, 'User', [...users, ...pageItems]);
  await batchWrite(t, s, 'Order', orders);

  const query = (model: string, body: Json) => s.request('POST', `/v1/models/${model}/query`, body);
  const sks = async (t: Test, body: Json, what: string) => ok(t, await query('User', { partition: P, ...body }), what).items?.map((i: Json) => i.SK);
  const orderNos = async (t: Test, body: Json, what: string) =>
    ok(t, await query('Order', { partition: CUSTOMER, ...body }), what).items?.map((i: Json) => i.order_no);

  await t.test('sort-key operators on the table (string SK)', async (t) => {
    t.same(await sks(t, {}, 'all'), ['A#1', 'A#2', 'A#3', 'B#1', 'B#2', 'C#1']);
    t.same(await sks(t, { sort: { op: '=', value: 'A#2' } }, '='), ['A#2']);
    t.same(await sks(t, { sort: { op: '<', value: 'B' } }, '<'), ['A#1', 'A#2', 'A#3']);
    t.same(await sks(t, { sort: { op: '<=', value: 'B#1' } }, '<='), ['A#1', 'A#2', 'A#3', 'B#1']);
    t.same(await sks(t, { sort: { op: '>', value: 'B#1' } }, '>'), ['B#2', 'C#1']);
    t.same(await sks(t, { sort: { op: '>=', value: 'B#1' } }, '>='), ['B#1', 'B#2', 'C#1']);
    t.same(await sks(t, { sort: { op: 'between', values: ['A#2', 'B#1'] } }, 'between'), ['A#2', 'A#3', 'B#1']);
    t.same(await sks(t, { sort: { op: 'begins_with', value: 'B#' } }, 'begins_with'), ['B#1', 'B#2']);
    t.same(await sks(t, { order: 'DESC' }, 'DESC'), ['C#1', 'B#2', 'B#1', 'A#3', 'A#2', 'A#1']);
    t.same(await sks(t, { order: 'DESC', sort: { op: 'begins_with', value: 'A#' } }, 'DESC begins_with'), ['A#3', 'A#2', 'A#1']);
    t.same(await sks(t, { order: 'ASC', sort: { op: '>', value: 'A#3' } }, 'ASC >'), ['B#1', 'B#2', 'C#1']);
    t.same(await sks(t, { sort: { op: '=', value: 'Z#9' } }, 'no match'), []);
  });

  await t.test('sort-key operators on the table (number SK, numeric order)', async (t) => {
    t.same(await orderNos(t, {}, 'all'), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'numeric, not lexicographic, order');
    t.same(await orderNos(t, { sort: { op: '=', value: 3 } }, '='), [3]);
    t.same(await orderNos(t, { sort: { op: '<', value: 3 } }, '<'), [1, 2]);
    t.same(await orderNos(t, { sort: { op: '<=', value: 3 } }, '<='), [1, 2, 3]);
    t.same(await orderNos(t, { sort: { op: '>', value: 8 } }, '>'), [9, 10]);
    t.same(await orderNos(t, { sort: { op: '>=', value: 8 } }, '>='), [8, 9, 10]);
    t.same(await orderNos(t, { sort: { op: 'between', values: [4, 6] } }, 'between'), [4, 5, 6]);
    t.same(await orderNos(t, { sort: { op: 'between', values: ['2', '10'] } }, 'between with decimal strings'), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
    t.same(await orderNos(t, { order: 'DESC', sort: { op: '>', value: 7 } }, 'DESC >'), [10, 9, 8]);
    const item = ok(t, await query('Order', { partition: CUSTOMER, sort: { op: '=', value: 4 } }), 'full item').items[0];
    t.same(item.metadata, { n: 4 }, 'json attribute decoded');
    t.equal(item.total, 40);
    problem(t, await query('Order', { partition: CUSTOMER, sort: { op: 'begins_with', value: 1 } }), 400, 'ErrInvalidOperator', 'begins_with on a number SK');
  });

  await t.test('sort-key operators on the LSI lsi-status (KEYS_ONLY)', async (t) => {
    const lsi = async (body: Json, what: string) => {
      const items: Json[] = ok(t, await query('Order', { index: 'lsi-status', partition: CUSTOMER, ...body }), what).items ?? [];
      return items;
    };
    const nos = (items: Json[]) => items.map((i) => i.order_no).sort((a, b) => a - b);
    const all = await lsi({}, 'all');
    t.equal(all.length, 10);
    t.same(
      all.map((i) => i.status),
      [...all.map((i) => i.status)].sort(),
      'ordered by the index sort key',
    );
    t.same(Object.keys(all[0]).sort(), ['customer_id', 'order_no', 'status'], 'KEYS_ONLY projection: table and index keys only');
    t.same(nos(await lsi({ sort: { op: '=', value: PAID } }, '=')), byStatus(PAID));
    t.same(nos(await lsi({ sort: { op: '<', value: PAID } }, '<')), byStatus(OPEN));
    t.same(nos(await lsi({ sort: { op: '<=', value: PAID } }, '<=')), [...byStatus(OPEN), ...byStatus(PAID)].sort((a, b) => a - b));
    t.same(nos(await lsi({ sort: { op: '>', value: PAID } }, '>')), byStatus(SHIPPED));
    t.same(nos(await lsi({ sort: { op: '>=', value: PAID } }, '>=')), [...byStatus(PAID), ...byStatus(SHIPPED)].sort((a, b) => a - b));
    t.same(nos(await lsi({ sort: { op: 'between', values: [OPEN, PAID] } }, 'between')), [...byStatus(OPEN), ...byStatus(PAID)].sort((a, b) => a - b));
    t.same(nos(await lsi({ sort: { op: 'begins_with', value: `${RUN}-s` } }, 'begins_with')), byStatus(SHIPPED));
    const desc = await lsi({ order: 'DESC' }, 'DESC');
    t.same(
      desc.map((i) => i.status),
      [...desc.map((i) => i.status)].sort().reverse(),
      'DESC ordered by the index sort key, descending',
    );
    t.equal(ok(t, await query('Order', { index: 'lsi-status', partition: CUSTOMER, consistent: true }), 'consistent LSI').items.length, 10, 'consistent read on an LSI is allowed');
  });

  await t.test('sort-key operators on the GSI gsi-status (INCLUDE total, currency)', async (t) => {
    const gsi = async (body: Json, what: string) => ok(t, await query('Order', { index: 'gsi-status', partition: OPEN, ...body }), what).items ?? [];
    const nos = (items: Json[]) => items.map((i: Json) => i.order_no);
    const all = await gsi({}, 'all');
    t.same(nos(all), [1, 4, 7, 10], 'ordered by placed_at');
    t.same(
      Object.keys(all[0]).sort(),
      ['currency', 'customer_id', 'order_no', 'placed_at', 'status', 'total'],
      'INCLUDE projection: keys, index keys, total and currency',
    );
    t.same(nos(await gsi({ sort: { op: '=', value: placed(4) } }, '=')), [4]);
    t.same(nos(await gsi({ sort: { op: '<', value: placed(7) } }, '<')), [1, 4]);
    t.same(nos(await gsi({ sort: { op: '<=', value: placed(7) } }, '<=')), [1, 4, 7]);
    t.same(nos(await gsi({ sort: { op: '>', value: placed(4) } }, '>')), [7, 10]);
    t.same(nos(await gsi({ sort: { op: '>=', value: placed(4) } }, '>=')), [4, 7, 10]);
    t.same(nos(await gsi({ sort: { op: 'between', values: [placed(2), placed(8)] } }, 'between')), [4, 7]);
    t.same(nos(await gsi({ sort: { op: 'begins_with', value: '2024-01-1' } }, 'begins_with')), [10]);
    t.same(nos(await gsi({ order: 'DESC' }, 'DESC')), [10, 7, 4, 1]);
    t.same(nos(await gsi({ order: 'DESC', sort: { op: '<', value: placed(10) } }, 'DESC <')), [7, 4, 1]);
    const filtered = await gsi({ filter: { attr: 'total', op: '>', value: 35 } }, 'filter on a projected attribute');
    t.same(nos(filtered), [4, 7, 10]);
    const projected = await gsi({ fields: ['total'] }, 'fields on a GSI');
    t.same(projected.map((i: Json) => i.total), [10, 40, 70, 100]);
    t.notOk('currency' in projected[0], 'fields limits the attributes');
    problem(t, await query('Order', { index: 'gsi-status', partition: OPEN, consistent: true }), 400, 'ErrInvalidRequest', 'consistent on a GSI');
  });

  await t.test('number partition key and binary sort key (Blob)', async (t) => {
    const ns = NS;
    const put = await s.request('POST', '/v1/models/Blob/batch-write', {
      puts: [
        { ns, digest: 'AAE=', label: 'a' },
        { ns, digest: 'AAI=', label: 'b' },
        { ns, digest: 'AQ==', label: 'c' },
        { ns, digest: '/w==', label: 'd' },
      ],
    });
    t.equal(put.status, 200);
    const labels = async (body: Json, what: string) => ok(t, await query('Blob', { partition: ns, ...body }), what).items?.map((i: Json) => i.label);
    t.same(await labels({}, 'all'), ['a', 'b', 'c', 'd'], 'bytes compare unsigned');
    t.same(await labels({ sort: { op: 'begins_with', value: 'AA==' } }, 'begins_with bytes'), ['a', 'b']);
    t.same(await labels({ sort: { op: '>', value: 'AQ' } }, '> unpadded base64'), ['d']);
    t.same(await labels({ sort: { op: 'between', values: ['AAI=', 'AQ=='] } }, 'between bytes'), ['b', 'c']);
    t.same(await labels({ order: 'DESC' }, 'DESC'), ['d', 'c', 'b', 'a']);
    const first = ok(t, await query('Blob', { partition: ns, limit: 1 }), 'page 1');
    t.equal(cursorText(first.cursor), JSON.stringify({ lastKey: { digest: { B: 'AAE=' }, ns: { N: String(ns) } }, sort: 'ASC' }), 'binary key in the cursor as padded base64');
    const rest = ok(t, await query('Blob', { partition: ns, cursor: first.cursor }), 'page 2');
    t.same(rest.items.map((i: Json) => i.label), ['b', 'c', 'd']);
  });

  await t.test('GSI gsi-email (partition only)', async (t) => {
    const res = ok(t, await query('User', { index: 'gsi-email', partition: SHARED_EMAIL }), 'gsi-email');
    t.same(res.items.map((i: Json) => i.SK).sort(), ['A#1', 'B#1', 'C#1']);
    t.equal(res.items.find((i: Json) => i.SK === 'C#1')?.prefs?.theme, 'dark', 'ALL projection returns every attribute');
    t.equal(res.count, 3);
    const none = ok(t, await query('User', { index: 'gsi-email', partition: `${RUN}-nobody@example.com` }), 'no match');
    t.same(none.items, []);
    t.equal(none.cursor, undefined, 'no cursor when nothing is left');
    problem(t, await query('User', { index: 'gsi-email', partition: SHARED_EMAIL, sort: { op: '=', value: 'x' } }), 400, 'ErrInvalidRequest', 'sort on an index without a sort key');
    problem(t, await query('User', { index: 'gsi-email', partition: SHARED_EMAIL, consistent: true }), 400, 'ErrInvalidRequest', 'consistent on gsi-email');
    t.match((await query('User', { index: 'gsi-email', partition: SHARED_EMAIL, consistent: true })).json?.detail, /consistent/);
  });

  await t.test('filters: nested groups, reserved words, paths, size, attribute_type, in', async (t) => {
    const f = (filter: unknown, what: string) => sks(t, { filter }, what);
    t.same(
      await f(
        {
          and: [
            { attr: 'status', op: '=', value: 'active' },
            { or: [{ attr: 'name', op: '=', value: 'Ann' }, { not: { attr: 'age', op: '<', value: 30 } }] },
          ],
        },
        'and/or/not on name and status',
      ),
      ['A#1', 'C#1'],
    );
    t.same(
      await f(
        {
          or: [
            { and: [{ attr: 'name', op: '=', value: 'Ann' }, { attr: 'age', op: '>', value: 60 }] },
            { not: { or: [{ attr: 'status', op: 'exists' }, { attr: 'name', op: '<>', value: 'Eve' }] } },
          ],
        },
        'or of and and not(or)',
      ),
      ['B#2', 'C#1'],
    );
    t.same(await f({ attr: 'profile.city', op: '=', value: 'Paris' }, 'dotted path'), ['A#1', 'A#3']);
    t.same(await f({ attr: 'profile.zip', op: 'exists' }, 'dotted path exists'), ['A#1']);
    t.same(await f({ attr: 'history[0].at', op: '=', value: 'login' }, 'list index path'), ['A#1']);
    t.same(await f({ attr: 'status', op: 'attribute_type', value: 'S' }, 'attribute_type S'), ['A#1', 'A#2', 'A#3', 'B#1', 'C#1']);
    t.same(await f({ attr: 'tags', op: 'attribute_type', value: 'SS' }, 'attribute_type SS'), ['A#1', 'A#2', 'B#2']);
    t.same(await f({ attr: 'profile', op: 'attribute_type', value: 'M' }, 'attribute_type M'), ['A#1', 'A#2', 'A#3']);
    t.same(await f({ attr: 'status', op: 'not_exists' }, 'not_exists'), ['B#2']);
    t.same(await f({ attr: 'status', op: 'in', values: ['banned', 'inactive'] }, 'in'), ['A#2', 'B#1']);
    t.same(await f({ attr: 'age', op: 'in', values: [25, 61] }, 'in on numbers'), ['A#3', 'C#1']);
    t.same(await f({ attr: 'age', op: 'between', values: [30, 40] }, 'between'), ['A#1', 'A#2', 'B#2']);
    t.same(await f({ not: { attr: 'name', op: 'begins_with', value: 'A' } }, 'not begins_with'), ['A#2', 'A#3', 'B#1', 'B#2']);
    t.same(await f({ attr: 'tags', op: 'contains', value: 'a' }, 'contains on a set'), ['A#1', 'A#2']);
    t.same(await f({ attr: 'name', op: 'contains', value: 'n' }, 'contains on a string'), ['A#1', 'C#1']);
    const timestamps = ok(t, await query('User', { partition: P, filter: { attr: 'createdAt', op: 'begins_with', value: '20' } }), 'begins_with on a timestamp prefix');
    t.equal(timestamps.items?.length, 6, 'a prefix of an rfc3339nano attribute is a valid begins_with operand');
    // moto fails (HTTP 500) on size() of an attribute an item lacks, so these guard with exists first;
    // DynamoDB and the embedded store simply evaluate such a size() comparison as false.
    const has = (attr: string) => ({ attr, op: 'exists' });
    t.same(await f({ and: [has('tags'), { attr: 'tags', size: true, op: '>=', value: 2 }] }, 'size >='), ['A#1', 'B#2']);
    t.same(await f({ attr: 'name', size: true, op: 'between', values: [3, 3] }, 'size between'), ['A#1', 'A#2', 'A#3', 'B#1', 'B#2', 'C#1']);
    t.same(await f({ and: [has('tags'), { attr: 'tags', size: true, op: 'in', values: [1, 3] }] }, 'size in'), ['A#2', 'B#2']);
    t.same(await f({ and: [has('profile'), { not: { attr: 'profile', size: true, op: '<', value: 2 } }] }, 'not size < on a map'), ['A#1']);
    t.same(
      await f({ and: [has('history'), { attr: 'history', size: true, op: '=', value: 1 }, { attr: 'history[0].at', op: '<>', value: 'login' }] }, 'size and path'),
      ['B#2'],
    );
    if (name === 'dynalite') {
      t.same(await f({ attr: 'tags', size: true, op: '>=', value: 2 }, 'size of a missing attribute is simply false'), ['A#1', 'B#2']);
    }
  });

  await t.test('fields projection', async (t) => {
    const res = ok(t, await query('User', { partition: P, fields: ['name', 'status'], sort: { op: 'begins_with', value: 'B#' } }), 'fields');
    t.same(res.items, [
      { PK: P, SK: 'B#1', name: 'Dee', status: 'banned' },
      { PK: P, SK: 'B#2', name: 'Eve' },
    ]);
    const nested = ok(t, await query('User', { partition: P, fields: ['profile'], sort: { op: '=', value: 'A#1' } }), 'map field');
    t.same(nested.items, [{ PK: P, SK: 'A#1', profile: { city: 'Paris', zip: '75001' } }]);
    problem(t, await query('User', { partition: P, fields: ['nope'] }), 400, 'ErrInvalidRequest', 'unknown field');
  });

  await t.test('limit with filters that empty whole pages: cursor round trips see every match once', async (t) => {
    const body = { partition: PAGE, filter: { attr: 'status', op: '=', value: 'hit' }, limit: 2 };
    const { items, requests, pages } = await drain(s, 'User', body);
    t.same(items.map((i) => i.SK), ['I#57', 'I#58', 'I#59'], 'all three matches, once each, in order');
    t.ok(requests >= 2, `needed ${requests} requests`);
    t.ok(pages.every((p) => p.items.length <= 2), 'never more than limit items');
    t.ok(pages.slice(0, -1).every((p) => typeof p.cursor === 'string'), 'every page but the last has a cursor');
    t.equal(pages.reduce((n, p) => n + p.scannedCount, 0), 60, 'every item scanned exactly once across the round trips');
    t.equal(pages.reduce((n, p) => n + p.count, 0), 3);

    const all = ok(t, await query('User', { ...body, pages: 'all' }), 'pages: all');
    t.same(all.items.map((i: Json) => i.SK), ['I#57', 'I#58'], 'the sidecar reads on until limit items are found');
    t.type(all.cursor, 'string');
    const rest = ok(t, await query('User', { ...body, pages: 'all', cursor: all.cursor }), 'rest');
    t.same(rest.items.map((i: Json) => i.SK), ['I#59']);
    t.equal(rest.cursor, undefined, 'no cursor after the last page');

    const onePage = ok(t, await query('User', { ...body, pages: 1 }), 'pages: 1');
    t.same(onePage.items, [], 'one DynamoDB page of 2 finds nothing');
    t.type(onePage.cursor, 'string', 'but says where to go on');

    const desc = await drain(s, 'User', { ...body, order: 'DESC', limit: 1 });
    t.same(desc.items.map((i) => i.SK), ['I#59', 'I#58', 'I#57'], 'DESC round trips');

    const plain = await drain(s, 'User', { partition: PAGE, limit: 7 });
    t.equal(plain.items.length, 60);
    t.equal(new Set(plain.items.map((i) => i.SK)).size, 60, 'no duplicates');
    t.ok(plain.pages.slice(0, -1).every((p) => p.items.length === 7), 'full pages of limit items');
  });

  await t.test('count', async (t) => {
    const all = ok(t, await query('User', { partition: PAGE, count: true }), 'count');
    t.same(all.items, []);
    t.equal(all.count, 60);
    t.equal(all.scannedCount, 60);
    const hits = ok(t, await query('User', { partition: PAGE, count: true, filter: { attr: 'status', op: '=', value: 'hit' } }), 'count filtered');
    t.same(hits.items, []);
    t.equal(hits.count, 3);
    t.equal(hits.scannedCount, 60);
    const sorted = ok(t, await query('User', { partition: PAGE, count: true, sort: { op: '>=', value: 'I#50' } }), 'count with sort');
    t.equal(sorted.count, 10);
    const gsi = ok(t, await query('Order', { index: 'gsi-status', partition: PAID, count: true }), 'count on a GSI');
    t.equal(gsi.count, 3);
    t.same(gsi.items, []);
  });

  await t.test('cursors: DynamORM shape, round trips, padding, wrong index or order', async (t) => {
    const first = ok(t, await query('User', { partition: P, limit: 2 }), 'page 1');
    t.same(first.items.map((i: Json) => i.SK), ['A#1', 'A#2']);
    t.match(first.cursor, /^[A-Za-z0-9_-]+={0,2}$/, 'base64url');
    t.equal(first.cursor.length % 4, 0, 'padded with =');
    t.equal(cursorText(first.cursor), JSON.stringify({ lastKey: { PK: { S: P }, SK: { S: 'A#2' } }, sort: 'ASC' }), 'table cursor JSON');
    t.same(decodeCursor(first.cursor), { lastKey: { PK: { S: P }, SK: { S: 'A#2' } }, sort: 'ASC' });
    t.equal(encodeCursor(decodeCursor(first.cursor)), first.cursor, 'decode/encode round trip');

    const second = ok(t, await query('User', { partition: P, limit: 2, cursor: first.cursor }), 'page 2');
    t.same(second.items.map((i: Json) => i.SK), ['A#3', 'B#1']);
    const unpadded = ok(t, await query('User', { partition: P, limit: 2, cursor: first.cursor.replace(/=+$/, '') }), 'unpadded cursor');
    t.same(unpadded.items.map((i: Json) => i.SK), ['A#3', 'B#1'], 'padding is optional on input');

    const gsi = ok(t, await query('Order', { index: 'gsi-status', partition: OPEN, limit: 2 }), 'GSI page 1');
    t.same(gsi.items.map((i: Json) => i.order_no), [1, 4]);
    const expected = {
      lastKey: { customer_id: { S: CUSTOMER }, order_no: { N: '4' }, placed_at: { S: placed(4) }, status: { S: OPEN } },
      index: 'gsi-status',
      sort: 'ASC',
    };
    t.equal(cursorText(gsi.cursor), JSON.stringify(expected), 'GSI cursor: table + index keys, sorted; index; sort');
    const gsi2 = ok(t, await query('Order', { index: 'gsi-status', partition: OPEN, limit: 2, cursor: gsi.cursor }), 'GSI page 2');
    t.same(gsi2.items.map((i: Json) => i.order_no), [7, 10]);

    const lsi = ok(t, await query('Order', { index: 'lsi-status', partition: CUSTOMER, limit: 3, order: 'DESC' }), 'LSI DESC page');
    t.same(Object.keys(JSON.parse(cursorText(lsi.cursor)).lastKey), ['customer_id', 'order_no', 'status']);
    t.equal(JSON.parse(cursorText(lsi.cursor)).sort, 'DESC');
    const lsiRest = await drain(s, 'Order', { index: 'lsi-status', partition: CUSTOMER, limit: 3, order: 'DESC', cursor: lsi.cursor });
    const seen = [...lsi.items, ...lsiRest.items].map((i: Json) => i.order_no);
    t.same([...seen].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'LSI DESC cursors cover every order once');

    const numeric = ok(t, await query('Order', { partition: CUSTOMER, limit: 9 }), 'number SK page');
    t.equal(JSON.parse(cursorText(numeric.cursor)).lastKey.order_no.N, '9');
    const last = ok(t, await query('Order', { partition: CUSTOMER, limit: 9, cursor: numeric.cursor }), 'number SK page 2');
    t.same(last.items.map((i: Json) => i.order_no), [10]);

    const desc = ok(t, await query('User', { partition: P, limit: 2, order: 'DESC' }), 'DESC page');
    t.equal(JSON.parse(cursorText(desc.cursor)).sort, 'DESC');
    problem(t, await query('User', { partition: P, limit: 2, cursor: desc.cursor }), 400, 'ErrInvalidRequest', 'DESC cursor on an ASC query');
    problem(t, await query('User', { partition: P, limit: 2, order: 'ASC', cursor: desc.cursor }), 400, 'ErrInvalidRequest', 'DESC cursor with order ASC');
    problem(t, await query('User', { partition: P, order: 'DESC', cursor: first.cursor }), 400, 'ErrInvalidRequest', 'ASC cursor on a DESC query');
    problem(t, await query('User', { partition: P, cursor: GOLDEN }), 400, 'ErrInvalidRequest', 'gsi-email cursor on the table');
    problem(t, await query('Order', { partition: CUSTOMER, cursor: gsi.cursor }), 400, 'ErrInvalidRequest', 'GSI cursor on the table');
    problem(t, await query('Order', { index: 'lsi-status', partition: CUSTOMER, cursor: gsi.cursor }), 400, 'ErrInvalidRequest', 'GSI cursor on the LSI');
    problem(t, await query('Order', { index: 'gsi-status', partition: OPEN, cursor: numeric.cursor }), 400, 'ErrInvalidRequest', 'table cursor on the GSI');
    problem(t, await query('Order', { partition: CUSTOMER, cursor: first.cursor }), 400, 'ErrInvalidRequest', 'User cursor on Order');
    problem(t, await query('User', { partition: PAGE, cursor: first.cursor }), 400, 'ErrInvalidRequest', 'cursor of another partition');
    problem(t, await query('User', { partition: P, cursor: 'not a cursor!' }), 400, 'ErrInvalidRequest', 'garbage cursor');
    problem(t, await query('User', { partition: P, cursor: Buffer.from('{"lastKey":').toString('base64url') }), 400, 'ErrInvalidRequest', 'truncated JSON cursor');
    problem(t, await query('User', { partition: P, cursor: Buffer.from('[1,2]').toString('base64url') }), 400, 'ErrInvalidRequest', 'non-object cursor');
    const wrongType = encodeCursor({ lastKey: { PK: { N: '1' }, SK: { S: 'A#1' } }, sort: 'ASC' });
    problem(t, await query('User', { partition: P, cursor: wrongType }), 400, 'ErrInvalidRequest', 'cursor key of the wrong type');
  });

  await t.test('request errors', async (t) => {
    problem(t, await query('User', { partition: P, filter: { attr: 'name', op: 'like', value: 'A' } }), 400, 'ErrInvalidOperator', 'unknown filter operator');
    const deep = await query('User', { partition: P, filter: { and: [{ attr: 'name', op: 'exists' }, { not: { attr: 'status', op: '~=', value: 'x' } }] } });
    problem(t, deep, 400, 'ErrInvalidOperator', 'unknown operator deep in a tree');
    t.match(deep.json?.detail, /^unsupported operator at filter\.and\.1\.not\.op; use one of = <> /, 'the detail says where, and what is allowed');
    const sortOp = await query('User', { partition: P, sort: { op: 'contains', value: 'A' } });
    problem(t, sortOp, 400, 'ErrInvalidOperator', 'unknown sort operator');
    t.match(sortOp.json?.detail, /^unsupported sort key operator at sort\.op; use one of = < <= > >= between begins_with$/, 'the sort operators are listed');
    problem(t, await query('User', { partition: P, filter: { attr: 'name', size: true, op: 'begins_with', value: 1 } }), 400, 'ErrInvalidOperator', 'begins_with on a size');
    const hundred = Array.from({ length: 100 }, (_, i) => `v${i}`);
    ok(t, await query('User', { partition: P, filter: { attr: 'name', op: 'in', values: hundred } }), 'in with 100 values');
    problem(t, await query('User', { partition: P, filter: { attr: 'name', op: 'in', values: [...hundred, 'v100'] } }), 400, 'ErrInvalidRequest', 'in with 101 values');
    const big = { or: Array.from({ length: 400 }, (_, i) => ({ attr: 'name', op: '=', value: `n${i}` })) };
    const bigRes = await query('User', { partition: P, filter: big });
    problem(t, bigRes, 400, 'ErrInvalidRequest', 'filter expression over 4 KB');
    t.match(bigRes.json?.detail, /4096/);
    problem(t, await query('User', { partition: P, filter: { attr: 'nope', op: '=', value: 1 } }), 400, 'ErrInvalidRequest', 'unknown filter attribute');
    const wrongType = await query('User', { partition: P, filter: { attr: 'age', op: '=', value: 'x' } });
    problem(t, wrongType, 400, 'ErrInvalidRequest', 'filter value of the wrong type');
    t.match(wrongType.json?.detail, /age is N, so the value must be a number or decimal string/, 'names the attribute, its type and what to send');
    problem(t, await query('User', { partition: P, sort: { op: 'between', values: ['A'] } }), 400, 'ErrInvalidRequest', 'between with one value');
    problem(t, await query('User', { partition: P, order: 'UP' }), 400, 'ErrInvalidRequest', 'bad order');
    problem(t, await query('User', { index: 'nope', partition: P }), 400, 'ErrInvalidRequest', 'unknown index');
    problem(t, await query('User', { sort: { op: '=', value: 'A#1' } }), 400, 'ErrInvalidRequest', 'no partition');
    problem(t, await query('User', { partition: P, limit: 0 }), 400, 'ErrInvalidRequest', 'limit 0');
    problem(t, await query('User', { partition: P, pages: 0 }), 400, 'ErrInvalidRequest', 'pages 0');
    problem(t, await query('User', { partition: P, bogus: true }), 400, 'ErrInvalidRequest', 'unknown body field');
    problem(t, await query('Session', { partition: 'x', sort: { op: '=', value: 'y' } }), 400, 'ErrInvalidRequest', 'sort on a model without a sort key');
    const ndjsonError = await s.request('POST', '/v1/models/User/query', { partition: P, cursor: 'garbage!' }, { accept: 'application/x-ndjson' });
    problem(t, ndjsonError, 400, 'ErrInvalidRequest', 'NDJSON request with a bad cursor still gets problem+json');
  });

  await t.test('NDJSON on a small partition', async (t) => {
    const res = await s.request('POST', '/v1/models/User/query', { partition: P, filter: { attr: 'status', op: '=', value: 'active' } }, { accept: 'application/x-ndjson' });
    t.equal(res.status, 200);
    t.match(res.headers.get('content-type') ?? '', /^application\/x-ndjson/);
    const lines = res.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    t.same(lines.map((i) => i.SK), ['A#1', 'A#3', 'C#1']);
    t.ok(res.text.endsWith('\n'), 'every line ends with a newline');
    const empty = await s.request('POST', '/v1/models/User/query', { partition: `${RUN}#none` }, { accept: 'application/x-ndjson' });
    t.equal(empty.status, 200);
    t.equal(empty.text, '', 'no matches: empty body');
  });
});

// ------------------------------------------------------------------------------------------------ cursor unit check

t.test('cursor golden string (DynamORM Go byte compatibility)', async (t) => {
  const cursor = { lastKey: { PK: { S: 'USER#1' }, SK: { S: 'PROFILE' } }, index: 'gsi-email', sort: 'ASC' as const };
  t.equal(encodeCursor(cursor), GOLDEN);
  t.same(decodeCursor(GOLDEN), cursor);
  t.same(decodeCursor(GOLDEN.replace(/=+$/, '')), cursor, 'padding optional');
  t.equal(cursorText(GOLDEN), '{"lastKey":{"PK":{"S":"USER#1"},"SK":{"S":"PROFILE"}},"index":"gsi-email","sort":"ASC"}');
  const padded = encodeCursor({ lastKey: { PK: { S: 'U' } } });
  t.equal(padded.length % 4, 0, 'output always padded');
  t.ok(padded.endsWith('='), 'this one needs padding');
  t.same(decodeCursor(padded.replace(/=+$/, '')), { lastKey: { PK: { S: 'U' } } });
  t.equal(
    encodeCursor({ lastKey: { SK: { S: 'b' }, PK: { S: 'a' } }, sort: 'DESC' }),
    encodeCursor({ lastKey: { PK: { S: 'a' }, SK: { S: 'b' } }, sort: 'DESC' }),
    'lastKey keys are sorted',
  );
  t.throws(() => decodeCursor(''), { code: 'ErrInvalidRequest' });
  t.throws(() => decodeCursor('%%%'), { code: 'ErrInvalidRequest' });
  t.throws(() => decodeCursor(Buffer.from('{"lastKey":{},"sort":"UP"}').toString('base64url')), { code: 'ErrInvalidRequest' });
  t.throws(() => decodeCursor(Buffer.from('{"lastKey":{},"extra":1}').toString('base64url')), { code: 'ErrInvalidRequest' });
});

t.test('golden cursor over HTTP: a gsi-email cursor is refused on the table', async (t) => {
  const s = await startTestSidecar();
  t.teardown(() => s.close());
  problem(t, await s.request('POST', '/v1/models/User/query', { partition: 'USER#1', cursor: GOLDEN }), 400, 'ErrInvalidRequest', 'golden on the table');
  const res = await s.request('POST', '/v1/models/User/query', { partition: 'USER#1', cursor: GOLDEN });
  t.match(res.json?.detail, /index/);
});

// ------------------------------------------------------------------------------------------------ encrypted attributes

t.test('an encrypted attribute in a filter is refused', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sidecar-enc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    path.join(dir, 'secret.yml'),
    [
      'dms_version: "0.1"',
      'models:',
      '  - name: Secret',
      '    table: { name: secrets }',
      '    naming: { convention: camelCase }',
      '    keys:',
      '      partition: { attribute: id, type: S }',
      '      sort: { attribute: kind, type: S }',
      '    attributes:',
      '      - { attribute: id, type: S, required: true, roles: [pk] }',
      '      - { attribute: kind, type: S, required: true, roles: [sk] }',
      '      - { attribute: ssn, type: S, optional: true, encryption: {} }',
      '      - { attribute: note, type: S, optional: true }',
      '',
    ].join('\n'),
  );
  const s = await startTestSidecar({ schemasDir: dir });
  t.teardown(() => s.close());
  const q = (filter: unknown) => s.request('POST', '/v1/models/Secret/query', { partition: 'x', filter });
  problem(t, await q({ attr: 'ssn', op: 'exists' }), 400, 'ErrEncryptedFieldNotQueryable', 'encrypted leaf');
  problem(t, await q({ and: [{ attr: 'note', op: 'exists' }, { not: { attr: 'ssn', op: '=', value: '1' } }] }), 400, 'ErrEncryptedFieldNotQueryable', 'encrypted leaf deep in a tree');
  problem(t, await s.request('POST', '/v1/models/Secret/scan', { filter: { attr: 'ssn', op: 'begins_with', value: '1' } }), 400, 'ErrEncryptedFieldNotQueryable', 'scan');
  ok(t, await q({ attr: 'note', op: 'exists' }), 'a plain attribute is fine');
});

// ------------------------------------------------------------------------------------------------ NDJSON export

/** POST with node:http so the test controls reading (pause/resume) and sees raw headers. */
function openStream(url: string, path: string, body: unknown): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url + path,
      { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' } },
      resolve,
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

t.test('NDJSON export of 12,000 items streams progressively (embedded store)', async (t) => {
  // 1,000 items of ~2 KB per batch-write needs a body limit above the 1 MB default.
  const s = await startTestSidecar({ bodyLimit: 4 * 1024 * 1024 });
  t.teardown(() => s.close());
  const PK = `${RUN}#BULK`;
  const TOTAL = 12_000;
  const pad = 'x'.repeat(1900);
  // ~2 KB each, so the export spans ~24 DynamoDB pages of 1 MB: far more than socket buffers can hold.
  for (let i = 0; i < TOTAL; i += 1000) {
    const puts = Array.from({ length: 1000 }, (_, j) => ({
      PK,
      SK: `I#${String(i + j).padStart(6, '0')}`,
      email: 'bulk@example.com',
      name: pad,
    }));
    const res = await s.request('POST', '/v1/models/User/batch-write', { puts });
    t.equal(res.status, 200, `seed ${i}`);
  }

  // Count the DynamoDB Query pages the sidecar has read, through the backend's data plane.
  const dataPlane = s.sidecar.backend.dataPlane as any;
  const query = dataPlane.Query.bind(dataPlane);
  let pagesRead = 0;
  dataPlane.Query = (input: unknown) => {
    pagesRead += 1;
    return query(input);
  };
  t.teardown(() => {
    delete dataPlane.Query;
  });

  const started = Date.now();
  const res = await openStream(s.url, '/v1/models/User/query', { partition: PK });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/x-ndjson/);
  t.equal(res.headers['content-length'], undefined, 'no content-length: the body is streamed');
  t.equal(res.headers['transfer-encoding'], 'chunked');

  const seen = new Set<string>();
  let duplicates = 0;
  let buffered = '';
  let firstItemAt = 0;
  let pagesAtFirstItem = 0;
  let pagesAfterPause = 0;
  let chunks = 0;
  const take = (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const item = JSON.parse(line);
      if (seen.has(item.SK)) duplicates += 1;
      seen.add(item.SK);
      if (!firstItemAt) {
        firstItemAt = Date.now() - started;
        pagesAtFirstItem = pagesRead;
      }
    }
  };
  res.setEncoding('utf8');
  // A slow reader: take one chunk, stop reading for a while, and see how far the sidecar got meanwhile.
  const iterator = res[Symbol.asyncIterator]();
  const first = await iterator.next();
  take(first.value as string);
  await sleep(1500);
  pagesAfterPause = pagesRead;
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
    take(r.value as string);
    chunks += 1;
    if (chunks % 50 === 0) await sleep(5);
  }
  const total = Date.now() - started;
  t.equal(buffered, '', 'the stream ends with a newline');
  t.equal(seen.size, TOTAL, 'every item arrives');
  t.equal(duplicates, 0, 'and only once');
  t.ok(pagesRead >= 20, `the export took ${pagesRead} DynamoDB pages`);
  t.ok(pagesAtFirstItem <= 2, `the first item arrived after ${pagesAtFirstItem} page(s) were read`);
  t.ok(
    pagesAfterPause <= pagesRead - 6,
    `while the reader paused the sidecar stopped reading pages (${pagesAfterPause} of ${pagesRead}): it does not buffer everything`,
  );
  t.ok(firstItemAt < total / 2, `time to first item ${firstItemAt} ms, total ${total} ms`);
});
