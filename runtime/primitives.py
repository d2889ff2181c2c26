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


class _Untraced:
    """Never instantiated: what `Primitive.__call__` checks against while no trace type is registered."""


# isinstance's second argument in `Primitive.__call__`: the one trace type itself (cheaper than a
# one-element tuple on this hot path), a tuple of several, or a class nothing is an instance of.
_trace_check: type | tuple[type, ...] = _Untraced


def register_trace_type(cls: type, handler: Callable[..., Any]) -> None:
    """Route primitive calls that receive an instance of `cls` to `handler(prim, args, kwargs)`."""
    global _trace_types, _trace_handler, _trace_check
    _trace_types = tuple(set(_trace_types) | {cls})
    _trace_check = _trace_types[0] if len(_trace_types) == 1 else _trace_types
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
        for a in args:
            if isinstance(a, _trace_check):
                return _trace_handler(self, args, kwargs)
        if kwargs:
            return self.impl(*args, **kwargs)
        return self.impl(*args)

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


# ------------------------------------------------------------------------------------------ categories
# Names of primitives by kind, for the passes that treat a kind alike (scalar variants, NumPy lowering,
# batching, shape inference): one list here instead of one per pass.
UNARY_MATH = frozenset({
    "neg", "abs", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "square", "reciprocal",
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh",
    "arctanh", "cbrt",
})
ELEMENTWISE = UNARY_MATH | {
    "sigmoid", "relu", "softplus", "erf", "add", "subtract", "multiply", "divide", "power", "maximum",
    "minimum", "arctan2", "hypot", "where", "logaddexp", "remainder",
}


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


def _elementwise(*names: str) -> Callable[[Any], Any]:
    """The implementation of a unary elementwise primitive: the function of x's own namespace named
    `names[0]` (array API) or `names[1]` (NumPy), looked up once per argument type. This is the hot
    path of scalar and small-array code, so it costs one dict lookup over calling NumPy directly."""
    by_type: dict[type, Any] = {}

    def impl(x: Any) -> Any:
        f = by_type.get(type(x))
        if f is None:
            f = by_type[type(x)] = fn(namespace(x), *names)
        return f(x)

    impl.__name__ = names[0]
    return impl


def _zero_like_scalar(x: Any) -> Any:
    return 0.0 if isinstance(x, float) else 0


def _ns2(x: Any, y: Any) -> Any:
    return common_namespace(x, y)


def _device(x: Any) -> Any:
    """x's device for an array-API constructor; None (the default) where the array has no `.device`
    (Dask arrays live wherever their chunks are computed)."""
    return getattr(x, "device", None)


# ===================================================================================== elementwise, unary
@primitive
def _neg(x):
    return -x


@primitive
def _abs(x):
    return builtins.abs(x)


exp = primitive(_elementwise("exp"), name="exp")


expm1 = primitive(_elementwise("expm1"), name="expm1")


log = primitive(_elementwise("log"), name="log")


log1p = primitive(_elementwise("log1p"), name="log1p")


log2 = primitive(_elementwise("log2"), name="log2")


log10 = primitive(_elementwise("log10"), name="log10")


sqrt = primitive(_elementwise("sqrt"), name="sqrt")


@primitive
def _square(x):
    return x * x


@primitive
def _reciprocal(x):
    return 1.0 / x


sin = primitive(_elementwise("sin"), name="sin")


cos = primitive(_elementwise("cos"), name="cos")


tan = primitive(_elementwise("tan"), name="tan")


arcsin = primitive(_elementwise("asin", "arcsin"), name="arcsin")


arccos = primitive(_elementwise("acos", "arccos"), name="arccos")


arctan = primitive(_elementwise("atan", "arctan"), name="arctan")


sinh = primitive(_elementwise("sinh"), name="sinh")


cosh = primitive(_elementwise("cosh"), name="cosh")


tanh = primitive(_elementwise("tanh"), name="tanh")


arcsinh = primitive(_elementwise("asinh", "arcsinh"), name="arcsinh")


arccosh = primitive(_elementwise("acosh", "arccosh"), name="arccosh")


arctanh = primitive(_elementwise("atanh", "arctanh"), name="arctanh")


# math.cbrt is Python 3.11+
_scalar_cbrt = getattr(math, "cbrt", lambda v: math.copysign(builtins.abs(v) ** (1.0 / 3.0), v))


@primitive
def _cbrt(x):
    """The real cube root (negative for negative x, unlike x ** (1/3))."""
    if is_scalar(x):
        return _scalar_cbrt(x)
    xp = namespace(x)
    if hasattr(xp, "cbrt"):
        return xp.cbrt(x)
    return fn(xp, "sign")(x) * builtins.abs(x) ** (1.0 / 3.0)  # namespaces without cbrt (array API)


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
    # Small integer exponents as products: NumPy's general pow is ~10x slower than a multiply.
    if type(y) is int or type(y) is float:
        if y == 2:
            return x * x
        if y == 3:
            return x * x * x
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
def _logaddexp(x, y):
    """log(exp(x) + exp(y)) without overflow."""
    if is_scalar(x) and is_scalar(y):
        hi = builtins.max(x, y)
        if hi == -math.inf:
            return hi * 1.0
        return hi + math.log1p(math.exp(-builtins.abs(x - y)))
    return fn(_ns2(x, y), "logaddexp")(x, y)


@primitive
def _remainder(x, y):
    """x mod y with the sign of y: NumPy's remainder, Python's `%`."""
    if is_scalar(x) and is_scalar(y):
        return x % y
    return fn(_ns2(x, y), "remainder")(x, y)


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
        return float(bool(x > 0)) - float(bool(x < 0))  # np.float64 is a float too
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
def _argsort(x, axis=-1):
    """Stable (ties keep their order, as the array API's argsort and PyTorch's sort(stable=True))."""
    xp = array_ns(x)
    if _is_np_like(xp):
        return xp.argsort(x, axis=axis, kind="stable")
    return fn(xp, "argsort")(x, axis=axis)


@nondiff
def _flat_along_axis(order, axis=-1, shape=None):
    """Flat positions that gather along `axis` by the integer array `order`: `reshape(x, (-1,))[pos]` is
    NumPy's take_along_axis(x, order, axis), as one index into the flattened array. `shape` is x's shape
    where it differs from order's (torch.gather/scatter: order no larger than x off `axis`); the
    positions keep order's shape."""
    xp = array_ns(order)
    oshape = tuple(order.shape)
    shape = oshape if shape is None else tuple(shape)
    nd = len(oshape)
    a = axis % nd
    pos, stride = 0, 1
    for d in reversed(range(nd)):
        grid = order if d == a else xp.reshape(xp.arange(oshape[d]), tuple(n if k == d else 1
                                                                             for k, n in enumerate(oshape)))
        pos = pos + grid * stride
        stride *= shape[d]
    return pos


@nondiff
def _shape(x):
    if type(x) is np.ndarray:  # the hot case (every `unbroadcast`): NumPy's shape is a tuple already
        return x.shape
    if is_scalar(x):
        return ()
    own = getattr(namespace(x), "shape_of", None)  # a namespace's own: Dask's carries the chunks too
    return own(x) if own is not None else tuple(x.shape)


@nondiff
def _size(x):
    if is_scalar(x):
        return 1
    return math.prod(x.shape)


@nondiff
def _ndim(x):
    if type(x) is np.ndarray:
        return x.ndim
    return 0 if is_scalar(x) else len(x.shape)


@nondiff
def _holds_floats(x):
    """1.0 where x holds floating-point values (a number counts), 0.0 for an integer or boolean array:
    a value written into one is truncated, a piecewise constant function of it (y[:] = 10 * x)."""
    if is_scalar(x):
        return 1.0
    return 1.0 if "float" in str(x.dtype) else 0.0


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
def _copy(x):
    """A new array with x's values (np.copy, ndarray.copy, Tensor.clone): never the same memory as x, so
    a later in-place write into the copy leaves x alone. A Python number is its own copy."""
    if is_scalar(x):
        return x
    xp = array_ns(x)
    return np.array(x, copy=True) if xp is np else fn(xp, "asarray")(x, copy=True)


@primitive
def _item(x):
    """The Python number a one-element array holds (`x.item()`, `float(x)`); a number is itself. The
    derivative passes through: the value is the element."""
    if is_scalar(x):
        return x
    if math.prod(x.shape) != 1:
        raise ValueError(f"can only convert an array of size 1 to a Python scalar (shape {tuple(x.shape)})")
    if hasattr(x, "item"):
        return x.item()
    return float(fn(array_ns(x), "reshape")(x, ()))  # the array API's way: a 0-d array's __float__


@primitive
def _astype(x, dtype=None, copy=True):
    """Cast to `dtype`; differentiable between floating dtypes (the gradient is cast back). With
    copy=False, x itself where no cast is needed (the same memory, as in NumPy)."""
    if is_scalar(x):
        return float(x) if np.dtype(dtype).kind == "f" else np.dtype(dtype).type(x).item()
    xp = namespace(x)
    if not _is_np_like(xp):
        dtype = _dtype_in(xp, dtype)
    if hasattr(xp, "astype"):
        return fn(xp, "astype")(x, dtype) if copy else fn(xp, "astype")(x, dtype, copy=False)
    return x.astype(dtype) if copy else x.astype(dtype, copy=False)


def _dtype_in(xp: Any, dtype: Any) -> Any:
    """A NumPy spelling of a dtype (np.float32, 'float32', float) as namespace xp's own dtype object,
    so user code written with NumPy dtypes runs on any array-API namespace."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        return dtype  # already the namespace's own dtype
    return getattr(xp, name, dtype)


# ============================================================================================= reductions
def _reduce(name: str, x: Any, axis: Any, keepdims: bool, **kw: Any) -> Any:
    if type(x) is np.ndarray:  # the method skips np.sum's dispatch layers (about 1 us of 2 on small arrays)
        return getattr(x, name)(axis=axis, keepdims=keepdims, **kw)
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
    if not isinstance(shape, tuple):  # a tuple subclass is kept: Dask's shape(x) carries x's chunks
        shape = tuple(shape)
    if is_scalar(x):
        if shape == ():
            return x
        xp = getattr(shape, "namespace", None)  # the shape of a lazy array: broadcast there, not in NumPy
        if xp is not None:
            return fn(xp, "broadcast_to")(xp.asarray(x), shape)
        return np.full(shape, x, dtype=np.result_type(x, np.float64) if isinstance(x, float) else None)
    if tuple(x.shape) == shape:
        return x
    return fn(namespace(x), "broadcast_to")(x, shape)


@primitive
def _sum_to(x, shape=None):
    """Sum `x` down to `shape`: the adjoint of broadcasting (the identity when shapes already agree)."""
    if type(x) is np.ndarray and type(shape) is tuple and x.shape == shape:  # hot: nothing to sum
        return x
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
    if type(x) is np.ndarray and type(axis) is int:  # the hot case (matmul's rules), as below
        if axis == -1:
            return x[..., None]
        shape = list(x.shape)
        shape.insert(axis % (len(shape) + 1), 1)
        return x.reshape(tuple(shape))
    xp = array_ns(x)
    if is_scalar(x):
        x = xp.asarray(x)
    shape = list(x.shape)
    if type(axis) is int:  # the common case, without sorting
        shape.insert(axis % (len(shape) + 1), 1)
        return fn(xp, "reshape")(x, tuple(shape))
    out_ndim = len(shape) + len(axis)
    for a in sorted(a % out_ndim for a in axis):
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


def _without_newaxis(out: Any, index: Any, v: Any, xp: Any) -> tuple[Any, Any]:
    """Array-API namespaces refuse None (newaxis) in an assignment index: drop it, and reshape v to
    the shape the remaining index selects (None only inserts axes of size 1)."""
    idx = index if isinstance(index, tuple) else (index,)
    if xp is np or not builtins.any(i is None for i in idx):
        return index, v
    full = tuple(out[index].shape)
    idx = tuple(i for i in idx if i is not None)
    if not is_scalar(v):
        v = fn(xp, "reshape")(fn(xp, "broadcast_to")(v, full), tuple(out[idx].shape))
    return idx, v


@primitive
def _index_update(x, v, index=None):
    """`x` with `x[index] = v`, as a new array: the user's array is never written."""
    xp = _seq_ns((x, v))  # v's namespace when it is lazy and x is NumPy: NumPy would compute it
    out = fn(xp, "asarray")(x, copy=True) if xp is not np else np.array(x, copy=True)
    index, v = _without_newaxis(out, index, v, xp)
    out[index] = v
    return out


@primitive
def _index_add(x, v, index=None):
    """`x` with `v` added at `index`, repeated integer indices accumulating (like numpy.add.at)."""
    xp = _seq_ns((x, v))
    if xp is np:
        out = np.array(x, copy=True)
        np.add.at(out, index, v)
        return out
    if getattr(xp, "__name__", "") == "cupy":
        out = x.copy()
        xp.add.at(out, index, v)
        return out
    parts = index if isinstance(index, tuple) else (index,)
    if builtins.any(isinstance(p, list) or (len(getattr(p, "shape", ())) > 0 and "int" in str(p.dtype))
                    for p in parts):
        raise NotImplementedError(
            f"index_add with integer-array indices needs an unbuffered add (add.at), which "
            f"{getattr(xp, '__name__', xp)} lacks: repeated indices would silently not accumulate")
    out = fn(xp, "asarray")(x, copy=True)
    if builtins.any(n is None or n != n for n in out[index].shape):  # unknown length: None, or NaN (Dask)
        raise NotImplementedError(
            f"index_add through a boolean mask on a lazy {getattr(xp, '__name__', xp)} array: the "
            f"selection's length is unknown until computed, so its values cannot be placed back")
    index, v = _without_newaxis(out, index, v, xp)
    out[index] = out[index] + v  # basic indices and masks: no position repeats
    return out


# ================================================================================== more reductions
def _is_np_like(xp: Any) -> bool:
    """NumPy and CuPy spell keyword arguments the NumPy way (ddof, axis1); the array API differs."""
    return xp is np or getattr(xp, "__name__", "") == "cupy"


def _moments(name: str, x: Any, axis: Any, ddof: Any, keepdims: bool) -> Any:
    xp = array_ns(x)
    if _is_np_like(xp):
        return fn(xp, name)(x, axis=axis, ddof=ddof, keepdims=keepdims)
    return fn(xp, name)(x, axis=axis, correction=ddof, keepdims=keepdims)


@primitive
def _var(x, axis=None, ddof=0, keepdims=False):
    """Variance with NumPy's `ddof` (PyTorch's `correction`): sum((x - mean)^2) / (N - ddof)."""
    if is_scalar(x):
        return 0.0 * x
    return _moments("var", x, axis, ddof, keepdims)


@primitive
def _std(x, axis=None, ddof=0, keepdims=False):
    if is_scalar(x):
        return 0.0 * x
    return _moments("std", x, axis, ddof, keepdims)


@primitive
def _norm(x, ord=2, axis=None, keepdims=False):
    """The vector p-norm over `axis` (all elements when None), like `torch.linalg.vector_norm`.

    ord: any p > 0, inf or -inf. ord=2 over a matrix's two axes is the Frobenius norm. Matrix norms with
    other orders are not vector norms; `mapping` refuses them rather than answer wrongly.
    """
    if is_scalar(x):
        return builtins.abs(x) * 1.0
    xp = array_ns(x)
    a = builtins.abs(x)
    if ord == 2:
        return fn(xp, "sqrt")(fn(xp, "sum")(x * x, axis=axis, keepdims=keepdims))
    if ord == 1:
        return fn(xp, "sum")(a, axis=axis, keepdims=keepdims)
    if ord == math.inf:
        return fn(xp, "max")(a, axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return fn(xp, "min")(a, axis=axis, keepdims=keepdims)
    if not ord > 0:
        raise ValueError(f"norm: ord must be > 0, inf or -inf, got {ord!r}")
    return fn(xp, "sum")(a ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


def _logsumexp_impl(x: Any, axis: Any, keepdims: bool) -> Any:
    xp = array_ns(x)
    m = fn(xp, "max")(x, axis=axis, keepdims=True)
    m = xp.where(fn(xp, "isfinite")(m), m, xp.zeros_like(m))  # all -inf: log(0) + 0 = -inf
    out = fn(xp, "log")(fn(xp, "sum")(fn(xp, "exp")(x - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return out
    return fn(xp, "reshape")(out, tuple(n for i, n in enumerate(x.shape)
                                       if i not in normalize_axis(axis, len(x.shape))))


@primitive
def _logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) computed as max + log(sum(exp(x - max))): no overflow."""
    if is_scalar(x):
        return x
    return _logsumexp_impl(x, axis, keepdims)


@primitive
def _softmax(x, axis=-1):
    xp = array_ns(x)
    e = fn(xp, "exp")(x - fn(xp, "max")(x, axis=axis, keepdims=True))
    return e / fn(xp, "sum")(e, axis=axis, keepdims=True)


@primitive
def _log_softmax(x, axis=-1):
    return x - _logsumexp_impl(x, axis, True)


@primitive
def _cumsum(x, axis=0):
    """Running sum along one axis (the mapping flattens first where NumPy's axis=None asks for it)."""
    return fn(array_ns(x), "cumulative_sum", "cumsum")(x, axis=axis)


@primitive
def _cumprod(x, axis=0):
    return fn(array_ns(x), "cumulative_prod", "cumprod")(x, axis=axis)


# ================================================================================== linear algebra
@primitive
def _matmul(a, b):
    """NumPy's matmul: 1-d operands are vectors, leading (batch) axes broadcast."""
    return a @ b


@primitive
def _einsum(*operands, subscripts=None):
    """einsum with explicit output (`'ij,jk->ik'`); the subscripts are static, the operands arrays."""
    xp = common_namespace(*operands)
    if xp is scalar_ns:
        xp = np
    return fn(xp, "einsum")(subscripts, *operands)


def _diag_last(x: Any, axis1: int, axis2: int) -> Any:
    """`x` with axis1 and axis2 moved to the end (in that order), the other axes kept in order."""
    n = len(x.shape)
    a1, a2 = axis1 % n, axis2 % n
    perm = tuple(i for i in range(n) if i not in (a1, a2)) + (a1, a2)
    return fn(array_ns(x), "permute_dims", "transpose")(x, perm)


@primitive
def _diagonal(x, offset=0, axis1=0, axis2=1):
    """NumPy's diagonal: the diagonal becomes the last axis (returned as a copy, never a view)."""
    xp = array_ns(x)
    if _is_np_like(xp):
        return xp.diagonal(x, offset, axis1, axis2).copy()
    return fn(xp, "linalg.diagonal")(_diag_last(x, axis1, axis2), offset=offset)


@primitive
def _tril(x, k=0):
    return fn(array_ns(x), "tril")(x, k=k)


@primitive
def _triu(x, k=0):
    return fn(array_ns(x), "triu")(x, k=k)


@primitive
def _inv(a):
    return fn(array_ns(a), "linalg.inv")(a)


@primitive
def _solve(a, b):
    """Solve a @ x = b; b is a vector only when it is 1-d (NumPy 2 and array-API semantics).

    Batch dimensions are broadcast here, explicitly, because CuPy's solve does not broadcast them."""
    xp = common_namespace(a, b)
    solve = fn(xp, "linalg.solve")
    vector = len(b.shape) == 1
    if vector:
        b = fn(xp, "reshape")(b, (b.shape[0], 1))
    batch = np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    if tuple(a.shape[:-2]) != batch:
        a = xp.broadcast_to(a, batch + tuple(a.shape[-2:]))
    if tuple(b.shape[:-2]) != batch:
        b = xp.broadcast_to(b, batch + tuple(b.shape[-2:]))
    x = solve(a, b)
    return x[..., 0] if vector else x


@primitive
def _det(a):
    return fn(array_ns(a), "linalg.det")(a)


@primitive
def _logabsdet(a):
    """log|det a|: slogdet's differentiable half (its sign is the non-differentiable `slogdet_sign`)."""
    return fn(array_ns(a), "linalg.slogdet")(a)[1]


@nondiff
def _slogdet_sign(a):
    return fn(array_ns(a), "linalg.slogdet")(a)[0]


@primitive
def _cholesky(a):
    """The lower Cholesky factor of a symmetric positive definite matrix (batched)."""
    return fn(array_ns(a), "linalg.cholesky")(a)


@primitive
def _eigvalsh(a):
    """The eigenvalues of a symmetric matrix (batched), ascending: np.linalg.eigvalsh / eigh's first."""
    return fn(array_ns(a), "linalg.eigvalsh")(a)


@primitive
def _eigvecsh(a):
    """The eigenvectors of a symmetric matrix (batched), as columns in eigvalsh's order: eigh's second.
    Each is defined up to its sign; the derivative is that of the vectors the solver returns."""
    return fn(array_ns(a), "linalg.eigh")(a)[1]



def _refuse_complex(name: str, a: Any) -> None:
    """svd and qr here: real matrices (their rules are for real input), not lazy Dask arrays (dask.array's
    decompositions take one 2-d tall-and-skinny array only)."""
    if "complex" in str(getattr(a, "dtype", "")):
        raise NotImplementedError(f"{name} of a complex matrix is not supported (its rules are for real "
                                  "input)")
    if hasattr(a, "rechunk"):
        raise NotImplementedError(f"{name} of a Dask array is not supported (dask.array's takes one 2-d "
                                  "tall-and-skinny array)")


def _svd(a: Any) -> Any:
    _refuse_complex("svd", a)
    return fn(array_ns(a), "linalg.svd")(a, full_matrices=False)


@primitive
def _svd_u(a):
    """The left singular vectors of a (batched, (..., m, k), k = min(m, n)): np.linalg.svd(a,
    full_matrices=False)'s first. Each column is defined up to its sign (shared with Vh's row); the
    derivative is that of the vectors the solver returns, and needs distinct nonzero singular values."""
    return _svd(a)[0]


@primitive
def _svd_s(a):
    """The singular values of a (batched, (..., k)), descending: np.linalg.svd's second, svdvals."""
    return _svd(a)[1]


@primitive
def _svd_vh(a):
    """The right singular vectors of a as rows ((..., k, n)): np.linalg.svd(a, full_matrices=False)'s
    third."""
    return _svd(a)[2]


def _qr(a: Any) -> Any:
    _refuse_complex("qr", a)
    return fn(array_ns(a), "linalg.qr")(a)


@primitive
def _qr_q(a):
    """Q of the reduced QR decomposition a = Q R (batched, (..., m, k), k = min(m, n))."""
    return _qr(a)[0]


@primitive
def _qr_r(a):
    """R of the reduced QR decomposition (batched, (..., k, n), upper triangular)."""
    return _qr(a)[1]


# ================================================================================== complex values, FFT
def _holds_complex(x: Any) -> bool:
    if isinstance(x, complex):
        return True
    return "complex" in str(getattr(x, "dtype", ""))


@nondiff
def _is_complex(x):
    """True where x holds complex values (a Python complex, a complex array or Tensor)."""
    return _holds_complex(x)


@primitive
def _real(x):
    """The real part (np.real); a real x is returned as it is."""
    if not _holds_complex(x):
        return x
    if isinstance(x, complex):  # a Python or NumPy complex number
        return x.real
    return fn(array_ns(x), "real")(x)


@primitive
def _imag(x):
    """The imaginary part (np.imag); zeros for a real x."""
    if not _holds_complex(x):
        return 0.0 if is_scalar(x) else namespace(x).zeros_like(x)
    if isinstance(x, complex):  # a Python or NumPy complex number
        return x.imag
    return fn(array_ns(x), "imag")(x)


@primitive
def _conj(x):
    """The complex conjugate (np.conj); a real x is returned as it is."""
    if not _holds_complex(x):
        return x
    if isinstance(x, complex):  # a Python or NumPy complex number
        return x.conjugate()
    return fn(array_ns(x), "conj")(x)


def _fft_call(name: str, x: Any, n: Any, axis: int, norm: Any) -> Any:
    xp = array_ns(x)
    if hasattr(x, "rechunk"):  # Dask transforms one chunk along the axis: rechunk it, lazily
        x = x.rechunk({axis % len(x.shape): -1})
    if name != "rfft" and not _is_np_like(xp) and not _holds_complex(x):  # the standard takes complex
        x = fn(xp, "astype")(x, getattr(xp, "complex64" if "32" in str(x.dtype) else "complex128"))
    return fn(xp, "fft." + name)(x, n=n, axis=axis, norm="backward" if norm is None else norm)


@primitive
def _fft(x, n=None, axis=-1, norm=None):
    """np.fft.fft along one axis (n: crop or zero-pad to n first; norm None/'backward', 'ortho',
    'forward'): complex values."""
    return _fft_call("fft", x, n, axis, norm)


@primitive
def _ifft(x, n=None, axis=-1, norm=None):
    """np.fft.ifft along one axis."""
    return _fft_call("ifft", x, n, axis, norm)


@primitive
def _rfft(x, n=None, axis=-1, norm=None):
    """np.fft.rfft of real values along one axis: the n // 2 + 1 non-negative frequencies."""
    if _holds_complex(x):
        raise TypeError("rfft takes real values (np.fft.fft transforms complex ones)")
    return _fft_call("rfft", x, n, axis, norm)


@primitive
def _irfft(x, n=None, axis=-1, norm=None):
    """np.fft.irfft: the real signal of length n (2 (m - 1) by default) whose rfft is x; the imaginary
    parts of x's zero (and, n even, n / 2) frequency are ignored, as NumPy does."""
    return _fft_call("irfft", x, n, axis, norm)

# ================================================================================== shape, more
def _seq_ns(arrays: Any) -> Any:
    xp = common_namespace(*arrays)
    return np if xp is scalar_ns else xp


@primitive
def _concatenate(*arrays, axis=0):
    return fn(_seq_ns(arrays), "concat", "concatenate")(list(arrays), axis=axis)


@primitive
def _stack(*arrays, axis=0):
    xp = _seq_ns(arrays)
    if xp is not np:
        arrays = [xp.asarray(a) if is_scalar(a) else a for a in arrays]
    return fn(xp, "stack")(list(arrays), axis=axis)


@primitive
def _sort(x, axis=-1):
    return fn(array_ns(x), "sort")(x, axis=axis)


@primitive
def _flip(x, axis=None):
    if is_scalar(x):
        return x
    return fn(array_ns(x), "flip")(x, axis=axis)


@primitive
def _roll(x, shift=0, axis=None):
    return fn(array_ns(x), "roll")(x, shift, axis=axis)


@primitive
def _tile(x, reps=()):
    """NumPy's tile (PyTorch's `Tensor.repeat`): the whole array repeated `reps[i]` times along axis i."""
    xp = array_ns(x)
    if is_scalar(x):
        x = xp.asarray(x)
    return fn(xp, "tile")(x, tuple(reps))


@primitive
def _repeat(x, repeats=1, axis=None):
    """NumPy's repeat (PyTorch's `repeat_interleave`): each element `repeats` times; axis=None flattens.

    `repeats` is one int: the vjp then folds the repeats with a reshape and a sum."""
    xp = array_ns(x)
    if is_scalar(x):
        x = xp.asarray(x)
    if not _is_np_like(xp) and axis is None:
        x, axis = fn(xp, "reshape")(x, (-1,)), 0
    return fn(xp, "repeat")(x, repeats, axis=axis)


def pad_pairs(pad_width: Any, ndim: int) -> tuple:
    """NumPy's pad_width spellings (n, (n,), (a, b), ((a0, b0), ...)) -> one (before, after) per axis."""
    if isinstance(pad_width, int):
        return ((pad_width, pad_width),) * ndim
    pw = tuple(pad_width)
    if pw and isinstance(pw[0], int):
        pair = (pw[0], pw[0]) if len(pw) == 1 else (pw[0], pw[1])
        return (pair,) * ndim
    if len(pw) == 1:
        return (tuple(pw[0]),) * ndim
    return tuple((int(a), int(b)) for a, b in pw)


@primitive
def _pad(x, pad_width=0, value=0.0):
    """Constant padding: `pad_width` as NumPy spells it, `value` the fill (static, not differentiated)."""
    xp = array_ns(x)
    pairs = pad_pairs(pad_width, len(x.shape))
    if _is_np_like(xp):
        return xp.pad(x, pairs, mode="constant", constant_values=value)
    shape = tuple(a + n + b for (a, b), n in zip(pairs, x.shape, strict=False))
    out = xp.full(shape, value, dtype=x.dtype, device=_device(x))
    out[tuple(slice(a, a + n) for (a, _), n in zip(pairs, x.shape, strict=False))] = x
    return out


# ================================================================================ non-differentiable, more
@nondiff
def _any(x, axis=None, keepdims=False):
    if is_scalar(x):
        return bool(x)
    return fn(array_ns(x), "any")(x, axis=axis, keepdims=keepdims)


@nondiff
def _all(x, axis=None, keepdims=False):
    if is_scalar(x):
        return bool(x)
    return fn(array_ns(x), "all")(x, axis=axis, keepdims=keepdims)


@nondiff
def _eye_like(x, n=None, m=None, k=0):
    """An (n, m) identity (ones on diagonal k) with x's namespace, float dtype and device: a constant."""
    xp = array_ns(x)
    dtype = x.dtype if hasattr(x, "dtype") and getattr(x.dtype, "kind", "f") == "f" else None
    if xp is np:
        return np.eye(n, m, k, dtype=dtype or np.float64)
    if _is_np_like(xp):
        return xp.eye(n, m, k, dtype=dtype)
    if dtype is None or not str(dtype).startswith("float"):
        dtype = xp.float64
    return xp.eye(n, m, k=k, dtype=dtype, device=_device(x))


# ============================================================================ special functions, search
@nondiff
def _searchsorted(a, v, side="left"):
    """Where v's values would go in the sorted 1-d a (np.searchsorted): integer positions."""
    xp = array_ns(a)
    if is_scalar(v):
        v = xp.asarray(v)
    return fn(xp, "searchsorted")(a, v, side=side)


_SHIFT = 10  # special functions: the recurrence lifts the argument by this much before the series
# Stirling's series for lgamma and the asymptotic series of the polygamma functions, from the Bernoulli
# numbers B2k (k = 1..6): at arguments >= 10 the first terms left out are below 1e-13.
_BERNOULLI = (1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66, -691.0 / 2730)


def _ops(x: Any) -> tuple[Any, Any, Any, Any]:
    """(namespace, log, tan, where) for x: Python's math for numbers, x's namespace for arrays."""
    if is_scalar(x):
        return None, math.log, math.tan, lambda c, a, b: a if c else b
    xp = array_ns(x)
    return xp, fn(xp, "log"), fn(xp, "tan"), fn(xp, "where")


def _lgamma_series(x: Any) -> Any:
    """log|Gamma(x)| for x > 0 by the recurrence and Stirling's series; any namespace."""
    _, log, _, _ = _ops(x)
    y = x + _SHIFT
    out = (y - 0.5) * log(y) - y + 0.5 * math.log(2 * math.pi)
    for k, b in enumerate(_BERNOULLI, start=1):
        out = out + b / (2 * k * (2 * k - 1)) * y ** (1 - 2 * k)
    for k in range(_SHIFT):
        out = out - log(x + k)
    return out


@primitive
def _lgamma(x):
    """log|Gamma(x)| (math.lgamma, scipy.special.gammaln). Python numbers and NumPy use math.lgamma;
    other namespaces the recurrence, Stirling's series and the reflection formula for x < 0."""
    if is_scalar(x):
        return math.lgamma(x)
    xp = array_ns(x)
    if xp is np:
        out = np.frompyfunc(math.lgamma, 1, 1)(x)
        return np.asarray(out, dtype=np.result_type(x, np.float64))[()]
    _, log, _, where = _ops(x)
    pos = x > 0
    z = where(pos, x, 1.0 - x)
    core = _lgamma_series(z)
    sin = fn(xp, "sin")
    refl = math.log(math.pi) - log(fn(xp, "abs")(sin(math.pi * x))) - core
    return where(pos, core, refl)


def _polygamma_pos(x: Any, n: int) -> Any:
    """psi^(n)(x) for x > 0: the recurrence psi^(n)(x) = psi^(n)(x + N) - (-1)^n n! sum (x + k)^-(n+1),
    then the asymptotic series at x + N."""
    _, log, _, _ = _ops(x)
    y = x + _SHIFT
    if n == 0:
        out = log(y) - 0.5 / y
        for k, b in enumerate(_BERNOULLI, start=1):
            out = out - b / (2 * k) * y ** (-2 * k)
    else:
        sign = -1.0 if n % 2 == 0 else 1.0  # (-1)^(n+1)
        s = math.factorial(n - 1) * y ** (-n) + math.factorial(n) / 2 * y ** (-n - 1)
        for k, b in enumerate(_BERNOULLI, start=1):
            s = s + b * math.factorial(2 * k + n - 1) / math.factorial(2 * k) * y ** (-2 * k - n)
        out = sign * s
    c = (-1.0) ** n * math.factorial(n)
    for k in range(_SHIFT):
        out = out - c * (x + k) ** (-n - 1)
    return out


@primitive
def _polygamma(x, n=0):
    """The polygamma function psi^(n)(x): digamma (n = 0, the derivative of lgamma) and its
    derivatives, each the derivative of the one before. n = 0 and 1 take x < 0 by the reflection
    formula; n >= 2 is nan at x <= 0 (not answered from a wrong branch)."""
    xp, _, tan, where = _ops(x)
    if xp is None:
        if x > 0:
            return _polygamma_pos(x, n)
        if n == 0 and x != math.floor(x):
            return _polygamma_pos(1.0 - x, 0) - math.pi / tan(math.pi * x)
        if n == 1 and x != math.floor(x):
            return (math.pi / math.sin(math.pi * x)) ** 2 - _polygamma_pos(1.0 - x, 1)
        return math.nan
    pos = x > 0
    z = where(pos, x, 1.0 - x)
    core = _polygamma_pos(z, n)
    if n == 0:
        return where(pos, core, core - math.pi / tan(math.pi * x))
    if n == 1:
        return where(pos, core, (math.pi / fn(xp, "sin")(math.pi * x)) ** 2 - core)
    return where(pos, core, math.nan * z)


# Export every primitive under its own name (`sin`, `sum`, `max`, ...) for the rule table and the
# compiler. Done last, so the implementations above keep seeing Python's builtins.
globals().update(PRIMITIVES)
__all__ = sorted(PRIMITIVES) + ["Primitive", "PRIMITIVES", "normalize_axis", "fn"]
