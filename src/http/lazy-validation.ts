import type { FastifyServerOptions } from 'fastify';
import type { TSchema } from '@sinclair/typebox/type';
import type { Compile, Validate as OwnValidate } from './items-by-model.js';

type BuildValidator = NonNullable<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']>;
type Validate = ((data: unknown) => boolean) & { errors?: unknown };
type AjvCompiler = typeof import('@fastify/ajv-compiler').AjvCompiler;

/**
 * Validators a route builds itself from Ajv's compile, keyed `METHOD url part` (e.g. `POST /v1/transactions/write
 * body`): the route's schema still documents it. Filled while routes register, read on a route's first request.
 */
export type OwnValidators = Map<string, (compile: Compile) => OwnValidate>;

/** Fastify's `ajv` option: no coercion, defaults or removal (a request is taken as sent); the first error only. */
export const AJV_OPTIONS = {
  customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, validateSchema: false },
} as const;

let ajvCompiler: AjvCompiler | undefined;
let loading: Promise<unknown> | undefined;
const loadAjv = (): Promise<unknown> => (loading ??= import('@fastify/ajv-compiler').then((m) => (ajvCompiler = m.AjvCompiler)));

/** A model's own schemas ($id'd; a route's schemas refer to them by name), by model name. */
export type ModelSchemaSource = (model: string) => readonly TSchema[] | undefined;

const MODEL_URL = /^\/v1\/models\/([^/:]+)\//;

/**
 * Fastify's own Ajv compiler, but each route's validator is compiled on its first request instead of at boot:
 * with one set of routes per model, eager compilation made boot time grow with the number of models. The schemas
 * are TypeBox's, built by this code: Ajv's check of each against the meta-schema is left to the tests
 * (`validateSchema: false` in server.ts). A model's schemas join the Ajv instance when the first validator that
 * may refer to them compiles: a route under `/v1/models/{Model}/`, or a transaction item of that model.
 *
 * One Ajv instance serves every compiler this returns (Fastify asks once per plugin's schema controller, and
 * model-routes.ts once): a model's schemas compile once, whichever route needs them first. It holds the union of the
 * shared schemas the callers pass (all of them added on the root before any plugin, so in practice one set).
 */
export function lazyValidators(own: OwnValidators = new Map(), modelSchemas: ModelSchemaSource = () => undefined): BuildValidator {
  const shared: Record<string, unknown> = {};
  let ajvOptions: object | undefined;
  // Ajv itself (≈90 modules) loads, and its instance is created, on the first request too: creating the instance
  // adds every shared schema, which cost ~90 ms of a 50-model boot when the models' were among them.
  let compile: ReturnType<ReturnType<AjvCompiler>> | undefined;
  let ajv: { addSchema(schema: unknown): unknown } | undefined;
  const added = new Set<string>();
  const withModel = (model: string | undefined) => {
    if (model === undefined || added.has(model)) return;
    added.add(model);
    for (const schema of modelSchemas(model) ?? []) ajv!.addSchema(schema);
  };
  return (externalSchemas, options) => {
    ajvOptions ??= options as object;
    for (const [id, schema] of Object.entries(externalSchemas as Record<string, unknown>)) {
      if (id in shared) continue;
      shared[id] = schema;
      ajv?.addSchema(schema);
    }
    return (route) => {
      let compiled: Validate | undefined;
      const run = (data: unknown): boolean => {
        compile ??= ajvCompiler!()(shared as never, { ...ajvOptions, onCreate: (instance: typeof ajv) => (ajv = instance) } as never);
        if (!compiled) {
          const build = own.get(`${route.method} ${route.url} ${route.httpPart}`);
          const ajvCompile = compile;
          withModel(MODEL_URL.exec(String(route.url))?.[1]);
          compiled = build
            ? (build((schema: TSchema, model?: string) => {
                withModel(model);
                return ajvCompile({ ...route, schema } as never) as unknown as OwnValidate;
              }) as Validate)
            : (ajvCompile(route as never) as unknown as Validate);
        }
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
