import type { Test } from 'tap';
import type { TestResponse } from './sidecar.js';

export type Json = Record<string, any>;

/** A problem+json answer with this status and stable code; on a mismatch the message shows what came back. */
export function problem(t: Test, res: TestResponse, status: number, code: string, what: string): void {
  t.equal(res.status, status, res.status === status ? `${what}: ${status}` : `${what}: status ${status} (got ${res.status} ${res.text.slice(0, 400)})`);
  t.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, `${what}: problem+json`);
  t.equal(res.json?.code, code, `${what}: code ${code}`);
}

/** A 200 answer; returns its JSON body. */
export function ok(t: Test, res: TestResponse, what: string): Json {
  t.equal(res.status, 200, res.status === 200 ? what : `${what}: 200 (got ${res.status} ${res.text.slice(0, 400)})`);
  return res.json ?? {};
}
