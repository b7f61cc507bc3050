import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crossEntropy, reference, tensor, type Tensor } from '../lib/index';

const RTOL = 1e-10;
const ATOL = 1e-12;

/** Index of the first element where a and b are not close (NaN == NaN, infinities by sign), or -1. */
function mismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= ATOL + RTOL * Math.abs(y))) return i;
  }
  return -1;
}

function values(loss: number | Tensor): ArrayLike<number> {
  return typeof loss === 'number' ? [loss] : (loss.data as Float64Array);
}

type Options = Parameters<typeof crossEntropy>[2] & object;

/** Native vs reference on one call; returns a description of the difference, or ''. */
function compare(x: Tensor, y: Tensor, options: Options): string {
  const n = crossEntropy(x, y, { ...options, grad: true });
  const r = reference.crossEntropy(x, y, options);
  const lossAt = mismatch(values(n.loss), values(r.loss));
  if (lossAt >= 0) return `loss[${lossAt}]: native ${values(n.loss)[lossAt]} vs reference ${values(r.loss)[lossAt]}`;
  if (n.grad!.shape.join() !== r.grad.shape.join()) return `grad shape: native [${n.grad!.shape}] vs reference [${r.grad.shape}]`;
  const gradAt = mismatch(n.grad!.data, r.grad.data);
  if (gradAt >= 0) return `grad[${gradAt}]: native ${n.grad!.data[gradAt]} vs reference ${r.grad.data[gradAt]}`;
  return '';
}

const logit = fc.double({ min: -6, max: 6, noNaN: true, noDefaultInfinity: true });

/** Shapes: (C), (N, C), (N, C, d1[, d2]); N may be 0. */
const shapeArb = fc
  .record({
    kind: fc.constantFrom('1d', '2d', '2d', 'kdim'),
    n: fc.integer({ min: 0, max: 5 }),
    c: fc.integer({ min: 1, max: 6 }),
    extra: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 2 }),
  })
  .map(({ kind, n, c, extra }) => (kind === '1d' ? [c] : kind === '2d' ? [n, c] : [n, c, ...extra]));

const optionsArb = (c: number) =>
  fc.record({
    reduction: fc.constantFrom('mean', 'sum', 'none') as fc.Arbitrary<'mean' | 'sum' | 'none'>,
    labelSmoothing: fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
    weight: fc.option(fc.array(fc.oneof(fc.constant(0), fc.double({ min: 0.05, max: 3, noNaN: true })), { minLength: c, maxLength: c }), { nil: undefined }),
  });

function positions(shape: number[]): number[] {
  return shape.length === 1 ? [] : [shape[0], ...shape.slice(2)];
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const classIndexCase = shapeArb.chain((shape) => {
  const c = shape.length === 1 ? shape[0] : shape[1];
  const tshape = positions(shape);
  return fc.record({
    shape: fc.constant(shape),
    x: fc.array(logit, { minLength: size(shape), maxLength: size(shape) }),
    // -1 stands for "ignored" (replaced by ignoreIndex below).
    y: fc.array(fc.integer({ min: -1, max: c - 1 }), { minLength: size(tshape), maxLength: size(tshape) }),
    ignoreInRange: fc.boolean(),
    ignoreClass: fc.integer({ min: 0, max: c - 1 }),
    int32: fc.boolean(),
    options: optionsArb(c),
    go: fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: Math.max(1, size(tshape)), maxLength: Math.max(1, size(tshape)) }),
    useGo: fc.boolean(),
  });
});

const probabilityCase = shapeArb.chain((shape) => {
  const c = shape.length === 1 ? shape[0] : shape[1];
  const tshape = positions(shape);
  return fc.record({
    shape: fc.constant(shape),
    x: fc.array(logit, { minLength: size(shape), maxLength: size(shape) }),
    // Not normalised on purpose: PyTorch uses target rows as given.
    t: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: size(shape), maxLength: size(shape) }),
    options: optionsArb(c),
    go: fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: Math.max(1, size(tshape)), maxLength: Math.max(1, size(tshape)) }),
    useGo: fc.boolean(),
  });
});

function gradOutput(reduction: string, shape: number[], go: number[]): number | Tensor {
  if (reduction !== 'none') return go[0];
  const t = positions(shape);
  return tensor(new Float64Array(go.slice(0, size(t))), t);
}

describe('reference.crossEntropy vs native (property tests, float64)', () => {
  it('class-index targets: every reduction, weights, ignore_index, ε, upstream gradients (7000 cases)', () => {
    fc.assert(
      fc.property(classIndexCase, (k) => {
        const ignore = k.ignoreInRange ? k.ignoreClass : -100;
        const ys = k.y.map((v) => (v < 0 ? ignore : v));
        const tshape = positions(k.shape);
        const y = k.int32 ? tensor(new Int32Array(ys), tshape) : tensor(BigInt64Array.from(ys.map(BigInt)), tshape);
        const options: Options = {
          reduction: k.options.reduction,
          labelSmoothing: k.options.labelSmoothing,
          ignoreIndex: ignore,
          ...(k.options.weight ? { weight: new Float64Array(k.options.weight) } : {}),
          ...(k.useGo ? { gradOutput: gradOutput(k.options.reduction, k.shape, k.go) } : {}),
        };
        const diff = compare(tensor(new Float64Array(k.x), k.shape), y, options);
        if (diff) throw new Error(diff);
      }),
      { numRuns: 7000, seed: Date.now() % 2 ** 31 },
    );
  });

  it('probability targets: every reduction, weights, ε, upstream gradients (3000 cases)', () => {
    fc.assert(
      fc.property(probabilityCase, (k) => {
        const options: Options = {
          reduction: k.options.reduction,
          labelSmoothing: k.options.labelSmoothing,
          ...(k.options.weight ? { weight: new Float64Array(k.options.weight) } : {}),
          ...(k.useGo ? { gradOutput: gradOutput(k.options.reduction, k.shape, k.go) } : {}),
        };
        const diff = compare(tensor(new Float64Array(k.x), k.shape), tensor(new Float64Array(k.t), k.shape), options);
        if (diff) throw new Error(diff);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('reference.crossEntropy: the cases PyTorch special-cases (spec §1.3), equal to native', () => {
  const x23 = () => tensor(new Float64Array([0.5, -1, 2, 1.5, 0, -0.5]), [2, 3]);
  const idx = (v: number[], shape = [v.length]) => tensor(BigInt64Array.from(v.map(BigInt)), shape);
  const u8x = () => tensor(new Float64Array(4 * 160).map((_, i) => Math.sin(i * 0.37) * 2), [4, 160]);
  const u8 = (v: number[]) => tensor(Uint8Array.from(v), [v.length], 'uint8');
  const u8w = () => Array.from({ length: 160 }, (_, c) => 0.5 + (c % 4) * 0.25);

  it('matches the hand formula for one row: uniform smoothing q = (1 − ε)·onehot + ε/K', () => {
    const x = [0.3, -1.2, 2.0, 0.7];
    const lse = Math.log(x.reduce((s, v) => s + Math.exp(v), 0));
    const eps = 0.2;
    const q = [eps / 4, eps / 4, 1 - eps + eps / 4, eps / 4];
    const want = -q.reduce((s, qc, c) => s + qc * (x[c] - lse), 0);
    const r = reference.crossEntropy(tensor(new Float64Array(x), [1, 4]), idx([2]), { labelSmoothing: eps });
    expect(r.loss).toBeCloseTo(want, 14);
    r.grad.data.forEach((g, c) => expect(g).toBeCloseTo(Math.exp(x[c] - lse) - q[c], 14));
  });

  it.each([
    ['all positions ignored, mean: NaN loss, zero grad', x23(), idx([-100, -100]), { labelSmoothing: 0.1 }],
    ['empty batch, mean: NaN', tensor(new Float64Array(0), [0, 3]), idx([]), { labelSmoothing: 0.1 }],
    ['empty batch, sum: 0', tensor(new Float64Array(0), [0, 3]), idx([]), { reduction: 'sum' as const }],
    ['empty probability batch, sum: −0', tensor(new Float64Array(0), [0, 3]), tensor(new Float64Array(0), [0, 3]), { reduction: 'sum' as const }],
    ['empty probability batch, mean: NaN', tensor(new Float64Array(0), [0, 3]), tensor(new Float64Array(0), [0, 3]), {}],
    ['C = 1: zero loss and grad', tensor(new Float64Array([3, -2]), [2, 1]), idx([0, 0]), { labelSmoothing: 0.4 }],
    ['zero weight on every valid target, mean: NaN loss and grad', x23(), idx([0, 1]), { weight: [0, 0, 1], labelSmoothing: 0.1 }],
    ['−inf at a non-target class with ε > 0: +inf loss, finite grad', tensor(new Float64Array([0, 1, -Infinity]), [1, 3]), idx([0]), { labelSmoothing: 0.1 }],
    ['−inf at a non-target class with ε = 0: finite', tensor(new Float64Array([0, 1, -Infinity]), [1, 3]), idx([0]), {}],
    ['−inf at the target with ε = 1: NaN', tensor(new Float64Array([-Infinity, 1, 2]), [1, 3]), idx([0]), { labelSmoothing: 1 }],
    ['NaN logit in an ignored row: loss 0, grad NaN', tensor(new Float64Array([NaN, 1, 2, 0, 1, 2]), [2, 3]), idx([-100, 1]), { reduction: 'none' as const }],
    ['1-D input with a 0-d target', tensor(new Float64Array([0.1, 0.9, -0.3]), [3]), idx([1], []), { labelSmoothing: 0.3 }],
    ['ignore_index inside [0, C) with weights and ε', x23(), idx([1, 2]), { ignoreIndex: 1, weight: [0.5, 2, 1], labelSmoothing: 0.25 }],
    ['weighted probability targets with ε, none', x23(), tensor(new Float64Array([0.2, 0.3, 0.5, 1, 0, 0]), [2, 3]), { reduction: 'none' as const, weight: [1, 2, 3], labelSmoothing: 0.1 }],
    // uint8 targets: the smoothing term compares ignore_index wrapped to 8 bits (-100 as 156, 256 as 0).
    ['uint8 target equal to the wrapped default ignore_index, ε > 0, mean', u8x(), u8([156, 3, 156, 159]), { labelSmoothing: 0.2 }],
    ['uint8 target equal to the wrapped ignore_index 256, ε > 0, none, weights', u8x(), u8([0, 3, 0, 1]), { ignoreIndex: 256, labelSmoothing: 0.1, reduction: 'none' as const, weight: u8w() }],
    ['uint8 target equal to the wrapped ignore_index -1, ε > 0, sum, weights', tensor(new Float64Array(2 * 256).map((_, i) => Math.cos(i)), [2, 256]), u8([255, 4]), { ignoreIndex: -1, labelSmoothing: 0.3, reduction: 'sum' as const, weight: Array.from({ length: 256 }, (_, c) => 1 + (c % 3)) }],
  ] as Array<[string, Tensor, Tensor, Options]>)('%s', (_name, x, y, options) => {
    expect(compare(x, y, options)).toBe('');
  });

  it('gives PyTorch the exact special values', () => {
    expect(reference.crossEntropy(x23(), idx([-100, -100]), {}).loss).toBeNaN();
    expect(Array.from(reference.crossEntropy(x23(), idx([-100, -100]), {}).grad.data)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Object.is(reference.crossEntropy(tensor(new Float64Array(0), [0, 3]), tensor(new Float64Array(0), [0, 3]), { reduction: 'sum' }).loss, -0)).toBe(true);
    expect(reference.crossEntropy(tensor(new Float64Array([0, 1, -Infinity]), [1, 3]), idx([0]), { labelSmoothing: 0.1 }).loss).toBe(Infinity);
  });

  it('validates like crossEntropy', () => {
    expect(() => reference.crossEntropy(x23(), idx([0, 3]), {})).toThrow(RangeError);
    expect(() => reference.crossEntropy(x23(), idx([0, 1]), { labelSmoothing: -0.1 })).toThrow(/labelSmoothing/);
  });
});
