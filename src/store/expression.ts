import type { AttributeValue } from '../codec/attribute-value.js';
import { SidecarError } from '../errors.js';

export const MAX_EXPRESSION_BYTES = 4096;

/**
 * Accumulates `#name` and `:value` placeholders for one DynamoDB request, so every
 * attribute name — reserved words included — goes through ExpressionAttributeNames.
 */
export class ExpressionContext {
  readonly #names = new Map<string, string>();
  readonly #values: Record<string, AttributeValue> = {};
  #valueCount = 0;

  /** `a.b[0].c` → `#n0.#n1[0].#n2`. */
  path(path: string): string {
    return parsePath(path)
      .map((segment) => this.#name(segment.name) + segment.indexes.map((i) => `[${i}]`).join(''))
      .join('.');
  }

  value(av: AttributeValue): string {
    const placeholder = `:v${this.#valueCount++}`;
    this.#values[placeholder] = av;
    return placeholder;
  }

  #name(name: string): string {
    let placeholder = this.#names.get(name);
    if (!placeholder) {
      placeholder = `#n${this.#names.size}`;
      this.#names.set(name, placeholder);
    }
    return placeholder;
  }

  /** The request fields, omitted when empty as DynamoDB requires. */
  attributes(): {
    ExpressionAttributeNames?: Record<string, string>;
    ExpressionAttributeValues?: Record<string, AttributeValue>;
  } {
    const out: ReturnType<ExpressionContext['attributes']> = {};
    if (this.#names.size > 0) out.ExpressionAttributeNames = Object.fromEntries([...this.#names].map(([n, p]) => [p, n]));
    if (this.#valueCount > 0) out.ExpressionAttributeValues = this.#values;
    return out;
  }
}

export interface PathSegment {
  readonly name: string;
  readonly indexes: number[];
}

const SEGMENT = /^([^.[\]]+)((?:\[\d+\])*)$/;

export function parsePath(path: string): PathSegment[] {
  if (typeof path !== 'string' || path.length === 0) {
    throw new SidecarError('ErrInvalidRequest', 400, 'attribute path must be a non-empty string');
  }
  return path.split('.').map((part) => {
    const match = SEGMENT.exec(part);
    if (!match) throw new SidecarError('ErrInvalidRequest', 400, `invalid attribute path ${JSON.stringify(path)}`);
    const indexes = [...match[2].matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1]));
    return { name: match[1], indexes };
  });
}

export function checkExpressionSize(kind: string, expression: string): void {
  if (Buffer.byteLength(expression) > MAX_EXPRESSION_BYTES) {
    throw new SidecarError('ErrInvalidRequest', 400, `${kind} expression exceeds DynamoDB's ${MAX_EXPRESSION_BYTES}-byte limit`);
  }
}
