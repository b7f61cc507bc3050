/** The Monitor's public types (options, windows, thresholds, counters, saved state). */
import type { AccumulatorState } from '../accumulator';
import type { CalibrationReport } from '../metrics';
import type { CommonOptions, Resolved } from '../options';

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
  /** Keep the window's rows themselves (not only sums), so that fitTemperature(window) and
   * fitCalibrator(window, method) can fit on exactly them. Costs K + 1 numbers a row. Default false. */
  keepRows?: boolean;
}

export type Metric = 'ece' | 'mce' | 'rmsce' | 'classwiseEce' | 'nll' | 'brier' | 'accuracy';
export const METRICS: readonly Metric[] = ['ece', 'mce', 'rmsce', 'classwiseEce', 'nll', 'brier', 'accuracy'];

export interface ThresholdSpec {
  window: string;
  metric: Metric;
  /** Fires when the metric rises above this... */
  above?: number;
  /** ...or falls below this (exactly one of above/below). */
  below?: number;
  /** Only with at least this many rows in the window. Default 1. */
  minSamples?: number;
  /** Watch one segment's window instead of the whole monitor's. */
  segment?: string;
}

export interface ThresholdEvent {
  window: string;
  metric: Metric;
  value: number;
  threshold: number;
  direction: 'above' | 'below';
  n: number;
  report: CalibrationReport;
  /** The segment watched (absent for the whole monitor). */
  segment?: string;
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
  /** At most this many segments get windows of their own; rows of further segments go to the
   * overflow segment ('__overflow__') and are counted in counts.overflow. Default 100. */
  maxSegments?: number;
  /** Keep SmoothECE's grids in every sub-window, so snapshot().smoothEce is exact (about 330 KB per
   * sub-window and segment). Default false: snapshot().smoothEce is then NaN. */
  smoothEce?: boolean;
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
  /** Predictions observed under a segment beyond maxSegments (they went to the overflow segment). */
  overflow: number;
  /** Unlabelled predictions held now (this process only). */
  pending: number;
}

/** A segment's counters (no `unmatched`: a label whose id is unknown has no segment). */
export type SegmentCounts = Omit<MonitorCounts, 'unmatched' | 'overflow'>;

/** One sub-window in a saved state: [index, sums] or, for a keepRows window, [index, sums, rows (n × K, flat), labels]. */
export type BucketState = [number, AccumulatorState] | [number, AccumulatorState, number[], number[]];

export interface WindowState {
  name: string;
  late: number;
  /** keepRows windows only: true when the sums include rows this monitor does not hold (after a merge). */
  rowsIncomplete?: boolean;
  buckets: BucketState[];
}

/** One segment's windows and counters in a saved state. */
export interface SegmentState {
  name: string;
  rows: number;
  counts: Omit<SegmentCounts, 'pending'>;
  windows: WindowState[];
}

/** An unlabelled prediction in a saved state: [id, observed at (ms), scores (K), segment or null]. */
export type PendingState = [string | number, number, number[], string | null];

export interface MonitorState {
  format: 'smoothce.calibration.monitor';
  /** 2 (written now); fromJSON also reads 1 (no pending predictions, segments or kept rows). */
  version: 1 | 2;
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
    maxSegments?: number;
  };
  classes: number | null;
  dtype: 'float32' | 'float64' | null;
  /** Rows labelled so far (the count windows' sequence). */
  rows: number;
  /** The time of the latest reading of the clock (null: never read). */
  now: number | null;
  counts: Omit<MonitorCounts, 'pending' | 'overflow'> & { overflow?: number };
  windows: WindowState[];
  segments?: SegmentState[];
  pending?: PendingState[];
}

/** The Monitor's counters that observe/label/expire bump (internal). */
export type CountKey = 'observed' | 'labelled' | 'expired' | 'dropped' | 'unmatched' | 'late' | 'overflow';
