"""Write a derivative as a standalone Python module that runs with NumPy alone.

    python -m srcgrad export mymodule:f --signature "float64[3]" -o grad_f.py

The module holds the generated code specialized to one signature (shapes folded in, NumPy calls written
directly), the runtime helpers and primitives that code calls, copied from srcgrad's own source, and the
user's function as comments. It imports NumPy and the standard library only, so a derivative can ship to
a machine (or a code review) without srcgrad's compiler.

How the helpers are found: the generated function's globals name everything it calls. Each name is
resolved to the object the generated code would call and written out as

- an import, for NumPy, `math` and other standard-library modules;
- a copy of its source, for srcgrad's runtime helpers and the primitives' implementations, with their
  own globals resolved the same way (recursively, renamed where two objects want one name);
- a NumPy function, for elementwise primitives whose implementation is a dispatching closure
  (`sin` -> `np.sin`);
- a NumPy-only replacement (`_OVERRIDES`), for the few helpers whose job is dispatch between NumPy,
  CuPy and Python floats, which an export to NumPy does not need;
- a literal, for data the user's function reads from its module or closure (copied at export time).

Anything else (a C extension's function, a closure over live state) raises `ExportError` naming it:
an export never silently calls something it could not copy. The exported entry point checks that its
arguments have the types, shapes and dtypes it was specialized to, and raises otherwise.
"""

from __future__ import annotations

import ast
import builtins
import dis
import inspect
import io
import math
import re
import symtable
import sys
import textwrap
import tokenize
import types
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["ArgSpec", "ExportError", "parse_signature", "example_args", "specialized", "export_source",
           "MODES"]

# modes the reverse compiler generates as one fused function (the ones an export can hold)
MODES = ("grad", "value_and_grad", "vjp")


class ExportError(Exception):
    """The derivative cannot be written as a NumPy-only module (names what could not be copied)."""


# ------------------------------------------------------------------------------------------- signatures
@dataclass(frozen=True)
class ArgSpec:
    """One argument of a signature: a Python `float` / `int`, or a NumPy array of `dtype` and `shape`."""

    kind: str                    # "float", "int" or "array"
    dtype: str = "float64"
    shape: tuple[int, ...] = ()

    def __str__(self) -> str:
        if self.kind != "array":
            return self.kind
        return f"{self.dtype}[{', '.join(map(str, self.shape))}]"

    def matches(self, value: Any) -> bool:
        """Whether `value` is an argument the code specialized to this spec may run on."""
        if self.kind == "array":
            return type(value) is np.ndarray and value.shape == self.shape and value.dtype == self.dtype
        if self.kind == "int":
            return type(value) in (int, bool)
        return type(value) in (float, int, bool)


_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[([^\]]*)\])?\s*$")


def parse_signature(text: str) -> list[ArgSpec]:
    """`"float64[3], float, int, float32[2, 3], float64[]"` -> one ArgSpec per argument.

    `float` and `int` are Python numbers; `DTYPE[n, m]` is a NumPy array of that shape (`DTYPE[]` is
    0-d). Raises ValueError naming the piece it cannot read."""
    specs: list[ArgSpec] = []
    for piece in _split_top(text):
        m = _SPEC.match(piece)
        if m is None:
            raise ValueError(f"cannot read {piece.strip()!r} in the signature {text!r}: write float, int, "
                             "or a NumPy dtype with a shape, like float64[3] or float32[2, 3]")
        name, dims = m.group(1), m.group(2)
        if dims is None and name in ("float", "int"):
            specs.append(ArgSpec(name))
            continue
        try:
            dtype = np.dtype(name)
        except TypeError:
            raise ValueError(f"{name!r} in the signature {text!r} is not a NumPy dtype") from None
        if dims is None:
            raise ValueError(f"{piece.strip()!r}: an array needs a shape, like {name}[3] ({name}[] for 0-d)")
        try:
            shape = tuple(int(d) for d in dims.split(",") if d.strip())
        except ValueError:
            raise ValueError(f"{piece.strip()!r}: a shape is a list of integers") from None
        specs.append(ArgSpec("array", dtype.name, shape))
    if not specs:
        raise ValueError("the signature names no arguments")
    return specs


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def example_args(specs: Sequence[ArgSpec], seed: int = 0) -> tuple:
    """Random arguments of the signature (standard normal floats; integers 1..3 for ints)."""
    rng = np.random.default_rng(seed)
    out: list[Any] = []
    for s in specs:
        if s.kind == "float":
            out.append(float(rng.standard_normal()))
        elif s.kind == "int":
            out.append(int(rng.integers(1, 4)))
        elif np.dtype(s.dtype).kind == "f":
            out.append(rng.standard_normal(s.shape).astype(s.dtype))
        else:
            out.append(rng.integers(1, 4, size=s.shape).astype(s.dtype))
    return tuple(out)


def specialized(f: Callable, mode: str, wrt: int | tuple[int, ...], args: Sequence[Any]) -> Any:
    """The generated function (a `pipeline.Generated`) that `srcgrad.<mode>(f, wrt)` runs on `args`:
    the variant specialized to their types and shapes, built by the same pipeline entry `api` uses."""
    from srcgrad.pipeline import Builder  # noqa: PLC0415 -- the compiler, only when exporting

    if mode not in MODES:
        raise ExportError(f"export writes {', '.join(MODES)}; {mode!r} is built by the forward transform, "
                          "whose helpers dispatch on array types at run time")
    mask = tuple("s" if type(a) in (float, int, bool) else ("n", a.ndim, a.shape)
                 if type(a) is np.ndarray else None for a in args)
    if any(m is None for m in mask):
        raise ExportError("export takes Python floats and ints and NumPy arrays only "
                          "(the code runs on NumPy)")
    single = isinstance(wrt, int)
    gen = Builder(False).reverse(f, mode, (wrt,) if single else tuple(wrt), mask, single)
    for ns, nm, get in gen.refresh:       # module and closure data as they are now
        ns[nm] = get()
    return gen


# ------------------------------------------------------------------------------------- NumPy-only parts
# Helpers whose job is to pick between NumPy, CuPy, array-API namespaces and Python floats (`math`):
# in a NumPy-only export every value's namespace is NumPy. Keyed by module and qualified name.
_OVERRIDES: dict[tuple[str, str], str] = {
    ("srcgrad.runtime.backend", "namespace"): '''
def namespace(x):
    """The array namespace of x: NumPy, in a NumPy-only export."""
    return np
''',
    ("srcgrad.runtime.backend", "array_ns"): '''
def array_ns(x):
    """The array namespace of x: NumPy, in a NumPy-only export."""
    return np
''',
    ("srcgrad.runtime.backend", "common_namespace"): '''
def common_namespace(*values):
    """The array namespace of values: NumPy, in a NumPy-only export."""
    return np
''',
    ("srcgrad.runtime.primitives", "fn"): '''
def fn(xp, *names):
    """The first of `names` (dotted paths) that namespace `xp` defines."""
    for n in names:
        obj = xp
        for part in n.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return obj
    raise NotImplementedError(f"NumPy has none of {names}")
''',
    ("srcgrad.mutation", "refuse_shared"): '''
def refuse_shared(changed, others, names, where, inputs=(), input_names=(), regions=None):
    """Raise if `changed` (about to be written in place; where known, at the indices `regions`)
    shares memory with a name read later, a module's array, or (for a write kept in place) an array
    the caller passed."""
    if type(changed) is not np.ndarray:
        return
    written = [changed] if regions is None else [
        changed[(*r, ...)] if isinstance(r, tuple) else changed[r, ...] for r in regions]
    if not all(np.shares_memory(w, changed) for w in written):  # an index that copies: all of it
        written = [changed]
    for group, labels, what in ((others, names, "while {} names the same array"),
                                (inputs, input_names, "that the caller passed as {}")):
        for other, label in zip(group, labels):
            for o in (other if isinstance(other, (list, tuple)) else (other,)):
                if type(o) is np.ndarray and any(np.shares_memory(w, o) for w in written):
                    raise ValueError(f"an array is changed in place ({where}) " + what.format(label)
                                     + " (copy the array before changing it in place)")
''',
    ("srcgrad.runtime.primitives", "_record_lineage"): '''
def _record_lineage(out, x):
    """srcgrad keeps which array an update came from, for its run-time alias checks; an export's
    checks compare arrays only."""
    return None
''',
    ("srcgrad.mutation", "passed_arrays"): '''
def passed_arrays(*values):
    """The values the caller passed, kept at entry for the checks of in-place writes."""
    return values
''',
    ("srcgrad.mutation", "refuse_array_argument"): '''
def refuse_array_argument(value, message, hint):
    """A helper's z *= 2.0 on an array its caller keeps: NumPy would change the caller's array."""
    if type(value) is np.ndarray:
        raise ValueError(message + " (" + hint + ")")
''',
}


def _value_overrides() -> dict[int, str]:
    """Objects (not functions) an export replaces: id -> the source of the replacement."""
    from srcgrad.runtime import backend  # noqa: PLC0415

    # primitives compare a namespace with the Python-float one (`xp is scalar_ns`); in an export every
    # namespace is NumPy, so the comparison is always false: any object will do
    return {id(backend.scalar_ns): "object()  # the Python-float namespace: never used in a NumPy export"}


# names an override reads from the module it replaces (resolved like any helper's globals)
_OVERRIDE_GLOBALS = {"np": np}

# stdlib modules an export may import (it imports NumPy and these, nothing else)
_STDLIB = {"math", "cmath", "builtins", "operator", "functools", "itertools", "string", "numbers", "sys"}


def _is_generated(obj: Any) -> bool:
    code = getattr(obj, "__code__", None)
    return code is not None and code.co_filename.startswith("<srcgrad")


def _is_builtin(obj: Any) -> bool:
    name = getattr(obj, "__name__", None)
    return isinstance(name, str) and getattr(builtins, name, None) is obj


def _code_globals(code: types.CodeType) -> set[str]:
    """Names a code object (and the code nested in it) reads as globals."""
    out: set[str] = set()
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            out.add(ins.argval)
        elif ins.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
            raise ExportError(f"{code.co_name} writes the global {ins.argval}: not exportable")
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out |= _code_globals(c)
    return out


def _literal(value: Any, ref: Callable[[Any, str], str], depth: int = 0) -> str | None:
    """Python source that rebuilds `value` (data), or None when it is not data."""
    if depth > 20:
        return None
    t = type(value)
    if value is None or value is Ellipsis or t in (bool, int, str, bytes):
        return repr(value)
    if t is float:
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if t is complex:
        return f"complex({_literal(value.real, ref)}, {_literal(value.imag, ref)})"
    if t in (tuple, list, set, frozenset):
        parts = [_literal(v, ref, depth + 1) for v in value]
        if any(p is None for p in parts):
            return None
        if t is tuple:
            return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        if t is list:
            return "[" + ", ".join(parts) + "]"
        return f"{t.__name__}([{', '.join(parts)}])"
    if t is dict:
        items = [(_literal(k, ref, depth + 1), _literal(v, ref, depth + 1)) for k, v in value.items()]
        if any(k is None or v is None for k, v in items):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if t is slice:
        parts = [_literal(p, ref, depth + 1) for p in (value.start, value.stop, value.step)]
        return None if None in parts else f"slice({', '.join(parts)})"
    if t is range:
        return f"range({value.start}, {value.stop}, {value.step})"
    if t is np.ndarray:
        if value.dtype.kind not in "biufc":
            return None
        npn = ref(np, "np")
        dtype = f"{npn}.{value.dtype.name}"
        if value.ndim == 0:
            return f"{npn}.array({_literal(value.item(), ref)}, dtype={dtype})"
        data = _literal(value.ravel().tolist(), ref)
        return f"{npn}.array({data}, dtype={dtype}).reshape({value.shape!r})"
    if isinstance(value, np.generic) and value.dtype.kind in "biufc":
        return f"{ref(np, 'np')}.{value.dtype.name}({_literal(value.item(), ref)})"
    if isinstance(value, np.dtype):
        return f"{ref(np, 'np')}.dtype({value.name!r})"
    if (isinstance(value, type) and issubclass(value, np.generic)
            and getattr(np, value.__name__, None) is value):
        return f"{ref(np, 'np')}.{value.__name__}"
    if isinstance(value, type) and _is_builtin(value):
        return ref(value, value.__name__)
    return None


def _numpy_path(obj: Any) -> str | None:
    """'linalg.norm' when obj is numpy.linalg.norm (searched in numpy and its linalg namespace)."""
    name = getattr(obj, "__name__", None)
    if not isinstance(name, str):
        return None
    for prefix, space in (("", np), ("linalg.", np.linalg)):
        try:
            if getattr(space, name, None) is obj:
                return prefix + name
        except Exception:  # a lazily loaded attribute that fails to load
            continue
    return None


# ------------------------------------------------------------------------------------------- the writer
class _Module:
    """The exported module being written: module-level names, imports and definitions."""

    def __init__(self) -> None:
        self.claimed: dict[str, Any] = {}      # module-level name -> object
        self.expr: dict[int, str] = {}         # id(object) -> the expression that names it
        self.alive: list[Any] = []             # keeps ids valid while writing
        self.imports: list[str] = []
        self.defs: list[str] = []              # helper definitions, each dependency before its user
        self.generated: list[str] = []         # generated functions, as generated

    # ---------------------------------------------------------------------------------- names
    def free(self, preferred: str, avoid: set[str] | frozenset = frozenset()) -> str:
        """`preferred`, or `preferred_2`, ... : a module-level name nothing has claimed."""
        name, k = preferred, 1
        while name in self.claimed or name in ("np", "builtins", "math") or name in avoid:
            k += 1
            name = f"{preferred}_{k}"
        return name

    def claim(self, name: str, obj: Any) -> bool:
        """Bind `name` to `obj` if it is free (or already obj's); False when another object holds it."""
        held = self.claimed.get(name, _UNSET)
        if held is _UNSET:
            self.claimed[name] = obj
            self.alive.append(obj)
            return True
        return held is obj

    def ref(self, obj: Any, preferred: str) -> str:
        """An expression for `obj` in the exported module, writing its definition on first use."""
        hit = self.expr.get(id(obj))
        if hit is not None:
            return hit
        if isinstance(obj, types.ModuleType):
            return self._module(obj)
        if _is_builtin(obj):
            name = obj.__name__
            if self.claim(name, obj):
                self.expr.setdefault(id(obj), name)
                return name
            self._import("import builtins")
            return f"builtins.{name}"
        if id(obj) in _value_overrides():
            name = self.free(preferred)
            self.bind(name, obj) if self.claim(name, obj) else None
            return name
        path = _numpy_path(obj)
        if path is not None and not _is_generated(obj):
            return f"{self.ref(np, 'np')}.{path}"
        literal = _literal(obj, self.ref)
        if literal is not None and not isinstance(obj, type):
            if len(literal) <= 40 and type(obj) in (int, float, bool, str, type(None)):
                return literal
            name = self.free(preferred if preferred.isidentifier() else "_data")
            self.claim(name, obj)
            self.expr[id(obj)] = name
            self.defs.append(f"{name} = {literal}")
            return name
        name = preferred if self.claim(preferred, obj) else self.free(preferred)
        self.claim(name, obj)
        self.expr[id(obj)] = name
        self.define(obj, name)
        return name

    def _import(self, line: str) -> None:
        if line not in self.imports:
            self.imports.append(line)

    def _module(self, mod: types.ModuleType, name: str | None = None) -> str:
        if not _exportable_module(mod):
            raise ExportError(f"the code reads the module {mod.__name__} itself (not one of its functions); "
                              "an export imports only NumPy and the standard library")
        if name is None:
            name = "np" if mod is np else mod.__name__.rsplit(".", 1)[-1]
            if self.claimed.get(name, mod) is not mod:
                name = self.free(name)
        self.claimed.setdefault(name, mod)
        if mod is np and name == "np":
            self._import("import numpy as np")
        elif "." not in mod.__name__ and name == mod.__name__:
            self._import(f"import {name}")
        else:
            self._import(f"import {mod.__name__} as {name}")
        self.expr.setdefault(id(mod), name)
        self.alive.append(mod)
        return name

    # ---------------------------------------------------------------------------------- definitions
    def bind(self, name: str, obj: Any) -> None:
        """Define `obj` under `name`, which generated code reads and which `obj` has claimed."""
        known = self.expr.get(id(obj))
        if known is not None and known != name:
            self.defs.append(f"{name} = {known}")
            return
        self.expr[id(obj)] = name
        if isinstance(obj, types.ModuleType):
            self._module(obj, name)
        elif _is_builtin(obj):
            if obj.__name__ != name:
                self._import("import builtins")
                self.defs.append(f"{name} = builtins.{obj.__name__}")
        elif id(obj) in _value_overrides():
            self.defs.append(f"{name} = {_value_overrides()[id(obj)]}")
        elif (path := _numpy_path(obj)) is not None:
            self.defs.append(f"{name} = {self.ref(np, 'np')}.{path}")
        elif (literal := _literal(obj, self.ref)) is not None and not isinstance(obj, type):
            self.defs.append(f"{name} = {literal}")
        else:
            self.define(obj, name)

    def define(self, obj: Any, name: str) -> None:
        """Write the definition of `obj` bound to `name` (dependencies first)."""
        from srcgrad.runtime.primitives import Primitive  # noqa: PLC0415

        if isinstance(obj, Primitive):
            impl = obj.impl
            if impl.__closure__:
                np_name = _numpy_path(getattr(np, obj.name, None)) if hasattr(np, obj.name) else None
                if np_name is None:
                    raise ExportError(f"the primitive {obj.name} dispatches through a closure and NumPy has "
                                      f"no function {obj.name}")
                self.defs.append(f"{name} = {self.ref(np, 'np')}.{np_name}")
                return
            self.defs.append(self._helper(impl, name, what=f"the primitive {obj.name}"))
            return
        if isinstance(obj, (types.FunctionType, type)):
            key = (getattr(obj, "__module__", None) or "", getattr(obj, "__qualname__", ""))
            if key in _OVERRIDES:
                self.defs.append(self._helper(obj, name, source=_OVERRIDES[key], scope=_OVERRIDE_GLOBALS))
                return
            if isinstance(obj, types.FunctionType) and obj.__name__ == "<lambda>":
                raise ExportError(f"the code calls a lambda ({obj.__qualname__}); give it a name with def")
            self.defs.append(self._helper(obj, name))
            return
        raise ExportError(f"cannot write {name} = {obj!r} ({type(obj).__name__}) into a NumPy-only module")

    def _helper(self, obj: Any, name: str, source: str | None = None, scope: dict | None = None,
                what: str | None = None) -> str:
        """The source of a Python function or class, decorators and annotations dropped, renamed to
        `name`, its globals resolved (and renamed) to the exported module's names."""
        what = what or f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', obj)}"
        if source is None:
            if getattr(obj, "__closure__", None):
                raise ExportError(f"{what} is a closure (it reads variables of the function that made it); "
                                  "an export cannot copy their live values")
            try:
                source = inspect.getsource(obj)
            except (OSError, TypeError) as exc:
                raise ExportError(f"no source for {what}: {exc}") from None
        tree = ast.parse(textwrap.dedent(source))
        node = tree.body[0]
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            raise ExportError(f"{what}: expected a def or class")
        node.decorator_list = []
        node.name = name
        for n in ast.walk(node):
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or "."]
                if n.__class__ is ast.ImportFrom and n.level or any(m.split(".")[0] not in _STDLIB | {"numpy"}
                                                                    for m in mods):
                    raise ExportError(f"{what} imports {', '.join(mods)} when it runs; not exportable")
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                for a in n.args.posonlyargs + n.args.args + n.args.kwonlyargs + [n.args.vararg, n.args.kwarg]:
                    if a is not None:
                        a.annotation = None
                if not isinstance(n, ast.Lambda):
                    n.returns = None
        text = ast.unparse(tree)
        glob, local = _scope_names(text, name)
        if scope is None:
            scope = getattr(obj, "__globals__", None)
            if scope is None:
                scope = vars(sys.modules[obj.__module__])
        renames: dict[str, Any] = {}
        for g in sorted(glob):
            if g == name:
                continue
            if g in scope:
                renames[g] = scope[g]
            elif hasattr(builtins, g):
                renames[g] = getattr(builtins, g)
            else:
                raise ExportError(f"{what} reads {g}, which is not defined where it was written")
        tree = _Resolve(self, renames, local, what).visit(tree)
        return ast.unparse(ast.fix_missing_locations(tree))

    def add_generated(self, fn: Callable, rename: dict[str, str]) -> None:
        source = textwrap.dedent(inspect.getsource(fn))
        self.generated.append(_retoken(source, rename))


_UNSET = object()


def _scope_names(text: str, name: str) -> tuple[set[str], set[str]]:
    """(names read as globals anywhere in the definition, names bound locally in any of its scopes)."""
    table = symtable.symtable(text, "<export>", "exec")
    glob: set[str] = set()
    local: set[str] = set()
    for sym in table.get_symbols():        # defaults, bases: evaluated at module level
        if sym.is_referenced() and sym.get_name() != name:
            glob.add(sym.get_name())

    def walk(t: symtable.SymbolTable) -> None:
        for sym in t.get_symbols():
            if sym.is_global() and sym.is_referenced():
                glob.add(sym.get_name())
            elif sym.is_local() or sym.is_parameter():
                local.add(sym.get_name())
        for child in t.get_children():
            walk(child)

    for child in table.get_children():
        walk(child)
    return glob, local


class _Resolve(ast.NodeTransformer):
    """Replace a helper's global names with the exported module's expressions for their objects;
    `module.attr` on a srcgrad module becomes the expression for the attribute's object."""

    def __init__(self, out: _Module, values: dict[str, Any], local: set[str], what: str):
        self.out, self.values, self.local, self.what = out, values, local, what

    def _expr(self, obj: Any, preferred: str) -> ast.expr:
        text = self.out.ref(obj, preferred)
        expr = ast.parse(text, mode="eval").body
        root = expr
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and root.id in self.local and not (
                isinstance(expr, ast.Name) and self.values.get(expr.id, _UNSET) is obj):
            # the module-level name is a local of this helper (`shape = P.shape(y)`): use an alias
            alias = self.out.free(f"_{preferred}", avoid=self.local)
            self.out.claim(alias, obj)
            self.out.defs.append(f"{alias} = {text}")
            return ast.Name(id=alias, ctx=ast.Load())
        return expr

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        chain: list[str] = []
        base: ast.AST = node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        if isinstance(base, ast.Name) and base.id in self.values and isinstance(node.ctx, ast.Load):
            obj = self.values[base.id]
            path = list(reversed(chain))
            k = 0
            while k < len(path) and isinstance(obj, types.ModuleType) and not _exportable_module(obj):
                obj = getattr(obj, path[k])
                k += 1
            if k:
                self._check_local(base.id)
                expr: ast.expr = self._expr(obj, path[k - 1])
                for attr in path[k:]:
                    expr = ast.Attribute(value=expr, attr=attr, ctx=ast.Load())
                return expr
        self.generic_visit(node)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.values and isinstance(node.ctx, ast.Load):
            obj = self.values[node.id]
            expr = self._expr(obj, node.id)
            if not (isinstance(expr, ast.Name) and expr.id == node.id):
                self._check_local(node.id)
            return expr
        return node

    def _check_local(self, name: str) -> None:
        if name in self.local:
            raise ExportError(f"{self.what}: {name} is both a global and a local name in different scopes; "
                              "cannot rename it safely")


def _exportable_module(mod: types.ModuleType) -> bool:
    top = mod.__name__.split(".")[0]
    return top == "numpy" or (top in _STDLIB and "." not in mod.__name__)


def _retoken(source: str, rename: dict[str, str]) -> str:
    """`source` with global names replaced by expressions (`rename`: name -> expression), token by token,
    so comments and layout stay as generated. A name after `.` (an attribute) or before `=` inside a call
    (a keyword) is left alone; `a.b` where `a.b` is a key of `rename` is replaced as a whole."""
    if not rename:
        return source
    lines = source.splitlines(keepends=True)
    toks = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.COMMENT)]
    edits: list[tuple[int, int, int, str]] = []   # (row, col, end col, text)
    depth = 0
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.type == tokenize.OP and t.string in "([{":
            depth += 1
        elif t.type == tokenize.OP and t.string in ")]}":
            depth -= 1
        prev = toks[i - 1].string if i else ""
        nxt = toks[i + 1].string if i + 1 < len(toks) else ""
        if t.type == tokenize.NAME and prev != "." and not (nxt == "=" and depth > 0):
            dotted = f"{t.string}.{toks[i + 2].string}" if nxt == "." and i + 2 < len(toks) else None
            if dotted in rename and toks[i + 2].start[0] == t.start[0]:
                edits.append((t.start[0], t.start[1], toks[i + 2].end[1], rename[dotted]))
                i += 3
                continue
            if t.string in rename:
                edits.append((t.start[0], t.start[1], t.end[1], rename[t.string]))
        i += 1
    for row, c0, c1, text in reversed(edits):
        line = lines[row - 1]
        lines[row - 1] = line[:c0] + text + line[c1:]
    return "".join(lines)


# ---------------------------------------------------------------------------------------- the module
def _generated_closure(fn: Callable) -> list[Callable]:
    """The generated function and every generated function it calls (callee pairs), callers first."""
    order: list[Callable] = []
    seen: set[int] = set()

    def walk(f: Callable) -> None:
        if id(f) in seen:
            return
        seen.add(id(f))
        order.append(f)
        g = f.__globals__
        for n in sorted(_code_globals(f.__code__)):
            v = g.get(n)
            if v is not None and _is_generated(v):
                walk(v)

    walk(fn)
    return order


def _user_comment(f: Callable) -> str:
    try:
        src = textwrap.dedent(inspect.getsource(f))
    except (OSError, TypeError):
        return ""
    return "\n".join(("# " + line).rstrip() for line in src.rstrip().splitlines())


def export_source(f: Callable, mode: str = "grad", wrt: int | tuple[int, ...] = 0,
                  specs: Sequence[ArgSpec] | None = None, args: Sequence[Any] | None = None,
                  name: str | None = None) -> str:
    """The text of a NumPy-only module computing `srcgrad.<mode>(f, wrt)` for arguments of `specs`
    (or like `args`). Its entry point is `name` (default: the generated function's name, `grad_f`)."""
    if args is None:
        if specs is None:
            raise ValueError("export needs the argument signature (specs) or example arguments (args)")
        args = example_args(specs)
    if specs is None:
        specs = [_spec_of(a) for a in args]
    if len(specs) != len(args):
        raise ValueError("specs and args differ in length")
    wrt_idx = (wrt,) if isinstance(wrt, int) else tuple(wrt)
    gen = specialized(f, mode, wrt, args)
    top = gen.fn
    funcs = _generated_closure(top)
    out = _Module()
    entry = name or top.__name__
    inner = f"_{top.__name__}"
    for fixed in (entry, "_SIGNATURE", "_check_arguments", "__all__", "annotations"):
        out.claim(fixed, _ENTRY)
    # 1. the generated functions' own names (the top one becomes _grad_f, behind the checked entry point)
    for g in funcs:
        own = inner if g is top else g.__name__
        if not out.claim(own, g):
            own = out.free(own)
            out.claim(own, g)
        out.expr[id(g)] = own
    # 2. the names generated code reads keep their spelling where they can: claim them all first
    renames: dict[int, dict[str, str]] = {}
    bound: list[tuple[str, Any]] = []             # (name, object) to define under that name
    other: list[tuple[int, str, Any]] = []        # (function, name, object) to rename to a ref
    modules: list[tuple[int, str, types.ModuleType]] = []
    for g in funcs:
        ren: dict[str, str] = {}
        if out.expr[id(g)] != g.__name__:
            ren[g.__name__] = out.expr[id(g)]
        for n in sorted(_code_globals(g.__code__)):
            if n in g.__globals__:
                v = g.__globals__[n]
            elif hasattr(builtins, n):
                v = getattr(builtins, n)
            else:
                raise ExportError(f"generated code reads {n}, which its namespace does not define")
            if _is_generated(v):
                if out.expr[id(v)] != n:
                    ren[n] = out.expr[id(v)]
            elif isinstance(v, types.ModuleType) and not _exportable_module(v):
                modules.append((id(g), n, v))     # `P.sum`: resolved attribute by attribute
            elif out.claim(n, v):
                bound.append((n, v))
            else:
                other.append((id(g), n, v))
        renames[id(g)] = ren
    # 3. definitions, dependencies written as they are met
    done: set[str] = set()
    for n, v in bound:
        if n in done:
            continue
        done.add(n)
        out.bind(n, v)
    for gid, n, v in other:
        expr = out.ref(v, n)
        if expr != n:
            renames[gid][n] = expr
    for gid, n, mod in modules:
        g = next(x for x in funcs if id(x) == gid)
        for attr in sorted(_attributes_read(inspect.getsource(g), n)):
            renames[gid][f"{n}.{attr}"] = out.ref(getattr(mod, attr), attr)
    for g in funcs:
        out.add_generated(g, renames[id(g)])
    return _assemble(out, f, mode, wrt_idx, specs, entry, inner, top)


_ENTRY = object()


def _attributes_read(source: str, base: str) -> set[str]:
    tree = ast.parse(textwrap.dedent(source))
    return {n.attr for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == base}


def _spec_of(a: Any) -> ArgSpec:
    if type(a) is np.ndarray:
        return ArgSpec("array", a.dtype.name, a.shape)
    if type(a) in (int, bool):
        return ArgSpec("int")
    if type(a) is float:
        return ArgSpec("float")
    raise ExportError(f"export takes Python floats and ints and NumPy arrays, not {type(a).__name__}")


_WHAT = {"grad": "the gradient", "value_and_grad": "the value and gradient",
         "vjp": "the value and vector-Jacobian product"}


def _assemble(out: _Module, f: Callable, mode: str, wrt_idx: tuple[int, ...], specs: Sequence[ArgSpec],
              entry: str, inner: str, top: Callable) -> str:
    sig = ", ".join(str(s) for s in specs)
    params = list(inspect.signature(top).parameters)
    seed = params[-1] if mode == "vjp" else None
    origin = f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', f.__name__)}"
    wrt_names = ", ".join(params[i] for i in wrt_idx) if len(params) > max(wrt_idx) else str(wrt_idx)
    head = [
        f'"""{_WHAT[mode][0].upper() + _WHAT[mode][1:]} of {origin} with respect to {wrt_names}, '
        "exported by srcgrad.",
        "",
        f"Specialized to the arguments ({sig}): `{entry}` checks them and raises ValueError for others",
        "(export again for another signature). Runs with NumPy and the standard library only: the runtime",
        "helpers the generated code calls are copied below from srcgrad's source; data the function reads",
        "from its module or closure is copied as it was at export time. Regenerate with",
        f"    python -m srcgrad export {origin} --mode {mode} --wrt {','.join(map(str, wrt_idx))} "
        f'--signature "{sig}"',
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    imports = sorted(out.imports, key=lambda s: (s != "import numpy as np", s))
    if "import numpy as np" not in imports:
        imports.insert(0, "import numpy as np")
    user = _user_comment(f)
    body: list[str] = [*head, *imports, "", f"__all__ = [{entry!r}]", ""]
    if user:
        body += ["", "# ---- the function it differentiates, as written " + "-" * 48, user, ""]
    if out.defs:
        body += ["", "# ---- runtime helpers, copied from srcgrad " + "-" * 55]
        prev_multi = True
        for d in out.defs:
            multi = "\n" in d
            body += (["", "", d] if multi or prev_multi else [d])
            prev_multi = multi
        body.append("")
    spec_lits = ", ".join(
        f"({s.kind!r}, {s.dtype!r}, {s.shape!r})" for s in specs)
    body += [
        "",
        "# ---- the entry point " + "-" * 76,
        f"_SIGNATURE = ({spec_lits}{',' if len(specs) == 1 else ''})",
        "",
        "",
        "def _check_arguments(args):",
        '    """Raise ValueError unless args have the types, shapes and dtypes the code was made for."""',
        "    if len(args) != len(_SIGNATURE):",
        f"        raise ValueError(f'{entry} takes {{len(_SIGNATURE)}} arguments ({sig}), '",
        "                         f'got {len(args)}')",
        "    for i, (a, (kind, dtype, shape)) in enumerate(zip(args, _SIGNATURE)):",
        "        if kind == 'array':",
        "            ok = type(a) is np.ndarray and a.shape == shape and a.dtype == dtype",
        "        else:",
        "            ok = type(a) in ((int, bool) if kind == 'int' else (float, int, bool))",
        "        if not ok:",
        "            got = f'{a.dtype}{list(a.shape)}' if isinstance(a, np.ndarray) else type(a).__name__",
        f"            raise ValueError(f'{entry}: argument {{i}} is {{got}}, but this module was '",
        "                             'exported for '",
        f"                             '({sig}); export again for another signature')",
        "",
        "",
    ]
    if mode == "vjp":
        body += [
            f"def {entry}(*args):",
            f'    """{_WHAT[mode][0].upper() + _WHAT[mode][1:]}: {entry}(*arguments, v) -> (value, vjp)."""',
            "    *primal, v = args",
            "    _check_arguments(primal)",
            f"    return {inner}(*primal, {seed}=v)",
        ]
    else:
        body += [
            f"def {entry}(*args):",
            f'    """{_WHAT[mode][0].upper() + _WHAT[mode][1:]} at args ({sig})."""',
            "    _check_arguments(args)",
            f"    return {inner}(*args)",
        ]
    body += ["", "", "# ---- generated by srcgrad " + "-" * 72]
    for g in out.generated:
        body += ["", "", g.rstrip()]
    text = "\n".join(body).rstrip() + "\n"
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    compile(text, entry + ".py", "exec")          # a bug here is srcgrad's: fail before writing the file
    return text
