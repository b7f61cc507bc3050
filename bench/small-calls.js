#!/usr/bin/env node
'use strict';
/**
 * Small calls, the cost that differs most between LibTorch versions: µs per call of
 * crossEntropy on small inputs (impl 'aten', the default), sync, for a few kinds of call.
 * Run it under each LibTorch (here, then inside scripts/torch2.sh's chroot) and compare;
 * medians of --rounds rounds of --calls calls each, after a warm-up.
 *
 *   node bench/small-calls.js [--calls 3000] [--rounds 7] [--threads N] [--json]
 */
const path = require('node:path');
const s = require(path.join(__dirname, '..', 'dist', 'index.js'));

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const CALLS = Number(opt('--calls', 3000));
const ROUNDS = Number(opt('--rounds', 7));
if (opt('--threads', '')) s.setNumThreads(Number(opt('--threads', '1')));

function problem(n, c, prob) {
  const x = s.tensor(Float32Array.from({ length: n * c }, (_, i) => Math.sin(i * 0.7) * 3), [n, c]);
  if (prob) return [x, s.tensor(Float32Array.from({ length: n * c }, () => 1 / c), [n, c])];
  return [x, s.tensor(Array.from({ length: n }, (_, i) => (i * 3) % c), [n], 'int64')];
}
const kinds = [
  ['32x10 forward, eps 0.1', problem(32, 10), { labelSmoothing: 0.1 }],
  ['32x10 forward+grad, eps 0.1', problem(32, 10), { labelSmoothing: 0.1, grad: true }],
  ['32x10 forward, eps 0', problem(32, 10), {}],
  ['64x50 probabilities forward+grad', problem(64, 50, true), { grad: true }],
  ['256x100 forward+grad, eps 0.1', problem(256, 100), { labelSmoothing: 0.1, grad: true }],
];
const out = { torch: s.torchVersion(), threads: s.getNumThreads(), calls: CALLS, rounds: ROUNDS, results: [] };
for (const [name, [x, y], o] of kinds) {
  for (let i = 0; i < 500; i++) s.crossEntropy(x, y, o);
  const times = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) s.crossEntropy(x, y, o);
    times.push(Number(process.hrtime.bigint() - t0) / 1e3 / CALLS);
  }
  times.sort((a, b) => a - b);
  out.results.push({ name, medianUs: +times[Math.floor(times.length / 2)].toFixed(2), minUs: +times[0].toFixed(2) });
}
if (argv.includes('--json')) console.log(JSON.stringify(out));
else {
  console.log(`LibTorch ${out.torch}, ${out.threads} intra-op thread(s), ${CALLS} calls x ${ROUNDS} rounds`);
  for (const r of out.results) console.log(`  ${r.name.padEnd(36)} median ${String(r.medianUs).padStart(8)} us  min ${r.minUs} us`);
}
