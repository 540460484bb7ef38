import { invalidItem } from '../errors.js';
import { ExactNumber } from './number.js';

/** Guards against stack exhaustion on hostile input; generous for real documents. */
const MAX_JSON_DEPTH = 256;

/** No lone surrogates (ES2024 `String.prototype.isWellFormed`, absent from the ES2023 lib typings). */
export function isWellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(path: string): string {
  return path === '' ? 'value' : path;
}

function encode(value: unknown, path: string, depth: number): string {
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw invalidItem(`${describe(path)}: expected a finite number`, path);
      return JSON.stringify(value);
    case 'string':
      if (!isWellFormed(value)) throw invalidItem(`${describe(path)}: string contains a lone surrogate`, path);
      return JSON.stringify(value);
  }
  if (value === null) return 'null';
  if (value instanceof ExactNumber) return value.decimal;
  if (depth > MAX_JSON_DEPTH) throw invalidItem(`${describe(path)}: JSON nesting deeper than ${MAX_JSON_DEPTH}`, path);
  if (Array.isArray(value)) {
    const parts = value.map((v, i) => encode(v, `${path}[${i}]`, depth + 1));
    return `[${parts.join(',')}]`;
  }
  if (isPlainObject(value)) {
    const parts: string[] = [];
    for (const key of Object.keys(value).sort()) {
      const child = value[key];
      if (child === undefined) continue; // JSON.stringify semantics: absent
      if (!isWellFormed(key)) throw invalidItem(`${describe(path)}: object key contains a lone surrogate`, path);
      const childPath = path === '' ? key : `${path}.${key}`;
      parts.push(`${JSON.stringify(key)}:${encode(child, childPath, depth + 1)}`);
    }
    return `{${parts.join(',')}}`;
  }
  throw invalidItem(`${describe(path)}: expected a JSON value`, path);
}

/** JSON with object keys sorted recursively (UTF-16 code unit order) and no whitespace. */
export function canonicalJson(value: unknown, path = ''): string {
  return encode(value, path, 0);
}
