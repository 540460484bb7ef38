// Sustained GetItem at a fixed rate (issue 9: 1,000 req/s for ≥ 60 s), direct SDK against the sidecar over TCP,
// null backend, the matrix's paced open-loop generator. The two alternate in windows (direct, sidecar, direct,
// sidecar …) rather than run at once: on 2 cores, running both together would put the SDK load generator and the
// sidecar on the same core at the same time (the matrix pins them there) and each would add its CPU to the other's
// latency. Alternating windows run each under the same conditions, and drift over the run is shared by both.
// Latencies are pooled over each side's windows before percentiles are taken. The sidecar and the SDK load
// generator run with gc-probe.mjs preloaded: allocation per GetItem and GC counts/pauses come from inside them.
import os from 'node:os';
import path from 'node:path';
import { rmSync } from 'node:fs';
import { tableSpecs } from './models.mjs';
import { CPU, LoadGen, log, startBackend, startSidecar } from './harness.mjs';
import { PROBE_PATH, probeDelta, readProbe } from './gc-read.mjs';
import { Samples } from './stats.mjs';
import { cpuPercent, machinePercent, machineSample, procSample, stop } from './procs.mjs';

const r3 = (x) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 1000) / 1000);

function pooled(samples) {
  const s = new Samples(samples.length + 16);
  for (const v of samples) s.push(v);
  return s.summary();
}

/** Sums the probe deltas of several windows: bytes, GC counts by kind, mark-compacts, longest pause. */
function sumDeltas(deltas) {
  const ok = deltas.filter(Boolean);
  if (ok.length === 0) return null;
  const gcCounts = {};
  for (const d of ok) for (const [k, n] of Object.entries(d.gcCounts)) gcCounts[k] = (gcCounts[k] ?? 0) + n;
  return {
    allocatedBytes: ok.reduce((a, d) => a + d.allocatedBytes, 0),
    gcCounts,
    markCompacts: ok.reduce((a, d) => a + d.markCompacts, 0),
    maxPauseMs: Math.max(...ok.map((d) => d.maxPauseMs)),
  };
}

export async function measureSustained({ schemasDir, entry, nodeArgs = [], rate, windowSeconds, rounds, warmupSeconds }) {
  log(`\nbench: sustained GetItem at ${rate} req/s, ${rounds} × (direct ${windowSeconds} s, sidecar ${windowSeconds} s), null backend`);
  const backend = await startBackend('null', tableSpecs());
  const tag = `${process.pid}-${Date.now()}`;
  const scProbe = path.join(os.tmpdir(), `dynamorm-bench-gc-sidecar-${tag}.json`);
  const sdkProbe = path.join(os.tmpdir(), `dynamorm-bench-gc-sdk-${tag}.json`);
  const sc = await startSidecar({ entry, endpoint: backend.endpoint, schemasDir, env: { GC_PROBE_FILE: scProbe }, nodeArgs: ['--import', PROBE_PATH, ...nodeArgs] });
  const sdkGen = await LoadGen.start('sdk-load.mjs', CPU.sdkLoadgen, { nodeArgs: ['--import', PROBE_PATH], env: { GC_PROBE_FILE: sdkProbe } });
  const httpGen = await LoadGen.start('http-load.mjs', CPU.httpLoadgen);
  const sides = {
    sdk: { gen: sdkGen, pid: sdkGen.pid, probe: sdkProbe, samples: [], ok: 0, failed: 0, dropped: 0, deltas: [], windows: [] },
    http: { gen: httpGen, pid: sc.pid, probe: scProbe, samples: [], ok: 0, failed: 0, dropped: 0, deltas: [], windows: [] },
  };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['sdk', 'http']) {
        const side = sides[mode];
        const spec = {
          op: 'get',
          load: { type: 'paced', rate },
          durationMs: windowSeconds * 1000,
          warmupMs: warmupSeconds * 1000,
          keepSamples: true,
          ...(mode === 'sdk' ? { endpoint: backend.endpoint } : sc.where),
        };
        let before;
        let after;
        // Other jobs' CPU during the window, as the matrix counts it (machine busy minus this run's processes).
        const pids = [process.pid, backend.pid, ...(mode === 'http' ? [sc.pid] : [])];
        let cpu0;
        let cpu1;
        const sample = () => ({ machine: machineSample(), procs: pids.map(procSample) });
        const r = await side.gen.run(spec, {
          onStart: () => {
            cpu0 = sample();
            before = readProbe(side.pid, side.probe);
          },
          onEnd: () => {
            cpu1 = sample();
            after = readProbe(side.pid, side.probe);
          },
        });
        const ours = cpu0.procs.reduce((a, p, i) => a + (cpuPercent(p, cpu1.procs[i]) ?? 0), 0) + (r.loadgenCpuMs / r.elapsedMs) * 100;
        const machine = machinePercent(cpu0.machine, cpu1.machine);
        const foreign = machine === null ? null : Math.round(Math.max(0, machine - ours) * 10) / 10;
        const delta = probeDelta(await before, await after);
        if (sc.child.exitCode !== null || sc.child.signalCode !== null) throw new Error(`sidecar exited (${sc.child.exitCode ?? sc.child.signalCode}): ${sc.child.tail.join('\n')}`);
        side.samples.push(...r.samples);
        side.ok += r.ok;
        side.failed += r.failed;
        side.dropped += r.dropped;
        side.deltas.push(delta);
        const w = { ok: r.ok, foreignCpuPercent: foreign, p50: r.latency.p50, p99: r.latency.p99, allocKBPerRequest: delta && r.ok ? r3(delta.allocatedBytes / r.ok / 1024) : null, markCompacts: delta?.markCompacts ?? null, maxGcPauseMs: delta?.maxPauseMs ?? null };
        side.windows.push(w);
        log(`  round ${round + 1} ${mode.padEnd(4)} ${r.ok} ok${r.failed ? ` ${r.failed} FAILED ${JSON.stringify(r.unexpected ?? {})}` : ''}${r.dropped ? ` ${r.dropped} dropped` : ''}  p50 ${w.p50} ms  p99 ${w.p99} ms  alloc ${w.allocKBPerRequest} KB/req  mark-compact ${w.markCompacts}  longest GC ${w.maxGcPauseMs} ms  other processes ${foreign}%`);
      }
    }
  } finally {
    await sdkGen.close();
    await httpGen.close();
    await stop(sc.child);
    await stop(backend.child);
    rmSync(scProbe, { force: true });
    rmSync(sdkProbe, { force: true });
  }
  const out = { rate, windowSeconds, rounds, secondsPerSide: windowSeconds * rounds, warmupSecondsPerWindow: warmupSeconds };
  for (const [mode, side] of Object.entries(sides)) {
    const gc = sumDeltas(side.deltas);
    out[mode] = {
      process: mode === 'sdk' ? 'direct-SDK load generator (sdk-load.mjs)' : 'sidecar (TCP)',
      ok: side.ok,
      failed: side.failed,
      dropped: side.dropped,
      latencyMs: pooled(side.samples),
      allocatedKBPerGetItem: gc && side.ok ? r3(gc.allocatedBytes / side.ok / 1024) : null,
      gcCounts: gc?.gcCounts ?? null,
      markCompacts: gc?.markCompacts ?? null,
      maxGcPauseMs: gc?.maxPauseMs ?? null,
      windows: side.windows,
    };
  }
  out.addedP50Ms = r3(out.http.latencyMs.p50 - out.sdk.latencyMs.p50);
  out.addedP99Ms = r3(out.http.latencyMs.p99 - out.sdk.latencyMs.p99);
  log(`  sidecar minus direct: p50 ${out.addedP50Ms} ms, p99 ${out.addedP99Ms} ms; sidecar ${out.http.allocatedKBPerGetItem} KB/GetItem, ${out.http.markCompacts} mark-compacts, longest GC ${out.http.maxGcPauseMs} ms; SDK ${out.sdk.allocatedKBPerGetItem} KB/GetItem`);
  return out;
}
