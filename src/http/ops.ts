import type { FastifyInstance } from 'fastify';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import swaggerUi from '@fastify/swagger-ui';
import { SidecarError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { sendProblem, type RouteErrorContext } from './problem.js';

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Record<string, { ok: boolean; detail?: string }>;
}

export interface OpsOptions {
  readonly metrics?: Metrics | undefined;
  readonly readiness?: (() => Promise<ReadinessReport>) | undefined;
  /** Serve Swagger UI at /docs. */
  readonly docs?: boolean;
  /** Event-loop delay (ms) above which requests are shed with 503; 0 turns shedding off. */
  readonly maxEventLoopDelayMs?: number;
}

/** Request latency histogram, fed from every response. Root-level hook: call before routes are added. */
export function registerRequestMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', async (request, reply) => {
    const config = (request.routeOptions.config ?? {}) as RouteErrorContext;
    metrics.observeRequest(
      { route: request.routeOptions.url ?? 'unmatched', model: config.model ?? '', op: config.op ?? '', status: reply.statusCode },
      reply.elapsedTime / 1000,
    );
  });
}

const PROBES = new Set(['/healthz', '/readyz', '/metrics']);
const WARM_UP_MS = 3_000;

const SAMPLE_MS = 1_000;
const RESOLUTION_MS = 10;

/**
 * Load shedding on event-loop pressure, answered as problem+json with Retry-After. The mean event-loop delay of the
 * last second, as @fastify/under-pressure measured it, but its sampler also called process.memoryUsage(), which
 * throws EMFILE when descriptors run out and took the process down from a timer; this one only reads a histogram.
 */
export async function registerLoadShedding(app: FastifyInstance, maxEventLoopDelayMs: number): Promise<void> {
  if (maxEventLoopDelayMs <= 0) return;
  // Boot blocks the loop (module loading, table checks); the first samples after it say nothing about load.
  let sheddingFrom = Number.POSITIVE_INFINITY;
  let delayMs = 0;
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  const sampler = setInterval(() => {
    const mean = histogram.mean / 1e6 - RESOLUTION_MS;
    delayMs = Number.isNaN(mean) ? 0 : Math.max(0, mean);
    histogram.reset();
  }, SAMPLE_MS).unref();
  app.addHook('onListen', async () => {
    sheddingFrom = Date.now() + WARM_UP_MS;
  });
  app.addHook('onClose', async () => {
    clearInterval(sampler);
    histogram.disable();
  });
  app.addHook('onRequest', async (request, reply) => {
    // Probes are never shed: an orchestrator must see a busy sidecar as alive, not restart it.
    if (delayMs <= maxEventLoopDelayMs || PROBES.has(request.url.split('?')[0]) || Date.now() < sheddingFrom) return;
    return sendProblem(request, reply, new SidecarError('ErrOverloaded', 503, 'the sidecar is overloaded; retry shortly', { retryAfter: 5 }));
  });
}

/** `/readyz`, `/metrics` and (optionally) Swagger UI at `/docs`. */
export async function opsRoutes(app: FastifyInstance, options: OpsOptions): Promise<void> {
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const report = options.readiness ? await options.readiness() : { ready: true, checks: {} };
    return reply.code(report.ready ? 200 : 503).send({ status: report.ready ? 'ready' : 'not ready', checks: report.checks });
  });
  const { metrics } = options;
  if (metrics) {
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
      reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
    );
  }
  if (options.docs) {
    await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { tryItOutEnabled: true }, staticCSP: true });
  }
}
