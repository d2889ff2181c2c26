"""Python sugar lowered to the statements the compiler differentiates (front end, right after parsing).

Users write comprehensions, generator expressions, `map`, nested helpers and local lambdas; the compiler's
core differentiates loops, appends to lists and calls. This pass rewrites the first into the second, each
new statement on the line the user wrote, so errors and tracebacks still point at the user's code:

    total = sum(w * f(a) for a in xs)        ->    items = []
                                                   for a in xs:
                                                       items.append(w * f(a))
                                                   total = sum(items)

A nested `def`, or a lambda bound to a local name, is inlined at each call: its parameters bound to the
arguments, its locals renamed after it (`tri_L`), its `return`s turned into assignments of its result.
Closures then need no mechanism of their own: the inlined body reads the enclosing variables as they are
at the call, which is Python's late binding, and a `nonlocal` counter is the enclosing variable itself.

A `return` inside a helper's loop leaves the loop by a flag and `break` (_eliminate_returns). A generator
is inlined as the list of the values it yields, one list per position where each yield is a tuple
(`for a, b in pairs(xs)`: a loop over `zip` of the lists). A call through a decorator's wrapper that only
forwards its arguments is a call of the wrapped function.

A function taking *args or **kwargs is inlined at its calls, what they collect being values of the caller:
`f(*args)` passes them one by one, `args[0]`, `len(args)`, `kwargs.get("k", d)` read them, and a loop over
functions (`for fn in fns: x = fn(x)`) is unrolled. A helper returning one of its nested functions (a
closure factory, `compose(*fns)`) gives the caller that function as a helper, inlined where it is called.
A wrapper whose *args and **kwargs only forward to one function, where calls bind to that function's
signature (functools.wraps), takes its parameters as its own (`name_forwarded_parameters`).

What this pass cannot lower is left as written, for the fence to refuse with its own message: a helper
used as a value (passed to another function), a `return` in a loop's `else:`, a recursive helper, a
comprehension in a lambda that is not called. A function a helper returned, or one collected by *args,
used other than by calling it is refused here, at its line.
"""

from __future__ import annotations

import builtins
import copy
import functools
import inspect
import os
import sys
import sysconfig
import textwrap
import types
import weakref
from dataclasses import dataclass
from typing import Any

import gast
import numpy as np

from srcgrad.errors import TransformError, located
from srcgrad.local_objects import replace_local_objects

_COMPREHENSIONS = (gast.ListComp, gast.GeneratorExp)
_SCOPES = (gast.ListComp, gast.GeneratorExp, gast.SetComp, gast.DictComp, gast.Lambda, gast.FunctionDef)


# ------------------------------------------------------------------------------------------ small builders
def _name(id_: str, store: bool = False) -> gast.Name:
    return gast.Name(id=id_, ctx=gast.Store() if store else gast.Load(), annotation=None, type_comment=None)


def _assign(target: str, value: gast.expr, at: Any) -> gast.Assign:
    return _located(gast.Assign(targets=[_name(target, store=True)], value=value, type_comment=None), at)


def _located(node: Any, at: Any) -> Any:
    """`node` and every node under it placed on `at`'s line, where they have no place of their own."""
    for n in gast.walk(node):
        if getattr(n, "lineno", None) is None and hasattr(at, "lineno"):
            gast.copy_location(n, at)
    return node


def returns_in(nodes: list) -> list[gast.Return]:
    """The returns of a function body, not those of functions or lambdas nested in it."""
    found = []
    stack = list(nodes)
    while stack:
        n = stack.pop()
        if isinstance(n, gast.Return):
            found.append(n)
        if isinstance(n, (gast.FunctionDef, gast.Lambda)):
            continue
        stack.extend(gast.iter_child_nodes(n))
    return found


def _returns_in_loop_else(body: list) -> bool:
    """A return in a loop's `else:` (which is not inside the loop, and not inlined)."""
    loops = [n for n in _walk_local(body) if isinstance(n, (gast.For, gast.While))]
    return any(returns_in(n.orelse) for n in loops)


def _walk_local(nodes: list):
    """Every node of a body, not descending into nested functions or lambdas."""
    stack = list(nodes)
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, (gast.FunctionDef, gast.Lambda)):
            continue
        stack.extend(gast.iter_child_nodes(n))


def _bound_by(node: Any) -> set[str]:
    """The names a comprehension, lambda or function binds for its own scope."""
    if isinstance(node, (gast.Lambda, gast.FunctionDef)):
        a = node.args
        return {p.id for p in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if p is not None}
    return {n.id for g in node.generators for n in gast.walk(g.target) if isinstance(n, gast.Name)}


def _rename(node: Any, mapping: dict[str, str]) -> Any:
    """Rename the names in `mapping` wherever they refer to the same variable (not where a nested
    comprehension or lambda binds the name again)."""

    def rename(n: gast.Name, new: str) -> gast.Name:
        n.id = new
        return n

    return _ScopedNames(mapping, rename).visit(node)


class _ScopedNames(gast.NodeTransformer):
    """Replaces the names in `m` by `replace(name_node, m[id])` wherever they refer to the same variable:
    not inside a nested comprehension or lambda that binds the name again."""

    def __init__(self, m: dict, replace: Any):
        self.m = m
        self.replace = replace

    def visit_Name(self, n: gast.Name) -> Any:
        return self.replace(n, self.m[n.id]) if n.id in self.m else n

    def generic_visit(self, n: Any) -> Any:
        if isinstance(n, _SCOPES) and not isinstance(n, gast.FunctionDef):
            inner = {k: v for k, v in self.m.items() if k not in _bound_by(n)}
            if inner != self.m:
                saved, self.m = self.m, inner
                try:
                    return super().generic_visit(n)
                finally:
                    self.m = saved
        return super().generic_visit(n)


# ------------------------------------------------------------------------------------------ local helpers
@dataclass
class Helper:
    """A nested `def` or a lambda bound to a local name, to be inlined at its calls."""

    name: str
    args: gast.arguments
    body: list
    node: Any
    defaults: dict  # parameter -> expression for its default (a constant or the name holding it)
    generator: list | None = None  # a generator's own body (`body` returns the list of its values)


def _partial_of(s: gast.stmt, info: Any) -> tuple[str, gast.Call] | None:
    """`g = functools.partial(f, a, k=v)`: (g, the partial call)."""
    if not (isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name)
            and isinstance(s.value, gast.Call) and s.value.args):
        return None
    f = s.value.func
    obj = None
    if isinstance(f, gast.Name):
        obj = info.resolve(f.id) if hasattr(info, "resolve") else None
    elif isinstance(f, gast.Attribute) and isinstance(f.value, gast.Name):
        mod = info.resolve(f.value.id) if hasattr(info, "resolve") else None
        obj = getattr(mod, f.attr, None)
    if obj is not functools.partial:
        return None
    if any(isinstance(a, gast.Starred) for a in s.value.args) or any(k.arg is None for k in s.value.keywords):
        return None
    return s.targets[0].id, s.value


def _helper_of(s: gast.stmt) -> tuple[str, Any, gast.arguments, list] | None:
    if isinstance(s, gast.FunctionDef):
        return s.name, s, s.args, s.body
    if (isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name)
            and isinstance(s.value, gast.Lambda)):
        lam = s.value
        ret = gast.copy_location(gast.Return(value=lam.body), lam.body)
        return s.targets[0].id, s, lam.args, [ret]
    return None


def _split_lambdas(s: gast.stmt) -> list:
    """`act, sq = lambda z: ..., lambda z: ...`: one assignment per lambda, so each is a local helper. The
    other values of the tuple keep their own assignment, first (a lambda evaluates nothing where it is
    written but its defaults, so only lambdas whose defaults are constants are moved after them)."""
    if not (isinstance(s, gast.Assign) and len(s.targets) == 1
            and isinstance(s.targets[0], (gast.Tuple, gast.List))
            and isinstance(s.value, (gast.Tuple, gast.List))
            and len(s.targets[0].elts) == len(s.value.elts)):
        return [s]
    targets, values = s.targets[0].elts, s.value.elts
    if not all(isinstance(t, gast.Name) for t in targets) or any(isinstance(v, gast.Starred) for v in values):
        return [s]
    if len({t.id for t in targets}) != len(targets):
        return [s]  # `f, f = ...`: the last one wins; left as written
    lambdas = [i for i, v in enumerate(values) if isinstance(v, gast.Lambda)]
    if not lambdas:
        return [s]
    others = [i for i in range(len(values)) if i not in lambdas]
    defaults = [d for i in lambdas for d in [*values[i].args.defaults, *values[i].args.kw_defaults] if d]
    if {n.id for d in defaults for n in gast.walk(d) if isinstance(n, gast.Name)} & {t.id for t in targets}:
        return [s]  # a default reads a name the statement binds: it reads the value from before
    if others and not all(isinstance(d, gast.Constant) for d in defaults):
        return [s]
    out: list = []
    if len(others) == 1:
        out.append(_located(gast.Assign(targets=[targets[others[0]]], value=values[others[0]],
                                        type_comment=None), s))
    elif others:
        out.append(_located(gast.Assign(
            targets=[gast.Tuple(elts=[targets[i] for i in others], ctx=gast.Store())],
            value=gast.Tuple(elts=[values[i] for i in others], ctx=gast.Load()), type_comment=None), s))
    out.extend(_located(gast.Assign(targets=[targets[i]], value=values[i], type_comment=None), s)
               for i in lambdas)
    return out


def _inlinable(name: str, node: Any, body: list, scope: list, inlined_call: Any = None) -> bool:
    """A helper is inlined when every use is a call (or map's function), it is bound once, it has no
    decorators, is not recursive and has no return in a loop's `else:`."""
    if getattr(node, "decorator_list", None):
        return False
    if any(isinstance(n, (gast.Yield, gast.YieldFrom)) for n in _walk_local(body)) \
            and _generator_as_list(body, "items") is None:
        return False
    if _returns_in_loop_else(body):
        return False
    binds = 0
    parents: dict[int, Any] = {}
    everything = [n for s in scope for n in gast.walk(s)]
    for n in everything:
        for c in gast.iter_child_nodes(n):
            parents[id(c)] = n
    for b in body:
        for n in gast.walk(b):
            for c in gast.iter_child_nodes(n):
                parents.setdefault(id(c), n)
    if any(isinstance(n, gast.Name) and n.id == name and not _attribute_of(n, parents)
           for n in _walk_local(body)):
        return False  # recursive (an attribute of the helper, `column.pos`, is state, not a call)
    for n in everything:
        if isinstance(n, gast.FunctionDef) and n.name == name:
            binds += 1
        if not (isinstance(n, gast.Name) and n.id == name):
            continue
        if not isinstance(n.ctx, gast.Load):
            binds += 1
            continue
        p = parents.get(id(n))
        called = isinstance(p, gast.Call) and p.func is n
        mapped = (isinstance(p, gast.Call) and isinstance(p.func, gast.Name) and p.func.id == "map"
                  and p.args and p.args[0] is n)
        given = (isinstance(p, gast.Call) and inlined_call is not None and inlined_call(p)
                 and any(a is n for a in p.args))
        if not (called or mapped or given or _attribute_of(n, parents)):
            return False
    return binds == 1


def _yield_width(body: list) -> int | None:
    """How many values each `yield` of a generator's body gives, where every one yields a tuple
    literal of that many (`yield xs[i], xs[i + 1]`); None otherwise (`yield from`, a yielded name)."""
    widths = set()
    for n in _walk_local(body):
        if isinstance(n, gast.YieldFrom):
            return None
        if isinstance(n, gast.Yield):
            if not isinstance(n.value, gast.Tuple) or not n.value.elts \
                    or any(isinstance(v, gast.Starred) for v in n.value.elts):
                return None
            widths.add(len(n.value.elts))
    return widths.pop() if len(widths) == 1 else None


def _generator_as_list(body: list, items: str | list[str]) -> list | None:
    """A generator's body as a function returning the list of the values it yields: `yield v` appends
    v, `yield from it` appends each of it, `return` returns the list. None where that would change what
    the program does: a `while` loop (the generator may be infinite, consumed only until a break), or a
    yield whose value is used (`x = yield v`). `items` a list of names: every yield gives a tuple of
    that many values (_yield_width), each appended to its own list, and the lists are returned as a
    tuple (a list of tuples is no value the compiler differentiates; lists of values are)."""
    nodes = list(_walk_local(body))
    if any(isinstance(n, gast.While) for n in nodes):
        return None
    for n in nodes:
        if isinstance(n, (gast.Yield, gast.YieldFrom)):
            if not any(isinstance(s, gast.Expr) and s.value is n for s in nodes):
                return None
    lists = items if isinstance(items, list) else [items]
    if isinstance(items, list) and _yield_width(body) != len(items):
        return None

    def result() -> gast.expr:
        if isinstance(items, list):
            return gast.Tuple(elts=[_name(i) for i in items], ctx=gast.Load())
        return _name(items)

    class Rewrite(gast.NodeTransformer):
        def visit_FunctionDef(self, node: Any) -> Any:
            return node  # a nested function's yields are its own

        def visit_Lambda(self, node: Any) -> Any:
            return node

        def visit_Expr(self, node: gast.Expr) -> Any:
            v = node.value
            if isinstance(v, gast.Yield) and isinstance(items, list):
                return [_located(gast.Expr(value=gast.Call(
                    func=gast.Attribute(value=_name(i), attr="append", ctx=gast.Load()), args=[value],
                    keywords=[])), node) for i, value in zip(items, v.value.elts, strict=True)]
            if isinstance(v, gast.Yield):
                value = v.value if v.value is not None else gast.Constant(value=None, kind=None)
                append = gast.Call(func=gast.Attribute(value=_name(items), attr="append", ctx=gast.Load()),
                                   args=[value], keywords=[])
                return _located(gast.Expr(value=append), node)
            if isinstance(v, gast.YieldFrom):
                item = f"{items}_item"
                append = gast.Call(func=gast.Attribute(value=_name(items), attr="append", ctx=gast.Load()),
                                   args=[_name(item)], keywords=[])
                loop = gast.For(target=_name(item, store=True), iter=v.value,
                                body=[gast.Expr(value=append)], orelse=[], type_comment=None)
                return _located(loop, node)
            return node

        def visit_Return(self, node: gast.Return) -> Any:
            return _located(gast.Return(value=result()), node)

    if not body:
        return None
    converted = [Rewrite().visit(copy.deepcopy(s)) for s in body]
    starts = [_assign(i, gast.List(elts=[], ctx=gast.Load()), body[0]) for i in lists]
    end = _located(gast.Return(value=result()), body[-1])
    return [*starts, *converted, end]


def _spliceable(root: gast.FunctionDef) -> set[str]:
    """Names bound once to a tuple or list literal, or a dict literal with string keys, that a call
    unpacks (`f(*pair)`, `g(**opts)`); a dict must be used only that way."""
    stores: dict[str, list] = {}
    for n in gast.walk(root):
        if isinstance(n, gast.Name) and isinstance(n.ctx, (gast.Store, gast.Param)):
            stores.setdefault(n.id, []).append(n)
    literal: dict[str, Any] = {}
    for n in gast.walk(root):
        if isinstance(n, gast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], gast.Name) \
                and len(stores.get(n.targets[0].id, ())) == 1:
            v = n.value
            if isinstance(v, (gast.Tuple, gast.List)) and v.elts and not any(
                    isinstance(x, gast.Starred) for x in v.elts):
                literal[n.targets[0].id] = v
            elif isinstance(v, gast.Dict) and v.keys and all(
                    isinstance(k, gast.Constant) and isinstance(k.value, str) and k.value.isidentifier()
                    for k in v.keys):
                literal[n.targets[0].id] = v
    unpacked = {a.value.id for c in gast.walk(root) if isinstance(c, gast.Call) for a in c.args
                if isinstance(a, gast.Starred) and isinstance(a.value, gast.Name)}
    unpacked |= {k.value.id for c in gast.walk(root) if isinstance(c, gast.Call) for k in c.keywords
                 if k.arg is None and isinstance(k.value, gast.Name)}
    found = set()
    for var, v in literal.items():
        if var not in unpacked:
            continue
        if isinstance(v, gast.Dict):
            loads = [n for n in gast.walk(root) if isinstance(n, gast.Name) and n.id == var
                     and isinstance(n.ctx, gast.Load)]
            uses = [k for c in gast.walk(root) if isinstance(c, gast.Call) for k in c.keywords
                    if k.arg is None and isinstance(k.value, gast.Name) and k.value.id == var]
            if len(loads) != len(uses):
                continue
        found.add(var)
    return found


def _attribute_of(n: gast.Name, parents: dict) -> bool:
    """`helper.count`: the name is the object of an attribute read or write."""
    p = parents.get(id(n))
    return isinstance(p, gast.Attribute) and p.value is n


def _attributes_as_variables(name: str, scope: list, fresh: Any, known: dict) -> set[str]:
    """Every `name.attr` in `scope` (a helper's attribute, kept as state between its calls: a counter,
    a read position) rewritten as the variable `name_attr` of the enclosing function, which is what it
    is once the helper is inlined. Returns the variables."""

    class Rewrite(gast.NodeTransformer):
        def visit_Attribute(self, node: gast.Attribute) -> Any:
            self.generic_visit(node)
            if isinstance(node.value, gast.Name) and node.value.id == name:
                var = known.setdefault((name, node.attr), fresh(f"{name}_{node.attr}"))
                return gast.copy_location(gast.Name(id=var, ctx=node.ctx, annotation=None,
                                                    type_comment=None), node)
            return node

    for s in scope:
        Rewrite().visit(s)
    return {v for (n, _), v in known.items() if n == name}


class Lowering:
    """One function's lowering. `info` locates errors; names are made fresh against every name in it."""

    def __init__(self, info: Any, root: gast.FunctionDef):
        self.info = info
        self.taken = {n.id for n in gast.walk(root) if isinstance(n, gast.Name)}
        self.taken |= {n.name for n in gast.walk(root) if isinstance(n, gast.FunctionDef)}
        self.taken |= set(info.globals) | set(info.closure) | set(dir(builtins))
        self.helpers: dict[str, Helper] = {}
        self.partials: dict[str, tuple] = {}  # name -> (function expression, bound args, keywords)
        self.state: set[str] = set()  # helpers' attributes, now variables of this function
        self.spliced: set[str] = set()
        self.parts: dict[str, dict] = {}  # a tuple or dict unpacked into a call -> its items (expressions)
        self.function_values: set[str] = set()  # helpers that were values (returned, collected by *args)
        self.state_names: dict[tuple, str] = {}
        self.inlining: list[str] = []
        self.local_names = {n.id for n in gast.walk(root) if isinstance(n, gast.Name)
                            and isinstance(n.ctx, (gast.Store, gast.Param))}
        self.parse: Any = None
        self.bound: dict[str, str] = {}
        self.root = root  # library functions the rewrites call -> their names here
        # a comprehension's variable keeps its name unless the function uses that name elsewhere
        self.used_outside = {n.id for n in _walk_outside_comprehensions(root) if isinstance(n, gast.Name)}

    def resolve_global(self, name: str) -> Any:
        """The object a global or closure name of the function holds (None where it is neither)."""
        if name in self.local_names:
            return None
        if name in self.info.closure:
            try:
                return self.info.closure[name].cell_contents
            except ValueError:
                return None
        return self.info.globals.get(name)

    def fresh(self, base: str) -> str:
        cand, k = base, 1
        while cand in self.taken:
            cand = f"{base}_{k}"
            k += 1
        self.taken.add(cand)
        return cand

    # ------------------------------------------------------------------------------------ statements
    def run(self, root: gast.FunctionDef) -> None:
        replace_local_objects(root, self.resolve_global, self.fresh)
        self.spliced = _spliceable(root)
        root.body = self.block(root.body, root.body)
        for n in gast.walk(root):
            if isinstance(n, gast.Name) and n.id in self.function_values:
                raise located(self.info, n, "a function (one a helper returned, or a lambda collected by a "
                              "helper's *args) used as a value", "call it where it is made, or only call "
                              "the name it is given.")

    def block(self, stmts: list, scope: list) -> list:
        out: list = []
        kept = _read_by_returned_function(stmts)
        for s in [part for written in stmts for part in _split_lambdas(written)]:
            found = _helper_of(s)
            if found is not None and found[0] not in kept \
                    and _inlinable(found[0], found[1], found[3], scope, self.inlines_callee):
                self.state |= _attributes_as_variables(found[0], scope, self.fresh, self.state_names)
                out.extend(self.define(*found))
                continue
            bound = _partial_of(s, self.info)
            if bound is not None and _inlinable(bound[0], s, [], scope):
                out.extend(self.bind_partial(*bound, s))
                continue
            out.extend(self.stmt(s, scope))
        return out

    def bind_partial(self, name: str, p: gast.Call, at: Any) -> list:
        """`g = partial(f, a, k=v)`: a, v evaluated here (as partial does), and each call `g(x)` written
        `f(a, x, k=v)`."""
        pre: list = []
        held = []
        for a in p.args[1:]:
            value = self.expr(a, pre)
            if not isinstance(value, (gast.Name, gast.Constant)):
                holder = self.fresh(f"{name}_arg")
                pre.append(_assign(holder, value, at))
                value = _name(holder)
            held.append(value)
        kws = []
        for k in p.keywords:
            value = self.expr(k.value, pre)
            if not isinstance(value, (gast.Name, gast.Constant)):
                holder = self.fresh(f"{name}_{k.arg}")
                pre.append(_assign(holder, value, at))
                value = _name(holder)
            kws.append(gast.keyword(arg=k.arg, value=value))
        self.partials[name] = (p.args[0], held, kws)
        return pre

    def define(self, name: str, node: Any, args: gast.arguments, body: list) -> list:
        """Register a helper; its non-constant defaults are evaluated where it is defined, as Python does."""
        pre: list = []
        defaults: dict = {}
        positional = args.posonlyargs + args.args
        for p, d in zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=True):
            defaults[p.id] = self.default(name, p.id, d, node, pre)
        for p, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            if d is not None:
                defaults[p.id] = self.default(name, p.id, d, node, pre)
        body = [s for s in body if not (isinstance(s, gast.Expr) and isinstance(s.value, gast.Constant)
                                        and isinstance(s.value.value, str))]  # the docstring
        generator = None
        if any(isinstance(n, (gast.Yield, gast.YieldFrom)) for n in _walk_local(body)):
            generator = body
            body = _generator_as_list(body, self.fresh(f"{name}_items"))
        self.helpers[name] = Helper(name, args, body, node, defaults, generator)
        return pre

    def default(self, helper: str, param: str, d: gast.expr, at: Any, pre: list) -> gast.expr:
        if isinstance(d, gast.Constant):
            return d
        holder = self.fresh(f"{helper}_{param}_default")
        pre.append(_assign(holder, self.expr(d, pre), at))
        return _name(holder)

    def stmt(self, s: gast.stmt, scope: list) -> list:
        pre: list = []
        if isinstance(s, gast.If):
            s.test = self.expr(s.test, pre)
            s.body = self.block(s.body, scope)
            s.orelse = self.block(s.orelse, scope)
        elif isinstance(s, gast.For) and self.loops_over_functions(s):
            return self.unrolled(s, scope)
        elif isinstance(s, gast.For):
            def read_in_body_only(name: str, s: gast.For = s) -> bool:
                # a single name: read only in the loop's body (as the tuple of the loop's names), never
                # bound there (a tuple of values rebound in a loop and read after it is not read right)
                inside = {id(n) for n in gast.walk(gast.Module(body=s.body, type_ignores=[]))}
                return not any(isinstance(n, gast.Name) and n.id == name and (
                    isinstance(n.ctx, gast.Load) and id(n) not in inside
                    or not isinstance(n.ctx, gast.Load) and id(n) in inside)
                    for n in gast.walk(gast.Module(body=scope, type_ignores=[])))

            head = self.tuple_generator(s.target, s.iter, pre, read_in_body_only)
            if head is not None:
                s.target, s.iter, substitute = head
                s.body = self.block([_substitute(b, substitute) for b in s.body], scope)
            else:
                s.iter = self.expr(s.iter, pre)
                s.body = self.block(s.body, scope)
            s.orelse = self.block(s.orelse, scope)
        elif isinstance(s, gast.While):
            test_pre: list = []
            test = self.expr(s.test, test_pre)
            body = self.block(s.body, scope)
            if test_pre:
                # the test reads a comprehension or a helper: evaluate it at the top of every iteration
                stop = _located(gast.If(test=gast.UnaryOp(op=gast.Not(), operand=test),
                                        body=[gast.copy_location(gast.Break(), s)], orelse=[]), s)
                s.test = gast.copy_location(gast.Constant(value=True, kind=None), s)
                s.body = test_pre + [stop] + body
            else:
                s.test, s.body = test, body
            s.orelse = self.block(s.orelse, scope)
        elif isinstance(s, (gast.FunctionDef, gast.ClassDef, gast.With, gast.Try)):
            pass  # left as written: the fence names it
        elif isinstance(s, gast.Assign) and self.unpacks_into_places(s):
            # `s[i], s[i + 1] = cell(...)`: the values into names first, then each place written
            s.value = self.expr(s.value, pre)
            parts = [self.fresh("part") for _ in s.targets[0].elts]
            places = s.targets[0].elts
            s.targets = [gast.Tuple(elts=[_name(p, store=True) for p in parts], ctx=gast.Store())]
            writes = [_located(gast.Assign(targets=[t], value=_name(p), type_comment=None), s)
                      for t, p in zip(places, parts, strict=True)]
            return [*pre, s, *self.block(writes, scope)]
        elif self.stores_setting(s):
            # `self.n_evals += 1`, `wrapper.calls += 1`, `self.size = x.shape[0]`: a value that carries no
            # derivative stored on an object, as the call setattr(obj, "n_evals", obj.n_evals + 1), which
            # runs as written (an object's arrays are never written this way: see flatten.Flattener.call)
            t = s.targets[0] if isinstance(s, gast.Assign) else s.target
            value = s.value if isinstance(s, gast.Assign) else gast.BinOp(
                left=gast.Attribute(value=_name(t.value.id), attr=t.attr, ctx=gast.Load()), op=s.op,
                right=s.value)
            if "setattr" not in self.bound:
                self.bound["setattr"] = self.constant_ref(builtins.setattr, "store_attribute")
            args = [_name(t.value.id), gast.Constant(value=t.attr, kind=None), self.expr(value, pre)]
            store = gast.Call(func=_name(self.bound["setattr"]), args=args, keywords=[])
            return [*pre, _located(gast.Expr(value=store), s)]
        elif isinstance(s, gast.Assign) and self.unpacks_helper(s):
            s.value = self.inline(self.helpers[s.value.func.id], s.value, pre, width=len(s.targets[0].elts))
        elif isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name) \
                and s.targets[0].id in self.spliced and s.targets[0].id not in self.parts:
            return self.name_parts(s, pre)
        elif isinstance(s, gast.Assign) and self.builds_in_place(s):
            self.comprehension(s.value, pre, into=s.targets[0].id)
            return pre
        else:
            # the value first: Python evaluates it before the targets' subscripts
            for field_name, value in sorted(gast.iter_fields(s), key=lambda f: f[0] != "value"):
                if isinstance(value, gast.expr):
                    setattr(s, field_name, self.expr(value, pre))
                elif isinstance(value, list) and value and isinstance(value[0], gast.expr):
                    setattr(s, field_name, [self.expr(v, pre) for v in value])
        if isinstance(s, gast.Expr) and isinstance(s.value, gast.Constant) and s.value.value is None:
            return pre  # a call to a helper that returns nothing, inlined
        if isinstance(s, gast.Assign) and isinstance(s.value, gast.Name) and s.value.id in self.helpers:
            self.alias(s, scope)
            return pre
        if isinstance(s, gast.Assign) and self.unpacks_functions(s):
            return [*pre, *self.split_functions(s, scope)]
        return [*pre, s]

    def unpacks_functions(self, s: gast.Assign) -> bool:
        """`half, by_c = make(0.5), make(c)`: a tuple literal of which some items are helpers."""
        return (len(s.targets) == 1 and isinstance(s.targets[0], (gast.Tuple, gast.List))
                and isinstance(s.value, (gast.Tuple, gast.List))
                and len(s.targets[0].elts) == len(s.value.elts)
                and all(isinstance(t, gast.Name) for t in s.targets[0].elts)
                and not any(isinstance(v, gast.Starred) for v in s.value.elts)
                and any(isinstance(v, gast.Name) and v.id in self.helpers for v in s.value.elts))

    def split_functions(self, s: gast.Assign, scope: list) -> list:
        """`unpacks_functions`' statement as one alias per helper (`alias`) and the other items assigned
        together, as they were (their values are already computed: nothing runs in between)."""
        rest = []
        for t, v in zip(s.targets[0].elts, s.value.elts, strict=True):
            if isinstance(v, gast.Name) and v.id in self.helpers:
                self.alias(_located(gast.Assign(targets=[t], value=v, type_comment=None), s), scope)
            else:
                rest.append((t, v))
        if not rest:
            return []
        if len(rest) == 1:
            return [_located(gast.Assign(targets=[rest[0][0]], value=rest[0][1], type_comment=None), s)]
        return [_located(gast.Assign(
            targets=[gast.Tuple(elts=[t for t, _ in rest], ctx=gast.Store())],
            value=gast.Tuple(elts=[v for _, v in rest], ctx=gast.Load()), type_comment=None), s)]

    def alias(self, s: gast.Assign, scope: list) -> None:
        """`f = compose(...)`, `act = fn` (a loop over functions, unrolled): the name is one more for the
        helper the value is (a function a helper returned, a lambda given to it), inlined where it is
        called. Refused where the name is used otherwise, or bound again."""
        target = s.targets[0] if len(s.targets) == 1 else None
        if not (isinstance(target, gast.Name) and _inlinable(target.id, s, [], scope, self.inlines_callee)
                and not any(isinstance(n, gast.Attribute) and isinstance(n.value, gast.Name)
                            and n.value.id == target.id for b in scope for n in gast.walk(b))):
            raise located(self.info, s, "a function (one a helper returned, or a lambda given to it) stored "
                          "other than in a name only called", "call the function where it is made, or name "
                          "it once (f = make(...)) and only call f.")
        self.helpers[target.id] = self.helpers[s.value.id]
        self.function_values.add(target.id)  # any read left once the calls are inlined is refused

    def loops_over_functions(self, s: gast.For) -> bool:
        """`for fn in fns` where fns is a helper's *args holding functions (see `pack`)."""
        return (isinstance(s.iter, gast.Name) and s.iter.id in self.parts
                and any(self.is_function(v) for v in self.parts[s.iter.id].values()))

    def unrolled(self, s: gast.For, scope: list) -> list:
        """`for fn in fns: x = fn(x)` over functions a helper's *args collected: the body once per
        function, its loop variable that function, so each call is inlined or made to the function
        itself. Refused where the body leaves the loop early or binds the loop variable, or the variable
        is read after the loop (no variable holds a helper)."""
        target = s.target
        jumps = [n for n in _walk_loop_body(s.body) if isinstance(n, (gast.Break, gast.Continue))]
        binds = [n for n in gast.walk(gast.Module(body=s.body, type_ignores=[]))
                 if isinstance(n, gast.Name) and isinstance(target, gast.Name) and n.id == target.id
                 and not isinstance(n.ctx, gast.Load)]
        inside = {id(n) for n in gast.walk(s)}
        after = [n for n in gast.walk(gast.Module(body=scope, type_ignores=[])) if isinstance(n, gast.Name)
                 and isinstance(target, gast.Name) and n.id == target.id and id(n) not in inside]
        if not isinstance(target, gast.Name) or jumps or binds or after:
            raise located(self.info, s, "a loop over functions (a helper's *args) that srcgrad cannot "
                          "unroll: its variable must be one name, not bound in the body nor read after the "
                          "loop, and the body must not break or continue", "call the functions one by one.")
        out: list = []
        for fn in self.parts[s.iter.id].values():
            body = [_substitute(copy.deepcopy(b), {target.id: fn}) for b in s.body]
            out.extend(self.block(body, scope))
        out.extend(self.block(s.orelse, scope))
        return out

    def name_parts(self, s: gast.Assign, pre: list) -> list:
        """`pair = (x, y)` / `opts = {"slope": 0.2}` that a call unpacks (`f(*pair)`, `g(**opts)`): each
        item named (pair_0, opts_slope), so the unpacking passes the names; a tuple is kept as well for
        other reads, a dict only unpacked is not built."""
        var = s.targets[0].id
        value = s.value
        keys = [k.value for k in value.keys] if isinstance(value, gast.Dict) else list(range(len(value.elts)))
        items = value.values if isinstance(value, gast.Dict) else value.elts
        names = [self.fresh(f"{var}_{k}") for k in keys]
        out = list(pre)
        for n, item in zip(names, items, strict=True):
            out.append(_assign(n, self.expr(item, out), s))
        self.parts[var] = {k: _name(n) for k, n in zip(keys, names, strict=True)}
        if not isinstance(value, gast.Dict):
            kind = gast.Tuple if isinstance(value, gast.Tuple) else gast.List
            out.append(_assign(var, kind(elts=[_name(n) for n in names], ctx=gast.Load()), s))
        return out

    def stores_setting(self, s: gast.stmt) -> bool:
        """`obj.attr = v` or `obj.attr += v` with v built only of constants, sizes, lengths, comparisons
        and obj's own attributes: a value that carries no derivative, whatever the arguments are."""
        if isinstance(s, gast.Assign) and len(s.targets) == 1:
            t = s.targets[0]
        elif isinstance(s, gast.AugAssign):
            t = s.target
        else:
            return False
        if not (isinstance(t, gast.Attribute) and isinstance(t.value, gast.Name)):
            return False
        return _carries_no_derivative(s.value, t.value.id)

    def unpacks_into_places(self, s: gast.Assign) -> bool:
        """A tuple target with subscripts or attributes among its names, from a value that is not a
        tuple literal (a literal's swap, `a[0], a[1] = a[1], a[0]`, the compiler reads as it is)."""
        return (len(s.targets) == 1 and isinstance(s.targets[0], (gast.Tuple, gast.List))
                and any(isinstance(t, (gast.Subscript, gast.Attribute)) for t in s.targets[0].elts)
                and not any(isinstance(t, gast.Starred) for t in s.targets[0].elts)
                and not isinstance(s.value, (gast.Tuple, gast.List)))

    def unpacks_helper(self, s: gast.Assign) -> bool:
        """`Rs, ts = helper()`: the helper's returned tuple is assigned element by element, never built
        (a tuple of lists would hide from the compiler that its items are lists)."""
        return (len(s.targets) == 1 and isinstance(s.targets[0], gast.Tuple)
                and isinstance(s.value, gast.Call) and isinstance(s.value.func, gast.Name)
                and s.value.func.id in self.helpers)

    def builds_in_place(self, s: gast.Assign) -> bool:
        """`ys = [f(a) for a in xs]`: the list is built in `ys` itself unless the comprehension reads ys."""
        if len(s.targets) != 1 or not isinstance(s.targets[0], gast.Name):
            return False
        if not isinstance(s.value, gast.ListComp):
            return False
        target = s.targets[0].id
        return not any(isinstance(n, gast.Name) and n.id == target for n in gast.walk(s.value))

    # ------------------------------------------------------------------------------------ expressions
    def expr(self, e: Any, pre: list) -> Any:
        """`e` with its comprehensions and helper calls lowered into statements appended to `pre`."""
        if isinstance(e, _COMPREHENSIONS):
            return self.comprehension(e, pre)
        if isinstance(e, gast.Call):
            return self.call(e, pre)
        if isinstance(e, gast.IfExp):
            return self.conditional(e, pre)
        if isinstance(e, gast.BoolOp):
            return self.boolean(e, pre)
        if isinstance(e, _SCOPES):
            return e  # a lambda, set or dict comprehension not called here: left as written
        for field_name, value in gast.iter_fields(e):
            if isinstance(value, gast.AST) and not isinstance(value, (gast.expr_context,)):
                setattr(e, field_name, self.expr(value, pre))
            elif isinstance(value, list):
                setattr(e, field_name, [self.expr(v, pre) if isinstance(v, gast.AST) else v for v in value])
        return e

    def conditional(self, e: gast.IfExp, pre: list) -> gast.expr:
        e.test = self.expr(e.test, pre)
        body_pre: list = []
        else_pre: list = []
        body = self.expr(e.body, body_pre)
        orelse = self.expr(e.orelse, else_pre)
        if not body_pre and not else_pre:
            e.body, e.orelse = body, orelse
            return e
        # a branch reads a comprehension or a helper: only the branch taken may run it
        result = self.fresh("chosen")
        pre.append(_located(gast.If(test=e.test, body=body_pre + [_assign(result, body, e)],
                                    orelse=else_pre + [_assign(result, orelse, e)]), e))
        return _name(result)

    def boolean(self, e: gast.BoolOp, pre: list) -> gast.expr:
        first = self.expr(e.values[0], pre)
        rest_pre: list[list] = []
        rest = []
        for v in e.values[1:]:
            p: list = []
            rest.append(self.expr(v, p))
            rest_pre.append(p)
        if not any(rest_pre):
            e.values = [first, *rest]
            return e
        # `a and helper(b)`: helper runs only where Python's short circuit would run it
        result = self.fresh("either" if isinstance(e.op, gast.Or) else "both")
        pre.append(_assign(result, first, e))
        for p, v in zip(rest_pre, rest, strict=True):
            test = _name(result)
            if isinstance(e.op, gast.Or):
                test = gast.UnaryOp(op=gast.Not(), operand=test)
            pre.append(_located(gast.If(test=test, body=p + [_assign(result, v, e)], orelse=[]), e))
        return _name(result)

    def call(self, e: gast.Call, pre: list) -> gast.expr:
        if isinstance(e.func, gast.Name) and e.func.id not in self.local_names \
                and e.func.id not in self.helpers and e.func.id not in self.partials:
            inner = _forwarded_to(self.global_value(e.func.id), bool(e.keywords))
            if inner is not None:
                # layer(W, x) where `layer` is a decorator's wrapper that only forwards its call: the call
                # is to the wrapped function (as parse_function reads a top-level forwarding wrapper)
                e.func = gast.copy_location(_name(self.constant_ref(inner, inner.__name__)), e.func)
        if isinstance(e.func, gast.Name) and e.func.id == "map" and e.args and not e.keywords \
                and "map" not in self.info.locals:
            return self.comprehension(self.map_as_comprehension(e), pre)
        if isinstance(e.func, gast.Name) and e.func.id == "sorted" and "sorted" not in self.info.locals \
                and "sorted" not in self.local_names and self.global_value("sorted") is builtins.sorted:
            if not self.sorts_keys(e):
                return self.sorted_list(e, pre)
        if isinstance(e.func, gast.Lambda):
            lam = e.func
            ret = gast.copy_location(gast.Return(value=lam.body), lam.body)
            helper = Helper("lambda", lam.args, [ret], lam, {})
            return self.inline(helper, e, pre)
        if any(isinstance(a, gast.Starred) and isinstance(a.value, gast.Name) and a.value.id in self.parts
               for a in e.args) or any(k.arg is None and isinstance(k.value, gast.Name)
                                       and k.value.id in self.parts for k in e.keywords):
            args: list = []
            for a in e.args:
                held = a.value.id if isinstance(a, gast.Starred) and isinstance(a.value, gast.Name) else None
                if held in self.parts:
                    args.extend(copy.deepcopy(v) for v in self.parts[held].values())
                else:
                    args.append(a)
            keywords: list = []
            for k in e.keywords:
                if k.arg is None and isinstance(k.value, gast.Name) and k.value.id in self.parts:
                    keywords.extend(gast.keyword(arg=key, value=copy.deepcopy(v))
                                    for key, v in self.parts[k.value.id].items())
                else:
                    keywords.append(k)
            e = gast.copy_location(gast.Call(func=e.func, args=args, keywords=keywords), e)
        starred = [a for a in e.args if isinstance(a, gast.Starred)]
        if len(starred) == 1 and not (isinstance(starred[0].value, gast.Name)
                                      and starred[0].value.id in self.parts):
            e = self.spread(e, pre)
        if isinstance(e.func, gast.Name) and e.func.id in self.partials:
            fn, held, kws = self.partials[e.func.id]
            given = {k.arg for k in e.keywords}
            e = gast.copy_location(gast.Call(
                func=copy.deepcopy(fn), args=[copy.deepcopy(a) for a in held] + list(e.args),
                keywords=[copy.deepcopy(k) for k in kws if k.arg not in given] + list(e.keywords)), e)
            return self.call(e, pre)
        if isinstance(e.func, gast.Name) and e.func.id in self.helpers:
            return self.inline(self.helpers[e.func.id], e, pre)
        if isinstance(e.func, gast.Name) and self.parse is not None and e.func.id not in self.local_names:
            target = self.global_value(e.func.id)
            if _user_function(target, generators=True) and target.__code__.co_flags & inspect.CO_GENERATOR:
                # windows(x, 3): the generator's values, all of them, as the list a loop or a call reads
                helper = self.borrow(target, e)
                converted = _generator_as_list(helper.body, self.fresh(f"{target.__name__}_items"))
                if converted is not None and not _returns_in_loop_else(converted):
                    helper.body = converted
                    return self.inline(helper, e, pre)
        callee = self.static_callee(e.func) if self.parse is not None else None
        if callee is not None and self.inlined_here(callee, e):
            helper = self.borrow(callee, e)
            if not _returns_in_loop_else(helper.body):  # (nor a return in a loop's else)
                return self.inline(helper, e, pre)
        e.func = self.expr(e.func, pre)
        if isinstance(e.func, gast.Name) and e.func.id in self.helpers:
            return self.inline(self.helpers[e.func.id], e, pre)  # compose(f, g)(x)
        e.args = [self.expr(a, pre) for a in e.args]
        for k in e.keywords:
            k.value = self.expr(k.value, pre)
        return e

    def static_callee(self, f: gast.expr) -> Any:
        """What a call's function denotes where that is fixed when the function is transformed: a name
        the function does not bind (a global, a closure value), or a module's attribute (`models.loss`);
        None otherwise."""
        chain = []
        while isinstance(f, gast.Attribute):
            chain.append(f.attr)
            f = f.value
        if not isinstance(f, gast.Name) or f.id in self.local_names or f.id in self.helpers \
                or f.id in self.partials:
            return None
        obj = self.global_value(f.id)
        for attr in reversed(chain):
            if not isinstance(obj, types.ModuleType):
                return None
            obj = getattr(obj, attr, None)
        return obj

    def inlined_here(self, target: Any, e: gast.Call) -> bool:
        """Whether a call to the user's function `target` is inlined, not differentiated as a call:
        where it is given a function (rk4(lambda t, y: -k * y, y0, h): the function, a closure over this
        function's values, is then inlined at each of its calls), returns one of its nested functions
        (`scale = make_scaler(2.0)`: the value is that function, see `returned_function`), or takes
        *args or **kwargs (which a call binds to no parameter the compiler differentiates; inlined, each
        argument is a value of this function, `pack`)."""
        if any(_function_value(a, self) for a in [*e.args, *(k.value for k in e.keywords)]):
            return _user_function(target)
        if not _user_code(target):
            return False
        return bool(target.__code__.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)) \
            or _returns_own_function(target)

    def sorted_list(self, e: gast.Call, pre: list) -> gast.expr:
        """`sorted(xs)` -> `[v for v in np.sort(xs, axis=0)]`: the values in ascending order, as a list
        (np.sort has a derivative: each output is the input it came from); `reverse=True` reads the sorted
        values backwards. The call is marked, so srcgrad/flatten.py sorts a flattened dict's keys (or a
        list of constants) at transform time instead. A `key=` function is refused: the order it gives
        is not a sort of the values themselves."""
        reverse = False
        for k in e.keywords:
            if k.arg == "reverse" and isinstance(k.value, gast.Constant):
                reverse = bool(k.value.value)
            else:
                raise located(self.info, e, f"sorted(..., {k.arg or '**'}=...) in a differentiated function",
                              "sort by the values themselves (sorted(xs) or sorted(xs, reverse=True)), or "
                              "compute the order with np.argsort(keys) and index with it.")
        if len(e.args) != 1 or isinstance(e.args[0], gast.Starred):
            raise located(self.info, e, "sorted() takes one iterable")
        if "sort_values" not in self.bound:
            self.bound["sort_values"] = self.constant_ref(np.sort, "sort_values")
        if "as_array" not in self.bound:
            self.bound["as_array"] = self.constant_ref(np.array, "as_array")
        values = gast.Call(func=_name(self.bound["as_array"]), args=[e.args[0]], keywords=[])
        sort = gast.Call(func=_name(self.bound["sort_values"]), args=[values],
                         keywords=[gast.keyword(arg="axis", value=gast.Constant(value=0, kind=None))])
        sort.srcgrad_sorted = True  # noqa: B010 -- read by flatten.Flattener.call
        it: gast.expr = sort
        if reverse:
            it = gast.Subscript(value=sort, slice=gast.Slice(lower=None, upper=None, step=gast.UnaryOp(
                op=gast.USub(), operand=gast.Constant(value=1, kind=None))), ctx=gast.Load())
        held = self.fresh("in_order")
        pre.append(_assign(held, self.expr(it, pre), e))
        item = self.fresh("value")
        comp = gast.ListComp(elt=_name(item), generators=[
            gast.comprehension(target=_name(item, store=True), iter=_name(held), ifs=[], is_async=0)])
        return self.comprehension(_located(comp, e), pre)

    def spread(self, e: gast.Call, pre: list) -> gast.Call:
        """`rosen3(*x)` with x an array or a list: the callee's signature decides how many items it takes
        (a user function or a nested helper with n positional parameters and no defaults or *args), so
        the call is `rosen3(x[0], x[1], x[2])`, after a check that x has that many (Python's TypeError
        otherwise). Left as written where the count cannot be decided."""
        fn = e.func.id if isinstance(e.func, gast.Name) else None
        n_params = None
        if fn in self.helpers:
            a = self.helpers[fn].args
            if a.vararg is None and not a.defaults:
                n_params = len(a.posonlyargs + a.args)
        elif fn is not None and fn not in self.local_names and fn not in self.partials:
            target = self.global_value(fn)
            code = getattr(target, "__code__", None)
            if isinstance(target, types.FunctionType) and not target.__defaults__ \
                    and not code.co_flags & inspect.CO_VARARGS:
                n_params = code.co_argcount
        if n_params is None:
            return e
        i = next(k for k, a in enumerate(e.args) if isinstance(a, gast.Starred))
        count = n_params - (len(e.args) - 1) - len([k for k in e.keywords if k.arg is not None])
        if count < 0 or any(k.arg is None for k in e.keywords):
            return e
        seq = self.expr(e.args[i].value, pre)
        if not isinstance(seq, gast.Name):
            held = self.fresh("spread")
            pre.append(_assign(held, seq, e))
            seq = _name(held)
        message = gast.Constant(value=f"{fn}() takes {n_params} positional arguments: the starred argument "
                                f"must have {count} items", kind=None)
        wrong = gast.Compare(left=gast.Call(func=_name("len"), args=[copy.deepcopy(seq)], keywords=[]),
                             ops=[gast.NotEq()], comparators=[gast.Constant(value=count, kind=None)])
        pre.append(_located(gast.If(test=wrong, body=[gast.Raise(exc=gast.Call(
            func=_name("TypeError"), args=[message], keywords=[]), cause=None)], orelse=[]), e))
        items = [gast.Subscript(value=copy.deepcopy(seq), slice=gast.Constant(value=k, kind=None),
                                ctx=gast.Load()) for k in range(count)]
        args = e.args[:i] + items + e.args[i + 1:]
        return _located(gast.Call(func=e.func, args=args, keywords=e.keywords), e)

    def sorts_keys(self, e: gast.Call) -> bool:
        """`sorted(params)`, `sorted(params.keys())`, `sorted(params.items())` of a dict: left as written,
        for srcgrad/flatten.py to sort the keys of the flattened argument at transform time."""
        arg = e.args[0] if len(e.args) == 1 else None
        if isinstance(arg, gast.Call) and isinstance(arg.func, gast.Attribute) and not arg.args \
                and arg.func.attr in ("keys", "items"):
            return True
        if not isinstance(arg, gast.Name):
            return False
        keys = {n.target.id for n in gast.walk(self.root) if isinstance(n, (gast.For, gast.comprehension))
                and n.iter is e and isinstance(n.target, gast.Name)}  # for k in sorted(params)
        return any(isinstance(n, gast.Subscript) and isinstance(n.value, gast.Name) and n.value.id == arg.id
                   and (isinstance(n.slice, gast.Constant) and isinstance(n.slice.value, str)
                        or isinstance(n.slice, gast.Name) and n.slice.id in keys)
                   for n in gast.walk(self.root))

    def constant_ref(self, value: Any, base: str) -> str:
        """A fresh name of this function bound to `value` (a library function the rewrite calls)."""
        bound = self.fresh(base)
        self.info.closure[bound] = types.CellType(value)
        return bound

    def map_as_comprehension(self, e: gast.Call) -> gast.ListComp:
        """`map(f, xs, ys)` -> `[f(a, b) for a, b in zip(xs, ys)]`: a list (map's iterator is consumed
        once by the loops and calls users write around it)."""
        fn, seqs = e.args[0], e.args[1:]
        items = [self.fresh("item") for _ in seqs]
        if len(seqs) == 1:
            target, it = _name(items[0], store=True), seqs[0]
        else:
            target = gast.Tuple(elts=[_name(i, store=True) for i in items], ctx=gast.Store())
            it = gast.Call(func=_name("zip"), args=list(seqs), keywords=[])
        body = gast.Call(func=fn, args=[_name(i) for i in items], keywords=[])
        comp = gast.ListComp(elt=body, generators=[
            gast.comprehension(target=target, iter=it, ifs=[], is_async=0)])
        return _located(comp, e)

    # ------------------------------------------------------------------------------------ comprehensions
    def comprehension(self, e: Any, pre: list, into: str | None = None) -> gast.expr:
        """A list comprehension or generator expression as loops appending to a list. `into`: build the
        list in that name (the statement `into = [...]`), else in a fresh one, returned."""
        gens = e.generators
        if any(g.is_async for g in gens):
            return e
        mapping: dict[str, str] = {}
        for g in gens:
            for n in gast.walk(g.target):
                if isinstance(n, gast.Name) and n.id in self.used_outside:
                    mapping[n.id] = self.fresh(n.id)
        for g in gens:
            _rename(g.target, mapping)
            g.ifs = [_rename(c, mapping) for c in g.ifs]
        for g in gens[1:]:
            g.iter = _rename(g.iter, mapping)
        elt = _rename(e.elt, mapping)
        def head(k: int, it_pre: list) -> Any:
            nonlocal elt
            g = gens[k]
            def not_bound_again(name: str) -> bool:  # by a later `for` of the comprehension
                return not any(isinstance(n, gast.Name) and n.id == name for later in gens[k + 1:]
                               for n in gast.walk(later.target))

            found = self.tuple_generator(g.target, g.iter, it_pre, not_bound_again)
            if found is None:
                return self.expr(g.iter, it_pre)
            g.target, it, substitute = found
            if substitute:
                elt = _substitute(elt, substitute)
                g.ifs = [_substitute(c, substitute) for c in g.ifs]
                for later in gens[k + 1:]:
                    later.iter = _substitute(later.iter, substitute)
                    later.ifs = [_substitute(c, substitute) for c in later.ifs]
            return it

        first_iter = head(0, pre)  # evaluated in the enclosing scope, once
        result = into or self.fresh("items")
        out = [_assign(result, gast.List(elts=[], ctx=gast.Load()), e)]

        def loops(k: int, it: Any) -> list:
            g = gens[k]
            body: list = []
            inner = body
            for cond in g.ifs:
                cond_pre: list = []
                c = self.expr(cond, cond_pre)
                inner.extend(cond_pre)
                branch = _located(gast.If(test=c, body=[], orelse=[]), cond)
                inner.append(branch)
                inner = branch.body
            if k + 1 < len(gens):
                it_pre: list = []
                nxt = head(k + 1, it_pre)
                inner.extend(it_pre)
                inner.extend(loops(k + 1, nxt))
            else:
                elt_pre: list = []
                value = self.expr(elt, elt_pre)
                inner.extend(elt_pre)
                append = gast.Call(func=gast.Attribute(value=_name(result), attr="append", ctx=gast.Load()),
                                   args=[value], keywords=[])
                inner.append(_located(gast.Expr(value=append), e))
            return [_located(gast.For(target=g.target, iter=it, body=body, orelse=[], type_comment=None), e)]

        out.extend(loops(0, first_iter))
        pre.extend(out)
        return _name(result)

    def tuple_generator(self, target: Any, it: Any, pre: list, name_ok: Any) -> tuple | None:
        """`for a, b in pairs(xs)` / `for batch in minibatches(X, y, 2)` over a generator (a nested one or
        the user's) each of whose yields is a tuple of k values: the generator inlined as k lists, one per
        position, and the loop `for a, b in zip(pairs_0, pairs_1)`. A single name as the target (where
        `name_ok(name)`: it is only read, and only in the loop) is read as the tuple of the loop's names:
        `xb, yb = batch` is `xb, yb = (batch_0, batch_1)`. Returns (target, iterable, {name: that tuple}
        to substitute in the loop), or None where this does not apply."""
        if not (isinstance(it, gast.Call) and isinstance(it.func, gast.Name)):
            return None
        fn = it.func.id
        obj = None
        if fn in self.helpers:
            if self.helpers[fn].generator is None:
                return None
            body = self.helpers[fn].generator
        elif fn in self.local_names or fn in self.partials or self.parse is None:
            return None
        else:
            obj = self.global_value(fn)
            if not (_user_function(obj, generators=True) and obj.__code__.co_flags & inspect.CO_GENERATOR):
                return None
            body = self.parse(obj).node.body
        width = _yield_width(body)
        if width is None or _returns_in_loop_else(body) \
                or _generator_as_list(body, [f"yielded_{j}" for j in range(width)]) is None:
            return None
        if isinstance(target, (gast.Tuple, gast.List)):
            if len(target.elts) != width or any(isinstance(t, gast.Starred) for t in target.elts):
                return None
        elif not (isinstance(target, gast.Name) and name_ok(target.id)):
            return None
        if obj is not None:
            helper = self.borrow(obj, it)
        else:
            h = self.helpers[fn]
            helper = Helper(h.name, h.args, h.generator, h.node, h.defaults)
        substitute: dict = {}
        if isinstance(target, gast.Name):
            parts = [self.fresh(f"{target.id}_{j}") for j in range(width)]
            substitute[target.id] = gast.Tuple(elts=[_name(p) for p in parts], ctx=gast.Load())
            target = _located(gast.Tuple(elts=[_name(p, store=True) for p in parts], ctx=gast.Store()),
                              target)
        helper.body = _generator_as_list(helper.body, [self.fresh("yielded") for _ in range(width)])
        lists = self.inline(helper, it, pre, width=width)
        if "zip" not in self.bound:
            self.bound["zip"] = "zip" if self.global_value("zip") is builtins.zip and "zip" not in \
                self.local_names else self.constant_ref(builtins.zip, "zip_lists")
        return target, _located(gast.Call(func=_name(self.bound["zip"]), args=list(lists.elts), keywords=[]),
                                it), substitute

    def inlines_callee(self, call: gast.Call) -> bool:
        """Whether `call` is to a user function this pass inlines (it is given a function)."""
        return (isinstance(call.func, gast.Name) and self.parse is not None
                and call.func.id not in self.local_names and _user_function(self.global_value(call.func.id)))

    def global_value(self, name: str) -> Any:
        """What a name not bound in the function denotes (a closure value, a global, a builtin)."""
        if name in self.info.closure:
            try:
                return self.info.closure[name].cell_contents
            except ValueError:
                return None
        if name in self.info.globals:
            return self.info.globals[name]
        b = self.info.globals.get("__builtins__", builtins)
        return (b if isinstance(b, dict) else vars(b)).get(name)

    def borrow(self, fn: Any, at: Any) -> "Helper":
        """Another function's tree as a helper to inline: its lines kept as its own (FunctionInfo.borrowed:
        errors and comments name its file and line), the globals it reads bound here under its names (or
        renamed where this function's names mean something else)."""
        if fn.__name__ in self.inlining or fn.__code__ in _LOWERING:
            raise located(self.info, at, f"{fn.__name__} calls itself, at a call srcgrad inlines (it is "
                          "given a function, takes *args or **kwargs, or returns a function)",
                          "pass the function's values as arrays, or write the recursion as a loop.")
        other = self.parse(fn)
        node = other.node
        base = max([len(self.info.lines), *self.info.borrowed]) + 1
        for n in gast.walk(node):
            line = getattr(n, "lineno", None)
            if line is not None:
                self.info.borrowed[base + line - 1] = (other.filename_of(line), other.user_lineno(line),
                                                       other.source_line(line))
                n.lineno = base + line - 1
                if getattr(n, "end_lineno", None) is not None:
                    n.end_lineno = base + n.end_lineno - 1
        for line, where in other.borrowed.items():
            self.info.borrowed[base + line - 1] = where
        renames: dict[str, str] = {}
        for name, value in other.free_names().items():
            if name not in self.local_names and self.global_value(name) is value:
                continue
            bound = self.fresh(f"{fn.__name__}_{name}")
            self.info.closure[bound] = types.CellType(value)
            renames[name] = bound
        body = [_rename(s, renames) for s in node.body]
        defaults = {p: self.constant(v, f"{fn.__name__}_{p}")
                    for p, v in _defaults_of(fn, node.args).items()}
        body = [s for s in body if not (isinstance(s, gast.Expr) and isinstance(s.value, gast.Constant)
                                        and isinstance(s.value.value, str))]
        return Helper(fn.__name__, node.args, body, node, defaults)

    def constant(self, value: Any, base: str) -> gast.expr:
        if value is None or isinstance(value, (bool, int, float, str)):
            return gast.Constant(value=value, kind=None)
        bound = self.fresh(base)
        self.info.closure[bound] = types.CellType(value)
        return _name(bound)

    # ------------------------------------------------------------------------------------ inlining
    def inline(self, h: Helper, e: gast.Call, pre: list, width: int = 0) -> gast.expr:
        """The helper's body at this call: arguments bound, locals renamed, returns assigned. `width`:
        the call's value is unpacked into that many names, so a helper whose every return is a tuple of
        that many values assigns them to as many results (a tuple of the names is the call's value)."""
        if h.name in self.inlining:
            raise located(self.info, e, f"{h.name} calls itself through another nested function",
                          "define the helpers at module level.")
        bound, packed = self.bind(h, e, pre)
        params = [p.id for p in h.args.posonlyargs + h.args.args + h.args.kwonlyargs]
        star_kw = h.args.kwarg.id if h.args.kwarg is not None else None

        body = copy.deepcopy(h.body)
        nonlocals = {n for s in _walk_local(body) if isinstance(s, gast.Nonlocal) for n in s.names}
        body = [s for s in body if not isinstance(s, gast.Nonlocal)]
        assigned = {n.id for n in _walk_local(body) if isinstance(n, gast.Name)
                    and isinstance(n.ctx, gast.Store)} | {
            n.name for n in _walk_local(body) if isinstance(n, gast.FunctionDef)}
        assigned -= nonlocals | self.state
        prefix = h.name if h.name != "lambda" else "arg"
        mapping: dict[str, str] = {}
        binding: list = []
        lambdas: dict[str, Helper] = {}
        # a function the helper returns reads its parameters later, when the caller's variable given may
        # hold another value: each parameter is then a variable of its own
        deferred = _returns_function(h.body)
        for p in params:
            arg = bound[p]
            if isinstance(arg, gast.Lambda) and p not in assigned:
                # a lambda argument: a helper of the inlined body, inlined where the body calls it
                mapping[p] = self.fresh(f"{prefix}_{p}")
                ret = gast.copy_location(gast.Return(value=arg.body), arg.body)
                lambdas[mapping[p]] = Helper(mapping[p], arg.args, [ret], arg, {})
                continue
            direct = isinstance(arg, gast.Constant) or (
                isinstance(arg, gast.Name) and arg.id not in nonlocals and arg.id not in assigned
                and not deferred)
            if direct and p not in assigned:
                mapping[p] = None  # substituted by the argument itself
                continue
            mapping[p] = self.fresh(f"{prefix}_{p}")
            binding.append(_assign(mapping[p], arg, e))
        for v in packed:
            mapping[v] = self.fresh(f"{prefix}_{v}")
        for v in sorted(assigned - set(params) - set(packed)):
            mapping[v] = self.fresh(f"{prefix}_{v}")
        substitute = {p: bound[p] for p, m in mapping.items() if m is None}
        renames = {k: v for k, v in mapping.items() if v is not None}
        body = [_substitute(_rename(s, renames), substitute) for s in body]
        for v, items in packed.items():
            values = {k: self.packed_item(a, f"{mapping[v]}_{k}", lambdas, binding, e)
                      for k, a in items.items()}
            binding.extend(self.pack(mapping[v], v, h.name, values, body, e, keywords=v == star_kw))
        for n in _walk_local(body):
            if isinstance(n, gast.FunctionDef) and n.name in renames:
                n.name = renames[n.name]  # a helper's own nested helper, renamed with its calls

        made = _returned_function(body)
        if made is not None:
            body = body[:-1]  # `return run`: the call's value is the function itself, not a variable
        returns = returns_in(body)
        result: Any = None
        if width and returns and all(isinstance(r.value, gast.Tuple) and len(r.value.elts) == width
                                     for r in returns):
            result = [self.fresh(f"{prefix}_value") for _ in range(width)]
        elif returns:
            result = self.fresh(f"{prefix}_value")
        if result:
            body = _eliminate_returns(body, result, lambda base: self.fresh(f"{prefix}_{base}"))
        saved = dict(self.helpers)
        self.helpers.update(lambdas)
        self.inlining.append(h.name)
        try:
            lowered = self.block(body, body)
        finally:
            self.inlining.pop()
            inner_helpers, self.helpers = self.helpers, saved
        pre.extend(binding)
        pre.extend(_located(s, e) for s in lowered)
        if made is None and isinstance(result, str) and result in inner_helpers:
            made = result  # `return fns[0]`, `return lambda z: c * z`: the value is a helper
        if made is not None:
            written = next((k for k, v in renames.items() if v == made), made)
            return self.returned_function(h, made, written, inner_helpers, e)
        if isinstance(result, list):
            return gast.Tuple(elts=[_name(r) for r in result], ctx=gast.Load())
        return _name(result) if result else gast.Constant(value=None, kind=None)

    def bind(self, h: Helper, e: gast.Call, pre: list) -> tuple[dict, dict]:
        """The call's arguments (lowered into `pre`) bound to the helper's parameters as Python binds
        them: {parameter: argument}, defaults filled in, and {*args or **kwargs name: {index or keyword:
        argument}} for the arguments those collect."""
        args = [self.expr(a, pre) for a in e.args]
        kws = {k.arg: self.expr(k.value, pre) for k in e.keywords}
        if any(isinstance(a, gast.Starred) for a in args) or None in kws:
            raise located(self.info, e, f"srcgrad does not unpack *args or **kwargs into the nested "
                          f"function {h.name}", "pass the arguments one by one.")
        positional = [p.id for p in h.args.posonlyargs + h.args.args]
        params = positional + [p.id for p in h.args.kwonlyargs]
        star = h.args.vararg.id if h.args.vararg is not None else None
        star_kw = h.args.kwarg.id if h.args.kwarg is not None else None
        if len(args) > len(positional) and star is None:
            raise located(self.info, e, f"{h.name}() takes {len(positional)} positional arguments but "
                          f"{len(args)} were given")
        bound: dict[str, gast.expr] = dict(zip(positional, args, strict=False))
        packed: dict[str, dict] = {}
        if star is not None:
            packed[star] = dict(enumerate(args[len(positional):]))
        if star_kw is not None:
            packed[star_kw] = {}
        by_keyword = params[len(h.args.posonlyargs):]
        for k, v in kws.items():
            if k in by_keyword and k not in bound:
                bound[k] = v
            elif star_kw is not None and k not in by_keyword:
                packed[star_kw][k] = v
            else:
                raise located(self.info, e, f"{h.name}() got an unexpected or repeated argument {k!r}")
        for p in params:
            if p not in bound:
                if p not in h.defaults:
                    raise located(self.info, e, f"{h.name}() missing the argument {p!r}")
                bound[p] = copy.deepcopy(h.defaults[p])
        return bound, packed

    def returned_function(self, h: Helper, made: str, written: str, inner_helpers: dict,
                          e: gast.Call) -> gast.Name:
        """The value of a call to a helper that returns one of its own nested functions: that function,
        a helper from here on, inlined wherever it is called. The helpers it may call (its siblings, the
        lambdas given to the helper) stay known: their names are fresh, so nothing else is shadowed."""
        if made not in inner_helpers:
            raise located(self.info, e, f"{h.name}() returns its nested function {written!r}, "
                          "which srcgrad cannot inline (it is decorated, recursive, takes a value it "
                          "reads from a loop's else, or is used other than by calling it)",
                          "define the function at module level and pass what it closes over as arguments.")
        self.helpers = inner_helpers
        self.function_values.add(made)
        return gast.copy_location(_name(made), e)

    def packed_item(self, a: gast.expr, holder: str, lambdas: dict, binding: list, at: Any) -> gast.expr:
        """One argument an inlined helper's *args or **kwargs collects, as what its reads are replaced by:
        a lambda becomes a helper (inlined where it is called), a helper or a module's function stays a
        name for it, a constant stays itself; any other value is held in a variable `holder`, evaluated
        here as the call evaluates it (the helper may read it later: from a function it returns)."""
        if isinstance(a, gast.Lambda):
            name = self.fresh(holder)
            ret = gast.copy_location(gast.Return(value=a.body), a.body)
            lambdas[name] = Helper(name, a.args, [ret], a, {})
            self.function_values.add(name)
            return gast.copy_location(_name(name), a)
        if isinstance(a, gast.Name) and a.id in self.helpers:
            self.function_values.add(a.id)
            return copy.deepcopy(a)
        if isinstance(a, gast.Constant) or self.static_function(a):
            return copy.deepcopy(a)
        name = self.fresh(holder)
        binding.append(_assign(name, a, at))
        return gast.copy_location(_name(name), a)

    def static_function(self, e: gast.expr) -> bool:
        """`np.tanh`, `act`: a name (or a module's attribute) this function does not bind, for a function."""
        obj = self.static_callee(e)
        return callable(obj) and not isinstance(obj, type) and not hasattr(obj, "shape")

    def is_function(self, e: gast.expr) -> bool:
        """A helper (or a lambda being made one), or a function `static_function` names."""
        return isinstance(e, gast.Name) and (e.id in self.helpers or e.id in self.function_values) \
            or self.static_function(e)

    def pack(self, var: str, written: str, owner: str, values: dict, body: list, at: Any,
             keywords: bool) -> list:
        """An inlined helper's *args (`keywords`: its **kwargs) `written`, now `var`, collecting `values`:
        each `f(*var)` / `f(**var)` in the body passes them one by one (`self.parts`), each `for g in var`
        is unrolled (`unrolled`). The tuple (dict) itself is built only for another read, and refused
        where a value is a function (no tuple of values holds a helper) or the name is bound again."""
        everything = list(gast.walk(gast.Module(body=body, type_ignores=[])))
        stores = [n for n in everything if isinstance(n, gast.Name) and n.id == var
                  and not isinstance(n.ctx, gast.Load)]
        if not stores and not _changed_in_place(everything, var):
            len_ = self.global_value("len") is builtins.len and "len" not in self.local_names
            body[:] = [_KnownItems(var, values, keywords, len_).visit(s) for s in body]
            everything = list(gast.walk(gast.Module(body=body, type_ignores=[])))
        functions = any(self.is_function(v) for v in values.values())
        other = stores or _read_other_than_unpacked(everything, var, loops=functions)
        if other and functions:
            raise located(self.info, other[0], f"{written} (the *args or **kwargs of {owner}) "
                          "holds functions, which srcgrad reads only where they are unpacked into a call "
                          f"(f(*{written})) or looped over (for g in {written})",
                          "call each function where it is passed on.")
        if not stores:
            self.parts[var] = values
        if not other:
            return []
        if keywords:
            built: gast.expr = gast.Dict(keys=[gast.Constant(value=k, kind=None) for k in values],
                                         values=list(values.values()))
        else:
            built = gast.Tuple(elts=list(values.values()), ctx=gast.Load())
        return [_assign(var, copy.deepcopy(built), at)]


_SIZE_ATTRIBUTES = frozenset({"shape", "ndim", "size", "dtype"})
_STATIC_CALLS = frozenset({"len", "int", "bool", "str", "round", "isinstance", "hasattr", "type", "id"})


def _carries_no_derivative(e: Any, owner: str) -> bool:
    """Whether `e` is, by its form alone, a value no derivative flows into: constants, `.shape`/`.ndim`/
    `.size`/`.dtype` of anything, `len()`, `int()` and the like, comparisons, and attributes of `owner`
    (the object being written, whose array attributes are never written this way), combined by
    arithmetic."""
    if isinstance(e, gast.Constant):
        return True
    if isinstance(e, gast.Attribute):
        return e.attr in _SIZE_ATTRIBUTES or (isinstance(e.value, gast.Name) and e.value.id == owner)
    if isinstance(e, gast.Subscript):
        return _carries_no_derivative(e.value, owner)
    if isinstance(e, gast.Call):
        return isinstance(e.func, gast.Name) and e.func.id in _STATIC_CALLS
    if isinstance(e, gast.Compare):
        return True
    if isinstance(e, gast.BinOp):
        return _carries_no_derivative(e.left, owner) and _carries_no_derivative(e.right, owner)
    if isinstance(e, gast.UnaryOp):
        return _carries_no_derivative(e.operand, owner)
    if isinstance(e, gast.BoolOp):
        return all(_carries_no_derivative(v, owner) for v in e.values)
    if isinstance(e, gast.IfExp):
        return _carries_no_derivative(e.body, owner) and _carries_no_derivative(e.orelse, owner)
    if isinstance(e, gast.Tuple):
        return all(_carries_no_derivative(v, owner) for v in e.elts)
    return False


def _substitute(node: Any, values: dict[str, gast.expr]) -> Any:
    """Each read of a parameter in `values` replaced by the argument expression (a name or constant)."""
    if not values:
        return node

    def substitute(n: gast.Name, value: gast.expr) -> Any:
        if isinstance(n.ctx, gast.Load):
            return gast.copy_location(copy.deepcopy(value), n)
        return n

    return _ScopedNames(values, substitute).visit(node)


@dataclass
class _LoopExit:
    """The returns inside one outermost loop of an inlined helper: the flag a return sets to its number
    (0 while none has) and, by number, the values returned."""

    flag: str
    values: list


def _assign_result(result: str | list[str], value: Any, at: Any) -> list:
    if isinstance(result, list):
        return [_assign(r, v, at) for r, v in zip(result, value.elts, strict=True)]
    return [_assign(result, value if value is not None else gast.Constant(value=None, kind=None), at)]


def _eliminate_returns(stmts: list, result: str | list[str], fresh: Any,
                       loop: _LoopExit | None = None) -> list:
    """A body whose `return v` become `result = v` (`r0, r1 = a, b` one by one where `result` is a list
    of names), the statements after a branch that returns moved into the branches that fall through.

    A return inside a loop sets the loop's flag (a fresh name) to its number and leaves the loop with
    `break`, an enclosing loop of the helper is left in turn where the flag is set, and after the
    outermost loop `if flag == k: result = v_k` for each return, else the statements that follow the
    loop. The value is computed after the loop: nothing runs between the `break` and there, so it reads
    the same variables, and the result is never assigned inside a loop (a tuple assigned in a loop is
    not a value the compiler reads). `loop`: the outermost loop `stmts` are inside."""
    out: list = []
    for i, s in enumerate(stmts):
        if isinstance(s, gast.Return):
            if loop is None:
                out.extend(_assign_result(result, s.value, s))
                return out
            loop.values.append((s.value, s))
            out.append(_assign(loop.flag, gast.Constant(value=len(loop.values), kind=None), s))
            out.append(gast.copy_location(gast.Break(), s))
            return out
        if isinstance(s, gast.If) and returns_in([s]):
            if loop is not None:
                # inside a loop a branch that returns leaves the loop: what follows is the rest of the body
                s.body = _eliminate_returns(s.body, result, fresh, loop)
                s.orelse = _eliminate_returns(s.orelse, result, fresh, loop)
                out.append(s)
                continue
            rest = stmts[i + 1:]
            s.body = _eliminate_returns(s.body + copy.deepcopy(rest), result, fresh)
            s.orelse = _eliminate_returns(s.orelse + copy.deepcopy(rest), result, fresh)
            out.append(s)
            return out
        if isinstance(s, (gast.For, gast.While)) and returns_in(s.body):
            if loop is not None:
                # a loop in a loop: the flag, set inside, leaves the enclosing loop too; the rest of the body
                # runs where it is not set (the test `not flag`, which the compiler keeps per iteration:
                # a test of the bare name would be read after the rest has set it)
                s.body = _eliminate_returns(s.body, result, fresh, loop)
                out.append(s)
                rest = _eliminate_returns(stmts[i + 1:], result, fresh, loop)
                out.append(_located(gast.If(test=gast.UnaryOp(op=gast.Not(), operand=_name(loop.flag)),
                                            body=rest or [gast.Pass()],
                                            orelse=[gast.copy_location(gast.Break(), s)]), s))
                return out
            exit_ = _LoopExit(fresh("returned"), [])
            out.append(_assign(exit_.flag, gast.Constant(value=0, kind=None), s))
            s.body = _eliminate_returns(s.body, result, fresh, exit_)
            out.append(s)
            after = _eliminate_returns(stmts[i + 1:], result, fresh)
            if not stmts[i + 1:] and not isinstance(result, list):
                after = _assign_result(result, None, s)  # falls off the end
            for k in range(len(exit_.values), 0, -1):
                value, at = exit_.values[k - 1]
                test = gast.Compare(left=_name(exit_.flag), ops=[gast.Eq()],
                                    comparators=[gast.Constant(value=k, kind=None)])
                branch = gast.If(test=test, body=_assign_result(result, value, at), orelse=after)
                after = [_located(branch, at)]
            out.extend(after)
            return out
        out.append(s)
    if stmts and loop is None and not isinstance(result, list):
        out.append(_assign(result, gast.Constant(value=None, kind=None), stmts[-1]))
    return out


def _returned_function(body: list) -> str | None:
    """`def run(x): ...` ... `return run` ending a helper's body, its only return: the name of the nested
    function (or lambda bound to a name) it returns, defined once in the body; None otherwise."""
    if not body or not isinstance(body[-1], gast.Return) or not isinstance(body[-1].value, gast.Name):
        return None
    if len(returns_in(body)) != 1:
        return None
    name = body[-1].value.id
    defined = [found for s in body[:-1] for part in _split_lambdas(s)
               if (found := _helper_of(part)) is not None and found[0] == name]
    binds = [n for n in _walk_local(body[:-1]) if isinstance(n, gast.Name) and n.id == name
             and not isinstance(n.ctx, gast.Load) or isinstance(n, gast.FunctionDef) and n.name == name]
    return name if len(defined) == 1 and len(binds) == 1 else None


_MUTATORS = frozenset({"pop", "popitem", "update", "setdefault", "clear"})


def _changed_in_place(nodes: list, var: str) -> bool:
    """`var[k] = v`, `del var[k]`, `var.update(...)`: the dict `var` changed after it was made."""
    for n in nodes:
        if isinstance(n, gast.Subscript) and not isinstance(n.ctx, gast.Load) \
                and isinstance(n.value, gast.Name) and n.value.id == var:
            return True
        if isinstance(n, gast.Attribute) and n.attr in _MUTATORS and isinstance(n.value, gast.Name) \
                and n.value.id == var:
            return True
    return False


class _KnownItems(gast.NodeTransformer):
    """The reads of a *args tuple or **kwargs dict `var` whose items are known at the call, each replaced
    by what it reads: `var[k]` and `var.get(k, d)` by the item (or d), `len(var)` and `k in var` (keys
    of a dict) by the constant."""

    def __init__(self, var: str, values: dict, keywords: bool, len_is_builtin: bool):
        self.var, self.values, self.keywords, self.len_is_builtin = var, values, keywords, len_is_builtin

    def held(self, e: Any) -> bool:
        return isinstance(e, gast.Name) and e.id == self.var

    def item(self, key: Any) -> Any:
        if not self.keywords and isinstance(key, int) and not isinstance(key, bool) \
                and -len(self.values) <= key < len(self.values):
            key %= len(self.values)
        return copy.deepcopy(self.values[key]) if key in self.values else None

    def visit_Subscript(self, n: gast.Subscript) -> Any:
        self.generic_visit(n)
        key = n.slice
        if isinstance(key, gast.UnaryOp) and isinstance(key.op, gast.USub) \
                and isinstance(key.operand, gast.Constant) and isinstance(key.operand.value, int):
            key = gast.Constant(value=-key.operand.value, kind=None)  # args[-1]
        if self.held(n.value) and isinstance(n.ctx, gast.Load) and isinstance(key, gast.Constant):
            found = self.item(key.value)
            return gast.copy_location(found, n) if found is not None else n
        return n

    def visit_Call(self, n: gast.Call) -> Any:
        self.generic_visit(n)
        if self.len_is_builtin and isinstance(n.func, gast.Name) and n.func.id == "len" \
                and len(n.args) == 1 and self.held(n.args[0]) and not n.keywords:
            return gast.copy_location(gast.Constant(value=len(self.values), kind=None), n)
        if self.keywords and isinstance(n.func, gast.Attribute) and n.func.attr == "get" \
                and self.held(n.func.value) and 1 <= len(n.args) <= 2 and not n.keywords \
                and isinstance(n.args[0], gast.Constant):
            found = self.item(n.args[0].value)
            if found is None:
                found = n.args[1] if len(n.args) == 2 else gast.Constant(value=None, kind=None)
            return gast.copy_location(found, n)
        return n

    def visit_Compare(self, n: gast.Compare) -> Any:
        self.generic_visit(n)
        if self.keywords and len(n.ops) == 1 and isinstance(n.ops[0], (gast.In, gast.NotIn)) \
                and self.held(n.comparators[0]) and isinstance(n.left, gast.Constant):
            answer = (n.left.value in self.values) == isinstance(n.ops[0], gast.In)
            return gast.copy_location(gast.Constant(value=answer, kind=None), n)
        return n


def _walk_loop_body(body: list):
    """Every node of a loop's body that belongs to the loop itself: not inside a nested loop or function
    (whose `break` is its own)."""
    stack = list(body)
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, (gast.For, gast.While)):
            stack.extend(n.orelse)
            continue
        if isinstance(n, (gast.FunctionDef, gast.Lambda)):
            continue
        stack.extend(gast.iter_child_nodes(n))


def _read_by_returned_function(body: list) -> set[str]:
    """The names the nested function a body returns reads (`_returned_function`): its sibling helpers
    stay defined as written, for the function, left as written too, to call where a caller inlines
    this body (`Lowering.returned_function`)."""
    made = _returned_function(body)
    if made is None:
        return set()
    return {n.id for s in body for part in _split_lambdas(s) if (found := _helper_of(part)) is not None
            and found[0] == made for b in found[3] for n in gast.walk(b) if isinstance(n, gast.Name)}


def _returns_function(body: list) -> bool:
    """Whether a body returns one of its nested functions or a lambda (the function then outlives the
    call, reading the call's parameters whenever it is called)."""
    return _returned_function(body) is not None or any(isinstance(r.value, gast.Lambda)
                                                       for r in returns_in(body))


def _read_other_than_unpacked(nodes: list, var: str, loops: bool) -> list:
    """The reads of `var` among `nodes` (every node of a body) other than `f(*var)`, `f(**var)` and,
    where `loops` (the loops are unrolled), `for v in var`."""
    unpacked = set()
    for n in nodes:
        if isinstance(n, gast.Call):
            unpacked |= {id(a.value) for a in n.args if isinstance(a, gast.Starred)}
            unpacked |= {id(k.value) for k in n.keywords if k.arg is None}
        elif isinstance(n, gast.For) and loops:
            unpacked.add(id(n.iter))
    return [n for n in nodes if isinstance(n, gast.Name) and n.id == var and isinstance(n.ctx, gast.Load)
            and id(n) not in unpacked]


def _walk_outside_comprehensions(root: Any):
    stack = [root]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, _COMPREHENSIONS):
            # the first iterable is read in the enclosing scope
            stack.append(n.generators[0].iter)
            continue
        stack.extend(gast.iter_child_nodes(n))


# ------------------------------------------------------------------------------------------ forwarding
def name_forwarded_parameters(info: Any) -> None:
    """`def wrapper(x, *args, power=1, **kwargs): ... fn(x, *args, **kwargs) ...`, where `args` and
    `kwargs` are read only to forward them, together, to one function `fn`: the wrapper given fn's
    remaining parameters as its own, `def wrapper(x, w, bias=0.0, *, power=1)`, and the call passing
    them, `fn(x, w, bias)`. Every call fn accepts binds the same values either way (and every call it
    refuses is refused either way), but named parameters are what the compiler differentiates, where
    *args would hide which argument is which. Left as written where that cannot be said: another read
    of args or kwargs, forwarding to several functions or to one taking *args itself, a default that
    is not a literal, a parameter of fn named like a name of the wrapper."""
    root = info.node
    a = root.args
    if a.vararg is None or a.kwarg is None or a.posonlyargs:
        return
    calls = _forwarding_calls(root, [p.id for p in a.args], a.vararg.id, a.kwarg.id)
    if not calls:
        return
    targets = {id(t): t for t in (_global_of(info, root, c.func.id) for c in calls)}
    if len(targets) != 1:
        return
    inner = next(iter(targets.values()))
    named = _forwarded_signature(a, inner)
    if named is None or not _calls_bind_to(named, info.fn):
        return
    added = {p.id for p in named.args + named.kwonlyargs} - {p.id for p in a.args + a.kwonlyargs}
    if added & ({n.id for n in gast.walk(root) if isinstance(n, gast.Name)}
                | {n.name for n in gast.walk(root) if isinstance(n, gast.FunctionDef)}):
        return  # fn's parameter would take a name the wrapper uses for something else
    n_inner_kwonly = inner.__code__.co_kwonlyargcount
    inner_kwonly = [p.id for p in named.kwonlyargs[len(named.kwonlyargs) - n_inner_kwonly:]]
    for c in calls:
        c.args = [_name(p.id) for p in named.args]
        c.keywords = [gast.keyword(arg=k, value=_name(k)) for k in inner_kwonly]
        _located(c, c)
    root.args = named


def _calls_bind_to(named: gast.arguments, fn: Any) -> bool:
    """Whether calls of `fn` bind to the parameters `named` (parse.signature_of: a wrapper taking only
    *args and **kwargs, made with functools.wraps, binds to the function it wraps). Callers bind their
    arguments to the function's signature; the function's tree must take the same parameters, or an
    argument could reach no parameter of the tree (or the wrong one)."""
    from srcgrad.parse import signature_of  # noqa: PLC0415 -- parse imports this module

    try:
        sig = signature_of(fn)
    except (TypeError, ValueError):
        return False
    P = inspect.Parameter
    defaults = [None] * (len(named.args) - len(named.defaults)) + list(named.defaults)
    want = [(p.id, P.POSITIONAL_OR_KEYWORD, d) for p, d in zip(named.args, defaults, strict=True)]
    want += [(p.id, P.KEYWORD_ONLY, d) for p, d in zip(named.kwonlyargs, named.kw_defaults, strict=True)]
    have = list(sig.parameters.values())
    return len(have) == len(want) and all(
        p.name == n and p.kind is k and (p.default is P.empty if d is None else
                                         type(p.default) is type(d.value) and p.default == d.value)
        for p, (n, k, d) in zip(have, want, strict=True))


def _forwarding_calls(root: gast.FunctionDef, own: list[str], star: str, kw: str) -> list | None:
    """The calls `fn(<own positional parameters>, *star, **kw)` of the function, when they are the only
    reads of star and kw and neither is bound again; None otherwise."""
    calls, forwarded = [], set()
    for n in gast.walk(root):
        if not isinstance(n, gast.Call):
            continue
        reads = [x for x in n.args if isinstance(x, gast.Starred) and isinstance(x.value, gast.Name)
                 and x.value.id == star] + [k for k in n.keywords if k.arg is None
                                             and isinstance(k.value, gast.Name) and k.value.id == kw]
        if not reads:
            continue
        shape_ok = (isinstance(n.func, gast.Name) and len(n.args) == len(own) + 1
                    and all(isinstance(x, gast.Name) and x.id == p for x, p in zip(n.args, own, strict=False))
                    and len(n.keywords) == 1 and len(reads) == 2)
        if not shape_ok:
            return None
        calls.append(n)
        forwarded.update(id(r.value) for r in reads)
    for n in gast.walk(root):
        if isinstance(n, gast.Name) and n.id in (star, kw) and id(n) not in forwarded \
                and not isinstance(n.ctx, gast.Param):
            return None  # read otherwise (len(args), kwargs.get(...)), or bound again
    return calls


def _global_of(info: Any, root: gast.FunctionDef, name: str) -> Any:
    """The function a name the function does not bind denotes (a closure value or a global), else None."""
    if any(isinstance(n, gast.Name) and n.id == name and not isinstance(n.ctx, gast.Load)
           for n in gast.walk(root)) or any(isinstance(n, gast.FunctionDef) and n.name == name
                                            for n in gast.walk(root)):
        return None
    value = info.resolve(name)  # (a closure value, a global: recorded, so a rebinding rebuilds)
    return value if isinstance(value, types.FunctionType) else None


def _literal(value: Any) -> gast.Constant | None:
    if value is None or isinstance(value, (bool, int, float, str)):
        return gast.Constant(value=value, kind=None)
    return None


def _forwarded_signature(a: gast.arguments, inner: types.FunctionType) -> gast.arguments | None:
    """The wrapper's parameters (`a`: positional ones passed on first, then *args, keyword-only ones of
    its own, **kwargs) with *args and **kwargs replaced by the parameters of `inner` they reach; None
    where `inner` takes *args or **kwargs, where the wrapper's positional parameters are more than inner
    takes or cover fewer than its positional-only ones, or where a default is not a literal."""
    code = inner.__code__
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
        return None
    k = len(a.args)
    positional = list(code.co_varnames[:code.co_argcount])
    kwonly = list(code.co_varnames[code.co_argcount:code.co_argcount + code.co_kwonlyargcount])
    if k > len(positional) or code.co_posonlyargcount > k:
        return None
    values = list(inner.__defaults__ or ())
    first_default = len(positional) - len(values)
    defaults = [d for d in a.defaults]
    for i in range(k, len(positional)):
        if i >= first_default:
            d = _literal(values[i - first_default])
            if d is None:
                return None
            defaults.append(d)
        elif defaults:
            return None  # a parameter without a default after one with: no signature says that
    kw_values = inner.__kwdefaults__ or {}
    kw_defaults = list(a.kw_defaults)
    for p in kwonly:
        d = _literal(kw_values[p]) if p in kw_values else None
        if p in kw_values and d is None:
            return None
        kw_defaults.append(d)
    if not all(isinstance(d, gast.Constant) for d in defaults):
        return None
    params = [p.id for p in a.args] + positional[k:] + [p.id for p in a.kwonlyargs] + kwonly
    if len(set(params)) != len(params):
        return None

    def param(name: str) -> gast.Name:
        return gast.Name(id=name, ctx=gast.Param(), annotation=None, type_comment=None)

    return gast.arguments(
        args=[*a.args, *(param(p) for p in positional[k:])], posonlyargs=[], vararg=None,
        kwonlyargs=[*a.kwonlyargs, *(param(p) for p in kwonly)], kw_defaults=kw_defaults, kwarg=None,
        defaults=defaults)


_LOWERING: list = []  # the code of each function being lowered, outermost first (a borrow parses another)


def lower(info: Any, parse: Any = None) -> None:
    """Lower `info.node`'s comprehensions, `map`s, nested helpers and local lambdas in place. `parse`
    (parse.parse_function) reads another function's tree, for a call passing a function to it."""
    name_forwarded_parameters(info)
    lowering = Lowering(info, info.node)
    lowering.parse = parse
    code = getattr(getattr(info.fn, "__func__", info.fn), "__code__", None)
    _LOWERING.append(code)
    try:
        lowering.run(info.node)
    finally:
        _LOWERING.pop()
    from srcgrad.flatten import flatten_held_objects  # noqa: PLC0415

    flatten_held_objects(info, parse)


_LIBRARIES = frozenset({"numpy", "scipy", "srcgrad", "jax", "torch", "autograd", "dask", "cupy", "math"})


def _user_function(obj: Any, generators: bool = False) -> bool:
    """A Python function of the user's (not a library's), whose code can be inlined."""
    if not isinstance(obj, types.FunctionType) or obj.__code__.co_name == "<lambda>":
        return False
    module = (getattr(obj, "__module__", None) or "").split(".")[0]
    if module in _LIBRARIES or (module in sys.stdlib_module_names and module != "__main__"):
        return False
    if getattr(obj, "__wrapped__", None) is not None or (
            obj.__code__.co_flags & inspect.CO_GENERATOR and not generators):
        return False
    return "site-packages" not in (obj.__code__.co_filename or "")


def _defaults_of(fn: Any, a: gast.arguments) -> dict:
    """The default of each parameter of `a` (the tree parse_function gave for fn) that has one: those
    calls of fn bind to (parse.signature_of), which are the tree's own parameters' defaults; the tree's
    literals where its parameters are not fn's own (a forwarding wrapper's, named_forwarded_parameters)."""
    from srcgrad.parse import signature_of  # noqa: PLC0415 -- parse imports this module

    names = [p.id for p in a.posonlyargs + a.args + a.kwonlyargs]
    try:
        params = signature_of(fn).parameters
    except (TypeError, ValueError):
        params = {}
    out = {p: params[p].default for p in names if p in params and params[p].default is not params[p].empty}
    if set(params) != set(names):
        positional = a.posonlyargs + a.args
        written = list(zip(positional[len(positional) - len(a.defaults):], a.defaults, strict=True))
        written += list(zip(a.kwonlyargs, a.kw_defaults, strict=True))
        out = {p.id: d.value for p, d in written if isinstance(d, gast.Constant)}
    return out


_RETURNS_FUNCTION: "weakref.WeakKeyDictionary[types.CodeType, bool]" = weakref.WeakKeyDictionary()


def _returns_own_function(fn: types.FunctionType) -> bool:
    """Whether fn's body ends by returning one of its nested functions (`_returned_function`), read
    from its source alone (cached per code object: every call of a user function asks)."""
    from srcgrad.parse import _source_of  # noqa: PLC0415 -- parse imports this module

    code = fn.__code__
    hit = _RETURNS_FUNCTION.get(code)
    if hit is None:
        try:
            src, _, _ = _source_of(fn)
            node = gast.parse(textwrap.dedent(src)).body[0]
            hit = isinstance(node, gast.FunctionDef) and _returns_function(node.body)
        except (TransformError, SyntaxError, IndexError):
            hit = False
        _RETURNS_FUNCTION[code] = hit
    return hit


def _user_code(obj: Any) -> bool:
    """A Python function of the user's, not a lambda nor a generator: its tree can be inlined (a
    decorator's wrapper too: parse_function reads the wrapper's own tree, or the wrapped function's where
    the wrapper only forwards the call)."""
    if not isinstance(obj, types.FunctionType) or obj.__code__.co_name == "<lambda>" \
            or obj.__code__.co_flags & inspect.CO_GENERATOR:
        return False
    module = (getattr(obj, "__module__", None) or "").split(".")[0]
    if module in _LIBRARIES or (module in sys.stdlib_module_names and module != "__main__"):
        return False
    # functools.wraps gives a library's wrapper (a srcgrad transform, a cache) the user's module: its
    # code's file says whose it is
    return not os.path.abspath(obj.__code__.co_filename or "").startswith(_LIBRARY_DIRS)


_LIBRARY_DIRS = tuple(os.path.join(os.path.abspath(d), "") for d in {
    os.path.dirname(os.path.abspath(__file__)),
    sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})


def _forwarded_to(fn: Any, keywords: bool) -> Any:
    """The function that `fn`, a decorator's wrapper, only forwards its call to (`def wrapper(*args,
    **kwargs): return inner(*args, **kwargs)`, or through a local that is returned unchanged: parse's
    _passes_through), followed through stacked wrappers; None where `fn` is no such wrapper. Only a
    wrapper with no parameters of its own but *args and **kwargs is followed: the call's arguments reach
    the wrapped function exactly as given (a named parameter could be renamed, or have another default,
    on the way). `keywords`: the call passes keywords, which a wrapper without **kwargs would refuse."""
    from srcgrad.parse import _passes_through  # noqa: PLC0415 -- parse imports this module

    found = None
    for _ in range(16):
        code = getattr(fn, "__code__", None)
        if not isinstance(fn, types.FunctionType) or code.co_argcount or code.co_kwonlyargcount \
                or code.co_posonlyargcount \
                or not code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
            break
        if keywords and not code.co_flags & inspect.CO_VARKEYWORDS:
            break
        candidates = [getattr(fn, "__wrapped__", None)]
        for cell in fn.__closure__ or ():
            try:
                candidates.append(cell.cell_contents)
            except ValueError:
                continue
        inner = next((c for c in candidates if isinstance(c, types.FunctionType) and c is not fn
                      and _passes_through(fn, c)), None)
        if inner is None:
            break
        fn = found = inner
    return found


def _function_value(e: Any, lowering: "Lowering") -> bool:
    """An argument that is a function: a lambda, a local helper, or a name for a function object."""
    if isinstance(e, gast.Lambda):
        return True
    if isinstance(e, gast.Name) and isinstance(e.ctx, gast.Load):
        if e.id in lowering.helpers:
            return True
        if e.id in lowering.local_names:
            return False
        obj = lowering.global_value(e.id)
        return callable(obj) and not isinstance(obj, type) and not hasattr(obj, "shape")
    return False
