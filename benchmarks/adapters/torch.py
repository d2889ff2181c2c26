"""PyTorch eager: leaves with requires_grad and `.backward()`; torch.autograd.functional.hvp and
.hessian(vectorize=True) for the second-order workloads."""

from __future__ import annotations

from benchmarks.adapters._eager import tensor_engine
from benchmarks.adapters.base import Adapter, Prepared, Unsupported
from benchmarks.workloads import Workload, rebind


class TorchEager(Adapter):
    name = "torch"

    def available(self) -> bool:
        try:
            import torch
        except ImportError as exc:
            self.reason = f"not installed ({exc.name or exc}; the bench extra)"
            return False
        self.version = torch.__version__
        return True

    def prepare(self, workload: Workload) -> Prepared:
        import torch

        if workload.torch_fn is None:
            raise Unsupported("no Tensor version of this workload")
        fn = rebind(workload.torch_fn, torch=torch)
        if workload.kind in ("hvp", "hessian"):
            x = torch.tensor(workload.args[0], dtype=torch.float64)
            if workload.kind == "hvp":
                v = torch.tensor(workload.v, dtype=torch.float64)
                return lambda: torch.autograd.functional.hvp(fn, x, v)[1]
            return lambda: torch.autograd.functional.hessian(fn, x, vectorize=True)
        return tensor_engine(torch, workload)


ADAPTER = TorchEager()
