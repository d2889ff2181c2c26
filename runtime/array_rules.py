"""The rule table's functions re-bound for a backward pass that only ever sees arrays.

A rule body such as `unbroadcast(g * y, x)` calls primitives (`sum_to`, `shape`), and each primitive
call first looks for a Tensor among its arguments (`Primitive.__call__`), so that the same rule records
itself under `create_graph=True`. A plain `backward()` never hands a rule a Tensor: the arguments are the
saved arrays and the cotangent is an array. There that check is pure overhead, paid about 25 times per
step of a recurrent network. `on_arrays(rule)` returns the same rule -- the same code, so still one set
of derivatives -- whose global names resolve primitives to their implementations and the helpers of
`rules.py` to re-bound copies of themselves.

One rewrite goes further, in the helpers only: a rule that *returns* the outer product of two vectors,
`expand_dims(u, axis=-1) * v` (the weight cotangent of a matrix-vector product), returns it as its two
factors, a `RankOne`. The backward sweep sums such cotangents for a leaf as factors (`OuterSum`) and forms
the sum as one matrix product when the leaf's gradient is needed: a weight used at every step of a loop
then costs one BLAS call instead of one outer product and one addition per step. This is the tape's
version of the compiler's `defer_outer_products`. Everywhere else a `RankOne` is made dense at once.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from typing import Any, Callable

import numpy as np

from . import rules
from .primitives import PRIMITIVES, Primitive

_GLOBALS: dict[str, Any] | None = None
_sum_to, _shape = PRIMITIVES["sum_to"].impl, PRIMITIVES["shape"].impl
_expand_dims = PRIMITIVES["expand_dims"].impl


# ----------------------------------------------------------------------------------- rank-one cotangents
class RankOne:
    """The outer product u vᵀ of two 1-d arrays, kept as its factors."""

    __slots__ = ("u", "v")

    def __init__(self, u: np.ndarray, v: np.ndarray) -> None:
        self.u, self.v = u, v

    def dense(self) -> np.ndarray:
        return self.u[:, None] * self.v

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        d = self.dense()
        return d if dtype is None else d.astype(dtype)


class OuterSum:
    """A leaf's cotangent while the sweep adds to it: a dense part plus outer products kept as factors.

    Pending factors are folded into the dense part, as one matrix product of the stacked factors, once
    there are 32 of them or they take as much memory as the dense matrix (and when the value is read):
    memory stays within a small multiple of the leaf's size. Nothing is ever written in place: a dense
    part handed in may be another holder's array."""

    __slots__ = ("us", "vs", "dense", "limit")

    def __init__(self, r: RankOne, dense: Any = None) -> None:
        self.us, self.vs = [r.u], [r.v]
        self.dense = dense
        m, k = r.u.shape[0], r.v.shape[0]
        self.limit = max(32, m * k // (m + k))

    def add(self, r: RankOne) -> None:
        self.us.append(r.u)
        self.vs.append(r.v)
        if len(self.us) >= self.limit:
            self._fold()

    def add_dense(self, a: Any) -> None:
        self.dense = a if self.dense is None else self.dense + a

    def _fold(self) -> None:
        if self.us:
            d = np.array(self.us).T @ np.array(self.vs)  # (np.array of a list: twice np.stack's speed)
            self.dense = d if self.dense is None else self.dense + d
            self.us, self.vs = [], []

    def value(self) -> np.ndarray:
        self._fold()
        return self.dense


def _rank_one(u: Any, v: Any, v_as_row: bool = False) -> Any:
    """`expand_dims(u, axis=-1) * v`, or `* expand_dims(v, axis=-2)` when `v_as_row`: factored when u
    and v are 1-d NumPy arrays of one dtype (the two forms agree then), the product itself otherwise."""
    if (type(u) is np.ndarray and type(v) is np.ndarray and u.ndim == 1 and v.ndim == 1
            and u.dtype is v.dtype):
        return RankOne(u, v)
    return _expand_dims(u, axis=-1) * (_expand_dims(v, axis=-2) if v_as_row else v)


def dense(g: Any) -> Any:
    """g, with a RankOne made an array (for anything but a leaf's buffer)."""
    return g.dense() if type(g) is RankOne else g


# --------------------------------------------------------------------------------------------- binding
def _array_globals() -> dict[str, Any]:
    """rules.py's namespace with primitives swapped for their implementations (built once; its helper
    functions are re-bound to this same namespace, so helpers calling helpers stay direct)."""
    global _GLOBALS
    if _GLOBALS is None:
        ns: dict[str, Any] = dict(vars(rules))
        for name, value in list(ns.items()):
            if isinstance(value, Primitive):
                ns[name] = value.impl
            elif isinstance(value, types.FunctionType) and value.__module__ == rules.__name__:
                ns[name] = _with_rank_one(value, ns) or _rebind(value, ns)
        ns["unbroadcast"] = _unbroadcast_arrays
        ns["_rank_one"] = _rank_one
        _GLOBALS = ns
    return _GLOBALS


def _unbroadcast_arrays(g: Any, x: Any) -> Any:
    """`rules.unbroadcast` (`sum_to(g, shape=shape(x))`) with sum_to's first case tested before any
    call: a cotangent that already has x's shape is returned as it is. Most rules end in unbroadcast,
    and most of the time nothing is broadcast, so this saves two calls per rule."""
    if type(g) is np.ndarray and type(x) is np.ndarray and g.shape == x.shape:
        return g
    return _sum_to(g, shape=_shape(x))


def _rebind(f: types.FunctionType, ns: dict[str, Any]) -> types.FunctionType:
    g = types.FunctionType(f.__code__, ns, f.__name__, f.__defaults__, f.__closure__)
    g.__kwdefaults__ = f.__kwdefaults__
    g.__qualname__ = f.__qualname__
    return g


def _expand_last(e: ast.expr, axis: int) -> ast.expr | None:
    """The operand of `expand_dims(<operand>, axis=<axis>)`, else None."""
    if (isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id == "expand_dims"
            and len(e.args) == 1 and len(e.keywords) == 1 and e.keywords[0].arg == "axis"):
        try:
            if ast.literal_eval(e.keywords[0].value) == axis:
                return e.args[0]
        except ValueError:
            return None
    return None


class _ReturnedOuter(ast.NodeTransformer):
    """`return expand_dims(u, axis=-1) * v` (or `* expand_dims(v, axis=-2)`) -> `return _rank_one(u, v)`."""

    changed = False

    def visit_Return(self, node: ast.Return) -> ast.Return:
        e = node.value
        if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Mult):
            u = _expand_last(e.left, -1)
            if u is not None:
                row = _expand_last(e.right, -2)
                args = [u, e.right] if row is None else [u, row, ast.Constant(value=True)]
                node.value = ast.Call(func=ast.Name(id="_rank_one", ctx=ast.Load()), args=args, keywords=[])
                self.changed = True
        return node


def _with_rank_one(f: types.FunctionType, ns: dict[str, Any]) -> types.FunctionType | None:
    """`f` recompiled in `ns` with its returned outer products factored (None when it returns none)."""
    try:
        lines, first = inspect.getsourcelines(f)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return None
    ast.increment_lineno(tree, first - 1)  # tracebacks show rules.py's own lines
    fixer = _ReturnedOuter()
    tree = ast.fix_missing_locations(fixer.visit(tree))
    if not fixer.changed or not isinstance(tree.body[0], ast.FunctionDef):
        return None
    local: dict[str, Any] = {}
    exec(compile(tree, inspect.getsourcefile(f) or "<rules>", "exec"), ns, local)  # noqa: S102
    g = local[f.__name__]
    g.__qualname__ = f.__qualname__
    return g


def on_arrays(rule: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """`rule` for arguments that are never Tensors (None stays None; a rule not from rules.py, such as
    a user's custom rule, is returned as it is). It may return a `RankOne` (see the module docstring)."""
    if not isinstance(rule, types.FunctionType) or rule.__module__ != rules.__name__:
        return rule
    return _rebind(rule, _array_globals())
