// Drill: kill -9 inside 100-item write transactions on the embedded store with --data-dir. The CLI is started on a
// data directory holding 100 users; each round sends one transaction that sets the same marker on all 100 (and bumps
// each version), and kills the process at a random moment between 0.15 and 1.25 times the calibrated duration of
// such a transaction (seeded PRNG: a failing run replays with DRILL_SEED), once a small transaction on other items
// has warmed the process. After each restart all 100 items must carry one marker and
// one version: the old ones (rolled back, or never started) or the new ones (committed) — never a mix.
// Prints kills, torn, committed, rolled back (or untouched) and how many intents the boots rolled back.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { CLI, ROOT, cliEnv } from '../helpers/cli.js';
import { prng } from '../helpers/prng.js';
import { send } from '../helpers/sidecar.js';

// Each round is a CLI boot (2–3 s on a loaded 2-core box): more than the suite's 120 s per file may be needed.
t.setTimeout(300_000);

const ITEMS = 100;
const KILLS = Number(process.env.DRILL_KILLS ?? 21);
const SEED = Number(process.env.DRILL_SEED ?? 20261130);
const random = prng(SEED);
const dataDir = mkdtempSync(join(tmpdir(), 'dynamorm-torn-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));

const key = (i: number) => ({ PK: `TORN#${String(i).padStart(3, '0')}`, SK: 'P' });
const keys = Array.from({ length: ITEMS }, (_, i) => key(i));

interface Running {
  child: ChildProcess;
  url: string;
  log: () => string;
  exited: Promise<unknown>;
}

async function boot(): Promise<Running> {
  const child = spawn(process.execPath, [CLI, '--port', '0', '--data-dir', dataDir], {
    cwd: ROOT,
    env: cliEnv({ LOG_LEVEL: 'info', MAX_EVENT_LOOP_DELAY_MS: '0' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = once(child, 'exit');
  for (let i = 0; i < 600 && child.exitCode === null; i++) {
    const url = /"url":"(http:\/\/[^"]+)"/.exec(out)?.[1];
    if (url) return { child, url, log: () => out, exited };
    await delay(25);
  }
  child.kill('SIGKILL');
  throw new Error(`the sidecar did not become ready: ${out.slice(0, 2000)}`);
}

const transaction = (marker: string) => ({
  items: keys.map((k) => ({ op: 'update', model: 'User', key: k, update: { set: { name: marker } } })),
});

/** Every item's marker and version, read in one transactional get. */
async function state(url: string): Promise<{ markers: Set<string>; versions: Set<number>; missing: number }> {
  const res = await send(url, 'POST', '/v1/transactions/get', { items: keys.map((k) => ({ model: 'User', key: k })) });
  if (res.status !== 200) throw new Error(`transactions/get: ${res.status} ${res.text.slice(0, 500)}`);
  const items = res.json.items as ({ name: string; version: number } | null)[];
  return {
    markers: new Set(items.filter((i) => i).map((i) => i!.name)),
    versions: new Set(items.filter((i) => i).map((i) => i!.version)),
    missing: items.filter((i) => !i).length,
  };
}

t.test(`${KILLS} kills -9 inside 100-item transactions: none torn`, async (t) => {
  const started = Date.now();
  let s = await boot();
  const seeded = await send(s.url, 'POST', '/v1/transactions/write', {
    items: keys.map((k) => ({ op: 'put', model: 'User', item: { ...k, email: 'torn@example.com', name: 'm0' } })),
  });
  t.equal(seeded.status, 200, 'seeded 100 items in one transaction');

  // Calibrate: how long one 100-item transaction takes here, end to end.
  const samples: number[] = [];
  for (let i = 1; i <= 3; i++) {
    const begun = performance.now();
    const res = await send(s.url, 'POST', '/v1/transactions/write', transaction(`c${i}`));
    samples.push(performance.now() - begun);
    t.equal(res.status, 200, `calibration transaction ${i}`);
  }
  const window = samples.reduce((a, b) => a + b, 0) / samples.length;
  let expected = { marker: 'c3', version: 3 };

  let torn = 0;
  let committed = 0;
  let untouched = 0;
  let recovered = 0;
  for (let kill = 1; kill <= KILLS; kill++) {
    // A small transaction on other items first: the round's kill then lands in a warm process, as calibrated.
    const warm = await send(s.url, 'POST', '/v1/transactions/write', {
      items: Array.from({ length: 10 }, (_, i) => ({ op: 'put', model: 'User', item: { PK: `WARM#${i}`, SK: 'P', email: 'w@example.com', name: `w${kill}` } })),
    });
    if (warm.status !== 200) throw new Error(`warm-up transaction: ${warm.status} ${warm.text.slice(0, 500)}`);
    const marker = `k${kill}`;
    const pending = send(s.url, 'POST', '/v1/transactions/write', transaction(marker)).catch(() => undefined);
    await delay((0.15 + 1.1 * random()) * window);
    s.child.kill('SIGKILL');
    await s.exited;
    await pending;

    s = await boot();
    recovered += Number(/rolled back (\d+) write transaction/.exec(s.log())?.[1] ?? 0);
    const now = await state(s.url);
    const whole = now.missing === 0 && now.markers.size === 1 && now.versions.size === 1;
    if (!whole) {
      torn++;
      t.comment(`kill ${kill}: torn — markers ${[...now.markers].join(',')}, versions ${[...now.versions].join(',')}, missing ${now.missing}`);
      break; // the items no longer agree on a marker: later rounds could not tell old from new
    }
    const [m] = now.markers;
    const [v] = now.versions;
    if (m === marker && v === expected.version + 1) {
      committed++;
      expected = { marker, version: v };
    } else if (m === expected.marker && v === expected.version) {
      untouched++;
    } else {
      torn++;
      t.comment(`kill ${kill}: unexpected state ${m}@${v} (expected ${expected.marker}@${expected.version} or ${marker}@${expected.version + 1})`);
      break;
    }
  }
  s.child.kill('SIGTERM');
  await s.exited;

  t.comment(
    `kills ${committed + untouched + torn}, torn ${torn}, committed ${committed}, rolled back or untouched ${untouched}, ` +
      `intents rolled back at boot ${recovered}; window ${window.toFixed(0)} ms, seed ${SEED}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  t.equal(torn, 0, 'no transaction torn by a kill');
  t.equal(committed + untouched, KILLS, `${KILLS} kills survived`);
  t.ok(KILLS >= 20, 'at least 20 kills');
});
