// Limits that hold (issue 11): slow bodies time out with 408, a 401 closes its connection, tokens under 16 characters
// are refused, --socket never replaces a file or a live socket, --data-dir is the sidecar user's alone, the embedded
// store has no TCP listener, and a transactional read never makes plain reads wait.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError, defaultMaxConnections, loadConfig, openFilesLimit } from '../src/config.js';
import type { EmbeddedDataPlane } from '../src/store/embedded/client.js';
import { cliEnv, launchCli } from './helpers/cli.js';
import { baseConfig, startTestSidecar, send } from './helpers/sidecar.js';
import { startSidecar } from '../src/server.js';

const RUN = randomUUID().slice(0, 8);
const TOKEN = `limits-${randomUUID()}`;

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-limits-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface RawExchange {
  /** Everything the server sent. */
  readonly text: string;
  /** ms from connect until the server closed the connection (undefined: still open when we gave up). */
  readonly closedAfterMs: number | undefined;
  /** Body bytes we managed to send. */
  readonly sent: number;
}

/**
 * Raw HTTP/1.1 on a TCP connection: `head`, then `body` one byte every `everyMs` (a trickling client), until the
 * server closes the connection or `giveUpMs` passes.
 */
async function trickle(port: number, head: string, body: string, everyMs: number, giveUpMs: number): Promise<RawExchange> {
  const socket: Socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const start = Date.now();
  let text = '';
  let closedAfterMs: number | undefined;
  let sent = 0;
  socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  void closed.then(() => (closedAfterMs = Date.now() - start));
  socket.write(head);
  const timer = setInterval(() => {
    if (sent < body.length && !socket.destroyed && socket.writable) socket.write(body[sent++]);
  }, everyMs);
  await Promise.race([closed, new Promise((r) => setTimeout(r, giveUpMs))]);
  clearInterval(timer);
  socket.destroy();
  return { text, closedAfterMs, sent };
}

const port = (url: string) => Number(new URL(url).port);
const bodyOf = (raw: string) => JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));

t.test('a body that trickles in is answered 408 ErrRequestTimeout and its connection closed', async (t) => {
  const s = await startTestSidecar({ requestTimeoutMs: 600 });
  t.teardown(() => s.close());
  const body = JSON.stringify({ PK: `${RUN}#SLOW`, SK: 'PROFILE', email: 'slow@example.com' });
  const head = `POST /v1/models/User/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  const res = await trickle(port(s.url), head, body, 100, 5_000);
  t.comment(`408 after ${res.closedAfterMs} ms, ${res.sent} of ${body.length} body bytes sent`);
  t.match(res.text, /^HTTP\/1\.1 408 /, '408 status line');
  t.match(res.text, /content-type: application\/problem\+json/i, 'problem+json');
  t.equal(bodyOf(res.text).code, 'ErrRequestTimeout', 'code ErrRequestTimeout');
  t.equal(bodyOf(res.text).status, 408);
  t.ok(res.closedAfterMs !== undefined && res.closedAfterMs >= 550 && res.closedAfterMs < 2_500, `closed after the timeout (${res.closedAfterMs} ms)`);
  t.ok(res.sent < body.length, 'the body had not finished');
  const read = await s.request('GET', `/v1/models/User/items/${encodeURIComponent(`${RUN}#SLOW`)}/PROFILE`);
  t.equal(read.status, 404, 'nothing was written');

  const quick = await s.request('POST', '/v1/models/User/items', { PK: `${RUN}#QUICK`, SK: 'PROFILE', email: 'q@example.com' });
  t.equal(quick.status, 201, 'a request that arrives in time is served');
});

t.test('request timeout: default 30 s, configurable, bounded', async (t) => {
  t.equal(loadConfig([], {}).config.requestTimeoutMs, 30_000, 'default 30000');
  t.equal(loadConfig(['--request-timeout-ms', '5000'], {}).config.requestTimeoutMs, 5_000, 'flag');
  t.equal(loadConfig([], { REQUEST_TIMEOUT_MS: '7000' }).config.requestTimeoutMs, 7_000, 'env');
  t.throws(() => loadConfig(['--request-timeout-ms', '0'], {}), { name: 'ConfigError' }, '0 (never) is refused');
});

t.test('a 401 closes the connection at once, without waiting for the body', async (t) => {
  const s = await startTestSidecar({ authToken: TOKEN });
  t.teardown(() => s.close());
  const body = 'x'.repeat(200);
  const head = `POST /v1/models/User/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  const res = await trickle(port(s.url), head, body, 50, 5_000);
  t.comment(`closed after ${res.closedAfterMs} ms, ${res.sent} of ${body.length} body bytes sent`);
  t.match(res.text, /^HTTP\/1\.1 401 /, '401 status line');
  t.match(res.text, /\r\nconnection: close\r\n/i, 'Connection: close');
  t.equal(bodyOf(res.text).code, 'ErrUnauthorized');
  t.ok(res.closedAfterMs !== undefined && res.closedAfterMs < 1_000, `the server closed the connection (${res.closedAfterMs} ms)`);
  t.ok(res.sent < body.length, 'before the body was complete');

  const idle = await send(s.url, 'GET', '/v1/models');
  t.equal(idle.status, 401);
  t.equal(idle.headers.get('connection'), 'close', 'every 401 says Connection: close');
  const authorized = await send(s.url, 'GET', '/v1/models', undefined, { authorization: `Bearer ${TOKEN}` });
  t.equal(authorized.status, 200, 'with the token: 200');
  t.not(authorized.headers.get('connection'), 'close', 'authorized connections stay keep-alive');
});

t.test('a bearer token shorter than 16 characters is refused at boot', async (t) => {
  for (const token of ['short', 'a'.repeat(15)]) {
    try {
      loadConfig(['--host', '0.0.0.0'], { AUTH_TOKEN: token });
      t.fail(`${token.length} characters accepted`);
    } catch (err) {
      t.ok(err instanceof ConfigError, `${token.length} characters: ConfigError`);
      t.match((err as Error).message, /at least 16 characters/);
      t.notOk((err as Error).message.includes(token), 'the token is not echoed');
    }
  }
  const dir = tempDir(t);
  const file = join(dir, 'token');
  writeFileSync(file, 'tooshort\n');
  t.throws(() => loadConfig(['--auth-token-file', file], {}), { name: 'ConfigError' }, 'from a file too');
  t.equal(loadConfig([], { AUTH_TOKEN: 'a'.repeat(16) }).config.authToken, 'a'.repeat(16), '16 characters: accepted');
});

t.test('--socket never replaces a regular file or a live socket', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'not-a-socket');
  writeFileSync(file, 'precious');
  await t.rejects(startSidecar({ ...baseConfig, socket: file }), { name: 'ConfigError', message: /is not a socket/ }, 'regular file refused');
  t.equal(readFileSync(file, 'utf8'), 'precious', 'the file is untouched');

  const live = join(dir, 'live.sock');
  const other = createServer((c) => c.on('error', () => {}).end('other instance\n'));
  other.listen(live);
  await once(other, 'listening');
  t.teardown(() => other.close());
  await t.rejects(startSidecar({ ...baseConfig, socket: live }), { name: 'ConfigError', message: /in use/ }, 'live socket refused');
  const still = connect(live);
  const [greeting] = await once(still.setEncoding('utf8'), 'data');
  still.destroy();
  t.equal(greeting, 'other instance\n', 'the other instance still answers on its socket');
});

t.test('--data-dir is 0700 and its files 0600', async (t) => {
  const parent = tempDir(t);
  const dataDir = join(parent, 'data');
  const s = await startTestSidecar({ dataDir });
  const created = await s.request('POST', '/v1/models/User/items', { PK: `${RUN}#PERM`, SK: 'PROFILE', email: 'p@example.com', taxId: 'x' });
  t.equal(created.status, 201);
  await s.close();
  const modes = (dir: string) => readdirSync(dir).map((name) => [name, statSync(join(dir, name)).mode & 0o777] as const);
  t.equal(statSync(dataDir).mode & 0o777, 0o700, 'directory 0700');
  const files = modes(dataDir);
  t.ok(files.length >= 3, `LevelDB files and the key are there (${files.map(([n]) => n).join(' ')})`);
  t.same(files.filter(([, mode]) => mode !== 0o600).map(([n, m]) => `${n} ${m.toString(8)}`), [], 'every file 0600');

  // An existing directory opened before this change is tightened on boot.
  chmodSync(dataDir, 0o755);
  for (const [name] of files) chmodSync(join(dataDir, name), 0o644);
  const again = await startTestSidecar({ dataDir });
  t.teardown(() => again.close());
  t.equal(statSync(dataDir).mode & 0o777, 0o700, 'reopened: directory 0700');
  t.same(modes(dataDir).filter(([, mode]) => mode !== 0o600).map(([n]) => n), [], 'reopened: every file 0600');
  t.equal((await again.request('GET', `/v1/models/User/items/${encodeURIComponent(`${RUN}#PERM`)}/PROFILE`)).status, 200, 'data still there');
});

/** TCP sockets in LISTEN state held by process `pid` (its fds matched against /proc/net/tcp{,6}). */
function listeningTcpSockets(pid: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A' && inodes.has(cols[9])) count++;
    }
  }
  return count;
}

t.test('the embedded store has no TCP listener and the ready log names no port for it', async (t) => {
  const cli = launchCli(['--port', '0'], cliEnv({ LOG_LEVEL: 'info' }));
  t.teardown(async () => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.done;
    }
  });
  let ready: Record<string, unknown> | undefined;
  for (let i = 0; i < 600 && !ready && cli.child.exitCode === null; i++) {
    const line = cli.out().split('\n').find((l) => l.includes('dynamorm sidecar ready'));
    if (line) ready = JSON.parse(line);
    else await new Promise((r) => setTimeout(r, 50));
  }
  if (!t.ok(ready, 'the CLI became ready')) return t.comment(cli.err().slice(0, 2000));
  t.equal(ready!.endpoint, undefined, `no endpoint in the ready log (${JSON.stringify(ready)})`);
  const listeners = listeningTcpSockets(cli.child.pid!);
  t.comment(`TCP listeners of the sidecar process: ${listeners}`);
  t.equal(listeners, 1, 'one TCP listener: the sidecar API itself');
  const base = String(ready!.url);
  const created = await send(base, 'POST', '/v1/models/User/items', { PK: `${RUN}#CLI`, SK: 'PROFILE', email: 'c@example.com' });
  t.equal(created.status, 201, 'the store works');
  cli.child.kill('SIGTERM');
  await cli.done;
});

t.test('the embedded store is served on a socket in a directory only this user can open', async (t) => {
  const s = await startSidecar({ ...baseConfig });
  t.teardown(() => s.close());
  t.equal(s.backend.endpoint, undefined, 'no TCP endpoint unless exposed');
  const viaHandler = (s.backend.dataPlane as EmbeddedDataPlane).store.socketPath;
  t.ok(viaHandler, `the client dials a Unix socket (${viaHandler})`);
  if (viaHandler) {
    t.ok(statSync(viaHandler).isSocket(), 'it is a socket');
    t.equal(statSync(join(viaHandler, '..')).mode & 0o777, 0o700, 'its directory is 0700');
  }
});

t.test('a transactional read holds the lock shared: plain reads do not wait for it', async (t) => {
  const s = await startTestSidecar();
  t.teardown(() => s.close());
  const client = s.sidecar.backend.dataPlane as EmbeddedDataPlane;
  const slow = `${RUN}#TX#SLOW`;
  const other = `${RUN}#TX#OTHER`;
  for (const PK of [slow, other]) {
    t.equal((await s.request('POST', '/v1/models/User/items', { PK, SK: 'PROFILE', email: 'tx@example.com' })).status, 201);
  }
  // The transactional read of `slow` is held open (its GetItem waits at a gate) for as long as the test wants.
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let held = false;
  // The store's GetItem, as the coordinator calls it: the transactional read of `slow` waits at the gate.
  const getItem = client.store.GetItem.bind(client.store);
  client.store.GetItem = async (input) => {
    if ((input as { Key?: { PK?: { S?: string } } }).Key?.PK?.S === slow) {
      held = true;
      await gate;
    }
    return getItem(input);
  };
  t.teardown(() => {
    release();
    client.store.GetItem = getItem;
  });
  const transactional = s.request('POST', '/v1/transactions/get', {
    items: [{ model: 'User', key: { PK: slow, SK: 'PROFILE' } }, { model: 'User', key: { PK: other, SK: 'PROFILE' } }],
  });
  for (let i = 0; i < 200 && !held; i++) await new Promise((r) => setTimeout(r, 10));
  t.ok(held, 'the transactional read is in flight');
  t.same({ writer: client.lock.state.writer, readers: client.lock.state.readers }, { writer: false, readers: 1 }, 'it holds the lock shared');

  const started = performance.now();
  const plain = await Promise.race([
    s.request('GET', `/v1/models/User/items/${encodeURIComponent(other)}/PROFILE`),
    new Promise<undefined>((r) => setTimeout(() => r(undefined), 3_000)),
  ]);
  const ms = Math.round(performance.now() - started);
  t.comment(`plain GET during the held transactional read: ${plain?.status ?? 'no answer'} after ${ms} ms`);
  t.equal(plain?.status, 200, 'a plain GET is answered while the transactional read is held');
  const query = await s.request('POST', '/v1/models/User/query', { partition: other });
  t.equal(query.status, 200, 'so is a query');

  release();
  const done = await transactional;
  t.equal(done.status, 200, 'the transactional read completes once let go');
  t.same(done.json?.items?.map((i: { PK?: string } | null) => i?.PK), [slow, other]);
});

t.test('--max-connections: default from the open-files limit, minus a reserve', async (t) => {
  const limitsFile = join(tempDir(t), 'limits');
  writeFileSync(limitsFile, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n');
  t.equal(openFilesLimit(limitsFile), 1024, 'soft limit read from /proc/self/limits');
  t.equal(openFilesLimit(join(tmpdir(), `absent-${RUN}`)), undefined, 'unreadable: undefined');
  t.equal(defaultMaxConnections(1024), 768, '1024 → 768 (256 kept)');
  t.equal(defaultMaxConnections(256), 192, '256 → 192 (64 kept)');
  t.equal(defaultMaxConnections(1_048_576), 1_047_552, 'large limits keep 1024');
  t.equal(defaultMaxConnections(undefined), 768, 'unknown → 768, under Lambda\'s 1024');
  t.equal(loadConfig([], {}).config.maxConnections, defaultMaxConnections(openFilesLimit()), 'loadConfig uses it');
  t.equal(loadConfig(['--max-connections', '50'], {}).config.maxConnections, 50, 'flag');
  t.equal(loadConfig([], { MAX_CONNECTIONS: '60' }).config.maxConnections, 60, 'env');
  t.throws(() => loadConfig(['--max-connections', '0'], {}), { name: 'ConfigError' });
});
