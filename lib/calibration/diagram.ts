/**
 * Reliability diagrams (Guo et al. 2017, Fig. 1): accuracy per confidence bin against
 * the diagonal of perfect calibration, the gap to each bin's mean confidence, and a
 * confidence histogram underneath; ECE in the title. The SVG is written directly (a few
 * rects, lines and labels); the PNG is rendered from it by @resvg/resvg-js, an optional peer
 * dependency loaded only when a PNG is asked for, with the DejaVu Sans subset in fonts/ so
 * that the labels show on systems without fonts.
 */
import * as path from 'node:path';
import { rangeError, typeError } from '../core/errors';
import { packageRoot } from '../core/native';
import { readOptions } from '../core/options';
import type { CalibrationReport, ReliabilityBin } from './metrics';

export interface DiagramOptions {
  /** 'svg' (default; returns a string) or 'png' (returns a Buffer). */
  format?: 'svg' | 'png';
  /** Title; default "Reliability diagram". The ECE is always added to it. */
  title?: string;
  /** Width in CSS pixels (default 560); the height follows. */
  width?: number;
  /** PNG pixels per CSS pixel (default 2). */
  scale?: number;
  /**
   * 'binned' (default): Guo et al.'s bars. 'smooth': the SmoothECE curve (report.smoothCurve,
   * relplot's kernel-smoothed E[correct | confidence]) drawn with a width that follows the density
   * of the confidences, its bootstrap band when the report has one (report option smoothBand),
   * the diagonal and the density underneath; SmoothECE and its bandwidth in the title.
   */
  kind?: 'binned' | 'smooth';
}

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
const COLORS = { bar: '#3b6fb6', gap: '#e4572e', diagonal: '#444', hist: '#7a8ca3', acc: '#2a9d55', conf: '#e4572e' };

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

function checkReport(report: unknown): CalibrationReport {
  const r = report as CalibrationReport;
  if (report === null || typeof report !== 'object' || !Array.isArray(r.bins) || typeof r.ece !== 'number' || typeof r.n !== 'number') {
    throw typeError('report', 'a report from calibration.report() or Accumulator.report()', report);
  }
  for (const [i, b] of r.bins.entries()) {
    if (!b || typeof b.lo !== 'number' || typeof b.hi !== 'number' || typeof b.count !== 'number') {
      throw typeError(`report.bins[${i}]`, 'a bin { lo, hi, count, confidence, accuracy }', b);
    }
  }
  return r;
}

function checkCurve(r: CalibrationReport): void {
  const c = r.smoothCurve;
  const arr = (a: unknown, len: number): boolean => Array.isArray(a) && a.length === len && a.every((v) => typeof v === 'number' && Number.isFinite(v));
  if (!c || !Array.isArray(c.x) || c.x.length < 2 || !arr(c.y, c.x.length) || !arr(c.density, c.x.length) || typeof r.smoothEce !== 'number' || !Number.isFinite(r.smoothEce)) {
    throw typeError('report.smoothCurve', "a smooth curve from calibration.report() or Accumulator.report() (kind: 'smooth')", c);
  }
  if ((c.lower !== undefined || c.upper !== undefined) && !(arr(c.lower, c.x.length) && arr(c.upper, c.x.length))) {
    throw typeError('report.smoothCurve.lower', 'band arrays as long as x', c.lower);
  }
}

/** Renders a report's bins as an SVG string, or a PNG Buffer with format: 'png'. */
export function reliabilityDiagram(report: CalibrationReport, options?: DiagramOptions & { format?: 'svg' }): string;
export function reliabilityDiagram(report: CalibrationReport, options: DiagramOptions & { format: 'png' }): Buffer;
export function reliabilityDiagram(report: CalibrationReport, options?: DiagramOptions): string | Buffer;
export function reliabilityDiagram(report: unknown, options?: DiagramOptions): string | Buffer {
  const opts = readOptions(options, ['format', 'title', 'width', 'scale', 'kind'], 'calibration.reliabilityDiagram');
  const kind = opts.kind ?? 'binned';
  if (typeof kind !== 'string') throw typeError('kind', "'binned' or 'smooth'", kind);
  if (kind !== 'binned' && kind !== 'smooth') throw rangeError('kind', "'binned' or 'smooth'", kind);
  const format = opts.format ?? 'svg';
  if (typeof format !== 'string') throw typeError('format', "'svg' or 'png'", format);
  if (format !== 'svg' && format !== 'png') throw rangeError('format', "'svg' or 'png'", format);
  if (opts.title !== undefined && typeof opts.title !== 'string') throw typeError('title', 'a string', opts.title);
  const width = opts.width ?? 560;
  if (typeof width !== 'number') throw typeError('width', 'a number of pixels in [200, 4000]', width);
  if (!(width >= 200 && width <= 4000)) throw rangeError('width', 'a number of pixels in [200, 4000]', width);
  const scale = opts.scale ?? 2;
  if (typeof scale !== 'number') throw typeError('scale', 'a number in (0, 8]', scale);
  if (!(scale > 0 && scale <= 8)) throw rangeError('scale', 'a number in (0, 8]', scale);
  const r = checkReport(report);
  if (kind === 'smooth') checkCurve(r);
  const title = (opts.title as string | undefined) ?? (kind === 'smooth' ? 'Smooth reliability diagram' : 'Reliability diagram');
  const svg = kind === 'smooth' ? renderSmoothSvg(r, title, width as number) : renderSvg(r, title, width as number);
  if (format === 'svg') return svg;
  const { Resvg } = loadResvg();
  const png = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale as number },
    background: 'white',
    // The shipped DejaVu Sans subset, so that labels render alike everywhere, also on a system
    // without fonts; the system's fonts only when the title has characters the subset lacks.
    font: { fontFiles: [FONT_FILE], loadSystemFonts: !SUBSET_CHARS.test(title), defaultFontFamily: 'DejaVu Sans' },
  })
    .render()
    .asPng();
  return Buffer.from(png);
}

/** The DejaVu Sans subset shipped in the package (fonts/LICENSE). */
export const FONT_FILE = path.join(packageRoot, 'fonts', 'DejaVuSans-subset.ttf');
/** Text the subset can draw: Latin-1 and the symbols it was cut with (fonts/LICENSE). */
const SUBSET_CHARS = /^[\u0020-\u007e\u00a0-\u00ff\u2013\u2014\u2026\u2212\u2248\u2264\u2265\u03b5\u00d7]*$/;

/**
 * Thrown when a feature needs an optional package that is not installed (PNG diagrams need
 * @resvg/resvg-js). `packageName` names it; the message says how to add it.
 */
export class MissingDependencyError extends Error {
  readonly code = 'ERR_SMOOTHCE_MISSING_DEPENDENCY';
  constructor(
    readonly packageName: string,
    feature: string,
    options?: { cause?: unknown },
  ) {
    super(`${feature} needs the optional package ${packageName}, which is not installed; add it with \`npm install ${packageName}\``, options);
    this.name = 'MissingDependencyError';
  }
}

type ResvgModule = typeof import('@resvg/resvg-js');
let resvg: ResvgModule | undefined;
function loadResvg(): ResvgModule {
  if (resvg) return resvg;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    resvg = require('@resvg/resvg-js') as ResvgModule;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'MODULE_NOT_FOUND' && /@resvg\/resvg-js/.test(String(e.message))) {
      throw new MissingDependencyError('@resvg/resvg-js', "A PNG reliability diagram (format: 'png')", { cause: err });
    }
    throw err;
  }
  return resvg;
}

/** An SVG element; attribute values and text are escaped. */
function el(name: string, attrs: Record<string, string | number>, text?: string): string {
  const a = Object.entries(attrs)
    .map(([k, v]) => ` ${k}="${esc(typeof v === 'number' ? num(v) : v)}"`)
    .join('');
  return text === undefined ? `<${name}${a}/>` : `<${name}${a}>${esc(text)}</${name}>`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Coordinates with at most 3 decimals (no "1e-7" in attributes). */
function num(v: number): string {
  return String(Math.round(v * 1000) / 1000);
}

/** A 1-2-5 step giving about `count` ticks over [0, max] (as d3's ticks do). */
function tickStep(max: number, count: number): number {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const err = raw / power;
  return power * (err >= Math.sqrt(50) ? 10 : err >= Math.sqrt(10) ? 5 : err >= Math.sqrt(2) ? 2 : 1);
}

function ticks(max: number, step: number): number[] {
  const out: number[] = [];
  for (let i = 0; i * step <= max * (1 + 1e-9); i++) out.push(Math.round(i * step * 1e9) / 1e9);
  return out;
}

/**
 * An axis along the bottom (horizontal) or the left (vertical) of a panel: the domain line,
 * tick marks and their labels.
 */
function axis(
  side: 'bottom' | 'left',
  values: number[],
  at: (v: number) => number,
  label: (v: number) => string,
  length: number,
  offset: number,
  k: number,
  fontSize: string,
): string {
  const t = 4 * k;
  const parts: string[] = [];
  if (side === 'bottom') {
    parts.push(el('path', { d: `M0,${num(offset)}H${num(length)}`, stroke: 'currentColor', fill: 'none' }));
    for (const v of values) {
      const x = at(v);
      parts.push(el('line', { x1: x, x2: x, y1: offset, y2: offset + t, stroke: 'currentColor' }));
      parts.push(el('text', { x, y: offset + t + 12 * k, 'text-anchor': 'middle', 'font-size': fontSize, fill: 'currentColor' }, label(v)));
    }
  } else {
    parts.push(el('path', { d: `M0,0V${num(length)}`, stroke: 'currentColor', fill: 'none' }));
    for (const v of values) {
      const y = at(v);
      parts.push(el('line', { x1: -t, x2: 0, y1: y, y2: y, stroke: 'currentColor' }));
      parts.push(el('text', { x: -t - 3 * k, y: y + 4 * k, 'text-anchor': 'end', 'font-size': fontSize, fill: 'currentColor' }, label(v)));
    }
  }
  return `<g class="axis">${parts.join('')}</g>`;
}

/** The layout both diagrams share: a square main panel over a lower panel histPx tall (at 560 px wide). */
function frame(W: number, histPx: number) {
  const k = W / 560;
  const m = { top: 62 * k, right: 20 * k, bottom: 46 * k, left: 58 * k };
  const gap = 30 * k;
  const plotW = W - m.left - m.right;
  const mainH = plotW; // square reliability panel
  const histH = histPx * k;
  const H = Math.round(m.top + mainH + gap + histH + m.bottom);
  const fs = (px: number): string => `${(px * k).toFixed(1)}px`;
  const x = (v: number): number => v * plotW;
  return { k, m, gap, plotW, mainH, histH, H, fs, x };
}

/** White background, bold title and grey subtitle. */
function heading(f: ReturnType<typeof frame>, W: number, title: string, subtitle: string): string[] {
  const { k, fs } = f;
  return [
    el('rect', { width: W, height: f.H, fill: 'white' }),
    el('text', { x: W / 2, y: 26 * k, 'text-anchor': 'middle', 'font-size': fs(17), 'font-weight': 'bold' }, title),
    el('text', { x: W / 2, y: 46 * k, 'text-anchor': 'middle', 'font-size': fs(11.5), fill: '#333' }, subtitle),
  ];
}

function svgDocument(W: number, H: number, body: string[]): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${esc(FONT)}">` +
    `${body.join('')}</svg>\n`
  );
}

/** The smooth diagram (relplot's style): curve width ∝ density, grey bootstrap band, density panel. */
function renderSmoothSvg(r: CalibrationReport, title: string, W: number): string {
  const c = r.smoothCurve;
  const f = frame(W, 90);
  const { k, m, gap, plotW, mainH, histH, H, fs, x } = f;
  const y = (v: number): number => (1 - Math.min(1, Math.max(0, v))) * mainH;
  const out = heading(
    f,
    W,
    `${title} — SmoothECE ${pct(r.smoothEce)}`,
    `N = ${r.n} · bandwidth ${c.bandwidth.toFixed(4)} · accuracy ${pct(r.accuracy)} · ECE ${pct(r.ece)}` +
      (c.bootstrap > 0 ? ` · band: 95%, ${c.bootstrap} bootstrap resamples` : ' · no band (report option smoothBand)'),
  );
  const main: string[] = [];
  main.push(el('rect', { width: plotW, height: mainH, fill: '#f7f7f7', stroke: '#ccc' }));
  for (const v of [0.2, 0.4, 0.6, 0.8]) main.push(el('line', { class: 'grid', x1: 0, x2: plotW, y1: y(v), y2: y(v), stroke: '#e2e2e2' }));
  if (c.lower && c.upper) {
    const pts = c.x.map((xv, i) => `${num(x(xv))},${num(y(c.upper![i]))}`).concat(c.x.map((xv, i) => `${num(x(xv))},${num(y(c.lower![i]))}`).reverse());
    main.push(el('polygon', { class: 'band', points: pts.join(' '), fill: '#888', 'fill-opacity': 0.3, stroke: 'none' }));
  }
  main.push(el('line', { class: 'diagonal', x1: x(0), y1: y(0), x2: x(1), y2: y(1), stroke: COLORS.diagonal, 'stroke-dasharray': `${num(6 * k)},${num(4 * k)}`, 'stroke-width': 1.5 * k }));
  // The curve as segments whose width follows the density (0.6 px at none, 9 px at the densest point).
  const dMax = Math.max(...c.density, 1e-12);
  const segs: string[] = [];
  for (let i = 0; i + 1 < c.x.length; i++) {
    const d = (c.density[i] + c.density[i + 1]) / (2 * dMax);
    segs.push(el('line', { x1: x(c.x[i]), y1: y(c.y[i]), x2: x(c.x[i + 1]), y2: y(c.y[i + 1]), 'stroke-width': (0.6 + 8.4 * Math.sqrt(d)) * k }));
  }
  main.push(`<g class="curve" stroke="${COLORS.gap}" stroke-linecap="round">${segs.join('')}</g>`);
  const unit = ticks(1, 0.2);
  main.push(axis('bottom', unit, x, (v) => v.toFixed(1), plotW, mainH, k, fs(11)));
  main.push(axis('left', unit, y, (v) => v.toFixed(1), mainH, 0, k, fs(11)));
  main.push(el('text', { transform: `translate(${num(-40 * k)},${num(mainH / 2)}) rotate(-90)`, 'text-anchor': 'middle', 'font-size': fs(12.5) }, 'E[correct | confidence]'));
  out.push(`<g transform="translate(${num(m.left)},${num(m.top)})">${main.join('')}</g>`);
  // Density of the confidences.
  const hist: string[] = [];
  const yh = (v: number): number => (1 - v / dMax) * histH;
  hist.push(el('rect', { width: plotW, height: histH, fill: '#f7f7f7', stroke: '#ccc' }));
  const area = `M${num(x(0))},${num(histH)}` + c.x.map((xv, i) => `L${num(x(xv))},${num(yh(c.density[i]))}`).join('') + `L${num(x(1))},${num(histH)}Z`;
  hist.push(el('path', { class: 'density', d: area, fill: COLORS.hist, 'fill-opacity': 0.7, stroke: COLORS.hist }));
  hist.push(axis('bottom', unit, x, (v) => v.toFixed(1), plotW, histH, k, fs(11)));
  hist.push(el('text', { transform: `translate(${num(-40 * k)},${num(histH / 2)}) rotate(-90)`, 'text-anchor': 'middle', 'font-size': fs(12) }, 'Density'));
  hist.push(el('text', { x: plotW / 2, y: histH + 36 * k, 'text-anchor': 'middle', 'font-size': fs(12.5) }, 'Confidence (top-label probability)'));
  out.push(`<g transform="translate(${num(m.left)},${num(m.top + mainH + gap)})">${hist.join('')}</g>`);
  return svgDocument(W, H, out);
}

function renderSvg(r: CalibrationReport, title: string, W: number): string {
  const f = frame(W, 110);
  const { k, m, gap, plotW, mainH, histH, H, fs, x } = f;
  const y = (v: number): number => (1 - v) * mainH;
  const out = heading(
    f,
    W,
    `${title} — ECE ${pct(r.ece)}`,
    `N = ${r.n}, K = ${r.classes} · accuracy ${pct(r.accuracy)} · MCE ${pct(r.mce)} · NLL ${r.nll.toFixed(4)} · ${r.convention} bins`,
  );

  // Reliability panel: accuracy per bin, the gap to its mean confidence, the diagonal.
  const main: string[] = [];
  main.push(el('rect', { width: plotW, height: mainH, fill: '#f7f7f7', stroke: '#ccc' }));
  for (const v of [0.2, 0.4, 0.6, 0.8]) main.push(el('line', { class: 'grid', x1: 0, x2: plotW, y1: y(v), y2: y(v), stroke: '#e2e2e2' }));
  const filled = r.bins.filter((b): b is ReliabilityBin & { confidence: number; accuracy: number } => b.count > 0 && b.accuracy !== null && b.confidence !== null);
  const minW = 3 * k;
  const bx = (b: ReliabilityBin): number => (b.hi > b.lo ? x(b.lo) : x(b.lo) - minW);
  const bw = (b: ReliabilityBin): number => Math.max(x(b.hi) - x(b.lo), minW);
  for (const b of filled) {
    main.push(el('rect', { class: 'acc', x: bx(b), width: bw(b), y: y(b.accuracy), height: mainH - y(b.accuracy), fill: COLORS.bar, stroke: 'white', 'stroke-width': 0.8 * k }));
  }
  for (const b of filled) {
    main.push(
      el('rect', {
        class: 'gap',
        x: bx(b),
        width: bw(b),
        y: y(Math.max(b.accuracy, b.confidence)),
        height: Math.abs(y(b.accuracy) - y(b.confidence)),
        fill: COLORS.gap,
        'fill-opacity': 0.35,
        stroke: COLORS.gap,
        'stroke-width': 0.8 * k,
      }),
    );
  }
  main.push(el('line', { class: 'diagonal', x1: x(0), y1: y(0), x2: x(1), y2: y(1), stroke: COLORS.diagonal, 'stroke-dasharray': `${num(6 * k)},${num(4 * k)}`, 'stroke-width': 1.5 * k }));
  const unit = ticks(1, 0.2);
  main.push(axis('bottom', unit, x, (v) => v.toFixed(1), plotW, mainH, k, fs(11)));
  main.push(axis('left', unit, y, (v) => v.toFixed(1), mainH, 0, k, fs(11)));
  main.push(el('text', { transform: `translate(${num(-40 * k)},${num(mainH / 2)}) rotate(-90)`, 'text-anchor': 'middle', 'font-size': fs(12.5) }, 'Accuracy'));

  // Legend, top left inside the panel.
  const legend: string[] = [];
  legend.push(el('rect', { x: -5 * k, y: -5 * k, width: 188 * k, height: 62 * k, fill: 'white', 'fill-opacity': 0.85, stroke: '#ccc' }));
  const items: [string, string, number][] = [
    ['Accuracy per bin', COLORS.bar, 1],
    ['Gap to mean confidence', COLORS.gap, 0.35],
  ];
  items.forEach(([label, color, op], i) => {
    legend.push(el('rect', { x: 0, y: i * 18 * k, width: 14 * k, height: 12 * k, fill: color, 'fill-opacity': op, stroke: color }));
    legend.push(el('text', { x: 20 * k, y: i * 18 * k + 10 * k, 'font-size': fs(11) }, label));
  });
  legend.push(el('line', { x1: 0, x2: 14 * k, y1: 42 * k, y2: 42 * k, stroke: COLORS.diagonal, 'stroke-dasharray': `${num(4 * k)},${num(2 * k)}`, 'stroke-width': 1.5 * k }));
  legend.push(el('text', { x: 20 * k, y: 46 * k, 'font-size': fs(11) }, 'Perfect calibration'));
  main.push(`<g transform="translate(${num(10 * k)},${num(10 * k)})">${legend.join('')}</g>`);
  out.push(`<g transform="translate(${num(m.left)},${num(m.top)})">${main.join('')}</g>`);

  // Confidence histogram: share of samples per bin, with mean confidence and accuracy.
  const hist: string[] = [];
  const shares = r.bins.map((b) => b.count / r.n);
  const rawMax = Math.max(0.05, ...shares);
  const step = tickStep(rawMax, 3);
  const hMax = Math.ceil(rawMax / step - 1e-9) * step;
  const yh = (v: number): number => (1 - v / hMax) * histH;
  hist.push(el('rect', { width: plotW, height: histH, fill: '#f7f7f7', stroke: '#ccc' }));
  for (const b of r.bins) {
    if (b.count === 0) continue;
    hist.push(el('rect', { class: 'h', x: bx(b), width: bw(b), y: yh(b.count / r.n), height: histH - yh(b.count / r.n), fill: COLORS.hist, stroke: 'white', 'stroke-width': 0.8 * k }));
  }
  let confSum = 0;
  let countSum = 0;
  for (const b of filled) {
    confSum += b.confidence * b.count;
    countSum += b.count;
  }
  const meanConf = confSum / Math.max(1, countSum);
  const marks: [number, string, string][] = [
    [r.accuracy, COLORS.acc, `accuracy ${pct(r.accuracy)}`],
    [meanConf, COLORS.conf, `mean confidence ${pct(meanConf)}`],
  ];
  marks.forEach(([v, color, label], i) => {
    hist.push(el('line', { x1: x(v), x2: x(v), y1: 0, y2: histH, stroke: color, 'stroke-width': 2 * k, 'stroke-dasharray': `${num(5 * k)},${num(3 * k)}` }));
    hist.push(el('text', { x: 8 * k, y: (16 + 15 * i) * k, 'font-size': fs(11), fill: color }, label));
  });
  hist.push(axis('bottom', unit, x, (v) => v.toFixed(1), plotW, histH, k, fs(11)));
  const decimals = Math.max(0, -Math.floor(Math.log10(step * 100) + 1e-9));
  hist.push(axis('left', ticks(hMax, step), yh, (v) => `${(100 * v).toFixed(decimals)}%`, histH, 0, k, fs(11)));
  hist.push(el('text', { transform: `translate(${num(-40 * k)},${num(histH / 2)}) rotate(-90)`, 'text-anchor': 'middle', 'font-size': fs(12) }, 'Samples'));
  hist.push(el('text', { x: plotW / 2, y: histH + 36 * k, 'text-anchor': 'middle', 'font-size': fs(12.5) }, 'Confidence (top-label probability)'));
  out.push(`<g transform="translate(${num(m.left)},${num(m.top + mainH + gap)})">${hist.join('')}</g>`);
  return svgDocument(W, H, out);
}
