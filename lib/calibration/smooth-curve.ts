/**
 * The smooth reliability curve (kernel-smoothed calibration curve on a 200-point mesh) and its bootstrap band,
 * from the SmoothECE grids of ./smooth-ece.
 */
import { Rng } from '../demo/rng';
import { linspace01, smoothAt, gridFromArrays, emptyGrid, addToGrid, ROWS_PER_STEP, gridSize, EPS_DENSITY, type Grid } from './smooth-ece';

/** Points of the smooth reliability curve (relplot's prepare_rel_diagram mesh of 200 points). */
export const CURVE_POINTS = 200;

export interface SmoothCurve {
  /** The mesh, CURVE_POINTS points on [0, 1]. */
  x: number[];
  /** E[correct | confidence = x]: x minus the smoothed residual (relplot's centred kernel regression). */
  y: number[];
  /** Kernel density of the confidences at x (integrates to about 1). */
  density: number[];
  /** The bandwidth the curve was smoothed with (the SmoothECE bandwidth). */
  bandwidth: number;
  /** 2.5% and 97.5% bootstrap quantiles of y at each x, when a bootstrap was asked for. */
  lower?: number[];
  upper?: number[];
  /** How many bootstrap resamples made the band (0: no band). */
  bootstrap: number;
}

/** The smooth reliability curve from a grid of size gridSize(bandwidth) holding n rows. */
export function* curveFromGrid(g: Grid, bandwidth: number, n: number): Generator<void, Pick<SmoothCurve, 'x' | 'y' | 'density'>> {
  const t = linspace01(CURVE_POINTS);
  const s = yield* smoothAt(g, bandwidth, t);
  const x = Array.from(t);
  return {
    x,
    y: x.map((ti, j) => ti - s.residual[j] / (s.density[j] + EPS_DENSITY)),
    density: x.map((_, j) => s.density[j] / n),
  };
}

/**
 * The curve with a bootstrap band: `resamples` resamples of the rows with replacement (seeded,
 * so reproducible), each smoothed at the same bandwidth; the band is the 2.5% and 97.5%
 * quantiles at each mesh point. Costs O(resamples · N).
 */
export function* smoothCurveSteps(
  f: ArrayLike<number>,
  y: ArrayLike<number>,
  bandwidth: number,
  resamples: number,
  built = new Map<number, Grid>(),
  seed = 42,
): Generator<void, SmoothCurve> {
  const size = gridSize(bandwidth);
  const n = f.length;
  const main = yield* curveFromGrid(built.get(size) ?? (yield* gridFromArrays(size, f, y)), bandwidth, n);
  const out: SmoothCurve = { ...main, bandwidth, bootstrap: 0 };
  if (resamples <= 0) return out;
  const rng = new Rng(seed);
  const curves: number[][] = [];
  const idx = new Uint32Array(Math.min(n, ROWS_PER_STEP));
  const bf = new Float64Array(idx.length);
  const by = new Float64Array(idx.length);
  for (let r = 0; r < resamples; r++) {
    const g = emptyGrid(size);
    for (let s = 0; s < n; s += idx.length) {
      const m = Math.min(idx.length, n - s);
      for (let i = 0; i < m; i++) {
        const j = rng.int(0, n - 1);
        bf[i] = f[j];
        by[i] = y[j];
      }
      addToGrid(g, bf, by, 0, m);
      yield;
    }
    curves.push((yield* curveFromGrid(g, bandwidth, n)).y);
  }
  const q = (sorted: number[], p: number): number => {
    // numpy's default (linear) quantile.
    const h = (sorted.length - 1) * p;
    const lo = Math.floor(h);
    const hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
  };
  out.lower = [];
  out.upper = [];
  for (let j = 0; j < CURVE_POINTS; j++) {
    const col = curves.map((c) => c[j]).sort((a, b) => a - b);
    out.lower.push(q(col, 0.025));
    out.upper.push(q(col, 0.975));
  }
  out.bootstrap = resamples;
  return out;
}
