import { Type, type TSchema } from '@sinclair/typebox/type';
import type { AjvError } from './validation-messages.js';

export type Validate = ((data: unknown) => boolean) & { errors?: AjvError[] | null };
/** Compiles a schema with the app's shared schemas (Fastify's Ajv instance), and `model`'s when it refers to them. */
export type Compile = (schema: TSchema, model?: string) => Validate;

/** A body whose `items` array holds one union of branches across models, each branch tagged by `allOf[0]` (model, op). */
export interface ItemsUnion {
  /** The body schema around a union of items; `items` must be its first property. */
  readonly body: (union: TSchema) => TSchema;
  /** Each model's branches, in the order the union lists them. */
  readonly branches: ReadonlyArray<readonly [model: string, branches: readonly TSchema[]]>;
}

const ITEMS = '#/properties/items/items';
const branchPath = (n: number) => `${ITEMS}/anyOf/${n}`;

/** The documented schema: the body around every model's branches as one union. */
export const wholeUnion = (spec: ItemsUnion): TSchema => spec.body(Type.Union(spec.branches.flatMap(([, branches]) => branches)));

/** A branch's tags as its leading `allOf` states them: required members, then each member's `const`. */
interface Tags {
  readonly required: readonly string[];
  readonly values: ReadonlyArray<readonly [member: string, value: string]>;
}

function tagsOf(branch: TSchema): Tags {
  const tag = (branch as unknown as { allOf: [{ required: string[]; properties: Record<string, { const: string }> }] }).allOf[0];
  return { required: tag.required, values: Object.entries(tag.properties).map(([k, v]) => [k, v.const] as const) };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A validator that answers exactly as the whole union would (same errors, so the same problem messages), without
 * compiling it: with 50 models Ajv took 5–10 s and hundreds of MB to compile the transaction union on its first
 * request, with the event loop blocked. Instead:
 * - the body is checked against an envelope whose items may be anything;
 * - each item is matched against every branch's tags (model, op) here, as Ajv would (`type`, then `allOf`: required,
 *   then each `const`); when none matches, those tag errors are the union's errors;
 * - when one matches, the item is checked against its own model's branches, compiled on that model's first use, with
 *   the other branches' tag errors in their places.
 * `test/items-by-model.test.ts` compares the errors with the whole union's, compiled by Ajv, on a set of bad bodies.
 */
export function itemsByModel(spec: ItemsUnion, compile: Compile): Validate {
  const firstProperty = Object.keys((spec.body(Type.Unknown()) as unknown as { properties: object }).properties)[0];
  if (firstProperty !== 'items') throw new Error("itemsByModel: items must be the body's first property");
  const places = new Map<string, { start: number; branches: readonly TSchema[] }>();
  const tags: Tags[] = [];
  for (const [model, branches] of spec.branches) {
    places.set(model, { start: tags.length, branches });
    for (const branch of branches) tags.push(tagsOf(branch));
  }
  const envelope = compile(spec.body(Type.Unknown()));
  const perModel = new Map<string, Validate>();
  const anyOf = (at: string): AjvError => ({ instancePath: at, schemaPath: `${ITEMS}/anyOf`, keyword: 'anyOf', params: {}, message: 'must match a schema in anyOf' });

  /** Branch n's tag error for this item, as Ajv reports it; undefined when its tags accept it (no allocation on that path). */
  const tagError = (item: unknown, n: number, at: string): AjvError | undefined => {
    if (!isObject(item)) return { instancePath: at, schemaPath: `${branchPath(n)}/type`, keyword: 'type', params: { type: 'object' }, message: 'must be object' };
    for (const k of tags[n].required) {
      if (item[k] === undefined) {
        return { instancePath: at, schemaPath: `${branchPath(n)}/allOf/0/required`, keyword: 'required', params: { missingProperty: k }, message: `must have required property '${k}'` };
      }
    }
    for (const [member, value] of tags[n].values) {
      if (item[member] !== value) {
        return { instancePath: `${at}/${member}`, schemaPath: `${branchPath(n)}/allOf/0/properties/${member}/const`, keyword: 'const', params: { allowedValue: value }, message: 'must be equal to constant' };
      }
    }
    return undefined;
  };

  const itemErrors = (item: unknown, index: number): AjvError[] | undefined => {
    const at = `/items/${index}`;
    const model = isObject(item) && typeof item.model === 'string' ? item.model : undefined;
    const place = model === undefined ? undefined : places.get(model);
    let matched = false;
    if (place) for (let n = place.start; !matched && n < place.start + place.branches.length; n++) matched = tagError(item, n, at) === undefined;
    if (!place || !matched) return [...tags.map((_, n) => tagError(item, n, at)!), anyOf(at)];
    let check = perModel.get(model!);
    if (!check) {
      // The model's branches at their places in the union, the others `false`: Ajv then writes every path as the whole
      // union would (a referenced schema's errors carry its own paths, so paths can't be rewritten after the fact).
      const anyOf = tags.map((_, n) => (n >= place.start && n < place.start + place.branches.length ? place.branches[n - place.start] : false));
      check = compile(Type.Unsafe({ type: 'object', properties: { items: { type: 'array', items: { anyOf } } } }), model);
      perModel.set(model!, check);
    }
    if (check({ items: [item] }) === true) return undefined;
    return (check.errors ?? []).map((e) =>
      e.keyword === 'false schema' && e.instancePath === '/items/0'
        ? tagError(item, Number(/\/anyOf\/(\d+)\/false schema$/.exec(e.schemaPath)![1]), at)!
        : { ...e, instancePath: `${at}${e.instancePath.slice('/items/0'.length)}` },
    );
  };

  const validate: Validate = (body) => {
    const passed = envelope(body) === true;
    const outer = passed ? null : [...(envelope.errors ?? [])];
    // Ajv checks the members before `items` (an unknown member, `items` not an array or of the wrong length) first,
    // then each item in turn, then the members after it.
    const afterItems = outer !== null && outer[0].schemaPath.startsWith('#/properties/') && !outer[0].schemaPath.startsWith('#/properties/items/');
    if (outer && !afterItems) {
      validate.errors = outer;
      return false;
    }
    const items = (body as { items: unknown[] }).items;
    for (let i = 0; i < items.length; i++) {
      const errors = itemErrors(items[i], i);
      if (errors) {
        validate.errors = errors;
        return false;
      }
    }
    validate.errors = outer;
    return passed;
  };
  return validate;
}
