/**
 * BAD CALLS: every parameter of crossEntropy / crossEntropyAsync, wrong in every way the
 * contract names. Each case asserts the error class and a message that names the
 * parameter and what was received, for the sync call (throws) and the async call
 * (rejects, never throws synchronously), and that the caller's typed arrays are unchanged.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { crossEntropy, crossEntropyAsync, cudaAvailable, tensor, type Tensor } from '../lib/index';
import { assertUnchanged, snapshotArrays } from './helpers/contract-util';
import { thrown } from './helpers/thrown';

type ErrorClass = typeof Error | typeof TypeError | typeof RangeError;

interface BadCall {
  name: string;
  /** Fresh arguments for each call: [input, target, options]. */
  args: () => [unknown, unknown, unknown?];
  error: ErrorClass;
  message: RegExp;
}

// Fixtures: (2, 3) float32 logits with class-index targets, (2, 3, 4) float64 k-dim logits.
const x23 = (): Tensor => tensor(new Float32Array([0.5, -1, 2, 0.25, 3, -0.5]), [2, 3]);
const t2 = (): Tensor => tensor(new BigInt64Array([0n, 2n]), [2]);
const p23 = (): Tensor => tensor(new Float32Array([0.2, 0.3, 0.5, 1, 0, 0]), [2, 3]);
const x234 = (): Tensor => tensor(Float64Array.from({ length: 24 }, (_, i) => Math.sin(i)), [2, 3, 4]);
const t24 = (): Tensor => tensor(new BigInt64Array([0n, 1n, 2n, 0n, 1n, 2n, 0n, 1n]), [2, 4]);

function checkError(err: unknown, c: BadCall, how: string): void {
  expect(err, `${c.name} (${how}) did not fail`).toBeInstanceOf(Error);
  const e = err as Error;
  if (c.error !== Error) {
    // Exact class: a RangeError where a TypeError is due (or the reverse) fails.
    expect(e.constructor, `${c.name} (${how}): ${e.name}: ${e.message}`).toBe(c.error);
  }
  expect(e.message, `${c.name} (${how})`).toMatch(c.message);
}

async function expectBad(c: BadCall): Promise<void> {
  // Sync: throws.
  let args = c.args();
  let snaps = snapshotArrays(...args);
  checkError(thrown(() => crossEntropy(...(args as Parameters<typeof crossEntropy>))), c, 'crossEntropy');
  assertUnchanged(snaps);

  // Async: returns a promise that rejects; nothing is thrown synchronously.
  args = c.args();
  snaps = snapshotArrays(...args);
  let promise: Promise<unknown> | undefined;
  const syncThrow = thrown(() => {
    promise = crossEntropyAsync(...(args as Parameters<typeof crossEntropyAsync>));
  });
  expect(syncThrow, `${c.name}: crossEntropyAsync threw synchronously`).toBeUndefined();
  expect(promise).toBeInstanceOf(Promise);
  const rejection = await promise!.then(
    () => undefined,
    (err: unknown) => err,
  );
  checkError(rejection, c, 'crossEntropyAsync');
  assertUnchanged(snaps);
}

function block(parameter: string, cases: BadCall[]): void {
  describe(`BAD CALL: ${parameter}`, () => {
    for (const c of cases) {
      it(c.name, async () => {
        await expectBad(c);
      });
    }
  });
}

// ---------------------------------------------------------------------------------------
block('input', [
  { name: 'undefined', args: () => [undefined, t2()], error: TypeError, message: /for input but received undefined/ },
  { name: 'null', args: () => [null, t2()], error: TypeError, message: /for input but received null/ },
  { name: 'a bare typed array', args: () => [new Float32Array(6), t2()], error: TypeError, message: /for input but received a Float32Array of length 6/ },
  { name: 'a plain array', args: () => [[1, 2, 3], t2()], error: TypeError, message: /for input but received an array of length 3/ },
  { name: 'a number', args: () => [3, t2()], error: TypeError, message: /for input but received 3 of type number/ },
  {
    name: '0-d tensor',
    args: () => [tensor(new Float32Array([1]), []), t2()],
    error: RangeError,
    message: /input.*0-d/,
  },
]);

block('input.data', [
  {
    name: 'missing',
    args: () => [{ shape: [2, 3], dtype: 'float32' }, t2()],
    error: TypeError,
    message: /input\.data but received undefined/,
  },
  {
    name: 'a plain array',
    args: () => [{ data: [1, 2, 3, 4, 5, 6], shape: [2, 3], dtype: 'float32' }, t2()],
    error: TypeError,
    message: /input\.data but received an array of length 6/,
  },
  {
    name: 'a Float64Array labelled float32',
    args: () => [{ data: new Float64Array(6), shape: [2, 3], dtype: 'float32' }, t2()],
    error: TypeError,
    message: /Float32Array \(the array type of dtype float32\) for input\.data but received a Float64Array of length 6/,
  },
  {
    name: 'a DataView',
    args: () => [{ data: new DataView(new ArrayBuffer(24)), shape: [2, 3], dtype: 'float32' }, t2()],
    error: TypeError,
    message: /input\.data but received a DataView/,
  },
  {
    name: 'a Uint8ClampedArray',
    args: () => [{ data: new Uint8ClampedArray(6), shape: [2, 3], dtype: 'float32' }, t2()],
    error: TypeError,
    message: /input\.data but received a Uint8ClampedArray/,
  },
  {
    name: 'fewer elements than the shape needs',
    args: () => [{ data: new Float32Array(5), shape: [2, 3], dtype: 'float32' }, t2()],
    error: RangeError,
    message: /input: shape \[2, 3\] needs 6 elements but data has 5/,
  },
]);

block('input.shape', [
  {
    name: 'a string',
    args: () => [{ data: new Float32Array(6), shape: '2,3', dtype: 'float32' }, t2()],
    error: TypeError,
    message: /input\.shape but received "2,3" of type string/,
  },
  {
    name: 'missing',
    args: () => [{ data: new Float32Array(6), dtype: 'float32' }, t2()],
    error: TypeError,
    message: /input\.shape but received undefined/,
  },
  {
    name: 'a negative dimension',
    args: () => [{ data: new Float32Array(6), shape: [2, -3], dtype: 'float32' }, t2()],
    error: RangeError,
    message: /non-negative integer for input\.shape\[1\] but received -3 of type number/,
  },
  {
    name: 'a fractional dimension',
    args: () => [{ data: new Float32Array(6), shape: [2, 1.5], dtype: 'float32' }, t2()],
    error: RangeError,
    message: /input\.shape\[1\] but received 1\.5 of type number/,
  },
  {
    name: 'a NaN dimension',
    args: () => [{ data: new Float32Array(6), shape: [NaN, 3], dtype: 'float32' }, t2()],
    error: RangeError,
    message: /input\.shape\[0\] but received NaN of type number/,
  },
  {
    name: 'a string dimension',
    args: () => [{ data: new Float32Array(6), shape: ['2', 3], dtype: 'float32' }, t2()],
    error: TypeError,
    message: /input\.shape\[0\] but received "2" of type string/,
  },
  {
    name: 'a product different from data.length',
    args: () => [{ data: new Float32Array(6), shape: [3, 3], dtype: 'float32' }, t2()],
    error: RangeError,
    message: /input: shape \[3, 3\] needs 9 elements but data has 6/,
  },
  {
    name: 'a product past 2^53',
    args: () => [{ data: new Float32Array(6), shape: [2 ** 30, 2 ** 30, 2 ** 30], dtype: 'float32' }, t2()],
    error: RangeError,
    message: /input\.shape but received an array of length 3/,
  },
]);

block('input.dtype', [
  {
    name: 'an unknown dtype',
    args: () => [{ data: new Float32Array(6), shape: [2, 3], dtype: 'float' }, t2()],
    error: TypeError,
    message: /input\.dtype but received "float" of type string/,
  },
  {
    name: 'missing',
    args: () => [{ data: new Float32Array(6), shape: [2, 3] }, t2()],
    error: TypeError,
    message: /input\.dtype but received undefined/,
  },
  {
    name: 'an integer dtype',
    args: () => [tensor(new BigInt64Array(6), [2, 3]), t2()],
    error: TypeError,
    message: /floating-point dtype .* for input\.dtype but received "int64" of type string/,
  },
]);

block('target', [
  { name: 'undefined', args: () => [x23(), undefined], error: TypeError, message: /for target but received undefined/ },
  {
    name: 'a bare BigInt64Array',
    args: () => [x23(), new BigInt64Array([0n, 1n])],
    error: TypeError,
    message: /for target but received a BigInt64Array of length 2/,
  },
  {
    name: 'class indices of the wrong length',
    args: () => [x23(), tensor(new BigInt64Array([0n, 1n, 2n]), [3])],
    error: RangeError,
    message: /target: expected shape \[2\] for input of shape \[2, 3\], received \[3\]/,
  },
  {
    name: 'k-dim class indices of the wrong shape',
    args: () => [x234(), tensor(new BigInt64Array(6), [2, 3])],
    error: RangeError,
    message: /target: expected shape \[2, 4\] for input of shape \[2, 3, 4\], received \[2, 3\]/,
  },
  {
    name: 'a float target of the same rank but another shape',
    args: () => [x23(), tensor(new Float32Array(4), [2, 2])],
    error: RangeError,
    message: /target: probability targets must have the input's shape \[2, 3\], received \[2, 2\]/,
  },
  {
    name: 'a float target shaped like class indices',
    args: () => [x23(), tensor(new Float64Array([0, 2]), [2])],
    error: TypeError,
    message: /probabilities of shape \[2, 3\], for target but received a float64 tensor of shape \[2\]$/,
  },
  {
    name: "an int target with the input's shape",
    args: () => [x23(), tensor(new BigInt64Array(6), [2, 3])],
    error: TypeError,
    message: /float probabilities of shape \[2, 3\] for target but received an int64 tensor of shape \[2, 3\]$/,
  },
  {
    name: 'uint8 class indices with k-dim input',
    args: () => [x234(), tensor(new Uint8Array(8), [2, 4])],
    error: TypeError,
    message: /target\.dtype but received "uint8" of type string/,
  },
  {
    name: 'a class index = C',
    args: () => [x23(), tensor(new BigInt64Array([0n, 3n]), [2])],
    error: RangeError,
    message: /\[0, 3\).*target\[1\] is 3$/,
  },
  {
    name: 'a negative class index',
    args: () => [x23(), tensor(new BigInt64Array([-1n, 0n]), [2])],
    error: RangeError,
    message: /target\[0\] is -1$/,
  },
  {
    name: 'a huge int64 class index',
    args: () => [x23(), tensor(new BigInt64Array([0n, 2n ** 63n - 1n]), [2])],
    error: RangeError,
    message: /target\[1\] is 9223372036854775807$/,
  },
  {
    name: 'an out-of-range Int32 class index',
    args: () => [x23(), tensor(new Int32Array([1, 7]), [2])],
    error: RangeError,
    message: /target\[1\] is 7$/,
  },
  {
    name: 'an out-of-range uint8 class index',
    args: () => [x23(), tensor(new Uint8Array([255, 0]), [2])],
    error: RangeError,
    message: /target\[0\] is 255$/,
  },
  {
    name: 'an out-of-range k-dim class index (position named)',
    args: () => [x234(), tensor(new BigInt64Array([0n, 1n, 2n, 0n, 1n, 2n, 5n, 1n]), [2, 4])],
    error: RangeError,
    message: /target\[1, 2\] \(flat index 6\) is 5$/,
  },
  {
    name: 'a class index for 1-D input (0-d target)',
    args: () => [tensor(new Float32Array(3), [3]), tensor(new BigInt64Array([4n]), [])],
    error: RangeError,
    message: /target\[0\] is 4$/,
  },
]);

block('weight', [
  {
    name: 'wrong length (array)',
    args: () => [x23(), t2(), { weight: [1, 2] }],
    error: RangeError,
    message: /3 class weights .* for weight but received an array of length 2/,
  },
  {
    name: 'wrong length (Float64Array)',
    args: () => [x23(), t2(), { weight: new Float64Array(4) }],
    error: RangeError,
    message: /3 class weights .* for weight but received a Float64Array of length 4/,
  },
  {
    name: 'a string',
    args: () => [x23(), t2(), { weight: 'abc' }],
    error: TypeError,
    message: /for weight but received "abc" of type string/,
  },
  {
    name: 'an Int32Array',
    args: () => [x23(), t2(), { weight: new Int32Array(3) }],
    error: TypeError,
    message: /for weight but received an Int32Array of length 3/,
  },
  {
    name: 'a tensor object',
    args: () => [x23(), t2(), { weight: tensor(new Float32Array(3), [3]) }],
    error: TypeError,
    message: /for weight but received an object/,
  },
  {
    name: 'a non-number element',
    args: () => [x23(), t2(), { weight: [1, '2', 3] }],
    error: TypeError,
    message: /a number for weight\[1\] but received "2" of type string/,
  },
  {
    name: 'a hole',
    args: () => [x23(), t2(), { weight: [1, , 3] }], // eslint-disable-line no-sparse-arrays
    error: TypeError,
    message: /weight\[1\] but received undefined/,
  },
]);

block('ignoreIndex', [
  {
    name: 'a fraction',
    args: () => [x23(), t2(), { ignoreIndex: 1.5 }],
    error: RangeError,
    message: /integer .*for ignoreIndex but received 1\.5 of type number/,
  },
  {
    name: 'NaN',
    args: () => [x23(), t2(), { ignoreIndex: NaN }],
    error: RangeError,
    message: /ignoreIndex but received NaN of type number/,
  },
  {
    name: 'a string',
    args: () => [x23(), t2(), { ignoreIndex: '1' }],
    error: TypeError,
    message: /ignoreIndex but received "1" of type string/,
  },
  {
    name: 'a bigint past int64',
    args: () => [x23(), t2(), { ignoreIndex: 2n ** 63n }],
    error: RangeError,
    message: /int64 range for ignoreIndex but received 9223372036854775808n of type bigint/,
  },
  {
    name: '>= 0 with a probability target',
    args: () => [x23(), p23(), { ignoreIndex: 0 }],
    error: RangeError,
    message: /negative value with probability targets .*for ignoreIndex but received 0 of type number/,
  },
]);

block('labelSmoothing', [
  { name: '1.2', args: () => [x23(), t2(), { labelSmoothing: 1.2 }], error: RangeError, message: /between 0 and 1 for labelSmoothing but received 1\.2 of type number/ },
  { name: '-0.1', args: () => [x23(), t2(), { labelSmoothing: -0.1 }], error: RangeError, message: /labelSmoothing but received -0\.1 of type number/ },
  { name: 'NaN', args: () => [x23(), t2(), { labelSmoothing: NaN }], error: RangeError, message: /labelSmoothing but received NaN of type number/ },
  { name: 'Infinity', args: () => [x23(), t2(), { labelSmoothing: Infinity }], error: RangeError, message: /labelSmoothing but received Infinity of type number/ },
  { name: "'0.1'", args: () => [x23(), t2(), { labelSmoothing: '0.1' }], error: TypeError, message: /labelSmoothing but received "0\.1" of type string/ },
  { name: '1.2 with a probability target', args: () => [x23(), p23(), { labelSmoothing: 1.2 }], error: RangeError, message: /labelSmoothing but received 1\.2/ },
]);

block('reduction', [
  { name: "'avg'", args: () => [x23(), t2(), { reduction: 'avg' }], error: TypeError, message: /'mean', 'sum', 'none' for reduction but received "avg" of type string/ },
  { name: '3 (the enum PyTorch has no name for)', args: () => [x23(), t2(), { reduction: 3 }], error: TypeError, message: /reduction but received 3 of type number/ },
  { name: "'Mean' (case matters)", args: () => [x23(), t2(), { reduction: 'Mean' }], error: TypeError, message: /reduction but received "Mean"/ },
  { name: "'toString' (no prototype lookups)", args: () => [x23(), t2(), { reduction: 'toString' }], error: TypeError, message: /reduction but received "toString"/ },
]);

block('grad', [
  { name: "'yes'", args: () => [x23(), t2(), { grad: 'yes' }], error: TypeError, message: /boolean for grad but received "yes" of type string/ },
  { name: '1', args: () => [x23(), t2(), { grad: 1 }], error: TypeError, message: /boolean for grad but received 1 of type number/ },
]);

block('gradOutput', [
  {
    name: 'wrong shape for none',
    args: () => [x23(), t2(), { reduction: 'none', grad: true, gradOutput: tensor(new Float32Array(3), [3]) }],
    error: RangeError,
    message: /gradOutput: expected shape \[2\] \(the none loss\) but received \[3\]/,
  },
  {
    name: 'a tensor that is not 0-d for mean',
    args: () => [x23(), t2(), { grad: true, gradOutput: tensor(new Float32Array(2), [2]) }],
    error: RangeError,
    message: /gradOutput: expected shape \[\] \(the mean loss\) but received \[2\]/,
  },
  {
    name: 'given without grad',
    args: () => [x23(), t2(), { gradOutput: 2 }],
    error: RangeError,
    message: /gradOutput was given but grad is undefined/,
  },
  {
    name: 'given with grad: false',
    args: () => [x23(), t2(), { grad: false, gradOutput: 2 }],
    error: RangeError,
    message: /gradOutput was given but grad is false/,
  },
  {
    name: 'a string',
    args: () => [x23(), t2(), { grad: true, gradOutput: 'one' }],
    error: TypeError,
    message: /for gradOutput but received "one" of type string/,
  },
  {
    name: 'an integer tensor',
    args: () => [x23(), t2(), { grad: true, reduction: 'none', gradOutput: tensor(new Int32Array(2), [2]) }],
    error: TypeError,
    message: /gradOutput\.dtype but received "int32"/,
  },
]);

block('device', [
  { name: "'gpu'", args: () => [x23(), t2(), { device: 'gpu' }], error: RangeError, message: /'cpu', 'cuda' or 'cuda:N' for device but received "gpu" of type string/ },
  { name: "'cuda:-1'", args: () => [x23(), t2(), { device: 'cuda:-1' }], error: RangeError, message: /device but received "cuda:-1"/ },
  { name: '0', args: () => [x23(), t2(), { device: 0 }], error: TypeError, message: /device but received 0 of type number/ },
]);

block('options', [
  {
    name: 'an unknown name, with a did-you-mean suggestion',
    args: () => [x23(), t2(), { labelSmooting: 0.1 }],
    error: TypeError,
    message: /Unknown option 'labelSmooting' for crossEntropy(Async)? \(did you mean 'labelSmoothing'\?\)/,
  },
  {
    name: 'a snake_case name',
    args: () => [x23(), t2(), { ignore_index: 1 }],
    error: TypeError,
    message: /Unknown option 'ignore_index' .*did you mean 'ignoreIndex'/,
  },
  {
    name: 'a far-off name lists the known options',
    args: () => [x23(), t2(), { frobnicate: true }],
    error: TypeError,
    message: /Unknown option 'frobnicate' .*known options: labelSmoothing, reduction, weight, ignoreIndex, grad, gradOutput, device/,
  },
  { name: 'a string', args: () => [x23(), t2(), 'mean'], error: TypeError, message: /an object \(or undefined\) for the options of crossEntropy(Async)? but received "mean" of type string/ },
  { name: 'null', args: () => [x23(), t2(), null], error: TypeError, message: /for the options of crossEntropy(Async)? but received null/ },
  { name: 'an array', args: () => [x23(), t2(), [0.1]], error: TypeError, message: /for the options of crossEntropy(Async)? but received an array of length 1/ },
  { name: 'a number', args: () => [x23(), t2(), 0.1], error: TypeError, message: /for the options of crossEntropy(Async)? but received 0\.1 of type number/ },
]);

// ---------------------------------------------------------------------------------------
describe('BAD CALL: device cuda on a machine without it', () => {
  it("device: 'cuda' fails with a clear Error and the process lives on", async () => {
    const before = crossEntropy(x23(), t2()).loss;
    if (cudaAvailable()) {
      // A GPU machine: the same call must work and agree with the CPU.
      expect(crossEntropy(x23(), t2(), { device: 'cuda' }).loss).toBeCloseTo(before as number, 5);
      return;
    }
    await expectBad({
      name: "device 'cuda'",
      args: () => [x23(), t2(), { device: 'cuda' }],
      error: Error,
      message: /device 'cuda' was requested, but .*(no CUDA support|no CUDA GPU)/,
    });
    await expectBad({
      name: "device 'cuda:1' with grad",
      args: () => [x23(), t2(), { device: 'cuda:1', grad: true }],
      error: Error,
      message: /device 'cuda:1' was requested/,
    });
    // Still alive and still computing the same value.
    expect(crossEntropy(x23(), t2()).loss).toBe(before);
    expect((await crossEntropyAsync(x23(), t2())).loss).toBe(before);
  });
});

describe('BAD CALL: hostile objects', () => {
  const polluted = [
    'labelSmoothing', 'reduction', 'weight', 'ignoreIndex', 'grad', 'gradOutput', 'device', 'data', 'shape', 'dtype', 'loss',
    // Options and fields that other parts of the package read when present.
    'batchSize', 'impl', 'gradInto', 'handle',
  ];
  afterEach(() => {
    for (const k of polluted) delete (Object.prototype as Record<string, unknown>)[k];
  });

  it('a polluted Object.prototype changes nothing', async () => {
    const x = x23();
    const t = t2();
    const clean = crossEntropy(x, t);
    const cleanNone = crossEntropy(x, t, { reduction: 'none', grad: true });
    const cleanProb = crossEntropy(x, p23());
    const proto = Object.prototype as Record<string, unknown>;
    proto.labelSmoothing = 0.9;
    proto.reduction = 'sum';
    proto.weight = [5, 6, 7];
    proto.ignoreIndex = 0;
    proto.grad = true;
    proto.gradOutput = 3;
    proto.device = 'cuda';
    proto.data = new Float32Array(6);
    proto.shape = [6];
    proto.dtype = 'float64';
    proto.batchSize = 1;
    proto.impl = 'fused';
    proto.gradInto = new Float32Array(6);
    proto.handle = { bogus: true };
    try {
      const r1 = crossEntropy(x, t);
      expect(Object.keys(r1)).toEqual(['loss']);
      expect(r1.loss).toBe(clean.loss);
      const r2 = crossEntropy(x, t, {});
      expect(Object.keys(r2)).toEqual(['loss']);
      expect(r2.loss).toBe(clean.loss);
      const r3 = await crossEntropyAsync(x, t);
      expect(Object.keys(r3)).toEqual(['loss']);
      expect(r3.loss).toBe(clean.loss);
      const r4 = crossEntropy(x, t, { reduction: 'none', grad: true });
      expect(Array.from(r4.loss.data)).toEqual(Array.from(cleanNone.loss.data));
      expect(Array.from(r4.grad!.data)).toEqual(Array.from(cleanNone.grad!.data));
      expect(crossEntropy(x, p23()).loss).toBe(cleanProb.loss);
      // A tensor whose own properties are missing is not completed from the prototype.
      const bare = thrown(() => crossEntropy({} as Tensor, t));
      expect(bare).toBeInstanceOf(TypeError);
      expect((bare as Error).message).toMatch(/input\.data but received undefined/);
      // The polluted gradInto buffer was never written.
      expect((proto.gradInto as Float32Array).every((v) => v === 0)).toBe(true);
    } finally {
      for (const k of polluted) delete proto[k];
    }
    expect(crossEntropy(x, t).loss).toBe(clean.loss);
  });

  it('getters that throw propagate as JS errors (sync throws, async rejects)', async () => {
    const boom = (what: string) => () => {
      throw new SyntaxError(`getter ${what} exploded`);
    };
    const cases: Array<[string, () => [unknown, unknown, unknown?]]> = [
      ['options.labelSmoothing', () => [x23(), t2(), Object.defineProperty({}, 'labelSmoothing', { get: boom('ls'), enumerable: true })]],
      ['options.weight', () => [x23(), t2(), Object.defineProperty({ reduction: 'sum' }, 'weight', { get: boom('weight'), enumerable: true })]],
      ['input.data', () => [Object.defineProperty({ shape: [2, 3], dtype: 'float32' }, 'data', { get: boom('data'), enumerable: true }), t2()]],
      ['input.shape', () => [Object.defineProperty({ data: new Float32Array(6), dtype: 'float32' }, 'shape', { get: boom('shape'), enumerable: true }), t2()]],
      ['target.dtype', () => [x23(), Object.defineProperty({ data: new BigInt64Array(2), shape: [2] }, 'dtype', { get: boom('dtype'), enumerable: true })]],
      ['input.shape[1]', () => [{ data: new Float32Array(6), dtype: 'float32', shape: Object.defineProperty([2, 3], 1, { get: boom('dim') }) }, t2()]],
      ['weight[2]', () => [x23(), t2(), { weight: Object.defineProperty([1, 1, 1], 2, { get: boom('w2') }) }]],
      ['a Proxy options object', () => [x23(), t2(), new Proxy({}, { ownKeys: boom('ownKeys') })]],
    ];
    for (const [what, args] of cases) {
      const err = thrown(() => crossEntropy(...(args() as Parameters<typeof crossEntropy>)));
      expect(err, what).toBeInstanceOf(SyntaxError);
      expect((err as Error).message, what).toMatch(/getter .* exploded|exploded/);
      let p: Promise<unknown> | undefined;
      expect(thrown(() => (p = crossEntropyAsync(...(args() as Parameters<typeof crossEntropyAsync>)))), what).toBeUndefined();
      await expect(p, what).rejects.toThrow(SyntaxError);
    }
    expect(typeof crossEntropy(x23(), t2()).loss).toBe('number');
  });
});

describe('good calls leave the caller’s arrays untouched', () => {
  it('sync and async, every reduction, with weights, gradients and probability targets', async () => {
    const calls: Array<[Tensor, Tensor, Record<string, unknown>]> = [
      [x23(), t2(), { labelSmoothing: 0.1, weight: new Float32Array([1, 2, 0.5]), grad: true }],
      [x23(), t2(), { reduction: 'none', grad: true, gradOutput: tensor(new Float32Array([1, -2]), [2]) }],
      [x23(), p23(), { reduction: 'sum', labelSmoothing: 0.3, grad: true, weight: [0.5, 1, 2] }],
      [x234(), t24(), { reduction: 'none', labelSmoothing: 0.2, ignoreIndex: 1, grad: true, gradOutput: 0.5 }],
      [x23(), tensor(new Int32Array([2, 1]), [2]), { grad: true }],
    ];
    for (const [input, target, options] of calls) {
      const snaps = snapshotArrays(input, target, options);
      expect(snaps.length).toBeGreaterThanOrEqual(2);
      const r = crossEntropy(input, target, options);
      assertUnchanged(snaps);
      const a = await crossEntropyAsync(input, target, options);
      assertUnchanged(snaps);
      expect(a).toEqual(r);
    }
  });
});

describe('binary classification warning', () => {
  it('C = 2 with labelSmoothing > 0 emits SMOOTHCE_BINARY_SMOOTHING once', async () => {
    // A fresh module instance, so that the once-per-process flag starts unset whatever ran before.
    vi.resetModules();
    const fresh = await import('../lib/index');
    const seen: Error[] = [];
    const onWarning = (w: Error) => {
      if ((w as Error & { code?: string }).code === 'SMOOTHCE_BINARY_SMOOTHING') seen.push(w);
    };
    process.on('warning', onWarning);
    try {
      const x = tensor(new Float64Array([1, 2, 3, 4]), [2, 2]);
      const t = tensor(new BigInt64Array([0n, 1n]), [2]);
      fresh.crossEntropy(x, t); // ε = 0: no warning
      await new Promise((r) => setImmediate(r));
      expect(seen).toHaveLength(0);
      fresh.crossEntropy(tensor(new Float64Array(6), [2, 3]), t2(), { labelSmoothing: 0.1 }); // C = 3: none
      await new Promise((r) => setImmediate(r));
      expect(seen).toHaveLength(0);
      fresh.crossEntropy(x, t, { labelSmoothing: 0.1 });
      fresh.crossEntropy(x, t, { labelSmoothing: 0.2 });
      await fresh.crossEntropyAsync(x, t, { labelSmoothing: 0.3 });
      await new Promise((r) => setImmediate(r));
      expect(seen).toHaveLength(1);
      expect(seen[0].message).toMatch(/label smoothing/i);
      expect(seen[0].name).toBe('Warning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});
