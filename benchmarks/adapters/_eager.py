"""The eager-tape recipe shared by PyTorch and srcgrad's tape, which speak the same names."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.adapters.base import Prepared
from benchmarks.workloads import Workload, rebind


def tensor_engine(torch: Any, workload: Workload) -> Prepared:
    """The eager-tape recipe shared by PyTorch and srcgrad's tape (`torch` is either module): float64
    leaves built once, `.grad` reset before each call, then forward and `backward` as the tutorial does."""
    fn = rebind(workload.torch_fn, torch=torch)

    def leaf(value: Any, differentiated: bool) -> Any:
        if isinstance(value, float) and not differentiated:
            return value
        return torch.tensor(np.asarray(value, dtype=np.float64), dtype=torch.float64,
                            requires_grad=differentiated)

    args = [leaf(a, i in workload.wrt) for i, a in enumerate(workload.args)]
    leaves = [args[i] for i in workload.wrt]
    v = None if workload.v is None else torch.tensor(workload.v, dtype=torch.float64)

    if workload.kind == "grad":
        def run() -> Any:
            for p in leaves:
                p.grad = None
            fn(*args).backward()
            return tuple(p.grad for p in leaves)
    elif workload.kind == "vjp":
        def run() -> Any:
            for p in leaves:
                p.grad = None
            fn(*args).backward(v)
            return tuple(p.grad for p in leaves)
    elif workload.kind == "hvp":
        def run() -> Any:
            (x,) = leaves
            (g,) = torch.autograd.grad(fn(*args), (x,), create_graph=True)
            return torch.autograd.grad((g * v).sum(), (x,))
    else:  # hessian: one reverse pass, then one more per row of the Hessian
        def run() -> Any:
            (x,) = leaves
            (g,) = torch.autograd.grad(fn(*args), (x,), create_graph=True)
            return torch.stack([torch.autograd.grad(g[i], (x,), retain_graph=True)[0]
                                for i in range(g.shape[0])])
    return run

