// A dependency-free SVG chart of a run: per backend, latency at 1,000 rps (p50 bars, p99 markers, log scale)
// and throughput at saturation, direct SDK vs sidecar over TCP vs sidecar over a Unix socket; targets below.
import { OPS } from './workload.mjs';

const COLORS = { sdk: '#4e79a7', http: '#f28e2b', unix: '#59a14f' };
const NAMES = { sdk: 'direct SDK', http: 'sidecar, HTTP keep-alive', unix: 'sidecar, Unix socket' };
const MODES = ['sdk', 'http', 'unix'];
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const text = (x, y, s, { size = 11, anchor = 'start', weight = 'normal', fill = '#222', rotate } = {}) =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${FONT} font-size="${size}" text-anchor="${anchor}" font-weight="${weight}" fill="${fill}"${
    rotate ? ` transform="rotate(${rotate} ${x.toFixed(1)} ${y.toFixed(1)})"` : ''
  }>${esc(s)}</text>`;
const rect = (x, y, w, h, fill, extra = '') => `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(0, w).toFixed(1)}" height="${Math.max(0, h).toFixed(1)}" fill="${fill}"${extra}/>`;
const line = (x1, y1, x2, y2, stroke = '#999', extra = '') =>
  `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${stroke}"${extra}/>`;

function fmtRps(v) {
  return v >= 1000 ? `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k` : String(v);
}
function fmtMs(v) {
  return v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2);
}

/** Grouped bars: groups = ops, bars = modes. `value(cell)` → number; `scale` maps value → 0..1. */
function panel({ x, y, w, h, title, groups, cells, value, marker, scale, ticks, tickLabel, label, refLine }) {
  const parts = [];
  const left = x + 48;
  const top = y + 26;
  const plotW = w - 58;
  const plotH = h - 70;
  const bottom = top + plotH;
  parts.push(text(x + w / 2, y + 14, title, { size: 13, anchor: 'middle', weight: 'bold' }));
  for (const t of ticks) {
    const ty = bottom - scale(t) * plotH;
    parts.push(line(left, ty, left + plotW, ty, '#e3e3e3'));
    parts.push(text(left - 6, ty + 4, tickLabel(t), { size: 10, anchor: 'end', fill: '#555' }));
  }
  parts.push(line(left, top, left, bottom, '#777'));
  parts.push(line(left, bottom, left + plotW, bottom, '#777'));
  const groupW = plotW / Math.max(1, groups.length);
  const barW = Math.min(34, (groupW - 14) / MODES.length);
  groups.forEach((op, gi) => {
    const gx = left + gi * groupW + (groupW - barW * MODES.length) / 2;
    MODES.forEach((mode, mi) => {
      const cell = cells.find((c) => c.op === op && c.mode === mode);
      const bx = gx + mi * barW;
      if (!cell || !cell.latencyMs?.count) {
        parts.push(text(bx + barW / 2, bottom - 4, 'n/a', { size: 9, anchor: 'middle', fill: '#999' }));
        return;
      }
      const v = value(cell);
      const bh = Math.max(1, scale(v) * plotH);
      parts.push(rect(bx + 1, bottom - bh, barW - 2, bh, COLORS[mode], cell.overloaded ? ' fill-opacity="0.45"' : ''));
      let labelY = bottom - bh - 3;
      if (marker) {
        const m = marker(cell);
        const my = bottom - Math.min(1, scale(m)) * plotH;
        parts.push(line(bx + barW / 2, bottom - bh, bx + barW / 2, my, '#333', ' stroke-width="1"'));
        parts.push(line(bx + 3, my, bx + barW - 3, my, '#333', ' stroke-width="2"'));
        labelY = my - 3;
      }
      // Neighbouring labels at the same height would overlap: every other bar's label sits one line higher.
      if (mi % 2 === 1) labelY -= 10;
      parts.push(text(bx + barW / 2, Math.max(top - 2, labelY), `${label(cell)}${cell.noisy ? '~' : ''}`, { size: 9, anchor: 'middle', fill: '#333' }));
    });
    parts.push(text(left + gi * groupW + groupW / 2, bottom + 14, OPS[op].label, { size: 10, anchor: 'middle' }));
  });
  if (refLine) {
    const ry = bottom - scale(refLine.value) * plotH;
    parts.push(line(left, ry, left + plotW, ry, '#c0392b', ' stroke-dasharray="5,4" stroke-width="1.5"'));
    parts.push(text(left + plotW - 2, ry - 4, refLine.label, { size: 10, anchor: 'end', fill: '#c0392b' }));
  }
  return parts.join('\n');
}

function logScale(min, max) {
  const lo = Math.log10(min);
  const hi = Math.log10(max);
  return (v) => Math.max(0, Math.min(1, (Math.log10(Math.max(v, min)) - lo) / (hi - lo)));
}

function logTicks(min, max) {
  const out = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= min * 0.999 && v <= max * 1.001) out.push(Number(v.toPrecision(3)));
    }
  }
  return out;
}

function niceMax(v) {
  const e = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * e >= v) return m * e;
  return 10 * e;
}

export function renderSvg(results) {
  const { meta, cells } = results;
  const W = 1240;
  const panelW = 600;
  const panelH = 330;
  const backends = meta.backends;
  const headerH = 78;
  const targetsH = 22 + 16 * (results.targets?.length ?? 0);
  const H = headerH + backends.length * panelH + targetsH + 16;
  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`);
  parts.push(rect(0, 0, W, H, '#ffffff'));
  parts.push(text(20, 26, 'dynamorm sidecar vs direct @aws-sdk/client-dynamodb', { size: 18, weight: 'bold' }));
  parts.push(
    text(
      20,
      45,
      `${meta.date.slice(0, 19).replace('T', ' ')} UTC · node ${meta.node} · ${meta.cores} cores${meta.pinning.tool ? ' · sidecar pinned to one core (taskset)' : ''} · ${meta.durationSeconds} s per cell · sidecar LOG_LEVEL=warn · ${meta.models} models`,
      { size: 11, fill: '#555' },
    ),
  );
  let lx = 20;
  for (const mode of MODES) {
    parts.push(rect(lx, 56, 12, 12, COLORS[mode]));
    parts.push(text(lx + 17, 66, NAMES[mode], { size: 11 }));
    lx += 30 + NAMES[mode].length * 6.2;
  }
  parts.push(text(lx + 10, 66, 'latency: bar = p50, marker = p99 (log scale) · faded bar = target rate not reached · ~ = other processes busy', { size: 11, fill: '#555' }));

  backends.forEach((backend, bi) => {
    const y = headerH + bi * panelH;
    const ops = meta.ops.filter((op) => cells.some((c) => c.backend === backend && c.op === op));
    const at1k = cells.filter((c) => c.backend === backend && c.load === 'rate1000');
    const sat = cells.filter((c) => c.backend === backend && c.load === 'saturation');
    const name = backend === 'null' ? 'null endpoint' : 'dynalite';
    const lat = at1k.filter((c) => c.latencyMs?.count).flatMap((c) => [c.latencyMs.p50, c.latencyMs.p99]);
    const lo = lat.length ? Math.max(0.01, 10 ** Math.floor(Math.log10(Math.min(...lat)))) : 0.1;
    const hi = lat.length ? 10 ** Math.ceil(Math.log10(Math.max(...lat) * 1.05)) : 10;
    parts.push(
      panel({
        x: 10,
        y,
        w: panelW,
        h: panelH,
        title: `${name}: latency at 1,000 req/s (ms)`,
        groups: ops,
        cells: at1k,
        value: (c) => c.latencyMs.p50,
        marker: (c) => c.latencyMs.p99,
        scale: logScale(lo, hi),
        ticks: logTicks(lo, hi),
        tickLabel: (t) => String(t),
        label: (c) => `${fmtMs(c.latencyMs.p50)}/${fmtMs(c.latencyMs.p99)}`,
      }),
    );
    const maxRps = niceMax(Math.max(1000, ...sat.map((c) => c.achievedRps), backend === 'null' ? 8000 : 0) * 1.08);
    parts.push(
      panel({
        x: 10 + panelW + 20,
        y,
        w: panelW,
        h: panelH,
        title: `${name}: throughput at saturation (req/s, ${meta.saturationConnections} connections)`,
        groups: ops,
        cells: sat,
        value: (c) => c.achievedRps,
        scale: (v) => v / maxRps,
        ticks: Array.from({ length: 6 }, (_, i) => (maxRps / 5) * i),
        tickLabel: (t) => fmtRps(Math.round(t)),
        label: (c) => fmtRps(c.achievedRps),
        ...(backend === 'null' ? { refLine: { value: 8000, label: 'target: 8k GetItem/s on one core' } } : {}),
      }),
    );
  });

  const ty = headerH + backends.length * panelH + 10;
  parts.push(text(20, ty, 'Targets', { size: 13, weight: 'bold' }));
  (results.targets ?? []).forEach((t, i) => {
    const status = t.met === null ? 'n/a' : t.met ? 'met' : 'NOT MET';
    const color = t.met === null ? '#777' : t.met ? '#2e7d32' : '#c0392b';
    parts.push(text(20, ty + 18 + i * 16, `${status}`, { size: 11, weight: 'bold', fill: color }));
    parts.push(text(90, ty + 18 + i * 16, `${t.name}: ${t.value ?? '—'} (goal ${t.goal})`, { size: 11 }));
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
