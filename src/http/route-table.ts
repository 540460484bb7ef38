import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { FastifyInstance } from 'fastify';

/**
 * Which methods each declared path answers, so a path that exists but not for the method used gets 405 with an
 * `Allow` header (RFC 9110 §15.5.6) instead of a 404 that reads as "no such path". Fastify's own router only says
 * "no route"; this table is filled from `onRoute`, catch-all (`*`) routes left out. Routes are only listed at boot:
 * the router is built on the first unmatched request (a second router over hundreds of routes cost ~40 ms of boot).
 */
export class RouteTable {
  readonly #declared: [method: HTTPMethod, url: string][] = [];
  #router: ReturnType<typeof FindMyWay> | undefined;
  readonly #methods = new Set<HTTPMethod>();

  /** Records every route registered on `app` (and its plugins) from now on. */
  watch(app: FastifyInstance): void {
    app.addHook('onRoute', (route) => {
      // A route shared by every model (`:model(…)`) is listed through its models' own routes (declare).
      if (route.url.includes('*') || route.url.includes(':model(')) return;
      this.declare(route.method, route.url);
    });
  }

  /** Records a route served under another path pattern (model-routes.ts). */
  declare(methods: string | string[], url: string): void {
    for (const method of ([] as string[]).concat(methods)) this.#declared.push([method.toUpperCase() as HTTPMethod, url]);
    this.#router = undefined;
  }

  /** The methods declared for `path` (no query string), in a stable order. */
  allowed(path: string): string[] {
    const router = (this.#router ??= this.#build());
    return [...this.#methods].filter((method) => router.find(method, path) !== null).sort();
  }

  #build(): ReturnType<typeof FindMyWay> {
    const router = FindMyWay({ maxParamLength: Number.MAX_SAFE_INTEGER });
    const add = (method: HTTPMethod, url: string): void => {
      // Fastify adds HEAD for every GET itself, so a route can come twice: the first one is enough.
      if (router.hasRoute(method, url)) return;
      router.on(method, url, () => undefined);
      this.#methods.add(method);
    };
    for (const [method, url] of this.#declared) {
      add(method, url);
      if (method === 'GET') add('HEAD', url);
    }
    return router;
  }
}
