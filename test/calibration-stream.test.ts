/**
 * The Accumulator (pieces and merges equal one pass, JSON round trip), the reliability
 * diagram (SVG content, PNG that decodes and is not blank) and the error contract.
 */
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { calibration, tensor, type Tensor } from '../lib/index';
import { rng } from './helpers/rng';

function data(n: number, k: number, seed: number): { logits: Float64Array; labels: BigInt64Array } {
  const r = rng(seed);
  const logits = new Float64Array(n * k);
  const labels = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const y = Math.floor(r() * k);
    labels[i] = BigInt(y);
    for (let j = 0; j < k; j++) logits[i * k + j] = 3 * (r() - 0.5) + (j === y && r() < 0.6 ? 2.5 : 0);
  }
  return { logits, labels };
}

const rows = (t: { logits: Float64Array; labels: BigInt64Array }, k: number, a: number, b: number): [Tensor, Tensor] => [
  tensor(t.logits.subarray(a * k, b * k), [b - a, k]),
  tensor(t.labels.subarray(a, b), [b - a]),
];

describe('calibration.Accumulator', () => {
  const K = 7;
  const N = 1000;
  const d = data(N, K, 42);
  const opts = { from: 'logits', bins: 12 } as const;

  for (const convention of ['guo', 'torchmetrics', 'netcal'] as const) {
    it(`pieces and merged parts equal one pass (${convention})`, () => {
      const full = calibration.report(...rows(d, K, 0, N), { ...opts, convention });
      const a = new calibration.Accumulator({ ...opts, convention });
      a.update(...rows(d, K, 0, 137)).update(...rows(d, K, 137, 600));
      const b = new calibration.Accumulator({ ...opts, convention }).update(...rows(d, K, 600, N));
      const merged = a.merge(b).report();
      const pieces = new calibration.Accumulator({ ...opts, convention });
      for (let i = 0; i < N; i += 100) pieces.update(...rows(d, K, i, i + 100));
      for (const rep of [merged, pieces.report()]) {
        expect(rep.n).toBe(N);
        expect(rep.bins.map((x) => x.count)).toEqual(full.bins.map((x) => x.count));
        for (const key of ['accuracy', 'nll', 'brier', 'ece', 'mce', 'rmsce', 'classwiseEce'] as const) {
          expect(Math.abs(rep[key] - full[key]), key).toBeLessThan(1e-13);
        }
        for (const [i, bin] of rep.bins.entries()) {
          if (bin.count) expect(Math.abs(bin.confidence! - full.bins[i].confidence!)).toBeLessThan(1e-13);
        }
        expect(rep.adaptiveEce).toBeNull();
        expect(rep.notes.join(' ')).toMatch(/adaptiveEce is omitted/);
      }
    });
  }

  it('toJSON / fromJSON round trip (object and text), then keeps accumulating', () => {
    const a = new calibration.Accumulator(opts).update(...rows(d, K, 0, 500));
    const text = JSON.stringify(a);
    const b = calibration.Accumulator.fromJSON(text);
    const c = calibration.Accumulator.fromJSON(JSON.parse(text));
    expect(b.report()).toEqual(a.report());
    expect(c.report()).toEqual(a.report());
    b.update(...rows(d, K, 500, N));
    const full = calibration.report(...rows(d, K, 0, N), opts);
    expect(b.report().ece).toBeCloseTo(full.ece, 13);
    expect(b.n).toBe(N);
  });

  it('memory is constant: the state holds per-bin sums only', () => {
    const a = new calibration.Accumulator(opts);
    a.update(...rows(d, K, 0, N));
    const once = JSON.stringify(a).length;
    for (let i = 0; i < 20; i++) a.update(...rows(d, K, 0, N));
    expect(a.n).toBe(21 * N);
    expect(JSON.stringify(a).length).toBeLessThan(once * 1.2);
  });

  it('refuses to merge different binnings or class counts', () => {
    const a = new calibration.Accumulator(opts).update(...rows(d, K, 0, 10));
    expect(() => a.merge(new calibration.Accumulator({ ...opts, bins: 10 }))).toThrow(RangeError);
    expect(() => a.merge(new calibration.Accumulator({ ...opts, convention: 'netcal' }))).toThrow(/convention/);
    expect(() => a.merge({} as never)).toThrow(TypeError);
    const two = tensor(new Float64Array([1, 2, 3, 4]), [2, 2]);
    expect(() => a.update(two, tensor(new BigInt64Array([0n, 1n]), [2]))).toThrow(/K = 7/);
    expect(() => new calibration.Accumulator().report()).toThrow(/no samples/);
    expect(() => calibration.Accumulator.fromJSON({ format: 'x' })).toThrow(RangeError);
  });
});

describe('calibration.reliabilityDiagram', () => {
  const d = data(2000, 10, 7);
  const report = calibration.report(tensor(d.logits, [2000, 10]), tensor(d.labels, [2000]), { from: 'logits' });

  it('SVG: bars per non-empty bin, the diagonal, a histogram and the ECE in the title', () => {
    const svg = calibration.reliabilityDiagram(report, { title: 'Test model' });
    expect(svg).toMatch(/^<\?xml/);
    expect(svg).toContain('<svg');
    expect(svg).toContain(`Test model — ECE ${(100 * report.ece).toFixed(2)}%`);
    const filled = report.bins.filter((b) => b.count > 0).length;
    expect(svg.match(/class="acc"/g)).toHaveLength(filled);
    expect(svg.match(/class="h"/g)).toHaveLength(filled);
    expect(svg).toContain('Perfect calibration');
  });

  it('PNG decodes, has the expected size and is not blank', () => {
    const png = calibration.reliabilityDiagram(report, { format: 'png', scale: 1 });
    expect(Buffer.isBuffer(png)).toBe(true);
    const img = PNG.sync.read(png);
    expect(img.width).toBe(560);
    expect(img.height).toBeGreaterThan(600);
    let dark = 0;
    let blue = 0;
    for (let i = 0; i < img.data.length; i += 4) {
      const [r, g, b] = [img.data[i], img.data[i + 1], img.data[i + 2]];
      if (r + g + b < 200) dark++;
      if (b > 150 && r < 100) blue++;
    }
    const px = img.width * img.height;
    expect(dark / px).toBeGreaterThan(0.005); // text, axes
    expect(blue / px).toBeGreaterThan(0.02); // accuracy bars
  });

  it('rejects what is not a report, and bad options', () => {
    expect(() => calibration.reliabilityDiagram({} as never)).toThrow(TypeError);
    expect(() => calibration.reliabilityDiagram(report, { format: 'jpg' as never })).toThrow(RangeError);
    expect(() => calibration.reliabilityDiagram(report, { colour: 1 } as never)).toThrow(/Unknown option 'colour'/);
  });
});

describe('calibration: invalid inputs get clear errors', () => {
  const p = tensor(new Float64Array([0.6, 0.4, 0.3, 0.7]), [2, 2]);
  const y = tensor(new BigInt64Array([0n, 1n]), [2]);
  const t = (a: number[], shape: number[]): Tensor => tensor(Float64Array.from(a), shape);

  it('probabilities outside [0, 1]', () => {
    expect(() => calibration.ece(t([1.2, -0.2, 0.5, 0.5], [2, 2]), y)).toThrow(RangeError);
    expect(() => calibration.ece(t([0.5, 0.5, 1.2, -0.2], [2, 2]), y)).toThrow(/probabilities in \[0, 1\] for probs .*1\.2 at \[1, 0\]/);
    expect(() => calibration.report(t([NaN, 1, 0.5, 0.5], [2, 2]), y)).toThrow(/scores.*NaN/);
  });

  it('rows that do not sum to 1 (and the hint to use logits)', () => {
    expect(() => calibration.report(t([0.6, 0.6, 0.5, 0.5], [2, 2]), y)).toThrow(/row 0 sums to 1\.2.*from: 'logits'/);
    expect(calibration.report(t([0.6, 0.4005, 0.5, 0.5], [2, 2]), y).n).toBe(2); // within 1e-3
    expect(() => calibration.report(t([0.6, 0.4005, 0.5, 0.5], [2, 2]), y, { tolerance: 1e-4 })).toThrow(RangeError);
  });

  it('labels out of range, of the wrong dtype or shape', () => {
    expect(() => calibration.ece(p, tensor(new BigInt64Array([0n, 7n]), [2]))).toThrow(/class indices in \[0, 1\] for labels but received 7 at index 1/);
    expect(() => calibration.ece(p, tensor(new Int32Array([-1, 0]), [2]))).toThrow(RangeError);
    expect(() => calibration.ece(p, tensor(new Float64Array([0, 1]), [2]))).toThrow(TypeError);
    expect(() => calibration.ece(p, tensor(new BigInt64Array([0n, 1n, 1n]), [3]))).toThrow(/labels.*\[2\].*\[3\]/);
  });

  it('bins < 1, non-integer or not a number', () => {
    expect(() => calibration.ece(p, y, { bins: 0 })).toThrow(/bins but received 0/);
    expect(() => calibration.ece(p, y, { bins: 0 })).toThrow(RangeError);
    expect(() => calibration.ece(p, y, { bins: 2.5 })).toThrow(RangeError);
    expect(() => calibration.ece(p, y, { bins: '15' as never })).toThrow(TypeError);
    expect(() => new calibration.Accumulator({ bins: -3 })).toThrow(/bins/);
  });

  it('shapes, options and logits', () => {
    expect(() => calibration.ece(t([0.5, 0.5], [2]), y)).toThrow(/shape \(N, K\)/);
    expect(() => calibration.ece(t([1, 1], [2, 1]), y)).toThrow(/K >= 2/);
    expect(() => calibration.ece(p, y, { convention: 'sklearn' as never })).toThrow(RangeError);
    expect(() => calibration.ece(p, y, { norm: 'l3' as never })).toThrow(/norm/);
    expect(() => calibration.ece(p, y, { binz: 3 } as never)).toThrow(/did you mean 'bins'/);
    expect(() => calibration.report(p, y, { temperature: 2 })).toThrow(/temperature/);
    expect(() => calibration.report(t([0, Infinity, 1, 2], [2, 2]), y, { from: 'logits' })).toThrow(/finite logits.*Infinity at \[0, 1\]/);
    expect(() => calibration.fitTemperature(p, y, { device: 'tpu' as never })).toThrow(RangeError);
    expect(() => calibration.ece(p, y, { norm: 'l1', debias: true })).toThrow(/debias/);
  });
});
