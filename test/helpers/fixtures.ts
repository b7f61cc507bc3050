/**
 * The golden fixtures recorded by PyTorch, one file per torch version (python/generate_fixtures.py):
 * test/fixtures/cases.json (torch 1.13) and test/fixtures/cases-<major>.<minor>.json for others.
 * The suites replay the file recorded by the linked LibTorch's version (torchVersion()), so what a
 * version computes or rejects (float16 on CPU: an error on 1.13, values on 2.x) comes from that
 * version's torch, never from a hard-coded list.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { torchVersion } from '../../lib/index';
import type { CaseFile } from './cases-format';

const DIR = path.join(__dirname, '..', 'fixtures');

const majorMinor = (v: string): string => (/^(\d+)\.(\d+)/.exec(v) ?? ['', '?', '?']).slice(1, 3).join('.');

export interface Fixtures {
  file: string;
  doc: CaseFile;
  /** Whether the file was recorded by the linked LibTorch's major.minor version. */
  matchesLinked: boolean;
  /** Every recorded version, e.g. ['1.13', '2.6']. */
  recorded: string[];
}

export function loadFixtures(): Fixtures {
  const linked = majorMinor(torchVersion());
  const files = fs
    .readdirSync(DIR)
    .filter((f) => /^cases(-\d+\.\d+)?\.json$/.test(f))
    .map((f) => path.join(DIR, f));
  const docs = files.map((file) => ({ file, doc: JSON.parse(fs.readFileSync(file, 'utf8')) as CaseFile }));
  const recorded = docs.map((d) => majorMinor(d.doc.torch));
  const same = docs.find((d) => majorMinor(d.doc.torch) === linked);
  const chosen = same ?? docs.find((d) => path.basename(d.file) === 'cases.json')!;
  return { ...chosen, matchesLinked: same !== undefined, recorded };
}
