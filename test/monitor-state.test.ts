/**
 * calibration.Monitor's saved state: toJSON/fromJSON keep everything (pending predictions,
 * kept rows, segments); every tampered state is refused with ERR_SMOOTHCE_STATE_FORMAT; a
 * restored state snapshots and exports to Prometheus; save()/load() survive a writer
 * SIGKILLed at random moments (the file is always a whole state).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { calibration, tensor } from '../lib/index';
import { rng } from './helpers/rng';
import { thrown } from './helpers/thrown';

const WINDOWS: calibration.WindowSpec[] = [
  { name: '1m', seconds: 60, step: 10 },
  { name: 'last50', rows: 50, step: 10, keepRows: true },
];

/** A monitor with labelled rows in two segments and without, and 20 predictions still pending. */
function busy(seed = 1) {
  const clock = { now: 1_000_000 };
  const m = new calibration.Monitor({ windows: WINDOWS, clock: () => clock.now, maxSegments: 4 });
  const r = rng(seed);
  for (let i = 0; i < 160; i++) {
    clock.now += 250;
    const row = Float64Array.from({ length: 4 }, () => 3 * (r() - 0.5));
    const segment = i % 3 === 0 ? undefined : i % 3 === 1 ? 'v1' : 'v2';
    m.observe(i, tensor(row, [4]), segment === undefined ? undefined : { segment });
    if (i < 140) m.label(i, Math.floor(r() * 4));
  }
  return { m, clock };
}

function expectCoded(fn: () => unknown, kind: typeof TypeError | typeof RangeError, message?: RegExp): void {
  const err = thrown(fn) as Error & { code?: string };
  expect(err, 'it throws').toBeInstanceOf(kind);
  expect(err.code).toBe('ERR_SMOOTHCE_STATE_FORMAT');
  if (message) expect(err.message).toMatch(message);
}

describe('Monitor state: a restore keeps everything', () => {
  it('round-trips windows, segments, counters, pending predictions and kept rows', () => {
    const { m, clock } = busy();
    const copy = calibration.Monitor.fromJSON(JSON.stringify(m), { clock: () => clock.now });
    for (const segment of [undefined, 'v1', 'v2']) {
      for (const w of WINDOWS) expect(copy.snapshot(w.name, segment), `${w.name} ${segment}`).toEqual(m.snapshot(w.name, segment));
    }
    expect(copy.counts).toEqual(m.counts);
    expect(copy.counts.pending).toBe(20);
    expect(copy.segmentCounts('v1')).toEqual(m.segmentCounts('v1'));
    // keepRows survives, with the rows: the same fit.
    expect(copy.windows).toEqual(m.windows);
    expect(copy.fitTemperature('last50')).toEqual(m.fitTemperature('last50'));
    // The pending predictions' labels still match, in their segment.
    for (let i = 140; i < 160; i++) {
      expect(copy.label(i, 1)).toBe(true);
      m.label(i, 1);
    }
    expect(copy.counts.unmatched).toBe(0);
    expect(copy.counts).toEqual(m.counts);
    expect(copy.segmentCounts('v2')).toEqual(m.segmentCounts('v2'));
    for (const segment of [undefined, 'v1', 'v2']) expect(copy.snapshot('last50', segment)).toEqual(m.snapshot('last50', segment));
    // A restored monitor's state is the state it was restored from.
    expect(JSON.parse(JSON.stringify(copy))).toEqual(JSON.parse(JSON.stringify(m)));
  });

  it('reads a version-1 state (no pending, segments or kept rows): the keepRows window then refuses a fit', () => {
    const { m, clock } = busy();
    const v2 = JSON.parse(JSON.stringify(m));
    const v1 = { ...v2, version: 1, segments: undefined, pending: undefined, counts: { ...v2.counts, overflow: undefined }, options: { ...v2.options, maxSegments: undefined } };
    v1.windows = v2.windows.map((w: { rowsIncomplete?: boolean; buckets: unknown[][] }) => ({ ...w, rowsIncomplete: undefined, buckets: w.buckets.map((b) => b.slice(0, 2)) }));
    const old = calibration.Monitor.fromJSON(JSON.stringify(v1), { clock: () => clock.now });
    expect(old.snapshot('1m')).toEqual(m.snapshot('1m'));
    expect(old.windows[1].keepRows).toBe(true);
    expect(() => old.fitTemperature('last50')).toThrow(/merged sums|rows are not here/);
  });

  it('snapshot(), snapshots() and the Prometheus export work on a restored state', async () => {
    const client = await import('prom-client');
    const { m, clock } = busy();
    const copy = calibration.Monitor.fromJSON(JSON.stringify(m), { clock: () => clock.now });
    const register = new client.Registry();
    const off = copy.registerMetrics({ register, model: 'restored', client });
    const text = await register.metrics();
    off();
    expect(text).toContain(`smoothce_calibration_samples{model="restored",window="1m"} ${m.snapshot('1m')!.n}`);
    expect(text).toContain(`smoothce_calibration_samples{model="restored",window="last50",segment="v1"} ${m.snapshot('last50', 'v1')!.n}`);
    expect(text).toMatch(/smoothce_calibration_temperature\{model="restored",window="last50",segment="v2"\} \d/);
    expect(Object.keys(copy.snapshots('v2'))).toEqual(['1m', 'last50']);
  });
});

/** A fresh copy of a busy monitor's state to tamper with. */
function state(): Record<string, any> {
  return JSON.parse(JSON.stringify(busy().m));
}

describe('Monitor.fromJSON refuses tampered state with ERR_SMOOTHCE_STATE_FORMAT', () => {
  const load = (s: unknown) => () => calibration.Monitor.fromJSON(s, { clock: () => 2e6 });

  it('accepts the untampered state (the baseline of every case below)', () => {
    expect(load(state())()).toBeInstanceOf(calibration.Monitor);
  });

  const cases: [string, (s: Record<string, any>) => unknown, typeof TypeError | typeof RangeError, RegExp][] = [
    ['a negative count', (s) => (s.counts.expired = -1), RangeError, /state\.counts\.expired/],
    ['a negative segment count', (s) => (s.segments[0].counts.observed = -3), RangeError, /state\.segments\.0\.counts\.observed/],
    ['a negative NLL sum', (s) => (s.windows[0].buckets[0][1].stats.nllSum = -0.5), RangeError, /nllSum/],
    ['a negative bin count', (s) => (s.windows[0].buckets[0][1].stats.top.count[3] = -2), RangeError, /count/],
    ['a confidence sum above its bin count', (s) => {
      const t = s.windows[0].buckets[0][1].stats.top;
      const b = t.count.findIndex((c: number) => c > 0);
      t.confSum[b] = t.count[b] + 1;
    }, RangeError, /confSum/],
    ['more hits than rows in a bin', (s) => {
      const t = s.windows[0].buckets[0][1].stats.top;
      const b = t.count.findIndex((c: number) => c > 0);
      t.accSum[b] = t.count[b] + 1;
    }, RangeError, /accSum/],
    ['labelled greater than observed', (s) => (s.counts.labelled = s.counts.observed + 1), RangeError, /labelled/],
    ['more settled than observed', (s) => (s.counts.expired = s.counts.observed), RangeError, /at most observed/],
    ['a sub-window far in the future', (s) => (s.windows[0].buckets.at(-1)[0] += 1e6), RangeError, /buckets\[\d+\]\[0\]/],
    ['a sub-window of a count window past its rows', (s) => (s.windows[1].buckets.at(-1)[0] += 7), RangeError, /buckets/],
    ['now 1e300', (s) => (s.now = 1e300), RangeError, /state\.now/],
    ['now NaN', (s) => (s.now = NaN), RangeError, /state\.now/],
    ['now a string', (s) => (s.now = '12'), TypeError, /state\.now/],
    ['other bin edges', (s) => (s.windows[0].buckets[0][1].stats.top.edges[2] += 0.01), RangeError, /edges/],
    ['another bin count', (s) => (s.options.bins = 10), RangeError, /bins/],
    ['another class count in a sub-window', (s) => (s.windows[0].buckets[0][1].stats.classes = 5), RangeError, /classes/],
    ['another class count for the monitor', (s) => (s.classes = 3), RangeError, /classes|scores/],
    ['a missing field', (s) => delete s.counts, TypeError, /state\.counts/],
    ['a missing nested field', (s) => delete s.windows[0].buckets[0][1].stats.brierSum, TypeError, /brierSum/],
    ['a wrong type', (s) => (s.rows = '5'), TypeError, /state\.rows/],
    ['a wrong type deep down', (s) => (s.pending[0][2] = 'scores'), TypeError, /pending/],
    ['an unknown field', (s) => (s.extra = 1), RangeError, /unknown field state\.extra/],
    ['an unknown field in the options', (s) => (s.options.windowz = []), RangeError, /unknown field state\.options\.windowz/],
    ['another format', (s) => (s.format = 'smoothce.calibration.accumulator'), RangeError, /state\.format/],
    ['a future version', (s) => (s.version = 3), RangeError, /state\.version/],
    ['windows that differ from the options', (s) => s.windows.pop(), RangeError, /state\.windows/],
    ['a window renamed', (s) => (s.windows[0].name = '2m'), RangeError, /name/],
    ['bad window options', (s) => (s.options.windows[0].step = 7), RangeError, /step/],
    ['a duplicate pending id', (s) => (s.pending[1][0] = s.pending[0][0]), RangeError, /pending/],
    ['a pending prediction after now', (s) => (s.pending.at(-1)[1] = s.now + 1), RangeError, /pending/],
    ['a pending row of another length', (s) => s.pending[0][2].push(0.5), RangeError, /pending/],
    ['a pending prediction in an unknown segment', (s) => (s.pending[0][3] = 'v9'), RangeError, /pending/],
    ['more pending than maxPending', (s) => (s.options.maxPending = 3), RangeError, /maxPending/],
    ['a kept label out of range', (s) => (s.windows[1].buckets[0][3][0] = 4), RangeError, /class index/],
    ['kept rows that do not match the sums', (s) => s.windows[1].buckets[0][2].pop(), RangeError, /scores/],
    ['a duplicate segment', (s) => (s.segments[1].name = s.segments[0].name), RangeError, /segment/],
    ['a reserved segment name', (s) => (s.segments[0].name = '__mine'), RangeError, /reserved/],
    ['more segments than maxSegments', (s) => (s.options.maxSegments = 1), RangeError, /maxSegments/],
    ['segments that labelled more than the monitor', (s) => (s.segments[0].counts.labelled = s.counts.labelled + 1), RangeError, /labelled/],
  ];
  for (const [name, tamper, kind, message] of cases) {
    it(name, () => {
      const s = state();
      tamper(s);
      expectCoded(load(s), kind, message);
      // The JSON text of the same state gets the same answer (NaN becomes null there: still refused).
      if (name !== 'now NaN') expectCoded(load(JSON.stringify(s)), kind, message);
    });
  }

  it('truncated JSON text, at any length', () => {
    const text = JSON.stringify(busy().m);
    for (const cut of [0, 1, 17, Math.floor(text.length / 3), text.length - 1]) expectCoded(load(text.slice(0, cut)), RangeError, /not JSON/);
  });

  it('not a state at all', () => {
    for (const v of [null, 42, [], true]) expectCoded(load(v), TypeError);
    expectCoded(load({}), RangeError, /state\.format/);
  });
});

describe('Monitor.save / Monitor.load', () => {
  it('save then load gives the same monitor; saveAsync too; load refuses what is not a regular file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-monitor-'));
    try {
      const { m, clock } = busy();
      const file = path.join(dir, 'monitor.json');
      m.save(file);
      const back = calibration.Monitor.load(file, { clock: () => clock.now });
      expect(JSON.parse(JSON.stringify(back))).toEqual(JSON.parse(JSON.stringify(m)));
      m.label(150, 2);
      await m.saveAsync(file);
      expect(calibration.Monitor.load(file).counts.labelled).toBe(141);
      expect(fs.readdirSync(dir)).toEqual(['monitor.json']); // no temporary file left behind
      expect((thrown(() => calibration.Monitor.load(dir)) as { code: string }).code).toBe('ERR_SMOOTHCE_JSON_NOT_A_FILE');
      expect((thrown(() => calibration.Monitor.load(file, { maxBytes: 100 })) as { code: string }).code).toBe('ERR_SMOOTHCE_JSON_TOO_LARGE');
      fs.writeFileSync(file, '');
      expectCoded(() => calibration.Monitor.load(file), RangeError, /not JSON/);
      expect(() => m.save(42 as unknown as string)).toThrow(TypeError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a writer SIGKILLed at random moments leaves the old state or the new one, never a broken file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-monitor-kill-'));
    const script = path.join(__dirname, 'helpers', 'monitor-saver.js');
    const r = rng(7);
    // 4 files, each written by 4 writers in turn (the next one continues from the file), all
    // 4 chains at once: a writer spends most of its life loading the addon.
    const chains = 4;
    const perChain = 4;
    const seen = new Set<number>();
    const killOne = (file: string) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, [script, file], { stdio: ['ignore', 'pipe', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d) => (err += d));
        let timer: NodeJS.Timeout | undefined;
        // The first line says the first save is done; then kill at a random moment in the next ~80 ms.
        child.stdout.once('data', () => {
          timer = setTimeout(() => child.kill('SIGKILL'), Math.floor(r() * 80));
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          if (signal === 'SIGKILL') resolve();
          else reject(new Error(`the saver exited ${code}: ${err}`));
        });
      });
    try {
      await Promise.all(
        Array.from({ length: chains }, async (_, c) => {
          const file = path.join(dir, `monitor-${c}.json`);
          for (let trial = 0; trial < perChain; trial++) {
            await killOne(file);
            // Always a whole state that validates: the old one or the new one.
            const m = calibration.Monitor.load(file);
            expect(m.counts.observed % 100, 'a state the saver wrote (observed in steps of 100)').toBe(0);
            seen.add(m.counts.observed);
          }
        }),
      );
      // The kills landed at different points of the writers' loops.
      expect(seen.size).toBeGreaterThan(1);
      // Temporary files of killed writes may remain; the targets are all there.
      expect(fs.readdirSync(dir).filter((f) => !f.endsWith('.tmp')).sort()).toEqual(Array.from({ length: chains }, (_, c) => `monitor-${c}.json`));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
