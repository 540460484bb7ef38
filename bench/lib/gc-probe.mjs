// Preload (`node --import bench/lib/gc-probe.mjs …`) that measures a process's heap allocation and GCs from the
// inside without touching its source. With GC_PROBE_FILE set, every SIGWINCH writes the cumulative figures to that
// file (written whole, then renamed): bytes allocated since start, GC counts by kind, the longest pause since start
// and since the previous dump. SIGWINCH, because its default action is to be ignored and the sidecar's
// close-with-grace shuts down on SIGUSR2. Allocation = heap used now − heap used at start + Σ (used before − used after) of
// every GC, from v8.GCProfiler (it records each GC's heap statistics; they are collected on each dump).
import { renameSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';

const file = process.env.GC_PROBE_FILE;
if (file) {
  const startUsed = v8.getHeapStatistics().used_heap_size;
  const totals = { freedBytes: 0, counts: {}, pauseMs: {}, maxPauseMs: 0 };
  let profiler = new v8.GCProfiler();
  profiler.start();
  process.on('SIGWINCH', () => {
    const { statistics = [] } = profiler.stop() ?? {};
    profiler = new v8.GCProfiler();
    profiler.start();
    let windowMaxPauseMs = 0;
    for (const s of statistics) {
      const ms = s.cost / 1000; // GCProfiler's cost is in microseconds
      totals.counts[s.gcType] = (totals.counts[s.gcType] ?? 0) + 1;
      totals.pauseMs[s.gcType] = (totals.pauseMs[s.gcType] ?? 0) + ms;
      totals.freedBytes += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
      windowMaxPauseMs = Math.max(windowMaxPauseMs, ms);
    }
    totals.maxPauseMs = Math.max(totals.maxPauseMs, windowMaxPauseMs);
    const used = v8.getHeapStatistics().used_heap_size;
    const out = {
      pid: process.pid,
      at: Date.now(),
      allocatedBytes: used - startUsed + totals.freedBytes,
      heapUsedBytes: used,
      gcCounts: totals.counts,
      gcPauseMs: totals.pauseMs,
      maxPauseMs: totals.maxPauseMs,
      maxPauseMsSincePreviousDump: windowMaxPauseMs,
    };
    writeFileSync(`${file}.tmp`, JSON.stringify(out));
    renameSync(`${file}.tmp`, file);
  });
}
