/** The demo's terminal table: one row per metric, one column per ε. */
import type { DemoReport, EpsResult } from './run';

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
const num = (digits: number) => (v: number) => v.toFixed(digits);
const signedPts = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v * 100).toFixed(1)} pts`;

/** Rows of the table: label, how to read the value out of a result, how to print it. */
export const ROWS: readonly [string, (r: EpsResult) => number, (v: number) => string][] = [
  ['test accuracy', (r) => r.test.accuracy, pct],
  ['test NLL', (r) => r.test.nll, num(4)],
  ['test Brier', (r) => r.test.brier, num(4)],
  ['test ECE', (r) => r.test.ece, num(4)],
  ['test MCE', (r) => r.test.mce, num(4)],
  ['temperature (fit on validation)', (r) => r.temperature.temperature, num(3)],
  ['test NLL after temperature', (r) => r.temperature.testNll, num(4)],
  ['test ECE after temperature', (r) => r.temperature.testEce, num(4)],
  ['train accuracy (noisy labels)', (r) => r.train.noisyAccuracy, pct],
  ['gap: train (noisy) − test', (r) => r.gap, signedPts],
  ['flipped labels memorised', (r) => r.train.memorized, pct],
];

export function formatTable(report: DemoReport): string {
  const s = report.settings;
  const header = [
    `${report.task}: ${s.train} train (${s.flipped} labels flipped, ${pct(s.noise)}), ${s.validation} validation, ${s.test} test`,
    `MLP ${s.hidden} hidden units, ${s.optimizer} lr ${s.lr}, batch ${s.batchSize}, ${s.epochs} epochs, seed ${s.seed}; ` +
      `metrics on the clean test labels, ${s.bins} bins`,
    '',
  ];
  const cols = report.results.map((r) => `ε = ${r.eps}`);
  const cells = ROWS.map(([, get, fmt]) => report.results.map((r) => fmt(get(r))));
  const labelWidth = Math.max(...ROWS.map(([label]) => label.length));
  const widths = cols.map((c, j) => Math.max(c.length, ...cells.map((row) => row[j].length)));
  const line = (label: string, values: string[]) =>
    `${label.padEnd(labelWidth)}  ${values.map((v, j) => v.padStart(widths[j])).join('  ')}`.trimEnd();
  const rule = '─'.repeat(labelWidth + widths.reduce((a, w) => a + w + 2, 0));
  const body = [line('', cols), rule, ...ROWS.map(([label], i) => line(label, cells[i]))];
  const notes = report.notes.map((n) => `note: ${n}`);
  return [...header, ...body, ...(notes.length ? ['', ...notes] : [])].join('\n');
}
