"""Command line: `python -m benchmarks.plots [--results DIR] [--out DIR]` (needs matplotlib: the docs extra).

Draws the figures of docs/performance.md from the JSON that the benchmarks write into benchmarks/results
(`make bench` runs this after them):

- corpus.json (`python -m benchmarks.corpus_run`): `corpus_ratios.png`, every program's compiled gradient
  ÷ its NumPy forward, by category; `corpus_peers.png`, the same against PyTorch and HIPS autograd where
  they ran.
- workloads.json, if present (`python -m benchmarks.run --json benchmarks/results/workloads.json`):
  `workloads.png`, time ÷ NumPy forward per engine and workload.

Each figure's title says which run it shows (date and commit from the JSON). The PNGs go to docs/img and
are committed, so the docs build without a benchmark run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
OUT = os.path.join(os.path.dirname(HERE), "docs", "img")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        sys.exit("benchmarks.plots needs matplotlib: pip install -e '.[docs]'")
    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.hashsalt": "srcgrad", "font.size": 9})
    import matplotlib.pyplot as plt
    return plt


def _run_label(doc: dict) -> str:
    m = doc.get("machine", {})
    where = f"{m.get('date', '?')}, commit {m.get('commit', '?')}, {m.get('cpu', '?')}"
    return f"{where} ({doc.get('mode', '?')} mode)"


def _save(fig: Any, path: str) -> str:
    # no timestamps or software versions in the file: the same JSON gives the same PNG
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    return path


def corpus_ratios(doc: dict, out_dir: str) -> str:
    plt = _pyplot()
    progs = [p for p in doc["programs"] if p.get("ratio")]
    categories = sorted({p["category"] for p in progs})
    cmap = plt.get_cmap("tab20")
    colour = {c: cmap(i % 20) for i, c in enumerate(categories)}
    progs.sort(key=lambda p: (categories.index(p["category"]), p["ratio"]))
    fig, ax = plt.subplots(figsize=(11, 4.2))
    xs = range(len(progs))
    ax.bar(xs, [p["ratio"] for p in progs], color=[colour[p["category"]] for p in progs])
    ax.set_yscale("log")
    for y, label in ((1, "= forward"), (3, "3x"), (8, "8x")):
        ax.axhline(y, color="grey", lw=0.8, ls="--")
        ax.text(len(progs) - 0.5, y, f" {label}", va="center", fontsize=8, color="grey")
    ax.set_xticks(list(xs), [p["name"] for p in progs], rotation=90, fontsize=7)
    ax.set_xlim(-0.7, len(progs) - 0.3)
    ax.set_ylabel("compiled gradient ÷ NumPy forward")
    s = doc.get("summary", {}).get("compiled_over_forward", {})
    med = f", median {s['median']:.1f}x" if "median" in s else ""
    ax.set_title(f"Corpus: {len(progs)} programs{med} — {_run_label(doc)}", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[c]) for c in categories]
    ax.legend(handles, categories, ncol=6, fontsize=7, loc="upper left", frameon=False)
    return _save(fig, os.path.join(out_dir, "corpus_ratios.png"))


def corpus_peers(doc: dict, out_dir: str) -> str | None:
    plt = _pyplot()
    peers = [p for p in ("torch", "autograd", "jax") if p in doc.get("peers", [])]
    points: dict[str, list[tuple[float, float]]] = {p: [] for p in peers}
    for prog in doc["programs"]:
        if not prog.get("ratio"):
            continue
        for peer in peers:
            r = prog.get("peers", {}).get(peer, {})
            if r.get("status") == "ok" and r.get("ratio"):
                points[peer].append((prog["ratio"], r["ratio"]))
    points = {k: v for k, v in points.items() if v}
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 5))
    names = {"torch": "PyTorch (torch._numpy)", "autograd": "HIPS autograd", "jax": "JAX (eager)"}
    for peer, pts in points.items():
        ax.scatter([a for a, _ in pts], [b for _, b in pts], s=14, label=f"{names[peer]} ({len(pts)})")
    lo = min(min(min(p) for p in pts) for pts in points.values())
    hi = max(max(max(p) for p in pts) for pts in points.values())
    lim = (10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi)))
    ax.plot(lim, lim, color="grey", lw=0.8, ls="--")
    ax.set(xscale="log", yscale="log", xlim=lim, ylim=lim, xlabel="srcgrad (compiled) ÷ NumPy forward",
           ylabel="peer ÷ NumPy forward")
    ax.text(lim[0] * 1.5, lim[1] / 2, "above the line: srcgrad faster", fontsize=8, color="grey")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Corpus, same programs — {_run_label(doc)}", fontsize=8)
    return _save(fig, os.path.join(out_dir, "corpus_peers.png"))


def workloads(doc: dict, out_dir: str) -> str | None:
    plt = _pyplot()
    cells = [c for c in doc.get("cells", []) if c.get("ratio") and c.get("engine") != "numpy"]
    if not cells:
        return None
    wl = list(dict.fromkeys(c["workload"] for c in cells))
    engines = list(dict.fromkeys(c["engine"] for c in cells))
    ratio = {(c["workload"], c["engine"]): c["ratio"] for c in cells}
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(engines)
    for k, e in enumerate(engines):
        xs = [i + (k - (len(engines) - 1) / 2) * width for i, w in enumerate(wl) if (w, e) in ratio]
        ax.bar(xs, [ratio[(w, e)] for w in wl if (w, e) in ratio], width, label=e)
    ax.axhline(1, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xticks(range(len(wl)), wl)
    ax.set_ylabel("time ÷ NumPy forward")
    ax.legend(ncol=len(engines), fontsize=8, frameon=False)
    ax.set_title(f"Workloads — {_run_label(doc)}", fontsize=9)
    return _save(fig, os.path.join(out_dir, "workloads.png"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="figures for docs/performance.md from benchmarks/results/*.json")
    ap.add_argument("--results", default=RESULTS, help="folder of the benchmark JSON (default %(default)s)")
    ap.add_argument("--out", default=OUT, help="folder for the PNGs (default %(default)s)")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    made: list[str] = []
    corpus = os.path.join(a.results, "corpus.json")
    if os.path.exists(corpus):
        with open(corpus) as f:
            doc = json.load(f)
        made.append(corpus_ratios(doc, a.out))
        made += [p for p in [corpus_peers(doc, a.out)] if p]
    wl_path = os.path.join(a.results, "workloads.json")
    if os.path.exists(wl_path):
        with open(wl_path) as f:
            made += [p for p in [workloads(json.load(f), a.out)] if p]
    if not made:
        print(f"no benchmark JSON in {a.results}: nothing to plot", file=sys.stderr)
        return 1
    for p in made:
        print(f"wrote {os.path.relpath(p)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
