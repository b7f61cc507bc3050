/**
 * Lifetimes of the caller's memory during async calls (and of device handles).
 *
 * crossEntropyAsync (and the binding's async path) copies inputs backed by an ordinary
 * ArrayBuffer when the call starts (binding/napi/tensor_view.cc, read_tensor's snapshot), so the
 * caller may detach (transfer), mutate, resize or drop its buffers while the call is in
 * flight: the result is the one for the values at call time. SharedArrayBuffer-backed
 * inputs are read in place (no copy; a SharedArrayBuffer cannot be detached, and the call
 * pins it): the caller must not write them until the promise settles.
 *
 * Large buffers (64 MiB) are used where freed memory would be unmapped, so a read after free
 * would fault rather than read stale values; the drop-every-reference cases run in a child
 * process with --expose-gc and glibc told to unmap every freed block of 64 KiB or more.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { crossEntropy, crossEntropyAsync, tensor, toDevice, type CrossEntropyResult, type Tensor } from '../lib/index';
import { native } from '../lib/core/native';

const root = path.resolve(__dirname, '..');
const N = 262_144;
const C = 64; // N * C float32 = 64 MiB
const OPTIONS = { labelSmoothing: 0.1, grad: true } as const;

function logits(n = N, c = C, buffer?: ArrayBufferLike): Float32Array {
  const x = buffer ? new Float32Array(buffer) : new Float32Array(n * c);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 3;
  return x;
}

function labels(n = N, c = C, buffer?: ArrayBufferLike): BigInt64Array {
  const t = buffer ? new BigInt64Array(buffer) : new BigInt64Array(n);
  for (let i = 0; i < t.length; i++) t[i] = BigInt((i * 7) % c);
  return t;
}

/** Detaches `buffer` as postMessage's transfer list does. */
function transfer(buffer: ArrayBufferLike): void {
  structuredClone(buffer, { transfer: [buffer as ArrayBuffer] });
}

/** The result for untouched copies of the same values, through the same (async) path. */
let expectedCache: CrossEntropyResult | undefined;
async function expected(): Promise<CrossEntropyResult> {
  expectedCache ??= await crossEntropyAsync(tensor(logits(), [N, C]), tensor(labels(), [N]), OPTIONS);
  return expectedCache;
}

function expectSame(got: CrossEntropyResult, want: CrossEntropyResult): void {
  expect(got.loss).toBe(want.loss);
  expect(Number.isFinite(got.loss as number)).toBe(true);
  expect(Buffer.from(got.grad!.data.buffer, got.grad!.data.byteOffset, got.grad!.data.byteLength).equals(
    Buffer.from(want.grad!.data.buffer, want.grad!.data.byteOffset, want.grad!.data.byteLength),
  )).toBe(true);
}

describe('async calls survive what the caller does to its buffers while they run', () => {
  it('input and target transferred away (structuredClone with transfer) right after the call', async () => {
    const x = logits();
    const t = labels();
    const pending = crossEntropyAsync(tensor(x, [N, C]), tensor(t, [N]), OPTIONS);
    transfer(x.buffer);
    transfer(t.buffer);
    expect(x.length).toBe(0); // detached
    expectSame(await pending, await expected());
  });

  it('input posted to a worker_thread with its buffer in the transfer list', async () => {
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       parentPort.once('message', (x) => { let s = 0; for (let i = 0; i < x.length; i += 4096) s += x[i]; parentPort.postMessage(s); });`,
      { eval: true },
    );
    try {
      const x = logits();
      let s = 0;
      for (let i = 0; i < x.length; i += 4096) s += x[i];
      const pending = crossEntropyAsync(tensor(x, [N, C]), tensor(labels(), [N]), OPTIONS);
      const echoed = new Promise((resolve) => worker.once('message', resolve));
      worker.postMessage(x, [x.buffer as ArrayBuffer]);
      expect(x.length).toBe(0);
      expectSame(await pending, await expected());
      expect(await echoed).toBe(s); // the worker got the values intact
    } finally {
      await worker.terminate();
    }
  });

  it('input and target overwritten while the call runs', async () => {
    const x = logits();
    const t = labels();
    const pending = crossEntropyAsync(tensor(x, [N, C]), tensor(t, [N]), OPTIONS);
    x.fill(1e30);
    t.fill(BigInt(C + 5)); // out of range: would fail if read now
    expectSame(await pending, await expected());
  });

  it('a resizable ArrayBuffer shrunk to zero while the call runs', async () => {
    // Resizable ArrayBuffers are ES2024 (Node 20 has them; the TypeScript lib here is ES2022).
    const ab = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void })(
      N * C * 4,
      { maxByteLength: N * C * 4 },
    );
    const x = logits(N, C, ab); // length-tracking view
    const pending = crossEntropyAsync(tensor(x, [N, C]), tensor(labels(), [N]), OPTIONS);
    ab.resize(0);
    expect(x.length).toBe(0);
    expectSame(await pending, await expected());
  });

  it('the binding directly: transfer after an async call; sync and async see the same values', async () => {
    const x = logits(512, 10);
    const args = (data: Float32Array) => ({
      input: { data, shape: [512, 10], dtype: 'float32' as const },
      target: { data: labels(512, 10), shape: [512], dtype: 'int64' as const },
      weight: null,
      reduction: 1 as const,
      ignoreIndex: -100n,
      labelSmoothing: 0.2,
      grad: false,
      gradOutput: null,
      device: 'cpu',
    });
    // The binding returns a 'mean'/'sum' loss as a plain number.
    const want = native().crossEntropy(args(x.slice()), false).loss;
    expect(typeof want).toBe('number');
    const pending = native().crossEntropy(args(x), true);
    transfer(x.buffer);
    expect((await pending).loss).toBe(want);
  });

  it('a getter that detaches an earlier argument while the binding reads them: an error, not a read of freed memory', async () => {
    for (const async of [false, true]) {
      const x = logits(); // 64 MiB: freed memory is unmapped
      const args = {
        input: { data: x, shape: [N, C], dtype: 'float32' },
        weight: null,
        reduction: 1,
        ignoreIndex: -100n,
        labelSmoothing: 0,
        grad: false,
        gradOutput: null,
        device: 'cpu',
      };
      Object.defineProperty(args, 'target', {
        enumerable: true,
        get() {
          transfer(x.buffer);
          return { data: labels(), shape: [N], dtype: 'int64' };
        },
      });
      if (async) {
        // Async calls copy each input as it is read: the copy was made before the getter ran.
        const r = await (native().crossEntropy as (a: unknown, b: boolean) => Promise<{ loss: number }>)(args, true);
        expect(Number.isFinite(r.loss)).toBe(true);
        continue;
      }
      expect(() => (native().crossEntropy as (a: unknown, b: boolean) => unknown)(args, false)).toThrow(
        /ArrayBuffer of input\.data was detached or resized while the arguments were being read/,
      );
    }
  });
});

describe('SharedArrayBuffer-backed inputs (read in place, pinned)', () => {
  it('give the same result, are never written, and cannot be detached', async () => {
    const xs = logits(N, C, new SharedArrayBuffer(N * C * 4));
    const ts = labels(N, C, new SharedArrayBuffer(N * 8));
    const before = Buffer.from(new Uint8Array(xs.buffer)).subarray(0, 1 << 20).toString('base64');
    const r = await crossEntropyAsync(tensor(xs, [N, C]), tensor(ts, [N]), OPTIONS);
    expectSame(r, await expected());
    expect(Buffer.from(new Uint8Array(xs.buffer)).subarray(0, 1 << 20).toString('base64')).toBe(before);
    // Transfer is refused for a SharedArrayBuffer: the memory stays where the call reads it.
    expect(() => structuredClone(xs.buffer, { transfer: [xs.buffer as unknown as ArrayBuffer] })).toThrow();
    expect(xs.length).toBe(N * C);
    // Sync calls read it in place too.
    expect(crossEntropy(tensor(xs, [N, C]), tensor(ts, [N]), OPTIONS).loss).toBe(r.loss);
  });
});

// Every reference dropped and collected while the call is in flight, then the freed memory
// churned with other values: runs in a child with --expose-gc.
const DROP_SCRIPT = `
const { load } = require(${JSON.stringify(path.join(root, 'fuzz', 'load.js'))});
const { api, native } = load('lib');
const N = ${N}, C = ${C};
const OPTIONS = { labelSmoothing: 0.1, grad: true };
function make(shared) {
  const x = new Float32Array(shared ? new SharedArrayBuffer(N * C * 4) : N * C);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 3;
  const t = new BigInt64Array(shared ? new SharedArrayBuffer(N * 8) : N);
  for (let i = 0; i < N; i++) t[i] = BigInt((i * 7) % C);
  return [api.tensor(x, [N, C]), api.tensor(t, [N])];
}
function same(a, b) {
  return a.loss === b.loss && Buffer.from(a.grad.data.buffer, a.grad.data.byteOffset, a.grad.data.byteLength)
    .equals(Buffer.from(b.grad.data.buffer, b.grad.data.byteOffset, b.grad.data.byteLength));
}
(async () => {
  const want = await api.crossEntropyAsync(...make(false), OPTIONS);
  const out = {};
  for (const mode of ['api', 'api-shared', 'native']) {
    let [x, t] = make(mode === 'api-shared');
    let pending;
    if (mode === 'native') {
      let args = { input: x, target: t, weight: null, reduction: 1, ignoreIndex: -100n, labelSmoothing: 0.1, grad: true, gradOutput: 1, device: 'cpu' };
      pending = native.crossEntropy(args, true).then((r) => ({ loss: r.loss, grad: r.grad }));
      args = null;
    } else {
      pending = api.crossEntropyAsync(x, t, OPTIONS);
    }
    x = t = null;
    for (let k = 0; k < 3; k++) global.gc();
    const churn = [];
    for (let k = 0; k < 3; k++) churn.push(new Float32Array(N * C).fill(1e30));
    out[mode] = same(await pending, want);
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
`;

describe('every reference dropped and collected while the call runs (child process, --expose-gc)', () => {
  it('api, api with SharedArrayBuffer inputs, and the binding all return the untouched result', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', DROP_SCRIPT], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '65536', MALLOC_PERTURB_: '165' },
      timeout: 120_000,
    });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ api: true, 'api-shared': true, native: true });
  });
});

describe('device handles survive misuse', () => {
  const x = (): Tensor => tensor(logits(64, 5), [64, 5]);
  const t = (): Tensor => tensor(labels(64, 5), [64]);

  it('dispose twice is fine; use after dispose is a clear error', () => {
    const h = toDevice(x(), 'cpu');
    h.dispose();
    expect(() => h.dispose()).not.toThrow();
    expect(h.disposed).toBe(true);
    expect(() => h.toCPU()).toThrow(/disposed/);
    expect(() => crossEntropy(h as unknown as Tensor, t())).toThrow(/disposed/);
    return expect(crossEntropyAsync(h as unknown as Tensor, t())).rejects.toThrow(/disposed/);
  });

  it('disposing a handle while an async call that reads it is in flight does not change the result', async () => {
    const want = crossEntropy(x(), t(), OPTIONS);
    const h = toDevice(x(), 'cpu');
    const pending = crossEntropyAsync(h as unknown as Tensor, t(), OPTIONS);
    h.dispose();
    const got = await pending;
    expect(got.loss).toBeCloseTo(want.loss as number, 6);
    expect(Array.from(got.grad!.data)).toEqual(Array.from(want.grad!.data));
  });
});

describe('result buffers', () => {
  // In a child process: whether a large result is external depends on how many external
  // bytes earlier calls left unfinalized (binding/memory/allocator.h), so start from none.
  it('a result buffer can be transferred: the receiver gets the values (small results are plain buffers, large ones external)', () => {
    const script = `
      const sc = require(${JSON.stringify(root)});
      const out = [];
      for (const rows of [64, 32768]) {
        const x = new Float32Array(rows * 5).map((_, i) => Math.sin(i));
        const y = BigInt64Array.from({ length: rows }, (_, i) => BigInt(i % 5));
        const r = sc.crossEntropy(sc.tensor(x, [rows, 5]), sc.tensor(y, [rows]), { reduction: 'none', grad: true });
        const before = Array.from(r.loss.data);
        const copy = structuredClone(r.loss.data.buffer, { transfer: [r.loss.data.buffer] });
        out.push({ rows, bytes: copy.byteLength, same: JSON.stringify(Array.from(new Float32Array(copy))) === JSON.stringify(before), left: r.loss.data.length });
      }
      process.stdout.write(JSON.stringify(out));
    `;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    for (const { rows, bytes, same, left } of JSON.parse(r.stdout) as { rows: number; bytes: number; same: boolean; left: number }[]) {
      expect(bytes).toBe(rows * 4);
      expect(same).toBe(true);
      // A plain buffer is detached by the transfer; an external one (past 64 KiB) is copied and stays readable.
      expect(left).toBe(rows * 4 > 64 * 1024 ? rows : 0);
    }
  });
});
