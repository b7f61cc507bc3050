/**
 * NumPy .npy files (format versions 1.0, 2.0 and 3.0), read and written without
 * dependencies. No npm package both reads and writes .npy with int64 support
 * (npyjs and numpy-parser only read), so this is a small reader/writer for exactly
 * the arrays a case file holds: little- or big-endian <f4 <f8 <i8 <i4 |u1 in C order.
 *
 * Format: magic "\x93NUMPY", major, minor, header length (uint16 LE for 1.0, uint32 LE
 * for 2.0/3.0), then a Python dict literal {'descr': '<f4', 'fortran_order': False,
 * 'shape': (2, 3), } padded with spaces and a newline to a multiple of 64 bytes.
 */
import * as fs from 'node:fs';
import type { DType, TensorData } from '../tensor';
import { ERROR_CODES } from '../errors';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/** The numpy element types this module handles, with their typed arrays. */
const KINDS = {
  f4: { bytes: 4, dtype: 'float32', ctor: Float32Array },
  f8: { bytes: 8, dtype: 'float64', ctor: Float64Array },
  i8: { bytes: 8, dtype: 'int64', ctor: BigInt64Array },
  i4: { bytes: 4, dtype: 'int32', ctor: Int32Array },
  u1: { bytes: 1, dtype: 'uint8', ctor: Uint8Array },
} as const;
type Kind = keyof typeof KINDS;

/** What a .npy file holds: C-order data, its shape and the numpy descr it had. */
export interface NpyArray {
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
  shape: number[];
  /** float32, float64, int64, int32 or uint8. */
  dtype: 'float32' | 'float64' | 'int64' | 'int32' | 'uint8';
  /** The descr as written in the file, e.g. '<f4'. */
  descr: string;
}

/** An error in a .npy file; `file` is set when the bytes came from a path. */
export class NpyError extends Error {
  readonly code = ERROR_CODES.NPY;
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'NpyError';
  }
}

function parseHeader(text: string, file?: string): { descr: string; fortran: boolean; shape: number[] } {
  const fail = (what: string): never => {
    throw new NpyError(`invalid .npy header (${what}): ${JSON.stringify(text.trim())}`, file);
  };
  const body = text.trim();
  if (!body.startsWith('{') || !body.endsWith('}')) fail('not a dict literal');
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(body)?.[1] ?? fail("no 'descr'");
  const fortranText = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(body)?.[1] ?? fail("no 'fortran_order'");
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(body)?.[1] ?? fail("no 'shape' tuple");
  const shape: number[] = [];
  for (const part of shapeText.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    if (!/^\d+L?$/.test(p)) fail(`shape entry ${JSON.stringify(p)}`);
    const d = Number.parseInt(p, 10);
    if (!Number.isSafeInteger(d)) fail(`shape entry ${p} too large`);
    shape.push(d);
  }
  return { descr, fortran: fortranText === 'True', shape };
}

function kindOf(descr: string, file?: string): { kind: Kind; little: boolean } {
  const m = /^([<>|=])([a-z])(\d+)$/.exec(descr);
  const kind = m ? (`${m[2]}${m[3]}` as Kind) : undefined;
  if (!m || kind === undefined || !Object.prototype.hasOwnProperty.call(KINDS, kind)) {
    throw new NpyError(
      `unsupported .npy dtype '${descr}': expected float32 (<f4), float64 (<f8), int64 (<i8), int32 (<i4) or uint8 (|u1)` +
        (descr.includes('f2') ? '; save float16/bfloat16 arrays as float32' : ''),
      file,
    );
  }
  // '=' is native order, which numpy never writes to files; treat it as little-endian.
  return { kind, little: m[1] !== '>' };
}

/** Parses the bytes of a .npy file. The result owns fresh, aligned memory. */
export function parseNpy(bytes: Uint8Array, file?: string): NpyArray {
  if (bytes.length < 10 || !MAGIC.equals(Buffer.from(bytes.buffer, bytes.byteOffset, 6))) {
    throw new NpyError('not a .npy file (missing the \\x93NUMPY magic)', file);
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new NpyError('truncated .npy header', file);
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new NpyError(`unsupported .npy format version ${major}.${bytes[7]} (1.0, 2.0 and 3.0 are supported)`, file);
  }
  if (start + headerLen > bytes.length) throw new NpyError('truncated .npy header', file);
  const header = Buffer.from(bytes.buffer, bytes.byteOffset + start, headerLen).toString(major === 3 ? 'utf8' : 'latin1');
  const { descr, fortran, shape } = parseHeader(header, file);
  if (fortran) {
    throw new NpyError(
      'fortran_order arrays are not supported: save a C-order array (numpy.ascontiguousarray(a) before numpy.save)',
      file,
    );
  }
  const { kind, little } = kindOf(descr, file);
  const info = KINDS[kind];
  let count = 1;
  for (const d of shape) count *= d;
  const offset = start + headerLen;
  const need = count * info.bytes;
  if (bytes.length - offset < need) {
    throw new NpyError(
      `truncated .npy data: shape (${shape.join(', ')}) of ${descr} needs ${need} bytes, file has ${bytes.length - offset}`,
      file,
    );
  }
  if (bytes.length - offset > need) {
    throw new NpyError(`.npy file has ${bytes.length - offset - need} bytes after the data of shape (${shape.join(', ')})`, file);
  }
  const data = new info.ctor(count);
  const src = bytes.subarray(offset, offset + need);
  new Uint8Array(data.buffer).set(src);
  if (info.bytes > 1 && little !== isLittleEndianHost()) swapBytes(new Uint8Array(data.buffer), info.bytes);
  return { data, shape, dtype: info.dtype, descr };
}

function isLittleEndianHost(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

function swapBytes(bytes: Uint8Array, width: number): void {
  for (let i = 0; i < bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

const DESCR_OF: Readonly<Record<string, string>> = {
  Float32Array: '<f4',
  Float64Array: '<f8',
  BigInt64Array: '<i8',
  Int32Array: '<i4',
  Uint8Array: '|u1',
};

/**
 * Serialises C-order data of the given shape as a .npy file (version 1.0, or 2.0 when
 * the header does not fit 1.0). The element type follows the typed array: Float32Array
 * is written as <f4 (also for bfloat16/float16 tensors), BigInt64Array as <i8, etc.
 */
export function formatNpy(data: TensorData, shape: readonly number[]): Buffer {
  const name = Object.getPrototypeOf(data)?.constructor?.name as string;
  const descr = DESCR_OF[name];
  if (descr === undefined) throw new NpyError(`cannot write a ${name} to .npy`);
  let count = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new NpyError(`invalid shape [${shape.join(', ')}]`);
    count *= d;
  }
  if (count !== data.length) {
    throw new NpyError(`shape [${shape.join(', ')}] needs ${count} elements but data has ${data.length}`);
  }
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${tuple}, }`;
  let major = 1;
  let prefix = 10;
  let total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  if (total - prefix > 0xffff) {
    major = 2;
    prefix = 12;
    total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  }
  const header = dict + ' '.repeat(total - prefix - dict.length - 1) + '\n';
  const out = Buffer.alloc(total + data.byteLength);
  MAGIC.copy(out, 0);
  out[6] = major;
  out[7] = 0;
  if (major === 1) out.writeUInt16LE(header.length, 8);
  else out.writeUInt32LE(header.length, 8);
  out.write(header, prefix, 'latin1');
  const body = new Uint8Array(out.buffer, out.byteOffset + total, data.byteLength);
  body.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (!isLittleEndianHost() && data.BYTES_PER_ELEMENT > 1) swapBytes(body, data.BYTES_PER_ELEMENT);
  return out;
}

/** Reads a .npy file. */
export function readNpy(file: string): NpyArray {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new NpyError(`cannot read: ${(err as Error).message}`, file);
  }
  return parseNpy(bytes, file);
}

/** Writes a .npy file (see formatNpy). */
export function writeNpy(file: string, data: TensorData, shape: readonly number[]): void {
  fs.writeFileSync(file, formatNpy(data, shape));
}

/** The .npy dtype a tensor dtype is stored as (bfloat16/float16 as float32). */
export function npyDTypeFor(dtype: DType): NpyArray['dtype'] {
  return dtype === 'bfloat16' || dtype === 'float16' ? 'float32' : dtype;
}
