import type { FastifyInstance } from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox/type';
import type { ModelDef, ModelRegistry } from '../model/index.js';
import { keyExample, modelExample } from '../model/examples.js';
import { MAX_TRANSACTION_ITEMS } from '../store/transactions.js';
import { problemResponse, problemResponses } from './schemas.js';
import { itemsByModel, wholeUnion, type ItemsUnion } from './items-by-model.js';
import type { OwnValidators } from './lazy-validation.js';

export interface TransactionRoutesOptions {
  readonly registry: ModelRegistry;
  /** Where the routes leave their body validators (one model's branches compiled at a time). */
  readonly validators: OwnValidators;
}

const versionSchema = Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'expected current version' }));

/** A branch for one model (and op): the leading `allOf` tags it, so the error mapper can tell which one was meant. */
function tagged(tags: Record<string, string>, members: Record<string, TSchema>, title: string): TSchema {
  const properties = Object.fromEntries(Object.entries(tags).map(([k, v]) => [k, { const: v }]));
  return Type.Object(
    { ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [k, Type.Literal(v)])), ...members },
    { title, additionalProperties: false, allOf: [{ properties, required: Object.keys(tags) }] },
  );
}

/** What each op of a transaction takes, typed by the model: `put` needs `item`, `check` a `condition`, … */
function writeItems(model: ModelDef): TSchema[] {
  const name = model.name;
  const key = Type.Ref(`${name}Key`);
  const condition = Type.Optional(Type.Ref(`${name}Condition`));
  // An expected version only exists on models with a version attribute.
  const version: Record<string, TSchema> = model.version ? { version: versionSchema } : {};
  const branch = (op: string, members: Record<string, TSchema>) => tagged({ model: name, op }, members, `${op} ${name}`);
  return [
    branch('create', { item: Type.Ref(`${name}Create`), condition }),
    branch('put', { item: Type.Ref(`${name}Create`), key: Type.Optional(key), ...version, condition }),
    branch('update', { key, update: Type.Ref(`${name}Patch`), ...version, condition }),
    branch('delete', { key, ...version, condition }),
    // A check needs a condition, an expected version, or both: two shapes rather than an object-level anyOf,
    // which generators turn into an untyped value.
    branch('check', { key, ...version, condition: Type.Ref(`${name}Condition`) }),
    ...(model.version
      ? [tagged({ model: name, op: 'check' }, { key, version: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'expected current version' }) }, `check ${name} version`)]
      : []),
  ];
}

function getItem(model: ModelDef): TSchema {
  return tagged(
    { model: model.name },
    { key: Type.Ref(`${model.name}Key`), fields: Type.Optional(Type.Array(Type.String({ enum: [...model.attributes.keys()] }), { uniqueItems: true })) },
    `read ${model.name}`,
  );
}

/** The two transaction bodies: each a union of items across models, tagged by model (and op). */
export function transactionBodies(models: readonly ModelDef[]): { write: ItemsUnion; get: ItemsUnion } {
  const first = models[0];
  const writeExample = first ? [{ items: [{ op: 'put', model: first.name, item: modelExample(first) }] }] : [];
  const getExample = first ? [{ items: [{ model: first.name, key: keyExample(first) }] }] : [];
  const write: ItemsUnion = {
    body: (union) =>
      Type.Object(
        {
          items: Type.Array(union, { minItems: 1, maxItems: MAX_TRANSACTION_ITEMS, description: 'one write per item: op create|put|update|delete|check on a model; at most one per key' }),
          idempotencyKey: Type.Optional(
            Type.String({ minLength: 1, maxLength: 36, pattern: '^[!-~]{1,36}$', description: 'printable ASCII, no spaces (DynamoDB ClientRequestToken); exactly-once: a retry within 24 hours, on any instance, returns the first outcome (with a key, at most 99 items)' }),
          ),
        },
        { additionalProperties: false, examples: writeExample },
      ),
    branches: models.map((m) => [m.name, writeItems(m)] as const),
  };
  const get: ItemsUnion = {
    body: (union) => Type.Object({ items: Type.Array(union, { minItems: 1, maxItems: MAX_TRANSACTION_ITEMS }) }, { additionalProperties: false, examples: getExample }),
    branches: models.map((m) => [m.name, [getItem(m)]] as const),
  };
  return { write, get };
}

/** `POST /v1/transactions/write` and `/v1/transactions/get`, across models. */
export async function transactionRoutes(app: FastifyInstance, options: TransactionRoutesOptions): Promise<void> {
  const models = options.registry.list();
  const byName = new Map(models.map((m) => [m.name, m] as const));
  const anyObject = Type.Record(Type.String(), Type.Unknown());
  const { write: writeBody, get: getBody } = transactionBodies(models);
  if (models.length > 0) {
    options.validators.set('POST /v1/transactions/write body', (compile) => itemsByModel(writeBody, compile));
    options.validators.set('POST /v1/transactions/get body', (compile) => itemsByModel(getBody, compile));
  }
  app.post(
    '/v1/transactions/write',
    {
      config: { op: 'transact-write', itemBody: false, models: byName },
      schema: {
        operationId: 'transactWrite',
        summary: 'All-or-nothing writes across models (409 ErrTransactionCanceled with one reason per item)',
        tags: ['transactions'],
        body: wholeUnion(writeBody),
        response: {
          200: Type.Object({ committed: Type.Integer() }),
          ...problemResponse(409, 'the transaction was canceled (reasons, one per item), or the idempotency key was used for another transaction'),
          ...problemResponses,
        },
      },
    },
    async (req) => {
      const body = req.body as { items: unknown[]; idempotencyKey?: string };
      return req.dataAccess.transactions.write(body.items, body.idempotencyKey);
    },
  );
  app.post(
    '/v1/transactions/get',
    {
      config: { op: 'transact-get', itemBody: false, models: byName },
      schema: {
        operationId: 'transactGet',
        summary: 'Read up to 100 items across models as one consistent snapshot',
        tags: ['transactions'],
        body: wholeUnion(getBody),
        response: {
          200: Type.Object({ items: Type.Array(Type.Union([anyObject, Type.Null()])) }),
          ...problemResponse(409, 'the read transaction was canceled'),
          ...problemResponses,
        },
      },
    },
    async (req) => req.dataAccess.transactions.get((req.body as { items: unknown[] }).items),
  );
}
