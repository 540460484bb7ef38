import { noteDeadlineHit, remainingMs } from './deadline.js';

/** Exponential backoff with full jitter, bounded by attempts and a deadline. */
export interface RetryPolicy {
  readonly baseMs: number;
  readonly maxDelayMs: number;
  /** Total time a request may spend retrying before it gives back what is left. */
  readonly deadlineMs: number;
  readonly maxAttempts: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 20, maxDelayMs: 1_000, deadlineMs: 5_000, maxAttempts: 12 };

export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(policy.maxDelayMs, policy.baseMs * 2 ** attempt));
}

/** Shortest attempt worth starting before the request's deadline. */
const MIN_ATTEMPT_MS = 5;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Tracks one request's retry budget, bounded by the request's deadline too (src/store/deadline.ts). */
export class RetryBudget {
  readonly #policy: RetryPolicy;
  readonly #deadline: number;
  #attempt = 0;

  constructor(policy: RetryPolicy) {
    this.#policy = policy;
    this.#deadline = Date.now() + policy.deadlineMs;
  }

  /** Wait before the next attempt; false when attempts or time have run out. */
  async wait(): Promise<boolean> {
    if (this.#attempt + 1 >= this.#policy.maxAttempts) return false;
    const delay = backoffDelay(this.#attempt, this.#policy);
    if (Date.now() + delay >= this.#deadline) return false;
    // The request's own deadline: no retry that cannot get an attempt in before it.
    if (delay + MIN_ATTEMPT_MS >= remainingMs()) {
      noteDeadlineHit();
      return false;
    }
    this.#attempt += 1;
    await sleep(delay);
    return true;
  }
}
