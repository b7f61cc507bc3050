/**
 * Recalibrators: fitCalibrator(scores, labels, { method, from, ... }) returns a Calibrator
 * that maps new scores to calibrated probabilities (apply / applyAsync) and saves itself
 * as JSON (toJSON / Calibrator.fromJSON, bit-identical outputs after a round trip).
 * Methods (one file each): temperature, vector, matrix (with ODIR), isotonic, histogram.
 * Everything runs in float64 in JavaScript; the async forms run the same arithmetic in
 * slices between event-loop turns (so the same bits), on copies taken when the call starts.
 * Definitions and choices: docs/calibration.md, "Recalibrators".
 */
import { inconsistent, rangeError, typeError, typeErrorMessage } from '../../core/errors';
import { readOptions } from '../../core/options';
import type { Tensor } from '../../core/tensor';
import { SCORE_KINDS, type ScoreKind } from '../options';
import { meanNll, probabilitiesOf, readLabels, readScores, readTolerance, runAsync, runSync, type Labeled, type Rows, type Work } from './data';
import { exactKeys, finite, integerIn, record } from './json';
import { histogram } from './histogram';
import { isotonic } from './isotonic';
import { matrix } from './matrix';
import { temperature } from './temperature';
import { vector } from './vector';
import type { FitInfo, Fitted, Method, MethodSpec, Settings } from './types';

export type { FitInfo, Method } from './types';

const METHODS: Readonly<Record<Method, MethodSpec<unknown>>> = Object.freeze({
  temperature: temperature as MethodSpec<unknown>,
  vector: vector as MethodSpec<unknown>,
  matrix: matrix as MethodSpec<unknown>,
  isotonic: isotonic as MethodSpec<unknown>,
  histogram: histogram as MethodSpec<unknown>,
});

/** The method names fitCalibrator knows. */
export const RECALIBRATION_METHODS: readonly Method[] = Object.freeze(Object.keys(METHODS) as Method[]);

export interface FitCalibratorOptions {
  /** 'temperature', 'vector', 'matrix', 'isotonic' or 'histogram'. Required. */
  method: Method;
  /** What the scores are: 'probs' (default, as calibration.report) or 'logits'. The calibrator takes the same kind. */
  from?: ScoreKind;
  /** Allowed |row sum − 1| for probabilities. Default 1e-3. */
  tolerance?: number;
  /** histogram: number of equal-mass bins per class (default 15). */
  bins?: number;
  /** matrix: off-diagonal (lambda) and intercept (mu) L2 penalties of ODIR (default 0, 0). */
  odir?: { lambda?: number; mu?: number };
  /** vector, matrix: 'auto' (default: Newton unless the Hessian is large, then L-BFGS), 'newton' or 'lbfgs'. */
  solver?: 'auto' | 'newton' | 'lbfgs';
  /** vector, matrix: stop when the largest gradient entry is at most this × max(1, its start value). Default 1e-10. */
  gradientTolerance?: number;
  /** vector, matrix: iteration cap (default 200 for Newton, 20,000 for L-BFGS). */
  maxIterations?: number;
}

export interface ApplyOptions {
  /** Allowed |row sum − 1| for probabilities. Default 1e-3. */
  tolerance?: number;
}

/** The JSON form of a Calibrator. */
export interface CalibratorJSON {
  format: 'smoothce.calibration.calibrator';
  version: 1;
  method: Method;
  from: ScoreKind;
  classes: number;
  /** The method's settings that shape its map (matrix: lambda, mu; histogram: bins). */
  settings: Settings;
  /** The fitted parameters, float64 numbers written in their shortest exact form. */
  params: Record<string, unknown>;
  fit: FitInfo;
}

const FORMAT = 'smoothce.calibration.calibrator';
const COMMON = ['method', 'from', 'tolerance'];
const ALL_OPTIONS = [...new Set([...COMMON, ...Object.values(METHODS).flatMap((m) => m.options)])];

function readMethod(value: unknown, where: string): Method {
  const list = RECALIBRATION_METHODS.map((m) => `'${m}'`).join(', ');
  if (typeof value !== 'string') throw typeError(where, `one of ${list}`, value);
  if (!Object.prototype.hasOwnProperty.call(METHODS, value)) throw rangeError(where, `one of ${list}`, value);
  return value as Method;
}

function readFrom(value: unknown, where: string, fallback?: ScoreKind): ScoreKind {
  if (value === undefined && fallback) return fallback;
  if (typeof value !== 'string') throw typeError(where, "'probs' or 'logits'", value);
  if (!(SCORE_KINDS as readonly string[]).includes(value)) throw rangeError(where, "'probs' or 'logits'", value);
  return value as ScoreKind;
}

interface FitPlan {
  method: Method;
  spec: MethodSpec<unknown>;
  settings: Settings;
  data: Labeled;
}

function plan(scores: unknown, labels: unknown, options: unknown, fn: string, snapshot: boolean): FitPlan {
  if (options === undefined) throw typeErrorMessage(`Expected an options object with a method for ${fn} but received undefined`);
  const opts = readOptions(options, ALL_OPTIONS, fn);
  const method = readMethod(opts.method, 'method');
  const spec = METHODS[method];
  for (const key of Object.keys(opts)) {
    if (!COMMON.includes(key) && !spec.options.includes(key)) {
      const owners = RECALIBRATION_METHODS.filter((m) => METHODS[m].options.includes(key)).map((m) => `'${m}'`);
      throw rangeError(key, `no ${key} option with method '${method}' (it applies to method ${owners.join(' or ')})`, opts[key]);
    }
  }
  const from = readFrom(opts.from, 'from', 'probs');
  const settings = spec.settings(opts);
  const rows = readScores(scores, from, readTolerance(opts.tolerance), 'scores', 2);
  const y = readLabels(labels, rows.n, rows.k);
  if (snapshot) rows.source = { ...rows.source, data: rows.source.data.slice() };
  return { method, spec, settings, data: { ...rows, labels: y } };
}

function* finish(p: FitPlan, fitted: Fitted<unknown>): Work<Calibrator> {
  const { data, spec } = p;
  const nllBefore = meanNll(yield* probabilitiesOf(data), data.labels, data.k);
  const nllAfter = fitted.nllAfter ?? meanNll(yield* spec.apply(fitted.params, data), data.labels, data.k);
  const kept: Settings = {};
  for (const key of spec.keep) kept[key] = p.settings[key];
  const fit: FitInfo = { n: data.n, nllBefore, nllAfter, iterations: fitted.iterations, converged: fitted.converged, gradientNorm: fitted.gradientNorm };
  return makeCalibrator(p.method, data.from, data.k, kept, fitted.params, fit);
}

function* fitWork(p: FitPlan): Work<Calibrator> {
  return yield* finish(p, yield* p.spec.fit(p.data, p.settings));
}

/**
 * Fits a recalibration map on held-out scores and labels (at least 2 rows). Throws a
 * TypeError/RangeError with a code for an unknown method, options of another method,
 * fewer than 2 samples, or bad scores or labels.
 */
export function fitCalibrator(scores: unknown, labels: unknown, options: FitCalibratorOptions): Calibrator {
  return runSync(fitWork(plan(scores, labels, options, 'calibration.fitCalibrator', false)));
}

/**
 * fitCalibrator without blocking the event loop: the same fit (the same bits), run in
 * slices of a few milliseconds between event-loop turns (temperature: the native fit on
 * the libuv pool). The scores and labels are copied when the call starts: the caller may
 * overwrite or transfer them at once. Every error rejects the promise.
 */
export async function fitCalibratorAsync(scores: unknown, labels: unknown, options: FitCalibratorOptions): Promise<Calibrator> {
  const p = plan(scores, labels, options, 'calibration.fitCalibratorAsync', true);
  const fitted = p.spec.fitAsync ? await p.spec.fitAsync(p.data, p.settings) : await runAsync(p.spec.fit(p.data, p.settings));
  return runAsync(finish(p, fitted));
}

let constructing = false;

function makeCalibrator(method: Method, from: ScoreKind, classes: number, settings: Settings, params: unknown, fit: FitInfo): Calibrator {
  constructing = true;
  try {
    return new Calibrator(method, from, classes, settings, params, fit);
  } finally {
    constructing = false;
  }
}

/** A fitted recalibration map from scores (of the kind it was fitted on) to probabilities. Make one with fitCalibrator or Calibrator.fromJSON. */
export class Calibrator {
  readonly method: Method;
  /** The kind of scores it takes: 'probs' or 'logits'. */
  readonly from: ScoreKind;
  /** K, the number of classes (columns of the scores). */
  readonly classes: number;
  /** What the fit found (NLLs on the fitting rows, solver iterations, convergence). */
  readonly fit: Readonly<FitInfo>;
  readonly #settings: Settings;
  readonly #params: unknown;

  /** @internal Use fitCalibrator or Calibrator.fromJSON. */
  constructor(method: Method, from: ScoreKind, classes: number, settings: Settings, params: unknown, fit: FitInfo) {
    if (!constructing) throw typeErrorMessage('Calibrator cannot be constructed directly: use calibration.fitCalibrator() or Calibrator.fromJSON()');
    this.method = method;
    this.from = from;
    this.classes = classes;
    this.#settings = Object.freeze({ ...settings });
    this.#params = params;
    this.fit = Object.freeze({ ...fit });
  }

  /** fitCalibrator as a static. */
  static fit(scores: unknown, labels: unknown, options: FitCalibratorOptions): Calibrator {
    return fitCalibrator(scores, labels, options);
  }

  /** fitCalibratorAsync as a static. */
  static fitAsync(scores: unknown, labels: unknown, options: FitCalibratorOptions): Promise<Calibrator> {
    return fitCalibratorAsync(scores, labels, options);
  }

  #rows(scores: unknown, options: unknown, fn: string): Rows {
    const opts = readOptions(options, ['tolerance'], fn);
    const rows = readScores(scores, this.from, readTolerance(opts.tolerance));
    if (rows.k !== this.classes) {
      throw inconsistent('scores', `this calibrator was fitted on K = ${this.classes} classes but scores has shape [${rows.n}, ${rows.k}]`);
    }
    return rows;
  }

  #tensor(p: Float64Array, n: number): Tensor<Float64Array> {
    return { data: p, shape: [n, this.classes], dtype: 'float64' };
  }

  /** Calibrated probabilities: an (N, K) float64 tensor whose rows sum to 1. */
  apply(scores: unknown, options?: ApplyOptions): Tensor<Float64Array> {
    const rows = this.#rows(scores, options, 'Calibrator.apply');
    return this.#tensor(runSync(METHODS[this.method].apply(this.#params, rows)), rows.n);
  }

  /** apply without blocking the event loop (the same bits); the scores are copied when the call starts. */
  async applyAsync(scores: unknown, options?: ApplyOptions): Promise<Tensor<Float64Array>> {
    const rows = this.#rows(scores, options, 'Calibrator.applyAsync');
    return this.#tensor(await runAsync(METHODS[this.method].apply(this.#params, rows)), rows.n);
  }

  toJSON(): CalibratorJSON {
    return {
      format: FORMAT,
      version: 1,
      method: this.method,
      from: this.from,
      classes: this.classes,
      settings: { ...this.#settings },
      params: METHODS[this.method].toJSON(this.#params),
      fit: { ...this.fit },
    };
  }

  /**
   * A calibrator from toJSON()'s output (an object, or its JSON text). Every field is
   * checked: unknown, missing or extra fields, wrong lengths, non-finite numbers, an
   * unknown method or version give a TypeError/RangeError with a code.
   */
  static fromJSON(json: unknown): Calibrator {
    let v = json;
    if (typeof v === 'string') {
      try {
        v = JSON.parse(v);
      } catch (err) {
        throw rangeError('calibrator', `JSON text (${(err as Error).message})`, json);
      }
    }
    const o = exactKeys(record(v, 'calibrator'), ['format', 'version', 'method', 'from', 'classes', 'settings', 'params', 'fit'], 'calibrator');
    if (o.format !== FORMAT) throw rangeError('calibrator.format', `'${FORMAT}'`, o.format);
    if (o.version !== 1) throw rangeError('calibrator.version', '1 (the only version this smoothce reads)', o.version);
    const method = readMethod(o.method, 'calibrator.method');
    const from = readFrom(o.from, 'calibrator.from');
    const classes = integerIn(o.classes, 2, 2 ** 31 - 1, 'calibrator.classes');
    const spec = METHODS[method];
    const s = exactKeys(o.settings, spec.keep, 'calibrator.settings');
    for (const key of spec.keep) finite(s[key], `calibrator.settings.${key}`);
    const settings: Settings = {};
    const read = spec.settings(s);
    for (const key of spec.keep) settings[key] = read[key];
    const params = spec.fromJSON(o.params, classes, 'calibrator.params');
    const f = exactKeys(o.fit, ['n', 'nllBefore', 'nllAfter', 'iterations', 'converged', 'gradientNorm'], 'calibrator.fit');
    const nonNegative = (x: unknown, where: string): number => {
      const n = finite(x, where);
      if (n < 0) throw rangeError(where, 'a finite number >= 0', n);
      return n;
    };
    if (typeof f.converged !== 'boolean') throw typeError('calibrator.fit.converged', 'a boolean', f.converged);
    const fit: FitInfo = {
      n: integerIn(f.n, 2, Number.MAX_SAFE_INTEGER, 'calibrator.fit.n'),
      nllBefore: nonNegative(f.nllBefore, 'calibrator.fit.nllBefore'),
      nllAfter: nonNegative(f.nllAfter, 'calibrator.fit.nllAfter'),
      iterations: integerIn(f.iterations, 0, Number.MAX_SAFE_INTEGER, 'calibrator.fit.iterations'),
      converged: f.converged,
      gradientNorm: f.gradientNorm === null ? null : nonNegative(f.gradientNorm, 'calibrator.fit.gradientNorm'),
    };
    return makeCalibrator(method, from, classes, settings, params, fit);
  }
}

