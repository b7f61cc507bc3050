export { ERROR_CODES } from './core/errors';
export type { ErrorCode, CodedError } from './core/errors';
export { tensor, numel } from './core/tensor';
export type { Tensor, DType, TensorData, FloatArray } from './core/tensor';
export { crossEntropy, crossEntropyAsync } from './loss/cross-entropy';
export type { CrossEntropyResult, CrossEntropyGradResult, FloatOf, DeviceGradOptions, DeviceGradResult, NoneOptions, ScalarOptions } from './loss/cross-entropy';
export type { CrossEntropyOptions, Reduction, Device } from './core/options';
export { linearCrossEntropy, linearCrossEntropyAsync } from './loss/linear-cross-entropy';
export type { LinearCrossEntropyOptions, LinearCrossEntropyResult, LinearCrossEntropyGradResult, LinearCrossEntropyGrad, LinearGradInto } from './loss/linear-cross-entropy';
import { native, preloadNative } from './core/native';

/** The LibTorch version the addon was built against, e.g. "1.13.0". */
export function torchVersion(): string {
  return native().torchVersion();
}

/** Whether the linked LibTorch has CUDA and a GPU is visible. */
export function cudaAvailable(): boolean {
  return native().cudaAvailable();
}

/** Number of visible CUDA devices (0 without CUDA). */
export function cudaDeviceCount(): number {
  return native().cudaDeviceCount();
}
export * as distributed from './distributed';
export type { ProcessGroup, InitOptions, ReduceOp, Backend, StoreLayout } from './distributed';
export {
  checkParity,
  loadCaseFile,
  parseCaseFile,
  writeCaseFile,
  findCaseFiles,
  CaseFormatError,
  readNpy,
  writeNpy,
  parseNpy,
  formatNpy,
  NpyError,
  toMatchTorch,
  reference,
  DEFAULT_TOLERANCES,
  CASE_FILE_SCHEMA,
} from './parity';
export type {
  ParityCase,
  CaseFile,
  CaseTensor,
  CaseResult,
  CaseStatus,
  ParityOptions,
  ParityReport,
  ParitySummary,
  NpyArray,
  MatchTorchOptions,
  ReferenceResult,
  Tolerance,
} from './parity';
export * as calibration from './calibration';
export { MissingDependencyError } from './calibration';
export type { CalibrationReport, ReliabilityBin, EceOptions, ReportOptions, DiagramOptions, AccumulatorState } from './calibration';
export {
  toDevice,
  isDeviceTensor,
  checkDevice,
  liveDeviceTensors,
  setNumThreads,
  getNumThreads,
  getAsyncNumThreads,
} from './core/device';
export type { DeviceTensor } from './core/device';
export { LossAccumulator } from './loss/accumulator';
export type { LossAccumulatorOptions, LossAccumulatorJSON } from './loss/accumulator';
export { Batcher } from './serving/batcher';
export type { BatcherOptions, ScoreResult, CloseOptions, BatcherStats } from './serving/batcher';
export type { TensorInput, HostTensorInput } from './core/device';
export type { FrameworkTensor, OrtTensorLike, TfjsTensorLike } from './core/framework-tensor';

// The native binding loads with the package, not inside the first call (lib/core/native.ts).
preloadNative();
