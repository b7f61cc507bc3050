/**
 * impl: 'fused' on the golden PyTorch fixtures (test/fixtures/cases*.json, the linked LibTorch's): every value
 * case gives PyTorch's values (same tolerances as test/golden.test.ts) and agrees with
 * impl: 'aten' (float64 to 1e-12 relative, float32 within assert_close); every error case
 * throws what impl 'aten' throws. Run for both instruction sets of the kernel.
 */
import { describe, expect, it } from 'vitest';
import { crossEntropy, crossEntropyAsync, type Tensor } from '../lib/index';
import { callArgs, checkResult, isErrorCase } from './helpers/cases-format';
import { loadFixtures } from './helpers/fixtures';
import { compareResults } from './helpers/fused-compare';
import { restoreEnvAfterAll } from './helpers/env';
import { thrown } from './helpers/thrown';

const { doc } = loadFixtures();
const valueCases = doc.cases.filter((c) => !isErrorCase(c) && !c.deviation);
const errorCases = doc.cases.filter((c) => isErrorCase(c) && !c.deviation);

restoreEnvAfterAll('SMOOTHCE_FUSED_ISA');

describe.each(['avx2', 'baseline'])('fused kernel (%s) on the golden fixtures', (isa) => {
  it('gives PyTorch values and agrees with impl aten on every value case', () => {
    process.env.SMOOTHCE_FUSED_ISA = isa;
    expect(valueCases.length).toBeGreaterThan(40);
    const failures: string[] = [];
    for (const c of valueCases) {
      for (const grad of [true, false]) {
        const { input, target, options } = callArgs(c, grad);
        const fused = crossEntropy(input, target, { ...options, impl: 'fused' });
        const expected = grad ? c : { ...c, expected: { ...(c.expected as object), grad_input: null } as typeof c.expected };
        for (const p of checkResult(expected, fused)) failures.push(`${c.name} (grad ${grad}) vs PyTorch: ${p}`);
        const aten = crossEntropy(input, target, options);
        for (const p of compareResults(fused, aten, input.dtype)) failures.push(`${c.name} (grad ${grad}) vs aten: ${p}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('writes the same gradient into gradInto, also in place and async', async () => {
    process.env.SMOOTHCE_FUSED_ISA = isa;
    const failures: string[] = [];
    for (const c of valueCases) {
      const { input, target, options } = callArgs(c, true);
      const want = crossEntropy(input, target, options);
      const into = new (input.data.constructor as Float32ArrayConstructor)(input.data.length);
      const r1 = crossEntropy(input, target, { ...options, impl: 'fused', gradInto: into });
      expect(r1.grad?.data).toBe(into);
      for (const p of compareResults(r1, want, input.dtype)) failures.push(`${c.name} gradInto: ${p}`);
      const copy: Tensor = { ...input, data: input.data.slice() as Float32Array };
      const r2 = crossEntropy(copy, target, { ...options, impl: 'fused', gradInto: copy.data as Float32Array });
      for (const p of compareResults(r2, want, input.dtype)) failures.push(`${c.name} in place: ${p}`);
      const r3 = await crossEntropyAsync(input, target, { ...options, impl: 'fused' });
      for (const p of compareResults(r3, want, input.dtype)) failures.push(`${c.name} async: ${p}`);
    }
    expect(failures).toEqual([]);
  });

  it('throws what impl aten throws on every error case', () => {
    process.env.SMOOTHCE_FUSED_ISA = isa;
    for (const c of errorCases) {
      const aten = thrown(() => {
        const { input, target, options } = callArgs(c, true);
        return crossEntropy(input, target, options);
      }) as Error;
      const fused = thrown(() => {
        const { input, target, options } = callArgs(c, true);
        return crossEntropy(input, target, { ...options, impl: 'fused' });
      }) as Error;
      expect(aten, c.name).toBeInstanceOf(Error);
      expect(fused?.constructor, c.name).toBe(aten.constructor);
      expect(fused.message, c.name).toBe(aten.message);
    }
  });
});
