import { Type, type TSchema, type TObject } from '@sinclair/typebox/type';
import type { DmsAttribute } from '../dms/types.js';
import type { ModelDef } from './registry.js';
import { modelExample, patchExample } from './examples.js';
import { conditionSchemas } from './condition-schemas.js';

/** Integers DynamoDB stores: at most 38 significant digits, below 1E+126. */
export const INTEGER_PATTERN = '^-?(0|[1-9][0-9]{0,37}0{0,88})$';
/** Epoch seconds as a string of digits: 15 at most, so that the number read back is exact (below 2^53). */
const EPOCH_SECONDS_PATTERN = '^-?(0|[1-9][0-9]{0,14})$';
/** Decimals DynamoDB stores (≤ 38 significant digits, magnitude 1E-130 to 1E+126), in the forms the API reads. */
export const DECIMAL_PATTERN = [
  INTEGER_PATTERN,
  '^-?[1-9][0-9]{0,18}\\.[0-9]{1,19}$',
  '^-?[1-9][0-9]{19,27}\\.[0-9]{1,10}$',
  '^-?[1-9][0-9]{28,36}\\.[0-9]$',
  '^-?0\\.0{0,90}[0-9]{1,38}$',
  '^-?[1-9](\\.[0-9]{1,37})?[eE][-+]?[0-9]{1,2}$',
].join('|');
const BASE64_TAIL = (a: string) => `(?:[${a}]{4})*(?:[${a}][AQgw](?:==)?|[${a}]{2}[AEIMQUYcgkosw048]=?)?`;
/** Base64url (what a B key in a path is): padding optional, unused bits zero. */
export const BASE64URL_PATTERN = `^${BASE64_TAIL('A-Za-z0-9_-')}$`;
/** Base64 in either alphabet (not mixed), padding optional, unused bits zero: what the codec accepts. */
export const BASE64_PATTERN = `^${BASE64_TAIL('A-Za-z0-9+/')}$|${BASE64URL_PATTERN}`;
/** RFC 3339 timestamps the codec reads (0–9 fractional digits, Z or an offset; February 29 left out). */
export const RFC3339_PATTERN =
  '^[0-9]{4}-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)[Tt]' +
  '([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$';
/**
 * DynamoDB's largest magnitude, as the largest double below 1E+126 (9.999999999999999e125 is 1e126 itself as a
 * double, and its JSON text "1e+126" is read exactly: out of range).
 */
export const MAX_JSON_NUMBER = 9.999999999999998e125;
/**
 * Bound of JSON integers: every integer below it has at most 38 digits, so a generator's exact big integer is never
 * refused for precision. Larger integers go as decimal strings (or in exponent form).
 */
export const MAX_JSON_INTEGER = 1e38;
/** DynamoDB's smallest non-zero magnitude: a number closer to zero underflows and is refused. */
export const MIN_JSON_MAGNITUDE = 1e-130;
/** Deepest condition tree (and/or/not nesting) the API takes: dynalite's expression parser is exponential in depth. */
export const MAX_CONDITION_DEPTH = 5;

/** A JSON number DynamoDB can store: 0, or a magnitude from 1E-130 to just below 1E+126. */
export const boundedNumber = (description?: string): TSchema =>
  Type.Union(
    [
      Type.Literal(0),
      Type.Number({ minimum: MIN_JSON_MAGNITUDE, maximum: MAX_JSON_NUMBER }),
      Type.Number({ minimum: -MAX_JSON_NUMBER, maximum: -MIN_JSON_MAGNITUDE }),
    ],
    description ? { description } : {},
  );

export interface ModelSchemas {
  /** An item as returned by the sidecar. */
  readonly item: TObject;
  /** Body of create (POST). */
  readonly create: TObject;
  /** Body of put/replace (PUT): keys may come from the path. */
  readonly put: TObject;
  /** Body of update (PATCH). */
  readonly patch: TObject;
  /** A key as a JSON object (batch, transactions). */
  readonly key: TObject;
  /** Body of one batch-write put: like create, without an expected version (a batch put cannot check one). */
  readonly batchPut: TObject;
  /** Condition trees typed by this model's unencrypted attributes (see conditionSchemas). */
  readonly condition: TSchema;
  readonly conditionAnd: TSchema;
  readonly conditionOr: TSchema;
  readonly conditionNot: TSchema;
  readonly conditionLeaf: TSchema;
}

type SchemaSource = Omit<ModelDef, 'schemas'>;

const numberSchema = (integer: boolean): TSchema =>
  Type.Union([
    ...(integer ? [Type.Integer({ minimum: -MAX_JSON_INTEGER, maximum: MAX_JSON_INTEGER })] : (boundedNumber() as unknown as { anyOf: TSchema[] }).anyOf),
    Type.String({ pattern: integer ? INTEGER_PATTERN : DECIMAL_PATTERN, description: 'decimal string for values a double cannot hold exactly' }),
  ]);

const base64 = (options: Record<string, unknown> = {}) => Type.String({ contentEncoding: 'base64', pattern: BASE64_PATTERN, ...options });

/** Table and index key values DynamoDB refuses when empty. */
const isAnyKey = (model: SchemaSource, name: string) => isKey(model, name) || model.indexKeyRoles.has(name);

/**
 * The JSON schema of one attribute's value; exported for the query routes' partition and sort values. Map, list and
 * json values stay untyped: a recursive JsonValue (bounded numbers) broke openapi-python-client ("Invalid property in
 * union") and openapi-fetch's body types, so the fuzz drill's hooks keep nested numbers in DynamoDB's range.
 */
export function valueSchema(model: SchemaSource, attr: DmsAttribute): TSchema {
  const anyJson = Type.Unknown();
  // What JSON Schema here cannot state, said in words so that a generated client's user reads it.
  const nestedRule = 'numbers anywhere inside must fit DynamoDB (magnitude 1E-130 to below 1E+126, at most 38 significant digits); at most 32 levels deep';
  const description = attr.encryption ? 'encrypted at rest' : undefined;
  const nonEmpty = isAnyKey(model, attr.attribute) ? { minLength: 1 } : {};
  if (attr.attribute === model.ttl) {
    // A JSON integer past 2^53 reaches the codec as an exact big number, which epoch seconds do not take: digits go as a string.
    return Type.Union([Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }), Type.String({ pattern: `${RFC3339_PATTERN}|${EPOCH_SECONDS_PATTERN}` })], {
      description: 'epoch seconds (a number or a string of digits), or an RFC3339 timestamp',
    });
  }
  switch (attr.type) {
    case 'S':
      if (attr.json) return Type.Unknown({ description: `any JSON value, stored as its JSON text; ${nestedRule}` });
      return attr.format === 'rfc3339nano'
        ? Type.String({ pattern: RFC3339_PATTERN, description: 'RFC3339 timestamp' })
        : Type.String({ ...nonEmpty, ...(description ? { description } : {}) });
    case 'N':
      return numberSchema(attr.format === 'int' || attr.format === 'unix_seconds');
    case 'B':
      return base64({ ...nonEmpty, description: 'base64 (standard or URL-safe alphabet)' });
    case 'BOOL':
      return Type.Boolean();
    case 'NULL':
      return Type.Null();
    case 'M':
      return Type.Record(Type.String(), anyJson, { description: `a JSON object; ${nestedRule}` });
    case 'L':
      return Type.Array(anyJson, { description: `a JSON array; ${nestedRule}` });
    case 'SS':
      return Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true });
    case 'NS':
      return Type.Array(numberSchema(false), { uniqueItems: true });
    case 'BS':
      return Type.Array(base64({ minLength: 1 }), { uniqueItems: true });
  }
}

const isKey = (model: SchemaSource, name: string) => model.keyAttributes.includes(name);

function nullable(model: SchemaSource, attr: DmsAttribute, schema: TSchema): TSchema {
  // An index key attribute may be absent, never NULL (DynamoDB refuses a NULL index key).
  if (isAnyKey(model, attr.attribute) || attr.required || attr.type === 'NULL') return schema;
  return Type.Union([schema, Type.Null()]);
}

function properties(model: SchemaSource, include: (a: DmsAttribute) => boolean): Record<string, TSchema> {
  const props: Record<string, TSchema> = {};
  for (const attr of model.attributes.values()) {
    if (include(attr)) props[attr.attribute] = Type.Optional(nullable(model, attr, valueSchema(model, attr)));
  }
  return props;
}

function writeBody(model: SchemaSource, id: string, keysRequired: boolean, version = true): TObject {
  const props: Record<string, TSchema> = {};
  const required: string[] = [];
  for (const attr of model.attributes.values()) {
    const name = attr.attribute;
    if (name === model.version) {
      if (!version) continue;
      props[name] = Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'expected current version (optimistic lock); never written' }));
      continue;
    }
    if (model.lifecycle.has(name)) {
      props[name] = Type.Optional(Type.String({ description: 'owned by the sidecar; ignored on input' }));
      continue;
    }
    props[name] = nullable(model, attr, valueSchema(model, attr));
    if (isKey(model, name) ? keysRequired : attr.required) required.push(name);
  }
  // The example /docs pre-fills (on the component: a $ref'd request body keeps no example of its own).
  const schema = Type.Object({}, { $id: id, additionalProperties: false, examples: [modelExample(model)] });
  schema.properties = props;
  schema.required = required.length > 0 ? required : undefined;
  if (!schema.required) delete schema.required;
  return schema;
}

/** `add`, `delete`, `append` and `prepend` operands: a number, or a non-empty set or list. */
function addends(model: SchemaSource, include: (a: DmsAttribute) => boolean): Record<string, TSchema> {
  const props: Record<string, TSchema> = {};
  for (const attr of model.attributes.values()) {
    if (!include(attr)) continue;
    const value = attr.type === 'N' ? numberSchema(attr.format === 'int') : { ...valueSchema(model, attr), minItems: 1 };
    props[attr.attribute] = Type.Optional(value);
  }
  return props;
}

/** The update clauses; a body whose clauses are all absent or empty (`{}`, `[]`) updates nothing. */
const UPDATE_CLAUSES = ['set', 'setIfNotExists', 'remove', 'add', 'delete', 'append', 'prepend'];

function patchBody(model: SchemaSource): TObject {
  const updatable = (a: DmsAttribute) => !isKey(model, a.attribute) && !model.lifecycle.has(a.attribute);
  const ofTypes = (types: string[]) => (a: DmsAttribute) => updatable(a) && types.includes(a.type) && !a.json;
  const partial = (include: (a: DmsAttribute) => boolean) =>
    Type.Optional(Type.Object(properties(model, include), { additionalProperties: false }));
  const removable = [...model.attributes.values()].filter((a) => updatable(a) && !a.required).map((a) => a.attribute);
  // Ajv refuses an empty enum: a model with nothing removable (keys and lifecycle only) takes only `remove: []`.
  const removableName = removable.length > 0 ? Type.String({ enum: removable }) : Type.String();
  return Type.Object(
    {
      set: partial(updatable),
      setIfNotExists: partial(updatable),
      remove: Type.Optional(Type.Array(removableName, { uniqueItems: true, ...(removable.length > 0 ? {} : { maxItems: 0 }) })),
      // Not the ttl: DynamoDB refused ADD on it ("an operand in the update expression has an incorrect data type").
      add: Type.Optional(Type.Object(addends(model, (a) => a.attribute !== model.ttl && ofTypes(['N', 'SS', 'NS', 'BS'])(a)), { additionalProperties: false })),
      delete: Type.Optional(Type.Object(addends(model, ofTypes(['SS', 'NS', 'BS'])), { additionalProperties: false })),
      append: Type.Optional(Type.Object(addends(model, ofTypes(['L'])), { additionalProperties: false })),
      prepend: Type.Optional(Type.Object(addends(model, ofTypes(['L'])), { additionalProperties: false })),
      ...(model.version
        ? { version: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'expected current version; same as If-Match' })) }
        : {}),
      condition: Type.Optional(Type.Ref(`${model.name}Condition`)),
    },
    {
      $id: `${model.name}Patch`,
      additionalProperties: false,
      // At least one non-empty clause, said as a `not` (an anyOf of required clauses makes generated clients'
      // types require every clause).
      not: { type: 'object', properties: Object.fromEntries(UPDATE_CLAUSES.map((c) => [c, c === 'remove' ? { type: 'array', maxItems: 0 } : { type: 'object', maxProperties: 0 }])) },
      ...(patchExample(model) ? { examples: [patchExample(model)] } : {}),
    },
  );
}

function itemSchema(model: SchemaSource): TObject {
  const schema = Type.Object({}, { $id: model.name, additionalProperties: false });
  schema.properties = properties(model, () => true);
  schema.required = [...model.keyAttributes];
  return schema;
}

function keySchema(model: SchemaSource): TObject {
  const props: Record<string, TSchema> = { [model.partitionKey.attribute]: valueSchema(model, model.partitionKey) };
  if (model.sortKey) props[model.sortKey.attribute] = valueSchema(model, model.sortKey);
  return Type.Object(props, { $id: `${model.name}Key`, additionalProperties: false });
}

export function buildModelSchemas(model: SchemaSource): ModelSchemas {
  return {
    item: itemSchema(model),
    create: writeBody(model, `${model.name}Create`, true),
    put: writeBody(model, `${model.name}Put`, false),
    patch: patchBody(model),
    key: keySchema(model),
    batchPut: writeBody(model, `${model.name}BatchPut`, true, false),
    ...conditionSchemas(model),
  };
}
