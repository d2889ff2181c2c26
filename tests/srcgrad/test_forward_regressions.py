"""Regressions of forward mode and the compositions (jvp, hvp, hessian, grad of grad) found by stress
testing. Each test checks values, against closed forms or central finite differences."""

import math

import numpy as np
import pytest

import srcgrad as sg


def central(f, x, eps=1e-5):
    """The derivative of scalar f at scalar x by central differences."""
    return (f(x + eps) - f(x - eps)) / (2 * eps)


# ---------------------------------------------------------------- a helper called with different active args
def h(a, b):
    return math.sin(a) * math.cos(b)


def two_variants(x, s):
    u = h(s, x)           # h active in a, and (below) in b: two generated pairs h_fwd / h_fwd_1
    w = h(x, s)
    return u * w          # = sin(s) cos(s) sin(x) cos(x)


def test_two_variants_of_one_helper_second_derivatives():
    x, s = 0.7, 1.4
    d2s = -2 * math.sin(2 * s) * math.sin(x) * math.cos(x)
    dxs = math.cos(2 * s) * math.cos(2 * x)
    assert sg.hessian(two_variants, wrt=1)(x, s) == pytest.approx(d2s, rel=1e-12)
    assert sg.hvp(two_variants, wrt=1)(x, s, 1.0)[1] == pytest.approx(d2s, rel=1e-12)
    assert sg.grad(sg.grad(two_variants, wrt=1), wrt=1)(x, s) == pytest.approx(d2s, rel=1e-12)
    assert sg.grad(sg.grad(two_variants, wrt=1), wrt=0)(x, s) == pytest.approx(dxs, rel=1e-12)


def scaled(x, scale=2.0, shift=0.0):
    return scale * x * x + shift


def variants_saving_differently(x, s):
    return scaled(x, shift=s) * scaled(x, scale=s)     # = (2x² + s) s x²


def test_two_variants_saving_different_values():
    x, s = 0.7, 1.4
    value, hv = sg.hvp(variants_saving_differently, wrt=1)(x, s, 1.0)
    assert value == pytest.approx((2 * x * x + s) * s * x * x)
    assert hv == pytest.approx(2 * x * x)


# ---------------------------------------------------------------- module-level data read at every call
G = 2.0
W = np.array([1.0, 2.0])


def uses_globals(x):
    return G * x * x + W[1] * x ** 3


def test_transforms_of_generated_code_read_globals_at_each_call(monkeypatch):
    x = 0.7
    gg = sg.grad(sg.grad(uses_globals))
    jg = sg.jvp(sg.grad(uses_globals))
    hg = sg.hessian(sg.grad(uses_globals))                    # third derivatives: 6 W[1]
    jgg = sg.jvp(sg.grad(sg.grad(uses_globals)))
    assert gg(x) == pytest.approx(2 * G + 6 * W[1] * x)
    monkeypatch.setitem(globals(), "G", 5.0)
    monkeypatch.setitem(globals(), "W", np.array([1.0, 10.0]))
    assert gg(x) == pytest.approx(2 * 5.0 + 6 * 10.0 * x)
    value, tangent = jg(x, 1.0)
    assert value == pytest.approx(2 * 5.0 * x + 3 * 10.0 * x * x)
    assert tangent == pytest.approx(2 * 5.0 + 6 * 10.0 * x)
    assert hg(x) == pytest.approx(6 * 10.0)
    assert jgg(x, 1.0)[1] == pytest.approx(6 * 10.0)


# ---------------------------------------------------------------- repeated fancy indices in the Hessian
def add_at_repeated(x):
    a = np.zeros(3)
    a[[0, 0, 2]] += x             # a == [x, 0, x]: NumPy's += does not accumulate repeats
    return np.sum(a * a)          # = 2 x²


def mul_at_repeated(x):
    a = np.ones(3)
    a[[0, 0, 2]] *= x[:3]         # a == [x1, 1, x2]: the last duplicate wins
    return np.sum(a ** 2)


def test_hessian_with_repeated_fancy_index():
    assert sg.hessian(add_at_repeated)(0.7) == pytest.approx(4.0)
    x = np.array([0.7, 0.2, 0.5])
    np.testing.assert_allclose(sg.hessian(mul_at_repeated)(x), np.diag([0.0, 2.0, 2.0]), atol=1e-12)


# ---------------------------------------------------------------- conditional expression with a constant arm
def running_product(x):
    a = np.zeros(3)
    for i in range(3):
        a[i] = x[i] * (a[i - 1] if i > 0 else 1.0)
    return np.sum(a)


def test_jvp_conditional_expression_constant_arm():
    x = np.array([0.3, 1.0, 2.0])
    t = np.array([1.0, -0.5, 0.25])
    value, tangent = sg.jvp(running_product)(x, t)
    assert value == pytest.approx(running_product(x))
    assert tangent == pytest.approx(central(lambda e: running_product(x + e * t), 0.0), rel=1e-7)


# ---------------------------------------------------------------- an inline matrix with active entries
def inline_matrix(p):
    J = np.array([[2 * p[0], p[1]], [1.0, -p[1]]])
    return np.sum(J * J)          # = 4 p0² + 2 p1² + 1


def test_inline_matrix_jvp_hessian():
    p = np.array([0.5, 0.7])
    t = np.array([1.0, -2.0])
    value, tangent = sg.jvp(inline_matrix)(p, t)
    assert value == pytest.approx(4 * p[0] ** 2 + 2 * p[1] ** 2 + 1)
    assert tangent == pytest.approx(8 * p[0] * t[0] + 4 * p[1] * t[1])
    np.testing.assert_allclose(sg.hessian(inline_matrix)(p), np.diag([8.0, 4.0]), atol=1e-12)
    np.testing.assert_allclose(sg.jacobian(inline_matrix)(p), [8 * p[0], 4 * p[1]], atol=1e-12)


# ---------------------------------------------------------------- grad of grad over nested loops
def nested(x):
    s = 0.0
    for _i in range(3):
        for j in range(2):
            s = s + math.sin(x * j)
    return s                      # = 3 sin x


def tuple_state(x):
    state = (x, 1.0)
    for _i in range(2):
        p, q = state
        state = (p * q, q - p)
    a, b = state
    return a + b


def nested_break(x):
    for _i in range(2):
        for _j in range(10):
            x = x * 1.5
            if x > 2.0:
                break
        x = x * 0.5
    return x * x


def test_grad_of_grad_nested_loops_and_tuple_state():
    x = 0.7
    assert sg.grad(sg.grad(nested))(x) == pytest.approx(-3 * math.sin(x), rel=1e-12)
    assert sg.grad(sg.grad(tuple_state))(x) == pytest.approx(
        central(sg.grad(tuple_state), x), rel=1e-7)
    # x * 1.5**k * 0.5 per outer pass, k fixed near x = 0.7: x_out = c x, f = c^2 x^2, f'' = 2 c^2
    assert sg.grad(sg.grad(nested_break))(x) == pytest.approx(sg.hvp(nested_break)(x, 1.0)[1], rel=1e-12)
    assert sg.grad(sg.grad(nested_break))(x) == pytest.approx(central(sg.grad(nested_break), x), rel=1e-7)


# ---------------------------------------------------------------- bound methods
class Model:
    def __init__(self, w):
        self.w = w

    def f(self, x):
        return self.w * x * x

    def g(self, x):
        return math.sin(x) * 2.0


def test_bound_methods_forward_and_second_order():
    m = Model(0.7)
    x = 0.4
    assert sg.jvp(m.f)(x, 1.0) == pytest.approx((0.7 * x * x, 1.4 * x))
    assert sg.jvp(m.g)(x, 2.0) == pytest.approx((2 * math.sin(x), 4 * math.cos(x)))
    assert sg.hessian(m.f)(x) == pytest.approx(1.4)
    assert sg.hvp(m.g)(x, 1.0)[1] == pytest.approx(-2 * math.sin(x))
    assert sg.grad(sg.grad(m.f))(x) == pytest.approx(1.4)
    assert sg.grad(sg.grad(m.g))(x) == pytest.approx(-2 * math.sin(x))     # not m.f's cached source
    assert sg.jvp(sg.grad(m.g))(x, 1.0)[1] == pytest.approx(-2 * math.sin(x))


# ---------------------------------------------------------------- a tuple result kept whole
def pair(x):
    return x * 2.0, x * 3.0


def keeps_tuple(x):
    r = pair(x)
    return r[0] * r[1]            # = 6 x²


def test_jvp_tuple_result_kept_whole():
    value, tangent = sg.jvp(keeps_tuple)(0.5, 1.0)
    assert value == pytest.approx(1.5)
    assert tangent == pytest.approx(6.0)
    np.testing.assert_allclose(sg.jvp(keeps_tuple)(np.array([0.5, 1.0]), np.ones(2))[1], [6.0, 12.0])
