import { Type, type TSchema } from '@sinclair/typebox/type';

/** A closed set of strings as one `enum` (generators make one type of it, not one per literal). */
export const StringEnum = <T extends string>(values: readonly T[], options: Record<string, unknown> = {}) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'stable error code, e.g. ErrItemNotFound' }),
    instance: Type.Optional(Type.String()),
    requestId: Type.Optional(Type.String()),
    attribute: Type.Optional(Type.String()),
    reason: Type.Optional(Type.String({ description: 'ErrConditionFailed only: item_exists (409), item_missing, version_mismatch or condition_failed (412)' })),
  },
  { $id: 'Problem', additionalProperties: true },
);

/**
 * One attribute value in DynamoDB JSON, as stream records and the low-level API carry it. One named schema per
 * type, like Condition, so generators that cannot follow a recursive inline union see plain models.
 */
const avRef = Type.Ref('AttributeValue');
const avShape = (type: string, value: TSchema) =>
  Type.Object({ [type]: value }, { $id: `AttributeValue${type}`, additionalProperties: false });
const attributeValueShapes: TSchema[] = [
  avShape('S', Type.String()),
  avShape('N', Type.String({ description: 'decimal text, kept exact' })),
  avShape('B', Type.String({ description: 'base64' })),
  avShape('BOOL', Type.Boolean()),
  avShape('NULL', Type.Boolean({ enum: [true] })),
  avShape('SS', Type.Array(Type.String())),
  avShape('NS', Type.Array(Type.String({ description: 'decimal text' }))),
  avShape('BS', Type.Array(Type.String({ description: 'base64' }))),
  avShape('L', Type.Array(avRef)),
  avShape('M', Type.Record(Type.String(), avRef)),
];
export const AttributeValueSchema = Type.Union(
  attributeValueShapes.map((shape) => Type.Ref(shape.$id!)),
  { $id: 'AttributeValue', description: 'DynamoDB JSON: {"S":"x"}, {"N":"12"}, {"B":"<base64>"}, {"SS":[…]}, {"L":[…]}, {"M":{…}}, …' },
);
export const AttributeValueMapSchema = Type.Record(Type.String(), avRef, {
  $id: 'AttributeValueMap',
  description: 'a raw item or key image: attribute name → DynamoDB JSON value',
});

export const ModelSummarySchema = Type.Object(
  {
    name: Type.String(),
    table: Type.String(),
    keys: Type.Object({
      partition: Type.Object({ attribute: Type.String(), type: Type.String() }),
      sort: Type.Optional(Type.Object({ attribute: Type.String(), type: Type.String() })),
    }),
    indexes: Type.Array(
      Type.Object({
        name: Type.String(),
        type: Type.String(),
        partition: Type.Object({ attribute: Type.String(), type: Type.String() }),
        sort: Type.Optional(Type.Object({ attribute: Type.String(), type: Type.String() })),
        projection: Type.Object({ type: Type.String(), fields: Type.Optional(Type.Array(Type.String())) }),
      }),
    ),
    attributes: Type.Array(
      Type.Object({
        attribute: Type.String(),
        type: Type.String(),
        required: Type.Boolean(),
        optional: Type.Boolean(),
        omit_empty: Type.Boolean(),
        roles: Type.Array(Type.String()),
        format: Type.Optional(Type.String()),
        json: Type.Optional(Type.Boolean()),
        binary: Type.Optional(Type.Boolean()),
        encrypted: Type.Boolean(),
      }),
    ),
  },
  { $id: 'ModelSummary' },
);

const problemContent = { 'application/problem+json': { schema: Type.Ref('Problem') } };

/** A status a route answers with problem+json, documented with why. */
export const problemResponse = (status: number, description: string) => ({
  [status]: { description: `${description} (problem+json)`, content: problemContent },
});

/** Error responses every route documents. */
export const problemResponses = {
  '4xx': { description: 'client error (problem+json)', content: problemContent },
  '5xx': { description: 'server or backend error (problem+json)', content: problemContent },
};

/** A JSON object (a map attribute's value as a condition operand). */
export const JsonObjectSchema = Type.Record(Type.String(), Type.Unknown(), { $id: 'JsonObject', description: 'a JSON object' });

export const sharedSchemas: TSchema[] = [
  JsonObjectSchema,
  ProblemSchema,
  ModelSummarySchema,
  ...attributeValueShapes,
  AttributeValueSchema,
  AttributeValueMapSchema,
];

export const BooleanQuery = StringEnum(['true', 'false']);
