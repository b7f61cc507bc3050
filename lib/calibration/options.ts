/**
 * Validation of the calibration functions' arguments, in TypeScript before any native
 * code runs (the native layer checks again, and checks the data itself: probabilities
 * in [0, 1] summing to 1, finite logits, labels in range).
 */
import { rangeError, typeError, inconsistent } from '../core/errors';
import { parseDevice, readOptions, type Device } from '../core/options';
import { checkTensor, type Tensor } from '../core/tensor';
import { SELECTIVE_SCORES, type SelectiveScore } from './selective';

export type Convention = 'guo' | 'torchmetrics' | 'netcal';
export type Norm = 'l1' | 'l2' | 'max';
export type Strategy = 'uniform' | 'quantile';
export type ScoreKind = 'logits' | 'probs';

export const CONVENTIONS: readonly Convention[] = ['guo', 'torchmetrics', 'netcal'];
export const CONVENTION_CODES: Readonly<Record<Convention, 0 | 1 | 2>> = { guo: 0, torchmetrics: 1, netcal: 2 };
export const NORMS: readonly Norm[] = ['l1', 'l2', 'max'];
export const STRATEGIES: readonly Strategy[] = ['uniform', 'quantile'];
export const SCORE_KINDS: readonly ScoreKind[] = ['logits', 'probs'];

/** Default number of bins for every convention (Guo et al.'s M = 15; netcal's own default is 10). */
export const DEFAULT_BINS = 15;
/** Default tolerance on |row sum − 1| for probabilities. */
export const DEFAULT_TOLERANCE = 1e-3;
export const MAX_BINS = 1_000_000;

/** Options shared by every calibration function. */
export interface CommonOptions {
  /** What the scores are: 'probs' (default; rows in the simplex) or 'logits' (softmax applied). */
  from?: ScoreKind;
  /** Number of bins, an integer >= 1. Default 15 for every convention. */
  bins?: number;
  /** Bin-edge rule: 'guo' (default), 'torchmetrics' or 'netcal'. */
  convention?: Convention;
  /** Divide logits by this before the softmax (from: 'logits' only). Default 1. */
  temperature?: number;
  /** Allowed |row sum − 1| for probabilities. Default 1e-3. */
  tolerance?: number;
  /** 'cpu' (default), 'cuda' or 'cuda:N': where ATen computes. */
  device?: Device;
}

export interface EceOptions extends CommonOptions {
  /** 'l1' (ECE, default), 'l2' (RMS calibration error) or 'max' (MCE). */
  norm?: Norm;
  /** 'uniform' width bins (default) or 'quantile' (equal-mass) bins. */
  strategy?: Strategy;
  /** For norm 'l2': Kumar et al.'s debiased estimator (default false). */
  debias?: boolean;
}

export interface ReportOptions extends CommonOptions {
  /**
   * What ranks rows for aurc: 'msp' (default; the top probability) or 'normalized-max-logit'
   * (Xia et al., ICLR 2025: max_k (z_k − mean z)/‖z − mean z‖₂; from: 'logits' only).
   */
  selectiveScore?: SelectiveScore;
  /** Bootstrap resamples for the smooth curve's 95% band (report.smoothCurve); default 0 (no band). At most 1000. */
  smoothBand?: number;
}

export const COMMON_OPTION_NAMES = ['from', 'bins', 'convention', 'temperature', 'tolerance', 'device'] as const;
export const REPORT_OPTION_NAMES = [...COMMON_OPTION_NAMES, 'selectiveScore', 'smoothBand'] as const;
export const ECE_OPTION_NAMES = [...COMMON_OPTION_NAMES, 'norm', 'strategy', 'debias'] as const;

export interface Resolved {
  from: ScoreKind;
  bins: number;
  convention: Convention;
  temperature: number;
  tolerance: number;
  device: string;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], parameter: string, fallback: T): T {
  if (value === undefined) return fallback;
  const list = allowed.map((a) => `'${a}'`).join(', ');
  if (typeof value !== 'string') throw typeError(parameter, `one of ${list}`, value);
  if (!(allowed as readonly string[]).includes(value)) throw rangeError(parameter, `one of ${list}`, value);
  return value as T;
}

export function checkBins(value: unknown, parameter = 'bins'): number {
  if (value === undefined) return DEFAULT_BINS;
  if (typeof value !== 'number') throw typeError(parameter, 'an integer >= 1', value);
  if (!Number.isInteger(value) || value < 1) throw rangeError(parameter, 'an integer >= 1', value);
  if (value > MAX_BINS) throw rangeError(parameter, `an integer <= ${MAX_BINS}`, value);
  return value;
}

function positive(value: unknown, parameter: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw typeError(parameter, 'a positive finite number', value);
  if (!Number.isFinite(value) || value <= 0) throw rangeError(parameter, 'a positive finite number', value);
  return value;
}

export function resolveCommon(opts: Record<string, unknown>, defaultFrom: ScoreKind = 'probs'): Resolved {
  const from = oneOf(opts.from, SCORE_KINDS, 'from', defaultFrom);
  const temperature = positive(opts.temperature, 'temperature', 1);
  if (temperature !== 1 && from !== 'logits') {
    throw rangeError('temperature', "1 unless from: 'logits' (temperature scales logits)", temperature);
  }
  return {
    from,
    bins: checkBins(opts.bins),
    convention: oneOf(opts.convention, CONVENTIONS, 'convention', 'guo'),
    temperature,
    tolerance: positive(opts.tolerance, 'tolerance', DEFAULT_TOLERANCE),
    device: parseDevice(opts.device),
  };
}

export function resolveEce(options: unknown, fn: string): Resolved & { norm: Norm; strategy: Strategy; debias: boolean } {
  const opts = readOptions(options, ECE_OPTION_NAMES, fn);
  const common = resolveCommon(opts);
  const norm = oneOf(opts.norm, NORMS, 'norm', 'l1');
  const strategy = oneOf(opts.strategy, STRATEGIES, 'strategy', 'uniform');
  if (opts.debias !== undefined && typeof opts.debias !== 'boolean') throw typeError('debias', 'a boolean', opts.debias);
  const debias = opts.debias === true;
  if (debias && norm !== 'l2') throw rangeError('debias', "false unless norm: 'l2' (the debiased estimator is for RMSCE)", debias);
  return { ...common, norm, strategy, debias };
}

export interface ResolvedReport extends Resolved {
  selectiveScore: SelectiveScore;
  smoothBand: number;
}

export function resolveReport(options: unknown, fn: string): ResolvedReport {
  const opts = readOptions(options, REPORT_OPTION_NAMES, fn);
  const common = resolveCommon(opts);
  const selectiveScore = oneOf(opts.selectiveScore, SELECTIVE_SCORES, 'selectiveScore', 'msp');
  if (selectiveScore === 'normalized-max-logit' && common.from !== 'logits') {
    throw rangeError('selectiveScore', "'msp' unless from: 'logits' (the normalised max logit needs logits)", selectiveScore);
  }
  const band = opts.smoothBand ?? 0;
  if (typeof band !== 'number') throw typeError('smoothBand', 'an integer in [0, 1000]', band);
  if (!Number.isInteger(band) || band < 0 || band > 1000) throw rangeError('smoothBand', 'an integer in [0, 1000]', band);
  return { ...common, selectiveScore, smoothBand: band };
}

/** Checks scores (N, K) float32/float64 and labels (N) int32/int64/uint8 (uint8 widened to int32); returns them and their sizes. */
export function checkInputs(scores: unknown, labels: unknown, scoresName = 'scores'): { scores: Tensor; labels: Tensor; n: number; k: number } {
  const s = checkTensor(scores, scoresName);
  if (s.dtype !== 'float32' && s.dtype !== 'float64') throw typeError(`${scoresName}.dtype`, "'float32' or 'float64'", s.dtype);
  if (s.shape.length !== 2) throw inconsistent(scoresName, `expected shape (N, K) but received [${s.shape.join(', ')}]`);
  const [n, k] = s.shape;
  if (n < 1) throw inconsistent(scoresName, `expected at least one sample (N >= 1) but received shape [${s.shape.join(', ')}]`);
  if (k < 2) throw inconsistent(scoresName, `expected at least 2 classes (K >= 2) but received shape [${s.shape.join(', ')}]`);
  let l = checkTensor(labels, 'labels');
  if (l.dtype !== 'int32' && l.dtype !== 'int64' && l.dtype !== 'uint8') throw typeError('labels.dtype', "'int32', 'int64' or 'uint8'", l.dtype);
  // uint8 labels (as in .npy '|u1' files) are widened to int32 (a copy of N bytes x 4); the native code reads int32/int64.
  if (l.dtype === 'uint8') l = { data: Int32Array.from(l.data as Uint8Array), shape: l.shape, dtype: 'int32' };
  if (l.shape.length !== 1 || l.shape[0] !== n) {
    throw inconsistent('labels', `expected shape [${n}] (one per row of ${scoresName}) but received [${l.shape.join(', ')}]`);
  }
  return { scores: s, labels: l, n, k };
}
