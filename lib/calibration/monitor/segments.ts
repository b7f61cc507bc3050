/**
 * Segments: a Monitor's rows sliced by a string (a model version, a tenant). Each segment has
 * windows of its own (a WindowSet) and counters; the whole monitor's windows hold every row.
 * At most maxSegments segments are made; the rows of further segments go to the overflow
 * segment, so that none is lost silently.
 */
import { rangeError, typeError } from '../../core/errors';
import { WindowSet, type Shared, type Window } from './windows';
import type { SegmentCounts } from './types';

/** The segment that takes the rows of segments beyond maxSegments. Names beginning with '__' are reserved. */
export const OVERFLOW_SEGMENT = '__overflow__';

export const DEFAULT_MAX_SEGMENTS = 100;

export type SegmentCounters = Omit<SegmentCounts, 'pending'>;

export interface Segment {
  name: string;
  set: WindowSet;
  counts: SegmentCounters;
}

export function zeroSegmentCounts(): SegmentCounters {
  return { observed: 0, labelled: 0, expired: 0, dropped: 0, late: 0 };
}

/** A segment name as given by a caller: a string of 1 to 128 characters not beginning with
 * '__' (where the monitor's segments are read, `allowOverflow` admits the overflow segment). */
export function checkSegment(value: unknown, name = 'segment', allowOverflow = false): string {
  if (typeof value !== 'string') throw typeError(name, 'a string (a segment name such as a model version or a tenant)', value);
  if (value.length < 1 || value.length > 128) throw rangeError(name, 'a string of 1 to 128 characters', value);
  if (value.startsWith('__') && !(allowOverflow && value === OVERFLOW_SEGMENT)) throw rangeError(name, "a name that does not begin with '__' (reserved)", value);
  return value;
}

/** The segments of one monitor, by name (the overflow segment made on first use, outside the cap). */
export class Segments {
  readonly map = new Map<string, Segment>();
  readonly max: number;
  readonly #specs: readonly Window['spec'][];
  readonly #shared: Shared;

  constructor(specs: readonly Window['spec'][], shared: Shared, max: number) {
    this.#specs = specs;
    this.#shared = shared;
    this.max = max;
  }

  /** Segments other than the overflow one. */
  get size(): number {
    return this.map.size - (this.map.has(OVERFLOW_SEGMENT) ? 1 : 0);
  }

  /** Whether `name` would get (or has) a segment of its own. */
  fits(name: string): boolean {
    return name === OVERFLOW_SEGMENT || this.map.has(name) || this.size < this.max;
  }

  /** The segment named `name`, made if there is room; otherwise the overflow segment. */
  resolve(name: string): { segment: Segment; overflow: boolean } {
    const fits = this.fits(name);
    const key = fits ? name : OVERFLOW_SEGMENT;
    let s = this.map.get(key);
    if (!s) this.map.set(key, (s = { name: key, set: new WindowSet(this.#specs, this.#shared), counts: zeroSegmentCounts() }));
    return { segment: s, overflow: !fits };
  }

  /**
   * Adds another monitor's segments: by name, into the overflow segment once the cap is
   * reached. Returns how many observed predictions went to the overflow segment that way.
   */
  mergeFrom(other: Segments): number {
    let overflowed = 0;
    for (const [name, os] of other.map) {
      const { segment, overflow } = this.resolve(name);
      if (overflow) overflowed += os.counts.observed;
      segment.set.mergeFrom(os.set);
      for (const key of Object.keys(segment.counts) as (keyof SegmentCounters)[]) segment.counts[key] += os.counts[key];
    }
    return overflowed;
  }

  /** Takes `other`'s segments (distributed allReduce): this monitor's own are dropped. */
  replaceWith(other: Segments): void {
    this.map.clear();
    for (const [name, s] of other.map) {
      const made: Segment = { name, set: new WindowSet(this.#specs, this.#shared), counts: { ...s.counts } };
      made.set.replaceWith(s.set);
      this.map.set(name, made);
    }
  }
}
