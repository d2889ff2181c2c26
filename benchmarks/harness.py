"""Time engines on workloads, check their answers first, and print ratio tables.

One process, one workload at a time: the NumPy forward (the unit) and every engine are measured back to
back, so the ratios compare numbers taken under the same machine load. Each cell is:

1. prepare (not timed: conversion, compilation, jit);
2. warm-up calls, the first one's result checked against the workload's reference: a wrong answer marks
   the cell WRONG and nothing is timed;
3. samples: each sample times `number` back-to-back calls (chosen so a sample lasts at least
   `min_sample_s`, as timeit does for fast functions) and records the time per call; sampling stops
   after `budget_s` once `min_samples` are taken;
4. the last timed call's result is checked again, so an engine that accumulates `.grad` across calls
   is caught too.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import statistics
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from benchmarks.adapters.base import Adapter, Unsupported
from benchmarks.workloads import Workload

# Cell statuses. Only OK cells carry a timing.
OK, WRONG, UNSUPPORTED, ERROR, SLOW = "ok", "WRONG", "unsupported", "error", "slow"


@dataclass
class Settings:
    """How long to measure each cell."""

    warmup: int = 2
    min_samples: int = 7
    max_samples: int = 200
    budget_s: float = 2.0
    min_sample_s: float = 0.005
    # A first call that runs longer is interrupted and the cell reported as "slower than this".
    max_call_s: float | None = 60.0


QUICK = Settings(warmup=1, min_samples=3, max_samples=50, budget_s=0.3, min_sample_s=0.002, max_call_s=3.0)
FULL = Settings()


@dataclass
class Timing:
    """Seconds per call over the samples."""

    median: float
    q1: float
    q3: float
    min: float
    max: float
    samples: int
    number: int  # calls per sample

    @property
    def spread(self) -> float:
        """Half the interquartile range, relative to the median."""
        return (self.q3 - self.q1) / 2 / self.median if self.median > 0 else 0.0


@dataclass
class Cell:
    """One engine on one workload."""

    workload: str
    engine: str
    status: str
    timing: Timing | None = None
    reason: str = ""
    prepare_s: float | None = None
    traceback: str = ""
    at_least_s: float | None = None  # for "slow" cells: the call was interrupted after this long

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Results:
    """All cells of a run, plus what the tables need to say about the run."""

    workloads: list[str]
    engines: list[str]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def cell(self, workload: str, engine: str) -> Cell | None:
        return self.cells.get((workload, engine))

    def ratio(self, workload: str, engine: str) -> float | None:
        """Engine median ÷ NumPy forward median on the same workload, or None."""
        unit, c = self.cell(workload, "numpy"), self.cell(workload, engine)
        if unit is None or c is None or unit.timing is None or c.timing is None or c.status != OK:
            return None
        return c.timing.median / unit.timing.median


# ------------------------------------------------------------------------------------------- checking
def to_numpy(x: Any) -> Any:
    """Any engine's result (Tensor, JAX array, float, list, or a tuple of those) as NumPy, dtype kept."""
    if isinstance(x, tuple):
        return tuple(to_numpy(i) for i in x)
    if hasattr(x, "detach"):  # torch or srcgrad Tensor
        x = x.detach()
        if hasattr(x, "cpu"):
            x = x.cpu()
        x = x.numpy()
    elif hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        x = x.get()
    return np.asarray(x)


def check(result: Any, expected: tuple[np.ndarray, ...], rtol: float = 1e-6) -> str | None:
    """None when `result` matches the reference, else what is wrong. A result for a single differentiated
    argument may come bare or as a 1-tuple. Results must be float64 (every engine gets float64 inputs); the
    tolerance is relative to the reference's largest entry, so rounding differences between engines pass
    and any real error (a factor, a sign, a lost term) fails."""
    try:
        got = to_numpy(result)
    except Exception as exc:  # a result we cannot even read is wrong
        return f"unreadable result ({type(exc).__name__}: {exc})"
    if not isinstance(got, tuple):
        got = (got,)
    if len(got) != len(expected):
        return f"{len(got)} results, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        if g.shape != e.shape:
            return f"result {i}: shape {g.shape}, expected {e.shape}"
        if g.dtype != np.float64:
            return f"result {i}: dtype {g.dtype}, expected float64"
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        err = float(np.max(np.abs(g - e))) if e.size else 0.0
        if not np.isfinite(err) or err > rtol * scale + 1e-12:
            return f"result {i}: max error {err:.3g} (reference scale {scale:.3g})"
    return None


# -------------------------------------------------------------------------------------------- timing
class _Timeout(BaseException):
    """Not an Exception, so that an engine's `except Exception` cannot swallow it."""


@contextlib.contextmanager
def deadline(seconds: float | None):
    """Interrupt the block after `seconds` with _Timeout (main thread on Unix only; else no limit).

    The engines we time spend their time in Python between operations, where the signal lands. The alarm
    repeats every 0.1 s after the deadline: a signal that lands in a callback whose exceptions Python
    ignores (a gc callback) must not be lost."""
    in_main = threading.current_thread() is threading.main_thread()
    if not (seconds and in_main and hasattr(signal, "setitimer")):
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise _Timeout

    def quiet(report: Any) -> None:  # the ignored tries need no traceback on stderr
        if not isinstance(report.exc_value, _Timeout):
            old_hook(report)

    old_handler, old_hook = signal.signal(signal.SIGALRM, fire), sys.unraisablehook
    sys.unraisablehook = quiet
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.1)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        sys.unraisablehook = old_hook


def measure(run: Callable[[], Any], settings: Settings, once: float) -> tuple[Timing, Any]:
    """Time `run` (already warmed up; one call took about `once` seconds): the timing and the last result."""
    result = None
    if once < settings.budget_s:  # the first call may have paid for caches: calibrate on a warm one
        t0 = time.perf_counter()
        result = run()
        once = time.perf_counter() - t0
    number = max(1, int(settings.min_sample_s / once) + 1) if once < settings.min_sample_s else 1
    per_call: list[float] = []
    start = time.perf_counter()
    while len(per_call) < settings.max_samples:
        t0 = time.perf_counter()
        for _ in range(number):
            result = run()
        per_call.append((time.perf_counter() - t0) / number)
        if len(per_call) >= settings.min_samples and time.perf_counter() - start > settings.budget_s:
            break
    q = statistics.quantiles(per_call, n=4, method="inclusive") if len(per_call) > 1 else per_call * 3
    timing = Timing(median=statistics.median(per_call), q1=q[0], q3=q[2], min=min(per_call),
                    max=max(per_call), samples=len(per_call), number=number)
    return timing, result


def _short(exc: BaseException) -> str:
    line = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return line[:200]


def run_cell(adapter: Adapter, workload: Workload, settings: Settings) -> Cell:
    """Prepare, check, then time one engine on one workload. Never raises (errors become the cell)."""
    cell = Cell(workload.name, adapter.name, ERROR)
    gc.collect()
    t0 = time.perf_counter()
    try:
        run = adapter.prepare(workload)
    except Unsupported as exc:
        cell.status, cell.reason = UNSUPPORTED, str(exc)
        return cell
    except Exception as exc:
        cell.reason = f"prepare failed: {_short(exc)}"
        return cell
    cell.prepare_s = time.perf_counter() - t0
    if run is None:
        cell.status = UNSUPPORTED
        return cell
    try:
        t0 = time.perf_counter()
        try:
            with deadline(settings.max_call_s):
                first = run()
        except _Timeout:
            cell.status, cell.reason = SLOW, f"one call takes over {settings.max_call_s:g} s: not timed"
            cell.at_least_s = settings.max_call_s
            return cell
        once = time.perf_counter() - t0
        if not adapter.forward_only:
            wrong = check(first, workload.expected(), workload.rtol)
            if wrong:
                cell.status, cell.reason = WRONG, wrong
                return cell
        for _ in range(settings.warmup - 1):
            run()
        cell.timing, last = measure(run, settings, once)
    except Exception as exc:
        cell.reason = _short(exc)
        cell.traceback = traceback.format_exc()
        return cell
    if not adapter.forward_only:
        wrong = check(last, workload.expected(), workload.rtol)
        if wrong:
            cell.status, cell.reason, cell.timing = WRONG, f"after repeated calls: {wrong}", None
            return cell
    cell.status = OK
    return cell


def run_all(workloads: Sequence[Workload], adapters: Sequence[Adapter], settings: Settings,
            progress: Callable[[Cell], None] | None = None) -> Results:
    """Every adapter on every workload; the NumPy unit must be among `adapters` for ratios to exist."""
    results = Results([w.name for w in workloads], [a.name for a in adapters])
    ready = []
    for a in adapters:
        if a.available():
            ready.append(a)
        else:
            results.unavailable[a.name] = a.reason or "not available"
    # The engines' modules are loaded now: exempt them from collection, so that collections during
    # timing (and the gc.collect before each cell) cost the same small amount for every engine.
    gc.collect()
    gc.freeze()
    try:
        for w in workloads:
            for a in ready:
                c = run_cell(a, w, settings)
                results.cells[(w.name, a.name)] = c
                if progress:
                    progress(c)
    finally:
        gc.unfreeze()
    return results


# ------------------------------------------------------------------------------------------- tables
def _sig3(x: float) -> str:
    """3 significant digits, trailing zeros kept (2.00, 12.0, 250, 1234)."""
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def format_time(seconds: float) -> str:
    """3 significant digits in the unit that suits: ns, µs, ms or s."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale * 0.9995:
            return f"{_sig3(seconds / scale)} {unit}"
    return f"{_sig3(seconds / 1e-9)} ns"


def format_ratio(r: float) -> str:
    return _sig3(r)


# The targets of issues 3-5 compare srcgrad's engines with these peers (peer time ÷ srcgrad time).
SPEEDUPS = (("compiled", "torch"), ("compiled", "autograd"), ("compiled", "tape"), ("tape", "torch"),
            ("tape", "autograd"))


def speedup_table(results: Results) -> list[str]:
    """How many times faster each srcgrad engine is than each peer, per workload (empty when neither
    side of any pair has a timing)."""
    pairs = [(ours, peer) for ours, peer in SPEEDUPS
             if any(results.ratio(w, ours) and results.ratio(w, peer) for w in results.workloads)]
    if not pairs:
        return []
    rows = ["| workload | " + " | ".join(f"{o} vs {p}" for o, p in pairs) + " |",
            "|---|" + "--:|" * len(pairs)]
    for w in results.workloads:
        cells = []
        for ours, peer in pairs:
            a, b = results.ratio(w, ours), results.ratio(w, peer)
            cells.append(f"{_sig3(b / a)}x" if a and b else "")
        rows.append(f"| {w} | " + " | ".join(cells) + " |")
    return rows


class _Notes:
    """Numbered footnotes, one per distinct reason."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def ref(self, text: str) -> str:
        if text not in self.items:
            self.items.append(text)
        return f"[{self.items.index(text) + 1}]"


def _cell_text(results: Results, w: str, e: str, notes: _Notes, absolute: bool) -> str:
    if e in results.unavailable:
        return "—"
    c = results.cell(w, e)
    if c is None:
        return ""
    if c.status == OK and c.timing is not None:
        if absolute or e == "numpy":
            return f"{format_time(c.timing.median)} ±{100 * c.timing.spread:.0f}%"
        r = results.ratio(w, e)
        return format_ratio(r) if r is not None else "?"
    if c.status == SLOW and c.at_least_s is not None:
        unit = results.cell(w, "numpy")
        if absolute or unit is None or unit.timing is None:
            return f"> {format_time(c.at_least_s)}"
        return f"> {format_ratio(c.at_least_s / unit.timing.median)} {notes.ref(f'{e} on {w}: {c.reason}')}"
    label = {WRONG: "WRONG", UNSUPPORTED: "n/a", ERROR: "error"}[c.status]
    return f"{label} {notes.ref(f'{e} on {w}: {c.reason}')}" if c.reason else label


def markdown(results: Results) -> str:
    """The ratio table, the absolute-time table and their notes, in markdown."""
    notes = _Notes()
    engines = [e for e in results.engines if e != "numpy"]
    out = ["Time ÷ NumPy forward of the same workload (median; lower is better). "
           "The NumPy column is the absolute forward time.", ""]
    out += _table(results, ["numpy"] + engines, notes, absolute=False)
    out += ["", "Absolute time per call: median ± half the interquartile range.", ""]
    out += _table(results, ["numpy"] + engines, notes, absolute=True)
    speedups = speedup_table(results)
    if speedups:
        out += ["", "Speed-up of srcgrad's engines: peer time ÷ srcgrad time (above 1 = srcgrad faster).", ""]
        out += speedups
    if results.unavailable:
        out += ["", "Not available (—): " + "; ".join(f"{e}: {r}" for e, r in results.unavailable.items())
                + "."]
    if notes.items:
        out += [""] + [f"[{i}] {t}" for i, t in enumerate(notes.items, 1)]
    return "\n".join(out)


def _table(results: Results, engines: list[str], notes: _Notes, absolute: bool) -> list[str]:
    head = ["workload"] + [f"{e} fwd" if e == "numpy" else e for e in engines]
    rows = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["--:"] * len(engines)) + "|"]
    for w in results.workloads:
        cells = [_cell_text(results, w, e, notes, absolute) for e in engines]
        rows.append("| " + " | ".join([w] + cells) + " |")
    return rows
