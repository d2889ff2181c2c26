"""Structured parameters read as their leaves (front end, after desugar): the body of a function whose
parameter `params` is a dict `{"W": ..., "b": ...}` is rewritten to take `params_W, params_b`:

    h = np.tanh(params["W"] @ x + params["b"])      ->      h = np.tanh(params_W @ x + params_b)

The structure (srcgrad/pytrees.py `Node`) is known when the variant is built, so every read with a
constant key or attribute, `len`, `.keys()/.values()/.items()`, iteration (unrolled: the structure is
static) and tuple unpacking resolves at transform time, and nothing of the container is left to
differentiate. A structured value passed whole to another user function becomes a call to that
function's own flat variant; a method called on a flattened object (`self.forward(x)`) likewise. What
cannot be resolved (a dict built anew, a container returned) is refused with the line and what to write.

The flat function itself (`flat_function`) is a real Python function taking the leaves: called directly
(from code paths the compiler leaves as they are), it rebuilds the structures and calls the original.
"""

from __future__ import annotations

import builtins
import copy
import functools
import inspect
import sys
import threading
import types
import weakref
from typing import Any, Callable

import gast

from srcgrad.errors import TransformError, located
from srcgrad.outputs import dict_outputs, tuple_returning
from srcgrad.pytrees import Node, is_object, leaf_names, rebuild, structure

_FLAT: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_SCOPES = (gast.FunctionDef, gast.Lambda, gast.ListComp, gast.GeneratorExp, gast.SetComp, gast.DictComp)


def flat_function(fn: Callable, structures: dict[int, Node]) -> Callable:
    """`fn` with each positional parameter i in `structures` replaced by the leaves of structure
    structures[i] (one parameter per leaf). Cached per (fn, structures), so transforms of it are too."""
    key = tuple(sorted(structures.items(), key=lambda kv: kv[0]))
    try:
        per_fn = _FLAT.setdefault(fn, {})
    except TypeError:
        per_fn = {}
    hit = per_fn.get(key)
    if hit is not None:
        return hit
    code = fn.__code__
    params = list(code.co_varnames[:code.co_argcount])
    n_kwonly = code.co_kwonlyargcount
    varargs = structures.get(VARARGS)
    if varargs is not None:
        # `def f(x, *springs)` called with n extra arguments: springs_0 ... springs_n-1
        params.append(code.co_varnames[code.co_argcount + n_kwonly])
        structures = {**structures, len(params) - 1: varargs}
    flat_params: list[str] = []
    slots: list[tuple[int, Node | None, int]] = []  # per original parameter: (first flat index, node, n)
    structured = {params[i] for i in structures if 0 <= i < len(params)}
    taken = (set(code.co_varnames) - structured) | set(code.co_names)
    for i, p in enumerate(params):
        node = structures.get(i)
        if node is None:
            slots.append((len(flat_params), None, 1))
            flat_params.append(p)
            continue
        names = [_fresh(n, taken) for n in leaf_names(p, node)]
        slots.append((len(flat_params), node, len(names)))
        flat_params.extend(names)

    def call_original(*flat: Any, **kwargs: Any) -> Any:
        args = []
        for start, node, n in slots:
            if node is None:
                args.append(flat[start])
            else:
                args.append(rebuild(node, flat[start:start + n]))
        if varargs is not None:
            args = args[:-1] + list(args[-1])
        return fn(*args, *flat[len(flat_params):], **kwargs)

    arglist = ", ".join(flat_params)
    kwonly = list(code.co_varnames[code.co_argcount:code.co_argcount + n_kwonly])
    header = arglist + (", *, " + ", ".join(kwonly) if kwonly else "")
    passed = arglist + "".join(f", {k}={k}" for k in kwonly)
    ns: dict[str, Any] = {"_call_original": call_original}
    fname = fn.__name__ if fn.__name__.isidentifier() else "flat"
    exec(f"def {fname}({header}):\n    return _call_original({passed})\n", ns)  # noqa: S102
    flat = ns[fname]
    flat.__name__ = fn.__name__
    flat.__defaults__ = fn.__defaults__
    flat.__kwdefaults__ = fn.__kwdefaults__
    flat.__qualname__ = getattr(fn, "__qualname__", fn.__name__)
    flat.__module__ = getattr(fn, "__module__", None)
    flat.__srcgrad_flat__ = (fn, dict(structures), flat_params)
    per_fn[key] = flat
    return flat


VARARGS = -1  # the key of a `*args` parameter's structure (a tuple of the extra arguments)
KWARGS = -2  # the key of a `**kwargs` parameter's (a dict of the keywords passed: none, so far)


def per_argument_count(f: Callable, kind: str, last_is_seed: bool,
                       transform_of: Callable[[Callable], Callable], error: Exception) -> Callable:
    """The transform of `def f(x, *springs, **options)`: per number of extra positional arguments, the
    transform (`transform_of`) of f's flat variant whose `springs` are parameters springs_0, ...
    (differentiated by position, as JAX does); `options` is the empty dict (keywords it would collect
    are refused with `error`). `last_is_seed`: the last argument is a cotangent or tangent."""
    code = f.__code__
    built: dict[int, Callable] = {}

    @functools.wraps(f)
    def transform(*args: Any, **kwargs: Any) -> Any:
        primal = args[:-1] if last_is_seed else args
        extra = len(primal) - code.co_argcount
        named = set(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
        if extra < 0 or set(kwargs) - named:
            raise error
        inner = built.get(extra)
        if inner is None:
            structures: dict = {}
            if code.co_flags & inspect.CO_VARARGS:
                items = tuple(Node("leaf") for _ in range(extra))
                structures[VARARGS] = Node("tuple", tuple(range(extra)), items)
            elif extra:
                raise error
            if code.co_flags & inspect.CO_VARKEYWORDS:
                structures[KWARGS] = Node("dict")
            inner = built[extra] = transform_of(flat_function(f, structures))
        return inner(*args, **kwargs)

    transform.transform = kind
    transform.original = f
    transform.source = f"# {f.__name__}: built per number of arguments at the first call"
    return transform


def _fresh(name: str, taken: set[str]) -> str:
    cand, k = name, 1
    while cand in taken:
        cand = f"{name}_{k}"
        k += 1
    taken.add(cand)
    return cand


class View:
    """A structured value at transform time: its node and, per leaf, the expression that reads it."""

    def __init__(self, node: Node, reads: list):
        self.node = node
        self.reads = reads  # gast expressions, one per slot (leaf, or an object itself), in order

    @property
    def obj(self) -> gast.expr:
        """An object's own slot: the expression reading the object (its other attributes go through it)."""
        return copy.deepcopy(self.reads[0])

    def child(self, key: Any) -> "View | gast.expr | None":
        if self.node.kind == "namedtuple" and type(key) is int and -len(self.node.keys) <= key < len(
                self.node.keys):
            key = self.node.keys[key]  # p[0] of a named tuple is its first field, as p.a
        start = 1 if self.node.kind == "object" else 0
        for k, c in zip(self.node.keys, self.node.children, strict=True):
            if k == key:
                part = self.reads[start:start + c.n_leaves]
                if c.kind == "leaf":
                    return copy.deepcopy(part[0])
                if c.kind == "static":
                    return _StaticValue(c.value)
                return View(c, part)
            start += c.n_leaves
        return None

    def items(self) -> list:
        return [(k, self.child(k)) for k in self.node.keys]


class _StaticValue:
    """A static part of a flattened object (a string, a function, a config object)."""

    def __init__(self, value: Any):
        self.value = value


class _Returned:
    """What a call of a helper returning dicts gives, at transform time: `call`, the call of its variant
    returning the flat tuple of the leaves, and `node`, the structure they make. It is read where a
    statement binds it to a name (or returns it), where its leaves can be unpacked into variables."""

    def __init__(self, call: gast.Call, node: Node, name: str):
        self.call, self.node, self.name = call, node, name


def _dict_view(parts: dict) -> View:
    """The View of a dict whose items are the Views `parts` (a leaf: a View of its one read)."""
    node = Node("dict", tuple(parts), tuple(v.node for v in parts.values()))
    return View(node, [r for v in parts.values() for r in v.reads])


def _replaced(view: View, keys: list, new: View) -> View:
    """`view` (a dict) with the item at path `keys` replaced by `new`, or added (the last key new)."""
    parts = {k: _as_view(view.child(k), c) for k, c in zip(view.node.keys, view.node.children, strict=True)}
    parts[keys[0]] = _replaced(parts[keys[0]], keys[1:], new) if len(keys) > 1 else new
    return _dict_view(parts)


def _as_view(part: Any, node: Node) -> View:
    return part if isinstance(part, View) else View(node, [part])


def _shape_node(shape: Any) -> Node | None:
    """The Node of an output structure (outputs.Shape) holding a dict, of dicts, tuples and lists around
    its leaves; None for any other (no dict, a named tuple or dataclass, a key given twice)."""
    def node(sh: Any) -> Node | None:
        if sh is None:
            return Node("leaf")
        if sh[0] == "record" or (sh[0] == "dict" and len(set(sh[1])) != len(sh[1])):
            return None
        keys, children = (sh[1], sh[2]) if sh[0] == "dict" else (tuple(range(len(sh[1]))), sh[1])
        nodes = [node(c) for c in children]
        return None if any(n is None for n in nodes) else Node(sh[0], tuple(keys), tuple(nodes))

    def has_dict(sh: Any) -> bool:
        return sh is not None and (sh[0] == "dict" or any(has_dict(c) for c in sh[-1]))

    return node(shape) if shape is not None and has_dict(shape) else None


_EXAMINING = threading.local()  # the helpers whose returns are being read, per thread (recursion)
# per helper: (its code, the structure of its returns), kept off the function's own __dict__, which
# stays picklable
_SHAPES: "weakref.WeakKeyDictionary[Any, tuple]" = weakref.WeakKeyDictionary()


def returned_shape(fn: Any, parse: Any) -> Any:
    """The structure (outputs.Shape) of the dict literals user function `fn` returns, read from its
    parsed body (a dict it builds and returns is a literal there); None where it returns none, where
    its source is not the user's, or while it is being read already (a recursive helper)."""
    if parse is None or not _user_function(fn):
        return None
    hit = _SHAPES.get(fn)
    if hit is not None and hit[0] is fn.__code__:
        return hit[1]
    seen = _EXAMINING.__dict__.setdefault("ids", set())
    if id(fn) in seen:
        return None
    seen.add(id(fn))
    try:
        shape = dict_outputs(parse(fn))
    except Exception:  # noqa: BLE001  (the transform of fn itself reports what is wrong with it)
        shape = None
    finally:
        seen.discard(id(fn))
    _SHAPES[fn] = (fn.__code__, shape)
    return shape


_LIBRARIES = ("numpy", "scipy", "srcgrad", "jax", "torch", "autograd", "dask", "cupy", "functools")


def _user_function(fn: Any) -> bool:
    """A Python function of the user's (a flat variant of one included, not a tuple-returning variant
    or generated code): its returns can be read."""
    if not isinstance(fn, types.FunctionType) or fn.__code__.co_flags & inspect.CO_GENERATOR \
            or getattr(fn, "__srcgrad_outputs__", None) is not None \
            or getattr(fn, "__srcgrad_target__", None) is not None:
        return False
    module = (getattr(fn, "__module__", None) or "").split(".")[0]
    return module not in _LIBRARIES and (module == "__main__" or module not in sys.stdlib_module_names) \
        and "site-packages" not in (fn.__code__.co_filename or "")


def _callee(info: Any, func: Any, local: set[str]) -> Any:
    """What `func` (`step`, `mod.step`) names where it is a global's or a closure's; None where its root
    is a name the function binds itself (a parameter `step`, `self.step`), whatever a global of that
    name is."""
    root = func
    while isinstance(root, gast.Attribute):
        root = root.value
    if not isinstance(root, gast.Name) or root.id in local:
        return None
    return info.resolve(func.id) if func is root else _chain(info, func)


def _bound_names(node: Any) -> set[str]:
    """Names the function binds (parameters, assignments, loop targets): local, whatever a global of
    the same name is."""
    return {n.id for n in gast.walk(node) if isinstance(n, gast.Name)
            and isinstance(n.ctx, (gast.Store, gast.Param, gast.Del))}


class Flattener:
    """Rewrites one function body whose parameters in `structures` are flattened."""

    def __init__(self, info: Any, structures: dict[str, Node], leaf_params: dict[str, list[str]],
                 parse: Any = None):
        self.info = info
        self.parse = parse
        self.original: Any = None
        self.first_param: str | None = None
        self.views: dict[str, View] = {}
        for p, node in structures.items():
            self.views[p] = View(node, [_name(n) for n in leaf_params[p]])
        self.statics: dict[int, str] = {}
        self.nested = 0
        self.local_dicts: set[str] = set()  # names bound to dict literals the function builds
        # a dict placed whole inside another (`outer = {"inner": inner}`): the two names read the same
        # variables (`shared`), so a write of an item through either is seen through both, as in the
        # one dict object; what would tell the object from a copy is refused on the names (`frozen`)
        self.shared: set[str] = set()
        self.frozen: set[str] = set()
        self.placed_whole = False  # part_of placed a dict whole (the name being bound is frozen too)
        self.param_leaves = {n for ns in leaf_params.values() for n in ns}
        self.enclosing: list[int] = []  # the first lines of the loops and branches being rewritten
        counts: dict[str, int] = {}
        for n in gast.walk(info.node):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store):
                counts[n.id] = counts.get(n.id, 0) + 1
        self.assigned_elsewhere = {v for v, c in counts.items() if c > 1}
        self.bound_here = _bound_names(info.node)  # never resolved as a global helper
        self.taken = {n.id for n in gast.walk(info.node) if isinstance(n, gast.Name)}
        self.taken |= {n for ns in leaf_params.values() for n in ns}
        self.pre: list = []  # statements the statement being rewritten needs first (`hoisted`)
        self.current: Any = None  # that statement
        # the calls it makes, in the order they run, each with whether it may change what later ones read
        # (None: no call is made before the statement, `hoisted`)
        self.order: list | None = None

    # ------------------------------------------------------------------------------ statements
    def nested_blocks(self, body: list, orelse: list, at: Any = None) -> tuple[list, list]:
        """A loop's or branch's blocks (`nested` counts how deep: a name bound to a structure there
        may be read after it on another path; `enclosing`, the first lines of the statements they
        belong to)."""
        self.nested += 1
        self.enclosing.append(getattr(at, "lineno", 0))
        try:
            return self.block(body), self.block(orelse)
        finally:
            self.nested -= 1
            self.enclosing.pop()

    def block(self, stmts: list) -> list:
        out: list = []
        for s in stmts:
            out.extend(self.stmt(s))
        return out

    def stmt(self, s: gast.stmt) -> list:
        """`s` rewritten, after the statements it needs first (a helper's returned dict read where it is
        called, unpacked into variables: `hoisted`)."""
        saved = self.pre, self.current, self.order
        self.pre, self.current = [], s
        self.order = [(c, self.may_change_state(c)) for c in _calls_in_order(s)]
        try:
            out = self.rewritten_stmt(s)
            return self.pre + out
        finally:
            self.pre, self.current, self.order = saved

    def rewritten_stmt(self, s: gast.stmt) -> list:
        if isinstance(s, gast.Assign) and len(s.targets) == 1:
            return self.assign(s)
        if isinstance(s, gast.For):
            it = self.value(s.iter)
            if isinstance(it, _Returned):
                it = self.hoisted(it, s.iter)  # for v in step(s)
            if isinstance(it, View):
                return self.unroll(s, it)
            s.iter = self.expr_of(it, s.iter)
            items = self.static_sequence(s.iter)
            if items is not None and self.keyed_by_target(s):
                # `for k in ("enc", "dec"): x = models[k](x)`, `for i in range(3): d[f"w{i}"] = ...`: the
                # keys are known, so the loop is unrolled as one over a static structure
                statics = tuple(Node("static", value=v) for v in items)
                return self.unroll(s, View(Node("list", tuple(range(len(items))), statics), []))
            if items and self.adds_keys(s.body):
                return self.peeled(s, items)
            s.body, s.orelse = self.nested_blocks(s.body, s.orelse, s)
            return [s]
        if isinstance(s, (gast.If, gast.While)):
            self.order = self.order if isinstance(s, gast.If) else None  # a while test: read every pass
            s.test = self.expr(s.test)
            s.body, s.orelse = self.nested_blocks(s.body, s.orelse, s)
            return [s]
        if isinstance(s, gast.AugAssign) and self.dict_path(s.target) is not None:
            # acc["s"] += v on a dict the function built: acc["s"] = acc["s"] + v
            load = copy.deepcopy(s.target)
            load.ctx = gast.Load()
            store = gast.copy_location(gast.Assign(targets=[s.target], value=gast.BinOp(
                left=load, op=s.op, right=s.value), type_comment=None), s)
            return self.assign(store)
        if isinstance(s, gast.AugAssign):
            s.value = self.expr(s.value)
            if isinstance(s.target, (gast.Subscript, gast.Attribute)):
                base = self.value(s.target.value)
                if isinstance(base, View):
                    raise self.write_refused(base, s.target, s)
                s.target.value = self.expr_of(base, s.target.value)
            return [s]
        if isinstance(s, gast.Return) and s.value is not None:
            before, s.value = self.return_value(s.value, s)
            return before + [s]
        if isinstance(s, gast.Expr) and isinstance(s.value, gast.Call):
            value = self.value(s.value)  # a helper returning a dict, its result unused: called all the same
            s.value = value.call if isinstance(value, _Returned) else self.expr_of(value, s.value)
            return [s]
        for field_name, v in gast.iter_fields(s):
            if isinstance(v, gast.expr):
                setattr(s, field_name, self.expr(v))
            elif isinstance(v, list) and v and isinstance(v[0], gast.expr):
                setattr(s, field_name, [self.expr(x) for x in v])
            elif isinstance(v, list) and v and isinstance(v[0], gast.stmt):
                setattr(s, field_name, self.block(v))
        return [s]

    def assign(self, s: gast.Assign) -> list:
        target = s.targets[0]
        path = self.dict_path(target)
        if path is not None:
            return self.local_dict_write(path[0], path[1], s)
        if isinstance(target, gast.Subscript) or isinstance(target, gast.Attribute):
            base = self.value(target.value)
            if isinstance(base, View):
                raise self.write_refused(base, target, s)
        if isinstance(target, gast.Name) and isinstance(s.value, gast.DictComp):
            built = self.dict_comprehension(target.id, s.value, s)
            if built is not None:
                return built
        if isinstance(target, gast.Name) and _static_keyed(s.value):
            return self.dict_literal(target.id, s.value, s)
        value = self.value(s.value)
        if isinstance(value, _Returned):
            return self.assign_returned(target, value, s)
        if isinstance(target, gast.Name) and isinstance(value, (View, _StaticValue)):
            self.bind(target.id, value, s)
            return []
        if isinstance(target, (gast.Tuple, gast.List)) and isinstance(value, View):
            return self.unpack(target, value, s)
        s.value = self.expr_of(value, s.value)
        if isinstance(target, gast.Name):
            self.views.pop(target.id, None)  # the name now holds a plain value
        else:
            s.targets = [self.expr(target)]
        return [s]

    def write_refused(self, base: View, target: Any, at: Any) -> Exception:
        """A write into a flattened argument (`self.h = ...`, `params["W"] = ...`): the arrays of a
        pytree are read as parameters, so a write would change a local copy that the caller, and the
        methods that read the attribute later, never see: refused rather than silently lost."""
        what = f".{target.attr}" if isinstance(target, gast.Attribute) else "[...]"
        return located(self.info, at, f"srcgrad does not differentiate a write into a differentiated "
                       f"{base.node.describe()} ({what}): its arrays are parameters of the derivative",
                       "return the new value from the function (or keep it in a local variable) instead of "
                       "storing it on the argument; an object may keep values that carry no derivative "
                       "(self.count += 1, self.n = x.shape[0]).")

    def bind(self, var: str, value: Any, at: Any) -> None:
        if isinstance(value, _StaticValue):
            self.views[var] = value  # type: ignore[assignment]
            return
        self.views[var] = value

    def unpack(self, target: Any, value: View, at: Any) -> list:
        if value.node.kind not in ("tuple", "list", "namedtuple") or len(target.elts) != len(value.node.keys):
            raise located(self.info, at, f"unpacking a flattened {value.node.describe()} of "
                          f"{len(value.node.keys)} items into {len(target.elts)} names")
        out: list = []
        for t, k in zip(target.elts, value.node.keys, strict=True):
            part = value.child(k)
            if isinstance(t, gast.Name) and isinstance(part, (View, _StaticValue)):
                self.bind(t.id, part, at)
                continue
            stmt = gast.Assign(targets=[t], value=self.expr_of(part, at), type_comment=None)
            out.append(gast.copy_location(stmt, at))
        return out

    def dict_comprehension(self, var: str, e: gast.DictComp, at: Any) -> list | None:
        """`terms = {k: f(v) for k, v in params.items()}` over a flattened structure: unrolled (its keys
        are known), each value into a variable of its own (terms_a, terms_b), and `terms` read as a
        flattened dict of them (terms["a"], terms.values(), sum(terms.values()), a loop over it). A value
        that is itself a dict literal (`{k: {"m": 0.0, "v": 0.0} for k in params}`) is a nested dict."""
        if len(e.generators) != 1 or e.generators[0].ifs or e.generators[0].is_async:
            return None
        gen = e.generators[0]
        it = self.value(copy.deepcopy(gen.iter))
        if not isinstance(it, View):
            return None
        items = [_StaticValue(k) for k in it.node.keys] if it.node.kind == "dict" else \
            [it.child(k) for k in it.node.keys]
        out: list = []
        parts: dict = {}
        for item in items:
            if isinstance(gen.target, gast.Name) and isinstance(item, (View, _StaticValue)):
                self.bind(gen.target.id, item, at)
            elif isinstance(gen.target, (gast.Tuple, gast.List)) and isinstance(item, View):
                out.extend(self.unpack(gen.target, item, at))
            else:
                bind = gast.Assign(targets=[copy.deepcopy(gen.target)], value=self.expr_of(item, at),
                                   type_comment=None)
                out.append(gast.copy_location(bind, at))
            key = self.value(copy.deepcopy(e.key))
            if isinstance(key, _StaticValue):
                key = key.value
            elif isinstance(key, gast.Constant):
                key = key.value
            else:
                raise located(self.info, e, "a dict comprehension whose keys are computed at run time",
                              "use the keys of the structure it loops over (or constants) as its keys.")
            if key in parts:
                raise located(self.info, e, f"a dict comprehension that gives the key {key!r} twice")
            stmts, parts[key] = self.part_of(var, key, copy.deepcopy(e.value), at)
            out.extend(stmts)
        return out + self.bind_view(var, _dict_view(parts), at)

    def key_variable(self, var: str, key: Any, value: Any, at: Any) -> tuple[gast.stmt, gast.Name]:
        """A fresh variable for `var[key]` (`grads_w`), the statement giving it `value`, and its read."""
        name = _fresh(f"{var}_{_identifier_of(key)}", self.taken)
        return _assign(name, value, at), _name(name)

    def part_of(self, var: str, key: Any, e: Any, at: Any) -> tuple[list, View]:
        """The value `e` of `var[key]` in a dict the function builds, as a View (a leaf is a View of
        one read): a nested dict literal or dict comprehension is a nested dict read by key, what a
        helper returning a dict gives is its leaves, anything else is a fresh variable (`var_key`).
        The statements computing it come first."""
        inner = f"{var}_{_identifier_of(key)}"
        if _static_keyed(e):
            return self.literal_parts(inner, e, at)
        if isinstance(e, gast.DictComp):
            built = self.dict_comprehension(inner, e, at)
            if built is not None:
                return built, self.views.pop(inner)
        root = e
        while isinstance(root, gast.Subscript):
            root = root.value
        value = self.value(e)
        if isinstance(value, _Returned):
            return self.unpacked(value, inner, at)
        if isinstance(value, View) and value.node.kind not in ("tuple", "list"):
            return [], self.placed(value, var, key, root, at)
        stmt, read = self.key_variable(var, key, self.expr_of(value, e), at)
        return [stmt], View(Node("leaf"), [read])

    def placed(self, value: View, var: str, key: Any, root: Any, at: Any) -> View:
        """`outer = {"inner": inner, ...}` (or `outer["inner"] = inner`) of a dict srcgrad reads by key:
        outer's item reads inner's variables, so the two dicts share their items as the one object does
        in Python. Outside loops and branches only (where a rebinding carried by a loop would write into
        the shared variables), of a dict whose items are variables (not a pytree argument's objects)."""
        if self.nested or value.node.kind != "dict" or not all(isinstance(r, gast.Name) for r in value.reads):
            where = " inside a loop or branch" if self.nested else ""
            raise located(self.info, at, f"a {value.node.describe()} srcgrad reads by key placed whole "
                          f"inside another dict ({var}[{key!r}]){where}", "write the inner dict as a literal "
                          "inside the outer one ({'l1': {'w': w1, 'b': b1}}), build the outer dict outside "
                          "the loop or branch, or keep the two dicts apart.")
        self.shared.update(r.id for r in value.reads)
        if isinstance(root, gast.Name):
            self.frozen.add(root.id)
        self.placed_whole = True
        return View(value.node, [copy.deepcopy(r) for r in value.reads])

    def sharing_refused(self, var: str, at: Any, what: str) -> Exception:
        return located(self.info, at, f"{what} {var}, a dict that holds another dict whole or is held "
                       "whole by one (outer = {'inner': inner}): srcgrad reads the two as sharing their "
                       "items, and this would tell the one dict object from a copy", "write items by key "
                       "only (outer['inner']['w'] = ..., inner['w'] = ...), give the dicts every key before "
                       "one is placed in the other, or write the inner dict as a literal inside the "
                       "outer one.")

    def literal_parts(self, var: str, e: gast.Dict, at: Any) -> tuple[list, View]:
        """`{"w": ..., "l1": {"w": ..., "b": ...}}` (constant keys): each value computed in order
        (`part_of`), a repeated key keeping its first place and its last value, as Python's dict does."""
        out: list = []
        parts: dict = {}
        for k, v in zip(e.keys, e.values, strict=True):
            stmts, parts[k.value] = self.part_of(var, k.value, v, at)
            out.extend(stmts)
        return out, _dict_view(parts)

    def bind_view(self, var: str, view: View, at: Any) -> list:
        """Bind `var` to the structure `view` (its reads fresh variables); the statements that takes
        (none, or the copies below)."""
        before = self.views.get(var)
        if self.placed_whole:
            self.placed_whole = False
            self.frozen.add(var)
        elif not self.nested:
            self.frozen.discard(var)  # a new dict of fresh variables: another name holds the old one
        if self.nested and isinstance(before, View) and before.node == view.node \
                and all(isinstance(r, gast.Name) for r in before.reads):
            if var in self.frozen or any(r.id in self.shared for r in before.reads):
                # its variables are another dict's items too, which this new dict does not replace
                raise self.sharing_refused(var, at, "a loop or branch binding again")
            other = self.holder_read_later(var, before, at)
            if other is not None:
                raise located(self.info, at, f"{var} bound again inside a loop or branch, where {other} is "
                              f"another name for the dict {var} held before (one assigned to the other, or "
                              f"a loop over its items) read after: the new values would be seen through "
                              f"{other}",
                              f"bind {var} to a new dict literal of the items before the loop or branch "
                              f"({var} = {{'k': {var}['k'], ...}}), or use one name.")
            # `s = {...}` / `s = step(s)` rebinding a structure of the same keys inside a loop or branch:
            # the new values go into the variables the name's leaves already are (after all are
            # computed, as Python builds the dict before binding it), so a loop carries them and a
            # branch joins them
            return [_assign(r.id, new, at) for r, new in zip(before.reads, view.reads, strict=True)
                    if not (isinstance(new, gast.Name) and new.id == r.id)]
        if (before is not None or var in self.assigned_elsewhere) and self.nested:
            raise located(self.info, at, f"{var} bound, inside a loop or branch, to a dict of other keys "
                          "(or the same keys in another order) than it holds elsewhere",
                          "keep the dict's keys, in one order, the same on every path.")
        self.views[var] = view
        return []

    def holder_read_later(self, var: str, before: View, at: Any) -> str | None:
        """Another name bound to (part of) the dict `var` holds (`e = d`, a loop variable over its
        values) and read at or after the loop or branch rebinding `var` starts: the rebinding writes
        into the variables that name reads too (a loop carries them), where Python would leave it the
        old dict. None where there is none."""
        mine = {r.id for r in before.reads}
        start = self.enclosing[0] if self.enclosing else getattr(at, "lineno", 0)
        for other, v in self.views.items():
            if other == var or not isinstance(v, View) or not mine & {
                    r.id for r in v.reads if isinstance(r, gast.Name)}:
                continue
            if any(isinstance(n, gast.Name) and n.id == other and isinstance(n.ctx, gast.Load)
                   and getattr(n, "lineno", start) >= start for n in gast.walk(self.info.node)):
                return other
        return None

    def dict_literal(self, var: str, e: gast.Dict, at: Any) -> list:
        """`grads = {"w": ..., "b": ...}` (keys constants, values nested literals too): each leaf into a
        variable of its own (grads_w, grads_b), and `grads` read as a flattened dict of them, written by
        key (`grads["w"] = ...`, a new key included) and rebound in loops with the same keys."""
        out, view = self.literal_parts(var, e, at)
        self.local_dicts.add(var)
        return out + self.bind_view(var, view, at)

    def structured_call(self, call: gast.Call) -> "gast.Call | _Returned":
        """A call of a user function that returns dict literals (`return {"q": q, "p": p}`, nested, or
        in a tuple): the call of its variant returning the flat tuple of the leaves
        (outputs.tuple_returning), read at transform time as that structure (`_Returned`), so the
        caller reads the dict by key as one it built. Any other call as it is."""
        fn = self.resolve_function(call.func)
        shape = returned_shape(fn, self.parse)
        node = _shape_node(shape)
        if node is None:
            return call
        variant = tuple_returning(fn, shape, False)
        call.func = gast.copy_location(_name(self.static_name(variant, fn.__name__)), call)
        return _Returned(call, node, fn.__name__)

    def unpacked(self, r: "_Returned", var: str, at: Any) -> tuple[list, View]:
        """The statement unpacking a structured call's flat tuple into fresh variables (`s_q, s_p = ...`),
        and the View of the structure they hold."""
        names = [_fresh(n, self.taken) for n in leaf_names(var, r.node)]
        leaves = gast.Tuple(elts=[_name(n, gast.Store()) for n in names], ctx=gast.Store())
        stmt = gast.Assign(targets=[leaves], value=r.call, type_comment=None)
        return [gast.copy_location(stmt, at)], View(r.node, [_name(n) for n in names])

    def assign_returned(self, target: Any, r: "_Returned", at: Any) -> list:
        """`s = step(s)`, `loss, stats = measure(x)` of a helper returning dicts: its leaves into fresh
        variables, the name bound to their structure (carried by a loop, as `bind_view` says)."""
        if isinstance(target, gast.Name):
            out, view = self.unpacked(r, target.id, at)
            return out + self.bind_view(target.id, view, at)
        if isinstance(target, (gast.Tuple, gast.List)) and r.node.kind in ("tuple", "list") \
                and len(target.elts) == len(r.node.keys):
            out, view = self.unpacked(r, "returned", at)
            return out + self.unpack_into(target, view, at)
        raise located(self.info, at, f"what {r.name} returns (a structure holding a dict) assigned to this "
                      "target", "bind it to a name (s = step(s)), then read it by key (s['q']).")

    def unpack_into(self, target: Any, view: View, at: Any) -> list:
        """`loss, stats = ...` of a structure: each name bound to its part (a dict part by `bind_view`)."""
        out: list = []
        for t, k in zip(target.elts, view.node.keys, strict=True):
            part = view.child(k)
            if isinstance(t, gast.Name) and isinstance(part, View):
                out.extend(self.bind_view(t.id, part, at))
            elif isinstance(t, (gast.Tuple, gast.List)) and isinstance(part, View) \
                    and part.node.kind in ("tuple", "list") and len(t.elts) == len(part.node.keys):
                out.extend(self.unpack_into(t, part, at))
            else:
                value = self.literal_of(part, at) if isinstance(part, View) else part
                out.extend(self.assign(gast.copy_location(
                    gast.Assign(targets=[t], value=value, type_comment=None), at)))
        return out

    def return_value(self, e: Any, at: Any) -> tuple[list, gast.expr]:
        """`return e`: the statements it needs first and the value returned, a literal where `e` is (or
        holds) a structure srcgrad reads by key (a dict the function built, a dict comprehension, what a
        helper returning a dict gave), so the function returns dict literals: jvp and vjp give such
        dicts as dicts, and a caller reads them by key (`structured_call`)."""
        if isinstance(e, (gast.Tuple, gast.List)):
            out: list = []
            for i, x in enumerate(e.elts):
                stmts, e.elts[i] = self.return_value(x, at)
                out.extend(stmts)
            return out, e
        if isinstance(e, gast.Dict):
            out = []
            e.keys = [k if k is None else self.expr(k) for k in e.keys]
            for i, v in enumerate(e.values):
                stmts, e.values[i] = self.return_value(v, at)
                out.extend(stmts)
            return out, e
        if isinstance(e, gast.DictComp):
            var = _fresh("returned", self.taken)
            built = self.dict_comprehension(var, e, at)
            if built is not None:
                return built, self.literal_of(self.views.pop(var), at)
        value = self.value(e)
        if isinstance(value, _Returned):
            out, view = self.unpacked(value, "returned", at)
            return out, self.literal_of(view, at)
        return [], self.literal_of(value, e)

    def literal_of(self, v: Any, at: Any) -> gast.expr:
        """The literal of a structure read by key (dicts, tuples and lists of leaves, nested): what a
        return gives; any other value as `expr_of` says."""
        if not isinstance(v, View) or v.node.kind not in ("dict", "tuple", "list"):
            return self.expr_of(v, at)
        parts = [self.literal_of(v.child(k), at) for k in v.node.keys]
        if v.node.kind == "dict":
            node = gast.Dict(keys=[gast.Constant(value=k, kind=None) for k in v.node.keys], values=parts)
        elif v.node.kind == "tuple":
            node = gast.Tuple(elts=parts, ctx=gast.Load())
        else:
            node = gast.List(elts=parts, ctx=gast.Load())
        return gast.copy_location(node, at)

    def dict_path(self, target: Any) -> tuple[str, list] | None:
        """(`d`, its keys) where `target` (`d["k"]`, `net["l1"]["w"]`) writes into a dict the function
        built, at any depth; None for anything else, an array item of a leaf (`d["k"][i]`) included."""
        chain = []
        root = target
        while isinstance(root, gast.Subscript):
            chain.append(root)
            root = root.value
        if not chain or not isinstance(root, gast.Name) or root.id not in self.local_dicts:
            return None
        view: Any = self.views.get(root.id)
        if not isinstance(view, View):
            raise located(self.info, target, f"a write into {root.id}, a dict srcgrad reads by key, after it "
                          "was bound to something else", "use another name for the other value.")
        keys: list = []
        for sub in reversed(chain):
            if not isinstance(view, View) or view.node.kind != "dict":
                return None
            keys.append(self.key_of(sub))
            view = view.child(keys[-1])
            if view is None and sub is not target:
                raise located(self.info, target, f"{root.id} has no item {keys[-1]!r} to write into")
        return root.id, keys

    def local_dict_write(self, var: str, keys: list, at: Any) -> list:
        """`d["k"] = v` (or `net["l1"]["w"] = v`) into a dict the function built: into the variable(s)
        the item already is (so a loop carries it, and every name for the dict sees it, as a write into
        the one dict object does), or a new key's, outside loops and branches."""
        view = self.views[var]
        old = view
        for k in keys:
            old = old.child(k)
        prefix = "_".join([var] + [_identifier_of(k) for k in keys[:-1]])
        key = keys[-1]
        builds = _static_keyed(at.value) or isinstance(at.value, gast.DictComp)
        if isinstance(old, gast.Name) and old.id in self.param_leaves:
            raise located(self.info, at, f"a write into {var}[{']['.join(map(repr, keys))}], an item of an "
                          "argument's dict placed whole inside it: it would change the caller's dict",
                          "compute the new value into a variable of its own, or place a copy of the "
                          "argument's items in a dict literal.")
        if isinstance(old, gast.Name) and not builds:
            value = self.value(at.value)
            if not isinstance(value, _Returned):
                return [_assign(old.id, self.expr_of(value, at.value), at)]
            stmts, new = self.unpacked(value, f"{prefix}_{_identifier_of(key)}", at)
        else:
            stmts, new = self.part_of(prefix, key, at.value, at)
        if self.placed_whole:
            # outer["inner"] = inner: outer's item is inner's object from here on, not a copy
            self.placed_whole = False
            if var in self.frozen or (isinstance(old, View) and any(
                    isinstance(r, gast.Name) and r.id in self.shared for r in old.reads)):
                raise self.sharing_refused(var, at, "a dict placed whole into")
            self.frozen.add(var)
            self.views[var] = _replaced(view, keys, new)
            return stmts
        if var in self.frozen:
            raise self.sharing_refused(var, at, "a new key or a new dict written into")
        old_view = View(Node("leaf"), [old]) if isinstance(old, gast.Name) else old
        if isinstance(old_view, View) and old_view.node == new.node \
                and all(isinstance(r, gast.Name) for r in old_view.reads):
            return stmts + [_assign(r.id, n, at) for r, n in zip(old_view.reads, new.reads, strict=True)]
        if self.nested:
            what = f"a new key {key!r} added to" if old is None else f"the item {key!r} of"
            raise located(self.info, at, f"{what} {var} inside a loop or branch" + (
                "" if old is None else ", given another structure"),
                f"start {var} with every key it will hold, each item with the structure it keeps "
                "(a value of 0.0 will do).")
        self.views[var] = _replaced(view, keys, new)
        return stmts

    def unroll(self, s: gast.For, it: View) -> list:
        """`for layer in params["layers"]`: the loop over a static structure, one copy of the body per
        item (as JAX traces a Python loop)."""
        for n in gast.walk(gast.Module(body=s.body, type_ignores=[])):
            if isinstance(n, (gast.Break, gast.Continue)):
                raise located(self.info, n, "break/continue in a loop over a flattened "
                              f"{it.node.describe()}", "loop over range(len(...)) and index instead.")
        items: list = []
        if it.node.kind == "dict":
            items = [_StaticValue(k) for k in it.node.keys]
        else:
            items = [it.child(k) for k in it.node.keys]
        out: list = []
        for item in items:
            body = copy.deepcopy(s.body)
            if isinstance(s.target, gast.Name) and isinstance(item, (View, _StaticValue)):
                self.bind(s.target.id, item, s)
            elif isinstance(s.target, (gast.Tuple, gast.List)) and isinstance(item, View):
                out.extend(self.unpack(s.target, item, s))
            else:
                target = copy.deepcopy(s.target)
                out.append(gast.copy_location(gast.Assign(targets=[target], value=self.expr_of(item, s),
                                                          type_comment=None), s))
            out.extend(self.block(body))
        return out

    def static_sequence(self, it: Any) -> list | None:
        """The items of a loop's iterable known at transform time: a tuple or list of constants, or a
        range of constant bounds (up to `_UNROLL` items); None for any other."""
        if isinstance(it, (gast.Tuple, gast.List)) and all(
                isinstance(x, gast.Constant) and isinstance(x.value, (str, int, float, bool))
                for x in it.elts):
            return [x.value for x in it.elts]
        if isinstance(it, gast.Call) and isinstance(it.func, gast.Name) and it.func.id == "range" \
                and "range" not in self.bound_here and self.info.resolve("range") is builtins.range \
                and not it.keywords and 1 <= len(it.args) <= 3 and all(
                    isinstance(a, gast.Constant) and type(a.value) is int for a in it.args):
            r = range(*[a.value for a in it.args])
            return list(r) if len(r) <= _UNROLL else None
        return None

    def keyed_by_target(self, s: gast.For) -> bool:
        """Whether a loop's body reads or writes a structure srcgrad reads by key (`models[k]`, `d[k]`)
        with the loop variable as the key."""
        if not isinstance(s.target, gast.Name):
            return False
        for n in gast.walk(gast.Module(body=s.body, type_ignores=[])):
            if isinstance(n, gast.Subscript) and isinstance(n.slice, gast.Name) and n.slice.id == s.target.id:
                root = n.value
                while isinstance(root, (gast.Subscript, gast.Attribute)):
                    root = root.value
                if isinstance(root, gast.Name) and isinstance(self.views.get(root.id), View):
                    return True
        return False

    def adds_keys(self, body: list) -> bool:
        """Whether a statement of a loop's body (not nested in a branch or inner loop) adds a new key to a
        dict the function built (`d["b"] = ...` where d has no "b" yet)."""
        for st in body:
            if isinstance(st, (gast.Assign, gast.AugAssign)):
                target = st.targets[0] if isinstance(st, gast.Assign) else st.target
                if isinstance(st, gast.Assign) and len(st.targets) != 1:
                    continue
                try:
                    path = self.dict_path(target)
                except TransformError:
                    continue
                if path is None:
                    continue
                view: Any = self.views[path[0]]
                for k in path[1]:
                    view = view.child(k) if isinstance(view, View) else None
                if view is None:
                    return True
        return False

    def peeled(self, s: gast.For, items: list) -> list:
        """A loop over known items (not none) whose body adds keys to a dict: its first pass written out
        (the keys added there, as outside a loop), then the loop over the other items, in which the keys
        are there already."""
        if not isinstance(s.target, gast.Name) or any(isinstance(n, (gast.Break, gast.Continue))
                                                       for b in s.body for n in gast.walk(b)):
            s.body, s.orelse = self.nested_blocks(s.body, s.orelse, s)  # refused where the key is added
            return [s]
        first = gast.copy_location(gast.Assign(targets=[copy.deepcopy(s.target)],
                                               value=self.static_expr(items[0], s), type_comment=None), s)
        out = self.assign(first) + self.block(copy.deepcopy(s.body))
        rest = items[1:]
        if not rest:
            return out
        r = range(*[a.value for a in s.iter.args]) if isinstance(s.iter, gast.Call) else None
        if r is not None:
            bounds = [r.start + r.step, r.stop] + ([r.step] if r.step != 1 else [])
            if bounds[0] == 0 and len(bounds) == 2:
                bounds = bounds[1:]
            s.iter.args = [gast.Constant(value=b, kind=None) for b in bounds]
        else:
            s.iter.elts = s.iter.elts[1:]
        s.body, s.orelse = self.nested_blocks(s.body, s.orelse, s)
        return out + [s]

    # ------------------------------------------------------------------------------ expressions
    def key_of(self, e: Any) -> Any:
        if isinstance(e, gast.Attribute):
            return e.attr
        sl = e.slice
        if isinstance(sl, gast.Constant):
            return sl.value
        if isinstance(sl, gast.Name) and isinstance(self.views.get(sl.id), _StaticValue):
            return self.views[sl.id].value  # `for k in params: params[k]`, unrolled
        if isinstance(sl, gast.Tuple) and all(isinstance(x, gast.Constant) for x in sl.elts):
            return tuple(x.value for x in sl.elts)
        if isinstance(sl, gast.UnaryOp) and isinstance(sl.op, gast.USub) and isinstance(sl.operand,
                                                                                         gast.Constant):
            return -sl.operand.value
        raise located(self.info, e, "a flattened argument is indexed by a key computed at run time",
                      "index it with a constant (params['W'], layers[0]), or loop over it.")

    def value(self, e: Any) -> Any:
        """`e` rewritten: a View or static value where it denotes (part of) a flattened argument, else an
        expression."""
        if isinstance(e, gast.Name):
            return self.views.get(e.id, e) if isinstance(e.ctx, gast.Load) else e
        if isinstance(e, (gast.Subscript, gast.Attribute)):
            base = self.value(e.value)
            if isinstance(base, _Returned):
                base = self.hoisted(base, e)  # step(s)["q"]
            if isinstance(base, _StaticValue) and isinstance(e, gast.Attribute):
                return self.static_expr(getattr(base.value, e.attr), e)
            if isinstance(base, View):
                key = self.key_of(e)
                if isinstance(key, int) and key < 0 and base.node.kind in ("list", "tuple", "namedtuple"):
                    key += len(base.node.keys)
                part = base.child(key)
                if part is None:
                    prop = getattr(base.node.cls, e.attr, None) if base.node.kind == "object" else None
                    if isinstance(prop, property) and isinstance(prop.fget, types.FunctionType):
                        # a property: its getter, followed like a method
                        return self.flat_call(prop.fget, [base], gast.copy_location(
                            gast.Call(func=e, args=[base.obj], keywords=[]), e))
                    if isinstance(e, gast.Attribute) and base.node.kind == "object":
                        # a counter, a name, a setting: read from the object at run time
                        return gast.copy_location(gast.Attribute(value=base.obj, attr=e.attr,
                                                                 ctx=gast.Load()), e)
                    raise located(self.info, e, f"the flattened {base.node.describe()} has no item {key!r}")
                return part
            return self.rebuilt(e, base)
        if isinstance(e, gast.Call):
            return self.call(e)
        return self.expr(e)

    def rebuilt(self, e: Any, base: Any) -> Any:
        e.value = self.expr_of(base, e.value)
        if isinstance(e, gast.Subscript):
            e.slice = self.expr(e.slice)
        return e

    def call(self, e: gast.Call) -> Any:
        out = self.rewritten_call(e)
        return self.structured_call(out) if isinstance(out, gast.Call) else out

    def rewritten_call(self, e: gast.Call) -> Any:
        f = e.func
        # .keys() / .values() / .items() of a dict, len() of any container
        if isinstance(f, gast.Attribute) and not e.args and f.attr in ("keys", "values", "items"):
            base = self.value(f.value)
            if isinstance(base, _Returned):
                base = self.hoisted(base, e)  # for k, v in step(s).items()
            if isinstance(base, View) and base.node.kind == "dict":
                return self.dict_view(base, f.attr, e)
        if isinstance(f, gast.Attribute) and isinstance(f.value, gast.Call) \
                and isinstance(f.value.func, gast.Name) and f.value.func.id == "super" \
                and not f.value.args and self.self_view() is not None:
            return self.super_call(f.attr, e)
        if isinstance(f, gast.Attribute):
            base = self.value(f.value)
            if isinstance(base, View) and base.node.kind == "object":
                held = base.child(f.attr)
                if isinstance(held, View) and held.node.kind == "object":
                    return self.method_call(held, "__call__", e)  # self.layer1(x): a sub-model called
                return self.method_call(base, f.attr, e)
            if isinstance(base, _StaticValue):
                f.value = self.static_expr(base.value, f)
                return self.plain_call(e, skip_func=True)
            if isinstance(base, View):
                raise located(self.info, e, f".{f.attr}() of a flattened {base.node.describe()}",
                              "read its items by constant keys, .keys()/.values()/.items(), or loop over it.")
            f.value = self.expr_of(base, f.value)
            return self.plain_call(e, skip_func=True)
        if isinstance(f, (gast.Name, gast.Subscript)):
            callee = self.value(copy.deepcopy(f))
            if isinstance(callee, View) and callee.node.kind == "object":
                # a callable instance called (a layer of a model, an item of a list of layers)
                return self.method_call(callee, "__call__", e)
        if isinstance(f, gast.Name) and len(e.args) == 3 and self.info.resolve(f.id) is builtins.setattr:
            stored = self.store_attribute(e)
            if stored is not None:
                return stored
        if isinstance(f, gast.Name) and f.id == "sorted" and len(e.args) == 1 and not e.keywords \
                and self.info.resolve("sorted") is builtins.sorted:
            keys = self.sorted_keys(self.value(e.args[0]))
            if keys is not None:
                return keys
        if isinstance(f, gast.Name) and f.id == "len" and len(e.args) == 1:
            base = self.value(e.args[0])
            if isinstance(base, _Returned):
                base = self.hoisted(base, e)
            if isinstance(base, View):
                return gast.copy_location(gast.Constant(value=len(base.node.keys), kind=None), e)
            e.args = [self.expr_of(base, e.args[0])]
            return e
        return self.plain_call(e)

    def plain_call(self, e: gast.Call, skip_func: bool = False) -> Any:
        if not skip_func:
            e.func = self.expr(e.func)
        spliced: list = []
        for a in e.args:
            inner = self.value(a.value) if isinstance(a, gast.Starred) else None
            if isinstance(inner, View) and inner.node.kind in ("tuple", "list", "namedtuple"):
                # f(*springs) of a flattened tuple: its items as arguments
                spliced.extend(self.expr_of(inner.child(k), a) for k in inner.node.keys)
            else:
                spliced.append(a)
        e.args = spliced
        keywords = []
        for k in e.keywords:
            inner = self.value(k.value) if k.arg is None else None
            if isinstance(inner, View) and inner.node.kind == "dict":
                keywords.extend(gast.keyword(arg=key, value=self.expr_of(inner.child(key), k.value))
                                for key in inner.node.keys)  # f(**kwargs): its items as keywords
            else:
                keywords.append(k)
        e.keywords = keywords
        values = [self.value(a) for a in e.args]
        # loss(forward(params, x)): a helper's returned dict passed whole, as if bound to a name first
        values = [self.hoisted(v, a) if isinstance(v, _Returned) else v for v, a in zip(values, e.args,
                                                                                         strict=True)]
        structured = {i: v for i, v in enumerate(values) if isinstance(v, View)}
        if structured:
            callee = self.resolve_function(e.func)
            if callee is None:
                if all(v.node.kind in ("tuple", "list") for v in structured.values()):
                    e.args = [self.literal(v, a) if isinstance(v, View) else self.expr_of(v, a)
                              for v, a in zip(values, e.args, strict=True)]
                    for k in e.keywords:
                        k.value = self.expr(k.value)
                    return e
                i, v = next(iter(structured.items()))
                raise located(self.info, e, f"a flattened {v.node.describe()} passed whole to a call "
                              "srcgrad cannot follow", "pass the arrays it holds, or call a Python "
                              "function defined with def (srcgrad flattens the argument there too).")
            return self.flat_call(callee, values, e)
        e.args = [self.expr_of(v, a) for v, a in zip(values, e.args, strict=True)]
        for k in e.keywords:
            kv = self.value(k.value)
            if isinstance(kv, View):
                raise located(self.info, e, f"a flattened {kv.node.describe()} passed by keyword",
                              "pass it by position.")
            k.value = self.expr_of(kv, k.value)
        return e

    def flat_call(self, callee: Callable, values: list, e: gast.Call) -> gast.Call:
        """A user function given structured arguments: a call to its flat variant with the leaves."""
        structures = {i: v.node for i, v in enumerate(values) if isinstance(v, View)}
        self.refuse_writes_in(callee, structures, e)
        flat = flat_function(callee, structures)
        args: list = []
        for v, a in zip(values, e.args, strict=True):
            if isinstance(v, View):
                args.extend(copy.deepcopy(r) for r in v.reads)
            else:
                args.append(self.expr_of(v, a))
        for k in e.keywords:
            k.value = self.expr(k.value)
        e.func = gast.copy_location(_name(self.static_name(flat, callee.__name__)), e)
        e.args = args
        return e

    def refuse_writes_in(self, callee: Callable, structures: dict, at: Any) -> None:
        """A function given a flattened argument that writes into it (`self.h = ...` in a method whose
        caller then reads self.h) is refused here, where the call is met: its write would go into the
        copy of a leaf that nobody reads, and the caller's read would see the old value."""
        if self.parse is None:
            return
        other = self.parse(callee)
        positional = [a.id for a in other.node.args.posonlyargs + other.node.args.args]
        names = {positional[i] for i in structures if i < len(positional)}
        for n in gast.walk(other.node):
            targets = n.targets if isinstance(n, gast.Assign) else [n.target] if isinstance(
                n, gast.AugAssign) else []
            for t in targets:
                base = t
                while isinstance(base, (gast.Attribute, gast.Subscript)):
                    base = base.value
                if t is not base and isinstance(base, gast.Name) and base.id in names:
                    what = f"{base.id}.{t.attr}" if isinstance(t, gast.Attribute) else f"{base.id}[...]"
                    raise located(other, n, f"{callee.__name__} writes into {what}, an argument srcgrad "
                                  "flattens into parameters (the write would not reach its caller)",
                                  "return the value from the method and use it in the caller, instead of "
                                  "storing it on the object (values that carry no derivative may be stored: "
                                  "self.count += 1, self.n = x.shape[0]).")

    def self_view(self) -> "View | None":
        """The flattened object this method was called on (its first parameter), if it is one."""
        args = self.info.node.args
        first = self.first_param
        view = self.views.get(first) if first is not None else None
        return view if isinstance(view, View) and view.node.kind == "object" and not args.vararg else None

    def super_call(self, method: str, e: gast.Call) -> Any:
        """`super().features(x)` in a method of class C: the next definition after C in the object's
        method resolution order, called with the same object."""
        base = self.self_view()
        owner_name = getattr(self.original, "__qualname__", "").rsplit(".", 1)[0]
        mro = base.node.cls.__mro__
        start = next((i for i, c in enumerate(mro) if c.__qualname__ == owner_name
                      and self.original in c.__dict__.values()), None)
        fn = None
        if start is not None:
            fn = next((c.__dict__[method] for c in mro[start + 1:] if method in c.__dict__), None)
        if not isinstance(fn, types.FunctionType):
            raise located(self.info, e, f"super().{method}() that srcgrad cannot resolve",
                          f"call the base class's method by name ({mro[1].__name__}.{method}(self, ...)).")
        values = [base] + [self.value(a) for a in e.args]
        return self.flat_call(fn, values, gast.Call(func=e.func, args=[base.obj, *e.args],
                                                    keywords=e.keywords))

    def method_call(self, base: View, method: str, e: gast.Call) -> Any:
        fn = base.node.cls.__dict__.get(method) if method in base.node.cls.__dict__ else getattr(
            base.node.cls, method, None)
        if isinstance(fn, staticmethod) and isinstance(fn.__func__, types.FunctionType):
            # a static method called through self: the function itself, without self
            e.func = gast.copy_location(_name(self.static_name(fn.__func__, fn.__func__.__name__)), e)
            return self.plain_call(e)
        if fn is None:
            # a function held by the object: called as it is, through the object
            e.func = gast.copy_location(gast.Attribute(value=base.obj, attr=method, ctx=gast.Load()), e)
            return self.plain_call(e, skip_func=True)
        if not isinstance(fn, types.FunctionType):
            raise located(self.info, e, f"{base.node.cls.__name__}.{method} is not a Python method srcgrad "
                          "can read", "call a method defined with def in the class.")
        values = [base] + [self.value(a) for a in e.args]
        return self.flat_call(fn, values, gast.Call(func=e.func, args=[base.obj, *e.args],
                                                    keywords=e.keywords))

    def store_attribute(self, e: gast.Call) -> Any:
        """setattr(self, "n_evals", ...) (a counter written by desugar, or by the user) on a flattened
        object: stored on the object itself, where the caller and later reads see it, as long as the
        attribute is not one of the object's arrays (those are parameters: a write would change a copy
        nobody reads, so it is refused)."""
        base = self.value(e.args[0])
        if not isinstance(base, View):
            return None
        attr = e.args[1].value if isinstance(e.args[1], gast.Constant) else None
        if base.node.kind != "object" or attr is None or attr in base.node.keys:
            name = attr if isinstance(attr, str) else "?"
            what = gast.Attribute(value=e.args[0], attr=name, ctx=gast.Store())
            raise self.write_refused(base, what, e)
        e.args = [base.obj, e.args[1], self.expr(e.args[2])]
        return e

    def sorted_keys(self, v: Any) -> Any:
        """sorted() of a flattened dict (its keys), of its .keys() or .items(): the order is known at
        transform time. None for anything else (sorted as a list of values, by desugar)."""
        keys = None
        if isinstance(v, View) and v.node.kind == "dict":
            keys = sorted(v.node.keys)
        elif isinstance(v, gast.List) and v.elts and all(isinstance(x, gast.Constant) for x in v.elts):
            keys = sorted(x.value for x in v.elts)
        if keys is not None:  # a static list: a loop over it is unrolled
            return View(Node("list", tuple(range(len(keys))), tuple(Node("static", value=k) for k in keys)),
                        [])
        if isinstance(v, View) and v.node.kind == "list" and all(
                c.kind == "tuple" and c.children[0].kind == "static" for c in v.node.children):
            parts = []
            start = 0
            for c in v.node.children:
                parts.append((c.children[0].value, c, v.reads[start:start + c.n_leaves]))
                start += c.n_leaves
            parts.sort(key=lambda p: p[0])
            return View(Node("list", v.node.keys, tuple(c for _, c, _ in parts)),
                        [r for _, _, rs in parts for r in rs])
        return None

    def dict_view(self, base: View, kind: str, e: gast.Call) -> Any:
        keys = base.node.keys
        if kind == "keys":
            elts = [gast.Constant(value=k, kind=None) for k in keys]
            return gast.copy_location(gast.List(elts=elts, ctx=gast.Load()), e)
        parts = [base.child(k) for k in keys]
        if kind == "values":
            if any(isinstance(p, View) for p in parts):
                return View(Node("list", tuple(range(len(keys))), base.node.children), base.reads)
            return gast.copy_location(gast.List(elts=[self.expr_of(p, e) for p in parts], ctx=gast.Load()), e)
        children = tuple(Node("tuple", (0, 1), (Node("static", value=k), c))
                         for k, c in zip(keys, base.node.children, strict=True))
        items = View(Node("list", tuple(range(len(keys))), children), base.reads)
        return items

    def resolve_function(self, func: Any) -> Callable | None:
        obj = _callee(self.info, func, self.bound_here)
        if isinstance(obj, types.MethodType) and isinstance(obj.__func__, types.FunctionType):
            return None  # a bound method: its owner is not flattened here
        return obj if isinstance(obj, types.FunctionType) else None

    def static_expr(self, value: Any, at: Any) -> gast.expr:
        if value is None or isinstance(value, (bool, int, float, str)):
            return gast.copy_location(gast.Constant(value=value, kind=None), at)
        return gast.copy_location(_name(self.static_name(value, "static")), at)

    def static_name(self, value: Any, base: str) -> str:
        """A name for `value` that the function's body can read (a closure-like binding)."""
        key = id(value)
        if key not in self.statics:
            nm = base
            k = 1
            while nm in self.taken or nm in self.info.globals or nm in self.info.closure:
                nm = f"{base}_{k}"
                k += 1
            self.taken.add(nm)
            self.info.closure[nm] = types.CellType(value)
            self.statics[key] = nm
        return self.statics[key]

    def literal(self, v: View, at: Any) -> gast.expr:
        elts = [self.expr_of(v.child(k), at) for k in v.node.keys]
        node = gast.Tuple(elts=elts, ctx=gast.Load()) if v.node.kind == "tuple" else gast.List(
            elts=elts, ctx=gast.Load())
        return gast.copy_location(node, at)

    def hoisted(self, r: "_Returned", at: Any) -> View:
        """`step(s)["q"]`, `for k, v in step(s).items()`: what a helper returning dicts gives, read where
        it is called, is unpacked into variables by a statement of its own just before the one calling
        it (`step_q, step_p = step_1(s)`), as if bound to a name there. Refused where that would change
        when the call runs: in a while test or a conditional expression (run on some passes only), or
        after a call in the same statement that may change what it reads (a user function, a method)."""
        order = self.order or []
        index = next((i for i, (c, _) in enumerate(order) if c is r.call), None)
        if index is None:
            raise self.whole_value_refused(r, at)
        inside = {id(n) for n in gast.walk(r.call)}
        for c, changes in order[:index]:
            if id(c) not in inside and changes:
                raise located(self.info, at, f"the dict that {r.name} returns read where it is called, after "
                              "a call in the same statement that may change what it reads (it runs first)",
                              f"bind it to a name first, in a statement of its own (s = {r.name}(...)), then "
                              "read it by key (s['k']).")
        stmts, view = self.unpacked(r, r.name, self.current)
        self.pre.extend(stmts)
        return view

    def may_change_state(self, c: gast.Call) -> bool:
        """Whether a call may change what another call reads: a user function's or a method's (not one
        of NumPy's, a builtin's, an array method, or a helper returning dicts, which is read in order)."""
        f = c.func
        root = f
        while isinstance(root, gast.Attribute):
            root = root.value
        if not isinstance(root, gast.Name):
            return True
        if root.id in self.bound_here:
            return not (isinstance(f, gast.Attribute) and f.attr in _ARRAY_ATTRIBUTES)
        obj = _callee(self.info, f, self.bound_here)
        if _shape_node(returned_shape(obj, self.parse)) is not None:
            return False
        module = (getattr(obj, "__module__", None) or "").split(".")[0]
        return not (module in ("builtins", "math") + _LIBRARIES or isinstance(obj, types.BuiltinFunctionType))

    def whole_value_refused(self, r: "_Returned", at: Any) -> Exception:
        """What a helper returning a dict gives, read where no statement binds it to a name (its leaves
        are unpacked into variables by such a statement only)."""
        return located(self.info, at, f"the dict that {r.name} returns (a Dict literal) read where it is "
                       "called: srcgrad reads a returned dict once a statement binds it to a name",
                       f"bind it to a name first (s = {r.name}(...)), then read it by key (s['k']), loop "
                       "over it, return it or pass the name to a function defined with def.")

    def expr_of(self, v: Any, at: Any) -> gast.expr:
        """An expression for what `value` returned: Views of tuples and lists become literals, static
        values their binding; other Views cannot be values here."""
        if isinstance(v, _Returned):
            raise self.whole_value_refused(v, at)
        if isinstance(v, View):
            if v.node.kind in ("tuple", "list"):
                return self.literal(v, at)
            raise located(self.info, at, f"a flattened {v.node.describe()} used as a whole value here",
                          "read its arrays by key or attribute (params['W'], model.W), or pass it to a "
                          "function defined with def.")
        if isinstance(v, _StaticValue):
            return self.static_expr(v.value, at)
        return v

    def expr(self, e: Any) -> Any:
        if isinstance(e, (gast.Name, gast.Subscript, gast.Attribute, gast.Call)):
            return self.expr_of(self.value(e), e)
        if isinstance(e, (gast.IfExp, gast.BoolOp)) and self.order is not None:
            # evaluated in part only: no call in it is made before the statement (`hoisted`)
            saved, self.order = self.order, None
            try:
                return self.expr(e)
            finally:
                self.order = saved
        if isinstance(e, gast.Compare) and len(e.ops) == 1 and isinstance(e.ops[0], (gast.In, gast.NotIn)) \
                and isinstance(e.left, gast.Constant) and isinstance(e.comparators[0], gast.Name):
            view = self.views.get(e.comparators[0].id)
            if isinstance(view, View) and view.node.kind == "dict":
                # `"b" in d`: the keys are known, so the answer is too
                found = e.left.value in view.node.keys
                return gast.copy_location(gast.Constant(
                    value=found if isinstance(e.ops[0], gast.In) else not found, kind=None), e)
        if isinstance(e, _SCOPES):
            for n in gast.walk(e):
                if isinstance(n, gast.Name) and n.id in self.views:
                    first = "bind it to a name first (new = {k: ... for k in params}), or " \
                        if isinstance(e, gast.DictComp) else ""
                    raise located(self.info, e, f"a {type(e).__name__} reading the flattened argument "
                                  f"{n.id}", f"{first}write it as a for loop (srcgrad unrolls loops over a "
                                  "pytree).")
            return e
        for field_name, v in gast.iter_fields(e):
            if isinstance(v, gast.expr):
                setattr(e, field_name, self.expr(v))
            elif isinstance(v, list):
                setattr(e, field_name, [self.expr(x) if isinstance(x, gast.expr) else x for x in v])
        return e


def _calls_in_order(s: gast.stmt) -> list:
    """The calls statement `s` makes itself (its test or iterable, not its blocks), in the order they
    run: each after its function and arguments, the value of an assignment before its targets."""
    if isinstance(s, gast.Assign):
        parts = [s.value, *s.targets]
    elif isinstance(s, (gast.For, gast.If, gast.While)):
        parts = [s.iter if isinstance(s, gast.For) else s.test]
    else:
        parts = [v for _, v in gast.iter_fields(s) if isinstance(v, gast.expr)]
    out: list = []

    def walk(n: Any) -> None:
        if isinstance(n, _SCOPES):
            return
        for _, v in gast.iter_fields(n):
            for x in v if isinstance(v, list) else [v]:
                if isinstance(x, gast.AST):
                    walk(x)
        if isinstance(n, gast.Call):
            out.append(n)

    for p in parts:
        walk(p)
    return out


def _identifier_of(key: Any) -> str:
    text = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in str(key))
    return text or "item"


def _chain(info: Any, e: Any) -> Any:
    parts = []
    while isinstance(e, gast.Attribute):
        parts.append(e.attr)
        e = e.value
    if not isinstance(e, gast.Name):
        return None
    obj = info.resolve(e.id)
    for p in reversed(parts):
        obj = getattr(obj, p, None)
    return obj


def _static_keyed(e: Any) -> bool:
    """A dict literal whose keys are constants (`{}` included): read as one variable per key."""
    return isinstance(e, gast.Dict) and all(
        isinstance(k, gast.Constant) and isinstance(k.value, (str, int)) for k in e.keys)


def localize_dicts(info: Any, parse: Any = None) -> None:
    """Dict literals with constant keys bound to names in a function with no pytree parameters, and
    what helpers returning such dicts give: read as one variable per key, as a pytree argument's leaves
    are (`grads["w"]`, `net["l1"]["w"]`, `.values()`, loops over it, `d["k"] = v`, `s = step(s)`)."""
    refuse_item_writes_into_arguments(info)
    if not _builds_dicts(info, parse):
        return
    fl = Flattener(info, {}, {}, parse)
    try:
        body = fl.block(copy.deepcopy(info.node.body))
    except TransformError:
        args = info.node.args
        if not reads_as_container(info, tuple(range(len(args.posonlyargs + args.args)))):
            raise
        # a function written for pytree arguments (`for k in params: new[k] = ...`, `self.step(s)`):
        # its dicts are read when it is built for the structures it is called with (flatten_parameters
        # runs the same rewrite, its loops over them unrolled); called otherwise, it stays as written
        return
    info.node.body = body


def _builds_dicts(info: Any, parse: Any) -> bool:
    """Whether the function binds a dict literal with constant keys to a name, or calls a helper that
    returns dicts (whose result it then reads as one variable per key)."""
    local = _bound_names(info.node)
    for n in gast.walk(info.node):
        if isinstance(n, gast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], gast.Name) \
                and _static_keyed(n.value):
            return True
        if isinstance(n, gast.Call) and _shape_node(returned_shape(_callee(info, n.func, local), parse)):
            return True
    return False


def refuse_item_writes_into_arguments(info: Any) -> None:
    """`batch["w"] += x` (or `= x * 2`) on a dict argument that is not differentiated (a string key
    says it is a dict): Python would change the caller's dict (and, for `+=`, the caller's array in
    place), and srcgrad's generated code never writes into its inputs, so it is refused here, where the
    line is known, rather than when it runs. A differentiated dict argument is flattened, and a write
    into it refused by `Flattener.write_refused`."""
    args = info.node.args
    params = {a.id for a in args.posonlyargs + args.args + args.kwonlyargs}
    params -= {n.id for n in gast.walk(info.node) if isinstance(n, gast.Name)
               and isinstance(n.ctx, (gast.Store, gast.Del))}
    for n in gast.walk(info.node):
        target = n.target if isinstance(n, gast.AugAssign) else n.targets[0] if isinstance(
            n, gast.Assign) and len(n.targets) == 1 else None
        if not isinstance(target, gast.Subscript) or not isinstance(target.value, gast.Name) \
                or target.value.id not in params or not isinstance(target.slice, gast.Constant) \
                or not isinstance(target.slice.value, str):
            continue
        p, key = target.value.id, target.slice.value
        var = _identifier_of(key)
        raise located(info, n, f"{info.node.name} writes into {p}[{key!r}], an item of its argument {p}: "
                      "it would change the caller's dict" + (
                          " and its array, in place" if isinstance(n, gast.AugAssign) else ""),
                      f"compute the new value into a variable of its own ({var} = ...) and read that where "
                      f"{p}[{key!r}] was read; or build a new dict as a literal and return it.")


def _assign(target: str, value: Any, at: Any) -> gast.Assign:
    return gast.copy_location(gast.Assign(targets=[_name(target, gast.Store())], value=value,
                                          type_comment=None), at)


def _name(id_: str, ctx: Any = None) -> gast.Name:
    return gast.Name(id=id_, ctx=ctx or gast.Load(), annotation=None, type_comment=None)


def flatten_parameters(info: Any, flat_fn: Callable, parse: Any = None) -> None:
    """Rewrite `info` (the original function, parsed and lowered) into the flat function's: the
    structured parameters replaced by their leaves, every read of them resolved."""
    original, structures, flat_params = flat_fn.__srcgrad_flat__
    args = info.node.args
    positional = args.posonlyargs + args.args
    if VARARGS in structures and args.vararg is not None:
        positional = positional + [args.vararg]
        structures = {**structures, len(positional) - 1: structures[VARARGS]}
        args.vararg = None
    if KWARGS in structures and args.kwarg is not None:
        kw = args.kwarg.id
        args.kwarg = None
    else:
        kw = None
    by_name: dict[str, Node] = {}
    leaf_params: dict[str, list[str]] = {}
    new_args: list = []
    cursor = 0
    for i, p in enumerate(positional):
        node = structures.get(i)
        if node is None:
            new_args.append(p)
            cursor += 1
            continue
        names = flat_params[cursor:cursor + node.n_leaves]
        cursor += node.n_leaves
        by_name[p.id] = node
        leaf_params[p.id] = names
        for n in names:
            new_args.append(gast.Name(id=n, ctx=gast.Param(), annotation=None, type_comment=None))
    if args.defaults:
        # defaults belong to the last parameters, which stay as they are (structured ones are passed)
        n_def = len(args.defaults)
        if any(i >= len(positional) - n_def for i in structures):
            raise located(info, info.node, "a structured argument given a default value",
                          "pass the structured argument explicitly.")
    args.posonlyargs = []
    args.args = new_args
    if kw is not None:
        by_name[kw] = structures[KWARGS]
        leaf_params[kw] = []
    fl = Flattener(info, by_name, leaf_params, parse)
    fl.original = original
    fl.first_param = positional[0].id if positional else None
    info.node.body = fl.block(info.node.body)
    info.fn = flat_fn


def flatten_held_objects(info: Any, parse: Any = None) -> None:
    """Objects of the user's classes held in a closure or a global and called in the body (`model(x)`,
    `model.forward(x)`, `net.layers[0](h)`): each is read as a flattened object whose leaves are read
    from it when the call runs (`model.l1.W`), so its methods are followed by their flat variants as
    for an argument. Their arrays are constants of the derivative (derivatives are taken with respect
    to arguments only). The build depends on the object's structure (its attributes, the lengths of
    its lists): a change of structure rebuilds it (`_HeldStructure`)."""
    local = {n.id for n in gast.walk(info.node) if isinstance(n, gast.Name)
             and isinstance(n.ctx, (gast.Store, gast.Param, gast.Del))}
    held: dict[str, Node] = {}
    for root, called in _held_roots(info.node, local):
        if root.id in held or (root.id not in info.closure and root.id not in info.globals):
            continue
        obj = info.resolve(root.id)
        if isinstance(obj, (list, tuple, dict)):
            # a list, tuple or dict of models or functions (`for layer in layers: x = layer(x)`,
            # `run(layers, x)`, `models["enc"](x)`): read as a flattened container, its loops unrolled
            node = structure(obj, objects=True)
            if not _holds_callables(node):
                continue
        else:
            if not called or not is_object(obj) or not _user_code(obj):
                continue
            node = structure(obj, objects=True)
            if node.kind != "object":
                continue
        held[root.id] = node
        from srcgrad.parse import record  # noqa: PLC0415 -- parse imports this module

        record(_HeldStructure(obj, node), "current", _SAME)
    if not held:
        return
    leaf_params = {k: [] for k in held}
    fl = Flattener(info, held, leaf_params, parse)
    for k, node in held.items():
        fl.views[k] = View(node, _reads(_name(k), node))
    info.node.body = fl.block(info.node.body)


def _held_roots(root_node: Any, local: set[str]) -> list:
    """The names a held object or container may be read through, each with whether it is the root of a
    call's function (`model(x)`, `model.forward(x)`, `layers[0](x)`; an object is read for those only):
    also, for a container, a loop over it (`for m in models`, `models.items()`) or a positional argument
    of a call (`run(layers, x)`)."""
    out: list = []
    for n in gast.walk(root_node):
        if isinstance(n, gast.Call):
            root = n.func
            while isinstance(root, (gast.Attribute, gast.Subscript)):
                root = root.value
            if isinstance(root, gast.Name) and root.id not in local:
                out.append((root, True))
            out.extend((a, False) for a in n.args if isinstance(a, gast.Name) and a.id not in local)
        elif isinstance(n, gast.For):
            it = n.iter
            if isinstance(it, gast.Call) and isinstance(it.func, gast.Attribute) and not it.args \
                    and it.func.attr in ("keys", "values", "items"):
                it = it.func.value
            if isinstance(it, gast.Name) and it.id not in local:
                out.append((it, False))
    return out


def _holds_callables(node: Node) -> bool:
    """Whether a container's structure holds a model (an object of the user's class) or a function."""
    if node.kind == "object":
        return True
    if node.kind == "static":
        return callable(node.value) and not isinstance(node.value, type)
    return any(_holds_callables(c) for c in node.children)


def _user_code(obj: Any) -> bool:
    """An object whose class is the user's own (its methods have Python source to follow)."""
    module = (type(obj).__module__ or "").split(".")[0]
    return module not in ("numpy", "scipy", "srcgrad", "jax", "torch", "dask", "cupy", "functools") and \
        module not in __import__("sys").stdlib_module_names


def _reads(e: gast.expr, node: Node) -> list:
    """The expressions reading each slot of `node` from the value `e` (a held object's leaves, read when
    the call runs)."""
    if node.kind == "leaf":
        return [e]
    if node.kind == "static":
        return []
    out = [e] if node.kind == "object" else []
    for k, c in zip(node.keys, node.children, strict=True):
        if node.kind in ("object", "dataclass") or (node.kind == "namedtuple"):
            part = gast.Attribute(value=copy.deepcopy(e), attr=k, ctx=gast.Load())
        else:
            part = gast.Subscript(value=copy.deepcopy(e), slice=gast.Constant(value=k, kind=None),
                                  ctx=gast.Load())
        out.extend(_reads(part, c))
    return out


_UNROLL = 256  # the most items of a range a loop keyed by its variable is unrolled over

_SAME = object()
_CHANGED = object()


class _HeldStructure:
    """A dependency of a build that read a held object as flattened: `current` is `_SAME` while the
    object has the structure the build saw (parse.Dependencies compares it by identity)."""

    __slots__ = ("obj", "node")

    def __init__(self, obj: Any, node: Node):
        self.obj, self.node = obj, node

    @property
    def current(self) -> Any:
        return _SAME if structure(self.obj, objects=True) == self.node else _CHANGED


_ARRAY_ATTRIBUTES = frozenset(dir(__import__("numpy").ndarray))


def reads_as_container(info: Any, positions: tuple[int, ...]) -> bool:
    """Whether the function reads one of the parameters at `positions` as a container (a constant string
    key, an attribute arrays do not have, .keys()/.values()/.items(), a loop over it, unpacking): then a
    failure to build it for arrays says nothing about the pytree it is meant to be called with."""
    args = info.node.args
    positional = [a.id for a in args.posonlyargs + args.args]
    names = {positional[i] for i in positions if i < len(positional)}
    loop_names = {n.target.id for n in gast.walk(info.node) if isinstance(n, gast.For)
                  and isinstance(n.target, gast.Name)}
    for n in gast.walk(info.node):
        if isinstance(n, gast.Subscript) and isinstance(n.value, gast.Name) and n.value.id in names \
                and isinstance(n.slice, gast.Constant) and isinstance(n.slice.value, str):
            return True
        if isinstance(n, gast.Subscript) and isinstance(n.value, gast.Name) and n.value.id in names \
                and isinstance(n.slice, gast.Name) and n.slice.id in loop_names:
            return True  # `for k in ("enc", "dec"): x = models[k](x)`
        if isinstance(n, gast.Call) and isinstance(n.func, gast.Subscript) \
                and isinstance(n.func.value, gast.Name) and n.func.value.id in names:
            return True  # `layers[0](x)`: an item called
        if isinstance(n, gast.Attribute) and isinstance(n.value, gast.Name) and n.value.id in names \
                and n.attr not in _ARRAY_ATTRIBUTES:
            return True
        if isinstance(n, (gast.For, gast.comprehension)) and isinstance(n.iter, gast.Name) \
                and n.iter.id in names:
            return True
        if isinstance(n, gast.Assign) and isinstance(n.targets[0], gast.Tuple) \
                and isinstance(n.value, gast.Name) and n.value.id in names:
            return True
    return False


def takes_star_args(f: Any) -> bool:
    """`def f(*springs)` / `def f(**options)` (not a flat variant already): built per argument count."""
    code = getattr(f, "__code__", None)
    return code is not None and bool(code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)) \
        and getattr(f, "__srcgrad_flat__", None) is None


def pytree_positions(info: Any, method: bool) -> tuple[int, ...] | None:
    """Every positional parameter, where a build for arrays that failed may be of a function written for
    pytrees (it reads a parameter as a container, or it is a method whose self is flattened): its
    transform is then built per structure at the first call. None where the failure stands."""
    if info is None:
        return None
    every = tuple(range(len(info.node.args.args)))
    return every if method or reads_as_container(info, every) else None
