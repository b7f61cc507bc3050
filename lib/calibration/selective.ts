/**
 * Selective classification: the area under the risk–coverage curve (AURC) and the curve.
 *
 * Rows are ranked from the most to the least confident by a score (the top probability, or
 * Xia et al.'s normalised max logit); rows with equal scores keep their input order (the
 * earlier row counts as more confident), a stable sort, so the value is reproducible and
 * matches `numpy.argsort(-score, kind='stable')`. With E_k the errors among the first k rows,
 *   AURC = (1/N) Σ_{k=1..N} E_k / k.
 * The ranking is ATen's stable sort in the native pass (binding/aten/calibration.cc, on the
 * pool for the async forms); this file only walks it.
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

/** AURC and the risk–coverage curve of rows in `order` (most confident first). */
export function* riskCoverage(order: Int32Array, correct: Uint8Array, kind: SelectiveScore): Generator<void, RiskCoverage> {
  const n = order.length;
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
