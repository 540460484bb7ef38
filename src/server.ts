import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { loadModels } from './dms/index.js';
import { ModelRegistry } from './model/index.js';
import { ItemStore } from './store/items.js';
import { openBackend, type Backend } from './store/backend.js';
import { ensureTables } from './store/tables.js';
import type { SidecarConfig } from './config.js';
import { registerProblemHandlers, sendProblem } from './http/problem.js';
import { SidecarError } from './errors.js';
import { registerJsonBody } from './http/json-body.js';
import { registerRequestLog, requestId } from './http/request-log.js';
import { registerOpenApi, openApiRoutes } from './http/openapi.js';
import { sharedSchemas } from './http/schemas.js';
import { modelRoutes } from './http/models.js';
import { itemRoutes } from './http/items.js';
import { healthRoutes } from './http/health.js';
import { readRoutes } from './http/reads.js';
import { batchRoutes } from './http/batch.js';
import { transactionRoutes } from './http/transactions.js';
import { ReadStore } from './store/query.js';
import { BatchStore } from './store/batch.js';
import { TransactionStore } from './store/transactions.js';
import { DEFAULT_RETRY, type RetryPolicy } from './store/retry.js';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

export interface AppOptions {
  readonly registry: ModelRegistry;
  readonly client: DynamoDBClient;
  readonly logger?: FastifyServerOptions['logger'];
  readonly bodyLimit?: number;
  readonly batchMaxItems?: number;
  readonly retryDeadlineMs?: number;
}

/** The HTTP application, without a listener: routes, schemas, errors, logs, OpenAPI. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // One line per request comes from our onResponse hook instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestId as FastifyServerOptions['genReqId'],
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    routerOptions: { maxParamLength: 2048 },
    frameworkErrors: (error, request, reply) =>
      sendProblem(request, reply, new SidecarError('ErrInvalidRequest', 400, `malformed request: ${error.message}`)),
  }).withTypeProvider<TypeBoxTypeProvider>();

  registerProblemHandlers(app);
  registerJsonBody(app);
  registerRequestLog(app);
  await registerOpenApi(app);
  for (const schema of sharedSchemas) app.addSchema(schema);
  for (const model of options.registry.list()) {
    for (const schema of Object.values(model.schemas)) app.addSchema(schema);
  }
  await app.register(healthRoutes);
  await app.register(openApiRoutes);
  await app.register(modelRoutes, { registry: options.registry });
  const { registry, client } = options;
  const items = new ItemStore({ client });
  const now = () => items.now();
  const retry: RetryPolicy = { ...DEFAULT_RETRY, deadlineMs: options.retryDeadlineMs ?? DEFAULT_RETRY.deadlineMs };
  const batchMaxItems = options.batchMaxItems ?? 1000;
  await app.register(itemRoutes, { registry, store: items });
  await app.register(readRoutes, { registry, reads: new ReadStore(client) });
  await app.register(batchRoutes, {
    registry,
    maxItems: batchMaxItems,
    batch: new BatchStore({ client, retry, maxItems: batchMaxItems, concurrency: 4, now }),
  });
  await app.register(transactionRoutes, {
    registry,
    transactions: new TransactionStore({ client, retry, now, models: (name) => registry.get(name) }),
  });
  return app;
}

export interface Sidecar {
  readonly app: FastifyInstance;
  readonly backend: Backend;
  readonly url: string;
  close(): Promise<void>;
}

/** Load models, open the backend, make tables, listen. */
export async function startSidecar(config: SidecarConfig, logger: FastifyServerOptions['logger'] = false): Promise<Sidecar> {
  const registry = new ModelRegistry(await loadModels(config.schemasDir));
  const backend = await openBackend({ endpoint: config.dynamodbEndpoint, region: config.region, dataDir: config.dataDir });
  try {
    const embedded = backend.kind === 'embedded';
    await ensureTables(backend.client, registry.tables(), { create: embedded || config.createTables, enableTtl: !embedded });
    const app = await buildApp({
      registry,
      client: backend.client,
      logger,
      bodyLimit: config.bodyLimit,
      batchMaxItems: config.batchMaxItems,
      retryDeadlineMs: config.retryDeadlineMs,
    });
    const url = await app.listen({ port: config.port, host: config.host });
    return {
      app,
      backend,
      url,
      async close() {
        await app.close();
        await backend.close();
      },
    };
  } catch (err) {
    await backend.close();
    throw err;
  }
}
