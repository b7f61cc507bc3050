/**
 * One training run per (seed, ε) — a "job" — and a sweep: the jobs of several ε over
 * several seeds, summarised per ε (mean, sd) and as paired differences against the
 * first ε (the same seed gives the same split, noise, initial weights and batch order at
 * every ε, so the runs differ only in ε).
 *
 * A job is a pure function of its spec: the same spec gives the same numbers whichever
 * thread runs it, so spreading jobs over worker_threads does not change any result.
 */
import * as calibration from '../calibration';
import type { ReliabilityBin } from '../calibration';
import { tensor } from '../core/tensor';
import { flipLabels, loadDigits, selectDigits, split, type Dataset } from './data';
import { Rng } from './rng';
import { pairedDifference, summarize, type Difference, type Summary } from './stats';
import { agreement, argmax, train, type EpochInfo } from './train';

export const BINARY_DIGITS = [3, 8];

/** MCE here ignores bins holding fewer test samples than this (a bin of 1-2 samples is all noise). */
export const MCE_MIN_COUNT = 10;

export interface JobSpec {
  seed: number;
  eps: number;
  noise: number;
  hidden: number;
  epochs: number;
  batchSize: number;
  lr: number;
  bins: number;
  binary: boolean;
  dataFile?: string;
}

export interface SeedRun {
  seed: number;
  eps: number;
  /** Metrics on the clean test labels. */
  test: {
    accuracy: number;
    nll: number;
    brier: number;
    ece: number;
    /** Largest |accuracy − confidence| over the bins with at least MCE_MIN_COUNT test samples (null if none). */
    mce: number | null;
    /** The same over every non-empty bin, however small (calibration.report's mce). */
    mceAllBins: number;
    rmsce: number;
    adaptiveEce: number | null;
    classwiseEce: number;
    /** SmoothECE (relplot 1.0.3's smECE) of the test set. */
    smoothEce: number;
    /** Area under the risk–coverage curve, rows ranked by the top probability (lower is better). */
    aurc: number;
    /** The same, ranked by Xia et al.'s normalised max logit (logit normalisation). */
    aurcNormalized: number;
  };
  /** Temperature scaling fitted on the (clean) validation set, and the test set rescaled by it. */
  temperature: {
    temperature: number;
    /** The fit ended at its search bound (T in [1e-6, 1e6]): the validation logits separate the classes, T is not a usable estimate. */
    atBound: boolean;
    validationNllBefore: number;
    validationNllAfter: number;
    testNll: number;
    testEce: number;
  };
  train: {
    /** Accuracy on the training labels as given to the model (with the flipped ones). */
    noisyAccuracy: number;
    /** Accuracy on the true training labels. */
    cleanAccuracy: number;
    /** Fraction of flipped examples predicted as their wrong (flipped) label; null when no label was flipped. */
    memorized: number | null;
    /** Mean (smoothed) training loss of the last epoch. */
    finalLoss: number;
  };
  /** train.cleanAccuracy − test.accuracy: both against true labels. */
  gap: number;
  /** Reliability-diagram bins of the test set. */
  bins: ReliabilityBin[];
}

export interface DataInfo {
  task: string;
  classes: number[];
  train: number;
  validation: number;
  test: number;
  flipped: number;
}

const cache = new Map<string, Dataset>();
function digits(file: string | undefined, binary: boolean): Dataset {
  const key = `${file ?? ''}|${binary}`;
  let data = cache.get(key);
  if (!data) {
    data = loadDigits(file);
    if (binary) data = selectDigits(data, BINARY_DIGITS);
    cache.set(key, data);
  }
  return data;
}

/** The split and the noisy labels of a seed, as every job of that seed sees them. */
export function prepare(spec: Pick<JobSpec, 'seed' | 'noise' | 'binary' | 'dataFile'>) {
  const data = digits(spec.dataFile, spec.binary);
  const rng = new Rng(spec.seed);
  const sets = split(data, rng);
  const noisy = flipLabels(sets.train.y, data.classes, spec.noise, rng);
  // One seed for the model and batch order, the same for every ε: the runs differ only in ε.
  const modelSeed = rng.int(0, 2 ** 31 - 1);
  const info: DataInfo = {
    task: spec.binary ? `digits ${BINARY_DIGITS.join(' vs ')} (2 classes)` : 'digits 0-9 (10 classes)',
    classes: data.classNames,
    train: sets.train.n,
    validation: sets.validation.n,
    test: sets.test.n,
    flipped: noisy.flipped.length,
  };
  return { data, ...sets, noisy, modelSeed, info };
}

function labels(y: Int32Array) {
  return tensor(y, [y.length], 'int32');
}

function mceOf(bins: readonly ReliabilityBin[], minCount: number): number | null {
  let worst: number | null = null;
  for (const b of bins) {
    if (b.count < minCount || b.accuracy === null || b.confidence === null) continue;
    const e = Math.abs(b.accuracy - b.confidence);
    if (worst === null || e > worst) worst = e;
  }
  return worst;
}

/** Trains one model and scores it. `onEpoch` gets the epoch number (no validation pass unless asked). */
export function runJob(spec: JobSpec, onEpoch?: (info: EpochInfo) => void, validationEveryEpoch = false): SeedRun {
  const { data, train: trainSet, validation, test, noisy, modelSeed } = prepare(spec);
  const k = data.classes;
  let last = NaN;
  const model = train(
    trainSet,
    noisy.y,
    validation,
    {
      eps: spec.eps,
      epochs: spec.epochs,
      hidden: spec.hidden,
      batchSize: spec.batchSize,
      lr: spec.lr,
      seed: modelSeed,
      validationEveryEpoch,
    },
    (info) => {
      last = info.loss;
      onEpoch?.(info);
    },
  );
  const trainPred = argmax(model.forward(trainSet.x, trainSet.n), k);
  const valLogits = model.forward(validation.x, validation.n);
  const testLogits = model.forward(test.x, test.n);
  const testT = tensor(testLogits, [test.n, k], 'float64');
  const report = calibration.report(testT, labels(test.y), { from: 'logits', bins: spec.bins });
  const fit = calibration.fitTemperature(tensor(valLogits, [validation.n, k], 'float64'), labels(validation.y));
  const after = calibration.report(testT, labels(test.y), { from: 'logits', bins: spec.bins, temperature: fit.temperature });
  const normalized = calibration.report(testT, labels(test.y), { from: 'logits', bins: spec.bins, selectiveScore: 'normalized-max-logit' });
  const bins = report.bins.map((b) => ({ lo: b.lo, hi: b.hi, count: b.count, confidence: b.confidence, accuracy: b.accuracy }));
  const cleanAccuracy = agreement(trainPred, trainSet.y);
  return {
    seed: spec.seed,
    eps: spec.eps,
    test: {
      accuracy: report.accuracy,
      nll: report.nll,
      brier: report.brier,
      ece: report.ece,
      mce: mceOf(bins, MCE_MIN_COUNT),
      mceAllBins: report.mce,
      rmsce: report.rmsce,
      adaptiveEce: report.adaptiveEce,
      classwiseEce: report.classwiseEce,
      smoothEce: report.smoothEce,
      aurc: report.aurc!,
      aurcNormalized: normalized.aurc!,
    },
    temperature: {
      temperature: fit.temperature,
      atBound: fit.atBound,
      validationNllBefore: fit.nllBefore,
      validationNllAfter: fit.nllAfter,
      testNll: after.nll,
      testEce: after.ece,
    },
    train: {
      noisyAccuracy: agreement(trainPred, noisy.y),
      cleanAccuracy,
      memorized: noisy.flipped.length === 0 ? null : agreement(trainPred, noisy.y, noisy.flipped),
      finalLoss: last,
    },
    gap: cleanAccuracy - report.accuracy,
    bins,
  };
}

/** The metrics summarised over seeds and compared between ε values. */
export const METRICS = {
  accuracy: (r: SeedRun) => r.test.accuracy,
  nll: (r: SeedRun) => r.test.nll,
  brier: (r: SeedRun) => r.test.brier,
  ece: (r: SeedRun) => r.test.ece,
  mce: (r: SeedRun) => r.test.mce,
  smoothEce: (r: SeedRun) => r.test.smoothEce,
  aurc: (r: SeedRun) => r.test.aurc,
  aurcNormalized: (r: SeedRun) => r.test.aurcNormalized,
  /** AURC(top probability) − AURC(normalised max logit): > 0 where logit normalisation ranks errors better. */
  aurcNormalizationGain: (r: SeedRun) => r.test.aurc - r.test.aurcNormalized,
  /** The three temperature metrics are null for a seed whose fit ended at the bound. */
  temperature: (r: SeedRun) => (r.temperature.atBound ? null : r.temperature.temperature),
  nllAfterTemperature: (r: SeedRun) => (r.temperature.atBound ? null : r.temperature.testNll),
  eceAfterTemperature: (r: SeedRun) => (r.temperature.atBound ? null : r.temperature.testEce),
  trainAccuracyClean: (r: SeedRun) => r.train.cleanAccuracy,
  trainAccuracyNoisy: (r: SeedRun) => r.train.noisyAccuracy,
  gap: (r: SeedRun) => r.gap,
  memorized: (r: SeedRun) => r.train.memorized,
} as const satisfies Record<string, (r: SeedRun) => number | null>;

export type MetricKey = keyof typeof METRICS;
export const METRIC_KEYS = Object.keys(METRICS) as MetricKey[];

export interface SweepSpec {
  /** robustness, calibration, over-correction, binary, or default for the plain demo run. */
  name: string;
  /** What the regime is meant to show, in a sentence. */
  title: string;
  noise: number;
  hidden: number;
  epochs: number;
  eps: number[];
  seeds: number[];
  batchSize: number;
  lr: number;
  bins: number;
  binary: boolean;
  dataFile?: string;
}

export interface EpsSummary {
  eps: number;
  metrics: Record<MetricKey, Summary>;
  /** Seeds whose temperature fit ended at its search bound (left out of the temperature rows). */
  temperatureAtBound: number;
}

export interface EpsDifference {
  eps: number;
  baseline: number;
  metrics: Record<MetricKey, Difference>;
}

export interface SweepReport {
  name: string;
  title: string;
  task: string;
  settings: Omit<SweepSpec, 'name' | 'title' | 'dataFile'> & {
    optimizer: string;
    classes: number[];
    train: number;
    validation: number;
    test: number;
    flipped: number;
    mceMinCount: number;
  };
  /**
   * Symmetric noise at rate η over K classes makes the expected training target
   * (1 − η) on the true class and η/(K − 1) on each other one: the same as label smoothing with
   * ε = ηK/(K − 1). Compare it with the temperature fitted at ε = 0.
   */
  noiseAsSmoothing: { noise: number; classes: number; eps: number; temperatureAtEps0: number | null };
  /** Every (ε, seed) run: ε in settings.eps order, then seed in settings.seeds order. */
  runs: SeedRun[];
  summary: EpsSummary[];
  /** Paired over seeds, each ε other than the first against the first. */
  differences: EpsDifference[];
  /** What the differences say, in words. */
  findings: string[];
  notes: string[];
}

export function jobsOf(spec: SweepSpec): JobSpec[] {
  const jobs: JobSpec[] = [];
  for (const eps of spec.eps)
    for (const seed of spec.seeds)
      jobs.push({
        seed,
        eps,
        noise: spec.noise,
        hidden: spec.hidden,
        epochs: spec.epochs,
        batchSize: spec.batchSize,
        lr: spec.lr,
        bins: spec.bins,
        binary: spec.binary,
        dataFile: spec.dataFile,
      });
  return jobs;
}

function mapMetrics<T>(f: (key: MetricKey) => T): Record<MetricKey, T> {
  return Object.fromEntries(METRIC_KEYS.map((k) => [k, f(k)])) as Record<MetricKey, T>;
}

const fmtEps = (e: number) => String(e);
/** Signed, with "+" for a value that rounds to zero ("+0.0", never "−0.0"). */
const signed = (v: number, digits: number) => {
  const text = Math.abs(v).toFixed(digits);
  return `${v < 0 && Number(text) !== 0 ? '−' : '+'}${text}`;
};
const pts = (v: number) => `${signed(v * 100, 1)} pts`;
const dec = (v: number) => signed(v, 3);

/** How findings name and print each metric worth a sentence. */
const FINDING_METRICS: [MetricKey, string, (v: number) => string][] = [
  ['accuracy', 'test accuracy', pts],
  ['ece', 'test ECE', dec],
  ['nll', 'test NLL', dec],
  ['brier', 'test Brier', dec],
  ['memorized', 'memorisation of flipped labels', pts],
  ['eceAfterTemperature', 'test ECE after temperature scaling', dec],
  ['aurc', 'test AURC (ranked by top probability)', dec],
  ['aurcNormalized', 'test AURC (ranked by normalised max logit)', dec],
];

/** Assembles a sweep's report from its runs (in jobsOf order). */
export function assembleSweep(spec: SweepSpec, runs: SeedRun[]): SweepReport {
  const info = prepare({ seed: spec.seeds[0], noise: spec.noise, binary: spec.binary, dataFile: spec.dataFile }).info;
  const k = info.classes.length;
  const at = (eps: number) => runs.filter((r) => r.eps === eps);
  const summary: EpsSummary[] = spec.eps.map((eps) => {
    const rs = at(eps);
    return {
      eps,
      metrics: mapMetrics((key) => summarize(rs.map(METRICS[key]))),
      temperatureAtBound: rs.filter((r) => r.temperature.atBound).length,
    };
  });
  const base = spec.eps[0];
  const baseRuns = at(base);
  const differences: EpsDifference[] = spec.eps.slice(1).map((eps) => {
    const rs = at(eps);
    return { eps, baseline: base, metrics: mapMetrics((key) => pairedDifference(rs.map(METRICS[key]), baseRuns.map(METRICS[key]))) };
  });

  const findings: string[] = [];
  for (const d of differences) {
    const beyond: string[] = [];
    const within: string[] = [];
    for (const [key, name, fmt] of FINDING_METRICS) {
      const m = d.metrics[key];
      if (m.mean === null) continue;
      const seeds = m.perSeed.filter((v): v is number => v !== null);
      const up = seeds.filter((v) => v > 0).length;
      const down = seeds.filter((v) => v < 0).length;
      const signs =
        up === 0 && down === 0
          ? `unchanged in all ${seeds.length} seeds`
          : up >= down
            ? `up in ${up} of ${seeds.length} seeds`
            : `down in ${down} of ${seeds.length} seeds`;
      const text = `${name} ${fmt(m.mean)}${m.sd !== null ? ` (sd ${fmt(m.sd).replace(/^[+−]/, '')}, ${signs})` : ''}`;
      (m.exceedsSeedNoise ? beyond : within).push(text);
    }
    const n = d.metrics.accuracy.n;
    const head = `ε = ${fmtEps(d.eps)} against ε = ${fmtEps(d.baseline)}, paired over ${n} seed${n === 1 ? '' : 's'}: `;
    if (n < 2) {
      findings.push(head + 'one seed cannot separate an effect from seed noise; run at least 3 (--seeds).');
      continue;
    }
    findings.push(
      head +
        (beyond.length ? `beyond seed noise (95% interval excludes 0): ${beyond.join(', ')}` : 'no difference exceeds the seed noise') +
        (within.length ? `; within seed noise: ${within.join(', ')}.` : '.'),
    );
  }

  const notes: string[] = [];
  const atBound = runs.filter((r) => r.temperature.atBound);
  if (atBound.length > 0) {
    notes.push(
      `${atBound.length} of ${runs.length} runs fitted a temperature at its search bound [1e-6, 1e6] (atBound: the validation ` +
        'logits separate the classes, so the NLL keeps falling as T → 0 or ∞); their temperature, NLL and ECE after ' +
        'temperature are not estimates and are left out of those rows (marked †).',
    );
  }
  if (k === 2 && differences.length > 0) {
    const parts = differences.map((d) => {
      const acc = d.metrics.accuracy;
      const mem = d.metrics.memorized;
      return (
        `ε = ${fmtEps(d.eps)}: test accuracy ${acc.mean === null ? '–' : pts(acc.mean)}` +
        (mem.mean === null ? '' : `, memorisation ${pts(mem.mean)}`) +
        ` (${acc.exceedsSeedNoise || mem.exceedsSeedNoise ? 'beyond' : 'within'} seed noise)`
      );
    });
    notes.push(
      `Binary task (K = 2), measured here over ${spec.seeds.length} seeds against ε = ${fmtEps(base)}: ${parts.join('; ')}. ` +
        'With one wrong class, smoothing only lowers the target from 1 to 1 − ε/2; there is no set of alternatives to spread mass over.',
    );
  }
  const t0 = summary[0].metrics.temperature.mean;
  const epsNoise = spec.noise * (k / (k - 1));
  return {
    name: spec.name,
    title: spec.title,
    task: info.task,
    settings: {
      noise: spec.noise,
      hidden: spec.hidden,
      epochs: spec.epochs,
      eps: spec.eps.slice(),
      seeds: spec.seeds.slice(),
      batchSize: spec.batchSize,
      lr: spec.lr,
      bins: spec.bins,
      binary: spec.binary,
      optimizer: 'Adam',
      classes: info.classes,
      train: info.train,
      validation: info.validation,
      test: info.test,
      flipped: info.flipped,
      mceMinCount: MCE_MIN_COUNT,
    },
    noiseAsSmoothing: { noise: spec.noise, classes: k, eps: epsNoise, temperatureAtEps0: t0 },
    runs,
    summary,
    differences,
    findings,
    notes,
  };
}
