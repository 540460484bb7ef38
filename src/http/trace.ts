import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PARTNER_ID } from '../store/partners/config.js';
import { parseAmznTraceId, parseTraceparent, runInTrace, startRequestTrace, type Attributes, type TraceContext } from '../trace/context.js';
import type { RouteErrorContext } from './problem.js';

const traces = new WeakMap<FastifyRequest, TraceContext>();

/** The trace a request belongs to (for its log line). */
export function traceOf(request: FastifyRequest): TraceContext | undefined {
  return traces.get(request);
}

/** The caller's context: a valid `traceparent` (with its `tracestate`) first, else a valid `X-Amzn-Trace-Id`. */
function callerContext(headers: FastifyRequest['headers']) {
  return parseTraceparent(headers.traceparent, headers.tracestate) ?? parseAmznTraceId(headers['x-amzn-trace-id']);
}

/**
 * Every request joins its caller's trace (W3C `traceparent`/`tracestate` or `X-Amzn-Trace-Id`; a value that is not
 * valid is ignored and the request starts a new trace, never a 400). Its backend calls run inside that context
 * (src/trace/context.ts), and with span export on, the request is a server span.
 */
export function registerTraceContext(app: FastifyInstance, options: { partnerHeader: string }): void {
  const partnerHeader = options.partnerHeader.toLowerCase();
  app.addHook('onRequest', (request, _reply, done) => {
    const config = (request.routeOptions.config ?? {}) as RouteErrorContext;
    const route = request.routeOptions.url;
    const partner = request.headers[partnerHeader];
    const attributes: Attributes = {
      ...(config.model ? { 'dynamorm.model': config.model } : {}),
      ...(config.op ? { 'dynamorm.operation': config.op } : {}),
      ...(typeof partner === 'string' && PARTNER_ID.test(partner) ? { 'dynamorm.partner': partner } : {}),
    };
    const trace = startRequestTrace(callerContext(request.headers), route ? `${request.method} ${route}` : request.method, {
      'http.request.method': request.method,
      ...(route ? { 'http.route': route } : {}),
      'dynamorm.request_id': request.id,
      ...attributes,
    });
    Object.assign(trace.attributes, attributes);
    traces.set(request, trace);
    runInTrace(trace, done);
  });
  // The body arrives in the socket's async context, not the request's: enter the trace again once it is parsed, so
  // the tenancy hook (STS) and the handler (DynamoDB, KMS) run inside it.
  app.addHook('preValidation', (request, _reply, done) => {
    const trace = traces.get(request);
    if (trace) runInTrace(trace, done);
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
