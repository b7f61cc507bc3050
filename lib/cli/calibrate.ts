/**
 * npx smoothce calibrate --scores x.npy --labels y.npy [--from logits] [--bins 15]
 *   [--convention guo] [--temperature T] [--fit-temperature] [--plot out.svg|out.png] [--json]
 *   [--diagram binned|smooth] [--band N] [--selective-score msp|normalized-max-logit]
 *   [--fit METHOD --out calibrator.json] [--calibrator calibrator.json]
 * Prints a calibration report as a table (or JSON) and writes a reliability diagram.
 * --fit fits a recalibrator (calibration.fitCalibrator) on the scores and labels, saves it
 * and reports the calibrated scores; --calibrator applies a saved one before reporting.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { ERROR_CODES, rangeErrorMessage } from '../core/errors';
import { deviceFlag, EXIT, nameFlags, requireDevice } from './common';
import { calibration } from '../index';
import { readNpy } from '../parity/npy';
import { readJsonText } from '../parity/untrusted-json';
import type { Tensor } from '../core/tensor';
import type { Device } from '../core/options';
import type { CalibrationReport, Convention, ScoreKind, SelectiveScore } from '../calibration';

export interface CalibrateOptions {
  scores: string;
  labels: string;
  from?: ScoreKind;
  bins?: number;
  convention?: Convention;
  temperature?: number;
  fitTemperature?: boolean;
  plot?: string;
  /** Which reliability diagram --plot draws: 'binned' (default) or 'smooth' (SmoothECE curve). */
  diagram?: 'binned' | 'smooth';
  /** Bootstrap resamples for the smooth diagram's band (default 100 with --diagram smooth, else 0). */
  band?: number;
  /** What ranks rows for AURC: 'msp' (default) or 'normalized-max-logit' (--from logits). */
  selectiveScore?: SelectiveScore;
  title?: string;
  json?: boolean;
  device?: Device;
  /** Fit a recalibrator with this method (calibration.fitCalibrator) and save it to `out`. */
  fit?: string;
  out?: string;
  /** Apply the recalibrator saved in this file before reporting. */
  calibrator?: string;
}

export interface Output {
  out(line: string): void;
}

const stdout: Output = { out: (line) => console.log(line) };

function load(file: string, flag: string): Tensor {
  try {
    const a = readNpy(file);
    return { data: a.data, shape: a.shape, dtype: a.dtype };
  } catch (err) {
    if (err instanceof Error) err.message = `${flag}: ${err.message}`;
    throw err;
  }
}

/** What the library calls its parameters, and the flags that set them. */
const FLAGS = {
  scores: '--scores',
  logits: '--scores',
  labels: '--labels',
  from: '--from',
  bins: '--bins',
  convention: '--convention',
  temperature: '--temperature',
  device: '--device',
  title: '--title',
  smoothBand: '--band',
  selectiveScore: '--selective-score',
  kind: '--diagram',
  method: '--fit',
};

const pct = (x: number | null): string => (x === null || Number.isNaN(x) ? '-' : `${(100 * x).toFixed(2)}%`);
const fix = (x: number | null, d = 4): string => (x === null ? '-' : x.toFixed(d));

export function formatReport(r: CalibrationReport, from: ScoreKind): string[] {
  const lines = [
    `calibration report: N = ${r.n}, K = ${r.classes}, ${r.bins.length} bins (${r.convention}), from ${from}` +
      (r.temperature !== 1 ? `, temperature ${r.temperature}` : ''),
    '',
    `  accuracy       ${pct(r.accuracy)}`,
    `  NLL            ${fix(r.nll)}`,
    `  Brier          ${fix(r.brier)}   (multiclass, range [0, 2])`,
    `  ECE            ${pct(r.ece)}`,
    `  MCE            ${pct(r.mce)}`,
    `  RMSCE          ${pct(r.rmsce)}`,
    `  adaptive ECE   ${pct(r.adaptiveEce)}   (equal-mass bins)`,
    `  classwise ECE  ${pct(r.classwiseEce)}`,
    `  top-label ECE  ${pct(r.topLabelEce)}   (per predicted class, share-weighted)`,
    `  SmoothECE      ${pct(r.smoothEce)}   (relplot 1.0.3; bandwidth ${fix(r.smoothEceBandwidth)})`,
    `  AURC           ${fix(r.aurc)}   (risk-coverage area, ranked by ${r.selective ? r.selective.score : '-'})`,
    '',
    '        lo        hi     count  confidence  accuracy       gap',
  ];
  for (const b of r.bins) {
    const gap = b.accuracy === null || b.confidence === null ? null : b.accuracy - b.confidence;
    lines.push(
      `  ${b.lo.toFixed(4).padStart(8)}  ${b.hi.toFixed(4).padStart(8)}  ${String(b.count).padStart(8)}  ` +
        `${fix(b.confidence).padStart(10)}  ${fix(b.accuracy).padStart(8)}  ${(gap === null ? '-' : (gap >= 0 ? '+' : '') + gap.toFixed(4)).padStart(8)}`,
    );
  }
  if (r.notes.length) {
    lines.push('', 'notes:');
    for (const n of r.notes) lines.push(`  - ${n}`);
  }
  return lines;
}

/**
 * Runs the command; returns the exit code (0). Throws on bad input, with a message that
 * names the flag and a code (the CLI prints it and exits 2).
 */
export function runCalibrate(opts: CalibrateOptions, io: Output = stdout): number {
  try {
    return calibrate(opts, io);
  } catch (err) {
    throw nameFlags(err, FLAGS);
  }
}

function calibrate(opts: CalibrateOptions, io: Output): number {
  requireDevice(opts.device);
  let scores = load(opts.scores, '--scores');
  const labels = load(opts.labels, '--labels');
  let from = opts.from ?? 'probs';
  const recalibrated = recalibrate(opts, scores, labels, from);
  if (recalibrated) {
    scores = recalibrated.probs;
    from = 'probs';
  }
  let temperature = opts.temperature;
  let fit: ReturnType<typeof calibration.fitTemperature> | undefined;
  if (opts.fitTemperature) {
    if (from !== 'logits') throw rangeErrorMessage(`--fit-temperature needs --from logits but received --from ${from}; add --from logits`);
    fit = calibration.fitTemperature(scores, labels, { bins: opts.bins, convention: opts.convention, device: opts.device });
    temperature = fit.temperature;
  }
  const report = calibration.report(scores, labels, {
    from,
    bins: opts.bins,
    convention: opts.convention,
    device: opts.device,
    ...(temperature !== undefined ? { temperature } : {}),
    ...(opts.selectiveScore !== undefined ? { selectiveScore: opts.selectiveScore } : {}),
    smoothBand: opts.band ?? (opts.diagram === 'smooth' && opts.plot ? 100 : 0),
  });
  let plotted: string | undefined;
  if (opts.plot) {
    const ext = path.extname(opts.plot).toLowerCase();
    if (ext !== '.svg' && ext !== '.png') throw rangeErrorMessage(`Expected a file name ending in .svg or .png for --plot but received ${JSON.stringify(opts.plot)}`);
    const image = calibration.reliabilityDiagram(report, { format: ext === '.png' ? 'png' : 'svg', title: opts.title, kind: opts.diagram });
    fs.writeFileSync(opts.plot, image);
    plotted = opts.plot;
  }
  if (opts.json) {
    const calibrator = recalibrated ? { calibrator: { ...recalibrated.summary } } : {};
    io.out(JSON.stringify({ ...report, ...(fit ? { temperatureFit: fit } : {}), ...calibrator, ...(plotted ? { plot: plotted } : {}) }, null, 2));
  } else {
    if (recalibrated) {
      io.out(recalibrated.line);
      io.out('');
    }
    for (const line of formatReport(report, from)) io.out(line);
    if (fit) {
      io.out('');
      io.out(`temperature fit: T = ${fit.temperature.toPrecision(6)}, NLL ${fix(fit.nllBefore)} -> ${fix(fit.nllAfter)}, ECE ${pct(fit.eceBefore)} -> ${pct(fit.eceAfter)}` + (fit.atBound ? ' (at the search bound)' : ''));
    }
    if (plotted) io.out(`\nreliability diagram written to ${plotted}`);
  }
  return EXIT.OK;
}

interface Recalibrated {
  probs: Tensor;
  summary: { method: string; from: ScoreKind; file: string; action: 'fitted' | 'applied'; fit: calibration.FitInfo };
  line: string;
}

/** --fit METHOD --out FILE, or --calibrator FILE: the calibrated probabilities of the scores (or undefined when neither is given). */
function recalibrate(opts: CalibrateOptions, scores: Tensor, labels: Tensor, from: ScoreKind): Recalibrated | undefined {
  if (opts.fit === undefined && opts.calibrator === undefined) {
    if (opts.out !== undefined) throw rangeErrorMessage('--out names the file --fit saves the calibrator to: add --fit METHOD');
    return undefined;
  }
  if (opts.fit !== undefined && opts.calibrator !== undefined) throw rangeErrorMessage('Expected one of --fit or --calibrator but received both');
  if (opts.fitTemperature || opts.temperature !== undefined) {
    throw rangeErrorMessage(`${opts.fitTemperature ? '--fit-temperature' : '--temperature'} cannot be combined with ${opts.fit !== undefined ? '--fit' : '--calibrator'}: use --fit temperature`);
  }
  let c: calibration.Calibrator;
  let file: string;
  if (opts.fit !== undefined) {
    if (opts.out === undefined) throw rangeErrorMessage('--fit needs --out FILE (where to save the calibrator)');
    c = calibration.fitCalibrator(scores, labels, { method: opts.fit as calibration.RecalibrationMethod, from });
    file = opts.out;
    fs.writeFileSync(file, JSON.stringify(c, null, 2) + '\n');
  } else {
    file = opts.calibrator!;
    let text: string;
    try {
      text = readJsonText(file);
    } catch (err) {
      if (err instanceof Error) err.message = `--calibrator: ${err.message}`;
      throw err;
    }
    c = calibration.Calibrator.fromJSON(text);
    if (opts.from !== undefined && opts.from !== c.from) {
      throw rangeErrorMessage(`--calibrator ${file} takes ${c.from} but received --from ${opts.from}`);
    }
  }
  const probs = c.apply(scores);
  const action = opts.fit !== undefined ? 'fitted' : 'applied';
  const line =
    `${c.method} calibrator ${action === 'fitted' ? `fitted on these rows, saved to ${file}` : `from ${file} applied`}` +
    (action === 'fitted' ? `; NLL ${fix(c.fit.nllBefore)} -> ${fix(c.fit.nllAfter)}` : '') +
    `; the report below is of the calibrated probabilities`;
  return { probs, summary: { method: c.method, from: c.from, file, action, fit: { ...c.fit } }, line };
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected an integer >= 1, received ${JSON.stringify(value)}`);
  return n;
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected an integer >= 0, received ${JSON.stringify(value)}`);
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`expected a positive number, received ${JSON.stringify(value)}`);
  return n;
}

export function register(program: Command): void {
  program
    .command('calibrate')
    .description('calibration report (ECE, MCE, NLL, Brier, ...) of scores and labels in .npy files, with a reliability diagram')
    .requiredOption('--scores <file>', '(N, K) float32/float64 .npy: probabilities or logits')
    .requiredOption('--labels <file>', '(N) int64/int32/uint8 .npy class indices')
    .addOption(new Option('--from <kind>', "'probs' (default) or 'logits' (softmax applied)").choices(['probs', 'logits']))
    .option('--bins <n>', 'number of bins (default 15)', integer)
    .addOption(new Option('--convention <name>', "bin-edge rule: 'guo' (default), 'torchmetrics' or 'netcal'").choices(['guo', 'torchmetrics', 'netcal']))
    .option('--temperature <T>', 'divide logits by T first (--from logits)', positive)
    .option('--fit-temperature', 'fit the NLL-optimal temperature first and report at it (--from logits)')
    .option('--plot <file>', 'write a reliability diagram (.svg or .png)')
    .addOption(new Option('--diagram <kind>', "what --plot draws: 'binned' (default) or 'smooth' (the SmoothECE curve with a bootstrap band)").choices(['binned', 'smooth']))
    .option('--band <n>', 'bootstrap resamples for the smooth diagram band (default 100 with --diagram smooth; 0: none)', nonNegative)
    .addOption(new Option('--selective-score <score>', "what ranks rows for AURC: 'msp' (default) or 'normalized-max-logit' (--from logits)").choices(['msp', 'normalized-max-logit']))
    .option('--title <text>', 'title of the diagram')
    .option('--device <device>', "'cpu' (default), 'cuda' or 'cuda:N'", deviceFlag)
    .addOption(new Option('--fit <method>', 'fit a recalibrator on these scores and labels, save it (--out) and report the calibrated scores').choices([...calibration.RECALIBRATION_METHODS]))
    .option('--out <file>', 'where --fit saves the calibrator (JSON)')
    .option('--calibrator <file>', 'apply a calibrator saved by --fit (or Calibrator.toJSON) before reporting')
    .option('--json', 'print the report as JSON')
    .action((opts: CalibrateOptions) => {
      process.exitCode = runCalibrate(opts);
    });
}
