/**
 * The loader's failure path: SMOOTHCE_NATIVE pointing at a missing file, at a file that is
 * not a shared library, and at a shared library that is not a Node addon. Each gives an
 * Error with code ERR_SMOOTHCE_LOAD, a "Possible solutions" list and the original error as
 * `cause`; the process keeps running. Runs in child processes, so this test process keeps
 * its own binding.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, describeRun, repoRoot, run } from './helpers/contract-util';

const register = path.join(repoRoot, 'test', 'helpers', 'contract-ts-register.cjs');
const lib = path.join(repoRoot, 'lib', 'index.ts');

// Calls the API twice (the failure must repeat, not leave a half-loaded state), prints
// what the errors carried, and exits normally.
const CHILD = `
const smoothce = require(${JSON.stringify(lib)});
const out = [];
for (const call of [() => smoothce.torchVersion(),
                    () => smoothce.crossEntropy(smoothce.tensor(new Float32Array(6), [2, 3]), smoothce.tensor(new BigInt64Array(2), [2]))]) {
  try {
    call();
    out.push({ ok: true });
  } catch (e) {
    out.push({
      isError: e instanceof Error, name: e.name, code: e.code, message: e.message,
      cause: e.cause ? { isError: e.cause instanceof Error, message: e.cause.message, code: e.cause.code } : null,
    });
  }
}
console.log(JSON.stringify(out));
`;

interface Failure {
  ok?: boolean;
  isError: boolean;
  name: string;
  code: string;
  message: string;
  cause: { isError: boolean; message: string; code?: string } | null;
}

function loadWith(nativePath: string): Failure[] {
  const r = run(process.execPath, ['-r', register, '-e', CHILD], {
    cwd: repoRoot,
    env: cleanEnv({ SMOOTHCE_NATIVE: nativePath }),
    timeout: 60_000,
  });
  expect(r.status, describeRun(r)).toBe(0);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as Failure[];
}

function expectLoadError(f: Failure, nativePath: string): void {
  expect(f.ok).toBeUndefined();
  expect(f.isError).toBe(true);
  expect(f.name).toBe('Error');
  expect(f.code).toBe('ERR_SMOOTHCE_LOAD');
  expect(f.message).toContain('could not load the native addon');
  expect(f.message).toContain(`SMOOTHCE_NATIVE=${nativePath}`);
  expect(f.message).toMatch(/\n\nPossible solutions:\n- \S/);
  expect(f.cause).not.toBeNull();
  expect(f.cause!.isError).toBe(true);
  // The original loader message is kept, in the cause and in the text.
  expect(f.message).toContain(f.cause!.message.split('\n')[0]);
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-loader-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('loader failures (SMOOTHCE_NATIVE)', () => {
  it('a missing file', () => {
    const missing = path.join(dir, 'nowhere', 'smoothce.node');
    const [first, second] = loadWith(missing);
    for (const f of [first, second]) {
      expectLoadError(f, missing);
      expect(f.cause!.code).toBe('MODULE_NOT_FOUND');
      expect(f.message).toMatch(/Build it from source: `npx smoothce build`/);
      expect(f.message).toContain("`npx smoothce doctor`");
    }
  });

  it('a file that is not a shared library', () => {
    const junk = path.join(dir, 'junk.node');
    fs.writeFileSync(junk, 'this is not an ELF file\n'.repeat(100));
    const [first, second] = loadWith(junk);
    for (const f of [first, second]) {
      expectLoadError(f, junk);
      expect(f.cause!.code).toBe('ERR_DLOPEN_FAILED');
      expect(f.message).toMatch(/Rebuild|build/);
    }
  });

  it('a shared library that is not a Node addon', () => {
    // Any system shared library will do; libm is on every glibc system.
    const candidates = ['/lib/x86_64-linux-gnu/libm.so.6', '/usr/lib/x86_64-linux-gnu/libm.so.6', '/lib64/libm.so.6', '/lib/aarch64-linux-gnu/libm.so.6'];
    const libm = candidates.find((p) => fs.existsSync(p));
    expect(libm, `none of ${candidates.join(', ')} exists`).toBeDefined();
    const fake = path.join(dir, 'libm-as-addon.node');
    fs.copyFileSync(libm!, fake);
    const [first] = loadWith(fake);
    expectLoadError(first, fake);
    expect(first.cause!.message).toMatch(/did not self-register|Module did not|napi/i);
  });

  it('the real addon through SMOOTHCE_NATIVE loads (the override is honoured)', () => {
    const real = path.join(repoRoot, 'build', 'Release', 'smoothce.node');
    const prebuilt = path.join(repoRoot, 'prebuilds', `${process.platform}-${process.arch}`, 'smoothce.node');
    const addon = fs.existsSync(real) ? real : prebuilt;
    expect(fs.existsSync(addon), `no built addon at ${real} or ${prebuilt}`).toBe(true);
    const results = loadWith(addon);
    expect(results).toEqual([{ ok: true }, { ok: true }]);
  });
});

// The addon is loaded when the package is required (lib/core/native.ts, preloadNative): loading
// LibTorch touches ~150 MB, which inside the first call made that call's peak RSS look like
// 274 MB for a 125 MB gradient. A first 1024×8000 forward+gradient call (a 31.25 MiB
// gradient) in a fresh process, peak RSS measured above the RSS after the inputs were made.
const FIRST_CALL = `
const smoothce = require(${JSON.stringify(lib)});
const n = 1024, c = 8000;
const input = smoothce.tensor(new Float32Array(n * c).fill(0.25), [n, c]);
const target = smoothce.tensor(new BigInt64Array(n), [n]);
const base = process.memoryUsage.rss();
const before = process.resourceUsage().maxRSS * 1024;
const r = smoothce.crossEntropy(input, target, { impl: 'fused', grad: true, labelSmoothing: 0.1 });
const peak = process.resourceUsage().maxRSS * 1024;
console.log(JSON.stringify({ peakMB: (peak - base) / 2 ** 20, beforeMB: (before - base) / 2 ** 20, gradMB: r.grad.data.byteLength / 2 ** 20 }));
`;

function firstCall(extra: Record<string, string>): { peakMB: number; beforeMB: number; gradMB: number } {
  const r = run(process.execPath, ['-r', register, '-e', FIRST_CALL], { cwd: repoRoot, env: cleanEnv(extra), timeout: 60_000 });
  expect(r.status, describeRun(r)).toBe(0);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

describe('loading the addon', () => {
  it('happens when the package is required, so a first call adds only its own outputs to peak RSS', () => {
    const eager = firstCall({});
    expect(eager.gradMB).toBe(31.25);
    expect(eager.beforeMB).toBeLessThan(1);
    // The gradient in whole 2 MiB pages, plus a little.
    expect(eager.peakMB).toBeGreaterThan(30);
    expect(eager.peakMB).toBeLessThan(31.25 + 16);
    // SMOOTHCE_LAZY_LOAD=1 defers it to the first call, which then also pays for LibTorch.
    const lazy = firstCall({ SMOOTHCE_LAZY_LOAD: '1' });
    expect(lazy.peakMB).toBeGreaterThan(eager.peakMB + 50);
  });
});
