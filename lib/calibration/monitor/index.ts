/**
 * calibration.Monitor: the calibration of a live model over sliding windows, with labels
 * that arrive after the predictions.
 *
 *   observe(id, logits, { segment })  holds the prediction (a copy of its row), unlabelled
 *   label(id, y)                      joins the label; the row enters every window (the whole
 *                                     monitor's, and its segment's)
 *   snapshot(window, segment?)        the calibration.report of exactly the rows in that window
 *
 * The windows: ./windows.ts. Segments: ./segments.ts. Saved state and its checks: ./state.ts.
 * Unlabelled predictions wait at most ttlMs and at most maxPending of them are held; the
 * rest are counted (expired, dropped), never lost silently. Definitions: docs/serving.md,
 * docs/monitoring.md.
 */
import { inconsistent, rangeError, typeError } from '../../core/errors';
import { readOptions } from '../../core/options';
import { replaceState } from '../../core/state';
import { checkTensor } from '../../core/tensor';
import type { TensorInput } from '../../core/device';
import type { AccumulatorOptions } from '../accumulator';
import type { CalibrationReport } from '../metrics';
import { registerMonitorMetrics, type MetricsOptions } from '../prometheus';
import { COMMON_OPTION_NAMES, resolveCommon, type Resolved } from '../options';
import { fitTemperature, fitTemperatureAsync, type TemperatureFit } from '../temperature';
import { fitCalibrator, fitCalibratorAsync, type CalibratorLike, type MonitorFitOptions } from './calibrator';
import { readCheckpoint, writeFileAtomic, writeFileAtomicAsync } from './file';
import { checkId, type Pending } from './pending';
import { checkSegment, DEFAULT_MAX_SEGMENTS, OVERFLOW_SEGMENT, Segments, zeroSegmentCounts, type Segment } from './segments';
import { asStateError, checkInvariants, checkState, parseState } from './state';
import { evaluate, readThreshold, type Threshold } from './thresholds';
import { type CountKey, type MonitorCounts, type MonitorOptions, type MonitorState, type PendingState, type SegmentCounts, type ThresholdEvent, type ThresholdSpec, type WindowSpec } from './types';
import { positiveInt, readWindows, WindowSet, type Row, type Shared, type Window } from './windows';

export type { CalibratorLike, MonitorFitOptions } from './calibrator';
export type * from './types';

const MONITOR_OPTION_NAMES = [...COMMON_OPTION_NAMES.filter((n) => n !== 'device'), 'windows', 'ttlMs', 'maxPending', 'flushRows', 'maxSegments', 'smoothEce', 'clock'];

export class Monitor {
  readonly #options: Resolved;
  readonly #specs: Window['spec'][];
  readonly #ttlMs: number;
  readonly #maxPending: number;
  readonly #clock: () => number;
  readonly #shared: Shared;
  readonly #all: WindowSet;
  readonly #segments: Segments;
  readonly #pending = new Map<string | number, Pending>();
  readonly #pendingBySegment = new Map<string, number>();
  #now = -Infinity;
  #counts = { observed: 0, labelled: 0, expired: 0, dropped: 0, unmatched: 0, late: 0, overflow: 0 };
  #version = 0;
  #thresholds: Threshold[] = [];

  constructor(options: MonitorOptions) {
    if (options === undefined) throw typeError('options', 'an options object with windows for calibration.Monitor', options);
    const o = readOptions(options, MONITOR_OPTION_NAMES, 'calibration.Monitor');
    this.#options = resolveCommon({ ...o, windows: undefined, ttlMs: undefined, maxPending: undefined, flushRows: undefined, maxSegments: undefined, clock: undefined }, 'logits');
    this.#specs = readWindows(o.windows);
    this.#ttlMs = o.ttlMs === undefined ? 3_600_000 : positiveInt(o.ttlMs, 'ttlMs', 366 * 86_400_000);
    this.#maxPending = o.maxPending === undefined ? 100_000 : positiveInt(o.maxPending, 'maxPending', 1e8);
    const flushRows = o.flushRows === undefined ? 256 : positiveInt(o.flushRows, 'flushRows', 1 << 20);
    const maxSegments = o.maxSegments === undefined ? DEFAULT_MAX_SEGMENTS : positiveInt(o.maxSegments, 'maxSegments', 100_000);
    if (o.clock !== undefined && typeof o.clock !== 'function') throw typeError('clock', 'a function returning milliseconds', o.clock);
    this.#clock = (o.clock as (() => number) | undefined) ?? Date.now;
    if (o.smoothEce !== undefined && typeof o.smoothEce !== 'boolean') throw typeError('smoothEce', 'a boolean', o.smoothEce);
    const { from, bins, convention, temperature, tolerance } = this.#options; // SmoothECE grids (~330 KB a sub-window): opt-in
    const accOptions: AccumulatorOptions = { from, bins, convention, temperature, tolerance, smoothEce: o.smoothEce === true };
    this.#shared = { classes: null, dtype: null, accOptions, flushRows };
    this.#all = new WindowSet(this.#specs, this.#shared);
    this.#segments = new Segments(this.#specs, this.#shared, maxSegments);
  }

  /** The windows, as resolved (steps filled in). */
  get windows(): WindowSpec[] {
    return this.#specs.map((s) => ({ ...s }));
  }

  /** Number of classes K (null before the first observe). */
  get classes(): number | null {
    return this.#shared.classes;
  }

  get counts(): MonitorCounts {
    this.#tick();
    return { ...this.#counts, pending: this.#pending.size };
  }

  /** Late rows per time window (see MonitorCounts.late). */
  get lateByWindow(): Record<string, number> {
    return Object.fromEntries(this.#all.windows.map((w) => [w.spec.name, w.late]));
  }

  /** The segments that have windows of their own, in the order they were made (the overflow one included once used). */
  get segments(): string[] {
    return [...this.#segments.map.keys()];
  }

  /** The most segments with windows of their own (option maxSegments). */
  get maxSegments(): number {
    return this.#segments.max;
  }

  /** One segment's counters (null for a segment not seen). */
  segmentCounts(segment: string): SegmentCounts | null {
    const s = this.#segment(segment);
    if (!s) return null;
    this.#tick();
    return { ...s.counts, pending: this.#pendingBySegment.get(s.name) ?? 0 };
  }

  #segment(segment: unknown): Segment | null {
    return this.#segments.map.get(checkSegment(segment, 'segment', true)) ?? null;
  }

  /** The window set of a segment (the whole monitor's for undefined; null for a segment not seen). */
  #set(segment: unknown): WindowSet | null {
    return segment === undefined ? this.#all : (this.#segment(segment)?.set ?? null);
  }

  #settle(p: Pending, key: 'expired' | 'dropped' | 'labelled'): Segment | null {
    this.#counts[key]++;
    if (p.segment === null) return null;
    const n = this.#pendingBySegment.get(p.segment) ?? 0;
    if (n <= 1) this.#pendingBySegment.delete(p.segment);
    else this.#pendingBySegment.set(p.segment, n - 1);
    // A segment can be gone after an allReduce gave it to the overflow segment.
    const s = this.#segments.map.get(p.segment) ?? (key === 'labelled' ? this.#segments.resolve(p.segment).segment : null);
    if (s) s.counts[key]++;
    return s;
  }

  /** Reads the clock (never backwards) and expires what waited longer than ttlMs. */
  #tick(): number {
    const t = this.#clock();
    if (typeof t !== 'number' || !Number.isFinite(t)) throw typeError('clock()', 'a finite number of milliseconds', t);
    if (t > this.#now) this.#now = t;
    const now = this.#now;
    // Insertion order is time order (the clock never goes back), so the oldest are first.
    for (const [id, p] of this.#pending) {
      if (now - p.t < this.#ttlMs) break;
      this.#pending.delete(id);
      this.#settle(p, 'expired');
    }
    return now;
  }

  /**
   * Records predictions: one id and its scores (shape [K] or [1, K]), or an array of n ids
   * and scores of shape [n, K]. The rows are copied. `options.segment` (a string: a model
   * version, a tenant) puts them in that segment too. Returns the number recorded.
   */
  observe(id: string | number | readonly (string | number)[], scores: TensorInput, options?: { segment?: string }): number {
    const t = checkTensor(scores, 'scores');
    if (t.dtype !== 'float32' && t.dtype !== 'float64') throw typeError('scores.dtype', "'float32' or 'float64'", t.dtype);
    const o = readOptions(options, ['segment'], 'Monitor.observe');
    const segment = o.segment === undefined ? null : checkSegment(o.segment, 'segment');
    const ids: unknown[] = Array.isArray(id) ? id : [id];
    const many = Array.isArray(id);
    let n: number;
    let k: number;
    if (t.shape.length === 1 && !many) [n, k] = [1, t.shape[0]];
    else if (t.shape.length === 2) [n, k] = t.shape as [number, number];
    else throw inconsistent('scores', `expected shape ${many ? '[n, K]' : '[K] or [1, K]'} but received [${t.shape.join(', ')}]`);
    if (n !== ids.length) throw inconsistent('scores', `${ids.length} id(s) but ${n} row(s)`);
    if (k < 2) throw inconsistent('scores', `expected at least 2 classes (K >= 2) but received shape [${t.shape.join(', ')}]`);
    const { classes, dtype } = this.#shared;
    if (classes !== null && k !== classes) throw inconsistent('scores', `this monitor has K = ${classes} classes but the scores have K = ${k}`);
    if (dtype !== null && t.dtype !== dtype) {
      throw inconsistent('scores.dtype', `this monitor holds ${dtype} scores but received ${t.dtype} (the windows' reports must match calibration.report on the rows as given)`);
    }
    const keys = ids.map((x, i) => checkId(x, many ? `id[${i}]` : 'id'));
    const seen = new Set<string | number>();
    for (const [i, key] of keys.entries()) {
      if (this.#pending.has(key) || seen.has(key)) throw inconsistent(many ? `id[${i}]` : 'id', `${JSON.stringify(key)} is already waiting for its label`);
      seen.add(key);
    }
    const data = t.data as Row;
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw rangeError(`scores.data[${i}]`, 'a finite number', data[i]);
    }
    const now = this.#tick();
    this.#shared.classes = k;
    this.#shared.dtype = t.dtype;
    let seg: Segment | null = null;
    if (segment !== null) {
      const r = this.#segments.resolve(segment);
      seg = r.segment;
      if (r.overflow) this.#counts.overflow += n;
    }
    for (let i = 0; i < n; i++) {
      while (this.#pending.size >= this.#maxPending) {
        const oldest = this.#pending.keys().next().value as string | number;
        const p = this.#pending.get(oldest)!;
        this.#pending.delete(oldest);
        this.#settle(p, 'dropped');
      }
      this.#pending.set(keys[i], { row: data.slice(i * k, (i + 1) * k), t: now, segment: seg?.name ?? null });
      this.#counts.observed++;
      if (seg) {
        seg.counts.observed++;
        this.#pendingBySegment.set(seg.name, (this.#pendingBySegment.get(seg.name) ?? 0) + 1);
      }
    }
    return n;
  }

  /** Joins the label y (an integer class index) to the prediction observed as id (it
   * counts in the segment the prediction was observed under). Returns false (and counts it
   * as unmatched) when no such prediction is waiting. */
  label(id: string | number, y: number | bigint): boolean {
    const key = checkId(id, 'id');
    const classes = this.#shared.classes;
    let label: number;
    if (typeof y === 'bigint') label = Number(y);
    else if (typeof y === 'number') label = y;
    else throw typeError('label', 'an integer class index', y);
    if (!Number.isInteger(label) || label < 0 || (classes !== null && label >= classes)) {
      throw rangeError('label', `an integer class index in [0, ${classes === null ? 'K' : classes - 1}]`, y);
    }
    const now = this.#tick();
    const p = this.#pending.get(key);
    if (!p) {
      this.#counts.unmatched++;
      return false;
    }
    this.#pending.delete(key);
    const seg = this.#settle(p, 'labelled');
    this.#version++;
    const all = this.#all.add(p.row, label, p.t, now);
    if (all.late) this.#counts.late++;
    const mine = seg ? seg.set.add(p.row, label, p.t, now) : null;
    if (seg && mine!.late) seg.counts.late++;
    for (const w of all.flushed) this.#checkWindow(this.#all, undefined, w);
    if (seg) for (const w of mine!.flushed) this.#checkWindow(seg.set, seg.name, w);
    return true;
  }

  #window(set: WindowSet, name: unknown): Window {
    if (typeof name !== 'string') throw typeError('window', 'the name of a window', name);
    const w = set.byName.get(name);
    if (!w) throw rangeError('window', `one of ${[...set.byName.keys()].map((n) => `'${n}'`).join(', ')}`, name);
    return w;
  }

  /**
   * Which rows the window holds now: for a count window the labelled rows numbered
   * [firstRow, endRow) in label order (0-based; a segment numbers its own); for a time window
   * the labelled rows whose prediction was observed at a clock time in [from, to) ms.
   */
  windowBounds(window: string, segment?: string): { kind: 'rows'; firstRow: number; endRow: number } | { kind: 'time'; from: number; to: number } {
    const set = this.#set(segment) ?? new WindowSet(this.#specs, this.#shared);
    const w = this.#window(set, window);
    return set.bounds(w, this.#tick());
  }

  /**
   * calibration.report over exactly the rows in the window (windowBounds()), from the
   * sub-windows' sums: every field equals report() on those rows within float64 rounding
   * (counts exactly), except adaptiveEce, which is null (equal-mass bins cannot be summed).
   * With `segment`, the window over that segment's rows only. null while the window holds
   * no row (or the segment has none).
   */
  snapshot(window: string, segment?: string): CalibrationReport | null {
    const set = this.#set(segment);
    const w = this.#window(set ?? this.#all, window);
    const now = this.#tick();
    return set ? set.snapshot(w, now) : null;
  }

  /** Every window's snapshot, by name (of one segment, with `segment`). */
  snapshots(segment?: string): Record<string, CalibrationReport | null> {
    return Object.fromEntries(this.#specs.map((s) => [s.name, this.snapshot(s.name, segment)]));
  }

  #keptRows(window: string, segment: string | undefined): ReturnType<WindowSet['keptRows']> {
    const set = this.#set(segment);
    const w = this.#window(set ?? this.#all, window);
    if (!w.spec.keepRows) throw rangeError('window', `a window made with keepRows: true ('${w.spec.name}' keeps only sums)`, window);
    if (set && set.byName.get(w.spec.name)!.rowsIncomplete) {
      throw rangeError('window', `a window that holds its rows ('${w.spec.name}' has merged sums from other monitors, whose rows are not here)`, window);
    }
    const now = this.#tick();
    return set ? set.keptRows(set.byName.get(w.spec.name)!, now) : null;
  }

  #fitOptions(): { bins: number; convention: Resolved['convention'] } {
    if (this.#options.from !== 'logits') throw rangeError('from', "'logits' to fit a temperature", this.#options.from);
    return { bins: this.#options.bins, convention: this.#options.convention };
  }

  /** calibration.fitTemperature on exactly the window's rows (a keepRows window of logits; of one segment with `segment`); null when empty. */
  fitTemperature(window: string, segment?: string): TemperatureFit | null {
    const options = this.#fitOptions();
    const r = this.#keptRows(window, segment);
    return r ? fitTemperature(r.scores, r.labels, options) : null;
  }

  /** fitTemperature(window) on the libuv pool. */
  async fitTemperatureAsync(window: string, segment?: string): Promise<TemperatureFit | null> {
    const options = this.#fitOptions();
    const r = this.#keptRows(window, segment);
    return r ? fitTemperatureAsync(r.scores, r.labels, options) : null;
  }

  /** calibration.fitCalibrator on a keepRows window's rows (of one segment with `segment`), with the monitor's `from`; null when empty. */
  fitCalibrator(window: string, method: string, segment?: string, options?: MonitorFitOptions): CalibratorLike | null {
    const r = this.#keptRows(window, segment);
    return r ? fitCalibrator(r.scores, r.labels, method, this.#options.from, options) : null;
  }

  /** fitCalibrator off the event loop (calibration.fitCalibratorAsync). */
  async fitCalibratorAsync(window: string, method: string, segment?: string, options?: MonitorFitOptions): Promise<CalibratorLike | null> {
    const r = this.#keptRows(window, segment);
    return r ? fitCalibratorAsync(r.scores, r.labels, method, this.#options.from, options) : null;
  }

  /**
   * Calls `callback` when the window's metric crosses the threshold (above or below) with at
   * least minSamples rows (the window of one segment with spec.segment). Checked whenever the
   * window folds staged rows into its sums (every flushRows labels per sub-window) and on
   * check(). It fires once per crossing (again only after the condition was false), in a
   * microtask: an exception it throws is uncaught, as in an event listener. Returns a
   * function that removes it.
   */
  onThreshold(spec: ThresholdSpec, callback: (event: ThresholdEvent) => void): () => void {
    const t = readThreshold(spec, callback, (name) => this.#window(this.#all, name).spec.name);
    this.#thresholds.push(t);
    return () => {
      this.#thresholds = this.#thresholds.filter((x) => x !== t);
    };
  }

  /** Evaluates every threshold now. */
  check(): void {
    for (const w of this.#all.windows) this.#checkWindow(this.#all, undefined, w);
    for (const s of this.#segments.map.values()) for (const w of s.set.windows) this.#checkWindow(s.set, s.name, w);
  }

  #checkWindow(set: WindowSet, segment: string | undefined, w: Window): void {
    const mine = this.#thresholds.filter((t) => t.spec.window === w.spec.name && t.spec.segment === segment);
    if (mine.length > 0) evaluate(mine, set.snapshot(w, this.#tick()));
  }

  /**
   * Exports this monitor's windows (and its segments', labelled `segment`) and counters to
   * Prometheus through prom-client (an optional peer dependency), labelled
   * model=options.model. Returns a function that unregisters them. Metric names:
   * lib/calibration/prometheus.ts, docs/serving.md.
   */
  registerMetrics(options?: MetricsOptions): () => void {
    return registerMonitorMetrics(this, options);
  }

  /** Increments whenever a window's content changes (for caches such as the Prometheus collector). */
  get version(): number {
    return this.#version;
  }

  #optionsState(): MonitorState['options'] {
    const { from, bins, convention, temperature, tolerance } = this.#options;
    return { from, bins, convention, temperature, tolerance, windows: this.windows, ttlMs: this.#ttlMs, maxPending: this.#maxPending, flushRows: this.#shared.flushRows, maxSegments: this.#segments.max, ...(this.#shared.accOptions.smoothEce ? { smoothEce: true } : {}) };
  }

  #state(withPending: boolean): MonitorState {
    // No clock reading here (nor in fromJSON, merge, clone): distributed.allReduce runs
    // them on copies whose clock is Date.now.
    const now = this.#now;
    const pending: PendingState[] = withPending ? [...this.#pending].map(([id, p]) => [id, p.t, Array.from(p.row), p.segment]) : [];
    return {
      format: 'smoothce.calibration.monitor',
      version: 2,
      options: this.#optionsState(),
      classes: this.#shared.classes,
      dtype: this.#shared.dtype,
      rows: this.#all.rows,
      now: Number.isFinite(now) ? now : null,
      counts: { ...this.#counts },
      windows: this.#all.toState(now),
      segments: [...this.#segments.map.values()].map((s) => ({ name: s.name, rows: s.set.rows, counts: { ...s.counts }, windows: s.set.toState(now) })),
      pending,
    };
  }

  /** The whole state as plain JSON: windows (kept rows included), segments, counters and the unlabelled predictions. */
  toJSON(): MonitorState {
    return this.#state(true);
  }

  /**
   * Rebuilds a monitor from toJSON()'s output (an object or its JSON text), pending
   * predictions and kept rows included. Every field is checked first: a state that is not
   * one toJSON() can write is refused with a TypeError or RangeError with code
   * ERR_SMOOTHCE_STATE_FORMAT (docs/monitoring.md lists the checks).
   */
  static fromJSON(state: unknown, options?: { clock?: () => number }): Monitor {
    const o = readOptions(options, ['clock'], 'Monitor.fromJSON');
    const s = checkState(parseState(state));
    let m: Monitor;
    try {
      m = new Monitor({ ...s.options, ...(o.clock !== undefined ? { clock: o.clock as () => number } : {}) } as MonitorOptions);
    } catch (err) {
      throw asStateError(err);
    }
    checkInvariants(s, { specs: m.#specs, accOptions: m.#shared.accOptions, maxPending: m.#maxPending, maxSegments: m.#segments.max });
    m.#shared.classes = s.classes;
    m.#shared.dtype = s.dtype;
    m.#now = s.now ?? -Infinity;
    m.#counts = { ...s.counts, overflow: s.counts.overflow ?? 0 };
    m.#all.load(s.rows, s.windows);
    for (const seg of s.segments ?? []) {
      const made: Segment = { name: seg.name, set: new WindowSet(m.#specs, m.#shared), counts: { ...zeroSegmentCounts(), ...seg.counts } };
      made.set.load(seg.rows, seg.windows);
      m.#segments.map.set(seg.name, made);
    }
    const Ctor = s.dtype === 'float32' ? Float32Array : Float64Array;
    for (const [id, t, row, segment] of s.pending ?? []) {
      m.#pending.set(id, { row: Ctor.from(row), t, segment });
      if (segment !== null) m.#pendingBySegment.set(segment, (m.#pendingBySegment.get(segment) ?? 0) + 1);
    }
    m.#version++;
    return m;
  }

  /**
   * Writes toJSON() to `path` so that a crash at any moment leaves the old file or the new
   * one: a temporary file in the same directory, fsynced, renamed over `path`, and the
   * directory fsynced.
   */
  save(path: string): void {
    if (typeof path !== 'string' || path.length === 0) throw typeError('path', 'a file path', path);
    writeFileAtomic(path, JSON.stringify(this.toJSON()));
  }

  /** save(path) with asynchronous file I/O (the state is taken when the call is made). */
  async saveAsync(path: string): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw typeError('path', 'a file path', path);
    await writeFileAtomicAsync(path, JSON.stringify(this.toJSON()));
  }

  /**
   * Monitor.fromJSON of a file written by save(): only a regular file of at most
   * options.maxBytes (default 1 GiB) is read; its state is checked like fromJSON's.
   */
  static load(path: string, options?: { clock?: () => number; maxBytes?: number }): Monitor {
    if (typeof path !== 'string' || path.length === 0) throw typeError('path', 'a file path', path);
    const o = readOptions(options, ['clock', 'maxBytes'], 'Monitor.load');
    const text = readCheckpoint(path, o.maxBytes as number | undefined);
    return Monitor.fromJSON(text, o.clock !== undefined ? { clock: o.clock as () => number } : undefined);
  }

  /**
   * Adds another monitor's windows, segments and counters (same options and windows; the
   * pending predictions stay with each). Time windows merge sub-window by sub-window (same
   * clock times: instances should share a wall clock); count windows merge by position from
   * the newest sub-window, so the merged window holds every instance's last N rows. Segments
   * merge by name; past maxSegments they go to the overflow segment. Returns this.
   */
  merge(other: unknown): this {
    if (!(other instanceof Monitor)) throw typeError('other', 'a calibration.Monitor', other);
    const strip = (o: MonitorState['options']) => JSON.stringify({ ...o, maxSegments: undefined, windows: o.windows.map((w) => ({ ...w, keepRows: false })) });
    if (strip(this.#optionsState()) !== strip(other.#optionsState())) throw inconsistent('other', "its options or windows differ from this monitor's");
    const mine = this.#shared;
    const theirs = other.#shared;
    if (mine.classes !== null && theirs.classes !== null && mine.classes !== theirs.classes) {
      throw inconsistent('other', `it has K = ${theirs.classes} classes but this monitor has K = ${mine.classes}`);
    }
    if (mine.dtype !== null && theirs.dtype !== null && mine.dtype !== theirs.dtype) {
      throw inconsistent('other', `it holds ${theirs.dtype} scores but this monitor holds ${mine.dtype}`);
    }
    mine.classes ??= theirs.classes;
    mine.dtype ??= theirs.dtype;
    if (other.#now > this.#now) this.#now = other.#now;
    for (const key of Object.keys(this.#counts) as CountKey[]) this.#counts[key] += other.#counts[key];
    this.#all.mergeFrom(other.#all);
    this.#counts.overflow += this.#segments.mergeFrom(other.#segments);
    this.#version++;
    return this;
  }

  /** A copy of the windows, segments and counters (not the pending predictions or
   * thresholds): what to hand to distributed's group.allReduce() to get the global windows. */
  clone(): Monitor {
    return Monitor.fromJSON(this.#state(false), { clock: this.#clock });
  }

  /** @internal distributed.allReduce(): take `other`'s windows, segments and counters (the pending predictions stay). */
  [replaceState](other: Monitor): void {
    const copy = Monitor.fromJSON(other.#state(false), { clock: this.#clock });
    this.#shared.classes = copy.#shared.classes;
    this.#shared.dtype = copy.#shared.dtype;
    this.#now = Math.max(this.#now, copy.#now);
    this.#counts = copy.#counts;
    this.#all.replaceWith(copy.#all);
    this.#segments.replaceWith(copy.#segments);
    this.#version++;
  }
}

export { OVERFLOW_SEGMENT };
