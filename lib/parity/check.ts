/**
 * checkParity: replays case files through crossEntropy and compares with the values
 * PyTorch produced, using torch.testing.assert_close's tolerances per dtype.
 */
import { crossEntropy, type CrossEntropyResult } from '../loss/cross-entropy';
import type { CrossEntropyOptions, Device } from '../core/options';
import type { Tensor } from '../core/tensor';
import { typeError } from '../core/errors';
import {
  isExpectedError,
  parseCase,
  parseCaseFile,
  type CaseFile,
  type CaseTensor,
  type ExpectedValues,
  type ParityCase,
} from './cases';
import { compareArrays, describeComparison, fmtNum, fmtTol, offGrid, toleranceFor, type Comparison, type Tolerance, type ToleranceOptions } from './compare';

/**
 * - pass: values within tolerance.
 * - fail: values outside tolerance (or of another shape).
 * - error: smoothce threw where PyTorch returned values.
 * - error-matched: PyTorch raised and smoothce threw too.
 * - error-missed: PyTorch raised but smoothce returned values.
 * - rejected: smoothce rejects the case on purpose (a documented deviation). Where PyTorch's
 *   behaviour has an exact equivalent smoothce accepts (label_smoothing < 0 or NaN acts as 0),
 *   PyTorch's values are still checked against it, and a mismatch is a 'fail'.
 * - accepted: PyTorch raised but smoothce accepts the input on purpose (a documented deviation).
 */
export type CaseStatus = 'pass' | 'fail' | 'error' | 'error-matched' | 'error-missed' | 'rejected' | 'accepted';

/** Statuses that count as failures. */
export const FAILING: ReadonlySet<CaseStatus> = new Set<CaseStatus>(['fail', 'error', 'error-missed']);

export interface CaseResult {
  name: string;
  /** The case file, when the case came from one. */
  file?: string;
  status: CaseStatus;
  /** Max |actual − expected| of the loss (Infinity when a non-finite value differs); null when not compared. */
  lossMaxAbs: number | null;
  lossMaxRel: number | null;
  gradMaxAbs: number | null;
  gradMaxRel: number | null;
  /** Tolerance used for the loss (and the gradient unless gradTolerance differs). */
  tolerance: Tolerance | null;
  gradTolerance: Tolerance | null;
  /** What happened, in one line. */
  message: string;
  /** Why smoothce deviates from PyTorch here, for 'rejected' and 'accepted' (and marked cases). */
  deviation?: string;
}

export interface ParitySummary {
  total: number;
  passed: number;
  failed: number;
  /** Of failed: smoothce threw where PyTorch did not, or returned where PyTorch raised. */
  errors: number;
  errorsMatched: number;
  rejected: number;
  accepted: number;
  /** True when no case failed. */
  ok: boolean;
  /** Names of the failing cases. */
  failedNames: string[];
}

export interface ParityReport {
  results: CaseResult[];
  summary: ParitySummary;
}

export interface ParityOptions extends ToleranceOptions {
  /** Device to replay on ('cpu' default). */
  device?: Device;
}

/**
 * Inputs smoothce refuses on purpose although PyTorch takes them (docs/api.md, "Where
 * smoothce differs from PyTorch"): the reason, or undefined.
 */
export function knownRejection(c: ParityCase): string | undefined {
  const eps = c.options.labelSmoothing;
  if (Number.isNaN(eps)) return 'smoothce rejects labelSmoothing NaN; PyTorch silently uses 0';
  if (eps < 0) return 'smoothce rejects labelSmoothing < 0; PyTorch silently uses 0';
  return undefined;
}

/** Inputs PyTorch rejects that smoothce accepts on purpose: the reason, or undefined. */
export function knownAcceptance(c: ParityCase): string | undefined {
  if (!isExpectedError(c.expected)) return undefined;
  const msg = c.expected.error.message;
  if (c.target.dtype === 'int32' && /found Int\b/.test(msg)) {
    return 'smoothce accepts int32 class indices (converted to int64); PyTorch wants int64';
  }
  const probability = c.input.shape.length === c.target.shape.length && c.input.shape.every((d, i) => d === c.target.shape[i]);
  if (c.weight && c.weight.shape.length !== 1 && /weight tensor/.test(msg)) {
    return `smoothce takes class weights as a flat list of C numbers, so a weight of shape [${c.weight.shape.join(', ')}] reaches it as ${c.weight.data.length} weights`;
  }
  if (c.weight && !probability && c.weight.dtype !== c.input.dtype && /expected scalar type \w+ but found \w+/.test(msg)) {
    return "smoothce converts class weights to the input's dtype; PyTorch wants them in that dtype";
  }
  return undefined;
}

function isParsed(c: unknown): c is ParityCase {
  const o = c as { options?: { ignoreIndex?: unknown } } | null;
  return !!o && typeof o === 'object' && typeof o.options?.ignoreIndex === 'bigint';
}

function normalise(cases: unknown): { cases: ParityCase[]; file?: string } {
  if (Array.isArray(cases)) {
    return { cases: cases.map((c, index) => (isParsed(c) ? c : parseCase(c, { index }))) };
  }
  if (cases && typeof cases === 'object' && Array.isArray((cases as CaseFile).cases)) {
    const f = cases as CaseFile;
    if (f.cases.every(isParsed)) return { cases: f.cases, file: f.source };
    return { cases: parseCaseFile(cases).cases };
  }
  throw typeError('cases', 'an array of cases or a case file { cases: [...] } (see docs/parity.md)', cases);
}

function replay(c: ParityCase, device: Device | undefined, grad: boolean): CrossEntropyResult {
  const opts: CrossEntropyOptions = {
    reduction: c.options.reduction,
    ignoreIndex: c.options.ignoreIndex,
    labelSmoothing: c.options.labelSmoothing,
  };
  if (device !== undefined) opts.device = device;
  if (c.weight) opts.weight = c.weight.data as Float32Array | Float64Array;
  if (grad) {
    opts.grad = true;
    const g = c.gradOutput;
    if (typeof g === 'number') {
      opts.gradOutput = g;
    } else if (g !== null && g.shape.length === 0 && g.data.length === 1 && typeof g.data[0] === 'number') {
      // A 0-d upstream gradient is a number (broadcast over the per-position losses for 'none').
      opts.gradOutput = g.data[0];
    } else if (g !== null) {
      // Reduced-precision upstream gradients travel as their float32 values.
      opts.gradOutput = { ...g, dtype: g.dtype === 'bfloat16' || g.dtype === 'float16' ? 'float32' : g.dtype } as Tensor;
    }
  }
  return crossEntropy(c.input as Tensor, c.target as Tensor, opts);
}

function lossArray(loss: number | Tensor): { data: ArrayLike<number>; shape: number[] } {
  return typeof loss === 'number' ? { data: [loss], shape: [] } : { data: loss.data as ArrayLike<number>, shape: loss.shape };
}

function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message.split('\n')[0]}`;
  return String(err);
}

/** Replays one case and compares it with PyTorch's outcome. */
export function checkCase(c: ParityCase, options: ParityOptions = {}, file?: string): CaseResult {
  const base = {
    name: c.name,
    ...(file !== undefined ? { file } : {}),
    lossMaxAbs: null,
    lossMaxRel: null,
    gradMaxAbs: null,
    gradMaxRel: null,
    tolerance: null,
    gradTolerance: null,
  };
  const expected = c.expected;
  if (isExpectedError(expected)) {
    try {
      replay(c, options.device, c.gradOutput !== null);
    } catch (err) {
      return {
        ...base,
        status: 'error-matched',
        message: `PyTorch ${expected.error.type}: ${expected.error.message} | smoothce ${errorText(err)}`,
      };
    }
    const accepted = c.deviation ?? knownAcceptance(c);
    if (accepted) {
      return { ...base, status: 'accepted', deviation: accepted, message: `PyTorch ${expected.error.type}: ${expected.error.message}; smoothce accepts it (deviation: ${accepted})` };
    }
    return {
      ...base,
      status: 'error-missed',
      message: `PyTorch raised ${expected.error.type}: ${expected.error.message}, but smoothce returned a result`,
    };
  }

  const deviation = c.deviation ?? knownRejection(c);
  let result: CrossEntropyResult;
  try {
    result = replay(c, options.device, expected.gradInput !== null);
  } catch (err) {
    if (deviation === undefined) {
      return { ...base, status: 'error', message: `PyTorch returned values but smoothce threw ${errorText(err)}` };
    }
    const rejected = `rejected (deviation: ${deviation}): ${errorText(err)}`;
    // Where PyTorch's behaviour has an exact equivalent smoothce accepts, still check the values.
    const eq = equivalent(c);
    if (!eq) return { ...base, status: 'rejected', deviation, message: rejected };
    let eqResult: CrossEntropyResult;
    try {
      eqResult = replay(eq.case, options.device, expected.gradInput !== null);
    } catch (err2) {
      return { ...base, status: 'fail', deviation, message: `${rejected}; and the equivalent input (${eq.how}) threw ${errorText(err2)}` };
    }
    const v = compareValues(c, eqResult, expected, options);
    return {
      ...base,
      ...v.fields,
      status: v.ok ? 'rejected' : 'fail',
      deviation,
      message: v.ok
        ? `rejected (deviation: ${deviation}); PyTorch's values checked with ${eq.how}`
        : `${rejected}; PyTorch's values differ from smoothce with ${eq.how}: ${v.message}`,
    };
  }

  const v = compareValues(c, result, expected, options);
  let message = v.message;
  if (c.deviation !== undefined) message = `marked as a deviation (${c.deviation}) but smoothce accepted it; ${message}`;
  return {
    ...base,
    ...v.fields,
    status: v.ok ? 'pass' : 'fail',
    message,
    ...(c.deviation !== undefined ? { deviation: c.deviation } : {}),
  };
}

/**
 * For inputs smoothce rejects but PyTorch maps onto one it accepts, that input and how it
 * was made: label_smoothing < 0 or NaN behaves as 0 in PyTorch (spec §0).
 */
function equivalent(c: ParityCase): { case: ParityCase; how: string } | undefined {
  const eps = c.options.labelSmoothing;
  if (Number.isNaN(eps) || eps < 0) {
    return { case: { ...c, options: { ...c.options, labelSmoothing: 0 } }, how: 'labelSmoothing 0, as PyTorch treats it' };
  }
  return undefined;
}

interface ValueCheck {
  ok: boolean;
  message: string;
  fields: Pick<CaseResult, 'lossMaxAbs' | 'lossMaxRel' | 'gradMaxAbs' | 'gradMaxRel' | 'tolerance' | 'gradTolerance'>;
}

function compareValues(c: ParityCase, result: CrossEntropyResult, expected: ExpectedValues, options: ParityOptions): ValueCheck {
  const lossTol = toleranceFor([expected.loss.dtype], options);
  const actualLoss = lossArray(result.loss as number | Tensor);
  const lossCmp = compareArrays(actualLoss.data, actualLoss.shape, expected.loss.data as ArrayLike<number>, expected.loss.shape, lossTol);
  let gradCmp: Comparison | undefined;
  let gradTol: Tolerance | null = null;
  let gradMissing = false;
  if (expected.gradInput) {
    gradTol = toleranceFor([expected.gradInput.dtype], options);
    if (result.grad) {
      gradCmp = compareArrays(result.grad.data, result.grad.shape, expected.gradInput.data as ArrayLike<number>, expected.gradInput.shape, gradTol);
    } else {
      gradMissing = true;
    }
  }
  const problems: string[] = [];
  // Expected values of a bfloat16/float16 tensor must be numbers of that dtype.
  for (const [what, t] of [['loss', expected.loss], ['grad', expected.gradInput]] as const) {
    const bad = t ? offGrid(t.data as ArrayLike<number>, t.dtype) : undefined;
    if (bad) {
      problems.push(
        `${what}: expected value ${fmtNum(bad.value)} at flat index ${bad.index} is not a ${t!.dtype} number (nearest ${fmtNum(bad.nearest)}), ` +
          `so it was not computed in ${t!.dtype}`,
      );
    }
  }
  const ok = lossCmp.ok && !gradMissing && (gradCmp?.ok ?? true) && problems.length === 0;
  if (!lossCmp.ok) problems.push(describeComparison('loss', lossCmp));
  if (gradMissing) problems.push('grad: smoothce returned no gradient');
  if (gradCmp && !gradCmp.ok) problems.push(describeComparison('grad', gradCmp));
  return {
    ok,
    message: ok ? `within rtol ${fmtTol(lossTol.rtol)} atol ${fmtTol(lossTol.atol)}` : problems.join('; '),
    fields: {
      lossMaxAbs: lossCmp.maxAbs,
      lossMaxRel: lossCmp.maxRel,
      gradMaxAbs: gradCmp ? gradCmp.maxAbs : null,
      gradMaxRel: gradCmp ? gradCmp.maxRel : null,
      tolerance: lossTol,
      gradTolerance: gradTol,
    },
  };
}

/** Totals of a list of case results. */
export function summarise(results: readonly CaseResult[]): ParitySummary {
  const count = (s: CaseStatus): number => results.filter((r) => r.status === s).length;
  const failedNames = results.filter((r) => FAILING.has(r.status)).map((r) => r.name);
  return {
    total: results.length,
    passed: count('pass'),
    failed: failedNames.length,
    errors: count('error') + count('error-missed'),
    errorsMatched: count('error-matched'),
    rejected: count('rejected'),
    accepted: count('accepted'),
    ok: failedNames.length === 0,
    failedNames,
  };
}

/**
 * Replays cases (parsed, or in case-file JSON form; an array or a case file) through
 * crossEntropy and compares loss and gradient with PyTorch's, per case. Tolerances
 * default to torch.testing.assert_close's for the least precise dtype involved
 * (float32 rtol 1.3e-6 atol 1e-5, float64 1e-7/1e-7, bfloat16 1.6e-2/1e-5, float16
 * 1e-3/1e-5); `rtol`/`atol` override them for every dtype, `tolerances` per dtype.
 */
/** Cases as parsed (loadCaseFile) or as JSON objects in the case format (validated here). */
export type ParityInput = readonly ParityCase[] | CaseFile | readonly object[] | { readonly cases: readonly object[] };

export function checkParity(cases: ParityInput, options: ParityOptions = {}): ParityReport {
  const { cases: list, file } = normalise(cases);
  const results = quietly(() => list.map((c) => checkCase(c, options, file)));
  return { results, summary: summarise(results) };
}

/**
 * Runs fn without smoothce's advice warnings (SMOOTHCE_*): a replayed case was captured
 * from someone's real data, and the advice is for new code, not for a parity check.
 */
function quietly<T>(fn: () => T): T {
  const original = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const opt = rest[0];
    const code = typeof opt === 'object' && opt !== null ? (opt as { code?: string }).code : rest[1];
    if (typeof code === 'string' && code.startsWith('SMOOTHCE_')) return;
    return (original as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return fn();
  } finally {
    process.emitWarning = original;
  }
}

/** One human-readable line for a case result. */
export function formatResult(r: CaseResult, nameWidth = 0): string {
  const status = r.status.toUpperCase();
  const num = (x: number | null): string => (x === null ? '-' : fmtNum(x));
  const values =
    r.lossMaxAbs === null
      ? ''
      : `  loss abs ${num(r.lossMaxAbs)} rel ${num(r.lossMaxRel)}` +
        (r.gradMaxAbs === null ? '  grad -' : `  grad abs ${num(r.gradMaxAbs)} rel ${num(r.gradMaxRel)}`);
  const detail = r.status === 'pass' ? '' : `  ${r.message}`;
  return `${status.padEnd(13)} ${r.name.padEnd(nameWidth)}${values}${detail}`;
}

export type { CaseTensor };
