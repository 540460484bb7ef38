// The six benchmark operations, each in two equivalent forms:
//   http(n) → the sidecar request (method, path, body) a client sends;
//   sdk(n)  → the DynamoDB command an application would send itself with @aws-sdk/client-dynamodb,
//             shaped like what the sidecar sends for that request (same table, key, expressions, item size).
// `n` is a per-process request counter; `unique` ops use it to make every written key new, so creates never
// collide on a real store (dynalite) and no cell reads what another wrote.
import {
  BatchWriteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { avItem, logicalItem, nowNano } from './fixtures.mjs';
import { KMS_MODEL, LOAD_MODEL, LOAD_TABLE } from './models.mjs';

const TABLE = LOAD_TABLE;
const MODEL = LOAD_MODEL;
const RUN = `${process.pid.toString(36)}${Date.now().toString(36)}`;

const batchItems = Array.from({ length: 25 }, (_, i) => logicalItem(`B#${i}`, 'S'));
const txItems = Array.from({ length: 4 }, (_, i) => ({ op: 'create', model: MODEL, item: logicalItem(`T#${i}`, 'S') }));
const putIfAbsent = { ConditionExpression: 'attribute_not_exists(#n0)', ExpressionAttributeNames: { '#n0': 'pk' } };

export const OPS = {
  get: {
    label: 'GetItem',
    unique: false,
    http: () => ({ method: 'GET', path: `/v1/models/${MODEL}/items/G%231/S`, status: 200 }),
    sdk: () => new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'G#1' }, sk: { S: 'S' } }, ConsistentRead: false }),
  },
  put: {
    label: 'PutItem (create)',
    unique: true,
    http: (n) => ({
      method: 'POST',
      path: `/v1/models/${MODEL}/items`,
      body: JSON.stringify(logicalItem(`P#${RUN}-${n}`, 'S')),
      status: 201,
    }),
    sdk: (n) => new PutItemCommand({ TableName: TABLE, Item: avItem(`P#${RUN}-${n}`, 'S', nowNano()), ...putIfAbsent }),
  },
  update: {
    label: 'UpdateItem (PATCH set)',
    unique: false,
    // The item exists on both backends (seeded with the GetItem item on dynalite; the null endpoint answers it).
    http: () => ({ method: 'PATCH', path: `/v1/models/${MODEL}/items/G%231/S`, body: JSON.stringify({ set: { name: 'Grace Hopper' } }), status: 200 }),
    // What the sidecar sends for that PATCH: the set, updatedAt and `ADD version 1`, on an existing item, ALL_NEW.
    sdk: () =>
      new UpdateItemCommand({
        TableName: TABLE,
        Key: { pk: { S: 'G#1' }, sk: { S: 'S' } },
        UpdateExpression: 'SET #n0 = :v0, #n1 = :v1 ADD #n2 :v2',
        ConditionExpression: 'attribute_exists(#n3)',
        ExpressionAttributeNames: { '#n0': 'name', '#n1': 'updatedAt', '#n2': 'version', '#n3': 'pk' },
        ExpressionAttributeValues: { ':v0': { S: 'Grace Hopper' }, ':v1': { S: nowNano() }, ':v2': { N: '1' } },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
  },
  query: {
    label: 'Query (10 items)',
    unique: false,
    http: () => ({ method: 'POST', path: `/v1/models/${MODEL}/query`, body: JSON.stringify({ partition: 'Q#1', limit: 10 }), status: 200 }),
    sdk: () =>
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: '#n0 = :v0',
        ExpressionAttributeNames: { '#n0': 'pk' },
        ExpressionAttributeValues: { ':v0': { S: 'Q#1' } },
        ScanIndexForward: true,
        Limit: 10,
      }),
  },
  batch25: {
    label: 'BatchWrite (25 puts)',
    unique: false,
    http: () => ({ method: 'POST', path: `/v1/models/${MODEL}/batch-write`, body: JSON.stringify({ puts: batchItems }), status: 200 }),
    sdk: () => {
      const now = nowNano();
      return new BatchWriteItemCommand({
        RequestItems: { [TABLE]: Array.from({ length: 25 }, (_, i) => ({ PutRequest: { Item: avItem(`B#${i}`, 'S', now) } })) },
      });
    },
  },
  tx4: {
    label: 'TransactWrite (4 creates)',
    unique: false,
    // dynalite implements no transactions: this op runs against the null endpoint only.
    backends: ['null'],
    http: () => ({ method: 'POST', path: '/v1/transactions/write', body: JSON.stringify({ items: txItems }), status: 200 }),
    sdk: () => {
      const now = nowNano();
      return new TransactWriteItemsCommand({
        TransactItems: Array.from({ length: 4 }, (_, i) => ({ Put: { TableName: TABLE, Item: avItem(`T#${i}`, 'S', now), ...putIfAbsent } })),
      });
    },
  },
  // Not part of the matrix: the KMS test's encrypted write (Bench01.secret is an encrypted attribute).
  encPut: {
    label: 'encrypted create',
    unique: true,
    matrix: false,
    http: (n) => ({
      method: 'POST',
      path: `/v1/models/${KMS_MODEL}/items`,
      body: JSON.stringify({ pk: `E#${RUN}-${n}`, sk: 'S', name: 'enc', secret: `secret-${n}` }),
      status: 201,
    }),
    sdk: () => {
      throw new Error('encPut is sidecar-only');
    },
  },
};

/** The operations of the benchmark matrix, in table order. */
export const OP_NAMES = Object.keys(OPS).filter((name) => OPS[name].matrix !== false);
