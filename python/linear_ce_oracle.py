#!/usr/bin/python3
"""The oracle for test/linear-cross-entropy.test.ts (and bench/linear-ce.js's accuracy check):
reads {"cases": [...]} as JSON on stdin, computes each case as PyTorch's reference
    F.cross_entropy(F.linear(x, W, b), target, weight=, ignore_index=, reduction=, label_smoothing=)
with autograd's gradients, in float64 from the given values, and writes {"results": [...]}.

A case: {"x": [...], "x_shape": [N, H] | [H], "w": [...], "C": C, "b": [...] | null,
         "target": [...], "target_shape": [...], "prob": bool, "weight": [...] | null,
         "ignore_index": int, "reduction": "mean"|"sum"|"none", "eps": float,
         "grad_output": number | [...] | null}
A result: {"loss": [...], "gx": [...], "gw": [...], "gb": [...] | null} (NaN/inf as strings), or {"error": "..."}.
"""

import json
import math
import sys

import torch
import torch.nn.functional as F


def enc(t):
    out = []
    for v in t.detach().reshape(-1).tolist():
        out.append(v if math.isfinite(v) else str(v))
    return out


def run(c):
    dt = torch.float64
    x = torch.tensor(c["x"], dtype=dt).reshape(c["x_shape"]).requires_grad_(True)
    H = c["x_shape"][-1]
    w = torch.tensor(c["w"], dtype=dt).reshape(c["C"], H).requires_grad_(True)
    b = None
    if c.get("b") is not None:
        b = torch.tensor(c["b"], dtype=dt).requires_grad_(True)
    if c["prob"]:
        t = torch.tensor(c["target"], dtype=dt).reshape(c["target_shape"])
    else:
        t = torch.tensor(c["target"], dtype=torch.int64).reshape(c["target_shape"])
    cw = None if c.get("weight") is None else torch.tensor(c["weight"], dtype=dt)
    logits = F.linear(x, w, b)
    loss = F.cross_entropy(logits, t, weight=cw, ignore_index=c["ignore_index"], reduction=c["reduction"],
                           label_smoothing=c["eps"])
    g = c.get("grad_output")
    if g is None:
        g = torch.ones_like(loss)
    elif isinstance(g, list):
        g = torch.tensor(g, dtype=dt).reshape(loss.shape)
    else:
        g = torch.full_like(loss, float(g))
    loss.backward(g)
    return {"loss": enc(loss), "gx": enc(x.grad), "gw": enc(w.grad), "gb": None if b is None else enc(b.grad)}


def main():
    torch.set_num_threads(1)
    req = json.load(sys.stdin)
    results = []
    for c in req["cases"]:
        try:
            results.append(run(c))
        except Exception as e:  # noqa: BLE001
            results.append({"error": f"{type(e).__name__}: {e}"})
    json.dump({"torch": torch.__version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
