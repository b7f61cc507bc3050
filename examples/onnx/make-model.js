// Writes examples/onnx/digits-linear.onnx: a linear classifier of the 8×8 digits whose
// weights are the class means, logit_c = s·(x·μ_c − |μ_c|²/2) with s = 2 (nearest class mean;
// x = pixels / 16). Deterministic: running it again gives the same bytes.
//
//   node examples/onnx/make-model.js [out.onnx]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { loadDigits } = require('../digits');
const { classMeans, linearClassifierOnnx } = require('./onnx-model');

const SCALE = 2;
const { x, y, n } = loadDigits();
const { w, b } = classMeans(x, y, n, SCALE);
const out = process.argv[2] || path.join(__dirname, 'digits-linear.onnx');
fs.writeFileSync(out, linearClassifierOnnx(w, b, 64, 10));
console.log(`${out}: ${fs.statSync(out).size} bytes`);
