// Per-request time budget: `X-Request-Timeout-Ms: <ms>` (decimal integer milliseconds, the format of Envoy's
// x-envoy-expected-rq-timeout-ms), or — in the Lambda extension — the current invocation's deadline when no
// header is given. The budget is capped at the server's --request-timeout-ms. Backend work stops a little before
// it runs out (src/store/deadline.ts) and the caller gets 504 ErrDeadlineExceeded in time.
import type { FastifyInstance, RouteOptions } from 'fastify';
import { Type } from '@sinclair/typebox/type';
import { SidecarError } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import { ambientDeadline, deadlineExceeded, deadlineHit, newDeadline, withDeadline, type Deadline } from '../store/deadline.js';
import { problemResponse } from './schemas.js';
import type { RouteErrorContext } from './problem.js';
import { routeConfig, useRouteConfig } from './route-config.js';

export const DEADLINE_HEADER = 'x-request-timeout-ms';
/** The largest budget the header may name (10 minutes). */
export const MAX_BUDGET_MS = 600_000;

const headerSchema = Type.String({
  pattern: '^([1-9][0-9]{0,4}|[1-5][0-9]{5}|600000)$', // 1 to 600000
  description:
    'Time budget for this request in milliseconds (1–600000, capped at the server\'s --request-timeout-ms). Every backend call, retry and ' +
    'batch/transaction loop stops in time to answer 504 ErrDeadlineExceeded before it runs out.',
  examples: ['300'],
});

const DEADLINE_RESPONSE = problemResponse(
  504,
  'ErrDeadlineExceeded: the X-Request-Timeout-Ms budget (or the Lambda invocation\'s deadline) ran out before the backend answered; ' +
    'batch routes say what was done (`processed`) and what was not (`unprocessed`), by key',
);

declare module 'fastify' {
  interface FastifyRequest {
    deadline: Deadline | undefined;
  }
}

/** The budget a header value names, or a 400. */
export function parseBudget(raw: string | string[] | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const text = Array.isArray(raw) ? raw.join(',') : raw;
  const ms = /^\s*[1-9][0-9]{0,8}\s*$/.test(text) ? Number(text) : NaN;
  if (!(ms >= 1 && ms <= MAX_BUDGET_MS)) {
    throw new SidecarError('ErrInvalidRequest', 400, `X-Request-Timeout-Ms must be a whole number of milliseconds from 1 to ${MAX_BUDGET_MS}, got ${JSON.stringify(text.slice(0, 40))}`, {
      header: 'X-Request-Timeout-Ms',
    });
  }
  return ms;
}

const isDataRoute = (config: unknown): boolean => {
  const c = (config ?? {}) as RouteErrorContext;
  return typeof c.op === 'string' && c.op !== 'item' && !c.fallback;
};

/** Documents the budget header and the 504 on a data route (an onRoute hook for routes registered after it; model-routes.ts calls it for the per-model routes). */
export function documentDeadline(route: Pick<RouteOptions, 'config' | 'schema'>): void {
  if (!isDataRoute(route.config) || !route.schema || route.schema.hide) return;
  const schema = route.schema as { headers?: { properties?: Record<string, unknown>; [k: string]: unknown }; response?: Record<string, unknown> };
  const headers = schema.headers ?? Type.Object({});
  schema.headers = { ...headers, properties: { ...(headers.properties ?? {}), [DEADLINE_HEADER]: headerSchema } };
  if (schema.response) schema.response = { ...schema.response, ...DEADLINE_RESPONSE };
}

export interface DeadlineOptions {
  /** The server's --request-timeout-ms (0: no cap beyond MAX_BUDGET_MS). */
  readonly capMs: number;
}

/** Reads the budget at onRequest (a bad header is a 400 before the body is read) and runs the route under it. */
export function registerDeadlines(app: FastifyInstance, options: DeadlineOptions): void {
  const cap = options.capMs > 0 ? Math.min(options.capMs, MAX_BUDGET_MS) : MAX_BUDGET_MS;
  app.addHook('onRoute', documentDeadline);
  app.decorateRequest('deadline', undefined);
  useRouteConfig(app);
  // Callback-style (no promise per request); a bad header is handed to done() as the async hook's rejection was.
  app.addHook('onRequest', (request, _reply, done) => {
    if (!isDataRoute(routeConfig(request))) return done();
    const started = Date.now();
    let budget: number | undefined;
    try {
      budget = parseBudget(request.headers[DEADLINE_HEADER]);
    } catch (err) {
      return done(err as Error);
    }
    if (budget !== undefined) {
      request.deadline = newDeadline(started, Math.min(budget, cap), 'header');
      return done();
    }
    const invocation = ambientDeadline();
    if (invocation !== undefined && invocation > started) request.deadline = newDeadline(started, Math.min(invocation - started, cap), 'lambda');
    done();
  });
  // After the body is read (its stream events would lose an AsyncLocalStorage context set earlier).
  app.addHook('preValidation', (request, _reply, done) => withDeadline(request.deadline, done));
}

/** A 5xx while the request's deadline was hit is the deadline's doing: answered as 504 ErrDeadlineExceeded. */
export function deadlineProblem(error: SidecarError, deadline: Deadline | undefined): SidecarError {
  return error.status >= 500 && error.code !== 'ErrDeadlineExceeded' && deadlineHit(deadline) ? deadlineExceeded(undefined, undefined, deadline) : error;
}

type Logical = Record<string, unknown>;
const keyOf = (model: ModelDef, item: Logical): Logical => Object.fromEntries(model.keyAttributes.map((a) => [a, item[a]]));
const fingerprint = (model: ModelDef, item: Logical): string => JSON.stringify(model.keyAttributes.map((a) => item[a]));

function split(model: ModelDef, asked: readonly Logical[], left: readonly Logical[]): { processed: Logical[]; unprocessed: Logical[] } {
  const pending = new Set(left.map((k) => fingerprint(model, k)));
  return {
    processed: asked.filter((k) => !pending.has(fingerprint(model, k))).map((k) => keyOf(model, k)),
    unprocessed: left.map((k) => keyOf(model, k)),
  };
}

/** A batch-get cut short by the deadline: 504 naming the keys read and the keys not read (no item values). */
export function batchGetOutcome<T extends { unprocessedKeys: Logical[]; complete: boolean }>(model: ModelDef, keys: readonly Logical[], result: T): T {
  if (result.complete || !deadlineHit()) return result;
  const { processed, unprocessed } = split(model, keys, result.unprocessedKeys);
  throw deadlineExceeded(`the deadline came with ${unprocessed.length} of ${keys.length} keys not read; nothing was returned`, {
    processed: { keys: processed },
    unprocessed: { keys: unprocessed },
  });
}

/**
 * A batch-write cut short by the deadline: 504 naming, by key, the puts and deletes applied and those not applied
 * (an entry whose request was in flight at the deadline is listed as unprocessed: it may have been applied; both
 * batch puts and deletes are safe to send again).
 */
export function batchWriteOutcome<T extends { unprocessed: { puts: Logical[]; deletes: Logical[] }; complete: boolean }>(
  model: ModelDef,
  body: { puts?: readonly Logical[]; deletes?: readonly Logical[] },
  result: T,
): T {
  if (result.complete || !deadlineHit()) return result;
  const puts = split(model, body.puts ?? [], result.unprocessed.puts);
  const deletes = split(model, body.deletes ?? [], result.unprocessed.deletes);
  throw deadlineExceeded(`the deadline came with ${puts.unprocessed.length} puts and ${deletes.unprocessed.length} deletes not applied`, {
    processed: { puts: puts.processed, deletes: deletes.processed },
    unprocessed: { puts: puts.unprocessed, deletes: deletes.unprocessed },
  });
}

