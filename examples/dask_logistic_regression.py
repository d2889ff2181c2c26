"""Logistic regression by gradient descent on a dataset larger than a worker's memory, on a Dask cluster.

The loss is plain NumPy code. `srcgrad.value_and_grad(loss)` writes its gradient as plain array code
too, so called with Dask arrays it builds one Dask graph per step: the data streams through the
workers chunk by chunk, the sums over rows are tree reductions, and the value and the gradient with
respect to the NumPy weights come back as NumPy from ONE compute (the data is read once per step).

    python examples/dask_logistic_regression.py                 # 2 local workers, 400 MiB each, 4x data
    python examples/dask_logistic_regression.py --steps 30 --memory-mib 1000 --factor 8
    python examples/dask_logistic_regression.py --scheduler tcp://host:8786   # an existing cluster

The dataset is generated lazily (dask.array.random, a fixed seed) at `--factor` times one worker's
memory limit; nothing ever holds all of it. At the end the script prints the loss curve and each
worker's peak resident memory against its limit.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable

import numpy as np

try:
    import dask
    import dask.array as da
    import distributed
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("this example needs the dask extra: pip install 'srcgrad[dask]'")

import srcgrad as sg
from srcgrad.runtime.dask_support import peak_memory, reset_peak_memory

MIB = 2 ** 20


def loss(w, X, y, l2):
    """Mean logistic loss of labels y in {0, 1} under logits X @ w, plus an L2 penalty."""
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * np.sum(w * w)


def make_data(n: int, d: int, chunk_rows: int, seed: int = 0) -> tuple[Any, Any, np.ndarray]:
    """A lazy dataset: standard normal float32 features, labels from a known weight vector plus noise."""
    rng = da.random.default_rng(seed)
    w_true = np.random.default_rng(seed).standard_normal(d) / np.sqrt(d) * 3.0
    X = rng.standard_normal((n, d), dtype=np.float32, chunks=(chunk_rows, d))
    noise = rng.logistic(size=n, chunks=chunk_rows)
    y = ((X @ w_true + noise) > 0).astype(np.float32)
    return X, y, w_true


def progress(total: int) -> Callable[[int, float], None]:
    """A progress bar: tqdm when installed, else a plain one printed on one line."""
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        bar = tqdm(total=total, unit="step")

        def update(step: int, value: float) -> None:
            bar.set_postfix(loss=f"{value:.4f}")
            bar.update(1)
            if step == total:
                bar.close()
        return update

    start = time.perf_counter()

    def update_plain(step: int, value: float) -> None:
        done = int(30 * step / total)
        rate = (time.perf_counter() - start) / step
        print(f"\r[{'#' * done}{'.' * (30 - done)}] {step}/{total}  loss {value:.4f}  {rate:.1f} s/step",
              end="\n" if step == total else "", flush=True)
    return update_plain


def loss_curve(values: list[float], width: int = 50) -> str:
    """The loss per step as text bars, scaled between the lowest and the highest value."""
    lo, hi = min(values), max(values)
    lines = []
    for i, v in enumerate(values, 1):
        n = 1 + int((width - 1) * (v - lo) / (hi - lo)) if hi > lo else width
        lines.append(f"{i:4d}  {v:.5f}  {'#' * n}")
    return "\n".join(lines)


def train(client: Any, steps: int, factor: float, memory: int, d: int, lr: float, l2: float,
          chunk_mib: float) -> dict:
    """Gradient descent on factor x `memory` bytes of features; returns the losses and measurements."""
    n = int(factor * memory // (4 * d))          # float32 features: factor x one worker's memory limit
    chunk_rows = max(1, int(chunk_mib * MIB // (4 * d)))
    X, y, w_true = make_data(n, d, chunk_rows)
    print(f"data: {n:,} rows x {d} features float32 = {X.nbytes / MIB:,.0f} MiB in {X.npartitions} chunks "
          f"({X.nbytes / memory:.1f}x one worker's {memory / MIB:.0f} MiB limit)")
    value_and_grad = sg.value_and_grad(loss)
    w = np.zeros(d)
    losses: list[float] = []
    client.run(reset_peak_memory)
    update = progress(steps)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        value, g = value_and_grad(w, X, y, l2)    # one graph, one compute: value and gradient as NumPy
        w = w - lr * g
        losses.append(float(value))
        update(step, float(value))
    seconds = time.perf_counter() - start
    peaks = client.run(peak_memory)
    cosine = float(w @ w_true / (np.linalg.norm(w) * np.linalg.norm(w_true)))
    return {"losses": losses, "seconds": seconds, "peaks": peaks, "cosine": cosine, "rows": n,
            "bytes": X.nbytes, "chunks": X.npartitions}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--factor", type=float, default=4.0, help="data size / one worker's memory limit")
    p.add_argument("--memory-mib", type=int, default=400, help="memory limit per worker (local cluster)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--lr", type=float, default=2.0)
    p.add_argument("--l2", type=float, default=1e-4)
    p.add_argument("--chunk-mib", type=float, default=8.0, help="size of one chunk of features")
    p.add_argument("--scheduler", help="address of an existing dask.distributed scheduler")
    args = p.parse_args(argv)
    memory = args.memory_mib * MIB
    # Chunks of dask's own making (e.g. broadcasts without a data axis) stay well under the limit.
    dask.config.set({"array.chunk-size": f"{args.chunk_mib}MiB"})
    if args.scheduler:
        client = distributed.Client(args.scheduler)
        cluster = None
        limits = {w["id"]: w["memory_limit"] for w in client.scheduler_info()["workers"].values()}
        memory = min(limits.values()) or memory
    else:
        cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                           memory_limit=memory, dashboard_address=":0", silence_logs=40)
        client = distributed.Client(cluster)
    try:
        out = train(client, args.steps, args.factor, memory, args.features, args.lr, args.l2, args.chunk_mib)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    print("\nloss per step:")
    print(loss_curve(out["losses"]))
    print(f"\n{args.steps} steps in {out['seconds']:.1f} s ({out['seconds'] / args.steps:.1f} s per step, "
          f"each reading all {out['bytes'] / MIB:,.0f} MiB once)")
    print(f"cosine(w, w_true) = {out['cosine']:.4f}")
    for addr, peak in sorted(out["peaks"].items()):
        print(f"worker {addr}: peak resident memory {peak / MIB:.0f} MiB of a {memory / MIB:.0f} MiB limit"
              f" ({100 * peak / memory:.0f}%)")
    if max(out["peaks"].values()) >= memory:
        sys.exit("a worker went over its memory limit")
    return out


if __name__ == "__main__":
    main()
