/**
 * A synchronous loop of large calls that never yields to the event loop. Large results
 * are external ArrayBuffers whose N-API finalizers Node 20 runs from the event loop, so
 * without a bound every result of such a loop stays in memory until it ends (30 calls of a
 * 1024×32000 gradient reached 4 GB). binding/allocator.h caps the bytes of unfinalized
 * external results (SMOOTHCE_EXTERNAL_CAP_MB) and falls back to V8-owned buffers, which
 * the GC frees by itself. Child processes, so each peak RSS is one loop's.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');

// 40 calls, each with a 32 MB gradient (1024×8000 float32): 1.28 GB if nothing is freed.
const SCRIPT = `
const sc = require(${JSON.stringify(root)});
const impl = process.argv[1];
const n = 1024, c = Number(process.argv[2]);
const input = sc.tensor(new Float32Array(n * c).fill(0.5), [n, c]);
const target = sc.tensor(new BigInt64Array(n), [n]);
const base = process.memoryUsage.rss();
let peak = 0, ok = true;
for (let i = 0; i < 40; i++) {
  const r = sc.crossEntropy(input, target, { impl, grad: true, labelSmoothing: 0.1 });
  // uniform logits, target 0: d loss / d x[0, 1] = (1/c − ε/c) / n
  ok = ok && r.grad.data.length === n * c && Math.abs(r.grad.data[1] - 0.9 / c / n) < 1e-9;
  peak = Math.max(peak, process.memoryUsage.rss() - base);
}
process.stdout.write(JSON.stringify({ peakMB: peak / 2 ** 20, ok }));
`;

/** capMB undefined: the default rule (SMOOTHCE_EXTERNAL_CAP_MB unset). c: classes (gradient = 4 KiB × c). */
function loop(impl: string, capMB: number | undefined, c = 8000): { peakMB: number; ok: boolean } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (capMB === undefined) delete env.SMOOTHCE_EXTERNAL_CAP_MB;
  else env.SMOOTHCE_EXTERNAL_CAP_MB = String(capMB);
  const r = spawnSync(process.execPath, ['-e', SCRIPT, impl, String(c)], {
    cwd: root,
    encoding: 'utf8',
    env,
    timeout: 120_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('a synchronous loop of large calls', () => {
  it.each(['fused', 'aten'])('keeps memory bounded by the external-buffer cap (%s)', (impl) => {
    const unbounded = loop(impl, 1_000_000);
    const capped = loop(impl, 64);
    expect(unbounded.ok && capped.ok).toBe(true);
    // Without the cap every gradient stays until the loop ends.
    expect(unbounded.peakMB).toBeGreaterThan(1000);
    expect(capped.peakMB).toBeLessThan(unbounded.peakMB * 0.6);
  });

  // By default the cap follows the size asked for: four buffers (as many as the huge-page
  // cache takes back), at least 64 MiB, at most 512 MiB. 16 MB gradients: 64 MiB of them.
  it('by default holds no more unfinalized buffers of one size than the cache can take back', () => {
    const flat = loop('fused', 512, 4000);
    const auto = loop('fused', undefined, 4000);
    expect(flat.ok && auto.ok).toBe(true);
    expect(flat.peakMB).toBeGreaterThan(400); // 512 MiB of 16 MB gradients wait for the event loop
    expect(auto.peakMB).toBeLessThan(flat.peakMB * 0.6);
  });
});
