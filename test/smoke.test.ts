import { describe, expect, it } from 'vitest';
import { crossEntropy, tensor, torchVersion } from '../lib/index';

describe('smoke', () => {
  it('loads the addon and reports the LibTorch version', () => {
    expect(torchVersion()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('computes a hand-checked loss: uniform logits give log(C)', () => {
    const r = crossEntropy(tensor(new Float64Array(4 * 5), [4, 5]), tensor([0, 1, 2, 4], [4], 'int64'), {
      labelSmoothing: 0.3,
    });
    expect(r.loss).toBeCloseTo(Math.log(5), 14);
  });
});
