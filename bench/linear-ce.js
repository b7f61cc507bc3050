#!/usr/bin/env node
'use strict';
/**
 * Fused linear cross-entropy (issue 28) against PyTorch eager: one training step's loss and its three gradients,
 *   smoothce:  linearCrossEntropy(x, W, t, { labelSmoothing: 0.1, grad: true })   (and with gradInto)
 *   PyTorch:   F.cross_entropy(F.linear(x, W), t, label_smoothing=0.1).backward()   (x, W leaves that require grad;
 *              its fastest idiomatic eager form), and F.linear_cross_entropy where the oracle's torch has it.
 * float32, int64 targets, mean reduction, no bias. Each case in its own fresh process: the first call's time and the
 * peak RSS it adds (VmHWM after writing 5 to /proc/self/clear_refs, minus VmRSS before the call), then the steady
 * state (median of --reps calls). GFLOP/s counts the three matrix products (6·N·H·C flops).
 *
 *   node bench/linear-ce.js [--quick] [--sizes 1024x64x32768,...] [--threads 1,2] [--reps 5] [--json]
 *
 * --quick: N1024/H64/C32768 and N2048/H128/C65536 at 1 thread, 3 reps. Default sizes: those two plus
 * N4096/H512/C32000 and N2048/H1024/C128256 (the last needs ~3 GiB for PyTorch and minutes per call on one core).
 * Allocator settings: smoothce's defaults (its ATen allocator with the huge-page cache, 512 MiB; working memory
 * its default, 16 MiB or 64 rows' worth); PyTorch with glibc's default malloc.
 */
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    threads: { type: 'string' },
    reps: { type: 'string' },
    json: { type: 'boolean', default: false },
    'no-torch': { type: 'boolean', default: false },
  },
});
const QUICK = flags.quick;
const SIZES = (flags.sizes ?? (QUICK ? '1024x64x32768,2048x128x65536' : '1024x64x32768,2048x128x65536,4096x512x32000,2048x1024x128256'))
  .split(',')
  .map((s) => s.split('x').map(Number));
const THREADS = (flags.threads ?? (QUICK ? '1' : '1,2')).split(',').map(Number);
const REPS = Number(flags.reps ?? (QUICK ? 3 : 5));
const PYTHON = process.env.SMOOTHCE_BENCH_PYTHON || '/usr/bin/python3';
const root = path.join(__dirname, '..');

const NODE_CASE = `
const fs = require('node:fs');
const sc = require(${JSON.stringify(root)});
const [N, H, C, threads, reps, variant] = [+process.argv[1], +process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5], process.argv[6]];
sc.setNumThreads(threads);
const x = new Float32Array(N * H); for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37);
const w = new Float32Array(C * H); for (let i = 0; i < w.length; i++) w[i] = Math.cos(i * 0.11) * 0.2;
const t = new BigInt64Array(N); for (let i = 0; i < N; i++) t[i] = BigInt((i * 7919) % C);
const X = sc.tensor(x, [N, H]), W = sc.tensor(w, [C, H]), T = sc.tensor(t, [N]);
const into = variant === 'into' ? { input: new Float32Array(N * H), linearWeight: new Float32Array(C * H) } : undefined;
if (into) { into.input.fill(0); into.linearWeight.fill(0); }
const opts = { labelSmoothing: 0.1, grad: true, ...(into ? { gradInto: into } : {}) };
const kb = (k) => Number(fs.readFileSync('/proc/self/status', 'utf8').split(String.fromCharCode(10)).find((l) => l.startsWith(k + ':')).replace(/[^0-9]/g, ''));
const ms = () => Number(process.hrtime.bigint()) / 1e6;
fs.writeFileSync('/proc/self/clear_refs', '5');
const before = kb('VmRSS');
let t0 = ms();
let r = sc.linearCrossEntropy(X, W, T, opts);
const first = ms() - t0;
const peakMiB = (kb('VmHWM') - before) / 1024;
const loss = r.loss;
r = null;
(async () => {
  const steady = [];
  for (let i = 0; i < reps; i++) {
    await new Promise((res) => setImmediate(res));
    t0 = ms(); sc.linearCrossEntropy(X, W, T, opts); steady.push(ms() - t0);
  }
  steady.sort((a, b) => a - b);
  const info = require(${JSON.stringify(path.join(root, 'dist', 'native'))}).native().linearCrossEntropyInfo();
  // Which BLAS library the process really mapped (LibTorch's BLAS_INFO says only 'generic' for Debian's alternatives).
  const libs = [...new Set(fs.readFileSync('/proc/self/maps', 'utf8').split(String.fromCharCode(10)).map((l) => l.split(' ').pop()).filter((f) => /openblas|libblas|mkl|blis/.test(f)))];
  process.stdout.write(JSON.stringify({ first, steady: steady[steady.length >> 1], peakMiB, loss, blas: info.blas + '; mapped: ' + libs.join(' '), torch: sc.torchVersion() }));
})();
`;

const TORCH_CASE = `
import sys, time, json, math, torch, torch.nn.functional as F
N, H, C, threads, reps, variant = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
torch.set_num_threads(threads)
def kb(key):
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'): return int(line.split()[1])
x = torch.sin(torch.arange(N * H, dtype=torch.float64) * 0.37).float().reshape(N, H).requires_grad_(True)
w = (torch.cos(torch.arange(C * H, dtype=torch.float64) * 0.11) * 0.2).float().reshape(C, H).requires_grad_(True)
t = torch.tensor([(i * 7919) % C for i in range(N)], dtype=torch.long)
if variant == 'fused' and not hasattr(F, 'linear_cross_entropy'):
    print(json.dumps({'unavailable': 'F.linear_cross_entropy is not in torch ' + torch.__version__})); sys.exit(0)
def step():
    x.grad = None; w.grad = None
    if variant == 'fused':
        loss = F.linear_cross_entropy(x, w, t, label_smoothing=0.1)
    else:
        loss = F.cross_entropy(F.linear(x, w), t, label_smoothing=0.1)
    loss.backward()
    return loss.item()
open('/proc/self/clear_refs', 'w').write('5')
before = kb('VmRSS')
t0 = time.perf_counter(); loss = step(); first = (time.perf_counter() - t0) * 1e3
peak = (kb('VmHWM') - before) / 1024
steady = []
for _ in range(reps):
    t0 = time.perf_counter(); step(); steady.append((time.perf_counter() - t0) * 1e3)
steady.sort()
libs = sorted({l.split()[-1] for l in open('/proc/self/maps') if len(l.split()) > 5 and any(k in l.split()[-1] for k in ('openblas', 'libblas', 'mkl', 'blis'))})
blas = [p for p in torch.__config__.show().replace(',', '\\n').split('\\n') if 'BLAS_INFO' in p or 'MKL-DNN' in p or 'LAPACK_INFO' in p]
print(json.dumps({'first': first, 'steady': steady[len(steady) // 2], 'peakMiB': peak, 'loss': loss, 'blas': ', '.join(s.strip(' -') for s in blas) + '; mapped: ' + ' '.join(libs), 'torch': torch.__version__}))
`;

function run(cmd, args) {
  try {
    return JSON.parse(execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 24 }));
  } catch (err) {
    return { error: String(err.stderr || err.message).trim().split('\n').slice(-2).join(' ') };
  }
}

function main() {
  const rows = [];
  for (const [N, H, C] of SIZES) {
    for (const threads of THREADS) {
      const args = [N, H, C, threads, REPS].map(String);
      const cases = [
        ['smoothce', () => run(process.execPath, ['-e', NODE_CASE, ...args, 'plain'])],
        ['smoothce gradInto', () => run(process.execPath, ['-e', NODE_CASE, ...args, 'into'])],
      ];
      if (!flags['no-torch']) {
        cases.push(['PyTorch eager', () => run(PYTHON, ['-c', TORCH_CASE, ...args, 'eager'])]);
        cases.push(['F.linear_cross_entropy', () => run(PYTHON, ['-c', TORCH_CASE, ...args, 'fused'])]);
      }
      for (const [label, fn] of cases) {
        const r = fn();
        const row = { N, H, C, threads, label, ...r };
        rows.push(row);
        if (!flags.json) process.stderr.write(`${label} N${N} H${H} C${C} ${threads}t: ${r.error ?? r.unavailable ?? `first ${r.first.toFixed(0)} ms, steady ${r.steady.toFixed(0)} ms, +${r.peakMiB.toFixed(0)} MiB`}\n`);
      }
    }
  }
  if (flags.json) {
    process.stdout.write(JSON.stringify(rows, null, 1) + '\n');
    return;
  }
  const L = [];
  const gflops = (r) => ((6 * r.N * r.H * r.C) / (r.steady * 1e6)).toFixed(0);
  L.push('## Fused linear cross-entropy (float32, ε 0.1, mean, no bias; loss + grad input/linearWeight)', '');
  const sc = rows.find((r) => r.label === 'smoothce' && r.blas);
  const pt = rows.find((r) => r.label === 'PyTorch eager' && r.blas);
  if (sc) L.push(`smoothce: LibTorch ${sc.torch}; matrix products: ${sc.blas}; working memory: the default (16 MiB, or 64 rows when more); huge-page ATen allocator (default).`);
  if (pt) L.push(`PyTorch ${pt.torch} eager: ${pt.blas}; glibc malloc defaults.`);
  const un = rows.find((r) => r.unavailable);
  if (un) L.push(`F.linear_cross_entropy: ${un.unavailable} (it arrived in PyTorch 2.13; 1.13 and 2.6 lack it).`);
  L.push('', '| N | H | C | threads | case | first call ms | steady ms | GFLOP/s | peak RSS added MiB | gradients MiB | × eager (steady) |', '|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    if (r.unavailable) continue;
    const grads = (((r.N * r.H + r.C * r.H) * 4) / 2 ** 20).toFixed(1);
    const eager = rows.find((e) => e.label === 'PyTorch eager' && e.N === r.N && e.H === r.H && e.C === r.C && e.threads === r.threads);
    const speedup = eager && !eager.error && !r.error ? (eager.steady / r.steady).toFixed(2) : '';
    if (r.error) L.push(`| ${r.N} | ${r.H} | ${r.C} | ${r.threads} | ${r.label} | error: ${r.error} | | | | | |`);
    else L.push(`| ${r.N} | ${r.H} | ${r.C} | ${r.threads} | ${r.label} | ${r.first.toFixed(0)} | ${r.steady.toFixed(0)} | ${gflops(r)} | ${r.peakMiB.toFixed(1)} | ${grads} | ${speedup} |`);
  }
  process.stdout.write(L.join('\n') + '\n');
}

main();
