/**
 * Supply chain (docs/security.md): the install script touches no network and runs only local
 * commands; the lockfile is committed and CI installs from it with `npm ci`; and the production
 * dependencies listed in docs/security.md are exactly package.json's, each with its reason.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const read = (p: string): string => fs.readFileSync(path.join(root, p), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  binary?: { napi_versions?: number[] };
};

/** Source without comments, so that a comment that names a tool is not mistaken for a call. */
function code(p: string): string {
  return read(p)
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

describe('the install script', () => {
  // The install hook and the local modules it requires (the source build, the LibTorch search and the choice
  // of a prebuild by the LibTorch found).
  const installFiles = ['scripts/install.js', 'scripts/build.js', 'scripts/libtorch.js', 'scripts/prebuilds.js'];

  it('is scripts/install.js, and neither it nor what it requires loads a network module', () => {
    expect(pkg.scripts.install).toBe('node scripts/install.js');
    const local = [...code('scripts/install.js').matchAll(/require\(\s*['"](\.\/[^'"]+)['"]\s*\)/g)].map((m) => `scripts/${m[1].slice(2).replace(/\.js$/, '')}.js`);
    expect(new Set(local)).toEqual(new Set(installFiles.slice(1)));
    for (const f of installFiles) {
      const src = code(f);
      const required = [...src.matchAll(/require\(\s*['"]([^'"]+)['"]\s*\)|from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map(
        (m) => (m[1] ?? m[2] ?? m[3]).replace(/^node:/, ''),
      );
      expect(required.length, f).toBeGreaterThan(0);
      const network = ['http', 'https', 'http2', 'net', 'tls', 'dgram', 'dns', 'undici', 'node-fetch', 'axios', 'got', 'request'];
      expect(required.filter((m) => network.includes(m)), f).toEqual([]);
      expect(src, f).not.toMatch(/\bfetch\s*\(|XMLHttpRequest|WebSocket/);
      expect(src, f).not.toMatch(/https?:\/\//);
    }
  });

  it('spawns no download tool (curl, wget, git, npm, npx, pip, apt)', () => {
    const tools = ['curl', 'wget', 'git', 'npm', 'npx', 'pip', 'pip3', 'apt', 'apt-get', 'yarn', 'pnpm'];
    let calls = 0;
    for (const f of installFiles) {
      // Every child process these files start: the command a spawn/exec call names (messages that
      // tell the user to run `npx smoothce build` are text, not calls).
      for (const m of code(f).matchAll(/(?<![\w.])(?:spawn|spawnSync|exec|execSync|execFile|execFileSync)\(\s*([^,)]+)/g)) {
        calls++;
        const cmd = m[1].trim();
        const literal = /^['"`]([^'"`]*)['"`]$/.exec(cmd);
        if (literal) expect(tools, `${f} runs ${literal[1]}`).not.toContain(literal[1].split(/\s/)[0]);
        else expect(cmd, `${f} runs ${cmd}`).toMatch(/^(process\.execPath|cmd|cmake|python|exe|bin|file|candidate)\b|Path|execPath/i);
      }
    }
    expect(calls).toBeGreaterThan(0);
    // cmake-js downloads Node's headers unless the build is a Node-API one, which it detects
    // from package.json's binary.napi_versions (then the headers come from node-api-headers).
    expect(pkg.binary?.napi_versions?.length ?? 0).toBeGreaterThan(0);
    // CMakeLists.txt runs local commands only: no FetchContent, ExternalProject or file(DOWNLOAD).
    expect(read('CMakeLists.txt')).not.toMatch(/FetchContent|ExternalProject|file\s*\(\s*DOWNLOAD|https?:\/\//i);
  });

  it('with a prebuilt addon present, runs with every network call made to throw, and starts no download tool', () => {
    // Built by the suite's setup (or by setup.sh): build/Release/smoothce.node is what node-gyp-build finds.
    expect(fs.existsSync(path.join(root, 'build', 'Release', 'smoothce.node'))).toBe(true);
    const reportFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-install-')), 'report.json');
    const env: NodeJS.ProcessEnv = { ...process.env, SMOOTHCE_NO_NETWORK_REPORT: reportFile };
    delete env.SMOOTHCE_SKIP_INSTALL;
    delete env.SMOOTHCE_BUILD_FROM_SOURCE;
    const r = spawnSync(process.execPath, ['-r', path.join(__dirname, 'helpers', 'no-network.cjs'), path.join(root, 'scripts', 'install.js')], {
      cwd: root,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/using the prebuilt native addon/);
    const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as { network: string[]; spawned: string[] };
    expect(report.network).toEqual([]);
    // Local commands only (on this path today, none at all): no download tool.
    expect(report.spawned.filter((cmd) => /(^|\/)(curl|wget|git|npm|npx|pip3?|apt(-get)?|yarn|pnpm)(\s|$)/.test(cmd))).toEqual([]);
  });
});

describe('the lockfile', () => {
  it('is committed, and matches package.json', () => {
    if (fs.existsSync(path.join(root, '.git'))) {
      const tracked = execFileSync('git', ['ls-files', 'package-lock.json', 'package.json'], { cwd: root, encoding: 'utf8' }).trim().split('\n');
      expect(tracked.sort()).toEqual(['package-lock.json', 'package.json']);
    } else {
      // A copy without git metadata (scripts/torch2.sh's chroot copy): the lockfile is there and not ignored.
      expect(fs.existsSync(path.join(root, 'package-lock.json'))).toBe(true);
      expect(read('.gitignore')).not.toMatch(/^\/?package-lock\.json$/m);
    }
    const lock = JSON.parse(read('package-lock.json')) as { lockfileVersion: number; packages: Record<string, { dependencies?: Record<string, string>; integrity?: string }> };
    expect(lock.lockfileVersion).toBeGreaterThanOrEqual(2);
    expect(lock.packages[''].dependencies).toEqual(pkg.dependencies);
    // Every installed package is pinned with an integrity hash (npm ci checks it).
    const entries = Object.entries(lock.packages).filter(([k]) => k.startsWith('node_modules/'));
    expect(entries.length).toBeGreaterThan(0);
    const unpinned = entries.filter(([, v]) => !v.integrity && !(v as { link?: boolean }).link).map(([k]) => k);
    expect(unpinned).toEqual([]);
  });

  it('CI installs with npm ci', () => {
    expect(read('.ci/run')).toMatch(/bash scripts\/setup\.sh/);
    const setup = code('scripts/setup.sh').replace(/^\s*#.*$/gm, '');
    expect(setup).toMatch(/\bnpm ci\b/);
    expect(setup).not.toMatch(/\bnpm (install|i)\b/);
  });
});

describe('docs/security.md lists the production dependencies', () => {
  const doc = read('docs/security.md');
  const block = /<!-- production-dependencies:start -->([\s\S]*?)<!-- production-dependencies:end -->/.exec(doc)?.[1] ?? '';
  const rows = [...block.matchAll(/^\|\s*`([^`]+)`\s*\|\s*(.*?)\s*\|\s*$/gm)].map((m) => ({ name: m[1], why: m[2] }));

  it("exactly package.json's dependencies, each once", () => {
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.map((r) => r.name).sort()).toEqual(Object.keys(pkg.dependencies).sort());
    expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
  });

  it('each with a reason', () => {
    for (const r of rows) expect(r.why.length, r.name).toBeGreaterThan(20);
  });
});
