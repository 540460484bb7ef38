// A DynamoDB proxy that holds chosen operations back before forwarding them (the `slow` fault of
// test/drills/faults.test.ts, reduced to what a deadline test needs). A request whose caller hangs up while it is
// held is never forwarded, so an aborted write leaves nothing behind.
import { once } from 'node:events';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { readAll } from './net.js';

export interface DelayProxy {
  readonly url: string;
  /** How long to hold a request (ms) by its DynamoDB operation (`GetItem`, `BatchWriteItem`, …) and JSON body. */
  delay: (op: string, body: string) => number;
  /** An answer to give instead of forwarding (after the delay), e.g. a throttling error; undefined forwards. */
  answer: (op: string, body: string) => { status: number; type: string } | undefined;
  /** Operations forwarded, and operations dropped because the caller hung up while they were held. */
  readonly forwarded: string[];
  readonly abandoned: string[];
  close(): Promise<void>;
}

export async function startDelayProxy(upstream: string): Promise<DelayProxy> {
  const target = new URL(upstream);
  const sockets = new Set<Socket>();
  const proxy: DelayProxy = {
    url: '',
    delay: () => 0,
    answer: () => undefined,
    forwarded: [],
    abandoned: [],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readAll(req);
      const op = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
      const wait = proxy.delay(op, body.toString('utf8'));
      let gone = false;
      res.on('close', () => (gone = !res.writableFinished));
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (gone) {
        proxy.abandoned.push(op);
        return;
      }
      const canned = proxy.answer(op, body.toString('utf8'));
      if (canned) {
        const payload = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${canned.type}`, message: 'injected by the test proxy' });
        res.writeHead(canned.status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': String(Buffer.byteLength(payload)) });
        res.end(payload);
        return;
      }
      proxy.forwarded.push(op);
      const fwd = httpRequest(
        { hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, 'content-length': String(body.length) } },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      fwd.on('error', () => res.destroy());
      fwd.end(body);
    })();
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  (proxy as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
