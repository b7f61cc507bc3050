/**
 * The fuzzer (fuzz/fuzz.js) in CI: a few thousand random and malformed calls through the
 * public API and straight into the native binding, each in a child process. Every case must
 * end in a result or a JS error: no crash, no hang, no other finding. Also checks that the
 * harness itself notices crashes and hangs (injected), so a green run means something.
 *
 * SMOOTHCE_FUZZ_SEED / SMOOTHCE_FUZZ_CASES override the seed and the case count.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const FUZZ = path.join(root, 'fuzz', 'fuzz.js');

interface Summary {
  seed: number;
  cases: number;
  results: number;
  errors: number;
  errorsByClass: Record<string, number>;
  byKind: Record<string, { cases: number }>;
  failures: number;
  crashes: number;
  hangs: number;
  findings: Array<{ id: string; type: string; how?: string; message?: string; trace?: string[] }>;
}

function fuzz(args: string[], env: Record<string, string> = {}): { status: number | null; summary: Summary; stderr: string } {
  const r = spawnSync(process.execPath, [FUZZ, '--json', '--quiet', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 170_000,
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let summary: Summary;
  try {
    summary = JSON.parse(last) as Summary;
  } catch {
    throw new Error(`fuzz printed no summary (status ${r.status}, signal ${r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  return { status: r.status, summary, stderr: r.stderr };
}

describe('fuzzer', () => {
  it('a few thousand cases: only results and JS errors (no crash, hang or other finding)', () => {
    const seed = process.env.SMOOTHCE_FUZZ_SEED ?? '20261128';
    const cases = Number(process.env.SMOOTHCE_FUZZ_CASES ?? 2500);
    const { status, summary } = fuzz(['--seed', seed, '--cases', String(cases), '--jobs', '2', '--timeout', '60']);
    const findings = summary.findings.map((f) => `${f.id} ${f.type} ${f.how ?? ''} ${f.message ?? ''} [${(f.trace ?? []).join('; ')}]`);
    expect(findings, `replay with: npm run fuzz -- --replay <id>`).toEqual([]);
    expect(summary.crashes).toBe(0);
    expect(summary.hangs).toBe(0);
    expect(summary.failures).toBe(0);
    expect(status).toBe(0);
    expect(summary.cases).toBe(cases);
    // Both outcomes occur, and bad input gets the error classes the API promises.
    expect(summary.results).toBeGreaterThan(cases / 5);
    expect(summary.errorsByClass.TypeError).toBeGreaterThan(0);
    expect(summary.errorsByClass.RangeError).toBeGreaterThan(0);
    for (const kind of ['api', 'native', 'lifetime', 'tensor', 'extra']) expect(summary.byKind[kind]?.cases, kind).toBeGreaterThan(0);
  });

  it('notices a crash and a hang, isolates the case, and names it for --replay', () => {
    const { status, summary } = fuzz(['--seed', '7', '--cases', '16', '--batch', '16', '--jobs', '1', '--timeout', '3'], {
      SMOOTHCE_FUZZ_INJECT: 'abort@5,hang@11',
    });
    expect(status).toBe(1);
    expect(summary.crashes).toBe(1);
    expect(summary.hangs).toBe(1);
    expect(summary.findings.map((f) => [f.id, f.type])).toEqual([
      ['7:5', 'crash'],
      ['7:11', 'hang'],
    ]);
    expect(summary.findings[0].how).toMatch(/SIGABRT/);
    // The cases around them still ran, each once.
    expect(summary.cases).toBe(16);
  });

  it('replays a case by its id, printing what it did', () => {
    const r = spawnSync(process.execPath, [FUZZ, '--replay', '20261128:3'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^case 20261128:3\n/);
    expect(r.stdout).toMatch(/=> (result|\w*Error: )/);
  });
});
