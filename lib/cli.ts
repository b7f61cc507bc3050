#!/usr/bin/env node
/**
 * npx smoothce <command>. Each command lives in lib/cli/<command>.ts and exports
 * `register(program)`; this file only wires them together.
 */
import { Command, Help, type Option } from 'commander';
import { EXIT, EXIT_CODES_HELP } from './cli/common';
import { register as registerInfo } from './cli/info';
import { register as registerCalibrate } from './cli/calibrate';
import { register as registerDemo } from './cli/demo';
import { register as registerParity } from './cli/parity';
import { register as registerDoctor } from './cli/doctor';
import { register as registerBuild } from './cli/build';

export function buildProgram(): Command {
  const program = new Command('smoothce')
    .description('PyTorch-exact cross-entropy with label smoothing, for Node.js')
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    .version((require('../package.json') as { version: string }).version, '-V, --version', 'print the smoothce version')
    .showHelpAfterError()
    // Inherited by the subcommands: required flags are marked in --help.
    .configureHelp({
      optionDescription(this: Help, option: Option): string {
        const text = Help.prototype.optionDescription.call(this, option);
        return option.mandatory ? `(required) ${text}` : text;
      },
    })
    .exitOverride((err) => {
      throw err;
    });
  registerInfo(program);
  registerCalibrate(program);
  registerDemo(program);
  registerParity(program);
  registerDoctor(program);
  registerBuild(program);
  program.addHelpText('after', EXIT_CODES_HELP);
  for (const command of program.commands) command.addHelpText('after', EXIT_CODES_HELP);
  return program;
}

/**
 * Runs the CLI; resolves to the exit code: 0 when everything passed (and for --help and
 * --version), 1 when cases or checks failed, 2 for a usage or input error (commander's own
 * errors, which it has already printed, and any error a command throws, printed here).
 */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code?.startsWith('commander.')) return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    console.error(`smoothce: ${e.message ?? String(err)}${typeof e.code === 'string' ? ` (${e.code})` : ''}`);
    return EXIT.USAGE;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
