import { lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { STSClient } from '@aws-sdk/client-sts';
import type { KMSClient } from '@aws-sdk/client-kms';
import { ConfigError, type SidecarConfig } from './config.js';
import { loadModels } from './dms/index.js';
import { SidecarError } from './errors.js';
import { Keyring } from './keys.js';
import { ModelRegistry } from './model/index.js';
import { openBackend, dynamoClientConfig, lazyControlClient, leanClientOptions, whereOf, type Backend } from './store/backend.js';
import { LeanDynamoClient, type CallRecord } from './store/dataplane/client.js';
import type { DataPlane } from './store/dataplane/port.js';
import { DataAccess } from './store/data-access.js';
import { loadPartners, readPartners } from './store/partners/config.js';
import { PartnerPool } from './store/partners/pool.js';
import { PartnersReloader } from './store/partners/reload.js';
import { provisionPartners } from './store/partners/provision.js';
import { DEFAULT_RETRY, type RetryPolicy } from './store/retry.js';
import { ensureTables } from './store/tables.js';
import { idempotencyTableDef, sweepExpired } from './store/idempotency.js';
import { registerBearerAuth } from './http/auth.js';
import { batchRoutes } from './http/batch.js';
import { decodeRoutes } from './http/decode.js';
import { healthRoutes } from './http/health.js';
import { opsRoutes, registerLoadShedding, registerRequestMetrics, type OpsOptions, type ReadinessReport } from './http/ops.js';
import { Metrics } from './metrics.js';
import { itemRoutes } from './http/items.js';
import { registerJsonBody } from './http/json-body.js';
import { documentDeadline, registerDeadlines } from './http/deadline.js';
import { modelRoutes } from './http/models.js';
import { openApiRoutes, registerOpenApi } from './http/openapi.js';
import { clientErrorHandler, registerProblemHandlers, sendProblem } from './http/problem.js';
import { readRoutes } from './http/reads.js';
import { registerRequestLog, requestId } from './http/request-log.js';
import { registerTraceContext } from './http/trace.js';
import { traceAwsClient } from './trace/aws-sdk.js';
import { startTracing } from './trace/otel.js';
import { AJV_OPTIONS, lazyValidators, type OwnValidators } from './http/lazy-validation.js';
import { sharedSchemas } from './http/schemas.js';
import { registerTenancy, type TenancyOptions } from './http/tenancy.js';
import { transactionRoutes } from './http/transactions.js';
import { ModelRoutes, type PartCompiler } from './http/model-routes.js';

export interface AppOptions {
  readonly registry: ModelRegistry;
  readonly tenancy: TenancyOptions;
  readonly logger?: FastifyServerOptions['logger'];
  readonly bodyLimit?: number;
  readonly batchMaxItems?: number;
  readonly authToken?: string | undefined;
  readonly ops?: OpsOptions;
  /** Headers and body must have arrived within this many ms, else 408 and the connection is closed (0 = never). */
  readonly requestTimeoutMs?: number;
}

/** How often Node looks for requests past the timeout: its 30 s default would let a 30 s timeout run to 60 s. */
const timeoutCheckEvery = (ms: number): number => Math.min(1_000, Math.max(50, Math.floor(ms / 4)));

/** The HTTP application, without a listener: routes, schemas, errors, logs, OpenAPI, tenancy, auth. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const requestTimeout = options.requestTimeoutMs ?? 0;
  const ownValidators: OwnValidators = new Map();
  // The models' schemas ($id'd, referenced by the routes') go to Ajv and to the OpenAPI builder as they are, when first
  // needed: added to Fastify, each of the hundreds a 50-model set has was built and deep-cloned at boot.
  const schemasOf = (name: string) => {
    const model = options.registry.get(name);
    return model ? Object.values(model.schemas) : undefined;
  };
  const allModelSchemas = () => Object.fromEntries(options.registry.list().flatMap((m) => Object.values(m.schemas).map((s) => [s.$id!, s])));
  const validators = lazyValidators(ownValidators, schemasOf);
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // A body that trickles in must not hold its connection forever; Node answers through clientErrorHandler (408).
    requestTimeout,
    http: requestTimeout > 0
      ? { requestTimeout, headersTimeout: requestTimeout, connectionsCheckingInterval: timeoutCheckEvery(requestTimeout) }
      : {},
    // One line per request comes from our onResponse hook instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestId as FastifyServerOptions['genReqId'],
    ajv: AJV_OPTIONS,
    // Responses are plain JSON.stringify: fast-json-stringify compiled every route against every shared schema, which
    // made boot grow with models × routes (≈40 s for 50 models), and loading it (with its own Ajv) cost boot time
    // too. Response schemas still document the API.
    schemaController: { compilersFactory: { buildValidator: validators, buildSerializer: () => () => (data: unknown) => JSON.stringify(data) } },
    // The only regexes in routes are model-routes.ts's `:model(^(?:A|B|…)$)` lists of literal names: the router's
    // ReDoS check of each (safe-regex2, ≈ 10 ms of a 50-model boot) has nothing to find.
    routerOptions: { maxParamLength: 2048, allowUnsafeRegex: true },
    // On close, idle keep-alive sockets go at once; requests in flight are still answered.
    forceCloseConnections: 'idle',
    clientErrorHandler,
    frameworkErrors: (error, request, reply) =>
      sendProblem(request, reply, new SidecarError('ErrInvalidRequest', 400, `malformed request: ${error.message}`)),
  }).withTypeProvider<TypeBoxTypeProvider>();

  const routeTable = registerProblemHandlers(app);
  registerRequestLog(app);
  registerTraceContext(app, { partnerHeader: options.tenancy.header });
  if (options.ops?.metrics) registerRequestMetrics(app, options.ops.metrics);
  await registerLoadShedding(app, options.ops?.maxEventLoopDelayMs ?? 0);
  if (options.authToken) registerBearerAuth(app, options.authToken);
  registerDeadlines(app, { capMs: requestTimeout });
  registerJsonBody(app);
  registerTenancy(app, options.tenancy);
  const docs = await registerOpenApi(app, allModelSchemas);
  for (const schema of sharedSchemas) app.addSchema(schema);
  const { registry } = options;
  await app.register(healthRoutes);
  await app.register(opsRoutes, options.ops ?? {});
  await app.register(openApiRoutes);
  await app.register(modelRoutes, { registry });
  // Every model's routes are declared on `perModel.sink` and served by one route per path pattern (model-routes.ts).
  const perModel = new ModelRoutes((route) => {
    // What the app's onRoute hooks do with a route, in their order.
    routeTable.declare(route.method, route.url);
    documentDeadline(route as never);
    docs.declare(route);
  });
  await itemRoutes(perModel.sink, { registry });
  await readRoutes(perModel.sink, { registry });
  await batchRoutes(perModel.sink, { registry, maxItems: options.batchMaxItems ?? 1000 });
  await app.register(transactionRoutes, { registry, validators: ownValidators });
  await decodeRoutes(perModel.sink, { registry });
  perModel.mount(app, validators(app.getSchemas() as never, AJV_OPTIONS as never) as PartCompiler);
  return app;
}

export interface Sidecar {
  readonly app: FastifyInstance;
  readonly backend: Backend;
  readonly keyring: Keyring;
  readonly metrics: Metrics;
  /** Partners' clients, when a partners file is configured. */
  readonly pool: PartnerPool | undefined;
  /** Re-reads the partners file (on change, and when asked: SIGHUP); undefined without a partners file. */
  readonly partners: PartnersReloader | undefined;
  readonly url: string;
  close(): Promise<void>;
}

/** Load models and partners, open the backend, make tables, listen. */
export async function startSidecar(config: SidecarConfig, logger: FastifyServerOptions['logger'] = false): Promise<Sidecar> {
  const registry = new ModelRegistry(await loadModels(config.schemasDir));
  const partnersFile = config.partnersFile ? await readPartners(config.partnersFile) : undefined;
  const partners = partnersFile?.partners;
  const keyring = Keyring.create(config);
  // The KMS and STS clients load only where they are used: a KMS key configured, partners configured.
  if (config.kmsKeyArn || [...(partners?.values() ?? [])].some((p) => p.kmsKeyArn)) await keyring.loadKms();
  const sts = partners
    ? traceAwsClient(new (await import('@aws-sdk/client-sts')).STSClient({ region: config.region, ...(config.stsEndpoint ? { endpoint: config.stsEndpoint } : {}) }), 'STS')
    : undefined;
  // Span export (OTEL_EXPORTER_OTLP_ENDPOINT): the OpenTelemetry SDK loads only then.
  const tracing = await startTracing();
  // The metrics exist once the backend is open (assemble): calls made before (boot) are not counted.
  let onCall: ((call: CallRecord) => void) | undefined;
  const backend = await openBackend({
    kind: config.backend,
    endpoint: config.dynamodbEndpoint,
    region: config.region,
    dataDir: config.dataDir,
    onCall: (call) => onCall?.(call),
  });
  let parts: Parts | undefined;
  let reloader: PartnersReloader | undefined;
  const closeAll = async () => {
    reloader?.close();
    parts?.pool?.close();
    parts?.ownKms?.destroy();
    await backend.close();
    // The last requests' spans are exported before the process goes (SIGTERM, the Lambda extension's SHUTDOWN).
    await tracing?.shutdown().catch(() => undefined);
  };
  try {
    parts = assemble(config, registry, partners, sts, keyring, backend);
    const { metrics, pool, defaultAccess } = parts;
    onCall = (call) => metrics.dynamoCall(call);
    const embedded = backend.kind === 'embedded';
    const tables = registry.tables();
    // The idempotency table is checked after the models' (a boot without tables names those first), and required
    // at boot rather than at the first keyed transaction: a missing table fails fast, not in production traffic.
    const own = [idempotencyTableDef(config.idempotencyTable)];
    const ensured = [
      await ensureTables(backend.tables, tables, { create: embedded || config.createTables, enableTtl: !embedded }),
      await ensureTables(backend.tables, own, { create: embedded || config.createTables, enableTtl: !embedded }),
    ];
    const withoutTtl = ensured.flatMap((e) => e.withoutTtl);
    // dynalite has no TTL: expired idempotency records go at each boot instead.
    const swept = embedded ? await sweepExpired(backend.dataPlane, config.idempotencyTable, Date.now()) : 0;
    if (pool && config.createTables) {
      for (const id of partners!.keys()) {
        await ensureTables((await pool.access(id)).tables!, [...tables, ...own], { create: true, enableTtl: true });
      }
    }
    const app = await buildApp({
      registry,
      logger,
      bodyLimit: config.bodyLimit,
      batchMaxItems: config.batchMaxItems,
      authToken: config.authToken,
      requestTimeoutMs: config.requestTimeoutMs,
      ops: {
        metrics,
        docs: config.docs,
        maxEventLoopDelayMs: config.maxEventLoopDelayMs,
        readiness: readinessCheck(backend.tables.describe, tables[0]?.name, registry, () => pool?.partnerCount),
      },
      tenancy: {
        header: config.partnerHeader,
        requirePartner: config.requirePartner,
        pool,
        defaultAccess: config.requirePartner ? undefined : defaultAccess,
      },
    });
    for (const warning of keyring.warnings) app.log.warn(warning);
    if (pool && partnersFile) {
      reloader = new PartnersReloader({
        file: config.partnersFile!,
        pool,
        sha256: partnersFile.sha256,
        log: app.log,
        prepare: async (next, fresh) => {
          if ([...next.values()].some((p) => p.kmsKeyArn)) await keyring.loadKms();
          if (config.createTables) await provisionPartners({ sts: sts!, partners: fresh, tables: [...tables, ...own], endpoint: config.dynamodbEndpoint, region: config.region });
        },
        forget: (id) => keyring.forget(id),
      });
      metrics.watchPartnerReloads(reloader);
      await reloader.watch();
    }
    if (backend.recovered) app.log.warn(`rolled back ${backend.recovered} write transaction(s) interrupted by a crash`);
    if (swept) app.log.info(`deleted ${swept} expired idempotency record(s)`);
    if (withoutTtl.length > 0) {
      app.log.warn(`the DynamoDB endpoint has no UpdateTimeToLive: TTL is off on the created table(s) ${withoutTtl.join(', ')}, so their items do not expire`);
    }
    if (config.socket) await removeStaleSocket(config.socket);
    // Over the cap Node closes new connections at once: descriptors stay for the backend, LevelDB and logs.
    app.server.maxConnections = config.maxConnections;
    app.server.on('drop', () => metrics.connectionDropped());
    const url = await app.listen(config.socket ? { path: config.socket } : { port: config.port, host: config.host });
    // accept() failing (EMFILE, ENFILE) is reported as a server 'error' event: logged, never fatal.
    app.server.on('error', (err) => app.log.error({ err }, 'listener error'));
    return {
      app,
      backend,
      keyring,
      metrics,
      pool,
      partners: reloader,
      url,
      async close() {
        await app.close();
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * `--socket PATH` may only replace a socket nobody answers on (left by a crashed instance); a regular file, a
 * directory or a live socket of another instance is refused.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let stat;
  try {
    stat = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stat.isSocket()) throw new ConfigError(`--socket / SOCKET_PATH: ${path} exists and is not a socket; refusing to replace it`);
  const answered = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (answered) throw new ConfigError(`--socket / SOCKET_PATH: ${path} is in use by another process; refusing to replace it`);
  unlinkSync(path);
}

interface Parts {
  readonly metrics: Metrics;
  readonly defaultAccess: DataAccess;
  readonly pool: PartnerPool | undefined;
  readonly ownKms: KMSClient | undefined;
}

/** Metrics, the sidecar's own stores and the partner pool, over an open backend. */
function assemble(
  config: SidecarConfig,
  registry: ModelRegistry,
  partners: Awaited<ReturnType<typeof loadPartners>> | undefined,
  sts: STSClient | undefined,
  keyring: Keyring,
  backend: Backend,
): Parts {
  const metrics = new Metrics({
    counters: keyring.counters,
    cacheStats: () => keyring.cacheStats(),
    get cacheCount() {
      return keyring.cacheCount;
    },
  });
  const retry: RetryPolicy = { ...DEFAULT_RETRY, deadlineMs: config.retryDeadlineMs };
  const accessFor = (client: DataPlane, crypto: ReturnType<Keyring['crypto']>, partner?: string, tables?: Backend['tables']) =>
    new DataAccess({
      client,
      ...(tables ? { tables } : {}),
      crypto,
      registry,
      retry,
      idempotency: { table: config.idempotencyTable, partner },
      batchMaxItems: config.batchMaxItems,
      onUnprocessed: (model, op, count) => metrics.unprocessed(model, op, count),
    });
  const ownKms = config.kmsKeyArn ? keyring.kmsClient(config.region) : undefined;
  const defaultAccess = accessFor(backend.dataPlane, keyring.crypto(ownKms, config.kmsKeyArn), undefined, backend.tables);
  const pool = partners && sts
    ? new PartnerPool({
        partners,
        maxPartners: config.maxPartners,
        onAssumeRole: (partner, outcome) => metrics.assumeRole(partner, outcome),
        sts,
        build: (partner, credentials) => {
          const region = partner.region ?? config.region;
          const endpoint = partner.endpoint ?? config.dynamodbEndpoint;
          const client = new LeanDynamoClient(leanClientOptions(endpoint, region, credentials.provide, (call) => metrics.dynamoCall(call)));
          const control = lazyControlClient(() => dynamoClientConfig(endpoint, region, credentials.provide));
          const tables = { describe: client, control: control.get, where: whereOf(endpoint, region) };
          const kms = partner.kmsKeyArn ? keyring.kmsClient(region, credentials.provide) : undefined;
          return {
            access: accessFor(client, keyring.crypto(kms, partner.kmsKeyArn, partner.id), partner.id, tables),
            close: () => {
              client.close();
              control.destroy();
              kms?.destroy();
            },
          };
        },
      })
    : undefined;
  if (pool) metrics.watchPartners(pool);
  return { metrics, defaultAccess, pool, ownKms };
}

/** Ready when models are loaded, the backend answers (checked at most every 2 s) and partners (if any) loaded. */
function readinessCheck(
  client: Backend['tables']['describe'],
  table: string | undefined,
  registry: ModelRegistry,
  partners: () => number | undefined,
): () => Promise<ReadinessReport> {
  let last: { at: number; report: Promise<{ ok: boolean; detail?: string }> } | undefined;
  const backend = () => {
    if (!last || Date.now() - last.at > 2_000) {
      // The lean client's DescribeTable: no SDK needed; a store that does not answer in 2 s is not ready.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error('no answer in 2 s'), { name: 'TimeoutError' })), 2_000);
      });
      const report = Promise.race([client.DescribeTable({ TableName: table! }), timeout])
        .finally(() => clearTimeout(timer))
        .then(
          () => ({ ok: true }),
          (err: Error) => ({ ok: false, detail: `DescribeTable ${table} failed: ${err.name}` }),
        );
      last = { at: Date.now(), report };
    }
    return last.report;
  };
  return async () => {
    const checks: ReadinessReport['checks'] = {
      models: { ok: registry.list().length > 0, detail: `${registry.list().length} models` },
      backend: table ? await backend() : { ok: true },
      partners: { ok: true, detail: partners() === undefined ? 'none configured' : `${partners()} partners` },
    };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  };
}
