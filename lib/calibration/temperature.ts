/**
 * Temperature scaling: fitTemperature() and fitTemperatureAsync(). The search runs in ATen
 * (binding/aten/calibration.cc); the ECE before and after comes from the same native passes
 * report() uses.
 */
import type { TensorInput } from '../core/device';
import { sharedTensor } from '../core/tensor';
import { native } from '../core/native';
import { readOptions } from '../core/options';
import { computeStats, computeStatsAsync, withCallSite } from './compute';
import { binError } from './metrics';
import { checkInputs, resolveCommon, type ReportOptions } from './options';

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

export type FitTemperatureOptions = Pick<ReportOptions, 'bins' | 'convention' | 'device'>;

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
  const z = sharedTensor(inp.scores);
  const y = sharedTensor(inp.labels);
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
