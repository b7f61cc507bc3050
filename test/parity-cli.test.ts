import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../lib/cli';
import { runParity } from '../lib/cli/parity';
import { capture, tempDir, writeOracleCases } from './helpers/parity-oracle';

let dir: string;
let cleanup: () => void;
let good: string;

beforeAll(() => {
  ({ dir, cleanup } = tempDir());
  good = path.join(dir, 'oracle.json');
  writeOracleCases(good);
});
afterAll(() => cleanup());

/** Copies the good file with one expected value of the named case moved by `delta`. */
function perturbed(name: string, caseName: string, delta: number, field: 'loss' | 'grad_input' = 'loss'): string {
  const json = JSON.parse(fs.readFileSync(good, 'utf8'));
  const c = json.cases.find((x: { name: string }) => x.name === caseName);
  c.expected[field].data[0] += delta;
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

describe('smoothce parity (CLI)', () => {
  it('passes a PyTorch case file, exit code 0, one line per case and a summary', () => {
    const io = capture();
    const code = runParity([good], {}, io);
    expect(io.text()).not.toMatch(/FAILED/);
    expect(code).toBe(0);
    const lines = io.out.filter((l) => /^\s+(PASS|ERROR-MATCHED|REJECTED)\s/.test(l));
    expect(lines).toHaveLength(16);
    expect(io.out.find((l) => l.includes('f32_mean_eps0.1'))).toMatch(/^\s+PASS\s+f32_mean_eps0\.1\s+loss abs \S+ rel \S+\s+grad abs \S+ rel \S+/);
    expect(io.out.find((l) => l.includes('dev_negative_eps'))).toMatch(/REJECTED.*deviation/);
    // float16 on CPU is an error in torch 1.13 and values in 2.x: the oracle's file says which.
    const json = JSON.parse(fs.readFileSync(good, 'utf8')) as { cases: Array<{ name: string; expected: object }> };
    const half = json.cases.find((c) => c.name === 'err_input_half')!;
    const errors = json.cases.filter((c) => 'error' in c.expected).length;
    expect(io.out.find((l) => l.includes('err_input_half'))).toMatch('error' in half.expected ? /ERROR-MATCHED/ : /PASS/);
    const summary = io.out.find((l) => l.startsWith('parity:'));
    expect(summary).toBe(`parity: 16 cases in 1 file(s): ${15 - errors} passed, 0 failed, ${errors} errors matched, 1 rejected (deviation)`);
    expect(io.out.join('\n')).toMatch(/deviations \(not failures\): dev_negative_eps/);
  });

  it('exits non-zero and names the case when one expected value is off by 1e-3', () => {
    for (const [caseName, field] of [
      ['f32_larger', 'loss'],
      ['f64_kdim_sum_weight_ignore', 'grad_input'],
      ['bf16_mean_eps0.1', 'loss'],
    ] as const) {
      // For bf16, 1e-3 is inside the tolerance (rtol 1.6e-2) but leaves the bfloat16 grid.
      const file = perturbed(`bad-${caseName}.json`, caseName, 1e-3, field);
      const io = capture();
      const code = runParity([file], {}, io);
      expect(code, caseName).toBe(1);
      expect(io.out.find((l) => l.includes(` ${caseName} `))).toMatch(/^\s+FAIL\s/);
      expect(io.out.find((l) => l.startsWith('FAILED:'))).toBe(`FAILED: ${caseName}`);
      expect(io.out.find((l) => l.startsWith('parity:'))).toMatch(/ 1 failed/);
    }
  });

  it('--json prints one parseable report', () => {
    const bad = perturbed('bad-json.json', 'f32_larger', 1e-3);
    const io = capture();
    const code = runParity([good, bad], { json: true }, io);
    expect(code).toBe(1);
    expect(io.out).toHaveLength(1);
    const report = JSON.parse(io.out[0]);
    expect(report.summary).toMatchObject({ total: 32, failed: 1, failedNames: ['f32_larger'], ok: false, rejected: 2 });
    expect(report.files.map((f: { file: string }) => path.basename(f.file))).toEqual(['oracle.json', 'bad-json.json']);
    const r = report.files[1].results.find((x: { name: string }) => x.name === 'f32_larger');
    expect(r.status).toBe('fail');
    expect(r.lossMaxAbs).toBeGreaterThan(9e-4);
    expect(r.lossMaxAbs).toBeLessThan(1.1e-3);
    expect(r.tolerance).toEqual({ rtol: 1.3e-6, atol: 1e-5 });
    // Non-finite numbers are strings, as in case files.
    const empty = report.files[0].results.find((x: { name: string }) => x.name === 'f32_empty_mean');
    expect(empty.status).toBe('pass');
  });

  it('--rtol/--atol override the defaults', () => {
    const bad = perturbed('bad-tol.json', 'f32_larger', 1e-3);
    const io = capture();
    expect(runParity([bad], { atol: 2e-3 }, io)).toBe(0);
    const program = buildProgram();
    expect(() => program.parse(['node', 'smoothce', 'parity', bad, '--rtol', 'abc'])).toThrow(/--rtol must be a non-negative number/);
  });

  it('replays every case file of a directory and skips other JSON', () => {
    const sub = path.join(dir, 'suite');
    fs.mkdirSync(path.join(sub, 'nested'), { recursive: true });
    fs.copyFileSync(good, path.join(sub, 'a.json'));
    fs.copyFileSync(good, path.join(sub, 'nested', 'b.json'));
    fs.writeFileSync(path.join(sub, 'package.json'), '{"name": "x"}');
    const io = capture();
    expect(runParity([sub], {}, io)).toBe(0);
    expect(io.out.find((l) => l.startsWith('parity:'))).toMatch(/32 cases in 2 file\(s\)/);
    expect(io.out.join('\n')).toMatch(/skipped .*package\.json \(not a case file\)/);
  });

  it('exits 2 with the file, case and field for an invalid case file', () => {
    const json = JSON.parse(fs.readFileSync(good, 'utf8'));
    json.cases[2].input.shape = [3, 5];
    const file = path.join(dir, 'invalid.json');
    fs.writeFileSync(file, JSON.stringify(json));
    const io = capture();
    expect(runParity([file], {}, io)).toBe(2);
    expect(io.err.join('\n')).toMatch(/invalid\.json: case "f32_none_grad_output" \(#2\): input\.data: shape \[3, 5\] needs 15 values but data has 12/);
    const io2 = capture();
    expect(runParity([path.join(dir, 'missing.json')], {}, io2)).toBe(2);
    expect(io2.err.join('\n')).toMatch(/missing\.json: no such file or directory/);
  });

  it('is registered as `smoothce parity` and sets the exit code', async () => {
    const bad = perturbed('bad-cmd.json', 'f32_larger', 1e-3);
    const program = buildProgram();
    const log = console.log;
    const lines: string[] = [];
    console.log = (l: string) => lines.push(l);
    const before = process.exitCode;
    try {
      await program.parseAsync(['node', 'smoothce', 'parity', bad]);
      expect(process.exitCode).toBe(1);
    } finally {
      console.log = log;
      process.exitCode = before;
    }
    expect(lines.join('\n')).toMatch(/FAILED: f32_larger/);
  });
});
