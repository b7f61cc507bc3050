'use strict';
/**
 * One Node.js measurement for bench/run.js (run with --expose-gc, one process per case so
 * that peak RSS belongs to that case). argv[2]: JSON
 *   { kind: 'aten' | 'fused' | 'fused-inplace' | 'floor' | 'tfjs', async, n, c, threads, reps, eps, seed,
 *     hugePageAten }, { kind: 'first-loop' | 'async-first', impl, ... } or { kind: 'scaling', n, c, reps, eps, seed }
 * Prints one JSON line: { fwd: [s...], fwdGrad: [s...], rssBaseMB, peakFwdMB, peakGradMB }, or
 * for 'scaling' { scaling: { <metric>: { t1: [s...], t2: [s...] } } } (see scaling() below).
 * A gc() runs before every timed call (outside the timing), so each call starts from the
 * same heap and peak RSS is one call's; times are of the public API (smoothce) or of the
 * library's own calls (tfjs), including allocation of every output.
 */
const path = require('node:path');

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const mb = (bytes) => bytes / 2 ** 20;
const rssMB = () => mb(process.memoryUsage.rss());
const maxRssMB = () => process.resourceUsage().maxRSS / 1024;

// gc(), then one turn of the event loop: N-API runs the finalizers of external
// ArrayBuffers (the outputs of the previous call) from there, not inside gc().
async function collect() {
  for (let i = 0; i < 2; i++) {
    global.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

// Large calls: one call per sample, each after collect(). Small calls (where a gc() would
// cost more than the call and evict its caches): a sample is a batch of back-to-back calls,
// reported per call.
// `wake`: an untimed call right before each timed sample (the same size's forward pass,
// which allocates no large output): after gc() and the idle event-loop turns the CPU and
// the second thread's core are asleep, while PyTorch's timed calls follow each other
// back to back (its OpenMP threads still spinning). Without it a 1024×32000 two-thread
// forward+gradient call measured 26 ms here against 18.6 ms back to back.
async function measure(fn, reps, warmup, isAsync, batch, wake) {
  for (let i = 0; i < warmup; i++) {
    await collect();
    for (let k = 0; k < batch; k++) {
      if (isAsync) await fn();
      else fn();
    }
  }
  const times = [];
  for (let i = 0; i < reps; i++) {
    await collect();
    if (wake) await wake();
    const s = process.hrtime.bigint();
    for (let k = 0; k < batch; k++) {
      if (isAsync) await fn();
      else fn();
    }
    times.push(Number(process.hrtime.bigint() - s) / 1e9 / batch);
  }
  return times;
}

// 'first-loop' (impl 'fused' or 'aten'): a fresh process (the package required, the inputs
// made, nothing else called) makes 20 forward+gradient calls back to back in one
// synchronous loop that never yields, as a short script or a training loop written
// without await runs: no result's finalizer runs, so past the external-buffer cap every
// gradient is a fresh V8-owned buffer (binding/memory/allocator.h). Every call is timed; call 1 is
// the process's first call.
function loop(fn, calls = 20) {
  return Array.from({ length: calls }, () => time(fn));
}

// 'async-first': the time the JavaScript thread spends inside the first few
// crossEntropyAsync calls of a fresh process (each awaited before the next), i.e. how long
// the call blocks the event loop while it snapshots its inputs; and the event loop's
// largest delay over those calls (a 1 ms interval timer).
async function asyncFirst(call, calls = 5) {
  const blocked = [];
  let last = process.hrtime.bigint(), lag = 0;
  const timer = setInterval(() => {
    const now = process.hrtime.bigint();
    lag = Math.max(lag, Number(now - last) / 1e9 - 1e-3);
    last = now;
  }, 1);
  for (let i = 0; i < calls; i++) {
    const s = process.hrtime.bigint();
    const p = call();
    blocked.push(Number(process.hrtime.bigint() - s) / 1e9);
    await p;
  }
  clearInterval(timer);
  return { blocked, lag };
}

// Seconds one synchronous call of fn takes.
function time(fn) {
  const s = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - s) / 1e9;
}

// Thread scaling with the two thread counts' samples interleaved in one process: 1 and 2
// threads alternate (1,2 then 2,1, ...) sample by sample, so a slow spell of this shared VM
// (minutes long, up to 2x) lands on both counts instead of on whichever ran in it. Each
// metric gets an untimed call of its own right before its timed one. Metrics: the fused
// forward and forward+gradient calls (as in the 'fused' case), the read and read+write
// floors, and a compute floor (register-only multiply-adds, no memory traffic, sized to
// take about as long as one single-thread forward call), which shows how much a second
// thread can give at all on this machine at that moment.
async function scaling(cfg, sc, native, x, input, target) {
  const y = new Float32Array(x.length);
  y.fill(0); // fault it in
  const fwd = () => sc.crossEntropy(input, target, { labelSmoothing: cfg.eps, impl: 'fused' });
  const fwdGrad = () => sc.crossEntropy(input, target, { labelSmoothing: cfg.eps, impl: 'fused', grad: true });
  native().setNumThreads(1);
  fwd();
  fwdGrad(); // the first gradient buffer's pages are faulted in here, not in a timed call
  const fwdOnce = Math.min(time(fwd), time(fwd), time(fwd));
  const perUnit = Math.min(time(() => native().computeFloor(64)), time(() => native().computeFloor(64))) / 64;
  const units = Math.max(16, Math.min(1e7, Math.round(fwdOnce / perUnit)));
  const metrics = {
    fwd: [fwd, fwd],
    fwdGrad: [fwdGrad, fwd],
    floorRead: [() => native().memoryFloor(x), () => native().memoryFloor(x)],
    floorReadWrite: [() => native().memoryFloor(x, y), () => native().memoryFloor(x, y)],
    compute: [() => native().computeFloor(units), () => native().computeFloor(units)],
  };
  const out = {};
  for (const k of Object.keys(metrics)) out[k] = { t1: [], t2: [] };
  for (let i = 0; i < cfg.reps; i++) {
    for (const t of i % 2 ? [2, 1] : [1, 2]) {
      native().setNumThreads(t);
      // A changed count makes ATen re-create its pthreadpool, whose new worker spins for
      // about 30 ms: let it go to sleep before timing anything.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60);
      for (const [k, [fn, warm]] of Object.entries(metrics)) {
        await collect();
        warm();
        out[k][`t${t}`].push(time(fn));
      }
    }
  }
  return { scaling: out, computeUnits: units };
}

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const { n, c, reps, eps } = cfg;
  const r = rng(cfg.seed);
  const x = new Float32Array(n * c);
  for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * 8;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = Math.floor(r() * c);
  const out = {};
  let fwd, fwdGrad, isAsync = !!cfg.async;

  if (cfg.kind === 'tfjs') {
    // The @tensorflow/tfjs bundle (tfjs-core with its gradients registered) + the wasm backend.
    const tf = require('@tensorflow/tfjs/dist/tf.node.js');
    require('@tensorflow/tfjs-backend-wasm');
    await tf.setBackend('wasm');
    await tf.ready();
    out.tfjsThreads = 1;
    out.tfjsBackend = tf.getBackend(); // tfjs-backend-wasm runs single-threaded under Node.js
    const logits = tf.tensor2d(x, [n, c]);
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), c);
    const loss = (l) => tf.losses.softmaxCrossEntropy(onehot, l, undefined, eps, tf.Reduction.MEAN);
    const g = tf.grad(loss);
    fwd = () => tf.tidy(() => loss(logits).dataSync());
    fwdGrad = () => tf.tidy(() => {
      // value and gradient, as a training step needs both
      const { value, grad } = tf.valueAndGrad(loss)(logits);
      value.dataSync();
      grad.dataSync();
    });
    void g;
  } else {
    // The floors (memoryFloor, computeFloor) are in the test addon only (binding/testing/): the
    // cases that use them load it as the addon (the same objects as smoothce.node, plus the hooks).
    if (cfg.kind === 'floor' || cfg.kind === 'scaling') process.env.SMOOTHCE_NATIVE ||= path.join(__dirname, '..', 'build', 'Testing', 'smoothce_testing.node');
    const sc = require(path.join(__dirname, '..'));
    const { native } = require(path.join(__dirname, '..', 'dist', 'core', 'native.js'));
    native().setNumThreads(cfg.threads);
    if (cfg.hugePageAten !== undefined) native().hugePageAllocator(!!cfg.hugePageAten);
    out.hugePageAten = native().hugePageAllocator();
    const input = sc.tensor(x, [n, c]);
    const target = sc.tensor(BigInt64Array.from(labels, (v) => BigInt(v)), [n]);
    if (cfg.kind === 'scaling') {
      process.stdout.write(JSON.stringify(await scaling(cfg, sc, native, x, input, target)) + '\n');
      return;
    }
    if (cfg.kind === 'first-loop') {
      const base = rssMB();
      const fwdGrad = loop(() => sc.crossEntropy(input, target, { labelSmoothing: cfg.eps, impl: cfg.impl, grad: true }));
      process.stdout.write(JSON.stringify({ fwd: [], fwdGrad, first: [fwdGrad[0]], rssBaseMB: base, peakFwdMB: undefined, peakGradMB: maxRssMB() - base, hugePageAten: out.hugePageAten }) + '\n');
      return;
    }
    if (cfg.kind === 'async-first') {
      const r = await asyncFirst(() => sc.crossEntropyAsync(input, target, { labelSmoothing: cfg.eps, impl: cfg.impl, grad: true }));
      process.stdout.write(JSON.stringify({ fwd: [], fwdGrad: [], blocked: r.blocked, firstBlocked: [r.blocked[0]], lag: [r.lag], hugePageAten: out.hugePageAten }) + '\n');
      return;
    }
    if (cfg.kind === 'floor') {
      const y = new Float32Array(n * c);
      fwd = () => native().memoryFloor(x);
      fwdGrad = () => native().memoryFloor(x, y);
      isAsync = false;
    } else {
      const impl = cfg.kind === 'aten' ? 'aten' : 'fused';
      const call = isAsync ? sc.crossEntropyAsync : sc.crossEntropy;
      fwd = () => call(input, target, { labelSmoothing: eps, impl });
      const gOpts = { labelSmoothing: eps, impl, grad: true };
      if (cfg.kind === 'fused-inplace') gOpts.gradInto = x;
      fwdGrad = () => call(input, target, gOpts);
    }
  }
  await collect();
  out.rssBaseMB = rssMB();
  const base = out.rssBaseMB;
  // Calls of fewer than ~10^6 logits are timed back to back in batches (the same rule as
  // bench/torch_case.py): a lone mid-size call right after gc() and an idle event-loop turn
  // also measures the CPU waking up (256×1000 fused: ~190 µs back to back, ~300–500 µs alone).
  const batch = Math.max(1, Math.min(1000, Math.floor(1e6 / (n * c))));
  out.batch = batch;
  out.fwd = await measure(fwd, reps, cfg.warmup ?? 2, isAsync, batch, fwd);
  out.peakFwdMB = maxRssMB() - base;
  out.fwdGrad = await measure(fwdGrad, reps, cfg.warmup ?? 2, isAsync, batch, fwd);
  out.peakGradMB = maxRssMB() - base;
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
