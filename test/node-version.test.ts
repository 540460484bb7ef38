// Under Node.js older than 24 the CLI and the Lambda extension refuse to start with one line saying which version
// they need, which one runs, and how to get the right one — before any other module's code runs (older Node would
// boot and silently round 38-digit numbers). The real check spawns the built CLI and bundle with an older `node`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { nodeVersionProblem, REQUIRED_NODE_MAJOR } from '../src/node-version.js';
import { cliEnv, CLI, ROOT } from './helpers/cli.js';
import { tools, withTool } from './helpers/tools.js';

t.test('the version check', async (t) => {
  t.equal(REQUIRED_NODE_MAJOR, 24);
  for (const ok of ['24.0.0', '24.21.0', '25.1.0', 'v26.0.0']) t.equal(nodeVersionProblem(ok), undefined, `${ok} is accepted`);
  for (const old of ['20.20.2', 'v18.19.1', '23.11.0', '8.0.0']) {
    const problem = nodeVersionProblem(old, '/opt/node/bin/node');
    t.ok(problem, `${old} is refused`);
    t.notMatch(problem ?? '', /\n/, 'one line');
    t.match(problem ?? '', `Node.js ${old} (/opt/node/bin/node)`, 'names the running version and binary');
    t.match(problem ?? '', /needs Node\.js 24 or newer/, 'names the version it needs');
    t.match(problem ?? '', /npm install.*node@24.*npm start/, 'says npm scripts run the project node@24');
    t.match(problem ?? '', /nvm install 24.*https:\/\/nodejs\.org/, 'and how to install it');
  }
  t.ok(nodeVersionProblem('garbage'), 'an unreadable version is refused');
});

/** `node entry args` with an older node: its exit code and output. */
function runWith(node: string, entry: string, args: string[]) {
  const r = spawnSync(node, [entry, ...args], { cwd: ROOT, env: cliEnv({ PORT: '0', LOG_LEVEL: 'info' }), encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

await withTool(t, tools.oldNode(), 'the built entry points refuse an older Node.js', async (t, oldNode) => {
  const version = spawnSync(oldNode, ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/^v/, '');
  const expected = `${nodeVersionProblem(version, oldNode)}\n`;

  await t.test(`dist/cli.js under Node.js ${version}`, async (t) => {
    for (const args of [['--port', '0'], ['--print-openapi']]) {
      const r = runWith(oldNode, CLI, args);
      t.equal(r.code, 1, `${args.join(' ')}: exit 1`);
      t.equal(r.stderr, expected, 'exactly the one line on stderr');
      t.equal(r.stdout, '', 'nothing else ran (no ready line, no document)');
    }
  });

  await t.test(`the Lambda extension bundle under Node.js ${version}`, async (t) => {
    const out = mkdtempSync(path.join(tmpdir(), 'dynamorm-oldnode-'));
    t.teardown(() => rmSync(out, { recursive: true, force: true }));
    const built = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'bundle.mjs'), '--out', out, '--quiet'], { cwd: ROOT, encoding: 'utf8' });
    if (!t.equal(built.status, 0, `bundle built ${built.stderr}`)) return;
    const r = runWith(oldNode, path.join(out, 'layer', 'dynamorm-sidecar', 'extension.mjs'), []);
    t.equal(r.code, 1, 'exit 1');
    t.equal(r.stderr, expected, 'exactly the one line on stderr');
    t.equal(r.stdout, '', 'nothing else ran');
  });
});
