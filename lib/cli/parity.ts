/**
 * npx smoothce parity <file-or-dir>... [--json] [--rtol x] [--atol y]
 *
 * Replays every case of the case files through crossEntropy and compares with PyTorch's
 * values. One line per case and a summary; exit code 0 only when no case fails
 * (cases smoothce rejects on purpose are listed but are not failures), 1 when some
 * case fails, 2 when a file cannot be read or is not a valid case file.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { codedError, ERROR_CODES } from '../core/errors';
import { deviceFlag, EXIT, requireDevice } from './common';
import { torchVersion } from '../index';
import type { Device } from '../core/options';
import { findCaseFiles, loadCaseFile, type CaseFile } from '../parity/cases';
import { checkParity, formatResult, summarise, type CaseResult, type ParityOptions } from '../parity/check';

export interface ParityCliOptions {
  json?: boolean;
  rtol?: number;
  atol?: number;
  device?: Device;
  /** Raise the case-file limits for large files you trust (docs/security.md). */
  maxJsonBytes?: number;
  maxJsonValues?: number;
}

export interface Output {
  log(line: string): void;
  error(line: string): void;
}

function tolerance(name: string): (value: string) => number {
  return (value) => {
    const x = Number(value);
    if (value.trim() === '' || !Number.isFinite(x) || x < 0) {
      throw new InvalidArgumentError(`${name} must be a non-negative number, got '${value}'`);
    }
    return x;
  };
}

function count(name: string): (value: string) => number {
  return (value) => {
    const x = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(x) || x < 1) {
      throw new InvalidArgumentError(`${name} must be a positive integer, got '${value}'`);
    }
    return x;
  };
}

/** JSON with non-finite numbers as strings (as in case files). */
function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) => {
      if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
      if (typeof v === 'bigint') return v.toString();
      return v;
    },
    2,
  );
}

/** Runs the parity command; returns the exit code. */
export function runParity(paths: readonly string[], options: ParityCliOptions, out: Output = console): number {
  const parityOptions: ParityOptions = {};
  if (options.rtol !== undefined) parityOptions.rtol = options.rtol;
  if (options.atol !== undefined) parityOptions.atol = options.atol;
  if (options.device !== undefined) parityOptions.device = options.device;

  let files: string[];
  let skipped: string[];
  const loaded: CaseFile[] = [];
  const limits = {
    ...(options.maxJsonBytes !== undefined ? { maxBytes: options.maxJsonBytes } : {}),
    ...(options.maxJsonValues !== undefined ? { maxValues: options.maxJsonValues } : {}),
  };
  try {
    ({ files, skipped } = findCaseFiles(paths, limits));
    if (files.length === 0) {
      throw codedError(ERROR_CODES.NO_CASES, `no case files found in ${paths.join(', ')}; pass .json case files or folders that hold them (see docs/parity.md)`);
    }
    for (const f of files) loaded.push(loadCaseFile(f, limits));
    if (loaded.every((f) => f.cases.length === 0)) {
      throw codedError(ERROR_CODES.NO_CASES, `no cases in ${files.join(', ')}: every file's "cases" is empty, so nothing would be checked; add cases (see docs/parity.md)`);
    }
    requireDevice(options.device);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    out.error(`smoothce parity: ${(err as Error).message}${typeof code === 'string' ? ` (${code})` : ''}`);
    return EXIT.USAGE;
  }

  const torch = torchVersion();
  const all: CaseResult[] = [];
  const perFile = loaded.map((file) => {
    const report = checkParity(file, parityOptions);
    all.push(...report.results);
    return { file: file.source!, torch: file.torch ?? null, results: report.results, summary: report.summary };
  });
  const summary = summarise(all);

  if (options.json) {
    out.log(toJson({ torch, files: perFile, skipped, summary }));
    return summary.ok ? EXIT.OK : EXIT.FAILED;
  }

  for (const f of perFile) {
    const captured = /^\d+\.\d+\.\d+/.exec(f.torch ?? '')?.[0];
    const note = f.torch && captured !== /^\d+\.\d+\.\d+/.exec(torch)?.[0] ? ` (captured with torch ${f.torch}; replayed with LibTorch ${torch})` : '';
    out.log(`${f.file}: ${f.results.length} case(s)${note}`);
    const width = Math.min(48, Math.max(0, ...f.results.map((r) => r.name.length)));
    for (const r of f.results) out.log(`  ${formatResult(r, width)}`);
  }
  for (const s of skipped) out.log(`skipped ${s} (not a case file)`);
  const parts = [`${summary.passed} passed`, `${summary.failed} failed`];
  if (summary.errorsMatched) parts.push(`${summary.errorsMatched} errors matched`);
  if (summary.rejected) parts.push(`${summary.rejected} rejected (deviation)`);
  if (summary.accepted) parts.push(`${summary.accepted} accepted (deviation)`);
  out.log(`parity: ${summary.total} cases in ${perFile.length} file(s): ${parts.join(', ')}`);
  const deviations = all.filter((r) => r.status === 'rejected' || r.status === 'accepted');
  if (deviations.length) out.log(`deviations (not failures): ${deviations.map((r) => r.name).join(', ')}`);
  if (!summary.ok) out.log(`FAILED: ${summary.failedNames.join(', ')}`);
  return summary.ok ? EXIT.OK : EXIT.FAILED;
}

export function register(program: Command): void {
  program
    .command('parity')
    .description('replay PyTorch case files (JSON, with .npy for large arrays) and compare loss and gradient')
    .argument('<paths...>', 'case files, or directories whose *.json case files are all replayed')
    .option('--json', 'machine-readable output')
    .option('--rtol <x>', 'relative tolerance for every dtype (default: torch.testing.assert_close per dtype)', tolerance('--rtol'))
    .option('--atol <y>', 'absolute tolerance for every dtype (default: per dtype)', tolerance('--atol'))
    .option('--device <device>', "replay on 'cpu' (default) or 'cuda[:N]'", deviceFlag)
    .option('--max-json-bytes <n>', 'largest case file read, in bytes (default 8 MiB; docs/security.md)', count('--max-json-bytes'))
    .option('--max-json-values <n>', 'most values in one case file (default 500000; docs/security.md)', count('--max-json-values'))
    .action((paths: string[], opts: ParityCliOptions) => {
      const code = runParity(paths, opts);
      if (code !== 0) process.exitCode = code;
    });
}
