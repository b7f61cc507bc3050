/**
 * LossAccumulator: the exact mean (or sum) of the loss over any number of batches,
 * mergeable across workers and processes.
 *
 * It keeps two float64 numbers, Σ loss and the denominator D (lib/loss/batch.ts), each with
 * a Neumaier compensation term, so that update(a); update(b) and merging accumulators
 * that saw a and b give crossEntropy over the concatenation of a and b: the same
 * sum / denominator combination the chunked call uses, never a mean of means.
 */
import { native } from '../core/native';
import { prepare, readOptions, type Device, type Prepared } from '../core/options';
import { BATCH_OPTION_NAMES, denominator, readBatchSize, sumLosses, sumLossesAsync, wrappedIgnoreError, wrappedIgnoreTarget } from './batch';
import { checkDevice, type TensorInput } from '../core/device';
import { rangeError, rangeErrorMessage, typeError } from '../core/errors';
import { tensor } from '../core/tensor';
import { replaceState } from '../core/state';

export interface LossAccumulatorOptions {
  /** ε in [0, 1]; default 0. */
  labelSmoothing?: number;
  /** 'mean' (default) or 'sum'. */
  reduction?: 'mean' | 'sum';
  /** Per-class weights, length C. */
  weight?: ArrayLike<number> | Float32Array | Float64Array;
  /** Default -100; class-index targets only. */
  ignoreIndex?: number | bigint;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: Device;
  /** Compute each update in chunks of at most this many rows (bounded memory). */
  batchSize?: number;
}

const NAMES = ['labelSmoothing', 'reduction', 'weight', 'ignoreIndex', 'device', 'batchSize'] as const;
const JSON_TYPE = 'smoothce.LossAccumulator';

/** The serialised state: plain JSON (non-finite numbers and -0 as strings). */
export interface LossAccumulatorJSON {
  type: typeof JSON_TYPE;
  version: 1;
  options: {
    reduction: 'mean' | 'sum';
    labelSmoothing: number;
    ignoreIndex: string;
    weight: number[] | null;
    weightDType: 'float32' | 'float64' | null;
    device: string;
    batchSize: number | null;
  };
  /** C and the target kind seen so far (null before the first update). */
  classes: number | null;
  target: 'index' | 'probability' | null;
  sum: number | string;
  sumCompensation: number | string;
  denominator: number | string;
  denominatorCompensation: number | string;
  /** Loss positions seen (N·d1·…·dk summed over updates; ignored ones included). */
  positions: number;
  updates: number;
}

function encode(x: number): number | string {
  return Number.isFinite(x) && !Object.is(x, -0) ? x : String(Object.is(x, -0) ? '-0' : x);
}

function decode(v: unknown, name: string): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (v === '-0') return -0;
  throw typeError(`json.${name}`, 'a finite number, or "NaN", "Infinity", "-Infinity", "-0"', v);
}

/** Neumaier-compensated running sum. */
class KahanSum {
  constructor(
    public sum = 0,
    public comp = 0,
    private started = false,
  ) {}
  add(v: number): void {
    if (!this.started) {
      // Keep -0.0 when every term is -0.0 (an empty probability-target sum).
      this.sum = v;
      this.started = true;
      return;
    }
    const t = this.sum + v;
    if (Number.isFinite(t)) this.comp += Math.abs(this.sum) >= Math.abs(v) ? this.sum - t + v : v - t + this.sum;
    this.sum = t;
  }
  merge(o: KahanSum): void {
    if (!o.started) return;
    this.add(o.sum);
    if (Number.isFinite(this.sum)) this.comp += o.comp;
  }
  get value(): number {
    return Number.isFinite(this.sum) && this.comp !== 0 ? this.sum + this.comp : this.sum;
  }
  get isStarted(): boolean {
    return this.started;
  }
}

export class LossAccumulator {
  private readonly opts: Record<string, unknown>;
  private readonly reduction: 'mean' | 'sum';
  private readonly batchSize: number | undefined;
  private readonly device: string;
  private total = new KahanSum();
  private den = new KahanSum();
  private classes: number | null = null;
  private targetKind: 'index' | 'probability' | null = null;
  private seenPositions = 0;
  private seenUpdates = 0;

  constructor(options: LossAccumulatorOptions = {}) {
    const o = readOptions(options, NAMES, 'LossAccumulator');
    const reduction = o.reduction ?? 'mean';
    if (reduction === 'none') {
      throw rangeError('reduction', "'mean' or 'sum' (a LossAccumulator reduces; 'none' has nothing to accumulate)", reduction);
    }
    if (reduction !== 'mean' && reduction !== 'sum') throw typeError('reduction', "'mean' or 'sum'", reduction);
    this.reduction = reduction;
    this.batchSize = readBatchSize(o);
    // Everything else is checked as crossEntropy checks it, on a one-row stand-in batch
    // (the weight's length is checked against C at the first update).
    const C = o.weight !== undefined && typeof (o.weight as ArrayLike<number>).length === 'number' ? Math.max(1, (o.weight as ArrayLike<number>).length) : 1;
    const { batchSize: _b, reduction: _r, ...rest } = o;
    void _b;
    void _r;
    const standIn = prepare(tensor(new Float64Array(C), [1, C]), tensor([0], [1], 'int64'), { ...rest, reduction: 'sum' }, 'LossAccumulator');
    this.device = checkDevice(standIn.args.device as Device);
    this.opts = { ...rest, reduction: 'sum' };
    if (o.weight !== undefined) {
      const w = o.weight as ArrayLike<number>;
      // A private copy: later changes to the caller's array do not change this accumulator.
      this.opts.weight = w instanceof Float32Array || w instanceof Float64Array ? w.slice() : Array.from(w);
    }
  }

  private account(prepared: Prepared, den: number, sum: number): void {
    this.total.add(sum);
    this.den.add(den);
    this.seenPositions += prepared.lossShape.reduce((a, b) => a * b, 1);
    this.seenUpdates++;
  }

  private prepareUpdate(input: unknown, target: unknown, fn: string): Prepared {
    const prepared = prepare(input, target, this.opts, fn, BATCH_OPTION_NAMES);
    if (this.reduction === 'mean') {
      const wrapped = wrappedIgnoreTarget(prepared, target);
      if (wrapped !== null) throw wrappedIgnoreError(fn, wrapped, prepared.args.ignoreIndex);
    }
    this.checkKind(prepared, fn);
    return prepared;
  }

  /** The batch has the classes and the kind of target this accumulator has seen. */
  private checkKind(prepared: Prepared, fn: string): void {
    const kind = prepared.probabilityTarget ? 'probability' : 'index';
    if (this.classes !== null && prepared.classes !== this.classes) {
      throw rangeErrorMessage(
        `Invalid input for ${fn}: it has ${prepared.classes} classes but this accumulator has seen ${this.classes}; pass inputs with ${this.classes} classes or use a new accumulator`,
      );
    }
    if (this.targetKind !== null && kind !== this.targetKind) {
      throw rangeErrorMessage(
        `Invalid target for ${fn}: ${kind === 'index' ? 'class indices' : 'probabilities'}, but this accumulator has seen ` +
          `${this.targetKind === 'index' ? 'class indices' : 'probabilities'} (their means have different denominators)`,
      );
    }
  }

  private noteKind(prepared: Prepared): void {
    this.classes = prepared.classes;
    this.targetKind = prepared.probabilityTarget ? 'probability' : 'index';
  }

  /** Adds a batch (same tensors as crossEntropy; device handles too). Returns this. */
  update(input: TensorInput, target: TensorInput): this {
    const prepared = this.prepareUpdate(input, target, 'LossAccumulator.update');
    const sum = sumLosses(prepared, this.batchSize, (args) => native().crossEntropy(args, false));
    this.noteKind(prepared);
    this.account(prepared, denominator(prepared, target), sum);
    return this;
  }

  /** update() computed on the libuv pool. Host inputs are copied when the call starts. */
  async updateAsync(input: TensorInput, target: TensorInput): Promise<this> {
    const prepared = this.prepareUpdate(input, target, 'LossAccumulator.updateAsync');
    // Everything read from the caller's arrays is read now: the native call snapshots them
    // (a chunked one once, for all its chunks), and the caller may change them once this returns.
    const den = denominator(prepared, target);
    const sum = await sumLossesAsync(prepared, this.batchSize, (args) => native().crossEntropy(args, true));
    // Checked again: another update may have run meanwhile.
    this.checkKind(prepared, 'LossAccumulator.updateAsync');
    this.noteKind(prepared);
    this.account(prepared, den, sum);
    return this;
  }

  /** The mean (Σ loss / D; NaN when D = 0 or nothing was seen) or the sum over everything seen. */
  result(): number {
    if (this.reduction === 'sum') return this.total.isStarted ? this.total.value : 0;
    const d = this.den.value;
    return d === 0 ? NaN : this.total.value / d;
  }

  /** Σ loss over everything seen (float64). */
  get sum(): number {
    return this.total.isStarted ? this.total.value : 0;
  }

  /** The mean's denominator over everything seen. */
  get denominator(): number {
    return this.den.isStarted ? this.den.value : 0;
  }

  /** Loss positions seen (ignored ones included). */
  get positions(): number {
    return this.seenPositions;
  }

  get updates(): number {
    return this.seenUpdates;
  }

  /** Forgets everything seen; keeps the options. */
  reset(): this {
    this.total = new KahanSum();
    this.den = new KahanSum();
    this.classes = null;
    this.targetKind = null;
    this.seenPositions = 0;
    this.seenUpdates = 0;
    return this;
  }

  private signature(): string {
    const j = this.toJSON().options;
    return JSON.stringify([j.reduction, j.labelSmoothing, j.ignoreIndex, j.weight === null ? null : j.weight.map((w) => encode(w))]);
  }

  /** Adds what `other` has seen (same options required). Returns this. */
  merge(other: LossAccumulator): this {
    if (!(other instanceof LossAccumulator)) throw typeError('other', 'a LossAccumulator', other);
    if (other.signature() !== this.signature()) {
      throw rangeErrorMessage(
        'Invalid other for LossAccumulator.merge: its options (reduction, labelSmoothing, ignoreIndex, weight) differ from this accumulator\'s; merge only accumulators made with the same options',
      );
    }
    if (other.classes !== null && this.classes !== null && other.classes !== this.classes) {
      throw rangeErrorMessage(`Invalid other for LossAccumulator.merge: it has seen ${other.classes} classes but this one has seen ${this.classes}; merge only accumulators of the same model`);
    }
    if (other.targetKind !== null && this.targetKind !== null && other.targetKind !== this.targetKind) {
      throw rangeErrorMessage('Invalid other for LossAccumulator.merge: one has seen class indices and the other probabilities, whose means have different denominators; keep them in separate accumulators');
    }
    if (other === this) {
      const copy = LossAccumulator.fromJSON(this.toJSON());
      return this.merge(copy);
    }
    this.total.merge(other.total);
    this.den.merge(other.den);
    this.classes ??= other.classes;
    this.targetKind ??= other.targetKind;
    this.seenPositions += other.seenPositions;
    this.seenUpdates += other.seenUpdates;
    return this;
  }

  /** @internal distributed.allReduce(): take `other`'s state (same options). */
  [replaceState](other: LossAccumulator): void {
    this.total = other.total;
    this.den = other.den;
    this.classes = other.classes;
    this.targetKind = other.targetKind;
    this.seenPositions = other.seenPositions;
    this.seenUpdates = other.seenUpdates;
  }

  toJSON(): LossAccumulatorJSON {
    const w = this.opts.weight as number[] | Float32Array | Float64Array | undefined;
    const ii = this.opts.ignoreIndex;
    return {
      type: JSON_TYPE,
      version: 1,
      options: {
        reduction: this.reduction,
        labelSmoothing: (this.opts.labelSmoothing as number | undefined) ?? 0,
        ignoreIndex: String(ii ?? -100),
        weight: w === undefined ? null : Array.from(w),
        weightDType: w === undefined ? null : w instanceof Float32Array ? 'float32' : 'float64',
        device: this.device,
        batchSize: this.batchSize ?? null,
      },
      classes: this.classes,
      target: this.targetKind,
      sum: encode(this.total.isStarted ? this.total.sum : 0),
      sumCompensation: encode(this.total.comp),
      denominator: encode(this.den.isStarted ? this.den.sum : 0),
      denominatorCompensation: encode(this.den.comp),
      positions: this.seenPositions,
      updates: this.seenUpdates,
    };
  }

  /** Rebuilds an accumulator from toJSON()'s output (or its JSON.parse'd text). */
  static fromJSON(json: LossAccumulatorJSON | string): LossAccumulator {
    const j = (typeof json === 'string' ? JSON.parse(json) : json) as LossAccumulatorJSON;
    if (j === null || typeof j !== 'object' || j.type !== JSON_TYPE) {
      throw typeError('json', `a LossAccumulator state (type '${JSON_TYPE}')`, j);
    }
    if (j.version !== 1) throw rangeError('json.version', '1', j.version);
    const o = j.options;
    if (o === null || typeof o !== 'object') throw typeError('json.options', 'an object', o);
    const options: LossAccumulatorOptions = { reduction: o.reduction, labelSmoothing: o.labelSmoothing };
    if (typeof o.ignoreIndex !== 'string' || !/^-?[0-9]+$/.test(o.ignoreIndex)) throw typeError('json.options.ignoreIndex', 'an integer string', o.ignoreIndex);
    const ii = BigInt(o.ignoreIndex);
    options.ignoreIndex = ii >= -(2n ** 53n) && ii <= 2n ** 53n ? Number(ii) : ii;
    if (o.weight !== null && o.weight !== undefined) {
      if (!Array.isArray(o.weight)) throw typeError('json.options.weight', 'an array of numbers or null', o.weight);
      options.weight = o.weightDType === 'float32' ? Float32Array.from(o.weight) : Float64Array.from(o.weight);
    }
    if (o.device !== undefined) options.device = o.device as Device;
    if (o.batchSize !== null && o.batchSize !== undefined) options.batchSize = o.batchSize;
    const acc = new LossAccumulator(options);
    if (j.classes !== null && !(Number.isSafeInteger(j.classes) && j.classes >= 0)) throw typeError('json.classes', 'a class count or null', j.classes);
    if (j.target !== null && j.target !== 'index' && j.target !== 'probability') throw typeError('json.target', "'index', 'probability' or null", j.target);
    if (!Number.isSafeInteger(j.positions) || j.positions < 0) throw typeError('json.positions', 'a non-negative integer', j.positions);
    if (!Number.isSafeInteger(j.updates) || j.updates < 0) throw typeError('json.updates', 'a non-negative integer', j.updates);
    acc.classes = j.classes;
    acc.targetKind = j.target;
    const started = j.updates > 0;
    acc.total = new KahanSum(decode(j.sum, 'sum'), decode(j.sumCompensation, 'sumCompensation'), started);
    acc.den = new KahanSum(decode(j.denominator, 'denominator'), decode(j.denominatorCompensation, 'denominatorCompensation'), started);
    acc.seenPositions = j.positions;
    acc.seenUpdates = j.updates;
    return acc;
  }
}

