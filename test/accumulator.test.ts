import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { crossEntropy, LossAccumulator, tensor, toDevice, type Tensor } from '../lib/index';
import { rng } from './helpers/rng';

interface Batch {
  input: Tensor;
  target: Tensor;
}

/** Batches of (N_i, C, d) with class-index or probability targets; some rows ignored. */
function batches(seed: number, sizes: number[], C: number, d: number, prob: boolean, dtype: 'float32' | 'float64' = 'float64', ignore = -100): Batch[] {
  const r = rng(seed);
  return sizes.map((n) => {
    const shape = d > 0 ? [n, C, d] : [n, C];
    const count = n * C * Math.max(d, 1);
    const x = dtype === 'float64' ? new Float64Array(count) : new Float32Array(count);
    for (let i = 0; i < count; i++) x[i] = (r() - 0.5) * 6;
    let target: Tensor;
    if (prob) {
      const p = new Float64Array(count);
      for (let i = 0; i < count; i++) p[i] = r();
      target = tensor(dtype === 'float64' ? p : Float32Array.from(p), shape);
    } else {
      const pos = n * Math.max(d, 1);
      target = tensor(Array.from({ length: pos }, () => (r() < 0.2 ? ignore : Math.floor(r() * C))), d > 0 ? [n, d] : [n], 'int64');
    }
    return { input: tensor(x, shape), target };
  });
}

function concat(parts: Batch[]): Batch {
  const cat = (ts: Tensor[]): Tensor => {
    const total = ts.reduce((a, t) => a + t.data.length, 0);
    const Ctor = ts[0].data.constructor as new (n: number) => Float64Array;
    const data = new Ctor(total);
    let off = 0;
    for (const t of ts) {
      data.set(t.data as Float64Array, off);
      off += t.data.length;
    }
    return { data, shape: [ts.reduce((a, t) => a + t.shape[0], 0), ...ts[0].shape.slice(1)], dtype: ts[0].dtype };
  };
  return { input: cat(parts.map((p) => p.input)), target: cat(parts.map((p) => p.target)) };
}

function rel(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-300);
}

const OPTION_SETS = [
  { reduction: 'mean' as const, weight: [0.5, 1.5, 2, 0.25, 1], labelSmoothing: 0.1 },
  { reduction: 'mean' as const, ignoreIndex: 3, labelSmoothing: 0.2 },
  { reduction: 'sum' as const, weight: [1, 2, 3, 4, 5] },
  { reduction: 'mean' as const },
];

describe('LossAccumulator', () => {
  it('equals one crossEntropy call over the concatenated batches (weighted means, ignore_index, k-dim)', () => {
    for (const [i, options] of OPTION_SETS.entries()) {
      for (const d of [0, 3]) {
        const parts = batches(100 + i * 10 + d, [7, 1, 12, 0, 5], 5, d, false, 'float64', (options as { ignoreIndex?: number }).ignoreIndex ?? -100);
        const all = concat(parts);
        const want = crossEntropy(all.input, all.target, options).loss;
        const acc = new LossAccumulator(options);
        for (const p of parts) acc.update(p.input, p.target);
        expect(rel(acc.result(), want), `${JSON.stringify(options)} d=${d}`).toBeLessThan(1e-12);
        const chunked = new LossAccumulator({ ...options, batchSize: 2 });
        for (const p of parts) chunked.update(p.input, p.target);
        expect(rel(chunked.result(), want)).toBeLessThan(1e-12);
        expect(acc.positions).toBe(all.target.data.length);
        expect(acc.updates).toBe(parts.length);
      }
    }
  });

  it('equals one call for probability targets (denominator N·d, weights not in it)', async () => {
    for (const options of [{ weight: [1, 2, 3, 0.5, 1] }, { labelSmoothing: 0.3 }, { reduction: 'sum' as const }]) {
      const parts = batches(7, [4, 9, 3], 5, 2, true);
      const all = concat(parts);
      const want = crossEntropy(all.input, all.target, options).loss;
      const acc = new LossAccumulator(options);
      for (const p of parts) await acc.updateAsync(p.input, p.target);
      expect(rel(acc.result(), want)).toBeLessThan(1e-12);
    }
  });

  it('float32 batches: within float32 tolerance of the one call', () => {
    const parts = batches(3, [20, 33, 8], 5, 0, false, 'float32');
    const all = concat(parts);
    const opts = { weight: [1, 2, 0.5, 1, 3], labelSmoothing: 0.1 };
    const want = crossEntropy(all.input, all.target, opts).loss;
    const acc = new LossAccumulator(opts);
    for (const p of parts) acc.update(p.input, p.target);
    expect(Math.abs(acc.result() - want)).toBeLessThan(1e-6 + 1e-5 * Math.abs(want));
  });

  it('empty, all-ignored and zero-weight streams: mean NaN, sum 0, as PyTorch', () => {
    const acc = new LossAccumulator();
    expect(acc.result()).toBeNaN();
    expect(new LossAccumulator({ reduction: 'sum' }).result()).toBe(0);
    acc.update(tensor(new Float64Array(6), [2, 3]), tensor([-100, -100], [2], 'int64'));
    expect(acc.result()).toBeNaN();
    expect(acc.denominator).toBe(0);
    const z = new LossAccumulator({ weight: [0, 1, 1], labelSmoothing: 0.5 });
    z.update(tensor(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]), tensor([0, 0], [2], 'int64'));
    expect(z.result()).toBeNaN();
    expect(crossEntropy(tensor(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]), tensor([0, 0], [2], 'int64'), { weight: [0, 1, 1], labelSmoothing: 0.5 }).loss).toBeNaN();
  });

  it('merge() and toJSON()/fromJSON() combine exactly, in any order', () => {
    const options = OPTION_SETS[0];
    const parts = batches(55, [5, 8, 13, 2, 9, 4], 5, 0, false);
    const all = concat(parts);
    const want = crossEntropy(all.input, all.target, options).loss;
    const accs = parts.map((p) => new LossAccumulator(options).update(p.input, p.target));
    const viaJson = accs.map((a) => LossAccumulator.fromJSON(JSON.parse(JSON.stringify(a))));
    const merged = viaJson.reverse().reduce((m, a) => m.merge(a), new LossAccumulator(options));
    expect(rel(merged.result(), want)).toBeLessThan(1e-12);
    expect(merged.positions).toBe(all.target.data.length);
    // A string works too, and the state survives a second round trip unchanged.
    const again = LossAccumulator.fromJSON(JSON.stringify(merged));
    expect(again.toJSON()).toEqual(merged.toJSON());
    expect(again.result()).toBe(merged.result());
  });

  it('keeps NaN, Infinity and -0 through JSON', () => {
    const acc = new LossAccumulator({ reduction: 'sum', labelSmoothing: 0.5 });
    acc.update(tensor(new Float64Array([-Infinity, 0, 1]), [1, 3]), tensor([1], [1], 'int64'));
    expect(acc.result()).toBe(Infinity);
    expect(LossAccumulator.fromJSON(JSON.stringify(acc)).result()).toBe(Infinity);
    const empty = new LossAccumulator({ reduction: 'sum' });
    empty.update(tensor(new Float64Array(0), [0, 3]), tensor(new Float64Array(0), [0, 3]));
    expect(Object.is(empty.result(), -0)).toBe(Object.is(crossEntropy(tensor(new Float64Array(0), [0, 3]), tensor(new Float64Array(0), [0, 3]), { reduction: 'sum' }).loss, -0));
    expect(Object.is(LossAccumulator.fromJSON(JSON.stringify(empty)).result(), empty.result())).toBe(true);
  });

  it('accepts device tensor handles (cpu here)', () => {
    const [p] = batches(8, [6], 5, 0, false);
    const want = crossEntropy(p.input, p.target, { weight: [1, 2, 3, 4, 5] }).loss;
    const x = toDevice(p.input, 'cpu');
    const y = toDevice(p.target, 'cpu');
    const acc = new LossAccumulator({ weight: [1, 2, 3, 4, 5] }).update(x, y);
    expect(rel(acc.result(), want)).toBeLessThan(1e-12);
    x.dispose();
    y.dispose();
  });

  it('refuses a uint8 mean whose smoothing term ignores a wrapped ignore_index (two denominators); sums it exactly', () => {
    const x = tensor(new Float64Array(4 * 160).map((_, i) => Math.sin(i)), [4, 160]);
    const wrapped = tensor([156, 2, 3, 4], [4], 'uint8');
    const acc = new LossAccumulator({ labelSmoothing: 0.1 });
    expect(() => acc.update(x, wrapped)).toThrow(RangeError);
    expect(() => acc.update(x, wrapped)).toThrow(/uint8 class index 156 is ignoreIndex -100 wrapped to 8 bits/);
    expect(acc.updates).toBe(0);
    // Targets that do not hit the wrapped value, other dtypes and ε = 0 are fine.
    acc.update(x, tensor([155, 2, 3, 4], [4], 'uint8'));
    new LossAccumulator({ labelSmoothing: 0.1 }).update(x, tensor([156, 2, 3, 4], [4], 'int32'));
    new LossAccumulator({}).update(x, wrapped);
    const sum = new LossAccumulator({ labelSmoothing: 0.1, reduction: 'sum' }).update(x, wrapped);
    expect(sum.result()).toBeCloseTo(crossEntropy(x, wrapped, { labelSmoothing: 0.1, reduction: 'sum' }).loss as number, 12);
  });

  it('validates its options like crossEntropy, and refuses reduction none', () => {
    expect(() => new LossAccumulator({ reduction: 'none' as 'sum' })).toThrow(RangeError);
    expect(() => new LossAccumulator({ reduction: 'avg' as 'sum' })).toThrow(TypeError);
    expect(() => new LossAccumulator({ labelSmoothing: 2 })).toThrow(RangeError);
    expect(() => new LossAccumulator({ labelSmoothing: '0.1' as unknown as number })).toThrow(TypeError);
    expect(() => new LossAccumulator({ grad: true } as never)).toThrow(/Unknown option 'grad'/);
    expect(() => new LossAccumulator({ weight: 3 as never })).toThrow(TypeError);
    expect(() => new LossAccumulator({ batchSize: 0 })).toThrow(RangeError);
    expect(() => new LossAccumulator({ device: 'tpu' as never })).toThrow(RangeError);
    expect(() => new LossAccumulator({ device: 'cuda' })).toThrow(/CUDA/);
    const acc = new LossAccumulator({ weight: [1, 2] });
    expect(() => acc.update(tensor(new Float64Array(6), [2, 3]), tensor([0, 1], [2], 'int64'))).toThrow(/weight/);
    const a = new LossAccumulator().update(tensor(new Float64Array(6), [2, 3]), tensor([0, 1], [2], 'int64'));
    expect(() => a.update(tensor(new Float64Array(8), [2, 4]), tensor([0, 1], [2], 'int64'))).toThrow(/classes/);
    expect(() => a.update(tensor(new Float64Array(6), [2, 3]), tensor(new Float64Array(6), [2, 3]))).toThrow(/probabilities/);
    expect(() => a.merge(new LossAccumulator({ labelSmoothing: 0.1 }))).toThrow(RangeError);
    expect(() => a.merge({} as LossAccumulator)).toThrow(TypeError);
    expect(() => LossAccumulator.fromJSON({} as never)).toThrow(TypeError);
  });

  it('merges partial results from separate child processes into the one-pass result', async () => {
    const root = path.resolve(__dirname, '..');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-acc-'));
    // Transpile the library once (typescript's transpileModule, no type check) into a
    // temporary folder; each child then loads plain JavaScript and the built addon.
    const ts = (await import('typescript')).default;
    const libOut = path.join(dir, 'lib');
    const walk = (from: string, to: string): void => {
      fs.mkdirSync(to, { recursive: true });
      for (const e of fs.readdirSync(from, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(from, e.name), path.join(to, e.name));
        else if (e.name.endsWith('.ts')) {
          const out = ts.transpileModule(fs.readFileSync(path.join(from, e.name), 'utf8'), {
            compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
          });
          fs.writeFileSync(path.join(to, e.name.replace(/\.ts$/, '.js')), out.outputText);
        }
      }
    };
    walk(path.join(root, 'lib'), libOut);
    const child = path.join(dir, 'child.js');
    fs.writeFileSync(
      child,
      `const fs = require('fs');
const { LossAccumulator } = require('./lib/loss/accumulator.js');
const { tensor } = require('./lib/core/tensor.js');
const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = [];
for (const task of job) {
  const acc = new LossAccumulator(task.options);
  for (const b of task.batches) {
    const target = b.prob ? tensor(Float64Array.from(b.target), b.targetShape) : tensor(b.target, b.targetShape, 'int64');
    acc.update(tensor(Float64Array.from(b.input), b.inputShape), target);
  }
  out.push(JSON.stringify(acc));
}
process.stdout.write(JSON.stringify(out));
`,
    );
    const run = promisify(execFile);
    const env = { ...process.env, SMOOTHCE_NATIVE: path.join(root, 'build/Release/smoothce.node') };
    const tasks = ([
      [{ weight: [0.5, 1.5, 2, 0.25, 1], labelSmoothing: 0.1, ignoreIndex: -100 }, false],
      [{ weight: [1, 2, 3, 4, 5], labelSmoothing: 0.2 }, true],
      [{ reduction: 'sum', ignoreIndex: 4 }, false],
    ] as const).map(([options, prob], i) => {
      const parts = batches(77 + i, [9, 4, 11, 6, 3, 10], 5, 2, prob, 'float64', (options as { ignoreIndex?: number }).ignoreIndex ?? -100);
      return { options, prob, parts };
    });
    const shardsOf = (parts: Batch[]): Batch[][] => [parts.slice(0, 2), parts.slice(2, 3), parts.slice(3)];
    // Three processes, each computing its shard of every task.
    const outputs = await Promise.all(
      [0, 1, 2].map(async (k) => {
        const file = path.join(dir, `job${k}.json`);
        const job = tasks.map(({ options, prob, parts }) => ({
          options,
          batches: shardsOf(parts)[k].map((b) => ({
            input: Array.from(b.input.data as Float64Array),
            inputShape: b.input.shape,
            target: Array.from(b.target.data as Float64Array, Number),
            targetShape: b.target.shape,
            prob,
          })),
        }));
        fs.writeFileSync(file, JSON.stringify(job));
        const { stdout } = await run(process.execPath, [child, file], { cwd: dir, env });
        return JSON.parse(stdout) as string[];
      }),
    );
    for (const [t, { options, parts }] of tasks.entries()) {
      const all = concat(parts);
      const want = crossEntropy(all.input, all.target, options).loss;
      const onePass = new LossAccumulator(options);
      for (const p of parts) onePass.update(p.input, p.target);
      const merged = outputs.map((o) => LossAccumulator.fromJSON(o[t])).reduce((m, a) => m.merge(a));
      expect(rel(merged.result(), want), JSON.stringify(options)).toBeLessThan(1e-12);
      expect(rel(merged.result(), onePass.result())).toBeLessThan(1e-14);
      expect(merged.positions).toBe(onePass.positions);
      expect(merged.updates).toBe(parts.length);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
