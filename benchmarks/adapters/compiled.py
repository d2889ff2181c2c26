"""srcgrad's compiler: the workload's NumPy source given as is to srcgrad.grad / vjp / hvp / hessian.

Transforming happens in `prepare` (not timed); each timed call is a cached call of the generated code.
The `functional` workload (longloop) goes through srcgrad.autograd.functional.vjp with its Tensor version,
because issue 5 measures that API against the tape. Skips, with the reason in the table, until the
transforms exist.
"""

from __future__ import annotations

from typing import Any

from benchmarks.adapters.base import Adapter, Prepared, Unsupported, submodule
from benchmarks.workloads import Workload, rebind


class Compiled(Adapter):
    name = "compiled"

    def available(self) -> bool:
        try:
            import srcgrad
        except ImportError as exc:
            self.reason = f"srcgrad does not import ({exc})"
            return False
        if not callable(getattr(srcgrad, "grad", None)):
            self.reason = "compiler not built yet (no srcgrad.grad)"
            return False
        return True

    def prepare(self, workload: Workload) -> Prepared:
        import srcgrad as sg

        if workload.functional:
            return functional_vjp(sg, workload)
        transform = getattr(sg, workload.kind, None)
        if transform is None:
            raise Unsupported(f"srcgrad.{workload.kind} not built yet")
        wrt = workload.wrt[0] if len(workload.wrt) == 1 else workload.wrt
        f = transform(workload.fn, wrt=wrt)
        args, v = workload.args, workload.v
        if workload.kind in ("vjp", "hvp"):  # f(*args, v) -> (value, product)
            return lambda: f(*args, v)[1]
        return lambda: f(*args)


def functional_vjp(sg: Any, workload: Workload) -> Prepared:
    """srcgrad.autograd.functional.vjp(func, inputs, v) on Tensors, PyTorch's signature."""
    functional = submodule("srcgrad.autograd.functional")
    if not callable(getattr(functional, "vjp", None)):
        raise Unsupported("srcgrad.autograd.functional.vjp not built yet")
    fn = rebind(workload.torch_fn, torch=sg)
    x = sg.tensor(workload.args[0], dtype=sg.float64)
    v = sg.tensor(workload.v, dtype=sg.float64)
    return lambda: functional.vjp(fn, x, v=v)[1]


ADAPTER = Compiled()
