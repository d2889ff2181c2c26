"""Structured outputs, read as flat tuples (front end): a function that returns a dict literal
`{"mean": m, "spread": s}`, a named tuple or dataclass it builds (`Stats(m, s)`), a list literal, or a pair
whose aux is one of these (has_aux), is differentiated as the same function returning the flat tuple of
the leaves `(m, s)`, and what the transform returns is put back into that structure, as JAX returns a
tangent in the output's structure:

    sg.jvp(moments)(x, t)   ->  ({"mean": m, "spread": s}, {"mean": dm, "spread": ds})
    sg.vjp(moments)(x, {"mean": 1.0, "spread": 0.0})     # the cotangent in the output's structure

Only literals (and constructor calls of a named tuple or dataclass giving every field) in the function's
own `return` statements are read this way, and every return must have the same structure; a structure
built otherwise stays a clear error of the compiler.

`Shape` is the static structure of a return value: None for a value kept as it is (a leaf, or a tuple
without structure inside), ('dict', keys, children), ('tuple', children), ('list', children) and
('record', class, fields, children) around the leaves.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
from typing import Any, Callable

import gast

from srcgrad.desugar import returns_in

Shape = Any  # None, ("dict", keys, children), ("tuple" or "list", children), ("record", cls, fields, ...)


def _shape_of(e: gast.expr, inside: bool = False, resolve: Callable[[str], Any] | None = None) -> Shape:
    """The structure of return expression `e` (tuple literals inside a dict are structure too, so the
    flat tuple holds arrays and numbers only). `resolve(name)` says what a called name is, so a named
    tuple or a dataclass built in the return (`Out(mean, var)`) is structure too."""
    if isinstance(e, gast.Dict) and e.keys and all(
            isinstance(k, gast.Constant) and isinstance(k.value, (str, int)) for k in e.keys):
        return ("dict", tuple(k.value for k in e.keys),
                tuple(_shape_of(v, True, resolve) for v in e.values))
    if isinstance(e, gast.List) and e.elts:
        return ("list", tuple(_shape_of(v, True, resolve) for v in e.elts))
    if isinstance(e, gast.Tuple):
        children = tuple(_shape_of(v, inside, resolve) for v in e.elts)
        return ("tuple", children) if inside or any(c is not None for c in children) else None
    record = _record_call(e, resolve)
    if record is not None:
        cls, fields, values = record
        return ("record", cls, fields, tuple(_shape_of(v, True, resolve) for v in values))
    return None


def _record_call(e: gast.expr, resolve: Callable[[str], Any] | None) -> tuple | None:
    """(class, field names, value expressions) of `Out(a, b=c)` where Out is a named tuple or a
    dataclass and every field is given; None for any other expression."""
    if resolve is None or not isinstance(e, gast.Call) or not isinstance(e.func, gast.Name) or any(
            isinstance(a, gast.Starred) for a in e.args) or any(k.arg is None for k in e.keywords):
        return None
    cls = resolve(e.func.id)
    if not isinstance(cls, type):
        return None
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        fields = tuple(cls._fields)
    elif dataclasses.is_dataclass(cls):
        fields = tuple(f.name for f in dataclasses.fields(cls) if f.init)
    else:
        return None
    given = dict(zip(fields, e.args, strict=False))
    given.update({k.arg: k.value for k in e.keywords})
    if len(e.args) > len(fields) or set(given) != set(fields):
        return None
    return cls, fields, tuple(given[f] for f in fields)


def _leaf_exprs(e: gast.expr, shape: Shape) -> list:
    """The expressions of the leaves of return expression `e` of structure `shape`, in order."""
    if shape is None:
        return [e]
    if shape[0] == "dict":
        parts, children = e.values, shape[2]
    elif shape[0] == "record":
        parts, children = _record_call(e, lambda name: shape[1])[2], shape[3]
    else:
        parts, children = e.elts, shape[1]
    return [x for p, c in zip(parts, children, strict=True) for x in _leaf_exprs(p, c)]


def _flat(e: gast.expr, shape: Shape) -> gast.expr:
    return e if shape is None else gast.copy_location(
        gast.Tuple(elts=_leaf_exprs(e, shape), ctx=gast.Load()), e)


def own_returns(fdef: gast.FunctionDef) -> list[gast.Return]:
    """The `return` statements of `fdef` itself (not of functions defined inside it)."""
    return returns_in(fdef.body)


def dict_outputs(info: Any) -> Shape:
    """The structure of the dicts `info`'s function returns (None when it returns no dict literal, or
    returns differently structured values on different paths)."""
    returns = own_returns(info.node)
    shapes = {repr(_shape_of(r.value, resolve=info.resolve)) if r.value is not None else None
              for r in returns}
    if len(shapes) != 1:
        return None
    return _shape_of(returns[0].value, resolve=info.resolve) if returns[0].value is not None else None


def rewrite_returns(info: Any, pair: bool) -> None:
    """Rewrite `info`'s returns of dict literals (see `dict_outputs`) into returns of the flat tuple of
    their leaves; with `pair` (has_aux), each half of the returned pair is flattened on its own."""
    for r in own_returns(info.node):
        shape = _shape_of(r.value, resolve=info.resolve)
        if pair:
            r.value.elts = [_flat(e, c) for e, c in zip(r.value.elts, shape[1], strict=True)]
        else:
            r.value = _flat(r.value, shape)


def tuple_returning(fn: Callable, shape: Shape, pair: bool) -> Callable:
    """`fn` returning the flat tuple of its leaves where it returns dict literals: a plain function
    (called directly it calls fn and flattens what it returns) whose source, for the compiler, is fn's
    with the rewrite (`rewrite_returns`)."""
    key = "__srcgrad_as_tuples_pair__" if pair else "__srcgrad_as_tuples__"
    hit = fn.__dict__.get(key)
    if hit is not None and hit.__srcgrad_code__ is fn.__code__:
        return hit  # one variant per function, so the transforms built for it are cached with it
    if pair:
        def post(out: Any) -> Any:
            return tuple(to_tuples(c, v, "the output") for c, v in zip(shape[1], out, strict=True))
    else:
        def post(out: Any) -> Any:
            return to_tuples(shape, out, "the output")
    as_tuples = _calling_with_same_parameters(fn, post)
    as_tuples.__srcgrad_outputs__ = (fn, pair)
    as_tuples.__srcgrad_code__ = fn.__code__
    fn.__dict__[key] = as_tuples
    return as_tuples


def to_tuples(shape: Shape, value: Any, what: str) -> Any:
    """A value in the output's structure (a cotangent for vjp) read into the flat tuple of its leaves,
    which the transform of the tuple-returning variant takes."""
    if shape is None:
        return value
    leaves: list = []
    _collect(shape, value, what, leaves)
    return tuple(leaves)


def _collect(shape: Shape, value: Any, what: str, out: list) -> None:
    if shape is None:
        out.append(value)
    elif shape[0] == "dict":
        _, keys, children = shape
        if not isinstance(value, dict) or set(value) != set(keys):
            got = sorted(value, key=str) if isinstance(value, dict) else type(value).__name__
            raise ValueError(f"{what} must be a dict with the keys the function returns, "
                             f"{sorted(keys, key=str)}; got {got}")
        for k, c in zip(keys, children, strict=True):
            _collect(c, value[k], f"{what}[{k!r}]", out)
    elif shape[0] == "record":
        _, cls, fields, children = shape
        if not isinstance(value, cls):
            raise ValueError(f"{what} must be a {cls.__name__}, as the function returns; got "
                             f"{type(value).__name__}")
        for f, c in zip(fields, children, strict=True):
            _collect(c, getattr(value, f), f"{what}.{f}", out)
    else:
        children = shape[1]
        if not isinstance(value, (tuple, list)) or len(value) != len(children):
            raise ValueError(f"{what} must be a {shape[0]} of {len(children)} in the output's structure")
        for i, (c, v) in enumerate(zip(children, value, strict=True)):
            _collect(c, v, f"{what}[{i}]", out)


def to_dicts(shape: Shape, value: Any) -> Any:
    """What the transform returned for the tuple-returning variant (a flat tuple of leaves), put back
    into the output's structure. A Jacobian is a tuple over the output's leaves too (each holding the
    differentiated arguments' structure, as JAX nests it), so it is put back the same way."""
    if shape is None or value is None:
        return value
    return _rebuild(shape, iter(value))


def _rebuild(shape: Shape, leaves: Any) -> Any:
    if shape is None:
        return next(leaves)
    if shape[0] == "dict":
        _, keys, children = shape
        return {k: _rebuild(c, leaves) for k, c in zip(keys, children, strict=True)}
    if shape[0] == "record":
        _, cls, fields, children = shape
        return cls(**{f: _rebuild(c, leaves) for f, c in zip(fields, children, strict=True)})
    items = [_rebuild(c, leaves) for c in shape[1]]
    return items if shape[0] == "list" else tuple(items)


def part(shape: Shape, i: int) -> Shape:
    """The structure of element i of a returned tuple (has_aux: 0 the value, 1 the aux)."""
    return shape[1][i] if shape is not None and shape[0] == "tuple" else None


def output_shape(f: Any, parse: Callable[[Any], Any]) -> Shape:
    """The dict structure of what plain function `f` returns (see `dict_outputs`; `parse` is
    parse.parse_function), kept on f. A function whose source cannot be read returns no dict here (its
    transform says why)."""
    if not isinstance(f, types.FunctionType) or getattr(f, "__srcgrad_outputs__", None) is not None \
            or getattr(f, "__srcgrad_target__", None) is not None:
        return None
    cached = f.__dict__.get("__srcgrad_dict_outputs__", _UNSEEN)
    if cached is not _UNSEEN and cached[0] is f.__code__:
        return cached[1]
    try:
        shape = dict_outputs(parse(f))
    except Exception:  # noqa: BLE001  (the transform itself reports what is wrong with f)
        shape = None
    f.__dict__["__srcgrad_dict_outputs__"] = (f.__code__, shape)
    return shape


_UNSEEN = object()


def serving_dicts(f: Callable, kind: str, has_aux: bool, transform: Callable[[Callable], Callable],
                  parse: Callable[[Any], Any]) -> Any:
    """`transform` (jvp, vjp, jacobian, or grad / value_and_grad with has_aux) of `f`, where f returns
    dict literals: built for the tuple-returning variant, its results put back into the dicts and a
    vjp's cotangent read from them. None where f returns no dict literal."""
    shape = output_shape(f, parse)
    if shape is None:
        return None
    if has_aux and not (shape[0] == "tuple" and len(shape[1]) == 2):
        return None  # not a (value, aux) pair: has_aux says so itself
    inner = transform(tuple_returning(f, shape, has_aux))
    value_shape, aux_shape = (part(shape, 0), part(shape, 1)) if has_aux else (shape, None)

    @functools.wraps(inner)
    def structured(*args: Any, **kwargs: Any) -> Any:
        if kind == "vjp" and args:
            args = args[:-1] + (to_tuples(value_shape, args[-1], "the cotangent"),)
        out = inner(*args, **kwargs)
        if kind == "jacobian":
            return to_dicts(shape, out)
        if kind == "grad":
            return (out[0], to_dicts(aux_shape, out[1])) if has_aux else out
        if kind == "value_and_grad":
            (value, aux), grads = out
            return (value, to_dicts(aux_shape, aux)), grads
        if kind == "jvp":
            rest = (to_dicts(aux_shape, out[2]),) if has_aux else ()
            return (to_dicts(value_shape, out[0]), to_dicts(value_shape, out[1])) + rest
        if kind == "vjp":
            rest = (to_dicts(aux_shape, out[2]),) if has_aux else ()
            return (to_dicts(value_shape, out[0]), out[1]) + rest
        return out

    return structured


def _calling_with_same_parameters(fn: Callable, post: Callable[[Any], Any]) -> Callable:
    """A function with fn's parameters (names, kinds, defaults) returning `post(fn(...))`: the
    transforms read parameters from the function they are given."""
    kinds = inspect.Parameter
    header: list[str] = []
    passed: list[str] = []
    star = False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is kinds.VAR_POSITIONAL:
            header.append(f"*{p.name}")
            passed.append(f"*{p.name}")
            star = True
        elif p.kind is kinds.VAR_KEYWORD:
            header.append(f"**{p.name}")
            passed.append(f"**{p.name}")
        elif p.kind is kinds.KEYWORD_ONLY:
            if not star:
                header.append("*")
                star = True
            header.append(p.name)
            passed.append(f"{p.name}={p.name}")
        else:
            header.append(p.name)
            passed.append(p.name)
    n_posonly = sum(p.kind is kinds.POSITIONAL_ONLY for p in inspect.signature(fn).parameters.values())
    if n_posonly:
        header.insert(n_posonly, "/")
    ns: dict[str, Any] = {"_srcgrad_fn": fn, "_srcgrad_post": post}
    name = fn.__name__ if fn.__name__.isidentifier() else "function"
    exec(f"def {name}({', '.join(header)}):\n"  # noqa: S102
         f"    return _srcgrad_post(_srcgrad_fn({', '.join(passed)}))\n", ns)
    out = ns[name]
    out.__defaults__, out.__kwdefaults__ = fn.__defaults__, fn.__kwdefaults__
    out.__name__, out.__qualname__ = fn.__name__, fn.__qualname__
    out.__module__, out.__doc__ = fn.__module__, fn.__doc__
    return out
