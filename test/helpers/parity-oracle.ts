/** Test helpers for the parity suites: the Python oracle (/usr/bin/python3 with torch and numpy). */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const PYTHON = '/usr/bin/python3';
const ORACLE = path.join(__dirname, 'parity-oracle.py');

/** Runs Python code with the oracle interpreter; returns stdout. Fails loudly when it is missing. */
export function python(code: string, args: string[] = [], cwd?: string): string {
  if (!fs.existsSync(PYTHON)) {
    throw new Error(`${PYTHON} is missing: the parity tests need Python with torch and numpy (bash scripts/setup.sh installs them)`);
  }
  return execFileSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Writes the oracle's case file (16 cases, see parity-oracle.py) to `file`; with npy, arrays > 16 elements go to .npy. */
export function writeOracleCases(file: string, options: { npy?: boolean } = {}): void {
  execFileSync(PYTHON, [ORACLE, file, ...(options.npy ? ['--npy'] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function tempDir(prefix = 'smoothce-parity-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Collects what a CLI run prints. */
export function capture(): { log: (l: string) => void; error: (l: string) => void; out: string[]; err: string[]; text: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return { log: (l) => out.push(l), error: (l) => err.push(l), out, err, text: () => [...out, ...err].join('\n') };
}
