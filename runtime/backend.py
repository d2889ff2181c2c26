"""Array namespaces, devices and transfers.

Every primitive asks this module which namespace owns its argument and lets that namespace do the work,
so a CuPy array never takes a detour through NumPy and a Python float never pays for a NumPy call.
CuPy is imported lazily and only where it is installed.

NumPy, CuPy and Python numbers map to their own modules (primitives take NumPy's fast paths by
`xp is np`); a Dask array maps to `dask_support.dask_namespace()` (array-api-compat's Dask namespace,
lazy); an object that advertises `__array_namespace__` to that namespace; anything else to what
`array_api_compat.array_namespace` finds for it (PyTorch, JAX, sparse, ...) when array-api-compat is
installed. The answer is cached per type, so the lookup is one dict access after the first call.
"""

from __future__ import annotations

import math
import sys
import types
from typing import Any

import numpy as np

from .dask_support import dask_namespace, is_dask_type

_MODULES = sys.modules
_CUPY: Any = None
_CUPY_TRIED = False


def cupy_module() -> Any:
    """Return the cupy module, or None when CuPy is missing or unusable. Never raises."""
    global _CUPY, _CUPY_TRIED
    if not _CUPY_TRIED:
        _CUPY_TRIED = True
        try:
            import cupy  # noqa: PLC0415

            _CUPY = cupy
        except Exception:  # ImportError, or a CUDA library that fails to load
            _CUPY = None
    return _CUPY


def _scalar_erf(x: float) -> float:
    return math.erf(x)


class _ScalarNamespace(types.SimpleNamespace):
    """A namespace of Python-float functions, so scalar code runs on `math` at full speed."""


scalar_ns = _ScalarNamespace(
    __name__="srcgrad.scalar",
    sin=math.sin, cos=math.cos, tan=math.tan, exp=math.exp, expm1=math.expm1, log=math.log,
    log1p=math.log1p, log2=math.log2, log10=math.log10, sqrt=math.sqrt, asin=math.asin, acos=math.acos,
    atan=math.atan, sinh=math.sinh, cosh=math.cosh, tanh=math.tanh, asinh=math.asinh, acosh=math.acosh,
    atanh=math.atanh, atan2=math.atan2, hypot=math.hypot, erf=math.erf, floor=math.floor, ceil=math.ceil,
    abs=abs, pi=math.pi, inf=math.inf,
)

_SCALAR_TYPES = (float, int, bool)
_NS_BY_TYPE: dict[type, Any] = {float: scalar_ns, int: scalar_ns, bool: scalar_ns, np.ndarray: np}


def namespace(x: Any) -> Any:
    """The array namespace that owns `x`: `scalar_ns` for Python numbers, numpy, cupy, or the
    array-API namespace an object advertises through `__array_namespace__`."""
    ns = _NS_BY_TYPE.get(type(x))
    if ns is not None:
        return ns
    return _lookup_namespace(x)


def _lookup_namespace(x: Any) -> Any:
    t = type(x)
    if isinstance(x, np.generic):
        ns = np
    elif t.__module__.startswith("cupy"):
        ns = cupy_module()
    elif is_dask_type(t):
        ns = dask_namespace()
    elif hasattr(x, "__array_namespace__"):
        ns = x.__array_namespace__()
    elif isinstance(x, (list, tuple)):
        return np
    else:
        ns = _compat_namespace(x)
    _NS_BY_TYPE[t] = ns
    return ns


def _compat_namespace(x: Any) -> Any:
    """array-api-compat's namespace for `x` (its wrappers for libraries that do not advertise one), or a
    TypeError naming the type when there is none."""
    try:
        import array_api_compat  # noqa: PLC0415
    except ImportError:
        array_api_compat = None
    if array_api_compat is not None:
        try:
            return array_api_compat.array_namespace(x)
        except TypeError:
            pass
    raise TypeError(f"srcgrad does not know which array namespace owns a value of type "
                    f"{type(x).__module__}.{type(x).__name__}: it runs on NumPy, CuPy and Dask arrays, "
                    f"Python numbers, and arrays whose library implements the array API")


def common_namespace(*values: Any) -> Any:
    """The namespace of the first array among `values` (Python scalars adapt to any namespace), except
    that NumPy yields to Dask: NumPy would compute a Dask array it is handed (a silent read of all
    the data), Dask takes NumPy arrays into its graph as constants."""
    found = scalar_ns
    for v in values:
        if isinstance(v, _SCALAR_TYPES):
            continue
        ns = namespace(v)
        if ns is np and "dask.array" in _MODULES:  # look on for a Dask array (once Dask is loaded)
            found = np
            continue
        if ns is not scalar_ns:
            return ns
    return found


def array_ns(x: Any) -> Any:
    """Like `namespace`, but Python scalars map to NumPy: for operations `math` cannot do."""
    ns = namespace(x)
    return np if ns is scalar_ns else ns


def is_scalar(x: Any) -> bool:
    return isinstance(x, _SCALAR_TYPES)


def is_cupy(x: Any) -> bool:
    return type(x).__module__.startswith("cupy")


# ----------------------------------------------------------------------------------------------- devices
def parse_device(device: Any) -> tuple[str, int | None]:
    """'cpu' -> ('cpu', None); 'cuda' -> ('cuda', None); 'cuda:1' -> ('cuda', 1)."""
    if hasattr(device, "type") and hasattr(device, "index"):
        return device.type, device.index
    text = str(device)
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"Expected one of cpu, cuda device type at start of device string: {text}")
    if index:
        return kind, int(index)
    return kind, None


def cuda_is_available() -> bool:
    """True when CuPy imports and sees at least one GPU; False otherwise, never an error."""
    cp = cupy_module()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def cuda_device_count() -> int:
    cp = cupy_module()
    if cp is None:
        return 0
    try:
        return int(cp.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


def require_cuda() -> Any:
    """The cupy module, or a clear error saying why CUDA cannot be used here."""
    if cupy_module() is None:
        raise RuntimeError(
            "CUDA was requested but CuPy is not installed; install srcgrad with the 'cuda' extra "
            "(pip install 'srcgrad[cuda]') on a machine with an NVIDIA GPU")
    if not cuda_is_available():
        raise RuntimeError("CUDA was requested but no CUDA GPU is available on this machine "
                           "(srcgrad.cuda.is_available() is False)")
    return cupy_module()


def device_of(x: Any) -> str:
    """'cpu' or 'cuda:n' for an array or scalar."""
    if is_cupy(x):
        return f"cuda:{x.device.id}"
    return "cpu"


def to_device(x: Any, device: Any) -> Any:
    """Move an array to `device`, copying only when it has to."""
    kind, index = parse_device(device)
    if kind == "cpu":
        if is_cupy(x):
            return x.get()
        return x
    cp = require_cuda()
    if index is None:
        index = cp.cuda.runtime.getDevice()
    if is_cupy(x) and x.device.id == index:
        return x
    with cp.cuda.Device(index):
        return cp.asarray(x)
