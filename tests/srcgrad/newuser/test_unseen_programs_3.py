"""A third new user's programs (NumPy array code, Python control flow, pytrees, classes, higher order,
the eager tape), written without the repo's tests, each checked against central finite differences, a
closed form, or PyTorch / JAX as oracles. Only passing programs live here."""

import inspect
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pytest

import srcgrad as sg
import srcgrad as torch

from .harness import check, check_vjp, fd_leaf, normal_sampler

rn = normal_sampler(31337)


def fd(f, x, h=1e-6):
    return fd_leaf(f, x, (), h)


# ----------------------------------------------------------------------------------------------------
# NumPy array code


def log_softmax_nll(x):
    z = x - np.max(x, 1, keepdims=True)
    lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(z - lse)


def masked_relu_weighted(x):
    y = x.copy()
    y[y < 0] = 0.0
    return np.sum(y ** 2 * np.arange(1, x.size + 1).reshape(x.shape))


def scatter_hidden(W, x):
    h = np.tanh(W @ x)
    out = np.zeros(3)
    np.add.at(out, [0, 1, 1, 2, 0], h)
    return out @ out


def views_of_reshape(x):
    a = x.reshape(3, 4)
    b = a.T
    c = b[1:3, ::2]
    return np.sum(c * c) + np.prod(a[0])


def scans(x):
    c = np.cumsum(x)
    d = np.diff(x ** 2)
    p = np.cumprod(1 + 0.1 * x)
    return np.sum(c * c) + np.sum(d) + p[-1]


def sorted_weights(x):
    s = np.sort(x)
    i = np.argmax(x)
    return np.sum(s * np.arange(len(x))) + x[i] ** 2


def test_softmax_mask_scatter_views_scans_sort():
    check(log_softmax_nll, rn(3, 4))
    check(log_softmax_nll, rn(2, 5))
    check(masked_relu_weighted, rn(2, 3))
    check(scatter_hidden, rn(5, 4), rn(4), argnums=(0, 1))
    check(views_of_reshape, rn(12))
    check(scans, rn(6))
    check(sorted_weights, rn(7))


def einsum_trace(A, B):
    return np.einsum('ij,jk,ki->', A, B, A.T @ A)


def linalg_mix(A, b):
    x = np.linalg.solve(A, b)
    return np.linalg.norm(x) + np.log(abs(np.linalg.det(A))) + np.trace(np.linalg.inv(A))


def top_eig(S):
    M = S + S.T
    w, V = np.linalg.eigh(M)
    return w[-1] + np.sum(V[:, 0] ** 4)


def half_logdet_chol(X):
    M = X @ X.T + np.eye(3)
    L = np.linalg.cholesky(M)
    return np.sum(np.log(np.diag(L)))


def slogdet_power_pinv(A):
    return np.linalg.slogdet(A)[1] + np.linalg.matrix_power(A, 3).sum() + np.linalg.pinv(A).sum()


def test_einsum_and_linalg():
    check(einsum_trace, rn(3, 3), rn(3, 3), argnums=(0, 1))
    check(linalg_mix, rn(4, 4) + 4 * np.eye(4), rn(4), argnums=(0, 1))
    check(top_eig, rn(4, 4))
    X = rn(3, 3)
    check(half_logdet_chol, X)
    M = X @ X.T + np.eye(3)
    np.testing.assert_allclose(sg.grad(half_logdet_chol)(X), np.linalg.solve(M, X), rtol=1e-8)
    check(slogdet_power_pinv, rn(3, 3) + 3 * np.eye(3))


def einsum_spellings(A, B):
    return (np.einsum('ii', A[0]) + np.einsum('ii->', A[1]) + np.einsum('bij->', A * B)
            + np.einsum('ij,ij', A[0], B[0]) + np.sum(np.einsum('ii->i', A[0]) ** 2))


def test_einsum_implicit_and_trace_spellings():
    check(einsum_spellings, rn(2, 3, 3), rn(2, 3, 3), argnums=(0, 1))


def piecewise(x):
    return (np.sum(np.where(x > 0, x ** 2, np.sin(x))) + np.sum(np.clip(x, -0.5, 0.5))
            + np.sum(np.maximum(x, 0.2 * x)))


def standardize_project(X, w):
    m = X.mean(axis=0)
    s = X.std(0)
    Z = (X - m) / s
    return np.mean((Z @ w) ** 2)


def fancy_reads(x):
    idx = np.array([2, 0, 2, 1])
    return np.sum(x[idx] ** 2 * x[[1, 1, 0, 3]])


def var_norm_axes(x):
    return np.var(x, axis=1, ddof=1).sum() + np.linalg.norm(x, axis=0).sum() + np.abs(x).max()


def pairwise_rbf(x):
    a = x[:, None] - x[None, :]
    return np.sum(np.exp(-a ** 2))


def reductions_tuple_axes(x):
    return (np.mean(x, axis=(0, 2)).sum() + np.max(x, axis=-1, keepdims=True).sum() + np.min(x, 1).sum()
            + x.sum(0, keepdims=True).prod())


def test_elementwise_reductions_broadcasting():
    check(piecewise, rn(8))
    check(standardize_project, rn(6, 3), rn(3), argnums=(0, 1))
    check(fancy_reads, rn(4))
    check(var_norm_axes, rn(3, 4))
    check(pairwise_rbf, rn(5))
    check(pairwise_rbf, rn(2))
    check(reductions_tuple_axes, rn(2, 3, 4))


def norm_orders(x):
    return np.linalg.norm(x, ord=1) + np.linalg.norm(x, np.inf) + np.linalg.norm(x.reshape(2, 2), 'fro')


def structured(x):
    return np.sum(np.tril(np.outer(x, x), -1)) + np.trace(np.kron(np.diag(x), np.ones((2, 2))))


def shifts(x):
    z = np.pad(x, 2)
    return np.sum(np.roll(z, 3) * np.arange(z.size)) + np.tile(x, 2) @ np.repeat(x, 2)


def smooth_pairs(x):
    return np.logaddexp(x, 0.3).sum() + np.hypot(x, 1.0).sum()


def odd_elementwise(x):
    return (np.sum(np.abs(x) ** 1.5) + np.sum(np.sign(x) * x) + np.sum(np.floor(x) * x)
            + np.sum(np.expm1(x) / (1 + x ** 2)))


def dot_family(x):
    return np.dot(x, x) + np.inner(x, x) + np.vdot(x, x) + np.matmul(x, x) + np.tensordot(x, x, axes=1)


def test_more_numpy_calls():
    check(norm_orders, rn(4))
    check(structured, rn(3))
    check(shifts, rn(3))
    check(smooth_pairs, rn(5))
    check(odd_elementwise, rn(5))
    check(dot_family, rn(4))


def gather_calls(x):
    idx = np.nonzero(x > 0)[0]
    w = np.where(x < 0)
    return (np.sum(x[idx] ** 2) + np.sum(x[w]) + np.take(x, [0, 2]).sum()
            + np.take_along_axis(x[None], np.array([[1, 1]]), axis=1).sum())


def grid(x):
    X, Y = np.meshgrid(x, x[:2])
    return np.sum(X * Y ** 2)


def weighted_stats(x):
    return (np.average(x, weights=np.arange(1., 5.)) + np.std(x, ddof=1, keepdims=True)[0] + np.sum(abs(x))
            + np.mean(x, dtype=np.float64))


def interp_poly(y):
    t = np.linspace(0, 1, len(y))
    return np.interp(0.33, t, y) + np.polyval(y, 0.7)


def mod_floordiv(x):
    y = x % 1.0 + x // 0.5 + np.fmod(x, 0.7)
    return np.sum(y * x)


def test_gathers_grids_stats_interp():
    x = np.array([0.4, -1.2, 0.9, -0.3, 1.7])
    check(gather_calls, x)
    check(grid, rn(3))
    check(weighted_stats, rn(4))
    check(interp_poly, rn(5))
    check(mod_floordiv, np.array([0.31, -1.27, 0.93, 2.11]))


def bool_mask_ops(x):
    m = x > 0
    return np.sum(x[m]) + np.count_nonzero(m) * np.sum(x[~m] ** 2) + np.any(m) * x.mean()


def ellipsis_newaxis(x):
    return np.sum(x[..., 0] * x[:, np.newaxis, 1]) + x[-1, -1]


def test_masks_ellipsis_newaxis():
    check(bool_mask_ops, rn(6))
    check(ellipsis_newaxis, rn(3, 2))


# ----------------------------------------------------------------------------------------------------
# in-place writes, out=, views (the caller's arrays checked unchanged inside check)


def ema_writes(x):
    y = np.empty_like(x)
    y[0] = x[0]
    for i in range(1, len(x)):
        y[i] = 0.9 * y[i - 1] + x[i]
    return np.sum(y ** 2)


def out_and_strided(x):
    y = np.zeros_like(x)
    np.exp(x, out=y)
    y *= 2
    y[::2] += x[::2]
    return y.sum()


def overlapping_sub(x):
    a = x.copy()
    a[1:] -= a[:-1]
    return np.sum(a ** 2)


def add_at_2d_and_diag(x):
    y = np.zeros((3, 3))
    np.add.at(y, (np.array([0, 1, 1]), np.array([2, 2, 2])), x)
    y[np.diag_indices(3)] = x
    return np.sum(y @ y)


def positional_out(x):
    out = np.empty(x.shape)
    np.multiply(x, x, out=out)
    np.sqrt(out + 1, out)
    return out.sum()


def masked_and_fancy_aug(x):
    y = x.copy()
    y[y > 0.5] *= 2.0
    y[[0, 2]] += 1.0
    return np.sum(y ** 3)


def fancy_dup_aug(x):
    y = x.copy()
    y[[0, 0, 1]] += x[:3]
    return np.sum(y ** 2)


def slice_assign(x):
    a = np.zeros(5)
    a[1:4] = x
    a[2] = a[1] * a[3]
    return np.sum(np.cumsum(a))


def copy_then_sort(x):
    y = np.sort(x.copy())
    z = x.copy()
    z.sort()
    return np.sum(y * np.arange(3)) + np.sum(z ** 3)


def pow_and_matmul_aug(x):
    y = x ** 2
    y **= 0.5
    y @= np.eye(3) * 2.0
    return y.sum()


def test_in_place_writes_on_locals():
    check(ema_writes, rn(6))
    check(out_and_strided, rn(6))
    check(out_and_strided, rn(3, 2))
    check(overlapping_sub, rn(5))
    check(add_at_2d_and_diag, rn(3))
    check(positional_out, rn(4))
    check(masked_and_fancy_aug, np.array([0.9, -0.2, 0.7, 0.1, 1.3]))
    check(fancy_dup_aug, rn(4))
    check(slice_assign, rn(3))
    check(copy_then_sort, rn(3))
    check(pow_and_matmul_aug, np.abs(rn(3)) + 0.1)


def write_into_argument(x):
    x[0] = 5.0 * x[1]
    x *= 2.0
    return np.sum(x ** 2)


def asarray_alias_then_add(x):
    y = np.asarray(x)
    y += 1.0
    return np.sum(y ** 2)


def test_writes_into_the_callers_array_compute_a_new_one():
    x = rn(3)
    x0 = x.copy()
    g = sg.grad(write_into_argument)(x)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_allclose(g, fd(lambda z: write_into_argument(z.copy()), x0), rtol=1e-6)
    g = sg.grad(asarray_alias_then_add)(x)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_allclose(g, 2 * (x0 + 1))


def gauss_elim_det(X):
    A = X.copy()
    n = A.shape[0]
    for k in range(n - 1):
        for i in range(k + 1, n):
            f = A[i, k] / A[k, k]
            A[i, k:] -= f * A[k, k:]
    return np.prod(np.diag(A))


def row_normalize(X):
    A = X.copy()
    n = A.shape[0]
    for k in range(n):
        A[k, k:] *= 1.0 / A[k, k]
        for i in range(k + 1, n):
            A[i, k:] -= A[i, k] * A[k, k:]
    return np.sum(A ** 2)


def recurrence_in_place(x):
    y = x.copy()
    for i in range(1, len(y)):
        y[i] += 0.5 * y[i - 1] * x[i]
    return y[-1]


def slice_updates_2d(X):
    Y = X.copy()
    Y[:, 1:] += Y[:, :-1] * X[:, 1:]
    Z = X.copy()
    Z[1:, :] -= X[0] * Z[:-1, :]
    return np.sum(Y ** 2) + np.sum(Z ** 2)


def test_row_operations_in_loops():
    X = rn(3, 3) + 3 * np.eye(3)
    np.testing.assert_allclose(sg.grad(gauss_elim_det)(X), np.linalg.det(X) * np.linalg.inv(X).T, rtol=1e-8)
    check(row_normalize, X)
    check(recurrence_in_place, rn(5))
    check(slice_updates_2d, rn(3, 3))


def early_slice_return(x):
    for i in range(len(x)):
        if x[i] > 1.0:
            return x[:i] * 2.0
    return x ** 2


def test_early_return_of_an_array_vjp_two_shapes():
    check_vjp(early_slice_return, np.array([0.3, 0.5, 1.5, 0.2]))
    check_vjp(early_slice_return, np.array([0.3, 0.5]))


# ----------------------------------------------------------------------------------------------------
# Python control flow on floats, helpers, closures


def cube_root_newton(x, tol=1e-8):
    y = x
    for _ in range(100):
        ny = y - (y ** 3 - x) / (3 * y ** 2)
        if abs(ny - y) < tol:
            return ny
        y = ny
    return y


def while_continue_break(a):
    s = 0.0
    k = 0
    while s < 10.0:
        k += 1
        if k % 3 == 0:
            continue
        s += a * k
        if k > 50:
            break
    return s * a


def while_true(x):
    s = 0.0
    n = 0
    while True:
        s += math.sin(x * n) / (n + 1)
        n += 1
        if n >= 10:
            break
    return s


def tuple_swap(x):
    a = x
    b = 0.0
    for _ in range(5):
        a, b = b + math.cos(a), a * 0.5
    return a + b


def test_float_loops():
    np.testing.assert_allclose(sg.grad(cube_root_newton)(8.0), 1 / 12.0, rtol=1e-6)
    np.testing.assert_allclose(sg.grad(cube_root_newton)(27.0), 1 / 27.0, rtol=1e-6)
    check(while_continue_break, 0.7)
    check(while_continue_break, 2.3)
    check(while_true, 0.4)
    check(tuple_swap, 0.4)


def helper_inner(u, scale=2.0):
    return scale * math.tanh(u)


def helper_outer(u, v):
    return helper_inner(u) * helper_inner(v, scale=v)


def helpers_kw(x, y):
    return helper_outer(x, y) + helper_inner(x * y, 0.5)


def math_zoo(x, y):
    return math.atan2(y, x) + math.hypot(x, y) + math.log(x) * math.sqrt(y) + math.pow(x, y) + x ** y


def test_helpers_defaults_math():
    check(helpers_kw, 0.3, 1.2, argnums=(0, 1))
    check(math_zoo, 1.3, 0.8, argnums=(0, 1))


SCALE = np.array([1.0, 2.0, 3.0])


def make_loss(c):
    def loss(w):
        return np.sum(c * SCALE * w ** 2)
    return loss


def stacked_list(x):
    ys = []
    for i in range(4):
        ys.append(np.sin(x * (i + 1)))
    a = np.stack(ys)
    b = np.array(ys)
    return np.sum(a * b[::-1]) + sum(ys).sum()


sq = lambda t: t * t  # noqa: E731


def lambdas(x):
    f = lambda u, k=3.0: k * sq(u)  # noqa: E731
    return np.sum(f(x)) + f(x[0], k=1.0)


def fact_pow(x, n):
    if n == 0:
        return 1.0
    return x * fact_pow(x, n - 1)


def recursion(x):
    return fact_pow(x, 4) + fact_pow(x, 2)


def nest_sin(x, n):
    if n == 0:
        return x
    return nest_sin(math.sin(x), n - 1)


def test_closures_lists_lambdas_recursion():
    check(make_loss(0.7), rn(3))
    check(stacked_list, rn(3))
    check(stacked_list, rn(2, 2))
    check(lambdas, rn(4))
    np.testing.assert_allclose(sg.grad(recursion)(1.5), 4 * 1.5 ** 3 + 3.0)
    check(lambda x: nest_sin(x, 300), 0.5, jvp=False)


def power_sum(x, n):
    return np.sum(x ** n)


def iterate_rows(x):
    t = 0.0
    for v in x:
        t += v * v
    return t


def enum_zip(x):
    total = 0.0
    for i, (a, b) in enumerate(zip(x[:-1], x[1:])):  # noqa: B905 -- a user program as written
        total = total + (i + 1) * (b - a) ** 2
    return total


def branch_on_sum(x):
    if x.sum() > 0:
        y = x * 2
    else:
        y = -x
    return (y ** 2).sum()


def rows_with_branch(x):
    acc = np.zeros(2)
    for row in x:
        if row[0] > 0:
            acc = acc + row
        else:
            acc -= row * 0.5
    return acc @ acc


def comprehension_builtins(x):
    vals = [x[i] * x[i + 1] for i in range(len(x) - 1) if i % 2 == 0]
    return sum(vals) + max(x[0], x[1]) + min(np.abs(x))


def cond_expr(x):
    return np.sum(x if x.sum() > 0 else -x) + (x[0] if 0 < x[1] < 1 else x[2])


def data_trip_count(x):
    n = int(np.floor(x.sum() * 3)) % 4 + 1
    y = x
    for _ in range(n):
        y = np.sin(y) + x
    return y.sum()


def test_structure_on_arrays():
    check(power_sum, rn(3), 3)
    check(iterate_rows, rn(4))
    check(enum_zip, rn(5))
    check(branch_on_sum, np.abs(rn(3)))
    check(branch_on_sum, -np.abs(rn(3)))
    check(rows_with_branch, rn(5, 2))
    check(comprehension_builtins, rn(6))
    check(cond_expr, np.array([0.3, 0.5, -0.2]))
    check(cond_expr, np.array([-0.3, 1.5, -0.2]))
    for x in (np.array([0.1, 0.2, 0.05]), np.array([0.4, 0.3, 0.2]), np.array([-0.5, 0.1, 0.2])):
        check(data_trip_count, x)


# ----------------------------------------------------------------------------------------------------
# pytrees and objects


def mlp_dict_of_tuples(params, x):
    W1, b1 = params['l1']
    W2, b2 = params['l2']
    h = np.tanh(x @ W1 + b1)
    return np.mean((h @ W2 + b2) ** 2)


class Model:
    def __init__(self, W, b):
        self.W = W
        self.b = b

    def feat(self, x):
        return np.maximum(x @ self.W + self.b, 0.0)

    def __call__(self, x):
        return self.feat(x).sum(axis=-1)


def model_loss(m, x):
    return np.sum(m(x) ** 2)


def model_loss_x(x, m):
    return np.sum(m(x) ** 2)


class Params(NamedTuple):
    w: np.ndarray
    b: float


def namedtuple_loss(p, x):
    return np.sum(np.tanh(x @ p.w + p.b) ** 2)


@dataclass
class Cfg:
    a: np.ndarray
    k: float = 1.5


def dataclass_loss(c):
    return np.sum(np.exp(-c.k * c.a ** 2))


def chain_of_layers(ps, x):
    for W in ps:
        x = np.tanh(W @ x)
    return np.sum(x)


def float_tuple(theta):
    a, b = theta
    return a ** 2 * b + math.exp(b)


def dict_values(x):
    d = {}
    d['a'] = x ** 2
    d['b'] = np.cos(x)
    return sum(v.sum() for v in d.values())


def test_pytrees_and_objects():
    params = {'l1': (rn(3, 4), rn(4)), 'l2': (rn(4, 2), rn(2))}
    check(mlp_dict_of_tuples, params, rn(5, 3))
    check(model_loss, Model(rn(3, 3), rn(3)), rn(4, 3))
    check(model_loss_x, rn(4, 3), Model(rn(3, 3), rn(3)))
    check(namedtuple_loss, Params(rn(3), 0.2), rn(4, 3))
    check(dataclass_loss, Cfg(rn(3)))
    check(chain_of_layers, [rn(3, 3) for _ in range(3)], rn(3))
    check(float_tuple, (0.4, 1.1))
    check(dict_values, rn(3))


def kw_only(x, *, scale=1.0, shift=0.0):
    return np.sum((scale * x + shift) ** 2)


def none_default(x, y=None):
    if y is None:
        y = x
    return np.sum(x * y)


def string_mode(x, mode):
    if mode == 'sq':
        return np.sum(x ** 2)
    return np.sum(np.sin(x))


def int_loop(x, n):
    s = 0.0
    for i in range(n):
        s = s + x ** i
    return s


def test_argument_conventions_and_variants():
    x = rn(3)
    np.testing.assert_allclose(sg.grad(kw_only)(x, scale=2.0, shift=1.0), 4 * (2 * x + 1))
    np.testing.assert_allclose(sg.grad(kw_only)(x), 2 * x)
    y = rn(3)
    np.testing.assert_allclose(sg.grad(none_default)(x), 2 * x)
    np.testing.assert_allclose(sg.grad(none_default)(x, y), y)
    np.testing.assert_allclose(sg.grad(none_default, argnums=1)(x, y), x)
    g = sg.grad(string_mode)
    np.testing.assert_allclose(g(x, 'sq'), 2 * x)
    np.testing.assert_allclose(g(x, 'sin'), np.cos(x))
    np.testing.assert_allclose(g(x, 'sq'), 2 * x)
    g = sg.grad(int_loop)
    for n in (0, 1, 3, 5):
        np.testing.assert_allclose(g(2.0, n), sum(i * 2.0 ** (i - 1) for i in range(1, n)))


K = 2.0


def uses_global_k(x):
    return np.sum(K * x ** 2)


def test_state_read_at_every_call():
    global K
    g = sg.grad(uses_global_k)
    x = np.ones(2)
    try:
        np.testing.assert_allclose(g(x), 4 * x)
        K = 3.0
        np.testing.assert_allclose(g(x), 6 * x)
        K = np.array([1.0, 5.0])
        np.testing.assert_allclose(g(x), 2 * K * x)
    finally:
        K = 2.0

    def f(x, p=2.0):
        return x ** p
    gf = sg.grad(f)
    np.testing.assert_allclose(gf(3.0), 6.0)
    f.__defaults__ = (3.0,)
    np.testing.assert_allclose(gf(3.0), 27.0)

    scale = [1.0]
    c = np.array([1.0, 2.0])

    def h(x):
        return scale[0] * np.sum(c * x ** 2)
    gh = sg.grad(h)
    np.testing.assert_allclose(gh(x), 2 * c * x)
    scale[0] = 4.0
    c[0] = 10.0
    np.testing.assert_allclose(gh(x), 8 * np.array([10.0, 2.0]) * x)


def float_values(x):
    return float(np.sum(x ** 2)) * 2 + np.sum(x).item()


def cube_sum(x):
    return np.sum(x ** 3)


def test_dtypes_scalars_empty_and_zero_d():
    check(float_values, rn(3))
    x32 = rn(5).astype(np.float32)
    g = sg.grad(lambda x: np.sum(x * x))(x32)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * x32, rtol=1e-6)
    g = sg.grad(cube_sum)
    np.testing.assert_allclose(g(np.array(2.0)), 12.0)
    assert np.shape(g(np.array(2.0))) == ()
    assert g(np.zeros(0)).shape == (0,)
    np.testing.assert_allclose(g(np.ones((2, 3))), 3 * np.ones((2, 3)))
    np.testing.assert_allclose(g(2.5), 3 * 2.5 ** 2)
    np.testing.assert_allclose(g(np.float64(2.0)), 12.0)
    np.testing.assert_allclose(g(np.float32(2.0)), 12.0)
    assert sg.hessian(lambda z: np.sum(z ** 2))(np.zeros((0, 3))).shape == (0, 3, 0, 3)


def f64_const_times_f32(x):
    return np.sum(np.ones(3) * x ** 2)


def test_float32_argument_with_float64_constant_matches_numpy_value():
    x = rn(3).astype(np.float32)
    v, g = sg.value_and_grad(f64_const_times_f32)(x)
    assert np.asarray(v).dtype == f64_const_times_f32(x).dtype
    np.testing.assert_allclose(v, f64_const_times_f32(x), rtol=1e-12)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-6)


# ----------------------------------------------------------------------------------------------------
# transforms and higher order


def sin_x2(x):
    return np.sum(np.sin(x) * x ** 2) + np.prod(x)


def test_hessian_jacobian_of_grad_hvp_two_shapes_and_source():
    x = rn(4)
    H = sg.hessian(sin_x2)(x)
    np.testing.assert_allclose(H, fd(sg.grad(sin_x2), x, 1e-5), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sg.jacobian(sg.grad(sin_x2))(x), H, rtol=1e-8, atol=1e-10)
    v = rn(4)
    hv = sg.hvp(sin_x2)(x, v)[1]
    np.testing.assert_allclose(hv, H @ v, rtol=1e-8, atol=1e-10)
    x2 = rn(2, 3)
    H2 = sg.hessian(sin_x2)(x2)
    assert H2.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(H2, fd(sg.grad(sin_x2), x2, 1e-5), rtol=1e-5, atol=1e-7)
    dg = sg.grad(sin_x2)
    dg(x)
    assert 'def ' in inspect.getsource(dg)


def bump(x):
    return math.sin(x) * math.exp(-x * x)


def test_third_derivative_on_floats():
    x = 0.7
    g2 = sg.grad(sg.grad(bump))(x)
    want2 = math.exp(-x * x) * (-3 * math.sin(x) - 4 * x * math.cos(x) + 4 * x * x * math.sin(x))
    np.testing.assert_allclose(g2, want2, rtol=1e-10)
    g3 = sg.grad(sg.grad(sg.grad(bump)))(x)
    np.testing.assert_allclose(g3, fd(sg.grad(sg.grad(bump)), x, 1e-5), rtol=1e-6)


def three_outputs(x):
    return np.stack([x[0] * x[1], np.sin(x[2]), x.sum() ** 2])


def test_jacobian_jvp_vjp_and_float32():
    x = rn(3)
    J = sg.jacobian(three_outputs)(x)
    np.testing.assert_allclose(J, fd(three_outputs, x), rtol=1e-6, atol=1e-8)
    t = rn(3)
    np.testing.assert_allclose(sg.jvp(three_outputs)(x, t)[1], J @ t, rtol=1e-8)
    ct = rn(3)
    np.testing.assert_allclose(sg.vjp(three_outputs)(x, ct)[1], ct @ J, rtol=1e-8)
    J32 = sg.jacobian(three_outputs)(x.astype(np.float32))
    assert J32.dtype == np.float32
    np.testing.assert_allclose(J32, J, rtol=1e-4, atol=1e-5)


def with_aux(x, y):
    return np.sum(x * y ** 2), x.max()


def test_has_aux_and_argnums():
    x, y = rn(3), rn(3)
    (gx, gy), aux = sg.grad(with_aux, argnums=(0, 1), has_aux=True)(x, y)
    np.testing.assert_allclose(gx, y ** 2)
    np.testing.assert_allclose(gy, 2 * x * y)
    assert aux == x.max()
    (v, aux2), g = sg.value_and_grad(with_aux, has_aux=True)(x, y)
    np.testing.assert_allclose(v, np.sum(x * y ** 2))
    np.testing.assert_allclose(g, y ** 2)
    assert aux2 == x.max()


def dict_scaled(p):
    return np.sum(p['w'] ** 2) * p['s']


def dict_out(x):
    return {'sq': x ** 2, 'sum': np.sum(x), 'nested': (x[0] * x[1], [np.sin(x)])}


def test_pytree_hessian_and_structured_outputs():
    p = {'w': rn(3), 's': 1.3}
    H = sg.hessian(dict_scaled)(p)
    np.testing.assert_allclose(H['w']['w'], 2 * p['s'] * np.eye(3))
    np.testing.assert_allclose(H['w']['s'], 2 * p['w'])
    np.testing.assert_allclose(H['s']['s'], 0.0)
    x = rn(3)
    ct = {'sq': rn(3), 'sum': 0.7, 'nested': (0.3, [rn(3)])}
    _, g = sg.vjp(dict_out)(x, ct)
    want = 2 * x * ct['sq'] + ct['sum'] + np.cos(x) * ct['nested'][1][0]
    want[0] += 0.3 * x[1]
    want[1] += 0.3 * x[0]
    np.testing.assert_allclose(g, want, rtol=1e-10)
    _, t = sg.jvp(dict_out)(x, np.ones(3))
    np.testing.assert_allclose(t['nested'][1][0], np.cos(x))
    np.testing.assert_allclose(sg.jacobian(dict_out)(x)['sq'], np.diag(2 * x))


def softplus_sum(x):
    return softplus_helper(x)


def softplus_helper(x):
    return np.sum(np.log1p(np.exp(x)))


def norm_only(x):
    return np.linalg.norm(x)


def test_hessians_in_closed_form():
    x = rn(5)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(sg.hessian(softplus_sum)(x), np.diag(s * (1 - s)), atol=1e-12)
    x = rn(4)
    n = np.linalg.norm(x)
    np.testing.assert_allclose(sg.hessian(norm_only)(x), (np.eye(4) - np.outer(x, x) / n ** 2) / n, rtol=1e-8)


def exp_cos(x):
    return np.sum(np.exp(x) * np.cos(x))


d_exp_cos = sg.grad(exp_cos)


def grad_norm_sq(z):
    return np.sum(d_exp_cos(z) ** 2)


quartic_force = sg.grad(lambda q: np.sum(q ** 4) / 4)


def force_sq(q):
    return np.sum(quartic_force(q) ** 2)


def test_module_level_grads_called_inside_a_loss():
    x = rn(3)
    H = sg.hessian(exp_cos)(x)
    np.testing.assert_allclose(np.diag(H), -2 * np.exp(x) * np.sin(x), rtol=1e-10)
    np.testing.assert_allclose(sg.grad(grad_norm_sq)(x), 2 * H @ d_exp_cos(x), rtol=1e-9)
    q = np.array([0.3, -0.7])
    np.testing.assert_allclose(sg.grad(force_sq)(q), 6 * q ** 5, rtol=1e-8)
    np.testing.assert_allclose(sg.jvp(sg.grad(exp_cos))(x, np.ones(3))[1], H @ np.ones(3), rtol=1e-9)
    np.testing.assert_allclose(sg.vjp(sg.grad(exp_cos))(x, np.ones(3))[1], H @ np.ones(3), rtol=1e-9)


def float_branch(x):
    return math.exp(math.sin(x)) if x > 0 else x ** 3


def test_float_branch_second_derivative():
    for x0 in (0.5, -0.5):
        h = sg.hessian(float_branch)(x0)
        gg = sg.grad(sg.grad(float_branch))(x0)
        want = (math.exp(math.sin(x0)) * (math.cos(x0) ** 2 - math.sin(x0))) if x0 > 0 else 6 * x0
        np.testing.assert_allclose(gg, want, rtol=1e-10)
        np.testing.assert_allclose(h, want, rtol=1e-10)


def float_pytree(p):
    return p['a'] ** 2 * p['b'] + math.sin(p['a'])


def test_jvp_hvp_on_float_dict():
    p = {'a': 0.3, 'b': 1.7}
    _, t = sg.jvp(float_pytree)(p, {'a': 1.0, 'b': 0.0})
    np.testing.assert_allclose(t, 2 * 0.3 * 1.7 + math.cos(0.3))
    v, hv = sg.hvp(float_pytree)(p, {'a': 1.0, 'b': 0.0})
    np.testing.assert_allclose(v, float_pytree(p))
    np.testing.assert_allclose(hv['a'], 2 * 1.7 - math.sin(0.3))
    np.testing.assert_allclose(hv['b'], 2 * 0.3)


def two_arg(a, b):
    return np.sum(a ** 2 * b) + np.sum(np.sin(a)) * b[0]


def test_hessian_and_jacobian_with_argnums_against_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def jf(a, b):
        return jnp.sum(a ** 2 * b) + jnp.sum(jnp.sin(a)) * b[0]
    a, b = rn(3), rn(3)
    H = sg.hessian(two_arg, argnums=(0, 1))(a, b)
    Hj = jax.hessian(jf, argnums=(0, 1))(a, b)
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(H[i][j], np.asarray(Hj[i][j]), rtol=1e-10, atol=1e-12)
    J = sg.grad(two_arg, argnums=(0, 1))(a, b)
    Jj = jax.grad(jf, argnums=(0, 1))(a, b)
    for i in range(2):
        np.testing.assert_allclose(J[i], np.asarray(Jj[i]), rtol=1e-10)


# ----------------------------------------------------------------------------------------------------
# the eager tape, against PyTorch


def _torch_pair(build, xn, rtol=1e-9):
    T = pytest.importorskip("torch")
    x = torch.tensor(xn, requires_grad=True)
    y = build(torch, x)
    y.backward()
    xt = T.tensor(xn, requires_grad=True)
    yt = build(T, xt)
    yt.backward()
    np.testing.assert_allclose(float(y.item()), float(yt.item()), rtol=rtol)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=rtol, atol=1e-12)


def _softmax_weighted(t, x):
    return (x.softmax(dim=1) * t.arange(4.).double()).sum()


def _clone_column_mul(t, x):
    y = x.clone()
    y[:, 1] *= x[:, 0]
    return (y ** 2).sum()


def _view_mul_(t, x):
    y = x * 1
    v = y[1:]
    v.mul_(2.0)
    return (y ** 3).sum()


def _reshapes(t, x):
    y = x.t().reshape(-1)
    z = y.view(2, 3).transpose(0, 1).contiguous()
    return (z.exp() * t.arange(6.).double().reshape(3, 2)).sum()


def _ellipsis_einsum(t, x):
    return t.einsum('...ij,...jk->...ik', x, x).sum()


def _chunk_cat(t, x):
    a, b = x.chunk(2, dim=0)
    c = t.cat([a, b * 2], dim=1)
    d = t.stack([c, c.flip(0)], 0)
    return d.cumprod(1).sum() + x.max(dim=1).values.sum() + x.min(dim=0)[0].sum()


def _sort_topk_var(t, x):
    s, _ = x.sort(dim=-1, descending=True)
    tk = x.topk(2, dim=1).values
    return (s * t.arange(3.).double()).sum() + tk.sum() + x.var(dim=0, unbiased=True).sum()


def _activations(t, x):
    y = x.masked_fill(x > 0, 0.0)
    return ((y ** 2).sum() + t.nn.functional.softplus(x).sum() + t.nn.functional.gelu(x).sum()
            + t.sigmoid(x).prod())


def _losses(t, x):
    return t.nn.functional.cross_entropy(x, t.tensor([0, 2, 1])) + t.nn.functional.mse_loss(x, t.ones_like(x))


def _linalg(t, x):
    w = t.linalg.eigvalsh(x + x.T)
    return w[-1] + t.logdet(x @ x.T + t.eye(3, dtype=t.float64))


def _indexing(t, x):
    idx = t.tensor([0, 2, 2, 5])
    return x[idx].sum() + x[x > 0].pow(2).sum() + x.gather(0, idx).prod() + x.index_select(0, idx).mean()


def test_eager_tape_against_torch():
    _torch_pair(_softmax_weighted, rn(3, 4))
    _torch_pair(_clone_column_mul, rn(3, 2))
    _torch_pair(_view_mul_, rn(4))
    _torch_pair(_reshapes, rn(3, 2))
    _torch_pair(_ellipsis_einsum, rn(2, 3, 3))
    _torch_pair(_chunk_cat, rn(4, 3))
    _torch_pair(_sort_topk_var, rn(4, 3))
    _torch_pair(_activations, rn(5))
    _torch_pair(_losses, rn(3, 4))
    _torch_pair(_linalg, rn(3, 3))
    _torch_pair(_indexing, rn(6))


def test_eager_double_backward_through_setitem_and_functional_api():
    T = pytest.importorskip("torch")
    xn = rn(5)
    x = torch.tensor(xn, requires_grad=True)
    y = x * 2
    y[1:3] = x[1:3] ** 3
    g, = torch.autograd.grad(y.cumsum(0).pow(2).mean(), x, create_graph=True)
    g.sum().backward()
    xt = T.tensor(xn, requires_grad=True)
    yt = xt * 2
    yt[1:3] = xt[1:3] ** 3
    gt, = T.autograd.grad(yt.cumsum(0).pow(2).mean(), xt, create_graph=True)
    gt.sum().backward()
    np.testing.assert_allclose(g.detach().numpy(), gt.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10)

    def f(x):
        return (x.sin() * x.exp()).sum()

    def vec(x):
        return x.tanh() * 2

    xn = rn(2, 3)
    v = rn(2, 3)
    F, TF = torch.autograd.functional, T.autograd.functional
    np.testing.assert_allclose(np.asarray(F.hessian(f, torch.tensor(xn)).numpy()),
                               TF.hessian(f, T.tensor(xn)).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(F.jacobian(vec, torch.tensor(xn)).numpy()),
                               TF.jacobian(vec, T.tensor(xn)).numpy(), rtol=1e-10, atol=1e-12)
    for name, fn in (("vjp", vec), ("jvp", vec), ("vhp", f), ("hvp", f)):
        got = getattr(F, name)(fn, torch.tensor(xn), torch.tensor(v))[1]
        want = getattr(TF, name)(fn, T.tensor(xn), T.tensor(v))[1]
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, err_msg=name)

    def pair(a, b):
        return a * b, (a ** 2).sum() + b
    an, bn = rn(3), rn(3)
    J = F.jacobian(pair, (torch.tensor(an), torch.tensor(bn)))
    Jt = TF.jacobian(pair, (T.tensor(an), T.tensor(bn)))
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(J[i][j].numpy(), Jt[i][j].numpy(), rtol=1e-10)


def test_eager_accumulation_clamp_and_float32():
    T = pytest.importorskip("torch")
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for _ in range(2):
        (x ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.array([1., 2., 3.]))
    x.grad.zero_()
    x.clamp(1.5, 2.5).prod().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 1.5 * 2.5, 0])
    xn = rn(2, 3).astype(np.float32)
    x = torch.tensor(xn, requires_grad=True)
    (x.unsqueeze(0) * x.unsqueeze(1)).sum(dim=(0, 2), keepdim=True).squeeze().logsumexp(0).backward()
    xt = T.tensor(xn, requires_grad=True)
    (xt.unsqueeze(0) * xt.unsqueeze(1)).sum(dim=(0, 2), keepdim=True).squeeze().logsumexp(0).backward()
    assert x.grad.dtype == torch.float32
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-5)


def test_linear_sgd_momentum_matches_torch():
    T = pytest.importorskip("torch")
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
    Xn, Yn = rn(5, 3).astype(np.float32), rn(5, 2).astype(np.float32)
    lin_t = T.nn.Linear(3, 2)
    with T.no_grad():
        lin_t.weight.copy_(T.tensor(lin.weight.detach().numpy()))
        lin_t.bias.copy_(T.tensor(lin.bias.detach().numpy()))
    opt_t = T.optim.SGD(lin_t.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        ((lin(torch.tensor(Xn)) - torch.tensor(Yn)) ** 2).mean().backward()
        opt.step()
        opt_t.zero_grad()
        ((lin_t(T.tensor(Xn)) - T.tensor(Yn)) ** 2).mean().backward()
        opt_t.step()
    np.testing.assert_allclose(lin.weight.detach().numpy(), lin_t.weight.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(lin.bias.detach().numpy(), lin_t.bias.detach().numpy(), rtol=1e-5)
