/**
 * `npx smoothce doctor`: what this machine has for smoothce, from inside the project that uses
 * it. Node and its Node-API version, the build tools, every place LibTorch is looked for (in the
 * build's order, scripts/libtorch.js), the addon in use (prebuild or local build) and whether it
 * loads (tried in a child process, so a crash there cannot take this one down), the LibTorch it
 * loads, and the Python oracle. Each problem comes with the command that fixes it. Exits 1 when
 * there is a problem, 0 when the addon loads. Touches no network.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { packageRoot } from '../core/native';

interface Candidate {
  source: string;
  label: string;
  set: boolean;
  selected: boolean;
  path?: string;
  python?: string;
  version?: string | null;
  cuda?: boolean | string;
  gloo?: boolean;
  problem?: string | null;
  note?: string;
}

interface LibtorchModule {
  candidates(env?: NodeJS.ProcessEnv): Candidate[];
  probePython(python: string): { ok: boolean; version?: string; root?: string; problem?: string; cuda?: string | null };
}

interface AddonProbe {
  ok: boolean;
  file?: string;
  torch?: string;
  cuda?: boolean;
  loaded?: string | null;
  loadedVersion?: string | null;
  error?: string;
}

export interface DoctorReport {
  smoothce: { version: string; root: string };
  node: { version: string; napi: string; needs: number; ok: boolean };
  platform: string;
  tools: Record<string, string | null>;
  libtorch: Candidate[];
  addon: AddonProbe & { kind: 'override' | 'local build' | 'prebuild' | 'none'; prebuild?: Record<string, unknown> | null };
  oracle: { python: string | null; version: string | null; note: string };
  problems: { problem: string; fix: string }[];
}

function req<T>(rel: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(packageRoot, rel)) as T;
}

function firstLine(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0 || r.error) return null;
  return (r.stdout || r.stderr).trim().split('\n')[0] ?? null;
}

// Loads the addon in a child process and reports what it is and which LibTorch it mapped.
const PROBE = `
const path = require('path');
const lt = require(process.argv[1]);
const out = {};
try {
  const file = process.env.SMOOTHCE_NATIVE ? path.resolve(process.env.SMOOTHCE_NATIVE) : require(process.argv[2]).resolve(process.argv[3]);
  out.file = file;
  const b = require(file);
  out.torch = b.torchVersion();
  out.cuda = b.cudaBuilt();
  out.loaded = lt.loadedLibrary();
  out.loadedVersion = out.loaded ? lt.versionOfLibrary(out.loaded) : null;
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e && e.message || e).split('\\n').slice(0, 3).join(' ');
}
console.log(JSON.stringify(out));
`;

function probeAddon(): AddonProbe {
  const gyp = require.resolve('node-gyp-build', { paths: [packageRoot] });
  const r = spawnSync(process.execPath, ['-e', PROBE, path.join(packageRoot, 'scripts', 'libtorch.js'), gyp, packageRoot], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as AddonProbe;
  } catch {
    return { ok: false, error: `the probe process ended with ${r.signal ?? `exit ${r.status}`}: ${String(r.stderr).trim().split('\n')[0] ?? ''}` };
  }
}

function findOracle(lt: LibtorchModule): DoctorReport['oracle'] {
  const tried = [process.env.SMOOTHCE_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  for (const py of [...new Set(tried)]) {
    const p = lt.probePython(py);
    if (p.ok) return { python: py, version: p.version ?? null, note: 'PyTorch for python/smoothce_parity.py captures and the parity checks' };
  }
  return { python: null, version: null, note: `no Python with torch (tried ${[...new Set(tried)].join(', ')}); optional: only parity captures need it` };
}

export function doctor(): DoctorReport {
  const lt = req<LibtorchModule>('scripts/libtorch.js');
  const pkg = req<{ version: string }>('package.json');
  const problems: DoctorReport['problems'] = [];
  const napi = process.versions.napi ?? '0';
  const node = { version: process.version, napi, needs: 8, ok: Number(napi) >= 8 && Number(process.versions.node.split('.')[0]) >= 20 };
  if (!node.ok) problems.push({ problem: `Node ${process.version} (N-API ${napi}) is older than smoothce needs (Node >= 20, N-API 8)`, fix: 'install Node.js 20 or newer (https://nodejs.org, or `nvm install 20`)' });

  const tools = {
    cmake: firstLine('cmake', ['--version']),
    'c++': firstLine('c++', ['--version']) ?? firstLine('g++', ['--version']),
    ninja: firstLine('ninja', ['--version']),
    make: firstLine('make', ['--version']),
  };

  const candidates = lt.candidates();
  const chosen = candidates.find((c) => c.selected);
  for (const c of candidates) {
    if (c.set && c.problem) problems.push({ problem: `${c.label}: ${c.problem}`, fix: `point ${c.source} at a valid LibTorch, or unset it (\`unset ${c.source}\`), then run \`npx smoothce build\`` });
  }

  const platformDir = `${process.platform}-${process.arch}`;
  const prebuildFile = path.join(packageRoot, 'prebuilds', platformDir, 'smoothce.node');
  const localFile = path.join(packageRoot, 'build', 'Release', 'smoothce.node');
  let prebuild: Record<string, unknown> | null = null;
  try {
    prebuild = JSON.parse(fs.readFileSync(path.join(packageRoot, 'prebuilds', platformDir, 'smoothce.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    prebuild = null;
  }
  const probe = probeAddon();
  const kind: DoctorReport['addon']['kind'] = process.env.SMOOTHCE_NATIVE
    ? 'override'
    : probe.file === localFile || (!probe.file && fs.existsSync(localFile))
      ? 'local build'
      : probe.file === prebuildFile || (!probe.file && fs.existsSync(prebuildFile))
        ? 'prebuild'
        : 'none';
  const addon = { ...probe, kind, prebuild: kind === 'prebuild' ? prebuild : null };
  if (!probe.ok) {
    const fixTools: string[] = [];
    if (!tools.cmake) fixTools.push('cmake');
    if (!tools['c++']) fixTools.push('g++');
    const noTorch = !chosen;
    const steps = [
      fixTools.length ? `apt-get install ${fixTools.join(' ')} (or your system's package manager)` : null,
      noTorch ? 'install LibTorch (Debian/Ubuntu: `apt-get install libtorch-dev`; or unzip LibTorch from pytorch.org and `export LIBTORCH=/path/to/libtorch`; or `export SMOOTHCE_PYTHON=/path/to/python` with torch installed)' : null,
      kind === 'override' ? '`unset SMOOTHCE_NATIVE` (it names a file that does not load) or `npx smoothce build`' : '`npx smoothce build`',
    ].filter(Boolean);
    const what = kind === 'none' ? `there is no compiled addon for ${platformDir}` : `the ${kind} ${probe.file ?? ''} does not load: ${probe.error}`;
    problems.push({ problem: what, fix: steps.join(', then ') });
  } else if (probe.loadedVersion && probe.torch) {
    const same = req<{ sameVersion(a: string, b: string): boolean }>('scripts/libtorch.js').sameVersion(probe.torch, probe.loadedVersion);
    if (!same) {
      problems.push({
        problem: `the addon was built against LibTorch ${probe.torch} but loads LibTorch ${probe.loadedVersion} (${probe.loaded})`,
        fix: '`npx smoothce build` (rebuilds it against the LibTorch listed as used below)',
      });
    }
  }
  return {
    smoothce: { version: pkg.version, root: packageRoot },
    node,
    platform: `${process.platform}-${process.arch}${process.report?.getReport ? ` (glibc ${(process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime ?? '?'})` : ''}`,
    tools,
    libtorch: candidates,
    addon,
    oracle: findOracle(lt),
    problems,
  };
}

function mark(ok: boolean): string {
  return ok ? 'ok' : 'PROBLEM';
}

export function formatReport(r: DoctorReport): string {
  const lines: string[] = [];
  lines.push(`smoothce ${r.smoothce.version} at ${r.smoothce.root}`);
  lines.push(`Node      ${r.node.version}, N-API ${r.node.napi} (needs Node >= 20, N-API ${r.node.needs}): ${mark(r.node.ok)}`);
  lines.push(`Platform  ${r.platform}`);
  lines.push(
    `Tools     ${Object.entries(r.tools)
      .map(([k, v]) => `${k}: ${v ?? 'not found'}`)
      .join('; ')}`,
  );
  lines.push('LibTorch  (in the order a build looks; "<- used" marks the one `npx smoothce build` uses)');
  r.libtorch.forEach((c, i) => {
    let d = `  ${i + 1}. ${c.label}`;
    if (c.set || c.version) {
      const cuda = typeof c.cuda === 'string' ? c.cuda : c.cuda ? 'CUDA' : 'CPU only';
      d += `: ${c.version ?? 'version unknown'} at ${c.path}, ${cuda}, Gloo ${c.gloo ? 'yes' : 'no'}`;
    }
    if (c.note) d += `: ${c.note}`;
    if (c.problem) d += ` (PROBLEM: ${c.problem})`;
    if (c.selected) d += '  <- used';
    lines.push(d);
  });
  if (!r.libtorch.some((c) => c.selected)) lines.push('  (none found)');
  const a = r.addon;
  lines.push(`Addon     ${a.kind}${a.file ? ` ${a.file}` : ''}: ${a.ok ? 'loads' : `does not load (${a.error})`}`);
  if (a.ok) {
    lines.push(`          built against LibTorch ${a.torch}${a.cuda ? ' with CUDA' : ' (CPU)'}; loads LibTorch ${a.loadedVersion ?? '?'} from ${a.loaded ?? '?'}`);
  }
  if (a.prebuild) lines.push(`          prebuild metadata: LibTorch ${String(a.prebuild.torchVersion)}, sources ${String(a.prebuild.sourceHash).slice(0, 12)}`);
  lines.push(`Oracle    ${r.oracle.python ? `${r.oracle.python}, torch ${r.oracle.version}` : 'none'} (${r.oracle.note})`);
  if (r.problems.length === 0) lines.push('\nNo problems found.');
  else {
    lines.push(`\n${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}:`);
    for (const p of r.problems) lines.push(`- ${p.problem}\n  fix: ${p.fix}`);
  }
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('report Node, the build tools, every LibTorch found, the addon in use and whether it loads, with fixes')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      const report = doctor();
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatReport(report));
      if (report.problems.length > 0) process.exitCode = 1;
    });
}
