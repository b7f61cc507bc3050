/**
 * Calibration scoring: ECE / MCE / RMSCE (uniform or equal-mass bins, three binning
 * conventions), classwise ECE, NLL, Brier, temperature scaling, reliability diagrams and
 * a streaming Accumulator. The per-sample work runs in ATen (binding/aten/calibration.cc) on
 * the input's device; this module validates and finishes the arithmetic over bins.
 * Definitions and the library each convention matches: docs/calibration.md.
 */
import type { TensorInput } from '../core/device';
import { Accumulator } from './accumulator';
import { computeStats, computeStatsAsync } from './compute';
import { binError, buildReport, type BinTable, type CalibrationReport, type RowExtras, type Stats } from './metrics';
import { checkInputs, resolveEce, resolveReport, type EceOptions, type ReportOptions, type ResolvedReport } from './options';
import { rowWork, type RowWorkOptions } from './row-extras';
import { runSliced, runSync } from './smooth-ece';
import { reliabilityDiagram } from './diagram';

export { Accumulator, reliabilityDiagram };
export { MissingDependencyError } from './diagram';
export { Monitor } from './monitor/index';
export { fitTemperature, fitTemperatureAsync } from './temperature';
export type { TemperatureFit, FitTemperatureOptions } from './temperature';
export { registerMonitorMetrics } from './prometheus';
export type { MetricsOptions } from './prometheus';
export { OVERFLOW_SEGMENT } from './monitor/segments';
export type { MonitorOptions, MonitorCounts, MonitorState, SegmentCounts, WindowSpec, ThresholdSpec, ThresholdEvent, Metric } from './monitor/types';
export type { CalibratorLike } from './monitor/index';
export type { AccumulatorOptions, AccumulatorState } from './accumulator';
export type { CalibrationReport, ReliabilityBin } from './metrics';
export type { Convention, Norm, Strategy, ScoreKind, EceOptions, ReportOptions, CommonOptions } from './options';
export type { DiagramOptions } from './diagram';
export { DEFAULT_BINS, DEFAULT_TOLERANCE } from './options';
export { smoothEce, SmoothEceGrids, GRID_SIZES as SMOOTH_ECE_GRID_SIZES } from './smooth-ece';
export type { SmoothEceResult } from './smooth-ece';
export type { SmoothCurve } from './smooth-curve';
export type { RiskCoverage, SelectiveScore } from './selective';
export { Calibrator, fitCalibrator, fitCalibratorAsync, RECALIBRATION_METHODS } from './recalibrators/index';
export type { ApplyOptions, CalibratorJSON, FitCalibratorOptions, FitInfo, Method as RecalibrationMethod } from './recalibrators/index';

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
