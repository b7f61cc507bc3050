/**
 * AURC against its formula, (1/N) Σ_k E_k / k over rows ranked by score descending with
 * equal scores in input order, on random logits with duplicated rows (ties); the normalised
 * max logit ranking; top-label ECE against Gupta & Ramdas's definition; option errors.
 */
import { describe, expect, it } from 'vitest';
import { calibration, tensor } from '../lib/index';
import { rng } from './helpers/rng';

function data(n: number, k: number, seed: number, scale = 2) {
  const r = rng(seed);
  const z = new Float32Array(n * k);
  for (let i = 0; i < z.length; i++) z[i] = scale * (r() * 2 - 1) * (1 + (i % k));
  // Every 7th row repeats the row before it: tied scores.
  for (let i = 7; i < n; i += 7) z.copyWithin(i * k, (i - 1) * k, i * k);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = r() < 0.6 ? k - 1 : Math.floor(r() * k);
  return { z, y };
}

function softmax64(z: Float32Array, i: number, k: number): number[] {
  const row = Array.from(z.subarray(i * k, (i + 1) * k), Number);
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** The formula, with a plain stable sort. */
function aurcFormula(score: number[], correct: boolean[]): number {
  const order = score.map((_, i) => i).sort((a, b) => score[b] - score[a]);
  let errors = 0;
  let sum = 0;
  order.forEach((i, j) => {
    if (!correct[i]) errors++;
    sum += errors / (j + 1);
  });
  return sum / score.length;
}

describe('aurc', () => {
  const n = 3000;
  const k = 5;
  const { z, y } = data(n, k, 11);
  const probs = Array.from({ length: n }, (_, i) => softmax64(z, i, k));
  const pred = probs.map((p) => p.indexOf(Math.max(...p)));
  const correct = pred.map((p, i) => p === y[i]);

  it('equals (1/N) Σ_k E_k/k ranking by the top probability, ties in input order', () => {
    const rep = calibration.report(tensor(z, [n, k]), tensor(y, [n]), { from: 'logits' });
    const msp = probs.map((p) => Math.max(...p));
    expect(rep.selective!.score).toBe('msp');
    expect(rep.aurc!).toBeCloseTo(aurcFormula(msp, correct), 12);
    // Tie order matters for this data: the reverse tie order gives another value.
    const reversed = msp.map((_, i) => i).sort((a, b) => msp[b] - msp[a] || b - a);
    let e = 0;
    let s = 0;
    reversed.forEach((i, j) => {
      if (!correct[i]) e++;
      s += e / (j + 1);
    });
    expect(Math.abs(s / n - rep.aurc!)).toBeGreaterThan(1e-9);
  });

  it('ranks by the normalised max logit when asked', () => {
    const rep = calibration.report(tensor(z, [n, k]), tensor(y, [n]), { from: 'logits', selectiveScore: 'normalized-max-logit' });
    const nml = Array.from({ length: n }, (_, i) => {
      const row = Array.from(z.subarray(i * k, (i + 1) * k), Number);
      const mean = row.reduce((a, b) => a + b, 0) / k;
      const norm = Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0));
      return (Math.max(...row) - mean) / norm;
    });
    expect(rep.selective!.score).toBe('normalized-max-logit');
    expect(rep.aurc!).toBeCloseTo(aurcFormula(nml, correct), 12);
  });

  it('gives the risk-coverage curve: risk at coverage 1 is the error rate, points ascend in coverage', () => {
    const rep = calibration.report(tensor(z, [n, k]), tensor(y, [n]), { from: 'logits' });
    const c = rep.selective!;
    expect(c.coverage).toHaveLength(100);
    expect(c.coverage[99]).toBe(1);
    expect(c.risk[99]).toBeCloseTo(1 - rep.accuracy, 14);
    for (let i = 1; i < c.coverage.length; i++) expect(c.coverage[i]).toBeGreaterThan(c.coverage[i - 1]);
  });

  it('is the same from reportAsync', async () => {
    const sync = calibration.report(tensor(z, [n, k]), tensor(y, [n]), { from: 'logits' });
    const asy = await calibration.reportAsync(tensor(z, [n, k]), tensor(y, [n]), { from: 'logits' });
    expect(asy.aurc).toBe(sync.aurc);
    expect(asy.smoothEce).toBe(sync.smoothEce);
    expect(asy.topLabelEce).toBe(sync.topLabelEce);
  });

  it('rejects a normalised-max-logit ranking of probabilities, and unknown scores, with coded errors', () => {
    const p = tensor(Float64Array.from(probs.flat()), [n, k]);
    expect(() => calibration.report(p, tensor(y, [n]), { selectiveScore: 'normalized-max-logit' })).toThrow(
      expect.objectContaining({ name: 'RangeError', code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE' }),
    );
    expect(() => calibration.report(p, tensor(y, [n]), { selectiveScore: 'entropy' as never })).toThrow(expect.objectContaining({ code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE' }));
    expect(() => calibration.report(p, tensor(y, [n]), { selectiveScore: 3 as never })).toThrow(expect.objectContaining({ code: 'ERR_SMOOTHCE_INVALID_ARG_TYPE' }));
    expect(() => calibration.report(p, tensor(y, [n]), { smoothBand: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE' }));
  });
});

describe('topLabelEce (Gupta & Ramdas)', () => {
  it('is the share-weighted ECE within each predicted class (Guo bins (lo, hi])', () => {
    const n = 2000;
    const k = 4;
    const bins = 10;
    const { z, y } = data(n, k, 5, 1.5);
    const rep = calibration.report(tensor(z, [n, k]), tensor(y, [n]), { from: 'logits', bins });
    let expected = 0;
    for (let c = 0; c < k; c++) {
      const rows = Array.from({ length: n }, (_, i) => i).filter((i) => {
        const p = softmax64(z, i, k);
        return p.indexOf(Math.max(...p)) === c;
      });
      let ece = 0;
      for (let b = 0; b < bins; b++) {
        const lo = Math.fround(b / bins);
        const hi = Math.fround((b + 1) / bins);
        const inBin = rows.filter((i) => {
          const conf = Math.max(...softmax64(z, i, k));
          return conf > lo && conf <= hi;
        });
        if (!inBin.length) continue;
        const conf = inBin.reduce((a, i) => a + Math.max(...softmax64(z, i, k)), 0) / inBin.length;
        const acc = inBin.filter((i) => y[i] === c).length / inBin.length;
        ece += (inBin.length / rows.length) * Math.abs(acc - conf);
      }
      expected += (rows.length / n) * ece;
    }
    expect(rep.topLabelEce).toBeCloseTo(expected, 12);
    // Different from the plain ECE on this data (classes are calibrated differently).
    expect(Math.abs(rep.topLabelEce - rep.ece)).toBeGreaterThan(1e-4);
  });
});
