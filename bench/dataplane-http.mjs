#!/usr/bin/env node
// Which HTTP client the lean data-plane client should use: CPU and allocation per GetItem against the null endpoint
// (its own process) for the lean client (its own HTTP/1.1 connections, src/store/dataplane/http1.ts), the same signed
// request on a node:http keep-alive Agent and over an undici Pool (when installed), and the AWS SDK directly, in
// interleaved rounds. `npm run build && node bench/dataplane-http.mjs [seconds-per-round] [rounds]`
import { spawn } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { GCProfiler, getHeapStatistics } from 'node:v8';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { LeanDynamoClient } from '../dist/store/dataplane/client.js';
import { signatureHeaders } from '../dist/store/dataplane/sigv4.js';

const require = createRequire(import.meta.url);
const seconds = Number(process.argv[2] ?? 2);
const rounds = Number(process.argv[3] ?? 3);
const CONCURRENCY = 32;

const server = spawn(process.execPath, [new URL('./lib/null-dynamo.mjs', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
const [line] = await once(createInterface({ input: server.stdout }), 'line');
const endpoint = `http://127.0.0.1:${JSON.parse(line).port}`;
const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
const input = { TableName: 'users', Key: { pk: { S: 'G#1' }, sk: { S: 'S' } } };

const lean = new LeanDynamoClient({ region: 'us-east-1', endpoint, credentials });

/** The lean client's headers for one GetItem (host, content-type, target, signature) around `body`. */
function signedHeaders(host, body) {
  const headers = { host, 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.GetItem' };
  return Object.assign(headers, signatureHeaders({ method: 'POST', path: '/', headers, body, credentials, region: 'us-east-1', service: 'dynamodb', date: new Date() }));
}
const sdk = new DynamoDBClient({ region: 'us-east-1', endpoint, credentials });

let undiciGet;
try {
  const { Pool } = require('undici');
  const pool = new Pool(endpoint, { connections: 64, pipelining: 1 });
  const host = new URL(endpoint).host;
  undiciGet = async () => {
    const body = Buffer.from(JSON.stringify(input));
    const res = await pool.request({ method: 'POST', path: '/', headers: signedHeaders(host, body), body });
    return JSON.parse(await res.body.text());
  };
} catch {
  console.log('undici is not installed: only http1.ts, node:http and the SDK are measured');
}

// The same signed request on a node:http keep-alive Agent: what the lean client used before http1.ts.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const { hostname, port } = new URL(endpoint);
const nodeHttpGet = () =>
  new Promise((resolve, reject) => {
    const body = JSON.stringify(input);
    const req = http.request({ agent, method: 'POST', hostname, port, path: '/', headers: signedHeaders(`${hostname}:${port}`, body) }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });

const variants = {
  'lean client (http1.ts)': () => lean.GetItem(input),
  'signed node:http': nodeHttpGet,
  ...(undiciGet ? { 'lean undici Pool': undiciGet } : {}),
  'direct SDK': () => sdk.send(new GetItemCommand(input)),
};

async function round(fn) {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const cpu0 = process.cpuUsage();
  // Bytes allocated = growth of the used heap between collections, summed (GCProfiler reports both sides of each GC).
  const profiler = new GCProfiler();
  profiler.start();
  const used0 = getHeapStatistics().used_heap_size;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      await fn();
      n++;
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  const used1 = getHeapStatistics().used_heap_size;
  const { statistics } = profiler.stop();
  let allocated = 0;
  let from = used0;
  for (const gc of statistics) {
    allocated += gc.beforeGC.heapStatistics.usedHeapSize - from;
    from = gc.afterGC.heapStatistics.usedHeapSize;
  }
  allocated += used1 - from;
  return { n, cpuUs: (cpu.user + cpu.system) / n, rps: n / seconds, kbPerCall: allocated / n / 1024 };
}

const results = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (const fn of Object.values(variants)) for (let i = 0; i < 200; i++) await fn(); // warm-up
for (let r = 0; r < rounds; r++) {
  for (const [name, fn] of Object.entries(variants)) results[name].push(await round(fn));
}
for (const [name, rs] of Object.entries(results)) {
  const cpu = rs.map((x) => x.cpuUs.toFixed(0)).join(' / ');
  const rps = rs.map((x) => x.rps.toFixed(0)).join(' / ');
  const kb = rs.map((x) => x.kbPerCall.toFixed(1)).join(' / ');
  console.log(`${name.padEnd(24)} CPU µs/request ${cpu.padEnd(20)} req/s ${rps.padEnd(26)} KB allocated/request ${kb}`);
}
lean.close();
agent.destroy();
sdk.destroy();
server.kill();
