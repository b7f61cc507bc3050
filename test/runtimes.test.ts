/**
 * Bun and Deno run what Node runs, and print exactly what Node prints: the README's JavaScript
 * examples, a typical program (loss and gradient in float32 and float64, async calls, the loss
 * accumulator, calibration, the temperature fit, large gradients) and large gradients with early
 * release switched on. The runtimes are the `bun` and `deno` devDependencies (node_modules/.bin).
 * Programs live in .runtimes-test/ inside the repository (git-ignored), so that 'smoothce'
 * resolves by package self-reference as it does for the docs test. Deno used to panic after a
 * grad call (early release's weak references deleted from a finalizer that Deno runs on a V8
 * background thread): every run must exit 0 with nothing on stderr that looks like a crash.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractBlocks } from './helpers/markdown';
import { cleanEnv, describeRun, ensureDist, repoRoot, run } from './helpers/contract-util';

const work = path.join(repoRoot, '.runtimes-test');
const bin = (name: string) => path.join(repoRoot, 'node_modules', '.bin', name);

const RUNTIMES: Record<string, (file: string) => [string, string[]]> = {
  node: (file) => [process.execPath, [file]],
  bun: (file) => [bin('bun'), [file]],
  deno: (file) => [bin('deno'), ['run', '-A', '--quiet', file]],
};

// Loss and gradient (float32 and float64, mean and none), async, the accumulator, calibration
// and a temperature fit, then large gradients (early release's path) in a loop. Numbers are
// printed with full precision (JSON), so "the same output" means the same bits.
const TYPICAL = `
const s = require('smoothce');
const out = (label, v) => console.log(label, JSON.stringify(v));
const N = 96, C = 12;
// Exact inputs (multiples of 1/8), so that no engine's Math.sin or Math.exp enters the numbers:
// the true class gets a bump on most rows, so that the temperature fit has a clear optimum.
const label = (r) => (r * 7) % C;
const value = (i) => (((i * 37) % 23) / 8 - 1.5) + ((i % C) === label(Math.floor(i / C)) && Math.floor(i / C) % 4 !== 0 ? 2 : 0);
const x32 = s.tensor(Float32Array.from({ length: N * C }, (_, i) => value(i)), [N, C]);
const x64 = s.tensor(Float64Array.from({ length: N * C }, (_, i) => value(i)), [N, C]);
const y = s.tensor(BigInt64Array.from({ length: N }, (_, r) => BigInt(label(r))), [N]);
const sum = (a) => a.reduce((p, v) => p + v, 0);
const r32 = s.crossEntropy(x32, y, { labelSmoothing: 0.1, grad: true });
out('f32 mean', [r32.loss, Array.from(r32.grad.data.slice(0, 5)), sum(r32.grad.data)]);
const r64 = s.crossEntropy(x64, y, { labelSmoothing: 0.2, reduction: 'none', grad: true, weight: Float64Array.from({ length: C }, (_, i) => 1 + i / C) });
out('f64 none', [Array.from(r64.loss.data.slice(0, 4)), Array.from(r64.grad.data.slice(7, 11))]);
const fused = s.crossEntropy(x32, y, { labelSmoothing: 0.1, grad: true, impl: 'fused' });
out('fused', [fused.loss, Array.from(fused.grad.data.slice(0, 3))]);
const acc = new s.LossAccumulator({ labelSmoothing: 0.1 });
for (let k = 0; k < 3; k++) acc.update(x32, y);
out('accumulator', acc.result());
const report = s.calibration.report(x32, y, { from: 'logits', bins: 10 });
out('calibration', [report.ece, report.nll, report.brier, report.accuracy, report.bins.map((b) => b.count)]);
const fit = s.calibration.fitTemperature(x64, y);
out('temperature', [fit.temperature, fit.nllAfter]);
async function main() {
  const a = await s.crossEntropyAsync(x32, y, { labelSmoothing: 0.1, grad: true });
  out('async', [a.loss, Array.from(a.grad.data.slice(0, 3))]);
  const [p, q] = await Promise.all([s.crossEntropyAsync(x64, y), s.calibration.reportAsync(x32, y, { from: 'logits', bins: 10 }).then((r) => r.ece)]);
  out('async both', [p.loss, q]);
  // Large gradients (2 MiB and more are external buffers tracked for early release).
  const big = s.tensor(Float32Array.from({ length: 1024 * 1000 }, (_, i) => ((i * 131) % 61) / 16), [1024, 1000]);
  const by = s.tensor(Int32Array.from({ length: 1024 }, (_, i) => (i * 13) % 1000), [1024]);
  let g = 0;
  for (let k = 0; k < 12; k++) g += s.crossEntropy(big, by, { grad: true, labelSmoothing: 0.05 }).grad.data[k];
  out('large', g);
  const b = await s.crossEntropyAsync(big, by, { grad: true });
  out('large async', [b.loss, b.grad.data[12345]]);
}
main();
`;

// Early release switched on (Deno and Bun have ArrayBuffer.prototype.transfer, where the loader
// switches it off): large gradients whose buffers the GC collects, with weak references on them,
// while Deno runs their finalizers on a background thread. With the finalizer deleting the weak
// reference, Deno 2.9 panicked or crashed here on every run.
const EARLY = `
const s = require('smoothce');
const n = require('../dist/core/native.js').native();
n.earlyRelease(true);
const x = s.tensor(Float32Array.from({ length: 2048 * 1000 }, (_, i) => ((i * 131) % 61) / 16), [2048, 1000]);
const y = s.tensor(Int32Array.from({ length: 2048 }, (_, i) => (i * 13) % 1000), [2048]);
let g = 0;
for (let k = 0; k < 24; k++) g += s.crossEntropy(x, y, { grad: true }).grad.data[k];
console.log(JSON.stringify(g), n.earlyRelease().enabled);
`;

interface Program {
  name: string;
  file: string;
}
const programs: Program[] = [];

beforeAll(() => {
  ensureDist();
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  fs.writeFileSync(path.join(work, 'typical.cjs'), TYPICAL);
  programs.push({ name: 'typical program', file: path.join(work, 'typical.cjs') });
  fs.writeFileSync(path.join(work, 'early.cjs'), EARLY);
  programs.push({ name: 'large gradients with early release on', file: path.join(work, 'early.cjs') });
  const readme = path.join(repoRoot, 'README.md');
  for (const b of extractBlocks('README.md', fs.readFileSync(readme, 'utf8'))) {
    if (!['js', 'cjs', 'mjs'].includes(b.lang)) continue;
    const file = path.join(work, `readme-${b.index}.${b.lang === 'mjs' ? 'mjs' : 'cjs'}`);
    fs.writeFileSync(file, b.body);
    programs.push({ name: `README.md block ${b.index} (line ${b.line}, ${b.heading})`, file });
  }
}, 120_000);
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function runWith(runtime: string, file: string) {
  const [cmd, args] = RUNTIMES[runtime](file);
  return run(cmd, args, { cwd: repoRoot, env: cleanEnv({ NO_COLOR: '1' }), timeout: 120_000 });
}

describe('Bun and Deno print what Node prints', () => {
  it('the runtimes are installed (devDependencies bun and deno)', () => {
    for (const [name, args] of [
      ['bun', ['--version']],
      ['deno', ['--version']],
    ] as const) {
      const r = run(bin(name), [...args], { env: cleanEnv(), timeout: 60_000 });
      expect(r.status, describeRun(r)).toBe(0);
      expect(r.stdout).toMatch(/\d+\.\d+\.\d+/);
    }
  });

  for (const runtime of ['bun', 'deno']) {
    it(`${runtime}: the typical program and every README example`, () => {
      expect(programs.filter((p) => p.name.startsWith('README.md')).length, 'no JavaScript block in README.md').toBeGreaterThan(0);
      for (const p of programs) {
        const node = runWith('node', p.file);
        expect(node.status, `node, ${p.name}\n${describeRun(node)}`).toBe(0);
        const other = runWith(runtime, p.file);
        expect(other.status, `${runtime}, ${p.name}\n${describeRun(other)}`).toBe(0);
        expect(other.stderr, `${runtime}, ${p.name}`).not.toMatch(/panicked|Check failed|Segmentation fault|Aborted/);
        expect(other.stdout, `${runtime}, ${p.name}: not what node printed`).toBe(node.stdout);
      }
    }, 900_000);
  }
});
