"""Custom differentiable functions: `autograd.Function` with `forward(ctx, ...)` and `backward(ctx, ...)`.

This is also how code outside the rule table joins the eager graph: the compiler's `@compile` functions
record one FunctionNode whose backward is their generated adjoint. Forward runs without recording; the
node's backward receives and returns Tensors (under `create_graph=True` its operations are recorded).
"""

from __future__ import annotations

from typing import Any

from .autograd import NODE_SEQ, SECOND_BACKWARD, FunctionNode, _mode, no_grad


class FunctionCtx:
    """The `ctx` of a custom Function: save tensors for backward and stash any other attributes."""

    def __init__(self) -> None:
        self._saved: tuple | None = ()
        self._saved_versions: tuple = ()
        self._released = False
        self.needs_input_grad: tuple = ()
        self.materialize_grads = True
        self.non_differentiable: set[int] = set()

    def save_for_backward(self, *tensors: Any) -> None:
        self._saved = tensors
        self._saved_versions = tuple(len(t._vc) if hasattr(t, "_vc") else None for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        if self._released or self._saved is None:
            raise RuntimeError(SECOND_BACKWARD)
        for t, v in zip(self._saved, self._saved_versions, strict=True):
            if v is not None and len(t._vc) != v:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: a tensor saved by a custom Function is at version {len(t._vc)}; "
                    f"expected version {v} instead.")
        return self._saved

    saved_variables = saved_tensors

    def mark_non_differentiable(self, *tensors: Any) -> None:
        self.non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors: Any) -> None:
        """Accepted for compatibility: srcgrad's forward never writes its inputs in place."""

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)

    def _release(self) -> None:
        self._released = True
        self._saved = None


class Function:
    """Subclass with static `forward(ctx, *args)` and `backward(ctx, *grads)`; call `Cls.apply(*args)`."""

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: FunctionCtx, *grads: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        from .tensor import Tensor  # noqa: PLC0415

        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._rg for a in args)
        with no_grad():
            out = cls.forward(ctx, *args, **kwargs)
        if not (_mode.enabled and any(ctx.needs_input_grad)):
            return out
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        node = FunctionNode.__new__(FunctionNode)
        node.hooks = None
        node.fn_cls = cls
        node.ctx = ctx
        node.n_out = len(outs)
        edges = [a._edge() if isinstance(a, Tensor) and a._rg else None for a in args]
        node.edges = tuple(e[0] if e is not None else None for e in edges)
        node.seq = next(NODE_SEQ)  # after the edges (a leaf's AccumulateGrad may have just been made)
        node.nrs = tuple(e[1] if e is not None else 0 for e in edges) if any(
            e is not None and e[1] for e in edges) else None
        wrapped = []
        zeros = []
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                wrapped.append(o)
                zeros.append(lambda: None)
                continue
            arr = o._array
            zeros.append(lambda arr=arr: Tensor._wrap(arr * 0))
            if id(o) in ctx.non_differentiable or arr.dtype.kind not in "fc":
                wrapped.append(Tensor._wrap(arr))
            else:
                wrapped.append(Tensor._wrap(arr, True, node, i))
        ctx._zeros = zeros
        return wrapped[0] if single else tuple(wrapped)
