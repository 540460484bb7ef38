import {
  CreateTableCommand,
  GetItemCommand,
  PutItemCommand,
  TransactGetItemsCommand,
  TransactWriteItemsCommand,
  waitUntilTableExists,
  type AttributeValue,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import t from 'tap';
import { openBackend } from '../src/store/backend.js';
import { EmbeddedDataPlane } from '../src/store/embedded/client.js';
import { IdempotencyCache } from '../src/store/embedded/coordinator.js';
import { RwLock } from '../src/store/embedded/rw-lock.js';

const TABLE = 'txn';
const backend = await openBackend({ region: 'us-east-1' });
t.teardown(() => backend.close());
// SDK commands through the backend's data plane (transactions through the coordinator); CreateTable through the control plane.
const client = backend.client;

await client.send(
  new CreateTableCommand({
    TableName: TABLE,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
  }),
);
await waitUntilTableExists({ client: await backend.tables.control(), maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { TableName: TABLE });

type Item = Record<string, AttributeValue>;
const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });
const key = (pk: string): Item => ({ pk: S(pk), sk: S('x') });

async function put(pk: string, attrs: Item = {}): Promise<void> {
  await client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key(pk), ...attrs } }));
}
async function get(pk: string): Promise<Item | undefined> {
  return (await client.send(new GetItemCommand({ TableName: TABLE, Key: key(pk), ConsistentRead: true }))).Item;
}
function transact(items: TransactWriteItem[], token?: string): Promise<unknown> {
  return client.send(new TransactWriteItemsCommand({ TransactItems: items, ...(token ? { ClientRequestToken: token } : {}) }));
}
async function rejection(p: Promise<unknown>): Promise<Error & Record<string, any>> {
  try {
    await p;
  } catch (err) {
    return err as Error & Record<string, any>;
  }
  throw new Error('expected a rejection');
}
const addOne = (pk: string): TransactWriteItem => ({
  Update: { TableName: TABLE, Key: key(pk), UpdateExpression: 'ADD #c :one', ExpressionAttributeNames: { '#c': 'counter' }, ExpressionAttributeValues: { ':one': N(1) } },
});

t.test('the embedded backend uses the transactional client', async (t) => {
  t.equal(backend.kind, 'embedded');
  t.ok(backend.dataPlane instanceof EmbeddedDataPlane);
});

t.test('a failing condition in the last item cancels everything', async (t) => {
  await put('atom-existing', { v: N(1) });
  const err = await rejection(
    transact([
      { Put: { TableName: TABLE, Item: { ...key('atom-a'), v: N(1) } } },
      { Update: { TableName: TABLE, Key: key('atom-existing'), UpdateExpression: 'SET v = :two', ExpressionAttributeValues: { ':two': N(2) } } },
      {
        Delete: {
          TableName: TABLE,
          Key: key('atom-existing-2'),
          ConditionExpression: 'attribute_exists(pk)',
        },
      },
    ]),
  );
  t.ok(err.name === 'TransactionCanceledException');
  t.equal(err.name, 'TransactionCanceledException');
  t.match(err.message, 'Transaction cancelled, please refer cancellation reasons for specific reasons [None, None, ConditionalCheckFailed]');
  t.same(err.CancellationReasons, [{ Code: 'None' }, { Code: 'None' }, { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' }]);
  t.equal(await get('atom-a'), undefined, 'the put is not applied');
  t.same((await get('atom-existing'))?.v, N(1), 'the update is not applied');
});

t.test('ALL_OLD returns the current item of a failing existing item', async (t) => {
  await put('old', { v: N(5) });
  const err = await rejection(
    transact([
      {
        Update: {
          TableName: TABLE,
          Key: key('old'),
          UpdateExpression: 'SET v = :n',
          ConditionExpression: 'v > :n',
          ExpressionAttributeValues: { ':n': N(7) },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      { Put: { TableName: TABLE, Item: { ...key('old-2') } } },
    ]),
  );
  t.same(err.CancellationReasons, [
    { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed', Item: { ...key('old'), v: N(5) } },
    { Code: 'None' },
  ]);
  t.equal(await get('old-2'), undefined);
});

t.test('ConditionCheck with attribute_exists on a missing item fails', async (t) => {
  const err = await rejection(
    transact([
      { ConditionCheck: { TableName: TABLE, Key: key('nobody'), ConditionExpression: 'attribute_exists(pk)' } },
      { Put: { TableName: TABLE, Item: { ...key('cc-put') } } },
    ]),
  );
  t.ok(err.name === 'TransactionCanceledException');
  t.same(err.CancellationReasons.map((r: { Code: string }) => r.Code), ['ConditionalCheckFailed', 'None']);
  t.equal(await get('cc-put'), undefined);
});

t.test('a transaction whose conditions all pass commits every action', async (t) => {
  await put('ok-upd', { n: N(1) });
  await put('ok-del');
  await put('ok-check', { state: S('open') });
  const out = await transact([
    { ConditionCheck: { TableName: TABLE, Key: key('ok-check'), ConditionExpression: '#s = :open', ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':open': S('open') } } },
    { Put: { TableName: TABLE, Item: { ...key('ok-put'), v: S('new') }, ConditionExpression: 'attribute_not_exists(pk)' } },
    { Update: { TableName: TABLE, Key: key('ok-upd'), UpdateExpression: 'SET n = n + :one', ConditionExpression: 'n = :one', ExpressionAttributeValues: { ':one': N(1) } } },
    { Delete: { TableName: TABLE, Key: key('ok-del'), ConditionExpression: 'attribute_exists(pk)' } },
  ]);
  t.same(out, {}, 'an empty answer, as DynamoDB gives');
  t.same(await get('ok-put'), { ...key('ok-put'), v: S('new') });
  t.same((await get('ok-upd'))?.n, N(2));
  t.equal(await get('ok-del'), undefined);
  t.same(await get('ok-check'), { ...key('ok-check'), state: S('open') }, 'a ConditionCheck changes nothing');
});

t.test('an apply failure rolls back the items already written', async (t) => {
  await put('rb-del', { v: N(1) });
  await put('rb-upd', { v: N(1) });
  await put('rb-str', { s: S('text') });
  const err = await rejection(
    transact([
      { Put: { TableName: TABLE, Item: { ...key('rb-put'), v: N(1) } } },
      { Delete: { TableName: TABLE, Key: key('rb-del') } },
      { Update: { TableName: TABLE, Key: key('rb-upd'), UpdateExpression: 'SET v = :nine', ExpressionAttributeValues: { ':nine': N(9) } } },
      { Update: { TableName: TABLE, Key: key('rb-str'), UpdateExpression: 'ADD s :one', ExpressionAttributeValues: { ':one': N(1) } } },
    ]),
  );
  t.equal(err.name, 'ValidationException');
  t.equal(await get('rb-put'), undefined, 'the new item is removed');
  t.same(await get('rb-del'), { ...key('rb-del'), v: N(1) }, 'the deleted item is restored');
  t.same(await get('rb-upd'), { ...key('rb-upd'), v: N(1) }, 'the updated item is restored');
  t.same(await get('rb-str'), { ...key('rb-str'), s: S('text') });
});

t.test('request validation', async (t) => {
  const dup = await rejection(
    transact([
      { Put: { TableName: TABLE, Item: { ...key('dup'), v: N(1) } } },
      { Update: { TableName: TABLE, Key: key('dup'), UpdateExpression: 'SET v = :v', ExpressionAttributeValues: { ':v': N(2) } } },
    ]),
  );
  t.equal(dup.name, 'ValidationException');
  t.match(dup.message, 'Transaction request cannot include multiple operations on one item');
  t.equal(await get('dup'), undefined);

  const many = Array.from({ length: 101 }, (_, i): TransactWriteItem => ({ Put: { TableName: TABLE, Item: key(`many-${i}`) } }));
  const tooMany = await rejection(transact(many));
  t.equal(tooMany.name, 'ValidationException');
  t.equal(await get('many-0'), undefined);

  t.equal((await rejection(transact([]))).name, 'ValidationException', 'no items');
  const twoActions = await rejection(transact([{ Put: { TableName: TABLE, Item: key('two') }, Delete: { TableName: TABLE, Key: key('two') } }]));
  t.equal(twoActions.name, 'ValidationException', 'two actions in one item');
  t.equal((await rejection(transact([{}]))).name, 'ValidationException', 'no action');
  const unused = await rejection(transact([{ Delete: { TableName: TABLE, Key: key('u'), ExpressionAttributeValues: { ':x': N(1) } } }]));
  t.equal(unused.name, 'ValidationException', 'an unused expression value');

  const hundred = await transact(many.slice(0, 100));
  t.same(hundred, {}, '100 items are allowed');
  t.ok(await get('many-99'));
});

t.test('ClientRequestToken makes a transaction idempotent', async (t) => {
  const first = await transact([addOne('idem')], 'token-1');
  const again = await transact([addOne('idem')], 'token-1');
  t.hasStrict(again, first);
  t.same((await get('idem'))?.counter, N(1), 'applied once');

  const mismatch = await rejection(transact([addOne('idem-other')], 'token-1'));
  t.ok(mismatch.name === 'IdempotentParameterMismatchException');
  t.equal(await get('idem-other'), undefined);

  await transact([addOne('idem')], 'token-2');
  t.same((await get('idem'))?.counter, N(2), 'a new token applies again');

  const cancel = [{ ConditionCheck: { TableName: TABLE, Key: key('idem-none'), ConditionExpression: 'attribute_exists(pk)' } }, addOne('idem')];
  t.ok((await rejection(transact(cancel, 'token-3'))).name === 'TransactionCanceledException');
  await put('idem-none');
  t.ok((await rejection(transact(cancel, 'token-3'))).name === 'TransactionCanceledException', 'a cancellation replays too');
  t.same((await get('idem'))?.counter, N(2));
});

t.test('IdempotencyCache expires entries and stays bounded', async (t) => {
  let now = 0;
  const cache = new IdempotencyCache({ ttlMs: 1000, maxEntries: 3, now: () => now });
  cache.remember('a', 'fp-a', { ok: true });
  t.same(cache.lookup('a', 'fp-a'), { ok: true });
  t.throws(() => cache.lookup('a', 'other'), { name: 'IdempotentParameterMismatchException' });
  now = 1000;
  t.equal(cache.lookup('a', 'other'), undefined, 'expired after the window');
  for (const token of ['b', 'c', 'd', 'e']) cache.remember(token, token, { ok: true });
  t.equal(cache.size, 3);
  t.equal(cache.lookup('b', 'b'), undefined, 'the oldest entry is dropped');
  t.ok(cache.lookup('e', 'e'));
});

t.test('TransactGetItems returns items in order, missing ones empty', async (t) => {
  await put('g1', { v: N(1), w: S('w1') });
  await put('g2', { v: N(2), w: S('w2') });
  const { Responses } = await client.send(
    new TransactGetItemsCommand({
      TransactItems: [
        { Get: { TableName: TABLE, Key: key('g2') } },
        { Get: { TableName: TABLE, Key: key('g-missing') } },
        { Get: { TableName: TABLE, Key: key('g1'), ProjectionExpression: '#v', ExpressionAttributeNames: { '#v': 'v' } } },
      ],
    }),
  );
  t.same(Responses, [{ Item: { ...key('g2'), v: N(2), w: S('w2') } }, {}, { Item: { v: N(1) } }]);
  const tooMany = Array.from({ length: 101 }, () => ({ Get: { TableName: TABLE, Key: key('g1') } }));
  t.equal((await rejection(client.send(new TransactGetItemsCommand({ TransactItems: tooMany })))).name, 'ValidationException');
});

t.test('concurrent transfers conserve the total and never interleave', async (t) => {
  const TOTAL = 30;
  await put('acct-a', { balance: N(20) });
  await put('acct-b', { balance: N(10) });
  const transfer = (from: string, to: string): TransactWriteItem[] => [
    { Update: { TableName: TABLE, Key: key(from), UpdateExpression: 'SET balance = balance - :one', ConditionExpression: 'balance >= :one', ExpressionAttributeValues: { ':one': N(1) } } },
    { Update: { TableName: TABLE, Key: key(to), UpdateExpression: 'SET balance = balance + :one', ExpressionAttributeValues: { ':one': N(1) } } },
  ];
  let committed = 0;
  let cancelled = 0;
  const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  // Staggered starts so reads and transactions genuinely overlap instead of queueing in two blocks.
  const transfers = Array.from({ length: 50 }, async (_, i) => {
    await pause(Math.random() * 40);
    try {
      await transact(i % 3 === 0 ? transfer('acct-b', 'acct-a') : transfer('acct-a', 'acct-b'));
      committed += 1;
    } catch (err) {
      if ((err as Error).name !== 'TransactionCanceledException') throw err;
      cancelled += 1;
    }
  });
  const sums: number[] = [];
  const singles: number[] = [];
  const balance = (item: Item | undefined): number => Number(item?.balance?.N);
  const readers = Array.from({ length: 4 }, async () => {
    for (let i = 0; i < 20; i += 1) {
      const { Responses = [] } = await client.send(
        new TransactGetItemsCommand({ TransactItems: [{ Get: { TableName: TABLE, Key: key('acct-a') } }, { Get: { TableName: TABLE, Key: key('acct-b') } }] }),
      );
      sums.push(balance(Responses[0].Item) + balance(Responses[1].Item));
      singles.push(balance(await get(i % 2 ? 'acct-a' : 'acct-b')));
      await pause(Math.random() * 3);
    }
  });
  await Promise.all([...transfers, ...readers]);

  t.equal(committed + cancelled, 50);
  t.ok(committed > 0);
  const a = balance(await get('acct-a'));
  const b = balance(await get('acct-b'));
  t.equal(a + b, TOTAL, 'the total is conserved');
  t.ok(a >= 0 && b >= 0, 'no balance goes negative');
  t.equal(sums.length, 80);
  t.ok(new Set(singles).size > 1, 'reads overlapped the transfers');
  t.same(sums.filter((s) => s !== TOTAL), [], 'every transactional read saw a consistent state');
  t.ok(singles.every((v) => Number.isInteger(v) && v >= 0 && v <= TOTAL), 'single reads see committed values');
});

t.test('RwLock is FIFO and writer-preferring', async (t) => {
  const lock = new RwLock();
  const order: string[] = [];
  const r1 = await lock.acquireRead();
  const w = lock.acquireWrite().then((release) => {
    order.push('w');
    return release;
  });
  const r2 = lock.acquireRead().then((release) => {
    order.push('r2');
    return release;
  });
  const r3 = lock.read(async () => void order.push('r3'));
  await new Promise((resolve) => setImmediate(resolve));
  t.same(order, [], 'a reader arriving behind a queued writer waits');
  r1();
  (await w)();
  (await r2)();
  await r3;
  t.same(order, ['w', 'r2', 'r3']);
  t.same(lock.state, { readers: 0, writer: false, queued: 0 });
});
