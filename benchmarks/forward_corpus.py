"""Forward mode over the benchmark corpus: `python -m benchmarks.forward_corpus [--quick] [--programs ...]`.

For each program of `benchmarks/corpus/`: the NumPy forward (the unit) and `sg.jvp` along its
differentiated arguments with a random tangent of each argument's type (a float for a float, an array of
its shape), timed warm with the repeats taken in turn (`corpus_run.interleaved`). Each product is checked
against the compiled gradient (`grad · t`), itself checked against finite differences by the corpus
tests. Prints per-program rows and the distribution of jvp ÷ forward; writes JSON to
benchmarks/results/forward_corpus.json (forward_corpus-quick.json in quick mode; `--json` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Any

import numpy as np

from benchmarks.corpus import load
from benchmarks.corpus_run import FULL, QUICK, RESULTS_DIR, first_then_warm, interleaved


def _tangent(a: Any, rng: np.random.Generator) -> Any:
    if isinstance(a, float):
        return float(rng.standard_normal())
    return rng.standard_normal(np.shape(a))


def _dot(grads: tuple, tangents: tuple) -> float:
    return float(sum(np.sum(np.asarray(g) * np.asarray(t)) for g, t in zip(grads, tangents, strict=True)))


def run_program(p: Any, mode: Any) -> dict[str, Any]:
    import srcgrad as sg

    args = (p.quick_inputs if mode.name == "quick" and p.quick_inputs else p.inputs)()
    rng = np.random.default_rng(0)
    tangents = tuple(_tangent(args[i], rng) for i in p.wrt)
    t = tangents[0] if len(p.wrt) == 1 else tangents
    wrt = p.wrt[0] if len(p.wrt) == 1 else p.wrt
    row: dict[str, Any] = {"name": p.name, "category": p.category}
    fwd = first_then_warm(lambda: (lambda: p.forward(*args)), mode, mode.max_call_s, warm=False)

    def make_jvp() -> Any:
        j = sg.jvp(p.forward, wrt=wrt)
        return lambda: j(*args, t)

    jv = first_then_warm(make_jvp, mode, mode.max_call_s, warm=False)
    if fwd["status"] != "ok" or jv["status"] != "ok":
        row["error"] = (fwd if fwd["status"] != "ok" else jv).get("reason", "")
        return row
    fwd["timing"], jv["timing"] = interleaved(
        [(c["run"], c["number"], c["first_sample"]) for c in (fwd, jv)], mode)
    grads = sg.grad(p.forward, wrt=p.wrt)(*args)
    grads = grads if isinstance(grads, tuple) else (grads,)
    want = _dot(grads, tangents)
    got = float(jv["result"][1])
    row["tangent_error"] = abs(got - want) / max(1.0, abs(want))
    row["forward_s"] = fwd["timing"]["median"]
    row["jvp_s"] = jv["timing"]["median"]
    row["ratio"] = row["jvp_s"] / row["forward_s"]
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--programs", nargs="*")
    ap.add_argument("--json")
    opts = ap.parse_args(argv)
    mode = QUICK if opts.quick else FULL
    programs = [p for p in load() if not opts.programs or p.name in opts.programs]
    rows = []
    for p in programs:
        row = run_program(p, mode)
        rows.append(row)
        if "error" in row:
            print(f"{p.name:28s} {row['error']}", flush=True)
        else:
            print(f"{p.name:28s} forward {row['forward_s'] * 1e6:10.1f} us   "
                  f"jvp {row['jvp_s'] * 1e6:10.1f} us   {row['ratio']:6.2f}x   "
                  f"|jvp - grad.t| {row['tangent_error']:.1e}", flush=True)
    ratios = sorted(r["ratio"] for r in rows if "ratio" in r)
    wrong = [r["name"] for r in rows if r.get("tangent_error", 0.0) > 1e-6]
    if ratios:
        q = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
        print(f"\njvp / forward over {len(ratios)} programs: min {ratios[0]:.2f}  q1 {q[0]:.2f}  "
              f"median {statistics.median(ratios):.2f}  q3 {q[2]:.2f}  max {ratios[-1]:.2f}")
    print(f"errors: {[r['name'] for r in rows if 'error' in r]}   tangents off grad . t: {wrong}")
    name = "forward_corpus" + ("-quick" if opts.quick else "") + ".json"
    path = opts.json or os.path.join(RESULTS_DIR, name)
    with open(path, "w") as fh:
        json.dump({"mode": mode.name, "rows": rows}, fh, indent=1)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
