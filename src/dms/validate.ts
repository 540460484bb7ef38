import {
  ATTRIBUTE_TYPES,
  FORMATS,
  KEY_TYPES,
  type AttributeType,
  type DmsKey,
  type DmsModel,
  type Format,
} from './types.js';

type Obj = Record<string, unknown>;
type Convention = 'camelCase' | 'snake_case';

const TOP_LEVEL_KEYS = ['dms_version', 'namespace', 'models'];
const MODEL_KEYS = ['name', 'table', 'naming', 'keys', 'attributes', 'indexes'];
const TABLE_KEYS = ['name'];
const NAMING_KEYS = ['convention'];
const MODEL_KEYS_KEYS = ['partition', 'sort'];
const KEY_DEF_KEYS = ['attribute', 'type'];
const ATTRIBUTE_KEYS = [
  'attribute',
  'type',
  'required',
  'optional',
  'omit_empty',
  'roles',
  'format',
  'json',
  'binary',
  'encryption',
  'tags',
];
const BOOLEAN_FLAGS = ['required', 'optional', 'omit_empty', 'json', 'binary'] as const;
const INDEX_KEYS = ['name', 'type', 'partition', 'sort', 'projection'];
const PROJECTION_KEYS = ['type', 'fields'];
const INDEX_TYPES = ['GSI', 'LSI'] as const;
const PROJECTION_TYPES = ['ALL', 'KEYS_ONLY', 'INCLUDE'] as const;
const CONVENTIONS: readonly Convention[] = ['camelCase', 'snake_case'];

const MODEL_NAME_RE = /^[A-Za-z][A-Za-z0-9_]*$/;
const AWS_NAME_RE = /^[A-Za-z0-9_.-]{3,255}$/;
const CAMEL_CASE_RE = /^[a-z][A-Za-z0-9]*$/;
const SNAKE_CASE_RE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
const CAMEL_CASE_EXCEPTIONS = new Set(['PK', 'SK']);

const SIMPLE_ROLES = new Set(['pk', 'sk', 'created_at', 'updated_at', 'version', 'ttl']);
const INDEX_ROLE_RE = /^index_(pk|sk):(.*)$/;
const ROLE_TYPES: Record<string, AttributeType> = { created_at: 'S', updated_at: 'S', version: 'N', ttl: 'N' };
const FORMAT_TYPES: Record<Format, AttributeType> = { rfc3339nano: 'S', unix_seconds: 'N', int: 'N' };

class Reporter {
  constructor(
    readonly errors: string[],
    readonly ctx: string,
  ) {}

  at(segment: string): Reporter {
    return new Reporter(this.errors, `${this.ctx}: ${segment}`);
  }

  error(message: string): void {
    this.errors.push(`${this.ctx}: ${message}`);
  }
}

interface KeySchema {
  partition?: DmsKey;
  sort?: DmsKey;
  complete: boolean;
}

interface AttributeInfo {
  r: Reporter;
  label: string;
  name?: string;
  type?: AttributeType;
  raw: Obj;
  roles: string[];
}

interface IndexInfo {
  r: Reporter;
  label: string;
  name?: string;
  type?: 'GSI' | 'LSI';
  partition?: DmsKey;
  sort?: DmsKey;
  complete: boolean;
  fields?: string[];
}

/** Per-model facts gathered during validation, used by the cross-model checks. */
export interface ModelEntry {
  file: string;
  label: string;
  name?: string;
  tableName?: string;
  keys: KeySchema;
  indexes: IndexInfo[];
  model?: DmsModel;
}

export interface CheckedDocument {
  namespace?: string;
  entries: ModelEntry[];
  errors: string[];
}

const isObject = (value: unknown): value is Obj =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

const oneOf = <T extends string>(values: readonly T[], value: unknown): value is T =>
  typeof value === 'string' && (values as readonly string[]).includes(value);

const isNonEmptyString = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

const keyLabel = (key: DmsKey | undefined): string => (key ? `${key.attribute} ${key.type}` : 'none');

function checkAllowedKeys(obj: Obj, allowed: readonly string[], r: Reporter): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) r.error(`unknown key "${key}" (allowed: ${allowed.join(', ')})`);
  }
}

function requireObject(value: unknown, r: Reporter, what: string): value is Obj {
  if (isObject(value)) return true;
  r.error(`${what} must be an object (got ${show(value)})`);
  return false;
}

function checkKeyDef(value: unknown, r: Reporter): DmsKey | undefined {
  if (!requireObject(value, r, 'key definition')) return undefined;
  checkAllowedKeys(value, KEY_DEF_KEYS, r);
  let ok = true;
  if (!isNonEmptyString(value.attribute)) {
    r.error(`attribute must be a non-empty string (got ${show(value.attribute)})`);
    ok = false;
  }
  if (!oneOf(KEY_TYPES, value.type)) {
    r.error(`type must be one of ${KEY_TYPES.join(', ')} (got ${show(value.type)})`);
    ok = false;
  }
  return ok ? { attribute: value.attribute as string, type: value.type as DmsKey['type'] } : undefined;
}

function checkModelName(value: unknown, r: Reporter): string | undefined {
  if (!isNonEmptyString(value)) {
    r.error(`name must be a non-empty string (got ${show(value)})`);
    return undefined;
  }
  if (!MODEL_NAME_RE.test(value)) {
    r.error(`name "${value}" must match ${MODEL_NAME_RE.source} (it is used in URL paths and OpenAPI names)`);
  }
  return value;
}

function checkTable(value: unknown, r: Reporter): string | undefined {
  if (!requireObject(value, r, 'table')) return undefined;
  checkAllowedKeys(value, TABLE_KEYS, r);
  if (typeof value.name !== 'string' || !AWS_NAME_RE.test(value.name)) {
    r.error(`name must be a DynamoDB table name matching ${AWS_NAME_RE.source} (got ${show(value.name)})`);
    return undefined;
  }
  return value.name;
}

function checkNaming(value: unknown, r: Reporter): Convention | undefined {
  if (value === undefined) return undefined;
  if (!requireObject(value, r, 'naming')) return undefined;
  checkAllowedKeys(value, NAMING_KEYS, r);
  if (value.convention === undefined) return undefined;
  if (!oneOf(CONVENTIONS, value.convention)) {
    r.error(`convention must be one of ${CONVENTIONS.join(', ')} (got ${show(value.convention)})`);
    return undefined;
  }
  return value.convention;
}

function checkModelKeys(value: unknown, r: Reporter): KeySchema {
  if (!requireObject(value, r, 'keys')) return { complete: false };
  checkAllowedKeys(value, MODEL_KEYS_KEYS, r);
  if (value.partition === undefined) {
    r.error('partition key is required');
    return { complete: false };
  }
  const partition = checkKeyDef(value.partition, r.at('partition'));
  const sort = value.sort === undefined ? undefined : checkKeyDef(value.sort, r.at('sort'));
  const complete = partition !== undefined && (value.sort === undefined || sort !== undefined);
  if (partition && sort && partition.attribute === sort.attribute) {
    r.error(`sort key attribute "${sort.attribute}" must differ from the partition key attribute`);
  }
  return { partition, sort, complete };
}

function checkProjection(value: unknown, r: Reporter): string[] | undefined {
  if (value === undefined) return undefined;
  if (!requireObject(value, r, 'projection')) return undefined;
  checkAllowedKeys(value, PROJECTION_KEYS, r);
  if (!oneOf(PROJECTION_TYPES, value.type)) {
    r.error(`type must be one of ${PROJECTION_TYPES.join(', ')} (got ${show(value.type)})`);
    return undefined;
  }
  if (value.type !== 'INCLUDE') {
    if (value.fields !== undefined) r.error(`fields is only allowed with projection type INCLUDE (got ${value.type})`);
    return undefined;
  }
  if (!Array.isArray(value.fields) || value.fields.length === 0) {
    r.error('type INCLUDE requires a non-empty fields list');
    return undefined;
  }
  const fields = value.fields.filter(isNonEmptyString);
  if (fields.length !== value.fields.length) r.error('fields must be non-empty strings');
  return fields;
}

function checkIndex(value: unknown, pos: number, r: Reporter): IndexInfo {
  const name = isObject(value) && isNonEmptyString(value.name) ? value.name : undefined;
  const label = `indexes[${pos}]${name ? ` (${name})` : ''}`;
  const ir = r.at(label);
  const info: IndexInfo = { r: ir, label, name, complete: false };
  if (!requireObject(value, ir, 'index')) return info;
  checkAllowedKeys(value, INDEX_KEYS, ir);
  if (typeof value.name !== 'string' || !AWS_NAME_RE.test(value.name)) {
    ir.error(`name must be a DynamoDB index name matching ${AWS_NAME_RE.source} (got ${show(value.name)})`);
  }
  if (oneOf(INDEX_TYPES, value.type)) info.type = value.type;
  else ir.error(`type must be one of ${INDEX_TYPES.join(', ')} (got ${show(value.type)})`);
  if (value.partition === undefined) ir.error('partition key is required');
  else info.partition = checkKeyDef(value.partition, ir.at('partition'));
  if (value.sort !== undefined) info.sort = checkKeyDef(value.sort, ir.at('sort'));
  info.complete = info.partition !== undefined && (value.sort === undefined || info.sort !== undefined);
  if (info.partition && info.sort && info.partition.attribute === info.sort.attribute) {
    ir.error(`sort key attribute "${info.sort.attribute}" must differ from the partition key attribute`);
  }
  info.fields = checkProjection(value.projection, ir.at('projection'));
  return info;
}

function checkIndexes(value: unknown, r: Reporter): IndexInfo[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    r.error(`indexes must be an array (got ${show(value)})`);
    return [];
  }
  const indexes = value.map((raw, pos) => checkIndex(raw, pos, r));
  const seen = new Map<string, IndexInfo>();
  for (const index of indexes) {
    if (index.name === undefined) continue;
    const first = seen.get(index.name);
    if (first) index.r.error(`duplicate index name "${index.name}" (also ${first.label})`);
    else seen.set(index.name, index);
  }
  return indexes;
}

function checkNamingConvention(name: string, convention: Convention | undefined, r: Reporter): void {
  if (convention === 'camelCase' && !CAMEL_CASE_RE.test(name) && !CAMEL_CASE_EXCEPTIONS.has(name)) {
    r.error(`attribute name "${name}" violates naming convention camelCase (${CAMEL_CASE_RE.source}, or PK/SK)`);
  }
  if (convention === 'snake_case' && !SNAKE_CASE_RE.test(name)) {
    r.error(`attribute name "${name}" violates naming convention snake_case (${SNAKE_CASE_RE.source})`);
  }
}

function checkFlags(raw: Obj, type: AttributeType | undefined, r: Reporter): void {
  for (const flag of BOOLEAN_FLAGS) {
    if (raw[flag] !== undefined && typeof raw[flag] !== 'boolean') {
      r.error(`${flag} must be a boolean (got ${show(raw[flag])})`);
    }
  }
  if (raw.required === true && raw.optional === true) r.error('required and optional cannot both be true');
  if (raw.json === true && type !== undefined && type !== 'S') r.error(`json: true requires type S (got ${type})`);
  if (raw.binary === true && type !== undefined && type !== 'B') r.error(`binary: true requires type B (got ${type})`);
}

function checkFormat(value: unknown, type: AttributeType | undefined, r: Reporter): void {
  if (value === undefined) return;
  if (!oneOf(FORMATS, value)) {
    r.error(`format must be one of ${FORMATS.join(', ')} (got ${show(value)})`);
    return;
  }
  const expected = FORMAT_TYPES[value];
  if (type !== undefined && type !== expected) r.error(`format ${value} requires type ${expected} (got ${type})`);
}

function checkRoleList(value: unknown, r: Reporter): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    r.error(`roles must be an array of strings (got ${show(value)})`);
    return [];
  }
  const roles: string[] = [];
  for (const role of value) {
    if (typeof role !== 'string') r.error(`roles must be strings (got ${show(role)})`);
    else if (roles.includes(role)) r.error(`role "${role}" is listed twice`);
    else roles.push(role);
  }
  return roles;
}

function checkAttribute(value: unknown, pos: number, convention: Convention | undefined, r: Reporter): AttributeInfo {
  const name = isObject(value) && isNonEmptyString(value.attribute) ? value.attribute : undefined;
  const label = `attributes[${pos}]${name ? ` (${name})` : ''}`;
  const ar = r.at(label);
  const info: AttributeInfo = { r: ar, label, name, raw: {}, roles: [] };
  if (!requireObject(value, ar, 'attribute')) return info;
  info.raw = value;
  checkAllowedKeys(value, ATTRIBUTE_KEYS, ar);
  if (name === undefined) ar.error(`attribute must be a non-empty string (got ${show(value.attribute)})`);
  else checkNamingConvention(name, convention, ar);
  if (oneOf(ATTRIBUTE_TYPES, value.type)) info.type = value.type;
  else ar.error(`type must be one of ${ATTRIBUTE_TYPES.join(', ')} (got ${show(value.type)})`);
  checkFlags(value, info.type, ar);
  checkFormat(value.format, info.type, ar);
  if (value.encryption !== undefined && !isObject(value.encryption)) {
    ar.error(`encryption must be an object (got ${show(value.encryption)})`);
  }
  if (value.tags !== undefined && !isObject(value.tags)) ar.error(`tags must be an object (got ${show(value.tags)})`);
  info.roles = checkRoleList(value.roles, ar);
  return info;
}

function checkAttributes(value: unknown, convention: Convention | undefined, r: Reporter): AttributeInfo[] {
  if (!Array.isArray(value) || value.length === 0) {
    r.error(`attributes must be a non-empty array (got ${show(value)})`);
    return [];
  }
  const attributes = value.map((raw, pos) => checkAttribute(raw, pos, convention, r));
  const seen = new Map<string, AttributeInfo>();
  for (const attribute of attributes) {
    if (attribute.name === undefined) continue;
    const first = seen.get(attribute.name);
    if (first) attribute.r.error(`duplicate attribute "${attribute.name}" (also ${first.label})`);
    else seen.set(attribute.name, attribute);
  }
  return attributes;
}

function checkKeyBinding(key: DmsKey | undefined, attributes: Map<string, AttributeInfo>, r: Reporter): void {
  if (!key) return;
  const attribute = attributes.get(key.attribute);
  if (!attribute) r.error(`attribute "${key.attribute}" is not declared in attributes`);
  else if (attribute.type !== undefined && attribute.type !== key.type) {
    r.error(`type ${key.type} does not match attribute "${key.attribute}" declared type ${attribute.type}`);
  }
}

function checkTableKeyAttribute(attribute: AttributeInfo): void {
  const { raw, r } = attribute;
  if (raw.optional === true) r.error('key attributes cannot be optional');
  if (raw.json === true) r.error('json is not allowed on key attributes');
  if (raw.omit_empty === true) r.error('omit_empty is not allowed on key attributes');
}

function checkLsi(index: IndexInfo, keys: KeySchema): void {
  if (index.type !== 'LSI') return;
  if (!index.sort) index.r.error('LSI requires a sort key');
  if (keys.partition && index.partition && index.partition.attribute !== keys.partition.attribute) {
    index.r.error(
      `LSI partition attribute "${index.partition.attribute}" must be the table partition key "${keys.partition.attribute}"`,
    );
  }
  if (keys.partition && !keys.sort) index.r.error('LSI requires the model to have a sort key');
}

function checkProjectionFields(index: IndexInfo, attributes: Map<string, AttributeInfo>): void {
  for (const field of index.fields ?? []) {
    if (!attributes.has(field)) index.r.error(`projection.fields: "${field}" is not a declared attribute`);
  }
}

function checkKeyUsage(keys: KeySchema, indexes: IndexInfo[], attributes: AttributeInfo[], r: Reporter): void {
  const byName = new Map(attributes.filter((a) => a.name !== undefined).map((a) => [a.name as string, a]));
  checkKeyBinding(keys.partition, byName, r.at('keys.partition'));
  checkKeyBinding(keys.sort, byName, r.at('keys.sort'));
  for (const index of indexes) {
    checkKeyBinding(index.partition, byName, index.r.at('partition'));
    checkKeyBinding(index.sort, byName, index.r.at('sort'));
    checkLsi(index, keys);
    checkProjectionFields(index, byName);
  }
  const tableKeys = new Set([keys.partition?.attribute, keys.sort?.attribute]);
  const indexKeys = new Set(indexes.flatMap((i) => [i.partition?.attribute, i.sort?.attribute]));
  for (const attribute of attributes) {
    if (attribute.name === undefined) continue;
    if (tableKeys.has(attribute.name)) checkTableKeyAttribute(attribute);
    if ((tableKeys.has(attribute.name) || indexKeys.has(attribute.name)) && attribute.raw.encryption !== undefined) {
      attribute.r.error('encryption is not allowed on key or index key attributes');
    }
  }
}

function roleTarget(role: string, keys: KeySchema, indexes: Map<string, IndexInfo>): DmsKey | string | undefined {
  if (role === 'pk') return keys.partition;
  if (role === 'sk') return keys.sort ?? (keys.complete ? 'the model has no sort key' : undefined);
  const match = INDEX_ROLE_RE.exec(role);
  if (!match) return undefined;
  const index = indexes.get(match[2]);
  if (!index) return `unknown index "${match[2]}"`;
  if (match[1] === 'pk') return index.partition;
  return index.sort ?? (index.complete ? `index "${match[2]}" has no sort key` : undefined);
}

function isKnownRole(role: string): boolean {
  return SIMPLE_ROLES.has(role) || INDEX_ROLE_RE.test(role);
}

function checkRoleOnAttribute(
  role: string,
  attribute: AttributeInfo,
  keys: KeySchema,
  indexes: Map<string, IndexInfo>,
): void {
  const { r } = attribute;
  const expectedType = ROLE_TYPES[role];
  if (expectedType && attribute.type !== undefined && attribute.type !== expectedType) {
    r.error(`role "${role}" requires type ${expectedType} (got ${attribute.type})`);
  }
  const target = roleTarget(role, keys, indexes);
  if (typeof target === 'string') r.error(`role "${role}" is invalid: ${target}`);
  else if (target && attribute.name !== undefined && target.attribute !== attribute.name) {
    r.error(`role "${role}" must be on attribute "${target.attribute}"`);
  }
}

function checkKeyCarriesRole(attribute: AttributeInfo, keys: KeySchema): void {
  if (attribute.roles.length === 0 || attribute.name === undefined) return;
  if (attribute.name === keys.partition?.attribute && !attribute.roles.includes('pk')) {
    attribute.r.error('partition key attribute declares roles but not "pk"');
  }
  if (attribute.name === keys.sort?.attribute && !attribute.roles.includes('sk')) {
    attribute.r.error('sort key attribute declares roles but not "sk"');
  }
}

function checkRoles(attributes: AttributeInfo[], keys: KeySchema, indexInfos: IndexInfo[]): void {
  const indexes = new Map(indexInfos.filter((i) => i.name !== undefined).map((i) => [i.name as string, i]));
  const owners = new Map<string, AttributeInfo>();
  for (const attribute of attributes) {
    for (const role of attribute.roles) {
      if (!isKnownRole(role)) {
        attribute.r.error(
          `unknown role "${role}" (known: ${[...SIMPLE_ROLES].join(', ')}, index_pk:<index>, index_sk:<index>)`,
        );
        continue;
      }
      const owner = owners.get(role);
      if (owner) attribute.r.error(`role "${role}" is already assigned to ${owner.label}`);
      else owners.set(role, attribute);
      checkRoleOnAttribute(role, attribute, keys, indexes);
    }
    checkKeyCarriesRole(attribute, keys);
  }
}

function modelLabel(value: unknown, pos: number): string {
  return isObject(value) && isNonEmptyString(value.name) ? `model "${value.name}"` : `models[${pos}]`;
}

function checkModel(value: unknown, pos: number, file: string, errors: string[]): ModelEntry {
  const label = modelLabel(value, pos);
  const r = new Reporter(errors, `${file}: ${label}`);
  const entry: ModelEntry = { file, label, keys: { complete: false }, indexes: [] };
  if (!requireObject(value, r, 'model')) return entry;
  const before = errors.length;
  checkAllowedKeys(value, MODEL_KEYS, r);
  entry.name = checkModelName(value.name, r);
  entry.tableName = checkTable(value.table, r.at('table'));
  const convention = checkNaming(value.naming, r.at('naming'));
  entry.keys = value.keys === undefined ? missingKeys(r) : checkModelKeys(value.keys, r.at('keys'));
  entry.indexes = checkIndexes(value.indexes, r);
  const attributes = checkAttributes(value.attributes, convention, r);
  checkKeyUsage(entry.keys, entry.indexes, attributes, r);
  checkRoles(attributes, entry.keys, entry.indexes);
  if (errors.length === before) entry.model = value as unknown as DmsModel;
  return entry;
}

function missingKeys(r: Reporter): KeySchema {
  r.error('keys.partition is required (keys is missing)');
  return { complete: false };
}

/** Validates one parsed document without cross-model checks. */
export function checkDocument(doc: unknown, file: string): CheckedDocument {
  const errors: string[] = [];
  const r = new Reporter(errors, file);
  if (!isObject(doc)) {
    r.error(`document must be an object with dms_version and models (got ${show(doc)})`);
    return { entries: [], errors };
  }
  checkAllowedKeys(doc, TOP_LEVEL_KEYS, r);
  if (doc.dms_version !== '0.1') r.error(`dms_version must be the string "0.1" (got ${show(doc.dms_version)})`);
  let namespace: string | undefined;
  if (typeof doc.namespace === 'string') namespace = doc.namespace;
  else if (doc.namespace !== undefined) r.error(`namespace must be a string (got ${show(doc.namespace)})`);
  if (!Array.isArray(doc.models) || doc.models.length === 0) {
    r.error(`models must be a non-empty array (got ${show(doc.models)})`);
    return { namespace, entries: [], errors };
  }
  const entries = doc.models.map((model, pos) => checkModel(model, pos, file, errors));
  return { namespace, entries, errors };
}

const keySchemaLabel = (keys: KeySchema): string =>
  `partition ${keyLabel(keys.partition)}, sort ${keyLabel(keys.sort)}`;

const sameKey = (a: DmsKey | undefined, b: DmsKey | undefined): boolean =>
  a?.attribute === b?.attribute && a?.type === b?.type;

function checkUniqueNames(entries: ModelEntry[], errors: string[]): void {
  const seen = new Map<string, ModelEntry>();
  for (const entry of entries) {
    if (entry.name === undefined) continue;
    const first = seen.get(entry.name);
    if (first) {
      errors.push(`${entry.file}: ${entry.label}: duplicate model name "${entry.name}" (also defined in ${first.file})`);
    } else seen.set(entry.name, entry);
  }
}

function checkSharedTableKeys(entries: ModelEntry[], errors: string[]): void {
  const seen = new Map<string, ModelEntry>();
  for (const entry of entries) {
    if (entry.tableName === undefined || !entry.keys.complete) continue;
    const first = seen.get(entry.tableName);
    if (!first) seen.set(entry.tableName, entry);
    else if (!sameKey(first.keys.partition, entry.keys.partition) || !sameKey(first.keys.sort, entry.keys.sort)) {
      errors.push(
        `${entry.file}: ${entry.label}: table "${entry.tableName}" key schema (${keySchemaLabel(entry.keys)}) ` +
          `conflicts with ${first.label} in ${first.file} (${keySchemaLabel(first.keys)})`,
      );
    }
  }
}

function checkSharedTableIndexes(entries: ModelEntry[], errors: string[]): void {
  const seen = new Map<string, { entry: ModelEntry; index: IndexInfo }>();
  for (const entry of entries) {
    if (entry.tableName === undefined) continue;
    for (const index of entry.indexes) {
      if (index.name === undefined || index.type === undefined || !index.complete) continue;
      const id = `${entry.tableName}\u0000${index.name}`;
      const first = seen.get(id);
      if (!first) seen.set(id, { entry, index });
      else if (
        first.index.type !== index.type ||
        !sameKey(first.index.partition, index.partition) ||
        !sameKey(first.index.sort, index.sort)
      ) {
        errors.push(
          `${index.r.ctx}: index "${index.name}" on shared table "${entry.tableName}" conflicts with the same index ` +
            `in ${first.entry.label} in ${first.entry.file}`,
        );
      }
    }
  }
}

/** Checks that need every model at once: unique names and agreement between models sharing a table. */
export function checkAcrossModels(entries: ModelEntry[], errors: string[]): void {
  checkUniqueNames(entries, errors);
  checkSharedTableKeys(entries, errors);
  checkSharedTableIndexes(entries, errors);
}

/**
 * Validates one parsed DMS document and collects every error.
 * `models` holds the models that passed their own checks; use them only when `errors` is empty.
 */
export function validateDocument(doc: unknown, file: string): { models: DmsModel[]; errors: string[] } {
  const checked = checkDocument(doc, file);
  checkAcrossModels(checked.entries, checked.errors);
  const models = checked.entries.flatMap((entry) => (entry.model ? [entry.model] : []));
  return { models, errors: checked.errors };
}
