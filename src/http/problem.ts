import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { deadlineProblem } from './deadline.js';
import { SidecarError, type ErrorCode } from '../errors.js';
import { ACCEPTED_CONTENT_TYPES } from './json-body.js';
import { noteProblemCode } from './request-log.js';
import type { ModelDef } from '../model/index.js';
import { RouteTable } from './route-table.js';
import { routeConfig, useRouteConfig } from './route-config.js';
import { describeValidation, type AjvError } from './validation-messages.js';

export const TITLES: Record<ErrorCode, string> = {
  ErrInvalidModel: 'Invalid model',
  ErrModelNotFound: 'Model not found',
  ErrInvalidItem: 'Invalid item',
  ErrMissingPrimaryKey: 'Missing primary key',
  ErrItemNotFound: 'Item not found',
  ErrConditionFailed: 'Condition failed',
  ErrInvalidOperator: 'Invalid operator',
  ErrEncryptedFieldNotQueryable: 'Encrypted attribute not queryable',
  ErrEncryptionNotConfigured: 'Encryption not configured',
  ErrInvalidEncryptedEnvelope: 'Invalid encrypted envelope',
  ErrThrottled: 'Throttled',
  ErrBackendUnavailable: 'Backend unavailable',
  ErrInvalidRequest: 'Invalid request',
  ErrUnsupportedMediaType: 'Unsupported media type',
  ErrPayloadTooLarge: 'Payload too large',
  ErrRouteNotFound: 'Route not found',
  ErrMethodNotAllowed: 'Method not allowed',
  ErrTransactionCanceled: 'Transaction canceled',
  ErrIdempotentParameterMismatch: 'Idempotency key reused with a different request',
  ErrStoredTypeMismatch: 'Stored value of another type',
  ErrMissingPartner: 'Partner required',
  ErrUnknownPartner: 'Unknown partner',
  ErrPartnerCredentials: 'Partner credentials unavailable',
  ErrUnauthorized: 'Unauthorized',
  ErrOverloaded: 'Overloaded',
  ErrRequestTimeout: 'Request timeout',
  ErrDeadlineExceeded: 'Deadline exceeded',
  ErrInternal: 'Internal error',
};

/** Route config the error mapper reads to phrase validation failures. */
export interface RouteErrorContext {
  /** Key attribute names of the route's model: a missing one is ErrMissingPrimaryKey. */
  keys?: string[];
  /** Whether the body is an item (validation errors are ErrInvalidItem) or a request (ErrInvalidRequest). */
  itemBody?: boolean;
  model?: string;
  op?: string;
  /** The route's model: validation errors name its attributes' DMS types. */
  modelDef?: ModelDef;
  /** Routes across models (transactions): the models by name. */
  models?: ReadonlyMap<string, ModelDef>;
  /** The route only stands in for unknown sub-paths: errors before its handler are answered as 404/405. */
  fallback?: boolean;
}

function attributeFromPath(instancePath: string): string | undefined {
  const first = instancePath.split('/').filter(Boolean);
  return first.length > 0 ? first.map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.') : undefined;
}

export const IF_MATCH_HINT = 'If-Match must be a version ETag like "3", or *';

/** What a header must look like, in words rather than the schema's regular expression. */
const HEADER_HINTS: Record<string, string> = {
  'if-match': IF_MATCH_HINT,
};

function fromValidation(err: FastifyError, route: RouteErrorContext, data: unknown): SidecarError {
  const errors = (err.validation ?? []) as unknown as AjvError[];
  const part = err.validationContext ?? 'body';
  const described = describeValidation(errors, part, data, route);
  if (described) return described;
  const first = errors.find((e) => e.keyword === 'anyOf') ?? errors[0];
  if (!first) return new SidecarError('ErrInvalidRequest', 400, err.message);
  const at = attributeFromPath(first.instancePath);
  const hint = part === 'headers' && at ? HEADER_HINTS[at] : undefined;
  if (hint) return new SidecarError('ErrInvalidRequest', 400, hint);
  return new SidecarError('ErrInvalidRequest', 400, `${part}${at ? ` ${at}` : ''}: ${first.message ?? 'is invalid'}`);
}

const FRAMEWORK: Record<string, [ErrorCode, number]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['ErrUnsupportedMediaType', 415],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['ErrInvalidRequest', 400],
  FST_ERR_CTP_BODY_TOO_LARGE: ['ErrPayloadTooLarge', 413],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['ErrInvalidRequest', 400],
  FST_ERR_CTP_INVALID_JSON_BODY: ['ErrInvalidRequest', 400],
};

/** `data` is the request part that failed validation (body, params, querystring or headers). */
export function toSidecarError(err: FastifyError, route: RouteErrorContext, data?: unknown): SidecarError {
  if (err instanceof SidecarError) return err;
  if (err.validation) return fromValidation(err, route, data);
  const known = err.code ? FRAMEWORK[err.code] : undefined;
  if (known) {
    // Fastify's own 415 (a content-type that does not parse as a media type) says only "Unsupported Media Type".
    const detail = known[0] === 'ErrUnsupportedMediaType' ? `content-type is not a valid media type; send ${ACCEPTED_CONTENT_TYPES}` : err.message;
    return new SidecarError(known[0], known[1], detail);
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new SidecarError('ErrInvalidRequest', err.statusCode, err.message);
  }
  return new SidecarError('ErrInternal', 500, 'internal error; see the sidecar log for this request id');
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: SidecarError): FastifyReply {
  // Every 503 (throttled, overloaded, backend or partner credentials unavailable) is worth retrying: say when.
  if (error.status === 503) {
    reply.header('retry-after', String(error.extra?.retryAfter ?? 1));
  }
  const { retryAfter: _omit, ...extra } = error.extra ?? {};
  noteProblemCode(reply, error.code);
  return reply
    .header('x-request-id', request.id)
    .code(error.status)
    .type('application/problem+json')
    .send({
      type: `urn:dynamorm-sidecar:error:${error.code}`,
      title: TITLES[error.code],
      status: error.status,
      detail: error.detail,
      code: error.code,
      instance: request.url.split('?')[0],
      requestId: request.id,
      ...extra,
    });
}

/** 405 with `Allow` when the path is declared for other methods, else 404. */
function unknownRoute(routes: RouteTable, request: FastifyRequest, reply: FastifyReply) {
  const path = request.url.split('?')[0];
  const allowed = routes.allowed(path);
  // The method itself being listed means the router refused the path for another reason: that stays a 404.
  if (allowed.length > 0 && !allowed.includes(request.method)) {
    reply.header('allow', allowed.join(', '));
    return sendProblem(request, reply, new SidecarError('ErrMethodNotAllowed', 405, `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`));
  }
  return sendProblem(request, reply, new SidecarError('ErrRouteNotFound', 404, `no route for ${request.method} ${path}`));
}

function requestPart(request: FastifyRequest, part: string | undefined): unknown {
  if (part === 'params') return request.params;
  if (part === 'querystring') return request.query;
  if (part === 'headers') return request.headers;
  return request.body;
}

/** problem+json for every error and unknown route; never a bare 500 body. */
export function registerProblemHandlers(app: FastifyInstance): RouteTable {
  useRouteConfig(app);
  const routes = new RouteTable();
  routes.watch(app);
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const route: RouteErrorContext = routeConfig(request);
    // Fastify reads the body (and may refuse it) before the not-found handler runs; the route is what is wrong.
    // A fallback route's own verdict (an unknown model) still stands.
    const routeVerdict = err instanceof SidecarError && err.code === 'ErrModelNotFound';
    const status = err instanceof SidecarError ? err.status : (err.statusCode ?? 500);
    if ((request.is404 || route.fallback) && !routeVerdict && status < 500) return unknownRoute(routes, request, reply);
    const error = deadlineProblem(toSidecarError(err, route, err.validation ? requestPart(request, err.validationContext) : undefined), request.deadline);
    if (error.status >= 500) request.log.error({ err, code: error.code }, 'request failed');
    return sendProblem(request, reply, error);
  });
  app.setNotFoundHandler((request, reply) => unknownRoute(routes, request, reply));
  return routes;
}

const CLIENT_ERRORS: Record<string, [number, string, ErrorCode]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'the request (headers and body) took too long to arrive', 'ErrRequestTimeout'],
  HPE_HEADER_OVERFLOW: [431, 'request line or headers are too large (long URL or query string?)', 'ErrInvalidRequest'],
};

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (oversized headers, garbage), answered as
 * problem+json like everything else. Passed to Fastify as `clientErrorHandler`.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: import('node:net').Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // A response already under way (e.g. a 401 sent before the body ended) must not get a second status line.
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, detail, code] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'malformed HTTP request', 'ErrInvalidRequest'];
  const body = JSON.stringify({ type: `urn:dynamorm-sidecar:error:${code}`, title: TITLES[code], status, detail, code });
  socket.end(
    `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
      `Connection: close\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
