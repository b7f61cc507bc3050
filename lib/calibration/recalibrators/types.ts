/** The contract each recalibration method (one file each) fulfils for the registry. */
import type { Labeled, Rows, Work } from './data';

export type Method = 'temperature' | 'vector' | 'matrix' | 'isotonic' | 'histogram';

/** What a fit found, kept with the calibrator (and in its JSON). NLLs are on the fitting data. */
export interface FitInfo {
  /** Rows the calibrator was fitted on. */
  n: number;
  /** Mean NLL of the scores as given (softmax of logits, or the probabilities), and after calibration. */
  nllBefore: number;
  nllAfter: number;
  /** Solver iterations (0 for the binning methods). */
  iterations: number;
  /** The solver met its gradient tolerance (scaling methods; always true for the binning methods). */
  converged: boolean;
  /** Largest |∂/∂θ| of the (penalised) mean NLL at the solution; null where there is no gradient (binning methods, temperature). */
  gradientNorm: number | null;
}

/** Method settings stored with a calibrator: numbers only (ODIR's λ and μ, a bin count). */
export type Settings = Record<string, number>;

export interface Fitted<P> {
  params: P;
  iterations: number;
  converged: boolean;
  gradientNorm: number | null;
  /** Mean NLL after calibration when the fit computed it exactly as apply would (else apply is run). */
  nllAfter?: number;
}

export interface MethodSpec<P> {
  /** Options of fitCalibrator this method takes beyond method, from and tolerance. */
  options: readonly string[];
  /** The settings kept with the calibrator (in its JSON, exactly these keys). */
  keep: readonly string[];
  /** Reads and checks its options (or its kept settings, from JSON), with defaults for those not given. */
  settings(raw: Record<string, unknown>): Settings;
  fit(data: Labeled, settings: Settings): Work<Fitted<P>>;
  /** An async fit of its own (temperature: the native fit on the thread pool). */
  fitAsync?(data: Labeled, settings: Settings): Promise<Fitted<P>>;
  /** Calibrated probabilities (N·K, row-major) of validated rows. */
  apply(params: P, rows: Rows): Work<Float64Array>;
  toJSON(params: P): Record<string, unknown>;
  /** Validates and reads stored parameters (where: the path for error messages). */
  fromJSON(raw: unknown, k: number, where: string): P;
}
