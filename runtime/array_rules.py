"""The rule table's functions re-bound to call primitive implementations directly.

A rule body such as `unbroadcast(g * y, x)` calls primitives (`sum_to`, `shape`), and each primitive
call first looks for a Tensor among its arguments (`Primitive.__call__`), so that the same rule records
itself under `create_graph=True`. A plain `backward()` never hands a rule a Tensor: the arguments are the
saved arrays and the cotangent is an array. There that check is pure overhead, paid about 25 times per
step of a recurrent network. `on_arrays(rule)` returns the same rule -- the same code object, so still
one set of derivatives -- whose global names resolve primitives to their implementations and the
helpers of `rules.py` to re-bound copies of themselves.
"""

from __future__ import annotations

import types
from typing import Any, Callable

from . import rules
from .primitives import Primitive

_GLOBALS: dict[str, Any] | None = None


def _array_globals() -> dict[str, Any]:
    """rules.py's namespace with primitives swapped for their implementations (built once; its helper
    functions are re-bound to this same namespace, so helpers calling helpers stay direct)."""
    global _GLOBALS
    if _GLOBALS is None:
        ns: dict[str, Any] = dict(vars(rules))
        for name, value in list(ns.items()):
            if isinstance(value, Primitive):
                ns[name] = value.impl
            elif isinstance(value, types.FunctionType) and value.__module__ == rules.__name__:
                ns[name] = _rebind(value, ns)
        _GLOBALS = ns
    return _GLOBALS


def _rebind(f: types.FunctionType, ns: dict[str, Any]) -> types.FunctionType:
    g = types.FunctionType(f.__code__, ns, f.__name__, f.__defaults__, f.__closure__)
    g.__kwdefaults__ = f.__kwdefaults__
    g.__qualname__ = f.__qualname__
    return g


def on_arrays(rule: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """`rule` for arguments that are never Tensors (None stays None; a rule not from rules.py, such as
    a user's custom rule, is returned as it is)."""
    if not isinstance(rule, types.FunctionType) or rule.__module__ != rules.__name__:
        return rule
    return _rebind(rule, _array_globals())
