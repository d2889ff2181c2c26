"""The derivative rules: one vjp and one jvp per differentiable primitive, written once, here.

Both engines read this table. The tape (eager runtime) calls the rules on arrays, or on Tensors under
`create_graph=True`; the compiler inlines the same lambda bodies into the code it generates. So every
rule follows one format, which the compiler parses from this file's source:

    defrule("name",
            vjp=[<one lambda per positional argument, or None where it is not differentiable>],
            jvp=[<one lambda per positional argument, or None>])

    vjp lambda:  lambda g, ans, <args>, <static kwargs with defaults>: <cotangent of that argument>
    jvp lambda:  lambda t, ans, <args>, <static kwargs with defaults>: <tangent of the output>

`g` is the output cotangent, `t` the tangent of the one argument the lambda belongs to, `ans` the
primal output. A vjp result has the shape of its argument (broadcasting is summed away with `sum_to`);
a jvp result has the shape of `ans`. The total tangent is the sum over the arguments that have one.
Rule bodies use only primitives (exported by `primitives`), Python operators and the shape helpers
below, so they run on any namespace and are themselves differentiable: the second derivative is the
rule applied to itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from .primitives import *  # noqa: F403 -- the rule bodies are written in primitives
from .primitives import PRIMITIVES


@dataclass(frozen=True)
class Rule:
    """The rules of one primitive: per positional argument, a vjp and a jvp (None: not differentiable)."""

    name: str
    vjp: tuple[Callable[..., Any] | None, ...]
    jvp: tuple[Callable[..., Any] | None, ...]


RULES: dict[str, Rule] = {}


def defrule(name: str, vjp: list, jvp: list) -> None:
    if name not in PRIMITIVES:
        raise KeyError(f"rule for unknown primitive {name!r}")
    if len(vjp) != len(jvp):
        raise ValueError(f"{name}: vjp and jvp lists must have one entry per positional argument")
    RULES[name] = Rule(name, tuple(vjp), tuple(jvp))


# ------------------------------------------------------------------------------ shape helpers (no rules)
def kept_shape(xshape: tuple, axis: Any) -> tuple:
    """The shape a reduction over `axis` has with keepdims=True."""
    axes = normalize_axis(axis, len(xshape))  # noqa: F405
    return tuple(1 if i in axes else n for i, n in enumerate(xshape))


def keep(g: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """Re-insert the reduced axes into a reduction's output (or cotangent) so it broadcasts against x."""
    if keepdims:
        return g
    return reshape(g, shape=kept_shape(shape(x), axis))  # noqa: F405


def count(x: Any, axis: Any) -> int:
    """The number of elements a reduction over `axis` combines."""
    xshape = shape(x)  # noqa: F405
    return math.prod(xshape[i] for i in normalize_axis(axis, len(xshape)))  # noqa: F405


def unbroadcast(g: Any, x: Any) -> Any:
    """Sum a cotangent down to the shape of the argument it belongs to."""
    return sum_to(g, shape=shape(x))  # noqa: F405


def widen(t: Any, ans: Any) -> Any:
    """Broadcast a tangent up to the output's shape."""
    return broadcast_to(t, shape=shape(ans))  # noqa: F405


def inverse_permutation(axes: Any, ndim: int) -> tuple:
    axes = tuple(reversed(range(ndim))) if axes is None else tuple(a % ndim for a in axes)
    inv = [0] * ndim
    for i, a in enumerate(axes):
        inv[a] = i
    return tuple(inv)


SQRT_PI_2 = 2.0 / math.sqrt(math.pi)

# ruff: noqa: F405
# ====================================================================================== elementwise, unary
defrule("neg",
        vjp=[lambda g, ans, x: -g],
        jvp=[lambda t, ans, x: -t])
defrule("abs",
        vjp=[lambda g, ans, x: g * sign(x)],
        jvp=[lambda t, ans, x: t * sign(x)])
defrule("exp",
        vjp=[lambda g, ans, x: g * ans],
        jvp=[lambda t, ans, x: t * ans])
defrule("expm1",
        vjp=[lambda g, ans, x: g * (ans + 1.0)],
        jvp=[lambda t, ans, x: t * (ans + 1.0)])
defrule("log",
        vjp=[lambda g, ans, x: g / x],
        jvp=[lambda t, ans, x: t / x])
defrule("log1p",
        vjp=[lambda g, ans, x: g / (x + 1.0)],
        jvp=[lambda t, ans, x: t / (x + 1.0)])
defrule("log2",
        vjp=[lambda g, ans, x: g / (x * math.log(2.0))],
        jvp=[lambda t, ans, x: t / (x * math.log(2.0))])
defrule("log10",
        vjp=[lambda g, ans, x: g / (x * math.log(10.0))],
        jvp=[lambda t, ans, x: t / (x * math.log(10.0))])
defrule("sqrt",
        vjp=[lambda g, ans, x: g * 0.5 / ans],
        jvp=[lambda t, ans, x: t * 0.5 / ans])
defrule("square",
        vjp=[lambda g, ans, x: g * 2.0 * x],
        jvp=[lambda t, ans, x: t * 2.0 * x])
defrule("reciprocal",
        vjp=[lambda g, ans, x: -g * ans * ans],
        jvp=[lambda t, ans, x: -t * ans * ans])
defrule("sin",
        vjp=[lambda g, ans, x: g * cos(x)],
        jvp=[lambda t, ans, x: t * cos(x)])
defrule("cos",
        vjp=[lambda g, ans, x: -g * sin(x)],
        jvp=[lambda t, ans, x: -t * sin(x)])
defrule("tan",
        vjp=[lambda g, ans, x: g * (1.0 + ans * ans)],
        jvp=[lambda t, ans, x: t * (1.0 + ans * ans)])
defrule("arcsin",
        vjp=[lambda g, ans, x: g / sqrt(1.0 - x * x)],
        jvp=[lambda t, ans, x: t / sqrt(1.0 - x * x)])
defrule("arccos",
        vjp=[lambda g, ans, x: -g / sqrt(1.0 - x * x)],
        jvp=[lambda t, ans, x: -t / sqrt(1.0 - x * x)])
defrule("arctan",
        vjp=[lambda g, ans, x: g / (1.0 + x * x)],
        jvp=[lambda t, ans, x: t / (1.0 + x * x)])
defrule("sinh",
        vjp=[lambda g, ans, x: g * cosh(x)],
        jvp=[lambda t, ans, x: t * cosh(x)])
defrule("cosh",
        vjp=[lambda g, ans, x: g * sinh(x)],
        jvp=[lambda t, ans, x: t * sinh(x)])
defrule("tanh",
        vjp=[lambda g, ans, x: g * (1.0 - ans * ans)],
        jvp=[lambda t, ans, x: t * (1.0 - ans * ans)])
defrule("arcsinh",
        vjp=[lambda g, ans, x: g / sqrt(x * x + 1.0)],
        jvp=[lambda t, ans, x: t / sqrt(x * x + 1.0)])
defrule("arccosh",
        vjp=[lambda g, ans, x: g / sqrt(x * x - 1.0)],
        jvp=[lambda t, ans, x: t / sqrt(x * x - 1.0)])
defrule("arctanh",
        vjp=[lambda g, ans, x: g / (1.0 - x * x)],
        jvp=[lambda t, ans, x: t / (1.0 - x * x)])
defrule("sigmoid",
        vjp=[lambda g, ans, x: g * ans * (1.0 - ans)],
        jvp=[lambda t, ans, x: t * ans * (1.0 - ans)])
defrule("relu",
        vjp=[lambda g, ans, x: where(x > 0, g, 0.0 * g)],
        jvp=[lambda t, ans, x: where(x > 0, t, 0.0 * t)])
defrule("softplus",
        vjp=[lambda g, ans, x: g * sigmoid(x)],
        jvp=[lambda t, ans, x: t * sigmoid(x)])
defrule("erf",
        vjp=[lambda g, ans, x: g * SQRT_PI_2 * exp(-x * x)],
        jvp=[lambda t, ans, x: t * SQRT_PI_2 * exp(-x * x)])
defrule("astype",
        vjp=[lambda g, ans, x, dtype=None: astype(g, dtype=x.dtype) if hasattr(x, "dtype") else g],
        jvp=[lambda t, ans, x, dtype=None: astype(t, dtype=dtype)])

# ===================================================================================== elementwise, binary
defrule("add",
        vjp=[lambda g, ans, x, y: unbroadcast(g, x),
             lambda g, ans, x, y: unbroadcast(g, y)],
        jvp=[lambda t, ans, x, y: widen(t, ans),
             lambda t, ans, x, y: widen(t, ans)])
defrule("subtract",
        vjp=[lambda g, ans, x, y: unbroadcast(g, x),
             lambda g, ans, x, y: unbroadcast(-g, y)],
        jvp=[lambda t, ans, x, y: widen(t, ans),
             lambda t, ans, x, y: widen(-t, ans)])
defrule("multiply",
        vjp=[lambda g, ans, x, y: unbroadcast(g * y, x),
             lambda g, ans, x, y: unbroadcast(g * x, y)],
        jvp=[lambda t, ans, x, y: widen(t * y, ans),
             lambda t, ans, x, y: widen(x * t, ans)])
defrule("divide",
        vjp=[lambda g, ans, x, y: unbroadcast(g / y, x),
             lambda g, ans, x, y: unbroadcast(-g * ans / y, y)],
        jvp=[lambda t, ans, x, y: widen(t / y, ans),
             lambda t, ans, x, y: widen(-t * ans / y, ans)])
defrule("power",
        vjp=[lambda g, ans, x, y: unbroadcast(g * y * x ** (y - 1.0), x),
             lambda g, ans, x, y: unbroadcast(g * ans * log(where(x > 0, x, 1.0 + 0.0 * x)), y)],
        jvp=[lambda t, ans, x, y: widen(t * y * x ** (y - 1.0), ans),
             lambda t, ans, x, y: widen(t * ans * log(where(x > 0, x, 1.0 + 0.0 * x)), ans)])
defrule("maximum",
        vjp=[lambda g, ans, x, y: unbroadcast(g * balance(x, y), x),
             lambda g, ans, x, y: unbroadcast(g * balance(y, x), y)],
        jvp=[lambda t, ans, x, y: widen(t * balance(x, y), ans),
             lambda t, ans, x, y: widen(t * balance(y, x), ans)])
defrule("minimum",
        vjp=[lambda g, ans, x, y: unbroadcast(g * balance(y, x), x),
             lambda g, ans, x, y: unbroadcast(g * balance(x, y), y)],
        jvp=[lambda t, ans, x, y: widen(t * balance(y, x), ans),
             lambda t, ans, x, y: widen(t * balance(x, y), ans)])
defrule("arctan2",
        vjp=[lambda g, ans, y, x: unbroadcast(g * x / (x * x + y * y), y),
             lambda g, ans, y, x: unbroadcast(-g * y / (x * x + y * y), x)],
        jvp=[lambda t, ans, y, x: widen(t * x / (x * x + y * y), ans),
             lambda t, ans, y, x: widen(-t * y / (x * x + y * y), ans)])
defrule("hypot",
        vjp=[lambda g, ans, x, y: unbroadcast(g * x / ans, x),
             lambda g, ans, x, y: unbroadcast(g * y / ans, y)],
        jvp=[lambda t, ans, x, y: widen(t * x / ans, ans),
             lambda t, ans, x, y: widen(t * y / ans, ans)])
defrule("where",
        vjp=[None,
             lambda g, ans, c, x, y: unbroadcast(where(c, g, 0.0 * g), x),
             lambda g, ans, c, x, y: unbroadcast(where(c, 0.0 * g, g), y)],
        jvp=[None,
             lambda t, ans, c, x, y: widen(where(c, t, 0.0 * t), ans),
             lambda t, ans, c, x, y: widen(where(c, 0.0 * t, t), ans)])
defrule("clip",
        vjp=[lambda g, ans, x, min=None, max=None: g * inside(x, min, max)],
        jvp=[lambda t, ans, x, min=None, max=None: t * inside(x, min, max)])

# ============================================================================================ reductions
defrule("sum",
        vjp=[lambda g, ans, x, axis=None, keepdims=False: broadcast_to(keep(g, x, axis, keepdims),
                                                                       shape=shape(x))],
        jvp=[lambda t, ans, x, axis=None, keepdims=False: sum(t, axis=axis, keepdims=keepdims)])
defrule("mean",
        vjp=[lambda g, ans, x, axis=None, keepdims=False: broadcast_to(keep(g, x, axis, keepdims),
                                                                       shape=shape(x)) / count(x, axis)],
        jvp=[lambda t, ans, x, axis=None, keepdims=False: mean(t, axis=axis, keepdims=keepdims)])
defrule("max",
        vjp=[lambda g, ans, x, axis=None, keepdims=False: keep(g, x, axis, keepdims) * argmax_share(
            x, keep(ans, x, axis, keepdims), axis)],
        jvp=[lambda t, ans, x, axis=None, keepdims=False: sum(t * argmax_share(
            x, keep(ans, x, axis, keepdims), axis), axis=axis, keepdims=keepdims)])
defrule("min",
        vjp=[lambda g, ans, x, axis=None, keepdims=False: keep(g, x, axis, keepdims) * argmax_share(
            x, keep(ans, x, axis, keepdims), axis)],
        jvp=[lambda t, ans, x, axis=None, keepdims=False: sum(t * argmax_share(
            x, keep(ans, x, axis, keepdims), axis), axis=axis, keepdims=keepdims)])

# ================================================================================= shapes and broadcasting
defrule("reshape",
        vjp=[lambda g, ans, x, shape=None: reshape(g, shape=shape_of(x))],
        jvp=[lambda t, ans, x, shape=None: reshape(t, shape=shape_of(ans))])
defrule("broadcast_to",
        vjp=[lambda g, ans, x, shape=None: sum_to(g, shape=shape_of(x))],
        jvp=[lambda t, ans, x, shape=None: broadcast_to(t, shape=shape_of(ans))])
defrule("sum_to",
        vjp=[lambda g, ans, x, shape=None: broadcast_to(g, shape=shape_of(x))],
        jvp=[lambda t, ans, x, shape=None: sum_to(t, shape=shape_of(ans))])
defrule("expand_dims",
        vjp=[lambda g, ans, x, axis=0: reshape(g, shape=shape_of(x))],
        jvp=[lambda t, ans, x, axis=0: reshape(t, shape=shape_of(ans))])
defrule("squeeze",
        vjp=[lambda g, ans, x, axis=None: reshape(g, shape=shape_of(x))],
        jvp=[lambda t, ans, x, axis=None: reshape(t, shape=shape_of(ans))])
defrule("transpose",
        vjp=[lambda g, ans, x, axes=None: transpose(g, axes=inverse_permutation(axes, ndim(x)))],
        jvp=[lambda t, ans, x, axes=None: transpose(t, axes=axes)])
defrule("getitem",
        vjp=[lambda g, ans, x, index=None: index_add(zeros_like(x), g, index=index)],
        jvp=[lambda t, ans, x, index=None: getitem(t, index=index)])
defrule("index_update",
        vjp=[lambda g, ans, x, v, index=None: index_update(g, 0.0 * getitem(g, index=index), index=index),
             lambda g, ans, x, v, index=None: unbroadcast(getitem(g, index=index), v)],
        jvp=[lambda t, ans, x, v, index=None: index_update(t, 0.0 * getitem(t, index=index), index=index),
             lambda t, ans, x, v, index=None: index_update(0.0 * ans, t, index=index)])
defrule("index_add",
        vjp=[lambda g, ans, x, v, index=None: g,
             lambda g, ans, x, v, index=None: unbroadcast(getitem(g, index=index), v)],
        jvp=[lambda t, ans, x, v, index=None: t,
             lambda t, ans, x, v, index=None: index_add(0.0 * ans, t, index=index)])


# ------------------------------------------------------------------------ helpers the rules above share
def shape_of(x: Any) -> tuple:
    """`shape(x)` under a name that does not collide with a static `shape=` parameter."""
    return shape(x)


def balance(x: Any, y: Any) -> Any:
    """d max(x, y)/dx: 1 where x wins, 0 where y wins, 1/2 on a tie (the subgradient split evenly)."""
    return where(x > y, 1.0, where(x == y, 0.5, 0.0)) * ones_like(x)


def inside(x: Any, lo: Any, hi: Any) -> Any:
    """d clip(x, lo, hi)/dx: 1 inside the bounds, 0 outside (bounds themselves count as inside)."""
    m = ones_like(x)
    if lo is not None:
        m = where(x >= lo, m, 0.0 * m)
    if hi is not None:
        m = where(x <= hi, m, 0.0 * m)
    return m


def argmax_share(x: Any, extreme: Any, axis: Any) -> Any:
    """The share of a max/min reduction's cotangent each element gets: ties split the gradient evenly."""
    hit = where(x == extreme, 1.0 + 0.0 * x, 0.0 * x)
    return hit / sum(hit, axis=axis, keepdims=True)
