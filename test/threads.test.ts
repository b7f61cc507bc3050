// probeAsyncThreads is in the test addon only: loaded as THE addon, before lib/index loads one.
import { hooks, TESTING_ADDON } from './helpers/testing-addon';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { crossEntropy, crossEntropyAsync, getAsyncNumThreads, getNumThreads, setNumThreads, tensor } from '../lib/index';

const addon = TESTING_ADDON;

/** [main-thread threads, async threads] in a fresh process with this environment. */
function fresh(env: Record<string, string>): [number, number] {
  const script = `const b = require(${JSON.stringify(addon)}); b.probeAsyncThreads().then((a) => console.log(JSON.stringify([b.getNumThreads(), b.workerNumThreads(), a])));`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } })) as number[];
  expect(out[2]).toBe(out[1]); // the pool thread really uses what workerNumThreads() says
  return [out[0], out[1]];
}

describe('intra-op threads', () => {
  it('validates setNumThreads', () => {
    expect(() => setNumThreads('2' as unknown as number)).toThrow(TypeError);
    expect(() => setNumThreads(0)).toThrow(RangeError);
    expect(() => setNumThreads(1.5)).toThrow(/integer number of threads in \[1, 1024\]/);
    expect(() => setNumThreads(2000)).toThrow(RangeError);
    expect(() => setNumThreads(NaN)).toThrow(RangeError);
  });

  it("by default gives the libuv pool threads the main thread's count (the same reduction as a sync call)", () => {
    // ATen's default for the main thread follows OMP_NUM_THREADS; each pool thread uses the same.
    expect(fresh({ OMP_NUM_THREADS: '8', UV_THREADPOOL_SIZE: '4' })).toEqual([8, 8]);
    expect(fresh({ OMP_NUM_THREADS: '2', UV_THREADPOOL_SIZE: '16' })).toEqual([2, 2]);
    expect(fresh({ OMP_NUM_THREADS: '1' })).toEqual([1, 1]);
  });

  for (const omp of ['1', '2']) {
    it(`crossEntropyAsync equals crossEntropy bit for bit by default with OMP_NUM_THREADS=${omp}, on the ATen and fused paths`, () => {
      // A fresh process keeps ATen's default (no setNumThreads). The sizes are above ATen's
      // grain size (32,768), so its sums split over the threads: probability targets
      // ((x·t).sum() over N·C), the smoothing sum, 'none', float64, and the fused kernel.
      const script = `
        const s = require(${JSON.stringify(path.resolve(__dirname, '../dist/index.js'))});
        const n = 4096, C = 64;
        const x = s.tensor(Float32Array.from({ length: n * C }, (_, i) => Math.sin(i * 0.37) * 4), [n, C]);
        const x64 = s.tensor(Float64Array.from(x.data), [n, C]);
        const p = s.tensor(Float32Array.from({ length: n * C }, (_, i) => (Math.cos(i) + 1) / (2 * C)), [n, C]);
        const y = s.tensor(Array.from({ length: n }, (_, i) => (i * 7) % C), [n], 'int64');
        const calls = [];
        for (const impl of ['aten', 'fused']) {
          calls.push([x, p, { impl, grad: true, labelSmoothing: 0.1 }]);
          calls.push([x, y, { impl, grad: true, labelSmoothing: 0.1 }]);
          calls.push([x64, y, { impl, grad: true, labelSmoothing: 0.3, reduction: 'sum' }]);
          calls.push([x, y, { impl, labelSmoothing: 0.1, reduction: 'none' }]);
        }
        (async () => {
          const diffs = [];
          for (const [i, [a, b, o]] of calls.entries()) {
            const sync = s.crossEntropy(a, b, o);
            const asy = await s.crossEntropyAsync(a, b, o);
            const flat = (r) => [].concat(typeof r.loss === 'number' ? [r.loss] : Array.from(r.loss.data), r.grad ? Array.from(r.grad.data) : []);
            const u = flat(sync), v = flat(asy);
            const k = u.findIndex((z, j) => !Object.is(z, v[j]));
            if (k >= 0 || u.length !== v.length) diffs.push(i + ': ' + u[k] + ' vs ' + v[k]);
          }
          console.log(JSON.stringify({ threads: s.getNumThreads(), asyncThreads: s.getAsyncNumThreads(), diffs }));
        })();`;
      const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: omp } }));
      expect(out.threads).toBe(Number(omp));
      expect(out.asyncThreads).toBe(Number(omp));
      expect(out.diffs).toEqual([]);
    });
  }

  it('setNumThreads with the count already set does not restart ATen\'s thread pool (whose new worker spins ~30 ms)', () => {
    // CPU time of a fresh process over 60 ms of sleep right after the call: ~30 ms when
    // at::set_num_threads re-creates the pool, ~0 when the call is skipped.
    const script = `const b = require(${JSON.stringify(addon)});
      const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
      b.setNumThreads(2); sleep(150);
      const u0 = process.cpuUsage(); b.setNumThreads(2); sleep(60); const u = process.cpuUsage(u0);
      console.log(JSON.stringify({ threads: b.getNumThreads(), cpuMs: (u.user + u.system) / 1000 }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as { threads: number; cpuMs: number };
    expect(out.threads).toBe(2);
    expect(out.cpuMs).toBeLessThan(10);
  });

  it('setNumThreads applies to sync calls and to the pool threads of async calls, and never changes results', async () => {
    const n = 512;
    const C = 300;
    const x = tensor(Float32Array.from({ length: n * C }, (_, i) => Math.sin(i * 0.37) * 4), [n, C]);
    const y = tensor(Array.from({ length: n }, (_, i) => (i * 7) % C), [n], 'int64');
    const results = [];
    for (const t of [1, 2, 1]) {
      setNumThreads(t);
      expect(getNumThreads()).toBe(t);
      expect(getAsyncNumThreads()).toBe(t);
      expect(await hooks().probeAsyncThreads()).toBe(t);
      const sync = crossEntropy(x, y, { grad: true, labelSmoothing: 0.1 });
      const asyncResult = await crossEntropyAsync(x, y, { grad: true, labelSmoothing: 0.1 });
      expect(asyncResult).toEqual(sync);
      results.push(sync);
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });
});
