/**
 * calibration.fitCalibrator and Calibrator: vector and matrix scaling reach the optimum of
 * their NLL (zero gradient, and the value an independent optimiser, scipy BFGS, finds);
 * temperature is fitTemperature's; binary isotonic equals scikit-learn; histogram binning
 * follows its definition; JSON round trips and the async forms give the same bits; bad
 * input gets coded errors.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { calibration, tensor, type Tensor } from '../lib/index';
import { rng } from './helpers/rng';
import { softmaxRows } from './helpers/softmax';
import { thrown } from './helpers/thrown';

const { Calibrator, fitCalibrator, fitCalibratorAsync } = calibration;
const PYTHON = process.env.SMOOTHCE_ORACLE_PYTHON || '/usr/bin/python3';
const REFERENCE = path.join(__dirname, 'recalibrators-reference.py');

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Over-confident, class-biased logits with 30% label noise: (N, K) float64 logits and int32 labels. */
function data(seed: number, n: number, k: number): { z: Float64Array; y: Int32Array; logits: Tensor; labels: Tensor } {
  const r = rng(seed);
  const z = new Float64Array(n * k);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * k);
    y[i] = r() < 0.7 ? c : Math.floor(r() * k);
    for (let j = 0; j < k; j++) z[i * k + j] = 3 * (gauss(r) + (j === c ? 1.5 : 0)) + 0.5 * j;
  }
  return { z, y, logits: tensor(z, [n, k]), labels: tensor(y, [n]) };
}

const rows = (a: Float64Array, k: number): number[][] => Array.from({ length: a.length / k }, (_, i) => Array.from(a.subarray(i * k, i * k + k)));

function reference(cases: object[]): Record<string, number | number[]>[] {
  const r = spawnSync(PYTHON, [REFERENCE], { input: JSON.stringify({ cases }), encoding: 'utf8', maxBuffer: 1 << 28, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${PYTHON} ${REFERENCE} failed: ${r.error?.message ?? r.stderr}`);
  return JSON.parse(r.stdout).results;
}

const hasReference = spawnSync(PYTHON, ['-c', 'import scipy, sklearn'], { encoding: 'utf8' }).status === 0;

function nllOf(p: Float64Array, y: Int32Array, k: number): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s -= Math.log(p[i * k + y[i]]);
  return s / y.length;
}

const bitsEqual = (a: Float64Array, b: Float64Array): boolean => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe.skipIf(!hasReference)('vector and matrix scaling reach the optimum (scipy BFGS reference)', () => {
  const K = 4;
  const fit = data(11, 600, K);
  const held = data(12, 500, K);
  const settings = [
    { method: 'vector' as const },
    { method: 'matrix' as const },
    { method: 'matrix' as const, odir: { lambda: 0.5, mu: 0.2 } },
    { method: 'matrix' as const, solver: 'lbfgs' as const },
    { method: 'vector' as const, solver: 'lbfgs' as const },
  ];
  const refs = reference(
    settings.map((s) => ({
      kind: 'scaling',
      method: s.method,
      z: rows(fit.z, K),
      y: Array.from(fit.y),
      lambda: s.odir?.lambda ?? 0,
      mu: s.odir?.mu ?? 0,
      held: rows(held.z, K),
      heldY: Array.from(held.y),
    })),
  );
  settings.forEach((s, i) => {
    it(`${JSON.stringify(s)}: zero gradient, the reference's optimum, the same held-out NLL`, () => {
      const c = fitCalibrator(fit.logits, fit.labels, { ...s, from: 'logits' });
      const ref = refs[i];
      expect(c.fit.converged).toBe(true);
      expect(c.fit.gradientNorm!).toBeLessThanOrEqual(1e-9);
      expect(ref.gradientNorm as number).toBeLessThan(1e-7); // the reference really converged
      const penalised = s.odir !== undefined;
      if (!penalised) expect(Math.abs(c.fit.nllAfter - (ref.value as number)) / (ref.value as number)).toBeLessThan(1e-9);
      expect(c.fit.nllAfter).toBeLessThan(c.fit.nllBefore);
      const heldNll = nllOf(c.apply(held.logits).data, held.y, K);
      expect(Math.abs(heldNll - (ref.heldNll as number)) / (ref.heldNll as number)).toBeLessThan(1e-6);
    });
  });
});

describe('scaling fits, exact properties', () => {
  it('vector scaling from probabilities works on log(p), and reports the NLL apply gives', () => {
    const { z, logits, labels } = data(3, 300, 3);
    const p = softmaxRows(z, 300, 3);
    const fromP = fitCalibrator(tensor(p, [300, 3]), labels, { method: 'vector', from: 'probs' });
    const fromZ = fitCalibrator(logits, labels, { method: 'vector', from: 'logits' });
    // w ⊙ log p = w ⊙ z − w·logsumexp(z) is not z shifted per row, so the two fits differ; each reaches its own optimum.
    expect(fromP.fit.converged && fromZ.fit.converged).toBe(true);
    const out = fromP.apply(tensor(p, [300, 3])).data;
    expect(Math.abs(nllOf(out, labels.data as Int32Array, 3) - fromP.fit.nllAfter)).toBeLessThan(1e-12);
  });

  it('temperature: the temperature of calibration.fitTemperature, and softmax(z / T)', () => {
    const { z, logits, labels } = data(5, 400, 5);
    const c = fitCalibrator(logits, labels, { method: 'temperature', from: 'logits' });
    const t = calibration.fitTemperature(logits, labels).temperature;
    expect((c.toJSON().params as { temperature: number }).temperature).toBe(t);
    const zt = z.map((v) => v / t);
    const expected = softmaxRows(zt, 400, 5);
    const got = c.apply(logits).data;
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - expected[i])).toBeLessThan(1e-15);
  });

  it('matrix scaling on separable data has no minimum: NLL driven to ~0 with large weights; ODIR keeps it finite', () => {
    const z = tensor(new Float64Array([2, 0, 0, 2, 3, 1, 1, 3]), [4, 2]);
    const y = tensor(new Int32Array([0, 1, 0, 1]), [4]);
    const plain = fitCalibrator(z, y, { method: 'matrix', from: 'logits' });
    expect(plain.fit.nllAfter).toBeLessThan(1e-9);
    expect(Math.max(...(plain.toJSON().params as { W: number[][] }).W.flat().map(Math.abs))).toBeGreaterThan(5);
    // Zero logits, one class: only the intercepts separate, and ODIR penalises them (it leaves W's diagonal free).
    const zero = tensor(new Float64Array(8), [4, 2]);
    const ones = tensor(new Int32Array(4), [4]);
    expect(fitCalibrator(zero, ones, { method: 'matrix', from: 'logits' }).fit.nllAfter).toBeLessThan(1e-9);
    const odir = fitCalibrator(zero, ones, { method: 'matrix', from: 'logits', odir: { lambda: 1, mu: 1 } });
    expect(odir.fit.converged).toBe(true);
    expect(odir.fit.nllAfter).toBeGreaterThan(1e-3);
    expect(odir.fit.nllAfter).toBeLessThan(Math.log(2));
  });
});

describe.skipIf(!hasReference)('binary isotonic equals scikit-learn IsotonicRegression(out_of_bounds="clip")', () => {
  it('on random scores with ties, near-ties within 1e-15, held-out points outside the range and at thresholds', () => {
    const r = rng(21);
    const n = 500;
    const p1 = new Float64Array(n);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const u = 0.05 + 0.9 * r();
      p1[i] = i % 3 === 0 ? Math.round(u * 20) / 20 : i % 7 === 0 ? 0.5 + (r() < 0.5 ? 2e-16 : 0) : u;
      y[i] = r() < u * u ? 1 : 0;
    }
    const probs = new Float64Array(2 * n);
    for (let i = 0; i < n; i++) {
      probs[2 * i] = 1 - p1[i];
      probs[2 * i + 1] = p1[i];
    }
    // The map is on p(class 1) as the calibrator reads it back from the row: 1 − (1 − p1) may differ from p1 in the last bit.
    const x = Float64Array.from({ length: n }, (_, i) => probs[2 * i + 1]);
    const c = fitCalibrator(tensor(probs, [n, 2]), tensor(y, [n]), { method: 'isotonic' });
    const t: number[] = [0, 0.01, 1, 0.999];
    for (let i = 0; i < 300; i++) t.push(r());
    for (let i = 0; i < 50; i++) t.push(x[Math.floor(r() * n)]);
    const ref = reference([{ kind: 'isotonic', x: Array.from(x), y: Array.from(y), t }])[0];
    const rowsT = new Float64Array(2 * t.length);
    t.forEach((v, i) => {
      rowsT[2 * i] = 1 - v;
      rowsT[2 * i + 1] = v;
    });
    const out = c.apply(tensor(rowsT, [t.length, 2]), { tolerance: 1e-9 }).data;
    const got = t.map((_, i) => out[2 * i + 1]);
    expect(got).toEqual(ref.predict);
    const maps = (c.toJSON().params as { maps: { x: number[] }[] }).maps;
    expect(maps[0].x).toEqual(ref.thresholds);
    for (let i = 0; i < t.length; i++) expect(out[2 * i]).toBe(1 - got[i]);
  });
});

describe('isotonic and histogram, by definition', () => {
  it('isotonic K = 3: per-class PAV maps, renormalised', () => {
    const probs = tensor(new Float64Array([0.7, 0.2, 0.1, 0.6, 0.3, 0.1, 0.2, 0.5, 0.3, 0.1, 0.1, 0.8]), [4, 3]);
    const c = fitCalibrator(probs, tensor(new Int32Array([1, 0, 1, 2]), [4]), { method: 'isotonic' });
    const maps = (c.toJSON().params as { maps: { x: number[]; y: number[] }[] }).maps;
    // class 0: x 0.1 0.2 0.6 0.7 with y 0 0 1 0 -> PAV pools the last two to 0.5.
    expect(maps[0]).toEqual({ x: [0.1, 0.2, 0.6, 0.7], y: [0, 0, 0.5, 0.5] });
    const out = c.apply(probs).data;
    for (let i = 0; i < 4; i++) expect(Math.abs(out[3 * i] + out[3 * i + 1] + out[3 * i + 2] - 1)).toBeLessThan(1e-15);
  });

  it('histogram: equal-mass bins (array_split sizes, midpoint edges, (lo, hi]), bin frequencies', () => {
    // p1 sorted: 0.1 0.2 0.3 0.4 0.5 0.6 0.7; 3 bins -> parts of 3, 2, 2 -> edges 0.35, 0.55.
    const p1 = [0.5, 0.1, 0.7, 0.3, 0.2, 0.6, 0.4];
    const y = [1, 0, 1, 0, 1, 0, 1];
    const probs = tensor(Float64Array.from(p1.flatMap((v) => [1 - v, v])), [7, 2]);
    const c = fitCalibrator(probs, tensor(Int32Array.from(y), [7]), { method: 'histogram', bins: 3 });
    const map = (c.toJSON().params as { maps: { edges: number[]; values: number[] }[] }).maps[0];
    expect(map.edges).toEqual([(0.3 + 0.4) / 2, (0.5 + 0.6) / 2]);
    expect(map.values).toEqual([1 / 3, 1, 1 / 2]); // y of 0.1 0.2 0.3 | 0.4 0.5 | 0.6 0.7 = 0 1 0 | 1 1 | 0 1
    const t = [0, map.edges[0], 0.36, 1];
    const out = c.apply(tensor(Float64Array.from(t.flatMap((v) => [1 - v, v])), [4, 2])).data;
    expect([out[1], out[3], out[5], out[7]]).toEqual([1 / 3, 1 / 3, 1, 1 / 2]);
    expect(c.toJSON().settings).toEqual({ bins: 3 });
  });
});

const METHODS = ['temperature', 'vector', 'matrix', 'isotonic', 'histogram'] as const;

describe('JSON round trip and async forms give the same bits', () => {
  for (const k of [2, 5]) {
    for (const from of ['logits', 'probs'] as const) {
      for (const method of METHODS) {
        it(`${method}, K = ${k}, from ${from}`, async () => {
          const d = data(100 + k, 300, k);
          const scores = from === 'logits' ? d.logits : tensor(softmaxRows(d.z, 300, k), [300, k]);
          const opts = method === 'matrix' ? { method, from, odir: { lambda: 0.01, mu: 0.01 } } : { method, from };
          const c = fitCalibrator(scores, d.labels, opts);
          const text = JSON.stringify(c);
          const back = Calibrator.fromJSON(JSON.parse(text));
          expect(JSON.stringify(back)).toBe(text);
          expect(Calibrator.fromJSON(text).toJSON()).toEqual(c.toJSON());
          const held = data(200 + k, 257, k);
          const hs = from === 'logits' ? held.logits : tensor(softmaxRows(held.z, 257, k), [257, k]);
          const out = c.apply(hs);
          expect(out.shape).toEqual([257, k]);
          expect(out.dtype).toBe('float64');
          expect(bitsEqual(back.apply(hs).data, out.data)).toBe(true);
          expect(bitsEqual((await c.applyAsync(hs)).data, out.data)).toBe(true);
          const a = await fitCalibratorAsync(scores, d.labels, opts);
          expect(JSON.stringify(a)).toBe(text);
          const s = await Calibrator.fitAsync(scores, d.labels, opts);
          expect(JSON.stringify(s)).toBe(text);
        });
      }
    }
  }

  it('float32 logits: temperature equals fitTemperature on the float32 tensor', () => {
    const d = data(7, 200, 3);
    const z32 = tensor(Float32Array.from(d.z), [200, 3]);
    const c = fitCalibrator(z32, d.labels, { method: 'temperature', from: 'logits' });
    expect((c.toJSON().params as { temperature: number }).temperature).toBe(calibration.fitTemperature(z32, d.labels).temperature);
  });
});

describe('async forms snapshot their inputs', () => {
  it('applyAsync and fitCalibratorAsync: the caller may overwrite or transfer the buffers right after the call', async () => {
    const d = data(31, 400, 4);
    const c = fitCalibrator(d.logits, d.labels, { method: 'vector', from: 'logits' });
    const expected = c.apply(d.logits).data;
    const z = d.z.slice();
    const pending = c.applyAsync(tensor(z, [400, 4]));
    z.fill(1e6);
    expect(bitsEqual((await pending).data, expected)).toBe(true);

    const z2 = d.z.slice();
    const pending2 = c.applyAsync(tensor(z2, [400, 4]));
    structuredClone(z2.buffer, { transfer: [z2.buffer] });
    expect(z2.length).toBe(0); // detached
    expect(bitsEqual((await pending2).data, expected)).toBe(true);

    const fitText = JSON.stringify(fitCalibrator(d.logits, d.labels, { method: 'matrix', from: 'logits' }));
    for (const method of ['matrix', 'temperature'] as const) {
      const zz = d.z.slice();
      const yy = (d.labels.data as Int32Array).slice();
      const p = fitCalibratorAsync(tensor(zz, [400, 4]), tensor(yy, [400]), { method, from: 'logits' });
      zz.fill(0);
      yy.fill(0);
      const got = JSON.stringify(await p);
      if (method === 'matrix') expect(got).toBe(fitText);
      else expect(got).toBe(JSON.stringify(fitCalibrator(d.logits, d.labels, { method, from: 'logits' })));
    }
  });
});

describe('bad input gets coded errors', () => {
  const d = data(41, 50, 3);
  const ok = fitCalibrator(d.logits, d.labels, { method: 'vector', from: 'logits' });
  const code = (fn: () => unknown): [string | undefined, string | undefined] => {
    const e = thrown(fn) as Error & { code?: string };
    return [e?.constructor?.name, e?.code];
  };
  const RANGE: [string, string] = ['RangeError', 'ERR_SMOOTHCE_INVALID_ARG_VALUE'];
  const TYPE: [string, string] = ['TypeError', 'ERR_SMOOTHCE_INVALID_ARG_TYPE'];

  it('unknown method, wrong method type, missing options, an option of another method, unknown option', () => {
    expect(code(() => fitCalibrator(d.logits, d.labels, { method: 'platt' as never }))).toEqual(RANGE);
    expect((thrown(() => fitCalibrator(d.logits, d.labels, { method: 'platt' as never })) as Error).message).toMatch(/'temperature'.*for method.*platt/);
    expect(code(() => fitCalibrator(d.logits, d.labels, { method: 3 as never }))).toEqual(TYPE);
    expect(code(() => fitCalibrator(d.logits, d.labels, undefined as never))).toEqual(TYPE);
    expect(code(() => fitCalibrator(d.logits, d.labels, { method: 'vector', bins: 10 }))).toEqual(RANGE);
    expect(code(() => fitCalibrator(d.logits, d.labels, { method: 'vector', bogus: 1 } as never))).toEqual(['TypeError', 'ERR_SMOOTHCE_UNKNOWN_OPTION']);
    expect(code(() => fitCalibrator(d.logits, d.labels, { method: 'matrix', from: 'logits', odir: { lambda: -1 } }))).toEqual(RANGE);
    expect(code(() => fitCalibrator(d.logits, d.labels, { method: 'histogram', bins: 0 }))).toEqual(RANGE);
  });

  it('fewer than 2 samples, wrong types, bad values', () => {
    const one = tensor(new Float64Array([0.2, 0.8]), [1, 2]);
    expect(code(() => fitCalibrator(one, tensor(new Int32Array([1]), [1]), { method: 'isotonic' }))).toEqual(RANGE);
    expect((thrown(() => fitCalibrator(one, tensor(new Int32Array([1]), [1]), { method: 'isotonic' })) as Error).message).toMatch(/at least 2 samples/);
    expect(code(() => fitCalibrator([[1, 2]] as never, d.labels, { method: 'vector' }))).toEqual(TYPE);
    expect(code(() => fitCalibrator(d.logits, tensor(new Float32Array(50), [50]), { method: 'vector', from: 'logits' }))).toEqual(TYPE);
    expect(code(() => fitCalibrator(d.logits, tensor(new Int32Array(50).fill(3), [50]), { method: 'vector', from: 'logits' }))).toEqual(RANGE);
    expect(code(() => fitCalibrator(d.logits, d.labels, { method: 'vector' }))).toEqual(RANGE); // logits read as probabilities
    expect(code(() => fitCalibrator(tensor(new Float64Array([NaN, 0, 1, 1]), [2, 2]), tensor(new Int32Array(2), [2]), { method: 'vector', from: 'logits' }))).toEqual(RANGE);
  });

  it('a calibrator applied to scores with another class count, or of another kind', async () => {
    const four = data(42, 10, 4).logits;
    expect(code(() => ok.apply(four))).toEqual(RANGE);
    expect((thrown(() => ok.apply(four)) as Error).message).toMatch(/K = 3 classes.*\[10, 4\]/);
    await expect(ok.applyAsync(four)).rejects.toMatchObject({ code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE' });
    expect(code(() => ok.apply('x'))).toEqual(TYPE);
    expect(code(() => ok.apply(d.logits, { tol: 1 } as never))).toEqual(['TypeError', 'ERR_SMOOTHCE_UNKNOWN_OPTION']);
  });

  it('tampered JSON: missing, extra, wrong length, non-finite, unknown method, version, format, wrong types', () => {
    const good = (): Record<string, any> => JSON.parse(JSON.stringify(ok));
    const tamper = (f: (j: Record<string, any>) => void): [string | undefined, string | undefined] => {
      const j = good();
      f(j);
      return code(() => Calibrator.fromJSON(j));
    };
    expect(tamper(() => {})).toEqual([undefined, undefined]);
    expect(tamper((j) => delete j.fit)).toEqual(RANGE);
    expect(tamper((j) => (j.extra = 1))).toEqual(RANGE);
    expect(tamper((j) => (j.params.extra = [1]))).toEqual(RANGE);
    expect(tamper((j) => j.params.w.pop())).toEqual(RANGE);
    expect(tamper((j) => (j.params.b[1] = NaN))).toEqual(RANGE);
    expect(tamper((j) => (j.params.b[1] = '1'))).toEqual(TYPE);
    expect(tamper((j) => (j.method = 'platt'))).toEqual(RANGE);
    expect(tamper((j) => (j.method = 'matrix'))).toEqual(RANGE); // vector parameters under another method
    expect(tamper((j) => (j.version = 2))).toEqual(RANGE);
    expect(tamper((j) => (j.format = 'x'))).toEqual(RANGE);
    expect(tamper((j) => (j.classes = 4))).toEqual(RANGE);
    expect(tamper((j) => (j.from = 'logit'))).toEqual(RANGE);
    expect(tamper((j) => (j.fit.converged = 'yes'))).toEqual(TYPE);
    expect(tamper((j) => (j.settings = { bins: 3 }))).toEqual(RANGE);
    expect(code(() => Calibrator.fromJSON('{"format":'))).toEqual(RANGE);
    expect(code(() => Calibrator.fromJSON(null))).toEqual(TYPE);
    const iso = JSON.parse(JSON.stringify(fitCalibrator(d.logits, d.labels, { method: 'isotonic', from: 'logits' })));
    iso.params.maps[0].x.reverse();
    expect(code(() => Calibrator.fromJSON(iso))).toEqual(RANGE);
    expect(code(() => new (Calibrator as any)('vector', 'logits', 3, {}, {}, {}))).toEqual(TYPE);
  });

  it('async fit errors reject', async () => {
    await expect(fitCalibratorAsync(d.logits, d.labels, { method: 'nope' as never })).rejects.toMatchObject({ code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE' });
  });
});
