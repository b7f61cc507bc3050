/**
 * The plain types every layer shares: tensors, their element types, devices. No imports,
 * no code, so that any module (tensor, framework-tensor, device, options, native) can use
 * them without an import circle.
 */

/** Element types a tensor may have. bfloat16/float16 are carried as float32 data and
 * converted at the native boundary (ATen computes in that dtype). */
export type DType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'bfloat16' | 'float16';

export type FloatArray = Float32Array | Float64Array;
export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** A tensor is a plain object: row-major data, its shape, and its dtype. */
export interface Tensor<D extends TensorData = TensorData> {
  data: D;
  shape: number[];
  dtype: DType;
}

/** Where a call runs: the CPU or a CUDA device. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
