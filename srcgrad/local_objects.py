"""Objects made inside a differentiated function to hold values, read as one variable per attribute
(front end, part of the lowering):

    st = State()                         st_q, st_p = q0, p0
    st.q, st.p = q0, p0          ->      for _ in range(5):
    for _ in range(5):                       (st_q, st_p) = leapfrog(st_q, st_p, 0.2)
        (st.q, st.p) = leapfrog(...)     return np.sum(st_q ** 2 + st_p)
    return np.sum(st.q ** 2 + st.p)

An attribute of such an object is a variable in all but spelling, so the rest of the compiler
differentiates it like one. Only where that is exactly so: the object is made once, by calling a class of
the user's whose instances start empty (no `__init__` of its own) or a dataclass (its fields set from
the call's arguments and defaults), and it is used through attribute reads and writes only: never passed,
returned, compared, called, or read by a nested function. Anything else is left as written (and
differentiated, or refused, as before).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import gast

_NESTED = (gast.FunctionDef, gast.AsyncFunctionDef, gast.Lambda, gast.ClassDef, gast.ListComp,
           gast.SetComp, gast.DictComp, gast.GeneratorExp)


def replace_local_objects(root: gast.FunctionDef, resolve: Callable[[str], Any],
                          fresh: Callable[[str], str]) -> None:
    """Rewrite, in place, each local object of `root` that qualifies (see the module's docstring) into
    one variable per attribute. `resolve(name)` gives the object a global or closure name refers to;
    `fresh(base)` makes a name not used in the function."""
    for var, made, cls in _candidates(root, resolve):
        fields = _initial_fields(made, cls)
        if fields is None:
            continue
        field_names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
        uses = [n for n in gast.walk(root) if isinstance(n, gast.Attribute)
                and isinstance(n.value, gast.Name) and n.value.id == var]
        written = {n.attr for n in uses if not isinstance(n.ctx, gast.Load)}
        of_class = {n.attr for n in uses if hasattr(cls, n.attr) and n.attr not in field_names}
        if any(a in written or callable(getattr(cls, a)) for a in of_class):
            continue  # a method, or a class attribute the instance shadows: more than its values
        names: dict[str, str] = {}

        def variable(attr: str, var: str = var, names: dict = names) -> str:
            if attr not in names:
                names[attr] = fresh(f"{var}_{attr}")
            return names[attr]

        _rename_attributes(root, var, variable, of_class, made.value.func.id)
        setup = [gast.copy_location(gast.Assign(targets=[gast.Name(id=variable(f), ctx=gast.Store(),
                                                                   annotation=None, type_comment=None)],
                                                value=v, type_comment=None), made)
                 for f, v in fields]
        _replace_statement(root, made, setup)


def _candidates(root: gast.FunctionDef, resolve: Callable[[str], Any]) -> list:
    """(variable, the statement making its object, the class) for each local object used through its
    attributes only."""
    stores: dict[str, list] = {}
    plain_uses: dict[str, int] = {}
    nested_uses: set[str] = set()
    params = {a.id for a in gast.walk(root.args) if isinstance(a, gast.Name)}

    def walk(node: Any, nested: bool) -> None:
        for child in gast.iter_child_nodes(node):
            inner = nested or isinstance(child, _NESTED)
            if isinstance(child, gast.Attribute) and isinstance(child.value, gast.Name):
                if inner:
                    nested_uses.add(child.value.id)
                continue  # st.q, read or written: the use that qualifies
            if isinstance(child, gast.Name):
                if inner:
                    nested_uses.add(child.id)
                elif isinstance(child.ctx, gast.Store):
                    stores.setdefault(child.id, []).append(child)
                else:
                    plain_uses[child.id] = plain_uses.get(child.id, 0) + 1
            walk(child, inner)

    walk(root, False)
    found = []
    for s in root.body:
        if not (isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name)
                and isinstance(s.value, gast.Call) and isinstance(s.value.func, gast.Name)):
            continue
        var = s.targets[0].id
        if len(stores.get(var, ())) != 1 or plain_uses.get(var) or var in nested_uses or var in params:
            continue
        cls = resolve(s.value.func.id)
        if isinstance(cls, type) and _holds_values(cls):
            found.append((var, s, cls))
    return found


def _holds_values(cls: type) -> bool:
    """A class of the user's whose instances are plain records: a dataclass, or a class with no
    `__init__`, `__setattr__` or `__getattr__` of its own."""
    module = getattr(cls, "__module__", "") or ""
    if module == "builtins" or module.split(".")[0] in ("numpy", "srcgrad", "torch", "jax", "dask"):
        return False
    if getattr(cls, "__slots__", None) is not None:
        return False
    special = ("__setattr__", "__getattr__", "__getattribute__", "__set_name__")
    if any(getattr(cls, m, None) is not getattr(object, m, None) for m in special if hasattr(cls, m)):
        return False
    if dataclasses.is_dataclass(cls):
        return not getattr(cls, "__post_init__", None)
    return cls.__init__ is object.__init__ and cls.__new__ is object.__new__


def _initial_fields(made: gast.Assign, cls: type) -> list | None:
    """(field, value expression) the constructor call sets, in order: nothing for an empty record, a
    dataclass's fields from the arguments and the defaults (None where the call cannot be read so)."""
    call = made.value
    if any(isinstance(a, gast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return None
    if not dataclasses.is_dataclass(cls):
        return [] if not call.args and not call.keywords else None
    fields = [f for f in dataclasses.fields(cls) if f.init]
    if len(call.args) > len(fields):
        return None
    given = dict(zip((f.name for f in fields), call.args, strict=False))
    for k in call.keywords:
        if k.arg in given or k.arg not in {f.name for f in fields}:
            return None
        given[k.arg] = k.value
    out = []
    for f in fields:
        if f.name in given:
            out.append((f.name, given[f.name]))
        elif isinstance(f.default, (int, float, bool, str, type(None))):  # MISSING is none of these
            out.append((f.name, gast.Constant(value=f.default, kind=None)))
        else:
            return None  # a default_factory, or a default that is an object shared by every instance
    return out


def _rename_attributes(root: gast.FunctionDef, var: str, variable: Callable[[str], str],
                       of_class: set[str], class_name: str) -> None:
    """`st.q` -> the variable of attribute q; `st.gain`, a class attribute, -> `State.gain`."""
    class Rename(gast.NodeTransformer):
        def visit_Attribute(self, node: gast.Attribute) -> Any:
            if isinstance(node.value, gast.Name) and node.value.id == var:
                if node.attr in of_class:
                    node.value = gast.Name(id=class_name, ctx=gast.Load(), annotation=None,
                                           type_comment=None)
                    return node
                return gast.copy_location(gast.Name(id=variable(node.attr), ctx=node.ctx, annotation=None,
                                                    type_comment=None), node)
            self.generic_visit(node)
            return node

    Rename().visit(root)


def _replace_statement(root: gast.FunctionDef, old: Any, new: list) -> None:
    root.body = [x for s in root.body for x in (new if s is old else [s])]
