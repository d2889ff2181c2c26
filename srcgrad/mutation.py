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
from typing import Any, Callable

import gast

from srcgrad.parse import parse_function
from srcgrad.runtime.backend import namespace
from srcgrad.runtime.mapping import INPLACE_METHODS
from srcgrad.runtime.primitives import lineage

# functions whose first argument they write into, by the attribute name users call them with
_WRITES_FIRST_ARGUMENT = ("copyto", "put", "at")


@dataclass(frozen=True)
class ArgumentWrite:
    """A helper's in-place write into one of its parameters. `arrays_only`: an augmented assignment of
    the whole parameter (`z *= 2.0`), in place for an array, a new binding for a Python number."""

    param: str
    lineno: int  # in the user's file
    source_line: str
    arrays_only: bool = False
    appends: bool = False  # `p.append(v)` / extend / insert: items added to the caller's list


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
        if isinstance(f, gast.Attribute) and f.attr in INPLACE_METHODS:
            names.append(_base_name(f.value))
        if isinstance(f, gast.Attribute) and f.attr in _WRITES_FIRST_ARGUMENT and n.args:
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
    function's own from then on. `a += v` on a whole parameter is recorded as `arrays_only`: in place
    for an array, a new binding for a Python float (which helpers do all the time)."""
    info = parse_function(fn)
    params = {a.id for a in info.node.args.args + info.node.args.kwonlyargs}
    own: set[str] = set()
    found: dict[str, ArgumentWrite] = {}
    for s in _statements_in_order(info.node.body):
        where = (info.user_lineno(s.lineno), info.source_line(s.lineno).strip())
        for p in _writes_of(s):
            if p in params and p not in own and (p not in found or found[p].arrays_only):
                found[p] = ArgumentWrite(p, *where)
        if isinstance(s, gast.AugAssign) and isinstance(s.target, gast.Name):
            p = s.target.id
            if p in params and p not in own and p not in found:
                found[p] = ArgumentWrite(p, *where, arrays_only=True)
        for n in gast.walk(s):
            f = n.func if isinstance(n, gast.Call) else None
            if isinstance(f, gast.Attribute) and f.attr in ("append", "extend", "insert") and \
                    isinstance(f.value, gast.Name) and f.value.id in params and f.value.id not in own \
                    and f.value.id not in found:
                found[f.value.id] = ArgumentWrite(f.value.id, *where, appends=True)
        own |= _rebinds(s)
    return found


def refuse_array_argument(value: Any, message: str, hint: str) -> None:
    """Run-time half of a helper's `z *= 2.0` on an argument the caller does not assign back: NumPy
    changes the caller's array (not a Python number) in place, generated code would not."""
    kind = type(value)
    if kind.__name__ == "ndarray" and kind.__module__.startswith(("numpy", "cupy")):
        from srcgrad.errors import TransformError  # noqa: PLC0415

        raise TransformError(message, hint=hint)


# ------------------------------------------------------------------------------------ second names
# Which names may share an array is not read from the source (no list of view-returning spellings):
# `alias_guards` checks every other live name at run time, by object and memory, so a view made by any
# spelling, helper or branch is seen, provided the runtime's view-returning operations return views
# where NumPy does (tests/runtime/test_records.py checks every mapped NumPy spelling).


def _mutated(s: Any) -> str | None:
    """The variable whose array `s` changes in place by assignment: `m[...] = v`, `m[...] += v`,
    `m += v`."""
    if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Subscript):
        return _base_name(s.targets[0])
    if isinstance(s, gast.AugAssign):
        return _base_name(s.target)
    return None


def _loads(s: Any) -> set[str]:
    """Names `s` reads (an augmented assignment's target too: `y += v` reads y)."""
    out = {n.id for n in gast.walk(s) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}
    out |= {n.target.id for n in gast.walk(s)
            if isinstance(n, gast.AugAssign) and isinstance(n.target, gast.Name)}
    return out


def _stores(s: Any) -> set[str]:
    return {n.id for n in gast.walk(s) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}


@dataclass
class Guard:
    """A run-time check before an in-place write into `changed`: no name in `partners` (read later, so
    it would see the change in NumPy) may share its memory. `before` is the statement the check goes in
    front of: the write itself, or the outermost loop around it that rebinds none of these names."""

    changed: str
    partners: list[str]
    before: Any
    write: Any
    read_before: bool = False  # a differentiated statement read the array earlier (it may be saved)


def written_in_place(s: Any, call_writes: Callable[[Any], list[str]]) -> list[str]:
    """Variables whose arrays the simple statement `s` changes in place: subscript stores and augmented
    assignments, and calls that write into an argument (`call_writes` knows which)."""
    names: list[str] = []
    m = _mutated(s)
    if m is not None:
        names.append(m)
    for n in gast.walk(s):
        if isinstance(n, gast.Call):
            names += call_writes(n)
    return list(dict.fromkeys(names))


def alias_guards(body: list, params: set[str], call_writes: Callable[[Any], list[str]],
                 differentiated: Callable[[Any], bool] = lambda s: False) -> list[Guard]:
    """The run-time checks that make in-place writes safe, one per write.

    Generated code writes into an array only where NumPy would (a statement kept as written), or
    rebinds the variable to a new array (a statement it differentiates). Either is the user's program
    only if no other name sees the array: for each write into `m`, every other local that may hold a
    value when the write runs (a parameter, or bound earlier) and is read afterwards (anywhere in an
    enclosing loop) is checked at run time to share no memory with `m`. Names are not matched by how
    they were made (`z = y`, a tuple, a helper returning a view): the objects are compared, so a branch,
    a loop or a callee cannot hide a second name. A check inside loops moves in front of the outermost
    loop that rebinds none of its names (the sharing cannot change while it runs)."""
    order: list[tuple[Any, tuple]] = []  # (statement, enclosing compound statements, outermost first)

    def flatten(stmts: list, path: tuple) -> None:
        for s in stmts:
            order.append((s, path))
            for field in ("body", "orelse"):
                inner = getattr(s, field, None)
                if isinstance(inner, list):
                    flatten(inner, path + (s,))

    flatten(body, ())
    compound = (gast.If, gast.For, gast.While)
    reads = [_loads(getattr(s, "test", None) or getattr(s, "iter", None))
             if isinstance(s, compound) else _loads(s) for s, _ in order]
    binds = [(_stores(s.target) if isinstance(s, gast.For) else set()) if isinstance(s, compound)
             else _stores(s) for s, _ in order]
    loop_extent: dict[int, tuple[int, int]] = {}
    for i, (s, _) in enumerate(order):
        if isinstance(s, (gast.For, gast.While)):
            end = i + 1
            while end < len(order) and any(p is s for p in order[end][1]):
                end += 1
            loop_extent[id(s)] = (i, end)
    guards: list[Guard] = []
    for i, (s, path) in enumerate(order):
        if isinstance(s, compound):
            continue
        for m in written_in_place(s, call_writes):
            loops = [p for p in path if isinstance(p, (gast.For, gast.While))]
            start, stop = (loop_extent[id(loops[0])] if loops else (i, i + 1))
            read_later = set().union(*reads[i + 1:], *reads[start:i]) if loops else set().union(
                *reads[i + 1:])
            bound_before = set(params).union(*binds[:stop if loops else i])
            partners = sorted((read_later & bound_before) - {m})
            before = s
            for loop in loops:  # outermost first
                a, b = loop_extent[id(loop)]
                if not ({m, *partners} & set().union(*binds[a:b])):
                    before = loop
                    break
            earlier = range(stop) if loops else range(i)  # in a loop, every earlier iteration's too
            read_before = any(m in reads[j] and differentiated(order[j][0]) for j in earlier
                              if j != i and not isinstance(order[j][0], compound))
            guards.append(Guard(m, partners, before, s, read_before))
    return guards


def definitely_bound(body: list, params: set[str]) -> dict[int, set[str]]:
    """For each statement (by id), the names bound on every path that reaches it."""
    at: dict[int, set[str]] = {}

    def walk(block: list, bound: set[str]) -> set[str]:
        for s in block:
            at[id(s)] = set(bound)
            if isinstance(s, gast.If):
                bound = walk(s.body, set(bound)) & walk(s.orelse, set(bound))
            elif isinstance(s, (gast.For, gast.While)):
                inner = bound | (_stores(s.target) if isinstance(s, gast.For) else set())
                walk(s.body, inner)
                walk(s.orelse, set(bound))
            else:
                bound = bound | _stores(s)
        return bound

    walk(body, set(params))
    return at


def refuse_shared(changed: Any, others: tuple, names: tuple, where: str, inputs: tuple = (),
                  input_names: tuple = (), regions: tuple | None = None) -> None:
    """Run-time half of `alias_guards`: raise if `changed` (about to be written in place, or rebound to
    a changed copy) shares memory with one of `others` (names read later, which NumPy would change
    too), or, for a write kept in place, with one of the arrays the caller passed (`inputs`), which
    generated code never changes. Numbers are immutable, so never shared; lists and tuples are looked
    into (a list built with append may hold the array). srcgrad Tensors in compiled code follow the
    compiled (functional) meaning.

    `regions`, where given, are the indices the write changes (`state[2 * i] = h`): a name that views
    other elements of the same array (`x = state[2 * i - 2]`) is not changed by it, in NumPy either."""
    kind = type(changed)
    if isinstance(changed, (dict, list, tuple)) and inputs:
        # a write into a container (`batch["x"][:, 0] = 0.0` kept as written): it changes the caller's
        # container, or an array of the caller's it holds, if either is one the caller passed
        for other, nm in zip(inputs, input_names, strict=True):
            if other is changed:
                _refuse_input(where, nm)
        for arr in _arrays_in(changed):
            refuse_shared(arr, (), (), where, inputs, input_names)
        return
    if kind.__name__ != "ndarray" or not kind.__module__.startswith(("numpy", "cupy")):
        return
    for version in lineage(changed):  # the array NumPy writes, as generated code's updates made it
        _refuse_shared_version(version, others, names, where, regions)
    root = _root(changed)
    for other, nm in zip(inputs, input_names, strict=True):
        if _shares(other, root):
            _refuse_input(where, nm)


def _refuse_input(where: str, nm: str) -> None:
    from srcgrad.errors import TransformError  # noqa: PLC0415

    raise TransformError(
        f"an array is changed in place ({where}) that the caller passed as {nm}: srcgrad's "
        "generated code never writes into its inputs",
        hint=f"copy it first ({nm} = {nm}.copy(), or np.array({nm})), then change the copy.")


def _arrays_in(x: Any, depth: int = 0) -> list:
    """The arrays a nest of dicts, lists and tuples holds."""
    if depth > 32:
        return []
    if isinstance(x, dict):
        x = list(x.values())
    if isinstance(x, (list, tuple)):
        return [a for v in x for a in _arrays_in(v, depth + 1)]
    return [x] if type(x).__name__ == "ndarray" else []


def _refuse_shared_version(changed: Any, others: tuple, names: tuple, where: str,
                           regions: tuple | None) -> None:
    root = _root(changed)
    written = None
    for other, nm in zip(others, names, strict=True):
        if regions is not None and written is None and _shares(other, root):
            written = _written_views(changed, root, regions)  # only where some name shares the array
        if _shares(other, root, written):
            from srcgrad.errors import TransformError  # noqa: PLC0415

            raise TransformError(
                f"an array is changed in place ({where}) while {nm} names the same array: NumPy changes "
                f"{nm} too, srcgrad's generated code (which computes a new array) would not",
                hint=f"if {nm} should change too, write through {nm} itself ({nm}[1:] *= 3.0, {nm}[i] = v, "
                f"not through another name or a view of it); if {nm} should keep its values, copy the array "
                "before changing it in place (b = b.copy()), or write b = b + v instead of b += v.")


def passed_arrays(*values: Any) -> tuple:
    """The values the caller passed, kept at entry (a parameter may be rebound later) for the checks of
    writes kept in place. Carries no derivative."""
    return values


def _shares(other: Any, root: Any, written: list | None = None) -> bool:
    """Whether `other` (or an array a list or tuple of it holds) shares memory with `root`'s array, and,
    where the views about to be written are known, with one of them."""
    if isinstance(other, dict):
        other = list(other.values())
    if isinstance(other, (list, tuple)):
        return any(_shares(o, root, written) for o in other)
    if type(other) is not type(root) or _root(other) is not root:
        return False
    if written is None:
        return True
    xp = namespace(root)
    for view in written:
        try:
            if xp.shares_memory(view, other, max_work=1000):
                return True
        except Exception:  # TooHardError, or a namespace without the test: take it as shared
            return True
    return False


def _written_views(changed: Any, root: Any, regions: tuple | None) -> list | None:
    """Views of the elements `changed[r]` for each index r in `regions` (None: not known, or an index
    that copies, as a mask or a list of positions does, so the whole array counts as written)."""
    if regions is None:
        return None
    views = []
    for r in regions:
        try:
            view = changed[(*r, ...)] if isinstance(r, tuple) else changed[r, ...]
        except Exception:
            return None
        if _root(view) is not root:
            return None
        views.append(view)
    return views


def _root(a: Any) -> Any:
    """The array that owns a view's memory."""
    while getattr(a, "base", None) is not None:
        a = a.base
    return a
