/**
 * The metrics, finished from sufficient statistics (per-bin counts and sums, NLL and
 * Brier sums) that the native layer computes with ATen. Keeping this step separate is
 * what lets an Accumulator add statistics from many batches and workers and then
 * produce the same report as one pass. Definitions: docs/calibration.md.
 */
import type { NativeBinSums, NativeCalibrationStats } from '../core/native';
import type { Convention, Norm } from './options';
import type { TopLabelRows } from './rows';
import type { RiskCoverage } from './selective';
import type { SmoothEceResult } from './smooth-ece';
import type { SmoothCurve } from './smooth-curve';

/** Per-bin sums as plain arrays. For the torchmetrics convention count has one entry more
 * than edges has gaps: the extra bin for confidence exactly 1.0. Classwise tables hold K
 * rows of `bins` entries, row-major. */
export interface BinTable {
  edges: number[];
  count: number[];
  confSum: number[];
  accSum: number[];
}

export interface Stats {
  n: number;
  classes: number;
  correct: number;
  nllSum: number;
  brierSum: number;
  nllClamped: number;
  top: BinTable;
  classwise?: BinTable;
  adaptive?: BinTable;
  /** Top-label bins within each predicted class (K rows of the uniform bins), from the float64 confidences. */
  topLabel?: BinTable;
  /** Per-row float64 top-label values, when asked for (never kept in an Accumulator's state). */
  rows?: TopLabelRows;
}

/** One bin of a reliability diagram: edges, size, mean confidence and accuracy (null when empty). */
export interface ReliabilityBin {
  lo: number;
  hi: number;
  count: number;
  confidence: number | null;
  accuracy: number | null;
}

function table(t: NativeBinSums): BinTable {
  return {
    edges: Array.from(t.edges.data as Float64Array),
    count: Array.from(t.count.data as Float64Array),
    confSum: Array.from(t.confSum.data as Float64Array),
    accSum: Array.from(t.accSum.data as Float64Array),
  };
}

export function fromNative(s: NativeCalibrationStats): Stats {
  const out: Stats = {
    n: s.n,
    classes: s.classes,
    correct: s.correct,
    nllSum: s.nllSum,
    brierSum: s.brierSum,
    nllClamped: s.nllClamped,
    top: table(s.top),
  };
  if (s.classwise) out.classwise = table(s.classwise);
  if (s.adaptive) out.adaptive = table(s.adaptive);
  if (s.rows) {
    out.rows = {
      n: s.n,
      classes: s.classes,
      confidence: s.rows.confidence.data as Float64Array,
      correct: s.rows.correct.data as Uint8Array,
      predicted: s.rows.predicted.data as Int32Array,
      normalizedMaxLogit: s.rows.normalizedMaxLogit ? (s.rows.normalizedMaxLogit.data as Float64Array) : null,
      order: s.rows.order.data as Int32Array,
      orderNormalized: s.rows.orderNormalized ? (s.rows.orderNormalized.data as Int32Array) : null,
    };
  }
  return out;
}

/**
 * Calibration error of one binning over n samples (n counts samples a convention drops,
 * as Guo's prop_in_bin does):
 *   l1  Σ_b (n_b/n)|acc_b − conf_b|
 *   l2  sqrt(Σ_b (n_b/n)(acc_b − conf_b)²); debiased (Kumar et al. 2019):
 *       sqrt(max(0, Σ_b (n_b/n)[(acc_b − conf_b)² − acc_b(1 − acc_b)/(n_b − 1)])), bins with n_b < 2 adding 0
 *   max max over non-empty bins of |acc_b − conf_b| (0 when all are empty)
 */
export function binError(t: Pick<BinTable, 'count' | 'confSum' | 'accSum'>, n: number, norm: Norm, debias = false, offset = 0, length = t.count.length): number {
  let sum = 0;
  let max = 0;
  for (let b = offset; b < offset + length; b++) {
    const c = t.count[b];
    if (c <= 0) continue;
    const acc = t.accSum[b] / c;
    const gap = acc - t.confSum[b] / c;
    const w = c / n;
    if (norm === 'l1') sum += w * Math.abs(gap);
    else if (norm === 'l2') {
      if (!debias) sum += w * gap * gap;
      else if (c >= 2) sum += w * (gap * gap - (acc * (1 - acc)) / (c - 1));
    } else max = Math.max(max, Math.abs(gap));
  }
  if (norm === 'max') return max;
  if (norm === 'l2') return sum > 0 ? Math.sqrt(sum) : 0;
  return sum;
}

/** Classwise ECE (Kull et al. 2019): (1/K) Σ_k Σ_b (n_kb/n)|mean 1[y = k] − mean p_k|. */
export function classwiseEce(t: BinTable, n: number, classes: number): number {
  const per = t.count.length / classes;
  let sum = 0;
  for (let k = 0; k < classes; k++) sum += binError(t, n, 'l1', false, k * per, per);
  return sum / classes;
}

/**
 * Index of the uniform bin a confidence falls in under a convention, with the edges the
 * native pass compared against: guo (lo, hi] (0 is dropped: −1), torchmetrics [lo, hi) with
 * 1.0 in an extra bin B, netcal [lo, hi) with the last bin closed.
 */
export function uniformBin(c: number, edges: number[], convention: Convention): number {
  const b = edges.length - 1;
  // count of edges below c (guo) or at most c (the others), by binary search
  let lo = 0;
  let hi = edges.length;
  const below = convention === 'guo' ? (e: number) => e < c : (e: number) => e <= c;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (below(edges[mid])) lo = mid + 1;
    else hi = mid;
  }
  const i = lo - 1;
  if (convention === 'guo') return i < 0 ? -1 : Math.min(i, b - 1);
  if (convention === 'torchmetrics') return Math.min(Math.max(i, 0), b);
  return Math.min(Math.max(i, 0), b - 1);
}

/** Top-label bins per predicted class: K rows of the uniform bins (torchmetrics: B + 1 per row). */
export function* topLabelTable(rows: TopLabelRows, edges: number[], convention: Convention): Generator<void, BinTable> {
  const per = edges.length - 1 + (convention === 'torchmetrics' ? 1 : 0);
  const size = per * rows.classes;
  const t: BinTable = { edges: edges.slice(), count: new Array(size).fill(0), confSum: new Array(size).fill(0), accSum: new Array(size).fill(0) };
  for (let i = 0; i < rows.n; i++) {
    if ((i & 0x3fff) === 0x3fff) yield;
    const b = uniformBin(rows.confidence[i], edges, convention);
    if (b < 0) continue;
    const j = rows.predicted[i] * per + b;
    t.count[j]++;
    t.confSum[j] += rows.confidence[i];
    t.accSum[j] += rows.correct[i];
  }
  return t;
}

/** The bins of a table as reliability-diagram rows (the torchmetrics extra bin is [1, 1]). */
export function reliabilityBins(t: BinTable): ReliabilityBin[] {
  const out: ReliabilityBin[] = [];
  for (let b = 0; b < t.count.length; b++) {
    const extra = b >= t.edges.length - 1;
    const c = t.count[b];
    out.push({
      lo: extra ? 1 : t.edges[b],
      hi: extra ? 1 : t.edges[b + 1],
      count: c,
      confidence: c > 0 ? t.confSum[b] / c : null,
      accuracy: c > 0 ? t.accSum[b] / c : null,
    });
  }
  return out;
}

export interface CalibrationReport {
  /** Number of samples. */
  n: number;
  /** Number of classes K. */
  classes: number;
  /** Top-1 accuracy (argmax ties go to the lowest class index). */
  accuracy: number;
  /** Mean negative log-likelihood −(1/N) Σ log p_y. */
  nll: number;
  /** Multiclass Brier score (1/N) Σ_i Σ_k (p_ik − 1[y_i = k])², in [0, 2]. */
  brier: number;
  /** Expected calibration error (l1, uniform bins). */
  ece: number;
  /** Maximum calibration error over non-empty bins. */
  mce: number;
  /** RMS calibration error (l2, uniform bins, plug-in estimator). */
  rmsce: number;
  /** ECE over equal-mass bins; null in an Accumulator report (cannot be streamed). */
  adaptiveEce: number | null;
  /** Classwise ECE (Kull et al.). */
  classwiseEce: number;
  /**
   * Top-label ECE (Gupta & Ramdas, ICLR 2022): the uniform-bin ECE of the top confidence within
   * each predicted class, weighted by the class's share of rows: Σ_k Σ_b (n_kb/N)|acc_kb − conf_kb|.
   * Bins the float64 confidences (see smoothEce) with this report's bins and convention.
   */
  topLabelEce: number;
  /**
   * SmoothECE (Błasiok & Nakkiran, ICLR 2024) of (top probability, correct), as Apple's relplot
   * 1.0.3 smECE computes it with its defaults; exact in an Accumulator too.
   */
  smoothEce: number;
  /** The bandwidth σ relplot's fixed-point search chose (a multiple of 1/1024). */
  smoothEceBandwidth: number;
  /** The smooth reliability curve at that bandwidth (for reliabilityDiagram kind: 'smooth'). */
  smoothCurve: SmoothCurve;
  /**
   * Area under the risk–coverage curve, rows ranked by `selective.score` (stable: equal scores
   * keep input order); null in an Accumulator report (a ranking cannot be streamed).
   */
  aurc: number | null;
  /** The risk–coverage curve and the score that ranked it; null in an Accumulator report. */
  selective: RiskCoverage | null;
  /** Top-label uniform bins, for a reliability diagram. */
  bins: ReliabilityBin[];
  /** Things worth knowing about this report (binary task, clamped probabilities, ...). */
  notes: string[];
  convention: Convention;
  /** The temperature the logits were divided by (1 unless given). */
  temperature: number;
}

/** What report() adds from the per-row pass (smooth-ece.ts, selective.ts). */
export interface RowExtras {
  smooth: SmoothEceResult;
  curve: SmoothCurve;
  selective: RiskCoverage | null;
}

export function buildReport(s: Stats, convention: Convention, temperature: number, extraNotes: string[] = [], extras?: RowExtras): CalibrationReport {
  const notes: string[] = [];
  if (s.classes === 2) {
    notes.push(
      'Binary task (K = 2): label smoothing has little effect here. With one wrong class there is no mass to ' +
        'spread across alternatives; smoothing only caps the target at 1 − ε/2, much like a fixed temperature.',
    );
  }
  if (convention === 'torchmetrics') {
    const extra = s.top.count[s.top.count.length - 1];
    if (extra > 0) {
      notes.push(
        `${extra} sample(s) with confidence exactly 1.0 fell in torchmetrics' extra (B+1)-th bin [1, 1] ` +
          '(bucketize(right=True) − 1 puts 1.0 past the last edge).',
      );
    }
  }
  if (s.nllClamped > 0) {
    notes.push(
      `${s.nllClamped} sample(s) gave the true class probability 0; NLL used the dtype's machine epsilon instead ` +
        '(as scikit-learn log_loss clips), so it is finite but large.',
    );
  }
  if (s.adaptive && s.adaptive.count.length < s.top.count.length && s.n < s.top.edges.length - 1) {
    notes.push(`Only ${s.n} sample(s): equal-mass binning used ${s.n} part(s) instead of ${s.top.edges.length - 1}.`);
  }
  notes.push(...extraNotes);
  return {
    n: s.n,
    classes: s.classes,
    accuracy: s.correct / s.n,
    nll: s.nllSum / s.n,
    brier: s.brierSum / s.n,
    ece: binError(s.top, s.n, 'l1'),
    mce: binError(s.top, s.n, 'max'),
    rmsce: binError(s.top, s.n, 'l2'),
    adaptiveEce: s.adaptive ? binError(s.adaptive, s.n, 'l1') : null,
    classwiseEce: s.classwise ? classwiseEce(s.classwise, s.n, s.classes) : NaN,
    topLabelEce: s.topLabel ? binError(s.topLabel, s.n, 'l1') : NaN,
    smoothEce: extras ? extras.smooth.value : NaN,
    smoothEceBandwidth: extras ? extras.smooth.bandwidth : NaN,
    smoothCurve: extras ? extras.curve : { x: [], y: [], density: [], bandwidth: NaN, bootstrap: 0 },
    aurc: extras?.selective ? extras.selective.aurc : null,
    selective: extras?.selective ?? null,
    bins: reliabilityBins(s.top),
    notes,
    convention,
    temperature,
  };
}
