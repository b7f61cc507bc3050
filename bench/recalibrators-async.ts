/**
 * The event loop while fitCalibratorAsync and applyAsync run: the longest gap between
 * ticks of a 1 ms interval timer, per method, on N rows of K-class logits.
 *
 *   npm run bench:recalibrators-async                    (--rows 100000 --classes 10)
 *
 * The gap includes any time the OS does not schedule the process: on a loaded machine it
 * measures the machine, not the slicing (the slices are about 8 ms of arithmetic each).
 */
import { calibration, tensor } from '../lib/index';
import { arg } from './args';

const N = arg('rows', 100_000);
const K = arg('classes', 10);
const z = Float64Array.from({ length: N * K }, (_, i) => 3 * Math.sin(i * 0.37) + (i % K === ((i / K) | 0) % K ? 2 : 0));
const y = Int32Array.from({ length: N }, (_, i) => (i % 5 === 0 ? (i + 3) % K : i % K));

async function main(): Promise<void> {
  console.log(`N = ${N}, K = ${K}`);
  for (const method of calibration.RECALIBRATION_METHODS) {
    let last = performance.now();
    let worst = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 1);
    const t0 = performance.now();
    const c = await calibration.fitCalibratorAsync(tensor(z, [N, K]), tensor(y, [N]), { method, from: 'logits' });
    const t1 = performance.now();
    await c.applyAsync(tensor(z, [N, K]));
    clearInterval(timer);
    console.log(
      `${method.padEnd(12)} fit ${((t1 - t0) / 1000).toFixed(2)} s (${c.fit.iterations} iterations, converged ${c.fit.converged}), ` +
        `apply ${((performance.now() - t1) / 1000).toFixed(2)} s, longest event-loop gap ${worst.toFixed(1)} ms`,
    );
  }
}
void main();
