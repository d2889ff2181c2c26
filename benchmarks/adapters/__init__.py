"""Engine adapters, one module each (benchmarks/adapters/<name>.py, '-' spelled '_'), each exposing ADAPTER.

Importing an adapter module never imports its engine; `available()` does, so the harness runs with any
subset of the peers installed.
"""

from __future__ import annotations

import importlib

from benchmarks.adapters.base import Adapter, Unsupported

__all__ = ["ENGINES", "Adapter", "Unsupported", "load"]

# Table order. "numpy" is the unit (forward only) and is always measured.
ENGINES = ("numpy", "compiled", "tape", "torch", "autograd", "jax", "jax-jit")


def load(name: str) -> Adapter:
    """The adapter object for engine `name`."""
    if name not in ENGINES:
        raise KeyError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    module = importlib.import_module(f"benchmarks.adapters.{name.replace('-', '_')}")
    return module.ADAPTER
