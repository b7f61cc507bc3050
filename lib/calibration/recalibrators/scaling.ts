/**
 * Affine maps of the logits followed by a softmax — vector scaling softmax(w ⊙ z + b) and
 * matrix scaling softmax(W z + b) — as one model: a list of parameters θ_a, each the
 * coefficient of one feature (z_l, or the constant 1 for an intercept) in one output
 * logit u_j. The mean NLL (plus an optional L2 penalty Σ c_a θ_a²) is convex in θ; its
 * gradient and exact Hessian are computed here in float64 for the solvers.
 */
import { rangeError, typeError } from '../../core/errors';
import { logitsOf, meanNll, rowLogits, rowsPerYield, type Labeled, type Rows, type Work } from './data';
import { lbfgs, newton, type Objective, type SolveResult } from './solvers';
import type { Fitted, Settings } from './types';

export interface Layout {
  k: number;
  /** Output logit of each parameter. */
  row: Int32Array;
  /** Feature of each parameter: l < k is z_l, l = k is the intercept. */
  feat: Int32Array;
}

/** Gradient tolerance of the scaling fits: the largest |∂f/∂θ| at most 1e-10 × max(1, its value at the start). */
export const DEFAULT_GRADIENT_TOLERANCE = 1e-10;
/** Newton is used while one Hessian costs at most this many multiply-adds (N·P²/2) and P <= 512; L-BFGS beyond. */
const NEWTON_BUDGET = 1e8;

/** Writes u = θ-map of row z (length k) into u. */
function logitsInto(theta: Float64Array, layout: Layout, z: Float64Array, o: number, u: Float64Array): void {
  const { k, row, feat } = layout;
  u.fill(0);
  for (let a = 0; a < theta.length; a++) {
    const l = feat[a];
    u[row[a]] += theta[a] * (l === k ? 1 : z[o + l]);
  }
}

/** The penalised mean NLL of the model on (z, labels). */
export function objective(layout: Layout, z: Float64Array, labels: Int32Array, penalty: Float64Array | null): Objective {
  const { k, row, feat } = layout;
  const P = row.length;
  const n = labels.length;
  return {
    size: P,
    *evaluate(theta, g, h) {
      const u = new Float64Array(k);
      const x = new Float64Array(P);
      const q = new Float64Array(P);
      const chunk = rowsPerYield(h ? (P * P) / 2 : 2 * P);
      if (g) g.fill(0);
      if (h) h.fill(0);
      let f = 0;
      for (let i = 0; i < n; i++) {
        if (i > 0 && i % chunk === 0) yield;
        const o = i * k;
        logitsInto(theta, layout, z, o, u);
        let m = -Infinity;
        for (let j = 0; j < k; j++) if (u[j] > m) m = u[j];
        let s = 0;
        for (let j = 0; j < k; j++) s += Math.exp(u[j] - m);
        const lse = m + Math.log(s);
        const y = labels[i];
        f += lse - u[y];
        if (!g) continue;
        for (let a = 0; a < P; a++) {
          const j = row[a];
          const xa = feat[a] === k ? 1 : z[o + feat[a]];
          const p = Math.exp(u[j] - lse);
          g[a] += (p - (j === y ? 1 : 0)) * xa;
          x[a] = xa;
          q[a] = xa * p;
        }
        if (!h) continue;
        // H_ab += x_a x_b (δ_{row a, row b} p_{row a} − p_{row a} p_{row b}); lower triangle.
        for (let a = 0; a < P; a++) {
          const qa = q[a];
          const ra = row[a];
          const base = a * P;
          for (let b = 0; b <= a; b++) h[base + b] += (ra === row[b] ? qa * x[b] : 0) - qa * q[b];
        }
      }
      f /= n;
      if (g) for (let a = 0; a < P; a++) g[a] /= n;
      if (h) {
        for (let a = 0; a < P; a++) for (let b = 0; b <= a; b++) h[a * P + b] /= n;
        for (let a = 0; a < P; a++) for (let b = a + 1; b < P; b++) h[a * P + b] = h[b * P + a];
      }
      if (penalty) {
        for (let a = 0; a < P; a++) {
          const c = penalty[a];
          if (c === 0) continue;
          f += c * theta[a] * theta[a];
          if (g) g[a] += 2 * c * theta[a];
          if (h) h[a * P + a] += 2 * c;
        }
      }
      return f;
    },
  };
}

/** Calibrated probabilities softmax(θ-map(z)) of rows. */
export function* applyScaling(theta: Float64Array, layout: Layout, rows: Rows): Work<Float64Array> {
  const { k } = layout;
  const z = new Float64Array(k);
  const out = new Float64Array(rows.n * k);
  const u = new Float64Array(k);
  const chunk = rowsPerYield(2 * theta.length + 20 * k);
  for (let i = 0; i < rows.n; i++) {
    if (i > 0 && i % chunk === 0) yield;
    const o = i * k;
    rowLogits(rows, i, z, 0);
    logitsInto(theta, layout, z, 0, u);
    let m = -Infinity;
    for (let j = 0; j < k; j++) if (u[j] > m) m = u[j];
    let s = 0;
    for (let j = 0; j < k; j++) {
      const e = Math.exp(u[j] - m);
      out[o + j] = e;
      s += e;
    }
    for (let j = 0; j < k; j++) out[o + j] /= s;
  }
  return out;
}

export const SOLVER_CODES = { newton: 1, lbfgs: 2 } as const;
const SOLVER_NAMES = ['auto', 'newton', 'lbfgs'] as const;

/** Options every scaling method takes: solver ('auto' | 'newton' | 'lbfgs'), gradientTolerance, maxIterations. Settings hold the solver as 0 (auto), 1, 2. */
export const SCALING_OPTIONS = ['solver', 'gradientTolerance', 'maxIterations'] as const;

export function scalingSettings(raw: Record<string, unknown>): Settings {
  const solver = raw.solver ?? 'auto';
  if (typeof solver !== 'string') throw typeError('solver', "'auto', 'newton' or 'lbfgs'", solver);
  if (!(SOLVER_NAMES as readonly string[]).includes(solver)) throw rangeError('solver', "'auto', 'newton' or 'lbfgs'", solver);
  const tol = raw.gradientTolerance ?? DEFAULT_GRADIENT_TOLERANCE;
  if (typeof tol !== 'number') throw typeError('gradientTolerance', 'a positive finite number', tol);
  if (!(Number.isFinite(tol) && tol > 0)) throw rangeError('gradientTolerance', 'a positive finite number', tol);
  const maxIterations = raw.maxIterations ?? 0;
  if (typeof maxIterations !== 'number') throw typeError('maxIterations', 'an integer >= 1', maxIterations);
  if (raw.maxIterations !== undefined && !(Number.isInteger(maxIterations) && maxIterations >= 1)) throw rangeError('maxIterations', 'an integer >= 1', maxIterations);
  return { solver: solver === 'auto' ? 0 : SOLVER_CODES[solver as 'newton' | 'lbfgs'], gradientTolerance: tol, maxIterations };
}

/** Fits θ from `start` by Newton (small problems) or L-BFGS. Solver settings are not stored with the calibrator. */
export function* fitScaling(layout: Layout, data: Labeled, start: Float64Array, penalty: Float64Array | null, s: Settings): Work<Fitted<Float64Array>> {
  const z = yield* logitsOf(data);
  const P = start.length;
  const useNewton = s.solver === SOLVER_CODES.newton || (s.solver === 0 && P <= 512 && (data.n * P * P) / 2 <= NEWTON_BUDGET);
  const obj = objective(layout, z, data.labels, penalty);
  const opts = { tolerance: s.gradientTolerance, maxIterations: s.maxIterations || (useNewton ? 200 : 20_000) };
  const r: SolveResult = useNewton ? yield* newton(obj, start, opts) : yield* lbfgs(obj, start, opts);
  for (let a = 0; a < P; a++) {
    if (!Number.isFinite(r.theta[a])) throw rangeError('scores', 'scores on which the fit stays finite', r.theta[a]);
    r.theta[a] += 0; // no −0: JSON cannot keep it
  }
  // Without a penalty the objective at θ is the calibrated NLL (apply's arithmetic may differ in the last bits, so recompute).
  const p = yield* applyScaling(r.theta, layout, data);
  return { params: r.theta, iterations: r.iterations, converged: r.converged, gradientNorm: r.gradientNorm, nllAfter: meanNll(p, data.labels, data.k) };
}
