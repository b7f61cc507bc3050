/**
 * Streaming calibration scoring in constant memory. An Accumulator keeps only sums:
 * per-bin counts, confidence sums and hit sums (top-label and per class), and the
 * NLL/Brier sums, so millions of rows cost a few kilobytes, and partial results from
 * workers merge by adding. Counts merge exactly; the floating-point sums agree with a
 * single pass up to summation order (about 1e-15 relative).
 *
 * Equal-mass (quantile) bins need every confidence at once and cannot be streamed, so
 * an Accumulator's report has adaptiveEce: null (omitted, not approximated) and says so
 * in its notes.
 */
import type { TensorInput } from '../core/device';
import { inconsistent, rangeError, rangeErrorMessage, typeError } from '../core/errors';
import { readOptions, type Device } from '../core/options';
import { buildReport, type BinTable, type CalibrationReport, type Stats } from './metrics';
import { computeStats, computeStatsAsync } from './compute';
import { checkInputs, COMMON_OPTION_NAMES, CONVENTIONS, resolveCommon, type CommonOptions, type Convention, type Resolved } from './options';
import { batchWork } from './row-extras';
import { gridSize, runSliced, runSync, SmoothEceGrids } from './smooth-ece';
import { curveFromGrid } from './smooth-curve';
import { replaceState } from '../core/state';

export interface AccumulatorOptions extends CommonOptions {
  /**
   * Keep the SmoothECE grids (default true): report().smoothEce is then exact. They cost about
   * 330 KB per accumulator (and in its JSON, base64) and ten grid updates per row; false drops
   * them (smoothEce is then NaN), e.g. for many small sub-window accumulators.
   */
  smoothEce?: boolean;
}

/** The JSON form of an Accumulator (toJSON / fromJSON). */
export interface AccumulatorState {
  format: 'smoothce.calibration.accumulator';
  version: 1;
  options: { from: 'logits' | 'probs'; bins: number; convention: Convention; temperature: number; tolerance: number; device: string; smoothEce?: boolean };
  stats: Stats | null;
  /** SmoothECE grids (smooth-ece.ts SmoothEceGrids.toJSON); absent in states written before they existed. */
  smooth?: ReturnType<SmoothEceGrids['toJSON']>;
}

const ADAPTIVE_NOTE =
  'adaptiveEce is omitted (null) in an Accumulator report: equal-mass bins need all confidences at once and ' +
  'cannot be streamed exactly; use calibration.report on the full data for it. aurc is omitted (null) for the same ' +
  'reason (the risk–coverage ranking needs every row). smoothEce is exact (the accumulator keeps its grids); its ' +
  'curve has no bootstrap band.';
const NO_SMOOTH_NOTE = 'smoothEce is NaN: this accumulator keeps no SmoothECE grids (smoothEce: false, or a state written without them).';

function addTables(a: BinTable, b: BinTable): BinTable {
  return {
    edges: a.edges.slice(),
    count: a.count.map((v, i) => v + b.count[i]),
    confSum: a.confSum.map((v, i) => v + b.confSum[i]),
    accSum: a.accSum.map((v, i) => v + b.accSum[i]),
  };
}

function sameEdges(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

const BATCH_WANT = { classwise: true, adaptive: false, rows: true } as const;

interface Batch {
  stats: Stats;
  smooth: SmoothEceGrids | null;
}

export class Accumulator {
  readonly #options: Resolved;
  readonly #keepSmooth: boolean;
  #stats: Stats | null = null;
  #smooth: SmoothEceGrids | null = null;

  constructor(options?: AccumulatorOptions) {
    const opts = readOptions(options, [...COMMON_OPTION_NAMES, 'smoothEce'], 'calibration.Accumulator');
    this.#options = resolveCommon(opts);
    if (opts.smoothEce !== undefined && typeof opts.smoothEce !== 'boolean') throw typeError('smoothEce', 'a boolean', opts.smoothEce);
    this.#keepSmooth = opts.smoothEce !== false;
  }

  /** The options this accumulator bins with (a copy). */
  get options(): Resolved & { smoothEce: boolean } {
    return { ...this.#options, smoothEce: this.#keepSmooth };
  }

  /** Number of samples seen so far. */
  get n(): number {
    return this.#stats?.n ?? 0;
  }

  /** Adds a batch: scores (N, K) and labels (N). Returns this. */
  update(scores: TensorInput, labels: TensorInput): this {
    const inp = checkInputs(scores, labels);
    if (this.#stats && inp.k !== this.#stats.classes) {
      throw inconsistent('scores', `this accumulator has K = ${this.#stats.classes} classes but the batch has K = ${inp.k}`);
    }
    const s = computeStats(inp.scores, inp.labels, this.#options, BATCH_WANT);
    this.#add(this.#batch(s, runSync(batchWork(s.rows!, this.#rowOptions(s)))));
    return this;
  }

  #rowOptions(s: Stats) {
    return { convention: this.#options.convention, edges: s.top.edges, grids: this.#keepSmooth };
  }

  /** The batch's sums plus its top-label table and SmoothECE grids (from the native per-row values). */
  #batch(s: Stats, w: { topLabel: BinTable; grids: SmoothEceGrids | null }): Batch {
    const { rows: _rows, ...sums } = s; // the per-row values are not kept
    return { stats: { ...sums, topLabel: w.topLabel }, smooth: w.grids };
  }

  /**
   * update() with the native pass on the libuv thread pool (the same function, so the same
   * sums). Inputs follow crossEntropyAsync's rules: an ordinary ArrayBuffer is copied when
   * the call starts, a SharedArrayBuffer is read in place until the promise settles.
   * Concurrent updateAsync calls compute in parallel but are added in call order, so the
   * sums are the bits that update() called in the same order gives. Resolves to this;
   * every error, argument or data, rejects (nothing is added then).
   */
  async updateAsync(scores: TensorInput, labels: TensorInput): Promise<this> {
    const callSite = new Error();
    const inp = checkInputs(scores, labels);
    if (this.#stats && inp.k !== this.#stats.classes) {
      throw inconsistent('scores', `this accumulator has K = ${this.#stats.classes} classes but the batch has K = ${inp.k}`);
    }
    const computed = computeStatsAsync(inp.scores, inp.labels, this.#options, BATCH_WANT, 'scores', callSite).then(async (s) =>
      this.#batch(s, await runSliced(batchWork(s.rows!, this.#rowOptions(s)))),
    );
    // Handled below once the earlier updates are added; mark it now so that an early
    // rejection is not reported as unhandled in the meantime.
    computed.catch(() => undefined);
    const previous = this.#chain;
    const added = previous.then(() => computed).then((b) => {
      if (this.#stats && b.stats.classes !== this.#stats.classes) {
        throw inconsistent('scores', `this accumulator has K = ${this.#stats.classes} classes but the batch has K = ${b.stats.classes}`);
      }
      this.#add(b);
      return this;
    });
    this.#chain = added.then(
      () => undefined,
      () => undefined,
    );
    return added;
  }

  #chain: Promise<void> = Promise.resolve();

  /** Adds another accumulator's sums (same options and K). Returns this. */
  merge(other: Accumulator): this {
    if (!(other instanceof Accumulator)) throw typeError('other', 'a calibration.Accumulator', other);
    const o = other.#options;
    const m = this.#options;
    for (const key of ['from', 'bins', 'convention', 'temperature'] as const) {
      if (o[key] !== m[key]) {
        throw inconsistent('other', `its ${key} is ${JSON.stringify(o[key])} but this accumulator's is ${JSON.stringify(m[key])}`);
      }
    }
    if (other.#keepSmooth !== this.#keepSmooth) {
      throw inconsistent('other', `its smoothEce is ${other.#keepSmooth} but this accumulator's is ${this.#keepSmooth}`);
    }
    if (other.#stats) this.#add({ stats: other.#stats, smooth: other.#smooth });
    return this;
  }

  /** @internal distributed.allReduce(): take `other`'s state (same options). */
  [replaceState](other: Accumulator): void {
    this.#stats = other.#stats ? structuredClone(other.#stats) : null;
    this.#smooth = other.#smooth ? new SmoothEceGrids().merge(other.#smooth) : null;
  }

  #add(batch: Batch): void {
    const s = batch.stats;
    const t = this.#stats;
    if (!t) {
      this.#stats = structuredClone(s);
      this.#smooth = batch.smooth ? new SmoothEceGrids().merge(batch.smooth) : null;
      return;
    }
    if (s.classes !== t.classes) {
      throw inconsistent('other', `it has K = ${s.classes} classes but this accumulator has K = ${t.classes}`);
    }
    if (!sameEdges(s.top.edges, t.top.edges)) throw inconsistent('other', 'its bin edges differ from this accumulator\'s');
    this.#stats = {
      n: t.n + s.n,
      classes: t.classes,
      correct: t.correct + s.correct,
      nllSum: t.nllSum + s.nllSum,
      brierSum: t.brierSum + s.brierSum,
      nllClamped: t.nllClamped + s.nllClamped,
      top: addTables(t.top, s.top),
      classwise: t.classwise && s.classwise ? addTables(t.classwise, s.classwise) : undefined,
      topLabel: t.topLabel && s.topLabel ? addTables(t.topLabel, s.topLabel) : undefined,
    };
    this.#smooth = this.#smooth && batch.smooth ? this.#smooth.merge(batch.smooth) : null;
  }

  /** The report over everything added so far (adaptiveEce: null; see the class comment). */
  report(): CalibrationReport {
    if (!this.#stats) throw rangeErrorMessage('Invalid accumulator: it has no samples yet; call update() with at least one batch first');
    const smooth = this.#smooth?.result();
    if (!smooth) return buildReport(this.#stats, this.#options.convention, this.#options.temperature, [ADAPTIVE_NOTE, NO_SMOOTH_NOTE]);
    const curve = { ...runSync(curveFromGrid(this.#smooth!.grid(gridSize(smooth.bandwidth)), smooth.bandwidth, this.#stats.n)), bandwidth: smooth.bandwidth, bootstrap: 0 };
    return buildReport(this.#stats, this.#options.convention, this.#options.temperature, [ADAPTIVE_NOTE], { smooth, curve, selective: null });
  }

  toJSON(): AccumulatorState {
    const { from, bins, convention, temperature, tolerance, device } = this.#options;
    return {
      format: 'smoothce.calibration.accumulator',
      version: 1,
      options: { from, bins, convention, temperature, tolerance, device, ...(this.#keepSmooth ? {} : { smoothEce: false }) },
      stats: this.#stats ? structuredClone(this.#stats) : null,
      ...(this.#smooth ? { smooth: this.#smooth.toJSON() } : {}),
    };
  }

  /** Rebuilds an accumulator from toJSON()'s output (an object or its JSON text). */
  static fromJSON(state: unknown): Accumulator {
    const value: unknown = typeof state === 'string' ? JSON.parse(state) : state;
    if (value === null || typeof value !== 'object') throw typeError('state', 'an Accumulator state object or JSON text', state);
    const v = value as Partial<AccumulatorState>;
    if (v.format !== 'smoothce.calibration.accumulator' || v.version !== 1) {
      throw rangeError('state.format', "'smoothce.calibration.accumulator' version 1", v.format);
    }
    if (!v.options || !CONVENTIONS.includes(v.options.convention)) throw rangeError('state.options', 'valid accumulator options', v.options);
    const acc = new Accumulator({ ...v.options, device: v.options.device as Device });
    if (v.stats) {
      const s = v.stats;
      const tableOk = (t: BinTable | undefined, len: number): boolean =>
        !!t &&
        Array.isArray(t.edges) &&
        [t.count, t.confSum, t.accSum].every((a) => Array.isArray(a) && a.length === len && a.every((x) => typeof x === 'number' && Number.isFinite(x)));
      const nb = acc.#options.bins + (acc.#options.convention === 'torchmetrics' ? 1 : 0);
      if (
        !Number.isSafeInteger(s.n) || s.n < 1 || !Number.isSafeInteger(s.classes) || s.classes < 2 ||
        ![s.correct, s.nllSum, s.brierSum, s.nllClamped].every((x) => typeof x === 'number' && Number.isFinite(x)) ||
        !tableOk(s.top, nb) || (s.classwise !== undefined && !tableOk(s.classwise, nb * s.classes)) ||
        (s.topLabel !== undefined && !tableOk(s.topLabel, nb * s.classes))
      ) {
        throw rangeError('state.stats', 'statistics written by Accumulator.toJSON()', s);
      }
      acc.#stats = structuredClone({ ...s, adaptive: undefined });
      acc.#smooth = v.smooth === undefined || !acc.#keepSmooth ? null : SmoothEceGrids.fromJSON(v.smooth, 'state.smooth');
      if (acc.#smooth && acc.#smooth.count !== s.n) throw rangeError('state.smooth.count', `the row count of state.stats (${s.n})`, acc.#smooth.count);
    }
    return acc;
  }
}
