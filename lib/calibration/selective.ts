/**
 * Selective classification: the area under the risk–coverage curve (AURC) and the curve.
 *
 * Rows are ranked from the most to the least confident by a score (the top probability, or
 * Xia et al.'s normalised max logit); rows with equal scores keep their input order (the
 * earlier row counts as more confident), a stable sort, so the value is reproducible and
 * matches `numpy.argsort(-score, kind='stable')`. With E_k the errors among the first k rows,
 *   AURC = (1/N) Σ_{k=1..N} E_k / k.
 * The sort is an LSD radix sort on the float64 bit patterns (4 passes of 16 bits), O(N).
 */
import { ROWS_PER_STEP } from './smooth-ece';

export interface RiskCoverage {
  /** (1/N) Σ_k E_k / k. */
  aurc: number;
  /** Up to 100 points (k = ⌈jN/100⌉, j = 1..100) of the risk–coverage curve: coverage k/N and selective risk E_k/k. */
  coverage: number[];
  risk: number[];
  /** What ranked the rows. */
  score: SelectiveScore;
}

export type SelectiveScore = 'msp' | 'normalized-max-logit';
export const SELECTIVE_SCORES: readonly SelectiveScore[] = ['msp', 'normalized-max-logit'];

/** Row indices ordered by score descending, ties by row index ascending. */
export function* argsortDescending(score: Float64Array): Generator<void, Uint32Array> {
  const n = score.length;
  const src = new Uint32Array(score.buffer, score.byteOffset, 2 * n); // little-endian [lo, hi] pairs
  const bits = new Uint32Array(2 * n);
  let idx = new Uint32Array(n);
  // Map to unsigned keys ordered like the numbers, then invert for descending order.
  for (let i = 0; i < n; i++) {
    if ((i & 0xffff) === 0xffff) yield;
    idx[i] = i;
    let lo = src[2 * i];
    let hi = src[2 * i + 1];
    if (hi & 0x80000000) {
      hi = ~hi >>> 0;
      lo = ~lo >>> 0;
    } else hi = (hi | 0x80000000) >>> 0;
    bits[2 * i] = ~lo >>> 0;
    bits[2 * i + 1] = ~hi >>> 0;
  }
  let tmp = new Uint32Array(n);
  const counts = new Uint32Array(65536);
  for (let pass = 0; pass < 4; pass++) {
    const word = pass >> 1;
    const shift = (pass & 1) * 16;
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      if ((i & 0xffff) === 0xffff) yield;
      counts[(bits[2 * i + word] >>> shift) & 0xffff]++;
    }
    if (counts.some((c) => c === n)) continue; // every key has this digit: the pass would not move anything
    let sum = 0;
    for (let d = 0; d < 65536; d++) {
      const c = counts[d];
      counts[d] = sum;
      sum += c;
    }
    for (let s = 0; s < n; s += ROWS_PER_STEP) {
      const e = Math.min(n, s + ROWS_PER_STEP);
      for (let i = s; i < e; i++) {
        const r = idx[i];
        tmp[counts[(bits[2 * r + word] >>> shift) & 0xffff]++] = r;
      }
      yield;
    }
    const t = idx;
    idx = tmp;
    tmp = t;
  }
  return idx;
}

/** AURC and the risk–coverage curve of rows ranked by `score` (descending, stable). */
export function* riskCoverage(score: Float64Array, correct: Uint8Array, kind: SelectiveScore): Generator<void, RiskCoverage> {
  const n = score.length;
  const order = yield* argsortDescending(score);
  const points = Math.min(n, 100);
  const coverage: number[] = [];
  const risk: number[] = [];
  let next = 1;
  const at = (j: number): number => Math.ceil((j * n) / points);
  let errors = 0;
  let sum = 0;
  for (let k = 1; k <= n; k++) {
    if (!correct[order[k - 1]]) errors++;
    sum += errors / k;
    while (next <= points && at(next) === k) {
      coverage.push(k / n);
      risk.push(errors / k);
      next++;
    }
    if (k % ROWS_PER_STEP === 0) yield;
  }
  return { aurc: sum / n, coverage, risk, score: kind };
}
