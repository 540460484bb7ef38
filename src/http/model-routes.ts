import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
// CommonJS modules whose exports Node cannot list for ESM: default imports.
import validation from 'fastify/lib/validation.js';
import symbols from 'fastify/lib/symbols.js';
import type { RouteConfig } from './route-config.js';
import { escapeRegex } from '../regex.js';

const { compileSchemasForValidation, validate } = validation;
const { kRouteContext } = symbols;

type Handler = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => unknown;
type Done = (err?: Error) => void;
/** Fastify's validator compiler: one request part's schema → its validator. */
export type PartCompiler = (route: { schema: unknown; method: string; url: string; httpPart: string }) => unknown;

/** A route as a plugin declares it: Fastify's route options, of which these are used. */
export interface DeclaredRoute {
  readonly method: string | string[];
  readonly url: string;
  readonly schema?: { body?: unknown; querystring?: unknown; params?: unknown; headers?: unknown; [key: string]: unknown };
  readonly config?: Record<string, unknown>;
  readonly onRequest?: Handler;
  readonly handler: Handler;
}

interface ModelRoute {
  readonly route: DeclaredRoute;
  /** What `routeConfig` gives hooks and the error handler: the route's config, url and method, as Fastify makes it. */
  readonly config: RouteConfig;
  readonly headConfig: RouteConfig;
  /** Fastify's validation context, made on the route's first request; null when it validates nothing. */
  validation?: { schemaErrorFormatter?: unknown } | null;
}

const PREFIX = '/v1/models/';

/**
 * The routes of every model (`/v1/models/{Model}/…`), served by one Fastify route per path pattern and method instead
 * of one per model: Fastify's per-route work (router nodes, contexts, hooks, schema handling) made boot time and
 * memory grow with the number of models. Plugins declare their routes per model as before, on `sink` (Fastify's
 * route methods); each declaration also goes to `onDeclare` (the OpenAPI document, the 405 table), so both still
 * list every model's paths, in declaration order.
 *
 * A shared route's `:model` parameter only matches the models that declared that pattern (a regex), so an unknown
 * model or a path a model lacks falls through to the router's other routes exactly as before. Per request the model's
 * own route is found by name: its config (what `routeConfig` returns), its `onRequest` hook, its schemas — validated
 * by Fastify's own validation step, compiled on the route's first request — and its handler.
 */
export class ModelRoutes {
  readonly #groups = new Map<string, { method: string; pattern: string; byModel: Map<string, ModelRoute> }>();
  readonly #onDeclare: (route: DeclaredRoute) => void;

  constructor(onDeclare: (route: DeclaredRoute) => void) {
    this.#onDeclare = onDeclare;
  }

  /** Fastify's route methods for the per-model plugins: each route is declared here instead of registered. */
  readonly sink: FastifyInstance = (() => {
    const shorthand = (method: string) => (url: string, options: object | Handler, handler?: Handler) =>
      this.declare({ ...(typeof options === 'function' ? { handler: options } : options), ...(handler ? { handler } : {}), method, url } as DeclaredRoute);
    const methods = { get: 'GET', post: 'POST', put: 'PUT', patch: 'PATCH', delete: 'DELETE' };
    const sink: Record<string, unknown> = { route: (route: DeclaredRoute) => this.declare(route) };
    for (const [name, method] of Object.entries(methods)) sink[name] = shorthand(method);
    return sink as unknown as FastifyInstance;
  })();

  declare(route: DeclaredRoute): void {
    const segments = route.url.split('/');
    if (!route.url.startsWith(PREFIX) || segments.length < 5 || segments[3].includes(':')) throw new Error(`not a per-model route: ${route.url}`);
    const model = segments[3];
    segments[3] = ':model';
    const pattern = segments.join('/');
    const config = { ...route.config, url: route.url, method: route.method } as RouteConfig;
    const own: ModelRoute = { route, config, headConfig: { ...config, method: 'HEAD' } as RouteConfig };
    for (const method of ([] as string[]).concat(route.method)) {
      const key = `${method} ${pattern}`;
      let group = this.#groups.get(key);
      if (!group) this.#groups.set(key, (group = { method, pattern, byModel: new Map() }));
      if (group.byModel.has(model)) throw new Error(`${key} declared twice for ${model}`);
      group.byModel.set(model, own);
    }
    this.#onDeclare(route);
  }

  /** Registers the shared routes on `app`; `compile` builds validators as the app's schema controller does. */
  mount(app: FastifyInstance, compile: PartCompiler): void {
    for (const { method, pattern, byModel } of this.#groups.values()) {
      const models = [...byModel.keys()].map(escapeRegex).join('|');
      const of = (request: FastifyRequest): ModelRoute => byModel.get((request.params as { model: string }).model)!;
      const onRequest = [...byModel.values()].some((m) => m.route.onRequest)
        ? async function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
            await of(request).route.onRequest?.call(this, request, reply);
          }
        : undefined;
      app.route({
        method,
        url: pattern.replace(':model', `:model(^(?:${models})$)`),
        schema: { hide: true },
        config: { perModel: (request: FastifyRequest) => (request.method === 'HEAD' && method !== 'HEAD' ? of(request).headConfig : of(request).config) } as object,
        ...(onRequest ? { onRequest } : {}),
        preValidation: (request, _reply, done) => validateAs(of(request), request, compile, done),
        handler(request, reply) {
          return of(request).route.handler.call(this, request, reply);
        },
      });
    }
  }
}

/** Fastify's validation of the model's own schemas, at the point Fastify validates (after the preValidation hooks). */
function validateAs(own: ModelRoute, request: FastifyRequest, compile: PartCompiler, done: Done): void {
  if (own.validation === undefined) own.validation = validationContext(own.route, compile);
  const context = own.validation;
  if (context === null) return done();
  context.schemaErrorFormatter ??= (request as unknown as Record<symbol, { schemaErrorFormatter: unknown }>)[kRouteContext].schemaErrorFormatter;
  const result = validate(context, request);
  if (result === false) return done();
  if (result instanceof Error) return done(result);
  result.then((error) => done(error || undefined), done);
}

function validationContext(route: DeclaredRoute, compile: PartCompiler): { schemaErrorFormatter?: unknown } | null {
  const { schema } = route;
  if (!schema || (schema.body === undefined && schema.querystring === undefined && schema.params === undefined && schema.headers === undefined)) return null;
  const context: { schema: object; config: object; schemaErrorFormatter?: unknown } = { schema, config: { url: route.url, method: ([] as string[]).concat(route.method)[0] } };
  // isCustom: the app's validators come from its own compiler factory, for which Fastify leaves header names as written.
  compileSchemasForValidation(context, compile, true);
  return context;
}
