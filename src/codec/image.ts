import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { SidecarError, invalidItem } from '../errors.js';
import type { ModelDef } from '../model/index.js';
import type { AvItem } from './item.js';
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
