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
    TENSOR_METHODS    METHODS with PyTorch's meaning where a name differs (repeat, transpose, var, std,
                      max, min, size): the eager runtime's Tensor methods
    TORCH_FUNCTIONS   srcgrad/torch function name -> adapter  (torch.sin, torch.mm, torch.clamp, ...);
                      dotted names live in sub-namespaces: "linalg.inv", "nn.functional.pad"

Conventions: adapters take arguments exactly as NumPy / PyTorch do (sequences for concatenate/cat/stack,
`axis` or `dim`, `keepdims` or `keepdim`). Composites that return several values (split, chunk,
slogdet, max(dim)) return tuples/namedtuples of single-output primitives.
"""

from __future__ import annotations

import math as _math
from collections import namedtuple
from typing import Any, Callable

import numpy as np

from . import primitives as P
from .backend import array_ns

Adapter = Callable[..., Any]

# Helpers that only massage static arguments (axis, dims, shape): their results never carry a derivative.
# The compiler folds them at transform time when their arguments are constants; otherwise it meets them
# in generated code, where an argument may come off the adjoint's stack next to saved arrays, which
# forward mode (hvp, hessian) then treats as possibly carrying a tangent. Each is paired here with a
# non-differentiable primitive of the same implementation, which `lookup_function` hands the compiler,
# so such a call is a plain non-differentiable operation instead of a function to transform.
STATIC_HELPERS: dict[Any, Any] = {}


def _static_helper(f: Callable[..., Any]) -> Callable[..., Any]:
    """Register `f` as a static-argument helper (see STATIC_HELPERS); returns `f` itself, so calls from
    Python and constant folding at transform time are unchanged."""
    STATIC_HELPERS[f] = P.Primitive(f.__name__.lstrip("_"), f, differentiable=False)
    return f


@_static_helper
def _axis(axis: Any = None, dim: Any = None) -> Any:
    """NumPy says axis, PyTorch says dim; either may be a list."""
    a = dim if axis is None else axis
    return tuple(a) if isinstance(a, list) else a


@_static_helper
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


@_static_helper
def _permutation(axes: tuple) -> Any:
    """ndarray.transpose's `*axes`: none (reverse the axes), one sequence, or the axes one by one."""
    if not axes:
        return None
    if len(axes) == 1 and not isinstance(axes[0], int):
        return tuple(axes[0])
    return tuple(axes)


def transpose_method(x, *axes):
    """ndarray.transpose(*axes) / Tensor.permute(*dims): a permutation. One expression, so the
    compiler inlines it (and folds the permutation when the axes are constants) instead of having to
    transform a function taking *args."""
    return P.transpose(x, axes=_permutation(axes))


def transpose_fn(x, axes=None):
    """np.transpose(a, axes=None) / np.permute_dims: axes as one sequence, by position or keyword."""
    return P.transpose(x, axes=_dims(axes))


class Swap(tuple):
    """A permutation that swaps two axes: a plain tuple, by which the tape names the node
    TransposeBackward0 (PyTorch's name for transpose / mT) rather than PermuteBackward0."""
    __slots__ = ()


@_static_helper
def _swapped(n: int, a: int, b: int) -> tuple:
    """The permutation of n axes that swaps axes a and b."""
    perm = list(range(n))
    perm[a % n], perm[b % n] = perm[b % n], perm[a % n]
    return Swap(perm)


def swap_axes(x, a, b):
    """np.swapaxes: a permutation (one expression, so the compiler inlines it)."""
    return P.transpose(x, axes=_swapped(P.ndim(x), a, b))


def matrix_transpose_(x):
    """x.mT / np.matrix_transpose: swap the last two axes."""
    return P.transpose(x, axes=_swapped(P.ndim(x), -1, -2))


def rmatmul_(x, y):
    """x.__rmatmul__(y) is y @ x."""
    return P.matmul(y, x)


def linalg_diagonal_(x, offset=0):
    """torch.linalg.diagonal: the diagonal of the last two dimensions."""
    return P.diagonal(x, offset=offset, axis1=-2, axis2=-1)


def t_(x):
    return P.transpose(x) if P.ndim(x) >= 2 else x


def power_(x, y):
    return P.power(x, y)


def clip_(x, a_min=None, a_max=None, *, min=None, max=None):
    return P.clip(x, min=a_min if a_min is not None else min, max=a_max if a_max is not None else max)


def clamp_min_(x, min):  # noqa: A002 -- PyTorch's parameter name
    """torch.clamp_min / x.clamp_min(m): clip from below."""
    return P.clip(x, min=min, max=None)


def clamp_max_(x, max):  # noqa: A002
    """torch.clamp_max / x.clamp_max(m): clip from above."""
    return P.clip(x, min=None, max=max)


def where_(cond, x, y):
    return P.where(cond, x, y)


def squeeze_(x, axis=None, *, dim=None):
    return P.squeeze(x, axis=_axis(axis, dim))


def expand_dims_(x, axis=None, *, dim=None):
    return P.expand_dims(x, axis=_axis(axis, dim))


def broadcast_to_(x, shape):
    return P.broadcast_to(x, shape=tuple(shape))


def astype_(x, dtype, order="K", casting="unsafe", subok=True, copy=True):
    """ndarray.astype: a new array of that dtype; with copy=False, x itself where no cast is needed."""
    return P.astype(x, dtype=dtype) if copy else P.astype(x, dtype=dtype, copy=False)


def view_(x, *shape):
    """ndarray.view() is x (the same memory); Tensor.view(shape) reshapes."""
    return P.reshape(x, shape=_shape_arg(shape)) if shape else x


def softplus_(x, beta=1.0, threshold=20.0):
    """PyTorch's softplus: log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (at the
    defaults the two differ by less than exp(-20), so the plain primitive serves)."""
    if beta == 1.0 and threshold == 20.0:
        return P.softplus(x)
    return P.where(x * beta > threshold, x, P.softplus(x * beta) / beta)


@_static_helper
def _dims(dims: Any) -> Any:
    """A dims argument that may be an int, a list or a tuple -> int or tuple (what primitives take)."""
    return tuple(dims) if isinstance(dims, (list, tuple)) else dims


def _seq(arrays: Any) -> tuple:
    """np.concatenate([a, b]) and torch.cat((a, b)) pass one sequence; primitives take *arrays."""
    return tuple(arrays)


def _flat(x):
    return P.reshape(x, shape=(-1,))


# ------------------------------------------------------------------------------------ reductions, more
def prod_(x, axis=None, keepdims=False, *, dim=None, keepdim=False, dtype=None):
    return P.prod(x, axis=_axis(axis, dim), keepdims=keepdims or keepdim)


def var_(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, correction=None, dim=None,
         keepdim=False):
    """NumPy's var (ddof=0 unless given)."""
    ddof = ddof if correction is None else correction
    return P.var(x, axis=_axis(axis, dim), ddof=ddof, keepdims=keepdims or keepdim)


def std_(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, correction=None, dim=None,
         keepdim=False):
    ddof = ddof if correction is None else correction
    return P.std(x, axis=_axis(axis, dim), ddof=ddof, keepdims=keepdims or keepdim)


def _torch_correction(unbiased: Any, correction: Any) -> Any:
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def var_torch(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """torch.var: unbiased (correction=1) by default, unlike NumPy."""
    if isinstance(dim, bool):  # torch.var(x, False): the old positional `unbiased`
        dim, unbiased = None, dim
    return P.var(x, axis=_dims(dim), ddof=_torch_correction(unbiased, correction), keepdims=keepdim)


def std_torch(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return P.std(x, axis=_dims(dim), ddof=_torch_correction(unbiased, correction), keepdims=keepdim)


@_static_helper
def _vector_ord(ord: Any) -> Any:
    if ord is None or ord == "fro":
        return 2
    if isinstance(ord, str):
        raise NotImplementedError(f"norm ord={ord!r} is not supported (vector p-norms and 'fro' are)")
    return ord


def linalg_norm(x, ord=None, axis=None, keepdims=False, *, dim=None, keepdim=False):
    """np.linalg.norm / torch.linalg.norm: vector norms, and the matrix norms over two axes (Frobenius
    by default; ord 1, -1, inf, -inf from column and row sums, 2, -2 and 'nuc' from singular values)."""
    axis = _axis(axis, dim)
    keepdims = keepdims or keepdim
    matrix = (isinstance(axis, tuple) and len(axis) == 2) or (axis is None and P.ndim(x) == 2)
    if matrix and ord not in (None, "fro"):
        return _matrix_norm(x, ord, _matrix_axes(x, axis, ord), keepdims)
    if axis is None and ord is not None and not matrix and P.ndim(x) != 1:
        raise ValueError("Improper number of dimensions to norm.")
    return P.norm(x, ord=_vector_ord(ord), axis=axis, keepdims=keepdims)


@_static_helper
def _matrix_axes(x: Any, axis: Any, ord: Any) -> tuple:
    """The two axes of a matrix norm, non-negative (the last two where axis is None); ord 2, -2 and
    'nuc' read singular values, over the last two axes only."""
    nd = P.ndim(x)
    axes = (nd - 2, nd - 1) if axis is None else tuple(a % nd for a in axis)
    if axes[0] == axes[1]:
        raise ValueError("Duplicate axes given.")
    if ord not in (1, -1, 2, -2, np.inf, -np.inf, "nuc"):
        raise ValueError(f"Invalid norm order {ord!r} for matrices.")
    if ord in (2, -2, "nuc") and set(axes) != {nd - 2, nd - 1}:
        raise NotImplementedError(f"srcgrad takes matrix norm ord={ord!r} over the last two axes only")
    return axes


@_static_helper
def _kept(x: Any, axes: tuple) -> tuple:
    """x's shape with the two matrix axes of length one (a matrix norm with keepdims)."""
    return tuple(1 if k in axes else n for k, n in enumerate(P.shape(x)))


def _matrix_norm(x, ord, axes, keepdims):
    """The matrix norms that are not Frobenius: ord 1 / -1 the largest / smallest column sum of |x|, inf /
    -inf the row sums', 2 / -2 the largest / smallest singular value, 'nuc' their sum."""
    if ord in (2, -2, "nuc"):
        s = P.svd_s(x)
        out = P.sum(s, axis=-1) if ord == "nuc" else (P.max(s, axis=-1) if ord == 2 else P.min(s, axis=-1))
        return P.reshape(out, shape=_kept(x, axes)) if keepdims else out
    inner, outer = axes if ord in (1, -1) else (axes[1], axes[0])
    sums = P.sum(P.abs(x), axis=inner, keepdims=True)
    picked = P.max(sums, axis=outer, keepdims=True) if ord > 0 else P.min(sums, axis=outer, keepdims=True)
    return picked if keepdims else P.squeeze(picked, axis=axes)


def vector_norm(x, ord=2, dim=None, keepdim=False, *, axis=None, keepdims=False):
    """torch.linalg.vector_norm: a p-norm over dim, all elements when dim is None."""
    return P.norm(x, ord=_vector_ord(ord), axis=_axis(axis, dim), keepdims=keepdims or keepdim)


def norm_torch(x, p="fro", dim=None, keepdim=False, dtype=None):
    """Tensor.norm / torch.norm: the p-norm of all elements (or over dim), whatever the tensor's rank."""
    return P.norm(x, ord=_vector_ord(p), axis=_dims(dim), keepdims=keepdim)


def matrix_norm_torch(x, ord="fro", dim=(-2, -1), keepdim=False):
    """torch.linalg.matrix_norm: a norm of the matrices over the last two dims (np.linalg.norm's matrix
    norms, batched)."""
    return linalg_norm(x, ord=ord, axis=tuple(dim), keepdims=keepdim)


def logsumexp_(x, axis=None, keepdims=False, *, dim=None, keepdim=False):
    return P.logsumexp(x, axis=_axis(axis, dim), keepdims=keepdims or keepdim)


def softmax_(x, dim=None, *, axis=None, dtype=None):
    a = _axis(axis, dim)
    return P.softmax(x, axis=-1 if a is None else a)


def log_softmax_(x, dim=None, *, axis=None, dtype=None):
    a = _axis(axis, dim)
    return P.log_softmax(x, axis=-1 if a is None else a)


def cumsum_(x, axis=None, dtype=None, out=None, *, dim=None):
    """np.cumsum / torch.cumsum; NumPy's axis=None runs over the flattened array. One expression (the
    compiler inlines it: with a constant axis the test folds away at transform time)."""
    return P.cumsum(P.reshape(x, shape=(-1,)), axis=0) if _axis(axis, dim) is None else P.cumsum(
        x, axis=_axis(axis, dim))


def cumprod_(x, axis=None, dtype=None, out=None, *, dim=None):
    """np.cumprod / torch.cumprod, as cumsum_."""
    return P.cumprod(P.reshape(x, shape=(-1,)), axis=0) if _axis(axis, dim) is None else P.cumprod(
        x, axis=_axis(axis, dim))


def sort_(x, axis=-1, kind=None, order=None, *, stable=None):
    """np.sort: a sorted copy; axis=None sorts the flattened array."""
    return P.sort(P.reshape(x, shape=(-1,)), axis=-1) if axis is None else P.sort(x, axis=axis)


MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def _is_dim(d: Any) -> bool:
    return d is None or isinstance(d, (int, tuple, list))


def _at_index(x, idx, dim, keepdim):
    """x gathered along `dim` at the (non-differentiable) indices `idx`, as torch.max(x, dim) returns its
    values: the gradient goes to the returned index alone, not split across ties as np.max's rule does."""
    k = idx if keepdim else P.expand_dims(idx, axis=dim)
    # flat positions of x's elements at those indices: flat_along_axis needs the order in x's shape
    pos = P.flat_along_axis(P.broadcast_to(k, shape=P.shape(x)), axis=dim)
    first = (slice(None),) * (dim % P.ndim(x)) + (slice(0, 1),)
    flat = P.reshape(x, shape=(-1,))
    v = flat[pos[first]]
    return v if keepdim else P.squeeze(v, axis=dim)


def max_torch(x, dim=None, keepdim=False, *, other=None):
    """torch.max: max(x) -> value; max(x, dim) -> (values, indices); max(x, other) -> elementwise."""
    if other is not None or not _is_dim(dim):
        return P.maximum(x, dim if other is None else other)
    if dim is None:
        return P.max(x)
    if not isinstance(dim, int) or P.ndim(x) == 0:
        return MaxResult(P.max(x, axis=dim, keepdims=keepdim), P.argmax(x, axis=dim, keepdims=keepdim))
    idx = P.argmax(x, axis=dim, keepdims=keepdim)
    return MaxResult(_at_index(x, idx, dim, keepdim), idx)


def min_torch(x, dim=None, keepdim=False, *, other=None):
    if other is not None or not _is_dim(dim):
        return P.minimum(x, dim if other is None else other)
    if dim is None:
        return P.min(x)
    if not isinstance(dim, int) or P.ndim(x) == 0:
        return MinResult(P.min(x, axis=dim, keepdims=keepdim), P.argmin(x, axis=dim, keepdims=keepdim))
    idx = P.argmin(x, axis=dim, keepdims=keepdim)
    return MinResult(_at_index(x, idx, dim, keepdim), idx)


def any_(x, axis=None, keepdims=False, *, dim=None, keepdim=False):
    return P.any(x, axis=_axis(axis, dim), keepdims=keepdims or keepdim)


def all_(x, axis=None, keepdims=False, *, dim=None, keepdim=False):
    return P.all(x, axis=_axis(axis, dim), keepdims=keepdims or keepdim)


# ----------------------------------------------------------------------------------- linear algebra
def dot_(a, b):
    """np.dot: scalars multiply, 1-d/2-d is matmul, N-d sums a's last axis with b's second-to-last."""
    na, nb = P.ndim(a), P.ndim(b)
    if na == 0 or nb == 0:
        return P.multiply(a, b)
    if na <= 2 and nb <= 2:
        return P.matmul(a, b)
    if nb == 1:
        return P.matmul(a, b)
    return tensordot_(a, b, axes=([na - 1], [nb - 2]))


def vdot_(a, b):
    """np.vdot: the dot product of the flattened arrays (a def, not a lambda, so the compiler can
    read and inline it)."""
    return P.sum(P.multiply(P.reshape(a, shape=(-1,)), P.reshape(b, shape=(-1,))))


def outer_(a, b):
    """np.outer / torch.outer: inputs are flattened first."""
    return P.multiply(P.reshape(a, shape=(-1, 1)), P.reshape(b, shape=(1, -1)))


def inner_(a, b):
    """np.inner: sum over the last axes of both."""
    if P.ndim(a) == 0 or P.ndim(b) == 0:
        return P.multiply(a, b)
    return tensordot_(a, b, axes=([P.ndim(a) - 1], [P.ndim(b) - 1]))


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def tensordot_(a, b, axes=2, *, dims=None):
    """np.tensordot (torch.tensordot says dims): written as one einsum with explicit subscripts."""
    if dims is not None:
        axes = dims
    na, nb = P.ndim(a), P.ndim(b)
    if isinstance(axes, int):
        ax_a, ax_b = list(range(na - axes, na)), list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, int) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, int) else list(ax_b)
    ax_a, ax_b = [i % na for i in ax_a], [i % nb for i in ax_b]
    sa = list(_LETTERS[:na])
    sb = list(_LETTERS[na:na + nb])
    for i, j in zip(ax_a, ax_b, strict=False):
        sb[j] = sa[i]
    out = [c for i, c in enumerate(sa) if i not in ax_a] + [c for j, c in enumerate(sb) if j not in ax_b]
    return P.einsum(a, b, subscripts="".join(sa) + "," + "".join(sb) + "->" + "".join(out))


@_static_helper
def explicit_subscripts(subscripts: str, *operands: Any) -> str:
    """einsum's subscripts with '...' written out for these operands' ranks (read at run time): what the
    compiler passes the einsum primitive for `np.einsum('...ij,...jk->...ik', a, b)`."""
    return _explicit_subscripts(subscripts, operands)


def _explicit_subscripts(subscripts: str, operands: tuple) -> str:
    """Expand '...' and add the implicit output ('ij,jk' -> 'ij,jk->ik'), so every subscript is a letter."""
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        lhs, rhs = subscripts.split("->")
    else:
        lhs, rhs = subscripts, None
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {len(terms)} subscripts for {len(operands)} operands")
    used = set(c for c in subscripts if c.isalpha())
    spare = [c for c in _LETTERS if c not in used]
    n_ell = 0
    for term, op in zip(terms, operands, strict=False):
        if "..." in term:
            n_ell = builtins_max(n_ell, P.ndim(op) - (len(term) - 3))
    ell = "".join(spare[:n_ell])
    new_terms = []
    for term, op in zip(terms, operands, strict=False):
        if "..." in term:
            k = P.ndim(op) - (len(term) - 3)
            term = term.replace("...", ell[n_ell - k:] if k else "")
        new_terms.append(term)
    if rhs is None:
        counts = {c: "".join(new_terms).count(c) for c in set("".join(new_terms))}
        rhs = ell + "".join(sorted(c for c in counts if counts[c] == 1 and c not in ell))
    elif ell and "..." not in rhs:  # NumPy's own check: the broadcast axes go nowhere
        raise ValueError("output has more dimensions than subscripts given in einstein sum, but no '...' "
                         "ellipsis provided to broadcast the extra dimensions.")
    else:
        rhs = rhs.replace("...", ell)
    return ",".join(new_terms) + "->" + rhs


def builtins_max(a: int, b: int) -> int:
    return a if a >= b else b


def einsum_(subscripts, *operands):
    """np.einsum / torch.einsum (operands as varargs or one list)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return P.einsum(*operands, subscripts=_explicit_subscripts(subscripts, operands))


def mm_(a, b):
    return P.matmul(a, b)


def trace_(x, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """np.trace: the sum of the diagonal (of the first two axes by default)."""
    return P.sum(P.diagonal(x, offset=offset, axis1=axis1, axis2=axis2), axis=-1)


def diagonal_(x, offset=0, axis1=0, axis2=1, *, dim1=None, dim2=None):
    return P.diagonal(x, offset=offset, axis1=axis1 if dim1 is None else dim1,
                      axis2=axis2 if dim2 is None else dim2)


def diag_(x, k=0, *, diagonal=None):
    """np.diag / torch.diag: 1-d -> a matrix with x on diagonal k; 2-d -> the diagonal k."""
    if diagonal is not None:
        k = diagonal
    if P.ndim(x) == 2:
        return P.diagonal(x, offset=k)
    n = P.shape(x)[0]
    m = n + (k if k >= 0 else -k)
    rows = P.pad(P.reshape(x, shape=(n, 1)) * P.eye_like(x, n=n, m=n), pad_width=(
        (builtins_max(-k, 0), builtins_max(k, 0)), (builtins_max(k, 0), builtins_max(-k, 0))))
    return P.reshape(rows, shape=(m, m))


def slogdet_(a):
    """np.linalg.slogdet / torch.linalg.slogdet: (sign, logabsdet); only logabsdet carries a gradient."""
    return SlogdetResult(P.slogdet_sign(a), P.logabsdet(a))


SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])


def slogdet_pack_(sign, logabsdet):
    """The compiler's reading of SlogdetResult(sign, logabsdet): a tuple, so `np.linalg.slogdet(K)[1]`
    is the logabsdet primitive (at run time it stays the namedtuple)."""
    return (sign, logabsdet)


def logdet_(a):
    """torch.logdet: log det a (nan where det < 0)."""
    return P.logabsdet(a) + P.log(P.slogdet_sign(a) * 1.0)


EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])


def eigh_(a, UPLO="L"):
    """np.linalg.eigh of a symmetric matrix: (eigenvalues, eigenvectors), each its own primitive. The
    derivative takes the input as symmetric (as cholesky's); the eigenvectors' needs distinct eigenvalues."""
    w = P.eigvalsh(a)  # (two statements: the compiler transforms the adapter as a call, whose pair it
    return EighResult(w, P.eigvecsh(a))  # unpacks; a one-expression adapter is inlined, and is not)


def eigvalsh_(a, UPLO="L"):
    return P.eigvalsh(a)


def eigh_pack_(eigenvalues, eigenvectors):
    """The compiler's reading of EighResult(w, V): a tuple, so `w, V = np.linalg.eigh(A)` and
    `np.linalg.eigh(A)[0]` are the eigvalsh / eigvecsh primitives (at run time it stays the namedtuple)."""
    return (eigenvalues, eigenvectors)


SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = namedtuple("QRResult", ["Q", "R"])


@_static_helper
def _svd_full_ok(shape: tuple, full_matrices: bool, compute_uv: bool = True) -> bool:
    """Whether svd returns (U, S, Vh) (False: compute_uv=False, S alone). full_matrices=True (NumPy's and
    PyTorch's default) is the reduced SVD only for a square matrix: a non-square one is refused (the
    extra singular vectors are not unique, and have no rule)."""
    if not compute_uv:
        return False
    if full_matrices and shape[-1] != shape[-2]:
        raise NotImplementedError(
            f"svd with full_matrices=True of a {shape[-2]} x {shape[-1]} matrix: srcgrad differentiates the "
            "reduced SVD; pass full_matrices=False (or compute_uv=False for the singular values)")
    return True


def svd_(a, full_matrices=True, compute_uv=True, hermitian=False):
    """np.linalg.svd / torch.linalg.svd of real matrices: (U, S, Vh) of the reduced SVD, each its own
    primitive (their rules need distinct nonzero singular values); compute_uv=False: S alone."""
    uv = _svd_full_ok(P.shape(a), full_matrices, compute_uv)
    return SVDResult(P.svd_u(a), P.svd_s(a), P.svd_vh(a)) if uv else P.svd_s(a)


svd_.tuple_unless = ("compute_uv",)  # the compiler reads svd(...) as (U, S, Vh) unless this is passed


def svd_pack_(U, S, Vh):
    """The compiler's reading of SVDResult(U, S, Vh): a tuple."""
    return (U, S, Vh)


def svdvals_(a):
    """np.linalg.svdvals / torch.linalg.svdvals: the singular values."""
    return P.svd_s(a)


@_static_helper
def _qr_mode(shape: tuple, mode: str) -> bool:
    """Whether qr returns (Q, R): 'reduced' (the default), and 'complete' where it is the reduced one
    (rows <= columns); False for mode 'r' (R alone); 'raw' and the rest are refused."""
    if mode == "reduced" or (mode == "complete" and shape[-2] <= shape[-1]):
        return True
    if mode == "r":
        return False
    raise NotImplementedError(f"qr mode={mode!r} of a {shape[-2]} x {shape[-1]} matrix is not supported "
                              "(mode='reduced' and mode='r' are)")


def qr_(a, mode="reduced"):
    """np.linalg.qr / torch.linalg.qr: (Q, R) of the reduced decomposition, each its own primitive (the
    rules take rows >= columns, full rank); mode='r': R alone."""
    both = _qr_mode(P.shape(a), mode)
    return QRResult(P.qr_q(a), P.qr_r(a)) if both else P.qr_r(a)


qr_.tuple_unless = ("mode",)  # the compiler reads qr(...) as (Q, R) unless a mode is passed


def qr_pack_(Q, R):
    """The compiler's reading of QRResult(Q, R): a tuple."""
    return (Q, R)


# ------------------------------------------------------------------------------- complex values, FFT
# Complex cotangents follow JAX's convention (rules.py, docs/rules.md): for a real loss L of a complex z,
# the cotangent is dL/dRe z - i dL/dIm z, the conjugate of PyTorch's z.grad; a real input's is real.
def fft_(a, n=None, axis=-1, norm=None, out=None, *, dim=None):
    """np.fft.fft / torch.fft.fft along one axis (dim in PyTorch)."""
    return P.fft(a, n=n, axis=axis if dim is None else dim, norm=norm)


def ifft_(a, n=None, axis=-1, norm=None, out=None, *, dim=None):
    return P.ifft(a, n=n, axis=axis if dim is None else dim, norm=norm)


def rfft_(a, n=None, axis=-1, norm=None, out=None, *, dim=None):
    return P.rfft(a, n=n, axis=axis if dim is None else dim, norm=norm)


def irfft_(a, n=None, axis=-1, norm=None, out=None, *, dim=None):
    return P.irfft(a, n=n, axis=axis if dim is None else dim, norm=norm)


def angle_(z, deg=False):
    """np.angle: arctan2(Im z, Re z) (in degrees with deg=True)."""
    return P.arctan2(P.imag(z), P.real(z)) if not deg else P.multiply(
        P.arctan2(P.imag(z), P.real(z)), 180.0 / _math.pi)


def tril_(x, k=0, *, diagonal=None):
    return P.tril(x, k=k if diagonal is None else diagonal)


def triu_(x, k=0, *, diagonal=None):
    return P.triu(x, k=k if diagonal is None else diagonal)


# ----------------------------------------------------------------------------------------- shape, more
def concatenate_(arrays, axis=0, out=None, dtype=None, *, dim=None):
    """np.concatenate / torch.cat: one sequence; NumPy's axis=None flattens every array first."""
    arrays = _seq(arrays)
    a = axis if dim is None else dim
    if a is None:
        return P.concatenate(*[_flat(x) for x in arrays], axis=0)
    return P.concatenate(*arrays, axis=a)


def stack_(arrays, axis=0, out=None, dtype=None, *, dim=None):
    return P.stack(*_seq(arrays), axis=axis if dim is None else dim)


def vstack_shape(x: Any) -> tuple:
    """np.vstack's view of one operand: a vector (or a number) is one row, anything else itself."""
    return (1, -1) if P.ndim(x) < 2 else P.shape(x)


def hstack_axis(x: Any) -> int:
    """np.hstack joins vectors end to end (axis 0) and everything else along its second axis."""
    return 0 if P.ndim(x) <= 1 else 1


def hstack_shape(x: Any) -> tuple:
    """np.hstack's view of one operand: a number is a vector of one, anything else itself."""
    return (1,) if P.ndim(x) == 0 else P.shape(x)


def column_shape(x: Any) -> tuple:
    """np.column_stack's view of one operand: a number or a vector is one column."""
    return (-1, 1) if P.ndim(x) < 2 else P.shape(x)


def dstack_shape(x: Any) -> tuple:
    """np.dstack's view of one operand (np.atleast_3d): (1, 1, 1), (1, n, 1), (m, n, 1), or itself."""
    nd, s = P.ndim(x), P.shape(x)
    return (1, 1, 1) if nd == 0 else (1, s[0], 1) if nd == 1 else (s[0], s[1], 1) if nd == 2 else s


def _split_at(x: Any, bounds: list, axis: int) -> list:
    """Pieces of x between consecutive bounds along axis: each a getitem (split is no primitive)."""
    lead = (slice(None),) * (axis % P.ndim(x))
    pairs = zip(bounds[:-1], bounds[1:], strict=True)
    return [P.getitem(x, index=lead + (slice(lo, hi),)) for lo, hi in pairs]


def split_bounds(x: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """np.split's piece boundaries along axis: an int is a number of equal sections, a list the split
    indices."""
    n = P.shape(x)[axis]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        if n % k:
            raise ValueError("array split does not result in an equal division")
        return [i * (n // k) for i in range(k + 1)]
    return [0] + [int(i) for i in indices_or_sections] + [n]


def split_index(x: Any, indices_or_sections: Any, i: int, axis: int = 0) -> tuple:
    """The index of np.split's piece i (what the compiler writes for `p, q = np.split(x, 2)`)."""
    bounds = split_bounds(x, indices_or_sections, axis)
    return (slice(None),) * (axis % P.ndim(x)) + (slice(bounds[i], bounds[i + 1]),)


def split_(x, indices_or_sections, axis=0):
    """np.split: an int is a number of equal sections; a list gives the split indices."""
    return _split_at(x, split_bounds(x, indices_or_sections, axis), axis)


def array_split_(x, indices_or_sections, axis=0):
    """np.array_split: like split, but unequal sections are allowed (the first ones one longer)."""
    n = P.shape(x)[axis]
    if not isinstance(indices_or_sections, int):
        return split_(x, indices_or_sections, axis)
    k = indices_or_sections
    q, r = divmod(n, k)
    bounds = [0]
    for i in range(k):
        bounds.append(bounds[-1] + q + (1 if i < r else 0))
    return _split_at(x, bounds, axis)


def split_torch(x, split_size_or_sections, dim=0):
    """torch.split / Tensor.split: an int is the size of each chunk (the last may be smaller); a list
    gives the chunk sizes. (np.split's int means a number of sections: a different function.)"""
    n = P.shape(x)[dim]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        bounds = list(range(0, n, s)) + [n]
    else:
        bounds = [0]
        for s in split_size_or_sections:
            bounds.append(bounds[-1] + int(s))
        if bounds[-1] != n:
            raise ValueError(f"split sizes {list(split_size_or_sections)} do not sum to {n}")
    return tuple(_split_at(x, bounds, dim))


def chunk_(x, chunks, dim=0):
    """torch.chunk: pieces of size ceil(n / chunks)."""
    n = P.shape(x)[dim]
    size = -(-n // chunks)
    return split_torch(x, size, dim)


def flip_(x, axis=None, *, dims=None):
    return P.flip(x, axis=_dims(axis if dims is None else dims))


def roll_(x, shift=None, axis=None, *, shifts=None, dims=None):
    s = shift if shifts is None else shifts
    return P.roll(x, shift=_dims(s), axis=_dims(axis if dims is None else dims))


@_static_helper
def _diff_index(a: Any, axis: Any, upper: bool) -> tuple:
    """np.diff's two slices along axis (a[1:] and a[:-1] there)."""
    lead = (slice(None),) * (axis % P.ndim(a))
    return lead + ((slice(1, None) if upper else slice(None, -1)), Ellipsis)


@_static_helper
def _diff_order(n: Any) -> int:
    """np.diff's n, checked as NumPy checks it."""
    if type(n) is not int and not isinstance(n, np.integer) or n < 0:
        raise ValueError(f"order must be non-negative but got {n!r}")
    return int(n)


def diff_(a, n=1, axis=-1):
    """np.diff: the n-th difference along axis, n first differences, each two slices and a subtraction
    (their own rules)."""
    for _ in range(_diff_order(n)):
        a = P.getitem(a, index=_diff_index(a, axis, True)) - P.getitem(a, index=_diff_index(a, axis, False))
    return a


def append_(arr, values, axis=None):
    """np.append: both flattened and joined (axis=None, NumPy's default), or joined along axis."""
    if axis is None:
        return P.concatenate(P.reshape(arr, shape=(-1,)), P.reshape(values, shape=(-1,)), axis=0)
    return P.concatenate(arr, values, axis=axis)


@_static_helper
def _spacing_shape(x: Any, y: Any, axis: Any) -> tuple:
    """The shape np.trapezoid gives a 1-d x's differences: along y's axis, length one elsewhere."""
    shape = [1] * P.ndim(y)
    shape[axis % P.ndim(y)] = P.shape(x)[0] - 1
    return tuple(shape)


def trapezoid_(y, x=None, dx=1.0, axis=-1):
    """np.trapezoid (np.trapz): the trapezoid rule along axis, the mean of neighbours times the spacing
    (dx, or the differences of x: a 1-d x along axis, or an x shaped like y), summed (their own rules)."""
    upper = P.getitem(y, index=_diff_index(y, axis, True))
    mean = (upper + P.getitem(y, index=_diff_index(y, axis, False))) * 0.5
    if x is None:
        return P.sum(mean * dx, axis=axis)
    if P.ndim(x) == 1:
        return P.sum(mean * P.reshape(diff_(x), shape=_spacing_shape(x, y, axis)), axis=axis)
    return P.sum(mean * diff_(x, 1, axis), axis=axis)


@_static_helper
def _component(a: Any, i: int) -> tuple:
    """The index of component i of 3-vectors along the last axis (np.cross's default layout)."""
    if P.shape(a)[-1] != 3:
        raise ValueError("srcgrad's np.cross takes 3-vectors along the last axis")
    return (Ellipsis, i)


def cross_(a, b):
    """np.cross of 3-vectors along the last axis, from its components (their own rules)."""
    return P.stack(
        P.getitem(a, index=_component(a, 1)) * P.getitem(b, index=_component(b, 2))
        - P.getitem(a, index=_component(a, 2)) * P.getitem(b, index=_component(b, 1)),
        P.getitem(a, index=_component(a, 2)) * P.getitem(b, index=_component(b, 0))
        - P.getitem(a, index=_component(a, 0)) * P.getitem(b, index=_component(b, 2)),
        P.getitem(a, index=_component(a, 0)) * P.getitem(b, index=_component(b, 1))
        - P.getitem(a, index=_component(a, 1)) * P.getitem(b, index=_component(b, 0)),
        axis=-1,
    )


def tile_(x, reps=None, *, dims=None):
    reps = reps if dims is None else dims
    return P.tile(x, reps=(reps,) if isinstance(reps, int) else tuple(reps))


def repeat_(x, repeats, axis=None):
    """np.repeat / ndarray.repeat: each element repeated (int repeats only)."""
    if not isinstance(repeats, int):
        raise NotImplementedError("repeat: only an int number of repeats is supported")
    return P.repeat(x, repeats=repeats, axis=axis)


def repeat_torch(x, *sizes):
    """Tensor.repeat(*sizes): NumPy's tile, not NumPy's repeat."""
    return P.tile(x, reps=_shape_arg(sizes))


def repeat_interleave_(x, repeats, dim=None, *, output_size=None):
    """torch.repeat_interleave: NumPy's repeat."""
    return repeat_(x, repeats, dim)


@_static_helper
def _constant_pad_pairs(x: Any, pad_width: Any, mode: str, constant_values: Any) -> tuple:
    """np.pad's (before, after) pairs for each axis; modes other than constant, and a constant per side,
    are refused rather than padded differently."""
    if mode != "constant":
        raise NotImplementedError(f"pad mode {mode!r} is not supported (only 'constant')")
    if isinstance(constant_values, (tuple, list)):
        raise NotImplementedError("pad: one constant value for all sides only")
    return P.pad_pairs(pad_width, P.ndim(x))


def pad_(x, pad_width, mode="constant", constant_values=0):
    """np.pad, constant mode only: one expression, so the compiler inlines it."""
    return P.pad(x, pad_width=_constant_pad_pairs(x, pad_width, mode, constant_values), value=constant_values)


def pad_torch(x, pad, mode="constant", value=None):
    """torch.nn.functional.pad: pairs start from the LAST dimension: (left, right, top, bottom, ...)."""
    if mode != "constant":
        raise NotImplementedError(f"pad mode {mode!r} is not supported (only 'constant')")
    n = P.ndim(x)
    pairs = [(0, 0)] * n
    for i in range(len(pad) // 2):
        pairs[n - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return P.pad(x, pad_width=tuple(pairs), value=0.0 if value is None else value)


def ravel_(x, order="C"):
    return _flat(x)


def ndarray_flatten_(x, order="C"):
    """ndarray.flatten(): a copy, one dimension (ravel may share memory; flatten never does)."""
    return P.copy(P.reshape(x, shape=(-1,)))


def flatten_(x, start_dim=0, end_dim=-1):
    """ndarray.flatten() and torch's flatten(start_dim, end_dim)."""
    if isinstance(start_dim, str):  # ndarray.flatten('C')
        start_dim = 0
    s = P.shape(x)
    n = len(s)
    if n == 0:
        return P.reshape(x, shape=(1,))
    a, b = start_dim % n, end_dim % n
    size = 1
    for d in s[a:b + 1]:
        size *= d
    return P.reshape(x, shape=tuple(s[:a]) + (size,) + tuple(s[b + 1:]))


def expand_(x, *sizes):
    """Tensor.expand(*sizes): -1 keeps that dimension."""
    sizes = _shape_arg(sizes)
    s = P.shape(x)
    lead = len(sizes) - len(s)
    target = tuple(s[i - lead] if n == -1 else n for i, n in enumerate(sizes))
    return P.broadcast_to(x, shape=target)


def expand_as_(x, other):
    return P.broadcast_to(x, shape=P.shape(other))


def reshape_as_(x, other):
    return P.reshape(x, shape=P.shape(other))


def moveaxis_(x, source, destination):
    """np.moveaxis / torch.movedim: a permutation."""
    n = P.ndim(x)
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src, dst = [s % n for s in src], [d % n for d in dst]
    rest = [i for i in range(n) if i not in src]
    perm = [0] * n
    for s, d in zip(src, dst, strict=False):
        perm[d] = s
    it = iter(rest)
    for d in range(n):
        if d not in dst:
            perm[d] = next(it)
    return P.transpose(x, axes=tuple(perm))


def transpose_torch(x, dim0, dim1):
    """Tensor.transpose / torch.transpose: swaps two dimensions (ndarray.transpose permutes)."""
    return swap_axes(x, dim0, dim1)


def size_torch(x, dim=None):
    """Tensor.size(): the shape (torch calls it size); with dim, one extent."""
    s = P.shape(x)
    return s if dim is None else s[dim]


def unsqueeze_(x, dim):
    return P.expand_dims(x, axis=dim)


# ======================================================== torch indexing, sorting, masks and tests
# All composed from getitem / index_update / index_add with integer positions (their rules carry the
# derivatives, repeated positions accumulating in getitem's scatter-add back) and where.
SortResult = namedtuple("sort", ["values", "indices"])
TopkResult = namedtuple("topk", ["values", "indices"])


def _index_array(i: Any) -> Any:
    """An index (a static argument) as a plain array: a Tensor's array, anything else as it is."""
    return getattr(i, "_array", i)


def _along(dim: int, nd: int, part: Any) -> tuple:
    """An index that is `part` along `dim` and everything elsewhere."""
    return (slice(None),) * (dim % nd) + (part,)


def gather_(x, dim, index, *, sparse_grad=False):
    """torch.gather: out[i][j][k] = x[index[i][j][k]][j][k] (dim 0); index no larger than x off dim."""
    if P.ndim(x) == 0:
        return P.reshape(x, shape=(-1,))[index]
    pos = P.flat_along_axis(index, axis=dim, shape=P.shape(x))
    return P.reshape(x, shape=(-1,))[pos]


def _scatter(x, dim, index, src, value, add):
    """x with src (or value) written (or added) at x[index[i][j]][j] (dim 0), as a new array."""
    v = value if src is None else src
    if v is None:
        raise TypeError("scatter() needs src or value")
    pos = _index_array(P.reshape(P.flat_along_axis(index, axis=dim, shape=P.shape(x)), shape=(-1,)))
    if P.ndim(v) > 0:  # src may be larger than index: its leading block only
        v = P.reshape(v[tuple(slice(0, n) for n in P.shape(index))], shape=(-1,))
    flat = P.reshape(x, shape=(-1,))
    out = P.index_add(flat, v, index=pos) if add else P.index_update(flat, v, index=pos)
    return P.reshape(out, shape=P.shape(x))


def scatter_(x, dim, index, src=None, value=None, *, reduce=None):
    """torch.scatter (out of place): out[index[i][j]][j] = src[i][j] (dim 0); src may be a number."""
    if reduce is not None:
        raise NotImplementedError("scatter(reduce=...) is not supported (use scatter_add)")
    if src is not None and not hasattr(src, "shape"):  # scatter(dim, index, 1.5)
        src, value = None, src
    return _scatter(x, dim, index, src, value, add=False)


def scatter_add_(x, dim, index, src):
    """torch.scatter_add (out of place): out[index[i][j]][j] += src[i][j] (dim 0), repeats accumulate."""
    return _scatter(x, dim, index, src, None, add=True)


def argsort_torch(x, dim=-1, descending=False, stable=False):
    """torch.argsort: stable; descending keeps tied entries in their order (as torch's stable sort)."""
    if P.ndim(x) == 0:
        return P.zeros_like(P.astype(x, dtype="int64"))
    if descending:
        k = P.astype(x, dtype="int8") if str(getattr(x, "dtype", "")).endswith("bool") else x
        return P.argsort(P.neg(k), axis=dim)
    return P.argsort(x, axis=dim)


def sort_torch(x, dim=-1, descending=False, stable=False):
    """torch.sort -> (values, indices); the gradient goes to the entry each value came from."""
    idx = argsort_torch(x, dim, descending)
    return SortResult(gather_(x, dim, idx), idx)


def topk_(x, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    """torch.topk -> (values, indices): the k largest (smallest) along dim, in order."""
    idx = argsort_torch(x, dim, largest)
    if P.ndim(x) > 0:
        idx = idx[_along(dim, P.ndim(x), slice(0, k))]
    return TopkResult(gather_(x, dim, idx), idx)


def masked_fill_(x, mask, value):
    """Tensor.masked_fill: value where mask (broadcast to x's shape), x elsewhere, in x's dtype."""
    v = value if hasattr(value, "shape") else P.astype(P.zeros_like(x) + value, dtype=x.dtype)
    return P.where(P.broadcast_to(mask, shape=P.shape(x)), v, x)


def index_select_(x, dim, index):
    """torch.index_select: the entries at index (1-d) along dim."""
    if P.ndim(x) == 0:
        return x
    return x[_along(dim, P.ndim(x), _index_array(index))]


def index_add_torch(x, dim, index, source, *, alpha=1):
    """torch.index_add (out of place): source's slices added at index (1-d) along dim, repeated positions
    accumulating, times alpha."""
    if P.ndim(x) == 0:
        return P.add(x, source * alpha if alpha != 1 else source)
    return P.index_add(x, source * alpha if alpha != 1 else source,
                       index=_along(dim, P.ndim(x), _index_array(index)))


def _reduce_dims(dim: Any) -> Any:
    return None if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0) else (
        tuple(dim) if isinstance(dim, list) else dim)


def amax_(x, dim=(), keepdim=False):
    """torch.amax: max over dim (all dims by default); ties split the gradient evenly."""
    return P.max(x, axis=_reduce_dims(dim), keepdims=keepdim)


def amin_(x, dim=(), keepdim=False):
    return P.min(x, axis=_reduce_dims(dim), keepdims=keepdim)


def isnan_(x):
    return P.not_equal(x, x)


def isinf_(x):
    return P.logical_not(P.logical_or(P.isfinite(x), P.not_equal(x, x)))


def isfinite_(x):
    return P.isfinite(x)


def isclose_(x, y, rtol=1e-05, atol=1e-08, equal_nan=False):
    """torch.isclose: |x - y| <= atol + rtol |y|, equal values (infinities too) always close."""
    close = P.logical_or(P.equal(x, y), P.less_equal(P.abs(x - y), atol + rtol * P.abs(y)))
    if equal_nan:
        close = P.logical_or(close, P.logical_and(P.not_equal(x, x), P.not_equal(y, y)))
    return close


def allclose_(x, y, rtol=1e-05, atol=1e-08, equal_nan=False):
    """torch.allclose: a Python bool."""
    return bool(P.all(isclose_(x, y, rtol, atol, equal_nan)))


def add_torch(x, y, *, alpha=1):
    """torch.add(x, y, alpha=a): x + a y."""
    return P.add(x, y) if alpha == 1 else P.add(x, P.multiply(y, alpha))


def sub_torch(x, y, *, alpha=1):
    """torch.sub(x, y, alpha=a): x - a y."""
    return P.subtract(x, y) if alpha == 1 else P.subtract(x, P.multiply(y, alpha))


# ------------------------------------------------------ constructors, joins and more (issue 12, item 5)
@_static_helper
def _as_shape(shape: Any) -> tuple:
    """np.full's shape: an int or a sequence."""
    return (shape,) if isinstance(shape, int) else tuple(shape)


def empty_like_(prototype, dtype=None, order="K", subok=True, shape=None):
    """np.empty_like: zeros (its values are unspecified; programs write every element before reading)."""
    return P.zeros_like(prototype) if dtype is None else P.astype(P.zeros_like(prototype), dtype=dtype)


def full_(shape, fill_value, dtype=None, order="C"):
    """np.full(shape, v): v broadcast to shape, as a new array (v may carry a derivative)."""
    return P.copy(P.broadcast_to(fill_value, shape=_as_shape(shape))) if dtype is None else P.astype(
        P.broadcast_to(fill_value, shape=_as_shape(shape)), dtype=dtype)


def full_like_(a, fill_value, dtype=None, order="K", subok=True, shape=None):
    """np.full_like(a, v): v broadcast to a's shape (a's values carry no derivative)."""
    return P.copy(P.broadcast_to(fill_value, shape=P.shape(a))) if dtype is None else P.astype(
        P.broadcast_to(fill_value, shape=P.shape(a)), dtype=dtype)


@_static_helper
def _atleast_shape(shape: tuple, n: int) -> tuple:
    """np.atleast_1d/2d/3d's shape: 0-d -> (1,)*n; 1-d (k,) -> (1, k) / (1, k, 1); 2-d (m, k) -> (m, k, 1)."""
    shape = tuple(shape)
    if len(shape) >= n:
        return shape
    if n == 1 or n == 2:
        return (1,) * (n - len(shape)) + shape
    return {0: (1, 1, 1), 1: (1,) + shape + (1,), 2: shape + (1,)}[len(shape)]


def atleast_1d_(x):
    """np.atleast_1d of one array (several arrays give a list: not taken)."""
    return P.reshape(x, shape=_atleast_shape(P.shape(x), 1))


def atleast_2d_(x):
    return P.reshape(x, shape=_atleast_shape(P.shape(x), 2))


def atleast_3d_(x):
    return P.reshape(x, shape=_atleast_shape(P.shape(x), 3))


@_static_helper
def _join_axis(kind: str, shape: tuple) -> int:
    """The axis at which np.stack lays the operands of np.hstack / vstack / dstack / column_stack (all of
    one shape, `shape`) so that a reshape joins them as the NumPy function does."""
    nd = len(shape)
    return {"h": 0 if nd <= 1 else 1, "v": 0, "d": 2 if nd >= 3 else -1, "c": 1}[kind]


@_static_helper
def _joined_shape(kind: str, shape: tuple) -> tuple:
    """The result's shape, from the operands' one shape (the number of operands as -1)."""
    s, nd = tuple(shape), len(shape)
    if kind == "h":
        return (-1,) if nd <= 1 else s[:1] + (-1,) + s[2:]
    if kind == "v":
        return (-1, 1) if nd == 0 else ((-1,) + s if nd == 1 else (-1,) + s[1:])
    if kind == "d":
        return {0: (1, 1, -1), 1: (1,) + s + (-1,), 2: s + (-1,)}.get(nd, s[:2] + (-1,) + s[3:])
    return s[:1] + (-1,) if nd <= 1 else s[:1] + (-1,) + s[2:]  # column_stack


def hstack_(arrays):
    """np.hstack of a sequence the compiler cannot see into (a list variable): the operands stacked and
    the stack reshaped, so all operands must have one shape (np.stack says so where they do not).
    A list literal `np.hstack([a, b])` takes the compiler's own path (any shapes)."""
    return P.reshape(np.stack(arrays, axis=_join_axis("h", P.shape(arrays[0]))),
                     shape=_joined_shape("h", P.shape(arrays[0])))


def vstack_(arrays):
    """np.vstack of a sequence: as hstack_."""
    return P.reshape(np.stack(arrays, axis=_join_axis("v", P.shape(arrays[0]))),
                     shape=_joined_shape("v", P.shape(arrays[0])))


def dstack_(arrays):
    """np.dstack: operands of one shape, joined along the third axis (vectors as (1, n, 1))."""
    return P.reshape(np.stack(arrays, axis=_join_axis("d", P.shape(arrays[0]))),
                     shape=_joined_shape("d", P.shape(arrays[0])))


def column_stack_(arrays):
    """np.column_stack: vectors become columns; operands of one shape."""
    return P.reshape(np.stack(arrays, axis=_join_axis("c", P.shape(arrays[0]))),
                     shape=_joined_shape("c", P.shape(arrays[0])))


# a tuple literal passed to these is a sequence of arrays (read like a list), not an index; the compiler
# binds their other positional arguments (np.stack(xs, 1), torch.cat(xs, 1)) by the adapter's signature
for _joiner in (hstack_, vstack_, dstack_, column_stack_, concatenate_, stack_):
    _joiner.array_sequences = ("arrays",)
# how a literal list or tuple of operands is joined by the compiler (any shapes NumPy takes): each operand
# reshaped by the first helper, then concatenated along the axis the second gives for the first operand
hstack_.joins = (hstack_shape, hstack_axis)
vstack_.joins = (vstack_shape, lambda x: 0)
column_stack_.joins = (column_shape, lambda x: 1)
dstack_.joins = (dstack_shape, lambda x: 2)


def exp2_(x):
    """np.exp2: exp(x log 2)."""
    return P.exp(P.multiply(x, 0.6931471805599453))


@_static_helper
def _kron_shapes(sa: tuple, sb: tuple, which: int) -> tuple:
    """np.kron as a broadcast product: a reshaped to (a0, 1, a1, 1, ...), b to (1, b0, 1, b1, ...)
    (the shorter shape padded with leading ones), the product reshaped to (a0 b0, a1 b1, ...)."""
    n = builtins_max(len(sa), len(sb))
    sa, sb = (1,) * (n - len(sa)) + tuple(sa), (1,) * (n - len(sb)) + tuple(sb)
    if which == 0:
        return tuple(d for k in sa for d in (k, 1))
    if which == 1:
        return tuple(d for k in sb for d in (1, k))
    return tuple(i * j for i, j in zip(sa, sb, strict=True))


def kron_(a, b):
    """np.kron: a broadcast product of reshaped operands, reshaped."""
    return P.reshape(P.multiply(P.reshape(a, shape=_kron_shapes(P.shape(a), P.shape(b), 0)),
                                P.reshape(b, shape=_kron_shapes(P.shape(a), P.shape(b), 1))),
                     shape=_kron_shapes(P.shape(a), P.shape(b), 2))


@_static_helper
def _along_axis_positions(indices: Any, shape: tuple, axis: Any) -> Any:
    """Flat positions into an array of `shape` that np.take_along_axis / put_along_axis address with
    `indices` along `axis` (indices broadcast against shape off the axis; axis None: the flat array)."""
    if axis is None:
        return indices
    nd = len(shape)
    a = axis % nd
    ishape = tuple(indices.shape)
    if len(ishape) != nd:
        raise ValueError("take_along_axis: indices and arr must have the same number of dimensions")
    full = tuple(ishape[d] if d == a else builtins_max(ishape[d], shape[d]) for d in range(nd))
    idx = P.broadcast_to(indices, shape=full)
    idx = P.where(P.less(idx, 0), idx + shape[a], idx)
    return P.flat_along_axis(idx, axis=a, shape=shape)


def take_along_axis_(arr, indices, axis=-1):
    """np.take_along_axis: one integer index into the flattened array (getitem's rule accumulates)."""
    return P.getitem(P.reshape(arr, shape=(-1,)), index=_along_axis_positions(indices, P.shape(arr), axis))


@_static_helper
def _interp_segment(xp: Any, x: Any, upper: int) -> Any:
    """np.interp's segment of each x: the index i of xp[i] <= x < xp[i + 1] (clamped to the first and
    last segments), plus `upper`."""
    n = P.shape(xp)[0]
    return P.clip(P.searchsorted(xp, x, side="right") - 1, min=0, max=n - 2) + upper


def interp_(x, xp, fp, left=None, right=None):
    """np.interp(x, xp, fp, left, right): the line through the two knots around x, with x clamped into
    [xp[0], xp[-1]] (so fp[0] / fp[-1] outside, as NumPy), or `left` below xp[0] and `right` above
    xp[-1] where given. Differentiable in x, xp, fp, left and right; at a knot the derivative in x is
    the right segment's. period= is not taken."""
    inside = _interp_inside(x, xp, fp)
    if left is not None:
        inside = P.where(P.less(x, P.getitem(xp, index=0)), left, inside)
    if right is not None:
        inside = P.where(P.greater(x, P.getitem(xp, index=-1)), right, inside)
    return inside


def _interp_inside(x, xp, fp):
    return P.getitem(fp, index=_interp_segment(xp, x, 0)) + (
        P.getitem(fp, index=_interp_segment(xp, x, 1)) - P.getitem(fp, index=_interp_segment(xp, x, 0))) * (
        P.minimum(P.maximum(x, P.getitem(xp, index=0)), P.getitem(xp, index=-1))
        - P.getitem(xp, index=_interp_segment(xp, x, 0))) / (
        P.getitem(xp, index=_interp_segment(xp, x, 1)) - P.getitem(xp, index=_interp_segment(xp, x, 0)))


@_static_helper
def _conv_index(sa: tuple, sv: tuple, mode: str, correlate: bool) -> Any:
    """The (output, len(a)) integer index into v padded with one zero that makes np.convolve (or, with
    v reversed, np.correlate) a matrix product with a: entry [k, j] is k - j where 0 <= k - j < len(v),
    else the zero's position; rows from where `mode` starts, as many as it keeps."""
    if len(sa) != 1 or len(sv) != 1:
        raise ValueError("np.convolve / np.correlate take 1-d arrays")
    n, m = sa[0], sv[0]
    lo, hi = builtins_min(n, m), builtins_max(n, m)
    if mode == "full":
        start, length = 0, n + m - 1
    elif mode == "same":
        start, length = ((lo // 2) if correlate and m > n else (lo - 1) // 2), hi
    elif mode == "valid":
        start, length = lo - 1, hi - lo + 1
    else:
        raise ValueError(f"mode must be 'full', 'same' or 'valid', not {mode!r}")
    d = np.arange(start, start + length)[:, None] - np.arange(n)[None, :]
    return np.where((d >= 0) & (d < m), d, m)


@_static_helper
def _index_like(index: Any, x: Any) -> Any:
    """A NumPy integer index moved to x's namespace (CuPy indexes by its own arrays); Tensors and
    NumPy take it as it is."""
    if isinstance(x, np.ndarray) or P.ndim(x) == 0 or type(x).__module__.startswith("srcgrad"):
        return index
    xp = array_ns(x)
    return index if xp is np else xp.asarray(index)


def builtins_min(a: int, b: int) -> int:
    return a if a <= b else b


def convolve_(a, v, mode="full"):
    """np.convolve of 1-d arrays: a gather of v into a banded matrix, times a (both differentiable)."""
    return P.matmul(P.getitem(P.pad(v, pad_width=((0, 1),)), index=_index_like(
        _conv_index(P.shape(a), P.shape(v), mode, False), v)), a)


def correlate_(a, v, mode="valid"):
    """np.correlate of real 1-d arrays: np.convolve with v reversed (and NumPy's own 'same' offset)."""
    return P.matmul(P.getitem(P.pad(P.flip(v), pad_width=((0, 1),)), index=_index_like(
        _conv_index(P.shape(a), P.shape(v), mode, True), v)), a)


@_static_helper
def _gamma_sign(x: Any) -> Any:
    """The sign of Gamma(x): + for x > 0, alternating between the poles below 0."""
    if P.ndim(x) == 0:
        return 1.0 if x > 0 or _math.floor(x) % 2 == 0 else -1.0
    return P.where(P.logical_or(P.greater(x, 0.0), P.equal(P.remainder(P.floor(x), 2.0), 0.0)), 1.0, -1.0)


def gamma_(x):
    """math.gamma: sign times exp(lgamma)."""
    return P.multiply(P.exp(P.lgamma(x)), _gamma_sign(x))


# --------------------------------------------------------- more NumPy, as compositions of primitives
# Each is NumPy's function (value, dtype and edge cases) written in primitives, so its derivative is its
# primitives' rules: no rule of its own. Where NumPy's result is piecewise constant (heaviside, rint) the
# derivative is zero; where it picks one operand (fmax, fmin, nan_to_num, select) the derivative is the
# picked operand's, ties of fmax/fmin split evenly as maximum's.
_DEG = 180.0 / _math.pi  # what np.rad2deg and math.degrees multiply by
_RAD = _math.pi / 180.0  # np.deg2rad, math.radians
_LN2 = 0.6931471805599453
_F64_ONE = np.float64(1.0)  # a NumPy float64 one: multiplying by it casts to float64 and keeps -0.0


def deg2rad_(x):
    """np.deg2rad / np.radians / math.radians / torch.deg2rad: x * (pi / 180), as NumPy computes it."""
    return P.multiply(x, _RAD)


def rad2deg_(x):
    """np.rad2deg / np.degrees / math.degrees / torch.rad2deg: x * (180 / pi)."""
    return P.multiply(x, _DEG)


def _near_zero(x):
    return P.less(P.multiply(x, x), 1e-8)


def sinc_(x):
    """np.sinc: sin(pi x) / (pi x), 1 at x = 0. Where |x| < 1e-4 its Taylor polynomial in y = pi x,
    1 - y^2/6 + y^4/120 (equal to sin(y)/y to rounding there), so the derivatives at 0 are exact too
    (0, then -pi^2/3); each branch sees a harmless stand-in where it is not chosen (no 0/0, no overflow)."""
    near = _near_zero(x)
    y = P.multiply(P.where(near, 1.0, x), _math.pi)
    t = P.multiply(P.where(near, x, 0.0), _math.pi)
    t2 = P.multiply(t, t)
    return P.where(near, 1.0 - t2 / 6.0 + t2 * t2 / 120.0, P.sin(y) / y)


def heaviside_(x1, x2):
    """np.heaviside / torch.heaviside: 0 where x1 < 0, x2 where x1 == 0, 1 where x1 > 0, nan where x1 is
    nan. Piecewise constant in x1 (zero derivative); x2's derivative reaches the entries where x1 == 0."""
    return P.where(P.less(x1, 0), 0.0, P.where(P.greater(x1, 0), 1.0, P.where(P.equal(x1, 0), x2, _math.nan)))


def fmax_(x1, x2):
    """np.fmax / torch.fmax: the larger, and the operand that is not nan where one is (nan where both
    are); equal operands share the derivative (maximum's convention). A nan operand is replaced by the
    other before maximum (whose tie then sends the whole derivative to that one), so no nan reaches
    maximum's rule unless both are nan."""
    return P.maximum(P.where(P.not_equal(x1, x1), x2, x1), P.where(P.not_equal(x2, x2), x1, x2))


def fmin_(x1, x2):
    """np.fmin / torch.fmin: as fmax_."""
    return P.minimum(P.where(P.not_equal(x1, x1), x2, x1), P.where(P.not_equal(x2, x2), x1, x2))


def logaddexp2_(x1, x2):
    """np.logaddexp2 / torch.logaddexp2: log2(2**x1 + 2**x2), through logaddexp (no overflow)."""
    return P.divide(P.logaddexp(P.multiply(x1, _LN2), P.multiply(x2, _LN2)), _LN2)


def float_power_(x1, x2):
    """np.float_power / torch.float_power: power in float64 (complex128 for complex operands), so a
    negative base with a non-integer exponent is nan (not Python's complex) and integers take negative
    exponents. (Multiplying by a NumPy float64 one casts, keeping -0.0 and nan.)"""
    return P.power(P.multiply(x1, _F64_ONE), P.multiply(x2, _F64_ONE))


def copysign_(x1, x2):
    """np.copysign / math.copysign / torch.copysign: |x1| with x2's sign bit (-0.0 and a negative nan
    count as negative); a float. The derivative in x1 is abs's (0 at x1 = 0), none in x2."""
    return P.where(P.signbit(x2), P.neg(P.abs(x1)), P.abs(x1)) * 1.0


@_static_helper
def _nan_to_num_values(x: Any, nan: Any, posinf: Any, neginf: Any) -> Any:
    """(nan, posinf, neginf) replacements for a float x (the largest finite values of its dtype by
    default), None for an integer or bool x (returned as it is); complex x is refused."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        if isinstance(x, complex):
            raise NotImplementedError("nan_to_num of complex values is not supported")
        if not isinstance(x, float):
            return None
        dtype = np.float64
    try:
        dt = np.dtype(dtype)
    except TypeError:  # another library's dtype (torch.float32): by its name
        dt = np.dtype(str(dtype).rsplit(".", 1)[-1])
    if dt.kind == "c":
        raise NotImplementedError("nan_to_num of complex values is not supported")
    if dt.kind != "f":
        return None
    big = float(np.finfo(dt).max)
    return (nan, big if posinf is None else posinf, -big if neginf is None else neginf)


def _nan_to_num(x, nan, posinf, neginf):
    v = _nan_to_num_values(x, nan, posinf, neginf)
    if v is None:
        return P.copy(x)
    return P.where(P.not_equal(x, x), v[0], P.where(P.equal(x, _math.inf), v[1],
                                                      P.where(P.equal(x, -_math.inf), v[2], x)))


def nan_to_num_(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """np.nan_to_num: nan -> nan, +inf -> posinf, -inf -> neginf (the dtype's largest finite values by
    default); integers unchanged. Derivative 1 at finite entries, 0 at the replaced ones. copy=False
    (NumPy writes into x) is refused."""
    if not copy:
        raise NotImplementedError("nan_to_num(copy=False) writes into its argument; srcgrad takes copy=True")
    return _nan_to_num(x, nan, posinf, neginf)


def nan_to_num_torch(x, nan=0.0, posinf=None, neginf=None):
    """torch.nan_to_num(input, nan, posinf, neginf): NumPy's, without `copy`."""
    return _nan_to_num(x, nan, posinf, neginf)


def builtin_pow(base, exp, mod=None):
    """Python's pow(base, exp): base ** exp; the three-argument pow (modular, of integers) is refused."""
    if mod is not None:
        raise NotImplementedError("pow(base, exp, mod) is not supported (pow(base, exp) is)")
    return P.power(base, exp)


def nansum_(a, axis=None, dtype=None, out=None, keepdims=False, *, dim=None, keepdim=False):
    """np.nansum / torch.nansum: the sum with nan entries as 0 (their derivative 0)."""
    return P.sum(P.where(P.not_equal(a, a), P.zeros_like(a), a), axis=_axis(axis, dim),
                 keepdims=keepdims or keepdim)


def nanmean_(a, axis=None, dtype=None, out=None, keepdims=False, *, dim=None, keepdim=False):
    """np.nanmean / torch.nanmean: the mean of the entries that are not nan (nan for a slice of nans
    only, as NumPy, which warns)."""
    return P.divide(
        P.sum(P.where(P.not_equal(a, a), P.zeros_like(a), a), axis=_axis(axis, dim),
              keepdims=keepdims or keepdim),
        P.sum(P.where(P.not_equal(a, a), P.zeros_like(a), P.ones_like(a)), axis=_axis(axis, dim),
              keepdims=keepdims or keepdim))


def nansum_torch(x, dim=None, keepdim=False, *, dtype=None):
    """torch.nansum(input, dim, keepdim): np.nansum's, with torch's positions."""
    return nansum_(x, dim, keepdims=keepdim)


def nanmean_torch(x, dim=None, keepdim=False, *, dtype=None):
    return nanmean_(x, dim, keepdims=keepdim)


def ptp_(a, axis=None, out=None, keepdims=False):
    """np.ptp: max - min (ties split each one's derivative evenly, as max and min do)."""
    return P.subtract(P.max(a, axis=_axis(axis), keepdims=keepdims),
                      P.min(a, axis=_axis(axis), keepdims=keepdims))


@_static_helper
def _average_weights(a_shape: tuple, w_shape: tuple, axis: Any) -> Any:
    """How np.average lays weights of another shape than a's along `axis`: (permutation, shape) of a
    transpose and a reshape (None: the same shape, taken as it is); NumPy's errors otherwise."""
    if tuple(a_shape) == tuple(w_shape):
        return None
    if axis is None:
        raise TypeError("Axis must be specified when shapes of a and weights differ.")
    nd = len(a_shape)
    axes = tuple(ax % nd for ax in ((axis,) if isinstance(axis, int) else axis))
    if tuple(w_shape) != tuple(a_shape[ax] for ax in axes):
        raise ValueError("Shape of weights must be consistent with shape of a along specified axis.")
    perm = tuple(int(i) for i in np.argsort(axes))
    return perm, tuple(s if ax in axes else 1 for ax, s in enumerate(a_shape))


def average_(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """np.average: the mean, or sum(a * w) / sum(w) over axis (weights of a's shape, or 1-d along one
    axis or of the shape of the axes given). A zero sum of weights gives inf/nan here where NumPy raises
    ZeroDivisionError; returned=True is refused."""
    if returned:
        raise NotImplementedError("np.average(returned=True) is not supported: compute np.sum(weights) too")
    if weights is None:
        return P.mean(a, axis=_axis(axis), keepdims=keepdims)
    lay = _average_weights(P.shape(a), P.shape(weights), axis)
    w = weights if lay is None else P.reshape(P.transpose(weights, axes=lay[0]), shape=lay[1])
    return P.divide(P.sum(P.multiply(a, w), axis=_axis(axis), keepdims=keepdims),
                    P.sum(P.broadcast_to(w, shape=_broadcast_shape(P.shape(a), P.shape(w))),
                          axis=_axis(axis), keepdims=keepdims))


@_static_helper
def _broadcast_shape(s1: tuple, s2: tuple) -> tuple:
    return tuple(np.broadcast_shapes(tuple(s1), tuple(s2)))


@_static_helper
def _take_index(indices: Any, n: int, mode: str) -> Any:
    """np.take's indices along an axis of length n: 'raise' as given (negative ones count from the end),
    'wrap' modulo n, 'clip' clipped into [0, n - 1] (negative ones to 0, as NumPy)."""
    if mode == "raise":
        return indices if isinstance(indices, int) else np.asarray(indices)
    if mode not in ("wrap", "clip"):
        raise ValueError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    idx = np.asarray(indices)
    out = idx % n if mode == "wrap" else np.clip(idx, 0, n - 1)
    return int(out) if isinstance(indices, int) else out


@_static_helper
def _take_axis(nd: int, axis: int, index: Any) -> tuple:
    return (slice(None),) * (axis % nd) + (index,)


def take_(a, indices, axis=None, out=None, mode="raise"):
    """np.take: entries of the flattened a (axis None) or along axis, at integer indices (repeated ones
    accumulate the derivative, getitem's rule); mode 'raise', 'wrap' or 'clip'."""
    if axis is None:
        return P.getitem(P.reshape(a, shape=(-1,)), index=_take_index(indices, P.size(a), mode))
    return P.getitem(a, index=_take_axis(P.ndim(a), axis, _take_index(indices, P.shape(a)[axis], mode)))


def take_torch(x, index):
    """torch.take: entries of the flattened tensor."""
    return take_(x, index)


@_static_helper
def _select_plan(condlist: Any, choicelist: Any, default: Any) -> tuple:
    """np.select's (shape, positions, none): the shape every operand broadcasts to, the flat position in
    the stacked (broadcast) choices of the choice each entry takes (the first condition that holds), and
    where no condition holds (the default's entries); NumPy's errors otherwise."""
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if len(condlist) == 0:
        raise ValueError("select with an empty condition list is not possible")
    conds = [np.asarray(getattr(c, "_array", c)) for c in condlist]
    for i, c in enumerate(conds):
        if c.dtype != np.bool_:
            raise TypeError(f"invalid entry {i} in condlist: should be boolean ndarray")
    shapes = {tuple(P.shape(c)) for c in choicelist}
    if len(shapes) != 1:
        raise NotImplementedError("np.select with choices of different shapes is not supported: broadcast "
                                  "them to one shape first (np.broadcast_to)")
    shape = tuple(np.broadcast_shapes(*[np.shape(c) for c in conds], *shapes, P.shape(default)))
    stacked = np.stack([np.broadcast_to(c, shape) for c in conds])
    first = np.argmax(stacked, axis=0)
    size = int(np.prod(shape, dtype=np.int64))
    return (len(conds),) + shape, first * size + np.arange(size).reshape(shape), ~np.any(stacked, axis=0)


def select_(condlist, choicelist, default=0):
    """np.select: at each position the choice of the first condition that holds, default where none
    does; every operand broadcast together (the choices of one shape). One gather from the stacked
    choices (getitem's rule sends each entry's derivative to the choice it took)."""
    return P.where(_select_plan(condlist, choicelist, default)[2], default, P.getitem(P.reshape(
        P.broadcast_to(np.stack(choicelist, axis=0), shape=_select_plan(condlist, choicelist, default)[0]),
        shape=(-1,)), index=_select_plan(condlist, choicelist, default)[1]))


select_.array_sequences = ("condlist", "choicelist")


@_static_helper
def _mesh_shapes(sizes: tuple, indexing: str) -> tuple:
    """np.meshgrid's shape for each operand (its values along its own axis, ones elsewhere; 'xy' swaps
    the first two axes), and the full shape last."""
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    n = len(sizes)
    order = list(range(n))
    if indexing == "xy" and n > 1:
        order[0], order[1] = 1, 0
    shapes = []
    for i in range(n):
        s = [1] * n
        s[order[i]] = -1
        shapes.append(tuple(s))
    full = [0] * n
    for i in range(n):
        full[order[i]] = sizes[i]
    return tuple(shapes) + (tuple(full),)


@_static_helper
def _mesh_sizes(*xi: Any) -> tuple:
    return tuple(P.size(x) for x in xi if x is not None)


def _mesh_one(x, shapes, i, copy, sparse):
    """One array of np.meshgrid's result: x laid along its axis, broadcast to the grid unless sparse."""
    v = P.reshape(x, shape=shapes[i])
    if not sparse:
        v = P.broadcast_to(v, shape=shapes[-1])
    return P.copy(v) if copy else v


def meshgrid_(x0, x1=None, x2=None, x3=None, *, copy=True, sparse=False, indexing="xy"):
    """np.meshgrid of one to four arrays: each (flattened) laid along its own axis ('xy': the first two
    axes swapped) and broadcast to the full grid (copies unless copy=False; sparse=True keeps the
    reshaped operands). (Named parameters, not *xi: the compiler transforms no *args.)"""
    shapes = _mesh_shapes(_mesh_sizes(x0, x1, x2, x3), indexing)
    if x1 is None:
        return (_mesh_one(x0, shapes, 0, copy, sparse),)
    if x2 is None:
        return (_mesh_one(x0, shapes, 0, copy, sparse), _mesh_one(x1, shapes, 1, copy, sparse))
    if x3 is None:
        return (_mesh_one(x0, shapes, 0, copy, sparse), _mesh_one(x1, shapes, 1, copy, sparse),
                _mesh_one(x2, shapes, 2, copy, sparse))
    return (_mesh_one(x0, shapes, 0, copy, sparse), _mesh_one(x1, shapes, 1, copy, sparse),
            _mesh_one(x2, shapes, 2, copy, sparse), _mesh_one(x3, shapes, 3, copy, sparse))


def meshgrid_torch(*tensors, indexing=None):
    """torch.meshgrid: 'ij' indexing by default; the tensors as arguments or as one list."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    return meshgrid_(*tensors, indexing="ij" if indexing is None else indexing)


def _chain_order(shapes: list) -> Any:
    """The cheapest parenthesization of a chain of matrix products (NumPy's multi_dot order), as nested
    pairs of positions; shapes are 2-d."""
    n = len(shapes)
    p = [s[0] for s in shapes] + [shapes[-1][1]]
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = -1
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + p[i] * p[k + 1] * p[j + 1]
                if cost[i][j] < 0 or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k

    def nest(i: int, j: int) -> Any:
        return i if i == j else (nest(i, split[i][j]), nest(split[i][j] + 1, j))

    return nest(0, n - 1)


def multi_dot_torch(tensors, *, out=None):
    """torch.linalg.multi_dot (eager): the chain of matrix products in the cheapest order, as NumPy's
    multi_dot (the first operand may be a vector, a row; the last one, a column). np.linalg.multi_dot
    is not taken by the compiler yet: it transforms no loop over a list parameter's arrays."""
    ops = list(tensors)
    n = len(ops)
    if n < 2:
        raise ValueError("multi_dot(): expected at least 2 tensors")
    shapes = [tuple(P.shape(a)) for a in ops]
    if len(shapes[0]) == 1:
        shapes[0] = (1,) + shapes[0]
    if len(shapes[-1]) == 1:
        shapes[-1] = shapes[-1] + (1,)
    if any(len(s) != 2 for s in shapes):
        raise ValueError("multi_dot(): the middle tensors must be 2-D, the first and last 1-D or 2-D")

    def product(t: Any) -> Any:
        return ops[t] if isinstance(t, int) else P.matmul(product(t[0]), product(t[1]))

    return product(_chain_order(shapes))


@_static_helper
def _power_bits(n: Any) -> tuple:
    """The binary digits of matrix_power's |n|, lowest first (n must be an integer)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError("exponent must be an integer")
    n = abs(int(n))
    bits = []
    while n > 0:
        n, bit = divmod(n, 2)
        bits.append(bit)
    return tuple(bits)


def matrix_power_(a, n):
    """np.linalg.matrix_power / torch.linalg.matrix_power: a @ a @ ... (n >= 1, by repeated squaring as
    NumPy), the identity for n = 0, the inverse's power for n < 0."""
    bits = _power_bits(n)
    if n == 0:
        return P.copy(P.broadcast_to(P.eye_like(a, n=P.shape(a)[-1], m=P.shape(a)[-1]), shape=P.shape(a)))
    if n < 0:
        a = P.inv(a)
    if len(bits) == 1:
        return a
    if len(bits) == 2 and bits[0] == 0:
        return P.matmul(a, a)
    if len(bits) == 2:
        return P.matmul(P.matmul(a, a), a)
    z = a
    result = None
    for k in range(len(bits)):
        if k > 0:
            z = P.matmul(z, z)
        if bits[k]:
            result = z if result is None else P.matmul(result, z)
    return result


@_static_helper
def _pinv_tall(a: Any, rcond: Any, rtol: Any) -> bool:
    """Whether a (batched) is tall (rows >= columns). pinv is taken for full-rank matrices only: one
    whose smallest singular value is below NumPy's cutoff (rcond, 1e-15 by default, times the largest)
    is refused, since NumPy drops such singular values and the QR route below cannot."""
    if rcond is not None and rtol is not None:
        raise ValueError("`rtol` and `rcond` can't be both set.")
    cut = 1e-15 if rcond is None and rtol is None else (rcond if rcond is not None else rtol)
    arr = getattr(a, "_array", a)  # a Tensor's array
    xp = array_ns(arr)
    svdvals = getattr(xp.linalg, "svdvals", None)
    s = svdvals(arr) if svdvals is not None else xp.linalg.svd(arr, compute_uv=False)
    if bool(xp.any(xp.min(s, axis=-1) <= cut * xp.max(s, axis=-1))):
        raise NotImplementedError("pinv of a rank-deficient matrix is not supported (srcgrad differentiates "
                                  "the pseudo-inverse of full-rank matrices)")
    return P.shape(a)[-2] >= P.shape(a)[-1]


def pinv_(a, rcond=None, hermitian=False, *, rtol=None):
    """np.linalg.pinv / torch.linalg.pinv of a full-rank real matrix (batched): with a = QR (reduced, of
    a or of its transpose where a is wide), pinv(a) = R^-1 Q^T, through qr and solve (their rules; the
    pseudo-inverse is smooth at full rank). Rank-deficient matrices are refused."""
    if _pinv_tall(a, rcond, rtol):
        return P.solve(P.qr_r(a), matrix_transpose_(P.qr_q(a)))
    return matrix_transpose_(P.solve(P.qr_r(matrix_transpose_(a)),
                                     matrix_transpose_(P.qr_q(matrix_transpose_(a)))))


def polyval_(p, x):
    """np.polyval: Horner's rule as NumPy runs it (y = y * x + p[i] from y = zeros_like(x)),
    differentiable in the coefficients and in x."""
    y = P.zeros_like(x)
    for i in range(P.shape(p)[0]):
        y = y * x + p[i]
    return y


# ------------------------------------------------- calls that write into an argument, as new values
# NumPy has calls whose whole point is to change an array in place: np.add.at(a, i, v), np.copyto(a, v),
# np.put(a, i, v), a.fill(v), a.sort(). Generated code computes the new array instead and rebinds the
# variable that named the old one (after a run-time check that no other live name shares its memory).
# Each such adapter records, as `writes_into`, which argument it writes, and as `returns_target`
# whether the NumPy call returns that array (ufuncs with out=) or None.
def _writes_into(position: int, returns_target: bool = False) -> Callable[[Adapter], Adapter]:
    def mark(f: Adapter) -> Adapter:
        f.writes_into = position
        f.returns_target = returns_target
        return f
    return mark


@_writes_into(0)
def add_at_(a, indices, b=None):
    """np.add.at(a, indices, b): b added at indices, repeated indices accumulating."""
    return P.index_add(a, b, index=indices)


@_writes_into(0)
def subtract_at_(a, indices, b=None):
    """np.subtract.at(a, indices, b): b subtracted at indices, repeated indices accumulating."""
    return P.index_add(a, P.neg(b), index=indices)


@_writes_into(0)
def copyto_(dst, src, casting="same_kind", where=True):
    """np.copyto(dst, src): src broadcast into dst (dst keeps its shape and dtype)."""
    return P.index_update(dst, src, index=Ellipsis) if where is True else P.where(where, src, dst)


@_writes_into(0)
def put_(a, ind, v, mode="raise"):
    """np.put(a, ind, v) / a.put(ind, v): v written at flat positions ind."""
    return P.reshape(P.index_update(P.reshape(a, shape=(-1,)), v, index=ind), shape=P.shape(a))


@_writes_into(0)
def put_along_axis_(arr, indices, values, axis):
    """np.put_along_axis(arr, indices, values, axis): values written at those positions (repeated
    positions: the last write wins, as index_update's rule says)."""
    return P.reshape(P.index_update(P.reshape(arr, shape=(-1,)), values,
                                    index=_along_axis_positions(indices, P.shape(arr), axis)),
                     shape=P.shape(arr))


@_writes_into(0)
def fill_(a, value):
    """a.fill(value): every element set to value."""
    return P.index_update(a, value, index=Ellipsis)


@_writes_into(0)
def sort_inplace_(a, axis=-1, kind=None, order=None):
    """a.sort(axis): a sorted along axis."""
    return P.sort(a, axis=axis)


# ============================================================================================ the tables
NUMPY_FUNCTIONS: dict[Any, Adapter] = {
    np.negative: P.neg, np.abs: P.abs, np.absolute: P.abs, np.sign: P.sign, np.exp: P.exp,
    np.expm1: P.expm1, np.log: P.log, np.log1p: P.log1p, np.log2: P.log2, np.log10: P.log10,
    np.sqrt: P.sqrt, np.square: P.square, np.reciprocal: P.reciprocal, np.sin: P.sin, np.cos: P.cos,
    np.tan: P.tan, np.arcsin: P.arcsin, np.arccos: P.arccos, np.arctan: P.arctan, np.sinh: P.sinh,
    np.cosh: P.cosh, np.tanh: P.tanh, np.arcsinh: P.arcsinh, np.arccosh: P.arccosh,
    np.arctanh: P.arctanh, np.cbrt: P.cbrt, np.logaddexp: P.logaddexp, np.mod: P.remainder,
    np.remainder: P.remainder, np.add: P.add, np.subtract: P.subtract, np.multiply: P.multiply,
    np.divide: P.divide, np.true_divide: P.divide, np.power: power_, np.maximum: P.maximum,
    np.minimum: P.minimum, np.arctan2: P.arctan2, np.hypot: P.hypot, np.where: where_, np.clip: clip_,
    np.sum: sum_, np.mean: mean_, np.max: max_, np.amax: max_, np.min: min_, np.amin: min_,
    np.argmax: argmax_, np.argmin: argmin_, np.reshape: reshape_fn, np.transpose: transpose_fn,
    np.swapaxes: swap_axes, np.squeeze: squeeze_, np.expand_dims: expand_dims_,
    np.broadcast_to: broadcast_to_, np.floor: P.floor, np.ceil: P.ceil, np.round: P.round,
    np.equal: P.equal, np.not_equal: P.not_equal, np.less: P.less, np.less_equal: P.less_equal,
    np.greater: P.greater, np.greater_equal: P.greater_equal, np.logical_and: P.logical_and,
    np.logical_or: P.logical_or, np.logical_not: P.logical_not, np.isfinite: P.isfinite,
    np.shape: P.shape, np.size: P.size, np.ndim: P.ndim, np.zeros_like: P.zeros_like,
    np.ones_like: P.ones_like,
    # reductions
    np.prod: prod_, np.var: var_, np.std: std_, np.cumsum: cumsum_, np.cumprod: cumprod_,
    np.any: any_, np.all: all_, np.linalg.norm: linalg_norm, np.sort: sort_,
    # linear algebra
    np.matmul: P.matmul, np.dot: dot_, np.vdot: vdot_,
    np.inner: inner_, np.outer: outer_, np.einsum: einsum_, np.tensordot: tensordot_,
    np.trace: trace_, np.diagonal: diagonal_, np.diag: diag_, np.tril: tril_, np.triu: triu_,
    np.linalg.inv: P.inv, np.linalg.solve: P.solve, np.linalg.det: P.det, np.linalg.slogdet: slogdet_,
    np.linalg.cholesky: P.cholesky, np.linalg.eigvalsh: eigvalsh_, np.linalg.eigh: eigh_,
    np.linalg.svd: svd_, np.linalg.qr: qr_,
    # complex values, the FFT
    np.real: P.real, np.imag: P.imag, np.conj: P.conj, np.conjugate: P.conj, np.angle: angle_,
    np.fft.fft: fft_, np.fft.ifft: ifft_, np.fft.rfft: rfft_, np.fft.irfft: irfft_,
    # shapes
    np.concatenate: concatenate_, np.stack: stack_, np.vstack: vstack_, np.hstack: hstack_,
    np.split: split_, np.array_split: array_split_, np.flip: flip_, np.roll: roll_, np.tile: tile_,
    np.diff: diff_, np.cross: cross_, np.append: append_,
    **{f: trapezoid_ for f in (getattr(np, "trapezoid", None), getattr(np, "trapz", None)) if f is not None},
    np.repeat: repeat_, np.pad: pad_, np.ravel: ravel_, np.moveaxis: moveaxis_,
    np.copy: P.copy, np.empty_like: empty_like_, np.full: full_, np.full_like: full_like_,
    np.atleast_1d: atleast_1d_, np.atleast_2d: atleast_2d_, np.atleast_3d: atleast_3d_,
    np.column_stack: column_stack_, np.dstack: dstack_, np.exp2: exp2_, np.kron: kron_,
    np.take_along_axis: take_along_axis_, np.interp: interp_, np.convolve: convolve_,
    np.correlate: correlate_,
    # more NumPy, compositions (see "more NumPy")
    np.sinc: sinc_, np.heaviside: heaviside_, np.deg2rad: deg2rad_, np.radians: deg2rad_,
    np.rad2deg: rad2deg_, np.degrees: rad2deg_, np.fmax: fmax_, np.fmin: fmin_,
    np.logaddexp2: logaddexp2_, np.float_power: float_power_, np.fmod: P.fmod, np.rint: P.round,
    np.copysign: copysign_, np.signbit: P.signbit, np.nan_to_num: nan_to_num_, np.nansum: nansum_,
    np.nanmean: nanmean_, np.ptp: ptp_, np.average: average_, np.take: take_, np.select: select_,
    np.meshgrid: meshgrid_, np.linalg.matrix_power: matrix_power_,
    np.linalg.pinv: pinv_, np.polyval: polyval_,
    # calls that write into an argument (see `_writes_into`)
    np.add.at: add_at_, np.subtract.at: subtract_at_, np.copyto: copyto_, np.put: put_,
    np.put_along_axis: put_along_axis_,
    SlogdetResult: slogdet_pack_,  # what slogdet_ builds, read as a tuple by the compiler
    EighResult: eigh_pack_, SVDResult: svd_pack_, QRResult: qr_pack_,  # likewise
}
if hasattr(np.linalg, "svdvals"):  # NumPy 2
    NUMPY_FUNCTIONS[np.linalg.svdvals] = svdvals_
for _name in ("concat", "permute_dims", "matrix_transpose"):  # NumPy 2 array-API aliases, where present
    if hasattr(np, _name):
        NUMPY_FUNCTIONS[getattr(np, _name)] = {"concat": concatenate_, "permute_dims": transpose_fn,
                                               "matrix_transpose": matrix_transpose_}[_name]

# NumPy constructors whose result's shape and dtype follow from constant arguments alone (np.zeros(64),
# np.eye(3)): the compiler evaluates such a call once, on small sizes, to know the shape of a value that
# starts as one (recurrent state, an accumulator), so its variant for NumPy arrays is specialized too.
SHAPE_FROM_CONSTANTS = frozenset({np.zeros, np.ones, np.empty, np.full, np.eye, np.identity, np.arange,
                                  np.linspace})
# NumPy constructors whose result's shape and dtype follow their first argument's (never its values)
SHAPE_FROM_ARGUMENT = frozenset({np.zeros_like, np.ones_like, np.empty_like, np.full_like})

# Python's own builtins that users apply to arrays and floats
BUILTINS: dict[Any, Adapter] = {abs: P.abs}
# builtins whose result carries no derivative: counts, types, tests, text, index objects (tuple, list,
# zip, sorted, ... pass values on, and are not here)
NO_DERIVATIVE_BUILTINS = frozenset({len, range, int, bool, isinstance, print, type, str, round, hasattr,
                                    callable, id, repr, slice, any, all})


# ----------------------------------------------- builtins max/min of two values, and the math module
def builtin_max(a, b=None):
    """max(a, b) of numbers, or max(xs) of one iterable (an array's first axis, a list of numbers):
    Python's largest, the derivative flowing to it. max(a, b, c, ...) is max(max(a, b), c) ...
    (`pairwise`, read by the normalizer). Two numbers: b only where b > a, as Python's max chooses
    (the first of equal ones; a nan second is never chosen, a nan first always is), not np.maximum's
    choice (a nan wins, equal ones share the derivative)."""
    return P.max(np.array(a), axis=0) if b is None else P.where(P.greater(b, a), b, a)


def builtin_min(a, b=None):
    """min(a, b) of numbers, or min(xs) of one iterable; min(a, b, c, ...) pairwise; b only where
    b < a, as Python's min chooses."""
    return P.min(np.array(a), axis=0) if b is None else P.where(P.less(b, a), b, a)


builtin_max.pairwise = builtin_min.pairwise = True


def builtin_sum(iterable, start=None):
    """sum(x) of an array: Python adds up its rows, which is the sum along the first axis (plus start,
    0 in Python; None here so the common call folds to the reduction alone). `np.array(...)` lets the
    compiler read a list built with append as its stacked arrays (for an array it is the array)."""
    return P.sum(np.array(iterable), axis=0) if start is None else P.add(
        P.sum(np.array(iterable), axis=0), start)


def float_(x=0.0):
    """float(x) of a one-element value: its element as a Python float, the derivative passing through
    (float("1.5") of a string is a static value and never reaches here)."""
    return P.to_float(x)


def math_log(x, base=None):
    """math.log(x) or math.log(x, base)."""
    return P.log(x) if base is None else P.divide(P.log(x), P.log(base))


BUILTINS.update({
    max: builtin_max, min: builtin_min, sum: builtin_sum, _math.fsum: builtin_sum, _math.log: math_log,
    float: float_,
    _math.sin: P.sin, _math.cos: P.cos, _math.tan: P.tan, _math.exp: P.exp, _math.expm1: P.expm1,
    _math.log1p: P.log1p, _math.log2: P.log2, _math.log10: P.log10, _math.sqrt: P.sqrt,
    _math.asin: P.arcsin, _math.acos: P.arccos, _math.atan: P.arctan, _math.sinh: P.sinh,
    _math.cosh: P.cosh, _math.tanh: P.tanh, _math.asinh: P.arcsinh, _math.acosh: P.arccosh,
    _math.atanh: P.arctanh, _math.erf: P.erf, _math.atan2: P.arctan2, _math.hypot: P.hypot,
    _math.fabs: P.abs, _math.pow: P.power, _math.floor: P.floor, _math.ceil: P.ceil,
    _math.lgamma: P.lgamma, _math.gamma: gamma_, pow: builtin_pow, _math.fmod: P.fmod,
    _math.degrees: rad2deg_, _math.radians: deg2rad_, _math.copysign: copysign_,
})

# Methods with ndarray semantics, plus the Tensor-only names whose meaning nothing contradicts.
METHODS: dict[str, Adapter] = {
    # ndarray and Tensor alike
    "sum": sum_, "mean": mean_, "max": max_, "min": min_, "argmax": argmax_, "argmin": argmin_,
    "prod": prod_, "var": var_, "std": std_, "cumsum": cumsum_, "cumprod": cumprod_,
    "any": any_, "all": all_,
    "reshape": reshape_method, "view": view_, "transpose": transpose_method,
    "swapaxes": swap_axes, "squeeze": squeeze_, "clip": clip_, "astype": astype_,
    "dot": dot_, "trace": trace_, "diagonal": diagonal_, "flatten": ndarray_flatten_, "ravel": ravel_,
    "repeat": repeat_, "copy": P.copy, "clone": P.copy,
    "__abs__": P.abs, "__neg__": P.neg, "__matmul__": P.matmul,
    "__rmatmul__": rmatmul_,
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
    "minimum": P.minimum, "logaddexp": P.logaddexp, "remainder": P.remainder,
    "atan2": P.arctan2, "arctan2": P.arctan2, "hypot": P.hypot,
    "clamp": clip_, "clamp_min": clamp_min_, "clamp_max": clamp_max_, "t": t_, "permute": transpose_method,
    "unsqueeze": unsqueeze_,
    "expand_dims": expand_dims_, "floor": P.floor, "ceil": P.ceil, "round": P.round,
    "eq": P.equal, "ne": P.not_equal, "lt": P.less, "le": P.less_equal, "gt": P.greater,
    "ge": P.greater_equal, "logical_not": P.logical_not, "conj": P.conj, "conjugate": P.conj,
    "mm": mm_, "bmm": mm_, "matmul": P.matmul, "mv": mm_, "outer": outer_, "ger": outer_,
    "inverse": P.inv, "det": P.det, "logdet": logdet_, "cholesky": P.cholesky,
    "tril": tril_, "triu": triu_,
    "norm": norm_torch, "softmax": softmax_, "log_softmax": log_softmax_, "logsumexp": logsumexp_,
    "flip": flip_, "roll": roll_, "tile": tile_, "repeat_interleave": repeat_interleave_,
    "split": split_torch, "chunk": chunk_, "expand": expand_, "expand_as": expand_as_,
    "reshape_as": reshape_as_, "view_as": reshape_as_, "movedim": moveaxis_, "moveaxis": moveaxis_,
    "take": take_, "fmod": P.fmod, "heaviside": heaviside_, "fmax": fmax_, "fmin": fmin_,
    "deg2rad": deg2rad_, "rad2deg": rad2deg_, "logaddexp2": logaddexp2_, "float_power": float_power_,
    "copysign": copysign_, "signbit": P.signbit, "sinc": sinc_, "nansum": nansum_torch,
    "nanmean": nanmean_torch, "matrix_power": matrix_power_,
}

# ndarray methods that change the array they are called on: adapters that compute the new array (the
# compiler rebinds the variable), or None where srcgrad has no such adapter (the compiler refuses them).
INPLACE_METHODS: dict[str, Adapter | None] = {
    "fill": fill_, "sort": sort_inplace_, "put": put_,
    "resize": None, "itemset": None, "partition": None, "setflags": None,
}

# Where a Tensor method means something else than the ndarray method of the same name, PyTorch wins
# on Tensors. The eager runtime builds Tensor methods from TENSOR_METHODS; the compiler should use
# TENSOR_METHODS for code that runs on Tensors and METHODS for code that runs on arrays.
TENSOR_OVERRIDES: dict[str, Adapter] = {
    "repeat": repeat_torch,         # Tensor.repeat is np.tile; ndarray.repeat is np.repeat
    "transpose": transpose_torch,   # swaps two dims; ndarray.transpose(*axes) permutes
    "var": var_torch,               # unbiased by default; ndarray.var has ddof=0
    "std": std_torch,
    "max": max_torch,               # max(dim) -> (values, indices); max(other) -> elementwise
    "min": min_torch,
    "size": size_torch,             # a method returning the shape; ndarray.size is an attribute
    "flatten": flatten_,            # flatten(start_dim, end_dim); ndarray.flatten copies to one dimension
    "dot": mm_,                     # 1-d only in torch: matmul
    "sort": sort_torch,             # (values, indices), out of place; ndarray.sort sorts in place
    "argsort": argsort_torch,       # dim, descending
    "add": add_torch, "sub": sub_torch, "subtract": sub_torch,  # alpha=
    "gather": gather_, "scatter": scatter_, "scatter_add": scatter_add_, "topk": topk_,
    "masked_fill": masked_fill_, "index_select": index_select_, "index_add": index_add_torch,
    "amax": amax_, "amin": amin_,
    "isnan": isnan_, "isinf": isinf_, "isfinite": isfinite_, "isclose": isclose_,
    "allclose": allclose_,
    "take": take_torch,             # the flattened tensor's entries; ndarray.take(indices, axis)
}
TENSOR_METHODS: dict[str, Adapter] = {**METHODS, **TENSOR_OVERRIDES}

ATTRIBUTES: dict[str, Adapter] = {
    "T": t_, "mT": matrix_transpose_, "shape": P.shape, "ndim": P.ndim, "size": P.size,
    "real": P.real, "imag": P.imag,
}

# what an attribute with no derivative is: one whose adapter's primitive has none (x.shape, x.ndim), and
# those that describe where and how a value lives rather than compute from it
NO_DERIVATIVE_ATTRIBUTES = frozenset(
    {nm for nm, adapter in ATTRIBUTES.items() if getattr(adapter, "differentiable", True) is False}
    | {"dtype", "device", "requires_grad", "is_cuda"})

TORCH_FUNCTIONS: dict[str, Adapter] = {
    **{name: adapter for name, adapter in TENSOR_METHODS.items() if not name.startswith("__")},
    "where": where_, "clip": clip_, "clamp": clip_, "clamp_min": clamp_min_, "clamp_max": clamp_max_,
    "softplus": softplus_,
    "broadcast_to": broadcast_to_, "zeros_like": P.zeros_like, "ones_like": P.ones_like,
    "cat": concatenate_, "concat": concatenate_, "concatenate": concatenate_, "stack": stack_,
    "einsum": einsum_, "tensordot": tensordot_, "diag": diag_, "numel": P.size,
    "nn.functional.pad": pad_torch, "nn.functional.softmax": softmax_,
    "nn.functional.log_softmax": log_softmax_, "nn.functional.relu": P.relu,
    "nn.functional.sigmoid": P.sigmoid, "nn.functional.softplus": softplus_,
    "linalg.inv": P.inv, "linalg.solve": P.solve, "linalg.det": P.det, "linalg.slogdet": slogdet_,
    "linalg.cholesky": P.cholesky, "linalg.eigh": eigh_, "linalg.eigvalsh": eigvalsh_,
    "linalg.norm": linalg_norm, "linalg.vector_norm": vector_norm, "linalg.matrix_norm": matrix_norm_torch,
    "linalg.matmul": P.matmul, "linalg.diagonal": linalg_diagonal_,
    "linalg.svd": svd_, "linalg.svdvals": svdvals_, "linalg.qr": qr_,
    "real": P.real, "imag": P.imag, "angle": angle_,
    "fft.fft": fft_, "fft.ifft": ifft_, "fft.rfft": rfft_, "fft.irfft": irfft_,
    "nan_to_num": nan_to_num_torch, "meshgrid": meshgrid_torch,
    "linalg.multi_dot": multi_dot_torch, "linalg.matrix_power": matrix_power_, "linalg.pinv": pinv_,
}


def logsumexp_scipy(a, axis=None, b=None, keepdims=False, return_sign=False):
    """scipy.special.logsumexp without weights b or return_sign (refused rather than ignored)."""
    if b is not None or return_sign:
        raise NotImplementedError("scipy.special.logsumexp with b= or return_sign=True is not supported")
    return P.logsumexp(a, axis=_axis(axis), keepdims=keepdims)


_SCIPY_ADDED = False


def _add_scipy() -> None:
    """SciPy is an optional extra: its special functions join NUMPY_FUNCTIONS once a program has imported
    scipy.special (a program that calls them has), so srcgrad itself never imports SciPy."""
    global _SCIPY_ADDED
    import sys  # noqa: PLC0415

    special = sys.modules.get("scipy.special")
    if special is None:
        return
    _SCIPY_ADDED = True
    for name, adapter in (("logsumexp", logsumexp_scipy), ("expit", P.sigmoid), ("gammaln", P.lgamma),
                          ("erf", P.erf), ("digamma", P.polygamma),
                          ("psi", P.polygamma)):
        fn_ = getattr(special, name, None)
        if fn_ is not None and adapter is not None:
            NUMPY_FUNCTIONS[fn_] = adapter


# NumPy's own names for the parameters it documents as array_like (np.sum(a), np.dot(a, b),
# np.linalg.norm(x), np.maximum(x1, x2), np.where(condition, x, y), np.append(arr, values), ...): where a
# list is passed there, NumPy reads the array np.array makes of it, and so does srcgrad. A convention of
# NumPy's signatures, read through `array_like_positions`, not a list of functions.
ARRAY_LIKE_PARAMETERS = frozenset({"a", "b", "x", "y", "x1", "x2", "p", "v", "m", "xp", "fp", "arr",
                                   "array", "values", "condition"})


def array_like_positions(obj: Any) -> tuple[int, ...]:
    """The positions of a NumPy function's array_like parameters, read from NumPy's own signature (a
    ufunc's inputs; nothing for any other callable: Python's max([a, b]) is its largest item)."""
    if isinstance(obj, np.ufunc):
        return tuple(range(obj.nin))
    if not (callable(obj) and getattr(obj, "__module__", None) or "").startswith("numpy"):
        return ()
    import inspect  # noqa: PLC0415

    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return ()
    return tuple(k for k, p in enumerate(params) if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                 and p.name in ARRAY_LIKE_PARAMETERS)


def lookup_function(obj: Any) -> Adapter | None:
    """The adapter for a function object users call (numpy function, builtin, or srcgrad function)."""
    try:
        found = NUMPY_FUNCTIONS.get(obj) or BUILTINS.get(obj) or STATIC_HELPERS.get(obj)
        if found is None and not _SCIPY_ADDED:
            _add_scipy()
            found = NUMPY_FUNCTIONS.get(obj)
        return found
    except TypeError:  # unhashable
        return None
