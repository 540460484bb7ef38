import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { ModelRegistry } from '../model/index.js';
import { MAX_TRANSACTION_ITEMS } from '../store/transactions.js';
import { StringEnum, problemResponses } from './schemas.js';

export interface TransactionRoutesOptions {
  readonly registry: ModelRegistry;
}

/** `POST /v1/transactions/write` and `/v1/transactions/get`, across models. */
export async function transactionRoutes(app: FastifyInstance, options: TransactionRoutesOptions): Promise<void> {
  const models = options.registry.list().map((m) => m.name);
  const anyObject = Type.Record(Type.String(), Type.Unknown());
  app.post(
    '/v1/transactions/write',
    {
      config: { op: 'transact-write', itemBody: false },
      schema: {
        operationId: 'transactWrite',
        summary: 'All-or-nothing writes across models (409 ErrTransactionCanceled with one reason per item)',
        tags: ['transactions'],
        body: Type.Object(
          {
            items: Type.Array(
              Type.Object(
                {
                  op: StringEnum(['create', 'put', 'update', 'delete', 'check']),
                  model: Type.String({ enum: models }),
                  item: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'create/put: the item' })),
                  key: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'update/delete/check (and optionally put): the key' })),
                  update: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'update: the PATCH body shape' })),
                  version: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'expected current version' })),
                  condition: Type.Optional(Type.Ref('Condition')),
                },
                { additionalProperties: false },
              ),
              { minItems: 1, maxItems: MAX_TRANSACTION_ITEMS },
            ),
            idempotencyKey: Type.Optional(
              Type.String({ minLength: 1, maxLength: 36, description: 'exactly-once: a retry within 24 hours, on any instance, returns the first outcome (with a key, at most 99 items)' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ committed: Type.Integer() }), ...problemResponses },
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
      config: { op: 'transact-get', itemBody: false },
      schema: {
        operationId: 'transactGet',
        summary: 'Read up to 100 items across models as one consistent snapshot',
        tags: ['transactions'],
        body: Type.Object(
          {
            items: Type.Array(
              Type.Object(
                { model: Type.String({ enum: models }), key: anyObject, fields: Type.Optional(Type.Array(Type.String())) },
                { additionalProperties: false },
              ),
              { minItems: 1, maxItems: MAX_TRANSACTION_ITEMS },
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(Type.Union([anyObject, Type.Null()])) }), ...problemResponses },
      },
    },
    async (req) => req.dataAccess.transactions.get((req.body as { items: unknown[] }).items),
  );
}
