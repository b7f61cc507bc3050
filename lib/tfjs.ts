/**
 * smoothce/tfjs: PyTorch's cross_entropy(..., label_smoothing=ε) as a TensorFlow.js loss.
 *
 *   const { crossEntropyLoss } = require('smoothce/tfjs');
 *   const loss = crossEntropyLoss({ labelSmoothing: 0.1 });
 *   optimizer.minimize(() => loss(labels, model.apply(x)));
 *
 * The loss and its gradient are smoothce's (the addon's ATen kernel), wired into tfjs's
 * autodiff with tf.customGrad: the forward pass reads the logits and labels once
 * (dataSync), computes the loss and, for 'mean' and 'sum', the gradient in the same call;
 * the backward pass multiplies that gradient by the upstream one. Labels are constants to
 * the tape (their gradient is zero).
 *
 * @tensorflow/tfjs-core is an optional peer dependency: only this entry point loads it.
 * See docs/frameworks.md.
 */
import type * as TF from '@tensorflow/tfjs-core';
import { crossEntropy } from './loss/cross-entropy';
import { linearCrossEntropy, type LinearCrossEntropyOptions, type LinearCrossEntropyResult } from './loss/linear-cross-entropy';
import { codedError, ERROR_CODES, inconsistent, rangeError, typeError } from './core/errors';
import { readOptions, type Reduction } from './core/options';
import { numel, type Tensor } from './core/tensor';
// Loads the addon with the package, as the root entry does.
import './index';

function loadTf(): typeof TF {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@tensorflow/tfjs-core') as typeof TF;
  } catch (err) {
    throw codedError(
      ERROR_CODES.MISSING_DEPENDENCY,
      'smoothce/tfjs needs @tensorflow/tfjs-core, an optional peer dependency of smoothce: ' +
        'npm install @tensorflow/tfjs (or @tensorflow/tfjs-core with a backend)',
      { cause: err },
    );
  }
}
const tf = loadTf();

/** How the labels given to the loss are read. */
export type LabelFormat = 'auto' | 'indices' | 'probabilities' | 'tiled-indices';

export interface CrossEntropyLossOptions {
  /** ε in [0, 1] (default 0). */
  labelSmoothing?: number;
  /** Per-class weights, length C (an array, a Float32Array/Float64Array, or a 1-D tfjs tensor, read once). */
  weight?: readonly number[] | Float32Array | Float64Array | TF.Tensor1D;
  /** Class-index labels equal to it are ignored (default -100). */
  ignoreIndex?: number;
  /** 'mean' (default), 'sum', or 'none' (one loss per position, shaped like the labels). */
  reduction?: Reduction;
  /**
   * Where the classes are: 1 (default), PyTorch's layout (C), (N, C) or (N, C, d1, ..., dk);
   * or -1, tfjs's channels-last layout (N, d1, ..., dk, C), the same loss with the class
   * axis moved (what a Conv2D model outputs). The two agree for rank 1 and 2.
   */
  classAxis?: 1 | -1;
  /**
   * 'auto' (default): PyTorch's rule, labels shaped like the logits are probabilities,
   * labels shaped like the logits without the class axis are class indices (int32, or
   * float32 holding integers). 'indices' and 'probabilities' insist on one of the two.
   * 'tiled-indices': class indices repeated along the class axis, shaped like the logits
   * (made by tileLabels()): what model.fit can pass, since tfjs-layers requires targets
   * shaped like the model's output for any loss but its own sparse one.
   */
  labels?: LabelFormat;
}

const OPTION_NAMES = ['labelSmoothing', 'weight', 'ignoreIndex', 'reduction', 'classAxis', 'labels'] as const;
const LABEL_FORMATS: readonly LabelFormat[] = ['auto', 'indices', 'probabilities', 'tiled-indices'];

/** A tfjs loss: (labels, logits) => the loss, a scalar for 'mean' and 'sum'. */
export type TfjsLoss = (labels: TF.Tensor, logits: TF.Tensor) => TF.Tensor;

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

interface Layout {
  /** Logits as smoothce sees them (PyTorch's layout). */
  xShape: number[];
  /** The 'none' loss shape, as the caller sees it. */
  lossShape: number[];
  classes: number;
  /** Stride between entries of the class axis in the caller's layout, and how many blocks. */
  last: boolean;
}

function layout(shape: number[], classAxis: 1 | -1): Layout {
  if (shape.length === 0) throw inconsistent('logits', 'expected shape (C), (N, C) or (N, C, d1, ..., dk) but received a 0-d tensor');
  if (shape.length <= 2) {
    return { xShape: shape, lossShape: shape.slice(0, -1), classes: shape[shape.length - 1], last: true };
  }
  if (classAxis === 1) return { xShape: shape, lossShape: shape.filter((_, i) => i !== 1), classes: shape[1], last: false };
  // Channels-last: (N, d1, ..., dk, C) is M = N·d1·…·dk rows of C classes.
  const classes = shape[shape.length - 1];
  return { xShape: [numel(shape) / Math.max(classes, 1) || 0, classes], lossShape: shape.slice(0, -1), classes, last: true };
}

function readWeight(w: TF.Tensor): Float32Array {
  if (w.rank !== 1) throw inconsistent('weight', `expected a 1-D tensor of class weights but received shape ${fmt(w.shape)}`);
  if (w.dtype !== 'float32' && w.dtype !== 'int32') throw typeError('weight.dtype', 'float32 or int32', w.dtype);
  return Float32Array.from(w.dataSync() as Float32Array | Int32Array);
}

/** Class indices from an int32 tensor's data, or a float32 one's holding integers. */
function indicesFrom(data: Float32Array | Int32Array, parameter: string): Int32Array {
  if (data instanceof Int32Array) return data;
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isInteger(v)) throw rangeError(`${parameter}[${i}]`, 'an integer class index', v);
    out[i] = v;
  }
  return out;
}

/** Reads tiled class indices (every entry of the class axis equal) back to one per position. */
function untile(data: Float32Array | Int32Array, shape: number[], lay: Layout): Int32Array {
  const C = lay.classes;
  const positions = numel(lay.lossShape);
  const out = new Int32Array(positions);
  // inner = number of positions between two entries of the class axis (1 when it is last).
  const inner = lay.last ? 1 : numel(shape.slice(2));
  for (let p = 0; p < positions; p++) {
    const base = lay.last ? p * C : Math.floor(p / inner) * C * inner + (p % inner);
    const v = data[base];
    for (let c = 1; c < C; c++) {
      if (data[base + c * inner] !== v) {
        throw inconsistent(
          'labels',
          `labels: 'tiled-indices' expects each class index repeated along the class axis (tileLabels()), but position ${p} holds ${v} and ${data[base + c * inner]}` +
            ' (one-hot labels are probabilities: use labels: \'auto\')',
        );
      }
    }
    if (!Number.isInteger(v)) throw rangeError(`labels[${base}]`, 'an integer class index', v);
    out[p] = v;
  }
  return out;
}

/**
 * A TensorFlow.js loss computing PyTorch's cross_entropy(logits, labels, weight,
 * ignore_index, reduction, label_smoothing) with smoothce, forward and gradient.
 * Returns `(labels, logits) => tf.Tensor` (tfjs's argument order): a scalar for 'mean'
 * and 'sum', the per-position losses for 'none'.
 */
export function crossEntropyLoss(options: CrossEntropyLossOptions = {}): TfjsLoss {
  const opts = readOptions(options, OPTION_NAMES, 'crossEntropyLoss') as CrossEntropyLossOptions;
  const classAxis = opts.classAxis ?? 1;
  if (typeof classAxis !== 'number') throw typeError('classAxis', '1 (PyTorch layout) or -1 (channels-last)', classAxis);
  if (classAxis !== 1 && classAxis !== -1) throw rangeError('classAxis', '1 (PyTorch layout) or -1 (channels-last)', classAxis);
  const format = opts.labels ?? 'auto';
  if (typeof format !== 'string') throw typeError('labels', `one of ${LABEL_FORMATS.map((f) => `'${f}'`).join(', ')}`, format);
  if (!LABEL_FORMATS.includes(format)) throw rangeError('labels', `one of ${LABEL_FORMATS.map((f) => `'${f}'`).join(', ')}`, format);
  const reduction = opts.reduction ?? 'mean';
  // A tfjs tensor of class weights is read once, here.
  const weight = opts.weight instanceof tf.Tensor ? readWeight(opts.weight) : opts.weight;
  const lossOptions = {
    labelSmoothing: opts.labelSmoothing,
    weight,
    ignoreIndex: opts.ignoreIndex,
    reduction,
  };
  // Checks the loss options now, with a stand-in call (C = the weights' length, or 3).
  {
    const C = weight !== undefined && weight !== null && typeof (weight as { length?: unknown }).length === 'number'
      ? Math.max((weight as { length: number }).length, 1)
      : 3;
    crossEntropy({ data: new Float32Array(C), shape: [1, C], dtype: 'float32' }, { data: new Int32Array(1), shape: [1], dtype: 'int32' }, lossOptions);
  }

  const compute = tf.customGrad(((labels: TF.Tensor, logits: TF.Tensor) => {
    if (logits.dtype !== 'float32') throw typeError('logits.dtype', 'float32', logits.dtype);
    if (labels.dtype !== 'float32' && labels.dtype !== 'int32') throw typeError('labels.dtype', 'float32 or int32', labels.dtype);
    const shape = logits.shape.slice();
    const lay = layout(shape, classAxis);
    const x: Tensor = { data: logits.dataSync() as Float32Array, shape: lay.xShape, dtype: 'float32' };
    const sameShape = labels.shape.length === shape.length && labels.shape.every((d, i) => d === shape[i]);
    const rawLabels = labels.dataSync() as Float32Array | Int32Array;
    let t: Tensor;
    if (format === 'tiled-indices') {
      if (!sameShape) throw inconsistent('labels', `labels: 'tiled-indices' expects the logits' shape ${fmt(shape)}, received ${fmt(labels.shape)}`);
      t = { data: untile(rawLabels, shape, lay), shape: lay.xShape.filter((_, i) => i !== (lay.xShape.length === 1 ? 0 : 1)), dtype: 'int32' };
    } else if (sameShape && format !== 'indices') {
      if (!(rawLabels instanceof Float32Array)) throw typeError('labels.dtype', 'float32 for probability labels', labels.dtype);
      t = { data: rawLabels, shape: lay.xShape, dtype: 'float32' };
    } else {
      if (format === 'probabilities') throw inconsistent('labels', `probability labels must have the logits' shape ${fmt(shape)}, received ${fmt(labels.shape)}`);
      const want = lay.lossShape;
      if (labels.shape.length !== want.length || !labels.shape.every((d, i) => d === want[i])) {
        throw inconsistent(
          'labels',
          `expected class indices of shape ${fmt(want)} or probabilities of shape ${fmt(shape)} for logits of shape ${fmt(shape)}` +
            `${lay.last || shape.length <= 2 ? '' : ' (classAxis 1: PyTorch layout; pass classAxis: -1 for channels-last logits)'}, received ${fmt(labels.shape)}`,
        );
      }
      const idx = indicesFrom(rawLabels, 'labels');
      t = { data: idx, shape: lay.xShape.length === 1 ? [] : lay.xShape.filter((_, i) => i !== 1), dtype: 'int32' };
    }
    const zeroLabels = (): TF.Tensor => tf.zerosLike(labels);
    if (reduction === 'none') {
      const r = crossEntropy(x, t, { ...lossOptions, reduction: 'none' });
      const value = tf.tensor(r.loss.data as Float32Array, lay.lossShape, 'float32');
      const gradFunc = (dy: TF.Tensor): TF.Tensor[] => {
        const g = crossEntropy(x, t, {
          ...lossOptions,
          reduction: 'none',
          grad: true,
          gradOutput: { data: dy.dataSync() as Float32Array, shape: r.loss.shape, dtype: 'float32' },
        });
        return [zeroLabels(), tf.tensor(g.grad!.data as Float32Array, shape, 'float32')];
      };
      return { value, gradFunc };
    }
    const r = crossEntropy(x, t, { ...lossOptions, reduction, grad: true });
    const value = tf.scalar(r.loss as number, 'float32');
    const gradFunc = (dy: TF.Tensor): TF.Tensor[] =>
      tf.tidy(() => [zeroLabels(), tf.mul(tf.tensor(r.grad!.data as Float32Array, shape, 'float32'), dy)]);
    return { value, gradFunc };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);

  const loss = (labels: TF.Tensor, logits: TF.Tensor): TF.Tensor => {
    if (!(labels instanceof tf.Tensor)) throw typeError('labels', 'a TensorFlow.js tensor', labels);
    if (!(logits instanceof tf.Tensor)) throw typeError('logits', 'a TensorFlow.js tensor', logits);
    return compute(labels, logits);
  };
  return loss;
}

/**
 * Class indices (shape (N), (N, d1, ..., dk)) repeated along a class axis of length
 * `numClasses`, the shape of the logits, as model.fit needs targets to be; read back by
 * crossEntropyLoss({ labels: 'tiled-indices' }) with the same classAxis.
 */
export function tileLabels(indices: TF.Tensor, numClasses: number, classAxis: 1 | -1 = 1): TF.Tensor {
  if (!(indices instanceof tf.Tensor)) throw typeError('indices', 'a TensorFlow.js tensor of class indices', indices);
  if (typeof numClasses !== 'number') throw typeError('numClasses', 'a positive integer', numClasses);
  if (!Number.isInteger(numClasses) || numClasses < 1) throw rangeError('numClasses', 'a positive integer', numClasses);
  if (classAxis !== 1 && classAxis !== -1) throw rangeError('classAxis', '1 (PyTorch layout) or -1 (channels-last)', classAxis);
  const axis = classAxis === -1 || indices.rank <= 1 ? indices.rank : 1;
  return tf.tidy(() => {
    const e = tf.expandDims(indices, axis);
    const reps = e.shape.map((_, i) => (i === axis ? numClasses : 1));
    return tf.tile(e, reps);
  });
}

export interface LinearCrossEntropyLossOptions {
  /** ε in [0, 1] (default 0). */
  labelSmoothing?: number;
  /** Per-class weights, length C (an array, a Float32Array/Float64Array, or a 1-D tfjs tensor, read once). */
  weight?: readonly number[] | Float32Array | Float64Array | TF.Tensor1D;
  /** Class-index labels equal to it are ignored (default -100). */
  ignoreIndex?: number;
  /** 'mean' (default), 'sum', or 'none' (one loss per row). */
  reduction?: Reduction;
  /** Bound on the working buffers in bytes (default 16 MiB, or 64 rows' worth when more), as linearCrossEntropy's workingMemory. */
  workingMemory?: number;
}

/** (labels, input, linearWeight, linearBias?) => the loss: a scalar for 'mean' and 'sum', one per row for 'none'. */
export type TfjsLinearLoss = (labels: TF.Tensor, input: TF.Tensor, linearWeight: TF.Tensor, linearBias?: TF.Tensor) => TF.Tensor;

const LINEAR_LOSS_OPTION_NAMES = ['labelSmoothing', 'weight', 'ignoreIndex', 'reduction', 'workingMemory'] as const;

/**
 * A TensorFlow.js loss for a model's output layer: PyTorch's
 * cross_entropy(linear(input, linearWeight, linearBias), labels, ...) computed by smoothce's
 * linearCrossEntropy, which never forms the (N, C) logits; its gradients for input,
 * linearWeight and linearBias are wired into tfjs's autodiff with tf.customGrad. input is
 * (N, H) or (H), linearWeight (C, H) (the transpose of a tfjs Dense kernel), linearBias (C);
 * labels are int32 class indices (N) (float32 integers are accepted) or float32 probabilities (N, C).
 */
export function linearCrossEntropyLoss(options: LinearCrossEntropyLossOptions = {}): TfjsLinearLoss {
  const opts = readOptions(options, LINEAR_LOSS_OPTION_NAMES, 'linearCrossEntropyLoss') as LinearCrossEntropyLossOptions;
  const reduction = opts.reduction ?? 'mean';
  const weight = opts.weight instanceof tf.Tensor ? readWeight(opts.weight) : opts.weight;
  const lossOptions: LinearCrossEntropyOptions = {
    labelSmoothing: opts.labelSmoothing,
    weight: weight as LinearCrossEntropyOptions['weight'],
    ignoreIndex: opts.ignoreIndex,
    reduction,
    workingMemory: opts.workingMemory,
  };
  for (const k of Object.keys(lossOptions) as (keyof LinearCrossEntropyOptions)[]) if (lossOptions[k] === undefined) delete lossOptions[k];
  // Checks the options now, with a stand-in call (C = the weights' length, or 3).
  {
    const C = weight !== undefined && weight !== null && typeof (weight as { length?: unknown }).length === 'number' ? Math.max((weight as { length: number }).length, 1) : 3;
    linearCrossEntropy({ data: new Float32Array(1), shape: [1, 1], dtype: 'float32' }, { data: new Float32Array(C), shape: [C, 1], dtype: 'float32' }, { data: new Int32Array(1), shape: [1], dtype: 'int32' }, lossOptions);
  }

  const host = (t: TF.Tensor, name: string): Tensor => {
    if (t.dtype !== 'float32') throw typeError(`${name}.dtype`, 'float32', t.dtype);
    return { data: t.dataSync() as Float32Array, shape: t.shape.slice(), dtype: 'float32' };
  };
  const readLabels = (labels: TF.Tensor, x: Tensor, C: number): Tensor => {
    if (labels.dtype !== 'float32' && labels.dtype !== 'int32') throw typeError('labels.dtype', 'float32 or int32', labels.dtype);
    const raw = labels.dataSync() as Float32Array | Int32Array;
    const probShape = x.shape.length === 1 ? [C] : [x.shape[0], C];
    const isProb = labels.shape.length === probShape.length && labels.shape.every((d, i) => d === probShape[i]) && labels.dtype === 'float32';
    if (isProb) return { data: raw, shape: labels.shape.slice(), dtype: 'float32' };
    return { data: indicesFrom(raw, 'labels'), shape: labels.shape.slice(), dtype: 'int32' };
  };
  const make = (withBias: boolean) =>
    tf.customGrad(((...args: TF.Tensor[]) => {
      const [labels, input, linearWeight, linearBias] = args;
      const x = host(input, 'input');
      const w = host(linearWeight, 'linearWeight');
      const C = w.shape[0] ?? 0;
      const t = readLabels(labels, x, C);
      const call: LinearCrossEntropyOptions = { ...lossOptions };
      if (withBias) call.linearBias = host(linearBias, 'linearBias');
      const grads = (r: LinearCrossEntropyResult): TF.Tensor[] => {
        const g = r.grad!;
        const out = [tf.zerosLike(labels), tf.tensor(g.input.data as Float32Array, input.shape, 'float32'), tf.tensor(g.linearWeight.data as Float32Array, linearWeight.shape, 'float32')];
        if (withBias) out.push(tf.tensor(g.linearBias!.data as Float32Array, linearBias.shape, 'float32'));
        return out;
      };
      if (reduction === 'none') {
        const r = linearCrossEntropy(x, w, t, { ...call, reduction: 'none' });
        const lossShape = (r.loss as Tensor).shape;
        const value = tf.tensor(r.loss.data as Float32Array, lossShape, 'float32');
        const gradFunc = (dy: TF.Tensor): TF.Tensor[] =>
          grads(linearCrossEntropy(x, w, t, { ...call, reduction: 'none', grad: true, gradOutput: { data: dy.dataSync() as Float32Array, shape: lossShape, dtype: 'float32' } }));
        return { value, gradFunc };
      }
      const r = linearCrossEntropy(x, w, t, { ...call, reduction, grad: true });
      const value = tf.scalar(r.loss as number, 'float32');
      const gradFunc = (dy: TF.Tensor): TF.Tensor[] => tf.tidy(() => grads(r).map((g, i) => (i === 0 ? g : tf.mul(g, dy))));
      return { value, gradFunc };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const plain = make(false);
  const biased = make(true);

  return (labels, input, linearWeight, linearBias) => {
    for (const [name, v] of [['labels', labels], ['input', input], ['linearWeight', linearWeight]] as const) {
      if (!(v instanceof tf.Tensor)) throw typeError(name, 'a TensorFlow.js tensor', v);
    }
    if (linearBias === undefined) return plain(labels, input, linearWeight);
    if (!(linearBias instanceof tf.Tensor)) throw typeError('linearBias', 'a TensorFlow.js tensor (or undefined)', linearBias);
    return (biased as unknown as (...a: TF.Tensor[]) => TF.Tensor)(labels, input, linearWeight, linearBias);
  };
}
