/**
 * The types of a parity case file (docs/parity.md) and the error its readers throw.
 */
import { ERROR_CODES } from '../core/errors';
import type { Reduction } from '../core/options';
import type { DType, TensorData } from '../core/types';

export const CASE_FORMAT = 'smoothce-cases';
export const CASE_FORMAT_VERSION = 1;

/**
 * A tensor of a case. `dtype` is one of smoothce's dtypes, except in cases whose
 * expected outcome is an error, which may name others (int16, bool, complex64, ...):
 * those keep their dtype and shape, with empty data, so that replaying them fails.
 */
export interface CaseTensor {
  data: TensorData;
  shape: number[];
  dtype: DType | string;
}

export interface CaseOptions {
  reduction: Reduction;
  ignoreIndex: bigint;
  /** May be NaN, negative or above 1 in a case: such cases record PyTorch's behaviour. */
  labelSmoothing: number;
}

export interface ExpectedValues {
  loss: CaseTensor;
  gradInput: CaseTensor | null;
}

export interface ExpectedError {
  error: { type: string; message: string };
}

export interface ParityCase {
  name: string;
  input: CaseTensor;
  target: CaseTensor;
  weight: CaseTensor | null;
  options: CaseOptions;
  gradOutput: CaseTensor | number | null;
  expected: ExpectedValues | ExpectedError;
  /** Set when smoothce rejects this case on purpose; says why. */
  deviation?: string;
}

export interface CaseFile {
  format: typeof CASE_FORMAT;
  version: number;
  /** The torch version that produced the expected values, when known. */
  torch?: string;
  cases: ParityCase[];
  /** The path the file was read from. */
  source?: string;
}

export function isExpectedError(e: ParityCase['expected']): e is ExpectedError {
  return Object.prototype.hasOwnProperty.call(e, 'error');
}

/** A problem in a case file: `file`, `caseName` and `field` say where. */
export class CaseFormatError extends Error {
  readonly code = ERROR_CODES.CASE_FORMAT;
  constructor(
    message: string,
    readonly file?: string,
    readonly caseName?: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'CaseFormatError';
  }
}
