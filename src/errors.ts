/** Stable error codes returned in problem+json bodies. */
export type ErrorCode =
  | 'ErrInvalidModel'
  | 'ErrModelNotFound'
  | 'ErrInvalidItem'
  | 'ErrMissingPrimaryKey'
  | 'ErrItemNotFound'
  | 'ErrConditionFailed'
  | 'ErrInvalidOperator'
  | 'ErrEncryptedFieldNotQueryable'
  | 'ErrEncryptionNotConfigured'
  | 'ErrInvalidEncryptedEnvelope'
  | 'ErrThrottled'
  | 'ErrBackendUnavailable'
  | 'ErrInvalidRequest'
  | 'ErrUnsupportedMediaType'
  | 'ErrPayloadTooLarge'
  | 'ErrRouteNotFound'
  | 'ErrMethodNotAllowed'
  | 'ErrTransactionCanceled'
  | 'ErrIdempotentParameterMismatch'
  | 'ErrStoredTypeMismatch'
  | 'ErrMissingPartner'
  | 'ErrUnknownPartner'
  | 'ErrPartnerCredentials'
  | 'ErrUnauthorized'
  | 'ErrOverloaded'
  | 'ErrRequestTimeout'
  | 'ErrDeadlineExceeded'
  | 'ErrInternal';

/**
 * The one error type the domain layers throw. `status` is the HTTP status the
 * http layer maps it to; `detail` must never contain plaintext of an encrypted attribute.
 */
export class SidecarError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string;
  readonly extra: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, status: number, detail: string, extra?: Record<string, unknown>) {
    super(`${code}: ${detail}`);
    this.name = 'SidecarError';
    this.code = code;
    this.status = status;
    this.detail = detail;
    this.extra = extra;
  }
}

/**
 * Why a write's condition failed (the problem's `reason` member): DMS has one ErrConditionFailed for all of them,
 * so the reason tells a create on an existing key (409) from a false condition or stale version (412).
 */
export type ConditionReason = 'item_exists' | 'item_missing' | 'version_mismatch' | 'condition_failed';

export const conditionFailed = (status: 409 | 412, reason: ConditionReason, detail: string): SidecarError =>
  new SidecarError('ErrConditionFailed', status, detail, { reason });

export const invalidItem = (detail: string, attribute?: string): SidecarError =>
  new SidecarError('ErrInvalidItem', 400, detail, attribute === undefined ? undefined : { attribute });

/** Attaches `cause` without making it enumerable (so it never lands in a problem body or a log line by accident). */
export function withCause(error: SidecarError, cause: unknown): SidecarError {
  Object.defineProperty(error, 'cause', { value: cause, enumerable: false, configurable: true, writable: true });
  return error;
}
