"""srcgrad.testing: the checkers must pass right derivatives and catch wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

import srcgrad
from srcgrad.runtime import primitives as P
from srcgrad.runtime import rules as R
from srcgrad.testing import (
    GradcheckError,
    check_rule,
    check_rule_second_order,
    check_vjp_jvp,
    eager_available,
    gradcheck,
    numeric_jacobian,
)

X = np.array([[0.3, -1.2, 0.7], [1.5, 0.2, -0.4]])


def test_check_vjp_jvp_accepts_a_right_pair():
    report = check_vjp_jvp(np.sin, (X,), lambda v: [v * np.cos(X)], lambda i, u: u * np.cos(X))
    row = report[0]
    assert row["vjp"] == pytest.approx(row["numeric"], rel=1e-6)
    assert row["jvp"] == pytest.approx(row["vjp"], rel=1e-12)


def test_check_vjp_jvp_catches_a_wrong_vjp():
    with pytest.raises(GradcheckError, match="vjp gives"):
        check_vjp_jvp(np.sin, (X,), lambda v: [-v * np.cos(X)], None)


def test_check_vjp_jvp_catches_a_wrong_jvp():
    with pytest.raises(GradcheckError, match="jvp gives"):
        check_vjp_jvp(np.sin, (X,), None, lambda i, u: u * np.sin(X))


def test_check_vjp_jvp_catches_a_wrong_shape():
    with pytest.raises(GradcheckError, match="shape"):
        check_vjp_jvp(np.sin, (X,), lambda v: [(v * np.cos(X)).sum(0)], None)


def test_check_vjp_jvp_catches_a_hidden_conversion_to_numpy():
    xp = pytest.importorskip("array_api_strict")
    x = xp.asarray(X)
    with pytest.raises(GradcheckError, match="lives in numpy"):
        check_vjp_jvp(xp.sin, (x,), lambda v: [np.asarray(v * xp.cos(x))], None)


def test_check_vjp_jvp_python_floats():
    import math
    check_vjp_jvp(math.exp, (0.3,), lambda v: [v * math.exp(0.3)], lambda i, u: u * math.exp(0.3))


def test_numeric_jacobian_of_a_linear_map_is_the_matrix():
    A = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(numeric_jacobian(lambda x: A @ x, (np.ones(3),), 0), A, atol=1e-8)


def test_check_rule_on_the_table():
    check_rule("multiply", (X, X[0]))
    check_rule("prod", (np.array([[2.0, 0.0, 0.0], [1.0, 3.0, 0.0]]),), {"axis": 1})


def test_check_rule_unknown_primitive():
    with pytest.raises(KeyError):
        check_rule("no_such_primitive", (X,))


@pytest.fixture
def fake_primitive():
    """A temporary primitive `_checker_square` whose rules are right to first order only: they use
    round(x, 12), which has the right value but (being non-differentiable) a zero derivative."""
    prim = P.primitive(lambda x: x * x, name="_checker_square")
    R.defrule("_checker_square",
              vjp=[lambda g, ans, x: g * 2.0 * P.round(x, decimals=12)],
              jvp=[lambda t, ans, x: t * 2.0 * P.round(x, decimals=12)])
    yield prim
    del P.PRIMITIVES["_checker_square"], R.RULES["_checker_square"]


def test_second_order_catches_a_rule_that_is_right_only_to_first_order(fake_primitive):
    if not eager_available():
        pytest.skip("needs the eager tape (srcgrad.tensor, srcgrad.autograd.grad)")
    check_rule("_checker_square", (X,))
    with pytest.raises(GradcheckError, match="second derivative"):
        check_rule_second_order("_checker_square", (X,))
    check_rule_second_order("square", (X,))


def test_broken_rule_fails_first_order(fake_primitive):
    R.defrule("_checker_square", vjp=[lambda g, ans, x: g * x], jvp=[lambda t, ans, x: t * 2.0 * x])
    with pytest.raises(GradcheckError):
        check_rule("_checker_square", (X,))


# ------------------------------------------------------------------------------------------ gradcheck
needs_eager = pytest.mark.skipif(not eager_available(), reason="needs the eager tape")


@needs_eager
def test_gradcheck_on_tensors():
    x = srcgrad.tensor(X[0], requires_grad=True)
    y = srcgrad.tensor(X, requires_grad=True)
    assert gradcheck(lambda a, b: srcgrad.sin(a) * b, (x, y)) is True
    assert gradcheck(lambda a: a.sum(), x) is True


@needs_eager
def test_gradcheck_catches_a_wrong_backward():
    class BadSquare(srcgrad.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return g * a  # should be 2 g a

    x = srcgrad.tensor(X[0], requires_grad=True)
    assert gradcheck(BadSquare.apply, (x,), raise_exception=False) is False
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        gradcheck(BadSquare.apply, (x,))


@needs_eager
def test_gradcheck_checks_only_tensors_that_require_grad():
    x = srcgrad.tensor(X[0], requires_grad=True)
    c = srcgrad.tensor(X[1])
    assert gradcheck(lambda a, b: a * b, (x, c))


def _sin_dot(a, b):
    return np.sum(np.sin(a) * b)


def test_gradcheck_on_arrays_uses_the_compiler():
    if not callable(getattr(srcgrad, "vjp", None)):
        with pytest.raises(NotImplementedError, match="srcgrad.vjp"):
            gradcheck(_sin_dot, (X[0], X[1]))
        return
    assert gradcheck(_sin_dot, (X[0], X[1])) is True
    assert gradcheck(_sin_dot, (X, X[1])) is True
