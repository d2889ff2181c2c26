"""Wrong gradients found by programs users write, kept as regressions of the reverse transform
(srcgrad/reverse.py, srcgrad/normalize.py): each against finite differences, reverse and forward."""

from __future__ import annotations

import numpy as np
import pytest

import srcgrad as sg
from tests.srcgrad.util import numeric_grad


def tuple_rebound_in_a_loop(x):
    for i in range(3):
        p = (x[i], x[i + 1])        # each iteration's tuple replaces the last
    u, w = p
    return u * w


def flag_set_in_its_own_branch(x):
    flag = False
    s = 0.0
    for i in range(x.shape[0]):
        if flag:
            s = s + x[i]
        else:
            flag = x[i] > 0.5       # the branch changes the name its `if` tested
    return s


def flag_set_after_its_branch(x):
    flag = False
    s = 0.0
    for i in range(x.shape[0]):
        if flag:
            s = s + x[i] ** 2
        else:
            s = s + 0.5 * x[i]
        if x[i] > 0.5:
            flag = True
    return s


@pytest.mark.parametrize("fn", [tuple_rebound_in_a_loop, flag_set_in_its_own_branch,
                                flag_set_after_its_branch])
def test_gradient_matches_differences(fn):
    x = np.array([-0.5, 0.3, 0.7, 1.2])
    g = sg.grad(fn)(x)
    np.testing.assert_allclose(g, numeric_grad(fn, [x.copy()], 0), rtol=1e-6, atol=1e-8)
    t = np.array([0.3, -0.2, 0.5, 1.0])
    _, d = sg.jvp(fn)(x, t)
    np.testing.assert_allclose(d, g @ t, rtol=1e-6, atol=1e-8)


def _scaled_square(x, s=1.0):
    return np.sum(x ** 2) * s


def _calls_with_its_own_default(x, s=2.0):
    return _scaled_square(x, s)


_calls_with_its_own_default.__wrapped__ = _scaled_square  # functools.wraps would set it too


def test_a_wrapper_with_its_own_default_is_not_its_wrapped_function():
    # inspect.signature follows __wrapped__ and would read s=1.0: the call's defaults are the wrapper's
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(sg.grad(_calls_with_its_own_default)(x), 4.0 * x)
    np.testing.assert_allclose(sg.grad(_calls_with_its_own_default)(x, 3.0), 6.0 * x)


def polynomial(x, c):
    s = 0.0
    for k in range(c.shape[0]):
        s = s + c[k] * x ** k
    return s


def test_a_zeroth_power_has_a_zero_derivative_at_zero():
    """d x**0/dx is 0 everywhere, x = 0 included (y x**(y-1) would be 0 * inf there): PyTorch's answer."""
    c = np.array([1.0, 2.0, 3.0])
    g = sg.grad(polynomial)
    for x in (0.0, 0.0, 2.0):  # the second call runs the variant for floats
        assert g(x, c) == 2.0 + 6.0 * x
    np.testing.assert_array_equal(sg.grad(lambda v: np.sum(v ** 0 + v ** 2))(np.zeros(3)), np.zeros(3))
    assert sg.jvp(lambda v: v ** 0.0)(0.0, 1.0)[1] == 0.0
