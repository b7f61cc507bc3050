/**
 * The demo's figure, written as SVG text directly: one row of panels per sweep (regime),
 * one panel per metric (test accuracy, test ECE, test NLL, flipped labels memorised)
 * against ε, each point the mean over seeds with an error bar of ± one sd. The PNG is the
 * same SVG rendered by @resvg/resvg-js, loaded only when a PNG is asked for.
 */
import type { MetricKey, SweepReport } from './experiment';

interface PanelMetric {
  key: MetricKey;
  label: string;
  percent: boolean;
  colour: string;
}

const PANELS: PanelMetric[] = [
  { key: 'accuracy', label: 'test accuracy', percent: true, colour: '#1f77b4' },
  { key: 'ece', label: 'test ECE', percent: false, colour: '#d62728' },
  { key: 'nll', label: 'test NLL', percent: false, colour: '#9467bd' },
  { key: 'memorized', label: 'flipped labels memorised', percent: true, colour: '#2ca02c' },
];

const FONT = "DejaVu Sans, Verdana, Arial, sans-serif";
const PANEL_W = 250;
const PANEL_H = 180;
const ROW_TITLE = 30;
const M = { left: 54, right: 14, top: 22, bottom: 38 };
const PAD = 16;
const HEADER = 44;

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const r2 = (v: number) => Math.round(v * 100) / 100;

/** Nice tick values covering [lo, hi] (about `count` of them) and the covering domain. */
export function niceTicks(lo: number, hi: number, count = 4): { ticks: number[]; lo: number; hi: number; step: number } {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.05 : 0.01;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = mag * (f >= 7.5 ? 10 : f >= 3.5 ? 5 : f >= 1.5 ? 2 : 1);
  const start = Math.floor(lo / step + 1e-9) * step;
  const end = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; start + i * step <= end + step * 1e-9; i++) ticks.push(start + i * step);
  return { ticks, lo: start, hi: end, step };
}

function tickLabel(v: number, step: number, percent: boolean): string {
  const value = percent ? v * 100 : v;
  const s = percent ? step * 100 : step;
  const digits = Math.max(0, -Math.floor(Math.log10(s) + 1e-9));
  const text = value.toFixed(Math.min(digits, 6));
  return (text === '-0' ? '0' : text) + (percent ? '%' : '');
}

function settingsLine(r: SweepReport): string {
  const s = r.settings;
  return (
    `${r.name}: ${r.task}, noise ${s.noise}, ${s.hidden} hidden, ${s.epochs} epochs, ${s.seeds.length} seed${s.seeds.length === 1 ? '' : 's'}` +
    (r.summary[0].metrics.temperature.mean !== null ? ` · T at ε = ${r.settings.eps[0]}: ${r.summary[0].metrics.temperature.mean.toFixed(2)}` : '')
  );
}

function panel(r: SweepReport, m: PanelMetric, x0: number, y0: number): string {
  const out: string[] = [];
  const w = PANEL_W - M.left - M.right;
  const h = PANEL_H - M.top - M.bottom;
  out.push(`<g transform="translate(${x0},${y0})">`);
  out.push(`<text x="${M.left + w / 2}" y="14" text-anchor="middle" font-size="12" font-weight="bold">${esc(m.label)}</text>`);
  const pts = r.summary.map((s) => ({ eps: s.eps, mean: s.metrics[m.key].mean, sd: s.metrics[m.key].sd ?? 0 }));
  const have = pts.filter((p): p is { eps: number; mean: number; sd: number } => p.mean !== null);
  out.push(`<rect x="${M.left}" y="${M.top}" width="${w}" height="${h}" fill="#fafafa" stroke="#999" stroke-width="0.8"/>`);
  if (have.length === 0) {
    const why = m.key === 'memorized' && r.settings.noise === 0 ? 'no flipped labels (noise 0)' : 'no value';
    out.push(`<text x="${M.left + w / 2}" y="${M.top + h / 2}" text-anchor="middle" font-size="11" fill="#666">${esc(why)}</text>`);
    out.push('</g>');
    return out.join('');
  }
  const epsMax = Math.max(...r.settings.eps);
  const xs = niceTicks(0, epsMax > 0 ? epsMax : 1, 4);
  const xPad = (xs.hi - xs.lo) * 0.04;
  const x = (e: number) => r2(M.left + ((e - xs.lo + xPad) / (xs.hi - xs.lo + 2 * xPad)) * w);
  // A share never leaves [0, 1]: keep its axis there, and clip error bars at the panel's edge.
  let lo = Math.min(...have.map((p) => p.mean - p.sd));
  let hi = Math.max(...have.map((p) => p.mean + p.sd));
  if (m.percent) {
    lo = Math.max(0, lo);
    hi = Math.min(1, hi);
  }
  const ys = niceTicks(lo, hi, 4);
  if (m.percent) {
    ys.lo = Math.max(0, ys.lo);
    ys.hi = Math.min(1, ys.hi);
    ys.ticks = ys.ticks.filter((t) => t >= ys.lo - 1e-12 && t <= ys.hi + 1e-12);
  }
  const y = (v: number) => r2(M.top + h - ((Math.min(Math.max(v, ys.lo), ys.hi) - ys.lo) / (ys.hi - ys.lo)) * h);
  for (const t of ys.ticks) {
    out.push(`<line x1="${M.left}" x2="${M.left + w}" y1="${y(t)}" y2="${y(t)}" stroke="#e3e3e3" stroke-width="0.8"/>`);
    out.push(`<text x="${M.left - 5}" y="${y(t) + 4}" text-anchor="end" font-size="10">${esc(tickLabel(t, ys.step, m.percent))}</text>`);
  }
  for (const t of xs.ticks) {
    out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${M.top + h}" y2="${M.top + h + 4}" stroke="#666"/>`);
    out.push(`<text x="${x(t)}" y="${M.top + h + 15}" text-anchor="middle" font-size="10">${esc(tickLabel(t, xs.step, false))}</text>`);
  }
  out.push(`<text x="${M.left + w / 2}" y="${M.top + h + 31}" text-anchor="middle" font-size="11">label smoothing ε</text>`);
  // The baseline's mean, dashed, to read each ε against.
  out.push(
    `<line x1="${M.left}" x2="${M.left + w}" y1="${y(have[0].mean)}" y2="${y(have[0].mean)}" stroke="${m.colour}" stroke-width="0.8" stroke-dasharray="4 3" opacity="0.6"/>`,
  );
  out.push(`<polyline fill="none" stroke="${m.colour}" stroke-width="1.6" points="${have.map((p) => `${x(p.eps)},${y(p.mean)}`).join(' ')}"/>`);
  for (const p of have) {
    const cx = x(p.eps);
    if (p.sd > 0) {
      const a = y(p.mean - p.sd);
      const b = y(p.mean + p.sd);
      out.push(`<line x1="${cx}" x2="${cx}" y1="${a}" y2="${b}" stroke="${m.colour}" stroke-width="1.2"/>`);
      out.push(`<line x1="${cx - 4}" x2="${cx + 4}" y1="${a}" y2="${a}" stroke="${m.colour}" stroke-width="1.2"/>`);
      out.push(`<line x1="${cx - 4}" x2="${cx + 4}" y1="${b}" y2="${b}" stroke="${m.colour}" stroke-width="1.2"/>`);
    }
    out.push(`<circle cx="${cx}" cy="${y(p.mean)}" r="3.2" fill="${m.colour}" stroke="#fff" stroke-width="0.8"/>`);
  }
  out.push('</g>');
  return out.join('');
}

/** The figure for one or more sweeps as an SVG document. */
export function sweepPlot(sweeps: readonly SweepReport[], options: { title: string }): string {
  const width = PAD * 2 + PANELS.length * PANEL_W;
  const rowH = ROW_TITLE + PANEL_H;
  const height = HEADER + sweeps.length * rowH + PAD;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(options.title)}</text>`,
    `<text x="${width / 2}" y="38" text-anchor="middle" font-size="11" fill="#444">points: mean over seeds; bars: ± 1 sd over seeds (the tables judge the paired, seed-by-seed differences); dashed: the baseline (first ε) mean</text>`,
  ];
  sweeps.forEach((r, i) => {
    const y0 = HEADER + i * rowH;
    parts.push(`<text x="${PAD}" y="${y0 + 20}" font-size="12.5" fill="#222">${esc(settingsLine(r))}</text>`);
    PANELS.forEach((m, j) => parts.push(panel(r, m, PAD + j * PANEL_W, y0 + ROW_TITLE)));
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

export type PngResult = { ok: true; png: Buffer } | { ok: false; reason: string };

/** Renders the SVG with @resvg/resvg-js at twice its size; says which package to add if it is not installed. */
export function renderPng(svg: string): PngResult {
  let resvg: typeof import('@resvg/resvg-js');
  try {
    resvg = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
  } catch (err) {
    return {
      ok: false,
      reason:
        `PNG not written: the optional package @resvg/resvg-js could not be loaded (${(err as Error).message.split('\n')[0]}); ` +
        '`npm install @resvg/resvg-js` adds it. The SVG was written.',
    };
  }
  const width = Number(/width="(\d+)"/.exec(svg)?.[1] ?? 1000);
  const png = new resvg.Resvg(svg, {
    fitTo: { mode: 'width', value: width * 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    background: '#ffffff',
  })
    .render()
    .asPng();
  return { ok: true, png: Buffer.from(png) };
}
