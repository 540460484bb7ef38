import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode } from '../errors.js';
import { randomPool } from '../random-pool.js';
import { routeConfig, useRouteConfig } from './route-config.js';
import { traceOf } from './trace.js';

const problemCodes = new WeakMap<FastifyReply, ErrorCode>();

/** The problem `code` a reply carries, so the request's log line can name it (sendProblem records it). */
export function noteProblemCode(reply: FastifyReply, code: ErrorCode): void {
  problemCodes.set(reply, code);
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const uuidText = Buffer.alloc(36);

/**
 * A random (version 4) UUID, as crypto.randomUUID() makes them, from the pooled random bytes, written into one
 * reused buffer and read out as a single string.
 */
export function newRequestId(): string {
  const from = randomPool.take(16);
  const bytes = randomPool.buffer;
  let at = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) uuidText[at++] = 45; // -
    let byte = bytes[from + i]!;
    if (i === 6) byte = (byte & 0x0f) | 0x40; // version 4
    else if (i === 8) byte = (byte & 0x3f) | 0x80; // variant 10
    uuidText[at++] = HEX_DIGITS[byte >> 4]!;
    uuidText[at++] = HEX_DIGITS[byte & 0x0f]!;
  }
  return uuidText.toString('latin1', 0, 36);
}

/** Honour a caller's `x-request-id` when it is a sane token, otherwise mint one. */
export function requestId(request: { headers: Record<string, unknown> }): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : newRequestId();
}

/** One JSON log line per request (Fastify's own two lines are disabled; 4xx/5xx lines carry the problem code), and the id echoed back. */
export function registerRequestLog(app: FastifyInstance): void {
  let closing = false;
  useRouteConfig(app);
  // Once close() starts, answers say `Connection: close` so keep-alive sockets end after their last response
  // instead of holding the shutdown open until they time out.
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Callback-style hooks: an async hook costs a promise and its reaction per request.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', (request: FastifyRequest, reply, done) => {
    // The line's fields are only gathered when it is written (LOG_LEVEL=warn drops it).
    const log = request.log as FastifyRequest['log'] & { isLevelEnabled?: (level: string) => boolean };
    if (typeof log.isLevelEnabled !== 'function' || log.isLevelEnabled('info')) {
      const config = routeConfig(request);
      request.log.info(
        {
          method: request.method,
          route: config.url ?? 'unmatched',
          model: config.model,
          op: config.op,
          status: reply.statusCode,
          ...(reply.statusCode >= 400 && problemCodes.has(reply) ? { code: problemCodes.get(reply) } : {}),
          ms: Math.round(reply.elapsedTime * 1000) / 1000,
          traceId: traceOf(request)?.traceId,
        },
        'request',
      );
    }
    done();
  });
}
