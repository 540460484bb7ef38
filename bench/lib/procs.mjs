// Child processes for the benchmark: spawning (pinned to a core with taskset when it works), waiting for
// readiness, and reading CPU time and RSS of a pid from /proc.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();
const PAGE = (() => {
  try {
    return Number(execFileSync('getconf', ['PAGESIZE']).toString().trim()) || 4096;
  } catch {
    return 4096;
  }
})();

/** taskset can pin here (present and allowed to set affinity), and the cores it can use. */
export function tasksetInfo() {
  const probe = spawnSync('taskset', ['-c', '0', 'true']);
  const ok = probe.status === 0;
  let cpus = [];
  if (ok) {
    const out = spawnSync('taskset', ['-pc', String(process.pid)]).stdout?.toString() ?? '';
    const list = out.split(':').pop()?.trim() ?? '';
    for (const part of list.split(',')) {
      const [a, b] = part.split('-').map(Number);
      if (Number.isInteger(a)) for (let c = a; c <= (Number.isInteger(b) ? b : a); c++) cpus.push(c);
    }
  }
  return { available: ok, cpus };
}

let PINNING = false;
export function enablePinning(on) {
  PINNING = on;
}

/** Pin an existing process (all its threads) to `cpu`. */
export function pinPid(pid, cpu) {
  if (!PINNING || cpu === undefined) return false;
  return spawnSync('taskset', ['-a', '-pc', String(cpu), String(pid)]).status === 0;
}

/** Spawn `node args…` (pinned to `cpu`), stdout/stderr piped; keeps the last lines of output for errors. */
export function spawnNode(args, { cpu, env, ipc = false, nodeArgs = [] } = {}) {
  const cmd = PINNING && cpu !== undefined ? 'taskset' : process.execPath;
  const argv = PINNING && cpu !== undefined ? ['-c', String(cpu), process.execPath, ...nodeArgs, ...args] : [...nodeArgs, ...args];
  const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])] });
  const tail = [];
  const keep = (chunk) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      tail.push(line);
      if (tail.length > 40) tail.shift();
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.tail = tail;
  child.exited = once(child, 'exit');
  return child;
}

/** Resolves with the first stdout line that parses as JSON (our helper servers announce their port that way). */
export function firstJsonLine(child, timeoutMs = 15_000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no JSON line within ${timeoutMs} ms: ${child.tail.join('\n')}`)), timeoutMs);
    const onData = (chunk) => {
      buf += chunk.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const value = JSON.parse(line);
          clearTimeout(timer);
          child.stdout.off('data', onData);
          resolve(value);
          return;
        } catch {
          /* not ours */
        }
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before announcing: ${child.tail.join('\n')}`));
    });
  });
}

export async function stop(child, signal = 'SIGTERM', timeoutMs = 10_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await child.exited;
  clearTimeout(timer);
}

export async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** One HTTP request to the sidecar (TCP port or Unix socket); resolves {status, body}. */
export function request(where, method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...(where.socketPath ? { socketPath: where.socketPath } : { host: '127.0.0.1', port: where.port }),
        method,
        path,
        agent: false,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  });
}

/** Poll /readyz every `everyMs` until 200; resolves the time (performance.now()) of the first 200. */
export async function waitReady(where, child, { timeoutMs = 120_000, everyMs = 5 } = {}) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sidecar exited (${child.exitCode}): ${child.tail.join('\n')}`);
    try {
      const res = await request(where, 'GET', '/readyz');
      if (res.status === 200) return performance.now();
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`sidecar not ready within ${timeoutMs} ms: ${child.tail.join('\n')}`);
}

/** CPU ticks (user+system, all threads) and RSS bytes of `pid`, from /proc. */
export function procSample(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is state (field 3); utime is field 14, stime 15, rss 24.
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const rssPages = Number(fields[21]);
    return { at: performance.now(), ticks: utime + stime, rss: rssPages * PAGE };
  } catch {
    return undefined;
  }
}

/** % of one core used by `pid` between two samples. */
export function cpuPercent(a, b) {
  if (!a || !b || b.at <= a.at) return null;
  return Math.round(((b.ticks - a.ticks) / CLK_TCK / ((b.at - a.at) / 1000)) * 1000) / 10;
}

export const MB = (bytes) => Math.round((bytes / 1024 / 1024) * 10) / 10;

/** Machine-wide busy CPU time (all cores, in ticks) from /proc/stat, to tell how much other work ran meanwhile. */
export function machineSample() {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …
    const idle = first[3] + (first[4] ?? 0);
    const total = first.slice(0, 8).reduce((a, b) => a + b, 0);
    return { at: performance.now(), busy: total - idle };
  } catch {
    return undefined;
  }
}

/** % of one core the whole machine was busy between two machineSample()s. */
export function machinePercent(a, b) {
  if (!a || !b || b.at <= a.at) return null;
  return Math.round(((b.busy - a.busy) / CLK_TCK / ((b.at - a.at) / 1000)) * 1000) / 10;
}
