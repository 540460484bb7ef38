import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import t from 'tap';
import { cliEnv, launchCli, ROOT, runCli, type CliExit as Finished } from './helpers/cli.js';
import { freePort } from './helpers/net.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'dms');

const launch = (args: string[], env: Record<string, string> = {}) => launchCli(args, cliEnv(env));
const run = (args: string[], env: Record<string, string> = {}, timeoutMs = 30_000) => runCli(args, cliEnv(env), timeoutMs);

function jsonLines(text: string): Record<string, any>[] {
  return text
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, any>;
      } catch {
        return { unparsed: line };
      }
    });
}


interface Running {
  child: ChildProcess;
  url: string;
  ready: Record<string, any>;
  out: () => string;
  err: () => string;
  done: Promise<Finished>;
}

/** Start the CLI and wait for its "ready" log line. */
async function boot(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<Running> {
  const launched = launch(args, env);
  const deadline = Date.now() + timeoutMs;
  let exited: Finished | undefined;
  void launched.done.then((f) => (exited = f));
  while (Date.now() < deadline) {
    const ready = jsonLines(launched.out()).find((l) => l.msg === 'dynamorm sidecar ready');
    if (ready) return { ...launched, url: ready.url, ready };
    if (exited) throw new Error(`sidecar exited (${exited.code}) before ready:\n${exited.stdout}\n${exited.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  launched.child.kill('SIGKILL');
  throw new Error(`sidecar not ready after ${timeoutMs} ms:\n${launched.out()}\n${launched.err()}`);
}

async function stop(running: Running): Promise<Finished> {
  running.child.kill('SIGTERM');
  const timer = setTimeout(() => running.child.kill('SIGKILL'), 15_000);
  try {
    return await running.done;
  } finally {
    clearTimeout(timer);
  }
}

t.test('bad configuration values exit 2 naming the flag and env var', async (t) => {
  const cases: [string, string[], Record<string, string>, RegExp[]][] = [
    ['--port abc', ['--port', 'abc'], {}, [/--port/, /PORT/, /"abc"/]],
    ['PORT=70000', [], { PORT: '70000' }, [/--port/, /\bPORT\b/, /70000/]],
    ['--port 65536', ['--port', '65536'], {}, [/--port/, /65536/]],
    ['--port -1', ['--port=-1'], {}, [/--port/]],
    ['--log-level loud', ['--log-level', 'loud'], {}, [/--log-level/, /LOG_LEVEL/]],
    ['LOG_LEVEL=loud', [], { LOG_LEVEL: 'loud' }, [/--log-level/, /LOG_LEVEL/]],
    ['unknown flag', ['--bogus-flag'], {}, [/--bogus-flag/]],
    ['positional argument', ['serve'], {}, [/serve/]],
    ['--dynamodb-endpoint notaurl', ['--dynamodb-endpoint', 'notaurl'], {}, [/--dynamodb-endpoint/, /DYNAMODB_ENDPOINT/, /notaurl/]],
    ['DYNAMODB_ENDPOINT=ftp://x', [], { DYNAMODB_ENDPOINT: 'ftp://x' }, [/--dynamodb-endpoint/, /DYNAMODB_ENDPOINT/]],
    ['--body-limit 10', ['--body-limit', '10'], {}, [/--body-limit/, /BODY_LIMIT/]],
    ['CREATE_TABLES=maybe', [], { CREATE_TABLES: 'maybe' }, [/--create-tables/, /CREATE_TABLES/]],
    ['--data-dir with --dynamodb-endpoint', ['--data-dir', '/tmp/x', '--dynamodb-endpoint', 'http://127.0.0.1:1'], {}, [/--data-dir/, /--dynamodb-endpoint/]],
  ];
  const queue = [...cases];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const [name, args, env, patterns] = next;
      const res = await run(args, env);
      t.equal(res.code, 2, `${name}: exit code 2`, { stderr: res.stderr });
      for (const pattern of patterns) t.match(res.stderr, pattern, `${name}: stderr names ${pattern}`);
      t.notMatch(res.stderr, /\n\s+at /, `${name}: no stack trace`);
      t.equal(res.stdout, '', `${name}: nothing on stdout`);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
});

t.test('an invalid DMS directory exits 1 listing every error with file, model and attribute', async (t) => {
  const dir = path.join(FIXTURES, 'multiple-errors');
  const res = await run(['--schemas', dir]);
  t.equal(res.code, 1, 'exit code 1', { stderr: res.stderr });
  t.notMatch(res.stderr, /\n\s+at /, 'no stack trace');
  const errors = res.stderr.split('\n').filter((l) => /^\s+- /.test(l));
  t.ok(errors.length >= 5, `several errors are listed (got ${errors.length})`, { stderr: res.stderr });
  const file = path.join(dir, 'model.yml');
  for (const line of errors) t.ok(line.includes(file), `each error names the file: ${line}`);
  t.ok(errors.some((l) => l.includes('model "Thing"') && l.includes('(flag)') && l.includes('colour')), 'model + attribute + problem (colour)');
  t.ok(errors.some((l) => l.includes('model "Thing"') && l.includes('(id)') && l.includes('optional')), 'model + attribute + problem (id optional)');
  t.ok(errors.some((l) => l.includes('(made)') && l.includes('created_at')), 'made: created_at type');
  t.ok(errors.some((l) => l.includes('extra')), 'top-level unknown key');

  const enc = path.join(FIXTURES, 'encryption-key');
  const res2 = await run([], { SCHEMAS_DIR: enc });
  t.equal(res2.code, 1, 'encryption on a key: exit 1', { stderr: res2.stderr });
  t.match(res2.stderr, path.join(enc, 'model.yml'));
  t.match(res2.stderr, /model "Thing"/);
  t.match(res2.stderr, /\(id\)/);
  t.match(res2.stderr, /encryption is not allowed on key/);

  const missing = path.join(FIXTURES, 'no-such-dir');
  const res3 = await run(['--schemas', missing]);
  t.equal(res3.code, 1, 'missing schemas dir: exit 1');
  t.match(res3.stderr, missing);
});

t.test('--help lists every option with its env var and default', async (t) => {
  const res = await run(['--help']);
  t.equal(res.code, 0);
  const help = res.stdout;
  const expected: [flag: string, env: string, fallback: RegExp][] = [
    ['--port', 'PORT', /default: 8787/],
    ['--host', 'HOST', /default: 127\.0\.0\.1/],
    ['--schemas', 'SCHEMAS_DIR', /default: schemas\/?/],
    ['--data-dir', 'DATA_DIR', /default: in memory/],
    ['--dynamodb-endpoint', 'DYNAMODB_ENDPOINT', /default: embedded/],
    ['--region', 'AWS_REGION', /default: us-east-1/],
    ['--create-tables', 'CREATE_TABLES', /default: false/],
    ['--log-level', 'LOG_LEVEL', /default: info/],
    ['--body-limit', 'BODY_LIMIT', /default: 1048576/],
  ];
  for (const [flag, env, fallback] of expected) {
    const line = help.split('\n').find((l) => new RegExp(`^\\s*${flag}\\b`).test(l));
    t.ok(line, `${flag} is listed`);
    t.match(line ?? '', new RegExp(`\\b${env}\\b`), `${flag} names ${env}`);
    t.match(line ?? '', fallback, `${flag} shows its default`);
  }
  t.match(help, /--print-openapi/);
  t.match(help, /--help/);
});

t.test('--print-openapi prints the OpenAPI 3.1 YAML and exits', async (t) => {
  const res = await run(['--print-openapi']);
  t.equal(res.code, 0, 'exit 0', { stderr: res.stderr });
  t.match(res.stdout, /^openapi: "3\.1\.0"$/m); // quoted: the document reads the same in YAML 1.1 parsers
  t.match(res.stdout, /\/v1\/models\/User\/items/);
  t.match(res.stdout, /\/v1\/models\/Order\/items/);
  t.notMatch(res.stdout, /^\{/, 'YAML, not JSON');
  t.notMatch(res.stdout, /"level":/, 'no log lines mixed into the document');
});

t.test('a good start logs ready with the url, serves /healthz, logs one line per request, exits 0 on SIGTERM', async (t) => {
  const port = await freePort();
  const running = await boot(['--port', String(port)]);
  t.equal(running.ready.url, `http://127.0.0.1:${port}`, 'ready line carries the url');
  t.equal(running.ready.backend, 'embedded');
  t.equal(running.ready.level, 30, 'info level');

  const health = await fetch(`${running.url}/healthz`, { headers: { 'x-request-id': 'boot-health-1' } });
  t.equal(health.status, 200);
  t.same(await health.json(), { status: 'ok' });
  t.equal(health.headers.get('x-request-id'), 'boot-health-1');

  const created = await fetch(`${running.url}/v1/models/User/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'boot-create-1' },
    body: JSON.stringify({ PK: 'USER#boot', SK: 'PROFILE', email: 'boot@example.com' }),
  });
  t.equal(created.status, 201);
  await created.text();
  const missing = await fetch(`${running.url}/v1/models/User/items/USER%23none/PROFILE`, { headers: { 'x-request-id': 'boot-get-404' } });
  t.equal(missing.status, 404);
  await missing.text();
  const unknown = await fetch(`${running.url}/nowhere`, { headers: { 'x-request-id': 'boot-unrouted' } });
  t.equal(unknown.status, 404);
  await unknown.text();

  const finished = await stop(running);
  t.equal(finished.code, 0, 'exit code 0 on SIGTERM', { stderr: finished.stderr });
  t.equal(finished.signal, null);

  const lines = jsonLines(finished.stdout);
  t.same(lines.filter((l) => 'unparsed' in l), [], 'every stdout line is JSON');
  const requestLines = lines.filter((l) => l.msg === 'request');
  const byId = (id: string) => requestLines.filter((l) => l.reqId === id);

  t.equal(byId('boot-health-1').length, 1, 'one line for /healthz');
  t.match(byId('boot-health-1')[0], { reqId: 'boot-health-1', method: 'GET', status: 200, ms: Number });

  t.equal(byId('boot-create-1').length, 1, 'one line for the create');
  t.match(byId('boot-create-1')[0], { reqId: 'boot-create-1', model: 'User', op: 'create', status: 201, ms: Number, level: 30 });
  t.ok(byId('boot-create-1')[0].ms >= 0);

  t.equal(byId('boot-get-404').length, 1, 'one line for the failed read');
  t.match(byId('boot-get-404')[0], { reqId: 'boot-get-404', model: 'User', op: 'get', status: 404, ms: Number });

  t.equal(byId('boot-unrouted').length, 1, 'one line for an unrouted request');
  t.match(byId('boot-unrouted')[0], { reqId: 'boot-unrouted', status: 404 });

  t.equal(requestLines.length, 4, 'exactly one line per request, no others', { requestLines });
  t.notOk(
    lines.some((l) => l.msg === 'incoming request' || l.msg === 'request completed'),
    "Fastify's own per-request lines are off",
  );
  t.ok(
    lines.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'),
    'shutdown is logged with the signal',
  );
  t.notOk(
    JSON.stringify(byId('boot-create-1')[0]).includes('boot@example.com'),
    'request log lines carry no item values',
  );
});

t.test('a request id that is not a sane token is replaced by a minted one', async (t) => {
  const running = await boot(['--port', '0']);
  const res = await fetch(`${running.url}/healthz`, { headers: { 'x-request-id': 'bad id with spaces' } });
  await res.text();
  const id = res.headers.get('x-request-id');
  t.ok(id && id !== 'bad id with spaces', 'a new id is minted');
  const finished = await stop(running);
  t.equal(finished.code, 0);
  const line = jsonLines(finished.stdout).find((l) => l.msg === 'request');
  t.equal(line?.reqId, id, 'the log line carries the id returned to the caller');
});

t.test('flags win over env, env over defaults', async (t) => {
  const port = await freePort();
  const running = await boot(['--port', String(port)], { PORT: '1' });
  t.equal(running.url, `http://127.0.0.1:${port}`, 'PORT=1 --port N listens on N');
  const health = await fetch(`${running.url}/healthz`);
  t.equal(health.status, 200);
  await health.text();
  t.equal((await stop(running)).code, 0);

  const envPort = await freePort();
  const fromEnv = await boot([], { PORT: String(envPort) });
  t.equal(fromEnv.url, `http://127.0.0.1:${envPort}`, 'PORT alone is honoured');
  t.equal((await stop(fromEnv)).code, 0);

  // A bad env value is irrelevant when the flag overrides it.
  const overridden = await boot(['--port', '0', '--log-level', 'info'], { LOG_LEVEL: 'loud' });
  t.match(overridden.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.equal((await stop(overridden)).code, 0);

  // --log-level warn from the flag beats LOG_LEVEL=info: neither the ready line nor request lines are printed.
  const quietPort = await freePort();
  const quiet = launch(['--port', String(quietPort), '--log-level', 'warn'], { LOG_LEVEL: 'info' });
  let up = false;
  for (let i = 0; i < 300 && !up; i++) {
    up = await fetch(`http://127.0.0.1:${quietPort}/healthz`).then(
      async (r) => (await r.text(), r.status === 200),
      () => false,
    );
    if (!up) await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(up, 'quiet sidecar serves /healthz');
  quiet.child.kill('SIGTERM');
  const quietDone = await quiet.done;
  t.equal(quietDone.code, 0);
  t.same(jsonLines(quietDone.stdout).filter((l) => l.level < 40), [], 'nothing below warn is logged');
});

t.test('npm start -- --port N passes the flag through npm, and it beats PORT', async (t) => {
  // --ignore-scripts skips `prestart` (a rebuild of dist/ while other tests run) but still runs `start` itself.
  const npmCli = process.env.npm_execpath;
  const [cmd, pre] = npmCli && /npm-cli\.js$/.test(npmCli) ? [process.execPath, [npmCli]] : ['npm', []];
  const port = await freePort();
  const child = spawn(cmd, [...pre, 'start', '--ignore-scripts', '--silent', '--', '--port', String(port)], {
    cwd: ROOT,
    env: cliEnv({ PORT: '1', LOG_LEVEL: 'info' }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // 'close', not 'exit': npm may exit on the SIGTERM before the sidecar it started has written its last line to the
  // pipe they share; the pipe closes only when both are gone.
  const exited = once(child, 'close');
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  t.teardown(() => killGroup('SIGKILL'));
  let ready: Record<string, any> | undefined;
  for (let i = 0; i < 600 && !ready && child.exitCode === null; i++) {
    ready = jsonLines(stdout).find((l) => l.msg === 'dynamorm sidecar ready');
    if (!ready) await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(ready, 'ready line printed through npm', { stdout, stderr });
  t.equal(ready?.url, `http://127.0.0.1:${port}`, 'listens on the --port given after --, not PORT=1');
  const health = await fetch(`http://127.0.0.1:${port}/healthz`).then(
    async (r) => (await r.text(), r.status),
    () => 0,
  );
  t.equal(health, 200, 'serves /healthz');
  killGroup('SIGTERM');
  const timer = setTimeout(() => killGroup('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
  t.ok(jsonLines(stdout).some((l) => l.msg === 'shutting down'), 'the sidecar got the SIGTERM and shut down cleanly');
});
