/** npx smoothce calibrate: table and JSON output, and a PNG/SVG plot that decodes. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCalibrate } from '../lib/cli/calibrate';
import { calibration, tensor } from '../lib/index';
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
});
