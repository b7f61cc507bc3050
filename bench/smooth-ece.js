#!/usr/bin/env node
'use strict';
/**
 * npm run bench:smooth-ece: what SmoothECE adds to calibration.report at 1,000,000 rows (goal:
 * at most 2x the rest of report), and the longest event-loop stall of reportAsync (goal 20 ms).
 * "smoothEce" is the grid build and relplot's bandwidth search on the rows' float64
 * (confidence, correct); "rest" is report's total minus that.
 *
 *   node bench/smooth-ece.js [--rows 1000000] [--classes 10] [--reps 3] [--json]
 */
const path = require('node:path');
const { parseArgs } = require('node:util');
const dist = path.join(__dirname, '..', 'dist');
const { calibration, tensor } = require(path.join(dist, 'index.js'));
const { topLabelRows } = require(path.join(dist, 'calibration', 'rows.js'));
const { runSync, smoothEceSteps } = require(path.join(dist, 'calibration', 'smooth-ece.js'));

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, classes: { type: 'string', default: '10' }, reps: { type: 'string', default: '3' }, json: { type: 'boolean', default: false } } });
const N = Number(values.rows);
const K = Number(values.classes);
const REPS = Number(values.reps);

let s = 2026;
const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const z = new Float32Array(N * K);
const y = new Int32Array(N);
for (let i = 0; i < N; i++) {
  y[i] = Math.floor(rnd() * K);
  for (let k = 0; k < K; k++) z[i * K + k] = 4 * (rnd() - 0.5) + (k === y[i] && rnd() < 0.5 ? 3 : 0);
}
const scores = tensor(z, [N, K]);
const labels = tensor(y, [N]);

async function stall(run) {
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
  await run();
  clearInterval(timer);
  return Math.max(longest, performance.now() - last);
}

(async () => {
  const results = [];
  for (let rep = 0; rep < REPS; rep++) {
    let t = performance.now();
    const r = calibration.report(scores, labels, { from: 'logits' });
    const total = performance.now() - t;
    const rows = runSync(topLabelRows(scores, labels, true, 1));
    t = performance.now();
    const se = runSync(smoothEceSteps(rows.confidence, rows.correct));
    const smooth = performance.now() - t;
    if (se.value !== r.smoothEce) throw new Error('bench: SmoothECE differs between report and the direct call');
    const longest = await stall(() => calibration.reportAsync(scores, labels, { from: 'logits' }));
    results.push({ totalMs: total, smoothEceMs: smooth, restMs: total - smooth, ratio: smooth / (total - smooth), asyncLongestStallMs: longest, bandwidth: r.smoothEceBandwidth });
  }
  if (values.json) return console.log(JSON.stringify({ rows: N, classes: K, results }));
  console.log(`calibration.report, ${N} x ${K} float32 logits (goals: smoothEce <= 2x the rest; reportAsync stall <= 20 ms)\n`);
  console.log('| rep | report total ms | smoothEce ms | rest ms | smoothEce / rest | reportAsync longest stall ms | bandwidth |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  results.forEach((r, i) => console.log(`| ${i + 1} | ${r.totalMs.toFixed(0)} | ${r.smoothEceMs.toFixed(0)} | ${r.restMs.toFixed(0)} | ${r.ratio.toFixed(2)} | ${r.asyncLongestStallMs.toFixed(1)} | ${r.bandwidth} |`));
})();
