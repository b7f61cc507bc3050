#!/usr/bin/python3
"""The live oracle for test/oracle.test.ts: reads a smoothce-cases document on stdin whose
cases have no "expected", computes each with this torch, writes the completed document
(a valid case file) on stdout.

int32 class-index targets (which smoothce accepts and PyTorch rejects) are computed with
target.long(), as smoothce does. Errors torch raises are recorded as error cases.

    /usr/bin/python3 python/oracle_batch.py < request.json > cases.json
"""

from __future__ import annotations

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smoothce_parity as sp  # noqa: E402


def main() -> int:
    torch.set_num_threads(int(os.environ.get("SMOOTHCE_ORACLE_THREADS", "1")))
    request = json.load(sys.stdin)
    if request.get("format") != sp.FORMAT:
        print(f"oracle_batch.py: expected a {sp.FORMAT} document on stdin", file=sys.stderr)
        return 2
    out = []
    for raw in request["cases"]:
        x = sp.decode_tensor(raw["input"])
        t = sp.decode_tensor(raw["target"])
        w = sp.decode_tensor(raw.get("weight"))
        g = sp.decode_tensor(raw.get("grad_output"))
        o = raw.get("options", {})
        compute_target = t.long() if t.dtype == torch.int32 and list(t.shape) != list(x.shape) else None
        case = sp.make_case(
            x,
            t,
            w,
            o.get("reduction", "mean"),
            int(sp.decode_number(o.get("ignore_index", -100))),
            float(sp.decode_number(o.get("label_smoothing", 0.0))),
            None if g is None else (g if g.dim() > 0 else float(g.item())),
            name=raw.get("name"),
            grad=raw.get("grad", True),
            compute_target=compute_target,
        )
        out.append(case)
    doc = {
        "format": sp.FORMAT,
        "version": sp.VERSION,
        "torch": torch.__version__,
        "generator": "python/oracle_batch.py",
        "cases": out,
    }
    json.dump(doc, sys.stdout, allow_nan=False, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
