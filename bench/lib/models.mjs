// Generates the benchmark's DMS models: BENCH_MODELS (default 50, at least 2) models, five per JSON file, one table each.
// Every model shares the core attributes the workload uses (pk, sk, name, count, tags, active, profile + lifecycle),
// then adds 0–7 extra attributes and, every fifth model, a GSI, so the 50 are not all identical.
// Bench01 has an encrypted attribute (`secret`) for the KMS test; Bench00 (the load target) has none.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const MODEL_COUNT = Math.max(2, Number(process.env.BENCH_MODELS ?? 50) || 50);
export const LOAD_MODEL = 'Bench00';
export const LOAD_TABLE = 'bench_00';
export const KMS_MODEL = 'Bench01';

/** Every bench table's primary key: pk (HASH) and sk (RANGE), both S. */
export const PK_SK_KEYS = Object.freeze({
  KeySchema: [
    { AttributeName: 'pk', KeyType: 'HASH' },
    { AttributeName: 'sk', KeyType: 'RANGE' },
  ],
  AttributeDefinitions: [
    { AttributeName: 'pk', AttributeType: 'S' },
    { AttributeName: 'sk', AttributeType: 'S' },
  ],
});

const pad = (i) => String(i).padStart(2, '0');

export function modelDef(i) {
  const attributes = [
    { attribute: 'pk', type: 'S', required: true, roles: ['pk'] },
    { attribute: 'sk', type: 'S', required: true, roles: ['sk'] },
    { attribute: 'name', type: 'S', optional: true },
    { attribute: 'count', type: 'N', optional: true, format: 'int' },
    { attribute: 'tags', type: 'SS', optional: true, omit_empty: true },
    { attribute: 'active', type: 'BOOL', optional: true },
    { attribute: 'profile', type: 'M', optional: true },
    { attribute: 'createdAt', type: 'S', format: 'rfc3339nano', roles: ['created_at'] },
    { attribute: 'updatedAt', type: 'S', format: 'rfc3339nano', roles: ['updated_at'] },
    { attribute: 'version', type: 'N', format: 'int', roles: ['version'] },
  ];
  for (let k = 0; k < i % 8; k++) attributes.push({ attribute: `extra${k}`, type: k % 2 ? 'N' : 'S', optional: true });
  const indexes = [];
  if (i % 5 === 4) {
    attributes.push({ attribute: 'email', type: 'S', optional: true, roles: ['index_pk:gsi-email'] });
    indexes.push({ name: 'gsi-email', type: 'GSI', partition: { attribute: 'email', type: 'S' }, projection: { type: 'ALL' } });
  }
  if (i === 1) attributes.push({ attribute: 'secret', type: 'S', optional: true, encryption: { v: 1 } });
  return {
    name: `Bench${pad(i)}`,
    table: { name: `bench_${pad(i)}` },
    naming: { convention: 'camelCase' },
    keys: { partition: { attribute: 'pk', type: 'S' }, sort: { attribute: 'sk', type: 'S' } },
    attributes,
    ...(indexes.length ? { indexes } : {}),
  };
}

/** Table name → DescribeTable-shaped key schema, for the null endpoint. */
export function tableSpecs(count = MODEL_COUNT) {
  const out = {};
  for (let i = 0; i < count; i++) {
    const m = modelDef(i);
    out[m.table.name] = {
      KeySchema: PK_SK_KEYS.KeySchema,
      AttributeDefinitions: [
        ...PK_SK_KEYS.AttributeDefinitions,
        ...(m.indexes ? [{ AttributeName: 'email', AttributeType: 'S' }] : []),
      ],
      ...(m.indexes
        ? {
            GlobalSecondaryIndexes: m.indexes.map((x) => ({
              IndexName: x.name,
              KeySchema: [{ AttributeName: 'email', KeyType: 'HASH' }],
              Projection: { ProjectionType: 'ALL' },
              IndexStatus: 'ACTIVE',
            })),
          }
        : {}),
    };
  }
  return out;
}

/** Writes the models to a new temp directory and returns its path. */
export async function writeModels(count = MODEL_COUNT) {
  const dir = await mkdtemp(path.join(tmpdir(), 'dynamorm-bench-schemas-'));
  const perFile = 5;
  for (let f = 0; f * perFile < count; f++) {
    const models = [];
    for (let i = f * perFile; i < Math.min(count, (f + 1) * perFile); i++) models.push(modelDef(i));
    const doc = { dms_version: '0.1', namespace: `bench.group${f}`, models };
    await writeFile(path.join(dir, `group${pad(f)}.json`), `${JSON.stringify(doc, null, 2)}\n`);
  }
  return dir;
}
