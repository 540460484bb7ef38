import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifyServerOptions } from 'fastify';

type BuildValidator = NonNullable<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']>;
type Validate = ((data: unknown) => boolean) & { errors?: unknown };

/**
 * Fastify's own Ajv compiler, but each route's validator is compiled on its first request instead of at boot:
 * with one set of routes per model, eager compilation made boot time grow with the number of models.
 */
export function lazyValidators(): BuildValidator {
  const factory = AjvCompiler();
  return (externalSchemas, options) => {
    const compile = factory(externalSchemas as never, options as never);
    return (route) => {
      let compiled: Validate | undefined;
      const validate: Validate = (data) => {
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
