#!/usr/bin/env node
// `npm run bench`: the sidecar against direct @aws-sdk/client-dynamodb use, side by side in one run.
//
//   node bench/run.mjs [--quick] [--backends null,dynalite] [--ops get,put,update,query,batch25,tx4] [--no-pin]
//                      [--skip-boot] [--skip-kms] [--skip-sustained] [--out bench/results]
//   BENCH_DURATION=5   seconds measured per cell (default 5; --quick: 1)
//   BENCH_WARMUP=1     seconds of unmeasured warm-up before each cell (default 1; --quick: 0.25)
//   BENCH_SUSTAINED=60 seconds per side of the sustained 1,000 req/s GetItem run, in two windows (default 60; --quick: 10)
//
// Writes <out>/latest.json and <out>/latest.svg and prints the tables. See bench/README.md.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LOAD_MODEL, MODEL_COUNT, tableSpecs, writeModels } from './lib/models.mjs';
import { OPS, OP_NAMES } from './lib/workload.mjs';
import { logicalItem } from './lib/fixtures.mjs';
import { MB, cpuPercent, machinePercent, machineSample, procSample, request, stop } from './lib/procs.mjs';
import {
  CPU,
  LoadGen,
  NOISE_PERCENT,
  ROOT,
  foreignCpu,
  initPinning,
  log,
  sleep,
  startBackend,
  startSidecar,
  stopAll,
  waitQuiet,
} from './lib/harness.mjs';
import { buildComparisons, evaluateTargets, printReport } from './lib/report.mjs';
import { renderSvg } from './lib/svg.mjs';
import { measureSustained } from './lib/sustained.mjs';

const { values: argv } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    backends: { type: 'string' },
    ops: { type: 'string' },
    out: { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
    'skip-boot': { type: 'boolean', default: false },
    'skip-kms': { type: 'boolean', default: false },
    'skip-sustained': { type: 'boolean', default: false },
    // A/B runs of a candidate build: the sidecar entry the matrix and KMS test run, and the bundle the boot test adds.
    entry: { type: 'string', default: 'dist/cli.js' },
    'bundle-entry': { type: 'string', default: 'dist-lambda/cli.mjs' },
    // Extra node flags for every sidecar (e.g. "--max-semi-space-size=4"), for A/B runs of runtime settings.
    'sidecar-node-args': { type: 'string', default: '' },
  },
});
const SIDECAR_NODE_ARGS = argv['sidecar-node-args'].split(' ').filter(Boolean);
const ENTRY = argv.entry;
const BUNDLE_ENTRY = argv['bundle-entry'];

const QUICK = argv.quick;
const DURATION_S = Number(process.env.BENCH_DURATION ?? (QUICK ? 1 : 5));
const WARMUP_S = Number(process.env.BENCH_WARMUP ?? (QUICK ? 0.25 : 1));
const BOOT_RUNS = QUICK ? 1 : 5;
/** Boots slower than this are measured once. */
const SLOW_BOOT_MS = 5000;
const RATES = [500, 1000];
const SAT_CONNECTIONS = 32;
const KMS_WRITES = 1000;
const SUSTAINED_RATE = 1000;
const SUSTAINED_ROUNDS = 2;
const SUSTAINED_S = Number(process.env.BENCH_SUSTAINED ?? (QUICK ? 10 : 60));
const NOISY_RETRIES = Number(process.env.BENCH_NOISY_RETRIES ?? (QUICK ? 0 : 2));
const QUIET_WAIT_MS = Number(process.env.BENCH_QUIET_WAIT ?? (QUICK ? 0 : 30)) * 1000;
const BACKENDS = (argv.backends ?? 'null,dynalite').split(',').filter(Boolean);
const SELECTED_OPS = (argv.ops ?? OP_NAMES.join(',')).split(',').filter(Boolean);
const OUT = path.resolve(ROOT, argv.out ?? 'bench/results');

for (const b of BACKENDS) if (!['null', 'dynalite'].includes(b)) fail(`unknown backend ${b} (null, dynalite)`);
for (const o of SELECTED_OPS) if (!OP_NAMES.includes(o)) fail(`unknown op ${o} (${OP_NAMES.join(', ')})`);
if (!(DURATION_S > 0) || !(WARMUP_S >= 0)) fail('BENCH_DURATION must be > 0 and BENCH_WARMUP >= 0');

function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

// ---------------------------------------------------------------------------------------------- preflight

const nodeMajor = Number(process.versions.node.split('.')[0]);
if (nodeMajor < 24) fail(`node ${process.versions.node}: the sidecar needs Node 24 — run \`npm run bench\` (npm puts the pinned node first on PATH)`);
if (!existsSync(path.join(ROOT, 'dist', 'cli.js'))) fail('dist/cli.js missing: run `npm run build` (npm run bench does)');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

const BUNDLE = path.join(ROOT, 'dist-lambda', 'cli.mjs');
/** The commit measured, and whether src/ had uncommitted changes (the build is of the working tree). */
function gitInfo() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT }).toString().trim().split('\n').filter(Boolean).length;
    return { commit, srcFilesChanged: dirty };
  } catch {
    return null;
  }
}

function ensureBundle() {
  const stale = !existsSync(BUNDLE) || statSync(BUNDLE).mtimeMs < newestMtime(path.join(ROOT, 'src'));
  if (!stale) return 'up to date';
  log('bench: dist-lambda/cli.mjs missing or older than src/: node scripts/bundle.mjs');
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'bundle.mjs'), '--quiet'], { cwd: ROOT, stdio: 'inherit' });
  return 'rebuilt';
}

const pinning = initPinning(!argv['no-pin']);
const PIN = pinning.on;
const taskset = pinning.taskset;

// ---------------------------------------------------------------------------------------------- cells

/** DynamoDB calls by operation and data requests answered, from the sidecar's /metrics text. */
function metricCounts(text) {
  const calls = {};
  let requests = 0;
  for (const line of text.split('\n')) {
    const m = /^(dynamorm_dynamodb_calls_total|dynamorm_http_request_duration_seconds_count)\{([^}]*)\} (\d+(?:\.\d+)?)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (m[1] === 'dynamorm_dynamodb_calls_total') calls[labels.operation] = (calls[labels.operation] ?? 0) + Number(m[3]);
    else if (labels.op) requests += Number(m[3]);
  }
  return { calls, requests };
}

/** DynamoDB calls the sidecar made per data request it answered, between two /metrics scrapes. */
function callsPerRequest(before, after) {
  const requests = after.requests - before.requests;
  if (requests <= 0) return null;
  const out = {};
  for (const [op, n] of Object.entries(after.calls)) {
    const d = n - (before.calls[op] ?? 0);
    if (d > 0) out[op] = Math.round((d / requests) * 1000) / 1000;
  }
  return out;
}

/** Runs one load and samples CPU of the sidecar and backend across exactly the measured window. */
async function measure(gen, spec, watch) {
  let before;
  let after;
  let scrapeBefore;
  let scrapeAfter;
  const scrape = () => (watch.where ? request(watch.where, 'GET', '/metrics').then((r) => metricCounts(r.body), () => null) : Promise.resolve(null));
  let rssPeak = 0;
  let timer;
  const sampleAll = () => ({
    machine: machineSample(),
    sidecar: watch.sidecarPid ? procSample(watch.sidecarPid) : undefined,
    backend: watch.backendPid ? procSample(watch.backendPid) : undefined,
    self: procSample(process.pid),
  });
  const result = await gen.run(spec, {
    onStart: () => {
      before = sampleAll();
      scrapeBefore = scrape();
      rssPeak = before.sidecar?.rss ?? 0;
      timer = setInterval(() => {
        const s = watch.sidecarPid ? procSample(watch.sidecarPid) : undefined;
        if (s) rssPeak = Math.max(rssPeak, s.rss);
      }, 200);
    },
    onEnd: () => {
      after = sampleAll();
      scrapeAfter = scrape();
      clearInterval(timer);
      if (after.sidecar) rssPeak = Math.max(rssPeak, after.sidecar.rss);
    },
  });
  const cpu = {
    loadgen: round((result.loadgenCpuMs / result.elapsedMs) * 100, 1),
    sidecar: watch.sidecarPid ? cpuPercent(before.sidecar, after.sidecar) : null,
    backend: cpuPercent(before.backend, after.backend),
    orchestrator: cpuPercent(before.self, after.self),
    machine: machinePercent(before.machine, after.machine),
  };
  // Whatever else ran on the machine during the window (other jobs): the cell is noisy when this is high.
  cpu.foreign = cpu.machine === null ? null : round(Math.max(0, cpu.machine - cpu.loadgen - (cpu.sidecar ?? 0) - (cpu.backend ?? 0) - (cpu.orchestrator ?? 0)), 1);
  const [mb, ma] = await Promise.all([scrapeBefore, scrapeAfter]);
  return {
    result,
    cpu,
    backendCallsPerRequest: mb && ma ? callsPerRequest(mb, ma) : null,
    sidecarRssPeakMB: watch.sidecarPid ? MB(rssPeak) : null,
  };
}

function loadSpec(load) {
  if (load === 'saturation') return { type: 'closed', concurrency: SAT_CONNECTIONS };
  return { type: 'paced', rate: Number(load.replace('rate', '')) };
}

function cellRecord(backend, op, mode, load, m) {
  const r = m.result;
  const seconds = r.elapsedMs / 1000;
  const achieved = r.ok / seconds;
  const target = load === 'saturation' ? null : Number(load.replace('rate', ''));
  return {
    backend,
    op,
    mode,
    load,
    targetRps: target,
    achievedRps: Math.round(achieved),
    ok: r.ok,
    failed: r.failed,
    dropped: r.dropped,
    seconds: round(seconds, 3),
    latencyMs: r.latency,
    lagP99Ms: r.lag?.p99 ?? null,
    cpuPercent: m.cpu,
    sidecarRssPeakMB: m.sidecarRssPeakMB,
    ...(m.backendCallsPerRequest ? { backendCallsPerRequest: m.backendCallsPerRequest } : {}),
    ...(r.unexpected && Object.keys(r.unexpected).length ? { unexpected: r.unexpected } : {}),
    overloaded: target !== null && (r.dropped > 0 || achieved < 0.97 * target),
    noisy: (m.cpu.foreign ?? 0) > NOISE_PERCENT,
    ...(r.autocannon ? { autocannon: r.autocannon } : {}),
  };
}

async function seedDynalite(where) {
  const put = await request(where, 'PUT', `/v1/models/${LOAD_MODEL}/items/G%231/S`, logicalItem('G#1', 'S'));
  if (put.status !== 200) throw new Error(`seed GetItem item: ${put.status} ${put.body}`);
  const puts = Array.from({ length: 10 }, (_, i) => logicalItem('Q#1', String(i).padStart(3, '0')));
  const batch = await request(where, 'POST', `/v1/models/${LOAD_MODEL}/batch-write`, { puts });
  if (batch.status !== 200) throw new Error(`seed query partition: ${batch.status} ${batch.body}`);
}

/** Every request shape answers as expected once through the sidecar before anything is timed. */
let smokeN = 2_000_000_000;
async function smoke(where, backend) {
  for (const name of SELECTED_OPS) {
    if (OPS[name].backends && !OPS[name].backends.includes(backend)) continue;
    const r = OPS[name].http(smokeN++);
    const res = await request(where, r.method, r.path, r.body);
    if (res.status !== r.status) throw new Error(`${backend}/${name}: sidecar answered ${res.status} (want ${r.status}): ${res.body.slice(0, 500)}`);
  }
}

const cells = [];
const crossChecks = [];
const backendInfo = {};

async function runBackend(kind, gens, schemasDir) {
  log(`\nbench: backend ${kind}`);
  const backend = await startBackend(kind, tableSpecs());
  const socket = path.join(os.tmpdir(), `dynamorm-bench-${process.pid}-${kind}.sock`);
  // Both sidecars boot side by side (the second on the other core, moved to the sidecar core once ready).
  const [tcp, unix] = await Promise.all([
    startSidecar({ entry: ENTRY, endpoint: backend.endpoint, schemasDir, createTables: kind === 'dynalite', nodeArgs: SIDECAR_NODE_ARGS }),
    startSidecar({ entry: ENTRY, endpoint: backend.endpoint, schemasDir, socket, createTables: kind === 'dynalite', bootCpu: CPU.backend, nodeArgs: SIDECAR_NODE_ARGS }),
  ]);
  await sleep(2000);
  const idle = procSample(tcp.pid);
  backendInfo[kind] = { endpoint: backend.endpoint, sidecarIdleRssMB: idle ? MB(idle.rss) : null, sidecarBootMs: round(tcp.bootMs, 1) };
  if (kind === 'dynalite') await seedDynalite(tcp.where);
  await smoke(tcp.where, kind);
  await smoke(unix.where, kind);

  const loads = [...RATES.map((r) => `rate${r}`), 'saturation'];
  for (const op of SELECTED_OPS) {
    if (OPS[op].backends && !OPS[op].backends.includes(kind)) {
      log(`  ${op}: skipped on ${kind} (${kind} has no TransactWriteItems)`);
      continue;
    }
    for (const mode of ['sdk', 'http', 'unix']) {
      for (const load of loads) {
        const base = { op, load: loadSpec(load), durationMs: DURATION_S * 1000, warmupMs: WARMUP_S * 1000 };
        const once = () => {
          if (mode === 'sdk') return measure(gens.sdk, { ...base, endpoint: backend.endpoint }, { backendPid: backend.pid });
          const sc = mode === 'http' ? tcp : unix;
          return measure(gens.http, { ...base, ...sc.where }, { sidecarPid: sc.pid, backendPid: backend.pid, where: sc.where });
        };
        let m = await once();
        let attempts = 1;
        // Other jobs on the machine took CPU during the window: wait for quiet and measure again (keep the quieter).
        while ((m.cpu.foreign ?? 0) > NOISE_PERCENT && attempts <= NOISY_RETRIES) {
          log(`  ${op} ${mode} ${load}: other processes used ${m.cpu.foreign}% CPU during the window; measuring again`);
          await waitQuiet(QUIET_WAIT_MS, 'retry');
          const again = await once();
          attempts += 1;
          if ((again.cpu.foreign ?? 0) < (m.cpu.foreign ?? 0)) m = again;
        }
        const cell = { ...cellRecord(kind, op, mode, load, m), attempts };
        cells.push(cell);
        const l = cell.latencyMs;
        log(
          `  ${op.padEnd(8)} ${mode.padEnd(5)} ${load.padEnd(10)} ${String(cell.achievedRps).padStart(6)} rps  p50 ${l.p50} ms  p99 ${l.p99} ms` +
            `  cpu lg/sc/be ${cell.cpuPercent.loadgen}/${cell.cpuPercent.sidecar ?? '-'}/${cell.cpuPercent.backend}%` +
            `${cell.failed ? `  FAILED ${cell.failed} ${JSON.stringify(cell.unexpected ?? {})}` : ''}${cell.overloaded ? '  OVERLOADED' : ''}${cell.noisy ? `  NOISY (other processes ${cell.cpuPercent.foreign}%)` : ''}`,
        );
      }
    }
  }

  // autocannon's own overallRate at 1,000 rps, for comparison with the paced generator (see http-load.mjs).
  if (kind === 'null' && SELECTED_OPS.includes('get')) {
    const spec = { op: 'get', load: { type: 'autocannon-rate', rate: 1000, concurrency: 10 }, durationMs: DURATION_S * 1000, warmupMs: WARMUP_S * 1000, ...tcp.where };
    const m = await measure(gens.http, spec, { sidecarPid: tcp.pid, backendPid: backend.pid });
    const cell = cellRecord(kind, 'get', 'http', 'rate1000', m);
    crossChecks.push({ ...cell, generator: 'autocannon overallRate=1000, connections=10' });
    log(`  get      http  autocannon overallRate 1000: p50 ${cell.latencyMs.p50} ms  p99 ${cell.latencyMs.p99} ms (autocannon's own: p50 ${cell.autocannon?.latencyP50} p99 ${cell.autocannon?.latencyP99})`);
  }

  const rssIdleAfter = procSample(tcp.pid);
  backendInfo[kind].sidecarRssAfterLoadMB = rssIdleAfter ? MB(rssIdleAfter.rss) : null;
  await stop(tcp.child);
  await stop(unix.child);
  await stop(backend.child);
  rmSync(socket, { force: true });
}

// ---------------------------------------------------------------------------------------------- boot, RSS, KMS

/** The label of the embedded-backend boot in latest.json's boot.entries. */
const EMBEDDED_BOOT = 'dist/cli.js, embedded backend';

async function measureBoot(schemasDir) {
  log(`\nbench: boot-to-ready with ${MODEL_COUNT} models (null backend)`);
  const backend = await startBackend('null', tableSpecs());
  const out = { runs: BOOT_RUNS, entries: {} };
  // Bare node start-up for reference: spawn → exit of `node -e 0`.
  const bare = [];
  for (let i = 0; i < Math.max(3, BOOT_RUNS); i++) {
    const t0 = performance.now();
    spawnSync(PIN ? 'taskset' : process.execPath, PIN ? ['-c', String(CPU.sidecar), process.execPath, '-e', '0'] : ['-e', '0']);
    bare.push(performance.now() - t0);
  }
  out.nodeBareStartMs = round(median(bare), 1);
  // The embedded backend (in-process dynalite, tables created at boot) is reported beside the aws backend.
  // With Node's compile cache (NODE_COMPILE_CACHE, as the Dockerfile sets it): one unmeasured boot fills it first.
  const cacheDir = (name) => {
    const dir = path.join(os.tmpdir(), `dynamorm-bench-ncc-${process.pid}-${name}`);
    rmSync(dir, { recursive: true, force: true });
    return dir;
  };
  const variants = [
    [ENTRY, ENTRY, {}],
    [BUNDLE_ENTRY, BUNDLE_ENTRY, {}],
    [`${ENTRY}, NODE_COMPILE_CACHE warm`, ENTRY, { NODE_COMPILE_CACHE: cacheDir('dist') }],
    [`${BUNDLE_ENTRY}, NODE_COMPILE_CACHE warm`, BUNDLE_ENTRY, { NODE_COMPILE_CACHE: cacheDir('bundle') }],
    [EMBEDDED_BOOT, ENTRY, { BACKEND: 'embedded', DYNAMODB_ENDPOINT: null, CREATE_TABLES: null }],
  ];
  for (const [label, entry, env] of variants) {
    if (env.NODE_COMPILE_CACHE) await stop((await startSidecar({ entry, endpoint: backend.endpoint, schemasDir, env, nodeArgs: SIDECAR_NODE_ARGS })).child);
    const readyz = [];
    const logLine = [];
    const rss = [];
    const foreign = [];
    for (let i = 0, retried = 0; i < BOOT_RUNS; i++) {
      // A boot of many seconds is not repeated: its median would only cost minutes.
      if (i > 0 && readyz[0] > SLOW_BOOT_MS) break;
      const m0 = machineSample();
      const self0 = procSample(process.pid);
      const be0 = procSample(backend.pid);
      // LOG_LEVEL=info here only: the "dynamorm sidecar ready" line is an info line.
      const sc = await startSidecar({ entry, endpoint: backend.endpoint, schemasDir, env, logLevel: 'info', readyEveryMs: 2, nodeArgs: SIDECAR_NODE_ARGS });
      const m1 = machineSample();
      const sidecarPercent = cpuPercent({ at: sc.t0, ticks: 0 }, procSample(sc.pid));
      const busy = (machinePercent(m0, m1) ?? 0) - (sidecarPercent ?? 0) - (cpuPercent(self0, procSample(process.pid)) ?? 0) - (cpuPercent(be0, procSample(backend.pid)) ?? 0);
      const logAt = await Promise.race([sc.readyLog, sleep(2000).then(() => undefined)]);
      await sleep(1000);
      const s = procSample(sc.pid);
      await stop(sc.child);
      // Other jobs took CPU during a short boot: wait for quiet and boot again (once per run).
      if (busy > NOISE_PERCENT && sc.bootMs < SLOW_BOOT_MS && retried < BOOT_RUNS && QUIET_WAIT_MS > 0) {
        retried += 1;
        i -= 1;
        await waitQuiet(QUIET_WAIT_MS, 'boot retry');
        continue;
      }
      readyz.push(sc.readyAt - sc.t0);
      if (logAt !== undefined) logLine.push(logAt - sc.t0);
      if (s) rss.push(s.rss);
      foreign.push(round(Math.max(0, busy), 1));
    }
    out.entries[label] = {
      runs: readyz.length,
      readyzMsMedian: round(median(readyz), 1),
      readyzMs: readyz.map((x) => round(x, 1)),
      readyLogMsMedian: round(median(logLine), 1),
      readyLogMs: logLine.map((x) => round(x, 1)),
      idleRssMBMedian: MB(median(rss) ?? 0),
      foreignCpuPercent: foreign,
      noisy: foreign.some((f) => f > NOISE_PERCENT),
    };
    log(`  ${label}: spawn→/readyz 200 median ${out.entries[label].readyzMsMedian} ms, spawn→ready log ${out.entries[label].readyLogMsMedian} ms, idle RSS ${out.entries[label].idleRssMBMedian} MB`);
    if (env.NODE_COMPILE_CACHE) rmSync(env.NODE_COMPILE_CACHE, { recursive: true, force: true });
  }
  await stop(backend.child);
  return out;
}

function kmsCounts(text) {
  const get = (op) => {
    const m = new RegExp(`^dynamorm_kms_calls_total\\{operation="${op}"\\} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  const cache = (side, result) => {
    const m = new RegExp(`^dynamorm_data_key_cache_total\\{side="${side}",result="${result}"\\} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  return { generateDataKey: get('GenerateDataKey'), decrypt: get('Decrypt'), encryptHits: cache('encrypt', 'hit'), encryptMisses: cache('encrypt', 'miss') };
}

async function measureKms(httpGen) {
  // The KMS test needs only the encrypted model: two models keep its sidecars' boots short.
  const schemasDir = await writeModels(2);
  log(`\nbench: KMS (local development key) calls per ${KMS_WRITES} encrypted writes`);
  const backend = await startBackend('null', tableSpecs());
  const kek = randomBytes(32).toString('base64');
  const out = {};
  for (const [label, env] of [
    ['cache', {}],
    ['noCache', { DATA_KEY_MAX_USES: '1' }],
  ]) {
    const sc = await startSidecar({ entry: ENTRY, endpoint: backend.endpoint, schemasDir, env: { LOCAL_KEK: kek, ...env }, nodeArgs: SIDECAR_NODE_ARGS });
    const before = kmsCounts((await request(sc.where, 'GET', '/metrics')).body);
    const r = await httpGen.run({ op: 'encPut', load: { type: 'amount', amount: KMS_WRITES, concurrency: 8 }, durationMs: 60_000, warmupMs: 0, ...sc.where });
    const after = kmsCounts((await request(sc.where, 'GET', '/metrics')).body);
    const calls = (after.generateDataKey ?? 0) - (before.generateDataKey ?? 0);
    out[label] = {
      env: Object.keys(env).length ? env : { DATA_KEY_MAX_USES: 'default (10000)', DATA_KEY_MAX_AGE_MS: 'default (300000)' },
      writesOk: r.ok,
      writesFailed: r.failed,
      generateDataKeyCalls: calls,
      decryptCalls: (after.decrypt ?? 0) - (before.decrypt ?? 0),
      callsPer1000Writes: r.ok ? round((calls / r.ok) * 1000, 2) : null,
      cache: { encryptHits: after.encryptHits, encryptMisses: after.encryptMisses },
      writesPerSecond: Math.round(r.ok / (r.elapsedMs / 1000)),
    };
    log(`  ${label}: ${r.ok} writes ok (${r.failed} failed), GenerateDataKey ${calls} → ${out[label].callsPer1000Writes} per 1,000 writes`);
    await stop(sc.child);
  }
  await stop(backend.child);
  rmSync(schemasDir, { recursive: true, force: true });
  return out;
}

// ---------------------------------------------------------------------------------------------- main

async function main() {
  const started = Date.now();
  // Before anything runs: the tree npm run build just compiled (HEAD may move while the run goes on).
  const git = gitInfo();
  const bundle = BUNDLE_ENTRY === 'dist-lambda/cli.mjs' ? ensureBundle() : 'given';
  const schemasDir = await writeModels(MODEL_COUNT);
  log(
    `bench: node ${process.versions.node}, ${os.cpus().length} cores, pinning ${PIN ? `on (sidecar & SDK load generator: core ${CPU.sidecar}; backend, HTTP load generator, orchestrator: core ${CPU.backend})` : `off${taskset.available ? '' : ' (taskset unavailable)'}`}` +
      `, ${DURATION_S} s per cell after ${WARMUP_S} s warm-up, sidecar LOG_LEVEL=warn`,
  );
  const gens = {
    sdk: await LoadGen.start('sdk-load.mjs', CPU.sdkLoadgen),
    http: await LoadGen.start('http-load.mjs', CPU.httpLoadgen),
  };
  let boot = null;
  let kms = null;
  let sustained = null;
  const preflight = QUIET_WAIT_MS > 0 ? await waitQuiet(QUIET_WAIT_MS * 2, 'before starting') : { waitedQuiet: null, foreign: await foreignCpu(1000) };
  try {
    if (!argv['skip-boot']) {
      if (QUIET_WAIT_MS > 0) await waitQuiet(QUIET_WAIT_MS, 'boot measurement');
      boot = await measureBoot(schemasDir);
    }
    if (!argv['skip-kms']) kms = await measureKms(gens.http);
    for (const kind of BACKENDS) {
      if (QUIET_WAIT_MS > 0) await waitQuiet(QUIET_WAIT_MS, `backend ${kind}`);
      await runBackend(kind, gens, schemasDir);
    }
    if (!argv['skip-sustained'] && BACKENDS.includes('null') && SELECTED_OPS.includes('get')) {
      if (QUIET_WAIT_MS > 0) await waitQuiet(QUIET_WAIT_MS, 'sustained run');
      sustained = await measureSustained({
        schemasDir,
        entry: ENTRY,
        nodeArgs: SIDECAR_NODE_ARGS,
        rate: SUSTAINED_RATE,
        windowSeconds: SUSTAINED_S / SUSTAINED_ROUNDS,
        rounds: SUSTAINED_ROUNDS,
        warmupSeconds: WARMUP_S,
      });
    }
  } finally {
    await gens.sdk.close();
    await gens.http.close();
    await stopAll();
    rmSync(schemasDir, { recursive: true, force: true });
  }

  const results = {
    meta: {
      date: new Date().toISOString(),
      node: process.versions.node,
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      cpuModel: os.cpus()[0]?.model ?? null,
      cores: os.cpus().length,
      memoryGB: round(os.totalmem() / 1024 ** 3, 1),
      pinning: PIN
        ? { tool: 'taskset', sidecar: CPU.sidecar, sdkLoadgen: CPU.sdkLoadgen, backend: CPU.backend, httpLoadgen: CPU.httpLoadgen, orchestrator: CPU.orchestrator }
        : { tool: null, reason: argv['no-pin'] ? '--no-pin' : taskset.available ? 'fewer than 2 cores' : 'taskset unavailable' },
      quick: QUICK,
      durationSeconds: DURATION_S,
      warmupSeconds: WARMUP_S,
      rates: RATES,
      saturationConnections: SAT_CONNECTIONS,
      models: MODEL_COUNT,
      loadModel: LOAD_MODEL,
      backends: BACKENDS,
      ops: SELECTED_OPS,
      bundle,
      entry: ENTRY,
      bundleEntry: BUNDLE_ENTRY,
      sidecarNodeArgs: SIDECAR_NODE_ARGS,
      git,
      sidecarEnv: { LOG_LEVEL: 'warn', MAX_EVENT_LOOP_DELAY_MS: '0', DOCS: 'false', BACKEND: 'aws', DYNAMODB_ENDPOINT: '<null endpoint | dynalite>' },
      generators: {
        sdk: '@aws-sdk/client-dynamodb in its own process; fixed rates: evenly paced open loop; saturation: 32 concurrent callers',
        http: 'own process; fixed rates: the same paced open loop over a node:http keep-alive agent; saturation: autocannon, 32 connections',
      },
      runtimeSeconds: null,
      noise: {
        thresholdPercent: NOISE_PERCENT,
        preflightForeignCpuPercent: preflight.foreign,
        noisyCells: 0,
        note: 'foreign = machine-wide busy CPU (/proc/stat) minus this run\'s own processes during each window',
      },
    },
    backends: backendInfo,
    cells,
    crossChecks,
    boot,
    kms,
    sustained,
  };
  results.meta.noise.noisyCells = cells.filter((c) => c.noisy).length;
  results.comparisons = buildComparisons(cells);
  results.targets = evaluateTargets(results);
  results.meta.runtimeSeconds = Math.round((Date.now() - started) / 1000);
  mkdirSync(OUT, { recursive: true });
  writeFileSync(path.join(OUT, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(OUT, 'latest.svg'), renderSvg(results));
  process.stdout.write(printReport(results));
  process.stdout.write(`\nwrote ${path.relative(ROOT, path.join(OUT, 'latest.json'))} and ${path.relative(ROOT, path.join(OUT, 'latest.svg'))} (${results.meta.runtimeSeconds} s)\n`);
}

main().catch(async (err) => {
  process.stderr.write(`bench: ${err?.stack ?? err}\n`);
  await stopAll();
  process.exit(1);
});
