// Writes examples/onnx/digits-linear.onnx: a linear classifier of the 8×8 digits whose
// weights are the class means, logit_c = s·(x·μ_c − |μ_c|²/2) with s = 2 (nearest class mean;
// x = pixels / 16). Deterministic: running it again gives the same bytes.
//
//   node examples/onnx/make-model.js [out.onnx]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { classMeans, linearClassifierOnnx } = require('./onnx-model');

const SCALE = 2;
const file = path.join(__dirname, '..', '..', 'data', 'digits.csv.gz');
const rows = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8').split('\n').filter((l) => /^[0-9]/.test(l));
const x = new Float32Array(rows.length * 64);
const y = new Int32Array(rows.length);
rows.forEach((line, i) => {
  const v = line.split(',').map(Number);
  for (let j = 0; j < 64; j++) x[i * 64 + j] = v[j] / 16;
  y[i] = v[64];
});
const { w, b } = classMeans(x, y, rows.length, SCALE);
const out = process.argv[2] || path.join(__dirname, 'digits-linear.onnx');
fs.writeFileSync(out, linearClassifierOnnx(w, b, 64, 10));
console.log(`${out}: ${fs.statSync(out).size} bytes`);
