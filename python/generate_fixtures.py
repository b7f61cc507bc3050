#!/usr/bin/python3
"""Generates smoothce's committed golden fixtures, one file per torch version:
test/fixtures/cases.json for torch 1.13, test/fixtures/cases-<major>.<minor>.json for others
(cases-2.6.json: Debian trixie's torch 2.6, written inside scripts/torch2.sh's chroot). The
tests replay the file of the linked LibTorch's version (test/helpers/fixtures.ts).

Run with the Python that has torch (the oracle): ``npm run fixtures`` or
``/usr/bin/python3 python/generate_fixtures.py [out.json]``. The seed is fixed, so a rerun
with the same torch gives the same file. Every branch of
../shared/spec/pytorch-cross-entropy.md that smoothce's API can express has a case here:
reductions, weights, ignore_index, probability targets, k-dim and 1-D inputs, empty
batches, C=1, C=2, non-finite logits, grad_output, uint8/int32 targets, bfloat16 input,
PyTorch's errors (table E1..E26), and the deliberate deviations of smoothce.
"""

from __future__ import annotations

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smoothce_parity as sp  # noqa: E402

SEED = 20240611
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MAJOR_MINOR = ".".join(torch.__version__.split("+")[0].split(".")[:2])
DEFAULT_OUT = os.path.join(
    ROOT, "test", "fixtures", "cases.json" if _MAJOR_MINOR == "1.13" else f"cases-{_MAJOR_MINOR}.json"
)

INF = math.inf
NAN = math.nan
INT32_NOTE = "int32 targets: smoothce accepts them (converted to int64), PyTorch requires int64; expected values computed by torch with target.long()"


def main(out_path: str) -> None:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    cases = []

    def add(name, x, t, **kw):
        if any(c["name"] == name for c in cases):
            raise SystemExit(f"duplicate case name {name}")
        cases.append(sp.make_case(x, t, name=name, **kw))

    def logits(*shape, dtype=torch.float32, scale=2.0):
        return (torch.randn(*shape, dtype=torch.float64) * scale).to(dtype)

    def idx(high, *shape):
        return torch.randint(0, high, shape, dtype=torch.int64)

    def probs(*shape, dim=1, dtype=torch.float32):
        return torch.softmax(torch.randn(*shape, dtype=torch.float64), dim=dim).to(dtype)

    f32, f64, bf16 = torch.float32, torch.float64, torch.bfloat16

    # ---- class-index targets, every reduction and ε (§1.1) ----------------------------
    x = logits(4, 5)
    t = torch.tensor([0, 3, 1, 4])
    for red in ("mean", "sum", "none"):
        for eps in (0.0, 0.1, 1.0):
            add(f"index_f32_{red}_eps{eps}", x, t, reduction=red, label_smoothing=eps)
    x64 = logits(6, 7, dtype=f64)
    t64 = idx(7, 6)
    for red in ("mean", "sum", "none"):
        add(f"index_f64_{red}_eps0.25", x64, t64, reduction=red, label_smoothing=0.25)
    add("index_f64_mean_eps0", x64, t64)
    # A bigger batch (cascade sums, many rows), float32 and float64.
    add("index_f32_64x10_mean_eps0.1", logits(64, 10, scale=3.0), idx(10, 64), label_smoothing=0.1)
    add("index_f64_48x9_sum_eps0.05", logits(48, 9, dtype=f64, scale=3.0), idx(9, 48), reduction="sum", label_smoothing=0.05)

    # ---- weights: the weighted-mean denominator Σ w[y_n] (§1.1) -------------------------
    w5 = torch.tensor([0.5, 2.0, 1.0, 0.25, 3.0])
    for red in ("mean", "sum", "none"):
        add(f"weight_f32_{red}_eps0.2", x, t, weight=w5, reduction=red, label_smoothing=0.2)
    w7 = torch.rand(7, dtype=f64) * 2 + 0.1
    add("weight_f64_mean_eps0", x64, t64, weight=w7)
    add("weight_f64_mean_eps0.3", x64, t64, weight=w7, label_smoothing=0.3)
    # Zero weights: some target classes weigh 0 (finite); all target classes weigh 0 (D = 0 → NaN loss and grad).
    wz = torch.tensor([0.0, 1.0, 0.0, 2.0, 1.0])
    add("weight_zero_partial_mean_eps0.1", x, t, weight=wz, label_smoothing=0.1)
    t_zero = torch.tensor([0, 2, 0, 2])
    add("weight_zero_all_targets_mean_nan", x, t_zero, weight=wz, label_smoothing=0.1)
    add("weight_zero_all_targets_sum", x, t_zero, weight=wz, reduction="sum", label_smoothing=0.1)
    add("weight_zero_all_targets_mean_eps0_nan", x, t_zero, weight=wz)
    # Negative weights: D < 0, and D = 0 with non-zero terms (±inf / NaN).
    wn = torch.tensor([1.0, -1.0, 0.5, -2.0, 1.5])
    add("weight_negative_mean_eps0.1", x, t, weight=wn, label_smoothing=0.1)
    add("weight_negative_none_eps0.1", x, t, weight=wn, reduction="none", label_smoothing=0.1)
    add("weight_negative_denominator_zero_mean", x, torch.tensor([0, 1, 0, 1]), weight=wn, label_smoothing=0.1)

    # ---- ignore_index (§1.1, §1.3) ------------------------------------------------------
    t_ign = torch.tensor([0, -100, 4, -100])
    for red in ("mean", "sum", "none"):
        add(f"ignore_default_{red}_weight_eps0.1", x, t_ign, weight=w5, reduction=red, label_smoothing=0.1)
    # Inside [0, C): class 2 is ignored as a target.
    t_in = torch.tensor([2, 3, 2, 1, 0, 2])
    x6 = logits(6, 5)
    add("ignore_inside_class2_mean_eps0.1", x6, t_in, ignore_index=2, label_smoothing=0.1)
    add("ignore_inside_class2_mean_weight_eps0.3", x6, t_in, weight=w5, ignore_index=2, label_smoothing=0.3)
    add("ignore_inside_class2_none_weight", x6, t_in, weight=w5, ignore_index=2, reduction="none")
    add("ignore_inside_class0_sum_eps1", x6, torch.tensor([0, 1, 0, 4, 3, 0]), ignore_index=0, reduction="sum", label_smoothing=1.0)
    # Outside [0, C): only compared for equality.
    add("ignore_outside_7_mean_eps0.1", x6, torch.tensor([7, 1, 7, 4, 3, 0]), ignore_index=7, label_smoothing=0.1)
    add("ignore_minus1_mean_weight_eps0.2", x6, torch.tensor([-1, 1, 2, -1, 3, 0]), weight=w5, ignore_index=-1, label_smoothing=0.2)
    big = 2**62
    add("ignore_2pow62_int64_string_mean_eps0.1", x6, torch.tensor([big, 1, 2, big, 3, 0]), ignore_index=big, label_smoothing=0.1)
    # All positions ignored: mean NaN with zero gradient, sum 0, none zeros.
    t_all = torch.full((4,), -100, dtype=torch.int64)
    for red in ("mean", "sum", "none"):
        add(f"all_ignored_{red}_weight_eps0.1", x, t_all, weight=w5, reduction=red, label_smoothing=0.1)
    add("all_ignored_mean_eps0", x, t_all)

    # ---- k-dim inputs (N, C, d1..dk) --------------------------------------------------
    add("kdim1_f32_mean_eps0.1", logits(3, 4, 5), idx(4, 3, 5), label_smoothing=0.1)
    add("kdim1_f64_none_weight_eps0.2", logits(2, 3, 4, dtype=f64), idx(3, 2, 4), weight=torch.tensor([1.0, 0.5, 2.0], dtype=f64), reduction="none", label_smoothing=0.2)
    t_k2 = idx(4, 2, 3, 2)
    t_k2[0, 1, 0] = -100
    t_k2[1, 2, 1] = -100
    add("kdim2_f32_mean_weight_ignore_eps0.1", logits(2, 4, 3, 2), t_k2, weight=torch.tensor([1.0, 2.0, 0.5, 1.5]), label_smoothing=0.1)
    add("kdim2_f64_sum_eps0.4", logits(2, 4, 3, 2, dtype=f64), idx(4, 2, 3, 2), reduction="sum", label_smoothing=0.4)
    t_k3 = idx(3, 2, 2, 2, 3)
    t_k3[1, 0, 1, 2] = 1
    add("kdim3_f32_sum_ignore_inside1_eps0.1", logits(2, 3, 2, 2, 3), t_k3, ignore_index=1, reduction="sum", label_smoothing=0.1)
    add("kdim3_f64_mean_eps1", logits(1, 3, 2, 1, 2, dtype=f64), idx(3, 1, 2, 1, 2), label_smoothing=1.0)
    add("kdim3_f64_none_weight", logits(1, 3, 2, 2, 2, dtype=f64), idx(3, 1, 2, 2, 2), weight=torch.tensor([0.2, 1.0, 3.0], dtype=f64), reduction="none")

    # ---- 1-D input (C) + 0-d target ----------------------------------------------------
    x1 = logits(5)
    for red in ("mean", "sum", "none"):
        add(f"input1d_{red}_eps0.1", x1, torch.tensor(3), reduction=red, label_smoothing=0.1)
    add("input1d_weight_mean_eps0.2", x1, torch.tensor(1), weight=w5, label_smoothing=0.2)
    add("input1d_ignored_mean_nan", x1, torch.tensor(-100), label_smoothing=0.1)
    add("input1d_ignored_none", x1, torch.tensor(-100), reduction="none", label_smoothing=0.1)

    # ---- empty batches, C = 1, C = 2 (§1.3) --------------------------------------------
    e = torch.empty(0, 4)
    et = torch.empty(0, dtype=torch.int64)
    for red in ("mean", "sum", "none"):
        add(f"empty_batch_{red}_eps0.1", e, et, reduction=red, label_smoothing=0.1)
    add("empty_kdim_mean", torch.empty(2, 3, 0), torch.empty(2, 0, dtype=torch.int64))
    add("empty_kdim_none_weight", torch.empty(2, 3, 0), torch.empty(2, 0, dtype=torch.int64), weight=torch.tensor([1.0, 2.0, 3.0]), reduction="none")
    add("c1_mean_eps0.1", logits(4, 1), torch.zeros(4, dtype=torch.int64), label_smoothing=0.1)
    add("c1_none", logits(3, 1, dtype=f64), torch.zeros(3, dtype=torch.int64), reduction="none")
    add("c2_binary_mean_eps0.1", logits(6, 2), idx(2, 6), label_smoothing=0.1)
    add("c2_binary_sum_weight_eps0.2", logits(6, 2, dtype=f64), idx(2, 6), weight=torch.tensor([1.0, 3.0], dtype=f64), reduction="sum", label_smoothing=0.2)

    # ---- non-finite logits (§1.3) ------------------------------------------------------
    xn = logits(3, 4)
    xn[0, 2] = -INF  # non-target class of row 0 (target 0)
    tn = torch.tensor([0, 1, 3])
    add("neginf_nontarget_mean_eps0_finite", xn, tn)
    add("neginf_nontarget_none_eps0.1_inf", xn, tn, reduction="none", label_smoothing=0.1)
    add("neginf_nontarget_mean_eps0.1_inf", xn, tn, label_smoothing=0.1)
    xt = logits(3, 4)
    xt[1, 1] = -INF  # the target class of row 1
    add("neginf_target_none_eps0.1_inf", xt, tn, reduction="none", label_smoothing=0.1)
    add("neginf_target_none_eps0_inf", xt, tn, reduction="none")
    add("neginf_target_none_eps1_nan", xt, tn, reduction="none", label_smoothing=1.0)
    xp = logits(3, 4)
    xp[2, 0] = INF
    add("posinf_logit_none_eps0.1_nan", xp, tn, reduction="none", label_smoothing=0.1)
    xq = logits(3, 4)
    xq[0, 3] = NAN
    add("nan_logit_mean_eps0.1_nan", xq, tn, label_smoothing=0.1)
    add("nan_logit_none_eps0_nan", xq, tn, reduction="none")
    # Ignored rows: NaN/+inf give loss 0 but grad NaN; -inf gives grad 0.
    xi = logits(3, 4)
    xi[0, 1] = NAN
    xi[1, 2] = INF
    xi[2, 0] = -INF
    add("nonfinite_in_ignored_rows_none_eps0.1", xi, torch.tensor([-100, -100, -100]), reduction="none", label_smoothing=0.1)
    xj = logits(3, 4)
    xj[0, 2] = -INF
    add("neginf_in_ignored_row_sum_eps0.1", xj, torch.tensor([-100, 1, 3]), reduction="sum", label_smoothing=0.1)

    # ---- probability targets (§1.2) ----------------------------------------------------
    xpr = logits(4, 5)
    tp = probs(4, 5)
    for red in ("mean", "sum", "none"):
        add(f"prob_f32_{red}_eps0.1", xpr, tp, reduction=red, label_smoothing=0.1)
    add("prob_f32_mean_eps0", xpr, tp)
    add("prob_f32_mean_eps1", xpr, tp, label_smoothing=1.0)
    add("prob_weight_mean_eps0.2_denominator_M", xpr, tp, weight=w5, label_smoothing=0.2)
    add("prob_weight_none", xpr, tp, weight=w5, reduction="none")
    add("prob_f64_kdim2_mean_weight_eps0.1", logits(2, 3, 2, 2, dtype=f64), probs(2, 3, 2, 2, dtype=f64), weight=torch.tensor([1.0, 0.5, 2.0], dtype=f64), label_smoothing=0.1)
    add("prob_kdim1_none_eps0.3", logits(2, 3, 4), probs(2, 3, 4), reduction="none", label_smoothing=0.3)
    add("prob_nonnormalised_rows_sum_eps0.1", xpr, torch.rand(4, 5) * 3 - 0.5, reduction="sum", label_smoothing=0.1)
    add("prob_f32_input_f64_target_promotes_mean_eps0.1", xpr, tp.double(), label_smoothing=0.1)
    add("prob_f32_input_f64_target_weight_none", xpr, tp.double(), weight=w5, reduction="none")
    add("prob_input1d_mean_eps0.1", x1, probs(5, dim=0), label_smoothing=0.1)
    add("prob_ignore_negative_accepted_mean", xpr, tp, ignore_index=-1, label_smoothing=0.1)
    xpi = logits(2, 3)
    xpi[0, 1] = -INF
    onehot = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    add("prob_neginf_zero_target_none_eps0_nan", xpi, onehot, reduction="none")
    add("prob_neginf_zero_target_none_eps0.1_inf", xpi, onehot, reduction="none", label_smoothing=0.1)
    add("prob_onehot_equals_index_mean", xpr, torch.eye(5)[torch.tensor([0, 3, 1, 4])], label_smoothing=0.1)
    add("prob_empty_sum_negzero", torch.empty(0, 3), torch.empty(0, 3), reduction="sum")
    add("prob_empty_mean_nan", torch.empty(0, 3), torch.empty(0, 3))
    add("prob_c0_mean_nan", torch.empty(2, 0), torch.empty(2, 0))

    # ---- upstream gradients ------------------------------------------------------------
    add("grad_output_mean_number", x, t, label_smoothing=0.1, grad_output=2.5)
    add("grad_output_sum_negative_number", x64, t64, weight=w7, reduction="sum", label_smoothing=0.2, grad_output=-0.75)
    add("grad_output_none_tensor", x, t_ign, weight=w5, reduction="none", label_smoothing=0.1, grad_output=torch.randn(4))
    add("grad_output_none_number", x, t, reduction="none", label_smoothing=0.1, grad_output=3.0)
    add("grad_output_kdim_none_tensor_f64", logits(2, 3, 4, dtype=f64), idx(3, 2, 4), reduction="none", label_smoothing=0.2, grad_output=torch.randn(2, 4, dtype=f64))
    add("grad_output_prob_none_tensor", xpr, tp, reduction="none", label_smoothing=0.1, grad_output=torch.randn(4))
    add("grad_output_input1d_none_number", x1, torch.tensor(2), reduction="none", label_smoothing=0.1, grad_output=-2.0)

    # ---- target dtypes ---------------------------------------------------------------
    add("uint8_target_mean_eps0.1", x, t.to(torch.uint8), label_smoothing=0.1)
    add("uint8_target_none_weight", x, t.to(torch.uint8), weight=w5, reduction="none")
    add("uint8_target_input1d_sum", x1, torch.tensor(4, dtype=torch.uint8), reduction="sum", label_smoothing=0.1)
    t32 = t.to(torch.int32)
    add("int32_target_smoothce_accepts_mean_eps0.1", x, t32, label_smoothing=0.1, compute_target=t32.long())
    add("int32_target_smoothce_accepts_kdim2_none_weight", logits(2, 4, 3, 2), t_k2.to(torch.int32), weight=torch.tensor([1.0, 2.0, 0.5, 1.5]), reduction="none", label_smoothing=0.1, compute_target=t_k2)

    # ---- bfloat16 input (computed by torch in bf16) ---------------------------------
    xb = logits(4, 5).to(bf16)
    add("bf16_mean_eps0.1", xb, t, label_smoothing=0.1)
    add("bf16_sum_weight_eps0.2", xb, t_ign, weight=w5.to(bf16), reduction="sum", label_smoothing=0.2)
    add("bf16_none_eps0", xb, t, reduction="none")
    add("bf16_kdim1_mean_eps0.1", logits(2, 3, 4).to(bf16), idx(3, 2, 4), label_smoothing=0.1)
    add("bf16_prob_f32_target_promotes_mean_eps0.1", xb, tp, label_smoothing=0.1)
    add("bf16_none_grad_output_tensor_eps0.1", xb, t_ign, reduction="none", label_smoothing=0.1, grad_output=torch.randn(4))

    # ---- deliberate deviations: PyTorch silently treats ε < 0 and NaN as 0 ---------------
    add("deviation_eps_negative", x, t, label_smoothing=-0.1)
    add("deviation_eps_nan", x, t, label_smoothing=NAN)
    add("deviation_prob_eps_negative", xpr, tp, label_smoothing=-0.5)

    # ---- PyTorch's errors (spec §2 table) ------------------------------------------
    x23 = logits(2, 3)
    t23 = torch.tensor([2, 0])
    add("err_target_int32", x23, t23.to(torch.int32),
        deviation="smoothce accepts int32 class indices (converted to int64); PyTorch raises 'expected scalar type Long but found Int'")
    add("err_target_float_1d", x23, torch.tensor([2.0, 0.0], dtype=f64))
    add("err_target_uint8_3d", logits(2, 3, 4), torch.zeros(2, 4, dtype=torch.uint8))
    add("err_target_oob_high", x23, torch.tensor([3, 0]))
    add("err_target_oob_negative", x23, torch.tensor([-1, 0]))
    add("err_target_oob_4d", logits(1, 3, 2, 2), torch.tensor([[[0, 1], [3, 2]]]))
    add("err_target_oob_uint8", x23, torch.tensor([1, 5], dtype=torch.uint8))
    add("err_target_oob_with_eps", x23, torch.tensor([0, 4]), label_smoothing=0.1)
    add("err_target_oob_c0", torch.empty(2, 0), torch.tensor([0, 0]))
    add("err_eps_gt_1", x23, t23, label_smoothing=1.5)
    add("err_eps_just_gt_1", x23, t23, label_smoothing=1.0000001)
    add("err_eps_inf", x23, t23, label_smoothing=INF)
    add("err_prob_eps_gt_1", x23, probs(2, 3), label_smoothing=1.5)
    add("err_prob_ignore_index_nonneg", x23, probs(2, 3), ignore_index=0)
    add("err_prob_int_target", x23, torch.tensor([[0, 1, 0], [1, 0, 0]]))
    add("err_batch_mismatch", x23, torch.tensor([0, 1, 2]))
    add("err_weight_wrong_size", x23, t23, weight=torch.tensor([1.0, 2.0]))
    add("err_weight_2d", x23, t23, weight=torch.tensor([[1.0, 2.0, 3.0]]))
    add("err_prob_weight_wrong_size", x23, probs(2, 3), weight=torch.tensor([1.0, 2.0]))
    add("err_weight_dtype", x23.double(), t23, weight=torch.tensor([1.0, 2.0, 3.0], dtype=f32),
        deviation="smoothce takes class weights as numbers and casts them to the input dtype; PyTorch requires weight.dtype == input.dtype")
    add("err_input_half", x23.half(), t23)
    add("err_input_half_3d", logits(2, 3, 4).half(), idx(3, 2, 4))
    add("err_input_int64", torch.tensor([[1, 2, 3], [4, 5, 6]]), t23)
    add("err_kdim_target_shape", logits(2, 3, 2), torch.zeros(2, 3, dtype=torch.int64))
    add("err_4d_target_shape", logits(1, 3, 2, 2), torch.zeros(1, 3, 2, dtype=torch.int64))
    add("err_target_2d_for_2d_input", x23, torch.zeros(2, 2, dtype=torch.int64))
    add("err_1d_input_1d_target", logits(4), torch.tensor([1]))
    add("err_0d_input_int_target", torch.tensor(0.5), torch.tensor(0))
    add("err_0d_input_float_target", torch.tensor(0.5), torch.tensor(1.0))
    # Not in the spec's table, found by the randomized oracle: uint8 targets with weight and
    # ε > 0 under 'mean' fail in the smoothing term's weight.gather (sum/none/ε=0 work).
    add("err_uint8_target_weight_eps_mean", x23, t23.to(torch.uint8), weight=torch.tensor([1.0, 2.0, 3.0]), label_smoothing=0.1)
    add("uint8_target_weight_eps_sum_works", x23, t23.to(torch.uint8), weight=torch.tensor([1.0, 2.0, 3.0]), reduction="sum", label_smoothing=0.1)
    # Found by a randomized impl 'fused' vs 'aten' sweep: the smoothing term masks uint8 targets
    # equal to ignore_index wrapped to 8 bits (-100 as 156, -1 as 255, 256 as 0); nll_loss does not.
    xw = logits(4, 257)
    add("uint8_target_ignore_wraps_mean_eps0.2", xw, torch.tensor([156, 3, 156, 200], dtype=torch.uint8), label_smoothing=0.2)
    add("uint8_target_ignore_minus1_wraps_sum_eps0.1", xw, torch.tensor([255, 3, 7, 255], dtype=torch.uint8), reduction="sum", ignore_index=-1, label_smoothing=0.1)
    add("uint8_target_ignore_256_wraps_none_eps0.1", xw, torch.tensor([0, 3, 0, 9], dtype=torch.uint8), reduction="none", ignore_index=256, label_smoothing=0.1)
    # E27/E28 (reduction enum 3) cannot be expressed: smoothce takes reduction strings only.

    doc = {
        "format": sp.FORMAT,
        "version": sp.VERSION,
        "torch": torch.__version__,
        "generator": f"python/generate_fixtures.py (seed {SEED}, torch.set_num_threads(1))",
        "cases": cases,
    }
    # One case per line: small, and readable in diffs.
    head = json.dumps({k: v for k, v in doc.items() if k != "cases"}, allow_nan=False)[:-1]
    lines = [json.dumps(c, allow_nan=False, separators=(",", ":")) for c in cases]
    text = head + ', "cases": [\n' + ",\n".join(lines) + "\n]}\n"
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(out_path + ".tmp", out_path)
    n_err = sum(1 for c in cases if "error" in c["expected"])
    n_dev = sum(1 for c in cases if "deviation" in c)
    print(f"wrote {len(cases)} cases ({n_err} errors, {n_dev} deviations, {len(text)} bytes) to {os.path.relpath(out_path)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT)
