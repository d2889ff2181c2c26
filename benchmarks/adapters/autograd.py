"""HIPS autograd: the workload's own NumPy source with `np` rebound to autograd.numpy."""

from __future__ import annotations

from benchmarks.adapters.base import Adapter, Prepared
from benchmarks.workloads import Workload, rebind


class HipsAutograd(Adapter):
    name = "autograd"

    def available(self) -> bool:
        try:
            import autograd  # noqa: F401
            import autograd.numpy  # noqa: F401
        except ImportError as exc:
            self.reason = f"not installed ({exc.name or exc}; the bench extra)"
            return False
        from importlib.metadata import version

        self.version = version("autograd")
        return True

    def prepare(self, workload: Workload) -> Prepared:
        import autograd
        import autograd.numpy as anp

        fn = rebind(workload.fn, np=anp)
        args, v = workload.args, workload.v
        if workload.kind == "grad":
            grad = autograd.grad(fn, workload.wrt)
            return lambda: grad(*args)
        if workload.kind == "vjp":
            make_vjp = autograd.make_vjp(fn)

            def run():
                pullback, _ = make_vjp(*args)
                return pullback(v)

            return run
        if workload.kind == "hvp":
            hvp = autograd.hessian_tensor_product(fn)
            return lambda: hvp(*args, v)
        hessian = autograd.hessian(fn)
        return lambda: hessian(*args)


ADAPTER = HipsAutograd()
