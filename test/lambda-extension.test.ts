// The Lambda extension, as shipped: `scripts/bundle.mjs` builds the layer into a temporary directory and the test
// runs its launcher (layer/extensions/dynamorm-sidecar → node layer/dynamorm-sidecar/extension.mjs) against a fake
// Extensions API. DynamoDB is an embedded sidecar's dynalite, reached through a proxy that can slow PutItem down.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { FakeExtensionsApi } from './helpers/extensions-api.js';
import { startOtlpReceiver } from './helpers/otlp.js';
import { send, startTestSidecar, type TestResponse } from './helpers/sidecar.js';
import { freePort } from './helpers/net.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SESSION_TOKEN = 'sess-token-xyz';
const BEARER = { authorization: `Bearer ${SESSION_TOKEN}` };

// ---- the bundle ---------------------------------------------------------------------------------------------------

const OUT = mkdtempSync(path.join(tmpdir(), 'dynamorm-lambda-'));
t.teardown(() => rmSync(OUT, { recursive: true, force: true }));
const built = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'bundle.mjs'), '--out', OUT, '--quiet'], {
  cwd: ROOT,
  encoding: 'utf8',
});
if (built.status !== 0) throw new Error(`bundle failed (${built.status}): ${built.stderr}${built.stdout}`);
const LAYER = path.join(OUT, 'layer');
const LAUNCHER = path.join(LAYER, 'extensions', 'dynamorm-sidecar');

// ---- DynamoDB: embedded sidecar's dynalite behind a proxy that can delay PutItem -------------------------------

const store = await startTestSidecar();
t.teardown(() => store.close());

interface DelayProxy {
  readonly url: string;
  /** PutItem requests seen so far. */
  puts: number;
  putDelayMs: number;
  close(): Promise<void>;
}

async function startProxy(target: string): Promise<DelayProxy> {
  const upstream = new URL(target);
  const timers = new Set<NodeJS.Timeout>();
  const proxy: DelayProxy = {
    url: '',
    puts: 0,
    putDelayMs: 0,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const isPut = String(req.headers['x-amz-target'] ?? '').endsWith('.PutItem');
    if (isPut) proxy.puts += 1;
    const forward = () => {
      const out = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      out.on('error', () => res.destroy());
      out.end(Buffer.concat(chunks));
    };
    if (isPut && proxy.putDelayMs > 0) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        forward();
      }, proxy.putDelayMs);
      timers.add(timer);
    } else {
      forward();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(proxy, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

const proxy = await startProxy(store.sidecar.backend.endpoint!);
t.teardown(() => proxy.close());

// ---- the extension process ----------------------------------------------------------------------------------------


interface Extension {
  readonly child: ChildProcess;
  readonly url: string;
  output(): string;
  /** Exit code and the time of exit. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

const children = new Set<ChildProcess>();
t.teardown(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Runs the layer's launcher with a Lambda-like environment (nothing inherited but PATH). */
async function launch(fake: FakeExtensionsApi, extra: Record<string, string> = {}): Promise<Extension> {
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    DYNAMORM_NODE: process.execPath,
    AWS_LAMBDA_RUNTIME_API: fake.runtimeApi,
    AWS_LAMBDA_FUNCTION_NAME: fake.functionName,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDLAMBDATEST',
    AWS_SECRET_ACCESS_KEY: 'lambda-test-secret',
    AWS_SESSION_TOKEN: SESSION_TOKEN,
    AWS_EC2_METADATA_DISABLED: 'true',
    DYNAMODB_ENDPOINT: proxy.url,
    PORT: String(port),
    LOG_LEVEL: 'info',
    ...extra,
  };
  const child = spawn(LAUNCHER, [], { cwd: tmpdir(), env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.on('exit', (code, signal) => {
      const at = Date.now();
      children.delete(child);
      resolve({ code, signal, at });
    });
  });
  return { child, url: `http://127.0.0.1:${port}`, output: () => output, exited };
}

/** A request on a fresh connection (no pooled keep-alive socket): does the server still accept new connections? */
function freshRequest(url: string, reqPath: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = httpRequest(`${url}${reqPath}`, { agent: false, headers: { ...BEARER, connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

/** Polls `predicate` every 5 ms. */
async function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const order = (customer: string, orderNo: number) => ({ customer_id: customer, order_no: orderNo, total: orderNo * 10, currency: 'EUR' });

// ---- tests --------------------------------------------------------------------------------------------------------

t.test('the layer layout', async (t) => {
  const launcher = statSync(LAUNCHER);
  t.ok(launcher.mode & 0o111, 'extensions/dynamorm-sidecar is executable');
  t.ok(statSync(path.join(LAYER, 'dynamorm-sidecar', 'extension.mjs')).size > 0, 'dynamorm-sidecar/extension.mjs');
  t.ok(statSync(path.join(LAYER, 'dynamorm-sidecar', 'schemas', 'orders.yml')).isFile(), 'dynamorm-sidecar/schemas/');
  t.ok(statSync(path.join(OUT, 'cli.mjs')).size > 0, 'cli.mjs');
});

t.test('error classes keep their names in the minified bundle (logs show err.type by constructor name)', async (t) => {
  const bundle = readFileSync(path.join(LAYER, 'dynamorm-sidecar', 'extension.mjs'), 'utf8');
  for (const name of ['MissingTablesError', 'ConfigError', 'DmsLoadError', 'PartnerConfigError', 'BootError', 'SidecarError']) {
    // esbuild's keepNames: `static{__name(this,"X")}` or `__name(cls,"X")` next to each minified class.
    t.match(bundle, new RegExp(`\\w\\((?:this|\\w+),"${name}"\\)`), `${name} keeps its name`);
  }
});

t.test('register, serve between events, drain on SHUTDOWN', async (t) => {
  const fake = await FakeExtensionsApi.start();
  t.teardown(() => fake.close());
  const ext = await launch(fake);
  t.teardown(() => void (ext.child.exitCode === null && ext.child.kill('SIGKILL')));
  const run = `r${Date.now().toString(36)}`;

  await fake.until(() => fake.registrations.length > 0, 'registration');
  const [registration] = fake.registrations;
  t.equal(registration.path, '/2020-01-01/extension/register', 'POST /2020-01-01/extension/register');
  t.equal(registration.method, 'POST');
  t.equal(registration.headers['lambda-extension-name'], 'dynamorm-sidecar', 'Lambda-Extension-Name is the launcher file name');
  t.same(registration.json, { events: ['INVOKE', 'SHUTDOWN'] }, 'registers for INVOKE and SHUTDOWN');
  t.equal(fake.calls[0], registration, 'registration is the first call to the API');

  // Init is over when the first /event/next arrives: the sidecar must already be listening.
  await fake.waitForPoll(1);
  t.equal(fake.delivered.length, 0, 'no event released yet');
  t.equal(fake.calls.find((c) => c.path.endsWith('/event/next'))?.headers['lambda-extension-identifier'], fake.identifier, 'next carries the identifier');
  const models = await send(ext.url, 'GET', '/v1/models', undefined, BEARER);
  t.equal(models.status, 200, 'answers during init, while /event/next is pending');
  t.ok(fake.pending && fake.delivered.length === 0, 'still before the first event');
  const created = await send(ext.url, 'POST', '/v1/models/Order/items', order(run, 1), BEARER);
  t.equal(created.status, 201, 'writes before the first event');

  // Caller auth: the function's session token as a bearer token.
  const unauth: [string, TestResponse][] = [
    ['no token', await send(ext.url, 'GET', '/v1/models')],
    ['wrong token', await send(ext.url, 'GET', '/v1/models', undefined, { authorization: 'Bearer not-the-session-token' })],
    ['token without Bearer', await send(ext.url, 'GET', '/v1/models', undefined, { authorization: SESSION_TOKEN })],
    ['write without token', await send(ext.url, 'POST', '/v1/models/Order/items', order(run, 99))],
  ];
  for (const [what, res] of unauth) {
    t.equal(res.status, 401, `${what}: 401`);
    t.equal(res.json?.code, 'ErrUnauthorized', `${what}: ErrUnauthorized`);
  }
  t.equal((await send(ext.url, 'GET', '/healthz')).status, 200, '/healthz needs no token');

  // Between INVOKE events.
  for (let i = 2; i <= 3; i++) {
    const invoke = fake.invoke();
    await fake.waitForPoll(i);
    t.same(fake.delivered.at(-1)?.event, invoke, `INVOKE #${i - 1} delivered`);
    const read = await send(ext.url, 'GET', `/v1/models/Order/items/${run}/1`, undefined, BEARER);
    t.equal(read.status, 200, `read after INVOKE #${i - 1}`);
    t.equal(read.json?.currency, 'EUR');
    const patched = await send(ext.url, 'PATCH', `/v1/models/Order/items/${run}/1`, { set: { total: 100 + i } }, BEARER);
    t.equal(patched.status, 200, `update after INVOKE #${i - 1}`);
  }
  const fromStore = await store.request('GET', `/v1/models/Order/items/${run}/1`);
  t.equal(fromStore.json?.total, 103, 'writes reached the shared DynamoDB');
  t.equal(fromStore.json?.version, 2);

  // SHUTDOWN with 20 slow writes in flight.
  proxy.putDelayMs = 300;
  t.teardown(() => void (proxy.putDelayMs = 0));
  const putsBefore = proxy.puts;
  const writes = Array.from({ length: 20 }, (_, i) =>
    send(ext.url, 'POST', '/v1/models/Order/items', order(`${run}-drain`, i + 1), BEARER).then(
      (res) => ({ i: i + 1, status: res.status as number | string }),
      (err: Error) => ({ i: i + 1, status: `${(err.cause as NodeJS.ErrnoException)?.code ?? err.message}` }),
    ),
  );
  // Every write is inside the sidecar (its PutItem reached the slow DynamoDB) when SHUTDOWN is released.
  await waitFor(() => proxy.puts - putsBefore >= 20, '20 PutItem calls in flight');
  const deadlineMs = Date.now() + 2_000;
  fake.shutdown(deadlineMs);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const late = await freshRequest(ext.url, '/v1/models');
  t.not(late, 200, `no new connection is served while draining (got ${late})`);

  const exit = await withTimeout(ext.exited, 10_000, 'extension exit');
  t.equal(exit.code, 0, 'exit code 0');
  t.ok(exit.at < deadlineMs, `exited ${deadlineMs - exit.at} ms before the deadline`);
  const results = await Promise.all(writes);
  const ok = results.filter((r) => typeof r.status === 'number' && r.status >= 200 && r.status < 300);
  t.equal(ok.length, 20, `every in-flight write was answered 2xx (${JSON.stringify(results.filter((r) => !ok.includes(r)))})`);
  for (const { i } of ok) {
    const item = await store.request('GET', `/v1/models/Order/items/${run}-drain/${i}?consistent=true`);
    t.equal(item.status, 200, `acknowledged write #${i} is in the store`);
  }
  t.match(ext.output(), /shutdown: drained/, 'logged the drain');
  t.equal(fake.initErrors.length + fake.exitErrors.length, 0, 'no error reported to Lambda');
});

t.test("INVOKE: the invocation's deadlineMs bounds requests that bring no X-Request-Timeout-Ms", async (t) => {
  const fake = await FakeExtensionsApi.start();
  t.teardown(() => fake.close());
  const ext = await launch(fake);
  t.teardown(() => void (ext.child.exitCode === null && ext.child.kill('SIGKILL')));
  const run = `d${Date.now().toString(36)}`;
  await fake.waitForPoll(1);
  proxy.putDelayMs = 3_000;
  t.teardown(() => void (proxy.putDelayMs = 0));
  const invoke = fake.invoke({ deadlineMs: Date.now() + 600 });
  await fake.waitForPoll(2);
  const res = await send(ext.url, 'POST', '/v1/models/Order/items', order(run, 1), BEARER);
  const answeredAt = Date.now();
  t.equal(res.status, 504, `a 3 s PutItem under a 600 ms invocation: 504 (${res.text.slice(0, 200)})`);
  t.equal(res.json?.code, 'ErrDeadlineExceeded', 'ErrDeadlineExceeded');
  t.match(res.json?.detail, /Lambda invocation/, "bounded by the invocation's deadline");
  t.ok(answeredAt <= invoke.deadlineMs, `answered ${invoke.deadlineMs - answeredAt} ms before deadlineMs`);
  const header = await send(ext.url, 'GET', '/v1/models/Order/items/none/1', undefined, { ...BEARER, 'x-request-timeout-ms': 'soon' });
  t.equal(header.status, 400, 'a malformed X-Request-Timeout-Ms is still a 400 inside Lambda');
  proxy.putDelayMs = 0;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, invoke.deadlineMs - Date.now()) + 20));
  const after = await send(ext.url, 'POST', '/v1/models/Order/items', order(run, 2), BEARER);
  t.equal(after.status, 201, 'once the invocation deadline has passed, requests are not bounded by it');
  fake.shutdown(Date.now() + 2_000);
  t.equal((await withTimeout(ext.exited, 5_000, 'exit after SHUTDOWN')).code, 0, 'exits 0 on SHUTDOWN');
});

t.test('SHUTDOWN: exits before the deadline even when requests are stuck', async (t) => {
  const fake = await FakeExtensionsApi.start();
  t.teardown(() => fake.close());
  const ext = await launch(fake);
  t.teardown(() => void (ext.child.exitCode === null && ext.child.kill('SIGKILL')));
  await fake.waitForPoll(1);
  proxy.putDelayMs = 20_000;
  t.teardown(() => void (proxy.putDelayMs = 0));
  const putsBefore = proxy.puts;
  const run = `s${Date.now().toString(36)}`;
  const outcomes: string[] = [];
  const writes = [1, 2, 3].map((i) =>
    send(ext.url, 'POST', '/v1/models/Order/items', order(run, i), BEARER).then(
      (res) => void outcomes.push(`${res.status} ${res.text}`),
      (err: Error) => void outcomes.push(`${err.message}: ${(err.cause as Error)?.message}`),
    ),
  );
  await waitFor(() => proxy.puts - putsBefore >= 3, 'stuck PutItem calls').catch((err: Error) => {
    throw new Error(`${err.message}; writes: ${JSON.stringify(outcomes)}; output: ${ext.output()}`);
  });
  const deadlineMs = Date.now() + 1_000;
  fake.shutdown(deadlineMs, 'timeout');
  const exit = await withTimeout(ext.exited, 10_000, 'extension exit');
  t.equal(exit.code, 0, 'exit code 0');
  // The extension gives up SHUTDOWN_MARGIN_MS (200 ms) before the deadline; its own log says when. Seen from
  // here the exit also includes this process's scheduling, so it is checked with some slack.
  const gaveUp = ext
    .output()
    .split('\n')
    .filter((line) => line.includes('not finished before the deadline'))
    .map((line) => JSON.parse(line) as { time: number; msLeft: number })[0];
  t.ok(gaveUp, 'logged the unfinished drain');
  // The margin is 200 ms; timers and Date.now() differ by a millisecond or two, hence the slack.
  t.ok(gaveUp && gaveUp.msLeft > 0 && gaveUp.msLeft <= 210, `gave up ${gaveUp?.msLeft} ms before the deadline`);
  t.ok(exit.at < deadlineMs + 150, `exit seen ${deadlineMs - exit.at} ms before the deadline`);
  t.ok(exit.at > deadlineMs - 600, 'waited for the drain until the margin');
  await Promise.all(writes);
});

t.test('SHUTDOWN exports the spans still queued (OTEL_EXPORTER_OTLP_ENDPOINT)', async (t) => {
  const receiver = await startOtlpReceiver();
  t.teardown(() => receiver.close());
  const fake = await FakeExtensionsApi.start();
  t.teardown(() => fake.close());
  // A minute's batching delay: only the flush at SHUTDOWN can export the span before the process exits.
  const ext = await launch(fake, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '60000' });
  t.teardown(() => void (ext.child.exitCode === null && ext.child.kill('SIGKILL')));
  await fake.waitForPoll(1);
  const traceId = randomBytes(16).toString('hex');
  const callerSpan = randomBytes(8).toString('hex');
  const res = await send(ext.url, 'GET', '/v1/models/Order/items/nobody/1', undefined, { ...BEARER, traceparent: `00-${traceId}-${callerSpan}-01` });
  t.equal(res.status, 404, 'answered');
  t.equal(receiver.spans.length, 0, 'nothing exported before SHUTDOWN');
  fake.shutdown(Date.now() + 2_000);
  const exit = await withTimeout(ext.exited, 10_000, 'extension exit');
  t.equal(exit.code, 0, 'exit code 0');
  const server = receiver.spans.find((s) => s.traceId === traceId && s.kind === 2);
  t.equal(server?.parentSpanId, callerSpan, 'the request span reached the collector, under the caller span');
  t.ok(receiver.spans.some((s) => s.parentSpanId === server?.spanId && s.name === 'DynamoDB.GetItem'), 'with its GetItem client span');
});

t.test('init errors are reported to /init/error and the process exits non-zero', async (t) => {
  const tablesDir = mkdtempSync(path.join(tmpdir(), 'dynamorm-lambda-schemas-'));
  t.teardown(() => rmSync(tablesDir, { recursive: true, force: true }));
  mkdirSync(tablesDir, { recursive: true });
  writeFileSync(
    path.join(tablesDir, 'missing.yml'),
    [
      'dms_version: "0.1"',
      'models:',
      '  - name: Missing',
      '    table: { name: lambda-missing-table }',
      '    keys:',
      '      partition: { attribute: PK, type: S }',
      '    attributes:',
      '      - { attribute: PK, type: S, required: true, roles: [pk] }',
      '',
    ].join('\n'),
  );
  const cases: [string, Record<string, string>, string, RegExp][] = [
    ['bad SCHEMAS_DIR', { SCHEMAS_DIR: path.join(tmpdir(), 'no-such-schemas-dir') }, 'Extension.InvalidModels', /does not exist/],
    ['bad config', { PORT: 'eighty' }, 'Extension.ConfigError', /PORT/],
    ['missing table', { SCHEMAS_DIR: tablesDir }, 'Extension.MissingTables', /lambda-missing-table/],
  ];
  for (const [what, env, errorType, message] of cases) {
    const fake = await FakeExtensionsApi.start();
    t.teardown(() => fake.close());
    const ext = await launch(fake, env);
    const exit = await withTimeout(ext.exited, 20_000, `${what}: exit`);
    t.not(exit.code, 0, `${what}: non-zero exit (${exit.code})`);
    t.equal(fake.registrations.length, 1, `${what}: registered first`);
    t.equal(fake.initErrors.length, 1, `${what}: POST /init/error`);
    const report = fake.initErrors[0];
    t.equal(report?.headers['lambda-extension-identifier'], fake.identifier, `${what}: with the identifier`);
    t.equal(report?.headers['lambda-extension-function-error-type'], errorType, `${what}: Lambda-Extension-Function-Error-Type`);
    t.equal(report?.json?.errorType, errorType, `${what}: errorType in the body`);
    t.match(report?.json?.errorMessage ?? '', message, `${what}: errorMessage`);
    t.equal(fake.polls, 0, `${what}: never asked for an event`);
  }
});
