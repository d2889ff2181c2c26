"""Dask arrays: the namespace primitives dispatch to, and what a transform computes at the end of a call.

Generated code is plain array code, so it runs on a `dask.array.Array` as it runs on NumPy: every
primitive asks `backend.namespace` which namespace owns its argument, and for a Dask array that is
`dask_namespace()` below, array-api-compat's Dask namespace (`array_api_compat.dask.array`: the array
API's names and NumPy's, each building a lazy graph) with the few functions it lacks added blockwise
(`erf`, `linalg.det`, `linalg.slogdet`). No primitive computes a chunk: a rule that cannot run lazily
says so in its record (`rules.Rule.not_lazy`).

What is computed, and when, is decided once per call, at the end (`finisher`): gradients with respect
to NumPy arrays and floats, and 0-d results (the loss), come back as NumPy in ONE `dask.compute`, so the
data is read once per call; gradients with respect to Dask arrays stay lazy, with the input's chunks.
Dask is imported only when a Dask array is first seen: NumPy-only programs never pay for it.
"""

from __future__ import annotations

import functools
import sys
import types
from typing import Any, Callable

import numpy as np

_NAMESPACE: Any = None


class _DaskLoaded:
    """True once dask.array has been imported: before that no Dask array can exist, so callers skip
    looking for one (`if SEEN and has_dask(args)`). Asks sys.modules each time, so it is right from the
    first Dask array on, whichever primitive meets it first."""

    def __bool__(self) -> bool:
        return "dask.array" in sys.modules


SEEN = _DaskLoaded()


_IS_DASK: dict[type, bool] = {}


def is_dask_type(t: type) -> bool:
    """Is `t` a Dask collection type? Checked by module name, so Dask is never imported to ask, and
    remembered per type: the eager tape asks this of every result that is not a NumPy array."""
    known = _IS_DASK.get(t)
    if known is None:
        known = _IS_DASK[t] = t.__module__.split(".", 1)[0] == "dask"
    return known


def is_dask(x: Any) -> bool:
    return is_dask_type(type(x))


def _compat() -> Any:
    try:
        import array_api_compat.dask.array as compat  # noqa: PLC0415
    except ImportError as exc:  # dask present (we were handed a Dask array) but not the extra
        raise ImportError(
            "srcgrad runs on Dask arrays through array-api-compat, which is not installed: "
            "pip install 'srcgrad[dask]'") from exc
    return compat


def _erf_blocks(x: Any) -> Any:
    """erf of one NumPy block (SciPy when installed, `math.erf` elementwise otherwise)."""
    from .primitives import _erf_numpy  # noqa: PLC0415 -- primitives imports backend, which imports us

    return np.asarray(_erf_numpy(x), dtype=x.dtype)


class _DaskLinalg(types.SimpleNamespace):
    """`array_api_compat.dask.array.linalg`, with det and slogdet (which dask.array.linalg lacks) and
    inv, solve and cholesky over batches of matrices of any chunking (see `_gufunc`)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_compat().linalg, name)


def _gufunc(f: Callable, signature: str, *arrays: Any, dtypes: Any) -> Any:
    """`f` (a NumPy linear-algebra function over the last axes) applied lazily, block by block: the
    matrix axes of each array become one block (`allow_rechunk`), batch axes stay split as they are.
    dask.array.linalg's own inv/solve/cholesky take only 2-d arrays with square chunks; the matrices a
    program inverts or factors are parameters, small next to the data, so one block each is right."""
    import dask.array as da  # noqa: PLC0415

    return da.apply_gufunc(f, signature, *arrays, allow_rechunk=True, output_dtypes=dtypes)


def _inv(a: Any) -> Any:
    return _gufunc(np.linalg.inv, "(n,n)->(n,n)", a, dtypes=a.dtype)


def _solve(a: Any, b: Any) -> Any:
    """Solve with b a stack of matrices (the primitive turns a vector into one column first)."""
    return _gufunc(np.linalg.solve, "(n,n),(n,k)->(n,k)", a, b, dtypes=np.result_type(a.dtype, b.dtype))


def _cholesky(a: Any) -> Any:
    return _gufunc(np.linalg.cholesky, "(n,n)->(n,n)", a, dtypes=a.dtype)


def _det(a: Any) -> Any:
    return _gufunc(np.linalg.det, "(n,n)->()", a, dtypes=a.dtype)


def _slogdet_pair(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sign, logabs = np.linalg.slogdet(m)
    return sign, logabs


def _slogdet(a: Any) -> tuple[Any, Any]:
    return tuple(_gufunc(_slogdet_pair, "(n,n)->(),()", a, dtypes=(a.dtype, a.dtype)))


def _eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None,
         device: Any = None) -> Any:
    """The array API's eye, as one block. array-api-compat hands on dask.array.eye itself, whose second
    positional parameter is `chunks` (eye(3, 4) would be 3x3), and dask.array.eye(3, M=4) builds a
    graph that misses a block. An identity the rules use is shaped by parameters, not by the data, so
    a constant NumPy block is right."""
    import dask.array as da  # noqa: PLC0415

    block = np.eye(n_rows, n_cols, k, dtype=dtype if dtype is not None else np.float64)
    return da.from_array(block, chunks=block.shape)


class ChunkedShape(tuple):
    """A Dask array's shape that also remembers its chunks: a tuple in every other respect (equal to,
    and hashed as, the plain shape). Rules broadcast a reduction's cotangent back with
    `broadcast_to(g, shape=shape(x))`; carried this way, x's chunks reach `_broadcast_to`, so the
    cotangent is chunked as the data it meets instead of being one block."""

    chunks: tuple
    namespace: Any  # where a Python number broadcast to this shape is made (not a NumPy array)

    def __new__(cls, x: Any) -> "ChunkedShape":
        out = super().__new__(cls, tuple(x.shape))
        out.chunks = x.chunks
        out.namespace = dask_namespace()
        return out


def _shape_of(x: Any) -> tuple:
    return ChunkedShape(x)


def _broadcast_to(x: Any, shape: tuple) -> Any:
    """broadcast_to whose new (and size-1) axes take the chunks `shape` carries (a `ChunkedShape`),
    or else chunks of dask's `array.chunk-size`. dask.array.broadcast_to makes each such axis ONE
    chunk: the cotangent of a mean over a billion rows would be one billion-element block on one
    worker, the opposite of out of core. Axes x already has keep x's chunks."""
    import dask.array as da  # noqa: PLC0415
    from dask.array.core import normalize_chunks  # noqa: PLC0415

    target = getattr(shape, "chunks", None)
    shape = tuple(shape)
    lead = len(shape) - x.ndim
    spec = []
    for i, n in enumerate(shape):
        if i >= lead and x.shape[i - lead] == n:
            spec.append(x.chunks[i - lead])
        elif target is not None and len(target) == len(shape):
            spec.append(target[i])
        else:
            spec.append("auto")
    return da.broadcast_to(x, shape, chunks=normalize_chunks(tuple(spec), shape, dtype=x.dtype))


class _DaskNamespace(types.SimpleNamespace):
    """The namespace of Dask arrays: array-api-compat's, with the gaps filled (see the module doc).

    Attribute lookups fall through to `array_api_compat.dask.array`; `primitives.fn` caches what it
    finds per namespace object, so this indirection costs nothing after the first call."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_compat(), name)


def dask_namespace() -> Any:
    """The one namespace object for Dask arrays (one object: `primitives.fn` caches by its id)."""
    global _NAMESPACE
    if _NAMESPACE is None:
        _compat()  # a clear ImportError now rather than an AttributeError later

        def erf(x: Any) -> Any:
            return x.map_blocks(_erf_blocks, dtype=x.dtype)

        _NAMESPACE = _DaskNamespace(__name__="dask.array", erf=erf, eye=_eye, broadcast_to=_broadcast_to,
                                    shape_of=_shape_of,
                                    linalg=_DaskLinalg(det=_det, slogdet=_slogdet, inv=_inv, solve=_solve,
                                                       cholesky=_cholesky))
    return _NAMESPACE


# ------------------------------------------------------------------------------------ the eager Tensor
TENSOR_REFUSAL = (
    "srcgrad's eager Tensor holds NumPy or CuPy arrays, not Dask arrays: making one from a Dask array "
    "would compute the whole array into this process's memory. Differentiate the function with the "
    "compiled transforms instead (srcgrad.grad / value_and_grad / vjp / jvp / hvp), which run on Dask "
    "arrays lazily; or call .compute() first if the array fits in memory.")


def refuse_tensor(data: Any) -> None:
    """Raise a TypeError saying what to do instead, when `data` is a Dask array given to the Tensor."""
    if is_dask(data):
        raise TypeError(TENSOR_REFUSAL)


# ------------------------------------------------------------------------------ the end of a call
def has_dask(args: tuple) -> bool:
    return any(is_dask_type(type(a)) for a in args)


def _to_compute(result: Any, like: Any) -> bool:
    """Does this Dask result come back computed? Yes for a gradient whose argument is NumPy or a
    float (`like` given) and for a 0-d result (a loss); no for anything shaped by the data."""
    if not is_dask(result):
        return False
    if like is not None:
        return not is_dask(like)
    return len(result.shape) == 0


def _as_argument(value: Any, like: Any) -> Any:
    """A computed gradient with its argument's type: a float for a float, an array of the argument's
    dtype and shape for a NumPy array (a 0-d array stays a 0-d array)."""
    if like is None:
        return value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value
    if isinstance(like, (float, int)):
        return float(value)
    if isinstance(like, np.ndarray):
        out = np.asarray(value)
        return out if out.dtype == like.dtype else out.astype(like.dtype)
    return value


def _chunked_like(result: Any, like: Any) -> Any:
    """A Dask argument's gradient with that argument's chunks (lazily rechunked where the graph
    chunked it otherwise, e.g. a matmul's output takes its chunks from the other operand)."""
    if (like is not None and is_dask(like) and is_dask(result) and result.shape == like.shape
            and result.chunks != like.chunks):
        return result.rechunk(like.chunks)
    return result


def compute_results(results: list, likes: list, wrt_args: list) -> list:
    """`results` with each entry that must come back as NumPy computed, all in ONE `dask.compute` (so
    the graph is optimized as a whole and the data the results share is read once). `likes[i]` is the
    argument result i is the gradient of, or None for a value or an output tangent. Nothing is
    computed when every differentiated argument (`wrt_args`) is itself a Dask array: the caller holds
    Dask parameters, and decides when to compute."""
    results = [_chunked_like(r, like) for r, like in zip(results, likes, strict=True)]
    if not any(not is_dask(a) for a in wrt_args):
        return results
    chosen = [i for i, (r, like) in enumerate(zip(results, likes, strict=True)) if _to_compute(r, like)]
    if not chosen:
        return results
    import dask  # noqa: PLC0415

    computed = dask.compute(*[results[i] for i in chosen])
    out = list(results)
    for i, value in zip(chosen, computed, strict=True):
        out[i] = _as_argument(value, likes[i])
    return out


def finish(out: Any, call_args: tuple, wrt_idx: tuple[int, ...], single: bool, kind: str) -> Any:
    """A transform's result `out` for `call_args`, finished as `compute_results` says. `kind` says how
    results are laid out: "grad" returns the gradients; "value_and_grad", "vjp" and "hvp" return
    (value, gradients); "jvp" returns (value, tangent), both shaped like the output."""
    wrt_args = [call_args[i] for i in wrt_idx if -len(call_args) <= i < len(call_args)]
    if kind == "grad":
        grads = [out] if single else list(out)
        done = compute_results(grads, wrt_args, wrt_args)
        return done[0] if single else tuple(done)
    value, rest = out
    if kind == "jvp":
        return tuple(compute_results([value, rest], [None, None], wrt_args))
    grads = [rest] if single else list(rest)
    done = compute_results([value] + grads, [None] + wrt_args, wrt_args)
    return done[0], (done[1] if single else tuple(done[1:]))


def finisher(fn: Callable, args: tuple, wrt_idx: tuple[int, ...], single: bool, kind: str) -> Callable:
    """`fn` (a generated transform, specialized to the types of `args`) with `finish` applied to its
    results; `fn` itself when no argument is a Dask array, so NumPy calls pay nothing."""
    if not has_dask(args):
        return fn

    @functools.wraps(fn)
    def run(*call_args: Any, **kwargs: Any) -> Any:
        return finish(fn(*call_args, **kwargs), call_args, wrt_idx, single, kind)

    if hasattr(fn, "source"):
        run.source = fn.source
    return run


# ------------------------------------------------------------------------------------ measurement
def reset_peak_memory() -> None:
    """Clear this process's peak-resident-memory mark (Linux; elsewhere a no-op), so `peak_memory`
    measures from now. Run it on every worker with `client.run(reset_peak_memory)`."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_memory() -> int:
    """This process's peak resident memory in bytes: since `reset_peak_memory` on Linux (VmHWM), since
    the process started elsewhere (ru_maxrss). `client.run(peak_memory)` gives it per worker."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource  # noqa: PLC0415
    import sys  # noqa: PLC0415

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024
