/**
 * The demo's terminal tables. For a sweep: one row per metric, one column per ε holding
 * mean ± sd over the seeds, then the paired differences against the first ε (marked * where
 * their 95% interval leaves out zero), then what that means in words. A value that does not
 * exist (memorisation with no flipped label, a temperature fitted at its bound) prints "–".
 */
import type { EpsDifference, EpsSummary, MetricKey, SweepReport } from './experiment';
import type { Difference, Summary } from './stats';
import type { StudyReport } from './run';

type Kind = 'pct' | 'num';

/** Rows of the table: label, metric, how to print it; `t` marks the rows that depend on the temperature fit. */
export const ROWS: readonly { label: string; key: MetricKey; kind: Kind; digits: number; t?: boolean }[] = [
  { label: 'test accuracy', key: 'accuracy', kind: 'pct', digits: 1 },
  { label: 'test NLL', key: 'nll', kind: 'num', digits: 3 },
  { label: 'test Brier', key: 'brier', kind: 'num', digits: 3 },
  { label: 'test ECE', key: 'ece', kind: 'num', digits: 3 },
  { label: 'test MCE (bins ≥ 10 samples)', key: 'mce', kind: 'num', digits: 3 },
  { label: 'test SmoothECE', key: 'smoothEce', kind: 'num', digits: 3 },
  { label: 'test AURC (top probability)', key: 'aurc', kind: 'num', digits: 4 },
  { label: 'test AURC (normalised max logit)', key: 'aurcNormalized', kind: 'num', digits: 4 },
  { label: 'AURC gain from normalisation', key: 'aurcNormalizationGain', kind: 'num', digits: 4 },
  { label: 'temperature (fit on validation)', key: 'temperature', kind: 'num', digits: 2, t: true },
  { label: 'test NLL after temperature', key: 'nllAfterTemperature', kind: 'num', digits: 3, t: true },
  { label: 'test ECE after temperature', key: 'eceAfterTemperature', kind: 'num', digits: 3, t: true },
  { label: 'train accuracy (clean labels)', key: 'trainAccuracyClean', kind: 'pct', digits: 1 },
  { label: 'train accuracy (given labels)', key: 'trainAccuracyNoisy', kind: 'pct', digits: 1 },
  { label: 'gap: train (clean) − test', key: 'gap', kind: 'pct', digits: 1 },
  { label: 'flipped labels memorised', key: 'memorized', kind: 'pct', digits: 1 },
];

const DASH = '–';

function fixed(v: number | null, kind: Kind, digits: number, signed = false): string {
  if (v === null || !Number.isFinite(v)) return DASH;
  const x = kind === 'pct' ? v * 100 : v;
  const text = Math.abs(x).toFixed(digits);
  const sign = x < 0 && Number(text) !== 0 ? '−' : signed ? '+' : '';
  return sign + text;
}

/** "85.6 ± 2.1%", "0.486 ± 0.021", or the mean alone with one seed. */
export function cell(s: Summary, kind: Kind, digits: number): string {
  if (s.mean === null) return DASH;
  const unit = kind === 'pct' ? '%' : '';
  if (s.sd === null) return fixed(s.mean, kind, digits) + unit;
  return `${fixed(s.mean, kind, digits)} ± ${fixed(s.sd, kind, digits)}${unit}`;
}

/** "+3.3 ± 2.8 pts *" (pct metrics in points), "+0.110 ± 0.013 *". */
export function diffCell(d: Difference, kind: Kind, digits: number): string {
  if (d.mean === null) return DASH;
  const unit = kind === 'pct' ? ' pts' : '';
  const sd = d.sd === null ? '' : ` ± ${fixed(d.sd, kind, digits)}`;
  return `${fixed(d.mean, kind, digits, true)}${sd}${unit}${d.exceedsSeedNoise ? ' *' : '  '}`;
}

function grid(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (cells: string[]) =>
    cells.map((c, j) => (j === 0 ? c.padEnd(widths[0]) : c.padStart(widths[j]))).join('   ').trimEnd();
  const rule = '─'.repeat(widths.reduce((a, w) => a + w, 0) + 3 * (widths.length - 1));
  return [line(header), rule, ...rows.map(line)];
}

function temperatureWord(t: number | null): string {
  if (t === null) return 'not fitted (every seed at the bound)';
  if (t < 0.95) return `${t.toFixed(2)}, below 1: under-confident, sharpening helps`;
  if (t > 1.05) return `${t.toFixed(2)}, above 1: over-confident, softening helps`;
  return `${t.toFixed(2)}, about 1: close to calibrated`;
}

export function formatSweep(r: SweepReport): string {
  const s = r.settings;
  const eps0 = s.eps[0];
  const mark = (e: EpsSummary) => (e.temperatureAtBound > 0 ? ` (${e.temperatureAtBound} at bound †)` : '');
  const lines = [
    `${r.name}: ${r.title}`,
    `${r.task}: ${s.train} train (${s.flipped} labels flipped, noise ${s.noise}), ${s.validation} validation, ${s.test} test`,
    `MLP ${s.hidden} hidden units, ${s.optimizer} lr ${s.lr}, batch ${s.batchSize}, ${s.epochs} epochs, seeds ${s.seeds.join(', ')}; ` +
      `metrics on the clean test labels, ${s.bins} bins; mean ± sd over seeds`,
    '',
  ];
  const means = grid(
    ['', ...r.summary.map((e) => `ε = ${e.eps}`)],
    ROWS.map((row) => [
      row.label,
      ...r.summary.map((e) => cell(e.metrics[row.key], row.kind, row.digits) + (row.t ? mark(e) : '')),
    ]),
  );
  lines.push(...means);
  if (r.differences.length > 0) {
    lines.push('');
    lines.push(
      ...grid(
        [`paired difference, seed by seed`, ...r.differences.map((d: EpsDifference) => `ε ${d.eps} − ε ${d.baseline}`)],
        ROWS.map((row) => [row.label, ...r.differences.map((d) => diffCell(d.metrics[row.key], row.kind, row.digits))]),
      ),
    );
    lines.push(`* the paired 95% t-interval over the ${s.seeds.length} seeds leaves out 0: the difference exceeds the seed noise.`);
  }
  const n = r.noiseAsSmoothing;
  lines.push(
    '',
    `noise as smoothing: symmetric noise η = ${n.noise} over K = ${n.classes} classes already softens the expected target like ` +
      `ε_noise = ηK/(K − 1) = ${n.eps.toFixed(3)}; temperature fitted at ε = ${eps0}: ${temperatureWord(n.temperatureAtEps0)}.`,
  );
  if (r.findings.length) lines.push('', ...r.findings);
  if (r.notes.length) lines.push('', ...r.notes.map((note) => `note: ${note}`));
  return lines.join('\n');
}

/** The default run's table (a sweep). */
export const formatTable = formatSweep;

export function formatStudy(study: StudyReport): string {
  const parts = study.regimes.map(formatSweep);
  const notes = study.notes.map((n) => `note: ${n}`);
  return [...parts.flatMap((p, i) => (i === 0 ? [p] : ['', '═'.repeat(60), '', p])), ...(notes.length ? ['', ...notes] : [])].join('\n');
}
