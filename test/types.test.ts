/**
 * The public types, pinned. Each expectTypeOf line is checked by the compiler (this file is in
 * tsconfig.json, which test/typecheck.test.ts compiles under `strict`), and each
 * `@ts-expect-error` line must stay an error there; the same calls also run here, so that the
 * runtime validation for JavaScript callers stays as well.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  calibration,
  checkParity,
  checkDevice,
  crossEntropy,
  crossEntropyAsync,
  linearCrossEntropy,
  linearCrossEntropyAsync,
  LossAccumulator,
  tensor,
  toDevice,
  type DeviceTensor,
  type Tensor,
} from '../lib/index';

const x32 = tensor(new Float32Array([0.5, -1, 2, 0.25, 1, -0.5]), [2, 3]);
const x64 = tensor(new Float64Array([0.5, -1, 2, 0.25, 1, -0.5]), [2, 3]);
const y = tensor(new BigInt64Array([2n, 0n]), [2]);
const anyTensor: Tensor = x64;

describe('crossEntropy result types', () => {
  it('grad: true makes grad non-optional; without it grad stays optional', () => {
    const r = crossEntropy(x64, y, { grad: true, labelSmoothing: 0.1 });
    expectTypeOf(r.grad).toEqualTypeOf<Tensor<Float64Array>>();
    expectTypeOf(r.loss).toEqualTypeOf<number>();
    expect(r.grad.data).toBeInstanceOf(Float64Array);
    const none = crossEntropy(x64, y, { grad: true, reduction: 'none' });
    expectTypeOf(none.grad).toEqualTypeOf<Tensor<Float64Array>>();
    expectTypeOf(none.loss).toEqualTypeOf<Tensor<Float64Array>>();
    const plain = crossEntropy(x64, y, { labelSmoothing: 0.1 });
    expectTypeOf(plain.grad).toEqualTypeOf<Tensor<Float64Array> | undefined>();
    expect(plain.grad).toBeUndefined();
  });

  it('linearCrossEntropy: grad: true makes grad non-optional, in the input dtype', async () => {
    const w64 = tensor(new Float64Array([0.1, 0.2, 0.3, -0.1, 0, 0.5, 0.2, 0.1, -0.3]), [3, 3]);
    const r = linearCrossEntropy(x64, w64, y, { grad: true, labelSmoothing: 0.1 });
    expectTypeOf(r.loss).toEqualTypeOf<number>();
    expectTypeOf(r.grad.linearWeight).toEqualTypeOf<Tensor<Float64Array>>();
    expect(r.grad.input.shape).toEqual([2, 3]);
    const none = await linearCrossEntropyAsync(x64, w64, y, { grad: true, reduction: 'none' });
    expectTypeOf(none.loss).toEqualTypeOf<Tensor<Float64Array>>();
    expectTypeOf(none.grad.input).toEqualTypeOf<Tensor<Float64Array>>();
    const plain = linearCrossEntropy(x64, w64, y);
    expect(plain.grad).toBeUndefined();
  });

  it('float32 input gives Float32Array results, float64 gives Float64Array', () => {
    const r32 = crossEntropy(x32, y, { grad: true, reduction: 'none' });
    expectTypeOf(r32.loss.data).toEqualTypeOf<Float32Array>();
    expectTypeOf(r32.grad.data).toEqualTypeOf<Float32Array>();
    expect(r32.loss.data).toBeInstanceOf(Float32Array);
    expect(r32.grad.data).toBeInstanceOf(Float32Array);
    const r64 = crossEntropy(x64, y, { grad: true, reduction: 'none' });
    expectTypeOf(r64.loss.data).toEqualTypeOf<Float64Array>();
    expectTypeOf(r64.grad.data).toEqualTypeOf<Float64Array>();
    // A tensor whose type does not say its dtype gives either.
    const ra = crossEntropy(anyTensor, y, { grad: true });
    expectTypeOf(ra.grad.data).toEqualTypeOf<Float32Array | Float64Array>();
  });

  it('the async entry point has the same types', async () => {
    const r = await crossEntropyAsync(x32, y, { grad: true });
    expectTypeOf(r.grad.data).toEqualTypeOf<Float32Array>();
    expectTypeOf(r.loss).toEqualTypeOf<number>();
  });

  it('a device handle as input gives a FloatArray gradient', () => {
    const d: DeviceTensor = toDevice(x32, 'cpu');
    const r = crossEntropy(d, y, { grad: true });
    expectTypeOf(r.grad.data).toEqualTypeOf<Float32Array | Float64Array>();
    d.dispose();
  });
});

describe('wrong arguments are type errors (and still runtime errors for JavaScript callers)', () => {
  it("device is 'cpu' | 'cuda' | `cuda:${number}`", () => {
    // @ts-expect-error 'gpu' is not a device
    expect(() => crossEntropy(x64, y, { device: 'gpu' })).toThrow(RangeError);
    // @ts-expect-error 'gpu' is not a device
    expect(() => checkDevice('gpu')).toThrow(RangeError);
    // @ts-expect-error 'tpu' is not a device
    expect(() => new LossAccumulator({ device: 'tpu' })).toThrow(RangeError);
    expectTypeOf(crossEntropy).toBeCallableWith(x64, y, { device: 'cuda:1' as const });
  });

  it('calibration functions take tensors, not unknown', () => {
    // @ts-expect-error 42 is not a tensor
    expect(() => calibration.report(42, 'x')).toThrow(TypeError);
    // @ts-expect-error a string is not a tensor
    expect(() => calibration.ece('probs', y)).toThrow(TypeError);
    // @ts-expect-error neither is a number array
    expect(() => calibration.fitTemperature([1, 2], y)).toThrow(TypeError);
    const acc = new calibration.Accumulator();
    // @ts-expect-error update takes tensors
    expect(() => acc.update({}, [])).toThrow(TypeError);
    // @ts-expect-error merge takes an Accumulator
    expect(() => acc.merge({ n: 3 })).toThrow(TypeError);
  });

  it('checkParity takes cases or a case file, not anything', () => {
    // @ts-expect-error a number is not a list of cases
    expect(() => checkParity(42)).toThrow(TypeError);
    // @ts-expect-error a string is not a list of cases
    expect(() => checkParity('cases.json')).toThrow(TypeError);
  });
});
