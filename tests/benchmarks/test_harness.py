"""The benchmark harness: its references are right, its checks catch wrong engines, its ratios add up.

Runs in a few seconds with NumPy alone (no peers, no srcgrad engines needed).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

from benchmarks import adapters
from benchmarks.adapters.base import Adapter, Unsupported
from benchmarks.harness import (
    ERROR,
    OK,
    SLOW,
    UNSUPPORTED,
    WRONG,
    Cell,
    Results,
    Settings,
    Timing,
    check,
    format_time,
    markdown,
    run_all,
    run_cell,
)
from benchmarks.run import main
from benchmarks.workloads import make_workloads

FAST = Settings(warmup=1, min_samples=3, max_samples=5, budget_s=0.01, min_sample_s=0.0005, max_call_s=5.0)
SMALL = make_workloads(small=True)


# ------------------------------------------------------------------ references vs finite differences
def _shift(w, direction: list[Any], t: float) -> list[Any]:
    """The workload's arguments with the differentiated ones moved by t * direction."""
    args = list(w.args)
    for i, d in zip(w.wrt, direction, strict=True):
        args[i] = args[i] + t * d
    return args


def _scalar(w, args: list[Any]) -> float:
    out = w.fn(*args)
    return float(np.dot(w.v, out)) if w.kind == "vjp" else float(out)


@pytest.mark.parametrize("name", list(SMALL))
def test_reference_matches_finite_differences(name: str) -> None:
    """Each closed-form reference, projected on random directions, equals a float64 central difference."""
    w = SMALL[name]
    rng = np.random.default_rng(1)
    ref = w.expected()
    for _ in range(2):
        if w.kind in ("grad", "vjp"):
            u = [rng.standard_normal(np.shape(w.args[i])) for i in w.wrt]
            h = 1e-6
            fd = (_scalar(w, _shift(w, u, h)) - _scalar(w, _shift(w, u, -h))) / (2 * h)
            exact = sum(float(np.sum(r * d)) for r, d in zip(ref, u, strict=True))
        else:  # second order: u' H v by a mixed central difference
            x = w.args[0]
            u = rng.standard_normal(x.shape)
            v = w.v if w.kind == "hvp" else rng.standard_normal(x.shape)
            h = 1e-3

            f = [float(w.fn(x + a * u + b * v)) for a, b in ((h, h), (h, -h), (-h, h), (-h, -h))]
            fd = (f[0] - f[1] - f[2] + f[3]) / (4 * h * h)
            exact = float(u @ ref[0]) if w.kind == "hvp" else float(u @ ref[0] @ v)
        assert fd == pytest.approx(exact, rel=1e-5, abs=1e-8), name


def test_full_size_workloads_match_issue() -> None:
    """The benchmark itself uses the sizes of issue 2 (checked cheaply: shapes, not gradients)."""
    full = make_workloads()
    assert list(full) == ["tiny", "mlp", "doubling", "rnn", "pendulum", "elementwise", "cube", "hvp",
                          "hessian", "longloop", "overhead"]
    assert full["tiny"].args[0].shape == (25,)
    assert [a.shape for a in full["mlp"].args[:4]] == [(100, 1000), (100,), (10, 100), (10,)]
    assert full["mlp"].args[4].shape == (16, 1000)
    assert full["rnn"].args[3].shape == (200, 32) and full["rnn"].args[1].shape == (64, 64)
    assert all(isinstance(a, float) for a in full["pendulum"].args)
    assert full["elementwise"].args[0].shape == (4_000_000,)
    assert full["elementwise"].args[0].dtype == np.float64
    assert full["hvp"].args[0].shape == (1000,) and full["hessian"].args[0].shape == (50,)
    from benchmarks.workloads import longloop_trips

    assert 9_900 <= longloop_trips(full["longloop"].args[0]) <= 10_100


# ------------------------------------------------------------------------------- the checks
class Fake(Adapter):
    """An engine that returns whatever `answer(workload, call_number)` says."""

    def __init__(self, name: str, answer: Any) -> None:
        self.name, self.answer, self.calls = name, answer, 0

    def prepare(self, workload):
        def run() -> Any:
            self.calls += 1
            return self.answer(workload, self.calls)

        return run


def test_right_answer_is_timed() -> None:
    c = run_cell(Fake("right", lambda w, n: w.expected()), SMALL["mlp"], FAST)
    assert c.status == OK and c.timing is not None and c.timing.median > 0


@pytest.mark.parametrize("wrong", [
    lambda e: tuple(2 * r for r in e),                    # a factor
    lambda e: tuple(-r for r in e),                       # a sign
    lambda e: e[:-1],                                     # a missing gradient
    lambda e: tuple(r.reshape(-1, 1) for r in e),         # a shape
    lambda e: tuple(r.astype(np.float32) for r in e),     # computed in float32
    lambda e: tuple(np.where(r == r.flat[0], np.nan, r) for r in e),  # a NaN
])
def test_wrong_gradient_is_reported_wrong_and_never_timed(wrong) -> None:
    fake = Fake("wrong", lambda w, n: wrong(w.expected()))
    c = run_cell(fake, SMALL["mlp"], FAST)
    assert c.status == WRONG and c.timing is None and c.reason
    assert fake.calls == 1  # checked before any timed call


def test_gradient_that_goes_wrong_on_later_calls_is_wrong() -> None:
    """An engine that accumulates .grad across calls: right once, then 2x, 3x, ..."""
    c = run_cell(Fake("accumulates", lambda w, n: tuple(n * r for r in w.expected())), SMALL["tiny"], FAST)
    assert c.status == WRONG and c.timing is None and "repeated" in c.reason


def test_check_accepts_bare_single_result_and_other_array_types() -> None:
    e = (np.array([1.0, 2.0]),)
    assert check(np.array([1.0, 2.0]), e) is None
    assert check([1.0, 2.0 + 1e-12], e) is None
    assert check((np.float64(3.0), 4.0), (np.float64(3.0), np.float64(4.0))) is None
    assert check(np.array([1.0, 2.1]), e) is not None


def test_wrong_cell_in_table_shows_wrong_not_a_time() -> None:
    w = SMALL["tiny"]
    engines = [adapters.load("numpy"), Fake("bad", lambda w, n: 3 * w.expected()[0])]
    text = markdown(run_all([w], engines, FAST))
    row = next(line for line in text.splitlines() if line.startswith("| tiny"))
    assert "WRONG" in row and row.count("WRONG") == 1
    assert "bad on tiny: result 0: max error" in text


def test_unsupported_error_slow_and_unavailable_cells() -> None:
    class NotHere(Adapter):
        name, reason = "nothere", "engine not built yet"

        def available(self) -> bool:
            return False

    class Refuses(Adapter):
        name = "refuses"

        def prepare(self, workload):
            raise Unsupported("cannot jit a data-dependent while")

    def crash(w, n):
        raise ValueError("boom")

    def sleepy(w, n):
        time.sleep(1.0)
        return w.expected()

    engines = [adapters.load("numpy"), NotHere(), Refuses(), Fake("crashes", crash), Fake("sleepy", sleepy)]
    slow = Settings(**{**FAST.__dict__, "max_call_s": 0.1})
    r = run_all([SMALL["tiny"]], engines, slow)
    assert r.unavailable == {"nothere": "engine not built yet"}
    assert r.cell("tiny", "refuses").status == UNSUPPORTED
    assert r.cell("tiny", "crashes").status == ERROR and "boom" in r.cell("tiny", "crashes").reason
    assert r.cell("tiny", "sleepy").status == SLOW and r.cell("tiny", "sleepy").timing is None
    text = markdown(r)
    for needle in ("engine not built yet", "cannot jit a data-dependent while", "ValueError: boom",
                   "> 100 ms"):
        assert needle in text


# ------------------------------------------------------------------------------- ratio math
def _timed(workload: str, engine: str, median: float) -> Cell:
    timing = Timing(median, median * 0.9, median * 1.1, median * 0.8, median * 1.5, samples=5, number=1)
    return Cell(workload, engine, OK, timing)


def test_ratio_is_engine_median_over_numpy_forward_of_same_workload() -> None:
    r = Results(["a", "b"], ["numpy", "x"])
    for c in (_timed("a", "numpy", 2e-3), _timed("a", "x", 5e-3), _timed("b", "numpy", 1e-6),
              _timed("b", "x", 250e-6)):
        r.cells[(c.workload, c.engine)] = c
    assert r.ratio("a", "x") == pytest.approx(2.5)
    assert r.ratio("b", "x") == pytest.approx(250.0)
    lines = markdown(r).splitlines()
    ratio_rows = [line for line in lines if line.startswith("| a") or line.startswith("| b")]
    assert ratio_rows[0] == "| a | 2.00 ms ±10% | 2.50 |"
    assert ratio_rows[1] == "| b | 1.00 µs ±10% | 250 |"
    assert ratio_rows[2] == "| a | 2.00 ms ±10% | 5.00 ms ±10% |"  # the absolute table follows


def test_speedup_table_is_peer_time_over_srcgrad_time() -> None:
    r = Results(["a"], ["numpy", "compiled", "torch"])
    for c in (_timed("a", "numpy", 1e-3), _timed("a", "compiled", 2e-3), _timed("a", "torch", 9e-3)):
        r.cells[(c.workload, c.engine)] = c
    text = markdown(r)
    assert "| workload | compiled vs torch |" in text and "| a | 4.50x |" in text


def test_no_ratio_without_unit_or_for_failed_cells() -> None:
    r = Results(["a"], ["numpy", "x"])
    r.cells[("a", "x")] = _timed("a", "x", 1.0)
    assert r.ratio("a", "x") is None
    r.cells[("a", "numpy")] = _timed("a", "numpy", 1.0)
    r.cells[("a", "x")].status = WRONG
    assert r.ratio("a", "x") is None


def test_format_time() -> None:
    assert format_time(1.234) == "1.23 s"
    assert format_time(0.0123) == "12.3 ms"
    assert format_time(4.5e-6) == "4.50 µs"
    assert format_time(8e-8) == "80.0 ns"
    assert format_time(0.9999) == "1.00 s"
    assert format_time(123.4e-6) == "123 µs"


# ------------------------------------------------------------------------------- adapters and CLI
def test_every_adapter_loads_and_says_why_when_unavailable() -> None:
    for name in adapters.ENGINES:
        a = adapters.load(name)
        assert a.name == name
        if not a.available():
            assert a.reason


def test_cli_quick_run_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "r.json"
    assert main(["--quick", "--workloads", "tiny", "--engines", "numpy", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["mode"] == "quick" and doc["cells"][0]["status"] == OK
    assert "| tiny |" in capsys.readouterr().out


@pytest.mark.parametrize("engine", ["torch", "autograd"])
def test_installed_peer_adapters_give_right_answers(engine: str) -> None:
    """Where the bench extra is installed, the peer adapters pass the harness's checks (small sizes; the
    long scalar loops are left to the benchmark itself)."""
    adapter = adapters.load(engine)
    if not adapter.available():
        pytest.skip(adapter.reason)
    once = Settings(warmup=1, min_samples=1, max_samples=1, budget_s=0.0, min_sample_s=0.0)
    for name, w in SMALL.items():
        if name in ("pendulum", "longloop"):
            continue
        c = run_cell(adapter, w, once)
        assert c.status == OK, (name, c.status, c.reason)
