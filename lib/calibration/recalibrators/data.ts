/**
 * What every recalibrator shares: reading and checking scores and labels into float64
 * rows, the two views a method works on (logits z, probabilities p), and the driver that
 * runs a method's work either to completion (sync) or in slices between event-loop turns
 * (async), so that both forms run the same arithmetic and give the same bits.
 */
import { inconsistent, rangeError, typeError } from '../../core/errors';
import { checkTensor, type Tensor } from '../../core/tensor';
import { DEFAULT_TOLERANCE, type ScoreKind } from '../options';

/** Probabilities are clamped to this before their log is taken (from: 'probs'): log(max(p, 2^-52)). */
export const LOG_CLAMP = Number.EPSILON;

/** Validated scores as float64 rows. */
export interface Rows {
  n: number;
  k: number;
  from: ScoreKind;
  /** The caller's tensor (or its snapshot, for the async forms): float32 or float64, (N, K). */
  source: Tensor;
  /** The scores as float64, row-major (a copy: never the caller's memory). */
  values: Float64Array;
}

/** Rows with their labels. */
export interface Labeled extends Rows {
  labels: Int32Array;
}

/** Reads (N, K) float32/float64 scores: finite logits, or probabilities in [0, 1] whose rows sum to 1 within tolerance. */
export function readScores(scores: unknown, from: ScoreKind, tolerance: number, name = 'scores', minRows = 1): Rows {
  const s = checkTensor(scores, name);
  if (s.dtype !== 'float32' && s.dtype !== 'float64') throw typeError(`${name}.dtype`, "'float32' or 'float64'", s.dtype);
  if (s.shape.length !== 2) throw inconsistent(name, `expected shape (N, K) but received [${s.shape.join(', ')}]`);
  const [n, k] = s.shape;
  if (n < minRows) {
    throw inconsistent(name, `expected at least ${minRows} sample${minRows === 1 ? '' : 's'} (N >= ${minRows}) but received shape [${s.shape.join(', ')}]`);
  }
  if (k < 2) throw inconsistent(name, `expected at least 2 classes (K >= 2) but received shape [${s.shape.join(', ')}]`);
  const values = Float64Array.from(s.data as Float32Array | Float64Array);
  const at = (i: number): string => `${values[i]} at [${Math.floor(i / k)}, ${i % k}]`;
  if (from === 'logits') {
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) throw inconsistent(name, `expected finite logits (from: 'logits') but received ${at(i)}`);
    }
  } else {
    for (let r = 0; r < n; r++) {
      let sum = 0;
      for (let j = r * k; j < r * k + k; j++) {
        const v = values[j];
        if (!(v >= 0 && v <= 1)) {
          throw inconsistent(name, `expected probabilities in [0, 1] (from: 'probs') but received ${at(j)} (pass from: 'logits' for unnormalised scores)`);
        }
        sum += v;
      }
      if (!(Math.abs(sum - 1) <= tolerance)) {
        throw inconsistent(name, `expected each row to sum to 1 within ${tolerance} (from: 'probs') but row ${r} sums to ${sum} (pass from: 'logits' for unnormalised scores)`);
      }
    }
  }
  return { n, k, from, source: { data: s.data, shape: [n, k], dtype: s.dtype }, values };
}

/** Reads labels (N) int32/int64/uint8 into class indices in [0, K − 1]. */
export function readLabels(labels: unknown, n: number, k: number, scoresName = 'scores'): Int32Array {
  const l = checkTensor(labels, 'labels');
  if (l.dtype !== 'int32' && l.dtype !== 'int64' && l.dtype !== 'uint8') throw typeError('labels.dtype', "'int32', 'int64' or 'uint8'", l.dtype);
  if (l.shape.length !== 1 || l.shape[0] !== n) {
    throw inconsistent('labels', `expected shape [${n}] (one per row of ${scoresName}) but received [${l.shape.join(', ')}]`);
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = Number(l.data[i]);
    if (!(Number.isInteger(v) && v >= 0 && v < k)) throw inconsistent('labels', `expected class indices in [0, ${k - 1}] but received ${v} at index ${i}`);
    out[i] = v;
  }
  return out;
}

export function readTolerance(value: unknown): number {
  if (value === undefined) return DEFAULT_TOLERANCE;
  if (typeof value !== 'number') throw typeError('tolerance', 'a positive finite number', value);
  if (!Number.isFinite(value) || value <= 0) throw rangeError('tolerance', 'a positive finite number', value);
  return value;
}

/**
 * The logits a scaling method works on: the scores themselves (from: 'logits') or
 * log(max(p, 2^-52)) (from: 'probs'). A new array, filled in slices.
 */
export function* logitsOf(rows: Rows): Work<Float64Array> {
  return yield* eachRow(rows, rowLogits);
}

/** A new N·K array, each row filled by fill, in slices. */
function* eachRow(rows: Rows, fill: (rows: Rows, i: number, out: Float64Array, o: number) => void): Work<Float64Array> {
  const out = new Float64Array(rows.values.length);
  const chunk = rowsPerYield(20 * rows.k);
  for (let i = 0; i < rows.n; i++) {
    if (i > 0 && i % chunk === 0) yield;
    fill(rows, i, out, i * rows.k);
  }
  return out;
}

/** Row i's logits (see logitsOf) into out at offset o. */
export function rowLogits(rows: Rows, i: number, out: Float64Array, o: number): void {
  const { k, values } = rows;
  if (rows.from === 'logits') for (let j = 0; j < k; j++) out[o + j] = values[i * k + j];
  else for (let j = 0; j < k; j++) out[o + j] = Math.log(Math.max(values[i * k + j], LOG_CLAMP));
}

/** Row i's probabilities (the scores for from: 'probs', else their float64 softmax) into out at offset o. */
export function rowProbabilities(rows: Rows, i: number, out: Float64Array, o: number): void {
  const { k, values } = rows;
  const r = i * k;
  if (rows.from === 'probs') {
    for (let j = 0; j < k; j++) out[o + j] = values[r + j];
    return;
  }
  let m = -Infinity;
  for (let j = 0; j < k; j++) if (values[r + j] > m) m = values[r + j];
  let s = 0;
  for (let j = 0; j < k; j++) {
    const e = Math.exp(values[r + j] - m);
    out[o + j] = e;
    s += e;
  }
  for (let j = 0; j < k; j++) out[o + j] /= s;
}

/** The probabilities a binning method works on (rowProbabilities of every row). A new array, filled in slices. */
export function* probabilitiesOf(rows: Rows): Work<Float64Array> {
  return yield* eachRow(rows, rowProbabilities);
}

/** Mean NLL −(1/N) Σ log max(p_y, 2^-52) of probability rows (the clamp keeps it finite, as calibration.report does). */
export function meanNll(p: Float64Array, labels: Int32Array, k: number): number {
  let s = 0;
  for (let i = 0; i < labels.length; i++) s -= Math.log(Math.max(p[i * k + labels[i]], LOG_CLAMP));
  return s / labels.length;
}

/**
 * A unit of work that yields now and then (every few milliseconds of arithmetic), so the
 * async driver can let the event loop run; the sync driver ignores the yields.
 */
export type Work<T> = Generator<void, T, void>;

/** Runs work to its end. */
export function runSync<T>(work: Work<T>): T {
  let r = work.next();
  while (!r.done) r = work.next();
  return r.value;
}

/** Event-loop time one slice of async work may take before it gives the loop a turn. */
const SLICE_MS = 8;
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Runs work in slices of about SLICE_MS, giving the event loop a turn between them. */
export async function runAsync<T>(work: Work<T>): Promise<T> {
  await turn();
  let start = performance.now();
  let r = work.next();
  while (!r.done) {
    if (performance.now() - start > SLICE_MS) {
      await turn();
      start = performance.now();
    }
    r = work.next();
  }
  return r.value;
}

/** How many rows to process between yields, for a per-row cost in multiply-adds. */
export function rowsPerYield(costPerRow: number): number {
  return Math.max(1, Math.floor(200_000 / Math.max(1, costPerRow)));
}
