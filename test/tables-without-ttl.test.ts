// An aws-backend sidecar with --create-tables against a DynamoDB-compatible endpoint that has no UpdateTimeToLive
// (dynalite served over HTTP): the tables are made, the boot goes on with one warning naming the tables whose TTL
// stayed off, and the sidecar serves.
import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { cliEnv, launchCli } from './helpers/cli.js';

const require = createRequire(import.meta.url);
const dynalite = require('dynalite') as (options: Record<string, number>) => Server;

t.test('created tables without TTL: one warning, then served', async (t) => {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const cli = launchCli([], cliEnv({
    BACKEND: 'aws',
    DYNAMODB_ENDPOINT: endpoint,
    CREATE_TABLES: 'true',
    PORT: '0',
    HOST: '127.0.0.1',
    DOCS: 'false',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  }));
  t.teardown(() => cli.child.kill('SIGTERM'));

  const deadline = Date.now() + 30_000;
  while (!cli.out().includes('dynamorm sidecar ready') && Date.now() < deadline && cli.child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  t.match(cli.out(), /dynamorm sidecar ready/, `the sidecar booted (stderr: ${cli.err().slice(-300)})`);
  t.match(cli.out(), /no UpdateTimeToLive: TTL is off on the created table\(s\) [^"]*users/, 'one warning names the tables whose TTL stayed off');
  t.match(cli.out(), /dynamorm_sidecar_idempotency/, 'the idempotency table among them');

  const base = /"url":"(http:\/\/[^"]+)"/.exec(cli.out())?.[1] ?? 'http://127.0.0.1:1';
  const created = await fetch(`${base}/v1/models/User/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ PK: 'TTL#1', SK: 'PROFILE', email: 'ttl@example.com', ttl: 1893456000 }),
  });
  t.equal(created.status, 201, 'a create with a ttl is served');
  const read = await fetch(`${base}/v1/models/User/items/TTL%231/PROFILE`);
  t.equal((await read.json()).ttl, 1893456000, 'and read back');
});
