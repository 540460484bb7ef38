#!/usr/bin/env node
// Sidecar load generator: sends the workload's HTTP requests to the sidecar over TCP keep-alive or its Unix
// socket. Saturation runs use autocannon (connections, no rate); fixed rates use the same evenly paced
// open-loop scheduler as the SDK generator (stats.mjs paced) over a node:http keep-alive agent, because
// autocannon's overallRate is a per-connection, per-second quota sent back to back (bursts, not a steady rate).
// The `autocannon-rate` load runs autocannon's overallRate anyway, as a cross-check.
import http from 'node:http';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { OPS } from './workload.mjs';
import { Samples, closedLoop, makeCounter, paced } from './stats.mjs';
import { serve } from './worker-common.mjs';

const require = createRequire(import.meta.url);
const autocannon = require('autocannon');
const counter = makeCounter(1_000_000_000);
const agents = new Map();

function target(spec) {
  return spec.socketPath ? { socketPath: spec.socketPath } : { host: '127.0.0.1', port: spec.port };
}

function agentFor(spec) {
  const key = spec.socketPath ?? String(spec.port);
  let agent = agents.get(key);
  if (!agent) {
    agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
    agents.set(key, agent);
  }
  return agent;
}

/** Counts answers that were not the expected status, by status code or error code (for diagnosis). */
export const unexpected = new Map();
const miss = (key) => unexpected.set(key, (unexpected.get(key) ?? 0) + 1);

function httpIssue(spec, op) {
  const agent = agentFor(spec);
  const where = target(spec);
  return (n) =>
    new Promise((resolve) => {
      const r = op.http(n);
      const headers = r.body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(r.body) };
      const req = http.request({ ...where, agent, method: r.method, path: r.path, headers }, (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          if (res.statusCode !== r.status) miss(String(res.statusCode));
          resolve(res.statusCode === r.status);
        });
        res.on('error', (err) => {
          miss(err.code ?? 'response error');
          resolve(false);
        });
      });
      req.on('error', (err) => {
        miss(err.code ?? 'request error');
        resolve(false);
      });
      req.end(r.body);
    });
}

function runAutocannon(spec, op, durationMs, { connections, overallRate }, onStart, onEnd) {
  return new Promise((resolve, reject) => {
    const first = op.http(counter.next());
    const request = {
      method: first.method,
      path: first.path,
      ...(first.body === undefined ? {} : { body: first.body, headers: { 'content-type': 'application/json' } }),
      ...(op.unique ? { setupRequest: (req) => ({ ...req, body: op.http(counter.next()).body }) } : {}),
    };
    const latencies = new Samples(1 << 16);
    let ok = 0;
    let failed = 0;
    onStart();
    const t0 = performance.now();
    const instance = autocannon(
      {
        url: spec.socketPath ? 'http://localhost' : `http://127.0.0.1:${spec.port}`,
        ...(spec.socketPath ? { socketPath: spec.socketPath } : {}),
        connections,
        ...(overallRate ? { overallRate } : {}),
        pipelining: 1,
        duration: durationMs / 1000,
        timeout: 10,
        requests: [request],
      },
      (err, result) => {
        const elapsed = performance.now() - t0;
        onEnd();
        if (err) return reject(err);
        resolve({
          sent: ok + failed,
          done: ok + failed,
          ok,
          failed,
          dropped: 0,
          errors: result.errors,
          timeouts: result.timeouts,
          elapsedMs: elapsed,
          latency: latencies.summary(),
          autocannon: { requestsAverage: result.requests.average, latencyP50: result.latency.p50, latencyP99: result.latency.p99 },
        });
      },
    );
    // autocannon's own percentiles are whole milliseconds; time every response ourselves (float ms).
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      latencies.push(responseTime);
      if (statusCode === first.status) ok += 1;
      else {
        failed += 1;
        miss(String(statusCode));
      }
    });
  });
}

serve(async (spec, durationMs, onStart, onEnd) => {
  const result = await runLoad(spec, durationMs, onStart, onEnd);
  const unexpectedAnswers = Object.fromEntries(unexpected);
  unexpected.clear();
  return { ...result, unexpected: unexpectedAnswers };
});

async function runLoad(spec, durationMs, onStart, onEnd) {
  const op = OPS[spec.op];
  if (spec.load.type === 'paced') {
    const issue = httpIssue(spec, op);
    onStart();
    const result = await paced({ rate: spec.load.rate, durationMs, issue, counter, keepSamples: spec.keepSamples === true });
    onEnd();
    return result;
  }
  if (spec.load.type === 'closed' || spec.load.type === 'autocannon-rate') {
    const overallRate = spec.load.type === 'autocannon-rate' ? spec.load.rate : undefined;
    return runAutocannon(spec, op, durationMs, { connections: spec.load.concurrency, overallRate }, onStart, onEnd);
  }
  if (spec.load.type === 'amount') {
    // Exactly `amount` requests (KMS test), closed loop.
    const issue = httpIssue(spec, op);
    onStart();
    const result = await closedLoop({ concurrency: spec.load.concurrency ?? 8, durationMs: 60_000, amount: spec.load.amount, issue, counter });
    onEnd();
    return result;
  }
  throw new Error(`unknown load ${spec.load.type}`);
}
