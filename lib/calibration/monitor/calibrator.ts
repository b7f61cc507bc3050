/**
 * monitor.fitCalibrator(window, method): the fit on a keepRows window's rows, through
 * calibration.fitCalibrator (lib/calibration/recalibrators/), with the scores kind the Monitor
 * observes ('logits' or 'probs').
 */
import type { Tensor } from '../../core/tensor';
import type { ScoreKind } from '../options';
import { fitCalibrator as fitOnRows, fitCalibratorAsync as fitOnRowsAsync, type Calibrator, type FitCalibratorOptions } from '../recalibrators/index';

/** What monitor.fitCalibrator returns: a calibration.Calibrator. */
export type CalibratorLike = Calibrator;

/** Options of monitor.fitCalibrator beyond the method: those of calibration.fitCalibrator but `from`. */
export type MonitorFitOptions = Omit<FitCalibratorOptions, 'method' | 'from'>;

function fitOptions(method: unknown, from: ScoreKind, options: MonitorFitOptions | undefined): FitCalibratorOptions {
  return { ...(options ?? {}), method: method as FitCalibratorOptions['method'], from };
}

export function fitCalibrator(scores: Tensor, labels: Tensor, method: unknown, from: ScoreKind, options?: MonitorFitOptions): Calibrator {
  return fitOnRows(scores, labels, fitOptions(method, from, options));
}

export function fitCalibratorAsync(scores: Tensor, labels: Tensor, method: unknown, from: ScoreKind, options?: MonitorFitOptions): Promise<Calibrator> {
  return fitOnRowsAsync(scores, labels, fitOptions(method, from, options));
}
