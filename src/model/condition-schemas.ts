import { Type, type TSchema } from '@sinclair/typebox/type';
import type { DmsAttribute } from '../dms/types.js';
import type { ModelDef } from './registry.js';
import { MAX_CONDITION_DEPTH, valueSchema } from './schemas.js';
import { escapeRegex } from '../regex.js';

type SchemaSource = Omit<ModelDef, 'schemas'>;

// What DynamoDB applies to each type (the server refuses the rest with ErrInvalidOperator, see store/condition.ts).
const ORDERED = new Set(['S', 'N', 'B']);
const PREFIX = new Set(['S', 'B']);
const CONTAINS = new Set(['S', 'B', 'SS', 'NS', 'BS', 'L']);
const SIZED = new Set(['S', 'B', 'SS', 'NS', 'BS', 'M', 'L']);
const ATTRIBUTE_TYPES = ['S', 'N', 'B', 'BOOL', 'NULL', 'M', 'L', 'SS', 'NS', 'BS'];
const MAX_IN_VALUES = 100;

const names = (attrs: DmsAttribute[]) => Type.Unsafe<string>({ type: 'string', enum: attrs.map((a) => a.attribute) });
const ops = (values: string[]) => Type.Unsafe<string>({ type: 'string', enum: values });

/** One element of a set or list attribute (`contains`). */
function elementSchema(model: SchemaSource, attr: DmsAttribute): TSchema {
  if (attr.type === 'SS') return Type.String({ minLength: 1 });
  if (attr.type === 'BS' || attr.type === 'NS') return (valueSchema(model, attr) as unknown as { items: TSchema }).items;
  if (attr.type === 'L') return Type.Unknown();
  return valueSchema(model, attr);
}

/**
 * The leaf shapes of a model's condition: attributes grouped by operand schema, each group with the operators
 * DynamoDB applies to its type and operands of that type. Encrypted attributes never appear (ErrEncryptedFieldNotQueryable).
 */
function leafShapes(model: SchemaSource): TSchema[] {
  // Titles name generated classes (openapi-python-client): the model's name keeps them apart across models.
  const leaf = (members: Record<string, TSchema>, title: string) => Type.Object(members, { title: `${model.name} ${title}`, additionalProperties: false });
  const attrs = [...model.attributes.values()].filter((a) => !model.encrypted.has(a.attribute));
  const groups = new Map<string, { type: string; value: TSchema; element: TSchema | undefined; attrs: DmsAttribute[] }>();
  for (const attr of attrs) {
    // A map operand by reference: inline, each leaf shape made its own model class and the Python client refused the
    // duplicates.
    // Timestamps are compared as prefixes and bounds: formats are not enforced on operands (store/condition.ts).
    const value = attr.type === 'M' ? Type.Ref('JsonObject') : attr.type === 'S' && attr.format && !attr.json ? Type.String() : valueSchema(model, attr);
    const element = CONTAINS.has(attr.type) ? elementSchema(model, attr) : undefined;
    const id = JSON.stringify([attr.type, value, element]);
    const group = groups.get(id) ?? { type: attr.type, value, element, attrs: [] };
    group.attrs.push(attr);
    groups.set(id, group);
  }
  const shapes: TSchema[] = [];
  for (const { type, value, element, attrs: members } of groups.values()) {
    const attr = names(members);
    const label = `${members.map((a) => a.attribute).join(', ')} (${type})`;
    const single = ['=', '<>', ...(ORDERED.has(type) ? ['<', '<=', '>', '>='] : []), ...(PREFIX.has(type) ? ['begins_with'] : [])];
    shapes.push(leaf({ attr, op: ops(single), value }, `compare ${label}`));
    shapes.push(leaf({ attr, op: Type.Literal('in'), values: Type.Array(value, { minItems: 1, maxItems: MAX_IN_VALUES }) }, `in ${label}`));
    if (ORDERED.has(type)) {
      shapes.push(leaf({ attr, op: Type.Literal('between'), values: Type.Array(value, { minItems: 2, maxItems: 2, description: '[low, high], low ≤ high' }) }, `between ${label}`));
    }
    if (element) shapes.push(leaf({ attr, op: Type.Literal('contains'), value: element }, `contains ${label}`));
  }
  const all = names(attrs);
  // `= null` / `<> null` compare with a stored NULL (never on a key: a key is never NULL).
  const nullable = attrs.filter((a) => !model.keyAttributes.includes(a.attribute) && !model.indexKeyRoles.has(a.attribute));
  if (nullable.length > 0) shapes.push(leaf({ attr: names(nullable), op: ops(['=', '<>']), value: Type.Null() }, 'compare with null'));
  // A dotted path into an M or L attribute: what it reaches is not typed by the model. Bounded to 27 levels
  // (DynamoDB refuses document paths deeper than 32).
  const nested = attrs.filter((a) => a.type === 'M' || a.type === 'L').map((a) => escapeRegex(a.attribute));
  if (nested.length > 0) {
    const path = Type.String({
      pattern: `^(${nested.join('|')})(\\[[0-9]{1,9}\\]){0,3}(\\.[^.\\[\\]]{1,255}(\\[[0-9]{1,9}\\]){0,3}){1,6}$|^(${nested.join('|')})(\\[[0-9]{1,9}\\]){1,3}$`,
      description: 'a path into a map or list attribute, e.g. profile.city or history[0].at',
    });
    // What a path reaches is not typed by the model; the operator still says which operands it takes.
    const scalar = Type.Union([Type.String(), Type.Number()]);
    const pair = (item: TSchema) => Type.Array(item, { minItems: 2, maxItems: 2, description: '[low, high], low ≤ high' });
    shapes.push(leaf({ attr: path, op: ops(['=', '<>', 'contains']), value: Type.Unknown() }, 'nested path compare'));
    shapes.push(leaf({ attr: path, op: ops(['<', '<=', '>', '>=']), value: scalar }, 'nested path order'));
    shapes.push(leaf({ attr: path, op: Type.Literal('begins_with'), value: Type.String() }, 'nested path begins_with'));
    shapes.push(leaf({ attr: path, op: Type.Literal('in'), values: Type.Array(Type.Unknown(), { minItems: 1, maxItems: MAX_IN_VALUES }) }, 'nested path in'));
    shapes.push(leaf({ attr: path, op: Type.Literal('between'), values: Type.Union([pair(Type.String()), pair(Type.Number())]) }, 'nested path between'));
    shapes.push(leaf({ attr: path, op: ops(['exists', 'not_exists']) }, 'nested path exists'));
    shapes.push(leaf({ attr: path, op: Type.Literal('attribute_type'), value: ops(ATTRIBUTE_TYPES) }, 'nested path attribute_type'));
    const count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
    shapes.push(leaf({ attr: path, size: Type.Literal(true), op: ops(['=', '<>', '<', '<=', '>', '>=']), value: count }, 'nested path size'));
  }
  shapes.push(leaf({ attr: all, op: ops(['exists', 'not_exists']) }, 'exists'));
  shapes.push(leaf({ attr: all, op: Type.Literal('attribute_type'), value: ops(ATTRIBUTE_TYPES) }, 'attribute_type'));
  const sized = attrs.filter((a) => SIZED.has(a.type));
  if (sized.length > 0) {
    const count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
    const size = Type.Literal(true, { description: 'compare size(attr) instead of its value' });
    shapes.push(leaf({ attr: names(sized), size, op: ops(['=', '<>', '<', '<=', '>', '>=']), value: count }, 'size compare'));
    shapes.push(leaf({ attr: names(sized), size, op: Type.Literal('between'), values: Type.Array(count, { minItems: 2, maxItems: 2 }) }, 'size between'));
    shapes.push(leaf({ attr: names(sized), size, op: Type.Literal('in'), values: Type.Array(count, { minItems: 1, maxItems: MAX_IN_VALUES }) }, 'size in'));
  }
  return shapes;
}

/**
 * A model's condition tree as named schemas (`<Model>Condition`, …And, …Or, …Not, …Leaf), each referring back by
 * $ref: the document stays small, and generators see plain models instead of a recursive inline union.
 */
export function conditionSchemas(model: SchemaSource) {
  const name = model.name;
  const ref = Type.Ref(`${name}Condition`);
  return {
    conditionAnd: Type.Object({ and: Type.Array(ref, { minItems: 1 }) }, { $id: `${name}ConditionAnd`, additionalProperties: false }),
    conditionOr: Type.Object({ or: Type.Array(ref, { minItems: 1 }) }, { $id: `${name}ConditionOr`, additionalProperties: false }),
    conditionNot: Type.Object({ not: ref }, { $id: `${name}ConditionNot`, additionalProperties: false }),
    conditionLeaf: Type.Union(leafShapes(model), {
      $id: `${name}ConditionLeaf`,
      description:
        `a comparison on one unencrypted ${name} attribute, operand typed by it: {attr, op, value} or {attr, op, values}; ` +
        '{attr, size: true, op, value} compares size(attr). Dotted paths into M and L attributes (a.b[0].c) are accepted too.',
    }),
    condition: Type.Union([Type.Ref(`${name}ConditionAnd`), Type.Ref(`${name}ConditionOr`), Type.Ref(`${name}ConditionNot`), Type.Ref(`${name}ConditionLeaf`)], {
      $id: `${name}Condition`,
      description: `condition tree on ${name}: {and:[…]}, {or:[…]}, {not:{…}} or a leaf; at most ${MAX_CONDITION_DEPTH} levels of and/or/not`,
    }),
  };
}
