import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { loadModels } from './dms/index.js';
import { ModelRegistry } from './model/index.js';
import { ItemStore } from './store/items.js';
import { openBackend, type Backend } from './store/backend.js';
import { ensureTables } from './store/tables.js';
import type { SidecarConfig } from './config.js';
import { registerProblemHandlers } from './http/problem.js';
import { registerJsonBody } from './http/json-body.js';
import { registerRequestLog, requestId } from './http/request-log.js';
import { registerOpenApi, openApiRoutes } from './http/openapi.js';
import { sharedSchemas } from './http/schemas.js';
import { modelRoutes } from './http/models.js';
import { itemRoutes } from './http/items.js';
import { healthRoutes } from './http/health.js';

export interface AppOptions {
  readonly registry: ModelRegistry;
  readonly store: ItemStore;
  readonly logger?: FastifyServerOptions['logger'];
  readonly bodyLimit?: number;
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
  await app.register(itemRoutes, { registry: options.registry, store: options.store });
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
    const app = await buildApp({ registry, store: new ItemStore({ client: backend.client }), logger, bodyLimit: config.bodyLimit });
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
