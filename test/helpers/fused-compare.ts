/** Agreement of two crossEntropy results (impl 'fused' vs 'aten'), as asked of the fused kernel. */
import type { CrossEntropyResult } from '../../lib/index';
import { compareArrays, describeMismatches, type Tolerance } from './cases-format';

/** float64: 1e-12 relative (absolute floor 1e-14 × the largest magnitude); float32: assert_close. */
export function tolerance(dtype: string, scale: number): Tolerance {
  if (dtype === 'float64') return { rtol: 1e-12, atol: 1e-14 * Math.max(1, scale) };
  return { rtol: 1.3e-6, atol: 1e-5 };
}

function flat(v: number | { data: ArrayLike<number> }): Float64Array {
  return typeof v === 'number' ? Float64Array.of(v) : Float64Array.from(v.data);
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (const v of a) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

export function compareResults(got: CrossEntropyResult, want: CrossEntropyResult, dtype: string): string[] {
  const out: string[] = [];
  const gl = flat(got.loss), wl = flat(want.loss);
  const lm = compareArrays(gl, wl, tolerance(dtype, maxAbs(wl)));
  if (lm.length) out.push(describeMismatches('loss', lm));
  if (typeof got.loss !== typeof want.loss) out.push('loss kinds differ');
  if (typeof got.loss !== 'number' && typeof want.loss !== 'number') {
    if (JSON.stringify(got.loss.shape) !== JSON.stringify(want.loss.shape)) out.push('loss shapes differ');
    if (got.loss.dtype !== want.loss.dtype) out.push(`loss dtype ${got.loss.dtype} != ${want.loss.dtype}`);
  }
  if (!!got.grad !== !!want.grad) out.push(`grad ${got.grad ? 'present' : 'absent'}, expected ${want.grad ? 'present' : 'absent'}`);
  if (got.grad && want.grad) {
    if (JSON.stringify(got.grad.shape) !== JSON.stringify(want.grad.shape)) out.push('grad shapes differ');
    if (got.grad.dtype !== want.grad.dtype) out.push(`grad dtype ${got.grad.dtype} != ${want.grad.dtype}`);
    const gg = flat(got.grad), wg = flat(want.grad);
    const gm = compareArrays(gg, wg, tolerance(dtype, maxAbs(wg)));
    if (gm.length) out.push(describeMismatches('grad', gm));
  }
  return out;
}
