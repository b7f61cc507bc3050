/** One native pass: validated inputs in, sufficient statistics out. */
import { native } from '../native';
import type { Tensor } from '../tensor';
import { fromNative, type Stats } from './metrics';
import { CONVENTION_CODES, type Resolved } from './options';

export interface Want {
  classwise: boolean;
  adaptive: boolean;
}

export function computeStats(scores: Tensor, labels: Tensor, r: Resolved, want: Want, scoresName = 'scores'): Stats {
  // Errors carry the caller's stack (the native error's message, this frame's stack).
  try {
    return fromNative(
      native().calibrationStats({
        scores,
        labels,
        fromLogits: r.from === 'logits',
        temperature: r.temperature,
        bins: r.bins,
        convention: CONVENTION_CODES[r.convention],
        classwise: want.classwise,
        adaptive: want.adaptive,
        tolerance: r.tolerance,
        device: r.device,
        scoresName,
      }),
    );
  } catch (err) {
    if (err instanceof Error) Error.captureStackTrace(err, computeStats);
    throw err;
  }
}
