#!/usr/bin/env node
'use strict';
/**
 * npm run bench:goals — issue 21's goals, measured the way a user's script meets them, side by side in one run:
 * each case in a fresh process, 1 thread, float32 logits, int64 targets, labelSmoothing 0.1, mean.
 *
 *   - steady state: median of 15 calls (large) or of 15 batches of 2,000 calls (32×10), each sample after an
 *     event-loop turn, so earlier results can be finalized;
 *   - first call: the first call of a fresh process (package required, inputs made, nothing else called);
 *   - never-yielding loop: the median of 20 back-to-back calls that never yield, right after the first 3;
 *   - PyTorch: /usr/bin/python3, the plain F.cross_entropy(x, t, label_smoothing=0.1) (.item() for the forward; for
 *     forward+gradient a leaf that requires grad, .backward()), glibc's default malloc and the tuned one;
 *   - the first crossEntropyAsync of a 64 MiB input in a fresh process: the longest event-loop gap (1 ms ticker);
 *   - peak RSS of a 1024×32000 forward+gradient call above the RSS before it (VmHWM, reset through
 *     /proc/self/clear_refs), first call of a fresh process: fused, fused with gradInto, aten.
 *
 *   node bench/goals.js [--rounds 2] [--json]
 *
 * Allocator settings: the package defaults (huge-page cache 512 MiB, early release on, pre-faulting on, fresh
 * mappings not advised for huge pages). Medians over --rounds processes per case.
 */
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { values: flags } = parseArgs({ options: { rounds: { type: 'string', default: '2' }, json: { type: 'boolean', default: false } } });
const ROUNDS = Number(flags.rounds);
const PYTHON = process.env.SMOOTHCE_BENCH_PYTHON || '/usr/bin/python3';
const root = path.join(__dirname, '..');
const TUNED = { MALLOC_MMAP_THRESHOLD_: '33554432', MALLOC_MMAP_MAX_: '0', MALLOC_TRIM_THRESHOLD_: '68719476736' };

const NODE_CASE = `
const sc = require(${JSON.stringify(root)});
const [impl, N, C, mode] = [process.argv[1], +process.argv[2], +process.argv[3], process.argv[4]];
sc.setNumThreads(1);
const x = new Float32Array(N * C); for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 3;
const t = new BigInt64Array(N); for (let i = 0; i < N; i++) t[i] = BigInt((i * 7919) % C);
const X = sc.tensor(x, [N, C]), T = sc.tensor(t, [N]);
const opts = { impl, labelSmoothing: 0.1, grad: mode === 'grad' };
const ms = () => Number(process.hrtime.bigint()) / 1e6;
const med = (a) => { const s = [...a].sort((p, q) => p - q); return s[s.length >> 1]; };
(async () => {
  const first = []; for (let i = 0; i < 3; i++) { const t0 = ms(); sc.crossEntropy(X, T, opts); first.push(ms() - t0); }
  const loop = []; for (let i = 0; i < 20; i++) { const t0 = ms(); sc.crossEntropy(X, T, opts); loop.push(ms() - t0); }
  const inner = N * C > 1e6 ? 1 : 2000; const steady = [];
  for (let r = 0; r < 15; r++) {
    await new Promise((res) => setImmediate(res));
    const t0 = ms(); for (let k = 0; k < inner; k++) sc.crossEntropy(X, T, opts); steady.push((ms() - t0) / inner);
  }
  process.stdout.write(JSON.stringify({ first: first[0], loop: med(loop), steady: med(steady) }));
})();
`;

const TORCH_CASE = `
import sys, time, json, statistics, torch, torch.nn.functional as F
N, C, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(1)
x = (torch.sin(torch.arange(N * C, dtype=torch.float64) * 0.37) * 3).float().reshape(N, C)
t = torch.tensor([(i * 7919) % C for i in range(N)], dtype=torch.long)
def f():
    if mode == 'fwd':
        return F.cross_entropy(x, t, label_smoothing=0.1).item()
    xr = x.detach().requires_grad_()
    l = F.cross_entropy(xr, t, label_smoothing=0.1)
    l.backward()
    return l.item()
inner = 1 if N * C > 1e6 else 2000
for _ in range(3): f()
st = []
for r in range(15):
    t0 = time.perf_counter()
    for k in range(inner): f()
    st.append((time.perf_counter() - t0) * 1e3 / inner)
print(json.dumps({'steady': statistics.median(st)}))
`;

const ASYNC_CASE = `
const sc = require(${JSON.stringify(root)});
const N = 2048, C = 8192;
const x = new Float32Array(N * C); for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 3;
const t = new BigInt64Array(N); for (let i = 0; i < N; i++) t[i] = BigInt((i * 7919) % C);
const impl = process.argv[1];
let last = process.hrtime.bigint(), worst = 0;
const iv = setInterval(() => { const now = process.hrtime.bigint(); worst = Math.max(worst, Number(now - last) / 1e6); last = now; }, 1);
setTimeout(async () => {
  worst = 0; last = process.hrtime.bigint();
  await sc.crossEntropyAsync(sc.tensor(x, [N, C]), sc.tensor(t, [N]), { impl, labelSmoothing: 0.1 });
  await new Promise((r) => setTimeout(r, 5));
  clearInterval(iv);
  process.stdout.write(JSON.stringify({ worstGap: worst }));
}, 50);
`;

const RSS_CASE = `
const fs = require('node:fs');
const sc = require(${JSON.stringify(root)});
const [impl, into] = [process.argv[1], process.argv[2] === 'into'];
sc.setNumThreads(1);
const N = 1024, C = 32000;
const x = new Float32Array(N * C); for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 3;
const t = new BigInt64Array(N); for (let i = 0; i < N; i++) t[i] = BigInt((i * 7919) % C);
const g = into ? new Float32Array(N * C).fill(0) : undefined;
const kb = (k) => Number(fs.readFileSync('/proc/self/status', 'utf8').split(String.fromCharCode(10)).find((l) => l.startsWith(k + ':')).replace(/[^0-9]/g, ''));
fs.writeFileSync('/proc/self/clear_refs', '5');
const before = kb('VmRSS');
sc.crossEntropy(sc.tensor(x, [N, C]), sc.tensor(t, [N]), { impl, labelSmoothing: 0.1, grad: true, ...(g ? { gradInto: g } : {}) });
process.stdout.write(JSON.stringify({ peakMiB: (kb('VmHWM') - before) / 1024 }));
`;

function run(cmd, args, env = {}) {
  return JSON.parse(execFileSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 24 }));
}
const median = (a) => { const s = [...a].sort((p, q) => p - q); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const fmt = (v) => (v < 1 ? `${(v * 1000).toFixed(1)} µs` : `${v.toFixed(2)} ms`);

const sizes = [[32, 10], [4096, 1000], [1024, 32000]];
const out = { date: new Date().toISOString(), rounds: ROUNDS, cases: [] };
for (const [N, C] of sizes) {
  for (const mode of ['fwd', 'grad']) {
    const acc = {};
    for (let r = 0; r < ROUNDS; r++) {
      // Interleaved: a slow spell of the machine lands on every column.
      for (const impl of ['fused', 'aten']) (acc[impl] ??= []).push(run(process.execPath, ['-e', NODE_CASE, impl, N, C, mode]));
      (acc.torch ??= []).push(run(PYTHON, ['-c', TORCH_CASE, N, C, mode]));
      (acc.tuned ??= []).push(run(PYTHON, ['-c', TORCH_CASE, N, C, mode], TUNED));
    }
    const m = (k, f) => median(acc[k].map((o) => o[f]));
    const c = {
      size: `${N}x${C}`, mode,
      fused: m('fused', 'steady'), aten: m('aten', 'steady'), torch: m('torch', 'steady'), torchTuned: m('tuned', 'steady'),
      fusedFirst: m('fused', 'first'), atenFirst: m('aten', 'first'), fusedLoop: m('fused', 'loop'), atenLoop: m('aten', 'loop'),
    };
    out.cases.push(c);
    process.stderr.write(`${c.size} ${mode}: fused ${fmt(c.fused)}, aten ${fmt(c.aten)}, PyTorch ${fmt(c.torch)} (tuned ${fmt(c.torchTuned)})\n`);
  }
}
out.asyncFirst = {};
for (const impl of ['aten', 'fused']) {
  out.asyncFirst[impl] = [];
  for (let r = 0; r < Math.max(ROUNDS, 3); r++) out.asyncFirst[impl].push(run(process.execPath, ['-e', ASYNC_CASE, impl]).worstGap);
}
out.peakRssMiB = {};
for (const [label, impl, into] of [['fused', 'fused', ''], ['fused, gradInto', 'fused', 'into'], ['aten', 'aten', '']]) {
  out.peakRssMiB[label] = [];
  for (let r = 0; r < ROUNDS; r++) out.peakRssMiB[label].push(run(process.execPath, ['-e', RSS_CASE, impl, into]).peakMiB);
}
if (flags.json) {
  console.log(JSON.stringify(out, null, 2));
} else {
  console.log(`# issue 21's goals, ${out.date}, ${ROUNDS} processes per case (medians)\n`);
  console.log('| size | pass | fused | aten | PyTorch | PyTorch tuned | PyTorch / aten | tuned / aten | PyTorch / fused | fused first / steady | aten first / steady | fused loop / steady | aten loop / steady |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const c of out.cases) {
    const x = (a, b) => `${(a / b).toFixed(2)}×`;
    console.log(`| ${c.size} | ${c.mode === 'fwd' ? 'fwd' : 'fwd+grad'} | ${fmt(c.fused)} | ${fmt(c.aten)} | ${fmt(c.torch)} | ${fmt(c.torchTuned)} | ${x(c.torch, c.aten)} | ${x(c.torchTuned, c.aten)} | ${x(c.torch, c.fused)} | ${x(c.fusedFirst, c.fused)} | ${x(c.atenFirst, c.aten)} | ${x(c.fusedLoop, c.fused)} | ${x(c.atenLoop, c.aten)} |`);
  }
  const g = (a) => a.map((v) => v.toFixed(1)).join(', ');
  console.log(`\nFirst crossEntropyAsync of a 64 MiB input, longest event-loop gap: aten ${g(out.asyncFirst.aten)} ms; fused ${g(out.asyncFirst.fused)} ms`);
  console.log(`Peak RSS of a first 1024×32000 forward+gradient call above the RSS before it: ${Object.entries(out.peakRssMiB).map(([k, v]) => `${k} ${g(v)} MiB`).join('; ')}`);
}
