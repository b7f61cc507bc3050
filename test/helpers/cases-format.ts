/**
 * Test-side reader/writer of the smoothce-cases format (python/README.md) and the
 * comparison rule of torch.testing.assert_close, written independently of lib/parity so
 * that the golden and oracle suites do not trust the code they check.
 */
import type { CrossEntropyOptions, CrossEntropyResult, DType, Tensor } from '../../lib/index';

/** A tensor as written in a case file (inline JSON data only; the fixtures have no .npy). */
export interface CaseTensor {
  dtype: string;
  shape: number[];
  data: Array<number | string>;
}

export interface CaseOptions {
  reduction: 'mean' | 'sum' | 'none';
  ignore_index: number | string;
  label_smoothing: number | string;
}

export interface CaseExpectedValues {
  loss: CaseTensor;
  grad_input: CaseTensor | null;
}

export interface CaseExpectedError {
  error: { type: 'IndexError' | 'RuntimeError' | 'ValueError'; message: string };
}

export interface Case {
  name: string;
  input: CaseTensor;
  target: CaseTensor;
  weight: CaseTensor | null;
  options: CaseOptions;
  grad_output: CaseTensor | null;
  expected: CaseExpectedValues | CaseExpectedError;
  deviation?: string;
}

export interface CaseFile {
  format: 'smoothce-cases';
  version: 1;
  torch: string;
  generator: string;
  cases: Case[];
}

export const isErrorCase = (c: Case): c is Case & { expected: CaseExpectedError } => 'error' in c.expected;

/** A JSON number or one of the strings "NaN", "Infinity", "-Infinity". */
export function decodeFloat(v: number | string): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  throw new Error(`not a float in a case file: ${JSON.stringify(v)}`);
}

/** int64 values: JSON numbers, or decimal strings beyond 2^53. */
export function decodeInt(v: number | string): bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error(`not an integer in a case file: ${v}`);
    return BigInt(v);
  }
  if (!/^-?\d+$/.test(v)) throw new Error(`not an integer in a case file: ${JSON.stringify(v)}`);
  return BigInt(v);
}

export function encodeFloat(v: number): number | string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return v;
}

/** A case tensor as a smoothce tensor (bfloat16/float16 as Float32Array data). */
export function toTensor(t: CaseTensor): Tensor {
  const n = t.data.length;
  let data: Tensor['data'];
  switch (t.dtype) {
    case 'float64':
      data = Float64Array.from(t.data, decodeFloat);
      break;
    case 'float32':
    case 'bfloat16':
    case 'float16':
      data = Float32Array.from(t.data, decodeFloat);
      break;
    case 'int64':
      data = new BigInt64Array(n);
      for (let i = 0; i < n; i++) (data as BigInt64Array)[i] = decodeInt(t.data[i]);
      break;
    case 'int32':
      data = Int32Array.from(t.data, (v) => Number(decodeInt(v)));
      break;
    case 'uint8':
      data = Uint8Array.from(t.data, (v) => Number(decodeInt(v)));
      break;
    default:
      throw new Error(`unknown dtype in case file: ${t.dtype}`);
  }
  return { data, shape: [...t.shape], dtype: t.dtype as DType };
}

/** A smoothce tensor (or typed array + shape) as a case tensor. */
export function fromTensor(t: Tensor): CaseTensor {
  const data =
    t.data instanceof BigInt64Array
      ? Array.from(t.data, (v) => (v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v.toString()))
      : Array.from(t.data as ArrayLike<number>, encodeFloat);
  return { dtype: t.dtype, shape: [...t.shape], data };
}

/**
 * The crossEntropy call a case describes. A weight that is not 1-D cannot be a smoothce
 * weight (a list of numbers): it is passed as nested arrays, which smoothce must reject.
 */
export function callArgs(c: Case, grad: boolean): { input: Tensor; target: Tensor; options: CrossEntropyOptions } {
  const options: CrossEntropyOptions = {
    reduction: c.options.reduction,
    labelSmoothing: decodeFloat(c.options.label_smoothing),
  };
  const ig = decodeInt(c.options.ignore_index);
  options.ignoreIndex = ig >= -(2n ** 53n) && ig <= 2n ** 53n ? Number(ig) : ig;
  if (c.weight) {
    if (c.weight.shape.length === 1) {
      options.weight = toTensor(c.weight).data as Float32Array | Float64Array;
    } else {
      const flat = c.weight.data.map(decodeFloat);
      const rows = c.weight.shape[0] ?? 1;
      const cols = rows === 0 ? 0 : flat.length / rows;
      options.weight = Array.from({ length: rows }, (_, i) => flat.slice(i * cols, (i + 1) * cols)) as unknown as number[];
    }
  }
  if (grad) {
    options.grad = true;
    if (c.grad_output) {
      const g = toTensor(c.grad_output);
      // smoothce takes float32/float64 upstream gradients (cast to the loss dtype natively).
      if (g.dtype === 'bfloat16' || g.dtype === 'float16') g.dtype = 'float32';
      options.gradOutput = c.grad_output.shape.length === 0 ? Number(g.data[0]) : g;
    }
  }
  return { input: toTensor(c.input), target: toTensor(c.target), options };
}

// ---------------------------------------------------------------------------------
// comparison

export interface Tolerance {
  rtol: number;
  atol: number;
  /** Extra relative bound (float64: 1e-10), with a tiny absolute floor. */
  strictRel?: number;
}

/** torch.testing.assert_close's defaults, plus the 1e-10 relative bound asked of float64. */
export const TOLERANCES: Record<string, Tolerance> = {
  float64: { rtol: 1e-7, atol: 1e-7, strictRel: 1e-10 },
  float32: { rtol: 1.3e-6, atol: 1e-5 },
  bfloat16: { rtol: 1.6e-2, atol: 1e-5 },
  float16: { rtol: 1e-3, atol: 1e-5 },
};

/** Absolute floor under the strict float64 relative bound (values of ~1e-17 are noise). */
export const STRICT_ABS_FLOOR = 1e-14;

export interface Mismatch {
  index: number;
  actual: number;
  expected: number;
  why: string;
}

/** First elements that break |a − e| ≤ atol + rtol·|e| (NaN == NaN, infinities by sign, -0 vs +0 if signedZero). */
export function compareArrays(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  signedZero = false,
  limit = 5,
): Mismatch[] {
  const out: Mismatch[] = [];
  if (actual.length !== expected.length) {
    return [{ index: -1, actual: actual.length, expected: expected.length, why: 'length differs' }];
  }
  for (let i = 0; i < expected.length && out.length < limit; i++) {
    const a = actual[i];
    const e = expected[i];
    let why = '';
    if (Number.isNaN(e)) {
      if (!Number.isNaN(a)) why = 'expected NaN';
    } else if (!Number.isFinite(e)) {
      if (a !== e) why = `expected ${e}`;
    } else if (!Number.isFinite(a)) {
      why = 'not finite';
    } else {
      const d = Math.abs(a - e);
      if (d > tol.atol + tol.rtol * Math.abs(e)) why = `|diff| ${d.toExponential(3)} > atol + rtol·|e|`;
      else if (tol.strictRel !== undefined && d > tol.strictRel * Math.abs(e) + STRICT_ABS_FLOOR) {
        why = `relative diff ${(d / Math.abs(e)).toExponential(3)} > ${tol.strictRel}`;
      } else if (signedZero && e === 0 && a === 0 && Object.is(e, -0) !== Object.is(a, -0)) {
        why = 'sign of zero differs';
      }
    }
    if (why) out.push({ index: i, actual: a, expected: e, why });
  }
  return out;
}

export function describeMismatches(what: string, m: Mismatch[]): string {
  return m.map((x) => `${what}[${x.index}]: got ${x.actual}, expected ${x.expected} (${x.why})`).join('; ');
}

/** Maximum absolute difference between finite pairs (for summaries). */
export function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < expected.length; i++) {
    if (Number.isFinite(expected[i]) && Number.isFinite(actual[i])) m = Math.max(m, Math.abs(actual[i] - expected[i]));
  }
  return m;
}

// ---------------------------------------------------------------------------------
// checking a crossEntropy result against a case

function flat(t: number | Tensor): Float64Array {
  if (typeof t === 'number') return Float64Array.of(t);
  return Float64Array.from(t.data as ArrayLike<number>);
}

/** Checks a result against the expectation; returns a list of problems (empty = pass). */
export function checkResult(c: Case, r: CrossEntropyResult): string[] {
  const exp = c.expected as CaseExpectedValues;
  const problems: string[] = [];
  const lossT = toTensor(exp.loss);
  const loss = r.loss;
  if (c.options.reduction === 'none') {
    if (typeof loss === 'number') return ['loss is a number for reduction none'];
    if (JSON.stringify(loss.shape) !== JSON.stringify(exp.loss.shape)) {
      problems.push(`loss shape ${JSON.stringify(loss.shape)} != ${JSON.stringify(exp.loss.shape)}`);
    }
    const wantDType = exp.loss.dtype === 'float64' ? 'float64' : 'float32';
    if (loss.dtype !== wantDType) problems.push(`loss dtype ${loss.dtype} != ${wantDType}`);
  } else if (typeof loss !== 'number') {
    problems.push(`loss is not a number for reduction ${c.options.reduction}`);
  }
  const lm = compareArrays(flat(loss), flat(lossT), TOLERANCES[exp.loss.dtype], true);
  if (lm.length) problems.push(describeMismatches('loss', lm));
  if (exp.grad_input) {
    if (!r.grad) {
      problems.push('no grad returned');
    } else {
      if (JSON.stringify(r.grad.shape) !== JSON.stringify(exp.grad_input.shape)) {
        problems.push(`grad shape ${JSON.stringify(r.grad.shape)} != ${JSON.stringify(exp.grad_input.shape)}`);
      }
      const gm = compareArrays(flat(r.grad), flat(toTensor(exp.grad_input)), TOLERANCES[exp.grad_input.dtype], false);
      if (gm.length) problems.push(describeMismatches('grad', gm));
    }
  }
  return problems;
}

