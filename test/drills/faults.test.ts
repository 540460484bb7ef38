// Reliability drill: backend faults. A fault-injecting HTTP proxy sits between a sidecar (backend 'aws',
// dynamodbEndpoint = proxy) and the dynalite of an embedded sidecar (the "host"). Each fault mode sees a stream of
// writes — creates, PUTs, batch writes, transactions — while the proxy injects faults into ~30 % of the backend
// requests (seeded PRNG):
//
//   throttle     400 ProvisionedThroughputExceededException (nothing forwarded)
//   error500     500 InternalServerError, or a bare 503 (nothing forwarded)
//   slow         100–1 500 ms delay before or after forwarding
//   drop         the socket is destroyed: before forwarding, or after the store applied the request (lost answer)
//   unprocessed  BatchWriteItem / BatchGetItem: a random part of the entries is held back as Unprocessed*
//   stall        the request is never answered (black hole): once, or on every attempt
//
// Properties:
//   - callers get a success or a clear 503/504 problem+json (ErrThrottled / ErrBackendUnavailable), never a 500,
//     never a hang past a bound; in `drop` a create whose first attempt landed may see 409 ErrConditionFailed (item_exists), and then the
//     stored item must be the caller's own;
//   - every write the sidecar acknowledged (2xx) is in the store afterwards, read directly from the host: 0 lost acks;
//     entries a batch-write reports as unprocessed are not in the store; in modes that never forward a faulted
//     request (throttle, error500), a write answered 503/504 left nothing behind;
//   - bounded attempts: backend requests per client request ≤ the SDK's maxAttempts (3) × the sidecar's retry budget
//     (1 for single-item writes, 12 per batch chunk or transaction), and the average amplification stays low.
//
// dynalite has no transactions: the proxy runs TransactWriteItems through the host's embedded client (the same
// in-process coordinator the embedded store uses, idempotency tokens included) and answers in DynamoDB's wire format.
//
// DRILL_FAULTS_SEED picks the PRNG seed (default 20261126); DRILL_FAULTS_RATE the fault rate (default 0.3).
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { startTestSidecar, type TestResponse, type TestSidecar } from '../helpers/sidecar.js';
import { prng } from '../helpers/prng.js';
import { readAll } from '../helpers/net.js';

process.env.AWS_ACCESS_KEY_ID ??= 'testing';
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';

const RUN = randomUUID().replace(/-/g, '').slice(0, 8);
const SEED = Number(process.env.DRILL_FAULTS_SEED ?? 20261126);
const RATE = Number(process.env.DRILL_FAULTS_RATE ?? 0.3);
const SDK_MAX_ATTEMPTS = 3; // src/store/backend.ts leanClientOptions (the SDK's standard mode, same attempts)
const SIDECAR_MAX_ATTEMPTS = 12; // src/store/retry.ts DEFAULT_RETRY.maxAttempts
const SDK_REQUEST_TIMEOUT_MS = 10_000; // src/store/backend.ts leanClientOptions requestTimeoutMs

type Json = Record<string, any>;
type Mode = 'throttle' | 'error500' | 'slow' | 'drop' | 'unprocessed' | 'stall';
type Kind = 'create' | 'put' | 'batch' | 'tx';
type Fault = 'pass' | 'throttle' | 'error500' | 'bare503' | 'slow-before' | 'slow-after' | 'drop-before' | 'drop-after' | 'unprocessed' | 'unprocessed-sticky' | 'stall';

const random = prng(SEED);

// ------------------------------------------------------------------------------------------ the proxy

interface FaultProxy {
  readonly url: string;
  /** Backend requests per client request (tag = `<mode>#<request number>`). */
  readonly attempts: Map<string, number>;
  /** Injected faults per mode and kind. */
  readonly injected: Map<string, number>;
  close(): Promise<void>;
}

interface Decision {
  readonly fault: Fault;
  readonly delayMs?: number;
}

const MODE_NAMES = new Set<string>(['throttle', 'error500', 'slow', 'drop', 'unprocessed', 'stall']);
const TAG = new RegExp(`"PK":\\{"S":"${RUN}#([a-z0-9]+#\\d+)#`);

async function startFaultProxy(
  upstream: string,
  host: TestSidecar,
  decide: (mode: Mode, op: string, tag: string) => Decision,
): Promise<FaultProxy> {
  const target = new URL(upstream);
  const attempts = new Map<string, number>();
  const injected = new Map<string, number>();
  const sockets = new Set<Socket>();

  const forward = (req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, any>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers, 'content-length': String(body.length) };
      const fwd = httpRequest({ hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (up) => {
        readAll(up).then((b) => resolve({ status: up.statusCode ?? 502, headers: up.headers, body: b }), reject);
      });
      fwd.on('error', reject);
      fwd.end(body);
    });

  /** TransactWriteItems, run by the host's embedded client (dynalite itself has no transactions). */
  const transact = async (body: Buffer): Promise<{ status: number; headers: Record<string, any>; body: Buffer }> => {
    const json = (value: unknown, status: number) => ({
      status,
      headers: { 'content-type': 'application/x-amz-json-1.0' },
      body: Buffer.from(JSON.stringify(value)),
    });
    try {
      // The host's data plane speaks the wire format (JSON protocol) itself.
      await host.sidecar.backend.dataPlane.TransactWriteItems(JSON.parse(body.toString('utf8')));
      return json({}, 200);
    } catch (err) {
      const e = err as Json;
      const reasons = Array.isArray(e.CancellationReasons) ? { CancellationReasons: e.CancellationReasons } : {};
      const status = (e.statusCode ?? 400) >= 500 ? 500 : 400;
      return json({ __type: `com.amazonaws.dynamodb.v20120810#${e.name}`, message: e.message, ...reasons }, status);
    }
  };

  /** BatchWriteItem / BatchGetItem: forward part of the entries, hand the rest back as unprocessed. */
  const holdBack = async (req: IncomingMessage, op: string, body: Buffer, sticky: boolean) => {
    const input = JSON.parse(body.toString('utf8')) as Json;
    const table = Object.keys(input.RequestItems)[0];
    const entries: Json[] = op === 'BatchWriteItem' ? input.RequestItems[table] : input.RequestItems[table].Keys;
    const all = random() < 0.2; // sometimes hold back everything
    const stuck = (e: Json) => sticky && JSON.stringify(e).includes('#0"'); // the request's first key: <RUN>#<tag>#0
    const held = entries.filter((e) => stuck(e) || all || random() < 0.5);
    const sent = entries.filter((e) => !held.includes(e));
    let out: Json;
    if (sent.length === 0) {
      out = op === 'BatchWriteItem' ? { UnprocessedItems: {} } : { Responses: { [table]: [] }, UnprocessedKeys: {} };
    } else {
      const request = op === 'BatchWriteItem' ? { ...input, RequestItems: { [table]: sent } } : { ...input, RequestItems: { [table]: { ...input.RequestItems[table], Keys: sent } } };
      const up = await forward(req, Buffer.from(JSON.stringify(request)));
      if (up.status !== 200) return up;
      out = JSON.parse(up.body.toString('utf8'));
    }
    if (held.length > 0) {
      if (op === 'BatchWriteItem') {
        out.UnprocessedItems = { ...(out.UnprocessedItems ?? {}), [table]: [...(out.UnprocessedItems?.[table] ?? []), ...held] };
      } else {
        const already = out.UnprocessedKeys?.[table]?.Keys ?? [];
        out.UnprocessedKeys = { ...(out.UnprocessedKeys ?? {}), [table]: { ...input.RequestItems[table], Keys: [...already, ...held] } };
      }
    }
    return { status: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: Buffer.from(JSON.stringify(out)) };
  };

  const reply = (res: ServerResponse, out: { status: number; headers: Record<string, any>; body: Buffer }) => {
    const headers = { ...out.headers };
    delete headers['x-amz-crc32']; // the body may have been rewritten
    delete headers['transfer-encoding'];
    headers['content-length'] = String(out.body.length);
    res.writeHead(out.status, headers);
    res.end(out.body);
  };
  const error = (res: ServerResponse, status: number, type: string) =>
    reply(res, {
      status,
      headers: { 'content-type': 'application/x-amz-json-1.0' },
      body: Buffer.from(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message: `drill: injected ${type}` })),
    });

  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readAll(req);
      const op = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
      const tag = TAG.exec(body.toString('utf8'))?.[1];
      if (tag) attempts.set(tag, (attempts.get(tag) ?? 0) + 1);
      const mode = tag?.split('#')[0] as Mode | undefined;
      const decision: Decision = (mode && MODE_NAMES.has(mode) ? decide(mode, op, tag!) : undefined) ?? { fault: 'pass' };
      if (decision.fault !== 'pass' && mode) injected.set(`${mode}:${decision.fault}`, (injected.get(`${mode}:${decision.fault}`) ?? 0) + 1);
      const run = () => (op === 'TransactWriteItems' ? transact(body) : forward(req, body));
      switch (decision.fault) {
        case 'throttle':
          return error(res, 400, 'ProvisionedThroughputExceededException');
        case 'error500':
          return error(res, 500, 'InternalServerError');
        case 'bare503':
          res.writeHead(503, { 'content-type': 'text/plain', 'content-length': '19' });
          return res.end('Service Unavailable');
        case 'drop-before':
          return req.socket.destroy();
        case 'drop-after':
          await run();
          return req.socket.destroy();
        case 'stall':
          return; // never answered; the client's request timeout ends it
        case 'slow-before':
          await delay(decision.delayMs ?? 500);
          return reply(res, await run());
        case 'slow-after': {
          const out = await run();
          await delay(decision.delayMs ?? 500);
          return reply(res, out);
        }
        case 'unprocessed':
        case 'unprocessed-sticky':
          return reply(res, await holdBack(req, op, body, decision.fault === 'unprocessed-sticky'));
        default:
          return reply(res, await run());
      }
    })().catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    attempts,
    injected,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ------------------------------------------------------------------------------------------ the drill

/** Which fault a backend request of `mode` gets. Stall requests are chosen by request number (see `stallPlan`). */
const stallPlan = new Map<string, { firstOnly: boolean; seen: number }>();

function decide(mode: Mode, op: string, tag: string): Decision {
  const faulty = random() < RATE;
  switch (mode) {
    case 'throttle':
      return { fault: faulty ? 'throttle' : 'pass' };
    case 'error500':
      return { fault: faulty ? (random() < 0.7 ? 'error500' : 'bare503') : 'pass' };
    case 'slow':
      return { fault: faulty ? (random() < 0.5 ? 'slow-before' : 'slow-after') : 'pass', delayMs: 100 + Math.floor(random() * 1_400) };
    case 'drop':
      return { fault: faulty ? (random() < 0.5 ? 'drop-before' : 'drop-after') : 'pass' };
    case 'unprocessed':
      // Every 8th request has its first entry held back on every BatchWriteItem: it must come back as unprocessed.
      if (op === 'BatchWriteItem' && Number(tag.split('#')[1]) % 8 === 7) return { fault: 'unprocessed-sticky' };
      return { fault: faulty && (op === 'BatchWriteItem' || op === 'BatchGetItem') ? 'unprocessed' : 'pass' };
    case 'stall': {
      const plan = stallPlan.get(tag);
      if (!plan) return { fault: 'pass' };
      plan.seen += 1;
      return { fault: plan.firstOnly && plan.seen > 1 ? 'pass' : 'stall' };
    }
  }
}

interface Outcome {
  readonly mode: Mode;
  readonly kind: Kind;
  readonly tag: string;
  readonly res: TestResponse | undefined;
  readonly ms: number;
  /** pk → the `name` marker this request wrote. */
  readonly writes: Map<string, string>;
  readonly body: Json;
}

const MODES: Mode[] = ['throttle', 'error500', 'slow', 'drop', 'unprocessed'];
const KINDS: Kind[] = ['create', 'put', 'batch', 'tx'];
const REQUESTS_PER_MODE = 32;
const WORKERS_PER_MODE = 6;
const BATCH_SIZE = 8;
/** Longest a caller may wait: worst-case SDK/sidecar retries with the injected delays, plus slack. */
const BOUND_MS = 25_000;
const STALL_BOUND_MS = SDK_MAX_ATTEMPTS * SDK_REQUEST_TIMEOUT_MS + 10_000;

const pk = (tag: string, i: number) => `${RUN}#${tag}#${i}`;
const userPath = (key: string) => `/v1/models/User/items/${encodeURIComponent(key)}/P`;
const email = (key: string) => `${key.replace(/[^a-z0-9]/gi, '').toLowerCase()}@example.com`;

/** The backend calls a client request needs and the most attempts it may make (SDK attempts × sidecar budget). */
function attemptBound(kind: Kind): number {
  switch (kind) {
    case 'create':
      return 2 * SDK_MAX_ATTEMPTS; // PutItem, then (on a failed condition) GetItem to tell 409 from 412
    case 'put':
      return 2 * SDK_MAX_ATTEMPTS; // UpdateItem (+ GetItem on a failed condition)
    case 'batch':
      return 2 * SDK_MAX_ATTEMPTS * SIDECAR_MAX_ATTEMPTS; // one BatchGetItem chunk (lifecycle) + one BatchWriteItem chunk
    case 'tx':
      return SDK_MAX_ATTEMPTS * SIDECAR_MAX_ATTEMPTS;
  }
}
const idealCalls: Record<Kind, number> = { create: 1, put: 1, batch: 2, tx: 1 };

async function issue(s: TestSidecar, mode: Mode, kind: Kind, n: number, bound: number): Promise<Outcome> {
  const tag = `${mode}#${n}`;
  const marker = `${mode}-${n}-${RUN}`;
  const writes = new Map<string, string>();
  let method = 'POST';
  let path = '/v1/models/User/items';
  let body: Json;
  switch (kind) {
    case 'create': {
      const key = pk(tag, 0);
      body = { PK: key, SK: 'P', email: email(key), name: marker };
      writes.set(key, marker);
      break;
    }
    case 'put': {
      const key = pk(tag, 0);
      method = 'PUT';
      path = userPath(key);
      body = { email: email(key), name: marker };
      writes.set(key, marker);
      break;
    }
    case 'batch': {
      path = '/v1/models/User/batch-write';
      const puts = Array.from({ length: BATCH_SIZE }, (_, i) => {
        const key = pk(tag, i);
        writes.set(key, marker);
        return { PK: key, SK: 'P', email: email(key), name: marker };
      });
      body = { puts };
      break;
    }
    case 'tx': {
      path = '/v1/transactions/write';
      const keys = [0, 1, 2].map((i) => pk(tag, i));
      keys.forEach((k) => writes.set(k, marker));
      body = {
        items: [
          { op: 'create', model: 'User', item: { PK: keys[0], SK: 'P', email: email(keys[0]), name: marker } },
          { op: 'create', model: 'User', item: { PK: keys[1], SK: 'P', email: email(keys[1]), name: marker } },
          { op: 'put', model: 'User', item: { PK: keys[2], SK: 'P', email: email(keys[2]), name: marker } },
        ],
        // Every other transaction carries an idempotency key; the rest rely on the SDK's own ClientRequestToken.
        ...(Math.floor(n / KINDS.length) % 2 === 0 ? { idempotencyKey: `${RUN}-${tag}` } : {}),
      };
      break;
    }
  }
  const started = Date.now();
  let res: TestResponse | undefined;
  try {
    const r = await fetch(s.url + path, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(bound),
    });
    const text = await r.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    res = { status: r.status, headers: r.headers, text, json };
  } catch {
    res = undefined; // no answer within the bound
  }
  return { mode, kind, tag, res, ms: Date.now() - started, writes, body };
}

async function runMode(s: TestSidecar, mode: Mode): Promise<Outcome[]> {
  const out: Outcome[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: WORKERS_PER_MODE }, async () => {
      while (next < REQUESTS_PER_MODE) {
        const n = next++;
        // The unprocessed mode is about batches: every request is a batch-write.
        out.push(await issue(s, mode, mode === 'unprocessed' ? 'batch' : KINDS[n % KINDS.length], n, BOUND_MS));
      }
    }),
  );
  return out;
}

async function runStall(s: TestSidecar): Promise<Outcome[]> {
  // Creates only (one backend call each, so the bound is exact): two stalled once, two stalled on every attempt.
  const plans = [true, true, false, false];
  plans.forEach((firstOnly, n) => stallPlan.set(`stall#${n}`, { firstOnly, seen: 0 }));
  return Promise.all(plans.map((_, n) => issue(s, 'stall', 'create', n, STALL_BOUND_MS)));
}

/** Reads keys straight from the host (no proxy): pk → name. */
async function storedNames(host: TestSidecar, keys: string[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (let i = 0; i < keys.length; i += 100) {
    const res = await host.request('POST', '/v1/models/User/batch-get', { keys: keys.slice(i, i + 100).map((PK) => ({ PK, SK: 'P' })), consistent: true });
    if (res.status !== 200 || res.json?.complete !== true) throw new Error(`direct read failed: ${res.status} ${res.text.slice(0, 200)}`);
    for (const item of res.json.items as Json[]) found.set(item.PK, item.name);
  }
  return found;
}

const isProblem = (res: TestResponse) => /^application\/problem\+json/.test(res.headers.get('content-type') ?? '');

function describe(o: Outcome): string {
  return `${o.tag} ${o.kind}: ${o.res ? `${o.res.status} ${o.res.text.slice(0, 160)}` : `no answer within ${o.ms} ms`}`;
}

// ------------------------------------------------------------------------------------------ run

const host = await startTestSidecar();
t.teardown(() => host.close());
const proxy = await startFaultProxy(host.sidecar.backend.endpoint!, host, decide);
t.teardown(() => proxy.close());
const s = await startTestSidecar({ backend: 'aws', dynamodbEndpoint: proxy.url, region: 'us-east-1' });
t.teardown(() => s.close());
t.comment(`seed ${SEED}, fault rate ${RATE}, run ${RUN}`);

// Every mode at once (each request's mode travels in its keys), so the stall mode's timeouts overlap the rest.
const [stalled, ...perMode] = await Promise.all([runStall(s), ...MODES.map((m) => runMode(s, m))]);
const outcomes = [...stalled, ...perMode.flat()];
const written = [...new Set(outcomes.flatMap((o) => [...o.writes.keys()]))];
const stored = await storedNames(host, written);

for (const mode of [...MODES, 'stall'] as Mode[]) {
  t.test(`mode ${mode}`, async (t) => {
    const mine = outcomes.filter((o) => o.mode === mode);
    const faults = [...proxy.injected].filter(([k]) => k.startsWith(`${mode}:`));
    const statuses = new Map<string, number>();
    for (const o of mine) statuses.set(String(o.res?.status ?? 'hang'), (statuses.get(String(o.res?.status ?? 'hang')) ?? 0) + 1);
    t.comment(`${mode}: faults ${faults.map(([k, n]) => `${k.split(':')[1]}×${n}`).join(' ') || 'none'}; answers ${[...statuses].map(([k, n]) => `${k}×${n}`).join(' ')}`);
    t.ok(faults.reduce((n, [, c]) => n + c, 0) > 0, 'faults were injected');

    // 1. Never a hang, never a 500: success or a clear 503/504 problem (409 only for a create whose first attempt landed).
    const bound = mode === 'stall' ? STALL_BOUND_MS : BOUND_MS;
    const hangs = mine.filter((o) => o.res === undefined);
    t.same(hangs.map(describe), [], `every request answered within ${bound} ms (slowest ${Math.max(...mine.map((o) => o.ms))} ms)`);
    const bad: string[] = [];
    const ambiguous: Outcome[] = [];
    for (const o of mine) {
      const r = o.res;
      if (!r) continue;
      if (r.status >= 200 && r.status < 300) continue;
      if (r.status === 503 && isProblem(r) && ['ErrThrottled', 'ErrBackendUnavailable'].includes(r.json?.code) && r.headers.get('retry-after')) continue;
      if (r.status === 504 && isProblem(r) && r.json?.code === 'ErrBackendUnavailable') continue;
      if (mode === 'drop' && o.kind === 'create' && r.status === 409 && r.json?.code === 'ErrConditionFailed' && r.json?.reason === 'item_exists') {
        ambiguous.push(o);
        continue;
      }
      bad.push(describe(o));
    }
    t.same(bad, [], 'only 2xx, 503 (ErrThrottled/ErrBackendUnavailable + Retry-After) or 504 (ErrBackendUnavailable) problem+json');
    t.ok(mine.some((o) => o.res && o.res.status < 300), 'some writes succeeded despite the faults');
    t.notOk(mine.some((o) => o.res?.status === 500), 'no 500');

    // 2. Zero lost acknowledgements; unprocessed entries really are not written; failures left nothing behind.
    const lost: string[] = [];
    const ghosts: string[] = [];
    for (const o of mine) {
      const r = o.res;
      if (!r) continue;
      let acked = [...o.writes.keys()];
      if (o.kind === 'batch' && r.status === 200) {
        const unprocessed = new Set<string>((r.json?.unprocessed?.puts ?? []).map((p: Json) => p.PK));
        acked = acked.filter((k) => !unprocessed.has(k));
        for (const k of unprocessed) if (stored.has(k)) ghosts.push(`${o.tag}: ${k} reported unprocessed but stored`);
        if (r.json?.complete !== (unprocessed.size === 0)) lost.push(`${o.tag}: complete=${r.json?.complete} with ${unprocessed.size} unprocessed`);
      }
      if (r.status >= 200 && r.status < 300) {
        for (const k of acked) if (stored.get(k) !== o.writes.get(k)) lost.push(`${o.tag} ${o.kind} acknowledged ${r.status}, ${k} is ${stored.has(k) ? `"${stored.get(k)}"` : 'missing'}`);
      } else if (r.status === 409) {
        for (const k of acked) if (stored.get(k) !== o.writes.get(k)) lost.push(`${o.tag} create answered 409 item_exists but ${k} is not the caller's item`);
      } else if (mode === 'throttle' || mode === 'error500') {
        for (const k of acked) if (stored.has(k)) ghosts.push(`${o.tag} ${o.kind} answered ${r.status} but ${k} was written`);
      }
    }
    t.same(lost, [], `0 lost acknowledgements (${mine.filter((o) => o.res && o.res.status < 300).length} acknowledged requests checked in the store)`);
    t.same(ghosts, [], 'nothing written that was reported unprocessed, or (throttle/error500) answered with an error');
    if (mode === 'unprocessed') {
      const partial = mine.filter((o) => o.res?.status === 200 && o.res.json?.complete === false);
      t.ok(partial.length > 0, `some batches came back incomplete (${partial.length}), listing what was not written`);
      t.ok(partial.every((o) => (o.res!.json.unprocessed.puts as Json[]).some((p) => p.PK === pk(o.tag, 0))), 'the entry held back on every attempt is listed as unprocessed');
    }
    if (ambiguous.length > 0) t.comment(`${ambiguous.length} create(s) answered 409 after their first attempt landed and its answer was dropped`);

    // 3. Bounded attempts: no retry storm.
    const over: string[] = [];
    let totalAttempts = 0;
    let totalIdeal = 0;
    for (const o of mine) {
      const n = proxy.attempts.get(o.tag) ?? 0;
      totalAttempts += n;
      totalIdeal += idealCalls[o.kind];
      if (n > attemptBound(o.kind)) over.push(`${o.tag} ${o.kind}: ${n} backend requests > ${attemptBound(o.kind)}`);
    }
    t.same(over, [], `backend requests per client request within SDK attempts × retry budget (most: ${Math.max(...mine.map((o) => proxy.attempts.get(o.tag) ?? 0))})`);
    const amplification = totalAttempts / totalIdeal;
    t.comment(`${mode}: ${totalAttempts} backend requests for ${mine.length} client requests (${amplification.toFixed(2)}× the fault-free count)`);
    if (mode !== 'unprocessed' && mode !== 'stall') t.ok(amplification <= 1 / (1 - RATE) + 1, `amplification ${amplification.toFixed(2)}× stays near 1/(1 − fault rate)`);
  });
}

t.test('afterwards the faulty path still works and the host store is consistent', async (t) => {
  const key = `${RUN}#after#0#0`;
  const res = await s.request('POST', '/v1/models/User/items', { PK: key, SK: 'P', email: 'after@example.com', name: 'after' });
  t.equal(res.status, 201, 'a write through the proxy succeeds once faults stop');
  const direct = await host.request('GET', `${userPath(key)}?consistent=true`);
  t.equal(direct.json?.name, 'after', 'and is in the store');
});
