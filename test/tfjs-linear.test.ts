/**
 * smoothce/tfjs's linearCrossEntropyLoss (lib/tfjs.ts) against the plain path
 * (linearCrossEntropy): the loss and, through tf.grads, the gradients of input,
 * linearWeight and linearBias, for every reduction, class-index and probability labels;
 * and a training step with optimizer.minimize on tf.variables.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { linearCrossEntropy, tensor } from '../lib/index';
import { linearCrossEntropyLoss } from '../lib/tfjs';
import { rng } from './helpers/rng';

const N = 5;
const H = 4;
const C = 6;
const r = rng(7);
const xs = Float32Array.from({ length: N * H }, () => r() * 2 - 1);
const ws = Float32Array.from({ length: C * H }, () => r() * 2 - 1);
const bs = Float32Array.from({ length: C }, () => r() - 0.5);
const ys = Int32Array.from({ length: N }, (_, i) => (i * 5) % C);
const probs = Float32Array.from({ length: N * C }, () => r());

function near(a: ArrayLike<number>, b: ArrayLike<number>): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(b[i]));
}

describe('linearCrossEntropyLoss (tfjs) vs linearCrossEntropy', () => {
  tf.setBackend('cpu');
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    for (const prob of [false, true]) {
      it(`${reduction}, ${prob ? 'probability' : 'class-index'} labels, with bias`, () => {
        const opts = { labelSmoothing: 0.2, weight: [1, 2, 0.5, 1, 1, 3], reduction };
        const loss = linearCrossEntropyLoss(opts);
        const labels = prob ? tf.tensor(probs, [N, C], 'float32') : tf.tensor(ys, [N], 'int32');
        const x = tf.tensor(xs, [N, H]);
        const w = tf.tensor(ws, [C, H]);
        const b = tf.tensor(bs, [C]);
        const dy = reduction === 'none' ? Float32Array.from({ length: N }, (_, i) => 0.5 + i) : Float32Array.of(1.5);
        const f = (xa: tf.Tensor, wa: tf.Tensor, ba: tf.Tensor): tf.Tensor => loss(labels, xa, wa, ba);
        const value = f(x, w, b);
        const [gx, gw, gb] = tf.grads(f)([x, w, b], tf.tensor(dy, reduction === 'none' ? [N] : []));
        const t = prob ? tensor(probs, [N, C], 'float32') : tensor(ys, [N], 'int32');
        const ref = linearCrossEntropy(tensor(xs, [N, H]), tensor(ws, [C, H]), t, {
          ...opts,
          linearBias: bs,
          grad: true,
          gradOutput: reduction === 'none' ? tensor(dy, [N]) : 1.5,
        });
        near(value.dataSync(), typeof ref.loss === 'number' ? [ref.loss] : ref.loss.data);
        near(gx.dataSync(), ref.grad!.input.data);
        near(gw.dataSync(), ref.grad!.linearWeight.data);
        near(gb.dataSync(), ref.grad!.linearBias!.data);
      });
    }
  }

  it('without bias, inside optimizer.minimize: the step moves the variables by -lr times the gradient', () => {
    const x = tf.tensor(xs, [N, H]);
    const labels = tf.tensor(ys, [N], 'int32');
    const w = tf.variable(tf.tensor(ws, [C, H]));
    const loss = linearCrossEntropyLoss({ labelSmoothing: 0.1 });
    const ref = linearCrossEntropy(tensor(xs, [N, H]), tensor(ws, [C, H]), tensor(ys, [N], 'int32'), { labelSmoothing: 0.1, grad: true });
    const opt = tf.train.sgd(0.5);
    const value = opt.minimize(() => loss(labels, x, w) as tf.Scalar, true)!;
    expect(Math.abs(value.dataSync()[0] - (ref.loss as number))).toBeLessThan(1e-6);
    const after = w.dataSync();
    const g = ref.grad!.linearWeight.data;
    near(after, Float32Array.from(ws, (v, i) => v - 0.5 * g[i]));
  });

  it('bad options and arguments: coded errors', () => {
    expect(() => linearCrossEntropyLoss({ labelSmoothing: 2 })).toThrow(expect.objectContaining({ code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE' }));
    expect(() => linearCrossEntropyLoss({ bias: 1 } as never)).toThrow(expect.objectContaining({ code: 'ERR_SMOOTHCE_UNKNOWN_OPTION' }));
    const loss = linearCrossEntropyLoss();
    expect(() => loss(tf.tensor(ys, [N], 'int32'), tf.tensor(xs, [N, H]), tf.tensor(new Float32Array(C * 3), [C, 3]))).toThrow(expect.objectContaining({ code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE' }));
  });
});
