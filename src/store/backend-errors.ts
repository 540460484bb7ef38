import { SidecarError } from '../errors.js';

const THROTTLES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
]);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);

/** Translate an AWS SDK / network failure into the sidecar's error taxonomy. */
export function mapBackendError(err: unknown): SidecarError {
  if (err instanceof SidecarError) return err;
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e?.name ?? '';
  if (THROTTLES.has(name)) {
    return new SidecarError('ErrThrottled', 503, 'DynamoDB is throttling requests; retry after a short delay', { retryAfter: 1 });
  }
  if (name === 'ValidationException') {
    return new SidecarError('ErrInvalidItem', 400, `DynamoDB rejected the request: ${e.message ?? 'validation error'}`);
  }
  if (name === 'ResourceNotFoundException') {
    return new SidecarError('ErrBackendUnavailable', 503, `DynamoDB table not found: ${e.message ?? ''}`.trim());
  }
  if (name === 'TimeoutError' || name === 'RequestTimeout' || e?.code === 'ETIMEDOUT') {
    return new SidecarError('ErrBackendUnavailable', 504, 'DynamoDB did not answer in time');
  }
  if (NETWORK.has(e?.code ?? '') || NETWORK.has(name)) {
    return new SidecarError('ErrBackendUnavailable', 503, 'DynamoDB endpoint is unreachable');
  }
  const status = e?.$metadata?.httpStatusCode ?? 0;
  if (status >= 500 || name === 'InternalServerError' || name === 'ServiceUnavailable') {
    return new SidecarError('ErrBackendUnavailable', 503, `DynamoDB failed: ${name || 'server error'}`);
  }
  return new SidecarError('ErrInternal', 500, `unexpected DynamoDB error ${name || 'unknown'}`);
}

export function isConditionFailure(err: unknown): err is { Item?: Record<string, unknown> } {
  return (err as { name?: string })?.name === 'ConditionalCheckFailedException';
}
