"""Command line: `python -m benchmarks.run [--quick] [--workloads ...] [--engines ...] [--json PATH]`.

Prints a markdown report to stdout (machine, versions, ratio and absolute tables) and one progress line
per cell to stderr. Every engine runs single-threaded unless SRCGRAD_BENCH_THREADS says otherwise: the
comparison is between engines, not thread pools, and on a shared two-core machine threads only add noise.
"""

from __future__ import annotations

import os

# Before NumPy, PyTorch or JAX is imported: their thread pools read these once.
_THREADS = os.environ.get("SRCGRAD_BENCH_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _THREADS)
if _THREADS == "1":
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from importlib import metadata  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks import adapters  # noqa: E402
from benchmarks.harness import FULL, OK, QUICK, Cell, Results, format_time, markdown, run_all  # noqa: E402
from benchmarks.workloads import make_workloads  # noqa: E402

PEERS = ("torch", "autograd", "jax", "jaxlib")


def _names(values: list[str] | None, known: list[str], what: str) -> list[str]:
    """Accept `a b`, `a,b` or both; keep the known order; reject unknown names."""
    if not values:
        return list(known)
    asked = [n for v in values for n in v.split(",") if n]
    unknown = [n for n in asked if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return [n for n in known if n in asked]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("srcgrad",) + PEERS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "threads": _THREADS,
            "versions": versions, "commit": commit,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def report(results: Results, info: dict[str, Any], mode: str, elapsed: float) -> str:
    v = info["versions"]
    lines = [
        f"srcgrad benchmarks ({mode}), {info['date']}, commit {info['commit'] or '?'}",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['platform']}; "
        f"{info['threads']} thread(s) per engine.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        markdown(results),
        "",
        f"Total run time: {elapsed:.0f} s.",
    ]
    return "\n".join(lines)


def _progress(c: Cell) -> None:
    t = f"{format_time(c.timing.median)} (n={c.timing.samples}x{c.timing.number})" if c.timing else ""
    extra = "" if c.status == OK else f" {c.reason}"
    print(f"  {c.workload:12s} {c.engine:9s} {c.status:11s} {t}{extra}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    workloads = make_workloads()
    p = argparse.ArgumentParser(prog="python -m benchmarks.run",
                                description="Time srcgrad and its peers; print markdown ratio tables.")
    p.add_argument("--quick", action="store_true", help="fewer samples per cell (whole run < 2 minutes)")
    p.add_argument("--workloads", nargs="+", metavar="NAME", help=f"subset of: {', '.join(workloads)}")
    p.add_argument("--engines", nargs="+", metavar="NAME",
                   help=f"subset of: {', '.join(adapters.ENGINES)} (numpy, the unit, always runs)")
    p.add_argument("--json", metavar="PATH", help="also save machine info and every cell as JSON")
    p.add_argument("--list", action="store_true", help="list workloads and engines, then exit")
    a = p.parse_args(argv)
    if a.list:
        for w in workloads.values():
            print(f"{w.name:12s} {w.kind:8s} {w.description}")
        print("engines:", ", ".join(adapters.ENGINES))
        return 0

    chosen = [workloads[n] for n in _names(a.workloads, list(workloads), "workloads")]
    engines = _names(a.engines, list(adapters.ENGINES), "engines")
    if "numpy" not in engines:
        engines.insert(0, "numpy")
    mode = "quick" if a.quick else "full"
    start = time.perf_counter()
    results = run_all(chosen, [adapters.load(e) for e in engines], QUICK if a.quick else FULL, _progress)
    elapsed = time.perf_counter() - start
    info = machine()
    print(report(results, info, mode, elapsed))
    if a.json:
        doc = {"mode": mode, "machine": info, "elapsed_s": elapsed, "unavailable": results.unavailable,
               "workloads": {w.name: {"kind": w.kind, "description": w.description} for w in chosen},
               "cells": [dict(c.as_dict(), ratio=results.ratio(c.workload, c.engine))
                         for c in results.cells.values()]}
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
