#!/usr/bin/env bash
# smoothce CUDA check: ONE script for a machine with an NVIDIA GPU, a CUDA PyTorch 2.x
# (pip), cmake, a C++17 compiler and nvcc, but possibly NO Node.js.
#
# What it does
#   1. finds Node (on PATH, or unpacks a carried binary: NODE_TARBALL, ./shared/node.tar.xz
#      or ./node.tar.xz),
#   2. builds the addon with plain cmake against the machine's torch
#      (python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)', via
#      SMOOTHCE_PYTHON, which CMakeLists.txt supports) into build-gpu/Release,
#   3. runs the CUDA checks: CPU vs CUDA parity on the golden cases
#      (test/fixtures/cases.json) and on seeded random cases (dtypes, reductions,
#      weights, ignore_index, probability targets, k-dim, gradients), device tensor
#      handles, LossAccumulator/Batcher/batchSize on CUDA, out-of-range targets on
#      CUDA (must be a RangeError from the TypeScript validation, never a device-side
#      assert), then a GPU benchmark (CPU vs CUDA, host tensors vs device handles,
#      Batcher, and PyTorch's own CUDA cross_entropy for reference),
#   4. writes a report (report.md, report.json, log.txt) under $OUT (when set) or
#      ./gpu-report/.
#
# Prepare on a machine that has Node 20 and this checkout (node_modules installed):
#   npm run build:ts                                   # dist/ (the compiled library)
#   tar -cJf shared/node.tar.xz -C "$(dirname "$(dirname "$(which node)")")" bin/node
# and carry to the GPU machine: the checkout, dist/, node_modules/node-addon-api,
# node_modules/node-api-headers (small; needed to compile) and the Node tarball.
#
# Environment
#   NODE_TARBALL=path      a .tar.xz/.tar.gz holding bin/node (or node) to use
#   SMOOTHCE_PYTHON=python python with the CUDA torch to build against (default python3)
#   GPU_CHECK_ALLOW_CPU=1  on a machine without CUDA, run the CPU-only parts and exit 0
#                          (used to test this script where there is no GPU)
#   GPU_CHECK_SKIP_BUILD=1 use an existing addon (SMOOTHCE_NATIVE or build-gpu/Release)
#   GPU_CHECK_BENCH=0      skip the benchmark; GPU_CHECK_BENCH=small: tiny sizes (tests the script)
# Exit status: 0 all checks passed, 1 a check failed, 2 no usable GPU (without
# GPU_CHECK_ALLOW_CPU), 3 setup failed (no Node, no torch, build error).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
REPORT_DIR="${OUT:-$ROOT/gpu-report}"
mkdir -p "$REPORT_DIR" || { echo "gpu-check: cannot create $REPORT_DIR" >&2; exit 3; }
exec > >(tee "$REPORT_DIR/log.txt") 2>&1

PY="${SMOOTHCE_PYTHON:-python3}"
step() { printf '\n==> %s\n' "$*"; }
die() { echo "gpu-check: $*" >&2; exit 3; }

step "Machine"
date -u
uname -a
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not found"
command -v nvcc >/dev/null 2>&1 && nvcc --version | tail -1 || echo "nvcc: not found"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' \
  || die "$PY cannot import torch (set SMOOTHCE_PYTHON to a python with a CUDA torch)"

step "Node"
if ! command -v node >/dev/null 2>&1; then
  tarball="${NODE_TARBALL:-}"
  for cand in "$ROOT/shared/node.tar.xz" "$ROOT/node.tar.xz" "$ROOT/shared/node.tar.gz"; do
    [ -z "$tarball" ] && [ -f "$cand" ] && tarball="$cand"
  done
  [ -n "$tarball" ] && [ -f "$tarball" ] || die "no node on PATH and no Node tarball (NODE_TARBALL, shared/node.tar.xz); see the header of this script"
  NODE_DIR="$(mktemp -d)"
  tar -xf "$tarball" -C "$NODE_DIR" || die "cannot unpack $tarball"
  node_bin="$(find "$NODE_DIR" -type f -name node -perm -u+x | head -1)"
  [ -n "$node_bin" ] || die "$tarball holds no executable named node"
  export PATH="$(dirname "$node_bin"):$PATH"
fi
node --version || die "node does not run here"

step "Build the addon against $PY's torch"
export SMOOTHCE_NATIVE="${SMOOTHCE_NATIVE:-$ROOT/build-gpu/Release/smoothce.node}"
if [ -z "${GPU_CHECK_SKIP_BUILD:-}" ]; then
  [ -d node_modules/node-addon-api ] || die "node_modules/node-addon-api is missing (carry it, or run npm ci)"
  NAPI_INC="$(node -p "require('node-api-headers').include_dir" 2>/dev/null)" \
    || die "node_modules/node-api-headers is missing (carry it, or run npm ci)"
  configure() {
    cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSMOOTHCE_PYTHON="$PY" \
      -DCMAKE_JS_INC="$NAPI_INC" -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$ROOT/build-gpu/Release" "$@"
  }
  if ! configure; then
    # TorchConfig.cmake of a CUDA torch probes the CUDA toolkit (and NVTX); where that
    # fails, take torch's folders from torch.utils.cpp_extension instead (CMakeLists.txt).
    echo "gpu-check: CONFIGURE FAILED with find_package(Torch); retrying with -DSMOOTHCE_TORCH_MANUAL=ON (report this)" >&2
    rm -rf build-gpu
    configure -DSMOOTHCE_TORCH_MANUAL=ON || die "cmake configure failed (also with SMOOTHCE_TORCH_MANUAL)"
  fi
  if ! cmake --build build-gpu -j "$(nproc)"; then
    # The c10d/Gloo module was only ever compiled against LibTorch 1.13 (Debian): if this
    # torch's c10d API breaks it, say so and still check CUDA without it.
    echo "gpu-check: BUILD FAILED with c10d/Gloo; retrying with -DSMOOTHCE_NO_DISTRIBUTED=ON (report this)" >&2
    cmake -S . -B build-gpu -DSMOOTHCE_NO_DISTRIBUTED=ON || die "cmake configure failed"
    cmake --build build-gpu -j "$(nproc)" || die "build failed (also without c10d)"
  fi
fi
[ -f "$SMOOTHCE_NATIVE" ] || die "no addon at $SMOOTHCE_NATIVE"

step "Compiled library (dist/)"
if [ ! -f dist/index.js ]; then
  if [ -f node_modules/typescript/bin/tsc ]; then
    node node_modules/typescript/bin/tsc -p tsconfig.build.json || die "tsc failed"
  else
    die "dist/index.js is missing: run 'npm run build:ts' before carrying the checkout"
  fi
fi

step "CUDA checks"
CHECKS_JS="$(mktemp --suffix=.js)"
cat >"$CHECKS_JS" <<'JS'
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const root = process.env.SMOOTHCE_ROOT;
const out = process.env.REPORT_DIR;
const allowCpu = process.env.GPU_CHECK_ALLOW_CPU === '1';
const bench = process.env.GPU_CHECK_BENCH !== '0';
const py = process.env.SMOOTHCE_PYTHON_BIN;
const sc = require(path.join(root, 'dist/index.js'));

const report = { started: new Date().toISOString(), torch: sc.torchVersion(), cudaAvailable: sc.cudaAvailable(),
  cudaDeviceCount: sc.cudaDeviceCount(), checks: [], bench: [] };
let failures = 0;
function pass(name, t0, detail) {
  // A check that returns 'skipped: why' did not run: reported as SKIP, never as PASS.
  const skipped = typeof detail === 'string' && detail.startsWith('skipped');
  report.checks.push({ name, ok: true, skipped, detail: detail ?? '', ms: Date.now() - t0 });
  console.log(`${skipped ? 'SKIP' : 'PASS'} ${name}${detail ? ` (${detail})` : ''}`);
}
function fail(name, t0, err) {
  failures++;
  report.checks.push({ name, ok: false, error: String(err && err.stack || err), ms: Date.now() - t0 });
  console.log(`FAIL ${name}: ${err && err.message}`);
}
function check(name, fn) {
  const t0 = Date.now();
  try { pass(name, t0, fn()); } catch (err) { fail(name, t0, err); }
}
async function checkAsync(name, fn) {
  const t0 = Date.now();
  try { pass(name, t0, await fn()); } catch (err) { fail(name, t0, err); }
}
function assert(c, msg) { if (!c) throw new Error(msg); }

const TOL = { float64: [1e-10, 1e-12], float32: [2e-5, 2e-6], bfloat16: [3e-2, 6e-2], float16: [3e-3, 3e-3] };
function close(a, b, dtype) {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return a === b;
  const [rtol, atol] = TOL[dtype] || TOL.float32;
  return Math.abs(a - b) <= atol + rtol * Math.max(Math.abs(a), Math.abs(b));
}
function sameResult(a, b, dtype, what) {
  const la = typeof a.loss === 'number' ? [a.loss] : Array.from(a.loss.data, Number);
  const lb = typeof b.loss === 'number' ? [b.loss] : Array.from(b.loss.data, Number);
  assert(la.length === lb.length, `${what}: loss sizes differ`);
  la.forEach((v, i) => assert(close(v, lb[i], dtype), `${what}: loss[${i}] ${v} vs ${lb[i]}`));
  assert(!!a.grad === !!b.grad, `${what}: grad presence differs`);
  if (a.grad) a.grad.data.forEach((v, i) => assert(close(Number(v), Number(b.grad.data[i]), dtype), `${what}: grad[${i}] ${v} vs ${b.grad.data[i]}`));
}

const cuda = report.cudaAvailable;
const DEV = cuda ? 'cuda' : 'cpu';
console.log(`torch ${report.torch}; cudaAvailable ${cuda}; devices ${report.cudaDeviceCount}; checks run on '${DEV}'`);
if (!cuda && !allowCpu) {
  fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify(report, null, 2));
  console.log('No usable CUDA device: nothing to check (set GPU_CHECK_ALLOW_CPU=1 to run the CPU-only parts).');
  process.exit(2);
}

function rng(seed) {
  let a = seed >>> 0;
  return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
const num = (v) => (typeof v === 'string' ? (/^-?inf/i.test(v) ? (v[0] === '-' ? -Infinity : Infinity) : /nan/i.test(v) ? NaN : Number(v)) : v);
function fromCase(t) {
  if (!t) return undefined;
  if (t.dtype === 'int64' || t.dtype === 'int32' || t.dtype === 'uint8') return sc.tensor(t.data.map(num), t.shape, t.dtype);
  const data = t.dtype === 'float64' ? Float64Array.from(t.data.map(num)) : Float32Array.from(t.data.map(num));
  return sc.tensor(data, t.shape, t.dtype);
}

// 1. Golden cases: CPU vs device (and vs the stored PyTorch result).
check('golden cases: CPU vs ' + DEV, () => {
  const file = path.join(root, 'test/fixtures/cases.json');
  if (!fs.existsSync(file)) return 'skipped: no test/fixtures/cases.json';
  const cases = JSON.parse(fs.readFileSync(file, 'utf8')).cases;
  let compared = 0, errorsMatched = 0, skipped = 0;
  for (const c of cases) {
    let input, target, options;
    try {
      input = fromCase(c.input); target = fromCase(c.target);
      const o = c.options || {};
      options = { reduction: o.reduction, ignoreIndex: o.ignore_index, labelSmoothing: o.label_smoothing };
      if (c.weight) options.weight = Array.from(c.weight.data, num);
      const wantGrad = !!(c.expected && c.expected.grad_input);
      if (wantGrad) { options.grad = true; if (c.grad_output) options.gradOutput = c.grad_output.shape.length ? fromCase(c.grad_output) : num(c.grad_output.data[0]); }
    } catch (e) { skipped++; continue; }
    let cpu, dev, cpuErr, devErr;
    try { cpu = sc.crossEntropy(input, target, { ...options, device: 'cpu' }); } catch (e) { cpuErr = e; }
    try { dev = sc.crossEntropy(input, target, { ...options, device: DEV }); } catch (e) { devErr = e; }
    if (cpuErr || devErr) {
      // Errors raised by validation must be the same on both; ATen errors may differ in text.
      assert(cpuErr && devErr, `${c.name}: cpu ${cpuErr ? 'threw' : 'ok'} but ${DEV} ${devErr ? 'threw ' + devErr.message : 'ok'}`);
      errorsMatched++;
      continue;
    }
    sameResult(dev, cpu, c.input.dtype, c.name);
    compared++;
  }
  return `${compared} compared, ${errorsMatched} errors on both, ${skipped} not readable`;
});

// 2. Seeded random cases over every option.
check('random cases: CPU vs ' + DEV + ' (dtypes, reductions, weights, ignore_index, probability targets, k-dim, grads)', () => {
  const r = rng(2024);
  let n = 0;
  for (const dtype of ['float64', 'float32', 'bfloat16']) {
    for (const shape of [[37, 11], [5, 7, 3, 4], [9, 13, 6], [13]]) {
      for (const reduction of ['mean', 'sum', 'none']) {
        for (const eps of [0, 0.15]) {
          for (const prob of [false, true]) {
            if (prob && dtype === 'bfloat16') continue;
            const C = shape.length === 1 ? shape[0] : shape[1];
            const len = shape.reduce((a, b) => a * b, 1);
            const xd = dtype === 'float64' ? new Float64Array(len) : new Float32Array(len);
            for (let i = 0; i < len; i++) xd[i] = (r() - 0.5) * 8;
            const input = sc.tensor(xd, shape, dtype);
            let target;
            if (prob) { const p = dtype === 'float64' ? new Float64Array(len) : new Float32Array(len); for (let i = 0; i < len; i++) p[i] = r(); target = sc.tensor(p, shape); }
            else { const ts = shape.length === 1 ? [] : [shape[0], ...shape.slice(2)]; const m = ts.reduce((a, b) => a * b, 1); target = sc.tensor(Array.from({ length: m }, () => (r() < 0.2 ? -100 : Math.floor(r() * C))), ts, 'int64'); }
            const weight = r() < 0.5 ? Array.from({ length: C }, () => 0.2 + r() * 2) : undefined;
            const options = { reduction, labelSmoothing: eps, grad: true, ...(weight ? { weight } : {}) };
            const cpu = sc.crossEntropy(input, target, { ...options, device: 'cpu' });
            const dev = sc.crossEntropy(input, target, { ...options, device: DEV });
            sameResult(dev, cpu, dtype, `${dtype} ${JSON.stringify(shape)} ${reduction} eps=${eps} prob=${prob}`);
            n++;
          }
        }
      }
    }
  }
  return `${n} cases`;
});

// 3. float16: CUDA computes it (CPU Half needs PyTorch >= 2.4).
if (cuda) check('float16 on CUDA vs float32 on CPU', () => {
  const x = sc.tensor(Float32Array.from({ length: 64 * 10 }, (_, i) => Math.sin(i)), [64, 10], 'float16');
  const y = sc.tensor(Array.from({ length: 64 }, (_, i) => i % 10), [64], 'int64');
  const dev = sc.crossEntropy(x, y, { device: 'cuda', labelSmoothing: 0.1 });
  const ref = sc.crossEntropy(sc.tensor(x.data, [64, 10], 'float32'), y, { labelSmoothing: 0.1 });
  assert(Math.abs(dev.loss - ref.loss) < 5e-3, `${dev.loss} vs ${ref.loss}`);
});

// 4. Out-of-range targets on the device: a RangeError before native code, process alive.
check('out-of-range targets on ' + DEV + ': RangeError, no device-side assert, device still usable', () => {
  const x = sc.tensor(new Float32Array(4 * 3), [4, 3]);
  const bad = sc.tensor([0, 1, 3, 2], [4], 'int64');
  let err;
  try { sc.crossEntropy(x, bad, { device: DEV }); } catch (e) { err = e; }
  assert(err instanceof RangeError && /target\[2\] is 3/.test(err.message), `plain tensors: ${err && err.message}`);
  const hx = sc.toDevice(x, DEV);
  const hbad = sc.toDevice(bad, DEV);
  err = undefined;
  try { sc.crossEntropy(hx, hbad); } catch (e) { err = e; }
  assert(err instanceof RangeError && /target\[2\] is 3/.test(err.message), `device handles: ${err && err.message}`);
  const ok = sc.crossEntropy(hx, sc.tensor([0, 1, 2, 2], [4], 'int64'));
  assert(Math.abs(ok.loss - Math.log(3)) < 1e-6, `device unusable after the error: ${ok.loss}`);
  hx.dispose(); hbad.dispose();
});

// 5. Device tensor handles.
check('device handles on ' + DEV + ': parity, toCPU round trip, dispose, use-after-dispose error', () => {
  const r = rng(5);
  const x = sc.tensor(Float32Array.from({ length: 256 * 50 }, () => (r() - 0.5) * 6), [256, 50]);
  const y = sc.tensor(Array.from({ length: 256 }, (_, i) => (i % 7 === 0 ? -100 : i % 50)), [256], 'int64');
  const hx = sc.toDevice(x, DEV), hy = sc.toDevice(y, DEV);
  assert(hx.device.startsWith(DEV), `device ${hx.device}`);
  const want = sc.crossEntropy(x, y, { grad: true, labelSmoothing: 0.1 });
  sameResult(sc.crossEntropy(hx, hy, { grad: true, labelSmoothing: 0.1 }), want, 'float32', 'handles');
  const back = hx.toCPU();
  assert(back.data.every((v, i) => v === x.data[i]), 'toCPU differs');
  hx.dispose(); hx.dispose();
  let err; try { sc.crossEntropy(hx, hy); } catch (e) { err = e; }
  assert(err && err.code === 'ERR_SMOOTHCE_DISPOSED', `use after dispose: ${err && err.message}`);
  hy.dispose();
});

check('gradOnDevice on ' + DEV + ': the gradient stays a ' + DEV + ' handle and equals the host gradient', () => {
  const r = rng(6);
  let n = 0;
  for (const dtype of ['float32', 'float64', 'bfloat16']) {
    for (const reduction of ['mean', 'none']) {
      const x = sc.tensor((dtype === 'float64' ? Float64Array : Float32Array).from({ length: 96 * 40 }, () => (r() - 0.5) * 6), [96, 40], dtype);
      const y = sc.tensor(Array.from({ length: 96 }, (_, i) => (i % 9 === 0 ? -100 : i % 40)), [96], 'int64');
      const opts = { grad: true, labelSmoothing: 0.1, reduction };
      const want = sc.crossEntropy(x, y, opts);
      const hx = sc.toDevice(x, DEV), hy = sc.toDevice(y, DEV);
      const got = sc.crossEntropy(hx, hy, { ...opts, gradOnDevice: true });
      assert(sc.isDeviceTensor(got.grad), `${dtype} ${reduction}: grad is not a DeviceTensor`);
      assert(got.grad.device.startsWith(DEV) && got.grad.dtype === dtype, `${dtype}: grad on ${got.grad.device} as ${got.grad.dtype}`);
      sameResult({ loss: got.loss, grad: got.grad.toCPU() }, want, dtype, `gradOnDevice ${dtype} ${reduction}`);
      got.grad.dispose(); hx.dispose(); hy.dispose();
      n++;
    }
  }
  return `${n} cases`;
});

if (cuda) check('cuda:N beyond the device count: clear RangeError', () => {
  let err; try { sc.crossEntropy(sc.tensor(new Float32Array(3), [1, 3]), sc.tensor([0], [1], 'int64'), { device: `cuda:${report.cudaDeviceCount}` }); } catch (e) { err = e; }
  assert(err instanceof RangeError && /only \d+ CUDA device/.test(err.message), String(err && err.message));
});

// 6. batchSize, LossAccumulator and Batcher on the device.
(async () => {
  await checkAsync('batchSize, LossAccumulator and Batcher on ' + DEV + ' equal CPU', async () => {
    const r = rng(9);
    const N = 1000, C = 100;
    const x = sc.tensor(Float64Array.from({ length: N * C }, () => (r() - 0.5) * 6), [N, C]);
    const y = sc.tensor(Array.from({ length: N }, () => (r() < 0.1 ? -100 : Math.floor(r() * C))), [N], 'int64');
    const opts = { labelSmoothing: 0.1, weight: Array.from({ length: C }, () => 0.5 + r()) };
    const want = sc.crossEntropy(x, y, { ...opts, grad: true });
    sameResult(sc.crossEntropy(x, y, { ...opts, grad: true, device: DEV, batchSize: 128 }), want, 'float64', 'batchSize');
    sameResult(await sc.crossEntropyAsync(x, y, { ...opts, grad: true, device: DEV, batchSize: 128 }), want, 'float64', 'batchSize async');
    const acc = new sc.LossAccumulator({ ...opts, device: DEV });
    for (let s = 0; s < N; s += 300) {
      const e = Math.min(N, s + 300);
      acc.update(sc.tensor(x.data.subarray(s * C, e * C), [e - s, C]), sc.tensor(y.data.subarray(s, e), [e - s], 'int64'));
    }
    assert(close(acc.result(), want.loss, 'float64'), `accumulator ${acc.result()} vs ${want.loss}`);
    const batcher = new sc.Batcher({ ...opts, device: DEV, grad: true, maxBatchSize: 64 });
    const res = await Promise.all(Array.from({ length: 200 }, (_, i) => batcher.score(sc.tensor(x.data.subarray(i * 5 * C, (i + 1) * 5 * C), [5, C]), sc.tensor(y.data.subarray(i * 5, (i + 1) * 5), [5], 'int64'))));
    res.forEach((got, i) => sameResult(got, sc.crossEntropy(sc.tensor(x.data.subarray(i * 5 * C, (i + 1) * 5 * C), [5, C]), sc.tensor(y.data.subarray(i * 5, (i + 1) * 5), [5], 'int64'), { ...opts, grad: true }), 'float64', `batcher request ${i}`));
    await batcher.close();
    return `${batcher.stats.batches} batches for 200 requests`;
  });

  await checkAsync('gradOnDevice, async, on ' + DEV + ': computed on the pool, handed back as a ' + DEV + ' handle', async () => {
    const r = rng(7);
    const x = sc.tensor(Float32Array.from({ length: 512 * 100 }, () => (r() - 0.5) * 6), [512, 100]);
    const y = sc.tensor(Array.from({ length: 512 }, (_, i) => i % 100), [512], 'int64');
    const want = sc.crossEntropy(x, y, { grad: true, labelSmoothing: 0.1 });
    const hx = sc.toDevice(x, DEV), hy = sc.toDevice(y, DEV);
    const live = sc.liveDeviceTensors();
    const got = await Promise.all(Array.from({ length: 8 }, () => sc.crossEntropyAsync(hx, hy, { grad: true, labelSmoothing: 0.1, gradOnDevice: true })));
    for (const g of got) {
      assert(sc.isDeviceTensor(g.grad) && g.grad.device.startsWith(DEV), 'async grad is not a device handle');
      sameResult({ loss: g.loss, grad: g.grad.toCPU() }, want, 'float32', 'async gradOnDevice');
      g.grad.dispose();
    }
    assert(sc.liveDeviceTensors() === live, `live handles ${sc.liveDeviceTensors()} after dispose, ${live} before`);
    hx.dispose(); hy.dispose();
    return '8 concurrent calls';
  });

  // 7. c10d/Gloo built against this LibTorch: two Node ranks over loopback all-reduce.
  await checkAsync('c10d/Gloo: two Node ranks all-reduce over loopback (this LibTorch)', async () => {
    if (!sc.distributed.available()) return 'skipped: this build has no c10d/Gloo (see the build log)';
    const { spawn } = require('child_process');
    const port = 29500 + Math.floor(Math.random() * 2000);
    const rankJs = `const sc=require(${JSON.stringify(path.join(root, 'dist/index.js'))});(async()=>{const r=+process.argv[1];
      const g=await sc.distributed.init({rank:r,worldSize:2,store:'tcp://127.0.0.1:${port}',timeoutMs:20000});
      const t=await g.allReduceTensor(sc.tensor(Float64Array.from([r+1,10*(r+1)]),[2],'float64'),'sum');
      await g.barrier();g.destroy();console.log(JSON.stringify(Array.from(t.data)));})().catch(e=>{console.error(e.message);process.exit(1);});`;
    const runRank = (r) => new Promise((resolve, reject) => {
      const p = spawn(process.execPath, ['-e', rankJs, String(r)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let so = '', se = '';
      p.stdout.on('data', (d) => (so += d)); p.stderr.on('data', (d) => (se += d));
      const timer = setTimeout(() => p.kill('SIGKILL'), 40000);
      p.on('exit', (code) => { clearTimeout(timer); code === 0 ? resolve(so.trim()) : reject(new Error(`rank ${r} exited ${code}: ${se.trim().slice(0, 300)}`)); });
    });
    const outs = await Promise.all([runRank(0), runRank(1)]);
    outs.forEach((o, r) => assert(o === '[3,30]', `rank ${r} got ${o}`));
    return 'both ranks got [3,30]';
  });

  // 8. Benchmark.
  if (bench) {
    const time = async (fn, reps) => { await fn(); const ts = []; for (let i = 0; i < reps; i++) { const t0 = process.hrtime.bigint(); await fn(); ts.push(Number(process.hrtime.bigint() - t0) / 1e6); } ts.sort((a, b) => a - b); return ts[Math.floor(ts.length / 2)]; };
    const small = process.env.GPU_CHECK_BENCH === 'small';
    for (const [N, C] of small ? [[512, 100]] : [[4096, 1000], [65536, 1000], [8192, 32000]]) {
      const x = sc.tensor(Float32Array.from({ length: N * C }, (_, i) => Math.sin(i * 0.001) * 4), [N, C]);
      const y = sc.tensor(Array.from({ length: N }, (_, i) => (i * 31) % C), [N], 'int64');
      const row = { N, C, dtype: 'float32' };
      row.cpuFwdMs = await time(() => sc.crossEntropy(x, y, { labelSmoothing: 0.1 }), 3);
      row.cpuFwdGradMs = await time(() => sc.crossEntropy(x, y, { labelSmoothing: 0.1, grad: true }), 3);
      if (cuda) {
        row.cudaHostFwdMs = await time(() => sc.crossEntropy(x, y, { labelSmoothing: 0.1, device: 'cuda' }), 5);
        row.cudaHostFwdGradMs = await time(() => sc.crossEntropy(x, y, { labelSmoothing: 0.1, device: 'cuda', grad: true }), 5);
        const hx = sc.toDevice(x, 'cuda'), hy = sc.toDevice(y, 'cuda');
        row.cudaHandleFwdMs = await time(() => sc.crossEntropy(hx, hy, { labelSmoothing: 0.1 }), 10);
        row.cudaHandleFwdGradMs = await time(() => sc.crossEntropy(hx, hy, { labelSmoothing: 0.1, grad: true }), 10);
        // The gradient left on the GPU (gradOnDevice): what a training step on CUDA pays.
        row.cudaHandleFwdGradOnDeviceMs = await time(() => sc.crossEntropy(hx, hy, { labelSmoothing: 0.1, grad: true, gradOnDevice: true }).grad.dispose(), 10);
        hx.dispose(); hy.dispose();
        try {
          const code = `import torch,time\nx=torch.randn(${N},${C},device='cuda');y=torch.randint(0,${C},(${N},),device='cuda')\nfor g in (False,True):\n  ts=[]\n  for i in range(12):\n    xx=x.clone().requires_grad_(g);torch.cuda.synchronize();t=time.perf_counter();l=torch.nn.functional.cross_entropy(xx,y,label_smoothing=0.1)\n    if g: l.backward()\n    torch.cuda.synchronize();ts.append((time.perf_counter()-t)*1e3)\n  ts.sort();print(ts[6])`;
          const [f, fg] = execFileSync(py, ['-c', code], { encoding: 'utf8' }).trim().split('\n').map(Number);
          row.torchCudaFwdMs = f; row.torchCudaFwdGradMs = fg;
        } catch (e) { row.torchCudaError = String(e.message).slice(0, 200); }
      }
      report.bench.push(row);
      console.log('bench', JSON.stringify(row));
    }
    const R = small ? 1000 : 10000;
    const reqs = Array.from({ length: R }, (_, i) => ({ x: sc.tensor(Float32Array.from({ length: 1000 }, (_, j) => Math.sin(i + j)), [1, 1000]), y: sc.tensor([i % 1000], [1], 'int64') }));
    for (const device of cuda ? ['cpu', 'cuda'] : ['cpu']) {
      const b = new sc.Batcher({ device, maxBatchSize: 1024, maxDelayMs: 1, labelSmoothing: 0.1 });
      const t0 = process.hrtime.bigint();
      await Promise.all(reqs.map((q) => b.score(q.x, q.y)));
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      await b.close();
      const t1 = process.hrtime.bigint();
      await Promise.all(reqs.map((q) => sc.crossEntropyAsync(q.x, q.y, { device, labelSmoothing: 0.1 })));
      const su = Number(process.hrtime.bigint() - t1) / 1e9;
      const row = { batcher: true, device, requests: R, C: 1000, batchedPerS: Math.round(R / s), unbatchedAsyncPerS: Math.round(R / su) };
      report.bench.push(row);
      console.log('bench', JSON.stringify(row));
    }
  }

  report.finished = new Date().toISOString();
  report.failures = failures;
  fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify(report, null, 2));
  const md = [`# smoothce GPU check`, ``, `- torch (addon): ${report.torch}; CUDA available: ${cuda}; devices: ${report.cudaDeviceCount}`,
    `- checks run on: ${DEV}${cuda ? '' : ' (NO GPU: CPU-only dry run, CUDA NOT exercised)'}`, `- failures: ${failures}; skipped: ${report.checks.filter((c) => c.skipped).length}`, ``, `| check | result | detail |`, `|---|---|---|`,
    ...report.checks.map((c) => `| ${c.name} | ${c.skipped ? 'SKIP' : c.ok ? 'PASS' : 'FAIL'} | ${(c.ok ? c.detail : c.error.split('\n')[0]).replace(/\|/g, '/')} |`), ``,
    `## Benchmark (median ms; float32, labelSmoothing 0.1)`, ``, '```json', ...report.bench.map((b) => JSON.stringify(b)), '```'];
  fs.writeFileSync(path.join(out, 'report.md'), md.join('\n') + '\n');
  console.log(`\nreport: ${path.join(out, 'report.md')}; failures: ${failures}`);
  process.exit(failures ? 1 : 0);
})();
JS
SMOOTHCE_ROOT="$ROOT" REPORT_DIR="$REPORT_DIR" SMOOTHCE_PYTHON_BIN="$PY" node "$CHECKS_JS"
status=$?
rm -f "$CHECKS_JS"
exit $status
