/**
 * The case format is one JSON Schema (lib/parity/case-schema.ts, validated with ajv): what
 * Python's capture() writes (python/smoothce_parity.py, run with the oracle's torch)
 * validates against it as it is, and a file that breaks it gets a CaseFormatError (code
 * ERR_SMOOTHCE_CASE_FORMAT) naming the file, the case and the field.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CASE_FILE_SCHEMA } from '../lib/parity/case-schema';
import { caseFileValidator } from '../lib/parity/case-validate';
import { CaseFormatError, loadCaseFile, parseCaseFile, parseJson, parseTensor } from '../lib/parity/cases';
import { ERROR_CODES } from '../lib/core/errors';
import { PYTHON, tempDir } from './helpers/parity-oracle';

const root = path.resolve(__dirname, '..');
let dir: string;
let cleanup: () => void;

/** Runs python/smoothce_parity.py's capture() on a spread of calls (with npy_threshold small in `npy`). */
function captureFile(file: string, npyThreshold: number): void {
  const code = `
import sys, torch
sys.path.insert(0, ${JSON.stringify(path.join(root, 'python'))})
from smoothce_parity import capture
torch.manual_seed(0)
out, t = sys.argv[1], int(sys.argv[2])
x = torch.randn(6, 5)
y = torch.randint(0, 5, (6,))
capture(x, y, out, label_smoothing=0.1, name='f32-mean', npy_threshold=t)
capture(x.double(), y, out, reduction='none', weight=torch.rand(5, dtype=torch.float64), name='f64-none-weight', npy_threshold=t)
capture(x, torch.tensor([0, -100, 2, 3, -100, 1]), out, reduction='sum', name='ignore', npy_threshold=t)
capture(torch.randn(2, 5, 3), torch.randint(0, 5, (2, 3)), out, label_smoothing=0.2, name='kdim', npy_threshold=t)
capture(x, torch.softmax(torch.randn(6, 5), 1), out, label_smoothing=0.05, name='probs', npy_threshold=t)
capture(x.to(torch.bfloat16), y, out, name='bf16', npy_threshold=t)
capture(x, torch.tensor([0, 1, 9, 0, 0, 0]), out, name='out-of-range', npy_threshold=t, record_errors=True)
capture(torch.tensor([[float('nan'), float('inf'), 1.0]]), torch.tensor([2]), out, name='non-finite', npy_threshold=t)
`;
  execFileSync(PYTHON, ['-c', code, file, String(npyThreshold)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

beforeAll(() => {
  ({ dir, cleanup } = tempDir('smoothce-schema-'));
});
afterAll(() => cleanup());

describe('the case-file JSON Schema', () => {
  it('is draft-07 and compiles (ajv, strict)', () => {
    expect(CASE_FILE_SCHEMA.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(typeof caseFileValidator()).toBe('function');
  });

  it.each([
    ['inline', 1_000_000],
    ['with .npy files', 8],
  ])("Python's capture() output (%s) validates against the schema as it is", (_what, threshold) => {
    const file = path.join(dir, `captured-${threshold}.json`);
    captureFile(file, threshold);
    const json = parseJson(fs.readFileSync(file, 'utf8'));
    const validate = caseFileValidator();
    const ok = validate(json);
    expect(validate.errors ?? [], 'schema errors').toEqual([]);
    expect(ok).toBe(true);
    const cases = (json as { cases: { name: string; expected: object }[] }).cases;
    expect(cases.map((c) => c.name)).toEqual(['f32-mean', 'f64-none-weight', 'ignore', 'kdim', 'probs', 'bf16', 'out-of-range', 'non-finite']);
    expect(cases.find((c) => c.name === 'out-of-range')!.expected).toHaveProperty('error');
    if (threshold < 100) expect(JSON.stringify(json)).toMatch(/"npy":/);
    // And the reader (schema, then values, shapes and .npy contents) accepts it.
    expect(loadCaseFile(file).cases).toHaveLength(8);
  });

  it('rejects what breaks it with a typed, coded error naming the file, case and field', () => {
    const base = { name: 'c1', input: { dtype: 'float32', shape: [1, 2], data: [0, 1] }, target: { dtype: 'int64', shape: [1], data: [0] }, expected: { loss: 0.5 } };
    const bad: [unknown, RegExp][] = [
      [{ cases: [base, { ...base, name: 'c2', input: { ...base.input, shape: [1, -2] } }] }, /^s\.json: case "c2" \(#1\): input\.shape\[1\]: expected a non-negative integer, got -2$/],
      [{ cases: [{ ...base, expected: { error: { type: 'IndexError' } } }] }, /^s\.json: case "c1" \(#0\): expected\.error\.message: expected a string, got nothing$/],
      [{ cases: [{ ...base, options: { reduction: 'mean', label_smothing: 0.1 } }] }, /options\.label_smothing: unknown key \(did you mean "label_smoothing"\?\); known keys: reduction, ignore_index, label_smoothing$/],
      [{ cases: [{ ...base, grad_output: 'two' }] }, /grad_output: expected a number, a tensor .* or null, got "two"$/],
      [{ cases: [{ ...base, weight: { dtype: 'float32', shape: [2] } }] }, /weight: expected exactly one of "data" and "npy", got \{"dtype":"float32","shape":\[2\]\}$/],
      [[], /^s\.json: expected a case file object/],
      [{ cases: [{ ...base, input: 42 }] }, /^s\.json: case "c1" \(#0\): input: expected a tensor \{"dtype", "shape", "data"\} or \{"dtype", "shape", "npy"\}, got 42$/],
    ];
    for (const [json, message] of bad) {
      let err: unknown;
      try {
        parseCaseFile(json, { file: 's.json' });
      } catch (e) {
        err = e;
      }
      expect(err, String(message)).toBeInstanceOf(CaseFormatError);
      expect((err as CaseFormatError).code).toBe(ERROR_CODES.CASE_FORMAT);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('checks a lone tensor too (parseTensor, used by the toMatchTorch matcher)', () => {
    expect(() => parseTensor({ dtype: 'float32', shape: [1], data: [1], npy: 'a.npy' }, 'expected.loss')).toThrow(
      /^expected\.loss: expected exactly one of "data" and "npy", got /,
    );
    expect(() => parseTensor({ dtype: 'float8', shape: [1], data: [1] }, 'received')).toThrow(/^received\.dtype: expected one of float32, /);
    expect(Array.from(parseTensor({ dtype: 'float64', shape: [2], data: ['NaN', 1] }).data as Float64Array)).toEqual([NaN, 1]);
  });
});
