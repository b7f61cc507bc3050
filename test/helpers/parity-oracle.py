"""Writes a small case file with PyTorch (the oracle) for smoothce's parity tests.

Independent of python/ (the project's capture module): it only needs torch and numpy.
Usage: /usr/bin/python3 test/helpers/parity-oracle.py OUT.json [--npy]
  --npy  store tensors with more than 16 elements as .npy files next to OUT.json
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

NPY = "--npy" in sys.argv
OUT = sys.argv[1]
DATA_DIR = os.path.splitext(OUT)[0] + ".arrays"
NAMES = {torch.float32: "float32", torch.float64: "float64", torch.bfloat16: "bfloat16",
         torch.float16: "float16", torch.int64: "int64", torch.int32: "int32", torch.uint8: "uint8"}


def num(v):
    if isinstance(v, int) and abs(v) > 2**53:
        return str(v)  # int64 beyond 2^53 as a decimal string, as the format says
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
    return v


def tensor(t, key):
    t = t.detach()
    dtype = NAMES[t.dtype]
    arr = (t.float() if dtype in ("bfloat16", "float16") else t).contiguous().numpy()
    out = {"dtype": dtype, "shape": list(t.shape)}
    if NPY and t.numel() > 16:
        os.makedirs(DATA_DIR, exist_ok=True)
        path = os.path.join(DATA_DIR, key + ".npy")
        np.save(path, arr)
        out["npy"] = os.path.relpath(path, os.path.dirname(os.path.abspath(OUT)))
    else:
        out["data"] = [num(v) for v in arr.reshape(-1).tolist()]
    return out


cases = []


def case(name, x, y, weight=None, reduction="mean", ignore_index=-100, eps=0.0, grad=True, grad_output=None,
         deviation=None):
    c = {"name": name, "input": tensor(x, name + ".input"), "target": tensor(y, name + ".target"),
         "weight": None if weight is None else tensor(weight, name + ".weight"),
         "options": {"reduction": reduction, "ignore_index": ignore_index if abs(ignore_index) < 2**53 else str(ignore_index),
                     "label_smoothing": num(float(eps))},
         "grad_output": None}
    try:
        leaf = x.detach().clone().requires_grad_(grad)
        loss = F.cross_entropy(leaf, y, weight=weight, reduction=reduction, ignore_index=ignore_index,
                               label_smoothing=eps)
        gin = None
        if grad:
            go = torch.ones_like(loss) if grad_output is None else grad_output
            if grad_output is not None:
                c["grad_output"] = tensor(grad_output, name + ".grad_output") if torch.is_tensor(grad_output) else grad_output
                go = grad_output if torch.is_tensor(grad_output) else torch.full_like(loss, grad_output)
            loss.backward(go)
            gin = tensor(leaf.grad, name + ".grad_input")
        c["expected"] = {"loss": tensor(loss, name + ".loss"), "grad_input": gin}
    except Exception as e:  # PyTorch rejects it
        msg = str(e).split("\nException raised from")[0]
        c["expected"] = {"error": {"type": type(e).__name__, "message": msg}}
    if deviation:
        c["deviation"] = deviation
    cases.append(c)


g = torch.Generator().manual_seed(1234)
r = lambda *s, dtype=torch.float32: (torch.randn(*s, generator=g, dtype=torch.float64) * 2).to(dtype)
ri = lambda hi, *s: torch.randint(0, hi, s, generator=g)

case("f32_mean_eps0.1", r(4, 5), ri(5, 4), eps=0.1)
case("f64_kdim_sum_weight_ignore", r(2, 3, 4, dtype=torch.float64), torch.tensor([[0, 1, 2, 1], [1, 1, 0, 2]]),
     weight=torch.tensor([0.5, 2.0, 1.5], dtype=torch.float64), reduction="sum", ignore_index=1, eps=0.2)
case("f32_none_grad_output", r(3, 4), ri(4, 3), reduction="none", eps=0.05, grad_output=torch.tensor([1.0, -2.0, 0.5]))
case("f32_prob_mean_weight", r(3, 4), torch.softmax(r(3, 4), 1), weight=torch.tensor([1.0, 2.0, 0.5, 1.0]), eps=0.3)
case("bf16_mean_eps0.1", r(8, 10, dtype=torch.bfloat16), ri(10, 8), eps=0.1)
case("bf16_kdim_none", r(2, 4, 3, dtype=torch.bfloat16), ri(4, 2, 3), reduction="none", eps=0.2)
case("f32_empty_mean", r(0, 3), ri(3, 0), eps=0.1)
case("f32_all_ignored_mean", r(2, 3), torch.tensor([-100, -100]), eps=0.1)
x = r(2, 3)
x[0, 2] = -math.inf
case("f32_neg_inf_nontarget_eps", x, torch.tensor([0, 1]), eps=0.1)
case("f32_uint8_target", r(3, 4), torch.tensor([3, 0, 2], dtype=torch.uint8), eps=0.1, reduction="sum")
case("f64_1d_input", r(5, dtype=torch.float64), torch.tensor(2), eps=0.25)
case("f64_big_ignore_index", r(3, 3, dtype=torch.float64), torch.tensor([0, 2**62, 1]), ignore_index=2**62, eps=0.1)
case("err_target_oob", r(2, 3), torch.tensor([0, 3]), eps=0.1)
case("err_input_half", r(2, 3, dtype=torch.float16), torch.tensor([0, 1]), eps=0.1)
case("dev_negative_eps", r(2, 3), torch.tensor([0, 1]), eps=-0.1,
     deviation="smoothce rejects label_smoothing < 0 (PyTorch treats it as 0)")
case("f32_larger", r(6, 7), ri(7, 6), eps=0.1)

with open(OUT, "w") as f:
    json.dump({"format": "smoothce-cases", "version": 1, "torch": torch.__version__, "cases": cases}, f)
print(len(cases))
