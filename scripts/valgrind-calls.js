'use strict';
// A few calls of every native entry point, for scripts/valgrind.sh: sync and async losses
// (gradients, weights, probability targets, 'none', k-dim, int32 targets, bfloat16), errors
// raised in native code, the fused kernel (short and multi-chunk rows), device handles (disposed and collected),
// calibration, a worker thread that loads and unloads the addon, then a full GC so that
// every result's external memory is released before the leak check.
const path = require('node:path');
const fs = require('node:fs');
const { Worker } = require('node:worker_threads');
const root = path.resolve(__dirname, '..');
const { load } = require(path.join(root, 'fuzz', 'load.js'));
const { api, native } = load(fs.existsSync(path.join(root, 'dist', 'index.js')) ? 'dist' : 'lib');

const T = (data, shape, dtype) => ({ data, shape, dtype });
const x = api.tensor(Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)), [4, 6]);
const x64 = api.tensor(Float64Array.from({ length: 24 }, (_, i) => Math.cos(i)), [4, 6]);
const t = api.tensor(new BigInt64Array([0n, 5n, -100n, 2n]), [4]);
const t32 = api.tensor(new Int32Array([1, 2, 3, 4]), [4]);
const probs = api.tensor(new Float32Array(24).fill(1 / 6), [4, 6]);
const tryIt = (f) => {
  try {
    return f();
  } catch (e) {
    return e;
  }
};

async function main() {
  const out = [];
  out.push(api.crossEntropy(x, t, { labelSmoothing: 0.1 }));
  out.push(api.crossEntropy(x64, t32, { labelSmoothing: 0.2, reduction: 'none', grad: true, weight: [1, 2, 3, 4, 5, 6] }));
  out.push(api.crossEntropy(x, probs, { labelSmoothing: 0.3, reduction: 'sum', grad: true, gradOutput: 2 }));
  out.push(api.crossEntropy(api.tensor(new Float32Array(48), [2, 6, 4]), api.tensor(new BigInt64Array(8), [2, 4]), { grad: true }));
  out.push(api.crossEntropy(api.tensor(new Float32Array(24), [4, 6], 'bfloat16'), t, { grad: true }));
  out.push(await api.crossEntropyAsync(x, t, { labelSmoothing: 0.1, grad: true }));
  out.push(await Promise.all([1, 2, 3].map(() => api.crossEntropyAsync(x64, t32, { reduction: 'none', grad: true }))));
  // Errors thrown inside ATen and turned into JS errors (the choke point), sync and async.
  const args = (target) => ({ input: x, target, weight: null, reduction: 1, ignoreIndex: -100n, labelSmoothing: 0, grad: true, gradOutput: 1, device: 'cpu' });
  out.push(tryIt(() => native.crossEntropy(args(T(new BigInt64Array([9n, 0n, 0n, 0n]), [4], 'int64')), false)));
  out.push(await native.crossEntropy(args(T(new BigInt64Array([9n, 0n, 0n, 0n]), [4], 'int64')), true).catch((e) => e));
  out.push(tryIt(() => api.crossEntropy(x, t, { device: 'cuda' })));
  out.push(tryIt(() => api.crossEntropy(x, t, { labelSmoothing: 2 })));
  if (native.crossEntropyFused) {
    out.push(tryIt(() => native.crossEntropyFused(args(t), false)));
    out.push(await Promise.resolve(tryIt(() => native.crossEntropyFused(args(t), true))).catch((e) => e));
    if (native.fusedIsa) out.push(native.fusedIsa());
    // The chunked row pass (rows of several 8 KiB chunks): a −inf chunk, NaN and +inf rows
    // (the gradient of a poisoned row is filled, never read uninitialised), fresh and in place.
    const C = 5000;
    const long = Float32Array.from({ length: 4 * C }, (_, i) => (i < 2500 ? -Infinity : Math.sin(i)));
    long[C + 4000] = NaN;
    long[2 * C + 2600] = Infinity;
    const lt = api.tensor(new BigInt64Array([3000n, 7n, 9n, -100n]), [4]);
    out.push(api.crossEntropy(api.tensor(long, [4, C]), lt, { impl: 'fused', labelSmoothing: 0.1, reduction: 'none', grad: true }));
    out.push(api.crossEntropy(api.tensor(Float64Array.from(long), [4, C]), lt, { impl: 'fused', grad: true }));
    const copy = long.slice();
    out.push(api.crossEntropy(api.tensor(copy, [4, C]), lt, { impl: 'fused', labelSmoothing: 0.2, grad: true, gradInto: copy }));
    // Weighted rows take the same chunked pass (with zero weights, some on −inf logits).
    const weight = Float32Array.from({ length: C }, (_, j) => (j % 5 ? 0.5 + (j % 3) : 0));
    out.push(api.crossEntropy(api.tensor(long, [4, C]), lt, { impl: 'fused', labelSmoothing: 0.1, weight, reduction: 'none', grad: true }));
    // Probability targets take the same chunked pass (targets read as a second stream; the
    // row's last vector padded), with and without weights, fresh and in place.
    const probLong = Float32Array.from({ length: 4 * C }, (_, i) => (i % 4 ? 0 : 1 / 1250));
    const pl = api.tensor(probLong, [4, C]);
    out.push(api.crossEntropy(api.tensor(long, [4, C]), pl, { impl: 'fused', labelSmoothing: 0.1, weight, reduction: 'none', grad: true }));
    out.push(api.crossEntropy(api.tensor(Float64Array.from(long), [4, C]), api.tensor(Float64Array.from(probLong), [4, C]), { impl: 'fused', grad: true }));
    const copy2 = long.slice();
    out.push(api.crossEntropy(api.tensor(copy2, [4, C]), pl, { impl: 'fused', labelSmoothing: 0.2, grad: true, gradInto: copy2 }));
    // Non-finite upstream gradients (the generic row path, which reads the logits: in place
    // too), a one-class input, and an async snapshot large enough to be split over threads.
    const copy3 = long.slice();
    out.push(api.crossEntropy(api.tensor(copy3, [4, C]), lt, { impl: 'fused', labelSmoothing: 0.1, grad: true, gradInto: copy3, reduction: 'sum', gradOutput: Infinity }));
    out.push(api.crossEntropy(api.tensor(long, [4, C]), pl, { impl: 'fused', grad: true, reduction: 'none', gradOutput: api.tensor(Float32Array.of(NaN, 1, -Infinity, 2), [4]) }));
    out.push(api.crossEntropy(api.tensor(Float32Array.of(1, -Infinity, 3), [3, 1]), api.tensor(new BigInt64Array(3), [3]), { impl: 'fused', grad: true, labelSmoothing: 0.5 }));
    api.setNumThreads(2);
    out.push(await api.crossEntropyAsync(api.tensor(new Float32Array(1100 * 1000).fill(0.25), [1100, 1000]), api.tensor(new Int32Array(1100), [1100]), { impl: 'fused', grad: true }));
    api.setNumThreads(1);
    // A probability target with a weight of the wrong shape: ATen's error, nothing read past it.
    const pt = { data: new Float32Array(12).fill(0.25), shape: [3, 4], dtype: 'float32' };
    out.push(tryIt(() => native.crossEntropyFused({ ...args(pt), input: { data: new Float32Array(12), shape: [3, 4], dtype: 'float32' }, weight: { data: new Float32Array(0), shape: [5, 0], dtype: 'float32' } }, false)));
    if (native.memoryFloor) out.push(native.memoryFloor(new Float32Array(1024)), native.memoryFloor(new Float64Array(64), new Float64Array(64)));
  }
  if (api.toDevice) {
    const h = api.toDevice(x, 'cpu');
    out.push(api.crossEntropy(h, t), await api.crossEntropyAsync(h, t, { grad: true }), h.toCPU());
    h.dispose();
    h.dispose();
    out.push(tryIt(() => h.toCPU()));
    api.toDevice(t, 'cpu'); // left to the garbage collector
    // gradOnDevice: a handle made natively around the gradient (sync and async), one
    // disposed and one left to the garbage collector.
    const g1 = api.crossEntropy(x, t, { grad: true, gradOnDevice: true }).grad;
    const g2 = (await api.crossEntropyAsync(x, t, { grad: true, gradOnDevice: true, labelSmoothing: 0.1 })).grad;
    out.push(g1.toCPU(), g2.toCPU(), tryIt(() => api.crossEntropy(x, t, { gradOnDevice: true })));
    g1.dispose();
  }
  if (api.calibration) {
    out.push(tryIt(() => api.calibration.ece(probs, t32)));
    out.push(tryIt(() => api.calibration.report(x, t32, { from: 'logits' })));
    out.push(tryIt(() => api.calibration.fitTemperature(x, t32)));
  }
  if (api.LossAccumulator) {
    out.push(tryIt(() => {
      const acc = new api.LossAccumulator({ labelSmoothing: 0.1 });
      acc.add(x, t);
      return acc.result ? acc.result() : acc;
    }));
  }
  if (native.distAvailable) out.push(native.distAvailable());
  out.push(api.torchVersion(), api.cudaAvailable(), api.cudaDeviceCount());
  // A worker thread loads the addon, computes, and exits (unloading its instance).
  await new Promise((resolve, reject) => {
    const w = new Worker(
      `const { load } = require(${JSON.stringify(path.join(root, 'fuzz', 'load.js'))});
       const { api } = load(${JSON.stringify(fs.existsSync(path.join(root, 'dist', 'index.js')) ? 'dist' : 'lib')});
       const x = api.tensor(new Float32Array(12), [2, 6]);
       api.crossEntropyAsync(x, api.tensor(new BigInt64Array(2), [2]), { grad: true }).then(() => require('node:worker_threads').parentPort.postMessage('ok'));`,
      { eval: true },
    );
    w.once('message', () => w.terminate().then(resolve));
    w.once('error', reject);
  });
  out.length = 0;
  for (let i = 0; i < 4; i++) global.gc();
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 4; i++) global.gc();
  process.stdout.write('valgrind-calls: done\n');
}
main().catch((e) => {
  process.stderr.write(String((e && e.stack) || e) + '\n');
  process.exit(1);
});
