/** One native pass: validated inputs in, sufficient statistics out. */
import { native, type NativeCalibrationArgs } from '../core/native';
import type { Tensor } from '../core/tensor';
import { fromNative, type Stats } from './metrics';
import { CONVENTION_CODES, type Resolved } from './options';

export interface Want {
  classwise: boolean;
  adaptive: boolean;
  /** Per-row float64 top-label values (Stats.rows), for SmoothECE, top-label ECE and AURC. */
  rows?: boolean;
}

function nativeArgs(scores: Tensor, labels: Tensor, r: Resolved, want: Want, scoresName: string): NativeCalibrationArgs {
  return {
    scores,
    labels,
    fromLogits: r.from === 'logits',
    temperature: r.temperature,
    bins: r.bins,
    convention: CONVENTION_CODES[r.convention],
    classwise: want.classwise,
    adaptive: want.adaptive,
    rows: want.rows === true,
    tolerance: r.tolerance,
    device: r.device,
    scoresName,
  };
}

export function computeStats(scores: Tensor, labels: Tensor, r: Resolved, want: Want, scoresName = 'scores'): Stats {
  // Errors carry the caller's stack (the native error's message, this frame's stack).
  try {
    return fromNative(native().calibrationStats(nativeArgs(scores, labels, r, want, scoresName)));
  } catch (err) {
    if (err instanceof Error) Error.captureStackTrace(err, computeStats);
    throw err;
  }
}

/** Gives a native rejection (which has no JS stack of its own) the stack of `callSite`. */
export function withCallSite(err: unknown, callSite: Error): unknown {
  if (err instanceof Error && callSite.stack) {
    err.stack = `${err.name}: ${err.message}\n${callSite.stack.split('\n').slice(1).join('\n')}`;
  }
  return err;
}

/**
 * computeStats on the libuv pool: the same native function (calibration_stats) on a pool
 * thread. Inputs on an ordinary ArrayBuffer are copied when the call starts (the caller may
 * then change them); SharedArrayBuffer-backed inputs are read in place and must not be
 * written until the promise settles, as for crossEntropyAsync.
 */
export async function computeStatsAsync(scores: Tensor, labels: Tensor, r: Resolved, want: Want, scoresName = 'scores', callSite = new Error()): Promise<Stats> {
  try {
    return fromNative(await native().calibrationStats(nativeArgs(scores, labels, r, want, scoresName), true));
  } catch (err) {
    throw withCallSite(err, callSite);
  }
}
