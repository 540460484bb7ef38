#!/usr/bin/env node
// The first request of a route compiles its validator. Cross-model routes (transactions) once compiled one validator
// over every model's branches: seconds of a blocked event loop with 50 models. This times the first and second
// request of each cross-model route and of a per-model route, and the RSS growth, on a fresh sidecar per route.
//   npm run build && node bench/first-request.mjs [entry]
import { request } from 'node:http';
import { MODEL_COUNT, LOAD_MODEL, tableSpecs, writeModels } from './lib/models.mjs';
import { logicalItem } from './lib/fixtures.mjs';
import { startBackend, startSidecar, stopAll } from './lib/harness.mjs';
import { MB, procSample } from './lib/procs.mjs';

const entry = process.argv[2] ?? 'dist/cli.js';
const rssMB = (pid) => MB(procSample(pid).rss);

function send(where, method, path, body) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request({ ...where, host: '127.0.0.1', method, path, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const key = (i) => ({ pk: `F#${i}`, sk: 'S' });
const routes = {
  'transactions/write': ['POST', '/v1/transactions/write', () => JSON.stringify({ items: [0, 1, 2, 3].map((i) => ({ op: 'create', model: LOAD_MODEL, item: logicalItem(`F#${i}`, 'S') })) })],
  'transactions/write (bad op)': ['POST', '/v1/transactions/write', () => JSON.stringify({ items: [{ op: 'upsert', model: LOAD_MODEL, key: key(0) }] })],
  'transactions/get': ['POST', '/v1/transactions/get', () => JSON.stringify({ items: [0, 1].map((i) => ({ model: LOAD_MODEL, key: key(i) })) })],
  'items/get (per model)': ['GET', `/v1/models/${LOAD_MODEL}/items/F%230/S`, () => undefined],
};

const schemasDir = await writeModels(MODEL_COUNT);
const backend = await startBackend('null', tableSpecs(MODEL_COUNT));
try {
  for (const [name, [method, path, body]] of Object.entries(routes)) {
    const sc = await startSidecar({ entry, endpoint: backend.endpoint, schemasDir });
    const before = rssMB(sc.pid);
    const first = await send(sc.where, method, path, body());
    const second = await send(sc.where, method, path, body());
    console.log(`${name.padEnd(28)} first ${first.ms.toFixed(0).padStart(6)} ms (${first.status}), second ${second.ms.toFixed(1)} ms, RSS ${before} → ${rssMB(sc.pid)} MB`);
    sc.child.kill('SIGTERM');
  }
} finally {
  await stopAll();
}
