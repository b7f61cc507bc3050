// Writes examples/onnx/digits-linear.onnx: a linear classifier of the 8×8 digits whose
// weights are the class means, logit_c = s·(x·μ_c − |μ_c|²/2) with s = 2 (nearest class mean;
// x = pixels / 16). Deterministic: running it again gives the same bytes.
//
//   node examples/onnx/make-model.js [out.onnx]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { linearClassifierOnnx } = require('./onnx-model');

const SCALE = 2;
const file = path.join(__dirname, '..', '..', 'data', 'digits.csv.gz');
const rows = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8').split('\n').filter((l) => /^[0-9]/.test(l));
const mu = new Float64Array(64 * 10);
const count = new Float64Array(10);
for (const line of rows) {
  const v = line.split(',').map(Number);
  const c = v[64];
  count[c]++;
  for (let j = 0; j < 64; j++) mu[j * 10 + c] += v[j] / 16;
}
const w = new Float32Array(640);
const b = new Float32Array(10);
for (let c = 0; c < 10; c++) {
  let sq = 0;
  for (let j = 0; j < 64; j++) {
    const m = mu[j * 10 + c] / count[c];
    w[j * 10 + c] = SCALE * m;
    sq += m * m;
  }
  b[c] = (-SCALE * sq) / 2;
}
const out = process.argv[2] || path.join(__dirname, 'digits-linear.onnx');
fs.writeFileSync(out, linearClassifierOnnx(w, b, 64, 10));
console.log(`${out}: ${fs.statSync(out).size} bytes`);
