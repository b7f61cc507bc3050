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
import type { DType, TensorData } from '../core/tensor';
import { ERROR_CODES, typeError } from '../core/errors';

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
    throw new NpyError(`invalid .npy header (${what}): ${shown(text)}`, file);
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
    if (!/^\d+L?$/.test(p)) fail(`shape entry ${shown(p)} is not a non-negative integer`);
    const d = Number.parseInt(p, 10);
    if (!Number.isSafeInteger(d)) fail(`shape entry ${p} too large`);
    if (shape.length === NPY_LIMITS.maxDims) fail(`more than ${NPY_LIMITS.maxDims} dimensions`);
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

/**
 * Limits that keep a hostile file cheap: it is refused, with an NpyError, before any
 * allocation larger than the file itself. numpy's own reader refuses headers over 10,000
 * bytes unless told otherwise, and numpy 2 arrays have at most 64 dimensions.
 */
export const NPY_LIMITS = Object.freeze({
  /** Longest header accepted, in bytes. */
  maxHeaderBytes: 65_536,
  /** Most dimensions accepted. */
  maxDims: 64,
});

function shown(text: string): string {
  const s = JSON.stringify(text.trim());
  return s.length > 200 ? `${s.slice(0, 200)}…" (${text.length} characters)` : s;
}

/** What the fixed-size preamble says: the format version and where the header lies. */
function preamble(head: Uint8Array, total: number, file?: string): { major: number; start: number; headerLen: number } {
  if (head.length < 10 || !MAGIC.equals(Buffer.from(head.buffer, head.byteOffset, 6))) {
    throw new NpyError('not a .npy file (missing the \\x93NUMPY magic)', file);
  }
  const major = head[6];
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (head.length < 12) throw new NpyError('truncated .npy header', file);
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new NpyError(`unsupported .npy format version ${major}.${head[7]} (1.0, 2.0 and 3.0 are supported)`, file);
  }
  if (headerLen > NPY_LIMITS.maxHeaderBytes) {
    throw new NpyError(`.npy header of ${headerLen} bytes is longer than the limit of ${NPY_LIMITS.maxHeaderBytes} bytes`, file);
  }
  if (start + headerLen > total) {
    throw new NpyError(`truncated .npy header: it claims ${headerLen} bytes, the file has ${Math.max(0, total - start)} after the preamble`, file);
  }
  return { major, start, headerLen };
}

interface Layout {
  descr: string;
  shape: number[];
  kind: Kind;
  little: boolean;
  count: number;
  /** Byte offset of the data. */
  offset: number;
  /** Bytes of data the header claims. */
  need: number;
}

/**
 * Checks the header against the file's length (`total` bytes): the claimed data must
 * be exactly what the file holds, so nothing is allocated for a claim the file cannot back.
 */
function layout(headerBytes: Uint8Array, major: number, start: number, total: number, file?: string): Layout {
  const header = Buffer.from(headerBytes.buffer, headerBytes.byteOffset, headerBytes.byteLength).toString(major === 3 ? 'utf8' : 'latin1');
  const { descr, fortran, shape } = parseHeader(header, file);
  if (fortran) {
    throw new NpyError(
      'fortran_order arrays are not supported: save a C-order array (numpy.ascontiguousarray(a) before numpy.save)',
      file,
    );
  }
  const { kind, little } = kindOf(descr, file);
  const info = KINDS[kind];
  // The element count, refused as soon as the product of the dimensions passes 2^53 (where
  // it would lose precision), even beside a zero dimension (as numpy refuses it).
  const offset = start + headerBytes.length;
  const have = total - offset;
  const dims = `(${shape.join(', ')})`;
  let count = 1;
  for (const d of shape) {
    if (d !== 0 && count > Number.MAX_SAFE_INTEGER / d) {
      throw new NpyError(`shape ${dims} has more than 2^53 elements (its product overflows); the file has ${have} bytes of data`, file);
    }
    if (d !== 0) count *= d;
  }
  if (shape.includes(0)) count = 0;
  const need = count * info.bytes;
  if (!Number.isSafeInteger(need)) {
    throw new NpyError(`shape ${dims} of ${descr} needs more than 2^53 bytes; the file has ${have}`, file);
  }
  if (have < need) {
    throw new NpyError(`truncated .npy data: shape ${dims} of ${descr} needs ${need} bytes, file has ${have}`, file);
  }
  if (have > need) {
    throw new NpyError(`.npy file has ${have - need} bytes after the data of shape ${dims}`, file);
  }
  return { descr, shape, kind, little, count, offset, need };
}

function allocate(l: Layout, file?: string): NpyArray['data'] {
  try {
    return new KINDS[l.kind].ctor(l.count);
  } catch (err) {
    // A typed array past the engine's limit, or memory refused: still a file problem.
    throw new NpyError(`cannot hold shape (${l.shape.join(', ')}) of ${l.descr} (${l.need} bytes) in memory: ${(err as Error).message}`, file);
  }
}

function finish(l: Layout, data: NpyArray['data']): NpyArray {
  const info = KINDS[l.kind];
  if (info.bytes > 1 && l.little !== isLittleEndianHost()) swapBytes(new Uint8Array(data.buffer), info.bytes);
  return { data, shape: l.shape, dtype: info.dtype, descr: l.descr };
}

/** Parses the bytes of a .npy file. The result owns fresh, aligned memory. */
export function parseNpy(bytes: Uint8Array, file?: string): NpyArray {
  if (!(bytes instanceof Uint8Array)) throw typeError('bytes', 'a Uint8Array (or Buffer) holding a .npy file', bytes);
  if (file !== undefined && typeof file !== 'string') throw typeError('file', 'a file name (a string) for the messages', file);
  const { major, start, headerLen } = preamble(bytes.subarray(0, 12), bytes.length, file);
  const l = layout(bytes.subarray(start, start + headerLen), major, start, bytes.length, file);
  const data = allocate(l, file);
  new Uint8Array(data.buffer).set(bytes.subarray(l.offset, l.offset + l.need));
  return finish(l, data);
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
  if (!ArrayBuffer.isView(data)) throw typeError('data', 'a Float32Array, Float64Array, BigInt64Array, Int32Array or Uint8Array', data);
  if (!Array.isArray(shape)) throw typeError('shape', 'an array of dimensions', shape);
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

/** Reads `length` bytes at `position` (fewer only at the end of the file). */
function readAt(fd: number, position: number, into: Uint8Array): number {
  let done = 0;
  while (done < into.length) {
    const n = fs.readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

function fileKind(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a pipe';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Reads a .npy file. Only regular files are read (a pipe or a device such as /dev/zero is
 * refused before it is opened for reading), and the header is checked against the file's
 * size before the data is read straight into the result: peak memory is about the file's
 * size, and a header that claims more than the file holds is refused without allocating.
 */
export function readNpy(file: string): NpyArray {
  let fd: number;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new NpyError(`cannot read: ${fileKind(st)}, not a .npy file`, file);
    // O_NONBLOCK: a path swapped for a pipe after the check cannot block the open.
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (err) {
    if (err instanceof NpyError) throw err;
    throw new NpyError(`cannot read: ${(err as Error).message}`, file);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new NpyError(`cannot read: ${fileKind(st)}, not a .npy file`, file);
    const total = st.size;
    const head = new Uint8Array(Math.min(12, total));
    readAt(fd, 0, head);
    const { major, start, headerLen } = preamble(head, total, file);
    const headerBytes = new Uint8Array(headerLen);
    if (readAt(fd, start, headerBytes) < headerLen) throw new NpyError('truncated .npy header (the file shrank while read)', file);
    const l = layout(headerBytes, major, start, total, file);
    const data = allocate(l, file);
    const got = readAt(fd, l.offset, new Uint8Array(data.buffer, 0, l.need));
    if (got < l.need) throw new NpyError(`truncated .npy data: read ${got} of ${l.need} bytes (the file shrank while read)`, file);
    return finish(l, data);
  } catch (err) {
    if (err instanceof NpyError) throw err;
    throw new NpyError(`cannot read: ${(err as Error).message}`, file);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes a .npy file (see formatNpy). */
export function writeNpy(file: string, data: TensorData, shape: readonly number[]): void {
  fs.writeFileSync(file, formatNpy(data, shape));
}

/** The .npy dtype a tensor dtype is stored as (bfloat16/float16 as float32). */
export function npyDTypeFor(dtype: DType): NpyArray['dtype'] {
  return dtype === 'bfloat16' || dtype === 'float16' ? 'float32' : dtype;
}
