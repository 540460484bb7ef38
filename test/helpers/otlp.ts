// A local OTLP/HTTP trace receiver (JSON bodies, optionally gzip) and a recording proxy for a DynamoDB endpoint.
import { once } from 'node:events';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { readAll } from './net.js';

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 2 server, 3 client. */
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
  readonly status: { code?: number; message?: string };
  readonly service: string | undefined;
}

/** OTLP/JSON ids are hex; a base64 id (the protobuf JSON mapping) is turned into hex too. */
const hexId = (id: unknown): string => {
  const s = String(id ?? '');
  return /^[0-9a-f]*$/.test(s) ? s : Buffer.from(s, 'base64').toString('hex');
};

function value(v: Record<string, unknown>): unknown {
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('boolValue' in v) return v.boolValue;
  if ('arrayValue' in v) return ((v.arrayValue as { values?: Record<string, unknown>[] }).values ?? []).map(value);
  return undefined;
}

const attributesOf = (list: unknown): Record<string, unknown> =>
  Object.fromEntries(((list ?? []) as { key: string; value: Record<string, unknown> }[]).map((a) => [a.key, value(a.value)]));

export interface OtlpReceiver {
  readonly url: string;
  readonly spans: ReceivedSpan[];
  readonly contentTypes: Set<string>;
  /** Spans matching `pick`, waiting up to `ms` until at least `count` have arrived. */
  waitFor(pick: (span: ReceivedSpan) => boolean, count?: number, ms?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes = new Set<string>();
  const server = createServer((req, res) => {
    void readAll(req).then((raw) => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      contentTypes.add(String(req.headers['content-type']));
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      const doc = JSON.parse(body.toString('utf8')) as { resourceSpans?: any[] };
      for (const rs of doc.resourceSpans ?? []) {
        const service = attributesOf(rs.resource?.attributes)['service.name'] as string | undefined;
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              traceId: hexId(s.traceId),
              spanId: hexId(s.spanId),
              parentSpanId: hexId(s.parentSpanId),
              name: s.name,
              kind: s.kind,
              attributes: attributesOf(s.attributes),
              status: s.status ?? {},
              service,
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    contentTypes,
    async waitFor(pick, count = 1, ms = 10_000) {
      const until = Date.now() + ms;
      for (;;) {
        const found = spans.filter(pick);
        if (found.length >= count || Date.now() > until) return found;
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    close: () => closeServer(server),
  };
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface Recorded {
  readonly operation: string;
  readonly traceHeader: string | undefined;
  readonly body: string;
}

export interface RecordingProxy {
  readonly url: string;
  readonly requests: Recorded[];
  close(): Promise<void>;
}

/** Forwards every request to `upstream` and records its operation and X-Amzn-Trace-Id; `fail` answers 500 instead. */
export async function startRecordingProxy(upstream: string, fail: (r: Recorded) => boolean = () => false): Promise<RecordingProxy> {
  const target = new URL(upstream);
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    void readAll(req).then((body) => {
      const header = req.headers['x-amzn-trace-id'];
      const recorded: Recorded = {
        operation: String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '',
        traceHeader: typeof header === 'string' ? header : undefined,
        body: body.toString('utf8'),
      };
      requests.push(recorded);
      if (fail(recorded)) {
        res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'injected' }));
        return;
      }
      const out = httpRequest({ hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      out.on('error', () => res.destroy());
      out.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, close: () => closeServer(server) };
}

/** X-Ray's form of a W3C trace id: `1-<first 8 hex>-<other 24>`. */
export const xrayRoot = (traceId: string): string => `1-${traceId.slice(0, 8)}-${traceId.slice(8)}`;

export function parseXrayHeader(header: string | undefined): Record<string, string> {
  return Object.fromEntries((header ?? '').split(';').filter(Boolean).map((p) => p.split('=') as [string, string]));
}
