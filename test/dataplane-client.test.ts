// The lean data-plane client against a scripted HTTP server: what it sends, how it signs, retries, checks answers,
// caches credentials, and reports calls to /metrics.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/transport';
import { SignatureV4 } from '@smithy/signature-v4';
import t, { type Test } from 'tap';
import { LeanDynamoClient, USER_AGENT, type CallRecord, type LeanClientOptions } from '../src/store/dataplane/client.js';
import { DataPlaneError } from '../src/store/dataplane/port.js';
import { isConditionFailure, mapBackendError } from '../src/store/backend-errors.js';
import { Metrics } from '../src/metrics.js';

interface Seen {
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}
type Script = (req: Seen, res: ServerResponse, n: number) => void;

function answer(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': data.length, 'x-amz-crc32': String(crc32(data) >>> 0), ...extra });
  res.end(data);
}

async function scripted(t: Test, script: Script, listen: 'tcp' | 'unix' = 'tcp') {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      script(s, res, seen.length);
    });
  });
  let endpoint: string;
  let socketPath: string | undefined;
  if (listen === 'unix') {
    const dir = mkdtempSync(join(tmpdir(), 'dataplane-'));
    socketPath = join(dir, 's.sock');
    server.listen(socketPath);
    endpoint = 'http://embedded.localhost';
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  } else {
    server.listen(0, '127.0.0.1');
  }
  await once(server, 'listening');
  if (listen === 'tcp') endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const calls: CallRecord[] = [];
  const client = (options: Partial<LeanClientOptions> = {}) => {
    const c = new LeanDynamoClient({
      region: 'eu-west-1',
      endpoint,
      socketPath,
      credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' },
      random: () => 0,
      onCall: (call) => calls.push(call),
      ...options,
    });
    t.teardown(() => c.close());
    return c;
  };
  return { seen, calls, client };
}

const ok: Script = (_req, res) => answer(res, 200, { Item: { PK: { S: 'a' } } });

t.test('a call is one signed JSON-protocol POST that the SDK signer would sign the same way', async (t) => {
  const { seen, client } = await scripted(t, ok);
  const date = new Date('2026-11-30T10:00:00Z');
  const credentials = { accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'session/token=' };
  const out = await client({ credentials, now: () => date }).GetItem({ TableName: 't', Key: { PK: { S: 'ü' } } });
  t.same(out, { Item: { PK: { S: 'a' } } }, 'the answer is the parsed body');
  const [req] = seen;
  t.equal(req!.headers['x-amz-target'], 'DynamoDB_20120810.GetItem');
  t.equal(req!.headers['content-type'], 'application/x-amz-json-1.0');
  t.match(req!.headers['user-agent'], /^dynamorm-sidecar\/\d+\.\d+\.\d+ /, 'the user agent names the sidecar');
  t.equal(req!.headers['user-agent'], USER_AGENT);
  t.equal(req!.headers['x-amz-security-token'], 'session/token=');
  t.same(JSON.parse(req!.body), { TableName: 't', Key: { PK: { S: 'ü' } } });
  const signedNames = /SignedHeaders=([^,]+)/.exec(String(req!.headers.authorization))![1]!.split(';');
  const headers: Record<string, string> = {};
  for (const name of signedNames) headers[name] = String(req!.headers[name]);
  const sdk = new SignatureV4({ credentials, region: 'eu-west-1', service: 'dynamodb', sha256: Sha256, applyChecksum: false });
  const signed = (await sdk.sign(new HttpRequest({ method: 'POST', hostname: 'x', path: '/', headers, body: req!.body }), { signingDate: date })) as HttpRequest;
  t.equal(req!.headers.authorization, signed.headers.authorization, 'the SDK signer computes the signature that was sent');
});

t.test('a Unix-socket endpoint carries the calls', async (t) => {
  const { seen, client } = await scripted(t, ok, 'unix');
  t.same(await client().GetItem({ TableName: 't' }), { Item: { PK: { S: 'a' } } });
  t.equal(seen[0]!.headers.host, 'embedded.localhost', 'the host header is the endpoint\'s');
});

t.test('credentials are resolved once, and again only near their expiry', async (t) => {
  const { client } = await scripted(t, ok);
  let resolved = 0;
  let expiration = new Date(Date.now() + 3_600_000);
  const c = client({ credentials: async () => (resolved++, { accessKeyId: 'A', secretAccessKey: 'S', expiration }) });
  await Promise.all(Array.from({ length: 20 }, () => c.GetItem({ TableName: 't' })));
  for (let i = 0; i < 5; i++) await c.GetItem({ TableName: 't' });
  t.equal(resolved, 1, '25 calls, one resolution');
  expiration = new Date(Date.now() + 60_000);
  // The cached set still expires in an hour: nothing to refresh.
  await c.GetItem({ TableName: 't' });
  t.equal(resolved, 1);
  const near = client({ credentials: async () => (resolved++, { accessKeyId: 'A', secretAccessKey: 'S', expiration: new Date(Date.now() + 60_000) }) });
  resolved = 0;
  await near.GetItem({ TableName: 't' });
  await near.GetItem({ TableName: 't' });
  t.equal(resolved, 2, 'credentials within the refresh window are asked for again');
});

t.test('a checksum mismatch and a truncated body are retried', async (t) => {
  const { seen, calls, client } = await scripted(t, (_req, res, n) => {
    if (n === 1) return answer(res, 200, { Item: {} }, { 'x-amz-crc32': '12345' });
    if (n === 2) {
      res.writeHead(200, { 'content-length': 100 });
      res.write('{"Item":');
      return setImmediate(() => res.socket!.destroy());
    }
    return ok(_req, res, n);
  });
  const out = await client({ maxAttempts: 3 }).GetItem({ TableName: 't' });
  t.same(out, { Item: { PK: { S: 'a' } } }, 'the third attempt answers');
  t.equal(seen.length, 3);
  t.same(calls.map((c) => [c.operation, c.outcome, c.attempts]), [['GetItem', 'ok', 3]], 'one call of three attempts');

  const bad = await scripted(t, (_req, res) => answer(res, 200, { Item: {} }, { 'x-amz-crc32': '1' }));
  const err = await bad.client({ maxAttempts: 2 }).GetItem({ TableName: 't' }).catch((e: unknown) => e);
  t.equal((err as DataPlaneError).name, 'CRC32CheckFailed');
  t.equal((err as DataPlaneError).retryable, true, 'a checksum mismatch is retryable');
  t.equal(bad.seen.length, 2, 'tried as often as maxAttempts allows');
});

t.test('TransactWriteItems carries a ClientRequestToken that its retries resend, as the SDK fills it in', async (t) => {
  const { seen, client } = await scripted(t, (_req, res, n) => {
    if (n === 1) return res.socket!.destroy(); // the answer of the first attempt is lost
    return answer(res, 200, {});
  });
  const c = client({ maxAttempts: 3 });
  await c.TransactWriteItems({ TransactItems: [] });
  t.equal(seen.length, 2, 'retried once after the lost answer');
  const tokens = seen.map((s) => JSON.parse(s.body).ClientRequestToken as string);
  t.match(tokens[0], /^[0-9a-f-]{36}$/, 'a token was added');
  t.equal(tokens[1], tokens[0], 'the retry resends the same token');
  await c.TransactWriteItems({ TransactItems: [], ClientRequestToken: 'mine' });
  t.equal(JSON.parse(seen[2]!.body).ClientRequestToken, 'mine', 'a caller\'s own token is kept');
  await c.TransactWriteItems({ TransactItems: [] });
  t.not(JSON.parse(seen[3]!.body).ClientRequestToken, tokens[0], 'another call gets another token');
});

t.test('errors carry DynamoDB\'s short name, the old item and the cancellation reasons', async (t) => {
  const { seen, client } = await scripted(t, (req, res) => {
    const target = String(req.headers['x-amz-target']);
    if (target.endsWith('PutItem')) {
      return answer(res, 400, { __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException', message: 'The conditional request failed', Item: { PK: { S: 'old' } } });
    }
    return answer(res, 400, {
      __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
      Message: 'Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]',
      CancellationReasons: [{ Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' }, { Code: 'None' }],
    });
  });
  const c = client();
  const put = (await c.PutItem({ TableName: 't' }).catch((e: unknown) => e)) as DataPlaneError;
  t.ok(put instanceof DataPlaneError);
  t.equal(put.name, 'ConditionalCheckFailedException');
  t.equal(put.message, 'The conditional request failed');
  t.same(put.Item, { PK: { S: 'old' } }, 'the item on a failed condition');
  t.equal(put.retryable, false);
  t.ok(isConditionFailure(put), 'backend-errors.ts recognises it');
  const txn = (await c.TransactWriteItems({ TransactItems: [] }).catch((e: unknown) => e)) as DataPlaneError;
  t.equal(txn.name, 'TransactionCanceledException');
  t.match(txn.message, /Transaction cancelled/, 'Message (capitalised) read too');
  t.same(txn.CancellationReasons?.map((r) => r.Code), ['ConditionalCheckFailed', 'None']);
  t.equal(seen.length, 2, 'neither was retried');
});

t.test('throttling backs off and gives up after maxAttempts; the 503 it maps to is ErrThrottled', async (t) => {
  const { seen, calls, client } = await scripted(t, (_req, res) => answer(res, 400, { __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'slow down' }));
  const err = (await client({ maxAttempts: 3 }).Query({ TableName: 't' }).catch((e: unknown) => e)) as DataPlaneError;
  t.equal(err.name, 'ProvisionedThroughputExceededException');
  t.ok(err.throttling, 'classified as throttling');
  t.equal(err.attempts, 3);
  t.equal(seen.length, 3);
  t.same(calls.at(-1), { operation: 'Query', seconds: calls.at(-1)!.seconds, outcome: 'throttled', attempts: 3 });
  t.equal(mapBackendError(err).code, 'ErrThrottled');
});

t.test('the retry deadline and the retry quota bound retries', async (t) => {
  const { seen, client } = await scripted(t, (_req, res) => answer(res, 500, { __type: 'InternalServerError', message: 'boom' }));
  const err = (await client({ maxAttempts: 5, retryDeadlineMs: 0 }).GetItem({}).catch((e: unknown) => e)) as DataPlaneError;
  t.equal(err.name, 'InternalServerError');
  t.equal(seen.length, 1, 'no retry once the deadline has passed');

  const c = client({ maxAttempts: 2 });
  let attempts = 0;
  for (let i = 0; i < 101; i++) attempts += ((await c.GetItem({}).catch((e: unknown) => e)) as DataPlaneError).attempts;
  t.equal(attempts, 201, 'the quota (500 tokens, 5 a retry) paid for 100 retries, not the 101st');
  t.equal(c.retryTokens, 0);
});

t.test('an endpoint that never answers fails with a TimeoutError (504), one that refuses with 503', async (t) => {
  const { client } = await scripted(t, () => undefined);
  const err = (await client({ maxAttempts: 1, requestTimeoutMs: 100 }).GetItem({}).catch((e: unknown) => e)) as DataPlaneError;
  t.equal(err.name, 'TimeoutError');
  t.equal(mapBackendError(err).status, 504);
  const closed = new LeanDynamoClient({ region: 'r', endpoint: 'http://127.0.0.1:1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 });
  const refused = (await closed.GetItem({}).catch((e: unknown) => e)) as DataPlaneError;
  t.equal(refused.code, 'ECONNREFUSED');
  t.equal(refused.retryable, true);
  t.equal(mapBackendError(refused).code, 'ErrBackendUnavailable');
  closed.close();
});

t.test('calls show in /metrics: the calls counter, retries and a latency histogram per operation', async (t) => {
  const metrics = new Metrics();
  const { client } = await scripted(t, (req, res, n) => (n === 1 ? answer(res, 503, {}) : ok(req, res, n)));
  const c = client({ onCall: (call) => metrics.dynamoCall(call) });
  await c.GetItem({});
  await c.GetItem({});
  const text = await metrics.registry.metrics();
  t.match(text, /dynamorm_dynamodb_calls_total\{operation="GetItem",outcome="ok"\} 2/);
  t.match(text, /dynamorm_dynamodb_retries_total\{operation="GetItem"\} 1/);
  t.match(text, /dynamorm_dynamodb_call_duration_seconds_count\{operation="GetItem"\} 2/);
  t.match(text, /dynamorm_dynamodb_call_duration_seconds_bucket\{le="5",operation="GetItem"\} 2/);
});
