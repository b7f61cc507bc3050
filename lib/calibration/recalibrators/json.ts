/** Validation helpers for calibrator JSON (every field checked; errors name the path). */
import { inconsistent, rangeError, typeError } from '../../core/errors';

export function record(v: unknown, where: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw typeError(where, 'an object', v);
  return v as Record<string, unknown>;
}

/** An object with exactly these keys (no more, no fewer). */
export function exactKeys(v: unknown, keys: readonly string[], where: string): Record<string, unknown> {
  const o = record(v, where);
  for (const key of Object.keys(o)) {
    if (!keys.includes(key)) throw inconsistent(where, `unexpected field '${key}' (expected exactly ${keys.map((k) => `'${k}'`).join(', ') || 'no fields'})`);
  }
  for (const key of keys) {
    if (!Object.prototype.hasOwnProperty.call(o, key)) throw inconsistent(where, `missing field '${key}'`);
  }
  return o;
}

export function finite(v: unknown, where: string): number {
  if (typeof v !== 'number') throw typeError(where, 'a finite number', v);
  if (!Number.isFinite(v)) throw rangeError(where, 'a finite number', v);
  return v;
}

export function integerIn(v: unknown, lo: number, hi: number, where: string): number {
  if (typeof v !== 'number') throw typeError(where, `an integer in [${lo}, ${hi}]`, v);
  if (!Number.isInteger(v) || v < lo || v > hi) throw rangeError(where, `an integer in [${lo}, ${hi}]`, v);
  return v;
}

/** An array of finite numbers (of this length when given) as a Float64Array. */
export function numbers(v: unknown, where: string, length?: number): Float64Array {
  if (!Array.isArray(v)) throw typeError(where, length === undefined ? 'an array of finite numbers' : `an array of ${length} finite numbers`, v);
  if (length !== undefined && v.length !== length) throw rangeError(where, `an array of ${length} finite numbers`, v);
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = finite(v[i], `${where}[${i}]`);
  return out;
}

/** A parameter as it is stored: −0 becomes 0 (JSON has no −0), so a restored calibrator gives the same bits. */
export const stored = (x: number): number => x + 0;

/** A Float64Array as a JSON array of numbers (shortest round-trip form, so parsing gives the same doubles). */
export const list = (a: Float64Array): number[] => Array.from(a, stored);
