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


def inner(a, b):
    return a * b + np.cos(a)


def nested(u, w):
    return np.sin(u) * inner(w, u)


def pair(u, w):
    return u * w, np.exp(u) - w


def calls_nested_and_pair(x, y):
    """Calls a function that calls another, and one returning a tuple (its f_adj restores a tuple)."""
    s = x
    for _ in range(3):
        a, b = pair(s, y)
        s = nested(s, y) + x * y + 0.1 * a * b
    return s * x


def summed_helper(x):
    s = x
    for _ in range(2):
        s = helper(s, x)
    return np.sum(s * s)


def central_at(f, args, k, eps=1e-5):
    hi, lo = list(args), list(args)
    hi[k] += eps
    lo[k] -= eps
    return (f(*hi) - f(*lo)) / (2 * eps)


THIRD = [(i, j, k) for i in (0, 1) for j in (0, 1) for k in (0, 1)]


@pytest.mark.parametrize("f", [calls_a_helper, calls_nested_and_pair], ids=lambda f: f.__name__)
@pytest.mark.parametrize("ijk", THIRD, ids=str)
def test_forward_over_forward_over_reverse_through_calls(f, ijk):
    """jvp(jvp(grad(f))) through calls to other user functions (loops that save values, a tuple
    result, a callee calling another): the generated callees return flat tuples, so the second
    forward pass reads the first one's code."""
    i, j, k = ijk
    x, y = 0.7, 1.3
    j2 = sg.jvp(sg.grad(f, wrt=i), wrt=j)
    j3 = sg.jvp(j2, wrt=k)
    (g, dg), (kg, kdg) = j3(x, y, 1.0, 1.0)  # j2's arguments (its tangent last), then j3's tangent
    assert (g, dg) == pytest.approx(j2(x, y, 1.0), rel=1e-12)
    assert kg == pytest.approx(central_at(sg.grad(f, wrt=i), (x, y), k), rel=1e-6)
    assert kdg == pytest.approx(central_at(lambda *a: j2(*a, 1.0)[1], (x, y), k), rel=1e-6)


def test_forward_over_forward_over_reverse_through_a_call_with_arrays():
    x = np.array([0.3, -0.5, 0.9])
    u = np.array([1.0, 0.2, -0.4])
    w = np.array([0.5, 1.0, 2.0])
    d2 = sg.jvp(sg.grad(summed_helper))
    d3 = sg.jvp(d2)
    (_, hu), (_, dhu) = d3(x, u, w)  # d2's arguments, then d3's tangent
    np.testing.assert_allclose(hu, d2(x, u)[1], rtol=1e-12)
    eps = 1e-5
    want = (d2(x + eps * w, u)[1] - d2(x - eps * w, u)[1]) / (2 * eps)
    np.testing.assert_allclose(dhu, want, rtol=1e-6, atol=1e-8)


def test_a_fourth_forward_pass_through_a_call_is_refused_clearly():
    d3 = sg.jvp(sg.jvp(sg.grad(summed_helper)))
    with pytest.raises(sg.TransformError, match="derivative of a derivative"):
        sg.jvp(d3)


@pytest.mark.parametrize("f", [calls_a_helper, calls_nested_and_pair], ids=lambda f: f.__name__)
@pytest.mark.parametrize("ijk", THIRD, ids=str)
def test_third_reverse_derivative_through_calls(f, ijk):
    """grad(grad(grad(f))) through calls: the forward derivative of the second level's forward
    derivative, checked against central differences of the second derivative."""
    i, j, k = ijk
    x, y = 0.7, 1.3
    d2 = sg.grad(sg.grad(f, wrt=i), wrt=j)
    got = sg.grad(d2, wrt=k)(x, y)
    assert isinstance(got, float)
    assert got == pytest.approx(central_at(d2, (x, y), k), rel=1e-6)


def test_third_reverse_derivative_with_a_tuple_wrt():
    x, y = 0.7, 1.3
    d2 = sg.grad(sg.grad(calls_a_helper))
    got = sg.grad(d2, wrt=(0, 1))(x, y)
    assert got == pytest.approx((central_at(d2, (x, y), 0), central_at(d2, (x, y), 1)), rel=1e-6)


def test_what_third_reverse_derivatives_through_calls_refuse():
    d3 = sg.grad(sg.grad(sg.grad(calls_a_helper)))
    with pytest.raises(sg.TransformError, match="fourth derivative"):
        sg.grad(d3)
    with pytest.raises(sg.TransformError, match="third reverse derivative"):
        sg.grad(sg.grad(sg.grad(calls_a_helper), wrt=(0, 1)))       # its output is a tuple
    with pytest.raises(sg.TransformError, match="needs scalar arguments"):
        sg.grad(sg.grad(sg.grad(summed_helper)))(np.array([0.3, 0.4]))
