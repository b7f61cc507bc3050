/**
 * Pieces of the randomized crossEntropy calls that test/aten-fast.test.ts and
 * test/fused.test.ts draw alike. Each takes the caller's seeded generator and draws from
 * it in a fixed order, so a seed keeps giving the same call.
 */
import { tensor, type Tensor } from '../../lib/index';

/** Class indices for P positions over C classes, with an ignore_index drawn first and a share of positions set to it. */
export function randomClassIndices(r: () => number, C: number, P: number): { ignore: number; idx: number[] } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const ignore = pick([-100, 0, C - 1, -1]);
  const rate = pick([0, 0, 0.3, 1]);
  const idx: number[] = [];
  for (let p = 0; p < P; p++) idx.push(r() < rate ? ignore : Math.floor(r() * C));
  return { ignore, idx };
}

/** An upstream gradient: a tensor shaped like the 'none' loss, or a number for 'mean'/'sum'. */
export function randomGradOutput(r: () => number, reduction: string | undefined, lossShape: number[]): number | Tensor {
  if (reduction !== 'none') return (r() - 0.3) * 3;
  const P = lossShape.reduce((a, b) => a * b, 1);
  const g = new Float64Array(P);
  for (let p = 0; p < P; p++) g[p] = (r() - 0.3) * 3;
  return tensor(g, lossShape);
}
