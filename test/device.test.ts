import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Batcher,
  checkDevice,
  crossEntropy,
  crossEntropyAsync,
  cudaAvailable,
  cudaDeviceCount,
  isDeviceTensor,
  LossAccumulator,
  liveDeviceTensors,
  tensor,
  toDevice,
  type Tensor,
} from '../lib/index';

function logits(n: number, C: number, seed = 1): Tensor {
  const d = new Float64Array(n * C);
  let s = seed;
  for (let i = 0; i < d.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    d[i] = (s / 2147483648 - 0.5) * 6;
  }
  return tensor(d, [n, C]);
}

const NO_CUDA = /no CUDA support|no CUDA GPU is visible/;

describe('devices without CUDA (this machine: CPU-only LibTorch)', () => {
  const hasCuda = cudaAvailable();

  it('reports no CUDA', () => {
    if (hasCuda) {
      expect(cudaDeviceCount()).toBeGreaterThan(0);
      return;
    }
    expect(cudaDeviceCount()).toBe(0);
  });

  it("device: 'cuda' throws a clear RangeError saying which, and the process lives on", async () => {
    if (hasCuda) return; // covered by scripts/gpu-check.sh on a GPU machine
    const x = logits(3, 4);
    const y = tensor([0, 1, 3], [3], 'int64');
    for (const device of ['cuda', 'cuda:0', 'cuda:3'] as const) {
      expect(() => crossEntropy(x, y, { device })).toThrow(RangeError);
      expect(() => crossEntropy(x, y, { device })).toThrow(NO_CUDA);
      await expect(crossEntropyAsync(x, y, { device })).rejects.toThrow(NO_CUDA);
      expect(() => toDevice(x, device)).toThrow(NO_CUDA);
      expect(() => checkDevice(device)).toThrow(NO_CUDA);
      expect(() => new LossAccumulator({ device })).toThrow(NO_CUDA);
      expect(() => new Batcher({ device })).toThrow(NO_CUDA);
      expect(() => crossEntropy(x, y, { device, batchSize: 1 })).toThrow(NO_CUDA);
    }
    // Still alive and computing.
    expect(crossEntropy(x, y).loss).toBeGreaterThan(0);
  });

  it('rejects malformed device strings before native code', () => {
    expect(() => checkDevice('gpu' as never)).toThrow(RangeError);
    expect(() => toDevice(logits(1, 2), 3 as never)).toThrow(TypeError);
    expect(() => crossEntropy(logits(1, 2), tensor([0], [1], 'int64'), { device: 'cuda:-1' })).toThrow(RangeError);
    expect(checkDevice('cpu')).toBe('cpu');
  });
});

describe('device tensor handles (toDevice on cpu)', () => {
  it('are accepted by crossEntropy as input and target, with the same results as host tensors', async () => {
    const x = logits(6, 5, 3);
    const y = tensor([0, 4, -100, 2, 2, 1], [6], 'int64');
    const hx = toDevice(x, 'cpu');
    const hy = toDevice(y, 'cpu');
    expect(isDeviceTensor(hx)).toBe(true);
    expect(isDeviceTensor(x)).toBe(false);
    expect(hx.shape).toEqual([6, 5]);
    expect(hx.dtype).toBe('float64');
    expect(hx.device).toBe('cpu');
    for (const options of [
      { grad: true, labelSmoothing: 0.1, weight: [1, 2, 3, 4, 5] },
      { reduction: 'sum' as const, grad: true },
      { reduction: 'none' as const },
      { batchSize: 2 }, // device tensors are used whole
    ]) {
      const want = crossEntropy(x, y, options);
      expect(crossEntropy(hx, hy, options)).toEqual(want);
      expect(crossEntropy(hx, y, options)).toEqual(want);
      expect(crossEntropy(x, hy, options)).toEqual(want);
      expect(await crossEntropyAsync(hx, hy, options)).toEqual(want);
    }
    hx.dispose();
    hy.dispose();
  });

  it('hold their own copy: later changes to the source do not change them', () => {
    const x = logits(2, 3);
    const y = tensor([1, 2], [2], 'int32');
    const want = crossEntropy(x, y).loss;
    const hx = toDevice(x);
    const hy = toDevice(y);
    (x.data as Float64Array).fill(0);
    (y.data as Int32Array).fill(0);
    expect(crossEntropy(hx, hy).loss).toBe(want);
  });

  it('validate targets against C in TypeScript, from a host copy (no native assert)', () => {
    const hx = toDevice(logits(3, 4));
    const bad = toDevice(tensor([0, 4, 1], [3], 'int64'));
    expect(() => crossEntropy(hx, bad)).toThrow(/Expected class indices in \[0, 4\).*target\[1\] is 4/);
    const ignored = toDevice(tensor([0, 7, 1], [3], 'int64'));
    expect(crossEntropy(hx, ignored, { ignoreIndex: 7 }).loss).toBeCloseTo(crossEntropy(logits(3, 4), tensor([0, 7, 1], [3], 'int64'), { ignoreIndex: 7 }).loss, 15);
  });

  it('probability targets, k-dim input and every dtype round-trip through toCPU()', () => {
    const x = tensor(Float64Array.from({ length: 24 }, (_, i) => Math.sin(i)), [2, 3, 4]);
    const p = tensor(Float64Array.from({ length: 24 }, (_, i) => (i % 3) / 3), [2, 3, 4]);
    expect(crossEntropy(toDevice(x), toDevice(p), { grad: true })).toEqual(crossEntropy(x, p, { grad: true }));
    const cases: Tensor[] = [
      x,
      tensor(Float32Array.from([1.5, -2, 3]), [3]),
      tensor(Int32Array.from([1, -100, 7]), [3]),
      tensor(BigInt64Array.from([1n, -(2n ** 40n)]), [2]),
      tensor(Uint8Array.from([0, 255]), [2]),
      tensor(new Float64Array(0), [0, 3]),
    ];
    for (const t of cases) expect(toDevice(t).toCPU()).toEqual(t);
    const bf = toDevice(tensor(Float32Array.from([1.1, 2]), [2], 'bfloat16')).toCPU();
    expect(bf.dtype).toBe('bfloat16');
    expect(Array.from(bf.data as Float32Array)).toEqual([1.1015625, 2]);
    const bx = tensor(Float32Array.from([0.3, -1.2, 2.5, 0.1, 0.7, -0.4]), [2, 3], 'bfloat16');
    const by = tensor([2, 0], [2], 'int64');
    expect(crossEntropy(toDevice(bx), by, { grad: true })).toEqual(crossEntropy(bx, by, { grad: true }));
  });

  it('dispose() is idempotent; use after dispose is a clear Error', async () => {
    const h = toDevice(logits(2, 3));
    const y = tensor([0, 1], [2], 'int64');
    const before = liveDeviceTensors();
    h.dispose();
    h.dispose();
    expect(h.disposed).toBe(true);
    expect(liveDeviceTensors()).toBe(before - 1);
    expect(() => crossEntropy(h, y)).toThrow(/input is a DeviceTensor that was disposed/);
    await expect(crossEntropyAsync(h, y)).rejects.toMatchObject({ code: 'ERR_SMOOTHCE_DISPOSED' });
    expect(() => h.toCPU()).toThrow(/disposed/);
    expect(() => new LossAccumulator().update(h, y)).toThrow(/disposed/);
  });

  it('an async call keeps its data alive when the handle is disposed meanwhile', async () => {
    const x = logits(64, 50, 9);
    const y = tensor(Array.from({ length: 64 }, (_, i) => i % 50), [64], 'int64');
    const h = toDevice(x);
    const pending = crossEntropyAsync(h, y, { grad: true });
    h.dispose();
    expect(await pending).toEqual(crossEntropy(x, y, { grad: true }));
  });

  it('refuses to mix devices silently', () => {
    const h = toDevice(logits(2, 3));
    expect(() => crossEntropy(h, tensor([0, 1], [2], 'int64'), { device: 'cuda' })).toThrow(/DeviceTensor on 'cpu' but the call runs on 'cuda'/);
  });

  it('the Batcher asks for host tensors', async () => {
    const b = new Batcher();
    await expect(b.score(toDevice(logits(1, 3)) as unknown as Tensor, tensor([0], [1], 'int64'))).rejects.toThrow(TypeError);
    await b.close();
  });

  it('are freed when garbage-collected', () => {
    const addon = path.resolve(__dirname, '../build/Release/smoothce.node');
    const script = `
      const b = require(${JSON.stringify(addon)});
      const base = b.liveDeviceTensors();
      (function () {
        for (let i = 0; i < 50; i++) new b.DeviceTensor({ data: new Float64Array(1 << 16), shape: [1 << 16], dtype: 'float64' }, 'cpu');
      })();
      const made = b.liveDeviceTensors() - base;
      const wait = () => new Promise((r) => setImmediate(r));
      (async () => {
        for (let i = 0; i < 10 && b.liveDeviceTensors() > base; i++) { globalThis.gc(); await wait(); }
        console.log(JSON.stringify({ made, left: b.liveDeviceTensors() - base }));
      })();`;
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' }));
    expect(out).toEqual({ made: 50, left: 0 });
  });
});
