"""The adapter interface: how one differentiation engine plugs into the harness.

An adapter is a small object with three members:

    name: str                        the column name in the tables ("torch", "compiled", ...)
    available() -> bool              False when the engine cannot be imported or is not built yet; the
                                     adapter then sets `reason` ("srcgrad.grad does not exist yet")
    prepare(workload) -> callable    everything that should not be timed (imports, converting inputs,
                     | None          building leaves, compiling, jit); returns a no-argument callable that
                                     runs ONE timed evaluation and returns its result, or None when the
                                     engine cannot run this workload. `raise Unsupported("why")` does the
                                     same with a reason that the table prints.

The callable's result is what the workload's kind asks for (see Workload): the gradients wrt
`workload.wrt` (a tuple, or one value when there is a single one), vᵀJ for "vjp", H·v for "hvp", the
Hessian for "hessian". It may be any array type (NumPy, Tensor, JAX array, Python float), in float64: the
harness converts it to NumPy outside the timed region and compares it with the workload's reference
before any timing counts. The callable must give the same answer on every call (reset accumulated
`.grad`s) and must have finished its work when it returns (block on asynchronous dispatch).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Callable

from benchmarks.workloads import Workload

Prepared = Callable[[], Any]


class Unsupported(Exception):
    """Raised by `prepare` when the engine cannot run a workload; the message is shown in the table."""


class Adapter:
    """Base class with the defaults: always available, supports nothing."""

    name: str = "?"
    reason: str = ""
    # True only for the unit (NumPy forward): its result is the forward value, not a derivative.
    forward_only: bool = False

    def available(self) -> bool:
        return True

    def prepare(self, workload: Workload) -> Prepared | None:
        return None


def submodule(name: str) -> ModuleType | None:
    """Import `name` if it exists yet (srcgrad's packages are being built), else None."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
