/**
 * Calibration scoring: ECE / MCE / RMSCE (uniform or equal-mass bins, three binning
 * conventions), classwise ECE, NLL, Brier, temperature scaling, reliability diagrams and
 * a streaming Accumulator. The per-sample work runs in ATen (binding/calibration.cc) on
 * the input's device; this module validates and finishes the arithmetic over bins.
 * Definitions and the library each convention matches: docs/calibration.md.
 */
import type { TensorInput } from '../device';
import type { Tensor } from '../tensor';
import { native } from '../native';
import { readOptions } from '../options';
import { Accumulator } from './accumulator';
import { computeStats, computeStatsAsync, sharedCopy, withCallSite } from './compute';
import { binError, buildReport, type BinTable, type CalibrationReport, type RowExtras, type Stats } from './metrics';
import { checkInputs, resolveEce, resolveReport, resolveCommon, type CommonOptions, type EceOptions, type ReportOptions, type ResolvedReport } from './options';
import { rowWork, type RowWorkOptions } from './row-extras';
import { runSliced, runSync } from './smooth-ece';
import { reliabilityDiagram } from './diagram';

export { Accumulator, reliabilityDiagram };
export { MissingDependencyError } from './diagram';
export { Monitor } from './monitor';
export { registerMonitorMetrics } from './prometheus';
export type { MetricsOptions } from './prometheus';
export type { MonitorOptions, MonitorCounts, MonitorState, WindowSpec, ThresholdSpec, ThresholdEvent, Metric } from './monitor';
export type { AccumulatorOptions, AccumulatorState } from './accumulator';
export type { CalibrationReport, ReliabilityBin } from './metrics';
export type { Convention, Norm, Strategy, ScoreKind, EceOptions, ReportOptions, CommonOptions } from './options';
export type { DiagramOptions } from './diagram';
export { DEFAULT_BINS, DEFAULT_TOLERANCE } from './options';
export { smoothEce, SmoothEceGrids, GRID_SIZES as SMOOTH_ECE_GRID_SIZES } from './smooth-ece';
export type { SmoothEceResult, SmoothCurve } from './smooth-ece';
export type { RiskCoverage, SelectiveScore } from './selective';

/**
 * Calibration error of top-label confidences: norm 'l1' (ECE, default), 'l2' (RMSCE) or
 * 'max' (MCE), over 'uniform' (default) or 'quantile' (equal-mass) bins.
 */
export function ece(probs: TensorInput, labels: TensorInput, options?: EceOptions): number {
  const r = resolveEce(options, 'calibration.ece');
  const inp = checkInputs(probs, labels, 'probs');
  const quantile = r.strategy === 'quantile';
  const s = computeStats(inp.scores, inp.labels, r, { classwise: false, adaptive: quantile }, 'probs');
  return binError(quantile ? s.adaptive! : s.top, s.n, r.norm, r.debias);
}

function rowOptions(r: ResolvedReport, s: Stats): RowWorkOptions {
  return {
    convention: r.convention,
    edges: s.top.edges,
    selectiveScore: r.selectiveScore,
    smoothBand: r.smoothBand,
  };
}

function finish(s: Stats, r: ResolvedReport, extras: RowExtras & { topLabel: BinTable }): CalibrationReport {
  const notes = r.temperature !== 1 ? [`Logits were divided by temperature ${r.temperature} before the softmax.`] : [];
  return buildReport({ ...s, rows: undefined, topLabel: extras.topLabel }, r.convention, r.temperature, notes, extras);
}

const REPORT_WANT = { classwise: true, adaptive: true, rows: true } as const;

/**
 * Every metric at once, plus the bins of a reliability diagram. The binned metrics come from
 * the native (ATen) pass; topLabelEce, smoothEce (with smoothCurve) and aurc from float64
 * top-label values computed here (lib/calibration/rows.ts).
 */
export function report(scores: TensorInput, labels: TensorInput, options?: ReportOptions): CalibrationReport {
  const r = resolveReport(options, 'calibration.report');
  const inp = checkInputs(scores, labels);
  const s = computeStats(inp.scores, inp.labels, r, REPORT_WANT);
  return finish(s, r, runSync(rowWork(s.rows!, rowOptions(r, s))));
}

/**
 * report() on the libuv thread pool: the same native computation, so the same bits, while
 * the event loop stays free. Inputs on an ordinary ArrayBuffer are copied when the call
 * starts (the caller may then change, transfer or drop them); SharedArrayBuffer-backed
 * inputs are read in place and must not be written until the promise settles (the rules
 * of crossEntropyAsync). Every error, argument or data, rejects the promise (as for
 * crossEntropyAsync), with the caller's stack.
 */
export async function reportAsync(scores: TensorInput, labels: TensorInput, options?: ReportOptions): Promise<CalibrationReport> {
  const callSite = new Error();
  const r = resolveReport(options, 'calibration.reportAsync');
  const inp = checkInputs(scores, labels);
  const s = await computeStatsAsync(inp.scores, inp.labels, r, REPORT_WANT, 'scores', callSite);
  // The per-row work (grids, bandwidth search, ranking) runs here in slices of a few ms.
  return finish(s, r, await runSliced(rowWork(s.rows!, rowOptions(r, s))));
}

export interface TemperatureFit {
  /** argmin_T NLL(softmax(logits / T)). */
  temperature: number;
  /** Mean NLL at T = 1 and at the fitted T. */
  nllBefore: number;
  nllAfter: number;
  /** ECE (l1, uniform bins, the options' bins and convention) at T = 1 and at the fitted T. */
  eceBefore: number;
  eceAfter: number;
  /** NLL evaluations the search used. */
  iterations: number;
  /** True when the optimum lies beyond T in [1e-6, 1e6] and the bound was returned
   * (e.g. logits that separate the data perfectly: NLL keeps falling as T -> 0). */
  atBound: boolean;
}

export type FitTemperatureOptions = Pick<CommonOptions, 'bins' | 'convention' | 'device'>;

/**
 * Temperature scaling (Guo et al. 2017, §4.2): the T > 0 minimising the mean NLL of
 * softmax(logits / T). Deterministic: Newton's method on 1/T (where the NLL is convex),
 * safeguarded by bisection, in float64.
 */
export function fitTemperature(logits: TensorInput, labels: TensorInput, options?: FitTemperatureOptions): TemperatureFit {
  const opts = readOptions(options, ['bins', 'convention', 'device'], 'calibration.fitTemperature');
  const r = resolveCommon({ ...opts, from: 'logits' });
  const inp = checkInputs(logits, labels, 'logits');
  let fit;
  try {
    fit = native().calibrationFitTemperature({ logits: inp.scores, labels: inp.labels, device: r.device });
  } catch (err) {
    if (err instanceof Error) Error.captureStackTrace(err, fitTemperature);
    throw err;
  }
  const eceAt = (temperature: number): number => {
    const s = computeStats(inp.scores, inp.labels, { ...r, temperature }, { classwise: false, adaptive: false }, 'logits');
    return binError(s.top, s.n, 'l1');
  };
  return {
    temperature: fit.temperature,
    nllBefore: fit.nllBefore,
    nllAfter: fit.nllAfter,
    eceBefore: eceAt(1),
    eceAfter: eceAt(fit.temperature),
    iterations: fit.iterations,
    atBound: fit.atBound,
  };
}


/**
 * fitTemperature() on the libuv thread pool: the same native search and the same ECE
 * passes, so the same bits. The fit needs three native passes over the data (the search,
 * then the ECE at T = 1 and at the fitted T), so inputs on an ordinary ArrayBuffer are
 * copied once, when the call starts, to a SharedArrayBuffer that all three read (the
 * caller may change its own arrays at once); SharedArrayBuffer-backed inputs are read in
 * place and must not be written until the promise settles.
 */
export async function fitTemperatureAsync(logits: TensorInput, labels: TensorInput, options?: FitTemperatureOptions): Promise<TemperatureFit> {
  const callSite = new Error();
  const opts = readOptions(options, ['bins', 'convention', 'device'], 'calibration.fitTemperatureAsync');
  const r = resolveCommon({ ...opts, from: 'logits' });
  const inp = checkInputs(logits, labels, 'logits');
  const z = sharedCopy(inp.scores);
  const y = sharedCopy(inp.labels);
  const eceAt = (temperature: number): Promise<number> =>
    computeStatsAsync(z, y, { ...r, temperature }, { classwise: false, adaptive: false }, 'logits', callSite).then((s) => binError(s.top, s.n, 'l1'));
  {
    let fit;
    try {
      fit = await native().calibrationFitTemperature({ logits: z, labels: y, device: r.device }, true);
    } catch (err) {
      throw withCallSite(err, callSite);
    }
    const [eceBefore, eceAfter] = await Promise.all([eceAt(1), eceAt(fit.temperature)]);
    return {
      temperature: fit.temperature,
      nllBefore: fit.nllBefore,
      nllAfter: fit.nllAfter,
      eceBefore,
      eceAfter,
      iterations: fit.iterations,
      atBound: fit.atBound,
    };
  }
}
