/**
 * Throughput of request coalescing: 10,000 concurrent single-row requests, C = 1000,
 * float32 logits, class-index targets, mean loss (+ gradient with --grad).
 *
 *   npm run bench:batcher            (options: --requests N --classes C --grad --reps R)
 *
 * Compares, on the same machine and process:
 *   unbatched async   10,000 crossEntropyAsync() calls in flight at once (libuv pool)
 *   unbatched sync    10,000 crossEntropy() calls one after the other (blocks the loop)
 *   Batcher           10,000 batcher.score() calls in flight at once, coalesced into
 *                     calls of up to maxBatchSize rows
 * Prints requests/s (median of --reps runs) and the speed-up of the Batcher over the
 * unbatched async calls (what a service would otherwise do).
 */
import * as os from 'node:os';
import { Batcher, crossEntropy, crossEntropyAsync, getAsyncNumThreads, getNumThreads, tensor, torchVersion, type Tensor } from '../lib/index';
import { rng } from '../test/helpers/rng';
import { arg } from './args';

const N = arg('requests', 10_000);
const C = arg('classes', 1000);
const REPS = arg('reps', 3);
const GRAD = process.argv.includes('--grad');

const r = rng(42);
const requests: { input: Tensor; target: Tensor }[] = [];
for (let i = 0; i < N; i++) {
  const x = new Float32Array(C);
  for (let j = 0; j < C; j++) x[j] = (r() - 0.5) * 8;
  requests.push({ input: tensor(x, [1, C]), target: tensor(BigInt64Array.of(BigInt(Math.floor(r() * C))), [1]) });
}
const options = { labelSmoothing: 0.1, grad: GRAD };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function main(): Promise<void> {
  console.log(
    `smoothce Batcher benchmark: ${N} concurrent requests of 1 row, C = ${C}, float32, labelSmoothing 0.1, grad ${GRAD}\n` +
      `LibTorch ${torchVersion()}, ${os.availableParallelism()} CPUs (${os.cpus()[0]?.model ?? '?'}), ` +
      `UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, intra-op threads: sync ${getNumThreads()}, async ${getAsyncNumThreads()}\n`,
  );
  // Correctness spot check before timing.
  const b0 = new Batcher({ ...options });
  const spot = await Promise.all(requests.slice(0, 50).map((q) => b0.score(q.input, q.target)));
  for (let i = 0; i < 50; i++) {
    const want = crossEntropy(requests[i].input, requests[i].target, options).loss;
    if (Math.abs((spot[i].loss as number) - want) > 1e-6 * Math.max(1, Math.abs(want))) throw new Error(`mismatch at ${i}`);
  }
  await b0.close();

  const rows: [string, number[], string][] = [];
  const asyncTimes: number[] = [];
  const syncTimes: number[] = [];
  const batched: Record<number, { times: number[]; batches: number }> = {};
  for (let rep = 0; rep < REPS; rep++) {
    asyncTimes.push(await time(() => Promise.all(requests.map((q) => crossEntropyAsync(q.input, q.target, options)))));
    syncTimes.push(
      await time(() => {
        for (const q of requests) crossEntropy(q.input, q.target, options);
      }),
    );
    for (const maxBatchSize of [64, 256, 1024]) {
      const batcher = new Batcher({ ...options, maxBatchSize, maxDelayMs: 1 });
      const t = await time(() => Promise.all(requests.map((q) => batcher.score(q.input, q.target))));
      (batched[maxBatchSize] ??= { times: [], batches: 0 }).times.push(t);
      batched[maxBatchSize].batches = batcher.stats.batches;
      await batcher.close();
    }
  }
  rows.push(['unbatched crossEntropyAsync (all in flight)', asyncTimes, '']);
  rows.push(['unbatched crossEntropy (sync loop)', syncTimes, '']);
  for (const [size, { times, batches }] of Object.entries(batched)) {
    rows.push([`Batcher maxBatchSize ${size}, maxDelayMs 1`, times, `${batches} native calls`]);
  }
  const base = N / median(asyncTimes);
  console.log('| mode | requests/s (median) | wall s (median) | vs unbatched async | note |');
  console.log('|---|---:|---:|---:|---|');
  for (const [name, times, note] of rows) {
    const rps = N / median(times);
    console.log(`| ${name} | ${Math.round(rps).toLocaleString('en-US')} | ${median(times).toFixed(3)} | ${(rps / base).toFixed(1)}x | ${note} |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
