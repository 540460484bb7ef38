import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RouteErrorContext } from './problem.js';

/** A route's config as Fastify keeps it: what the route declared, plus its `url` (undefined: no route matched). */
export type RouteConfig = RouteErrorContext & { readonly url?: string | undefined };

declare module 'fastify' {
  interface FastifyRequest {
    /** The route's config, read once per request (see routeConfig). */
    routeConfigMemo: RouteConfig | null;
  }
}

const NONE: RouteConfig = Object.freeze({});

/** Declares the per-request slot routeConfig() fills (once per app; hooks registered on `app` read it). */
export function useRouteConfig(app: FastifyInstance): void {
  if (!app.hasRequestDecorator('routeConfigMemo')) app.decorateRequest('routeConfigMemo', null);
}

/**
 * `request.routeOptions.config` (which carries `routeOptions.url` as `url`), read once per request: Fastify's
 * `routeOptions` getter builds a new object of a dozen fields on every access, and the hooks of every request
 * (trace, deadline, tenancy, metrics, request log) each need the config.
 */
export function routeConfig(request: FastifyRequest): RouteConfig {
  return (request.routeConfigMemo ??= ownConfig(request));
}

/** A route shared by every model (model-routes.ts) gives the config of the model's own route. */
function ownConfig(request: FastifyRequest): RouteConfig {
  const config = (request.routeOptions.config ?? NONE) as RouteConfig & { perModel?: (request: FastifyRequest) => RouteConfig };
  return config.perModel ? config.perModel(request) : config;
}
