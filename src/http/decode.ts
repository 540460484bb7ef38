import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox/type';
import { SidecarError } from '../errors.js';
import type { ModelDef, ModelRegistry } from '../model/index.js';
import type { AvItem, LogicalItem } from '../codec/item.js';
import { avMapFromJson } from '../store/cursor.js';
import { StringEnum, problemResponses } from './schemas.js';
import { TITLES, type RouteErrorContext } from './problem.js';

export interface DecodeRoutesOptions {
  readonly registry: ModelRegistry;
}

/** Lambda hands a DynamoDB Streams function at most 10,000 records: a whole batch always fits (BODY_LIMIT bounds bytes). */
export const MAX_DECODE_RECORDS = 10_000;

type Image = Record<string, unknown>;
interface StreamRecord {
  eventID?: string;
  eventName?: string;
  dynamodb?: { Keys?: Image; NewImage?: Image; OldImage?: Image };
}
type DecodeBody = { Records: StreamRecord[] } | { items: Image[] } | { item: Image };

const image = Type.Ref('AttributeValueMap');
const problem = Type.Ref('Problem');

const streamRecord = Type.Object(
  {
    eventID: Type.Optional(Type.String()),
    eventName: Type.Optional(StringEnum(['INSERT', 'MODIFY', 'REMOVE'])),
    dynamodb: Type.Object(
      { Keys: Type.Optional(image), NewImage: Type.Optional(image), OldImage: Type.Optional(image) },
      { additionalProperties: true, description: 'StreamRecord: other members (SequenceNumber, SizeBytes, …) are ignored' },
    ),
  },
  { additionalProperties: true, description: 'one record of a Lambda DynamoDB Streams event; other members are ignored' },
);

const body = Type.Union(
  [
    Type.Object(
      { Records: Type.Array(streamRecord, { maxItems: MAX_DECODE_RECORDS }) },
      { title: 'a Lambda DynamoDB Streams event', additionalProperties: true },
    ),
    Type.Object(
      { items: Type.Array(image, { minItems: 1, maxItems: MAX_DECODE_RECORDS }) },
      { title: 'raw items', additionalProperties: false },
    ),
    Type.Object({ item: image }, { title: 'one raw item', additionalProperties: false }),
  ],
  {
    examples: [
      {
        Records: [
          { eventID: '1', eventName: 'REMOVE', dynamodb: { Keys: { PK: { S: 'USER#1' }, SK: { S: 'PROFILE' } }, OldImage: { PK: { S: 'USER#1' }, SK: { S: 'PROFILE' } } } },
        ],
      },
    ],
  },
);

function response(model: ModelDef) {
  const item = Type.Ref(model.name);
  const record = Type.Object({
    eventID: Type.Optional(Type.String()),
    eventName: Type.Optional(Type.String()),
    keys: Type.Optional(Type.Ref(`${model.name}Key`)),
    old: Type.Optional(item),
    new: Type.Optional(item),
    problem: Type.Optional({ ...problem, description: 'this record could not be decoded: keys, old and new are left out' }),
  });
  const entry = Type.Object({
    item: Type.Optional(item),
    problem: Type.Optional({ ...problem, description: 'this item could not be decoded' }),
  });
  return {
    200: Type.Union(
      [
        Type.Object({ records: Type.Array(record) }, { title: 'for a stream event: one entry per record, in order' }),
        Type.Object({ items: Type.Array(entry) }, { title: 'for raw items: one entry per item, in order' }),
        Type.Object({ item }, { title: 'for one raw item' }),
      ],
      { description: `logical ${model.name} items, as GET returns them` },
    ),
    ...problemResponses,
  };
}

/**
 * Errors about one record (its image does not fit the model, its envelope does not open) are that record's
 * problem; anything else (no key provider, KMS unreachable) fails the request, so a Lambda retries the batch.
 */
function recordError(err: unknown): SidecarError {
  if (!(err instanceof SidecarError)) throw err;
  // A caller-supplied envelope that does not open is unprocessable input here, not a fault of the sidecar's store.
  if (err.code === 'ErrInvalidEncryptedEnvelope') return new SidecarError(err.code, 422, err.detail, err.extra);
  if (err.status >= 500) throw err;
  return err;
}

function problemObject(error: SidecarError): Record<string, unknown> {
  const { retryAfter: _omit, ...extra } = error.extra ?? {};
  return {
    type: `urn:dynamorm-sidecar:error:${error.code}`,
    title: TITLES[error.code],
    status: error.status,
    detail: error.detail,
    code: error.code,
    ...extra,
  };
}

const badWire = (what: string) => (detail: string) => new SidecarError('ErrInvalidItem', 400, `${what}: ${detail}`);

function keysOf(model: ModelDef, item: LogicalItem): LogicalItem {
  const out: LogicalItem = {};
  for (const name of model.keyAttributes) if (item[name] !== undefined) out[name] = item[name];
  return out;
}

async function decodeOne(req: FastifyRequest, model: ModelDef, raw: Image, what: string): Promise<LogicalItem> {
  const av: AvItem = avMapFromJson(raw, badWire(what), what, `${what} must be an object`);
  return req.dataAccess.items.decodeImage(model, av, what);
}

async function decodeRecord(req: FastifyRequest, model: ModelDef, record: StreamRecord, i: number): Promise<Record<string, unknown>> {
  const head = {
    ...(record.eventID !== undefined ? { eventID: record.eventID } : {}),
    ...(record.eventName !== undefined ? { eventName: record.eventName } : {}),
  };
  const images = record.dynamodb ?? {};
  try {
    const old = images.OldImage ? await decodeOne(req, model, images.OldImage, `Records[${i}].dynamodb.OldImage`) : undefined;
    const fresh = images.NewImage ? await decodeOne(req, model, images.NewImage, `Records[${i}].dynamodb.NewImage`) : undefined;
    const fromImage = fresh ?? old;
    const keys = images.Keys
      ? keysOf(model, await decodeOne(req, model, images.Keys, `Records[${i}].dynamodb.Keys`))
      : fromImage && keysOf(model, fromImage);
    if (!keys) throw new SidecarError('ErrMissingPrimaryKey', 400, `Records[${i}].dynamodb has no Keys, NewImage or OldImage`);
    return { ...head, keys, ...(old ? { old } : {}), ...(fresh ? { new: fresh } : {}) };
  } catch (err) {
    return { ...head, problem: problemObject(recordError(err)) };
  }
}

function registerModel(app: FastifyInstance, model: ModelDef): void {
  const config: RouteErrorContext = { model: model.name, op: 'decode', itemBody: false };
  app.post(
    `/v1/models/${model.name}/decode`,
    {
      config,
      schema: {
        operationId: `decode${model.name}`,
        summary: `Decode raw ${model.name} images (a Lambda DynamoDB Streams event, raw items, or one item) as GET returns them; envelopes are decrypted`,
        description:
          `Images are raw DynamoDB AttributeValue maps, which this document does not type per model: one that is not a ${model.name} ` +
          '(a missing key, an attribute of another type, a broken envelope) gets a per-record `problem` in an event or a list, and a 400 ' +
          'when it is the single `item`.',
        tags: [model.name],
        body,
        response: response(model),
      },
    },
    async (req) => {
      const b = req.body as DecodeBody;
      if ('Records' in b) {
        const records = [];
        // In order, one at a time: the data-key cache makes later records of a batch cheap.
        for (const [i, record] of b.Records.entries()) records.push(await decodeRecord(req, model, record, i));
        return { records };
      }
      if ('items' in b) {
        const items = [];
        for (const [i, raw] of b.items.entries()) {
          try {
            items.push({ item: await decodeOne(req, model, raw, `items[${i}]`) });
          } catch (err) {
            items.push({ problem: problemObject(recordError(err)) });
          }
        }
        return { items };
      }
      try {
        return { item: await decodeOne(req, model, b.item, 'item') };
      } catch (err) {
        throw recordError(err);
      }
    },
  );
}

/** `POST /v1/models/{Model}/decode`: stream records and raw items → logical items. */
export async function decodeRoutes(app: FastifyInstance, options: DecodeRoutesOptions): Promise<void> {
  for (const model of options.registry.list()) registerModel(app, model);
}
