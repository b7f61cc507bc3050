/**
 * A sweep of the public API with hostile arguments: wrong types, NaN, negative, huge,
 * detached buffers, Proxies whose traps throw, getters that throw, frozen objects. Each call
 * may return or throw (or reject); what it throws must be an Error with one of the library's
 * codes, a TypeError when the code says a wrong type (ERR_SMOOTHCE_INVALID_ARG_TYPE) and a
 * RangeError when it says a wrong value (ERR_SMOOTHCE_INVALID_ARG_VALUE), except the very error
 * the caller's own getter or trap threw, which passes through untouched. The process survives
 * every call (a crash fails this file). The Monitor's restore is swept by its own tests
 * (test/monitor.test.ts).
 */
import { describe, expect, it } from 'vitest';
import {
  Batcher,
  calibration,
  crossEntropy,
  crossEntropyAsync,
  distributed,
  ERROR_CODES,
  formatNpy,
  linearCrossEntropy,
  linearCrossEntropyAsync,
  LossAccumulator,
  parseCaseFile,
  parseNpy,
  setNumThreads,
  tensor,
  toDevice,
} from '../lib/index';

const CODES = new Set<string>(Object.values(ERROR_CODES));

/** What a hostile getter or trap throws: it must reach the caller unchanged. */
class CallerError extends Error {}

function detached(): Float64Array {
  const a = new Float64Array(6);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

function hostileProxy(): object {
  const trap = (): never => {
    throw new CallerError('trap');
  };
  return new Proxy({}, { get: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, getPrototypeOf: trap });
}

function throwingGetter(key: string): object {
  return Object.defineProperty({}, key, {
    enumerable: true,
    get() {
      throw new CallerError(`getter ${key}`);
    },
  });
}

/** Hostile values, each with a name for the test title. */
const POOL: [string, () => unknown][] = [
  ['undefined', () => undefined],
  ['null', () => null],
  ['NaN', () => NaN],
  ['-1', () => -1],
  ['-0.5', () => -0.5],
  ['Infinity', () => Infinity],
  ['1e308', () => 1e308],
  ['2^53', () => 2 ** 53],
  ['a string', () => '12'],
  ['a bigint', () => 3n],
  ['a symbol', () => Symbol('s')],
  ['a function', () => () => 1],
  ['an empty object', () => ({})],
  ['an empty array', () => []],
  ['a frozen object', () => Object.freeze({ data: new Float64Array(6), shape: [2, 3], dtype: 'float64' })],
  ['a null-prototype object', () => Object.create(null)],
  ['a detached Float64Array', () => detached()],
  ['a tensor on a detached buffer', () => ({ data: detached(), shape: [2, 3], dtype: 'float64' })],
  ['a tensor with a NaN dimension', () => ({ data: new Float64Array(6), shape: [NaN, 3], dtype: 'float64' })],
  ['a tensor with a negative dimension', () => ({ data: new Float64Array(6), shape: [-2, -3], dtype: 'float64' })],
  ['a tensor with huge dimensions', () => ({ data: new Float64Array(6), shape: [2 ** 31, 2 ** 31], dtype: 'float64' })],
  ['a tensor whose dtype lies', () => ({ data: new Float64Array(6), shape: [2, 3], dtype: 'int64' })],
  ['a Proxy whose traps throw', hostileProxy],
  ['an object whose data getter throws', () => throwingGetter('data')],
  ['options whose bins getter throws', () => throwingGetter('bins')],
  ['options with huge bins', () => ({ bins: 2 ** 40 })],
  ['options with NaN labelSmoothing', () => ({ labelSmoothing: NaN })],
  ['options with a negative batchSize', () => ({ batchSize: -3 })],
  ['options with a string reduction', () => ({ reduction: 5 })],
];

const x = () => tensor(Float64Array.from([1, 2, 3, -1, 0, 0.5]), [2, 3]);
const y = () => tensor([0, 2], [2], 'int64');
/** A (C, H) = (3, 3) linear weight for linearCrossEntropy with x() as (N, H) = (2, 3) hidden states. */
const wl = () => tensor(Float64Array.from([0.5, -1, 0, 1, 0.25, -0.5, 0, 0.75, 1]), [3, 3]);
const p = () => tensor(Float64Array.from([0.2, 0.3, 0.5, 0.6, 0.3, 0.1]), [2, 3]);

/** Public entry points with valid arguments; each argument position is replaced in turn. */
const ENTRIES: [string, (...args: unknown[]) => unknown, () => unknown[]][] = [
  ['tensor', (...a) => tensor(...(a as Parameters<typeof tensor>)), () => [new Float64Array(6), [2, 3], 'float64']],
  ['crossEntropy', (...a) => crossEntropy(...(a as [never, never, never])), () => [x(), y(), { labelSmoothing: 0.1 }]],
  ['crossEntropyAsync', (...a) => crossEntropyAsync(...(a as [never, never, never])), () => [x(), y(), { batchSize: 1 }]],
  ['linearCrossEntropy', (...a) => linearCrossEntropy(...(a as [never, never, never, never])), () => [x(), wl(), y(), { labelSmoothing: 0.1, grad: true, linearBias: Float64Array.from([0.1, 0.2, 0.3]) }]],
  ['linearCrossEntropyAsync', (...a) => linearCrossEntropyAsync(...(a as [never, never, never, never])), () => [x(), wl(), y(), { grad: true, weight: [1, 2, 3] }]],
  ['new LossAccumulator', (o) => new LossAccumulator(o as never), () => [{ labelSmoothing: 0.1 }]],
  ['LossAccumulator#update', (a, b) => new LossAccumulator().update(a as never, b as never), () => [x(), y()]],
  ['LossAccumulator#updateAsync', (a, b) => new LossAccumulator({ batchSize: 1 }).updateAsync(a as never, b as never), () => [x(), y()]],
  ['LossAccumulator.fromJSON', (j) => LossAccumulator.fromJSON(j as never), () => [new LossAccumulator().update(x(), y()).toJSON()]],
  ['LossAccumulator#merge', (o) => new LossAccumulator().merge(o as never), () => [new LossAccumulator()]],
  ['new Batcher', (o) => new Batcher(o as never), () => [{ maxDelayMs: 1 }]],
  [
    'Batcher#score',
    async (a, b) => {
      const batcher = new Batcher({ maxDelayMs: 1 });
      try {
        return await batcher.score(a as never, b as never);
      } finally {
        await batcher.close();
      }
    },
    () => [x(), y()],
  ],
  ['calibration.ece', (a, b, o) => calibration.ece(a as never, b as never, o as never), () => [p(), y(), { bins: 5 }]],
  ['calibration.report', (a, b, o) => calibration.report(a as never, b as never, o as never), () => [p(), y(), { bins: 5 }]],
  ['calibration.reportAsync', (a, b, o) => calibration.reportAsync(a as never, b as never, o as never), () => [p(), y(), { bins: 5 }]],
  ['calibration.fitTemperature', (a, b, o) => calibration.fitTemperature(a as never, b as never, o as never), () => [x(), y(), { bins: 5 }]],
  ['calibration.fitTemperatureAsync', (a, b, o) => calibration.fitTemperatureAsync(a as never, b as never, o as never), () => [x(), y(), { bins: 5 }]],
  ['new calibration.Accumulator', (o) => new calibration.Accumulator(o as never), () => [{ bins: 5 }]],
  ['calibration.Accumulator#update', (a, b) => new calibration.Accumulator().update(a as never, b as never), () => [p(), y()]],
  ['calibration.Accumulator#updateAsync', (a, b) => new calibration.Accumulator().updateAsync(a as never, b as never), () => [p(), y()]],
  ['calibration.Accumulator.fromJSON', (j) => calibration.Accumulator.fromJSON(j), () => [new calibration.Accumulator().update(p(), y()).toJSON()]],
  ['calibration.reliabilityDiagram', (r, o) => calibration.reliabilityDiagram(r as never, o as never), () => [calibration.report(p(), y(), { bins: 5 }), {}]],
  ['calibration.fitCalibrator', (a, b, o) => calibration.fitCalibrator(a, b, o as never), () => [p(), y(), { method: 'vector' }]],
  ['calibration.fitCalibratorAsync', (a, b, o) => calibration.fitCalibratorAsync(a, b, o as never), () => [p(), y(), { method: 'isotonic' }]],
  ['calibration.Calibrator.fromJSON', (j) => calibration.Calibrator.fromJSON(j as never), () => [calibration.fitCalibrator(p(), y(), { method: 'histogram', bins: 2 }).toJSON()]],
  ['toDevice', (t, d) => toDevice(t as never, d as never).dispose(), () => [x(), 'cpu']],
  ['setNumThreads', (n) => setNumThreads(n as never), () => [1]],
  ['distributed.parseStore', (s) => distributed.parseStore(s), () => ['tcp://127.0.0.1:29500']],
  // worldSize 2 and a store nobody serves: only option validation is reached with a bad option
  // (the valid call is not made: it would wait for a peer).
  ['distributed.init (options)', (o) => distributed.init(o as never), () => [null]],
  ['parseNpy', (b) => parseNpy(b as never), () => [formatNpy(new Float64Array(6), [2, 3])]],
  ['formatNpy', (a, s) => formatNpy(a as never, s as never), () => [new Float64Array(6), [2, 3]]],
  ['parseCaseFile', (t) => parseCaseFile(t as never), () => ['{"version": 1, "cases": []}']],
];

type Outcome = { ok: true } | { ok: false; err: unknown };

async function outcome(fn: () => unknown): Promise<Outcome> {
  try {
    await fn();
    return { ok: true };
  } catch (err) {
    return { ok: false, err };
  }
}

function checkError(err: unknown, where: string): void {
  if (err instanceof CallerError) return; // the caller's own getter or trap: passed through
  expect(err, where).toBeInstanceOf(Error);
  const code = (err as { code?: unknown }).code;
  expect(typeof code === 'string' && CODES.has(code), `${where}: ${String(err)} has code ${String(code)}`).toBe(true);
  if (code === ERROR_CODES.INVALID_ARG_TYPE) expect(err, `${where}: ${String(err)}`).toBeInstanceOf(TypeError);
  if (code === ERROR_CODES.INVALID_ARG_VALUE) expect(err, `${where}: ${String(err)}`).toBeInstanceOf(RangeError);
}

describe('hostile-input sweep of the public API: every error is coded and of the right class; the process survives', () => {
  for (const [name, fn, valid] of ENTRIES) {
    it(name, async () => {
      const arity = valid().length;
      let errors = 0;
      for (let pos = 0; pos < arity; pos++) {
        for (const [label, make] of POOL) {
          if (name.startsWith('distributed.init') && label === 'null') continue; // the valid placeholder
          const args = valid();
          args[pos] = make();
          const r = await outcome(() => fn(...args));
          if (!r.ok) {
            errors++;
            checkError(r.err, `${name}(argument ${pos} = ${label})`);
          }
        }
      }
      // Most of these arguments are refused.
      expect(errors).toBeGreaterThan(0);
    }, 60_000);
  }

  it('the classes follow the kind of mistake: a wrong type is a TypeError, a wrong value a RangeError', async () => {
    const cases: [() => unknown, typeof TypeError | typeof RangeError][] = [
      [() => crossEntropy(x(), y(), { labelSmoothing: '0.1' as never }), TypeError],
      [() => crossEntropy(x(), y(), { labelSmoothing: NaN }), RangeError],
      [() => crossEntropy(x(), y(), { batchSize: -1 } as never), RangeError],
      // A detached buffer has no elements: the shape disagrees with it (before: an uncoded TypeError from a later chunk).
      [() => crossEntropyAsync({ data: detached(), shape: [2, 3], dtype: 'float64' }, y(), { batchSize: 1 }), RangeError],
      [() => new Batcher({ maxDelayMs: 3e9 }), RangeError],
      [() => new Batcher({ maxQueueBytes: 'big' as never }), TypeError],
      [() => calibration.ece(p(), y(), { bins: -2 }), RangeError],
      [() => calibration.ece(p(), y(), { bins: '5' as never }), TypeError],
      [() => setNumThreads(NaN), RangeError],
      [() => setNumThreads('2' as never), TypeError],
      [() => tensor(new Float64Array(6), [2, 2 ** 60]), RangeError],
      [() => distributed.init({ rank: 0, worldSize: 2, store: 'tcp://127.0.0.1:1', timeoutMs: -5 }), RangeError],
    ];
    for (const [call, cls] of cases) {
      const r = await outcome(call);
      expect(r.ok, String(call)).toBe(false);
      const err = (r as { err: unknown }).err;
      expect(err, `${String(call)}: ${String(err)}`).toBeInstanceOf(cls);
      checkError(err, String(call));
    }
  });
});
