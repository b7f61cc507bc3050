/**
 * npx smoothce as a user runs it (dist/cli.js in a child process): --version, the exit codes
 * that --help documents (0 passed, 1 cases failed, 2 usage or input error), errors that name
 * the flag, required flags marked, uint8 labels, zero cases, and --device cuda on a CPU-only
 * build refused once, up front.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cudaAvailable } from '../lib/index';
import { writeNpy } from '../lib/parity/npy';
import { writeOracleCases } from './helpers/parity-oracle';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'cli.js');
let dir: string;
let probs: string;
let labels8: string;
let good: string;

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: root, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-cli-'));
  const N = 40;
  const K = 3;
  const p = new Float32Array(N * K);
  const y = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    y[i] = i % K;
    for (let k = 0; k < K; k++) p[i * K + k] = k === y[i] ? 0.6 : 0.2;
  }
  probs = path.join(dir, 'probs.npy');
  labels8 = path.join(dir, 'labels-u1.npy');
  writeNpy(probs, p, [N, K]);
  writeNpy(labels8, y, [N]);
  writeNpy(path.join(dir, 'logits.npy'), p.map((v) => 10 * v - 3), [N, K]);
  good = path.join(dir, 'oracle.json');
  writeOracleCases(good);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('npx smoothce', () => {
  it('--version prints the package version, exit 0', () => {
    const version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const r = run(flag);
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
  });

  it('--help documents the exit codes, on the program and on every command, and marks required flags', () => {
    const top = run('--help');
    expect(top.status).toBe(0);
    expect(top.stdout).toMatch(/Exit codes:\n\s+0 +everything passed\n\s+1 +cases or checks failed\n\s+2 +usage or input error/);
    for (const command of ['calibrate', 'parity', 'demo', 'info']) {
      expect(run(command, '--help').stdout, command).toContain('Exit codes:');
    }
    const help = run('calibrate', '--help').stdout;
    expect(help).toMatch(/--scores <file> +\(required\)/);
    expect(help).toMatch(/--labels <file> +\(required\)/);
    expect(help).not.toMatch(/--bins <n> +\(required\)/);
  });

  it('exit 2 for usage errors, naming the flag', () => {
    const missing = run('calibrate', '--scores', probs);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/required option '--labels <file>' not specified/);
    const badChoice = run('calibrate', '--scores', probs, '--labels', labels8, '--from', 'softmax');
    expect(badChoice.status).toBe(2);
    expect(badChoice.stderr).toMatch(/'--from <kind>' argument 'softmax' is invalid/);
    const badDevice = run('parity', good, '--device', 'gpu');
    expect(badDevice.status).toBe(2);
    expect(badDevice.stderr).toMatch(/'--device <device>' argument 'gpu' is invalid/);
    expect(run('no-such-command').status).toBe(2);
    expect(run('calibrate', '--scores', probs, '--labels', labels8, '--no-such-flag').status).toBe(2);
    expect(run().status).toBe(2); // no command: help on stderr, a usage error
  });

  it('exit 2 for input errors, naming the flag and the error code', () => {
    const unreadable = run('calibrate', '--scores', path.join(dir, 'missing.npy'), '--labels', labels8);
    expect(unreadable.status).toBe(2);
    expect(unreadable.stderr).toMatch(/^smoothce: --scores: .*missing\.npy.*\(ERR_SMOOTHCE_NPY\)$/m);
    // labels passed as scores: the library's message names --scores, not 'scores'.
    const swapped = run('calibrate', '--scores', labels8, '--labels', labels8);
    expect(swapped.status).toBe(2);
    expect(swapped.stderr).toMatch(/^smoothce: .*--scores.*\(ERR_SMOOTHCE_INVALID_ARG_TYPE\)$/m);
    expect(swapped.stderr).not.toMatch(/for scores\b/);
    const logitsAsProbs = run('calibrate', '--scores', path.join(dir, 'logits.npy'), '--labels', labels8);
    expect(logitsAsProbs.status).toBe(2);
  });

  it('calibrate accepts uint8 labels (.npy |u1), exit 0', () => {
    const r = run('calibrate', '--scores', probs, '--labels', labels8, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as { n: number; accuracy: number };
    expect(report.n).toBe(40);
    expect(report.accuracy).toBe(1);
  });

  it('parity: 0 when all cases pass, 1 when one fails, 2 on zero cases', () => {
    expect(run('parity', good).status).toBe(0);
    const json = JSON.parse(fs.readFileSync(good, 'utf8')) as { cases: { expected: { loss: { data: number[] } } }[] };
    json.cases[0].expected.loss.data[0] += 1;
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify(json));
    const failed = run('parity', bad);
    expect(failed.status).toBe(1);
    expect(failed.stdout).toMatch(/FAILED: /);
    const empty = path.join(dir, 'empty.json');
    fs.writeFileSync(empty, JSON.stringify({ ...json, cases: [] }));
    const none = run('parity', empty);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/no cases in .*empty\.json.*\(ERR_SMOOTHCE_NO_CASES\)/);
  });

  it.runIf(!cudaAvailable())('--device cuda on a CPU-only build: one error up front, exit 2', () => {
    const parity = run('parity', good, '--device', 'cuda');
    expect(parity.status).toBe(2);
    expect(parity.stdout).toBe(''); // no case was run
    expect(parity.stderr.match(/--device cuda cannot be used/g)).toHaveLength(1);
    const calibrate = run('calibrate', '--scores', probs, '--labels', labels8, '--device', 'cuda');
    expect(calibrate.status).toBe(2);
    expect(calibrate.stderr.match(/--device cuda cannot be used/g)).toHaveLength(1);
  });
});
