#!/usr/bin/env node
// A null DynamoDB endpoint: answers the JSON protocol instantly with canned bodies chosen by X-Amz-Target.
// It never stores anything, so whatever time a request takes through the sidecar is the sidecar's own
// (plus the loopback hop). Run as its own process: `node bench/lib/null-dynamo.mjs [port]`; prints
// `{"port":N}` on stdout when listening. Env NULL_DYNAMO_TABLES: JSON table name → {KeySchema, AttributeDefinitions,
// GlobalSecondaryIndexes?} used by DescribeTable/CreateTable (unknown tables get a pk/sk key schema).
import http from 'node:http';
import { avItem } from './fixtures.mjs';
import { PK_SK_KEYS } from './models.mjs';

const TABLES = process.env.NULL_DYNAMO_TABLES ? JSON.parse(process.env.NULL_DYNAMO_TABLES) : {};
const DEFAULT_SPEC = PK_SK_KEYS;
const PREFIX = 'DynamoDB_20120810.';

const item = avItem('G#1', 'S');
const queryItems = Array.from({ length: 10 }, (_, i) => avItem('Q#1', String(i).padStart(3, '0')));

const json = (value) => Buffer.from(JSON.stringify(value));
/** Bodies that never depend on the request: built once. */
const CANNED = new Map([
  ['GetItem', json({ Item: item })],
  ['PutItem', json({})],
  ['UpdateItem', json({ Attributes: { ...item, version: { N: '1' } } })],
  ['DeleteItem', json({})],
  ['Query', json({ Items: queryItems, Count: 10, ScannedCount: 10 })],
  ['Scan', json({ Items: queryItems, Count: 10, ScannedCount: 10 })],
  ['BatchWriteItem', json({ UnprocessedItems: {} })],
  ['TransactWriteItems', json({})],
  ['TransactGetItems', json({ Responses: [] })],
  ['UpdateTimeToLive', json({ TimeToLiveSpecification: { Enabled: true } })],
  ['DescribeTimeToLive', json({ TimeToLiveDescription: { TimeToLiveStatus: 'DISABLED' } })],
  ['ListTables', json({ TableNames: Object.keys(TABLES) })],
]);

function tableDescription(name) {
  const spec = TABLES[name] ?? DEFAULT_SPEC;
  return {
    TableName: name,
    TableStatus: 'ACTIVE',
    TableArn: `arn:aws:dynamodb:us-east-1:000000000000:table/${name}`,
    CreationDateTime: 1767225600,
    ItemCount: 0,
    TableSizeBytes: 0,
    BillingModeSummary: { BillingMode: 'PAY_PER_REQUEST' },
    ...spec,
  };
}

/** The top-level attribute names of a request's ProjectionExpression (`#n` placeholders resolved), or undefined. */
function projected(req) {
  if (!req.ProjectionExpression) return undefined;
  return req.ProjectionExpression.split(',').map((p) => p.trim().split(/[.[]/)[0]).map((n) => req.ExpressionAttributeNames?.[n] ?? n);
}

const pick = (av, names) => Object.fromEntries(names.filter((n) => av[n] !== undefined).map((n) => [n, av[n]]));

// Operations whose answer depends on the body: the boot-time ones, and BatchGetItem, which applies the projection as DynamoDB
// does (the sidecar's lifecycle read before a batch put asks only for createdAt and version).
function dynamic(op, body) {
  const input = body.length ? JSON.parse(body) : {};
  switch (op) {
    case 'DescribeTable':
      return json({ Table: tableDescription(input.TableName) });
    case 'CreateTable':
      return json({ TableDescription: tableDescription(input.TableName) });
    case 'BatchGetItem': {
      const responses = {};
      for (const [table, req] of Object.entries(input.RequestItems ?? {})) {
        const names = projected(req);
        responses[table] = (req.Keys ?? []).map((key) => ({ ...(names ? pick(item, names) : item), ...key }));
      }
      return json({ Responses: responses, UnprocessedKeys: {} });
    }
    default:
      return undefined;
  }
}

const counts = new Map();
const HEADERS = { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'null-endpoint' };

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const target = String(req.headers['x-amz-target'] ?? '');
  const op = target.startsWith(PREFIX) ? target.slice(PREFIX.length) : target;
  counts.set(op, (counts.get(op) ?? 0) + 1);
  const canned = CANNED.get(op);
  if (canned) {
    // Drain the body, answer at once.
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { ...HEADERS, 'content-length': canned.length });
      res.end(canned);
    });
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = dynamic(op, Buffer.concat(chunks).toString('utf8'));
    } catch {
      body = undefined;
    }
    if (!body) {
      const err = json({ __type: 'com.amazonaws.dynamodb.v20120810#UnknownOperationException', message: `null endpoint: ${op}` });
      res.writeHead(400, { ...HEADERS, 'content-length': err.length });
      res.end(err);
      return;
    }
    res.writeHead(200, { ...HEADERS, 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 61_000;

const port = Number(process.argv[2] ?? 0);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});

// `kill -USR2` prints the per-operation request counts (handy when checking what the sidecar sent).
process.on('SIGUSR2', () => process.stderr.write(`${JSON.stringify(Object.fromEntries(counts))}\n`));
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
