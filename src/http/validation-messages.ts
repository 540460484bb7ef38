import type { DmsAttribute } from '../dms/types.js';
import { SidecarError } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import { CONDITION_OPERATORS, compileCondition } from '../store/condition.js';
import { ExpressionContext } from '../store/expression.js';
import { SORT_OPERATORS } from '../store/query.js';
import type { RouteErrorContext } from './problem.js';

export interface AjvError {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** PATCH clauses whose members are attribute values (validated like item attributes). */
const VALUE_CLAUSES = new Set(['set', 'setIfNotExists', 'add', 'delete', 'append', 'prepend']);
/** A condition node's own member: missing it means "not this kind of node", rarely the mistake. */
const CONDITION_NODES = new Set(['and', 'or', 'not']);
const OPERATORS = new Set<string>([...CONDITION_OPERATORS, ...SORT_OPERATORS]);

const segmentsOf = (instancePath: string) =>
  instancePath.split('/').filter(Boolean).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
const dotted = (segments: string[]) => segments.join('.');

function valueAt(data: unknown, segments: string[]): unknown {
  let v = data;
  for (const s of segments) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[s];
  }
  return v;
}

/** What was sent, in words: its JSON shape. Item values are never echoed (they may be personal or secret). */
function given(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : 'an array';
  switch (typeof value) {
    case 'object':
      return 'an object';
    case 'number':
      return Number.isInteger(value) ? 'an integer' : 'a number with a fraction';
    case 'string':
      return value === '' ? 'an empty string' : 'a string';
    default:
      return `a ${typeof value}`;
  }
}

/** A request field that is a name (index, op, model): safe to quote back. */
function named(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}…` : value) : given(value);
}

const NUMBER_WORDS = (integer: boolean) => (integer ? 'an integer number (or a string of digits)' : 'a number (or a decimal string)');

/** The value an attribute takes, in words, with its DMS type: "an integer number (DMS N, format int)". */
export function expectedValue(model: ModelDef, attr: DmsAttribute): string {
  const tags = [`DMS ${attr.type}`];
  if (attr.format) tags.push(`format ${attr.format}`);
  if (attr.json) tags.push('json');
  if (attr.encryption) tags.push('encrypted');
  const key = model.keyAttributes.includes(attr.attribute) || model.indexKeyRoles.has(attr.attribute);
  let words: string;
  if (attr.attribute === model.ttl) {
    words = 'epoch seconds (an integer) or an RFC 3339 timestamp string';
    tags.push('ttl');
  } else {
    switch (attr.type) {
      case 'S':
        words = attr.json ? 'any JSON value' : attr.format === 'rfc3339nano' ? 'an RFC 3339 timestamp string like 2026-01-16T10:20:30.123000000Z' : key ? 'a non-empty string' : 'a string';
        break;
      case 'N':
        words = NUMBER_WORDS(attr.format === 'int' || attr.format === 'unix_seconds');
        break;
      case 'B':
        words = key ? 'a non-empty base64 string' : 'a base64 string';
        break;
      case 'BOOL':
        words = 'true or false';
        break;
      case 'NULL':
        words = 'null';
        break;
      case 'M':
        words = 'a JSON object';
        break;
      case 'L':
        words = 'a JSON array';
        break;
      case 'SS':
        words = 'an array of distinct non-empty strings';
        break;
      case 'NS':
        words = 'an array of distinct numbers (or decimal strings)';
        break;
      case 'BS':
        words = 'an array of distinct non-empty base64 strings';
        break;
    }
  }
  const nullable = !model.keyAttributes.includes(attr.attribute) && !attr.required && attr.type !== 'NULL';
  return `${words}${nullable ? ' or null' : ''} (${tags.join(', ')})`;
}

/** The item attribute an error path points into, for bodies (or parts of bodies) that hold attribute values. */
function itemAttributeAt(route: RouteErrorContext, data: unknown, segments: string[]): { model: ModelDef; at: number } | undefined {
  const { op, modelDef } = route;
  const within = (model: ModelDef | undefined, at: number) => (model && segments.length > at ? { model, at } : undefined);
  if (op === 'create' || op === 'put') return within(modelDef, 0);
  if (op === 'update' && VALUE_CLAUSES.has(segments[0])) return within(modelDef, 1);
  if (op === 'batch-write' && (segments[0] === 'puts' || segments[0] === 'deletes')) return within(modelDef, 2);
  if (op === 'batch-get' && segments[0] === 'keys') return within(modelDef, 2);
  if ((op === 'transact-write' || op === 'transact-get') && segments[0] === 'items') {
    const name = valueAt(data, ['items', segments[1], 'model']);
    const model = typeof name === 'string' ? route.models?.get(name) : undefined;
    if (segments[2] === 'item' || segments[2] === 'key') return within(model, 3);
    if (segments[2] === 'update' && VALUE_CLAUSES.has(segments[3])) return within(model, 4);
  }
  return undefined;
}

/** The model a part of the body is about: the route's, or a transaction item's own. */
function modelAt(route: RouteErrorContext, data: unknown, segments: string[]): ModelDef | undefined {
  if (segments[0] === 'items' && route.models) {
    const name = valueAt(data, ['items', segments[1], 'model']);
    return typeof name === 'string' ? route.models.get(name) : undefined;
  }
  return route.modelDef;
}

/** A condition leaf's operand of the wrong type: name the attribute it is compared with. */
function operandError(part: string, e: AjvError, route: RouteErrorContext, data: unknown): SidecarError | undefined {
  const segments = segmentsOf(e.instancePath);
  const at = segments.lastIndexOf('value') >= 0 ? segments.lastIndexOf('value') : segments.lastIndexOf('values');
  if (at < 1) return undefined;
  const leaf = segments.slice(0, at);
  const attrName = valueAt(data, [...leaf, 'attr']);
  const model = modelAt(route, data, segments);
  const attr = typeof attrName === 'string' ? model?.attributes.get(attrName) : undefined;
  if (!model || !attr) return undefined;
  const size = valueAt(data, [...leaf, 'size']) === true;
  const op = valueAt(data, [...leaf, 'op']);
  const wanted = size ? 'a non-negative integer (a size)' : op === 'contains' ? `an element of ${attr.attribute}` : expectedValue(model, attr);
  return new SidecarError('ErrInvalidRequest', 400, `${part} ${dotted(segments)} must be ${wanted} to compare with ${attr.attribute}; got ${given(valueAt(data, segments))}`);
}

/** The key attribute a query's `partition` or `sort.value(s)` stands for, given the index the body names. */
function queryKeyAt(model: ModelDef, data: unknown, segments: string[]): DmsAttribute | undefined {
  const indexName = valueAt(data, ['index']);
  const index = typeof indexName === 'string' ? model.indexes.get(indexName) : undefined;
  if (typeof indexName === 'string' && !index) return undefined;
  const keys = index ? { partition: index.partition.attribute, sort: index.sort?.attribute } : { partition: model.partitionKey.attribute, sort: model.sortKey?.attribute };
  const name = segments[0] === 'partition' ? keys.partition : segments[0] === 'sort' && (segments[1] === 'value' || segments[1] === 'values') ? keys.sort : undefined;
  return name ? model.attributes.get(name) : undefined;
}

/**
 * A union branch whose discriminating tags (`op`, `model`, `index`, held in the branch's leading `allOf`) do not
 * match the data: its other errors say nothing about the request.
 */
const DEAD_TAG = /^(.*\/(?:anyOf|oneOf)\/\d+)\/allOf\/0\//;

function deadBranches(errors: AjvError[]): { dead: Set<string>; tags: AjvError[] } {
  const dead = new Set<string>();
  const tags: AjvError[] = [];
  for (const e of errors) {
    const m = DEAD_TAG.exec(e.schemaPath);
    if (!m) continue;
    dead.add(m[1]);
    tags.push(e);
  }
  return { dead, tags };
}

const isDead = (e: AjvError, dead: Set<string>) => [...dead].some((prefix) => e.schemaPath.startsWith(`${prefix}/`));

function allowedOf(e: AjvError): string[] {
  if (e.keyword === 'not') return ['(absent)'];
  if (e.keyword === 'const') return [String(e.params.allowedValue)];
  if (e.keyword === 'required') return [];
  return ((e.params.allowedValues as unknown[] | undefined) ?? []).map(String);
}

/** How deep in the request a tag sits (a missing tag counts as the member it names). */
const tagDepth = (e: AjvError) => segmentsOf(e.instancePath).length + (e.keyword === 'required' ? 1 : 0);

/**
 * Every branch was the wrong one. Among the innermost unions' tags, the tag that failed in the fewest branches is
 * the one the caller got wrong (a wrong `op` fails only in its model's branches, a wrong `model` in all).
 */
function tagError(part: string, tags: AjvError[], data: unknown, route: RouteErrorContext): SidecarError {
  const namedTags = tags.filter((t) => t.keyword !== 'required');
  const candidates = namedTags.length > 0 ? namedTags : tags;
  const deepest = Math.max(...candidates.map(tagDepth));
  const byPath = new Map<string, AjvError[]>();
  for (const e of candidates.filter((t) => tagDepth(t) === deepest)) {
    const path = e.keyword === 'required' ? `${e.instancePath}/${String(e.params.missingProperty)}` : e.instancePath;
    byPath.set(path, [...(byPath.get(path) ?? []), e]);
  }
  const [path, errs] = [...byPath].sort((a, b) => a[1].length - b[1].length)[0];
  const allowed = [...new Set(errs.flatMap(allowedOf))];
  const segments = segmentsOf(path);
  const field = segments.at(-1);
  const sent = valueAt(data, segments);
  const model = modelAt(route, data, segments);
  if (field === 'attr' && typeof sent === 'string' && model) {
    const name = sent.split(/[.[]/)[0];
    if (model.encrypted.has(name)) {
      return new SidecarError('ErrEncryptedFieldNotQueryable', 400, `attribute ${name} is encrypted and cannot be used in conditions`);
    }
    if (!model.attributes.has(name)) {
      return new SidecarError('ErrInvalidRequest', 400, `${part} ${dotted(segments)}: unknown attribute ${name} in model ${model.name}; use one of ${[...model.attributes.keys()].filter((a) => !model.encrypted.has(a)).join(', ')}`);
    }
  }
  const family: readonly string[] = allowed.every((a) => (SORT_OPERATORS as readonly string[]).includes(a)) ? SORT_OPERATORS : CONDITION_OPERATORS;
  if (field === 'op' && typeof sent === 'string' && family.includes(sent) && allowed.every((a) => OPERATORS.has(a))) {
    const attr = valueAt(data, [...segments.slice(0, -1), 'attr']);
    const what = attr === undefined ? 'this sort key' : String(attr);
    const listed = [...allowed].sort((a, b) => family.indexOf(a) - family.indexOf(b));
    return new SidecarError('ErrInvalidOperator', 400, `operator ${sent} does not apply to ${what} at ${dotted(segments)}; use one of ${listed.join(' ')}`);
  }
  if (field === 'op' && allowed.every((a) => OPERATORS.has(a))) return operatorError(dotted(segments), allowed);
  const absent = allowed.includes('(absent)');
  const listed = allowed.filter((a) => a !== '(absent)').join(', ');
  return new SidecarError(
    'ErrInvalidRequest',
    400,
    `${part} ${dotted(segments)}: ${sent === undefined ? 'is required' : `${named(sent)} is not allowed`}; use one of ${listed}${absent ? `, or leave ${field} out` : ''}`,
  );
}

function operatorError(where: string, listed: string[]): SidecarError {
  const sort = listed.every((a) => (SORT_OPERATORS as readonly string[]).includes(a));
  const canonical: readonly string[] = sort ? SORT_OPERATORS : CONDITION_OPERATORS;
  const allowed = [...listed].sort((a, b) => canonical.indexOf(a) - canonical.indexOf(b));
  return new SidecarError('ErrInvalidOperator', 400, `unsupported ${sort ? 'sort key operator' : 'operator'} at ${where}; use one of ${allowed.join(' ')}`);
}

/** An enum or const outside its set, listing the allowed values. */
function enumError(part: string, e: AjvError, data: unknown): SidecarError | undefined {
  if (e.keyword !== 'enum' && e.keyword !== 'const') return undefined;
  const segments = segmentsOf(e.instancePath);
  const allowed = allowedOf(e);
  if (segments.at(-1) === 'op' && allowed.every((a) => OPERATORS.has(a))) return operatorError(dotted(segments), allowed);
  const sent = valueAt(data, segments);
  if (segments.at(-1) === 'consistent' && sent === true) {
    const index = valueAt(data, [...segments.slice(0, -1), 'index']);
    return new SidecarError('ErrInvalidRequest', 400, `consistent reads are not supported on global secondary index ${String(index)}; leave consistent out`);
  }
  return new SidecarError('ErrInvalidRequest', 400, `${part} ${dotted(segments)}: ${named(sent)} is not allowed; use one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
}

/** Required/unknown-member errors with the fix in words (a flat PATCH body, lifecycle attributes). */
function memberError(part: string, e: AjvError, route: RouteErrorContext, data: unknown): SidecarError | undefined {
  const segments = segmentsOf(e.instancePath);
  const model = route.modelDef;
  const itemBody = part === 'body' && (route.itemBody || (route.op === 'update' && VALUE_CLAUSES.has(segments[0])));

  if (e.keyword === 'required') {
    const missing = String(e.params.missingProperty);
    const item = part === 'body' ? itemAttributeAt(route, data, [...segments, missing]) : undefined;
    const txModel = route.models?.get(String(valueAt(data, segments.slice(0, 2).concat('model'))));
    if (part === 'body' && (route.keys?.includes(missing) || item?.model.keyAttributes.includes(missing) || txModel?.keyAttributes.includes(missing))) {
      return new SidecarError('ErrMissingPrimaryKey', 400, `missing key attribute ${missing}`, { attribute: missing });
    }
    const where = dotted([...segments, missing]);
    const op = valueAt(data, [...segments, 'op']);
    if (typeof op === 'string' && route.models) {
      return new SidecarError('ErrInvalidRequest', 400, `${part} ${dotted(segments)}: op ${op} needs ${missing}`);
    }
    return itemBody || item
      ? new SidecarError('ErrInvalidItem', 400, `missing required attribute ${where}`, { attribute: where })
      : new SidecarError('ErrInvalidRequest', 400, `${part}: missing ${where}`);
  }
  if (e.keyword !== 'additionalProperties') return undefined;
  const extra = String(e.params.additionalProperty);
  const where = dotted([...segments, extra]);
  const op = valueAt(data, [...segments, 'op']);
  if ((extra === 'value' || extra === 'values') && typeof op === 'string' && OPERATORS.has(op)) {
    const takes = op === 'between' ? 'values: [low, high]' : op === 'in' ? 'values: [...]' : op === 'exists' || op === 'not_exists' ? 'no operand' : 'value';
    return new SidecarError('ErrInvalidRequest', 400, `${part} ${dotted(segments)}: operator ${op} takes ${takes}, not ${extra}`);
  }
  if (model && part === 'body' && route.op === 'query' && extra === 'sort' && segments.length === 0) {
    const index = valueAt(data, ['index']);
    return new SidecarError('ErrInvalidRequest', 400, `${typeof index === 'string' ? `index ${index}` : `model ${model.name}`} has no sort key; leave sort out (filter can test other attributes)`);
  }
  // A batch put's expected version: the store's own words (a batch cannot check one).
  if (model && part === 'body' && route.op === 'batch-write' && segments[0] === 'puts' && segments.length === 2 && extra === model.version) {
    return new SidecarError('ErrInvalidRequest', 400, `puts[${segments[1]}]: a batch put cannot check a version; use a transaction or PUT with If-Match`);
  }
  if (model && part === 'body' && route.op === 'update') {
    if (segments.length === 0 && model.attributes.has(extra)) {
      return new SidecarError('ErrInvalidRequest', 400, `body: unknown field ${extra}; a PATCH body names what to do with each attribute, e.g. {"set": {"${extra}": …}} (or remove, add, delete, append, prepend, setIfNotExists)`);
    }
    if (VALUE_CLAUSES.has(segments[0]) && segments.length === 1) {
      if (model.lifecycle.has(extra)) {
        return new SidecarError('ErrInvalidItem', 400, `${where}: ${extra} is a lifecycle attribute owned by the sidecar (createdAt/updatedAt/version are stamped on every write); leave it out — send the expected version as If-Match or "version"`, { attribute: extra });
      }
      if (model.keyAttributes.includes(extra)) {
        return new SidecarError('ErrInvalidItem', 400, `${where}: key attribute ${extra} cannot be updated; the key is in the path`, { attribute: extra });
      }
      if (model.attributes.has(extra)) {
        return new SidecarError('ErrInvalidItem', 400, `${where}: ${segments[0]} does not apply to ${extra} (${expectedValue(model, model.attributes.get(extra)!)})`, { attribute: extra });
      }
    }
  }
  return itemBody || (part === 'body' && itemAttributeAt(route, data, [...segments, extra]))
    ? new SidecarError('ErrInvalidItem', 400, `unknown attribute ${where}`, { attribute: where })
    : new SidecarError('ErrInvalidRequest', 400, `${part}: unknown field ${where}`);
}

/** An item attribute (or a query key value) of the wrong type or shape: name it, its DMS type, and what came. */
function valueError(part: string, e: AjvError, route: RouteErrorContext, data: unknown): SidecarError | undefined {
  if (part !== 'body') return undefined;
  const segments = segmentsOf(e.instancePath);
  const item = itemAttributeAt(route, data, segments);
  const model = item?.model ?? route.modelDef;
  if (!model) return undefined;
  const at = item?.at;
  const attr = at !== undefined ? model.attributes.get(segments[at]) : route.op === 'query' ? queryKeyAt(model, data, segments) : undefined;
  if (!attr) return undefined;
  const end = at !== undefined ? at + 1 : segments[0] === 'partition' ? 1 : segments[1] === 'values' ? Math.min(3, segments.length) : 2;
  const attrPath = segments.slice(0, end);
  const value = valueAt(data, attrPath);
  const isKey = model.keyAttributes.includes(attr.attribute) || at === undefined;
  if (e.keyword === 'minLength' && segments.length === end && value === '') {
    if (isKey) return new SidecarError('ErrMissingPrimaryKey', 400, `key attribute ${attr.attribute} cannot be empty`, { attribute: attr.attribute });
    const role = model.indexKeyRoles.get(attr.attribute);
    if (role) {
      return new SidecarError('ErrInvalidItem', 400, `attribute ${attr.attribute} is a key of index ${role.indexes} and cannot be empty; leave it out to keep the item out of the index`, { attribute: attr.attribute });
    }
  }
  const inner = segments.length > end ? `; ${dotted(segments)} is ${given(valueAt(data, segments))}` : `; got ${given(value)}`;
  const duplicate = e.keyword === 'uniqueItems' ? ' (it repeats an element)' : '';
  const detail = `${dotted(attrPath)} must be ${expectedValue(model, attr)}${inner}${duplicate}`;
  return at !== undefined
    ? new SidecarError('ErrInvalidItem', 400, detail, { attribute: attr.attribute })
    : new SidecarError('ErrInvalidRequest', 400, `${part} ${detail}`);
}

/** `?fields=` naming something the model does not have. */
function fieldsError(raw: unknown, model: ModelDef): SidecarError {
  const unknown = String(raw).split(',').map((f) => f.trim()).filter((f) => f && !model.attributes.has(f));
  return new SidecarError('ErrInvalidRequest', 400, `querystring fields: unknown attribute ${unknown.join(', ') || '(empty)'} in model ${model.name}; use a comma-separated list of ${[...model.attributes.keys()].join(', ')}`);
}

/** Path parameters: the key values, refused with ErrMissingPrimaryKey as the codec would. */
function paramError(e: AjvError, route: RouteErrorContext): SidecarError | undefined {
  const name = segmentsOf(e.instancePath)[0];
  const attr = name === 'pk' ? route.modelDef?.partitionKey : name === 'sk' ? route.modelDef?.sortKey : undefined;
  if (!attr) return undefined;
  if (e.keyword === 'minLength') return new SidecarError('ErrMissingPrimaryKey', 400, `key attribute ${attr.attribute} cannot be empty`);
  const integer = attr.format === 'int' || attr.format === 'unix_seconds';
  const form = attr.type === 'N' ? (integer ? 'an integer in plain digits (e.g. 42)' : 'a decimal number') : attr.type === 'B' ? 'base64url bytes' : 'a percent-encoded string';
  return new SidecarError('ErrMissingPrimaryKey', 400, `key attribute ${attr.attribute} in the path is not a valid ${attr.type} value; send ${form}`);
}

/** Where condition trees sit in a request part: `condition`, `filter`, a transaction item's or its update's `condition`. */
function conditionRootAt(part: string, segments: string[]): string[] | undefined {
  if (part === 'querystring' || part === 'body') {
    if (segments[0] === 'condition' || (part === 'body' && segments[0] === 'filter')) return segments.slice(0, 1);
    if (part === 'body' && segments[0] === 'items' && segments[2] === 'condition') return segments.slice(0, 3);
    if (part === 'body' && segments[0] === 'items' && segments[2] === 'update' && segments[3] === 'condition') return segments.slice(0, 4);
  }
  return undefined;
}

/**
 * A condition tree the schema refused: the server's own check names the mistake (unknown attribute, an operand of the
 * wrong type, an operator the type does not take) in the words it uses when it meets one. Only a verdict: the
 * expression it compiles is dropped.
 */
function conditionError(errors: AjvError[], part: string, data: unknown, route: RouteErrorContext): SidecarError | undefined {
  for (const e of errors) {
    const root = conditionRootAt(part, segmentsOf(e.instancePath));
    if (!root) continue;
    const model = modelAt(route, data, root);
    if (!model) return undefined;
    try {
      compileCondition(model, valueAt(data, root), new ExpressionContext());
    } catch (err) {
      if (!(err instanceof SidecarError)) throw err;
      // An unknown operator: name where it is, as for any other enum member.
      if (err.detail.startsWith('unsupported operator')) return operatorError(`${dotted(badOperatorAt(valueAt(data, root), root) ?? root)}.op`, [...CONDITION_OPERATORS]);
      if (root[0] !== 'items') return err;
      return new SidecarError(err.code, err.status, `items[${root[1]}]: ${err.detail}`, err.extra);
    }
    return undefined;
  }
  return undefined;
}

const UPDATE_CLAUSES = ['set', 'setIfNotExists', 'remove', 'add', 'delete', 'append', 'prepend'];

/** The path of the first leaf whose `op` is not an operator. */
function badOperatorAt(node: unknown, at: string[]): string[] | undefined {
  if (node === null || typeof node !== 'object') return undefined;
  const n = node as Record<string, unknown>;
  for (const group of ['and', 'or']) {
    if (Array.isArray(n[group])) {
      for (const [i, child] of (n[group] as unknown[]).entries()) {
        const found = badOperatorAt(child, [...at, group, String(i)]);
        if (found) return found;
      }
      return undefined;
    }
  }
  if ('not' in n) return badOperatorAt(n.not, [...at, 'not']);
  return typeof n.op === 'string' && (CONDITION_OPERATORS as readonly string[]).includes(n.op) ? undefined : at;
}

/** Ajv's errors for one request part → one problem that says what to fix. */
export function describeValidation(errors: AjvError[], part: string, data: unknown, route: RouteErrorContext): SidecarError | undefined {
  const condition = conditionError(errors, part, data, route);
  if (condition) return condition;
  // The PATCH body's `not` rule: every clause absent or empty.
  const nothing = errors.find((e) => e.keyword === 'not' && (e.instancePath === '' || /^\/items\/\d+\/update$/.test(e.instancePath)));
  // A member the body does not have (a flat PATCH body): that is the mistake, not the missing clause.
  const members = nothing && data !== null && typeof data === 'object' && !Array.isArray(data) && nothing.instancePath === '' ? Object.keys(data) : [];
  const allowed = new Set([...UPDATE_CLAUSES, 'version', 'condition', 'puts', 'deletes']);
  const stranger = members.find((m) => !allowed.has(m));
  if (stranger !== undefined) {
    const synthetic: AjvError = { keyword: 'additionalProperties', instancePath: '', schemaPath: '#/additionalProperties', params: { additionalProperty: stranger } };
    const described = memberError(part, synthetic, route, data);
    if (described) return described;
  }
  if (nothing && part === 'body' && route.op === 'batch-write') return new SidecarError('ErrInvalidRequest', 400, 'puts + deletes needs at least one entry');
  if (nothing && part === 'body') {
    const where = nothing.instancePath ? `items[${segmentsOf(nothing.instancePath)[1]}].update: ` : '';
    return new SidecarError('ErrInvalidRequest', 400, `${where}an update needs at least one of ${UPDATE_CLAUSES.join(', ')}, with at least one entry`);
  }
  const { dead, tags } = deadBranches(errors);
  const live = errors.filter((e) => !isDead(e, dead) && !DEAD_TAG.test(e.schemaPath));
  const specific = live.filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf');
  // A union's branches fail at different depths (a condition leaf's bad `op` against {and}'s missing `and`): the
  // deepest failure is the one in the branch the caller meant.
  const depth = (e: AjvError) =>
    segmentsOf(e.instancePath).length +
    (e.keyword === 'required' || e.keyword === 'additionalProperties' ? 1 : 0) -
    (e.keyword === 'required' && CONDITION_NODES.has(String(e.params.missingProperty)) ? 0.25 : 0);
  const first = specific.reduce<AjvError | undefined>((best, e) => (best === undefined || depth(e) > depth(best) ? e : best), undefined) ?? live[0];
  // A wrong tag (attr, op, model, index) deeper than any live failure: the caller named something that is not there.
  if (tags.length > 0 && (!first || Math.max(...tags.map(depth)) > depth(first))) return tagError(part, tags, data, route);
  if (!first) return undefined;
  if (part === 'params') return paramError(first, route);
  if (part === 'querystring' && first.instancePath === '/fields' && route.modelDef) return fieldsError(valueAt(data, ['fields']), route.modelDef);
  const described = valueError(part, first, route, data) ?? operandError(part, first, route, data) ?? memberError(part, first, route, data) ?? enumError(part, first, data);
  if (described || part === 'headers' || first.keyword === 'anyOf' || first.keyword === 'oneOf') return described;
  const where = dotted(segmentsOf(first.instancePath));
  return new SidecarError('ErrInvalidRequest', 400, `${part}${where ? ` ${where}` : ''}: ${first.message ?? 'is invalid'}`);
}
