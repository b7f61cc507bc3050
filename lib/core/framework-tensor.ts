/**
 * Tensors of the frameworks Node users already run, taken as they are: an
 * onnxruntime-node (onnxruntime-common) Tensor `{ data, dims, type }` and a TensorFlow.js
 * tensor. checkTensor() (lib/core/tensor.ts) calls fromFrameworkTensor() first, so every entry
 * point that takes a tensor (crossEntropy, calibration.*, LossAccumulator, Batcher, ...)
 * takes these too. Neither package is imported: both are recognised by their own
 * properties, as their classes set them.
 *
 * - onnxruntime: float32, float64, int32, int64 and uint8 tensors in CPU memory are viewed
 *   without copying (their `data` is the typed array the tensor holds). float16 (stored as
 *   Uint16Array bits before Node has Float16Array) is widened once to Float32Array data
 *   with dtype 'float16', smoothce's carrier for half precision.
 * - TensorFlow.js: float32 and int32 tensors are read once, synchronously, with
 *   dataSync(). On the cpu backend that returns the backend's own array (no copy); on wasm
 *   a copy out of the wasm heap; on webgl/webgpu/tfjs-node a download.
 */
import { codedError, ERROR_CODES, typeError } from './errors';
import type { DType, TensorData } from './types';

/** An onnxruntime-node / onnxruntime-web Tensor, as far as smoothce reads it. */
export interface OrtTensorLike {
  readonly dims: readonly number[];
  readonly type: string;
  readonly data: unknown;
  readonly location?: string;
}

/** A TensorFlow.js tensor (tf.Tensor), as far as smoothce reads it. */
export interface TfjsTensorLike {
  readonly shape: number[];
  readonly dtype: string;
  readonly dataId: object;
  readonly isDisposed: boolean;
  dataSync(): unknown;
}

/** A framework tensor accepted wherever a tensor { data, shape, dtype } is. */
export type FrameworkTensor = OrtTensorLike | TfjsTensorLike;

/** A normalised framework tensor: data, shape (unchecked) and dtype, before checkTensor's checks. */
export interface RawTensor {
  data: unknown;
  shape: unknown;
  dtype: DType;
}

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

const ORT_TYPES: Readonly<Record<string, { dtype: DType; array: new (n: number) => TensorData }>> = Object.freeze({
  float32: { dtype: 'float32', array: Float32Array },
  float64: { dtype: 'float64', array: Float64Array },
  int32: { dtype: 'int32', array: Int32Array },
  int64: { dtype: 'int64', array: BigInt64Array },
  uint8: { dtype: 'uint8', array: Uint8Array },
});

const TFJS_TYPES: Readonly<Record<string, { dtype: DType; array: new (n: number) => TensorData }>> = Object.freeze({
  float32: { dtype: 'float32', array: Float32Array },
  int32: { dtype: 'int32', array: Int32Array },
});

/** Whether value looks like an onnxruntime Tensor (own dims, type and the data fields its class sets). */
function isOrtTensor(value: object): boolean {
  return hasOwn(value, 'dims') && hasOwn(value, 'type') && (hasOwn(value, 'cpuData') || hasOwn(value, 'dataLocation')) && !hasOwn(value, 'shape');
}

/** Whether value looks like a TensorFlow.js tensor (own shape, dtype and dataId; a dataSync method). */
function isTfjsTensor(value: object): boolean {
  return hasOwn(value, 'dataId') && hasOwn(value, 'shape') && hasOwn(value, 'dtype') && typeof (value as TfjsTensorLike).dataSync === 'function';
}

function disposed(parameter: string, what: string): Error {
  return codedError(ERROR_CODES.DISPOSED, `${parameter} is a ${what} that was disposed; it cannot be read after dispose()`);
}

// IEEE binary16 bits -> number.
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function fromOrt(value: OrtTensorLike, parameter: string): RawTensor {
  const location = value.location;
  if (location !== undefined && location !== 'cpu' && location !== 'cpu-pinned') {
    throw typeError(
      parameter,
      `an onnxruntime Tensor in CPU memory (its location is ${JSON.stringify(location)}: copy it with \`new ort.Tensor(type, await t.getData(), t.dims)\`)`,
      value,
    );
  }
  const type = value.type;
  const shape = Array.isArray(value.dims) ? value.dims.slice() : value.dims;
  if (type === 'float16') {
    const data = value.data;
    let out: Float32Array;
    if (data instanceof Uint16Array) {
      out = new Float32Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = halfToNumber(data[i]);
    } else if (ArrayBuffer.isView(data) && !(data instanceof DataView)) {
      out = Float32Array.from(data as unknown as ArrayLike<number>); // a Float16Array
    } else {
      throw typeError(`${parameter}.data`, 'the float16 data of an onnxruntime Tensor (a Uint16Array or Float16Array)', data);
    }
    return { data: out, shape, dtype: 'float16' };
  }
  const info = typeof type === 'string' && hasOwn(ORT_TYPES, type) ? ORT_TYPES[type] : undefined;
  if (info === undefined) {
    throw typeError(`${parameter}.type`, `an onnxruntime Tensor of type ${Object.keys(ORT_TYPES).join(', ')} or float16`, type);
  }
  const data = value.data;
  if (!(data instanceof info.array)) throw typeError(`${parameter}.data`, `a ${info.array.name} for an onnxruntime ${type} Tensor`, data);
  return { data, shape, dtype: info.dtype };
}

function fromTfjs(value: TfjsTensorLike, parameter: string): RawTensor {
  if (value.isDisposed === true) throw disposed(parameter, 'TensorFlow.js tensor');
  const info = hasOwn(TFJS_TYPES, value.dtype) ? TFJS_TYPES[value.dtype] : undefined;
  if (info === undefined) {
    throw typeError(`${parameter}.dtype`, 'a TensorFlow.js tensor of dtype float32 or int32', value.dtype);
  }
  const data = value.dataSync();
  if (!(data instanceof info.array)) throw typeError(`${parameter}.dataSync()`, `a ${info.array.name} for a ${value.dtype} tensor`, data);
  return { data, shape: Array.isArray(value.shape) ? value.shape.slice() : value.shape, dtype: info.dtype };
}

/**
 * The data, shape and dtype of an onnxruntime or TensorFlow.js tensor, or undefined when
 * value is neither (it is then checked as a plain { data, shape, dtype } tensor).
 */
export function fromFrameworkTensor(value: object, parameter: string): RawTensor | undefined {
  if (hasOwn(value, 'data')) return undefined; // a plain tensor
  if (isOrtTensor(value)) return fromOrt(value as OrtTensorLike, parameter);
  if (isTfjsTensor(value)) return fromTfjs(value as TfjsTensorLike, parameter);
  return undefined;
}
