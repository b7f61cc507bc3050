/**
 * End to end: the project's Python capture module (python/smoothce_parity.py), used from
 * /usr/bin/python3 on a random model's output, writes a case file that `smoothce parity`
 * (the built CLI, as users run it) passes; a changed value makes it fail and names the case.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { python, tempDir } from './helpers/parity-oracle';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'cli.js');
let dir: string;
let cleanup: () => void;
let file: string;

function smoothce(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  ({ dir, cleanup } = tempDir('smoothce-capture-'));
  file = path.join(dir, 'model', 'cases.json');
  fs.mkdirSync(path.dirname(file));
  python(
    `
import sys, torch
sys.path.insert(0, sys.argv[1])
from smoothce_parity import capture
torch.manual_seed(7)
model = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
features = torch.randn(64, 12)
logits = model(features)                      # a real model output, with a graph attached
labels = torch.randint(0, 10, (64,))
out = sys.argv[2]
capture(logits, labels, out, label_smoothing=0.1, name="train-batch")
labels_ign = labels.clone(); labels_ign[::5] = -100
capture(logits, labels_ign, out, label_smoothing=0.2, weight=torch.rand(10) + 0.5, name="weighted-ignore")
capture(logits, labels, out, reduction="none", grad_output=torch.randn(64), label_smoothing=0.05, name="none-upstream")
capture(logits, labels, out, reduction="sum", npy_threshold=100, name="big-as-npy")
capture(logits.to(torch.bfloat16), labels, out, label_smoothing=0.1, name="bf16-eval")
seg = torch.randn(2, 10, 4, 5, dtype=torch.float64)
capture(seg, torch.randint(0, 10, (2, 4, 5)), out, label_smoothing=0.3, name="segmentation-f64")
capture(logits, torch.softmax(torch.randn(64, 10), 1), out, label_smoothing=0.1, name="soft-labels")
`,
    [path.join(root, 'python'), file],
  );
});
afterAll(() => cleanup());

describe('capture() -> smoothce parity', () => {
  it('the file written by python/smoothce_parity.capture passes the CLI (exit 0)', () => {
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(['cases-arrays', 'cases.json']);
    const r = smoothce('parity', file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/parity: 7 cases in 1 file\(s\): 7 passed, 0 failed/);
    for (const name of ['train-batch', 'weighted-ignore', 'none-upstream', 'big-as-npy', 'bf16-eval', 'segmentation-f64', 'soft-labels']) {
      expect(r.stdout).toMatch(new RegExp(`\\n\\s+PASS\\s+${name}\\s+loss abs`));
    }
  });

  it('exits 1 and names the case when one expected value moves by 1e-3', () => {
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    const c = json.cases.find((x: { name: string }) => x.name === 'weighted-ignore');
    c.expected.grad_input.data[5] += 1e-3;
    const bad = path.join(path.dirname(file), 'bad.json');
    fs.writeFileSync(bad, JSON.stringify(json));
    const r = smoothce('parity', bad);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/\n\s+FAIL\s+weighted-ignore\s/);
    expect(r.stdout).toMatch(/\nFAILED: weighted-ignore\n/);
  });

  it('--json on the directory parses and lists every case', () => {
    const r = smoothce('parity', '--json', path.dirname(file));
    const report = JSON.parse(r.stdout);
    expect(report.summary.total).toBe(14); // cases.json and bad.json
    expect(report.summary.failedNames).toEqual(['weighted-ignore']);
    expect(r.code).toBe(1);
    expect(execFileSync(process.execPath, [cli, 'parity', '--help'], { encoding: 'utf8' })).toMatch(/--rtol <x>/);
  });
});
