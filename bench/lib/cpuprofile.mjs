// Summarises a V8 .cpuprofile (node --cpu-prof): self and inclusive time per function, and self time per
// package / source area. `node bench/lib/cpuprofile.mjs FILE [--top 25]` prints the tables.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where a frame's code lives: src/<file> (the sidecar), a package name, node internals, or V8 pseudo-frames. */
export function area(url, functionName) {
  if (!url) {
    if (['(garbage collector)', '(program)', '(idle)', '(root)'].includes(functionName)) return functionName;
    return '(native)';
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = file.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = file.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const rel = path.relative(ROOT, file);
  if (rel.startsWith('dist/')) return `sidecar ${rel.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts')}`;
  if (rel.startsWith('dist-lambda/')) return 'sidecar bundle';
  return rel.startsWith('..') ? file : rel;
}

function frameKey(cf) {
  const file = cf.url ? (cf.url.startsWith('file://') ? path.relative(ROOT, fileURLToPath(cf.url)) : cf.url) : '';
  const name = (cf.functionName || '(anonymous)').slice(0, 100);
  return `${name} ${file}${file ? `:${cf.lineNumber + 1}` : ''}`;
}

/**
 * `window` ({fromUs, toUs} on the monotonic clock V8 stamps samples with — process.hrtime in any process on the
 * same machine) keeps only the samples taken inside it, e.g. the load phase without the boot.
 */
export function summarize(profile, { top = 25, window } = {}) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  const { samples, timeDeltas } = profile;
  let t = profile.startTime;
  let kept = 0;
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute each interval to the sample that ends it.
    const dt = timeDeltas[i] ?? 0;
    t += dt;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    kept += 1;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, dt));
  }
  let total = 0;
  for (const v of selfUs.values()) total += v;
  const idle = [...selfUs].filter(([id]) => nodes.get(id).callFrame.functionName === '(idle)').reduce((a, [, v]) => a + v, 0);
  const busy = total - idle;

  const byFunction = new Map();
  const byArea = new Map();
  const inclusive = new Map();
  for (const [id, us] of selfUs) {
    const cf = nodes.get(id).callFrame;
    if (cf.functionName === '(idle)') continue;
    const key = frameKey(cf);
    const a = area(cf.url, cf.functionName);
    const entry = byFunction.get(key) ?? { function: key, area: a, selfMs: 0 };
    entry.selfMs += us / 1000;
    byFunction.set(key, entry);
    byArea.set(a, (byArea.get(a) ?? 0) + us / 1000);
    // Inclusive: every distinct function on this node's stack gets the time once.
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = frameKey(nodes.get(cur).callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us / 1000);
    }
  }
  const pct = (ms) => Math.round((ms / (busy / 1000)) * 1000) / 10;
  const r = (x) => Math.round(x * 10) / 10;
  return {
    samples: kept,
    totalMs: r(total / 1000),
    busyMs: r(busy / 1000),
    idleMs: r(idle / 1000),
    topSelf: [...byFunction.values()]
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top)
      .map((e) => ({ ...e, selfMs: r(e.selfMs), selfPercent: pct(e.selfMs) })),
    byArea: [...byArea]
      .sort((a, b) => b[1] - a[1])
      .map(([a, ms]) => ({ area: a, selfMs: r(ms), selfPercent: pct(ms) })),
    topInclusive: [...inclusive]
      .filter(([k]) => !k.startsWith('(root)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top * 2)
      .map(([k, ms]) => ({ function: k, inclusiveMs: r(ms), inclusivePercent: pct(ms) })),
  };
}

export function formatSummary(s, title) {
  const lines = [`${title}: ${s.busyMs} ms on CPU (${s.idleMs} ms idle) — percentages are of CPU time`, '', 'top self time (function, file:line, area)'];
  for (const e of s.topSelf) lines.push(`  ${String(e.selfPercent).padStart(5)}%  ${String(e.selfMs).padStart(8)} ms  ${e.function}  [${e.area}]`);
  lines.push('', 'self time by area');
  for (const e of s.byArea.slice(0, 25)) lines.push(`  ${String(e.selfPercent).padStart(5)}%  ${String(e.selfMs).padStart(8)} ms  ${e.area}`);
  lines.push('', 'top inclusive time');
  for (const e of s.topInclusive) lines.push(`  ${String(e.inclusivePercent).padStart(5)}%  ${String(e.inclusiveMs).padStart(8)} ms  ${e.function}`);
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const file = process.argv[2];
  const top = Number(process.argv[process.argv.indexOf('--top') + 1]) || 25;
  if (!file) {
    process.stderr.write('usage: node bench/lib/cpuprofile.mjs FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  process.stdout.write(formatSummary(summarize(JSON.parse(readFileSync(file, 'utf8')), { top }), path.basename(file)));
}
