"""`srcgrad.autograd.functional`: torch.autograd.functional's API, served by generated code.

Signatures, defaults and return conventions follow PyTorch: a Tensor in gives a Tensor out, a tuple in
gives a tuple out (a tuple of tuples for the Hessian or Jacobian of several inputs and outputs).

Two engines serve each call:

- **compiled** (the default): the user's function is source-transformed (`srcgrad.vjp`, `srcgrad.jvp`,
  `srcgrad.hvp`, `srcgrad.jacobian`, `srcgrad.hessian`) and the generated code runs on the inputs'
  arrays, so a data-dependent `while` costs what the loop costs, with no tape. With `create_graph=True`
  the generated code runs on Tensors instead, so the eager tape records it and the results carry
  `grad_fn`.
- **tape**: the eager runtime's double-backward constructions, as PyTorch computes them. Used where
  the compiler cannot take the function (no source: a builtin, a lambda typed at a prompt; or a
  construct it rejects), with a warning saying so once per function, and for `strict=True`, whose
  independence check needs the graph.

`last_engine` names the engine that served the most recent call ("compiled" or "tape").
"""

from __future__ import annotations

import ast
import inspect
import linecache
import warnings
import weakref
from typing import Any, Callable

import srcgrad
from srcgrad.errors import TransformError
from srcgrad.runtime import mapping
from srcgrad.runtime.autograd import enable_grad, no_grad
from srcgrad.runtime.stack import NonScalarOutput
from srcgrad.runtime.stack import detach as rt_detach
from srcgrad.runtime.tensor import Tensor, grad, ones_like, zeros_like

__all__ = ["vjp", "jvp", "vhp", "hvp", "jacobian", "hessian"]

last_engine: str | None = None
_warned: set = set()
_COMPILED: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


# =============================================================================== argument conventions
def _as_tuple(value: Any, what: str, fn_name: str) -> tuple[bool, tuple]:
    """(was it a tuple, the values as a tuple), checking every entry is a Tensor as PyTorch does."""
    is_tuple = isinstance(value, (tuple, list))
    values = tuple(value) if is_tuple else (value,)
    for i, v in enumerate(values):
        if not isinstance(v, Tensor):
            if is_tuple:
                raise TypeError(f"The {what} given to {fn_name} must be either a Tensor or a tuple of "
                                f"Tensors but the value at index {i} has type {type(v).__name__}.")
            raise TypeError(f"The {what} given to {fn_name} must be either a Tensor or a tuple of "
                            f"Tensors but the given {what} has type {type(v).__name__}.")
    return is_tuple, values


def _shape_out(is_tuple: bool, values: tuple) -> Any:
    return values if is_tuple else values[0]


def _default_v(xs: tuple, v: Any, fn_name: str, what: str) -> tuple:
    """`v` as a tuple matching `xs`; None is allowed only for single-element entries (then 1)."""
    if v is None:
        if any(x.numel() != 1 for x in xs):
            raise RuntimeError(f"The vector v can only be None if the {what} to the user-provided "
                               f"function is a single Tensor with a single element.")
        return tuple(ones_like(x.detach()) for x in xs)
    _, vs = _as_tuple(v, "v", fn_name)
    if len(vs) != len(xs):
        raise RuntimeError(f"v is a tuple of invalid length: should be {len(xs)} but got {len(vs)}.")
    for i, (a, b) in enumerate(zip(vs, xs, strict=False)):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(f"Entry {i} in v has invalid size: should be {tuple(b.shape)} but got "
                               f"{tuple(a.shape)}.")
    return vs


def _prepare_inputs(xs: tuple, create_graph: bool) -> tuple:
    """Inputs the tape can differentiate: fresh leaves, or the originals when a graph is requested."""
    return tuple(x if create_graph and x.requires_grad else x.detach().requires_grad_(True) for x in xs)


def _finish(values: tuple, create_graph: bool) -> tuple:
    return values if create_graph else tuple(v.detach() for v in values)


def _grads_or_zeros(outputs: tuple, inputs: tuple, grad_outputs: tuple, *, create_graph: bool,
                    strict: bool, fn_name: str, stage: str = "") -> tuple:
    """autograd.grad that returns zeros (or raises in strict mode) where an output ignores an input."""
    live = [(o, g) for o, g in zip(outputs, grad_outputs, strict=False) if o.requires_grad]
    if live:
        found = grad(tuple(o for o, _ in live), inputs, tuple(g for _, g in live), retain_graph=True,
                     create_graph=create_graph, allow_unused=True)
    else:
        found = (None,) * len(inputs)
    result = []
    for i, (g, x) in enumerate(zip(found, inputs, strict=False)):
        if g is None:
            if strict:
                raise RuntimeError(f"The output of the user-provided function is independent of input "
                                   f"{i}. This is not allowed in strict mode{stage}.")
            g = zeros_like(x.detach())
        result.append(g)
    return tuple(result)


def _check_outputs(out: Any, fn_name: str) -> tuple[bool, tuple]:
    return _as_tuple(out, "outputs of the user-provided function", fn_name)


def _single_scalar(outs: tuple, fn_name: str) -> Tensor:
    if len(outs) != 1 or outs[0].numel() != 1:
        raise RuntimeError(f"The function given to {fn_name} should return a single Tensor with a "
                           f"single element.")
    return outs[0]


# ============================================================================================ the API
def vjp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """(func(inputs), vᵀ·J): the vector-Jacobian product at `inputs`."""
    compiled = _compiled_call("vjp", func, inputs, v=v, create_graph=create_graph, strict=strict)
    if compiled is not None:
        return compiled
    _use("tape", func)
    with enable_grad():
        in_tuple, xs = _as_tuple(inputs, "inputs", "vjp")
        xs = _prepare_inputs(xs, create_graph)
        out_tuple, outs = _check_outputs(func(*xs), "vjp")
        vs = _default_v(outs, v, "vjp", "output")
        grads = _grads_or_zeros(outs, xs, vs, create_graph=create_graph, strict=strict, fn_name="vjp")
    return (_shape_out(out_tuple, _finish(outs, create_graph)),
            _shape_out(in_tuple, _finish(grads, create_graph)))


def jvp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """(func(inputs), J·v): the Jacobian-vector product at `inputs`."""
    compiled = _compiled_call("jvp", func, inputs, v=v, create_graph=create_graph, strict=strict)
    if compiled is not None:
        return compiled
    _use("tape", func)
    with enable_grad():
        in_tuple, xs = _as_tuple(inputs, "inputs", "jvp")
        vs = _default_v(xs, v, "jvp", "input")
        xs = _prepare_inputs(xs, create_graph)
        out_tuple, outs = _check_outputs(func(*xs), "jvp")
        # The double-vjp construction: u ↦ Jᵀu is linear, so differentiating it along v gives J·v.
        us = tuple(zeros_like(o.detach()).requires_grad_(True) for o in outs)
        gs = _grads_or_zeros(outs, xs, us, create_graph=True, strict=strict, fn_name="jvp")
        jv = _grads_or_zeros(gs, us, vs, create_graph=create_graph, strict=strict, fn_name="jvp",
                             stage=" (double backward)")
    return (_shape_out(out_tuple, _finish(outs, create_graph)),
            _shape_out(out_tuple, _finish(jv, create_graph)))


def vhp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """(func(inputs), vᵀ·H) for a function with a single-element output."""
    compiled = _compiled_call("vhp", func, inputs, v=v, create_graph=create_graph, strict=strict)
    if compiled is not None:
        return compiled
    return _hessian_product("vhp", func, inputs, v, create_graph, strict)


def hvp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """(func(inputs), H·v) for a function with a single-element output."""
    compiled = _compiled_call("hvp", func, inputs, v=v, create_graph=create_graph, strict=strict)
    if compiled is not None:
        return compiled
    return _hessian_product("hvp", func, inputs, v, create_graph, strict)


def _hessian_product(name: str, func: Callable[..., Any], inputs: Any, v: Any, create_graph: bool,
                     strict: bool) -> tuple[Any, Any]:
    """Tape construction shared by vhp and hvp: the gradient of ⟨∇f, v⟩. That is vᵀH; it equals H·v
    because the Hessian of a twice continuously differentiable function is symmetric."""
    _use("tape", func)
    with enable_grad():
        in_tuple, xs = _as_tuple(inputs, "inputs", name)
        vs = _default_v(xs, v, name, "input")
        xs = _prepare_inputs(xs, create_graph)
        out_tuple, outs = _check_outputs(func(*xs), name)
        out = _single_scalar(outs, name)
        g = _grads_or_zeros((out,), xs, (ones_like(out.detach()),), create_graph=True, strict=strict,
                            fn_name=name)
        gv = [(gi * vi).sum() for gi, vi in zip(g, vs, strict=False) if gi.requires_grad]
        if gv:
            total = gv[0]
            for term in gv[1:]:
                total = total + term
            prod = _grads_or_zeros((total,), xs, (ones_like(total.detach()),), create_graph=create_graph,
                                   strict=strict, fn_name=name, stage=" (double backward)")
        elif strict:
            raise RuntimeError("The jacobian of the user-provided function is independent of input 0. "
                               "This is not allowed in strict mode when create_graph=True.")
        else:
            prod = tuple(zeros_like(x.detach()) for x in xs)
    return (_shape_out(out_tuple, _finish(outs, create_graph)),
            _shape_out(in_tuple, _finish(prod, create_graph)))


_STRATEGIES = ("forward-mode", "reverse-mode")


def jacobian(func: Callable[..., Any], inputs: Any, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode") -> Any:
    """The Jacobian: for output i and input j, a Tensor of shape out_i.shape + in_j.shape, nested in
    tuples as the inputs and outputs are."""
    if strategy not in _STRATEGIES:
        raise ValueError(f'Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If '
                         f'your function has more outputs than inputs, "forward-mode" tends to be more '
                         f'performant. Otherwise, prefer to use "reverse-mode". Got {strategy!r}.')
    if strategy == "forward-mode" and not vectorize:
        raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse Hessian "
                                  "is only implemented for `vectorize=True`.")
    compiled = _compiled_call("jacobian", func, inputs, create_graph=create_graph, strict=strict,
                              strategy=strategy)
    if compiled is not None:
        return compiled
    _use("tape", func)
    with enable_grad():
        in_tuple, xs = _as_tuple(inputs, "inputs", "jacobian")
        xs = _prepare_inputs(xs, create_graph)
        out_tuple, outs = _check_outputs(func(*xs), "jacobian")
        blocks = [[None] * len(xs) for _ in outs]
        for i, out in enumerate(outs):
            rows: list[list[Tensor]] = [[] for _ in xs]
            flat = out.reshape(-1)
            for k in range(flat.numel()):
                seed = zeros_like(flat.detach())
                seed[k] = 1.0
                gs = _grads_or_zeros((flat,), xs, (seed,), create_graph=create_graph, strict=strict,
                                     fn_name="jacobian")
                for j, g in enumerate(gs):
                    rows[j].append(g)
            for j, x in enumerate(xs):
                stacked = srcgrad.stack(rows[j]) if rows[j] else zeros_like(x.detach()).reshape(0, *x.shape)
                block = stacked.reshape(*out.shape, *x.shape)
                blocks[i][j] = block if create_graph else block.detach()
    return _nest(blocks, out_tuple, in_tuple)


def hessian(func: Callable[..., Any], inputs: Any, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode") -> Any:
    """The Hessian of a function with a single-element output: for inputs i and j a Tensor of shape
    in_i.shape + in_j.shape, a tuple of tuples when `inputs` is a tuple."""
    if outer_jacobian_strategy not in _STRATEGIES:
        raise ValueError(f'Expected strategy to be either "forward-mode" or "reverse-mode". Got '
                         f'{outer_jacobian_strategy!r}.')
    if outer_jacobian_strategy == "forward-mode" and not vectorize:
        raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse Hessian "
                                  "is only implemented for `vectorize=True`.")
    compiled = _compiled_call("hessian", func, inputs, create_graph=create_graph, strict=strict)
    if compiled is not None:
        return compiled
    in_tuple, xs = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*args: Tensor) -> tuple:
        _, outs = _check_outputs(func(*args), "hessian")
        out = _single_scalar(outs, "hessian")
        return _grads_or_zeros((out,), args, (ones_like(out.detach()),), create_graph=True,
                               strict=strict, fn_name="hessian")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blocks = jacobian(gradient, xs, create_graph=create_graph, strict=strict)
    _use("tape", func)
    if not in_tuple:
        return blocks[0][0]
    return blocks


def _nest(blocks: list[list[Any]], out_tuple: bool, in_tuple: bool) -> Any:
    """PyTorch's nesting: Tensor, tuple over inputs, tuple over outputs, or tuple of tuples."""
    if out_tuple and in_tuple:
        return tuple(tuple(row) for row in blocks)
    if out_tuple:
        return tuple(row[0] for row in blocks)
    if in_tuple:
        return tuple(blocks[0])
    return blocks[0][0]


# ================================================================================ engine selection
def _use(engine: str, func: Callable[..., Any]) -> None:
    global last_engine
    last_engine = engine


def _compiled_call(kind: str, func: Callable[..., Any], inputs: Any, **options: Any) -> Any:
    """Serve the call with generated code, or return None to let the tape serve it.

    The function is transformed with the Tensor (PyTorch) meanings of methods (`x.repeat`, `x.var`,
    `x.max(dim)`, ...) and the generated code runs on the Tensors' arrays (NumPy or CuPy, never
    converted); results are wrapped back into Tensors. With `create_graph=True` it runs on the Tensors
    themselves, so the tape records the generated code and the results carry `grad_fn`. `strict=True`
    needs the graph's view of which output depends on which input: the tape serves it. A function
    without source, or one the compiler refuses, falls back to the tape with one warning per function.

    Expressions no derivative flows through (`while y.norm() < 10`) are kept as written, so they may call
    Tensor methods that arrays lack: when the run on arrays fails with AttributeError/TypeError, the
    generated code runs again on detached Tensors under no_grad (remembered per function and kind, so
    later calls go there directly), and where that fails too the tape serves the call. A function that
    calls an in-place Tensor method (`y.mul_(x)`) goes to the tape: generated code does not model the
    write (and on Tensors it would write into the caller's input)."""
    if options.get("strict"):
        return None
    create_graph = bool(options.get("create_graph"))
    in_tuple, xs = _as_tuple(inputs, "inputs", kind)
    wrt = tuple(range(len(xs)))
    per = _per_function(func)
    in_place = _in_place_method(func, per)
    if in_place is not None:
        _fallback_warning(func, TransformError(f"it calls the in-place method .{in_place}()"))
        return None
    try:
        with _tensor_methods():
            transform = _transform(kind, func, wrt, per)
    except TransformError as exc:
        _fallback_warning(func, exc)
        return None
    on_tensors = ("on_tensors", kind)
    try:
        with _tensor_methods():
            if create_graph:
                result = _run(kind, transform, _prepare_inputs(xs, True), xs, options, True)
                wrap = _keep_tensor
            elif not per.get(on_tensors):
                wrap = _wrap_array
                try:
                    result = _run(kind, transform, tuple(x._array for x in xs), xs, options, False)
                except (AttributeError, TypeError):
                    per[on_tensors] = True
            if not create_graph and per.get(on_tensors):
                wrap = _wrap_array
                try:
                    with no_grad():
                        result = _run(kind, transform, tuple(x.detach() for x in xs), xs, options, True)
                except (AttributeError, TypeError):
                    raise _UseTape() from None
    except _UseTape:
        return None
    except (TransformError, NonScalarOutput):
        return None          # e.g. v omitted for a non-scalar output: the tape raises PyTorch's error
    _use("compiled", func)
    return _package(kind, result, in_tuple, wrap)


def _per_function(func: Callable[..., Any]) -> dict:
    """The compiled engine's cache entry for `func` (a throwaway dict where func cannot be a weak key)."""
    try:
        return _COMPILED.setdefault(func, {})
    except TypeError:
        return {}


def _in_place_method(func: Callable[..., Any], per: dict) -> str | None:
    """The name of an in-place Tensor method (`mul_`, `add_`, `copy_`, ...) that func's own source calls,
    or None (also where there is no source). Cached in `per`."""
    if "in_place" in per:
        return per["in_place"]
    import textwrap
    found = None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        tree = None
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                if (name.endswith("_") and not name.startswith("_") and name != "requires_grad_"
                        and callable(getattr(Tensor, name, None))):
                    found = name
                    break
    per["in_place"] = found
    return found


class _UseTape(Exception):
    """The call's shape is one the compiled engine leaves to the tape (tuple outputs of a Jacobian)."""


def _transform(kind: str, func: Callable[..., Any], wrt: tuple[int, ...], per: dict) -> Any:
    key = (kind, wrt)
    hit = per.get(key)
    if hit is not None:
        return hit
    target = per.get("target")
    if target is None:
        target = per["target"] = _detached_spellings(func)
    func = target
    if kind == "vjp":
        t = (srcgrad.vjp(func, wrt=wrt), srcgrad.value_and_grad(func, wrt=wrt))
    elif kind == "jvp":
        t = srcgrad.jvp(func, wrt=wrt)
    elif kind in ("hvp", "vhp"):
        t = srcgrad.hvp(func, wrt=wrt)
    elif kind == "jacobian":
        t = srcgrad.jacobian(func, wrt=wrt)
    elif kind == "hessian":
        t = srcgrad.hessian(func, wrt=wrt)
    else:  # pragma: no cover
        raise ValueError(kind)
    per[key] = t
    return t


def _raw(values: tuple, create_graph: bool) -> tuple:
    return tuple(v if create_graph else v._array for v in values)


def _run(kind: str, transform: Any, args: tuple, xs: tuple, options: dict, create_graph: bool) -> tuple:
    v = options.get("v")
    if kind == "vjp":
        fv, vg = transform
        if v is None:
            value, grads = vg(*args)
            if _numel(value) != 1:
                raise _UseTape()
            return value, grads
        v_tuple, vs = _as_tuple(v, "v", kind)
        seed = _raw(vs, create_graph)
        try:
            value, grads = fv(*args, seed if v_tuple else seed[0])
        except ValueError as exc:          # the generated code's check of v against the output's shape
            if "cotangent" not in str(exc):
                raise
            raise RuntimeError(f"v has invalid size: {exc}") from None
        outs = value if isinstance(value, tuple) else (value,)
        if len(outs) != len(vs):
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(outs)} but got {len(vs)}.")
        for i, (o, vi) in enumerate(zip(outs, vs, strict=True)):
            if tuple(_shape(o)) != tuple(vi.shape):
                raise RuntimeError(f"Entry {i} in v has invalid size: should be {tuple(_shape(o))} but got "
                                   f"{tuple(vi.shape)}.")
        return value, grads
    if kind in ("jvp", "hvp", "vhp"):
        vs = _default_v(xs, v, kind, "input")
        value, prod = transform(*args, _raw(vs, create_graph))
        if kind != "jvp" and _numel(value) != 1:
            raise RuntimeError(f"The function given to {kind} should return a single Tensor with a single "
                               f"element.")
        return value, prod
    return (transform(*args),)


def _numel(x: Any) -> int:
    if isinstance(x, tuple):
        return -1
    n = 1
    for d in _shape(x):
        n *= d
    return n


def _shape(x: Any) -> tuple:
    return tuple(getattr(x, "shape", ()))


def _wrap_array(a: Any) -> Any:
    if isinstance(a, Tensor):
        return a.detach()
    return Tensor._wrap(a if hasattr(a, "shape") else _as_array(a))


def _as_array(a: Any) -> Any:
    import numpy as np
    return np.asarray(a, dtype=np.float64)


def _keep_tensor(a: Any) -> Any:
    return a if isinstance(a, Tensor) else Tensor._wrap(_as_array(a))


def _nest_values(value: Any, wrap: Callable[[Any], Any]) -> Any:
    if isinstance(value, tuple):
        return tuple(wrap(v) for v in value)
    return wrap(value)


def _package(kind: str, result: tuple, in_tuple: bool, wrap: Callable[[Any], Any]) -> Any:
    if kind in ("vjp", "jvp", "hvp", "vhp"):
        value, prod = result
        if kind == "jvp":
            return _nest_values(value, wrap), _nest_values(prod, wrap)
        prods = tuple(wrap(p) for p in prod)
        return _nest_values(value, wrap), (prods if in_tuple else prods[0])
    (blocks,) = result
    if kind == "jacobian":
        blocks = tuple(wrap(b) for b in blocks)
        return blocks if in_tuple else blocks[0]
    rows = tuple(tuple(wrap(b) for b in row) for row in blocks)
    return rows if in_tuple else rows[0][0]


_DETACH = "__srcgrad_detach"
_METHOD = "__srcgrad_tensor_"


class _Detached(ast.NodeTransformer):
    """`y.data` -> `detach(y)`; a method called on a detached value -> its Tensor meaning as a function."""

    def __init__(self) -> None:
        self.methods: set[str] = set()
        self.changed = False

    @staticmethod
    def detached(e: ast.expr) -> bool:
        return isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and (
            e.func.id == _DETACH or e.func.id.startswith(_METHOD))

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        self.generic_visit(node)
        if node.attr == "data" and isinstance(node.ctx, ast.Load):
            self.changed = True
            return ast.Call(func=ast.Name(id=_DETACH, ctx=ast.Load()), args=[node.value], keywords=[])
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr == "detach" and not node.args:
            self.changed = True
            return ast.Call(func=ast.Name(id=_DETACH, ctx=ast.Load()), args=[f.value], keywords=[])
        if isinstance(f, ast.Attribute) and self.detached(f.value) and f.attr in mapping.TENSOR_METHODS:
            self.changed = True
            self.methods.add(f.attr)
            return ast.Call(func=ast.Name(id=_METHOD + f.attr, ctx=ast.Load()), args=[f.value] + node.args,
                            keywords=node.keywords)
        return node


def _detached_spellings(func: Callable[..., Any]) -> Callable[..., Any]:
    """The function as the compiler should read it when its arrays are not Tensors.

    Expressions that no derivative flows through are kept as written in generated code, and generated
    code runs on the Tensors' arrays: `y.data.norm()` would ask a NumPy array for `.data` (a memoryview)
    and `.norm()`. So `x.data` / `x.detach()` become `detach(x)` (runtime.stack.detach: an array or float
    is returned as it is, a Tensor detached), and a method called on a detached value becomes its
    Tensor meaning as a plain function (mapping.TENSOR_METHODS). The copy lives in a `linecache` entry, so
    the compiler reads it like any source; functions with closures are left as they are."""
    import textwrap
    import types

    if not isinstance(func, types.FunctionType) or func.__closure__:
        return func
    try:
        src = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(src)
    except (OSError, TypeError, SyntaxError):
        return func
    fdef = tree.body[0] if tree.body else None
    if not isinstance(fdef, ast.FunctionDef):
        return func
    rw = _Detached()
    fdef.decorator_list = []
    tree = rw.visit(tree)
    if not rw.changed:
        return func
    text = ast.unparse(ast.fix_missing_locations(tree)) + "\n"
    filename = f"<srcgrad functional: {func.__qualname__}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    ns = dict(func.__globals__)
    ns[_DETACH] = rt_detach
    for m in rw.methods:
        ns[_METHOD + m] = mapping.TENSOR_METHODS[m]
    exec(compile(text, filename, "exec"), ns)
    new = ns[fdef.name]
    new.__defaults__ = func.__defaults__
    new.__kwdefaults__ = func.__kwdefaults__
    return new


class _tensor_methods:
    """While transforming functions written for Tensors, methods mean what they mean on Tensors
    (mapping.TENSOR_METHODS: `x.repeat` tiles, `x.var` is unbiased, `x.max(dim)`, ...). The normalizer
    reads `mapping.METHODS` at transform time; this swaps it for the duration (the smallest hook that
    needs no change to the compiler)."""

    def __enter__(self) -> None:
        self.saved = mapping.METHODS
        mapping.METHODS = mapping.TENSOR_METHODS

    def __exit__(self, *exc: Any) -> None:
        mapping.METHODS = self.saved


def _fallback_warning(func: Callable[..., Any], exc: Exception) -> None:
    key = getattr(func, "__code__", func)
    try:
        if key in _warned:
            return
        _warned.add(key)
    except TypeError:
        pass
    name = getattr(func, "__qualname__", None) or repr(func)
    warnings.warn(f"srcgrad.autograd.functional: cannot compile {name} ({str(exc).splitlines()[0]}); "
                  f"using the eager tape for it", RuntimeWarning, stacklevel=4)
