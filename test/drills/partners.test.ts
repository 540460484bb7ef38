// Reliability drill: partner isolation under a fuzzed workload (moto). Two partners — roles in accounts 333333333333
// and 444444444444, each with its own KMS key — share one sidecar (requirePartner) and a pool of overlapping keys.
// Two concurrent streams (one per partner, seeded PRNG, ~400 requests in all) mix create, get, patch, query (table and
// GSI), scan, batch-get, batch-write, transactions/write and transactions/get on the same keys. Every string a partner
// writes carries its marker, so:
//   - no response to partner A ever contains partner B's marker (a deep check of every body);
//   - every status matches a model of A's own data alone (e.g. A's create of a key only B has is 201, not 409);
//   - at the end each partner's scan holds exactly the keys it wrote, every attribute (encrypted taxId included)
//     carrying its own marker.
// DRILL_PARTNERS_SEED picks the seed (default 4242); DRILL_PARTNERS_OPS the requests per partner (default 200).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import t, { type Test } from 'tap';
import { startMoto } from '../helpers/moto.js';
import { tools, withTool } from '../helpers/tools.js';
import { startTestSidecar, type TestResponse, type TestSidecar } from '../helpers/sidecar.js';
import { prng } from '../helpers/prng.js';

const REGION = 'ap-northeast-3';
const RUN = randomUUID().slice(0, 8);
const SEED = Number(process.env.DRILL_PARTNERS_SEED ?? 4242);
const OPS_PER_PARTNER = Number(process.env.DRILL_PARTNERS_OPS ?? 200);
const KEYS = 40;
const PARTNERS = { p333: '333333333333', p444: '444444444444' } as const;
type PartnerId = keyof typeof PARTNERS;
const roleArn = (p: PartnerId) => `arn:aws:iam::${PARTNERS[p]}:role/dynamorm-drill-${p}`;

type Json = Record<string, any>;


async function kmsKeyFor(endpoint: string, p: PartnerId): Promise<string> {
  const sts = new STSClient({ region: REGION, endpoint });
  try {
    const out = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn(p), RoleSessionName: `drill-${p}` }));
    const c = out.Credentials!;
    const kms = new KMSClient({ region: REGION, endpoint, credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken } });
    try {
      return (await kms.send(new CreateKeyCommand({ Description: `dynamorm partners drill ${RUN} ${p}` }))).KeyMetadata!.Arn!;
    } finally {
      kms.destroy();
    }
  } finally {
    sts.destroy();
  }
}

const key = (i: number) => `${RUN}#K${String(i).padStart(2, '0')}`;
const email = (pk: string) => `${pk.replace(/[^a-z0-9]/gi, '').toLowerCase()}@example.com`;
const itemPath = (pk: string) => `/v1/models/User/items/${encodeURIComponent(pk)}/P`;
const marker = (p: PartnerId) => `writer-${p}`;

async function drill(t: Test, endpoint: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-partners-drill-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keyArn = { p333: await kmsKeyFor(endpoint, 'p333'), p444: await kmsKeyFor(endpoint, 'p444') };
  const partnersFile = join(dir, 'partners.yml');
  writeFileSync(
    partnersFile,
    ['partners:', ...(['p333', 'p444'] as const).flatMap((p) => [`  ${p}:`, `    roleArn: ${roleArn(p)}`, `    region: ${REGION}`, `    kmsKeyArn: ${keyArn[p]}`]), ''].join('\n'),
  );
  const s = await startTestSidecar({
    backend: 'aws',
    dynamodbEndpoint: endpoint,
    stsEndpoint: endpoint,
    kmsEndpoint: endpoint,
    region: REGION,
    partnersFile,
    requirePartner: true,
    createTables: true,
  });
  t.teardown(() => s.close());

  // Requests without a partner, or naming an unknown one, never reach anyone's data.
  const none = await s.request('POST', '/v1/models/User/scan', { limit: 5 });
  t.equal(none.status, 400, 'no partner header: 400');
  t.equal(none.json?.code, 'ErrMissingPartner');
  const stranger = await s.request('GET', itemPath(key(0)), undefined, { 'x-partner-id': 'p555' });
  t.equal(stranger.status, 403, 'unknown partner: 403');
  t.equal(stranger.json?.code, 'ErrUnknownPartner');

  const results = await Promise.all((['p333', 'p444'] as const).map((p, i) => stream(s, p, (['p333', 'p444'] as const)[1 - i], SEED + i)));
  for (const r of results) {
    t.test(`partner ${r.partner}: ${r.requests} requests`, async (t) => {
      t.comment(`${r.partner}: ${[...r.ops].map(([op, n]) => `${op}×${n}`).join(' ')}`);
      t.same(r.leaks.slice(0, 10), [], `no response to ${r.partner} contains the other partner's data (${r.leaks.length} leaks)`);
      t.same(r.mismatches.slice(0, 10), [], `every status matches ${r.partner}'s own data alone (${r.mismatches.length} mismatches)`);
      t.ok(r.own.size > 0 && r.own.size <= KEYS, `${r.partner} wrote ${r.own.size} of the ${KEYS} shared keys`);

      const scan = await s.request('POST', '/v1/models/User/scan', { filter: { attr: 'PK', op: 'begins_with', value: `${RUN}#` }, pages: 'all', limit: 1000, consistent: true }, { 'x-partner-id': r.partner });
      t.equal(scan.status, 200, 'final scan');
      const items: Json[] = scan.json?.items ?? [];
      t.same(items.map((i) => i.PK).sort(), [...r.own].sort(), `final scan holds exactly ${r.partner}'s ${r.own.size} keys`);
      const foreign = items.filter((i) => i.name !== marker(r.partner) || !String(i.taxId).startsWith(marker(r.partner)) || i.profile?.owner !== marker(r.partner));
      t.same(foreign.map((i) => i.PK), [], 'every item, its encrypted taxId included, is the partner\'s own');
      t.notOk(scan.text.includes(marker(r.other)), 'the final scan never mentions the other partner');
    });
  }
  t.test('the partners did share keys', async (t) => {
    const [a, b] = results;
    const both = [...a.own].filter((k) => b.own.has(k));
    t.ok(both.length > 0, `${both.length} keys exist for both partners`);
  });
}

interface StreamResult {
  partner: PartnerId;
  other: PartnerId;
  requests: number;
  own: Set<string>;
  ops: Map<string, number>;
  leaks: string[];
  mismatches: string[];
}

async function stream(s: TestSidecar, partner: PartnerId, other: PartnerId, seed: number): Promise<StreamResult> {
  const random = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const sample = (n: number) => [...new Set(Array.from({ length: n }, () => key(Math.floor(random() * KEYS))))];
  const own = new Set<string>();
  const result: StreamResult = { partner, other, requests: 0, own, ops: new Map(), leaks: [], mismatches: [] };
  const mine = marker(partner);
  const item = (pk: string, i: number) => ({ PK: pk, SK: 'P', email: email(pk), name: mine, taxId: `${mine}-tax-${i}`, profile: { owner: mine, step: i } });

  const call = async (op: string, method: string, path: string, body?: unknown): Promise<TestResponse> => {
    result.requests += 1;
    result.ops.set(op, (result.ops.get(op) ?? 0) + 1);
    const res = await s.request(method, path, body, { 'x-partner-id': partner });
    if (res.text.includes(marker(other))) result.leaks.push(`${op} ${path}: ${res.text.slice(0, 200)}`);
    if (res.status >= 500) result.mismatches.push(`${op} ${path}: ${res.status} ${res.text.slice(0, 200)}`);
    return res;
  };
  const expect = (what: string, res: TestResponse, status: number, extra = true) => {
    if (res.status !== status || !extra) result.mismatches.push(`${what}: expected ${status}, got ${res.status} ${res.text.slice(0, 200)}`);
  };
  const ownItem = (i: Json | null | undefined) => i != null && i.name === mine && String(i.taxId).startsWith(mine) && i.profile?.owner === mine;

  const ops = ['create', 'create', 'get', 'patch', 'query', 'gsi', 'scan', 'batch-get', 'batch-write', 'tx-write', 'tx-get'] as const;
  for (let i = 0; i < OPS_PER_PARTNER; i++) {
    const op = pick(ops);
    const pk = key(Math.floor(random() * KEYS));
    switch (op) {
      case 'create': {
        const res = await call(op, 'POST', '/v1/models/User/items', item(pk, i));
        expect(`create ${pk}`, res, own.has(pk) ? 409 : 201, res.status !== 201 || ownItem(res.json));
        if (res.status === 201) own.add(pk);
        break;
      }
      case 'get': {
        const res = await call(op, 'GET', `${itemPath(pk)}?consistent=true`);
        expect(`get ${pk}`, res, own.has(pk) ? 200 : 404, res.status !== 200 || ownItem(res.json));
        break;
      }
      case 'patch': {
        const res = await call(op, 'PATCH', itemPath(pk), { set: { status: `${mine}-status-${i}` } });
        expect(`patch ${pk}`, res, own.has(pk) ? 200 : 404, res.status !== 200 || (ownItem(res.json) && res.json.status === `${mine}-status-${i}`));
        break;
      }
      case 'query': {
        const res = await call(op, 'POST', '/v1/models/User/query', { partition: pk, consistent: true });
        const items: Json[] = res.json?.items ?? [];
        expect(`query ${pk}`, res, 200, items.length === (own.has(pk) ? 1 : 0) && items.every(ownItem));
        break;
      }
      case 'gsi': {
        // Both partners' items for a key share the email: the GSI must still only show the caller's.
        const res = await call(op, 'POST', '/v1/models/User/query', { index: 'gsi-email', partition: email(pk) });
        const items: Json[] = res.json?.items ?? [];
        expect(`gsi query ${pk}`, res, 200, items.length <= (own.has(pk) ? 1 : 0) && items.every(ownItem));
        break;
      }
      case 'scan': {
        const res = await call(op, 'POST', '/v1/models/User/scan', { filter: { attr: 'PK', op: 'begins_with', value: `${RUN}#` }, pages: 'all', limit: 1000, consistent: true });
        const items: Json[] = res.json?.items ?? [];
        const keys = items.map((x) => x.PK).sort();
        expect(`scan`, res, 200, JSON.stringify(keys) === JSON.stringify([...own].sort()) && items.every(ownItem));
        break;
      }
      case 'batch-get': {
        const keys = sample(5);
        const res = await call(op, 'POST', '/v1/models/User/batch-get', { keys: keys.map((PK) => ({ PK, SK: 'P' })), consistent: true });
        const items: Json[] = res.json?.items ?? [];
        const want = keys.filter((k) => own.has(k)).sort();
        expect(`batch-get ${keys.join(',')}`, res, 200, res.json?.complete === true && JSON.stringify(items.map((x) => x.PK).sort()) === JSON.stringify(want) && items.every(ownItem));
        break;
      }
      case 'batch-write': {
        const keys = sample(3);
        const res = await call(op, 'POST', '/v1/models/User/batch-write', { puts: keys.map((k) => item(k, i)) });
        expect(`batch-write ${keys.join(',')}`, res, 200, res.json?.complete === true);
        if (res.status === 200 && res.json?.complete === true) keys.forEach((k) => own.add(k));
        break;
      }
      case 'tx-write': {
        // A create (fails when the caller already has the key) and a put of another key, all or nothing.
        const first = Math.floor(random() * KEYS);
        const a = key(first);
        const b = key((first + 1 + Math.floor(random() * (KEYS - 1))) % KEYS);
        const res = await call(op, 'POST', '/v1/transactions/write', {
          items: [
            { op: 'create', model: 'User', item: item(a, i) },
            { op: 'put', model: 'User', item: item(b, i) },
          ],
        });
        expect(`tx-write create ${a} put ${b}`, res, own.has(a) ? 409 : 200);
        if (res.status === 200) {
          own.add(a);
          own.add(b);
        }
        break;
      }
      case 'tx-get': {
        const keys = sample(3);
        const res = await call(op, 'POST', '/v1/transactions/get', { items: keys.map((PK) => ({ model: 'User', key: { PK, SK: 'P' } })) });
        const items: (Json | null)[] = res.json?.items ?? [];
        expect(`tx-get ${keys.join(',')}`, res, 200, items.length === keys.length && keys.every((k, j) => (own.has(k) ? ownItem(items[j]) : items[j] === null)));
        break;
      }
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------

await withTool(t, tools.moto(), 'partner isolation under a fuzzed mix (moto)', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  await drill(t, moto.endpoint);
});
