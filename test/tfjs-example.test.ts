/**
 * examples/tfjs-train runs (through the built package, as a user runs it) and reports what
 * docs/frameworks.md says it does: a falling loss curve equal to the tfjs twin's, the
 * calibration of the trained model, and tfjs's softmaxCrossEntropy equal to PyTorch's loss
 * for rank 2 without weights but not with class weights, rank 4 or ignore_index.
 */
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, describeRun, ensureDist, runLocked } from './helpers/contract-util';

const ROOT = path.resolve(__dirname, '..');

function run(args: string[]): Record<string, any> {
  // through the built package (dist/), under the shared lock other tests rebuild it under
  const r = runLocked('shared', process.execPath, ['examples/tfjs-train', '--json', ...args], { cwd: ROOT, env: cleanEnv(), timeout: 120_000 });
  expect(r.status, describeRun(r)).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

beforeAll(() => {
  ensureDist();
}, 300_000);

describe('examples/tfjs-train', () => {
  for (const backend of ['cpu', 'wasm']) {
    it(`trains and compares (${backend} backend, 4 epochs)`, () => {
      const out = run(['--backend', backend, '--epochs', '4']);
      expect(out.backend).toBe(backend);
      const curve: number[] = out.lossCurve;
      expect(curve).toHaveLength(4);
      expect(curve[3]).toBeLessThan(0.6 * curve[0]);
      // the twin trained with tfjs's own loss (rank 2, no weights) follows the same curve
      out.tfjsLossCurve.forEach((v: number, i: number) => expect(Math.abs(v - curve[i])).toBeLessThan(1e-3));
      expect(out.calibration.n).toBe(360);
      expect(out.calibration.accuracy).toBeGreaterThan(0.8);
      expect(out.temperature.eceAfter).toBeLessThan(out.calibration.ece);
      const [plain, weighted, rank4, ignore] = out.comparison;
      expect(plain.relDiff).toBeLessThan(1e-5);
      expect(weighted.relDiff).toBeGreaterThan(0.05);
      expect(rank4.relDiff).toBeGreaterThan(0.05);
      expect(Math.abs(rank4.smoothce - rank4.rank2) / rank4.rank2).toBeLessThan(1e-5);
      expect(ignore.relDiff).toBeGreaterThan(0.01);
      expect(Math.abs(ignore.tfjsMasked - ignore.smoothce) / ignore.smoothce).toBeLessThan(1e-5);
    });
  }
});
