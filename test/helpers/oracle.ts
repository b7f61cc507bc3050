/**
 * The live PyTorch oracle: /usr/bin/python3 with torch (override with SMOOTHCE_ORACLE_PYTHON),
 * driven through python/oracle_batch.py, one process per batch (stdin JSON → stdout JSON).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { Case, CaseFile } from './cases-format';

export const ORACLE_PYTHON = process.env.SMOOTHCE_ORACLE_PYTHON || '/usr/bin/python3';
const BATCH_SCRIPT = path.resolve(__dirname, '..', '..', 'python', 'oracle_batch.py');

export type OracleProbe = { ok: true; torch: string } | { ok: false; reason: string };

/** Whether the oracle Python can import torch and numpy (and which torch it has). */
export function probeOracle(): OracleProbe {
  const r = spawnSync(ORACLE_PYTHON, ['-c', 'import torch, numpy; print(torch.__version__)'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.error) return { ok: false, reason: `${ORACLE_PYTHON}: ${r.error.message}` };
  if (r.status !== 0) {
    const last = (r.stderr || '').trim().split('\n').pop() ?? '';
    return { ok: false, reason: `${ORACLE_PYTHON} cannot import torch/numpy (${last || `exit ${r.status}`})` };
  }
  return { ok: true, torch: r.stdout.trim() };
}

/** A case to send: no "expected" yet. */
export type OracleRequest = Omit<Case, 'expected'>;

/** Computes every case with torch in one Python process; returns the completed case file. */
export function runOracle(cases: OracleRequest[]): CaseFile {
  const request = { format: 'smoothce-cases', version: 1, torch: '', generator: 'test/oracle.test.ts', cases };
  const r = spawnSync(ORACLE_PYTHON, [BATCH_SCRIPT], {
    input: JSON.stringify(request),
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
    timeout: 300_000,
  });
  if (r.error) throw new Error(`oracle ${ORACLE_PYTHON} ${BATCH_SCRIPT} failed to run: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`oracle ${ORACLE_PYTHON} ${BATCH_SCRIPT} exited with ${r.status}:\n${r.stderr}`);
  }
  const doc = JSON.parse(r.stdout) as CaseFile;
  if (doc.format !== 'smoothce-cases' || doc.cases.length !== cases.length) {
    throw new Error(`oracle answered ${doc.cases?.length} cases for ${cases.length}`);
  }
  return doc;
}
