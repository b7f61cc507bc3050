#!/usr/bin/env node
'use strict';
/**
 * npm run bench:calibration: how long calibration.report blocks the event loop for a
 * 1M x 10 float32 batch, against reportAsync's longest event-loop stall (goal: 20 ms;
 * test/calibration-async.test.ts checks < 50 ms). A 1 ms timer probes the loop; the
 * longest gap between its ticks is the stall.
 *
 *   node bench/calibration-async.js [--rows 1000000] [--classes 10] [--reps 3] [--json]
 *
 * Cases: sync report(); reportAsync on an ordinary ArrayBuffer (snapshot copied on the JS
 * thread: the process's first call, then warm calls whose copy reuses mapped memory); and
 * reportAsync on a SharedArrayBuffer (read in place, no copy); and the probe alone with
 * nothing running, the noise floor of the machine it runs on.
 */
const path = require('node:path');
const { calibration, tensor } = require(path.join(__dirname, '..', 'dist', 'index.js'));

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? Number(argv[i + 1]) : dflt;
};
const N = opt('--rows', 1_000_000);
const K = opt('--classes', 10);
const REPS = opt('--reps', 3);
const GOAL_MS = 20;

function data(shared) {
  let s = 2026;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const z = shared ? new Float32Array(new SharedArrayBuffer(N * K * 4)) : new Float32Array(N * K);
  for (let i = 0; i < z.length; i++) z[i] = 4 * (rnd() - 0.5);
  const y = shared ? new Int32Array(new SharedArrayBuffer(N * 4)) : new Int32Array(N);
  for (let i = 0; i < N; i++) y[i] = Math.floor(rnd() * K);
  return { scores: tensor(z, [N, K]), labels: tensor(y, [N]) };
}

async function probe(run) {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 20));
  last = performance.now();
  longest = 0;
  const t0 = performance.now();
  await run();
  const total = performance.now() - t0;
  clearInterval(timer);
  longest = Math.max(longest, performance.now() - last);
  return { longest, total };
}

async function main() {
  const plain = data(false);
  const shared = data(true);
  const rows = [];
  const fmt = (x) => Math.round(x * 10) / 10;
  const add = (name, r) => rows.push({ case: name, longestStallMs: fmt(r.longest), totalMs: fmt(r.total) });
  // The noise floor: the same probe with nothing running, for as long as a report takes.
  add('nothing running (noise floor of this machine), 5 s', await probe(() => new Promise((r) => setTimeout(r, 5000))));
  add('reportAsync, plain ArrayBuffer, first call of the process', await probe(() => calibration.reportAsync(plain.scores, plain.labels, { from: 'logits' })));
  for (let i = 0; i < REPS; i++) add('reportAsync, plain ArrayBuffer, warm', await probe(() => calibration.reportAsync(plain.scores, plain.labels, { from: 'logits' })));
  for (let i = 0; i < REPS; i++) add('reportAsync, SharedArrayBuffer', await probe(() => calibration.reportAsync(shared.scores, shared.labels, { from: 'logits' })));
  add('report (sync), for comparison', await probe(async () => calibration.report(plain.scores, plain.labels, { from: 'logits' })));
  if (argv.includes('--json')) {
    console.log(JSON.stringify({ rows: N, classes: K, goalMs: GOAL_MS, results: rows }));
    return;
  }
  console.log(`calibration.reportAsync, ${N} x ${K} float32 logits: longest event-loop stall (goal ${GOAL_MS} ms)\n`);
  console.log('| case | longest stall ms | total ms | goal |');
  console.log('|---|---:|---:|---|');
  for (const r of rows) {
    const goal = r.case.startsWith('report (sync)') || r.case.startsWith('nothing') ? '' : r.longestStallMs <= GOAL_MS ? 'met' : 'MISSED';
    console.log(`| ${r.case} | ${r.longestStallMs} | ${r.totalMs} | ${goal} |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
