// Process harness shared by run.mjs and profile.mjs: core assignment (taskset), the backend, sidecar and
// load-generator processes, and noise detection (CPU used by processes that are not ours).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cpuPercent,
  enablePinning,
  firstJsonLine,
  freePort,
  machinePercent,
  machineSample,
  pinPid,
  procSample,
  spawnNode,
  stop,
  tasksetInfo,
  waitReady,
} from './procs.mjs';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const LIB = path.join(ROOT, 'bench', 'lib');
/** A window during which other processes used more than this much CPU (% of one core) is "noisy". */
export const NOISE_PERCENT = 15;

export const log = (line) => process.stderr.write(`${line}\n`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const CPU = { sidecar: undefined, sdkLoadgen: undefined, backend: undefined, httpLoadgen: undefined, orchestrator: undefined };
export const PINNING = { on: false, taskset: { available: false, cpus: [] } };

/**
 * Core A: the sidecar, or (direct path) the SDK load generator — the "application core".
 * Core B: the backend, the HTTP load generator and this orchestrator.
 */
export function initPinning(wanted) {
  const taskset = tasksetInfo();
  const on = wanted && taskset.available && taskset.cpus.length >= 2;
  enablePinning(on);
  const [a, b] = on ? taskset.cpus : [undefined, undefined];
  Object.assign(CPU, { sidecar: a, sdkLoadgen: a, backend: b, httpLoadgen: b, orchestrator: b });
  Object.assign(PINNING, { on, taskset });
  if (on) pinPid(process.pid, CPU.orchestrator);
  return PINNING;
}

// ---------------------------------------------------------------------------------------------- processes

export const children = new Set();
export function track(child) {
  children.add(child);
  child.exited.then(() => children.delete(child));
  return child;
}
export async function stopAll() {
  await Promise.all([...children].map((c) => stop(c)));
}
// Whatever way this process ends, no child outlives it (each gets SIGTERM; they are all ours).
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
});
// A closed stdout (`| head`) must not kill the run before its children are stopped.
process.stdout.on('error', (err) => {
  if (err.code !== 'EPIPE') throw err;
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    log(`bench: ${signal}, stopping children`);
    stopAll().finally(() => process.exit(130));
  });
}

/** Only what the sidecar needs from the environment: no AWS profile, partner, key or token settings leak in. */
export function baseEnv(extra = {}) {
  const env = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']) if (process.env[name] !== undefined) env[name] = process.env[name];
  const out = {
    ...env,
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
  // A variable given as null is left out (e.g. no DYNAMODB_ENDPOINT for the embedded backend).
  for (const [name, value] of Object.entries(out)) if (value === null) delete out[name];
  return out;
}

export async function startBackend(kind, schemasTables) {
  const script = kind === 'null' ? 'null-dynamo.mjs' : 'dynalite-server.mjs';
  const child = track(
    spawnNode([path.join(LIB, script)], { cpu: CPU.backend, env: baseEnv(kind === 'null' ? { NULL_DYNAMO_TABLES: JSON.stringify(schemasTables) } : {}) }),
  );
  const { port } = await firstJsonLine(child);
  return { kind, child, pid: child.pid, endpoint: `http://127.0.0.1:${port}` };
}

/**
 * A sidecar as the benchmark runs it: LOG_LEVEL=warn, MAX_EVENT_LOOP_DELAY_MS=0 (no shedding), DOCS=false,
 * BACKEND=aws with DYNAMODB_ENDPOINT, dummy credentials. `socket` listens on a Unix socket instead of TCP.
 */
export async function startSidecar({
  entry = 'dist/cli.js',
  endpoint,
  schemasDir,
  socket,
  env = {},
  createTables = false,
  logLevel = 'warn',
  nodeArgs = [],
  readyEveryMs = 5,
  bootCpu = CPU.sidecar,
}) {
  const port = socket ? undefined : await freePort();
  const where = socket ? { socketPath: socket } : { port };
  const t0 = performance.now();
  const child = track(
    spawnNode([path.resolve(ROOT, entry)], {
      cpu: bootCpu,
      nodeArgs,
      env: baseEnv({
        LOG_LEVEL: logLevel,
        MAX_EVENT_LOOP_DELAY_MS: '0',
        DOCS: 'false',
        BACKEND: 'aws',
        DYNAMODB_ENDPOINT: endpoint,
        SCHEMAS_DIR: schemasDir,
        CREATE_TABLES: createTables ? 'true' : 'false',
        HOST: '127.0.0.1',
        ...(socket ? { SOCKET_PATH: socket } : { PORT: String(port) }),
        ...env,
      }),
    }),
  );
  let readyLogAt;
  const readyLog = new Promise((resolve) => {
    child.stdout.on('data', (chunk) => {
      if (readyLogAt === undefined && chunk.toString().includes('dynamorm sidecar ready')) {
        readyLogAt = performance.now();
        resolve(readyLogAt);
      }
    });
  });
  const readyAt = await waitReady(where, child, { everyMs: readyEveryMs });
  // Booted elsewhere (two sidecars booting side by side): every thread moves to the sidecar core now.
  if (bootCpu !== CPU.sidecar) pinPid(child.pid, CPU.sidecar);
  return { child, pid: child.pid, where, entry, t0, readyAt, readyLog, bootMs: readyAt - t0 };
}

export class LoadGen {
  static async start(script, cpu, { nodeArgs = [], env = {} } = {}) {
    const child = track(spawnNode([path.join(LIB, script)], { cpu, ipc: true, env: baseEnv(env), nodeArgs }));
    const gen = new LoadGen(child);
    await new Promise((resolve, reject) => {
      child.once('message', (m) => (m?.ready ? resolve() : reject(new Error(`unexpected ${JSON.stringify(m)}`))));
      child.once('exit', (code) => reject(new Error(`${script} exited (${code}): ${child.tail.join('\n')}`)));
    });
    return gen;
  }
  constructor(child) {
    this.child = child;
    this.pid = child.pid;
    this.next = 0;
  }
  run(spec, hooks = {}) {
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      const onMessage = (m) => {
        if (m?.id !== id) return;
        if (m.event === 'start') hooks.onStart?.();
        else if (m.event === 'end') hooks.onEnd?.();
        else {
          this.child.off('message', onMessage);
          if (m.error) reject(new Error(m.error));
          else resolve(m.result);
        }
      };
      this.child.on('message', onMessage);
      this.child.send({ id, spec });
    });
  }
  async close() {
    this.child.send({ cmd: 'exit' });
    await Promise.race([this.child.exited, sleep(2000)]);
    await stop(this.child);
  }
}

// ---------------------------------------------------------------------------------------------- noise

/** CPU (% of one core) used over `ms` by processes that are not ours. */
export async function foreignCpu(ms = 1000) {
  const pids = [process.pid, ...[...children].map((c) => c.pid)];
  const m0 = machineSample();
  const p0 = pids.map(procSample);
  await sleep(ms);
  const m1 = machineSample();
  const p1 = pids.map(procSample);
  const ours = p0.reduce((sum, a, i) => sum + (cpuPercent(a, p1[i]) ?? 0), 0);
  const machine = machinePercent(m0, m1);
  return machine === null ? 0 : Math.max(0, machine - ours);
}

/** Waits (up to `maxMs`) until other processes have been quiet for two consecutive seconds. */
export async function waitQuiet(maxMs, why) {
  const deadline = performance.now() + maxMs;
  let quiet = 0;
  let last = 0;
  let warned = false;
  while (performance.now() < deadline) {
    last = await foreignCpu(1000);
    quiet = last <= NOISE_PERCENT ? quiet + 1 : 0;
    if (quiet >= 2) return { waitedQuiet: true, foreign: last };
    if (!warned && last > NOISE_PERCENT) {
      log(`  (${why}: other processes use ${last}% CPU; waiting up to ${Math.round(maxMs / 1000)} s for quiet)`);
      warned = true;
    }
  }
  return { waitedQuiet: false, foreign: last };
}

