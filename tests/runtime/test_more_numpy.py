"""More NumPy calls (np.sinc, heaviside, fmax, fmod, nansum, average, take, select, meshgrid,
matrix_power, pinv, polyval, ...; builtin pow and math.fmod/degrees/radians/copysign): srcgrad's value
against NumPy's, its gradient (sg.grad) and jvp (sg.jvp) against central differences, on generic inputs
and on the edge cases where NumPy's semantics are particular (ties and nans for fmax, x = 0 for sinc,
negative bases for float_power, -0.0 for copysign, ...). All but fmod (a primitive, like remainder) and
signbit (a non-differentiable primitive) are compositions in runtime/mapping.py; the generic record tests
cover those two primitives' rules.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import srcgrad as sg
from srcgrad.runtime import mapping
from tests.srcgrad.util import numeric_grad

X4 = np.array([0.3, -0.7, 1.1, 0.55])
M4 = np.array([[1.0, 0.2, 0.1, 0.0], [0.3, 0.9, -0.2, 0.1], [0.0, 0.4, 1.2, 0.3], [0.1, 0.0, 0.2, 1.1]])
T4 = np.array([0.7, -1.3, 0.4, 2.0])


def via(numpy_function, *args, **kwargs):
    """What srcgrad computes for a NumPy call: its adapter, run as is (sg.compile of a call alone runs
    NumPy's own function, as nothing is differentiated)."""
    return mapping.lookup_function(numpy_function)(*args, **kwargs)


def check(f, x=X4, rtol=1e-6, atol=1e-8):
    """value (NumPy's), grad and jvp (central differences) of f at x."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, g = sg.value_and_grad(f)(x.copy())
        want = f(x.copy())
        np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-12)
        ng = numeric_grad(f, [x], 0)
        np.testing.assert_allclose(g, ng, rtol=rtol, atol=atol)
        t = np.resize(T4, x.shape)
        np.testing.assert_allclose(sg.jvp(f)(x.copy(), t)[1], np.sum(ng * t), rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------- elementwise
def f_sinc(x):
    return np.sum(np.sinc(x) * x) + np.sinc(x[0] * 5.0)


def f_sinc_small(x):  # around the switch to the Taylor polynomial (|x| < 1e-4)
    return np.sum(np.sinc(x * 1e-4 + np.array([0.0, 2e-4, -5e-5, 1e-3])))


def f_heaviside(x):
    return np.sum(np.heaviside(x, 0.5) * x) + np.sum(np.heaviside(x - x, x) * x)


def f_degrees(x):
    return np.sum(np.deg2rad(x * 90.0) * np.rad2deg(x) + np.radians(x) + np.degrees(x) ** 2)


def f_fmax(x):
    y = np.array([0.3, np.nan, -1.0, np.nan])  # a tie, and nan operands
    return (np.sum(np.fmax(x, y) * np.arange(1.0, 5.0)) + np.sum(np.fmin(x, y) ** 2)
            + np.sum(np.fmax(x, x[::-1] * 0.9)) + np.fmin(x[0], 0.2))


def f_logaddexp2(x):
    return np.sum(np.logaddexp2(x, x ** 2 * 3.0)) + np.logaddexp2(x[0], -x[1])


def f_float_power(x):
    return (np.sum(np.float_power(np.abs(x) + 0.1, x)) + np.sum(np.float_power(x, 3))
            + np.sum(np.float_power(x, 2.0) * np.float_power(x[2], -1)))


def f_fmod(x):
    return (np.sum(np.fmod(x * 3.1, 0.7) * x) + np.fmod(x[0] * 5.0, x[2]) + np.sum(np.fmod(x, -0.4))
            + math.fmod(x[1] * 5.0, 0.6))


def f_rint(x):
    return np.sum(np.rint(x * 3.3) * x)


def f_copysign(x):
    return np.sum(np.copysign(x, np.array([1.0, -0.0, 0.0, -2.0])) * np.arange(1.0, 5.0)) + math.copysign(
        x[1], -1.0)


def f_nan_to_num(x):
    y = np.where(np.array([True, False, False, False]), x, np.array([0.0, np.inf, -np.inf, np.nan]))
    return (np.sum(np.nan_to_num(y) * np.array([3.0, 0.0, 0.0, 1.0]))
            + np.sum(np.nan_to_num(y, nan=2.0, posinf=5.0, neginf=-3.0) ** 2 * x))


def f_pow_and_math(x):
    return (pow(x[0] + 2.0, x[1]) + pow(x[2], 2) + math.degrees(x[1]) + math.radians(x[2]) * x[3])


ELEMENTWISE = [f_sinc, f_sinc_small, f_heaviside, f_degrees, f_fmax, f_logaddexp2, f_float_power, f_fmod,
               f_rint, f_copysign, f_nan_to_num, f_pow_and_math]


# ----------------------------------------------------------------------------------------- reductions
def f_nansum(x):
    y = np.where(np.array([True, False, True, True]), x, np.nan)  # a nan entry of the input
    return (np.nansum(y * y) + np.nanmean(y) + np.sum(np.nanmean(y.reshape(2, 2), axis=0) ** 2)
            + np.sum(np.nansum(y.reshape(2, 2), axis=1, keepdims=True) ** 2))


def f_ptp(x):
    return (np.ptp(x ** 2) + np.sum(np.ptp(x.reshape(2, 2), axis=1) ** 2)
            + np.ptp(x.reshape(2, 2), keepdims=True)[0, 0])


def f_average(x):
    m = np.outer(x, x[:3])
    return (np.average(x, weights=x ** 2) + np.sum(np.average(m, axis=1, weights=np.array([1.0, 3.0, 0.5])))
            + np.sum(np.average(m, axis=0, weights=x ** 2 + 1.0) ** 2) + np.average(m)
            + np.sum(np.average(m, axis=1, keepdims=True)))


REDUCTIONS = [f_nansum, f_ptp, f_average]


# ---------------------------------------------------------------------------------- indexing, shapes
def f_take(x):
    m = x.reshape(2, 2)
    return (np.sum(np.take(x, [0, 2, 2, -1]) ** 2) + np.sum(np.take(m, np.array([1, 1, 0]), axis=1) ** 3)
            + np.take(x, 5, mode="wrap") + np.sum(np.take(m, [-3, 7], axis=0, mode="clip") * m))


def f_select(x):
    return (np.sum(np.select([x > 0.4, x < 0, x > 0], [x ** 2, x * 3, x], default=x[0]) * np.arange(4.0))
            + np.sum(np.select([x > 1.0], [np.sin(x)]) ** 2))


def f_meshgrid(x):
    a, b = np.meshgrid(x, x[:3] ** 2)
    c, d = np.meshgrid(x, x[:3] ** 2, indexing="ij")
    e, f, g = np.meshgrid(x[:2], x[1:], x[2:] * 2.0, sparse=True)
    return (np.sum(a * b ** 2 * np.arange(12.0).reshape(3, 4)) + np.sum(c * d * np.arange(12.0).reshape(4, 3))
            + np.sum(e * f * g))


# ------------------------------------------------------------------------------------- linear algebra
def f_matrix_power(x):
    a = M4 + np.outer(x, x) * 0.1
    return (np.sum(np.linalg.matrix_power(a, 5)) + np.sum(np.linalg.matrix_power(a, 2) * M4)
            + np.sum(np.linalg.matrix_power(a, 3)) + np.sum(np.linalg.matrix_power(a * x, -2))
            + np.sum(np.linalg.matrix_power(a, 1) ** 2) + np.sum(np.linalg.matrix_power(a, 0) * a))


def f_pinv(x):
    a = M4[:, :3] + np.outer(x, x[:3]) * 0.1
    return np.sum(np.linalg.pinv(a) ** 2 * np.arange(12.0).reshape(3, 4)) + np.sum(np.linalg.pinv(M4[:2] * x))


def f_polyval(x):
    return (np.sum(np.polyval(x, x[:2] * 2.0)) + np.polyval(x[:3] ** 2, 0.5)
            + np.polyval(np.array([1.0, -2.0]), x[3]))


OTHERS = [f_take, f_select, f_meshgrid, f_matrix_power, f_pinv, f_polyval]


@pytest.mark.parametrize("f", ELEMENTWISE + REDUCTIONS + OTHERS, ids=lambda f: f.__name__)
def test_value_grad_and_jvp(f):
    check(f)


# ------------------------------------------------------------------------------------- edge cases
def sinc_at(x):
    return np.sinc(x)


def test_sinc_at_zero_value_derivatives_and_second_derivative():
    assert sg.grad(sinc_at)(0.0) == 0.0
    assert sg.hessian(sinc_at)(0.0) == pytest.approx(-math.pi ** 2 / 3, rel=1e-12)
    v = np.array([0.0, 1e-9, -3e-5, 0.5, 2.0, np.inf, np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(sg.value_and_grad(lambda_sinc_sum)(v)[0], lambda_sinc_sum(v), rtol=1e-15)
        np.testing.assert_array_equal(via(np.sinc, v) == np.sinc(v), [True] * 5 + [False, False])
        assert np.isnan(via(np.sinc, v)[5:]).all()


def lambda_sinc_sum(x):
    return np.sum(np.sinc(x[:5]))


def heaviside_only(x):
    return np.sum(np.heaviside(x, 0.5))


def test_heaviside_is_numpy_s_and_has_zero_derivative():
    v = np.array([-1.0, 0.0, -0.0, 2.0, np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_array_equal(via(np.heaviside, v, 0.25), np.heaviside(v, 0.25))
    np.testing.assert_array_equal(sg.grad(heaviside_only)(X4), np.zeros(4))
    assert sg.grad(heaviside_sum, wrt=1)(np.array([0.0, 1.0, 0.0]), 0.3) == 2.0


def heaviside_sum(x, h):
    return np.sum(np.heaviside(x, h))


def heaviside_of(x, h):
    return np.heaviside(x, h)


def fmax_sum(x, y):
    return np.sum(np.fmax(x, y) + 2.0 * np.fmin(x, y))


def test_fmax_fmin_nan_and_ties():
    x = np.array([1.0, np.nan, 2.0, np.nan, -1.0])
    y = np.array([1.0, 3.0, np.nan, np.nan, 0.5])
    np.testing.assert_array_equal(via(np.fmax, x, y), np.fmax(x, y))
    np.testing.assert_array_equal(via(np.fmin, x, y), np.fmin(x, y))
    gx = sg.grad(fmax_sum)(x, y)
    gy = sg.grad(fmax_sum, wrt=1)(x, y)
    # a tie shares; a nan operand gets nothing, the other operand all; both nan (a nan result): nan
    np.testing.assert_allclose(gx, [1.5, 0.0, 3.0, np.nan, 2.0])
    np.testing.assert_allclose(gy, [1.5, 3.0, 0.0, np.nan, 1.0])
    assert via(np.fmax, float("nan"), 2.0) == 2.0


def fmax_of(x, y):
    return np.fmax(x, y)


def fmin_of(x, y):
    return np.fmin(x, y)


def float_power_of(x, y):
    return np.float_power(x, y)


def test_float_power_negative_bases_and_integers():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x = np.array([-8.0, -2.0, 0.0, -0.0, 4.0])
        y = np.array([1.0 / 3.0, 3.0, -1.0, -1.0, 0.5])
        np.testing.assert_array_equal(via(np.float_power, x, y), np.float_power(x, y))
        assert np.isnan(via(np.float_power, -8.0, 1.0 / 3.0))  # nan, not Python's complex
        got = via(np.float_power, np.array([2, 3]), np.array([-1, 2]))  # integers: float64
        np.testing.assert_array_equal(got, np.float_power(np.array([2, 3]), np.array([-1, 2])))
        assert got.dtype == np.float64
        assert via(np.float_power, np.float32(2.0), np.float32(0.5)).dtype == np.float64
        # d/dx of x**3 at a negative base is 3 x**2
        assert sg.grad(float_power_of)(-2.0, 3.0) == pytest.approx(12.0)


def fmod_of(x, y):
    return np.fmod(x, y)


def test_fmod_signs_and_zero_divisor():
    x = np.array([5.5, -5.5, 5.5, -5.5, -0.0, np.inf, 1.0])
    y = np.array([2.0, 2.0, -2.0, -2.0, 3.0, 2.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_array_equal(np.signbit(via(np.fmod, x, y)), np.signbit(np.fmod(x, y)))
        np.testing.assert_array_equal(via(np.fmod, x, y), np.fmod(x, y))
        assert math.isnan(via(np.fmod, 1.0, 0.0))
    assert via(np.fmod, -7, 3) == -1
    # d/dy fmod(x, y) = -trunc(x / y)
    assert sg.grad(fmod_of, wrt=1)(-5.5, 2.0) == pytest.approx(2.0)
    assert sg.grad(fmod_of)(0.0, 2.0) == 1.0


def copysign_of(x, y):
    return np.copysign(x, y)


def test_copysign_signed_zero_and_nan():
    x = np.array([2.0, 2.0, -3.0, 0.0, np.nan, 1.0])
    y = np.array([-0.0, 0.0, 1.0, -1.0, -1.0, -np.nan])
    got = via(np.copysign, x, y)
    want = np.copysign(x, y)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    assert via(np.copysign, 3, -1) == -3.0
    # copysign(x, -0.0) = -|x|, copysign(x, 5) = |x|: derivatives -sign(x), sign(x)
    np.testing.assert_array_equal(sg.grad(copysign_sum)(np.array([2.0, -3.0])), [-1.0, -1.0])


def copysign_sum(x):
    return np.sum(np.copysign(x, np.array([-0.0, 5.0])))


def nan_to_num_of(x):
    return np.nan_to_num(x)


def test_nan_to_num_dtypes_and_derivative():
    v = np.array([1.5, np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(via(np.nan_to_num, v), np.nan_to_num(v))
    v32 = v.astype(np.float32)
    got = via(np.nan_to_num, v32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.nan_to_num(v32))
    np.testing.assert_array_equal(via(np.nan_to_num, np.array([1, 2])), [1, 2])
    assert via(np.nan_to_num, float("inf")) == np.nan_to_num(float("inf"))
    np.testing.assert_array_equal(sg.grad(nan_to_num_sum)(v), [1.0, 0.0, 0.0, 0.0])


def nan_to_num_sum(x):
    return np.sum(np.nan_to_num(x))


def test_rint_is_half_even_with_zero_derivative():
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.7])
    np.testing.assert_array_equal(via(np.rint, v), np.rint(v))
    np.testing.assert_array_equal(sg.grad(rint_sum)(v), np.zeros(5))


def rint_of(x):
    return np.rint(x)


def rint_sum(x):
    return np.sum(np.rint(x) * 2.0)


def nan_sums(x):
    return np.nansum(x) + 2.0 * np.nanmean(x)


def test_nansum_nanmean_skip_nans_and_their_derivative():
    v = np.array([1.0, np.nan, 3.0, 2.0])
    assert via(np.nansum, v) + 2.0 * via(np.nanmean, v) == pytest.approx(np.nansum(v) + 2.0 * np.nanmean(v))
    np.testing.assert_allclose(sg.grad(nan_sums)(v), [1.0 + 2.0 / 3.0, 0.0, 1.0 + 2.0 / 3.0, 1.0 + 2.0 / 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(via(np.nanmean, np.array([np.nan, np.nan])))


def nanmean_of(x):
    return np.nanmean(x)


def average_of(x, w):
    return np.sum(np.average(x, axis=1, weights=w))


def average_returned(x):
    return np.average(x, weights=x, returned=True)[0]


def average_no_axis(x):
    return np.sum(np.average(x, weights=np.array([1.0, 2.0])))


def test_average_errors_as_numpy_and_returned_refused():
    m = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(via(np.average, m, axis=1, weights=np.array([1.0, 2.0, 3.0])),
                               np.average(m, axis=1, weights=[1.0, 2.0, 3.0]))
    np.testing.assert_allclose(via(np.average, np.arange(24.0).reshape(2, 3, 4), axis=(2, 0),
                                   weights=np.arange(8.0).reshape(4, 2) + 1.0),
                               np.average(np.arange(24.0).reshape(2, 3, 4), axis=(2, 0),
                                          weights=np.arange(8.0).reshape(4, 2) + 1.0))
    with pytest.raises(ValueError, match="Shape of weights"):
        sg.grad(average_of)(m, np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="Axis must be specified"):
        sg.grad(average_no_axis)(m)
    with pytest.raises((NotImplementedError, sg.TransformError), match="returned=True"):
        sg.grad(average_returned)(np.array([1.0, 2.0]))


def test_take_modes_and_repeated_indices():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    want = np.take(x, [-1, 5, 9], mode="wrap") * 10.0 + np.take(x, [-1, 5], mode="clip")[[0, 1, 1]] * 0.0
    np.testing.assert_array_equal(via(np.take, x, np.array([-1, 5, 9]), mode="wrap") * 10.0, want)
    np.testing.assert_array_equal(via(np.take, x, np.array([-1, 5]), mode="clip"),
                                  np.take(x, [-1, 5], mode="clip"))
    m = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(via(np.take, m, 1, axis=1), np.take(m, 1, axis=1))
    np.testing.assert_array_equal(via(np.take, m, [[0, 1], [1, 1]], axis=0),
                                  np.take(m, [[0, 1], [1, 1]], axis=0))
    np.testing.assert_array_equal(sg.grad(take_sum)(x), [1.0, 0.0, 3.0, 0.0])


def take_sum(x):
    return np.sum(np.take(x, [0, 2, 2, 2]))


def select_first(x):
    return np.select([x > 0, x > 1], [x * 2.0, x * 100.0], default=-x)


def test_select_first_condition_wins():
    x = np.array([-1.0, 0.5, 2.0])
    want = np.select([x > 0, x > 1], [x * 2.0, x * 100.0], -x)
    np.testing.assert_array_equal(via(np.select, [x > 0, x > 1], [x * 2.0, x * 100.0], default=-x), want)
    assert sg.jvp(select_first)(x, np.ones(3))[0] == pytest.approx(want)
    np.testing.assert_array_equal(sg.grad(select_sum)(x), [-1.0, 2.0, 2.0])


def select_sum(x):
    return np.sum(np.select([x > 0, x > 1], [x * 2.0, x * 100.0], default=-x))


def test_meshgrid_values_and_shapes():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0])
    got = via(np.meshgrid, x, y) + via(np.meshgrid, x, y, indexing="ij") + via(
        np.meshgrid, x, y, x[:2], sparse=True) + via(np.meshgrid, x)
    want = (np.meshgrid(x, y) + np.meshgrid(x, y, indexing="ij") + np.meshgrid(x, y, x[:2], sparse=True)
            + np.meshgrid(x))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def matrix_power_of(a, n):
    return np.linalg.matrix_power(a, n)


def test_matrix_power_values_and_refusals():
    a = M4[None] * np.array([1.0, 0.5])[:, None, None]  # batched
    for n in (0, 1, 2, 3, 4, 7, -1, -3):
        np.testing.assert_allclose(via(np.linalg.matrix_power, a, n), np.linalg.matrix_power(a, n),
                                   rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="integer"):
        via(np.linalg.matrix_power, M4, 2.0)


def pinv_of(a):
    return np.linalg.pinv(a)


def test_pinv_values_and_rank_deficiency_refused():
    for a in (M4[:, :3], M4[:2], M4, np.stack([M4, M4 * 2.0])[:, :, :3]):
        np.testing.assert_allclose(via(np.linalg.pinv, a), np.linalg.pinv(a), rtol=1e-10, atol=1e-12)
    with pytest.raises(NotImplementedError, match="rank-deficient"):
        via(np.linalg.pinv, np.ones((3, 2)))


def pow_mod(x):
    return pow(3, 4, 5) * x + pow(x, 3)


def test_builtin_pow():
    assert sg.grad(pow_mod)(2.0) == pytest.approx(1.0 + 12.0)
    with pytest.raises(NotImplementedError, match="mod"):
        mapping.BUILTINS[pow](2.0, 3.0, 5)


def test_torch_spellings_on_the_tape():
    x = sg.tensor(X4, requires_grad=True)
    y = (sg.fmod(x * 3.1, 0.7).sum() + x.fmax(x.flip(0)).sum() + sg.heaviside(x, sg.tensor(0.5)).sum()
         + sg.nan_to_num(x).sum() + sg.deg2rad(x).sum() + x.copysign(sg.tensor(-1.0)).sum()
         + sg.sinc(x).sum() + sg.take(x, sg.tensor(np.array([0, 0, 3]))).sum() + x.nansum()
         + sg.linalg.multi_dot([x, sg.tensor(M4), sg.tensor(M4), x]) + sg.linalg.matrix_power(
             sg.tensor(M4) * x, 3).sum() + sg.linalg.pinv(sg.tensor(M4[:, :3]) * x[:, None]).sum())
    y.backward()

    def f(v):
        return (np.sum(np.fmod(v * 3.1, 0.7)) + np.sum(np.fmax(v, v[::-1])) + np.sum(np.heaviside(v, 0.5))
                + np.sum(np.nan_to_num(v)) + np.sum(np.deg2rad(v)) + np.sum(np.copysign(v, -1.0))
                + np.sum(np.sinc(v)) + np.sum(v[[0, 0, 3]]) + np.sum(v)
                + np.linalg.multi_dot([v, M4, M4, v]) + np.sum(np.linalg.matrix_power(M4 * v, 3))
                + np.sum(np.linalg.pinv(M4[:, :3] * v[:, None])))

    assert float(y) == pytest.approx(f(X4), rel=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), numeric_grad(f, [X4], 0), rtol=1e-6, atol=1e-8)
    a, b = sg.meshgrid(sg.tensor([1.0, 2.0, 3.0]), sg.tensor([4.0, 5.0]))  # torch's default: 'ij'
    assert tuple(a.shape) == (3, 2) and float(b[1, 1]) == 5.0
