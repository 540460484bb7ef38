import { DataPlaneError } from './port.js';

/**
 * The AWS SDK's `standard` retry mode: throttling errors back off from 500 ms, transient ones (5xx, timeouts,
 * dropped connections, corrupt answers) from 100 ms, both exponential with full jitter and capped at 20 s; every
 * retry spends tokens from a quota shared by the client (5, or 10 after a timeout) and a success pays back what its
 * retries spent (or 1 token), so a backend in trouble is not hammered by every request's retries at once.
 */
export const STANDARD = {
  maxAttempts: 3,
  initialTokens: 500,
  retryCost: 5,
  timeoutRetryCost: 10,
  noRetryIncrement: 1,
  baseDelayMs: 100,
  throttlingBaseDelayMs: 500,
  maxDelayMs: 20_000,
} as const;

/** The SDK's throttling error names (`@smithy/service-error-classification`). */
export const THROTTLING_NAMES: ReadonlySet<string> = new Set([
  'BandwidthLimitExceeded', 'EC2ThrottledException', 'LimitExceededException', 'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'RequestThrottled', 'RequestThrottledException',
  'SlowDown', 'ThrottledException', 'Throttling', 'ThrottlingException', 'TooManyRequestsException',
  'TransactionInProgressException',
]);

/** Transient by name (the SDK's TRANSIENT_ERROR_CODES plus clock skew, which a retry with a fresh date fixes). */
export const TRANSIENT_NAMES: ReadonlySet<string> = new Set([
  'TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'InternalServerError', 'InternalFailure',
  'ServiceUnavailable', 'CRC32CheckFailed', 'TruncatedResponse',
]);
export const TRANSIENT_STATUS: ReadonlySet<number> = new Set([500, 502, 503, 504]);
export const NETWORK_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENOTFOUND']);

export function isThrottling(name: string, status: number | undefined): boolean {
  return THROTTLING_NAMES.has(name) || status === 429;
}

export function isTransient(name: string, status: number | undefined, code?: string): boolean {
  return TRANSIENT_NAMES.has(name) || (status !== undefined && TRANSIENT_STATUS.has(status)) || (code !== undefined && NETWORK_CODES.has(code));
}

/** One client's retry quota. */
export class RetryQuota {
  #tokens: number = STANDARD.initialTokens;

  get available(): number {
    return this.#tokens;
  }

  /** Take the cost of one retry after `err`; undefined when the quota cannot pay for it. */
  acquire(err: DataPlaneError): number | undefined {
    const cost = err.name === 'TimeoutError' ? STANDARD.timeoutRetryCost : STANDARD.retryCost;
    if (this.#tokens < cost) return undefined;
    this.#tokens -= cost;
    return cost;
  }

  /** A call succeeded: pay back what its retries took, or one token when it needed none. */
  release(spent: number): void {
    this.#tokens = Math.min(STANDARD.initialTokens, this.#tokens + (spent > 0 ? spent : STANDARD.noRetryIncrement));
  }
}

/** Full-jitter delay before retry number `retry` (0 for the first). */
export function retryDelay(err: DataPlaneError, retry: number, random: () => number): number {
  const base = err.throttling ? STANDARD.throttlingBaseDelayMs : STANDARD.baseDelayMs;
  return Math.floor(Math.min(STANDARD.maxDelayMs, random() * 2 ** retry * base));
}

/** Shortest attempt worth starting before a request's deadline: a retry that cannot get this long is not made. */
export const MIN_ATTEMPT_MS = 5;

/** One attempt's timeout: the client's per-attempt timeout, or what is left before the request's deadline. */
export function attemptWindow(requestTimeoutMs: number, requestDeadline: number): { timeoutMs: number; byDeadline: boolean } {
  const left = requestDeadline - Date.now();
  return left < requestTimeoutMs ? { timeoutMs: Math.floor(left), byDeadline: true } : { timeoutMs: requestTimeoutMs, byDeadline: false };
}

/** Whether a retry after `delayMs` still has time for an attempt before the request's deadline. */
export function retryFitsDeadline(delayMs: number, requestDeadline: number): boolean {
  return Date.now() + delayMs + MIN_ATTEMPT_MS < requestDeadline;
}

/** The request's deadline came (or a retry could not finish before it): not retryable. */
export function deadlineExceededError(operation: string): DataPlaneError {
  return new DataPlaneError('DeadlineExceeded', `${operation} could not finish before the request's deadline`, { retryable: false });
}
