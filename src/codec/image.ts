import type { AttributeValue } from './attribute-value.js';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { SidecarError, invalidItem } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import type { AvItem, LogicalItem } from './item.js';
import { normalizeDecimal } from './number.js';

/** The one type member an attribute value carries (`S`, `N`, …, `M`). */
function typeOf(av: AttributeValue): string | undefined {
  return Object.entries(av).find(([, v]) => v !== undefined)?.[0];
}

/**
 * An image read from outside the sidecar (a stream record, an export) must be one the model could have written:
 * the key attributes present, each declared attribute of its DMS type or NULL, numbers decimal. GET is lenient
 * with stored values of another type; a decoded image is not, so a record from the wrong table is caught.
 * Encrypted attributes are left to decryption, which checks the type of what it opens.
 */
export function checkImageFits(model: ModelDef, image: AvItem, what: string): void {
  for (const key of [model.partitionKey, model.sortKey]) {
    if (key && image[key.attribute] === undefined) {
      throw new SidecarError('ErrMissingPrimaryKey', 400, `${what} has no ${key.attribute}, a key attribute of ${model.name}`, { attribute: key.attribute });
    }
  }
  for (const [name, av] of Object.entries(image)) {
    const attr = model.attributes.get(name);
    if (!attr || model.encrypted.has(name)) continue;
    const found = typeOf(av);
    const isKey = name === model.partitionKey.attribute || name === model.sortKey?.attribute;
    if (found !== attr.type && !(found === 'NULL' && !isKey)) {
      throw invalidItem(`${what}: attribute ${name} is ${found ?? 'empty'}, but ${model.name} declares it ${attr.type}`, name);
    }
    const numbers = av.N !== undefined ? [av.N] : (av.NS ?? []);
    if (numbers.some((n) => normalizeDecimal(n) === null)) throw invalidItem(`${what}: attribute ${name} holds a number that is not decimal`, name);
  }
}

const readChecks = new WeakMap<ModelDef, TypeCheck<ModelDef['schemas']['item']>>();

/**
 * The decoded item must be one the model's GET schema (the OpenAPI `{Model}`) admits: a non-empty key, a timestamp
 * that is RFC 3339, an integer where the format says so, distinct set members. Errors name the attribute and the
 * rule, never the value.
 */
export function checkDecodedFits(model: ModelDef, item: LogicalItem, what: string): void {
  let check = readChecks.get(model);
  if (!check) {
    check = TypeCompiler.Compile(model.schemas.item);
    readChecks.set(model, check);
  }
  if (check.Check(item)) return;
  const first = check.Errors(item).First();
  const name = first?.path.split('/')[1] ?? '';
  throw invalidItem(`${what}: attribute ${name} does not fit ${model.name}: ${first?.message ?? 'invalid value'}`, name || undefined);
}
