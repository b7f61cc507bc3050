import { native, type NativeFusedResult, type NativeResult } from '../core/native';
import { prepare, type CrossEntropyOptions, type Prepared } from '../core/options';
import { BATCH_OPTION_NAMES, crossEntropyChunked, crossEntropyChunkedAsync, readBatchSize, shouldChunk } from './batch';
import type { FloatArray, Tensor } from '../core/tensor';
import type { DeviceTensor, TensorInput } from '../core/device';

export interface CrossEntropyResult<L = number | Tensor<FloatArray>, G = Tensor<FloatArray>> {
  /** A number for 'mean'/'sum'; a tensor for 'none'. */
  loss: L;
  /**
   * d loss / d input, with the input's shape (and dtype; float32 for bfloat16/float16
   * input). With gradOnDevice, a DeviceTensor on the call's device instead.
   */
  grad?: G;
}

export type NoneOptions = CrossEntropyOptions & { reduction: 'none' };
export type ScalarOptions = CrossEntropyOptions & { reduction?: 'mean' | 'sum' };
/** Options that return the gradient as a DeviceTensor (see CrossEntropyOptions.gradOnDevice). */
export type DeviceGradOptions = Omit<CrossEntropyOptions, 'grad' | 'gradOnDevice' | 'gradInto' | 'batchSize'> & { grad: true; gradOnDevice: true };
/** What a call with DeviceGradOptions returns: the gradient is always there, as a handle. */
export type DeviceGradResult = CrossEntropyResult<number | Tensor<FloatArray>, DeviceTensor> & { grad: DeviceTensor };
/** What a call with `grad: true` returns: the gradient is always there. */
export type CrossEntropyGradResult<L, F extends FloatArray = FloatArray> = CrossEntropyResult<L, Tensor<F>> & { grad: Tensor<F> };

type FloatOfData<D> = D extends Float64Array ? Float64Array : D extends Float32Array ? Float32Array : FloatArray;
/**
 * The array type of the results (loss tensor, gradient) for an input: Float32Array for a
 * float32 (or bfloat16/float16) input, Float64Array for float64, either when the input's
 * type does not say (a DeviceTensor, or a Tensor of any data).
 */
export type FloatOf<I> = I extends Tensor<infer D> ? FloatOfData<D> : FloatArray;

/** The loss as the caller gets it: a number for 'mean'/'sum', the tensor for 'none'. */
function lossOf(prepared: Prepared, loss: NativeResult['loss']): number | Tensor<FloatArray> {
  if (typeof loss === 'number') return loss;
  return prepared.reduction === 'none' ? (loss as Tensor<FloatArray>) : Number(loss.data[0]);
}

function finish(prepared: Prepared, r: NativeResult): CrossEntropyResult {
  const loss = lossOf(prepared, r.loss);
  // Decided by the request, not by reading r.grad: a polluted Object.prototype.grad
  // must not appear as a gradient.
  return prepared.args.grad ? { loss, grad: r.grad as Tensor<FloatArray> } : { loss };
}

/** impl 'fused', or any call with gradInto, goes through the fused kernel's entry point. */
function viaFused(prepared: Prepared): boolean {
  return prepared.impl === 'fused' || prepared.args.gradInto != null;
}

function finishFused(prepared: Prepared, r: NativeFusedResult): CrossEntropyResult {
  const loss = lossOf(prepared, r.loss);
  const into = prepared.args.gradInto;
  if (into) {
    const grad: Tensor<FloatArray> = { data: into, shape: prepared.args.input.shape.slice(), dtype: into instanceof Float64Array ? 'float64' : 'float32' };
    return { loss, grad };
  }
  return r.grad ? { loss, grad: r.grad as Tensor<FloatArray> } : { loss };
}

/** Options crossEntropy/crossEntropyAsync take beyond those every loss entry point shares. */
const CALL_OPTION_NAMES: readonly string[] = [...BATCH_OPTION_NAMES, 'gradOnDevice'];

/** Where crossEntropyFusedFast puts the loss when it also returns a gradient buffer. */
const LOSS_OUT = new Float64Array(1);

/** Outputs of at least this many bytes are huge-page backed (binding/memory/allocator.h, kHugeThreshold). */
const HUGE_BYTES = 512 << 10;

function outputArray(dtype: 'float32' | 'float64', n: number): Float32Array | Float64Array {
  const bytes = n * (dtype === 'float64' ? 8 : 4);
  if (bytes >= HUGE_BYTES) {
    const ab = native().hugeBuffer(bytes);
    return dtype === 'float64' ? new Float64Array(ab) : new Float32Array(ab);
  }
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

/**
 * Before a call that makes a large host output (a gradient not written into gradInto, or an
 * async call's snapshot of a large input): frees the large results of earlier calls that the
 * GC has collected but whose finalizers have not run, so that this call's output reuses their
 * memory instead of faulting in fresh pages (binding/memory/result_registry.h).
 */
function reclaimBeforeLargeOutput(prepared: Prepared, async: boolean): void {
  const a = prepared.args;
  const x = a.input.data;
  if (!ArrayBuffer.isView(x) || x.byteLength < HUGE_BYTES) return;
  const snapshot = async && !(x.buffer instanceof SharedArrayBuffer);
  if (snapshot || (a.grad && !a.gradInto)) native().reclaim();
}

/**
 * impl 'fused', synchronous, plain CPU tensors: positional arguments and outputs allocated
 * here (a small call then costs a few microseconds, not the ~9 µs of reading an argument
 * object natively). undefined when the call needs the general path (device tensors,
 * bfloat16/float16, or a case the kernel hands to ATen).
 */
function tryFusedFast(prepared: Prepared): CrossEntropyResult | undefined {
  const a = prepared.args;
  const dtype = prepared.inputDType;
  if (prepared.impl !== 'fused' || (dtype !== 'float32' && dtype !== 'float64') || a.device !== 'cpu') return undefined;
  const x = a.input.data;
  const t = a.target.data;
  if (!(x instanceof Float32Array || x instanceof Float64Array) || !ArrayBuffer.isView(t) || x.length === 0) return undefined;
  const shape = a.input.shape;
  const outer = shape.length === 1 ? 1 : shape[0];
  const inner = x.length / (outer * prepared.classes);
  let gradScalar = 1;
  let gradTensor: ArrayBufferView | null = null;
  if (typeof a.gradOutput === 'number') gradScalar = a.gradOutput;
  else if (a.gradOutput) gradTensor = a.gradOutput.data;
  const weight = a.weight ? a.weight.data : null;
  // Large gradients are allocated natively after the kernel has run (binding/napi/fused_binding.cc).
  const gradBytes = x.length * (dtype === 'float64' ? 8 : 4);
  let grad = a.grad ? (a.gradInto ?? (gradBytes >= HUGE_BYTES ? null : outputArray(dtype, x.length))) : null;
  const lossInto = prepared.reduction === 'none' ? outputArray(dtype, x.length / prepared.classes) : null;
  const r = native().crossEntropyFusedFast(
    x, outer, prepared.classes, inner, t, prepared.probabilityTarget, weight, a.reduction, a.ignoreIndex,
    a.labelSmoothing, a.grad, gradScalar, gradTensor, grad, lossInto, LOSS_OUT,
  );
  if (r === undefined) return undefined;
  let scalar: number;
  if (typeof r === 'number') {
    scalar = r;
  } else {
    grad = dtype === 'float64' ? new Float64Array(r) : new Float32Array(r);
    scalar = LOSS_OUT[0];
  }
  const loss: number | Tensor<FloatArray> = lossInto ? { data: lossInto, shape: prepared.lossShape.slice(), dtype } : scalar;
  return grad ? { loss, grad: { data: grad, shape: shape.slice(), dtype } } : { loss };
}

/** Adds context to errors whose native text alone would not say what to do. */
function explain(err: unknown, prepared: Prepared): unknown {
  if (err instanceof Error && prepared.inputDType === 'float16' && / for 'Half'/.test(err.message)) {
    err.message =
      `float16 input is not supported on ${prepared.args.device} by the linked LibTorch ${native().torchVersion()} ` +
      `(CPU Half cross-entropy arrived in PyTorch 2.4; use bfloat16 or float32): ${err.message}`;
  }
  return err;
}

/**
 * PyTorch's cross_entropy (nn.CrossEntropyLoss) with label smoothing, computed by ATen
 * on the calling thread. Same formulas, reductions, weights, ignore_index, probability
 * targets and gradients as torch.nn.functional.cross_entropy.
 */
export function crossEntropy(input: TensorInput, target: TensorInput, options: DeviceGradOptions): DeviceGradResult;
export function crossEntropy<I extends TensorInput>(input: I, target: TensorInput, options: NoneOptions & { grad: true }): CrossEntropyGradResult<Tensor<FloatOf<I>>, FloatOf<I>>;
export function crossEntropy<I extends TensorInput>(input: I, target: TensorInput, options: NoneOptions): CrossEntropyResult<Tensor<FloatOf<I>>, Tensor<FloatOf<I>>>;
export function crossEntropy<I extends TensorInput>(input: I, target: TensorInput, options: ScalarOptions & { grad: true }): CrossEntropyGradResult<number, FloatOf<I>>;
export function crossEntropy<I extends TensorInput>(input: I, target: TensorInput, options?: ScalarOptions): CrossEntropyResult<number, Tensor<FloatOf<I>>>;
export function crossEntropy<I extends TensorInput>(input: I, target: TensorInput, options: CrossEntropyOptions & { grad: true }): CrossEntropyGradResult<number | Tensor<FloatOf<I>>, FloatOf<I>>;
export function crossEntropy<I extends TensorInput>(input: I, target: TensorInput, options?: CrossEntropyOptions): CrossEntropyResult<number | Tensor<FloatOf<I>>, Tensor<FloatOf<I>>>;
export function crossEntropy(input: TensorInput, target: TensorInput, options?: CrossEntropyOptions | DeviceGradOptions): CrossEntropyResult<number | Tensor<FloatArray>, Tensor<FloatArray> | DeviceTensor> {
  const prepared = prepare(input, target, options, 'crossEntropy', CALL_OPTION_NAMES);
  const batchSize = readBatchSize(options);
  reclaimBeforeLargeOutput(prepared, false);
  if (shouldChunk(prepared, batchSize)) {
    // Exact chunking of the batch dimension (lib/loss/batch.ts).
    try {
      return crossEntropyChunked(prepared, batchSize, (args) =>
        viaFused(prepared) ? native().crossEntropyFused(args, false) : native().crossEntropy(args, false),
      );
    } catch (err) {
      throw explain(err, prepared);
    }
  }
  if (viaFused(prepared)) {
    let fused: NativeFusedResult;
    try {
      const fast = tryFusedFast(prepared);
      if (fast) return fast;
      fused = native().crossEntropyFused(prepared.args, false);
    } catch (err) {
      throw explain(err, prepared);
    }
    return finishFused(prepared, fused);
  }
  let result: NativeResult;
  try {
    result = native().crossEntropy(prepared.args, false);
  } catch (err) {
    throw explain(err, prepared);
  }
  return finish(prepared, result);
}

/**
 * Same result as crossEntropy(), computed on the libuv thread pool so the event loop
 * stays free. Inputs backed by an ordinary ArrayBuffer are copied once when the call
 * starts (the caller may then change, transfer or drop them); SharedArrayBuffer-backed
 * inputs are read in place and must not be written until the promise settles.
 */
export async function crossEntropyAsync(input: TensorInput, target: TensorInput, options: DeviceGradOptions): Promise<DeviceGradResult>;
export async function crossEntropyAsync<I extends TensorInput>(input: I, target: TensorInput, options: NoneOptions & { grad: true }): Promise<CrossEntropyGradResult<Tensor<FloatOf<I>>, FloatOf<I>>>;
export async function crossEntropyAsync<I extends TensorInput>(input: I, target: TensorInput, options: NoneOptions): Promise<CrossEntropyResult<Tensor<FloatOf<I>>, Tensor<FloatOf<I>>>>;
export async function crossEntropyAsync<I extends TensorInput>(input: I, target: TensorInput, options: ScalarOptions & { grad: true }): Promise<CrossEntropyGradResult<number, FloatOf<I>>>;
export async function crossEntropyAsync<I extends TensorInput>(input: I, target: TensorInput, options?: ScalarOptions): Promise<CrossEntropyResult<number, Tensor<FloatOf<I>>>>;
export async function crossEntropyAsync<I extends TensorInput>(input: I, target: TensorInput, options: CrossEntropyOptions & { grad: true }): Promise<CrossEntropyGradResult<number | Tensor<FloatOf<I>>, FloatOf<I>>>;
export async function crossEntropyAsync<I extends TensorInput>(input: I, target: TensorInput, options?: CrossEntropyOptions): Promise<CrossEntropyResult<number | Tensor<FloatOf<I>>, Tensor<FloatOf<I>>>>;
export async function crossEntropyAsync(input: TensorInput, target: TensorInput, options?: CrossEntropyOptions | DeviceGradOptions): Promise<CrossEntropyResult<number | Tensor<FloatArray>, Tensor<FloatArray> | DeviceTensor>> {
  const callSite = new Error();
  const prepared = prepare(input, target, options, 'crossEntropyAsync', CALL_OPTION_NAMES);
  const batchSize = readBatchSize(options);
  reclaimBeforeLargeOutput(prepared, true);
  try {
    if (shouldChunk(prepared, batchSize)) {
      return await crossEntropyChunkedAsync(prepared, batchSize, (args) =>
        viaFused(prepared) ? native().crossEntropyFused(args, true) : native().crossEntropy(args, true),
      );
    }
    if (viaFused(prepared)) return finishFused(prepared, await native().crossEntropyFused(prepared.args, true));
    return finish(prepared, await native().crossEntropy(prepared.args, true));
  } catch (err) {
    // Keep the caller's stack: the native rejection has none of its own.
    if (err instanceof Error && callSite.stack) {
      err.stack = `${err.name}: ${err.message}\n${callSite.stack.split('\n').slice(1).join('\n')}`;
    }
    throw explain(err, prepared);
  }
}
