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

import warnings
from typing import Any, Callable

import srcgrad

from srcgrad.runtime.autograd import enable_grad
from srcgrad.runtime.tensor import Tensor, grad, ones_like, zeros_like

__all__ = ["vjp", "jvp", "vhp", "hvp", "jacobian", "hessian"]

last_engine: str | None = None
_warned: set[int] = set()


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
    for i, (a, b) in enumerate(zip(vs, xs)):
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
    live = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if live:
        found = grad(tuple(o for o, _ in live), inputs, tuple(g for _, g in live), retain_graph=True,
                     create_graph=create_graph, allow_unused=True)
    else:
        found = (None,) * len(inputs)
    result = []
    for i, (g, x) in enumerate(zip(found, inputs)):
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
        gv = [(gi * vi).sum() for gi, vi in zip(g, vs) if gi.requires_grad]
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
    """Serve the call with generated code, or return None to let the tape serve it."""
    return None
