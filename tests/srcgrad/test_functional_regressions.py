"""Regressions of srcgrad.autograd.functional against PyTorch (and closed forms)."""

import numpy as np
import pytest

import srcgrad as S
from srcgrad.autograd import functional as F


def arr(t):
    return np.asarray(t.tolist(), dtype=np.float64)


def f_while_norm(x):
    y = x * 1.0
    while y.norm() < 10:          # a Tensor method NumPy arrays lack, where no derivative flows
        y = y * 1.5
    return (y ** 2).sum()


def f_mul_in_place(x):
    y = x.clone()
    y.mul_(x)                     # an in-place Tensor method
    return y.exp().sum()


X = [0.7, 2.0, -0.4]
V = [0.3, -1.0, 2.0]


def _while_scale(x):
    k = 0
    while np.linalg.norm(x * 1.5 ** k) < 10:
        k += 1
    return 1.5 ** (2 * k)


@pytest.mark.parametrize("api", ["vjp", "jvp", "hvp", "vhp", "jacobian"])
@pytest.mark.parametrize("f", [f_while_norm, f_mul_in_place])
def test_tensor_methods_arrays_lack_match_torch(f, api):
    torch = pytest.importorskip("torch")
    results = []
    for lib in (S, torch):
        x = lib.tensor(X, dtype=lib.float64)
        v = lib.tensor(V, dtype=lib.float64)
        AF = lib.autograd.functional
        if api == "jacobian":
            results.append(arr(AF.jacobian(f, x)))
        elif api == "vjp":
            out, g = AF.vjp(f, x)
            results.append(np.append(arr(g), out.item()))
        else:
            out, g = getattr(AF, api)(f, x, v)
            results.append(np.append(arr(g), out.item()))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-10)


def test_while_norm_closed_form_and_compiled():
    x = S.tensor(X, dtype=S.float64)
    v = S.tensor(V, dtype=S.float64)
    a, b = np.array(X), np.array(V)
    c = _while_scale(a)
    out, g = F.vjp(f_while_norm, x)
    np.testing.assert_allclose(arr(g), 2 * c * a, rtol=1e-12)
    np.testing.assert_allclose(out.item(), c * (a ** 2).sum(), rtol=1e-12)
    _, jv = F.jvp(f_while_norm, x, v)
    np.testing.assert_allclose(jv.item(), 2 * c * (a * b).sum(), rtol=1e-12)
    for _ in range(2):                        # the second call goes to the Tensor run directly
        _, hv = F.hvp(f_while_norm, x, v)
        assert F.last_engine == "compiled"
        np.testing.assert_allclose(arr(hv), 2 * c * b, rtol=1e-12)


def test_in_place_method_closed_form_and_input_untouched():
    x = S.tensor(X, dtype=S.float64)
    a = np.array(X)
    _, g = F.vjp(f_mul_in_place, x)
    np.testing.assert_allclose(arr(g), 2 * a * np.exp(a ** 2), rtol=1e-12)
    np.testing.assert_array_equal(arr(x), a)
    xg = S.tensor(X, dtype=S.float64, requires_grad=True)
    _, g2 = F.vjp(f_mul_in_place, xg, create_graph=True)
    np.testing.assert_allclose(arr(g2), 2 * a * np.exp(a ** 2), rtol=1e-12)
    np.testing.assert_array_equal(arr(xg), a)


def f_sum_counted(x, calls):
    calls.append(1)
    return (x * len(calls)).sum()


def f_vec_counted(x, calls):
    calls.append(1)
    return x * len(calls) * 2.0


@pytest.mark.parametrize("g", [f_sum_counted, f_vec_counted])
def test_jacobian_calls_the_function_once(g):
    torch = pytest.importorskip("torch")
    results = []
    for lib in (S, torch):
        calls = []

        def f(x, calls=calls):
            return g(x, calls)

        # a fresh function each time: the first call per input shape is the one that ran f twice
        j = lib.autograd.functional.jacobian(f, lib.tensor([0.7, 2.0], dtype=lib.float64))
        assert len(calls) == 1
        results.append(arr(j))
        lib.autograd.functional.jacobian(f, lib.tensor([0.1, 0.3], dtype=lib.float64))
        assert len(calls) == 2
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)
    want = np.ones(2) if g is f_sum_counted else 2.0 * np.eye(2)
    np.testing.assert_allclose(results[0], want, rtol=1e-12)


def test_srcgrad_jacobian_first_call_runs_f_once():
    calls = []

    def f(x):
        calls.append(1)
        return np.sin(x) * len(calls)

    x = np.array([0.2, -0.5, 1.0])
    jac = S.jacobian(f)
    j = jac(x)
    assert len(calls) == 1
    np.testing.assert_allclose(j, np.diag(np.cos(x)), rtol=1e-12)
    j2 = jac(x)
    assert len(calls) == 2
    np.testing.assert_allclose(j2, 2 * np.diag(np.cos(x)), rtol=1e-12)
