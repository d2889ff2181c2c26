"""The one mapping from what users write to primitives.

Users write `np.sin(x)`, `x.sum(axis=0)`, `x.T`, `x.pow(3)`, `torch.mm(a, b)`; the engines only know
primitives. Each entry here is an *adapter*: a small function written in primitives that takes the
arguments the way NumPy, ndarray, or PyTorch spell them and calls primitives with positional arrays and
static keywords. The eager runtime builds Tensor methods and `srcgrad.*` functions from these tables; the
compiler resolves calls in user code through them. Adapters need no rules: they are compositions.

Tables:
    NUMPY_FUNCTIONS   numpy function object -> adapter       (np.sin, np.linalg.solve, ...)
    METHODS           method name -> adapter(self, ...)       (ndarray and Tensor methods)
    ATTRIBUTES        attribute name -> adapter(self)         (x.T, x.shape, x.ndim, ...)
    TORCH_FUNCTIONS   srcgrad/torch function name -> adapter  (torch.sin, torch.mm, torch.clamp, ...)
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import primitives as P

Adapter = Callable[..., Any]


def _axis(axis: Any = None, dim: Any = None) -> Any:
    """NumPy says axis, PyTorch says dim; either may be a list."""
    a = dim if axis is None else axis
    return tuple(a) if isinstance(a, list) else a


def _shape_arg(shape: tuple) -> tuple:
    """reshape(2, 3) and reshape((2, 3)) both mean shape (2, 3)."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        return tuple(shape[0])
    return tuple(shape)


# ------------------------------------------------------------------------------------- shared adapters
def sum_(x, axis=None, keepdims=False, *, dim=None, keepdim=False, dtype=None):
    return P.sum(x, axis=_axis(axis, dim), keepdims=keepdims or keepdim)


def mean_(x, axis=None, keepdims=False, *, dim=None, keepdim=False, dtype=None):
    return P.mean(x, axis=_axis(axis, dim), keepdims=keepdims or keepdim)


def max_(x, axis=None, keepdims=False, *, dim=None, keepdim=False):
    return P.max(x, axis=_axis(axis, dim), keepdims=keepdims or keepdim)


def min_(x, axis=None, keepdims=False, *, dim=None, keepdim=False):
    return P.min(x, axis=_axis(axis, dim), keepdims=keepdims or keepdim)


def argmax_(x, axis=None, keepdims=False, *, dim=None, keepdim=False):
    return P.argmax(x, axis=_axis(axis, dim), keepdims=keepdims or keepdim)


def argmin_(x, axis=None, keepdims=False, *, dim=None, keepdim=False):
    return P.argmin(x, axis=_axis(axis, dim), keepdims=keepdims or keepdim)


def reshape_method(x, *shape, **kw):
    return P.reshape(x, shape=_shape_arg(shape) if shape else tuple(kw["shape"]))


def reshape_fn(x, shape=None, *, newshape=None):
    s = shape if shape is not None else newshape
    return P.reshape(x, shape=(s,) if isinstance(s, int) else tuple(s))


def transpose_method(x, *axes):
    """ndarray.transpose(*axes) permutes; with two axes on a Tensor (torch) it swaps them."""
    if not axes:
        return P.transpose(x)
    if len(axes) == 1 and not isinstance(axes[0], int):
        return P.transpose(x, axes=tuple(axes[0]))
    return P.transpose(x, axes=tuple(axes))


def swap_axes(x, a, b):
    n = P.ndim(x)
    perm = list(range(n))
    perm[a % n], perm[b % n] = perm[b % n], perm[a % n]
    return P.transpose(x, axes=tuple(perm))


def t_(x):
    return P.transpose(x) if P.ndim(x) >= 2 else x


def power_(x, y):
    return P.power(x, y)


def clip_(x, a_min=None, a_max=None, *, min=None, max=None):
    return P.clip(x, min=a_min if a_min is not None else min, max=a_max if a_max is not None else max)


def where_(cond, x, y):
    return P.where(cond, x, y)


def squeeze_(x, axis=None, *, dim=None):
    return P.squeeze(x, axis=_axis(axis, dim))


def expand_dims_(x, axis=None, *, dim=None):
    return P.expand_dims(x, axis=_axis(axis, dim))


def broadcast_to_(x, shape):
    return P.broadcast_to(x, shape=tuple(shape))


def astype_(x, dtype):
    return P.astype(x, dtype=dtype)


def softplus_(x, beta=1.0, threshold=20.0):
    return P.softplus(x * beta) / beta if beta != 1.0 else P.softplus(x)


# ============================================================================================ the tables
NUMPY_FUNCTIONS: dict[Any, Adapter] = {
    np.negative: P.neg, np.abs: P.abs, np.absolute: P.abs, np.sign: P.sign, np.exp: P.exp,
    np.expm1: P.expm1, np.log: P.log, np.log1p: P.log1p, np.log2: P.log2, np.log10: P.log10,
    np.sqrt: P.sqrt, np.square: P.square, np.reciprocal: P.reciprocal, np.sin: P.sin, np.cos: P.cos,
    np.tan: P.tan, np.arcsin: P.arcsin, np.arccos: P.arccos, np.arctan: P.arctan, np.sinh: P.sinh,
    np.cosh: P.cosh, np.tanh: P.tanh, np.arcsinh: P.arcsinh, np.arccosh: P.arccosh,
    np.arctanh: P.arctanh, np.add: P.add, np.subtract: P.subtract, np.multiply: P.multiply,
    np.divide: P.divide, np.true_divide: P.divide, np.power: power_, np.maximum: P.maximum,
    np.minimum: P.minimum, np.arctan2: P.arctan2, np.hypot: P.hypot, np.where: where_, np.clip: clip_,
    np.sum: sum_, np.mean: mean_, np.max: max_, np.amax: max_, np.min: min_, np.amin: min_,
    np.argmax: argmax_, np.argmin: argmin_, np.reshape: reshape_fn, np.transpose: transpose_method,
    np.swapaxes: swap_axes, np.squeeze: squeeze_, np.expand_dims: expand_dims_,
    np.broadcast_to: broadcast_to_, np.floor: P.floor, np.ceil: P.ceil, np.round: P.round,
    np.equal: P.equal, np.not_equal: P.not_equal, np.less: P.less, np.less_equal: P.less_equal,
    np.greater: P.greater, np.greater_equal: P.greater_equal, np.logical_and: P.logical_and,
    np.logical_or: P.logical_or, np.logical_not: P.logical_not, np.isfinite: P.isfinite,
    np.shape: P.shape, np.size: P.size, np.ndim: P.ndim, np.zeros_like: P.zeros_like,
    np.ones_like: P.ones_like,
}
# Python's own builtins that users apply to arrays and floats
BUILTINS: dict[Any, Adapter] = {abs: P.abs}

METHODS: dict[str, Adapter] = {
    # ndarray and Tensor alike
    "sum": sum_, "mean": mean_, "max": max_, "min": min_, "argmax": argmax_, "argmin": argmin_,
    "reshape": reshape_method, "view": reshape_method, "transpose": transpose_method,
    "swapaxes": swap_axes, "squeeze": squeeze_, "clip": clip_, "astype": astype_,
    "__abs__": P.abs, "__neg__": P.neg,
    # Tensor (torch) spellings
    "abs": P.abs, "neg": P.neg, "sign": P.sign, "exp": P.exp, "expm1": P.expm1, "log": P.log,
    "log1p": P.log1p, "log2": P.log2, "log10": P.log10, "sqrt": P.sqrt, "square": P.square,
    "reciprocal": P.reciprocal, "sin": P.sin, "cos": P.cos, "tan": P.tan, "asin": P.arcsin,
    "arcsin": P.arcsin, "acos": P.arccos, "arccos": P.arccos, "atan": P.arctan, "arctan": P.arctan,
    "sinh": P.sinh, "cosh": P.cosh, "tanh": P.tanh, "asinh": P.arcsinh, "arcsinh": P.arcsinh,
    "acosh": P.arccosh, "arccosh": P.arccosh, "atanh": P.arctanh, "arctanh": P.arctanh,
    "sigmoid": P.sigmoid, "relu": P.relu, "erf": P.erf, "add": P.add, "sub": P.subtract,
    "subtract": P.subtract, "mul": P.multiply, "multiply": P.multiply, "div": P.divide,
    "divide": P.divide, "true_divide": P.divide, "pow": power_, "maximum": P.maximum,
    "minimum": P.minimum, "atan2": P.arctan2, "arctan2": P.arctan2, "hypot": P.hypot,
    "clamp": clip_, "t": t_, "permute": transpose_method, "unsqueeze": expand_dims_,
    "expand_dims": expand_dims_, "floor": P.floor, "ceil": P.ceil, "round": P.round,
    "eq": P.equal, "ne": P.not_equal, "lt": P.less, "le": P.less_equal, "gt": P.greater,
    "ge": P.greater_equal, "logical_not": P.logical_not,
}

ATTRIBUTES: dict[str, Adapter] = {
    "T": t_, "mT": lambda x: swap_axes(x, -1, -2), "shape": P.shape, "ndim": P.ndim, "size": P.size,
}

TORCH_FUNCTIONS: dict[str, Adapter] = {
    **{name: adapter for name, adapter in METHODS.items() if not name.startswith("__")},
    "where": where_, "clip": clip_, "clamp": clip_, "softplus": softplus_,
    "broadcast_to": broadcast_to_, "zeros_like": P.zeros_like, "ones_like": P.ones_like,
}


def lookup_function(obj: Any) -> Adapter | None:
    """The adapter for a function object users call (numpy function, builtin, or srcgrad function)."""
    try:
        return NUMPY_FUNCTIONS.get(obj) or BUILTINS.get(obj)
    except TypeError:  # unhashable
        return None
