"""Reusing a build for another function made from the same code object.

JAX users write a closure per training step:

    for step in range(n):
        def loss(w):
            return np.sum((w * X_batch) ** 2)        # X_batch: this step's batch
        g = sg.grad(loss)(w)

Each `loss` is a new function with the same code; only its closure cells (and what they hold) differ.
Generated code never bakes a closure's data in: it reads each cell through a getter before every call
(`refresh`), and a build is valid while every binding it read holds the same function, module or class
and a value of the same type (`parse.Dependencies`). So a build of one such function is a template for
the next: `keep` stores it with the function's cells replaced by their positions and its data dropped,
`instance` rebinds it to another function's cells, checks the dependencies against them, and clones
the generated function into a namespace of its own (two closures never share one: no data crosses
between them, even across threads). That costs a dictionary copy, not a transform.

The same holds for forward mode (jvp, and hvp/hessian, the forward transform of the generated gradient
code): a template keeps any generated record (`pipeline.Generated`, `forward.GeneratedJvp`). Generated
code transformed again (hvp reads back the gradient code of each closure: a clone of one code object)
has a namespace of its own instead of cells: its reads of that namespace are kept as positions too
(`("globals",)`) and rebound to the clone's.

The templates are kept for the last `MAX_CODES` code objects (and `MAX_VARIANTS` argument signatures of
each), so they bound what is held: a template holds no closure data, and its generated source leaves
linecache when the template and every transform cloned from it are gone (`codegen._keep_source`).
"""

from __future__ import annotations

import copy
import dataclasses
import types
import weakref
from collections import OrderedDict
from typing import Any

from srcgrad.parse import Dependencies
from srcgrad.pipeline import debug_enabled

MAX_CODES = 64
MAX_VARIANTS = 16

_LITERALS = (bool, int, float, complex, str, bytes, type(None))


class _Build:
    """One `Generated`, with the closure cells of the function it was built from replaced by their
    positions (`("cell", i)`) and every other object kept (`("obj", x)`)."""

    __slots__ = ("code", "name", "qualname", "fdict", "defaults", "kwdefaults", "ns", "refresh", "same",
                 "typed", "function_defaults", "info", "source", "cls", "extra")


class _Template:
    __slots__ = ("globals", "defaults", "kwdefaults", "builds")

    def __init__(self, f: types.FunctionType):
        self.globals = None if _own_globals(f) else f.__globals__
        self.defaults = f.__defaults__
        self.kwdefaults = f.__kwdefaults__
        self.builds: OrderedDict[Any, _Build] = OrderedDict()

    def fits(self, f: types.FunctionType) -> bool:
        own = self.globals is None and _own_globals(f)
        return ((f.__globals__ is self.globals or own) and _same_defaults(f.__defaults__, self.defaults)
                and _same_defaults(f.__kwdefaults__, self.kwdefaults))


_TEMPLATES: "OrderedDict[tuple, _Template]" = OrderedDict()


def clear() -> None:
    """Forget every template (their generated sources leave linecache once no transform uses them)."""
    _TEMPLATES.clear()


def _eligible(f: Any, verbose: Any) -> bool:
    return (type(f) is types.FunctionType and not debug_enabled(verbose)
            and "__wrapped__" not in f.__dict__ and "__srcgrad_target__" not in f.__dict__
            and not f.__dict__.get("__srcgrad_by_forward__"))


def _own_globals(f: Any) -> bool:
    """Generated code (a transform read back by forward mode) runs in a namespace of its own, which the
    build reads as it reads a closure's cells."""
    return f.__code__.co_filename.startswith("<srcgrad ")


def _rebound(spec: tuple) -> bool:
    return spec[0] in ("cell", "globals")


def _same_defaults(a: Any, b: Any) -> bool:
    """Defaults the generated code may share: the same objects, or equal literals."""
    if a is None or b is None:
        return a is b
    if isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            return False
        a, b = tuple(a.values()), tuple(b[k] for k in a)
    return len(a) == len(b) and all(
        x is y or (type(x) is type(y) and type(x) in _LITERALS and x == y) for x, y in zip(a, b, strict=True))


def known(f: Any, key: tuple, verbose: Any = False) -> bool:
    """Whether a build of f's code under `key` was kept (so f's source passed the checks made before
    building)."""
    if not _eligible(f, verbose):
        return False
    t = _TEMPLATES.get((f.__code__, *key))
    return t is not None and t.fits(f)


def instance(f: Any, key: tuple, mask: Any, verbose: Any = False) -> Any:
    """The build kept for f's code under (`key`, `mask`), rebound to f's closure; None when there is
    none, or what it was built from no longer holds for f."""
    if not _eligible(f, verbose):
        return None
    tkey = (f.__code__, *key)
    t = _TEMPLATES.get(tkey)
    if t is None or not t.fits(f):
        return None
    b = t.builds.get(mask)
    if b is None:
        return None
    cells = f.__closure__ or ()

    def obj(spec: tuple) -> Any:
        if spec[0] == "globals":
            return f.__globals__
        return cells[spec[1]] if spec[0] == "cell" else spec[1]

    deps = Dependencies()
    for cspec, k, value in b.same:
        container = obj(cspec)
        deps.same[(id(container), k)] = (container, k, value)
    for cspec, k, kind in b.typed:
        container = obj(cspec)
        deps.typed[(id(container), k)] = (container, k, kind)
    for ref, defaults, kwdefaults in b.function_defaults:  # f's own (`fits` compared them): f's
        other = f if ref is None else ref()
        if other is not None:
            deps.defaults[id(other)] = (weakref.ref(other), other.__defaults__ if ref is None else defaults,
                                        other.__kwdefaults__ if ref is None else kwdefaults)
    if not deps.valid():
        return None
    ns = dict(b.ns)
    refresh = []
    for own, item in b.refresh:
        if not own:
            refresh.append(item)
            continue
        nm, gspec = item
        if gspec[0] == "keep":
            get = gspec[1]
        else:
            _, code, glb, gname, gdefaults, parts = gspec
            get = types.FunctionType(code, glb, gname, gdefaults,
                                     tuple(types.CellType(obj(p)) for p in parts))
        ns[nm] = get()
        refresh.append((ns, nm, get))
    fn = types.FunctionType(b.code, ns, b.name, b.defaults, None)
    fn.__kwdefaults__ = b.kwdefaults
    fn.__qualname__ = b.qualname
    fn.__dict__.update(b.fdict)
    ns[b.name] = fn
    info = copy.copy(b.info)
    if info is not None:
        info.fn = f
        info.closure = dict(zip(f.__code__.co_freevars, cells, strict=True))
    _TEMPLATES.move_to_end(tkey)
    t.builds.move_to_end(mask)
    return b.cls(fn=fn, source=b.source, refresh=refresh, info=info, deps=deps, **b.extra)


def keep(f: Any, key: tuple, mask: Any, gen: Any, verbose: Any = False) -> None:
    """Keep `gen` (a `Generated` or `GeneratedJvp` built from f under `key`, `mask`) as a template for f's
    code. Nothing is kept when
    the build refers to f itself, or to its cells where they cannot be told apart (a getter that is no
    plain function)."""
    if not _eligible(f, verbose) or gen.deps is None or not isinstance(gen.fn, types.FunctionType):
        return
    cells = f.__closure__ or ()
    index = {id(c): i for i, c in enumerate(cells)}
    own = f.__globals__ if _own_globals(f) else None

    def spec(x: Any) -> tuple:
        if own is not None and x is own:
            return ("globals",)
        i = index.get(id(x))
        return ("cell", i) if i is not None and cells[i] is x else ("obj", x)

    b = _Build()
    fn = gen.fn
    ns = fn.__globals__
    b.refresh = []
    own_names = []
    for entry in gen.refresh:
        ens, nm, get = entry
        parts = _getter_parts(get, f, spec)
        if parts is None:
            return
        if ens is not ns:
            if any(_rebound(p) for p in parts):
                return                       # another namespace reading f's cells: not ours to rebind
            b.refresh.append((False, entry))
            continue
        gspec = (("keep", get) if not any(_rebound(p) for p in parts) else
                 ("make", get.__code__, get.__globals__, get.__name__, get.__defaults__, parts))
        b.refresh.append((True, (nm, gspec)))
        own_names.append(nm)
    b.same = [(spec(c), k, v) for c, k, v in gen.deps.same.values()]
    b.typed = [(spec(c), k, t) for c, k, t in gen.deps.typed.values()]
    b.function_defaults = [(None if ref() is f else ref, d, k) for ref, d, k in gen.deps.defaults.values()]
    if any(v is f for _, _, v in b.same):
        return                               # a function calling itself: its build names it
    b.ns = {k: v for k, v in ns.items() if k not in own_names}
    b.ns.update(dict.fromkeys(own_names))    # data are read again per instance: none held here
    if any(v is f or id(v) in index or (own is not None and v is own) for v in b.ns.values()):
        return
    b.code, b.name, b.qualname = fn.__code__, fn.__name__, fn.__qualname__
    b.fdict = dict(fn.__dict__)
    b.defaults, b.kwdefaults = fn.__defaults__, fn.__kwdefaults__
    info = gen.info
    if info is not None:
        info = copy.copy(info)
        info.fn = None
        info.closure = {}
    b.info = info
    b.source = gen.source
    b.cls = type(gen)
    b.extra = {fd.name: getattr(gen, fd.name) for fd in dataclasses.fields(gen)
               if fd.name not in ("fn", "source", "refresh", "info", "deps")}
    tkey = (f.__code__, *key)
    t = _TEMPLATES.get(tkey)
    if t is None or not t.fits(f):
        t = _TEMPLATES[tkey] = _Template(f)
    t.builds[mask] = b
    t.builds.move_to_end(mask)
    while len(t.builds) > MAX_VARIANTS:
        t.builds.popitem(last=False)
    _TEMPLATES.move_to_end(tkey)
    while len(_TEMPLATES) > MAX_CODES:
        _TEMPLATES.popitem(last=False)


def _getter_parts(get: Any, f: Any, spec: Any) -> tuple | None:
    """The objects a refresh getter closes over, each as `spec` gives it; None when it is no plain
    function (what it holds cannot be read) or holds f itself."""
    if not isinstance(get, types.FunctionType):
        return None
    parts = []
    for c in get.__closure__ or ():
        try:
            x = c.cell_contents
        except ValueError:
            return None
        if x is f:
            return None
        parts.append(spec(x))
    return tuple(parts)
