"""Generated code is differentiable again: grad of grad (and of that) by reverse mode alone."""

import numpy as np
import pytest

import srcgrad as sg


def cubic_plus_sine(x):
    return x * x * x + np.sin(x)


def looped(x):
    y = x
    for _ in range(3):
        y = np.sin(y) * x
    return y


def branchy(x):
    if x > 0.0:
        return np.exp(x) * x
    return x * x * x


def central(f, x, eps=1e-5):
    return (f(x + eps) - f(x - eps)) / (2 * eps)


def test_third_derivative_of_a_polynomial_plus_sine_is_exact():
    x = 0.7
    d1 = sg.grad(cubic_plus_sine)
    d2 = sg.grad(d1)
    d3 = sg.grad(d2)
    assert d1(x) == pytest.approx(3 * x * x + np.cos(x), rel=1e-12)
    assert d2(x) == pytest.approx(6 * x - np.sin(x), rel=1e-12)
    assert d3(x) == pytest.approx(6 - np.cos(x), rel=1e-12)


@pytest.mark.parametrize("f", [looped, branchy], ids=lambda f: f.__name__)
@pytest.mark.parametrize("x", [0.5, -0.8])
def test_second_derivative_matches_differences_of_the_first(f, x):
    d1 = sg.grad(f)
    d2 = sg.grad(d1)
    assert d2(x) == pytest.approx(central(d1, x), rel=1e-6, abs=1e-8)


def helper(u, w):
    return np.sin(u) * w


def calls_a_helper(x, y):
    s = x
    for _ in range(3):
        s = helper(s, y) + x * y
    return s * x


@pytest.mark.parametrize("wrt", [0, 1, (0, 1)])
def test_grad_of_grad_through_a_user_function_call(wrt):
    """Reverse over reverse cannot be generated through the callee's fwd/adj pair; srcgrad takes the
    mixed partial by forward mode over the gradient instead (the Hessian is symmetric)."""
    x, y = 0.7, 1.3
    d = sg.grad(calls_a_helper)
    got = sg.grad(d, wrt=wrt)(x, y)
    by_x = central(lambda t: d(t, y), x)
    by_y = central(lambda t: d(x, t), y)
    expected = {0: by_x, 1: by_y}
    if wrt == (0, 1):
        assert got == pytest.approx((by_x, by_y), rel=1e-6)
    else:
        assert got == pytest.approx(expected[wrt], rel=1e-6)
    assert isinstance(got if wrt != (0, 1) else got[0], float)


def test_third_reverse_derivative_through_a_call_is_refused_clearly():
    dd = sg.grad(sg.grad(calls_a_helper))
    with pytest.raises(sg.TransformError, match="third reverse derivative"):
        sg.grad(dd)


def test_forward_over_forward_over_reverse_through_a_call_is_refused_clearly():
    """Third derivatives through calls to other user functions are not generated yet: a TransformError
    saying what it met, never a crash deep in the compiler."""
    d = sg.grad(calls_a_helper)
    j2 = sg.jvp(d)
    assert j2(0.7, 1.3, 1.0)[1] == pytest.approx(central(lambda t: d(t, 1.3), 0.7), rel=1e-6)
    with pytest.raises(sg.TransformError):
        sg.jvp(j2)
