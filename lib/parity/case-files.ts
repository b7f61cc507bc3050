/**
 * Case files on disk: reading one with the size and depth limits of docs/security.md, and
 * finding the case files among files and directories.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CaseFormatError, type CaseFile } from './case-types';
import { looksLikeCaseFile, parseCaseFile } from './case-read';
import { checkJsonDepth, JsonLimitError, readJsonText, type JsonLimits } from './untrusted-json';

/**
 * JSON.parse, except that integer literals beyond 2^53 (which Python's json module
 * writes for large int64 values) become decimal strings instead of losing precision.
 * Text nested deeper than `maxDepth` (default 128) is refused with a JsonLimitError
 * before it is parsed.
 */
export function parseJson(text: string, maxDepth?: number): unknown {
  checkJsonDepth(text, maxDepth);
  return JSON.parse(/\d{16}/.test(text) ? quoteBigIntegers(text) : text);
}

const isNumberChar = (c: number): boolean => (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;

/**
 * Puts quotes around the integer literals beyond 2^53 outside strings, in one linear pass
 * (a regular expression over a long string literal overflows the stack).
 */
function quoteBigIntegers(text: string): string {
  const n = text.length;
  const parts: string[] = [];
  let last = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < n && isNumberChar(text.charCodeAt(j))) j++;
      const token = text.slice(i, j);
      if (j - i >= 16 && /^-?\d{16,}$/.test(token) && !Number.isSafeInteger(Number(token))) {
        parts.push(text.slice(last, i), `"${token}"`);
        last = j;
      }
      i = j - 1;
    }
  }
  if (last === 0) return text;
  parts.push(text.slice(last));
  return parts.join('');
}

/** Reads a case file's JSON with the size and depth limits; problems become CaseFormatErrors. */
function readCaseJson(file: string, limits?: JsonLimits): unknown {
  let text: string;
  try {
    text = readJsonText(file, limits);
  } catch (err) {
    if (err instanceof JsonLimitError) throw Object.assign(new CaseFormatError(`${file}: ${err.message}`, file), { cause: err });
    if (err instanceof RangeError || err instanceof TypeError) throw err; // a bad limits option
    throw new CaseFormatError(`${file}: cannot read: ${(err as Error).message}`, file);
  }
  try {
    return parseJson(text, limits?.maxDepth);
  } catch (err) {
    const hint = /\bNaN\b|\bInfinity\b/.test(text) ? ' (write non-finite numbers as the strings "NaN", "Infinity", "-Infinity")' : '';
    throw new CaseFormatError(`${file}: not valid JSON: ${(err as Error).message}${hint}`, file);
  }
}

/**
 * Reads and validates a case file (.npy references resolve next to it). The file must be
 * a regular file of at most `limits.maxBytes` bytes (default 8 MiB), nested at most
 * `limits.maxDepth` deep (default 128), with at most `limits.maxValues` values (default
 * 500,000); see docs/security.md.
 */
export function loadCaseFile(file: string, limits?: JsonLimits): CaseFile {
  const json = readCaseJson(file, limits);
  return parseCaseFile(json, { file, baseDir: path.dirname(path.resolve(file)) });
}

/** The first 64 KiB of a regular file as text ('' for anything else). */
function head(file: string): string {
  try {
    if (!fs.statSync(file).isFile()) return '';
    const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
    try {
      const buf = Buffer.alloc(65536);
      return buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/**
 * Expands files and directories into case files: a directory contributes every *.json
 * inside it (recursively, sorted; node_modules and dot-folders skipped) whose content is
 * a case file. Returns the paths and the JSON files skipped as not being case files.
 */
export function findCaseFiles(paths: readonly string[], limits?: JsonLimits): { files: string[]; skipped: string[] } {
  const files: string[] = [];
  const skipped: string[] = [];
  const walk = (dir: string): void => {
    const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && !e.name.startsWith('.')) walk(p);
      } else if (e.isFile() && e.name.endsWith('.json')) {
        let json: unknown;
        try {
          json = parseJson(readJsonText(p, limits), limits?.maxDepth);
        } catch {
          json = undefined;
        }
        // A file that is not valid JSON (or is over a limit) but looks like a case file is
        // still reported by the loader; only its first 64 KiB are looked at.
        if (json === undefined ? /"cases"\s*:|"smoothce-cases"/.test(head(p)) : looksLikeCaseFile(json)) files.push(p);
        else skipped.push(p);
      }
    }
  };
  for (const p of paths) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      throw new CaseFormatError(`${p}: no such file or directory`, p);
    }
    if (st.isDirectory()) walk(p);
    else files.push(p);
  }
  return { files, skipped };
}
