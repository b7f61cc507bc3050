/**
 * Vector scaling: softmax(w ⊙ z + b), w and b of length K, fitted to the minimum of the
 * mean NLL (convex in w and b), starting from w = 1, b = 0 (the scores as they are).
 * netcal calls it LogisticCalibration (temperature = false, per-class scale and bias).
 */
import { exactKeys, list, numbers } from './json';
import { applyScaling, fitScaling, SCALING_OPTIONS, scalingSettings, type Layout } from './scaling';
import type { MethodSpec } from './types';

export interface VectorParams {
  /** θ = [w_0 .. w_{K−1}, b_0 .. b_{K−1}]. */
  theta: Float64Array;
}

function layout(k: number): Layout {
  const row = new Int32Array(2 * k);
  const feat = new Int32Array(2 * k);
  for (let j = 0; j < k; j++) {
    row[j] = j;
    feat[j] = j;
    row[k + j] = j;
    feat[k + j] = k;
  }
  return { k, row, feat };
}

export const vector: MethodSpec<VectorParams> = {
  options: SCALING_OPTIONS,
  keep: [],
  settings: scalingSettings,
  *fit(data, settings) {
    const k = data.k;
    const start = new Float64Array(2 * k);
    start.fill(1, 0, k);
    const r = yield* fitScaling(layout(k), data, start, null, settings);
    return { ...r, params: { theta: r.params } };
  },
  apply: (params, rows) => applyScaling(params.theta, layout(rows.k), rows),
  toJSON: ({ theta }) => {
    const k = theta.length / 2;
    return { w: list(theta.subarray(0, k)), b: list(theta.subarray(k)) };
  },
  fromJSON(raw, k, where) {
    const o = exactKeys(raw, ['w', 'b'], where);
    const theta = new Float64Array(2 * k);
    theta.set(numbers(o.w, `${where}.w`, k));
    theta.set(numbers(o.b, `${where}.b`, k), k);
    return { theta };
  },
};
