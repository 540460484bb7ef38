import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

process.env.AWS_ACCESS_KEY_ID ??= 'testing';
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
import { send, startTestSidecar } from './helpers/sidecar.js';

t.test('/healthz, /readyz and /metrics', async (t) => {
  const s = await startTestSidecar();
  t.teardown(() => s.close());
  t.equal((await s.request('GET', '/healthz')).status, 200);
  const ready = await s.request('GET', '/readyz');
  t.equal(ready.status, 200);
  t.equal(ready.json.status, 'ready');
  t.same(Object.keys(ready.json.checks).sort(), ['backend', 'models', 'partners']);

  await s.request('POST', '/v1/models/User/items', { PK: 'OPS#1', SK: 'P', email: 'o@x', taxId: 'CANARY-OPS-1' });
  await s.request('GET', '/v1/models/User/items/OPS%231/P');
  await s.request('GET', '/v1/models/User/items/OPS%232/P');
  // A create of an existing key: PutItem fails its condition, then one GetItem tells 409 from 412.
  t.equal((await s.request('POST', '/v1/models/User/items', { PK: 'OPS#1', SK: 'P', email: 'o@x' })).status, 409);
  const metrics = await s.request('GET', '/metrics');
  t.equal(metrics.status, 200);
  t.match(metrics.headers.get('content-type'), /text\/plain/);
  t.match(metrics.text, /dynamorm_http_request_duration_seconds_bucket\{[^}]*model="User"[^}]*op="create"[^}]*status="201"/);
  t.match(metrics.text, /dynamorm_http_request_duration_seconds_count\{[^}]*op="get"[^}]*status="404"[^}]*\} 1/);
  t.match(metrics.text, /dynamorm_dynamodb_calls_total\{operation="PutItem",outcome="ok"\} 1/);
  // The lean client's onCall hook: outcomes, and a latency histogram per operation (both GETs and the 409's check).
  t.match(metrics.text, /dynamorm_dynamodb_calls_total\{operation="PutItem",outcome="error"\} 1/);
  t.match(metrics.text, /dynamorm_dynamodb_calls_total\{operation="GetItem",outcome="ok"\} 3/);
  t.match(metrics.text, /dynamorm_dynamodb_call_duration_seconds_count\{operation="GetItem"\} 3/);
  t.match(metrics.text, /dynamorm_dynamodb_call_duration_seconds_bucket\{le="0.005",operation="PutItem"\} \d/);
  t.match(metrics.text, /dynamorm_kms_calls_total\{operation="GenerateDataKey"\} 1/);
  t.match(metrics.text, /dynamorm_data_key_cache_total\{side="decrypt",result="hit"\} 1/);
  t.match(metrics.text, /process_resident_memory_bytes/);
  t.notMatch(metrics.text, /CANARY-OPS-1/, 'no plaintext in metrics');
});

t.test('/readyz turns 503 when the backend goes away', async (t) => {
  const host = await startTestSidecar();
  const s = await startTestSidecar({ backend: 'aws', dynamodbEndpoint: host.sidecar.backend.endpoint });
  t.teardown(() => s.close());
  t.equal((await s.request('GET', '/readyz')).status, 200);
  await host.close();
  await new Promise((r) => setTimeout(r, 2_100)); // readiness caches the backend check for 2 s
  const ready = await s.request('GET', '/readyz');
  t.equal(ready.status, 503);
  t.equal(ready.json.checks.backend.ok, false);
  t.equal((await s.request('GET', '/healthz')).status, 200, 'liveness does not depend on the backend');
});

t.test('Swagger UI is served at /docs unless turned off', async (t) => {
  const on = await startTestSidecar({ docs: true });
  t.teardown(() => on.close());
  const page = await on.request('GET', '/docs/');
  t.equal(page.status, 200);
  t.match(page.text, /swagger-ui/i);
  const off = await startTestSidecar({ docs: false });
  t.teardown(() => off.close());
  t.equal((await off.request('GET', '/docs/')).status, 404);
});

t.test('event-loop pressure sheds load with 503 ErrOverloaded and Retry-After', async (t) => {
  const s = await startTestSidecar({ maxEventLoopDelayMs: 50 });
  t.teardown(() => s.close());
  let shed: Awaited<ReturnType<typeof send>> | undefined;
  for (let i = 0; i < 20 && !shed; i++) {
    const end = Date.now() + 300;
    while (Date.now() < end); // block the loop the sidecar shares with this test
    await new Promise((r) => setImmediate(r));
    const res = await s.request('GET', '/v1/models');
    if (res.status === 503) shed = res;
  }
  t.ok(shed, 'a request was shed while the loop was blocked');
  t.equal(shed?.json.code, 'ErrOverloaded');
  t.ok(shed?.headers.get('retry-after'));
});

t.test('SIGTERM under load: exits 0, and every acknowledged write is there after a restart', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'dynamorm-drain-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['dist/cli.js', '--port', '0', '--log-level', 'info', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:[^"]+)"/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', () => reject(new Error(`exited early: ${out}`)));
  });
  const exited = once(child, 'exit');
  let first!: () => void;
  const firstAck = new Promise<void>((r) => (first = r));
  const writes = Array.from({ length: 200 }, (_, i) =>
    send(url, 'POST', '/v1/models/Session/items', { id: `drain-${i}`, userId: 'u' }).then(
      (r) => {
        if (r.status === 201) first();
        return r.status;
      },
      () => 0,
    ),
  );
  await Promise.race([firstAck, Promise.all(writes)]);
  child.kill('SIGTERM');
  const [code, signal] = (await exited) as [number | null, string | null];
  const statuses = await Promise.all(writes);
  t.equal(code, 0, `exit code 0 (signal ${signal})`);
  t.match(out, /shutting down/);
  // 201 = acknowledged; 503 or a refused connection = never accepted (Fastify refuses new requests while closing).
  t.ok(statuses.every((s) => s === 201 || s === 503 || s === 0), `each write acknowledged or refused: ${statuses.join(',')}`);
  const acked = statuses.flatMap((s, i) => (s === 201 ? [i] : []));
  t.ok(acked.length > 0, `${acked.length} writes acknowledged before the drain finished`);

  const again = await startTestSidecar({ dataDir });
  t.teardown(() => again.close());
  const missing: number[] = [];
  for (const i of acked) if ((await again.request('GET', `/v1/models/Session/items/drain-${i}`)).status !== 200) missing.push(i);
  t.same(missing, [], 'no acknowledged write was lost');
});
