"""The eager runtime's public names under PyTorch's spelling, so `import srcgrad as torch` works.

Everything here is re-exported from `runtime`: Tensor and its factories, dtypes, devices, grad modes,
and one function per entry of `runtime.mapping.TORCH_FUNCTIONS` (torch.sin, torch.mm, torch.cat, ...).
"""
# ruff: noqa: F401 -- every import below is re-exported through __all__ (built, so ruff cannot see it)

from __future__ import annotations

import types
from typing import Any

from srcgrad.runtime import mapping as _mapping
from srcgrad.runtime.autograd import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from srcgrad.runtime.tensor import (
    Size,
    Tensor,
    arange,
    as_tensor,
    asarray,
    bool_,
    cdouble,
    cfloat,
    complex64,
    complex128,
    cuda,
    device,
    double,
    dtype,
    empty,
    empty_like,
    eye,
    float16,
    float32,
    float64,
    from_numpy,
    full,
    full_like,
    get_default_dtype,
    half,
    int8,
    int16,
    int32,
    int64,
    linspace,
    logspace,
    long,
    manual_seed,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    seed,
    set_default_dtype,
    short,
    tensor,
    uint8,
    zeros,
    zeros_like,
)

float = float32  # noqa: A001 -- torch.float is float32
int = int32  # noqa: A001 -- torch.int is int32
bool = bool_  # noqa: A001

_OWN = {"zeros_like", "ones_like", "tensor", "numel"}
_torch_functions: dict[str, Any] = {}
_submodules: dict[str, dict[str, Any]] = {}
for _name, _adapter in _mapping.TORCH_FUNCTIONS.items():
    if "." in _name:
        _mod, _, _fn = _name.rpartition(".")
        _submodules.setdefault(_mod, {})[_fn] = _adapter
    elif _name not in _OWN:
        _torch_functions[_name] = _adapter
globals().update(_torch_functions)


def numel(input: Tensor) -> int:  # noqa: A002
    return input.numel()


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> bool:  # noqa: A002
    return input.is_floating_point()


def clone(input: Tensor) -> Tensor:  # noqa: A002
    return input.clone()


def detach(input: Tensor) -> Tensor:  # noqa: A002
    return input.detach()


def _inplace_fn(name: str) -> Any:
    def fn(input: Tensor, *args: Any, **kwargs: Any) -> Tensor:  # noqa: A002
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = name
    return fn


_INPLACE_FUNCS = {n: _inplace_fn(n) for n in dir(Tensor) if n.endswith("_") and not n.startswith("_")
                  and n[:-1] in _torch_functions}
globals().update(_INPLACE_FUNCS)

from srcgrad import autograd, nn, optim  # noqa: E402 -- torch.autograd, torch.nn, torch.optim

linalg = types.ModuleType("srcgrad.linalg", "torch.linalg spellings (from runtime.mapping)")
linalg.__dict__.update(_submodules.get("linalg", {}))

__all__ = sorted(
    ["Tensor", "Size", "tensor", "as_tensor", "asarray", "from_numpy", "zeros", "ones", "full", "empty",
     "arange", "linspace", "logspace", "eye", "rand", "randn", "randint", "randperm", "normal",
     "zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like", "randint_like",
     "manual_seed", "seed", "dtype", "float16", "half", "float32", "float", "float64", "double", "int8",
     "int16", "short", "int32", "int", "int64", "long", "uint8", "bool", "complex64", "cfloat",
     "complex128", "cdouble", "set_default_dtype", "get_default_dtype", "device", "cuda", "no_grad",
     "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
     "is_inference_mode_enabled", "numel", "is_tensor", "is_floating_point", "clone", "detach",
     "linalg", "autograd", "nn", "optim"] + list(_torch_functions) + list(_INPLACE_FUNCS))
