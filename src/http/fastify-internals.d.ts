// Fastify's own validation step, used by src/http/model-routes.ts to validate a per-model route served through one
// shared route exactly as Fastify validates a route of its own. The package has no `exports` map, so these resolve.
declare module 'fastify/lib/validation.js' {
  type Compile = (route: { schema: unknown; method: string; url: string; httpPart: string }) => unknown;
  const validation: {
    compileSchemasForValidation(context: object, compile: Compile, isCustom: boolean): void;
    /** false when valid, else the error Fastify sends (`validation`, `validationContext`), or a promise of either. */
    validate(context: object, request: unknown): false | Error | Promise<false | Error>;
  };
  export default validation;
}
declare module 'fastify/lib/symbols.js' {
  const symbols: { kRouteContext: symbol };
  export default symbols;
}
