/**
 * `npx smoothce build`: compiles the native addon in place, in the installed package's folder
 * (node_modules/smoothce/build/Release/smoothce.node, which the loader prefers to the prebuild),
 * against the LibTorch found in the build's order (LIBTORCH, Torch_DIR, SMOOTHCE_PYTHON, the
 * python3 on PATH, the system). Shows the compiler's progress and a line every 15 s; the log
 * is build/smoothce-build.log there. Needs cmake and a C++17 compiler; touches no network.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { packageRoot } from '../core/native';

interface BuildScript {
  build(opts: { root: string; quiet?: boolean }): Promise<{ status: number; logFile: string | null; seconds: number }>;
  probeAddon(file: string): { ok: boolean; torch?: string; error?: string };
}
interface LibtorchModule {
  candidates(): { label: string; path?: string; version?: string | null; selected: boolean }[];
}

export async function buildAddon(opts: { quiet?: boolean } = {}): Promise<number> {
  try {
    fs.accessSync(packageRoot, fs.constants.W_OK);
  } catch {
    console.error(`smoothce: cannot write to ${packageRoot}; run \`npx smoothce build\` as the user who installed the package (or with sudo for a global install)`);
    return 1;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const script = require(path.join(packageRoot, 'scripts', 'build.js')) as BuildScript;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const lt = require(path.join(packageRoot, 'scripts', 'libtorch.js')) as LibtorchModule;
  const chosen = lt.candidates().find((c) => c.selected);
  console.log(
    chosen
      ? `smoothce: building in ${packageRoot} against ${chosen.label}: ${chosen.path}${chosen.version ? ` (${chosen.version})` : ''}`
      : 'smoothce: no LibTorch found (LIBTORCH, Torch_DIR, SMOOTHCE_PYTHON, python3 on PATH, the system); `npx smoothce doctor` says how to get one',
  );
  const r = await script.build({ root: packageRoot, quiet: opts.quiet });
  if (r.status !== 0) {
    console.error('smoothce: `npx smoothce doctor` says what is missing (cmake, a compiler or LibTorch) and how to get it');
    return 1;
  }
  const file = path.join(packageRoot, 'build', 'Release', 'smoothce.node');
  const probe = script.probeAddon(file);
  if (!probe.ok) {
    console.error(`smoothce: the new build does not load: ${probe.error}; \`npx smoothce doctor\` says why`);
    return 1;
  }
  console.log(`smoothce: ${file} loads (LibTorch ${probe.torch}); it is used in place of the prebuild from now on`);
  return 0;
}

export function register(program: Command): void {
  program
    .command('build')
    .description('compile the native addon in place, in the installed package, against the LibTorch found (see `smoothce doctor`)')
    .option('--quiet', 'show only errors and the heartbeat, not every compiler line')
    .action(async (opts: { quiet?: boolean }) => {
      const code = await buildAddon(opts);
      if (code !== 0) process.exitCode = code;
    });
}
