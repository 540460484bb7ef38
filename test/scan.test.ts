// POST /v1/models/{Model}/scan over real HTTP, on the embedded store and on moto: filters, limits and cursors,
// parallel scan segments (each paginated to the end, union = every item once), NDJSON export across segments,
// and the request errors. Items carry this run's prefix so a shared moto (CI) cannot disturb the counts.
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { forEachBackend } from './helpers/backends.js';
import type { TestResponse, TestSidecar } from './helpers/sidecar.js';
import { problem, ok, type Json } from './helpers/assert.js';

const REGION = 'ap-southeast-3';
const RUN = randomUUID().slice(0, 8);
const PREFIX = `${RUN}#S#`;
const COUNT = 240;




const mine = { attr: 'PK', op: 'begins_with', value: PREFIX };
const keyOf = (i: Json) => `${i.PK}|${i.SK}`;

const items: Json[] = Array.from({ length: COUNT }, (_, i) => ({
  PK: `${PREFIX}${String(i).padStart(4, '0')}`,
  SK: i % 2 === 0 ? 'PROFILE' : 'SETTINGS',
  email: `${RUN}-${i % 8}@example.com`,
  name: `user ${i}`,
  status: i % 3 === 0 ? 'active' : 'idle',
  age: i,
}));
const expectedKeys = items.map(keyOf).sort();

/** Every page of a scan, following cursors. */
async function drain(s: TestSidecar, body: Json, maxRequests = 500): Promise<{ items: Json[]; pages: Json[] }> {
  const out: Json[] = [];
  const pages: Json[] = [];
  let cursor: string | undefined;
  do {
    const res = await s.request('POST', '/v1/models/User/scan', { ...body, ...(cursor ? { cursor } : {}) });
    if (res.status !== 200) throw new Error(`scan failed: ${res.status} ${res.text}`);
    pages.push(res.json);
    out.push(...res.json.items);
    cursor = res.json.cursor;
  } while (cursor && pages.length < maxRequests);
  return { items: out, pages };
}

function onceEach(t: Test, got: Json[], expected: string[], what: string): void {
  const keys = got.map(keyOf);
  t.equal(new Set(keys).size, keys.length, `${what}: no item twice`);
  t.same([...keys].sort(), expected, `${what}: every expected item`);
}

await forEachBackend(t, REGION, async (t, { sidecar: s }) => {
  const seed = await s.request('POST', '/v1/models/User/batch-write', { puts: items });
  t.equal(seed.status, 200, 'seed');
  t.equal(seed.json?.complete, true, 'seed complete');
  const scan = (body: Json, headers?: Record<string, string>) => s.request('POST', '/v1/models/User/scan', body, headers);

  await t.test('filter, limit and cursor', async (t) => {
    const { items: got, pages } = await drain(s, { filter: mine, limit: 17 });
    onceEach(t, got, expectedKeys, 'limit 17');
    t.ok(pages.length >= Math.ceil(COUNT / 17), `${pages.length} requests`);
    t.ok(pages.every((p) => p.items.length <= 17), 'never more than limit');
    t.ok(pages.slice(0, -1).every((p) => typeof p.cursor === 'string'), 'a cursor on every page but the last');
    t.equal(pages.at(-1)!.cursor, undefined, 'no cursor at the end');
    const cursor = JSON.parse(Buffer.from(pages[0].cursor.replace(/=+$/, ''), 'base64url').toString('utf8'));
    t.same(Object.keys(cursor), ['lastKey'], 'a table scan cursor holds only lastKey (no index, no sort)');
    t.same(Object.keys(cursor.lastKey), ['PK', 'SK']);

    const active = await drain(s, { filter: { and: [mine, { attr: 'status', op: '=', value: 'active' }] }, limit: 5 });
    onceEach(t, active.items, items.filter((i) => i.status === 'active').map(keyOf).sort(), 'filtered on a reserved word');

    const ranged = await drain(s, { filter: { and: [mine, { attr: 'age', op: 'between', values: [10, 19] }, { not: { attr: 'SK', op: '=', value: 'SETTINGS' } }] } });
    onceEach(t, ranged.items, items.filter((i) => i.age >= 10 && i.age <= 19 && i.SK === 'PROFILE').map(keyOf).sort(), 'between and not');

    const projected = await drain(s, { filter: mine, fields: ['age'], limit: 100 });
    t.equal(projected.items.length, COUNT);
    t.ok(projected.items.every((i) => Object.keys(i).sort().join() === 'PK,SK,age'), 'fields: keys and age only');

    const counted = ok(t, await scan({ filter: mine, count: true }), 'count');
    t.equal(counted.count, COUNT);
    t.same(counted.items, []);
    t.ok(counted.scannedCount >= COUNT, 'scannedCount counts every item read');

    const paged = ok(t, await scan({ filter: mine, limit: 1000, pages: 1 }), 'pages: 1');
    t.ok(paged.items.length <= 1000);

    const gsi = await drain(s, { index: 'gsi-email', filter: { and: [mine, { attr: 'email', op: '=', value: `${RUN}-3@example.com` }] }, limit: 4 });
    onceEach(t, gsi.items, items.filter((i) => i.email === `${RUN}-3@example.com`).map(keyOf).sort(), 'scan of gsi-email');
    const gsiPage = ok(t, await scan({ index: 'gsi-email', filter: mine, limit: 3 }), 'gsi page');
    const gsiCursor = JSON.parse(Buffer.from(gsiPage.cursor.replace(/=+$/, ''), 'base64url').toString('utf8'));
    t.equal(gsiCursor.index, 'gsi-email');
    t.same(Object.keys(gsiCursor.lastKey), ['PK', 'SK', 'email'], 'index scan cursor: table and index keys, sorted');
    problem(t, await scan({ filter: mine, cursor: gsiPage.cursor }), 400, 'ErrInvalidRequest', 'index cursor on a table scan');
    problem(t, await scan({ index: 'gsi-email', filter: mine, cursor: pages[0].cursor }), 400, 'ErrInvalidRequest', 'table cursor on an index scan');
    problem(t, await scan({ index: 'gsi-email', consistent: true }), 400, 'ErrInvalidRequest', 'consistent scan of a GSI');
    ok(t, await scan({ filter: mine, consistent: true, limit: 5 }), 'consistent scan of the table');
  });

  await t.test('parallel scan: 4 segments, each paginated to the end, cover every item once', async (t) => {
    const bySegment: Json[][] = [];
    for (let segment = 0; segment < 4; segment++) {
      const { items: got, pages } = await drain(s, { filter: mine, segment, totalSegments: 4, limit: 13 });
      t.equal(pages.at(-1)!.cursor, undefined, `segment ${segment} read to the end`);
      bySegment.push(got);
    }
    const union = bySegment.flat();
    onceEach(t, union, expectedKeys, 'union of segments');
    t.ok(bySegment.filter((seg) => seg.length > 0).length >= 2, `items spread over segments: ${bySegment.map((seg) => seg.length).join(', ')}`);
    for (let a = 0; a < 4; a++) {
      const keys = new Set(bySegment[a].map(keyOf));
      for (let b = a + 1; b < 4; b++) t.notOk(bySegment[b].some((i) => keys.has(keyOf(i))), `segments ${a} and ${b} are disjoint`);
    }
    const counted = [0, 1, 2, 3].map((segment) => scan({ filter: mine, segment, totalSegments: 4, count: true }));
    const counts = (await Promise.all(counted)).map((r) => ok(t, r, 'segment count').count);
    t.same(counts, bySegment.map((seg) => seg.length), 'count per segment matches the items');
    const one = ok(t, await scan({ filter: mine, segment: 0, totalSegments: 1, limit: 1000 }), 'one segment of one');
    t.equal(one.items.length, COUNT, 'totalSegments 1 is the whole table');
  });

  await t.test('NDJSON export reads every segment', async (t) => {
    const res = await scan({ filter: mine, totalSegments: 3 }, { accept: 'application/x-ndjson' });
    t.equal(res.status, 200);
    t.match(res.headers.get('content-type') ?? '', /^application\/x-ndjson/);
    t.ok(res.text.endsWith('\n'));
    const lines = res.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    onceEach(t, lines, expectedKeys, 'NDJSON totalSegments 3');

    const whole = await scan({ filter: mine }, { accept: 'application/x-ndjson' });
    onceEach(t, whole.text.split('\n').filter(Boolean).map((l) => JSON.parse(l)), expectedKeys, 'NDJSON without segments');

    const segs = await Promise.all(
      [0, 1, 2].map((segment) => scan({ filter: mine, segment, totalSegments: 3 }, { accept: 'application/x-ndjson' })),
    );
    const parts = segs.map((r) => r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l)));
    onceEach(t, parts.flat(), expectedKeys, 'NDJSON of each segment separately');

    const many = await scan({ filter: mine, totalSegments: 7 }, { accept: 'application/x-ndjson' });
    onceEach(t, many.text.split('\n').filter(Boolean).map((l) => JSON.parse(l)), expectedKeys, 'NDJSON totalSegments 7 (more than run at once)');

    const limited = await scan({ filter: mine, totalSegments: 3, limit: 10 }, { accept: 'application/x-ndjson' });
    const limitedLines = limited.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    t.equal(limitedLines.length, 10, 'limit caps an NDJSON export');
    t.equal(new Set(limitedLines.map(keyOf)).size, 10);
  });

  await t.test('request errors', async (t) => {
    problem(t, await scan({ segment: 0 }), 400, 'ErrInvalidRequest', 'segment without totalSegments');
    problem(t, await scan({ segment: 1 }, { accept: 'application/x-ndjson' }), 400, 'ErrInvalidRequest', 'NDJSON: segment without totalSegments');
    problem(t, await scan({ totalSegments: 4 }), 400, 'ErrInvalidRequest', 'totalSegments without segment (JSON page)');
    problem(t, await scan({ segment: 4, totalSegments: 4 }), 400, 'ErrInvalidRequest', 'segment = totalSegments');
    problem(t, await scan({ segment: -1, totalSegments: 4 }), 400, 'ErrInvalidRequest', 'negative segment');
    problem(t, await scan({ segment: 0, totalSegments: 0 }), 400, 'ErrInvalidRequest', 'totalSegments 0');
    problem(t, await scan({ segment: 0, totalSegments: 1_000_001 }), 400, 'ErrInvalidRequest', 'totalSegments over 1000000');
    problem(t, await scan({ filter: { attr: 'status', op: 'matches', value: 'x' } }), 400, 'ErrInvalidOperator', 'unknown operator');
    problem(t, await scan({ filter: { attr: 'status', op: 'in', values: Array.from({ length: 101 }, (_, i) => `s${i}`) } }), 400, 'ErrInvalidRequest', 'in with 101 values');
    problem(t, await scan({ cursor: 'x' }), 400, 'ErrInvalidRequest', 'garbage cursor');
    problem(t, await scan({ index: 'lsi-status' }), 400, 'ErrInvalidRequest', 'index of another model');
    problem(t, await scan({ partition: 'x' }), 400, 'ErrInvalidRequest', 'query fields on a scan');
  });
});
