/**
 * Peak memory of a streamed loss: ~2 GB of float32 logits (C = 1000) produced by a
 * generator, chunk by chunk, through a LossAccumulator, and the same logits as one
 * crossEntropy(..., { batchSize }) call over a buffer the process already holds.
 *
 *   npm run bench:stream                      (--gb 2 --rows 8192 --classes 1000)
 *   npm run bench:stream -- --gb 0.05 --check (also compares with one unchunked call)
 *
 * Prints the logits' total size, peak RSS (getrusage maxrss) and the exact mean.
 *
 * glibc note: with glibc's default (dynamic) mmap threshold, the memory ATen frees after
 * each chunk is retained by malloc and RSS climbs with the stream (measured: 2151 MB for
 * 2 GB). Disabling the dynamic threshold keeps it flat (measured: ~370 MB):
 *   MALLOC_MMAP_THRESHOLD_=1048576 npm run bench:stream
 */
import { crossEntropy, LossAccumulator, tensor, type Tensor } from '../lib/index';
import { arg } from './args';

const GB = arg('gb', 2);
const ROWS = arg('rows', 8192);
const C = arg('classes', 1000);
const CHECK = process.argv.includes('--check');
const TOTAL_ROWS = Math.floor((GB * 2 ** 30) / (4 * C));

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const peakRss = (): number => process.resourceUsage().maxRSS * 1024;

/** Deterministic logits and targets, one chunk at a time (a stand-in for a file or a model). */
function* chunks(): Generator<{ input: Tensor; target: Tensor }> {
  let seed = 12345;
  for (let start = 0; start < TOTAL_ROWS; start += ROWS) {
    const n = Math.min(ROWS, TOTAL_ROWS - start);
    const x = new Float32Array(n * C);
    for (let i = 0; i < x.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      x[i] = (seed / 4294967296 - 0.5) * 8;
    }
    const y = new BigInt64Array(n);
    for (let i = 0; i < n; i++) y[i] = i % 17 === 0 ? -100n : BigInt((start + i) % C);
    yield { input: tensor(x, [n, C]), target: tensor(y, [n]) };
  }
}

if (!process.env.MALLOC_MMAP_THRESHOLD_ && !process.env.MALLOC_TRIM_THRESHOLD_) {
  console.log('note: glibc dynamic mmap threshold active (set MALLOC_MMAP_THRESHOLD_=1048576 for flat RSS; see docs/serving.md)');
}
const options = { labelSmoothing: 0.1, weight: Float32Array.from({ length: C }, (_, c) => 0.5 + (c % 7) / 7) };
console.log(`streaming ${TOTAL_ROWS.toLocaleString('en-US')} rows x C = ${C} float32 = ${mb(TOTAL_ROWS * C * 4)} of logits, chunks of ${ROWS} rows (${mb(ROWS * C * 4)})`);
const rssStart = process.memoryUsage.rss();
const t0 = Date.now();
const acc = new LossAccumulator(options);
let sampled = 0;
for (const { input, target } of chunks()) {
  acc.update(input, target);
  sampled = Math.max(sampled, process.memoryUsage.rss());
}
console.log(
  `LossAccumulator: mean ${acc.result()} over ${acc.positions.toLocaleString('en-US')} positions (D = ${acc.denominator}); ` +
    `${((Date.now() - t0) / 1000).toFixed(1)} s\n` +
    `RSS before streaming ${mb(rssStart)}; highest RSS sampled after each chunk ${mb(sampled)}; ` +
    `process peak RSS (getrusage, includes loading) ${mb(peakRss())}`,
);

if (CHECK) {
  // Hold everything at once (only sensible for small --gb) and compare with one call.
  const all = [...chunks()];
  const x = new Float32Array(TOTAL_ROWS * C);
  const y = new BigInt64Array(TOTAL_ROWS);
  let off = 0;
  for (const c of all) {
    x.set(c.input.data as Float32Array, off * C);
    y.set(c.target.data as BigInt64Array, off);
    off += c.input.shape[0];
  }
  const one = crossEntropy(tensor(x, [TOTAL_ROWS, C]), tensor(y, [TOTAL_ROWS]), options).loss;
  const chunked = crossEntropy(tensor(x, [TOTAL_ROWS, C]), tensor(y, [TOTAL_ROWS]), { ...options, batchSize: ROWS }).loss;
  console.log(`one call: ${one}; batchSize ${ROWS}: ${chunked}; accumulator: ${acc.result()}; |acc - one| / one = ${Math.abs(acc.result() - one) / one}`);
}
