/**
 * Element-wise comparison with torch.testing.assert_close's rule:
 *   |actual - expected| <= atol + rtol * |expected|
 * with NaN equal to NaN and infinities equal only to the same infinity.
 */
import type { DType } from '../core/tensor';

export interface Tolerance {
  rtol: number;
  atol: number;
}

export type FloatDType = 'float32' | 'float64' | 'bfloat16' | 'float16';

/** torch.testing.assert_close's defaults per dtype. */
export const DEFAULT_TOLERANCES: Readonly<Record<FloatDType, Readonly<Tolerance>>> = Object.freeze({
  float64: Object.freeze({ rtol: 1e-7, atol: 1e-7 }),
  float32: Object.freeze({ rtol: 1.3e-6, atol: 1e-5 }),
  float16: Object.freeze({ rtol: 1e-3, atol: 1e-5 }),
  bfloat16: Object.freeze({ rtol: 1.6e-2, atol: 1e-5 }),
});

/** Tolerance overrides: one rtol/atol for every dtype, and/or per-dtype values. */
export interface ToleranceOptions {
  rtol?: number;
  atol?: number;
  tolerances?: Partial<Record<FloatDType, Partial<Tolerance>>>;
}

const LOOSENESS: Record<FloatDType, number> = { float64: 0, float32: 1, float16: 2, bfloat16: 3 };

function isFloatDType(d: unknown): d is FloatDType {
  return typeof d === 'string' && Object.prototype.hasOwnProperty.call(LOOSENESS, d);
}

/**
 * The tolerance for comparing results that involve these dtypes: that of the least
 * precise float dtype among them (float32 if none is a float dtype), then overrides.
 */
export function toleranceFor(dtypes: ReadonlyArray<DType | string | undefined>, options: ToleranceOptions = {}): Tolerance {
  let loosest: FloatDType | undefined;
  for (const d of dtypes) {
    if (isFloatDType(d) && (loosest === undefined || LOOSENESS[d] > LOOSENESS[loosest])) loosest = d;
  }
  const dt = loosest ?? 'float32';
  const per = options.tolerances?.[dt] ?? {};
  return {
    rtol: options.rtol ?? per.rtol ?? DEFAULT_TOLERANCES[dt].rtol,
    atol: options.atol ?? per.atol ?? DEFAULT_TOLERANCES[dt].atol,
  };
}

export interface Comparison {
  /** All elements close, and the shapes equal. */
  ok: boolean;
  /** Largest |actual - expected| over elements where both are finite (Infinity when a non-finite value differs). */
  maxAbs: number;
  /** Largest |actual - expected| / |expected| (Infinity where expected is 0 and actual is not). */
  maxRel: number;
  /** Number of elements outside the tolerance. */
  mismatches: number;
  /** Flat index, actual and expected of the worst element outside the tolerance. */
  worst?: { index: number; actual: number; expected: number };
  /** Why the comparison failed when it is not about values (shape). */
  reason?: string;
  tolerance: Tolerance;
}

function fmtShape(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/** Compares two C-order float arrays of the given shapes. */
export function compareArrays(
  actual: ArrayLike<number>,
  actualShape: readonly number[],
  expected: ArrayLike<number>,
  expectedShape: readonly number[],
  tolerance: Tolerance,
): Comparison {
  const sameShape = actualShape.length === expectedShape.length && actualShape.every((d, i) => d === expectedShape[i]);
  if (!sameShape || actual.length !== expected.length) {
    return {
      ok: false,
      maxAbs: NaN,
      maxRel: NaN,
      mismatches: Math.max(actual.length, expected.length),
      reason: `shape ${fmtShape(actualShape)} differs from the expected ${fmtShape(expectedShape)}`,
      tolerance,
    };
  }
  const { rtol, atol } = tolerance;
  let maxAbs = 0;
  let maxRel = 0;
  let mismatches = 0;
  let worst: Comparison['worst'];
  let worstExcess = -Infinity;
  for (let i = 0; i < expected.length; i++) {
    const a = Number(actual[i]);
    const e = Number(expected[i]);
    let abs: number;
    let close: boolean;
    if (Number.isFinite(a) && Number.isFinite(e)) {
      abs = Math.abs(a - e);
      close = abs <= atol + rtol * Math.abs(e);
      const rel = abs === 0 ? 0 : e === 0 ? Infinity : abs / Math.abs(e);
      if (rel > maxRel) maxRel = rel;
    } else {
      close = (Number.isNaN(a) && Number.isNaN(e)) || a === e;
      abs = close ? 0 : Infinity;
      if (!close) maxRel = Infinity;
    }
    if (abs > maxAbs) maxAbs = abs;
    if (!close) {
      mismatches++;
      const excess = Number.isFinite(abs) ? abs - (atol + rtol * Math.abs(e)) : Infinity;
      if (worst === undefined || excess > worstExcess) {
        worst = { index: i, actual: a, expected: e };
        worstExcess = excess;
      }
    }
  }
  return { ok: mismatches === 0, maxAbs, maxRel, mismatches, worst, tolerance };
}

/** One line describing a failed comparison. */
export function describeComparison(what: string, c: Comparison): string {
  if (c.reason) return `${what}: ${c.reason}`;
  if (c.ok) return `${what}: close (max abs ${fmtNum(c.maxAbs)}, max rel ${fmtNum(c.maxRel)})`;
  const w = c.worst!;
  return (
    `${what}: ${c.mismatches} element(s) differ beyond rtol ${fmtTol(c.tolerance.rtol)} atol ${fmtTol(c.tolerance.atol)}; ` +
    `worst at flat index ${w.index}: got ${fmtNum(w.actual)}, expected ${fmtNum(w.expected)}`
  );
}

/** A tolerance as written by hand: 1.3e-6, 0.01. */
export function fmtTol(x: number): string {
  return x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential() : String(x);
}

/** Short number formatting for reports. */
export function fmtNum(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const a = Math.abs(x);
  return a >= 1e-3 && a < 1e5 ? String(Number(x.toPrecision(6))) : x.toExponential(2);
}

/** Mantissa bits and smallest normal exponent of the reduced-precision float dtypes. */
const GRIDS: Readonly<Record<string, { mantissa: number; minExp: number; max: number }>> = {
  bfloat16: { mantissa: 7, minExp: -126, max: 3.3895313892515355e38 },
  float16: { mantissa: 10, minExp: -14, max: 65504 },
};

/** The value of `dtype` (bfloat16 or float16) nearest to x (ties away from zero). */
export function nearestInDType(x: number, dtype: 'bfloat16' | 'float16'): number {
  const g = GRIDS[dtype];
  if (!Number.isFinite(x) || x === 0) return x;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), g.minExp);
  const spacing = 2 ** (e - g.mantissa);
  const r = Math.round(Math.abs(x) / spacing) * spacing * Math.sign(x);
  return Math.abs(r) > g.max ? Math.sign(x) * Infinity : r;
}

/**
 * For a tensor declared bfloat16 or float16: the first element that is not a number of that
 * dtype (beyond the 1e-5 relative slack that decimal printing with 6 digits needs), or
 * undefined. Values PyTorch computed in that dtype are always on its grid; one that is not
 * was changed after the fact.
 */
export function offGrid(data: ArrayLike<number>, dtype: string): { index: number; value: number; nearest: number } | undefined {
  if (dtype !== 'bfloat16' && dtype !== 'float16') return undefined;
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]);
    if (!Number.isFinite(v)) continue;
    const r = nearestInDType(v, dtype);
    if (!(Math.abs(v - r) <= 1e-5 * Math.abs(v))) return { index: i, value: v, nearest: r };
  }
  return undefined;
}
