/**
 * Reading JSON files that came from elsewhere (case files), cheaply and safely: the size is
 * checked before the file is read; the nesting depth and the number of values are checked by
 * a linear scan of the bytes (no recursion) before JSON.parse, which needs 20-100 bytes of
 * memory per value (an 8 MiB file of empty objects took 280 MiB to parse); and only regular
 * files are read (not a pipe or a device).
 * A file over a limit is refused with a JsonLimitError that names the limit; the caller (the
 * case-file loader) wraps it in its own typed error. See docs/security.md.
 */
import * as fs from 'node:fs';
import { rangeError, typeError } from '../core/errors';

export interface JsonLimits {
  /** Largest file read, in bytes. Default 8 MiB. */
  maxBytes?: number;
  /** Deepest nesting of arrays and objects. Default 128. */
  maxDepth?: number;
  /** Most values: array elements and object members, counted as the commas and opening
   * brackets outside strings. Default 500,000. */
  maxValues?: number;
}

/**
 * The defaults, which keep the memory a file costs to parse under about 64 MiB. A case file
 * nests 4 levels above a tensor's data, and a tensor has at most 64 dimensions; tensors above
 * 10,000 elements go to .npy files (writeCaseFile), so 500,000 inline values (50 such tensors)
 * in 8 MiB is already a very large case file. Raise them per call for larger trusted files.
 */
export const JSON_LIMITS = Object.freeze({ maxBytes: 8 * 1024 * 1024, maxDepth: 128, maxValues: 500_000 });

/** A JSON file over one of the limits, or one that cannot be read as a regular file. */
export class JsonLimitError extends Error {
  constructor(
    message: string,
    readonly code: 'ERR_SMOOTHCE_JSON_TOO_LARGE' | 'ERR_SMOOTHCE_JSON_TOO_DEEP' | 'ERR_SMOOTHCE_JSON_TOO_MANY_VALUES' | 'ERR_SMOOTHCE_JSON_NOT_A_FILE',
    /** The limit that was passed (bytes, levels or values); undefined for ERR_SMOOTHCE_JSON_NOT_A_FILE. */
    readonly limit?: number,
  ) {
    super(message);
    this.name = 'JsonLimitError';
  }
}

function limitsOf(limits: JsonLimits | undefined): Required<JsonLimits> {
  const maxBytes = limits?.maxBytes ?? JSON_LIMITS.maxBytes;
  const maxDepth = limits?.maxDepth ?? JSON_LIMITS.maxDepth;
  const maxValues = limits?.maxValues ?? JSON_LIMITS.maxValues;
  if (typeof maxValues !== 'number') throw typeError('maxValues', 'a number of values', maxValues);
  if (!Number.isSafeInteger(maxValues) || maxValues < 1) throw rangeError('maxValues', 'a positive integer number of values', maxValues);
  if (typeof maxBytes !== 'number') throw typeError('maxBytes', 'a number of bytes', maxBytes);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw rangeError('maxBytes', 'a non-negative integer number of bytes', maxBytes);
  if (typeof maxDepth !== 'number') throw typeError('maxDepth', 'a number of levels', maxDepth);
  if (!Number.isInteger(maxDepth) || maxDepth < 1) throw rangeError('maxDepth', 'a positive integer number of levels', maxDepth);
  return { maxBytes, maxDepth, maxValues };
}

/**
 * The deepest nesting of arrays and objects in JSON text (bytes or a string), found by one
 * pass that skips strings; throws once it passes `maxDepth`, or once the values (commas and
 * opening brackets outside strings) pass `maxValues`. Never recurses.
 */
export function checkJsonDepth(text: Uint8Array | string, maxDepth: number = JSON_LIMITS.maxDepth, maxValues: number = Infinity): number {
  const n = text.length;
  const at = typeof text === 'string' ? (i: number) => text.charCodeAt(i) : (i: number) => text[i];
  const unit = typeof text === 'string' ? 'character' : 'byte';
  let depth = 0;
  let deepest = 0;
  let values = 0;
  let inString = false;
  for (let i = 0; i < n; i++) {
    const c = at(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b || c === 0x2c) {
      if (++values > maxValues) {
        throw new JsonLimitError(
          `too many values: more than ${maxValues} array elements and object members (at ${unit} ${i}); the limit is ${maxValues}`,
          'ERR_SMOOTHCE_JSON_TOO_MANY_VALUES',
          maxValues,
        );
      }
      if (c === 0x2c) continue;
      if (++depth > maxDepth) {
        throw new JsonLimitError(
          `nested too deeply: more than ${maxDepth} levels of arrays and objects (at ${unit} ${i}); the limit is ${maxDepth}`,
          'ERR_SMOOTHCE_JSON_TOO_DEEP',
          maxDepth,
        );
      }
      if (depth > deepest) deepest = depth;
    } else if (c === 0x5d || c === 0x7d) {
      if (depth > 0) depth--;
    }
  }
  return deepest;
}

/**
 * Reads a JSON file as text after checking that it is a regular file of at most `maxBytes`
 * bytes, nested at most `maxDepth` deep, with at most `maxValues` values. Throws
 * JsonLimitError, or the file system's error.
 */
export function readJsonText(file: string, limits?: JsonLimits): string {
  const { maxBytes, maxDepth, maxValues } = limitsOf(limits);
  const st = fs.statSync(file);
  if (!st.isFile()) throw new JsonLimitError(`not a regular file (a pipe, device or directory is not read)`, 'ERR_SMOOTHCE_JSON_NOT_A_FILE');
  if (st.size > maxBytes) {
    throw new JsonLimitError(`too large: ${st.size} bytes; the limit is ${maxBytes} bytes`, 'ERR_SMOOTHCE_JSON_TOO_LARGE', maxBytes);
  }
  // O_NONBLOCK: a path swapped for a pipe after the check cannot block the open.
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  let bytes: Buffer;
  try {
    const now = fs.fstatSync(fd);
    if (!now.isFile()) throw new JsonLimitError(`not a regular file`, 'ERR_SMOOTHCE_JSON_NOT_A_FILE');
    // One byte more than the limit: a file that grew since the check is still caught.
    bytes = Buffer.allocUnsafe(Math.min(now.size, maxBytes) + 1);
    let got = 0;
    while (got < bytes.length) {
      const n = fs.readSync(fd, bytes, got, bytes.length - got, got);
      if (n === 0) break;
      got += n;
    }
    if (got > maxBytes) {
      throw new JsonLimitError(`too large: more than ${maxBytes} bytes; the limit is ${maxBytes} bytes`, 'ERR_SMOOTHCE_JSON_TOO_LARGE', maxBytes);
    }
    bytes = bytes.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
  checkJsonDepth(bytes, maxDepth, maxValues);
  return bytes.toString('utf8');
}
