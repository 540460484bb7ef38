import { SidecarError } from '../errors.js';
import { deadlineExceeded, isDeadlineError } from './deadline.js';

/** Data-plane throttling: worth retrying after a back-off. */
export const THROTTLING_ERRORS: readonly string[] = ['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded'];
/** Every error name answered as 503 ErrThrottled (adds the control plane's limit on table operations). */
export const THROTTLES: ReadonlySet<string> = new Set([...THROTTLING_ERRORS, 'LimitExceededException']);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);

const MAX_MESSAGE = 500;

function dynamoMessage(message: string | undefined): string {
  const text = (message ?? '').replace(/\s+/g, ' ').trim();
  if (!text) return '(no message)';
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}

/** Translate an AWS SDK / network failure into the sidecar's error taxonomy. */
export function mapBackendError(err: unknown): SidecarError {
  if (err instanceof SidecarError) return err;
  if (isDeadlineError(err)) return deadlineExceeded();
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e?.name ?? '';
  if (THROTTLES.has(name)) {
    return new SidecarError('ErrThrottled', 503, 'DynamoDB is throttling requests; retry after a short delay', { retryAfter: 1 });
  }
  if (name === 'ValidationException') {
    if (/item size|size has exceeded/i.test(e.message ?? '')) {
      return new SidecarError('ErrInvalidItem', 400, 'the item would exceed DynamoDB\'s 400 KB limit after this write');
    }
    // DynamoDB's own words are the only ones that say what it refused. They can quote an operand or a key value, but
    // never plaintext of an encrypted attribute: those are ciphertext envelopes by the time a request is built, and
    // conditions, filters and keys cannot name them.
    // The request was valid (operands typed by the model); the item holds a value ADD or list_append cannot take,
    // typically an optional attribute stored as null: a conflict with what is stored, not a bad request.
    if (/operand in the update expression has an incorrect data type/i.test(e.message ?? '')) {
      return new SidecarError(
        'ErrStoredTypeMismatch',
        409,
        'the stored item holds a value of another type than this update needs (add, append or prepend on an attribute stored as null or as another type); set the attribute first',
      );
    }
    return new SidecarError('ErrInvalidRequest', 400, `DynamoDB rejected the request: ${dynamoMessage(e.message)}`);
  }
  if (name === 'ResourceNotFoundException') {
    return new SidecarError('ErrBackendUnavailable', 503, `DynamoDB table not found: ${e.message ?? ''}`.trim());
  }
  // A dropped connection can surface as a TimeoutError with code ECONNRESET: the code decides.
  if (NETWORK.has(e?.code ?? '') || NETWORK.has(name)) {
    return new SidecarError('ErrBackendUnavailable', 503, 'DynamoDB endpoint is unreachable or dropped the connection');
  }
  if (name === 'TimeoutError' || name === 'RequestTimeout' || e?.code === 'ETIMEDOUT') {
    return new SidecarError('ErrBackendUnavailable', 504, 'DynamoDB did not answer in time');
  }
  // Anything else that came back from (or instead of) DynamoDB: a 5xx, an unreadable answer, an auth failure.
  return new SidecarError('ErrBackendUnavailable', 503, `DynamoDB call failed (${name || 'unknown error'})`);
}

export function isConditionFailure(err: unknown): err is { Item?: Record<string, unknown> } {
  return (err as { name?: string })?.name === 'ConditionalCheckFailedException';
}
