import type { DmsAttribute } from '../dms/types.js';
import { SidecarError, invalidItem } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import { encodeAttributeForWrite, expectedVersionOf, isKeyAttribute } from '../codec/item.js';
import type { CryptoPort } from './crypto-port.js';
import { encodeNatural, encodeValue, toN } from '../codec/index.js';
import type { ExpressionContext } from './expression.js';

/** Body of PATCH: each clause maps attribute names to values (or lists names for `remove`). */
export interface PatchBody {
  set?: Record<string, unknown>;
  setIfNotExists?: Record<string, unknown>;
  remove?: string[];
  add?: Record<string, unknown>;
  delete?: Record<string, unknown>;
  append?: Record<string, unknown>;
  prepend?: Record<string, unknown>;
  version?: unknown;
  condition?: unknown;
}

export interface BuiltPatch {
  readonly expression: string;
  readonly expectedVersion: number | undefined;
}

const CLAUSES = ['set', 'setIfNotExists', 'remove', 'add', 'delete', 'append', 'prepend'] as const;
const ADDABLE = new Set(['N', 'SS', 'NS', 'BS']);
const SETS = new Set(['SS', 'NS', 'BS']);

class PatchBuilder {
  readonly set: string[] = [];
  readonly remove: string[] = [];
  readonly add: string[] = [];
  readonly delete: string[] = [];
  readonly #touched = new Set<string>();

  constructor(
    private readonly model: ModelDef,
    private readonly ctx: ExpressionContext,
    private readonly crypto: CryptoPort,
  ) {}

  attribute(clause: string, name: string): DmsAttribute {
    const attr = this.model.attributes.get(name);
    if (!attr) throw invalidItem(`${clause}: unknown attribute ${name}`, name);
    if (isKeyAttribute(this.model, name)) throw invalidItem(`${clause}: key attribute ${name} cannot be updated`, name);
    if (this.model.lifecycle.has(name)) throw invalidItem(`${clause}: ${name} is owned by the sidecar`, name);
    if (this.#touched.has(name)) throw invalidItem(`attribute ${name} appears in more than one update clause`, name);
    this.#touched.add(name);
    return attr;
  }

  noEncrypted(clause: string, name: string): void {
    if (this.model.encrypted.has(name)) {
      throw new SidecarError('ErrInvalidRequest', 400, `${clause} is not supported on encrypted attribute ${name}`);
    }
  }

  /** `set` / `setIfNotExists`; the value of an encrypted attribute is sealed before it enters the expression. */
  async assign(name: string, value: unknown, ifNotExists: boolean): Promise<void> {
    const attr = this.attribute(ifNotExists ? 'setIfNotExists' : 'set', name);
    const plain = encodeAttributeForWrite(this.model, attr, value);
    const av = plain && this.model.encrypted.has(name) ? await this.crypto.encryptValue(this.model, name, plain) : plain;
    if (!av) {
      if (attr.required) throw invalidItem(`required attribute ${name} cannot be set to an empty value`, name);
      // Name the path only when it is used: an unused ExpressionAttributeName is refused by DynamoDB.
      if (!ifNotExists) this.remove.push(this.ctx.path(name));
      return;
    }
    const path = this.ctx.path(name);
    if (plain?.NULL && attr.required) throw invalidItem(`required attribute ${name} cannot be null`, name);
    const value_ = this.ctx.value(av);
    this.set.push(ifNotExists ? `${path} = if_not_exists(${path}, ${value_})` : `${path} = ${value_}`);
  }

  drop(name: unknown): void {
    if (typeof name !== 'string') throw invalidItem('remove takes attribute names');
    const attr = this.attribute('remove', name);
    if (attr.required) throw invalidItem(`required attribute ${name} cannot be removed`, name);
    this.remove.push(this.ctx.path(name));
  }

  addTo(name: string, value: unknown): void {
    const attr = this.attribute('add', name);
    this.noEncrypted('add', name);
    if (!ADDABLE.has(attr.type) || attr.json) throw invalidItem(`add needs a number or set attribute; ${name} is ${attr.type}`, name);
    const av = attr.type === 'N' ? { N: toN(value, name) } : this.#nonEmptySet('add', attr, value);
    this.add.push(`${this.ctx.path(name)} ${this.ctx.value(av)}`);
  }

  deleteFrom(name: string, value: unknown): void {
    const attr = this.attribute('delete', name);
    this.noEncrypted('delete', name);
    if (!SETS.has(attr.type)) throw invalidItem(`delete needs a set attribute; ${name} is ${attr.type}`, name);
    this.delete.push(`${this.ctx.path(name)} ${this.ctx.value(this.#nonEmptySet('delete', attr, value))}`);
  }

  extend(name: string, value: unknown, atEnd: boolean): void {
    const clause = atEnd ? 'append' : 'prepend';
    const attr = this.attribute(clause, name);
    this.noEncrypted(clause, name);
    if (attr.type !== 'L') throw invalidItem(`${clause} needs a list attribute; ${name} is ${attr.type}`, name);
    if (!Array.isArray(value) || value.length === 0) throw invalidItem(`${clause}: ${name} needs a non-empty array`, name);
    const path = this.ctx.path(name);
    const items = this.ctx.value(encodeNatural(value, name, 0));
    const current = `if_not_exists(${path}, ${this.ctx.value({ L: [] })})`;
    this.set.push(`${path} = list_append(${atEnd ? `${current}, ${items}` : `${items}, ${current}`})`);
  }

  #nonEmptySet(clause: string, attr: DmsAttribute, value: unknown) {
    const av = encodeValue({ ...attr, omit_empty: false }, value, attr.attribute);
    if (!av || av.NULL) throw invalidItem(`${clause}: ${attr.attribute} needs a non-empty array`, attr.attribute);
    return av;
  }
}

function entries(clause: string, value: unknown): [string, unknown][] {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidItem(`${clause} must be an object`);
  return Object.entries(value);
}

/** Build the UpdateExpression of a PATCH, plus lifecycle: `updatedAt` = now and `ADD version 1`. */
export async function buildPatch(
  model: ModelDef,
  patch: PatchBody,
  ctx: ExpressionContext,
  now: string,
  crypto: CryptoPort,
): Promise<BuiltPatch> {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) throw invalidItem('update body must be an object');
  const b = new PatchBuilder(model, ctx, crypto);
  for (const [name, value] of entries('set', patch.set)) await b.assign(name, value, false);
  for (const [name, value] of entries('setIfNotExists', patch.setIfNotExists)) await b.assign(name, value, true);
  if (patch.remove !== undefined) {
    if (!Array.isArray(patch.remove)) throw invalidItem('remove must be an array of attribute names');
    for (const name of patch.remove) b.drop(name);
  }
  for (const [name, value] of entries('add', patch.add)) b.addTo(name, value);
  for (const [name, value] of entries('delete', patch.delete)) b.deleteFrom(name, value);
  for (const [name, value] of entries('append', patch.append)) b.extend(name, value, true);
  for (const [name, value] of entries('prepend', patch.prepend)) b.extend(name, value, false);
  if (b.set.length + b.remove.length + b.add.length + b.delete.length === 0) {
    throw new SidecarError('ErrInvalidRequest', 400, `an update needs at least one of ${CLAUSES.join(', ')}`);
  }
  if (model.updatedAt) b.set.push(`${ctx.path(model.updatedAt)} = ${ctx.value({ S: now })}`);
  if (model.version) b.add.push(`${ctx.path(model.version)} ${ctx.value({ N: '1' })}`);
  const expression = [
    b.set.length ? `SET ${b.set.join(', ')}` : '',
    b.remove.length ? `REMOVE ${b.remove.join(', ')}` : '',
    b.add.length ? `ADD ${b.add.join(', ')}` : '',
    b.delete.length ? `DELETE ${b.delete.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  return { expression, expectedVersion: expectedVersionOf(patch.version, 'version') };
}
