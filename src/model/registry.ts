import type { DmsAttribute, DmsIndex, DmsKey, DmsModel, LoadedModel } from '../dms/types.js';
import { buildModelSchemas, type ModelSchemas } from './schemas.js';

/** A DMS model resolved for fast per-request use. */
export interface ModelDef {
  readonly name: string;
  readonly table: string;
  readonly file: string;
  readonly dms: DmsModel;
  readonly partitionKey: DmsAttribute;
  readonly sortKey: DmsAttribute | undefined;
  readonly attributes: ReadonlyMap<string, DmsAttribute>;
  readonly indexes: ReadonlyMap<string, DmsIndex>;
  readonly createdAt: string | undefined;
  readonly updatedAt: string | undefined;
  readonly version: string | undefined;
  readonly ttl: string | undefined;
  /** Attribute names the sidecar owns: callers never write them. */
  readonly lifecycle: ReadonlySet<string>;
  readonly encrypted: ReadonlySet<string>;
  /** Partition key attribute, then the sort key's if any. */
  readonly keyAttributes: readonly string[];
  /** Attributes a create/put must carry: required and not lifecycle. */
  readonly requiredWritable: readonly string[];
  /** Declared attributes a put replaces (removes when absent from the body): not keys, not lifecycle. */
  readonly replaceable: readonly string[];
  /** Attributes that are a key of some secondary index. */
  readonly indexKeyRoles: ReadonlyMap<string, IndexKeyRole>;
  readonly schemas: ModelSchemas;
}

export interface IndexKeyRole {
  /** The indexes the attribute is a key of, comma-separated. */
  readonly indexes: string;
  /** DynamoDB's limit for the value: 1024 bytes if it is any index's sort key, else 2048 (partition key). */
  readonly maxBytes: number;
}

/** Physical shape of one DynamoDB table, merged over every model stored in it. */
export interface TableDef {
  readonly name: string;
  readonly partition: DmsKey;
  readonly sort: DmsKey | undefined;
  readonly indexes: readonly DmsIndex[];
  readonly ttlAttribute: string | undefined;
  readonly attributeTypes: ReadonlyMap<string, DmsKey['type']>;
}

function attributeWithRole(model: DmsModel, role: string): string | undefined {
  return model.attributes.find((a) => a.roles?.includes(role))?.attribute;
}

function indexKeyRoles(indexes: readonly DmsIndex[]): Map<string, IndexKeyRole> {
  const byAttr = new Map<string, { names: string[]; sort: boolean }>();
  for (const index of indexes) {
    for (const [key, sort] of [[index.partition, false], [index.sort, true]] as const) {
      if (!key) continue;
      const role = byAttr.get(key.attribute) ?? { names: [], sort: false };
      role.names.push(index.name);
      role.sort ||= sort;
      byAttr.set(key.attribute, role);
    }
  }
  return new Map([...byAttr].map(([attr, r]) => [attr, { indexes: r.names.join(', '), maxBytes: r.sort ? 1024 : 2048 }]));
}

function resolveModel(loaded: LoadedModel): ModelDef {
  const dms = loaded.model;
  const attributes = new Map(dms.attributes.map((a) => [a.attribute, a] as const));
  const partitionKey = attributes.get(dms.keys.partition.attribute)!;
  const sortKey = dms.keys.sort ? attributes.get(dms.keys.sort.attribute) : undefined;
  const createdAt = attributeWithRole(dms, 'created_at');
  const updatedAt = attributeWithRole(dms, 'updated_at');
  const version = attributeWithRole(dms, 'version');
  const lifecycle = new Set([createdAt, updatedAt, version].filter((a): a is string => a !== undefined));
  const keyAttributes = [partitionKey.attribute, ...(sortKey ? [sortKey.attribute] : [])];
  const def = {
    name: dms.name,
    table: dms.table.name,
    file: loaded.file,
    dms,
    partitionKey,
    sortKey,
    attributes,
    indexes: new Map((dms.indexes ?? []).map((i) => [i.name, i] as const)),
    createdAt,
    updatedAt,
    version,
    ttl: attributeWithRole(dms, 'ttl'),
    lifecycle,
    encrypted: new Set(dms.attributes.filter((a) => a.encryption !== undefined).map((a) => a.attribute)),
    keyAttributes,
    requiredWritable: dms.attributes.filter((a) => a.required && !lifecycle.has(a.attribute)).map((a) => a.attribute),
    replaceable: dms.attributes.map((a) => a.attribute).filter((n) => !keyAttributes.includes(n) && !lifecycle.has(n)),
    indexKeyRoles: indexKeyRoles(dms.indexes ?? []),
  };
  // The TypeBox schemas (≈1 ms a model) are built on first use: a model's first validated request, the OpenAPI
  // document, a decode. Boot with 50 models skipped ≈50 ms.
  let schemas: ModelSchemas | undefined;
  return Object.defineProperty(def as unknown as ModelDef, 'schemas', { enumerable: true, get: () => (schemas ??= buildModelSchemas(def)) });
}

export class ModelRegistry {
  readonly #models: Map<string, ModelDef>;

  constructor(loaded: readonly LoadedModel[]) {
    this.#models = new Map(loaded.map((l) => [l.model.name, resolveModel(l)] as const));
  }

  get(name: string): ModelDef | undefined {
    return this.#models.get(name);
  }

  list(): ModelDef[] {
    return [...this.#models.values()];
  }

  /** Loaded model names, the closest to `name` first (case-insensitive edit distance), at most `max`. */
  closestNames(name: string, max: number): string[] {
    const wanted = name.toLowerCase();
    return [...this.#models.keys()]
      .map((candidate) => ({ candidate, distance: editDistance(wanted, candidate.toLowerCase()) }))
      .sort((a, b) => a.distance - b.distance || a.candidate.localeCompare(b.candidate))
      .slice(0, max)
      .map((c) => c.candidate);
  }

  tables(): TableDef[] {
    const byTable = new Map<string, ModelDef[]>();
    for (const m of this.#models.values()) byTable.set(m.table, [...(byTable.get(m.table) ?? []), m]);
    return [...byTable.entries()].map(([name, models]) => tableDef(name, models));
  }
}

function tableDef(name: string, models: ModelDef[]): TableDef {
  const first = models[0].dms;
  const indexes = new Map<string, DmsIndex>();
  const attributeTypes = new Map<string, DmsKey['type']>();
  const addKey = (k: DmsKey | undefined) => k && attributeTypes.set(k.attribute, k.type);
  addKey(first.keys.partition);
  addKey(first.keys.sort);
  for (const m of models) {
    for (const idx of m.dms.indexes ?? []) {
      if (indexes.has(idx.name)) continue;
      indexes.set(idx.name, idx);
      addKey(idx.partition);
      addKey(idx.sort);
    }
  }
  return {
    name,
    partition: first.keys.partition,
    sort: first.keys.sort,
    indexes: [...indexes.values()],
    ttlAttribute: models.map((m) => m.ttl).find((t) => t !== undefined),
    attributeTypes,
  };
}

/** Levenshtein distance; model names are short, so the O(n·m) table is cheap. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
