/** npx smoothce calibrate: table and JSON output, and a PNG/SVG plot that decodes. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCalibrate } from '../lib/cli/calibrate';
import { calibration, tensor, type Tensor } from '../lib/index';
import { thrown } from './helpers/thrown';
import { writeNpy } from '../lib/parity/npy';

const root = path.resolve(__dirname, '..');
let dir: string;
let scores: string;
let labels: string;
let logits: Float32Array;
let ys: BigInt64Array;
const N = 300;
const K = 4;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-calibrate-'));
  logits = new Float32Array(N * K);
  ys = new BigInt64Array(N);
  let s = 12345;
  const rand = (): number => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < N; i++) {
    const y = Math.floor(rand() * K);
    ys[i] = BigInt(y);
    for (let k = 0; k < K; k++) logits[i * K + k] = 4 * (rand() - 0.5) + (k === y && rand() < 0.7 ? 3 : 0);
  }
  scores = path.join(dir, 'logits.npy');
  labels = path.join(dir, 'labels.npy');
  writeNpy(scores, logits, [N, K]);
  writeNpy(labels, ys, [N]);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const collect = (): { out: (l: string) => void; lines: string[] } => {
  const lines: string[] = [];
  return { out: (l) => lines.push(l), lines };
};

describe('smoothce calibrate', () => {
  it('prints a readable table with the same numbers as calibration.report', () => {
    const io = collect();
    expect(runCalibrate({ scores, labels, from: 'logits', bins: 10 }, io)).toBe(0);
    const text = io.lines.join('\n');
    const rep = calibration.report(tensor(logits, [N, K]), tensor(ys, [N]), { from: 'logits', bins: 10 });
    expect(text).toContain(`N = ${N}, K = ${K}, 10 bins (guo), from logits`);
    expect(text).toContain(`ECE            ${(100 * rep.ece).toFixed(2)}%`);
    expect(text).toContain(`NLL            ${rep.nll.toFixed(4)}`);
    expect(io.lines.filter((l) => /^\s+\d\.\d{4}\s+\d\.\d{4}\s+\d+/.test(l))).toHaveLength(10);
  });

  it('--json with --fit-temperature', () => {
    const io = collect();
    runCalibrate({ scores, labels, from: 'logits', json: true, fitTemperature: true, convention: 'netcal' }, io);
    const out = JSON.parse(io.lines.join('\n'));
    const fit = calibration.fitTemperature(tensor(logits, [N, K]), tensor(ys, [N]), { convention: 'netcal' });
    expect(out.temperatureFit.temperature).toBe(fit.temperature);
    expect(out.temperature).toBe(fit.temperature);
    expect(out.convention).toBe('netcal');
    expect(out.nll).toBeCloseTo(fit.nllAfter, 6);
  });

  it('the built CLI writes a PNG that decodes (and an SVG)', () => {
    const png = path.join(dir, 'diagram.png');
    const r = spawnSync(process.execPath, [path.join(root, 'dist', 'cli.js'), 'calibrate', '--scores', scores, '--labels', labels, '--from', 'logits', '--plot', png, '--title', 'CLI test'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`reliability diagram written to ${png}`);
    const img = PNG.sync.read(fs.readFileSync(png));
    expect(img.width).toBe(1120);
    let nonWhite = 0;
    for (let i = 0; i < img.data.length; i += 4) if (img.data[i] + img.data[i + 1] + img.data[i + 2] < 700) nonWhite++;
    expect(nonWhite / (img.width * img.height)).toBeGreaterThan(0.05);
    const svg = path.join(dir, 'diagram.svg');
    expect(runCalibrate({ scores, labels, from: 'logits', plot: svg }, collect())).toBe(0);
    expect(fs.readFileSync(svg, 'utf8')).toContain('<svg');
  });

  it('bad input: clear errors, exit code 2 from the CLI', () => {
    expect(() => runCalibrate({ scores, labels }, collect())).toThrow(/probabilities in \[0, 1\].*--from logits/);
    expect(() => runCalibrate({ scores, labels, from: 'logits', plot: path.join(dir, 'x.jpg') }, collect())).toThrow(/\.svg or \.png/);
    const r = spawnSync(process.execPath, [path.join(root, 'dist', 'cli.js'), 'calibrate', '--scores', scores, '--labels', labels, '--bins', '0'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--bins.*integer >= 1/);
    const r2 = spawnSync(process.execPath, [path.join(root, 'dist', 'cli.js'), 'calibrate', '--scores', labels, '--labels', labels], { encoding: 'utf8' });
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/smoothce: .*scores/);
  });

  describe('--fit METHOD --out FILE and --calibrator FILE', () => {
    const z = (): Tensor => tensor(logits, [N, K]);
    const y = (): Tensor => tensor(ys, [N]);

    it('--fit saves the calibrator fitCalibrator makes and reports the calibrated probabilities', () => {
      const out = path.join(dir, 'vector.json');
      const io = collect();
      expect(runCalibrate({ scores, labels, from: 'logits', fit: 'vector', out, json: true }, io)).toBe(0);
      const c = calibration.fitCalibrator(z(), y(), { method: 'vector', from: 'logits' });
      expect(fs.readFileSync(out, 'utf8')).toBe(JSON.stringify(c, null, 2) + '\n');
      const printed = JSON.parse(io.lines.join('\n'));
      const expected = calibration.report(c.apply(z()), y());
      expect(printed.ece).toBe(expected.ece);
      expect(printed.nll).toBe(expected.nll);
      expect(printed.calibrator).toMatchObject({ method: 'vector', action: 'fitted', file: out, fit: c.fit });
      const table = collect();
      runCalibrate({ scores, labels, from: 'logits', fit: 'isotonic', out: path.join(dir, 'iso.json') }, table);
      expect(table.lines[0]).toMatch(/^isotonic calibrator fitted on these rows, saved to .*iso\.json; NLL \d\.\d{4} -> \d\.\d{4}/);
    });

    it('--calibrator applies a saved calibrator (the same bits as Calibrator.fromJSON(...).apply)', () => {
      const file = path.join(dir, 'matrix.json');
      const c = calibration.fitCalibrator(z(), y(), { method: 'matrix', from: 'logits', odir: { lambda: 0.1, mu: 0.1 } });
      fs.writeFileSync(file, JSON.stringify(c));
      const io = collect();
      expect(runCalibrate({ scores, labels, calibrator: file, json: true, bins: 10 }, io)).toBe(0);
      const printed = JSON.parse(io.lines.join('\n'));
      const expected = calibration.report(calibration.Calibrator.fromJSON(JSON.stringify(c)).apply(z()), y(), { bins: 10 });
      expect(printed.ece).toBe(expected.ece);
      expect(printed.brier).toBe(expected.brier);
      expect(printed.calibrator).toMatchObject({ method: 'matrix', from: 'logits', action: 'applied' });
    });

    it('bad combinations and tampered files: coded errors naming the flags', () => {
      const file = path.join(dir, 'temp.json');
      runCalibrate({ scores, labels, from: 'logits', fit: 'temperature', out: file }, collect());
      const err = (o: object): { code?: string; message: string } => thrown(() => runCalibrate({ scores, labels, ...o }, collect())) as never;
      expect(err({ from: 'logits', fit: 'vector' })).toMatchObject({ code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE', message: expect.stringMatching(/--fit needs --out/) });
      expect(err({ fit: 'vector', out: file, calibrator: file }).message).toMatch(/one of --fit or --calibrator/);
      expect(err({ from: 'logits', fit: 'vector', out: file, fitTemperature: true }).message).toMatch(/--fit-temperature cannot be combined with --fit/);
      expect(err({ out: file }).message).toMatch(/add --fit/);
      expect(err({ calibrator: file, from: 'probs' }).message).toMatch(/takes logits but received --from probs/);
      expect(err({ from: 'logits', fit: 'platt', out: file })).toMatchObject({ code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE', message: expect.stringMatching(/for --fit/) });
      const j = JSON.parse(fs.readFileSync(file, 'utf8'));
      j.params.temperature = -1;
      fs.writeFileSync(file, JSON.stringify(j));
      expect(err({ calibrator: file })).toMatchObject({ code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE', message: expect.stringMatching(/calibrator\.params\.temperature/) });
      expect(err({ calibrator: dir })).toMatchObject({ code: 'ERR_SMOOTHCE_JSON_NOT_A_FILE', message: expect.stringMatching(/^--calibrator: /) });
    });

    it('the built CLI: --fit histogram --out, then --calibrator', () => {
      const file = path.join(dir, 'hist.json');
      const cli = path.join(root, 'dist', 'cli.js');
      const fit = spawnSync(process.execPath, [cli, 'calibrate', '--scores', scores, '--labels', labels, '--from', 'logits', '--fit', 'histogram', '--out', file], { encoding: 'utf8' });
      expect(fit.status, fit.stderr).toBe(0);
      expect(calibration.Calibrator.fromJSON(fs.readFileSync(file, 'utf8')).method).toBe('histogram');
      const use = spawnSync(process.execPath, [cli, 'calibrate', '--scores', scores, '--labels', labels, '--calibrator', file, '--json'], { encoding: 'utf8' });
      expect(use.status, use.stderr).toBe(0);
      expect(JSON.parse(use.stdout).calibrator.method).toBe('histogram');
      const bad = spawnSync(process.execPath, [cli, 'calibrate', '--scores', scores, '--labels', labels, '--fit', 'nope', '--out', file], { encoding: 'utf8' });
      expect(bad.status).not.toBe(0);
      expect(bad.stderr).toMatch(/nope/);
    });
  });
});
