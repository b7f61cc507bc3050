/**
 * impl: 'fused' against impl: 'aten' on randomized calls: shapes 1-D to 4-D, class counts
 * around the kernel's vector and block widths, float32/float64, index (int64/int32/uint8)
 * and probability targets, weights, ignore_index, every reduction, gradOutput, smoothing
 * 0 / random / 1, non-finite logits; both instruction sets. Plus gradInto (separate, in
 * place, async), the kernel path actually taken, and the option's validation.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { crossEntropy, crossEntropyAsync, tensor, type Tensor } from '../lib/index';
import { native } from '../lib/core/native';
import { prepare, type CrossEntropyOptions } from '../lib/core/options';
import { compareResults } from './helpers/fused-compare';
import { randomClassIndices, randomGradOutput } from './helpers/random-call';
import { rng } from './helpers/rng';
import { restoreEnvAfterAll } from './helpers/env';

restoreEnvAfterAll('SMOOTHCE_FUSED_ISA');

interface Call {
  input: Tensor;
  target: Tensor;
  options: CrossEntropyOptions;
  label: string;
}

// 2100 and 4500: rows of several of the kernel's 8 KiB chunks (float32 and float64).
const CLASSES = [1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257, 1000, 2100, 4500];

function randomCall(seed: number): Call {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const dtype = r() < 0.5 ? 'float32' : 'float64';
  const C = pick(CLASSES);
  const rank = pick([1, 2, 2, 2, 3, 4]);
  const N = 1 + Math.floor(r() * 9);
  const shape = rank === 1 ? [C] : rank === 2 ? [N, C] : rank === 3 ? [N, C, 1 + Math.floor(r() * 5)] : [N, C, 2, 1 + Math.floor(r() * 3)];
  const numelX = shape.reduce((a, b) => a * b, 1);
  const scale = pick([0.1, 1, 5, 30]);
  const offset = pick([0, 0, 100]);
  const x = dtype === 'float32' ? new Float32Array(numelX) : new Float64Array(numelX);
  for (let i = 0; i < numelX; i++) x[i] = offset + (r() - 0.5) * 2 * scale;
  const special = r();
  if (special < 0.1) x[Math.floor(r() * numelX)] = -Infinity;
  else if (special < 0.14) x[Math.floor(r() * numelX)] = NaN;
  else if (special < 0.17) x[Math.floor(r() * numelX)] = Infinity;
  const lossShape = shape.filter((_, i) => i !== (rank === 1 ? 0 : 1));
  const P = lossShape.reduce((a, b) => a * b, 1);
  const options: CrossEntropyOptions = {
    reduction: pick(['mean', 'sum', 'none'] as const),
    labelSmoothing: pick([0, 0, 0.1, r(), 1]),
    grad: r() < 0.8,
  };
  if (r() < 0.4) {
    const w = dtype === 'float32' ? new Float32Array(C) : new Float64Array(C);
    for (let c = 0; c < C; c++) w[c] = r() < 0.1 ? 0 : r() * 2;
    options.weight = w;
  }
  let target: Tensor;
  if (r() < 0.3) {
    const t = dtype === 'float32' ? new Float32Array(numelX) : new Float64Array(numelX);
    for (let i = 0; i < numelX; i++) t[i] = r();
    target = tensor(t, shape);
  } else {
    const { ignore, idx } = randomClassIndices(r, C, P);
    options.ignoreIndex = ignore;
    // (uint8 with weight + smoothing + mean: ATen itself raises in gather(); covered by the golden file.)
    const uint8Ok = idx.every((v) => v >= 0 && v < 256) && !(options.weight && options.labelSmoothing && options.reduction === 'mean');
    const tdtype = rank <= 2 && r() < 0.2 && uint8Ok ? 'uint8' : pick(['int64', 'int32'] as const);
    target = tensor(idx, lossShape, tdtype);
  }
  if (options.grad && r() < 0.4) {
    options.gradOutput = randomGradOutput(r, options.reduction, lossShape);
  }
  return { input: tensor(x, shape), target, options, label: `seed ${seed}: ${dtype} ${JSON.stringify(shape)} ${JSON.stringify({ ...options, weight: !!options.weight, gradOutput: options.gradOutput !== undefined })}` };
}

function fusedPath(c: Call): string {
  const p = prepare(c.input, c.target, { ...c.options, impl: 'fused' });
  return native().crossEntropyFused(p.args, false).path;
}

/**
 * The path impl 'fused' should take: ATen's for uint8 targets with smoothing and an
 * ignore_index outside 0..255 whose 8-bit wrap is a class (ATen's smoothing term then masks
 * the targets equal to the wrapped value, nll_loss does not).
 */
function expectedPath(c: Call): string {
  const ignore = Number(c.options.ignoreIndex ?? -100);
  const C = c.input.shape.length === 1 ? c.input.shape[0] : c.input.shape[1];
  const wraps = c.target.dtype === 'uint8' && (c.options.labelSmoothing ?? 0) > 0 && (ignore < 0 || ignore > 255) && (((ignore % 256) + 256) % 256) < C;
  return wraps ? 'aten' : 'fused';
}

describe.each(['avx2', 'baseline'])('impl fused vs aten, randomized (%s)', (isa) => {
  it('agrees on 400 random calls, on the path expected (the fused one but for uint8 wraps)', () => {
    process.env.SMOOTHCE_FUSED_ISA = isa;
    const failures: string[] = [];
    for (let seed = 1; seed <= 400; seed++) {
      const c = randomCall(seed);
      const want = crossEntropy(c.input, c.target, c.options);
      const got = crossEntropy(c.input, c.target, { ...c.options, impl: 'fused' });
      for (const p of compareResults(got, want, c.input.dtype)) failures.push(`${c.label}: ${p}`);
      const path = fusedPath(c);
      if (path !== expectedPath(c)) failures.push(`${c.label}: ran on the ${path} path`);
    }
    expect(failures.slice(0, 10)).toEqual([]);
  });
});

/**
 * Rows of C logits as float32 and float64 [N, C] inputs, every target set × smoothing ×
 * reduction (with the gradient), without class weights and with each of `weights`: impl
 * 'fused' against impl 'aten', and with `inPlace` also gradInto = a copy of the logits.
 */
function expectRowsMatchAten(
  C: number,
  rows: number[][],
  cases: {
    targets: number[][];
    smoothings: number[];
    reductions: ('mean' | 'sum' | 'none')[];
    inPlace?: boolean;
    weights?: ((j: number) => number)[];
    // Probability targets, as functions of (row, class): each also runs as a target.
    probTargets?: ((n: number, j: number) => number)[];
  },
): void {
  for (const dtype of ['float32', 'float64'] as const) {
    const N = rows.length;
    const data = dtype === 'float32' ? new Float32Array(N * C) : new Float64Array(N * C);
    rows.forEach((r, n) => data.set(r, n * C));
    for (const [wi, wf] of [undefined, ...(cases.weights ?? [])].entries()) {
      const values = wf && Array.from({ length: C }, (_, j) => wf(j));
      const weight = values && (dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values));
      const targetList = [
        ...cases.targets.map((t) => ({ name: String(t), target: tensor(t, [N], 'int64') })),
        ...(cases.probTargets ?? []).map((f, k) => {
          const t = dtype === 'float32' ? new Float32Array(N * C) : new Float64Array(N * C);
          for (let n = 0; n < N; n++) for (let j = 0; j < C; j++) t[n * C + j] = f(n, j);
          return { name: `probability targets #${k}`, target: tensor(t, [N, C]) };
        }),
      ];
      for (const { name, target } of targetList) {
        for (const labelSmoothing of cases.smoothings) {
          for (const reduction of cases.reductions) {
            const opts: CrossEntropyOptions = { labelSmoothing, reduction, grad: true, ...(weight ? { weight } : {}) };
            const label = `${dtype} ${name} ε=${labelSmoothing} ${reduction}${weight ? ` weights #${wi}` : ''}`;
            const want = crossEntropy(tensor(data, [N, C]), target, opts);
            const got = crossEntropy(tensor(data, [N, C]), target, { ...opts, impl: 'fused' });
            expect(compareResults(got, want, dtype), label).toEqual([]);
            if (cases.inPlace) {
              const copy = data.slice();
              const inPlace = crossEntropy(tensor(copy, [N, C]), target, { ...opts, impl: 'fused', gradInto: copy });
              expect(compareResults(inPlace, want, dtype), `in place ${label}`).toEqual([]);
            }
          }
        }
      }
    }
  }
}

// Class weights for the non-finite row tests: zeros (some on −inf logits, where ATen's loss
// is NaN with smoothing but its gradient is not), and weights that differ by class.
const ROW_WEIGHTS = [(j: number) => (j % 5 === 0 ? 0 : 0.5 + (j % 7) * 0.25), (j: number) => 0.25 + (j % 3)];

// Probability targets for the same tests: a dense one with zeros (some on −inf logits, where
// 0 · log_softmax makes ATen's loss NaN), and a sparse one (a few classes per row).
const ROW_PROBS = [
  (n: number, j: number) => ((j + n) % 4 === 0 ? 0 : (1 + Math.sin(j * 0.37 + n)) / 1000),
  (n: number, j: number) => ((j * 7 + n * 13) % 997 === 0 ? 0.4 : 0),
];

/** Rows of C logits, one from each function of the class index. */
function rowsOf(C: number, fs: ((j: number) => number)[]): number[][] {
  return fs.map((f) => Array.from({ length: C }, (_, j) => f(j)));
}

function bitsOf(r: { loss: number | Tensor; grad?: Tensor }): number[][] {
  const out = [typeof r.loss === 'number' ? [r.loss] : Array.from(r.loss.data as Float64Array)];
  if (r.grad) out.push(Array.from(r.grad.data as Float64Array));
  return out;
}

describe('impl fused: the synchronous positional path and the argument-object path', () => {
  it('give the same bits, shapes and dtypes on 300 random calls', async () => {
    const failures: string[] = [];
    for (let seed = 1001; seed <= 1300; seed++) {
      const c = randomCall(seed);
      const opts = { ...c.options, impl: 'fused' as const };
      const sync = crossEntropy(c.input, c.target, opts); // positional fast path (tryFusedFast)
      const viaObject = await crossEntropyAsync(c.input, c.target, opts); // argument object, libuv pool
      // Object.is: NaN equals NaN, and 0 and −0 differ.
      const a = bitsOf(sync), b = bitsOf(viaObject);
      const same = a.length === b.length && a.every((xs, i) => xs.length === b[i].length && xs.every((v, j) => Object.is(v, b[i][j])));
      if (!same) failures.push(`${c.label}: values differ`);
      if (typeof sync.loss !== 'number' && typeof viaObject.loss !== 'number') {
        if (JSON.stringify(sync.loss.shape) !== JSON.stringify(viaObject.loss.shape) || sync.loss.dtype !== viaObject.loss.dtype) {
          failures.push(`${c.label}: loss tensor ${JSON.stringify(sync.loss.shape)} ${sync.loss.dtype} vs ${JSON.stringify(viaObject.loss.shape)} ${viaObject.loss.dtype}`);
        }
      } else if (typeof sync.loss !== typeof viaObject.loss) {
        failures.push(`${c.label}: loss kinds differ`);
      }
      if (sync.grad?.dtype !== viaObject.grad?.dtype || JSON.stringify(sync.grad?.shape) !== JSON.stringify(viaObject.grad?.shape)) {
        failures.push(`${c.label}: gradient shape/dtype differ`);
      }
    }
    expect(failures.slice(0, 10)).toEqual([]);
  });

  it('gives the same bits for large gradients, which the positional path allocates natively after the kernel', async () => {
    for (const [dtype, n, c] of [['float32', 300, 2000], ['float64', 64, 1500]] as const) {
      const r = rng(n * c);
      const x = dtype === 'float32' ? new Float32Array(n * c) : new Float64Array(n * c);
      for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * 10;
      const input = tensor(x, [n, c]);
      const target = tensor(Array.from({ length: n }, (_, i) => (i * 7) % c), [n], 'int64');
      for (const reduction of ['mean', 'sum', 'none'] as const) {
        const opts: CrossEntropyOptions = { impl: 'fused', grad: true, labelSmoothing: 0.1, reduction };
        const sync = crossEntropy(input, target, opts);
        const viaObject = await crossEntropyAsync(input, target, opts);
        expect(sync.grad!.data.length).toBe(n * c);
        expect(sync.grad!.data).toBeInstanceOf(dtype === 'float32' ? Float32Array : Float64Array);
        expect(sync.grad!.data.byteLength, 'large enough for the native allocation').toBeGreaterThanOrEqual(512 * 1024);
        const a = bitsOf(sync), b = bitsOf(viaObject);
        expect(a.map((xs) => xs.length)).toEqual(b.map((xs) => xs.length));
        expect(a.every((xs, i) => xs.every((v, j) => Object.is(v, b[i][j]))), `${dtype} ${reduction}`).toBe(true);
      }
    }
  });

  it('takes the positional path for plain float CPU calls and leaves the rest to the general one', () => {
    const fast = native().crossEntropyFusedFast;
    let calls = 0;
    const binding = native() as unknown as Record<string, unknown>;
    binding.crossEntropyFusedFast = (...args: unknown[]) => {
      calls++;
      return (fast as (...a: unknown[]) => unknown)(...args);
    };
    try {
      crossEntropy(tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]), tensor([0, 2], [2], 'int64'), { impl: 'fused', labelSmoothing: 0.1 });
      expect(calls).toBe(1);
      // bfloat16 input and impl 'aten' with gradInto never reach it.
      crossEntropy(tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], 'bfloat16'), tensor([0, 2], [2], 'int64'), { impl: 'fused' });
      crossEntropy(tensor(new Float32Array([1, 2, 3]), [1, 3]), tensor([1], [1], 'int64'), { grad: true, gradInto: new Float32Array(3) });
      expect(calls).toBe(1);
    } finally {
      binding.crossEntropyFusedFast = fast;
    }
  });
});

describe('impl fused: paths, gradInto and threads', () => {
  it('reports the instruction set it chose', () => {
    expect(['avx2', 'baseline']).toContain(native().fusedIsa());
    expect(native().fusedIsa('baseline')).toBe('baseline');
  });

  it('hands bfloat16, empty input and mixed probability dtypes to ATen, with the same results', () => {
    const cases: Call[] = [
      { input: tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], 'bfloat16'), target: tensor([0, 2], [2], 'int64'), options: { grad: true, labelSmoothing: 0.1 }, label: 'bf16' },
      { input: tensor(new Float32Array(0), [0, 3]), target: tensor([], [0], 'int64'), options: { grad: true, reduction: 'sum' }, label: 'empty' },
      { input: tensor(new Float32Array([1, 2, 3]), [1, 3]), target: tensor(new Float64Array([0.2, 0.3, 0.5]), [1, 3]), options: { grad: true }, label: 'f32 input, f64 prob' },
    ];
    for (const c of cases) {
      expect(fusedPath(c), c.label).toBe('aten');
      const want = crossEntropy(c.input, c.target, c.options);
      const got = crossEntropy(c.input, c.target, { ...c.options, impl: 'fused' });
      expect(compareResults(got, want, 'float64'), c.label).toEqual([]);
    }
  });

  it('hands uint8 targets with smoothing and an ignore_index that wraps to a class to ATen, whose smoothing term wraps it', () => {
    // Found by a 60,000-call sweep of the randomized comparison: ATen's smoothing term masks
    // `target == ignore_index` in uint8 (-100 → 156, -1 → 255, 256 → 0), nll_loss compares
    // unwrapped, so a target equal to the wrapped value counts in one term only.
    const C = 257;
    const x = new Float32Array(4 * C).map((_, i) => Math.sin(i * 0.7) * 3);
    for (const [ignoreIndex, wrapped] of [[-100, 156], [-1, 255], [256, 0], [-200, 56]] as const) {
      for (const reduction of ['mean', 'sum', 'none'] as const) {
        const c: Call = {
          input: tensor(x, [4, C]),
          target: tensor([wrapped, 3, wrapped, 200], [4], 'uint8'),
          options: { ignoreIndex, reduction, labelSmoothing: 0.2, grad: true },
          label: `ignore_index ${ignoreIndex} ${reduction}`,
        };
        expect(expectedPath(c), c.label).toBe('aten');
        expect(fusedPath(c), c.label).toBe('aten');
        const want = crossEntropy(c.input, c.target, c.options);
        const got = crossEntropy(c.input, c.target, { ...c.options, impl: 'fused' });
        expect(compareResults(got, want, 'float32'), c.label).toEqual([]);
        // The same call with int32 targets (no wrap) differs: the wrapped targets count in both terms.
        const unwrapped = crossEntropy(c.input, tensor([wrapped, 3, wrapped, 200], [4], 'int32'), c.options);
        expect(compareResults(unwrapped, want, 'float32'), c.label).not.toEqual([]);
      }
    }
    // Without smoothing, or when the wrapped value is not a class, the kernel runs it.
    const small = { input: tensor(new Float32Array(6).map((_, i) => i * 0.3), [2, 3]), target: tensor([0, 2], [2], 'uint8') };
    expect(fusedPath({ ...small, options: { labelSmoothing: 0.1 }, label: '-100 → 156 ≥ C' })).toBe('fused');
    expect(fusedPath({ ...small, options: { ignoreIndex: 256, labelSmoothing: 0 }, label: 'ε = 0' })).toBe('fused');
    expect(fusedPath({ ...small, options: { ignoreIndex: 2, labelSmoothing: 0.1 }, label: 'in range' })).toBe('fused');
  });

  it('writes into gradInto (separate buffer, the input itself, async) and leaves the input alone otherwise', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const c = randomCall(7);
      const x = dtype === 'float32' ? Float32Array.from(c.input.data as Float64Array) : Float64Array.from(c.input.data as Float64Array);
      for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) x[i] = 0;
      const input = tensor(x, c.input.shape);
      const opts: CrossEntropyOptions = { labelSmoothing: 0.2, grad: true, ignoreIndex: c.options.ignoreIndex, weight: c.options.weight };
      const want = crossEntropy(input, c.target, opts);
      const before = x.slice();
      const into = new (x.constructor as Float64ArrayConstructor)(x.length);
      const r1 = crossEntropy(input, c.target, { ...opts, impl: 'fused', gradInto: into as Float64Array });
      expect(r1.grad!.data).toBe(into);
      expect(x).toEqual(before);
      expect(compareResults(r1, want, dtype)).toEqual([]);
      const r2 = await crossEntropyAsync(input, c.target, { ...opts, impl: 'fused', gradInto: into.fill(0) as Float64Array });
      expect(compareResults(r2, want, dtype)).toEqual([]);
      // impl aten with gradInto: ATen's gradient, copied into the buffer.
      const r3 = crossEntropy(input, c.target, { ...opts, gradInto: into.fill(0) as Float64Array });
      expect(r3.grad!.data).toBe(into);
      expect(compareResults(r3, want, dtype)).toEqual([]);
      // In place: the input becomes its gradient.
      const r4 = crossEntropy(input, c.target, { ...opts, impl: 'fused', gradInto: x as Float64Array });
      expect(r4.grad!.data).toBe(x);
      expect(compareResults(r4, want, dtype)).toEqual([]);
      expect(compareResults({ loss: 0, grad: { ...want.grad!, data: x } }, { loss: 0, grad: want.grad }, dtype)).toEqual([]);
    }
  });

  it('gives the same bits with 1 and 2 threads (the threads take pieces of rows from a shared counter)', () => {
    // 200×2000 = 400 K logits: above the kernel's threshold for starting threads, 25 blocks
    // of 8 rows handed out one at a time.
    const N = 200, C = 2000;
    const x = new Float32Array(N * C).map((_, i) => Math.sin(i * 0.37) * 4);
    const t = tensor(Array.from({ length: N }, (_, i) => (i * 31) % C), [N], 'int64');
    const before = native().getNumThreads();
    try {
      for (const reduction of ['mean', 'none'] as const) {
        const opts = { impl: 'fused', grad: true, labelSmoothing: 0.1, reduction } as const;
        native().setNumThreads(1);
        const a = crossEntropy(tensor(x, [N, C]), t, opts);
        native().setNumThreads(2);
        const b = crossEntropy(tensor(x, [N, C]), t, opts);
        expect(bitsOf(b)).toEqual(bitsOf(a));
        expect((a.grad!.data as Float32Array).some((v) => v !== 0)).toBe(true);
      }
    } finally {
      native().setNumThreads(before);
    }
  });

  it('matches aten on rows of non-finite logits: long −inf runs, all −inf, NaN, +inf, ignored or not', () => {
    const C = 300;
    const rows = rowsOf(C, [
      (j) => (j < 200 ? -Infinity : Math.sin(j)), // whole leading blocks of −inf
      () => -Infinity, // all −inf
      (j) => (j === 150 ? NaN : Math.cos(j)),
      (j) => (j === 7 ? Infinity : Math.cos(j)),
      (j) => (j % 3 ? -Infinity : 0.5 * j), // −inf at the target for some targets
      (j) => 1000 + Math.sin(j), // large offset
    ]);
    expectRowsMatchAten(C, rows, {
      targets: [[250, 3, 5, 9, 1, 299], [-100, -100, -100, -100, 3, 0], [250, 3, -100, -100, 0, 2]],
      smoothings: [0, 0.2, 1],
      reductions: ['mean', 'sum', 'none'],
      weights: ROW_WEIGHTS,
      probTargets: ROW_PROBS,
    });
  });

  it('matches aten where the target is the max of a row of large logits (log p as (x − max) − log Σ, not x − (max + log Σ))', () => {
    // Found by a sweep of extreme calls: float64 loss 4.795790545642376 against ATen's
    // 4.795790545596741 (= 2·log 11) for a target tied with 10 others at 1e6.
    const C = 129;
    const rows = rowsOf(C, [
      (j) => (j < 11 ? 1e6 : j % 2 ? -745 : 89), // ties at a large max
      (j) => (j === 40 ? 3e8 : 3e8 - 1 - (j % 5)), // one large max, its neighbours close
      (j) => -1e7 + Math.sin(j), // large negative offset
      (j) => 2.5e5 + (j % 4) * 0.25,
    ]);
    expectRowsMatchAten(C, rows, {
      targets: [[0, 40, 3, 7], [10, 40, 128, 0], [5, -100, 64, 2]],
      smoothings: [0, 0.1, 1],
      reductions: ['mean', 'sum', 'none'],
      inPlace: true,
      weights: ROW_WEIGHTS,
    });
  });

  it('matches aten where an infinite upstream gradient meets a subnormal probability (±inf, not NaN)', () => {
    // Found by a sweep of extreme calls: p = exp(−745) (float64) or exp(−88) (float32) is
    // subnormal; times an infinite Σg ATen gives ±inf, and the kernel's exps, flushed to 0
    // below the normal range, gave 0·inf = NaN.
    let withInf = 0;
    for (const dtype of ['float32', 'float64'] as const) {
      const low = dtype === 'float64' ? -745 : -88;
      const rows = [[5e-324, low, low, 0.5], [0, low + 1, -1e6, low], [1, 2, 3, 4], [low, 0, low, 0]];
      const C = 4;
      const data = dtype === 'float32' ? Float32Array.from(rows.flat()) : Float64Array.from(rows.flat());
      const target = tensor([2, 1, 0, 3], [4], 'int64');
      const probs = tensor(dtype === 'float32' ? new Float32Array(16).fill(0.25) : new Float64Array(16).fill(0.25), [4, C]);
      const upstream = [
        { reduction: 'none' as const, gradOutput: tensor(Float64Array.of(Infinity, -Infinity, NaN, Infinity), [4]) },
        { reduction: 'sum' as const, gradOutput: Infinity },
        { reduction: 'mean' as const, gradOutput: -Infinity },
      ];
      for (const t of [target, probs]) {
        for (const u of upstream) {
          for (const labelSmoothing of [0, 0.3]) {
            const opts: CrossEntropyOptions = { ...u, labelSmoothing, grad: true, weight: [1, 0.5, 2, 1] };
            const label = `${dtype} ${t === probs ? 'probabilities' : 'indices'} ${u.reduction} ε=${labelSmoothing}`;
            const want = crossEntropy(tensor(data, [4, C]), t, opts);
            if (Array.from(want.grad!.data).some((v) => v === Infinity || v === -Infinity)) withInf++;
            const got = crossEntropy(tensor(data, [4, C]), t, { ...opts, impl: 'fused' });
            expect(compareResults(got, want, dtype), label).toEqual([]);
            const copy = data.slice();
            const inPlace = crossEntropy(tensor(copy, [4, C]), t, { ...opts, impl: 'fused', gradInto: copy });
            expect(compareResults(inPlace, want, dtype), `in place ${label}`).toEqual([]);
          }
        }
      }
    }
    expect(withInf).toBeGreaterThanOrEqual(6);
  });

  it('gives the exact zero gradient of ATen for one class (p = 1), NaN for a non-finite logit', () => {
    // Found by a sweep of extreme calls: float32 [17, 1] with weight 949 gave 0.0547 where ATen's
    // g − p·g is 0.
    for (const dtype of ['float32', 'float64'] as const) {
      const v = [3.25, -1e6, 0.5, Infinity, -Infinity, NaN];
      const x = dtype === 'float32' ? Float32Array.from(v) : Float64Array.from(v);
      for (const [shape, tshape] of [[[6, 1], [6]], [[2, 1, 3], [2, 3]]] as const) {
        for (const labelSmoothing of [0, 0.5519234607927501, 1]) {
          for (const t of [tensor([0, 0, 0, 0, 0, 0], [...tshape], 'int64'), tensor(dtype === 'float32' ? new Float32Array(6).fill(0.7) : new Float64Array(6).fill(0.7), [...shape])]) {
            const opts: CrossEntropyOptions = { labelSmoothing, grad: true, weight: [949.05810546875], reduction: 'sum', gradOutput: 1e4 };
            const want = crossEntropy(tensor(x, [...shape]), t, opts);
            const got = crossEntropy(tensor(x, [...shape]), t, { ...opts, impl: 'fused' });
            expect(Array.from(got.grad!.data), `${dtype} ${shape} ε=${labelSmoothing}`).toEqual(Array.from(want.grad!.data));
          }
        }
      }
    }
  });

  it('matches aten on rows of several chunks: a growing max, −inf chunks, NaN and +inf in later chunks', () => {
    // float32 rows of 5000 span 3 of the kernel's 8 KiB chunks, float64 rows 5.
    const C = 5000;
    const rows = rowsOf(C, [
      (j) => j / 400 + Math.sin(j), // the max grows chunk after chunk: the sums are rescaled
      (j) => 30 - j / 200 + Math.cos(j), // the first chunk holds the max
      (j) => (j < 2500 ? -Infinity : Math.sin(j)), // leading chunks all −inf
      (j) => (j >= 2048 && j < 4096 ? -Infinity : Math.sin(j)), // a −inf chunk after finite ones
      (j) => (j === 4900 ? NaN : Math.cos(j)), // NaN in the last chunk, below the max
      (j) => (j === 2600 ? Infinity : Math.cos(j)), // +inf in a middle chunk
      (j) => (j === 100 ? NaN : j < 2048 ? -Infinity : Math.sin(j)), // NaN hidden in a −inf chunk
      () => -Infinity,
      (j) => 1000 + Math.sin(j), // large offset
    ]);
    expectRowsMatchAten(C, rows, {
      targets: [[4999, 0, 2400, 3000, 17, 4321, 2600, 7, 1], [-100, 5, 2600, -100, 4900, -100, 3000, -100, 4000]],
      smoothings: [0, 0.3],
      reductions: ['mean', 'none'],
      inPlace: true,
      weights: ROW_WEIGHTS,
      probTargets: ROW_PROBS,
    });
  });

  it('rejects a weight of the wrong shape with probability targets, as ATen does, instead of reading past it', () => {
    // Found by `npm run fuzz -- --seed 12` (case 2366): the native entry point with a
    // probability target and an empty [5, 0] weight crashed the process (the kernel read C
    // weights from an empty buffer). In a child process, so that a crash fails this test
    // instead of the test run.
    const dist = path.resolve(__dirname, '..', 'dist', 'core', 'native.js');
    const script = `const { native } = require(${JSON.stringify(dist)});
      const x = { data: new Float32Array(12), shape: [3, 4], dtype: 'float32' };
      const t = { data: new Float32Array(12).fill(0.25), shape: [3, 4], dtype: 'float32' };
      const out = [];
      (async () => {
        for (const [shape, n] of [[[5, 0], 0], [[3], 3], [[4, 1], 4], [[2 ** 31, 0], 0]]) {
          for (const async of [false, true]) {
            const a = { input: x, target: t, weight: { data: new Float32Array(n), shape, dtype: 'float32' }, reduction: 1,
              ignoreIndex: -100n, labelSmoothing: 0.1, grad: true, gradOutput: 1, device: 'cpu', gradOnDevice: false };
            try { await native().crossEntropyFused(a, async); out.push('no error'); } catch (e) { out.push(e.message); }
          }
        }
        console.log(JSON.stringify(out));
      })();`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as string[];
    expect(out).toHaveLength(8);
    for (const m of out) expect(m).toMatch(/weight tensor should be defined either for all 4 classes or no classes/);
  });

  it('validates impl and gradInto', () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    const t = tensor([0, 1], [2], 'int64');
    expect(() => crossEntropy(x, t, { impl: 'fast' as 'fused' })).toThrow(RangeError);
    expect(() => crossEntropy(x, t, { impl: 1 as unknown as 'fused' })).toThrow(TypeError);
    expect(() => crossEntropy(x, t, { impl: 'fused', grad: true, gradInto: new Float64Array(6) })).toThrow(/Float32Array.*for gradInto/);
    expect(() => crossEntropy(x, t, { impl: 'fused', grad: true, gradInto: new Float32Array(5) })).toThrow(RangeError);
    expect(() => crossEntropy(x, t, { impl: 'fused', gradInto: new Float32Array(6) })).toThrow(/gradInto was given but grad/);
    // Overlapping the input without being it: refused before anything is written.
    const buf = new Float32Array(12);
    const shifted = tensor(buf.subarray(0, 6), [2, 3]);
    expect(() => crossEntropy(shifted, t, { impl: 'fused', grad: true, gradInto: buf.subarray(3, 9) })).toThrow(/overlaps the input/);
  });
});
