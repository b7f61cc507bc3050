/**
 * A one-hidden-layer perceptron, d → hidden (ReLU) → classes, in plain Float64Array
 * arithmetic with a hand-written backward pass, and the Adam optimiser. The loss and its
 * gradient with respect to the logits are not computed here: the caller gets them from
 * smoothce's crossEntropy(..., { grad: true }) and hands the gradient to backward().
 */
import type { Rng } from './rng';

export interface Params {
  w1: Float64Array; // d × h
  b1: Float64Array; // h
  w2: Float64Array; // h × k
  b2: Float64Array; // k
}

export class Mlp {
  readonly params: Params;
  readonly grads: Params;
  /** Hidden activations of the last forward() with keep = true (rows × h). */
  private hidden: Float64Array = new Float64Array(0);
  private input: Float64Array = new Float64Array(0);
  private rows = 0;

  constructor(
    readonly d: number,
    readonly h: number,
    readonly k: number,
    rng: Rng,
  ) {
    // He initialisation for the ReLU layer, Glorot for the output layer; zero biases.
    const w1 = new Float64Array(d * h);
    const s1 = Math.sqrt(2 / d);
    for (let i = 0; i < w1.length; i++) w1[i] = rng.normal() * s1;
    const w2 = new Float64Array(h * k);
    const s2 = Math.sqrt(2 / (h + k));
    for (let i = 0; i < w2.length; i++) w2[i] = rng.normal() * s2;
    this.params = { w1, b1: new Float64Array(h), w2, b2: new Float64Array(k) };
    this.grads = { w1: new Float64Array(d * h), b1: new Float64Array(h), w2: new Float64Array(h * k), b2: new Float64Array(k) };
  }

  /** Logits (rows × k) for the rows of x (rows × d). Keeps what backward() needs. */
  forward(x: Float64Array, rows: number): Float64Array {
    const { d, h, k } = this;
    const { w1, b1, w2, b2 } = this.params;
    if (this.hidden.length < rows * h) this.hidden = new Float64Array(rows * h);
    const hid = this.hidden;
    const out = new Float64Array(rows * k);
    for (let r = 0; r < rows; r++) {
      const ho = r * h;
      hid.set(b1, ho);
      for (let i = 0; i < d; i++) {
        const xi = x[r * d + i];
        if (xi === 0) continue; // the digits are sparse
        const wo = i * h;
        for (let j = 0; j < h; j++) hid[ho + j] += xi * w1[wo + j];
      }
      const oo = r * k;
      out.set(b2, oo);
      for (let j = 0; j < h; j++) {
        let a = hid[ho + j];
        if (a < 0) a = hid[ho + j] = 0;
        if (a === 0) continue;
        const wo = j * k;
        for (let c = 0; c < k; c++) out[oo + c] += a * w2[wo + c];
      }
    }
    this.input = x;
    this.rows = rows;
    return out;
  }

  /** Fills this.grads from d loss / d logits (rows × k) of the last forward(). */
  backward(dLogits: ArrayLike<number>): void {
    const { d, h, k, rows, input: x, hidden: hid } = this;
    const { w2 } = this.params;
    const g = this.grads;
    g.w1.fill(0);
    g.b1.fill(0);
    g.w2.fill(0);
    g.b2.fill(0);
    const dh = new Float64Array(h);
    const alive = new Int32Array(h);
    for (let r = 0; r < rows; r++) {
      const oo = r * k;
      const ho = r * h;
      for (let c = 0; c < k; c++) g.b2[c] += dLogits[oo + c];
      for (let j = 0; j < h; j++) {
        const a = hid[ho + j];
        if (a === 0) {
          // A unit the ReLU cut off adds exactly +0 to every gradient: skipping it changes no bit.
          dh[j] = 0;
          continue;
        }
        const wo = j * k;
        let s = 0;
        for (let c = 0; c < k; c++) {
          const dz = dLogits[oo + c];
          g.w2[wo + c] += a * dz;
          s += w2[wo + c] * dz;
        }
        dh[j] = s; // ReLU' is 1 here (a > 0)
        g.b1[j] += s;
      }
      // Only the live units (dh ≠ 0 possible) reach the first layer's gradient.
      let live = 0;
      for (let j = 0; j < h; j++) if (hid[ho + j] !== 0) alive[live++] = j;
      for (let i = 0; i < d; i++) {
        const xi = x[r * d + i];
        if (xi === 0) continue;
        const wo = i * h;
        for (let t = 0; t < live; t++) {
          const j = alive[t];
          g.w1[wo + j] += xi * dh[j];
        }
      }
    }
  }
}

/** Adam (Kingma & Ba), the same update as torch.optim.Adam without weight decay. */
export class Adam {
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private t = 0;

  constructor(
    private readonly params: Float64Array[],
    private readonly lr = 1e-3,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {
    this.m = params.map((p) => new Float64Array(p.length));
    this.v = params.map((p) => new Float64Array(p.length));
  }

  step(grads: Float64Array[]): void {
    this.t++;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    for (let p = 0; p < this.params.length; p++) {
      const w = this.params[p];
      const g = grads[p];
      const m = this.m[p];
      const v = this.v[p];
      for (let i = 0; i < w.length; i++) {
        m[i] = this.beta1 * m[i] + (1 - this.beta1) * g[i];
        v[i] = this.beta2 * v[i] + (1 - this.beta2) * g[i] * g[i];
        w[i] -= (this.lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + this.eps);
      }
    }
  }
}
