/**
 * monitor.fitCalibrator(window, method): the fit on a keepRows window's rows. It calls
 * calibration.fitCalibrator (lib/calibration/recalibrators/, issue 29 item 3) through the
 * `fitCalibrator` function below; until that module is in this build, 'temperature' is
 * fitted here with fitTemperature and every other method is refused with a coded RangeError.
 */
import { rangeError, typeError } from '../../core/errors';
import { checkTensor, tensor, type Tensor } from '../../core/tensor';
import type { TensorInput } from '../../core/device';
import type { ScoreKind } from '../options';
import { fitTemperature } from '../temperature';

/** What the Monitor needs of a fitted calibrator (calibration.Calibrator has more). */
export interface CalibratorLike {
  readonly method: string;
  /** Calibrated probabilities, shape (N, K). */
  apply(scores: TensorInput): Tensor;
  toJSON(): unknown;
}

/** The temperature calibrator used until calibration.fitCalibrator is in the build. */
class TemperatureCalibrator implements CalibratorLike {
  readonly method = 'temperature';
  constructor(
    readonly temperature: number,
    readonly classes: number,
  ) {}

  apply(scores: TensorInput): Tensor {
    const t = checkTensor(scores, 'scores');
    if (t.dtype !== 'float32' && t.dtype !== 'float64') throw typeError('scores.dtype', "'float32' or 'float64'", t.dtype);
    if (t.shape.length !== 2 || t.shape[1] !== this.classes) throw rangeError('scores', `a tensor of shape (N, ${this.classes})`, t.shape);
    const [n, k] = t.shape as [number, number];
    const out = new Float64Array(n * k);
    for (let i = 0; i < n; i++) {
      let max = -Infinity;
      for (let j = 0; j < k; j++) max = Math.max(max, t.data[i * k + j] as number);
      let total = 0;
      for (let j = 0; j < k; j++) total += out[i * k + j] = Math.exp(((t.data[i * k + j] as number) - max) / this.temperature);
      for (let j = 0; j < k; j++) out[i * k + j] /= total;
    }
    return tensor(out, [n, k]);
  }

  toJSON(): unknown {
    return { format: 'smoothce.calibration.calibrator', version: 1, method: this.method, classes: this.classes, temperature: this.temperature };
  }
}

const METHODS = ['temperature'];

/** calibration.fitCalibrator(scores, labels, { method, from }) as far as this build has it. */
export function fitCalibrator(scores: Tensor, labels: Tensor, options: { method: unknown; from: ScoreKind }): CalibratorLike {
  const { method, from } = options;
  if (typeof method !== 'string') throw typeError('method', `one of ${METHODS.map((m) => `'${m}'`).join(', ')}`, method);
  if (!METHODS.includes(method)) throw rangeError('method', `one of ${METHODS.map((m) => `'${m}'`).join(', ')} (the others come with calibration.fitCalibrator)`, method);
  if (from !== 'logits') throw rangeError('from', "'logits' to fit a temperature", from);
  return new TemperatureCalibrator(fitTemperature(scores, labels).temperature, scores.shape[1]);
}
