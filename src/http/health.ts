import type { FastifyInstance } from 'fastify';

/** Liveness: the process is up and serving HTTP. */
export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
}
