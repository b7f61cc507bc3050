#!/usr/bin/env node
'use strict';
/**
 * npm run bench: smoothce (ATen path and fused path, sync and async) side by side with
 * PyTorch from /usr/bin/python3 (default glibc allocator and a tuned one), TensorFlow.js
 * (wasm backend) and a memory-bandwidth floor, on the same machine and thread count.
 *
 *   node --expose-gc bench/run.js [--quick] [--json] [--out bench/RESULTS.md] [--sizes 32x10,4096x1000]
 *                                 [--threads 1,2] [--reps N] [--rounds N] [--no-torch] [--no-tfjs] [--no-linear]
 *
 * Then the fused linear cross-entropy cases of bench/linear-ce.js (--quick passed on; --no-linear skips them).
 *
 * Every case runs in its own process (so its peak RSS is its own): bench/node_case.js for
 * Node.js, bench/torch_case.py for PyTorch (timed inside Python). Forward = the mean loss
 * with labelSmoothing 0.1 (float32 logits, int64 targets); forward+gradient = loss and
 * d loss / d logits. Times are per call: median and min–max over the samples (for
 * sizes under ~10^6 logits a sample is a batch of back-to-back calls, ≥ ~10^6 logits per sample).
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const quick = flag('--quick');
const SIZES = opt('--sizes', '32x10,256x1000,4096x1000,1024x32000,256x128256')
  .split(',')
  .map((s) => s.split('x').map(Number));
const THREADS = opt('--threads', '1,2').split(',').map(Number);
const PYTHON = process.env.SMOOTHCE_BENCH_PYTHON || '/usr/bin/python3';
const EPS = 0.1;
// glibc settings for "PyTorch, tuned allocator": never mmap (MMAP_MAX_=0, so big blocks come
// from the heap and are reused), never give memory back (TRIM_THRESHOLD_), 32 MiB threshold
// (glibc's maximum; larger values are ignored).
const TUNED_ENV = {
  MALLOC_MMAP_THRESHOLD_: String(32 << 20),
  MALLOC_MMAP_MAX_: '0',
  MALLOC_TRIM_THRESHOLD_: String(2 ** 36),
};

function repsFor(n, c) {
  const r = Number(opt('--reps', 0));
  if (r) return r;
  const e = n * c;
  if (quick) return e > 1e7 ? 3 : 7;
  return e > 1e7 ? 7 : e > 1e6 ? 15 : 21;
}

function runCase(label, cmd, args, env) {
  process.stderr.write(`  ${label} ... `);
  const t0 = Date.now();
  try {
    const out = execFileSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
    process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    return JSON.parse(out.trim().split('\n').pop());
  } catch (e) {
    process.stderr.write(`FAILED\n${e.stderr || e.message}\n`);
    return { error: String(e.stderr || e.message).split('\n').slice(-3).join(' ') };
  }
}

function stats(times) {
  if (!times || !times.length) return null;
  const s = [...times].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

const VARIANTS = [
  { key: 'fused', label: 'smoothce fused (sync)', kind: 'fused' },
  { key: 'fused-async', label: 'smoothce fused (async)', kind: 'fused', async: true },
  { key: 'fused-inplace', label: 'smoothce fused, gradInto = input', kind: 'fused-inplace' },
  // A short script, or a training loop written the obvious way: a fresh process makes 20 back-to-back synchronous
  // calls that never yield to the event loop, so no result is finalized and no buffer recycled (bench/node_case.js
  // loop()); call 1 is the process's first call. Sizes with an output of >= 512 KiB; `procs` processes a round.
  { key: 'fused-loop', label: 'smoothce fused, fresh process, 20-call loop that never yields', kind: 'first-loop', impl: 'fused', minLogits: 2 ** 17, procs: 2 },
  { key: 'aten', label: 'smoothce aten (sync)', kind: 'aten' },
  { key: 'aten-async', label: 'smoothce aten (async)', kind: 'aten', async: true },
  { key: 'aten-loop', label: 'smoothce aten, fresh process, 20-call loop that never yields', kind: 'first-loop', impl: 'aten', minLogits: 2 ** 17, procs: 2 },
  // The ATen path with c10's default CPU allocator (glibc), as before the addon installed its own: the allocator's effect.
  { key: 'aten-c10', label: 'smoothce aten, c10 default allocator (SMOOTHCE_ATEN_ALLOCATOR=default)', kind: 'aten', env: { SMOOTHCE_ATEN_ALLOCATOR: 'default' }, minLogits: 2 ** 17 },
  { key: 'torch', label: 'PyTorch (default malloc)', torch: true },
  { key: 'torch-tuned', label: 'PyTorch (tuned malloc)', torch: true, env: TUNED_ENV },
  { key: 'tfjs', label: 'TensorFlow.js wasm', kind: 'tfjs', oneThread: true },
  { key: 'floor', label: 'bandwidth floor', kind: 'floor' },
];

// The first crossEntropyAsync calls of a fresh process with a 64 MB input (2048×8000 float32): how long each
// blocks the JavaScript thread while it snapshots its inputs. Once a round, for both impls.
const ASYNC_FIRST = [
  { key: 'fused-async-first', label: 'smoothce fused', kind: 'async-first', impl: 'fused', procs: 2 },
  { key: 'aten-async-first', label: 'smoothce aten', kind: 'async-first', impl: 'aten', procs: 2 },
];
const ASYNC_FIRST_SIZE = [2048, 8000];

const SCALING = { key: 'scaling', label: 'fused 1 vs 2 threads, interleaved in one process', kind: 'scaling' };
const SCALING_METRICS = [
  ['fwd', 'fused fwd'],
  ['fwdGrad', 'fused fwd+grad'],
  ['floorRead', 'read floor'],
  ['floorReadWrite', 'read+write floor'],
  ['compute', 'compute floor (register-only multiply-adds)'],
];

function main() {
  const skip = new Set([...(flag('--no-torch') ? ['torch', 'torch-tuned'] : []), ...(flag('--no-tfjs') ? ['tfjs'] : [])]);
  // --rounds N (default 2, 1 with --quick): the whole matrix N times, every other round in reverse order, each case's
  // samples pooled over the rounds. This VM's speed drifts by up to 2x for minutes at a
  // time; pooling spreads a slow spell over every implementation instead of the few cases
  // that happened to run in it.
  const rounds = Math.max(1, Number(opt('--rounds', quick ? 1 : 2)) || 1);
  const plan = [];
  for (const [n, c] of SIZES) {
    for (const threads of THREADS) {
      for (const v of VARIANTS) {
        if (skip.has(v.key)) continue;
        if (v.oneThread && threads !== THREADS[0]) continue;
        if (v.minLogits && n * c < v.minLogits) continue;
        plan.push({ n, c, threads, v });
      }
    }
    // The paired thread-scaling case (bench/node_case.js scaling()): sizes large enough for
    // the fused kernel to start threads (2^18 logits).
    if (THREADS.includes(1) && THREADS.includes(2) && n * c >= 2 ** 18) plan.push({ n, c, threads: 2, v: SCALING });
  }
  if (!flag('--no-async-first')) for (const v of ASYNC_FIRST) plan.push({ n: ASYNC_FIRST_SIZE[0], c: ASYNC_FIRST_SIZE[1], threads: THREADS[0], v });
  const samples = new Map(); // plan index -> { fwd: [], fwdGrad: [], peakFwdMB, peakGradMB, error }
  for (let round = 0; round < rounds; round++) {
    const order = plan.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    let heading = '';
    for (const i of order) {
      const { n, c, threads, v } = plan[i];
      const h = `${n}x${c}, ${threads} thread(s)${rounds > 1 ? `, round ${round + 1}/${rounds}` : ''}`;
      if (h !== heading) process.stderr.write(`${(heading = h)}\n`);
      const cfg = { n, c, threads: v.oneThread ? 1 : threads, reps: repsFor(n, c), eps: EPS, seed: 1, warmup: quick ? 1 : 2, kind: v.kind, async: !!v.async, impl: v.impl };
      const env = { OMP_NUM_THREADS: String(cfg.threads), ...(v.env || {}) };
      for (let proc = 0; proc < (v.procs || 1); proc++) {
      const r = v.torch
        ? runCase(v.label, PYTHON, [path.join(__dirname, 'torch_case.py'), JSON.stringify(cfg)], env)
        : runCase(v.label, process.execPath, ['--expose-gc', path.join(__dirname, 'node_case.js'), JSON.stringify(cfg)], env);
      const acc = samples.get(i) || { fwd: [], fwdGrad: [], fwdInference: [], first: [], blocked: [], firstBlocked: [], lag: [], peakFwdMB: undefined, peakGradMB: undefined, error: undefined, scaling: {} };
      if (r.error) acc.error = r.error;
      for (const k of ['fwdInference', 'first', 'blocked', 'firstBlocked', 'lag']) acc[k].push(...(r[k] || []));
      for (const [k, v] of Object.entries(r.scaling || {})) {
        const to = (acc.scaling[k] ||= { t1: [], t2: [] });
        to.t1.push(...v.t1);
        to.t2.push(...v.t2);
      }
      acc.fwd.push(...(r.fwd || []));
      acc.fwdGrad.push(...(r.fwdGrad || []));
      const max = (a, b) => (a === undefined ? b : b === undefined ? a : Math.max(a, b));
      acc.peakFwdMB = max(acc.peakFwdMB, r.peakFwdMB);
      acc.peakGradMB = max(acc.peakGradMB, r.peakGradMB);
      samples.set(i, acc);
      }
    }
  }
  const scaling = [];
  plan.forEach(({ n, c, v }, i) => {
    if (v !== SCALING) return;
    const a = samples.get(i);
    const metrics = {};
    for (const [k] of SCALING_METRICS) {
      const m = a.scaling[k];
      if (m) metrics[k] = { t1: stats(m.t1), t2: stats(m.t2) };
    }
    scaling.push({ n, c, metrics, error: a.error });
  });
  const asyncFirst = plan.flatMap(({ n, c, threads, v }, i) => {
    if (!ASYNC_FIRST.includes(v)) return [];
    const a = samples.get(i);
    return { n, c, threads, variant: v.key, label: v.label, firstBlocked: stats(a.firstBlocked), blocked: stats(a.blocked), lag: stats(a.lag), error: a.error };
  });
  const results = plan.flatMap(({ n, c, threads, v }, i) => {
    if (v === SCALING || ASYNC_FIRST.includes(v)) return [];
    const a = samples.get(i);
    const row = { n, c, threads: v.oneThread ? 1 : threads, rowThreads: threads, variant: v.key, label: v.label, fwd: stats(a.fwd), fwdGrad: stats(a.fwdGrad), first: stats(a.first), peakFwdMB: a.peakFwdMB, peakGradMB: a.peakGradMB, error: a.error };
    // PyTorch's forward entered through `with torch.inference_mode():` on every call: beside the plain call, never instead.
    if (v.torch && a.fwdInference.length) {
      return [row, { ...row, variant: `${v.key}-inference-mode`, label: `${v.label}, fwd under torch.inference_mode() per call`, fwd: stats(a.fwdInference), fwdGrad: null, peakFwdMB: undefined, peakGradMB: undefined }];
    }
    return row;
  });
  const meta = {
    date: new Date().toISOString(),
    machine: `${os.cpus()[0].model}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}`,
    node: process.version,
    loadavg: os.loadavg().map((x) => x.toFixed(1)).join(' '),
    thp: (() => { try { return fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').trim(); } catch { return 'unknown'; } })(),
    quick,
    rounds,
    eps: EPS,
    hugeCacheMB: process.env.SMOOTHCE_HUGE_CACHE_MB || '512 (default)',
    tunedMalloc: Object.entries(TUNED_ENV).map(([k, v]) => `${k}=${v}`).join(' '),
  };
  if (flag('--json')) {
    process.stdout.write(JSON.stringify({ meta, results, scaling, asyncFirst }, null, 2) + '\n');
  }
  let md = markdown(meta, results, scaling, asyncFirst);
  if (!flag('--json')) process.stdout.write(md);
  // The fused linear cross-entropy cases (issue 28): bench/linear-ce.js, each case in fresh processes.
  if (!flag('--no-linear') && !flag('--json')) {
    const linear = execFileSync(process.execPath, [path.join(__dirname, 'linear-ce.js'), ...(quick ? ['--quick'] : []), ...(flag('--no-torch') ? ['--no-torch'] : [])], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    });
    process.stdout.write('\n' + linear);
    md += '\n' + linear;
  }
  const outFile = opt('--out', quick ? null : path.join(__dirname, 'RESULTS.md'));
  if (outFile) fs.writeFileSync(outFile, md);
}

const fmt = (s) => (s == null ? 'n/a' : s < 1e-3 ? `${(s * 1e6).toFixed(1)} µs` : s < 1 ? `${(s * 1e3).toFixed(2)} ms` : `${s.toFixed(2)} s`);
const cell = (st) => (st ? `${fmt(st.median)} (${fmt(st.min)}–${fmt(st.max)})` : 'n/a');
const ratio = (a, b) => (a && b ? `${(a.median / b.median).toFixed(2)}×` : 'n/a');

function markdown(meta, results, scaling, asyncFirst) {
  const L = [];
  L.push(`# smoothce benchmark`, '');
  L.push(`- Date: ${meta.date}`);
  if (meta.rounds > 1) L.push(`- Rounds: ${meta.rounds} passes over the whole matrix, every other one in reverse order; each case's samples from all passes are pooled (medians below are of the pooled samples).`);
  L.push(`- Machine: ${meta.machine}; Node ${meta.node}; load average at the end ${meta.loadavg} (the CPU was shared: expect noise)`);
  L.push(`- Transparent huge pages: \`${meta.thp}\``);
  L.push(`- Workload: float32 logits N×C, int64 targets, labelSmoothing ${meta.eps}, reduction mean. fwd = loss only, fwd+grad = loss and d loss/d logits.`);
  L.push(`- smoothce allocator settings: outputs ≥ 512 KiB of the fused path and ATen's own allocations ≥ 512 KiB (a c10 CPU allocator the addon installs when it loads) are 2 MiB-aligned mmaps with MADV_HUGEPAGE, freed ones cached for reuse (SMOOTHCE_HUGE_CACHE_MB=${meta.hugeCacheMB}); the "c10 default allocator" row runs with SMOOTHCE_ATEN_ALLOCATOR=default (ATen's allocations from glibc, as before). Each timed sample follows a gc() and event-loop turns (so the previous call's outputs are freed) and then one untimed forward call of the same size (so the cores are awake, as in PyTorch's back-to-back loop); none of this is timed.`);
  L.push(`- PyTorch: /usr/bin/python3, timed inside Python with time.perf_counter; default = glibc defaults; tuned = \`${meta.tunedMalloc}\`. fwd is the plain call \`F.cross_entropy(x, t, label_smoothing=${meta.eps}).item()\` on an input that does not require grad (PyTorch's fastest idiomatic forward); the same call inside \`with torch.inference_mode():\` entered on every call is the "inference_mode" row, beside it. Before 2026-12-02 the fwd column was the inference_mode form.`);
  L.push(`- TensorFlow.js: @tensorflow/tfjs-backend-wasm, one thread (its Node.js build runs single-threaded), tf.losses.softmaxCrossEntropy with one-hot labels made outside the timing; fwd+grad = tf.valueAndGrad.`);
  L.push(`- Fresh-process loop rows (sizes with a gradient of at least 512 KiB; 2 processes a round): a fresh process (package required, inputs made, nothing else called) makes 20 forward+gradient calls back to back without yielding to the event loop, as a short script or a training loop without await does; all 20 are timed, their median and range are in the fwd+grad column; the first call of each process is listed under the table. No result's finalizer can run in such a loop, so past the external-buffer cap (four results of that size) each gradient is a fresh V8-owned buffer; its peak RSS is the whole loop's. \`gradInto\` avoids all of this (the gradInto row).`);
  L.push(`- Floor: fwd = one vectorised read pass over the logits; fwd+grad = one read + one write pass into a pre-faulted buffer (same threads).`);
  L.push(`- Peak RSS: ru_maxrss minus RSS after the inputs were created, over the whole process (fwd+grad column: max of both phases).`);
  L.push(`- Paired 1 → 2 threads: one process per size and round alternates 1 and 2 threads sample by sample (waiting 60 ms after each switch, while ATen's re-created thread pool spins), so a slow spell of the VM lands on both counts; it also times the floors and a compute floor (register-only multiply-adds, sized like one 1-thread forward call), which show what a second thread can give on this machine at that moment. Ratios are of medians.`, '');
  const sizes = [...new Set(results.map((r) => `${r.n}x${r.c}`))];
  for (const size of sizes) {
    const threadsList = [...new Set(results.filter((r) => `${r.n}x${r.c}` === size).map((r) => r.rowThreads))];
    for (const t of threadsList) {
      const rows = results.filter((r) => `${r.n}x${r.c}` === size && r.rowThreads === t);
      L.push(`## ${size.replace('x', '×')}, ${t} thread${t > 1 ? 's' : ''}`, '');
      L.push('| implementation | fwd median (min–max) | fwd+grad median (min–max) | peak RSS above inputs, fwd / fwd+grad |');
      L.push('|---|---|---|---|');
      for (const r of rows) {
        const label = r.threads !== t ? `${r.label} (1 thread)` : r.label;
        const mbOf = (v) => (v == null ? 'n/a' : v.toFixed(1));
        const rss = r.peakFwdMB == null && r.peakGradMB == null ? 'n/a' : `${mbOf(r.peakFwdMB)} / ${mbOf(r.peakGradMB)} MB`;
        L.push(`| ${label} | ${r.error ? 'error: ' + r.error : cell(r.fwd)} | ${r.error ? '' : cell(r.fwdGrad)} | ${rss} |`);
      }
      const get = (k) => rows.find((r) => r.variant === k) || results.find((r) => `${r.n}x${r.c}` === size && r.variant === k);
      const f = get('fused'), a = get('aten'), pt = get('torch'), ptt = get('torch-tuned'), tj = get('tfjs'), fl = get('floor');
      L.push('');
      L.push(`Ratios (median/median): fwd — PyTorch/fused ${ratio(pt?.fwd, f?.fwd)}, PyTorch/aten ${ratio(pt?.fwd, a?.fwd)}, PyTorch tuned/aten ${ratio(ptt?.fwd, a?.fwd)}, tfjs/fused ${ratio(tj?.fwd, f?.fwd)}, fused/floor ${ratio(f?.fwd, fl?.fwd)}; ` +
        `fwd+grad — PyTorch default/fused ${ratio(pt?.fwdGrad, f?.fwdGrad)}, PyTorch tuned/fused ${ratio(ptt?.fwdGrad, f?.fwdGrad)}, PyTorch default/aten ${ratio(pt?.fwdGrad, a?.fwdGrad)}, PyTorch tuned/aten ${ratio(ptt?.fwdGrad, a?.fwdGrad)}, tfjs/fused ${ratio(tj?.fwdGrad, f?.fwdGrad)}, fused/floor ${ratio(f?.fwdGrad, fl?.fwdGrad)}, fused gradInto=input/floor ${ratio(get('fused-inplace')?.fwdGrad, fl?.fwdGrad)}.`);
      const firsts = [['fused', 'fused-loop'], ['aten', 'aten-loop']].flatMap(([steadyKey, loopKey]) => {
        const st = get(steadyKey), lp = rows.find((r) => r.variant === loopKey);
        if (!st?.fwdGrad || !lp?.first) return [];
        return [`${steadyKey}: first call ${fmt(lp.first.median)} (${fmt(lp.first.min)}–${fmt(lp.first.max)}, ${lp.first.n} processes) = ${ratio(lp.first, st.fwdGrad)} its steady state, loop median ${ratio(lp.fwdGrad, st.fwdGrad)}`];
      });
      if (firsts.length) L.push('', `Fresh process, fwd+grad, against the steady-state median above: ${firsts.join('; ')}.`);
      L.push('');
    }
    const one = results.find((r) => `${r.n}x${r.c}` === size && r.variant === 'fused' && r.rowThreads === 1);
    const two = results.find((r) => `${r.n}x${r.c}` === size && r.variant === 'fused' && r.rowThreads === 2);
    if (one && two) L.push(`Fused, 1 → 2 threads (the two tables above, separate processes): fwd ${ratio(one.fwd, two.fwd)}, fwd+grad ${ratio(one.fwdGrad, two.fwdGrad)} faster.`, '');
    const sc = scaling.find((s) => `${s.n}x${s.c}` === size);
    if (sc) {
      if (sc.error) L.push(`Paired 1 → 2 threads: error: ${sc.error}`, '');
      else {
        const parts = SCALING_METRICS.filter(([k]) => sc.metrics[k]).map(([k, label]) => {
          const m = sc.metrics[k];
          return `${label} ${ratio(m.t1, m.t2)} (${fmt(m.t1.median)} → ${fmt(m.t2.median)})`;
        });
        L.push(`Paired 1 → 2 threads (one process, 1- and 2-thread samples interleaved, ${sc.metrics.fwd ? sc.metrics.fwd.t1.n : 0} each): ${parts.join('; ')}.`, '');
      }
    }
  }
  if (asyncFirst?.length) {
    const [n, c] = [asyncFirst[0].n, asyncFirst[0].c];
    L.push(`## First crossEntropyAsync calls of a fresh process, ${n}×${c} float32 (${((n * c * 4) / 2 ** 20).toFixed(1)} MiB input), fwd+grad`, '');
    L.push('Time the JavaScript thread spends inside the call (it snapshots the inputs before returning its promise), each call awaited before the next; the event loop\'s largest delay over the calls (1 ms interval timer).', '');
    L.push('| impl | call 1 blocks (median, min–max over processes) | calls 1–5 block | largest event-loop delay |');
    L.push('|---|---|---|---|');
    for (const r of asyncFirst) L.push(`| ${r.label} | ${r.error ? 'error: ' + r.error : cell(r.firstBlocked)} | ${cell(r.blocked)} | ${cell(r.lag)} |`);
    L.push('');
  }
  return L.join('\n') + '\n';
}

main();
