/**
 * Exact chunking of the batch dimension, and the sum/denominator algebra that the
 * chunked call, LossAccumulator and Batcher share.
 *
 * A mean is never a mean of means: every piece is computed natively as a SUM (or as
 * per-position losses for 'none'), and the pieces are combined as
 *     loss = Σ sums / D
 * with D the global denominator PyTorch divides by:
 *   class-index target: Σ over non-ignored positions of w[target] (their count without
 *                       weights), the weights rounded to the input's dtype as ATen uses them;
 *   probability target: N·d1·…·dk (weights never enter it).
 * D = 0 gives NaN, as PyTorch (its class-index mean is 0/0 there).
 * Gradients of a chunked mean use gradOutput = g / D in every chunk, so each chunk's
 * gradient is the global mean's gradient restricted to its rows.
 */
import { typeError, rangeError, rangeErrorMessage } from '../core/errors';
import { isDeviceTensor, tensorArg } from '../core/device';
import type { NativeArgs, NativeTensor } from '../core/native';
import type { Prepared } from '../core/options';
import { numel, sharedTensor, type DType, type FloatArray, type Tensor, type TensorData } from '../core/tensor';

/** Option names the chunked entry points accept on top of crossEntropy's. */
export const BATCH_OPTION_NAMES: readonly string[] = ['batchSize'];

/** What one native call returns (ATen or fused entry point). */
export interface ChunkResult {
  loss: number | NativeTensor;
  grad?: NativeTensor;
}

export type ChunkRunner = (args: NativeArgs) => ChunkResult;
export type AsyncChunkRunner = (args: NativeArgs) => Promise<ChunkResult>;

export interface ChunkedResult {
  loss: number | Tensor<FloatArray>;
  grad?: Tensor<FloatArray>;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reads and checks options.batchSize (undefined when absent). */
export function readBatchSize(options: unknown, parameter = 'batchSize'): number | undefined {
  if (options === null || typeof options !== 'object') return undefined;
  if (!Object.prototype.hasOwnProperty.call(options, 'batchSize')) return undefined;
  const b = (options as Record<string, unknown>).batchSize;
  if (b === undefined) return undefined;
  if (typeof b !== 'number') throw typeError(parameter, 'a positive integer number of rows', b);
  if (!Number.isSafeInteger(b) || b < 1) throw rangeError(parameter, 'a positive integer number of rows', b);
  return b;
}

/** Rounds x to a binary floating-point format with `mant` fraction bits (ties to even). */
function roundToFormat(x: number, mant: number, minExp: number, maxExp: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  if (e < minExp) e = minExp;
  const q = 2 ** (e - mant);
  const r = a / q;
  let f = Math.floor(r);
  const diff = r - f;
  if (diff > 0.5 || (diff === 0.5 && f % 2 === 1)) f += 1;
  const v = f * q;
  return Math.sign(x) * (v >= 2 ** (maxExp + 1) ? Infinity : v);
}

/** x rounded to dtype (a float dtype ATen computes in). */
export function roundTo(dtype: DType, x: number): number {
  switch (dtype) {
    case 'float32':
      return Math.fround(x);
    case 'bfloat16':
      return roundToFormat(x, 7, -126, 127);
    case 'float16':
      return roundToFormat(x, 10, -14, 15);
    default:
      return x;
  }
}

/** The dtype of a reduced loss: the native result's, narrowed to bf16/f16 as ATen computes it. */
export function lossDType(prepared: Prepared, first: ChunkResult): DType {
  const x = prepared.inputDType;
  // Probability targets: x·t is in the promoted dtype (bfloat16·bfloat16 stays bfloat16).
  const t = prepared.args.target.dtype;
  if ((x === 'bfloat16' || x === 'float16') && (!prepared.probabilityTarget || t === x)) return x;
  if (typeof first.loss !== 'number') return first.loss.dtype;
  return x === 'float64' ? 'float64' : 'float32';
}

/** The target's values, also for a device tensor handle (its host copy). */
function targetValues(prepared: Prepared, target: unknown): TensorData {
  if (isDeviceTensor(prepared.args.target)) return tensorArg(target, 'target').data;
  return prepared.args.target.data;
}

/**
 * The uint8 target value PyTorch's smoothing term ignores when it differs from the one
 * nll_loss ignores, and some target equals it; otherwise null. The smoothing term masks
 * `target == ignore_index` in the target's dtype, so for uint8 targets an ignore_index
 * outside 0..255 is compared wrapped to 8 bits (the default −100 as 156): a target of 156
 * then keeps its nll term but loses its smoothing term, and PyTorch's 'mean' divides the two
 * terms by different denominators, which the one-denominator algebra here cannot express.
 */
export function wrappedIgnoreTarget(prepared: Prepared, target?: unknown): number | null {
  const a = prepared.args;
  if (prepared.probabilityTarget || a.target.dtype !== 'uint8' || !(a.labelSmoothing > 0)) return null;
  if (a.ignoreIndex >= 0n && a.ignoreIndex <= 255n) return null;
  const wrapped = Number(BigInt.asUintN(8, a.ignoreIndex));
  const data = targetValues(prepared, target) as Uint8Array;
  return data.includes(wrapped) ? wrapped : null;
}

/** The error for a mean that wrappedIgnoreTarget says this module cannot combine. */
export function wrappedIgnoreError(fn: string, wrapped: number, ignoreIndex: bigint): RangeError {
  return rangeErrorMessage(
    `Invalid target for ${fn}: uint8 class index ${wrapped} is ignoreIndex ${ignoreIndex} wrapped to 8 bits; with ` +
      "labelSmoothing > 0 and reduction 'mean', PyTorch's smoothing term ignores those targets and its nll term does " +
      `not, so the mean has two denominators, which ${fn.split('.')[0]} cannot combine. Pass int32/int64 targets ` +
      "(PyTorch does not wrap those) or use reduction 'sum'",
  );
}

/**
 * The denominator of the call's mean: Σ w[y] over non-ignored positions (count without
 * weights) for class indices; N·d1·…·dk for probability targets. `target` is the
 * caller's target (needed only for device handles).
 */
export function denominator(prepared: Prepared, target?: unknown): number {
  if (prepared.probabilityTarget) return numel(prepared.lossShape);
  const data = targetValues(prepared, target);
  const ignore = prepared.args.ignoreIndex;
  const w = prepared.args.weight;
  let weights: Float64Array | null = null;
  if (w) {
    const dt = prepared.inputDType;
    weights = new Float64Array(w.data.length);
    for (let c = 0; c < weights.length; c++) weights[c] = roundTo(dt, Number(w.data[c]));
  }
  // Neumaier summation: exact enough for any stream of (possibly negative) weights.
  let sum = 0;
  let comp = 0;
  const add = (v: number): void => {
    const t = sum + v;
    comp += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
    sum = t;
  };
  if (data instanceof BigInt64Array) {
    // Targets were validated: each is in [0, C) or equals ignoreIndex.
    const n = data.length;
    const ignoreLo = Number(BigInt.asIntN(32, ignore));
    const ignoreHi = Number(BigInt.asIntN(32, ignore >> 32n));
    if (LITTLE_ENDIAN) {
      const words = new Int32Array(data.buffer, data.byteOffset, n * 2);
      if (!weights) {
        let count = 0;
        for (let i = 0; i < n; i++) if (!(words[2 * i] === ignoreLo && words[2 * i + 1] === ignoreHi)) count++;
        return count;
      }
      for (let i = 0; i < n; i++) {
        const lo = words[2 * i];
        if (lo === ignoreLo && words[2 * i + 1] === ignoreHi) continue;
        add(weights[lo]);
      }
      return sum + comp;
    }
    let count = 0;
    for (let i = 0; i < n; i++) {
      const v = data[i];
      if (v === ignore) continue;
      if (weights) add(weights[Number(v)]);
      else count++;
    }
    return weights ? sum + comp : count;
  }
  const ints = data as Int32Array | Uint8Array;
  const ig = ignore >= -(2n ** 53n) && ignore <= 2n ** 53n ? Number(ignore) : NaN;
  let count = 0;
  for (let i = 0; i < ints.length; i++) {
    const v = ints[i];
    if (v === ig) continue;
    if (weights) add(weights[v]);
    else count++;
  }
  return weights ? sum + comp : count;
}

/** Whether a call with this batchSize is split (host tensors with more than B rows). */
export function shouldChunk(prepared: Prepared, batchSize: number | undefined): batchSize is number {
  if (batchSize === undefined) return false;
  if (isDeviceTensor(prepared.args.input) || isDeviceTensor(prepared.args.target)) return false;
  const shape = prepared.args.input.shape;
  if (!(shape.length >= 2 && shape[0] > batchSize)) return false;
  // A mean whose two terms have different denominators is computed in one call, unchunked.
  return !(prepared.reduction === 'mean' && wrappedIgnoreTarget(prepared) !== null);
}

/**
 * The prepared call with its host inputs (input, target, a gradOutput tensor, weight) copied
 * once into SharedArrayBuffers, which async native calls read in place: the snapshot a
 * chunked or multi-pass async call takes when it starts, so that its later chunks never read
 * the caller's arrays (which the caller may overwrite, transfer or drop as soon as the call
 * returns). Arrays already on a SharedArrayBuffer stay as they are (read in place, as
 * documented); gradInto is an output and stays the caller's.
 */
export function snapshotPrepared(prepared: Prepared): Prepared {
  const a = prepared.args;
  const copy = <T>(t: T): T => (t !== null && typeof t === 'object' && !isDeviceTensor(t) ? (sharedTensor(t as unknown as Tensor) as unknown as T) : t);
  return { ...prepared, args: { ...a, input: copy(a.input), target: copy(a.target), gradOutput: copy(a.gradOutput), weight: copy(a.weight) } };
}

function sliceRows<T extends NativeTensor>(t: T, start: number, end: number): T {
  const row = numel(t.shape.slice(1));
  return { ...t, data: t.data.subarray(start * row, end * row), shape: [end - start, ...t.shape.slice(1)] };
}

/** args.gradInto (the fused entry point's output buffer), when the core has one. */
function gradIntoOf(args: NativeArgs): FloatArray | null {
  return (args as NativeArgs & { gradInto?: FloatArray | null }).gradInto ?? null;
}

function scalarOf(g: number | NativeTensor | null): number {
  if (g === null) return 1;
  return typeof g === 'number' ? g : Number(g.data[0]);
}

/** The per-chunk native arguments: views (subarray) of the caller's arrays, no copies. */
export function* chunkArgs(prepared: Prepared, batchSize: number, meanDenominator: number): Generator<[NativeArgs, number, number]> {
  const a = prepared.args;
  const rows = a.input.shape[0];
  const none = prepared.reduction === 'none';
  let g: number | null = null;
  if (a.grad && !none) {
    g = scalarOf(a.gradOutput);
    if (prepared.reduction === 'mean') g = g / meanDenominator;
  }
  for (let start = 0; start < rows; start += batchSize) {
    const end = Math.min(rows, start + batchSize);
    const args: NativeArgs = {
      ...a,
      input: sliceRows(a.input, start, end),
      target: sliceRows(a.target, start, end),
      reduction: none ? 0 : 2,
      gradOutput: !a.grad
        ? null
        : !none
          ? (g as number)
          : a.gradOutput === null || typeof a.gradOutput === 'number'
            ? (a.gradOutput ?? 1)
            : sliceRows(a.gradOutput, start, end),
    };
    const into = gradIntoOf(a);
    if (into) {
      const row = numel(a.input.shape.slice(1));
      (args as NativeArgs & { gradInto?: FloatArray }).gradInto = into.subarray(start * row, end * row);
    }
    yield [args, start, end];
  }
}

type FloatCtor = Float32ArrayConstructor | Float64ArrayConstructor;

function ctorOf(dtype: DType): FloatCtor {
  return dtype === 'float64' ? Float64Array : Float32Array;
}

/** Collects chunk results into one result, as the unchunked call returns it. */
class Combiner {
  private total = 0;
  private first: ChunkResult | undefined;
  private lossBuf: FloatArray | undefined;
  private gradBuf: FloatArray | undefined;
  private lossOut = 0;

  constructor(
    private readonly prepared: Prepared,
    private readonly D: number,
  ) {}

  add(r: ChunkResult, start: number, end: number): void {
    const p = this.prepared;
    const isFirst = this.first === undefined;
    if (isFirst) this.first = r;
    if (p.reduction === 'none') {
      const l = r.loss as NativeTensor;
      if (isFirst) this.lossBuf = new (ctorOf(l.dtype))(numel(p.lossShape));
      this.lossBuf!.set(l.data as FloatArray, this.lossOut);
      this.lossOut += l.data.length;
    } else {
      const v = typeof r.loss === 'number' ? r.loss : Number(r.loss.data[0]);
      // Start from the first chunk's value, so that an all -0.0 sum stays -0.0.
      this.total = isFirst ? v : this.total + v;
    }
    if (r.grad && !gradIntoOf(p.args)) {
      const row = numel(p.args.input.shape.slice(1));
      if (isFirst) this.gradBuf = new (ctorOf(r.grad.dtype))(numel(p.args.input.shape));
      this.gradBuf!.set(r.grad.data as FloatArray, start * row);
    }
    void end;
  }

  /** The float64 sum of the chunks' sums ('sum' reduction), before any rounding. */
  rawTotal(): number {
    return this.total;
  }

  result(): ChunkedResult {
    const p = this.prepared;
    const first = this.first!;
    let loss: number | Tensor<FloatArray>;
    if (p.reduction === 'none') {
      const l = first.loss as NativeTensor;
      loss = { data: this.lossBuf!, shape: p.lossShape.slice(), dtype: l.dtype };
    } else {
      const dt = lossDType(p, first);
      const v = p.reduction === 'mean' ? (this.D === 0 ? NaN : this.total / this.D) : this.total;
      loss = roundTo(dt, v);
    }
    if (!p.args.grad) return { loss };
    const into = gradIntoOf(p.args);
    if (into) {
      return { loss, grad: { data: into, shape: p.args.input.shape.slice(), dtype: into instanceof Float64Array ? 'float64' : 'float32' } };
    }
    return { loss, grad: { data: this.gradBuf!, shape: p.args.input.shape.slice(), dtype: first.grad!.dtype } };
  }
}

/** crossEntropy over chunks of at most batchSize rows, combined exactly. */
export function crossEntropyChunked(prepared: Prepared, batchSize: number, run: ChunkRunner): ChunkedResult {
  const D = prepared.reduction === 'mean' ? denominator(prepared) : 1;
  const c = new Combiner(prepared, D);
  for (const [args, start, end] of chunkArgs(prepared, batchSize, D)) c.add(run(args), start, end);
  return c.result();
}

/**
 * Σ of the per-position losses of a prepared 'sum' call (no gradient), in float64: the
 * native sums of chunks of at most batchSize rows (one call when batchSize is undefined
 * or the batch fits), added without rounding to the input's dtype.
 */
export function sumLosses(prepared: Prepared, batchSize: number | undefined, run: ChunkRunner): number {
  if (!shouldChunk(prepared, batchSize)) return scalarLoss(run(prepared.args));
  const c = new Combiner(prepared, 1);
  for (const [args, start, end] of chunkArgs(prepared, batchSize, 1)) c.add(run(args), start, end);
  return c.rawTotal();
}

/** sumLosses on the libuv pool; a chunked call works on snapshotPrepared(prepared). */
export async function sumLossesAsync(prepared: Prepared, batchSize: number | undefined, run: AsyncChunkRunner): Promise<number> {
  if (!shouldChunk(prepared, batchSize)) return scalarLoss(await run(prepared.args));
  prepared = snapshotPrepared(prepared);
  const c = new Combiner(prepared, 1);
  for (const [args, start, end] of chunkArgs(prepared, batchSize, 1)) c.add(await run(args), start, end);
  return c.rawTotal();
}

function scalarLoss(r: ChunkResult): number {
  return typeof r.loss === 'number' ? r.loss : Number(r.loss.data[0]);
}

/** The async twin: chunks run one after the other on the libuv pool, over one snapshot of the
 * inputs taken when the call starts (snapshotPrepared: one copy of the inputs, none per chunk). */
export async function crossEntropyChunkedAsync(prepared: Prepared, batchSize: number, run: AsyncChunkRunner): Promise<ChunkedResult> {
  prepared = snapshotPrepared(prepared);
  const D = prepared.reduction === 'mean' ? denominator(prepared) : 1;
  const c = new Combiner(prepared, D);
  for (const [args, start, end] of chunkArgs(prepared, batchSize, D)) c.add(await run(args), start, end);
  return c.result();
}
