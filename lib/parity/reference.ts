/**
 * An independent float64 implementation of PyTorch's cross_entropy, written from the
 * formula rather than from ATen, to test the native path against:
 *
 *   q(c) = (1 − ε)·δ(c, c*) + ε/K                      (the smoothed target)
 *   ℓ_n  = −Σ_c a_{n,c} · log_softmax(x_n)_c
 *
 * with PyTorch's rules (docs: spec §1): for class-index targets
 * a_{n,c} = (1 − ε)·w[y_n]·δ(c, y_n) + (ε/C)·w_c, ignored positions contribute nothing,
 * and 'mean' divides both terms by D = Σ_{valid n} w[y_n] (computed as two separate
 * quotients, so D = 0 gives NaN; for uint8 targets the smoothing term compares ignore_index
 * wrapped to 8 bits, as PyTorch does, and has its own D); for probability targets a_{n,c} = w_c·t'_{n,c} with
 * t' = (1 − ε)·t + ε/C and 'mean' divides by the number of positions M.
 * The gradient is that of log_softmax: ∂L/∂x_{n,j} = p_{n,j}·Σ_c b_{n,c} − b_{n,j},
 * where b_{n,c} = ∂L/∂ℓ_n·a_{n,c} (times the reduction's factor).
 *
 * It computes in float64 whatever the input dtype (bfloat16/float16 inputs are not
 * rounded), and accepts exactly what crossEntropy accepts (same validation).
 */
import { prepare, type CrossEntropyOptions } from '../core/options';
import type { NativeTensor } from '../core/native';
import type { Tensor } from '../core/tensor';

export interface ReferenceResult {
  /** A number for 'mean'/'sum'; a float64 tensor shaped like the target positions for 'none'. */
  loss: number | Tensor<Float64Array>;
  /** d loss / d input, float64, with the input's shape. */
  grad: Tensor<Float64Array>;
}

function toFloat64(t: NativeTensor): Float64Array {
  const out = new Float64Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]);
  return out;
}

/** Reference cross-entropy in float64 (see the module comment for the formulas). */
export function crossEntropy(input: Tensor, target: Tensor, options?: Omit<CrossEntropyOptions, 'device'>): ReferenceResult {
  const prepared = prepare(input, target, { ...(options ?? {}), grad: true }, 'reference.crossEntropy');
  const { args, reduction, probabilityTarget } = prepared;
  const shape = args.input.shape;
  const x = toFloat64(args.input);
  const eps = args.labelSmoothing;
  const C = prepared.classes;
  const N = shape.length === 1 ? 1 : shape[0];
  let inner = 1;
  for (let k = 2; k < shape.length; k++) inner *= shape[k];
  const P = N * inner; // target positions
  const at = (p: number, c: number): number => (Math.floor(p / inner) * C + c) * inner + (p % inner);

  const w = new Float64Array(C).fill(1);
  if (args.weight) for (let c = 0; c < C; c++) w[c] = Number(args.weight.data[c]);

  // log_softmax over the class dimension.
  const logp = new Float64Array(x.length);
  for (let p = 0; p < P; p++) {
    let max = -Infinity;
    for (let c = 0; c < C; c++) max = Math.max(max, x[at(p, c)]);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(x[at(p, c)] - max);
    const lse = max + Math.log(s);
    for (let c = 0; c < C; c++) logp[at(p, c)] = x[at(p, c)] - lse;
  }

  // Upstream gradient per position (before the reduction's own factor).
  const go = args.gradOutput;
  const upstream = (p: number): number => (typeof go === 'number' ? go : go === null ? 1 : Number(go.data[reduction === 'none' ? p : 0]));

  const grad = new Float64Array(x.length);
  // b[c] for one position, then grad = p·Σb − b.
  const b = new Float64Array(C);
  const backprop = (p: number): void => {
    let total = 0;
    for (let c = 0; c < C; c++) total += b[c];
    for (let c = 0; c < C; c++) grad[at(p, c)] = Math.exp(logp[at(p, c)]) * total - b[c];
  };

  let loss: number | Tensor<Float64Array>;
  if (probabilityTarget) {
    const t = toFloat64(args.target);
    const smooth = (v: number): number => (eps > 0 ? v * (1 - eps) + eps / C : v);
    const perPos = new Float64Array(P);
    let total = 0; // Σ_n Σ_c w_c t' logp, negated at the end (empty sum → −0, as PyTorch)
    for (let p = 0; p < P; p++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += w[c] * smooth(t[at(p, c)]) * logp[at(p, c)];
      perPos[p] = -s;
      total += s;
    }
    const M = P;
    const factor = reduction === 'mean' ? 1 / M : 1;
    for (let p = 0; p < P; p++) {
      const g = upstream(p) * factor;
      for (let c = 0; c < C; c++) b[c] = g * w[c] * smooth(t[at(p, c)]);
      backprop(p);
    }
    if (reduction === 'none') loss = { data: perPos, shape: prepared.lossShape, dtype: 'float64' };
    else if (reduction === 'sum') loss = -total;
    // PyTorch: a 'mean' over an empty input (N×0 included: positions but no classes) is NaN.
    else loss = x.length === 0 ? NaN : -total / M;
  } else {
    const tgt = args.target.data;
    const ignore = args.ignoreIndex;
    // PyTorch's smoothing term masks `target == ignore_index` in the target's dtype: for uint8
    // targets ignore_index is compared wrapped to 8 bits (-100 as 156), nll_loss compares it as
    // is. Each term has its own mask and its own 'mean' denominator (the same for other dtypes).
    const smoothIgnore = args.target.dtype === 'uint8' ? BigInt.asUintN(8, ignore) : ignore;
    // Per position, once: the class nll_loss counts (−1 when ignored), and whether the
    // smoothing term counts the position.
    const cls = new Int32Array(P);
    const smooth = new Uint8Array(P);
    for (let p = 0; p < P; p++) {
      const v = typeof tgt[p] === 'bigint' ? (tgt[p] as bigint) : BigInt(tgt[p] as number);
      cls[p] = v === ignore ? -1 : Number(v);
      smooth[p] = eps > 0 && v !== smoothIgnore ? 1 : 0;
    }
    const classOf = (p: number): number => cls[p];
    const smoothed = (p: number): boolean => smooth[p] === 1;
    const nll = new Float64Array(P);
    const uni = new Float64Array(P);
    let sumNll = 0;
    let sumUni = 0;
    let D = 0; // Σ w[y] over the positions nll_loss counts
    let Du = 0; // the same over the positions the smoothing term counts
    for (let p = 0; p < P; p++) {
      const y = classOf(p);
      if (y >= 0) {
        nll[p] = w[y] * -logp[at(p, y)];
        sumNll += nll[p];
        D += w[y];
      }
      if (smoothed(p)) {
        const v = y >= 0 ? y : Number(tgt[p]); // a smoothed position's target is a class
        let u = 0;
        for (let c = 0; c < C; c++) u += w[c] * -logp[at(p, c)];
        uni[p] = u;
        sumUni += u;
        Du += w[v];
      }
    }
    const combine = (n: number, u: number): number => (eps > 0 ? (1 - eps) * n + (eps / C) * u : n);
    // Gradient: ∂L/∂nll_p = α_p, ∂L/∂u_p = β_p.
    const scale = reduction === 'mean' ? 1 / D : 1;
    const scaleU = reduction === 'mean' ? 1 / Du : 1;
    for (let p = 0; p < P; p++) {
      const y = classOf(p);
      if (y < 0 && !smoothed(p)) {
        b.fill(0);
      } else {
        const g = upstream(p);
        const beta = smoothed(p) ? (g * (eps / C)) * scaleU : 0;
        for (let c = 0; c < C; c++) b[c] = beta * w[c];
        if (y >= 0) b[y] += (eps > 0 ? (g * (1 - eps)) * scale : g * scale) * w[y];
      }
      backprop(p);
    }
    if (reduction === 'none') {
      const out = new Float64Array(P);
      for (let p = 0; p < P; p++) out[p] = combine(classOf(p) < 0 ? 0 : nll[p], smoothed(p) ? uni[p] : 0);
      loss = { data: out, shape: prepared.lossShape, dtype: 'float64' };
    } else if (reduction === 'sum') {
      loss = combine(sumNll, sumUni);
    } else {
      loss = combine(sumNll / D, sumUni / Du);
    }
  }
  return { loss, grad: { data: grad, shape: [...shape], dtype: 'float64' } };
}
