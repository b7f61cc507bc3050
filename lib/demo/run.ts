/**
 * The demo end to end: load the digits, split them, flip a fraction of the training
 * labels, train the same MLP once per label-smoothing ε, and score each model on the
 * clean test labels with smoothce's calibration API.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as calibration from '../calibration';
import type { CalibrationReport, ReliabilityBin } from '../calibration';
import { rangeError, typeError } from '../errors';
import { tensor } from '../tensor';
import { flipLabels, loadDigits, selectDigits, split, type Dataset } from './data';
import { Rng } from './rng';
import { agreement, argmax, train, type EpochInfo } from './train';

export interface DemoOptions {
  /** Label-smoothing values to compare; default [0, 0.1]. */
  eps?: number[];
  /** Fraction of training labels flipped to another class; default 0.2. */
  noise?: number;
  /** Seeds the split, the noise, the initialisation and the batch order; default 42. */
  seed?: number;
  epochs?: number;
  hidden?: number;
  batchSize?: number;
  lr?: number;
  /** Bins of the calibration metrics and diagrams; default 15. */
  bins?: number;
  /** Two classes only (digits 3 and 8) instead of ten. */
  binary?: boolean;
  /** Folder for report.json and the diagrams; null writes nothing. Default './demo-output'. */
  out?: string | null;
  /** The gzipped CSV to read; default the copy in data/. */
  dataFile?: string;
}

export interface DemoHooks {
  onRunStart?(eps: number, epochs: number): void;
  onEpoch?(eps: number, info: EpochInfo): void;
  onRunEnd?(eps: number): void;
}

/** The calibration report's headline metrics (definitions in lib/calibration/metrics.ts). */
export type Metrics = Pick<
  CalibrationReport,
  'accuracy' | 'nll' | 'brier' | 'ece' | 'mce' | 'rmsce' | 'adaptiveEce' | 'classwiseEce'
>;

export interface EpsResult {
  eps: number;
  /** Metrics on the clean test labels. */
  test: Metrics;
  /** Temperature scaling fitted on the (clean) validation set, and the test set rescaled by it. */
  temperature: {
    temperature: number;
    validationNllBefore: number;
    validationNllAfter: number;
    testNll: number;
    testEce: number;
  };
  train: {
    /** Accuracy on the training labels as given to the model (with the flipped ones). */
    noisyAccuracy: number;
    /** Accuracy on the true training labels. */
    cleanAccuracy: number;
    /** Fraction of flipped examples predicted as their wrong (flipped) label. */
    memorized: number;
    /** Mean (smoothed) training loss of the last epoch. */
    finalLoss: number;
  };
  /** train.noisyAccuracy − test.accuracy. */
  gap: number;
  /** Reliability-diagram bins of the test set. */
  bins: ReliabilityBin[];
  files?: { png: string; svg: string };
}

export interface DemoReport {
  task: string;
  settings: {
    seed: number;
    noise: number;
    eps: number[];
    epochs: number;
    hidden: number;
    batchSize: number;
    lr: number;
    bins: number;
    optimizer: string;
    classes: number[];
    train: number;
    validation: number;
    test: number;
    flipped: number;
  };
  results: EpsResult[];
  notes: string[];
  files?: { report: string; diagrams: string[] };
}

export const DEFAULTS = {
  eps: [0, 0.1],
  noise: 0.2,
  seed: 42,
  epochs: 60,
  hidden: 64,
  batchSize: 32,
  lr: 1e-3,
  bins: 15,
  out: './demo-output',
} as const;

const BINARY_DIGITS = [3, 8];

function checkNumber(name: string, value: unknown, ok: (v: number) => boolean, expected: string): number {
  if (typeof value !== 'number') throw typeError(name, expected, value);
  if (!ok(value)) throw rangeError(name, expected, value);
  return value;
}

const isInt = (lo: number, hi = Number.MAX_SAFE_INTEGER) => (v: number) => Number.isInteger(v) && v >= lo && v <= hi;

function resolve(options: DemoOptions) {
  if (options === null || typeof options !== 'object') throw typeError('options', 'an object', options);
  const eps = options.eps ?? [...DEFAULTS.eps];
  if (!Array.isArray(eps) || eps.length === 0) throw typeError('eps', 'a non-empty array of numbers in [0, 1]', eps);
  eps.forEach((e, i) => checkNumber(`eps[${i}]`, e, (v) => v >= 0 && v <= 1, 'a number in [0, 1]'));
  if (new Set(eps).size !== eps.length) throw rangeError('eps', 'distinct values', eps);
  return {
    eps: eps.slice(),
    noise: checkNumber('noise', options.noise ?? DEFAULTS.noise, (v) => v >= 0 && v < 1, 'a number in [0, 1)'),
    seed: checkNumber('seed', options.seed ?? DEFAULTS.seed, isInt(-(2 ** 31), 2 ** 31 - 1), 'a 32-bit integer'),
    epochs: checkNumber('epochs', options.epochs ?? DEFAULTS.epochs, isInt(1, 100_000), 'an integer ≥ 1'),
    hidden: checkNumber('hidden', options.hidden ?? DEFAULTS.hidden, isInt(1, 4096), 'an integer in [1, 4096]'),
    batchSize: checkNumber('batchSize', options.batchSize ?? DEFAULTS.batchSize, isInt(1), 'an integer ≥ 1'),
    lr: checkNumber('lr', options.lr ?? DEFAULTS.lr, (v) => v > 0 && Number.isFinite(v), 'a positive number'),
    bins: checkNumber('bins', options.bins ?? DEFAULTS.bins, isInt(1, 1000), 'an integer in [1, 1000]'),
    binary: options.binary ?? false,
    out: options.out === undefined ? DEFAULTS.out : options.out,
    dataFile: options.dataFile,
  };
}

/** File-name form of ε: 0 → "0", 0.1 → "0.1". */
function epsTag(eps: number): string {
  return String(eps);
}

function labelsTensor(y: Int32Array) {
  return tensor(y, [y.length], 'int32');
}

/** Runs the demo; writes report.json and the diagrams when `out` is set. Deterministic for a seed. */
export function runDemo(options: DemoOptions = {}, hooks: DemoHooks = {}): DemoReport {
  const o = resolve(options);
  let data: Dataset = loadDigits(o.dataFile);
  if (o.binary) data = selectDigits(data, BINARY_DIGITS);
  const k = data.classes;
  const rng = new Rng(o.seed);
  const { train: trainSet, validation, test } = split(data, rng);
  const noisy = flipLabels(trainSet.y, k, o.noise, rng);
  // One seed for the model and batch order, the same for every ε: the runs differ only in ε.
  const modelSeed = rng.int(0, 2 ** 31 - 1);

  const prefix = o.binary ? 'binary-' : '';
  const task = o.binary
    ? `digits ${BINARY_DIGITS.join(' vs ')} (2 classes)`
    : 'digits 0-9 (10 classes)';
  if (o.out !== null) fs.mkdirSync(o.out, { recursive: true });

  const results: EpsResult[] = [];
  const notes = new Set<string>();
  for (const eps of o.eps) {
    hooks.onRunStart?.(eps, o.epochs);
    let last = NaN;
    const model = train(
      trainSet,
      noisy.y,
      validation,
      { eps, epochs: o.epochs, hidden: o.hidden, batchSize: o.batchSize, lr: o.lr, seed: modelSeed },
      (info) => {
        hooks.onEpoch?.(eps, info);
        last = info.loss;
      },
    );
    hooks.onRunEnd?.(eps);

    const trainPred = argmax(model.forward(trainSet.x, trainSet.n), k);
    const valLogits = model.forward(validation.x, validation.n);
    const testLogits = model.forward(test.x, test.n);
    const testT = tensor(testLogits, [test.n, k], 'float64');
    const report = calibration.report(testT, labelsTensor(test.y), { from: 'logits', bins: o.bins });
    for (const note of report.notes ?? []) notes.add(note);
    const fit = calibration.fitTemperature(tensor(valLogits, [validation.n, k], 'float64'), labelsTensor(validation.y));
    const after = calibration.report(testT, labelsTensor(test.y), { from: 'logits', bins: o.bins, temperature: fit.temperature });

    const noisyAccuracy = agreement(trainPred, noisy.y);
    const result: EpsResult = {
      eps,
      test: {
        accuracy: report.accuracy,
        nll: report.nll,
        brier: report.brier,
        ece: report.ece,
        mce: report.mce,
        rmsce: report.rmsce,
        adaptiveEce: report.adaptiveEce,
        classwiseEce: report.classwiseEce,
      },
      temperature: {
        temperature: fit.temperature,
        validationNllBefore: fit.nllBefore,
        validationNllAfter: fit.nllAfter,
        testNll: after.nll,
        testEce: after.ece,
      },
      train: {
        noisyAccuracy,
        cleanAccuracy: agreement(trainPred, trainSet.y),
        memorized: agreement(trainPred, noisy.y, noisy.flipped),
        finalLoss: last,
      },
      gap: noisyAccuracy - report.accuracy,
      bins: report.bins.map((b) => ({ lo: b.lo, hi: b.hi, count: b.count, confidence: b.confidence, accuracy: b.accuracy })),
    };
    if (o.out !== null) {
      const title = `${o.binary ? 'Digits 3 vs 8' : 'Digits'}, ε = ${eps}, ${Math.round(o.noise * 100)}% noise`;
      const base = path.join(o.out, `${prefix}reliability-eps${epsTag(eps)}`);
      fs.writeFileSync(`${base}.png`, calibration.reliabilityDiagram(report, { format: 'png', title }));
      fs.writeFileSync(`${base}.svg`, calibration.reliabilityDiagram(report, { format: 'svg', title }));
      result.files = { png: `${base}.png`, svg: `${base}.svg` };
    }
    results.push(result);
  }

  const out: DemoReport = {
    task,
    settings: {
      seed: o.seed,
      noise: o.noise,
      eps: o.eps,
      epochs: o.epochs,
      hidden: o.hidden,
      batchSize: o.batchSize,
      lr: o.lr,
      bins: o.bins,
      optimizer: 'Adam',
      classes: data.classNames,
      train: trainSet.n,
      validation: validation.n,
      test: test.n,
      flipped: noisy.flipped.length,
    },
    results,
    notes: [...notes],
  };
  if (o.out !== null) {
    const reportFile = path.join(o.out, `${prefix}report.json`);
    out.files = { report: reportFile, diagrams: results.flatMap((r) => (r.files ? [r.files.png, r.files.svg] : [])) };
    fs.writeFileSync(reportFile, JSON.stringify(out, null, 2) + '\n');
  }
  return out;
}
