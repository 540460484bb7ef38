/** DynamORM Spec (DMS) v0.1 document shapes, as they appear after parsing and validation. */

export const ATTRIBUTE_TYPES = ['S', 'N', 'B', 'BOOL', 'M', 'L', 'SS', 'NS', 'BS', 'NULL'] as const;
export type AttributeType = (typeof ATTRIBUTE_TYPES)[number];

export const KEY_TYPES = ['S', 'N', 'B'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export const FORMATS = ['rfc3339nano', 'unix_seconds', 'int'] as const;
export type Format = (typeof FORMATS)[number];

export interface DmsKey {
  attribute: string;
  type: KeyType;
}

export interface DmsAttribute {
  attribute: string;
  type: AttributeType;
  required?: boolean;
  optional?: boolean;
  omit_empty?: boolean;
  /** `pk`, `sk`, `created_at`, `updated_at`, `version`, `ttl`, `index_pk:<name>`, `index_sk:<name>` */
  roles?: string[];
  format?: Format;
  /** Value is any JSON, stored as an S of canonical JSON. Requires type S. */
  json?: boolean;
  /** Value is raw bytes (base64 on the wire). Requires type B. */
  binary?: boolean;
  /** Present (an object) when the attribute is stored as an encrypted envelope. */
  encryption?: Record<string, unknown>;
  tags?: Record<string, unknown>;
}

export type ProjectionType = 'ALL' | 'KEYS_ONLY' | 'INCLUDE';

export interface DmsIndex {
  name: string;
  type: 'GSI' | 'LSI';
  partition: DmsKey;
  sort?: DmsKey;
  projection?: { type: ProjectionType; fields?: string[] };
}

export interface DmsModel {
  name: string;
  table: { name: string };
  naming?: { convention?: 'camelCase' | 'snake_case' };
  keys: { partition: DmsKey; sort?: DmsKey };
  attributes: DmsAttribute[];
  indexes?: DmsIndex[];
}

export interface DmsDocument {
  dms_version: '0.1';
  namespace?: string;
  models: DmsModel[];
}

/** A validated model plus where it came from (for error messages). */
export interface LoadedModel {
  file: string;
  namespace?: string;
  model: DmsModel;
}
