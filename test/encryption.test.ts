// Envelope encryption of DMS `encryption` attributes (User.taxId: S, User.medical: M) on the embedded store with the
// local development key, over real HTTP: every write and read path round-trips the plaintext while the table holds
// only envelope v1 maps; a canary plaintext never shows up in an error body or in the log; tampering with any envelope
// field fails the whole read (500 ErrInvalidEncryptedEnvelope, no partial item); a sidecar without a key provider
// refuses to write (500 ErrEncryptionNotConfigured, nothing written); encrypted attributes cannot be queried or
// updated in place; and with --data-dir the generated key survives a restart.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { AttributeValue } from '../src/codec/attribute-value.js';
import t, { type Test } from 'tap';
import { ConfigError, loadConfig } from '../src/config.js';
import { startSidecar } from '../src/server.js';
import { baseConfig, send, startTestSidecar, type TestResponse, type TestSidecar } from './helpers/sidecar.js';
import { problem, type Json } from './helpers/assert.js';

process.env.AWS_ACCESS_KEY_ID ??= 'testing';
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';

type AvItem = Record<string, AttributeValue>;

const RUN = randomUUID().slice(0, 8);
const CANARY = `CANARY-7f3a-${randomUUID()}`;
const MED_CANARY = `MEDCANARY-${randomUUID()}`;
const enc = encodeURIComponent;
const itemPath = (pk: string, sk = 'PROFILE') => `/v1/models/User/items/${enc(pk)}/${enc(sk)}`;

const medical = (note = MED_CANARY): Json => ({
  blood: 'AB-',
  allergies: ['penicillin', note],
  history: { surgeries: [{ year: 2020, what: 'knee' }], notes: note, deep: { deeper: { deepest: { n: 12.5 } } } },
  donor: true,
  nothing: null,
});

const user = (pk: string, extra: Json = {}, sk = 'PROFILE'): Json => ({
  PK: pk,
  SK: sk,
  email: `${pk.toLowerCase().replace(/[^a-z0-9]/g, '-')}@example.com`,
  ...extra,
});

/** Bytes of a binary value as the JSON protocol carries it (base64). */
const bytes = (b: string | undefined): Buffer => Buffer.from(b ?? '', 'base64');

/** Text of a raw DynamoDB item in which binary values appear byte for byte (so plaintext inside them would show). */
function rawText(item: unknown): string {
  return JSON.stringify(item, (k, v: unknown) =>
    k === 'B' && typeof v === 'string' ? bytes(v).toString('latin1') : k === 'BS' && Array.isArray(v) ? v.map((b) => bytes(b).toString('latin1')) : v,
  );
}

function isEnvelope(t: Test, av: AttributeValue | undefined, what: string): void {
  const m = (av as { M?: Record<string, AttributeValue> } | undefined)?.M;
  if (!t.ok(m, `${what}: stored as a map (M)`)) return;
  t.same(Object.keys(m!).sort(), ['ct', 'edk', 'nonce', 'v'], `${what}: exactly v, edk, nonce, ct`);
  t.equal(m!.v?.N, '1', `${what}: v = N "1"`);
  t.ok(typeof m!.edk?.B === 'string' && bytes(m!.edk.B).length > 0, `${what}: edk is non-empty binary`);
  t.equal(bytes(m!.nonce?.B).length, 12, `${what}: 12-byte nonce`);
  t.ok(bytes(m!.ct?.B).length >= 16, `${what}: ct holds at least the tag`);
}


function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-enc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------------------------------------------------------
// One sidecar for most of this file, logging at debug level into memory so the log can be searched for plaintext.

let logText = '';
const logStream = new Writable({
  write(chunk: Buffer | string, _enc, cb) {
    logText += chunk.toString();
    cb();
  },
});
const sidecar = await startSidecar({ ...baseConfig }, { level: 'debug', stream: logStream });
t.teardown(() => sidecar.close());
const client = sidecar.backend.client;
/** Every error response body seen in this file (none may contain a canary). */
const errorBodies: string[] = [];
const req = async (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse> => {
  const res = await send(sidecar.url, method, path, body, headers);
  if (res.status >= 400) errorBodies.push(res.text);
  return res;
};

async function raw(pk: string, sk = 'PROFILE'): Promise<AvItem | undefined> {
  const out = await client.send(new GetItemCommand({ TableName: 'users', Key: { PK: { S: pk }, SK: { S: sk } }, ConsistentRead: true }));
  return out.Item;
}

async function rawEnvelopes(t: Test, pk: string, what: string, sk = 'PROFILE', attrs = ['taxId', 'medical']): Promise<AvItem | undefined> {
  const item = await raw(pk, sk);
  if (!t.ok(item, `${what}: item in the table`)) return undefined;
  for (const a of attrs) isEnvelope(t, item![a], `${what}: ${a}`);
  const text = rawText(item);
  t.notOk(text.includes(CANARY), `${what}: no taxId plaintext in the stored item`);
  t.notOk(text.includes(MED_CANARY) || text.includes('penicillin') || text.includes('surgeries'), `${what}: no medical plaintext (values or keys) in the stored item`);
  return item;
}

async function createUser(t: Test, pk: string, extra: Json = {}, sk = 'PROFILE'): Promise<Json> {
  const res = await req('POST', '/v1/models/User/items', user(pk, extra, sk));
  t.equal(res.status, 201, res.status === 201 ? `create ${pk}` : `create ${pk}: ${res.text.slice(0, 300)}`);
  return res.json ?? {};
}

async function getUser(pk: string, sk = 'PROFILE'): Promise<TestResponse> {
  return req('GET', itemPath(pk, sk));
}

t.test('the local development key is announced in the log', async (t) => {
  t.match(logText, /LOCAL development key/, 'warning logged at boot');
  t.match(sidecar.app.printRoutes(), /items/, 'routes registered');
});

t.test('round trips through every write and read path', async (t) => {
  const P = `${RUN}#RT#`;

  await t.test('POST then GET', async (t) => {
    const created = await createUser(t, `${P}A`, { taxId: CANARY, medical: medical(), name: 'Ann' });
    t.equal(created.taxId, CANARY, 'create response shows the plaintext to its caller');
    t.same(created.medical, medical(), 'create response: medical');
    const got = await getUser(`${P}A`);
    t.equal(got.status, 200);
    t.equal(got.json?.taxId, CANARY, 'GET taxId');
    t.same(got.json?.medical, medical(), 'GET medical (nested map, list, number, bool, null)');
    const projected = await req('GET', `${itemPath(`${P}A`)}?fields=taxId,medical`);
    t.equal(projected.json?.taxId, CANARY, '?fields=taxId decrypts');
    t.same(projected.json?.medical, medical(), '?fields=medical decrypts');
    t.equal(projected.json?.name, undefined, '?fields projects');
    const consistent = await req('GET', `${itemPath(`${P}A`)}?consistent=true`);
    t.equal(consistent.json?.taxId, CANARY, 'consistent read decrypts');
    await rawEnvelopes(t, `${P}A`, 'after POST');
  });

  await t.test('edge values: empty string, unicode, empty map, null, large value', async (t) => {
    const cases: Array<[string, Json]> = [
      ['empty taxId', { taxId: '' }],
      ['unicode taxId', { taxId: `ñ-𝄞-\u0000-"quote"-\\-${CANARY}` }],
      ['empty medical', { medical: {} }],
      ['null taxId', { taxId: null }],
      ['null medical', { medical: null }],
      ['large taxId', { taxId: 'z'.repeat(300_000) }],
      ['medical with odd keys', { medical: { 'a.b': 1, '#x': [true, null, 'y'], ' ': { '': 0 } } }],
    ];
    for (const [i, [what, extra]] of cases.entries()) {
      const pk = `${P}EDGE#${i}`;
      const created = await req('POST', '/v1/models/User/items', user(pk, extra));
      if (!t.equal(created.status, 201, `${what}: created`)) {
        t.comment(created.text.slice(0, 300));
        continue;
      }
      const got = await getUser(pk);
      const [attr, value] = Object.entries(extra)[0];
      t.same(got.json?.[attr] ?? null, value, `${what}: round trip`);
      const stored = await raw(pk);
      if (stored?.[attr] !== undefined) isEnvelope(t, stored[attr], `${what}: stored`);
      else t.ok(value === null || value === '', `${what}: only an empty value may be left out (stored: none)`);
    }
  });

  await t.test('an item without encrypted attributes stays plain', async (t) => {
    await createUser(t, `${P}PLAIN`, { name: 'Plain' });
    const item = await raw(`${P}PLAIN`);
    t.equal(item?.taxId, undefined);
    t.equal(item?.name?.S, 'Plain');
    t.equal((await getUser(`${P}PLAIN`)).json?.name, 'Plain');
  });

  await t.test('PUT replaces encrypted values', async (t) => {
    await createUser(t, `${P}PUT`, { taxId: 'old-tax', medical: { blood: 'O+' } });
    const res = await req('PUT', itemPath(`${P}PUT`), { email: 'put@example.com', taxId: CANARY, medical: medical() });
    t.equal(res.status, 200, `PUT (${res.text.slice(0, 200)})`);
    t.equal(res.json?.taxId, CANARY);
    t.same(res.json?.medical, medical());
    const got = await getUser(`${P}PUT`);
    t.equal(got.json?.taxId, CANARY);
    t.same(got.json?.medical, medical());
    t.equal(got.json?.version, 1);
    await rawEnvelopes(t, `${P}PUT`, 'after PUT');
    const dropped = await req('PUT', itemPath(`${P}PUT`), { email: 'put@example.com' });
    t.equal(dropped.status, 200);
    t.equal((await getUser(`${P}PUT`)).json?.taxId, undefined, 'PUT without taxId removes it');
    t.equal((await raw(`${P}PUT`))?.taxId, undefined, 'and it is gone from the table');
    const upsert = await req('POST', '/v1/models/User/items?ifNotExists=false', user(`${P}PUT`, { taxId: CANARY }));
    t.equal(upsert.status, 201, 'POST ?ifNotExists=false upserts');
    t.equal((await getUser(`${P}PUT`)).json?.taxId, CANARY);
    await rawEnvelopes(t, `${P}PUT`, 'after upsert', 'PROFILE', ['taxId']);
  });

  await t.test('PATCH set, setIfNotExists, remove', async (t) => {
    const pk = `${P}PATCH`;
    await createUser(t, pk, { name: 'P' });
    const set = await req('PATCH', itemPath(pk), { set: { taxId: CANARY, medical: medical(), name: 'Q' } });
    t.equal(set.status, 200, `PATCH set (${set.text.slice(0, 200)})`);
    t.equal(set.json?.taxId, CANARY, 'PATCH response decrypts');
    t.same(set.json?.medical, medical());
    t.equal((await getUser(pk)).json?.taxId, CANARY);
    await rawEnvelopes(t, pk, 'after PATCH set');

    const keep = await req('PATCH', itemPath(pk), { setIfNotExists: { taxId: 'should-not-win', medical: { blood: 'X' } } });
    t.equal(keep.status, 200, 'setIfNotExists on present values');
    t.equal(keep.json?.taxId, CANARY, 'present taxId kept');
    t.same(keep.json?.medical, medical(), 'present medical kept');

    const removed = await req('PATCH', itemPath(pk), { remove: ['taxId', 'medical'] });
    t.equal(removed.status, 200);
    t.equal(removed.json?.taxId, undefined);
    const stored = await raw(pk);
    t.equal(stored?.taxId, undefined, 'removed from the table');
    t.equal(stored?.medical, undefined);

    const fresh = await req('PATCH', itemPath(pk), { setIfNotExists: { taxId: CANARY, medical: medical() } });
    t.equal(fresh.status, 200, 'setIfNotExists on absent values');
    t.equal(fresh.json?.taxId, CANARY);
    t.same((await getUser(pk)).json?.medical, medical());
    await rawEnvelopes(t, pk, 'after setIfNotExists');

    const versioned = await req('PATCH', itemPath(pk), { set: { taxId: `${CANARY}-v` } }, { 'if-match': `"${fresh.json?.version}"` });
    t.equal(versioned.status, 200, 'PATCH with If-Match');
    t.equal((await getUser(pk)).json?.taxId, `${CANARY}-v`);
  });

  await t.test('query, index query and scan (JSON and NDJSON) decrypt every item', async (t) => {
    const pk = `${P}Q`;
    for (let i = 0; i < 5; i++) await createUser(t, pk, { taxId: `${CANARY}-${i}`, medical: medical(`${MED_CANARY}-${i}`) }, `S#${i}`);
    const q = await req('POST', '/v1/models/User/query', { partition: pk });
    t.equal(q.status, 200, `query (${q.text.slice(0, 200)})`);
    t.same(q.json?.items?.map((i: Json) => i.taxId), [0, 1, 2, 3, 4].map((i) => `${CANARY}-${i}`), 'query: taxId decrypted, in order');
    t.same(q.json?.items?.[3]?.medical, medical(`${MED_CANARY}-3`), 'query: medical decrypted');
    const desc = await req('POST', '/v1/models/User/query', { partition: pk, order: 'DESC', limit: 2, fields: ['taxId'] });
    t.same(desc.json?.items?.map((i: Json) => i.taxId), [`${CANARY}-4`, `${CANARY}-3`], 'query DESC with fields');
    const page2 = await req('POST', '/v1/models/User/query', { partition: pk, order: 'DESC', limit: 2, cursor: desc.json?.cursor });
    t.same(page2.json?.items?.map((i: Json) => i.taxId), [`${CANARY}-2`, `${CANARY}-1`], 'second page decrypted');

    const nd = await req('POST', '/v1/models/User/query', { partition: pk }, { accept: 'application/x-ndjson' });
    t.equal(nd.status, 200);
    const lines = nd.text.trim().split('\n').map((l) => JSON.parse(l) as Json);
    t.same(lines.map((i) => i.taxId), [0, 1, 2, 3, 4].map((i) => `${CANARY}-${i}`), 'NDJSON query decrypted');
    t.notOk(nd.text.includes('"edk"'), 'no envelope in the stream');

    const byEmail = await req('POST', '/v1/models/User/query', { index: 'gsi-email', partition: user(pk).email });
    t.equal(byEmail.status, 200);
    t.equal(byEmail.json?.items?.length, 5, 'GSI query');
    t.ok(byEmail.json?.items?.every((i: Json) => i.taxId?.startsWith(CANARY)), 'GSI query decrypted');

    const scan = await req('POST', '/v1/models/User/scan', { filter: { attr: 'PK', op: '=', value: pk }, pages: 'all', limit: 1000 });
    t.equal(scan.status, 200, `scan (${scan.text.slice(0, 200)})`);
    t.same(scan.json?.items?.map((i: Json) => i.taxId).sort(), [0, 1, 2, 3, 4].map((i) => `${CANARY}-${i}`), 'scan decrypted');
    t.same(scan.json?.items?.find((i: Json) => i.SK === 'S#2')?.medical, medical(`${MED_CANARY}-2`));
    const ndScan = await req('POST', '/v1/models/User/scan', { filter: { attr: 'PK', op: '=', value: pk } }, { accept: 'application/x-ndjson' });
    const scanned = ndScan.text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json);
    t.equal(scanned.length, 5, 'NDJSON scan');
    t.ok(scanned.every((i) => i.taxId?.startsWith(CANARY) && i.medical?.blood === 'AB-'), 'NDJSON scan decrypted');
    t.notOk(JSON.stringify(q.json).includes('"edk"') || JSON.stringify(scan.json).includes('"edk"'), 'no envelope fields in results');
  });

  await t.test('batch-write then batch-get', async (t) => {
    const puts = Array.from({ length: 30 }, (_, i) => user(`${P}B#${i}`, { taxId: `${CANARY}-b${i}`, medical: medical(`${MED_CANARY}-b${i}`) }));
    const w = await req('POST', '/v1/models/User/batch-write', { puts });
    t.equal(w.status, 200, `batch-write (${w.text.slice(0, 200)})`);
    t.equal(w.json?.complete, true);
    for (const i of [0, 17, 29]) await rawEnvelopes(t, `${P}B#${i}`, `batch put ${i}`);
    const g = await req('POST', '/v1/models/User/batch-get', { keys: puts.map((p) => ({ PK: p.PK, SK: p.SK })) });
    t.equal(g.status, 200, 'batch-get');
    t.same(g.json?.items?.map((i: Json) => i.taxId), puts.map((p) => p.taxId), 'batch-get decrypted, in order');
    t.same(g.json?.items?.[17]?.medical, medical(`${MED_CANARY}-b17`));
    const projected = await req('POST', '/v1/models/User/batch-get', { keys: [{ PK: `${P}B#3`, SK: 'PROFILE' }], fields: ['medical'] });
    t.same(projected.json?.items?.[0]?.medical, medical(`${MED_CANARY}-b3`), 'batch-get with fields decrypts');
    const deleted = await req('POST', '/v1/models/User/batch-write', { deletes: [{ PK: `${P}B#0`, SK: 'PROFILE' }] });
    t.equal(deleted.status, 200, 'batch delete of an encrypted item');
    t.equal(await raw(`${P}B#0`), undefined);
  });

  await t.test('transactions: write (create, put, update) and get', async (t) => {
    await createUser(t, `${P}TX#U`, { name: 'U' });
    const w = await req('POST', '/v1/transactions/write', {
      items: [
        { op: 'create', model: 'User', item: user(`${P}TX#C`, { taxId: `${CANARY}-c`, medical: medical() }) },
        { op: 'put', model: 'User', item: user(`${P}TX#P`, { taxId: `${CANARY}-p` }) },
        { op: 'update', model: 'User', key: { PK: `${P}TX#U`, SK: 'PROFILE' }, update: { set: { taxId: `${CANARY}-u`, medical: medical() } } },
      ],
    });
    t.equal(w.status, 200, `transactions/write (${w.text.slice(0, 300)})`);
    await rawEnvelopes(t, `${P}TX#C`, 'tx create');
    await rawEnvelopes(t, `${P}TX#P`, 'tx put', 'PROFILE', ['taxId']);
    await rawEnvelopes(t, `${P}TX#U`, 'tx update');
    const g = await req('POST', '/v1/transactions/get', {
      items: ['C', 'P', 'U', 'NONE'].map((s) => ({ model: 'User', key: { PK: `${P}TX#${s}`, SK: 'PROFILE' } })),
    });
    t.equal(g.status, 200, `transactions/get (${g.text.slice(0, 300)})`);
    t.same(g.json?.items?.map((i: Json | null) => i?.taxId ?? null), [`${CANARY}-c`, `${CANARY}-p`, `${CANARY}-u`, null], 'decrypted, null for missing');
    t.same(g.json?.items?.[0]?.medical, medical());
    t.same(g.json?.items?.[2]?.medical, medical());
    const fields = await req('POST', '/v1/transactions/get', { items: [{ model: 'User', key: { PK: `${P}TX#C`, SK: 'PROFILE' }, fields: ['taxId'] }] });
    t.equal(fields.json?.items?.[0]?.taxId, `${CANARY}-c`, 'transactions/get with fields decrypts');
  });

  await t.test('envelopes: fresh nonce per value, one data key shared by many values', async (t) => {
    const nonces = new Set<string>();
    const edks = new Set<string>();
    const pk = `${P}NONCE`;
    for (let i = 0; i < 20; i++) {
      await createUser(t, pk, { taxId: CANARY, medical: { a: 1 } }, `S#${i}`);
      const item = await raw(pk, `S#${i}`);
      for (const a of ['taxId', 'medical']) {
        const m = item?.[a]?.M;
        nonces.add(Buffer.from(m?.nonce?.B ?? []).toString('hex'));
        edks.add(Buffer.from(m?.edk?.B ?? []).toString('hex'));
      }
    }
    t.equal(nonces.size, 40, '40 values, 40 distinct nonces');
    t.ok(edks.size <= 2, `data key reused across values (${edks.size} distinct edks for 40 values)`);
    const a = (await raw(pk, 'S#0'))?.taxId?.M?.ct?.B;
    const b = (await raw(pk, 'S#1'))?.taxId?.M?.ct?.B;
    t.notSame(Buffer.from(a ?? []), Buffer.from(b ?? []), 'same plaintext, different ciphertext');
  });

  await t.test('data-key cache: 500 writes and reads cost at most one provider call each way', async (t) => {
    const before = { ...sidecar.keyring.counters };
    const pk = `${P}CACHE`;
    const puts = Array.from({ length: 500 }, (_, i) => user(pk, { taxId: `${CANARY}-${i}` }, `S#${String(i).padStart(3, '0')}`));
    const w = await req('POST', '/v1/models/User/batch-write', { puts });
    t.equal(w.status, 200);
    const q = await req('POST', '/v1/models/User/query', { partition: pk, limit: 1000, pages: 'all' });
    t.equal(q.json?.items?.length, 500);
    const after = sidecar.keyring.counters;
    t.ok(after.generateDataKey - before.generateDataKey <= 1, `generateDataKey +${after.generateDataKey - before.generateDataKey}`);
    t.ok(after.decrypt - before.decrypt <= 1, `decrypt +${after.decrypt - before.decrypt}`);
  });
});

t.test('canary: plaintext never appears in error bodies', async (t) => {
  const pk = `${RUN}#ERR`;
  await createUser(t, pk, { taxId: CANARY, medical: medical() });
  const cases: Array<[string, () => Promise<TestResponse>, number]> = [
    ['bad type on another attribute', () => req('POST', '/v1/models/User/items', user(`${pk}#2`, { taxId: CANARY, medical: medical(), age: 'not-a-number' })), 400],
    ['unknown attribute next to taxId', () => req('POST', '/v1/models/User/items', user(`${pk}#2`, { taxId: CANARY, bogus: CANARY })), 400],
    ['taxId of the wrong type', () => req('POST', '/v1/models/User/items', user(`${pk}#2`, { taxId: { nested: CANARY } })), 400],
    ['taxId as a number-like canary in an array', () => req('POST', '/v1/models/User/items', user(`${pk}#2`, { taxId: [CANARY] })), 400],
    ['medical as a string', () => req('POST', '/v1/models/User/items', user(`${pk}#2`, { medical: MED_CANARY })), 400],
    ['create on an existing key', () => req('POST', '/v1/models/User/items', user(pk, { taxId: CANARY })), 409],
    ['condition on taxId', () => req('PATCH', itemPath(pk), { set: { name: 'x' }, condition: { attr: 'taxId', op: '=', value: CANARY } }), 400],
    ['condition on medical path', () => req('PATCH', itemPath(pk), { set: { name: 'x' }, condition: { attr: 'medical.history.notes', op: '=', value: MED_CANARY } }), 400],
    ['add on taxId', () => req('PATCH', itemPath(pk), { add: { taxId: CANARY } }), 400],
    ['set taxId with a wrong If-Match', () => req('PATCH', itemPath(pk), { set: { taxId: CANARY } }, { 'if-match': '"99"' }), 412],
    ['set taxId of the wrong type', () => req('PATCH', itemPath(pk), { set: { taxId: { x: CANARY } } }), 400],
    ['item too large', () => req('POST', '/v1/models/User/items', user(`${pk}#BIG`, { taxId: CANARY, name: 'x'.repeat(420_000) })), 400],
    ['filter on taxId', () => req('POST', '/v1/models/User/scan', { filter: { attr: 'taxId', op: 'begins_with', value: CANARY } }), 400],
    ['batch-write with one invalid put', () => req('POST', '/v1/models/User/batch-write', { puts: [user(`${pk}#B1`, { taxId: CANARY }), user(`${pk}#B2`, { taxId: CANARY, age: 'x' })] }), 400],
    [
      'transaction canceled',
      () =>
        req('POST', '/v1/transactions/write', {
          items: [
            { op: 'create', model: 'User', item: user(pk, { taxId: CANARY, medical: medical() }) },
            { op: 'put', model: 'User', item: user(`${pk}#TX`, { taxId: CANARY }) },
          ],
        }),
      409,
    ],
  ];
  for (const [what, run, status] of cases) {
    const res = await run();
    t.equal(res.status, status, `${what}: ${status}${res.status === status ? '' : ` (got ${res.status} ${res.text.slice(0, 200)})`}`);
    t.notOk(res.text.includes(CANARY) || res.text.includes(MED_CANARY), `${what}: no canary in the body`);
  }
  // Malformed JSON: V8's SyntaxError message quotes ~10 characters around the bad token, and
  // src/http/json-body.ts copies that message into the problem detail.
  const bodyText = (v: string) => `{"PK":"${pk}#J","SK":"PROFILE","email":"j@example.com","taxId":${v}}`;
  for (const [what, text] of [
    ['unterminated string', bodyText(`"${CANARY}`)],
    ['bad escape', bodyText(`"${CANARY}\\q"`)],
    ['unquoted value', bodyText(CANARY)],
  ] as const) {
    const res = await req('POST', '/v1/models/User/items', text, { 'content-type': 'application/json' });
    t.equal(res.status, 400, `malformed JSON, ${what}: 400`);
    t.notOk(res.text.includes(CANARY), `malformed JSON, ${what}: no full canary in the body`);
    t.notOk(res.text.includes(CANARY.slice(0, 10)), `malformed JSON, ${what}: not even a fragment of it`);
  }
  t.equal((await getUser(`${pk}#2`)).status, 404, 'nothing was written by the rejected creates');
  t.equal((await getUser(`${pk}#B1`)).status, 404, 'rejected batch wrote nothing');
  t.equal((await getUser(`${pk}#TX`)).status, 404, 'canceled transaction wrote nothing');
  t.equal((await getUser(pk)).json?.taxId, CANARY, 'the original item is intact');
});

t.test('tampered envelopes fail the whole read', async (t) => {
  const P = `${RUN}#TAMPER#`;
  const pk = `${P}X`;
  const good = `${P}GOOD`;
  await createUser(t, pk, { taxId: CANARY, medical: medical(), name: 'SECRET-NAME-OF-TAMPERED' });
  await createUser(t, pk, { taxId: `${CANARY}-sib`, name: 'SIBLING-NAME' }, 'SIB');
  await createUser(t, good, { taxId: `${CANARY}-good`, name: 'GOOD-NAME' });
  const original = await raw(pk);
  const env = original!.taxId.M!;
  const medEnv = original!.medical;
  const flip = (b: string | undefined, at = 0): string => {
    const out = bytes(b);
    const i = at < 0 ? out.length + at : at;
    out[i] ^= 0x01;
    return out.toString('base64');
  };
  const cut = (b: string | undefined, length: number): string => bytes(b).subarray(0, length).toString('base64');
  const variants: Array<[string, 'taxId' | 'medical', AttributeValue]> = [
    ['v = N "2"', 'taxId', { M: { ...env, v: { N: '2' } } }],
    ['v as a string', 'taxId', { M: { ...env, v: { S: '1' } } }],
    ['edk: one bit flipped', 'taxId', { M: { ...env, edk: { B: flip(env.edk.B) } } }],
    ['edk: truncated', 'taxId', { M: { ...env, edk: { B: cut(env.edk.B, 10) } } }],
    ['edk as a string', 'taxId', { M: { ...env, edk: { S: 'abc' } } }],
    ['nonce: one bit flipped', 'taxId', { M: { ...env, nonce: { B: flip(env.nonce.B) } } }],
    ['nonce: 11 bytes', 'taxId', { M: { ...env, nonce: { B: cut(env.nonce.B, 11) } } }],
    ['ct: first byte flipped', 'taxId', { M: { ...env, ct: { B: flip(env.ct.B) } } }],
    ['ct: tag byte flipped', 'taxId', { M: { ...env, ct: { B: flip(env.ct.B, -1) } } }],
    ['ct: shorter than the tag', 'taxId', { M: { ...env, ct: { B: cut(env.ct.B, 15) } } }],
    ['ct: missing', 'taxId', { M: { v: env.v, edk: env.edk, nonce: env.nonce } }],
    ['extra field', 'taxId', { M: { ...env, extra: { S: 'x' } } }],
    ['plaintext stored instead of an envelope', 'taxId', { S: CANARY }],
    ['medical stored as a plaintext map', 'medical', { M: { [MED_CANARY]: { S: 'x' }, blood: { S: 'AB-' } } }],
    ['medical envelope moved into taxId (AAD names the attribute)', 'taxId', medEnv],
    ['taxId envelope moved into medical', 'medical', original!.taxId],
  ];
  const keyOf = (p: string, sk = 'PROFILE') => ({ PK: p, SK: sk });
  for (const [what, attr, value] of variants) {
    await t.test(what, async (t) => {
      await client.send(
        new UpdateItemCommand({
          TableName: 'users',
          Key: { PK: { S: pk }, SK: { S: 'PROFILE' } },
          UpdateExpression: 'SET #a = :v',
          ExpressionAttributeNames: { '#a': attr },
          ExpressionAttributeValues: { ':v': value },
        }),
      );
      const checks: Array<[string, TestResponse]> = [
        ['GET', await getUser(pk)],
        ['GET ?fields', await req('GET', `${itemPath(pk)}?fields=${attr}`)],
        ['query', await req('POST', '/v1/models/User/query', { partition: pk })],
        ['query NDJSON', await req('POST', '/v1/models/User/query', { partition: pk }, { accept: 'application/x-ndjson' })],
        ['scan', await req('POST', '/v1/models/User/scan', { filter: { attr: 'PK', op: 'begins_with', value: P }, pages: 'all' })],
        ['batch-get', await req('POST', '/v1/models/User/batch-get', { keys: [keyOf(good), keyOf(pk), keyOf(pk, 'SIB')] })],
        ['transactions/get', await req('POST', '/v1/transactions/get', { items: [{ model: 'User', key: keyOf(good) }, { model: 'User', key: keyOf(pk) }] })],
        ['PATCH (returns the new item)', await req('PATCH', itemPath(pk), { set: { name: 'SECRET-NAME-OF-TAMPERED' } })],
      ];
      for (const [route, res] of checks) {
        problem(t, res, 500, 'ErrInvalidEncryptedEnvelope', route);
        t.notOk(/SECRET-NAME|SIBLING-NAME|GOOD-NAME|example\.com/.test(res.text), `${route}: no partial item (no other attribute leaks)`);
        t.notOk(res.text.includes(CANARY) || res.text.includes(MED_CANARY), `${route}: no canary`);
      }
      const detail = checks[0][1].json?.detail ?? '';
      t.match(detail, new RegExp(attr === 'taxId' ? 'taxId' : 'medical'), 'detail names the attribute');
      t.equal(checks[0][1].json?.attribute, attr, 'problem names the attribute');
      // Restore; the item reads again.
      await client.send(new PutItemCommand({ TableName: 'users', Item: original! }));
      const back = await getUser(pk);
      t.equal(back.status, 200, 'restored item reads again');
      t.equal(back.json?.taxId, CANARY);
    });
  }
  t.equal((await getUser(good)).json?.taxId, `${CANARY}-good`, 'other items were readable all along');
});

t.test('filters and conditions on encrypted attributes: 400 ErrEncryptedFieldNotQueryable', async (t) => {
  const pk = `${RUN}#NQ`;
  await createUser(t, pk, { taxId: CANARY, medical: medical(), name: 'N' });
  const cond = (c: unknown) => `?condition=${enc(JSON.stringify(c))}`;
  const cases: Array<[string, () => Promise<TestResponse>]> = [
    ['query filter on taxId', () => req('POST', '/v1/models/User/query', { partition: pk, filter: { attr: 'taxId', op: '=', value: 'x' } })],
    ['query filter exists taxId', () => req('POST', '/v1/models/User/query', { partition: pk, filter: { attr: 'taxId', op: 'exists' } })],
    ['scan filter on a medical path', () => req('POST', '/v1/models/User/scan', { filter: { attr: 'medical.blood', op: '=', value: 'AB-' } })],
    ['scan filter on a medical list element', () => req('POST', '/v1/models/User/scan', { filter: { attr: 'medical.allergies[0]', op: '=', value: 'penicillin' } })],
    ['scan filter nested in and/not', () => req('POST', '/v1/models/User/scan', { filter: { and: [{ attr: 'name', op: 'exists' }, { not: { attr: 'taxId', op: 'not_exists' } }] } })],
    ['scan filter inside or', () => req('POST', '/v1/models/User/scan', { filter: { or: [{ attr: 'name', op: '=', value: 'N' }, { attr: 'medical', op: 'attribute_type', value: 'M' }] } })],
    ['size of taxId', () => req('POST', '/v1/models/User/scan', { filter: { attr: 'taxId', size: true, op: '>', value: 3 } })],
    ['contains on taxId', () => req('POST', '/v1/models/User/query', { partition: pk, filter: { attr: 'taxId', op: 'contains', value: 'CAN' } })],
    ['PATCH condition', () => req('PATCH', itemPath(pk), { set: { name: 'changed' }, condition: { attr: 'taxId', op: 'exists' } })],
    ['POST ?condition', () => req('POST', `/v1/models/User/items?ifNotExists=false&${cond({ attr: 'taxId', op: 'not_exists' }).slice(1)}`, user(pk, { name: 'changed' }))],
    ['PUT ?condition', () => req('PUT', `${itemPath(pk)}${cond({ attr: 'medical.blood', op: '=', value: 'AB-' })}`, { email: 'x@example.com', name: 'changed' })],
    ['DELETE ?condition', () => req('DELETE', `${itemPath(pk)}${cond({ attr: 'medical', op: 'exists' })}`)],
    ['transaction check', () => req('POST', '/v1/transactions/write', { items: [{ op: 'check', model: 'User', key: { PK: pk, SK: 'PROFILE' }, condition: { attr: 'taxId', op: 'exists' } }] })],
    ['transaction update condition', () => req('POST', '/v1/transactions/write', { items: [{ op: 'update', model: 'User', key: { PK: pk, SK: 'PROFILE' }, update: { set: { name: 'changed' } }, condition: { attr: 'taxId', op: '=', value: 'x' } }] })],
  ];
  for (const [what, run] of cases) problem(t, await run(), 400, 'ErrEncryptedFieldNotQueryable', what);
  const after = await getUser(pk);
  t.equal(after.status, 200, 'item still there');
  t.equal(after.json?.name, 'N', 'nothing changed');
  t.equal(after.json?.version, 0, 'version unchanged');
  t.equal(after.json?.taxId, CANARY);
  const projection = await req('POST', '/v1/models/User/query', { partition: pk, fields: ['taxId'], filter: { attr: 'name', op: '=', value: 'N' } });
  t.equal(projection.json?.items?.[0]?.taxId, CANARY, 'projection of an encrypted attribute with a filter on another one is fine');
});

t.test('add / delete / append / prepend on encrypted attributes: 400', async (t) => {
  const pk = `${RUN}#NOADD`;
  await createUser(t, pk, { taxId: CANARY, medical: medical() });
  const cases: Array<[string, Json]> = [
    ['add taxId', { add: { taxId: 'x' } }],
    ['add medical', { add: { medical: 1 } }],
    ['delete taxId', { delete: { taxId: ['x'] } }],
    ['append medical', { append: { medical: [{ a: 1 }] } }],
    ['prepend taxId', { prepend: { taxId: ['x'] } }],
    ['add next to a valid set', { set: { name: 'changed' }, add: { taxId: 'x' } }],
  ];
  for (const [what, body] of cases) {
    const res = await req('PATCH', itemPath(pk), body);
    t.equal(res.status, 400, `${what}: 400 (got ${res.status} ${res.text.slice(0, 160)})`);
    t.match(res.headers.get('content-type') ?? '', /problem\+json/);
    t.match(res.json?.detail ?? '', /encrypt|taxId|medical/, `${what}: says why`);
  }
  const tx = await req('POST', '/v1/transactions/write', { items: [{ op: 'update', model: 'User', key: { PK: pk, SK: 'PROFILE' }, update: { add: { taxId: 'x' } } }] });
  t.equal(tx.status, 400, 'transaction update with add on taxId: 400');
  const after = await getUser(pk);
  t.equal(after.json?.version, 0, 'item unchanged');
  t.equal(after.json?.name, undefined);
  t.equal(after.json?.taxId, CANARY);
});

t.test('fail closed: an aws-backend sidecar without a key provider', async (t) => {
  const bare = await startTestSidecar({ dynamodbEndpoint: await sidecar.backend.exposeOnLoopback!(), backend: 'aws' });
  t.teardown(() => bare.close());
  const P = `${RUN}#NOKEY#`;
  const counters = { ...bare.sidecar.keyring.counters };
  const bareReq = async (method: string, path: string, body?: unknown): Promise<TestResponse> => {
    const res = await bare.request(method, path, body);
    if (res.status >= 400) errorBodies.push(res.text);
    return res;
  };

  problem(t, await bareReq('POST', '/v1/models/User/items', user(`${P}A`, { taxId: CANARY })), 500, 'ErrEncryptionNotConfigured', 'create with taxId');
  t.equal((await getUser(`${P}A`)).status, 404, 'nothing written');
  problem(t, await bareReq('POST', '/v1/models/User/items', user(`${P}B`, { medical: medical() })), 500, 'ErrEncryptionNotConfigured', 'create with medical');
  t.equal(await raw(`${P}B`), undefined, 'nothing written (raw)');
  problem(t, await bareReq('POST', '/v1/models/User/items?ifNotExists=false', user(`${P}B`, { taxId: CANARY })), 500, 'ErrEncryptionNotConfigured', 'upsert with taxId');

  const plain = await bareReq('POST', '/v1/models/User/items', user(`${P}PLAIN`, { name: 'plain' }));
  t.equal(plain.status, 201, 'an item without encrypted attributes is written');
  problem(t, await bareReq('PUT', itemPath(`${P}PLAIN`), { email: 'x@example.com', taxId: CANARY }), 500, 'ErrEncryptionNotConfigured', 'PUT with taxId');
  problem(t, await bareReq('PATCH', itemPath(`${P}PLAIN`), { set: { taxId: CANARY, name: 'changed' } }), 500, 'ErrEncryptionNotConfigured', 'PATCH set taxId');
  problem(t, await bareReq('PATCH', itemPath(`${P}PLAIN`), { setIfNotExists: { medical: medical() } }), 500, 'ErrEncryptionNotConfigured', 'PATCH setIfNotExists medical');
  const still = await raw(`${P}PLAIN`);
  t.equal(still?.name?.S, 'plain', 'the plain item is unchanged');
  t.equal(still?.taxId, undefined);
  t.equal(still?.version?.N, '0');

  problem(
    t,
    await bareReq('POST', '/v1/models/User/batch-write', { puts: [user(`${P}BW1`, { name: 'first' }), user(`${P}BW2`, { taxId: CANARY })] }),
    500,
    'ErrEncryptionNotConfigured',
    'batch-write with one encrypted put',
  );
  t.equal(await raw(`${P}BW2`), undefined, 'batch: the encrypted put not written');
  t.equal(await raw(`${P}BW1`), undefined, 'batch: the plain put in the same request not written either');

  problem(
    t,
    await bareReq('POST', '/v1/transactions/write', {
      items: [
        { op: 'create', model: 'User', item: user(`${P}TX1`, { name: 'first' }) },
        { op: 'create', model: 'User', item: user(`${P}TX2`, { taxId: CANARY }) },
      ],
    }),
    500,
    'ErrEncryptionNotConfigured',
    'transaction with one encrypted create',
  );
  t.equal(await raw(`${P}TX1`), undefined, 'transaction: nothing written');
  t.equal(await raw(`${P}TX2`), undefined);
  problem(
    t,
    await bareReq('POST', '/v1/transactions/write', { items: [{ op: 'update', model: 'User', key: { PK: `${P}PLAIN`, SK: 'PROFILE' }, update: { set: { taxId: CANARY } } }] }),
    500,
    'ErrEncryptionNotConfigured',
    'transaction update setting taxId',
  );

  // Reading envelopes written by the keyed sidecar: cannot decrypt, and never hands out the envelope.
  const sealedPk = `${P}SEALED`;
  await createUser(t, sealedPk, { taxId: CANARY, name: 'sealed' });
  const read = await bareReq('GET', itemPath(sealedPk));
  problem(t, read, 500, 'ErrEncryptionNotConfigured', 'GET of an encrypted item');
  t.notOk(read.text.includes('edk') || read.text.includes('sealed'), 'no envelope, no partial item');
  problem(t, await bareReq('POST', '/v1/models/User/query', { partition: sealedPk }), 500, 'ErrEncryptionNotConfigured', 'query over an encrypted item');
  const plainRead = await bareReq('GET', itemPath(`${P}PLAIN`));
  t.equal(plainRead.status, 200, 'items without encrypted values still read');
  t.same(bare.sidecar.keyring.counters, counters, 'no provider calls');
});

t.test('the log never holds a canary', async (t) => {
  t.ok(errorBodies.length > 50, `${errorBodies.length} error bodies collected`);
  t.notOk(errorBodies.some((b) => b.includes(CANARY) || b.includes(MED_CANARY)), 'no error body in this file contains a canary');
  await new Promise((r) => setImmediate(r));
  t.match(logText, /"level":20|"level":30/, 'log captured');
  t.match(logText, /"msg":"request"/, 'request lines captured');
  t.match(logText, /ErrInvalidEncryptedEnvelope/, '500s were logged');
  t.notOk(logText.includes(CANARY), 'no taxId canary in the log');
  t.notOk(logText.includes(MED_CANARY), 'no medical canary in the log');
  t.notOk(logText.includes('penicillin'), 'no medical plaintext in the log');
});

t.test('persistence: with --data-dir the generated key is reused after a restart', async (t) => {
  const dir = tempDir(t);
  const pk = `${RUN}#PERSIST`;
  let first: TestSidecar | undefined = await startTestSidecar({ dataDir: dir });
  try {
    const res = await first.request('POST', '/v1/models/User/items', user(pk, { taxId: CANARY, medical: medical() }));
    t.equal(res.status, 201, 'created');
  } finally {
    await first.close();
    first = undefined;
  }
  const keyFile = join(dir, 'local-kek.key');
  const key = readFileSync(keyFile, 'utf8');
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'key file mode 0600');
  t.notOk(key.includes(CANARY), 'sanity');

  const second = await startTestSidecar({ dataDir: dir });
  try {
    const got = await second.request('GET', itemPath(pk));
    t.equal(got.status, 200, `read after restart (${got.text.slice(0, 200)})`);
    t.equal(got.json?.taxId, CANARY, 'taxId decrypts after restart');
    t.same(got.json?.medical, medical(), 'medical decrypts after restart');
    const raw2 = await second.sidecar.backend.client.send(new GetItemCommand({ TableName: 'users', Key: { PK: { S: pk }, SK: { S: 'PROFILE' } } }));
    isEnvelope(t, raw2.Item?.taxId, 'on disk');
  } finally {
    await second.close();
  }
  t.equal(readFileSync(keyFile, 'utf8'), key, 'the key file was reused, not rewritten');

  const viaFile = await startTestSidecar({ dataDir: dir, localKekFile: keyFile });
  try {
    t.equal((await viaFile.request('GET', itemPath(pk))).json?.taxId, CANARY, 'the same key through --local-kek-file');
  } finally {
    await viaFile.close();
  }

  // A cold cache after a restart: many concurrent reads of values under one data key cost one provider decrypt.
  const writer = await startTestSidecar({ dataDir: dir });
  try {
    for (let i = 0; i < 20; i++) {
      const res = await writer.request('POST', '/v1/models/User/items', user(`${pk}#${i}`, { taxId: `${CANARY}-${i}` }));
      t.equal(res.status, 201);
    }
  } finally {
    await writer.close();
  }
  const reader = await startTestSidecar({ dataDir: dir });
  try {
    const before = { ...reader.sidecar.keyring.counters };
    const reads = await Promise.all(Array.from({ length: 200 }, (_, i) => reader.request('GET', itemPath(`${pk}#${i % 20}`))));
    t.ok(reads.every((r, i) => r.status === 200 && r.json?.taxId === `${CANARY}-${i % 20}`), '200 concurrent cold reads decrypt');
    t.equal(reader.sidecar.keyring.counters.decrypt - before.decrypt, 1, 'one provider decrypt for 200 concurrent cold reads (single-flight)');
    const writes = await Promise.all(
      Array.from({ length: 200 }, (_, i) => reader.request('POST', '/v1/models/User/items', user(`${pk}#W${i}`, { taxId: CANARY }))),
    );
    t.ok(writes.every((w) => w.status === 201), '200 concurrent encrypted writes');
    t.equal(reader.sidecar.keyring.counters.generateDataKey - before.generateDataKey, 1, 'one GenerateDataKey for 200 concurrent writes (single-flight)');
  } finally {
    await reader.close();
  }

  const other = await startTestSidecar({ dataDir: dir, localKek: Buffer.alloc(32, 7).toString('base64') });
  try {
    const res = await other.request('GET', itemPath(pk));
    problem(t, res, 500, 'ErrInvalidEncryptedEnvelope', 'another key cannot read it');
    t.notOk(res.text.includes(CANARY), 'no canary');
  } finally {
    await other.close();
  }
});

t.test('data-key cache limits: loadConfig refuses what the cache cannot take', async (t) => {
  const refused = (argv: string[], what: string) => {
    try {
      loadConfig(argv, {});
      t.fail(`${what}: accepted`);
    } catch (err) {
      t.ok(err instanceof ConfigError, `${what}: ConfigError`);
    }
  };
  refused(['--data-key-max-uses', '0'], 'max uses 0');
  refused(['--data-key-max-uses', '10001'], 'max uses above 10,000');
  refused(['--data-key-max-age-ms', '300001'], 'max age above 5 minutes');
  // 0 passes loadConfig (min 0) — so the sidecar must then boot with it, or loadConfig must refuse it (exit 2).
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.AUTH_TOKEN;
  const child = spawn(process.execPath, ['dist/cli.js', '--data-key-max-age-ms', '0', '--port', '0'], {
    cwd: new URL('../', import.meta.url),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const outcome = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), 30_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('dynamorm sidecar ready')) {
        clearTimeout(timer);
        resolve('ready');
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(`exit ${code}`);
    });
  });
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  t.ok(outcome === 'ready' || outcome === 'exit 2', `--data-key-max-age-ms 0: boots, or is refused as a config error with exit 2 (got ${outcome}: ${err.split('\n')[0]})`);
  t.notMatch(err, /\n\s+at /, 'no stack trace for a configuration value');
});
