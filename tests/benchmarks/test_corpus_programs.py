"""Every corpus program's compiled gradient against central finite differences, once.

A program srcgrad refuses (TransformError) is skipped with the error's first line, so the refusals show
in the test report; a wrong gradient fails (benchmarks/corpus/check.py: two random directions, three
step sizes).
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.corpus import load
from benchmarks.corpus.check import gradient_error

PROGRAMS = {p.name: p for p in load()}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_gradient_matches_finite_differences(name: str) -> None:
    import srcgrad as sg

    p = PROGRAMS[name]
    args = (p.test_inputs or p.inputs)()
    value = p.forward(*args)
    assert np.ndim(value) == 0, f"{name}: forward must return a scalar"
    if p.math_forward is not None and p.math_forward is not p.forward:
        assert abs(float(p.math_forward(*args)) - float(value)) <= 1e-9 * (abs(float(value)) + 1)
    try:
        grads = sg.grad(p.forward, wrt=p.wrt)(*args)
    except sg.TransformError as exc:
        pytest.skip(f"srcgrad refuses {name}: {str(exc).splitlines()[0]}")
    if not isinstance(grads, tuple):
        grads = (grads,)
    assert len(grads) == len(p.wrt)
    wrong = gradient_error(p, args, grads)
    if wrong:
        pytest.fail(f"{name}: wrong gradient {wrong}")
