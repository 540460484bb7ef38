// Generated clients: a TypeScript client (openapi-typescript types + openapi-fetch, from the /openapi.json a running
// sidecar serves) and a Python client (openapi-python-client, from the committed openapi.yaml) are generated into a
// temp dir (never committed), built (tsc with strict options over the driver + generated types; the Python package
// byte-compiled and imported from PYTHONPATH), and each runs the same round trip against that sidecar: create (201 + ETag "0") with an
// encrypted attribute, get, PATCH with If-Match, a partition query one item per request following the cursor, a
// transaction (update + check, then a canceled one), delete, and problem+json errors. The drivers
// (test/clients/ts/roundtrip.ts, test/clients/python/roundtrip.py) print one JSON summary each; both are held to the
// same expectations. Everything runs offline with the installed tools.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { startTestSidecar } from './helpers/sidecar.js';
import { tools, withTool } from './helpers/tools.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const VENV_BIN = path.join(ROOT, '.venv', 'bin');
const PYTHON = path.join(VENV_BIN, 'python');
const PY_GENERATOR = path.join(VENV_BIN, 'openapi-python-client');
const COMMITTED_DOC = path.join(ROOT, 'openapi.yaml');
const TS_GENERATOR = path.join(ROOT, 'node_modules', 'openapi-typescript', 'bin', 'cli.js');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const RUN = randomUUID().slice(0, 8);
const RFC3339_NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;
const PROBLEM_JSON = /^application\/problem\+json/;

type Json = Record<string, any>;

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to completion (no shell), killing it after `timeoutMs`. */
function run(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const output = (r: Result) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`.slice(0, 4000);

/** The JSON summary a driver printed, or a failure showing what it printed instead. */
function summaryOf(t: Test, r: Result, what: string): Json | undefined {
  t.equal(r.code, 0, r.code === 0 ? `${what} ran` : `${what} ran: ${output(r)}`);
  if (r.code !== 0) return undefined;
  try {
    return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '');
  } catch {
    t.fail(`${what} printed no JSON summary: ${output(r)}`);
    return undefined;
  }
}

/** The expectations both drivers are held to. */
function checkSummary(t: Test, s: Json, client: string, prefix: string): void {
  t.equal(s.client, client, 'driver');
  t.equal(s.pk, `USER#${prefix}-${RUN}`, 'its own partition');
  t.match(s.create, { status: 201, etag: '"0"', version: 0 }, 'create → 201, ETag "0", version 0');
  t.match(s.create.createdAt, RFC3339_NANO, 'createdAt set by the sidecar');
  t.same(s.siblings, [201, 201], 'two more items in the partition');
  t.match(s.duplicate, { status: 409, code: 'ErrConditionFailed', contentType: PROBLEM_JSON }, 'create on an existing key → 409 ErrConditionFailed');
  t.same(s.get, { status: 200, name: 'Ann', status_: 'active', tags: ['a', 'b'], taxId: 'TAX-0001', version: 0 }, 'get (encrypted taxId read back)');
  t.same(s.patch, { status: 200, etag: '"1"', version: 1, name: 'Annie', tags: ['a', 'b', 'c'] }, 'PATCH with If-Match "0" → version 1');
  t.match(s.stalePatch, { status: 412, code: 'ErrConditionFailed', contentType: PROBLEM_JSON }, 'PATCH with a stale If-Match → 412');
  t.same(s.query.sks, ['ORDER#1', 'ORDER#2', 'PROFILE'], 'query: every item of the partition, in sort-key order');
  const sizes: number[] = s.query.pageSizes;
  t.same(sizes.slice(0, 3), [1, 1, 1], 'query: one item per request (limit 1)');
  t.ok(sizes.length <= 4 && sizes.slice(3).every((n) => n === 0), `query: the cursor ends the walk (page sizes ${sizes.join(',')})`);
  t.same(s.transaction, { status: 200, committed: 2, after: { status: 'vip', version: 2 } }, 'transactWrite: update (expected version 1) + check');
  t.match(s.canceled, { status: 409, code: 'ErrTransactionCanceled', contentType: PROBLEM_JSON }, 'transactWrite with a failing check → 409');
  t.same(s.canceled.reasons, ['None', 'ConditionalCheckFailed'], 'one cancellation reason per item');
  t.same(s.deleted, [204, 204, 204], 'delete (If-Match "2" on the profile)');
  t.match(s.missing, { status: 404, code: 'ErrItemNotFound', contentType: PROBLEM_JSON }, 'GET of the deleted item → 404 ErrItemNotFound');
}

const sidecar = await startTestSidecar({ localKek: Buffer.alloc(32, 7).toString('base64') });
t.teardown(() => sidecar.close());
const DOC_URL = `${sidecar.url}/openapi.json`;
const tmp = mkdtempSync(path.join(tmpdir(), 'dynamorm-clients-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test('the served document is OpenAPI 3.1', async (t) => {
  const res = await sidecar.request('GET', '/openapi.json');
  t.equal(res.status, 200);
  t.equal(res.json?.openapi, '3.1.0');
});

t.test('TypeScript: openapi-typescript types + openapi-fetch', async (t) => {
  const dir = path.join(tmp, 'ts');
  mkdirSync(dir);
  // The driver is compiled next to the generated types; node_modules (openapi-fetch, @types/node) via a symlink.
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  copyFileSync(path.join(ROOT, 'test', 'clients', 'ts', 'roundtrip.ts'), path.join(dir, 'roundtrip.ts'));

  const gen = await run(process.execPath, [TS_GENERATOR, DOC_URL, '--output', path.join(dir, 'schema.ts')], { cwd: dir });
  t.equal(gen.code, 0, gen.code === 0 ? 'openapi-typescript generated schema.ts' : `openapi-typescript: ${output(gen)}`);
  if (gen.code !== 0) return;

  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2023',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023'],
        types: ['node'],
        strict: true,
        noUncheckedIndexedAccess: true,
        exactOptionalPropertyTypes: true,
        noPropertyAccessFromIndexSignature: true,
        noImplicitReturns: true,
        noFallthroughCasesInSwitch: true,
        noUnusedLocals: true,
        noUnusedParameters: true,
        skipLibCheck: true, // node_modules only: schema.ts is a source file and is checked
        outDir: 'out',
        rootDir: '.',
      },
      files: ['roundtrip.ts', 'schema.ts'],
    }),
  );
  const tsc = await run(process.execPath, [TSC, '-p', path.join(dir, 'tsconfig.json')], { cwd: dir, timeoutMs: 45_000 });
  t.equal(tsc.code, 0, tsc.code === 0 ? 'driver + generated types compile under strict settings' : `tsc: ${output(tsc)}`);
  if (tsc.code !== 0) return;

  const driver = await run(process.execPath, [path.join(dir, 'out', 'roundtrip.js'), sidecar.url, RUN], { cwd: dir });
  const summary = summaryOf(t, driver, 'TypeScript driver');
  if (summary) checkSummary(t, summary, 'typescript', 'ts');
});

// The Python client is generated from the committed openapi.yaml itself, so the file must parse as YAML 1.1 (PyYAML).
await withTool(t, tools.openapiPythonClient(), 'Python: openapi-python-client', async (t) => {
  const dir = path.join(tmp, 'py');
  mkdirSync(dir);
  const pkg = path.join(dir, 'dynamorm_client');
  // .venv/bin on PATH so the generator's ruff post-hooks (ruff is one of its dependencies) run instead of warning.
  const env = { ...process.env, PATH: `${VENV_BIN}${path.delimiter}${process.env.PATH ?? ''}`, PYTHONDONTWRITEBYTECODE: '1' };
  const gen = await run(PY_GENERATOR, ['generate', '--path', COMMITTED_DOC, '--meta', 'none', '--output-path', pkg], { cwd: dir, env });
  t.equal(gen.code, 0, gen.code === 0 ? 'openapi-python-client generated dynamorm_client' : `openapi-python-client: ${output(gen)}`);
  // It exits 0 even when it drops schemas or whole endpoints; any warning is a document problem.
  t.notMatch(`${gen.stdout}\n${gen.stderr}`, /Warning|Error\(s\)|Unable to|will not be generated|Could not/, `no generator warnings: ${output(gen)}`);
  if (gen.code !== 0 || !existsSync(path.join(pkg, '__init__.py'))) return;

  const compile = await run(PYTHON, ['-m', 'compileall', '-q', pkg], { cwd: dir, env });
  t.equal(compile.code, 0, compile.code === 0 ? 'generated package compiles' : `compileall: ${output(compile)}`);

  const driver = await run(PYTHON, [path.join(ROOT, 'test', 'clients', 'python', 'roundtrip.py'), sidecar.url, RUN], {
    cwd: dir,
    env: { ...env, PYTHONPATH: dir },
  });
  const summary = summaryOf(t, driver, 'Python driver');
  if (summary) checkSummary(t, summary, 'python', 'py');
});
