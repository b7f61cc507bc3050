#!/usr/bin/env node
/**
 * npx smoothce <command>. Each command lives in lib/cli/<command>.ts and exports
 * `register(program)`; this file only wires them together.
 */
import { Command } from 'commander';
import { register as registerInfo } from './cli/info';
import { register as registerCalibrate } from './cli/calibrate';
import { register as registerDemo } from './cli/demo';
import { register as registerParity } from './cli/parity';
import { register as registerDoctor } from './cli/doctor';
import { register as registerBuild } from './cli/build';

export function buildProgram(): Command {
  const program = new Command('smoothce')
    .description('PyTorch-exact cross-entropy with label smoothing, for Node.js')
    .showHelpAfterError()
    .exitOverride((err) => {
      throw err;
    });
  registerInfo(program);
  registerCalibrate(program);
  registerDemo(program);
  registerParity(program);
  registerDoctor(program);
  registerBuild(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code?.startsWith('commander.')) return e.exitCode ?? 1;
    console.error(`smoothce: ${e.message ?? String(err)}`);
    return 2;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
