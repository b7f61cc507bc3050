/**
 * calibration.Monitor: the calibration of a live model over sliding windows, with labels
 * that arrive after the predictions.
 *
 *   observe(id, logits)   holds the prediction (a copy of its row), unlabelled
 *   label(id, y)          joins the label; the row enters every window
 *   snapshot(window)      the calibration.report of exactly the rows in that window
 *
 * Windows are exact: each is a ring of sub-window Accumulators (sufficient statistics,
 * merged on read), and its boundaries fall on sub-window edges (see windowBounds()):
 *   - a count window { rows: N, step: g } holds the labelled rows, in the order they were
 *     labelled, of the last N / g blocks of g rows, the newest (partial) block included;
 *   - a time window { seconds: T, step: s } holds the labelled rows whose prediction was
 *     observed in the last T / s steps of s seconds, the current (partial) step included.
 * Unlabelled predictions wait at most ttlMs and at most maxPending of them are held; the
 * rest are counted (expired, dropped), never lost silently. Definitions: docs/serving.md.
 */
import { inconsistent, rangeError, typeError } from '../core/errors';
import { readOptions } from '../core/options';
import { replaceState } from '../core/state';
import { checkTensor, tensor, type Tensor } from '../core/tensor';
import type { TensorInput } from '../core/device';
import { Accumulator, type AccumulatorState } from './accumulator';
import { fitTemperature, fitTemperatureAsync, type TemperatureFit } from './temperature';
import type { CalibrationReport } from './metrics';
import { registerMonitorMetrics, type MetricsOptions } from './prometheus';
import { COMMON_OPTION_NAMES, resolveCommon, type CommonOptions, type Resolved } from './options';

export interface WindowSpec {
  /** The window's name: its key in snapshot() and its `window` label in Prometheus (e.g. '1m', 'last1000'). */
  name: string;
  /** A count window: the last `rows` labelled predictions. */
  rows?: number;
  /** A time window: predictions observed in the last `seconds` seconds. */
  seconds?: number;
  /** Sub-window size, in rows or in seconds; must divide `rows` / `seconds`. Default: a tenth
   * of the window when that divides it (else the largest divisor at most a tenth; 1 at least). */
  step?: number;
  /** Keep the window's rows themselves (not only sums), so that fitTemperature(window) can
   * fit on exactly them. Costs K + 1 numbers a row. Default false. */
  keepRows?: boolean;
}

export type Metric = 'ece' | 'mce' | 'rmsce' | 'classwiseEce' | 'nll' | 'brier' | 'accuracy';
const METRICS: readonly Metric[] = ['ece', 'mce', 'rmsce', 'classwiseEce', 'nll', 'brier', 'accuracy'];

export interface ThresholdSpec {
  window: string;
  metric: Metric;
  /** Fires when the metric rises above this... */
  above?: number;
  /** ...or falls below this (exactly one of above/below). */
  below?: number;
  /** Only with at least this many rows in the window. Default 1. */
  minSamples?: number;
}

export interface ThresholdEvent {
  window: string;
  metric: Metric;
  value: number;
  threshold: number;
  direction: 'above' | 'below';
  n: number;
  report: CalibrationReport;
}

export interface MonitorOptions extends CommonOptions {
  /** The windows (at least one; names unique). */
  windows: WindowSpec[];
  /** How long an unlabelled prediction waits for its label, in ms. Default 3,600,000 (1 h). */
  ttlMs?: number;
  /** At most this many unlabelled predictions are held; observing one more drops the oldest. Default 100,000. */
  maxPending?: number;
  /** Labelled rows staged per sub-window before they are folded into its sums. Default 256. */
  flushRows?: number;
  /** Milliseconds since the epoch; default Date.now. Tests inject their own. A clock that goes
   * back is read as standing still. */
  clock?: () => number;
}

/** Counters, all since the monitor was made (merged monitors add them). */
export interface MonitorCounts {
  /** Predictions observed. */
  observed: number;
  /** Labels that found their prediction (rows that entered the windows). */
  labelled: number;
  /** Predictions whose label did not come within ttlMs. */
  expired: number;
  /** Predictions dropped unlabelled because maxPending were already held. */
  dropped: number;
  /** label() calls whose id was not (or no longer) pending. */
  unmatched: number;
  /** Rows labelled too late for a time window (their step had left it); per window in lateByWindow. */
  late: number;
  /** Unlabelled predictions held now (this process only). */
  pending: number;
}

export interface MonitorState {
  format: 'smoothce.calibration.monitor';
  version: 1;
  options: {
    from: 'logits' | 'probs';
    bins: number;
    convention: Resolved['convention'];
    temperature: number;
    tolerance: number;
    windows: WindowSpec[];
    ttlMs: number;
    maxPending: number;
    flushRows: number;
  };
  classes: number | null;
  dtype: 'float32' | 'float64' | null;
  /** Rows labelled so far (the count windows' sequence). */
  rows: number;
  /** The time of the latest reading of the clock. */
  now: number;
  counts: Omit<MonitorCounts, 'pending'>;
  windows: { name: string; late: number; buckets: [number, AccumulatorState][] }[];
}

const MONITOR_OPTION_NAMES = [...COMMON_OPTION_NAMES.filter((n) => n !== 'device'), 'windows', 'ttlMs', 'maxPending', 'flushRows', 'clock'];

type Row = Float32Array | Float64Array;

interface Bucket {
  acc: Accumulator | null;
  /** Rows not yet folded into acc. */
  staged: number[];
  stagedLabels: number[];
  /** keepRows: every row of the bucket (flat) and its labels. */
  keptRows?: number[];
  keptLabels?: number[];
}

interface Window {
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

type CountKey = 'observed' | 'labelled' | 'expired' | 'dropped' | 'unmatched' | 'late';

interface Pending {
  row: Row;
  t: number;
}

function defaultStep(total: number): number {
  for (let d = Math.max(1, Math.floor(total / 10)); d >= 1; d--) if (total % d === 0) return d;
  return 1;
}

function positiveInt(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw typeError(name, `an integer in [1, ${max}]`, value);
  if (!Number.isInteger(value) || value < 1 || value > max) throw rangeError(name, `an integer in [1, ${max}]`, value);
  return value;
}

function readWindows(value: unknown): Window[] {
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
    const blocks = total / step;
    if (blocks > 100_000) throw rangeError(`${p}.step`, `at least ${total / 100_000} (at most 100,000 sub-windows)`, step);
    return {
      spec: { name: o.name, step, keepRows: o.keepRows === true, ...(kind === 'rows' ? { rows: total } : { seconds: total }) },
      kind,
      blocks,
      unit: kind === 'rows' ? step : step * 1000,
      buckets: new Map(),
      late: 0,
    } satisfies Window;
  });
}

function checkId(id: unknown, name: string): string | number {
  if (typeof id === 'string') {
    if (id.length < 1 || id.length > 256) throw rangeError(name, 'a string of 1 to 256 characters', id);
    return id;
  }
  if (typeof id === 'number') {
    if (!Number.isSafeInteger(id)) throw rangeError(name, 'a safe integer', id);
    return id;
  }
  throw typeError(name, 'a string or an integer', id);
}

interface Threshold {
  spec: Required<Pick<ThresholdSpec, 'window' | 'metric' | 'minSamples'>>;
  direction: 'above' | 'below';
  threshold: number;
  callback: (event: ThresholdEvent) => void;
  firing: boolean;
}

export class Monitor {
  readonly #options: Resolved;
  readonly #windows: Window[];
  readonly #byName = new Map<string, Window>();
  readonly #ttlMs: number;
  readonly #maxPending: number;
  readonly #flushRows: number;
  readonly #clock: () => number;
  readonly #pending = new Map<string | number, Pending>();
  #classes: number | null = null;
  #dtype: 'float32' | 'float64' | null = null;
  #rows = 0;
  #now = -Infinity;
  #counts = { observed: 0, labelled: 0, expired: 0, dropped: 0, unmatched: 0, late: 0 };
  #version = 0;
  #cache = new Map<string, { key: string; report: CalibrationReport | null }>();
  #thresholds: Threshold[] = [];

  constructor(options: MonitorOptions) {
    if (options === undefined) throw typeError('options', 'an options object with windows for calibration.Monitor', options);
    const o = readOptions(options, MONITOR_OPTION_NAMES, 'calibration.Monitor');
    this.#options = resolveCommon({ ...o, windows: undefined, ttlMs: undefined, maxPending: undefined, flushRows: undefined, clock: undefined }, 'logits');
    this.#windows = readWindows(o.windows);
    for (const w of this.#windows) this.#byName.set(w.spec.name, w);
    this.#ttlMs = o.ttlMs === undefined ? 3_600_000 : positiveInt(o.ttlMs, 'ttlMs', 366 * 86_400_000);
    this.#maxPending = o.maxPending === undefined ? 100_000 : positiveInt(o.maxPending, 'maxPending', 1e8);
    this.#flushRows = o.flushRows === undefined ? 256 : positiveInt(o.flushRows, 'flushRows', 1 << 20);
    if (o.clock !== undefined && typeof o.clock !== 'function') throw typeError('clock', 'a function returning milliseconds', o.clock);
    this.#clock = (o.clock as (() => number) | undefined) ?? Date.now;
  }

  /** The windows, as resolved (steps filled in). */
  get windows(): WindowSpec[] {
    return this.#windows.map((w) => ({ ...w.spec }));
  }

  /** Number of classes K (null before the first observe). */
  get classes(): number | null {
    return this.#classes;
  }

  get counts(): MonitorCounts {
    this.#tick();
    return { ...this.#counts, pending: this.#pending.size };
  }

  /** Late rows per time window (see MonitorCounts.late). */
  get lateByWindow(): Record<string, number> {
    return Object.fromEntries(this.#windows.map((w) => [w.spec.name, w.late]));
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
      this.#counts.expired++;
    }
    return now;
  }

  /**
   * Records predictions: one id and its scores (shape [K] or [1, K]), or an array of n ids
   * and scores of shape [n, K]. The rows are copied. Returns the number recorded.
   */
  observe(id: string | number | readonly (string | number)[], scores: TensorInput): number {
    const t = checkTensor(scores, 'scores');
    if (t.dtype !== 'float32' && t.dtype !== 'float64') throw typeError('scores.dtype', "'float32' or 'float64'", t.dtype);
    const ids: unknown[] = Array.isArray(id) ? id : [id];
    const many = Array.isArray(id);
    let n: number;
    let k: number;
    if (t.shape.length === 1 && !many) [n, k] = [1, t.shape[0]];
    else if (t.shape.length === 2) [n, k] = t.shape as [number, number];
    else throw inconsistent('scores', `expected shape ${many ? '[n, K]' : '[K] or [1, K]'} but received [${t.shape.join(', ')}]`);
    if (n !== ids.length) throw inconsistent('scores', `${ids.length} id(s) but ${n} row(s)`);
    if (k < 2) throw inconsistent('scores', `expected at least 2 classes (K >= 2) but received shape [${t.shape.join(', ')}]`);
    if (this.#classes !== null && k !== this.#classes) throw inconsistent('scores', `this monitor has K = ${this.#classes} classes but the scores have K = ${k}`);
    if (this.#dtype !== null && t.dtype !== this.#dtype) {
      throw inconsistent('scores.dtype', `this monitor holds ${this.#dtype} scores but received ${t.dtype} (the windows' reports must match calibration.report on the rows as given)`);
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
    this.#classes = k;
    this.#dtype = t.dtype;
    for (let i = 0; i < n; i++) {
      while (this.#pending.size >= this.#maxPending) {
        const oldest = this.#pending.keys().next().value as string | number;
        this.#pending.delete(oldest);
        this.#counts.dropped++;
      }
      this.#pending.set(keys[i], { row: data.slice(i * k, (i + 1) * k), t: now });
      this.#counts.observed++;
    }
    return n;
  }

  /** Joins the label y (an integer class index) to the prediction observed as id.
   * Returns false (and counts it as unmatched) when no such prediction is waiting. */
  label(id: string | number, y: number | bigint): boolean {
    const key = checkId(id, 'id');
    let label: number;
    if (typeof y === 'bigint') label = Number(y);
    else if (typeof y === 'number') label = y;
    else throw typeError('label', 'an integer class index', y);
    if (!Number.isInteger(label) || label < 0 || (this.#classes !== null && label >= this.#classes)) {
      throw rangeError('label', `an integer class index in [0, ${this.#classes === null ? 'K' : this.#classes - 1}]`, y);
    }
    this.#tick();
    const p = this.#pending.get(key);
    if (!p) {
      this.#counts.unmatched++;
      return false;
    }
    this.#pending.delete(key);
    this.#counts.labelled++;
    this.#version++;
    const seq = this.#rows++;
    let lateAnywhere = false;
    const flushed: Window[] = [];
    for (const w of this.#windows) {
      const index = w.kind === 'rows' ? Math.floor(seq / w.unit) : Math.floor(p.t / w.unit);
      if (index <= this.#newest(w) - w.blocks) {
        w.late++;
        lateAnywhere = true;
        continue;
      }
      let b = w.buckets.get(index);
      if (!b) {
        b = { acc: null, staged: [], stagedLabels: [], ...(w.spec.keepRows ? { keptRows: [], keptLabels: [] } : {}) };
        w.buckets.set(index, b);
      }
      for (let j = 0; j < p.row.length; j++) b.staged.push(p.row[j]);
      b.stagedLabels.push(label);
      if (b.keptRows) {
        for (let j = 0; j < p.row.length; j++) b.keptRows.push(p.row[j]);
        b.keptLabels!.push(label);
      }
      if (b.stagedLabels.length >= this.#flushRows) {
        this.#flush(b);
        flushed.push(w);
      }
      this.#prune(w);
    }
    if (lateAnywhere) this.#counts.late++;
    for (const w of flushed) this.#checkWindow(w);
    return true;
  }

  /** The newest sub-window index of w now. */
  #newest(w: Window): number {
    return w.kind === 'rows' ? Math.floor((this.#rows - 1) / w.unit) : Math.floor(this.#now / w.unit);
  }

  #prune(w: Window): void {
    const oldest = this.#newest(w) - w.blocks;
    for (const index of w.buckets.keys()) if (index <= oldest) w.buckets.delete(index);
  }

  #flush(b: Bucket): void {
    if (b.stagedLabels.length === 0) return;
    const n = b.stagedLabels.length;
    const k = this.#classes!;
    const scores = tensor(this.#dtype === 'float32' ? Float32Array.from(b.staged) : Float64Array.from(b.staged), [n, k]);
    const labels = tensor(Int32Array.from(b.stagedLabels), [n]);
    const acc = new Accumulator(this.#accOptions());
    acc.update(scores, labels);
    if (b.acc) b.acc.merge(acc);
    else b.acc = acc;
    b.staged = [];
    b.stagedLabels = [];
  }

  #accOptions(): CommonOptions {
    const { from, bins, convention, temperature, tolerance } = this.#options;
    return { from, bins, convention, temperature, tolerance };
  }

  #window(name: unknown): Window {
    if (typeof name !== 'string') throw typeError('window', 'the name of a window', name);
    const w = this.#byName.get(name);
    if (!w) throw rangeError('window', `one of ${[...this.#byName.keys()].map((n) => `'${n}'`).join(', ')}`, name);
    return w;
  }

  /**
   * Which rows the window holds now: for a count window the labelled rows numbered
   * [firstRow, endRow) in label order (0-based); for a time window the labelled rows whose
   * prediction was observed at a clock time in [from, to) ms.
   */
  windowBounds(window: string): { kind: 'rows'; firstRow: number; endRow: number } | { kind: 'time'; from: number; to: number } {
    const w = this.#window(window);
    this.#tick();
    const newest = this.#newest(w);
    if (w.kind === 'rows') return { kind: 'rows', firstRow: Math.max(0, (newest - w.blocks + 1) * w.unit), endRow: this.#rows };
    return { kind: 'time', from: (newest - w.blocks + 1) * w.unit, to: (newest + 1) * w.unit };
  }

  /** The window's sums as one Accumulator (null when it holds no row). */
  #merged(w: Window): Accumulator | null {
    this.#prune(w);
    let out: Accumulator | null = null;
    for (const b of [...w.buckets.values()]) {
      this.#flush(b);
      if (!b.acc) continue;
      if (!out) out = new Accumulator(this.#accOptions());
      out.merge(b.acc);
    }
    return out;
  }

  /**
   * calibration.report over exactly the rows in the window (windowBounds()), from the
   * sub-windows' sums: every field equals report() on those rows within float64 rounding
   * (counts exactly), except adaptiveEce, which is null (equal-mass bins cannot be summed).
   * null while the window holds no row.
   */
  snapshot(window: string): CalibrationReport | null {
    const w = this.#window(window);
    this.#tick();
    const key = `${this.#version}:${this.#newest(w)}`;
    const hit = this.#cache.get(w.spec.name);
    if (hit && hit.key === key) return hit.report === null ? null : structuredClone(hit.report);
    const acc = this.#merged(w);
    const report = acc ? acc.report() : null;
    this.#cache.set(w.spec.name, { key, report });
    return report === null ? null : structuredClone(report);
  }

  /** Every window's snapshot, by name. */
  snapshots(): Record<string, CalibrationReport | null> {
    return Object.fromEntries(this.#windows.map((w) => [w.spec.name, this.snapshot(w.spec.name)]));
  }

  #keptRows(window: string): { scores: Tensor; labels: Tensor } | null {
    const w = this.#window(window);
    if (!w.spec.keepRows) throw rangeError('window', `a window made with keepRows: true ('${w.spec.name}' keeps only sums)`, window);
    if (w.rowsIncomplete) {
      throw rangeError('window', `a window that holds its rows ('${w.spec.name}' has merged sums from other monitors, whose rows are not here)`, window);
    }
    this.#tick();
    this.#prune(w);
    const rows: number[] = [];
    const labels: number[] = [];
    for (const index of [...w.buckets.keys()].sort((a, b) => a - b)) {
      const b = w.buckets.get(index)!;
      for (const v of b.keptRows!) rows.push(v);
      for (const v of b.keptLabels!) labels.push(v);
    }
    if (labels.length === 0) return null;
    const k = this.#classes!;
    return {
      scores: tensor(this.#dtype === 'float32' ? Float32Array.from(rows) : Float64Array.from(rows), [labels.length, k]),
      labels: tensor(Int32Array.from(labels), [labels.length]),
    };
  }

  /** calibration.fitTemperature on exactly the window's rows (a keepRows window of logits); null when empty. */
  fitTemperature(window: string): TemperatureFit | null {
    if (this.#options.from !== 'logits') throw rangeError('from', "'logits' to fit a temperature", this.#options.from);
    const r = this.#keptRows(window);
    return r ? fitTemperature(r.scores, r.labels, { bins: this.#options.bins, convention: this.#options.convention }) : null;
  }

  /** fitTemperature(window) on the libuv pool. */
  async fitTemperatureAsync(window: string): Promise<TemperatureFit | null> {
    if (this.#options.from !== 'logits') throw rangeError('from', "'logits' to fit a temperature", this.#options.from);
    const r = this.#keptRows(window);
    return r ? fitTemperatureAsync(r.scores, r.labels, { bins: this.#options.bins, convention: this.#options.convention }) : null;
  }

  /**
   * Calls `callback` when the window's metric crosses the threshold (above or below) with at
   * least minSamples rows. Checked whenever the window folds staged rows into its sums
   * (every flushRows labels per sub-window) and on check(). It fires once per crossing (again
   * only after the condition was false), in a microtask: an exception it throws is uncaught,
   * as in an event listener. Returns a function that removes it.
   */
  onThreshold(spec: ThresholdSpec, callback: (event: ThresholdEvent) => void): () => void {
    const o = readOptions(spec, ['window', 'metric', 'above', 'below', 'minSamples'], 'Monitor.onThreshold');
    const w = this.#window(o.window);
    if (typeof o.metric !== 'string') throw typeError('metric', `one of ${METRICS.join(', ')}`, o.metric);
    if (!METRICS.includes(o.metric as Metric)) throw rangeError('metric', `one of ${METRICS.join(', ')}`, o.metric);
    if ((o.above === undefined) === (o.below === undefined)) throw rangeError('spec', 'exactly one of above or below', spec);
    const threshold = (o.above ?? o.below) as unknown;
    if (typeof threshold !== 'number' || Number.isNaN(threshold)) throw typeError(o.above !== undefined ? 'above' : 'below', 'a number', threshold);
    const minSamples = o.minSamples === undefined ? 1 : positiveInt(o.minSamples, 'minSamples');
    if (typeof callback !== 'function') throw typeError('callback', 'a function', callback);
    const t: Threshold = {
      spec: { window: w.spec.name, metric: o.metric as Metric, minSamples },
      direction: o.above !== undefined ? 'above' : 'below',
      threshold,
      callback,
      firing: false,
    };
    this.#thresholds.push(t);
    return () => {
      this.#thresholds = this.#thresholds.filter((x) => x !== t);
    };
  }

  /** Evaluates every threshold now. */
  check(): void {
    for (const w of this.#windows) this.#checkWindow(w);
  }

  #checkWindow(w: Window): void {
    const mine = this.#thresholds.filter((t) => t.spec.window === w.spec.name);
    if (mine.length === 0) return;
    const report = this.snapshot(w.spec.name);
    for (const t of mine) {
      const value = report ? (report[t.spec.metric] as number) : NaN;
      const on =
        report !== null && report.n >= t.spec.minSamples && (t.direction === 'above' ? value > t.threshold : value < t.threshold);
      if (on && !t.firing) {
        const event: ThresholdEvent = { window: w.spec.name, metric: t.spec.metric, value, threshold: t.threshold, direction: t.direction, n: report!.n, report: report! };
        queueMicrotask(() => t.callback(event));
      }
      t.firing = on;
    }
  }

  /**
   * Exports this monitor's windows and counters to Prometheus through prom-client (an
   * optional peer dependency), labelled model=options.model. Returns a function that
   * unregisters them. Metric names: lib/calibration/prometheus.ts, docs/serving.md.
   */
  registerMetrics(options?: MetricsOptions): () => void {
    return registerMonitorMetrics(this, options);
  }

  /** Increments whenever a window's content changes (for caches such as the Prometheus collector). */
  get version(): number {
    return this.#version;
  }

  /** The windows' sums and the counters as plain JSON (unlabelled predictions stay local). */
  toJSON(): MonitorState {
    // No clock reading here (nor in fromJSON, merge, clone): distributed.allReduce runs
    // them on copies whose clock is Date.now.
    const { from, bins, convention, temperature, tolerance } = this.#options;
    return {
      format: 'smoothce.calibration.monitor',
      version: 1,
      options: {
        from,
        bins,
        convention,
        temperature,
        tolerance,
        windows: this.#windows.map((w) => ({ ...w.spec })),
        ttlMs: this.#ttlMs,
        maxPending: this.#maxPending,
        flushRows: this.#flushRows,
      },
      classes: this.#classes,
      dtype: this.#dtype,
      rows: this.#rows,
      now: this.#now,
      counts: { ...this.#counts },
      windows: this.#windows.map((w) => {
        this.#prune(w);
        const buckets: [number, AccumulatorState][] = [];
        for (const [index, b] of [...w.buckets.entries()].sort((x, y) => x[0] - y[0])) {
          this.#flush(b);
          if (b.acc) buckets.push([index, b.acc.toJSON()]);
        }
        return { name: w.spec.name, late: w.late, buckets };
      }),
    };
  }

  /** Rebuilds a monitor from toJSON()'s output (an object or its JSON text). keepRows windows come back with sums only. */
  static fromJSON(state: unknown, options?: { clock?: () => number }): Monitor {
    const value: unknown = typeof state === 'string' ? JSON.parse(state) : state;
    if (value === null || typeof value !== 'object') throw typeError('state', 'a Monitor state object or JSON text', state);
    const v = value as Partial<MonitorState>;
    if (v.format !== 'smoothce.calibration.monitor' || v.version !== 1) throw rangeError('state.format', "'smoothce.calibration.monitor' version 1", v.format);
    if (!v.options || typeof v.options !== 'object' || !Array.isArray(v.windows) || !v.counts) throw rangeError('state', 'a state written by Monitor.toJSON()', state);
    const o = v.options;
    const m = new Monitor({
      from: o.from,
      bins: o.bins,
      convention: o.convention,
      temperature: o.temperature,
      tolerance: o.tolerance,
      windows: o.windows.map((w) => ({ ...w, keepRows: false })),
      ttlMs: o.ttlMs,
      maxPending: o.maxPending,
      flushRows: o.flushRows,
      ...(options?.clock ? { clock: options.clock } : {}),
    });
    if (v.classes !== null && (!Number.isSafeInteger(v.classes) || (v.classes as number) < 2)) throw rangeError('state.classes', 'an integer >= 2 or null', v.classes);
    if (v.dtype !== null && v.dtype !== 'float32' && v.dtype !== 'float64') throw rangeError('state.dtype', "'float32', 'float64' or null", v.dtype);
    if (!Number.isSafeInteger(v.rows) || (v.rows as number) < 0) throw rangeError('state.rows', 'a non-negative integer', v.rows);
    m.#classes = v.classes ?? null;
    m.#dtype = v.dtype ?? null;
    m.#rows = v.rows as number;
    m.#now = typeof v.now === 'number' ? v.now : -Infinity;
    for (const key of Object.keys(m.#counts) as CountKey[]) {
      const c = (v.counts as Record<string, unknown>)[key];
      if (!Number.isSafeInteger(c) || (c as number) < 0) throw rangeError(`state.counts.${key}`, 'a non-negative integer', c);
      m.#counts[key] = c as number;
    }
    if (v.windows.length !== m.#windows.length) throw rangeError('state.windows', `${m.#windows.length} windows`, v.windows);
    v.windows.forEach((sw, i) => {
      const w = m.#windows[i];
      if (!sw || sw.name !== w.spec.name || !Array.isArray(sw.buckets)) throw rangeError(`state.windows[${i}]`, `window '${w.spec.name}'`, sw);
      w.late = Number.isSafeInteger(sw.late) ? sw.late : 0;
      for (const entry of sw.buckets) {
        if (!Array.isArray(entry) || !Number.isSafeInteger(entry[0])) throw rangeError(`state.windows[${i}].buckets`, '[index, AccumulatorState] pairs', entry);
        w.buckets.set(entry[0], { acc: Accumulator.fromJSON(entry[1]), staged: [], stagedLabels: [] });
      }
    });
    m.#version++;
    return m;
  }

  /**
   * Adds another monitor's windows and counters (same options and windows). Time windows
   * merge sub-window by sub-window (same clock times: instances should share a wall clock);
   * count windows merge by position from the newest sub-window, so the merged window holds
   * every instance's last N rows. Returns this.
   */
  merge(other: unknown): this {
    if (!(other instanceof Monitor)) throw typeError('other', 'a calibration.Monitor', other);
    const a = this.toJSON().options;
    const b = other.toJSON().options;
    const strip = (o: MonitorState['options']) => JSON.stringify({ ...o, windows: o.windows.map((w) => ({ ...w, keepRows: false })) });
    if (strip(a) !== strip(b)) throw inconsistent('other', 'its options or windows differ from this monitor\'s');
    if (this.#classes !== null && other.#classes !== null && this.#classes !== other.#classes) {
      throw inconsistent('other', `it has K = ${other.#classes} classes but this monitor has K = ${this.#classes}`);
    }
    if (this.#dtype !== null && other.#dtype !== null && this.#dtype !== other.#dtype) {
      throw inconsistent('other', `it holds ${other.#dtype} scores but this monitor holds ${this.#dtype}`);
    }
    this.#classes ??= other.#classes;
    this.#dtype ??= other.#dtype;
    if (other.#now > this.#now) this.#now = other.#now;
    for (const key of Object.keys(this.#counts) as CountKey[]) this.#counts[key] += other.#counts[key];
    this.#windows.forEach((w, i) => {
      const ow = other.#windows[i];
      w.late += ow.late;
      if (ow.buckets.size === 0) return;
      if (w.spec.keepRows) w.rowsIncomplete = true;
      // Count windows: align the newest sub-windows (each instance numbers its own rows).
      const shift = w.kind === 'rows' ? (this.#rows > 0 ? this.#newest(w) : Math.floor((other.#rows - 1) / w.unit)) - Math.floor((other.#rows - 1) / ow.unit) : 0;
      for (const [index, ob] of ow.buckets) {
        other.#flush(ob);
        if (!ob.acc) continue;
        const target = index + shift;
        const mine = w.buckets.get(target);
        if (!mine) w.buckets.set(target, { acc: Accumulator.fromJSON(ob.acc.toJSON()), staged: [], stagedLabels: [], ...(w.spec.keepRows ? { keptRows: [], keptLabels: [] } : {}) });
        else if (mine.acc) mine.acc.merge(ob.acc);
        else mine.acc = Accumulator.fromJSON(ob.acc.toJSON());
      }
    });
    if (this.#rows === 0) this.#rows = other.#rows;
    this.#version++;
    return this;
  }

  /** A copy of the windows and counters (not the pending predictions or thresholds): what
   * to hand to distributed's group.allReduce() to get the global windows. */
  clone(): Monitor {
    return Monitor.fromJSON(this.toJSON(), { clock: this.#clock });
  }

  /** @internal distributed.allReduce(): take `other`'s windows and counters. */
  [replaceState](other: Monitor): void {
    const copy = Monitor.fromJSON(other.toJSON(), { clock: this.#clock });
    this.#classes = copy.#classes;
    this.#dtype = copy.#dtype;
    this.#rows = copy.#rows;
    this.#now = Math.max(this.#now, copy.#now);
    this.#counts = copy.#counts;
    this.#windows.forEach((w, i) => {
      w.buckets = copy.#windows[i].buckets;
      w.late = copy.#windows[i].late;
      if (w.spec.keepRows) w.rowsIncomplete = true;
    });
    this.#version++;
  }
}
