// Reliability drill: no lost updates under optimistic locking. 32 concurrent clients increment one counter with
// read → PATCH If-Match: "<version>" and retry on 412 for a fixed time; the final value must equal the number of
// increments the sidecar acknowledged (and the version must have moved exactly once per acknowledged increment).
// Run on the embedded store (dynalite) and on moto. Then the same through transactions on the embedded store: each
// transaction moves two counters (expected versions on both) and retries on 409; both end at the acknowledged count.
//
// DRILL_LOST_UPDATES_MS sets how long each phase runs (default 10 000 ms); DRILL_LOST_UPDATES_CLIENTS the number of
// concurrent clients (default 32).
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { forEachBackend } from '../helpers/backends.js';
import { startTestSidecar, type TestSidecar } from '../helpers/sidecar.js';

const REGION = 'af-south-1';
const RUN = randomUUID().slice(0, 8);
const DURATION_MS = Number(process.env.DRILL_LOST_UPDATES_MS ?? 10_000);
const CLIENTS = Number(process.env.DRILL_LOST_UPDATES_CLIENTS ?? 32);

type Json = Record<string, any>;

interface Tally {
  acked: number;
  conflicts: number;
  /** Anything but 200 / 412 (or 409 for transactions): must stay empty. */
  unexpected: string[];
  /** Acknowledged results that were not exactly "the value I read + 1" at "the version I read + 1". */
  wrongAcks: string[];
}

const orderPath = (customer: string, no: number) => `/v1/models/Order/items/${encodeURIComponent(customer)}/${no}`;

async function createCounter(t: Test, s: TestSidecar, customer: string, no: number): Promise<void> {
  const res = await s.request('POST', '/v1/models/Order/items', { customer_id: customer, order_no: no, total: 0, currency: 'EUR' });
  t.equal(res.status, 201, `counter ${customer}/${no} created (${res.status} ${res.status === 201 ? '' : res.text.slice(0, 200)})`);
}

async function runFor(ms: number, clients: number, work: (client: number) => Promise<void>): Promise<void> {
  const deadline = Date.now() + ms;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      while (Date.now() < deadline) await work(client);
    }),
  );
}

/**
 * moto applies conditional writes without a lock (its server is threaded), so two UpdateItems with the same expected
 * version can both pass: verified without the sidecar by 32 raw SDK clients doing the same read → conditional
 * UpdateItem loop against moto_server (acknowledged 73, final 72, version 73). The signature is visible in the
 * answers: an acknowledged write whose new version is not the version it was conditioned on + 1. On moto, counts that
 * are off only by such writes are reported as a todo (a moto limitation); anything else fails. The embedded store is
 * checked strictly.
 */
async function patchDrill(t: Test, s: TestSidecar, label: 'dynalite' | 'moto'): Promise<void> {
  const customer = `${RUN}#${label}#PATCH`;
  await createCounter(t, s, customer, 1);
  const path = orderPath(customer, 1);
  const tally: Tally = { acked: 0, conflicts: 0, unexpected: [], wrongAcks: [] };
  const acks: { readTotal: number; readVersion: number; total: number; version: number }[] = [];
  const started = Date.now();
  await runFor(DURATION_MS, CLIENTS, async () => {
    const read = await s.request('GET', `${path}?consistent=true`);
    if (read.status !== 200) {
      tally.unexpected.push(`GET ${read.status} ${read.text.slice(0, 200)}`);
      return;
    }
    const total = Number(read.json.total);
    const version = Number(read.json.version);
    if (read.headers.get('etag') !== `"${version}"`) tally.unexpected.push(`GET etag ${read.headers.get('etag')} for version ${version}`);
    const res = await s.request('PATCH', path, { set: { total: total + 1 } }, { 'if-match': `"${version}"` });
    if (res.status === 200) {
      tally.acked += 1;
      acks.push({ readTotal: total, readVersion: version, total: Number(res.json?.total), version: Number(res.json?.version) });
      if (res.headers.get('etag') !== `"${res.json?.version}"`) tally.unexpected.push(`PATCH etag ${res.headers.get('etag')} for version ${res.json?.version}`);
    } else if (res.status === 412 && res.json?.code === 'ErrConditionFailed') {
      tally.conflicts += 1;
    } else {
      tally.unexpected.push(`PATCH ${res.status} ${res.text.slice(0, 200)}`);
    }
  });
  const final = await s.request('GET', `${path}?consistent=true`);
  t.equal(final.status, 200, 'final read');
  const finalTotal = Number(final.json?.total);
  const finalVersion = Number(final.json?.version);
  t.comment(`${label}: ${tally.acked} acknowledged increments, ${tally.conflicts} conflicts (412) in ${Date.now() - started} ms with ${CLIENTS} clients; final total ${finalTotal}, version ${finalVersion}`);
  t.ok(tally.acked > 0, 'some increments were acknowledged');
  t.ok(tally.conflicts > 0, 'clients did collide (the drill exercised the lock)');
  t.same(tally.unexpected.slice(0, 5), [], `only 200 and 412 answers, ETags matching versions (${tally.unexpected.length} others)`);
  t.ok(acks.every((a) => a.total === a.readTotal + 1), 'every acknowledged write stored exactly the value it sent (read + 1)');
  // Every acknowledged value is in the history: the acknowledged totals are exactly 1..final, no gap.
  const distinct = [...new Set(acks.map((a) => a.total))].sort((x, y) => x - y);
  t.same(distinct, Array.from({ length: finalTotal }, (_, i) => i + 1), `acknowledged totals are exactly 1..${finalTotal}`);

  // The property: one acknowledged increment = one step of the counter.
  const raced = acks.filter((a) => a.version !== a.readVersion + 1);
  // Two writes conditioned on the same version that both passed answer the same new version.
  const twins = acks.length - new Set(acks.map((a) => a.version)).size;
  const lost = tally.acked - finalTotal;
  const backendRace = label === 'moto' && raced.length + twins > 0 && lost > 0 && lost <= raced.length + twins;
  const todo = backendRace
    ? `moto let ${raced.length + twins} writes pass a version condition that no longer held (${
        raced.length > 0 ? `e.g. conditioned on version ${raced[0].readVersion}, answered version ${raced[0].version}` : `${twins} pairs answered the same new version`
      }); moto has no per-item lock`
    : false;
  if (backendRace) t.comment(`known moto limitation: ${todo}`);
  t.equal(raced.length, 0, `every acknowledged write moved the version by exactly one (${raced.length} did not)`, { todo });
  t.equal(twins, 0, `no two acknowledged writes answered the same version (${twins} did)`, { todo });
  t.equal(finalTotal, tally.acked, `final total ${finalTotal} = acknowledged increments ${tally.acked}: none lost`, { todo });
  t.equal(finalVersion, tally.acked, `final version ${finalVersion} = acknowledged increments`, { todo: label === 'moto' && raced.length + twins > 0 ? todo : false });
}

await forEachBackend(t, REGION, async (t, backend) => {
  await t.test(`PATCH If-Match read-modify-write on ${backend.name}`, (t) => patchDrill(t, backend.sidecar, backend.name));
});

t.test('transactions with expected versions on the embedded store', async (t) => {
  const s = await startTestSidecar();
  t.teardown(() => s.close());
  const customer = `${RUN}#TX`;
  await createCounter(t, s, customer, 1);
  await createCounter(t, s, customer, 2);
  const key = (no: number) => ({ customer_id: customer, order_no: no });
  const tally: Tally = { acked: 0, conflicts: 0, unexpected: [], wrongAcks: [] };
  let tornReads = 0;
  const started = Date.now();
  await runFor(DURATION_MS, CLIENTS, async () => {
    const read = await s.request('POST', '/v1/transactions/get', { items: [{ model: 'Order', key: key(1) }, { model: 'Order', key: key(2) }] });
    if (read.status !== 200) {
      tally.unexpected.push(`transactions/get ${read.status} ${read.text.slice(0, 200)}`);
      return;
    }
    const [a, b] = read.json.items as Json[];
    // Both counters move together: a snapshot that shows them apart is a torn read.
    if (Number(a.total) !== Number(b.total) || Number(a.version) !== Number(b.version)) tornReads += 1;
    const res = await s.request('POST', '/v1/transactions/write', {
      items: [
        { op: 'update', model: 'Order', key: key(1), update: { set: { total: Number(a.total) + 1 } }, version: Number(a.version) },
        { op: 'update', model: 'Order', key: key(2), update: { set: { total: Number(b.total) + 1 } }, version: Number(b.version) },
      ],
    });
    if (res.status === 200 && res.json?.committed === 2) {
      tally.acked += 1;
    } else if (res.status === 409 && res.json?.code === 'ErrTransactionCanceled') {
      tally.conflicts += 1;
      const codes = (res.json.reasons as Json[]).map((r) => r.code);
      if (!codes.includes('ConditionalCheckFailed') && !codes.includes('TransactionConflict')) {
        tally.unexpected.push(`409 with reasons ${codes.join(',')}`);
      }
    } else {
      tally.unexpected.push(`transactions/write ${res.status} ${res.text.slice(0, 200)}`);
    }
  });
  const final = await s.request('POST', '/v1/transactions/get', { items: [{ model: 'Order', key: key(1) }, { model: 'Order', key: key(2) }] });
  const [a, b] = final.json?.items ?? [];
  t.comment(`transactions: ${tally.acked} acknowledged, ${tally.conflicts} canceled (409) in ${Date.now() - started} ms with ${CLIENTS} clients`);
  t.ok(tally.acked > 0, 'some transactions were acknowledged');
  t.ok(tally.conflicts > 0, 'transactions did collide');
  t.same(tally.unexpected.slice(0, 5), [], `only 200 and 409 ErrTransactionCanceled answers (${tally.unexpected.length} others)`);
  t.equal(tornReads, 0, 'no snapshot ever showed the two counters apart');
  t.equal(Number(a?.total), tally.acked, `counter 1 = acknowledged transactions (${a?.total} vs ${tally.acked})`);
  t.equal(Number(b?.total), tally.acked, `counter 2 = acknowledged transactions (${b?.total} vs ${tally.acked})`);
  t.equal(Number(a?.version), tally.acked, 'counter 1 version = acknowledged transactions');
  t.equal(Number(b?.version), tally.acked, 'counter 2 version = acknowledged transactions');
});
