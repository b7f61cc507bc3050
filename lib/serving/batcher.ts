/**
 * Batcher: request coalescing for services that score many small requests.
 *
 * Requests that arrive within maxDelayMs of each other (and fit in maxBatchSize rows)
 * are concatenated along the batch dimension into ONE native async call with reduction
 * 'none', and the per-position losses (and gradient rows) are split back. Each request
 * then gets what a lone crossEntropy call with the Batcher's options would give:
 *   none: its own per-position losses (bitwise the lone call's);
 *   sum:  Σ of its positions;
 *   mean: Σ of its positions / its own denominator D_r (lib/loss/batch.ts), NaN when D_r = 0;
 *   grad: its rows of the batch gradient, computed with gradOutput 1/D_r (mean) or 1
 *         on its positions, i.e. its lone call's gradient.
 * Only compatible requests share a call: same input dtype, same row shape (C and
 * d1..dk), same kind and dtype of target. Others wait for their own batch.
 */
import { native, type NativeArgs, type NativeResult, type NativeTensor } from '../core/native';
import { prepare, readOptions, type Device, type Prepared, type Reduction } from '../core/options';
import { denominator, lossDType, roundTo, wrappedIgnoreError, wrappedIgnoreTarget } from '../loss/batch';
import { checkDevice, isDeviceTensor, type HostTensorInput } from '../core/device';
import { codedError, ERROR_CODES, rangeError, rangeErrorMessage, typeError, typeErrorMessage } from '../core/errors';
import { numel, sharedArray, tensor, type FloatArray, type Tensor } from '../core/tensor';

export interface BatcherOptions {
  /** Most rows (dim 0; a 1-D input is one row) in one native call. Default 256. */
  maxBatchSize?: number;
  /** How long the first request of a batch waits for others, in ms. Default 1. */
  maxDelayMs?: number;
  /** Most rows pending (queued or being computed); beyond it score() rejects. Default 1,048,576. */
  maxQueue?: number;
  /** Most bytes of request data (inputs and targets, as score() copies them) pending; beyond
   * it score() rejects with ERR_SMOOTHCE_QUEUE_FULL. Default 268,435,456 (256 MiB). */
  maxQueueBytes?: number;
  /** Native calls in flight at once. Default 2. */
  concurrency?: number;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: Device;
  labelSmoothing?: number;
  reduction?: Reduction;
  weight?: ArrayLike<number> | Float32Array | Float64Array;
  ignoreIndex?: number | bigint;
  /** Also return each request's d loss / d input. */
  grad?: boolean;
}

export interface ScoreResult {
  /** A number for 'mean'/'sum'; a tensor for 'none'. */
  loss: number | Tensor<FloatArray>;
  grad?: Tensor<FloatArray>;
}

export interface CloseOptions {
  /** Reject requests not yet started (ERR_SMOOTHCE_CLOSED) instead of computing them. Default false. */
  reject?: boolean;
}

export interface BatcherStats {
  /** Native calls made. */
  batches: number;
  /** Requests answered (resolved or rejected after queueing). */
  requests: number;
  /** Rows computed. */
  rows: number;
  /** Rows queued or in flight now. */
  pending: number;
  /** Bytes of request data queued or in flight now. */
  pendingBytes: number;
}

/** Default for BatcherOptions.maxQueueBytes. */
export const DEFAULT_MAX_QUEUE_BYTES = 256 * 1024 * 1024;
/** The longest maxDelayMs: a timer past 2^31 - 1 ms fires at once (Node's TimeoutOverflowWarning). */
const MAX_DELAY_MS = 2 ** 31 - 1;

const LOSS_NAMES = ['labelSmoothing', 'reduction', 'weight', 'ignoreIndex', 'grad', 'device'] as const;
const NAMES = [...LOSS_NAMES, 'maxBatchSize', 'maxDelayMs', 'maxQueue', 'maxQueueBytes', 'concurrency'];

interface Request {
  prepared: Prepared;
  rows: number;
  /** Bytes of its copied input and target. */
  bytes: number;
  /** Loss positions per row (d1·…·dk). */
  perRow: number;
  D: number;
  arrived: number;
  resolve: (r: ScoreResult) => void;
  reject: (e: unknown) => void;
}

interface Queue {
  key: string;
  requests: Request[];
  rows: number;
  timer: NodeJS.Timeout | null;
}


function positiveInt(o: Record<string, unknown>, name: string, dflt: number, allowInfinity = false): number {
  const v = o[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw typeError(name, 'a positive integer', v);
  if (allowInfinity && v === Infinity) return v;
  if (!Number.isSafeInteger(v) || v < 1) throw rangeError(name, 'a positive integer', v);
  return v;
}


/** The prepared request over copies of the caller's input and target (read at score(), never later). */
function snapshot(p: Prepared): Prepared {
  const a = p.args;
  return {
    ...p,
    args: { ...a, input: { ...a.input, data: a.input.data.slice() }, target: { ...a.target, data: a.target.data.slice() } },
  };
}

export class Batcher {
  private readonly lossOptions: Record<string, unknown>;
  private readonly reduction: Reduction;
  private readonly grad: boolean;
  private readonly maxBatchSize: number;
  private readonly maxDelayMs: number;
  private readonly maxQueue: number;
  private readonly maxQueueBytes: number;
  private readonly concurrency: number;
  /** The device the calls run on, as ATen names it. */
  readonly device: string;
  private readonly queues = new Map<string, Queue>();
  private pendingRows = 0;
  private pendingBytes = 0;
  private inFlight = 0;
  private closed = false;
  private draining = false;
  private idleWaiters: (() => void)[] = [];
  private counters = { batches: 0, requests: 0, rows: 0 };

  constructor(options: BatcherOptions = {}) {
    const o = readOptions(options, NAMES, 'Batcher');
    this.maxBatchSize = positiveInt(o, 'maxBatchSize', 256);
    this.maxQueue = positiveInt(o, 'maxQueue', 1 << 20, true);
    this.maxQueueBytes = positiveInt(o, 'maxQueueBytes', DEFAULT_MAX_QUEUE_BYTES, true);
    this.concurrency = positiveInt(o, 'concurrency', 2);
    const delay = o.maxDelayMs ?? 1;
    if (typeof delay !== 'number') throw typeError('maxDelayMs', 'a number of milliseconds >= 0', delay);
    if (!(delay >= 0 && delay <= MAX_DELAY_MS)) throw rangeError('maxDelayMs', `a number of milliseconds in [0, ${MAX_DELAY_MS}]`, delay);
    this.maxDelayMs = delay;
    const loss: Record<string, unknown> = {};
    for (const k of LOSS_NAMES) if (o[k] !== undefined) loss[k] = o[k];
    if (loss.weight !== undefined) {
      const w = loss.weight as ArrayLike<number>;
      loss.weight = w instanceof Float32Array || w instanceof Float64Array ? w.slice() : Array.from(w as ArrayLike<number>);
    }
    // The loss options are checked as crossEntropy checks them, on a one-row stand-in
    // (the weight's length is checked against C by every request).
    const C = Array.isArray(loss.weight) || ArrayBuffer.isView(loss.weight) ? Math.max(1, (loss.weight as ArrayLike<number>).length) : 1;
    const standIn = prepare(tensor(new Float64Array(C), [1, C]), tensor([0], [1], 'int64'), loss, 'Batcher');
    this.device = checkDevice(standIn.args.device as Device);
    this.reduction = standIn.reduction;
    this.grad = standIn.args.grad;
    this.lossOptions = loss;
  }

  /** Rows queued or being computed. */
  get pending(): number {
    return this.pendingRows;
  }

  get stats(): BatcherStats {
    return { ...this.counters, pending: this.pendingRows, pendingBytes: this.pendingBytes };
  }

  /**
   * The loss of one request, as crossEntropy(input, target, options) would give it alone,
   * computed together with the requests that arrive with it. The request's input and target
   * are copied when score() is called: the caller may overwrite, transfer or drop its buffers
   * at once, and a buffer that is already detached rejects this request only.
   */
  score(input: HostTensorInput, target: HostTensorInput): Promise<ScoreResult> {
    let req: Request;
    let key: string;
    try {
      if (this.closed) throw codedError(ERROR_CODES.CLOSED, 'Batcher is closed: score() cannot take new requests; make a new Batcher');
      if (isDeviceTensor(input) || isDeviceTensor(target)) {
        throw typeErrorMessage(
          `Expected host tensors { data, shape, dtype } for Batcher.score's ${isDeviceTensor(input) ? 'input' : 'target'} but received a DeviceTensor; ` +
            'a Batcher concatenates requests on the host: pass host tensors, or call crossEntropy directly with device tensors',
        );
      }
      const prepared = snapshot(prepare(input, target, this.lossOptions, 'Batcher.score'));
      const bytes = prepared.args.input.data.byteLength + prepared.args.target.data.byteLength;
      const shape = prepared.args.input.shape;
      const rows = shape.length === 1 ? 1 : shape[0];
      if (rows > this.maxQueue) {
        throw rangeErrorMessage(
          `Expected at most maxQueue (${this.maxQueue}) rows for Batcher.score's input but received ${rows} rows; ` +
            'it can never be queued: split it, call crossEntropy directly, or raise maxQueue',
          ERROR_CODES.REQUEST_TOO_LARGE,
        );
      }
      if (bytes > this.maxQueueBytes) {
        throw rangeErrorMessage(
          `Expected at most maxQueueBytes (${this.maxQueueBytes}) bytes of input and target for Batcher.score but received ${bytes} bytes; ` +
            'it can never be queued: split it, call crossEntropy directly, or raise maxQueueBytes',
          ERROR_CODES.REQUEST_TOO_LARGE,
        );
      }
      if (this.pendingBytes + bytes > this.maxQueueBytes) {
        throw rangeErrorMessage(
          `Batcher queue is full: ${this.pendingBytes} bytes pending + ${bytes} requested > maxQueueBytes (${this.maxQueueBytes}); ` +
            'retry later or raise maxQueueBytes',
          ERROR_CODES.QUEUE_FULL,
        );
      }
      if (this.pendingRows + rows > this.maxQueue) {
        throw rangeErrorMessage(
          `Batcher queue is full: ${this.pendingRows} rows pending + ${rows} requested > maxQueue (${this.maxQueue}); ` +
            'retry later or raise maxQueue',
          ERROR_CODES.QUEUE_FULL,
        );
      }
      const rowShape = shape.length === 1 ? shape : shape.slice(1);
      key = `${prepared.inputDType}|${rowShape.join(',')}|${prepared.probabilityTarget ? 'p' : 'i'}:${prepared.args.target.dtype}`;
      const perRow = shape.length === 1 ? 1 : numel(shape.slice(2));
      if (this.reduction === 'mean') {
        const wrapped = wrappedIgnoreTarget(prepared);
        if (wrapped !== null) throw wrappedIgnoreError('Batcher.score', wrapped, prepared.args.ignoreIndex);
      }
      const D = this.reduction === 'mean' ? denominator(prepared) : 1;
      req = { prepared, rows, bytes, perRow, D, arrived: Date.now(), resolve: () => {}, reject: () => {} };
    } catch (err) {
      return Promise.reject(err);
    }
    const promise = new Promise<ScoreResult>((resolve, reject) => {
      req.resolve = resolve;
      req.reject = reject;
    });
    let q = this.queues.get(key);
    if (!q) {
      q = { key, requests: [], rows: 0, timer: null };
      this.queues.set(key, q);
    }
    q.requests.push(req);
    q.rows += req.rows;
    this.pendingRows += req.rows;
    this.pendingBytes += req.bytes;
    this.schedule();
    return promise;
  }

  /**
   * Stops taking requests. By default computes everything pending (without waiting for
   * maxDelayMs); with { reject: true } rejects the requests not yet started. Resolves
   * when no call is left in flight.
   */
  close(options: CloseOptions = {}): Promise<void> {
    const o = readOptions(options, ['reject'], 'Batcher.close');
    const reject = o.reject ?? false;
    if (typeof reject !== 'boolean') throw typeError('reject', 'a boolean', reject);
    this.closed = true;
    if (reject) {
      for (const q of this.queues.values()) {
        if (q.timer) clearTimeout(q.timer);
        for (const r of q.requests) {
          this.pendingRows -= r.rows;
          this.pendingBytes -= r.bytes;
          this.counters.requests++;
          r.reject(codedError(ERROR_CODES.CLOSED, 'Batcher was closed with { reject: true } before this request was computed; close() without it computes pending requests first'));
        }
      }
      this.queues.clear();
    } else {
      this.draining = true;
      this.schedule();
    }
    return new Promise((resolve) => {
      if (this.inFlight === 0 && this.queues.size === 0) resolve();
      else this.idleWaiters.push(resolve);
    });
  }

  /** Starts every batch that is due, up to the concurrency limit; arms timers for the rest. */
  private schedule(): void {
    const now = Date.now();
    for (const q of this.queues.values()) {
      if (this.inFlight >= this.concurrency) break;
      while (q.requests.length > 0 && this.inFlight < this.concurrency) {
        const due = this.draining || q.rows >= this.maxBatchSize || now >= q.requests[0].arrived + this.maxDelayMs;
        if (!due) break;
        this.dispatch(q);
      }
    }
    for (const [key, q] of this.queues) {
      if (q.requests.length === 0) {
        if (q.timer) clearTimeout(q.timer);
        this.queues.delete(key);
        continue;
      }
      if (!q.timer && this.inFlight < this.concurrency) {
        const wait = Math.max(0, q.requests[0].arrived + this.maxDelayMs - now);
        q.timer = setTimeout(() => {
          q.timer = null;
          this.schedule();
        }, wait);
      }
    }
    if (this.inFlight === 0 && this.queues.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Takes up to maxBatchSize rows (at least one request) from q and runs them as one call. */
  private dispatch(q: Queue): void {
    const batch: Request[] = [];
    let rows = 0;
    while (q.requests.length > 0 && (batch.length === 0 || rows + q.requests[0].rows <= this.maxBatchSize)) {
      const r = q.requests.shift()!;
      batch.push(r);
      rows += r.rows;
    }
    q.rows -= rows;
    const bytes = batch.reduce((a, r) => a + r.bytes, 0);
    if (q.timer) {
      clearTimeout(q.timer);
      q.timer = null;
    }
    this.inFlight++;
    this.counters.batches++;
    this.run(batch, rows).finally(() => {
      this.inFlight--;
      this.pendingRows -= rows;
      this.pendingBytes -= bytes;
      this.counters.rows += rows;
      this.counters.requests += batch.length;
      this.schedule();
    });
  }

  private async run(batch: Request[], rows: number): Promise<void> {
    let result: NativeResult;
    let args: NativeArgs;
    try {
      args = this.concatenate(batch, rows);
      result = await native().crossEntropy(args, true);
    } catch (err) {
      for (const r of batch) r.reject(err);
      return;
    }
    const loss = result.loss;
    const lossData = (loss as NativeTensor).data as FloatArray;
    const grad = result.grad;
    let pos = 0;
    let off = 0;
    for (const r of batch) {
      const p = r.prepared;
      const n = r.rows * r.perRow;
      const size = numel(p.args.input.shape);
      const at = pos;
      const gradAt = off;
      pos += n;
      off += size;
      try {
        let value: number | Tensor<FloatArray>;
        if (this.reduction === 'none') {
          value = { data: lossData.slice(at, at + n), shape: p.lossShape.slice(), dtype: (loss as NativeTensor).dtype };
        } else {
          // Σ of the request's positions (Neumaier), then its own denominator.
          let s = n > 0 ? lossData[at] : p.probabilityTarget ? -0 : 0;
          let c = 0;
          for (let i = at + 1; i < at + n; i++) {
            const v = lossData[i];
            const t = s + v;
            c += Math.abs(s) >= Math.abs(v) ? s - t + v : v - t + s;
            s = t;
          }
          if (Number.isFinite(s) && c !== 0) s += c;
          const v = this.reduction === 'mean' ? (r.D === 0 ? NaN : s / r.D) : s;
          value = roundTo(lossDType(p, { loss }), v);
        }
        if (grad && this.grad) {
          const g: Tensor<FloatArray> = {
            data: (grad.data as FloatArray).slice(gradAt, gradAt + size),
            shape: p.args.input.shape.slice(),
            dtype: grad.dtype,
          };
          r.resolve({ loss: value, grad: g });
        } else {
          r.resolve({ loss: value });
        }
      } catch (err) {
        r.reject(err);
      }
    }
  }

  /** One native call for the batch: inputs, targets (and gradOutput) concatenated by rows. */
  private concatenate(batch: Request[], rows: number): NativeArgs {
    const first = batch[0].prepared;
    const x0 = first.args.input;
    const t0 = first.args.target;
    const rowShape = x0.shape.length === 1 ? x0.shape : x0.shape.slice(1);
    const inputLen = rows * numel(rowShape);
    const positions = batch.reduce((a, r) => a + r.rows * r.perRow, 0);
    const targetRow = first.probabilityTarget ? rowShape : rowShape.slice(1);
    const targetLen = rows * numel(targetRow);
    const input = sharedArray(x0.data, inputLen, false);
    const target = sharedArray(t0.data, targetLen, false);
    let gradOutput: NativeTensor | number | null = null;
    let g: Float64Array | null = null;
    if (this.grad) {
      if (this.reduction === 'mean') g = new Float64Array(new SharedArrayBuffer(Math.max(1, positions) * 8)).subarray(0, positions);
      else gradOutput = 1;
    }
    let xi = 0;
    let ti = 0;
    let gi = 0;
    for (const r of batch) {
      const a = r.prepared.args;
      (input as FloatArray).set(a.input.data as FloatArray, xi);
      xi += a.input.data.length;
      (target as Float64Array).set(a.target.data as Float64Array, ti);
      ti += a.target.data.length;
      if (g) {
        const n = r.rows * r.perRow;
        g.fill(1 / r.D, gi, gi + n);
        gi += n;
      }
    }
    if (g) gradOutput = { data: g, shape: [rows, ...rowShape.slice(1)], dtype: 'float64' };
    return {
      ...first.args,
      input: { data: input, shape: [rows, ...rowShape], dtype: x0.dtype },
      target: { data: target, shape: [rows, ...targetRow], dtype: t0.dtype },
      reduction: 0,
      grad: this.grad,
      gradOutput,
    };
  }
}

