/**
 * What the subcommands share: the exit codes, flag parsers that fail as usage errors, the
 * up-front --device check, and the rewording of library errors so they name flags.
 */
import { InvalidArgumentError } from 'commander';
import { checkDevice } from '../core/device';
import { ERROR_CODES, withCode } from '../core/errors';
import { parseDevice, type Device } from '../core/options';

/** Exit codes of every command (also printed by --help). */
export const EXIT = {
  /** Everything passed. */
  OK: 0,
  /** Cases or checks failed (the run itself worked). */
  FAILED: 1,
  /** Usage or input error: a bad flag, a missing or unreadable file, an invalid case file, no cases, an unusable device. */
  USAGE: 2,
} as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  everything passed
  1  cases or checks failed
  2  usage or input error (bad flag, unreadable or invalid file, no cases, device not available)`;

/** Parser for --device: 'cpu', 'cuda' or 'cuda:N' (whether it is usable is checked once, up front, by requireDevice). */
export function deviceFlag(value: string): Device {
  try {
    return parseDevice(value) as Device;
  } catch {
    throw new InvalidArgumentError("expected 'cpu', 'cuda' or 'cuda:N'");
  }
}

/**
 * Throws once, before any work, when --device names a device this build or machine cannot
 * use (a CUDA device on a CPU-only LibTorch, or no GPU visible).
 */
export function requireDevice(device: Device | undefined): void {
  if (device === undefined || device === 'cpu') return;
  try {
    checkDevice(device);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw withCode(new RangeError(`--device ${device} cannot be used: ${message}; pass --device cpu or leave --device out`), ERROR_CODES.INVALID_ARG_VALUE);
  }
}

/**
 * Rewords an error from the library so that it names the flag the user typed, not the API
 * parameter ('for scores' -> 'for --scores', "from: 'logits'" -> '--from logits'). The
 * error keeps its class and code.
 */
export function nameFlags(err: unknown, flags: Readonly<Record<string, string>>): unknown {
  if (!(err instanceof Error)) return err;
  let message = err.message;
  for (const [param, flag] of Object.entries(flags)) {
    message = message.replace(new RegExp(`\\b(for|Invalid) ${param}\\b`, 'g'), `$1 ${flag}`);
    message = message.replace(new RegExp(`\\b${param}: '([a-z]+)'`, 'g'), `${flag} $1`);
  }
  err.message = message;
  return err;
}
