/**
 * toMatchTorch: a matcher for vitest (or Jest) that compares smoothce output with
 * PyTorch's, using the same rule and default tolerances as checkParity. It does not
 * import vitest; register it yourself:
 *
 *   import { toMatchTorch } from 'smoothce/vitest';   // or from 'smoothce'
 *   expect.extend({ toMatchTorch });
 *   expect(crossEntropy(x, y, { grad: true })).toMatchTorch(someCase.expected, { rtol: 1e-5 });
 *
 * received: a crossEntropy result { loss, grad? }, a tensor, or a number; or a function
 *           when expected is an error block (it must throw).
 * expected: a case's expected block ({ loss, grad_input } in case-file form, or
 *           { loss, gradInput } as parsed), a whole case, a tensor (case-file or
 *           smoothce form), a number, or { error: { type, message } }.
 */
import { describe, typeErrorMessage } from '../core/errors';
import { isExpectedError, parseTensor, type CaseTensor, type ParityCase } from './cases';
import { compareArrays, describeComparison, toleranceFor, type Comparison } from './compare';

export interface MatchTorchOptions {
  rtol?: number;
  atol?: number;
}

export interface MatcherResult {
  pass: boolean;
  message: () => string;
}

interface Values {
  loss: CaseTensor;
  grad: CaseTensor | null | undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function scalar(x: number): CaseTensor {
  return { data: new Float64Array([x]), shape: [], dtype: 'float64' };
}

function asTensorLike(v: unknown, field: string): CaseTensor {
  if (typeof v === 'number') return scalar(v);
  return parseTensor(v, field);
}

function isTensorLike(v: unknown): boolean {
  return isObject(v) && 'shape' in v && 'dtype' in v && ('data' in v || 'npy' in v);
}

/** What the caller computed, as a loss and maybe a gradient. */
function readReceived(v: unknown): Values {
  if (typeof v === 'number' || isTensorLike(v)) return { loss: asTensorLike(v, 'received'), grad: undefined };
  if (isObject(v) && 'loss' in v) {
    return {
      loss: asTensorLike(v.loss, 'received.loss'),
      grad: v.grad === undefined || v.grad === null ? undefined : asTensorLike(v.grad, 'received.grad'),
    };
  }
  throw typeErrorMessage(`toMatchTorch: expected a crossEntropy result { loss, grad }, a tensor or a number as the received value but received ${describe(v)}`);
}

/** What PyTorch produced. grad null: not to be compared. */
function readExpected(v: unknown): Values {
  if (typeof v === 'number' || isTensorLike(v)) return { loss: asTensorLike(v, 'expected'), grad: null };
  if (isObject(v) && isObject(v.expected) && typeof v.name === 'string') return readExpected(v.expected); // a whole case
  if (isObject(v) && 'loss' in v) {
    const g = 'gradInput' in v ? v.gradInput : v.grad_input;
    return {
      loss: asTensorLike(v.loss, 'expected.loss'),
      grad: g === undefined || g === null ? null : asTensorLike(g, 'expected.grad_input'),
    };
  }
  throw typeErrorMessage(`toMatchTorch: expected a case's expected block { loss, grad_input }, a case, a tensor or a number as the expected value but received ${describe(v)}`);
}

function errorMatcher(received: unknown, expected: { type: string; message: string }): MatcherResult {
  if (typeof received !== 'function') {
    throw typeErrorMessage(`toMatchTorch: an expected error needs a function as the received value (expect(() => crossEntropy(...))) but received ${describe(received)}`);
  }
  let thrown: unknown;
  let threw = false;
  try {
    (received as () => unknown)();
  } catch (err) {
    threw = true;
    thrown = err;
  }
  const torch = `PyTorch ${expected.type}: ${expected.message}`;
  return threw
    ? { pass: true, message: () => `expected smoothce not to throw (${torch}), but it threw ${String(thrown)}` }
    : { pass: false, message: () => `expected smoothce to throw like ${torch}, but it returned a result` };
}

/** Matcher: received (smoothce) within tolerance of expected (PyTorch). */
export function toMatchTorch(this: unknown, received: unknown, expected: unknown, options: MatchTorchOptions = {}): MatcherResult {
  const exp = isObject(expected) && isObject(expected.expected) ? (expected as unknown as ParityCase).expected : expected;
  if (isObject(exp) && isExpectedError(exp as unknown as ParityCase['expected'])) {
    return errorMatcher(received, (exp as { error: { type: string; message: string } }).error);
  }
  const got = readReceived(received);
  const want = readExpected(expected);
  const lossTol = toleranceFor([got.loss.dtype === 'float64' && typeof received === 'number' ? undefined : got.loss.dtype, want.loss.dtype], options);
  const checks: Array<[string, Comparison]> = [
    ['loss', compareArrays(got.loss.data as ArrayLike<number>, got.loss.shape, want.loss.data as ArrayLike<number>, want.loss.shape, lossTol)],
  ];
  let missingGrad = false;
  if (want.grad) {
    if (!got.grad) missingGrad = true;
    else {
      const tol = toleranceFor([got.grad.dtype, want.grad.dtype], options);
      checks.push(['grad', compareArrays(got.grad.data as ArrayLike<number>, got.grad.shape, want.grad.data as ArrayLike<number>, want.grad.shape, tol)]);
    }
  }
  const pass = !missingGrad && checks.every(([, c]) => c.ok);
  const details = checks.map(([what, c]) => describeComparison(what, c));
  if (missingGrad) details.push('grad: the received result has no gradient (call crossEntropy with grad: true)');
  return {
    pass,
    message: () =>
      pass
        ? `expected the result not to match PyTorch, but it does:\n  ${details.join('\n  ')}`
        : `expected the result to match PyTorch:\n  ${details.join('\n  ')}`,
  };
}
