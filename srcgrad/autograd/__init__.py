"""`srcgrad.autograd`: torch.autograd's names. The engine (`grad`, `backward`, `Function`, the profiler)
is the eager runtime's; `srcgrad.autograd.functional` (jacobian, hessian, vjp, jvp, hvp, vhp) compiles by
source transformation and lives with the compiler."""

import importlib as _importlib

from srcgrad.autograd import profiler
from srcgrad.runtime.autograd import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from srcgrad.runtime.function import Function, FunctionCtx
from srcgrad.runtime.tensor import backward, grad

try:  # the compiler side provides it; the eager runtime works without it
    functional = _importlib.import_module("srcgrad.autograd.functional")
except ModuleNotFoundError as _e:  # pragma: no cover -- only while the functional API is not there yet
    if _e.name != "srcgrad.autograd.functional":
        raise

__all__ = ["grad", "backward", "Function", "FunctionCtx", "profiler", "no_grad", "enable_grad",
           "set_grad_enabled", "inference_mode", "is_grad_enabled"]
