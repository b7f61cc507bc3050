import { describe, expect, it } from 'vitest';
import { crossEntropy, tensor } from '../lib/index';
import { flipLabels, loadDigits, selectDigits, split } from '../lib/demo/data';
import { Adam, Mlp } from '../lib/demo/mlp';
import { Rng } from '../lib/demo/rng';
import { agreement, argmax, train } from '../lib/demo/train';

describe('demo data', () => {
  const data = loadDigits();

  it('loads the 1,797 digits, 64 pixels scaled to [0, 1], ten classes', () => {
    expect(data.n).toBe(1797);
    expect(data.x.length).toBe(1797 * 64);
    expect(Math.min(...data.x)).toBe(0);
    expect(Math.max(...data.x)).toBe(1);
    const counts = new Array(10).fill(0);
    for (const y of data.y) counts[y]++;
    expect(counts).toEqual([178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
  });

  it('splits without overlap or loss, the same way for the same seed', () => {
    const a = split(data, new Rng(7));
    const b = split(data, new Rng(7));
    const c = split(data, new Rng(8));
    expect([a.train.n, a.validation.n, a.test.n]).toEqual([1079, 359, 359]);
    expect(a.test.x).toEqual(b.test.x);
    expect(a.test.y).toEqual(b.test.y);
    expect(a.test.x).not.toEqual(c.test.x);
    // Every image lands in exactly one part: compare the multisets of rows.
    const key = (x: Float64Array, i: number) => Array.from(x.subarray(i * 64, i * 64 + 64)).join(',');
    const all = (d: typeof data) => Array.from({ length: d.n }, (_, i) => `${key(d.x, i)}|${d.y[i]}`);
    const parts = [...all(a.train), ...all(a.validation), ...all(a.test)].sort();
    expect(parts).toEqual(all(data).sort());
  });

  it('flips exactly the requested fraction of labels, each to another class, without touching the input', () => {
    const labels = Int32Array.from({ length: 1000 }, (_, i) => i % 10);
    const before = labels.slice();
    const noisy = flipLabels(labels, 10, 0.2, new Rng(1));
    expect(labels).toEqual(before);
    expect(noisy.flipped.length).toBe(200);
    let changed = 0;
    for (let i = 0; i < labels.length; i++) if (noisy.y[i] !== labels[i]) changed++;
    expect(changed).toBe(200);
    for (const i of noisy.flipped) expect(noisy.y[i]).not.toBe(labels[i]);
    // The wrong labels spread over all nine other classes.
    const offsets = new Set(Array.from(noisy.flipped, (i) => (noisy.y[i] - labels[i] + 10) % 10));
    expect(offsets.size).toBe(9);
    expect(flipLabels(labels, 10, 0, new Rng(1)).y).toEqual(labels);
  });

  it('selects digits 3 and 8 as classes 0 and 1', () => {
    const sub = selectDigits(data, [3, 8]);
    expect(sub.n).toBe(183 + 174);
    expect(sub.classes).toBe(2);
    expect(sub.classNames).toEqual([3, 8]);
    expect(new Set(sub.y)).toEqual(new Set([0, 1]));
    const noisy = flipLabels(sub.y, 2, 0.5, new Rng(3));
    for (const i of noisy.flipped) expect(noisy.y[i]).toBe(1 - sub.y[i]);
  });
});

describe('demo MLP', () => {
  it('backward() gives the gradient of the crossEntropy loss (finite differences)', () => {
    const rng = new Rng(5);
    const model = new Mlp(6, 5, 4, rng);
    const rows = 7;
    const x = Float64Array.from({ length: rows * 6 }, () => (rng.float() < 0.3 ? 0 : rng.float()));
    const y = Int32Array.from({ length: rows }, () => rng.int(0, 3));
    const loss = () =>
      crossEntropy(tensor(model.forward(x, rows), [rows, 4], 'float64'), tensor(y, [rows], 'int32'), { labelSmoothing: 0.1 })
        .loss;
    const { grad } = crossEntropy(tensor(model.forward(x, rows), [rows, 4], 'float64'), tensor(y, [rows], 'int32'), {
      labelSmoothing: 0.1,
      grad: true,
    });
    model.backward(grad!.data);
    const h = 1e-6;
    for (const name of ['w1', 'b1', 'w2', 'b2'] as const) {
      const p = model.params[name];
      for (let i = 0; i < p.length; i++) {
        const saved = p[i];
        p[i] = saved + h;
        const up = loss();
        p[i] = saved - h;
        const down = loss();
        p[i] = saved;
        expect(model.grads[name][i], `${name}[${i}]`).toBeCloseTo((up - down) / (2 * h), 6);
      }
    }
  });

  it('Adam takes the bias-corrected first step of size lr against the gradient sign', () => {
    const w = Float64Array.from([1, -2, 3]);
    new Adam([w], 0.01).step([Float64Array.from([0.5, -4, 0])]);
    expect(w[0]).toBeCloseTo(0.99, 6);
    expect(w[1]).toBeCloseTo(-1.99, 6);
    expect(w[2]).toBe(3);
  });

  it('learns the digits and is deterministic for a seed', () => {
    const data = loadDigits();
    const s = split(data, new Rng(11));
    const options = { eps: 0.1, epochs: 3, hidden: 32, batchSize: 32, lr: 3e-3, seed: 12 };
    const losses: number[] = [];
    const a = train(s.train, s.train.y, s.validation, options, (e) => losses.push(e.loss));
    const b = train(s.train, s.train.y, s.validation, options);
    expect(losses).toHaveLength(3);
    expect(losses[2]).toBeLessThan(losses[0]);
    expect(a.params.w1).toEqual(b.params.w1);
    const accuracy = agreement(argmax(a.forward(s.test.x, s.test.n), 10), s.test.y);
    expect(accuracy).toBeGreaterThan(0.85);
  });
});
