/**
 * Calibration metrics against independent references:
 *  - hand-worked cases (each convention's edge rule at a tie, confidence exactly 1.0,
 *    argmax ties), and
 *  - test/calibration-reference.py run by /usr/bin/python3: each convention's own rule
 *    written with torch/numpy (Guo's _ECELoss loop, torchmetrics' bucketize, netcal's
 *    np.histogram, uncertainty-calibration's equal-mass bins, numpy quantile bins),
 *    classwise ECE, Brier, NLL, and the NLL-optimal temperature from torch's LBFGS.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { calibration, tensor, type Tensor } from '../lib/index';
import { ORACLE_PYTHON, probeOracle } from './helpers/oracle';
import { rng } from './helpers/rng';

type Conv = 'guo' | 'torchmetrics' | 'netcal';
const CONVS: Conv[] = ['guo', 'torchmetrics', 'netcal'];

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

const f64 = (rows: number[][]): Tensor => tensor(Float64Array.from(rows.flat()), [rows.length, rows[0].length]);
const f32 = (rows: number[][]): Tensor => tensor(Float32Array.from(rows.flat()), [rows.length, rows[0].length]);
const i64 = (v: number[]): Tensor => tensor(BigInt64Array.from(v.map(BigInt)), [v.length]);

interface RefCase {
  name: string;
  dtype: 'float32' | 'float64';
  labels: number[];
  probs?: number[][];
  logits?: number[][];
  temperature?: number;
  bins: number;
  convention: Conv;
  fit?: boolean;
}

interface RefResult {
  accuracy: number;
  nll: number;
  brier: number;
  ece: number;
  mce: number;
  rmsce: number;
  rmsceDebiased: number;
  counts: number[];
  adaptiveEce: number;
  adaptiveCounts: number[];
  classwiseEce: number;
  fit?: { temperature: number; gpleiss: number; nllBefore: number; nllAfter: number };
}

function randomLogits(r: () => number, n: number, k: number, scale: number): { logits: number[][]; labels: number[] } {
  const logits: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = Array.from({ length: k }, () => scale * gauss(r));
    const y = Math.floor(r() * k);
    if (r() < 0.7) row[y] += scale; // informative but over-confident
    logits.push(row);
    labels.push(y);
  }
  return { logits, labels };
}

function softmaxRows(z: number[][]): number[][] {
  return z.map((row) => {
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
}

/** Rows whose top-label confidence sits exactly on bin edges, as each library computes them. */
function edgeRows(bins: number, r: () => number): { probs: number[][]; labels: number[] } {
  const values = new Set<number>();
  for (let i = 0; i <= bins; i++) {
    values.add(i / bins); // the decimal edge
    values.add(i * (1 / bins)); // numpy.linspace's edge
    values.add(Math.fround(i / bins)); // near torch.linspace's float32 edge
  }
  const K = 10;
  const probs: number[][] = [];
  const labels: number[] = [];
  for (const c of [...values].filter((v) => v >= 0 && v <= 1)) {
    for (let rep = 0; rep < 2; rep++) {
      const rest = (1 - c) / (K - 1);
      probs.push([c, ...Array(K - 1).fill(rest)]);
      labels.push(rep === 0 ? 0 : 1 + Math.floor(r() * (K - 1)));
    }
  }
  return { probs, labels };
}

function buildCases(): RefCase[] {
  const r = rng(20240601);
  const cases: RefCase[] = [];
  for (const convention of CONVS) {
    for (const bins of [5, 10, 15]) {
      for (const dtype of ['float64', 'float32'] as const) {
        const e = edgeRows(bins, r);
        cases.push({ name: `edges-${convention}-${bins}-${dtype}`, dtype, bins, convention, ...e });
      }
    }
    for (const dtype of ['float64', 'float32'] as const) {
      const { logits, labels } = randomLogits(r, 400, 5, 2.5);
      cases.push({ name: `random-probs-${convention}-${dtype}`, dtype, bins: 15, convention, probs: softmaxRows(logits), labels });
      cases.push({ name: `random-logits-${convention}-${dtype}`, dtype, bins: 7, convention, logits, labels });
    }
    // Coarse integer logits: many identical confidences (ties for equal-mass bins) and argmax ties.
    const zs: number[][] = [];
    const ys: number[] = [];
    for (let i = 0; i < 240; i++) {
      zs.push([0, 0, 0].map(() => Math.floor(r() * 3)));
      ys.push(Math.floor(r() * 3));
    }
    cases.push({ name: `discrete-${convention}`, dtype: 'float64', bins: 10, convention, logits: zs, labels: ys });
    const t = randomLogits(r, 300, 4, 2);
    cases.push({ name: `temperature-${convention}`, dtype: 'float64', bins: 15, convention, logits: t.logits, labels: t.labels, temperature: 1.7 });
  }
  const fit = randomLogits(rng(7), 500, 6, 3);
  cases.push({ name: 'fit', dtype: 'float64', bins: 15, convention: 'guo', logits: fit.logits, labels: fit.labels, fit: true });
  const fit32 = randomLogits(rng(8), 300, 10, 1.5);
  cases.push({ name: 'fit-f32', dtype: 'float32', bins: 15, convention: 'guo', logits: fit32.logits.map((row) => row.map(Math.fround)), labels: fit32.labels, fit: true });
  return cases;
}

const probe = probeOracle();
if (!probe.ok) {
  if (process.env.CI) throw new Error(`the Python oracle is required in CI: ${probe.reason}`);
  console.warn(`!! CALIBRATION REFERENCE SKIPPED: ${probe.reason}`);
}

describe('calibration: hand-worked cases', () => {
  // conf 0.6 (right), 0.7 (wrong: predicts 1), 0.5 (tie -> class 0, wrong), 1.0 (right)
  const p = f64([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5], [1, 0]]);
  const y = i64([0, 0, 1, 0]);

  it('ECE, MCE and RMSCE with 5 bins under every convention', () => {
    // Bins (0.4,0.6]: {0.6, 0.5}, gap |0.5 - 0.55|; (0.6,0.8]: {0.7}, gap 0.7; 1.0: gap 0.
    for (const convention of CONVS) {
      expect(calibration.ece(p, y, { bins: 5, convention })).toBeCloseTo(0.5 * 0.05 + 0.25 * 0.7, 15);
      expect(calibration.ece(p, y, { bins: 5, convention, norm: 'max' })).toBeCloseTo(0.7, 15);
      expect(calibration.ece(p, y, { bins: 5, convention, norm: 'l2' })).toBeCloseTo(Math.sqrt(0.5 * 0.05 ** 2 + 0.25 * 0.49), 15);
    }
  });

  it('a confidence exactly on an edge: (lo, hi] for guo, [lo, hi) for torchmetrics and netcal', () => {
    const q = f64([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]]);
    const yy = i64([0, 1, 0]);
    const counts = (convention: Conv): number[] => calibration.report(q, yy, { bins: 4, convention }).bins.map((b) => b.count);
    expect(counts('guo')).toEqual([0, 2, 0, 1]);
    expect(counts('netcal')).toEqual([0, 0, 2, 1]);
    expect(counts('torchmetrics')).toEqual([0, 0, 2, 1, 0]);
  });

  it('confidence exactly 1.0: last bin (guo, netcal) or the extra bin [1, 1] (torchmetrics)', () => {
    const q = f64([[1, 0, 0], [0, 1, 0], [0.2, 0.3, 0.5]]);
    const yy = i64([0, 2, 2]);
    const guo = calibration.report(q, yy, { bins: 10 });
    expect(guo.bins).toHaveLength(10);
    expect(guo.bins[9]).toMatchObject({ count: 2, confidence: 1, accuracy: 0.5 });
    const nc = calibration.report(q, yy, { bins: 10, convention: 'netcal' });
    expect(nc.bins[9]).toMatchObject({ count: 2, confidence: 1, accuracy: 0.5 });
    const tm = calibration.report(q, yy, { bins: 10, convention: 'torchmetrics' });
    expect(tm.bins).toHaveLength(11);
    expect(tm.bins[10]).toEqual({ lo: 1, hi: 1, count: 2, confidence: 1, accuracy: 0.5 });
    expect(tm.bins[9].count).toBe(0);
    expect(tm.notes.join(' ')).toMatch(/extra \(B\+1\)-th bin/);
    for (const rep of [guo, nc, tm]) expect(rep.ece).toBeCloseTo((2 / 3) * 0.5 + (1 / 3) * 0.5, 15);
  });

  it('argmax ties go to the lowest class index', () => {
    const q = f64([[0.4, 0.4, 0.2], [0.1, 0.45, 0.45], [1 / 3, 1 / 3, 1 / 3]]);
    expect(calibration.report(q, i64([0, 1, 0])).accuracy).toBe(1);
    expect(calibration.report(q, i64([1, 2, 2])).accuracy).toBe(0);
  });

  it('Brier (multiclass, in [0, 2]), NLL and accuracy', () => {
    const rep = calibration.report(p, y, { bins: 5 });
    // rows: (0.4^2 + 0.4^2), (0.7^2 + 0.7^2), (0.5^2 + 0.5^2), 0
    expect(rep.brier).toBeCloseTo((0.32 + 0.98 + 0.5 + 0) / 4, 15);
    expect(rep.nll).toBeCloseTo(-(Math.log(0.6) + Math.log(0.3) + Math.log(0.5) + Math.log(1)) / 4, 15);
    expect(rep.accuracy).toBe(0.5);
    const worst = calibration.report(f64([[0, 1], [1, 0]]), i64([0, 1]));
    expect(worst.brier).toBe(2);
    expect(Number.isFinite(worst.nll)).toBe(true);
    expect(worst.notes.join(' ')).toMatch(/2 sample\(s\) gave the true class probability 0/);
  });

  it('NLL from logits equals crossEntropy with no smoothing', () => {
    const z = f64([[2, 0, -1], [0.5, 0.1, 3], [0, 0, 0]]);
    const rep = calibration.report(z, i64([0, 1, 2]), { from: 'logits' });
    const lse = (row: number[]): number => Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
    const expected = ((lse([2, 0, -1]) - 2) + (lse([0.5, 0.1, 3]) - 0.1) + (lse([0, 0, 0]) - 0)) / 3;
    expect(rep.nll).toBeCloseTo(expected, 14);
  });

  it('binary inputs get the label-smoothing note; K > 2 do not', () => {
    expect(calibration.report(p, y).notes.join(' ')).toMatch(/Binary task \(K = 2\): label smoothing has little effect/);
    expect(calibration.report(f64([[0.5, 0.3, 0.2]]), i64([0])).notes.join(' ')).not.toMatch(/Binary task/);
  });

  it('equal-mass bins: sorted parts split by numpy.array_split, edges at midpoints', () => {
    // conf sorted: 0.5 0.6 0.7 0.8 0.9 | 3 bins: parts [0.5,0.6] [0.7,0.8] [0.9]
    const q = f64([[0.9, 0.1], [0.5, 0.5], [0.7, 0.3], [0.6, 0.4], [0.8, 0.2]]);
    const yy = i64([0, 0, 1, 0, 0]);
    // bins (.., 0.65]: {0.5 ok, 0.6 ok} acc 1 conf .55; (0.65, 0.85]: {0.7 wrong, 0.8 ok} acc .5 conf .75; (0.85, 1]: {0.9 ok}
    const expected = (2 / 5) * 0.45 + (2 / 5) * 0.25 + (1 / 5) * 0.1;
    expect(calibration.ece(q, yy, { bins: 3, strategy: 'quantile' })).toBeCloseTo(expected, 15);
    expect(calibration.report(q, yy, { bins: 3 }).adaptiveEce).toBeCloseTo(expected, 15);
  });

  it('debiased RMSCE (Kumar et al.) is below the plug-in estimate', () => {
    const r = rng(3);
    const { logits, labels } = randomLogits(r, 300, 4, 1);
    const probs = f64(softmaxRows(logits));
    const plug = calibration.ece(probs, i64(labels), { norm: 'l2' });
    const deb = calibration.ece(probs, i64(labels), { norm: 'l2', debias: true });
    expect(deb).toBeLessThan(plug);
    expect(deb).toBeGreaterThanOrEqual(0);
  });

  it('does not modify the caller\'s arrays', () => {
    const data = new Float64Array([0.6, 0.4, 0.3, 0.7]);
    const copy = data.slice();
    calibration.report(tensor(data, [2, 2]), i64([0, 1]));
    expect(data).toEqual(copy);
  });
});

describe.runIf(probe.ok)('calibration: matches the reference implementations (/usr/bin/python3)', () => {
  const cases = buildCases();
  let results: RefResult[] = [];
  beforeAll(() => {
    const script = path.join(__dirname, 'calibration-reference.py');
    const out = spawnSync(ORACLE_PYTHON, [script], { input: JSON.stringify({ cases }), encoding: 'utf8', maxBuffer: 256 << 20, timeout: 300_000 });
    if (out.status !== 0) throw new Error(`reference failed: ${out.stderr}`);
    results = JSON.parse(out.stdout).results;
  });

  const close = (actual: number | null, expected: number, tol: number, what: string): void => {
    expect(actual, what).not.toBeNull();
    expect(Math.abs((actual as number) - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tol);
  };

  it.each(buildCases().map((c, i) => [c.name, i] as const))('%s', (_name, i) => {
    const c = cases[i];
    const ref = results[i];
    const rows = (c.probs ?? c.logits)!;
    const scores = c.dtype === 'float32' ? f32(rows) : f64(rows);
    const labels = i64(c.labels);
    const from = c.probs ? 'probs' : 'logits';
    const opts = { from, bins: c.bins, convention: c.convention, ...(c.temperature ? { temperature: c.temperature } : {}) } as const;
    const rep = calibration.report(scores, labels, opts);
    const tol = c.dtype === 'float32' ? 2e-6 : 1e-12;
    expect(rep.bins.map((b) => b.count), 'uniform bin counts').toEqual(ref.counts);
    close(rep.accuracy, ref.accuracy, 0, 'accuracy');
    close(rep.ece, ref.ece, 1e-12, 'ece');
    close(rep.mce, ref.mce, 1e-12, 'mce');
    close(rep.rmsce, ref.rmsce, 1e-12, 'rmsce');
    close(rep.adaptiveEce, ref.adaptiveEce, 1e-12, 'adaptiveEce');
    close(rep.classwiseEce, ref.classwiseEce, 1e-12, 'classwiseEce');
    close(rep.brier, ref.brier, 1e-12, 'brier');
    close(rep.nll, ref.nll, tol, 'nll');
    if (c.probs) {
      close(calibration.ece(scores, labels, { bins: c.bins, convention: c.convention, norm: 'l2', debias: true }), ref.rmsceDebiased, 1e-12, 'debiased rmsce');
      close(calibration.ece(scores, labels, { bins: c.bins, convention: c.convention, strategy: 'quantile' }), ref.adaptiveEce, 1e-12, 'quantile ece');
    }
    if (c.fit) {
      const fit = calibration.fitTemperature(scores, labels);
      close(fit.temperature, ref.fit!.temperature, 1e-4 * ref.fit!.temperature, 'temperature');
      close(fit.nllBefore, ref.fit!.nllBefore, 1e-10, 'nllBefore');
      close(fit.nllAfter, ref.fit!.nllAfter, 1e-10, 'nllAfter');
      expect(fit.nllAfter).toBeLessThanOrEqual(fit.nllBefore);
      expect(fit.atBound).toBe(false);
      // our optimum is at least as good as the gpleiss setting (LBFGS lr=0.01, 50 iterations from 1.5)
      const at = (t: number): number => calibration.report(scores, labels, { from: 'logits', temperature: t }).nll;
      expect(at(fit.temperature)).toBeLessThanOrEqual(at(ref.fit!.gpleiss) + 1e-12);
      close(fit.eceAfter, calibration.report(scores, labels, { from: 'logits', temperature: fit.temperature }).ece, 0, 'eceAfter');
    }
  });
});

describe('calibration: temperature scaling edge cases', () => {
  it('logits that separate the data perfectly: T goes to the lower bound and says so', () => {
    const fit = calibration.fitTemperature(f64([[5, 0], [0, 5]]), i64([0, 1]));
    expect(fit.atBound).toBe(true);
    expect(fit.temperature).toBeLessThanOrEqual(1e-5);
  });

  it('a scaled copy of the logits gives a scaled temperature', () => {
    const { logits, labels } = randomLogits(rng(11), 200, 5, 2);
    const a = calibration.fitTemperature(f64(logits), i64(labels));
    const b = calibration.fitTemperature(f64(logits.map((r) => r.map((v) => 3 * v))), i64(labels));
    expect(b.temperature / a.temperature).toBeCloseTo(3, 9);
    expect(b.nllAfter).toBeCloseTo(a.nllAfter, 12);
  });
});
