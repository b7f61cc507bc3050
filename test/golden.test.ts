/**
 * Golden fixtures: every case of the fixture file recorded by the linked LibTorch's torch
 * version (test/fixtures/cases.json by 1.13, cases-2.6.json by 2.6; written with
 * python/generate_fixtures.py, `npm run fixtures`) replayed through the public API.
 * Values: torch.testing.assert_close tolerances per dtype, float64 also to 1e-10 relative.
 * PyTorch errors: smoothce must throw the class recorded below, naming the parameter.
 * Deviations: what smoothce does on purpose instead (docs/api.md, "differs from PyTorch").
 */
import { describe, expect, it } from 'vitest';
import { crossEntropy, crossEntropyAsync, tensor, torchVersion } from '../lib/index';
import {
  callArgs,
  checkResult as check,
  decodeFloat,
  isErrorCase,
  type Case,
  type CaseExpectedValues,
  type CaseFile,
} from './helpers/cases-format';
import { loadFixtures } from './helpers/fixtures';
import { thrown } from './helpers/thrown';

const fixtures = loadFixtures();
const doc: CaseFile = fixtures.doc;
const cases = doc.cases;

/** Whether the linked LibTorch computes float16 cross-entropy on CPU (2.4+ does, 1.13 does not). */
function linkedComputesHalf(): boolean {
  try {
    crossEntropy(tensor(new Float32Array([1, 2, 3]), [1, 3], 'float16'), tensor([0], [1], 'int64'));
    return true;
  } catch {
    return false;
  }
}

type ErrorClass = typeof Error | typeof TypeError | typeof RangeError;

/**
 * The error smoothce throws for each input PyTorch rejects, and the parameter the message
 * names. TypeError: the wrong kind of value; RangeError: a wrong value or shape; Error:
 * ATen's own error (float16 on a LibTorch without CPU Half kernels).
 */
const EXPECTED_ERRORS: Record<string, [ErrorClass, RegExp]> = {
  err_target_float_1d: [TypeError, /target/],
  err_target_uint8_3d: [TypeError, /target\.dtype/],
  err_target_oob_high: [RangeError, /target\[0\] is 3/],
  err_target_oob_negative: [RangeError, /target\[0\] is -1/],
  err_target_oob_4d: [RangeError, /target\[0, 1, 0\].*is 3/],
  err_target_oob_uint8: [RangeError, /target\[1\] is 5/],
  err_target_oob_with_eps: [RangeError, /target\[1\] is 4/],
  err_target_oob_c0: [RangeError, /target\[0\] is 0/],
  err_eps_gt_1: [RangeError, /labelSmoothing but received 1\.5/],
  err_eps_just_gt_1: [RangeError, /labelSmoothing but received 1\.0000001/],
  err_eps_inf: [RangeError, /labelSmoothing but received Infinity/],
  err_prob_eps_gt_1: [RangeError, /labelSmoothing/],
  err_prob_ignore_index_nonneg: [RangeError, /ignoreIndex/],
  err_prob_int_target: [TypeError, /target/],
  err_batch_mismatch: [RangeError, /target/],
  err_weight_wrong_size: [RangeError, /weight/],
  err_weight_2d: [RangeError, /weight/], // a [1, 3] weight arrives as one row: not 3 class weights
  err_prob_weight_wrong_size: [RangeError, /weight/],
  // Only in files written by a torch without CPU Half kernels (1.13); 2.x records values.
  err_input_half: [Error, /float16.*Half/],
  err_input_half_3d: [Error, /float16.*Half/],
  err_input_int64: [TypeError, /input\.dtype/],
  err_kdim_target_shape: [RangeError, /target/],
  err_4d_target_shape: [RangeError, /target/],
  err_target_2d_for_2d_input: [RangeError, /target/],
  err_1d_input_1d_target: [RangeError, /target/],
  err_0d_input_int_target: [RangeError, /input/],
  err_0d_input_float_target: [RangeError, /input/],
  // ATen's own error (smoothce passes uint8 through, as PyTorch does): same message.
  err_uint8_target_weight_eps_mean: [Error, /gather\(\): Expected dtype int64 for index/],
};

/** Deviation cases that smoothce rejects: the error class and the parameter it names. */
const REJECTED_DEVIATIONS: Record<string, [ErrorClass, RegExp]> = {
  deviation_eps_negative: [RangeError, /labelSmoothing but received -0\.1/],
  deviation_eps_nan: [RangeError, /labelSmoothing but received NaN/],
  deviation_prob_eps_negative: [RangeError, /labelSmoothing but received -0\.5/],
};

/** Deviation cases PyTorch rejects and smoothce accepts: the equivalent PyTorch-valid call. */
const ACCEPTED_DEVIATIONS: Record<string, (c: Case) => Case> = {
  // int32 class indices are converted to int64.
  err_target_int32: (c) => ({ ...c, target: { ...c.target, dtype: 'int64' } }),
  // Class weights are numbers, cast to the input dtype.
  err_weight_dtype: (c) => ({ ...c, weight: c.weight && { ...c.weight, dtype: c.input.dtype } }),
};

function expectError(err: unknown, [cls, re]: [ErrorClass, RegExp], name: string): void {
  expect(err, `${name}: no error thrown`).toBeInstanceOf(cls);
  const e = err as Error;
  if (cls === Error) {
    // Plain Error: not a validation error of the wrong class.
    expect(e instanceof TypeError || e instanceof RangeError, `${name}: ${e.name}: ${e.message}`).toBe(false);
  }
  expect(e.message, name).toMatch(re);
}

// A file recorded by another torch version than the linked one (no file for this version):
// its float16 errors do not apply to a LibTorch that computes float16.
const halfErrorElsewhere = (c: Case): boolean =>
  !fixtures.matchesLinked && isErrorCase(c) && / for 'Half'/.test(c.expected.error.message) && linkedComputesHalf();
const valueCases = cases.filter((c) => !isErrorCase(c) && !c.deviation);
const errorCases = cases.filter((c) => isErrorCase(c) && !c.deviation && !halfErrorElsewhere(c));
const deviationCases = cases.filter((c) => c.deviation);

describe('golden fixtures (test/fixtures/cases.json)', () => {
  it('is a smoothce-cases v1 file written by PyTorch with enough coverage', () => {
    expect(doc.format).toBe('smoothce-cases');
    expect(doc.version).toBe(1);
    expect(doc.torch).toMatch(/^\d+\.\d+/);
    if (!fixtures.matchesLinked) {
      console.warn(
        `golden: no fixtures recorded by torch ${torchVersion()} (recorded: ${fixtures.recorded.join(', ')}); replaying ${doc.torch}'s ` +
          `within assert_close tolerances. Record them: /usr/bin/python3 python/generate_fixtures.py test/fixtures/cases-<major>.<minor>.json`,
      );
    }
    expect(cases.length).toBeGreaterThanOrEqual(60);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    expect(valueCases.length).toBeGreaterThanOrEqual(40);
    expect(errorCases.length).toBeGreaterThanOrEqual(20);
    // Every branch the file is meant to cover has cases.
    const has = (p: (c: Case) => boolean) => cases.filter((c) => !isErrorCase(c) && p(c)).length;
    expect(has((c) => c.options.reduction === 'none')).toBeGreaterThan(5);
    expect(has((c) => c.weight !== null)).toBeGreaterThan(5);
    expect(has((c) => JSON.stringify(c.input.shape) === JSON.stringify(c.target.shape))).toBeGreaterThan(5);
    expect(has((c) => c.input.shape.length >= 5)).toBeGreaterThan(1);
    expect(has((c) => c.input.shape.length === 1)).toBeGreaterThan(1);
    expect(has((c) => c.input.dtype === 'bfloat16')).toBeGreaterThan(1);
    expect(has((c) => c.target.dtype === 'uint8')).toBeGreaterThan(1);
    expect(has((c) => c.target.dtype === 'int32')).toBeGreaterThan(1);
    expect(has((c) => c.grad_output !== null)).toBeGreaterThan(3);
  });

  it('records the smoothce error class of every PyTorch error case', () => {
    for (const c of errorCases) expect(EXPECTED_ERRORS, c.name).toHaveProperty(c.name);
    for (const c of deviationCases) {
      expect(c.name in REJECTED_DEVIATIONS || c.name in ACCEPTED_DEVIATIONS, `${c.name} has no expectation`).toBe(true);
    }
  });

  it.each(valueCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const { input, target, options } = callArgs(c, true);
    const problems = check(c, crossEntropy(input, target, options));
    expect(problems, c.name).toEqual([]);
    // Without grad: the same loss (the inference path), and no grad key.
    const { input: i2, target: t2, options: o2 } = callArgs(c, false);
    const r2 = crossEntropy(i2, t2, o2);
    expect(r2.grad).toBeUndefined();
    expect(check({ ...c, expected: { ...(c.expected as CaseExpectedValues), grad_input: null } }, r2), c.name).toEqual([]);
  });

  it('crossEntropyAsync gives the same values on every value case', async () => {
    const failures: string[] = [];
    await Promise.all(
      valueCases.map(async (c) => {
        const { input, target, options } = callArgs(c, true);
        const problems = check(c, await crossEntropyAsync(input, target, options));
        if (problems.length) failures.push(`${c.name}: ${problems.join('; ')}`);
      }),
    );
    expect(failures).toEqual([]);
  });

  it.each(errorCases.map((c) => [c.name, c] as const))('%s throws', (_name, c) => {
    const want = EXPECTED_ERRORS[c.name];
    for (const grad of [false, true]) {
      const err = thrown(() => {
        const { input, target, options } = callArgs(c, grad);
        return crossEntropy(input, target, options);
      });
      expectError(err, want, `${c.name} (grad ${grad}; torch: ${(c.expected as { error: { message: string } }).error.message})`);
    }
  });

  it('error cases reject through crossEntropyAsync too', async () => {
    for (const c of errorCases) {
      const { input, target, options } = callArgs(c, true);
      let err: unknown;
      try {
        await crossEntropyAsync(input, target, options);
      } catch (e) {
        err = e;
      }
      expectError(err, EXPECTED_ERRORS[c.name], `${c.name} (async)`);
    }
  });

  it.each(deviationCases.map((c) => [c.name, c] as const))('deviation %s', (_name, c) => {
    if (c.name in REJECTED_DEVIATIONS) {
      // PyTorch computes a value (ε treated as 0); smoothce refuses on purpose.
      expect(isErrorCase(c)).toBe(false);
      const err = thrown(() => {
        const { input, target, options } = callArgs(c, true);
        return crossEntropy(input, target, options);
      });
      expectError(err, REJECTED_DEVIATIONS[c.name], c.name);
      // And the value PyTorch gives is the ε = 0 value, which smoothce computes with labelSmoothing 0.
      const zero = { ...c, options: { ...c.options, label_smoothing: 0 } };
      const { input, target, options } = callArgs(zero, true);
      expect(decodeFloat(c.options.label_smoothing) < 0 || Number.isNaN(decodeFloat(c.options.label_smoothing))).toBe(true);
      expect(check(c, crossEntropy(input, target, options)), c.name).toEqual([]);
    } else {
      // PyTorch raises; smoothce accepts and gives what PyTorch gives for the equivalent call.
      expect(isErrorCase(c)).toBe(true);
      const { input, target, options } = callArgs(c, true);
      const got = crossEntropy(input, target, options);
      const same = ACCEPTED_DEVIATIONS[c.name](c);
      const { input: i2, target: t2, options: o2 } = callArgs(same, true);
      const want = crossEntropy(i2, t2, o2);
      expect(got.loss).toEqual(want.loss);
      expect(got.grad).toEqual(want.grad);
    }
  });

  it('int32 targets give exactly the int64 result PyTorch computes', () => {
    const int32Cases = valueCases.filter((c) => c.target.dtype === 'int32');
    expect(int32Cases.length).toBeGreaterThan(0);
    for (const c of int32Cases) {
      const a = callArgs(c, true);
      const b = callArgs({ ...c, target: { ...c.target, dtype: 'int64' } }, true);
      const ra = crossEntropy(a.input, a.target, a.options);
      const rb = crossEntropy(b.input, b.target, b.options);
      expect(ra.loss).toEqual(rb.loss);
      expect(ra.grad).toEqual(rb.grad);
    }
  });

  it('never modifies the caller data', () => {
    for (const c of cases.slice(0, 40)) {
      const { input, target, options } = callArgs(c, true);
      const before = [Array.from(input.data as ArrayLike<number>), Array.from(target.data as ArrayLike<number | bigint>)];
      try {
        crossEntropy(input, target, options);
      } catch {
        // errors are checked above
      }
      expect([Array.from(input.data as ArrayLike<number>), Array.from(target.data as ArrayLike<number | bigint>)]).toEqual(before);
    }
  });
});
