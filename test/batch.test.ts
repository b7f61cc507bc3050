import { afterEach, describe, expect, it, vi } from 'vitest';
import { crossEntropy, crossEntropyAsync, tensor, type Tensor } from '../lib/index';
import { denominator, roundTo } from '../lib/loss/batch';
import { native } from '../lib/core/native';
import { prepare } from '../lib/core/options';
import { rng } from './helpers/rng';

// Deterministic pseudo-random numbers (mulberry32).
type Float = 'float32' | 'float64';

interface Case {
  name: string;
  input: Tensor;
  target: Tensor;
  options: Record<string, unknown>;
}

function logits(r: () => number, shape: number[], dtype: Float): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (r() - 0.5) * 8;
  return tensor(data, shape, dtype);
}

function indices(r: () => number, shape: number[], C: number, ignoreFrac: number, ignore: number, dtype: 'int64' | 'int32'): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const vals: number[] = [];
  for (let i = 0; i < n; i++) vals.push(r() < ignoreFrac ? ignore : Math.floor(r() * C));
  return tensor(vals, shape, dtype);
}

function probs(r: () => number, shape: number[], dtype: Float): Tensor {
  const t = logits(r, shape, dtype);
  const C = shape[1];
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  const d = t.data as Float64Array;
  for (let n = 0; n < shape[0]; n++) {
    for (let k = 0; k < inner; k++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += (d[(n * C + c) * inner + k] = Math.exp(d[(n * C + c) * inner + k]));
      for (let c = 0; c < C; c++) d[(n * C + c) * inner + k] /= s;
    }
  }
  return t;
}

function cases(dtype: Float): Case[] {
  const r = rng(dtype === 'float64' ? 7 : 11);
  const out: Case[] = [];
  const C = 5;
  const weight = Array.from({ length: C }, () => 0.25 + r() * 2);
  for (const reduction of ['mean', 'sum', 'none']) {
    for (const eps of [0, 0.2]) {
      for (const w of [undefined, weight]) {
        const base = { reduction, labelSmoothing: eps, ...(w ? { weight: w } : {}) };
        out.push({ name: `2d ${reduction} eps=${eps} w=${!!w}`, input: logits(r, [13, C], dtype), target: indices(r, [13], C, 0.3, -100, 'int64'), options: base });
        out.push({ name: `4d ${reduction} eps=${eps} w=${!!w}`, input: logits(r, [7, C, 3, 2], dtype), target: indices(r, [7, 3, 2], C, 0.25, 2, 'int32'), options: { ...base, ignoreIndex: 2 } });
        out.push({ name: `3d ${reduction} eps=${eps} w=${!!w}`, input: logits(r, [9, C, 4], dtype), target: indices(r, [9, 4], C, 0, -100, 'int64'), options: base });
        out.push({ name: `prob ${reduction} eps=${eps} w=${!!w}`, input: logits(r, [11, C], dtype), target: probs(r, [11, C], dtype), options: base });
        out.push({ name: `prob 3d ${reduction} eps=${eps} w=${!!w}`, input: logits(r, [6, C, 3], dtype), target: probs(r, [6, C, 3], dtype), options: base });
        out.push({ name: `all ignored ${reduction} eps=${eps} w=${!!w}`, input: logits(r, [8, C], dtype), target: indices(r, [8], C, 1, -100, 'int64'), options: base });
        out.push({ name: `empty ${reduction} eps=${eps} w=${!!w}`, input: logits(r, [0, C], dtype), target: indices(r, [0], C, 0, -100, 'int64'), options: base });
        // (uint8 targets with weights and ε > 0 fail in PyTorch 1.13 itself: gather() wants int64.)
        if (!(w && eps > 0)) out.push({ name: `uint8 ${reduction} eps=${eps} w=${!!w}`, input: logits(r, [10, C], dtype), target: tensor(new Uint8Array(Array.from({ length: 10 }, () => Math.floor(r() * C))), [10]), options: base });
      }
    }
  }
  // Zero weights on the targets present: D = 0, PyTorch gives NaN.
  out.push({ name: 'zero target weights', input: logits(r, [6, C], dtype), target: tensor([1, 1, 3, 3, 1, 3], [6], 'int64'), options: { weight: [1, 0, 1, 0, 1] } });
  out.push({ name: 'zero target weights eps', input: logits(r, [6, C], dtype), target: tensor([1, 1, 3, 3, 1, 3], [6], 'int64'), options: { weight: [1, 0, 1, 0, 1], labelSmoothing: 0.1 } });
  return out;
}

function close(a: number, b: number, dtype: Float): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return a === b;
  const [rtol, atol] = dtype === 'float64' ? [1e-12, 1e-15] : [1e-5, 1e-6];
  return Math.abs(a - b) <= atol + rtol * Math.max(Math.abs(a), Math.abs(b));
}

function expectSameTensor(got: Tensor, want: Tensor, dtype: Float, what: string): void {
  expect(got.shape, what).toEqual(want.shape);
  expect(got.dtype, what).toBe(want.dtype);
  expect(got.data.length, what).toBe(want.data.length);
  for (let i = 0; i < want.data.length; i++) {
    const a = Number(got.data[i]);
    const b = Number(want.data[i]);
    if (!close(a, b, dtype)) throw new Error(`${what}[${i}]: chunked ${a} vs unchunked ${b}`);
  }
}

function expectSame(got: { loss: number | Tensor; grad?: Tensor }, want: { loss: number | Tensor; grad?: Tensor }, dtype: Float, what: string): void {
  if (typeof want.loss === 'number') {
    expect(typeof got.loss, what).toBe('number');
    if (!close(got.loss as number, want.loss, dtype)) throw new Error(`${what}: loss ${got.loss} vs ${want.loss}`);
    if (want.loss === 0) expect(Object.is(got.loss, -0), `${what}: sign of zero`).toBe(Object.is(want.loss, -0));
  } else {
    expectSameTensor(got.loss as Tensor, want.loss, dtype, `${what} loss`);
  }
  expect(got.grad === undefined, what).toBe(want.grad === undefined);
  if (want.grad) expectSameTensor(got.grad!, want.grad, dtype, `${what} grad`);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('crossEntropy with batchSize: exact chunking', () => {
  for (const dtype of ['float64', 'float32'] as const) {
    it(`equals the unchunked call for every reduction, weights, ignore_index, probability and k-dim targets (${dtype})`, () => {
      let compared = 0;
      for (const c of cases(dtype)) {
        for (const grad of [false, true]) {
          const opts = { ...c.options, grad };
          const want = crossEntropy(c.input, c.target, opts);
          for (const batchSize of [1, 2, 3, 4, 1000]) {
            const got = crossEntropy(c.input, c.target, { ...opts, batchSize });
            expectSame(got, want, dtype, `${c.name} grad=${grad} B=${batchSize}`);
            compared++;
          }
        }
      }
      expect(compared).toBeGreaterThan(900);
    });
  }

  it('uses the caller gradOutput (scalar for mean/sum, per-position for none)', () => {
    const r = rng(3);
    const input = logits(r, [10, 4], 'float64');
    const target = indices(r, [10], 4, 0.2, -100, 'int64');
    for (const reduction of ['mean', 'sum'] as const) {
      for (const gradOutput of [2.5, tensor([-0.75], [], 'float64')]) {
        const want = crossEntropy(input, target, { reduction, grad: true, gradOutput, weight: [1, 2, 3, 4] });
        const got = crossEntropy(input, target, { reduction, grad: true, gradOutput, weight: [1, 2, 3, 4], batchSize: 3 });
        expectSame(got, want, 'float64', `${reduction} gradOutput`);
      }
    }
    const g = logits(r, [10], 'float64');
    const want = crossEntropy(input, target, { reduction: 'none', grad: true, gradOutput: g, labelSmoothing: 0.1 });
    const got = crossEntropy(input, target, { reduction: 'none', grad: true, gradOutput: g, labelSmoothing: 0.1, batchSize: 4 });
    expectSame(got, want, 'float64', 'none gradOutput');
  });

  it('all-ignored mean: NaN loss and zero gradient, as PyTorch', () => {
    const input = logits(rng(5), [6, 3], 'float64');
    const target = tensor([-100, -100, -100, -100, -100, -100], [6], 'int64');
    const r = crossEntropy(input, target, { grad: true, batchSize: 2, labelSmoothing: 0.3 });
    expect(r.loss).toBeNaN();
    expect(Array.from(r.grad!.data).every((v) => v === 0)).toBe(true);
  });

  it('computes a uint8 mean whose smoothing term ignores a wrapped ignore_index in one call (two denominators)', async () => {
    // PyTorch masks uint8 targets equal to ignore_index wrapped to 8 bits (-100 as 156) in the
    // smoothing term only; one global denominator would give another mean.
    const input = logits(rng(11), [6, 160], 'float64');
    const target = tensor([156, 3, 156, 7, 156, 9], [6], 'uint8');
    for (const options of [{ labelSmoothing: 0.3 }, { labelSmoothing: 0.3, weight: Array.from({ length: 160 }, (_, c) => 1 + (c % 3)), reduction: 'sum' as const }, { labelSmoothing: 0.3, reduction: 'none' as const }]) {
      const want = crossEntropy(input, target, { ...options, grad: true });
      expectSame(crossEntropy(input, target, { ...options, grad: true, batchSize: 2 }), want, 'float64', JSON.stringify(options));
      expectSame(await crossEntropyAsync(input, target, { ...options, grad: true, batchSize: 2 }), want, 'float64', `async ${JSON.stringify(options)}`);
    }
    // The mean with one denominator (the count of targets nll_loss keeps, 6) is not PyTorch's.
    const sum = crossEntropy(input, target, { labelSmoothing: 0.3, reduction: 'sum' }).loss as number;
    expect(Math.abs((crossEntropy(input, target, { labelSmoothing: 0.3 }).loss as number) - sum / 6)).toBeGreaterThan(1e-3);
  });

  it('bfloat16 probability targets: chunks give the one-call loss, in bfloat16 when input and target are (ATen promotes x·t)', () => {
    const x = tensor(Float32Array.from({ length: 60 }, (_, i) => Math.sin(i) * 3), [10, 6], 'bfloat16');
    const probs = Float32Array.from({ length: 60 }, (_, i) => (Math.cos(i) + 1) / 12);
    for (const td of ['bfloat16', 'float32'] as const) {
      const t = tensor(probs, [10, 6], td);
      const one = crossEntropy(x, t, { labelSmoothing: 0.1 }).loss as number;
      const chunked = crossEntropy(x, t, { labelSmoothing: 0.1, batchSize: 3 }).loss as number;
      expect(chunked, td).toBe(one);
      // A bfloat16 result has at most 8 significant bits; a float32 one has more here.
      expect(roundTo('bfloat16', one) === one, td).toBe(td === 'bfloat16');
    }
  });

  it('the async twin gives the same result', async () => {
    for (const c of cases('float64').filter((_, i) => i % 5 === 0)) {
      const want = crossEntropy(c.input, c.target, { ...c.options, grad: true });
      const got = await crossEntropyAsync(c.input, c.target, { ...c.options, grad: true, batchSize: 3 });
      expectSame(got, want, 'float64', `async ${c.name}`);
    }
  });

  it('passes chunks to native code as views of the caller arrays (no copies), at most batchSize rows each', () => {
    const r = rng(9);
    const input = logits(r, [10, 3, 2], 'float64');
    const target = indices(r, [10, 2], 3, 0.1, -100, 'int64');
    const binding = native();
    const spy = vi.spyOn(binding, 'crossEntropy');
    crossEntropy(input, target, { batchSize: 4, grad: true });
    expect(spy).toHaveBeenCalledTimes(3);
    const rows: number[] = [];
    for (const [args] of spy.mock.calls) {
      expect(args.input.data.buffer).toBe(input.data.buffer);
      expect(args.target.data.buffer).toBe(target.data.buffer);
      expect(args.reduction).toBe(2);
      rows.push(args.input.shape[0]);
    }
    expect(rows).toEqual([4, 4, 2]);
  });

  it('does not split 1-D input or batches that fit', () => {
    const binding = native();
    const spy = vi.spyOn(binding, 'crossEntropy');
    crossEntropy(tensor([1, 2, 3], [3], 'float64'), tensor([1], [], 'int64'), { batchSize: 1 });
    crossEntropy(tensor(new Float64Array(6), [2, 3]), tensor([1, 2], [2], 'int64'), { batchSize: 2 });
    expect(spy).toHaveBeenCalledTimes(2);
  });

  it('validates batchSize', () => {
    const x = tensor(new Float64Array(6), [2, 3]);
    const y = tensor([1, 2], [2], 'int64');
    expect(() => crossEntropy(x, y, { batchSize: 0 })).toThrow(RangeError);
    expect(() => crossEntropy(x, y, { batchSize: 1.5 })).toThrow(/positive integer.*batchSize/);
    expect(() => crossEntropy(x, y, { batchSize: '2' as unknown as number })).toThrow(TypeError);
    expect(() => crossEntropy(x, y, { batchSize: Infinity })).toThrow(RangeError);
  });

  it('does not modify the caller arrays', () => {
    const r = rng(13);
    const input = logits(r, [9, 4], 'float32');
    const target = indices(r, [9], 4, 0.2, -100, 'int64');
    const before = [input.data.slice(), target.data.slice()];
    crossEntropy(input, target, { batchSize: 2, grad: true, labelSmoothing: 0.1 });
    expect(input.data).toEqual(before[0]);
    expect(target.data).toEqual(before[1]);
  });
});

describe('denominator and rounding helpers', () => {
  it('is the summed target-class weight of non-ignored positions, or N·d for probabilities', () => {
    const x = tensor(new Float64Array(12), [4, 3]);
    expect(denominator(prepare(x, tensor([0, 2, -100, 2], [4], 'int64'), { weight: [0.5, 1, 2] }))).toBe(4.5);
    expect(denominator(prepare(x, tensor([0, 2, 7, 2], [4], 'int32'), { ignoreIndex: 7 }))).toBe(3);
    expect(denominator(prepare(x, tensor(new Float64Array(12), [4, 3]), {}))).toBe(4);
    const x3 = tensor(new Float64Array(24), [2, 3, 4]);
    expect(denominator(prepare(x3, tensor(new Float64Array(24), [2, 3, 4]), {}))).toBe(8);
  });

  it('rounds weights as ATen holds them (float32, bfloat16)', () => {
    expect(roundTo('float32', 0.1)).toBe(Math.fround(0.1));
    expect(roundTo('bfloat16', 1.1)).toBe(1.1015625);
    expect(roundTo('bfloat16', 1 + 2 ** -8)).toBe(1); // tie to even
    expect(roundTo('bfloat16', 1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6);
    expect(roundTo('float16', 65519)).toBe(65504);
    expect(roundTo('float16', 65520)).toBe(Infinity);
    expect(roundTo('float16', 2 ** -25)).toBe(0);
    expect(roundTo('float64', 0.1)).toBe(0.1);
  });
});
