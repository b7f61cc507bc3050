/**
 * calibration.Monitor segments: observe(id, scores, { segment }) gives each segment windows
 * of its own (equal to calibration.report on exactly that segment's rows), a cap whose
 * overflow is counted, per-segment snapshots, Prometheus `segment` labels, merge and
 * distributed allReduce by segment, thresholds per segment, and fitCalibrator(window, method).
 */
import { describe, expect, it } from 'vitest';
import { calibration, distributed, tensor } from '../lib/index';
import { freePort } from './helpers/free-port';
import { runMonitorRanks } from './helpers/monitor-ranks';
import { rng } from './helpers/rng';
import { thrown } from './helpers/thrown';

type Report = calibration.CalibrationReport;

interface Row {
  id: number;
  row: number[];
  label: number;
  t: number;
  segment?: string;
}

const K = 4;

function reportOf(rows: Row[]): Report {
  return calibration.report(tensor(Float64Array.from(rows.flatMap((r) => r.row)), [rows.length, K]), tensor(Int32Array.from(rows.map((r) => r.label)), [rows.length]), { from: 'logits' });
}

/** Numbers within 1e-12, counts and bins equal (adaptiveEce is null in a window). */
function expectClose(got: Report | null, want: Report, where: string): void {
  expect(got, where).not.toBeNull();
  expect(got!.n, `${where} n`).toBe(want.n);
  for (const key of ['accuracy', 'nll', 'brier', 'ece', 'mce', 'rmsce', 'classwiseEce'] as const) {
    expect(Math.abs(got![key] - want[key]), `${where} ${key}`).toBeLessThanOrEqual(1e-12);
  }
  expect(got!.bins.map((b) => b.count)).toEqual(want.bins.map((b) => b.count));
}

/** n labelled predictions, each in segment a, b or none (in turn, with some noise), 100 ms apart. */
function feed(m: calibration.Monitor, seed: number, n: number, clock: { now: number }, segments: (string | undefined)[] = ['a', 'b', undefined]): Row[] {
  const r = rng(seed);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    clock.now += 100;
    const segment = segments[Math.floor(r() * segments.length)];
    const row = Array.from({ length: K }, () => 4 * (r() - 0.5));
    const id = seed * 1_000_000 + i;
    m.observe(id, tensor(Float64Array.from(row), [K]), segment === undefined ? undefined : { segment });
    const label = Math.floor(r() * K);
    m.label(id, label);
    rows.push({ id, row, label, t: clock.now, segment });
  }
  return rows;
}

const WINDOWS: calibration.WindowSpec[] = [
  { name: '10s', seconds: 10, step: 1 },
  { name: 'last40', rows: 40, step: 4, keepRows: true },
];

/** The rows a window holds, by windowBounds (count windows number each segment's rows on their own). */
function inWindow(m: calibration.Monitor, window: string, rows: Row[], segment?: string): Row[] {
  const b = m.windowBounds(window, segment);
  const mine = segment === undefined ? rows : rows.filter((r) => r.segment === segment);
  return b.kind === 'rows' ? mine.slice(b.firstRow, b.endRow) : mine.filter((r) => r.t >= b.from && r.t < b.to);
}

describe('Monitor segments', () => {
  it('each segment has its own windows, equal to calibration.report on its rows; the whole monitor holds every row', () => {
    const clock = { now: 0 };
    const m = new calibration.Monitor({ windows: WINDOWS, clock: () => clock.now, flushRows: 16 });
    const rows = feed(m, 1, 600, clock);
    expect(m.segments.sort()).toEqual(['a', 'b']);
    for (const w of WINDOWS) {
      expectClose(m.snapshot(w.name), reportOf(inWindow(m, w.name, rows)), `${w.name} whole`);
      for (const s of ['a', 'b']) expectClose(m.snapshot(w.name, s), reportOf(inWindow(m, w.name, rows, s)), `${w.name} ${s}`);
    }
    // A count window of a segment holds that segment's last rows.
    const a = rows.filter((r) => r.segment === 'a').length;
    const newest = Math.floor((a - 1) / 4); // 10 blocks of 4 rows
    expect(m.windowBounds('last40', 'a')).toEqual({ kind: 'rows', firstRow: (newest - 9) * 4, endRow: a });
    // Labels count in the segment of their prediction.
    expect(m.segmentCounts('a')).toEqual({ observed: a, labelled: a, expired: 0, dropped: 0, late: 0, pending: 0 });
    expect(m.segmentCounts('never')).toBeNull();
    expect(m.snapshot('10s', 'never')).toBeNull();
  });

  it('bad segments get coded errors and change nothing', () => {
    const m = new calibration.Monitor({ windows: WINDOWS });
    const row = tensor(new Float64Array([1, 0, 0, 0]), [K]);
    for (const bad of [42, null, {}, ['a'], Symbol('s')]) {
      const err = thrown(() => m.observe(1, row, { segment: bad as unknown as string })) as TypeError & { code: string };
      expect(err).toBeInstanceOf(TypeError);
      expect(err.code).toBe('ERR_SMOOTHCE_INVALID_ARG_TYPE');
      expect(err.message).toMatch(/segment/);
    }
    for (const bad of ['', 'x'.repeat(129), '__overflow__', '__v1']) {
      const err = thrown(() => m.observe(1, row, { segment: bad })) as RangeError & { code: string };
      expect(err).toBeInstanceOf(RangeError);
      expect(err.code).toBe('ERR_SMOOTHCE_INVALID_ARG_VALUE');
    }
    expect((thrown(() => m.observe(1, row, { segmnt: 'a' } as never)) as { code: string }).code).toBe('ERR_SMOOTHCE_UNKNOWN_OPTION');
    expect((thrown(() => m.snapshot('10s', 7 as unknown as string)) as { code: string }).code).toBe('ERR_SMOOTHCE_INVALID_ARG_TYPE');
    expect(m.counts.observed).toBe(0);
    expect(m.segments).toEqual([]);
  });

  it('past maxSegments, rows go to the __overflow__ segment and are counted, never lost', () => {
    const clock = { now: 0 };
    const m = new calibration.Monitor({ windows: WINDOWS, clock: () => clock.now, maxSegments: 2 });
    const rows = feed(m, 2, 400, clock, ['a', 'b', 'c', 'd']);
    // The first two segments seen get windows; the other two overflow.
    const first = [...new Set(rows.map((r) => r.segment!))].slice(0, 2);
    const over = rows.filter((r) => !first.includes(r.segment!));
    expect(m.maxSegments).toBe(2);
    expect(m.segments).toEqual([...first, '__overflow__']);
    expect(m.counts.overflow).toBe(over.length);
    expect(m.segmentCounts(calibration.OVERFLOW_SEGMENT)!.observed).toBe(over.length);
    expect(m.snapshot('10s', over[0].segment)).toBeNull();
    const b = m.windowBounds('10s');
    if (b.kind !== 'time') throw new Error('time window');
    expectClose(m.snapshot('10s', '__overflow__'), reportOf(over.filter((r) => r.t >= b.from && r.t < b.to)), 'overflow 10s');
    expect(m.snapshot('10s')!.n).toBe(rows.filter((r) => r.t >= b.from && r.t < b.to).length);
    const { observed, labelled } = m.counts;
    expect([observed, labelled]).toEqual([400, 400]);
  });

  it('merge keeps segments apart (by name), and JSON carries them', () => {
    const clock = { now: 0 };
    const x = new calibration.Monitor({ windows: WINDOWS, clock: () => clock.now });
    const y = new calibration.Monitor({ windows: WINDOWS, clock: () => clock.now });
    const rx = feed(x, 3, 300, clock, ['a', 'b']);
    clock.now = 0; // y runs at the same times
    const ry = feed(y, 4, 300, clock, ['b', 'c']);
    const merged = calibration.Monitor.fromJSON(JSON.stringify(x), { clock: () => clock.now }).merge(calibration.Monitor.fromJSON(y.toJSON()));
    expect(merged.segments.sort()).toEqual(['a', 'b', 'c']);
    const b = merged.windowBounds('10s');
    if (b.kind !== 'time') throw new Error('time window');
    for (const s of ['a', 'b', 'c']) {
      const want = [...rx, ...ry].filter((r) => r.segment === s && r.t >= b.from && r.t < b.to);
      expectClose(merged.snapshot('10s', s), reportOf(want), `merged ${s}`);
    }
    expect(merged.segmentCounts('b')!.labelled).toBe(rx.filter((r) => r.segment === 'b').length + ry.filter((r) => r.segment === 'b').length);
    // A merge past the cap sends the extra segments to the overflow one, counted.
    const small = new calibration.Monitor({ windows: WINDOWS, clock: () => clock.now, maxSegments: 2 });
    small.merge(x).merge(y);
    expect(small.segments.sort()).toEqual(['__overflow__', 'a', 'b']);
    expect(small.counts.overflow).toBe(ry.filter((r) => r.segment === 'c').length);
  });

  it('Prometheus: each segment window has its series with a segment label; the whole monitor has none', async () => {
    const client = await import('prom-client');
    const clock = { now: 0 };
    const m = new calibration.Monitor({ windows: WINDOWS, clock: () => clock.now, maxSegments: 1 });
    const first = feed(m, 5, 200, clock, ['a', 'b'])[0].segment;
    const register = new client.Registry();
    const off = m.registerMetrics({ register, model: 'm', client });
    const text = await register.metrics();
    off();
    expect(text).toContain(`smoothce_calibration_samples{model="m",window="10s"} ${m.snapshot('10s')!.n}`);
    expect(text).toContain(`smoothce_calibration_samples{model="m",window="10s",segment="${first}"} ${m.snapshot('10s', first)!.n}`);
    expect(text).toContain(`smoothce_calibration_ece{model="m",window="last40",segment="__overflow__"} ${m.snapshot('last40', '__overflow__')!.ece}`);
    expect(text).toContain(`smoothce_calibration_predictions_overflow_total{model="m"} ${m.counts.overflow}`);
    expect(text).toMatch(new RegExp(`smoothce_calibration_temperature\\{model="m",window="last40",segment="${first}"\\} \\d`));
  });

  it('thresholds watch one segment', async () => {
    const clock = { now: 0 };
    const m = new calibration.Monitor({ windows: [{ name: 'w', rows: 8, step: 2 }], clock: () => clock.now, flushRows: 2 });
    const events: calibration.ThresholdEvent[] = [];
    m.onThreshold({ window: 'w', metric: 'accuracy', below: 0.5, minSamples: 4, segment: 'bad' }, (e) => events.push(e));
    for (let i = 0; i < 8; i++) {
      m.observe(i, tensor(new Float64Array([3, 0, 0, 0]), [K]), { segment: i % 2 ? 'bad' : 'good' });
      m.label(i, i % 2 ? 1 : 0); // 'bad' is always wrong, 'good' always right: overall accuracy 0.5
    }
    await Promise.resolve();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ window: 'w', metric: 'accuracy', value: 0, n: 4, segment: 'bad' });
  });

  it('fitCalibrator(window, method) fits on exactly the window rows (of a segment too)', async () => {
    const clock = { now: 0 };
    const m = new calibration.Monitor({ windows: WINDOWS, clock: () => clock.now });
    const rows = feed(m, 6, 300, clock);
    for (const segment of [undefined, 'b']) {
      const kept = inWindow(m, 'last40', rows, segment);
      const scores = tensor(Float64Array.from(kept.flatMap((r) => r.row)), [kept.length, K]);
      const want = calibration.fitTemperature(scores, tensor(Int32Array.from(kept.map((r) => r.label)), [kept.length]));
      const cal = m.fitCalibrator('last40', 'temperature', segment)!;
      expect(cal.method).toBe('temperature');
      expect(cal.toJSON().params.temperature).toBe(want.temperature);
      expect((await m.fitCalibratorAsync('last40', 'temperature', segment))!.toJSON()).toEqual(cal.toJSON());
      // apply() is softmax(z / T).
      const p = cal.apply(scores).data as Float64Array;
      const z = kept[0].row.map((v) => v / want.temperature);
      const e = z.map((v) => Math.exp(v - Math.max(...z)));
      const total = e.reduce((a, b) => a + b, 0);
      e.forEach((v, j) => expect(Math.abs(p[j] - v / total)).toBeLessThanOrEqual(1e-15));
    }
    const err = thrown(() => m.fitCalibrator('last40', 'isotonic-nope')) as RangeError & { code: string };
    expect(err).toBeInstanceOf(RangeError);
    expect(err.code).toBe('ERR_SMOOTHCE_INVALID_ARG_VALUE');
    expect(() => m.fitCalibrator('10s', 'temperature')).toThrow(/keepRows/);
    expect(m.fitCalibrator('last40', 'temperature', 'never')).toBeNull();
  });

  it('two processes all-reduce their monitors with segments kept apart (distributed group)', async () => {
    if (!distributed.available()) throw new Error('this build has no c10d/Gloo (see test/distributed.test.ts)');
    const store = `tcp://127.0.0.1:${await freePort()}`;
    const clock = { now: 0 };
    const windows: calibration.WindowSpec[] = [{ name: '1m', seconds: 60, step: 10 }];
    const fed = [0, 1].map((rank) => {
      const m = new calibration.Monitor({ windows, clock: () => clock.now });
      clock.now = 0;
      return { m, rows: feed(m, 20 + rank, 200, clock, rank === 0 ? ['a', 'b'] : ['b', 'c']) };
    });
    const expected = calibration.Monitor.fromJSON(fed[0].m.toJSON(), { clock: () => clock.now }).merge(fed[1].m);
    const outs = await runMonitorRanks<{ segments: Record<string, Report> }>(fed.map(({ m }) => m), store, clock.now);
    for (const o of outs) {
      expect(Object.keys(o.segments).sort()).toEqual(['a', 'b', 'c']);
      for (const s of ['a', 'b', 'c']) expectClose(o.segments[s], expected.snapshot('1m', s)!, `allReduce ${s}`);
      expect(o.segments.b.n).toBe(fed[0].rows.filter((r) => r.segment === 'b').length + fed[1].rows.filter((r) => r.segment === 'b').length);
    }
  }, 60_000);
});
