"""The eager Tensor: a backend array plus the bookkeeping of a dynamic tape.

A Tensor holds `_array` (a NumPy or CuPy array), `requires_grad`, `grad`, its place in the graph (`_node`,
the grad_fn, None for leaves, and `_nr`, which output of it) and a version counter shared with
`detach()`ed views (a bytearray whose length is the version: mutable, shareable, and invisible to the
cyclic garbage collector). It has no
arithmetic of its own: every operation is a primitive (`runtime.primitives`), reached through the
adapter tables of `runtime.mapping`. A primitive that receives a Tensor calls `_trace`, which runs the
primitive on the raw arrays and, when some input requires grad, records a node whose backward is the
primitive's rule from `runtime.rules`. So the Tensor API is generated from those tables, not written
op by op.
"""

from __future__ import annotations

import builtins
import math
import types
import weakref
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import backend as B
from . import mapping as M
from . import primitives as P
from . import profiler as _prof
from .autograd import INPLACE_COUNT as _INPLACE
from .autograd import NODE_SEQ as _NODE_SEQ
from .autograd import (
    AccumulateGrad,
    RemovableHandle,
    _mode,
    bump_version,
    enable_grad,
    no_grad,
    node_class,
    run_backward,
)
from .dask_support import is_dask_type as _is_dask_type
from .dask_support import refuse_tensor as refuse_dask
from .primitives import register_trace_type
from .tensor_repr import format_tensor


# ===================================================================================================== dtypes
class dtype:
    """A tensor element type. Wraps a NumPy dtype (reachable as `.dtype`, which NumPy and CuPy accept
    anywhere a dtype is expected) under PyTorch's name."""

    __slots__ = ("name", "np", "is_floating_point", "is_complex", "itemsize", "is_signed")

    def __init__(self, name: str, npd: Any) -> None:
        self.name = name
        self.np = np.dtype(npd)
        self.is_floating_point = self.np.kind == "f"
        self.is_complex = self.np.kind == "c"
        self.is_signed = self.np.kind in "fic"
        self.itemsize = self.np.itemsize

    @property
    def dtype(self) -> np.dtype:
        return self.np

    def __repr__(self) -> str:
        return f"srcgrad.{self.name}"

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, dtype):
            return self.np == other.np
        try:
            return self.np == np.dtype(other)
        except TypeError:
            return False

    def __hash__(self) -> int:
        return hash(self.np)

    def __reduce__(self) -> Any:
        return (_dtype_by_name, (self.name,))


float16 = half = dtype("float16", np.float16)
float32 = dtype("float32", np.float32)
float64 = double = dtype("float64", np.float64)
int8 = dtype("int8", np.int8)
int16 = short = dtype("int16", np.int16)
int32 = dtype("int32", np.int32)
int64 = long = dtype("int64", np.int64)
uint8 = dtype("uint8", np.uint8)
bool_ = dtype("bool", np.bool_)
complex64 = cfloat = dtype("complex64", np.complex64)
complex128 = cdouble = dtype("complex128", np.complex128)
_DTYPES = {d.np: d for d in (float16, float32, float64, int8, int16, int32, int64, uint8, bool_,
                             complex64, complex128)}
_DTYPES_BY_NAME = {d.name: d for d in _DTYPES.values()}
_F64 = np.dtype(np.float64)
_default_float = np.dtype(np.float32)


def _dtype_by_name(name: str) -> dtype:
    return _DTYPES_BY_NAME[name]


def to_dtype(d: Any) -> dtype:
    """srcgrad dtype for a NumPy dtype (or anything np.dtype accepts)."""
    npd = np.dtype(d.np if isinstance(d, dtype) else d)
    out = _DTYPES.get(npd)
    if out is None:
        out = dtype(npd.name, npd)
        _DTYPES[npd] = out
    return out


def np_dtype(d: Any) -> np.dtype | None:
    """The NumPy dtype a user's dtype argument means: Python `float` is float64, as in PyTorch."""
    if d is None:
        return None
    if isinstance(d, dtype):
        return d.np
    if d is float:
        return _F64
    if d is int:
        return np.dtype(np.int64)
    if d is builtins.bool:
        return np.dtype(np.bool_)
    return np.dtype(d)


def set_default_dtype(d: Any) -> None:
    """The dtype of tensors made from Python floats (float32 unless changed, as in PyTorch)."""
    global _default_float
    npd = np_dtype(d)
    if npd.kind != "f":
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_float = npd


def get_default_dtype() -> dtype:
    return to_dtype(_default_float)


# ================================================================================================= devices
class device:
    """`device('cpu')`, `device('cuda')`, `device('cuda:1')`, `device('cuda', 0)`."""

    __slots__ = ("type", "index")

    def __init__(self, type: Any, index: int | None = None) -> None:  # noqa: A002 -- torch's name
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        kind, idx = B.parse_device(type)
        self.type, self.index = kind, idx if index is None else index

    def __repr__(self) -> str:
        return f"device(type='{self.type}')" if self.index is None else \
            f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


_CPU = device("cpu")


def _device_of(a: Any) -> device:
    if B.is_cupy(a):
        return device("cuda", a.device.id)
    return _CPU


class _Cuda:
    """`srcgrad.cuda`: is_available, device_count, synchronize, manual_seed."""

    @staticmethod
    def is_available() -> bool:
        return B.cuda_is_available()

    @staticmethod
    def device_count() -> int:
        return B.cuda_device_count()

    @staticmethod
    def synchronize(device: Any = None) -> None:  # noqa: ARG004
        cp = B.require_cuda()
        cp.cuda.runtime.deviceSynchronize()

    @staticmethod
    def current_device() -> int:
        return B.require_cuda().cuda.runtime.getDevice()

    @staticmethod
    def manual_seed(seed: int) -> None:
        cp = B.cupy_module()
        if cp is not None and B.cuda_is_available():
            cp.random.seed(seed)

    manual_seed_all = manual_seed


cuda = _Cuda()


# ======================================================================================== the trace handler
def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


_PLAIN = (tuple, int, float, builtins.bool, list, type(None), str)


def _fix_float(raw: Sequence[Any], out: Any, kwargs: dict) -> Any:
    """NumPy computes int / int and int * 2.5 in float64; PyTorch gives the default dtype unless a
    float64 tensor took part (or float64 was asked for)."""
    if "dtype" in kwargs:
        return out
    for a in raw:
        if getattr(a, "dtype", None) is _F64 or (isinstance(a, np.generic) and a.dtype == _F64):
            return out
    return out.astype(_default_float)


def _trace(prim: P.Primitive, args: tuple, kwargs: dict) -> Any:
    """Called by every primitive that receives a Tensor: run it on the arrays; record it if needed.

    This is the per-operation cost of the tape, so it is written flat: one pass over the arguments,
    the primitive on raw arrays, and a node only when some input requires grad. (While a profiler is
    active, `_trace_profiled` is registered instead, so timing costs nothing otherwise.)"""
    if len(args) == 1 and isinstance(args[0], Tensor):  # unary: most calls, and the scan is half the cost
        a = args[0]
        raw = [a._array]
        rg = a._rg
        out = prim.impl(raw[0], **kwargs) if kwargs else prim.impl(raw[0])
    else:
        raw = []
        rg = False
        for a in args:
            if isinstance(a, Tensor):
                raw.append(a._array)
                if a._rg:
                    rg = True
            else:
                raw.append(a)
        out = prim.impl(*raw, **kwargs)
    if type(out) is not np.ndarray:
        if type(out) is float and rg and prim.differentiable:
            out = np.asarray(out)  # a number that carries a derivative (item): a 0-d Tensor in the graph
        elif type(out) in _PLAIN:  # shapes, sizes, Python booleans
            return out
        if _is_dask_type(type(out)):  # an operand was a Dask array: no Tensor around a lazy result
            refuse_dask(out)
    if out.dtype is _F64 and _default_float is not _F64 and getattr(raw[0], "dtype", None) is not _F64:
        out = _fix_float(raw, out, kwargs)
    if out is raw[0] and prim in _SAME_WHEN_UNCHANGED:
        return args[0]  # sum_to/broadcast_to to the shape x already has: x itself, as sum_to_size does
    # Views: NumPy scalars are immutable (and their `.base` is slow), so only arrays are checked.
    if type(out) is np.ndarray:
        if out.base is not None or out is raw[0]:
            src = _viewed(args, raw, out)
            if src is not None:
                return _view_of(src, prim, args, raw, kwargs, out,
                                rg and _mode.enabled and prim.differentiable)
    elif not isinstance(out, np.generic) and (getattr(out, "base", None) is not None or out is raw[0]):
        src = _viewed(args, raw, out)  # CuPy and other array types
        if src is not None:
            return _view_of(src, prim, args, raw, kwargs, out, rg and _mode.enabled and prim.differentiable)
    if rg and _mode.enabled and prim.differentiable:
        return _record(prim, args, raw, kwargs, out)
    return _tensor(Tensor, out, False, None, 0, bytearray())


def _viewed(args: tuple, raw: list, out: Any) -> "Tensor | None":
    """The Tensor whose memory `out` shares (NumPy/CuPy views: reshape, transpose, basic indexing; or
    the very same array, as sum_to returns when nothing is summed), if it is the first argument."""
    a = args[0]
    if not isinstance(a, Tensor):
        return None
    arr = raw[0]
    base = getattr(out, "base", None)
    if out is arr or (base is not None and (base is arr or base is getattr(arr, "base", None))):
        return a
    return None


def _view_of(src: "Tensor", prim: P.Primitive, args: tuple, raw: list, kwargs: dict, out: Any,
             record: builtins.bool) -> "Tensor":
    """A result that shares memory with `src`: it shares src's version counter too (an in-place change
    through either is seen by nodes that saved the other), and remembers how it views src, so that a
    recorded in-place change of the view can give src the matching history (`_rebase_view`)."""
    if record:
        t = _record(prim, args, raw, kwargs, out, src._vc)
        if src._node is not None:  # (a leaf that requires grad is never changed in place on the tape)
            entry = (weakref.ref(t), prim, args[1:], kwargs)
            try:
                src._views.append(entry)
            except AttributeError:  # the first recorded view of src
                src._views = [entry]
    else:
        t = _tensor(Tensor, out, False, None, 0, src._vc)
    t._view = (src, kwargs.get("index") if prim is P.getitem else None)
    return t


def _trace_profiled(prim: P.Primitive, args: tuple, kwargs: dict) -> Any:
    return _prof.traced_call(prim, args, kwargs, _trace)


def _binary_profiled(prim: P.Primitive, a: Any, b: Any) -> Any:
    return _prof.traced_call(prim, (a, b), _NOKW, _trace)


def _set_profiling(on: builtins.bool) -> None:
    global _dispatch, _binary
    _dispatch = _trace_profiled if on else _trace
    _binary = _binary_profiled if on else _binary_fast
    register_trace_type(Tensor, _dispatch)


_dispatch = _trace
_SAME_WHEN_UNCHANGED = (P.sum_to, P.broadcast_to)
_NOKW: dict = {}  # shared, never written: the static kwargs of operator calls
_ADD, _SUBTRACT, _MULTIPLY, _DIVIDE = P.add, P.subtract, P.multiply, P.divide
_POWER, _MATMUL, _NEG = P.power, P.matmul, P.neg


_new = object.__new__


def _tensor(cls: type, arr: Any, rg: builtins.bool, node: Any, nr: int, vc: bytearray) -> "Tensor":
    """Every internal Tensor is made here (no __init__, no checks): the one place that sets every slot
    but `_view`, which only views have."""
    t = _new(cls)
    t._array = arr
    t._rg = rg
    t._grad = None
    t._node = node
    t._nr = nr
    t._acc = None
    t._vc = vc
    t._hooks = None
    t._retains = False
    return t

_next_seq = _NODE_SEQ.__next__
_NONES = tuple((None,) * k for k in range(8))
_ZEROS = tuple((0,) * k for k in range(8))
_VARIANT_PRIMS: dict[str, Callable[[tuple, dict], str]] = {}


def _record(prim: P.Primitive, args: tuple, raw: list, kwargs: dict, out: Any,
            shared_vc: bytearray | None = None) -> "Tensor":
    """Make the output Tensor and its grad_fn node.

    The node keeps: an edge (the producing node, or the leaf's AccumulateGrad) per positional input,
    the raw input arrays and output array the rule may read, and the version of each of those it does
    read, so backward can refuse values that an in-place operation changed since. Few objects are
    allocated here on purpose: long graphs made of many small objects are what Python's cyclic garbage
    collector spends its time rescanning."""
    cls = _NODE_CLS.get(prim)
    if cls is None:
        cls = _node_cls(prim, raw, kwargs)
    uses = cls.uses_arg
    nu = len(uses)
    vc = bytearray() if shared_vc is None else shared_vc  # the output's version counter
    node = _new(cls)  # PrimNode.__init__, inlined: this runs once per recorded operation
    if len(args) == 1:  # one Tensor argument that requires grad (else nothing would be recorded)
        a = args[0]
        e = a._node
        node.nrs = None
        if e is None:
            e = a._leaf_node()
        elif a._nr:
            node.nrs = (a._nr,)
        va = a._vc if nu == 0 or uses[0] else None
        vo = vc if cls.uses_ans else None
        node.e0, node.e1, node.ne = e, None, 1
        node.args = (raw[0],)
        node.vcs = _NONES[2] if va is None and vo is None else (va, vo)
        node.vers = _ZEROS[2] if not va and not vc else (0 if va is None else len(va), len(vc))
    else:
        edges = []
        nrs = None
        mask = 0
        i = 0
        for a in args:
            if isinstance(a, Tensor) and a._rg:
                n = a._node
                if n is None:
                    n = a._leaf_node()
                elif a._nr:
                    nrs = nrs or {}
                    nrs[i] = a._nr
                edges.append(n)
                mask |= 1 << i
            else:
                edges.append(None)
            i += 1
        # what the rules of the arguments that require grad read (`b * 3` reads only the 3)
        uses_ans, uses = cls.needs(mask)
        nu = len(uses)
        vcs = []
        vers = []
        i = 0
        for a in args:
            if isinstance(a, Tensor) and (i >= nu or uses[i]):
                vcs.append(a._vc)
                vers.append(len(a._vc))
            else:
                vcs.append(None)
                vers.append(0)
            i += 1
        vcs.append(vc if uses_ans else None)
        vers.append(len(vc))
        node.set_edges(edges)
        node.nrs = None if nrs is None else tuple(nrs.get(j, 0) for j in range(len(edges)))
        node.args = tuple(raw)
        # Nothing saved to check, or every version still 0 (the common cases): one shared tuple per
        # length instead of a new one per operation, so fewer objects for the garbage collector to count.
        nv = len(vcs)
        node.vcs = _NONES[nv] if nv < 8 and vcs.count(None) == nv else tuple(vcs)
        node.vers = _ZEROS[nv] if nv < 8 and not any(vers) else tuple(vers)
    node.seq = _next_seq()  # after the edges: a leaf's AccumulateGrad made just now is older
    node.hooks = None
    node.kwargs = kwargs
    node.ans = out
    node.epoch = _INPLACE[0]
    node.freed = False
    return _tensor(Tensor, out, True, node, 0, vc)


def _binary_fast(prim: P.Primitive, a: Any, b: Any) -> Any:
    """`_trace` and `_record` for the operators (+ - * / ** @), written out for two arguments: the
    tape's per-operation cost on scalar and small-array code. These primitives always return a new
    array, never a view of an input or a shape or a Python value, so those cases of `_trace` do not
    arise. Kept in step with `_record` by test_operators_record_the_node_the_general_path_records."""
    ta = isinstance(a, Tensor)
    if ta:
        x = a._array
        ra = a._rg
    else:
        x = a
        ra = False
    tb = isinstance(b, Tensor)
    if tb:
        y = b._array
        rb = b._rg
    else:
        y = b
        rb = False
    out = prim.impl(x, y)
    if type(out) is not np.ndarray:
        if type(out) in _PLAIN:  # a Tensor around a Python number
            return out
        if _is_dask_type(type(out)):  # an operand was a Dask array: no Tensor around a lazy result
            refuse_dask(out)
    if out.dtype is _F64 and _default_float is not _F64 and getattr(x, "dtype", None) is not _F64:
        out = _fix_float((x, y), out, _NOKW)
    if not ((ra or rb) and _mode.enabled):
        return _tensor(Tensor, out, False, None, 0, bytearray())
    if prim is _MATMUL:  # the node's name depends on the operands' ranks (MvBackward0, MmBackward0, ...)
        key = (x.ndim if ta else getattr(x, "ndim", -1), y.ndim if tb else getattr(y, "ndim", -1))
        cls = _MATMUL_CLS.get(key)
        if cls is None:
            cls = _MATMUL_CLS[key] = _node_cls(prim, [x, y], _NOKW)
    else:
        cls = _NODE_CLS.get(prim)
        if cls is None:
            cls = _node_cls(prim, [x, y], _NOKW)
    nrs = None
    if ra:
        ea = a._node
        if ea is None:  # a leaf: its AccumulateGrad, held weakly (`_leaf_node`, inlined)
            ea = a._acc() if a._acc is not None else None
            if ea is None:
                ea = a._leaf_node()
        elif a._nr:
            nrs = (a._nr, 0)
    else:
        ea = None
    if rb:
        eb = b._node
        if eb is None:
            eb = b._acc() if b._acc is not None else None
            if eb is None:
                eb = b._leaf_node()
        elif b._nr:
            nrs = (nrs[0] if nrs else 0, b._nr)
    else:
        eb = None
    vc = bytearray()
    # what the rules of the arguments that require grad read (`b * 3` reads only the 3, as in PyTorch)
    ua, ub, uo = cls.need2[ra + rb + rb]
    va = a._vc if ta and ua else None
    vb = b._vc if tb and ub else None
    vo = vc if uo else None
    node = _new(cls)
    node.seq = _next_seq()
    node.e0 = ea
    node.e1 = eb
    node.ne = 2
    node.nrs = nrs
    node.hooks = None
    node.args = (x, y)
    node.kwargs = _NOKW
    node.ans = out
    if va is None and vb is None and vo is None:
        node.vcs = _NONES[3]
        node.vers = _ZEROS[3]
    else:
        node.vcs = (va, vb, vo)
        node.vers = _ZEROS[3] if not (va or vb) else (0 if va is None else len(va),
                                                      0 if vb is None else len(vb), 0)
    node.epoch = _INPLACE[0]
    node.freed = False
    return _tensor(Tensor, out, True, node, 0, vc)


_binary = _binary_fast
_MATMUL_CLS: dict[tuple, type] = {}


def _node_cls(prim: P.Primitive, raw: list, kwargs: dict) -> type:
    variant = _VARIANT_PRIMS.get(prim.name)
    if variant is not None:  # the name depends on the arguments (SelectBackward0 or SliceBackward0)
        key = (prim, variant(raw, kwargs))
        cls = _VARIANT_CLS.get(key)
        if cls is None:
            cls = _VARIANT_CLS[key] = node_class(prim.name, key[1])
        return cls
    cls = _NODE_CLS[prim] = node_class(prim.name)
    return cls


_VARIANT_CLS: dict[tuple, type] = {}


_NODE_CLS: dict[Any, type] = {}


def _getitem_variant(raw: list, kwargs: dict) -> str:
    idx = kwargs.get("index")
    parts = idx if isinstance(idx, tuple) else (idx,)
    if all(isinstance(p, (int, np.integer)) for p in parts):
        return "SelectBackward0"
    if all(isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts):
        return "SliceBackward0" if isinstance(parts[-1], slice) else "SelectBackward0"
    return "IndexBackward0"


def _matmul_variant(raw: list, kwargs: dict) -> str:
    a, b = raw
    na, nb = len(getattr(a, "shape", ())), len(getattr(b, "shape", ()))
    if na == 1 and nb == 1:
        return "DotBackward0"
    if na == 2 and nb == 1:
        return "MvBackward0"
    if na == 2 and nb == 2:
        return "MmBackward0"
    if na == 3 and nb == 3:
        return "BmmBackward0"
    return "MatmulBackward0"


def _pow_variant(raw: list, kwargs: dict) -> str:
    return "PowBackward1" if _is_array(raw[1]) and _is_array(raw[0]) else "PowBackward0"


def _reduce_variant(name: str) -> Callable[[list, dict], str]:
    whole, along = f"{name}Backward0", f"{name}Backward1"

    def pick(raw: list, kwargs: dict) -> str:
        return along if kwargs.get("axis") is not None else whole
    return pick


def _transpose_variant(raw: list, kwargs: dict) -> str:
    """t() (axes None on a matrix), transpose(d0, d1) / mT (a swap: mapping.Swap), permute otherwise."""
    axes = kwargs.get("axes")
    if axes is None:
        return "TBackward0" if len(getattr(raw[0], "shape", ())) == 2 else "PermuteBackward0"
    return "TransposeBackward0" if type(axes).__name__ == "Swap" else "PermuteBackward0"


def _astype_variant(raw: list, kwargs: dict) -> str:
    """astype to the same dtype is clone() (Tensor.to skips a same-dtype cast)."""
    return "CloneBackward0" if np.dtype(kwargs.get("dtype")) == getattr(raw[0], "dtype", None) \
        else "ToCopyBackward0"


_VARIANT_PRIMS.update({
    "transpose": _transpose_variant, "astype": _astype_variant,
    "getitem": _getitem_variant, "matmul": _matmul_variant, "power": _pow_variant,
    "sum": _reduce_variant("Sum"), "mean": _reduce_variant("Mean"),
})


# ===================================================================================================== Tensor
def _unwrap(x: Any) -> Any:
    return x._array if isinstance(x, Tensor) else x


_BASIC_INDEX = (int, slice, type(None), type(Ellipsis))


def _writes_onto_itself(t: "Tensor", idx: Any, value: "Tensor") -> builtins.bool:
    """Is `t[idx] = value` a no-op because `value` is the basic-index view `t[idx]` itself (same memory,
    shape and strides)? NumPy arrays only; anything else is written as usual."""
    view = getattr(value, "_view", None)
    if view is None or view[0] is not t:
        return False
    arr, v = t._array, value._array
    if type(arr) is not np.ndarray or type(v) is not np.ndarray:
        return False
    parts = idx if type(idx) is tuple else (idx,)
    if not all(type(p) in _BASIC_INDEX for p in parts):
        return False
    sel = arr[idx]
    if type(sel) is not np.ndarray:
        return False
    return (sel.__array_interface__["data"][0] == v.__array_interface__["data"][0]
            and sel.shape == v.shape and sel.strides == v.strides and sel.dtype == v.dtype)


def _index(idx: Any) -> Any:
    """Tensors inside an index become arrays (an index is a static argument, never differentiated)."""
    if isinstance(idx, Tensor):
        return idx._array
    if isinstance(idx, tuple):
        return tuple(i._array if isinstance(i, Tensor) else i for i in idx)
    if isinstance(idx, list) and any(isinstance(i, Tensor) for i in idx):
        return [i._array if isinstance(i, Tensor) else i for i in idx]
    return idx


LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."
VIEW_OF_LEAF_INPLACE = "a view of a leaf Variable that requires grad is being used in an in-place operation."
NUMPY_REQUIRES_GRAD = "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
NONLEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad attribute "
    "won't be populated during autograd.backward(). If you indeed want the .grad field to be populated "
    "for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor "
    "by mistake, make sure you access the leaf Tensor instead.")


class Tensor:
    """A multi-dimensional array that can record the operations applied to it (see module docstring)."""

    # _view, set only on results that share memory with another tensor: (that tensor, index or None)
    # _views, set only on tensors that recorded views were taken of: [(weakref to view, prim, other args,
    # kwargs)], so an in-place change of this tensor can give those views the matching history
    __slots__ = ("_array", "_rg", "_grad", "_node", "_nr", "_acc", "_vc", "_hooks", "_retains", "_view",
                 "_views", "__weakref__")

    def __init__(self, *data: Any, dtype: Any = None, device: Any = None,
                 requires_grad: builtins.bool = False) -> None:
        """`Tensor(data)` (always the default float dtype, as torch.Tensor) or `Tensor(*sizes)` (zeros;
        PyTorch leaves them uninitialised). Prefer `srcgrad.tensor(data)`, which infers the dtype."""
        if len(data) == 1 and not isinstance(data[0], int):
            arr = _make_array(data[0], dtype or _default_float, device)
        else:
            arr = np.zeros(tuple(int(d) for d in data), np_dtype(dtype) or _default_float)
            if device is not None:
                arr = B.to_device(arr, str(globals()["device"](device)))
        self._array = arr
        self._rg = False
        self._grad = None
        self._node = None
        self._nr = 0
        self._acc = None
        self._vc = bytearray()
        self._hooks = None
        self._retains = False
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _wrap(cls, arr: Any, rg: builtins.bool = False, node: Any = None, nr: int = 0) -> "Tensor":
        """A Tensor around an existing array, with no copy (internal constructor)."""
        return _tensor(cls, arr, rg, node, nr, bytearray())

    # ------------------------------------------------------------------------------------ graph state
    def _leaf_node(self) -> AccumulateGrad:
        """The leaf's AccumulateGrad node (held weakly: graphs keep it alive, the tensor does not)."""
        acc = self._acc() if self._acc is not None else None
        if acc is None:
            acc = AccumulateGrad(self)
            self._acc = weakref.ref(acc)
        return acc

    def _edge(self) -> tuple:
        """(node, output_nr) where this tensor's gradient goes."""
        return (self._node, self._nr) if self._node is not None else (self._leaf_node(), 0)

    @property
    def requires_grad(self) -> builtins.bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag: builtins.bool) -> None:
        if self._node is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach().")
        if flag and self._array.dtype.kind not in "fc":
            raise RuntimeError("only Tensors of floating point and complex dtype can require gradients")
        self._rg = builtins.bool(flag)

    def requires_grad_(self, requires_grad: builtins.bool = True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    @property
    def grad_fn(self) -> Any:
        return self._node

    @property
    def is_leaf(self) -> builtins.bool:
        return self._node is None

    @property
    def output_nr(self) -> int:
        return self._nr

    @property
    def grad(self) -> "Tensor | None":
        if self._grad is None and self._node is not None and not self._retains:
            import warnings  # noqa: PLC0415

            warnings.warn(NONLEAF_GRAD_WARNING, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value: "Tensor | None") -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got {type(value)}")
            if value.shape != self.shape:
                raise RuntimeError("assigned grad has data of a different size")
        self._grad = value

    @property
    def _version(self) -> int:
        return len(self._vc)

    def retain_grad(self) -> None:
        """Keep `.grad` for this non-leaf tensor after backward (leaves keep theirs anyway)."""
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._node is None or self._retains:
            return
        self._retains = True
        ref = weakref.ref(self)

        def keep(g: Tensor) -> None:
            t = ref()
            if t is not None:
                if t._grad is None:
                    t._grad = Tensor._wrap(g._array.copy()) if g._node is None else g
                else:
                    t._grad = t._grad + g if g._node is not None else Tensor._wrap(t._grad._array + g._array)

        keep._retains = ref  # type: ignore[attr-defined] -- found again by _move_retain_hook
        node, nr = self._node, self._nr
        if node.hooks is None:
            node.hooks = []
        node.hooks.append(("tensor", (nr, keep)))

    @property
    def retains_grad(self) -> builtins.bool:
        return self._retains

    def register_hook(self, hook: Callable[["Tensor"], "Tensor | None"]) -> RemovableHandle:
        """`hook(grad)` runs when this tensor's gradient is computed; a returned Tensor replaces it."""
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._node is None:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
            return RemovableHandle(self._hooks, hook)
        node, nr = self._node, self._nr
        if node.hooks is None:
            node.hooks = []
        entry = ("tensor", (nr, hook))
        node.hooks.append(entry)
        return RemovableHandle(node.hooks, entry)

    def backward(self, gradient: Any = None, retain_graph: builtins.bool | None = None,
                 create_graph: builtins.bool = False, inputs: Any = None) -> None:
        """Accumulate d(self)/d(leaf) into the `.grad` of every leaf that requires grad."""
        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def detach(self) -> "Tensor":
        """The same data (and version counter), cut from the graph."""
        t = Tensor._wrap(self._array)
        t._vc = self._vc
        return t

    def detach_(self) -> "Tensor":
        self._node = None
        self._nr = 0
        self._rg = False
        return self

    @property
    def data(self) -> "Tensor":
        """The data as a Tensor that does not require grad; in-place changes to it are not tracked."""
        return Tensor._wrap(self._array)

    @data.setter
    def data(self, value: Any) -> None:
        self._array = value._array if isinstance(value, Tensor) else _make_array(value, None, None)

    # --------------------------------------------------------------------------------------- metadata
    @property
    def shape(self) -> "Size":
        return Size(self._array.shape)

    def size(self, dim: int | None = None) -> Any:
        s = self._array.shape
        return Size(s) if dim is None else s[dim]

    @property
    def dtype(self) -> dtype:
        return to_dtype(self._array.dtype)

    @property
    def device(self) -> device:
        return _device_of(self._array)

    @property
    def is_cuda(self) -> builtins.bool:
        return B.is_cupy(self._array)

    @property
    def ndim(self) -> int:
        return len(self._array.shape)

    def dim(self) -> int:
        return len(self._array.shape)

    ndimension = dim

    def numel(self) -> int:
        return int(math.prod(self._array.shape))

    nelement = numel

    def element_size(self) -> int:
        return self._array.dtype.itemsize

    def is_floating_point(self) -> builtins.bool:
        return self._array.dtype.kind == "f"

    def is_complex(self) -> builtins.bool:
        return self._array.dtype.kind == "c"

    def is_contiguous(self) -> builtins.bool:
        return True

    def contiguous(self) -> "Tensor":
        return self

    # ---------------------------------------------------------------------------------- conversions
    def item(self) -> Any:
        if self.numel() != 1:
            raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        return self._array.item() if hasattr(self._array, "item") else self._array

    def tolist(self) -> Any:
        a = self._array
        return a.get().tolist() if B.is_cupy(a) else a.tolist()

    def numpy(self, *, force: builtins.bool = False) -> np.ndarray:
        """A NumPy array sharing this tensor's memory (CPU tensors). Refused while it requires grad."""
        if self._rg and not force:
            raise RuntimeError(NUMPY_REQUIRES_GRAD)
        a = self._array
        if B.is_cupy(a):
            if not force:
                raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to "
                                "copy the tensor to host memory first.")
            return a.get()
        return np.asarray(a)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self._rg:
            raise RuntimeError(NUMPY_REQUIRES_GRAD)
        a = self._array
        a = a.get() if B.is_cupy(a) else np.asarray(a)
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        return a.copy() if copy else a

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """`ndarray * tensor` and `np.sin(tensor)` run srcgrad's primitive and return a Tensor."""
        adapter = M.NUMPY_FUNCTIONS.get(ufunc)
        if method != "__call__" or adapter is None or kwargs.get("out") is not None:
            return NotImplemented
        return adapter(*inputs)

    def __len__(self) -> int:
        if not self._array.shape:
            raise TypeError("len() of a 0-d tensor")
        return self._array.shape[0]

    def __iter__(self) -> Iterator["Tensor"]:
        if not self._array.shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._array.shape[0]))

    def __bool__(self) -> builtins.bool:
        if self.numel() != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return builtins.bool(self._array)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._array.dtype.kind not in "iub" or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __complex__(self) -> complex:
        return complex(self.item())

    def __format__(self, spec: str) -> str:
        if self.dim() == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __hash__(self) -> int:
        return id(self)

    def __reduce_ex__(self, protocol: int) -> Any:
        return (_rebuild, (self.tolist() if not B.is_cupy(self._array) else self._array.get(),
                           self.dtype.name, self._rg))

    def __deepcopy__(self, memo: dict) -> "Tensor":
        if self._node is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support the "
                               "deepcopy protocol at the moment.")
        t = Tensor._wrap(self._array.copy(), self._rg)
        if self._grad is not None:
            t._grad = Tensor._wrap(self._grad._array.copy())
        memo[id(self)] = t
        return t

    def to(self, *args: Any, **kwargs: Any) -> "Tensor":
        """`to(device)`, `to(dtype)`, `to(device, dtype)`, `to(other_tensor)`; differentiable."""
        dev, dt = kwargs.get("device"), kwargs.get("dtype")
        for a in args:
            if isinstance(a, Tensor):
                dev, dt = a.device, a.dtype
            elif isinstance(a, (dtype, np.dtype, type)):
                dt = a
            elif a is not None:
                dev = a
        out = self
        if dt is not None and np_dtype(dt) != self._array.dtype:
            out = P.astype(out, dtype=np_dtype(dt))
        if dev is not None and device(dev) != out.device:
            out = _to_device(out, device(dev))
        if kwargs.get("copy") and out is self:
            out = self.clone()
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device: Any = None) -> "Tensor":
        return self.to("cuda" if device is None else (device if isinstance(device, str) else
                                                       f"cuda:{device}" if isinstance(device, int)
                                                       else device))

    def type(self, dtype: Any = None) -> Any:  # noqa: A003
        if dtype is None:
            return f"srcgrad.{self.dtype.name}"
        return self.to(dtype)

    def float(self) -> "Tensor":  # noqa: A003
        return self.to(float32)

    def double(self) -> "Tensor":
        return self.to(float64)

    def half(self) -> "Tensor":
        return self.to(float16)

    def long(self) -> "Tensor":
        return self.to(int64)

    def int(self) -> "Tensor":  # noqa: A003
        return self.to(int32)

    def bool(self) -> "Tensor":  # noqa: A003
        return self.to(bool_)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    def clone(self) -> "Tensor":
        """A copy that stays in the graph (its gradient flows back to self)."""
        return _clone(self)

    def new_tensor(self, data: Any, dtype: Any = None, requires_grad: builtins.bool = False) -> "Tensor":
        return tensor(data, dtype=dtype or self.dtype, device=self.device, requires_grad=requires_grad)

    def new_zeros(self, *size: Any, dtype: Any = None, requires_grad: builtins.bool = False) -> "Tensor":
        return zeros(*size, dtype=dtype or self.dtype, device=self.device, requires_grad=requires_grad)

    def new_ones(self, *size: Any, dtype: Any = None, requires_grad: builtins.bool = False) -> "Tensor":
        return ones(*size, dtype=dtype or self.dtype, device=self.device, requires_grad=requires_grad)

    def new_full(self, size: Any, fill_value: Any, dtype: Any = None) -> "Tensor":
        return full(size, fill_value, dtype=dtype or self.dtype, device=self.device)

    def new_empty(self, *size: Any, dtype: Any = None) -> "Tensor":
        return empty(*size, dtype=dtype or self.dtype, device=self.device)

    # ----------------------------------------------------------------------------------------- repr
    def __repr__(self) -> str:
        a = self._array
        host = a.get() if B.is_cupy(a) else np.asarray(a)
        suffixes = []
        if B.is_cupy(a):
            suffixes.append(f"device='{self.device}'")
        if host.dtype not in (_default_float, np.dtype(np.int64), np.dtype(np.bool_)):
            suffixes.append(f"dtype=srcgrad.{to_dtype(host.dtype).name}")
        if self._node is not None:
            suffixes.append(f"grad_fn=<{self._node.name()}>")
        elif self._rg:
            suffixes.append("requires_grad=True")
        return format_tensor(host, suffixes)

    __str__ = __repr__

    # -------------------------------------------------------------------------------------- indexing
    def __getitem__(self, idx: Any) -> "Tensor":
        arr = self._array
        if (type(idx) is int and type(arr) is np.ndarray and arr.ndim > 1 and not self._rg
                and _dispatch is _trace):
            # `xs[t]` of data in a loop: a view with nothing to record, made without the general path
            return _view_of(self, P.getitem, (self,), [arr], {"index": idx}, arr[idx], False)
        return P.getitem(self, index=_index(idx))

    def __setitem__(self, idx: Any, value: Any) -> None:
        idx = _index(idx)
        if type(value) is Tensor and _writes_onto_itself(self, idx, value):
            # `b[i:j] += v` ends with `b[i:j] = view`, where the view IS b[i:j]: its in-place change has
            # already written b's memory and given b its history (`_rebase_view`), so this write changes
            # nothing. Recording it (with a version bump) would invalidate the nodes that saved the view.
            return
        if not self._recording_inplace(value):
            self._check_leaf()
            self._array_for_write()[idx] = _unwrap(value)
            bump_version(self)
            return
        self._check_leaf()
        self._check_view_recordable()
        self._commit_inplace(P.index_update(self, value, index=idx))

    # -------------------------------------------------------------------------------------- in place
    def _check_leaf(self) -> None:
        if self._rg and self._node is None and _mode.enabled:
            raise RuntimeError(LEAF_INPLACE)
        view = getattr(self, "_view", None)
        while view is not None and _mode.enabled:
            base, index = view
            if base._rg and base._node is None:
                raise RuntimeError(VIEW_OF_LEAF_INPLACE)
            view = getattr(base, "_view", None)

    def _check_view_recordable(self) -> None:
        """A recorded in-place change of a view must also become part of its base's history; srcgrad
        can write that history for views made by indexing, not for reshape/transpose/... views."""
        view = getattr(self, "_view", None)
        while view is not None:
            base, index = view
            if index is None:
                raise RuntimeError(
                    "srcgrad cannot record an in-place operation on a view made by reshape, view, "
                    "transpose, squeeze, expand or a similar operation (its base would need the new "
                    "history too): apply the operation out of place, or clone() the view first.")
            view = getattr(base, "_view", None)

    def _rebase_view(self) -> None:
        """After a recorded in-place change of a view `v = base[index]`, the base's values changed
        too: give the base the history `base = index_update(old base, v, index)` (PyTorch's
        CopySlices), and so on up a chain of views."""
        t = self
        view = getattr(t, "_view", None)
        while view is not None:
            base, index = view
            with enable_grad():
                r = P.index_update(base, t, index=index)
            base._node = r._node
            base._nr = 0
            base._rg = True
            base._refresh_views(skip=t)
            t = base
            view = getattr(t, "_view", None)

    def _recording_inplace(self, *others: Any) -> builtins.bool:
        if not _mode.enabled:
            return False
        return self._rg or any(isinstance(o, Tensor) and o._rg for o in others)

    def _array_for_write(self) -> Any:
        a = self._array
        if not hasattr(type(a), "__setitem__") or not getattr(getattr(a, "flags", None), "writeable", True):
            a = self._array = (np.array(a) if isinstance(a, np.generic) else a.copy())
        return a

    def _commit_inplace(self, res: "Tensor") -> "Tensor":
        """Make `self` hold `res` (the out-of-place result of an in-place operation): write the values
        into self's memory, bump the version, and if the operation was recorded, make its node self's
        grad_fn. A node that saved self's old values gets its own copy before they are overwritten."""
        new = res._array
        old = self._array
        if tuple(getattr(new, "shape", ())) != tuple(old.shape):
            raise RuntimeError(f"output with shape {list(old.shape)} doesn't match the broadcast shape "
                               f"{list(getattr(new, 'shape', ()))}")
        if res._node is not None:
            node = res._node
            args = node.args
            uses = node.uses_arg
            if type(old) is np.ndarray:
                # another operand that views the memory about to be overwritten (d *= d[::-1]): the node
                # keeps a copy of the values it read, where its rule reads them
                node.args = args = tuple(
                    a.copy() if a is not old and type(a) is np.ndarray and (i >= len(uses) or uses[i])
                    and _memory_root(a) is _memory_root(old) and np.shares_memory(a, old) else a
                    for i, a in enumerate(args))
            if any(a is old for a in args):
                node.args = tuple((a.copy() if (i >= len(uses) or uses[i]) else a) if a is old else a
                                  for i, a in enumerate(args))
                # self's own version counter no longer describes those (copied) inputs
                node.vcs = tuple(None if vc is self._vc else vc for vc in node.vcs[:-1]) + node.vcs[-1:]
        arr = self._array_for_write()
        if new.dtype != arr.dtype:
            new = new.astype(arr.dtype)
        arr[...] = new
        bump_version(self)
        if res._node is not None:
            node = res._node
            if node.vcs[-1] is not None:
                node.vcs = node.vcs[:-1] + (self._vc,)
                node.vers = node.vers[:-1] + (len(self._vc),)
            old_node, old_nr = self._node, self._nr
            self._node = node
            self._nr = res._nr
            self._rg = True
            if self._retains and old_node is not None:
                _move_retain_hook(self, old_node, old_nr)
            if getattr(self, "_views", None):
                self._refresh_views()
            if getattr(self, "_view", None) is not None:
                self._rebase_view()
        return self

    def _refresh_views(self, skip: "Tensor | None" = None) -> None:
        """After a recorded in-place change of `self`, the recorded views taken of it (but `skip`) see the
        new values: give each the history `view = view_op(new self)`, as PyTorch regenerates a view's
        grad_fn from its base's, and so on down views of views."""
        views = getattr(self, "_views", None)
        if not views:
            return
        live = []
        for entry in list(views):
            v = entry[0]()
            if v is None:
                continue
            live.append(entry)
            if v is skip:
                continue
            _, prim, rest, kwargs = entry
            with enable_grad():
                r = prim(self, *rest, **kwargs)
            v._node, v._nr, v._rg = r._node, r._nr, True
            v._refresh_views()
        self._views = live  # (the replays registered themselves as views too: dropped here)

    def _inplace(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> "Tensor":
        self._check_leaf()
        if not self._recording_inplace(*args):
            with no_grad():
                res = fn(self, *args, **kwargs)
            arr = self._array_for_write()
            new = res._array if isinstance(res, Tensor) else res
            if tuple(getattr(new, "shape", ())) != tuple(arr.shape):
                raise RuntimeError(f"output with shape {list(arr.shape)} doesn't match the broadcast "
                                   f"shape {list(getattr(new, 'shape', ()))}")
            arr[...] = new
            bump_version(self)
            return self
        self._check_view_recordable()
        res = fn(self, *args, **kwargs)
        if not isinstance(res, Tensor):
            res = Tensor._wrap(res)
        return self._commit_inplace(res)

    def add_(self, other: Any, *, alpha: Any = 1) -> "Tensor":
        return self._inplace(_add_alpha, other, alpha)

    def sub_(self, other: Any, *, alpha: Any = 1) -> "Tensor":
        return self._inplace(_add_alpha, other, -alpha)

    def mul_(self, other: Any) -> "Tensor":
        return self._inplace(P.multiply, other)

    def div_(self, other: Any) -> "Tensor":
        return self._inplace(P.divide, other)

    def pow_(self, other: Any) -> "Tensor":
        return self._inplace(P.power, other)

    def clamp_(self, min: Any = None, max: Any = None) -> "Tensor":  # noqa: A002
        return self._inplace(M.clip_, min=_unwrap(min), max=_unwrap(max))

    clip_ = clamp_

    def zero_(self) -> "Tensor":
        return self._inplace(lambda x: x * 0)

    def fill_(self, value: Any) -> "Tensor":
        if isinstance(value, Tensor) and value._rg:
            return self._inplace(lambda x, v: x * 0 + v, value)
        v = _unwrap(value)
        return self._inplace(lambda x: x * 0 + v)

    def copy_(self, src: Any) -> "Tensor":
        if isinstance(src, Tensor) and src.device != self.device:
            src = src.to(self.device)
        return self._inplace(lambda x, s: x * 0 + s, src)

    def __iadd__(self, other: Any) -> "Tensor":
        return self.add_(other)

    def __isub__(self, other: Any) -> "Tensor":
        return self.sub_(other)

    def __imul__(self, other: Any) -> "Tensor":
        return self.mul_(other)

    def __itruediv__(self, other: Any) -> "Tensor":
        return self.div_(other)

    def __ipow__(self, other: Any) -> "Tensor":
        return self.pow_(other)

    # --------------------------------------------------------------------------------------- operators
    # Operators know one operand is a Tensor and the primitive is a binary one, so they skip the
    # primitive's argument scan and the general trace handler: `_binary` is the hottest path of the tape.
    def __add__(self, o: Any) -> "Tensor":
        return _binary(_ADD, self, o)

    def __radd__(self, o: Any) -> "Tensor":
        # as PyTorch: `1 + t` is t.add(1), so the tensor's edge comes first in next_functions
        return _binary(_ADD, self, o)

    def __sub__(self, o: Any) -> "Tensor":
        return _binary(_SUBTRACT, self, o)

    def __rsub__(self, o: Any) -> "Tensor":
        return _binary(_SUBTRACT, o, self)

    def __mul__(self, o: Any) -> "Tensor":
        return _binary(_MULTIPLY, self, o)

    def __rmul__(self, o: Any) -> "Tensor":
        return _binary(_MULTIPLY, self, o)

    def __truediv__(self, o: Any) -> "Tensor":
        return _binary(_DIVIDE, self, o)

    def __rtruediv__(self, o: Any) -> "Tensor":
        if self._rg and type(o) in (builtins.float, builtins.int) and self._array.dtype.kind in "fc":
            # as PyTorch: reciprocal (whose rule reads only its result), times the number, so that an
            # in-place change of self afterwards does not invalidate the graph
            r = P.reciprocal(self)
            return r if o == 1 else _binary(_MULTIPLY, r, o)
        return _binary(_DIVIDE, o, self)

    def __pow__(self, o: Any) -> "Tensor":
        return _binary(_POWER, self, o)

    def __rpow__(self, o: Any) -> "Tensor":
        return _binary(_POWER, o, self)

    def __matmul__(self, o: Any) -> "Tensor":
        return _binary(_MATMUL, self, o)

    def __rmatmul__(self, o: Any) -> "Tensor":
        return _binary(_MATMUL, o, self)

    def __floordiv__(self, o: Any) -> "Tensor":
        if _integral(self) and _integral(o):  # int // int stays integer, as in PyTorch (never differentiated)
            return _tensor(Tensor, self._array // _unwrap(o), False, None, 0, bytearray())
        return P.floor(P.divide(self, o))

    def __rfloordiv__(self, o: Any) -> "Tensor":
        if _integral(self) and _integral(o):
            return _tensor(Tensor, _unwrap(o) // self._array, False, None, 0, bytearray())
        return P.floor(P.divide(o, self))

    def __mod__(self, o: Any) -> "Tensor":
        return P.subtract(self, P.multiply(P.floor(P.divide(self, _detached(o))), o))

    def __neg__(self) -> "Tensor":
        return _dispatch(_NEG, (self,), _NOKW)

    def __pos__(self) -> "Tensor":
        return self

    def __abs__(self) -> "Tensor":
        return P.abs(self)

    def __eq__(self, o: Any) -> "Tensor":  # type: ignore[override]
        return P.equal(self, o)

    def __ne__(self, o: Any) -> "Tensor":  # type: ignore[override]
        return P.not_equal(self, o)

    def __lt__(self, o: Any) -> "Tensor":
        return P.less(self, o)

    def __le__(self, o: Any) -> "Tensor":
        return P.less_equal(self, o)

    def __gt__(self, o: Any) -> "Tensor":
        return P.greater(self, o)

    def __ge__(self, o: Any) -> "Tensor":
        return P.greater_equal(self, o)

    def __and__(self, o: Any) -> "Tensor":
        return P.logical_and(self, o)

    def __or__(self, o: Any) -> "Tensor":
        return P.logical_or(self, o)

    def __invert__(self) -> "Tensor":
        return P.logical_not(self)

    # ------------------------------------------------------------------------ methods not in the tables
    @property
    def T(self) -> "Tensor":
        return M.t_(self) if self.ndim <= 2 else P.transpose(self)

    @property
    def mT(self) -> "Tensor":
        return M.swap_axes(self, -1, -2)

    def relu_(self) -> "Tensor":
        return self._inplace(P.relu)

    def sigmoid_(self) -> "Tensor":
        return self._inplace(P.sigmoid)

    def argmax(self, dim: int | None = None, keepdim: builtins.bool = False) -> "Tensor":
        return P.argmax(self, axis=dim, keepdims=keepdim)

    def argmin(self, dim: int | None = None, keepdim: builtins.bool = False) -> "Tensor":
        return P.argmin(self, axis=dim, keepdims=keepdim)

    def abs_(self) -> "Tensor":
        return self._inplace(P.abs)

    def neg_(self) -> "Tensor":
        return self._inplace(P.neg)


def _move_retain_hook(t: Tensor, old_node: Any, old_nr: int) -> None:
    """retain_grad() follows the tensor to its new grad_fn after an in-place change (as in PyTorch), so
    .grad is the gradient of the new version; other tensor hooks stay with the old version."""
    hooks = old_node.hooks or []
    for entry in hooks:
        kind, (nr, fn) = entry
        ref = getattr(fn, "_retains", None)
        if kind == "tensor" and nr == old_nr and ref is not None and ref() is t:
            hooks.remove(entry)
            node = t._node
            if node.hooks is None:
                node.hooks = []
            node.hooks.append(("tensor", (t._nr, fn)))
            return


class Size(tuple):
    """A tensor's shape: a tuple that prints as `srcgrad.Size([2, 3])`."""

    def __repr__(self) -> str:
        return f"srcgrad.Size({list(self)})"

    def numel(self) -> int:
        return int(math.prod(self))


def _rebuild(data: Any, dtype_name: str, rg: builtins.bool) -> Tensor:
    return tensor(data, dtype=_DTYPES_BY_NAME[dtype_name], requires_grad=rg)


def _add_alpha(x: Any, other: Any, alpha: Any) -> Any:
    return P.add(x, other if alpha == 1 else P.multiply(other, alpha))


def _detached(x: Any) -> Any:
    return x.detach() if isinstance(x, Tensor) else x


def _clone(x: Tensor) -> Tensor:
    """Copy as a recorded operation: the copy's gradient is the identity (multiply by one keeps dtype
    and records a node; an explicit copy keeps the data independent)."""
    a = x._array
    if not x._rg or not _mode.enabled:
        t = Tensor._wrap(a.copy() if hasattr(a, "copy") else a)
        return t
    return P.astype(x, dtype=a.dtype)  # a fresh array (CloneBackward0); gradient passes through


def _to_device(x: Tensor, dev: device) -> Tensor:
    """Move to another device; recorded as a custom function whose backward moves the gradient back."""
    arr = B.to_device(x._array, str(dev))
    if not (x._rg and _mode.enabled):
        return Tensor._wrap(arr)
    src = str(x.device)
    from .function import Function  # noqa: PLC0415

    class ToCopy(Function):
        @staticmethod
        def forward(ctx: Any, t: Tensor) -> Tensor:
            return Tensor._wrap(arr)

        @staticmethod
        def backward(ctx: Any, g: Tensor) -> Tensor:
            return g.to(src)

    return ToCopy.apply(x)


# ------------------------------------------------------------- Tensor methods generated from the tables
_MANUAL = set(vars(Tensor)) | {"size", "transpose"}


def _method(name: str, adapter: Callable[..., Any]) -> Callable[..., Any]:
    doc = f"Tensor.{name}: the `{name}` adapter of runtime.mapping applied to this tensor."
    if isinstance(adapter, types.FunctionType):
        # the adapter's own code under the method's name: `t.sum()` calls it with no wrapper in between
        method = types.FunctionType(adapter.__code__, adapter.__globals__, name, adapter.__defaults__,
                                    adapter.__closure__)
        method.__kwdefaults__ = adapter.__kwdefaults__
    else:  # a primitive or other callable object: not a descriptor, so wrapped
        def method(self: Tensor, *args: Any, **kwargs: Any) -> Any:
            return adapter(self, *args, **kwargs)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = doc
    return method


def _inplace_method(name: str, adapter: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return self._inplace(adapter, *args, **kwargs)

    method.__name__ = method.__qualname__ = name + "_"
    method.__doc__ = f"In-place `{name}`: the result is written into this tensor (version bumped)."
    return method


_UNARY_INPLACE = ("abs", "neg", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "square",
                  "reciprocal", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
                  "asinh", "acosh", "atanh", "sigmoid", "relu", "erf", "floor", "ceil", "round", "sign",
                  "clamp", "clip", "t", "squeeze", "unsqueeze", "transpose")


def _install_methods() -> None:
    table = getattr(M, "TENSOR_METHODS", M.METHODS)
    for name, adapter in table.items():
        if name.startswith("__") or name in _MANUAL:
            continue
        setattr(Tensor, name, _method(name, adapter))
    Tensor.transpose = _method("transpose", table.get("transpose", M.transpose_method))
    for name in _UNARY_INPLACE:
        if name in table and not hasattr(Tensor, name + "_"):
            if name in ("t", "squeeze", "unsqueeze", "transpose"):
                continue  # shape-changing in place: not supported (would need views)
            setattr(Tensor, name + "_", _inplace_method(name, table[name]))
    for name in ("masked_fill", "scatter", "scatter_add"):  # torch's in-place forms of these
        if name in table and not hasattr(Tensor, name + "_"):
            setattr(Tensor, name + "_", _inplace_method(name, table[name]))


_install_methods()


def _integral(x: Any) -> builtins.bool:
    """An integer or boolean Tensor, array or Python number."""
    if isinstance(x, (builtins.int, np.integer)):
        return True
    dt = getattr(_unwrap(x), "dtype", None)
    return dt is not None and dt.kind in "iub"


def _install_dtype_reductions() -> None:
    """Tensor.sum/mean take PyTorch's `dtype=` (the input is cast first); mean of an integer tensor
    without one raises, as in PyTorch."""
    plain_sum, plain_mean = Tensor.sum, Tensor.mean

    def sum(self: Tensor, *args: Any, dtype: Any = None, **kwargs: Any) -> Any:  # noqa: A001
        return plain_sum(self if dtype is None else self.to(dtype), *args, **kwargs)

    def mean(self: Tensor, *args: Any, dtype: Any = None, **kwargs: Any) -> Any:
        if dtype is None and self._array.dtype.kind not in "fc":
            raise RuntimeError(
                "mean(): could not infer output dtype. Input dtype must be either a floating point or "
                f"complex dtype. Got: {to_dtype(self._array.dtype)}")
        return plain_mean(self if dtype is None else self.to(dtype), *args, **kwargs)

    sum.__doc__, mean.__doc__ = plain_sum.__doc__, plain_mean.__doc__
    Tensor.sum, Tensor.mean = sum, mean


_install_dtype_reductions()
register_trace_type(Tensor, _trace)
_prof.LISTENERS.append(_set_profiling)


# ================================================================================================= factories
def _make_array(data: Any, dt: Any, dev: Any) -> Any:
    """An array from user data: Python floats become the default float dtype, NumPy data keeps its
    dtype, nested lists of Tensors are unwrapped."""
    npd = np_dtype(dt)
    if isinstance(data, Tensor):
        arr = data._array
    elif B.is_cupy(data):
        arr = data
    elif isinstance(data, (np.ndarray, np.generic)):
        arr = np.asarray(data)
    else:
        refuse_dask(data)  # np.asarray would compute the whole Dask array here: say what to do instead
        if isinstance(data, (list, tuple)) and _has_tensor(data):
            data = _untensor(data)
        if isinstance(data, (str, bytes)):
            raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
        arr = np.asarray(data)
        if npd is None and arr.dtype.kind == "f":
            arr = arr.astype(_default_float)
        if arr.dtype == object:
            raise TypeError(f"could not convert {type(data).__name__} to a tensor")
    if arr.dtype.kind not in "biufc":
        # strings, bytes, dates, records: a tensor holds numbers (PyTorch: "new(): invalid data type 'str'")
        raise TypeError(f"new(): invalid data type '{_leaf_type(data)}'")
    if npd is not None and arr.dtype != npd:
        arr = arr.astype(npd)
    if dev is not None:
        arr = B.to_device(arr, str(device(dev)))
    return arr


def _leaf_type(data: Any) -> str:
    """The name of the first non-numeric element's type in `data` (for the invalid-data error)."""
    if isinstance(data, np.ndarray):
        return "str" if data.dtype.kind == "U" else "bytes" if data.dtype.kind == "S" else str(data.dtype)
    if isinstance(data, (list, tuple)):
        for x in data:
            if not isinstance(x, (builtins.bool, builtins.int, builtins.float, builtins.complex, np.number)):
                return _leaf_type(x)
    return type(data).__name__


def _has_tensor(seq: Any) -> builtins.bool:
    return any(isinstance(x, Tensor) or (isinstance(x, (list, tuple)) and _has_tensor(x)) for x in seq)


def _untensor(seq: Any) -> Any:
    return [(x.item() if x.numel() == 1 else x.tolist()) if isinstance(x, Tensor)
            else _untensor(x) if isinstance(x, (list, tuple)) else x for x in seq]


def _finish(arr: Any, requires_grad: builtins.bool) -> Tensor:
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad = True
    return t


def tensor(data: Any, *, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False,
           pin_memory: builtins.bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (nested lists, numbers, NumPy/CuPy arrays, tensors)."""
    arr = _make_array(data, dtype, device)
    if isinstance(data, (Tensor, np.ndarray, np.generic)) or B.is_cupy(data):
        arr = arr.copy()
    return _finish(arr, requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like `tensor`, but shares memory with NumPy/CuPy data (and returns Tensors unchanged) when the
    dtype and device already match."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return _finish(_make_array(data, dtype, device), False)


asarray = as_tensor


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor sharing `a`'s memory: writes to one show in the other."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(a).__name__})")
    return Tensor._wrap(a)


def _size_args(size: tuple) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list, Size)):
        return tuple(size[0])
    return tuple(int(s) for s in size)


def _float_dtype(dt: Any) -> np.dtype:
    return np_dtype(dt) if dt is not None else _default_float


def _place(arr: Any, dev: Any) -> Any:
    return arr if dev is None else B.to_device(arr, str(device(dev)))


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False,
          out: Any = None) -> Tensor:
    return _finish(_place(np.zeros(_size_args(size), _float_dtype(dtype)), device), requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False,
         out: Any = None) -> Tensor:
    return _finish(_place(np.ones(_size_args(size), _float_dtype(dtype)), device), requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False,
          **_: Any) -> Tensor:
    return _finish(_place(np.empty(_size_args(size), _float_dtype(dtype)), device), requires_grad)


def full(size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None,
         requires_grad: builtins.bool = False) -> Tensor:
    if dtype is None:
        v = _unwrap(fill_value)
        dtype = (np.bool_ if isinstance(v, builtins.bool) else np.int64 if isinstance(v, int)
                 else _default_float)
    shape = (size,) if isinstance(size, int) else tuple(size)
    return _finish(_place(np.full(shape, _unwrap(fill_value), np_dtype(dtype)), device), requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None,
           requires_grad: builtins.bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    start, end, step = (_unwrap(v) for v in (start, end, step))
    if dtype is None:
        floats = any(isinstance(v, float) or (hasattr(v, "dtype") and v.dtype.kind == "f")
                     for v in (start, end, step))
        dtype = _default_float if floats else np.int64
    npd = np_dtype(dtype)
    n = builtins.max(0, int(math.ceil((end - start) / step)))
    arr = (start + np.arange(n, dtype=np.float64) * step).astype(npd) if npd.kind == "f" else \
        np.arange(start, end, step, dtype=npd)
    return _finish(_place(arr, device), requires_grad)


def linspace(start: Any, end: Any, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: builtins.bool = False) -> Tensor:
    """`steps` points from start to end, computed as PyTorch does (in the output dtype, the first half
    counted up from `start` and the second half down from `end`), so values match to the last bit."""
    npd = _float_dtype(dtype)
    steps = int(steps)
    ct = npd.type if npd.kind == "f" else np.float64
    s, e = ct(float(_unwrap(start))), ct(float(_unwrap(end)))
    if steps == 1:
        arr = np.array([s], dtype=ct)
    else:
        step = (e - s) / ct(steps - 1)
        idx = np.arange(steps)
        arr = np.where(idx < steps // 2, s + step * idx.astype(ct), e - step * (steps - 1 - idx).astype(ct))
    return _finish(_place(arr.astype(npd), device), requires_grad)


def logspace(start: Any, end: Any, steps: int, base: float = 10.0, *, dtype: Any = None,
             device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    arr = np.logspace(float(start), float(end), int(steps), base=base).astype(_float_dtype(dtype))
    return _finish(_place(arr, device), requires_grad)


def eye(n: int, m: int | None = None, *, dtype: Any = None, device: Any = None,
        requires_grad: builtins.bool = False) -> Tensor:
    return _finish(_place(np.eye(n, m, dtype=_float_dtype(dtype)), device), requires_grad)


# ------------------------------------------------------------------------------------------- random
_rng = np.random.default_rng()


def manual_seed(seed: int) -> Any:
    """Seed the generator behind rand, randn, randint, nn.Linear's initialisation and dropout."""
    global _rng
    _rng = np.random.default_rng(int(seed))
    cuda.manual_seed(int(seed))
    return _rng


seed = manual_seed


def rng() -> np.random.Generator:
    return _rng


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False,
         generator: Any = None) -> Tensor:
    g = generator or _rng
    return _finish(_place(g.random(_size_args(size)).astype(_float_dtype(dtype)), device), requires_grad)


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False,
          generator: Any = None) -> Tensor:
    g = generator or _rng
    return _finish(_place(g.standard_normal(_size_args(size)).astype(_float_dtype(dtype)), device),
                   requires_grad)


def randint(low: int, high: int | None = None, size: Any = None, *, dtype: Any = None,
            device: Any = None, generator: Any = None) -> Tensor:
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    g = generator or _rng
    arr = g.integers(low, high, size=tuple(size)).astype(np_dtype(dtype) or np.int64)
    return _finish(_place(arr, device), False)


def randperm(n: int, *, dtype: Any = None, device: Any = None) -> Tensor:
    return _finish(_place(_rng.permutation(n).astype(np_dtype(dtype) or np.int64), device), False)


def normal(mean: float, std: float, size: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    arr = _rng.normal(mean, std, size=tuple(size)).astype(_float_dtype(dtype))
    return _finish(_place(arr, device), False)


def _like(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    def like(input: Tensor, *args: Any, dtype: Any = None, device: Any = None,  # noqa: A002
             requires_grad: builtins.bool = False, **kwargs: Any) -> Tensor:
        dt = dtype if dtype is not None else input.dtype
        dev = device if device is not None else (input.device if input.is_cuda else None)
        return fn(*args, tuple(input.shape), dtype=dt, device=dev, requires_grad=requires_grad, **kwargs) \
            if fn is full else fn(tuple(input.shape), *args, dtype=dt, device=dev,
                                  requires_grad=requires_grad, **kwargs)
    like.__name__ = fn.__name__ + "_like"
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, device: Any = None,  # noqa: A002
              requires_grad: builtins.bool = False) -> Tensor:
    return full(tuple(input.shape), fill_value, dtype=dtype if dtype is not None else input.dtype,
                device=device if device is not None else (input.device if input.is_cuda else None),
                requires_grad=requires_grad)


def randint_like(input: Tensor, low: int, high: int | None = None, *, dtype: Any = None) -> Tensor:  # noqa: A002
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype)


# ======================================================================================= backward and grad
def _as_list(x: Any) -> list:
    if x is None:
        return []
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def _root_grads(outputs: list[Tensor], grads: list[Any], create_graph: builtins.bool) -> list[tuple]:
    roots = []
    for i, (out, g) in enumerate(zip(outputs, grads, strict=True)):
        if not isinstance(out, Tensor) or not out._rg:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        if g is None:
            arr = out._array
            if arr.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = arr.dtype.type(1) if isinstance(arr, (np.generic, np.ndarray)) and not arr.shape else \
                B.array_ns(arr).ones_like(arr)
        else:
            ga = g._array if isinstance(g, Tensor) else _make_array(g, None, None)
            if tuple(ga.shape) != tuple(out._array.shape):
                raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                                   f"{Size(ga.shape)} and output[{i}] has a shape of "
                                   f"{Size(out._array.shape)}.")
            if ga.dtype != out._array.dtype:
                ga = ga.astype(out._array.dtype)
            g = g if (create_graph and isinstance(g, Tensor) and ga is g._array) else ga
        if create_graph and not isinstance(g, Tensor):
            g = Tensor._wrap(g)
        roots.append((out._edge(), g))
    return roots


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: builtins.bool | None = None,
             create_graph: builtins.bool = False, grad_variables: Any = None, inputs: Any = None) -> None:
    """Accumulate the gradients of `tensors` into the `.grad` of the leaves (or only of `inputs`)."""
    outs = _as_list(tensors)
    grads = _as_list(grad_tensors if grad_tensors is not None else grad_variables)
    if not grads:
        grads = [None] * len(outs)
    if len(grads) != len(outs):
        raise RuntimeError(f"got {len(grads)} gradients for {len(outs)} tensors")
    if retain_graph is None:
        retain_graph = create_graph
    roots = _root_grads(outs, grads, create_graph)
    if inputs is None:
        run_backward(roots, retain_graph, create_graph)
        return
    ins = _as_list(inputs)
    if not ins:
        raise RuntimeError("'inputs' argument to backward() cannot be empty.")
    targets = [t._edge() for t in ins]
    captured = run_backward(roots, retain_graph, create_graph, targets=targets)
    for t, e in zip(ins, targets, strict=True):  # non-leaf inputs get .grad, like leaves
        if t._node is not None and e in captured:
            g = captured[e]
            g = g if isinstance(g, Tensor) else Tensor._wrap(g)
            t._grad = g if t._grad is None else t._grad + g


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: builtins.bool | None = None,
         create_graph: builtins.bool = False, only_inputs: builtins.bool = True,
         allow_unused: builtins.bool | None = None, is_grads_batched: builtins.bool = False,
         materialize_grads: builtins.bool = False) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, returned (not accumulated into `.grad`)."""
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    grads = _as_list(grad_outputs) or [None] * len(outs)
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    for t in ins:
        if not isinstance(t, Tensor) or not t._rg:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    roots = _root_grads(outs, grads, create_graph)
    targets = [t._edge() for t in ins]
    captured = run_backward(roots, retain_graph, create_graph, targets=targets, accumulate_leaves=False)
    result = []
    for t, e in zip(ins, targets, strict=True):
        g = captured.get(e)
        if g is None:
            if not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been used in the "
                                   "graph. Set allow_unused=True if this is the desired behavior.")
            result.append(zeros_like(t) if materialize_grads else None)
            continue
        if isinstance(g, Tensor):
            result.append(g)
        else:
            if g.dtype != t._array.dtype:
                g = g.astype(t._array.dtype)
            result.append(Tensor._wrap(g))
    return tuple(result)



def _memory_root(a: Any) -> Any:
    """The array that owns a NumPy view's memory."""
    while getattr(a, "base", None) is not None and isinstance(a.base, np.ndarray):
        a = a.base
    return a
