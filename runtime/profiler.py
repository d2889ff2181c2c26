"""The autograd profiler: times every recorded operation, forward and backward.

While a `profile` is active, every primitive called on a Tensor (the forward pass) and every graph node
run by the engine (the backward pass) opens an event; `record_function(name)` opens one for a block.
Events nest, so each has a total time and a self time (total minus its children). `key_averages()`
groups them by name (and input shapes on request) and `.table()` prints PyTorch's layout.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from typing import Any, Callable

_ACTIVE: "profile | None" = None
# Called with True when profiling starts and False when it stops: the tensor module swaps in a timed
# trace handler, so the untimed path carries no profiler check at all.
LISTENERS: list[Callable[[bool], None]] = []
_now = time.perf_counter_ns


class FunctionEvent:
    """One timed call. Times are in microseconds, as PyTorch reports them."""

    __slots__ = ("name", "start_ns", "end_ns", "child_ns", "input_shapes", "thread", "cuda_ns",
                 "_cuda_events", "depth")

    def __init__(self, name: str, input_shapes: Any, depth: int) -> None:
        self.name = name
        self.start_ns = _now()
        self.end_ns = self.start_ns
        self.child_ns = 0
        self.input_shapes = input_shapes
        self.thread = threading.get_ident()
        self.cuda_ns = 0
        self._cuda_events = None
        self.depth = depth

    @property
    def key(self) -> str:
        return self.name

    @property
    def cpu_time_total(self) -> float:
        return (self.end_ns - self.start_ns) / 1e3

    @property
    def self_cpu_time_total(self) -> float:
        return (self.end_ns - self.start_ns - self.child_ns) / 1e3

    @property
    def cuda_time_total(self) -> float:
        return self.cuda_ns / 1e3

    def __repr__(self) -> str:
        return (f"<FunctionEvent name={self.name} cpu_time_total={self.cpu_time_total:.3f}us "
                f"self_cpu_time_total={self.self_cpu_time_total:.3f}us>")


class FunctionEventAvg:
    """The events of one key (name, or name and input shapes), summed."""

    def __init__(self, key: str, input_shapes: Any = None) -> None:
        self.key = key
        self.input_shapes = input_shapes
        self.count = 0
        self.cpu_time_total = 0.0
        self.self_cpu_time_total = 0.0
        self.cuda_time_total = 0.0
        self.self_cuda_time_total = 0.0

    def add(self, ev: FunctionEvent) -> None:
        self.count += 1
        self.cpu_time_total += ev.cpu_time_total
        self.self_cpu_time_total += ev.self_cpu_time_total
        self.cuda_time_total += ev.cuda_time_total
        self.self_cuda_time_total += ev.cuda_time_total if ev.depth == 0 or not ev.child_ns else 0.0

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / max(self.count, 1)

    cpu_time_avg = cpu_time

    @property
    def cuda_time(self) -> float:
        return self.cuda_time_total / max(self.count, 1)

    def __repr__(self) -> str:
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={self.self_cpu_time_total:.3f}us "
                f"cpu_time={self.cpu_time_total:.3f}us count={self.count}>")


def _fmt_time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _fmt_pct(x: float) -> str:
    return f"{100.0 * x:.2f}%"


class EventList(list):
    """A list of events (or averages) that prints as PyTorch's profiler table."""

    def __init__(self, items: Any = (), use_cuda: bool = False, shapes: bool = False) -> None:
        super().__init__(items)
        self._use_cuda = use_cuda
        self._shapes = shapes

    @property
    def self_cpu_time_total(self) -> float:
        return sum(e.self_cpu_time_total for e in self)

    def table(self, sort_by: str | None = None, row_limit: int = 100, max_name_column_width: int = 55,
              header: str | None = None, top_level_events_only: bool = False, **_: Any) -> str:
        rows = list(self)
        if sort_by is not None:
            key = {"cpu_time": "cpu_time_total", "cuda_time": "cuda_time_total",
                   "self_cpu_time": "self_cpu_time_total", "calls": "count"}.get(sort_by, sort_by)
            rows.sort(key=lambda e: getattr(e, key), reverse=True)
        if row_limit is not None and row_limit >= 0:
            rows = rows[:row_limit]
        total_self = self.self_cpu_time_total or 1e-12
        total_cuda = sum(getattr(e, "self_cuda_time_total", e.cuda_time_total) for e in self) or 1e-12
        name_w = min(max([len("Name")] + [len(e.key) for e in rows]) + 4, max_name_column_width)
        headers = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"]
        if self._use_cuda:
            headers += ["Self CUDA", "Self CUDA %", "CUDA total", "CUDA time avg"]
        headers += ["# of Calls"]
        if self._shapes:
            headers += ["Input Shapes"]
        widths = [name_w] + [12] * (len(headers) - 1)
        if self._shapes:
            widths[-1] = max([len("Input Shapes")] + [len(str(e.input_shapes)) for e in rows]) + 2
        line = " ".join("-" * w for w in widths)

        def fmt_row(cells: list[str]) -> str:
            out = [cells[0][:name_w - 1].ljust(name_w)]
            out += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
            return " ".join(out)

        lines = []
        if header:
            lines.append("=" * len(line))
            lines.append(header)
        lines += [line, fmt_row(headers), line]
        for e in rows:
            count = getattr(e, "count", 1)
            cells = [e.key, _fmt_pct(e.self_cpu_time_total / total_self), _fmt_time(e.self_cpu_time_total),
                     _fmt_pct(e.cpu_time_total / total_self), _fmt_time(e.cpu_time_total),
                     _fmt_time(e.cpu_time_total / max(count, 1))]
            if self._use_cuda:
                self_cuda = getattr(e, "self_cuda_time_total", e.cuda_time_total)
                cells += [_fmt_time(self_cuda), _fmt_pct(self_cuda / total_cuda),
                          _fmt_time(e.cuda_time_total),
                          _fmt_time(e.cuda_time_total / max(count, 1))]
            cells += [str(count)]
            if self._shapes:
                cells += [str(e.input_shapes)]
            lines.append(fmt_row(cells))
        lines.append(line)
        lines.append(f"Self CPU time total: {_fmt_time(self.self_cpu_time_total)}")
        if self._use_cuda:
            lines.append(f"Self CUDA time total: {_fmt_time(total_cuda if total_cuda > 1e-12 else 0.0)}")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.table()


class profile:
    """`with profile() as prof: ...` then `prof.key_averages().table(sort_by='self_cpu_time_total')`."""

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False, use_device: str | None = None,
                 record_shapes: bool = False, profile_memory: bool = False, with_stack: bool = False,
                 **_: Any) -> None:
        self.enabled = enabled
        self.use_cuda = bool(use_cuda or use_device == "cuda")
        if self.use_cuda and enabled:
            from .backend import require_cuda  # noqa: PLC0415

            self._cp = require_cuda()
        else:
            self._cp = None
        self.record_shapes = record_shapes
        self.function_events: list[FunctionEvent] = []
        self._stack: list[FunctionEvent] = []
        self._prev: profile | None = None
        self._t0 = 0

    def __enter__(self) -> "profile":
        global _ACTIVE
        if self.enabled:
            self._prev = _ACTIVE
            _ACTIVE = self
            for fn in LISTENERS:
                fn(True)
            self._t0 = _now()
        return self

    def __exit__(self, *exc: Any) -> None:
        global _ACTIVE
        if not self.enabled:
            return
        _ACTIVE = self._prev
        if _ACTIVE is None:
            for fn in LISTENERS:
                fn(False)
        if self._cp is not None:
            self._cp.cuda.runtime.deviceSynchronize()
            for ev in self.function_events:
                if ev._cuda_events is not None:
                    start, end = ev._cuda_events
                    ev.cuda_ns = int(self._cp.cuda.get_elapsed_time(start, end) * 1e6)
                    ev._cuda_events = None

    # events ----------------------------------------------------------------------------------------
    def _begin(self, name: str, shapes: Any = None) -> FunctionEvent:
        ev = FunctionEvent(name, shapes, len(self._stack))
        if self._cp is not None:
            s = self._cp.cuda.Event()
            s.record()
            ev._cuda_events = (s, None)
        self._stack.append(ev)
        return ev

    def _end(self, ev: FunctionEvent) -> None:
        if self._cp is not None and ev._cuda_events is not None:
            e = self._cp.cuda.Event()
            e.record()
            ev._cuda_events = (ev._cuda_events[0], e)
        ev.end_ns = _now()
        if self._stack and self._stack[-1] is ev:
            self._stack.pop()
        if self._stack:
            self._stack[-1].child_ns += ev.end_ns - ev.start_ns
        self.function_events.append(ev)

    # results ---------------------------------------------------------------------------------------
    def events(self) -> EventList:
        return EventList(sorted(self.function_events, key=lambda e: e.start_ns), self.use_cuda,
                         self.record_shapes)

    def key_averages(self, group_by_input_shape: bool = False, **_: Any) -> EventList:
        groups: dict[Any, FunctionEventAvg] = {}
        for ev in sorted(self.function_events, key=lambda e: e.start_ns):
            shapes = ev.input_shapes if group_by_input_shape else None
            key = (ev.name, str(shapes)) if group_by_input_shape else ev.name
            avg = groups.get(key)
            if avg is None:
                avg = groups[key] = FunctionEventAvg(ev.name, shapes)
            avg.add(ev)
        return EventList(groups.values(), self.use_cuda, group_by_input_shape)

    def total_average(self) -> FunctionEventAvg:
        tot = FunctionEventAvg("Total")
        for ev in self.function_events:
            tot.add(ev)
        return tot

    @property
    def self_cpu_time_total(self) -> float:
        return sum(e.self_cpu_time_total for e in self.function_events)

    def table(self, **kwargs: Any) -> str:
        return self.key_averages().table(**kwargs)

    def export_chrome_trace(self, path: str | os.PathLike) -> None:
        """Write the events in the Trace Event format (chrome://tracing, Perfetto)."""
        pid = os.getpid()
        trace = []
        for ev in sorted(self.function_events, key=lambda e: e.start_ns):
            item = {"name": ev.name, "ph": "X", "cat": "cpu_op", "pid": pid, "tid": ev.thread,
                    "ts": (ev.start_ns - self._t0) / 1e3, "dur": (ev.end_ns - ev.start_ns) / 1e3,
                    "args": {}}
            if ev.input_shapes is not None:
                item["args"]["Input Dims"] = ev.input_shapes
            trace.append(item)
            if ev.cuda_ns:
                trace.append({"name": ev.name, "ph": "X", "cat": "kernel", "pid": pid, "tid": "cuda",
                              "ts": (ev.start_ns - self._t0) / 1e3, "dur": ev.cuda_ns / 1e3, "args": {}})
        with open(path, "w") as f:
            json.dump({"traceEvents": trace, "displayTimeUnit": "ms"}, f)

    def __str__(self) -> str:
        return self.table()


class record_function:
    """Label a block (or a function, as a decorator) so it shows as one row with its own total."""

    def __init__(self, name: str, args: Any = None) -> None:
        self.name = name
        self._ev: FunctionEvent | None = None
        self._prof: profile | None = None

    def __enter__(self) -> "record_function":
        prof = _ACTIVE
        if prof is not None:
            self._prof = prof
            self._ev = prof._begin(self.name)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._prof is not None and self._ev is not None:
            self._prof._end(self._ev)
            self._ev = None

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with record_function(self.name):
                return fn(*args, **kwargs)
        return wrapper


def _shape_of(a: Any) -> list:
    arr = getattr(a, "_array", None)
    return list(arr.shape) if arr is not None and hasattr(arr, "shape") else []


def traced_call(prim: Any, args: tuple, kwargs: dict, inner: Callable) -> Any:
    """The trace handler's slow path while profiling: one event around the primitive call."""
    prof = _ACTIVE
    shapes = [_shape_of(a) for a in args] if prof.record_shapes else None
    ev = prof._begin(prim.name, shapes)
    try:
        return inner(prim, args, kwargs)
    finally:
        prof._end(ev)
