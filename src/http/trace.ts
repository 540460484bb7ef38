import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PARTNER_ID } from '../store/partners/config.js';
import { currentTrace, parseAmznTraceId, parseTraceparent, runInTrace, spanRecorder, startRequestTrace, type Attributes, type TraceContext } from '../trace/context.js';
import { routeConfig, useRouteConfig, type RouteConfig } from './route-config.js';

const traces = new WeakMap<FastifyRequest, TraceContext>();

/** The trace a request belongs to (for its log line). */
export function traceOf(request: FastifyRequest): TraceContext | undefined {
  return traces.get(request);
}

/** The caller's context: a valid `traceparent` (with its `tracestate`) first, else a valid `X-Amzn-Trace-Id`. */
function callerContext(headers: FastifyRequest['headers']) {
  return parseTraceparent(headers.traceparent, headers.tracestate) ?? parseAmznTraceId(headers['x-amzn-trace-id']);
}

const NO_ATTRIBUTES: Attributes = Object.freeze({}) as Attributes;

/** Sets dynamorm.model / dynamorm.operation / dynamorm.partner of a request on `attributes` (the partner only when it is a valid id). */
function addRequestAttributes(attributes: Attributes, config: RouteConfig, partner: string | string[] | undefined): Attributes {
  if (config.model) attributes['dynamorm.model'] = config.model;
  if (config.op) attributes['dynamorm.operation'] = config.op;
  if (typeof partner === 'string' && PARTNER_ID.test(partner)) attributes['dynamorm.partner'] = partner;
  return attributes;
}

/**
 * Every request joins its caller's trace (W3C `traceparent`/`tracestate` or `X-Amzn-Trace-Id`; a value that is not
 * valid is ignored and the request starts a new trace, never a 400). Its backend calls run inside that context
 * (src/trace/context.ts), and with span export on, the request is a server span.
 */
export function registerTraceContext(app: FastifyInstance, options: { partnerHeader: string }): void {
  const partnerHeader = options.partnerHeader.toLowerCase();
  useRouteConfig(app);
  app.addHook('onRequest', (request, _reply, done) => {
    const config = routeConfig(request);
    const route = config.url;
    const partner = request.headers[partnerHeader];
    const parent = callerContext(request.headers);
    // The server span's name and attributes are only built when spans are exported (startRequestTrace ignores them
    // otherwise); the context's own attributes are filled in place, without spread copies.
    const trace = spanRecorder()
      ? startRequestTrace(parent, route ? `${request.method} ${route}` : request.method, {
          'http.request.method': request.method,
          ...(route ? { 'http.route': route } : {}),
          'dynamorm.request_id': request.id,
          ...addRequestAttributes({}, config, partner),
        })
      : startRequestTrace(parent, '', NO_ATTRIBUTES);
    addRequestAttributes(trace.attributes, config, partner);
    traces.set(request, trace);
    runInTrace(trace, done);
  });
  // The body arrives in the socket's async context, not the request's: enter the trace again once it is parsed, so
  // the tenancy hook (STS) and the handler (DynamoDB, KMS) run inside it.
  app.addHook('preValidation', (request, _reply, done) => {
    const trace = traces.get(request);
    // Already inside it (no body was read: the hooks ran on from onRequest), nothing to enter.
    if (trace && currentTrace() !== trace) runInTrace(trace, done);
    else done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const span = traces.get(request)?.span;
    if (span) {
      span.setAttributes({ 'http.response.status_code': reply.statusCode });
      span.end(reply.statusCode >= 500 ? { name: `HTTP ${reply.statusCode}` } : undefined);
    }
    done();
  });
}
