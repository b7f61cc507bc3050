"""One PyTorch measurement for bench/run.js, timed inside Python.

argv[1]: JSON {n, c, threads, reps, eps, seed}. Prints one JSON line:
{fwd: [seconds...], fwdGrad: [...], fwdInference: [...], rssBaseMB, peakFwdMB, peakGradMB} where
peak* are ru_maxrss above the RSS measured after the inputs were created (MB).

fwd is PyTorch's fastest idiomatic forward: a plain `F.cross_entropy(x, t, label_smoothing=eps).item()`
on an input that does not require grad (so autograd records nothing), with no per-call context
manager. fwdInference is the same call entered through `with torch.inference_mode():` on every
call, reported beside it, never instead of it.
The glibc allocator settings (MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_) come from
the environment the parent sets.
"""
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg['threads'])
    n, c, reps, eps = cfg['n'], cfg['c'], cfg['reps'], cfg['eps']
    rng = np.random.default_rng(cfg['seed'])
    x = torch.from_numpy(rng.standard_normal((n, c), dtype=np.float32) * 4)
    t = torch.from_numpy(rng.integers(0, c, size=n, dtype=np.int64))
    base = rss_mb()

    assert not x.requires_grad

    def fwd():
        return F.cross_entropy(x, t, label_smoothing=eps).item()

    def fwd_inference():
        with torch.inference_mode():
            return F.cross_entropy(x, t, label_smoothing=eps).item()

    def fwd_grad():
        xl = x.detach().requires_grad_(True)
        loss = F.cross_entropy(xl, t, label_smoothing=eps)
        loss.backward()
        return loss.item(), xl.grad

    # Small calls: a sample is a batch of back-to-back calls, reported per call (as in node_case.js).
    batch = max(1, min(1000, int(1e6 // (n * c))))
    out = {'rssBaseMB': base, 'batch': batch}
    for name, fn in (('fwd', fwd), ('fwdGrad', fwd_grad), ('fwdInference', fwd_inference)):
        # Warm-up in whole batches, as bench/node_case.js does (2 lone calls left the first
        # timed batches of a small size paying for cold caches).
        for _ in range(cfg.get('warmup', 2) * batch):
            fn()
        times = []
        for _ in range(reps):
            s = time.perf_counter()
            for _ in range(batch):
                r = fn()
            times.append((time.perf_counter() - s) / batch)
            del r
        out[name] = times
        if name != 'fwdInference':
            out['peakFwdMB' if name == 'fwd' else 'peakGradMB'] = maxrss_mb() - base
    print(json.dumps(out))


if __name__ == '__main__':
    main()
