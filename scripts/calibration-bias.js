#!/usr/bin/env node
'use strict';
/**
 * The bias of calibration-error estimators on perfectly calibrated synthetic data, the table
 * in docs/calibration.md ("Which estimator when"). Each repetition draws N rows of K = 10
 * logits z ~ N(0, 2²) and a label from softmax(z), so the model is calibrated by construction
 * (the true ECE, SmoothECE and top-label ECE are 0); every number an estimator reports is bias
 * plus noise. Columns: mean ± sd over the repetitions of binned ECE (15 equal-width bins,
 * Guo's convention), binned ECE over 15 equal-mass bins (adaptiveEce), and SmoothECE (relplot
 * 1.0.3's smECE), with SmoothECE's bandwidth.
 *
 *   npm run --silent build:ts && node scripts/calibration-bias.js [--reps 200] [--seed 1] [--json]
 */
const path = require('node:path');
const { parseArgs } = require('node:util');
const { calibration, tensor } = require(path.join(__dirname, '..', 'dist', 'index.js'));
const { Rng } = require(path.join(__dirname, '..', 'dist', 'demo', 'rng.js'));

const { values } = parseArgs({ options: { reps: { type: 'string', default: '200' }, seed: { type: 'string', default: '1' }, json: { type: 'boolean', default: false } } });
const REPS = Number(values.reps);
const K = 10;
const SCALE = 2;

function draw(n, rng) {
  const z = new Float64Array(n * K);
  const y = new Int32Array(n);
  const e = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let k = 0; k < K; k++) {
      z[i * K + k] = SCALE * rng.normal();
      m = Math.max(m, z[i * K + k]);
    }
    let s = 0;
    for (let k = 0; k < K; k++) s += e[k] = Math.exp(z[i * K + k] - m);
    let u = rng.float() * s;
    y[i] = K - 1;
    for (let k = 0; k < K; k++) {
      u -= e[k];
      if (u < 0) {
        y[i] = k;
        break;
      }
    }
  }
  return { z, y };
}

const stat = (xs) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return { mean, sd };
};

const rows = [];
for (const n of [100, 1000, 10000]) {
  const rng = new Rng(Number(values.seed) * 1000 + n);
  const reps = n === 10000 ? Math.max(10, Math.round(REPS / 4)) : REPS;
  const acc = { ece: [], adaptiveEce: [], smoothEce: [], bandwidth: [], accuracy: [] };
  for (let r = 0; r < reps; r++) {
    const { z, y } = draw(n, rng);
    const rep = calibration.report(tensor(z, [n, K]), tensor(y, [n]), { from: 'logits' });
    acc.ece.push(rep.ece);
    acc.adaptiveEce.push(rep.adaptiveEce);
    acc.smoothEce.push(rep.smoothEce);
    acc.bandwidth.push(rep.smoothEceBandwidth);
    acc.accuracy.push(rep.accuracy);
  }
  rows.push({ n, reps, ...Object.fromEntries(Object.entries(acc).map(([k, v]) => [k, stat(v)])) });
}
if (values.json) {
  console.log(JSON.stringify({ classes: K, logitScale: SCALE, rows }, null, 2));
} else {
  const f = (s) => `${s.mean.toFixed(4)} ± ${s.sd.toFixed(4)}`;
  console.log(`Perfectly calibrated synthetic data (K = ${K}, logits N(0, ${SCALE}²), label ~ softmax): the true calibration error is 0.`);
  console.log('Mean ± sd over repetitions; every value is the estimator\'s bias plus its noise.\n');
  console.log('| N | reps | binned ECE, 15 equal-width bins | binned ECE, 15 equal-mass bins | SmoothECE | SmoothECE bandwidth |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.n.toLocaleString('en')} | ${r.reps} | ${f(r.ece)} | ${f(r.adaptiveEce)} | ${f(r.smoothEce)} | ${r.bandwidth.mean.toFixed(4)} |`);
  console.log(`\n(accuracy of the synthetic model: ${(100 * rows[0].accuracy.mean).toFixed(1)}%)`);
}
