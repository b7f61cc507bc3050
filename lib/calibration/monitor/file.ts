/**
 * Checkpoint files that a crash cannot leave half-written: the text goes to a temporary file
 * in the target's directory, which is fsynced, renamed over the target (atomic on POSIX file
 * systems) and followed by an fsync of the directory, so that the rename itself is durable.
 * A reader sees the old file or the new one, never a mix or an empty file.
 * (write-file-atomic does the first three steps but not the directory's fsync.)
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonText } from '../../parity/untrusted-json';

function tempName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Errors of a directory fsync that mean the platform cannot do it (and the rename stands). */
function cannotSyncDir(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EINVAL' || code === 'EISDIR' || code === 'EPERM';
}

/** fsync of a directory; platforms that cannot open one (Windows) skip it. */
function syncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    if (!cannotSyncDir(err)) throw err;
  } finally {
    fs.closeSync(fd);
  }
}

export function writeFileAtomic(file: string, text: string): void {
  const target = path.resolve(file);
  const tmp = tempName(target);
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    try {
      fs.writeFileSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  syncDir(path.dirname(target));
}

export async function writeFileAtomicAsync(file: string, text: string): Promise<void> {
  const target = path.resolve(file);
  const tmp = tempName(target);
  const handle = await fs.promises.open(tmp, 'wx', 0o644);
  try {
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, target);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  let dir: fs.promises.FileHandle | undefined;
  try {
    dir = await fs.promises.open(path.dirname(target), 'r');
  } catch {
    return;
  }
  try {
    await dir.sync();
  } catch (err) {
    if (!cannotSyncDir(err)) throw err;
  } finally {
    await dir.close();
  }
}

/** Limits of Monitor.load: a checkpoint is the monitor's own file, so they are looser than a case file's. */
const LOAD_LIMITS = { maxBytes: 1024 * 1024 * 1024, maxDepth: 32, maxValues: Number.MAX_SAFE_INTEGER };

/** A checkpoint's text: a regular file of at most maxBytes (default 1 GiB), nested at most 32 deep. */
export function readCheckpoint(file: string, maxBytes?: number): string {
  return readJsonText(file, { ...LOAD_LIMITS, ...(maxBytes !== undefined ? { maxBytes } : {}) });
}
