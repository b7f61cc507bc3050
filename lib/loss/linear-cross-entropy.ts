/**
 * Fused linear + cross-entropy: PyTorch's
 *   cross_entropy(linear(input, linearWeight, linearBias), target, weight=, ignore_index=,
 *                 reduction=, label_smoothing=)
 * and autograd's gradients for input, linearWeight and linearBias, without ever forming the
 * (N, C) logits (binding/aten/linear_cross_entropy.cc). Validation is all here, before native
 * code runs; the native layer re-checks shapes as defence in depth.
 */
import { codedError, describe, ERROR_CODES, inconsistent, rangeError, rangeErrorMessage, typeError } from '../core/errors';
import { native, type NativeLinearResult } from '../core/native';
import { checkClassIndices, fmt, parseDevice, parseGradOutput, parseLossOptions, parseWeight, readOptions, REDUCTIONS, sameShape, type Device, type Reduction } from '../core/options';
import { checkTensor, DTYPES, type DType, type FloatArray, type Tensor } from '../core/tensor';
import { nativeTensorArg, resolveDevice, tensorArg, type TensorInput } from '../core/device';

/** Where linearCrossEntropy writes the gradients instead of allocating them (each optional). */
export interface LinearGradInto {
  /** numel(input) elements. */
  input?: Float32Array | Float64Array;
  /** C × H elements. */
  linearWeight?: Float32Array | Float64Array;
  /** C elements (only with linearBias). */
  linearBias?: Float32Array | Float64Array;
}

export interface LinearCrossEntropyOptions {
  /** The linear layer's bias, length C: a tensor of the input's dtype, or a Float32Array/Float64Array. */
  linearBias?: Tensor | Float32Array | Float64Array;
  /** Per-class weights, length C (as crossEntropy). */
  weight?: ArrayLike<number> | Float32Array | Float64Array;
  /** Default -100; class-index targets only (as crossEntropy). */
  ignoreIndex?: number | bigint;
  /** ε in [0, 1]; default 0. */
  labelSmoothing?: number;
  /** Default 'mean'. */
  reduction?: Reduction;
  /** Also return the gradients of input, linearWeight and (with a bias) linearBias. */
  grad?: boolean;
  /** Upstream gradient: a number, or a tensor shaped like the 'none' loss (0-d for mean/sum). */
  gradOutput?: number | Tensor;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: Device;
  /**
   * Bound on the working buffers, in bytes: rows are taken in blocks of ⌊workingMemory / (C · 4
   * or 8 bytes)⌋ (half that with probability targets), at least one row. Default: 16 MiB, or
   * what blocks of 64 rows need when that is more (C above 65,536 float32 classes).
   */
  workingMemory?: number;
  /** Write the gradients into these buffers (needs grad: true): a training loop then allocates nothing per step. */
  gradInto?: LinearGradInto;
}

export interface LinearCrossEntropyGrad<F extends FloatArray = FloatArray> {
  input: Tensor<F>;
  linearWeight: Tensor<F>;
  /** Present when linearBias was given. */
  linearBias?: Tensor<F>;
}

export interface LinearCrossEntropyResult<L = number | Tensor<FloatArray>, F extends FloatArray = FloatArray> {
  /** A number for 'mean'/'sum'; a tensor shaped like the target (class indices) or the input minus H for 'none'. */
  loss: L;
  /** With grad: true. Each gradient has its parameter's shape, in its dtype (float32 for bfloat16/float16). */
  grad?: LinearCrossEntropyGrad<F>;
}

/** The result of a call with grad: true: `grad` is always there. */
export type LinearCrossEntropyGradResult<L = number | Tensor<FloatArray>, F extends FloatArray = FloatArray> = LinearCrossEntropyResult<L, F> & { grad: LinearCrossEntropyGrad<F> };

export const LINEAR_OPTION_NAMES: readonly string[] = [
  'linearBias',
  'weight',
  'ignoreIndex',
  'labelSmoothing',
  'reduction',
  'grad',
  'gradOutput',
  'device',
  'workingMemory',
  'gradInto',
];



interface LinearPrepared {
  args: Record<string, unknown>;
  reduction: Reduction;
  lossShape: number[];
  hostDType: 'float32' | 'float64';
  inputShape: number[];
  weightShape: number[];
  hasBias: boolean;
  into: LinearGradInto;
  grad: boolean;
}

function regionOf(v: ArrayBufferView): [ArrayBufferLike, number, number] {
  return [v.buffer, v.byteOffset, v.byteOffset + v.byteLength];
}

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const [ba, sa, ea] = regionOf(a);
  const [bb, sb, eb] = regionOf(b);
  return ba === bb && sa < eb && sb < ea && a.byteLength > 0 && b.byteLength > 0;
}

function readBias(value: unknown, classes: number, inputDType: DType): Tensor {
  let t: Tensor;
  if (value instanceof Float32Array || value instanceof Float64Array) {
    t = { data: value, shape: [value.length], dtype: value instanceof Float64Array ? 'float64' : 'float32' };
    if (DTYPES[inputDType].array === DTYPES[t.dtype].array) t = { ...t, dtype: inputDType };
  } else {
    t = checkTensor(value, 'linearBias');
  }
  if (t.dtype !== inputDType) throw typeError('linearBias.dtype', `${inputDType} (the input's dtype)`, t.dtype);
  if (!sameShape(t.shape, [classes])) {
    throw inconsistent('linearBias', `expected shape [${classes}] (one per class: linearWeight has ${classes} rows) but received ${fmt(t.shape)}`);
  }
  return t;
}

function prepareLinear(input: unknown, linearWeight: unknown, target: unknown, options: unknown, fn: string): LinearPrepared {
  const opts = readOptions(options, LINEAR_OPTION_NAMES, fn);
  const x = tensorArg(input, 'input');
  if (!DTYPES[x.dtype].float) throw typeError('input.dtype', 'a floating-point dtype (float32, float64, bfloat16 or float16)', x.dtype);
  if (x.shape.length !== 1 && x.shape.length !== 2) {
    throw inconsistent('input', `expected shape (N, H) or (H) but received ${fmt(x.shape)}`);
  }
  const lw = tensorArg(linearWeight, 'linearWeight');
  if (lw.dtype !== x.dtype) throw typeError('linearWeight.dtype', `${x.dtype} (the input's dtype)`, lw.dtype);
  if (lw.shape.length !== 2) throw inconsistent('linearWeight', `expected shape (C, H) but received ${fmt(lw.shape)}`);
  const unbatched = x.shape.length === 1;
  const H = x.shape[x.shape.length - 1];
  const N = unbatched ? 1 : x.shape[0];
  const C = lw.shape[0];
  if (lw.shape[1] !== H) {
    throw inconsistent('linearWeight', `its hidden size ${lw.shape[1]} (shape ${fmt(lw.shape)}) differs from input's ${H} (shape ${fmt(x.shape)})`);
  }
  if (C < 1) throw inconsistent('linearWeight', `expected at least one class (row) but received shape ${fmt(lw.shape)}`);
  const t = tensorArg(target, 'target');

  const { eps, reduction: red, grad, ignore } = parseLossOptions(opts);
  const device = resolveDevice(opts.device === undefined ? undefined : parseDevice(opts.device), [
    ['input', x],
    ['linearWeight', lw],
    ['target', t],
  ]);

  const probShape = unbatched ? [C] : [N, C];
  const lossShape = unbatched ? [] : [N];
  if (DTYPES[t.dtype].float) {
    if (!sameShape(t.shape, probShape)) {
      throw inconsistent('target', `probability targets must have shape ${fmt(probShape)} (input's rows × linearWeight's classes) but received ${fmt(t.shape)}`);
    }
    if (opts.ignoreIndex !== undefined && ignore >= 0n) {
      throw rangeError('ignoreIndex', 'a negative value with probability targets (PyTorch does not support it)', opts.ignoreIndex);
    }
  } else {
    if (!sameShape(t.shape, lossShape)) {
      throw inconsistent('target', `expected class indices of shape ${fmt(lossShape)} (or probabilities of shape ${fmt(probShape)}) but received ${t.dtype} of shape ${fmt(t.shape)}`);
    }
    if (t.handle === undefined) checkClassIndices(t, C, ignore);
  }

  const bias = opts.linearBias === undefined ? null : readBias(opts.linearBias, C, x.dtype);
  const weight = opts.weight === undefined ? null : parseWeight(opts.weight, C, x.dtype);

  const gradOutput = parseGradOutput(opts, grad, red, lossShape);

  let workingMemory: number | null = null;
  if (opts.workingMemory !== undefined) {
    const w = opts.workingMemory;
    if (typeof w !== 'number') throw typeError('workingMemory', 'a number of bytes', w);
    if (!Number.isSafeInteger(w) || w < 1) throw rangeError('workingMemory', 'a positive integer number of bytes', w);
    workingMemory = w;
  }

  const hostDType: 'float32' | 'float64' = x.dtype === 'float64' ? 'float64' : 'float32';
  const into: LinearGradInto = {};
  if (opts.gradInto !== undefined) {
    const gi = opts.gradInto;
    if (gi === null || typeof gi !== 'object' || Array.isArray(gi) || ArrayBuffer.isView(gi)) {
      throw typeError('gradInto', 'an object { input?, linearWeight?, linearBias? } of Float32Array/Float64Array', gi);
    }
    if (!grad) throw rangeErrorMessage(`gradInto was given but grad is ${describe(opts.grad)}: pass grad: true to use it`);
    const parts = readOptions(gi, ['input', 'linearWeight', 'linearBias'], 'gradInto');
    const want = hostDType === 'float64' ? Float64Array : Float32Array;
    const sizes: Record<string, number> = { input: N * H, linearWeight: C * H, linearBias: C };
    const callerArrays: [string, ArrayBufferView][] = [
      ['input', x.data],
      ['linearWeight', lw.data],
      ['target', t.data],
    ];
    if (bias) callerArrays.push(['linearBias', bias.data]);
    if (weight) callerArrays.push(['weight', weight.data]);
    if (gradOutput && typeof gradOutput !== 'number') callerArrays.push(['gradOutput', gradOutput.data]);
    for (const key of ['input', 'linearWeight', 'linearBias'] as const) {
      const v = parts[key];
      if (v === undefined) continue;
      const param = `gradInto.${key}`;
      if (key === 'linearBias' && !bias) throw inconsistent(param, 'there is no linearBias to take the gradient of');
      if (!(v instanceof want)) throw typeError(param, `a ${want.name} (the input's data type)`, v);
      if (v.length !== sizes[key]) throw rangeError(param, `a ${want.name} of ${sizes[key]} elements (the size of ${key})`, v);
      for (const [name, arr] of callerArrays) {
        if (overlaps(v, arr)) throw inconsistent(param, `its memory overlaps ${name}'s`);
      }
      callerArrays.push([param, v]);
      into[key] = v;
    }
  }

  return {
    args: {
      input: nativeTensorArg(x),
      linearWeight: nativeTensorArg(lw),
      target: nativeTensorArg(t),
      linearBias: bias,
      weight,
      reduction: REDUCTIONS[red],
      ignoreIndex: ignore,
      labelSmoothing: eps,
      grad,
      gradOutput: gradOutput ?? (grad ? 1 : null),
      device,
      workingMemory,
      gradInto: Object.keys(into).length ? into : null,
    },
    reduction: red,
    lossShape,
    hostDType,
    inputShape: x.shape.slice(),
    weightShape: lw.shape.slice(),
    hasBias: bias !== null,
    into,
    grad,
  };
}

function finish(p: LinearPrepared, r: NativeLinearResult): LinearCrossEntropyResult {
  const loss = typeof r.loss === 'number' ? r.loss : ({ data: r.loss.data, shape: p.lossShape.slice(), dtype: p.hostDType } as Tensor<FloatArray>);
  if (!p.grad) return { loss };
  const part = (key: keyof LinearGradInto, shape: number[]): Tensor<FloatArray> => {
    const into = p.into[key];
    if (into) return { data: into, shape: shape.slice(), dtype: p.hostDType };
    const g = r.grad?.[key];
    if (!g) throw codedError(ERROR_CODES.NATIVE, `internal: the native result has no gradient for ${key}`);
    return { data: g.data as FloatArray, shape: shape.slice(), dtype: p.hostDType };
  };
  const grad: LinearCrossEntropyGrad = { input: part('input', p.inputShape), linearWeight: part('linearWeight', p.weightShape) };
  if (p.hasBias) grad.linearBias = part('linearBias', [p.weightShape[0]]);
  return { loss, grad };
}


type FloatOfInput<I> = I extends Tensor<infer D> ? (D extends Float64Array ? Float64Array : D extends Float32Array ? Float32Array : FloatArray) : FloatArray;

/**
 * cross_entropy(linear(input, linearWeight, linearBias), target, ...) with autograd's gradients,
 * computed in blocks of rows without ever forming the (N, C) logits. Same options and targets
 * as crossEntropy, plus linearBias, workingMemory and gradInto.
 */
export function linearCrossEntropy<I extends TensorInput>(
  input: I,
  linearWeight: TensorInput,
  target: TensorInput,
  options: LinearCrossEntropyOptions & { reduction: 'none'; grad: true },
): LinearCrossEntropyGradResult<Tensor<FloatOfInput<I>>, FloatOfInput<I>>;
export function linearCrossEntropy<I extends TensorInput>(
  input: I,
  linearWeight: TensorInput,
  target: TensorInput,
  options: LinearCrossEntropyOptions & { reduction?: 'mean' | 'sum'; grad: true },
): LinearCrossEntropyGradResult<number, FloatOfInput<I>>;
export function linearCrossEntropy<I extends TensorInput>(
  input: I,
  linearWeight: TensorInput,
  target: TensorInput,
  options: LinearCrossEntropyOptions & { reduction: 'none' },
): LinearCrossEntropyResult<Tensor<FloatOfInput<I>>, FloatOfInput<I>>;
export function linearCrossEntropy<I extends TensorInput>(
  input: I,
  linearWeight: TensorInput,
  target: TensorInput,
  options?: LinearCrossEntropyOptions & { reduction?: 'mean' | 'sum' },
): LinearCrossEntropyResult<number, FloatOfInput<I>>;
export function linearCrossEntropy(input: TensorInput, linearWeight: TensorInput, target: TensorInput, options?: LinearCrossEntropyOptions): LinearCrossEntropyResult;
export function linearCrossEntropy(input: TensorInput, linearWeight: TensorInput, target: TensorInput, options?: LinearCrossEntropyOptions): LinearCrossEntropyResult {
  const p = prepareLinear(input, linearWeight, target, options, 'linearCrossEntropy');
  return finish(p, native().linearCrossEntropy(p.args, false));
}

/**
 * Same result as linearCrossEntropy(), bit for bit, computed on the libuv thread pool. Inputs
 * backed by an ordinary ArrayBuffer are copied when the call starts (the caller may then change
 * or transfer them); gradInto buffers are written while the promise is pending.
 */
export async function linearCrossEntropyAsync<I extends TensorInput>(
  input: I,
  linearWeight: TensorInput,
  target: TensorInput,
  options: LinearCrossEntropyOptions & { reduction: 'none'; grad: true },
): Promise<LinearCrossEntropyGradResult<Tensor<FloatOfInput<I>>, FloatOfInput<I>>>;
export async function linearCrossEntropyAsync<I extends TensorInput>(
  input: I,
  linearWeight: TensorInput,
  target: TensorInput,
  options: LinearCrossEntropyOptions & { reduction?: 'mean' | 'sum'; grad: true },
): Promise<LinearCrossEntropyGradResult<number, FloatOfInput<I>>>;
export async function linearCrossEntropyAsync<I extends TensorInput>(
  input: I,
  linearWeight: TensorInput,
  target: TensorInput,
  options: LinearCrossEntropyOptions & { reduction: 'none' },
): Promise<LinearCrossEntropyResult<Tensor<FloatOfInput<I>>, FloatOfInput<I>>>;
export async function linearCrossEntropyAsync<I extends TensorInput>(
  input: I,
  linearWeight: TensorInput,
  target: TensorInput,
  options?: LinearCrossEntropyOptions & { reduction?: 'mean' | 'sum' },
): Promise<LinearCrossEntropyResult<number, FloatOfInput<I>>>;
export async function linearCrossEntropyAsync(input: TensorInput, linearWeight: TensorInput, target: TensorInput, options?: LinearCrossEntropyOptions): Promise<LinearCrossEntropyResult>;
export async function linearCrossEntropyAsync(input: TensorInput, linearWeight: TensorInput, target: TensorInput, options?: LinearCrossEntropyOptions): Promise<LinearCrossEntropyResult> {
  const callSite = new Error();
  const p = prepareLinear(input, linearWeight, target, options, 'linearCrossEntropyAsync');
  try {
    return finish(p, await native().linearCrossEntropy(p.args, true));
  } catch (err) {
    if (err instanceof Error && callSite.stack) {
      err.stack = `${err.name}: ${err.message}\n${callSite.stack.split('\n').slice(1).join('\n')}`;
    }
    throw err;
  }
}
