"""The compiler's public face: grad, value_and_grad, vjp. Each is a function and a decorator.

    df = sg.grad(f)                  # or @sg.grad / @sg.grad(wrt=(0, 1))
    df(x, y)                         # gradient w.r.t. x; inspect.getsource(df) / df.source show the code
    sg.value_and_grad(f)(x)          # (f(x), gradient)
    sg.vjp(f)(x, v)                  # (f(x), v^T J)

A transform is built once per (function, transform, wrt) (a redefined function is a new function and
is transformed again), eagerly, so unsupported code raises TransformError when `grad` is called, not
later. Generated code is then specialized per argument-type signature on first use: when arguments are
Python floats, the scalar variant uses `math` and plain operators (no NumPy call per scalar operation).
"""

from __future__ import annotations

import functools
import inspect
import types
from typing import Any, Callable

import gast
import numpy as np

from srcgrad import codegen, reuse, stages
from srcgrad.errors import TransformError, located
from srcgrad.flatten import per_argument_count, pytree_positions, takes_star_args
from srcgrad.leafwise import MISS, Leafwise
from srcgrad.outputs import own_returns, serving_dicts
from srcgrad.parse import Dependencies, parse_function, signature_of
from srcgrad.pipeline import Builder, Generated, cache_on
from srcgrad.runtime.dask_support import finisher as dask_finisher
from srcgrad.runtime.stack import NonScalarOutput
from srcgrad.runtime.stack import detach as _detach

__all__ = ["grad", "value_and_grad", "vjp", "compile", "TransformError"]

_SCALAR_TYPES = (float, int, bool)


def _argnums(wrt: Any, argnums: Any) -> Any:
    """`argnums=` (JAX's name) is `wrt`; giving both is an error unless they agree."""
    if argnums is None:
        return wrt
    if wrt not in (0, argnums):
        raise TypeError(f"pass either wrt or argnums, not both (wrt={wrt!r}, argnums={argnums!r})")
    return argnums


def _wrt(wrt: int | tuple[int, ...] | list[int]) -> tuple[tuple[int, ...], bool]:
    if isinstance(wrt, bool):
        raise TypeError("wrt must be an int or a tuple of ints")
    if isinstance(wrt, int):
        return (wrt,), True
    if (
        isinstance(wrt, (tuple, list))
        and wrt
        and all(isinstance(i, int) and not isinstance(i, bool) for i in wrt)
    ):
        return tuple(wrt), False
    raise TypeError(f"wrt must be an int or a non-empty tuple of ints, not {wrt!r}")


def _method_of(f: Callable) -> tuple[Any, Callable | None]:
    """(owner, function) when f is a bound method, or a transform of one (`grad(m.f)`, which is the
    transform of the plain function with its owner bound, see `_bind`); (None, None) otherwise."""
    if isinstance(f, types.MethodType):
        return f.__self__, f.__func__
    found = getattr(f, "__srcgrad_method__", None)
    if found is not None:
        return found
    call = type(f).__dict__.get("__call__") if hasattr(type(f), "__dict__") else None
    if isinstance(call, types.FunctionType) and not isinstance(f, (types.FunctionType, type)) \
            and not hasattr(f, "__wrapped__") and not isinstance(f, functools.partial):
        return f, call  # a callable instance: its __call__, bound to it
    return None, None


def _shift_wrt(wrt: Any, by: int = 1) -> Any:
    """wrt counted from a method's first argument after `self` (or after a partial's bound positional
    arguments), as a wrt of the plain function."""
    wrt_idx, single = _wrt(wrt)
    shifted = tuple(i + by if i >= 0 else i for i in wrt_idx)
    return shifted[0] if single else shifted


def _unpartial(p: functools.partial, inner: Callable) -> Callable:
    """The transform of `functools.partial(f, *a, **k)`: `inner` (the transform of f, wrt shifted past
    a) called with the partial's arguments first, its keywords overridable, as partial does."""

    @functools.wraps(inner)
    def bound(*args: Any, **kwargs: Any) -> Any:
        return inner(*p.args, *args, **{**p.keywords, **kwargs})

    for attr in ("source", "generic_source", "transform", "source_for"):
        if hasattr(inner, attr):
            setattr(bound, attr, getattr(inner, attr))
    bound.original = p
    return bound


def _bind(owner: Any, inner: Callable, f: Callable) -> Callable:
    """`inner` (a transform of a method's function, `self` its static first argument) with `owner`
    bound. The result remembers both, so transforming it again transforms `inner` (whose generated
    code has source) and binds `owner` again: its own source is this module's, shared by every bound
    method, so it must never be parsed itself."""

    @functools.wraps(f)
    def bound(*args: Any, **kwargs: Any) -> Any:
        return inner(owner, *args, **kwargs)

    for attr in ("source", "__wrapped__", "transform", "reverse_source"):
        if hasattr(inner, attr):
            setattr(bound, attr, getattr(inner, attr))
    bound.original = f
    bound.__srcgrad_method__ = (owner, inner)
    return bound


def _make(f: Callable, kind: str, wrt: Any, verbose: bool | int, aux: bool = False,
          method: bool = False) -> Callable:
    """The transform `kind` of f. `aux`: f is `_aux_wrapper`'s, returning (value, detached aux).
    `method`: f is a method's function, its first argument `self`: where the code calls self's methods,
    self is flattened too (srcgrad/flatten.py), its arrays read as leaves and its methods followed."""
    owner, func = _method_of(f)
    if func is not None:
        # a bound method: transform the function, with `self` as a static first argument
        return _bind(owner, _make(func, kind, _shift_wrt(wrt), verbose, method=True), f)
    if isinstance(f, functools.partial):
        return _unpartial(f, _make(f.func, kind, _shift_wrt(wrt, len(f.args)), verbose, aux))
    wrt_idx, single = _wrt(wrt)
    key = (kind, wrt_idx, single, method)
    target = getattr(f, "__srcgrad_target__", None) or f  # grad(grad(f)): transform the generated code
    per_fn, cached = _cache_of(f, key, verbose)
    if cached is not None:
        return cached

    pre = _inner_refresh(f)
    by_mask: dict[tuple, Generated] = {}

    def build(mask: tuple | None) -> Generated:
        gen = by_mask.get(mask)
        if gen is None:
            # a function made from code built before (a closure rebuilt per step): that build, rebound
            gen = None if aux else reuse.instance(target, key, mask, verbose)
            if gen is None:
                gen = Builder(verbose).reverse(target, kind, wrt_idx, mask, single)
                if not aux:
                    reuse.keep(target, key, mask, gen, verbose)
            by_mask[mask] = gen
        return gen

    order = getattr(f, "__srcgrad_by_forward__", 0)
    if order:
        by_forward = _third_derivative_by_forward(f, kind, wrt_idx, single) if order == 2 else None
        if by_forward is None:
            what = "a third reverse derivative" if order == 2 else "a fourth derivative"
            raise TransformError(
                f"{f.__name__}: {what} of a function that calls other user functions"
                + (" (grad of grad of grad works, with a single wrt at the second level)" if order == 2
                   else ""),
                hint="take the third derivative with forward mode on top of the gradient: "
                "srcgrad.jvp(srcgrad.jvp(srcgrad.grad(f))); srcgrad goes no higher through such calls.",
            )
        per_fn[key] = by_forward
        return by_forward
    if kind != "vjp" and not aux and not reuse.known(target, key, verbose):
        _refuse_container_output(target, f)
    leafwise = Leafwise(target, kind, wrt_idx, single,
                        lambda flat, w: _make(flat, kind, w, verbose, aux))
    try:
        generic = build(None)
    except TransformError as exc:
        by_forward = _second_derivative_by_forward(f, kind, wrt_idx, single, exc)
        if by_forward is None:
            if target is f and takes_star_args(f):
                # def f(*springs): built per number of arguments, each extra argument its own parameter
                return per_argument_count(f, kind, kind == "vjp",
                                          lambda flat: _make(flat, kind, wrt, verbose, aux), exc)
            every = _structured_positions(_parsed(target), method)
            if every is None or getattr(target, "__srcgrad_flat__", None) is not None:
                raise  # (a flat variant that cannot be built says why: flattening it again would recurse)
            # written for pytree arguments (params["W"]), for objects whose methods it calls, or a method
            # calling self's methods: built per structure at the first call, every structured argument
            # flattened (the differentiated ones are those in wrt)
            by_forward = _leaves_only(f, kind, leafwise, every, exc)
        per_fn[key] = by_forward
        return by_forward
    variants: dict[tuple, tuple[Callable, list, Any]] = {}
    by_ndim: dict[tuple, tuple[Callable, list, Any]] = {}
    # what every variant was built from (functions, modules, globals): the wrapper checks it per call
    deps = Dependencies()
    deps.update(generic.deps or Dependencies())
    rebuilt: list[Callable] = []

    def rebuild(*args: Any, **kwargs: Any) -> Any:
        """A function or global the code was built from was rebound (a notebook cell run again, `act =
        np.tanh`): build again from what the names hold now, and use that from here on."""
        if not rebuilt:
            per_fn.pop(key, None)
            rebuilt.append(_make(f, kind, wrt, verbose, aux))
        return rebuilt[0](*args, **kwargs)
    seed_name = "v"
    if kind == "vjp":
        seed_name = list(inspect.signature(generic.fn).parameters)[-1]

    def variant(args: tuple, numpy_semantics: bool = False) -> tuple[Callable, list]:
        """The entry for these arguments: the variant built for their types and shapes, or with
        `numpy_semantics` the generic code (NumPy's nan and inf where `math` raises) wrapped alike."""
        types = tuple(map(type, args))
        for i in wrt_idx:
            is_complex = i < len(args) and (types[i] is complex
                                            or types[i] is np.ndarray and args[i].dtype.kind == "c")
            if is_complex:
                raise TransformError(
                    f"{f.__name__}: argument {i} is complex; srcgrad differentiates real functions of real "
                    "arguments (a complex derivative needs a convention: holomorphic, or Wirtinger as in "
                    "PyTorch)",
                    hint="split it into real and imaginary parts (two float arrays) and differentiate "
                    "with respect to both.",
                )
            if i < len(args) and types[i] is np.ndarray and args[i].dtype.kind in "biu":
                raise TransformError(
                    f"{f.__name__}: argument {i} is an array of {args[i].dtype}; integer and boolean "
                    "arrays are static and have no gradient",
                    hint="pass a float array (x.astype(float)) to differentiate with respect to it, or "
                    "leave it out of wrt.",
                )
            if i < len(args) and types[i] in (int, bool):
                raise TransformError(
                    f"{f.__name__}: argument {i} is {types[i].__name__} {args[i]!r}; integer and boolean "
                    "arguments are static and have no gradient",
                    hint=f"pass a float ({float(args[i])!r}) to differentiate with respect to it, or "
                    "leave it out of wrt.",
                )
        mask = stages.call_signature(args)  # None: nothing to specialize to
        guard = tuple((i, m[2], args[i].dtype) for i, m in enumerate(mask or ()) if isinstance(m, tuple)) \
            or None
        key = (types, guard, numpy_semantics)
        entry = by_ndim.get(key)
        if entry is None:
            gen = build(mask) if mask is not None and not numpy_semantics else generic
            deps.update(gen.deps or Dependencies())
            fn = gen.fn
            tensors = [
                i
                for i in wrt_idx
                if i < len(args) and hasattr(args[i], "requires_grad") and hasattr(args[i], "detach")
            ]
            if tensors:
                fn = _tensor_out(fn, tensors, wrt_idx, single, kind)
            any_tensor = any(hasattr(a, "requires_grad") and hasattr(a, "detach") for a in args)
            arrays = {
                i: _array_like
                for i in wrt_idx
                if i < len(args) and types[i] is np.ndarray
                and (args[i].ndim == 0 or args[i].dtype != np.float64 or any_tensor)
            }
            if arrays:
                fn = _gradients_fixed(fn, arrays, wrt_idx, single, kind)
            if kind == "vjp" and gen.scalar_out:
                fn = _float_cotangent(fn, seed_name, f)
            fn = dask_finisher(fn, args, wrt_idx, single, kind)  # Dask arguments: one compute per call
            try:
                fn.source = gen.source  # what `wrapper.source` shows after a call that runs it
            except AttributeError:
                pass
            entry = (fn, pre + list(gen.refresh), guard)
            by_ndim[key] = entry
        if not numpy_semantics:
            variants[types] = entry
        return entry

    def by_generic_code(args: tuple, kwargs: dict) -> Any:
        """Run the call again with the generic code, which computes with NumPy's semantics."""
        fn, refresh, _ = variant(args, numpy_semantics=True)
        for ns, nm, get in refresh:
            ns[nm] = get()
        with np.errstate(all="warn"):
            return fn(*args, **kwargs)

    complete = _completer(target)
    shown: list = [None]

    def lookup(args: tuple) -> tuple[Callable, list]:
        """The variant for these argument types (and, for NumPy arrays, numbers of dimensions)."""
        try:
            fn, refresh, guard = variants[tuple(map(type, args))]
        except KeyError:
            fn, refresh, guard = variant(args)
        if guard is not None:
            for i, n, dtype in guard:
                if args[i].shape != n or args[i].dtype != dtype:
                    fn, refresh, guard = variant(args)
                    break
        if fn is not shown[0]:  # inspect.getsource and .source show the code this call runs
            shown[0] = wrapper.__wrapped__ = fn
            wrapper.source = getattr(fn, "source", None) or wrapper.source
        return fn, refresh

    def non_scalar(exc: NonScalarOutput) -> TransformError:
        info = generic.info
        line = generic.return_line
        where = dict(filename=info.filename if info else None,
                     lineno=info.user_lineno(line) if info and line else None,
                     source_line=info.source_line(line) if info and line else None, function=f.__name__)
        what = exc.args[0]
        if what in ("None", "str", "bytes"):   # no number at all (a function without return)
            return TransformError(
                f"grad needs a scalar output, but {f.__name__} returned {what}"
                + (" (a function without a return statement returns None)" if what == "None" else ""),
                hint=f"return the scalar to differentiate from {f.__name__} (the loss, a float or a "
                "one-element array).", **where)
        if isinstance(what, str):       # a tuple, list or dict (seed_of of a container)
            return TransformError(f"grad needs a scalar output, but {f.__name__} returned a {what}",
                                  hint=_CONTAINER_HINT.format(name=f.__name__), **where)
        return TransformError(
            f"grad needs a scalar output, but {f.__name__} returned a value of shape {what}",
            hint=f"use srcgrad.vjp({f.__name__})(*args, v) with a cotangent v of that shape (or reduce "
            "the output to a scalar, e.g. with .sum()).", **where)

    if kind == "vjp":

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not args:
                raise TypeError("vjp functions take the arguments, then the cotangent v")
            *primal, v = args
            for i in wrt_idx:
                if i < len(primal) and type(primal[i]) not in _PLAIN:
                    # a pytree argument (or one to refuse): see the other wrapper
                    out = leafwise.serve(tuple(primal), kwargs, wrt_idx, v)
                    if out is not MISS:
                        return out
                    break
            if not deps.valid():
                return rebuild(*args, **kwargs)
            if complete is not None:
                primal, kwargs = complete(tuple(primal), kwargs)
            fn, refresh = lookup(tuple(primal))
            for ns, nm, get in refresh:
                ns[nm] = get()
            try:
                return fn(*primal, **kwargs, **{seed_name: v})
            except _MATH_ERRORS as exc:
                return _with_numpy_floats(wrapper, args, kwargs, exc, lambda: by_generic_code(
                    tuple(primal), {**kwargs, seed_name: v}), lambda: f(*primal, **kwargs))
            except Exception as exc:  # an error in the user's code: say which of their lines it was
                codegen.annotate(exc)
                raise
    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if complete is not None:
                args, kwargs = complete(args, kwargs)
            for i in wrt_idx:
                if i < len(args) and type(args[i]) not in _PLAIN:
                    # a pytree argument (or one to refuse), served by transforms of the flat variant,
                    # which check what they were built from themselves (as a rebuild would reuse them)
                    out = leafwise.serve(args, kwargs, wrt_idx)
                    if out is not MISS:
                        return out
                    break
            return plain(args, kwargs)

        def plain(args: tuple, kwargs: dict) -> Any:
            """A call whose arguments are complete, none at a differentiated position a pytree (also
            what a plan calls, `Leafwise.serve`, once it has read the leaves)."""
            if not deps.valid():
                return rebuild(*args, **kwargs)
            fn, refresh = lookup(args)
            if refresh:
                for ns, nm, get in refresh:
                    ns[nm] = get()
            try:
                return fn(*args, **kwargs)
            except NonScalarOutput as exc:
                raise non_scalar(exc) from None
            except _MATH_ERRORS as exc:
                return _with_numpy_floats(wrapper, args, kwargs, exc, lambda: by_generic_code(args, kwargs),
                                          lambda: f(*args, **kwargs))
            except Exception as exc:  # an error in the user's code: say which of their lines it was
                codegen.annotate(exc)
                raise

    functools.update_wrapper(wrapper, generic.fn)
    wrapper.__wrapped__ = generic.fn
    if kind != "vjp":  # for Leafwise's plans; names the wrapper, as functools.wraps copies attributes
        wrapper.__srcgrad_plain__ = (wrapper, plain, complete)
    if kind == "grad":
        wrapper.__srcgrad_target__ = generic.fn
        wrapper.__srcgrad_refresh__ = pre + list(generic.refresh)
    wrapper.source = generic.source
    wrapper.generic_source = generic.source  # the variant for any argument types
    wrapper.transform = kind
    wrapper.wrt = wrt
    wrapper.original = f
    wrapper.__srcgrad_deps__ = deps

    def source_for(*args: Any) -> str:
        """The generated source used for arguments like `args` (e.g. the Python-float variant)."""
        prim = args[:-1] if kind == "vjp" else args
        fn, _ = lookup(tuple(prim))
        return fn.source

    wrapper.source_for = source_for
    per_fn[key] = wrapper
    return wrapper


_CONTAINER_HINT = (
    "return one scalar (e.g. the loss). If the first element is the loss and the others are values to "
    "carry along (metrics, predictions), use srcgrad.grad({name}, has_aux=True): {name} returns "
    "(value, aux) and the gradient function returns (gradient, aux). For a vector output use "
    "srcgrad.vjp or srcgrad.jacobian."
)
_CONTAINER_NODES = (gast.Tuple, gast.List, gast.Dict, gast.Set, gast.ListComp, gast.DictComp, gast.SetComp)
_CONTAINER_WORDS = {gast.Tuple: "tuple", gast.List: "list", gast.Dict: "dict", gast.Set: "set",
                    gast.ListComp: "list", gast.DictComp: "dict", gast.SetComp: "set"}


_PLAIN = (np.ndarray, float)  # argument types that are never pytrees (checked first: it is cheaper)


def _leaves_only(f: Callable, kind: str, leafwise: Leafwise, positions: tuple[int, ...],
                 error: TransformError) -> Callable:
    """The transform of a function that reads its differentiated arguments as containers and could not
    be built for arrays: it serves pytree arguments, and raises the build's error for anything else."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        primal, extra = (args[:-1], args[-1]) if kind == "vjp" else (args, None)
        out = leafwise.serve(tuple(primal), kwargs, positions, extra)
        if out is MISS:
            raise error
        return out

    wrapper.transform = kind
    wrapper.original = f
    wrapper.source = f"# {getattr(f, '__name__', 'f')}: built per pytree structure at the first call"
    return wrapper


def _structured_positions(info: Any, method: bool) -> tuple[int, ...] | None:
    """Every positional parameter, where a build for arrays that failed may be of a function written for
    pytrees or objects (flatten.pytree_positions), or of one that calls a parameter (`_called_parameters`):
    its transform is then built per structure at the first call. None where the failure stands."""
    return pytree_positions(info, method) or _called_parameters(info)


def _called_parameters(info: Any) -> tuple[int, ...] | None:
    """Every positional parameter, where the function calls one of its parameters (`model(x)`,
    `map(model, xs)`): a build for arrays fails there, as a parameter is not a function it can follow,
    but the object passed there may be one whose `__call__` it can (a model, flattened as an argument
    and read through its leaves, srcgrad/flatten.py). None where no parameter is called."""
    if info is None:
        return None
    args = info.node.args
    names = {a.id for a in args.posonlyargs + args.args}
    for n in gast.walk(info.node):
        if not isinstance(n, gast.Call):
            continue
        called = [n.func]
        if isinstance(n.func, gast.Name) and n.func.id == "map" and n.args:
            called.append(n.args[0])
        if any(isinstance(c, gast.Name) and c.id in names for c in called):
            return tuple(range(len(args.posonlyargs) + len(args.args)))
    return None


def _completer(fn: Callable) -> Callable | None:
    """For a function whose parameters are all positional-or-keyword: a function making a call's
    arguments all positional, defaults filled in, so the specialized variant is chosen from the whole
    signature (a default left out is a value of known type, not an unknown) and keywords bind as in
    Python. None for other signatures (keyword-only parameters: passed on as they are)."""
    try:
        params = list(signature_of(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params):
        return None
    names = [p.name for p in params]
    defaults = [p.default for p in params]
    n = len(params)
    empty = inspect.Parameter.empty
    base = getattr(fn, "__func__", fn)
    held = [getattr(base, "__defaults__", None)]

    def complete(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if not kwargs and len(args) >= n:
            return args, kwargs  # every argument given (the common call: nothing to read)
        if getattr(base, "__defaults__", None) is not held[0]:  # `f.__defaults__ = (5.0,)`: read them again
            held[0] = getattr(base, "__defaults__", None)
            defaults[:] = [p.default for p in signature_of(fn).parameters.values()]
        if not kwargs:
            if len(args) >= n or defaults[len(args)] is empty:
                return args, kwargs
            tail = defaults[len(args):]
            if any(d is empty for d in tail):
                return args, kwargs  # a required argument is missing: the call itself says so
            return args + tuple(tail), kwargs
        full = list(args)
        for i in range(len(args), n):
            if names[i] in kwargs:
                full.append(kwargs[names[i]])
            elif defaults[i] is not empty:
                full.append(defaults[i])
            else:
                return args, kwargs
        if len(kwargs) != n - len(args) - sum(names[i] not in kwargs for i in range(len(args), n)):
            return args, kwargs  # an unknown keyword, or one given twice: the call itself says so
        return tuple(full), {}

    return complete


def _transforms_of(f: Callable) -> dict:
    """f's cache of transforms, kept on f itself (`pipeline.cache_on`): it lives as long as f, so a
    closure rebuilt per training step is freed with its transforms and its data."""
    return cache_on(f, "__srcgrad_transforms__")


def _cache_of(f: Callable, key: tuple, verbose: bool | int) -> tuple[dict, Callable | None]:
    """f's cache of transforms (see `_transforms_of`), and the transform cached under `key` if it may be
    reused: not when printing the stages, not after what it was built from changed. (A new function
    from the same code, a closure rebuilt per step, finds no transform here but reuses the build: see
    `srcgrad.reuse`.)"""
    per_fn = _transforms_of(f)
    cached = per_fn.get(key)
    if cached is not None and (verbose or not _still_valid(cached)):
        cached = None
    return per_fn, cached


def _still_valid(transformed: Callable) -> bool:
    """A cached transform is reused only while what it was built from is unchanged."""
    deps = getattr(transformed, "__srcgrad_deps__", None)
    return deps is None or deps.valid()


def _parsed(target: Callable) -> Any:
    """`target`'s FunctionInfo, or None where it has no source to read (the build then says why)."""
    from srcgrad.parse import parse_function  # noqa: PLC0415

    try:
        return parse_function(target)
    except (TransformError, OSError, TypeError):
        return None


def _refuse_container_output(target: Callable, f: Callable) -> None:
    """grad and value_and_grad need a scalar output: a function that returns a tuple, list or dict
    literal is refused here, with the line (otherwise the outputs' gradients would be summed). A
    container held in a variable is caught when the generated code seeds it (`seed_of`)."""
    info = _parsed(target)
    if info is None:
        return
    name = getattr(f, "__name__", "f")
    for r in own_returns(info.node):
        if isinstance(r.value, _CONTAINER_NODES):
            what = _CONTAINER_WORDS[type(r.value)]
            raise located(info, r, f"grad needs a scalar output, but {name} returns a {what}",
                          _CONTAINER_HINT.format(name=name))


# ================================================================================== has_aux
def _aux_wrapper(func: Callable) -> Callable:
    """A function with `func`'s parameters that calls it, unpacks `(value, aux)` at the call and returns
    `value, detach(aux)`: transforming it differentiates `value` only (aux is an output no derivative
    flows to, so nothing seeds it), and func itself is transformed as an ordinary callee. Its source is
    registered with linecache, so the compiler reads it like any function's."""
    info = _parsed(func)
    name = getattr(func, "__name__", "f")
    if info is not None:
        for r in own_returns(info.node):
            if not (isinstance(r.value, gast.Tuple) and len(r.value.elts) == 2):
                raise located(
                    info, r,
                    f"has_aux=True: {name} must return a pair (value, aux), written `return value, aux`",
                    "return the differentiated value (a scalar for grad) and the auxiliary data as a pair "
                    "literal; or drop has_aux=True if the function returns the value alone.")
    sig = signature_of(func)
    taken = set(sig.parameters)

    def fresh(base: str) -> str:
        nm = base
        while nm in taken:
            nm += "_"
        taken.add(nm)
        return nm

    fn_ref, detach_ref = fresh("_srcgrad_fn"), fresh("_srcgrad_detach")
    value, aux = fresh("_srcgrad_value"), fresh("_srcgrad_aux")
    ns: dict[str, Any] = {fn_ref: func, detach_ref: _detach}
    params: list[str] = []
    forward: list[str] = []
    kinds = [p.kind for p in sig.parameters.values()]
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TransformError(
                f"{name}: srcgrad transforms functions with named parameters, not *args/**kwargs",
                hint="name each parameter.")
        if p.kind is p.KEYWORD_ONLY and "*" not in params:
            params.append("*")
        text = p.name
        if p.default is not p.empty:
            d = fresh(f"_srcgrad_default_{p.name}")
            ns[d] = p.default
            text += f"={d}"
        params.append(text)
        forward.append(f"{p.name}={p.name}" if p.kind is p.KEYWORD_ONLY else p.name)
    if inspect.Parameter.POSITIONAL_ONLY in kinds:
        params.insert(kinds.count(inspect.Parameter.POSITIONAL_ONLY), "/")
    source = (
        f"def {name}({', '.join(params)}):\n"
        f"    {value}, {aux} = {fn_ref}({', '.join(forward)})\n"
        f"    return {value}, {detach_ref}({aux})\n"
    )
    from srcgrad.codegen import compile_source  # noqa: PLC0415

    wrapper = compile_source(source, name, ns, f"{name} with aux")
    wrapper.__qualname__ = getattr(func, "__qualname__", name)
    return wrapper


def _with_aux(f: Callable, kind: str, wrt: Any, verbose: bool | int) -> Callable:
    """grad / value_and_grad / vjp of `f` returning `(value, aux)`, as JAX's has_aux: the derivative is
    of `value` alone, and `aux` (any Python object) comes back as it was computed, with no derivative.

        grad            -> (gradient, aux)
        value_and_grad  -> ((value, aux), gradient)
        vjp             -> (value, vjp, aux)          (vjp(f, has_aux=True)(*args, v))
    """
    owner, func = _method_of(f)
    if func is not None:
        return _bind(owner, _with_aux(func, kind, _shift_wrt(wrt), verbose), f)
    dicts = serving_dicts(f, kind, True, lambda g: _with_aux(g, kind, wrt, verbose), parse_function)
    if dicts is not None:  # an aux (or value) returned as a dict literal
        return dicts
    wrt_idx, single = _wrt(wrt)
    key = ("has_aux", kind, wrt_idx, single)
    per_fn, cached = _cache_of(f, key, verbose)
    if cached is not None:
        return cached
    if getattr(f, "__srcgrad_target__", None) is not None or getattr(f, "transform", None):
        raise TransformError(
            f"has_aux=True on {getattr(f, '__name__', f)}, a srcgrad transform: it returns no aux",
            hint="pass has_aux=True to the transform of the function that returns (value, aux).")
    inner = _make(_aux_wrapper(f), "vjp" if kind == "vjp" else "value_and_grad", wrt, verbose, aux=True)

    if kind == "grad":

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            (_, aux), g = inner(*args, **kwargs)
            return g, aux
    elif kind == "value_and_grad":

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return inner(*args, **kwargs)
    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not args:
                raise TypeError("vjp functions take the arguments, then the cotangent v")
            *primal, v = args
            (value, aux), g = inner(*primal, (v, None), **kwargs)
            return value, g, aux

    functools.update_wrapper(wrapper, inner)
    wrapper.__wrapped__ = inner.__wrapped__
    wrapper.source = inner.source
    wrapper.transform = kind
    wrapper.wrt = wrt
    wrapper.original = f
    wrapper.has_aux = True
    wrapper.source_for = inner.source_for
    per_fn[key] = wrapper
    return wrapper


def _float_cotangent(fn: Callable, seed_name: str, f: Callable) -> Callable:
    """The Python-float variant of a vjp, whose output is a float (or a tuple of floats): its cotangent
    must be a float or a 0-d array too (the generated code checks an array output's cotangent itself)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        v = kwargs[seed_name]
        for part in v if isinstance(v, (tuple, list)) else (v,):
            shape = getattr(part, "shape", ())
            if tuple(shape) != ():
                raise ValueError(
                    f"vjp of {getattr(f, '__name__', 'f')}: the cotangent has shape {tuple(shape)} but the "
                    "output is a Python float (shape ()); pass a float or a 0-d array")
        return fn(*args, **kwargs)

    run.source = fn.source
    return run


_MATH_ERRORS = (ValueError, OverflowError, ZeroDivisionError)
_MATH_MESSAGES = ("math domain error", "math range error", "division by zero", "out of range")


def _with_numpy_floats(wrapper: Callable, args: tuple, kwargs: dict, exc: Exception,
                       generic: Callable[[], Any] | None = None,
                       plain: Callable[[], Any] | None = None) -> Any:
    """A specialized variant runs `math.sqrt`, plain `/` and `**` on numbers, which raise where NumPy
    (what the user's np.sqrt(x), or `/` of NumPy scalars, means) returns nan or inf with a warning. The
    call then runs the generic code with the same arguments (`generic`), which follows each value's own
    semantics: an element of an array divided by zero gives NumPy's inf. Where that code raises a math
    error too (`math.sqrt` of a Python float, standing for the user's np.sqrt), the call is rerun with
    the floats as np.float64, so it follows NumPy, and its numbers come back as Python floats (float in,
    float out); except a ZeroDivisionError the user's own function raises too (`plain()`: `1.0 / x` of a
    Python float at 0), which is raised as it is (a derivative's division, `0.5 / sqrt(x)` at 0, is not
    the user's: it gives NumPy's inf)."""
    if not _math_error(exc):
        codegen.annotate(exc)
        raise exc
    if generic is not None:
        try:
            return generic()
        except _MATH_ERRORS as again:
            exc = again
            if not _math_error(again):
                codegen.annotate(again)
                raise
    _raise_the_users_own(exc, plain)
    return _as_numpy_floats(lambda *a: wrapper(*a, **kwargs), args, exc)


def _raise_the_users_own(exc: Exception, plain: Callable[[], Any] | None) -> None:
    """Raise the ZeroDivisionError of `plain()`, the user's own function on the same arguments, where
    it raises one (Python's `/` of its floats); nothing where it does not, or `exc` is another error."""
    if not isinstance(exc, ZeroDivisionError) or plain is None:
        return
    try:
        plain()
    except ZeroDivisionError as own:
        raise own from None
    except Exception:  # noqa: BLE001 -- any other failure of the plain call: not this question's answer
        return


def _math_error(exc: Exception) -> bool:
    return isinstance(exc, _MATH_ERRORS) and any(m in str(exc) for m in _MATH_MESSAGES)


def _as_numpy_floats(call: Callable, args: tuple, exc: Exception) -> Any:
    """`call(*args)` again with its Python floats as np.float64 (NumPy's nan and inf with a warning
    where `math` raised), numbers back as Python floats; `exc` raised as it is where no argument is a
    Python float."""
    if not any(type(a) is float for a in args):
        codegen.annotate(exc)
        raise exc
    with np.errstate(all="warn"):
        out = call(*[np.float64(a) if type(a) is float else a for a in args])
    return _python_floats(out)


def _python_floats(out: Any) -> Any:
    if isinstance(out, tuple):
        return tuple(_python_floats(o) for o in out)
    return float(out) if isinstance(out, np.floating) else out


def _inner_refresh(f: Callable) -> list:
    """What must be re-read before code generated from a srcgrad wrapper runs: the wrapper's own chain of
    (namespace, name, getter). The generated code of grad(f) binds f's module-level data in its namespace
    and re-reads it only when its own wrapper is called; a transform of that code (grad(grad(f)),
    jvp(grad(f))) reads the data from that namespace, so it must refresh it first, or it sees the values
    of the last call of grad(f) (or of build time)."""
    return list(getattr(f, "__srcgrad_refresh__", ()))


def _second_derivative_by_forward(g: Callable, kind: str, wrt_idx: tuple[int, ...], single: bool,
                                  exc: TransformError) -> Callable | None:
    """grad(grad(f, wrt=i), wrt=j) when reverse over reverse cannot be generated (the gradient code calls
    the generated pair of another user function, or keeps in its loops records the second reverse pass
    does not take yet: nested loops' ranges, tuple-valued loop state). The inner gradient is a scalar,
    so x_i is a scalar, and d(df/dx_i)/dx_j = d(df/dx_j)/dx_i for a twice continuously differentiable f
    (the Hessian is symmetric): the forward derivative of grad(f, wrt=j) along x_i, which forward mode
    generates through such code. Returns None when that identity does not apply, or forward mode refuses
    too (the caller then raises `exc`)."""
    inner_wrt = getattr(g, "wrt", None)
    if kind != "grad" or getattr(g, "transform", None) != "grad":
        return None
    if not isinstance(inner_wrt, int) or isinstance(inner_wrt, bool):
        return None
    from srcgrad.higher import jvp  # noqa: PLC0415 -- higher builds on this module

    f = g.original
    try:
        columns = [jvp(grad(f, wrt=j), wrt=inner_wrt) for j in wrt_idx]
    except TransformError:
        return None

    def second(*args: Any, **kwargs: Any) -> Any:
        x = args[inner_wrt]
        if not isinstance(x, _SCALAR_TYPES) and getattr(x, "size", 1) != 1:
            raise TransformError(
                f"grad needs a scalar output, but {g.__name__} returns a gradient of shape "
                f"{tuple(x.shape)}", hint="use srcgrad.hessian or srcgrad.hvp for second derivatives "
                "with respect to an array.")
        one = 1.0 if isinstance(x, _SCALAR_TYPES) else x * 0 + 1
        results = tuple(column(*args, one, **kwargs)[1] for column in columns)
        return results[0] if single else results

    functools.update_wrapper(second, g)
    second.__srcgrad_by_forward__ = 2
    second.__srcgrad_partials__ = (f, inner_wrt, wrt_idx, single)
    second.transform = "grad"
    second.wrt = wrt_idx[0] if single else wrt_idx
    second.source = "\n\n".join(c.source for c in columns if hasattr(c, "source"))
    return second


def _ones_for(g: Callable, args: tuple, positions: tuple[int, ...]) -> dict[int, Any]:
    """A unit direction for each scalar argument at `positions` (grad's inputs and outputs are scalars
    here); a TransformError for an array, whose derivative one forward direction cannot give."""
    ones: dict[int, Any] = {}
    for i in positions:
        x = args[i]
        if not isinstance(x, _SCALAR_TYPES) and getattr(x, "size", 1) != 1:
            raise TransformError(
                f"{g.__name__}: a third derivative through calls to other user functions needs scalar "
                f"arguments, but argument {i} has shape {tuple(x.shape)}",
                hint="use srcgrad.jvp(srcgrad.jvp(srcgrad.grad(f))) with tangents of that shape.")
        ones[i] = 1.0 if isinstance(x, _SCALAR_TYPES) else x * 0 + 1
    return ones


def _third_derivative_by_forward(g: Callable, kind: str, wrt_idx: tuple[int, ...],
                                 single: bool) -> Callable | None:
    """grad(g, wrt=k) where g = grad(grad(f, wrt=i), wrt=j) was built by `_second_derivative_by_forward`
    as the forward derivative of grad(f, wrt=j) along x_i: its derivative along x_k is the forward
    derivative of that forward derivative, jvp(jvp(grad(f, wrt=j), wrt=i), wrt=k) with unit directions
    (x_i, x_j and x_k are scalars: grad needs scalar outputs). Returns None when that does not apply."""
    partials = getattr(g, "__srcgrad_partials__", None)
    if kind != "grad" or partials is None:
        return None
    f, i, (j, *more), second_single = partials
    if more or not second_single:
        return None        # g returns a tuple: grad of it needs a scalar output
    from srcgrad.higher import jvp  # noqa: PLC0415 -- higher builds on this module

    inner = jvp(grad(f, wrt=j), wrt=i)  # (x..., t): its target takes the tangent last, as it does
    columns = [jvp(inner, wrt=k) for k in wrt_idx]

    def third(*args: Any, **kwargs: Any) -> Any:
        ones = _ones_for(g, args, (i, j, *wrt_idx))
        results = tuple(column(*args, ones[i], ones[k], **kwargs)[1][1]
                        for k, column in zip(wrt_idx, columns, strict=True))
        return results[0] if single else results

    functools.update_wrapper(third, g)
    third.__srcgrad_by_forward__ = 3
    third.transform = "grad"
    third.wrt = wrt_idx[0] if single else wrt_idx
    third.source = "\n\n".join(c.source for c in columns if hasattr(c, "source"))
    return third


def grad(f: Callable | None = None, wrt: int | tuple[int, ...] = 0, *, has_aux: bool = False,
         verbose: bool | int = False, argnums: int | tuple[int, ...] | None = None) -> Any:
    """The gradient of scalar-valued `f` with respect to positional argument(s) `wrt`.

    Returns a function taking f's arguments and returning the gradient (a tuple of gradients when `wrt`
    is a tuple), each of the same type and shape as its argument. Works as `@grad` and `@grad(wrt=1)`.
    A function returning a tuple, list or dict is refused (TransformError), unless `has_aux=True`: then f
    returns `(value, aux)`, the gradient is of `value`, and the function returns `(gradient, aux)` (aux
    is any Python object, with no derivative), as in JAX.
    """
    wrt = _argnums(wrt, argnums)
    if f is None:
        return lambda g: grad(g, wrt, has_aux=has_aux, verbose=verbose)
    if has_aux:
        return _with_aux(f, "grad", wrt, verbose)
    return _make(f, "grad", wrt, verbose)


def value_and_grad(
    f: Callable | None = None, wrt: int | tuple[int, ...] = 0, *, has_aux: bool = False,
    verbose: bool | int = False, argnums: int | tuple[int, ...] | None = None
) -> Any:
    """Like `grad`, but the function returns `(f(*args), gradient)` from one forward sweep; with
    `has_aux=True` (f returns `(value, aux)`), `((value, aux), gradient)`."""
    wrt = _argnums(wrt, argnums)
    if f is None:
        return lambda g: value_and_grad(g, wrt, has_aux=has_aux, verbose=verbose)
    if has_aux:
        return _with_aux(f, "value_and_grad", wrt, verbose)
    return _make(f, "value_and_grad", wrt, verbose)


def vjp(f: Callable | None = None, wrt: int | tuple[int, ...] = 0, *, has_aux: bool = False,
        verbose: bool | int = False, argnums: int | tuple[int, ...] | None = None) -> Any:
    """The vector-Jacobian product: `vjp(f)(*args, v)` returns `(f(*args), v^T J)`.

    `v` has the shape of f's output (a tuple of cotangents when f returns a tuple); the product has the
    shape of each differentiated argument. Use it for non-scalar outputs, where `grad` refuses. With
    `has_aux=True`, f returns `(value, aux)`, `v` is value's cotangent, and the result is
    `(value, v^T J, aux)` (JAX's order: out, vjp, aux).
    """
    wrt = _argnums(wrt, argnums)
    if f is None:
        return lambda g: vjp(g, wrt, has_aux=has_aux, verbose=verbose)
    if has_aux:
        return _with_aux(f, "vjp", wrt, verbose)
    dicts = serving_dicts(f, "vjp", False, lambda g: vjp(g, wrt, verbose=verbose), parse_function)
    return dicts if dicts is not None else _make(f, "vjp", wrt, verbose)


def _tensor_out(
    fn: Callable, tensors: list[int], wrt_idx: tuple[int, ...], single: bool, kind: str
) -> Callable:
    """Tensor in, Tensor out: a gradient that came back as an array or float for a Tensor argument is
    wrapped in a Tensor of that argument's dtype."""
    from srcgrad.runtime.tensor import Tensor, tensor

    def as_tensor(g: Any, like: Any) -> Any:
        return g if isinstance(g, Tensor) else tensor(g, dtype=like.dtype)

    return _gradients_fixed(fn, dict.fromkeys(tensors, as_tensor), wrt_idx, single, kind)


def _array_like(g: Any, like: np.ndarray) -> np.ndarray:
    """A NumPy argument's gradient as an array of its dtype (float32 in, float32 out, as in JAX and
    PyTorch, even where the function mixes in float64 data; a 0-d array in, a 0-d array out)."""
    if type(g) is not np.ndarray:
        g = np.asarray(g.detach().numpy() if hasattr(g, "detach") else g)  # a Tensor when one came in too
    return g if g.dtype == like.dtype else g.astype(like.dtype)


def _gradients_fixed(fn: Callable, fixes: dict[int, Callable], wrt_idx: tuple[int, ...], single: bool,
                     kind: str) -> Callable:
    """`fn` with the gradient of each argument i in `fixes` passed through fixes[i](gradient, argument)."""

    def fix(args: tuple, grads: Any) -> Any:
        if single:
            i = wrt_idx[0]
            return fixes[i](grads, args[i]) if i in fixes else grads
        return tuple(
            fixes[i](g, args[i]) if i in fixes else g for i, g in zip(wrt_idx, grads, strict=False)
        )

    if kind == "grad":

        def run(*args: Any, **kwargs: Any) -> Any:
            return fix(args, fn(*args, **kwargs))
    else:

        def run(*args: Any, **kwargs: Any) -> Any:
            value, grads = fn(*args, **kwargs)
            return value, fix(args, grads)

    run.source = fn.source
    return run


def compile(f: Callable | None = None, *, verbose: bool | int = False) -> Any:  # noqa: A001
    """`@sg.compile`: the function runs as written, except on Tensors that require grad, where it runs
    its generated forward sweep on the arrays and records ONE node in the eager graph whose backward is
    the generated adjoint (no per-operation tape inside).

        @sg.compile
        def step(h, W, x):
            return np.tanh(W @ h + x)

        loss = step(h, W, x).sum(); loss.backward()      # W.grad from the generated adjoint

    The backward runs on arrays: `create_graph=True` through a compiled function is not supported (use
    the transforms, e.g. `sg.hvp`, for higher derivatives). `.source_for(*args)` shows the generated code.
    """
    if f is None:
        return lambda g: compile(g, verbose=verbose)

    from srcgrad.pipeline import Builder
    from srcgrad.reverse import CalleeRequest
    from srcgrad.runtime.autograd import is_grad_enabled
    from srcgrad.runtime.function import Function
    from srcgrad.runtime.stack import Stack
    from srcgrad.runtime.tensor import Tensor

    params = [
        p.name
        for p in signature_of(f).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    classes: dict[tuple, type] = {}
    sources: dict[tuple, str] = {}

    def make(rg: tuple[int, ...]) -> type:
        req = CalleeRequest(fn=f, wrt=tuple(params[i] for i in rg))
        builder = Builder(verbose)
        builder.in_progress[(f, req.wrt, req.signature)] = req
        builder.build_split(req)
        builder.finish()
        fwd, adj = req.fwd_fn, req.adj_fn
        refresh = list(builder.refresh)
        sources[rg] = req.source

        def unwrap(a: Any) -> Any:
            return a._array if isinstance(a, Tensor) else a

        class CompiledFunction(Function):
            @staticmethod
            def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
                for ns, nm, get in refresh:
                    ns[nm] = get()
                stack = Stack()
                out = fwd(stack, *[unwrap(a) for a in args], **{k: unwrap(v) for k, v in kwargs.items()})
                ctx.stack = stack
                ctx.n_args = len(args)
                if isinstance(out, tuple):
                    ctx.tuple_out = True
                    return tuple(Tensor._wrap(o) for o in out)
                ctx.tuple_out = False
                return Tensor._wrap(out)

            @staticmethod
            def backward(ctx: Any, *grads: Any) -> Any:
                g = tuple(unwrap(x) for x in grads) if ctx.tuple_out else unwrap(grads[0])
                res = adj(g, Stack(ctx.stack))  # a copy: retain_graph may run backward again
                out: list[Any] = [None] * ctx.n_args
                for i, r in zip(rg, res, strict=False):
                    out[i] = Tensor._wrap(r)
                return tuple(out)

        CompiledFunction.__name__ = CompiledFunction.__qualname__ = (
            "".join(p[:1].upper() + p[1:] for p in f.__name__.split("_")) + "Compiled"
        )
        return CompiledFunction

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not is_grad_enabled():
            return f(*args, **kwargs)
        rg = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad)
        if not rg:
            return f(*args, **kwargs)
        cls = classes.get(rg)
        if cls is None:
            cls = classes[rg] = make(rg)
        return cls.apply(*args, **kwargs)

    def source_for(*args: Any) -> str:
        rg = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad)
        if rg not in classes:
            classes[rg] = make(rg)
        return sources[rg]

    wrapper.source_for = source_for
    return wrapper
