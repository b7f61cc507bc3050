'use strict';
// Child process for test/aten-fast.test.ts ("row blocks"): random 2-D calls large enough for
// the ATen path's row blocks (binding/aten/cross_entropy.cc, RowBlocks), each made twice, normally
// and with SMOOTHCE_ATEN_REFERENCE=1 (at::cross_entropy_loss + autograd). Prints one JSON line:
// { calls, blocked, failures }. The block size (SMOOTHCE_ATEN_BLOCK_KB) and the thread count
// come from the environment the test gives it.
const path = require('node:path');
const root = path.join(__dirname, '..', '..');
// atenPathCounts is in the test addon only (binding/testing/); the test passes it in SMOOTHCE_NATIVE.
process.env.SMOOTHCE_NATIVE ||= path.join(root, 'build', 'Testing', 'smoothce_testing.node');
const { crossEntropy, tensor, setNumThreads } = require(path.join(root, 'dist', 'index.js'));
const { native } = require(path.join(root, 'dist', 'core', 'native.js'));

const seeds = Number(process.argv[2] || 60);
const firstSeed = Number(process.argv[3] || 1);
if (process.env.CHECK_THREADS) setNumThreads(Number(process.env.CHECK_THREADS));

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

function randomCall(seed) {
  const r = rng(seed * 7919 + 17);
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const dtype = pick(['float32', 'float64', 'float32']);
  const C = pick([2, 3, 17, 100, 1000, 3001, 40000, 70001]);
  const N = Math.max(2, Math.ceil((65536 + Math.floor(r() * 150000)) / C));
  const scale = pick([0.1, 1, 5, 30]);
  const x = dtype === 'float64' ? new Float64Array(N * C) : new Float32Array(N * C);
  for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * 2 * scale;
  const special = r();
  if (special < 0.08) x[Math.floor(r() * x.length)] = -Infinity;
  else if (special < 0.12) x[Math.floor(r() * x.length)] = NaN;
  const reduction = pick(['mean', 'sum', 'none', 'mean']);
  const options = { reduction, labelSmoothing: pick([0, 0.1, r(), 1, 0.1]), grad: r() < 0.7 };
  const ignore = pick([-100, 0, 1, C - 1, -100]);
  options.ignoreIndex = ignore;
  const t = new BigInt64Array(N);
  const share = pick([0, 0, 0.1, 0.5, 1]);
  for (let i = 0; i < N; i++) {
    const c = r() < share && ignore >= 0 ? ignore : Math.floor(r() * C);
    t[i] = BigInt(r() < share ? ignore : c);
  }
  if (options.grad && r() < 0.35) {
    options.gradOutput = reduction === 'none'
      ? tensor(Float64Array.from({ length: N }, () => (r() - 0.5) * 4), [N], 'float64')
      : (r() - 0.5) * 4;
  }
  const label = `seed ${seed}: ${dtype} [${N},${C}] ${JSON.stringify({ ...options, gradOutput: options.gradOutput !== undefined })}`;
  return { input: tensor(x, [N, C], dtype), target: tensor(t, [N]), options, label };
}

function run(c, reference) {
  process.env.SMOOTHCE_ATEN_REFERENCE = reference ? '1' : '0';
  try {
    const res = crossEntropy(c.input, c.target, c.options);
    const out = typeof res.loss === 'number' ? [res.loss] : Array.from(res.loss.data);
    if (res.grad) for (const v of res.grad.data) out.push(v);
    return out;
  } catch (err) {
    return `${err.name}: ${err.message}`;
  }
}

const before = native().atenPathCounts();
const failures = [];
for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
  const c = randomCall(seed);
  const got = run(c, false);
  const want = run(c, true);
  if (typeof got === 'string' || typeof want === 'string') {
    if (got !== want) failures.push(`${c.label}: ${got} vs ${want}`);
    continue;
  }
  const i = got.length !== want.length ? -2 : got.findIndex((v, k) => !Object.is(v, want[k]));
  if (i !== -1) failures.push(`${c.label}: value ${i}: ${got[i]} vs ${want[i]}`);
}
const after = native().atenPathCounts();
console.log(JSON.stringify({ calls: seeds, blocked: after.rowBlocks - before.rowBlocks, failures }));
