"""NumPy spellings through the compiler (grad, jvp, hvp, hessian) and the tape, checked by value.

Each group is a bug once met: a NaN from max over -inf entries (the attention-mask idiom), adapters
the compiler could not differentiate (transpose, cumsum, vdot, x.mT), hvp/hessian failing on an axis
passed on through a helper, einsum gradients with a repeated index, and functions that had no rule
(logaddexp, cbrt, mod, sort, builtin sum). Values are checked against central differences or closed
forms, never against srcgrad itself.
"""

from __future__ import annotations

import numpy as np
import pytest

import srcgrad as sg

from .util import assert_close, numeric_grad

RNG = np.random.default_rng(7)
X23 = np.array([[0.5, 1.0, 2.0], [-0.5, 0.3, 0.1]])


def numeric_jvp(f, x, t, h=1e-6):
    return (f(x + h * t) - f(x - h * t)) / (2 * h)


def numeric_hessian(f, x, h=1e-4):
    """Central differences of srcgrad's gradient (itself checked against differences elsewhere)."""
    g = sg.grad(f)
    cols = []
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        cols.append((g(x + e) - g(x - e)) / (2 * h))
    return np.moveaxis(np.array(cols).reshape(x.shape + x.shape), tuple(range(x.ndim)),
                       tuple(range(x.ndim, 2 * x.ndim)))


def check_all_modes(f, x, hessian=True, rtol=1e-5, atol=1e-6):
    """grad and jvp against central differences of f; hessian and hvp against differences of grad."""
    assert_close(sg.grad(f)(x), numeric_grad(f, [x], 0), rtol=rtol, atol=atol, what="grad")
    t = RNG.standard_normal(x.shape)
    assert_close(sg.jvp(f)(x, t)[1], numeric_jvp(f, x, t), rtol=rtol, atol=atol, what="jvp")
    if hessian:
        h = numeric_hessian(f, x)
        assert_close(sg.hessian(f)(x), h, rtol=1e-4, atol=1e-5, what="hessian")
        v = RNG.standard_normal(x.shape)
        hv = np.tensordot(h, v, axes=x.ndim)
        assert_close(sg.hvp(f)(x, v)[1], hv, rtol=1e-4, atol=1e-5, what="hvp")


# ----------------------------------------------------------------------- max/min over -inf entries
MASK = np.array([True, True, False])


def masked_max(x):
    return np.max(np.where(MASK, x, -np.inf))


def masked_min(x):
    return np.min(np.where(MASK, x, np.inf))


def masked_softmax_loss(scores):
    mask = np.array([[True, False, True], [True, True, False]])
    s = np.where(mask, scores, -np.inf)
    m = np.max(s, axis=-1, keepdims=True)
    e = np.where(mask, np.exp(s - m), 0.0)
    p = e / np.sum(e, axis=-1, keepdims=True)
    return np.sum(p * scores)


def test_max_min_over_minus_inf_entries_have_finite_exact_derivatives():
    x = np.array([0.3, 1.2, -0.5])
    assert_close(sg.grad(masked_max)(x), [0.0, 1.0, 0.0], what="max grad")
    assert_close(sg.grad(masked_min)(x), [1.0, 0.0, 0.0], what="min grad")
    assert_close(sg.jvp(masked_max)(x, np.array([0.7, -2.0, 5.0]))[1], -2.0, what="max jvp")
    assert_close(sg.hessian(masked_max)(x), np.zeros((3, 3)), what="max hessian")


def test_masked_softmax_gradient_matches_differences():
    s = np.array([[0.1, 0.7, -0.3], [1.0, -0.2, 0.4]])
    check_all_modes(masked_softmax_loss, s)


def test_tape_max_over_minus_inf_entries():
    x = sg.tensor(np.array([[1.0, -np.inf, 2.0], [-np.inf, 0.5, -1.0]]), requires_grad=True)
    (x.max(dim=1).values * sg.tensor(np.array([2.0, 3.0]))).sum().backward()
    assert_close(x.grad.numpy(), [[0.0, 0.0, 2.0], [0.0, 3.0, 0.0]], what="tape max grad")


# --------------------------------------------------------- var/std and axis passed on (hvp, hessian)
def f_var(x):
    return np.var(x)


def f_std_axis(x):
    return np.sum(np.std(x, axis=0, ddof=1) ** 2) + np.sum(x.var(axis=1) ** 2)


def softmax(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def f_helper(x):
    return np.sum(softmax(x) * x) + np.sum(softmax(x, 0) ** 2)


@pytest.mark.parametrize("f", [f_var, f_std_axis, f_helper])
def test_axis_arguments_in_second_order(f):
    check_all_modes(f, X23)


# --------------------------------------------------------------------------------- transpose forms
W32 = np.arange(6.0).reshape(3, 2)


def t_plain(x):
    return np.sum(np.transpose(x) ** 2 * W32)


def t_axes(x):
    return np.sum(np.transpose(x, (1, 0)) ** 3 * W32)


def t_kw(x):
    return np.sum(np.sin(np.transpose(x, axes=(1, 0))) * W32)


def t_method(x):
    a = np.sum(x.transpose(1, 0) ** 2 * W32)
    return a + np.sum(x.transpose((1, 0)) * W32) + np.sum(x.transpose() * W32)


def t_swap(x):
    return np.sum(np.swapaxes(x, 0, 1) ** 2 * W32) + np.sum(x.mT * W32) + np.sum(np.matrix_transpose(x) * W32)


def permute(x, axes):
    return np.transpose(x, axes)


def t_helper(x):
    return np.sum(permute(x, (1, 0)) ** 2 * W32)


@pytest.mark.parametrize("f", [t_plain, t_axes, t_kw, t_method, t_swap, t_helper])
def test_transpose_spellings(f):
    check_all_modes(f, X23)


def test_transpose_3d_permutation_closed_form():
    x = RNG.standard_normal((2, 3, 4))
    w = RNG.standard_normal((4, 2, 3))

    def f(x):
        return np.sum(x.transpose(2, 0, 1) * w)

    assert_close(sg.grad(f)(x), np.transpose(w, (1, 2, 0)), what="grad")


# ---------------------------------------------------------------------------------- cumsum, cumprod
def c_flat(x):
    return np.sum(np.cumsum(x) ** 2)


def c_axis(x):
    return np.sum(np.cumsum(x, axis=0) ** 2)


def c_prod(x):
    return np.sum(np.cumprod(x, axis=1))


def c_method(x):
    return np.sum(x.cumsum(axis=1) ** 2) + np.sum(x.cumprod() * 0.5)


def running(x, axis):
    return np.cumsum(x, axis=axis) * np.cumprod(x, axis=axis)


def c_helper(x):
    return np.sum(running(x, 1) ** 2) + np.sum(running(x, 0))


@pytest.mark.parametrize("f", [c_flat, c_axis, c_prod, c_method, c_helper])
def test_cumulative_spellings(f):
    check_all_modes(f, X23)


def test_cumsum_closed_form():
    x = np.array([1.0, 2.0, 3.0])
    # d/dx_i sum_k (cumsum x)_k = number of k >= i
    assert_close(sg.grad(lambda_free_cumsum)(x), [3.0, 2.0, 1.0])


def lambda_free_cumsum(x):
    return np.sum(np.cumsum(x))


# ---------------------------------------------------------------------------- einsum repeated index
def e_trace(a):
    return np.einsum("ii->", a @ a.T)


def e_diag(a):
    return np.sum(np.einsum("ii->i", a) ** 2)


def e_mixed(a):
    return np.sum(np.einsum("iji,jk->ik", np.stack([a, a * a]).transpose(1, 0, 2), a[:2]) ** 2)


def test_einsum_repeated_index_closed_forms():
    a = np.arange(9.0).reshape(3, 3) / 10
    assert_close(sg.grad(e_trace)(a), 2 * a, what="trace of a aT")
    assert_close(sg.grad(e_diag)(a), np.diag(2 * np.diag(a)), what="diagonal")
    assert_close(sg.hessian(e_diag)(a).reshape(9, 9), np.diag(2.0 * np.eye(3).ravel()), what="hessian")


@pytest.mark.parametrize("f", [e_trace, e_diag, e_mixed])
def test_einsum_repeated_index_all_modes(f):
    check_all_modes(f, RNG.standard_normal((3, 3)))


# ------------------------------------------------------------------------------------------- vdot
def f_vdot(x):
    return np.vdot(x, np.array([[3.0, -1.0], [0.5, 2.0]])) * np.vdot(x, x)


def test_vdot():
    x = np.array([[1.0, 2.0], [-0.5, 0.25]])
    y = np.array([[3.0, -1.0], [0.5, 2.0]])
    assert_close(sg.grad(f_vdot)(x), y * np.vdot(x, x) + 2 * x * np.vdot(x, y), what="closed form")
    check_all_modes(f_vdot, x)


# ------------------------------------------------------------------------ logaddexp, cbrt, mod, sort
def f_softplus(x):
    return np.sum(np.logaddexp(0.0, x) * np.logaddexp(x, 2.0 * x))


def f_cbrt(x):
    return np.sum(np.cbrt(x) * x)


def f_mod(x):
    return np.sum(np.mod(x, 0.7) * x + np.remainder(2.0, x))


def f_sort_topk(x):
    return np.sum(np.sort(x)[-2:] ** 2) + np.sum(np.sort(x, axis=None) * np.arange(6.0))


def f_sort_axis(x):
    return np.sum(np.sort(x, axis=0) * np.arange(6.0).reshape(2, 3) ** 2)


X_AWAY = np.array([[0.45, -1.3, 2.2], [1.7, -0.35, 0.8]])  # no ties, away from 0 and from mod jumps


@pytest.mark.parametrize("f", [f_softplus, f_cbrt, f_mod, f_sort_topk, f_sort_axis])
def test_new_rules_through_the_compiler(f):
    check_all_modes(f, X_AWAY)


def test_logaddexp_cbrt_closed_forms():
    x = np.array([-800.0, -0.5, 2.0, 800.0])
    want = 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))
    assert_close(sg.grad(lambda_free_softplus)(x), want, what="softplus' = sigmoid, no overflow")
    y = np.array([-8.0, 0.125, 27.0])
    assert_close(sg.grad(lambda_free_cbrt)(y), 1.0 / (3.0 * np.cbrt(y) ** 2), what="cbrt'")


def lambda_free_softplus(x):
    return np.sum(np.logaddexp(0.0, x))


def lambda_free_cbrt(x):
    return np.sum(np.cbrt(x))


def test_sort_gradient_follows_the_permutation():
    x = np.array([3.0, -1.0, 2.0, 0.5])
    # the two largest (3.0 and 2.0) get 2x, the others nothing
    assert_close(sg.grad(f_sort_top2)(x), [6.0, 0.0, 4.0, 0.0])


def f_sort_top2(x):
    return np.sum(np.sort(x)[-2:] ** 2)


# ------------------------------------------------------------------------------------ builtin sum
def py_sum(x):
    return sum(x ** 2)


def py_sum_rows(x):
    return np.sum(sum(np.sin(x), 1.5) ** 2)


def py_sum_list(x):
    xs = []
    for i in range(3):
        xs.append(x * (i + 1.0))
    return np.sum(sum(xs) ** 2)


@pytest.mark.parametrize("f", [py_sum, py_sum_rows, py_sum_list])
def test_builtin_sum_of_arrays(f):
    check_all_modes(f, X23 if f is not py_sum else X23[0])


# ---------------------------------------------------------------- np.diff and np.cross
def _smoothness(x):
    return np.sum(np.diff(x) ** 2) + np.sum(np.diff(np.outer(x, x), axis=0) ** 3)


def _triangle_area(p, q, r):
    c = np.cross(q - p, r - p)
    return 0.5 * np.sqrt(np.sum(c * c))


def _higher_difference(x):
    return np.sum(np.diff(x, n=2))


def test_diff_and_cross_match_finite_differences():
    from tests.srcgrad.util import numeric_grad

    x = np.array([0.3, -1.2, 0.8, 2.0])
    np.testing.assert_allclose(sg.grad(_smoothness)(x), numeric_grad(_smoothness, [x.copy()], 0),
                               rtol=1e-6, atol=1e-6)
    pts = [np.array([0.1, 0.2, 0.3]), np.array([1.0, 0.1, -0.2]), np.array([0.3, 1.2, 0.5])]
    g = sg.grad(_triangle_area, wrt=(0, 1, 2))(*pts)
    for i in range(3):
        np.testing.assert_allclose(g[i], numeric_grad(_triangle_area, [p.copy() for p in pts], i),
                                   rtol=1e-6, atol=1e-9)
    want = numeric_grad(_higher_difference, [x.copy()], 0)  # any order, as NumPy (was refused: n=1 only)
    np.testing.assert_allclose(sg.grad(_higher_difference)(x), want, rtol=1e-6, atol=1e-6)


def _padded(x):
    return np.sum(np.pad(x, ((1, 0), (0, 2)), constant_values=0.5) ** 3)


def _reflect_padded(x):
    return np.sum(np.pad(x, 1, mode="reflect"))


def test_np_pad_constant_mode_and_refusal_of_others():
    from tests.srcgrad.util import numeric_grad

    X = np.arange(6.0).reshape(2, 3) / 7
    np.testing.assert_allclose(sg.grad(_padded)(X), numeric_grad(_padded, [X.copy()], 0),
                               rtol=1e-6, atol=1e-9)
    with pytest.raises(NotImplementedError, match="reflect"):
        sg.grad(_reflect_padded)(X)
