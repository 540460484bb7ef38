import t from 'tap';
import { DescribeTableCommand, GetItemCommand, UpdateTableCommand } from '@aws-sdk/client-dynamodb';
import type { AttributeValue } from '../src/codec/attribute-value.js';
import { signatureHeaders } from '../src/store/dataplane/sigv4.js';
import { forEachBackend } from './helpers/backends.js';
import { startTestSidecar, type TestSidecar } from './helpers/sidecar.js';

const REGION = 'af-south-1';
const KEK = Buffer.alloc(32, 3).toString('base64');
const TAX_ID = 'TAX-SECRET-4711';
const BIG = '12345678901234567890123456789012345678';

type Wire = Record<string, unknown>;

/** A raw attribute value (binaries base64 already, as the backend's data plane returns them) as a stream record carries it. */
function wire(av: AttributeValue): unknown {
  const b64 = (b: string | Uint8Array) => (typeof b === 'string' ? b : Buffer.from(b).toString('base64'));
  if (av.B !== undefined) return { B: b64(av.B) };
  if (av.BS !== undefined) return { BS: av.BS.map(b64) };
  if (av.L !== undefined) return { L: av.L.map(wire) };
  if (av.M !== undefined) return { M: wireItem(av.M) };
  const [type, value] = Object.entries(av).find(([, v]) => v !== undefined)!;
  return { [type]: value };
}
const wireItem = (item: Record<string, AttributeValue>): Wire => Object.fromEntries(Object.entries(item).map(([k, v]) => [k, wire(v)]));

/** The item as the backend stores it: envelopes still sealed. */
async function rawImage(s: TestSidecar, pk: string, sk: string): Promise<Wire> {
  const out = await s.sidecar.backend.client.send(new GetItemCommand({ TableName: 'users', Key: { PK: { S: pk }, SK: { S: sk } }, ConsistentRead: true }));
  return wireItem(out.Item!);
}

/** The same image with one bit of the taxId envelope's ciphertext flipped. */
function tampered(image: Wire): Wire {
  const env = structuredClone(image.taxId) as { M: { ct: { B: string } } };
  const ct = Buffer.from(env.M.ct.B, 'base64');
  ct[0] ^= 1;
  env.M.ct.B = ct.toString('base64');
  return { ...image, taxId: env };
}

const user = (pk: string) => ({
  PK: pk,
  SK: 'PROFILE',
  email: `${pk.toLowerCase()}@example.com`,
  name: 'Ada',
  age: 36,
  tags: ['a', 'b'],
  scores: [BIG, 1.5],
  avatar: Buffer.from([0, 1, 2, 250]).toString('base64'),
  active: true,
  profile: { city: 'Oslo', n: BIG },
  history: [1, 'two', { three: 3 }],
  prefs: { theme: 'dark', sizes: [1, 2] },
  taxId: TAX_ID,
  medical: { blood: 'AB' },
});

/**
 * One call to moto's DynamoDB Streams API (JSON protocol, signed for `dynamodb` as the AWS SDK signs it). There is no
 * @aws-sdk/client-dynamodb-streams in the project, and the DynamoDB client cannot send these operations.
 */
async function streams(endpoint: string, operation: string, input: Record<string, unknown>): Promise<any> {
  const url = new URL(endpoint);
  const body = JSON.stringify(input);
  const headers: Record<string, string> = {
    host: url.host,
    'content-type': 'application/x-amz-json-1.0',
    'x-amz-target': `DynamoDBStreams_20120810.${operation}`,
  };
  const signed = signatureHeaders({
    method: 'POST',
    path: '/',
    headers,
    body,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'testing', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing' },
    region: REGION,
    service: 'dynamodb',
    date: new Date(),
  });
  const res = await fetch(url, { method: 'POST', headers: { ...headers, ...signed }, body });
  const json = await res.json();
  if (!res.ok) throw new Error(`${operation}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Every record of the table's stream, in order, as GetRecords returns them. */
async function streamRecords(endpoint: string, streamArn: string): Promise<any[]> {
  const { StreamDescription } = await streams(endpoint, 'DescribeStream', { StreamArn: streamArn });
  const records: any[] = [];
  for (const shard of StreamDescription.Shards) {
    let { ShardIterator } = await streams(endpoint, 'GetShardIterator', { StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' });
    while (ShardIterator) {
      const page = await streams(endpoint, 'GetRecords', { ShardIterator, Limit: 1000 });
      records.push(...page.Records);
      if (page.Records.length === 0) break;
      ShardIterator = page.NextShardIterator;
    }
  }
  return records;
}

await forEachBackend(
  t,
  REGION,
  async (t, { name, sidecar: s }) => {
    const decode = (body: unknown, headers?: Record<string, string>) => s.request('POST', '/v1/models/User/decode', body, headers);
    const get = async (pk: string) => (await s.request('GET', `/v1/models/User/items/${encodeURIComponent(pk)}/PROFILE?consistent=true`)).json;

    t.equal((await s.request('POST', '/v1/models/User/items', user('USER#1'))).status, 201);
    const inserted = await rawImage(s, 'USER#1', 'PROFILE');
    const gotInserted = await get('USER#1');
    t.equal((await s.request('PATCH', '/v1/models/User/items/USER%231/PROFILE', { set: { name: 'Ada L.', age: 37, taxId: 'TAX-SECRET-4712' } })).status, 200);
    const modified = await rawImage(s, 'USER#1', 'PROFILE');
    const gotModified = await get('USER#1');
    const keys = { PK: { S: 'USER#1' }, SK: { S: 'PROFILE' } };

    await t.test(`${name}: a Lambda stream event decodes to what GET returns, record by record`, async (t) => {
      t.not(JSON.stringify(inserted).includes(TAX_ID), true, 'the raw image holds the envelope, not the plaintext');
      const res = await decode({
        Records: [
          { eventID: 'e1', eventName: 'INSERT', eventSource: 'aws:dynamodb', dynamodb: { Keys: keys, NewImage: inserted, SequenceNumber: '1', StreamViewType: 'NEW_AND_OLD_IMAGES' } },
          { eventID: 'e2', eventName: 'MODIFY', dynamodb: { Keys: keys, OldImage: inserted, NewImage: modified } },
          { eventID: 'e3', eventName: 'REMOVE', dynamodb: { Keys: keys, OldImage: modified } },
          { eventID: 'e4', eventName: 'REMOVE', dynamodb: { Keys: keys } },
        ],
      });
      t.equal(res.status, 200, res.text);
      const [insert, modify, remove, keysOnly] = res.json.records;
      t.same(insert, { eventID: 'e1', eventName: 'INSERT', keys: { PK: 'USER#1', SK: 'PROFILE' }, new: gotInserted });
      t.strictSame(insert.new, gotInserted, 'identical to GET: numbers exact, sets, binary, json, decrypted attributes');
      t.equal(insert.new.taxId, TAX_ID);
      t.same(insert.new.scores, [BIG, 1.5]);
      t.equal(insert.new.profile.n, BIG);
      t.strictSame(modify.old, gotInserted);
      t.strictSame(modify.new, gotModified);
      t.equal(modify.new.age, 37);
      t.strictSame(remove, { eventID: 'e3', eventName: 'REMOVE', keys: { PK: 'USER#1', SK: 'PROFILE' }, old: gotModified });
      t.strictSame(keysOnly, { eventID: 'e4', eventName: 'REMOVE', keys: { PK: 'USER#1', SK: 'PROFILE' } });
    });

    await t.test(`${name}: a record that does not fit or whose envelope fails gets its own problem; the rest decode`, async (t) => {
      const res = await decode({
        Records: [
          { eventID: 'bad-type', eventName: 'INSERT', dynamodb: { Keys: keys, NewImage: { ...inserted, age: { S: 'old' } } } },
          { eventID: 'tampered', eventName: 'MODIFY', dynamodb: { Keys: keys, OldImage: inserted, NewImage: tampered(modified) } },
          { eventID: 'other-table', eventName: 'INSERT', dynamodb: { Keys: { id: { S: 's1' } }, NewImage: { id: { S: 's1' }, userId: { S: 'u' } } } },
          { eventID: 'good', eventName: 'INSERT', dynamodb: { Keys: keys, NewImage: inserted } },
          { eventID: 'bad-time', eventName: 'INSERT', dynamodb: { Keys: keys, NewImage: { ...inserted, createdAt: { S: 'yesterday' } } } },
          { eventID: 'bad-int', eventName: 'INSERT', dynamodb: { Keys: keys, NewImage: { ...inserted, age: { N: '1.5' } } } },
        ],
      });
      t.equal(res.status, 200, res.text);
      const [badType, bad, other, good] = res.json.records;
      t.equal(badType.problem.code, 'ErrInvalidItem');
      t.equal(badType.problem.attribute, 'age');
      t.match(badType.problem.detail, /NewImage: attribute age is S, but User declares it N/);
      t.notOk('new' in badType || 'keys' in badType, 'a failed record carries no images');
      t.equal(bad.problem.code, 'ErrInvalidEncryptedEnvelope');
      t.equal(bad.problem.status, 422);
      t.equal(bad.problem.attribute, 'taxId');
      t.equal(bad.eventID, 'tampered');
      t.equal(other.problem.code, 'ErrMissingPrimaryKey');
      t.strictSame(good.new, gotInserted);
      const [badTime, badInt] = res.json.records.slice(4);
      t.equal(badTime.problem.code, 'ErrInvalidItem', 'a value GET\'s schema does not admit: the document stays true');
      t.equal(badTime.problem.attribute, 'createdAt');
      t.notMatch(badTime.problem.detail, /yesterday/, 'the value is not echoed');
      t.equal(badInt.problem.attribute, 'age');
      t.notOk(JSON.stringify([badType, bad, other]).includes(TAX_ID), 'problems never carry plaintext');
    });

    await t.test(`${name}: a list of raw items and one raw item`, async (t) => {
      const list = await decode({ items: [inserted, { ...modified, tags: { N: '1' } }, modified] });
      t.equal(list.status, 200, list.text);
      t.strictSame(list.json.items[0], { item: gotInserted });
      t.equal(list.json.items[1].problem.code, 'ErrInvalidItem');
      t.equal(list.json.items[1].problem.attribute, 'tags');
      t.strictSame(list.json.items[2], { item: gotModified });

      const one = await decode({ item: modified });
      t.equal(one.status, 200, one.text);
      t.strictSame(one.json, { item: gotModified });

      const broken = await decode({ item: tampered(modified) });
      t.equal(broken.status, 422);
      t.equal(broken.json.code, 'ErrInvalidEncryptedEnvelope');
      t.notOk(broken.text.includes(TAX_ID));
    });

    await t.test(`${name}: malformed DynamoDB JSON and unknown partners are refused whole`, async (t) => {
      const malformed = await decode({ item: { PK: { S: 'x' }, SK: { Q: 'y' } } });
      t.equal(malformed.status, 400);
      t.equal(malformed.json.code, 'ErrInvalidRequest');
      const neither = await decode({ records: [] });
      t.equal(neither.status, 400);
      const tooMany = await decode({ Records: Array.from({ length: 10_001 }, () => ({ dynamodb: {} })) });
      t.equal(tooMany.status, 400);
      t.match(tooMany.json.detail, /10000/);
      const badBase64 = await decode({ items: [{ PK: { S: 'a' }, SK: { S: 'b' }, avatar: { B: '!!' } }] });
      t.equal(badBase64.status, 200, 'a value the converter refuses is that item\'s problem');
      t.equal(badBase64.json.items[0].problem.code, 'ErrInvalidItem');
      const partner = await decode({ item: modified }, { 'x-partner-id': 'nobody' });
      t.equal(partner.status, 403);
      t.equal(partner.json.code, 'ErrUnknownPartner');
    });

    if (name === 'moto') {
      await t.test('moto: records read from the table\'s DynamoDB Stream decode to what GET returned', async (t) => {
        const client = s.sidecar.backend.client;
        await client.send(new UpdateTableCommand({ TableName: 'users', StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' } }));
        const streamArn = (await client.send(new DescribeTableCommand({ TableName: 'users' }))).Table!.LatestStreamArn!;
        t.ok(streamArn, 'the table has a stream');

        t.equal((await s.request('POST', '/v1/models/User/items', user('USER#2'))).status, 201);
        const created = await get('USER#2');
        t.equal((await s.request('PATCH', '/v1/models/User/items/USER%232/PROFILE', { set: { taxId: 'TAX-SECRET-9', scores: [BIG] } })).status, 200);
        const patched = await get('USER#2');
        t.equal((await s.request('DELETE', '/v1/models/User/items/USER%232/PROFILE')).status, 204);

        const records = (await streamRecords(s.sidecar.backend.endpoint!, streamArn)).filter(
          (r) => r.dynamodb.Keys.PK.S === 'USER#2',
        );
        t.same(records.map((r) => r.eventName), ['INSERT', 'MODIFY', 'REMOVE']);
        t.notOk(JSON.stringify(records).includes('TAX-SECRET'), 'the stream carries envelopes, not plaintext');

        const res = await decode({ Records: records });
        t.equal(res.status, 200, res.text);
        const [insert, modify, remove] = res.json.records;
        const key = { PK: 'USER#2', SK: 'PROFILE' };
        t.strictSame(insert, { eventID: records[0].eventID, eventName: 'INSERT', keys: key, new: created });
        t.strictSame(modify, { eventID: records[1].eventID, eventName: 'MODIFY', keys: key, old: created, new: patched });
        t.equal(modify.new.taxId, 'TAX-SECRET-9');
        t.same(modify.new.scores, [BIG]);
        t.strictSame(remove, { eventID: records[2].eventID, eventName: 'REMOVE', keys: key, old: patched });
      });
    }

    await t.test(`${name}: envelopes open only with the request's keys`, async (t) => {
      const other = await startTestSidecar({ localKek: Buffer.alloc(32, 9).toString('base64') });
      t.teardown(() => other.close());
      const res = await other.request('POST', '/v1/models/User/decode', {
        Records: [
          { eventName: 'INSERT', dynamodb: { Keys: keys, NewImage: inserted } },
          { eventName: 'REMOVE', dynamodb: { Keys: keys } },
        ],
      });
      t.equal(res.status, 200, res.text);
      t.equal(res.json.records[0].problem.code, 'ErrInvalidEncryptedEnvelope');
      t.strictSame(res.json.records[1], { eventName: 'REMOVE', keys: { PK: 'USER#1', SK: 'PROFILE' } });
      t.notOk(res.text.includes(TAX_ID));
    });
  },
  { localKek: KEK },
);
