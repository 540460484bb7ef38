// Ratios, targets and the printed tables of a benchmark run.
import { OPS } from './workload.mjs';

const r2 = (x) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 1000) / 1000);

function find(cells, backend, op, mode, load) {
  return cells.find((c) => c.backend === backend && c.op === op && c.mode === mode && c.load === load);
}

/** Sidecar (http, unix) against direct SDK, per backend × op × load. */
export function buildComparisons(cells) {
  const out = [];
  const keys = new Set(cells.map((c) => `${c.backend}|${c.op}|${c.load}`));
  for (const key of keys) {
    const [backend, op, load] = key.split('|');
    const sdk = find(cells, backend, op, 'sdk', load);
    if (!sdk) continue;
    for (const mode of ['http', 'unix']) {
      const sc = find(cells, backend, op, mode, load);
      if (!sc || !sc.latencyMs.count || !sdk.latencyMs.count) continue;
      out.push({
        backend,
        op,
        load,
        mode,
        addedP50Ms: r2(sc.latencyMs.p50 - sdk.latencyMs.p50),
        addedP99Ms: r2(sc.latencyMs.p99 - sdk.latencyMs.p99),
        p50Ratio: r2(sc.latencyMs.p50 / sdk.latencyMs.p50),
        p99Ratio: r2(sc.latencyMs.p99 / sdk.latencyMs.p99),
        throughputRatio: r2(sc.achievedRps / sdk.achievedRps),
        sidecarOverloaded: sc.overloaded,
        sdkOverloaded: sdk.overloaded,
      });
    }
  }
  return out;
}

function target(name, goal, value, met, note) {
  return { name, goal, value, met: value === null || value === undefined ? null : met, ...(note ? { note } : {}) };
}

export function evaluateTargets(results) {
  const { cells, comparisons, boot, kms, backends } = results;
  const n = results.meta.models;
  const t = [];
  const cmp = comparisons.find((c) => c.backend === 'null' && c.op === 'get' && c.load === 'rate1000' && c.mode === 'http');
  t.push(target('GetItem added p50 at 1k rps (null backend, TCP)', '≤ +0.15 ms', cmp?.addedP50Ms ?? null, cmp ? cmp.addedP50Ms <= 0.15 : null));
  const other = comparisons.filter((c) => c.backend === 'null' && c.op === 'get' && c.load !== 'saturation' && c !== cmp);
  t.push(
    target(
      'GetItem added p99 at 1k rps (null backend, TCP)',
      '≤ +1 ms',
      cmp?.addedP99Ms ?? null,
      cmp ? cmp.addedP99Ms <= 1 : null,
      other.length
        ? `p99 is set by stalls and varies between cells: ${other.map((c) => `${c.mode} ${c.load.replace('rate', '')} req/s ${c.addedP99Ms >= 0 ? '+' : ''}${c.addedP99Ms} ms`).join(', ')}`
        : undefined,
    ),
  );
  // Issue 9: throughput on one core against the direct SDK on one core (both pinned to the same core), per operation.
  const RATIO_GOALS = { get: 1.5, put: 1.0, update: 1.0, query: 1.0, tx4: 1.0, batch25: 0.8 };
  for (const [op, goal] of Object.entries(RATIO_GOALS)) {
    const c = comparisons.find((x) => x.backend === 'null' && x.op === op && x.load === 'saturation' && x.mode === 'http');
    if (!c) continue;
    t.push(target(`${OPS[op].label} per core vs direct SDK (null backend, TCP, saturation)`, `≥ ${goal.toFixed(1)}×`, c.throughputRatio, c.throughputRatio >= goal));
  }
  const sat = find(cells, 'null', 'get', 'http', 'saturation');
  const satUnix = find(cells, 'null', 'get', 'unix', 'saturation');
  const pinned = results.meta.pinning.tool === 'taskset';
  t.push(
    target(
      'GetItem/s on one core (null backend, TCP, 32 connections)',
      '≥ 8,000/s',
      sat?.achievedRps ?? null,
      sat ? sat.achievedRps >= 8000 : null,
      pinned ? `sidecar pinned to one core (sidecar CPU ${sat?.cpuPercent.sidecar ?? '?'}%)` : 'not pinned: the sidecar may use more than one core',
    ),
  );
  if (satUnix) t.push(target('GetItem/s on one core (null backend, Unix socket)', '≥ 8,000/s', satUnix.achievedRps, satUnix.achievedRps >= 8000));
  const entry = results.meta.entry ?? 'dist/cli.js';
  const bundleEntry = results.meta.bundleEntry ?? 'dist-lambda/cli.mjs';
  const idle = boot?.entries?.[entry]?.idleRssMBMedian ?? backends?.null?.sidecarIdleRssMB ?? null;
  t.push(target(`RSS with ${n} models, idle (${entry})`, '≤ 80 MB', idle, idle !== null && idle <= 80));
  const idleBundle = boot?.entries?.[bundleEntry]?.idleRssMBMedian ?? null;
  if (idleBundle !== null) t.push(target(`RSS with ${n} models, idle (bundle)`, '≤ 80 MB', idleBundle, idleBundle <= 80));
  const embedded = boot?.entries?.['dist/cli.js, embedded backend'];
  if (embedded) {
    t.push({ name: `RSS with ${n} models, idle (embedded backend, for comparison)`, goal: 'reported', value: embedded.idleRssMBMedian, met: null });
    t.push({ name: `boot-to-ready, ${n} models (embedded backend, tables created at boot, for comparison)`, goal: 'reported', value: embedded.readyzMsMedian, met: null });
  }
  const peaks = cells.filter((c) => c.sidecarRssPeakMB !== null).map((c) => c.sidecarRssPeakMB);
  const peak = peaks.length ? Math.max(...peaks) : null;
  t.push(target(`RSS with ${n} models, peak under load (any cell)`, '≤ 80 MB', peak, peak !== null && peak <= 80));
  for (const e of [entry, bundleEntry]) {
    const b = boot?.entries?.[e];
    if (b) t.push(target(`boot-to-ready, ${n} models (${e}, spawn → first 200 /readyz)`, '≤ 300 ms', b.readyzMsMedian, b.readyzMsMedian <= 300));
  }
  const sus = results.sustained;
  if (sus) {
    const span = `${sus.secondsPerSide} s per side`;
    const gcNote = `sidecar: ${sus.http.markCompacts ?? '?'} mark-compact GCs, longest GC pause ${sus.http.maxGcPauseMs ?? '?'} ms (direct-SDK process: ${sus.sdk.markCompacts ?? '?'}, ${sus.sdk.maxGcPauseMs ?? '?'} ms)`;
    t.push(target(`GetItem added p50, sustained ${sus.rate} req/s, ${span} (null backend, TCP)`, '≤ +0.15 ms', sus.addedP50Ms, sus.addedP50Ms !== null && sus.addedP50Ms <= 0.15));
    t.push(target(`GetItem added p99, sustained ${sus.rate} req/s, ${span} (null backend, TCP)`, '≤ +1 ms', sus.addedP99Ms, sus.addedP99Ms !== null && sus.addedP99Ms <= 1, gcNote));
    const a = sus.http.allocatedKBPerGetItem;
    t.push(target('allocation per GetItem, sidecar process (KB, sustained run)', '≤ 30 KB', a, a !== null && a <= 30, `direct-SDK load generator process: ${sus.sdk.allocatedKBPerGetItem ?? '?'} KB per GetItem`));
  }
  if (kms?.cache) {
    t.push(
      target(
        'KMS calls per 1,000 encrypted writes with the data-key cache',
        '≤ 1',
        kms.cache.callsPer1000Writes,
        kms.cache.callsPer1000Writes !== null && kms.cache.callsPer1000Writes <= 1,
        `without the cache (DATA_KEY_MAX_USES=1): ${kms.noCache?.callsPer1000Writes ?? '?'}; one partner (the sidecar's own credentials)`,
      ),
    );
  }
  return t;
}

// ---------------------------------------------------------------------------------------------- printing

function table(headers, rows, align) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const fmt = (cells) =>
    cells
      .map((c, i) => {
        const s = String(c ?? '');
        return (align?.[i] ?? 'r') === 'l' ? s.padEnd(widths[i]) : s.padStart(widths[i]);
      })
      .join('  ');
  return [fmt(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)].join('\n');
}

const fx = (x, d = 2) => (x === null || x === undefined ? '—' : Number(x).toFixed(d));
const signed = (x) => (x === null || x === undefined ? '—' : `${x >= 0 ? '+' : ''}${x.toFixed(3)}`);
const cpu = (x) => (x === null || x === undefined ? '—' : `${Math.round(x)}`);

export function printReport(results) {
  const { cells, comparisons, meta } = results;
  const out = [];
  out.push('');
  out.push(`dynamorm sidecar vs direct @aws-sdk/client-dynamodb — ${meta.date}`);
  out.push(
    `node ${meta.node}, ${meta.cores} cores (${meta.cpuModel}), ${meta.durationSeconds} s per cell after ${meta.warmupSeconds} s warm-up; ` +
      `sidecar LOG_LEVEL=warn, MAX_EVENT_LOOP_DELAY_MS=0, DOCS=false, BACKEND=aws; ${meta.models} models loaded`,
  );
  out.push(
    meta.pinning.tool
      ? `pinned with taskset: sidecar and SDK load generator on core ${meta.pinning.sidecar}; backend, HTTP load generator and orchestrator on core ${meta.pinning.backend}`
      : `not pinned (${meta.pinning.reason})`,
  );
  out.push('latency in ms (client-observed, p50 / p99); Δ = added vs direct SDK; cpu = % of one core (loadgen / sidecar / backend)');
  for (const backend of meta.backends) {
    const rows = [];
    for (const op of meta.ops) {
      for (const load of [...meta.rates.map((r) => `rate${r}`), 'saturation']) {
        const sdk = find(cells, backend, op, 'sdk', load);
        if (!sdk) continue;
        const row = [OPS[op].label, load === 'saturation' ? `sat(${meta.saturationConnections})` : `${load.slice(4)} rps`];
        row.push(`${fx(sdk.latencyMs.p50, 3)} / ${fx(sdk.latencyMs.p99, 3)}${sdk.noisy ? '~' : ''}`, sdk.achievedRps + (sdk.overloaded ? '!' : ''), `${cpu(sdk.cpuPercent.loadgen)}/—/${cpu(sdk.cpuPercent.backend)}`);
        for (const mode of ['http', 'unix']) {
          const c = find(cells, backend, op, mode, load);
          const d = comparisons.find((x) => x.backend === backend && x.op === op && x.load === load && x.mode === mode);
          if (!c) {
            row.push('—', '—', '—', '—');
            continue;
          }
          row.push(
            `${fx(c.latencyMs.p50, 3)} / ${fx(c.latencyMs.p99, 3)}${c.noisy ? '~' : ''}`,
            d ? `${signed(d.addedP50Ms)} / ${signed(d.addedP99Ms)}` : '—',
            `${c.achievedRps}${c.overloaded ? '!' : ''}${load === 'saturation' && d ? ` (${fx(d.throughputRatio, 2)}×)` : ''}`,
            `${cpu(c.cpuPercent.loadgen)}/${cpu(c.cpuPercent.sidecar)}/${cpu(c.cpuPercent.backend)}`,
          );
        }
        rows.push(row);
      }
    }
    out.push('');
    out.push(`backend: ${backend === 'null' ? 'null DynamoDB endpoint (canned answers, own process)' : 'dynalite (standalone process, in memory)'}`);
    out.push(
      table(
        ['operation', 'load', 'SDK p50/p99', 'SDK rps', 'SDK cpu', 'HTTP p50/p99', 'HTTP Δp50/Δp99', 'HTTP rps', 'HTTP cpu', 'Unix p50/p99', 'Unix Δp50/Δp99', 'Unix rps', 'Unix cpu'],
        rows,
        ['l', 'l'],
      ),
    );
    const calls = meta.ops
      .map((op) => {
        const c = find(cells, backend, op, 'http', 'saturation');
        if (!c?.backendCallsPerRequest) return null;
        return `${OPS[op].label}: ${Object.entries(c.backendCallsPerRequest).map(([name, n]) => `${name} ×${n}`).join(' + ')}`;
      })
      .filter(Boolean);
    if (calls.length) out.push(`DynamoDB calls per sidecar request (direct SDK: 1): ${calls.join('; ')}`);
    const peaks = cells.filter((c) => c.backend === backend && c.sidecarRssPeakMB !== null).map((c) => c.sidecarRssPeakMB);
    const info = results.backends?.[backend];
    if (info) out.push(`sidecar RSS: ${info.sidecarIdleRssMB} MB idle after boot, ${peaks.length ? Math.max(...peaks) : '—'} MB peak under load, ${info.sidecarRssAfterLoadMB} MB after the runs`);
  }
  out.push('`!` = the target rate was not reached (overloaded); (n×) = sidecar throughput / direct SDK throughput at saturation');
  if (meta.noise) {
    out.push(
      `\`~\` = noisy: other processes used > ${meta.noise.thresholdPercent}% of a core during the window (${meta.noise.noisyCells} of ${cells.length} cells; ` +
        `other processes before the run: ${meta.noise.preflightForeignCpuPercent}%)`,
    );
  }
  for (const x of results.crossChecks ?? []) {
    out.push(
      `cross-check, ${x.generator}: GetItem p50 ${fx(x.latencyMs.p50, 3)} ms, p99 ${fx(x.latencyMs.p99, 3)} ms, ${x.achievedRps} rps ` +
        `(autocannon's own whole-ms percentiles: p50 ${x.autocannon?.latencyP50}, p99 ${x.autocannon?.latencyP99})`,
    );
  }
  if (results.boot) {
    out.push('');
    out.push(`boot-to-ready with ${meta.models} models (null backend, median of the runs — a boot over 5 s runs once; bare \`node -e 0\`: ${results.boot.nodeBareStartMs} ms)`);
    out.push(
      table(
        ['entry', 'runs', 'spawn → /readyz 200', 'spawn → ready log', 'idle RSS', 'other processes'],
        Object.entries(results.boot.entries).map(([entry, b]) => [
          entry,
          b.runs,
          `${fx(b.readyzMsMedian, 1)} ms`,
          `${fx(b.readyLogMsMedian, 1)} ms`,
          `${fx(b.idleRssMBMedian, 1)} MB`,
          `${(b.foreignCpuPercent ?? []).join('/') || '—'}%${b.noisy ? ' ~' : ''}`,
        ]),
        ['l'],
      ),
    );
  }
  if (results.kms) {
    out.push('');
    out.push('KMS (local development key) calls for 1,000 encrypted creates, from dynamorm_kms_calls_total');
    out.push(
      table(
        ['data-key cache', 'writes ok', 'GenerateDataKey', 'per 1,000 writes', 'writes/s'],
        Object.entries(results.kms).map(([label, k]) => [
          label === 'cache' ? 'default (10,000 uses / 5 min)' : 'off (DATA_KEY_MAX_USES=1)',
          k.writesOk,
          k.generateDataKeyCalls,
          fx(k.callsPer1000Writes, 1),
          k.writesPerSecond,
        ]),
        ['l'],
      ),
    );
  }
  if (results.sustained) {
    const s = results.sustained;
    out.push('');
    out.push(`sustained GetItem at ${s.rate} req/s, null backend: ${s.rounds} alternating windows of ${s.windowSeconds} s per side (paced open loop; heap figures from gc-probe.mjs inside each process)`);
    out.push(
      table(
        ['side', 'ok', 'failed/dropped', 'p50 ms', 'p99 ms', 'p99.9 ms', 'KB allocated / GetItem', 'mark-compact', 'GCs (all kinds)', 'longest GC ms'],
        ['sdk', 'http'].map((m) => {
          const x = s[m];
          return [
            m === 'sdk' ? 'direct SDK' : 'sidecar TCP',
            x.ok,
            `${x.failed}/${x.dropped}`,
            x.latencyMs.p50,
            x.latencyMs.p99,
            x.latencyMs.p999,
            fx(x.allocatedKBPerGetItem, 1),
            x.markCompacts ?? '—',
            x.gcCounts ? Object.values(x.gcCounts).reduce((a, b) => a + b, 0) : '—',
            x.maxGcPauseMs ?? '—',
          ];
        }),
        ['l'],
      ),
    );
    out.push(`  added (sidecar − direct): p50 ${s.addedP50Ms} ms, p99 ${s.addedP99Ms} ms`);
    const foreign = ['sdk', 'http'].map((m) => `${m === 'sdk' ? 'direct' : 'sidecar'} ${s[m].windows.map((w) => w.foreignCpuPercent ?? '?').join('/')}%`).join(', ');
    out.push(`  other processes' CPU per window (% of a core; > 15 is noisy): ${foreign}`);
  }
  out.push('');
  out.push('targets');
  out.push(
    table(
      ['target', 'goal', 'measured', 'status'],
      results.targets.map((x) => [x.name, x.goal, x.value ?? '—', x.met === null ? 'n/a' : x.met ? 'met' : 'NOT MET']),
      ['l', 'l'],
    ),
  );
  for (const x of results.targets.filter((x) => x.note)) out.push(`  ${x.name}: ${x.note}`);
  return `${out.join('\n')}\n`;
}
