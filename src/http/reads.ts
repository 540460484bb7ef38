import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox/type';
import type { DmsAttribute } from '../dms/types.js';
import type { ModelDef, ModelRegistry } from '../model/index.js';
import { keyExample } from '../model/examples.js';
import { valueSchema } from '../model/schemas.js';
import type { LogicalItem } from '../codec/item.js';
import { SORT_OPERATORS, type QueryOptions, type ScanOptions } from '../store/query.js';
import { StringEnum, problemResponses } from './schemas.js';

export interface ReadRoutesOptions {
  readonly registry: ModelRegistry;
}

const NDJSON = 'application/x-ndjson';
/** Members every query and scan body has; `consistent` is per target (a GSI refuses it). */
function commonMembers(model: ModelDef): Record<string, TSchema> {
  const attributes = [...model.attributes.keys()];
  return {
    filter: Type.Optional(Type.Ref(`${model.name}Condition`, { description: `not on the queried table's or index's own keys (use partition and sort)` })),
    fields: Type.Optional(Type.Array(Type.String({ enum: attributes }), { uniqueItems: true, description: 'attributes to return; keys always included' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'items to return (default 100); pages are read until it is reached' })),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 16_384, pattern: '^[A-Za-z0-9_+/-]+={0,2}$', description: 'DynamORM cursor from a previous response (base64url of its JSON; only a cursor this query or scan returned is valid)' }),
    ),
    count: Type.Optional(Type.Boolean({ description: 'count matches (Select COUNT across pages) instead of returning items' })),
    pages: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 1_000_000 }), Type.Literal('all')], { description: 'most DynamoDB pages to read (default 10; "all" for count)' })),
  };
}

const consistentFor = (gsi: boolean) =>
  gsi
    ? Type.Optional(Type.Boolean({ enum: [false], description: 'a global secondary index has no consistent reads' }))
    : Type.Optional(Type.Boolean());

/** A sort-key operand: a prefix or bound, so formats are not enforced; emptiness is (it is a key value). */
function sortOperand(model: ModelDef, attr: DmsAttribute): TSchema {
  if (attr.type === 'S') return Type.String({ minLength: 1 });
  return valueSchema(model, attr);
}

/** A sort-key condition typed by the sort key: `between` takes two values, every other operator one. */
function sortCondition(model: ModelDef, attr: DmsAttribute): TSchema {
  // Operands are prefixes and bounds, not stored values: formats are not enforced, emptiness is (a key value).
  const value = sortOperand(model, attr);
  // begins_with does not apply to a number sort key.
  const single = SORT_OPERATORS.filter((op) => op !== 'between' && !(op === 'begins_with' && attr.type === 'N'));
  return Type.Union(
    [
      Type.Object({ op: StringEnum(single), value }, { additionalProperties: false, allOf: [{ properties: { op: { enum: single } } }] }),
      Type.Object(
        { op: Type.Literal('between'), values: Type.Array(value, { minItems: 2, maxItems: 2, description: '[low, high], low ≤ high' }) },
        { additionalProperties: false, allOf: [{ properties: { op: { const: 'between' } } }] },
      ),
    ],
    { description: `condition on the sort key ${attr.attribute}` },
  );
}

interface QueryTarget {
  readonly index: string | undefined;
  readonly partition: DmsAttribute;
  readonly sort: DmsAttribute | undefined;
  readonly gsi: boolean;
}

function queryTargets(model: ModelDef): QueryTarget[] {
  const attr = (name: string) => model.attributes.get(name)!;
  return [
    { index: undefined, partition: model.partitionKey, sort: model.sortKey, gsi: false },
    ...[...model.indexes.values()].map((i) => ({ index: i.name, partition: attr(i.partition.attribute), sort: i.sort ? attr(i.sort.attribute) : undefined, gsi: i.type === 'GSI' })),
  ];
}

/**
 * One body shape per target (the table, each index), so `partition` and `sort` are typed by that target's keys
 * and a sort condition only exists where there is a sort key. The leading `allOf` tags the branch (the error
 * mapper reads it to tell which target the caller meant).
 */
function queryBody(model: ModelDef): TSchema {
  const branches = queryTargets(model).map((t) =>
    Type.Object(
      {
        ...(t.index ? { index: Type.Literal(t.index) } : {}),
        partition: valueSchema(model, t.partition),
        ...(t.sort ? { sort: Type.Optional(sortCondition(model, t.sort)) } : {}),
        order: Type.Optional(StringEnum(['ASC', 'DESC'])),
        consistent: consistentFor(t.gsi),
        ...commonMembers(model),
      },
      {
        title: t.index ? `on index ${t.index}` : 'on the table',
        additionalProperties: false,
        allOf: [t.index ? { properties: { index: { const: t.index } }, required: ['index'] } : { properties: { index: { not: {} } } }],
      },
    ),
  );
  const example = { partition: keyExample(model)[model.partitionKey.attribute], limit: 10 };
  if (branches.length === 1) return { ...branches[0], examples: [example] };
  return Type.Union(branches, { examples: [example] });
}

function scanBody(model: ModelDef): TSchema {
  const indexes = [...model.indexes.values()];
  const gsis = indexes.filter((i) => i.type === 'GSI').map((i) => i.name);
  return Type.Object(
    {
      ...(indexes.length > 0 ? { index: Type.Optional(Type.String({ enum: indexes.map((i) => i.name) })) } : {}),
      segment: Type.Optional(Type.Integer({ minimum: 0, maximum: 999_999, description: 'this segment of a parallel scan; needs totalSegments, and must be below it' })),
      totalSegments: Type.Optional(
        Type.Integer({
          minimum: 1,
          maximum: 1_000_000,
          description: 'segments of a parallel scan; alone (without segment) only for an NDJSON export (Accept: application/x-ndjson), which reads every segment — a JSON answer needs segment too',
        }),
      ),
      consistent: Type.Optional(Type.Boolean({ description: 'not on a global secondary index' })),
      ...commonMembers(model),
    },
    {
      additionalProperties: false,
      // segment needs totalSegments; totalSegments alone depends on the Accept header (NDJSON export), which a body
      // schema cannot see: said in its description, checked by the store. No consistent read on a GSI.
      allOf: [
        { if: { required: ['segment'] }, then: { required: ['totalSegments'] } },
        ...(gsis.length > 0 ? [{ if: { properties: { index: { enum: gsis } }, required: ['index'] }, then: { properties: { consistent: { const: false } } } }] : []),
      ],
      examples: [{ limit: 10 }],
    },
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
  const config = (op: string) => ({ model: model.name, op, itemBody: false, modelDef: model });
  app.post(
    `/v1/models/${model.name}/query`,
    {
      config: config('query'),
      schema: {
        operationId: `query${model.name}`,
        summary: `Query ${model.name} by partition (table or index); Accept: ${NDJSON} streams every match`,
        tags,
        body: queryBody(model),
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
        body: scanBody(model),
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
