"""NumPy as programs call it: each function uses one of the calls issue 12 lists, the way a scientist
writes it."""

import math

import numpy as np

from tests.srcgrad.language.harness import Case


def _vec(n, low=None, high=None):
    if low is None:
        return lambda r: (r.normal(size=n),)
    return lambda r: (r.uniform(low, high, size=n),)


def clipped_copy(x):
    y = np.copy(x)
    y[0] = 0.5 * y[0] + y[-1]
    z = x.copy()
    return np.sum(y * z)


def explicit_euler(x0, k):
    traj = np.empty_like(x0)
    traj[0] = x0[0]
    for i in range(1, len(x0)):
        traj[i] = traj[i - 1] - k * traj[i - 1] + x0[i]
    return np.sum(traj ** 2)


def baseline_residual(y, mu):
    base = np.full(len(y), mu)
    return np.sum((y - base) ** 2)


def centered_by_full_like(x):
    m = np.full_like(x, np.mean(x))
    return np.sum(np.tanh(x - m) ** 2)


def atleast_dims(a, s):
    v = np.atleast_1d(s)
    M = np.atleast_2d(a)
    T = np.atleast_3d(a)
    return np.sum(M.T @ M) * v[0] + np.sum(T ** 2)


def design_matrix(t, c):
    X = np.column_stack([np.ones_like(t), t, t ** 2])
    return np.sum((X @ c - np.sin(t)) ** 2)


def stacked_blocks(a, b):
    parts = [a, 2.0 * b]
    h = np.hstack(parts)
    v = np.vstack(parts)
    d = np.dstack(parts)
    return np.sum(h ** 2) + np.sum(v[0] * v[1]) + np.sum(np.sin(d))


def positional_axes(a, b):
    c = np.concatenate((a, b), 0)
    s = np.stack([a, b], 1)
    return np.sum(c ** 3) + np.sum(s[:, 0] * s[:, 1])


def smoothing_loss(x, kernel):
    full = np.convolve(x, kernel)
    same = np.convolve(x, kernel, mode="same")
    valid = np.convolve(x, kernel, "valid")
    return np.sum(full ** 2) + np.sum(same * x) + np.sum(np.tanh(valid))


def matched_filter(x, template):
    full = np.correlate(x, template, mode="full")
    same = np.correlate(x, template, mode="same")
    valid = np.correlate(x, template)
    return np.sum(full ** 2) + np.sum(same) + np.sum(valid ** 2)


_GRID = np.linspace(0.0, 1.0, 6)


def lookup_table(values, xq):
    return np.sum(np.interp(xq, _GRID, values) ** 2)


def kron_covariance(a, B):
    K = np.kron(np.diag(a), B)
    return np.sum(K ** 2) + np.trace(K)


def octave_gain(x):
    return (np.exp2(x) - x).sum()


def topk_along_axis(S):
    idx = np.argsort(S, axis=1)[:, -2:]
    top = np.take_along_axis(S, idx, axis=1)
    return np.sum(top ** 2)


def scatter_along_axis(S, v):
    idx = np.argmax(S, axis=1)[:, None]
    out = S.copy()
    np.put_along_axis(out, idx, v[:, None], axis=1)
    return np.sum(out ** 2)


def top_eigenvalue_energy(A):
    S = A + A.T
    w, V = np.linalg.eigh(S)
    return w[-1] + np.sum(V[:, -1] ** 4)


def nuclear_norm(A):
    s = np.linalg.svd(A, compute_uv=False)
    U, s2, Vt = np.linalg.svd(A, full_matrices=False)
    return np.sum(s) + np.sum(s2 ** 2)


def qr_logdet(A):
    Q, R = np.linalg.qr(A)
    return np.sum(np.log(np.abs(np.diag(R)))) + np.sum(Q[:, 0] * np.arange(1.0, 4.0))


def gp_logdet_indexed(L):
    K = L @ L.T + np.eye(3)
    return np.linalg.slogdet(K)[1]


def gp_logdet_attribute(L):
    K = L @ L.T + np.eye(3)
    return np.linalg.slogdet(K).logabsdet


def spectral_power(x):
    X = np.fft.fft(x)
    y = np.fft.ifft(X * np.exp(-np.arange(len(x)) / 4.0))
    return np.sum(np.abs(X[1:4]) ** 2) + np.sum(y.real ** 2)


def lowpass(x):
    X = np.fft.rfft(x)
    mask = np.exp(-np.arange(X.shape[0]) / 2.0)
    y = np.fft.irfft(X * mask, len(x))
    return np.sum((y - x) ** 2)


def log_binomial_likelihood(p, n):
    # math on Python floats: log n choose k through lgamma, plus gamma and erf
    k = 3.0
    logc = math.lgamma(n + 1.0) - math.lgamma(k + 1.0) - math.lgamma(n - k + 1.0)
    return logc + k * math.log(p) + (n - k) * math.log(1.0 - p) + math.erf(p) + 0.1 * math.gamma(n / 3.0)


def trimmed_mean(x):
    s = sorted(x)
    return sum(s[1:-1]) / (len(s) - 2)


def hinge_spread(x):
    # builtin max/min of one iterable (an array, a list of numbers) and of several numbers
    margins = [1.0 - x[i] * (i + 1.0) for i in range(len(x))]
    return max(x) - min(x) + max(margins) + max(x[0], x[1] ** 2, 0.1) * min(x[2], x[3], 2.0)


def top_two_of_list(x):
    # sorted() of a Python list of values, largest first
    squares = [x[i] ** 2 + 0.1 * i for i in range(len(x))]
    s = sorted(squares, reverse=True)
    return 2.0 * s[0] + s[1] - s[-1]


def ordered_by_key(params, x):
    # sorted() of a dict's keys (a static order) and of its items
    acc = 0.0
    for k in sorted(params):
        acc = 2.0 * acc + np.sum(params[k] * x)
    for k, v in sorted(params.items()):
        acc = acc + np.sum(np.sin(v * x)) * len(k)
    return acc


def mapped_rows(X):
    return sum(map(lambda r: np.sum(np.tanh(r)) ** 2, X)) + sum(map(np.sum, X))


# plain arrays through the other transforms: where pytree support is not involved, these work
def vector_field(x):
    return np.array([x[0] * x[1], np.sin(x[2]), x[0] ** 2])


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _mat(r):
    return (r.normal(size=(3, 3)),)


CASES = [
    Case("np_copy", clipped_copy, _vec(4)),
    Case("np_empty_like", explicit_euler, lambda r: (r.normal(size=5), 0.3), wrt=(0, 1)),
    Case("np_full_differentiated_value", baseline_residual, lambda r: (r.normal(size=5), 0.2), wrt=(0, 1)),
    Case("np_full_like", centered_by_full_like, _vec(5)),
    Case("np_atleast_nd", atleast_dims, lambda r: (r.normal(size=3), 1.3), wrt=(0, 1)),
    Case("np_column_stack", design_matrix, lambda r: (np.linspace(0, 1, 5), r.normal(size=3)), wrt=(0, 1)),
    Case("np_hstack_vstack_dstack_list", stacked_blocks, lambda r: (r.normal(size=3), r.normal(size=3)),
         wrt=(0, 1)),
    Case("np_concatenate_stack_positional_axis", positional_axes,
         lambda r: (r.normal(size=3), r.normal(size=3)), wrt=(0, 1)),
    Case("np_convolve_modes", smoothing_loss, lambda r: (r.normal(size=6), r.normal(size=3)), wrt=(0, 1)),
    Case("np_correlate_modes", matched_filter, lambda r: (r.normal(size=6), r.normal(size=3)), wrt=(0, 1)),
    Case("np_interp", lookup_table, lambda r: (r.normal(size=6), np.array([0.05, 0.33, 0.71, 0.93])),
         wrt=(0, 1)),
    Case("np_kron", kron_covariance, lambda r: (r.normal(size=2), r.normal(size=(2, 2))), wrt=(0, 1)),
    Case("np_exp2", octave_gain, _vec(4), checks=("reverse", "forward", "tape")),
    Case("np_take_along_axis", topk_along_axis, lambda r: (r.normal(size=(3, 4)),)),
    Case("np_put_along_axis", scatter_along_axis, lambda r: (r.normal(size=(3, 4)), r.normal(size=3)),
         wrt=(0, 1)),
    Case("np_linalg_eigh", top_eigenvalue_energy, _mat),
    Case("np_linalg_svd", nuclear_norm, lambda r: (r.normal(size=(3, 2)),)),
    Case("np_linalg_qr", qr_logdet, _mat),
    Case("np_slogdet_indexed", gp_logdet_indexed, _mat),
    Case("np_slogdet_attribute", gp_logdet_attribute, _mat),
    Case("np_fft_ifft", spectral_power, _vec(6)),
    Case("np_rfft_irfft", lowpass, _vec(6)),
    Case("math_lgamma_gamma_erf", log_binomial_likelihood, lambda r: (0.35, 7.5), wrt=(0, 1)),
    Case("builtin_sorted", trimmed_mean, _vec(5), checks=("reverse", "forward", "tape")),
    Case("builtin_max_min", hinge_spread, _vec(5)),
    Case("builtin_sorted_list_reverse", top_two_of_list, _vec(5)),
    Case("builtin_sorted_dict_keys", ordered_by_key,
         lambda r: ({"b": r.normal(size=3), "a": r.normal(size=3), "c": 0.3}, r.normal(size=3))),
    Case("builtin_map", mapped_rows, lambda r: (r.normal(size=(3, 2)),)),
    Case("plain_vjp_jacobian", vector_field, _vec(3), checks=("forward", "vjp", "jacobian")),
    Case("plain_hessian_hvp", rosenbrock, _vec(4), checks=("reverse", "forward", "hessian", "hvp")),
]
