/**
 * Validation of crossEntropy's arguments, entirely in TypeScript, before native code
 * runs. Produces the argument object the native binding takes. Stricter than PyTorch
 * where PyTorch is silent (see docs/api.md, "Where smoothce differs from PyTorch").
 */
import * as os from 'node:os';
import { article, describe, ERROR_CODES, inconsistent, rangeError, rangeErrorMessage, typeError, typeErrorMessage } from './errors';
import type { NativeArgs, NativeTensor } from './native';
import { checkTensor, DTYPES, numel, type DType, type Tensor } from './tensor';
import { nativeTensorArg, resolveDevice, tensorArg } from './device';

export type Reduction = 'mean' | 'sum' | 'none';
import type { Device } from './types';
export type { Device } from './types';

export interface CrossEntropyOptions {
  /** ε in [0, 1]; default 0. */
  labelSmoothing?: number;
  /** Default 'mean'. */
  reduction?: Reduction;
  /** Per-class weights, length C. */
  weight?: ArrayLike<number> | Float32Array | Float64Array;
  /** Default -100; class-index targets only. */
  ignoreIndex?: number | bigint;
  /** Also return d loss / d input. */
  grad?: boolean;
  /** Upstream gradient: a number, or a tensor shaped like the 'none' loss (0-d for mean/sum). */
  gradOutput?: number | Tensor;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: Device;
  /**
   * Split the batch dimension into chunks of at most this many rows, each computed
   * natively, combined exactly (sum / global denominator; never a mean of means).
   * Peak memory follows the chunk. Ignored for 1-D input and device tensors, and for a
   * 'mean' over uint8 targets some of which equal ignoreIndex wrapped to 8 bits (with
   * smoothing, PyTorch's two terms then have different denominators: one call).
   */
  batchSize?: number;
  /**
   * 'aten' (default): PyTorch's own kernel. 'fused': smoothce's CPU kernel, which never
   * materialises N×C intermediates (same results; see docs/performance.md for what it
   * hands back to ATen).
   */
  impl?: Impl;
  /**
   * Write the gradient into this buffer instead of a new one (needs grad: true): a
   * Float32Array (float32/bfloat16/float16 input) or Float64Array with numel(input)
   * elements. It may be the input's own data (in place); it must not overlap anything else.
   * With impl 'fused' nothing of input size is allocated.
   */
  gradInto?: Float32Array | Float64Array;
  /**
   * false (default): the gradient comes back as a host tensor. true (crossEntropy and
   * crossEntropyAsync, with grad: true; typed by DeviceGradOptions): as a DeviceTensor on
   * the call's device, in the input's dtype there (bfloat16 stays bfloat16), with no copy
   * to host memory: for training on a GPU, where copying an N×C gradient back costs far
   * more than computing it. Not with gradInto, impl 'fused' or batchSize (they need host
   * memory). Dispose of the handle when done.
   */
  gradOnDevice?: false;
}

export type Impl = 'aten' | 'fused';

export const OPTION_NAMES: readonly string[] = [
  'labelSmoothing',
  'reduction',
  'weight',
  'ignoreIndex',
  'grad',
  'gradOutput',
  'device',
  'impl',
  'gradInto',
];

export const REDUCTIONS: Record<Reduction, 0 | 1 | 2> = { none: 0, mean: 1, sum: 2 };
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const LITTLE_ENDIAN = os.endianness() === 'LE';

/** Levenshtein distance, for did-you-mean suggestions on misspelled option names. */
export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

/**
 * Reads an options object: own enumerable properties only (a polluted
 * Object.prototype changes nothing), unknown names rejected with a suggestion.
 */
export function readOptions(options: unknown, known: readonly string[], fn: string): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  if (options === undefined) return out;
  if (options === null || typeof options !== 'object' || Array.isArray(options) || ArrayBuffer.isView(options)) {
    throw typeError(`the options of ${fn}`, 'an object (or undefined)', options);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      const best = known
        .map((k) => [k, editDistance(key.toLowerCase(), k.toLowerCase())] as const)
        .sort((x, y) => x[1] - y[1])[0];
      const hint = best && best[1] <= 3 ? ` (did you mean '${best[0]}'?)` : '';
      throw typeErrorMessage(`Unknown option '${key}' for ${fn}${hint}; known options: ${known.join(', ')}`, ERROR_CODES.UNKNOWN_OPTION);
    }
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

export function parseDevice(value: unknown): string {
  if (value === undefined) return 'cpu';
  if (typeof value !== 'string') throw typeError('device', "'cpu', 'cuda' or 'cuda:N'", value);
  if (value === 'cpu' || value === 'cuda' || /^cuda:(0|[1-9][0-9]{0,3})$/.test(value)) return value;
  throw rangeError('device', "'cpu', 'cuda' or 'cuda:N'", value);
}

/** What the validation learned about the call, besides the native arguments. */
export interface Prepared {
  args: NativeArgs;
  reduction: Reduction;
  probabilityTarget: boolean;
  classes: number;
  /** Shape of the 'none' loss. */
  lossShape: number[];
  inputDType: DType;
  impl: Impl;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function unravel(flat: number, shape: readonly number[]): string {
  const idx: number[] = new Array(shape.length);
  for (let k = shape.length - 1; k >= 0; k--) {
    idx[k] = shape[k] === 0 ? 0 : flat % shape[k];
    flat = shape[k] === 0 ? 0 : Math.floor(flat / shape[k]);
  }
  return idx.join(', ');
}

function badTarget(position: number, shape: readonly number[], value: bigint | number, classes: number, ignore: bigint): RangeError {
  const at = shape.length > 1 ? `target[${unravel(position, shape)}] (flat index ${position})` : `target[${position}]`;
  return rangeErrorMessage(
    `Expected class indices in [0, ${classes}) or ignoreIndex (${ignore}) for target but ${at} is ${value}`,
  );
}

/** Every class index must be in [0, C) or equal ignoreIndex (PyTorch raises IndexError otherwise). */
export function checkClassIndices(target: Tensor, classes: number, ignore: bigint): void {
  const { data, shape } = target;
  if (data instanceof BigInt64Array) {
    const n = data.length;
    if (LITTLE_ENDIAN && classes <= 0x7fffffff) {
      // Fast path: read the int64 values as (lo, hi) int32 pairs.
      const words = new Int32Array(data.buffer, data.byteOffset, n * 2);
      const ignoreLo = Number(BigInt.asIntN(32, ignore));
      const ignoreHi = Number(BigInt.asIntN(32, ignore >> 32n));
      for (let i = 0; i < n; i++) {
        const lo = words[2 * i];
        const hi = words[2 * i + 1];
        if (hi === 0 && lo >= 0 && lo < classes) continue;
        if (lo === ignoreLo && hi === ignoreHi) continue;
        throw badTarget(i, shape, data[i], classes, ignore);
      }
      return;
    }
    const c = BigInt(classes);
    for (let i = 0; i < n; i++) {
      const v = data[i];
      if ((v >= 0n && v < c) || v === ignore) continue;
      throw badTarget(i, shape, v, classes, ignore);
    }
    return;
  }
  const ig = ignore >= -(2n ** 53n) && ignore <= 2n ** 53n ? Number(ignore) : NaN;
  const ints = data as Int32Array | Uint8Array;
  for (let i = 0; i < ints.length; i++) {
    const v = ints[i];
    if ((v >= 0 && v < classes) || v === ig) continue;
    throw badTarget(i, shape, v, classes, ignore);
  }
}

export function parseWeight(value: unknown, classes: number, inputDType: DType): NativeTensor {
  const floatDType: DType = inputDType === 'float64' ? 'float64' : 'float32';
  if (value instanceof Float32Array || value instanceof Float64Array) {
    if (value.length !== classes) {
      throw rangeError('weight', `${classes} class weights (one per class)`, value);
    }
    return { data: value, shape: [classes], dtype: value instanceof Float32Array ? 'float32' : 'float64' };
  }
  if (!Array.isArray(value)) {
    throw typeError('weight', 'an array or Float32Array/Float64Array of class weights', value);
  }
  if (value.length !== classes) throw rangeError('weight', `${classes} class weights (one per class)`, value);
  const data = new DTYPES[floatDType].ctor(classes) as Float32Array | Float64Array;
  for (let i = 0; i < classes; i++) {
    const w: unknown = value[i];
    if (typeof w !== 'number') throw typeError(`weight[${i}]`, 'a number', w);
    data[i] = w;
  }
  return { data, shape: [classes], dtype: floatDType };
}

export function parseIgnoreIndex(value: unknown): bigint {
  if (value === undefined) return -100n;
  if (typeof value === 'bigint') {
    if (value < INT64_MIN || value > INT64_MAX) throw rangeError('ignoreIndex', 'an integer in the int64 range', value);
    return value;
  }
  if (typeof value !== 'number') throw typeError('ignoreIndex', 'an integer (number or bigint)', value);
  if (!Number.isSafeInteger(value)) throw rangeError('ignoreIndex', 'an integer (use a bigint beyond 2^53)', value);
  return BigInt(value);
}

/** labelSmoothing, reduction, grad and ignoreIndex, as every loss entry point reads them. */
export function parseLossOptions(opts: Record<string, unknown>): { eps: number; reduction: Reduction; grad: boolean; ignore: bigint } {
  const eps = opts.labelSmoothing ?? 0;
  if (typeof eps !== 'number') throw typeError('labelSmoothing', 'a number between 0 and 1', eps);
  if (!(eps >= 0 && eps <= 1)) throw rangeError('labelSmoothing', 'a finite number between 0 and 1', eps);

  const reduction = opts.reduction ?? 'mean';
  if (typeof reduction !== 'string' || !Object.prototype.hasOwnProperty.call(REDUCTIONS, reduction)) {
    throw typeError('reduction', "one of 'mean', 'sum', 'none'", reduction);
  }

  const grad = opts.grad ?? false;
  if (typeof grad !== 'boolean') throw typeError('grad', 'a boolean', grad);

  return { eps, reduction: reduction as Reduction, grad, ignore: parseIgnoreIndex(opts.ignoreIndex) };
}

/** The gradOutput option: a number, or a float tensor shaped like the `reduction` loss (lossShape for 'none'). */
export function parseGradOutput(opts: Record<string, unknown>, grad: boolean, red: Reduction, lossShape: readonly number[]): number | NativeTensor | null {
  if (opts.gradOutput === undefined) return null;
  if (!grad) throw rangeErrorMessage(`gradOutput was given but grad is ${describe(opts.grad)}: pass grad: true to use it`);
  const g = opts.gradOutput;
  if (typeof g === 'number') return g;
  const gt = checkTensor(g, 'gradOutput');
  if (gt.dtype !== 'float32' && gt.dtype !== 'float64') throw typeError('gradOutput.dtype', 'float32 or float64', gt.dtype);
  const expected = red === 'none' ? lossShape : [];
  if (!sameShape(gt.shape, expected)) {
    throw inconsistent('gradOutput', `expected shape ${fmt(expected)} (the ${red} loss) but received ${fmt(gt.shape)}`);
  }
  return gt;
}

let binaryWarned = false;

/** Validates everything and builds the native call. `fn` names the entry point in messages. */
export function prepare(input: unknown, target: unknown, options: unknown, fn = 'crossEntropy', extraOptions: readonly string[] = []): Prepared {
  const opts = readOptions(options, extraOptions.length ? [...OPTION_NAMES, ...extraOptions] : OPTION_NAMES, fn);
  const x = tensorArg(input, 'input');
  if (!DTYPES[x.dtype].float) {
    throw typeError('input.dtype', 'a floating-point dtype (float32, float64, bfloat16 or float16)', x.dtype);
  }
  if (x.shape.length === 0) {
    throw inconsistent('input', 'expected shape (C), (N, C) or (N, C, d1, ..., dk) but received a 0-d tensor');
  }
  const t = tensorArg(target, 'target');

  // Options first that do not depend on the shapes.
  const { eps, reduction: red, grad, ignore } = parseLossOptions(opts);
  const device = resolveDevice(opts.device === undefined ? undefined : parseDevice(opts.device), [
    ['input', x],
    ['target', t],
  ]);

  const impl = opts.impl ?? 'aten';
  if (typeof impl !== 'string') throw typeError('impl', "'aten' or 'fused'", impl);
  if (impl !== 'aten' && impl !== 'fused') throw rangeError('impl', "'aten' or 'fused'", impl);

  const classDim = x.shape.length === 1 ? 0 : 1;
  const classes = x.shape[classDim];
  const lossShape = x.shape.filter((_, i) => i !== classDim);

  let probabilityTarget = false;
  if (sameShape(t.shape, x.shape)) {
    if (!DTYPES[t.dtype].float) {
      throw typeErrorMessage(
        `Expected class indices of shape ${fmt(lossShape)} or float probabilities of shape ${fmt(x.shape)} ` +
          `for target but received ${article(t.dtype)} ${t.dtype} tensor of shape ${fmt(t.shape)}`,
      );
    }
    // bfloat16/float16 probabilities are computed as PyTorch computes them: ATen promotes
    // (x·t) to the wider of the two dtypes; a float16 input needs a LibTorch with CPU Half kernels.
    probabilityTarget = true;
    if (opts.ignoreIndex !== undefined && ignore >= 0n) {
      throw rangeError('ignoreIndex', 'a negative value with probability targets (PyTorch does not support it)', opts.ignoreIndex);
    }
  } else {
    if (DTYPES[t.dtype].float) {
      if (t.shape.length === x.shape.length) {
        throw inconsistent('target', `probability targets must have the input's shape ${fmt(x.shape)}, received ${fmt(t.shape)}`);
      }
      throw typeErrorMessage(
        `Expected class indices (int64, int32 or uint8) of shape ${fmt(lossShape)}, or probabilities of shape ` +
          `${fmt(x.shape)}, for target but received ${article(t.dtype)} ${t.dtype} tensor of shape ${fmt(t.shape)}`,
      );
    }
    if (t.dtype === 'uint8' && x.shape.length > 2) {
      throw typeError('target.dtype', 'int64 or int32 (PyTorch takes uint8 class indices only with 1-D/2-D input)', t.dtype);
    }
    if (!sameShape(t.shape, lossShape)) {
      throw inconsistent('target', `expected shape ${fmt(lossShape)} for input of shape ${fmt(x.shape)}, received ${fmt(t.shape)}`);
    }
    checkClassIndices(t, classes, ignore);
  }

  const weight = opts.weight === undefined ? null : parseWeight(opts.weight, classes, x.dtype);

  const gradOnDevice = opts.gradOnDevice ?? false;
  if (typeof gradOnDevice !== 'boolean') throw typeError('gradOnDevice', 'a boolean', gradOnDevice);
  if (gradOnDevice) {
    if (!grad) throw rangeErrorMessage(`gradOnDevice was given but grad is ${describe(opts.grad)}: pass grad: true to use it`);
    if (opts.gradInto !== undefined) throw inconsistent('gradOnDevice', 'it cannot be combined with gradInto (a host buffer): pass one of them');
    if (impl === 'fused') throw inconsistent('gradOnDevice', "impl 'fused' writes host memory: use impl 'aten' (the default)");
    if (opts.batchSize !== undefined) throw inconsistent('gradOnDevice', 'it cannot be combined with batchSize (chunks are joined in host memory)');
  }

  let gradOutput = parseGradOutput(opts, grad, red, lossShape);
  let gradInto: Float32Array | Float64Array | null = null;
  if (opts.gradInto !== undefined) {
    const value: unknown = opts.gradInto;
    const want = DTYPES[x.dtype].array;
    if (!(want === 'Float64Array' ? value instanceof Float64Array : value instanceof Float32Array)) {
      throw typeError('gradInto', `a ${want} (the input's data type)`, value);
    }
    const g = value as Float32Array | Float64Array;
    if (!grad) throw rangeErrorMessage(`gradInto was given but grad is ${describe(opts.grad)}: pass grad: true to use it`);
    if (g.length !== x.data.length) {
      throw rangeError('gradInto', `a ${want} of ${x.data.length} elements (the input's size)`, g);
    }
    gradInto = g;
  }
  if (red === 'none' && typeof gradOutput === 'number') {
    // Broadcast a number over the per-position losses.
    const data = new Float64Array(numel(lossShape)).fill(gradOutput);
    gradOutput = { data, shape: lossShape, dtype: 'float64' };
  }

  if (classes === 2 && eps > 0 && !binaryWarned) {
    binaryWarned = true;
    process.emitWarning(
      'label smoothing with 2 classes does little: there is only one wrong class to spread the mass over',
      { code: 'SMOOTHCE_BINARY_SMOOTHING', detail: `labelSmoothing = ${eps} with C = 2` },
    );
  }

  return {
    args: {
      input: nativeTensorArg(x),
      target: nativeTensorArg(t),
      weight,
      reduction: REDUCTIONS[red],
      ignoreIndex: ignore,
      labelSmoothing: eps,
      grad,
      gradOutput: gradOutput ?? (grad ? 1 : null),
      device,
      impl,
      gradInto,
      gradOnDevice,
    },
    reduction: red,
    probabilityTarget,
    classes,
    lossShape,
    inputDType: x.dtype,
    impl,
  };
}
