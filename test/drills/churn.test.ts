// Drill: partner churn. Two partners, each with its own role and KMS key (STS and KMS: moto), and --max-partners 1:
// every caller alternates the partner on each request, so nearly every request evicts the other's clients.
// DRILL_CHURN_REQUESTS requests (default 10,000; half encrypted upserts, half reads of them) from 8 concurrent
// callers. The tables are an embedded store's, reached over its loopback port (moto's DynamoDB would make the drill
// take minutes). Measured on the sidecar in this process, after a warm-up and a full GC at both ends:
//   - live heap flat within 10 MB, descriptors flat within 32 (evicted clients hold keep-alive sockets);
//   - KMS GenerateDataKey / Decrypt calls ≤ 2 per partner (data-key caches outlive client eviction);
//   - client sets built ≤ 2 per partner, data-key caches = 2 (nothing grows with the number of evictions).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { kmsKeyInAccountOf } from '../helpers/kms.js';
import { startMoto } from '../helpers/moto.js';
import { tools, withTool } from '../helpers/tools.js';
import { startTestSidecar, type TestSidecar } from '../helpers/sidecar.js';

const REGION = 'eu-south-2';
const RUN = randomUUID().slice(0, 8);
const REQUESTS = Number(process.env.DRILL_CHURN_REQUESTS ?? 10_000);
const WARM_UP = 500;
const CALLERS = 8;
const PARTNERS = { c555: '555555555555', c666: '666666666666' } as const;
type PartnerId = keyof typeof PARTNERS;
const IDS = Object.keys(PARTNERS) as PartnerId[];
const roleArn = (p: PartnerId) => `arn:aws:iam::${PARTNERS[p]}:role/dynamorm-churn-${p}`;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MB = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
const descriptors = () => readdirSync('/proc/self/fd').length;
function settledHeap(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

await withTool(t, tools.moto(), 'partner churn on moto (STS, KMS)', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-churn-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines = ['partners:'];
  for (const p of IDS) {
    const key = await kmsKeyInAccountOf(moto.endpoint, REGION, roleArn(p), `dynamorm churn drill ${RUN} ${p}`);
    lines.push(`  ${p}:`, `    roleArn: ${roleArn(p)}`, `    region: ${REGION}`, `    kmsKeyArn: ${key}`);
  }
  const partnersFile = join(dir, 'partners.yml');
  writeFileSync(partnersFile, `${lines.join('\n')}\n`);
  const tables = await startTestSidecar();
  t.teardown(() => tables.close());
  const s = await startTestSidecar({
    backend: 'aws',
    dynamodbEndpoint: tables.sidecar.backend.endpoint,
    stsEndpoint: moto.endpoint,
    kmsEndpoint: moto.endpoint,
    region: REGION,
    partnersFile,
    requirePartner: true,
    createTables: true,
    maxPartners: 1,
  });
  t.teardown(() => s.close());

  t.test(`${REQUESTS} requests alternating two partners with --max-partners 1`, async (t) => {
    const failures: string[] = [];
    await run(s, 0, WARM_UP, failures);
    const before = { heap: settledHeap(), fds: descriptors() };
    const started = Date.now();
    await run(s, WARM_UP, REQUESTS, failures);
    const seconds = (Date.now() - started) / 1000;
    const after = { heap: settledHeap(), fds: descriptors() };
    const keyring = s.sidecar.keyring;
    const pool = s.sidecar.pool;
    const kms = { ...keyring.counters };
    t.comment(
      `churn: ${REQUESTS} requests (${Math.round((REQUESTS - WARM_UP) / seconds)}/s after warm-up), ` +
        `heap ${MB(before.heap)} → ${MB(after.heap)} MB, descriptors ${before.fds} → ${after.fds}, ` +
        `KMS GenerateDataKey ${kms.generateDataKey} Decrypt ${kms.decrypt}, client sets built ${pool?.built}, ` +
        `data-key caches ${keyring.cacheCount}, failures ${failures.length}`,
    );
    t.same(failures.slice(0, 5), [], `every request answered as expected (${failures.length} failures)`);
    t.ok(after.heap - before.heap < 10 * 1024 * 1024, `live heap flat within 10 MB (${MB(before.heap)} → ${MB(after.heap)} MB)`);
    t.ok(after.fds - before.fds <= 32, `descriptors flat (${before.fds} → ${after.fds})`);
    t.ok(kms.generateDataKey >= 1 && kms.generateDataKey <= 2 * IDS.length, `GenerateDataKey ≤ 2 per partner (${kms.generateDataKey})`);
    t.ok(kms.decrypt <= 2 * IDS.length, `Decrypt ≤ 2 per partner (${kms.decrypt})`);
    t.ok(pool !== undefined && pool.built <= 2 * IDS.length, `client sets built ≤ 2 per partner (${pool?.built})`);
    t.equal(keyring.cacheCount, IDS.length, 'one data-key cache per partner and key');
    const metrics = (await s.request('GET', '/metrics')).text;
    const metric = (line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1]);
    t.equal(metric('dynamorm_partner_clients{state="live"}'), 1, '/metrics: one partner live');
    t.ok(metric('dynamorm_partner_clients{state="retiring"}') <= 1, '/metrics: at most the other one retiring');
    t.equal(metric('dynamorm_partner_client_builds_total'), pool?.built, '/metrics: client builds');
    t.equal(metric('dynamorm_data_key_caches'), IDS.length, '/metrics: data-key caches');
  });
});

/**
 * Requests [from, to), spread over the callers. Each caller alternates the partner on every request and works on
 * one key per partner of its own: two upserts of an item with an encrypted attribute, then two reads of them.
 */
async function run(s: TestSidecar, from: number, to: number, failures: string[]): Promise<void> {
  const caller = async (c: number) => {
    for (let j = 0, i = from + c; i < to; j++, i += CALLERS) {
      const partner = IDS[(c + j) % IDS.length];
      const pk = `${RUN}#${partner}#${c}`;
      const path = `/v1/models/User/items/${encodeURIComponent(pk)}/P`;
      const headers = { 'x-partner-id': partner };
      if (Math.floor(j / 2) % 2 === 0 || i < CALLERS * 2) {
        const res = await s.request('PUT', path, { email: `${partner}@example.com`, taxId: `${partner}-tax-${i}` }, headers);
        if (res.status !== 200 && res.status !== 201) failures.push(`PUT ${pk}: ${res.status} ${res.text.slice(0, 200)}`);
      } else {
        const res = await s.request('GET', path, undefined, headers);
        if (res.status !== 200 || !String(res.json?.taxId).startsWith(`${partner}-tax-`)) failures.push(`GET ${pk}: ${res.status} ${res.text.slice(0, 200)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CALLERS }, (_, c) => caller(c)));
}
