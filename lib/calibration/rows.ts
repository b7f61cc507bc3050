/**
 * Per-row top-label quantities that SmoothECE, top-label ECE and AURC need, computed in
 * float64 on this thread: the confidence (the top softmax probability, or the top given
 * probability), whether the argmax is the label, the predicted class, and Xia et al.'s
 * normalised max logit. Float32 inputs are widened exactly first, so the confidences are
 * those numpy computes from the float64 logits (relplot's multiclass_logits_to_confidences):
 * p = exp(z − max z) / Σ exp(z − max z), prediction = the first index of the largest p.
 * Work is split into steps of ROWS_PER_STEP rows (see smooth-ece.ts runSync / runSliced).
 */
import type { Tensor } from '../tensor';
import { ROWS_PER_STEP } from './smooth-ece';

export interface TopLabelRows {
  n: number;
  classes: number;
  /** Top probability per row. */
  confidence: Float64Array;
  /** 1 where the prediction equals the label. */
  correct: Uint8Array;
  /** The predicted class (first index of the largest probability). */
  predicted: Int32Array;
  /** Normalised max logit per row (from logits only): max_k (z_k − mean z) / ‖z − mean z‖₂; 0 for a constant row. */
  normalizedMaxLogit: Float64Array | null;
}

export function* topLabelRows(scores: Tensor, labels: Tensor, fromLogits: boolean, temperature: number): Generator<void, TopLabelRows> {
  const [n, k] = scores.shape;
  const z = scores.data as Float32Array | Float64Array;
  const lab = labels.data as Int32Array | BigInt64Array;
  const big = lab instanceof BigInt64Array;
  const confidence = new Float64Array(n);
  const correct = new Uint8Array(n);
  const predicted = new Int32Array(n);
  const nml = fromLogits ? new Float64Array(n) : null;
  const e = new Float64Array(k);
  for (let start = 0; start < n; start += ROWS_PER_STEP) {
    const end = Math.min(n, start + ROWS_PER_STEP);
    for (let i = start; i < end; i++) {
      const o = i * k;
      let best = 0;
      if (fromLogits) {
        let m = -Infinity;
        let mean = 0;
        for (let j = 0; j < k; j++) {
          const v = temperature === 1 ? z[o + j] : z[o + j] / temperature;
          e[j] = v;
          if (v > m) m = v;
          mean += z[o + j];
        }
        let s = 0;
        for (let j = 0; j < k; j++) s += e[j] = Math.exp(e[j] - m);
        let top = -1;
        for (let j = 0; j < k; j++) {
          const p = e[j] / s;
          if (p > top) {
            top = p;
            best = j;
          }
        }
        confidence[i] = top;
        // Normalised max logit (scale-free, so the temperature does not change it).
        mean /= k;
        let ss = 0;
        let zmax = -Infinity;
        for (let j = 0; j < k; j++) {
          const d = z[o + j] - mean;
          ss += d * d;
          if (z[o + j] > zmax) zmax = z[o + j];
        }
        nml![i] = ss > 0 ? (zmax - mean) / Math.sqrt(ss) : 0;
      } else {
        let top = -Infinity;
        for (let j = 0; j < k; j++) {
          if (z[o + j] > top) {
            top = z[o + j];
            best = j;
          }
        }
        confidence[i] = top;
      }
      predicted[i] = best;
      correct[i] = (big ? Number((lab as BigInt64Array)[i]) : (lab as Int32Array)[i]) === best ? 1 : 0;
    }
    yield;
  }
  return { n, classes: k, confidence, correct, predicted, normalizedMaxLogit: nml };
}
