/**
 * Loads the native addon and describes its interface.
 *
 * Order: SMOOTHCE_NATIVE (a path to a .node file, for debugging or custom builds), then
 * node-gyp-build's resolution from the package root: build/Release/smoothce.node (a
 * local build), then prebuilds/<platform>-<arch>/smoothce.node (shipped in the tarball).
 * A failure lists what was tried and what to do about it, with the original error as
 * `cause`.
 */
import * as path from 'node:path';
import type { DType, TensorData } from './tensor';

export interface NativeTensor {
  data: TensorData;
  shape: number[];
  dtype: DType;
}

/** A device-resident tensor (binding/device_tensor.cc). */
export interface NativeDeviceTensor {
  readonly shape: number[];
  readonly dtype: string;
  readonly device: string;
  readonly disposed: boolean;
  toCPU(): NativeTensor;
  dispose(): void;
}

export interface NativeArgs {
  /** May be a NativeDeviceTensor at run time (see lib/device.ts, nativeTensorArg). */
  input: NativeTensor;
  /** May be a NativeDeviceTensor at run time (see lib/device.ts, nativeTensorArg). */
  target: NativeTensor;
  weight: NativeTensor | null;
  reduction: 0 | 1 | 2;
  ignoreIndex: bigint;
  labelSmoothing: number;
  grad: boolean;
  gradOutput: number | NativeTensor | null;
  device: string;
  /** Read by crossEntropyFused only ('aten' there runs ATen, e.g. for gradInto). */
  impl?: 'aten' | 'fused';
  gradInto?: Float32Array | Float64Array | null;
  /** Return the gradient as a device tensor handle on the call's device (crossEntropy only). */
  gradOnDevice?: boolean;
}

export interface NativeFusedResult {
  /** A number for mean/sum, a tensor for 'none'. */
  loss: number | NativeTensor;
  /** Absent when written into gradInto. */
  grad?: NativeTensor;
  /** Which kernel ran: 'aten' for impl 'aten' and for calls the fused kernel hands back. */
  path: 'fused' | 'aten';
}

export interface NativeResult {
  /** A number for reduction mean/sum; a tensor for none. */
  loss: number | NativeTensor;
  /** A NativeDeviceTensor at run time when the call asked for gradOnDevice. */
  grad?: NativeTensor;
}

/** Arguments of calibrationStats (binding/calibration_binding.cc). */
export interface NativeCalibrationArgs {
  scores: NativeTensor;
  labels: NativeTensor;
  fromLogits: boolean;
  temperature: number;
  bins: number;
  /** 0 guo, 1 torchmetrics, 2 netcal */
  convention: 0 | 1 | 2;
  classwise: boolean;
  adaptive: boolean;
  tolerance: number;
  device: string;
  /** Parameter name for error messages (default 'scores'). */
  scoresName?: string;
}

/** Per-bin sums (float64 tensors); classwise ones are (K, bins). */
export interface NativeBinSums {
  edges: NativeTensor;
  count: NativeTensor;
  confSum: NativeTensor;
  accSum: NativeTensor;
}

export interface NativeCalibrationStats {
  n: number;
  classes: number;
  correct: number;
  nllSum: number;
  brierSum: number;
  nllClamped: number;
  top: NativeBinSums;
  classwise?: NativeBinSums;
  adaptive?: NativeBinSums;
}

export interface NativeTemperatureResult {
  temperature: number;
  nllBefore: number;
  nllAfter: number;
  iterations: number;
  atBound: boolean;
}

export interface NativeBinding {
  crossEntropy(args: NativeArgs, async: false): NativeResult;
  crossEntropy(args: NativeArgs, async: true): Promise<NativeResult>;
  torchVersion(): string;
  cudaBuilt(): boolean;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** Calls of the ATen path per route since load (binding/cross_entropy.cc), for tests. */
  atenPathCounts(): { shortcutForward: number; explicitBackward: number; reference: number };
  /** binding/fused_binding.cc */
  crossEntropyFused(args: NativeArgs, async: false): NativeFusedResult;
  crossEntropyFused(args: NativeArgs, async: true): Promise<NativeFusedResult>;
  /**
   * The synchronous path of impl 'fused': positional arguments; the loss (NaN for 'none'), or
   * with gradInto null the gradient's ArrayBuffer (allocated after the kernel ran; the loss then
   * in lossOut[0]); undefined when the kernel does not handle the call.
   */
  crossEntropyFusedFast(
    input: Float32Array | Float64Array,
    outer: number,
    classes: number,
    inner: number,
    target: ArrayBufferView,
    probabilityTarget: boolean,
    weight: ArrayBufferView | null,
    reduction: 0 | 1 | 2,
    ignoreIndex: bigint,
    labelSmoothing: number,
    grad: boolean,
    gradOutputScalar: number,
    gradOutput: ArrayBufferView | null,
    gradInto: Float32Array | Float64Array | null,
    lossInto: Float32Array | Float64Array | null,
    lossOut?: Float64Array,
  ): number | ArrayBuffer | undefined;
  /** A 2 MiB-aligned, huge-page advised ArrayBuffer of `bytes` bytes (for large outputs). */
  hugeBuffer(bytes: number): ArrayBuffer;
  /** The fused kernel's instruction set: 'avx2' or 'baseline'. */
  fusedIsa(isa?: string): string;
  /** One read pass (returns the sum), or with `out` one read+write pass; for benchmarks. */
  memoryFloor(data: Float32Array | Float64Array, out?: Float32Array | Float64Array | null): number | undefined;
  /** Register-only multiply-add work over the kernel's threads (returns a sum); for benchmarks. */
  computeFloor(units: number): number;
  /**
   * Installs/removes the addon's CPU allocator for ATen (large blocks cached and reused; installed when the
   * addon loads unless SMOOTHCE_ATEN_ALLOCATOR=default); returns whether it is installed. Process-wide.
   */
  hugePageAllocator(enable?: boolean): boolean;
  /** binding/device_tensor.cc */
  DeviceTensor: new (tensor: NativeTensor, device: string) => NativeDeviceTensor;
  checkDevice(device: string): string;
  liveDeviceTensors(): number;
  workerNumThreads(): number;
  probeAsyncThreads(): Promise<number>;
  calibrationStats(args: NativeCalibrationArgs): NativeCalibrationStats;
  calibrationFitTemperature(args: { logits: NativeTensor; labels: NativeTensor; device: string }): NativeTemperatureResult;
}

export const packageRoot = path.resolve(__dirname, '..');

function hints(message: string): string[] {
  const out: string[] = [];
  if (/libtorch|libc10|libgomp|cannot open shared object/i.test(message)) {
    out.push(
      'LibTorch was not found at run time. Install it (Debian 12: `apt-get install libtorch-dev`), or point ' +
        'LIBTORCH at a LibTorch root and rebuild with `npm run build:native`.',
    );
  }
  if (/CXXABI_|GLIBCXX_|undefined symbol/i.test(message)) {
    out.push(
      'The addon was built against a different LibTorch or C++ runtime than the one found now (ABI mismatch). ' +
        'Rebuild it against the LibTorch you have: `npm run build:native` (set LIBTORCH or Torch_DIR to choose it).',
    );
  }
  if (/No native build was found|Cannot find module/i.test(message)) {
    out.push(
      'No compiled addon for this platform. Build it from source: `npm run build:native` (needs cmake, a C++17 ' +
        'compiler and LibTorch; `bash scripts/setup.sh` installs them on Debian).',
    );
  }
  if (out.length === 0) out.push('Rebuild the addon with `npm run build:native`; see README.md, Troubleshooting.');
  return out;
}

function load(): NativeBinding {
  const override = process.env.SMOOTHCE_NATIVE;
  try {
    if (override) return require(path.resolve(override)) as NativeBinding;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeBinding;
    return nodeGypBuild(packageRoot);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const where = override
      ? `SMOOTHCE_NATIVE=${override}`
      : `${path.join(packageRoot, 'build/Release')} or ${path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`)}`;
    const error = new Error(
      `smoothce: could not load the native addon (looked in ${where}).\n${message}\n\nPossible solutions:\n` +
        hints(message)
          .map((h) => `- ${h}`)
          .join('\n'),
      { cause: err },
    );
    (error as Error & { code: string }).code = 'ERR_SMOOTHCE_LOAD';
    throw error;
  }
}

let cached: NativeBinding | undefined;

/** The native binding, loaded on first use (or by preloadNative()). */
export function native(): NativeBinding {
  cached ??= load();
  return cached;
}

/**
 * Loads the native binding now, when the package is required, unless SMOOTHCE_LAZY_LOAD=1.
 * Loading maps LibTorch and touches about 150 MB of it (Debian's 1.13 here), ~0.7 s: done
 * inside the first call, that showed up as the first call's time and peak RSS (a first
 * 1024×32000 forward+gradient call measured 274 MB above its inputs instead of the 126 MB of
 * its gradient). A failure is not thrown here: the first call that needs the binding throws
 * the loader's error (ERR_SMOOTHCE_LOAD), as it would without this.
 */
export function preloadNative(): void {
  if (process.env.SMOOTHCE_LAZY_LOAD === '1') return;
  try {
    native();
  } catch {
    // reported by the first call that needs the binding
  }
}
