// A request's deadline, carried in an AsyncLocalStorage so backend calls, retry loops and lock waits can read it
// without a parameter threaded through every function. The HTTP layer (src/http/deadline.ts) sets it from the
// X-Request-Timeout-Ms header or the Lambda invocation's deadline; nothing here knows about HTTP.
import { AsyncLocalStorage } from 'node:async_hooks';
import { SidecarError } from '../errors.js';

export interface Deadline {
  /** Epoch ms at which backend work stops, so the 504 can still be sent before the caller's budget runs out. */
  readonly at: number;
  /** The budget the caller gave (ms), for messages. */
  readonly budgetMs: number;
  /** Where the budget came from. */
  readonly source: 'header' | 'lambda';
  /** Set once something gave up because of this deadline (a retry not started, a call aborted, a lock not taken). */
  hit: boolean;
}

/** Time kept back from the budget to answer: the 504 leaves at budget − margin. */
// 25 ms (a tenth of small budgets): room for the 504 itself and for a busy event loop firing the timer late.
export const answerMarginMs = (budgetMs: number): number => Math.min(25, Math.floor(budgetMs / 10));
/** A Lambda function must still act on the 504 and answer its own caller before its invocation times out. */
export const LAMBDA_MARGIN_MS = 100;

const storage = new AsyncLocalStorage<Deadline>();

let ambient: number | undefined;
/**
 * A deadline for requests that bring none (epoch ms; undefined clears it): the Lambda extension sets the
 * current invocation's deadlineMs here on each INVOKE event.
 */
export function setAmbientDeadline(at: number | undefined): void {
  ambient = at;
}
export const ambientDeadline = (): number | undefined => ambient;

export function newDeadline(startedAt: number, budgetMs: number, source: Deadline['source']): Deadline {
  const margin = source === 'lambda' ? Math.min(LAMBDA_MARGIN_MS, Math.floor(budgetMs / 4)) : answerMarginMs(budgetMs);
  return { at: startedAt + budgetMs - margin, budgetMs, source, hit: false };
}

/** Runs `fn` (and everything it starts) under `deadline`. */
export function withDeadline<T>(deadline: Deadline | undefined, fn: () => T): T {
  return deadline ? storage.run(deadline, fn) : fn();
}

export function currentDeadline(): Deadline | undefined {
  return storage.getStore();
}

/** Milliseconds left before the current deadline; Infinity without one. */
export function remainingMs(): number {
  const d = storage.getStore();
  return d ? d.at - Date.now() : Infinity;
}

/** True when the current request gave up something because of its deadline, or its deadline has passed. */
export function deadlineHit(d: Deadline | undefined = storage.getStore()): boolean {
  return d !== undefined && (d.hit || d.at <= Date.now());
}

/** Records that work was given up because of the deadline. */
export function noteDeadlineHit(): void {
  const d = storage.getStore();
  if (d) d.hit = true;
}

/** The 504 problem; `extra` says what was done and what was not (batches). */
export function deadlineExceeded(detail?: string, extra?: Record<string, unknown>, d: Deadline | undefined = storage.getStore()): SidecarError {
  if (d) d.hit = true;
  const budget = d ? `${d.source === 'lambda' ? "the Lambda invocation's" : 'the request\'s'} ${d.budgetMs} ms budget` : 'the request\'s budget';
  return new SidecarError('ErrDeadlineExceeded', 504, detail ?? `the backend did not answer within ${budget}`, extra);
}

/** Throws the 504 when the current deadline has passed. */
export function checkDeadline(): void {
  if (remainingMs() <= 0) throw deadlineExceeded();
}

/** An AbortSignal that fires at the current deadline (undefined without one). */
export function deadlineSignal(): AbortSignal | undefined {
  const d = storage.getStore();
  return d ? AbortSignal.timeout(Math.max(0, d.at - Date.now())) : undefined;
}

/**
 * Is `err` the end of a call because the deadline came: our own 504, the lean client's DeadlineExceeded, or an
 * abort / timeout while the current deadline has passed.
 */
export function isDeadlineError(err: unknown): boolean {
  if (err instanceof SidecarError) return err.code === 'ErrDeadlineExceeded';
  const name = (err as { name?: string } | undefined)?.name;
  if (name === 'DeadlineExceeded') return true;
  return (name === 'AbortError' || name === 'TimeoutError') && storage.getStore() !== undefined && remainingMs() <= 0;
}

/**
 * Waits for `work` (shared with other requests, so it is not aborted) no longer than the current deadline.
 */
export async function untilDeadline<T>(work: Promise<T>): Promise<T> {
  const left = remainingMs();
  if (left === Infinity) return work;
  if (left <= 0) {
    work.catch(() => undefined);
    throw deadlineExceeded();
  }
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(deadlineExceeded()), left);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
    work.catch(() => undefined);
  }
}
