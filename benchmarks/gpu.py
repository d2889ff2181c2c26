"""GPU benchmark: the same workloads on CuPy arrays (compiled), srcgrad Tensors on CUDA (tape), and
PyTorch CUDA eager, each gradient checked against the NumPy reference before its time counts.

    python -m benchmarks.gpu            (needs CuPy and a GPU; PyTorch with CUDA for the peer column)

Times are medians of synchronized calls after a warm-up; the unit is the CuPy forward time.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

import srcgrad as sg
from srcgrad.runtime import backend

from . import workloads as W

GPU_WORKLOADS = ("tiny", "mlp", "elementwise", "rnn", "hvp")


def _timeit(fn: Callable[[], Any], sync: Callable[[], None], samples: int = 30) -> float:
    for _ in range(3):
        fn()
    sync()
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _check(name: str, got: Any, expected: tuple, to_host: Callable[[Any], np.ndarray]) -> bool:
    got = got if isinstance(got, tuple) else (got,)
    return all(np.allclose(to_host(g), e, rtol=1e-6, atol=1e-9) for g, e in zip(got, expected, strict=True))


def main() -> int:
    if not backend.cuda_is_available():
        print("no CUDA GPU (CuPy missing or no device): nothing to measure")
        return 0
    cp = backend.cupy_module()
    try:
        import torch  # noqa: PLC0415

        has_torch = torch.cuda.is_available()
    except ImportError:
        torch, has_torch = None, False
    sync = cp.cuda.Device().synchronize
    rows = []
    by_name = W.make_workloads()
    for name in GPU_WORKLOADS:
        w = by_name.get(name)
        if w is None:
            continue
        expected = w.expected()
        gargs = tuple(cp.asarray(a) if isinstance(a, np.ndarray) else a for a in w.args)
        fwd = _timeit(lambda w=w, gargs=gargs: w.fn(*gargs), sync)
        if w.kind == "hvp":
            hv = sg.hvp(w.fn)
            gv = cp.asarray(w.v)
            call = lambda hv=hv, gargs=gargs, gv=gv: hv(*gargs, gv)[1]  # noqa: E731
        else:
            g = sg.grad(w.fn, wrt=w.wrt if len(w.wrt) > 1 else w.wrt[0])
            call = lambda g=g, gargs=gargs: g(*gargs)  # noqa: E731
        ok = _check(name, call(), expected, cp.asnumpy)
        compiled = _timeit(call, sync) if ok else float("nan")
        peer = float("nan")
        if has_torch and w.torch_fn is not None and w.kind == "grad":
            W.torch = torch
            targs = [torch.tensor(a, device="cuda", dtype=torch.float64, requires_grad=i in w.wrt)
                     if isinstance(a, np.ndarray) else a for i, a in enumerate(w.args)]

            def torch_call(targs=targs, w=w):
                for i in w.wrt:
                    targs[i].grad = None
                w.torch_fn(*targs).backward()
                return tuple(targs[i].grad for i in w.wrt)

            if _check(name, torch_call(), expected, lambda t: t.detach().cpu().numpy()):
                peer = _timeit(torch_call, lambda: torch.cuda.synchronize())
        rows.append((name, fwd, compiled, peer))
    print("| workload | CuPy forward | compiled ÷ fwd | torch CUDA ÷ fwd | compiled vs torch |")
    print("|---|--:|--:|--:|--:|")
    for name, fwd, comp, peer in rows:
        print(f"| {name} | {fwd * 1e6:.0f} µs | {comp / fwd:.2f} | {peer / fwd:.2f} | {peer / comp:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
