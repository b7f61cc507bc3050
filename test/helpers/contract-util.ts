/**
 * Shared helpers for the contract tests (validation, async, worker, loader, packaging).
 */
import { spawnSync, type SpawnSyncOptions, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..');

type Typed = ArrayBufferView & { length: number; [i: number]: number | bigint };

/** Every typed array reachable from a call's arguments (tensors, weight, gradOutput), with a copy. */
export function snapshotArrays(...values: unknown[]): Array<{ array: Typed; copy: unknown[] }> {
  const out: Array<{ array: Typed; copy: unknown[] }> = [];
  const seen = new Set<unknown>();
  const visit = (v: unknown, depth: number): void => {
    if (v === null || typeof v !== 'object' || seen.has(v) || depth > 3) return;
    seen.add(v);
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      const array = v as unknown as Typed;
      out.push({ array, copy: Array.from(array as unknown as ArrayLike<unknown>) });
      return;
    }
    if (Array.isArray(v)) return;
    for (const key of ['data', 'weight', 'gradOutput']) {
      const d = Object.getOwnPropertyDescriptor(v, key);
      if (d && 'value' in d) visit(d.value, depth + 1);
    }
  };
  for (const v of values) visit(v, 0);
  return out;
}

/** Throws when any snapshotted array differs from its copy (bitwise, NaN-aware). */
export function assertUnchanged(snaps: Array<{ array: Typed; copy: unknown[] }>): void {
  for (const { array, copy } of snaps) {
    const now = Array.from(array as unknown as ArrayLike<unknown>);
    if (now.length !== copy.length || now.some((x, i) => !Object.is(x, copy[i]))) {
      throw new Error(`a caller's ${array.constructor.name} was modified by the call`);
    }
  }
}

/** The environment for child processes: no npm lifecycle variables, no smoothce overrides. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === 'INIT_CWD' || k.startsWith('SMOOTHCE_') || k.startsWith('VITEST') || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts }) as SpawnSyncReturns<string>;
}

export function describeRun(r: SpawnSyncReturns<string>): string {
  return `status ${r.status} signal ${r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/**
 * dist/ is shared by every test that needs the compiled package. Writers (build:ts,
 * npm pack, whose prepack builds) take this lock exclusively; readers take it shared, so
 * that no test imports a half-written dist/.
 */
export const distLock = path.join(os.tmpdir(), 'smoothce-dist.lock');

/** Runs a command under the dist/ lock (flock(1), util-linux). */
export function runLocked(mode: 'shared' | 'exclusive', cmd: string, args: string[], opts: SpawnSyncOptions = {}) {
  return run('flock', [mode === 'shared' ? '-s' : '-x', distLock, cmd, ...args], opts);
}

function newestMtime(dir: string, filter: (f: string) => boolean): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p, filter));
    else if (filter(p)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** True when dist/ is missing or older than any lib/ source or the ESM wrapper script. */
export function distIsStale(): boolean {
  const marker = path.join(repoRoot, 'dist', 'index.mjs');
  if (!fs.existsSync(marker) || !fs.existsSync(path.join(repoRoot, 'dist', 'index.js'))) return true;
  const built = fs.statSync(marker).mtimeMs;
  const sources = Math.max(
    newestMtime(path.join(repoRoot, 'lib'), (f) => f.endsWith('.ts')),
    fs.statSync(path.join(repoRoot, 'scripts', 'esm-wrapper.js')).mtimeMs,
    fs.statSync(path.join(repoRoot, 'tsconfig.json')).mtimeMs,
  );
  return sources > built;
}

/**
 * Builds dist/ (npm run build:ts) under the exclusive lock when it is missing or stale.
 * Returns the build's output for failure messages (empty when nothing was built).
 */
export function ensureDist(): string {
  // Two files may both find dist/ stale; the lock makes their builds run one after the other.
  if (!distIsStale()) return '';
  const r = runLocked('exclusive', 'bash', ['-c', 'npm run --silent build:ts'], { cwd: repoRoot, env: cleanEnv() });
  if (r.status !== 0) {
    throw new Error(`npm run build:ts failed\n${describeRun(r)}`);
  }
  return `${r.stdout}${r.stderr}`;
}
