/**
 * Case files: the format both sides of a parity test read and write (docs/parity.md).
 *
 *   { "format": "smoothce-cases", "version": 1, "torch": "1.13.1", "cases": [ case, ... ] }
 *
 * A case holds input, target, weight, options, grad_output and the expected loss and
 * gradient (or the error PyTorch raised). A tensor is inline
 *   { "dtype": "float32", "shape": [2, 3], "data": [ ... ] }
 * or, for large arrays, a reference to a .npy file next to the JSON
 *   { "dtype": "float32", "shape": [4096, 1000], "npy": "cases.data/big.input.npy" }.
 * Validation is strict: any problem names the file, the case and the field.
 *
 * One module per concern: case-types (the format's types), case-read (validation),
 * case-files (files on disk), case-write (writing); this module gathers them.
 */
export { CASE_FORMAT, CASE_FORMAT_VERSION, CaseFormatError, isExpectedError } from './case-types';
export type { CaseFile, CaseOptions, CaseTensor, ExpectedError, ExpectedValues, ParityCase } from './case-types';
export { asTensor, looksLikeCaseFile, parseCase, parseCaseFile, parseTensor } from './case-read';
export { findCaseFiles, loadCaseFile, parseJson } from './case-files';
export { writeCaseFile, type WriteOptions } from './case-write';
