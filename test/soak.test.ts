/**
 * Smoke run of scripts/soak.js (the real soak runs for minutes: npm run soak -- --minutes 10):
 * a few seconds of mixed sync/async calls on the main thread and two worker_threads that are
 * recycled (terminated with calls in flight, then replaced), checking that every call comes
 * back, results are right, workers load and unload the addon cleanly, and memory is sampled.
 * The growth verdict needs minutes after warm-up, so it is not asserted here.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');

describe('soak (smoke)', () => {
  it('mixed calls from the main thread and recycled workers: nothing lost, nothing wrong', () => {
    const r = spawnSync(
      process.execPath,
      ['--expose-gc', path.join(root, 'scripts', 'soak.js'), '--seconds', '12', '--workers', '2', '--recycle', '3', '--sample', '2', '--json'],
      { cwd: root, encoding: 'utf8', timeout: 150_000 },
    );
    expect(r.signal, r.stderr).toBeNull();
    const report = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
    expect(report.workerErrors).toEqual([]);
    expect(report.stuck).toEqual([]);
    expect(report.totals.wrong).toBe(0);
    expect(report.totals.async).toBeGreaterThan(100);
    expect(report.totals.sync).toBeGreaterThan(100);
    expect(report.totals.errors).toBeGreaterThan(10);
    expect(report.workersRecycled).toBeGreaterThanOrEqual(2);
    expect(report.samples.length).toBeGreaterThanOrEqual(4);
    for (const s of report.samples) expect(s.rss).toBeGreaterThan(0);
    expect(report.verdict.criterion).toMatch(/least-squares RSS growth/);
  });
});
