#!/usr/bin/env python3
"""
Reference SmoothECE for test/smooth-ece.test.ts: the computation of Apple's relplot 1.0.3
`smECE(f, y, return_width=True)` with its defaults, written independently with numpy only
(relplot itself needs scipy/matplotlib/seaborn, which the test machine's python lacks).

relplot 1.0.3 defaults reproduced here (apple/ml-calibration, src/relplot/metrics.py and
kernels.py at 18ff21a):
  * kernel: reflected Gaussian, sampled at G nodes linspace(0, 1, G) centred on 0.5, divided
    by sigma*sqrt(2*pi) (no renormalisation), the grid reflected once about each end;
  * grid: G = max(2000, round(20/sigma)) // 2 + 1 nodes; samples "smooth-rounded" (linear
    split between the two nearest nodes, node index clipped to [0, G-2]);
  * evaluation mesh: linspace(0, 1, max(round(10/sigma), 200)), linear interpolation;
  * density offset 1e-4; smECE_sigma = sum(|r/d| * d) / sum(d);
  * bandwidth search: sigma = 1 if 1 >= smECE_1, else 10 bisection steps on [0, 1] for the
    smallest sigma with sigma >= smECE_sigma, sigma < 0.001 counting as too small; the upper
    end is returned.

Input: JSON on stdin, {"cases": [{"f": [...], "y": [...]}, ...]} (f confidences, y 0/1) or
{"cases": [{"logits": [[...]], "labels": [...]}]} (confidence = max softmax, y = argmax == label,
float64, as relplot.multiclass_logits_to_confidences). Output: JSON list of
{"value": smECE, "bandwidth": sigma}.
"""
import json
import sys

import numpy as np


def grid_nodes(sigma):
    return max(2000, round(20 / sigma)) // 2 + 1


def mesh_points(sigma):
    return max(round(10 / sigma), 200)


def round_to_grid(f, values, nodes):
    out = np.zeros(nodes)
    pos = f * (nodes - 1)
    lower = pos.astype(np.int64).clip(0, nodes - 2)
    frac = pos - lower
    np.add.at(out, lower, (1 - frac) * values)
    np.add.at(out, lower + 1, frac * values)
    return out


def gaussian_taps(nodes, sigma):
    t = np.linspace(0, 1, nodes)
    taps = np.exp(-(t - 0.5) * (t - 0.5) / (2 * sigma ** 2))
    return taps / (np.sqrt(2 * np.pi) * sigma)


def reflected_smooth(values, sigma):
    nodes = len(values)
    taps = gaussian_taps(nodes, sigma)
    mirrored = values[::-1]
    extended = np.concatenate([mirrored[:-1], values, mirrored[1:]])
    full = np.convolve(extended, taps, mode="valid")
    return full[nodes // 2: nodes // 2 + nodes]


def read_at(points, node_values):
    nodes = len(node_values)
    width = 1 / (nodes - 1)
    i = (points * (nodes - 1)).astype(np.int64).clip(0, nodes - 2)
    w = (points - i * width) / width
    return node_values[i] * (1 - w) + node_values[i + 1] * w


def smece_at(f, y, sigma):
    nodes = grid_nodes(sigma)
    mesh = np.linspace(0, 1, mesh_points(sigma))
    residual = read_at(mesh, reflected_smooth(round_to_grid(f, f - y, nodes), sigma))
    density = read_at(mesh, reflected_smooth(round_to_grid(f, np.ones_like(f), nodes), sigma)) + 1e-4
    r = residual / density
    return np.sum(np.abs(r) * density) / np.sum(density)


def smece(f, y):
    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)

    def too_small(s):
        return s < 0.001 or s < smece_at(f, y, s)

    hi = 1.0
    if not too_small(hi):
        lo = 0.0
        for _ in range(10):
            mid = (hi + lo) / 2
            if too_small(mid):
                lo = mid
            else:
                hi = mid
    return smece_at(f, y, hi), hi


def confidences(logits, labels):
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=-1, keepdims=True)
    return p.max(axis=-1), (p.argmax(axis=-1) == np.asarray(labels)) * 1.0


def main():
    cases = json.load(sys.stdin)["cases"]
    out = []
    for c in cases:
        if "logits" in c:
            f, y = confidences(c["logits"], c["labels"])
        else:
            f, y = np.asarray(c["f"], dtype=np.float64), np.asarray(c["y"], dtype=np.float64)
        value, width = smece(f, y)
        out.append({"value": float(value), "bandwidth": float(width)})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
