/**
 * SmoothECE (Błasiok & Nakkiran, ICLR 2024) computed the way Apple's relplot 1.0.3 computes
 * `smECE(f, y)` with its defaults, so that the value and the bandwidth agree with it to
 * rounding (test/smooth-ece.test.ts checks 1e-9 against test/smooth_ece_reference.py).
 * Written for smoothce from the published algorithm; no relplot code is used.
 *
 * The estimator, as relplot 1.0.3 discretises it:
 * - residuals r_i = f_i − y_i (f = confidence, y = 1 if correct) are "smooth-rounded" onto
 *   a uniform grid of G points on [0, 1]: sample i adds (1 − w)·r_i to node ⌊f_i(G−1)⌋ and
 *   w·r_i to the next node, w the fractional part (the node index clipped to [0, G−2]); the
 *   same with 1 in place of r_i gives the density grid;
 * - both grids are convolved with a Gaussian of width σ sampled at the G nodes t_k = k/(G−1)
 *   centred on t = 0.5 (so truncated at ±0.5), after reflecting the grid once about 0 and
 *   about 1 (the reflected Gaussian kernel); the kernel is not renormalised after sampling;
 * - both are linearly interpolated onto an evaluation mesh of max(round(10/σ), 200) points;
 *   1e-4 is added to the density; smECE_σ = Σ|r̂·d| / Σ d over the mesh, with r̂ = smoothed
 *   residual / density;
 * - G = ⌊max(2000, round(20/σ)) / 2⌋ + 1;
 * - the bandwidth is relplot's fixed-point search: σ = 1 if smECE_1 ≥ 1, otherwise ten steps
 *   of bisection on [0, 1] for the smallest σ with σ ≥ smECE_σ (σ < 0.001 counting as
 *   "too small"); the search returns the upper end, a multiple of 1/1024 (at least 2/1024).
 *
 * Because every σ the search can visit is k/1024, only ten grid sizes G can ever occur
 * (GRID_SIZES). The grids are sums over samples, so they merge by adding: keeping all ten
 * (SmoothEceGrids, about 330 KB) makes a streamed SmoothECE exact up to summation order.
 */
import { rangeError, typeError } from '../core/errors';
import { Rng } from '../demo/rng';

/** relplot's smECE search: bisection steps, lower cutoff, density offset, minimum mesh sizes. */
const REFINE = 10;
const EPS_SIGMA = 0.001;
export const EPS_DENSITY = 0.0001;
const MIN_MESH = 200;
const MIN_GRID = 2000;
const SQRT_2PI = Math.sqrt(2 * Math.PI);

/** Python's round() of a float to an integer: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** The grid size relplot smooths on at bandwidth sigma. */
export function gridSize(sigma: number): number {
  return Math.floor(Math.max(MIN_GRID, roundHalfEven(20 / sigma)) / 2) + 1;
}

/** The evaluation mesh size relplot uses at bandwidth sigma. */
export function meshSize(sigma: number): number {
  return Math.max(roundHalfEven(10 / sigma), MIN_MESH);
}

/** Every grid size relplot 1.0.3's search can use (σ = k/1024, k = 2..1024), ascending. */
export const GRID_SIZES: readonly number[] = (() => {
  const set = new Set<number>();
  for (let k = 2; k <= 1024; k++) set.add(gridSize(k / 1024));
  return [...set].sort((a, b) => a - b);
})();

/** numpy.linspace(0, 1, n): i·(1/(n−1)), the last point exactly 1. */
export function linspace01(n: number): Float64Array {
  const t = new Float64Array(n);
  if (n === 1) return t;
  const step = 1 / (n - 1);
  for (let i = 0; i < n; i++) t[i] = i * step;
  t[n - 1] = 1;
  return t;
}

/** One grid: residual and density sums at G nodes. */
export interface Grid {
  size: number;
  residual: Float64Array;
  density: Float64Array;
}

export function emptyGrid(size: number): Grid {
  return { size, residual: new Float64Array(size), density: new Float64Array(size) };
}

/** Smooth-rounds rows [start, end) of (confidence, correct) onto a grid (adds to it). */
export function addToGrid(g: Grid, confidence: ArrayLike<number>, correct: ArrayLike<number>, start = 0, end = confidence.length): void {
  const m = g.size - 1;
  const res = g.residual;
  const den = g.density;
  for (let i = start; i < end; i++) {
    const f = confidence[i];
    const x = f * m;
    let b = Math.trunc(x);
    if (b < 0) b = 0;
    else if (b > m - 1) b = m - 1;
    const w = x - b;
    const r = f - (correct[i] ? 1 : 0);
    res[b] += (1 - w) * r;
    res[b + 1] += w * r;
    den[b] += 1 - w;
    den[b + 1] += w;
  }
}

/** The Gaussian relplot samples: G points t_k = k/(G−1), centred on 0.5, scaled by 1/(σ√(2π)). */
function kernel(size: number, sigma: number): Float64Array {
  const t = linspace01(size);
  const v = sigma * sigma;
  const out = new Float64Array(size);
  const norm = SQRT_2PI * sigma;
  for (let k = 0; k < size; k++) {
    const d = t[k] - 0.5;
    out[k] = Math.exp((-d * d) / (2 * v)) / norm;
  }
  return out;
}

/** The grid extended by one reflection about each end: [v_{G−1}..v_1, v_0..v_{G−1}, v_{G−2}..v_0]. */
function reflect(values: Float64Array): Float64Array {
  const g = values.length;
  const ext = new Float64Array(3 * g - 2);
  for (let j = 0; j < g - 1; j++) ext[j] = values[g - 1 - j];
  ext.set(values, g - 1);
  for (let q = 1; q < g; q++) ext[2 * g - 2 + q] = values[g - 1 - q];
  return ext;
}

/**
 * Reflected convolution of two grids (residual and density, length G) with the sampled kernel,
 * as relplot: the valid part of the convolution of the reflected grid with the kernel, from
 * index ⌊G/2⌋. Kernel taps that are exactly 0 (exp underflow) add nothing and are skipped.
 */
function* reflectConvolve2(a: Float64Array, b: Float64Array, ker: Float64Array, needed: Uint8Array): Generator<void, [Float64Array, Float64Array]> {
  const g = a.length;
  const ea = reflect(a);
  const eb = reflect(b);
  let lo = 0;
  while (lo < g && ker[lo] === 0) lo++;
  let hi = g - 1;
  while (hi > lo && ker[hi] === 0) hi--;
  // out[i] = Σ_k ker[k]·ext[i + shift − k]; with the taps reversed the inner loop runs forward.
  const taps = hi - lo + 1;
  const rev = new Float64Array(taps);
  for (let k = 0; k < taps; k++) rev[k] = ker[hi - k];
  const oa = new Float64Array(g);
  const ob = new Float64Array(g);
  const shift = Math.floor(g / 2) + g - 1;
  // Only the nodes the mesh interpolation reads are computed; about 2^17 multiply-adds per step.
  const rowsPerStep = Math.max(1, Math.floor((1 << 17) / taps));
  let done = 0;
  for (let i = 0; i < g; i++) {
    if (!needed[i]) continue;
    if (++done % rowsPerStep === 0) yield;
    let sa = 0;
    let sb = 0;
    const base = i + shift - hi;
    for (let k = 0; k < taps; k++) {
      const w = rev[k];
      sa += w * ea[base + k];
      sb += w * eb[base + k];
    }
    oa[i] = sa;
    ob[i] = sb;
  }
  return [oa, ob];
}

/** The lower node relplot's interpolate() reads for point t on a grid of g nodes. */
function lowerNode(t: number, g: number): number {
  const i = Math.trunc(t * (g - 1));
  return i < 0 ? 0 : i > g - 2 ? g - 2 : i;
}

/** relplot's interpolate(): values at nodes i/(G−1), read at points t. */
function interpolate(t: Float64Array, y: Float64Array): Float64Array {
  const g = y.length;
  const bucket = 1 / (g - 1);
  const out = new Float64Array(t.length);
  for (let j = 0; j < t.length; j++) {
    const i = lowerNode(t[j], g);
    const w = (t[j] - i * bucket) / bucket;
    out[j] = y[i] * (1 - w) + y[i + 1] * w;
  }
  return out;
}

/** The kernel-smoothed residual and density of a grid at bandwidth sigma, read at points t. */
export function* smoothAt(g: Grid, sigma: number, t: Float64Array): Generator<void, { residual: Float64Array; density: Float64Array }> {
  const needed = new Uint8Array(g.size);
  for (let j = 0; j < t.length; j++) {
    const i = lowerNode(t[j], g.size);
    needed[i] = 1;
    needed[i + 1] = 1;
  }
  const [r, d] = yield* reflectConvolve2(g.residual, g.density, kernel(g.size, sigma), needed);
  return { residual: interpolate(t, r), density: interpolate(t, d) };
}

/** smECE_σ from the grid of size gridSize(sigma). */
export function* smoothEceAt(g: Grid, sigma: number): Generator<void, number> {
  const t = linspace01(meshSize(sigma));
  const s = yield* smoothAt(g, sigma, t);
  let num = 0;
  let den = 0;
  for (let j = 0; j < t.length; j++) {
    const d = s.density[j] + EPS_DENSITY;
    num += Math.abs(s.residual[j] / d) * d;
    den += d;
  }
  return num / den;
}

export interface SmoothEceResult {
  /** SmoothECE at the chosen bandwidth. */
  value: number;
  /** The bandwidth σ (relplot's return_width): a multiple of 1/1024. */
  bandwidth: number;
}

/**
 * relplot's bandwidth search over a source of grids: `gridFor(G)` returns the grid of size G
 * (built or kept by the caller). Steps through `yield` so that callers can pause between
 * smoothings (the async report); run it to the end with runSync.
 */
export function* searchSmoothEce(gridFor: (size: number) => Grid | Generator<void, Grid>): Generator<void, SmoothEceResult> {
  const cache = new Map<number, number>();
  function* at(sigma: number): Generator<void, number> {
    const hit = cache.get(sigma);
    if (hit !== undefined) return hit;
    const src = gridFor(gridSize(sigma));
    const g = isGenerator(src) ? yield* src : src;
    yield;
    const v = yield* smoothEceAt(g, sigma);
    cache.set(sigma, v);
    return v;
  }
  function* tooSmall(sigma: number): Generator<void, boolean> {
    if (sigma < EPS_SIGMA) return true;
    return sigma < (yield* at(sigma));
  }
  let start = 1;
  if (!(yield* tooSmall(start))) {
    let end = 0;
    for (let i = 0; i < REFINE; i++) {
      const mid = (start + end) / 2;
      if (yield* tooSmall(mid)) end = mid;
      else start = mid;
    }
  }
  // relplot's search returns start as is when the first test (σ = 1) passes; same here.
  return { value: yield* at(start), bandwidth: start };
}

function isGenerator<T>(x: T | Generator<void, T>): x is Generator<void, T> {
  return typeof (x as { next?: unknown }).next === 'function' && typeof (x as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function';
}

/** Runs a step generator to its end on this thread. */
export function runSync<T>(gen: Generator<void, T>): T {
  for (;;) {
    const r = gen.next();
    if (r.done) return r.value;
  }
}

/**
 * Runs a step generator, handing the event loop back (setImmediate) whenever `sliceMs` has
 * passed since the last pause, so that no stretch of work holds the loop much longer.
 */
export async function runSliced<T>(gen: Generator<void, T>, sliceMs = 5): Promise<T> {
  let last = performance.now();
  for (;;) {
    const r = gen.next();
    if (r.done) return r.value;
    if (performance.now() - last >= sliceMs) {
      await new Promise((resolve) => setImmediate(resolve));
      last = performance.now();
    }
  }
}

/** Rows per step when smooth-rounding onto a grid (a step takes well under a millisecond). */
export const ROWS_PER_STEP = 1 << 14;

/** Builds the grid of size G from arrays, in steps of ROWS_PER_STEP rows. */
export function* gridFromArrays(size: number, confidence: ArrayLike<number>, correct: ArrayLike<number>): Generator<void, Grid> {
  const g = emptyGrid(size);
  for (let s = 0; s < confidence.length; s += ROWS_PER_STEP) {
    addToGrid(g, confidence, correct, s, Math.min(confidence.length, s + ROWS_PER_STEP));
    yield;
  }
  return g;
}

/** Checks (confidence, correct) arrays: same length, at least one row. */
function checkPairs(confidence: unknown, correct: unknown): { f: ArrayLike<number>; y: ArrayLike<number> } {
  const isNumArray = (a: unknown): a is ArrayLike<number> =>
    Array.isArray(a) || (ArrayBuffer.isView(a) && !(a instanceof DataView) && !(a instanceof BigInt64Array) && !(a instanceof BigUint64Array));
  if (!isNumArray(confidence)) throw typeError('confidence', 'an array or typed array of numbers in [0, 1]', confidence);
  if (!isNumArray(correct)) throw typeError('correct', 'an array or typed array of 0/1 (or booleans)', correct);
  if (confidence.length !== correct.length) {
    throw rangeError('correct', `an array of the same length as confidence (${confidence.length})`, `length ${correct.length}`);
  }
  if (confidence.length === 0) throw rangeError('confidence', 'at least one value', 'an empty array');
  for (let i = 0; i < confidence.length; i++) {
    const f = confidence[i];
    if (typeof f !== 'number' || !(f >= 0 && f <= 1)) throw rangeError(`confidence[${i}]`, 'a number in [0, 1]', f);
  }
  return { f: confidence, y: correct };
}

/**
 * SmoothECE of (confidence, correct) pairs, as relplot 1.0.3's `smECE(f, y, return_width=True)`.
 * `correct` holds 1/true for a correct prediction, 0/false otherwise.
 */
export function smoothEce(confidence: ArrayLike<number>, correct: ArrayLike<number | boolean>): SmoothEceResult {
  const { f, y } = checkPairs(confidence, correct);
  return runSync(smoothEceSteps(f, y));
}

/** smoothEce() as steps (for the async report): grids are built lazily, once per size. */
export function smoothEceSteps(f: ArrayLike<number>, y: ArrayLike<number>, built = new Map<number, Grid>()): Generator<void, SmoothEceResult> {
  return searchSmoothEce(function* (size) {
    let g = built.get(size);
    if (!g) {
      g = yield* gridFromArrays(size, f, y);
      built.set(size, g);
    }
    return g;
  });
}

/**
 * The mergeable form: the residual and density grids at every size the search can use.
 * add() rows, merge() another, result() gives the same SmoothECE and bandwidth as
 * smoothEce() on all the rows (up to summation order, about 1e-15 relative).
 */
export class SmoothEceGrids {
  readonly grids: Grid[];
  count = 0;

  constructor() {
    this.grids = GRID_SIZES.map(emptyGrid);
  }

  /** Adds rows [start, end) of (confidence, correct); values are not checked here. */
  add(confidence: ArrayLike<number>, correct: ArrayLike<number>, start = 0, end = confidence.length): this {
    for (const g of this.grids) addToGrid(g, confidence, correct, start, end);
    this.count += end - start;
    return this;
  }

  merge(other: SmoothEceGrids): this {
    for (let i = 0; i < this.grids.length; i++) {
      const a = this.grids[i];
      const b = other.grids[i];
      for (let k = 0; k < a.size; k++) {
        a.residual[k] += b.residual[k];
        a.density[k] += b.density[k];
      }
    }
    this.count += other.count;
    return this;
  }

  grid(size: number): Grid {
    const g = this.grids.find((x) => x.size === size);
    if (!g) throw rangeError('size', `one of ${GRID_SIZES.join(', ')}`, size);
    return g;
  }

  /** SmoothECE and bandwidth of everything added (null before any row). */
  result(): SmoothEceResult | null {
    if (this.count === 0) return null;
    return runSync(searchSmoothEce((size) => this.grid(size)));
  }

  /** For JSON: each grid's float64 values as base64 of their little-endian bytes (bit-exact, compact). */
  toJSON(): { count: number; sizes: number[]; residual: string[]; density: string[] } {
    const b64 = (a: Float64Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
    return {
      count: this.count,
      sizes: this.grids.map((g) => g.size),
      residual: this.grids.map((g) => b64(g.residual)),
      density: this.grids.map((g) => b64(g.density)),
    };
  }

  static fromJSON(value: unknown, parameter = 'state'): SmoothEceGrids {
    const v = value as ReturnType<SmoothEceGrids['toJSON']>;
    const decode = (text: unknown, size: number): Float64Array | null => {
      if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
      const bytes = Buffer.from(text, 'base64');
      if (bytes.length !== size * 8) return null;
      const out = new Float64Array(size);
      new Uint8Array(out.buffer).set(bytes);
      return out.every((x) => Number.isFinite(x)) ? out : null;
    };
    const decoded = (arrs: unknown): Float64Array[] | null => {
      if (!Array.isArray(arrs) || arrs.length !== GRID_SIZES.length) return null;
      const out = arrs.map((a, i) => decode(a, GRID_SIZES[i]));
      return out.every((a) => a !== null) ? (out as Float64Array[]) : null;
    };
    const residual = v !== null && typeof v === 'object' ? decoded(v.residual) : null;
    const density = v !== null && typeof v === 'object' ? decoded(v.density) : null;
    const ok =
      v !== null &&
      typeof v === 'object' &&
      Number.isSafeInteger(v.count) &&
      v.count >= 0 &&
      Array.isArray(v.sizes) &&
      v.sizes.length === GRID_SIZES.length &&
      v.sizes.every((s, i) => s === GRID_SIZES[i]) &&
      residual !== null &&
      density !== null;
    if (!ok) throw rangeError(parameter, 'SmoothECE grids written by toJSON()', value);
    const out = new SmoothEceGrids();
    out.count = v.count;
    out.grids.forEach((g, i) => {
      g.residual.set(residual[i]);
      g.density.set(density[i]);
    });
    return out;
  }
}
