"""The primitive operations: namespace-generic, one output each.

A primitive's positional arguments are the values it may be differentiated with respect to (arrays or
Python numbers); its keyword arguments are static parameters (axis, shape, index, ...) that are never
differentiated. Each primitive dispatches on its arguments' namespace (`backend.namespace`), so NumPy
arrays stay NumPy, CuPy arrays stay on the GPU, and Python floats run on `math`.

A traced value (the eager runtime's Tensor) registers its type with `register_trace_type`; a primitive
called with one hands the call to the tracer, which records it and calls the primitive again on plain
arrays. That is how the derivative rules, written in primitives, run under `create_graph=True`.

Derivative rules do not live here: they are in `rules.py`, the one table.
"""

from __future__ import annotations

import builtins
import math
from typing import Any, Callable

import numpy as np

from .backend import array_ns, common_namespace, is_scalar, namespace, scalar_ns

PRIMITIVES: dict[str, "Primitive"] = {}

_trace_types: tuple[type, ...] = ()
_trace_handler: Callable[..., Any] | None = None


def register_trace_type(cls: type, handler: Callable[..., Any]) -> None:
    """Route primitive calls that receive an instance of `cls` to `handler(prim, args, kwargs)`."""
    global _trace_types, _trace_handler
    _trace_types = tuple(set(_trace_types) | {cls})
    _trace_handler = handler


class Primitive:
    """A named operation with one implementation; its rules are looked up in `rules.RULES`."""

    __slots__ = ("name", "impl", "differentiable", "__name__", "__qualname__", "__dict__")

    def __init__(self, name: str, impl: Callable[..., Any], differentiable: bool = True):
        self.name = name
        self.impl = impl
        self.differentiable = differentiable
        self.__doc__ = impl.__doc__
        self.__name__ = name
        self.__qualname__ = name
        self.__module__ = __name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _trace_types:
            for a in args:
                if isinstance(a, _trace_types):
                    return _trace_handler(self, args, kwargs)
        return self.impl(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<srcgrad primitive {self.name}>"

    def __reduce__(self) -> str:
        return self.name


def primitive(fn: Callable[..., Any] | None = None, *, name: str | None = None,
              differentiable: bool = True) -> Any:
    """Decorator: register `fn` (named `_name`) as the implementation of primitive `name`."""

    def wrap(f: Callable[..., Any]) -> Primitive:
        pname = name or f.__name__.lstrip("_")
        prim = Primitive(pname, f, differentiable)
        PRIMITIVES[pname] = prim
        return prim

    return wrap(fn) if fn is not None else wrap


def nondiff(fn: Callable[..., Any]) -> Primitive:
    """A primitive whose output carries no derivative (comparisons, rounding, indices, shapes)."""
    return primitive(fn, differentiable=False)


# ------------------------------------------------------------------------------------ namespace helpers
_FN_CACHE: dict[tuple[int, str], Any] = {}


def fn(xp: Any, *names: str) -> Any:
    """The first of `names` that namespace `xp` defines (array-API names first, NumPy names second)."""
    key = (id(xp), names[0])
    f = _FN_CACHE.get(key)
    if f is None:
        for n in names:
            obj = xp
            for part in n.split("."):
                obj = getattr(obj, part, None)
                if obj is None:
                    break
            if obj is not None:
                f = obj
                break
        if f is None:
            raise NotImplementedError(f"namespace {getattr(xp, '__name__', xp)} has none of {names}")
        _FN_CACHE[key] = f
    return f


def _unary(x: Any, *names: str) -> Any:
    return fn(namespace(x), *names)(x)


def _zero_like_scalar(x: Any) -> Any:
    return 0.0 if isinstance(x, float) else 0


def _ns2(x: Any, y: Any) -> Any:
    return common_namespace(x, y)


# ===================================================================================== elementwise, unary
@primitive
def _neg(x):
    return -x


@primitive
def _abs(x):
    return builtins.abs(x)


@primitive
def _exp(x):
    return _unary(x, "exp")


@primitive
def _expm1(x):
    return _unary(x, "expm1")


@primitive
def _log(x):
    return _unary(x, "log")


@primitive
def _log1p(x):
    return _unary(x, "log1p")


@primitive
def _log2(x):
    return _unary(x, "log2")


@primitive
def _log10(x):
    return _unary(x, "log10")


@primitive
def _sqrt(x):
    return _unary(x, "sqrt")


@primitive
def _square(x):
    return x * x


@primitive
def _reciprocal(x):
    return 1.0 / x


@primitive
def _sin(x):
    return _unary(x, "sin")


@primitive
def _cos(x):
    return _unary(x, "cos")


@primitive
def _tan(x):
    return _unary(x, "tan")


@primitive
def _arcsin(x):
    return _unary(x, "asin", "arcsin")


@primitive
def _arccos(x):
    return _unary(x, "acos", "arccos")


@primitive
def _arctan(x):
    return _unary(x, "atan", "arctan")


@primitive
def _sinh(x):
    return _unary(x, "sinh")


@primitive
def _cosh(x):
    return _unary(x, "cosh")


@primitive
def _tanh(x):
    return _unary(x, "tanh")


@primitive
def _arcsinh(x):
    return _unary(x, "asinh", "arcsinh")


@primitive
def _arccosh(x):
    return _unary(x, "acosh", "arccosh")


@primitive
def _arctanh(x):
    return _unary(x, "atanh", "arctanh")


@primitive
def _sigmoid(x):
    # tanh form: stable for large |x| in both directions and exact on Python floats
    xp = namespace(x)
    return 0.5 * (fn(xp, "tanh")(0.5 * x) + 1.0)


@primitive
def _relu(x):
    if is_scalar(x):
        return x if x > 0 else 0.0 * x
    xp = namespace(x)
    return xp.where(x > 0, x, xp.zeros_like(x))


@primitive
def _softplus(x):
    # log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|)
    if is_scalar(x):
        return builtins.max(x, 0.0) + math.log1p(math.exp(-builtins.abs(x)))
    xp = namespace(x)
    return xp.where(x > 0, x, xp.zeros_like(x)) + fn(xp, "log1p")(fn(xp, "exp")(-builtins.abs(x)))


def _erf_numpy(x: Any) -> Any:
    try:  # SciPy is optional: use it when present, math.erf elementwise otherwise
        from scipy.special import erf  # noqa: PLC0415

        return erf(x)
    except ImportError:
        out = np.frompyfunc(math.erf, 1, 1)(x)
        return np.asarray(out, dtype=np.result_type(x, np.float64) if np.asarray(x).dtype.kind != "f"
                          else np.asarray(x).dtype)[()]


@primitive
def _erf(x):
    xp = namespace(x)
    if xp is scalar_ns:
        return math.erf(x)
    if xp is np:
        return _erf_numpy(x)
    if getattr(xp, "__name__", "") == "cupy":
        import cupyx.scipy.special  # noqa: PLC0415

        return cupyx.scipy.special.erf(x)
    return fn(xp, "erf")(x)


# ==================================================================================== elementwise, binary
@primitive
def _add(x, y):
    return x + y


@primitive
def _subtract(x, y):
    return x - y


@primitive
def _multiply(x, y):
    return x * y


@primitive
def _divide(x, y):
    return x / y


@primitive
def _power(x, y):
    return x ** y


@primitive
def _maximum(x, y):
    if is_scalar(x) and is_scalar(y):
        return x if x >= y else y
    return fn(_ns2(x, y), "maximum")(x, y)


@primitive
def _minimum(x, y):
    if is_scalar(x) and is_scalar(y):
        return x if x <= y else y
    return fn(_ns2(x, y), "minimum")(x, y)


@primitive
def _arctan2(y, x):
    return fn(_ns2(y, x), "atan2", "arctan2")(y, x)


@primitive
def _hypot(x, y):
    return fn(_ns2(x, y), "hypot")(x, y)


@primitive
def _where(cond, x, y):
    if is_scalar(cond) and is_scalar(x) and is_scalar(y):
        return x if cond else y
    xp = common_namespace(cond, x, y)
    if xp is scalar_ns:
        xp = array_ns(cond)
    return xp.where(cond, x, y)


@primitive
def _clip(x, min=None, max=None):
    if is_scalar(x):
        if min is not None and x < min:
            return min * 1.0
        if max is not None and x > max:
            return max * 1.0
        return x
    return fn(namespace(x), "clip")(x, min, max)


# ========================================================================== non-differentiable, elementwise
def _cmp(name: str, op: Callable[[Any, Any], Any]) -> Primitive:
    return primitive(lambda x, y: op(x, y), name=name, differentiable=False)


equal = _cmp("equal", lambda x, y: x == y)
not_equal = _cmp("not_equal", lambda x, y: x != y)
less = _cmp("less", lambda x, y: x < y)
less_equal = _cmp("less_equal", lambda x, y: x <= y)
greater = _cmp("greater", lambda x, y: x > y)
greater_equal = _cmp("greater_equal", lambda x, y: x >= y)


@nondiff
def _logical_and(x, y):
    if is_scalar(x) and is_scalar(y):
        return bool(x) and bool(y)
    return fn(_ns2(x, y), "logical_and")(x, y)


@nondiff
def _logical_or(x, y):
    if is_scalar(x) and is_scalar(y):
        return bool(x) or bool(y)
    return fn(_ns2(x, y), "logical_or")(x, y)


@nondiff
def _logical_not(x):
    if is_scalar(x):
        return not x
    return fn(namespace(x), "logical_not")(x)


@nondiff
def _sign(x):
    if is_scalar(x):
        return float((x > 0) - (x < 0))
    return fn(namespace(x), "sign")(x)


@nondiff
def _floor(x):
    if is_scalar(x):
        return float(math.floor(x))
    return fn(namespace(x), "floor")(x)


@nondiff
def _ceil(x):
    if is_scalar(x):
        return float(math.ceil(x))
    return fn(namespace(x), "ceil")(x)


@nondiff
def _round(x, decimals=0):
    if is_scalar(x):
        return float(builtins.round(x, decimals))
    xp = namespace(x)
    if decimals == 0:
        return fn(xp, "round")(x)
    return fn(xp, "round")(x * 10.0 ** decimals) / 10.0 ** decimals


@nondiff
def _isfinite(x):
    if is_scalar(x):
        return math.isfinite(x)
    return fn(namespace(x), "isfinite")(x)


@nondiff
def _argmax(x, axis=None, keepdims=False):
    return fn(array_ns(x), "argmax")(x, axis=axis, keepdims=keepdims)


@nondiff
def _argmin(x, axis=None, keepdims=False):
    return fn(array_ns(x), "argmin")(x, axis=axis, keepdims=keepdims)


@nondiff
def _shape(x):
    return () if is_scalar(x) else tuple(x.shape)


@nondiff
def _size(x):
    if is_scalar(x):
        return 1
    return math.prod(x.shape)


@nondiff
def _ndim(x):
    return 0 if is_scalar(x) else len(x.shape)


@nondiff
def _zeros_like(x):
    if is_scalar(x):
        return 0.0
    return namespace(x).zeros_like(x)


@nondiff
def _ones_like(x):
    if is_scalar(x):
        return 1.0
    return namespace(x).ones_like(x)


@primitive
def _astype(x, dtype=None):
    """Cast to `dtype`; differentiable between floating dtypes (the gradient is cast back)."""
    if is_scalar(x):
        return float(x) if np.dtype(dtype).kind == "f" else np.dtype(dtype).type(x).item()
    xp = namespace(x)
    return fn(xp, "astype")(x, dtype) if hasattr(xp, "astype") else x.astype(dtype)


# ============================================================================================= reductions
def _reduce(name: str, x: Any, axis: Any, keepdims: bool, **kw: Any) -> Any:
    xp = array_ns(x)
    out = fn(xp, name)(x, axis=axis, keepdims=keepdims, **kw)
    return out


@primitive
def _sum(x, axis=None, keepdims=False):
    if is_scalar(x):
        return x
    return _reduce("sum", x, axis, keepdims)


@primitive
def _mean(x, axis=None, keepdims=False):
    if is_scalar(x):
        return x
    return _reduce("mean", x, axis, keepdims)


@primitive
def _prod(x, axis=None, keepdims=False):
    if is_scalar(x):
        return x
    return _reduce("prod", x, axis, keepdims)


@primitive
def _max(x, axis=None, keepdims=False):
    if is_scalar(x):
        return x
    return _reduce("max", x, axis, keepdims)


@primitive
def _min(x, axis=None, keepdims=False):
    if is_scalar(x):
        return x
    return _reduce("min", x, axis, keepdims)


# ============================================================================= shapes and broadcasting
def normalize_axis(axis: Any, ndim: int) -> tuple[int, ...]:
    """Axis argument -> sorted tuple of non-negative axes (None means all axes)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim if ndim else a for a in axis))


@primitive
def _reshape(x, shape=None):
    if is_scalar(x) and tuple(shape) == ():
        return x
    xp = array_ns(x)
    return fn(xp, "reshape")(x, tuple(shape) if not isinstance(shape, int) else (shape,))


@primitive
def _broadcast_to(x, shape=None):
    shape = tuple(shape)
    if is_scalar(x):
        if shape == ():
            return x
        return np.full(shape, x, dtype=np.result_type(x, np.float64) if isinstance(x, float) else None)
    if tuple(x.shape) == shape:
        return x
    return fn(namespace(x), "broadcast_to")(x, shape)


@primitive
def _sum_to(x, shape=None):
    """Sum `x` down to `shape`: the adjoint of broadcasting (the identity when shapes already agree)."""
    shape = tuple(shape)
    xshape = () if is_scalar(x) else tuple(x.shape)
    if xshape == shape:
        return x
    lead = len(xshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and xshape[i + lead] != 1)
    xp = array_ns(x)
    out = fn(xp, "sum")(x, axis=axes, keepdims=True) if axes else x
    out = fn(xp, "reshape")(out, shape)
    return out


@primitive
def _expand_dims(x, axis=0):
    xp = array_ns(x)
    if is_scalar(x):
        x = xp.asarray(x)
    if isinstance(axis, int):
        return fn(xp, "expand_dims")(x, axis=axis)
    out_ndim = len(x.shape) + len(axis)
    axes = sorted(a % out_ndim for a in axis)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return fn(xp, "reshape")(x, tuple(shape))


@primitive
def _squeeze(x, axis=None):
    xp = array_ns(x)
    if axis is None:
        axis = tuple(i for i, n in enumerate(x.shape) if n == 1)
    return fn(xp, "squeeze")(x, axis=axis)


@primitive
def _transpose(x, axes=None):
    if is_scalar(x):
        return x
    if axes is None:
        axes = tuple(reversed(range(len(x.shape))))
    return fn(array_ns(x), "permute_dims", "transpose")(x, tuple(axes))


@primitive
def _getitem(x, index=None):
    return x[index]


@primitive
def _index_update(x, v, index=None):
    """`x` with `x[index] = v`, as a new array: the user's array is never written."""
    xp = array_ns(x)
    out = fn(xp, "asarray")(x, copy=True) if xp is not np else np.array(x, copy=True)
    out[index] = v
    return out


@primitive
def _index_add(x, v, index=None):
    """`x` with `v` added at `index`, repeated integer indices accumulating (like numpy.add.at)."""
    xp = array_ns(x)
    if xp is np:
        out = np.array(x, copy=True)
        np.add.at(out, index, v)
        return out
    if getattr(xp, "__name__", "") == "cupy":
        out = x.copy()
        xp.add.at(out, index, v)
        return out
    out = fn(xp, "asarray")(x, copy=True)
    out[index] = out[index] + v  # basic indices only: no repeats to accumulate
    return out


# Export every primitive under its own name (`sin`, `sum`, `max`, ...) for the rule table and the
# compiler. Done last, so the implementations above keep seeing Python's builtins.
globals().update(PRIMITIVES)
__all__ = sorted(PRIMITIVES) + ["Primitive", "PRIMITIVES", "normalize_axis", "fn"]
