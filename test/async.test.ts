/**
 * crossEntropyAsync: the same bits as crossEntropy, computed off the main thread; many
 * calls at once; an event loop that keeps turning; inputs that the caller mutates,
 * transfers away or shares while the call is in flight; rejections with the caller's stack.
 * No timing thresholds: responsiveness is counted in event-loop ticks.
 */
import { describe, expect, it } from 'vitest';
import { crossEntropy, crossEntropyAsync, getNumThreads, setNumThreads, tensor, type CrossEntropyOptions, type CrossEntropyResult, type Tensor } from '../lib/index';
import { assertUnchanged, snapshotArrays } from './helpers/contract-util';
import { rng } from './helpers/rng';

function logits(shape: number[], seed: number, dtype: 'float32' | 'float64' = 'float32'): Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = (r() - 0.5) * 8;
  return tensor(data, shape);
}

function classes(n: number, c: number, seed: number, ignore?: { index: number; every: number }): Tensor {
  const r = rng(seed);
  const data = new BigInt64Array(n);
  for (let i = 0; i < n; i++) data[i] = ignore && i % ignore.every === 0 ? BigInt(ignore.index) : BigInt(Math.floor(r() * c));
  return tensor(data, [n]);
}

function probabilities(shape: number[], seed: number): Tensor {
  const r = rng(seed);
  const [n, c] = shape;
  const data = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < c; j++) s += data[i * c + j] = r();
    for (let j = 0; j < c; j++) data[i * c + j] /= s;
  }
  return tensor(data, shape);
}

/** Bitwise comparison of two results (NaN equals NaN, -0 differs from +0). */
function expectSameBits(a: CrossEntropyResult, b: CrossEntropyResult, what = ''): void {
  const flat = (v: unknown): unknown[] =>
    typeof v === 'number' ? [v] : Array.from((v as Tensor).data as ArrayLike<unknown>);
  const same = (x: unknown[], y: unknown[]) => x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
  expect(same(flat(a.loss), flat(b.loss)), `loss ${what}`).toBe(true);
  if (typeof a.loss !== 'number') {
    expect((a.loss as Tensor).shape).toEqual((b.loss as Tensor).shape);
    expect((a.loss as Tensor).dtype).toBe((b.loss as Tensor).dtype);
  }
  expect(a.grad === undefined, `grad presence ${what}`).toBe(b.grad === undefined);
  if (a.grad && b.grad) {
    expect(a.grad.shape).toEqual(b.grad.shape);
    expect(a.grad.dtype).toBe(b.grad.dtype);
    expect(same(flat(a.grad), flat(b.grad)), `grad ${what}`).toBe(true);
  }
}

function cloneTensor(t: Tensor): Tensor {
  return { data: t.data.slice(), shape: [...t.shape], dtype: t.dtype };
}

const CASES: Array<[string, () => [Tensor, Tensor, CrossEntropyOptions]]> = [
  ['float32 mean, ε = 0.1, grad', () => [logits([64, 10], 1), classes(64, 10, 2), { labelSmoothing: 0.1, grad: true }]],
  [
    'float64 none, weights, ignoreIndex, gradOutput',
    () => [
      logits([33, 7], 3, 'float64'),
      classes(33, 7, 4, { index: 3, every: 5 }),
      { reduction: 'none', weight: [1, 2, 0.5, 1, 3, 0.25, 1], ignoreIndex: 3, labelSmoothing: 0.2, grad: true, gradOutput: 0.5 },
    ],
  ],
  ['float64 probability target, sum', () => [logits([16, 5], 5, 'float64'), probabilities([16, 5], 6), { reduction: 'sum', labelSmoothing: 0.05, grad: true }]],
  [
    'float32 k-dim input, Int32 targets',
    () => [logits([3, 4, 5, 2], 7), tensor(Int32Array.from({ length: 30 }, (_, i) => i % 4), [3, 5, 2]), { labelSmoothing: 0.3, grad: true }],
  ],
  ['empty batch', () => [logits([0, 4], 8), tensor(new BigInt64Array(0), [0]), { grad: true }]],
];

describe('crossEntropyAsync', () => {
  it('gives the same bits as crossEntropy', async () => {
    for (const [name, make] of CASES) {
      const [x, t, o] = make();
      const snaps = snapshotArrays(x, t, o);
      const sync = crossEntropy(x, t, o);
      const async = await crossEntropyAsync(x, t, o);
      expectSameBits(async, sync, name);
      assertUnchanged(snaps);
    }
  });

  it('runs 50 concurrent calls, each equal to its sync result', async () => {
    const calls = Array.from({ length: 50 }, (_, i) => {
      const n = 8 + (i % 7) * 9;
      const c = 3 + (i % 5);
      const x = logits([n, c], 100 + i, i % 2 ? 'float64' : 'float32');
      const t = classes(n, c, 200 + i);
      const o: CrossEntropyOptions = { labelSmoothing: (i % 4) / 10, reduction: (['mean', 'sum', 'none'] as const)[i % 3], grad: i % 2 === 0 };
      return { x, t, o, snaps: snapshotArrays(x, t), expected: crossEntropy(x, t, o) };
    });
    const results = await Promise.all(calls.map(({ x, t, o }) => crossEntropyAsync(x, t, o)));
    results.forEach((r, i) => {
      expectSameBits(r, calls[i].expected, `call ${i}`);
      assertUnchanged(calls[i].snaps);
    });
  });

  it('keeps the event loop turning during a large call (4096 x 2000 float32 with grad)', async () => {
    const x = logits([4096, 2000], 11);
    const t = classes(4096, 2000, 12);
    let immediates = 0;
    let intervals = 0;
    let settled = false;
    const spin = () => {
      if (settled) return;
      immediates++;
      setImmediate(spin);
    };
    const timer = setInterval(() => intervals++, 1);
    const p = crossEntropyAsync(x, t, { labelSmoothing: 0.1, grad: true }).finally(() => {
      settled = true;
    });
    setImmediate(spin);
    const r = await p;
    clearInterval(timer);
    // The loop turned while ATen worked on the thread pool. A call that computed on the
    // main thread would settle before the first setImmediate callback ran.
    expect(immediates).toBeGreaterThan(0);
    expect(immediates + intervals).toBeGreaterThan(1);
    expect(r.grad!.shape).toEqual([4096, 2000]);
    expect(Number.isFinite(r.loss)).toBe(true);
    // And the result is the sync one.
    expectSameBits(r, crossEntropy(x, t, { labelSmoothing: 0.1, grad: true }));
  });

  it('is not affected when the caller mutates its arrays right after the call starts', async () => {
    const x = logits([512, 50], 21);
    const t = classes(512, 50, 22);
    const w = new Float32Array(50).map((_, i) => 1 + i / 50);
    const o = { labelSmoothing: 0.2, grad: true, weight: w };
    const expected = crossEntropy(cloneTensor(x), cloneTensor(t), { ...o, weight: w.slice() });
    const p = crossEntropyAsync(x, t, o);
    (x.data as Float32Array).fill(1e6);
    (t.data as BigInt64Array).fill(0n);
    w.fill(-7);
    expectSameBits(await p, expected);
  });

  it('snapshots a large input whole (pieces of 4 MiB and a tail, faulted in and copied on the helper threads), for both implementations', async () => {
    // 2100 × 1001 float32 = 8,408,400 bytes: past the 8 MiB from which the copy goes in pieces
    // (binding/memory/allocator.cc, copy_into_fresh), and not a whole number of its 4 MiB pieces; the
    // fused gradient of that size is faulted in on the worker and handed over at completion.
    const before = getNumThreads();
    setNumThreads(2);
    try {
      for (const impl of ['fused', 'aten'] as const) {
        const x = logits([2100, 1001], 41);
        const t = classes(2100, 1001, 42);
        const o: CrossEntropyOptions = { labelSmoothing: 0.1, grad: true, impl };
        const expected = crossEntropy(cloneTensor(x), cloneTensor(t), o);
        const p = crossEntropyAsync(x, t, o);
        (x.data as Float32Array).fill(1e6); // every piece, the last one too
        expectSameBits(await p, expected, impl);
      }
    } finally {
      setNumThreads(before);
    }
  });

  it('survives the input buffers being transferred away mid-flight', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    const run = async (probTarget: boolean) => {
      const x = logits([256, 40], 31, 'float64');
      const t = probTarget ? probabilities([256, 40], 32) : classes(256, 40, 32);
      const weight = new Float64Array(40).map((_, i) => 0.5 + (i % 3));
      const gradOutput = tensor(new Float64Array(256).fill(0.75), [256]);
      const o: CrossEntropyOptions = { reduction: 'none', grad: true, weight, gradOutput, labelSmoothing: 0.1 };
      const expected = crossEntropy(cloneTensor(x), cloneTensor(t), { ...o, weight: weight.slice(), gradOutput: cloneTensor(gradOutput) });
      const p = crossEntropyAsync(x, t, o);
      // Detach every buffer the call was given, and drop the clones.
      for (const buf of [x.data.buffer, t.data.buffer, weight.buffer, gradOutput.data.buffer]) {
        structuredClone(buf, { transfer: [buf as ArrayBuffer] });
      }
      expect(x.data.byteLength).toBe(0);
      expect(t.data.byteLength).toBe(0);
      gc?.();
      const r = await p;
      gc?.();
      expectSameBits(r, expected, probTarget ? 'probability target' : 'class indices');
    };
    await run(false);
    await run(true);
    // A detached buffer passed to a new call is a clear error, not a crash.
    const x = logits([4, 3], 33);
    structuredClone(x.data.buffer, { transfer: [x.data.buffer as ArrayBuffer] });
    await expect(crossEntropyAsync(x, classes(4, 3, 34))).rejects.toThrow(RangeError);
  });

  it('reads SharedArrayBuffer-backed inputs in place (byte offsets respected)', async () => {
    const n = 300;
    const c = 12;
    const src = logits([n, c], 41);
    const sab = new SharedArrayBuffer(8 + n * c * 4);
    const shared = new Float32Array(sab, 8, n * c); // a view that does not start at byte 0
    shared.set(src.data as Float32Array);
    const tsab = new SharedArrayBuffer(n * 8);
    const target = new BigInt64Array(tsab);
    target.set(classes(n, c, 42).data as BigInt64Array);
    const x = tensor(shared, [n, c]);
    const t = tensor(target, [n]);
    const o = { labelSmoothing: 0.15, grad: true, reduction: 'sum' as const };
    const expected = crossEntropy(src, cloneTensor(t), o);
    expectSameBits(crossEntropy(x, t, o), expected, 'sync');
    const snaps = snapshotArrays(x, t);
    expectSameBits(await crossEntropyAsync(x, t, o), expected, 'async');
    assertUnchanged(snaps);
    // Concurrent readers of one shared buffer all agree.
    const all = await Promise.all(Array.from({ length: 8 }, () => crossEntropyAsync(x, t, o)));
    for (const r of all) expectSameBits(r, expected, 'concurrent');
  });

  it("rejects with the caller's stack, for validation and for native errors", async () => {
    async function callerFrameForStackCheck(input: Tensor, target: Tensor, options?: CrossEntropyOptions) {
      return crossEntropyAsync(input, target, options);
    }
    // Validation error (thrown in TypeScript, turned into a rejection).
    const e1 = await callerFrameForStackCheck(logits([2, 3], 51), classes(2, 3, 52), { labelSmoothing: 2 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(e1).toBeInstanceOf(RangeError);
    expect((e1 as Error).stack).toMatch(/callerFrameForStackCheck/);
    // Native error, raised by ATen on the thread pool: float16 input on LibTorch < 2.4 has
    // no CPU kernel; on newer LibTorch an out-of-bounds native check is used instead.
    const half = tensor(new Float32Array([0.5, 1, 2, 0, 1, 0]), [2, 3], 'float16');
    const r = await callerFrameForStackCheck(half, classes(2, 3, 53)).then(
      (v) => ({ ok: v }),
      (e: unknown) => ({ err: e }),
    );
    if ('err' in r) {
      expect(r.err).toBeInstanceOf(Error);
      expect((r.err as Error).message).toMatch(/Half/);
      expect((r.err as Error).stack).toMatch(/callerFrameForStackCheck/);
      expect((r.err as Error).stack).toMatch(/Half/);
    } else {
      // Newer LibTorch computes float16: it must then agree with the sync call.
      expectSameBits(r.ok, crossEntropy(half, classes(2, 3, 53)));
    }
  });
});
