#!/usr/bin/env node
// A/B of two sidecar builds on one operation: both boot against one null endpoint (50 models), then rounds alternate
// A and B under the same closed-loop load (autocannon, 32 connections) and report the sidecar's CPU µs per request
// (from /proc) and req/s per round, with the median and the B/A ratio of CPU per request.
//   node bench/ab.mjs <entryA> <entryB> [--op batch25] [--seconds 3] [--rounds 6]
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { CLK_TCK, procSample } from './lib/procs.mjs';
import { CPU, initPinning, startBackend, startSidecar, stopAll } from './lib/harness.mjs';
import { tableSpecs, writeModels } from './lib/models.mjs';
import { OPS } from './lib/workload.mjs';

const { values: argv, positionals } = parseArgs({
  allowPositionals: true,
  options: { op: { type: 'string', default: 'batch25' }, seconds: { type: 'string', default: '3' }, rounds: { type: 'string', default: '6' } },
});
const [entryA, entryB] = positionals;
if (!entryA || !entryB) {
  process.stderr.write('usage: node bench/ab.mjs <entryA> <entryB> [--op get] [--seconds 3] [--rounds 6]\n');
  process.exit(2);
}
const cpuTicks = (pid) => procSample(pid).ticks;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

initPinning(true);
const schemasDir = await writeModels(50);
const backend = await startBackend('null', tableSpecs());
const sidecars = { A: await startSidecar({ entry: entryA, endpoint: backend.endpoint, schemasDir }), B: await startSidecar({ entry: entryB, endpoint: backend.endpoint, schemasDir }) };
const op = OPS[argv.op];
const round = async (sc, seconds) => {
  const req = op.http();
  const t0 = cpuTicks(sc.pid);
  const r = await autocannon({
    url: `http://127.0.0.1:${sc.where.port}${req.path}`,
    method: req.method,
    body: req.body,
    headers: { 'content-type': 'application/json' },
    connections: 32,
    duration: seconds,
  });
  const ticks = cpuTicks(sc.pid) - t0;
  const count = r.requests.total;
  return { rps: count / seconds, cpuUsPerReq: ((ticks / CLK_TCK) * 1e6) / count, non2xx: r.non2xx };
};
const results = { A: [], B: [] };
for (const side of ['A', 'B']) await round(sidecars[side], 1); // warm-up
for (let i = 0; i < Number(argv.rounds); i++) {
  for (const side of i % 2 ? ['B', 'A'] : ['A', 'B']) {
    const r = await round(sidecars[side], Number(argv.seconds));
    results[side].push(r);
    process.stderr.write(`round ${i} ${side}: ${Math.round(r.rps)} req/s, ${Math.round(r.cpuUsPerReq)} µs CPU/req${r.non2xx ? `, ${r.non2xx} non-2xx` : ''}\n`);
  }
}
const a = median(results.A.map((r) => r.cpuUsPerReq));
const b = median(results.B.map((r) => r.cpuUsPerReq));
console.log(`${argv.op}: A ${Math.round(a)} µs/req, B ${Math.round(b)} µs/req, B/A ${(b / a).toFixed(3)} (pinned: ${CPU.sidecar !== undefined})`);
await stopAll();
