/**
 * scripts/install.js, the npm install hook, in a copy of the package: a prebuild that loads is
 * used as is; one that does not load leads to a source build, which says which LibTorch it
 * uses before compiling; a build that cannot run (no cmake on PATH here, so
 * nothing is compiled) leaves the package installed with a warning naming `npx smoothce
 * doctor` and `npx smoothce build`, and the install still exits 0.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, describeRun, repoRoot, run } from './helpers/contract-util';

const platformDir = `${process.platform}-${process.arch}`;
let pkg: string;
let prebuildName: string;

beforeAll(() => {
  pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-install-'));
  for (const f of ['package.json', 'CMakeLists.txt']) fs.copyFileSync(path.join(repoRoot, f), path.join(pkg, f));
  for (const d of ['scripts', 'binding']) fs.cpSync(path.join(repoRoot, d), path.join(pkg, d), { recursive: true });
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(pkg, 'node_modules'));
  fs.mkdirSync(path.join(pkg, 'prebuilds', platformDir), { recursive: true });
  const version = run(process.execPath, ['-p', `require(${JSON.stringify(path.join(repoRoot, 'build', 'Release', 'smoothce.node'))}).torchVersion()`]).stdout.trim();
  const [major, minor] = version.split('.');
  prebuildName = `smoothce.libtorch${major}_${minor}.napi.glibc.node`;
});
afterAll(() => {
  fs.rmSync(pkg, { recursive: true, force: true });
});

function install(extra: Record<string, string> = {}) {
  // PATH holds only node: no cmake, no python3 (the system LibTorch is still found by its path).
  const bin = path.join(pkg, 'bin');
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  }
  return run(process.execPath, [path.join(pkg, 'scripts', 'install.js')], {
    cwd: pkg,
    env: cleanEnv({ PATH: bin, ...extra }),
    timeout: 120_000,
  });
}

describe('scripts/install.js', () => {
  it('uses a prebuild that loads, without compiling', () => {
    const real = path.join(repoRoot, 'build', 'Release', 'smoothce.node');
    expect(fs.existsSync(real), 'no built addon in this checkout').toBe(true);
    // Named as scripts/prebuild.js names it (no metadata file: the tag alone says its LibTorch).
    fs.copyFileSync(real, path.join(pkg, 'prebuilds', platformDir, prebuildName));
    const r = install();
    expect(r.status, describeRun(r)).toBe(0);
    expect(r.stdout).toMatch(/smoothce: using the prebuilt native addon \(prebuilds\/[\w-]+\/smoothce\.libtorch\d+_\d+\.napi\.glibc\.node, LibTorch \d+\.\d+\.\d+\): it was built against LibTorch/);
    expect(fs.existsSync(path.join(pkg, 'build'))).toBe(false);
  });

  it('a prebuild that does not load leads to a source build; without cmake it warns and exits 0', () => {
    fs.writeFileSync(path.join(pkg, 'prebuilds', platformDir, prebuildName), 'not an ELF file\n');
    const r = install();
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.status, describeRun(r)).toBe(0);
    expect(out).toMatch(/the prebuilt addon does not load here \(.*\); building from source/);
    expect(out).toMatch(/smoothce: LibTorch from |no LibTorch found/);
    expect(out).toContain('cmake was not found on PATH');
    expect(out).toContain('`npx smoothce doctor`');
    expect(out).toContain('`npx smoothce build`');
  });

  it('SMOOTHCE_SKIP_INSTALL=1 does nothing', () => {
    const r = install({ SMOOTHCE_SKIP_INSTALL: '1' });
    expect(r.status, describeRun(r)).toBe(0);
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
  });
});
