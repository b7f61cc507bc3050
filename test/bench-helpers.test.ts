/**
 * The addon's benchmark helpers (memoryFloor, computeFloor) and the paired thread-scaling
 * case of bench/node_case.js: they feed the figures in bench/RESULTS.md, so they must
 * compute what they claim and work at any thread count.
 */
// The floors are in the test addon only: loaded as THE addon, before anything else loads one.
import { hooks } from './helpers/testing-addon';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { native } from '../lib/core/native';

const before = native().getNumThreads();
afterAll(() => native().setNumThreads(before));

describe('benchmark helpers', () => {
  it('memoryFloor reads every element (sum) and writes half of each with out', () => {
    for (const T of [Float32Array, Float64Array]) {
      const n = (1 << 19) + 37; // above the size where threads start, with a ragged tail
      const x = new T(n);
      for (let i = 0; i < n; i++) x[i] = (i % 101) - 50.5;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += x[i];
      for (const t of [1, 2]) {
        native().setNumThreads(t);
        expect(hooks().memoryFloor(x)).toBeCloseTo(sum, 3);
        const y = new T(n);
        expect(hooks().memoryFloor(x, y)).toBeUndefined();
        expect(y[0]).toBe(x[0] / 2);
        expect(y[n - 1]).toBe(x[n - 1] / 2);
        expect(y[n >> 1]).toBe(x[n >> 1] / 2);
      }
    }
    expect(() => hooks().memoryFloor([1, 2] as unknown as Float32Array)).toThrow(TypeError);
    expect(() => hooks().memoryFloor(new Float32Array(4), new Float32Array(3))).toThrow(RangeError);
    expect(() => hooks().memoryFloor(new Float32Array(4), new Float64Array(4))).toThrow(RangeError);
  });

  it('computeFloor does the work it is asked for, the same on 1 and 2 threads, and validates units', () => {
    native().setNumThreads(1);
    const one = hooks().computeFloor(64);
    native().setNumThreads(2);
    expect(hooks().computeFloor(64)).toBe(one); // same pieces, summed in the same order
    expect(hooks().computeFloor(65)).not.toBe(one);
    expect(Number.isFinite(one) && one > 0).toBe(true);
    expect(() => hooks().computeFloor('8' as unknown as number)).toThrow(TypeError);
    expect(() => hooks().computeFloor(0)).toThrow(/units must be an integer from 1 to 1e7, got 0/);
    expect(() => hooks().computeFloor(2.5)).toThrow(RangeError);
    expect(() => hooks().computeFloor(NaN)).toThrow(RangeError);
  });

  it('bench/node_case.js scaling times every metric at 1 and 2 threads', () => {
    const script = path.resolve(__dirname, '..', 'bench', 'node_case.js');
    const cfg = { kind: 'scaling', n: 512, c: 1024, reps: 2, eps: 0.1, seed: 3, threads: 1 };
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', script, JSON.stringify(cfg)], { encoding: 'utf8' }).trim()) as {
      scaling: Record<string, { t1: number[]; t2: number[] }>;
      computeUnits: number;
    };
    expect(Object.keys(out.scaling).sort()).toEqual(['compute', 'floorRead', 'floorReadWrite', 'fwd', 'fwdGrad']);
    for (const { t1, t2 } of Object.values(out.scaling)) {
      expect(t1).toHaveLength(2);
      expect(t2).toHaveLength(2);
      for (const s of [...t1, ...t2]) expect(s > 0 && s < 10).toBe(true);
    }
    expect(out.computeUnits).toBeGreaterThanOrEqual(16);
  });

  it.each(['fused', 'aten'])('bench/node_case.js first-loop times the first 20 gradient calls of a fresh process (%s)', (impl) => {
    const script = path.resolve(__dirname, '..', 'bench', 'node_case.js');
    // 1024×512 float32: a 2 MiB gradient, so results are large (huge-page or, past the cap, V8-owned).
    const cfg = { kind: 'first-loop', impl, n: 1024, c: 512, reps: 2, eps: 0.1, seed: 3, threads: 1 };
    // Early release off: every result stays until the loop ends (with it, dropped ones are recycled).
    const env = { ...process.env, SMOOTHCE_EARLY_RELEASE: '0' };
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', script, JSON.stringify(cfg)], { encoding: 'utf8', env }).trim()) as {
      fwd: number[];
      fwdGrad: number[];
      first: number[];
      peakFwdMB?: number;
      peakGradMB: number;
    };
    expect(out.fwd).toEqual([]);
    expect(out.peakFwdMB).toBeUndefined();
    expect(out.fwdGrad).toHaveLength(20);
    expect(out.first).toEqual([out.fwdGrad[0]]);
    for (const s of out.fwdGrad) expect(s > 0 && s < 10).toBe(true);
    // 20 gradients of 2 MiB were made and none could be freed by a finalizer; all 40 MiB fit
    // under the default cap (64 MiB), so all stay resident (the RSS is the loop's, not one call's).
    expect(out.peakGradMB).toBeGreaterThan(35);
  });

  it('bench/node_case.js async-first times how long each of the first async calls blocks the JS thread', () => {
    const script = path.resolve(__dirname, '..', 'bench', 'node_case.js');
    const cfg = { kind: 'async-first', impl: 'fused', n: 256, c: 1000, reps: 2, eps: 0.1, seed: 3, threads: 1 };
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', script, JSON.stringify(cfg)], { encoding: 'utf8' }).trim()) as {
      blocked: number[];
      firstBlocked: number[];
      lag: number[];
    };
    expect(out.blocked).toHaveLength(5);
    expect(out.firstBlocked).toEqual([out.blocked[0]]);
    for (const s of out.blocked) expect(s > 0 && s < 10).toBe(true);
    expect(out.lag).toHaveLength(1);
    expect(out.lag[0] >= 0 && out.lag[0] < 10).toBe(true);
  });
});
