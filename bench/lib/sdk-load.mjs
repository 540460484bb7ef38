#!/usr/bin/env node
// Direct-SDK load generator (the "application using @aws-sdk/client-dynamodb itself"): issues the workload's
// SDK commands against a DynamoDB endpoint, paced at a fixed rate or closed-loop at a concurrency, and times
// every call. Driven by bench/run.mjs over IPC (see worker-common.mjs).
import { Agent } from 'node:http';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { OPS } from './workload.mjs';
import { closedLoop, makeCounter, paced } from './stats.mjs';
import { serve } from './worker-common.mjs';

const clients = new Map();
const counter = makeCounter();

/** Same client settings as the sidecar's own (src/store/backend.ts dynamoClientConfig). */
function clientFor(endpoint) {
  let client = clients.get(endpoint);
  if (!client) {
    client = new DynamoDBClient({
      region: process.env.AWS_REGION ?? 'us-east-1',
      endpoint,
      credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
      maxAttempts: 3,
      requestHandler: new NodeHttpHandler({
        httpAgent: new Agent({ keepAlive: true, maxSockets: 256 }),
        connectionTimeout: 2_000,
        requestTimeout: 10_000,
      }),
    });
    clients.set(endpoint, client);
  }
  return client;
}

serve(async (spec, durationMs, onStart, onEnd) => {
  const op = OPS[spec.op];
  const client = clientFor(spec.endpoint);
  const unexpected = {};
  const issue = (n) =>
    client.send(op.sdk(n)).then(
      () => true,
      (err) => {
        const key = err?.name ?? 'error';
        unexpected[key] = (unexpected[key] ?? 0) + 1;
        return false;
      },
    );
  onStart();
  const result =
    spec.load.type === 'paced'
      ? await paced({ rate: spec.load.rate, durationMs, issue, counter, keepSamples: spec.keepSamples === true })
      : await closedLoop({ concurrency: spec.load.concurrency, durationMs, issue, counter });
  onEnd();
  return { ...result, unexpected };
});
