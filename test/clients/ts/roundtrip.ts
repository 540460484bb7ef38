// Round trip through a TypeScript client generated from the sidecar's served /openapi.json: types from
// openapi-typescript (`./schema.ts`, written next to a copy of this file by test/generated-clients.test.ts, never
// committed), requests through openapi-fetch. Usage: node roundtrip.js <baseUrl> <run-id>
// Prints one JSON summary on stdout; the test asserts it (the Python driver prints the same shape).
import createClient from 'openapi-fetch';
import type { components, paths } from './schema.js';

type User = components['schemas']['User'];
type Problem = components['schemas']['Problem'];
type Condition = components['schemas']['UserCondition'];

const [baseUrl, run] = process.argv.slice(2);
if (!baseUrl || !run) throw new Error('usage: roundtrip <baseUrl> <run-id>');

const client = createClient<paths>({ baseUrl });
const PK = `USER#ts-${run}`;
const ITEM = '/v1/models/User/items/{pk}/{sk}' as const;

function expectData<T>(what: string, res: { data?: T; error?: Problem; response: Response }): T {
  if (res.data === undefined) throw new Error(`${what}: HTTP ${res.response.status} ${JSON.stringify(res.error)}`);
  return res.data;
}

/** `version` is typed integer | decimal string (| null); the summary carries a number. */
function versionOf(user: User): number | null {
  return user.version === undefined || user.version === null ? null : Number(user.version);
}

function problemOf(what: string, res: { error?: Problem; response: Response }): { status: number; code: string; contentType: string | null } {
  if (res.error === undefined) throw new Error(`${what}: expected a problem, got HTTP ${res.response.status}`);
  return { status: res.response.status, code: res.error.code, contentType: res.response.headers.get('content-type') };
}

// create → 201 + ETag "0" (taxId is an encrypted attribute: the sidecar runs with a local KEK)
const createdRes = await client.POST('/v1/models/User/items', {
  body: { PK, SK: 'PROFILE', email: `${run}@example.com`, name: 'Ann', status: 'active', tags: ['a', 'b'], taxId: 'TAX-0001' },
});
const created = expectData('create', createdRes);
const siblings: number[] = [];
for (const SK of ['ORDER#1', 'ORDER#2']) {
  const res = await client.POST('/v1/models/User/items', { body: { PK, SK, email: `${run}@example.com` } });
  expectData(`create ${SK}`, res);
  siblings.push(res.response.status);
}
const duplicate = problemOf(
  'duplicate create',
  await client.POST('/v1/models/User/items', { body: { PK, SK: 'PROFILE', email: `${run}@example.com` } }),
);

// get
const gotRes = await client.GET(ITEM, { params: { path: { pk: PK, sk: 'PROFILE' } } });
const got = expectData('get', gotRes);

// patch with If-Match "0" → version 1; the same If-Match again → 412
const patchedRes = await client.PATCH(ITEM, {
  params: { path: { pk: PK, sk: 'PROFILE' }, header: { 'if-match': '"0"' } },
  body: { set: { name: 'Annie' }, add: { tags: ['c'] } },
});
const patched = expectData('patch', patchedRes);
const stalePatch = problemOf(
  'stale patch',
  await client.PATCH(ITEM, { params: { path: { pk: PK, sk: 'PROFILE' }, header: { 'if-match': '"0"' } }, body: { set: { name: 'Stale' } } }),
);

// query the partition one item per request, following the cursor to the end
const sks: string[] = [];
const pageSizes: number[] = [];
let cursor: string | undefined;
do {
  const page = expectData(
    'query',
    await client.POST('/v1/models/User/query', { body: cursor === undefined ? { partition: PK, limit: 1 } : { partition: PK, limit: 1, cursor } }),
  );
  pageSizes.push(page.items.length);
  for (const item of page.items) sks.push(item.SK);
  cursor = page.cursor;
} while (cursor !== undefined && pageSizes.length < 20);

// transaction: an update guarded by the expected version, and a check on a sibling
const exists: Condition = { attr: 'email', op: 'exists' };
const txRes = await client.POST('/v1/transactions/write', {
  body: {
    items: [
      { op: 'update', model: 'User', key: { PK, SK: 'PROFILE' }, update: { set: { status: 'vip' } }, version: 1 },
      { op: 'check', model: 'User', key: { PK, SK: 'ORDER#1' }, condition: exists },
    ],
  },
});
const tx = expectData('transaction', txRes);
const afterTx = expectData('get after transaction', await client.GET(ITEM, { params: { path: { pk: PK, sk: 'PROFILE' } } }));
const canceledRes = await client.POST('/v1/transactions/write', {
  body: {
    items: [
      { op: 'update', model: 'User', key: { PK, SK: 'PROFILE' }, update: { set: { status: 'never' } } },
      { op: 'check', model: 'User', key: { PK, SK: 'ORDER#1' }, condition: { not: exists } },
    ],
  },
});
const canceled = problemOf('canceled transaction', canceledRes);
const reasons = canceledRes.error?.['reasons'];

// delete (PROFILE with its version), then the missing item is a 404 problem
const deleted: number[] = [];
const del = await client.DELETE(ITEM, { params: { path: { pk: PK, sk: 'PROFILE' }, header: { 'if-match': '"2"' } } });
if (del.error !== undefined) throw new Error(`delete: HTTP ${del.response.status} ${JSON.stringify(del.error)}`);
deleted.push(del.response.status);
for (const sk of ['ORDER#1', 'ORDER#2']) {
  const res = await client.DELETE(ITEM, { params: { path: { pk: PK, sk } } });
  deleted.push(res.response.status);
}
const missing = problemOf('missing', await client.GET(ITEM, { params: { path: { pk: PK, sk: 'PROFILE' } } }));

const summary = {
  client: 'typescript',
  pk: PK,
  create: { status: createdRes.response.status, etag: createdRes.response.headers.get('etag'), version: versionOf(created), createdAt: created.createdAt ?? null },
  siblings,
  duplicate,
  get: { status: gotRes.response.status, name: got.name ?? null, status_: got.status ?? null, tags: got.tags ?? null, taxId: got.taxId ?? null, version: versionOf(got) },
  patch: { status: patchedRes.response.status, etag: patchedRes.response.headers.get('etag'), version: versionOf(patched), name: patched.name ?? null, tags: patched.tags ?? null },
  stalePatch,
  query: { pageSizes, sks },
  transaction: { status: txRes.response.status, committed: tx.committed, after: { status: afterTx.status ?? null, version: versionOf(afterTx) } },
  canceled: { ...canceled, reasons: Array.isArray(reasons) ? reasons.map((r: { code?: unknown }) => r.code) : null },
  deleted,
  missing,
};
process.stdout.write(JSON.stringify(summary) + '\n');
