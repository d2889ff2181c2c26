"""Complex values, the FFT, svd and qr (issue 12, item 5): the rules along complex directions, and the
eager tape against finite differences.

The generic rule test (test_rules.py) runs every record on real inputs along real directions. Here the
primitives that take or give complex values are checked with complex inputs, complex directions and
complex weights, in the pairing of JAX's convention that srcgrad follows (docs/rules.md): the cotangent
ct of a complex z stands for dL/dRe z - i dL/dIm z, so a tangent u moves L by Re(sum(ct * u)), and a
vjp and a jvp agree when Re(sum(v * jvp(u))) = Re(sum(vjp(v) * u)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import srcgrad as torch
from srcgrad.runtime import mapping as M
from srcgrad.runtime.primitives import PRIMITIVES
from srcgrad.runtime.rules import RULES

EPS = 1e-6


def _crandn(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _pair(a, b):
    return float(np.real(np.sum(np.asarray(a) * np.asarray(b))))


def _check_rule_complex(name, x, kwargs=None, seed=0, real_output=False, real_input=False):
    """vjp, jvp and central differences of primitive `name` at x (one argument), along a random
    (complex unless real_input) direction u, paired with a random (complex unless real_output) weight v."""
    kwargs = kwargs or {}
    rng = np.random.default_rng(seed)
    prim, rule = PRIMITIVES[name], RULES[name]
    ans = prim(x, **kwargs)
    u = rng.standard_normal(x.shape) if real_input else _crandn(rng, *x.shape)
    v = rng.standard_normal(np.shape(ans)) if real_output else _crandn(rng, *np.shape(ans))
    t = rule.jvp_for(0)(u, ans, x, **kwargs)
    ct = rule.vjp_for(0)(v, ans, x, **kwargs)
    assert np.shape(t) == np.shape(ans) and np.shape(ct) == x.shape
    if real_input:
        assert not np.iscomplexobj(ct), f"{name}: a real input's cotangent must be real"
    fd = (prim(x + EPS * u, **kwargs) - prim(x - EPS * u, **kwargs)) / (2 * EPS)
    numeric = _pair(v, fd)
    assert _pair(v, t) == pytest.approx(numeric, rel=1e-6, abs=1e-7), f"{name}: jvp"
    assert _pair(ct, u) == pytest.approx(numeric, rel=1e-6, abs=1e-7), f"{name}: vjp"


# --------------------------------------------------------------------------- rules, complex directions
@pytest.mark.parametrize("name", ["real", "imag", "abs"])
def test_real_valued_functions_of_complex_values(name):
    x = _crandn(np.random.default_rng(1), 3, 4)
    _check_rule_complex(name, x, real_output=True)


def test_conj():
    _check_rule_complex("conj", _crandn(np.random.default_rng(2), 5))


@pytest.mark.parametrize("name", ["fft", "ifft"])
@pytest.mark.parametrize("kwargs", [{}, {"norm": "ortho"}, {"norm": "forward", "n": 9}, {"n": 5, "axis": 0}],
                         ids=["default", "ortho", "forward-pad", "crop-axis0"])
def test_complex_transforms_along_complex_directions(name, kwargs):
    x = _crandn(np.random.default_rng(3), 7, 4) if kwargs.get("axis") == 0 else _crandn(
        np.random.default_rng(3), 2, 7)
    _check_rule_complex(name, x, kwargs)


@pytest.mark.parametrize("name", ["fft", "ifft", "rfft"])
@pytest.mark.parametrize("kwargs", [{}, {"norm": "ortho", "n": 10}, {"n": 4}],
                         ids=["default", "ortho-pad", "crop"])
def test_real_to_complex_transforms_give_real_cotangents(name, kwargs):
    x = np.random.default_rng(4).standard_normal((3, 7))
    _check_rule_complex(name, x, kwargs, real_input=True)


@pytest.mark.parametrize("kwargs", [{}, {"n": 9}, {"n": 12, "norm": "ortho"}, {"n": 3, "norm": "forward"},
                                    {"axis": 0}],
                         ids=["default", "odd", "pad-ortho", "crop-forward", "axis0"])
def test_irfft_along_complex_directions(kwargs):
    """irfft ignores the imaginary parts of the zero (and, n even, the n/2) frequency: the rule too."""
    x = _crandn(np.random.default_rng(5), 6, 5)
    _check_rule_complex("irfft", x, kwargs, real_output=True)


def test_abs_of_complex_at_zero_has_a_zero_gradient():
    x = np.array([0.0 + 0.0j, 3.0 + 4.0j])
    ct = RULES["abs"].vjp_for(0)(np.ones(2), np.abs(x), x)
    np.testing.assert_allclose(ct, [0.0, (3.0 - 4.0j) / 5.0])


# ----------------------------------------------------------------------------------- the eager tape
def _numeric_grad(f, x):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = EPS
        g[i] = (f(x + e) - f(x - e)) / (2 * EPS)
    return g


H = np.fft.fft(np.array([0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.1, 0.15]))


@pytest.mark.parametrize("program", ["rfft-power", "filter", "irfft-roundtrip", "ortho-ifft"])
def test_real_input_real_loss_programs_on_the_tape(program):
    """Real input, complex values inside, a real loss: the gradient is real and agrees with finite
    differences (np.sum(np.abs(np.fft.rfft(x))**2), np.real(np.fft.ifft(np.fft.fft(x) * h)), ...)."""
    w = np.arange(8.0)

    def f(x, fft=M.fft_, ifft=M.ifft_, rfft=M.rfft_, irfft=M.irfft_, real=M.P.real, absolute=M.P.abs):
        if program == "rfft-power":
            return (absolute(rfft(x)) ** 2).sum()
        if program == "filter":
            return ((real(ifft(fft(x) * H)) ** 2) * w).sum()
        if program == "irfft-roundtrip":
            return (irfft(rfft(x) * np.linspace(0.5, 1.5, 5), n=8) ** 3).sum()
        return (M.P.imag(ifft(fft(x, norm="ortho") * H, norm="ortho")) * w).sum()

    x0 = np.random.default_rng(6).standard_normal(8)
    t = torch.tensor(x0, requires_grad=True)
    f(t).backward()
    assert t.grad.dtype == torch.float64
    np.testing.assert_allclose(t.grad.numpy(), _numeric_grad(lambda a: float(f(a)), x0), rtol=1e-6, atol=1e-7)


def test_complex_leaf_gets_the_jax_cotangent():
    """A complex leaf's .grad is dL/dRe z - i dL/dIm z (JAX's convention; PyTorch's is its conjugate)."""
    z0 = _crandn(np.random.default_rng(7), 4)
    c = np.array([1.0 + 2.0j, 0.5j, -1.0, 2.0 - 1.0j])

    def loss(z):
        return (M.P.abs(z * c + 1.0) ** 2).sum() + M.P.real(z * z).sum()

    t = torch.tensor(z0, requires_grad=True)
    loss(t).backward()
    d_re = _numeric_grad(lambda a: float(loss(a + 1j * z0.imag)), z0.real)
    d_im = _numeric_grad(lambda a: float(loss(z0.real + 1j * a)), z0.imag)
    np.testing.assert_allclose(t.grad.numpy(), d_re - 1j * d_im, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------- svd, qr
def _tape_grad(f, x0):
    t = torch.tensor(x0, requires_grad=True)
    f(t).backward()
    return t.grad.numpy()


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 4)], ids=["tall", "wide", "batched"])
def test_svd_on_the_tape(shape):
    rng = np.random.default_rng(8)
    a0 = rng.standard_normal(shape)
    k = min(shape[-2:])
    wu, ws, wv = rng.standard_normal(shape[:-1] + (k,)), rng.standard_normal(k), rng.standard_normal(
        shape[:-2] + (k, shape[-1]))

    def f(a):
        u, s, vh = M.svd_(a, full_matrices=False)
        # signs of singular vectors are the solver's: the loss reads sign-invariant combinations
        return ((u ** 2 * wu).sum() + (s * ws).sum() + ((vh ** 2) * wv).sum()
                + (u[..., :, :1] * vh[..., :1, :]).sum())

    np.testing.assert_allclose(_tape_grad(f, a0), _numeric_grad(lambda a: float(f(a)), a0), rtol=1e-5,
                               atol=1e-6)


def test_svdvals_and_compute_uv_false():
    a0 = np.random.default_rng(9).standard_normal((4, 3))
    g = _tape_grad(lambda a: (M.svd_(a, compute_uv=False) ** 3).sum(), a0)
    want = _numeric_grad(lambda a: float(np.sum(np.linalg.svd(a, compute_uv=False) ** 3)), a0)
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-7)
    assert torch.linalg.svdvals(torch.tensor(a0)).numpy() == pytest.approx(np.linalg.svd(a0)[1])


def test_torch_linalg_svd_square_full_matrices_and_refusal():
    a = torch.tensor(np.random.default_rng(10).standard_normal((3, 3)))
    u, s, vh = torch.linalg.svd(a)  # full_matrices=True, PyTorch's default: square is fine
    np.testing.assert_allclose((u.numpy() * s.numpy()) @ vh.numpy(), a.numpy(), atol=1e-12)
    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        torch.linalg.svd(torch.tensor(np.ones((3, 2))))


@pytest.mark.parametrize("shape", [(5, 3), (3, 3), (2, 4, 3)], ids=["tall", "square", "batched"])
def test_qr_on_the_tape(shape):
    rng = np.random.default_rng(11)
    a0 = rng.standard_normal(shape) + 3.0 * np.eye(shape[-2], shape[-1])
    wq, wr = rng.standard_normal(shape), rng.standard_normal(shape[:-2] + (shape[-1], shape[-1]))

    def f(a):
        q, r = M.qr_(a)
        return (q ** 3 * wq).sum() + (r * wr).sum()

    np.testing.assert_allclose(_tape_grad(f, a0), _numeric_grad(lambda a: float(f(a)), a0), rtol=1e-5,
                               atol=1e-6)


def test_qr_modes_and_refusals():
    a = np.random.default_rng(12).standard_normal((4, 3))
    np.testing.assert_allclose(M.qr_(a, mode="r"), np.linalg.qr(a, mode="r"))
    with pytest.raises(NotImplementedError, match="mode='raw'"):
        M.qr_(a, mode="raw")
    with pytest.raises(NotImplementedError, match="rows >= columns"):
        _tape_grad(lambda t: M.qr_(t)[1].sum(), a.T.copy())


def test_svd_and_qr_refuse_complex_matrices():
    z = np.eye(3) * (1.0 + 1.0j)
    with pytest.raises(NotImplementedError, match="complex"):
        PRIMITIVES["svd_s"](z)
    with pytest.raises(NotImplementedError, match="complex"):
        PRIMITIVES["qr_r"](z)


# ------------------------------------------------------------------------------- the mapping tables
def test_numpy_spellings_map_to_the_adapters():
    for f, adapter in [(np.linalg.svd, M.svd_), (np.linalg.qr, M.qr_), (np.linalg.eigh, M.eigh_),
                       (np.fft.fft, M.fft_), (np.fft.ifft, M.ifft_), (np.fft.rfft, M.rfft_),
                       (np.fft.irfft, M.irfft_), (np.real, M.P.real), (np.imag, M.P.imag),
                       (np.conj, M.P.conj), (math.erf, M.P.erf), (math.lgamma, M.P.lgamma),
                       (math.gamma, M.gamma_)]:
        assert M.lookup_function(f) is adapter, f
    for result, pack in [(M.SVDResult, M.svd_pack_), (M.QRResult, M.qr_pack_), (M.EighResult, M.eigh_pack_),
                         (M.SlogdetResult, M.slogdet_pack_)]:
        assert M.NUMPY_FUNCTIONS[result] is pack
    for name in ("fft.fft", "fft.ifft", "fft.rfft", "fft.irfft", "linalg.svd", "linalg.qr", "linalg.svdvals"):
        assert name in M.TORCH_FUNCTIONS


def test_values_are_numpy_s():
    rng = np.random.default_rng(13)
    x, z = rng.standard_normal((3, 8)), _crandn(rng, 3, 5)
    np.testing.assert_allclose(M.fft_(x, n=6, axis=0, norm="ortho"), np.fft.fft(x, n=6, axis=0, norm="ortho"))
    np.testing.assert_allclose(M.ifft_(z, norm="forward"), np.fft.ifft(z, norm="forward"))
    np.testing.assert_allclose(M.rfft_(x, n=11), np.fft.rfft(x, n=11))
    np.testing.assert_allclose(M.irfft_(z, n=7), np.fft.irfft(z, n=7))
    np.testing.assert_allclose(M.angle_(z, deg=True), np.angle(z, deg=True))
    u, s, vh = M.svd_(x, full_matrices=False)
    np.testing.assert_allclose((u * s) @ vh, x, atol=1e-12)
    q, r = M.qr_(x.T)
    np.testing.assert_allclose(q @ r, x.T, atol=1e-12)


def test_scipy_special_spellings():
    special = pytest.importorskip("scipy.special")
    assert M.lookup_function(special.expit) is M.P.sigmoid
    assert M.lookup_function(special.gammaln) is M.P.lgamma
    assert M.lookup_function(special.erf) is M.P.erf
    assert M.lookup_function(special.logsumexp) is M.logsumexp_scipy
    x = np.random.default_rng(14).standard_normal((3, 4))
    np.testing.assert_allclose(M.logsumexp_scipy(x, axis=1), special.logsumexp(x, axis=1))
    with pytest.raises(NotImplementedError, match="b="):
        M.logsumexp_scipy(x, b=x)
