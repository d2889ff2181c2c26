"""srcgrad's eager tape (`import srcgrad as torch`): the workload's Tensor version with `torch` rebound to
srcgrad, float64 leaves, `.backward()`; hvp and hessian by double backward (`create_graph=True`).

Skips, with the reason in the table, until the eager runtime (issue 3) exists.
"""

from __future__ import annotations

from benchmarks.adapters._eager import tensor_engine
from benchmarks.adapters.base import Adapter, Prepared, Unsupported, submodule
from benchmarks.workloads import Workload


class Tape(Adapter):
    name = "tape"

    def available(self) -> bool:
        try:
            import srcgrad
        except ImportError as exc:
            self.reason = f"srcgrad does not import ({exc})"
            return False
        missing = [n for n in ("tensor", "float64") if not hasattr(srcgrad, n)]
        if missing:
            self.reason = f"eager runtime not built yet (no srcgrad.{', srcgrad.'.join(missing)})"
            return False
        return True

    def prepare(self, workload: Workload) -> Prepared:
        import srcgrad

        if workload.torch_fn is None:
            raise Unsupported("no Tensor version of this workload")
        second_order = workload.kind in ("hvp", "hessian")
        if second_order and not callable(getattr(submodule("srcgrad.autograd"), "grad", None)):
            raise Unsupported("srcgrad.autograd.grad (double backward) not built yet")
        return tensor_engine(srcgrad, workload)


ADAPTER = Tape()
