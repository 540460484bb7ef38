import type { FastifyServerOptions } from 'fastify';

type BuildValidator = NonNullable<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']>;
type Validate = ((data: unknown) => boolean) & { errors?: unknown };
type AjvCompiler = typeof import('@fastify/ajv-compiler').AjvCompiler;

let ajvCompiler: AjvCompiler | undefined;
let loading: Promise<unknown> | undefined;
const loadAjv = (): Promise<unknown> => (loading ??= import('@fastify/ajv-compiler').then((m) => (ajvCompiler = m.AjvCompiler)));

/**
 * Fastify's own Ajv compiler, but each route's validator is compiled on its first request instead of at boot:
 * with one set of routes per model, eager compilation made boot time grow with the number of models. The schemas
 * are TypeBox's, built by this code: Ajv's check of each against the meta-schema is left to the tests
 * (`validateSchema: false` in server.ts).
 */
export function lazyValidators(): BuildValidator {
  return (externalSchemas, options) => {
    // Ajv itself (≈90 modules) loads, and its instance is created, on the first request too: creating the instance
    // adds every shared schema (each model's condition trees among them), which cost ~90 ms of a 50-model boot.
    let compile: ReturnType<ReturnType<AjvCompiler>> | undefined;
    return (route) => {
      let compiled: Validate | undefined;
      const run = (data: unknown): boolean => {
        compile ??= ajvCompiler!()(externalSchemas as never, options as never);
        compiled ??= compile(route as never) as unknown as Validate;
        const ok = compiled(data);
        // Fastify reads the errors from the function it was given.
        validate.errors = compiled.errors;
        return ok;
      };
      // Until Ajv has loaded, the answer is a promise: Fastify waits for it (as for an `$async` schema).
      const validate: Validate = (data) => (ajvCompiler ? run(data) : (loadAjv().then(() => run(data)) as unknown as boolean));
      return validate as never;
    };
  };
}
