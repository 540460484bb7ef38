// Trace context (issue 12 part 4): the real CLI (backend 'aws') talks to dynalite through a recording proxy and
// exports spans to a local OTLP/HTTP receiver. Asserted: the request span is a child of the caller's traceparent
// (or X-Amzn-Trace-Id), one client span per DynamoDB call under it, the X-Amzn-Trace-Id each backend request
// carried (Root = the W3C trace id in X-Ray form, Parent = that client span), retries counted, the log line's
// trace id, and a new trace for a traceparent that is not valid. Then the lean data-plane client in-process.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { cliEnv, launchCli, type LaunchedCli } from './helpers/cli.js';
import { startMoto } from './helpers/moto.js';
import { send, startTestSidecar } from './helpers/sidecar.js';
import { tools, withTool } from './helpers/tools.js';
import { parseXrayHeader, startOtlpReceiver, startRecordingProxy, xrayRoot, type ReceivedSpan } from './helpers/otlp.js';
import { LeanDynamoClient } from '../src/store/dataplane/client.js';
import { parseAmznTraceId, parseTraceparent, runInTrace, startRequestTrace } from '../src/trace/context.js';

const SERVER = 2;
const CLIENT = 3;
const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const USERS = '/v1/models/User/items';
const userPath = (pk: string) => `${USERS}/${encodeURIComponent(pk)}/PROFILE`;

const host = await startTestSidecar();
t.teardown(() => host.close());
const dynalite = await host.sidecar.backend.exposeOnLoopback!();
// Requests whose body names `retry-me` fail once with a 500 (the client retries them).
const failedOnce = new Set<string>();
const proxy = await startRecordingProxy(dynalite, (r) => {
  const tag = /"PK":\{"S":"(retry-me[^"]*)"/.exec(r.body)?.[1];
  if (!tag || failedOnce.has(tag)) return false;
  failedOnce.add(tag);
  return true;
});
t.teardown(() => proxy.close());
const receiver = await startOtlpReceiver();
t.teardown(() => receiver.close());

async function startCli(env: Record<string, string>): Promise<{ cli: LaunchedCli; url: string }> {
  const cli = launchCli(['--host', '127.0.0.1', '--port', '0'], cliEnv({
    BACKEND: 'aws',
    DYNAMODB_ENDPOINT: proxy.url,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    LOG_LEVEL: 'info',
    DOCS: 'false',
    ...env,
  }));
  for (let i = 0; i < 600; i++) {
    const url = /"url":"([^"]+)".*dynamorm sidecar ready/.exec(cli.out())?.[1];
    if (url) return { cli, url };
    if (cli.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the sidecar did not start: ${cli.err()}${cli.out()}`);
}

const { cli, url } = await startCli({
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  OTEL_SERVICE_NAME: 'trace-test-sidecar',
  OTEL_BSP_SCHEDULE_DELAY: '50',
});
t.teardown(async () => {
  if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
});

const logLines = () =>
  cli.out().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request');

/** The request span of `traceId`, and the client spans under it once `clients` have arrived. */
async function spansOf(traceId: string, clients: number): Promise<{ server: ReceivedSpan; calls: ReceivedSpan[] }> {
  const [server] = await receiver.waitFor((s) => s.traceId === traceId && s.kind === SERVER);
  if (!server) throw new Error(`no request span for trace ${traceId}; received ${receiver.spans.length} spans`);
  const calls = await receiver.waitFor((s) => s.parentSpanId === server.spanId && s.kind === CLIENT, clients);
  return { server, calls };
}

t.test('traceparent: the request span continues the caller trace, one client span per DynamoDB call', async (t) => {
  const traceId = hex(16);
  const callerSpan = hex(8);
  const pk = `trace-${hex(4)}`;
  const headers = { traceparent: `00-${traceId}-${callerSpan}-01`, tracestate: 'vendor=abc' };
  const created = await send(url, 'POST', USERS, { PK: pk, SK: 'PROFILE', email: 'ann@example.com' }, headers);
  t.equal(created.status, 201, 'created');

  const { server, calls } = await spansOf(traceId, 1);
  t.equal(server.parentSpanId, callerSpan, "the request span's parent is the caller's span");
  t.equal(server.service, 'trace-test-sidecar', 'OTEL_SERVICE_NAME names the service');
  t.equal(server.name, 'POST /v1/models/User/items', 'span named after the route');
  t.equal(server.attributes['http.response.status_code'], 201, 'status recorded');
  t.equal(server.attributes['dynamorm.model'], 'User', 'model on the request span');
  t.ok(server.attributes['dynamorm.operation'], `operation on the request span (${server.attributes['dynamorm.operation']})`);

  const backend = proxy.requests.filter((r) => parseXrayHeader(r.traceHeader).Root === xrayRoot(traceId));
  t.ok(calls.length >= 1, `client spans under the request span (${calls.map((c) => c.name).join(', ')})`);
  t.equal(backend.length, calls.length, 'one client span per DynamoDB request that reached the backend');
  for (const call of calls) {
    t.equal(call.traceId, traceId, `${call.name}: same trace`);
    t.match(call.name, /^DynamoDB\.\w+$/, `${call.name}: named service.operation`);
    t.equal(call.attributes['rpc.service'], 'DynamoDB', `${call.name}: rpc.service`);
    t.equal(call.attributes['dynamorm.model'], 'User', `${call.name}: model`);
    t.ok(call.attributes['dynamorm.operation'], `${call.name}: operation`);
    t.equal(call.attributes['aws.attempts'], 1, `${call.name}: one attempt`);
    t.equal(call.attributes['dynamorm.retries'], 0, `${call.name}: no retries`);
    const sent = backend.find((r) => parseXrayHeader(r.traceHeader).Parent === call.spanId);
    t.ok(sent, `${call.name}: the backend request names this client span as its Parent`);
    t.equal(sent?.operation, call.attributes['rpc.method'], `${call.name}: the header went with ${call.attributes['rpc.method']}`);
    t.equal(parseXrayHeader(sent?.traceHeader).Sampled, '1', `${call.name}: Sampled=1 as the caller asked`);
  }
  const put = calls.find((c) => c.attributes['rpc.method'] === 'PutItem');
  t.same(put?.attributes['aws.dynamodb.table_names'], ['users'], 'PutItem names its table');

  const line = logLines().find((l) => l.traceId === traceId);
  t.ok(line, 'the request log line carries the trace id');
  t.equal(line?.status, 201, 'on the line of that request');
});

t.test('a retried call is one client span with its attempts; both attempts carry the same Parent', async (t) => {
  const traceId = hex(16);
  const pk = `retry-me-${hex(4)}`;
  const res = await send(url, 'POST', USERS, { PK: pk, SK: 'PROFILE', email: 'ann@example.com' }, { traceparent: `00-${traceId}-${hex(8)}-01` });
  t.equal(res.status, 201, 'created after one retry');
  const { calls } = await spansOf(traceId, 1);
  const put = calls.find((c) => c.attributes['rpc.method'] === 'PutItem');
  t.equal(put?.attributes['aws.attempts'], 2, 'two attempts');
  t.equal(put?.attributes['dynamorm.retries'], 1, 'one retry');
  const sent = proxy.requests.filter((r) => r.operation === 'PutItem' && r.body.includes(pk));
  t.equal(sent.length, 2, 'the backend saw both attempts');
  t.same(sent.map((r) => parseXrayHeader(r.traceHeader).Parent), [put?.spanId, put?.spanId], 'each with the client span as Parent');
});

t.test('X-Amzn-Trace-Id is accepted as the caller context', async (t) => {
  const traceId = hex(16);
  const parent = hex(8);
  const res = await send(url, 'GET', userPath(`missing-${hex(4)}`), undefined, { 'x-amzn-trace-id': `Root=${xrayRoot(traceId)};Parent=${parent};Sampled=1` });
  t.equal(res.status, 404, 'answered');
  const { server, calls } = await spansOf(traceId, 1);
  t.equal(server.parentSpanId, parent, 'the request span hangs under the X-Ray Parent');
  t.equal(calls[0]?.attributes['rpc.method'], 'GetItem', 'its GetItem is a client span under it');
  t.equal(logLines().find((l) => l.traceId === traceId)?.status, 404, 'the log line carries the trace id');
});

t.test('a traceparent that is not valid is ignored: 200, a new trace', async (t) => {
  const pk = `bad-tp-${hex(4)}`;
  t.equal((await send(url, 'POST', USERS, { PK: pk, SK: 'PROFILE', email: 'ann@example.com' })).status, 201, 'created');
  const badTraceId = '0'.repeat(32);
  for (const bad of [`00-${badTraceId}-${hex(8)}-01`, 'not-a-traceparent', `00-${hex(16).toUpperCase()}-${hex(8)}-01`]) {
    const before = logLines().length;
    const res = await send(url, 'GET', userPath(pk), undefined, { traceparent: bad, 'x-amzn-trace-id': 'Root=garbage' });
    t.equal(res.status, 200, `${bad}: 200`);
    let line: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && !line; i++) {
      line = logLines().slice(before).find((l) => l.method === 'GET' && l.status === 200);
      if (!line) await new Promise((r) => setTimeout(r, 20));
    }
    const traceId = String(line?.traceId);
    t.match(traceId, /^[0-9a-f]{32}$/, `${bad}: a new trace id on the log line`);
    const { server } = await spansOf(traceId, 1);
    t.equal(server.parentSpanId, '', `${bad}: the request span is a root span`);
  }
});

t.test('spans still queued are exported at SIGTERM', async (t) => {
  cli.child.kill('SIGTERM');
  t.equal((await cli.done).code, 0, 'the first sidecar exits cleanly');
  // A minute's batching delay: only the flush on shutdown can export the span before the process exits.
  const { cli: slow, url: slowUrl } = await startCli({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '60000' });
  t.teardown(() => void (slow.child.exitCode === null && slow.child.kill('SIGKILL')));
  const traceId = hex(16);
  const res = await send(slowUrl, 'GET', userPath(`late-${hex(4)}`), undefined, { traceparent: `00-${traceId}-${hex(8)}-01` });
  t.equal(res.status, 404, 'answered');
  await new Promise((r) => setTimeout(r, 200));
  t.notOk(receiver.spans.some((s) => s.traceId === traceId), 'not exported while running');
  slow.child.kill('SIGTERM');
  const exit = await slow.done;
  t.equal(exit.code, 0, 'clean exit');
  t.ok(receiver.spans.some((s) => s.traceId === traceId && s.kind === SERVER), 'the request span was exported before exit');
  t.ok(receiver.spans.some((s) => s.traceId === traceId && s.name === 'DynamoDB.GetItem'), 'and its GetItem client span');
});

t.test('without OTEL_EXPORTER_OTLP_ENDPOINT: no spans, the caller span is the Parent passed on', async (t) => {
  const { cli: plain, url: plainUrl } = await startCli({});
  t.teardown(() => void plain.child.kill('SIGKILL'));
  const traceId = hex(16);
  const callerSpan = hex(8);
  const spansBefore = receiver.spans.length;
  const res = await send(plainUrl, 'GET', userPath(`plain-${hex(4)}`), undefined, { traceparent: `00-${traceId}-${callerSpan}-00` });
  t.equal(res.status, 404, 'answered');
  const sent = proxy.requests.filter((r) => parseXrayHeader(r.traceHeader).Root === xrayRoot(traceId));
  t.equal(sent.length, 1, 'the GetItem carried the trace');
  t.same(parseXrayHeader(sent[0]?.traceHeader), { Root: xrayRoot(traceId), Parent: callerSpan, Sampled: '0' }, 'Parent = the caller span, Sampled as the caller said');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(receiver.spans.length, spansBefore, 'nothing exported');
  const untraced = await send(plainUrl, 'GET', userPath(`plain-${hex(4)}`));
  t.equal(untraced.status, 404, 'answered without trace headers');
  const last = proxy.requests.at(-1);
  t.match(parseXrayHeader(last?.traceHeader), { Sampled: '0' }, 'a request without trace headers starts an unsampled trace');
  t.notOk(parseXrayHeader(last?.traceHeader).Parent, 'with no span to name as Parent');
});

t.test('header parsing', async (t) => {
  const id = 'a'.repeat(32);
  t.same(parseTraceparent(`00-${id}-${'b'.repeat(16)}-01`, 'k=v'), { traceId: id, spanId: 'b'.repeat(16), sampled: true, traceState: 'k=v' });
  t.equal(parseTraceparent(`00-${id}-${'b'.repeat(16)}-01-extra`), undefined, 'version 00 has exactly four fields');
  t.ok(parseTraceparent(`01-${id}-${'b'.repeat(16)}-00-future`), 'a later version is read as 00');
  t.equal(parseTraceparent(`ff-${id}-${'b'.repeat(16)}-01`), undefined, 'version ff is invalid');
  t.equal(parseTraceparent(`00-${id}-${'0'.repeat(16)}-01`), undefined, 'all-zero span id');
  t.same(parseAmznTraceId(`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`), {
    traceId: '5759e988bd862e3fe1be46a994272793',
    spanId: '53995c3f42cd8ad8',
    sampled: true,
  });
  t.equal(parseAmznTraceId('Root=1-5759e988-bd862e3fe1be46a994272793'), undefined, 'no Parent: nothing to hang under');
});

t.test('lean data-plane client: header and client span from the trace context', async (t) => {
  const lean = new LeanDynamoClient({ region: 'us-east-1', endpoint: proxy.url, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  t.teardown(() => lean.close());
  const input = { TableName: 'users', Key: { PK: { S: `lean-${hex(4)}` }, SK: { S: 'PROFILE' } }, ReturnConsumedCapacity: 'TOTAL' };

  await lean.call('GetItem', input);
  t.equal(proxy.requests.at(-1)?.traceHeader, undefined, 'outside a traced request: no header');

  const caller = { traceId: hex(16), spanId: hex(8), sampled: true };
  await runInTrace(startRequestTrace(caller, 'test', {}), () => lean.call('GetItem', input));
  t.same(parseXrayHeader(proxy.requests.at(-1)?.traceHeader), { Root: xrayRoot(caller.traceId), Parent: caller.spanId, Sampled: '1' }, 'span export off: Parent = the caller span');

  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
  const { startTracing } = await import('../src/trace/otel.js');
  const tracing = (await startTracing())!;
  t.teardown(() => tracing.shutdown());
  const traced = { traceId: hex(16), spanId: hex(8), sampled: true };
  const request = startRequestTrace(traced, 'test request', {});
  Object.assign(request.attributes, { 'dynamorm.partner': 'acme' });
  const out = await runInTrace(request, () => lean.call('GetItem', input));
  request.span!.end();
  await tracing.flush();
  const { server, calls } = await spansOf(traced.traceId, 1);
  t.equal(server.parentSpanId, traced.spanId, 'request span under the caller');
  const call = calls[0];
  t.equal(call?.name, 'DynamoDB.GetItem', 'one client span');
  t.same(parseXrayHeader(proxy.requests.at(-1)?.traceHeader), { Root: xrayRoot(traced.traceId), Parent: call?.spanId, Sampled: '1' }, 'Parent = the client span');
  t.equal(call?.attributes['dynamorm.partner'], 'acme', 'partner copied from the request');
  t.same(call?.attributes['aws.dynamodb.table_names'], ['users'], 'table');
  t.ok(out.ConsumedCapacity, 'dynalite answered with ConsumedCapacity');
  t.equal(call?.attributes['dynamorm.consumed_capacity_units'], (out.ConsumedCapacity as { CapacityUnits: number }).CapacityUnits, 'consumed capacity recorded');
  t.equal(call?.attributes['aws.attempts'], 1, 'attempts');
});

await withTool(t, tools.moto(), 'a partner with a KMS key (moto): STS and KMS calls are client spans with the header', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  const awsProxy = await startRecordingProxy(moto.endpoint);
  t.teardown(() => awsProxy.close());
  const region = 'us-east-1';
  const kms = new KMSClient({ region, endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const keyArn = (await kms.send(new CreateKeyCommand({ Description: 'trace test' }))).KeyMetadata!.Arn!;
  kms.destroy();
  const dir = mkdtempSync(path.join(tmpdir(), 'trace-partners-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const partnersFile = path.join(dir, 'partners.json');
  writeFileSync(partnersFile, JSON.stringify({ partners: { acme: { roleArn: 'arn:aws:iam::123456789012:role/acme', kmsKeyArn: keyArn } } }));
  const { cli: partnered, url: partneredUrl } = await startCli({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: '50',
    PARTNERS_FILE: partnersFile,
    STS_ENDPOINT: awsProxy.url,
    KMS_ENDPOINT: awsProxy.url,
  });
  t.teardown(() => void partnered.child.kill('SIGKILL'));

  const traceId = hex(16);
  const item = { PK: `kms-${hex(4)}`, SK: 'PROFILE', email: 'ann@example.com', taxId: 'secret-tax-id' };
  const res = await send(partneredUrl, 'POST', USERS, item, { traceparent: `00-${traceId}-${hex(8)}-01`, 'x-partner-id': 'acme' });
  t.equal(res.status, 201, 'created with an encrypted attribute');
  const { server, calls } = await spansOf(traceId, 3);
  t.equal(server.attributes['dynamorm.partner'], 'acme', 'partner on the request span');
  const byName = new Map(calls.map((c) => [c.name, c]));
  for (const name of ['STS.AssumeRole', 'KMS.GenerateDataKey', 'DynamoDB.PutItem']) {
    const call = byName.get(name);
    t.ok(call, `${name}: a client span under the request span (got ${[...byName.keys()].join(', ')})`);
    t.equal(call?.attributes['dynamorm.partner'], 'acme', `${name}: partner`);
  }
  for (const [name, match] of [['STS.AssumeRole', (r: { body: string }) => r.body.includes('Action=AssumeRole')], ['KMS.GenerateDataKey', (r: { operation: string }) => r.operation === 'GenerateDataKey']] as const) {
    const sent = awsProxy.requests.find((r) => match(r as never) && parseXrayHeader(r.traceHeader).Root === xrayRoot(traceId));
    t.ok(sent, `${name}: the request reached moto with the trace header`);
    t.equal(parseXrayHeader(sent?.traceHeader).Parent, byName.get(name)?.spanId, `${name}: Parent = its client span`);
  }
  const dynamo = proxy.requests.find((r) => r.operation === 'PutItem' && r.body.includes(item.PK));
  t.equal(parseXrayHeader(dynamo?.traceHeader).Parent, byName.get('DynamoDB.PutItem')?.spanId, 'PutItem: Parent = its client span');
  t.notOk(JSON.stringify(receiver.spans).includes('secret-tax-id'), 'no plaintext of the encrypted attribute in any span');
});
