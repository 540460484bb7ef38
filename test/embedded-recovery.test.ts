// Boot recovery of the embedded store's write transactions: an intent left in the data directory (as a crash between
// a transaction's first and last write leaves it) is rolled back when the store opens, before anything is served —
// items the transaction changed get their before-images back (binary values and sets included), items it created are
// deleted — and the intent is gone afterwards. Intents of transactions that finished are removed as they finish.
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateTableCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  TransactWriteItemsCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import t from 'tap';
import { openBackend, type Backend } from '../src/store/backend.js';
import type { AttributeValue } from '../src/codec/attribute-value.js';
import { IntentJournal } from '../src/store/embedded/journal.js';

const TABLE = 'recovery';
const dataDir = mkdtempSync(join(tmpdir(), 'dynamorm-recovery-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
const intents = () => readdirSync(dataDir).filter((n) => n.startsWith('txn-intent-'));

// Binaries as the JSON protocol (and so the journal) carries them: standard base64.
const b64 = (bytes: number[]) => Buffer.from(bytes).toString('base64');
const key = (pk: string) => ({ pk: { S: pk }, sk: { B: b64([0, 255, 7]) } });
const before = {
  ...key('changed'),
  blob: { B: b64([1, 2, 3, 250]) },
  set: { BS: [b64([9]), b64([8, 8])] },
  nested: { M: { $b: { S: 'not binary' }, list: { L: [{ N: '1' }, { B: b64([4]) }] } } },
  name: { S: 'before' },
};

async function get(client: Backend['client'], pk: string): Promise<Record<string, AttributeValue> | undefined> {
  return (await client.send(new GetItemCommand({ TableName: TABLE, Key: key(pk), ConsistentRead: true }))).Item as Record<string, AttributeValue> | undefined;
}

t.test('an intent left by a crash is rolled back at open', async (t) => {
  const first = await openBackend({ region: 'us-east-1', dataDir });
  await first.client.send(
    new CreateTableCommand({
      TableName: TABLE,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'B' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
  await waitUntilTableExists({ client: await first.tables.control(), maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { TableName: TABLE });
  await first.client.send(new PutItemCommand({ TableName: TABLE, Item: before }));
  await first.client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key('deleted'), name: { S: 'kept' } } }));

  // A whole transaction leaves no intent behind.
  await first.client.send(
    new TransactWriteItemsCommand({ TransactItems: [{ Put: { TableName: TABLE, Item: { ...key('committed'), name: { S: 'c' } } } }] }),
  );
  t.same(intents(), [], 'a finished transaction removed its intent');

  // What a crash half-way through a transaction leaves: its durable intent, and some of its writes applied.
  const journal = new IntentJournal(dataDir);
  await journal.begin([
    { table: TABLE, key: key('changed'), before },
    { table: TABLE, key: key('created'), before: undefined },
    { table: TABLE, key: key('deleted'), before: { ...key('deleted'), name: { S: 'kept' } } },
  ]);
  writeFileSync(join(dataDir, 'txn-intent-99999999999999999999.tmp'), '{"v":1,"entr', { mode: 0o600 });
  await first.client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key('changed'), name: { S: 'after' } } }));
  await first.client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key('created'), name: { S: 'new' } } }));
  await first.client.send(new DeleteItemCommand({ TableName: TABLE, Key: key('deleted') }));
  const [intent] = intents().filter((n) => n.endsWith('.json'));
  t.equal(statSync(join(dataDir, intent)).mode & 0o777, 0o600, 'the intent file is 0600');
  await first.close();

  const second = await openBackend({ region: 'us-east-1', dataDir });
  t.teardown(() => second.close());
  t.equal(second.recovered, 1, 'one transaction rolled back at open');
  t.same(await get(second.client, 'changed'), before, 'changed item: before-image back, binary values and sets intact');
  t.equal(await get(second.client, 'created'), undefined, 'created item: gone');
  t.same(await get(second.client, 'deleted'), { ...key('deleted'), name: { S: 'kept' } }, 'deleted item: back');
  t.same(await get(second.client, 'committed'), { ...key('committed'), name: { S: 'c' } }, 'the earlier committed transaction stays');
  t.same(intents(), [], 'the intent and the partial file are gone');
});

t.test('without intents the store opens with nothing to recover', async (t) => {
  const again = await openBackend({ region: 'us-east-1', dataDir });
  t.teardown(() => again.close());
  t.equal(again.recovered, 0);
  t.same(await get(again.client, 'changed'), before, 'data as recovery left it');
});
