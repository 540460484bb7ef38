import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteTableCommand, GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import t, { type Test } from 'tap';
import { send, startTestSidecar, type TestResponse, type TestSidecar } from './helpers/sidecar.js';

// External-endpoint sidecars below take credentials from the standard AWS chain.
process.env.AWS_ACCESS_KEY_ID ??= 'testing';
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';

const J = { 'content-type': 'application/json' };
const open = new Set<{ close(): Promise<void> }>();
t.teardown(async () => {
  for (const s of [...open].reverse()) await s.close().catch(() => undefined);
});

async function start(overrides: Parameters<typeof startTestSidecar>[0] = {}): Promise<TestSidecar> {
  const s = await startTestSidecar(overrides);
  open.add(s);
  return s;
}
async function stop(s: { close(): Promise<void> }): Promise<void> {
  open.delete(s);
  await s.close();
}

/** Every response this file sees, to check the "never a 500" rule at the end. */
const seen: { what: string; res: TestResponse }[] = [];
async function req(s: TestSidecar, method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse> {
  const res = await send(s.url, method, p, body, headers);
  seen.push({ what: `${method} ${p}`, res });
  return res;
}

/** An RFC 9457 problem with the given status and stable code. */
function problem(t: Test, res: TestResponse, status: number, code: string, label = code): void {
  t.equal(res.status, status, `${label}: status ${status}`, { body: res.text });
  t.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, `${label}: problem+json`);
  t.equal(res.json?.code, code, `${label}: code ${code}`, { body: res.text });
  t.equal(res.json?.status, status, `${label}: body status`);
  t.equal(res.json?.type, `urn:dynamorm-sidecar:error:${code}`, `${label}: type`);
  t.type(res.json?.title, 'string', `${label}: title`);
  t.type(res.json?.detail, 'string', `${label}: detail`);
  t.equal(res.json?.requestId, res.headers.get('x-request-id'), `${label}: requestId echoes x-request-id`);
}

const s = await start({ bodyLimit: 2048 });
const user = { PK: 'USER#e1', SK: 'PROFILE', email: 'e1@example.com' };

t.test('malformed JSON → 400 ErrInvalidRequest', async (t) => {
  problem(t, await req(s, 'POST', '/v1/models/User/items', '{"PK":', J), 400, 'ErrInvalidRequest', 'truncated');
  problem(t, await req(s, 'POST', '/v1/models/User/items', "{'PK':'a'}", J), 400, 'ErrInvalidRequest', 'single quotes');
  problem(t, await req(s, 'POST', '/v1/models/User/items', '{"PK":"a","SK":"b","email":"e"} trailing', J), 400, 'ErrInvalidRequest', 'trailing garbage');
  problem(t, await req(s, 'PATCH', '/v1/models/User/items/a/b', '{"set":{"name":"x"},}', J), 400, 'ErrInvalidRequest', 'PATCH trailing comma');
  problem(t, await req(s, 'POST', '/v1/models/User/items', 'null', J), 400, 'ErrInvalidRequest', 'null body');
  problem(t, await req(s, 'POST', '/v1/models/User/items', '[]', J), 400, 'ErrInvalidRequest', 'array body');
  const deep = `{"PK":"a","SK":"b","email":"e","profile":${'['.repeat(1000)}${']'.repeat(1000)}}`;
  const res = await req(s, 'POST', '/v1/models/User/items', deep, J);
  t.equal(res.status, 400, 'very deep nesting is a 400, not a crash');
});

t.test('invalid UTF-8 in the body → 400 ErrInvalidRequest', async (t) => {
  const bytes = Buffer.concat([Buffer.from('{"PK":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('","SK":"b","email":"e"}')]);
  const res = await req(s, 'POST', '/v1/models/User/items', new Uint8Array(bytes), J);
  problem(t, res, 400, 'ErrInvalidRequest', 'invalid UTF-8');
  t.match(res.json.detail, /UTF-8/);
  const overlong = Buffer.concat([Buffer.from('{"PK":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('","SK":"b","email":"e"}')]);
  problem(t, await req(s, 'POST', '/v1/models/User/items', new Uint8Array(overlong), J), 400, 'ErrInvalidRequest', 'overlong UTF-8');
  const lone = Buffer.concat([Buffer.from('{"set":{"name":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}}')]);
  problem(t, await req(s, 'PATCH', '/v1/models/User/items/a/b', new Uint8Array(lone), J), 400, 'ErrInvalidRequest', 'surrogate in UTF-8 (PATCH)');
  t.equal((await req(s, 'GET', '/v1/models/User/items/a/b')).status, 404, 'nothing was written');
});

t.test('a non-JSON content type → 415 ErrUnsupportedMediaType', async (t) => {
  const body = JSON.stringify(user);
  problem(t, await req(s, 'POST', '/v1/models/User/items', body, { 'content-type': 'text/plain' }), 415, 'ErrUnsupportedMediaType', 'text/plain');
  problem(
    t,
    await req(s, 'POST', '/v1/models/User/items', body, { 'content-type': 'application/x-www-form-urlencoded' }),
    415,
    'ErrUnsupportedMediaType',
    'form',
  );
  problem(t, await req(s, 'POST', '/v1/models/User/items', body, { 'content-type': 'application/xml' }), 415, 'ErrUnsupportedMediaType', 'xml');
  problem(
    t,
    await req(s, 'PATCH', '/v1/models/User/items/a/b', '{"set":{"name":"x"}}', { 'content-type': 'text/plain' }),
    415,
    'ErrUnsupportedMediaType',
    'PATCH text/plain',
  );
  t.equal((await req(s, 'GET', '/v1/models/User/items/USER%23e1/PROFILE')).status, 404, 'nothing was written');
});

t.test('a body over the limit → 413 ErrPayloadTooLarge', async (t) => {
  const big = JSON.stringify({ ...user, name: 'x'.repeat(10 * 1024) });
  problem(t, await req(s, 'POST', '/v1/models/User/items', big, J), 413, 'ErrPayloadTooLarge', '10 KB over a 2 KB limit');
  problem(t, await req(s, 'PUT', '/v1/models/User/items/a/b', big, J), 413, 'ErrPayloadTooLarge', 'PUT');
  const justUnder = JSON.stringify({ ...user, name: 'x'.repeat(1500) });
  t.ok(Buffer.byteLength(justUnder) < 2048);
  t.equal((await req(s, 'POST', '/v1/models/User/items', justUnder, J)).status, 201, 'a body under the limit is accepted');
  t.equal((await req(s, 'DELETE', '/v1/models/User/items/USER%23e1/PROFILE')).status, 204);

  // A Content-Length over the limit is refused before the body arrives.
  const port = Number(new URL(s.url).port);
  const head = await new Promise<string>((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => {
      sock.write('POST /v1/models/User/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{');
    });
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      data += d;
      if (data.includes('\r\n\r\n') && data.includes('}')) sock.destroy();
    });
    sock.on('close', () => resolve(data));
    sock.on('error', reject);
    setTimeout(() => sock.destroy(), 5_000);
  });
  t.match(head, /^HTTP\/1\.1 413 /, 'declared length over the limit: 413 without waiting for the body');
  t.match(head, /ErrPayloadTooLarge/);
});

t.test('an empty body → 400 ErrInvalidRequest', async (t) => {
  problem(t, await req(s, 'POST', '/v1/models/User/items', '', J), 400, 'ErrInvalidRequest', 'empty, json content type');
  problem(t, await req(s, 'POST', '/v1/models/User/items', '  \n ', J), 400, 'ErrInvalidRequest', 'whitespace only');
  problem(t, await req(s, 'POST', '/v1/models/User/items'), 400, 'ErrInvalidRequest', 'no body, no content type');
  problem(t, await req(s, 'PATCH', '/v1/models/User/items/a/b', '', J), 400, 'ErrInvalidRequest', 'PATCH empty');
  problem(t, await req(s, 'PUT', '/v1/models/User/items/a/b'), 400, 'ErrInvalidRequest', 'PUT without body');
});

t.test('unknown routes and models → 404', async (t) => {
  problem(t, await req(s, 'GET', '/nowhere'), 404, 'ErrRouteNotFound', 'GET /nowhere');
  problem(t, await req(s, 'GET', '/v1'), 404, 'ErrRouteNotFound', 'GET /v1');
  problem(t, await req(s, 'GET', '/v1/models/User/bogus'), 404, 'ErrRouteNotFound', 'known model, unknown sub-route');
  problem(t, await req(s, 'GET', '/v1/models/Nope'), 404, 'ErrModelNotFound', 'GET unknown model');
  problem(t, await req(s, 'POST', '/v1/models/Nope/items', user, J), 404, 'ErrModelNotFound', 'POST unknown model');
  problem(t, await req(s, 'GET', '/v1/models/Nope/items/a/b'), 404, 'ErrModelNotFound', 'GET item of unknown model');
  problem(t, await req(s, 'DELETE', '/v1/models/user/items/a/b'), 404, 'ErrModelNotFound', 'model names are case-sensitive');
  const res = await req(s, 'GET', '/nowhere?x=1');
  t.equal(res.json.instance, '/nowhere', 'instance is the path without the query');
});

t.test('a declared path with another method → 405 with Allow', async (t) => {
  const cases: [string, string, string][] = [
    ['DELETE', '/v1/models', 'GET, HEAD'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['PUT', '/v1/models/User/query', 'POST'],
    ['GET', '/v1/models/User/items', 'POST'],
    ['POST', '/v1/models/User/items/a/b', 'DELETE, GET, HEAD, PATCH, PUT'],
    ['GET', '/v1/transactions/write', 'POST'],
  ];
  for (const [method, path, allow] of cases) {
    const res = await req(s, method, path, method === 'GET' ? undefined : {}, method === 'GET' ? undefined : J);
    problem(t, res, 405, 'ErrMethodNotAllowed', `${method} ${path}`);
    t.equal(res.headers.get('allow'), allow, `${method} ${path}: Allow: ${allow}`);
    t.match(res.json?.detail, `allowed: ${allow}`, 'the detail lists them too');
  }
  problem(t, await req(s, 'DELETE', '/v1/models/Nope/query'), 404, 'ErrModelNotFound', 'unknown model still named as such');
  problem(t, await req(s, 'DELETE', '/v1/models/User/nothing'), 404, 'ErrRouteNotFound', 'unknown sub-route of a known model: 404');
  t.equal((await req(s, 'GET', '/nowhere')).headers.get('allow'), null, 'no Allow header on a 404');
  // Fastify reads a body before it knows there is no route; the route is still what gets reported.
  problem(t, await req(s, 'QUERY', '/v1/models'), 405, 'ErrMethodNotAllowed', 'QUERY without a content type');
  problem(t, await req(s, 'POST', '/healthz', 'x', { 'content-type': 'text/plain' }), 405, 'ErrMethodNotAllowed', 'unsupported content type on a GET-only path');
  problem(t, await req(s, 'POST', '/nowhere', '{', J), 404, 'ErrRouteNotFound', 'broken JSON to an unknown path');
  problem(t, await req(s, 'QUERY', '/v1/models/User/nothing'), 404, 'ErrRouteNotFound', 'QUERY to an unknown sub-route of a known model');
  problem(t, await req(s, 'PUT', '/v1/models/User/query', 'x', { 'content-type': 'text/plain' }), 405, 'ErrMethodNotAllowed', 'sub-route with the wrong method and content type');
  // Nothing was written by any of them.
  t.equal((await req(s, 'GET', '/v1/models/User/items/a/b')).status, 404, 'no item a/b');
});

t.test('hostile requests get a 4xx problem, never a 500', async (t) => {
  problem(t, await req(s, 'GET', '/v1/models/User/items/%E0%A4%A/x'), 400, 'ErrInvalidRequest', 'broken percent-encoding');
  const badIfMatch = await req(s, 'DELETE', '/v1/models/User/items/a/b', undefined, { 'if-match': 'garbage' });
  problem(t, badIfMatch, 400, 'ErrInvalidRequest', 'bad If-Match');
  t.equal(badIfMatch.json?.detail, 'If-Match must be a version ETag like "3", or *', 'said in words, not as the pattern');
  problem(t, await req(s, 'DELETE', '/v1/models/User/items/a/b?condition=notjson'), 400, 'ErrInvalidRequest', 'condition not JSON');
  problem(
    t,
    await req(s, 'DELETE', `/v1/models/User/items/a/b?condition=${encodeURIComponent('{"attr":"name","op":"like","value":"x"}')}`),
    400,
    'ErrInvalidOperator',
    'unknown operator',
  );
  problem(t, await req(s, 'GET', '/v1/models/User/items/a/b?consistent=maybe'), 400, 'ErrInvalidRequest', 'bad boolean query');
  problem(t, await req(s, 'GET', '/v1/models/Blob/items/abc/3q2-7w'), 400, 'ErrMissingPrimaryKey', 'N key not a number');
  problem(t, await req(s, 'POST', '/v1/models/User/items', '{"__proto__":{"admin":true},"PK":"a","SK":"b","email":"e"}', J), 400, 'ErrInvalidItem', '__proto__ key');
  const nested = `{"set":{"name":"x"},"condition":${'{"not":'.repeat(200)}{"attr":"name","op":"exists"}${'}'.repeat(200)}}`;
  t.ok(nested.length < 2048, 'within the body limit');
  const deep = await req(s, 'PATCH', '/v1/models/User/items/a/b', nested, J);
  problem(t, deep, 400, 'ErrInvalidRequest', 'deeply nested condition');

  const port = Number(new URL(s.url).port);
  const raw = (payload: string) =>
    new Promise<string>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => sock.write(payload));
      let data = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        data += d;
        sock.end();
      });
      sock.on('close', () => resolve(data));
      sock.on('error', reject);
      setTimeout(() => sock.destroy(), 5_000);
    });
  t.match(await raw('POST /v1/models/User/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}'), /^HTTP\/1\.1 400 /, 'non-numeric Content-Length → 400');
  t.match(await raw('NOT HTTP AT ALL\r\n\r\n'), /^HTTP\/1\.1 400 /, 'garbage request line → 400');

  // The server still works after all of that.
  t.equal((await req(s, 'GET', '/healthz')).status, 200);
});

t.test('encryption fails closed: nothing written, no plaintext in errors', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'dynamorm-enc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    path.join(dir, 'vault.yml'),
    [
      'dms_version: "0.1"',
      'models:',
      '  - name: Vault',
      '    table: { name: vault }',
      '    keys:',
      '      partition: { attribute: id, type: S }',
      '    attributes:',
      '      - { attribute: id, type: S, required: true, roles: [pk] }',
      '      - { attribute: label, type: S, optional: true }',
      '      - { attribute: secret, type: S, optional: true, encryption: {} }',
      '      - { attribute: version, type: N, format: int, roles: [version] }',
      '',
    ].join('\n'),
  );
  // The embedded store always has the development key, so fail-closed is shown on the aws backend with no
  // key provider at all: a host sidecar owns the table, the sidecar under test talks to it with no KMS/KEK.
  const host = await start({ schemasDir: dir });
  const v = await start({ schemasDir: dir, backend: 'aws', dynamodbEndpoint: host.sidecar.backend.endpoint });
  const client = v.sidecar.backend.client;
  const PLAIN = 'hunter2-plaintext-SECRET';

  const model = await req(v, 'GET', '/v1/models/Vault');
  t.equal(model.status, 200);
  t.equal(model.json.attributes.find((a: { attribute: string }) => a.attribute === 'secret')?.encrypted, true);

  const attempts: [string, string, unknown][] = [
    ['POST', '/v1/models/Vault/items', { id: 'v1', label: 'l', secret: PLAIN }],
    ['POST', '/v1/models/Vault/items?ifNotExists=false', { id: 'v1', secret: PLAIN }],
    ['PUT', '/v1/models/Vault/items/v1', { secret: PLAIN }],
  ];
  for (const [method, p, body] of attempts) {
    const res = await req(v, method, p, body);
    problem(t, res, 500, 'ErrEncryptionNotConfigured', `${method} ${p}`);
    t.notOk(res.text.includes(PLAIN), `${method} ${p}: the error does not echo the plaintext`);
  }
  const raw = await client.send(new GetItemCommand({ TableName: 'vault', Key: { id: { S: 'v1' } }, ConsistentRead: true }));
  t.equal(raw.Item, undefined, 'a raw read of the backend finds nothing for v1');

  const plain = await req(v, 'POST', '/v1/models/Vault/items', { id: 'v2', label: 'no secret' });
  t.equal(plain.status, 201, 'an item without the encrypted attribute is fine');
  for (const patch of [{ set: { secret: PLAIN } }, { setIfNotExists: { secret: PLAIN } }, { set: { label: 'changed', secret: PLAIN } }]) {
    const res = await req(v, 'PATCH', '/v1/models/Vault/items/v2', patch);
    problem(t, res, 500, 'ErrEncryptionNotConfigured', `PATCH ${Object.keys(patch)[0]}`);
    t.notOk(res.text.includes(PLAIN), 'the PATCH error does not echo the plaintext');
  }
  const after = await client.send(new GetItemCommand({ TableName: 'vault', Key: { id: { S: 'v2' } }, ConsistentRead: true }));
  t.same(after.Item?.label, { S: 'no secret' }, 'v2 unchanged by the refused PATCHes');
  t.same(after.Item?.version, { N: '0' });
  t.equal(after.Item?.secret, undefined);
  const scan = await client.send(new ScanCommand({ TableName: 'vault' }));
  t.equal(scan.Count, 1, 'only v2 is in the table');
  t.notOk(JSON.stringify(scan.Items).includes(PLAIN), 'the plaintext is nowhere in the table');

  // Conditions on the encrypted attribute are refused before DynamoDB is called.
  const conditions = [
    { attr: 'secret', op: '=', value: PLAIN },
    { attr: 'secret', op: 'exists' },
    { and: [{ attr: 'label', op: 'exists' }, { not: { attr: 'secret', op: 'begins_with', value: PLAIN } }] },
  ];
  for (const condition of conditions) {
    const res = await req(v, 'PATCH', '/v1/models/Vault/items/v2', { set: { label: 'x' }, condition });
    problem(t, res, 400, 'ErrEncryptedFieldNotQueryable', `PATCH condition ${JSON.stringify(condition)}`);
    t.notOk(res.text.includes(PLAIN), 'the condition error does not echo the value');
  }
  const q = encodeURIComponent(JSON.stringify({ attr: 'secret', op: '=', value: PLAIN }));
  problem(t, await req(v, 'DELETE', `/v1/models/Vault/items/v2?condition=${q}`), 400, 'ErrEncryptedFieldNotQueryable', 'DELETE ?condition');
  problem(t, await req(v, 'PUT', `/v1/models/Vault/items/v2?condition=${q}`, { label: 'y' }), 400, 'ErrEncryptedFieldNotQueryable', 'PUT ?condition');
  problem(t, await req(v, 'POST', `/v1/models/Vault/items?condition=${q}`, { id: 'v3' }), 400, 'ErrEncryptedFieldNotQueryable', 'POST ?condition');
  const still = await req(v, 'GET', '/v1/models/Vault/items/v2');
  t.equal(still.status, 200);
  t.equal(still.json.label, 'no secret', 'the conditional writes did not happen');

  // Plaintext written by someone else is not handed out as if it were decrypted.
  await client.send(new PutItemCommand({ TableName: 'vault', Item: { id: { S: 'v9' }, secret: { S: PLAIN }, version: { N: '0' } } }));
  const leak = await req(v, 'GET', '/v1/models/Vault/items/v9');
  problem(t, leak, 500, 'ErrEncryptionNotConfigured', 'read of an item holding the encrypted attribute');
  t.notOk(leak.text.includes(PLAIN), 'the read error does not echo the stored value');
});

t.test('backend unreachable → 503 ErrBackendUnavailable with Retry-After, never 500', async (t) => {
  const a = await start();
  const b = await start({ dynamodbEndpoint: a.sidecar.backend.endpoint });
  t.equal(b.sidecar.backend.kind, 'external');
  t.equal((await req(b, 'POST', '/v1/models/User/items', user)).status, 201, 'B works while A is up');

  await stop(a);
  const calls: [string, string, unknown?][] = [
    ['GET', '/v1/models/User/items/USER%23e1/PROFILE'],
    ['POST', '/v1/models/User/items', { ...user, PK: 'USER#e2' }],
    ['PUT', '/v1/models/User/items/USER%23e1/PROFILE', { email: 'x@example.com' }],
    ['PATCH', '/v1/models/User/items/USER%23e1/PROFILE', { set: { name: 'x' } }],
    ['DELETE', '/v1/models/User/items/USER%23e1/PROFILE'],
  ];
  for (const [method, p, body] of calls) {
    const res = await req(b, method, p, body);
    t.ok([503, 504].includes(res.status), `${method}: 503/504 (got ${res.status})`, { body: res.text });
    t.equal(res.json?.code, 'ErrBackendUnavailable', `${method}: ErrBackendUnavailable`);
    t.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    if (res.status === 503) t.match(res.headers.get('retry-after') ?? '', /^\d+$/, `${method}: Retry-After`);
  }
  t.equal((await req(b, 'GET', '/healthz')).status, 200, 'B itself stays up');
  t.equal((await req(b, 'GET', '/v1/models/User')).status, 200, 'model metadata needs no backend');
  await stop(b);
});

t.test('a table dropped behind the sidecar → 503, not 500', async (t) => {
  const a = await start();
  const b = await start({ dynamodbEndpoint: a.sidecar.backend.endpoint });
  await a.sidecar.backend.client.send(new DeleteTableCommand({ TableName: 'sessions' }));
  const res = await req(b, 'POST', '/v1/models/Session/items', { id: 's1', userId: 'u1' });
  problem(t, res, 503, 'ErrBackendUnavailable', 'missing table');
  await stop(b);
  await stop(a);
});

type Fault = 'throttle' | 'throttling' | 'internal' | 'reset' | 'garbage';

/** Loopback proxy to a DynamoDB endpoint that injects a fault for chosen operations (x-amz-target). */
async function faultProxy(target: string, faults: Record<string, Fault>) {
  const hits: Record<string, number> = {};
  const upstream = new URL(target);
  const server = http.createServer((inReq, inRes) => {
    const chunks: Buffer[] = [];
    inReq.on('data', (c: Buffer) => chunks.push(c));
    inReq.on('end', () => {
      const op = String(inReq.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
      hits[op] = (hits[op] ?? 0) + 1;
      const fault = faults[op];
      const reply = (status: number, body: string) => {
        inRes.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'proxy' });
        inRes.end(body);
      };
      if (fault === 'throttle') {
        return reply(400, JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'slow down' }));
      }
      if (fault === 'throttling') return reply(400, JSON.stringify({ __type: 'com.amazon.coral.availability#ThrottlingException', message: 'rate exceeded' }));
      if (fault === 'internal') return reply(500, JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'boom' }));
      if (fault === 'reset') return inReq.socket.destroy();
      if (fault === 'garbage') return reply(200, '<html>not json</html>');
      const body = Buffer.concat(chunks);
      const out = http.request(
        { host: upstream.hostname, port: upstream.port, method: inReq.method, path: inReq.url, headers: { ...inReq.headers, host: upstream.host } },
        (res) => {
          inRes.writeHead(res.statusCode ?? 502, res.headers);
          res.pipe(inRes);
        },
      );
      out.on('error', () => inRes.destroy());
      out.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const proxy = {
    url,
    hits,
    faults,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  open.add(proxy);
  return proxy;
}

t.test('throttling → 503 ErrThrottled with Retry-After', async (t) => {
  const a = await start();
  const proxy = await faultProxy(a.sidecar.backend.endpoint!, {});
  const b = await start({ dynamodbEndpoint: proxy.url });
  t.equal((await req(b, 'POST', '/v1/models/User/items', user)).status, 201, 'writes pass through the proxy');
  t.equal((await req(b, 'GET', '/v1/models/User/items/USER%23e1/PROFILE')).status, 200, 'reads pass through before the fault');

  proxy.faults.GetItem = 'throttle';
  const before = proxy.hits.GetItem ?? 0;
  const res = await req(b, 'GET', '/v1/models/User/items/USER%23e1/PROFILE');
  problem(t, res, 503, 'ErrThrottled', 'GetItem throttled');
  const retryAfter = res.headers.get('retry-after');
  t.match(retryAfter ?? '', /^[1-9]\d*$/, 'Retry-After is a positive number of seconds');
  t.ok((proxy.hits.GetItem ?? 0) - before >= 1, `the proxy saw the GetItem (${(proxy.hits.GetItem ?? 0) - before} attempts)`);
  t.notOk(res.text.includes('slow down') && res.json?.status === 500, 'not passed on as an internal error');

  proxy.faults.PutItem = 'throttling';
  const put = await req(b, 'POST', '/v1/models/User/items', { ...user, PK: 'USER#e3' });
  problem(t, put, 503, 'ErrThrottled', 'PutItem ThrottlingException');
  t.match(put.headers.get('retry-after') ?? '', /^[1-9]\d*$/);

  proxy.faults.UpdateItem = 'internal';
  const upd = await req(b, 'PATCH', '/v1/models/User/items/USER%23e1/PROFILE', { set: { name: 'x' } });
  problem(t, upd, 503, 'ErrBackendUnavailable', 'UpdateItem InternalServerError');

  proxy.faults.DeleteItem = 'reset';
  const del = await req(b, 'DELETE', '/v1/models/User/items/USER%23e1/PROFILE');
  t.ok([503, 504].includes(del.status), `connection reset → 503/504 (got ${del.status})`, { body: del.text });
  t.equal(del.json?.code, 'ErrBackendUnavailable');

  delete proxy.faults.GetItem;
  const ok = await req(b, 'GET', '/v1/models/User/items/USER%23e1/PROFILE');
  t.equal(ok.status, 200, 'the item survived every refused write');
  t.equal(ok.json.version, 0);
  await stop(b);
  await stop(proxy);
  await stop(a);
});

t.test('a backend answering garbage → ErrBackendUnavailable, not 500', async (t) => {
  const a = await start();
  const proxy = await faultProxy(a.sidecar.backend.endpoint!, {});
  const b = await start({ dynamodbEndpoint: proxy.url });
  // A backend answering 200 with a body that is not DynamoDB JSON is a broken backend, not a sidecar bug.
  proxy.faults.GetItem = 'garbage';
  const garbled = await req(b, 'GET', '/v1/models/User/items/USER%23e1/PROFILE');
  t.ok([502, 503, 504].includes(garbled.status), `garbage from the backend → 5xx unavailable, not 500 (got ${garbled.status})`, { body: garbled.text });
  t.equal(garbled.json?.code, 'ErrBackendUnavailable', 'garbage from the backend → ErrBackendUnavailable');
  await stop(b);
  await stop(proxy);
  await stop(a);
});

t.test('never a 500 except ErrEncryptionNotConfigured', async (t) => {
  t.ok(seen.length > 50, `checked ${seen.length} responses`);
  const bad = seen.filter(({ res }) => res.status >= 500 && !(res.status === 500 && res.json?.code === 'ErrEncryptionNotConfigured') && ![502, 503, 504].includes(res.status));
  t.same(bad.map(({ what, res }) => `${what} → ${res.status} ${res.json?.code ?? res.text.slice(0, 80)}`), []);
  const notProblem = seen.filter(({ res }) => res.status >= 400 && !/^application\/problem\+json/.test(res.headers.get('content-type') ?? ''));
  t.same(notProblem.map(({ what, res }) => `${what} → ${res.status} ${res.headers.get('content-type')}`), [], 'every error is problem+json');
});
