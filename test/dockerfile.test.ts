import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

// No Docker engine runs here: the image cannot be built, so this checks what can be checked without one —
// every file the Dockerfile copies exists, the runtime stage is hardened, and the production start command
// works from the image's layout with production dependencies only.

const text = await readFile('Dockerfile', 'utf8');
const lines = text.split('\n').map((l) => l.trim());
const stages = text.split(/^FROM /m).slice(1);

t.test('stages: Node 24 slim, multi-stage, non-root runtime with port, healthcheck and env config', async (t) => {
  const froms = lines.filter((l) => l.startsWith('FROM '));
  t.ok(froms.length >= 2, 'multi-stage');
  for (const from of froms) t.match(from, /^FROM node:24-slim\b/, from);
  const runtime = stages[stages.length - 1];
  t.match(runtime, /^USER node$/m, 'runtime runs as the unprivileged node user');
  t.match(runtime, /^EXPOSE 8787$/m);
  t.match(runtime, /^HEALTHCHECK .*\/healthz/ms);
  t.match(runtime, /NODE_ENV=production/);
  t.match(runtime, /CMD \["node", "dist\/cli\.js"\]/);
  t.match(runtime, /NODE_COMPILE_CACHE=\/app\/\.cache\/node-compile/, 'the compile cache lives in the image');
  t.match(runtime, /^RUN node dist\/cli\.js --print-openapi > \/dev\/null && chown -R node:node \/app\/\.cache\s*\nUSER node$/m, 'filled at build, then handed to the runtime user');
  t.notMatch(runtime, /npm (ci|install)(?!.*--omit=dev)/, 'no dev install in the runtime stage');
  const deps = stages.find((s) => /AS deps/.test(s.split('\n')[0]));
  t.match(deps ?? '', /npm ci --omit=dev/, 'production dependencies only');
});

t.test('every COPY source from the build context exists', async (t) => {
  const copies = lines.filter((l) => l.startsWith('COPY ') && !l.includes('--from='));
  t.ok(copies.length >= 4);
  for (const copy of copies) {
    const parts = copy.split(/\s+/).slice(1).filter((p) => !p.startsWith('--'));
    for (const source of parts.slice(0, -1)) t.ok(existsSync(source), `${source} exists`);
  }
});

t.test('the production start command works from the image layout with production dependencies', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'dynamorm-image-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const entry of ['package.json', 'package-lock.json', 'dist', 'schemas']) await cp(entry, path.join(dir, entry), { recursive: true });
  // The same command as the deps stage; --prefer-offline uses the npm cache that `npm ci` filled.
  execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, stdio: 'ignore' });
  t.notOk(existsSync(path.join(dir, 'node_modules', 'tap')), 'dev dependencies are not installed');
  const cache = path.join(dir, '.cache', 'node-compile');
  const env = { ...process.env, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0', SCHEMAS_DIR: path.join(dir, 'schemas'), LOG_LEVEL: 'info', NODE_COMPILE_CACHE: cache };
  // The build step that fills the compile cache, as the Dockerfile runs it.
  execFileSync(process.execPath, ['dist/cli.js', '--print-openapi'], { cwd: dir, env, stdio: 'ignore' });
  t.ok(readdirSync(cache, { recursive: true }).length > 50, 'the build step leaves compiled code in the cache');
  const child = spawn(process.execPath, ['dist/cli.js'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:[^"]+)"/.exec(out);
      if (m) resolve(m[1]);
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', () => reject(new Error(`exited: ${out}`)));
  });
  const port = new URL(url).port;
  // The HEALTHCHECK command, verbatim from the Dockerfile.
  const healthcheck = /CMD \["node", "-e", "(.*)"\]$/m.exec(text.split('HEALTHCHECK')[1])?.[1].replace(/\\"/g, '"');
  t.ok(healthcheck, 'healthcheck command found');
  execFileSync(process.execPath, ['-e', healthcheck!], { env: { ...env, PORT: port } });
  t.pass('the HEALTHCHECK command succeeds against the running sidecar');
  const docs = await retryWhileShed(() => fetch(`${url}/docs/`));
  t.equal(docs.status, 404, 'Swagger UI is off in production mode');
  const create = () =>
    fetch(`${url}/v1/models/Session/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'img-1', userId: 'u' }),
    });
  const created = await retryWhileShed(create);
  t.equal(created.status, 201, 'the embedded store works with production dependencies only');
});

/** Right after boot on a busy machine the load shedder may answer 503 + Retry-After; a client retries. */
async function retryWhileShed(request: () => Promise<Response>): Promise<Response> {
  let res = await request();
  for (let i = 0; i < 10 && res.status === 503; i++) {
    await new Promise((r) => setTimeout(r, 500));
    res = await request();
  }
  return res;
}
