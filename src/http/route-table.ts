import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { FastifyInstance } from 'fastify';

/**
 * Which methods each declared path answers, so a path that exists but not for the method used gets 405 with an
 * `Allow` header (RFC 9110 §15.5.6) instead of a 404 that reads as "no such path". Fastify's own router only says
 * "no route"; this table is filled from `onRoute`, catch-all (`*`) routes left out.
 */
export class RouteTable {
  readonly #router = FindMyWay({ maxParamLength: Number.MAX_SAFE_INTEGER });
  readonly #methods = new Set<HTTPMethod>();

  /** Records every route registered on `app` (and its plugins) from now on. */
  watch(app: FastifyInstance): void {
    app.addHook('onRoute', (route) => {
      if (route.url.includes('*')) return;
      const methods = ([] as string[]).concat(route.method).map((m) => m.toUpperCase() as HTTPMethod);
      if (methods.includes('GET') && !methods.includes('HEAD')) methods.push('HEAD');
      for (const method of methods) {
        // Fastify adds HEAD for every GET itself, so a route can come twice: the first one is enough.
        if (this.#router.hasRoute(method, route.url)) continue;
        this.#router.on(method, route.url, () => undefined);
        this.#methods.add(method);
      }
    });
  }

  /** The methods declared for `path` (no query string), in a stable order. */
  allowed(path: string): string[] {
    return [...this.#methods].filter((method) => this.#router.find(method, path) !== null).sort();
  }
}
