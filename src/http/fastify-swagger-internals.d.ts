// @fastify/swagger's own modules, used to build its document on demand (src/http/openapi.ts). The package has no
// `exports` map, so these paths resolve; they are the ones its `dynamic` mode (lib/mode/dynamic.js) wires together.
declare module '@fastify/swagger/lib/util/add-hook.js' {
  import type { FastifyInstance } from 'fastify';
  export function addHook(app: FastifyInstance, options: object): { routes: unknown[]; Ref: () => unknown };
}
declare module '@fastify/swagger/lib/spec/openapi/index.js' {
  const build: (options: object, cache: { object: unknown; string: unknown }, routes: unknown[], Ref: () => unknown) => (options?: { yaml?: boolean }) => unknown;
  export default build;
}
