/**
 * linearCrossEntropy against the live PyTorch oracle (python/linear_ce_oracle.py:
 * F.cross_entropy(F.linear(x, W, b), ...) and autograd in float64 from the same values):
 * the loss and the three gradients over random cases covering bias, class weights,
 * ignore_index, probability targets, every reduction, ε from 0 to 1, float32/float64,
 * unbatched input, gradOutput and small working-memory bounds (many row blocks). Also:
 * async gives the same bits as sync, gradInto, coded errors for bad input, inputs untouched.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cudaAvailable, linearCrossEntropy, linearCrossEntropyAsync, tensor, toDevice, type Tensor } from '../lib/index';
import type { LinearCrossEntropyOptions } from '../lib/index';
import { ORACLE_PYTHON, probeOracle } from './helpers/oracle';
import { rng } from './helpers/rng';

const probe = probeOracle();
const SEED = process.env.SMOOTHCE_ORACLE_SEED ? Number(process.env.SMOOTHCE_ORACLE_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const CASES = 160;

type Dt = 'float32' | 'float64';
interface Spec {
  dtype: Dt;
  N: number | null; // null: unbatched
  H: number;
  C: number;
  bias: boolean;
  weight: boolean;
  prob: boolean;
  ignoreIndex: number | undefined;
  reduction: 'mean' | 'sum' | 'none';
  eps: number;
  gradOutput: 'none' | 'number' | 'tensor';
  workingMemory: number | undefined;
}

interface Built {
  spec: Spec;
  x: Tensor;
  w: Tensor;
  target: Tensor;
  options: LinearCrossEntropyOptions;
  request: Record<string, unknown>;
}

function build(spec: Spec, r: () => number): Built {
  const Arr = spec.dtype === 'float64' ? Float64Array : Float32Array;
  const fill = (n: number, f: () => number): Float32Array | Float64Array => {
    const a = new Arr(n);
    for (let i = 0; i < n; i++) a[i] = f();
    return a;
  };
  const rows = spec.N ?? 1;
  const xShape = spec.N === null ? [spec.H] : [spec.N, spec.H];
  const x = tensor(fill(rows * spec.H, () => (r() * 2 - 1) * 2), xShape, spec.dtype);
  const w = tensor(fill(spec.C * spec.H, () => (r() * 2 - 1) * 1.5), [spec.C, spec.H], spec.dtype);
  const options: LinearCrossEntropyOptions = { reduction: spec.reduction, labelSmoothing: spec.eps, grad: true };
  if (spec.bias) options.linearBias = fill(spec.C, () => r() * 2 - 1);
  if (spec.weight) options.weight = Float64Array.from({ length: spec.C }, () => 0.2 + r() * 2);
  if (spec.ignoreIndex !== undefined) options.ignoreIndex = spec.ignoreIndex;
  if (spec.workingMemory !== undefined) options.workingMemory = spec.workingMemory;
  let target: Tensor;
  const tShape = spec.N === null ? [] : [spec.N];
  if (spec.prob) {
    const p = new Arr(rows * spec.C);
    for (let n = 0; n < rows; n++) {
      let s = 0;
      for (let c = 0; c < spec.C; c++) s += p[n * spec.C + c] = Math.exp(3 * r());
      for (let c = 0; c < spec.C; c++) p[n * spec.C + c] /= s;
    }
    target = tensor(p, spec.N === null ? [spec.C] : [spec.N, spec.C], spec.dtype);
  } else {
    const ignore = spec.ignoreIndex ?? -100;
    const t = BigInt64Array.from({ length: rows }, () => BigInt(r() < 0.2 ? ignore : Math.floor(r() * spec.C)));
    target = tensor(t, tShape, 'int64');
  }
  const lossShape = spec.reduction === 'none' ? tShape : [];
  let go: number | number[] | null = null;
  if (spec.gradOutput === 'number') {
    go = 0.5 + r();
    options.gradOutput = go;
  } else if (spec.gradOutput === 'tensor') {
    const g = Float64Array.from({ length: lossShape.length ? rows : 1 }, () => r() * 2 - 0.5);
    options.gradOutput = tensor(g, lossShape, 'float64');
    go = Array.from(g);
  }
  const request = {
    x: Array.from(x.data as Float64Array),
    x_shape: xShape,
    w: Array.from(w.data as Float64Array),
    C: spec.C,
    b: options.linearBias ? Array.from(options.linearBias as Float64Array) : null,
    target: spec.prob ? Array.from(target.data as Float64Array) : Array.from(target.data as BigInt64Array, Number),
    target_shape: target.shape,
    prob: spec.prob,
    weight: options.weight ? Array.from(options.weight as Float64Array) : null,
    ignore_index: spec.ignoreIndex ?? -100,
    reduction: spec.reduction,
    eps: spec.eps,
    grad_output: go,
  };
  return { spec, x, w, target, options, request };
}

function randomSpec(r: () => number, i: number): Spec {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const C = 2 + Math.floor(r() * 40);
  const prob = r() < 0.3;
  const epsKind = i % 4;
  return {
    dtype: i % 2 === 0 ? 'float32' : 'float64',
    N: r() < 0.12 ? null : pick([0, 1, 3, 8, 17, 33, 64]),
    H: 1 + Math.floor(r() * 24),
    C,
    bias: r() < 0.6,
    weight: r() < 0.4,
    prob,
    ignoreIndex: prob ? undefined : pick([undefined, -1, 0, Math.floor(r() * C), 1000]),
    reduction: pick(['mean', 'sum', 'none'] as const),
    eps: epsKind === 0 ? 0 : epsKind === 1 ? 1 : Math.round(r() * 1000) / 1000,
    gradOutput: pick(['none', 'number', 'tensor'] as const),
    // Blocks of 1 to 5 rows in about half the cases, the default in the rest.
    workingMemory: r() < 0.5 ? C * 8 * (prob ? 2 : 1) * (1 + Math.floor(r() * 5)) : undefined,
  };
}

interface OracleResult {
  loss?: (number | string)[];
  gx?: (number | string)[];
  gw?: (number | string)[];
  gb?: (number | string)[] | null;
  error?: string;
}

function runOracle(requests: Record<string, unknown>[]): OracleResult[] {
  const out = spawnSync(ORACLE_PYTHON, [path.join(__dirname, '..', 'python', 'linear_ce_oracle.py')], {
    input: JSON.stringify({ cases: requests }),
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  if (out.status !== 0) throw new Error(`oracle failed: ${out.stderr}`);
  return (JSON.parse(out.stdout) as { results: OracleResult[] }).results;
}

const num = (v: number | string): number => (typeof v === 'number' ? v : Number(v));

/** float64: within 1e-10 relative; float32: within 1e-4 relative of the float64 reference (plus a tiny floor scaled to the tensor). */
function close(actual: ArrayLike<number>, expected: (number | string)[], dtype: Dt, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const ref = expected.map(num);
  const scale = ref.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);
  const rtol = dtype === 'float64' ? 1e-10 : 1e-4;
  const atol = (dtype === 'float64' ? 1e-13 : 1e-6) * Math.max(1, scale);
  for (let i = 0; i < ref.length; i++) {
    const a = actual[i];
    const e = ref[i];
    if (Number.isNaN(e)) {
      expect(Number.isNaN(a), `${what}[${i}]: expected NaN, got ${a}`).toBe(true);
      continue;
    }
    if (!Number.isFinite(e)) {
      expect(a, `${what}[${i}]`).toBe(e);
      continue;
    }
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      throw new Error(`${what}[${i}]: ${a} vs reference ${e} (|diff| ${Math.abs(a - e)}, allowed ${atol + rtol * Math.abs(e)})`);
    }
  }
}

function snapshot(b: Built): ArrayBufferView[] {
  const views: ArrayBufferView[] = [b.x.data, b.w.data, b.target.data];
  const o = b.options;
  if (o.linearBias) views.push(o.linearBias as Float64Array);
  if (o.weight) views.push(o.weight as Float64Array);
  if (o.gradOutput && typeof o.gradOutput !== 'number') views.push(o.gradOutput.data);
  return views.map((v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice());
}

function unchanged(b: Built, before: ArrayBufferView[]): void {
  const now = snapshot(b);
  now.forEach((v, i) => expect(Buffer.from(v as Uint8Array).equals(Buffer.from(before[i] as Uint8Array)), `argument ${i} untouched`).toBe(true));
}

function bytesOf(v: ArrayBufferView): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

describe.skipIf(!probe.ok)(`linearCrossEntropy vs the PyTorch oracle (seed ${SEED})`, () => {
  const r = rng(SEED);
  const built: Built[] = [];
  for (let i = 0; i < CASES; i++) built.push(build(randomSpec(r, i), r));
  // Fixed cases the random draw might miss: all rows ignored, ε = 1 with weights, a large C.
  built.push(build({ dtype: 'float64', N: 4, H: 3, C: 5, bias: true, weight: true, prob: false, ignoreIndex: 2, reduction: 'mean', eps: 1, gradOutput: 'none', workingMemory: 40 }, r));
  built.push(build({ dtype: 'float32', N: 96, H: 16, C: 3000, bias: true, weight: true, prob: false, ignoreIndex: undefined, reduction: 'mean', eps: 0.1, gradOutput: 'none', workingMemory: 3000 * 4 * 24 }, r));
  built.push(build({ dtype: 'float64', N: 40, H: 8, C: 700, bias: false, weight: true, prob: true, ignoreIndex: undefined, reduction: 'sum', eps: 0.3, gradOutput: 'number', workingMemory: 700 * 16 * 7 }, r));
  const allIgnored = build({ dtype: 'float64', N: 3, H: 2, C: 4, bias: true, weight: false, prob: false, ignoreIndex: 1, reduction: 'mean', eps: 0.2, gradOutput: 'none', workingMemory: undefined }, r);
  (allIgnored.target.data as BigInt64Array).fill(1n);
  (allIgnored.request.target as number[]).fill(1);
  built.push(allIgnored);
  const expected = runOracle(built.map((b) => b.request));

  it('loss and all three gradients match, within rtol 1e-4 (float32) / 1e-10 (float64) of the float64 reference', () => {
    const seen = new Set<string>();
    built.forEach((b, i) => {
      const e = expected[i];
      const label = `case ${i} ${JSON.stringify(b.spec)}`;
      expect(e.error, label).toBeUndefined();
      const before = snapshot(b);
      const res = linearCrossEntropy(b.x, b.w, b.target, b.options);
      unchanged(b, before);
      const loss = typeof res.loss === 'number' ? [res.loss] : Array.from(res.loss.data);
      if (typeof res.loss !== 'number') expect(res.loss.shape, label).toEqual(b.spec.N === null ? [] : [b.spec.N]);
      close(loss, e.loss!, b.spec.dtype, `${label} loss`);
      const g = res.grad!;
      expect(g.input.shape).toEqual(b.x.shape);
      expect(g.input.dtype).toBe(b.spec.dtype);
      expect(g.linearWeight.shape).toEqual(b.w.shape);
      close(g.input.data, e.gx!, b.spec.dtype, `${label} grad.input`);
      close(g.linearWeight.data, e.gw!, b.spec.dtype, `${label} grad.linearWeight`);
      if (b.spec.bias) close(g.linearBias!.data, e.gb!, b.spec.dtype, `${label} grad.linearBias`);
      else expect(g.linearBias).toBeUndefined();
      const s = b.spec;
      for (const tag of [s.dtype, s.reduction, s.prob ? 'prob' : 'index', s.bias ? 'bias' : 'nobias', s.weight ? 'weight' : 'noweight', s.N === null ? 'unbatched' : 'batched', `go-${s.gradOutput}`, s.eps === 0 ? 'eps0' : s.eps === 1 ? 'eps1' : 'eps', s.ignoreIndex !== undefined ? 'ignore' : 'noignore', s.workingMemory ? 'blocks' : 'default-memory']) seen.add(tag);
    });
    for (const tag of ['float32', 'float64', 'mean', 'sum', 'none', 'prob', 'index', 'bias', 'nobias', 'weight', 'unbatched', 'go-number', 'go-tensor', 'eps0', 'eps1', 'eps', 'ignore', 'blocks']) {
      expect(seen.has(tag), `coverage: ${tag}`).toBe(true);
    }
  });

  it('the forward alone (grad: false) gives the same loss as with gradients', () => {
    for (const b of built.slice(0, 30)) {
      const withGrad = linearCrossEntropy(b.x, b.w, b.target, b.options);
      const { grad: _g, gradOutput: _o, ...rest } = b.options;
      const fwd = linearCrossEntropy(b.x, b.w, b.target, { ...rest, grad: false });
      expect(fwd.grad).toBeUndefined();
      const a = typeof fwd.loss === 'number' ? [fwd.loss] : Array.from(fwd.loss.data);
      const c = typeof withGrad.loss === 'number' ? [withGrad.loss] : Array.from(withGrad.loss.data);
      expect(a).toEqual(c);
    }
  });

  it('async gives the same bits as sync, and may have its inputs overwritten right after the call', async () => {
    for (const b of built.slice(0, 40)) {
      const sync = linearCrossEntropy(b.x, b.w, b.target, b.options);
      const x2 = tensor((b.x.data as Float64Array).slice(), b.x.shape, b.x.dtype);
      const w2 = tensor((b.w.data as Float64Array).slice(), b.w.shape, b.w.dtype);
      const pending = linearCrossEntropyAsync(x2, w2, b.target, b.options);
      (x2.data as Float64Array).fill(Number.NaN);
      (w2.data as Float64Array).fill(Number.NaN);
      const res = await pending;
      if (typeof sync.loss === 'number') expect(Object.is(res.loss, sync.loss) || res.loss === sync.loss).toBe(true);
      else expect(bytesOf((res.loss as Tensor).data).equals(bytesOf(sync.loss.data))).toBe(true);
      expect(bytesOf(res.grad!.input.data).equals(bytesOf(sync.grad!.input.data))).toBe(true);
      expect(bytesOf(res.grad!.linearWeight.data).equals(bytesOf(sync.grad!.linearWeight.data))).toBe(true);
      if (sync.grad!.linearBias) expect(bytesOf(res.grad!.linearBias!.data).equals(bytesOf(sync.grad!.linearBias.data))).toBe(true);
    }
  });
});

describe('linearCrossEntropy: gradInto, dtypes, bad input', () => {
  const r = rng(12345);
  const N = 6;
  const H = 5;
  const C = 7;
  const x = tensor(Float32Array.from({ length: N * H }, () => r() - 0.5), [N, H], 'float32');
  const w = tensor(Float32Array.from({ length: C * H }, () => r() - 0.5), [C, H], 'float32');
  const b = Float32Array.from({ length: C }, () => r() - 0.5);
  const y = tensor(BigInt64Array.from({ length: N }, (_, i) => BigInt(i % C)), [N], 'int64');

  it('gradInto: writes the gradients into the given buffers (the same values), returning them', async () => {
    const plain = linearCrossEntropy(x, w, y, { linearBias: b, grad: true, labelSmoothing: 0.1 });
    const into = { input: new Float32Array(N * H), linearWeight: new Float32Array(C * H), linearBias: new Float32Array(C) };
    for (const run of [() => linearCrossEntropy(x, w, y, { linearBias: b, grad: true, labelSmoothing: 0.1, gradInto: into }), () => linearCrossEntropyAsync(x, w, y, { linearBias: b, grad: true, labelSmoothing: 0.1, gradInto: into })]) {
      into.input.fill(9);
      into.linearWeight.fill(9);
      into.linearBias.fill(9);
      const res = await run();
      expect(res.loss).toBe(plain.loss);
      expect(res.grad!.input.data).toBe(into.input);
      expect(res.grad!.linearWeight.data).toBe(into.linearWeight);
      expect(res.grad!.linearBias!.data).toBe(into.linearBias);
      expect(Array.from(into.input)).toEqual(Array.from(plain.grad!.input.data));
      expect(Array.from(into.linearWeight)).toEqual(Array.from(plain.grad!.linearWeight.data));
      expect(Array.from(into.linearBias)).toEqual(Array.from(plain.grad!.linearBias!.data));
    }
    // One part only: the others are returned as new arrays.
    const only = new Float32Array(C * H);
    const res = linearCrossEntropy(x, w, y, { linearBias: b, grad: true, labelSmoothing: 0.1, gradInto: { linearWeight: only } });
    expect(res.grad!.linearWeight.data).toBe(only);
    expect(Array.from(res.grad!.input.data)).toEqual(Array.from(plain.grad!.input.data));
  });

  it('bfloat16 input: computed in float32 from the bfloat16-rounded values; float32 results', () => {
    const xb = tensor(x.data, x.shape, 'bfloat16');
    const wb = tensor(w.data, w.shape, 'bfloat16');
    const res = linearCrossEntropy(xb, wb, y, { grad: true, linearBias: tensor(b, [C], 'bfloat16') });
    expect(res.grad!.input.dtype).toBe('float32');
    expect(res.grad!.linearWeight.data).toBeInstanceOf(Float32Array);
    const round = (a: Float32Array): Float32Array => {
      const u = new Uint32Array(a.slice().buffer);
      for (let i = 0; i < u.length; i++) u[i] = ((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 0) & 0xffff0000;
      return new Float32Array(u.buffer);
    };
    const ref = linearCrossEntropy(tensor(round(x.data as Float32Array), x.shape), tensor(round(w.data as Float32Array), w.shape), y, { grad: true, linearBias: round(b) });
    expect(res.loss).toBe(ref.loss);
    expect(Array.from(res.grad!.linearWeight.data)).toEqual(Array.from(ref.grad!.linearWeight.data));
  });

  const bad: [string, () => unknown, RegExp, typeof TypeError | typeof RangeError, string][] = [
    ['hidden sizes differ', () => linearCrossEntropy(x, tensor(new Float32Array(C * 4), [C, 4]), y), /linearWeight.*hidden size 4.*input's 5/, RangeError, 'ERR_SMOOTHCE_INVALID_ARG_VALUE'],
    ['bias length not C', () => linearCrossEntropy(x, w, y, { linearBias: new Float32Array(C + 1) }), /linearBias.*\[7\].*\[8\]/, RangeError, 'ERR_SMOOTHCE_INVALID_ARG_VALUE'],
    ['class weights not C', () => linearCrossEntropy(x, w, y, { weight: [1, 2] }), /7 class weights.*for weight.*length 2/, RangeError, 'ERR_SMOOTHCE_INVALID_ARG_VALUE'],
    ['target out of range', () => linearCrossEntropy(x, w, tensor(BigInt64Array.from([0n, 1n, 7n, 0n, 0n, 0n]), [N])), /\[0, 7\).*target\[2\] is 7/, RangeError, 'ERR_SMOOTHCE_INVALID_ARG_VALUE'],
    ['probability targets of the wrong shape', () => linearCrossEntropy(x, w, tensor(new Float32Array(N * (C - 1)), [N, C - 1])), /target.*\[6, 7\].*\[6, 6\]/, RangeError, 'ERR_SMOOTHCE_INVALID_ARG_VALUE'],
    ['gradOutput not the none loss shape', () => linearCrossEntropy(x, w, y, { reduction: 'none', grad: true, gradOutput: tensor(new Float32Array(3), [3]) }), /gradOutput.*\[6\].*\[3\]/, RangeError, 'ERR_SMOOTHCE_INVALID_ARG_VALUE'],
    ['linearWeight of another dtype', () => linearCrossEntropy(x, tensor(new Float64Array(C * H), [C, H]), y), /float32.*for linearWeight.dtype.*float64/, TypeError, 'ERR_SMOOTHCE_INVALID_ARG_TYPE'],
    ['integer input', () => linearCrossEntropy(tensor(new Int32Array(N * H), [N, H]), w, y), /input.dtype/, TypeError, 'ERR_SMOOTHCE_INVALID_ARG_TYPE'],
    ['3-D input', () => linearCrossEntropy(tensor(new Float32Array(N * H), [N, 1, H]), w, y), /input.*\(N, H\) or \(H\)/, RangeError, 'ERR_SMOOTHCE_INVALID_ARG_VALUE'],
    ['target not a tensor', () => linearCrossEntropy(x, w, [1, 2, 3] as never), /target/, TypeError, 'ERR_SMOOTHCE_INVALID_ARG_TYPE'],
    ['gradInto of the wrong type', () => linearCrossEntropy(x, w, y, { grad: true, gradInto: { input: new Float64Array(N * H) } }), /Float32Array.*for gradInto.input.*Float64Array/, TypeError, 'ERR_SMOOTHCE_INVALID_ARG_TYPE'],
    ['gradInto of the wrong length', () => linearCrossEntropy(x, w, y, { grad: true, gradInto: { linearWeight: new Float32Array(3) } }), /35 elements.*for gradInto.linearWeight.*length 3/, RangeError, 'ERR_SMOOTHCE_INVALID_ARG_VALUE'],
    ['gradInto over the input', () => linearCrossEntropy(x, w, y, { grad: true, gradInto: { input: x.data as Float32Array } }), /gradInto.input.*overlaps input/, RangeError, 'ERR_SMOOTHCE_INVALID_ARG_VALUE'],
    ['gradInto without grad', () => linearCrossEntropy(x, w, y, { gradInto: { input: new Float32Array(N * H) } }), /gradInto.*grad/, RangeError, 'ERR_SMOOTHCE_INVALID_ARG_VALUE'],
    ['workingMemory not positive', () => linearCrossEntropy(x, w, y, { workingMemory: 0 }), /workingMemory/, RangeError, 'ERR_SMOOTHCE_INVALID_ARG_VALUE'],
    ['unknown option', () => linearCrossEntropy(x, w, y, { bias: b } as never), /Unknown option 'bias'.*linearBias/, TypeError, 'ERR_SMOOTHCE_UNKNOWN_OPTION'],
  ];
  it.each(bad)('%s: a coded, typed error naming the parameter', (_name, call, message, cls, code) => {
    const before = [x.data, w.data, y.data, b].map((v) => bytesOf(v).slice());
    let err: unknown;
    try {
      call();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(cls);
    expect((err as Error).message).toMatch(message);
    expect((err as { code?: string }).code).toBe(code);
    [x.data, w.data, y.data, b].forEach((v, i) => expect(bytesOf(v).equals(before[i])).toBe(true));
  });

  it('DeviceTensor arguments (on the CPU) go through the same code: the same bits as host tensors', () => {
    const opts = { linearBias: b, grad: true, labelSmoothing: 0.3, reduction: 'sum' } as const;
    const host = linearCrossEntropy(x, w, y, opts);
    const [dx, dw, dy] = [toDevice(x, 'cpu'), toDevice(w, 'cpu'), toDevice(y, 'cpu')];
    try {
      const dev = linearCrossEntropy(dx, dw, dy, opts);
      expect(dev.loss).toBe(host.loss);
      expect(bytesOf(dev.grad!.linearWeight.data).equals(bytesOf(host.grad!.linearWeight.data))).toBe(true);
      expect(bytesOf(dev.grad!.input.data).equals(bytesOf(host.grad!.input.data))).toBe(true);
    } finally {
      for (const d of [dx, dw, dy]) d.dispose();
    }
  });

  // Built and run only where a GPU is lent (like the other CUDA tests): the same call on CUDA.
  it.skipIf(!cudaAvailable())('CUDA: host tensors with device: "cuda", and DeviceTensors there, agree with the CPU', () => {
    const opts = { linearBias: b, grad: true, labelSmoothing: 0.1, weight: [1, 2, 1, 1, 0.5, 1, 1] } as const;
    const cpu = linearCrossEntropy(x, w, y, opts);
    const near = (a: ArrayLike<number>, e: ArrayLike<number>): void => {
      for (let i = 0; i < e.length; i++) expect(Math.abs(a[i] - e[i])).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(e[i]));
    };
    const viaOption = linearCrossEntropy(x, w, y, { ...opts, device: 'cuda' });
    near([viaOption.loss], [cpu.loss]);
    near(viaOption.grad!.linearWeight.data, cpu.grad!.linearWeight.data);
    near(viaOption.grad!.input.data, cpu.grad!.input.data);
    near(viaOption.grad!.linearBias!.data, cpu.grad!.linearBias!.data);
    const [dx, dw, dy] = [toDevice(x, 'cuda'), toDevice(w, 'cuda'), toDevice(y, 'cuda')];
    try {
      const into = { linearWeight: new Float32Array(C * H) };
      const dev = linearCrossEntropy(dx, dw, dy, { ...opts, gradInto: into });
      near([dev.loss], [cpu.loss]);
      near(into.linearWeight, cpu.grad!.linearWeight.data);
    } finally {
      for (const d of [dx, dw, dy]) d.dispose();
    }
  });

  it('async bad input rejects with the same coded error', async () => {
    await expect(linearCrossEntropyAsync(x, tensor(new Float32Array(C * 4), [C, 4]), y)).rejects.toMatchObject({ code: 'ERR_SMOOTHCE_INVALID_ARG_VALUE' });
  });
});
