"""Where user code changes an array in place, which generated code does not do.

srcgrad's generated code is functional: `a[i] = v` becomes `a = index_update(a, v, index=i)`, a new
array, so no user array is ever modified. That is the same program as long as nothing else sees the old
array object. Two things would: a helper that writes into the array its caller passed (the caller's
array changes in NumPy, not in the generated code), and a second name for the same array. This module
finds the first kind in a helper's source, so the compiler can refuse it with a clear message instead of
differentiating a different program.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gast

from srcgrad.parse import parse_function

# ndarray methods that change the array they are called on
MUTATING_METHODS = frozenset({"fill", "sort", "resize", "put", "itemset", "partition", "setflags"})


@dataclass(frozen=True)
class ArgumentWrite:
    """A helper's in-place write into one of its parameters."""

    param: str
    lineno: int  # in the user's file
    source_line: str


def _base_name(e: Any) -> str | None:
    """`a` for `a`, `a[i]`, `a[i][j]`, `a.T[i]`: the variable whose array an indexed store writes into."""
    while isinstance(e, (gast.Subscript, gast.Attribute)):
        e = e.value
    return e.id if isinstance(e, gast.Name) else None


def _statements_in_order(body: list) -> list:
    out: list = []
    for s in body:
        out.append(s)
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(s, field, None)
            if isinstance(inner, list):
                out.extend(_statements_in_order(inner))
    return out


def _writes_of(s: Any) -> list[str]:
    """Variables whose arrays statement `s` changes in place."""
    names: list[str] = []
    if isinstance(s, gast.Assign):
        names += [_base_name(t) for t in s.targets if isinstance(t, gast.Subscript)]
    if isinstance(s, gast.AugAssign) and isinstance(s.target, gast.Subscript):
        names.append(_base_name(s.target))
    for n in gast.walk(s):
        if not isinstance(n, gast.Call):
            continue
        f = n.func
        if isinstance(f, gast.Attribute) and f.attr in MUTATING_METHODS:
            names.append(_base_name(f.value))
        if isinstance(f, gast.Attribute) and f.attr == "copyto" and n.args:
            names.append(_base_name(n.args[0]))
        names += [_base_name(k.value) for k in n.keywords if k.arg == "out"]
    return [x for x in names if x is not None]


def _rebinds(s: Any) -> set[str]:
    """Plain names a statement binds to a new object (`a = a.copy()`, `for a in ...`)."""
    targets = s.targets if isinstance(s, gast.Assign) else [s.target] if isinstance(s, gast.For) else []
    return {n.id for t in targets for n in gast.walk(t) if isinstance(n, gast.Name) and isinstance(
        n.ctx, gast.Store)}


def argument_writes(fn: Any) -> dict[str, ArgumentWrite]:
    """The parameters `fn` changes in place (`a[i] = v`, `a[i] += v`, `a.fill(v)`, `out=a`), with the
    first such line, in source order. A parameter first rebound to a new object (`a = a.copy()`) is the
    function's own from then on. (`a += v` on a whole parameter is left out: on a Python float it
    rebinds, and helpers do it with floats all the time.)"""
    info = parse_function(fn)
    params = {a.id for a in info.node.args.args + info.node.args.kwonlyargs}
    own: set[str] = set()
    found: dict[str, ArgumentWrite] = {}
    for s in _statements_in_order(info.node.body):
        for p in _writes_of(s):
            if p in params and p not in own and p not in found:
                found[p] = ArgumentWrite(p, info.user_lineno(s.lineno), info.source_line(s.lineno).strip())
        own |= _rebinds(s)
    return found


# ------------------------------------------------------------------------------------ second names
# methods and functions whose result may be a view of their (first) argument
VIEW_METHODS = frozenset({"reshape", "ravel", "view", "transpose", "swapaxes", "squeeze", "T", "mT",
                          "real", "imag", "diagonal"})
VIEW_FUNCTIONS = frozenset({"reshape", "ravel", "transpose", "swapaxes", "moveaxis", "squeeze",
                            "expand_dims", "asarray", "broadcast_to", "atleast_1d", "atleast_2d",
                            "diagonal", "real", "imag"})


def _viewed(e: Any) -> set[str]:
    """The variables whose memory `e` may share: `a`, `a[...]`, `a.T`, `a.reshape(...)`,
    `np.reshape(a, ...)` (module names come along harmlessly: nothing writes into `np`)."""
    if isinstance(e, gast.Name):
        return {e.id}
    if isinstance(e, gast.Subscript):
        return _viewed(e.value)
    if isinstance(e, gast.Attribute) and e.attr in VIEW_METHODS:
        return _viewed(e.value)
    if isinstance(e, gast.Call) and isinstance(e.func, gast.Attribute):
        out: set[str] = set()
        if e.func.attr in VIEW_METHODS:
            out |= _viewed(e.func.value)
        if e.func.attr in VIEW_FUNCTIONS and e.args:
            out |= _viewed(e.args[0])
        return out
    return set()


def _mutated(s: Any) -> str | None:
    """The variable whose array `s` changes in place: `m[...] = v`, `m[...] += v`, `m += v`."""
    if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Subscript):
        return _base_name(s.targets[0])
    if isinstance(s, gast.AugAssign):
        return _base_name(s.target)
    return None


def _loads(s: Any) -> set[str]:
    return {n.id for n in gast.walk(s) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}


def alias_guards(body: list) -> dict[int, list[tuple[str, str]]]:
    """For each statement that changes an array in place (by id), the other names that may share its
    memory and are read afterwards: `z = y` then `y[0] = v` (or `y += 1.0` on an array) then a read of
    z. NumPy changes z too; generated code would not, so the compiler checks at run time, before the
    write, that the two really are different arrays (a Python float `y += 1.0` rebinds: no check fails).

    May-share is tracked in source order: `b = a`, `b = a[i]`, `b = a.T`, `b = a.reshape(...)` relate
    b and a (and what a relates to). A relation counts for a write only when the statement that made
    it ran for sure before the write (it sits in the write's block or an enclosing one, earlier), so
    both names hold values when the check runs; a plain rebinding at the function's top level ends it."""
    order: list[tuple[Any, tuple]] = []  # (statement, path: the compound statements around it)

    def flatten(stmts: list, path: tuple) -> None:
        for s in stmts:
            order.append((s, path))
            for field in ("body", "orelse"):
                inner = getattr(s, field, None)
                if isinstance(inner, list):
                    flatten(inner, path + ((id(s), field),))

    flatten(body, ())
    loops = {id(s) for s, _ in order if isinstance(s, (gast.For, gast.While))}
    first_in: dict[int, int] = {}
    for i, (_, path) in enumerate(order):
        for node_id, _field in path:
            first_in.setdefault(node_id, i)
    reads = [_loads(getattr(s, "test", None) or getattr(s, "iter", None))
             if isinstance(s, (gast.If, gast.For, gast.While)) else _loads(s) for s, _ in order]

    def read_after(p: str, i: int, path: tuple) -> bool:
        outer_loop = next((first_in[n] for n, _ in path if n in loops), None)
        start = i + 1 if outer_loop is None else outer_loop
        return any(p in r for r in reads[start:])

    shares: dict[str, dict[str, tuple]] = {}  # name -> {partner: path of the statement that related them}
    guards: dict[int, list[tuple[str, str]]] = {}
    for i, (s, path) in enumerate(order):
        m = _mutated(s)
        if m is not None:
            for p, made in sorted(shares.get(m, {}).items()):
                if p != m and path[:len(made)] == made and read_after(p, i, path):
                    guards.setdefault(id(s), []).append((m, p))
        if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name):
            b = s.targets[0].id
            if not path:
                for other in shares.pop(b, {}):
                    shares.get(other, {}).pop(b, None)
            for a in _viewed(s.value) - {b}:
                group = {a: path} | {c: max(path, made, key=len) for c, made in shares.get(a, {}).items()}
                for other, made in group.items():
                    if other != b:
                        shares.setdefault(other, {})[b] = made
                        shares.setdefault(b, {})[other] = made
    return guards


def refuse_shared(changed: Any, other: Any, message: str) -> None:
    """Run-time half of `alias_guards`: raise if `changed` (about to be written in place) and `other`
    are views of one NumPy or CuPy buffer. Numbers and NumPy scalars are immutable, so never shared;
    srcgrad Tensors in compiled code follow the compiled (functional) meaning."""
    kind = type(changed)
    if kind.__name__ != "ndarray" or not kind.__module__.startswith(("numpy", "cupy")):
        return
    if changed is other or _root(changed) is _root(other):
        from srcgrad.errors import TransformError  # noqa: PLC0415

        raise TransformError(message, hint="copy the array before changing it in place (y = y.copy()), "
                             "or write y = y + v instead of y += v.")


def _root(a: Any) -> Any:
    """The array that owns a view's memory."""
    while getattr(a, "base", None) is not None:
        a = a.base
    return a
