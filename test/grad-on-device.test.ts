// gradOnDevice: the gradient comes back as a DeviceTensor on the call's device instead of
// a host tensor. On this CPU-only machine the device is 'cpu'; scripts/gpu-check.sh runs
// the same comparison on CUDA.
import { describe, expect, it } from 'vitest';
import {
  Batcher,
  crossEntropy,
  crossEntropyAsync,
  isDeviceTensor,
  LossAccumulator,
  liveDeviceTensors,
  tensor,
  toDevice,
  type DeviceTensor,
  type Tensor,
} from '../lib/index';

function logits(shape: number[], seed: number, dtype: 'float32' | 'float64' | 'bfloat16' = 'float64'): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    d[i] = (s / 2147483648 - 0.5) * 6;
  }
  return tensor(d, shape, dtype);
}

function classes(n: number, C: number, seed: number): Tensor {
  return tensor(Array.from({ length: n }, (_, i) => (i % 7 === 3 ? -100 : (i * seed + 1) % C)), [n], 'int64');
}

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) expect([i, a[i]]).toEqual([i, b[i]]);
}

const CASES = [
  { name: '2-D float64, smoothing, mean', x: () => logits([33, 9], 3), y: () => classes(33, 9, 5), o: { labelSmoothing: 0.1 } },
  { name: '2-D float32, weights, sum', x: () => logits([20, 6], 4, 'float32'), y: () => classes(20, 6, 3), o: { reduction: 'sum' as const, weight: [1, 2, 0.5, 1, 3, 0.25] } },
  { name: 'k-dim float64, none', x: () => logits([4, 5, 3, 2], 5), y: () => tensor(Array.from({ length: 24 }, (_, i) => i % 5), [4, 3, 2], 'int64'), o: { reduction: 'none' as const, labelSmoothing: 0.2 } },
  { name: 'probability targets', x: () => logits([7, 4], 6), y: () => { const p = logits([7, 4], 9); p.data = (p.data as Float64Array).map((v) => Math.abs(v)); return p; }, o: { labelSmoothing: 0.3 } },
  { name: 'bfloat16 (stays bfloat16 on the device)', x: () => logits([16, 5], 7, 'bfloat16'), y: () => classes(16, 5, 2), o: { labelSmoothing: 0.1 } },
];

describe('gradOnDevice', () => {
  for (const c of CASES) {
    it(`${c.name}: the handle holds the host path's gradient, bit for bit`, async () => {
      const x = c.x();
      const y = c.y();
      const host = crossEntropy(x, y, { ...c.o, grad: true });
      const before = liveDeviceTensors();
      for (const input of [x, toDevice(x, 'cpu')]) {
        const sync = crossEntropy(input, y, { ...c.o, grad: true, gradOnDevice: true });
        const asyncR = await crossEntropyAsync(input, y, { ...c.o, grad: true, gradOnDevice: true });
        for (const r of [sync, asyncR]) {
          expect(isDeviceTensor(r.grad)).toBe(true);
          const g = r.grad as DeviceTensor;
          expect(g.device).toBe('cpu');
          expect(g.shape).toEqual(x.shape);
          expect(g.dtype).toBe(x.dtype);
          const back = g.toCPU();
          sameBits(back.data as Float64Array, host.grad!.data);
          if (typeof host.loss === 'number') expect(Object.is(r.loss, host.loss)).toBe(true);
          else sameBits((r.loss as Tensor).data as Float64Array, host.loss.data);
          g.dispose();
        }
        if (isDeviceTensor(input)) (input as DeviceTensor).dispose();
      }
      expect(liveDeviceTensors()).toBe(before);
    });
  }

  it('a new handle each call, owned by the caller: disposing one leaves the other usable', () => {
    const x = logits([5, 3], 11);
    const y = classes(5, 3, 1);
    const a = crossEntropy(x, y, { grad: true, gradOnDevice: true }).grad;
    const b = crossEntropy(x, y, { grad: true, gradOnDevice: true }).grad;
    a.dispose();
    expect(a.disposed).toBe(true);
    expect(() => a.toCPU()).toThrow(/disposed/);
    expect(b.toCPU().data.length).toBe(15);
    // A gradient handle is an input like any other handle.
    expect(() => crossEntropy(b, y)).not.toThrow();
    b.dispose();
  });

  it('gradOnDevice: false (or absent) keeps the host gradient', () => {
    const x = logits([5, 3], 12);
    const y = classes(5, 3, 2);
    const r = crossEntropy(x, y, { grad: true, gradOnDevice: false });
    expect(isDeviceTensor(r.grad)).toBe(false);
    expect(r.grad!.data).toBeInstanceOf(Float64Array);
  });

  it('refuses what needs host memory, and wrong values, with typed errors naming gradOnDevice', async () => {
    const x = logits([5, 3], 13);
    const y = classes(5, 3, 2);
    const call = (o: object) => () => crossEntropy(x, y, o as never);
    expect(call({ gradOnDevice: 'yes', grad: true })).toThrow(TypeError);
    expect(call({ gradOnDevice: 'yes', grad: true })).toThrow(/gradOnDevice/);
    expect(call({ gradOnDevice: true })).toThrow(RangeError);
    expect(call({ gradOnDevice: true })).toThrow(/gradOnDevice was given but grad is/);
    expect(call({ gradOnDevice: true, grad: true, gradInto: new Float64Array(15) })).toThrow(/gradOnDevice.*gradInto/);
    expect(call({ gradOnDevice: true, grad: true, impl: 'fused' })).toThrow(/gradOnDevice.*fused/);
    expect(call({ gradOnDevice: true, grad: true, batchSize: 2 })).toThrow(/gradOnDevice.*batchSize/);
    await expect(crossEntropyAsync(x, y, { gradOnDevice: true, grad: true, impl: 'fused' } as never)).rejects.toThrow(RangeError);
    // Entry points that never hand a gradient back as a handle do not take it.
    expect(() => new LossAccumulator({ gradOnDevice: true } as never)).toThrow(/gradOnDevice/);
    expect(() => new Batcher({ grad: true, gradOnDevice: true } as never)).toThrow(/gradOnDevice/);
  });
});
