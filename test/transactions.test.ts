// POST /v1/transactions/write and /v1/transactions/get over real HTTP, on the embedded store and on moto: every op
// across two models, all-or-nothing cancellation with one reason per item, expected versions, lifecycle, limits,
// idempotency keys, ordered reads with nulls. Then, on the embedded store, concurrent transfers that must never
// interleave: the sum is conserved and every concurrent read sees it.
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { forEachBackend } from './helpers/backends.js';
import { startTestSidecar, type TestResponse, type TestSidecar } from './helpers/sidecar.js';
import { problem, ok, type Json } from './helpers/assert.js';

const REGION = 'il-central-1';
const RUN = randomUUID().slice(0, 8);
const RFC3339_NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;




/** 409 ErrTransactionCanceled with one reason per item: `failed` indexes ConditionalCheckFailed, the rest None. */
function canceled(t: Test, res: TestResponse, count: number, failed: number[], what: string): void {
  problem(t, res, 409, 'ErrTransactionCanceled', what);
  const reasons: Json[] = res.json?.reasons ?? [];
  t.equal(reasons.length, count, `${what}: one reason per item`);
  t.same(
    reasons.map((r) => r.index),
    Array.from({ length: count }, (_, i) => i),
    `${what}: reasons indexed in item order`,
  );
  t.same(
    reasons.map((r) => r.code),
    Array.from({ length: count }, (_, i) => (failed.includes(i) ? 'ConditionalCheckFailed' : 'None')),
    `${what}: ConditionalCheckFailed at ${failed.join(', ')}, None elsewhere`,
  );
  t.ok(reasons.filter((r) => r.code === 'None').every((r) => r.message === undefined), `${what}: no message on None`);
}

const user = (pk: string, extra: Json = {}) => ({ PK: pk, SK: 'PROFILE', email: `${RUN}@example.com`, ...extra });
const ukey = (pk: string) => ({ PK: pk, SK: 'PROFILE' });
const order = (customer: string, no: number, extra: Json = {}) => ({ customer_id: customer, order_no: no, total: 10, currency: 'EUR', ...extra });
const okey = (customer: string, no: number) => ({ customer_id: customer, order_no: no });
const userPath = (pk: string) => `/v1/models/User/items/${encodeURIComponent(pk)}/PROFILE`;
const orderPath = (customer: string, no: number) => `/v1/models/Order/items/${encodeURIComponent(customer)}/${no}`;

async function readUser(s: TestSidecar, pk: string): Promise<Json | undefined> {
  const res = await s.request('GET', `${userPath(pk)}?consistent=true`);
  return res.status === 200 ? res.json : undefined;
}
async function readOrder(s: TestSidecar, customer: string, no: number): Promise<Json | undefined> {
  const res = await s.request('GET', `${orderPath(customer, no)}?consistent=true`);
  return res.status === 200 ? res.json : undefined;
}

await forEachBackend(t, REGION, async (t, { name, sidecar: s }) => {
  const P = `${RUN}#${name}#`;
  const C = `${RUN}-${name}-cust`;
  const txWrite = (body: Json) => s.request('POST', '/v1/transactions/write', body);
  const txGet = (body: Json) => s.request('POST', '/v1/transactions/get', body);
  const createUser = async (t: Test, pk: string, extra: Json = {}) => {
    const res = await s.request('POST', '/v1/models/User/items', user(pk, extra));
    t.equal(res.status, 201, `create ${pk}`);
    return res.json as Json;
  };
  const createOrder = async (t: Test, no: number, extra: Json = {}) => {
    const res = await s.request('POST', '/v1/models/Order/items', order(C, no, extra));
    t.equal(res.status, 201, `create order ${no}`);
    return res.json as Json;
  };

  await t.test('every op across User and Order commits together', async (t) => {
    const updated = await createUser(t, `${P}ALL#UPD`, { name: 'Before', age: 1 });
    await createUser(t, `${P}ALL#DEL`);
    const checked = await createOrder(t, 1, { total: 50 });
    const replaced = await createOrder(t, 2, { total: 5, status: 'open' });
    await new Promise((r) => setTimeout(r, 5));

    const res = ok(
      t,
      await txWrite({
        items: [
          { op: 'create', model: 'User', item: user(`${P}ALL#NEW`, { name: 'New', tags: ['a'] }) },
          { op: 'put', model: 'Order', item: order(C, 3, { total: 30 }) },
          { op: 'put', model: 'Order', item: order(C, 2, { total: 7 }), key: okey(C, 2) },
          { op: 'update', model: 'User', key: ukey(`${P}ALL#UPD`), update: { set: { name: 'After' }, add: { age: 10 } }, version: 0 },
          { op: 'delete', model: 'User', key: ukey(`${P}ALL#DEL`) },
          { op: 'check', model: 'Order', key: okey(C, 1), condition: { attr: 'total', op: '>=', value: 50 } },
        ],
      }),
      'commit',
    );
    t.same(res, { committed: 6 });

    const created = await readUser(s, `${P}ALL#NEW`);
    t.equal(created?.name, 'New');
    t.same(created?.tags, ['a']);
    t.equal(created?.version, 0, 'create: version 0');
    t.match(created?.createdAt, RFC3339_NANO, 'create: createdAt set');
    t.equal(created?.createdAt, created?.updatedAt, 'create: createdAt = updatedAt');

    const put = await readOrder(s, C, 3);
    t.equal(put?.total, 30);
    t.equal(put?.version, 0, 'put of a new item: version 0');
    t.match(put?.created_at, RFC3339_NANO);

    const replacedNow = await readOrder(s, C, 2);
    t.equal(replacedNow?.total, 7, 'put over an existing item replaces it');
    t.equal(replacedNow?.status, undefined, 'attributes absent from the put are removed');
    t.equal(replacedNow?.version, 1, 'put over an existing item bumps the version');
    t.equal(replacedNow?.created_at, replaced.created_at, 'and keeps created_at');

    const upd = await readUser(s, `${P}ALL#UPD`);
    t.equal(upd?.name, 'After');
    t.equal(upd?.age, 11);
    t.equal(upd?.version, 1, 'update bumps the version');
    t.equal(upd?.createdAt, updated.createdAt, 'update keeps createdAt');
    t.ok(upd!.updatedAt > updated.updatedAt, 'update moves updatedAt');
    t.equal(upd?.updatedAt, created?.updatedAt, 'one timestamp for the whole transaction');

    t.equal(await readUser(s, `${P}ALL#DEL`), undefined, 'delete removed the item');
    t.same(await readOrder(s, C, 1), checked, 'check leaves its item unchanged');
  });

  await t.test('atomicity: a failing condition on the last item cancels everything', async (t) => {
    const before = await createUser(t, `${P}ATOM#UPD`, { name: 'Same' });
    const victim = await createUser(t, `${P}ATOM#DEL`);
    await createOrder(t, 10, { total: 5 });
    const items = [
      { op: 'create', model: 'User', item: user(`${P}ATOM#NEW`) },
      { op: 'update', model: 'User', key: ukey(`${P}ATOM#UPD`), update: { set: { name: 'Changed' } } },
      { op: 'put', model: 'Order', item: order(C, 11) },
      { op: 'delete', model: 'User', key: ukey(`${P}ATOM#DEL`) },
      { op: 'check', model: 'Order', key: okey(C, 10), condition: { attr: 'total', op: '>', value: 1000 } },
    ];
    canceled(t, await txWrite({ items }), 5, [4], 'last item fails');
    t.equal(await readUser(s, `${P}ATOM#NEW`), undefined, 'create not applied');
    t.same(await readUser(s, `${P}ATOM#UPD`), before, 'update not applied');
    t.equal(await readOrder(s, C, 11), undefined, 'put not applied');
    t.same(await readUser(s, `${P}ATOM#DEL`), victim, 'delete not applied');

    canceled(
      t,
      await txWrite({ items: [{ op: 'create', model: 'User', item: user(`${P}ATOM#UPD`) }, items[2], items[0]] }),
      3,
      [0],
      'create on an existing key (first item)',
    );
    t.equal(await readOrder(s, C, 11), undefined, 'still nothing written');
    canceled(
      t,
      await txWrite({ items: [items[0], { op: 'update', model: 'User', key: ukey(`${P}ATOM#MISSING`), update: { set: { name: 'x' } } }] }),
      2,
      [1],
      'update of a missing item',
    );
    canceled(
      t,
      await txWrite({
        items: [
          { op: 'update', model: 'User', key: ukey(`${P}ATOM#UPD`), update: { set: { status: 'x' } }, condition: { attr: 'name', op: '=', value: 'Nope' } },
          items[2],
          { op: 'check', model: 'Order', key: okey(C, 10), condition: { not: { attr: 'currency', op: '=', value: 'EUR' } } },
        ],
      }),
      3,
      [0, 2],
      'two failing conditions',
    );
    t.same(await readUser(s, `${P}ATOM#UPD`), before, 'still unchanged');
  });

  await t.test('expected versions', async (t) => {
    await createUser(t, `${P}VER`);
    ok(t, await txWrite({ items: [{ op: 'update', model: 'User', key: ukey(`${P}VER`), update: { set: { name: 'v1' } }, version: 0 }] }), 'version 0 matches');
    t.equal((await readUser(s, `${P}VER`))?.version, 1);
    const stale = await txWrite({
      items: [
        { op: 'create', model: 'Order', item: order(C, 20) },
        { op: 'update', model: 'User', key: ukey(`${P}VER`), update: { set: { name: 'stale' } }, version: 0 },
      ],
    });
    canceled(t, stale, 2, [1], 'stale version on update');
    t.equal(await readOrder(s, C, 20), undefined, 'nothing written');
    t.equal((await readUser(s, `${P}VER`))?.name, 'v1');
    canceled(t, await txWrite({ items: [{ op: 'delete', model: 'User', key: ukey(`${P}VER`), version: 5 }] }), 1, [0], 'stale version on delete');
    canceled(t, await txWrite({ items: [{ op: 'check', model: 'User', key: ukey(`${P}VER`), version: 0 }] }), 1, [0], 'stale version on check');
    canceled(t, await txWrite({ items: [{ op: 'put', model: 'User', item: user(`${P}VER`), version: 0 }] }), 1, [0], 'stale version on put');
    canceled(t, await txWrite({ items: [{ op: 'check', model: 'User', key: ukey(`${P}VER#NONE`), version: 0 }] }), 1, [0], 'version on a missing item');
    ok(t, await txWrite({ items: [{ op: 'check', model: 'User', key: ukey(`${P}VER`), version: 1 }, { op: 'put', model: 'User', item: user(`${P}VER#2`) }] }), 'check with the right version');
    ok(t, await txWrite({ items: [{ op: 'put', model: 'User', item: user(`${P}VER`, { name: 'v2' }), version: 1 }] }), 'put with the right version');
    t.equal((await readUser(s, `${P}VER`))?.version, 2);
    ok(t, await txWrite({ items: [{ op: 'delete', model: 'User', key: ukey(`${P}VER`), version: 2 }] }), 'delete with the right version');
    t.equal(await readUser(s, `${P}VER`), undefined);
  });

  await t.test('limits: the same item twice, 101 items, bad entries', async (t) => {
    await createUser(t, `${P}LIM`);
    problem(
      t,
      await txWrite({
        items: [
          { op: 'update', model: 'User', key: ukey(`${P}LIM`), update: { set: { name: 'a' } } },
          { op: 'check', model: 'User', key: ukey(`${P}LIM`), condition: { attr: 'name', op: 'exists' } },
        ],
      }),
      400,
      'ErrInvalidRequest',
      'same key twice',
    );
    problem(
      t,
      await txWrite({ items: [{ op: 'put', model: 'Order', item: order(C, 30) }, { op: 'delete', model: 'Order', key: okey(C, 30) }] }),
      400,
      'ErrInvalidRequest',
      'same key twice (put item and delete key)',
    );
    ok(
      t,
      await txWrite({ items: [{ op: 'put', model: 'Order', item: order(C, 31) }, { op: 'check', model: 'User', key: { PK: C, SK: '31' }, condition: { attr: 'PK', op: 'not_exists' } }] }),
      'similar keys in different tables are different items',
    );
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ op: 'create', model: 'User', item: user(`${P}LIM#MANY#${i}`) }));
    problem(t, await txWrite({ items: many(101) }), 400, 'ErrInvalidRequest', '101 items');
    t.equal(await readUser(s, `${P}LIM#MANY#0`), undefined, 'nothing written');
    t.same(ok(t, await txWrite({ items: many(100) }), '100 items'), { committed: 100 });
    t.equal((await readUser(s, `${P}LIM#MANY#99`))?.version, 0);
    problem(t, await txWrite({ items: [] }), 400, 'ErrInvalidRequest', 'no items');
    problem(t, await txWrite({ items: [{ op: 'merge', model: 'User', key: ukey(`${P}LIM`) }] }), 400, 'ErrInvalidRequest', 'unknown op');
    problem(t, await txWrite({ items: [{ op: 'update', model: 'User', key: ukey(`${P}LIM`) }] }), 400, 'ErrInvalidRequest', 'update without update');
    problem(t, await txWrite({ items: [{ op: 'check', model: 'User', key: ukey(`${P}LIM`) }] }), 400, 'ErrInvalidRequest', 'check without condition or version');
    const unknownModel = await txWrite({ items: [{ op: 'delete', model: 'Nope', key: { id: 'x' } }] });
    t.ok([400, 404].includes(unknownModel.status), `unknown model refused (${unknownModel.status})`);
    problem(t, await txWrite({ items: [{ op: 'create', model: 'User', item: { PK: `${P}LIM#BAD`, SK: 'PROFILE' } }] }), 400, 'ErrInvalidItem', 'invalid item');
    problem(t, await txWrite({ items: [{ op: 'check', model: 'User', key: ukey(`${P}LIM`), condition: { attr: 'name', op: 'similar', value: 'x' } }] }), 400, 'ErrInvalidOperator', 'bad operator');
    problem(t, await txWrite({ items: [{ op: 'delete', model: 'User', key: ukey(`${P}LIM`) }], idempotencyKey: 'x'.repeat(37) }), 400, 'ErrInvalidRequest', 'idempotencyKey too long');
    t.ok(await readUser(s, `${P}LIM`), 'the item survived every refused request');
  });

  await t.test('idempotency keys', async (t) => {
    await createUser(t, `${P}IDEM`, { age: 0 });
    const key = `${RUN}-${name}-k1`;
    const body = { items: [{ op: 'update', model: 'User', key: ukey(`${P}IDEM`), update: { add: { age: 1 } } }], idempotencyKey: key };
    t.same(ok(t, await txWrite(body), 'first'), { committed: 1 });
    t.same(ok(t, await txWrite(body), 'retry'), { committed: 1 }, 'the retry gets the same success');
    let now = await readUser(s, `${P}IDEM`);
    t.equal(now?.age, 1, 'applied once');
    t.equal(now?.version, 1);

    const concurrentKey = `${RUN}-${name}-k2`;
    const concurrent = await Promise.all(Array.from({ length: 4 }, () => txWrite({ ...body, idempotencyKey: concurrentKey })));
    t.ok(concurrent.every((r) => r.status === 200), 'concurrent retries all succeed');
    now = await readUser(s, `${P}IDEM`);
    t.equal(now?.age, 2, 'concurrent retries applied once');

    const mismatch = await txWrite({ ...body, items: [{ ...body.items[0], update: { add: { age: 5 } } }] });
    problem(t, mismatch, 409, 'ErrIdempotentParameterMismatch', 'same key, different body');
    t.equal((await readUser(s, `${P}IDEM`))?.age, 2, 'nothing applied');
    t.same(ok(t, await txWrite({ ...body, idempotencyKey: `${RUN}-${name}-k3` }), 'another key'), { committed: 1 });
    t.same(ok(t, await txWrite({ items: body.items }), 'no key'), { committed: 1 });
    t.equal((await readUser(s, `${P}IDEM`))?.age, 4, 'other keys and no key apply again');
  });

  await t.test('a canceled transaction may be retried with the same idempotency key', async (t) => {
    await createUser(t, `${P}RETRY`, { status: 'pending' });
    const body = {
      items: [
        { op: 'update', model: 'User', key: ukey(`${P}RETRY`), update: { set: { name: 'done' } }, condition: { attr: 'status', op: '=', value: 'ready' } },
      ],
      idempotencyKey: `${RUN}-${name}-retry`,
    };
    canceled(t, await txWrite(body), 1, [0], 'first attempt: condition not met');
    const patched = await s.request('PATCH', userPath(`${P}RETRY`), { set: { status: 'ready' } });
    t.equal(patched.status, 200);
    t.same(ok(t, await txWrite(body), 'retry after the condition became true'), { committed: 1 });
    t.equal((await readUser(s, `${P}RETRY`))?.name, 'done');
  });

  await t.test('transactions/get: items in request order, null for missing', async (t) => {
    const u = await createUser(t, `${P}GET#1`, { name: 'One' });
    const o = await createOrder(t, 40, { total: 40 });
    const res = ok(
      t,
      await txGet({
        items: [
          { model: 'Order', key: okey(C, 40) },
          { model: 'User', key: ukey(`${P}GET#MISSING`) },
          { model: 'User', key: ukey(`${P}GET#1`) },
          { model: 'Order', key: okey(C, 41) },
          { model: 'User', key: ukey(`${P}GET#1`.replace('1', '2')) },
        ],
      }),
      'get',
    );
    t.same(res.items, [o, null, u, null, null]);
    const projected = ok(t, await txGet({ items: [{ model: 'User', key: ukey(`${P}GET#1`), fields: ['name'] }, { model: 'Order', key: okey(C, 40), fields: ['total'] }] }), 'fields');
    // moto ignores ProjectionExpression in TransactGetItems; the embedded store and DynamoDB honour it.
    if (name === 'dynalite') t.same(projected.items, [{ ...ukey(`${P}GET#1`), name: 'One' }, { ...okey(C, 40), total: 40 }], 'fields project');
    else t.same(projected.items.map((i: Json) => i?.name ?? i?.total), ['One', 40]);
    problem(t, await txGet({ items: [{ model: 'User', key: ukey(`${P}GET#1`) }, { model: 'User', key: ukey(`${P}GET#1`) }] }), 400, 'ErrInvalidRequest', 'duplicate key');
    problem(t, await txGet({ items: Array.from({ length: 101 }, (_, i) => ({ model: 'User', key: ukey(`${P}GET#${i}`) })) }), 400, 'ErrInvalidRequest', '101 items');
    problem(t, await txGet({ items: [] }), 400, 'ErrInvalidRequest', 'no items');
    const noSk = await txGet({ items: [{ model: 'User', key: { PK: 'x' } }] });
    t.equal(noSk.status, 400, 'key without SK');
    t.match(noSk.json?.code, /^(ErrMissingPrimaryKey|ErrInvalidRequest)$/);
    // DynamoDB and the embedded store take 100 items; moto still has the old limit of 25.
    const n = name === 'dynalite' ? 100 : 25;
    const many = ok(t, await txGet({ items: Array.from({ length: n }, (_, i) => ({ model: 'User', key: ukey(`${P}LIM#MANY#${n - 1 - i}`) })) }), `${n} items`);
    t.equal(many.items?.filter((i: Json | null) => i !== null).length, n);
    t.same(many.items?.map((i: Json) => i.PK), Array.from({ length: n }, (_, i) => `${P}LIM#MANY#${n - 1 - i}`), 'in order');
  });
});

// ------------------------------------------------------------------------------------------------ isolation

t.test('concurrent transactions on the embedded store never interleave', async (t) => {
  const s = await startTestSidecar();
  t.teardown(() => s.close());
  const C = `${RUN}-iso`;
  const START = 100;
  for (const no of [1, 2]) {
    const res = await s.request('POST', '/v1/models/Order/items', order(C, no, { total: no === 1 ? START : 0 }));
    t.equal(res.status, 201);
  }
  const transfer = (from: number, to: number, amount: number) =>
    s.request('POST', '/v1/transactions/write', {
      items: [
        { op: 'update', model: 'Order', key: okey(C, from), update: { add: { total: -amount } }, condition: { attr: 'total', op: '>=', value: amount } },
        { op: 'update', model: 'Order', key: okey(C, to), update: { add: { total: amount } } },
      ],
    });
  const snapshot = async () => {
    const res = await s.request('POST', '/v1/transactions/get', { items: [{ model: 'Order', key: okey(C, 1) }, { model: 'Order', key: okey(C, 2) }] });
    if (res.status !== 200) throw new Error(`transactions/get: ${res.status} ${res.text}`);
    return res.json.items as Json[];
  };

  // Round 1: 20 transfers of 10 from a total of 100: exactly 10 can succeed.
  let done = false;
  const sums: number[] = [];
  const reader = (async () => {
    while (!done) {
      const [a, b] = await snapshot();
      sums.push(a.total + b.total);
    }
  })();
  const interleaved = Array.from({ length: 20 }, async () => {
    const [a, b] = await snapshot();
    sums.push(a.total + b.total);
  });
  const results = await Promise.all(Array.from({ length: 20 }, () => transfer(1, 2, 10)));
  await Promise.all(interleaved);
  const committed = results.filter((r) => r.status === 200).length;
  t.equal(committed, 10, '10 transfers committed');
  t.ok(
    results.filter((r) => r.status !== 200).every((r) => r.status === 409 && r.json?.code === 'ErrTransactionCanceled' && r.json.reasons[0].code === 'ConditionalCheckFailed'),
    'the rest were canceled by the condition',
  );
  let [a, b] = await snapshot();
  t.equal(a.total, 0);
  t.equal(b.total, START);
  t.equal(a.version, 10, 'one version step per committed transfer');
  t.equal(b.version, 10);

  // Round 2: transfers both ways with uneven amounts; totals must match the committed ones exactly.
  const plan = Array.from({ length: 20 }, (_, i) => ({ from: i % 3 === 0 ? 1 : 2, amount: 3 + ((i * 7) % 11) }));
  const reads = Array.from({ length: 20 }, async () => {
    const [a, b] = await snapshot();
    sums.push(a.total + b.total);
  });
  const outcomes = await Promise.all(plan.map((p) => transfer(p.from, p.from === 1 ? 2 : 1, p.amount)));
  await Promise.all(reads);
  done = true;
  await reader;
  t.ok(outcomes.every((r) => r.status === 200 || (r.status === 409 && r.json?.code === 'ErrTransactionCanceled')), 'each transfer commits or is canceled');
  const net = plan.reduce((n, p, i) => (outcomes[i].status === 200 ? n + (p.from === 2 ? p.amount : -p.amount) : n), 0);
  [a, b] = await snapshot();
  t.equal(a.total, net, 'order 1 holds exactly the committed transfers');
  t.equal(b.total, START - net, 'order 2 too');
  t.ok(a.total >= 0 && b.total >= 0, 'no total went negative');
  t.ok(sums.length >= 40, `${sums.length} concurrent snapshots`);
  t.ok(sums.every((sum) => sum === START), 'every concurrent transactions/get saw the conserved sum');
});
