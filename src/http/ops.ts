import type { FastifyInstance } from 'fastify';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SidecarError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { openApiDocument } from './openapi.js';
import { sendProblem } from './problem.js';
import { routeConfig, useRouteConfig } from './route-config.js';

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
  useRouteConfig(app);
  app.addHook('onResponse', (request, reply, done) => {
    const config = routeConfig(request);
    metrics.requestObserver(config.url ?? 'unmatched', config.model ?? '', config.op ?? '', reply.statusCode)(reply.elapsedTime / 1000);
    done();
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
  if (options.docs) lazyDocs(app);
}

/** Response headers of the Swagger UI app that belong to its own connection, not to the answer. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date']);

/**
 * Swagger UI at /docs, loaded on the first request for it: @fastify/swagger-ui, @fastify/static and the `yaml`
 * library stay out of the boot. It runs in a Fastify app of its own (plugins cannot be added to a started app) whose
 * stand-in for @fastify/swagger serves this app's document; requests reach it through `inject`, after this app's
 * hooks (auth, request log, metrics) have run as for any route.
 */
function lazyDocs(app: FastifyInstance): void {
  let docsApp: Promise<FastifyInstance> | undefined;
  const start = async (): Promise<FastifyInstance> => {
    const [{ default: Fastify }, { default: swaggerUi }] = await Promise.all([import('fastify'), import('@fastify/swagger-ui'), openApiDocument(app)]);
    const docs = Fastify({ logger: false });
    const swaggerStandIn = Object.assign(async (instance: FastifyInstance) => {
      instance.decorate('swagger', ((opts?: { yaml?: boolean }) => app.swagger(opts as { yaml: true })) as FastifyInstance['swagger']);
    }, { [Symbol.for('skip-override')]: true, [Symbol.for('plugin-meta')]: { name: '@fastify/swagger' } });
    await docs.register(swaggerStandIn);
    await docs.register(swaggerUi, { routePrefix: '/docs', uiConfig: { tryItOutEnabled: true }, staticCSP: true });
    await docs.ready();
    return docs;
  };
  const forward = async (request: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
    const docs = await (docsApp ??= start().catch((err: unknown) => {
      docsApp = undefined;
      throw err;
    }));
    const res = await docs.inject({ method: request.method as 'GET', url: request.url, headers: request.headers });
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) reply.header(name, value);
    }
    reply.code(res.statusCode);
    return res.rawPayload.length > 0 ? reply.send(res.rawPayload) : reply.send();
  };
  for (const url of ['/docs', '/docs/*']) app.route({ method: 'GET', url, schema: { hide: true }, handler: forward });
}
