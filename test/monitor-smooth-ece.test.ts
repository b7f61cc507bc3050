/**
 * SmoothECE in a Monitor: off by default (NaN, no grids kept per sub-window), exact with
 * `smoothEce: true` — the window's snapshot equals calibration.report on the same rows.
 */
import { describe, expect, it } from 'vitest';
import { calibration, tensor } from '../lib/index';
import { rng } from './helpers/rng';

const K = 5;

function feed(m: InstanceType<typeof calibration.Monitor>, n: number, seed: number) {
  const r = rng(seed);
  const scores = new Float64Array(n * K);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < K; j++) scores[i * K + j] = 3 * (r() - 0.5);
    labels[i] = Math.floor(r() * K);
    scores[i * K + labels[i]] += r() * 2; // somewhat informative, somewhat overconfident
    m.observe(i, tensor(scores.slice(i * K, (i + 1) * K), [K]));
    m.label(i, labels[i]);
  }
  return { scores: tensor(scores, [n, K]), labels: tensor(labels, [n]) };
}

describe('Monitor smoothEce', () => {
  it('is NaN by default: no SmoothECE grids are kept per sub-window', () => {
    const m = new calibration.Monitor({ windows: [{ name: 'all', rows: 1000 }] });
    feed(m, 300, 1);
    const snap = m.snapshot('all')!;
    expect(snap.n).toBe(300);
    expect(Number.isNaN(snap.smoothEce)).toBe(true);
  });

  it('with smoothEce: true equals calibration.report on the window rows, across sub-windows and a JSON round trip', () => {
    const m = new calibration.Monitor({ windows: [{ name: 'all', rows: 1000 }], smoothEce: true });
    const { scores, labels } = feed(m, 600, 2);
    const want = calibration.report(scores, labels, { from: 'logits' });
    const snap = m.snapshot('all')!;
    expect(snap.n).toBe(600);
    expect(snap.smoothEceBandwidth).toBe(want.smoothEceBandwidth);
    expect(Math.abs(snap.smoothEce - want.smoothEce)).toBeLessThanOrEqual(1e-12);
    const back = calibration.Monitor.fromJSON(JSON.parse(JSON.stringify(m)));
    expect(back.snapshot('all')!.smoothEce).toBe(snap.smoothEce);
  });

  it('refuses a non-boolean smoothEce with a coded TypeError', () => {
    const err = (() => {
      try {
        new calibration.Monitor({ windows: [{ name: 'all', rows: 10 }], smoothEce: 1 as never });
      } catch (e) {
        return e as TypeError & { code: string };
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(TypeError);
    expect(err.code).toBe('ERR_SMOOTHCE_INVALID_ARG_TYPE');
  });
});
