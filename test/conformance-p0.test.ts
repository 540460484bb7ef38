// DMS 0.1 conformance: every P0 scenario of DynamORM's contract suite (the project's copies in
// test/fixtures/contract) played over HTTP on dynalite and on moto — create/get/update/delete, omit_empty, lifecycle,
// optimistic locking, TTL stored as N read straight from the backend — and the golden cursor both ways: a page that
// ends on the golden last key yields exactly the golden bytes, and the golden string (and its lowercase-sort variant,
// as Go writes OrderBy verbatim) continues the query.
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import t from 'tap';
import { parse } from 'yaml';
import { forEachBackend } from './helpers/backends.js';
import { PINNED_DMS_VERSION, loadScenario, runScenario, type Scenario } from './helpers/contract-scenarios.js';
import { ok, problem } from './helpers/assert.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/contract/', import.meta.url));
const MODELS = join(FIXTURES, 'dms/v0.1/models');
const P0 = join(FIXTURES, 'scenarios/p0');
const REGION = 'eu-central-2';

const scenarioFiles = readdirSync(P0).filter((f) => f.endsWith('.yml')).sort();
const scenarios: Scenario[] = scenarioFiles.map((f) => loadScenario(readFileSync(join(P0, f), 'utf8'), f));
const goldenCursor = readFileSync(join(FIXTURES, 'golden/cursor/cursor_v0.1_basic.cursor'), 'utf8').trim();
const goldenJson = readFileSync(join(FIXTURES, 'golden/cursor/cursor_v0.1_basic.json'), 'utf8').trim();

const schemasDir = mkdtempSync(join(tmpdir(), 'dynamorm-p0-'));
// Not t.teardown: a teardown on the root test ends it when idle, e.g. while moto starts.
process.once('exit', () => rmSync(schemasDir, { recursive: true, force: true }));
for (const f of readdirSync(MODELS)) copyFileSync(join(MODELS, f), join(schemasDir, f));
copyFileSync(join(FIXTURES, 'golden-cursor-model.yml'), join(schemasDir, 'golden-cursor-model.yml'));

function encodeCursorJson(json: string): string {
  const unpadded = Buffer.from(json, 'utf8').toString('base64url');
  return unpadded.padEnd(Math.ceil(unpadded.length / 4) * 4, '=');
}
const pks = (page: { items?: { PK: string }[] }): string[] => (page.items ?? []).map((i) => i.PK);
const decodeCursorJson = (cursor: unknown): string => (typeof cursor === 'string' ? Buffer.from(cursor, 'base64url').toString('utf8') : '(no cursor)');

await t.test('the fixtures are the P0 suite, pinned to DMS 0.1', async (t) => {
  t.same(
    scenarios.map((s) => s.name),
    ['p0.crud.basic', 'p0.encoding.omitempty', 'p0.lifecycle.created_updated', 'p0.lifecycle.version_optimistic_lock', 'p0.lifecycle.ttl_epoch_seconds'],
    'five P0 scenarios',
  );
  for (const s of scenarios) t.equal(s.dms_version, PINNED_DMS_VERSION, `${s.name}: dms_version "0.1"`);
  for (const f of readdirSync(MODELS)) {
    t.equal(parse(readFileSync(join(MODELS, f), 'utf8')).dms_version, PINNED_DMS_VERSION, `${f}: dms_version "0.1"`);
  }
  t.equal(decodeCursorJson(goldenCursor), goldenJson, 'the golden .cursor decodes to the golden .json');
  t.equal(encodeCursorJson(goldenJson), goldenCursor, 'and the golden .json encodes to the golden .cursor (padded base64url)');
});

await t.test('the runner refuses a scenario for another DMS version', async (t) => {
  const text = readFileSync(join(P0, scenarioFiles[0]), 'utf8');
  t.ok(text.includes('dms_version: "0.1"'), 'the fixture names its version');
  t.throws(() => loadScenario(text.replace('dms_version: "0.1"', 'dms_version: "0.2"'), 'x.yml'), /pinned to DMS 0\.1/, '0.2 refused');
  t.throws(() => loadScenario(text.replace('dms_version: "0.1"', 'dms_version: 0.1'), 'x.yml'), /pinned to DMS 0\.1/, 'a YAML number is not the string "0.1"');
  t.throws(() => loadScenario(text.replace(/dms_version: "0.1"\n/, ''), 'x.yml'), /pinned to DMS 0\.1/, 'a missing version refused');
});

await forEachBackend(
  t,
  REGION,
  async (t, { sidecar: s }) => {
    const target = {
      request: s.request,
      async rawItem(table: string, key: Record<string, AttributeValue>) {
        const out = await s.sidecar.backend.client.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }));
        return out.Item;
      },
    };
    for (const scenario of scenarios) {
      await t.test(scenario.name, (t) => runScenario(t, target, scenario));
    }

    await t.test('golden cursor: emitted byte for byte, accepted back, sort in any case', async (t) => {
      const query = (body: Record<string, unknown>) => s.request('POST', '/v1/models/GoldenCursorUser/query', { index: 'gsi-email', partition: 'PROFILE', limit: 1, ...body });
      for (const pk of ['USER#1', 'USER#2', 'USER#3']) {
        t.equal((await s.request('POST', '/v1/models/GoldenCursorUser/items', { PK: pk, SK: 'PROFILE' })).status, 201, `create ${pk}`);
      }
      const first = ok(t, await query({}), 'first page');
      t.same(pks(first), ['USER#1'], 'one item');
      t.equal(first.cursor, goldenCursor, 'the cursor after USER#1/PROFILE on gsi-email is the golden cursor, byte for byte');

      const next = ok(t, await query({ cursor: goldenCursor }), 'golden cursor sent back');
      t.same(pks(next), ['USER#2'], 'continues after USER#1');
      t.equal(decodeCursorJson(next.cursor), goldenJson.replace('USER#1', 'USER#2'), 'next cursor in the same canonical form');

      const lower = ok(t, await query({ cursor: encodeCursorJson(goldenJson.replace('"ASC"', '"asc"')) }), 'sort "asc"');
      t.same(pks(lower), ['USER#2'], '"asc" continues the page');
      t.equal(decodeCursorJson(lower.cursor), goldenJson.replace('USER#1', 'USER#2'), 'and the cursor it returns says "ASC"');

      const descFirst = ok(t, await query({ order: 'DESC' }), 'DESC first page');
      t.same(pks(descFirst), ['USER#3']);
      const descJson = goldenJson.replace('USER#1', 'USER#3').replace('"ASC"', '"DESC"');
      t.equal(decodeCursorJson(descFirst.cursor), descJson, 'DESC cursor, canonical');
      for (const sort of ['desc', 'Desc']) {
        const res = ok(t, await query({ order: 'DESC', cursor: encodeCursorJson(descJson.replace('"DESC"', `"${sort}"`)) }), `sort "${sort}"`);
        t.same(pks(res), ['USER#2'], `"${sort}" continues the DESC page`);
        t.equal(decodeCursorJson(res.cursor), descJson.replace('USER#3', 'USER#2'), 'the cursor it returns says "DESC"');
      }

      problem(t, await query({ order: 'DESC', cursor: encodeCursorJson(goldenJson.replace('"ASC"', '"asc"')) }), 400, 'ErrInvalidRequest', '"asc" cursor on a DESC query');
      problem(t, await query({ cursor: encodeCursorJson(goldenJson.replace('"ASC"', '"up"')) }), 400, 'ErrInvalidRequest', 'sort "up"');
    });
  },
  { schemasDir },
);
