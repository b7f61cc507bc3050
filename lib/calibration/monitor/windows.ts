/**
 * The Monitor's windows: one WindowSet is a set of windows (the whole monitor's, or one
 * segment's), each a ring of sub-window Accumulators (sufficient statistics, merged on read)
 * whose boundaries fall on sub-window edges:
 *   - a count window { rows: N, step: g } holds the labelled rows, in the order they were
 *     labelled, of the last N / g blocks of g rows, the newest (partial) block included;
 *   - a time window { seconds: T, step: s } holds the labelled rows whose prediction was
 *     observed in the last T / s steps of s seconds, the current (partial) step included.
 */
import { rangeError, typeError } from '../../core/errors';
import { readOptions } from '../../core/options';
import { tensor, type Tensor } from '../../core/tensor';
import { Accumulator, type AccumulatorOptions } from '../accumulator';
import type { CalibrationReport } from '../metrics';
import type { CommonOptions } from '../options';
import type { BucketState, WindowSpec, WindowState } from './types';

export type Row = Float32Array | Float64Array;

export interface Bucket {
  acc: Accumulator | null;
  /** Rows not yet folded into acc. */
  staged: number[];
  stagedLabels: number[];
  /** keepRows: every row of the bucket (flat) and its labels. */
  keptRows?: number[];
  keptLabels?: number[];
}

export interface Window {
  spec: Required<Pick<WindowSpec, 'name' | 'step' | 'keepRows'>> & { rows?: number; seconds?: number };
  kind: 'rows' | 'time';
  /** Number of sub-windows in the window. */
  blocks: number;
  /** Step in rows (count) or ms (time). */
  unit: number;
  buckets: Map<number, Bucket>;
  late: number;
  /** keepRows windows that took sums from other monitors (merge, allReduce) no longer hold all their rows. */
  rowsIncomplete?: boolean;
}

/** What every WindowSet of one monitor shares: the rows' shape and the binning. */
export interface Shared {
  classes: number | null;
  dtype: 'float32' | 'float64' | null;
  accOptions: AccumulatorOptions;
  flushRows: number;
}

function defaultStep(total: number): number {
  for (let d = Math.max(1, Math.floor(total / 10)); d >= 1; d--) if (total % d === 0) return d;
  return 1;
}

export function positiveInt(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw typeError(name, `an integer in [1, ${max}]`, value);
  if (!Number.isInteger(value) || value < 1 || value > max) throw rangeError(name, `an integer in [1, ${max}]`, value);
  return value;
}

/** Validates the `windows` option; returns the resolved specs (steps filled in). */
export function readWindows(value: unknown): Window['spec'][] {
  if (!Array.isArray(value)) throw typeError('windows', 'an array of window specs { name, rows | seconds, step? }', value);
  if (value.length < 1 || value.length > 64) throw rangeError('windows', 'between 1 and 64 windows', value);
  const names = new Set<string>();
  return value.map((w: unknown, i) => {
    const p = `windows[${i}]`;
    const o = readOptions(w, ['name', 'rows', 'seconds', 'step', 'keepRows'], `calibration.Monitor ${p}`);
    if (typeof o.name !== 'string') throw typeError(`${p}.name`, 'a string', o.name);
    if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(o.name)) throw rangeError(`${p}.name`, 'a name of 1 to 64 letters, digits, _ . : or -', o.name);
    if (names.has(o.name)) throw rangeError(`${p}.name`, 'a name no other window has', o.name);
    names.add(o.name);
    if ((o.rows === undefined) === (o.seconds === undefined)) {
      throw rangeError(p, 'exactly one of rows or seconds', w);
    }
    if (o.keepRows !== undefined && typeof o.keepRows !== 'boolean') throw typeError(`${p}.keepRows`, 'a boolean', o.keepRows);
    const kind = o.rows !== undefined ? 'rows' : 'time';
    const total = kind === 'rows' ? positiveInt(o.rows, `${p}.rows`, 1e9) : positiveInt(o.seconds, `${p}.seconds`, 366 * 86400);
    const step = o.step === undefined ? defaultStep(total) : positiveInt(o.step, `${p}.step`, total);
    if (total % step !== 0) throw rangeError(`${p}.step`, `a divisor of ${total}`, step);
    if (total / step > 100_000) throw rangeError(`${p}.step`, `at least ${total / 100_000} (at most 100,000 sub-windows)`, step);
    return { name: o.name, step, keepRows: o.keepRows === true, ...(kind === 'rows' ? { rows: total } : { seconds: total }) };
  });
}

function emptyWindow(spec: Window['spec']): Window {
  const kind = spec.rows !== undefined ? 'rows' : 'time';
  const total = (spec.rows ?? spec.seconds)!;
  return { spec: { ...spec }, kind, blocks: total / spec.step, unit: kind === 'rows' ? spec.step : spec.step * 1000, buckets: new Map(), late: 0 };
}

function newBucket(w: Window): Bucket {
  return { acc: null, staged: [], stagedLabels: [], ...(w.spec.keepRows ? { keptRows: [], keptLabels: [] } : {}) };
}

export class WindowSet {
  readonly windows: Window[];
  readonly byName = new Map<string, Window>();
  /** Rows labelled into this set (the count windows' sequence). */
  rows = 0;
  /** Increments whenever a window's content changes. */
  version = 0;
  readonly #shared: Shared;
  readonly #cache = new Map<string, { key: string; report: CalibrationReport | null }>();

  constructor(specs: readonly Window['spec'][], shared: Shared) {
    this.windows = specs.map(emptyWindow);
    for (const w of this.windows) this.byName.set(w.spec.name, w);
    this.#shared = shared;
  }

  /** The newest sub-window index of w at time `now`. */
  newest(w: Window, now: number): number {
    return w.kind === 'rows' ? Math.floor((this.rows - 1) / w.unit) : Math.floor(now / w.unit);
  }

  prune(w: Window, now: number): void {
    const oldest = this.newest(w, now) - w.blocks;
    for (const index of w.buckets.keys()) if (index <= oldest) w.buckets.delete(index);
  }

  flush(b: Bucket): void {
    if (b.stagedLabels.length === 0) return;
    const n = b.stagedLabels.length;
    const k = this.#shared.classes!;
    const scores = tensor(this.#shared.dtype === 'float32' ? Float32Array.from(b.staged) : Float64Array.from(b.staged), [n, k]);
    const labels = tensor(Int32Array.from(b.stagedLabels), [n]);
    const acc = new Accumulator(this.#shared.accOptions);
    acc.update(scores, labels);
    if (b.acc) b.acc.merge(acc);
    else b.acc = acc;
    b.staged = [];
    b.stagedLabels = [];
  }

  /** Adds a labelled row observed at time t; returns whether it was late for some window and the windows that folded their staged rows in. */
  add(row: Row, label: number, t: number, now: number): { late: boolean; flushed: Window[] } {
    this.version++;
    const seq = this.rows++;
    let late = false;
    const flushed: Window[] = [];
    for (const w of this.windows) {
      const index = w.kind === 'rows' ? Math.floor(seq / w.unit) : Math.floor(t / w.unit);
      if (index <= this.newest(w, now) - w.blocks) {
        w.late++;
        late = true;
        continue;
      }
      let b = w.buckets.get(index);
      if (!b) w.buckets.set(index, (b = newBucket(w)));
      for (let j = 0; j < row.length; j++) b.staged.push(row[j]);
      b.stagedLabels.push(label);
      if (b.keptRows) {
        for (let j = 0; j < row.length; j++) b.keptRows.push(row[j]);
        b.keptLabels!.push(label);
      }
      if (b.stagedLabels.length >= this.#shared.flushRows) {
        this.flush(b);
        flushed.push(w);
      }
      this.prune(w, now);
    }
    return { late, flushed };
  }

  /** The window's sums as one Accumulator (null when it holds no row). */
  merged(w: Window, now: number): Accumulator | null {
    this.prune(w, now);
    let out: Accumulator | null = null;
    for (const b of [...w.buckets.values()]) {
      this.flush(b);
      if (!b.acc) continue;
      if (!out) out = new Accumulator(this.#shared.accOptions);
      out.merge(b.acc);
    }
    return out;
  }

  /** calibration.report over the window's rows, cached until the window changes (a copy each call). */
  snapshot(w: Window, now: number): CalibrationReport | null {
    const key = `${this.version}:${this.newest(w, now)}`;
    const hit = this.#cache.get(w.spec.name);
    if (hit && hit.key === key) return hit.report === null ? null : structuredClone(hit.report);
    const acc = this.merged(w, now);
    const report = acc ? acc.report() : null;
    this.#cache.set(w.spec.name, { key, report });
    return report === null ? null : structuredClone(report);
  }

  bounds(w: Window, now: number): { kind: 'rows'; firstRow: number; endRow: number } | { kind: 'time'; from: number; to: number } {
    const newest = this.newest(w, now);
    if (w.kind === 'rows') return { kind: 'rows', firstRow: Math.max(0, (newest - w.blocks + 1) * w.unit), endRow: this.rows };
    return { kind: 'time', from: (newest - w.blocks + 1) * w.unit, to: (newest + 1) * w.unit };
  }

  /** The rows a keepRows window holds (null when none); the caller checks keepRows and rowsIncomplete. */
  keptRows(w: Window, now: number): { scores: Tensor; labels: Tensor } | null {
    this.prune(w, now);
    const rows: number[] = [];
    const labels: number[] = [];
    for (const index of [...w.buckets.keys()].sort((a, b) => a - b)) {
      const b = w.buckets.get(index)!;
      for (const v of b.keptRows ?? []) rows.push(v);
      for (const v of b.keptLabels ?? []) labels.push(v);
    }
    if (labels.length === 0) return null;
    const k = this.#shared.classes!;
    return {
      scores: tensor(this.#shared.dtype === 'float32' ? Float32Array.from(rows) : Float64Array.from(rows), [labels.length, k]),
      labels: tensor(Int32Array.from(labels), [labels.length]),
    };
  }

  /** The windows as saved state (pruned, staged rows folded in). */
  toState(now: number): WindowState[] {
    return this.windows.map((w) => {
      this.prune(w, now);
      const buckets: BucketState[] = [];
      for (const [index, b] of [...w.buckets.entries()].sort((x, y) => x[0] - y[0])) {
        this.flush(b);
        if (!b.acc) continue;
        const sums = b.acc.toJSON();
        // An Accumulator restored from JSON carries `adaptive: undefined`; JSON text has no such key.
        if (sums.stats) delete (sums.stats as { adaptive?: unknown }).adaptive;
        buckets.push(b.keptRows && !w.rowsIncomplete ? [index, sums, b.keptRows.slice(), b.keptLabels!.slice()] : [index, sums]);
      }
      return { name: w.spec.name, late: w.late, ...(w.spec.keepRows ? { rowsIncomplete: w.rowsIncomplete === true } : {}), buckets };
    });
  }

  /** Loads validated saved windows (state.ts has checked them against this set's windows). */
  load(rows: number, windows: readonly WindowState[]): void {
    this.rows = rows;
    windows.forEach((sw, i) => {
      const w = this.windows[i];
      w.late = sw.late;
      if (w.spec.keepRows) w.rowsIncomplete = sw.rowsIncomplete === true;
      for (const entry of sw.buckets) {
        const b: Bucket = { acc: Accumulator.fromJSON(entry[1]), staged: [], stagedLabels: [] };
        if (w.spec.keepRows) {
          if (entry.length === 4) [b.keptRows, b.keptLabels] = [entry[2].slice(), entry[3].slice()];
          else {
            // A state without the rows (version 1): the sums are there, the rows are not.
            [b.keptRows, b.keptLabels] = [[], []];
            w.rowsIncomplete = true;
          }
        }
        w.buckets.set(entry[0], b);
      }
    });
    this.version++;
  }

  /**
   * Adds another set's windows (same specs). Time windows merge sub-window by sub-window;
   * count windows by position from the newest sub-window.
   */
  mergeFrom(other: WindowSet): void {
    this.windows.forEach((w, i) => {
      const ow = other.windows[i];
      w.late += ow.late;
      if (ow.buckets.size === 0) return;
      if (w.spec.keepRows) w.rowsIncomplete = true;
      // Count windows: align the newest sub-windows (each instance numbers its own rows).
      const shift = w.kind === 'rows' ? (this.rows > 0 ? Math.floor((this.rows - 1) / w.unit) : Math.floor((other.rows - 1) / w.unit)) - Math.floor((other.rows - 1) / ow.unit) : 0;
      for (const [index, ob] of ow.buckets) {
        other.flush(ob);
        if (!ob.acc) continue;
        const target = index + shift;
        const mine = w.buckets.get(target);
        if (!mine) w.buckets.set(target, { ...newBucket(w), acc: Accumulator.fromJSON(ob.acc.toJSON()) });
        else if (mine.acc) mine.acc.merge(ob.acc);
        else mine.acc = Accumulator.fromJSON(ob.acc.toJSON());
      }
    });
    if (this.rows === 0) this.rows = other.rows;
    this.version++;
  }

  /** Takes `other`'s windows (distributed allReduce); keepRows windows then hold sums only. */
  replaceWith(other: WindowSet): void {
    this.rows = other.rows;
    this.windows.forEach((w, i) => {
      w.buckets = other.windows[i].buckets;
      w.late = other.windows[i].late;
      if (w.spec.keepRows) w.rowsIncomplete = true;
    });
    this.version++;
  }
}
