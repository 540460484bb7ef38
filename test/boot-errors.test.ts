// Boot failures that are not configuration mistakes still print one line saying what to fix, without a stack trace
// (LOG_LEVEL=debug adds it): an endpoint nobody answers on, no AWS credentials, a data dir another process holds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { cliEnv, launchCli, runCli, type CliExit } from './helpers/cli.js';
import { freePort } from './helpers/net.js';

const STACK = /\n\s+at /;

/** The CLI environment with no AWS setting of the host at all: no keys, no profile, no config files, no IMDS. */
function bareAwsEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = cliEnv();
  for (const name of Object.keys(env)) if (name.startsWith('AWS_')) delete env[name];
  return {
    ...env,
    HOME: home,
    AWS_CONFIG_FILE: path.join(home, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
}

function oneLine(t: Test, res: CliExit, what: string): string {
  t.equal(res.code, 1, `${what}: exit 1`, { stderr: res.stderr });
  t.notMatch(res.stderr, STACK, `${what}: no stack trace`);
  const lines = res.stderr.split('\n').filter((l) => l.trim().length > 0);
  t.equal(lines.length, 1, `${what}: one line`, { stderr: res.stderr });
  t.match(lines[0] ?? '', /^dynamorm-sidecar: /, `${what}: prefixed with the program name`);
  return lines[0] ?? '';
}

let home: string;
t.before(() => {
  home = mkdtempSync(path.join(tmpdir(), 'dynamorm-boot-errors-'));
});
t.teardown(() => rmSync(home, { recursive: true, force: true }));

t.test('an endpoint nobody listens on', async (t) => {
  const port = await freePort();
  const args = ['--dynamodb-endpoint', `http://127.0.0.1:${port}`, '--port', '0'];
  const keys = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
  const res = await runCli(args, bareAwsEnv(home, keys));
  const line = oneLine(t, res, 'unreachable endpoint');
  t.match(line, `http://127.0.0.1:${port} is unreachable (ECONNREFUSED)`, 'names the endpoint and the cause');
  t.match(line, /check --dynamodb-endpoint \/ DYNAMODB_ENDPOINT/, 'names the setting to check');

  const debug = await runCli(args, bareAwsEnv(home, { ...keys, LOG_LEVEL: 'debug' }));
  t.equal(debug.code, 1, 'LOG_LEVEL=debug: exit 1');
  t.match(debug.stderr, /unreachable \(ECONNREFUSED\)/, 'LOG_LEVEL=debug: the same line');
  t.match(debug.stderr, STACK, 'LOG_LEVEL=debug: with the stack trace');
  t.match(debug.stderr, /caused by: .*ECONNREFUSED/, 'LOG_LEVEL=debug: and the SDK error it came from');
  const flag = await runCli([...args, '--log-level', 'debug'], bareAwsEnv(home, keys));
  t.match(flag.stderr, STACK, '--log-level debug: with the stack trace');
});

t.test('the aws backend without credentials', async (t) => {
  const res = await runCli(['--backend', 'aws', '--port', '0'], bareAwsEnv(home));
  const line = oneLine(t, res, 'no credentials');
  t.match(line, /no AWS credentials for DynamoDB in us-east-1/, 'says what is missing, and for what');
  t.match(line, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE/, 'says how to provide them');
  t.notMatch(line, /CredentialsProviderError/, 'not the SDK\'s class name');
});

t.test('a data dir in use by another process', async (t) => {
  const dataDir = path.join(home, 'data');
  const first = launchCli(['--data-dir', dataDir, '--port', '0'], cliEnv({ LOG_LEVEL: 'info' }));
  t.teardown(() => void first.child.kill('SIGKILL'));
  const deadline = Date.now() + 30_000;
  while (!first.out().includes('dynamorm sidecar ready')) {
    if (Date.now() > deadline || first.child.exitCode !== null) throw new Error(`first sidecar did not start: ${first.err()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const second = await runCli(['--data-dir', dataDir, '--port', '0'], cliEnv());
  const line = oneLine(t, second, 'second sidecar on the same --data-dir');
  t.match(line, `--data-dir ${dataDir} is in use by another process`, 'names the directory and the cause');
  t.match(line, /stop that sidecar, or give this one another --data-dir/, 'says what to do');
  t.notMatch(second.stderr, /Database is closed/, 'not dynalite\'s raw error');
  t.equal(first.child.exitCode, null, 'the first sidecar is unaffected');
  first.child.kill('SIGTERM');
  const exit = await first.done;
  t.equal(exit.code, 0, 'and shuts down cleanly');
});
