"""More NumPy as programs call it (issue 12, item 5), through the compiler: grad and jvp against central
differences of the function, hessian and hvp against differences of the gradient.

Each call is a composition of primitives in `runtime/mapping.py` (np.empty_like, full, full_like,
atleast_Nd, column_stack, dstack, hstack/vstack of a list variable, exp2, kron, take_along_axis,
put_along_axis, interp, convolve, correlate, math.gamma, slogdet(K)[1]) or a primitive with its rules
(lgamma, polygamma, searchsorted; eigvalsh/eigh). What is not taken yet raises TransformError.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import srcgrad as sg

from .test_numpy_coverage import check_all_modes
from .util import numeric_grad

X4 = np.array([0.3, -0.7, 1.1, 0.5])
X23 = np.array([[0.5, 1.0, 2.0], [-0.5, 0.3, 0.1]])
W8 = np.arange(8.0).reshape(4, 2)


# ------------------------------------------------------------------------------------- constructors
def f_empty_like(x):
    y = np.empty_like(x)
    for i in range(x.shape[0]):
        y[i] = x[i] ** 2 * (i + 1.0)
    return np.sum(y * x)


def f_full(x):
    return np.sum(np.full(3, x[0]) * x[:3]) + np.sum(np.full((2, 2), x[1] * x[2]) ** 2)


def f_full_like(x):
    y = np.full_like(x, x[1])
    y[0] = x[0] ** 3
    return np.sum(y * x)


def f_full_like_const(x):
    return np.sum(np.full_like(x, 2.5) * x ** 2)


# ------------------------------------------------------------------------------------------- shapes
def f_atleast(x):
    return (np.sum(np.atleast_1d(x[0] * x[1]) ** 2) + np.sum(np.atleast_2d(x) @ np.atleast_2d(x).T)
            + np.sum(np.atleast_3d(x) ** 3 * np.arange(4.0).reshape(1, 4, 1))
            + np.sum(np.atleast_3d(np.outer(x, x)) ** 2))


def f_column_stack(x):
    xs = [x, x ** 2]
    return np.sum(np.column_stack(xs) ** 2 * W8)


def f_column_stack_2d(x):
    m = np.outer(x, x[:2])
    cols = [m, np.sin(m)]
    return np.sum(np.column_stack(cols) ** 2 * np.arange(16.0).reshape(4, 4))


def f_dstack(x):
    parts = [x, np.sin(x)]
    return np.sum(np.dstack(parts) ** 2 * np.arange(8.0).reshape(1, 4, 2))


def f_dstack_2d(x):
    m = np.outer(x, x[:3])
    parts = [m, m ** 2, np.cos(m)]
    return np.sum(np.dstack(parts) ** 2 * np.arange(36.0).reshape(4, 3, 3))


def f_hstack_list(x):
    xs = []
    for i in range(3):
        xs.append(x * (i + 1.0))
    return np.sum(np.hstack(xs) ** 2 * np.arange(12.0))


def f_vstack_list(x):
    rows = []
    for i in range(3):
        rows.append(np.sin(x * (i + 1.0)))
    return np.sum(np.vstack(rows) ** 3 * np.arange(12.0).reshape(3, 4))


def f_hstack_2d_list(x):
    m = np.outer(x, x)
    blocks = [m, m ** 2]
    return np.sum(np.hstack(blocks) * np.arange(32.0).reshape(4, 8)) + np.sum(np.vstack(blocks) ** 2)


def f_positional_axes(x):
    m = np.outer(x, x[:3])
    return (np.sum(np.concatenate([m, m ** 2], 1) ** 2 * np.arange(24.0).reshape(4, 6))
            + np.sum(np.stack([m, np.sin(m)], 2) ** 3) + np.sum(np.stack((x, x ** 2), -1) * W8))


def f_exp2(x):
    return np.sum(np.exp2(x) * x)


def f_kron(x):
    return np.sum(np.kron(x, x[:3] ** 2) ** 2 * np.arange(12.0))


def f_kron_2d(x):
    b = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    return np.sum(np.kron(np.outer(x[:2], x[2:]), b) ** 2 * np.arange(24.0).reshape(6, 4)) + np.sum(
        np.kron(b, x) ** 2)


# --------------------------------------------------------------------------------- along an axis
IDX = np.array([[2], [0], [1], [1]])


def f_take_along_axis(x):
    m = np.outer(x, x[:3])
    order = np.argsort(m, axis=1)
    return (np.sum(np.take_along_axis(m, IDX, axis=1) ** 2 * np.arange(4.0)[:, None])
            + np.sum(np.take_along_axis(m, order, axis=1) * np.arange(12.0).reshape(4, 3))
            + np.sum(np.take_along_axis(x, np.array([3, 0, 0]), axis=0) ** 3)
            + np.sum(np.take_along_axis(m, np.array([1, 5, 11]), axis=None) ** 2))


def f_put_along_axis(x):
    y = np.zeros((2, 3))
    np.put_along_axis(y, np.array([[0], [2]]), x[:2, None] * 3.0, axis=1)
    z = np.outer(x[:2], x[1:])
    np.put_along_axis(z, np.array([[1, 1], [0, 2]]), x[2:] ** 2, axis=1)
    return np.sum(y ** 2 * np.arange(6.0).reshape(2, 3)) + np.sum(z ** 2 * np.arange(6.0).reshape(2, 3))


# ------------------------------------------------------------------------ interp, convolve, correlate
XP = np.array([-1.0, 0.0, 1.0, 2.0])
FP = np.array([0.0, 1.0, 3.0, 2.0])
AT = np.array([-2.0, 0.25, 0.6, 1.5, 3.0])


def f_interp_x(x):
    return np.sum(np.interp(x * 1.5, XP, FP) ** 2) + np.interp(x[0], XP, FP) * x[1]


def f_interp_fp(x):
    return np.sum(np.interp(AT, XP, x * FP + x) ** 2)


def f_interp_xp(x):
    return np.sum(np.interp(AT, np.cumsum(np.exp(x)) - 2.0, FP) ** 2)


def f_convolve(x):
    return (np.sum(np.convolve(x, x[:3] ** 2) ** 2 * np.arange(6.0))
            + np.sum(np.convolve(x[:2], np.sin(x), mode="same") ** 2 * np.arange(4.0))
            + np.sum(np.convolve(x, x[1:3], "valid") ** 3))


def f_correlate(x):
    return (np.sum(np.correlate(x, x[:3] ** 2) ** 2)
            + np.sum(np.correlate(x[:2], np.sin(x), mode="same") ** 2 * np.arange(4.0))
            + np.sum(np.correlate(x[:3], np.sin(x), "full") ** 2 * np.arange(6.0))
            + np.sum(np.correlate(np.sin(x), x[:3], "same") ** 2 * np.arange(4.0)))


# --------------------------------------------------------------------------------- special functions
def f_math_special(x):
    return (math.lgamma(x[0] * x[0] + 1.0) * x[1] + math.lgamma(x[2] - 2.0)
            + math.gamma(x[0] * x[0] + 1.0) * x[3] + math.gamma(x[2] - 2.0) + math.erf(x[0]) * x[1])


# -------------------------------------------------------------------------------------- linear algebra
def f_slogdet_index(x):
    k = np.outer(x, x) + np.eye(4)
    return np.linalg.slogdet(k)[1] + np.linalg.slogdet(k)[0] * x[0]


D4 = np.diag([1.0, 2.0, 3.5, 5.0])


def f_eigvalsh(x):
    s = np.outer(x, np.sin(x))
    return np.sum(np.linalg.eigvalsh(s + s.T + D4) ** 3 * np.arange(1.0, 5.0))


ALL = [f_empty_like, f_full, f_full_like, f_full_like_const, f_atleast, f_column_stack,
       f_column_stack_2d, f_dstack, f_dstack_2d, f_hstack_list, f_vstack_list, f_hstack_2d_list,
       f_positional_axes, f_exp2, f_kron, f_kron_2d, f_take_along_axis, f_put_along_axis, f_interp_x,
       f_interp_fp, f_interp_xp, f_convolve, f_correlate, f_math_special, f_slogdet_index, f_eigvalsh]


@pytest.mark.parametrize("f", ALL, ids=[f.__name__ for f in ALL])
def test_numpy_call_matches_differences(f):
    check_all_modes(f, X4.copy())


def test_values_are_numpy_s():
    """The compositions compute what NumPy computes (the value the gradient is taken of)."""
    x = X4
    for f in ALL:
        value, _ = sg.value_and_grad(f)(x.copy())
        assert value == pytest.approx(f(x.copy()), rel=1e-12, abs=1e-12), f.__name__


def test_eigh_on_the_tape_along_symmetric_directions():
    """eigh's two primitives (eigvalsh, eigvecsh) on the eager tape: the compiler does not yet split the
    pair (see r_eigh); the gradient is symmetric, checked along symmetric perturbations."""
    a = np.array([[2.0, 0.5, 0.1], [0.5, 1.0, -0.3], [0.1, -0.3, 3.0]])

    def f(m):
        w, v = np.linalg.eigh(m)
        return w[1] * 2.0 + v[0, 2] ** 2 + np.sum(w ** 2)

    t = sg.tensor(a, requires_grad=True)
    w, v = sg.linalg.eigh(t)
    (w[1] * 2.0 + v[0, 2] ** 2 + (w ** 2).sum()).backward()
    grad = t.grad.numpy()
    assert np.allclose(grad, grad.T)
    rng = np.random.default_rng(3)
    for _ in range(3):
        u = rng.standard_normal((3, 3))
        u = u + u.T
        want = (f(a + 1e-6 * u) - f(a - 1e-6 * u)) / 2e-6
        assert np.sum(grad * u) == pytest.approx(want, rel=1e-6, abs=1e-8)


def test_closed_forms():
    x = X4
    assert np.allclose(sg.grad(lambda_free_exp2)(x), np.log(2.0) * np.exp2(x))
    # d/dx sum(kron(x, c)) = sum(c) for every x_i
    assert np.allclose(sg.grad(lambda_free_kron)(x), np.full(4, 6.0))
    # lgamma' = digamma: psi(1) = -Euler's gamma, psi'(1) = pi^2 / 6
    assert sg.grad(lambda_free_lgamma)(1.0) == pytest.approx(-0.5772156649015329, abs=1e-12)
    assert sg.hessian(lambda_free_lgamma)(1.0) == pytest.approx(math.pi ** 2 / 6, abs=1e-10)
    # interp inside a segment: slope (fp[i+1] - fp[i]) / (xp[i+1] - xp[i]); outside: 0
    assert np.allclose(sg.grad(lambda_free_interp)(np.array([-3.0, 0.5, 1.5, 9.0])), [0.0, 2.0, -1.0, 0.0])


def lambda_free_exp2(x):
    return np.sum(np.exp2(x))


def lambda_free_kron(x):
    return np.sum(np.kron(x, np.array([1.0, 2.0, 3.0])))


def lambda_free_lgamma(x):
    return math.lgamma(x)


def lambda_free_interp(x):
    return np.sum(np.interp(x, XP, FP))


# ------------------------------------------------------------------------------- refused, by name
def r_slogdet_attribute(x):
    return np.linalg.slogdet(np.outer(x, x) + np.eye(4)).logabsdet


def r_column_stack_literal(x):
    return np.sum(np.column_stack([x, x ** 2]))


def r_fft(x):
    return np.sum(np.abs(np.fft.fft(x)) ** 2)


def r_svd(x):
    return np.sum(np.linalg.svd(np.outer(x, x) + D4)[1])


def r_qr(x):
    q, r = np.linalg.qr(np.outer(x, x) + np.eye(4))
    return np.sum(r)


def r_eigh(x):
    w, v = np.linalg.eigh(np.outer(x, x) + D4)
    return np.sum(w) + np.sum(v[:, 0] ** 2)


def r_eigh_index(x):
    return np.linalg.eigh(np.outer(x, x) + D4)[0][-1]


def r_interp_period(x):
    return np.sum(np.interp(x, XP, FP, period=3.0))


@pytest.mark.parametrize("f", [r_slogdet_attribute, r_fft, r_svd, r_qr, r_eigh, r_eigh_index,
                               r_column_stack_literal])
def test_decompositions_and_fft_indexed_unpacked_or_by_attribute(f):
    x = X4.copy()
    want = numeric_grad(f, [x], 0)
    np.testing.assert_allclose(sg.grad(f)(x), want, rtol=1e-5, atol=1e-7)
    assert sg.jvp(f)(x, np.ones(4))[1] == pytest.approx(float(np.sum(want)), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("f", [r_interp_period])
def test_not_yet_taken_is_a_transform_error(f):
    with pytest.raises(sg.TransformError):
        sg.grad(f)(X4.copy())


# ------------------------------------------------------------- np.concatenate of a list variable
def concat_pieces_of_two_lengths(x):
    parts = [x[:1], x[1:] ** 2]
    return np.sum(np.concatenate(parts) ** 3)


def concat_columns_built_in_a_loop(A):
    cols = []
    for j in range(3):
        cols.append(A * (j + 1.0))
    B = np.concatenate(cols, axis=1)
    return np.sum(np.sin(B) * B)


def concat_positional_axis_and_list_read_again(A):
    cols = []
    for j in range(3):
        cols.append(A[:, :1] * j)
    B = np.concatenate(cols, 1)
    return np.sum(B ** 2) + np.sum(cols[1] ** 3)


def concat_grown_in_a_while_loop(x):
    parts = []
    k = 1
    while k < 4:
        parts.append(x[:k] * k)
        k += 1
    return np.sum(np.concatenate(parts) ** 2)


def cat_with_dim(A):
    cols = [A, A ** 2]
    return (sg.cat(cols, dim=-1) ** 2).sum()   # torch.cat with `import srcgrad as torch`


@pytest.mark.parametrize("f, shape", [
    (concat_pieces_of_two_lengths, (4,)), (concat_columns_built_in_a_loop, (3, 2)),
    (concat_positional_axis_and_list_read_again, (3, 2)), (concat_grown_in_a_while_loop, (4,)),
    (cat_with_dim, (2, 3))])
def test_concatenate_of_a_list_variable(f, shape):
    """np.concatenate(parts, axis) / torch.cat(parts, dim) of a list held in a name (a literal, or built
    with append, pieces of different lengths): the join, its adjoint cutting the cotangent back at the
    pieces' lengths; every mode against differences."""
    x = np.random.default_rng(7).normal(size=shape)
    check_all_modes(f, x)


# ------------------------------------------------------------------- builtin sum of a list variable
def sum_of_a_filtered_comprehension(x):
    return sum([v * 2 for v in x if v > 0.5]) + x[0]


def sum_of_pieces_that_broadcast(x):
    parts = [x, x[0] * 2]
    return np.sum(sum(parts) ** 2)


def sum_of_numbers_with_a_start(x):
    terms = []
    for i in range(3):
        terms.append(math.sin(x[i]) * x[i])
    return sum(terms, 1.0) * x[3]


def sum_of_an_empty_list(x):
    parts = []
    return np.sum(x) + sum(parts)


@pytest.mark.parametrize("f", [sum_of_a_filtered_comprehension, sum_of_pieces_that_broadcast,
                               sum_of_numbers_with_a_start, sum_of_an_empty_list])
def test_builtin_sum_of_a_list_variable_is_pythons(f):
    """Builtin sum(xs) of a list held in a name is Python's: start, then each item added (items that
    broadcast, an empty list giving start), not np.stack's equal shapes."""
    x = np.array([0.3, 0.7, 1.3, -0.4])
    check_all_modes(f, x)
    assert sg.grad(sum_of_a_filtered_comprehension)(np.array([0.1, 0.2])) == pytest.approx([1.0, 0.0])


def cat_literal_with_a_positional_dim(x):
    A = x[:, None] * np.arange(1.0, 3.0)
    return np.sum(sg.cat([A, A * 2], 1) ** 2)   # torch.cat([a, b], 1)


def test_torch_cat_with_a_positional_dim():
    check_all_modes(cat_literal_with_a_positional_dim, np.array([0.5, -1.0, 2.0]))


def _total_of(ps):
    return np.sum(ps[0] * ps[1])


def _concatenated(ps):
    return np.concatenate(ps)


def test_lists_srcgrad_cannot_follow_are_refused_clearly():
    """A list built with append passed to a helper (was an internal AttributeError at run time), and
    np.concatenate of a helper's parameter (was a message about an internal adapter): TransformErrors
    naming the line and what to write."""

    def appended_then_passed(x):
        ps = []
        for k in range(1, 3):
            ps.append(x * k)
        return _total_of(ps)

    def concatenates_a_parameter(x):
        return np.sum(_concatenated([x, x ** 2]) ** 2)

    x = np.array([1.0, 2.0, 3.0])
    with pytest.raises(sg.TransformError, match="built with append, is passed to _total_of"):
        sg.grad(appended_then_passed)(x)
    with pytest.raises(sg.TransformError, match="np.concatenate"):
        sg.grad(concatenates_a_parameter)(x)
    # a literal list passed to a helper is followed
    np.testing.assert_allclose(sg.grad(lambda v: _total_of([v * 1.0, v * 2.0]))(x), 4 * x)


def f_list_items_in_joins(x):
    # a list written inside the sequence is the array NumPy makes of it
    return (np.sum(np.concatenate([x, [1.0, -2.0]]) ** 2 * np.arange(6.0))
            + np.sum(np.hstack([x, [0.5]]) ** 3) + np.sum(np.vstack((x, [1.0, 2.0, 3.0, x[0]])) ** 2)
            + np.sum(np.stack([x ** 2, [0.0, 1.0, x[1], 2.0]], axis=1) * np.arange(8.0).reshape(4, 2)))


def test_list_written_inside_a_join_is_an_array():
    check_all_modes(f_list_items_in_joins, np.array([0.3, -0.7, 1.1, 0.4]))


def _list_operands(x):
    xs = []
    for i in range(3):
        xs.append(x[i] * 2.0)
    return (np.linalg.norm([x[0], x[1], 3.0]) + np.dot([x[0], x[1]], [x[2], 2.0]) + np.std([x[0], x[1], x[2]])
            + np.var(xs) + np.linalg.norm(xs) + np.sum(np.cumsum([x[0], x[1]])) + np.max([x[0], x[1]])
            + np.sum(np.maximum([x[0], 0.1], x[1:])))


def test_a_list_where_numpy_takes_an_array_is_that_array():
    # NumPy reads a list passed as an array_like parameter as np.array of it (srcgrad did for np.sum and a
    # few reductions only; np.linalg.norm([a, b]), np.dot, np.std, np.cumsum gave internal errors)
    check_all_modes(_list_operands, np.array([0.3, -0.7, 0.5]))


_B35 = np.arange(15.0).reshape(3, 5) / 10.0
_C435 = np.cos(np.arange(24.0)).reshape(2, 3, 4)


def _einsum_ellipsis(a):
    # '...' stands for the leading axes, as many as each operand has (written out at run time)
    return (np.sum(np.einsum("...ij,jk->...ik", a, _B35) ** 2)
            + np.sum(np.sin(np.einsum("...ij,...jk->...ik", a, _C435)))
            + np.sum(np.einsum("...ii->...i", a[:, :, :2]) ** 3) + np.sum(np.einsum("i...,i...", a, a) ** 2))


def test_einsum_with_an_ellipsis():
    check_all_modes(_einsum_ellipsis, np.sin(np.arange(12.0)).reshape(2, 2, 3) + 0.5)


@pytest.mark.parametrize("n, axis", [(0, -1), (2, -1), (3, 1), (2, 0)])
def test_diff_of_any_order(n, axis):
    def f(x):
        return np.sum(np.diff(x, n, axis=axis) ** 2 * 1.5) + np.sum(np.diff(x, n=n) ** 3)

    check_all_modes(f, np.sin(np.arange(12.0)).reshape(3, 4))


def test_diff_of_a_negative_order_is_numpys_error():
    with pytest.raises(ValueError, match="order must be non-negative"):
        sg.grad(lambda x: np.sum(np.diff(x, -1)))(np.ones(4))


_SPACING = np.array([0.0, 0.5, 1.5, 2.0])


def _append_trapezoid_fsum(y):
    xs = []
    for i in range(3):
        xs.append(y[i, i] * 2.0)
    return (np.sum(np.append(y, [1.0, y[0, 0]]) ** 2) + np.sum(np.append(y, y[:1] * 2.0, axis=0) ** 3)
            + np.sum(np.trapezoid(y ** 2)) + np.sum(np.trapezoid(y ** 2, dx=0.3, axis=0))
            + np.sum(np.trapezoid(y ** 2, _SPACING)) + np.sum(np.trapezoid(y, y * y, axis=1))
            + math.fsum([y[0, 0], y[1, 1] ** 2]) + math.fsum(xs))


def test_append_trapezoid_and_fsum():
    check_all_modes(_append_trapezoid_fsum, np.sin(np.arange(12.0)).reshape(3, 4) + 1.0)


@pytest.mark.parametrize("ord_", ["nuc", 2, -2, 1, -1, np.inf, -np.inf])
def test_matrix_norms_beyond_frobenius(ord_):
    # np.linalg.norm's matrix norms over two axes (they were refused: only 'fro')
    def f(a):
        weights = np.arange(2.0)[:, None, None]
        return (np.sum(np.linalg.norm(a, ord=ord_, axis=(-2, -1)) ** 2)
                + np.sum(np.linalg.norm(a, ord=ord_, axis=(2, 1), keepdims=True) * weights))

    a = np.cos(np.arange(24.0)).reshape(2, 3, 4) + np.eye(3, 4)
    check_all_modes(f, a, hessian=ord_ in (1, np.inf))


def _ellipsis_to_nowhere(z):
    return np.einsum("...i,...i->", z, z)


def test_einsum_ellipsis_axes_with_nowhere_to_go_are_numpys_error():
    with pytest.raises(ValueError, match="no '...' ellipsis provided"):
        sg.grad(_ellipsis_to_nowhere)(np.ones((2, 3)))
