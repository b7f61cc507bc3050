/**
 * The compiled package (dist/, `npm run build:ts`) through its own name, as users reach it:
 * `import { ... } from 'smoothce'` (ESM, dist/index.mjs) and `require('smoothce')` (CJS,
 * dist/index.js), resolved by node through package.json "exports" (self-reference).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { crossEntropy, tensor } from '../lib/index';
import { cleanEnv, describeRun, ensureDist, repoRoot, runLocked } from './helpers/contract-util';

const X = [0.5, -1, 2, 0.25, 3, -0.5];
const T = [0, 2];
const OPTIONS = { labelSmoothing: 0.1, grad: true };
const expected = crossEntropy(tensor(new Float32Array(X), [2, 3]), tensor(new BigInt64Array(T.map(BigInt)), [2]), OPTIONS);

const USE = (mod: string) => `
  const x = ${mod}.tensor(new Float32Array(${JSON.stringify(X)}), [2, 3]);
  const t = ${mod}.tensor(new BigInt64Array(${JSON.stringify(T)}.map(BigInt)), [2]);
  const r = ${mod}.crossEntropy(x, t, ${JSON.stringify(OPTIONS)});
  const a = await ${mod}.crossEntropyAsync(x, t, ${JSON.stringify(OPTIONS)});
  out.loss = r.loss; out.asyncLoss = a.loss; out.grad = Array.from(r.grad.data);
  out.version = ${mod}.torchVersion();
`;

/** Runs node in the package root under the shared dist/ lock; returns the last stdout line as JSON. */
function node(args: string[]): Record<string, unknown> {
  const r = runLocked('shared', process.execPath, args, { cwd: repoRoot, env: cleanEnv(), timeout: 60_000 });
  expect(r.status, describeRun(r)).toBe(0);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
}

function expectComputed(out: Record<string, unknown>): void {
  expect(out.loss).toBe(expected.loss);
  expect(out.asyncLoss).toBe(expected.loss);
  expect(out.grad).toEqual(Array.from(expected.grad!.data));
  expect(out.version).toMatch(/^\d+\.\d+\.\d+$/);
}

beforeAll(() => {
  ensureDist();
}, 300_000);

describe('the built package through its own name', () => {
  it('ESM: import { crossEntropy, tensor, crossEntropyAsync, torchVersion } from "smoothce"', () => {
    const out = node([
      '--input-type=module',
      '-e',
      `import { crossEntropy, tensor, crossEntropyAsync, torchVersion } from 'smoothce';
       import * as ns from 'smoothce';
       import { createRequire } from 'node:module';
       const out = {};
       const smoothce = { crossEntropy, tensor, crossEntropyAsync, torchVersion };
       ${USE('smoothce')}
       const cjs = createRequire(import.meta.url)('smoothce');
       // One instance for both module systems, and every CommonJS export has an ESM name.
       out.sameInstance = ns.default === cjs && ns.crossEntropy === cjs.crossEntropy;
       out.missing = Object.keys(cjs).filter((k) => k !== '__esModule' && !(k in ns));
       out.resolved = import.meta.resolve('smoothce');
       console.log(JSON.stringify(out));`,
    ]);
    expectComputed(out);
    expect(out.sameInstance).toBe(true);
    expect(out.missing).toEqual([]);
    expect(out.resolved).toBe(`file://${repoRoot}/dist/index.mjs`);
  });

  it('CJS: require("smoothce")', () => {
    const out = node([
      '-e',
      `(async () => {
         const smoothce = require('smoothce');
         const out = {};
         ${USE('smoothce')}
         out.resolved = require.resolve('smoothce');
         out.cudaAvailable = typeof smoothce.cudaAvailable();
         console.log(JSON.stringify(out));
       })().catch((e) => { console.error(e); process.exit(1); });`,
    ]);
    expectComputed(out);
    expect(out.resolved).toBe(`${repoRoot}/dist/index.js`);
    expect(out.cudaAvailable).toBe('boolean');
  });

  it('validation errors keep their classes through the built package', () => {
    const out = node([
      '-e',
      `const { crossEntropy, tensor } = require('smoothce');
       const out = {};
       try { crossEntropy(tensor(new Float32Array(6), [2, 3]), tensor(new BigInt64Array(2), [2]), { labelSmoothing: 1.2 }); }
       catch (e) { out.name = e.constructor.name; out.message = e.message; }
       console.log(JSON.stringify(out));`,
    ]);
    expect(out.name).toBe('RangeError');
    expect(out.message).toMatch(/labelSmoothing but received 1\.2/);
  });
});
