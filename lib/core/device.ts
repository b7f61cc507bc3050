/**
 * Devices, device-resident tensors and intra-op threads.
 *
 * toDevice(tensor, device) copies a host tensor once to 'cpu', 'cuda' or 'cuda:N' and
 * returns a handle (a native object holding an ATen tensor there) that crossEntropy and
 * LossAccumulator take as input or target without copying it again. Integer (class-index)
 * handles also keep a host copy of their values: targets are checked against [0, C) in
 * TypeScript before any native code runs, so an out-of-range target on CUDA is a
 * RangeError, never a device-side assert.
 */
import { codedError, ERROR_CODES, inconsistent, rangeError, typeError } from './errors';
import type { FrameworkTensor } from './framework-tensor';
import { native, type NativeDeviceTensor } from './native';
import { checkTensor, DTYPES } from './tensor';
import type { Device, DType, Tensor, TensorData } from './types';

/** A tensor held on a device by the native addon. */
export interface DeviceTensor {
  /** Shape, as given to toDevice(). Throws once disposed. */
  readonly shape: number[];
  /** dtype, as given to toDevice() (int32 targets are held as int64 on the device). */
  readonly dtype: DType;
  /** Where the data lives: 'cpu' or 'cuda:N'. Throws once disposed. */
  readonly device: string;
  /** True after dispose(). */
  readonly disposed: boolean;
  /** Copies the data back to a new host tensor { data, shape, dtype }. */
  toCPU(): Tensor;
  /** Frees the device memory now (otherwise freed when garbage-collected). Safe to call twice. */
  dispose(): void;
}

// Host copies of integer handles' values, for target validation.
const hostValues = new WeakMap<object, TensorData>();

function deviceString(value: unknown, parameter: string): string {
  if (typeof value !== 'string') throw typeError(parameter, "'cpu', 'cuda' or 'cuda:N'", value);
  if (value === 'cpu' || value === 'cuda' || /^cuda:(0|[1-9][0-9]{0,3})$/.test(value)) return value;
  throw rangeError(parameter, "'cpu', 'cuda' or 'cuda:N'", value);
}

/** 'cuda' and 'cuda:0' name the same device. */
function canonical(device: string): string {
  return device === 'cuda' ? 'cuda:0' : device;
}

/** Whether value is a handle made by toDevice() (disposed or not). */
export function isDeviceTensor(value: unknown): value is DeviceTensor {
  return typeof value === 'object' && value !== null && value instanceof native().DeviceTensor;
}

function disposedError(parameter: string): Error {
  return codedError(
    ERROR_CODES.DISPOSED,
    `${parameter} is a DeviceTensor that was disposed; it cannot be used after dispose() (keep the handle until its last use)`,
  );
}

/**
 * Copies `tensor` to `device` once and returns a handle to it. On a LibTorch without
 * CUDA, or a machine without a GPU, 'cuda' throws a RangeError that says which.
 */
export function toDevice(tensor: Tensor, device: Device = 'cpu'): DeviceTensor {
  const t = checkTensor(tensor, 'tensor');
  const d = deviceString(device, 'device');
  const handle = new (native().DeviceTensor)(t, d);
  if (!DTYPES[t.dtype].float) hostValues.set(handle, t.data.slice());
  return handle as unknown as DeviceTensor;
}

/**
 * Throws a RangeError unless `device` can be used here: the message says whether this
 * LibTorch has no CUDA support, or no GPU is visible. Returns the device as ATen names
 * it ('cpu', 'cuda:0', ...).
 */
export function checkDevice(device: Device): string {
  return native().checkDevice(deviceString(device, 'device'));
}

/** A tensor on the host: { data, shape, dtype }, or an onnxruntime / TensorFlow.js tensor (lib/core/framework-tensor.ts). */
export type HostTensorInput = Tensor | FrameworkTensor;

/**
 * What the loss entry points take as input or target: a host tensor, an onnxruntime or
 * TensorFlow.js tensor (taken as it is), or a device tensor handle.
 */
export type TensorInput = Tensor | FrameworkTensor | DeviceTensor;

/** A tensor argument as validation sees it; `handle` is set for a device tensor. */
export type TensorArg = Tensor & { handle?: NativeDeviceTensor; device?: string };

const EMPTY: Record<DType, () => TensorData> = {
  float32: () => new Float32Array(0),
  float64: () => new Float64Array(0),
  bfloat16: () => new Float32Array(0),
  float16: () => new Float32Array(0),
  int32: () => new Int32Array(0),
  int64: () => new BigInt64Array(0),
  uint8: () => new Uint8Array(0),
};

/**
 * checkTensor(), extended to device tensor handles: a handle gives its shape and dtype,
 * and for integer dtypes its host copy as data (float handles' data is never read by
 * validation: an empty array stands in).
 */
export function tensorArg(value: unknown, parameter: string): TensorArg {
  if (!isDeviceTensor(value)) return checkTensor(value, parameter);
  if (value.disposed) throw disposedError(parameter);
  const h = value as unknown as NativeDeviceTensor;
  const dtype = h.dtype as DType;
  return { data: hostValues.get(h) ?? EMPTY[dtype](), shape: h.shape, dtype, handle: h, device: h.device };
}

/**
 * What the native binding is given for a validated tensor argument: the tensor, or the
 * handle itself for a device tensor (typed as a tensor so that NativeArgs stays one
 * shape; code that reads args.input.data must check isDeviceTensor first).
 */
export function nativeTensorArg(t: TensorArg): Tensor {
  return (t.handle as unknown as Tensor | undefined) ?? t;
}

/**
 * The device a call runs on: the requested one, or, when none is requested, the device
 * of its device-tensor arguments ('cpu' without any). A handle on another device than
 * the requested one (or two handles on different devices) is a RangeError: data is
 * never moved between devices behind the caller's back.
 */
export function resolveDevice(requested: string | undefined, args: readonly [string, TensorArg][]): string {
  let device = requested;
  for (const [name, arg] of args) {
    if (arg.device === undefined) continue;
    if (device === undefined) {
      device = arg.device;
    } else if (canonical(device) !== canonical(arg.device)) {
      throw inconsistent(
        name,
        `it is a DeviceTensor on '${arg.device}' but the call runs on '${device}' ` +
          `(pass device: '${arg.device}', or move it with toDevice(${name}.toCPU(), '${device}'))`,
      );
    }
  }
  return device ?? 'cpu';
}

/** Live (neither disposed nor collected) device tensor handles in this process. */
export function liveDeviceTensors(): number {
  return native().liveDeviceTensors();
}

/**
 * Sets ATen's intra-op thread count for every later loss computation: on the calling
 * thread and on the libuv pool threads that run async calls. See docs/serving.md.
 */
export function setNumThreads(n: number): void {
  if (typeof n !== 'number') throw typeError('n', 'an integer number of threads in [1, 1024]', n);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw rangeError('n', 'an integer number of threads in [1, 1024]', n);
  native().setNumThreads(n);
}

/** ATen's intra-op thread count on the calling thread (the JS main thread: sync calls). */
export function getNumThreads(): number {
  return native().getNumThreads();
}

/** Intra-op threads each async call uses on a libuv pool thread. See docs/serving.md. */
export function getAsyncNumThreads(): number {
  return native().workerNumThreads();
}
