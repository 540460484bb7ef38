import { Type, type TSchema } from '@sinclair/typebox';
import { CONDITION_OPERATORS } from '../store/condition.js';

export const ConditionSchema = Type.Recursive(
  (Self) =>
    Type.Union([
      Type.Object({ and: Type.Array(Self, { minItems: 1 }) }, { additionalProperties: false }),
      Type.Object({ or: Type.Array(Self, { minItems: 1 }) }, { additionalProperties: false }),
      Type.Object({ not: Self }, { additionalProperties: false }),
      Type.Object(
        {
          attr: Type.String({ description: 'attribute name or dotted path (a.b[0].c)' }),
          op: Type.String({ description: `one of: ${CONDITION_OPERATORS.join(' ')}` }),
          value: Type.Optional(Type.Unknown()),
          values: Type.Optional(Type.Array(Type.Unknown())),
          size: Type.Optional(Type.Boolean({ description: 'compare size(attr) instead of its value' })),
        },
        { additionalProperties: false },
      ),
    ]),
  { $id: 'Condition', description: 'condition tree: {and:[…]}, {or:[…]}, {not:{…}} or a leaf {attr, op, value?|values?}' },
);

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
  },
  { $id: 'Problem', additionalProperties: true },
);

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

/** Error responses every route documents. */
export const problemResponses = {
  '4xx': { description: 'client error (problem+json)', content: problemContent },
  '5xx': { description: 'server or backend error (problem+json)', content: problemContent },
};

export const sharedSchemas: TSchema[] = [ConditionSchema, ProblemSchema, ModelSummarySchema];

export const BooleanQuery = Type.Union([Type.Literal('true'), Type.Literal('false')]);
