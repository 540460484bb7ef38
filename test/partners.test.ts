// Partners (tenants) on moto: each partner's requests run under AssumeRole credentials of its own account, so two
// partners with roles in accounts 111111111111 and 222222222222 use the same table names without ever seeing each
// other's items; encrypted attributes are sealed under the partner's own KMS key (the envelope's edk is a KMS
// CiphertextBlob that only that account can decrypt); AssumeRole is called once per partner however many requests
// come (a counting proxy sits in front of moto for STS); GenerateDataKey is called once per many encryptions.
import { createDecipheriv, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, GetItemCommand, ListTablesCommand, PutItemCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { CreateKeyCommand, DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity } from '@aws-sdk/types';
import t, { type Test } from 'tap';
import { startMoto } from './helpers/moto.js';
import { tools, withTool } from './helpers/tools.js';
import { startTestSidecar, type TestResponse, type TestSidecar } from './helpers/sidecar.js';
import { problem, type Json } from './helpers/assert.js';

// moto is shared by every test file in CI: this file keeps to its own region (and its own accounts).
const REGION = 'ca-west-1';
const RUN = randomUUID().slice(0, 8);
const ACCOUNTS = { alpha: '111111111111', beta: '222222222222', gamma: '333333333333' } as const;
type PartnerId = keyof typeof ACCOUNTS;
const roleArn = (p: PartnerId) => `arn:aws:iam::${ACCOUNTS[p]}:role/dynamorm-${p}`;
const TABLES = ['blobs', 'orders', 'sessions', 'users'];


await withTool(t, tools.moto(), 'partners on moto', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  await suite(t, moto.endpoint);
});

// ---------------------------------------------------------------------------------------------------------------

/** Forwards everything to moto; counts AssumeRole calls per role account and keeps their parameters. */
interface StsProxy {
  readonly url: string;
  readonly assumeRoles: URLSearchParams[];
  count(partner?: PartnerId): number;
  close(): Promise<void>;
}

async function startStsProxy(target: string): Promise<StsProxy> {
  const upstream = new URL(target);
  const assumeRoles: URLSearchParams[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const text = body.toString('utf8');
      if (text.includes('Action=AssumeRole')) assumeRoles.push(new URLSearchParams(text));
      const fwd = httpRequest(
        { hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      fwd.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      fwd.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    assumeRoles,
    count: (partner) => assumeRoles.filter((p) => partner === undefined || p.get('RoleArn') === roleArn(partner)).length,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function assume(endpoint: string, partner: PartnerId): Promise<AwsCredentialIdentity> {
  const sts = new STSClient({ region: REGION, endpoint });
  try {
    const out = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn(partner), RoleSessionName: `test-${partner}` }));
    const c = out.Credentials!;
    return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken };
  } finally {
    sts.destroy();
  }
}


function envelopeOf(t: Test, av: AttributeValue | undefined, what: string): { edk: Uint8Array; nonce: Uint8Array; ct: Uint8Array } | undefined {
  const m = (av as { M?: Record<string, AttributeValue> } | undefined)?.M;
  if (!t.ok(m, `${what}: stored as a map (M)`)) return undefined;
  t.same(Object.keys(m!).sort(), ['ct', 'edk', 'nonce', 'v'], `${what}: v, edk, nonce, ct`);
  t.equal(m!.v?.N, '1', `${what}: v = 1`);
  t.equal(m!.nonce?.B?.byteLength, 12, `${what}: 12-byte nonce`);
  t.ok((m!.edk?.B?.byteLength ?? 0) > 0 && (m!.ct?.B?.byteLength ?? 0) >= 16, `${what}: edk and ct present`);
  return { edk: m!.edk.B!, nonce: m!.nonce.B!, ct: m!.ct.B! };
}

function rawText(item: unknown): string {
  return JSON.stringify(item, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v));
}

function openEnvelope(attr: string, key: Uint8Array, env: { nonce: Uint8Array; ct: Uint8Array }): string {
  const ct = Buffer.from(env.ct);
  const d = createDecipheriv('aes-256-gcm', key, env.nonce, { authTagLength: 16 });
  d.setAAD(Buffer.from(`dynamorm:encrypted:v1|attr=${attr}`, 'utf8'));
  d.setAuthTag(ct.subarray(ct.length - 16));
  return Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]).toString('utf8');
}

async function suite(t: Test, endpoint: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-partners-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  // The test's own view of each partner account: assumed credentials, DynamoDB and KMS clients.
  const creds = {
    alpha: await assume(endpoint, 'alpha'),
    beta: await assume(endpoint, 'beta'),
    gamma: await assume(endpoint, 'gamma'),
  };
  const ddb = (p: PartnerId) => new DynamoDBClient({ region: REGION, endpoint, credentials: creds[p] });
  const kms = (p: PartnerId) => new KMSClient({ region: REGION, endpoint, credentials: creds[p] });
  const rawDdb = { alpha: ddb('alpha'), beta: ddb('beta'), gamma: ddb('gamma') };
  const rawKms = { alpha: kms('alpha'), beta: kms('beta') };
  t.teardown(() => [...Object.values(rawDdb), ...Object.values(rawKms)].forEach((c) => c.destroy()));

  const keyArn = {
    alpha: (await rawKms.alpha.send(new CreateKeyCommand({ Description: `dynamorm partners test ${RUN} alpha` }))).KeyMetadata!.Arn!,
    beta: (await rawKms.beta.send(new CreateKeyCommand({ Description: `dynamorm partners test ${RUN} beta` }))).KeyMetadata!.Arn!,
  };
  t.match(keyArn.alpha, new RegExp(`^arn:aws:kms:${REGION}:111111111111:key/`), 'alpha key lives in account 111111111111');
  t.match(keyArn.beta, new RegExp(`^arn:aws:kms:${REGION}:222222222222:key/`), 'beta key lives in account 222222222222');

  const partnersFile = join(dir, 'partners.yml');
  writeFileSync(
    partnersFile,
    [
      'partners:',
      '  alpha:',
      `    roleArn: ${roleArn('alpha')}`,
      '    externalId: ext-alpha-1',
      `    region: ${REGION}`,
      `    kmsKeyArn: ${keyArn.alpha}`,
      '  beta:',
      `    roleArn: ${roleArn('beta')}`,
      `    region: ${REGION}`,
      '    durationSeconds: 900',
      `    kmsKeyArn: ${keyArn.beta}`,
      '  gamma:',
      `    roleArn: ${roleArn('gamma')}`,
      `    region: ${REGION}`,
      '',
    ].join('\n'),
  );

  const config = {
    dynamodbEndpoint: endpoint,
    backend: 'aws' as const,
    region: REGION,
    partnersFile,
    requirePartner: true,
    kmsEndpoint: endpoint,
  };

  const proxy = await startStsProxy(endpoint);
  t.teardown(() => proxy.close());
  const s = await startTestSidecar({ ...config, createTables: true, stsEndpoint: proxy.url });
  t.teardown(() => s.close());
  const as = (p: string) => ({ 'x-partner-id': p });
  const call = (p: PartnerId, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    s.request(method, path, body, { ...as(p), ...headers });
  const P = `${RUN}#`;
  const item = (pk: string, extra: Json = {}) => ({ PK: pk, SK: 'PROFILE', email: `${pk.toLowerCase().replace(/[^a-z0-9]/g, '-')}@example.com`, ...extra });
  const itemPath = (pk: string) => `/v1/models/User/items/${encodeURIComponent(pk)}/PROFILE`;
  const key = (pk: string) => ({ PK: pk, SK: 'PROFILE' });

  await t.test('boot: tables created in every partner account; one AssumeRole each', async (t) => {
    for (const p of ['alpha', 'beta', 'gamma'] as const) {
      const tables = (await rawDdb[p].send(new ListTablesCommand({}))).TableNames ?? [];
      t.ok(TABLES.every((name) => tables.includes(name)), `${p}: ${TABLES.join(', ')} exist in account ${ACCOUNTS[p]} (has ${tables.join(', ')})`);
      t.equal(proxy.count(p), 1, `${p}: one AssumeRole at boot`);
    }
    const alphaCall = proxy.assumeRoles.find((q) => q.get('RoleArn') === roleArn('alpha'));
    t.equal(alphaCall?.get('RoleSessionName'), 'dynamorm-alpha', 'session name dynamorm-<partner>');
    t.equal(alphaCall?.get('ExternalId'), 'ext-alpha-1', 'ExternalId sent');
    t.equal(alphaCall?.get('DurationSeconds'), '3600', 'default duration');
    const betaCall = proxy.assumeRoles.find((q) => q.get('RoleArn') === roleArn('beta'));
    t.equal(betaCall?.get('RoleSessionName'), 'dynamorm-beta');
    t.equal(betaCall?.get('ExternalId'), null, 'no ExternalId when none configured');
    t.equal(betaCall?.get('DurationSeconds'), '900');
  });

  await t.test('same table name, separate accounts: no cross-partner reads', async (t) => {
    const shared = `${P}SHARED`;
    const a = await call('alpha', 'POST', '/v1/models/User/items', item(shared, { name: 'alpha', taxId: 'ALPHA-TAX-1', medical: { owner: 'alpha', n: 1 } }));
    t.equal(a.status, 201, `alpha create (${a.text.slice(0, 200)})`);
    const b = await call('beta', 'POST', '/v1/models/User/items', item(shared, { name: 'beta', taxId: 'BETA-TAX-1', medical: { owner: 'beta', n: 2 } }));
    t.equal(b.status, 201, 'beta creates the same key: no 409, it is another table');
    for (let i = 0; i < 5; i++) {
      t.equal((await call('alpha', 'POST', '/v1/models/User/items', item(`${P}A#${i}`, { name: 'alpha', taxId: `ALPHA-TAX-${i}` }))).status, 201);
      t.equal((await call('beta', 'POST', '/v1/models/User/items', item(`${P}B#${i}`, { name: 'beta', taxId: `BETA-TAX-${i}` }))).status, 201);
    }

    const ga = await call('alpha', 'GET', itemPath(shared));
    const gb = await call('beta', 'GET', itemPath(shared));
    t.equal(ga.json?.name, 'alpha', 'alpha reads its own');
    t.equal(ga.json?.taxId, 'ALPHA-TAX-1');
    t.same(ga.json?.medical, { owner: 'alpha', n: 1 });
    t.equal(gb.json?.name, 'beta', 'beta reads its own');
    t.equal(gb.json?.taxId, 'BETA-TAX-1');

    problem(t, await call('beta', 'GET', itemPath(`${P}A#0`)), 404, 'ErrItemNotFound', "beta GET of alpha's key");
    problem(t, await call('alpha', 'GET', itemPath(`${P}B#0`)), 404, 'ErrItemNotFound', "alpha GET of beta's key");
    problem(t, await call('gamma', 'GET', itemPath(shared)), 404, 'ErrItemNotFound', 'gamma GET of the shared key');

    const qa = await call('beta', 'POST', '/v1/models/User/query', { partition: `${P}A#1` });
    t.equal(qa.status, 200);
    t.equal(qa.json?.items?.length, 0, "beta query of alpha's partition: 0 items");
    const qshared = await call('beta', 'POST', '/v1/models/User/query', { partition: shared });
    t.same(qshared.json?.items?.map((i: Json) => i.name), ['beta'], 'query of the shared key: own item only');
    const gsi = await call('alpha', 'POST', '/v1/models/User/query', { index: 'gsi-email', partition: item(`${P}B#2`).email });
    t.equal(gsi.json?.items?.length, 0, "alpha GSI query of beta's email: 0 items");

    for (const p of ['alpha', 'beta'] as const) {
      const scan = await call(p, 'POST', '/v1/models/User/scan', { filter: { attr: 'PK', op: 'begins_with', value: P }, pages: 'all', limit: 1000 });
      t.equal(scan.status, 200, `${p} scan`);
      const names = new Set((scan.json?.items ?? []).map((i: Json) => i.name));
      t.same([...names], [p], `${p} scan: only ${p}'s items`);
      t.equal(scan.json?.items?.length, 6, `${p} scan: its 6 items`);
      t.ok(scan.json?.items?.every((i: Json) => i.taxId?.startsWith(p.toUpperCase())), `${p} scan: decrypted with its own key`);
    }

    const bg = await call('beta', 'POST', '/v1/models/User/batch-get', { keys: [key(`${P}A#0`), key(`${P}A#1`), key(shared), key(`${P}B#0`)] });
    t.equal(bg.status, 200);
    t.same(bg.json?.items?.map((i: Json) => `${i.PK}:${i.name}`), [`${shared}:beta`, `${P}B#0:beta`], 'beta batch-get: 0 alpha items');

    const tg = await call('alpha', 'POST', '/v1/transactions/get', { items: [{ model: 'User', key: key(`${P}B#3`) }, { model: 'User', key: key(shared) }] });
    t.equal(tg.status, 200);
    t.equal(tg.json?.items?.[0], null, "alpha transactions/get of beta's key: null");
    t.equal(tg.json?.items?.[1]?.name, 'alpha');

    const tw = await call('alpha', 'POST', '/v1/transactions/write', {
      items: [
        { op: 'create', model: 'User', item: item(`${P}TX`, { name: 'alpha', taxId: 'ALPHA-TX' }) },
        { op: 'update', model: 'User', key: key(shared), update: { set: { taxId: 'ALPHA-TAX-UPDATED' } } },
      ],
    });
    t.equal(tw.status, 200, `alpha transaction (${tw.text.slice(0, 200)})`);
    problem(t, await call('beta', 'GET', itemPath(`${P}TX`)), 404, 'ErrItemNotFound', "alpha's transaction is invisible to beta");
    t.equal((await call('beta', 'GET', itemPath(shared))).json?.taxId, 'BETA-TAX-1', "beta's shared item untouched by alpha's update");
    t.equal((await call('alpha', 'GET', itemPath(shared))).json?.taxId, 'ALPHA-TAX-UPDATED');

    // Beta deleting the shared key leaves alpha's item alone.
    t.equal((await call('beta', 'DELETE', itemPath(`${P}B#4`))).status, 204);
    t.equal((await call('beta', 'DELETE', `${itemPath(`${P}A#4`)}?ifExists=true`)).status, 404, "beta cannot delete alpha's item (absent in its table)");
    t.equal((await call('alpha', 'GET', itemPath(`${P}A#4`))).status, 200, "alpha's item still there");

    // The same, as raw DynamoDB reads with each partner's own credentials.
    const rawA = await rawDdb.alpha.send(new GetItemCommand({ TableName: 'users', Key: { PK: { S: `${P}A#0` }, SK: { S: 'PROFILE' } } }));
    const rawB = await rawDdb.beta.send(new GetItemCommand({ TableName: 'users', Key: { PK: { S: `${P}A#0` }, SK: { S: 'PROFILE' } } }));
    t.ok(rawA.Item, 'raw: the alpha item is in account 111111111111');
    t.notOk(rawB.Item, 'raw: and not in account 222222222222');
  });

  await t.test('raw reads show envelopes whose edk is a KMS ciphertext of the partner key', async (t) => {
    const pk = `${P}RAW`;
    const medical = { diagnosis: 'MED-CANARY-alpha', visits: [{ at: '2024-01-01', codes: ['X1'] }] };
    t.equal((await call('alpha', 'POST', '/v1/models/User/items', item(pk, { taxId: 'TAX-CANARY-alpha', medical }))).status, 201);
    t.equal((await call('beta', 'POST', '/v1/models/User/items', item(pk, { taxId: 'TAX-CANARY-beta', medical: { diagnosis: 'MED-CANARY-beta' } }))).status, 201);
    for (const p of ['alpha', 'beta'] as const) {
      const out = await rawDdb[p].send(new GetItemCommand({ TableName: 'users', Key: { PK: { S: pk }, SK: { S: 'PROFILE' } }, ConsistentRead: true }));
      const text = rawText(out.Item);
      t.notOk(/TAX-CANARY|MED-CANARY|diagnosis|visits/.test(text), `${p}: no plaintext (values or keys) in the stored item`);
      const tax = envelopeOf(t, out.Item?.taxId, `${p} taxId`);
      const med = envelopeOf(t, out.Item?.medical, `${p} medical`);
      if (!tax || !med) continue;
      const dec = await rawKms[p].send(new DecryptCommand({ CiphertextBlob: tax.edk }));
      t.equal(dec.KeyId, keyArn[p], `${p}: KMS Decrypt accepts the edk and names the partner key`);
      t.equal(dec.Plaintext?.byteLength, 32, `${p}: a 256-bit data key`);
      t.equal(openEnvelope('taxId', dec.Plaintext!, tax), `{"t":"S","s":"TAX-CANARY-${p}"}`, `${p}: taxId opens with AES-256-GCM and the v1 AAD`);
      const medKey = await rawKms[p].send(new DecryptCommand({ CiphertextBlob: med.edk }));
      t.match(openEnvelope('medical', medKey.Plaintext!, med), `"MED-CANARY-${p}"`, `${p}: medical opens too`);
      let wrongAad = false;
      try {
        openEnvelope('medical', dec.Plaintext!, tax);
      } catch {
        wrongAad = true;
      }
      t.ok(wrongAad, `${p}: the AAD binds the attribute name`);
      const other = p === 'alpha' ? 'beta' : 'alpha';
      const cross = await rawKms[other].send(new DecryptCommand({ CiphertextBlob: tax.edk })).then(
        () => 'decrypted',
        (err: Error) => err.name,
      );
      t.not(cross, 'decrypted', `${other}'s credentials cannot decrypt ${p}'s edk (${cross})`);
    }
  });

  await t.test('KMS envelopes: a tampered edk or another account\'s envelope fails the read', async (t) => {
    const pk = `${P}KTAMPER`;
    t.equal((await call('alpha', 'POST', '/v1/models/User/items', item(pk, { name: 'alpha-secret-name', taxId: 'TAX-A' }))).status, 201);
    t.equal((await call('beta', 'POST', '/v1/models/User/items', item(pk, { name: 'beta-secret-name', taxId: 'TAX-B' }))).status, 201);
    const k = { PK: { S: pk }, SK: { S: 'PROFILE' } };
    const alphaItem = (await rawDdb.alpha.send(new GetItemCommand({ TableName: 'users', Key: k, ConsistentRead: true }))).Item!;
    const betaItem = (await rawDdb.beta.send(new GetItemCommand({ TableName: 'users', Key: k, ConsistentRead: true }))).Item!;

    const env = alphaItem.taxId.M!;
    const edk = Buffer.from(env.edk.B!);
    edk[edk.length - 1] ^= 0x01;
    await rawDdb.alpha.send(new PutItemCommand({ TableName: 'users', Item: { ...alphaItem, taxId: { M: { ...env, edk: { B: edk } } } } }));
    const flipped = await call('alpha', 'GET', itemPath(pk));
    problem(t, flipped, 500, 'ErrInvalidEncryptedEnvelope', 'alpha: edk with a flipped bit');
    t.notMatch(flipped.text, /alpha-secret-name|TAX-A|arn:aws/, 'no partial item, no key ARN');

    // Beta's item carrying alpha's (valid) envelope: beta's KMS key cannot open it.
    await rawDdb.beta.send(new PutItemCommand({ TableName: 'users', Item: { ...betaItem, taxId: alphaItem.taxId } }));
    const foreign = await call('beta', 'GET', itemPath(pk));
    t.equal(foreign.status, 500, `beta: alpha's envelope → 500 (got ${foreign.status})`);
    // moto answers AccessDeniedException here (real KMS may say IncorrectKeyException); both mean "not yours to open".
    t.equal(foreign.json?.code, 'ErrInvalidEncryptedEnvelope', `beta: alpha's envelope → ErrInvalidEncryptedEnvelope (got ${foreign.json?.code}: ${foreign.json?.detail})`);
    t.notMatch(foreign.text, /beta-secret-name|TAX-A|arn:aws/, 'no partial item, no key ARN');

    await rawDdb.alpha.send(new PutItemCommand({ TableName: 'users', Item: alphaItem }));
    await rawDdb.beta.send(new PutItemCommand({ TableName: 'users', Item: betaItem }));
    t.equal((await call('alpha', 'GET', itemPath(pk))).json?.taxId, 'TAX-A', 'alpha restored: reads again (KMS failures are not cached)');
    t.equal((await call('beta', 'GET', itemPath(pk))).json?.taxId, 'TAX-B', 'beta restored: reads again');
  });

  await t.test('AssumeRole stays at one per partner across 200 sequential requests', async (t) => {
    const before = { alpha: proxy.count('alpha'), beta: proxy.count('beta') };
    t.equal(before.alpha, 1);
    t.equal(before.beta, 1);
    for (let i = 0; i < 200; i++) {
      const p = i % 2 === 0 ? 'alpha' : 'beta';
      const res = await call(p, 'GET', itemPath(`${P}SHARED`));
      if (res.status !== 200) {
        t.fail(`request ${i} (${p}): ${res.status} ${res.text.slice(0, 200)}`);
        break;
      }
    }
    t.equal(proxy.count('alpha'), 1, 'alpha: still one AssumeRole');
    t.equal(proxy.count('beta'), 1, 'beta: still one AssumeRole');
    t.equal(proxy.count('gamma'), 1, 'gamma: still one AssumeRole');
  });

  await t.test('100 concurrent first requests per partner cost one AssumeRole each', async (t) => {
    const proxy2 = await startStsProxy(endpoint);
    const s2 = await startTestSidecar({ ...config, stsEndpoint: proxy2.url });
    try {
      t.equal(proxy2.count(), 0, 'no AssumeRole at boot without createTables');
      const all = await Promise.all(
        Array.from({ length: 200 }, (_, i) => s2.request('GET', itemPath(`${P}SHARED`), undefined, as(i % 2 === 0 ? 'alpha' : 'beta'))),
      );
      t.ok(all.every((r) => r.status === 200), `all 200 answered 200 (${[...new Set(all.map((r) => r.status))].join(',')})`);
      t.ok(all.every((r, i) => r.json?.name === (i % 2 === 0 ? 'alpha' : 'beta')), 'each got its own partner\'s item');
      t.equal(proxy2.count('alpha'), 1, 'alpha: one AssumeRole for 100 concurrent first requests');
      t.equal(proxy2.count('beta'), 1, 'beta: one AssumeRole for 100 concurrent first requests');
      t.equal(proxy2.count('gamma'), 0, 'gamma: never asked');
    } finally {
      await s2.close();
      await proxy2.close();
    }
  });

  await t.test('maxPartners 1: clients are evicted, credentials are not', async (t) => {
    const proxy3 = await startStsProxy(endpoint);
    const s6 = await startTestSidecar({ ...config, stsEndpoint: proxy3.url, maxPartners: 1 });
    try {
      for (let i = 0; i < 40; i++) {
        const p = i % 2 === 0 ? 'alpha' : 'beta';
        const res = await s6.request('GET', itemPath(`${P}SHARED`), undefined, as(p));
        if (res.status !== 200 || res.json?.name !== p) {
          t.fail(`request ${i} as ${p}: ${res.status} ${res.json?.name ?? res.text.slice(0, 200)}`);
          break;
        }
      }
      const w = await s6.request('POST', '/v1/models/User/items', item(`${P}EVICT`, { taxId: 'EVICT-TAX' }), as('alpha'));
      t.equal(w.status, 201, 'encrypted write after evictions');
      t.equal((await s6.request('GET', itemPath(`${P}EVICT`), undefined, as('beta'))).status, 404, 'still isolated');
      t.equal((await s6.request('GET', itemPath(`${P}EVICT`), undefined, as('alpha'))).json?.taxId, 'EVICT-TAX');
      t.equal(proxy3.count('alpha'), 1, 'alpha: one AssumeRole despite 20 evictions');
      t.equal(proxy3.count('beta'), 1, 'beta: one AssumeRole despite 20 evictions');
    } finally {
      await s6.close();
      await proxy3.close();
    }
  });

  await t.test('partner header: unknown 403, missing 400, data routes only', async (t) => {
    problem(t, await s.request('GET', itemPath(`${P}SHARED`), undefined, as('delta')), 403, 'ErrUnknownPartner', 'unknown partner');
    problem(t, await s.request('GET', itemPath(`${P}SHARED`), undefined, as('alpha!')), 403, 'ErrUnknownPartner', 'malformed partner id');
    problem(t, await s.request('GET', itemPath(`${P}SHARED`), undefined, as('a'.repeat(65))), 403, 'ErrUnknownPartner', 'over-long partner id');
    problem(t, await s.request('GET', itemPath(`${P}SHARED`), undefined, as('ALPHA')), 403, 'ErrUnknownPartner', 'partner ids are case-sensitive');
    problem(t, await s.request('GET', itemPath(`${P}SHARED`)), 400, 'ErrMissingPartner', 'missing header');
    problem(t, await s.request('GET', itemPath(`${P}SHARED`), undefined, as('')), 400, 'ErrMissingPartner', 'empty header');
    problem(t, await s.request('POST', '/v1/models/User/items', item(`${P}NOHDR`)), 400, 'ErrMissingPartner', 'create without header');
    problem(t, await s.request('POST', '/v1/transactions/get', { items: [{ model: 'User', key: key(`${P}SHARED`) }] }), 400, 'ErrMissingPartner', 'transactions without header');
    problem(t, await s.request('POST', '/v1/models/User/items', item(`${P}UNK`), as('delta')), 403, 'ErrUnknownPartner', 'create as unknown partner');
    t.equal((await s.request('GET', '/v1/models')).status, 200, 'model listing needs no partner');
    t.equal((await s.request('GET', '/healthz')).status, 200, 'health needs no partner');
    t.equal(proxy.count('alpha') + proxy.count('beta') + proxy.count('gamma'), proxy.count(), 'no AssumeRole for unknown partners');
    t.equal(proxy.count(), 3, 'still three AssumeRole calls in all');
  });

  await t.test('a partner without a KMS key: encrypted writes fail closed, plain ones work', async (t) => {
    const pk = `${P}GAMMA`;
    problem(t, await call('gamma', 'POST', '/v1/models/User/items', item(pk, { taxId: 'GAMMA-TAX' })), 500, 'ErrEncryptionNotConfigured', 'gamma encrypted create');
    problem(t, await call('gamma', 'GET', itemPath(pk)), 404, 'ErrItemNotFound', 'nothing written');
    const plain = await call('gamma', 'POST', '/v1/models/User/items', item(pk, { name: 'gamma' }));
    t.equal(plain.status, 201, 'gamma plain create');
    const rawG = await rawDdb.gamma.send(new GetItemCommand({ TableName: 'users', Key: { PK: { S: pk }, SK: { S: 'PROFILE' } } }));
    t.equal(rawG.Item?.name?.S, 'gamma', 'written in account 333333333333');
    problem(t, await call('gamma', 'PATCH', itemPath(pk), { set: { medical: { x: 1 } } }), 500, 'ErrEncryptionNotConfigured', 'gamma PATCH medical');
    problem(t, await call('alpha', 'GET', itemPath(pk)), 404, 'ErrItemNotFound', 'invisible to alpha');
  });

  await t.test('KMS calls: the data-key cache makes 1,000 encrypted writes cost at most one GenerateDataKey', async (t) => {
    const pk = `${P}KMS`;
    const before = { ...s.sidecar.keyring.counters };
    const puts = Array.from({ length: 500 }, (_, i) => item(`${pk}#${String(i).padStart(4, '0')}`, { taxId: `K-${i}`, medical: { i } }));
    const w = await call('alpha', 'POST', '/v1/models/User/batch-write', { puts });
    t.equal(w.status, 200, `batch-write of 500 (${w.text.slice(0, 200)})`);
    t.equal(w.json?.complete, true);
    for (let i = 500; i < 1000; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, (_, j) => call('alpha', 'POST', '/v1/models/User/items', item(`${pk}#${String(i + j).padStart(4, '0')}`, { taxId: `K-${i + j}` }))),
      );
      if (!batch.every((r) => r.status === 201)) {
        t.fail(`concurrent creates ${i}..${i + 49}: ${[...new Set(batch.map((r) => r.status))].join(',')}`);
        break;
      }
    }
    const mid = { ...s.sidecar.keyring.counters };
    t.ok(mid.generateDataKey - before.generateDataKey <= 1, `1,000 encrypted writes: GenerateDataKey +${mid.generateDataKey - before.generateDataKey} (≤ 1)`);

    const scan = await call('alpha', 'POST', '/v1/models/User/scan', { filter: { attr: 'PK', op: 'begins_with', value: `${pk}#` }, pages: 'all', limit: 2000 });
    t.equal(scan.status, 200);
    t.equal(scan.json?.items?.length, 1000, 'all 1,000 read back');
    t.ok(scan.json?.items?.every((i: Json) => i.taxId === `K-${Number(i.PK.split('#').pop())}`), 'every value decrypts to its own plaintext');
    const after = s.sidecar.keyring.counters;
    t.ok(after.decrypt - mid.decrypt <= 1, `reading 1,000 items: KMS Decrypt +${after.decrypt - mid.decrypt} (≤ 1)`);
    t.equal(after.generateDataKey, mid.generateDataKey, 'reads generate nothing');
  });

  await t.test('with dataKeyMaxUses 100, 1,000 writes take at least 10 GenerateDataKey calls', async (t) => {
    const s3 = await startTestSidecar({ ...config, stsEndpoint: proxy.url, dataKeyMaxUses: 100 });
    try {
      const pk = `${P}KMS100`;
      const before = { ...s3.sidecar.keyring.counters };
      const puts = Array.from({ length: 1000 }, (_, i) => item(`${pk}#${String(i).padStart(4, '0')}`, { taxId: `L-${i}` }));
      const w = await s3.request('POST', '/v1/models/User/batch-write', { puts }, as('beta'));
      t.equal(w.status, 200, `batch-write of 1,000 (${w.text.slice(0, 200)})`);
      const generated = s3.sidecar.keyring.counters.generateDataKey - before.generateDataKey;
      t.ok(generated >= 10, `GenerateDataKey +${generated} (≥ 10)`);
      t.ok(generated <= 12, `and not per value (+${generated})`);

      const rawScan = await rawDdb.beta.send(
        new ScanCommand({ TableName: 'users', FilterExpression: 'begins_with(PK, :p)', ExpressionAttributeValues: { ':p': { S: `${pk}#` } } }),
      );
      let items = rawScan.Items ?? [];
      let last = rawScan.LastEvaluatedKey;
      while (last) {
        const more = await rawDdb.beta.send(
          new ScanCommand({ TableName: 'users', ExclusiveStartKey: last, FilterExpression: 'begins_with(PK, :p)', ExpressionAttributeValues: { ':p': { S: `${pk}#` } } }),
        );
        items = items.concat(more.Items ?? []);
        last = more.LastEvaluatedKey;
      }
      const edks = new Set(items.map((i) => Buffer.from(i.taxId?.M?.edk?.B ?? []).toString('base64')));
      t.equal(items.length, 1000, 'raw: 1,000 items in account 222222222222');
      t.ok(edks.size >= 10, `raw: ${edks.size} distinct data keys`);

      const back = await s3.request('POST', '/v1/models/User/scan', { filter: { attr: 'PK', op: 'begins_with', value: `${pk}#` }, pages: 'all', limit: 2000 }, as('beta'));
      t.equal(back.json?.items?.length, 1000);
      t.ok(back.json?.items?.every((i: Json) => i.taxId === `L-${Number(i.PK.split('#').pop())}`), 'all decrypt');
    } finally {
      await s3.close();
    }
  });

  await t.test('without requirePartner: no header uses the sidecar\'s own account and its KMS key', async (t) => {
    const ownKms = new KMSClient({ region: REGION, endpoint });
    const ownKey = (await ownKms.send(new CreateKeyCommand({ Description: `dynamorm partners test ${RUN} own` }))).KeyMetadata!.Arn!;
    const s4 = await startTestSidecar({ ...config, stsEndpoint: proxy.url, requirePartner: false, kmsKeyArn: ownKey });
    try {
      const pk = `${P}OWN`;
      const created = await s4.request('POST', '/v1/models/User/items', item(pk, { name: 'own', taxId: 'OWN-TAX' }));
      t.equal(created.status, 201, `own-account create (${created.text.slice(0, 200)})`);
      t.equal((await s4.request('GET', itemPath(pk))).json?.taxId, 'OWN-TAX', 'own-account read decrypts');
      problem(t, await s4.request('GET', itemPath(pk), undefined, as('alpha')), 404, 'ErrItemNotFound', 'alpha does not see the own-account item');
      problem(t, await s4.request('GET', itemPath(pk), undefined, as('delta')), 403, 'ErrUnknownPartner', 'unknown partner still 403');
      t.equal((await s4.request('GET', itemPath(`${P}A#0`), undefined, as('alpha'))).status, 200, 'alpha works on the same sidecar');
      const own = new DynamoDBClient({ region: REGION, endpoint });
      try {
        const rawOwn = await own.send(new GetItemCommand({ TableName: 'users', Key: { PK: { S: pk }, SK: { S: 'PROFILE' } } }));
        const env = envelopeOf(t, rawOwn.Item?.taxId, 'own taxId');
        if (env) {
          const dec = await ownKms.send(new DecryptCommand({ CiphertextBlob: env.edk }));
          t.equal(dec.KeyId, ownKey, 'own-account edk is under the configured kmsKeyArn');
        }
      } finally {
        own.destroy();
      }
    } finally {
      await s4.close();
      ownKms.destroy();
    }
  });

  await t.test('STS unreachable and no credentials yet: 503 ErrPartnerCredentials', async (t) => {
    const dead = await startStsProxy('http://127.0.0.1:1');
    const s5 = await startTestSidecar({ ...config, stsEndpoint: dead.url });
    try {
      const res = await s5.request('GET', itemPath(`${P}SHARED`), undefined, as('alpha'));
      problem(t, res, 503, 'ErrPartnerCredentials', 'first request while STS is down');
      t.ok(res.headers.get('retry-after'), 'Retry-After');
      t.notMatch(res.text, /arn:aws|AccessKey|secret/i, 'no role ARN or credential material in the body');
      const calls = dead.count('alpha');
      const again = await Promise.all(Array.from({ length: 20 }, () => s5.request('GET', itemPath(`${P}SHARED`), undefined, as('alpha'))));
      t.ok(again.every((r) => r.status === 503 && r.json?.code === 'ErrPartnerCredentials'), '20 more: all 503');
      t.equal(dead.count('alpha'), calls, 'no further AssumeRole attempts within the backoff');
      t.equal((await s5.request('GET', '/healthz')).status, 200, 'the sidecar itself stays up');
    } finally {
      await s5.close();
      await dead.close();
    }
  });
}
