// Drill: descriptor exhaustion. The CLI runs under `ulimit -n 256`; 400 idle TCP connections are opened and held.
//   - default --max-connections (from the limit: 192): the connections over the cap are closed at once, the process
//     never runs out of descriptors, stays up, and answers /healthz once the connections are gone;
//   - --max-connections 100000 (no effective cap): accept() hits EMFILE; the process must still stay up (no timer or
//     listener error may take it down; the old load shedder's process.memoryUsage() sampling did, exit 1) and
//     answer /healthz afterwards.
// Prints descriptors of the sidecar (idle, holding, after) and how many connections were held or closed.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { defaultMaxConnections } from '../../src/config.js';
import { CLI, ROOT, cliEnv } from '../helpers/cli.js';
import { send } from '../helpers/sidecar.js';

const NOFILE = 256;
const CONNECTIONS = 400;
const HOLD_MS = 2_500;

const descriptors = (pid: number): number => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
};

async function drill(t: Test, extraArgs: string[], cap?: number): Promise<void> {
  const child = spawn('bash', ['-c', `ulimit -n ${NOFILE} && exec "$0" "$@"`, process.execPath, CLI, '--port', '0', ...extraArgs], {
    cwd: ROOT,
    env: cliEnv({ LOG_LEVEL: 'info' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = once(child, 'exit');
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  let url: string | undefined;
  for (let i = 0; i < 600 && !url && child.exitCode === null; i++) {
    url = /"url":"(http:\/\/[^"]+)"/.exec(stdout)?.[1];
    if (!url) await delay(50);
  }
  if (!t.ok(url, 'the sidecar became ready')) return t.comment(stderr.slice(0, 2000));
  const port = Number(new URL(url!).port);
  const pid = child.pid!;
  const idle = descriptors(pid);

  const sockets: Socket[] = [];
  let closedByServer = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      socket.on('error', () => {});
      socket.once('close', () => closedByServer++);
      try {
        await once(socket, 'connect');
      } catch {
        failed++;
      }
    }),
  );
  await delay(HOLD_MS);
  const holding = descriptors(pid);
  const refused = closedByServer;
  const held = CONNECTIONS - refused;
  const aliveWhileHeld = child.exitCode === null && child.signalCode === null;
  for (const s of sockets) s.destroy();
  await delay(500);
  const health = aliveWhileHeld ? await send(url!, 'GET', '/healthz').catch((err: Error) => ({ status: 0, text: err.message })) : undefined;
  const after = descriptors(pid);
  const scrape = aliveWhileHeld ? await send(url!, 'GET', '/metrics').catch(() => undefined) : undefined;
  const dropped = Number(/^dynamorm_http_connections_dropped_total (\d+)$/m.exec(scrape?.text ?? '')?.[1] ?? NaN);
  t.comment(
    `descriptors (limit ${NOFILE}): idle ${idle}, holding ${holding}, after ${after}; ` +
      `connections: ${CONNECTIONS} opened, ${held} held, ${refused} closed by the server at once (${dropped} counted as dropped), ${failed} failed to connect; ` +
      `exit ${child.exitCode ?? 'none'}`,
  );
  t.ok(aliveWhileHeld, 'the process stayed up while the connections were held');
  if (cap !== undefined) {
    t.equal(held, cap, `exactly the cap (${cap}) was held`);
    t.equal(dropped, CONNECTIONS - cap, `the rest were dropped on arrival and counted (${dropped})`);
  }
  t.equal(health?.status, 200, '/healthz answers once they are gone');
  t.ok(child.exitCode === null && child.signalCode === null, 'still running');
  t.notMatch(stderr, /EMFILE/, 'no EMFILE reached stderr (no crash report)');
  t.ok(after >= 0 && after <= idle + 8, `descriptors back to idle (${idle} → ${after})`);
  child.kill('SIGTERM');
  const [code] = await exited;
  t.equal(code, 0, 'clean shutdown on SIGTERM');
}

t.test(`default --max-connections under ulimit -n ${NOFILE}: excess connections closed, process up`, async (t) => {
  await drill(t, [], defaultMaxConnections(NOFILE));
});

t.test(`--max-connections 100000 under ulimit -n ${NOFILE}: accept hits EMFILE, process still up`, async (t) => {
  await drill(t, ['--max-connections', '100000']);
});
