import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox/type';
import { SidecarError } from '../errors.js';
import type { ModelDef, ModelRegistry } from '../model/index.js';
import { keyFromPath, type LogicalItem } from '../codec/item.js';
import type { Expected } from '../store/items.js';
import type { PatchBody } from '../store/patch.js';
import type { DmsAttribute } from '../dms/types.js';
import { BASE64URL_PATTERN, DECIMAL_PATTERN, INTEGER_PATTERN } from '../model/schemas.js';
import { modelExample } from '../model/examples.js';
import { BooleanQuery, problemResponse, problemResponses } from './schemas.js';
import { IF_MATCH_HINT, type RouteErrorContext } from './problem.js';
import { parseJsonBody } from './json-body.js';
import { escapeRegex } from '../regex.js';

export interface ItemRoutesOptions {
  readonly registry: ModelRegistry;
}

type Params = { pk: string; sk?: string };
type Query = { consistent?: string; fields?: string; ifNotExists?: string; ifExists?: string; condition?: string };

/** If-Match: a version ETag only on a model with a version attribute; `*` ("must exist") on every model. */
const ifMatchHeader = (model: ModelDef) =>
  Type.Object({
    'if-match': Type.Optional(
      model.version
        ? Type.String({ pattern: '^\\s*(\\*|(W/)?"?[0-9]{1,15}"?)\\s*$', description: 'expected version as an ETag, e.g. "3", or * for "must exist"' })
        : Type.String({ pattern: '^\\s*\\*\\s*$', description: `* for "must exist" (${model.name} has no version attribute)` }),
    ),
  });

const ifNoneMatchHeader = Type.Object({
  'if-none-match': Type.Optional(
    Type.String({ description: 'ETags already held, e.g. "3" (W/"3" matches too), or *: 304 without a body when one names the current version' }),
  ),
});

const conditionQuery = Type.Optional(
  Type.String({
    contentMediaType: 'application/json',
    description: "condition tree as URL-encoded JSON text: the model's Condition schema, the same shape as the PATCH body `condition`",
  }),
);

/** `?fields=a,b`: the model's attribute names, comma-separated. */
function fieldsQuery(model: ModelDef): TSchema {
  const names = [...model.attributes.keys()].map(escapeRegex).join('|');
  return Type.String({ pattern: `^\\s*(?:${names})\\s*(?:,\\s*(?:${names})\\s*)*$`, description: 'comma-separated attributes to return (keys always included)' });
}

/**
 * `If-Match: "3"`, `3` or `*`. If-Match compares strongly (RFC 9110 §13.1.1): a weak `W/"3"` never matches, so
 * the write is refused with 412 before anything is sent to DynamoDB.
 */
export function parseIfMatch(header: string | undefined): Expected {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '*') return '*';
  const match = /^(W\/)?"?(\d{1,15})"?$/.exec(value);
  if (!match) throw new SidecarError('ErrInvalidRequest', 400, IF_MATCH_HINT);
  if (match[1]) {
    throw new SidecarError(
      'ErrConditionFailed',
      412,
      `If-Match uses strong comparison (RFC 9110), so the weak ETag ${value} never matches; send the version as a strong ETag: If-Match: "${match[2]}"`,
    );
  }
  return Number(match[2]);
}

/**
 * If-None-Match on a read, weak comparison (RFC 9110 §13.1.2): true when `*` is listed and the item exists, or
 * when one listed ETag (`"3"` or `W/"3"`) names its current version. Tags of any other form simply never match.
 */
export function noneMatchHits(header: string | undefined, etag: string | undefined): boolean {
  if (header === undefined) return false;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim() === '*' || (etag !== undefined && opaque(tag) === etag));
}

function parseCondition(raw: string | undefined): unknown {
  if (raw === undefined) return undefined;
  try {
    return parseJsonBody(Buffer.from(raw));
  } catch {
    throw new SidecarError('ErrInvalidRequest', 400, 'query parameter condition must be URL-encoded JSON');
  }
}

function parseFields(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const fields = raw.split(',').map((f) => f.trim()).filter(Boolean);
  return fields.length > 0 ? fields : undefined;
}

/** A key value as the path carries it: the schema refuses what the codec would (ErrMissingPrimaryKey). */
function pathKey(attr: DmsAttribute, example: unknown): TSchema {
  const name = attr.attribute;
  const examples = example === undefined ? {} : { examples: [pathText(attr, example)] };
  if (attr.type === 'N') return Type.String({ pattern: attr.format === 'int' || attr.format === 'unix_seconds' ? INTEGER_PATTERN : DECIMAL_PATTERN, description: `${name} (${attr.format === 'int' || attr.format === 'unix_seconds' ? 'integer in plain digits' : 'decimal number'})`, ...examples });
  if (attr.type === 'B') return Type.String({ minLength: 1, pattern: BASE64URL_PATTERN, description: `${name} (base64url bytes)`, ...examples });
  return Type.String({ minLength: 1, description: `${name} (string, percent-encoded)`, ...examples });
}

/** An example key value written as it goes into a path (B as base64url). */
function pathText(attr: DmsAttribute, value: unknown): string {
  const text = String(value);
  return attr.type === 'B' ? text.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') : text;
}

function keyParams(model: ModelDef): TSchema {
  const example = modelExample(model);
  const props: Record<string, TSchema> = { pk: pathKey(model.partitionKey, example[model.partitionKey.attribute]) };
  if (model.sortKey) props.sk = pathKey(model.sortKey, example[model.sortKey.attribute]);
  return Type.Object(props);
}

/** The key as the path gave it, so a key cut short (an unencoded `#` ends the path) is visible in the 404. */
function describeKey(model: ModelDef, params: Params): string {
  const parts = [`${model.partitionKey.attribute} ${JSON.stringify(params.pk)}`];
  if (model.sortKey && params.sk !== undefined) parts.push(`${model.sortKey.attribute} ${JSON.stringify(params.sk)}`);
  return parts.join(' and ');
}

function etagOf(model: ModelDef, item: LogicalItem): string | undefined {
  const version = model.version ? item[model.version] : undefined;
  return version !== undefined && version !== null ? `"${String(version)}"` : undefined;
}

function withEtag(model: ModelDef, reply: FastifyReply, item: LogicalItem): LogicalItem {
  const etag = etagOf(model, item);
  if (etag) reply.header('etag', etag);
  return item;
}

function registerModel(app: FastifyInstance, model: ModelDef): void {
  const base = `/v1/models/${model.name}/items`;
  const itemPath = model.sortKey ? `${base}/:pk/:sk` : `${base}/:pk`;
  const keys = [...model.keyAttributes];
  const tags = [model.name];
  const config = (op: string, itemBody: boolean): RouteErrorContext => ({ model: model.name, op, keys, itemBody, modelDef: model });
  const itemResponse = (status: number, description: string, problems: Record<string, unknown>) => ({
    [status]: { description, ...Type.Ref(model.name) },
    ...problems,
    ...problemResponses,
  });
  const params = keyParams(model);
  const keyOf = (req: FastifyRequest) => {
    const p = req.params as Params;
    return keyFromPath(model, p.pk, p.sk);
  };

  app.post(
    base,
    {
      config: config('create', true),
      schema: {
        operationId: `create${model.name}`,
        summary: `Create a ${model.name}; 409 ErrConditionFailed (reason item_exists) if the key exists (unless ifNotExists=false)`,
        tags,
        querystring: Type.Object({ ifNotExists: Type.Optional(BooleanQuery), condition: conditionQuery }),
        body: Type.Ref(`${model.name}Create`),
        response: itemResponse(201, `the stored ${model.name}`, { ...problemResponse(409, 'the key exists (unless ifNotExists=false)'), ...problemResponse(412, 'the condition is not met') }),
      },
    },
    async (req, reply) => {
      const q = req.query as Query;
      const condition = parseCondition(q.condition);
      const item =
        q.ifNotExists === 'false'
          ? await req.dataAccess.items.put(model, undefined, req.body, { condition })
          : await req.dataAccess.items.create(model, req.body, { condition });
      return reply.code(201).send(withEtag(model, reply, item));
    },
  );

  app.get(
    itemPath,
    {
      config: config('get', false),
      schema: {
        operationId: `get${model.name}`,
        summary: `Read one ${model.name}`,
        tags,
        params,
        headers: ifNoneMatchHeader,
        querystring: Type.Object({
          consistent: Type.Optional(BooleanQuery),
          fields: Type.Optional(fieldsQuery(model)),
        }),
        response: { ...itemResponse(200, `the ${model.name}`, problemResponse(404, `no such ${model.name}`)), 304: { description: 'If-None-Match named the current version: not modified, no body', type: 'null' } },
      },
    },
    async (req, reply) => {
      const q = req.query as Query;
      const item = await req.dataAccess.items.get(model, keyOf(req), { consistent: q.consistent === 'true', fields: parseFields(q.fields) });
      if (!item) throw new SidecarError('ErrItemNotFound', 404, `${model.name} not found: no item with ${describeKey(model, req.params as Params)}`);
      const etag = etagOf(model, item);
      if (noneMatchHits(req.headers['if-none-match'], etag)) {
        if (etag) reply.header('etag', etag);
        return reply.code(304).send();
      }
      return withEtag(model, reply, item);
    },
  );

  app.put(
    itemPath,
    {
      config: config('put', true),
      schema: {
        operationId: `put${model.name}`,
        summary: `Create or replace a ${model.name} (createdAt is kept, version moves on)`,
        tags,
        params,
        headers: ifMatchHeader(model),
        querystring: Type.Object({ condition: conditionQuery }),
        body: Type.Ref(`${model.name}Put`),
        response: itemResponse(200, `the stored ${model.name}`, problemResponse(412, 'If-Match, the body version or the condition is not met')),
      },
    },
    async (req, reply) => {
      const expected = parseIfMatch(req.headers['if-match']);
      const item = await req.dataAccess.items.put(model, keyOf(req), req.body, {
        expected,
        condition: parseCondition((req.query as Query).condition),
      });
      return withEtag(model, reply, item);
    },
  );

  app.patch(
    itemPath,
    {
      config: config('update', false),
      schema: {
        operationId: `update${model.name}`,
        summary: `Update attributes of an existing ${model.name}`,
        tags,
        params,
        headers: ifMatchHeader(model),
        body: Type.Ref(`${model.name}Patch`),
        response: itemResponse(200, `the updated ${model.name}`, {
          ...problemResponse(404, `no such ${model.name}`),
          ...problemResponse(409, 'ErrStoredTypeMismatch: add/append/prepend met a stored value of another type (e.g. null); set the attribute first'),
          ...problemResponse(412, 'If-Match, the body version or the condition is not met'),
        }),
      },
    },
    async (req, reply) => {
      const body = req.body as PatchBody;
      const item = await req.dataAccess.items.patch(model, keyOf(req), body, {
        expected: parseIfMatch(req.headers['if-match']),
        condition: body.condition,
      });
      return withEtag(model, reply, item);
    },
  );

  app.delete(
    itemPath,
    {
      config: config('delete', false),
      schema: {
        operationId: `delete${model.name}`,
        summary: `Delete a ${model.name}`,
        tags,
        params,
        headers: ifMatchHeader(model),
        querystring: Type.Object({
          ifExists: Type.Optional(BooleanQuery),
          condition: conditionQuery,
        }),
        response: {
          204: { description: 'deleted (or already absent)', type: 'null' },
          ...problemResponse(404, `no such ${model.name} (with ifExists=true)`),
          ...problemResponse(412, 'If-Match or the condition is not met'),
          ...problemResponses,
        },
      },
    },
    async (req, reply) => {
      const q = req.query as Query;
      await req.dataAccess.items.delete(model, keyOf(req), {
        expected: parseIfMatch(req.headers['if-match']),
        ifExists: q.ifExists === 'true',
        condition: parseCondition(q.condition),
      });
      return reply.code(204).send();
    },
  );
}

/**
 * `…/items/{pk}` on a model that also has a sort key. The usual cause is a key with an unencoded `#` (`USER#1`):
 * fetch and curl cut the URL there (the rest is a fragment), so `/items/USER#1/PROFILE` arrives as `/items/USER`.
 * Refused before any body is read, naming the fix.
 */
function registerMissingSortKey(app: FastifyInstance, model: ModelDef): void {
  const sortKey = model.sortKey;
  if (!sortKey) return;
  const pk = model.partitionKey.attribute;
  app.route({
    method: ['GET', 'PUT', 'PATCH', 'DELETE'],
    url: `/v1/models/${model.name}/items/:pk`,
    schema: { hide: true },
    config: { model: model.name, op: 'item' },
    onRequest: async () => {
      throw new SidecarError(
        'ErrMissingPrimaryKey',
        400,
        `${model.name} items are addressed as /v1/models/${model.name}/items/{${pk}}/{${sortKey.attribute}}, and this path has no ${sortKey.attribute} segment. ` +
          'If a key contains "#", percent-encode it as %23 (USER#1 → USER%231): an unencoded # starts the URL fragment, which the client drops with everything after it',
        { attribute: sortKey.attribute },
      );
    },
    handler: async () => undefined,
  });
}

/** CRUD routes per model: /v1/models/{Model}/items[/{pk}[/{sk}]]. */
export async function itemRoutes(app: FastifyInstance, options: ItemRoutesOptions): Promise<void> {
  for (const model of options.registry.list()) {
    registerModel(app, model);
    registerMissingSortKey(app, model);
  }
}
