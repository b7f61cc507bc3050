/**
 * The packaging path, end to end: `npm run prebuild` fills prebuilds/<platform>-<arch>/,
 * `npm pack` ships it with dist/, binding/ and CMakeLists.txt (and not build/), and
 * installing the tarball into an empty project (dependencies from the npm registry) loads
 * the prebuild without compiling, then computes a loss through require and import.
 * Slow (one real `npm install`, about a minute): kept to one install.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossEntropy, tensor } from '../lib/index';
import { cleanEnv, describeRun, ensureDist, repoRoot, run, runLocked } from './helpers/contract-util';

const platformDir = `${process.platform}-${process.arch}`;
const prebuilt = path.join(repoRoot, 'prebuilds', platformDir, 'smoothce.node');
const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  scripts: Record<string, string>;
};

let work: string;
let tarball: string;
let entries: string[];

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-pack-'));
}, 60_000);
afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('prebuild, pack, install', () => {
  it('npm run prebuild fills prebuilds/<platform>-<arch>/smoothce.node', () => {
    // Native builds share one lock (see README, "Building"): the prebuild compiles incrementally.
    const r = run('flock', ['/tmp/smoothce-build.lock', 'npm', 'run', 'prebuild'], {
      cwd: repoRoot,
      env: cleanEnv(),
      timeout: 600_000,
    });
    expect(r.status, describeRun(r)).toBe(0);
    expect(r.stdout).toContain(`prebuild: prebuilds/${platformDir}/smoothce.node`);
    expect(fs.statSync(prebuilt).size).toBeGreaterThan(10_000);
    // It is a working addon on its own.
    const load = run(process.execPath, ['-e', `console.log(require(${JSON.stringify(prebuilt)}).torchVersion())`], {
      env: cleanEnv(),
      timeout: 60_000,
    });
    expect(load.status, describeRun(load)).toBe(0);
    expect(load.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  }, 600_000);

  it('npm pack ships the prebuild, dist/, binding/, CMakeLists.txt and the install script, not build/', () => {
    // prepack compiles the TypeScript, so that a bare `npm pack` never ships a stale dist/.
    expect(pkg.scripts.prepack).toMatch(/npm run build:ts/);
    // Here dist/ is built (if stale) under the dist/ lock and packed with --ignore-scripts,
    // so that no other test file reads dist/ while prepack's tsc rewrites it.
    ensureDist();
    const r = runLocked('exclusive', 'npm', ['pack', '--ignore-scripts', '--pack-destination', work], {
      cwd: repoRoot,
      env: cleanEnv(),
      timeout: 120_000,
    });
    expect(r.status, describeRun(r)).toBe(0);
    tarball = path.join(work, `${pkg.name}-${pkg.version}.tgz`);
    expect(fs.existsSync(tarball), describeRun(r)).toBe(true);
    const list = run('tar', ['-tzf', tarball]);
    expect(list.status, describeRun(list)).toBe(0);
    entries = list.stdout
      .trim()
      .split('\n')
      .map((e) => e.replace(/^package\//, ''));
    for (const needed of [
      'package.json',
      `prebuilds/${platformDir}/smoothce.node`,
      'dist/index.js',
      'dist/index.mjs',
      'dist/index.d.ts',
      'dist/native.js',
      'binding/cross_entropy.cc',
      'binding/cross_entropy.h',
      'binding/addon.cc',
      'CMakeLists.txt',
      'scripts/install.js',
      'python/smoothce_parity.py',
    ]) {
      expect(entries, `the tarball lacks ${needed}`).toContain(needed);
    }
    // python/ ships only the capture module users import and its README (not the fixture generator or its tests).
    const unwanted = entries.filter(
      (e) => /^(build|node_modules|test|lib|\.ci)\//.test(e) || /^python\/(?!smoothce_parity\.py$|README\.md$)/.test(e) || e.endsWith('.tgz'),
    );
    expect(unwanted).toEqual([]);
  }, 300_000);

  it('installs into an empty project, loads the prebuild without compiling, computes via require and import', () => {
    expect(tarball, 'the pack step did not produce a tarball').toBeDefined();
    const project = path.join(work, 'consumer');
    fs.mkdirSync(project);
    fs.writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'smoothce-consumer', version: '1.0.0', private: true }, null, 2),
    );
    const install = run('npm', ['install', tarball, '--no-audit', '--no-fund', '--foreground-scripts', '--loglevel', 'warn'], {
      cwd: project,
      env: cleanEnv(),
      timeout: 480_000,
    });
    const log = `${install.stdout}\n${install.stderr}`;
    expect(install.status, describeRun(install)).toBe(0);
    expect(log).toContain('smoothce: using the prebuilt native addon');
    expect(log).not.toMatch(/building from source/);
    const installed = path.join(project, 'node_modules', 'smoothce');
    expect(fs.existsSync(path.join(installed, 'prebuilds', platformDir, 'smoothce.node'))).toBe(true);
    expect(fs.existsSync(path.join(installed, 'build')), 'the install compiled the addon (build/ exists)').toBe(false);

    const x = [0.25, -1.5, 2, 0.5, 1, -0.75, 3, 0, 0.1];
    const t = [2, 0, 1];
    const expected = crossEntropy(tensor(new Float64Array(x), [3, 3]), tensor(new BigInt64Array(t.map(BigInt)), [3]), {
      labelSmoothing: 0.2,
    }).loss;
    const compute = (mod: string) => `
      const r = ${mod}.crossEntropy(${mod}.tensor(new Float64Array(${JSON.stringify(x)}), [3, 3]),
                                   ${mod}.tensor(new BigInt64Array(${JSON.stringify(t)}.map(BigInt)), [3]),
                                   { labelSmoothing: 0.2 });
      console.log(JSON.stringify({ loss: r.loss, version: ${mod}.torchVersion() }));`;
    const cjs = run(process.execPath, ['-e', `const smoothce = require('smoothce');${compute('smoothce')}`], {
      cwd: project,
      env: cleanEnv(),
      timeout: 60_000,
    });
    expect(cjs.status, describeRun(cjs)).toBe(0);
    const esm = run(process.execPath, ['--input-type=module', '-e', `import * as smoothce from 'smoothce';${compute('smoothce')}`], {
      cwd: project,
      env: cleanEnv(),
      timeout: 60_000,
    });
    expect(esm.status, describeRun(esm)).toBe(0);
    for (const out of [cjs.stdout, esm.stdout]) {
      const r = JSON.parse(out.trim().split('\n').pop()!) as { loss: number; version: string };
      expect(r.loss).toBe(expected);
      expect(r.version).toMatch(/^\d+\.\d+\.\d+$/);
    }
    // The installed package resolved its own files, not this checkout's.
    const where = run(process.execPath, ['-p', "require.resolve('smoothce')"], { cwd: project, env: cleanEnv() });
    expect(where.stdout.trim()).toBe(path.join(installed, 'dist', 'index.js'));
  }, 600_000);
});
