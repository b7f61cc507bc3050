/**
 * A worker_threads entry for the demo's jobs (see pool.ts): runs each JobSpec it is sent
 * with runJob and posts the result back, with a message after every epoch for the progress
 * bar. The numbers do not depend on which thread runs a job.
 */
import { parentPort } from 'node:worker_threads';
import { runJob, type JobSpec } from './experiment';

export interface JobRequest {
  id: number;
  spec: JobSpec;
}

export type JobMessage =
  | { type: 'epoch'; id: number; epoch: number }
  | { type: 'done'; id: number; result: ReturnType<typeof runJob> }
  | { type: 'error'; id: number; message: string; stack?: string };

if (parentPort) {
  const port = parentPort;
  // The binary regime smooths two classes on purpose (its note says what that does): keep
  // crossEntropy's once-per-thread warning about it out of the progress output; print the rest.
  process.removeAllListeners('warning');
  process.on('warning', (w: Error & { code?: string }) => {
    if (w.code !== 'SMOOTHCE_BINARY_SMOOTHING') process.stderr.write(`${w.name}: ${w.message}\n`);
  });
  port.on('message', (req: JobRequest) => {
    try {
      const result = runJob(req.spec, (info) => port.postMessage({ type: 'epoch', id: req.id, epoch: info.epoch } satisfies JobMessage));
      port.postMessage({ type: 'done', id: req.id, result } satisfies JobMessage);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const stack = err instanceof Error ? err.stack : undefined;
      port.postMessage({ type: 'error', id: req.id, message, stack } satisfies JobMessage);
    }
  });
}
