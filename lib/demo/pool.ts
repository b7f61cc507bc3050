/**
 * Runs the demo's jobs on worker_threads, one worker per core by default, and gives the
 * results back in the order of the jobs. Each job is a pure function of its spec, so the
 * schedule (which worker, in which order) cannot change a result; with threads = 1 the jobs
 * run one after another on this thread and give the same numbers.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { codedError, ERROR_CODES } from '../core/errors';
import { runJob, type JobSpec, type SeedRun } from './experiment';
import type { JobMessage, JobRequest } from './worker';

export interface PoolOptions {
  /** Worker threads; default os.availableParallelism(). 1 runs on the calling thread. */
  threads?: number;
  /** After every epoch of any job: the job's index and epoch. */
  onEpoch?(job: number, epoch: number): void;
  /** When a job finishes. */
  onJobDone?(job: number): void;
}

/** A rough cost of a job (multiply-adds of one epoch, times epochs), to order jobs and estimate the time left. */
export function jobCost(spec: JobSpec): number {
  const classes = spec.binary ? 2 : 10;
  const rows = spec.binary ? 214 : 1079;
  return spec.epochs * rows * spec.hidden * (64 + classes);
}

/** dist/demo/worker.js next to this file, or, when running from the TypeScript sources (tests), the built copy. */
function workerFile(): string {
  const here = path.join(__dirname, 'worker.js');
  if (fs.existsSync(here)) return here;
  const built = path.resolve(__dirname, '..', '..', 'dist', 'demo', 'worker.js');
  if (fs.existsSync(built)) return built;
  throw codedError(ERROR_CODES.DEMO, `smoothce demo: no worker script at ${here} or ${built}; run \`npm run build:ts\``);
}

export async function runJobs(jobs: JobSpec[], options: PoolOptions = {}): Promise<SeedRun[]> {
  const threads = Math.max(1, Math.min(options.threads ?? os.availableParallelism(), jobs.length));
  const results: SeedRun[] = new Array(jobs.length);
  if (threads === 1) {
    for (let i = 0; i < jobs.length; i++) {
      results[i] = runJob(jobs[i], (info) => options.onEpoch?.(i, info.epoch));
      options.onJobDone?.(i);
      await new Promise<void>((r) => setImmediate(r)); // let a progress bar redraw
    }
    return results;
  }
  // Longest jobs first, so that the last ones to finish are short.
  const queue = jobs.map((_, i) => i).sort((a, b) => jobCost(jobs[b]) - jobCost(jobs[a]) || a - b);
  const file = workerFile();
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let pending = jobs.length;
      let failed = false;
      const fail = (err: Error) => {
        if (failed) return;
        failed = true;
        reject(err);
      };
      const feed = (w: Worker) => {
        const id = queue.shift();
        if (id !== undefined) w.postMessage({ id, spec: jobs[id] } satisfies JobRequest);
      };
      for (let t = 0; t < threads; t++) {
        const w = new Worker(file);
        workers.push(w);
        w.on('message', (m: JobMessage) => {
          if (m.type === 'epoch') options.onEpoch?.(m.id, m.epoch);
          else if (m.type === 'done') {
            results[m.id] = m.result;
            options.onJobDone?.(m.id);
            if (--pending === 0) resolve();
            else feed(w);
          } else {
            const e = codedError(ERROR_CODES.DEMO, `demo job ${m.id} (seed ${jobs[m.id].seed}, ε ${jobs[m.id].eps}) failed: ${m.message}`);
            if (m.stack) e.stack = m.stack;
            fail(e);
          }
        });
        w.on('error', fail);
        w.on('exit', (code) => {
          if (pending > 0) fail(codedError(ERROR_CODES.DEMO, `a demo worker exited with code ${code} before its jobs were done`));
        });
        feed(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
