/**
 * Reliability diagrams (Guo et al. 2017, Fig. 1): accuracy per confidence bin against
 * the diagonal of perfect calibration, the gap to each bin's mean confidence, and a
 * confidence histogram underneath; ECE in the title. The SVG is drawn with d3 on a
 * linkedom document (no browser), the PNG rendered from it by resvg.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import type * as D3 from 'd3';
import { rangeError, typeError } from '../errors';
import { readOptions } from '../options';
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
}

let d3cache: typeof D3 | undefined;
function d3(): typeof D3 {
  // d3 7 is an ES module package with one UMD bundle. Its package.json says "type":
  // "module", so require() would load even the UMD file as ESM (and needs Node 20.19+);
  // evaluating the bundle as a CommonJS-style function works on every Node 20.
  if (!d3cache) {
    const file = path.join(path.dirname(require.resolve('d3')), 'd3.min.js');
    const wrapper = vm.runInThisContext(`(function (exports, module) {${fs.readFileSync(file, 'utf8')}\n})`, { filename: file });
    const mod = { exports: {} as Record<string, unknown> };
    wrapper.call(globalThis, mod.exports, mod);
    d3cache = mod.exports as unknown as typeof D3;
  }
  return d3cache;
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

/** Renders a report's bins as an SVG string, or a PNG Buffer with format: 'png'. */
export function reliabilityDiagram(report: CalibrationReport, options?: DiagramOptions & { format?: 'svg' }): string;
export function reliabilityDiagram(report: CalibrationReport, options: DiagramOptions & { format: 'png' }): Buffer;
export function reliabilityDiagram(report: CalibrationReport, options?: DiagramOptions): string | Buffer;
export function reliabilityDiagram(report: unknown, options?: DiagramOptions): string | Buffer {
  const opts = readOptions(options, ['format', 'title', 'width', 'scale'], 'calibration.reliabilityDiagram');
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
  const svg = renderSvg(r, (opts.title as string | undefined) ?? 'Reliability diagram', width as number);
  if (format === 'svg') return svg;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Resvg } = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
  const png = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale as number },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  })
    .render()
    .asPng();
  return Buffer.from(png);
}

function renderSvg(r: CalibrationReport, title: string, W: number): string {
  const d = d3();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parseHTML } = require('linkedom') as typeof import('linkedom');
  const { document } = parseHTML('<!doctype html><html><body></body></html>');
  const k = W / 560;
  const m = { top: 62 * k, right: 20 * k, bottom: 46 * k, left: 58 * k };
  const gap = 30 * k;
  const plotW = W - m.left - m.right;
  const mainH = plotW; // square reliability panel
  const histH = 110 * k;
  const H = Math.round(m.top + mainH + gap + histH + m.bottom);
  const fs = (px: number): string => `${(px * k).toFixed(1)}px`;

  const svg = d
    .select(document.body as never)
    .append('svg')
    .attr('xmlns', 'http://www.w3.org/2000/svg')
    .attr('width', W)
    .attr('height', H)
    .attr('viewBox', `0 0 ${W} ${H}`)
    .attr('font-family', FONT);
  svg.append('rect').attr('width', W).attr('height', H).attr('fill', 'white');

  svg.append('text').attr('x', W / 2).attr('y', 26 * k).attr('text-anchor', 'middle').attr('font-size', fs(17)).attr('font-weight', 'bold')
    .text(`${title} — ECE ${pct(r.ece)}`);
  svg.append('text').attr('x', W / 2).attr('y', 46 * k).attr('text-anchor', 'middle').attr('font-size', fs(11.5)).attr('fill', '#333')
    .text(`N = ${r.n}, K = ${r.classes} · accuracy ${pct(r.accuracy)} · MCE ${pct(r.mce)} · NLL ${r.nll.toFixed(4)} · ${r.convention} bins`);

  const x = d.scaleLinear().domain([0, 1]).range([0, plotW]);
  const y = d.scaleLinear().domain([0, 1]).range([mainH, 0]);
  const main = svg.append('g').attr('transform', `translate(${m.left},${m.top})`);
  main.append('rect').attr('width', plotW).attr('height', mainH).attr('fill', '#f7f7f7').attr('stroke', '#ccc');
  const grid = d.range(0.2, 1, 0.2);
  main.selectAll('line.grid').data(grid).enter().append('line').attr('class', 'grid')
    .attr('x1', 0).attr('x2', plotW).attr('y1', (v) => y(v)).attr('y2', (v) => y(v)).attr('stroke', '#e2e2e2');

  const filled = r.bins.filter((b): b is ReliabilityBin & { confidence: number; accuracy: number } => b.count > 0 && b.accuracy !== null && b.confidence !== null);
  const minW = 3 * k;
  const bx = (b: ReliabilityBin): number => (b.hi > b.lo ? x(b.lo) : x(b.lo) - minW);
  const bw = (b: ReliabilityBin): number => Math.max(x(b.hi) - x(b.lo), minW);
  main.selectAll('rect.acc').data(filled).enter().append('rect').attr('class', 'acc')
    .attr('x', bx).attr('width', bw).attr('y', (b) => y(b.accuracy)).attr('height', (b) => mainH - y(b.accuracy))
    .attr('fill', COLORS.bar).attr('stroke', 'white').attr('stroke-width', 0.8 * k);
  main.selectAll('rect.gap').data(filled).enter().append('rect').attr('class', 'gap')
    .attr('x', bx).attr('width', bw)
    .attr('y', (b) => y(Math.max(b.accuracy, b.confidence)))
    .attr('height', (b) => Math.abs(y(b.accuracy) - y(b.confidence)))
    .attr('fill', COLORS.gap).attr('fill-opacity', 0.35).attr('stroke', COLORS.gap).attr('stroke-width', 0.8 * k);
  main.append('line').attr('x1', x(0)).attr('y1', y(0)).attr('x2', x(1)).attr('y2', y(1))
    .attr('stroke', COLORS.diagonal).attr('stroke-dasharray', `${6 * k},${4 * k}`).attr('stroke-width', 1.5 * k);

  interface Attr {
    attr(n: string, v: string): Attr;
  }
  const axisFont = (g: { selectAll(s: string): Attr }): void => {
    g.selectAll('text').attr('font-size', fs(11)).attr('font-family', FONT);
  };
  main.append('g').attr('transform', `translate(0,${mainH})`).call(d.axisBottom(x).ticks(5).tickSize(4 * k)).call(axisFont);
  main.append('g').call(d.axisLeft(y).ticks(5).tickSize(4 * k)).call(axisFont);
  main.append('text').attr('transform', `translate(${-40 * k},${mainH / 2}) rotate(-90)`).attr('text-anchor', 'middle').attr('font-size', fs(12.5)).text('Accuracy');

  // Legend, top left inside the panel.
  const legend = main.append('g').attr('transform', `translate(${10 * k},${10 * k})`);
  const items: [string, string, number][] = [
    ['Accuracy per bin', COLORS.bar, 1],
    ['Gap to mean confidence', COLORS.gap, 0.35],
  ];
  legend.append('rect').attr('x', -5 * k).attr('y', -5 * k).attr('width', 188 * k).attr('height', 62 * k).attr('fill', 'white').attr('fill-opacity', 0.85).attr('stroke', '#ccc');
  items.forEach(([label, color, op], i) => {
    legend.append('rect').attr('x', 0).attr('y', i * 18 * k).attr('width', 14 * k).attr('height', 12 * k).attr('fill', color).attr('fill-opacity', op).attr('stroke', color);
    legend.append('text').attr('x', 20 * k).attr('y', i * 18 * k + 10 * k).attr('font-size', fs(11)).text(label);
  });
  legend.append('line').attr('x1', 0).attr('x2', 14 * k).attr('y1', 42 * k).attr('y2', 42 * k).attr('stroke', COLORS.diagonal).attr('stroke-dasharray', `${4 * k},${2 * k}`).attr('stroke-width', 1.5 * k);
  legend.append('text').attr('x', 20 * k).attr('y', 46 * k).attr('font-size', fs(11)).text('Perfect calibration');

  // Confidence histogram: share of samples per bin, with mean confidence and accuracy.
  const hist = svg.append('g').attr('transform', `translate(${m.left},${m.top + mainH + gap})`);
  const shares = r.bins.map((b) => b.count / r.n);
  const yh = d.scaleLinear().domain([0, Math.max(0.05, d.max(shares) ?? 0)]).nice().range([histH, 0]);
  hist.append('rect').attr('width', plotW).attr('height', histH).attr('fill', '#f7f7f7').attr('stroke', '#ccc');
  hist.selectAll('rect.h').data(r.bins.filter((b) => b.count > 0)).enter().append('rect').attr('class', 'h')
    .attr('x', bx).attr('width', bw).attr('y', (b) => yh(b.count / r.n)).attr('height', (b) => histH - yh(b.count / r.n))
    .attr('fill', COLORS.hist).attr('stroke', 'white').attr('stroke-width', 0.8 * k);
  let confSum = 0;
  for (const b of filled) confSum += b.confidence * b.count;
  const meanConf = confSum / Math.max(1, d.sum(filled, (b) => b.count));
  const marks: [number, string, string][] = [
    [r.accuracy, COLORS.acc, `accuracy ${pct(r.accuracy)}`],
    [meanConf, COLORS.conf, `mean confidence ${pct(meanConf)}`],
  ];
  marks.forEach(([v, color, label], i) => {
    hist.append('line').attr('x1', x(v)).attr('x2', x(v)).attr('y1', 0).attr('y2', histH).attr('stroke', color).attr('stroke-width', 2 * k).attr('stroke-dasharray', `${5 * k},${3 * k}`);
    hist.append('text').attr('x', 8 * k).attr('y', (16 + 15 * i) * k).attr('font-size', fs(11)).attr('fill', color).text(label);
  });
  hist.append('g').attr('transform', `translate(0,${histH})`).call(d.axisBottom(x).ticks(5).tickSize(4 * k)).call(axisFont);
  hist.append('g').call(d.axisLeft(yh).ticks(3).tickFormat(d.format('.0%')).tickSize(4 * k)).call(axisFont);
  hist.append('text').attr('transform', `translate(${-40 * k},${histH / 2}) rotate(-90)`).attr('text-anchor', 'middle').attr('font-size', fs(12)).text('Samples');
  hist.append('text').attr('x', plotW / 2).attr('y', histH + 36 * k).attr('text-anchor', 'middle').attr('font-size', fs(12.5)).text('Confidence (top-label probability)');

  const node = svg.node() as unknown as { outerHTML: string };
  return `<?xml version="1.0" encoding="UTF-8"?>\n${node.outerHTML}\n`;
}
