/**
 * Minimisers for the smooth convex objectives of the scaling recalibrators, in float64:
 * Newton's method on the exact Hessian (damped just enough to factor it, since softmax
 * makes some directions exactly flat), and L-BFGS for problems whose Hessian is too big.
 * Both take Armijo backtracking steps and stop when the largest gradient entry is at most
 * `tolerance` × max(1, its value at the start): the optimum, not an early stop. Near the
 * optimum the objective's change drops below its rounding; a step is then accepted when
 * the objective stays within that rounding and the gradient shrinks.
 */
import type { Work } from './data';

/** f(θ); fills g (and H, P×P row-major) when given. */
export interface Objective {
  size: number;
  evaluate(theta: Float64Array, g: Float64Array | null, h: Float64Array | null): Work<number>;
}

export interface SolveOptions {
  /** Relative gradient tolerance (largest |∂f/∂θ|). */
  tolerance: number;
  maxIterations: number;
}

export interface SolveResult {
  theta: Float64Array;
  /** Objective at theta. */
  value: number;
  /** Largest |∂f/∂θ| at theta. */
  gradientNorm: number;
  iterations: number;
  converged: boolean;
}

const ARMIJO = 1e-4;
const MAX_HALVINGS = 60;

function infNorm(v: Float64Array): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Cholesky factorisation in place (lower triangle); false when the matrix is not positive definite. */
function* cholesky(a: Float64Array, n: number): Work<boolean> {
  for (let j = 0; j < n; j++) {
    if (j % 16 === 15) yield;
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) return false;
    const l = Math.sqrt(d);
    a[j * n + j] = l;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / l;
    }
  }
  return true;
}

/** Solves (H + δI) d = −g with the smallest δ (relative to H's largest diagonal entry) that factors. */
function* newtonDirection(h: Float64Array, g: Float64Array, n: number): Work<Float64Array> {
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, h[i * n + i]);
  const scale = maxDiag > 0 ? maxDiag : 1;
  const a = new Float64Array(n * n);
  for (let damping = 1e-13; ; damping *= 10) {
    a.set(h);
    for (let i = 0; i < n; i++) a[i * n + i] += damping * scale;
    if ((yield* cholesky(a, n)) || damping > 1e6) break;
  }
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = -g[i];
    for (let k = 0; k < i; k++) s -= a[i * n + k] * d[k];
    d[i] = s / a[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = d[i];
    for (let k = i + 1; k < n; k++) s -= a[k * n + i] * d[k];
    d[i] = s / a[i * n + i];
  }
  return d;
}

interface Trial {
  theta: Float64Array;
  value: number;
  g: Float64Array;
  step: number;
}

/** Backtracking from step t along d; null when no step decreases f (or keeps it within rounding while shrinking g). */
function* lineSearch(obj: Objective, theta: Float64Array, value: number, g: Float64Array, d: Float64Array, t: number): Work<Trial | null> {
  const slope = dot(g, d);
  const gNorm = infNorm(g);
  const x = new Float64Array(theta.length);
  const gx = new Float64Array(theta.length);
  const noise = 1e-13 * Math.max(1, Math.abs(value));
  for (let i = 0; i < MAX_HALVINGS; i++, t /= 2) {
    for (let j = 0; j < x.length; j++) x[j] = theta[j] + t * d[j];
    const v = yield* obj.evaluate(x, gx, null);
    if (!Number.isFinite(v)) continue;
    if (v <= value + ARMIJO * t * slope || (v <= value + noise && infNorm(gx) < gNorm)) return { theta: x, value: v, g: gx, step: t };
  }
  return null;
}

/** Newton's method with backtracking. */
export function* newton(obj: Objective, start: Float64Array, opts: SolveOptions): Work<SolveResult> {
  const n = obj.size;
  let theta: Float64Array = start.slice();
  const g = new Float64Array(n);
  const h = new Float64Array(n * n);
  let value = yield* obj.evaluate(theta, g, h);
  const target = opts.tolerance * Math.max(1, infNorm(g));
  let it = 0;
  for (; it < opts.maxIterations && infNorm(g) > target; it++) {
    const d = yield* newtonDirection(h, g, n);
    const trial = yield* lineSearch(obj, theta, value, g, d, 1);
    if (!trial) break;
    theta = trial.theta;
    value = yield* obj.evaluate(theta, g, h);
  }
  const gradientNorm = infNorm(g);
  return { theta, value, gradientNorm, iterations: it, converged: gradientNorm <= target };
}

/** L-BFGS (two-loop recursion, 20 pairs) with backtracking. */
export function* lbfgs(obj: Objective, start: Float64Array, opts: SolveOptions): Work<SolveResult> {
  const n = obj.size;
  const memory = 20;
  let theta: Float64Array = start.slice();
  let g: Float64Array = new Float64Array(n);
  let value = yield* obj.evaluate(theta, g, null);
  const target = opts.tolerance * Math.max(1, infNorm(g));
  const ss: Float64Array[] = [];
  const ys: Float64Array[] = [];
  const rho: number[] = [];
  let it = 0;
  for (; it < opts.maxIterations && infNorm(g) > target; it++) {
    const d = new Float64Array(n);
    for (let i = 0; i < n; i++) d[i] = -g[i];
    const alpha: number[] = new Array(ss.length);
    for (let m = ss.length - 1; m >= 0; m--) {
      alpha[m] = rho[m] * dot(ss[m], d);
      for (let i = 0; i < n; i++) d[i] -= alpha[m] * ys[m][i];
    }
    const gamma = ss.length ? dot(ss[ss.length - 1], ys[ys.length - 1]) / dot(ys[ys.length - 1], ys[ys.length - 1]) : 1 / Math.max(1, infNorm(g));
    for (let i = 0; i < n; i++) d[i] *= gamma;
    for (let m = 0; m < ss.length; m++) {
      const beta = rho[m] * dot(ys[m], d);
      for (let i = 0; i < n; i++) d[i] += ss[m][i] * (alpha[m] - beta);
    }
    let trial = dot(g, d) < 0 ? yield* lineSearch(obj, theta, value, g, d, 1) : null;
    if (!trial && ss.length) {
      // The quasi-Newton direction failed: forget the curvature pairs and try steepest descent.
      ss.length = ys.length = rho.length = 0;
      const sd = g.map((v) => -v / Math.max(1, infNorm(g)));
      trial = yield* lineSearch(obj, theta, value, g, sd, 1);
    }
    if (!trial) break;
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = trial.theta[i] - theta[i];
      y[i] = trial.g[i] - g[i];
    }
    const sy = dot(s, y);
    if (sy > 1e-300) {
      if (ss.length === memory) {
        ss.shift();
        ys.shift();
        rho.shift();
      }
      ss.push(s);
      ys.push(y);
      rho.push(1 / sy);
    }
    theta = trial.theta;
    value = trial.value;
    g = trial.g;
  }
  const gradientNorm = infNorm(g);
  return { theta, value, gradientNorm, iterations: it, converged: gradientNorm <= target };
}
