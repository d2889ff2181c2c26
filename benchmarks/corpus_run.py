"""Time the benchmark corpus: `python -m benchmarks.corpus_run [--quick] [--programs ...] [--peers ...]`.

For each program in `benchmarks/corpus/`: the NumPy forward (the unit), the same program written with
`math` for loops over Python floats, and srcgrad's compiled gradient (`sg.grad`), warm (after a first call,
median of repeats, each repeat sized timeit-style: 1, 2, 5, 10, ... calls until a repeat lasts long
enough); the first call of a fresh `sg.grad` is timed separately (transform + first run). Peers, where
installed (the `bench` extra), run the same source: HIPS autograd and JAX (eager `jax.grad`, float64) with
`np`/`math` rebound to `autograd.numpy` / `jax.numpy`, PyTorch through `torch._numpy` (its NumPy layer)
with eager autograd. Each peer's gradient is compared with srcgrad's (which the corpus test checks against
finite differences).

Prints per-program rows, the distribution of compiled gradient ÷ forward (min, quartiles, median, max,
the programs over 8x), float loops against their `math` forward, and the spelling families; writes JSON
to benchmarks/results/corpus.json (corpus-quick.json in quick mode). One thread per engine unless
SRCGRAD_BENCH_THREADS says otherwise.
"""

from __future__ import annotations

import os

_THREADS = os.environ.get("SRCGRAD_BENCH_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _THREADS)
if _THREADS == "1":
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.corpus import Program, load  # noqa: E402
from benchmarks.corpus.check import gradient_error  # noqa: E402
from benchmarks.harness import _Timeout, deadline, format_time  # noqa: E402
from benchmarks.run import machine  # noqa: E402

PEERS = ("torch", "autograd", "jax")
OVER = 8.0  # the "none over 8x"
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# A program too slow to run when a smaller size already is: (smaller size, limit in seconds).
GUARDS = {"elem_loop_64k": ("elem_loop_8k", 2.0)}


@dataclass
class Mode:
    name: str
    min_repeat_s: float  # one repeat lasts at least this long (timeit's autorange)
    repeats: int
    max_call_s: float  # a first call of srcgrad longer than this is interrupted
    peer_call_s: float  # the same for a peer (eager JAX on a 2000-step float loop takes seconds)


FULL = Mode("full", 0.05, 7, 120.0, 2.0)
QUICK = Mode("quick", 0.01, 3, 20.0, 1.0)


# ------------------------------------------------------------------------------------------ timing
def autorange(run: Callable[[], Any], mode: Mode, once: float) -> tuple[int, float]:
    """timeit.Timer.autorange: calls per repeat (1, 2, 5, 10, 20, ...) so that one repeat lasts at least
    `mode.min_repeat_s`, and the time per call of that first repeat. `run` was already called once
    (it took about `once` s): a call over a second is its own repeat."""
    if once > 1.0:
        t0 = time.perf_counter()
        run()
        return 1, time.perf_counter() - t0
    number = 1
    while True:
        for k in (1, 2, 5):
            n = number * k
            t0 = time.perf_counter()
            for _ in range(n):
                run()
            t = time.perf_counter() - t0
            if t >= mode.min_repeat_s:
                return n, t / n
        number *= 10


def _stats(samples: list[float], number: int) -> dict[str, float]:
    q = statistics.quantiles(samples, n=4, method="inclusive") if len(samples) > 1 else samples * 3
    return {"median": statistics.median(samples), "q1": q[0], "q3": q[2], "min": min(samples),
            "samples": len(samples), "number": number}


def interleaved(runs: list[tuple[Callable[[], Any], int, float]], mode: Mode) -> list[dict[str, float]]:
    """Median seconds per call of each (run, number, first sample), the repeats taken in turn (A B A B
    ...), so that a load change on a shared machine hits every run alike and their ratio stays fair."""
    samples = [[first] for _, _, first in runs]
    longest = max(first * number for _, number, first in runs)
    repeats = 1 if longest > 1.0 else mode.repeats if longest < 0.5 else max(2, mode.repeats // 3)
    for _ in range(repeats - 1):
        for (run, number, _), out in zip(runs, samples, strict=True):
            t0 = time.perf_counter()
            for _ in range(number):
                run()
            out.append((time.perf_counter() - t0) / number)
    return [_stats(out, number) for out, (_, number, _) in zip(samples, runs, strict=True)]


def warm_time(run: Callable[[], Any], mode: Mode, once: float) -> dict[str, float]:
    """Median seconds per call of an already-called `run` (one call took about `once` s)."""
    number, first = autorange(run, mode, once)
    return interleaved([(run, number, first)], mode)[0]


def first_then_warm(make: Callable[[], Callable[[], Any]], mode: Mode, limit: float,
                    warm: bool = True) -> dict[str, Any]:
    """Build (`make`) and call once under a deadline, then time warm calls (with `warm=False`, only
    autorange: "run", "number" and "first_sample" for `interleaved`). Never raises."""
    gc.collect()
    out: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        with deadline(limit):
            run = make()
            result = run()
        out["first_s"] = time.perf_counter() - t0
        out["result"] = result
        if warm:
            out["timing"] = warm_time(run, mode, out["first_s"])
        else:
            out["run"] = run
            out["number"], out["first_sample"] = autorange(run, mode, out["first_s"])
        out["status"] = "ok"
    except _Timeout:
        out["status"], out["reason"] = "slow", f"first call over {limit:g} s"
    except Exception as exc:  # a refusal, an engine's error: reported, not fatal
        out["status"] = "refused" if type(exc).__name__ == "TransformError" else "error"
        out["reason"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    return out


# ------------------------------------------------------------------------------------------- peers
def _rebound(fn: Callable[..., Any], xnp: Any) -> Callable[..., Any]:
    """`fn` with `np` and `math` rebound to `xnp` in a copy of its module's globals; every function of
    that module (the helpers it calls) is rebound the same way."""
    shim = types.SimpleNamespace(pi=math.pi, e=math.e, inf=math.inf)
    for name in ("sin", "cos", "tan", "exp", "log", "log1p", "sqrt", "tanh", "atan2", "expm1"):
        if hasattr(xnp, name):
            setattr(shim, name, getattr(xnp, name))
    env = dict(fn.__globals__)
    env["np"], env["math"] = xnp, shim
    for name, value in list(env.items()):
        if isinstance(value, types.FunctionType) and value.__module__ == fn.__module__:
            new = types.FunctionType(value.__code__, env, value.__name__, value.__defaults__,
                                     value.__closure__)
            new.__kwdefaults__ = value.__kwdefaults__
            env[name] = new
    return env[fn.__name__]


def _peer_available(name: str) -> str | None:
    """None when the peer imports, else why not."""
    try:
        if name == "torch":
            import torch
            import torch._numpy  # noqa: F401

            torch.set_num_threads(int(_THREADS))
        elif name == "autograd":
            import autograd  # noqa: F401
        else:
            import jax

            jax.config.update("jax_enable_x64", True)
    except ImportError as exc:
        return f"not installed ({exc.name or exc}; the bench extra)"
    return None


def _peer_maker(name: str, p: Program, args: tuple[Any, ...]) -> Callable[[], Callable[[], Any]]:
    def make() -> Callable[[], Any]:
        if name == "autograd":
            import autograd
            import autograd.numpy as anp

            g = autograd.grad(_rebound(p.forward, anp), p.wrt)
            return lambda: g(*args)
        if name == "jax":
            import jax
            import jax.numpy as jnp

            jargs = [a if isinstance(a, (float, int)) else jnp.asarray(a) for a in args]
            g = jax.grad(_rebound(p.forward, jnp), argnums=p.wrt)
            return lambda: g(*jargs)
        import torch
        import torch._numpy as tnp

        fn = _rebound(p.forward, tnp)
        leaves = [torch.tensor(np.asarray(args[i], dtype=np.float64), requires_grad=True) for i in p.wrt]

        def run() -> Any:
            targs = [tnp.asarray(torch.from_numpy(a)) if isinstance(a, np.ndarray) else a for a in args]
            for i, leaf in zip(p.wrt, leaves, strict=True):
                targs[i] = tnp.asarray(leaf)
            out = fn(*targs)
            out = out.tensor if hasattr(out, "tensor") else out
            return torch.autograd.grad(out, leaves, allow_unused=True)

        return run

    return make


def _as_numpy(g: Any) -> tuple[np.ndarray, ...]:
    g = g if isinstance(g, tuple) else (g,)
    return tuple(np.asarray(x.detach().numpy() if hasattr(x, "detach") else x, dtype=np.float64) for x in g)


def _agrees(a: Any, b: Any) -> str | None:
    """None when two gradients agree (relative 1e-6 of the larger's largest entry), else how not."""
    try:
        a, b = _as_numpy(a), _as_numpy(b)
    except Exception as exc:
        return f"unreadable ({type(exc).__name__})"
    for x, y in zip(a, b, strict=True):
        scale = max(float(np.max(np.abs(x), initial=0)), float(np.max(np.abs(y), initial=0)))
        err = float(np.max(np.abs(x - y), initial=0))
        if not np.isfinite(err) or err > 1e-6 * scale + 1e-12:
            return f"max difference {err:.3g} (scale {scale:.3g})"
    return None


# ----------------------------------------------------------------------------------------- running
def run_program(p: Program, mode: Mode, peers: list[str], done: dict[str, dict[str, Any]]) -> dict[str, Any]:
    import srcgrad as sg

    row: dict[str, Any] = {"name": p.name, "category": p.category, "group": p.group,
                           "description": p.description, "float_loop": p.float_loop}
    guard = GUARDS.get(p.name)
    if guard and mode.name == "full" and guard[0] in done:
        smaller = done[guard[0]]
        t_small = (smaller.get("grad") or {}).get("median")
        if t_small is not None and t_small > guard[1]:
            row["skipped"] = f"{guard[0]}'s gradient takes {t_small:.2f} s (> {guard[1]:g} s)"
            row["extrapolated_grad_s"] = _extrapolate(done, p)
            return row
    args = (p.quick_inputs if mode.name == "quick" and p.quick_inputs else p.inputs)()
    if mode.name == "quick" and p.quick_inputs:
        row["display"] = f"{p.name} (quick size)"
    row["size"] = {str(i): list(np.shape(a)) for i, a in enumerate(args) if np.ndim(a)}
    fwd = first_then_warm(lambda: (lambda: p.forward(*args)), mode, mode.max_call_s, warm=False)
    if fwd["status"] != "ok":
        row["error"] = f"forward: {fwd.get('reason')}"
        return row
    mf = None
    if p.float_loop and p.math_forward is not p.forward:
        mf = first_then_warm(lambda: (lambda: p.math_forward(*args)), mode, mode.max_call_s, warm=False)

    def make_grad() -> Callable[[], Any]:
        g = sg.grad(p.forward, wrt=p.wrt)
        return lambda: g(*args)

    cg = first_then_warm(make_grad, mode, mode.max_call_s, warm=False)
    # forward, math forward and gradient: repeats taken in turn, under the same machine load
    cells = [c for c in (fwd, mf, cg) if c is not None and c["status"] == "ok"]
    timings = interleaved([(c["run"], c["number"], c["first_sample"]) for c in cells], mode)
    for c, timing in zip(cells, timings, strict=True):
        c["timing"] = timing
    row["forward"] = fwd["timing"]
    if p.float_loop:
        row["math_forward"] = fwd["timing"] if mf is None else mf.get("timing")
    if cg["status"] == "ok":  # a wrong gradient's time is no result: one finite-difference check
        got = cg["result"] if isinstance(cg["result"], tuple) else (cg["result"],)
        wrong = gradient_error(p, args, got, trials=1)
        if wrong:
            cg["status"], cg["reason"] = "WRONG", f"wrong gradient {wrong}"
            row["wrong_grad"] = cg["timing"]
    row["grad_status"] = cg["status"]
    if cg["status"] != "ok":
        row["grad_reason"] = cg.get("reason", "")
        if cg["status"] == "slow":
            row["grad_at_least_s"] = mode.max_call_s
    else:
        row["grad"] = cg["timing"]
        row["first_call_s"] = cg["first_s"]
        row["transform_s"] = max(cg["first_s"] - cg["timing"]["median"], 0.0)
        row["ratio"] = cg["timing"]["median"] / fwd["timing"]["median"]
        row["ratio_of_min"] = cg["timing"]["min"] / fwd["timing"]["min"]  # a check on the noise
        if p.float_loop and row.get("math_forward"):
            row["ratio_vs_math"] = cg["timing"]["median"] / row["math_forward"]["median"]
    row["peers"] = {}
    for name in peers:
        pr = first_then_warm(_peer_maker(name, p, args), mode, mode.peer_call_s)
        cell: dict[str, Any] = {"status": pr["status"]}
        if pr["status"] == "ok":
            cell["timing"] = pr["timing"]
            cell["ratio"] = pr["timing"]["median"] / fwd["timing"]["median"]
            if cg["status"] == "ok":
                differs = _agrees(pr["result"], cg["result"])
                if differs:
                    cell["disagrees_with_srcgrad"] = differs
        else:
            cell["reason"] = pr.get("reason", "")
        row["peers"][name] = cell
    return row


def _extrapolate(done: dict[str, dict[str, Any]], p: Program) -> float | None:
    """The gradient time of elem_loop at n = 64,000 from 4,000 and 8,000 (t ~ n^k, k from the two)."""
    t4 = (done.get("elem_loop_4k", {}).get("grad") or {}).get("median")
    t8 = (done.get("elem_loop_8k", {}).get("grad") or {}).get("median")
    if not (t4 and t8):
        return None
    k = math.log2(t8 / t4)
    return t8 * 8.0**k


def quartiles(xs: list[float]) -> dict[str, float]:
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else xs * 3
    return {"n": len(xs), "min": min(xs), "q1": q[0], "median": statistics.median(xs), "q3": q[2],
            "max": max(xs)}


def summarize(rows: list[dict[str, Any]], peers: list[str]) -> dict[str, Any]:
    ok = [r for r in rows if "ratio" in r]
    ratios = [r["ratio"] for r in ok]
    s: dict[str, Any] = {"compiled_over_forward": quartiles(ratios) if ratios else None}
    s["compiled_over_forward_of_min"] = quartiles([r["ratio_of_min"] for r in ok]) if ok else None
    s["over_8x"] = sorted(((r["name"], r["ratio"]) for r in ok if r["ratio"] > OVER), key=lambda t: -t[1])
    fl = [r for r in ok if r.get("ratio_vs_math") is not None]
    s["float_loops_vs_math"] = {r["name"]: r["ratio_vs_math"] for r in fl}
    s["float_loops_over_4x"] = [r["name"] for r in fl if r["ratio_vs_math"] > 4.0]
    s["wrong"] = [r["name"] for r in rows if r.get("grad_status") == "WRONG"]
    s["refused"] = [r["name"] for r in rows if r.get("grad_status") == "refused"]
    s["not_measured"] = {r["name"]: r.get("grad_reason") or r.get("error") or r.get("skipped", "")
                         for r in rows if "ratio" not in r}
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("group"):
            groups.setdefault(r["group"], {})[r.get("display", r["name"])] = {
                "forward_s": (r.get("forward") or {}).get("median"),
                "grad_s": (r.get("grad") or {}).get("median"),
                "ratio": r.get("ratio"), "extrapolated_grad_s": r.get("extrapolated_grad_s"),
                "skipped": r.get("skipped")}
    s["spelling"] = groups
    s["peers"] = {}
    for name in peers:
        pr = [r["peers"][name]["ratio"] for r in rows if r.get("peers", {}).get(name, {}).get("ratio")]
        s["peers"][name] = quartiles(pr) if pr else None
    return s


# ---------------------------------------------------------------------------------------- printing
def _t(d: dict[str, Any] | None) -> str:
    return format_time(d["median"]) if d else ""


def _r(x: float | None) -> str:
    return "" if x is None else (f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}")


def report(rows: list[dict[str, Any]], s: dict[str, Any], peers: list[str], info: dict[str, Any],
           mode: Mode, elapsed: float, unavailable: dict[str, str]) -> str:
    out = [f"srcgrad corpus ({mode.name}), {info['date']}, commit {info['commit'] or '?'}; "
           f"{info['cpu']}, {info['cores']} cores, {info['threads']} thread(s) per engine", ""]
    head = ["program", "category", "numpy fwd", "math fwd", "grad", "grad ÷ fwd", "÷ math fwd", "first call"]
    head += [f"{p} ÷ fwd" for p in peers]
    out += ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["--:"] * (len(head) - 2)) + "|"]
    notes: list[str] = []

    def note(text: str) -> str:
        if text not in notes:
            notes.append(text)
        return f"[{notes.index(text) + 1}]"

    for r in rows:
        if "skipped" in r:
            ext = r.get("extrapolated_grad_s")
            cells = [r["name"], r["category"], "", "", f"~{format_time(ext)} (extrapolated)" if ext else "",
                     note(f"{r['name']} skipped: {r['skipped']}"), "", ""] + [""] * len(peers)
            out.append("| " + " | ".join(cells) + " |")
            continue
        if "grad" in r:
            grad, ratio = _t(r["grad"]), _r(r["ratio"])
        else:
            why = r.get("grad_reason") or r.get("error")
            grad, ratio = r.get("grad_status", "error"), note(f"{r['name']}: {why}")
        cells = [r.get("display", r["name"]), r["category"], _t(r.get("forward")), _t(r.get("math_forward")),
                 grad, ratio,
                 _r(r.get("ratio_vs_math")), format_time(r["first_call_s"]) if "first_call_s" in r else ""]
        for name in peers:
            c = r.get("peers", {}).get(name, {})
            if c.get("status") == "ok":
                txt = _r(c["ratio"])
                if c.get("disagrees_with_srcgrad"):
                    why = c["disagrees_with_srcgrad"]
                    txt += " " + note(f"{name} on {r['name']} differs from srcgrad: {why}")
            elif c:
                txt = {"slow": "slow", "refused": "n/a"}.get(c["status"], "error") + " " + note(
                    f"{name}: {c.get('reason', '')}")
            else:
                txt = ""
            cells.append(txt)
        out.append("| " + " | ".join(cells) + " |")
    d = s["compiled_over_forward"]
    out += [""]
    if d:
        out.append(f"Compiled gradient ÷ NumPy forward over {d['n']} programs: min {_r(d['min'])}, "
                   f"q1 {_r(d['q1'])}, median {_r(d['median'])}, q3 {_r(d['q3'])}, max {_r(d['max'])}.")
    dm = s["compiled_over_forward_of_min"]
    if dm:
        out.append(f"The same from the fastest repeat of each (a check on machine noise): q1 {_r(dm['q1'])}, "
                   f"median {_r(dm['median'])}, q3 {_r(dm['q3'])}, max {_r(dm['max'])}.")
    out.append(f"Over {OVER:g}x ({len(s['over_8x'])}): "
               + (", ".join(f"{n} {_r(x)}" for n, x in s["over_8x"]) or "none") + ".")
    fl = s["float_loops_vs_math"]
    if fl:
        out.append("Python-float loops, compiled gradient ÷ the same program's `math` forward: "
                   + ", ".join(f"{n} {_r(x)}" for n, x in fl.items())
                   + f" (over 4x: {len(s['float_loops_over_4x'])} of {len(fl)}).")
    for g, members in s["spelling"].items():
        parts = []
        for n, m in members.items():
            if m["ratio"] is not None:
                parts.append(f"{n} {_r(m['ratio'])}x ({format_time(m['grad_s'])})")
            elif m.get("extrapolated_grad_s"):
                parts.append(f"{n} skipped, ~{format_time(m['extrapolated_grad_s'])} extrapolated")
            else:
                parts.append(f"{n} not measured")
        out.append(f"Spelling family `{g}`: " + "; ".join(parts) + ".")
    for name, q in s["peers"].items():
        if q:
            out.append(f"{name} ÷ NumPy forward over {q['n']} programs: median {_r(q['median'])} "
                       f"(q1 {_r(q['q1'])}, q3 {_r(q['q3'])}).")
    if s["not_measured"]:
        out.append("Not measured: " + "; ".join(f"{n}: {why}" for n, why in s["not_measured"].items()) + ".")
    if unavailable:
        out.append("Peers not available: " + "; ".join(f"{k}: {v}" for k, v in unavailable.items()) + ".")
    out += [""] + [f"[{i}] {t}" for i, t in enumerate(notes, 1)]
    out += ["", f"Total run time: {elapsed:.0f} s."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    programs = load()
    names = [p.name for p in programs]
    ap = argparse.ArgumentParser(prog="python -m benchmarks.corpus_run", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats, n = 4,000 for the 64,000 element loop")
    ap.add_argument("--programs", nargs="+", metavar="NAME", help="subset (names or categories)")
    ap.add_argument("--peers", nargs="*", metavar="NAME", default=None,
                    help=f"subset of {', '.join(PEERS)} (default: those installed; bare --peers: none)")
    ap.add_argument("--json", metavar="PATH",
                    help="where to write the JSON (default benchmarks/results/corpus.json, "
                    "corpus-quick.json in quick mode)")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args(argv)
    if a.list:
        for p in programs:
            print(f"{p.name:24s} {p.category:11s} {p.description}")
        return 0
    if a.programs:
        asked = {n for v in a.programs for n in v.split(",") if n}
        unknown = asked - set(names) - {p.category for p in programs}
        if unknown:
            raise SystemExit(f"unknown programs: {', '.join(sorted(unknown))}")
        programs = [p for p in programs if p.name in asked or p.category in asked]
    mode = QUICK if a.quick else FULL
    wanted = list(PEERS) if a.peers is None else [n for v in a.peers for n in v.split(",") if n]
    unavailable = {}
    peers = []
    for n in wanted:
        if n not in PEERS:
            raise SystemExit(f"unknown peer {n} (known: {', '.join(PEERS)})")
        why = _peer_available(n)
        if why:
            unavailable[n] = why
        else:
            peers.append(n)
    import srcgrad  # noqa: F401  (imported before timing)

    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    done: dict[str, dict[str, Any]] = {}
    for p in programs:
        r = run_program(p, mode, peers, done)
        rows.append(r)
        done[p.name] = r
        peer_txt = " ".join(f"{k}={_r(v.get('ratio')) or v['status']}" for k, v in r.get("peers", {}).items())
        grad_txt = _t(r.get("grad")) or r.get("grad_status", "-")
        print(f"  {p.name:24s} fwd {_t(r.get('forward')):>10s} grad {grad_txt:>10s}"
              f" ratio {_r(r.get('ratio')):>6s} {peer_txt} {r.get('skipped', '')}",
              file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    gc.unfreeze()
    s = summarize(rows, peers)
    info = machine()
    print(report(rows, s, peers, info, mode, elapsed, unavailable))
    path = a.json or os.path.join(RESULTS_DIR, "corpus-quick.json" if a.quick else "corpus.json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"mode": mode.name, "machine": info, "elapsed_s": elapsed, "peers": peers,
                   "unavailable": unavailable, "summary": s, "programs": rows}, f, indent=1, default=float)
    print(f"\nJSON: {os.path.relpath(path)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
