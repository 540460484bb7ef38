import type { FastifyInstance } from 'fastify';
// Types only (app.swagger, schema.hide): the plugin itself is not loaded, see registerOpenApi.
import type {} from '@fastify/swagger';
import { addHook } from '@fastify/swagger/lib/util/add-hook.js';

export const OPENAPI_INFO = {
  title: 'dynamorm sidecar',
  version: '0.1.0',
  description:
    'Typed DynamoDB data access generated from DynamORM Spec (DMS) v0.1 models. Errors are RFC 9457 problem+json with a stable `code`. ' +
    'Every operation also accepts the optional trace headers `traceparent` and `tracestate` (W3C Trace Context) or `X-Amzn-Trace-Id` ' +
    '(AWS X-Ray): the request joins that trace; a value that is not valid is ignored (a new trace), never an error.',
};

/**
 * Decorates the app (so its plugins' child instances inherit it): loads @fastify/swagger's spec builder (and the
 * `yaml` library it needs) once.
 */
const LOAD_SPEC = Symbol('dynamorm.loadOpenApiSpec');
type WithLoader = FastifyInstance & { [LOAD_SPEC]?: () => Promise<void> };

/**
 * Registers the OpenAPI generator; must run before any route is added. This is @fastify/swagger's `dynamic` mode
 * (the same route collection and options) except that its spec builder, which requires the `yaml` library
 * (≈70 modules, 66 ms at boot), loads on the first request for the document instead of at boot.
 */
export async function registerOpenApi(app: FastifyInstance, extraSchemas: () => Record<string, unknown> = () => ({})): Promise<{ declare(route: object): void }> {
  const options = {
    exposeRoute: false,
    hiddenTag: 'X-HIDDEN',
    hideUntagged: false,
    stripBasePath: true,
    swagger: {},
    transform: null,
    transformObject: null,
    decorator: 'swagger',
    convertConstToEnum: true,
    openapi: { openapi: '3.1.0', info: OPENAPI_INFO },
    refResolver: { buildLocalReference: (json: { $id?: unknown }, _baseUri: unknown, _fragment: unknown, i: number) => String(json.$id ?? `def-${i}`) },
  };
  // Schemas the app does not hold (the models', built on first use) are components too: add-hook.js reads the
  // app's schemas in its onReady hook, which therefore runs when the document is first built, not at boot.
  // (add-hook.js uses only these two members of the instance it is given.)
  let collectSchemas: ((done: () => void) => void) | undefined;
  const withExtra = {
    addHook: (name: string, hook: (...args: never[]) => unknown) => (name === 'onReady' ? void (collectSchemas = hook as never) : app.addHook(name as never, hook as never)),
    getSchemas: () => ({ ...app.getSchemas(), ...extraSchemas() }),
  } as unknown as FastifyInstance;
  const { routes, Ref } = addHook(withExtra, options);
  const cache = { object: null, string: null };
  let build: ((options?: { yaml?: boolean }) => unknown) | undefined;
  app.decorate(LOAD_SPEC, async () => {
    if (build) return;
    const { default: spec } = await import('@fastify/swagger/lib/spec/openapi/index.js');
    if (collectSchemas) {
      collectSchemas(() => undefined);
      collectSchemas = undefined;
    }
    build ??= spec(options, cache, routes, Ref);
  });
  app.decorate('swagger', ((opts?: { yaml?: boolean }) => {
    if (!build) throw new Error('the OpenAPI document is built on demand: await openApiDocument(app) first');
    return build(opts);
  }) as FastifyInstance['swagger']);
  // Routes served under a shared path (model-routes.ts) are documented as declared, in the order they come.
  return { declare: (route) => void routes.push(route) };
}

/** The app's OpenAPI document (after the first call, also what `app.swagger()` returns). */
export async function openApiDocument(app: FastifyInstance): Promise<ReturnType<FastifyInstance['swagger']>> {
  const load = (app as WithLoader)[LOAD_SPEC];
  if (!load) throw new Error('registerOpenApi(app) was not called');
  await load.call(app);
  return app.swagger();
}

/** `/openapi.json` and `/openapi.yaml`, served from the same generated document. */
export async function openApiRoutes(app: FastifyInstance): Promise<void> {
  app.get('/openapi.json', { schema: { hide: true } }, async () => openApiDocument(app));
  // The document is fixed once the routes are registered; its YAML form is made on first request and kept.
  let yaml: Promise<string> | undefined;
  app.get('/openapi.yaml', { schema: { hide: true } }, async (_req, reply) => reply.type('application/yaml').send(await (yaml ??= openApiYaml(app))));
}

// Plain scalars that YAML 1.1 parsers (PyYAML, ruamel: what openapi-python-client uses) read as something other than
// a string: booleans (y, yes, on, …), null and ~, the `=` value key and `<<` merge key, and anything starting like a
// number, a timestamp, a sexagesimal or .inf/.nan (a leading digit, sign or dot). The `yaml` library writes for 1.2.
const YAML11_WORDS = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~|=|<<)$/;
const YAML11_NUMBER_LIKE = /^[-+.]?[0-9]|^[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)$/;
const readAsNonStringByYaml11 = (s: string) => s === '' || YAML11_WORDS.test(s) || YAML11_NUMBER_LIKE.test(s);

/** `value` as YAML that YAML 1.1 and 1.2 parsers read alike: every string that 1.1 would resolve otherwise is quoted. */
export async function portableYaml(value: unknown): Promise<string> {
  const { Document, visit } = await import('yaml');
  const doc = new Document(value, { aliasDuplicateObjects: false });
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && readAsNonStringByYaml11(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc.toString({ lineWidth: 0 });
}

export async function openApiYaml(app: FastifyInstance): Promise<string> {
  return portableYaml(await openApiDocument(app));
}
