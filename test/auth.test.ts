// Caller authentication and listeners: the bearer token (AUTH_TOKEN / --auth-token-file) guards every route but
// /healthz; a non-loopback --host without a token is refused by loadConfig and by the CLI (exit 2); --socket serves
// the same API on a Unix domain socket (node:http with socketPath, since fetch cannot).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError, loadConfig } from '../src/config.js';
import { cliEnv, launchCli, runCli } from './helpers/cli.js';
import { startTestSidecar, send, type TestResponse } from './helpers/sidecar.js';

const TOKEN = `tok-${randomUUID()}`;
const RUN = randomUUID().slice(0, 8);

function unauthorized(t: Test, res: TestResponse, what: string): void {
  t.equal(res.status, 401, `${what}: 401 (got ${res.status})`);
  t.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, `${what}: problem+json`);
  t.equal(res.json?.code, 'ErrUnauthorized', `${what}: ErrUnauthorized`);
  t.equal(res.json?.status, 401, `${what}: status in the body`);
  t.match(res.headers.get('www-authenticate') ?? '', /^Bearer/, `${what}: WWW-Authenticate: Bearer`);
  t.ok(res.headers.get('x-request-id'), `${what}: x-request-id`);
  t.notOk(res.text.includes(TOKEN), `${what}: the token is not echoed`);
}

/** The call must throw a ConfigError (tap's t.throws does not take a class). */
function configError(t: Test, fn: () => unknown, what: string): Error | undefined {
  try {
    fn();
  } catch (err) {
    t.ok(err instanceof ConfigError, `${what}: ConfigError`);
    return err as Error;
  }
  t.fail(`${what}: accepted`);
  return undefined;
}

/** A socket file left behind by a process killed while listening (nobody answers on it). */
function staleSocket(path: string): void {
  const script = `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`;
  try {
    execFileSync(process.execPath, ['-e', script], { stdio: 'ignore' });
  } catch {
    // killed, as intended: the socket file stays
  }
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-auth-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('bearer token on HTTP routes', async (t) => {
  const s = await startTestSidecar({ authToken: TOKEN });
  t.teardown(() => s.close());
  const auth = { authorization: `Bearer ${TOKEN}` };

  unauthorized(t, await s.request('GET', '/v1/models'), 'no Authorization');
  unauthorized(t, await s.request('GET', '/v1/models', undefined, { authorization: 'Bearer wrong' }), 'wrong token');
  unauthorized(t, await s.request('GET', '/v1/models', undefined, { authorization: `Bearer ${TOKEN}x` }), 'token with a suffix');
  unauthorized(t, await s.request('GET', '/v1/models', undefined, { authorization: `Bearer ${TOKEN.slice(0, -1)}` }), 'token prefix');
  unauthorized(t, await s.request('GET', '/v1/models', undefined, { authorization: TOKEN }), 'token without the Bearer scheme');
  unauthorized(t, await s.request('GET', '/v1/models', undefined, { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` }), 'Basic scheme');
  unauthorized(t, await s.request('GET', '/v1/models', undefined, { authorization: 'Bearer ' }), 'empty Bearer');
  unauthorized(t, await s.request('GET', '/openapi.json'), 'OpenAPI document');
  unauthorized(t, await s.request('GET', '/v1/nope'), 'unknown route');
  unauthorized(t, await s.request('GET', '/healthz/x'), 'a path below /healthz');

  const pk = `${RUN}#AUTH`;
  const item = { PK: pk, SK: 'PROFILE', email: 'auth@example.com' };
  unauthorized(t, await s.request('POST', '/v1/models/User/items', item), 'create without a token');
  unauthorized(t, await s.request('POST', '/v1/models/User/items', '{not json', { 'content-type': 'application/json' }), 'malformed body without a token');
  const missing = await s.request('GET', `/v1/models/User/items/${encodeURIComponent(pk)}/PROFILE`, undefined, auth);
  t.equal(missing.status, 404, 'the unauthenticated create wrote nothing');

  const models = await s.request('GET', '/v1/models', undefined, auth);
  t.equal(models.status, 200, 'with the token: 200');
  // RFC 9110 §11.1: the auth scheme is case-insensitive.
  const lower = await s.request('GET', '/v1/models', undefined, { authorization: `bearer ${TOKEN}` });
  t.equal(lower.status, 200, 'lower-case "bearer" scheme accepted (RFC 9110: schemes are case-insensitive)');
  const created = await s.request('POST', '/v1/models/User/items', item, auth);
  t.equal(created.status, 201, 'create with the token');
  const read = await s.request('GET', `/v1/models/User/items/${encodeURIComponent(pk)}/PROFILE`, undefined, auth);
  t.equal(read.status, 200, 'read with the token');
  t.equal(read.json?.email, 'auth@example.com');

  const health = await s.request('GET', '/healthz');
  t.equal(health.status, 200, '/healthz needs no token');
  t.same(health.json, { status: 'ok' });
  t.equal((await s.request('GET', '/healthz?probe=1')).status, 200, '/healthz with a query string needs no token');
  t.equal((await s.request('GET', '/healthz', undefined, { authorization: 'Bearer wrong' })).status, 200, '/healthz ignores a wrong token');
});

t.test('without a token configured every route is open', async (t) => {
  const s = await startTestSidecar();
  t.teardown(() => s.close());
  t.equal((await s.request('GET', '/v1/models')).status, 200);
  t.equal((await s.request('GET', '/v1/models', undefined, { authorization: 'Bearer anything' })).status, 200, 'an Authorization header is ignored');
});

t.test('a partner header on a sidecar without partners: 403 ErrUnknownPartner', async (t) => {
  const s = await startTestSidecar();
  t.teardown(() => s.close());
  const res = await s.request('GET', `/v1/models/User/items/${encodeURIComponent(`${RUN}#P`)}/PROFILE`, undefined, { 'x-partner-id': 'alpha' });
  t.equal(res.status, 403);
  t.equal(res.json?.code, 'ErrUnknownPartner');
  t.equal((await s.request('GET', `/v1/models/User/items/${encodeURIComponent(`${RUN}#P`)}/PROFILE`)).status, 404, 'without it: own store');
});

t.test('loadConfig: non-loopback host needs a token', async (t) => {
  const err = configError(t, () => loadConfig(['--host', '0.0.0.0'], {}), '0.0.0.0 without a token');
  t.match(err?.message, /AUTH_TOKEN/, 'the message names AUTH_TOKEN');
  t.match(err?.message, /--host/, 'and the flag');
  configError(t, () => loadConfig([], { HOST: '0.0.0.0' }), 'HOST env too');
  configError(t, () => loadConfig(['--host', '::'], {}), ':: without a token');
  configError(t, () => loadConfig(['--host', '10.1.2.3'], {}), 'a private address without a token');
  configError(t, () => loadConfig(['--host', '0.0.0.0'], { AUTH_TOKEN: '' }), 'an empty AUTH_TOKEN is no token');

  const withEnv = loadConfig(['--host', '0.0.0.0'], { AUTH_TOKEN: TOKEN }).config;
  t.equal(withEnv.host, '0.0.0.0', 'AUTH_TOKEN set: accepted');
  t.equal(withEnv.authToken, TOKEN);

  for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1']) {
    const c = loadConfig(['--host', host], {}).config;
    t.equal(c.authToken, undefined, `${host}: loopback needs no token`);
  }

  const dir = tempDir(t);
  const file = join(dir, 'token');
  writeFileSync(file, `${TOKEN}\n`);
  const fromFile = loadConfig(['--host', '0.0.0.0', '--auth-token-file', file], {}).config;
  t.equal(fromFile.authToken, TOKEN, '--auth-token-file: trimmed token');
  const viaEnvFile = loadConfig(['--host', '0.0.0.0'], { AUTH_TOKEN_FILE: file }).config;
  t.equal(viaEnvFile.authToken, TOKEN, 'AUTH_TOKEN_FILE env');
  writeFileSync(join(dir, 'empty'), '\n');
  configError(t, () => loadConfig(['--auth-token-file', join(dir, 'empty')], {}), 'empty token file');
  t.match(configError(t, () => loadConfig(['--auth-token-file', join(dir, 'absent')], {}), 'missing token file')?.message, /ENOENT/, 'says why');
  configError(t, () => loadConfig(['--auth-token', TOKEN], {}), 'there is no --auth-token flag (secrets never on the command line)');
});

t.test('CLI: --host 0.0.0.0 without a token exits 2', async (t) => {
  const res = await runCli(['--host', '0.0.0.0', '--port', '0']);
  t.equal(res.code, 2, 'exit code 2');
  t.match(res.stderr, /AUTH_TOKEN/, 'stderr names AUTH_TOKEN');
});

t.test('CLI: --host 0.0.0.0 with AUTH_TOKEN boots and enforces the token', async (t) => {
  const cli = launchCli(['--host', '0.0.0.0', '--port', '0'], cliEnv({ AUTH_TOKEN: TOKEN, LOG_LEVEL: 'info' }));
  t.teardown(async () => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.done;
    }
  });
  let port: number | undefined;
  for (let i = 0; i < 600 && port === undefined && cli.child.exitCode === null; i++) {
    const m = /"url":"http:\/\/[^"]*:(\d+)"/.exec(cli.out());
    if (m) port = Number(m[1]);
    else await new Promise((r) => setTimeout(r, 50));
  }
  if (!t.ok(port, 'the CLI reported its URL')) {
    t.comment(`stdout: ${cli.out().slice(0, 2000)}\nstderr: ${cli.err().slice(0, 2000)}`);
    return;
  }
  const base = `http://127.0.0.1:${port}`;
  unauthorized(t, await send(base, 'GET', '/v1/models'), 'CLI, no token');
  t.equal((await send(base, 'GET', '/v1/models', undefined, { authorization: `Bearer ${TOKEN}` })).status, 200, 'CLI, with the token');
  t.equal((await send(base, 'GET', '/healthz')).status, 200, 'CLI, /healthz open');
  cli.child.kill('SIGTERM');
  const exit = await cli.done;
  t.notOk(exit.stdout.includes(TOKEN) || exit.stderr.includes(TOKEN), 'the token never appears in the logs');
  t.ok(exit.code === 0 || exit.signal === 'SIGTERM', `clean shutdown (code ${exit.code}, signal ${exit.signal})`);
});

interface SocketResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

function overSocket(socketPath: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<SocketResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = httpRequest(
      {
        socketPath,
        method,
        path,
        headers: { ...headers, ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

t.test('Unix domain socket', async (t) => {
  const dir = tempDir(t);
  const socket = join(dir, 's.sock');
  const s = await startTestSidecar({ socket });
  let closed = false;
  t.teardown(() => (closed ? undefined : s.close()));
  t.ok(existsSync(socket) && statSync(socket).isSocket(), 'the socket file exists and is a socket');

  const health = await overSocket(socket, 'GET', '/healthz');
  t.equal(health.status, 200, 'GET /healthz over the socket');
  t.same(health.json, { status: 'ok' });

  const pk = `${RUN}#SOCK`;
  const created = await overSocket(socket, 'POST', '/v1/models/User/items', { PK: pk, SK: 'PROFILE', email: 'sock@example.com', name: 'Sock' });
  t.equal(created.status, 201, `create over the socket (${created.text.slice(0, 200)})`);
  t.equal(created.headers.etag, '"0"', 'ETag');
  const read = await overSocket(socket, 'GET', `/v1/models/User/items/${encodeURIComponent(pk)}/PROFILE`);
  t.equal(read.status, 200, 'get over the socket');
  t.equal(read.json?.name, 'Sock');
  t.equal(read.json?.email, 'sock@example.com');
  const missing = await overSocket(socket, 'GET', `/v1/models/User/items/${encodeURIComponent(`${pk}#NONE`)}/PROFILE`);
  t.equal(missing.status, 404, '404 over the socket');
  t.equal(missing.json?.code, 'ErrItemNotFound');

  await s.close();
  closed = true;
  t.notOk(existsSync(socket), 'the socket file is removed on close');
});

t.test('Unix domain socket: a stale socket at the path is replaced; the token applies there too', async (t) => {
  const dir = tempDir(t);
  const socket = join(dir, 's.sock');
  staleSocket(socket);
  t.ok(statSync(socket).isSocket(), 'a socket nobody listens on is at the path');
  const s = await startTestSidecar({ socket, authToken: TOKEN });
  t.teardown(() => s.close());
  t.ok(statSync(socket).isSocket(), 'stale socket replaced by the live one');
  const denied = await overSocket(socket, 'GET', '/v1/models');
  t.equal(denied.status, 401, 'no token over the socket: 401');
  t.equal(denied.json?.code, 'ErrUnauthorized');
  t.equal(denied.headers['www-authenticate'], 'Bearer');
  t.equal((await overSocket(socket, 'GET', '/v1/models', undefined, { authorization: `Bearer ${TOKEN}` })).status, 200, 'with the token: 200');
  t.equal((await overSocket(socket, 'GET', '/healthz')).status, 200, '/healthz open over the socket');
});

t.test('loadConfig: --socket needs no token whatever --host says', async (t) => {
  const { config } = loadConfig(['--socket', '/tmp/x.sock', '--host', '0.0.0.0'], {});
  t.equal(config.socket, '/tmp/x.sock');
  t.equal(loadConfig([], { SOCKET_PATH: '/tmp/y.sock' }).config.socket, '/tmp/y.sock', 'SOCKET_PATH env');
});
