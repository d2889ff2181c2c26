"""More regressions of forward mode and the compositions (jvp, hvp, hessian, jacobian, grad of grad),
found by stress testing. Each test checks values, against closed forms or central finite differences of
srcgrad's own gradient."""

import numpy as np
import pytest

import srcgrad as sg


def central(f, x, eps=1e-5):
    """The derivative of f at x (scalar or array) by central differences, one column per element."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 0:
        return (f(float(x) + eps) - f(float(x) - eps)) / (2 * eps)
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = eps
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    return np.stack(cols, axis=-1)


# ------------------------------------------- a helper returning tuples from more than one `return`
def two_returns(x, n):
    if n == 0:
        return 1.0, 0.0
    return x * x, 3.0 * x


def uses_two_returns(x):
    a, b = two_returns(x, 2)
    return a * b + b                    # 3 x^3 + 3 x


def cheb(x, n):
    """(T_n(x), T_{n+1}(x)) by recursion: a tuple from each of two returns."""
    if n == 0:
        return 1.0, x
    a, b = cheb(x, n - 1)
    return b, 2.0 * x * b - a


def uses_cheb(x):
    t, u = cheb(x, 4)
    return t * u                        # T4 T5


def uses_cheb_array(x):
    t, u = cheb(x, 3)
    return np.sum(t * u)


def test_tuple_from_several_returns_forward_mode():
    x = 0.3
    assert sg.jvp(uses_two_returns)(x, 1.0) == pytest.approx((3 * x**3 + 3 * x, 9 * x**2 + 3), rel=1e-12)
    assert sg.hessian(uses_two_returns)(x) == pytest.approx(18 * x, rel=1e-12)
    assert sg.hvp(uses_two_returns)(x, 1.0)[1] == pytest.approx(18 * x, rel=1e-12)
    assert sg.jacobian(uses_two_returns)(x) == pytest.approx(9 * x**2 + 3, rel=1e-12)


def test_tuple_from_recursive_returns_forward_mode():
    x = 0.3
    t4 = np.polynomial.chebyshev.Chebyshev.basis(4)
    t5 = np.polynomial.chebyshev.Chebyshev.basis(5)
    p = t4 * t5
    assert sg.jvp(uses_cheb)(x, 1.0)[0] == pytest.approx(p(x), rel=1e-12)
    assert sg.jvp(uses_cheb)(x, 1.0)[1] == pytest.approx(p.deriv()(x), rel=1e-12)
    assert sg.jacobian(uses_cheb)(x) == pytest.approx(p.deriv()(x), rel=1e-12)
    assert sg.hessian(uses_cheb)(x) == pytest.approx(p.deriv(2)(x), rel=1e-12)
    assert sg.hvp(uses_cheb)(x, 1.0)[1] == pytest.approx(p.deriv(2)(x), rel=1e-12)

    xv = np.array([0.3, -0.2, 0.5])
    fd = central(sg.grad(uses_cheb_array), xv)
    np.testing.assert_allclose(sg.hessian(uses_cheb_array)(xv), fd, rtol=1e-6, atol=1e-6)
    hv = sg.hvp(uses_cheb_array)(xv, np.ones(3))[1]
    np.testing.assert_allclose(hv, fd @ np.ones(3), rtol=1e-6, atol=1e-6)


# ------------------------------------------- a helper with `return` inside a `for` loop
def loop_return(v):
    for k in range(3):
        if v > 1.0:
            return v * v * k
        v = v + 0.5
    return v * 3.0


def uses_loop_return(x):
    return loop_return(x * 2.0) * x


@pytest.mark.parametrize("x, exact", [(-0.5, 12.0),           # after the loop: 3 x (2x + 1.5)
                                      (0.1, 48 * 0.1 + 16),   # inside it, k = 2: 2 x (2x + 1)^2
                                      (0.4, 24 * 0.4 + 4)])   # inside it, k = 1: x (2x + 0.5)^2
def test_return_inside_loop_of_a_helper_second_derivatives(x, exact):
    assert central(sg.grad(uses_loop_return), x) == pytest.approx(exact, rel=1e-6)
    assert sg.hessian(uses_loop_return)(x) == pytest.approx(exact, rel=1e-12)
    assert sg.hvp(uses_loop_return)(x, 1.0)[1] == pytest.approx(exact, rel=1e-12)
    assert sg.grad(sg.grad(uses_loop_return))(x) == pytest.approx(exact, rel=1e-12)
    assert sg.jacobian(sg.grad(uses_loop_return))(x) == pytest.approx(exact, rel=1e-12)


# ------------------------------------------- a list iterated while it grows (Gram-Schmidt)
def gram_schmidt(x):
    Q = []
    for j in range(3):
        v = x * (j + 1.0)
        for q in Q:
            v = v - (q @ v) * q
        Q.append(v)
    return np.sum(np.stack(Q) ** 2)


def test_list_iterated_while_it_grows_second_derivatives():
    x = np.array([0.5, 0.3])
    fd = central(sg.grad(gram_schmidt), x)
    H = sg.hessian(gram_schmidt)(x)
    np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(H, H.T, rtol=1e-12)
    v = np.array([1.0, -2.0])
    np.testing.assert_allclose(sg.hvp(gram_schmidt)(x, v)[1], fd @ v, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sg.jacobian(sg.grad(gram_schmidt))(x), fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sg.jacobian(gram_schmidt)(x), sg.grad(gram_schmidt)(x), rtol=1e-12)
