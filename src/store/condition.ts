import type { AttributeValue } from '../codec/attribute-value.js';
import type { DmsAttribute } from '../dms/types.js';
import { SidecarError } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import { encodeNatural, encodeValue, toEpochSeconds } from '../codec/index.js';
import { parsePath, type ExpressionContext } from './expression.js';

/** `{and:[…]}`, `{or:[…]}`, `{not:{…}}` or a leaf `{attr, op, value?|values?}`. */
export type Condition =
  | { and: Condition[] }
  | { or: Condition[] }
  | { not: Condition }
  | { attr: string; op: string; value?: unknown; values?: unknown[]; size?: boolean };

export const CONDITION_OPERATORS = [
  '=', '<>', '<', '<=', '>', '>=', 'between', 'in', 'begins_with', 'contains', 'exists', 'not_exists', 'attribute_type',
] as const;
const ATTRIBUTE_TYPES = new Set(['S', 'N', 'B', 'BOOL', 'NULL', 'M', 'L', 'SS', 'NS', 'BS']);
const COMPARATORS = new Set(['=', '<>', '<', '<=', '>', '>=']);
const MAX_IN_VALUES = 100;
/**
 * Deepest and/or/not nesting (the leaf under five of them is the deepest accepted): dynalite's expression parser
 * takes time exponential in nesting depth (6 nested NOTs took 0.65 s, 8 took 5.9 s, 20 held the event loop for minutes). Documented in the
 * OpenAPI condition schemas (MAX_CONDITION_DEPTH).
 */
const MAX_DEPTH = 5;

const SET_ELEMENT: Partial<Record<DmsAttribute['type'], DmsAttribute['type']>> = { SS: 'S', NS: 'N', BS: 'B' };

/** What a JSON operand must look like for each DMS type, in the words of the Values-on-the-wire table. */
const TYPE_WORDS: Record<DmsAttribute['type'], string> = {
  S: 'a string',
  N: 'a number or decimal string',
  B: 'base64 bytes',
  BOOL: 'true or false',
  NULL: 'null',
  M: 'an object',
  L: 'an array',
  SS: 'an array of distinct strings',
  NS: 'an array of distinct numbers',
  BS: 'an array of distinct base64 strings',
};
/** DynamoDB orders (`<`, `between`, …) only strings, numbers and binary; `begins_with` only strings and binary. */
const ORDERED_TYPES = new Set(['S', 'N', 'B']);
const PREFIX_TYPES = new Set(['S', 'B']);
const CONTAINS_TYPES = new Set(['S', 'B', 'SS', 'NS', 'BS', 'L']);
const SIZED_TYPES = new Set(['S', 'B', 'SS', 'NS', 'BS', 'M', 'L']);
const ORDERING_OPERATORS = new Set(['<', '<=', '>', '>=', 'between']);

function invalid(detail: string): SidecarError {
  return new SidecarError('ErrInvalidRequest', 400, `condition: ${detail}`);
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return typeof value === 'boolean' ? 'true/false' : `a ${typeof value}`;
}

/**
 * A condition, filter or key-condition operand the attribute's type cannot hold: 400 naming the attribute, its DMS
 * type and what the value must be. Never the value itself (a caller's data stays out of error bodies and logs).
 */
export function operandTypeError(what: string, path: string, type: string, expected: string, value: unknown, cause: SidecarError): SidecarError {
  const reason = cause.detail.replace(/^[^:]*: /, '');
  const got = reason.startsWith('expected') ? `got ${jsonKind(value)}` : reason;
  return new SidecarError('ErrInvalidRequest', 400, `${what}: ${path} is ${type}, so the value must be ${expected}; ${got}`, { attribute: path });
}

class LeafEncoder {
  constructor(
    private readonly model: ModelDef,
    private readonly attr: DmsAttribute,
    private readonly nested: boolean,
    private readonly path: string,
  ) {}

  encode(value: unknown, asElement = false): AttributeValue {
    if (this.nested) return encodeNatural(value, this.path, 0);
    if (asElement && this.attr.type === 'L') return encodeNatural(value, this.path, 0);
    try {
      return this.#encodeTyped(value, asElement);
    } catch (err) {
      if (!(err instanceof SidecarError) || err.code !== 'ErrInvalidItem') throw err;
      const [type, expected] = this.#expected(asElement);
      throw operandTypeError('condition', this.path, type, expected, value, err);
    }
  }

  #encodeTyped(value: unknown, asElement: boolean): AttributeValue {
    const elementType = asElement ? SET_ELEMENT[this.attr.type] : undefined;
    // Formats are not enforced on operands: conditions compare prefixes and bounds, not whole stored values.
    const attr: DmsAttribute = { ...this.attr, type: elementType ?? this.attr.type, omit_empty: false, format: undefined, json: elementType ? false : this.attr.json };
    if (this.attr.attribute === this.model.ttl && !asElement) return { N: toEpochSeconds(value, this.path) };
    return encodeValue(attr, value, this.path) ?? { NULL: true };
  }

  /** The attribute's type as the message names it, and what an operand of it must be. */
  #expected(asElement: boolean): [string, string] {
    const type = this.attr.type;
    const element = asElement ? SET_ELEMENT[type] : undefined;
    if (element) return [type, `one element: ${TYPE_WORDS[element]}`];
    if (this.attr.attribute === this.model.ttl) return [`${type} (the ttl attribute)`, 'integer epoch seconds or an RFC 3339 timestamp'];
    if (this.attr.json) return [`${type} (json)`, 'any JSON value'];
    return [type, TYPE_WORDS[type]];
  }

  /** Refuses an operator DynamoDB cannot apply to the attribute's type (it would match nothing, or fail). */
  checkOperator(op: string, size: boolean): void {
    if (this.nested) return;
    const type = this.attr.type;
    const refuse = (needs: string) =>
      new SidecarError('ErrInvalidOperator', 400, `operator ${op}${size ? ' with size' : ''} needs ${needs}; ${this.path} is ${type}`, { attribute: this.path });
    if (size) {
      if (!SIZED_TYPES.has(type)) throw refuse('a string, binary, set, map or list attribute');
      return;
    }
    if (ORDERING_OPERATORS.has(op) && !ORDERED_TYPES.has(type)) throw refuse('a string, number or binary attribute (S, N, B)');
    if (op === 'begins_with' && !PREFIX_TYPES.has(type)) throw refuse('a string or binary attribute (S, B)');
    if (op === 'contains' && !CONTAINS_TYPES.has(type)) throw refuse('a string, set or list attribute (S, B, SS, NS, BS, L)');
  }
}

function leafEncoder(model: ModelDef, path: string): LeafEncoder {
  const segments = parsePath(path);
  const attr = model.attributes.get(segments[0].name);
  if (!attr) throw invalid(`unknown attribute ${segments[0].name} in model ${model.name}`);
  if (model.encrypted.has(attr.attribute)) {
    throw new SidecarError('ErrEncryptedFieldNotQueryable', 400, `attribute ${attr.attribute} is encrypted and cannot be used in conditions`);
  }
  const nested = segments.length > 1 || segments[0].indexes.length > 0;
  if (nested && attr.type !== 'M' && attr.type !== 'L') {
    throw invalid(`${path} reaches into ${attr.attribute}, which is ${attr.type}: only M and L attributes have nested paths`);
  }
  return new LeafEncoder(model, attr, nested, path);
}

/**
 * The top-level attribute named by every leaf of a condition tree (tolerant of malformed nodes: compileCondition
 * reports those).
 */
export function conditionAttributes(condition: unknown, depth = 0): string[] {
  if (depth > MAX_DEPTH || typeof condition !== 'object' || condition === null) return [];
  const node = condition as Record<string, unknown>;
  if (Array.isArray(node.and)) return node.and.flatMap((c) => conditionAttributes(c, depth + 1));
  if (Array.isArray(node.or)) return node.or.flatMap((c) => conditionAttributes(c, depth + 1));
  if ('not' in node) return conditionAttributes(node.not, depth + 1);
  if (typeof node.attr !== 'string') return [];
  const name = /^[^.[]+/.exec(node.attr)?.[0];
  return name === undefined ? [] : [name];
}

/** Compile a condition tree into a DynamoDB condition expression, validating names, operators and values. */
export function compileCondition(model: ModelDef, condition: unknown, ctx: ExpressionContext, depth = 0): string {
  if (depth > MAX_DEPTH) throw invalid(`nesting deeper than ${MAX_DEPTH}`);
  if (typeof condition !== 'object' || condition === null || Array.isArray(condition)) throw invalid('each node must be an object');
  const node = condition as Record<string, unknown>;
  const keys = Object.keys(node);
  if (keys.length === 1 && (keys[0] === 'and' || keys[0] === 'or')) {
    const children = node[keys[0]];
    if (!Array.isArray(children) || children.length === 0) throw invalid(`${keys[0]} needs a non-empty array`);
    const parts = children.map((c) => compileCondition(model, c, ctx, depth + 1));
    return parts.length === 1 ? parts[0] : `(${parts.join(keys[0] === 'and' ? ' AND ' : ' OR ')})`;
  }
  if (keys.length === 1 && keys[0] === 'not') return `(NOT ${compileCondition(model, node.not, ctx, depth + 1)})`;
  return compileLeaf(model, node, ctx);
}

function compileLeaf(model: ModelDef, node: Record<string, unknown>, ctx: ExpressionContext): string {
  const { attr, op, value, values, size } = node;
  const extra = Object.keys(node).filter((k) => !['attr', 'op', 'value', 'values', 'size'].includes(k));
  if (extra.length > 0) throw invalid(`unexpected field ${extra[0]}`);
  if (typeof attr !== 'string') throw invalid('leaf needs an attr string');
  if (typeof op !== 'string' || !(CONDITION_OPERATORS as readonly string[]).includes(op)) {
    throw new SidecarError('ErrInvalidOperator', 400, `unsupported operator ${JSON.stringify(op)}; use one of ${CONDITION_OPERATORS.join(' ')}`);
  }
  if (size !== undefined && typeof size !== 'boolean') throw invalid('size must be a boolean');
  const encoder = leafEncoder(model, attr);
  encoder.checkOperator(op, size === true);
  const single = (): unknown => {
    if (value === undefined) throw invalid(`operator ${op} on ${attr} needs a value`);
    return value;
  };
  const list = (min: number, max: number): unknown[] => {
    if (!Array.isArray(values) || values.length < min || values.length > max) {
      throw invalid(`operator ${op} on ${attr} needs values: an array of ${min === max ? min : `${min} to ${max}`} items`);
    }
    return values;
  };
  if (size === true) return compileSize(attr, op, ctx.path(attr), single, list, ctx);
  const name = ctx.path(attr);
  if (COMPARATORS.has(op)) return `${name} ${op} ${ctx.value(encoder.encode(single()))}`;
  switch (op) {
    case 'between': {
      const [low, high] = list(2, 2);
      return `${name} BETWEEN ${ctx.value(encoder.encode(low))} AND ${ctx.value(encoder.encode(high))}`;
    }
    case 'in':
      return `${name} IN (${list(1, MAX_IN_VALUES).map((v) => ctx.value(encoder.encode(v))).join(', ')})`;
    case 'begins_with':
      return `begins_with(${name}, ${ctx.value(encoder.encode(single()))})`;
    case 'contains':
      return `contains(${name}, ${ctx.value(encoder.encode(single(), true))})`;
    case 'exists':
      return `attribute_exists(${name})`;
    case 'attribute_type': {
      const type = single();
      if (typeof type !== 'string' || !ATTRIBUTE_TYPES.has(type)) throw invalid(`attribute_type needs one of ${[...ATTRIBUTE_TYPES].join(' ')}`);
      return `attribute_type(${name}, ${ctx.value({ S: type })})`;
    }
    default:
      return `attribute_not_exists(${name})`;
  }
}

/** `{attr, size: true, op, value}` compares DynamoDB's size(attr) with a number. */
function compileSize(
  attr: string,
  op: string,
  name: string,
  single: () => unknown,
  list: (min: number, max: number) => unknown[],
  ctx: ExpressionContext,
): string {
  const count = (v: unknown): string => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(`size of ${attr} compares with a non-negative integer`);
    return ctx.value({ N: String(v) });
  };
  if (COMPARATORS.has(op)) return `size(${name}) ${op} ${count(single())}`;
  if (op === 'between') {
    const [low, high] = list(2, 2);
    return `size(${name}) BETWEEN ${count(low)} AND ${count(high)}`;
  }
  if (op === 'in') return `size(${name}) IN (${list(1, MAX_IN_VALUES).map(count).join(', ')})`;
  throw new SidecarError('ErrInvalidOperator', 400, `operator ${op} cannot compare a size`);
}
