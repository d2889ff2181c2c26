"""Batched tangents: the basis vectors of a Jacobian or Hessian travel as ONE leading axis.

In batched forward mode every tangent has shape (B,) + the primal's shape, and the primal code runs once.
A jvp rule is linear in its tangent, so most rules already broadcast over the extra axis; the ones that
do not get a small rewrite when they are inlined (`batched_rule`):

- elementwise rules: the tangent is first lifted to the output's rank (`lift`: (B, 3) -> (B, 1, 3) for a
  (4, 3) output), so that `t * y` aligns the primal's axes, not the batch axis, and `widen` becomes
  `bwiden`;
- reductions, reshapes, indexing, padding, transposes, matmul: the primitive applied to a tangent becomes
  its `b`-variant below, which shifts axes past the batch axis (`bsum(t, axis=0)` sums axis 1) or
  prefixes the index with `:`;
- everything else (einsum, tile, repeat, roll, cumprod, ...) falls back to a loop over the basis that
  calls the rule once per vector (`batch_loop`); the generated code says so in a comment.

Rule helpers in generated reverse code (forward-over-reverse) follow the same scheme (`linear_call`).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Callable

import gast
import numpy as np

from srcgrad.normalize import call, const, name
from srcgrad.runtime import primitives as P
from srcgrad.runtime import rules as R
from srcgrad.runtime import stack as rt_stack
from srcgrad.runtime.primitives import Primitive, pad_pairs
from srcgrad.runtime.rules import RULES
from srcgrad.templates import instantiate

NB = "_nb"          # the batch size, a local of every batched generated function

# A primitive's batched variant (same arguments, the tangent with a leading basis axis) by primitive name,
# and a rule helper's by the helper: filled by `batched_variant_of` where each variant is defined.
BATCHED_PRIMS: dict[str, Callable] = {}
LINEAR_BATCHED: dict[Any, Callable] = {}


def batched_variant_of(*targets: Any) -> Callable[[Callable], Callable]:
    """Decorator: the function below is the batched variant of each target (a primitive's name, or a
    rule helper linear in its first argument). A variant that takes `<operand>b` flags (bmatmul's `ab`,
    `bb`) is told which operands hold a batched tangent."""

    def register(f: Callable) -> Callable:
        for t in targets:
            (BATCHED_PRIMS if isinstance(t, str) else LINEAR_BATCHED)[t] = f
        return f

    return register



# ============================================================================================ helpers
def batch_size(t: Any) -> int:
    return P.shape(t)[0]


def bzero(x: Any, nb: int) -> Any:
    """A zero batched tangent for x: shape (nb,) + x.shape."""
    if x is None:
        return None
    t = type(x)
    if t is float or t is int or t is bool:
        return np.zeros(nb)
    if t is tuple or t is list:
        return t(bzero(v, nb) for v in x)
    if t is range or t is str or t is slice:
        return None
    return P.zeros_like(P.broadcast_to(P.expand_dims(x, axis=0), shape=(nb,) + tuple(P.shape(x))))


def shift_axis(axis: Any) -> Any:
    """An axis of the primal as an axis of the batched tangent (negative axes are unchanged)."""
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        return tuple(shift_axis(a) for a in axis)
    return axis + 1 if axis >= 0 else axis


def _all_but_batch(t: Any) -> tuple:
    return tuple(range(1, P.ndim(t)))


_ND = np.ndarray     # NumPy fast paths: the helpers run once per primitive of the generated code, so
                     # they skip the primitives' dispatch when the arrays are NumPy's


def _ndim(x: Any) -> int:
    if type(x) is _ND:
        return x.ndim
    if type(x) is float or type(x) is int:
        return 0
    return P.ndim(x)


def lift_to(t: Any, nd: int) -> Any:
    """Insert unit axes after the batch axis so the primal part of t has rank nd."""
    if type(t) is _ND:
        have = t.ndim - 1
        if have >= nd:
            return t
        s = t.shape
        return t.reshape((s[0],) + (1,) * (nd - have) + s[1:])
    have = P.ndim(t) - 1
    if have >= nd:
        return t
    s = P.shape(t)
    return P.reshape(t, shape=(s[0],) + (1,) * (nd - have) + tuple(s[1:]))


def lift(t: Any, ans: Any) -> Any:
    return lift_to(t, _ndim(ans))


@batched_variant_of(R.widen)
def bwiden(t: Any, ans: Any) -> Any:
    if type(t) is _ND:
        if type(ans) is _ND:
            if t.shape[1:] == ans.shape:
                return t
            t = lift_to(t, ans.ndim)
            return np.broadcast_to(t, t.shape[:1] + ans.shape)
        if type(ans) is float or type(ans) is int:
            return t
    t = lift(t, ans)
    return P.broadcast_to(t, shape=(P.shape(t)[0],) + tuple(P.shape(ans)))


def badd(a: Any, b: Any) -> Any:
    """The sum of two batched tangents of operands that broadcast together (ranks aligned after the
    batch axis)."""
    na, nb = _ndim(a), _ndim(b)
    if na != nb:
        a, b = lift_to(a, max(na, nb) - 1), lift_to(b, max(na, nb) - 1)
    return a + b


def bsub(a: Any, b: Any) -> Any:
    na, nb = _ndim(a), _ndim(b)
    if na != nb:
        a, b = lift_to(a, max(na, nb) - 1), lift_to(b, max(na, nb) - 1)
    return a - b


@batched_variant_of("sum")
def bsum(t: Any, axis: Any = None, keepdims: bool = False) -> Any:
    if type(t) is _ND:
        return t.sum(axis=tuple(range(1, t.ndim)) if axis is None else shift_axis(axis), keepdims=keepdims)
    return P.sum(t, axis=_all_but_batch(t) if axis is None else shift_axis(axis), keepdims=keepdims)


@batched_variant_of("mean")
def bmean(t: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return P.mean(t, axis=_all_but_batch(t) if axis is None else shift_axis(axis), keepdims=keepdims)


@batched_variant_of("cumsum")
def bcumsum(t: Any, axis: Any = 0) -> Any:
    if axis is None:
        return P.cumsum(P.reshape(t, shape=(P.shape(t)[0], -1)), axis=1)
    return P.cumsum(t, axis=shift_axis(axis))


@batched_variant_of("reshape")
def breshape(t: Any, shape: Any = None) -> Any:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return P.reshape(t, shape=(P.shape(t)[0],) + shape)


@batched_variant_of("broadcast_to")
def bbroadcast_to(t: Any, shape: Any = None) -> Any:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    t = lift_to(t, len(shape))
    return P.broadcast_to(t, shape=(P.shape(t)[0],) + shape)


@batched_variant_of("sum_to")
def bsum_to(t: Any, shape: Any = None) -> Any:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if type(t) is _ND and t.shape[1:] == shape:
        return t
    lead = P.ndim(t) - 1 - len(shape)
    if lead > 0:
        t = P.sum(t, axis=tuple(range(1, 1 + lead)), keepdims=False)
    ts = P.shape(t)
    ones = tuple(i + 1 for i, n in enumerate(shape) if n == 1 and ts[i + 1] != 1)
    if ones:
        t = P.sum(t, axis=ones, keepdims=True)
    return t


def bpack_tangent(ts: Any, xs: Any) -> Any:
    """`forward.pack_tangent` for batched tangents: each element's tangent, shaped (B,) + its element's
    shape, stacked along the first primal axis (axis 1), past the batch axis."""
    if not isinstance(ts, (list, tuple)):
        return ts
    parts = [bbroadcast_to(bpack_tangent(t, x), shape=tuple(P.shape(x))) for t, x in zip(ts, xs, strict=True)]
    return P.stack(*parts, axis=1)


@batched_variant_of("transpose")
def btranspose(t: Any, axes: Any = None) -> Any:
    nd = P.ndim(t) - 1
    axes = tuple(reversed(range(nd))) if axes is None else tuple(axes)
    return P.transpose(t, axes=(0,) + tuple(a % nd + 1 for a in axes))


def _bindex(index: Any) -> tuple:
    return (slice(None),) + (index if isinstance(index, tuple) else (index,))


@batched_variant_of("getitem")
def bgetitem(t: Any, index: Any = None) -> Any:
    if isinstance(t, (tuple, list)):     # an element of a tuple of (batched) tangents
        return t[index]
    if type(t) is _ND:
        return t[_bindex(index)]
    return P.getitem(t, index=_bindex(index))


def _batched_pair(x: Any, v: Any, index: Any, xb: bool, vb: bool) -> tuple[Any, Any, tuple]:
    nb = P.shape(x)[0] if xb else P.shape(v)[0]
    if not xb:
        x = P.broadcast_to(P.expand_dims(x, axis=0), shape=(nb,) + tuple(P.shape(x)))
    bix = _bindex(index)
    if vb:
        sel = P.ndim(P.getitem(x, index=bix)) - 1
        v = lift_to(v, sel)
    return x, v, bix


@batched_variant_of("index_update")
def bindex_update(x: Any, v: Any, index: Any = None, xb: bool = True, vb: bool = True) -> Any:
    x, v, bix = _batched_pair(x, v, index, xb, vb)
    return P.index_update(x, v, index=bix)


def bscatter(like: Any, v: Any, index: Any = None) -> Any:
    """`index_add(0.0 * like, v, index)` with v batched: zeros shaped (B,) + like.shape with v added at
    index (the jvp of index_add/index_update with respect to the value written)."""
    if type(v) is _ND and type(like) is _ND:
        out = np.zeros((v.shape[0],) + like.shape, dtype=np.result_type(like, v))
        if (type(index) is slice and v.ndim == out.ndim) or (type(index) is int and v.ndim == out.ndim - 1):
            out[:, index] = v               # one slice or position: nothing can repeat
            return out
        bix = _bindex(index)
        if R.has_int_array(index):
            np.add.at(out, bix, lift_to(v, out[bix].ndim - 1))
        else:
            out[bix] += lift_to(v, out[bix].ndim - 1)
        return out
    return bindex_add(0.0 * like, v, index=index, xb=False, vb=True)


def bscatter_update(like: Any, v: Any, index: Any = None) -> Any:
    """`index_update(0.0 * like, v, index)` with v batched: the jvp of index_update with respect to the
    value written. Unlike `bscatter` it writes, not adds: with a repeated integer index
    (`a[[0, 0, 2]] = v`) only the last write survives, as in the primal, so the duplicates must not
    accumulate into the tangent."""
    if type(v) is _ND and type(like) is _ND:
        out = np.zeros((v.shape[0],) + like.shape, dtype=np.result_type(like, v))
        bix = _bindex(index)
        out[bix] = lift_to(v, out[bix].ndim - 1)
        return out
    return bindex_update(0.0 * like, v, index=index, xb=False, vb=True)


@batched_variant_of("index_add")
def bindex_add(x: Any, v: Any, index: Any = None, xb: bool = True, vb: bool = True) -> Any:
    if type(x) is _ND and type(v) is _ND and not R.has_int_array(index):
        # no repeated positions: a plain `+=` on a copy (np.add.at is for repeats, and slow)
        nb = x.shape[0] if xb else v.shape[0]
        out = x.copy() if xb else np.empty((nb,) + x.shape, dtype=np.result_type(x, v))
        if not xb:
            out[...] = x
        bix = _bindex(index)
        if vb:
            v = lift_to(v, out[bix].ndim - 1)
        out[bix] += v
        return out
    x, v, bix = _batched_pair(x, v, index, xb, vb)
    return P.index_add(x, v, index=bix)


@batched_variant_of("pad")
def bpad(t: Any, pad_width: Any = 0, value: float = 0.0) -> Any:
    pairs = pad_pairs(pad_width, P.ndim(t) - 1)
    return P.pad(t, pad_width=((0, 0),) + tuple(pairs), value=value)


@batched_variant_of("expand_dims")
def bexpand_dims(t: Any, axis: Any = 0) -> Any:
    return P.expand_dims(t, axis=shift_axis(axis))


@batched_variant_of("flip")
def bflip(t: Any, axis: Any = None) -> Any:
    return P.flip(t, axis=_all_but_batch(t) if axis is None else shift_axis(axis))


@batched_variant_of("diagonal")
def bdiagonal(t: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    return P.diagonal(t, offset=offset, axis1=shift_axis(axis1), axis2=shift_axis(axis2))


@batched_variant_of("matmul")
def bmatmul(a: Any, b: Any, ab: bool = True, bb: bool = False) -> Any:
    """matmul with a batched left (ab) or right (bb) operand, the batch axis leading the result."""
    if ab and bb:
        raise NotImplementedError("matmul of two batched tangents")
    if ab:
        t, nd_a, nd_b = a, P.ndim(a) - 1, P.ndim(b)
        if nd_a == 1 and nd_b >= 2:
            s = P.shape(t)
            t = P.reshape(t, shape=(s[0],) + (1,) * (nd_b - 2) + (1, s[1]))
            r = P.matmul(t, b)
            return P.squeeze(r, axis=-2)
        if nd_a >= 2:
            t = lift_to(t, max(nd_a, nd_b))
        return P.matmul(t, b)
    t, nd_a, nd_b = b, P.ndim(a), P.ndim(b) - 1
    if nd_b == 1:
        if nd_a == 1:
            return P.matmul(t, a)
        s = P.shape(t)
        t = P.reshape(t, shape=(s[0],) + (1,) * (nd_a - 2) + (s[1], 1))
        return P.squeeze(P.matmul(a, t), axis=-1)
    if nd_a >= 2:
        t = lift_to(t, max(nd_a, nd_b))
    return P.matmul(a, t)


@batched_variant_of(R.unbroadcast, rt_stack.sum_like)
def bunbroadcast(g: Any, x: Any) -> Any:
    if type(g) is _ND:
        xs = x.shape if type(x) is _ND else (() if type(x) is float or type(x) is int else P.shape(x))
        if g.shape[1:] == xs:
            return g
        return bsum_to(g, shape=xs)
    return bsum_to(g, shape=P.shape(x))


@batched_variant_of(R.keep)
def bkeep(g: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    if keepdims:
        return g
    return breshape(g, shape=R.kept_shape(P.shape(x), axis))


@batched_variant_of(R.reverse_cumsum)
def breverse_cumsum(g: Any, axis: int) -> Any:
    return R.reverse_cumsum(g, shift_axis(axis))


def _stack_rows(rows: list) -> Any:
    if rows and all(isinstance(r, (float, int)) for r in rows):
        return np.array(rows, dtype=float)
    return P.stack(*rows, axis=0)


def _empty_batch(row: Any) -> Any:
    """A batch of zero rows shaped like `row` (a batch size of 0 asks only for the primal)."""
    if isinstance(row, (float, int)):
        return np.zeros(0)
    return P.getitem(P.expand_dims(row, axis=0), index=slice(0, 0))


def _zero_row(t: Any) -> Any:
    return P.sum(t, axis=0)           # zeros shaped like one row, also for an empty batch


def batch_loop(rule: Callable, t: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
    """Fallback for a jvp rule with no leading-axis form: call it once per basis vector."""
    if P.shape(t)[0] == 0:
        return _empty_batch(rule(_zero_row(t), ans, *args, **kwargs))
    return _stack_rows([rule(t[k], ans, *args, **kwargs) for k in range(P.shape(t)[0])])


def batch_loop_at(fn: Callable, pos: int, *args: Any, **kwargs: Any) -> Any:
    """Fallback for a helper linear in argument `pos`, which holds the batched tangent."""
    t = args[pos]
    if P.shape(t)[0] == 0:
        return _empty_batch(fn(*args[:pos], _zero_row(t), *args[pos + 1:], **kwargs))
    return _stack_rows([fn(*args[:pos], t[k], *args[pos + 1:], **kwargs) for k in range(P.shape(t)[0])])


def batch_loop_special(tfn: Callable, n_args: int, *args: Any) -> Any:
    """Fallback for a hand-written tangent function: its tangents (after n_args primals) are batched."""
    prim, tans = args[:n_args], args[n_args:]
    nb = next(P.shape(d)[0] for d in tans if d is not None and not isinstance(d, tuple)) if any(
        d is not None and not isinstance(d, tuple) for d in tans) else P.shape(next(
            d for d in tans if d is not None)[0])[0]

    def row(d: Any, k: int) -> Any:
        if d is None:
            return None
        if isinstance(d, tuple):
            return tuple(row(e, k) for e in d)
        return d[k]

    return _stack_rows([tfn(*prim, *[row(d, k) for d in tans]) for k in range(nb)])


# ===================================================================================== rule rewriting
# How each primitive's jvp rule is inlined for a batched tangent: its record's `batching` fact.
ELEMENTWISE = {p.name for p in P.PRIMITIVES.values() if p.batching == "lift"}
AS_IS = {p.name for p in P.PRIMITIVES.values() if p.batching == "swap"}


def _flags(f: Callable) -> tuple[str, ...]:
    """The `<operand>b` parameters of a batched variant: bmatmul(a, b, ab, bb) -> ("ab", "bb")."""
    params = inspect.signature(f).parameters
    return tuple(n + "b" for n, q in params.items() if q.default is q.empty and n + "b" in params)


_FLAGGED = {n: _flags(f) for n, f in BATCHED_PRIMS.items() if _flags(f)}


def _mentions(e: Any, names: set[str]) -> bool:
    return any(isinstance(n, gast.Name) and n.id in names for n in gast.walk(e))


class _Swap(gast.NodeTransformer):
    """Primitives applied to a tangent -> their batched variants (innermost first)."""

    def __init__(self, fw: Any, tangents: set[str], extra: dict[Any, Callable]):
        self.fw, self.tangents, self.extra = fw, tangents, extra

    def visit_Call(self, node: gast.Call) -> gast.expr:
        self.generic_visit(node)
        f = node.func
        if not isinstance(f, gast.Name):
            return node
        obj = self.fw.namer.globals.get(f.id)
        if obj is None:
            return node
        try:
            repl = self.extra.get(obj)
        except TypeError:
            repl = None
        if repl is not None:
            node.func = name(self.fw.ref(repl, repl.__name__))
            return node
        if isinstance(obj, Primitive) and obj.name in BATCHED_PRIMS:
            flags = [_mentions(a, self.tangents) for a in node.args]
            if not any(flags):
                return node
            if obj.name in ("index_add", "index_update") and flags == [False, True] and \
                    isinstance(node.args[0], gast.BinOp) and isinstance(node.args[0].op, gast.Mult) and \
                    isinstance(node.args[0].left, gast.Constant) and node.args[0].left.value == 0.0:
                # index_add(0.0 * ans, t, index): a zero base with t written in (added for index_add,
                # written for index_update, whose repeated positions keep only the last write)
                scatter = bscatter if obj.name == "index_add" else bscatter_update
                node.func = name(self.fw.ref(scatter, scatter.__name__))
                node.args = [node.args[0].right, node.args[1]]
                return node
            b = BATCHED_PRIMS[obj.name]
            node.func = name(self.fw.ref(b, b.__name__))
            if obj.name in _FLAGGED:
                names = _FLAGGED[obj.name]
                node.keywords = list(node.keywords) + [gast.keyword(arg=k, value=const(bool(v)))
                                                       for k, v in zip(names, flags, strict=True)]
        return node


def batched_rule(fw: Any, op: Any, i: int, tpl: Any, t: gast.expr, ans: gast.expr, args: list,
                 kwargs: dict) -> gast.expr:
    """The jvp rule of operand i, inlined for a batched tangent `t`."""
    p = op.prim
    if p in ELEMENTWISE:
        lifted = call(name(fw.ref(lift, "lift")), [t, copy.deepcopy(ans)])
        e = instantiate(tpl, lifted, ans, args, kwargs, i, fw.ref)
        return _Swap(fw, {t.id}, {R.widen: bwiden}).visit(e)
    if p in AS_IS:
        e = instantiate(tpl, t, ans, args, kwargs, i, fw.ref)
        return _Swap(fw, {t.id}, {}).visit(e)
    rule = RULES[p].jvp_for(i)
    fw.loop_notes.append(f"batched: the jvp rule of {p} has no leading-axis form; it loops over the basis")
    return call(name(fw.ref(batch_loop, "batch_loop")),
                [name(fw.ref(rule, f"jvp_{p}_{i}")), t, ans] + args, kwargs)


# Rule helpers in reverse code that need no rewrite, or an axis to shift: their records' `batching`
# fact (LINEAR_BATCHED, the helpers with a batched variant, is filled by `batched_variant_of`).
AS_IS_HELPERS = {h.fn for h in P.HELPERS.values() if h.batching == "as_is"}
AXIS_AT: dict[Any, int] = {h.fn: h.axis_at for h in P.HELPERS.values() if h.batching == "axis"}


def linear_call(fw: Any, fn: Any, e: gast.Call, pos: int) -> gast.expr:
    """The call `e` of a helper linear in argument `pos` (which holds the batched tangent)."""
    if fn in LINEAR_BATCHED:
        b = LINEAR_BATCHED[fn]
        e.func = name(fw.ref(b, b.__name__))
        return e
    if fn in AS_IS_HELPERS:
        return e
    if fn in AXIS_AT:
        k = AXIS_AT[fn]
        sa = name(fw.ref(shift_axis, "shift_axis"))
        if len(e.args) > k:
            e.args[k] = call(sa, [e.args[k]])
        else:
            kws = [kw for kw in e.keywords if kw.arg == "axis"]
            if kws:
                kws[0].value = call(sa, [kws[0].value])
            else:
                e.keywords.append(gast.keyword(arg="axis", value=const(1)))
        return e
    fw.loop_notes.append(f"batched: {getattr(fn, '__name__', fn)} loops over the basis")
    return gast.Call(func=name(fw.ref(batch_loop_at, "batch_loop_at")),
                     args=[e.func, const(pos)] + e.args, keywords=e.keywords)
