/**
 * calibration.Monitor: exact sliding windows (by count and by time, several at once) over
 * predictions whose labels arrive later; TTL and cap counted; thresholds; JSON, merge and
 * distributed allReduce of the windows.
 */
import { describe, expect, it } from 'vitest';
import { calibration, distributed, tensor, type Tensor } from '../lib/index';
import { freePort } from './helpers/free-port';
import { runMonitorRanks } from './helpers/monitor-ranks';
import { rng } from './helpers/rng';

type Report = calibration.CalibrationReport;

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Every field of a report, numbers within 1e-12 (absolute; they are all O(1)), counts equal. */
function expectReportClose(got: Report | null, want: Report, where: string): void {
  expect(got, where).not.toBeNull();
  const g = got!;
  expect(g.n, `${where} n`).toBe(want.n);
  expect(g.classes, `${where} classes`).toBe(want.classes);
  for (const key of ['accuracy', 'nll', 'brier', 'ece', 'mce', 'rmsce', 'classwiseEce'] as const) {
    expect(Math.abs(g[key] - want[key]), `${where} ${key}: ${g[key]} vs ${want[key]}`).toBeLessThanOrEqual(1e-12);
  }
  expect(g.adaptiveEce, `${where} adaptiveEce`).toBeNull();
  expect(g.bins.length).toBe(want.bins.length);
  g.bins.forEach((b, i) => {
    const w = want.bins[i];
    expect([b.lo, b.hi, b.count], `${where} bin ${i}`).toEqual([w.lo, w.hi, w.count]);
    if (w.count === 0) {
      expect(b.confidence).toBeNull();
      expect(b.accuracy).toBeNull();
    } else {
      expect(Math.abs(b.confidence! - w.confidence!)).toBeLessThanOrEqual(1e-12);
      expect(Math.abs(b.accuracy! - w.accuracy!)).toBeLessThanOrEqual(1e-12);
    }
  });
}

interface Obs {
  id: string;
  row: number[];
  label: number;
  t: number;
  /** When the label arrives (undefined: never). */
  due?: number;
  /** Label order (set when labelled in time). */
  seq?: number;
}

const WINDOWS: calibration.WindowSpec[] = [
  { name: 'last100', rows: 100, step: 10 },
  { name: 'last250', rows: 250, step: 50 },
  { name: 'last7', rows: 7, step: 1 },
  { name: '10s', seconds: 10, step: 1 },
  { name: '1m', seconds: 60 }, // default step: 6 s
];

function reportOn(rows: Obs[], k: number, dtype: 'float32' | 'float64', options: calibration.ReportOptions): Report {
  const flat = rows.flatMap((o) => o.row);
  const scores: Tensor = tensor(dtype === 'float32' ? Float32Array.from(flat) : Float64Array.from(flat), [rows.length, k]);
  return calibration.report(scores, tensor(Int32Array.from(rows.map((o) => o.label)), [rows.length]), options);
}

/**
 * Feeds a monitor predictions at random times with late labels (some after the TTL, some
 * never), and at checkpoints compares every window with calibration.report on the rows
 * windowBounds() names, and the counters with what the simulation expects.
 */
function simulate(seed: number, dtype: 'float32' | 'float64', options: calibration.ReportOptions, checkpoints: number): void {
  const r = rng(seed);
  const k = 2 + Math.floor(r() * 8);
  const ttlMs = 20_000;
  let now = 1_700_000_000_000;
  const monitor = new calibration.Monitor({ ...options, windows: WINDOWS, ttlMs, maxPending: 1_000_000, flushRows: 16, clock: () => now });
  const obs: Obs[] = [];
  const labelled: Obs[] = [];
  let t = now;
  for (let i = 0; i < 1500; i++) {
    t += Math.floor(r() * 80);
    const c = Math.floor(r() * k);
    const row = Array.from({ length: k }, (_, j) => 2 * gauss(r) + (j === c ? 1.5 : 0));
    const label = r() < 0.7 ? c : Math.floor(r() * k);
    const due = r() < 0.1 ? undefined : t + Math.floor(r() * 26_000);
    obs.push({ id: `p${i}`, row, label, t, due });
  }
  // Events in time order: observations, and labels at their due time (labels first on ties).
  type Ev = { time: number; kind: 0 | 1; o: Obs };
  const events: Ev[] = [];
  for (const o of obs) {
    events.push({ time: o.t, kind: 1, o });
    if (o.due !== undefined) events.push({ time: o.due, kind: 0, o });
  }
  events.sort((a, b) => a.time - b.time || a.kind - b.kind);
  const every = Math.floor(events.length / checkpoints);
  let labels = 0;
  let observed = 0;
  events.forEach((e, idx) => {
    now = e.time;
    if (e.kind === 1) {
      observed++;
      const scores = tensor(dtype === 'float32' ? Float32Array.from(e.o.row) : Float64Array.from(e.o.row), [k]);
      monitor.observe(e.o.id, scores);
    } else {
      labels++;
      const matched = monitor.label(e.o.id, e.o.label);
      expect(matched, `label of ${e.o.id}`).toBe(e.time - e.o.t < ttlMs);
      if (matched) {
        e.o.seq = labelled.length;
        labelled.push(e.o);
      }
    }
    if ((idx + 1) % every !== 0) return;
    for (const w of WINDOWS) {
      const b = monitor.windowBounds(w.name);
      const rows =
        b.kind === 'rows' ? labelled.slice(b.firstRow, b.endRow) : labelled.filter((o) => o.t >= b.from && o.t < b.to);
      if (b.kind === 'rows') expect(b.endRow - b.firstRow).toBeLessThanOrEqual(w.rows!);
      else expect(b.to - b.from).toBe(w.seconds! * 1000);
      const snap = monitor.snapshot(w.name);
      if (rows.length === 0) expect(snap, `${w.name} empty`).toBeNull();
      else expectReportClose(snap, reportOn(rows, k, dtype, options), `seed ${seed} event ${idx} window ${w.name}`);
    }
    // Counters: expired = unlabelled within the TTL and older than it now.
    const seen = obs.slice(0, observed);
    const expired = seen.filter((o) => now - o.t >= ttlMs && (o.due === undefined || o.due - o.t >= ttlMs || o.due > now)).length;
    const c = monitor.counts;
    expect(c.observed).toBe(seen.length);
    expect(c.labelled).toBe(labelled.length);
    expect(c.unmatched).toBe(labels - labelled.length);
    expect(c.expired).toBe(expired);
    expect(c.dropped).toBe(0);
    expect(c.pending).toBe(seen.length - labelled.length - expired);
  });
  // The 1m window holds rows whose label came 20 s late: some were too late for '10s'.
  expect(monitor.lateByWindow['10s']).toBeGreaterThan(0);
  expect(monitor.lateByWindow['last100']).toBe(0);
}

describe('calibration.Monitor windows are exact', () => {
  it('float64 logits: every window equals calibration.report on exactly its rows (20 checkpoints)', () => {
    simulate(11, 'float64', { from: 'logits' }, 20);
  });
  it('float32 logits, torchmetrics bins, temperature 1.7', () => {
    simulate(12, 'float32', { from: 'logits', convention: 'torchmetrics', bins: 10, temperature: 1.7 }, 12);
  });
  it('float64 logits, netcal bins, 7 bins', () => {
    simulate(13, 'float64', { from: 'logits', convention: 'netcal', bins: 7 }, 12);
  });

  it('takes batches: observe(ids, scores [n, K]); a count window reports exactly its last rows', () => {
    let now = 0;
    const m = new calibration.Monitor({ windows: [{ name: 'w', rows: 6, step: 3 }], clock: () => now });
    const r = rng(3);
    const rows = Array.from({ length: 10 }, () => Array.from({ length: 4 }, () => gauss(r)));
    const ids = rows.map((_, i) => i);
    expect(m.observe(ids, tensor(Float64Array.from(rows.flat()), [10, 4]))).toBe(10);
    const labels = rows.map((_, i) => i % 4);
    for (let i = 0; i < 10; i++) {
      now += 1;
      expect(m.label(i, labels[i])).toBe(true);
    }
    // 10 rows labelled; blocks of 3: rows 9 (partial block 3) and 6..8 (block 2) -> [6, 10).
    expect(m.windowBounds('w')).toEqual({ kind: 'rows', firstRow: 6, endRow: 10 });
    const want = calibration.report(tensor(Float64Array.from(rows.slice(6).flat()), [4, 4]), tensor(Int32Array.from(labels.slice(6)), [4]), { from: 'logits' });
    expectReportClose(m.snapshot('w'), want, 'batch');
  });
});

describe('calibration.Monitor TTL and cap', () => {
  it('counts predictions dropped over maxPending (oldest first) and those that expire', () => {
    let now = 1000;
    const m = new calibration.Monitor({ windows: [{ name: 'all', rows: 100 }], ttlMs: 500, maxPending: 3, clock: () => now });
    const row = tensor(new Float64Array([1, 0, -1]), [3]);
    for (let i = 0; i < 5; i++) m.observe(`x${i}`, row);
    expect(m.counts).toMatchObject({ observed: 5, dropped: 2, pending: 3, expired: 0 });
    expect(m.label('x0', 0)).toBe(false); // dropped: unmatched
    expect(m.label('x2', 0)).toBe(true);
    now = 1499;
    expect(m.counts).toMatchObject({ expired: 0, pending: 2 });
    now = 1500;
    expect(m.counts).toMatchObject({ expired: 2, pending: 0, labelled: 1, unmatched: 1 });
    expect(m.label('x3', 1)).toBe(false);
    expect(m.counts.unmatched).toBe(2);
    // Memory stays bounded: 10,000 unlabelled predictions with a cap of 3 hold 3.
    for (let i = 0; i < 10_000; i++) m.observe(`y${i}`, row);
    expect(m.counts).toMatchObject({ pending: 3, dropped: 2 + 9_997 });
  });
});

describe('calibration.Monitor validation', () => {
  it('answers bad input with typed errors naming the parameter, and keeps its state', () => {
    const m = new calibration.Monitor({ windows: [{ name: 'w', seconds: 60 }] });
    const row = tensor(new Float32Array([0.1, 0.2, 0.3]), [3]);
    m.observe('a', row);
    expect(() => m.observe('a', row)).toThrow(/already waiting/);
    expect(() => m.observe('b', tensor(new Float32Array([1, 2]), [2]))).toThrow(RangeError);
    expect(() => m.observe('b', tensor(new Float64Array([1, 2, 3]), [3]))).toThrow(/float32/);
    expect(() => m.observe('b', tensor(new Float32Array([1, NaN, 3]), [3]))).toThrow(RangeError);
    expect(() => m.observe({} as never, row)).toThrow(TypeError);
    expect(() => m.observe('', row)).toThrow(RangeError);
    expect(() => m.observe('b', [1, 2, 3] as never)).toThrow(TypeError);
    expect(() => m.observe(['b', 'c'], row)).toThrow(RangeError);
    expect(() => m.label('a', 3)).toThrow(RangeError);
    expect(() => m.label('a', 1.5)).toThrow(RangeError);
    expect(() => m.label('a', '1' as never)).toThrow(TypeError);
    expect(() => m.snapshot('nope')).toThrow(RangeError);
    expect(m.counts).toMatchObject({ observed: 1, pending: 1 });
    expect(m.label('a', 2)).toBe(true);
    expect(m.snapshot('w')!.n).toBe(1);
    expect(() => new calibration.Monitor({ windows: [] })).toThrow(RangeError);
    expect(() => new calibration.Monitor({ windows: [{ name: 'w', rows: 10, seconds: 5 }] })).toThrow(RangeError);
    expect(() => new calibration.Monitor({ windows: [{ name: 'w', rows: 10, step: 3 }] })).toThrow(/divisor/);
    expect(() => new calibration.Monitor({ windows: [{ name: 'w', rows: 10 }, { name: 'w', rows: 5 }] })).toThrow(RangeError);
    expect(() => new calibration.Monitor({ windows: [{ name: 'w', rows: 10 }], ttlMs: -1 })).toThrow(RangeError);
    expect(() => new calibration.Monitor({ windows: [{ name: 'w', rows: 10 }], maxPendin: 1 } as never)).toThrow(/maxPending/);
  });
});

function feed(m: calibration.Monitor, seed: number, n: number, k: number, clock: { now: number }): { rows: number[][]; labels: number[] } {
  const r = rng(seed);
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    clock.now += 50;
    const row = Array.from({ length: k }, () => 2 * gauss(r));
    const y = Math.floor(r() * k);
    m.observe(`${seed}-${i}`, tensor(Float64Array.from(row), [k]));
    m.label(`${seed}-${i}`, y);
    rows.push(row);
    labels.push(y);
  }
  return { rows, labels };
}

describe('calibration.Monitor JSON, merge, distributed', () => {
  const windows: calibration.WindowSpec[] = [{ name: '1m', seconds: 60, step: 10 }, { name: 'last50', rows: 50, step: 10 }];

  it('round-trips through JSON text with equal snapshots and counters', () => {
    const clock = { now: 5_000 };
    const m = new calibration.Monitor({ windows, clock: () => clock.now });
    feed(m, 1, 300, 4, clock);
    const copy = calibration.Monitor.fromJSON(JSON.stringify(m), { clock: () => clock.now });
    for (const w of windows) expect(copy.snapshot(w.name)).toEqual(m.snapshot(w.name));
    const { pending, ...counts } = m.counts;
    expect(pending).toBe(0);
    expect(copy.counts).toEqual({ ...counts, pending: 0 });
    expect(() => calibration.Monitor.fromJSON({ format: 'other' })).toThrow(RangeError);
  });

  it('merge: two instances over the same minute report the union of their rows', () => {
    const clock = { now: 0 };
    const a = new calibration.Monitor({ windows, clock: () => clock.now });
    const b = new calibration.Monitor({ windows, clock: () => clock.now });
    const start = clock.now;
    const ra = feed(a, 2, 400, 5, clock);
    clock.now = start; // b runs at the same times as a
    const rb = feed(b, 3, 400, 5, clock);
    const merged = calibration.Monitor.fromJSON(a.toJSON(), { clock: () => clock.now }).merge(calibration.Monitor.fromJSON(JSON.stringify(b)));
    const bounds = merged.windowBounds('1m');
    const pick = (d: { rows: number[][]; labels: number[] }) => d.rows.map((row, i) => ({ row, label: d.labels[i], t: start + 50 * (i + 1) })).filter((o) => bounds.kind === 'time' && o.t >= bounds.from && o.t < bounds.to);
    const rows = [...pick(ra), ...pick(rb)];
    const want = calibration.report(tensor(Float64Array.from(rows.flatMap((o) => o.row)), [rows.length, 5]), tensor(Int32Array.from(rows.map((o) => o.label)), [rows.length]), { from: 'logits' });
    expectReportClose(merged.snapshot('1m'), want, 'merged 1m');
    // Count windows merge by position: each instance's last 50 (its last 5 blocks of 10).
    expect(merged.snapshot('last50')!.n).toBe(100);
    expect(merged.counts.labelled).toBe(800);
    expect(() => a.merge(new calibration.Monitor({ windows: [{ name: '1m', seconds: 60 }] }))).toThrow(RangeError);
  });

  it('two processes all-reduce their monitors to the global window (distributed group)', async () => {
    if (!distributed.available()) throw new Error('this build has no c10d/Gloo (see test/distributed.test.ts)');
    const store = `tcp://127.0.0.1:${await freePort()}`;
    const clock = { now: 0 };
    const states = [0, 1].map((rank) => {
      const m = new calibration.Monitor({ windows, clock: () => clock.now });
      clock.now = 0;
      feed(m, 10 + rank, 200, 3, clock);
      return m;
    });
    const expected = calibration.Monitor.fromJSON(states[0].toJSON(), { clock: () => clock.now }).merge(states[1]);
    const outs = await runMonitorRanks<Record<string, unknown>>(states, store, clock.now);
    for (const o of outs) {
      expectReportClose(o['1m'] as Report, expected.snapshot('1m')!, `rank ${o.rank} 1m`);
      expect((o.counts as { labelled: number }).labelled).toBe(400);
      // The local monitor kept its own state: allReduce was given a clone.
      expect((o.localCounts as { labelled: number }).labelled).toBe(200);
    }
  }, 60_000);
});

describe('calibration.Monitor thresholds and temperature', () => {
  it('fires once when a window crosses the threshold with enough samples, again after it re-arms', async () => {
    let now = 0;
    const m = new calibration.Monitor({ windows: [{ name: 'w', rows: 40, step: 4 }], flushRows: 4, clock: () => now });
    const events: calibration.ThresholdEvent[] = [];
    const off = m.onThreshold({ window: 'w', metric: 'accuracy', below: 0.5, minSamples: 12 }, (e) => events.push(e));
    let id = 0;
    const push = (correct: boolean) => {
      now += 1;
      m.observe(id, tensor(new Float64Array([3, 0, 0]), [3]));
      m.label(id++, correct ? 0 : 1);
    };
    for (let i = 0; i < 8; i++) push(false); // accuracy 0, but fewer than 12 samples
    await Promise.resolve();
    expect(events).toHaveLength(0);
    for (let i = 0; i < 4; i++) push(false); // 12 samples: fires
    await Promise.resolve();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ window: 'w', metric: 'accuracy', value: 0, threshold: 0.5, direction: 'below', n: 12 });
    for (let i = 0; i < 4; i++) push(false); // still below: no new event
    await Promise.resolve();
    expect(events).toHaveLength(1);
    for (let i = 0; i < 40; i++) push(true); // recovers (re-arms) ...
    for (let i = 0; i < 32; i++) push(false); // ... and falls again
    await Promise.resolve();
    expect(events).toHaveLength(2);
    off();
    for (let i = 0; i < 40; i++) push(true);
    for (let i = 0; i < 40; i++) push(false);
    await Promise.resolve();
    expect(events).toHaveLength(2);
  });

  it('keepRows: fitTemperature(window) equals calibration.fitTemperature on exactly the window rows', async () => {
    const clock = { now: 0 };
    const m = new calibration.Monitor({ windows: [{ name: 'last60', rows: 60, step: 20, keepRows: true }, { name: 'sums', rows: 60 }], clock: () => clock.now });
    const d = feed(m, 21, 130, 4, clock);
    const b = m.windowBounds('last60');
    if (b.kind !== 'rows') throw new Error('count window');
    const rows = d.rows.slice(b.firstRow, b.endRow);
    const want = calibration.fitTemperature(tensor(Float64Array.from(rows.flat()), [rows.length, 4]), tensor(Int32Array.from(d.labels.slice(b.firstRow, b.endRow)), [rows.length]));
    expect(m.fitTemperature('last60')).toEqual(want);
    expect(await m.fitTemperatureAsync('last60')).toEqual(want);
    expect(() => m.fitTemperature('sums')).toThrow(/keepRows/);
    // After a merge the window's sums include rows it does not hold: no fit on part of them.
    const other = new calibration.Monitor({ windows: [{ name: 'last60', rows: 60, step: 20, keepRows: true }, { name: 'sums', rows: 60 }], clock: () => clock.now });
    feed(other, 22, 30, 4, clock);
    m.merge(other);
    expect(m.snapshot('last60')!.n).toBe(50 + 30);
    expect(() => m.fitTemperature('last60')).toThrow(/merged sums/);
  });
});
