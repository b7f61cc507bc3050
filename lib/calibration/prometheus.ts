/**
 * Prometheus metrics for calibration.Monitor, through prom-client (an optional peer
 * dependency: install it to use this). One set of metrics per registry, shared by every
 * monitor registered on it; each monitor is told apart by its `model` label.
 *
 * Gauges, labelled { model, window }, read from snapshot(window) at scrape time:
 *   smoothce_calibration_ece, _mce, _nll, _brier, _accuracy, _samples (rows in the window),
 *   _temperature (fitted on the window's rows; keepRows windows of logits only);
 *   each segment's windows are the same gauges labelled { model, window, segment }.
 * Counters, labelled { model }:
 *   smoothce_calibration_predictions_observed_total, _labelled_total, _expired_total,
 *   _dropped_total, _overflow_total, smoothce_calibration_labels_unmatched_total;
 * and the gauge smoothce_calibration_predictions_pending.
 * A window that holds no row has no series (rather than a NaN). Names: docs/serving.md.
 */
import { codedError, ERROR_CODES, rangeError, typeError } from '../core/errors';
import { readOptions } from '../core/options';
import type { CalibrationReport } from './metrics';
import type { TemperatureFit } from './temperature';

/** What is read of a calibration.Monitor (structurally, so that this module and ./monitor/ do not import each other). */
export interface MonitorSource {
  readonly windows: readonly { name: string; keepRows?: boolean }[];
  readonly segments: readonly string[];
  readonly version: number;
  readonly counts: Record<'observed' | 'labelled' | 'expired' | 'dropped' | 'unmatched' | 'overflow' | 'pending', number>;
  snapshot(window: string, segment?: string): CalibrationReport | null;
  fitTemperatureAsync(window: string, segment?: string): Promise<TemperatureFit | null>;
}

/** The parts of prom-client used here (any 14.x/15.x). */
interface PromClient {
  Gauge: new (config: Record<string, unknown>) => PromMetric;
  Counter: new (config: Record<string, unknown>) => PromMetric;
  register: PromRegistry;
}
interface PromMetric {
  set(labels: Record<string, string>, value: number): void;
  inc(labels: Record<string, string>, value: number): void;
  reset(): void;
}
interface PromRegistry {
  getSingleMetric(name: string): unknown;
  removeSingleMetric(name: string): void;
}

export interface MetricsOptions {
  /** The `model` label value (default 'default'). */
  model?: string;
  /** A prom-client Registry (default: prom-client's global register). */
  register?: unknown;
  /** Metric name prefix (default 'smoothce_calibration_'). */
  prefix?: string;
  /** The prom-client module to use (default: require('prom-client')). Pass it when your
   * registry comes from another copy of prom-client than the one smoothce resolves. */
  client?: unknown;
}

const GAUGES = [
  ['ece', 'Expected calibration error (l1, uniform bins) of the rows in the window'],
  ['mce', 'Maximum calibration error over the non-empty bins of the window'],
  ['nll', 'Mean negative log-likelihood of the true class over the window'],
  ['brier', 'Multiclass Brier score over the window, in [0, 2]'],
  ['accuracy', 'Top-1 accuracy over the window'],
] as const;

interface Entry {
  monitor: MonitorSource;
  model: string;
  /** By segment and window ('' + window for the whole monitor). */
  temperature: Map<string, { version: number; fit: TemperatureFit | null }>;
}

class Exporter {
  readonly entries = new Set<Entry>();
  readonly names: string[] = [];

  constructor(client: PromClient, register: PromRegistry, prefix: string) {
    const registers = [register];
    const entries = this.entries;
    /** Every window of every monitor: the whole monitor's (no segment label), then each segment's. */
    const forEachWindow = (fn: (e: Entry, window: string, keepRows: boolean, segment: string | undefined, labels: Record<string, string>) => void): void => {
      for (const e of entries) {
        const windows = e.monitor.windows;
        for (const segment of [undefined, ...e.monitor.segments]) {
          for (const w of windows) fn(e, w.name, w.keepRows === true, segment, segment === undefined ? { model: e.model, window: w.name } : { model: e.model, window: w.name, segment });
        }
      }
    };
    const add = (Kind: PromClient['Gauge'], name: string, help: string, labelNames: string[], collect: (this: PromMetric) => void | Promise<void>): void => {
      new Kind({ name: prefix + name, help, labelNames, registers, collect });
      this.names.push(prefix + name);
    };
    const windowLabels = ['model', 'window', 'segment'];
    for (const [metric, help] of GAUGES) {
      add(client.Gauge, metric, help, windowLabels, function () {
        this.reset();
        forEachWindow((e, window, _keep, segment, labels) => {
          const s = e.monitor.snapshot(window, segment);
          if (s) this.set(labels, s[metric]);
        });
      });
    }
    add(client.Gauge, 'samples', 'Labelled predictions in the window', windowLabels, function () {
      this.reset();
      forEachWindow((e, window, _keep, segment, labels) => this.set(labels, e.monitor.snapshot(window, segment)?.n ?? 0));
    });
    add(client.Gauge, 'temperature', 'Temperature fitted (NLL-optimal) on the rows of the window (keepRows windows)', windowLabels, async function () {
      this.reset();
      const jobs: Promise<void>[] = [];
      forEachWindow((e, window, keepRows, segment, labels) => {
        if (!keepRows) return;
        const key = `${segment ?? ''}\u0000${window}`;
        const cached = e.temperature.get(key);
        const version = e.monitor.version;
        if (cached && cached.version === version) {
          if (cached.fit) this.set(labels, cached.fit.temperature);
          return;
        }
        jobs.push(
          e.monitor.fitTemperatureAsync(window, segment).then(
            (fit) => {
              e.temperature.set(key, { version, fit });
              if (fit) this.set(labels, fit.temperature);
            },
            // A window whose rows are not all here (merged from other monitors), or logits a
            // fit cannot take: no series rather than a failed scrape.
            () => {
              e.temperature.set(key, { version, fit: null });
            },
          ),
        );
      });
      await Promise.all(jobs);
    });
    const counters = [
      ['predictions_observed_total', 'Predictions observed', 'observed'],
      ['predictions_labelled_total', 'Predictions whose label arrived in time (rows that entered the windows)', 'labelled'],
      ['predictions_expired_total', 'Predictions whose label did not arrive within the TTL', 'expired'],
      ['predictions_dropped_total', 'Unlabelled predictions dropped because the pending cap was reached', 'dropped'],
      ['predictions_overflow_total', 'Predictions observed under a segment beyond maxSegments (they count in the __overflow__ segment)', 'overflow'],
      ['labels_unmatched_total', 'Labels whose prediction was not (or no longer) pending', 'unmatched'],
    ] as const;
    for (const [name, help, key] of counters) {
      add(client.Counter, name, help, ['model'], function () {
        this.reset();
        for (const e of entries) this.inc({ model: e.model }, e.monitor.counts[key]);
      });
    }
    add(client.Gauge, 'predictions_pending', 'Unlabelled predictions held now', ['model'], function () {
      this.reset();
      for (const e of entries) this.set({ model: e.model }, e.monitor.counts.pending);
    });
  }
}

const exporters = new WeakMap<object, Map<string, Exporter>>();

/**
 * Registers `monitor`'s metrics on a prom-client registry under the label model=`model`.
 * Returns a function that unregisters it (the metrics are removed from the registry with
 * the last monitor).
 */
export function registerMonitorMetrics(monitor: MonitorSource, options?: MetricsOptions): () => void {
  const o = readOptions(options, ['model', 'register', 'prefix', 'client'], 'Monitor.registerMetrics');
  const model = o.model ?? 'default';
  if (typeof model !== 'string') throw typeError('model', 'a string', model);
  if (model.length > 128) throw rangeError('model', 'a string of at most 128 characters', model);
  const prefix = o.prefix ?? 'smoothce_calibration_';
  if (typeof prefix !== 'string') throw typeError('prefix', 'a string', prefix);
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) throw rangeError('prefix', 'a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)', prefix);
  let client = o.client as PromClient | undefined;
  if (client === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      client = require('prom-client') as PromClient;
    } catch (err) {
      throw codedError(ERROR_CODES.MISSING_DEPENDENCY, 'Monitor.registerMetrics needs prom-client, an optional peer dependency: npm install prom-client', { cause: err });
    }
  }
  if (client === null || typeof client !== 'object' || typeof client.Gauge !== 'function' || typeof client.Counter !== 'function') {
    throw typeError('client', 'the prom-client module', client);
  }
  const register = (o.register ?? client.register) as PromRegistry;
  if (register === null || typeof register !== 'object' || typeof register.getSingleMetric !== 'function') {
    throw typeError('register', 'a prom-client Registry', register);
  }
  let byPrefix = exporters.get(register);
  if (!byPrefix) exporters.set(register, (byPrefix = new Map()));
  let exporter = byPrefix.get(prefix);
  if (!exporter) {
    if (register.getSingleMetric(`${prefix}ece`)) {
      throw rangeError('prefix', 'a prefix whose metrics this registry does not have yet (registered by other code)', prefix);
    }
    exporter = new Exporter(client, register, prefix);
    byPrefix.set(prefix, exporter);
  }
  for (const e of exporter.entries) {
    if (e.model === model) throw rangeError('model', `a model label no other monitor on this registry has`, model);
  }
  const entry: Entry = { monitor, model, temperature: new Map() };
  exporter.entries.add(entry);
  const ex = exporter;
  return () => {
    if (!ex.entries.delete(entry)) return;
    if (ex.entries.size === 0) {
      for (const name of ex.names) register.removeSingleMetric(name);
      byPrefix!.delete(prefix);
    }
  };
}
