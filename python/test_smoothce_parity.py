"""Unit tests of smoothce_parity (run: /usr/bin/python3 -m unittest discover -s python -p 'test_*.py';
test/oracle.test.ts runs them too)."""

import json
import math
import os
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smoothce_parity as sp  # noqa: E402


def roundtrip(t, **kw):
    return sp.decode_tensor(json.loads(json.dumps(sp.encode_tensor(t, **kw), allow_nan=False)))


class EncodeDecode(unittest.TestCase):
    def test_float_special_values(self):
        t = torch.tensor([math.nan, math.inf, -math.inf, -0.0, 0.0, 1e-45, 3.4028234663852886e38, 0.1], dtype=torch.float32)
        enc = sp.encode_tensor(t)
        self.assertEqual(enc["data"][:3], ["NaN", "Infinity", "-Infinity"])
        self.assertIn('-0.0', json.dumps(enc))
        back = roundtrip(t)
        self.assertEqual(back.dtype, torch.float32)
        self.assertTrue(torch.equal(back[3:], t[3:]))
        self.assertTrue(math.isnan(back[0]) and back[1] == math.inf and back[2] == -math.inf)
        self.assertEqual(math.copysign(1.0, back[3].item()), -1.0)

    def test_exact_bits_float32_float64_bf16_f16(self):
        torch.manual_seed(0)
        for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16):
            t = (torch.randn(7, 3, dtype=torch.float64) * 100).to(dtype)
            back = roundtrip(t)
            self.assertEqual(back.dtype, dtype)
            self.assertEqual(list(back.shape), [7, 3])
            self.assertTrue(torch.equal(back, t), dtype)

    def test_int64_beyond_2_53_as_strings(self):
        t = torch.tensor([2**62, -(2**63), 2**53, -5], dtype=torch.int64)
        enc = sp.encode_tensor(t)
        self.assertEqual(enc["data"], [str(2**62), str(-(2**63)), 2**53, -5])
        self.assertTrue(torch.equal(roundtrip(t), t))

    def test_int_dtypes_and_0d(self):
        for t in (torch.tensor(3), torch.tensor([1, 2], dtype=torch.int32), torch.tensor([255, 0], dtype=torch.uint8)):
            back = roundtrip(t)
            self.assertEqual(back.dtype, t.dtype)
            self.assertTrue(torch.equal(back, t))
        self.assertEqual(sp.encode_tensor(torch.tensor(3))["shape"], [])

    def test_npy_roundtrip_bf16_stored_as_float32(self):
        with tempfile.TemporaryDirectory() as d:
            t = torch.randn(4, 5).to(torch.bfloat16)
            enc = sp.encode_tensor(t, os.path.join(d, "a", "x.npy"), d)
            self.assertEqual(enc, {"dtype": "bfloat16", "shape": [4, 5], "npy": "a/x.npy"})
            self.assertEqual(np.load(os.path.join(d, "a", "x.npy")).dtype, np.float32)
            back = sp.decode_tensor(enc, d)
            self.assertEqual(back.dtype, torch.bfloat16)
            self.assertTrue(torch.equal(back, t))

    def test_bare_nan_refused(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "c.json")
            with open(p, "w") as f:
                f.write('{"format": "smoothce-cases", "version": 1, "cases": [{"x": NaN}]}')
            with self.assertRaises(ValueError):
                sp.load_file(p)

    def test_wrong_format_refused(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "c.json")
            with open(p, "w") as f:
                f.write('{"format": "other", "version": 1, "cases": []}')
            with self.assertRaisesRegex(ValueError, "not a smoothce-cases file"):
                sp.load_file(p)


class Capture(unittest.TestCase):
    def test_values_grad_and_untouched_inputs(self):
        torch.manual_seed(1)
        x = torch.randn(5, 4, requires_grad=True)
        y = x * 2
        t = torch.tensor([0, 3, -100, 1, 2])
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "c.json")
            case = sp.capture(y, t, p, label_smoothing=0.2, weight=torch.tensor([1.0, 2.0, 0.5, 1.0]), name="w")
            self.assertIsNone(x.grad)
            exp = torch.nn.functional.cross_entropy(y.detach(), t, weight=torch.tensor([1.0, 2.0, 0.5, 1.0]), label_smoothing=0.2)
            self.assertEqual(case["expected"]["loss"]["data"], [exp.item()])
            self.assertEqual(case["options"], {"reduction": "mean", "ignore_index": -100, "label_smoothing": 0.2})
            (c,) = sp.load_cases(p)
            self.assertTrue(torch.equal(c["expected"]["loss"], exp))
            xx = y.detach().clone().requires_grad_(True)
            torch.nn.functional.cross_entropy(xx, t, weight=torch.tensor([1.0, 2.0, 0.5, 1.0]), label_smoothing=0.2).backward()
            self.assertTrue(torch.equal(c["expected"]["grad_input"], xx.grad))

    def test_grad_output_number_and_tensor(self):
        x = torch.randn(3, 4)
        t = torch.tensor([0, 1, 2])
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "c.json")
            a = sp.capture(x, t, p, reduction="none", grad_output=2.0)
            g = torch.tensor([1.0, -1.0, 0.5])
            b = sp.capture(x, t, p, reduction="none", grad_output=g)
            self.assertEqual(a["grad_output"], {"dtype": "float32", "shape": [], "data": [2.0]})
            self.assertEqual(b["grad_output"]["shape"], [3])
            ca, cb = sp.load_cases(p)
            la, ga = sp.replay(ca)
            lb, gb = sp.replay(cb)
            xx = x.clone().requires_grad_(True)
            torch.nn.functional.cross_entropy(xx, t, reduction="none").backward(g)
            self.assertTrue(torch.equal(gb, xx.grad))
            self.assertTrue(torch.equal(ga, ca["expected"]["grad_input"]))
            xa = x.clone().requires_grad_(True)
            torch.nn.functional.cross_entropy(xa, t, reduction="none").backward(torch.full((3,), 2.0))
            self.assertTrue(torch.equal(ga, xa.grad))

    def test_errors_propagate_or_are_recorded(self):
        x = torch.randn(2, 3)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "c.json")
            with self.assertRaises(IndexError):
                sp.capture(x, torch.tensor([0, 3]), p)
            self.assertFalse(os.path.exists(p))
            case = sp.capture(x, torch.tensor([0, 3]), p, record_errors=True)
            self.assertEqual(case["expected"], {"error": {"type": "IndexError", "message": "Target 3 is out of bounds."}})

    def test_deviation_marked(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "c.json")
            case = sp.capture(torch.randn(2, 3), torch.tensor([0, 1]), p, label_smoothing=-0.1)
            self.assertIn("labelSmoothing < 0", case["deviation"])
            case = sp.capture(torch.randn(2, 3), torch.tensor([0, 1]), p, label_smoothing=float("nan"))
            self.assertEqual(case["options"]["label_smoothing"], "NaN")
            self.assertIn("NaN", case["deviation"])

    def test_unique_names_and_npy_threshold(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "run.json")
            sp.capture(torch.randn(2, 3), torch.tensor([0, 1]), p, name="a")
            sp.capture(torch.randn(20, 30), torch.randint(0, 30, (20,)), p, name="a", npy_threshold=100)
            with open(p) as f:
                doc = json.load(f)
            self.assertEqual([c["name"] for c in doc["cases"]], ["a", "a-2"])
            self.assertEqual(doc["cases"][1]["input"]["npy"], "run-arrays/a-2.input.npy")
            self.assertIn("data", doc["cases"][1]["target"])  # 20 elements: below the threshold, inline
            self.assertIn("npy", doc["cases"][1]["expected"]["grad_input"])
            c = sp.load_cases(d)[1]
            loss, grad = sp.replay(c)
            self.assertTrue(torch.equal(loss, c["expected"]["loss"]) and torch.equal(grad, c["expected"]["grad_input"]))


if __name__ == "__main__":
    unittest.main()
