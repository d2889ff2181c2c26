"""PyTorch's tensor printing layout, so printed output reads like the tutorials users learn from.

The rules follow torch/_tensor_str.py: one formatter for the whole tensor (integer-valued floats print
as `2.`; scientific notation when the nonzero magnitudes span more than 1000x, exceed 1e8 or go below
1e-4; otherwise four decimals), all elements padded to one width, lines wrapped at 80 columns, and
suffixes (`dtype=`, `grad_fn=`, `requires_grad=True`) appended after a comma.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80


class _Formatter:
    def __init__(self, values: np.ndarray) -> None:
        self.floating = values.dtype.kind in "fc"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = values.reshape(-1)
        if not self.floating:
            self.max_width = max((len(str(v)) for v in flat.tolist()), default=1)
            return
        vals = flat.astype(np.float64)
        finite = vals[np.isfinite(vals) & (vals != 0)]
        if finite.size:
            absf = np.abs(finite)
            lo, hi = float(absf.min()), float(absf.max())
            self.int_mode = bool(np.all(finite == np.ceil(finite)))
            if self.int_mode:
                self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8
            else:
                self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        self.max_width = max((len(self._raw(v)) for v in vals.tolist()), default=1)

    def _raw(self, value: float) -> str:
        if self.sci_mode:
            return f"{value:.{PRECISION}e}"
        if self.int_mode:
            s = f"{value:.0f}"
            return s if (math.isinf(value) or math.isnan(value)) else s + "."
        return f"{value:.{PRECISION}f}"

    def format(self, value: Any) -> str:
        s = self._raw(float(value)) if self.floating else str(value)
        return " " * (self.max_width - len(s)) + s


def _summary_values(a: np.ndarray, summarize: bool) -> np.ndarray:
    """The elements that will be printed (the edges only, when summarizing)."""
    if not summarize or a.ndim == 0:
        return a
    if a.ndim == 1:
        if a.shape[0] > 2 * EDGEITEMS:
            return np.concatenate([a[:EDGEITEMS], a[-EDGEITEMS:]])
        return a
    if a.shape[0] > 2 * EDGEITEMS:
        parts = [_summary_values(a[i], summarize) for i in list(range(EDGEITEMS)) +
                 list(range(a.shape[0] - EDGEITEMS, a.shape[0]))]
    else:
        parts = [_summary_values(a[i], summarize) for i in range(a.shape[0])]
    return np.concatenate([p.reshape(-1) for p in parts])


def _vector(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    element_length = fmt.max_width + 2
    per_line = max(1, int(math.floor((LINEWIDTH - indent) / element_length)))
    vals = a.tolist()
    if summarize and len(vals) > 2 * EDGEITEMS:
        data = [fmt.format(v) for v in vals[:EDGEITEMS]] + [" ..."] + \
               [fmt.format(v) for v in vals[-EDGEITEMS:]]
    else:
        data = [fmt.format(v) for v in vals]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector(a, indent, summarize, fmt)
    n = a.shape[0]
    if summarize and n > 2 * EDGEITEMS:
        slices = ([_nested(a[i], indent + 1, summarize, fmt) for i in range(EDGEITEMS)] + ["..."] +
                  [_nested(a[i], indent + 1, summarize, fmt) for i in range(n - EDGEITEMS, n)])
    else:
        slices = [_nested(a[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def _add_suffixes(text: str, suffixes: list[str], indent: int) -> str:
    parts = [text]
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def format_tensor(values: np.ndarray, suffixes: list[str], prefix: str = "tensor(") -> str:
    """`tensor([...], <suffixes>)` laid out as PyTorch prints it. `values` is a NumPy array."""
    indent = len(prefix)
    if values.size == 0 and values.ndim > 0:
        body = "[]"
        if values.ndim != 1:
            suffixes = [f"size={tuple(values.shape)}"] + suffixes
    else:
        summarize = values.size > THRESHOLD
        fmt = _Formatter(_summary_values(values, summarize))
        body = _nested(values, indent, summarize, fmt)
    return _add_suffixes(prefix + body, suffixes, indent)
