/**
 * The handwritten digits data set (data/digits.csv.gz, see data/README.md), its
 * train/validation/test split and the label noise applied to the training labels.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Rng } from './rng';
import { codedError, ERROR_CODES } from '../core/errors';

export interface Dataset {
  /** Row-major features, n × d, scaled to [0, 1]. */
  x: Float64Array;
  /** Labels 0..classes-1. */
  y: Int32Array;
  n: number;
  d: number;
  classes: number;
  /** The original digit of each class index (0..9, or e.g. [3, 8] for the binary subset). */
  classNames: number[];
}

/** Where the committed copy lives: ../../data from both lib/demo (source) and dist/demo (built). */
export function defaultDataPath(): string {
  return path.resolve(__dirname, '..', '..', 'data', 'digits.csv.gz');
}

/** Parses the gzipped CSV: one row per image, 64 pixel values 0..16, then the label. */
export function loadDigits(file: string = defaultDataPath()): Dataset {
  const text = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8');
  const rows = text.split('\n').filter((line) => line.trim() !== '');
  const d = 64;
  const n = rows.length;
  const x = new Float64Array(n * d);
  const y = new Int32Array(n);
  rows.forEach((line, i) => {
    const cells = line.split(',');
    if (cells.length !== d + 1) throw codedError(ERROR_CODES.DATA_FORMAT, `${file}: line ${i + 1} has ${cells.length} fields, expected ${d + 1}`);
    for (let j = 0; j < d; j++) x[i * d + j] = Number(cells[j]) / 16;
    const label = Number(cells[d]);
    if (!Number.isInteger(label) || label < 0 || label > 9) throw codedError(ERROR_CODES.DATA_FORMAT, `${file}: line ${i + 1} has label ${cells[d]}, expected a digit 0-9`);
    y[i] = label;
  });
  return { x, y, n, d, classes: 10, classNames: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] };
}

/** The rows whose digit is one of `digits`, relabelled 0..digits.length-1 in that order. */
export function selectDigits(data: Dataset, digits: number[]): Dataset {
  const keep: number[] = [];
  for (let i = 0; i < data.n; i++) if (digits.includes(data.classNames[data.y[i]])) keep.push(i);
  const sub = take(data, keep);
  for (let i = 0; i < sub.n; i++) sub.y[i] = digits.indexOf(data.classNames[sub.y[i]]);
  return { ...sub, classes: digits.length, classNames: digits.slice() };
}

/** The given rows of a data set, in that order. */
export function take(data: Dataset, rows: ArrayLike<number>): Dataset {
  const { d } = data;
  const x = new Float64Array(rows.length * d);
  const y = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    x.set(data.x.subarray(rows[i] * d, rows[i] * d + d), i * d);
    y[i] = data.y[rows[i]];
  }
  return { x, y, n: rows.length, d, classes: data.classes, classNames: data.classNames };
}

export interface Split {
  train: Dataset;
  validation: Dataset;
  test: Dataset;
}

/** A random split: `validation` and `test` are fractions of the rows, the rest is training. */
export function split(data: Dataset, rng: Rng, validation = 0.2, test = 0.2): Split {
  const order = rng.shuffle(Int32Array.from({ length: data.n }, (_, i) => i));
  const nTest = Math.round(data.n * test);
  const nVal = Math.round(data.n * validation);
  return {
    test: take(data, order.subarray(0, nTest)),
    validation: take(data, order.subarray(nTest, nTest + nVal)),
    train: take(data, order.subarray(nTest + nVal)),
  };
}

export interface Noisy {
  /** The labels after flipping. */
  y: Int32Array;
  /** Indices of the flipped rows (sorted). */
  flipped: Int32Array;
}

/**
 * Flips round(fraction × n) labels, chosen at random without replacement, each to a
 * class drawn uniformly among the other classes. Does not modify `labels`.
 */
export function flipLabels(labels: Int32Array, classes: number, fraction: number, rng: Rng): Noisy {
  const y = Int32Array.from(labels);
  const count = Math.round(fraction * labels.length);
  const order = rng.shuffle(Int32Array.from({ length: labels.length }, (_, i) => i));
  const flipped = order.slice(0, count).sort();
  for (const i of flipped) y[i] = (labels[i] + 1 + rng.int(0, classes - 2)) % classes;
  return { y, flipped };
}
