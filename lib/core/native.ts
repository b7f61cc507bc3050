/**
 * Loads the native addon and describes its interface.
 *
 * Order: SMOOTHCE_NATIVE (a path to a .node file, for debugging or custom builds), then a local
 * build (build/Release/smoothce.node: `npx smoothce build` or a source install), then the prebuild
 * whose LibTorch matches the libc10 this machine's dynamic loader would find (scripts/prebuilds.js:
 * one prebuild per LibTorch release, prebuilds/<platform>-<arch>/smoothce.libtorch<M>_<m>.napi.glibc.node),
 * all without compiling anything. A failure says what was tried and the one command to run, with
 * the original error as `cause`; no LibTorch at all is ERR_SMOOTHCE_NO_LIBTORCH.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DType, TensorData } from './tensor';
import { codeNativeError, ERROR_CODES, withCode } from './errors';

export interface NativeTensor {
  data: TensorData;
  shape: number[];
  dtype: DType;
}

/** A device-resident tensor (binding/napi/device_tensor.cc). */
export interface NativeDeviceTensor {
  readonly shape: number[];
  readonly dtype: string;
  readonly device: string;
  readonly disposed: boolean;
  toCPU(): NativeTensor;
  dispose(): void;
}

export interface NativeArgs {
  /** May be a NativeDeviceTensor at run time (see lib/core/device.ts, nativeTensorArg). */
  input: NativeTensor;
  /** May be a NativeDeviceTensor at run time (see lib/core/device.ts, nativeTensorArg). */
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

export interface NativeLinearResult {
  /** A number for mean/sum, a tensor for 'none'. */
  loss: number | NativeTensor;
  /** Parts written into gradInto are absent. */
  grad?: { input?: NativeTensor; linearWeight?: NativeTensor; linearBias?: NativeTensor };
  /** Rows per block the call used. */
  blockRows: number;
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

/** Arguments of calibrationStats (binding/napi/calibration_binding.cc). */
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
  /** Also return the per-row float64 top-label values (stats.rows). */
  rows?: boolean;
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
  /** Per-row top-label values in float64 (args.rows): see binding/calibration.h. */
  rows?: {
    confidence: NativeTensor;
    correct: NativeTensor;
    predicted: NativeTensor;
    /** Rows by confidence descending, ties in row order (int32). */
    order: NativeTensor;
    normalizedMaxLogit?: NativeTensor;
    /** Rows by normalised max logit descending, ties in row order (int32). */
    orderNormalized?: NativeTensor;
  };
}

export interface NativeTemperatureResult {
  temperature: number;
  nllBefore: number;
  nllAfter: number;
  iterations: number;
  atBound: boolean;
}

/**
 * Test and benchmark hooks (binding/testing/): only in the test addon,
 * build/Testing/smoothce_testing.node, never in the shipped smoothce.node. Tests and bench scripts
 * load the test addon as the addon (SMOOTHCE_NATIVE; test/helpers/testing-addon.ts).
 */
export interface TestingHooks {
  /** Calls of the ATen path per route since load (binding/aten/cross_entropy.cc). */
  atenPathCounts(): { shortcutForward: number; explicitBackward: number; reference: number; rowBlocks: number };
  /** One read pass (returns the sum), or with `out` one read+write pass; for benchmarks. */
  memoryFloor(data: Float32Array | Float64Array, out?: Float32Array | Float64Array | null): number | undefined;
  /** Register-only multiply-add work over the kernel's threads (returns a sum); for benchmarks. */
  computeFloor(units: number): number;
  /** The intra-op thread count a libuv pool thread uses for an async call. */
  probeAsyncThreads(): Promise<number>;
}

/** The addon's exports; the TestingHooks are present only when the test addon is loaded. */
export interface NativeBinding extends Partial<TestingHooks> {
  crossEntropy(args: NativeArgs, async: false): NativeResult;
  crossEntropy(args: NativeArgs, async: true): Promise<NativeResult>;
  torchVersion(): string;
  cudaBuilt(): boolean;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** binding/napi/linear_cross_entropy_binding.cc (arguments built by lib/loss/linear-cross-entropy.ts) */
  linearCrossEntropy(args: Record<string, unknown>, async: false): NativeLinearResult;
  linearCrossEntropy(args: Record<string, unknown>, async: true): Promise<NativeLinearResult>;
  linearCrossEntropyInfo(): { blas: string; poolFreeBuffers: number; poolFreeBytes: number; poolAllocations: number; defaultWorkingMemory: number };
  /** binding/napi/fused_binding.cc */
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
  /**
   * Installs/removes the addon's CPU allocator for ATen (large blocks cached and reused; installed when the
   * addon loads unless SMOOTHCE_ATEN_ALLOCATOR=default); returns whether it is installed. Process-wide.
   */
  hugePageAllocator(enable?: boolean): boolean;
  /**
   * Early release of large results the GC has collected (binding/memory/result_registry.h): switches it, and
   * reports what is tracked and what was released early since load.
   */
  earlyRelease(on?: boolean): { enabled: boolean; tracked: number; released: number; forcedCollections: number; externalBytes: number };
  /** Frees collected large results now, asking V8 for a full collection when that may pay (binding/memory/result_registry.h). */
  reclaim(): void;
  /** binding/napi/device_tensor.cc */
  DeviceTensor: new (tensor: NativeTensor, device: string) => NativeDeviceTensor;
  checkDevice(device: string): string;
  liveDeviceTensors(): number;
  workerNumThreads(): number;
  calibrationStats(args: NativeCalibrationArgs, async?: false): NativeCalibrationStats;
  /** The same computation on a libuv pool thread (inputs snapshot as crossEntropy's async form does). */
  calibrationStats(args: NativeCalibrationArgs, async: true): Promise<NativeCalibrationStats>;
  calibrationFitTemperature(args: { logits: NativeTensor; labels: NativeTensor; device: string }, async?: false): NativeTemperatureResult;
  calibrationFitTemperature(args: { logits: NativeTensor; labels: NativeTensor; device: string }, async: true): Promise<NativeTemperatureResult>;
}

export const packageRoot = path.resolve(__dirname, '..', '..');

const DOCTOR = '`npx smoothce doctor`';
const BUILD = '`npx smoothce build`';

/**
 * How to let the install script build next time, for each package manager that blocks install
 * scripts by default (npm 12, pnpm 10, Bun): with the script allowed, a later install compiles
 * the addon where no prebuild fits.
 */
export const ALLOW_INSTALL_SCRIPT = [
  'npm: `npm approve-scripts smoothce` (or "allowScripts": { "smoothce": true } in package.json)',
  'pnpm: `pnpm approve-builds` (or "pnpm": { "onlyBuiltDependencies": ["smoothce"] } in package.json; newer pnpm: allowBuilds: { smoothce: true } in pnpm-workspace.yaml)',
  'Bun: "trustedDependencies": ["smoothce"] in package.json',
];

function hints(message: string): string[] {
  const out: string[] = [];
  if (/GLIBC_\d|GLIBCXX_\d|CXXABI_\d/.test(message)) {
    out.push(
      `The prebuild needs a newer C library or C++ runtime than this system has (the version it names above). Build the addon here: ${BUILD}.`,
    );
  } else if (/libtorch|libc10|libgomp|cannot open shared object/i.test(message)) {
    out.push(
      `LibTorch was not found at run time: the addon was built against a LibTorch that is not here. Run ${DOCTOR} ` +
        `in your project to see which LibTorch it finds, then ${BUILD} to rebuild the addon against it (set LIBTORCH, ` +
        'Torch_DIR or SMOOTHCE_PYTHON to choose one; Debian/Ubuntu: `apt-get install libtorch-dev`).',
    );
  }
  if (/undefined symbol/i.test(message)) {
    out.push(
      'The addon was built against a different LibTorch or C++ runtime than the one found now (ABI mismatch). ' +
        `Rebuild it against the LibTorch you have: ${BUILD} (set LIBTORCH, Torch_DIR or SMOOTHCE_PYTHON to choose it; ${DOCTOR} lists them).`,
    );
  }
  if (/No native build was found|Cannot find module|no prebuild/i.test(message)) {
    out.push(
      `No compiled addon for ${process.platform}-${process.arch} fits here. Build it from source: ${BUILD} (needs cmake, a C++17 ` +
        `compiler and LibTorch; ${DOCTOR} says which of them is missing and how to get it).`,
    );
  }
  if (out.length === 0) out.push(`Rebuild the addon with ${BUILD}; ${DOCTOR} says what is wrong. See docs/install.md, Troubleshooting.`);
  out.push(`To let the install script build it the next time you install (package managers block install scripts by default now): ${ALLOW_INSTALL_SCRIPT.join('; ')}.`);
  out.push('In a clone of the smoothce repository itself, `npm run build:native` (or `bash scripts/setup.sh`) does the same.');
  return out;
}

interface LibtorchScript {
  loadedLibrary(): string | null;
  versionOfLibrary(file: string): string | null;
  sameVersion(a: string, b: string): boolean;
}

/**
 * scripts/libtorch.js (shipped in the package), shared with the install script and `smoothce
 * doctor`; null where it is absent (lib/ compiled on its own elsewhere), and the check is skipped.
 */
export function libtorchScript(): LibtorchScript | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(path.join(packageRoot, 'scripts', 'libtorch.js')) as LibtorchScript;
  } catch {
    return null;
  }
}

/**
 * The LibTorch the addon was compiled with (its TORCH_VERSION macros, torchVersion()) against the
 * one this process loaded (the version of the libc10 it mapped). A mismatch is an error
 * (ERR_SMOOTHCE_TORCH_MISMATCH) unless SMOOTHCE_SKIP_TORCH_CHECK=1. Exported for tests.
 */
export function checkTorchVersion(built: string, loadedFile: string | null, addonFile: string): void {
  if (process.env.SMOOTHCE_SKIP_TORCH_CHECK === '1' || !loadedFile) return;
  const lt = libtorchScript();
  if (!lt) return;
  const found = lt.versionOfLibrary(loadedFile);
  if (!found || lt.sameVersion(built, found)) return;
  throw withCode(
    new Error(
      `smoothce: the native addon ${addonFile} was built against LibTorch ${built}, but this process loaded LibTorch ` +
        `${found} (${loadedFile}). A binary built against one LibTorch release cannot be used with another.\n\n` +
        `Fix: rebuild the addon against the LibTorch you have, from your project: ${BUILD}. ${DOCTOR} lists every ` +
        'LibTorch it finds (LIBTORCH, Torch_DIR, SMOOTHCE_PYTHON, python3 on PATH, the system) and which one a build uses. ' +
        '(SMOOTHCE_SKIP_TORCH_CHECK=1 skips this check, at your own risk.)',
    ),
    ERROR_CODES.TORCH_MISMATCH,
  );
}

interface PrebuildChoice {
  chosen: { file: string; name: string; torchVersion: string | null } | null;
  reason: string;
  candidates: { file: string; name: string; torchVersion: string | null; libc10: string; found: string | null; glibc: string | null }[];
  libtorch: { found: string[]; looked: string[] };
}

/** scripts/prebuilds.js (shipped in the package); null where it is absent. */
function prebuildsScript(): { choose(root: string): PrebuildChoice } | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(path.join(packageRoot, 'scripts', 'prebuilds.js')) as { choose(root: string): PrebuildChoice };
  } catch {
    return null;
  }
}

const localBuild = (): string => path.join(packageRoot, 'build', 'Release', 'smoothce.node');

function exists(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * The .node file to load and why: SMOOTHCE_NATIVE, the local build, or the prebuild that fits
 * (null file, with the reason, when none does).
 */
export function resolveAddon(): { file: string | null; kind: 'override' | 'local build' | 'prebuild' | 'none'; reason: string; choice: PrebuildChoice | null } {
  const override = process.env.SMOOTHCE_NATIVE;
  if (override) return { file: path.resolve(override), kind: 'override', reason: 'SMOOTHCE_NATIVE names it', choice: null };
  if (exists(localBuild())) return { file: localBuild(), kind: 'local build', reason: 'a local build is preferred to the prebuilds', choice: null };
  const script = prebuildsScript();
  if (!script) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const file = (require('node-gyp-build') as { resolve(dir: string): string }).resolve(packageRoot);
      return { file, kind: 'prebuild', reason: "node-gyp-build's choice", choice: null };
    } catch (err) {
      return { file: null, kind: 'none', reason: err instanceof Error ? err.message : String(err), choice: null };
    }
  }
  const choice = script.choose(packageRoot);
  return { file: choice.chosen?.file ?? null, kind: choice.chosen ? 'prebuild' : 'none', reason: choice.reason, choice };
}

/** The .node file the loader would load (null when none). */
function addonPath(): string | null {
  return resolveAddon().file;
}

/** Which lib*.so a dlopen error says it could not find, if that is a LibTorch library. */
function missingTorchLibrary(message: string): string | null {
  const m = /(lib(?:c10|torch|torch_cpu|torch_cuda|c10_cuda)\.so[\d.]*): cannot open shared object file/.exec(message);
  return m ? m[1] : null;
}

/**
 * The error for a machine without LibTorch: names the library looked for and how to get one.
 * Exported for tests.
 */
export function noLibtorchError(library: string, looked: string[], cause?: unknown): Error {
  const error = new Error(
    `smoothce: LibTorch is not installed here: the native addon needs ${library} (LibTorch's core library), and ` +
      `the dynamic loader finds none${looked.length ? ` (looked in ${looked.join(', ')})` : ''}.\n\n` +
      'Get LibTorch, either way:\n' +
      '- Debian or Ubuntu: `sudo apt-get install libtorch-dev` (Debian 12 has LibTorch 1.13 and Debian 13 has 2.6: ' +
      'smoothce ships a prebuilt addon for both, so nothing is compiled).\n' +
      `- PyTorch from pip (\`pip install torch\`), then \`npx smoothce build\` in your project to compile the addon against it ` +
      '(needs cmake and a C++17 compiler; set SMOOTHCE_PYTHON=/path/to/python if that Python is not the python3 on PATH).\n' +
      `Then ${DOCTOR} checks what it finds.`,
    cause === undefined ? undefined : { cause },
  );
  return withCode(error, ERROR_CODES.NO_LIBTORCH);
}

function load(): NativeBinding {
  const where = resolveAddon();
  let binding: NativeBinding;
  try {
    if (!where.file) {
      const c = where.choice;
      if (c && c.candidates.length > 0 && c.libtorch.found.length === 0) {
        throw noLibtorchError(c.candidates.map((x) => x.libc10).join(' or '), c.libtorch.looked);
      }
      throw withCode(new Error(`no prebuild fits here: ${where.reason}`), ERROR_CODES.LOAD);
    }
    binding = require(where.file) as NativeBinding;
  } catch (err) {
    if ((err as { code?: string }).code === ERROR_CODES.NO_LIBTORCH) throw err;
    const message = err instanceof Error ? err.message : String(err);
    const missing = missingTorchLibrary(message);
    // Nothing of LibTorch anywhere: the one message that says how to get it.
    if (missing && /libc10/.test(missing) && where.choice?.libtorch.found.length === 0) {
      throw noLibtorchError(missing, where.choice.libtorch.looked, err);
    }
    const tried = where.kind === 'override' ? `SMOOTHCE_NATIVE=${process.env.SMOOTHCE_NATIVE}` : where.file ? `${where.kind} ${where.file}` : `${path.join(packageRoot, 'build/Release')} and ${path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`)}`;
    const error = new Error(
      `smoothce: could not load the native addon (${tried}).\n${message}\n\nPossible solutions:\n` +
        hints(message)
          .map((h) => `- ${h}`)
          .join('\n'),
      { cause: err },
    );
    throw withCode(error, ERROR_CODES.LOAD);
  }
  checkTorchVersion(binding.torchVersion(), libtorchScript()?.loadedLibrary() ?? null, addonPath() ?? 'smoothce.node');
  return binding;
}

let cached: NativeBinding | undefined;

/**
 * The binding with each function wrapped so that what it throws (or its promise rejects
 * with) carries a code (errors.ts codeNativeError): the addon's argument checks throw plain
 * TypeError/RangeError; LibTorch's failures already carry ERR_SMOOTHCE_NATIVE. Classes
 * (DeviceTensor) are left as they are.
 */
function withErrorCodes<T extends object>(binding: T): T {
  const out: Record<string, unknown> = Object.create(Object.getPrototypeOf(binding));
  for (const key of Object.getOwnPropertyNames(binding)) {
    const value = (binding as Record<string, unknown>)[key];
    if (typeof value !== 'function' || /^[A-Z]/.test(key)) {
      out[key] = value;
      continue;
    }
    const fn = value as (...args: unknown[]) => unknown;
    out[key] = function (this: unknown, ...args: unknown[]): unknown {
      let result: unknown;
      try {
        result = fn.apply(binding, args);
      } catch (err) {
        throw codeNativeError(err);
      }
      if (result instanceof Promise) {
        return result.catch((err: unknown) => {
          throw codeNativeError(err);
        });
      }
      return result;
    };
  }
  return out as T;
}

/** The native binding, loaded on first use (or by preloadNative()). */
export function native(): NativeBinding {
  cached ??= checkEarlyRelease(withErrorCodes(load()));
  return cached;
}

/**
 * The early release of collected results (binding/memory/result_registry.h) relies on a collected
 * ArrayBuffer meaning that no JavaScript can reach its memory. Node 20 copies the addon's external
 * buffers when asked to transfer them; where ArrayBuffer.prototype.transfer could move one's memory
 * into a new buffer, the early release is switched off.
 */
function checkEarlyRelease(binding: NativeBinding): NativeBinding {
  const transfer = (ArrayBuffer.prototype as { transfer?: (this: ArrayBuffer) => ArrayBuffer }).transfer;
  if (typeof transfer === 'function') {
    try {
      transfer.call(binding.hugeBuffer(512 << 10));
      binding.earlyRelease(false);
    } catch {
      // Not transferable: the memory stays with its buffer.
    }
  }
  return binding;
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
