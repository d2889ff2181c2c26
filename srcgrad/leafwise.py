"""Transforms of functions whose differentiated arguments are pytrees, through their leaves.

`sg.grad(loss)(params, x)` with `params = {"W": W, "b": b}` runs the gradient of loss's flat variant
(srcgrad/flatten.py: one parameter per leaf) with respect to every floating leaf, and puts the leaves'
gradients back into `params`'s structure: `{"W": dW, "b": db}`, as JAX does. A leaf that cannot carry a
derivative (an int, an integer array, a string) gets None in its place. Tangents (jvp, hvp) come in the
arguments' structure and are flattened the same way.

One `Leafwise` per transform; it builds and caches one flat transform per combination of structures.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from srcgrad.flatten import flat_function
from srcgrad.pytrees import Node, is_object, is_structured, leaves, rebuild, structure_and_leaves


class Trees(dict):
    """Position -> Node of the differentiated arguments that are pytrees; `leaves` keeps each one's
    leaves, read in the same pass."""

    def __init__(self) -> None:
        super().__init__()
        self.leaves: dict[int, list] = {}


def structured(args: tuple, wrt_idx: tuple[int, ...]) -> Trees:
    """The differentiated positions holding pytrees (or objects of arrays), with their structures."""
    out = Trees()
    for i in wrt_idx:
        if i < len(args):
            a = args[i]
            if isinstance(a, (dict, list, tuple)) or (
                    not _plain_leaf(a) and (is_structured(a) or is_object(a))):
                node, found = structure_and_leaves(a, objects=True)
                if node.kind not in ("leaf", "static") and node.n_leaves > 0:
                    out[i] = node
                    out.leaves[i] = found
    return out


def _plain_leaf(a: Any) -> bool:
    return isinstance(a, (np.ndarray, float, int, np.generic)) or (
        hasattr(a, "shape") and hasattr(a, "dtype"))


def _differentiable(x: Any) -> bool:
    """Whether a leaf carries a derivative: a float or an array of floats (ints and bools are static)."""
    t = type(x)
    if t is np.ndarray:
        return x.dtype.kind == "f"
    if t is float:
        return True
    if isinstance(x, (bool, int, np.integer, np.bool_)):
        return False
    if isinstance(x, (float, np.floating)):
        return True
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return False
    kind = getattr(dtype, "kind", None)
    return kind == "f" if kind is not None else "float" in str(dtype)


class Leafwise:
    """Calls `make(flat_fn, flat_wrt)`'s transform with the leaves and restructures what it returns.

    kind: 'grad', 'value_and_grad', 'vjp' (the last argument is the output's cotangent, not flattened),
    'jvp' (the last argument is the tangent, structured like the differentiated arguments), 'hvp'
    (likewise the direction; H v comes back in the arguments' structure)."""

    def __init__(self, f: Callable, kind: str, wrt_idx: tuple[int, ...], single: bool,
                 make: Callable[[Callable, Any], Callable]):
        self.f, self.kind, self.wrt_idx, self.single, self.make = f, kind, wrt_idx, single, make
        self.cache: dict[tuple, tuple[Callable, list]] = {}

    def __call__(self, args: tuple, kwargs: dict, trees: dict[int, Node], extra: Any = None) -> Any:
        flat_args: list = []
        spans: dict[int, tuple[int, int]] = {}
        for i, a in enumerate(args):
            if i in trees:
                start = len(flat_args)
                known = getattr(trees, "leaves", {}).get(i)
                flat_args.extend(known if known is not None else leaves(a, trees[i]))
                spans[i] = (start, len(flat_args))
            else:
                spans[i] = (len(flat_args), len(flat_args) + 1)
                flat_args.append(a)
        diff = tuple(j for i in self.wrt_idx for j in range(*spans[i]) if _differentiable(flat_args[j]))
        key = (tuple(sorted(trees.items(), key=lambda kv: kv[0])), diff)
        hit = self.cache.get(key)
        if hit is None:
            if not diff:
                raise TypeError(f"{getattr(self.f, '__name__', 'f')}: the differentiated arguments hold "
                                "no floating-point leaves")
            flat = flat_function(self.f, trees)
            hit = self.cache[key] = (self.make(flat, diff if len(diff) > 1 else diff[0]), list(diff))
        transform, diff_list = hit
        if self.kind in ("jvp", "hvp"):
            tangent = self.flat_tangents(extra, trees, spans, diff_list)
            out = transform(*flat_args, tangent, **kwargs)
        elif self.kind == "vjp":
            out = transform(*flat_args, extra, **kwargs)
        else:
            out = transform(*flat_args, **kwargs)
        return self.restructure(out, trees, spans, diff_list, len(flat_args))

    def flat_tangents(self, t: Any, trees: dict[int, Node], spans: dict, diff: list) -> Any:
        """The tangent(s) given in the arguments' structure, as one per differentiated leaf."""
        parts = (t,) if self.single else tuple(t)
        by_position: dict[int, Any] = {}
        for i, part in zip(self.wrt_idx, parts, strict=True):
            if i in trees:
                flat = leaves(part, trees[i])
                for k, v in enumerate(flat):
                    by_position[spans[i][0] + k] = v
            else:
                by_position[spans[i][0]] = part
        chosen = tuple(by_position[j] for j in diff)
        return chosen[0] if len(chosen) == 1 else chosen

    def regroup(self, grads: Any, trees: dict[int, Node], spans: dict, diff: list) -> Any:
        g = (grads,) if len(diff) == 1 else tuple(grads)
        at = dict(zip(diff, g, strict=True))
        out = []
        for i in self.wrt_idx:
            start, stop = spans[i]
            if i in trees:
                out.append(rebuild(trees[i], [at.get(j) for j in range(start, stop)], gradient=True))
            else:
                out.append(at.get(start))
        return out[0] if self.single else tuple(out)

    def restructure(self, out: Any, trees: dict, spans: dict, diff: list, n_flat: int) -> Any:
        if self.kind == "grad":
            return self.regroup(out, trees, spans, diff)
        if self.kind in ("value_and_grad", "vjp", "hvp"):
            value, grads = out
            return value, self.regroup(grads, trees, spans, diff)
        if self.kind == "jacobian":
            return self.regroup(out, trees, spans, diff)
        if self.kind == "hessian":  # blocks H[a][b] over the leaves: nested in the arguments' structure
            rows = (out,) if len(diff) == 1 else tuple(out)
            return self.regroup(tuple(self.regroup(r, trees, spans, diff) if len(diff) > 1 else r
                                      for r in rows) if len(diff) > 1 else rows[0], trees, spans, diff)
        return out  # jvp: (value, tangent of the output), in the output's own structure
