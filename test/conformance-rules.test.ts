// DMS 0.1 rules the P0 scenarios touch only in one place, checked on every path:
// - omit_empty on the ttl attribute: `0` is empty, so no write path (create, upsert, PUT, PATCH set, batch put,
//   transaction create/put/update) stores N "0" — a PATCH or PUT removes a ttl that was there;
// - a failed condition is always ErrConditionFailed: 409 with reason item_exists for a create on an existing key,
//   412 with version_mismatch / item_missing / condition_failed otherwise; ErrItemExists is never answered;
// - a model of keys only, or keys and lifecycle attributes, loads and serves CRUD (its PATCH schema has nothing to
//   remove);
// - a decrypted envelope whose payload is not of the attribute's DMS type (an M in an S attribute, a duplicate or
//   empty set) is 500 ErrInvalidEncryptedEnvelope, never a 200 with the wrong shape, and the body quotes no plaintext.
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import t, { type Test } from 'tap';
import { LocalKeyProvider } from '../src/crypto/providers.js';
import { sealAttribute } from '../src/crypto/envelope.js';
import { forEachBackend } from './helpers/backends.js';
import { ok, problem, type Json } from './helpers/assert.js';
import { startTestSidecar, type TestSidecar } from './helpers/sidecar.js';

const REGION = 'ap-southeast-4';
const CONTRACT_MODELS = fileURLToPath(new URL('./fixtures/contract/dms/v0.1/models/', import.meta.url));
const enc = encodeURIComponent;

function schemasDir(files: Record<string, string>, copyFrom?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-conform-'));
  // Not t.teardown: a teardown on the root test ends it when idle, e.g. while moto starts.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  if (copyFrom) for (const f of readdirSync(copyFrom)) copyFileSync(join(copyFrom, f), join(dir, f));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

async function raw(s: TestSidecar, table: string, key: Record<string, AttributeValue>) {
  return (await s.sidecar.backend.client.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item;
}

// ------------------------------------------------------------------------------------------- contract models

await forEachBackend(
  t,
  REGION,
  async (t, { sidecar: s }) => {
    const RUN = randomUUID().slice(0, 8);
    const key = (pk: string) => ({ PK: { S: pk }, SK: { S: 'PROFILE' } });
    const path = (pk: string) => `/v1/models/User/items/${enc(pk)}/PROFILE`;
    const ttlOf = async (pk: string) => (await raw(s, 'users_contract', key(pk)))?.ttl;
    const created = async (pk: string, extra: Json = {}) => {
      const res = await s.request('POST', '/v1/models/User/items', { PK: pk, SK: 'PROFILE', ...extra });
      t.equal(res.status, 201, res.status === 201 ? `create ${pk}` : `create ${pk}: ${res.text}`);
    };

    await t.test('ttl 0 is empty: never stored, and removes a stored ttl', async (t) => {
      const P = `${RUN}#TTL#`;
      await created(`${P}create`, { ttl: 0 });
      t.equal(await ttlOf(`${P}create`), undefined, 'create: no ttl attribute');
      t.equal((await s.request('POST', '/v1/models/User/items?ifNotExists=false', { PK: `${P}upsert`, SK: 'PROFILE', ttl: 0 })).status, 201, 'upsert');
      t.equal(await ttlOf(`${P}upsert`), undefined, 'upsert: no ttl attribute');

      for (const what of ['put', 'patch', 'tx-put', 'tx-update']) await created(`${P}${what}`, { ttl: 1700000000 });
      t.same(await ttlOf(`${P}put`), { N: '1700000000' }, 'a non-zero ttl is stored as N epoch seconds');
      ok(t, await s.request('PUT', path(`${P}put`), { ttl: 0, nickname: 'x' }), 'PUT');
      t.equal(await ttlOf(`${P}put`), undefined, 'PUT: the stored ttl is gone');
      ok(t, await s.request('PATCH', path(`${P}patch`), { set: { ttl: 0 } }), 'PATCH set');
      t.equal(await ttlOf(`${P}patch`), undefined, 'PATCH set ttl 0: removed');

      const batch = ok(t, await s.request('POST', '/v1/models/User/batch-write', { puts: [{ PK: `${P}batch`, SK: 'PROFILE', ttl: 0 }] }), 'batch-write');
      t.equal(batch.complete, true);
      t.ok(await raw(s, 'users_contract', key(`${P}batch`)), 'batch: item written');
      t.equal(await ttlOf(`${P}batch`), undefined, 'batch put: no ttl attribute');

      const tx = await s.request('POST', '/v1/transactions/write', {
        items: [
          { op: 'create', model: 'User', item: { PK: `${P}tx-create`, SK: 'PROFILE', ttl: 0 } },
          { op: 'put', model: 'User', item: { PK: `${P}tx-put`, SK: 'PROFILE', ttl: 0 } },
          { op: 'update', model: 'User', key: { PK: `${P}tx-update`, SK: 'PROFILE' }, update: { set: { ttl: 0 } } },
        ],
      });
      ok(t, tx, 'transaction');
      t.ok(await raw(s, 'users_contract', key(`${P}tx-create`)), 'transaction create: item written');
      for (const what of ['tx-create', 'tx-put', 'tx-update']) t.equal(await ttlOf(`${P}${what}`), undefined, `${what}: no ttl attribute`);

      await created(`${P}rfc`, { ttl: '2030-01-01T00:00:00Z' });
      t.same(await ttlOf(`${P}rfc`), { N: '1893456000' }, 'an RFC 3339 ttl is still stored as epoch seconds');
      // A ttl is read back as a JSON number: digits past 2^53 would come back rounded, so they are refused.
      for (const [label, ttl] of [['as digits', '370269014823530000000000'], ['as a number', 9007199254740993]] as const) {
        const huge = await s.request('POST', '/v1/models/User/items', { PK: `${P}huge`, SK: 'PROFILE', ttl });
        t.equal(huge.status, 400, `a ttl past 2^53 ${label}: 400`);
        t.match(String(huge.json?.detail), /ttl/, 'the answer names the attribute');
      }
      t.equal(await raw(s, 'users_contract', key(`${P}huge`)), undefined, 'nothing written');
      const order = await s.request('POST', '/v1/models/Order/items', { PK: `${P}order`, SK: 'O#1', ttl: 0, amount: 0 });
      t.equal(order.status, 201);
      const stored = await raw(s, 'orders_contract', { PK: { S: `${P}order` }, SK: { S: 'O#1' } });
      t.equal(stored?.ttl, undefined, 'Order: ttl 0 omitted');
      t.same(stored?.amount, { N: '0' }, 'an attribute without omit_empty keeps its 0');
    });

    await t.test('every failed condition is ErrConditionFailed, with a reason', async (t) => {
      const pk = `${RUN}#COND`;
      await created(pk, { nickname: 'Al' });
      const dup = await s.request('POST', '/v1/models/User/items', { PK: pk, SK: 'PROFILE' });
      problem(t, dup, 409, 'ErrConditionFailed', 'create on an existing key');
      t.equal(dup.json?.reason, 'item_exists');
      const falseCondition = `?condition=${enc(JSON.stringify({ attr: 'nickname', op: '=', value: 'nobody' }))}`;
      const condCreate = await s.request('POST', `/v1/models/User/items${falseCondition}`, { PK: `${pk}#new`, SK: 'PROFILE' });
      problem(t, condCreate, 412, 'ErrConditionFailed', 'create with a false condition on a new key');
      t.equal(condCreate.json?.reason, 'condition_failed');
      const stale = await s.request('PATCH', path(pk), { set: { nickname: 'x' } }, { 'if-match': '"7"' });
      problem(t, stale, 412, 'ErrConditionFailed', 'PATCH with a stale If-Match');
      t.equal(stale.json?.reason, 'version_mismatch');
      const staleBody = await s.request('PATCH', path(pk), { set: { nickname: 'x' }, version: 3 });
      t.equal(staleBody.json?.reason, 'version_mismatch', 'PATCH with a stale body version');
      const cond = await s.request('PATCH', path(pk), { set: { nickname: 'x' }, version: 0, condition: { attr: 'nickname', op: '=', value: 'nobody' } });
      problem(t, cond, 412, 'ErrConditionFailed', 'PATCH: right version, false condition');
      t.equal(cond.json?.reason, 'condition_failed');
      const putMissing = await s.request('PUT', path(`${pk}#absent`), { nickname: 'x' }, { 'if-match': '"0"' });
      problem(t, putMissing, 412, 'ErrConditionFailed', 'PUT with If-Match on an absent item');
      t.equal(putMissing.json?.reason, 'item_missing');
      const del = await s.request('DELETE', path(pk), undefined, { 'if-match': '"5"' });
      problem(t, del, 412, 'ErrConditionFailed', 'DELETE with a stale If-Match');
      t.equal(del.json?.reason, 'version_mismatch');
      const tx = await s.request('POST', '/v1/transactions/write', { items: [{ op: 'create', model: 'User', item: { PK: pk, SK: 'PROFILE' } }] });
      problem(t, tx, 409, 'ErrTransactionCanceled', 'transaction create on an existing key');
      t.same(tx.json?.reasons?.map((r: Json) => r.code), ['ConditionalCheckFailed'], 'its reason is DynamoDB\'s');
      for (const res of [dup, condCreate, stale, cond, putMissing, del, tx]) t.notMatch(res.text, /ErrItemExists/, 'ErrItemExists is never answered');
      t.equal((await s.request('GET', path(pk))).json?.nickname, 'Al', 'nothing was written');
    });
  },
  { schemasDir: schemasDir({}, CONTRACT_MODELS) },
);

// ------------------------------------------------------------------------------------------- keys-only models

const KEYS_ONLY = `dms_version: "0.1"
models:
  - name: "Tag"
    table: { name: "tags_keys_only" }
    keys:
      partition: { attribute: "tag", type: "S" }
    attributes:
      - { attribute: "tag", type: "S", required: true, roles: ["pk"] }
  - name: "Membership"
    table: { name: "memberships_keys_lifecycle" }
    keys:
      partition: { attribute: "PK", type: "S" }
      sort: { attribute: "SK", type: "N" }
    attributes:
      - { attribute: "PK", type: "S", required: true, roles: ["pk"] }
      - { attribute: "SK", type: "N", required: true, roles: ["sk"] }
      - { attribute: "createdAt", type: "S", format: "rfc3339nano", roles: ["created_at"] }
      - { attribute: "updatedAt", type: "S", format: "rfc3339nano", roles: ["updated_at"] }
      - { attribute: "version", type: "N", format: "int", roles: ["version"] }
`;

async function keysOnlyModels(t: Test, s: TestSidecar): Promise<void> {
  const models = ok(t, await s.request('GET', '/v1/models'), 'GET /v1/models');
  t.same((models.models ?? models).map((m: Json) => m.name).sort(), ['Membership', 'Tag'], 'both models served');

  t.equal((await s.request('POST', '/v1/models/Tag/items', { tag: 'red' })).status, 201, 'Tag create');
  t.same(ok(t, await s.request('GET', '/v1/models/Tag/items/red'), 'Tag get'), { tag: 'red' });
  t.same(ok(t, await s.request('PUT', '/v1/models/Tag/items/red', {}), 'Tag put'), { tag: 'red' });
  t.same(ok(t, await s.request('PUT', '/v1/models/Tag/items/blue', {}), 'Tag put of a new key'), { tag: 'blue' });
  t.equal((await s.request('GET', '/v1/models/Tag/items/blue')).status, 200, 'the upserted key is stored');
  problem(t, await s.request('PATCH', '/v1/models/Tag/items/red', { remove: [] }), 400, 'ErrInvalidRequest', 'Tag PATCH with nothing to do');
  problem(t, await s.request('PATCH', '/v1/models/Tag/items/red', { remove: ['tag'] }), 400, 'ErrInvalidRequest', 'Tag PATCH removing the key');
  t.same(ok(t, await s.request('POST', '/v1/models/Tag/scan', {}), 'Tag scan').items.map((i: Json) => i.tag).sort(), ['blue', 'red']);
  const tx = await s.request('POST', '/v1/transactions/write', {
    items: [
      { op: 'put', model: 'Tag', item: { tag: 'green' } },
      { op: 'create', model: 'Tag', item: { tag: 'amber' } },
      { op: 'put', model: 'Membership', item: { PK: 'team#2', SK: 1 } },
    ],
  });
  t.same(ok(t, tx, 'transaction put/create on the keys-only model'), { committed: 3 });
  t.equal((await s.request('GET', '/v1/models/Tag/items/green')).status, 200, 'transaction put stored the key');
  const got = ok(t, await s.request('POST', '/v1/transactions/get', { items: [{ model: 'Tag', key: { tag: 'amber' } }, { model: 'Membership', key: { PK: 'team#2', SK: 1 } }] }), 'transactions/get');
  t.match(got.items, [{ tag: 'amber' }, { PK: 'team#2', SK: 1, version: 0 }]);
  t.equal((await s.request('DELETE', '/v1/models/Tag/items/red')).status, 204, 'Tag delete');
  t.equal((await s.request('GET', '/v1/models/Tag/items/red')).status, 404, 'Tag gone');

  const m = await s.request('POST', '/v1/models/Membership/items', { PK: 'team#1', SK: 7 });
  t.equal(m.status, 201, 'Membership create');
  t.match(m.json, { PK: 'team#1', SK: 7, version: 0 });
  const put = ok(t, await s.request('PUT', '/v1/models/Membership/items/team%231/7', { version: 0 }), 'Membership put with the expected version');
  t.equal(put.version, 1);
  t.equal(put.createdAt, m.json.createdAt, 'createdAt kept');
  problem(t, await s.request('PATCH', '/v1/models/Membership/items/team%231/7', { remove: ['version'] }), 400, 'ErrInvalidRequest', 'Membership PATCH removing a lifecycle attribute');
  const q = ok(t, await s.request('POST', '/v1/models/Membership/query', { partition: 'team#1' }), 'Membership query');
  t.same(q.items.map((i: Json) => i.SK), [7]);
  t.equal((await s.request('DELETE', '/v1/models/Membership/items/team%231/7', undefined, { 'if-match': '"1"' })).status, 204, 'Membership delete');
}

await forEachBackend(
  t,
  REGION,
  async (t, { sidecar: s }) => {
    await t.test('models of keys only, or keys and lifecycle attributes, load and serve CRUD', (t) => keysOnlyModels(t, s));
  },
  { schemasDir: schemasDir({ 'keys-only.yml': KEYS_ONLY }) },
);

// ------------------------------------------------------------------ decrypted payloads of the wrong type (embedded)

const SECRETS = `dms_version: "0.1"
models:
  - name: "Secret"
    table: { name: "secrets_payload_types" }
    keys:
      partition: { attribute: "id", type: "S" }
    attributes:
      - { attribute: "id", type: "S", required: true, roles: ["pk"] }
      - { attribute: "label", type: "S", optional: true }
      - { attribute: "note", type: "S", optional: true, encryption: { v: 1 } }
      - { attribute: "codes", type: "SS", optional: true, encryption: { v: 1 } }
      - { attribute: "nums", type: "NS", optional: true, encryption: { v: 1 } }
      - { attribute: "blobs", type: "BS", optional: true, encryption: { v: 1 } }
      - { attribute: "doc", type: "M", optional: true, encryption: { v: 1 } }
`;

await t.test('a decrypted payload must have the attribute\'s DMS type', async (t) => {
  const kek = randomBytes(32);
  const s = await startTestSidecar({ schemasDir: schemasDir({ 'secrets.yml': SECRETS }), localKek: kek.toString('base64') });
  t.teardown(() => s.close());
  const provider = new LocalKeyProvider(kek);
  const dataKey = await provider.generateDataKey();
  const CANARY = `CANARY-${randomUUID()}`;
  const bytes = (text: string) => new Uint8Array(Buffer.from(text));

  const good = await s.request('POST', '/v1/models/Secret/items', { id: 'good', label: 'LABEL-GOOD', note: CANARY, codes: ['a', 'b'], nums: [1, 2], doc: { k: CANARY } });
  t.equal(good.status, 201, 'the sidecar writes and reads every type');

  const cases: Array<[string, string, AttributeValue, boolean]> = [
    ['an M inside an S attribute', 'note', { M: { secret: { S: CANARY } } }, false],
    ['an N inside an S attribute', 'note', { N: '42' }, false],
    ['an S inside an M attribute', 'doc', { S: CANARY }, false],
    ['an L inside an SS attribute', 'codes', { L: [{ S: CANARY }] }, false],
    ['an SS with a duplicate member', 'codes', { SS: [CANARY, CANARY] }, false],
    ['an empty SS', 'codes', { SS: [] }, false],
    ['an NS with the same number twice', 'nums', { NS: ['1', '1.0'] }, false],
    ['a BS with a duplicate member', 'blobs', { BS: [bytes(CANARY), bytes(CANARY)] }, false],
    ['an SS nested in a map with a duplicate member', 'doc', { M: { inner: { SS: [CANARY, CANARY] } } }, false],
    ['NULL (a null or empty value) in an S attribute', 'note', { NULL: true }, true],
    ['an SS of distinct members', 'codes', { SS: ['x', 'y'] }, true],
    ['an M in an M attribute', 'doc', { M: { any: { L: [{ N: '1' }] } } }, true],
  ];
  for (const [what, attribute, payload, valid] of cases) {
    await t.test(what, async (t) => {
      const id = `crafted-${attribute}-${randomUUID().slice(0, 6)}`;
      const item = { id: { S: id }, label: { S: 'LABEL-CRAFTED' }, [attribute]: sealAttribute(attribute, payload, dataKey) };
      await s.sidecar.backend.client.send(new PutItemCommand({ TableName: 'secrets_payload_types', Item: item }));
      const reads = [
        ['GET', await s.request('GET', `/v1/models/Secret/items/${id}`)],
        ['scan', await s.request('POST', '/v1/models/Secret/scan', { filter: { attr: 'id', op: '=', value: id } })],
        ['batch-get', await s.request('POST', '/v1/models/Secret/batch-get', { keys: [{ id }, { id: 'good' }] })],
      ] as const;
      for (const [route, res] of reads) {
        if (valid) {
          t.equal(res.status, 200, `${route}: 200`);
          continue;
        }
        problem(t, res, 500, 'ErrInvalidEncryptedEnvelope', route);
        t.equal(res.json?.attribute, attribute, `${route}: names the attribute`);
        t.notOk(res.text.includes(CANARY), `${route}: no plaintext in the body`);
        t.notMatch(res.text, /LABEL-/, `${route}: no partial item`);
      }
      await s.request('DELETE', `/v1/models/Secret/items/${id}`);
    });
  }
  const back = ok(t, await s.request('GET', '/v1/models/Secret/items/good'), 'the good item');
  t.same(back.codes.sort(), ['a', 'b']);
  t.equal(back.note, CANARY);
});
