/**
 * The packaging path, end to end: `npm run prebuild` fills prebuilds/<platform>-<arch>/,
 * `npm pack` ships it with dist/, binding/ and CMakeLists.txt (and not build/), and
 * installing the tarball into an empty project (dependencies from the npm registry) loads
 * the prebuild without compiling, then computes a loss through require and import. The
 * prebuild in the tarball must be fresh: its smoothce.json records the hash of the binding/
 * and CMakeLists.txt it was built from, compared here with the ones the tarball ships. The
 * unpacked tarball also passes publint and attw, and type-checks in CJS, ESM and strict
 * TypeScript consumers (node10, node16, nodenext, bundler resolution).
 * Slow (one real `npm install`, about a minute): kept to one install.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossEntropy, tensor } from '../lib/index';
import { cleanEnv, describeRun, ensureDist, repoRoot, run, runLocked } from './helpers/contract-util';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { sourceHash } = require('../scripts/build.js') as { sourceHash(root: string): string };

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
let unpacked: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-pack-'));
}, 60_000);
afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('prebuild, pack, install', () => {
  it('npm run prebuild fills prebuilds/<platform>-<arch>/smoothce.node', () => {
    // Native builds share one lock (see docs/install.md, "Building"): the prebuild compiles incrementally.
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
    // Its metadata names the sources it was built from and the LibTorch it was built against.
    const meta = JSON.parse(fs.readFileSync(path.join(path.dirname(prebuilt), 'smoothce.json'), 'utf8')) as Record<string, unknown>;
    expect(meta.sourceHash).toBe(sourceHash(repoRoot));
    expect(meta.torchVersion).toBe(load.stdout.trim());
  }, 600_000);

  it('the source hash changes with any binding/ file or CMakeLists.txt (so a stale prebuild is caught)', () => {
    const copy = path.join(work, 'hash-copy');
    fs.mkdirSync(copy, { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'CMakeLists.txt'), path.join(copy, 'CMakeLists.txt'));
    fs.cpSync(path.join(repoRoot, 'binding'), path.join(copy, 'binding'), { recursive: true });
    const base = sourceHash(copy);
    expect(base).toBe(sourceHash(repoRoot));
    // binding/'s top level and its layer folders (binding/aten/...) both count.
    for (const rel of ['addon.cc', 'aten/cross_entropy.cc']) {
      fs.appendFileSync(path.join(copy, 'binding', rel), '\n');
      expect(sourceHash(copy)).not.toBe(base);
      fs.copyFileSync(path.join(repoRoot, 'binding', rel), path.join(copy, 'binding', rel));
      expect(sourceHash(copy)).toBe(base);
    }
    fs.writeFileSync(path.join(copy, 'binding', 'napi', 'new.h'), '// new\n');
    expect(sourceHash(copy)).not.toBe(base);
  });

  it('npm pack ships the prebuild, dist/, binding/, CMakeLists.txt and the install script, not build/', () => {
    // prepack compiles the TypeScript and the prebuild, so that a bare `npm pack` never ships a
    // stale dist/ or a missing or stale binary.
    expect(pkg.scripts.prepack).toMatch(/npm run build:ts/);
    expect(pkg.scripts.prepack).toMatch(/node scripts\/prebuild\.js/);
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
      'dist/core/native.js',
      'binding/aten/cross_entropy.cc',
      'binding/aten/cross_entropy.h',
      'binding/napi/tensor_view.cc',
      'binding/addon.cc',
      'CMakeLists.txt',
      'scripts/install.js',
      'scripts/build.js',
      'scripts/libtorch.js',
      'dist/index.d.mts',
      'dist/cli/doctor.js',
      'dist/cli/build.js',
      `prebuilds/${platformDir}/smoothce.json`,
      'fonts/DejaVuSans-subset.ttf',
      'fonts/LICENSE',
      'python/smoothce_parity.py',
    ]) {
      expect(entries, `the tarball lacks ${needed}`).toContain(needed);
    }
    // python/ ships only the capture module users import and its README (not the fixture generator or its tests);
    // binding/testing/ (the test addon's hooks) is left out, so an install never builds the test addon.
    const unwanted = entries.filter(
      (e) => /^(build|node_modules|test|lib|\.ci|binding\/testing)\//.test(e) || /^python\/(?!smoothce_parity\.py$|README\.md$)/.test(e) || e.endsWith('.tgz'),
    );
    expect(unwanted).toEqual([]);

    // The prebuild was built from exactly the binding/ and CMakeLists.txt in the tarball.
    unpacked = path.join(work, 'unpacked');
    fs.mkdirSync(unpacked);
    const x = run('tar', ['-xzf', tarball, '-C', unpacked]);
    expect(x.status, describeRun(x)).toBe(0);
    unpacked = path.join(unpacked, 'package');
    const meta = JSON.parse(fs.readFileSync(path.join(unpacked, 'prebuilds', platformDir, 'smoothce.json'), 'utf8')) as { sourceHash: string };
    expect(meta.sourceHash, 'the prebuild in the tarball is stale: run `npm run prebuild` (prepack does)').toBe(sourceHash(unpacked));
    // Source maps carry their sources (lib/ is not shipped).
    const map = JSON.parse(fs.readFileSync(path.join(unpacked, 'dist', 'index.js.map'), 'utf8')) as { sourcesContent?: string[] };
    expect(map.sourcesContent?.[0]).toContain('export');
    // No plotting or build stack for users who never plot or compile.
    const shipped = JSON.parse(fs.readFileSync(path.join(unpacked, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const name of ['d3', 'linkedom', '@resvg/resvg-js', 'cmake-js']) expect(Object.keys(shipped.dependencies)).not.toContain(name);
  }, 300_000);

  it('publint --strict and attw (are the types wrong) find nothing in the tarball', () => {
    expect(unpacked, 'the pack step did not produce a tarball').toBeDefined();
    const bin = (name: string) => path.join(repoRoot, 'node_modules', '.bin', name);
    const lint = run(bin('publint'), ['--strict', '--pack', 'false', unpacked], { cwd: repoRoot, env: cleanEnv(), timeout: 120_000 });
    expect(lint.status, describeRun(lint)).toBe(0);
    expect(`${lint.stdout}${lint.stderr}`).not.toMatch(/Suggestions|Warnings|Errors/);
    const attw = run(bin('attw'), [tarball, '--format', 'json'], { cwd: repoRoot, env: cleanEnv(), timeout: 180_000 });
    const result = JSON.parse(attw.stdout) as { analysis: { problems: unknown[] } };
    expect(result.analysis.problems, describeRun(attw)).toEqual([]);
    expect(attw.status, describeRun(attw)).toBe(0);
  }, 300_000);

  it('type-checks in CJS, ESM and strict TypeScript consumers (node10, node16, nodenext, bundler)', () => {
    expect(unpacked, 'the pack step did not produce a tarball').toBeDefined();
    const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const code = `
      import smoothce, { calibration, crossEntropy, tensor, type Tensor } from 'smoothce';
      const x = tensor(new Float32Array([0.5, -1, 2, 0.25, 1, -0.5]), [2, 3]);
      const y = tensor(new BigInt64Array([2n, 0n]), [2]);
      const r = crossEntropy(x, y, { grad: true, labelSmoothing: 0.1 });
      const loss: number = r.loss;
      const grad: Float32Array = r.grad.data; // grad is there with grad: true, in the input's dtype
      const x64: Tensor<Float64Array> = tensor(new Float64Array(6), [2, 3]);
      const none = smoothce.crossEntropy(x64, y, { reduction: 'none', grad: true });
      const perRow: Float64Array = none.loss.data;
      // @ts-expect-error a number is not a tensor
      calibration.report(42, 'x');
      // @ts-expect-error 'gpu' is not a device
      crossEntropy(x, y, { device: 'gpu' });
      export const used = [loss, grad, perRow];
    `;
    // Two of them also check every declaration file (skipLibCheck false); the rest skip
    // @types/node's, which takes most of the time on a busy machine.
    const variants: { name: string; type: 'module' | 'commonjs'; file: string; options: Record<string, unknown> }[] = [
      { name: 'cjs-node10', type: 'commonjs', file: 'index.ts', options: { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true, skipLibCheck: true } },
      { name: 'cjs-node16', type: 'commonjs', file: 'index.ts', options: { module: 'node16', moduleResolution: 'node16', esModuleInterop: true } },
      { name: 'cts-nodenext', type: 'module', file: 'index.cts', options: { module: 'nodenext', moduleResolution: 'nodenext', esModuleInterop: true, skipLibCheck: true } },
      { name: 'esm-node16', type: 'module', file: 'index.ts', options: { module: 'node16', moduleResolution: 'node16', skipLibCheck: true } },
      { name: 'esm-nodenext', type: 'module', file: 'index.mts', options: { module: 'nodenext', moduleResolution: 'nodenext' } },
      { name: 'esm-bundler', type: 'module', file: 'index.ts', options: { module: 'esnext', moduleResolution: 'bundler', skipLibCheck: true } },
    ];
    for (const v of variants) {
      const dir = path.join(work, 'types', v.name);
      const nm = path.join(dir, 'node_modules');
      fs.mkdirSync(path.join(nm, '@types'), { recursive: true });
      fs.symlinkSync(unpacked, path.join(nm, 'smoothce'));
      fs.symlinkSync(path.join(repoRoot, 'node_modules', 'commander'), path.join(nm, 'commander'));
      fs.symlinkSync(path.join(repoRoot, 'node_modules', '@types', 'node'), path.join(nm, '@types', 'node'));
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: v.name, private: true, type: v.type }));
      fs.writeFileSync(
        path.join(dir, 'tsconfig.json'),
        JSON.stringify({ compilerOptions: { strict: true, noEmit: true, target: 'es2022', skipLibCheck: false, types: ['node'], ...v.options }, files: [v.file] }),
      );
      fs.writeFileSync(path.join(dir, v.file), code);
      const r = run(process.execPath, [tsc, '-p', dir], { cwd: dir, env: cleanEnv(), timeout: 120_000 });
      expect(r.status, `${v.name}\n${describeRun(r)}`).toBe(0);
    }
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

    // `npx smoothce doctor` in the consumer project: all well, then a binary that cannot load.
    const npx = (args: string[]) => run('npx', ['--no-install', 'smoothce', ...args], { cwd: project, env: cleanEnv(), timeout: 180_000 });
    const healthy = npx(['doctor']);
    expect(healthy.status, describeRun(healthy)).toBe(0);
    expect(healthy.stdout).toMatch(/Addon\s+prebuild .*smoothce\.node: loads/);
    expect(healthy.stdout).toContain('No problems found.');
    const shipped = path.join(installed, 'prebuilds', platformDir, 'smoothce.node');
    fs.writeFileSync(shipped, 'not a shared library\n');
    const broken = npx(['doctor']);
    expect(broken.status, describeRun(broken)).toBe(1);
    expect(broken.stdout).toMatch(/the prebuild .*smoothce\.node does not load: .*(too short|invalid ELF)/);
    expect(broken.stdout).toMatch(/fix: .*`npx smoothce build`/);
    const call = run(process.execPath, ['-e', "try { require('smoothce').torchVersion() } catch (e) { console.log(e.code + '\\n' + e.message) }"], {
      cwd: project,
      env: cleanEnv(),
      timeout: 60_000,
    });
    expect(call.stdout).toContain('ERR_SMOOTHCE_LOAD');
    expect(call.stdout).toContain('`npx smoothce build`');
    expect(call.stdout).toContain('`npx smoothce doctor`');
    expect(call.stdout).not.toMatch(/setup\.sh`? installs|npm run build:native` \(needs/);
  }, 600_000);
});
