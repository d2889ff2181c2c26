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
primal output.

Variadic primitives (`concatenate(*arrays, axis=0)`, `stack`, `einsum(*operands, subscripts=...)`) are
declared with `variadic=True` and ONE lambda in each list, which receives all the positional arguments
as `*xs` and the index of the argument it differentiates as the keyword-only `argnum`:

    defrule("concatenate", variadic=True,
            vjp=[lambda g, ans, *xs, argnum, axis=0: ...],
            jvp=[lambda t, ans, *xs, argnum, axis=0: ...])

`Rule.vjp_for(i)` / `Rule.jvp_for(i)` hide the difference: they return the rule for argument i (None
where it has none) with the signature `(g_or_t, ans, *args, **static_kwargs)` in both cases.

`not_lazy="<reason>"` marks a rule that cannot run lazily on a Dask array (it computes a value, or
needs an operation dask.array lacks); every other rule builds a Dask graph and computes nothing.
`tests/runtime/test_dask.py` runs the whole table on Dask arrays and holds each rule to its mark.

A vjp result has the shape of its argument (broadcasting is summed away with `sum_to`); a jvp result
has the shape of `ans`. The total tangent is the sum over the arguments that have one. Rule bodies
use only primitives (exported by `primitives`), Python operators and the shape helpers below, so
they run on any namespace and are themselves differentiable: the second derivative is the rule
applied to itself.
"""

from __future__ import annotations

import builtins
import functools
import math
import string
from dataclasses import dataclass
from typing import Any, Callable

from .backend import is_scalar
from .primitives import *  # noqa: F403 -- the rule bodies are written in primitives
from .primitives import PRIMITIVES, helper, pad_pairs


@dataclass(frozen=True)
class Rule:
    """The rules of one primitive: per positional argument, a vjp and a jvp (None: not differentiable)."""

    name: str
    vjp: tuple[Callable[..., Any] | None, ...]
    jvp: tuple[Callable[..., Any] | None, ...]
    variadic: bool = False
    not_lazy: str | None = None  # why the rules cannot run lazily on Dask arrays; None: they do

    def vjp_for(self, argnum: int) -> Callable[..., Any] | None:
        """The vjp rule of positional argument `argnum`: `(g, ans, *args, **kwargs) -> cotangent`."""
        return self._for(self.vjp, argnum)

    def jvp_for(self, argnum: int) -> Callable[..., Any] | None:
        """The jvp rule of positional argument `argnum`: `(t, ans, *args, **kwargs) -> output tangent`."""
        return self._for(self.jvp, argnum)

    def _for(self, rules: tuple, argnum: int) -> Callable[..., Any] | None:
        if self.variadic:
            return None if rules[0] is None else functools.partial(rules[0], argnum=argnum)
        return rules[argnum] if argnum < len(rules) else None


# name -> rule: the same objects the records hold (`PRIMITIVES[name].rule`), by name for the stages
# that look a rule up from a primitive's name
RULES: dict[str, Rule] = {}


def defrule(name: str, vjp: list, jvp: list, variadic: bool = False, not_lazy: str | None = None) -> None:
    """Attach the vjp and jvp rules to primitive `name`'s record (see the module docstring's format)."""
    if name not in PRIMITIVES:
        raise KeyError(f"rule for unknown primitive {name!r}")
    if len(vjp) != len(jvp):
        raise ValueError(f"{name}: vjp and jvp lists must have one entry per positional argument")
    if variadic and len(vjp) != 1:
        raise ValueError(f"{name}: a variadic rule has one lambda taking *xs and argnum")
    RULES[name] = PRIMITIVES[name].rule = Rule(name, tuple(vjp), tuple(jvp), variadic, not_lazy)


# ------------------------------------------------------------------------------ shape helpers (no rules)
def kept_shape(xshape: tuple, axis: Any) -> tuple:
    """The shape a reduction over `axis` has with keepdims=True."""
    axes = normalize_axis(axis, len(xshape))  # noqa: F405
    return tuple(1 if i in axes else n for i, n in enumerate(xshape))


def keep(g: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """Re-insert the reduced axes into a reduction's output (or cotangent) so it broadcasts against x.
    A reduction over every axis (axis None) gives one number, which broadcasts as it is."""
    if keepdims or axis is None:
        return g
    return reshape(g, shape=kept_shape(shape(x), axis))  # noqa: F405


def count(x: Any, axis: Any) -> int:
    """The number of elements a reduction over `axis` combines."""
    xshape = shape(x)  # noqa: F405
    return math.prod(xshape[i] for i in normalize_axis(axis, len(xshape)))  # noqa: F405


def unbroadcast(g: Any, x: Any) -> Any:
    """Sum a cotangent down to the shape of the argument it belongs to (`sum_to` returns g itself when
    the shapes agree). One expression, so the compiler inlines it into generated code, which keeps
    generated code differentiable again (grad of grad)."""
    return sum_to(g, shape=shape(x))  # noqa: F405


def widen(t: Any, ans: Any) -> Any:
    """Broadcast a tangent up to the output's shape (a Python-float tangent takes ans's namespace)."""
    if getattr(t, "shape", ()) == getattr(ans, "shape", ()):
        return t
    if is_scalar(t) and not is_scalar(ans):
        return t * ones_like(ans)  # noqa: F405
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
defrule("copy",
        vjp=[lambda g, ans, x: g],
        jvp=[lambda t, ans, x: t])
defrule("item",
        vjp=[lambda g, ans, x: zeros_like(x) + g],
        jvp=[lambda t, ans, x: item(t)],
        not_lazy="its value is a Python number: the element is computed")
defrule("to_float",
        vjp=[lambda g, ans, x: zeros_like(x) + g],
        jvp=[lambda t, ans, x: to_float(t)],
        not_lazy="its value is a Python number: the element is computed")
defrule("abs",  # complex x: see abs_vjp
        vjp=[lambda g, ans, x: abs_vjp(g, ans, x)],
        jvp=[lambda t, ans, x: abs_jvp(t, ans, x)])
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
defrule("cbrt",
        vjp=[lambda g, ans, x: g / (3.0 * ans * ans)],
        jvp=[lambda t, ans, x: t / (3.0 * ans * ans)])
defrule("sigmoid",
        vjp=[lambda g, ans, x: g * ans * (1.0 - ans)],
        jvp=[lambda t, ans, x: t * ans * (1.0 - ans)])
defrule("relu",  # reads its output, not its input (as PyTorch does: an in-place change of x is fine)
        vjp=[lambda g, ans, x: where(ans > 0, g, 0.0 * g)],
        jvp=[lambda t, ans, x: where(ans > 0, t, 0.0 * t)])
defrule("softplus",
        vjp=[lambda g, ans, x: g * sigmoid(x)],
        jvp=[lambda t, ans, x: t * sigmoid(x)])
defrule("erf",
        vjp=[lambda g, ans, x: g * SQRT_PI_2 * exp(-x * x)],
        jvp=[lambda t, ans, x: t * SQRT_PI_2 * exp(-x * x)])
defrule("lgamma",
        vjp=[lambda g, ans, x: g * polygamma(x)],
        jvp=[lambda t, ans, x: t * polygamma(x)])
defrule("polygamma",  # psi^(n)' = psi^(n+1): each order's rule is the next order
        vjp=[lambda g, ans, x, n=0: g * polygamma(x, n=n + 1)],
        jvp=[lambda t, ans, x, n=0: t * polygamma(x, n=n + 1)])
defrule("astype",
        vjp=[lambda g, ans, x, dtype=None, copy=True: cast_back(g, x, dtype)],
        jvp=[lambda t, ans, x, dtype=None, copy=True: cast_forward(t, ans, dtype)])

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
defrule("power",  # d x**y/dx = y x**(y-1), written so that y = 0 gives 0 at x = 0 too (x**0 is 1)
        vjp=[lambda g, ans, x, y: unbroadcast(
                 g * where(y == 0, 0.0, y) * x ** where(y == 0, 1.0, y - 1.0), x),
             lambda g, ans, x, y: unbroadcast(g * ans * log(where(x > 0, x, 1.0 + 0.0 * x)), y)],
        jvp=[lambda t, ans, x, y: widen(t * where(y == 0, 0.0, y) * x ** where(y == 0, 1.0, y - 1.0), ans),
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
defrule("logaddexp",
        vjp=[lambda g, ans, x, y: unbroadcast(g * exp(x - ans), x),
             lambda g, ans, x, y: unbroadcast(g * exp(y - ans), y)],
        jvp=[lambda t, ans, x, y: widen(t * exp(x - ans), ans),
             lambda t, ans, x, y: widen(t * exp(y - ans), ans)])
defrule("remainder",
        vjp=[lambda g, ans, x, y: unbroadcast(g, x),
             lambda g, ans, x, y: unbroadcast(-g * quotient(x, y, ans), y)],
        jvp=[lambda t, ans, x, y: widen(t, ans),
             lambda t, ans, x, y: widen(-t * quotient(x, y, ans), ans)])
defrule("fmod",  # fmod(x, y) = x - k y with k = trunc(x / y), an integer: remainder's rules
        vjp=[lambda g, ans, x, y: unbroadcast(g, x),
             lambda g, ans, x, y: unbroadcast(-g * quotient(x, y, ans), y)],
        jvp=[lambda t, ans, x, y: widen(t, ans),
             lambda t, ans, x, y: widen(-t * quotient(x, y, ans), ans)])
defrule("where",
        vjp=[None,
             lambda g, ans, c, x, y: unbroadcast(where(c, g, 0.0), x),
             lambda g, ans, c, x, y: unbroadcast(where(c, 0.0, g), y)],
        jvp=[None,
             lambda t, ans, c, x, y: where(c, widen(t, ans), 0.0),
             lambda t, ans, c, x, y: where(c, 0.0, widen(t, ans))])
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

defrule("prod",
        vjp=[lambda g, ans, x, axis=None, keepdims=False: keep(g, x, axis, keepdims) * prod_others(x, axis)],
        jvp=[lambda t, ans, x, axis=None, keepdims=False: sum(t * prod_others(x, axis), axis=axis,
                                                              keepdims=keepdims)],
        not_lazy="computes one bool per use, whether x holds a zero (prod / x is exact only without)")
defrule("var",
        vjp=[lambda g, ans, x, axis=None, ddof=0, keepdims=False: keep(g, x, axis, keepdims) * 2.0 * (
            x - mean(x, axis=axis, keepdims=True)) / (count(x, axis) - ddof)],
        jvp=[lambda t, ans, x, axis=None, ddof=0, keepdims=False: sum(t * 2.0 * (
            x - mean(x, axis=axis, keepdims=True)), axis=axis, keepdims=keepdims) / (count(x, axis) - ddof)])
defrule("std",
        vjp=[lambda g, ans, x, axis=None, ddof=0, keepdims=False: keep(g / ans, x, axis, keepdims) * (
            x - mean(x, axis=axis, keepdims=True)) / (count(x, axis) - ddof)],
        jvp=[lambda t, ans, x, axis=None, ddof=0, keepdims=False: sum(t * (
            x - mean(x, axis=axis, keepdims=True)), axis=axis, keepdims=keepdims) / (
            ans * (count(x, axis) - ddof))])
defrule("norm",
        vjp=[lambda g, ans, x, ord=2, axis=None, keepdims=False: keep(g, x, axis, keepdims) * norm_partial(
            x, keep(ans, x, axis, keepdims), ord, axis)],
        jvp=[lambda t, ans, x, ord=2, axis=None, keepdims=False: sum(t * norm_partial(
            x, keep(ans, x, axis, keepdims), ord, axis), axis=axis, keepdims=keepdims)])
defrule("logsumexp",
        vjp=[lambda g, ans, x, axis=None, keepdims=False: keep(g, x, axis, keepdims) * exp(
            x - keep(ans, x, axis, keepdims))],
        jvp=[lambda t, ans, x, axis=None, keepdims=False: sum(t * exp(x - keep(ans, x, axis, keepdims)),
                                                              axis=axis, keepdims=keepdims)])
defrule("softmax",
        vjp=[lambda g, ans, x, axis=-1: ans * (g - sum(g * ans, axis=axis, keepdims=True))],
        jvp=[lambda t, ans, x, axis=-1: ans * (t - sum(t * ans, axis=axis, keepdims=True))])
defrule("log_softmax",
        vjp=[lambda g, ans, x, axis=-1: g - exp(ans) * sum(g, axis=axis, keepdims=True)],
        jvp=[lambda t, ans, x, axis=-1: t - sum(exp(ans) * t, axis=axis, keepdims=True)])
defrule("sort",
        vjp=[lambda g, ans, x, axis=-1: take_along(g, argsort(argsort(x, axis=axis), axis=axis), axis)],
        jvp=[lambda t, ans, x, axis=-1: take_along(t, argsort(x, axis=axis), axis)],
        not_lazy="over 2 or more axes: gathers by a 2-d integer array, an index dask.array does not take")
defrule("cumsum",
        vjp=[lambda g, ans, x, axis=0: reverse_cumsum(g, axis)],
        jvp=[lambda t, ans, x, axis=0: cumsum(t, axis=axis)])
defrule("cumprod",
        vjp=[lambda g, ans, x, axis=0: cumprod_vjp(g, ans, x, axis)],
        jvp=[lambda t, ans, x, axis=0: cumprod_jvp(t, ans, x, axis)],
        not_lazy="computes one bool per use, whether x holds a zero (dividing by x is exact only without)")

# ========================================================================================= linear algebra
defrule("matmul",
        vjp=[lambda g, ans, a, b: matmul_vjp_a(g, a, b),
             lambda g, ans, a, b: matmul_vjp_b(g, a, b)],
        jvp=[lambda t, ans, a, b: matmul(t, b),
             lambda t, ans, a, b: matmul(a, t)])
defrule("einsum", variadic=True,
        vjp=[lambda g, ans, *xs, argnum, subscripts=None: einsum_vjp(g, xs, argnum, subscripts)],
        jvp=[lambda t, ans, *xs, argnum, subscripts=None: einsum(
            *replace_at(xs, argnum, t), subscripts=subscripts)])
defrule("diagonal",
        vjp=[lambda g, ans, x, offset=0, axis1=0, axis2=1: undiagonal(g, x, offset, axis1, axis2)],
        jvp=[lambda t, ans, x, offset=0, axis1=0, axis2=1: diagonal(t, offset=offset, axis1=axis1,
                                                                    axis2=axis2)])
defrule("tril",
        vjp=[lambda g, ans, x, k=0: tril(g, k=k)],
        jvp=[lambda t, ans, x, k=0: tril(t, k=k)])
defrule("triu",
        vjp=[lambda g, ans, x, k=0: triu(g, k=k)],
        jvp=[lambda t, ans, x, k=0: triu(t, k=k)])
defrule("inv",
        vjp=[lambda g, ans, a: -matmul(matmul(mT(ans), g), mT(ans))],
        jvp=[lambda t, ans, a: -matmul(matmul(ans, t), ans)])
defrule("solve",
        vjp=[lambda g, ans, a, b: unbroadcast(-matmul(solve(mT(a), as_column(g, b)),
                                                      mT(as_column(ans, b))), a),
             lambda g, ans, a, b: unbroadcast(from_column(solve(mT(a), as_column(g, b)), b), b)],
        jvp=[lambda t, ans, a, b: -from_column(solve(a, matmul(t, as_column(ans, b))), b),
             lambda t, ans, a, b: from_column(solve(a, as_column(t, b)), b)])
defrule("det",
        vjp=[lambda g, ans, a: expand_dims(g * ans, axis=(-2, -1)) * mT(inv(a))],
        jvp=[lambda t, ans, a: ans * trace_last(solve(a, t))])
defrule("logabsdet",
        vjp=[lambda g, ans, a: expand_dims(g, axis=(-2, -1)) * mT(inv(a))],
        jvp=[lambda t, ans, a: trace_last(solve(a, t))])
defrule("eigvalsh",  # a symmetric input: dw = diag(V^T dA V), the adjoint V diag(g) V^T
        vjp=[lambda g, ans, a: matmul(eigvecsh(a) * expand_dims(g, axis=-2), mT(eigvecsh(a)))],
        jvp=[lambda t, ans, a: sum(eigvecsh(a) * matmul(sym(t), eigvecsh(a)), axis=-2)],
        not_lazy="dask.array has no eigh / eigvalsh")
defrule("eigvecsh",  # dV = V (F * V^T dA V), F[i, j] = 1 / (w[j] - w[i]) off the diagonal; repeated
        # eigenvalues make F infinite, as in JAX and PyTorch
        vjp=[lambda g, ans, a: sym(matmul(matmul(ans, eigen_gaps(a) * matmul(mT(ans), g)), mT(ans)))],
        jvp=[lambda t, ans, a: matmul(ans, eigen_gaps(a) * matmul(mT(ans), matmul(sym(t), ans)))],
        not_lazy="dask.array has no eigh / eigvalsh")
defrule("cholesky",
        vjp=[lambda g, ans, a: cholesky_vjp(g, ans)],
        jvp=[lambda t, ans, a: matmul(ans, phi(matmul(matmul(inv(ans), sym(t)), mT(inv(ans)))))])
defrule("svd_s",  # dS = diag(U^T dA V); the adjoint U diag(g) V^T
        vjp=[lambda g, ans, a: matmul(svd_u(a) * expand_dims(g, axis=-2), svd_vh(a))],
        jvp=[lambda t, ans, a: diagonal(matmul(matmul(mT(svd_u(a)), t), mT(svd_vh(a))), axis1=-2, axis2=-1)],
        not_lazy="dask.array's svd takes only tall-and-skinny chunks; the Dask namespace has none")
defrule("svd_u",  # distinct nonzero singular values: the rule divides by their gaps and by them
        vjp=[lambda g, ans, a: svd_u_vjp(g, ans, a)],
        jvp=[lambda t, ans, a: svd_u_jvp(t, ans, a)],
        not_lazy="dask.array's svd takes only tall-and-skinny chunks; the Dask namespace has none")
defrule("svd_vh",
        vjp=[lambda g, ans, a: svd_vh_vjp(g, ans, a)],
        jvp=[lambda t, ans, a: svd_vh_jvp(t, ans, a)],
        not_lazy="dask.array's svd takes only tall-and-skinny chunks; the Dask namespace has none")
defrule("qr_q",  # m >= n, full rank (qr_check refuses the rest)
        vjp=[lambda g, ans, a: qr_q_vjp(g, ans, a)],
        jvp=[lambda t, ans, a: qr_q_jvp(t, ans, a)],
        not_lazy="dask.array's qr takes only tall-and-skinny chunks; the Dask namespace has none")
defrule("qr_r",
        vjp=[lambda g, ans, a: qr_r_vjp(g, ans, a)],
        jvp=[lambda t, ans, a: matmul(qr_upper(qr_c(t, a)), ans)],
        not_lazy="dask.array's qr takes only tall-and-skinny chunks; the Dask namespace has none")

# ========================================================================= complex values and the FFT
# Complex cotangents follow JAX's convention: the cotangent of a complex z (for a real loss L) is
# dL/dRe z - i dL/dIm z, the conjugate of PyTorch's z.grad. So a holomorphic primitive's rule is its real
# rule unchanged (multiply's g * y, matmul's, exp's g * ans, ...), and only functions that are not
# holomorphic (real, imag, conj, abs, irfft) need their own. A real input's cotangent is the real part
# (the fft family takes it; the tape casts a leaf's gradient to its dtype).
defrule("real",
        vjp=[lambda g, ans, x: real(g)],
        jvp=[lambda t, ans, x: real(t)])
defrule("imag",
        vjp=[lambda g, ans, x: imag_vjp(g, x)],
        jvp=[lambda t, ans, x: imag(t)])
defrule("conj",
        vjp=[lambda g, ans, x: conj(g)],
        jvp=[lambda t, ans, x: conj(t)])
defrule("fft",  # the DFT matrix is symmetric: the adjoint is the same transform
        vjp=[lambda g, ans, x, n=None, axis=-1, norm=None: real_like(fit_length(
            fft(g, axis=axis, norm=norm), x, axis), x)],
        jvp=[lambda t, ans, x, n=None, axis=-1, norm=None: fft(t, n=n, axis=axis, norm=norm)])
defrule("ifft",
        vjp=[lambda g, ans, x, n=None, axis=-1, norm=None: real_like(fit_length(
            ifft(g, axis=axis, norm=norm), x, axis), x)],
        jvp=[lambda t, ans, x, n=None, axis=-1, norm=None: ifft(t, n=n, axis=axis, norm=norm)])
defrule("rfft",  # the kept half of the fft: zero-pad the cotangent back to the full length
        vjp=[lambda g, ans, x, n=None, axis=-1, norm=None: real(fit_length(fft(fit_to(
            g, fft_length(x, n, axis), axis), axis=axis, norm=norm), x, axis))],
        jvp=[lambda t, ans, x, n=None, axis=-1, norm=None: rfft(t, n=n, axis=axis, norm=norm)])
defrule("irfft",  # real-linear in x: y = Re(A x), the adjoint A^T g (see irfft_vjp)
        vjp=[lambda g, ans, x, n=None, axis=-1, norm=None: real_like(irfft_vjp(g, ans, x, axis, norm), x)],
        jvp=[lambda t, ans, x, n=None, axis=-1, norm=None: irfft(t, n=irfft_length(x, n, axis), axis=axis,
                                                               norm=norm)])

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
defrule("concatenate", variadic=True,
        vjp=[lambda g, ans, *xs, argnum, axis=0: getitem(g, index=concat_index(xs, argnum, axis))],
        jvp=[lambda t, ans, *xs, argnum, axis=0: pad(t, pad_width=concat_pads(xs, argnum, axis))])
defrule("stack", variadic=True,
        vjp=[lambda g, ans, *xs, argnum, axis=0: getitem(g, index=stack_index(ans, argnum, axis))],
        jvp=[lambda t, ans, *xs, argnum, axis=0: pad(expand_dims(t, axis=axis % ndim(ans)),
                                                     pad_width=stack_pads(ans, argnum, axis))])
defrule("flip",
        vjp=[lambda g, ans, x, axis=None: flip(g, axis=axis)],
        jvp=[lambda t, ans, x, axis=None: flip(t, axis=axis)])
defrule("roll",
        vjp=[lambda g, ans, x, shift=0, axis=None: roll(g, shift=negated(shift), axis=axis)],
        jvp=[lambda t, ans, x, shift=0, axis=None: roll(t, shift=shift, axis=axis)])
defrule("tile",
        vjp=[lambda g, ans, x, reps=(): untile(g, x, reps)],
        jvp=[lambda t, ans, x, reps=(): tile(t, reps=reps)])
defrule("repeat",
        vjp=[lambda g, ans, x, repeats=1, axis=None: unrepeat(g, x, repeats, axis)],
        jvp=[lambda t, ans, x, repeats=1, axis=None: repeat(t, repeats=repeats, axis=axis)])
defrule("pad",
        vjp=[lambda g, ans, x, pad_width=0, value=0.0: getitem(g, index=unpad_index(x, pad_width))],
        jvp=[lambda t, ans, x, pad_width=0, value=0.0: pad(t, pad_width=pad_width, value=0.0)])
defrule("getitem",
        vjp=[lambda g, ans, x, index=None: index_add(zeros_like(x), g, index=index)],
        jvp=[lambda t, ans, x, index=None: getitem(t, index=index)],
        not_lazy="the vjp of an integer-array index needs add.at (index_add), which dask.array lacks "
                 "(refused); a boolean mask selects an unknown length on Dask, which cannot be scattered "
                 "back")
defrule("index_update",
        vjp=[lambda g, ans, x, v, index=None: index_update(g, 0.0, index=index),
             lambda g, ans, x, v, index=None: unbroadcast(surviving(getitem(g, index=index), x, index), v)
             * holds_floats(x)],
        jvp=[lambda t, ans, x, v, index=None: index_update(t, 0.0, index=index),
             lambda t, ans, x, v, index=None: index_update(0.0 * ans, t * holds_floats(x), index=index)])
defrule("index_add",
        vjp=[lambda g, ans, x, v, index=None: g,
             lambda g, ans, x, v, index=None: unbroadcast(getitem(g, index=index), v)],
        jvp=[lambda t, ans, x, v, index=None: t,
             lambda t, ans, x, v, index=None: index_add(0.0 * ans, t, index=index)],
        not_lazy="with integer-array indices, repeated positions must accumulate (add.at), which "
                 "dask.array lacks: refused rather than added once")


# ------------------------------------------------------------------------ helpers the rules above share
def shape_of(x: Any) -> tuple:
    """`shape(x)` under a name that does not collide with a static `shape=` parameter."""
    return shape(x)


def balance(x: Any, y: Any) -> Any:
    """d max(x, y)/dx: 1 where x wins, 0 where y wins, 1/2 on a tie (the subgradient split evenly)."""
    return 0.5 * (sign(x - y) + 1.0)


def take_along(v: Any, order: Any, axis: int) -> Any:
    """v gathered along axis by `order` (take_along_axis), as one getitem of the flattened v, so its
    own rules (a scatter-add back) carry higher derivatives. sort's jvp gathers by the sorting
    permutation; its vjp by the inverse permutation (the ranks), which is the scatter back."""
    return getitem(reshape(v, shape=(-1,)), index=flat_along_axis(order, axis=axis))


def quotient(x: Any, y: Any, ans: Any) -> Any:
    """The integer k of `remainder(x, y) = x - k y` (d remainder/dy = -k), read off the result itself
    so it agrees with the namespace's own rounding; piecewise constant."""
    return round((x - ans) / y)


def inside(x: Any, lo: Any, hi: Any) -> Any:
    """d clip(x, lo, hi)/dx: 1 inside the bounds, 0 outside (bounds themselves count as inside)."""
    m = ones_like(x)
    if lo is not None:
        m = where(x >= lo, m, 0.0 * m)
    if hi is not None:
        m = where(x <= hi, m, 0.0 * m)
    return m


def argmax_share(x: Any, extreme: Any, axis: Any) -> Any:
    """The share of a max/min reduction's cotangent each element gets: ties split the gradient evenly.

    The 1/0 mask is built from ones_like/zeros_like, not `1.0 + 0.0 * x`: x may hold -inf (a masked
    attention score, `where(mask, s, -inf)`), and `0.0 * -inf` is NaN."""
    hit = where(x == extreme, ones_like(x), zeros_like(x))
    return hit / sum(hit, axis=axis, keepdims=True)


def prod_others(x: Any, axis: Any) -> Any:
    """d prod(x)/dx: the product of the other elements of each reduced group, exact with zeros.

    Without zeros this is prod/x. With zeros (one or several) it is the product of the exclusive prefix
    and suffix products, from cumprod along the reduced axes flattened into one; cumprod's own rule is
    exact with zeros, so the second derivative is exact too."""
    if is_scalar(x):
        return 1.0
    if not has_zero(x):
        return prod(x, axis=axis, keepdims=True) / x
    nd = ndim(x)
    axes = normalize_axis(axis, nd)
    rest = tuple(i for i in range(nd) if i not in axes)
    perm = rest + axes
    xs = shape_of(x)
    moved = reshape(transpose(x, axes=perm), shape=tuple(xs[i] for i in rest) + (-1,))
    ones = ones_like(getitem(moved, index=(Ellipsis, slice(0, 1))))
    before = cumprod(concatenate(ones, getitem(moved, index=(Ellipsis, slice(0, -1))), axis=-1), axis=-1)
    after = flip(cumprod(concatenate(ones, getitem(flip(moved, axis=-1), index=(Ellipsis, slice(0, -1))),
                                     axis=-1), axis=-1), axis=-1)
    others = reshape(before * after, shape=tuple(xs[i] for i in perm))
    return transpose(others, axes=inverse_permutation(perm, nd))


def has_zero(x: Any) -> bool:
    return bool(any(equal(x, 0.0)))


def reverse_cumsum(g: Any, axis: int) -> Any:
    """out[i] = sum_{k >= i} g[k]: the adjoint of cumsum."""
    return flip(cumsum(flip(g, axis=axis), axis=axis), axis=axis)


def to_last(x: Any, axis: int) -> Any:
    nd = ndim(x)
    a = axis % nd
    return transpose(x, axes=tuple(i for i in range(nd) if i != a) + (a,))


def from_last(y: Any, axis: int) -> Any:
    nd = ndim(y)
    a = axis % nd
    return transpose(y, axes=inverse_permutation(tuple(i for i in range(nd) if i != a) + (a,), nd))


def cumprod_matrix(x: Any, axis: int) -> Any:
    """E[..., i, k] = d cumprod(x)[k] / d x[i] = prod_{j <= k, j != i} x[j] for i <= k, else 0,
    with `axis` moved last. O(n^2): used only when x has zeros, where dividing by x is impossible."""
    xm = to_last(x, axis)
    n = shape_of(xm)[-1]
    eye = eye_like(x, n=n, m=n)
    rows = expand_dims(xm, axis=-2) * (1.0 - eye) + eye  # row i: x with x[i] replaced by 1
    return triu(cumprod(rows, axis=-1))


def cumprod_vjp(g: Any, ans: Any, x: Any, axis: int) -> Any:
    if not has_zero(x):
        return reverse_cumsum(g * ans, axis) / x
    e = cumprod_matrix(x, axis)
    return from_last(sum(e * expand_dims(to_last(g, axis), axis=-2), axis=-1), axis)


def cumprod_jvp(t: Any, ans: Any, x: Any, axis: int) -> Any:
    if not has_zero(x):
        return ans * cumsum(t / x, axis=axis)
    e = cumprod_matrix(x, axis)
    return from_last(sum(e * expand_dims(to_last(t, axis), axis=-1), axis=-2), axis)


def safe_divisor(d: Any) -> Any:
    """d with zeros replaced by ones: for 0/0 cases whose limit the rule defines as 0."""
    return where(equal(d, 0.0), 1.0, d)


def norm_partial(x: Any, n: Any, ord: Any, axis: Any) -> Any:
    """d norm(x)/dx for each element, `n` the norm with reduced axes kept. At a zero vector the
    (sub)gradient is taken as 0, as PyTorch does."""
    if ord == 2:
        return x / safe_divisor(n)
    if ord == 1:
        return sign(x)
    if ord == math.inf or ord == -math.inf:
        return sign(x) * argmax_share(abs(x), n, axis)
    return sign(x) * (abs(x) / safe_divisor(n)) ** (ord - 1.0)


def mT(x: Any) -> Any:
    """Swap the last two axes (matrix transpose, batched)."""
    nd = ndim(x)
    return transpose(x, axes=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def matmul_vjp_a(g: Any, a: Any, b: Any) -> Any:
    na, nb = ndim(a), ndim(b)
    if na == 1 and nb == 1:
        return g * b
    if na == 2 and nb == 1:  # a (m, k), b (k,), g (m,): the outer product is a's shape, nothing to sum
        return expand_dims(g, axis=-1) * b
    if na == 1 and nb > 2:  # a (k,), b (..., k, n), g (..., n)
        return unbroadcast(squeeze(matmul(b, expand_dims(g, axis=-1)), axis=-1), a)
    if nb == 1:  # a (..., m, k), b (k,), g (..., m)
        return unbroadcast(expand_dims(g, axis=-1) * b, a)
    return unbroadcast(matmul(g, mT(b)), a)  # (a 1-d and b 2-d: g (n,) @ bᵀ (n, k) is a's (k,))


def matmul_vjp_b(g: Any, a: Any, b: Any) -> Any:
    na, nb = ndim(a), ndim(b)
    if na == 1 and nb == 1:
        return g * a
    if nb == 1 and na == 2:  # a (m, k), b (k,), g (m,): g @ a is b's (k,)
        return matmul(g, a)
    if nb == 1:  # a (..., m, k), b (k,), g (..., m)
        return unbroadcast(squeeze(matmul(expand_dims(g, axis=-2), a), axis=-2), b)
    if na == 1 and nb == 2:  # a (k,), b (k, n), g (n,): the outer product is b's shape, nothing to sum
        return expand_dims(a, axis=-1) * expand_dims(g, axis=-2)
    if na == 1:  # a (k,), b (..., k, n), g (..., n)
        return unbroadcast(expand_dims(a, axis=-1) * expand_dims(g, axis=-2), b)
    return unbroadcast(matmul(mT(a), g), b)


def replace_at(xs: tuple, i: int, value: Any) -> tuple:
    return xs[:i] + (value,) + xs[i + 1:]


def einsum_vjp(g: Any, xs: tuple, i: int, subscripts: str) -> Any:
    """The cotangent of operand i: g contracted with the other operands onto operand i's subscripts.

    Letters that only operand i has (summed inside it alone) are broadcast back afterwards. A letter
    repeated inside operand i (a diagonal, 'ii->i', a trace 'ii->') reads only the diagonal, so the
    cotangent is computed over the distinct letters and written back onto that diagonal, zero elsewhere."""
    lhs, out = subscripts.split("->")
    terms = lhs.split(",")
    mine = terms[i]
    distinct = "".join(dict.fromkeys(mine))  # first occurrences, in order
    others = [term for j, term in enumerate(terms) if j != i]
    seen = set(out) | set("".join(others))
    kept = "".join(c for c in distinct if c in seen)
    rest = [x for j, x in enumerate(xs) if j != i]
    r = einsum(g, *rest, subscripts=",".join([out] + others) + "->" + kept)
    sizes = dict(zip(mine, shape_of(xs[i]), strict=True))
    if kept != distinct:
        r = broadcast_to(reshape(r, shape=tuple(sizes[c] if c in seen else 1 for c in distinct)),
                         shape=tuple(sizes[c] for c in distinct))
    if distinct != mine:
        r = onto_diagonal(r, distinct, mine, sizes, xs[i])
    return unbroadcast(r, xs[i])


def onto_diagonal(r: Any, distinct: str, mine: str, sizes: dict, like: Any) -> Any:
    """r, indexed by the distinct letters of `mine`, as an array indexed by `mine` itself: each repeat
    of a letter gets a fresh letter tied to the first by an identity matrix (so 'ii' is r_i on the
    diagonal, zero off it). One einsum, so it stays differentiable like the rest of the rule."""
    spare = (c for c in string.ascii_letters if c not in mine)
    full, ties, eyes = "", [], []
    for c in mine:
        if c in full:
            fresh = next(spare)
            full += fresh
            ties.append(c + fresh)
            eyes.append(eye_like(like, n=sizes[c], m=sizes[c]))
        else:
            full += c
    return einsum(r, *eyes, subscripts=",".join([distinct] + ties) + "->" + full)


def undiagonal(g: Any, x: Any, offset: int, axis1: int, axis2: int) -> Any:
    """The adjoint of diagonal: g written onto the diagonal `offset` of a zero array shaped like x."""
    nd = ndim(x)
    a1, a2 = axis1 % nd, axis2 % nd
    perm = tuple(i for i in range(nd) if i not in (a1, a2)) + (a1, a2)
    xs = shape_of(x)
    n, m, length = xs[a1], xs[a2], shape_of(g)[-1]
    r0, c0 = builtins.max(-offset, 0), builtins.max(offset, 0)
    placed = expand_dims(g, axis=-1) * eye_like(x, n=length, m=m, k=c0)  # (..., length, m)
    rows = pad(placed, pad_width=((0, 0),) * (nd - 2) + ((r0, n - length - r0), (0, 0)))
    return transpose(rows, axes=inverse_permutation(perm, nd))


def trace_last(x: Any) -> Any:
    return sum(diagonal(x, axis1=-2, axis2=-1), axis=-1)


def as_column(v: Any, b: Any) -> Any:
    """solve's right-hand side as matrices: a 1-d b (a vector) becomes one column."""
    return expand_dims(v, axis=-1) if ndim(b) == 1 else v


def from_column(v: Any, b: Any) -> Any:
    """Undo `as_column`."""
    return squeeze(v, axis=-1) if ndim(b) == 1 else v


def sym(x: Any) -> Any:
    return 0.5 * (x + mT(x))


def phi(x: Any) -> Any:
    """The lower triangle with the diagonal halved."""
    return 0.5 * (tril(x) + tril(x, k=-1))


def eigen_gaps(a: Any) -> Any:
    """F[..., i, j] = 1 / (w[j] - w[i]) for i != j and 0 on the diagonal, w = eigvalsh(a): how an
    eigenvector turns toward the others (constant in a's tangent only through w, which has its rule)."""
    return where(eye_like(a, n=shape(a)[-1]) > 0.5, 0.0 * expand_dims(eigvalsh(a), axis=-1),
                 1.0 / (expand_dims(eigvalsh(a), axis=-2) - expand_dims(eigvalsh(a), axis=-1)
                        + eye_like(a, n=shape(a)[-1])))


def cholesky_vjp(g: Any, L: Any) -> Any:
    """Cholesky's adjoint for a symmetric input (the gradient is symmetric, as in PyTorch and JAX):
    S = L^-T phi(L^T g) L^-1, returned symmetrized. The jvp symmetrizes its tangent the same way, so
    both agree with finite differences along symmetric perturbations."""
    linv = inv(L)
    s = matmul(matmul(mT(linv), phi(matmul(mT(L), g))), linv)
    return sym(s)


# ---------------------------------------------------------------------------- svd, qr (real matrices)
def svd_gaps(s: Any) -> Any:
    """F[..., i, j] = 1 / (s[j]^2 - s[i]^2) off the diagonal, 0 on it (infinite at a repeated value)."""
    k = shape(s)[-1]
    s2 = s * s
    return where(eye_like(s, n=k) > 0.5, 0.0 * expand_dims(s2, axis=-1),
                 1.0 / (expand_dims(s2, axis=-2) - expand_dims(s2, axis=-1) + eye_like(s, n=k)))


def svd_u_jvp(t: Any, u: Any, a: Any) -> Any:
    """dU = U (F o (J S + S J^T)) + (dA V - U J) S^-1, J = U^T dA V."""
    s, v = svd_s(a), mT(svd_vh(a))
    j = matmul(matmul(mT(u), t), v)
    inner = svd_gaps(s) * (j * expand_dims(s, axis=-2) + expand_dims(s, axis=-1) * mT(j))
    return matmul(u, inner) + (matmul(t, v) - matmul(u, j)) / expand_dims(s, axis=-2)


def svd_vh_jvp(t: Any, vh: Any, a: Any) -> Any:
    """dV = V (F o (S J + J^T S)) + (dA^T U - V J^T) S^-1; dVh = dV^T."""
    s, u, v = svd_s(a), svd_u(a), mT(vh)
    j = matmul(matmul(mT(u), t), v)
    inner = svd_gaps(s) * (expand_dims(s, axis=-1) * j + mT(j) * expand_dims(s, axis=-2))
    return mT(matmul(v, inner) + (matmul(mT(t), u) - matmul(v, mT(j))) / expand_dims(s, axis=-2))


def svd_u_vjp(g: Any, u: Any, a: Any) -> Any:
    """U (M + M^T) S V^T + (g - U U^T g) S^-1 V^T, M = F o (U^T g)."""
    s, vh = svd_s(a), svd_vh(a)
    m = svd_gaps(s) * matmul(mT(u), g)
    core = matmul(u, (m + mT(m)) * expand_dims(s, axis=-2))
    return matmul(core + (g - matmul(u, matmul(mT(u), g))) / expand_dims(s, axis=-2), vh)


def svd_vh_vjp(g: Any, vh: Any, a: Any) -> Any:
    """With gv = g^T (the cotangent of V): U S (N + N^T) V^T + U S^-1 (gv^T - gv^T V V^T),
    N = F o (V^T gv)."""
    s, u = svd_s(a), svd_u(a)
    v, gv = mT(vh), mT(g)
    m = svd_gaps(s) * matmul(vh, gv)
    core = matmul(expand_dims(s, axis=-1) * (m + mT(m)), vh)
    return matmul(u, core + (g - matmul(matmul(g, v), vh)) / expand_dims(s, axis=-1))


def qr_check(a: Any) -> Any:
    """QR's rules are for m >= n (then R is square and, at full rank, invertible)."""
    m, n = shape(a)[-2], shape(a)[-1]
    if m < n:
        raise NotImplementedError(f"the derivative of qr needs rows >= columns (a is {m} x {n})")
    return a


def qr_upper(c: Any) -> Any:
    """dR R^-1 from C = Q^T dA R^-1: its upper triangle plus its strict lower triangle folded up
    (Q^T dQ = C - that is antisymmetric)."""
    return triu(c) + mT(tril(c, k=-1))


def qr_c(t: Any, a: Any) -> Any:
    """C = Q^T dA R^-1."""
    return matmul(mT(qr_q(qr_check(a))), times_rinv(t, qr_r(a)))


def times_rinv(x: Any, r: Any) -> Any:
    """x R^-1 (R square upper triangular), as a solve."""
    return mT(solve(mT(r), mT(x)))


def times_rinv_t(x: Any, r: Any) -> Any:
    """x R^-T, as a solve."""
    return mT(solve(r, mT(x)))


def qr_q_jvp(t: Any, q: Any, a: Any) -> Any:
    """dQ = dA R^-1 - Q (dR R^-1)."""
    r = qr_r(qr_check(a))
    return times_rinv(t, r) - matmul(q, qr_upper(matmul(mT(q), times_rinv(t, r))))


def qr_fold(x: Any) -> Any:
    """The adjoint of qr_upper: triu(X) + tril(X^T, -1)."""
    return triu(x) + tril(mT(x), k=-1)


def qr_q_vjp(g: Any, q: Any, a: Any) -> Any:
    """(gQ - Q qr_fold(Q^T gQ)) R^-T."""
    r = qr_r(qr_check(a))
    return times_rinv_t(g - matmul(q, qr_fold(matmul(mT(q), g))), r)


def qr_r_vjp(g: Any, r: Any, a: Any) -> Any:
    """Q qr_fold(gR R^T) R^-T."""
    q = qr_q(qr_check(a))
    return times_rinv_t(matmul(q, qr_fold(matmul(g, mT(r)))), r)


# ------------------------------------------------------------------------------ complex values, FFT
def abs_vjp(g: Any, ans: Any, x: Any) -> Any:
    """|x|'s adjoint: g sign(x) for real x; for complex x (JAX's convention) Re(g) conj(x) / |x|, 0 at 0."""
    if is_complex(x):
        return real(g) * conj(x) / safe_divisor(ans)
    return g * sign(x)


def abs_jvp(t: Any, ans: Any, x: Any) -> Any:
    """d|x| = t sign(x) for real x; Re(conj(x) t) / |x| for complex x."""
    if is_complex(x):
        return real(conj(x) * t) / safe_divisor(ans)
    return t * sign(x)


def imag_vjp(g: Any, x: Any) -> Any:
    """Im's adjoint: -i Re(g) for complex x; zero for real x (its imaginary part is the constant 0)."""
    if is_complex(x):
        return real(g) * (zeros_like(x) - 1j)
    return 0.0 * real(g)


def real_like(ct: Any, x: Any) -> Any:
    """A cotangent for x: its real part when x is real."""
    return ct if is_complex(x) else real(ct)


def fft_length(x: Any, n: Any, axis: int) -> int:
    """The transform's length: n, or x's length along axis."""
    return shape(x)[axis] if n is None else n


def irfft_length(x: Any, n: Any, axis: int) -> int:
    """irfft's output length: n, or 2 (m - 1) for x of length m along axis."""
    return 2 * (shape(x)[axis] - 1) if n is None else n


def fit_to(v: Any, length: int, axis: int) -> Any:
    """v cropped, or zero-padded at the end, to `length` along axis (what n= does to an fft's input)."""
    nd = ndim(v)
    a = axis % nd
    have = shape(v)[a]
    if have == length:
        return v
    if have > length:
        return getitem(v, index=axis_index(nd, a, slice(0, length)))
    return pad(v, pad_width=tuple((0, length - have) if d == a else (0, 0) for d in range(nd)))


def fit_length(v: Any, x: Any, axis: int) -> Any:
    """The adjoint of fit_to: v back to x's length along axis."""
    return fit_to(v, shape(x)[axis], axis)


def irfft_vjp(g: Any, ans: Any, x: Any, axis: int, norm: Any) -> Any:
    """irfft is y = Re(A x) with A[j, k] = w_k s e^(2 pi i j k / N) (w = 1 at k = 0 and k = N / 2,
    2 between; s the norm's scale): the adjoint is A^T g = w * ifft(g)[:N // 2 + 1], fitted to x."""
    nd = ndim(ans)
    a = axis % nd
    big = shape(ans)[a]
    k = big // 2 + 1
    spec = getitem(ifft(real(g), axis=a, norm=norm), index=axis_index(nd, a, slice(0, k)))
    w = 2.0 - eye_like(ans, n=1, m=k) - (eye_like(ans, n=1, m=k, k=k - 1) if big % 2 == 0 else 0.0)
    w = reshape(w, shape=tuple(k if d == a else 1 for d in range(nd)))
    return fit_length(spec * w, x, a)


def axis_index(nd: int, axis: int, item: Any) -> tuple:
    """An index selecting `item` along `axis` (the trailing Ellipsis keeps array-API namespaces happy)."""
    return (slice(None),) * (axis % nd) + (item, Ellipsis)


def concat_index(xs: tuple, i: int, axis: int) -> tuple:
    """Where operand i sits in concatenate's output along axis."""
    nd = ndim(xs[i])
    a = axis % nd
    start = builtins.sum(shape_of(x)[a] for x in xs[:i])
    return axis_index(nd, a, slice(start, start + shape_of(xs[i])[a]))


def concat_pads(xs: tuple, i: int, axis: int) -> tuple:
    nd = ndim(xs[i])
    a = axis % nd
    before = builtins.sum(shape_of(x)[a] for x in xs[:i])
    after = builtins.sum(shape_of(x)[a] for x in xs[i + 1:])
    return tuple((before, after) if d == a else (0, 0) for d in range(nd))


def stack_index(ans: Any, i: int, axis: int) -> tuple:
    return axis_index(ndim(ans), axis, i)


def stack_pads(ans: Any, i: int, axis: int) -> tuple:
    nd = ndim(ans)
    a = axis % nd
    k = shape_of(ans)[a]
    return tuple((i, k - 1 - i) if d == a else (0, 0) for d in range(nd))


def negated(shift: Any) -> Any:
    return tuple(-s for s in shift) if isinstance(shift, (tuple, list)) else -shift


def untile(g: Any, x: Any, reps: Any) -> Any:
    """The adjoint of tile: fold g into (r0, n0, r1, n1, ...) and sum the repeat axes."""
    xs = shape_of(x)
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    d = builtins.max(len(xs), len(reps))
    xs_ = (1,) * (d - len(xs)) + tuple(xs)
    reps = (1,) * (d - len(reps)) + reps
    folded = reshape(g, shape=tuple(v for pair in zip(reps, xs_, strict=False) for v in pair))
    return reshape(sum(folded, axis=tuple(range(0, 2 * d, 2))), shape=xs)


def unrepeat(g: Any, x: Any, repeats: int, axis: Any) -> Any:
    """The adjoint of repeat: each run of `repeats` copies summed back into its element."""
    xs = shape_of(x)
    if axis is None:
        return reshape(sum(reshape(g, shape=(-1, repeats)), axis=-1), shape=xs)
    a = axis % len(xs)
    folded = reshape(g, shape=tuple(xs[:a]) + (xs[a], repeats) + tuple(xs[a + 1:]))
    return sum(folded, axis=a + 1)


def unpad_index(x: Any, pad_width: Any) -> tuple:
    xs = shape_of(x)
    pairs = pad_pairs(pad_width, len(xs))
    return tuple(slice(p[0], p[0] + n) for p, n in zip(pairs, xs, strict=False))


def has_int_array(index: Any) -> bool:
    """Does an index hold integer arrays or lists (advanced indexing, where positions may repeat)?"""
    parts = index if isinstance(index, tuple) else (index,)
    for p in parts:
        if isinstance(p, list):
            return True
        dt = getattr(p, "dtype", None)
        if dt is not None and "int" in str(dt) and len(getattr(p, "shape", ())) > 0:
            return True
    return False


def surviving(gsel: Any, x: Any, index: Any) -> Any:
    """`a[index] = v` with a repeated position keeps the last write (NumPy's order): zero the
    cotangent of the overwritten writes, so v's gradient counts only the values that stay."""
    if not has_int_array(index):
        return gsel
    sel = getitem(x, index=index)
    ids = reshape(cumsum(reshape(ones_like(sel), shape=(-1,)), axis=0), shape=shape_of(sel))
    marks = index_update(zeros_like(x), ids, index=index)
    return where(equal(getitem(marks, index=index), ids), gsel, 0.0)


def is_float_dtype(dtype: Any) -> bool:
    """float, 'float32', numpy.float64, array_api_strict.float64, ...: a floating dtype?"""
    return "float" in str(dtype)


def cast_back(g: Any, x: Any, dtype: Any) -> Any:
    """astype's adjoint: the cotangent cast back to x's dtype; zero through a cast to integers or
    booleans, which is piecewise constant."""
    if not is_float_dtype(dtype):
        return 0.0 * x
    return astype(g, dtype=x.dtype) if hasattr(x, "dtype") else g


def cast_forward(t: Any, ans: Any, dtype: Any) -> Any:
    if not is_float_dtype(dtype):
        return zeros_like(ans)
    return astype(t, dtype=dtype)


# ============================================================================ the helpers' records
# Facts of the functions generated code calls that are not primitives (see `primitives.Helper`): forward
# mode reads linear/zero, the tape reads shape_only, batched forward mode reads batching, the compiler
# reads nondiff. Declared after the definitions, not as decorators: the compiler and `array_rules` read
# and recompile these functions' source, which must stay a plain `def`. A helper with no record is
# differentiated by transforming its source (forward mode), the default.
helper(unbroadcast, linear=(0,), shape_only=(1,), shaped_like=True)
helper(keep, linear=(0,), shape_only=(1,), static=(2, 3))
helper(widen, linear=(0,), shape_only=(1,), shaped_like=True)
helper(surviving, linear=(0,), shape_only=(1,), static=(2,), batching="as_is")  # x: which writes survive
helper(reverse_cumsum, linear=(0,), static=(1,))
helper(untile, linear=(0,), shape_only=(1,), static=(2,))
helper(unrepeat, linear=(0,), shape_only=(1,), static=(2, 3))
helper(undiagonal, linear=(0,), shape_only=(1,), static=(2, 3, 4))
helper(mT, linear=(0,), batching="as_is")
helper(sym, linear=(0,), batching="as_is")
helper(phi, linear=(0,), batching="as_is")
helper(trace_last, linear=(0,), batching="as_is")
helper(as_column, linear=(0,), shape_only=(1,), batching="as_is")
helper(from_column, linear=(0,), shape_only=(1,), batching="as_is")
helper(to_last, linear=(0,), static=(1,), batching="axis", axis_at=1)
helper(from_last, linear=(0,), static=(1,), batching="axis", axis_at=1)
helper(matmul_vjp_a, linear=(0, 2), shape_only=(1,))  # bilinear: in g and in b, each alone
helper(matmul_vjp_b, linear=(0, 1), shape_only=(2,))
helper(shape_of, shape_only=True, zero=True)
helper(count, shape_only=(0,), static=(1,), zero=True)
for _f in (balance, inside, argmax_share, has_zero, has_int_array, is_float_dtype, concat_index,
           concat_pads, stack_index, stack_pads, axis_index, unpad_index, negated):
    helper(_f, zero=True)  # piecewise constant, or computed from shapes and static values only
for _f in (kept_shape, inverse_permutation, normalize_axis):  # noqa: F405
    helper(_f, zero=True, folds=True)  # of static values only: folded where its arguments are literals
helper(builtins.hasattr, shape_only=(0,))  # rule bodies ask an argument whether it has a dtype

# The helpers of stack.py (generated code's runtime) and mapping.py's static-argument helpers: their
# records are declared here, next to the rule helpers', so that every helper fact is in one file.
from . import mapping as _mapping  # noqa: E402
from . import stack as _stack  # noqa: E402

helper(_stack.Stack, nondiff=True)
helper(_stack.seed_of, zero=True, nondiff=True)
helper(_stack.zeros_as, zero=True, nondiff=True)
helper(_stack.same_lengths, zero=True, nondiff=True)
helper(_stack.detach, zero=True, nondiff=True)
helper(_stack.zeros_list, zero=True)  # a call, not nondiff: transforms of generated code track its list
helper(_stack.unstack, linear=(0,), static=(1, 2), batching="axis", axis_at=2)
helper(_stack.stack_list, linear=(0,), static=(1,), batching="axis", axis_at=1)
helper(_stack.concatenate_list, linear=(0,), static=(1, 2), batching="axis", axis_at=1)
helper(_stack.unconcatenate, linear=(0,), static=(1, 2), batching="axis", axis_at=2)
helper(_stack.piece_sizes, zero=True, nondiff=True)
helper(_stack.sum_like, linear=(0,), shape_only=(1,), shaped_like=True)
helper(_stack.cotangent_part, linear=(0,), static=(1, 2))
helper(_stack.index_add_into, writes=(0,))
helper(_stack.index_update_owned, writes=(0,))
for _f in (_mapping.vstack_shape, _mapping.hstack_axis, _mapping.split_index):
    helper(_f, zero=True, nondiff=True)
del _f
