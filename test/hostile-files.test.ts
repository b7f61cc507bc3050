/**
 * Untrusted files fail fast and cheap (docs/security.md): every hostile .npy and case file of
 * fuzz/files.js goes through the readers (parseNpy, readNpy, loadCaseFile) and the CLI
 * (`smoothce calibrate`, `smoothce parity`). Each must give a typed error (NpyError or
 * CaseFormatError, with its code and a message that says what is wrong), the CLI must exit 2
 * without a stack trace, and the CLI's peak RSS (VmHWM, read in the child as it exits) must
 * stay within a few MiB of a run on valid files, plus the file's size. A file that parses to
 * many values (JSON.parse needs 20-100 bytes per value) is refused before it is parsed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaseFormatError, loadCaseFile, NpyError, parseNpy, readNpy } from '../lib/index';
import { checkJsonDepth, JSON_LIMITS, JsonLimitError, readJsonText } from '../lib/parity/untrusted-json';
import { parseJson } from '../lib/parity/cases';
import { thrown } from './helpers/thrown';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const files = require('../fuzz/files.js') as {
  HOSTILE_NPY: Array<[string, string, () => Buffer]>;
  HOSTILE_CASES: Array<[string, string, () => Record<string, unknown>]>;
  writeFiles(dir: string, files: Record<string, unknown>): string;
  validNpy(shape?: number[], descr?: string): Buffer;
  npyBytes(o: { header: string; data?: Buffer }): Buffer;
};

const root = path.resolve(__dirname, '..');
const CLI = path.join(root, 'dist', 'cli.js');
const PEAK = path.join(__dirname, 'helpers', 'peak-rss.cjs');
const MiB = 1024 * 1024;

/** What each hostile file's error must say. */
const NPY_MESSAGES: Record<string, RegExp> = {
  'huge-claim': /truncated \.npy data: shape \(1000000, 1000000\) of <f4 needs 4000000000000 bytes, file has 24/,
  'huge-claim-1d': /needs 8796093022208 bytes, file has 8/,
  'overflow-product': /more than 2\^53 elements \(its product overflows\)/,
  'overflow-safe-dims': /more than 2\^53 elements/,
  'overflow-times-zero': /more than 2\^53 elements/,
  'dim-past-2^53': /shape entry 99999999999999999999 too large/,
  'many-dims': /more than 64 dimensions/,
  'truncated-data': /truncated \.npy data: shape \(1000, 1000\) of <f4 needs 4000000 bytes, file has 2000000/,
  'truncated-header': /truncated \.npy header/,
  'truncated-preamble': /not a \.npy file/,
  'header-len-4GiB': /header of 4294967295 bytes is longer than the limit of 65536 bytes/,
  'header-len-past-limit': /longer than the limit of 65536 bytes/,
  'extra-bytes': /7 bytes after the data/,
  'string-shape': /shape entry "'2'" is not a non-negative integer/,
  'float-shape': /shape entry "2\.5" is not a non-negative integer/,
  'negative-shape': /shape entry "-2" is not a non-negative integer/,
  'string-dtype': /unsupported \.npy dtype '<U8'/,
  'object-dtype': /unsupported \.npy dtype '\|O'/,
  'complex-dtype': /unsupported \.npy dtype '<c8'/,
  'float16-dtype': /unsupported \.npy dtype '<f2'.*save float16\/bfloat16 arrays as float32/,
  'structured-dtype': /no 'descr'/,
  'fortran-order': /fortran_order arrays are not supported/,
  'no-shape': /no 'shape' tuple/,
  'not-a-dict': /not a dict literal/,
  'bad-magic': /missing the \\x93NUMPY magic/,
  'bad-version': /unsupported \.npy format version 9\.0/,
  empty: /not a \.npy file/,
  'json-not-npy': /not a \.npy file/,
};

/** The hostile .npy files also run through the CLI: each family once. */
const CLI_NPY = new Set(['huge-claim', 'overflow-product', 'overflow-times-zero', 'truncated-data', 'header-len-4GiB', 'string-shape', 'complex-dtype', 'many-dims']);

const CASE_MESSAGES: Record<string, RegExp> = {
  'deep-200000': /nested too deeply: more than 128 levels of arrays and objects .*the limit is 128/,
  'deep-objects-200000': /nested too deeply: .*the limit is 128/,
  'deep-in-data': /nested too deeply: .*the limit is 128/,
  'deep-unclosed': /nested too deeply: .*the limit is 128/,
  'huge-claimed-shape': /input\.data: shape \[1000000, 1000000\] needs 1000000000000 values but data has 6/,
  'overflow-shape': /input\.shape: shape \[.*\] has more than 2\^53 elements/,
  'many-dims': /input\.shape: expected at most 64 dimensions, got 100000/,
  'strings-for-numbers': /input\.shape\[0\]: expected a non-negative integer, got "2"/,
  'string-data': /input\.data\[1\]: expected a number .* got "x"/,
  'string-option': /options\.label_smoothing: expected a number .* got "lots"/,
  'wrong-dtype': /input\.dtype: expected one of .* got "complex64"/,
  'truncated-json': /not valid JSON/,
  'not-json': /not valid JSON/,
  'huge-string': /input\.data\[0\]: expected a number .* got "x{20,}…/,
  'huge-string-big-int': /options\.ignore_index: 123456789012345678901234 is outside the int64 range/,
  'huge-file': /too large: 1073741824 bytes; the limit is 8388608 bytes/,
  'many-values': /too many values: more than 500000 array elements and object members .*the limit is 500000/,
  'many-objects': /too many values: more than 500000 .*the limit is 500000/,
  'over-size-limit': /too large: \d+ bytes; the limit is 8388608 bytes/,
  'npy-huge-claim': /input\.npy: .*truncated \.npy data: shape \(1000000, 1000000\)/,
  'npy-truncated': /input\.npy: .*truncated \.npy data/,
  'npy-absolute': /input\.npy: expected a path inside the case file's folder, got "\/dev\/zero"/,
  'npy-escapes': /input\.npy: expected a path inside the case file's folder/,
  'npy-fifo': /input\.npy: .*cannot read: a pipe, not a \.npy file/,
};

let dir: string;
let goodScores: string;
let goodLabels: string;
let baseline = 0;

/** Runs the CLI in a child; returns its exit code, output and peak RSS (bytes). */
function cli(args: string[]): { status: number | null; stdout: string; stderr: string; peak: number } {
  const rssFile = path.join(dir, `rss-${process.hrtime.bigint()}`);
  const r = spawnSync(process.execPath, ['-r', PEAK, CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, SMOOTHCE_PEAK_RSS_FILE: rssFile },
    timeout: 60_000,
    maxBuffer: 64 * MiB,
  });
  const peak = fs.existsSync(rssFile) ? Number(fs.readFileSync(rssFile, 'utf8')) : NaN;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, peak };
}

/** The CLI's answer to a hostile file: exit 2, one line that names the problem, no stack, bounded memory. */
function expectCliRefuses(r: ReturnType<typeof cli>, message: RegExp, fileBytes: number): void {
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(r.stderr).not.toMatch(/Maximum call stack|heap out of memory|Invalid (typed )?array length/);
  expect(r.stderr.length).toBeLessThan(4000); // the message is short whatever the file holds
  const grew = r.peak - baseline;
  expect(Number.isFinite(r.peak)).toBe(true);
  // Within a few MiB of a run on valid files, plus what reading the file itself costs. The
  // baseline is `calibrate`; a case file's run also loads ajv and compiles the case schema
  // (about 3 MiB more), hence 16 MiB rather than a tighter margin.
  expect(grew, `peak RSS grew by ${(grew / MiB).toFixed(1)} MiB`).toBeLessThan(Math.min(64 * MiB, 16 * MiB + 3 * fileBytes));
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-hostile-'));
  goodScores = path.join(dir, 'scores.npy');
  goodLabels = path.join(dir, 'labels.npy');
  fs.writeFileSync(goodScores, files.npyBytes({ header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: Buffer.from(new Float32Array([0.2, 0.3, 0.5, 0.6, 0.3, 0.1]).buffer) }));
  fs.writeFileSync(goodLabels, files.npyBytes({ header: "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", data: Buffer.from(new BigInt64Array([2n, 0n]).buffer) }));
  // The baseline: the same CLI on valid files (it loads LibTorch, as the hostile runs do).
  const ok = cli(['calibrate', '--scores', goodScores, '--labels', goodLabels]);
  expect(ok.status, ok.stderr).toBe(0);
  baseline = ok.peak;
  expect(baseline).toBeGreaterThan(0);
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('hostile .npy files', () => {
  it('every hostile .npy has an expected message (the list and the generator agree)', () => {
    expect(files.HOSTILE_NPY.map((h) => h[0]).sort()).toEqual(Object.keys(NPY_MESSAGES).sort());
  });

  for (const [name, what, make] of files.HOSTILE_NPY) {
    it(`${name}: ${what}`, () => {
      const bytes = make();
      const file = path.join(dir, `${name}.npy`);
      fs.writeFileSync(file, bytes);
      for (const read of [() => parseNpy(new Uint8Array(bytes)), () => readNpy(file)]) {
        const err = thrown(read);
        expect(err).toBeInstanceOf(NpyError);
        expect((err as NpyError).code).toBe('ERR_SMOOTHCE_NPY');
        expect((err as Error).message).toMatch(NPY_MESSAGES[name]);
        expect((err as Error).message.length).toBeLessThan(1000);
      }
      // Through the CLI, as scores (and as labels): one of each family, as each CLI run loads
      // LibTorch (seconds here).
      if (CLI_NPY.has(name)) expectCliRefuses(cli(['calibrate', '--scores', file, '--labels', goodLabels]), NPY_MESSAGES[name], bytes.length);
      if (name === 'huge-claim' || name === 'truncated-data') {
        expectCliRefuses(cli(['calibrate', '--scores', goodScores, '--labels', file]), NPY_MESSAGES[name], bytes.length);
      }
    });
  }

  it('refuses a pipe, a device and a directory without opening them for a blocking read', () => {
    const fifo = path.join(dir, 'pipe.npy');
    spawnSync('mkfifo', [fifo]);
    for (const [file, kind] of [
      [fifo, 'a pipe'],
      ['/dev/zero', 'a device'],
      [dir, 'a directory'],
    ]) {
      expect(() => readNpy(file)).toThrow(NpyError);
      expect(() => readNpy(file)).toThrow(`cannot read: ${kind}, not a .npy file`);
    }
    expectCliRefuses(cli(['calibrate', '--scores', '/dev/zero', '--labels', goodLabels]), /\/dev\/zero: cannot read: a device/, 0);
    expectCliRefuses(cli(['calibrate', '--scores', fifo, '--labels', goodLabels]), /cannot read: a pipe/, 0);
  });

  it('a sparse file that backs a 1 GiB claim is read only as far as its header before the claim is checked', () => {
    // The header claims (2^28 - 1) float32 elements and the file is 1 byte short of them:
    // refused from the file's size, without reading or allocating the gigabyte.
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (268435455,), }";
    const head = files.npyBytes({ header });
    const file = path.join(dir, 'sparse.npy');
    fs.writeFileSync(file, head);
    fs.truncateSync(file, head.length + 4 * 268435455 - 1);
    expect(() => readNpy(file)).toThrow(/truncated \.npy data: shape \(268435455\) of <f4 needs 1073741820 bytes, file has 1073741819/);
    expectCliRefuses(cli(['calibrate', '--scores', file, '--labels', goodLabels]), /truncated \.npy data/, 0);
  });

  it('valid files still read, in every supported dtype, with peak memory about one copy of the data', () => {
    for (const descr of ['<f4', '<f8', '<i8', '<i4', '|u1', '>f8']) {
      const bytes = files.validNpy([2, 3], descr);
      const file = path.join(dir, `ok${descr.replace(/\W/g, '')}.npy`);
      fs.writeFileSync(file, bytes);
      expect(readNpy(file).shape).toEqual([2, 3]);
      expect(parseNpy(new Uint8Array(bytes)).shape).toEqual([2, 3]);
    }
    // 48 MiB of float32 scores: the CLI's peak grows by about the data, not twice it.
    const n = 12 * MiB;
    const scores = path.join(dir, 'big-scores.npy');
    const head = files.npyBytes({ header: `{'descr': '<f4', 'fortran_order': False, 'shape': (${n / 3}, 3), }` });
    fs.writeFileSync(scores, head);
    fs.truncateSync(scores, head.length + 4 * n);
    const r = cli(['calibrate', '--scores', scores, '--labels', goodLabels]);
    expect(r.status).toBe(2); // the labels do not match: refused after the scores were read
    expect(r.stderr).toMatch(/labels/);
    expect(r.peak - baseline).toBeLessThan(4 * n + 16 * MiB);
  });
});

describe('hostile case files', () => {
  it('every hostile case file has an expected message (the list and the generator agree)', () => {
    expect(files.HOSTILE_CASES.map((h) => h[0]).sort()).toEqual(Object.keys(CASE_MESSAGES).sort());
  });

  for (const [name, what, make] of files.HOSTILE_CASES) {
    it(`${name}: ${what}`, () => {
      const caseDir = fs.mkdtempSync(path.join(dir, `${name}-`));
      const file = files.writeFiles(caseDir, make());
      const size = fs.statSync(file).size;
      const err = thrown(() => loadCaseFile(file));
      expect(err).toBeInstanceOf(CaseFormatError);
      expect((err as CaseFormatError).code).toBe('ERR_SMOOTHCE_CASE_FORMAT');
      expect((err as Error).message).toMatch(CASE_MESSAGES[name]);
      expect((err as Error).message.length).toBeLessThan(2000);
      // The CLI, given the file and given its folder.
      const onDisk = size > 64 * MiB ? 0 : size; // a sparse file over the limit is never read
      expectCliRefuses(cli(['parity', file]), CASE_MESSAGES[name], onDisk);
      // In a folder, a file that does not look like a case file at all is skipped, not read.
      if (name.startsWith('deep') || name === 'huge-file') {
        expectCliRefuses(cli(['parity', caseDir]), name === 'deep-unclosed' ? /no case files found/ : CASE_MESSAGES[name], onDisk);
      }
    });
  }

  it('the depth error is typed and names the limit; the limit and the size cap can be changed', () => {
    const caseDir = fs.mkdtempSync(path.join(dir, 'limits-'));
    const file = path.join(caseDir, 'cases.json');
    fs.writeFileSync(file, `{"cases": ${'['.repeat(200)}${']'.repeat(200)}}`);
    let err: unknown;
    try {
      loadCaseFile(file);
    } catch (e) {
      err = e;
    }
    const cause = (err as Error & { cause?: unknown }).cause as JsonLimitError;
    expect(cause).toBeInstanceOf(JsonLimitError);
    expect(cause.code).toBe('ERR_SMOOTHCE_JSON_TOO_DEEP');
    expect(cause.limit).toBe(JSON_LIMITS.maxDepth);
    expect(JSON_LIMITS).toEqual({ maxBytes: 8 * MiB, maxDepth: 128, maxValues: 500_000 });
    // A higher limit lets it parse (and then fail validation, not the depth check).
    expect(() => loadCaseFile(file, { maxDepth: 1000 })).toThrow(/cases\[0\]|case/);
    expect(() => loadCaseFile(file, { maxDepth: 1000 })).not.toThrow(/nested too deeply/);
    expect(() => loadCaseFile(file, { maxBytes: 100 })).toThrow(`too large: ${fs.statSync(file).size} bytes; the limit is 100 bytes`);
    expect(() => loadCaseFile(file, { maxDepth: 1000, maxValues: 50 })).toThrow('too many values: more than 50 array elements and object members (at byte 59); the limit is 50');
    // Bad limits are the caller's error, typed as the rules say.
    expect(() => loadCaseFile(file, { maxDepth: 0 })).toThrow(RangeError);
    expect(() => loadCaseFile(file, { maxBytes: '1' as unknown as number })).toThrow(TypeError);
    expect(() => loadCaseFile(file, { maxValues: -1 })).toThrow(RangeError);
  });

  it('checkJsonDepth skips strings and escapes, and never recurses', () => {
    expect(checkJsonDepth('{"a": [1, {"b": "[[[[\\"[[["}]}')).toBe(3);
    expect(checkJsonDepth(Buffer.from('[[[]]]'))).toBe(3);
    expect(() => checkJsonDepth('['.repeat(10_000_000))).toThrow(JsonLimitError);
    expect(() => checkJsonDepth('[[[', 2)).toThrow('nested too deeply: more than 2 levels of arrays and objects (at character 2); the limit is 2');
    expect(() => readJsonText('/dev/zero')).toThrow(expect.objectContaining({ code: 'ERR_SMOOTHCE_JSON_NOT_A_FILE' }));
  });

  it('parseJson keeps int64 beyond 2^53 exact next to a long string (no regular-expression stack overflow)', () => {
    const text = JSON.stringify({ s: 'x'.repeat(4 * MiB), t: 'a "quoted" 12345678901234567890 in a string' }).replace('}', ', "n": 12345678901234567890, "m": -9223372036854775808, "f": 1.2345678901234567e+300, "k": 9007199254740991}');
    const v = parseJson(text) as Record<string, unknown>;
    expect(v.n).toBe('12345678901234567890');
    expect(v.m).toBe('-9223372036854775808');
    expect(v.f).toBe(1.2345678901234567e300);
    expect(v.k).toBe(9007199254740991);
    expect(v.t).toBe('a "quoted" 12345678901234567890 in a string');
    expect((v.s as string).length).toBe(4 * MiB);
  });
});

describe('fuzz: malformed files (fuzz/files.js, kind "files")', () => {
  it('a bounded run: every malformed file gives a result or a typed error, within the memory bound', () => {
    const seed = process.env.SMOOTHCE_FUZZ_SEED ?? '20261202';
    const cases = Number(process.env.SMOOTHCE_FUZZ_FILE_CASES ?? 300);
    const r = spawnSync(process.execPath, [path.join(root, 'fuzz', 'fuzz.js'), '--json', '--quiet', '--only', '^files$', '--seed', seed, '--cases', String(cases), '--jobs', '2', '--batch', '150'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 170_000,
    });
    const summary = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
      cases: number;
      results: number;
      errors: number;
      errorsByClass: Record<string, number>;
      failures: number;
      crashes: number;
      hangs: number;
      findings: Array<{ id: string; type: string; message?: string; trace?: string[] }>;
    };
    expect(summary.findings.map((f) => `${f.id} ${f.type} ${f.message ?? ''} [${(f.trace ?? []).join('; ')}]`), 'replay with: npm run fuzz -- --only files --replay <id>').toEqual([]);
    expect(r.status).toBe(0);
    expect(summary.cases).toBe(cases);
    expect(summary.crashes + summary.hangs + summary.failures).toBe(0);
    // Both readers' errors occur, and nothing else does.
    expect(Object.keys(summary.errorsByClass).sort()).toEqual(['CaseFormatError', 'NpyError']);
    expect(summary.results).toBeGreaterThan(0);
  });
});
