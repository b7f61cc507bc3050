/**
 * Reading parity cases from parsed JSON (or objects with typed arrays): the JSON schema
 * first (case-validate.ts), then the values and what a schema cannot say. Any problem is
 * a CaseFormatError that names the file, the case and the field.
 */
import * as path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { editDistance } from '../core/options';
import { DTYPES, isDType, numel, type DType, type Tensor, type TensorData } from '../core/tensor';
import type { Reduction } from '../core/options';
import { caseFileValidator, caseValidator, schemaProblem, tensorValidator } from './case-validate';
import { CASE_FORMAT, CASE_FORMAT_VERSION, CaseFormatError, type CaseFile, type CaseOptions, type CaseTensor, type ParityCase } from './case-types';
import { npyDTypeFor, NpyError, readNpy } from './npy';

interface Ctx {
  file?: string;
  baseDir: string;
  caseName?: string;
  caseIndex?: number;
}

function where(ctx: Ctx, field: string): string {
  const parts: string[] = [];
  if (ctx.file) parts.push(ctx.file);
  if (ctx.caseIndex !== undefined) {
    const name = ctx.caseName !== undefined && ctx.caseName.length > 80 ? `${ctx.caseName.slice(0, 80)}…` : ctx.caseName;
    parts.push(name !== undefined ? `case "${name}" (#${ctx.caseIndex})` : `case #${ctx.caseIndex}`);
  }
  if (field) parts.push(field);
  return parts.join(': ');
}

function fail(ctx: Ctx, field: string, message: string): never {
  throw new CaseFormatError(`${where(ctx, field)}: ${message}`, ctx.file, ctx.caseName, field || undefined);
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function own(o: Record<string, unknown>, k: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
}

/** A key of a case outside `known` is free metadata unless it looks like a misspelling of a known key. */
function checkNearMisses(o: Record<string, unknown>, known: readonly string[], ctx: Ctx): void {
  for (const key of Object.keys(o)) {
    if (known.includes(key)) continue;
    const near = nearKey(key, known);
    if (near) fail(ctx, key, `unknown key (did you mean "${near}"?); known keys: ${known.join(', ')}`);
  }
}

/** The known key nearest to `key`, if it looks like a misspelling of one. */
function nearKey(key: string, known: readonly string[]): string | undefined {
  const norm = key.toLowerCase().replace(/[-_]/g, '');
  return known.find((k) => editDistance(norm, k.toLowerCase().replace(/[-_]/g, '')) <= 2);
}

/**
 * A JSON-shaped view of `v` for the schema: typed arrays (cases built in memory) stand in as
 * empty arrays; their length and class are checked while reading. Arrays of plain values are
 * passed as they are (not copied).
 */
function schemaView(v: unknown): unknown {
  if (ArrayBuffer.isView(v)) return [];
  if (Array.isArray(v)) return v.some((x) => x !== null && typeof x === 'object' && !Array.isArray(x)) ? v.map(schemaView) : v;
  if (isPlainObject(v)) {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) o[k] = schemaView(v[k]);
    return o;
  }
  return v;
}

/**
 * Validates against the JSON Schema (lib/parity/case-schema.ts); on failure throws a
 * CaseFormatError naming the file, the case and the field. `cases` is the file's case list
 * when validating a whole file (to name the case), `ctx` the case when validating one.
 */
function checkSchema(v: unknown, validate: ValidateFunction, ctx: Ctx, prefix = ''): void {
  if (validate(schemaView(v))) return;
  const p = schemaProblem(validate.errors ?? []);
  let rest = p.path;
  let at = ctx;
  if (rest[0] === 'cases' && rest.length > 1 && /^\d+$/.test(rest[1])) {
    const index = Number(rest[1]);
    const c = (v as { cases: unknown[] }).cases[index];
    const name = isPlainObject(c) && typeof c.name === 'string' && c.name !== '' ? c.name : undefined;
    at = { ...ctx, caseIndex: index, caseName: name };
    rest = rest.slice(2);
  }
  const field = rest.reduce((f, seg) => (/^\d+$/.test(seg) ? `${f}[${seg}]` : f ? `${f}.${seg}` : seg), prefix);
  if (p.unknownKey) {
    const near = nearKey(p.unknownKey.key, p.unknownKey.known);
    fail(at, field, `unknown key${near ? ` (did you mean "${near}"?)` : ''}; known keys: ${p.unknownKey.known.join(', ')}`);
  }
  fail(at, field, `expected ${p.expected}, got ${show(p.value)}`);
}

// ---------------------------------------------------------------------------------------
// Reading (after the schema: the values, and what a schema cannot say)

const NONFINITE: Readonly<Record<string, number>> = {
  NaN: NaN,
  nan: NaN,
  Infinity: Infinity,
  '+Infinity': Infinity,
  inf: Infinity,
  '+inf': Infinity,
  '-Infinity': -Infinity,
  '-inf': -Infinity,
};

function readFloat(v: unknown, ctx: Ctx, field: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(NONFINITE, v)) return NONFINITE[v];
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v); // a large integer literal kept as text by parseJson
  return fail(ctx, field, `expected a number or "NaN", "Infinity", "-Infinity", got ${show(v)}`);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function readInt64(v: unknown, ctx: Ctx, field: string): bigint {
  let b: bigint | undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
  else if (typeof v === 'string' && v.length > 40 && /^\s*[+-]?\d+\s*$/.test(v)) {
    fail(ctx, field, `${show(v)} is outside the int64 range`); // not parsed: a hostile file could make it megabytes long
  } else if (typeof v === 'string' && /^[+-]?\d+$/.test(v.trim())) b = BigInt(v.trim());
  if (b === undefined) {
    return fail(ctx, field, `expected an integer (a number, or a decimal string beyond 2^53), got ${show(v)}`);
  }
  if (b < INT64_MIN || b > INT64_MAX) fail(ctx, field, `${v} is outside the int64 range`); // v is short here
  return b;
}

function readShape(v: unknown, ctx: Ctx, field: string): number[] {
  const shape = (v as number[]).slice(); // the schema checked: an array of non-negative integers
  if (shape.length > 64) fail(ctx, field, `expected at most 64 dimensions, got ${shape.length}`);
  // A product past 2^53 would lose precision (or overflow to Infinity, and NaN with a 0).
  let n = 1;
  for (const d of shape) {
    if (d !== 0 && n > Number.MAX_SAFE_INTEGER / d) fail(ctx, field, `shape [${shape.join(', ')}] has more than 2^53 elements`);
    if (d !== 0) n *= d;
  }
  return shape;
}

/** Flattens `data` (flat, nested to `shape`, or a bare scalar for a 0-d tensor) in C order. */
function flatten(data: unknown, shape: number[], ctx: Ctx, field: string): unknown[] {
  const n = numel(shape);
  if (!Array.isArray(data)) {
    if (shape.length === 0 && (typeof data === 'number' || typeof data === 'string')) return [data];
    fail(ctx, field, `expected an array, got ${show(data)}`);
  }
  if (data.length === n && !data.some(Array.isArray)) return data;
  if (shape.length > 1 && data.some(Array.isArray)) {
    const out: unknown[] = [];
    const walk = (node: unknown, dim: number, at: string): void => {
      if (dim === shape.length) {
        if (Array.isArray(node)) fail(ctx, at, `nested deeper than the shape [${shape.join(', ')}]`);
        out.push(node);
        return;
      }
      if (!Array.isArray(node) || node.length !== shape[dim]) {
        fail(ctx, at, `expected ${shape[dim]} entries along dimension ${dim} of shape [${shape.join(', ')}], got ${show(node)}`);
      }
      node.forEach((child, i) => walk(child, dim + 1, `${at}[${i}]`));
    };
    walk(data, 0, field);
    return out;
  }
  return fail(ctx, field, `shape [${shape.join(', ')}] needs ${n} values but data has ${data.length}`);
}

function toTyped(values: unknown[], dtype: DType, ctx: Ctx, field: string): TensorData {
  const n = values.length;
  switch (dtype) {
    case 'int64': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = readInt64(values[i], ctx, `${field}[${i}]`);
      return out;
    }
    case 'int32':
    case 'uint8': {
      const [lo, hi] = dtype === 'int32' ? [-(2 ** 31), 2 ** 31 - 1] : [0, 255];
      const out = dtype === 'int32' ? new Int32Array(n) : new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
          fail(ctx, `${field}[${i}]`, `expected an integer in [${lo}, ${hi}] for ${dtype}, got ${show(v)}`);
        }
        out[i] = v;
      }
      return out;
    }
    default: {
      const out = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = readFloat(values[i], ctx, `${field}[${i}]`);
      return out;
    }
  }
}

/**
 * Reads one tensor the schema has checked: inline JSON ({dtype, shape, data}), a .npy
 * reference ({dtype, shape, npy}), or an already-typed tensor ({data: TypedArray, shape, dtype}).
 * A dtype smoothce does not have (allowed only in cases that expect an error) keeps its name,
 * with empty data, so that replaying it fails.
 */
function readTensor(v: unknown, ctx: Ctx, field: string): CaseTensor {
  const t = v as { dtype: string; shape: number[]; data?: unknown; npy?: string };
  const shape = readShape(t.shape, ctx, `${field}.shape`);
  const dtype = t.dtype;
  if (!isDType(dtype)) return { data: new Float64Array(0), shape, dtype };
  if (t.npy !== undefined) return readNpyTensor(t.npy, dtype, shape, ctx, field);
  const data = t.data;
  if (ArrayBuffer.isView(data)) {
    const name = Object.getPrototypeOf(data)?.constructor?.name;
    if (name !== DTYPES[dtype].array) fail(ctx, `${field}.data`, `expected a ${DTYPES[dtype].array} for ${dtype}, got a ${name}`);
    const typed = data as TensorData;
    if (typed.length !== numel(shape)) {
      fail(ctx, `${field}.data`, `shape [${shape.join(', ')}] needs ${numel(shape)} values but data has ${typed.length}`);
    }
    return { data: typed, shape, dtype };
  }
  const values = flatten(data, shape, ctx, `${field}.data`);
  return { data: toTyped(values, dtype, ctx, `${field}.data`), shape, dtype };
}

function readNpyTensor(ref: unknown, dtype: DType, shape: number[], ctx: Ctx, field: string): CaseTensor {
  if (typeof ref !== 'string' || ref === '') fail(ctx, `${field}.npy`, `expected a path relative to the case file, got ${show(ref)}`);
  // A case file may come from elsewhere: it reads .npy files beside it or below, never
  // an absolute path or one that climbs out of its folder (docs/security.md).
  const rel = path.relative(ctx.baseDir, path.resolve(ctx.baseDir, ref));
  if (path.isAbsolute(ref) || rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel) || ref.includes('\0')) {
    fail(ctx, `${field}.npy`, `expected a path inside the case file's folder, got ${show(ref)}`);
  }
  const file = path.resolve(ctx.baseDir, ref);
  let arr;
  try {
    arr = readNpy(file);
  } catch (err) {
    if (err instanceof NpyError) fail(ctx, `${field}.npy`, err.message);
    throw err;
  }
  const want = npyDTypeFor(dtype);
  if (arr.dtype !== want) {
    fail(ctx, `${field}.npy`, `${ref} holds ${arr.dtype} (${arr.descr}) but ${dtype} is stored as ${want}`);
  }
  if (arr.shape.length !== shape.length || arr.shape.some((d, i) => d !== shape[i])) {
    fail(ctx, `${field}.npy`, `${ref} has shape [${arr.shape.join(', ')}] but the case says [${shape.join(', ')}]`);
  }
  return { data: arr.data, shape, dtype };
}

function readOptionsBlock(v: unknown, ctx: Ctx): CaseOptions {
  const o = (v ?? {}) as { reduction?: Reduction; ignore_index?: unknown; label_smoothing?: unknown };
  const reduction = o.reduction ?? 'mean';
  const ig = o.ignore_index;
  const ignoreIndex = ig === undefined || ig === null ? -100n : readInt64(ig, ctx, 'options.ignore_index');
  let eps = o.label_smoothing;
  if (typeof eps === 'boolean') eps = eps ? 1 : 0; // PyTorch converts a Python bool to double
  const labelSmoothing = eps === undefined || eps === null ? 0 : readFloat(eps, ctx, 'options.label_smoothing');
  return { reduction, ignoreIndex, labelSmoothing };
}

function readExpected(v: unknown, ctx: Ctx, input: CaseTensor): ParityCase['expected'] {
  const e = v as { error?: { type: string; message: string }; loss?: unknown; grad_input?: unknown };
  if (e.error !== undefined) return { error: { type: e.error.type, message: e.error.message } };
  const lossRaw = e.loss;
  let loss: CaseTensor;
  if (typeof lossRaw === 'number' || typeof lossRaw === 'string') {
    const dtype = isDType(input.dtype) && DTYPES[input.dtype].float ? input.dtype : 'float64';
    loss = { data: toTyped([lossRaw], dtype, ctx, 'expected.loss'), shape: [], dtype };
  } else {
    loss = readTensor(lossRaw, ctx, 'expected.loss');
  }
  const g = e.grad_input;
  const gradInput = g === undefined || g === null ? null : readTensor(g, ctx, 'expected.grad_input');
  if (gradInput && (gradInput.shape.length !== input.shape.length || gradInput.shape.some((d, i) => d !== input.shape[i]))) {
    fail(ctx, 'expected.grad_input.shape', `[${gradInput.shape.join(', ')}] differs from the input's [${input.shape.join(', ')}]`);
  }
  return { loss, gradInput };
}

const CASE_KEYS = ['name', 'input', 'target', 'weight', 'options', 'grad_output', 'expected', 'deviation'] as const;

/** Validates one case (JSON form, or with typed arrays in place of the data lists). */
export function parseCase(v: unknown, options: { file?: string; baseDir?: string; index?: number } = {}): ParityCase {
  const ctx: Ctx = {
    file: options.file,
    baseDir: options.baseDir ?? (options.file ? path.dirname(path.resolve(options.file)) : process.cwd()),
    caseIndex: options.index ?? 0,
  };
  if (isPlainObject(v) && typeof v.name === 'string' && v.name !== '') ctx.caseName = v.name;
  checkSchema(v, caseValidator(), ctx);
  return readCase(v as Record<string, unknown>, ctx);
}

/** Reads a case the schema has checked. */
function readCase(v: Record<string, unknown>, ctx: Ctx): ParityCase {
  const name = v.name as string;
  checkNearMisses(v, CASE_KEYS, ctx);
  const input = readTensor(v.input, ctx, 'input');
  const target = readTensor(v.target, ctx, 'target');
  const w = own(v, 'weight');
  const weight = w === undefined || w === null ? null : readTensor(w, ctx, 'weight');
  const opts = readOptionsBlock(own(v, 'options'), ctx);
  const go = own(v, 'grad_output');
  let gradOutput: ParityCase['gradOutput'] = null;
  if (typeof go === 'number' || typeof go === 'string') gradOutput = readFloat(go, ctx, 'grad_output');
  else if (go !== undefined && go !== null) gradOutput = readTensor(go, ctx, 'grad_output');
  const expected = readExpected(v.expected, ctx, input);
  const dev = own(v, 'deviation');
  const out: ParityCase = { name, input, target, weight, options: opts, gradOutput, expected };
  if (typeof dev === 'string') out.deviation = dev;
  return out;
}

/**
 * Validates a whole case file: `{ "format": "smoothce-cases", "version": 1, "cases": [...] }`
 * or a bare `{ "cases": [...] }`. `file` is used in messages and to resolve .npy paths.
 */
export function parseCaseFile(v: unknown, options: { file?: string; baseDir?: string } = {}): CaseFile {
  const ctx: Ctx = { file: options.file, baseDir: options.baseDir ?? process.cwd() };
  checkSchema(v, caseFileValidator(), ctx);
  const f = v as { version?: number; torch?: string | null; cases: Record<string, unknown>[] };
  const version = f.version ?? CASE_FORMAT_VERSION;
  if (version > CASE_FORMAT_VERSION) {
    fail(ctx, 'version', `this smoothce reads case format version ${CASE_FORMAT_VERSION}; the file is version ${version} (upgrade smoothce)`);
  }
  const seen = new Set<string>();
  const parsed = f.cases.map((c, index) => {
    const pc = readCase(c, { ...ctx, caseIndex: index, caseName: c.name as string });
    if (seen.has(pc.name)) fail({ ...ctx, caseIndex: index, caseName: pc.name }, 'name', 'duplicate case name in this file');
    seen.add(pc.name);
    return pc;
  });
  const out: CaseFile = { format: CASE_FORMAT, version, cases: parsed };
  if (typeof f.torch === 'string') out.torch = f.torch;
  if (options.file) out.source = options.file;
  return out;
}

/** Whether parsed JSON looks like a case file (used to skip other JSON files in a directory). */
export function looksLikeCaseFile(v: unknown): boolean {
  return isPlainObject(v) && (own(v, 'format') === CASE_FORMAT || Array.isArray(own(v, 'cases')));
}

/** A case tensor as a smoothce Tensor (throws TypeError for dtypes smoothce does not have). */
export function asTensor(t: CaseTensor): Tensor {
  return t as Tensor;
}

/**
 * Validates one tensor in case-file form ({dtype, shape, data} or {dtype, shape, npy}
 * relative to `baseDir`) or as a smoothce Tensor; `field` names it in errors.
 */
export function parseTensor(v: unknown, field = 'tensor', baseDir = process.cwd()): CaseTensor {
  checkSchema(v, tensorValidator(), { baseDir }, field);
  return readTensor(v, { baseDir }, field);
}
