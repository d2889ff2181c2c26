"""The unit of every ratio: the workload's plain NumPy forward, no derivative."""

from __future__ import annotations

from benchmarks.adapters.base import Adapter, Prepared
from benchmarks.workloads import Workload


class NumpyForward(Adapter):
    name = "numpy"
    forward_only = True

    def prepare(self, workload: Workload) -> Prepared:
        fn, args = workload.fn, workload.args
        return lambda: fn(*args)


ADAPTER = NumpyForward()
