import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CaseFormatError,
  checkParity,
  crossEntropy,
  loadCaseFile,
  parseCaseFile,
  readNpy,
  tensor,
  torchVersion,
  toMatchTorch,
  writeCaseFile,
  type CaseFile,
} from '../lib/index';
import { runParity } from '../lib/cli/parity';
import { parseJson } from '../lib/parity/cases';
import { nearestInDType, offGrid } from '../lib/parity/compare';
import { capture, python, tempDir, writeOracleCases } from './helpers/parity-oracle';

expect.extend({ toMatchTorch });
declare module 'vitest' {
  interface Matchers<T = any> {
    toMatchTorch(expected: unknown, options?: { rtol?: number; atol?: number }): T;
  }
}

let dir: string;
let cleanup: () => void;
let oracleFile: string;
let oracle: CaseFile;
let raw: { cases: Array<Record<string, any>> };

beforeAll(() => {
  ({ dir, cleanup } = tempDir('smoothce-cases-'));
  oracleFile = path.join(dir, 'oracle.json');
  writeOracleCases(oracleFile);
  oracle = loadCaseFile(oracleFile);
  raw = JSON.parse(fs.readFileSync(oracleFile, 'utf8'));
});
afterAll(() => cleanup());

const minimal = () => ({
  name: 'c1',
  input: { dtype: 'float32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
  target: { dtype: 'int64', shape: [2], data: [0, 2] },
  weight: null,
  options: { reduction: 'mean', ignore_index: -100, label_smoothing: 0.1 },
  grad_output: null,
  expected: { loss: { dtype: 'float32', shape: [], data: [1] }, grad_input: null },
});

function parseError(mutate: (c: any) => void, file = 'f.json'): string {
  const c = minimal();
  mutate(c);
  try {
    parseCaseFile({ format: 'smoothce-cases', version: 1, cases: [c] }, { file });
  } catch (err) {
    expect(err).toBeInstanceOf(CaseFormatError);
    return (err as Error).message;
  }
  throw new Error('no error');
}

describe('case files: reading', () => {
  it('reads values, non-finite strings, -0.0, nested data and int64 beyond 2^53', () => {
    const f = parseCaseFile({
      cases: [
        {
          ...minimal(),
          input: { dtype: 'float64', shape: [2, 3], data: [[1, 'NaN', 'Infinity'], ['-Infinity', -0.0, 5e-324]] },
          target: { dtype: 'int64', shape: [2], data: ['9007199254740993', -100] },
          options: { reduction: 'none', ignore_index: '-9223372036854775808', label_smoothing: 'NaN' },
          grad_output: 2.5,
        },
      ],
    });
    const c = f.cases[0];
    const x = Array.from(c.input.data as Float64Array);
    expect(x[1]).toBeNaN();
    expect(x.slice(2, 4)).toEqual([Infinity, -Infinity]);
    expect(Object.is(x[4], -0)).toBe(true);
    expect(x[5]).toBe(5e-324);
    expect(Array.from(c.target.data as BigInt64Array)).toEqual([9007199254740993n, -100n]);
    expect(c.options).toEqual({ reduction: 'none', ignoreIndex: -(2n ** 63n), labelSmoothing: NaN });
    expect(c.gradOutput).toBe(2.5);
    expect(f.version).toBe(1);
  });

  it('keeps integer literals beyond 2^53 exact (as Python json writes them)', () => {
    const v = parseJson('{"a": [9223372036854775807, -4611686018427387905, 1.2345678901234567891, 12], "s": "12345678901234567890"}') as any;
    expect(v.a).toEqual(['9223372036854775807', '-4611686018427387905', 1.2345678901234567891, 12]);
    expect(v.s).toBe('12345678901234567890');
  });

  it.each([
    [(c: any) => delete c.name, /f\.json: case #0: name: expected a non-empty string, got nothing/],
    [(c: any) => (c.input.dtype = 'float8'), /case "c1" \(#0\): input\.dtype: expected one of float32, float64, bfloat16, float16, int32, int64, uint8, got "float8"/],
    [(c: any) => (c.input.data = [1, 2, 3]), /case "c1" \(#0\): input\.data: shape \[2, 3\] needs 6 values but data has 3/],
    [(c: any) => (c.input.data = [[1, 2], [3, 4], [5, 6]]), /input\.data: expected 2 entries along dimension 0 of shape \[2, 3\], got \[\[1,2\],\[3,4\],\[5,6\]\]/],
    [(c: any) => (c.input.data[4] = 'NAN'), /input\.data\[4\]: expected a number or "NaN", "Infinity", "-Infinity", got "NAN"/],
    [(c: any) => (c.target.data = [0, '9223372036854775808']), /target\.data\[1\]: 9223372036854775808 is outside the int64 range/],
    [(c: any) => (c.target.data = [0, 1.5]), /target\.data\[1\]: expected an integer \(a number, or a decimal string beyond 2\^53\), got 1\.5/],
    [(c: any) => (c.options.labelsmoothing = 0.1), /options\.labelsmoothing: unknown key \(did you mean "label_smoothing"\?\)/],
    [(c: any) => (c.options.reduction = 'avg'), /options\.reduction: expected "mean", "sum" or "none", got "avg"/],
    [(c: any) => (c.grad_ouput = null), /case "c1" \(#0\): grad_ouput: unknown key \(did you mean "grad_output"\?\)/],
    [(c: any) => delete c.expected.loss, /expected\.loss: expected a tensor/],
    [(c: any) => (c.expected.grad_input = { dtype: 'float32', shape: [3, 2], data: [1, 2, 3, 4, 5, 6] }), /expected\.grad_input\.shape: \[3, 2\] differs from the input's \[2, 3\]/],
    [(c: any) => (c.expected.loss.dtype = 'int64'), /expected\.loss\.dtype: expected a floating dtype/],
    [(c: any) => (c.input.npy = 'x.npy'), /input: expected exactly one of "data" and "npy"/],
    [(c: any) => (c.input = { dtype: 'float32', shape: [2, 3], npy: 'missing.npy' }), /input\.npy: .*missing\.npy: cannot read/],
    [(c: any) => (c.deviation = 3), /deviation: expected a non-empty string/],
  ])('rejects an invalid case with the file, case and field (%#)', (mutate, pattern) => {
    expect(parseError(mutate)).toMatch(pattern);
  });

  it('rejects duplicate names, other formats and newer versions; accepts a bare { cases }', () => {
    expect(() => parseCaseFile({ cases: [minimal(), minimal()] }, { file: 'd.json' })).toThrow(/d\.json: case "c1" \(#1\): name: duplicate case name/);
    expect(() => parseCaseFile({ format: 'other', cases: [] })).toThrow(/format: expected "smoothce-cases", got "other"/);
    expect(() => parseCaseFile({ format: 'smoothce-cases', version: 2, cases: [] })).toThrow(/reads case format version 1; the file is version 2/);
    expect(() => parseCaseFile({ cases: {} })).toThrow(/cases: expected an array of cases/);
    expect(parseCaseFile({ cases: [minimal()] }).cases).toHaveLength(1);
  });

  it('lets error cases name dtypes smoothce does not have', () => {
    const c = { ...minimal(), target: { dtype: 'int16', shape: [2], data: [0, 1] }, expected: { error: { type: 'RuntimeError', message: 'expected scalar type Long but found Short' } } };
    const report = checkParity([c]);
    expect(report.results[0].status).toBe('error-matched');
    expect(report.results[0].message).toMatch(/smoothce TypeError: Expected one of .* for target\.dtype but received "int16"/);
    expect(() => parseCaseFile({ cases: [{ ...c, expected: minimal().expected }] })).toThrow(/target\.dtype: expected one of/);
  });

  it('says how to write non-finite numbers when the JSON has bare NaN', () => {
    const file = path.join(dir, 'bare-nan.json');
    fs.writeFileSync(file, '{"cases": [{"x": NaN}]}');
    expect(() => loadCaseFile(file)).toThrow(/bare-nan\.json: not valid JSON: .*write non-finite numbers as the strings "NaN"/);
  });
});

describe('case files: writing and .npy manifests', () => {
  it('round-trips inline JSON exactly (NaN, infinities, -0.0, float32 bits, int64 beyond 2^53)', () => {
    const file = path.join(dir, 'inline.json');
    writeCaseFile(file, oracle, { npyThreshold: Infinity });
    const back = loadCaseFile(file);
    expect(back.torch).toBe(oracle.torch);
    expect(back.cases.map((c) => c.name)).toEqual(oracle.cases.map((c) => c.name));
    for (let i = 0; i < oracle.cases.length; i++) {
      expect({ ...back.cases[i] }).toEqual({ ...oracle.cases[i] });
    }
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toContain('"Infinity"');
    expect(text).toContain('"4611686018427387904"');
  });

  it('writes large tensors as .npy next to the manifest, numpy reads them, and the CLI replays the manifest', () => {
    const file = path.join(dir, 'manifest.json');
    const written = writeCaseFile(file, oracle, { npyThreshold: 0 });
    const npys = written.filter((f) => f.endsWith('.npy'));
    expect(npys.length).toBeGreaterThan(40);
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(json.cases[0].input).toEqual({ dtype: 'float32', shape: [4, 5], npy: 'manifest.data/f32_mean_eps0.1.input.npy' });
    expect(json.cases[4].input.dtype).toBe('bfloat16');
    expect(readNpy(path.join(dir, json.cases[4].input.npy)).dtype).toBe('float32');
    const shapes = python(
      'import numpy as np, sys; a = np.load(sys.argv[1]); b = np.load(sys.argv[2]); print(a.dtype.str, a.shape, b.dtype.str, b.shape, b.reshape(-1).tolist())',
      [path.join(dir, 'manifest.data/f32_mean_eps0.1.input.npy'), path.join(dir, 'manifest.data/f64_big_ignore_index.target.npy')],
    );
    expect(shapes.trim()).toBe('<f4 (4, 5) <i8 (3,) [0, 4611686018427387904, 1]');
    const back = loadCaseFile(file);
    for (let i = 0; i < oracle.cases.length; i++) expect({ ...back.cases[i] }).toEqual({ ...oracle.cases[i] });
    const io = capture();
    expect(runParity([file], {}, io)).toBe(0);
    // A .npy whose shape disagrees with the manifest is caught.
    json.cases[0].input.shape = [5, 4];
    fs.writeFileSync(path.join(dir, 'manifest-bad.json'), JSON.stringify(json));
    expect(() => loadCaseFile(path.join(dir, 'manifest-bad.json'))).toThrow(
      /manifest-bad\.json: case "f32_mean_eps0\.1" \(#0\): input\.npy: manifest\.data\/f32_mean_eps0\.1\.input\.npy has shape \[4, 5\] but the case says \[5, 4\]/,
    );
  });

  it('replays a manifest whose .npy files were written by numpy', () => {
    const file = path.join(dir, 'py-manifest.json');
    writeOracleCases(file, { npy: true });
    expect(JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8')))).toContain('"npy"');
    const io = capture();
    expect(runParity([file], {}, io)).toBe(0);
  });
});

describe('checkParity', () => {
  it('reports each case with its status and errors, and a summary', () => {
    const report = checkParity(oracle);
    const by = Object.fromEntries(report.results.map((r) => [r.name, r]));
    expect(by['f32_mean_eps0.1']).toMatchObject({ status: 'pass', tolerance: { rtol: 1.3e-6, atol: 1e-5 } });
    expect(by['f32_mean_eps0.1'].lossMaxAbs).toBeLessThan(1e-6);
    expect(by['f32_mean_eps0.1'].gradMaxRel).not.toBeNull();
    expect(by['f64_1d_input'].tolerance).toEqual({ rtol: 1e-7, atol: 1e-7 });
    expect(by['bf16_mean_eps0.1'].tolerance).toEqual({ rtol: 1.6e-2, atol: 1e-5 });
    expect(by['err_target_oob']).toMatchObject({ status: 'error-matched', lossMaxAbs: null });
    expect(by['dev_negative_eps'].status).toBe('rejected');
    expect(by['dev_negative_eps'].message).toMatch(/^rejected \(deviation: smoothce rejects label_smoothing < 0/);
    // float16 on CPU: an error case in torch 1.13's file, values in 2.x's (the oracle decides).
    const errors = oracle.cases.filter((c) => 'error' in c.expected).length;
    expect(errors).toBe('error' in oracle.cases.find((c) => c.name === 'err_input_half')!.expected ? 2 : 1);
    expect(report.summary).toMatchObject({ total: 16, passed: 15 - errors, failed: 0, errorsMatched: errors, rejected: 1, accepted: 0, ok: true, failedNames: [] });
  });

  it('fails a case off by 1e-3, and passes it with a looser tolerance', () => {
    const c = JSON.parse(JSON.stringify(raw.cases.find((x) => x.name === 'f32_larger')));
    c.expected.grad_input.data[3] += 1e-3;
    const failed = checkParity([c]);
    expect(failed.results[0].status).toBe('fail');
    expect(failed.results[0].message).toMatch(/^grad: 1 element\(s\) differ beyond rtol 1\.3e-6 atol 1e-5; worst at flat index 3/);
    expect(failed.summary).toMatchObject({ ok: false, failedNames: ['f32_larger'] });
    expect(checkParity([c], { atol: 2e-3 }).summary.ok).toBe(true);
    expect(checkParity([c], { tolerances: { float32: { atol: 2e-3 } } }).summary.ok).toBe(true);
  });

  it('recognises deviations that are not marked, and never counts them as passes', () => {
    const neg = JSON.parse(JSON.stringify(raw.cases.find((x) => x.name === 'dev_negative_eps')));
    delete neg.deviation;
    neg.name = 'neg';
    const int32 = { ...minimal(), name: 'i32', target: { dtype: 'int32', shape: [2], data: [0, 1] }, expected: { error: { type: 'RuntimeError', message: 'expected scalar type Long but found Int' } } };
    const missed = { ...minimal(), name: 'missed', expected: { error: { type: 'RuntimeError', message: 'something torch rejects' } } };
    const r = checkParity([neg, int32, missed]);
    expect(r.results.map((x) => x.status)).toEqual(['rejected', 'accepted', 'error-missed']);
    expect(r.results[0].deviation).toMatch(/labelSmoothing < 0/);
    expect(r.results[1].deviation).toMatch(/int32 class indices/);
    expect(r.summary).toMatchObject({ passed: 0, rejected: 1, accepted: 1, failed: 1, failedNames: ['missed'] });
  });

  it("still checks PyTorch's values of a rejected case where PyTorch's reading has an equivalent (ε < 0 acts as 0)", () => {
    const dev = JSON.parse(JSON.stringify(raw.cases.find((x) => x.name === 'dev_negative_eps')));
    const ok = checkParity([dev]).results[0];
    expect(ok).toMatchObject({ status: 'rejected', deviation: dev.deviation });
    expect(ok.message).toMatch(/PyTorch's values checked with labelSmoothing 0, as PyTorch treats it/);
    expect(ok.lossMaxAbs).toBeLessThan(1e-6);
    dev.expected.loss.data[0] += 1e-3;
    const bad = checkParity([dev]);
    expect(bad.results[0].status).toBe('fail');
    expect(bad.results[0].message).toMatch(/PyTorch's values differ from smoothce with labelSmoothing 0.*loss: 1 element\(s\) differ/);
    expect(bad.summary.failedNames).toEqual(['dev_negative_eps']);
  });

  it('reports smoothce throwing where PyTorch returned values as a failure', () => {
    // A case file claiming values for a target out of range: smoothce throws (as PyTorch would).
    const c = { ...minimal(), target: { dtype: 'int64', shape: [2], data: [0, 7] } };
    const r = checkParity([c]).results[0];
    expect(r.status).toBe('error');
    expect(r.message).toMatch(/smoothce threw RangeError: .*target\[1\] is 7/);
  });

  it('takes NaN as equal to NaN and infinities only of the same sign', () => {
    const c = raw.cases.find((x) => x.name === 'f32_empty_mean')!;
    expect(c.expected.loss.data).toEqual(['NaN']);
    expect(checkParity([c]).results[0].status).toBe('pass');
    const inf = JSON.parse(JSON.stringify(raw.cases.find((x) => x.name === 'f32_neg_inf_nontarget_eps')));
    expect(inf.expected.loss.data).toEqual(['Infinity']);
    expect(checkParity([inf]).results[0].status).toBe('pass');
    inf.expected.loss.data = ['-Infinity'];
    expect(checkParity([inf]).results[0]).toMatchObject({ status: 'fail', lossMaxAbs: Infinity });
    inf.expected.loss.data = [1e30];
    expect(checkParity([inf]).results[0].status).toBe('fail');
  });
});

describe('bfloat16 and float16', () => {
  it('replays PyTorch bfloat16 cases within bfloat16 tolerance, and fails them beyond it', () => {
    const bf = raw.cases.filter((c) => c.input.dtype === 'bfloat16');
    expect(bf.map((c) => c.name)).toEqual(['bf16_mean_eps0.1', 'bf16_kdim_none']);
    const r = checkParity(bf);
    expect(r.summary.passed).toBe(2);
    const loss = bf[0].expected.loss.data[0];
    const off = JSON.parse(JSON.stringify(bf[0]));
    off.expected.loss.data[0] = nearestInDType(loss * 1.03, 'bfloat16');
    expect(checkParity([off]).results[0]).toMatchObject({ status: 'fail', message: expect.stringMatching(/^loss: 1 element\(s\) differ beyond rtol 0\.016 atol 1e-5/) });
    // Inside the tolerance, but not a bfloat16 number: it was not computed in bfloat16.
    off.expected.loss.data[0] = loss + 1e-3;
    const offResult = checkParity([off]).results[0];
    expect(offResult.status).toBe('fail');
    expect(offResult.lossMaxRel).toBeLessThan(1.6e-2);
    expect(offResult.message).toMatch(new RegExp(`^loss: expected value ${loss + 1e-3} at flat index 0 is not a bfloat16 number \\(nearest ${loss}\\)`));
  });

  it('rounds to the bfloat16 and float16 grids', () => {
    expect(nearestInDType(1 + 2 ** -8 + 2 ** -12, 'bfloat16')).toBe(1 + 2 ** -7);
    expect(nearestInDType(2.376, 'bfloat16')).toBe(2.375);
    expect(nearestInDType(-300.7, 'bfloat16')).toBe(-300);
    expect(nearestInDType(0.1, 'float16')).toBe(0.0999755859375);
    expect(nearestInDType(1e-7, 'float16')).toBe(2 ** -24 * 2);
    expect(nearestInDType(70000, 'float16')).toBe(Infinity);
    expect(offGrid([0.1015625, 0.0107421875, 'NaN' as unknown as number, 0], 'bfloat16')).toBeUndefined();
    expect(offGrid([0.101562], 'bfloat16')).toBeUndefined(); // 6 printed digits are enough
    expect(offGrid([1, 2.376], 'bfloat16')).toEqual({ index: 1, value: 2.376, nearest: 2.375 });
  });

  it('float16 on CPU: an error where the oracle torch raises one (1.13), its values where it computes them (2.x)', () => {
    // Asks the oracle (the same torch version as the linked LibTorch) what float16 on CPU does.
    const out = python(
      [
        'import json, torch',
        'x = torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.float16, requires_grad=True)',
        'try:',
        '    l = torch.nn.functional.cross_entropy(x, torch.tensor([0, 1]), label_smoothing=0.1)',
        '    l.backward()',
        '    print(json.dumps({"torch": torch.__version__, "loss": l.item(), "grad": x.grad.float().flatten().tolist()}))',
        'except RuntimeError as e:',
        '    print(json.dumps({"torch": torch.__version__, "error": str(e)}))',
      ].join('\n'),
    );
    const want = JSON.parse(out) as { torch: string; loss?: number; grad?: number[]; error?: string };
    expect(want.torch.split('.').slice(0, 2)).toEqual(torchVersion().split('.').slice(0, 2));
    const x = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], 'float16');
    const call = () => crossEntropy(x, tensor([0, 1], [2], 'int64'), { labelSmoothing: 0.1, grad: true });
    if (want.error !== undefined) {
      expect(want.error).toMatch(/Half/);
      const v = torchVersion().replace(/\./g, '\\.');
      expect(call).toThrow(new RegExp(`float16 input is not supported on cpu by the linked LibTorch ${v}`));
    } else {
      const r = call();
      expect(r.loss).toBe(want.loss);
      expect(Array.from(r.grad!.data as Float32Array)).toEqual(want.grad);
    }
  });
});

describe('toMatchTorch', () => {
  it('matches a crossEntropy result against a case expected block (file form and parsed form)', () => {
    for (const name of ['f32_mean_eps0.1', 'f64_kdim_sum_weight_ignore', 'bf16_kdim_none']) {
      const c = oracle.cases.find((x) => x.name === name)!;
      const result = crossEntropy(c.input as any, c.target as any, {
        reduction: c.options.reduction,
        ignoreIndex: c.options.ignoreIndex,
        labelSmoothing: c.options.labelSmoothing,
        weight: c.weight?.data as Float64Array | undefined,
        grad: true,
      });
      expect(result).toMatchTorch(raw.cases.find((x) => x.name === name)!.expected);
      expect(result).toMatchTorch(c.expected);
      expect(result).toMatchTorch(c);
    }
  });

  it('fails with a message naming the worst element, and supports .not', () => {
    const c = raw.cases.find((x) => x.name === 'f32_mean_eps0.1')!;
    const o = oracle.cases.find((x) => x.name === 'f32_mean_eps0.1')!;
    const result = crossEntropy(o.input as any, o.target as any, { labelSmoothing: 0.1, grad: true });
    const off = JSON.parse(JSON.stringify(c.expected));
    off.grad_input.data[7] += 1e-3;
    expect(() => expect(result).toMatchTorch(off)).toThrow(/expected the result to match PyTorch:\s+loss: close .*\s+grad: 1 element\(s\) differ beyond rtol 1\.3e-6 atol 1e-5; worst at flat index 7/);
    expect(result).not.toMatchTorch(off);
    expect(result).toMatchTorch(off, { atol: 2e-3 });
    expect(() => expect({ loss: result.loss }).toMatchTorch(c.expected)).toThrow(/the received result has no gradient/);
  });

  it('compares numbers and tensors, with the dtype tolerances', () => {
    expect(1.0000001).toMatchTorch({ dtype: 'float32', shape: [], data: [1] });
    expect(1.001).not.toMatchTorch({ dtype: 'float32', shape: [], data: [1] });
    expect(1.001).toMatchTorch({ dtype: 'bfloat16', shape: [], data: [1] });
    expect(tensor(new Float64Array([1, NaN, -Infinity]), [3])).toMatchTorch({ dtype: 'float64', shape: [3], data: [1, 'NaN', '-Infinity'] });
    expect(tensor(new Float64Array([1, NaN, Infinity]), [3])).not.toMatchTorch({ dtype: 'float64', shape: [3], data: [1, 'NaN', '-Infinity'] });
    expect(tensor(new Float64Array([1, 2]), [2])).not.toMatchTorch({ dtype: 'float64', shape: [1, 2], data: [1, 2] });
    expect(2).toMatchTorch(2.0000000001);
  });

  it('checks expected errors by calling a function', () => {
    const err = { error: { type: 'IndexError', message: 'Target 3 is out of bounds.' } };
    expect(() => crossEntropy(tensor(new Float32Array(6), [2, 3]), tensor([0, 3], [2], 'int64'))).toMatchTorch(err);
    expect(() => crossEntropy(tensor(new Float32Array(6), [2, 3]), tensor([0, 2], [2], 'int64'))).not.toMatchTorch(err);
  });

  it("is importable as 'smoothce/vitest' (CJS and ESM) and loads no vitest at run time", () => {
    const root = path.resolve(__dirname, '..');
    const cjs = execFileSync(
      process.execPath,
      ['-e', "const m = require('smoothce/vitest'); require('smoothce'); console.log(typeof m.toMatchTorch, Object.keys(require.cache).filter((k) => /node_modules[\\\\/](vitest|@vitest)/.test(k)).length)"],
      { cwd: root, encoding: 'utf8' },
    );
    expect(cjs.trim()).toBe('function 0');
    const esm = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', "import { toMatchTorch } from 'smoothce/vitest'; import { toMatchTorch as main, reference } from 'smoothce'; console.log(toMatchTorch === main, typeof reference.crossEntropy)"],
      { cwd: root, encoding: 'utf8' },
    );
    expect(esm.trim()).toBe('true function');
  });
});
