/**
 * The demo end to end. `runDemo` is the default run: the digits with 20% of the training
 * labels flipped, the same MLP trained at ε = 0 and 0.1 for 300 epochs over several seeds,
 * scored on the clean test labels, with per-seed values, means and paired differences.
 * `runStudy` runs the four regimes of docs/demo.md (robustness, over-confident calibration,
 * clean over-correction, binary), each an ε sweep over seeds, and draws them.
 * Both spread their (seed, ε) runs over worker_threads; the numbers do not depend on it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rangeError, typeError } from '../core/errors';
import { assembleSweep, jobsOf, type SweepReport, type SweepSpec } from './experiment';
import { renderPng, sweepPlot } from './plot';
import { jobCost, runJobs } from './pool';

export interface DemoOptions {
  /** Label-smoothing values to compare, the first one the baseline; default [0, 0.1]. */
  eps?: number[];
  /** Fraction of training labels flipped to another class; default 0.2. */
  noise?: number;
  /** The first seed; the run uses seeds seed, seed + 1, ... Default 1. */
  seed?: number;
  /** How many seeds; default 8 (enough for a paired 95% interval to separate effects of a few sd's). */
  seeds?: number;
  epochs?: number;
  hidden?: number;
  batchSize?: number;
  lr?: number;
  /** Bins of the calibration metrics; default 15. */
  bins?: number;
  /** Two classes only (digits 3 and 8) instead of ten. */
  binary?: boolean;
  /** A smoke run: 20 epochs (and, in the study, 3 epochs of 16 hidden units); the numbers show nothing. */
  quick?: boolean;
  /** Worker threads; default one per core. 1 runs on the calling thread (same numbers). */
  threads?: number;
  /** Folder for the report and plots; null writes nothing. Default './demo-output'. */
  out?: string | null;
  /** The gzipped CSV to read; default the copy in data/. */
  dataFile?: string;
}

export interface DemoHooks {
  /** Progress in units of work (roughly multiply-adds): done of total. */
  onProgress?(done: number, total: number): void;
}

export type DemoReport = SweepReport & { files?: { report: string; svg: string; png?: string } };

export interface StudyReport {
  /** One entry per regime: robustness, calibration, over-correction, binary. */
  regimes: SweepReport[];
  notes: string[];
  files?: { report: string; svg: string; png?: string };
}

export const DEFAULTS = {
  eps: [0, 0.1],
  noise: 0.2,
  seed: 1,
  seeds: 8,
  epochs: 300,
  hidden: 64,
  batchSize: 32,
  lr: 1e-3,
  bins: 15,
  out: './demo-output',
} as const;

/** The --quick settings: a smoke run that finishes in seconds. */
export const QUICK = { epochs: 20, studyEpochs: 3, studyHidden: 16 } as const;

/** The study's regimes (docs/demo.md): what each is meant to show, and its settings. */
export const REGIMES: readonly Omit<SweepSpec, 'seeds' | 'batchSize' | 'lr' | 'bins' | 'dataFile'>[] = [
  {
    name: 'robustness',
    title: 'Robustness to noisy labels: the baseline memorises the flipped labels',
    noise: 0.2,
    hidden: 64,
    epochs: 300,
    eps: [0, 0.1, 0.2],
    binary: false,
  },
  {
    name: 'calibration',
    title: 'Calibration: the baseline is over-confident',
    noise: 0.4,
    hidden: 128,
    epochs: 200,
    eps: [0, 0.1, 0.2],
    binary: false,
  },
  {
    name: 'over-correction',
    title: 'Over-correction: a clean, only slightly over-confident baseline',
    noise: 0,
    hidden: 128,
    epochs: 200,
    eps: [0, 0.01, 0.1],
    binary: false,
  },
  {
    name: 'binary',
    title: 'Binary task (digits 3 vs 8): one wrong class to spread mass over',
    noise: 0.2,
    hidden: 64,
    epochs: 60,
    eps: [0, 0.1, 0.2],
    binary: true,
  },
];

function checkNumber(name: string, value: unknown, ok: (v: number) => boolean, expected: string): number {
  if (typeof value !== 'number') throw typeError(name, expected, value);
  if (!ok(value)) throw rangeError(name, expected, value);
  return value;
}

const isInt = (lo: number, hi = Number.MAX_SAFE_INTEGER) => (v: number) => Number.isInteger(v) && v >= lo && v <= hi;

function checkObject(options: unknown): asserts options is Record<string, unknown> {
  if (options === null || typeof options !== 'object') throw typeError('options', 'an object', options);
}

function common(options: DemoOptions) {
  const seed = checkNumber('seed', options.seed ?? DEFAULTS.seed, isInt(-(2 ** 31), 2 ** 31 - 101), 'an integer in [-2^31, 2^31 - 101]');
  const count = checkNumber('seeds', options.seeds ?? DEFAULTS.seeds, isInt(1, 100), 'an integer in [1, 100]');
  if (options.threads !== undefined) checkNumber('threads', options.threads, isInt(1, 256), 'an integer in [1, 256]');
  if (options.quick !== undefined && typeof options.quick !== 'boolean') throw typeError('quick', 'a boolean', options.quick);
  const out = options.out === undefined ? DEFAULTS.out : options.out;
  if (out !== null && typeof out !== 'string') throw typeError('out', 'a folder path (string) or null', out);
  if (options.dataFile !== undefined && typeof options.dataFile !== 'string') throw typeError('dataFile', 'a file path (string)', options.dataFile);
  return {
    seeds: Array.from({ length: count }, (_, i) => seed + i),
    quick: options.quick ?? false,
    threads: options.threads,
    out,
    dataFile: options.dataFile,
    bins: checkNumber('bins', options.bins ?? DEFAULTS.bins, isInt(1, 1000), 'an integer in [1, 1000]'),
    batchSize: checkNumber('batchSize', options.batchSize ?? DEFAULTS.batchSize, isInt(1), 'an integer ≥ 1'),
    lr: checkNumber('lr', options.lr ?? DEFAULTS.lr, (v) => v > 0 && Number.isFinite(v), 'a positive number'),
  };
}

function resolve(options: DemoOptions) {
  checkObject(options);
  const c = common(options);
  const eps = options.eps ?? [...DEFAULTS.eps];
  if (!Array.isArray(eps) || eps.length === 0) throw typeError('eps', 'a non-empty array of numbers in [0, 1]', eps);
  eps.forEach((e, i) => checkNumber(`eps[${i}]`, e, (v) => v >= 0 && v <= 1, 'a number in [0, 1]'));
  if (new Set(eps).size !== eps.length) throw rangeError('eps', 'distinct values', eps);
  if (options.binary !== undefined && typeof options.binary !== 'boolean') throw typeError('binary', 'a boolean', options.binary);
  const epochs = checkNumber('epochs', options.epochs ?? (c.quick ? QUICK.epochs : DEFAULTS.epochs), isInt(1, 100_000), 'an integer ≥ 1');
  const spec: SweepSpec = {
    name: 'default',
    title: 'The default run: ε against the ε = 0 baseline on noisy labels',
    noise: checkNumber('noise', options.noise ?? DEFAULTS.noise, (v) => v >= 0 && v < 1, 'a number in [0, 1)'),
    hidden: checkNumber('hidden', options.hidden ?? DEFAULTS.hidden, isInt(1, 4096), 'an integer in [1, 4096]'),
    epochs,
    eps: eps.slice(),
    seeds: c.seeds,
    batchSize: c.batchSize,
    lr: c.lr,
    bins: c.bins,
    binary: options.binary ?? false,
    dataFile: c.dataFile,
  };
  return { spec, ...c };
}

/** Runs every job of the sweeps on the pool and reports progress in cost units. */
async function runSweeps(specs: SweepSpec[], threads: number | undefined, hooks: DemoHooks): Promise<SweepReport[]> {
  const jobs = specs.flatMap(jobsOf);
  const perEpoch = jobs.map((j) => jobCost(j) / j.epochs);
  const total = perEpoch.reduce((a, b, i) => a + b * jobs[i].epochs, 0);
  let done = 0;
  hooks.onProgress?.(0, total);
  const runs = await runJobs(jobs, {
    threads,
    onEpoch(job) {
      done += perEpoch[job];
      hooks.onProgress?.(Math.min(done, total), total);
    },
  });
  const reports: SweepReport[] = [];
  let at = 0;
  for (const spec of specs) {
    const n = spec.eps.length * spec.seeds.length;
    reports.push(assembleSweep(spec, runs.slice(at, at + n)));
    at += n;
  }
  return reports;
}

function quickNote(quick: boolean): string[] {
  return quick ? ['--quick: a smoke run with few epochs; its numbers do not show what label smoothing does.'] : [];
}

function writeFiles(out: string, base: string, svg: string, notes: string[]) {
  fs.mkdirSync(out, { recursive: true });
  const files: { report: string; svg: string; png?: string } = {
    report: path.join(out, `${base}.json`),
    svg: path.join(out, `${base}.svg`),
  };
  fs.writeFileSync(files.svg, svg);
  const png = renderPng(svg);
  if (png.ok) {
    files.png = path.join(out, `${base}.png`);
    fs.writeFileSync(files.png, png.png);
  } else notes.push(png.reason);
  return files;
}

/**
 * The default run. Checks its options at once (TypeError / RangeError), then resolves to the
 * report; writes `report.json` and `report.svg`/`.png` (the metrics against ε) into `out`.
 * The same options give the same report, whatever the number of threads.
 */
export function runDemo(options: DemoOptions = {}, hooks: DemoHooks = {}): Promise<DemoReport> {
  const o = resolve(options);
  return (async () => {
    const [sweep] = await runSweeps([o.spec], o.threads, hooks);
    const report: DemoReport = { ...sweep, notes: [...sweep.notes, ...quickNote(o.quick)] };
    if (o.out !== null) {
      const prefix = o.spec.binary ? 'binary-' : '';
      const svg = sweepPlot([report], { title: `${report.task}: metrics against label smoothing ε` });
      report.files = writeFiles(o.out, `${prefix}report`, svg, report.notes);
      fs.writeFileSync(report.files.report, JSON.stringify(report, null, 2) + '\n');
    }
    return report;
  })();
}

export type StudyOptions = Pick<DemoOptions, 'seed' | 'seeds' | 'quick' | 'threads' | 'out' | 'dataFile' | 'bins' | 'batchSize' | 'lr'>;

/** The regimes' specs for these options (the settings of REGIMES, or the --quick ones). */
export function studySpecs(options: StudyOptions = {}): SweepSpec[] {
  checkObject(options);
  const c = common(options);
  return REGIMES.map((r) => ({
    ...r,
    eps: r.eps.slice(),
    epochs: c.quick ? QUICK.studyEpochs : r.epochs,
    hidden: c.quick ? Math.min(r.hidden, QUICK.studyHidden) : r.hidden,
    seeds: c.seeds,
    batchSize: c.batchSize,
    lr: c.lr,
    bins: c.bins,
    dataFile: c.dataFile,
  }));
}

/** The study: every regime's ε sweep over the seeds; writes study.json, study.svg and study.png into `out`. */
export function runStudy(options: StudyOptions = {}, hooks: DemoHooks = {}): Promise<StudyReport> {
  const specs = studySpecs(options);
  const c = common(options);
  return (async () => {
    const regimes = await runSweeps(specs, c.threads, hooks);
    const report: StudyReport = { regimes, notes: quickNote(c.quick) };
    if (c.out !== null) {
      const svg = sweepPlot(regimes, { title: 'What label smoothing does, regime by regime (mean ± sd over seeds, clean test labels)' });
      report.files = writeFiles(c.out, 'study', svg, report.notes);
      fs.writeFileSync(report.files.report, JSON.stringify(report, null, 2) + '\n');
    }
    return report;
  })();
}
