// The orchestrator's side of gc-probe.mjs: ask a probed process for its figures (SIGWINCH) and difference two reads.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { sleep } from './harness.mjs';

export const PROBE_PATH = new URL('./gc-probe.mjs', import.meta.url).pathname;

/** Signals `pid` and resolves the JSON its probe writes to `file` (null if nothing comes within 2 s). */
export async function readProbe(pid, file) {
  rmSync(file, { force: true });
  try {
    process.kill(pid, 'SIGWINCH');
  } catch {
    return null;
  }
  for (let i = 0; i < 400; i++) {
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
    await sleep(5);
  }
  return null;
}

const MARK_COMPACT = 'MarkSweepCompact';

/** What happened between two reads: bytes allocated, GCs by kind, mark-compacts and the longest pause. */
export function probeDelta(a, b) {
  if (!a || !b) return null;
  const counts = {};
  for (const [k, n] of Object.entries(b.gcCounts)) if (n - (a.gcCounts[k] ?? 0) > 0) counts[k] = n - (a.gcCounts[k] ?? 0);
  return {
    allocatedBytes: b.allocatedBytes - a.allocatedBytes,
    gcCounts: counts,
    markCompacts: counts[MARK_COMPACT] ?? 0,
    maxPauseMs: Math.round(b.maxPauseMsSincePreviousDump * 1000) / 1000,
  };
}
