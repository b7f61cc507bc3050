// The handwritten digits of data/digits.csv.gz (64 pixels 0..16, then the digit, one image a
// line), as the examples use them: pixels scaled to [0, 1] in a Float32Array [n, 64], labels in
// an Int32Array [n].
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

function loadDigits(file = path.join(__dirname, '..', 'data', 'digits.csv.gz')) {
  const lines = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8').split('\n').filter((l) => /^[0-9]/.test(l));
  const x = new Float32Array(lines.length * 64);
  const y = new Int32Array(lines.length);
  lines.forEach((line, i) => {
    const v = line.split(',').map(Number);
    for (let j = 0; j < 64; j++) x[i * 64 + j] = v[j] / 16;
    y[i] = v[64];
  });
  return { x, y, n: lines.length };
}

module.exports = { loadDigits };
