// The data plane's own HTTP/1.1 connections (src/store/dataplane/http1.ts), against servers that answer with raw bytes:
// framings (Content-Length, chunked with extensions and trailers, close-delimited), 1xx, keep-alive reuse and its
// limits, answers cut short or overlong, the connection cap, TLS with SNI.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { LeanDynamoClient } from '../src/store/dataplane/client.js';

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };
const KEY = { TableName: 't', Key: { pk: { S: 'a' } } };
const ITEM = JSON.stringify({ Item: { pk: { S: 'a' }, n: { N: '1' } } });

/** A server that reads each request (head + Content-Length body) and answers with what `answer` returns. */
async function rawServer(t: Tap.Test, answer: (socket: Socket, n: number) => string | Buffer | undefined) {
  let connections = 0;
  let open = 0;
  let maxOpen = 0;
  let requests = 0;
  const server = createServer((socket) => {
    connections += 1;
    open += 1;
    maxOpen = Math.max(maxOpen, open);
    socket.on('close', () => (open -= 1));
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(buf.toString('latin1', 0, end))?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        buf = buf.subarray(end + 4 + length);
        requests += 1;
        const out = answer(socket, requests);
        if (out !== undefined) socket.write(out);
      }
    });
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { endpoint, stats: () => ({ connections, maxOpen, requests }) };
}

const client = (t: Tap.Test, endpoint: string, extra: Record<string, unknown> = {}) => {
  const c = new LeanDynamoClient({ region: 'us-east-1', endpoint, credentials: CREDENTIALS, maxAttempts: 1, ...extra });
  t.teardown(() => c.close());
  return c;
};

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

t.test('keep-alive: calls share one connection; Connection: close and a server-closed idle connection open a new one', async (t) => {
  const server = await rawServer(t, (socket, n) => {
    if (n === 3) return ok(ITEM, 'connection: close\r\n');
    if (n === 4) setTimeout(() => socket.end(), 50); // closes after answering: idle from the client's side
    return ok(ITEM);
  });
  const c = client(t, server.endpoint);
  for (let i = 0; i < 2; i++) t.same(await c.GetItem(KEY), JSON.parse(ITEM));
  t.equal(server.stats().connections, 1, 'two calls, one connection');
  t.same(await c.GetItem(KEY), JSON.parse(ITEM), 'third call answered with connection: close');
  t.same(await c.GetItem(KEY), JSON.parse(ITEM), 'fourth call on a new connection');
  t.equal(server.stats().connections, 2);
  await new Promise((r) => setTimeout(r, 150));
  t.same(await c.GetItem(KEY), JSON.parse(ITEM), 'after the server closed the idle connection, a new one');
  t.equal(server.stats().connections, 3);
});

t.test('framings: chunked (extensions, trailers, split anywhere), close-delimited, a 100 Continue before the answer', async (t) => {
  const body = Buffer.from(ITEM);
  const chunked = Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${(10).toString(16)};ext=1\r\n`),
    body.subarray(0, 10),
    Buffer.from(`\r\n${(body.length - 10).toString(16).toUpperCase()}\r\n`),
    body.subarray(10),
    Buffer.from('\r\n0\r\nx-trailer: 1\r\n\r\n'),
  ]);
  const server = await rawServer(t, (socket, n) => {
    if (n === 1) {
      // Byte by byte: every parser state meets a packet boundary.
      let i = 0;
      const drip = () => {
        if (i < chunked.length) socket.write(chunked.subarray(i, ++i), () => setImmediate(drip));
      };
      drip();
      return undefined;
    }
    if (n === 2) return `HTTP/1.1 100 Continue\r\n\r\n${ok(ITEM)}`;
    socket.end(`HTTP/1.1 200 OK\r\n\r\n${ITEM}`);
    return undefined;
  });
  const c = client(t, server.endpoint);
  t.same(await c.GetItem(KEY), JSON.parse(ITEM), 'chunked, one byte per packet');
  t.same(await c.GetItem(KEY), JSON.parse(ITEM), '1xx skipped');
  t.same(await c.GetItem(KEY), JSON.parse(ITEM), 'body ended by the close');
  t.equal(server.stats().connections, 1, 'the chunked and 1xx answers kept the connection');
});

t.test('an answer cut short, one longer than it declared, or garbage is a retryable TruncatedResponse; a close before any answer is ECONNRESET', async (t) => {
  const server = await rawServer(t, (socket, n) => {
    if (n === 1) socket.end(`HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n${ITEM}`);
    else if (n === 2) return `${ok(ITEM)}EXTRA`;
    else if (n === 3) return 'SMTP ready\r\n\r\n';
    else if (n === 4) socket.destroy();
    return undefined;
  });
  const c = client(t, server.endpoint);
  for (const expected of ['TruncatedResponse', 'TruncatedResponse', 'TruncatedResponse']) {
    const err = await c.GetItem(KEY).then(() => undefined, (e: { name: string; retryable: boolean }) => e);
    t.equal(err?.name, expected);
    t.equal(err?.retryable, true, `${expected} is retryable`);
  }
  const reset = await c.GetItem(KEY).then(() => undefined, (e: { name: string; retryable: boolean }) => e);
  t.equal(reset?.name, 'ECONNRESET');
  t.equal(reset?.retryable, true);
});

t.test('maxSockets caps the connections; the calls beyond it wait and are all answered', async (t) => {
  const server = await rawServer(t, (socket) => {
    setTimeout(() => socket.write(ok(ITEM)), 30);
    return undefined;
  });
  const c = client(t, server.endpoint, { maxSockets: 2 });
  const answers = await Promise.all(Array.from({ length: 7 }, () => c.GetItem(KEY)));
  t.equal(answers.length, 7);
  t.equal(server.stats().maxOpen, 2, 'never more than two connections at once');
  t.equal(server.stats().requests, 7);
});

t.test('an endpoint that never answers: TimeoutError, and the connection is not reused', async (t) => {
  const server = await rawServer(t, (_socket, n) => (n === 1 ? undefined : ok(ITEM)));
  const c = client(t, server.endpoint, { requestTimeoutMs: 200 });
  const err = await c.GetItem(KEY).then(() => undefined, (e: Error) => e);
  t.equal(err?.name, 'TimeoutError');
  t.same(await c.GetItem(KEY), JSON.parse(ITEM));
  t.equal(server.stats().connections, 2, 'a new connection after the timeout');
});

t.test('https: a private CA, SNI with the host name', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'http1-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
  const names: (string | false)[] = [];
  const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    names.push((req.socket as unknown as { servername: string | false }).servername);
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end(ITEM));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const c = client(t, `https://localhost:${port}`, { tlsCa: readFileSync(cert) });
  t.same(await c.GetItem(KEY), JSON.parse(ITEM));
  t.same(await c.GetItem(KEY), JSON.parse(ITEM));
  t.same(names, ['localhost', 'localhost'], 'SNI names the host');
  const untrusted = client(t, `https://localhost:${port}`);
  const err = await untrusted.GetItem(KEY).then(() => undefined, (e: Error) => e);
  t.match(err?.name, /SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO/, 'a certificate Node does not trust is refused');
});
