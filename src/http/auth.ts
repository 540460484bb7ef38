import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { SidecarError } from '../errors.js';
import { sendProblem } from './problem.js';

const EXEMPT = new Set(['/healthz', '/readyz']);
const digest = (value: string) => createHash('sha256').update(value).digest();

/** Shared bearer token for callers; health endpoints stay open for orchestrators. */
export function registerBearerAuth(app: FastifyInstance, token: string): void {
  const expected = digest(token);
  app.addHook('onRequest', async (request, reply) => {
    if (EXEMPT.has(request.url.split('?')[0])) return;
    const header = request.headers.authorization;
    // RFC 9110: the scheme name is case-insensitive.
    const match = typeof header === 'string' ? /^bearer\s+(.+)$/i.exec(header) : null;
    const given = match ? match[1].trim() : '';
    // Comparing fixed-length digests keeps the check constant-time whatever the length of the guess.
    if (given && timingSafeEqual(digest(given), expected)) return;
    reply.header('www-authenticate', 'Bearer');
    // An unauthenticated caller keeps nothing open: no keep-alive, and a body still arriving is not waited for.
    reply.header('connection', 'close');
    return sendProblem(request, reply, new SidecarError('ErrUnauthorized', 401, 'missing or wrong bearer token'));
  });
}
