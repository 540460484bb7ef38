import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifyServerOptions } from 'fastify';

type BuildValidator = NonNullable<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']>;
type Validate = ((data: unknown) => boolean) & { errors?: unknown };

/**
 * Fastify's own Ajv compiler, but each route's validator is compiled on its first request instead of at boot:
 * with one set of routes per model, eager compilation made boot time grow with the number of models. The schemas
 * are TypeBox's, built by this code: Ajv's check of each against the meta-schema is left to the tests
 * (`validateSchema: false` in server.ts).
 */
export function lazyValidators(): BuildValidator {
  const factory = AjvCompiler();
  return (externalSchemas, options) => {
    // The Ajv instance itself waits for the first request too: creating it adds every shared schema (each model's
    // condition trees among them), which cost ~90 ms of a 50-model boot.
    let compile: ReturnType<typeof factory> | undefined;
    return (route) => {
      let compiled: Validate | undefined;
      const validate: Validate = (data) => {
        compile ??= factory(externalSchemas as never, options as never);
        compiled ??= compile(route as never) as unknown as Validate;
        const ok = compiled(data);
        // Fastify reads the errors from the function it was given.
        validate.errors = compiled.errors;
        return ok;
      };
      return validate as never;
    };
  };
}
