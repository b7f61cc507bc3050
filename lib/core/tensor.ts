import { inconsistent, rangeError, typeError } from './errors';
import { fromFrameworkTensor } from './framework-tensor';
import type { DType, TensorData, Tensor } from './types';
export type { DType, FloatArray, TensorData, Tensor } from './types';

interface DTypeInfo {
  array: string;
  ctor: { new (n: number): TensorData; new (values: ArrayLike<number | bigint>): TensorData };
  float: boolean;
}

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = Object.freeze({
  float32: { array: 'Float32Array', ctor: Float32Array as never, float: true },
  float64: { array: 'Float64Array', ctor: Float64Array as never, float: true },
  bfloat16: { array: 'Float32Array', ctor: Float32Array as never, float: true },
  float16: { array: 'Float32Array', ctor: Float32Array as never, float: true },
  int32: { array: 'Int32Array', ctor: Int32Array as never, float: false },
  int64: { array: 'BigInt64Array', ctor: BigInt64Array as never, float: false },
  uint8: { array: 'Uint8Array', ctor: Uint8Array as never, float: false },
});

/**
 * An array of the same type holding `length` elements (default: all of `data`'s) in a new
 * SharedArrayBuffer, with `data` copied in when `copy`: async native calls read such arrays in
 * place, so a multi-pass or chunked async call snapshots its inputs once, at call time, and the
 * caller may then overwrite, transfer or drop its own buffers.
 */
export function sharedArray<D extends TensorData>(data: D, length = data.length, copy = true): D {
  const Ctor = data.constructor as { new (buffer: SharedArrayBuffer): D; BYTES_PER_ELEMENT: number };
  const out = new Ctor(new SharedArrayBuffer(Math.max(1, length) * Ctor.BYTES_PER_ELEMENT)).subarray(0, length) as D;
  if (copy) (out as Float64Array).set(data as Float64Array);
  return out;
}

/** t itself when its data is already in a SharedArrayBuffer (read in place, as documented), else a
 * tensor over a SharedArrayBuffer copy of its data (sharedArray). */
export function sharedTensor<T extends Tensor>(t: T): T {
  if (typeof SharedArrayBuffer !== 'undefined' && t.data.buffer instanceof SharedArrayBuffer) return t;
  return { ...t, data: sharedArray(t.data) };
}

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, value);
}

function inferDType(data: unknown): DType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Uint8Array && !(data instanceof Uint8ClampedArray)) return 'uint8';
  return undefined;
}

/** Number of elements of a shape (1 for a 0-d shape). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Checks a shape: an array of non-negative safe integers whose product is a safe integer. */
export function checkShape(shape: unknown, parameter: string): number[] {
  if (!Array.isArray(shape)) throw typeError(parameter, 'an array of non-negative integers', shape);
  if (shape.length > 64) throw rangeError(parameter, 'at most 64 dimensions', shape);
  let n = 1;
  const out: number[] = new Array(shape.length);
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    if (typeof d !== 'number') throw typeError(`${parameter}[${i}]`, 'a non-negative integer', d);
    if (!Number.isSafeInteger(d) || d < 0) throw rangeError(`${parameter}[${i}]`, 'a non-negative integer', d);
    n *= d;
    if (!Number.isSafeInteger(n)) throw rangeError(parameter, 'a shape with fewer than 2^53 elements', shape);
    out[i] = d;
  }
  return out;
}

function toTypedArray(data: ArrayLike<unknown>, dtype: DType, parameter: string): TensorData {
  const n = data.length;
  if (dtype === 'int64') {
    const out = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const v = data[i];
      if (typeof v === 'bigint') out[i] = v;
      else if (typeof v === 'number' && Number.isSafeInteger(v)) out[i] = BigInt(v);
      else throw typeError(`${parameter}[${i}]`, 'an integer (number or bigint)', v);
    }
    return out;
  }
  const out = new DTYPES[dtype].ctor(n);
  const integer = !DTYPES[dtype].float;
  for (let i = 0; i < n; i++) {
    const v = data[i];
    if (typeof v !== 'number') throw typeError(`${parameter}[${i}]`, 'a number', v);
    if (integer && !Number.isInteger(v)) throw rangeError(`${parameter}[${i}]`, `an integer (the dtype is ${dtype})`, v);
    (out as Float64Array)[i] = v;
  }
  return out;
}

/**
 * Makes a tensor. A typed array is used as is (no copy); its dtype is inferred unless
 * given (bfloat16/float16 take Float32Array data). A plain array is converted and needs
 * the dtype.
 */
export function tensor<D extends TensorData>(data: D, shape?: readonly number[], dtype?: DType): Tensor<D>;
export function tensor(data: ArrayLike<number | bigint>, shape: readonly number[] | undefined, dtype: DType): Tensor;
export function tensor(data: unknown, shape?: readonly number[], dtype?: DType): Tensor {
  if (dtype !== undefined && !isDType(dtype)) {
    throw typeError('dtype', `one of ${Object.keys(DTYPES).join(', ')}`, dtype);
  }
  let typed: TensorData;
  let dt: DType;
  if (ArrayBuffer.isView(data)) {
    const inferred = inferDType(data);
    if (inferred === undefined) {
      throw typeError('data', 'a Float32Array, Float64Array, Int32Array, BigInt64Array or Uint8Array', data);
    }
    dt = dtype ?? inferred;
    if (DTYPES[dt].array !== DTYPES[inferred].array) {
      throw typeError('data', `a ${DTYPES[dt].array} (the array type of dtype ${dt})`, data);
    }
    typed = data as TensorData;
  } else if (Array.isArray(data)) {
    if (dtype === undefined) throw typeError('dtype', "a dtype such as 'float32' or 'int64' (a plain array has none to infer)", dtype);
    dt = dtype;
    typed = toTypedArray(data, dt, 'data');
  } else {
    throw typeError('data', 'a typed array or an array of numbers', data);
  }
  const s = shape === undefined ? [typed.length] : checkShape(shape, 'shape');
  if (numel(s) !== typed.length) {
    throw inconsistent('shape', `[${s.join(', ')}] needs ${numel(s)} elements but data has ${typed.length}`);
  }
  return { data: typed, shape: s, dtype: dt };
}

/**
 * Validates a tensor-like argument ({ data, shape, dtype }) as it arrives from a caller:
 * own properties only, typed array matching the dtype, length matching the shape.
 * An onnxruntime Tensor ({ data, dims, type }) or a TensorFlow.js tensor is taken as it
 * is (lib/core/framework-tensor.ts): its data viewed without copying where its memory allows,
 * a tfjs tensor read once with dataSync().
 * Returns a fresh object (the caller's object is never modified).
 */
export function checkTensor(value: unknown, parameter: string): Tensor {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw typeError(parameter, 'a tensor { data, shape, dtype } (use tensor(data, shape))', value);
  }
  // An onnxruntime or TensorFlow.js tensor is read here, once, so every entry point takes it.
  const framework = fromFrameworkTensor(value, parameter);
  const own = framework
    ? (k: string): unknown => (framework as unknown as Record<string, unknown>)[k]
    : (k: string): unknown => (Object.prototype.hasOwnProperty.call(value, k) ? (value as Record<string, unknown>)[k] : undefined);
  const data = own('data');
  const dtype = own('dtype');
  if (!ArrayBuffer.isView(data) || inferDType(data) === undefined) {
    throw typeError(`${parameter}.data`, 'a Float32Array, Float64Array, Int32Array, BigInt64Array or Uint8Array', data);
  }
  if (!isDType(dtype)) throw typeError(`${parameter}.dtype`, `one of ${Object.keys(DTYPES).join(', ')}`, dtype);
  const arrayName = DTYPES[dtype].array;
  if (inferDType(data) === undefined || DTYPES[inferDType(data)!].array !== arrayName) {
    throw typeError(`${parameter}.data`, `a ${arrayName} (the array type of dtype ${dtype})`, data);
  }
  const shape = checkShape(own('shape'), `${parameter}.shape`);
  const typed = data as TensorData;
  if (numel(shape) !== typed.length) {
    throw inconsistent(
      parameter,
      `shape [${shape.join(', ')}] needs ${numel(shape)} elements but data has ${typed.length}` +
        (typed.byteLength === 0 && typed.length === 0 ? ' (is its ArrayBuffer detached?)' : ''),
    );
  }
  // The optional fields that code probes for (a device tensor's `device` and `handle`) are
  // own properties set to undefined, so a polluted Object.prototype's values are never
  // found; a plain literal (not a null-prototype object) keeps V8's fast property access,
  // which the native side's reads depend on (a dictionary-mode object made calls ~35 µs slower).
  return { data: typed, shape, dtype, handle: undefined, device: undefined } as Tensor;
}
