// The bundled Lambda extension under AWS's own Runtime Interface Emulator (aws-lambda-rie), no Docker: the layer
// is bind-mounted over /opt in a private mount namespace (RIE reads extensions only from /opt/extensions), and a
// small custom runtime (`bootstrap`) polls the Runtime API and sends each event's request to the sidecar on
// loopback. DynamoDB is dynalite behind a delaying proxy. Asserts: registration and a first invocation served;
// an invocation's deadlineMs bounds a slow request without X-Request-Timeout-Ms (504 before the deadline); SIGTERM
// → SHUTDOWN drains a request in flight; an init error (broken models) is reported with its type.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { startTestSidecar, send } from './helpers/sidecar.js';
import { startDelayProxy } from './helpers/delay-proxy.js';
import { freePort } from './helpers/net.js';
import { tools, withTool } from './helpers/tools.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const TOKEN = 'rie-session-token';

const BOOTSTRAP = `// Custom runtime: each event {method, path, body?, headers?} goes to the sidecar on loopback; the answer (status,
// body, when it came, the invocation's deadline) is the invocation's response.
const api = 'http://' + process.env.AWS_LAMBDA_RUNTIME_API + '/2018-06-01/runtime';
const sidecar = 'http://127.0.0.1:' + process.env.PORT;
for (;;) {
  const next = await fetch(api + '/invocation/next');
  const id = next.headers.get('lambda-runtime-aws-request-id');
  const deadlineMs = Number(next.headers.get('lambda-runtime-deadline-ms'));
  const event = await next.json();
  const started = Date.now();
  let out;
  try {
    const res = await fetch(sidecar + event.path, {
      method: event.method ?? 'GET',
      headers: { authorization: 'Bearer ' + process.env.AWS_SESSION_TOKEN, ...(event.body ? { 'content-type': 'application/json' } : {}), ...(event.headers ?? {}) },
      body: event.body ? JSON.stringify(event.body) : undefined,
    });
    out = { status: res.status, body: await res.json().catch(() => null), started, answeredAt: Date.now(), deadlineMs };
  } catch (err) {
    out = { error: String(err), started, answeredAt: Date.now(), deadlineMs };
  }
  await fetch(api + '/invocation/' + id + '/response', { method: 'POST', body: JSON.stringify(out) });
}
`;

interface Rie {
  readonly child: ChildProcess;
  readonly output: () => string;
  invoke(event: unknown): Promise<{ status: number; text: string; json: any }>;
  waitFor(pattern: RegExp, ms: number): Promise<boolean>;
  stop(): Promise<void>;
}

function canConnect(address: string): Promise<boolean> {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const socket = connect(Number(port), host!);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

/** RIE in a private mount namespace with `layer` bind-mounted on /opt. */
async function startRie(bin: string, layer: string, task: string, env: Record<string, string>): Promise<Rie> {
  const runtimeApi = `127.0.0.1:${await freePort()}`;
  const emulator = `127.0.0.1:${await freePort()}`;
  const script = 'mount --bind "$LAYER" /opt && exec "$RIE" --runtime-api-address "$RUNTIME_API" --runtime-interface-emulator-address "$EMULATOR" "$TASK/bootstrap"';
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
    cwd: task,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LAYER: layer, RIE: bin, RUNTIME_API: runtimeApi, EMULATOR: emulator, TASK: task, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const rie: Rie = {
    child,
    output: () => output,
    async invoke(event) {
      const res = await fetch(`http://${emulator}/2015-03-31/functions/function/invocations`, { method: 'POST', body: JSON.stringify(event) });
      const text = await res.text();
      let json: any;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, text, json };
    },
    waitFor: (pattern, ms) => waitUntil(() => pattern.test(output), ms),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    },
  };
  // The emulator answers once it listens (init runs at the first invoke).
  let listening = false;
  const end = Date.now() + 10_000;
  while (!listening && child.exitCode === null && Date.now() < end) {
    listening = await canConnect(emulator);
    if (!listening) await new Promise((r) => setTimeout(r, 50));
  }
  const up = listening;
  if (!up || child.exitCode !== null) throw new Error(`aws-lambda-rie did not start:\n${output}`);
  return rie;
}

await withTool(t, tools.rie(), "the bundled extension under AWS's Runtime Interface Emulator", async (t: Test, rieBin: string) => {
  const work = mkdtempSync(path.join(tmpdir(), 'dynamorm-rie-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const built = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'bundle.mjs'), '--out', path.join(work, 'bundle'), '--quiet'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  if (built.status !== 0) throw new Error(`bundle failed: ${built.stderr}${built.stdout}`);
  const layer = path.join(work, 'bundle', 'layer');
  const task = path.join(work, 'task');
  mkdirSync(task);
  writeFileSync(path.join(task, 'bootstrap.mjs'), BOOTSTRAP);
  writeFileSync(path.join(task, 'bootstrap'), `#!/bin/sh\nexec "${process.execPath}" "$(dirname "$0")/bootstrap.mjs"\n`);
  chmodSync(path.join(task, 'bootstrap'), 0o755);

  const host = await startTestSidecar();
  t.teardown(() => host.close());
  const proxy = await startDelayProxy(host.sidecar.backend.endpoint!);
  t.teardown(() => proxy.close());
  const pk = `RIE#${Date.now()}`;
  const itemPath = `/v1/models/User/items/${encodeURIComponent(pk)}/PROFILE`;
  t.equal((await host.request('POST', '/v1/models/User/items', { PK: pk, SK: 'PROFILE', email: 'rie@example.com' })).status, 201, 'seed item');

  const port = await freePort();
  const env = {
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_SESSION_TOKEN: TOKEN,
    AWS_REGION: 'us-east-1',
    DYNAMODB_ENDPOINT: proxy.url,
    PORT: String(port),
    // 4 s: the first invocation includes the sidecar's cold start, which a busy CI machine can stretch past 2 s.
    AWS_LAMBDA_FUNCTION_TIMEOUT: '4',
    LOG_LEVEL: 'info',
  };

  await t.test('registration, an INVOKE deadline bounding a slow request, SHUTDOWN draining', async (t) => {
    const rie = await startRie(rieBin, layer, task, env);
    t.teardown(() => rie.stop());

    const first = await rie.invoke({ path: itemPath });
    t.equal(first.status, 200, `first invocation answered (${first.text.slice(0, 300)})`);
    t.equal(first.json?.status, 200, 'the function read the item through the sidecar');
    t.equal(first.json?.body?.email, 'rie@example.com', 'the stored item');
    t.match(rie.output(), /registered with the Extensions API/, 'the extension registered');
    t.match(rie.output(), /dynamorm sidecar ready/, 'the sidecar started during init');

    proxy.delay = (op) => (op === 'GetItem' ? 8_000 : 0);
    const slow = await rie.invoke({ path: itemPath });
    proxy.delay = () => 0;
    const r = slow.json ?? {};
    t.equal(r.status, 504, `an 8 s backend under a 4 s invocation: 504 (${slow.text.slice(0, 300)})`);
    t.equal(r.body?.code, 'ErrDeadlineExceeded', 'ErrDeadlineExceeded');
    t.match(r.body?.detail, /Lambda invocation/, "bounded by the invocation's deadline");
    t.ok(r.answeredAt <= r.deadlineMs - 50, `answered ${r.deadlineMs - r.answeredAt} ms before the invocation's deadlineMs (≥ 50: time left to act on it)`);
    t.ok(r.answeredAt - r.started >= 1_000, `after waiting ${r.answeredAt - r.started} ms for the backend`);
    t.comment(`INVOKE deadline: 504 after ${r.answeredAt - r.started} ms, ${r.deadlineMs - r.answeredAt} ms before deadlineMs`);

    // A request in flight when SHUTDOWN comes (SIGTERM to the emulator) is answered before the extension exits.
    proxy.delay = (op) => (op === 'GetItem' ? 700 : 0);
    const started = Date.now();
    const inflight = send(`http://127.0.0.1:${port}`, 'GET', itemPath, undefined, { authorization: `Bearer ${TOKEN}`, 'x-request-timeout-ms': '5000' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    rie.child.kill('SIGTERM');
    const res = await inflight;
    proxy.delay = () => 0;
    t.equal(res.status, 200, `the in-flight request was answered (${Date.now() - started} ms)`);
    t.ok(await rie.waitFor(/shutdown: drained/, 5_000), 'the extension logged that it drained');
    await rie.stop();
    t.notMatch(rie.output(), /not finished before the deadline/, 'draining was not cut short');
  });

  await t.test('an init error (broken models) is reported to Lambda with its type', async (t) => {
    const broken = path.join(work, 'broken-schemas');
    mkdirSync(broken);
    writeFileSync(path.join(broken, 'bad.yml'), 'dms_version: "0.1"\nmodels: [ {name: 7} ]\n');
    const rie = await startRie(rieBin, layer, task, { ...env, SCHEMAS_DIR: broken });
    t.teardown(() => rie.stop());
    const res = await rie.invoke({ path: itemPath });
    t.not(res.status, 200, `the invocation failed (${res.status} ${res.text.slice(0, 300)})`);
    t.ok(await rie.waitFor(/First fatal error stored in appctx: Extension\.InitError/, 5_000), "the emulator received the extension's /init/error (not a crash)");
    t.match(rie.output(), /"errorType":"Extension\.InvalidModels","msg":"init failed: Invalid DMS models/, 'reported as Extension.InvalidModels, naming the problem');
  });
});
