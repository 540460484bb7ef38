// The trace a request belongs to, carried with AsyncLocalStorage from the HTTP hook (src/http/trace.ts) to every
// backend call (DynamoDB, KMS, STS), which passes it on as X-Amzn-Trace-Id and, when spans are exported
// (src/trace/otel.ts), records a client span under the request's span. No HTTP types here.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomPool } from '../random-pool.js';

export type Attributes = Record<string, string | number | boolean | string[]>;

/** A span being recorded; only src/trace/otel.ts makes them. */
export interface SpanHandle {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  setAttributes(attributes: Attributes): void;
  end(failed?: { name: string; message?: string }): void;
}

export interface ParentContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  readonly traceState?: string | undefined;
}

/** What src/trace/otel.ts plugs in when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
export interface SpanRecorder {
  serverSpan(name: string, parent: ParentContext | undefined, attributes: Attributes): SpanHandle;
  clientSpan(name: string, parent: SpanHandle, attributes: Attributes): SpanHandle;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface TraceContext {
  readonly traceId: string;
  /** The span backend calls hang under: the request's span when spans are exported, else the caller's (if any). */
  readonly spanId: string | undefined;
  readonly sampled: boolean;
  readonly traceState?: string | undefined;
  /** The request's server span, when spans are exported. */
  readonly span?: SpanHandle | undefined;
  /** dynamorm.model / dynamorm.operation / dynamorm.partner of the request, copied onto its client spans. */
  readonly attributes: Attributes;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

/** W3C `traceparent` (version 00, or a later version read as 00); undefined when it is not valid. */
export function parseTraceparent(value: unknown, tracestate?: unknown): ParentContext | undefined {
  if (typeof value !== 'string') return undefined;
  const parts = value.trim().split('-');
  if (parts.length < 4) return undefined;
  const [version, traceId, spanId, flags] = parts as [string, string, string, string];
  if (!/^[0-9a-f]{2}$/.test(version) || version === 'ff' || (version === '00' && parts.length !== 4)) return undefined;
  if (!HEX32.test(traceId) || traceId === ZERO32 || !HEX16.test(spanId) || spanId === ZERO16 || !/^[0-9a-f]{2}$/.test(flags)) return undefined;
  const state = typeof tracestate === 'string' && tracestate.length > 0 && tracestate.length <= 512 ? tracestate : undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1, traceState: state };
}

/**
 * `X-Amzn-Trace-Id: Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>` → a W3C context (X-Ray's trace id is the
 * W3C one with the epoch part first). Without a Parent there is no caller span to hang under: undefined.
 */
export function parseAmznTraceId(value: unknown): ParentContext | undefined {
  if (typeof value !== 'string') return undefined;
  const fields = new Map<string, string>();
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const root = /^1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})$/.exec(fields.get('root') ?? '');
  const parent = (fields.get('parent') ?? '').toLowerCase();
  if (!root || !HEX16.test(parent) || parent === ZERO16) return undefined;
  const traceId = (root[1]! + root[2]!).toLowerCase();
  if (traceId === ZERO32) return undefined;
  return { traceId, spanId: parent, sampled: fields.get('sampled') === '1' };
}

/** The X-Ray header for a backend call: Parent is the span the call is made from (omitted when there is none). */
export function formatAmznTraceId(traceId: string, parentSpanId: string | undefined, sampled: boolean): string {
  const root = `Root=1-${traceId.slice(0, 8)}-${traceId.slice(8)}`;
  return `${root}${parentSpanId ? `;Parent=${parentSpanId}` : ''};Sampled=${sampled ? 1 : 0}`;
}

function randomHex(bytes: number): string {
  const at = randomPool.take(bytes);
  return randomPool.buffer.toString('hex', at, at + bytes);
}

/** A fresh W3C trace id whose first 8 hex digits are the epoch seconds, so X-Ray accepts it as it is. */
export function newTraceId(nowMs = Date.now()): string {
  const second = Math.floor(nowMs / 1000);
  if (second !== epochSecond) {
    epochSecond = second;
    epochHex = second.toString(16).padStart(8, '0').slice(-8);
  }
  return epochHex + randomHex(12);
}
/** The epoch-seconds prefix of the last trace id: formatted once per second. */
let epochSecond = NaN;
let epochHex = '';

let recorder: SpanRecorder | undefined;

/** Set by src/trace/otel.ts once the SDK is loaded; undefined turns span recording off again. */
export function setSpanRecorder(value: SpanRecorder | undefined): void {
  recorder = value;
}

export function spanRecorder(): SpanRecorder | undefined {
  return recorder;
}

/**
 * The context of a request from its caller's parent (undefined: none given, or not valid: a new trace), with the
 * request's server span when spans are exported.
 */
export function startRequestTrace(parent: ParentContext | undefined, spanName: string, attributes: Attributes): TraceContext {
  const span = recorder?.serverSpan(spanName, parent, attributes);
  if (span) return { traceId: span.traceId, spanId: span.spanId, sampled: span.sampled, traceState: parent?.traceState, span, attributes: {} };
  if (parent) return { ...parent, attributes: {} };
  return { traceId: newTraceId(), spanId: undefined, sampled: false, attributes: {} };
}

const storage = new AsyncLocalStorage<TraceContext>();

export function runInTrace<T>(context: TraceContext, fn: () => T): T {
  return storage.run(context, fn);
}

export function currentTrace(): TraceContext | undefined {
  return storage.getStore();
}

export type BackendService = 'DynamoDB' | 'KMS' | 'STS';

/** One backend call of a traced request: the header to send, and end() with what came back. */
export interface BackendCall {
  readonly header: string;
  end(result: { output?: unknown; error?: unknown; attempts?: number | undefined }): void;
}

type Json = Record<string, unknown>;

/** Tables a DynamoDB request names: TableName, RequestItems' keys, TransactItems' tables. */
export function tablesOf(input: Json | undefined): string[] {
  if (!input) return [];
  const tables = new Set<string>();
  if (typeof input.TableName === 'string') tables.add(input.TableName);
  if (input.RequestItems && typeof input.RequestItems === 'object') for (const name of Object.keys(input.RequestItems)) tables.add(name);
  if (Array.isArray(input.TransactItems)) {
    for (const entry of input.TransactItems as Json[]) {
      for (const action of Object.values(entry ?? {})) {
        const name = (action as Json | undefined)?.TableName;
        if (typeof name === 'string') tables.add(name);
      }
    }
  }
  return [...tables];
}

/** DynamoDB's ConsumedCapacity (one object or a list), as the semantic conventions' JSON strings and a total. */
function capacityOf(output: unknown): Attributes {
  const consumed = (output as Json | undefined)?.ConsumedCapacity;
  if (!consumed) return {};
  const list = (Array.isArray(consumed) ? consumed : [consumed]) as Json[];
  const total = list.reduce((sum, c) => sum + (typeof c?.CapacityUnits === 'number' ? c.CapacityUnits : 0), 0);
  return { 'aws.dynamodb.consumed_capacity': list.map((c) => JSON.stringify(c)), 'dynamorm.consumed_capacity_units': total };
}

const noSpanEnd = (): void => undefined;

/**
 * Called by every backend client before a call (src/store/dataplane/client.ts, src/trace/aws-sdk.ts): outside a
 * traced request, undefined (nothing sent, nothing recorded).
 */
function beforeCall(service: BackendService, operation: string, input?: Json): BackendCall | undefined {
  const context = storage.getStore();
  if (!context) return undefined;
  // Without a span to record, only the header is needed: no table list, no attributes, no closure.
  if (!(recorder && context.span)) return { header: formatAmznTraceId(context.traceId, context.spanId, context.sampled), end: noSpanEnd };
  const tables = service === 'DynamoDB' ? tablesOf(input) : [];
  const span = recorder.clientSpan(`${service}.${operation}`, context.span, {
    'rpc.system': 'aws-api',
    'rpc.service': service,
    'rpc.method': operation,
    ...(tables.length > 0 ? { 'aws.dynamodb.table_names': tables } : {}),
    ...context.attributes,
  });
  const header = formatAmznTraceId(context.traceId, span.spanId, span.sampled);
  return {
    header,
    end({ output, error, attempts }) {
      if (!span) return;
      span.setAttributes({ ...capacityOf(output), ...(attempts ? { 'aws.attempts': attempts, 'dynamorm.retries': attempts - 1 } : {}) });
      const failed = error as { name?: string; message?: string } | undefined;
      span.end(failed ? { name: failed.name ?? 'Error', message: failed.message } : undefined);
    },
  };
}

export const traceHooks = { beforeCall };
