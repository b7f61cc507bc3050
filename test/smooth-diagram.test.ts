/**
 * The smooth reliability diagram: report.smoothCurve (the kernel-smoothed E[correct | conf],
 * its density and bootstrap band), reliabilityDiagram(..., { kind: 'smooth' }) as SVG (one
 * density-weighted segment per mesh step, band, diagonal, title with SmoothECE and bandwidth)
 * and PNG (decodes; curve pixels drawn), and the CLI's --diagram smooth.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { calibration, tensor } from '../lib/index';
import { runCalibrate } from '../lib/cli/calibrate';
import { writeNpy } from '../lib/parity/npy';
import { rng } from './helpers/rng';

const N = 2000;
const K = 5;
const r = rng(3);
const z = new Float32Array(N * K);
const y = new BigInt64Array(N);
for (let i = 0; i < N; i++) {
  const label = Math.floor(r() * K);
  y[i] = BigInt(label);
  for (let k = 0; k < K; k++) z[i * K + k] = 3 * (r() - 0.5) + (k === label && r() < 0.6 ? 4 : 0);
}
const withBand = calibration.report(tensor(z, [N, K]), tensor(y, [N]), { from: 'logits', smoothBand: 40 });
const noBand = calibration.report(tensor(z, [N, K]), tensor(y, [N]), { from: 'logits' });

describe('report.smoothCurve', () => {
  it('has 200 mesh points, a density that integrates to about 1, and a band around the curve', () => {
    const c = withBand.smoothCurve;
    expect(c.x).toHaveLength(200);
    expect(c.bandwidth).toBe(withBand.smoothEceBandwidth);
    const h = 1 / 199;
    const integral = c.density.reduce((a, d) => a + d * h, 0);
    expect(integral).toBeGreaterThan(0.9);
    expect(integral).toBeLessThan(1.1);
    expect(c.bootstrap).toBe(40);
    const inside = c.y.filter((v, i) => c.lower![i] - 1e-9 <= v && v <= c.upper![i] + 1e-9).length;
    expect(inside).toBeGreaterThan(190);
    expect(noBand.smoothCurve.lower).toBeUndefined();
    expect(noBand.smoothCurve.y).toEqual(c.y);
  });

  it('weights the curve by density: SmoothECE is about the density-weighted |y(x) − x|', () => {
    const c = noBand.smoothCurve;
    let num = 0;
    let den = 0;
    c.x.forEach((x, i) => {
      num += c.density[i] * Math.abs(c.y[i] - x);
      den += c.density[i];
    });
    expect(num / den).toBeCloseTo(noBand.smoothEce, 2);
  });
});

describe("reliabilityDiagram(report, { kind: 'smooth' })", () => {
  it('SVG: 199 curve segments with density-dependent widths, the band, the diagonal, the title', () => {
    const svg = calibration.reliabilityDiagram(withBand, { kind: 'smooth' });
    expect(svg.startsWith('<?xml')).toBe(true);
    const curve = svg.match(/<g class="curve"[^>]*>(.*?)<\/g>/)![1];
    const widths = [...curve.matchAll(/stroke-width="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(widths).toHaveLength(199);
    expect(Math.max(...widths)).toBeGreaterThan(3 * Math.min(...widths));
    expect(svg.match(/<polygon class="band"/g)).toHaveLength(1);
    expect(svg.match(/<line class="diagonal"/g)).toHaveLength(1);
    expect(svg).toContain(`SmoothECE ${(100 * withBand.smoothEce).toFixed(2)}%`);
    expect(svg).toContain(`bandwidth ${withBand.smoothEceBandwidth.toFixed(4)}`);
    // Well-formed enough: every opened group is closed.
    expect(svg.match(/<g[ >]/g)!.length).toBe(svg.match(/<\/g>/g)!.length);
    expect(calibration.reliabilityDiagram(noBand, { kind: 'smooth' })).not.toContain('class="band"');
  });

  it('PNG: decodes (resvg parsed the SVG) and has curve-coloured pixels', () => {
    const png = PNG.sync.read(calibration.reliabilityDiagram(withBand, { kind: 'smooth', format: 'png', scale: 1 }));
    expect(png.width).toBe(560);
    let red = 0;
    for (let i = 0; i < png.data.length; i += 4) if (png.data[i] > 200 && png.data[i + 1] < 120 && png.data[i + 2] < 90) red++;
    expect(red).toBeGreaterThan(200);
  });

  it('rejects an unknown kind and a report without a curve, with coded errors', () => {
    expect(() => calibration.reliabilityDiagram(noBand, { kind: 'kde' as never })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE' }));
    const { smoothCurve: _drop, ...old } = noBand;
    expect(() => calibration.reliabilityDiagram(old as never, { kind: 'smooth' })).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_SMOOTHCE_INVALID_ARG_TYPE' }));
  });

  it('is drawn from an Accumulator report too (no band)', () => {
    const acc = new calibration.Accumulator({ from: 'logits' }).update(tensor(z, [N, K]), tensor(y, [N]));
    const rep = acc.report();
    expect(rep.smoothEceBandwidth).toBe(noBand.smoothEceBandwidth);
    expect(Math.abs(rep.smoothEce - noBand.smoothEce)).toBeLessThan(1e-12);
    expect(calibration.reliabilityDiagram(rep, { kind: 'smooth' })).toContain('no band');
  });
});

describe('smoothce calibrate --diagram smooth', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-smooth-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  it('writes the smooth diagram and prints SmoothECE, top-label ECE and AURC', () => {
    const scores = path.join(dir, 'z.npy');
    const labels = path.join(dir, 'y.npy');
    writeNpy(scores, z, [N, K]);
    writeNpy(labels, y, [N]);
    const svg = path.join(dir, 'smooth.svg');
    const lines: string[] = [];
    expect(runCalibrate({ scores, labels, from: 'logits', plot: svg, diagram: 'smooth', band: 20, selectiveScore: 'normalized-max-logit' }, { out: (l) => lines.push(l) })).toBe(0);
    const text = fs.readFileSync(svg, 'utf8');
    expect(text).toContain('class="curve"');
    expect(text).toContain('20 bootstrap resamples');
    const out = lines.join('\n');
    expect(out).toContain(`SmoothECE      ${(100 * noBand.smoothEce).toFixed(2)}%`);
    expect(out).toMatch(/AURC +0\.\d{4} +\(risk-coverage area, ranked by normalized-max-logit\)/);
    expect(out).toContain(`top-label ECE  ${(100 * noBand.topLabelEce).toFixed(2)}%`);
  });
});
