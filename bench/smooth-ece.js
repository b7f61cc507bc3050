#!/usr/bin/env node
'use strict';
/**
 * npm run bench:smooth-ece: what SmoothECE adds to calibration.report at 1,000,000 rows (goal:
 * at most 2x the rest of report). reportAsync's event-loop stall (goal 20 ms), which now includes
 * the sliced per-row work, is measured by npm run bench:calibration.
 * "smoothEce" is the grid build and relplot's bandwidth search on the rows' float64
 * (confidence, correct); "rest" is report's total minus that.
 *
 *   node bench/smooth-ece.js [--rows 1000000] [--classes 10] [--reps 3] [--json]
 */
const path = require('node:path');
const { parseArgs } = require('node:util');
const dist = path.join(__dirname, '..', 'dist');
const { calibration, tensor } = require(path.join(dist, 'index.js'));
const { runSync, smoothEceSteps } = require(path.join(dist, 'calibration', 'smooth-ece.js'));
const { native } = require(path.join(dist, 'native.js'));

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

(() => {
  const results = [];
  for (let rep = 0; rep < REPS; rep++) {
    let t = performance.now();
    const r = calibration.report(scores, labels, { from: 'logits' });
    const total = performance.now() - t;
    // The native pass's per-row float64 values, as report() uses them.
    const rows = native().calibrationStats({ scores, labels, fromLogits: true, temperature: 1, bins: 15, convention: 0, classwise: false, adaptive: false, rows: true, tolerance: 1e-3, device: 'cpu' }).rows;
    t = performance.now();
    const se = runSync(smoothEceSteps(rows.confidence.data, rows.correct.data));
    const smooth = performance.now() - t;
    if (se.value !== r.smoothEce) throw new Error('bench: SmoothECE differs between report and the direct call');
    results.push({ totalMs: total, smoothEceMs: smooth, restMs: total - smooth, ratio: smooth / (total - smooth), bandwidth: r.smoothEceBandwidth });
  }
  if (values.json) return console.log(JSON.stringify({ rows: N, classes: K, results }));
  console.log(`calibration.report, ${N} x ${K} float32 logits (goal: smoothEce <= 2x the rest)\n`);
  console.log('| rep | report total ms | smoothEce ms | rest ms | smoothEce / rest | bandwidth |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  results.forEach((r, i) => console.log(`| ${i + 1} | ${r.totalMs.toFixed(0)} | ${r.smoothEceMs.toFixed(0)} | ${r.restMs.toFixed(0)} | ${r.ratio.toFixed(2)} | ${r.bandwidth} |`));
})();
