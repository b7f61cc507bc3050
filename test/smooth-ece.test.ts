/**
 * SmoothECE against test/smooth_ece_reference.py (numpy, relplot 1.0.3's smECE with its
 * defaults): value within 1e-9 and the same bandwidth, on random logits at several N, well
 * and badly calibrated, and the edge cases (all correct, all wrong, N = 1, ties, confidence
 * exactly 1). Also: the streamed grids (Accumulator) give the one-pass value, and report()
 * carries the same numbers.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { calibration, tensor } from '../lib/index';
import { GRID_SIZES, SmoothEceGrids, gridSize, roundHalfEven, smoothEce } from '../lib/calibration/smooth-ece';
import { rng } from './helpers/rng';

const PY = '/usr/bin/python3';
const probe = spawnSync(PY, ['-c', 'import numpy'], { encoding: 'utf8' });

interface LogitCase {
  name: string;
  logits: number[][];
  labels: number[];
}
interface PairCase {
  name: string;
  f: number[];
  y: number[];
}

/** Logits of a K-class model whose calibration `scale` controls (1: calibrated by construction). */
function logitCase(name: string, n: number, k: number, scale: number, seed: number): LogitCase {
  const r = rng(seed);
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const logits: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const z = Array.from({ length: k }, () => 2 * normal());
    // Draw the label from softmax(z) (calibrated), then report z * scale.
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    let u = r() * s;
    let label = k - 1;
    for (let j = 0; j < k; j++) {
      u -= e[j];
      if (u < 0) {
        label = j;
        break;
      }
    }
    logits.push(z.map((v) => v * scale));
    labels.push(label);
  }
  return { name, logits, labels };
}

const logitCases: LogitCase[] = [
  logitCase('N=50 calibrated', 50, 10, 1, 1),
  logitCase('N=300 over-confident x3', 300, 10, 3, 2),
  logitCase('N=1000 calibrated', 1000, 10, 1, 3),
  logitCase('N=1000 under-confident x0.3', 1000, 10, 0.3, 4),
  logitCase('N=5000 K=3 over-confident x2', 5000, 3, 2, 5),
  logitCase('N=20000 calibrated (small bandwidth)', 20000, 10, 1, 6),
  logitCase('N=2 binary', 2, 2, 1, 7),
];

function pairs(name: string, f: number[], y: number[]): PairCase {
  return { name, f, y };
}
const r = rng(99);
const pairCases: PairCase[] = [
  pairs('N=1 correct', [0.7], [1]),
  pairs('N=1 wrong', [0.3], [0]),
  pairs('all correct', Array.from({ length: 200 }, () => 0.5 + 0.5 * r()), Array(200).fill(1)),
  pairs('all wrong', Array.from({ length: 200 }, () => 0.5 + 0.5 * r()), Array(200).fill(0)),
  pairs('all correct at confidence 1', Array(50).fill(1), Array(50).fill(1)),
  pairs('ties: five distinct confidences', Array.from({ length: 500 }, (_, i) => [0.2, 0.4, 0.5, 0.8, 1][i % 5]), Array.from({ length: 500 }, () => (r() < 0.6 ? 1 : 0))),
  pairs('confidence 0 and 1 only', Array.from({ length: 100 }, (_, i) => i % 2), Array.from({ length: 100 }, (_, i) => (i % 3 === 0 ? 1 : 0))),
  pairs('perfectly calibrated N=10000', ((): number[] => Array.from({ length: 10000 }, () => r()))(), []),
];
// y for the last case: Bernoulli(f).
{
  const c = pairCases[pairCases.length - 1];
  c.y = c.f.map((f) => (r() < f ? 1 : 0));
}

interface Ref {
  value: number;
  bandwidth: number;
}

describe('relplot helpers', () => {
  it("rounds halves to even like Python's round()", () => {
    expect([0.5, 1.5, 2.5, 2.4999, 2.5001, 3].map(roundHalfEven)).toEqual([0, 2, 2, 2, 3, 3]);
  });
  it('uses ten grid sizes, 1001 for bandwidths above 10/1024', () => {
    expect(GRID_SIZES).toEqual([1001, 1025, 1139, 1281, 1464, 1707, 2049, 2561, 3414, 5121]);
    expect(gridSize(11 / 1024)).toBe(1001);
    expect(gridSize(2 / 1024)).toBe(5121);
  });
  it('rejects bad input with typed, coded errors', () => {
    expect(() => smoothEce('x' as never, [1])).toThrow(expect.objectContaining({ code: 'ERR_SMOOTHCE_INVALID_ARG_TYPE' }));
    expect(() => smoothEce([0.5], [1, 0])).toThrow(expect.objectContaining({ code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE' }));
    expect(() => smoothEce([1.5], [1])).toThrow(RangeError);
    expect(() => smoothEce([], [])).toThrow(RangeError);
  });
});

describe.runIf(probe.status === 0)('smoothEce equals relplot 1.0.3 (reference in /usr/bin/python3 + numpy)', () => {
  let refLogits: Ref[] = [];
  let refPairs: Ref[] = [];
  beforeAll(() => {
    const script = path.join(__dirname, 'smooth_ece_reference.py');
    const run = (cases: unknown[]): Ref[] => {
      const out = spawnSync(PY, [script], { input: JSON.stringify({ cases }), encoding: 'utf8', maxBuffer: 256 << 20, timeout: 300_000 });
      if (out.status !== 0) throw new Error(`reference failed: ${out.stderr}`);
      return JSON.parse(out.stdout);
    };
    refLogits = run(logitCases);
    refPairs = run(pairCases);
  }, 300_000);

  it.each(logitCases.map((c, i) => [c.name, i] as const))('report(logits): %s', (_name, i) => {
    const c = logitCases[i];
    const n = c.labels.length;
    const k = c.logits[0].length;
    const rep = calibration.report(tensor(Float64Array.from(c.logits.flat()), [n, k]), tensor(Int32Array.from(c.labels), [n]), { from: 'logits' });
    expect(rep.smoothEceBandwidth).toBe(refLogits[i].bandwidth);
    expect(Math.abs(rep.smoothEce! - refLogits[i].value)).toBeLessThanOrEqual(1e-9);
    // The values are not degenerate: the over-confident cases are clearly miscalibrated.
    if (c.name.includes('over')) expect(rep.smoothEce!).toBeGreaterThan(0.05);
  });

  it.each(pairCases.map((c, i) => [c.name, i] as const))('smoothEce(f, y): %s', (_name, i) => {
    const c = pairCases[i];
    const got = smoothEce(c.f, c.y);
    expect(got.bandwidth).toBe(refPairs[i].bandwidth);
    expect(Math.abs(got.value - refPairs[i].value)).toBeLessThanOrEqual(1e-9);
  });

  it('streamed grids (any batch split, merged) give the one-pass value and bandwidth', () => {
    const c = pairCases[pairCases.length - 1];
    const a = new SmoothEceGrids().add(c.f, c.y, 0, 3333);
    const b = new SmoothEceGrids().add(c.f, c.y, 3333, 7000).add(c.f, c.y, 7000, c.f.length);
    const merged = SmoothEceGrids.fromJSON(JSON.parse(JSON.stringify(a.merge(b)))).result()!;
    expect(merged.bandwidth).toBe(refPairs[pairCases.length - 1].bandwidth);
    expect(Math.abs(merged.value - refPairs[pairCases.length - 1].value)).toBeLessThanOrEqual(1e-9);
  });

  it('the Accumulator streams it exactly', () => {
    const c = logitCases[3];
    const n = c.labels.length;
    const k = c.logits[0].length;
    const z = Float64Array.from(c.logits.flat());
    const y = Int32Array.from(c.labels);
    const acc = new calibration.Accumulator({ from: 'logits' });
    acc.update(tensor(z.slice(0, 400 * k), [400, k]), tensor(y.slice(0, 400), [400]));
    acc.update(tensor(z.slice(400 * k), [n - 400, k]), tensor(y.slice(400), [n - 400]));
    const rep = calibration.Accumulator.fromJSON(JSON.stringify(acc)).report();
    expect(rep.smoothEceBandwidth).toBe(refLogits[3].bandwidth);
    expect(Math.abs(rep.smoothEce! - refLogits[3].value)).toBeLessThanOrEqual(1e-9);
  });
});

describe('Accumulator SmoothECE grids: option and JSON', () => {
  const n = 300;
  const k = 4;
  const r2 = rng(5);
  const z = Float64Array.from({ length: n * k }, () => 3 * r2());
  const y = Int32Array.from({ length: n }, () => Math.floor(r2() * k));
  it('smoothEce: false keeps no grids (NaN, a note), and refuses to merge with one that keeps them', () => {
    const off = new calibration.Accumulator({ from: 'logits', smoothEce: false }).update(tensor(z, [n, k]), tensor(y, [n]));
    const rep = off.report();
    expect(rep.smoothEce).toBeNaN();
    expect(rep.notes.join(' ')).toMatch(/keeps no SmoothECE grids/);
    expect(JSON.stringify(off)).not.toContain('"smooth"');
    expect(calibration.Accumulator.fromJSON(JSON.stringify(off)).options.smoothEce).toBe(false);
    const on = new calibration.Accumulator({ from: 'logits' }).update(tensor(z, [n, k]), tensor(y, [n]));
    expect(() => on.merge(off)).toThrow(expect.objectContaining({ code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE' }));
    expect(() => new calibration.Accumulator({ smoothEce: 'yes' as never })).toThrow(expect.objectContaining({ code: 'ERR_SMOOTHCE_INVALID_ARG_TYPE' }));
  });
  it('round-trips the grids bit for bit through JSON and rejects tampered grids', () => {
    const on = new calibration.Accumulator({ from: 'logits' }).update(tensor(z, [n, k]), tensor(y, [n]));
    const state = JSON.parse(JSON.stringify(on));
    expect(calibration.Accumulator.fromJSON(state).report().smoothEce).toBe(on.report().smoothEce);
    const bad = structuredClone(state);
    bad.smooth.residual[0] = bad.smooth.residual[0].slice(8);
    expect(() => calibration.Accumulator.fromJSON(bad)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE' }));
    const wrongCount = structuredClone(state);
    wrongCount.smooth.count = n + 1;
    expect(() => calibration.Accumulator.fromJSON(wrongCount)).toThrow(RangeError);
  });
});
