/**
 * Per-row top-label values that SmoothECE, top-label ECE and AURC need. The native pass
 * (binding/calibration.cc, calibration_stats with rows: true) computes them in float64 with
 * ATen, whatever the input dtype (float32 is widened exactly first), so the confidences are
 * those numpy computes from the float64 logits (relplot's multiclass_logits_to_confidences):
 * p = softmax(z / T), confidence = max p, prediction = the first index of the largest p.
 */
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
  /** Row indices by confidence descending, equal values in row order (ATen's stable sort). */
  order: Int32Array;
  /** The same by normalised max logit (from logits only). */
  orderNormalized: Int32Array | null;
}
