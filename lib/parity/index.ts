/** The parity toolkit: case files, .npy, checkParity, the toMatchTorch matcher and the reference. */
export {
  CASE_FORMAT,
  CASE_FORMAT_VERSION,
  CaseFormatError,
  findCaseFiles,
  isExpectedError,
  loadCaseFile,
  parseCase,
  parseCaseFile,
  parseTensor,
  writeCaseFile,
} from './cases';
export { CASE_FILE_SCHEMA } from './case-schema';
export type { CaseFile, CaseOptions, CaseTensor, ExpectedError, ExpectedValues, ParityCase, WriteOptions } from './cases';
export { checkCase, checkParity, formatResult, knownAcceptance, knownRejection, summarise } from './check';
export type { CaseResult, CaseStatus, ParityInput, ParityOptions, ParityReport, ParitySummary } from './check';
export { compareArrays, DEFAULT_TOLERANCES, toleranceFor } from './compare';
export type { Comparison, FloatDType, Tolerance, ToleranceOptions } from './compare';
export { formatNpy, NpyError, parseNpy, readNpy, writeNpy } from './npy';
export type { NpyArray } from './npy';
export { toMatchTorch } from './matcher';
export type { MatchTorchOptions, MatcherResult } from './matcher';
import * as referenceImpl from './reference';
export type { ReferenceResult } from './reference';

/** The float64 pure-TypeScript reference implementation: reference.crossEntropy(input, target, options). */
export const reference = Object.freeze({ crossEntropy: referenceImpl.crossEntropy });
