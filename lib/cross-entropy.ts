import { native, type NativeFusedResult, type NativeResult } from './native';
import { prepare, type CrossEntropyOptions, type Prepared } from './options';
import { BATCH_OPTION_NAMES, crossEntropyChunked, crossEntropyChunkedAsync, readBatchSize, shouldChunk } from './batch';
import type { FloatArray, Tensor } from './tensor';
import type { TensorInput } from './device';

export interface CrossEntropyResult<L = number | Tensor<FloatArray>> {
  /** A number for 'mean'/'sum'; a tensor for 'none'. */
  loss: L;
  /** d loss / d input, with the input's shape (and dtype; float32 for bfloat16/float16 input). */
  grad?: Tensor<FloatArray>;
}

export type NoneOptions = CrossEntropyOptions & { reduction: 'none' };
export type ScalarOptions = CrossEntropyOptions & { reduction?: 'mean' | 'sum' };

function finish(prepared: Prepared, r: NativeResult): CrossEntropyResult {
  const loss = typeof r.loss === 'number' ? r.loss : prepared.reduction === 'none' ? (r.loss as Tensor<FloatArray>) : Number(r.loss.data[0]);
  // Decided by the request, not by reading r.grad: a polluted Object.prototype.grad
  // must not appear as a gradient.
  return prepared.args.grad ? { loss, grad: r.grad as Tensor<FloatArray> } : { loss };
}

/** impl 'fused', or any call with gradInto, goes through the fused kernel's entry point. */
function viaFused(prepared: Prepared): boolean {
  return prepared.impl === 'fused' || prepared.args.gradInto != null;
}

function finishFused(prepared: Prepared, r: NativeFusedResult): CrossEntropyResult {
  const loss = typeof r.loss === 'number' ? r.loss : prepared.reduction === 'none' ? (r.loss as Tensor<FloatArray>) : Number(r.loss.data[0]);
  const into = prepared.args.gradInto;
  if (into) {
    const grad: Tensor<FloatArray> = { data: into, shape: prepared.args.input.shape.slice(), dtype: into instanceof Float64Array ? 'float64' : 'float32' };
    return { loss, grad };
  }
  return r.grad ? { loss, grad: r.grad as Tensor<FloatArray> } : { loss };
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
export function crossEntropy(input: TensorInput, target: TensorInput, options: NoneOptions): CrossEntropyResult<Tensor<FloatArray>>;
export function crossEntropy(input: TensorInput, target: TensorInput, options?: ScalarOptions): CrossEntropyResult<number>;
export function crossEntropy(input: TensorInput, target: TensorInput, options?: CrossEntropyOptions): CrossEntropyResult;
export function crossEntropy(input: TensorInput, target: TensorInput, options?: CrossEntropyOptions): CrossEntropyResult {
  const prepared = prepare(input, target, options, 'crossEntropy', BATCH_OPTION_NAMES);
  const batchSize = readBatchSize(options);
  if (shouldChunk(prepared, batchSize)) {
    // Exact chunking of the batch dimension (lib/batch.ts).
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
export async function crossEntropyAsync(input: TensorInput, target: TensorInput, options: NoneOptions): Promise<CrossEntropyResult<Tensor<FloatArray>>>;
export async function crossEntropyAsync(input: TensorInput, target: TensorInput, options?: ScalarOptions): Promise<CrossEntropyResult<number>>;
export async function crossEntropyAsync(input: TensorInput, target: TensorInput, options?: CrossEntropyOptions): Promise<CrossEntropyResult>;
export async function crossEntropyAsync(input: TensorInput, target: TensorInput, options?: CrossEntropyOptions): Promise<CrossEntropyResult> {
  const callSite = new Error();
  const prepared = prepare(input, target, options, 'crossEntropyAsync', BATCH_OPTION_NAMES);
  const batchSize = readBatchSize(options);
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
