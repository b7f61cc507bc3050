/**
 * The CPU allocator the addon installs for ATen when it loads (binding/memory/allocator.{h,cc}): ATen's
 * allocations of at least 512 KiB come from 2 MiB-aligned mappings that are cached and reused. It must not change a single bit of the ATen path's results, it must
 * really serve ATen's large tensors, and switching it off and on while tensors of either
 * allocator are alive must be safe (each block is freed by the allocator that made it).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { crossEntropy, tensor, type CrossEntropyOptions, type Tensor } from '../lib/index';
import { native } from '../lib/core/native';
import { restoreEnvAfterAll } from './helpers/env';
import { rng } from './helpers/rng';

restoreEnvAfterAll('SMOOTHCE_ATEN_REFERENCE');
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const initially = native().hugePageAllocator();
afterAll(() => {
  native().hugePageAllocator(initially);
});

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.compare(bytesOf(a), bytesOf(b)) === 0;
}

interface Case {
  label: string;
  input: Tensor;
  target: Tensor;
  options: CrossEntropyOptions;
}

function cases(): Case[] {
  const r = rng(2101);
  const out: Case[] = [];
  const make = (label: string, shape: number[], dtype: 'float32' | 'float64' | 'bfloat16', options: CrossEntropyOptions, prob = false) => {
    const numel = shape.reduce((a, b) => a * b, 1);
    const x = dtype === 'float64' ? new Float64Array(numel) : new Float32Array(numel);
    for (let i = 0; i < numel; i++) x[i] = (r() - 0.5) * 12;
    if (dtype === 'bfloat16') {
      const u = new Uint32Array(x.buffer);
      for (let i = 0; i < numel; i++) u[i] &= 0xffff0000;
    }
    const C = shape.length === 1 ? shape[0] : shape[1];
    const positions = numel / C;
    let target: Tensor;
    if (prob) {
      const t = dtype === 'float64' ? new Float64Array(numel) : new Float32Array(numel);
      for (let i = 0; i < numel; i++) t[i] = r();
      target = tensor(t, shape, dtype === 'bfloat16' ? 'float32' : dtype);
    } else {
      const t = new BigInt64Array(positions);
      for (let i = 0; i < positions; i++) t[i] = BigInt(r() < 0.05 ? -100 : Math.floor(r() * C));
      target = tensor(t, shape.length === 1 ? [] : shape.filter((_, i) => i !== 1));
    }
    out.push({ label, input: tensor(x, shape, dtype), target, options });
  };
  // Every N x C tensor here is at least 1 MiB, so ATen's temporaries and results go through the allocator.
  make('float32 512x1000, ε 0.1, mean, grad', [512, 1000], 'float32', { labelSmoothing: 0.1, grad: true });
  make('float32 512x1000, ε 0, sum, grad', [512, 1000], 'float32', { labelSmoothing: 0, reduction: 'sum', grad: true });
  make('float32 300x1001, ε 0.2, none, grad', [300, 1001], 'float32', { labelSmoothing: 0.2, reduction: 'none', grad: true });
  const w = new Float32Array(1000).map(() => r() * 2);
  make('float32 512x1000, weighted, ε 0.1, mean, grad', [512, 1000], 'float32', { labelSmoothing: 0.1, weight: w, grad: true });
  make('float64 256x1000, ε 0.1, mean, grad', [256, 1000], 'float64', { labelSmoothing: 0.1, grad: true });
  make('float32 [64, 1000, 5], ε 0.1, mean, grad (k-dim: autograd)', [64, 1000, 5], 'float32', { labelSmoothing: 0.1, grad: true });
  make('bfloat16 512x1000, ε 0.1, mean, grad', [512, 1000], 'bfloat16', { labelSmoothing: 0.1, grad: true });
  make('float32 512x1000 probability targets, ε 0.1, grad', [512, 1000], 'float32', { labelSmoothing: 0.1, grad: true }, true);
  make('float32 512x1000, ε 0.1, forward only', [512, 1000], 'float32', { labelSmoothing: 0.1 });
  return out;
}

function run(c: Case): { loss: ArrayBufferView; grad?: ArrayBufferView } {
  const res = crossEntropy(c.input, c.target, { ...c.options, impl: 'aten' });
  const loss = typeof res.loss === 'number' ? new Float64Array([res.loss]) : res.loss.data;
  return { loss, grad: res.grad?.data };
}

describe('the ATen allocator', () => {
  it('is installed when the addon loads, and SMOOTHCE_ATEN_ALLOCATOR=default leaves c10 default allocator', () => {
    expect(initially).toBe(true);
    const script = "process.stdout.write(String(require('./dist/core/native.js').native().hugePageAllocator()))";
    const root = path.join(__dirname, '..');
    const run = (value: string | undefined) => {
      const env = { ...process.env };
      if (value === undefined) delete env.SMOOTHCE_ATEN_ALLOCATOR;
      else env.SMOOTHCE_ATEN_ALLOCATOR = value;
      return execFileSync(process.execPath, ['-e', script], { cwd: root, env, encoding: 'utf8' });
    };
    expect(run(undefined)).toBe('true');
    expect(run('default')).toBe('false');
    expect(run('0')).toBe('false');
  });

  it.each([
    ['the shortcuts', undefined],
    ['at::cross_entropy_loss + autograd', '1'],
  ])('gives the same bits with and without it (%s)', (_label, reference) => {
    if (reference === undefined) delete process.env.SMOOTHCE_ATEN_REFERENCE;
    else process.env.SMOOTHCE_ATEN_REFERENCE = reference;
    for (const c of cases()) {
      native().hugePageAllocator(false);
      const plain = run(c);
      native().hugePageAllocator(true);
      const ours = run(c);
      const again = run(c); // from cached blocks this time
      expect(sameBits(ours.loss, plain.loss), c.label).toBe(true);
      expect(sameBits(again.loss, plain.loss), c.label).toBe(true);
      expect(ours.grad === undefined, c.label).toBe(plain.grad === undefined);
      if (plain.grad && ours.grad && again.grad) {
        expect(sameBits(ours.grad, plain.grad), c.label).toBe(true);
        expect(sameBits(again.grad, plain.grad), c.label).toBe(true);
      }
    }
  });

  it("serves ATen's large tensors from its own mappings", () => {
    // In a fresh process: here, earlier results' finalizers, the external-result cap and a full
    // cache would all move the counts. kB of mappings whose VmFlags include hg (MADV_HUGEPAGE)
    // after an ATen forward+gradient call of 301 x 1003 float32 (1,207,612-byte N x C tensors),
    // with c10's allocator and then with ours. Totals, since adjacent mappings with the same
    // flags merge.
    const script = `
      const sc = require('.'), { native } = require('./dist/core/native.js'), fs = require('fs');
      const hg = () => { let t = 0, s = 0; for (const l of fs.readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
        const m = /^Size:\\s+(\\d+) kB/.exec(l); if (m) s = +m[1]; if (l.startsWith('VmFlags:') && / hg( |$)/.test(l)) t += s; } return t; };
      const x = new Float32Array(301 * 1003).map((_, i) => Math.sin(i)), t = new BigInt64Array(301).map((_, i) => BigInt(i * 7 % 1003));
      const call = () => sc.crossEntropy(sc.tensor(x, [301, 1003]), sc.tensor(t, [301]), { labelSmoothing: 0.1, grad: true, impl: 'aten' });
      native().hugePageAllocator(false);
      const off0 = hg(), plain = call(), off1 = hg();
      native().hugePageAllocator(true);
      const ours = call(), on1 = hg();
      const same = Buffer.compare(Buffer.from(plain.grad.data.buffer), Buffer.from(ours.grad.data.buffer)) === 0 && plain.loss === ours.loss;
      process.stdout.write(JSON.stringify({ off: off1 - off0, on: on1 - off1, same }));`;
    // SMOOTHCE_HUGE_ADVICE=1: fresh mappings are advised too (by default only reused ones
    // are in use after the first call), so that they can be told apart in smaps.
    const env = { ...process.env, SMOOTHCE_HUGE_ADVICE: '1' };
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: path.join(__dirname, '..'), encoding: 'utf8', env })) as {
      off: number;
      on: number;
      same: boolean;
    };
    const blockKB = Math.ceil((301 * 1003 * 4) / 4096) * 4;
    expect(out.off).toBe(0);
    // The gradient (alive) and at least one freed N x C temporary, kept in the cache.
    expect(out.on).toBeGreaterThanOrEqual(2 * blockKB);
    expect(out.same).toBe(true);
  });

  it('frees tensors of either allocator after switches in both directions', async () => {
    delete process.env.SMOOTHCE_ATEN_REFERENCE;
    const [c] = cases();
    const kept: ArrayBufferView[] = [];
    let expected: ArrayBufferView | undefined;
    for (const on of [true, false, true, false, true]) {
      native().hugePageAllocator(on);
      expect(native().hugePageAllocator()).toBe(on);
      const g = run(c).grad!;
      expected ??= g;
      expect(sameBits(g, expected)).toBe(true);
      kept.push(g);
    }
    native().hugePageAllocator(false);
    kept.length = 0; // blocks of both allocators now die with the allocator switched off ...
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    native().hugePageAllocator(true); // ... and are reused or made again with it on
    expect(sameBits(run(c).grad!, expected!)).toBe(true);
  });
});
