/**
 * Histogram binning (Zadrozny & Elkan 2001) over equal-mass bins, one-vs-rest: for each
 * class k the fitting scores p_k are sorted and split into `bins` parts (default 15, at
 * most N) as numpy.array_split splits them (the first N mod B parts one longer); the edge
 * between two parts is the midpoint of the last score of one and the first of the next,
 * repeated edges (ties) are merged. A score t falls in bin (e_{b−1}, e_b] (a score equal
 * to an edge goes to the lower bin; the first bin reaches down to −∞, the last up to +∞),
 * and maps to the fraction of fitting rows in that bin whose label is k (a bin no fitting
 * row fell in, possible only with ties, maps to the overall fraction). The K outputs are
 * renormalised to sum to 1 (uniform where all are 0). For K = 2 it is one map on
 * p(class 1), p(class 0) = 1 − it.
 */
import { DEFAULT_BINS, MAX_BINS } from '../options';
import { rangeError, typeError } from '../../core/errors';
import { list, numbers } from './json';
import { applyOneVsRest, fitOneVsRest, readMaps } from './isotonic';
import type { MethodSpec } from './types';

export interface HistogramMap {
  /** Strictly increasing inner edges. */
  edges: Float64Array;
  /** edges.length + 1 bin values in [0, 1]. */
  values: Float64Array;
}

export interface HistogramParams {
  maps: HistogramMap[];
}

/** Index of the bin of t: the number of edges strictly below t. */
function binOf(edges: Float64Array, t: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function fitHistogram(x: Float64Array, y: Float64Array, bins: number): HistogramMap {
  const n = x.length;
  const sorted = x.slice().sort();
  const parts = Math.min(bins, n);
  const base = Math.floor(n / parts);
  const extra = n % parts;
  const edges: number[] = [];
  let end = 0;
  for (let b = 0; b < parts - 1; b++) {
    end += base + (b < extra ? 1 : 0);
    const e = (sorted[end - 1] + sorted[end]) / 2 + 0;
    if (edges.length === 0 || e > edges[edges.length - 1]) edges.push(e);
  }
  const e = Float64Array.from(edges);
  const count = new Float64Array(e.length + 1);
  const hits = new Float64Array(e.length + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const b = binOf(e, x[i]);
    count[b] += 1;
    hits[b] += y[i];
    total += y[i];
  }
  const values = count.map((c, b) => (c > 0 ? hits[b] / c : total / n));
  return { edges: e, values };
}

const predictHistogram = (m: HistogramMap, t: number): number => m.values[binOf(m.edges, t)];

function readBins(v: unknown): number {
  if (v === undefined) return DEFAULT_BINS;
  if (typeof v !== 'number') throw typeError('bins', 'an integer >= 1', v);
  if (!Number.isInteger(v) || v < 1 || v > MAX_BINS) throw rangeError('bins', `an integer in [1, ${MAX_BINS}]`, v);
  return v;
}

export const histogram: MethodSpec<HistogramParams> = {
  options: ['bins'],
  keep: ['bins'],
  settings: (raw) => ({ bins: readBins(raw.bins) }),
  fit: (data, s) => fitOneVsRest(data, (x, y) => fitHistogram(x, y, s.bins)),
  apply: (params, rows) => applyOneVsRest(params.maps, rows, predictHistogram),
  toJSON: ({ maps }) => ({ maps: maps.map((m) => ({ edges: list(m.edges), values: list(m.values) })) }),
  fromJSON: (raw, k, where) =>
    readMaps(raw, k, where, ['edges', 'values'], (r, at) => {
      const edges = numbers(r.edges, `${at}.edges`);
      const values = numbers(r.values, `${at}.values`, edges.length + 1);
      for (let i = 1; i < edges.length; i++) {
        if (!(edges[i] > edges[i - 1])) throw rangeError(`${at}.edges[${i}]`, `a value above ${at}.edges[${i - 1}] (increasing)`, edges[i]);
      }
      for (let i = 0; i < values.length; i++) if (!(values[i] >= 0 && values[i] <= 1)) throw rangeError(`${at}.values[${i}]`, 'a value in [0, 1]', values[i]);
      return { edges, values };
    }),
};
