"""The generic rule tests over `rule_specs.SPECS` pair a complex output (the fft family) with real
weights, and their float64 copies keep its real part on purpose: NumPy's ComplexWarning is expected
there, and silenced for those cases only (anywhere else it still shows)."""

from __future__ import annotations

import pytest

from .rule_specs import COMPLEX_OUTPUT

_EXPECTED = pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")


def pytest_collection_modifyitems(config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (callspec is not None and callspec.params.get("name") in COMPLEX_OUTPUT
                and item.path.parent.name == "runtime"):
            item.add_marker(_EXPECTED)
