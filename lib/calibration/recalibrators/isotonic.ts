/**
 * Isotonic regression (Zadrozny & Elkan 2002), one-vs-rest: for each class k an
 * increasing step-and-ramp map from p_k to P(y = k), fitted by pool-adjacent-violators,
 * then the K outputs renormalised to sum to 1 (uniform where all K are 0).
 *
 * For K = 2 it is one map on p(class 1) (p(class 0) = 1 − it), computed as scikit-learn's
 * IsotonicRegression(out_of_bounds='clip') computes it, so the outputs are the same:
 *  - samples sorted by (x, y); equal x (within 1e-15 of the first of a run, as sklearn
 *    1.2 pools them) pooled into one point whose y is their mean and whose weight is their count;
 *  - PAV on those points (sklearn's in-place single-pass algorithm, same pooling order);
 *  - points whose y equals both neighbours' dropped (no change to the map);
 *  - prediction: x clipped to [x_min, x_max], then numpy.interp's linear interpolation
 *    between the kept points (y_j exactly at x = x_j, else slope·(x − x_j) + y_j).
 */
import { rangeError } from '../../core/errors';
import { exactKeys, list, numbers, record } from './json';
import { probabilitiesOf, rowProbabilities, rowsPerYield, type Labeled, type Rows, type Work } from './data';
import type { Fitted, MethodSpec } from './types';

export interface IsotonicMap {
  x: Float64Array;
  y: Float64Array;
}

export interface IsotonicParams {
  /** One map (on p(class 1)) for K = 2, else one per class. */
  maps: IsotonicMap[];
}

/** scikit-learn treats x within numpy's float64 resolution (1e-15) of a group's first x as equal. */
const TIE_RESOLUTION = 1e-15;

/** Fits the map of x (scores) to y (0/1 targets) as scikit-learn's IsotonicRegression does. */
export function fitIsotonic(x: Float64Array, y: Float64Array): IsotonicMap {
  const sorted = sortByXThenY(x, y);
  // Pool equal x (sklearn's _make_unique: a run of x within 1e-15 of its first value is one
  // point at that first x, y the weighted mean, weight the count).
  const ux: number[] = [];
  const uy: number[] = [];
  const uw: number[] = [];
  let cx = sorted.x[0];
  let cy = 0;
  let cw = 0;
  for (let i = 0; i < sorted.x.length; i++) {
    if (sorted.x[i] - cx >= TIE_RESOLUTION) {
      ux.push(cx);
      uy.push(cy / cw);
      uw.push(cw);
      cx = sorted.x[i];
      cy = 0;
      cw = 0;
    }
    cy += sorted.y[i];
    cw += 1;
  }
  ux.push(cx);
  uy.push(cy / cw);
  uw.push(cw);
  const v = Float64Array.from(uy);
  pav(v, Float64Array.from(uw));
  // Keep the ends and every point whose y differs from a neighbour's.
  const keptX: number[] = [];
  const keptY: number[] = [];
  for (let i = 0; i < v.length; i++) {
    if (i === 0 || i === v.length - 1 || v[i] !== v[i - 1] || v[i] !== v[i + 1]) {
      keptX.push(ux[i]);
      keptY.push(v[i]);
    }
  }
  return { x: Float64Array.from(keptX, (t) => t + 0), y: Float64Array.from(keptY, (t) => t + 0) };
}

/**
 * (x, y) pairs with 0/1 targets sorted by x, then y (numpy.lexsort((y, x))), with the
 * engine's typed-array sort: the x of each target sorted apart, then merged.
 */
function sortByXThenY(x: Float64Array, y: Float64Array): { x: Float64Array; y: Float64Array } {
  const n = x.length;
  let ones = 0;
  for (let i = 0; i < n; i++) if (y[i] === 1) ones++;
  const x0 = new Float64Array(n - ones);
  const x1 = new Float64Array(ones);
  for (let i = 0, a = 0, b = 0; i < n; i++) {
    if (y[i] === 1) x1[b++] = x[i];
    else x0[a++] = x[i];
  }
  x0.sort();
  x1.sort();
  const sx = new Float64Array(n);
  const sy = new Float64Array(n);
  for (let i = 0, a = 0, b = 0; i < n; i++) {
    if (b >= x1.length || (a < x0.length && x0[a] <= x1[b])) sx[i] = x0[a++];
    else {
      sx[i] = x1[b++];
      sy[i] = 1;
    }
  }
  return { x: sx, y: sy };
}

/**
 * Pool-adjacent-violators in place (increasing), in the order scikit-learn's
 * _inplace_contiguous_isotonic_regression pools: blocks [i..j] keep target[i] = j and
 * target[j] = i; a decreasing run is merged into one weighted mean, then the scan
 * steps back one block.
 */
function pav(y: Float64Array, w: Float64Array): void {
  const n = y.length;
  const target = Int32Array.from({ length: n }, (_, i) => i);
  let i = 0;
  while (i < n) {
    let k = target[i] + 1;
    if (k === n) break;
    if (y[i] < y[k]) {
      i = k;
      continue;
    }
    let sumWy = w[i] * y[i];
    let sumW = w[i];
    for (;;) {
      const prevY = y[k];
      sumWy += w[k] * y[k];
      sumW += w[k];
      k = target[k] + 1;
      if (k === n || prevY < y[k]) {
        y[i] = sumWy / sumW;
        w[i] = sumW;
        target[i] = k - 1;
        target[k - 1] = i;
        if (i > 0) i = target[i - 1];
        break;
      }
    }
  }
  for (i = 0; i < n; ) {
    const k = target[i] + 1;
    y.fill(y[i], i + 1, k);
    i = k;
  }
}

/** The map at t: clipped to [x_0, x_last], then numpy.interp. */
export function predictIsotonic(m: IsotonicMap, t: number): number {
  const { x, y } = m;
  const last = x.length - 1;
  if (!(t > x[0])) return y[0];
  if (t >= x[last]) return y[last];
  let lo = 0;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x[mid] <= t) lo = mid;
    else hi = mid;
  }
  if (x[lo] === t) return y[lo];
  const slope = (y[lo + 1] - y[lo]) / (x[lo + 1] - x[lo]);
  return slope * (t - x[lo]) + y[lo];
}

/** One-vs-rest maps applied to probability rows and renormalised (K = 2: the one map on class 1). */
export function* applyOneVsRest<M>(maps: M[], rows: Rows, predict: (m: M, t: number) => number): Work<Float64Array> {
  const { n, k } = rows;
  const p = new Float64Array(n * k);
  const out = new Float64Array(n * k);
  const chunk = rowsPerYield(20 * k);
  for (let i = 0; i < n; i++) {
    if (i > 0 && i % chunk === 0) yield;
    const o = i * k;
    rowProbabilities(rows, i, p, o);
    if (k === 2) {
      const q = predict(maps[0], p[o + 1]);
      out[o] = 1 - q;
      out[o + 1] = q;
      continue;
    }
    let s = 0;
    for (let j = 0; j < k; j++) s += out[o + j] = predict(maps[j], p[o + j]);
    for (let j = 0; j < k; j++) out[o + j] = s > 0 ? out[o + j] / s : 1 / k;
  }
  return out;
}

/** The one-vs-rest (x, y) columns: class 1 alone for K = 2, else every class. */
export function oneVsRest(p: Float64Array, labels: Int32Array, k: number): { x: Float64Array; y: Float64Array }[] {
  const n = labels.length;
  const classes = k === 2 ? [1] : Array.from({ length: k }, (_, j) => j);
  return classes.map((j) => {
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = p[i * k + j];
      y[i] = labels[i] === j ? 1 : 0;
    }
    return { x, y };
  });
}

export const mapCount = (k: number): number => (k === 2 ? 1 : k);

/** Fits one map per one-vs-rest column (see oneVsRest), yielding between them. */
export function* fitOneVsRest<M>(data: Labeled, fitOne: (x: Float64Array, y: Float64Array) => M): Work<Fitted<{ maps: M[] }>> {
  const maps: M[] = [];
  for (const c of oneVsRest(yield* probabilitiesOf(data), data.labels, data.k)) {
    maps.push(fitOne(c.x, c.y));
    yield;
  }
  return { params: { maps }, iterations: 0, converged: true, gradientNorm: null };
}

/** Reads the stored { maps: [...] } of a one-vs-rest method: mapCount(k) maps, each an object with exactly `keys`, read by readOne. */
export function readMaps<M>(raw: unknown, k: number, where: string, keys: readonly string[], readOne: (r: Record<string, unknown>, at: string) => M): { maps: M[] } {
  const o = exactKeys(raw, ['maps'], where);
  const count = mapCount(k);
  if (!Array.isArray(o.maps) || o.maps.length !== count) throw rangeError(`${where}.maps`, `an array of ${count} maps`, o.maps);
  return { maps: o.maps.map((m, j) => readOne(exactKeys(record(m, `${where}.maps[${j}]`), keys, `${where}.maps[${j}]`), `${where}.maps[${j}]`)) };
}

export const isotonic: MethodSpec<IsotonicParams> = {
  options: [],
  keep: [],
  settings: () => ({}),
  fit: (data) => fitOneVsRest(data, fitIsotonic),
  apply: (params, rows) => applyOneVsRest(params.maps, rows, predictIsotonic),
  toJSON: ({ maps }) => ({ maps: maps.map((m) => ({ x: list(m.x), y: list(m.y) })) }),
  fromJSON: (raw, k, where) =>
    readMaps(raw, k, where, ['x', 'y'], (r, at) => {
      const x = numbers(r.x, `${at}.x`);
      const y = numbers(r.y, `${at}.y`, x.length);
      if (x.length < 1) throw rangeError(`${at}.x`, 'at least one point', r.x);
      for (let i = 0; i < x.length; i++) {
        if (i > 0 && !(x[i] > x[i - 1])) throw rangeError(`${at}.x[${i}]`, `a value above ${at}.x[${i - 1}] (increasing)`, x[i]);
        if (!(y[i] >= 0 && y[i] <= 1)) throw rangeError(`${at}.y[${i}]`, 'a value in [0, 1]', y[i]);
        if (i > 0 && !(y[i] >= y[i - 1])) throw rangeError(`${at}.y[${i}]`, `a value >= ${at}.y[${i - 1}] (non-decreasing)`, y[i]);
      }
      return { x, y };
    }),
};
