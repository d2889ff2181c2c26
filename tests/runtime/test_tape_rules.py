"""Every primitive of the rule table, differentiated by the eager tape: for each case of the generic
rule test's spec table, `P.<name>(*tensors).backward(w)` must give the finite-difference gradient of
<w, f(x)>. This is the tape's column of the generic test (the rules themselves are checked on NumPy
and array-api-strict in test_rules.py; second order through the tape there too)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import srcgrad as torch
from srcgrad.runtime.primitives import PRIMITIVES
from srcgrad.testing import differentiable_argnums

from .rule_specs import SPECS

CASES = [pytest.param(name, case, id=f"{name}-{case.id}") for name, cases in SPECS.items() for case in cases]


def _as_tensor(a, rg):
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return torch.tensor(a, dtype=torch.float64, requires_grad=rg)
    if isinstance(a, float):
        return torch.tensor(a, dtype=torch.float64, requires_grad=rg)
    return a


def _value(prim, args, kwargs):
    out = prim(*args, **kwargs)
    return np.asarray(out._array if isinstance(out, torch.Tensor) else out, dtype=np.float64)


@pytest.mark.parametrize("name, case", CASES)
def test_tape_gradient_matches_finite_differences(name, case):
    rng = np.random.default_rng(zlib.crc32(f"tape/{name}/{case.id}".encode()))
    args = case.sample(rng)
    argnums = case.argnums if case.argnums is not None else differentiable_argnums(name, args)
    if not argnums:
        pytest.skip("no differentiable argument in this case")
    prim = PRIMITIVES[name]
    tensors = [_as_tensor(a, i in argnums) for i, a in enumerate(args)]
    out = prim(*tensors, **case.kwargs)
    # (an identity call, sum_to to the shape x has, may hand back x itself: a leaf, with no node)
    assert out.grad_fn is not None or any(out is t for t in tensors), f"{name}: no graph recorded"
    w = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(w, dtype=torch.float64))
    eps = case.tol.get("eps", 1e-6)
    atol, rtol = case.tol.get("atol", 1e-6), case.tol.get("rtol", 1e-5)
    for i in argnums:
        x = np.asarray(args[i], dtype=np.float64)
        direction = case.direction(i, args[i]) if case.direction else rng.standard_normal(x.shape)
        u = np.asarray(direction, dtype=np.float64)

        def at(t, i=i, x=x, u=u):
            moved = list(args)
            moved[i] = x + t * u if isinstance(args[i], np.ndarray) else float(x + t * u)
            return float(np.sum(w * _value(prim, moved, case.kwargs)))

        numeric = (at(eps) - at(-eps)) / (2 * eps)
        g = tensors[i].grad
        assert g is not None, f"{name}: no gradient for argument {i}"
        assert tuple(g.shape) == x.shape
        analytic = float(np.sum(g.numpy() * u))
        assert analytic == pytest.approx(numeric, abs=atol * max(1.0, abs(numeric)) * 10, rel=rtol * 10), \
            f"{name} argument {i}"
