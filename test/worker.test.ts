/**
 * worker_threads smoke test: the package loads in two workers at once, computes the main
 * thread's results (crossEntropy and crossEntropyAsync), unloads when the workers end (also
 * with async work still in flight), and loads again in fresh workers.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { crossEntropy, tensor, type CrossEntropyOptions, type CrossEntropyResult, type Tensor } from '../lib/index';
import { repoRoot } from './helpers/contract-util';

// Each worker requires the package's public API from lib/ (type-stripped by the register
// hook), which loads the addon the way every user does, and runs the main thread's calls.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
require(workerData.register);
const smoothce = require(workerData.lib);
(async () => {
  if (workerData.mode === 'abandon') {
    // Queue large async calls, then get terminated while they run.
    const n = 2048, c = 500;
    const x = smoothce.tensor(new Float32Array(n * c).map((_, i) => Math.sin(i)), [n, c]);
    const t = smoothce.tensor(new BigInt64Array(n).map((_, i) => BigInt(i % c)), [n]);
    for (let i = 0; i < 2; i++) smoothce.crossEntropyAsync(x, t, { labelSmoothing: 0.1, grad: true }).catch(() => {});
    parentPort.postMessage({ started: true });
    return;
  }
  const out = [];
  for (const [x, t, o] of workerData.calls) {
    const sync = smoothce.crossEntropy(x, t, o);
    const async = await smoothce.crossEntropyAsync(x, t, o);
    out.push({ sync, async });
  }
  parentPort.postMessage({ version: smoothce.torchVersion(), out });
})().catch((e) => parentPort.postMessage({ error: String((e && e.stack) || e) }));
`;

interface WorkerReply {
  version?: string;
  out?: Array<{ sync: CrossEntropyResult; async: CrossEntropyResult }>;
  started?: boolean;
  error?: string;
}

function startWorker(workerData: Record<string, unknown>): { worker: Worker; reply: Promise<WorkerReply>; exit: Promise<number> } {
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: {
      ...workerData,
      register: path.join(repoRoot, 'test', 'helpers', 'contract-ts-register.cjs'),
      lib: path.join(repoRoot, 'lib', 'index.ts'),
    },
  });
  const exit = new Promise<number>((resolve) => worker.once('exit', resolve));
  const reply = new Promise<WorkerReply>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    void exit.then((code) => reject(new Error(`worker exited with code ${code} before replying`)));
  });
  return { worker, reply, exit };
}

const CALLS: Array<[Tensor, Tensor, CrossEntropyOptions]> = [
  [
    tensor(Float32Array.from({ length: 40 * 6 }, (_, i) => Math.cos(i * 0.7) * 3), [40, 6]),
    tensor(BigInt64Array.from({ length: 40 }, (_, i) => BigInt(i % 6)), [40]),
    { labelSmoothing: 0.1, grad: true, weight: [1, 2, 0.5, 1, 1, 3] },
  ],
  [
    tensor(Float64Array.from({ length: 2 * 4 * 3 }, (_, i) => Math.sin(i)), [2, 4, 3]),
    tensor(BigInt64Array.from({ length: 6 }, (_, i) => BigInt(i % 4)), [2, 3]),
    { reduction: 'none', labelSmoothing: 0.25, ignoreIndex: 2, grad: true },
  ],
  [
    tensor(Float64Array.from({ length: 5 * 3 }, (_, i) => i / 7), [5, 3]),
    tensor(Float64Array.from({ length: 5 * 3 }, (_, i) => ((i * 5) % 3) / 3), [5, 3]),
    { reduction: 'sum', labelSmoothing: 0.3 },
  ],
];

function bits(t: { data: ArrayLike<unknown> }): unknown[] {
  return Array.from(t.data);
}

function expectMatches(main: CrossEntropyResult, got: CrossEntropyResult): void {
  const flat = (l: number | Tensor) => (typeof l === 'number' ? [l] : bits(l));
  expect(flat(got.loss)).toEqual(flat(main.loss));
  expect(got.grad === undefined).toBe(main.grad === undefined);
  if (main.grad) {
    expect(got.grad!.shape).toEqual(main.grad.shape);
    expect(bits(got.grad!)).toEqual(bits(main.grad));
  }
}

describe('worker_threads', () => {
  it('loads in 2 workers at once, computes the main thread’s results, unloads and loads again', async () => {
    const calls = CALLS;
    const expected = CALLS.map(([x, t, o]) => crossEntropy(x, t, o));

    for (let round = 0; round < 2; round++) {
      const workers = [startWorker({ calls }), startWorker({ calls })];
      const replies = await Promise.all(workers.map((w) => w.reply));
      for (const r of replies) {
        expect(r.error).toBeUndefined();
        expect(r.version).toMatch(/^\d+\.\d+\.\d+$/);
        expect(r.out).toHaveLength(CALLS.length);
        r.out!.forEach((o, i) => {
          expectMatches(expected[i], o.sync);
          expectMatches(expected[i], o.async);
        });
      }
      // Nothing keeps a worker alive once it has replied: both exit on their own, which
      // runs the addon's environment teardown.
      expect(await Promise.all(workers.map((w) => w.exit))).toEqual([0, 0]);
    }
  });

  it('a worker terminated with async calls in flight goes away cleanly', async () => {
    const { worker, reply } = startWorker({ mode: 'abandon' });
    expect((await reply).started).toBe(true);
    await worker.terminate();
    expect(await Promise.race([reply.then(() => 'replied'), new Promise((r) => setImmediate(() => r('pending')))])).toBe('replied');
    // The addon still loads and computes in a new worker, and on the main thread.
    const calls = [CALLS[0]];
    const again = startWorker({ calls });
    const r = await again.reply;
    expect(r.error).toBeUndefined();
    expectMatches(crossEntropy(...CALLS[0]), r.out![0].async);
    expect(await again.exit).toBe(0);
  });
});
