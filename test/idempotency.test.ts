// Durable idempotency of POST /v1/transactions/write: a keyed transaction also puts an idempotency record (key,
// fingerprint of the request, outcome, expiry) in the sidecar's own table, so a retry under the same key returns the
// first outcome wherever and whenever it arrives — after a restart of the embedded store, or at another instance on
// the same DynamoDB-compatible endpoint — and a different request under the key gets 409. Also: 99 items with a key,
// the table created with --create-tables (TTL on; in every partner account too) or named when missing, keys scoped
// per partner (two partners in one account each apply once), expired records swept at an embedded boot.
// Prints retries and duplicates.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-dynamodb';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import t, { type Test } from 'tap';
import { MissingTablesError } from '../src/store/tables.js';
import { startSidecar } from '../src/server.js';
import { problem, ok, type Json } from './helpers/assert.js';
import { startMoto } from './helpers/moto.js';
import { tools, withTool } from './helpers/tools.js';
import { baseConfig, startTestSidecar, type TestSidecar } from './helpers/sidecar.js';

// moto keeps tables per region: this file's own.
const REGION = 'mx-central-1';
const TABLE = 'custom_idempotency';
const DEFAULT_TABLE = 'dynamorm_sidecar_idempotency';
const RUN = randomUUID().slice(0, 8);

const ukey = (pk: string) => ({ PK: pk, SK: 'PROFILE' });
const tx = (s: TestSidecar, body: Json) => s.request('POST', '/v1/transactions/write', body);
async function age(s: TestSidecar, pk: string): Promise<number | undefined> {
  const res = await s.request('GET', `/v1/models/User/items/${encodeURIComponent(pk)}/PROFILE?consistent=true`);
  return res.status === 200 ? res.json.age : undefined;
}

/**
 * The first try goes to `first`, the retries to `second` (another instance, or the same data after a restart):
 * the retry returns the first outcome and is not applied again; another request under the key is refused.
 */
async function retriedElsewhere(t: Test, first: TestSidecar, second: () => Promise<TestSidecar>, tag: string): Promise<TestSidecar> {
  const pk = `${RUN}#${tag}`;
  const newPk = `${RUN}#${tag}#NEW`;
  t.equal((await first.request('POST', '/v1/models/User/items', { ...ukey(pk), email: 'i@example.com', age: 0 })).status, 201);
  const body = {
    idempotencyKey: `${RUN}-${tag}`,
    items: [
      { op: 'update', model: 'User', key: ukey(pk), update: { add: { age: 1 } } },
      { op: 'create', model: 'User', item: { ...ukey(newPk), email: 'n@example.com', age: 10 } },
    ],
  };
  t.same(ok(t, await tx(first, body), 'first try'), { committed: 2 });
  const s = await second();
  let retries = 0;
  let duplicates = 0;
  for (let i = 0; i < 3; i++) {
    const res = await tx(s, body);
    retries++;
    t.same(ok(t, res, `retry ${i + 1} elsewhere`), { committed: 2 }, 'the retry gets the first outcome');
  }
  const now = await age(s, pk);
  if (now !== 1) duplicates = (now ?? 0) - 1;
  t.equal(now, 1, 'applied once');
  t.equal(await age(s, newPk), 10, 'the created item is there (its create was not re-run against it)');

  const other = { ...body, items: [{ op: 'update', model: 'User', key: ukey(pk), update: { add: { age: 5 } } }] };
  problem(t, await tx(s, other), 409, 'ErrIdempotentParameterMismatch', 'a different request under the key');
  t.equal(await age(s, pk), 1, 'nothing applied by the refused request');
  t.same(ok(t, await tx(s, { ...other, idempotencyKey: `${RUN}-${tag}-2` }), 'another key'), { committed: 1 });
  t.equal(await age(s, pk), 6, 'another key applies');
  t.comment(`${tag}: retries ${retries}, duplicates ${duplicates}`);
  return s;
}

t.test('embedded store with --data-dir: a retry after a restart returns the first outcome', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dynamorm-idem-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const first = await startTestSidecar({ dataDir });
  let second: TestSidecar | undefined;
  t.teardown(async () => {
    await second?.close();
  });
  second = await retriedElsewhere(t, first, async () => {
    await first.close();
    second = await startTestSidecar({ dataDir });
    return second;
  }, 'embedded');

  // The record is the 100th action: a keyed transaction takes 99 items, an unkeyed one 100.
  const items = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ op: 'create', model: 'User', item: { ...ukey(`${RUN}#LIM#${n}#${i}`), email: 'l@example.com' } }));
  const refused = await tx(second, { idempotencyKey: `${RUN}-lim`, items: items(100) });
  problem(t, refused, 400, 'ErrInvalidRequest', '100 items with a key');
  t.match(refused.json?.detail, /at most 99 items/, 'the error names the limit');
  t.equal(await age(second, `${RUN}#LIM#100#0`), undefined, 'nothing written');
  t.same(ok(t, await tx(second, { idempotencyKey: `${RUN}-lim`, items: items(99) }), '99 items with a key'), { committed: 99 });
  t.same(ok(t, await tx(second, { items: items(100) }), '100 items without a key'), { committed: 100 });

  // dynalite has no TTL: expired records are deleted at boot, live ones kept.
  const record = (pk: string, expiresAt: number) => ({ pk: { S: pk }, fingerprint: { S: 'x' }, committed: { N: '1' }, expiresAt: { N: String(expiresAt) } });
  const now = Math.floor(Date.now() / 1000);
  const store = second.sidecar.backend.client;
  await store.send(new PutItemCommand({ TableName: DEFAULT_TABLE, Item: record(`own/${RUN}-expired`, now - 10) }));
  await store.send(new PutItemCommand({ TableName: DEFAULT_TABLE, Item: record(`own/${RUN}-live`, now + 3600) }));
  await second.close();
  second = await startTestSidecar({ dataDir });
  const left = async (pk: string) => (await second!.sidecar.backend.client.send(new GetItemCommand({ TableName: DEFAULT_TABLE, Key: { pk: { S: pk } } }))).Item;
  t.equal(await left(`own/${RUN}-expired`), undefined, 'expired record deleted at boot');
  t.ok(await left(`own/${RUN}-live`), 'live record kept');
  t.ok(await left(`own/${RUN}-embedded`), 'the transaction\'s own record kept');
});

withTool(t, tools.moto(), 'two instances on one endpoint: the retry sent to the other instance returns the first outcome', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  const external = { dynamodbEndpoint: moto.endpoint, region: REGION, idempotencyTable: TABLE };
  const client = new DynamoDBClient({ endpoint: moto.endpoint, region: REGION });
  t.teardown(() => client.destroy());
  await client.send(new DeleteTableCommand({ TableName: TABLE })).catch((err: Error) => {
    if (!(err instanceof ResourceNotFoundException) && err.name !== 'ResourceNotFoundException') throw err;
  });

  const a = await startTestSidecar({ ...external, createTables: true });
  t.teardown(() => a.close());
  const ttl = await client.send(new DescribeTimeToLiveCommand({ TableName: TABLE }));
  t.equal(ttl.TimeToLiveDescription?.AttributeName, 'expiresAt', '--create-tables made the idempotency table, TTL on expiresAt');
  const b = await startTestSidecar({ ...external, createTables: false });
  t.teardown(() => b.close());
  await retriedElsewhere(t, a, async () => b, 'moto');

  // Without --create-tables, a missing idempotency table stops the boot, named.
  await client.send(new DeleteTableCommand({ TableName: TABLE }));
  const err = await startSidecar({ ...baseConfig, ...external, backend: 'aws', createTables: false }).then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  t.type(err, MissingTablesError, 'boot refused');
  t.same((err as MissingTablesError).tables, [TABLE], 'names the idempotency table');

  await t.test('partners: the table in every partner account; keys scoped per partner', (t) => partners(t, moto.endpoint));
});

/** p1 and p3 share account 444444444444 (and so its table), p2 has 555555555555. */
async function partners(t: Test, endpoint: string): Promise<void> {
  const accounts = { p1: '444444444444', p2: '555555555555', p3: '444444444444' } as const;
  const roleArn = (p: keyof typeof accounts) => `arn:aws:iam::${accounts[p]}:role/idem-${p}`;
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-idem-partners-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const partnersFile = join(dir, 'partners.yml');
  writeFileSync(
    partnersFile,
    ['partners:', ...(['p1', 'p2', 'p3'] as const).flatMap((p) => [`  ${p}:`, `    roleArn: ${roleArn(p)}`, `    region: ${REGION}`]), ''].join('\n'),
  );
  const s = await startTestSidecar({
    dynamodbEndpoint: endpoint,
    backend: 'aws',
    region: REGION,
    stsEndpoint: endpoint,
    partnersFile,
    requirePartner: true,
    createTables: true,
    idempotencyTable: TABLE,
  });
  t.teardown(() => s.close());
  for (const p of ['p1', 'p2'] as const) {
    const sts = new STSClient({ region: REGION, endpoint });
    const { Credentials: c } = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn(p), RoleSessionName: `idem-${p}` }));
    sts.destroy();
    const ddb = new DynamoDBClient({
      region: REGION,
      endpoint,
      credentials: { accessKeyId: c!.AccessKeyId!, secretAccessKey: c!.SecretAccessKey!, sessionToken: c!.SessionToken! },
    });
    const ttl = await ddb.send(new DescribeTimeToLiveCommand({ TableName: TABLE })).finally(() => ddb.destroy());
    t.equal(ttl.TimeToLiveDescription?.AttributeName, 'expiresAt', `${p}: idempotency table in account ${accounts[p]}, TTL on`);
  }

  const pk = `${RUN}#PARTNERS`;
  const as = (p: string) => ({ 'x-partner-id': p });
  const created = await s.request('POST', '/v1/models/User/items', { ...ukey(pk), email: 'p@example.com', age: 0 }, as('p1'));
  t.equal(created.status, 201, 'item created in account 444444444444');
  const body = { idempotencyKey: `${RUN}-shared`, items: [{ op: 'update', model: 'User', key: ukey(pk), update: { add: { age: 1 } } }] };
  for (const p of ['p1', 'p3', 'p1', 'p3']) {
    t.same(ok(t, await s.request('POST', '/v1/transactions/write', body, as(p)), `${p} under the shared key`), { committed: 1 });
  }
  const read = await s.request('GET', `/v1/models/User/items/${encodeURIComponent(pk)}/PROFILE?consistent=true`, undefined, as('p3'));
  t.equal(read.json?.age, 2, 'two partners in one account: each applied once under the same key, retries not again');
}
