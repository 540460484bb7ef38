import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './net.js';

export interface Moto {
  readonly endpoint: string;
  stop(): Promise<void>;
}

const MOTO_BIN = '.venv/bin/moto_server';

async function waitUntilUp(endpoint: string, child?: ChildProcess): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (child?.exitCode !== null && child?.exitCode !== undefined) throw new Error(`moto_server exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await delay(200);
  }
  throw new Error(`moto server at ${endpoint} did not come up`);
}

/**
 * The AWS-compatible backend: `MOTO_ENDPOINT` when CI started one, else a moto_server from the project's venv.
 * Callers run it inside `withTool(t, tools.moto(), …)`, which skips (or fails) the suite when neither is there.
 */
export async function startMoto(): Promise<Moto> {
  process.env.AWS_ACCESS_KEY_ID ??= 'testing';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
  const given = process.env.MOTO_ENDPOINT;
  if (given) {
    await waitUntilUp(given);
    return { endpoint: given, stop: async () => {} };
  }
  if (!existsSync(MOTO_BIN)) throw new Error(`MOTO_ENDPOINT is unset and there is no ${MOTO_BIN}`);
  const port = await freePort();
  const child = spawn(MOTO_BIN, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitUntilUp(endpoint, child);
  return {
    endpoint,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
    },
  };
}
