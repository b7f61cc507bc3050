/**
 * Every async entry point of the public API gives the result of its sync twin on an untouched
 * copy of the inputs when the caller, right after the call returns its promise,
 *   (a) overwrites its input buffers, or
 *   (b) transfers them away (structuredClone with transfer: the caller's arrays are detached).
 * The entry points are enumerated from the package's exports: a new async function or method
 * (one whose name ends in Async, or a promise-returning method listed in PROMISE_METHODS) must
 * be added to CASES, or the first test fails.
 */
import { describe, expect, it } from 'vitest';
import * as smoothce from '../lib/index';
import { Batcher, calibration, crossEntropy, crossEntropyAsync, distributed, LossAccumulator, tensor, type Tensor } from '../lib/index';
import { freePort } from './helpers/free-port';
import { rng } from './helpers/rng';

type Mutate = 'overwrite' | 'transfer';

/** What the caller does to its arrays right after the call. */
function spoil(arrays: ArrayBufferView[], how: Mutate): void {
  for (const a of arrays) {
    if (how === 'transfer') {
      if (a.buffer.byteLength > 0) structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });
    } else if (a instanceof BigInt64Array) {
      a.fill(0n);
    } else {
      (a as Float64Array).fill(a instanceof Uint8Array || a instanceof Int32Array ? 0 : 7.25);
    }
  }
}

function logits(n: number, c: number, seed: number, dtype: 'float32' | 'float64' = 'float64'): Tensor {
  const r = rng(seed);
  const data = dtype === 'float64' ? new Float64Array(n * c) : new Float32Array(n * c);
  for (let i = 0; i < data.length; i++) data[i] = (r() - 0.5) * 6;
  return tensor(data, [n, c]);
}

function labels(n: number, c: number, seed: number): Tensor {
  const r = rng(seed);
  return tensor(BigInt64Array.from({ length: n }, () => BigInt(Math.floor(r() * c))), [n], 'int64');
}

function probs(n: number, c: number, seed: number): Tensor {
  const z = logits(n, c, seed).data as Float64Array;
  const p = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < c; j++) s += p[i * c + j] = Math.exp(z[i * c + j]);
    for (let j = 0; j < c; j++) p[i * c + j] /= s;
  }
  return tensor(p, [n, c]);
}

function copy<T extends Tensor>(t: T): T {
  return { ...t, data: t.data.slice(), shape: t.shape.slice() };
}

/** A plain, comparable form of a result (typed arrays as arrays; NaN kept). */
function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (ArrayBuffer.isView(x) ? Array.from(x as Float64Array, (e) => (typeof e === 'bigint' ? String(e) : Number.isNaN(e) ? 'NaN' : e)) : typeof x === 'number' && Number.isNaN(x) ? 'NaN' : x)));
}

function scorePair(x1: Tensor, y1: Tensor, x2: Tensor, y2: Tensor): Promise<unknown> {
  const b = new Batcher({ maxDelayMs: 5, grad: true, labelSmoothing: 0.05 });
  return Promise.all([b.score(x1, y1), b.score(x2, y2)]).finally(() => b.close());
}

interface Case {
  /** The entry point, as it is found among the exports ('crossEntropyAsync', 'calibration.Accumulator#updateAsync', ...). */
  entry: string;
  label: string;
  /** Calls the async form on fresh inputs: returns the promise and the arrays the caller then spoils. */
  start: () => { promise: Promise<unknown>; arrays: ArrayBufferView[] };
  /** The sync result on an untouched copy of the same inputs. */
  expected: () => unknown | Promise<unknown>;
}

const N = 37;
const C = 5;
const x = (): Tensor => logits(N, C, 11);
const y = (): Tensor => labels(N, C, 12);
const w = (): Float32Array => Float32Array.from([1, 0.5, 2, 1.5, 0.25]);

const CASES: Case[] = [
  ...(['mean', 'none'] as const).map(
    (reduction): Case => ({
      entry: 'linearCrossEntropyAsync',
      label: `${reduction}, grad, linearBias, class weights and a gradOutput tensor`,
      start: () => {
        const [input, lw, target] = [logits(N, 4, 11), logits(C, 4, 13), y()];
        const [bias, weight] = [Float64Array.from([0.1, -0.2, 0.3, 0, 0.5]), w()];
        const gradOutput = tensor(Float64Array.from({ length: reduction === 'none' ? N : 1 }, (_, i) => 1 + i / 10), reduction === 'none' ? [N] : []);
        const promise = smoothce.linearCrossEntropyAsync(input, lw, target, { reduction, grad: true, labelSmoothing: 0.1, linearBias: bias, weight, gradOutput });
        return { promise, arrays: [input.data, lw.data, target.data, bias, weight, gradOutput.data] };
      },
      expected: () =>
        smoothce.linearCrossEntropy(logits(N, 4, 11), logits(C, 4, 13), y(), {
          reduction,
          grad: true,
          labelSmoothing: 0.1,
          linearBias: Float64Array.from([0.1, -0.2, 0.3, 0, 0.5]),
          weight: w(),
          gradOutput: tensor(Float64Array.from({ length: reduction === 'none' ? N : 1 }, (_, i) => 1 + i / 10), reduction === 'none' ? [N] : []),
        }),
    }),
  ),
  ...(
    [
      ['mean', {}],
      ['mean, grad, weight as a Float32Array', { grad: true, weight: true }],
      ['chunked mean (batchSize 8)', { batchSize: 8 }],
      ['chunked mean with grad and a Float32Array weight (batchSize 8)', { batchSize: 8, grad: true, weight: true }],
      ['chunked none (batchSize 5)', { batchSize: 5, reduction: 'none' }],
      ['chunked sum, float32 input (batchSize 10)', { batchSize: 10, reduction: 'sum', f32: true }],
    ] as const
  ).map(
    ([label, o]): Case => ({
      entry: 'crossEntropyAsync',
      label,
      start: () => {
        const { f32, ...opts } = { f32: false, ...o } as Record<string, unknown>;
        const input = f32 ? logits(N, C, 11, 'float32') : x();
        const target = y();
        const weight = opts.weight ? w() : undefined;
        const promise = crossEntropyAsync(input, target, { ...opts, weight } as never);
        return { promise, arrays: [input.data, target.data, ...(weight ? [weight] : [])] };
      },
      expected: () => {
        const { f32, ...opts } = { f32: false, ...o } as Record<string, unknown>;
        return crossEntropy(f32 ? logits(N, C, 11, 'float32') : x(), y(), { ...opts, weight: opts.weight ? w() : undefined } as never);
      },
    }),
  ),
  ...([undefined, 8] as const).map(
    (batchSize): Case => ({
      entry: 'LossAccumulator#updateAsync',
      label: batchSize ? `chunked (batchSize ${batchSize}), mean` : 'mean',
      start: () => {
        const input = x();
        const target = y();
        const acc = new LossAccumulator({ labelSmoothing: 0.1, batchSize });
        return { promise: acc.updateAsync(input, target).then((a) => a.result()), arrays: [input.data, target.data] };
      },
      expected: () => new LossAccumulator({ labelSmoothing: 0.1, batchSize }).update(x(), y()).result(),
    }),
  ),
  {
    // No sync twin: the same Batcher calls on untouched inputs (docs/serving.md bounds their
    // difference from lone crossEntropy calls; test/batcher.test.ts checks that).
    entry: 'Batcher#score',
    label: 'two coalesced requests, grad',
    start: () => {
      const [x1, y1, x2, y2] = [logits(3, C, 21), labels(3, C, 22), logits(4, C, 23), labels(4, C, 24)];
      return { promise: scorePair(x1, y1, x2, y2), arrays: [x1.data, y1.data, x2.data, y2.data] };
    },
    expected: () => scorePair(logits(3, C, 21), labels(3, C, 22), logits(4, C, 23), labels(4, C, 24)),
  },
  {
    entry: 'calibration.reportAsync',
    label: 'probabilities',
    start: () => {
      const p = probs(N, C, 31);
      const l = y();
      return { promise: calibration.reportAsync(p, l, { bins: 10 }), arrays: [p.data, l.data] };
    },
    expected: () => calibration.report(probs(N, C, 31), y(), { bins: 10 }),
  },
  {
    entry: 'calibration.fitTemperatureAsync',
    label: 'logits',
    start: () => {
      const z = x();
      const l = y();
      return { promise: calibration.fitTemperatureAsync(z, l, { bins: 10 }), arrays: [z.data, l.data] };
    },
    expected: () => calibration.fitTemperature(x(), y(), { bins: 10 }),
  },
  {
    entry: 'calibration.Accumulator#updateAsync',
    label: 'two updates in flight',
    start: () => {
      const [z1, l1, z2, l2] = [logits(N, C, 41), labels(N, C, 42), logits(9, C, 43), labels(9, C, 44)];
      const acc = new calibration.Accumulator({ from: 'logits', bins: 10 });
      const p = Promise.all([acc.updateAsync(z1, l1), acc.updateAsync(z2, l2)]).then(() => acc.report());
      return { promise: p, arrays: [z1.data, l1.data, z2.data, l2.data] };
    },
    expected: () =>
      new calibration.Accumulator({ from: 'logits', bins: 10 })
        .update(logits(N, C, 41), labels(N, C, 42))
        .update(logits(9, C, 43), labels(9, C, 44))
        .report(),
  },
  ...calibration.RECALIBRATION_METHODS.map(
    (method): Case => ({
      entry: 'calibration.fitCalibratorAsync',
      label: method,
      start: () => {
        const [s, l] = [probs(N, C, 51), labels(N, C, 52)];
        return { promise: calibration.fitCalibratorAsync(s, l, { method }).then((c) => c.toJSON()), arrays: [s.data, l.data] };
      },
      expected: () => calibration.fitCalibrator(probs(N, C, 51), labels(N, C, 52), { method }).toJSON(),
    }),
  ),
  {
    entry: 'calibration.Calibrator#applyAsync',
    label: 'vector scaling',
    start: () => {
      const s = probs(N, C, 61);
      const cal = calibration.fitCalibrator(probs(N, C, 51), labels(N, C, 52), { method: 'vector' });
      return { promise: cal.applyAsync(s), arrays: [s.data] };
    },
    expected: () => calibration.fitCalibrator(probs(N, C, 51), labels(N, C, 52), { method: 'vector' }).apply(probs(N, C, 61)),
  },
];

/** Promise-returning public methods whose names do not end in Async. */
const PROMISE_METHODS = [
  'Batcher#score',
  'distributed.ProcessGroup#allReduceTensor',
  'distributed.ProcessGroup#allGather',
  'distributed.ProcessGroup#allReduce',
  'distributed.ProcessGroup#barrier',
];
/** Covered by the last test (a one-rank group). */
const DISTRIBUTED = ['distributed.ProcessGroup#allReduceTensor', 'distributed.ProcessGroup#allGather'];
/**
 * Async entry points that take no caller buffers to spoil, and why (the distributed
 * collectives are covered by their own case below, on a one-rank group).
 */
const NO_BUFFERS: Record<string, string> = {
  'calibration.Monitor#fitTemperatureAsync': 'takes a window name; it fits on rows the Monitor copied when they were observed',
  'distributed.ProcessGroup#allReduce': "takes an accumulator, whose state it serialises (toJSON) before it returns its promise",
  'distributed.ProcessGroup#barrier': 'takes no data',
  'calibration.Monitor#fitCalibratorAsync': 'takes a window name; it fits on rows the Monitor copied when they were observed',
  'calibration.Monitor#saveAsync': "takes a path; serialises the Monitor's own state (toJSON) before it returns its promise",
};

/** Names of the async entry points among the exports (functions, and methods of exported classes). */
function asyncEntryPoints(): string[] {
  const found = new Set<string>();
  const visit = (value: unknown, name: string, depth: number): void => {
    if (typeof value === 'function') {
      if (/Async$/.test(name.split('.').pop()!)) found.add(name);
      const proto = (value as { prototype?: object }).prototype;
      if (proto && /^[A-Z]/.test(name.split('.').pop()!)) {
        for (const m of Object.getOwnPropertyNames(proto)) {
          const key = `${name}#${m}`;
          if (/Async$/.test(m) || PROMISE_METHODS.includes(key)) found.add(key);
        }
      }
    } else if (value !== null && typeof value === 'object' && depth < 1) {
      for (const [k, v] of Object.entries(value)) visit(v, `${name}.${k}`, depth + 1);
    }
  };
  for (const [k, v] of Object.entries(smoothce)) visit(v, k, 0);
  return [...found].sort();
}

describe('async snapshots: every async entry point is immune to its caller changing or transferring its buffers', () => {
  it('the cases cover every async entry point of the public API', () => {
    const covered = new Set([...CASES.map((c) => c.entry), ...DISTRIBUTED, ...Object.keys(NO_BUFFERS)]);
    const found = asyncEntryPoints();
    expect(found).toContain('crossEntropyAsync');
    expect(found).toContain('Batcher#score');
    expect(found.filter((e) => !covered.has(e))).toEqual([]);
  });

  for (const how of ['overwrite', 'transfer'] as const) {
    describe(how, () => {
      for (const c of CASES) {
        it(`${c.entry}: ${c.label}`, async () => {
          const { promise, arrays } = c.start();
          spoil(arrays, how);
          const got = await promise;
          expect(plain(got)).toEqual(plain(await c.expected()));
        });
      }
    });
  }

  it('distributed allReduceTensor and allGather (a one-rank group)', async () => {
    const g = await distributed.init({ rank: 0, worldSize: 1, store: `tcp://127.0.0.1:${await freePort()}`, timeoutMs: 10_000 });
    try {
      for (const how of ['overwrite', 'transfer'] as const) {
        const a = tensor(Float64Array.from([1.5, -2, 3]), [3]);
        const b = tensor(Float32Array.from([4, 5]), [2]);
        const reduced = g.allReduceTensor(a, 'sum');
        const gathered = g.allGather(b);
        spoil([a.data, b.data], how);
        expect(Array.from((await reduced).data as Float64Array)).toEqual([1.5, -2, 3]);
        expect((await gathered).map((t) => Array.from(t.data as Float32Array))).toEqual([[4, 5]]);
      }
    } finally {
      g.destroy();
    }
  });
});
