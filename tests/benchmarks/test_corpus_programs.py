"""Every corpus program's compiled gradient against central finite differences, once.

A program srcgrad refuses (TransformError) is skipped with the error's first line, so the refusals show
in the test report; a wrong gradient fails. Directional checks: for two random directions per program,
the gradient's dot product with the direction is compared with a central difference of the forward along
it, at three step sizes (a loop that stops on the data may change its trip count within one step: one
size that agrees is enough, a wrong gradient agrees at none).
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.corpus import load

PROGRAMS = {p.name: p for p in load()}
STEPS = (1e-6, 1e-7, 1e-5)


def _direction(value, rng):
    """A random direction scaled to the argument's size (a learning rate of 1e-4 moves by ~1e-4)."""
    if np.ndim(value) == 0:
        return float(rng.standard_normal() * (abs(float(value)) + 1e-3))
    v = np.asarray(value, dtype=float)
    scale = np.sqrt(np.mean(v * v)) + 1e-3
    return rng.standard_normal(v.shape) * scale


def _moved(args, wrt, dirs, t):
    a = list(args)
    for i, d in zip(wrt, dirs, strict=True):
        a[i] = a[i] + t * d
    return a


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
    for i, g in zip(p.wrt, grads, strict=True):
        assert np.shape(g) == np.shape(args[i]), f"{name}: gradient {i} has shape {np.shape(g)}"
        assert np.all(np.isfinite(g)), f"{name}: gradient {i} is not finite"
    rng = np.random.default_rng(0)
    for trial in range(2):
        dirs = [_direction(args[i], rng) for i in p.wrt]
        analytic = sum(float(np.sum(np.asarray(g) * d)) for g, d in zip(grads, dirs, strict=True))
        errors = []
        for t in STEPS:
            fd = (float(p.forward(*_moved(args, p.wrt, dirs, t)))
                  - float(p.forward(*_moved(args, p.wrt, dirs, -t)))) / (2 * t)
            # relative tolerance plus the round-off of a central difference of a value of this size
            allowed = p.fd_rtol * max(abs(fd), abs(analytic)) + 1e-12 * (abs(float(value)) + 1) / t
            errors.append((abs(fd - analytic), allowed, fd, t))
            if abs(fd - analytic) <= allowed:
                break
        else:
            detail = "; ".join(f"h={t:g}: fd {fd:.9g}" for _, _, fd, t in errors)
            pytest.fail(f"{name}: wrong gradient along direction {trial}: srcgrad {analytic:.9g}, {detail}")
