// Deterministic data for the distributed tests: the full set, and rank r's shard of it
// (shards of unequal sizes, so that a mean of means would be visibly wrong).
'use strict';

function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function dataset(n, c, seed) {
  const rnd = lcg(seed);
  const logits = new Float64Array(n * c);
  for (let i = 0; i < logits.length; i++) logits[i] = (rnd() * 2 - 1) * 4;
  const target = new BigInt64Array(n);
  for (let i = 0; i < n; i++) target[i] = rnd() < 0.1 ? -100n : BigInt(Math.floor(rnd() * c));
  const labels = new BigInt64Array(n);
  for (let i = 0; i < n; i++) labels[i] = target[i] < 0n ? 0n : target[i];
  return { n, c, logits, target, labels };
}

/** [start, end) rows of rank r among `world` ranks; rank r gets roughly (r + 1) parts. */
function shard(n, world, r) {
  const weights = Array.from({ length: world }, (_, i) => i + 1);
  const total = weights.reduce((a, b) => a + b, 0);
  let start = 0;
  for (let i = 0; i < r; i++) start += Math.floor((n * weights[i]) / total);
  const end = r === world - 1 ? n : start + Math.floor((n * weights[r]) / total);
  return [start, end];
}

function rows(d, start, end) {
  return {
    logits: { data: d.logits.subarray(start * d.c, end * d.c), shape: [end - start, d.c], dtype: 'float64' },
    target: { data: d.target.subarray(start, end), shape: [end - start], dtype: 'int64' },
    labels: { data: d.labels.subarray(start, end), shape: [end - start], dtype: 'int64' },
  };
}

const LOSS_OPTIONS = { labelSmoothing: 0.1, weight: [1, 2, 0.5, 1.5, 1, 1, 0.25], ignoreIndex: -100 };
const CALIBRATION_OPTIONS = { from: 'logits', bins: 15 };

module.exports = { dataset, shard, rows, LOSS_OPTIONS, CALIBRATION_OPTIONS };
