"""svd, qr, eigh, the FFT and math/scipy special functions (issue 12, item 5) through the compiler:
gradients (and forward mode where it applies) against central differences.

What the compiler does not take yet is kept as strict xfails naming the failure, so each flips to a
pass (and must then lose its mark) when the compiler learns it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import srcgrad as sg

try:  # SciPy is an optional extra
    import scipy.special as special
except ImportError:
    special = None

EPS = 1e-6
W3 = np.arange(1.0, 4.0)
H = np.fft.fft(np.array([0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.1, 0.15]))
RAMP = np.arange(8.0)


def numeric_grad(f, x):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = EPS
        g.flat[i] = (f(x + e) - f(x - e)) / (2 * EPS)
    return g


# ------------------------------------------------------------------------------------------ programs
def svd_values(x):
    return np.sum(np.linalg.svd(np.reshape(x, (4, 3)), compute_uv=False) ** 2 * W3)


def svd_unpacked(x):
    U, S, Vh = np.linalg.svd(np.reshape(x, (4, 3)), full_matrices=False)
    return np.sum(U[:, 0] ** 4) + np.sum(S * W3) + np.sum(Vh[1] ** 2 * W3)


def svd_wide_unpacked(x):
    U, S, Vh = np.linalg.svd(np.reshape(x, (3, 4)), full_matrices=False)
    return np.sum(U ** 2 * W3) + np.sum(np.log(S))


def qr_unpacked(x):
    Q, R = np.linalg.qr(np.reshape(x, (4, 3)) + 3.0 * np.eye(4, 3))
    return np.sum(Q ** 3) + np.sum(R * W3)


def qr_r_mode(x):
    return np.sum(np.linalg.qr(np.reshape(x, (4, 3)) + 3.0 * np.eye(4, 3), mode="r") ** 2)


def eigh_unpacked(x):
    A = np.reshape(x, (3, 3))
    w, V = np.linalg.eigh(A + A.T)
    return np.sum(w * W3) + np.sum(V[:, 0] ** 2 * W3)


def rfft_power(x):
    return np.sum(np.abs(np.fft.rfft(x)) ** 2)


def fft_filter(x):
    return np.sum(np.real(np.fft.ifft(np.fft.fft(x) * H)) ** 2 * RAMP)


def irfft_roundtrip(x):
    y = np.fft.irfft(np.fft.rfft(x, norm="ortho") * np.linspace(0.5, 1.5, 5), n=8, norm="ortho")
    return np.sum(y ** 3)


def fft_imag_ortho(x):
    return np.sum(np.imag(np.fft.fft(x, n=10, norm="ortho")) * np.arange(10.0)) + np.sum(
        np.abs(np.fft.fft(x)))


def math_special(x):
    return math.erf(x) * math.lgamma(x + 2.0) + math.gamma(x + 1.5)


ARRAY_PROGRAMS = [(svd_values, 12), (svd_unpacked, 12), (svd_wide_unpacked, 12), (qr_unpacked, 12),
                  (qr_r_mode, 12), (eigh_unpacked, 9), (rfft_power, 8), (fft_filter, 8),
                  (irfft_roundtrip, 8), (fft_imag_ortho, 8)]


@pytest.mark.parametrize("f, n", ARRAY_PROGRAMS, ids=[f.__name__ for f, _ in ARRAY_PROGRAMS])
def test_grad_matches_differences(f, n):
    x = np.random.default_rng(n).standard_normal(n)
    g = sg.grad(f)(x)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, numeric_grad(f, x), rtol=1e-5, atol=1e-6)


JVP_PROGRAMS = [p for p in ARRAY_PROGRAMS if p[0] not in (svd_values, qr_r_mode)]


@pytest.mark.parametrize("f, n", JVP_PROGRAMS, ids=[f.__name__ for f, _ in JVP_PROGRAMS])
def test_jvp_matches_differences(f, n):
    rng = np.random.default_rng(n + 1)
    x, u = rng.standard_normal(n), rng.standard_normal(n)
    _, t = sg.jvp(f)(x, u)
    assert t == pytest.approx(np.dot(numeric_grad(f, x), u), rel=1e-5, abs=1e-6)


def test_math_special_functions_on_floats():
    x = 0.7
    want = (math_special(x + EPS) - math_special(x - EPS)) / (2 * EPS)
    assert sg.grad(math_special)(x) == pytest.approx(want, rel=1e-6)


def scipy_program(x):
    return special.logsumexp(x) + np.sum(special.expit(x) * special.gammaln(x + 3.0)) + np.sum(
        special.erf(x) ** 2) + special.logsumexp(np.outer(x, x), axis=1)[2]


def test_scipy_special_functions():
    if special is None:
        pytest.skip("needs scipy (not installed)")
    x = np.random.default_rng(2).standard_normal(5)
    want = numeric_grad(scipy_program, x)
    np.testing.assert_allclose(sg.grad(scipy_program)(x), want, rtol=1e-6, atol=1e-7)
    t = np.random.default_rng(3).standard_normal(5)
    _, d = sg.jvp(scipy_program)(x, t)
    assert d == pytest.approx(want @ t, rel=1e-6)


# ------------------------------------------------------------------ what the compiler does not take yet
def svd_indexed(x):
    return np.sum(np.linalg.svd(np.reshape(x, (4, 3)), full_matrices=False)[1])


def eigh_indexed(x):
    A = np.reshape(x, (3, 3))
    return np.linalg.eigh(A + A.T)[0][-1]


def real_attribute(x):
    y = np.fft.ifft(np.fft.fft(x) * H)
    return np.sum(y.real ** 2 + y.imag)


@pytest.mark.parametrize("f, n", [(svd_indexed, 12), (eigh_indexed, 9)], ids=["svd", "eigh"])
def test_indexing_a_decomposition(f, n):
    x = np.random.default_rng(3).standard_normal(n)
    np.testing.assert_allclose(sg.grad(f)(x), numeric_grad(f, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("f", [svd_values, qr_r_mode])
def test_jvp_of_the_single_output_modes(f):
    # the adapter returns a tuple on one branch and an array on the other: the tangent is the array
    x = np.random.default_rng(4).standard_normal(12)
    _, t = sg.jvp(f)(x, np.ones(12))
    assert t == pytest.approx(np.sum(numeric_grad(f, x)), rel=1e-5)


def test_real_and_imag_attributes():
    x = np.random.default_rng(5).standard_normal(8)
    want = numeric_grad(real_attribute, x)
    np.testing.assert_allclose(sg.grad(real_attribute)(x), want, rtol=1e-5, atol=1e-6)


def test_non_square_full_matrices_is_refused():
    def f(x):
        return np.sum(np.linalg.svd(np.reshape(x, (4, 3)))[1])

    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        sg.grad(f)(np.ones(12))
