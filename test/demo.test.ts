import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../lib/cli';
import {
  assembleSweep,
  formatStudy,
  formatSweep,
  MCE_MIN_COUNT,
  pairedDifference,
  REGIMES,
  ROWS,
  runDemo,
  runStudy,
  summarize,
  type DemoReport,
  type SeedRun,
  type StudyReport,
  type SweepSpec,
} from '../lib/demo';

const dirs: string[] = [];
function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-demo-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Runs `smoothce <args>` in this process; returns what it wrote to stdout and stderr. */
async function cli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  try {
    await buildProgram().parseAsync(['node', 'smoothce', ...args]);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return { stdout, stderr };
}

/** The PNG decodes, is not tiny and not blank. */
function expectPicture(file: string): void {
  const png = PNG.sync.read(fs.readFileSync(file));
  expect(png.width).toBeGreaterThanOrEqual(400);
  expect(png.height).toBeGreaterThanOrEqual(300);
  const colours = new Set<number>();
  let unlike = 0;
  const bg = png.data.readUInt32BE(0);
  for (let i = 0; i < png.data.length; i += 4) {
    const c = png.data.readUInt32BE(i);
    colours.add(c);
    if (c !== bg) unlike++;
  }
  expect(colours.size).toBeGreaterThan(4);
  expect(unlike / (png.width * png.height)).toBeGreaterThan(0.02);
}

/** The SVG is well-formed XML (every tag closed, in order) and resvg parses it. */
function expectSvg(file: string): void {
  const svg = fs.readFileSync(file, 'utf8');
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w-]*)[^>]*?(\/?)>/g)) {
    if (m[1]) expect(stack.pop(), `closing </${m[2]}>`).toBe(m[2]);
    else if (!m[3]) stack.push(m[2]);
  }
  expect(stack).toEqual([]);
  expect(svg).not.toMatch(/NaN|undefined|Infinity/);
  const { Resvg } = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
  expect(new Resvg(svg).width).toBeGreaterThan(400);
}

const TINY = ['--epochs', '2', '--hidden', '8', '--seeds', '3', '--no-progress'];

describe('smoothce demo', () => {
  it('--quick prints means ± sd per ε, paired differences and findings, and writes the report and the plots', async () => {
    const dir = tmp();
    const { stdout, stderr } = await cli('demo', '--quick', '--out', dir);
    expect(stdout).not.toMatch(/NaN/);
    const lines = stdout.split('\n');
    expect(lines.some((l) => /^\s+ε = 0\s+ε = 0\.1$/.test(l))).toBe(true);
    expect(lines.some((l) => /ε 0\.1 − ε 0$/.test(l))).toBe(true);
    for (const row of ROWS) {
      const found = lines.filter((l) => l.startsWith(row.label) && /^ {3,}\S/.test(l.slice(row.label.length)));
      expect(found, row.label).toHaveLength(2); // the means and the differences
      const means = found[0].slice(row.label.length).trim().split(/\s{3,}/);
      expect(means, row.label).toHaveLength(2);
      for (const v of means) expect(v, row.label).toMatch(/^−?\d+\.\d+ ± \d+\.\d+%?$/);
      expect(found[1].slice(row.label.length).trim(), row.label).toMatch(/^[+−]\d+\.\d+ ± \d+\.\d+( pts)?( \*)?$/);
    }
    expect(stdout).toMatch(/ε_noise = ηK\/\(K − 1\) = 0\.222; temperature fitted at ε = 0: \d\.\d\d/);
    expect(stdout).toMatch(/^ε = 0\.1 against ε = 0, paired over 8 seeds: /m); // the default seeds
    expect(stdout).toMatch(/note: --quick/);
    // No TTY here: a line per 10% of the work on stderr, with the time left.
    expect(stderr).toMatch(/^demo 50% done, \d+ s elapsed, about \d+ s left$/m);

    const report = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as DemoReport;
    expect(report.files).toEqual({ report: path.join(dir, 'report.json'), svg: path.join(dir, 'report.svg'), png: path.join(dir, 'report.png') });
    for (const f of Object.values(report.files!)) expect(stdout).toContain(f);
    expectPicture(report.files!.png!);
    expectSvg(report.files!.svg);
  });

  it('--json reports every seed and the paired differences, the same for the same seed whatever the threads', async () => {
    const dir = tmp();
    const a = await cli('demo', ...TINY, '--json', '--seed', '7', '--out', dir);
    const b = await cli('demo', ...TINY, '--json', '--seed', '7', '--threads', '1', '--out', dir);
    const c = await cli('demo', ...TINY, '--json', '--seed', '8', '--out', dir);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).not.toBe(c.stdout);
    expect(a.stdout.trim().split('\n')).toHaveLength(1);
    const report = JSON.parse(a.stdout) as DemoReport;
    expect(report.settings).toMatchObject({ seeds: [7, 8, 9], noise: 0.2, eps: [0, 0.1], epochs: 2, train: 1079, test: 359 });
    expect(report.settings.flipped).toBe(Math.round(0.2 * 1079));
    expect(report.runs.map((r) => [r.eps, r.seed])).toEqual([
      [0, 7], [0, 8], [0, 9], [0.1, 7], [0.1, 8], [0.1, 9],
    ]);
    const [d] = report.differences;
    expect(d).toMatchObject({ eps: 0.1, baseline: 0 });
    for (let i = 0; i < 3; i++) {
      const at0 = report.runs[i];
      const at1 = report.runs[i + 3];
      expect(d.metrics.accuracy.perSeed[i]).toBeCloseTo(at1.test.accuracy - at0.test.accuracy, 12);
      expect(d.metrics.ece.perSeed[i]).toBeCloseTo(at1.test.ece - at0.test.ece, 12);
    }
    expect(d.metrics.accuracy.n).toBe(3);
    expect(report.summary[0].metrics.accuracy.mean).toBeCloseTo((report.runs[0].test.accuracy + report.runs[1].test.accuracy + report.runs[2].test.accuracy) / 3, 12);
    for (const r of report.runs) {
      expect(r.gap).toBeCloseTo(r.train.cleanAccuracy - r.test.accuracy, 12);
      expect(typeof r.temperature.atBound).toBe('boolean');
      // MCE counts only the bins with at least MCE_MIN_COUNT test samples.
      const big = r.bins.filter((bin) => bin.count >= MCE_MIN_COUNT).map((bin) => Math.abs(bin.accuracy! - bin.confidence!));
      expect(r.test.mce).toBe(big.length ? Math.max(...big) : null);
      expect(r.test.mce ?? 0).toBeLessThanOrEqual(r.test.mceAllBins);
    }
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'))).toEqual(JSON.parse(c.stdout));
  });

  it('with --noise 0 the memorisation row shows "–" and no cell prints NaN', async () => {
    const { stdout } = await cli('demo', ...TINY, '--noise', '0', '--out', tmp());
    expect(stdout).not.toMatch(/NaN/);
    const rows = stdout.split('\n').filter((l) => l.startsWith('flipped labels memorised'));
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row.slice('flipped labels memorised'.length).trim().split(/\s{3,}/).every((v) => v === '–')).toBe(true);
    const { stdout: json } = await cli('demo', ...TINY, '--noise', '0', '--json', '--out', tmp());
    for (const r of (JSON.parse(json) as DemoReport).runs) expect(r.train.memorized).toBeNull();
  });

  it('--binary runs on digits 3 vs 8 and its note says what was measured', async () => {
    const dir = tmp();
    const { stdout } = await cli('demo', ...TINY, '--binary', '--json', '--out', dir);
    const report = JSON.parse(stdout) as DemoReport;
    expect(report.task).toMatch(/3 vs 8/);
    expect(report.settings.classes).toEqual([3, 8]);
    expect(report.settings.train + report.settings.validation + report.settings.test).toBe(183 + 174);
    expect(report.notes.join('\n')).toMatch(/^Binary task \(K = 2\), measured here over 3 seeds against ε = 0: ε = 0\.1: test accuracy [+−]\d+\.\d pts, memorisation [+−]\d+\.\d pts \((beyond|within) seed noise\)/m);
    expect(fs.existsSync(path.join(dir, 'binary-report.json'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'binary-report.png'))).toBe(true);
  });

  it('--study --quick --json has the four regimes, each with every ε and seed and the temperature with atBound', async () => {
    const dir = tmp();
    const { stdout } = await cli('demo', '--study', '--quick', '--seeds', '3', '--json', '--no-progress', '--out', dir);
    const study = JSON.parse(stdout) as StudyReport;
    expect(study.regimes.map((r) => r.name)).toEqual(['robustness', 'calibration', 'over-correction', 'binary']);
    study.regimes.forEach((r, i) => {
      expect(r.settings.eps).toEqual(REGIMES[i].eps);
      expect(r.settings.noise).toBe(REGIMES[i].noise);
      expect(r.settings.seeds).toEqual([1, 2, 3]);
      expect(r.runs).toHaveLength(r.settings.eps.length * 3);
      for (const eps of r.settings.eps) expect(r.runs.filter((x) => x.eps === eps).map((x) => x.seed)).toEqual([1, 2, 3]);
      for (const run of r.runs) {
        expect(run.temperature.temperature).toBeGreaterThan(0);
        expect(run.test.aurc).toBeGreaterThanOrEqual(0);
        expect(run.test.aurcNormalized).toBeGreaterThanOrEqual(0);
        expect(typeof run.temperature.atBound).toBe('boolean');
      }
      expect(r.differences.map((d) => d.eps)).toEqual(r.settings.eps.slice(1));
      const k = r.settings.classes.length;
      expect(r.noiseAsSmoothing.eps).toBeCloseTo((r.settings.noise * k) / (k - 1), 12);
    });
    expect(study.files).toEqual({ report: path.join(dir, 'study.json'), svg: path.join(dir, 'study.svg'), png: path.join(dir, 'study.png') });
    expectPicture(study.files!.png!);
    expectSvg(study.files!.svg);
    // The tables: one per regime, no NaN.
    const text = formatStudy(study);
    for (const name of ['robustness', 'calibration', 'over-correction', 'binary']) expect(text).toMatch(new RegExp(`^${name}: `, 'm'));
    expect(text).not.toMatch(/NaN/);
  });

  it('rejects bad options with a message naming them', async () => {
    await expect(cli('demo', '--eps', '0,1.5')).rejects.toThrow(/--eps/);
    await expect(cli('demo', '--noise', '1')).rejects.toThrow(/--noise/);
    await expect(cli('demo', '--seed', 'abc')).rejects.toThrow(/--seed/);
    await expect(cli('demo', '--seeds', '0')).rejects.toThrow(/--seeds/);
    await expect(cli('study', '--threads', 'x')).rejects.toThrow(/--threads/);
    expect(() => runDemo({ eps: [0.1, 0.1], out: null })).toThrow(RangeError);
    expect(() => runDemo({ epochs: 0, out: null })).toThrow(/epochs/);
    expect(() => runDemo({ noise: '0.2' as unknown as number, out: null })).toThrow(TypeError);
    expect(() => runDemo({ threads: 0, out: null })).toThrow(RangeError);
    expect(() => runStudy({ seeds: 1.5, out: null })).toThrow(/seeds/);
  });
});

describe('demo statistics and table', () => {
  it('summarises over seeds and calls a paired difference beyond the seed noise only when its 95% interval excludes 0', () => {
    expect(summarize([1, 2, 3, null])).toEqual({ n: 3, mean: 2, sd: 1, min: 1, max: 3 });
    expect(summarize([null])).toEqual({ n: 0, mean: null, sd: null, min: null, max: null });
    // Differences 1, 1.1, 0.9: mean 1, sd 0.1, half-width 4.303 · 0.1 / √3 = 0.248.
    const clear = pairedDifference([2, 2.1, 1.9], [1, 1, 1]);
    expect(clear.mean).toBeCloseTo(1, 12);
    expect(clear.ci95![0]).toBeCloseTo(1 - (4.303 * 0.1) / Math.sqrt(3), 9);
    expect(clear.exceedsSeedNoise).toBe(true);
    // Differences 1, −0.5, 0.8: the interval spans 0.
    expect(pairedDifference([2, 0.5, 1.8], [1, 1, 1]).exceedsSeedNoise).toBe(false);
    expect(pairedDifference([1], [0]).exceedsSeedNoise).toBe(false);
    expect(pairedDifference([null, 1, 1], [0, 0, 0]).perSeed).toEqual([null, 1, 1]);
  });

  it('flags a temperature fitted at its bound in the table and leaves it out of the temperature rows', () => {
    const spec: SweepSpec = {
      name: 'test', title: 'bound', noise: 0.2, hidden: 8, epochs: 1, eps: [0, 0.1], seeds: [1, 2],
      batchSize: 32, lr: 1e-3, bins: 15, binary: false,
    };
    const run = (seed: number, eps: number, atBound: boolean, t: number): SeedRun => ({
      seed, eps,
      test: { accuracy: 0.9, nll: 0.3, brier: 0.1, ece: 0.05, mce: 0.2, mceAllBins: 0.4, rmsce: 0.06, adaptiveEce: 0.05, classwiseEce: 0.01, smoothEce: 0.04, aurc: 0.02, aurcNormalized: 0.018 },
      temperature: { temperature: t, atBound, validationNllBefore: 0.3, validationNllAfter: atBound ? 0 : 0.25, testNll: atBound ? 7620 : 0.28, testEce: 0.04 },
      train: { noisyAccuracy: 0.8, cleanAccuracy: 0.95, memorized: 0.1, finalLoss: 0.5 },
      gap: 0.05,
      bins: [],
    });
    const report = assembleSweep(spec, [run(1, 0, false, 1.5), run(2, 0, true, 1e-6), run(1, 0.1, false, 1.2), run(2, 0.1, false, 1.1)]);
    expect(report.summary[0].temperatureAtBound).toBe(1);
    expect(report.summary[0].metrics.temperature).toMatchObject({ n: 1, mean: 1.5 });
    expect(report.summary[0].metrics.nllAfterTemperature.mean).toBe(0.28);
    expect(report.differences[0].metrics.temperature.perSeed).toEqual([1.2 - 1.5, null]);
    expect(report.notes.join(' ')).toMatch(/1 of 4 runs fitted a temperature at its search bound/);
    const text = formatSweep(report);
    expect(text).toMatch(/^temperature \(fit on validation\)\s+1\.50 \(1 at bound †\)\s+1\.15 ± 0\.07$/m);
    expect(text).not.toMatch(/7620|NaN/);
  });
});
