"""Command line: `python -m benchmarks.dask_bench [--quick] [--json PATH]` (needs the dask extra).

Two measurements of `srcgrad.grad` of a logistic loss whose data are Dask arrays, printed as markdown:

1. In memory: the gradient on a 2-worker LocalCluster (one thread each, the data persisted across the
   workers) against the same gradient on NumPy arrays in this process, on one core. The best of
   several calls each; the Dask time includes building the graph, scheduling and the transfer of the
   result, which is what a user waits for.
2. Larger than memory: one gradient over data `--factor` times a worker's memory limit, generated
   lazily; the peak resident memory of each worker (VmHWM, reset just before) against its limit.

Every process runs BLAS single-threaded (OMP_NUM_THREADS=1, set before NumPy loads and inherited by the
workers): the comparison is one core against two workers of one core each.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

MIB = 2 ** 20


def logistic(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z)


def _best(f: Any, repeats: int) -> float:
    """The fastest of `repeats` calls, in seconds (after one warm-up call)."""
    f()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def in_memory(rows: int, d: int, repeats: int, workers: int) -> dict:
    """Dask gradient on `workers` workers vs NumPy's on one core, same data (float64)."""
    import dask
    import dask.array as da
    import distributed

    import srcgrad as sg

    rng = np.random.default_rng(0)
    Xn = rng.standard_normal((rows, d))
    yn = (Xn @ rng.standard_normal(d) > 0).astype(float)
    w = np.full(d, 0.01)
    grad = sg.grad(logistic)
    t_numpy = _best(lambda: grad(w, Xn, yn), repeats)
    memory = max(512 * MIB, 4 * Xn.nbytes // workers)
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  memory_limit=memory, dashboard_address=":0", silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        chunk = -(-rows // (4 * workers))
        X = client.persist(da.from_array(Xn, chunks=(chunk, d)))
        y = client.persist(da.from_array(yn, chunks=chunk))
        distributed.wait([X, y])
        g = grad(w, X, y)
        np.testing.assert_allclose(g, grad(w, Xn, yn), rtol=1e-10)
        np.testing.assert_allclose(dask.compute(hand_gradient(w, X, y))[0], g, rtol=1e-8)
        t_dask = _best(lambda: grad(w, X, y), repeats)
        by_hand = _best(lambda: dask.compute(hand_gradient(w, X, y))[0], repeats)
    return {"rows": rows, "features": d, "mib": Xn.nbytes / MIB, "workers": workers, "chunks": 4 * workers,
            "numpy_s": t_numpy, "dask_s": t_dask, "hand_s": by_hand, "speedup": t_numpy / t_dask}


def hand_gradient(w, X, y):
    """The logistic gradient written by hand for Dask, as dask-ml's estimators carry it: the reference
    for the graph srcgrad generates from the NumPy loss."""
    import dask.array as da

    p = 1.0 / (1.0 + da.exp(-(X @ w)))
    return (X.T @ (p - y)) / X.shape[0]


def out_of_core(factor: float, memory_mib: int, d: int, workers: int, chunk_mib: float) -> dict:
    """One gradient over `factor` x a worker's memory limit of lazily generated float32 features."""
    import dask
    import dask.array as da
    import distributed

    import srcgrad as sg
    from srcgrad.runtime.dask_support import peak_memory, reset_peak_memory

    memory = memory_mib * MIB
    n = int(factor * memory // (4 * d))
    chunk_rows = max(1, int(chunk_mib * MIB // (4 * d)))
    dask.config.set({"array.chunk-size": f"{chunk_mib}MiB"})
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  memory_limit=memory, dashboard_address=":0", silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        rng = da.random.default_rng(1)
        X = rng.standard_normal((n, d), dtype=np.float32, chunks=(chunk_rows, d))
        y = (rng.random(n, chunks=chunk_rows) > 0.5).astype(np.float32)
        base = client.run(peak_memory)
        client.run(reset_peak_memory)
        t = time.perf_counter()
        value, g = sg.value_and_grad(logistic)(np.zeros(d), X, y)
        seconds = time.perf_counter() - t
        peaks = client.run(peak_memory)
    assert abs(value - np.log(2.0)) < 1e-6 and np.all(np.isfinite(g))
    return {"factor": factor, "data_mib": X.nbytes / MIB, "memory_limit_mib": memory_mib, "workers": workers,
            "chunk_mib": chunk_mib, "seconds": seconds,
            "idle_mib": {k: v / MIB for k, v in base.items()},
            "peak_mib": {k: v / MIB for k, v in peaks.items()}}


def report(a: dict, b: dict) -> str:
    peak = max(b["peak_mib"].values())
    lines = [
        "## Dask (benchmarks/dask_bench.py)",
        "",
        "Gradient of a logistic loss, `sg.grad(loss)(w, X, y)`, w NumPy, X and y Dask arrays.",
        "",
        "| in memory | rows x features | NumPy, 1 core | Dask, "
        f"{a['workers']} workers x 1 thread | NumPy / Dask | Dask gradient written by hand |",
        "|---|---|---|---|---|---|",
        f"| {a['mib']:.0f} MiB float64, {a['chunks']} chunks | {a['rows']:,} x {a['features']} | "
        f"{a['numpy_s'] * 1e3:.1f} ms | {a['dask_s'] * 1e3:.1f} ms | {a['speedup']:.2f}x | "
        f"{a['hand_s'] * 1e3:.1f} ms |",
        "",
        "| larger than memory | data | limit per worker | peak per worker | one gradient |",
        "|---|---|---|---|---|",
        f"| {b['factor']:g}x a worker's limit, float32, {b['chunk_mib']:g} MiB chunks | "
        f"{b['data_mib']:,.0f} MiB | "
        f"{b['memory_limit_mib']} MiB | {peak:.0f} MiB ({100 * peak / b['memory_limit_mib']:.0f}%; "
        f"idle {max(b['idle_mib'].values()):.0f} MiB) | {b['seconds']:.1f} s |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="srcgrad gradients on a Dask cluster")
    p.add_argument("--quick", action="store_true", help="smaller data (about a minute on two cores)")
    p.add_argument("--json", help="also write the numbers to this file")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        print("dask_bench: the dask extra is not installed (pip install 'srcgrad[dask]'); skipped")
        return {}
    rows = 250_000 if args.quick else 1_000_000
    a = in_memory(rows, 32, 3 if args.quick else 5, args.workers)
    print(f"in memory: NumPy {a['numpy_s'] * 1e3:.1f} ms, Dask {a['dask_s'] * 1e3:.1f} ms, by hand "
          f"{a['hand_s'] * 1e3:.1f} ms", file=sys.stderr)
    b = out_of_core(2.5 if args.quick else 4.0, 400, 32, args.workers, 8.0)
    print(f"larger than memory: peak {b['peak_mib']} MiB of {b['memory_limit_mib']}", file=sys.stderr)
    print(report(a, b))
    out = {"in_memory": a, "out_of_core": b}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
