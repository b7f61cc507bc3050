/**
 * Matrix scaling: softmax(W z + b), W (K × K) and b (K), fitted to the minimum of
 *   mean NLL + λ/(K(K − 1)) Σ_{j≠l} W_jl² + μ/K Σ_j b_j²
 * (the off-diagonal and intercept regularisation, ODIR, of Kull et al., NeurIPS 2019;
 * λ = μ = 0 by default: plain matrix scaling). Convex; starts from W = I, b = 0.
 * Without ODIR, K(K + 1) parameters can separate small data sets: then the NLL has no
 * minimum; the fit drives it towards 0 (with ever larger weights) until the gradient is
 * under the tolerance. ODIR's penalties give every data set a finite minimum.
 */
import { rangeError, typeError } from '../../core/errors';
import { exactKeys, list, numbers, record } from './json';
import { applyScaling, fitScaling, SCALING_OPTIONS, scalingSettings, type Layout } from './scaling';
import type { MethodSpec } from './types';

export interface MatrixParams {
  /** θ row-major over j = 0..K−1: [W_j0 .. W_j(K−1), b_j]. */
  theta: Float64Array;
}

function layout(k: number): Layout {
  const P = k * (k + 1);
  const row = new Int32Array(P);
  const feat = new Int32Array(P);
  for (let a = 0; a < P; a++) {
    row[a] = Math.floor(a / (k + 1));
    feat[a] = a % (k + 1);
  }
  return { k, row, feat };
}

function penalty(k: number, lambda: number, mu: number): Float64Array | null {
  if (lambda === 0 && mu === 0) return null;
  const { row, feat } = layout(k);
  const c = new Float64Array(row.length);
  for (let a = 0; a < c.length; a++) {
    if (feat[a] === k) c[a] = mu / k;
    else if (feat[a] !== row[a]) c[a] = lambda / (k * (k - 1));
  }
  return c;
}

function odir(raw: unknown): { lambda: number; mu: number } {
  if (raw === undefined) return { lambda: 0, mu: 0 };
  const o = record(raw, 'odir');
  for (const key of Object.keys(o)) if (key !== 'lambda' && key !== 'mu') throw rangeError('odir', "an object { lambda, mu }", raw);
  const read = (name: 'lambda' | 'mu'): number => {
    const v = o[name] ?? 0;
    if (typeof v !== 'number') throw typeError(`odir.${name}`, 'a finite number >= 0', v);
    if (!(Number.isFinite(v) && v >= 0)) throw rangeError(`odir.${name}`, 'a finite number >= 0', v);
    return v;
  };
  return { lambda: read('lambda'), mu: read('mu') };
}

export const matrix: MethodSpec<MatrixParams> = {
  options: [...SCALING_OPTIONS, 'odir'],
  keep: ['lambda', 'mu'],
  settings(raw) {
    // From options: odir: { lambda, mu }; from JSON: the kept lambda and mu.
    const o = 'lambda' in raw || 'mu' in raw ? odir({ lambda: raw.lambda, mu: raw.mu }) : odir(raw.odir);
    return { ...scalingSettings(raw), ...o };
  },
  *fit(data, s) {
    const k = data.k;
    const start = new Float64Array(k * (k + 1));
    for (let j = 0; j < k; j++) start[j * (k + 1) + j] = 1;
    const r = yield* fitScaling(layout(k), data, start, penalty(k, s.lambda, s.mu), s);
    return { ...r, params: { theta: r.params } };
  },
  apply: (params, rows) => applyScaling(params.theta, layout(rows.k), rows),
  toJSON: ({ theta }) => {
    const k = Math.round((Math.sqrt(1 + 4 * theta.length) - 1) / 2);
    const W: number[][] = [];
    const b: number[] = [];
    for (let j = 0; j < k; j++) {
      W.push(list(theta.subarray(j * (k + 1), j * (k + 1) + k)));
      b.push(list(theta.subarray(j * (k + 1) + k, (j + 1) * (k + 1)))[0]);
    }
    return { W, b };
  },
  fromJSON(raw, k, where) {
    const o = exactKeys(raw, ['W', 'b'], where);
    if (!Array.isArray(o.W)) throw typeError(`${where}.W`, `an array of ${k} rows`, o.W);
    if (o.W.length !== k) throw rangeError(`${where}.W`, `an array of ${k} rows`, o.W);
    const b = numbers(o.b, `${where}.b`, k);
    const theta = new Float64Array(k * (k + 1));
    for (let j = 0; j < k; j++) {
      theta.set(numbers(o.W[j], `${where}.W[${j}]`, k), j * (k + 1));
      theta[j * (k + 1) + k] = b[j];
    }
    return { theta };
  },
};
