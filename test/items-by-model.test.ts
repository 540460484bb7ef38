// The transaction bodies are validated one item's model at a time (src/http/items-by-model.ts) instead of through one
// Ajv validator compiled over every model's branches. The errors must be the whole union's, byte for byte, or the
// problem messages built from them would change: this compiles the whole union with the server's Ajv options and
// compares both on hand-picked and on seeded random bad bodies.
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { AjvCompiler } from '@fastify/ajv-compiler';
import { loadModels } from '../src/dms/index.js';
import { ModelRegistry, type ModelDef } from '../src/model/index.js';
import { keyExample, modelExample } from '../src/model/examples.js';
import { sharedSchemas } from '../src/http/schemas.js';
import { AJV_OPTIONS } from '../src/http/lazy-validation.js';
import { itemsByModel, wholeUnion, type Compile, type Validate } from '../src/http/items-by-model.js';
import { transactionBodies } from '../src/http/transactions.js';
import { prng } from './helpers/prng.js';

type Json = Record<string, unknown>;

// The example models (versioned, S/N/B keys) and one without a version or a sort key, with a set.
const NOTE = {
  dms_version: '0.1',
  namespace: 'test.notes',
  models: [
    {
      name: 'Note',
      table: { name: 'notes' },
      naming: { convention: 'camelCase' },
      keys: { partition: { attribute: 'id', type: 'S' } },
      attributes: [
        { attribute: 'id', type: 'S', required: true, roles: ['pk'] },
        { attribute: 'tags', type: 'SS', optional: true },
        { attribute: 'body', type: 'S', optional: true },
      ],
    },
  ],
};
const dir = await mkdtemp(path.join(tmpdir(), 'items-by-model-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
await cp('schemas', dir, { recursive: true, filter: (f) => !f.endsWith('.md') });
await writeFile(path.join(dir, 'notes.json'), JSON.stringify(NOTE));
const registry = new ModelRegistry(await loadModels(dir));
const models = registry.list();

const externals = Object.fromEntries([...sharedSchemas, ...models.flatMap((m) => Object.values(m.schemas))].map((s) => [s.$id!, s]));
const ajv = AjvCompiler()(externals, AJV_OPTIONS as never);
const compile: Compile = (schema) => ajv({ schema, method: 'POST', url: '/v1/transactions/x', httpPart: 'body' } as never) as unknown as Validate;
const bodies = transactionBodies(models);

const byName = (name: string): ModelDef => models.find((m) => m.name === name)!;
const firstPlain = (m: ModelDef) => [...m.attributes.values()].find((a) => !m.keyAttributes.includes(a.attribute) && !m.lifecycle.has(a.attribute) && !a.required)!.attribute;

/** One valid write per op and model. */
function writes(m: ModelDef): Json[] {
  const key = keyExample(m);
  return [
    { op: 'create', model: m.name, item: modelExample(m) },
    { op: 'put', model: m.name, item: modelExample(m) },
    { op: 'update', model: m.name, key, update: { remove: [firstPlain(m)] } },
    { op: 'delete', model: m.name, key },
    { op: 'check', model: m.name, key, condition: { attr: m.partitionKey.attribute, op: 'exists' } },
  ];
}

const BAD_VALUES: unknown[] = [null, 1, 1.5, 'x', '', true, [], [1], {}, { a: 1 }];

/** One mistake somewhere in an item (or the item replaced). */
function mutate(item: Json, r: () => number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const copy = structuredClone(item);
  const members = Object.keys(copy);
  switch (Math.floor(r() * 9)) {
    case 0:
      return pick(BAD_VALUES);
    case 1:
      delete copy[pick(members)];
      return copy;
    case 2:
      copy[pick(members)] = pick(BAD_VALUES);
      return copy;
    case 3:
      copy[pick(['extra', 'version', 'condition', 'key', 'item', 'update', 'fields'])] = pick([...BAD_VALUES, 3, { attr: 'nope', op: '=', value: 1 }]);
      return copy;
    case 4:
      copy.model = pick([...models.map((m) => m.name), 'Nope', 'user']);
      return copy;
    case 5:
      copy.op = pick(['create', 'put', 'update', 'delete', 'check', 'upsert', 'CHECK']);
      return copy;
    case 6: {
      const inner = (copy.item ?? copy.key) as Json | undefined;
      if (inner) inner[pick([...Object.keys(inner), 'nope'])] = pick(BAD_VALUES);
      return copy;
    }
    case 7:
      copy.condition = pick([{ attr: 'nope', op: 'exists' }, { attr: 'version', op: '~', value: 1 }, { and: [] }, { not: 1 }, { attr: 'version', op: 'between', values: [1] }]);
      return copy;
    default:
      if (copy.update) copy.update = pick([{}, { set: {} }, { set: { nope: 1 } }, { remove: 'x' }, { add: { version: 1 } }]);
      else copy.version = pick([-1, 'x', 1.5, 2]);
      return copy;
  }
}

/** Both validators on one body: a failed assertion shows the two answers (always asserted when `always`). */
function compare(t: Test, whole: Validate, own: Validate, body: unknown, label: string, always: boolean): { ok: boolean; same: boolean } {
  const wholeOk = whole(body);
  const wholeErrors = structuredClone(whole.errors ?? null);
  const ownOk = own(body);
  const same = wholeOk === ownOk && JSON.stringify(own.errors ?? null) === JSON.stringify(wholeErrors);
  if (always || !same) t.same({ ok: ownOk, errors: own.errors ?? null }, { ok: wholeOk, errors: wholeErrors }, `${label}: ${JSON.stringify(body).slice(0, 300)}`);
  return { ok: wholeOk, same };
}
type Test = typeof t;

t.test('transaction write: the errors are the whole union\'s', async (t) => {
  const whole = compile(wholeUnion(bodies.write));
  const own = itemsByModel(bodies.write, compile);
  const valid = models.flatMap(writes);
  const fixed: [string, unknown][] = [
    ['every valid write', { items: valid }],
    ['not an object', null],
    ['an array', []],
    ['no items', {}],
    ['items empty', { items: [] }],
    ['items not an array', { items: 'x' }],
    ['101 items', { items: Array.from({ length: 101 }, () => valid[3]) }],
    ['unknown member and a bad item', { items: [{ op: 'upsert' }], extra: 1 }],
    ['a bad idempotency key', { items: [valid[0]], idempotencyKey: 'has space' }],
    ['a bad idempotency key and a bad item', { items: [valid[0], { op: 'delete', model: 'Nope' }], idempotencyKey: '' }],
    ['unknown model', { items: [{ op: 'delete', model: 'Nope', key: {} }] }],
    ['no model', { items: [{ op: 'delete', key: {} }] }],
    ['model not a string', { items: [{ op: 'delete', model: 1 }] }],
    ['wrong op', { items: [{ op: 'upsert', model: 'User', key: keyExample(byName('User')) }] }],
    ['no op', { items: [{ model: 'User', key: keyExample(byName('User')) }] }],
    ['item null', { items: [null] }],
    ['check without a condition', { items: [{ op: 'check', model: 'Note', key: { id: 'a' } }] }],
    ['check with a version on a model without one', { items: [{ op: 'check', model: 'Note', key: { id: 'a' }, version: 2 }] }],
    ['check with only a version', { items: [{ op: 'check', model: 'User', key: keyExample(byName('User')), version: 2 }] }],
    ['a second item wrong after a good one', { items: [valid[0], { ...valid[1], item: { nope: 1 } }] }],
    ['a bad tag after a bad body', { items: [{ ...valid[0], item: {} }, { op: 'x', model: 'y' }] }],
    ['a bad body after a bad tag', { items: [{ op: 'x', model: 'y' }, { ...valid[0], item: {} }] }],
  ];
  for (const [label, body] of fixed) compare(t, whole, own, body, label, true);
  t.ok(whole({ items: valid }), 'the valid writes are valid (the comparison covers passing bodies)', { errors: whole.errors });

  const r = prng(Number(process.env.SEED ?? 9));
  let invalid = 0;
  let passed = 0;
  let differ = 0;
  const runs = 1500;
  for (let i = 0; i < runs; i++) {
    const count = 1 + Math.floor(r() * 3);
    const items: unknown[] = Array.from({ length: count }, () => valid[Math.floor(r() * valid.length)]);
    const bad = Math.floor(r() * (count + 1));
    if (bad < count) items[bad] = mutate(items[bad] as Json, r);
    const { ok, same } = compare(t, whole, own, { items }, `random ${i}`, false);
    if (ok) passed++;
    else invalid++;
    if (!same) differ++;
  }
  t.equal(differ, 0, `${runs} random bodies: the same errors`);
  t.ok(invalid > runs / 2, `most random bodies are invalid (${invalid})`);
  t.ok(passed > 20, `some random bodies are valid (${passed})`);
});

t.test('transaction get: the errors are the whole union\'s', async (t) => {
  const whole = compile(wholeUnion(bodies.get));
  const own = itemsByModel(bodies.get, compile);
  const valid = models.map((m) => ({ model: m.name, key: keyExample(m) }));
  const fixed: [string, unknown][] = [
    ['every valid read', { items: valid }],
    ['with fields', { items: [{ ...valid[0], fields: [firstPlain(models[0])] }] }],
    ['unknown field', { items: [{ ...valid[0], fields: ['nope'] }] }],
    ['repeated field', { items: [{ ...valid[0], fields: [firstPlain(models[0]), firstPlain(models[0])] }] }],
    ['unknown model', { items: [{ model: 'Nope', key: {} }] }],
    ['no key', { items: [{ model: models[0].name }] }],
    ['extra member', { items: [{ ...valid[0], op: 'get' }] }],
    ['item a string', { items: ['x'] }],
  ];
  for (const [label, body] of fixed) compare(t, whole, own, body, label, true);
  const r = prng(Number(process.env.SEED ?? 11));
  let differ = 0;
  let invalid = 0;
  for (let i = 0; i < 500; i++) {
    const items: unknown[] = [valid[Math.floor(r() * valid.length)], valid[Math.floor(r() * valid.length)]];
    items[Math.floor(r() * 2)] = mutate(items[0] as Json, r);
    const { ok, same } = compare(t, whole, own, { items }, `random ${i}`, false);
    if (!same) differ++;
    if (!ok) invalid++;
  }
  t.equal(differ, 0, '500 random bodies: the same errors');
  t.ok(invalid > 250, `most random bodies are invalid (${invalid})`);
});
