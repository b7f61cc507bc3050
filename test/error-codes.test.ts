/**
 * Error codes: docs/errors.md's "Codes" table, ERROR_CODES (lib/core/errors.ts) and the code
 * strings written anywhere in lib/ and binding/ are one and the same set; and no error in
 * lib/ is made without a code (every `new Error(...)`-like construction goes through a
 * lib/core/errors.ts helper or withCode, or is a class with a code field).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../lib/core/errors';
import * as smoothce from '../lib/index';
import { native } from '../lib/core/native';

const root = path.resolve(__dirname, '..');

function files(dir: string, ext: RegExp): string[] {
  return fs.readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' }).filter((f) => ext.test(f)).map((f) => path.join(dir, f));
}

function documented(): string[] {
  const text = fs.readFileSync(path.join(root, 'docs', 'errors.md'), 'utf8');
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l === '## Codes');
  expect(start, 'docs/errors.md has a "## Codes" section').toBeGreaterThan(0);
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('## ')) break;
    const m = /^\| `(ERR_[A-Z0-9_]+)` \|/.exec(line);
    if (m) out.push(m[1]);
  }
  return out;
}

describe('error codes', () => {
  it('docs/errors.md lists exactly the codes of ERROR_CODES, each once', () => {
    const listed = documented();
    expect(new Set(listed).size).toBe(listed.length);
    expect([...listed].sort()).toEqual(Object.values(ERROR_CODES).sort());
    expect(smoothce.ERROR_CODES).toBe(ERROR_CODES);
  });

  it('every ERR_SMOOTHCE_ code written in lib/ or binding/ is in ERROR_CODES (and so in the docs)', () => {
    const known = new Set<string>(Object.values(ERROR_CODES));
    const found = new Map<string, string>();
    for (const f of [...files('lib', /\.ts$/), ...files('binding', /\.(cc|h|inc)$/)]) {
      for (const m of fs.readFileSync(path.join(root, f), 'utf8').matchAll(/ERR_SMOOTHCE_[A-Z0-9_]+/g)) found.set(m[0], f);
    }
    expect(found.size).toBeGreaterThan(3);
    for (const [code, file] of found) expect(known.has(code), `${code} (in ${file}) is not in ERROR_CODES / docs/errors.md`).toBe(true);
  });

  it('no error in lib/ is constructed without a code', () => {
    const offenders: string[] = [];
    for (const f of files('lib', /\.ts$/)) {
      if (f === path.join('lib', 'core', 'errors.ts')) continue;
      const lines = fs.readFileSync(path.join(root, f), 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (!/new (Type|Range)?Error\(/.test(line)) return;
        const near = lines.slice(Math.max(0, i - 2), i + 12).join('\n');
        // withCode(new Error(...), code) (or on the error made here, before it is thrown), or a stack-trace marker that is never thrown.
        if (/withCode\(/.test(near) || /callSite = new Error\(\)/.test(line)) return;
        offenders.push(`${f}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });

  it('the Error subclasses carry their codes', async () => {
    const { NpyError } = await import('../lib/parity/npy');
    const { CaseFormatError } = await import('../lib/parity/cases');
    expect(new NpyError('x').code).toBe(ERROR_CODES.NPY);
    expect(new CaseFormatError('x').code).toBe(ERROR_CODES.CASE_FORMAT);
  });

  it('errors from the native binding get a code where they are rethrown', () => {
    const x = smoothce.tensor(new Float32Array(6), [2, 3]);
    // A class index out of range reaching ATen (the binding called directly skips the TS validation).
    const args = { input: x, target: smoothce.tensor(new BigInt64Array([0n, 7n]), [2]), weight: null, reduction: 1, ignoreIndex: -100n, labelSmoothing: 0, grad: false, gradOutput: null, device: 'cpu' };
    expect(() => native().crossEntropy(args as never, false)).toThrow(expect.objectContaining({ code: ERROR_CODES.NATIVE }));
    // The addon's own argument check (a plain TypeError in C++).
    expect(() => native().crossEntropy(42 as never, false)).toThrow(expect.objectContaining({ name: 'TypeError', code: ERROR_CODES.INVALID_ARG_TYPE }));
  });
});
