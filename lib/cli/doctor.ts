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
import { packageRoot, resolveAddon } from '../core/native';

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
  addon: AddonProbe & { kind: 'override' | 'local build' | 'prebuild' | 'none'; reason: string; prebuild?: Record<string, unknown> | null };
  /** Every prebuild for this platform: its LibTorch, the libc10 it links and whether it is here, the glibc it needs. */
  prebuilds: { name: string; torchVersion: string | null; libc10: string; found: string | null; glibc: string | null; glibcOk: boolean | null; chosen: boolean }[];
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
  const file = process.argv[2];
  out.file = file;
  if (!file) throw { message: 'no addon fits here: ' + process.argv[3] };
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

function probeAddon(file: string | null, reason: string): AddonProbe {
  const r = spawnSync(process.execPath, ['-e', PROBE, path.join(packageRoot, 'scripts', 'libtorch.js'), file ?? '', reason], {
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
  const where = resolveAddon();
  const probe = probeAddon(where.file, where.reason);
  const kind = where.kind;
  const glibc = runtimeGlibc();
  const prebuilds = (where.choice?.candidates ?? []).map((c) => ({
    name: c.name,
    torchVersion: c.torchVersion,
    libc10: c.libc10,
    found: c.found,
    glibc: c.glibc,
    glibcOk: c.glibc && glibc ? compareVersions(glibc, c.glibc) >= 0 : null,
    chosen: c.file === where.choice?.chosen?.file,
  }));
  let prebuild: Record<string, unknown> | null = null;
  if (kind === 'prebuild' && where.file) {
    try {
      prebuild = JSON.parse(fs.readFileSync(where.file.replace(/\.node$/, '.json'), 'utf8')) as Record<string, unknown>;
    } catch {
      prebuild = null;
    }
  }
  const addon = { ...probe, kind, reason: where.reason, prebuild };
  for (const p of prebuilds) {
    if (p.chosen && p.glibcOk === false) {
      problems.push({
        problem: `the prebuild ${p.name} needs glibc >= ${p.glibc}; this system has ${glibc}`,
        fix: '`npx smoothce build` (compiles the addon against this system)',
      });
    }
  }
  if (kind === 'none' && where.choice && where.choice.candidates.length > 0 && where.choice.libtorch.found.length === 0) {
    problems.push({
      problem: `no LibTorch on this machine: the prebuilds need ${prebuilds.map((p) => p.libc10).join(' or ')}, and none is on the library path`,
      fix: 'Debian/Ubuntu: `sudo apt-get install libtorch-dev`; or PyTorch from pip (`pip install torch`), then `npx smoothce build`',
    });
  }
  if (!probe.ok && !(kind === 'none' && problems.some((p) => p.problem.startsWith('no LibTorch')))) {
    const fixTools: string[] = [];
    if (!tools.cmake) fixTools.push('cmake');
    if (!tools['c++']) fixTools.push('g++');
    const noTorch = !chosen;
    const steps = [
      fixTools.length ? `apt-get install ${fixTools.join(' ')} (or your system's package manager)` : null,
      noTorch ? 'install LibTorch (Debian/Ubuntu: `apt-get install libtorch-dev`; or unzip LibTorch from pytorch.org and `export LIBTORCH=/path/to/libtorch`; or `export SMOOTHCE_PYTHON=/path/to/python` with torch installed)' : null,
      kind === 'override' ? '`unset SMOOTHCE_NATIVE` (it names a file that does not load) or `npx smoothce build`' : '`npx smoothce build`',
    ].filter(Boolean);
    const what = kind === 'none' ? `no compiled addon for ${platformDir} fits here (${where.reason})` : `the ${kind} ${probe.file ?? ''} does not load: ${probe.error}`;
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
    platform: `${process.platform}-${process.arch}${glibc ? ` (glibc ${glibc})` : ''}`,
    tools,
    libtorch: candidates,
    addon,
    prebuilds,
    oracle: findOracle(lt),
    problems,
  };
}

/** The C library's version (Node's process report), or null. */
function runtimeGlibc(): string | null {
  const report = process.report?.getReport?.() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ?? null;
}

function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
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
  if (r.prebuilds.length > 0) {
    lines.push('Prebuilds (one per LibTorch; the one whose LibTorch is found here is used)');
    for (const p of r.prebuilds) {
      const fits = p.glibcOk === null ? '' : p.glibcOk ? ' (ok)' : p.chosen ? ' (PROBLEM: this system has an older one)' : ' (newer than this system has)';
      const glibc = p.glibc ? `needs glibc >= ${p.glibc}${fits}` : 'glibc need unknown';
      lines.push(`  ${p.name}: LibTorch ${p.torchVersion ?? '?'}, links ${p.libc10}: ${p.found ? `found at ${p.found}` : 'not found'}; ${glibc}${p.chosen ? '  <- chosen' : ''}`);
    }
  }
  const a = r.addon;
  lines.push(`Addon     ${a.kind}${a.file ? ` ${a.file}` : ''}: ${a.ok ? 'loads' : `does not load (${a.error})`}`);
  lines.push(`          ${a.kind === 'none' ? 'none fits' : 'chosen'}: ${a.reason}`);
  if (a.ok) {
    lines.push(`          built against LibTorch ${a.torch}${a.cuda ? ' with CUDA' : ' (CPU)'}; loads LibTorch ${a.loadedVersion ?? '?'} from ${a.loaded ?? '?'}`);
  }
  if (a.prebuild) {
    lines.push(
      `          prebuild metadata: LibTorch ${String(a.prebuild.torchVersion)}, built on ${String(a.prebuild.builtOn ?? '?')}, needs glibc >= ${String(a.prebuild.glibc ?? '?')}, sources ${String(a.prebuild.sourceHash).slice(0, 12)}`,
    );
  }
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
