/**
 * One training run: the MLP of mlp.ts on (possibly noisy) labels, minibatch Adam, with
 * the loss and d loss / d logits of every step computed by smoothce's crossEntropy with
 * label smoothing ε.
 */
import { crossEntropy } from '../loss/cross-entropy';
import { tensor } from '../core/tensor';
import type { Dataset } from './data';
import { Adam, Mlp } from './mlp';
import { Rng } from './rng';

export interface TrainOptions {
  /** Label smoothing ε passed to crossEntropy. */
  eps: number;
  epochs: number;
  hidden: number;
  batchSize: number;
  lr: number;
  /** Seeds the weight initialisation and the minibatch order (the same for every ε). */
  seed: number;
  /** Score the validation set after every epoch for onEpoch (default true); false reports NaN and saves the time. */
  validationEveryEpoch?: boolean;
}

export interface EpochInfo {
  epoch: number;
  epochs: number;
  /** Mean training loss over the epoch's minibatches (smoothed loss when ε > 0). */
  loss: number;
  /** Accuracy on the validation set after the epoch. */
  validationAccuracy: number;
}

/** Trains on `data.x` with the labels `labels` (the noisy ones); calls onEpoch after each epoch. */
export function train(
  data: Dataset,
  labels: Int32Array,
  validation: Dataset,
  options: TrainOptions,
  onEpoch?: (info: EpochInfo) => void,
): Mlp {
  const { d, n, classes: k } = data;
  const rng = new Rng(options.seed);
  const model = new Mlp(d, options.hidden, k, rng);
  const p = model.params;
  const g = model.grads;
  const adam = new Adam([p.w1, p.b1, p.w2, p.b2], options.lr);
  const grads = [g.w1, g.b1, g.w2, g.b2];
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const bx = new Float64Array(options.batchSize * d);
  const by = new Int32Array(options.batchSize);
  for (let epoch = 1; epoch <= options.epochs; epoch++) {
    rng.shuffle(order);
    let lossSum = 0;
    let batches = 0;
    for (let start = 0; start < n; start += options.batchSize) {
      const rows = Math.min(options.batchSize, n - start);
      for (let r = 0; r < rows; r++) {
        const i = order[start + r];
        bx.set(data.x.subarray(i * d, i * d + d), r * d);
        by[r] = labels[i];
      }
      const logits = model.forward(bx, rows);
      const { loss, grad } = crossEntropy(tensor(logits, [rows, k], 'float64'), tensor(by.subarray(0, rows), [rows], 'int32'), {
        labelSmoothing: options.eps,
        grad: true,
      });
      model.backward(grad!.data);
      adam.step(grads);
      lossSum += loss;
      batches++;
    }
    if (onEpoch) {
      let validationAccuracy = NaN;
      if (options.validationEveryEpoch !== false) {
        validationAccuracy = agreement(argmax(model.forward(validation.x, validation.n), k), validation.y);
      }
      onEpoch({ epoch, epochs: options.epochs, loss: lossSum / batches, validationAccuracy });
    }
  }
  return model;
}

/** Index of the largest logit of each row (ties to the lowest index). */
export function argmax(logits: Float64Array, k: number): Int32Array {
  const n = logits.length / k;
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[r * k + c] > logits[r * k + best]) best = c;
    out[r] = best;
  }
  return out;
}

/** Fraction of positions where a and b agree (optionally only at the given indices). */
export function agreement(a: ArrayLike<number>, b: ArrayLike<number>, at?: ArrayLike<number>): number {
  if (at) {
    let same = 0;
    for (let i = 0; i < at.length; i++) if (a[at[i]] === b[at[i]]) same++;
    return at.length === 0 ? NaN : same / at.length;
  }
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return a.length === 0 ? NaN : same / a.length;
}
