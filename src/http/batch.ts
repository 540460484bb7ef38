import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox/type';
import type { ModelDef, ModelRegistry } from '../model/index.js';
import { keyExample, modelExample } from '../model/examples.js';
import { problemResponses } from './schemas.js';
import { batchGetOutcome, batchWriteOutcome } from './deadline.js';

export interface BatchRoutesOptions {
  readonly registry: ModelRegistry;
  readonly maxItems: number;
}

function registerModel(app: FastifyInstance, model: ModelDef, maxItems: number): void {
  const tags = [model.name];
  const keys = [...model.keyAttributes];
  const key = Type.Ref(`${model.name}Key`);
  const complete = Type.Boolean({ description: 'false when some entries were still unprocessed at the retry deadline' });
  app.post(
    `/v1/models/${model.name}/batch-get`,
    {
      config: { model: model.name, op: 'batch-get', itemBody: false, keys, modelDef: model },
      schema: {
        operationId: `batchGet${model.name}`,
        summary: `Read up to ${maxItems} ${model.name} items by key (chunks of 100, unprocessed keys retried)`,
        tags,
        body: Type.Object(
          {
            keys: Type.Array(key, { minItems: 1, maxItems: maxItems, uniqueItems: true, description: 'distinct keys' }),
            fields: Type.Optional(Type.Array(Type.String({ enum: [...model.attributes.keys()] }), { uniqueItems: true })),
            consistent: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false, examples: [{ keys: [keyExample(model)] }] },
        ),
        response: {
          200: Type.Object({ items: Type.Array(Type.Ref(model.name)), unprocessedKeys: Type.Array(key), complete }),
          ...problemResponses,
        },
      },
    },
    async (req) => {
      const body = req.body as { keys: unknown[]; fields?: string[]; consistent?: boolean };
      return batchGetOutcome(model, body.keys as Record<string, unknown>[], await req.dataAccess.batch.get(model, body.keys, { fields: body.fields, consistent: body.consistent }));
    },
  );
  app.post(
    `/v1/models/${model.name}/batch-write`,
    {
      config: { model: model.name, op: 'batch-write', itemBody: true, keys, modelDef: model },
      schema: {
        operationId: `batchWrite${model.name}`,
        summary: `Put and delete up to ${maxItems} ${model.name} items (chunks of 25, unprocessed items retried)`,
        tags,
        body: Type.Object(
          {
            puts: Type.Optional(Type.Array(Type.Ref(`${model.name}BatchPut`), { maxItems: maxItems })),
            deletes: Type.Optional(Type.Array(key, { maxItems: maxItems, uniqueItems: true })),
          },
          {
            additionalProperties: false,
            // At least one entry, said as a `not` (an anyOf would make generated clients require both members).
            not: { type: 'object', properties: { puts: { type: 'array', maxItems: 0 }, deletes: { type: 'array', maxItems: 0 } } },
            // puts + deletes together stay within the limit: with both, each takes at most half.
            if: { required: ['puts', 'deletes'] },
            then: { properties: { puts: { type: 'array', maxItems: Math.floor(maxItems / 2) }, deletes: { type: 'array', maxItems: Math.floor(maxItems / 2) } } },
            examples: [{ puts: [modelExample(model)] }],
          },
        ),
        response: {
          200: Type.Object({
            unprocessed: Type.Object({ puts: Type.Array(Type.Ref(model.name)), deletes: Type.Array(key) }),
            complete,
          }),
          ...problemResponses,
        },
      },
    },
    async (req) => {
      const body = req.body as { puts?: unknown[]; deletes?: unknown[] };
      return batchWriteOutcome(model, body as { puts?: Record<string, unknown>[]; deletes?: Record<string, unknown>[] }, await req.dataAccess.batch.write(model, body.puts, body.deletes));
    },
  );
}

/** `POST /v1/models/{Model}/batch-get` and `/batch-write`. */
export async function batchRoutes(app: FastifyInstance, options: BatchRoutesOptions): Promise<void> {
  for (const model of options.registry.list()) registerModel(app, model, options.maxItems);
}
