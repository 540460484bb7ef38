import { binaryLength, type AttributeValue } from './attribute-value.js';
import { invalidItem } from '../errors.js';
import { significantDigits } from './number.js';

/** DynamoDB's maximum item size, attribute names included. */
export const MAX_ITEM_BYTES = 400 * 1024;

/** Container overhead and per-element overhead for M and L. */
const CONTAINER_OVERHEAD = 3;
const ELEMENT_OVERHEAD = 1;

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Numbers are stored as base-100 digits plus an exponent byte. */
function numberSize(n: string): number {
  return Math.ceil(significantDigits(n) / 2) + 1;
}

/** Bytes DynamoDB counts for a value (without its attribute name). */
export function attributeValueSize(av: AttributeValue): number {
  if (av.S !== undefined) return utf8Length(av.S);
  if (av.N !== undefined) return numberSize(av.N);
  if (av.B !== undefined) return binaryLength(av.B);
  if (av.BOOL !== undefined || av.NULL !== undefined) return 1;
  if (av.SS !== undefined) return av.SS.reduce((sum, s) => sum + utf8Length(s), 0);
  if (av.NS !== undefined) return av.NS.reduce((sum, n) => sum + numberSize(n), 0);
  if (av.BS !== undefined) return av.BS.reduce((sum, b) => sum + binaryLength(b), 0);
  if (av.L !== undefined) {
    return av.L.reduce((sum, v) => sum + ELEMENT_OVERHEAD + attributeValueSize(v), CONTAINER_OVERHEAD);
  }
  if (av.M !== undefined) {
    return Object.entries(av.M).reduce(
      (sum, [name, v]) => sum + ELEMENT_OVERHEAD + utf8Length(name) + attributeValueSize(v),
      CONTAINER_OVERHEAD,
    );
  }
  return 0;
}

/** Item size in bytes: each attribute name's UTF-8 length plus its value's size. */
export function itemSize(item: Record<string, AttributeValue>): number {
  return Object.entries(item).reduce((sum, [name, v]) => sum + utf8Length(name) + attributeValueSize(v), 0);
}

/** invalidItem when the item is over DynamoDB's 400 KB limit. */
export function checkItemSize(item: Record<string, AttributeValue>): void {
  const size = itemSize(item);
  if (size > MAX_ITEM_BYTES) {
    throw invalidItem(`item is ${size} bytes once encoded; DynamoDB's limit is ${MAX_ITEM_BYTES} bytes`);
  }
}
