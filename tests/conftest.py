"""Suite-wide reporting: every skip says why in words a user can act on, the run ends with one line that
groups the skips by reason, and warnings that tests provoke on purpose are filtered where they are
provoked (EXPECTED_WARNINGS, each with its reason), so a warning in the summary is news.

The tests that compare with PyTorch (and JAX, HIPS autograd) need the peers of the `bench` extra; without
them each such test would skip with "could not import 'torch': No module named 'torch'", which reads like
breakage. Here the reason becomes what to do, "needs the bench extra: make test-full", and the last line
of the run counts the skips per reason, for example

    skipped 93: 77 needs the bench extra: make test-full; 12 needs CuPy and a GPU; 4 other (pytest -rs ...)
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

BENCH = "needs the bench extra: make test-full"
# modules the bench extra installs (the oracles the tests compare with)
BENCH_MODULES = ("torch", "jax", "jaxlib", "autograd")
# at most this many reasons on the last line; the rest are counted together
MAX_REASONS = 4

# test name (as written, before any [parameters]) -> (pytest filterwarnings spec, why it is expected).
# Only NumPy's floating-point warnings of values these tests make on purpose: anywhere else they still show.
EXPECTED_WARNINGS: dict[str, list[tuple[str, str]]] = {
    "test_isclose_allclose": [
        ("ignore:invalid value encountered in subtract:RuntimeWarning",
         "isclose is checked against NumPy and PyTorch on inf and nan, where inf - inf is nan"),
    ],
    "test_linspace_and_graph_printout": [
        ("ignore:overflow encountered in divide:RuntimeWarning",
         "the tutorial's profiler loop divides by random values 1000 times and reaches inf, as in PyTorch"),
    ],
    "test_python_floats_follow_numpy_where_math_would_raise": [
        ("ignore:invalid value encountered in sqrt:RuntimeWarning",
         "checks that Python floats follow NumPy (nan, inf) where math would raise"),
        ("ignore:divide by zero encountered:RuntimeWarning", "the same check, for 1 / 0"),
    ],
}

_IMPORT_SKIP = re.compile(r"could not import '([\w.]+)'")
_skips: Counter = Counter()


def plain_reason(reason: str) -> str:
    """A skip reason as the user should read it: a missing bench-extra module -> BENCH; another missing
    module -> 'needs <module>'; anything else as written (without pytest's 'Skipped: ' prefix)."""
    reason = reason.removeprefix("Skipped: ").strip()
    m = _IMPORT_SKIP.search(reason)
    if m is not None:
        module = m.group(1)
        if module.split(".")[0] in BENCH_MODULES:
            return BENCH
        return f"needs {module.split('.')[0]} (not installed)"
    return reason


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for spec, _why in EXPECTED_WARNINGS.get(item.name.split("[")[0], ()):
            item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Rewrite an import skip's reason where the report is made (on the xdist worker, too)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        path, lineno, reason = report.longrepr
        report.longrepr = (path, lineno, "Skipped: " + plain_reason(reason))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count skips by reason (on the process that prints the summary)."""
    if report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        if getattr(report, "wasxfail", None) is None:
            _skips[plain_reason(str(report.longrepr[2]))] += 1


def skip_line(counts: Counter) -> str:
    """'skipped N: k1 reason1; k2 reason2; ...' (the most frequent first; the rest counted as other)."""
    total = sum(counts.values())
    top = counts.most_common(MAX_REASONS)
    parts = [f"{n} {reason}" for reason, n in top]
    rest = total - sum(n for _, n in top)
    if rest:
        parts.append(f"{rest} other (pytest -rs lists them)")
    return f"skipped {total}: " + "; ".join(parts)


def pytest_unconfigure(config: pytest.Config) -> None:
    """The last line of the run: what was skipped and why (after pytest's own totals)."""
    if not _skips or hasattr(config, "workerinput"):      # xdist workers report to the controller
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(skip_line(_skips))
