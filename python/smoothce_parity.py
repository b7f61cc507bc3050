"""Capture PyTorch cross-entropy cases that smoothce (Node.js) replays for parity.

Depends only on ``torch`` and ``numpy``. Import it in your own training or evaluation
code, hand it real tensors, and it writes the expected loss and gradient, computed by
*your* torch, into a case file that ``npx smoothce parity <file>`` replays::

    from smoothce_parity import capture
    capture(logits, target, "parity/cases.json", label_smoothing=0.1, name="val-batch-3")

Case-file format (``smoothce-cases``, version 1)
-----------------------------------------------
A case file is a JSON object::

    { "format": "smoothce-cases", "version": 1,
      "torch": "<torch.__version__>", "generator": "<who wrote it>",
      "cases": [ CASE, ... ] }

A CASE is::

    { "name": str,
      "input": T, "target": T, "weight": T | null,
      "options": { "reduction": "mean" | "sum" | "none",
                   "ignore_index": int,
                   "label_smoothing": float },
      "grad_output": T | null,
      "expected": { "loss": T, "grad_input": T | null } }

or, for inputs PyTorch rejects::

      "expected": { "error": { "type": "IndexError" | "RuntimeError" | "ValueError",
                               "message": "<str(e)>" } }

and optionally ``"deviation": "<why>"`` when smoothce differs from PyTorch on purpose
(smoothce rejects ``label_smoothing < 0`` and NaN, which PyTorch silently treats as 0;
smoothce accepts int32 class indices, which PyTorch rejects; ...).

Semantics of the fields:

* ``options`` are ``torch.nn.functional.cross_entropy``'s keyword arguments (smoothce's
  ``reduction``, ``ignoreIndex``, ``labelSmoothing``). ``label_smoothing`` and
  ``ignore_index`` follow the number rules below (``"NaN"``; decimal strings beyond 2^53).
* ``grad_output`` is the upstream gradient of the loss: ``null`` means ones (the gradient
  of ``loss`` for ``mean``/``sum``, of ``loss.sum()`` for ``none``). A 0-d T is a number
  (broadcast over the per-position losses for ``none``); otherwise it has the loss's shape.
  It holds the values autograd used (cast to the loss dtype), written as float32 when the
  loss is bfloat16/float16.
* ``expected.loss`` has the loss's shape (``[]`` for ``mean``/``sum``) and dtype (PyTorch's
  promotion, e.g. float64 for a float32 input with a float64 probability target).
  ``expected.grad_input`` is d loss / d input (input's shape and dtype), or ``null`` when
  the gradient was not captured.

A tensor T is ``{ "dtype": D, "shape": [d0, d1, ...], "data": [flat row-major values] }``
with D one of ``float32``, ``float64``, ``bfloat16``, ``float16``, ``int64``, ``int32``,
``uint8``. Floats are written as the exact value of the element (a JSON number that
parses back to the same bits after rounding to the dtype); non-finite floats are the
strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; ``-0.0`` is kept as ``-0.0``.
bfloat16/float16 elements are written as their exact float values. int64 values with
magnitude beyond 2^53 are written as decimal strings.

For big tensors a T may instead be ``{ "dtype": D, "shape": [...], "npy": "rel/path.npy" }``:
a NumPy ``.npy`` file (little-endian, C order) next to the JSON manifest, the path
relative to the manifest's directory. bfloat16 and float16 tensors are stored as
float32 ``.npy`` (exact), the T's ``dtype`` says what they are. ``capture`` switches to
``.npy`` for any tensor with more than ``npy_threshold`` elements, so 100 MB of logits
never go through JSON.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import warnings
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "FORMAT",
    "VERSION",
    "DEFAULT_NPY_THRESHOLD",
    "encode_tensor",
    "decode_tensor",
    "encode_number",
    "decode_number",
    "make_case",
    "compute_expected",
    "capture",
    "load_cases",
    "load_file",
    "write_file",
    "replay",
]

FORMAT = "smoothce-cases"
VERSION = 1
#: Tensors with more elements than this go to .npy files in capture().
DEFAULT_NPY_THRESHOLD = 65536

_SAFE_INT = 2**53

_DTYPE_NAMES = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.bfloat16: "bfloat16",
    torch.float16: "float16",
    torch.int64: "int64",
    torch.int32: "int32",
    torch.uint8: "uint8",
}
_TORCH_DTYPES = {v: k for k, v in _DTYPE_NAMES.items()}
_FLOAT_NAMES = {"float32", "float64", "bfloat16", "float16"}
# How each dtype is stored in a .npy file.
_NPY_DTYPES = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "bfloat16": np.dtype("<f4"),
    "float16": np.dtype("<f4"),
    "int64": np.dtype("<i8"),
    "int32": np.dtype("<i4"),
    "uint8": np.dtype("|u1"),
}


# ---------------------------------------------------------------------------
# numbers and tensors


def encode_number(value: Union[int, float]) -> Union[int, float, str]:
    """One JSON value for a scalar: non-finite floats as strings, huge ints as strings."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return str(value) if abs(value) > _SAFE_INT else value
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def decode_number(value: Union[int, float, str]) -> Union[int, float]:
    """Inverse of encode_number."""
    if isinstance(value, str):
        if value == "NaN":
            return math.nan
        if value == "Infinity":
            return math.inf
        if value == "-Infinity":
            return -math.inf
        return int(value)
    return value


def dtype_name(dtype: torch.dtype) -> str:
    try:
        return _DTYPE_NAMES[dtype]
    except KeyError:
        raise ValueError(f"smoothce case files have no dtype for {dtype}") from None


def encode_tensor(t: torch.Tensor, npy_path: Optional[str] = None, relative_to: Optional[str] = None) -> Dict[str, Any]:
    """Encodes a tensor as a T. With npy_path, writes the data to that .npy file and
    returns a T whose "npy" is the path relative to relative_to (the manifest's folder)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(t).__name__}")
    name = dtype_name(t.dtype)
    t = t.detach().cpu().contiguous()
    shape = list(t.shape)
    if npy_path is not None:
        arr = t.float().numpy() if name in ("bfloat16", "float16") else t.numpy()
        arr = np.ascontiguousarray(arr.astype(_NPY_DTYPES[name], copy=False))
        os.makedirs(os.path.dirname(os.path.abspath(npy_path)), exist_ok=True)
        np.save(npy_path, arr, allow_pickle=False)
        rel = os.path.relpath(os.path.abspath(npy_path), os.path.abspath(relative_to or os.getcwd()))
        return {"dtype": name, "shape": shape, "npy": rel.replace(os.sep, "/")}
    flat = t.reshape(-1)
    if name in _FLOAT_NAMES:
        # float() of a float32/bf16/f16 element is its exact value; repr round-trips it.
        values = flat.double().tolist()
        data = [encode_number(v) for v in values]
    else:
        data = [encode_number(int(v)) for v in flat.tolist()]
    return {"dtype": name, "shape": shape, "data": data}


def decode_tensor(obj: Optional[Dict[str, Any]], base_dir: Optional[str] = None) -> Optional[torch.Tensor]:
    """Decodes a T (JSON data or .npy reference, relative to base_dir) into a torch tensor."""
    if obj is None:
        return None
    name = obj["dtype"]
    if name not in _TORCH_DTYPES:
        raise ValueError(f"unknown dtype {name!r} in case file")
    dtype = _TORCH_DTYPES[name]
    shape = [int(d) for d in obj["shape"]]
    if "npy" in obj:
        path = obj["npy"]
        if not os.path.isabs(path):
            path = os.path.join(base_dir or os.getcwd(), path)
        arr = np.load(path, allow_pickle=False)
        if list(arr.shape) != shape:
            raise ValueError(f"{path}: shape {list(arr.shape)} but the manifest says {shape}")
        return torch.from_numpy(np.ascontiguousarray(arr)).to(dtype)
    values = [decode_number(v) for v in obj["data"]]
    n = 1
    for d in shape:
        n *= d
    if len(values) != n:
        raise ValueError(f"tensor of shape {shape} needs {n} values, got {len(values)}")
    if name in _FLOAT_NAMES:
        return torch.tensor(values, dtype=torch.float64).to(dtype).reshape(shape)
    return torch.tensor(values, dtype=torch.int64).to(dtype).reshape(shape)


# ---------------------------------------------------------------------------
# computing a case


def _deviation(target: torch.Tensor, input: torch.Tensor, weight: Optional[torch.Tensor], label_smoothing: float) -> Optional[str]:
    if isinstance(label_smoothing, float) and math.isnan(label_smoothing):
        return "smoothce rejects labelSmoothing NaN (RangeError); PyTorch silently treats it as 0"
    if label_smoothing < 0:
        return "smoothce rejects labelSmoothing < 0 (RangeError); PyTorch silently treats it as 0"
    return None


def compute_expected(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    grad_output: Union[None, float, torch.Tensor] = None,
    grad: bool = True,
):
    """Runs torch's cross_entropy (and backward) on a detached clone of input.

    Returns (loss, grad_input or None, grad_output tensor or None). Raises what torch raises.
    """
    x = input.detach().clone()
    want_grad = grad and x.is_floating_point()
    if want_grad:
        x.requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(
            x, target, weight=weight, reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing
        )
        if not want_grad:
            return loss.detach(), None, None
        if grad_output is None:
            g = None
            upstream = torch.ones_like(loss)
        elif isinstance(grad_output, torch.Tensor) and grad_output.dim() > 0:
            if list(grad_output.shape) != list(loss.shape):
                raise ValueError(f"grad_output has shape {list(grad_output.shape)} but the loss has {list(loss.shape)}")
            g = grad_output.detach().to(loss.dtype)
            upstream = g
        else:
            value = float(grad_output.item() if isinstance(grad_output, torch.Tensor) else grad_output)
            g = torch.tensor(value, dtype=loss.dtype)
            upstream = torch.full_like(loss, value)
        (grad_input,) = torch.autograd.grad(loss, x, upstream, allow_unused=True)
    if grad_input is None:
        grad_input = torch.zeros_like(x)
    return loss.detach(), grad_input.detach(), g


def make_case(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    grad_output: Union[None, float, torch.Tensor] = None,
    name: Optional[str] = None,
    grad: bool = True,
    record_errors: bool = True,
    deviation: Optional[str] = None,
    compute_target: Optional[torch.Tensor] = None,
    compute_weight: Optional[torch.Tensor] = None,
    encode=None,
) -> Dict[str, Any]:
    """Builds one case dict (tensors encoded with ``encode``).

    compute_target / compute_weight, when given, are what torch computes with while
    target / weight are what the case file records (e.g. an int32 target that smoothce
    accepts, computed by torch as target.long()). ``encode(tensor, field)`` turns a
    tensor into a T (default: inline JSON data). An error raised by torch becomes an
    ``expected.error`` case when record_errors, else it propagates.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if encode is None:
        encode = lambda t, field: encode_tensor(t)  # noqa: E731
    label_smoothing = float(label_smoothing)
    case: Dict[str, Any] = {"name": name if name is not None else "case"}
    case["input"] = encode(input, "input")
    case["target"] = encode(target, "target")
    case["weight"] = None if weight is None else encode(weight, "weight")
    case["options"] = {
        "reduction": reduction,
        "ignore_index": encode_number(int(ignore_index)),
        "label_smoothing": encode_number(label_smoothing),
    }
    try:
        loss, grad_input, g = compute_expected(
            input,
            target if compute_target is None else compute_target,
            weight if compute_weight is None else compute_weight,
            reduction,
            ignore_index,
            label_smoothing,
            grad_output,
            grad,
        )
    except (IndexError, RuntimeError, ValueError) as e:
        if not record_errors:
            raise
        kind = "IndexError" if isinstance(e, IndexError) else "ValueError" if isinstance(e, ValueError) else "RuntimeError"
        if grad_output is None:
            case["grad_output"] = None
        elif isinstance(grad_output, torch.Tensor):
            case["grad_output"] = encode(grad_output.detach(), "grad_output")
        else:
            case["grad_output"] = encode(torch.tensor(float(grad_output), dtype=torch.float64), "grad_output")
        case["expected"] = {"error": {"type": kind, "message": str(e)}}
    else:
        if g is not None and g.dtype in (torch.bfloat16, torch.float16):
            g = g.float()  # exact; smoothce takes float32/float64 gradOutput and casts it like autograd
        case["grad_output"] = None if g is None else encode(g, "grad_output")
        case["expected"] = {
            "loss": encode(loss, "loss"),
            "grad_input": None if grad_input is None else encode(grad_input, "grad_input"),
        }
    dev = deviation or _deviation(target, input, weight, label_smoothing)
    if dev:
        case["deviation"] = dev
    return case


# ---------------------------------------------------------------------------
# files


def _new_document(generator: str) -> Dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "torch": torch.__version__, "generator": generator, "cases": []}


def load_file(path: str) -> Dict[str, Any]:
    """Reads a case file (the raw JSON document, tensors still encoded)."""
    with open(path, "r", encoding="utf-8") as f:
        doc = json.load(f, parse_constant=_reject_constant)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file (format = {doc.get('format') if isinstance(doc, dict) else None!r})")
    if doc.get("version") != VERSION:
        raise ValueError(f"{path}: unsupported {FORMAT} version {doc.get('version')!r} (this module reads {VERSION})")
    if not isinstance(doc.get("cases"), list):
        raise ValueError(f"{path}: 'cases' must be a list")
    return doc


def _reject_constant(name: str):
    raise ValueError(f"bare {name} in a case file: write non-finite numbers as the strings \"NaN\", \"Infinity\", \"-Infinity\"")


def write_file(path: str, doc: Dict[str, Any], indent: Optional[int] = None) -> None:
    """Writes a case document atomically (temporary file + rename). Refuses bare NaN/Infinity."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    text = json.dumps(doc, allow_nan=False, indent=indent, separators=(",", ":") if indent is None else (",", ": "))
    fd, tmp = tempfile.mkstemp(prefix=".smoothce-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return s[:80] or "case"


def capture(
    logits: torch.Tensor,
    target: torch.Tensor,
    path: str,
    weight: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    grad_output: Union[None, float, torch.Tensor] = None,
    name: Optional[str] = None,
    npy_threshold: int = DEFAULT_NPY_THRESHOLD,
    grad: bool = True,
    record_errors: bool = False,
    generator: str = "smoothce_parity.capture",
) -> Dict[str, Any]:
    """Computes torch.nn.functional.cross_entropy(logits, target, ...) and its gradient
    with respect to logits (on a detached clone; your tensors and graph are untouched),
    and appends the case to the case file at ``path`` (created if missing).

    Tensors with more than ``npy_threshold`` elements are written as .npy files in the
    folder ``<path without .json>-arrays/`` next to the manifest. ``grad_output`` is the
    upstream gradient (a number, or a tensor shaped like the 'none' loss); ``None`` = ones.
    If torch raises, the error propagates unless ``record_errors`` (then an error case is
    written). Returns the case as written (tensors encoded).
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("capture(logits, target, path, ...) takes torch tensors")
    path = os.fspath(path)
    base = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path):
        doc = load_file(path)
        if doc.get("torch") != torch.__version__:
            warnings.warn(
                f"{path} was written with torch {doc.get('torch')}; appending cases computed with torch {torch.__version__}"
            )
    else:
        doc = _new_document(generator)
    names = {c.get("name") for c in doc["cases"]}
    if name is None:
        name = f"case-{len(doc['cases']) + 1}"
    if name in names:
        k = 2
        while f"{name}-{k}" in names:
            k += 1
        name = f"{name}-{k}"
    stem = os.path.splitext(os.path.basename(path))[0]
    array_dir = os.path.join(base, f"{stem}-arrays")

    def encode(t: torch.Tensor, field: str) -> Dict[str, Any]:
        if t.numel() > npy_threshold:
            return encode_tensor(t, os.path.join(array_dir, f"{_slug(name)}.{field}.npy"), base)
        return encode_tensor(t)

    case = make_case(
        logits,
        target,
        weight,
        reduction,
        ignore_index,
        label_smoothing,
        grad_output,
        name=name,
        grad=grad,
        record_errors=record_errors,
        encode=encode,
    )
    doc["cases"].append(case)
    write_file(path, doc)
    return case


def _case_files(path: str) -> List[str]:
    if os.path.isdir(path):
        return sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".json"))
    return [path]


def load_cases(path: str, decode: bool = True) -> List[Dict[str, Any]]:
    """Reads the cases of a case file (or of every .json case file in a folder).

    With decode (default), every T is a torch tensor (``.npy`` references resolved
    relative to the manifest), ``options`` numbers are decoded and each case gets a
    ``"file"`` key. Without, the raw JSON dicts are returned.
    """
    out: List[Dict[str, Any]] = []
    for file in _case_files(os.fspath(path)):
        doc = load_file(file)
        base = os.path.dirname(os.path.abspath(file))
        for raw in doc["cases"]:
            if not decode:
                out.append(raw)
                continue
            case = dict(raw)
            case["file"] = file
            for key in ("input", "target", "weight", "grad_output"):
                case[key] = decode_tensor(raw.get(key), base)
            opts = dict(raw.get("options", {}))
            opts["ignore_index"] = int(decode_number(opts.get("ignore_index", -100)))
            opts["label_smoothing"] = float(decode_number(opts.get("label_smoothing", 0.0)))
            opts.setdefault("reduction", "mean")
            case["options"] = opts
            exp = dict(raw["expected"])
            if "error" not in exp:
                exp["loss"] = decode_tensor(exp["loss"], base)
                exp["grad_input"] = decode_tensor(exp.get("grad_input"), base)
            case["expected"] = exp
            out.append(case)
    return out


def replay(case: Dict[str, Any]):
    """Recomputes a decoded case with this torch: returns (loss, grad_input or None)."""
    o = case["options"]
    g = case.get("grad_output")
    loss, grad_input, _ = compute_expected(
        case["input"],
        case["target"],
        case.get("weight"),
        o["reduction"],
        o["ignore_index"],
        o["label_smoothing"],
        g,
        grad=case["expected"].get("grad_input") is not None,
    )
    return loss, grad_input
