// Latency summaries and the two load shapes shared by both load generators, so the direct-SDK path and the
// sidecar path are driven and measured by the same code.
import { performance } from 'node:perf_hooks';

/** A growable Float64Array of latencies in milliseconds. */
export class Samples {
  constructor(capacity = 1 << 14) {
    this.values = new Float64Array(capacity);
    this.length = 0;
  }
  push(v) {
    if (this.length === this.values.length) {
      const next = new Float64Array(this.values.length * 2);
      next.set(this.values);
      this.values = next;
    }
    this.values[this.length++] = v;
  }
  summary() {
    const n = this.length;
    if (n === 0) return { count: 0 };
    const sorted = this.values.slice(0, n).sort();
    const at = (q) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
    let sum = 0;
    for (let i = 0; i < n; i++) sum += sorted[i];
    const r = (x) => Math.round(x * 1000) / 1000;
    return { count: n, mean: r(sum / n), p50: r(at(0.5)), p90: r(at(0.9)), p99: r(at(0.99)), p999: r(at(0.999)), max: r(sorted[n - 1]) };
  }
}

/** CPU time this process used, in ms of one core, since `from` (a process.cpuUsage() value). */
export function cpuMsSince(from) {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

/**
 * Open-loop load at a fixed rate: request i is due at t0 + i/rate; a 1 ms timer issues whatever is due (so sends
 * are evenly spaced, not bunched per second). Latency is timed from the moment a request is issued to its
 * completion. `lag` is how late sends left versus their schedule (the generator's own accuracy). Requests that
 * would exceed `maxInFlight` outstanding are not sent and counted as `dropped` (the target is overloaded).
 * `issue(n)` resolves true for an expected answer, false otherwise.
 */
export function paced({ rate, durationMs, issue, maxInFlight = 1024, counter, keepSamples = false }) {
  return new Promise((resolve) => {
    const latencies = new Samples(Math.ceil((rate * durationMs) / 1000) + 16);
    const lags = new Samples(Math.ceil((rate * durationMs) / 1000) + 16);
    const total = Math.round((rate * durationMs) / 1000);
    const interval = 1000 / rate;
    let sent = 0;
    let done = 0;
    let ok = 0;
    let failed = 0;
    let dropped = 0;
    let inflight = 0;
    let finished = false;
    const t0 = performance.now();
    const finish = () => {
      if (finished || sent < total || inflight > 0) return;
      finished = true;
      const elapsed = performance.now() - t0;
      resolve({
        sent, done, ok, failed, dropped, elapsedMs: elapsed, latency: latencies.summary(), lag: lags.summary(),
        // Every latency, for pooling windows of one comparison (the sustained run) before taking percentiles.
        ...(keepSamples ? { samples: Array.from(latencies.values.subarray(0, latencies.length)) } : {}),
      });
    };
    const complete = (start, good) => {
      latencies.push(performance.now() - start);
      inflight -= 1;
      done += 1;
      if (good) ok += 1;
      else failed += 1;
      finish();
    };
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - t0) / interval) + 1);
      while (sent < due) {
        lags.push(now - (t0 + sent * interval));
        sent += 1;
        if (inflight >= maxInFlight) {
          dropped += 1;
          continue;
        }
        inflight += 1;
        const start = performance.now();
        issue(counter.next()).then(
          (good) => complete(start, good),
          () => complete(start, false),
        );
      }
      if (sent < total) setTimeout(tick, 1);
      else finish();
    };
    tick();
  });
}

/** Closed loop: `concurrency` callers, each issuing its next request as soon as the last one answers (until `amount`). */
export async function closedLoop({ concurrency, durationMs, issue, counter, amount = Infinity }) {
  const latencies = new Samples(1 << 16);
  let ok = 0;
  let failed = 0;
  let issued = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  const worker = async () => {
    while (performance.now() < deadline && issued < amount) {
      issued += 1;
      const start = performance.now();
      let good = false;
      try {
        good = await issue(counter.next());
      } catch {
        good = false;
      }
      latencies.push(performance.now() - start);
      if (good) ok += 1;
      else failed += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - t0;
  return { sent: ok + failed, done: ok + failed, ok, failed, dropped: 0, elapsedMs: elapsed, latency: latencies.summary() };
}

export function makeCounter(start = 0) {
  let n = start;
  return { next: () => n++ };
}
