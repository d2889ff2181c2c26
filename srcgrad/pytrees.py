"""Pytrees: arguments that are dicts, lists, tuples, named tuples, dataclasses or objects of arrays.

JAX users pass their parameters as nested containers (`params = {"W": W, "b": b}`) and expect the
gradient in the same structure. srcgrad differentiates with respect to arrays and floats, so a structured
argument is flattened into its leaves: the transform is built for a *flat* version of the function, one
parameter per leaf (`params_W`, `params_b`), whose body the front end rewrites to read the leaves
(srcgrad/flatten.py), and the gradient's leaves are put back into the argument's structure here.

A structure (`Node`) is part of the specialization key: the same function called with another set of
keys is built again. Leaves are arrays, Python numbers and Tensors; an object's attributes that are
neither leaves nor containers (a string, a function, a sub-module object) are static parts of its node,
read as they were when the variant was built.

Reading a structure per call costs more than the tiny programs it serves, so a call structured as an
earlier one is read by generated code (`QuickReader`, used by srcgrad/leafwise.py's plans): one check per
container against what that earlier call held, the leaves bound to names, no Node made.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import keyword
import types
from typing import Any, Callable, Iterator

import numpy as np

LEAF_TYPES = (np.ndarray, np.generic, float, int, bool, complex)


class Node:
    """The structure of one value: kind ('leaf', 'dict', 'list', 'tuple', 'namedtuple', 'dataclass',
    'object', 'static'), the keys of its children (dict keys, field or attribute names, indices), the
    children, the class (named tuples, dataclasses, objects) and, for 'static', the value itself.
    (A plain class with slots: one is made for each structured argument of a call no plan serves,
    srcgrad/leafwise.py.)"""

    __slots__ = ("kind", "keys", "children", "cls", "value", "_key", "_n")

    def __init__(self, kind: str, keys: tuple = (), children: tuple = (), cls: Any = None,
                 value: Any = None):
        self.kind, self.keys, self.children, self.cls, self.value = kind, keys, children, cls, value
        static = id(value) if kind == "static" else None
        self._key = (kind, keys, tuple(c._key for c in children), cls, static)
        self._n = -1

    def __repr__(self) -> str:
        return f"Node({self.kind!r}, {self.keys!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    @property
    def n_leaves(self) -> int:
        """Parameter slots: one per leaf, plus the object itself for an object."""
        if self._n < 0:
            self._n = 1 if self.kind == "leaf" else sum(c.n_leaves for c in self.children) + (
                self.kind == "object")
        return self._n

    def child(self, key: Any) -> "Node | None":
        for k, c in zip(self.keys, self.children, strict=True):
            if k == key:
                return c
        return None

    def describe(self) -> str:
        return {"dict": "dict", "list": "list", "tuple": "tuple", "namedtuple": "named tuple",
                "dataclass": "dataclass", "object": "object"}.get(self.kind, self.kind)


def _is_leaf(x: Any) -> bool:
    if isinstance(x, LEAF_TYPES):
        return True
    # Tensors and arrays of other namespaces (CuPy, Dask): anything with a shape and a dtype
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def is_structured(x: Any) -> bool:
    """A container srcgrad flattens: dict, list, tuple, named tuple or dataclass instance, holding at
    least one leaf."""
    if _is_leaf(x):
        return False
    if isinstance(x, (dict, list, tuple)) or (dataclasses.is_dataclass(x) and not isinstance(x, type)):
        return structure(x).n_leaves > 0
    return False


# methods `@dataclass` writes into a class: not the user's own behaviour
_DATACLASS_MADE = frozenset({"__init__", "__repr__", "__eq__", "__hash__", "__lt__", "__le__", "__gt__",
                             "__ge__", "__setattr__", "__delattr__", "__getstate__", "__setstate__",
                             "__replace__"})


def is_model_dataclass(x: Any) -> bool:
    """A dataclass instance whose class defines methods of its own (`__call__`, `forward`, a property):
    a record of arrays that is also a model. It is flattened as an object (the instance itself one slot,
    so `poly(x)` and `poly.forward(x)` are followed with `self` flattened), and its gradient is still
    an instance of its class, as for any dataclass. A dataclass with no methods stays a plain record."""
    if not dataclasses.is_dataclass(x) or isinstance(x, type):
        return False
    return _defines_methods(type(x))


@functools.lru_cache(maxsize=512)
def _defines_methods(cls: type) -> bool:
    """Whether `cls` (or a base of the user's) defines a method, property or class/static method
    beyond those `@dataclass` generates."""
    for c in cls.__mro__:
        if c is object or (c.__module__ or "").split(".")[0] in ("builtins", "typing", "abc"):
            continue
        for name, v in vars(c).items():
            if name not in _DATACLASS_MADE and isinstance(
                    v, (types.FunctionType, property, staticmethod, classmethod)):
                return True
    return False


def is_object(x: Any, _seen: frozenset = frozenset()) -> bool:
    """An instance of a user class whose attributes hold arrays, or objects that do (a model and its
    layers): flattened when it is differentiated, its gradient a dict keyed by attribute name (an
    instance of its class for a dataclass with methods, `is_model_dataclass`)."""
    if _is_leaf(x) or isinstance(x, (dict, list, tuple, type, types.ModuleType, types.FunctionType)):
        return False
    if id(x) in _seen:
        return False
    if dataclasses.is_dataclass(x):
        return is_model_dataclass(x)
    attrs = getattr(x, "__dict__", None)
    if not isinstance(attrs, dict):
        return False
    # an instance of the user's class (its methods are followed even where it holds no array)
    return (type(x).__module__ or "").split(".")[0] not in ("builtins", "numpy", "srcgrad", "functools")


def _array_valued(v: Any) -> bool:
    """An object attribute that is one of its parameters: a float or an array (not an int counter, a
    name or a setting, which the compiled code reads and writes through the object itself)."""
    if isinstance(v, (bool, int, str, np.integer)):
        return False
    return _is_leaf(v) or is_object(v) or (isinstance(v, (dict, list, tuple))
                                           and structure(v, objects=True).n_leaves > 0)


def structure(x: Any, objects: bool = False, _seen: frozenset = frozenset()) -> Node:
    """The Node of `x`. `objects`: an object of a user class is flattened too: the object itself is its
    first slot (passed along, so the compiled code reads and writes its other attributes), then its
    array-valued attributes."""
    if _is_leaf(x):
        return Node("leaf")
    if id(x) in _seen:
        return Node("static", value=x)  # a cycle (a child holding its parent)
    _seen = _seen | {id(x)}
    if _is_namedtuple(x):
        return Node("namedtuple", tuple(type(x)._fields), tuple(structure(v, objects, _seen) for v in x),
                    type(x))
    if isinstance(x, dict):
        return Node("dict", tuple(x), tuple(structure(v, objects, _seen) for v in x.values()))
    if isinstance(x, (list, tuple)):
        return Node(type(x).__name__, tuple(range(len(x))), tuple(structure(v, objects, _seen) for v in x))
    if objects and is_model_dataclass(x):
        return _object_node(x, objects, _seen)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        names = tuple(f.name for f in dataclasses.fields(x))
        return Node("dataclass", names, tuple(structure(getattr(x, n), objects, _seen) for n in names),
                    type(x))
    if objects and is_object(x):
        return _object_node(x, objects, _seen)
    return Node("static", value=x)


def _object_node(x: Any, objects: bool, _seen: frozenset) -> Node:
    """An object's Node: its array-valued attributes are its children (the rest, counters and settings,
    are read through the object itself, its first slot)."""
    names = tuple(k for k, v in vars(x).items() if _array_valued(v))
    return Node("object", names, tuple(structure(getattr(x, n), objects, _seen) for n in names), type(x))


_QUICK_LEAVES = frozenset({np.ndarray, float, int, bool, np.float64, np.float32})
_BY_KEY: dict = {}  # the quick key of a dict/list/tuple nest -> its Node


class _NotQuick(Exception):
    pass


_QUICK_STATIC = frozenset({int, bool, str, type(None), np.int64})
_USER_CLASS: dict[type, bool] = {}


def _user_class(t: type) -> bool:
    """Whether instances of `t` are objects `is_object` flattens (its checks that depend on the type)."""
    hit = _USER_CLASS.get(t)
    if hit is None:
        hit = _USER_CLASS[t] = (
            not issubclass(t, (dict, list, tuple, type, types.ModuleType, types.FunctionType, *LEAF_TYPES))
            and not dataclasses.is_dataclass(t) and not hasattr(t, "shape")
            and (t.__module__ or "").split(".")[0] not in ("builtins", "numpy", "srcgrad", "functools"))
    return hit


def _quick_key(x: Any, out: list, objects: bool, depth: int = 0) -> Any:
    """A hashable key of x's structure, collecting its leaves into `out` on the way (None for a leaf);
    raises _NotQuick for anything but dicts, lists and tuples of arrays and numbers, and (`objects`)
    user objects whose attributes are arrays, numbers, settings or such objects."""
    t = type(x)
    if t in _QUICK_LEAVES:
        out.append(x)
        return None
    if depth > 16:
        raise _NotQuick
    if t is dict:
        return (0, tuple(x), tuple([_quick_key(v, out, objects, depth + 1) for v in x.values()]))
    if t is list:
        return (1, tuple([_quick_key(v, out, objects, depth + 1) for v in x]))
    if t is tuple:
        return (2, tuple([_quick_key(v, out, objects, depth + 1) for v in x]))
    if objects and _user_class(t) and isinstance(getattr(x, "__dict__", None), dict):
        out.append(x)  # the object itself is its first slot
        parts = []
        for k, v in x.__dict__.items():
            tv = type(v)
            if tv in _QUICK_STATIC:
                continue  # a counter or a setting: read through the object itself
            if tv is np.ndarray or tv is float or tv is np.float64 or tv is np.float32:
                out.append(v)
                parts.append((k, None))
            elif _user_class(tv):
                parts.append((k, _quick_key(v, out, objects, depth + 1)))
            else:
                raise _NotQuick
        return (3, t, tuple(parts))
    raise _NotQuick


def structure_and_leaves(x: Any, objects: bool = False) -> tuple[Node, list]:
    """`structure(x, objects)` and `leaves(x, node)` in one pass. Called on each call of a transform
    given a pytree that no plan serves (a structure not seen before, `Leafwise.serve`), so a nest of
    dicts, lists and tuples of arrays is read once and its Node found by its key (the Nodes of other
    structures are made each time)."""
    out: list = []
    try:
        key = _quick_key(x, out, objects)
    except _NotQuick:
        node = structure(x, objects)
        return node, leaves(x, node)
    node = _BY_KEY.get(key)
    if node is None:
        node = structure(x, objects)
        if len(_BY_KEY) < 4096:
            _BY_KEY[key] = node
    return node, out


def leaves(x: Any, node: Node) -> list:
    """The leaves of `x`, in the order of `node`."""
    out: list = []

    def walk(v: Any, n: Node) -> None:
        if n.kind == "leaf":
            out.append(v)
        elif n.kind == "static":
            return
        elif n.kind == "dict":
            for k, c in zip(n.keys, n.children, strict=True):
                walk(v[k], c)
        elif n.kind in ("list", "tuple", "namedtuple"):
            for item, c in zip(v, n.children, strict=True):
                walk(item, c)
        elif isinstance(v, dict):  # an object's tangent or gradient, given as a dict of its attributes
            if n.kind == "object":
                out.append(None)
            for k, c in zip(n.keys, n.children, strict=True):
                walk(v[k], c)
        else:
            if n.kind == "object":
                out.append(v)  # the object itself: its other attributes are read through it
            for k, c in zip(n.keys, n.children, strict=True):
                walk(getattr(v, k), c)

    walk(x, node)
    return out


def rebuild(node: Node, values: Iterator | list, gradient: bool = False) -> Any:
    """A value of structure `node` from its leaves. `gradient`: the leaves are gradients, so an object
    becomes a dict keyed by attribute name, and a static part becomes None (it has no derivative)."""
    it = iter(values)

    def build(n: Node) -> Any:
        if n.kind == "leaf":
            return next(it)
        if n.kind == "static":
            return None if gradient else n.value
        obj = next(it) if n.kind == "object" else None
        parts = [build(c) for c in n.children]
        if n.kind == "dict":
            return dict(zip(n.keys, parts, strict=True))
        if n.kind == "list":
            return parts
        if n.kind == "tuple":
            return tuple(parts)
        if n.kind == "namedtuple":
            return n.cls(*parts)
        if n.kind == "dataclass":
            if gradient:
                return n.cls(**dict(zip(n.keys, parts, strict=True)))
            return dataclasses.replace(n.value, **dict(zip(n.keys, parts, strict=True))) \
                if n.value is not None else n.cls(**dict(zip(n.keys, parts, strict=True)))
        # an object: its gradient is a dict of its array-valued attributes; its value, the object
        if dataclasses.is_dataclass(n.cls):
            return _model_dataclass(n, obj, parts, gradient)
        if gradient:
            return {k: p for k, p, c in zip(n.keys, parts, n.children, strict=True) if c.kind != "static"}
        return obj

    return build(node)


def _model_dataclass(n: Node, obj: Any, parts: list, gradient: bool) -> Any:
    """A dataclass with methods, flattened as an object, rebuilt. Its gradient is an instance of its
    class holding the gradients (None in the fields that are not arrays), as for a plain dataclass,
    made without running `__init__`/`__post_init__` (a gradient need not be a valid model). Its value is
    the object itself while the leaves are its own, else a copy holding the leaves given."""
    values = dict(zip(n.keys, parts, strict=True))
    if not gradient:
        if obj is not None and all(getattr(obj, k, None) is v for k, v in values.items()):
            return obj
        out = copy.copy(obj) if obj is not None else object.__new__(n.cls)
    else:
        out = object.__new__(n.cls)
        for f in dataclasses.fields(n.cls):
            object.__setattr__(out, f.name, None)
    for k, v in values.items():
        object.__setattr__(out, k, v)
    return out


def leaf_names(param: str, node: Node) -> list[str]:
    """Readable names for the leaves of parameter `param` (`params_W`, `layers_0_b`), in leaf order."""
    out: list[str] = []

    def walk(prefix: str, n: Node) -> None:
        if n.kind == "leaf":
            out.append(prefix)
        elif n.kind != "static":
            if n.kind == "object":
                out.append(prefix)  # the object itself
            for k, c in zip(n.keys, n.children, strict=True):
                walk(f"{prefix}_{_identifier(k)}", c)

    walk(param, node)
    return out


def _identifier(key: Any) -> str:
    text = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in str(key))
    return text or "item"


def differentiable(x: Any) -> bool:
    """Whether a leaf carries a derivative: a float or an array of floats (ints and bools are static)."""
    t = type(x)
    if t is np.ndarray:
        return x.dtype.kind == "f"
    if t is float:
        return True
    if isinstance(x, (bool, int, np.integer, np.bool_)):
        return False
    if isinstance(x, (float, np.floating)):
        return True
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return False
    kind = getattr(dtype, "kind", None)
    return kind == "f" if kind is not None else "float" in str(dtype)


# what a position a call's structure is not read at may hold, for `QuickReader.passed`: types that are
# never pytrees, so the same type means the same answer (not structured, differentiable or not)
_PASSED = _QUICK_LEAVES | _QUICK_STATIC


def _leaf_ok(v: Any, diff: bool | None) -> bool:
    """A leaf `QuickReader` accepts whose type is not the one it was made from: any type `_quick_key`
    reads as a leaf, carrying a derivative as the one it was made from did (`diff`; None: not asked)."""
    return type(v) in _QUICK_LEAVES and (diff is None or differentiable(v) is diff)


def _passed_ok(v: Any, diff: bool | None) -> bool:
    return type(v) in _PASSED and (diff is None or differentiable(v) is diff)


class QuickReader:
    """Writes straight-line Python that reads a call's arguments as `structured` + `structure_and_leaves`
    would, for arguments like those it is made from: a nest of dicts, lists, tuples and user objects of
    arrays and numbers (what `_quick_key` reads). Each value's line checks that it has the structure the
    value it was made from had (the same `_quick_key`, so the same Node) and, at a differentiated
    position, that each leaf carries a derivative as that one's did; on any difference the code returns
    `MISS` (the caller then reads the arguments the slow way). The leaves are bound to local names, in
    `leaves(x, node)` order. Raises `NotQuick` for a value `_quick_key` does not read."""

    MISS = object()

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {"_MISS": self.MISS, "_leaf_ok": _leaf_ok, "_passed_ok": _passed_ok,
                                          "_differentiable": differentiable}
        self._n = 0

    def const(self, value: Any) -> str:
        for name, v in self.namespace.items():
            if v is value and name.startswith("_c"):
                return name
        name = f"_c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def fresh(self) -> str:
        self._n += 1
        return f"_v{self._n}"

    def key(self, k: Any) -> str:
        return repr(k) if type(k) is str else self.const(k)

    def miss(self, condition: str) -> None:
        self.lines.append(f"if {condition}: return _MISS")

    def _leaf_test(self, x: Any, var: str, diff: bool | None) -> str:
        test = f"type({var}) is {self.const(type(x))}"
        if type(x) is np.ndarray and diff is not None:
            test += f" and {var}.dtype.kind {'==' if diff else '!='} 'f'"
        return test

    def passed(self, x: Any, var: str, wrt: bool) -> None:
        """A value at a position read for structure that was not structured (an array, a number, a
        setting): the same holds while its type is one that is never structured."""
        if type(x) not in _PASSED:
            raise NotQuick
        diff = differentiable(x) if wrt else None
        self.miss(f"not ({self._leaf_test(x, var, diff)}) and not _passed_ok({var}, {diff})")

    def value(self, x: Any, var: str, objects: bool, wrt: bool, out: list[str], depth: int = 0) -> None:
        """Lines checking `var` is structured as `x` is, binding its leaves to names appended to `out`."""
        t = type(x)
        if t in _QUICK_LEAVES:
            diff = differentiable(x) if wrt else None
            self.miss(f"not ({self._leaf_test(x, var, diff)}) and not _leaf_ok({var}, {diff})")
            out.append(var)
            return
        if depth > 16:
            raise NotQuick
        if t is dict:
            self.miss(f"type({var}) is not dict or tuple({var}) != {self.const(tuple(x))}")
            for k, v in x.items():
                child = self.fresh()
                self.lines.append(f"{child} = {var}[{self.key(k)}]")
                self.value(v, child, objects, wrt, out, depth + 1)
            return
        if t is list or t is tuple or issubclass(t, tuple) and hasattr(t, "_fields"):
            # a named tuple's class fixes its fields; a list's or tuple's length is checked
            kind = t.__name__ if t is list or t is tuple else self.const(t)
            self.miss(f"type({var}) is not {kind} or len({var}) != {len(x)}")
            children = [self.fresh() for _ in x]
            if children:
                self.lines.append(f"{', '.join(children)}, = {var}")
            for v, child in zip(x, children, strict=True):
                self.value(v, child, objects, wrt, out, depth + 1)
            return
        if dataclasses.is_dataclass(t) and not _defines_methods(t):
            # a record of arrays: its fields are its class's. No object below one (`structured` asks
            # `is_structured`, which reads a dataclass without flattening objects)
            self.miss(f"type({var}) is not {self.const(t)}")
            for f in dataclasses.fields(x):
                if not f.name.isidentifier() or keyword.iskeyword(f.name):
                    raise NotQuick
                child = self.fresh()
                self.lines.append(f"{child} = {var}.{f.name}")
                self.value(getattr(x, f.name), child, False, wrt, out, depth + 1)
            return
        attrs = getattr(x, "__dict__", None)
        if objects and _user_class(t) and type(attrs) is dict:
            self.miss(f"type({var}) is not {self.const(t)}")
            d = self.fresh()
            self.lines.append(f"{d} = {var}.__dict__")
            self.miss(f"type({d}) is not dict or tuple({d}) != {self.const(tuple(attrs))}")
            if wrt and ("dtype" in attrs or hasattr(t, "dtype") or hasattr(t, "__getattr__")):
                # the object's own slot is differentiated where it has a dtype (`differentiable`)
                self.miss(f"_differentiable({var}) is not {differentiable(x)}")
            out.append(var)  # the object itself is its first slot
            for k, v in attrs.items():
                tv = type(v)
                if tv in _QUICK_STATIC:
                    self.miss(f"type({d}[{self.key(k)}]) not in {self.const(_QUICK_STATIC)}")
                    continue
                if not (tv is np.ndarray or tv is float or tv is np.float64 or tv is np.float32
                        or _user_class(tv)):
                    raise NotQuick
                child = self.fresh()
                self.lines.append(f"{child} = {d}[{self.key(k)}]")
                if tv in _QUICK_LEAVES:
                    diff = differentiable(v) if wrt else None
                    self.miss(f"not ({self._leaf_test(v, child, diff)}) and not "
                              f"(type({child}) in {self.const(_OBJECT_LEAVES)} and "
                              f"_leaf_ok({child}, {diff}))")
                    out.append(child)
                else:
                    self.value(v, child, objects, wrt, out, depth + 1)
            return
        raise NotQuick


# an object's attributes `_quick_key` reads as leaves (an int is a setting, read through the object)
_OBJECT_LEAVES = frozenset({np.ndarray, float, np.float64, np.float32})
NotQuick = _NotQuick


def gradient_source(node: Node, slots: list[str | None], const: Callable[[Any], str]) -> str:
    """An expression building `rebuild(node, values, gradient=True)` for a Node `QuickReader` reads,
    from the names (None: no derivative) of its leaves' gradients, in leaf order (an object's own slot
    included, its name unused); `const(value)` names a value the expression refers to (a class)."""
    it = iter(slots)

    def build(n: Node) -> str:
        if n.kind == "leaf":
            return next(it) or "None"
        if n.kind == "static":
            return "None"
        if n.kind == "object":
            next(it)
        parts = [build(c) for c in n.children]
        if n.kind == "list":
            return f"[{', '.join(parts)}]"
        if n.kind == "tuple":
            return f"({''.join(p + ', ' for p in parts)})"
        if n.kind == "namedtuple":
            return f"{const(n.cls)}({', '.join(parts)})"
        if n.kind == "dataclass":
            return f"{const(n.cls)}({', '.join(f'{k}={p}' for k, p in zip(n.keys, parts, strict=True))})"
        if n.kind in ("dict", "object") and not dataclasses.is_dataclass(n.cls) \
                and all(type(k) in (str, int, bool) for k in n.keys):
            return "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(n.keys, parts, strict=True)) + "}"
        raise NotQuick

    return build(node)
