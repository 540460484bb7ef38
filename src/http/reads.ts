import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox';
import type { ModelDef, ModelRegistry } from '../model/index.js';
import type { LogicalItem } from '../codec/item.js';
import { SORT_OPERATORS, type QueryOptions, type ScanOptions } from '../store/query.js';
import { StringEnum, problemResponses } from './schemas.js';

export interface ReadRoutesOptions {
  readonly registry: ModelRegistry;
}

const NDJSON = 'application/x-ndjson';
const keyValue = Type.Union([Type.String(), Type.Number()]);

function readBody(model: ModelDef, extra: Record<string, TSchema>): TSchema {
  const attributes = [...model.attributes.keys()];
  const indexes = [...model.indexes.keys()];
  return Type.Object(
    {
      ...(indexes.length > 0 ? { index: Type.Optional(Type.String({ enum: indexes })) } : {}),
      ...extra,
      filter: Type.Optional(Type.Ref('Condition')),
      fields: Type.Optional(Type.Array(Type.String({ enum: attributes }), { uniqueItems: true, description: 'attributes to return; keys always included' })),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'items to return (default 100); pages are read until it is reached' })),
      cursor: Type.Optional(Type.String({ description: 'DynamORM cursor from a previous response' })),
      consistent: Type.Optional(Type.Boolean()),
      count: Type.Optional(Type.Boolean({ description: 'count matches (Select COUNT across pages) instead of returning items' })),
      pages: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 1_000_000 }), Type.Literal('all')], { description: 'most DynamoDB pages to read (default 10; "all" for count)' })),
    },
    { additionalProperties: false },
  );
}

function pageResponse(model: ModelDef) {
  return {
    200: Type.Object({
      items: Type.Array(Type.Ref(model.name)),
      cursor: Type.Optional(Type.String()),
      count: Type.Integer(),
      scannedCount: Type.Integer(),
    }),
    ...problemResponses,
  };
}

const wantsNdjson = (req: FastifyRequest) => (req.headers.accept ?? '').includes(NDJSON);

/**
 * Streams items as NDJSON. The first item is awaited before the status line goes out, so a bad request
 * or an unreachable backend still gets a problem+json answer; later failures end the stream abruptly.
 */
async function sendNdjson(reply: FastifyReply, items: AsyncIterable<LogicalItem>): Promise<FastifyReply> {
  const iterator = items[Symbol.asyncIterator]();
  const first = await iterator.next();
  async function* lines() {
    if (first.done) return;
    yield `${JSON.stringify(first.value)}\n`;
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) yield `${JSON.stringify(r.value)}\n`;
  }
  return reply.type(NDJSON).send(Readable.from(lines(), { objectMode: false, highWaterMark: 16 }));
}

function registerModel(app: FastifyInstance, model: ModelDef): void {
  const tags = [model.name];
  const config = (op: string) => ({ model: model.name, op, itemBody: false });
  app.post(
    `/v1/models/${model.name}/query`,
    {
      config: config('query'),
      schema: {
        operationId: `query${model.name}`,
        summary: `Query ${model.name} by partition (table or index); Accept: ${NDJSON} streams every match`,
        tags,
        body: readBody(model, {
          partition: keyValue,
          sort: Type.Optional(
            Type.Object(
              {
                op: StringEnum(SORT_OPERATORS, { description: 'sort key comparison' }),
                value: Type.Optional(keyValue),
                values: Type.Optional(Type.Array(keyValue, { minItems: 2, maxItems: 2 })),
              },
              { additionalProperties: false },
            ),
          ),
          order: Type.Optional(StringEnum(['ASC', 'DESC'])),
        }),
        response: pageResponse(model),
      },
    },
    async (req, reply) => {
      const body = req.body as QueryOptions;
      if (wantsNdjson(req)) return sendNdjson(reply, req.dataAccess.reads.queryStream(model, body));
      return req.dataAccess.reads.query(model, body);
    },
  );
  app.post(
    `/v1/models/${model.name}/scan`,
    {
      config: config('scan'),
      schema: {
        operationId: `scan${model.name}`,
        summary: `Scan ${model.name} (parallel segments); Accept: ${NDJSON} streams every item`,
        tags,
        body: readBody(model, {
          segment: Type.Optional(Type.Integer({ minimum: 0, maximum: 999_999 })),
          totalSegments: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
        }),
        response: pageResponse(model),
      },
    },
    async (req, reply) => {
      const body = req.body as ScanOptions;
      if (wantsNdjson(req)) return sendNdjson(reply, req.dataAccess.reads.scanStream(model, body));
      return req.dataAccess.reads.scan(model, body);
    },
  );
}

/** `POST /v1/models/{Model}/query` and `/scan`. */
export async function readRoutes(app: FastifyInstance, options: ReadRoutesOptions): Promise<void> {
  for (const model of options.registry.list()) registerModel(app, model);
}
