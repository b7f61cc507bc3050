/** The Monitor's thresholds: onThreshold()'s spec, checked, and the crossing test. */
import { rangeError, typeError } from '../../core/errors';
import { readOptions } from '../../core/options';
import type { CalibrationReport } from '../metrics';
import { checkSegment } from './segments';
import { METRICS, type Metric, type ThresholdEvent, type ThresholdSpec } from './types';
import { positiveInt } from './windows';

export interface Threshold {
  spec: Required<Pick<ThresholdSpec, 'window' | 'metric' | 'minSamples'>> & { segment?: string };
  direction: 'above' | 'below';
  threshold: number;
  callback: (event: ThresholdEvent) => void;
  firing: boolean;
}

/** Checks onThreshold()'s arguments; `window` resolves the window's name (and throws for an unknown one). */
export function readThreshold(spec: unknown, callback: unknown, window: (name: unknown) => string): Threshold {
  const o = readOptions(spec, ['window', 'metric', 'above', 'below', 'minSamples', 'segment'], 'Monitor.onThreshold');
  const name = window(o.window);
  const segment = o.segment === undefined ? undefined : checkSegment(o.segment, 'segment', true);
  if (typeof o.metric !== 'string') throw typeError('metric', `one of ${METRICS.join(', ')}`, o.metric);
  if (!METRICS.includes(o.metric as Metric)) throw rangeError('metric', `one of ${METRICS.join(', ')}`, o.metric);
  if ((o.above === undefined) === (o.below === undefined)) throw rangeError('spec', 'exactly one of above or below', spec);
  const threshold = (o.above ?? o.below) as unknown;
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) throw typeError(o.above !== undefined ? 'above' : 'below', 'a number', threshold);
  const minSamples = o.minSamples === undefined ? 1 : positiveInt(o.minSamples, 'minSamples');
  if (typeof callback !== 'function') throw typeError('callback', 'a function', callback);
  return {
    spec: { window: name, metric: o.metric as Metric, minSamples, ...(segment !== undefined ? { segment } : {}) },
    direction: o.above !== undefined ? 'above' : 'below',
    threshold,
    callback: callback as Threshold['callback'],
    firing: false,
  };
}

/** Fires each threshold that the window's report now crosses and did not before (in a microtask); re-arms the others. */
export function evaluate(thresholds: readonly Threshold[], report: CalibrationReport | null): void {
  for (const t of thresholds) {
    const value = report ? (report[t.spec.metric] as number) : NaN;
    const on = report !== null && report.n >= t.spec.minSamples && (t.direction === 'above' ? value > t.threshold : value < t.threshold);
    if (on && !t.firing) {
      const { window, metric, segment } = t.spec;
      const event: ThresholdEvent = { window, metric, value, threshold: t.threshold, direction: t.direction, n: report!.n, report: report!, ...(segment !== undefined ? { segment } : {}) };
      queueMicrotask(() => t.callback(event));
    }
    t.firing = on;
  }
}
