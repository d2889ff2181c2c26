"""The autograd profiler: forward and backward events, self/total times, tables, chrome traces."""

from __future__ import annotations

import json

import pytest

import srcgrad as torch
from srcgrad.autograd import profiler


def test_records_forward_and_backward_with_counts():
    x = torch.randn(2, 3, requires_grad=True)
    y = torch.rand(2, 3, requires_grad=True)
    with profiler.profile() as prof:
        z = torch.ones(2, 3)
        for _ in range(10):
            z = (z / x) * y
        z.sum().backward()
    avg = {e.key: e for e in prof.key_averages()}
    assert avg["divide"].count == 10 and avg["multiply"].count >= 10
    assert avg["DivBackward0"].count == 10 and avg["MulBackward0"].count == 10
    assert avg["AccumulateGrad"].count == 2
    for e in avg.values():
        assert e.cpu_time_total >= e.self_cpu_time_total >= 0
    # backward nodes run their rules' primitives on arrays: those are not events of their own
    assert avg["DivBackward0"].self_cpu_time_total == pytest.approx(avg["DivBackward0"].cpu_time_total)


def test_table_layout_and_sorting():
    x = torch.randn(3, requires_grad=True)
    with profiler.profile() as prof:
        for _ in range(5):
            x.sin()
        x.exp()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)
    lines = table.splitlines()
    assert lines[0].startswith("---") and lines[2].startswith("---")
    assert lines[1].split() == ["Name", "Self", "CPU", "%", "Self", "CPU", "CPU", "total", "%", "CPU",
                                "total", "CPU", "time", "avg", "#", "of", "Calls"]
    rows = {ln.split()[0]: ln.split() for ln in lines[3:-2]}
    assert rows["sin"][-1] == "5" and rows["exp"][-1] == "1"
    assert lines[-1].startswith("Self CPU time total:")
    assert len(prof.key_averages().table(sort_by="count", row_limit=1).splitlines()) == 6
    by_count = prof.key_averages().table(sort_by="count").splitlines()[3]
    assert by_count.startswith("sin")


def test_record_function_nesting_and_shapes():
    x = torch.randn(2, 3, requires_grad=True)
    with profiler.profile(record_shapes=True) as prof:
        with profiler.record_function("my_block"):
            y = x * 2
            y = y.sum()
        x.exp()
    evs = {e.key: e for e in prof.key_averages()}
    block, mul = evs["my_block"], evs["multiply"]
    assert block.cpu_time_total >= mul.cpu_time_total + evs["sum"].cpu_time_total
    assert block.self_cpu_time_total == pytest.approx(
        block.cpu_time_total - mul.cpu_time_total - evs["sum"].cpu_time_total, abs=1e-3)
    grouped = prof.key_averages(group_by_input_shape=True)
    shapes = {e.key: e.input_shapes for e in grouped}
    assert shapes["multiply"] == [[2, 3], []] and shapes["exp"] == [[2, 3]]
    assert "Input Shapes" in grouped.table()


def test_export_chrome_trace(tmp_path):
    x = torch.randn(4, requires_grad=True)
    with profiler.profile() as prof:
        (x * x).sum().backward()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())
    names = [e["name"] for e in trace["traceEvents"]]
    assert "multiply" in names and "MulBackward0" in names
    assert all(e["ph"] == "X" and e["dur"] >= 0 and "ts" in e and "pid" in e for e in trace["traceEvents"])


def test_profiler_off_after_exit_and_disabled():
    x = torch.randn(2, requires_grad=True)
    with profiler.profile() as prof:
        x * 2
    n = len(prof.function_events)
    x * 3
    assert len(prof.function_events) == n
    with profiler.profile(enabled=False) as off:
        x * 2
    assert off.function_events == []


def test_use_cuda_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA"):
        profiler.profile(use_cuda=True)
