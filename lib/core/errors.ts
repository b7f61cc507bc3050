/**
 * One helper for every validation message, so that all errors read alike:
 *   Expected <what> for <parameter> but received <value>
 * TypeError for the wrong kind of value, RangeError for a value of the right kind
 * that is out of range or inconsistent with the other arguments.
 *
 * Every error smoothce throws carries a stable `code` (Node's style, `err.code`), one of
 * ERROR_CODES below; docs/errors.md lists them all (test/error-codes.test.ts keeps the two
 * in step). Messages may be reworded between versions; codes are not.
 */

/** Every code an error thrown by smoothce can carry. */
export const ERROR_CODES = {
  /** TypeError: an argument or option is the wrong kind of value. */
  INVALID_ARG_TYPE: 'ERR_SMOOTHCE_INVALID_ARG_TYPE',
  /** RangeError: an argument or option is the right kind but out of range or inconsistent with the others. */
  INVALID_ARG_VALUE: 'ERR_SMOOTHCE_INVALID_ARG_VALUE',
  /** TypeError: an options object has a key the function does not know (a typo, usually). */
  UNKNOWN_OPTION: 'ERR_SMOOTHCE_UNKNOWN_OPTION',
  /** Error/RangeError/TypeError raised by LibTorch or the C++ addon while computing (ATen's own checks). */
  NATIVE: 'ERR_SMOOTHCE_NATIVE',
  /** Error: the native addon could not be loaded. */
  LOAD: 'ERR_SMOOTHCE_LOAD',
  /** Error: a DeviceTensor was used after dispose(). */
  DISPOSED: 'ERR_SMOOTHCE_DISPOSED',
  /** RangeError: a Batcher's queue has no room for the request now (retry later or raise maxQueue). */
  QUEUE_FULL: 'ERR_SMOOTHCE_QUEUE_FULL',
  /** RangeError: a Batcher request has more rows than maxQueue (it can never be queued). */
  REQUEST_TOO_LARGE: 'ERR_SMOOTHCE_REQUEST_TOO_LARGE',
  /** Error: a Batcher was closed. */
  CLOSED: 'ERR_SMOOTHCE_CLOSED',
  /** DistributedError: a collective or process-group operation failed. */
  DIST: 'ERR_SMOOTHCE_DIST',
  /** DistributedError: the other ranks did not arrive within timeoutMs. */
  DIST_TIMEOUT: 'ERR_SMOOTHCE_DIST_TIMEOUT',
  /** DistributedError: distributed.init failed for a reason other than a timeout (a port in use, an unreachable host, a LibTorch limitation). */
  DIST_INIT: 'ERR_SMOOTHCE_DIST_INIT',
  /** DistributedError: the ranks issued different collectives (collective, reduce op, dtype, shape, accumulator class) or a rank's accumulator state could not be read or merged; every rank rejects, no data was combined. */
  DIST_MISMATCH: 'ERR_SMOOTHCE_DIST_MISMATCH',
  /** DistributedError: a rank claims an accumulator state larger than maxStateBytes. */
  DIST_STATE_TOO_LARGE: 'ERR_SMOOTHCE_DIST_STATE_TOO_LARGE',
  /** DistributedError: the process group was destroyed. */
  DIST_DESTROYED: 'ERR_SMOOTHCE_DIST_DESTROYED',
  /** DistributedError: this build has no distributed support (no Gloo) or the call is not available. */
  DIST_UNAVAILABLE: 'ERR_SMOOTHCE_DIST_UNAVAILABLE',
  /** NpyError: a .npy file cannot be read or written. */
  NPY: 'ERR_SMOOTHCE_NPY',
  /** CaseFormatError: a parity case file does not follow the case format (docs/parity.md). */
  CASE_FORMAT: 'ERR_SMOOTHCE_CASE_FORMAT',
  /** Error: no parity case files were found at the paths given. */
  NO_CASES: 'ERR_SMOOTHCE_NO_CASES',
  /** Error: a data file (the demo's digits) is malformed. */
  DATA_FORMAT: 'ERR_SMOOTHCE_DATA_FORMAT',
  /** Error: a demo or study worker failed, or its script is missing. */
  DEMO: 'ERR_SMOOTHCE_DEMO',
  /** Error: the native addon was built against one LibTorch and this process loaded another. */
  TORCH_MISMATCH: 'ERR_SMOOTHCE_TORCH_MISMATCH',
  /** Error: an optional peer dependency a feature needs is not installed (PNG: @resvg/resvg-js; smoothce/tfjs: @tensorflow/tfjs-core; Prometheus: prom-client). */
  MISSING_DEPENDENCY: 'ERR_SMOOTHCE_MISSING_DEPENDENCY',
  /** JsonLimitError: an untrusted JSON file is larger than its byte limit. */
  JSON_TOO_LARGE: 'ERR_SMOOTHCE_JSON_TOO_LARGE',
  /** JsonLimitError: an untrusted JSON file is nested deeper than its limit. */
  JSON_TOO_DEEP: 'ERR_SMOOTHCE_JSON_TOO_DEEP',
  /** JsonLimitError: an untrusted JSON file holds more values than its limit. */
  JSON_TOO_MANY_VALUES: 'ERR_SMOOTHCE_JSON_TOO_MANY_VALUES',
  /** JsonLimitError: the path given as a JSON file is not a regular file (a pipe, device or folder). */
  JSON_NOT_A_FILE: 'ERR_SMOOTHCE_JSON_NOT_A_FILE',
  /** TypeError/RangeError: a saved Monitor state (Monitor.fromJSON, Monitor.load) is not JSON, lacks a field, has a field of the wrong type or an unknown one, or breaks an invariant (negative or inconsistent counts, sub-windows outside their window, other bin edges or class counts). */
  STATE_FORMAT: 'ERR_SMOOTHCE_STATE_FORMAT',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** An Error (or subclass) with its stable code. */
export type CodedError<E extends Error = Error> = E & { code: ErrorCode };

/** Sets err.code (as an own, enumerable property, like Node's) and returns err. */
export function withCode<E extends Error>(err: E, code: ErrorCode): CodedError<E> {
  (err as E & { code: string }).code = code;
  return err as CodedError<E>;
}

/** A plain Error with a code. */
export function codedError(code: ErrorCode, message: string, options?: ErrorOptions): CodedError {
  return withCode(new Error(message, options), code);
}

/** A TypeError with a message written in full (default code ERR_SMOOTHCE_INVALID_ARG_TYPE). */
export function typeErrorMessage(message: string, code: ErrorCode = ERROR_CODES.INVALID_ARG_TYPE): CodedError<TypeError> {
  return withCode(new TypeError(message), code);
}

/** A RangeError with a message written in full (default code ERR_SMOOTHCE_INVALID_ARG_VALUE). */
export function rangeErrorMessage(message: string, code: ErrorCode = ERROR_CODES.INVALID_ARG_VALUE): CodedError<RangeError> {
  return withCode(new RangeError(message), code);
}

/**
 * Gives an error coming out of the native addon a code, if it has none yet: the addon's
 * argument checks throw plain TypeError/RangeError (→ INVALID_ARG_TYPE / INVALID_ARG_VALUE);
 * LibTorch's failures already carry ERR_SMOOTHCE_NATIVE (binding/errors.h). Returns err.
 */
export function codeNativeError(err: unknown): unknown {
  if (err instanceof Error && typeof (err as { code?: unknown }).code !== 'string') {
    withCode(
      err,
      err instanceof TypeError ? ERROR_CODES.INVALID_ARG_TYPE : err instanceof RangeError ? ERROR_CODES.INVALID_ARG_VALUE : ERROR_CODES.NATIVE,
    );
  }
  return err;
}

/** 'a' or 'an' for a word as it is read aloud ('an int64', 'an Int32Array', 'a Uint8Array'). */
export function article(word: string): string {
  return /^([aeio]|u(?!int))/i.test(word) ? 'an' : 'a';
}

/** Short, safe description of any value for an error message (never throws). */
export function describe(value: unknown): string {
  try {
    if (value === null) return 'null';
    if (value === undefined) return 'undefined';
    switch (typeof value) {
      case 'number':
        return `${Object.is(value, -0) ? '-0' : String(value)} of type number`;
      case 'bigint':
        return `${value}n of type bigint`;
      case 'string':
        return `${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)} of type string`;
      case 'boolean':
        return `${value} of type boolean`;
      case 'function':
        return 'a function';
      case 'symbol':
        return 'a symbol';
      default:
        break;
    }
    if (ArrayBuffer.isView(value)) {
      const name = Object.getPrototypeOf(value)?.constructor?.name ?? 'typed array';
      return `${article(name)} ${name} of length ${(value as unknown as { length?: number }).length ?? (value as ArrayBufferView).byteLength}`;
    }
    if (Array.isArray(value)) return `an array of length ${value.length}`;
    const ctor = Object.getPrototypeOf(value)?.constructor?.name;
    return ctor && ctor !== 'Object' ? `an instance of ${ctor}` : 'an object';
  } catch {
    return 'an unprintable value';
  }
}

/** TypeError (ERR_SMOOTHCE_INVALID_ARG_TYPE): "Expected <expected> for <parameter> but received <actual>". */
export function typeError(parameter: string, expected: string, actual: unknown): CodedError<TypeError> {
  return withCode(new TypeError(`Expected ${expected} for ${parameter} but received ${describe(actual)}`), ERROR_CODES.INVALID_ARG_TYPE);
}

/** RangeError (ERR_SMOOTHCE_INVALID_ARG_VALUE): "Expected <expected> for <parameter> but received <actual>". */
export function rangeError(parameter: string, expected: string, actual: unknown): CodedError<RangeError> {
  return withCode(new RangeError(`Expected ${expected} for ${parameter} but received ${describe(actual)}`), ERROR_CODES.INVALID_ARG_VALUE);
}

/** A RangeError (ERR_SMOOTHCE_INVALID_ARG_VALUE) whose message is written in full (shape mismatches and the like). */
export function inconsistent(parameter: string, message: string): CodedError<RangeError> {
  return withCode(new RangeError(`Invalid ${parameter}: ${message}`), ERROR_CODES.INVALID_ARG_VALUE);
}
