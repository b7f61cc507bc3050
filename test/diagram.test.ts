/**
 * The reliability diagram without a plotting library: the SVG's structure (one bar per
 * filled bin, the diagonal, axes, escaped text), the PNG's text drawn in the shipped DejaVu
 * Sans subset (dark pixels where the title and an axis label are, with system fonts not
 * loaded), and the typed error when the optional @resvg/resvg-js is absent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { calibration, MissingDependencyError, tensor } from '../lib/index';
import { FONT_FILE } from '../lib/calibration/diagram';
import { cleanEnv, describeRun, repoRoot, run } from './helpers/contract-util';

function sampleReport() {
  const n = 400;
  const k = 4;
  const p = new Float64Array(n * k);
  const labels = new BigInt64Array(n);
  let seed = 7;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += p[i * k + j] = rnd() ** 3;
    for (let j = 0; j < k; j++) p[i * k + j] /= s;
    labels[i] = BigInt(Math.floor(rnd() * k));
  }
  return calibration.report(tensor(p, [n, k]), tensor(labels, [n]));
}

const report = sampleReport();

describe('reliability diagram SVG', () => {
  it('has a bar and a histogram bar per filled bin, the diagonal, axes and escaped text', () => {
    const svg = calibration.reliabilityDiagram(report, { title: 'Model <A> & "B"' });
    const filled = report.bins.filter((b) => b.count > 0).length;
    expect(svg.match(/<rect class="acc"/g)).toHaveLength(filled);
    expect(svg.match(/<rect class="gap"/g)).toHaveLength(filled);
    expect(svg.match(/<rect class="h"/g)).toHaveLength(filled);
    expect(svg.match(/<line class="diagonal"/g)).toHaveLength(1);
    expect(svg.match(/<g class="axis">/g)).toHaveLength(4);
    expect(svg).toContain('Model &lt;A&gt; &amp; &quot;B&quot; — ECE');
    expect(svg).not.toContain('<A>');
    for (const label of ['0.0', '0.2', '1.0', 'Accuracy', 'Samples', 'Perfect calibration', 'Confidence (top-label probability)']) {
      expect(svg).toContain(`>${label}</text>`);
    }
    // Histogram axis: percentages on a 1-2-5 step.
    expect(svg).toMatch(/>0%<\/text>/);
    // No NaN or exponent notation in coordinates.
    expect(svg).not.toMatch(/="[^"]*(NaN|e-\d)[^"]*"/);
  });
});

describe('reliability diagram PNG', () => {
  it('draws its text with the shipped font (dark pixels where the title and the y label are)', () => {
    expect(fs.statSync(FONT_FILE).size).toBeGreaterThan(10_000);
    const png = PNG.sync.read(calibration.reliabilityDiagram(report, { format: 'png', scale: 1 }));
    expect(png.width).toBe(560);
    const dark = (x0: number, x1: number, y0: number, y1: number): number => {
      let count = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const i = (y * png.width + x) * 4;
          if (png.data[i] < 100 && png.data[i + 1] < 100 && png.data[i + 2] < 100) count++;
        }
      }
      return count;
    };
    // The bold title, centred on y = 26: hundreds of dark pixels; the margin above it: none.
    expect(dark(100, 460, 10, 32)).toBeGreaterThan(300);
    expect(dark(0, 560, 0, 6)).toBe(0);
    // "Accuracy", rotated, centred at x = 18 beside the square panel (top 62, height 482).
    expect(dark(8, 26, 62 + 241 - 35, 62 + 241 + 35)).toBeGreaterThan(40);
  });

  it('without @resvg/resvg-js, format png throws MissingDependencyError naming the package; svg still works', () => {
    const register = path.join(repoRoot, 'test', 'helpers', 'contract-ts-register.cjs');
    const child = `
      const Module = require('module');
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        if (request === '@resvg/resvg-js') {
          const e = new Error("Cannot find module '@resvg/resvg-js'");
          e.code = 'MODULE_NOT_FOUND';
          throw e;
        }
        return resolve.call(this, request, ...rest);
      };
      const s = require(${JSON.stringify(path.join(repoRoot, 'lib', 'index.ts'))});
      const report = ${JSON.stringify(report)};
      const svg = s.calibration.reliabilityDiagram(report);
      try {
        s.calibration.reliabilityDiagram(report, { format: 'png' });
        console.log('no error');
      } catch (e) {
        console.log(JSON.stringify({ svg: svg.startsWith('<?xml'), name: e.name, code: e.code, pkg: e.packageName,
          isClass: e instanceof s.MissingDependencyError, message: e.message }));
      }`;
    const r = run(process.execPath, ['-r', register, '-e', child], { cwd: repoRoot, env: cleanEnv(), timeout: 60_000 });
    expect(r.status, describeRun(r)).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(out).toMatchObject({ svg: true, name: 'MissingDependencyError', code: 'ERR_SMOOTHCE_MISSING_DEPENDENCY', pkg: '@resvg/resvg-js', isClass: true });
    expect(out.message).toMatch(/npm install @resvg\/resvg-js/);
    expect(new MissingDependencyError('x', 'y')).toBeInstanceOf(Error);
  });
});
