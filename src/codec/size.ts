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

/** At least a string's UTF-8 length (each UTF-16 unit is at most 3 bytes), without looking at its characters. */
function utf8Bound(s: string): number {
  return s.length * 3;
}

/** Numbers are stored as base-100 digits plus an exponent byte. */
function numberSize(n: string): number {
  return Math.ceil(significantDigits(n) / 2) + 1;
}

/** At least numberSize(n): every significant digit is a character of n. */
function numberBound(n: string): number {
  return Math.ceil(n.length / 2) + 1;
}

type Measure = { readonly text: (s: string) => number; readonly number: (n: string) => number };
const EXACT: Measure = { text: utf8Length, number: numberSize };
const BOUND: Measure = { text: utf8Bound, number: numberBound };

function valueSize(av: AttributeValue, m: Measure): number {
  if (av.S !== undefined) return m.text(av.S);
  if (av.N !== undefined) return m.number(av.N);
  if (av.B !== undefined) return binaryLength(av.B);
  if (av.BOOL !== undefined || av.NULL !== undefined) return 1;
  let sum = 0;
  if (av.SS !== undefined) for (const s of av.SS) sum += m.text(s);
  else if (av.NS !== undefined) for (const n of av.NS) sum += m.number(n);
  else if (av.BS !== undefined) for (const b of av.BS) sum += binaryLength(b);
  else if (av.L !== undefined) {
    sum = CONTAINER_OVERHEAD;
    for (const v of av.L) sum += ELEMENT_OVERHEAD + valueSize(v, m);
  } else if (av.M !== undefined) {
    sum = CONTAINER_OVERHEAD;
    for (const name in av.M) sum += ELEMENT_OVERHEAD + m.text(name) + valueSize(av.M[name], m);
  }
  return sum;
}

function sizeOf(item: Record<string, AttributeValue>, m: Measure): number {
  let sum = 0;
  for (const name in item) sum += m.text(name) + valueSize(item[name], m);
  return sum;
}

/** Bytes DynamoDB counts for a value (without its attribute name). */
export function attributeValueSize(av: AttributeValue): number {
  return valueSize(av, EXACT);
}

/** Item size in bytes: each attribute name's UTF-8 length plus its value's size. */
export function itemSize(item: Record<string, AttributeValue>): number {
  return sizeOf(item, EXACT);
}

/** invalidItem when the item is over DynamoDB's 400 KB limit. */
export function checkItemSize(item: Record<string, AttributeValue>): void {
  // Nearly every item is far below the limit: an upper bound that reads only lengths settles it.
  if (sizeOf(item, BOUND) <= MAX_ITEM_BYTES) return;
  const size = itemSize(item);
  if (size > MAX_ITEM_BYTES) {
    throw invalidItem(`item is ${size} bytes once encoded; DynamoDB's limit is ${MAX_ITEM_BYTES} bytes`);
  }
}
