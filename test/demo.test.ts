import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../lib/cli';
import { ROWS, runDemo, type DemoReport } from '../lib/demo';

const dirs: string[] = [];
function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-demo-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Runs `smoothce demo <args>` in this process; returns what it wrote to stdout and stderr. */
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
    await buildProgram().parseAsync(['node', 'smoothce', 'demo', ...args]);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return { stdout, stderr };
}

const QUICK = ['--epochs', '2', '--hidden', '16'];

describe('smoothce demo', () => {
  it('prints a table with every metric for each ε and writes the report and the diagrams', async () => {
    const dir = tmp();
    const { stdout, stderr } = await cli(...QUICK, '--eps', '0,0.05,0.2', '--out', dir);
    const lines = stdout.split('\n');
    expect(lines.some((l) => /ε = 0\s+ε = 0\.05\s+ε = 0\.2$/.test(l.trim()))).toBe(true);
    for (const [label] of ROWS) {
      const row = lines.find((l) => l.startsWith(label));
      expect(row, label).toBeDefined();
      const values = row!.slice(label.length).trim().split(/\s{2,}/);
      expect(values, label).toHaveLength(3);
      for (const v of values) expect(v, label).toMatch(/^[+−-]?\d+(\.\d+)?(%| pts)?$/);
    }
    // No TTY here: one progress line per epoch and ε, on stderr.
    expect(stderr.trim().split('\n')).toHaveLength(2 * 3);
    expect(stderr).toMatch(/^ε = 0 {2}epoch 1\/2 {2}loss \d+\.\d{4} {2}validation accuracy \d+\.\d%$/m);

    const report = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as DemoReport;
    expect(report.results.map((r) => r.eps)).toEqual([0, 0.05, 0.2]);
    const written = [path.join(dir, 'report.json'), ...report.files!.diagrams];
    expect(report.files!.diagrams).toHaveLength(6);
    for (const f of written) {
      expect(fs.existsSync(f), f).toBe(true);
      expect(stdout).toContain(f);
    }
    for (const r of report.results) {
      const png = PNG.sync.read(fs.readFileSync(r.files!.png));
      expect(png.width).toBeGreaterThanOrEqual(200);
      expect(png.height).toBeGreaterThanOrEqual(200);
      // Not blank: several colours, and a fair share of pixels unlike the background.
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
      const svg = fs.readFileSync(r.files!.svg, 'utf8');
      expect(svg).toMatch(/<svg[\s>]/);
      expect(svg).toContain('</svg>');
    }
  });

  it('--json prints one JSON document, identical for the same --seed, different for another', async () => {
    const dir = tmp();
    const a = await cli(...QUICK, '--json', '--seed', '7', '--out', dir);
    const b = await cli(...QUICK, '--json', '--seed', '7', '--out', dir);
    const c = await cli(...QUICK, '--json', '--seed', '8', '--out', dir);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).not.toBe(c.stdout);
    const report = JSON.parse(a.stdout) as DemoReport;
    expect(a.stdout.trim().split('\n')).toHaveLength(1);
    expect(report.settings).toMatchObject({ seed: 7, noise: 0.2, eps: [0, 0.1], epochs: 2, train: 1079, test: 359 });
    expect(report.settings.flipped).toBe(Math.round(0.2 * 1079));
    for (const r of report.results) {
      for (const key of ['accuracy', 'nll', 'brier', 'ece', 'mce'] as const) expect(Number.isFinite(r.test[key]), key).toBe(true);
      expect(r.temperature.temperature).toBeGreaterThan(0);
      expect(r.gap).toBeCloseTo(r.train.noisyAccuracy - r.test.accuracy, 12);
    }
    // report.json holds the same document.
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'))).toEqual(JSON.parse(c.stdout));
  });

  it('--binary runs on digits 3 vs 8', async () => {
    const dir = tmp();
    const { stdout } = await cli(...QUICK, '--binary', '--json', '--out', dir);
    const report = JSON.parse(stdout) as DemoReport;
    expect(report.task).toMatch(/3 vs 8/);
    expect(report.settings.classes).toEqual([3, 8]);
    expect(report.settings.train + report.settings.validation + report.settings.test).toBe(183 + 174);
    expect(report.results).toHaveLength(2);
    for (const r of report.results) expect(r.test.accuracy).toBeGreaterThan(0.5);
    expect(fs.existsSync(path.join(dir, 'binary-report.json'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'binary-reliability-eps0.1.png'))).toBe(true);
  });

  it('rejects bad options with a message naming them', async () => {
    await expect(cli('--eps', '0,1.5')).rejects.toThrow(/--eps/);
    await expect(cli('--noise', '1')).rejects.toThrow(/--noise/);
    await expect(cli('--seed', 'abc')).rejects.toThrow(/--seed/);
    expect(() => runDemo({ eps: [0.1, 0.1], out: null })).toThrow(RangeError);
    expect(() => runDemo({ epochs: 0, out: null })).toThrow(/epochs/);
    expect(() => runDemo({ noise: '0.2' as unknown as number, out: null })).toThrow(TypeError);
  });
});
