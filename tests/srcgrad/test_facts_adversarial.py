# ruff: noqa: B007, B008, B023, B905, E501  (adversarial programs: unused loop variables and array defaults on purpose)
"""Adversarial programs for the fact pass (srcgrad/facts.py) and in-place writes
(optimize.write_in_place, runtime.stack.index_update_owned / index_add_into): aliases, views, arrays kept
in containers, writes that read earlier rows, shapes that change through loops, variable slice bounds,
masks, repeated fancy indices, np.add.at, helpers specialized per signature (defaults, floats then
arrays, tuples), ints vs floats, float32, 0-d arrays and NumPy scalars, data-dependent while loops.

Every gradient (and jvp / hvp where a case asks) is checked against central finite differences, every
argument is checked unchanged after each call, and a second run must agree with the first. A refusal
with srcgrad.TransformError is accepted (NumPy's aliasing semantics that srcgrad will not emulate).
Programs that fail today are marked xfail(strict=True) with the reason."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import srcgrad as sg
from srcgrad import TransformError

# --------------------------------------------------------------------------------------------- harness
REFUSED = []


def _copy(a):
    return copy.deepcopy(a)


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a == b or (a != a and b != b))


def _f64(a):
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return a.astype(np.float64)
    if isinstance(a, np.floating):
        return np.float64(a)
    return a


def _with(args, i, val):
    out = list(_copy(args))
    out[i] = val
    return out


def fd_grad(f, args, i, eps=1e-6):
    args = [_f64(a) for a in args]
    x = args[i]
    if isinstance(x, np.ndarray):
        g = np.zeros(x.shape)
        for k in np.ndindex(x.shape):
            e = np.zeros(x.shape)
            e[k] = eps
            g[k] = (f(*_with(args, i, x + e)) - f(*_with(args, i, x - e))) / (2 * eps)
        return g
    return (f(*_with(args, i, x + eps)) - f(*_with(args, i, x - eps))) / (2 * eps)


def close(a, b, tol):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.allclose(a, b, rtol=tol, atol=tol), (a, b)


def _call_checked(fn, args):
    before = _copy(args)
    out = fn(*args)
    for k, (x, y) in enumerate(zip(before, args)):
        assert _same(x, y), f"argument {k} changed by the call: {y!r} (was {x!r})"
    return out


def check(f, *args, wrt=0, modes=("grad",), tol=1e-5, more=(), name=None, eps=1e-6):
    """Check f's derivatives against central differences; every argument must be unchanged."""
    try:
        return _check(f, args, wrt, modes, tol, more, eps)
    except TransformError as e:
        REFUSED.append((name or f.__name__, str(e).splitlines()[0]))
        return "refused"


def _check(f, args, wrt, modes, tol, more, eps_fd):
    wrts = wrt if isinstance(wrt, tuple) else (wrt,)
    tol32 = max(tol, 2e-3)
    for call_args in (args,) + tuple(more):
        t = tol32 if any(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in call_args) else tol
        ref_value = f(*_copy(call_args))
        if "grad" in modes:
            g = _call_checked(sg.grad(f, wrt=wrt), list(call_args))
            gs = g if isinstance(wrt, tuple) else (g,)
            for gi, i in zip(gs, wrts):
                assert np.shape(gi) == np.shape(call_args[i]), (np.shape(gi), np.shape(call_args[i]))
                close(gi, fd_grad(f, call_args, i, eps_fd), t)
            g2 = _call_checked(sg.grad(f, wrt=wrt), list(call_args))  # a second run: nothing stale
            g2s = g2 if isinstance(wrt, tuple) else (g2,)
            for a, b in zip(gs, g2s):
                close(a, b, 1e-12)
        if "vg" in modes:
            v, g = _call_checked(sg.value_and_grad(f, wrt=wrt), list(call_args))
            close(v, ref_value, 1e-9)
            gs = g if isinstance(wrt, tuple) else (g,)
            for gi, i in zip(gs, wrts):
                close(gi, fd_grad(f, call_args, i, eps_fd), t)
        if "value" in modes:  # the gradient's value path agrees with NumPy's
            v, _ = _call_checked(sg.value_and_grad(f, wrt=wrt), list(call_args))
            close(v, ref_value, 1e-9)
        i = wrts[0]
        x = call_args[i]
        rng = np.random.default_rng(0)
        if "jvp" in modes:
            tan = rng.standard_normal(np.shape(x)) if isinstance(x, np.ndarray) else 0.7
            if isinstance(x, np.ndarray):
                tan = tan.astype(x.dtype)
            val, jt = _call_checked(sg.jvp(f, wrt=i), list(call_args) + [tan])
            close(val, ref_value, 1e-9)
            eps = eps_fd
            xa = _f64(x)
            ref = (np.asarray(f(*_with(call_args, i, xa + eps * tan)), float)
                   - np.asarray(f(*_with(call_args, i, xa - eps * tan)), float)) / (2 * eps)
            close(jt, ref, t)
        if "hvp" in modes or "hessian" in modes:
            gf = sg.grad(f, wrt=i)
            n = int(np.size(x))
            xa = _f64(x)
            eps = 1e-5

            def hcol(d):
                return (np.asarray(gf(*_with(call_args, i, xa + eps * d)), float)
                        - np.asarray(gf(*_with(call_args, i, xa - eps * d)), float)) / (2 * eps)
            if "hvp" in modes:
                d = rng.standard_normal(np.shape(x)) if isinstance(x, np.ndarray) else 0.3
                val, hv = _call_checked(sg.hvp(f, wrt=i), list(call_args) + [d])
                close(val, ref_value, 1e-9)
                close(hv, hcol(d), 1e-4)
            if "hessian" in modes:
                H = _call_checked(sg.hessian(f, wrt=i), list(call_args))
                cols = [hcol(np.eye(n)[k].reshape(np.shape(x))) for k in range(n)]
                ref = np.stack([c.reshape(-1) for c in cols], axis=1).reshape(np.shape(H))
                close(H, ref, 1e-4)
    return "ok"


# -------------------------------------------------------------------------------------------- programs
# ------------------------------------------------------------------ in-place writes: aliases and views
def alias_then_write(x):
    a = np.zeros(3)
    b = a
    a[0] = x[0] * x[1]
    a[1] = np.sin(x[2])
    return np.sum(b * b) + a[2]


def alias_written_through_second_name(x):
    a = np.zeros(3)
    b = a
    b[1] = x[0] ** 2
    return np.sum(a * x)


def view_kept_then_write(x):
    R = np.zeros((3, 2))
    R[0] = x[:2]
    v = R[1:]
    R[1, 0] = x[2] * 2.0
    return np.sum(v * v) + np.sum(R)


def transpose_view_kept(x):
    R = np.ones((2, 3))
    T = R.T
    R[0, 1] = x[0] * x[1]
    return np.sum(T * T * x[2])


def reshape_view_kept(x):
    R = np.zeros(4)
    flat = R.reshape(2, 2)
    R[3] = x[0] * 3.0
    return np.sum(flat ** 2) + x[1]


def none_view_kept(x):
    R = np.zeros(3)
    up = R[None]
    R[1] = x[1] ** 3
    return np.sum(up * x)


def view_read_before_write_only(x):
    R = np.zeros(3)
    R[0] = x[0] * 2.0
    s = np.sum(R[0:2] * x[:2])
    R[1] = x[1] * x[2]
    R[0] = 7.0
    return s + np.sum(R * R)


def appended_to_list_then_written(x):
    R = np.zeros(3)
    keep = []
    keep.append(R)
    R[0] = x[0] * x[1]
    return np.sum(keep[0]) + np.sum(R * x)


def list_of_rows_snapshot(x):
    R = np.zeros(3)
    rows = []
    for i in range(3):
        R[i] = x[i] * 2.0
        rows.append(R.copy())
    return sum(np.sum(r * r) for r in rows)


def stored_in_dict(x):
    R = np.zeros(3)
    d = {"r": R}
    R[1] = x[0] * x[2]
    return np.sum(d["r"] * x)


def stored_in_tuple(x):
    R = np.zeros(2)
    t = (R, 3.0)
    R[0] = x[1] ** 2
    return np.sum(t[0]) * t[1] + x[0]


def copy_before_write_keeps_old(x):
    R = np.zeros(3)
    R[0] = x[0]
    old = R.copy()
    R[0] = x[1] * 5.0
    return np.sum(old * old) + np.sum(R * R)


# ------------------------------------------------------------------ DP tables and row recurrences
def dp_table(x):
    n = x.shape[0]
    R = np.zeros((n + 1, n + 1))
    R[0, :] = 1.0
    for i in range(1, n + 1):
        for j in range(1, n + 1):
            R[i, j] = R[i - 1, j] * 0.5 + R[i, j - 1] * x[i - 1] + np.sin(R[i - 1, j - 1])
    return R[n, n]


def rows_read_earlier_rows(x):
    R = np.zeros((4, 3))
    R[0] = x
    for i in range(1, 4):
        R[i] = np.tanh(R[i - 1] * x) + R[i - 1] ** 2 * 0.1
    return np.sum(R[3]) + np.sum(R[1] * R[2])


def nonlinear_read_then_overwrite(x):
    R = np.zeros(2)
    R[0] = x[0]
    s = R[0] ** 2
    R[0] = x[1]
    s = s + R[0] ** 3
    R[0] = R[0] * R[0]
    return s + R[0] * x[0]


def product_with_table_then_write(x):
    R = np.ones(3)
    acc = 0.0
    for i in range(3):
        acc = acc + np.sum(R * R) * x[i]
        R[i] = x[i] * acc
    return acc + np.sum(R)


def pde_boundary(u0):
    u = u0.copy()
    for t in range(5):
        new = u.copy()
        new[1:-1] = u[1:-1] + 0.2 * (u[2:] - 2 * u[1:-1] + u[:-2]) + 0.05 * u[1:-1] ** 2
        new[0] = new[1]
        new[-1] = new[-2] * 0.5
        u = new
    return np.sum(u ** 2)


def full_then_write_and_scale(x):
    R = np.full(3, 2.0)
    R[2] = x[0] * x[1]
    R = R * x
    R[0] = R[1] + R[2]
    return np.sum(R ** 2)


def arithmetic_result_written(x):
    R = x * 2.0
    R[0] = R[1] * R[2]
    return np.sum(R * x)


def copy_of_param_written(x):
    y = x.copy()
    y[1] = 0.0
    y[0] = y[0] * y[2]
    return np.sum(y ** 2)


def param_written_directly(x):
    x[0] = x[1] * 2.0
    return np.sum(x ** 2)


def identity_helper(a):
    return a


def helper_returns_param_then_written(x):
    y = identity_helper(x)
    z = y * 1.0
    z[0] = 3.0
    return np.sum(z * y)


def zeros_like_accumulate(x):
    acc = np.zeros_like(x)
    for k in range(3):
        acc[k] = acc[k - 1] * x[k] + x[k]
    return np.sum(acc * acc)


def write_in_loop_with_carry_alias(x):
    R = np.zeros(3)
    prev = R
    for i in range(3):
        R = R.copy()
        R[i] = x[i] + np.sum(prev)
        prev = R
    return np.sum(R * prev)


def int_table_truncates(x):
    R = np.zeros(3, dtype=int)
    R[0] = 2.7
    R[1] = -1.5
    return x[0] * R[0] + x[1] * R[1] + x[2]


def float32_table(x):
    R = np.zeros(3, dtype=np.float32)
    R[0] = x[0] * x[1]
    R[1] = R[0] * x[2]
    return np.sum(R * x)


# ------------------------------------------------------------------ masks and fancy indices
def mask_write_zero(x):
    R = x * x
    R[R > 1.0] = 0.0
    return np.sum(R * x)


def mask_write_values(x):
    R = np.zeros(4)
    m = x > 0
    R[m] = x[m] ** 2
    return np.sum(R * x)


def fancy_repeated_set(x):
    R = np.zeros(4)
    idx = np.array([0, 2, 0, 3])
    R[idx] = x * 2.0
    return np.sum(R * R)


def fancy_repeated_iadd(x):
    R = np.zeros(4)
    idx = np.array([1, 1, 3, 1])
    R[idx] += x
    return np.sum(R * R) + R[1] * x[0]


def add_at_repeated(x):
    R = np.zeros(3)
    idx = np.array([0, 0, 2, 0])
    np.add.at(R, idx, x)
    return np.sum(R ** 2)


def gather_repeated(x):
    idx = np.array([2, 2, 0, 1, 2])
    y = x[idx]
    return np.sum(y * y * np.arange(5.0))


def list_index_write(x):
    R = np.zeros(5)
    R[[1, 3]] = x[:2] * x[2]
    return np.sum(R * np.arange(5.0))


def slice_variable_bounds(x, k):
    R = np.zeros(6)
    R[k:k + 2] = x[:2] * 3.0
    R[k + 2:] = x[2] ** 2
    return np.sum(R * R)


def negative_step_slice_write(x):
    R = np.zeros(4)
    R[::-2] = x[:2] ** 2
    return np.sum(R * np.arange(1.0, 5.0))


# ------------------------------------------------------------------ shapes through loops
def concat_growth(x):
    y = x[:1]
    for i in range(1, x.shape[0]):
        y = np.concatenate([y, y[-1:] * x[i]])
    return np.sum(y ** 2)


def append_growth(x):
    y = np.zeros(0)
    for i in range(3):
        y = np.append(y, np.sin(x[i]) * (i + 1))
    return np.sum(y * y)


def shrink_each_step(x):
    s = 0.0
    while x.shape[0] > 1:
        s = s + np.sum(x * x)
        x = x[1:]
    return s + x[0]


def shrink_while_data_dependent(x):
    y = x
    while np.sum(y) > 1.0 and y.shape[0] > 1:
        y = y[1:] * 1.1
    return np.sum(y ** 2)


def tail_of_unknown_length_broadcast(x, k):
    t = x[k:]
    y = np.array([1.0, 2.0, 3.0])
    return np.sum(t * y)


def strip_minus_k(x, k):
    return np.sum(x[:-k] ** 2) + x[0]


def negative_start(x):
    return np.sum(x[-5:] ** 2)


def past_the_end(x):
    return np.sum(x[5:] * 2.0) + x[0]


def step_two(x):
    return np.sum(x[::2] * np.arange(3.0))


def zeros_of_half(x):
    n = len(x) // 2
    R = np.zeros(n)
    R[:] = x[:n] * x[n:2 * n]
    return np.sum(R ** 2)


def arange_length(x):
    n = x.shape[0]
    w = np.arange(n) * 0.5
    return np.sum(x * w) + np.sum(np.linspace(0.0, 1.0, n) * x ** 2)


def reshape_minus_one(x):
    M = x.reshape(2, -1)
    return np.sum(M * np.array([[1.0], [2.0]])) + np.sum(M[:, 0] ** 2)


def column_times_row(x, y):
    return np.sum(x[:, None] * y[None, :] * x[:, None])


def one_broadcasts_to_many(a, y):
    return np.sum(a * y ** 2)


def zero_d_param(a, y):
    return np.sum(a * y) * a


def keepdims_sum(X):
    s = np.sum(X, axis=1, keepdims=True)
    return np.sum(X / s)


def stack_and_transpose(x):
    S = np.stack([x, x ** 2, np.sin(x)])
    return np.sum(S.T @ np.array([1.0, 2.0, 3.0]))


def builtin_sum_of_matrix(X):
    s = sum(X)
    return np.sum(np.sin(s))


def builtin_abs_min_max(x):
    a = abs(x[0] - x[1])
    b = max(x[1], x[2])
    c = min(a, b)
    return a * b + c + pow(x[0], 2)


def row_of_matrix_into_math(X):
    r = X[0]
    return np.sum(np.exp(r)) + np.sum(np.sin(X[1]))


def matrix_vector(A, x):
    y = A @ x
    return np.dot(y, y) + np.dot(x, x)


def scalar_float_arg_loop(x, n):
    s = 0.0
    for i in range(n):
        s = s + math.sin(x * (i + 1))
    return s * x


def python_int_acc(x):
    acc = 1
    for i in range(3):
        acc = acc * x[i]
    total = 0
    for i in range(3):
        total = total + i
    return acc + total * x[0]


def int_division_and_true_division(x, n):
    h = n / 2
    q = n // 2
    return np.sum(x * h) + np.sum(x[:q] ** 2) + x[0] ** n


def numpy_scalar_args(a, b):
    return np.sin(a) * b + a ** 2


def float32_params(x):
    return np.sum(np.tanh(x) * x) + np.sum(x[1:] * x[:-1])


# ------------------------------------------------------------------ helpers: signatures and defaults
def scale_helper(a, s=2.0):
    return a * s


def helper_float_then_array(x):
    c = scale_helper(x[0])
    v = scale_helper(x, 0.5)
    w = scale_helper(x, s=3)
    return c * np.sum(v) + np.sum(w ** 2)


def pair_helper(a, b):
    return a * b, a + b


def helper_returns_tuple(x):
    p, q = pair_helper(x[0], x[1])
    u, v = pair_helper(x, x[::-1])
    return p * q + np.sum(u * v)


def level3(z):
    return np.sin(z) * z


def level2(y, k=1):
    return level3(y) + level3(y * k)


def level1(x):
    return level2(x) + level2(x, 2)


def helper_chain(x):
    return np.sum(level1(x)) + level1(x[0])


def table_helper(n, v):
    R = np.zeros(n)
    for i in range(n):
        R[i] = v * (i + 1)
    return R


def helper_allocates_table(x):
    a = table_helper(3, x[0])
    b = table_helper(2, x[1])
    return np.sum(a ** 2) + np.sum(b * a[:2])


def write_helper(R, i, v):
    R = R.copy()
    R[i] = v
    return R


def helper_writes_its_copy(x):
    R = np.zeros(3)
    S = write_helper(R, 0, x[0] ** 2)
    T = write_helper(S, 1, x[1] * S[0])
    return np.sum(R) + np.sum(S * x) + np.sum(T * T)


def helper_int_or_float(a, n):
    return a ** n + a * n


def helper_called_int_then_float(x):
    return helper_int_or_float(x[0], 2) + helper_int_or_float(x[1], 2.5) + np.sum(helper_int_or_float(x, 3))


def mutating_helper_on_param(v):
    v = v * 1.0
    v[0] = 0.0
    return v


def helper_mutates_copy_of_arg(x):
    y = mutating_helper_on_param(x)
    return np.sum(y * x)


# ------------------------------------------------------------------ while loops with data-dependent stop
def newton_sqrt(a):
    y = a
    it = 0
    while abs(y * y - a) > 1e-12 and it < 50:
        y = 0.5 * (y + a / y)
        it = it + 1
    return y


def while_writes_table(x):
    R = np.zeros(8)
    i = 0
    s = x[0]
    while s < 5.0 and i < 8:
        R[i] = s
        s = s * 1.5 + x[1]
        i = i + 1
    return np.sum(R * R) + s


def while_with_shrinking_table(x):
    R = x * 1.0
    while R.shape[0] > 2:
        R[0] = R[0] + R[-1]
        R = R[:-1] * 0.9
    return np.sum(R ** 2)


# ------------------------------------------------------------------ vector outputs (vjp/jvp)
def vector_out_with_table(x):
    R = np.zeros(3)
    for i in range(3):
        R[i] = x[i] * x[(i + 1) % 3]
    return R * 2.0


# ------------------------------------------------------------------ known ints that change
def int_grows_in_loop(x):
    n = 2
    for i in range(2):
        n = n + 1
    R = np.zeros(n)
    R[: x.shape[0]] = x ** 2
    return np.sum(R * np.arange(n))


def int_counter_in_while(x):
    k = 0
    s = x[0]
    while s < 3.0:
        s = s * 2.0
        k = k + 1
    R = np.zeros(k + 1)
    R[k] = s
    R[0] = x[1]
    return np.sum(R ** 2) + k * x[2]


def int_set_in_branch(x):
    n = 2
    if x[0] > 0:
        n = 3
    R = np.zeros(n)
    R[:] = x[:n] * 2.0
    return np.sum(R ** 2)


def size_arg(x, n):
    R = np.zeros(n)
    for i in range(n):
        R[i] = x[i % x.shape[0]] * (i + 1)
    return np.sum(R * R)


def int_arith_shapes(x):
    n = len(x)
    m = n - 1
    a = np.zeros(m * 2)
    b = np.ones(n // 2)
    c = np.zeros(n % 4 + 1)
    d = np.ones(max(n - 3, 1))
    e = np.zeros(abs(1 - n))
    a[0] = x[0]
    b[0] = x[1]
    c[0] = x[2]
    d[0] = x[0] * x[1]
    e[0] = x[2] ** 2
    return np.sum(a ** 2) + np.sum(b ** 2) + np.sum(c ** 2) + np.sum(d ** 2) + np.sum(e ** 2) + len(a) * len(e) * x[0]


def shape_tuple_unpack(X):
    n, m = X.shape
    R = np.zeros((m, n))
    for i in range(n):
        for j in range(m):
            R[j, i] = X[i, j] ** 2
    return np.sum(R) + X.size * X.ndim * X[0, 0]


def diff_and_cumsum(X):
    c = np.cumsum(X)
    d = np.diff(c)
    return np.sum(d ** 2) + np.sum(c * np.arange(c.shape[0]))


def diag_both_ways(x):
    D = np.diag(x)
    v = np.diag(D @ D)
    return np.sum(v * x) + np.sum(D)


def vstack_hstack(x):
    V = np.vstack([x, x ** 2])
    H = np.hstack([x, x[:1]])
    return np.sum(V @ np.arange(x.shape[0] * 1.0)) + np.sum(H * np.arange(H.shape[0]))


def tile_repeat(x):
    t = np.tile(x, 2)
    r = np.repeat(x, 2)
    return np.sum(t * r) + np.sum(np.roll(x, 1) * x)


def reductions_with_axes(X):
    a = np.mean(X, axis=0)
    b = np.max(X, axis=1)
    c = np.sum(X, axis=-1)
    d = np.linalg.norm(X, axis=0)
    return np.sum(a * d) + np.sum(b * c) + np.prod(X[0])


def squeeze_expand(x):
    c = x[:, None]
    r = np.expand_dims(x, 0)
    M = c * r
    s = np.squeeze(M[:, :1])
    return np.sum(M) + np.sum(s * x)


def outer_and_einsum(x, y):
    O = np.outer(x, y)
    return np.einsum("ij,i->", O, x) + np.sum(x @ O)


def solve_and_inverse(A, b):
    s = np.linalg.solve(A, b)
    return np.sum(s ** 2) + np.sum(np.linalg.inv(A)) + np.linalg.det(A)


def array_from_scalars(x):
    v = np.array([x[0] * x[1], x[2], 1.0])
    w = np.array([x, x])
    return np.sum(v * v) + np.sum(w * v)


def where_maximum_clip(x):
    y = np.where(x > 0.0, x ** 2, -x)
    z = np.maximum(x, 0.1)
    return np.sum(y * z) + np.sum(np.clip(x, -0.5, 0.5) ** 2)


# ------------------------------------------------------------------ scalars that become arrays
def scalar_becomes_array_in_loop(x):
    acc = 0.0
    for i in range(2):
        acc = acc + x[i:i + 2] * x[i]
    return np.sum(np.sin(acc))


def scalar_or_array_by_branch(x):
    s = 0.5
    if x[0] > 0:
        s = x * 2.0
    return np.sum(np.sin(s) * x)


def one_element_slice_as_scalar(x):
    a = x[1:2]
    return np.sum(np.exp(a) * x) + np.sum(np.sqrt(a * a + 1.0))


def builtin_sum_of_list_of_arrays(x):
    parts = [x * 1.0, x ** 2, np.sin(x)]
    t = sum(parts)
    return np.sum(np.cos(t))


def float_helper_then_array(x):
    return soft(2.0) * soft(x[0]) + np.sum(soft(x))


def soft(z):
    return np.log(1.0 + np.exp(z))


def math_on_numpy_scalar(x):
    a = x[0] * 2.0
    b = np.sum(x)
    c = np.dot(x, x)
    return math.sin(a) + math.exp(b * 0.1) + math.sqrt(c)


def python_float_arg_then_array_arg(a, x):
    return np.sum(np.sin(a) * x) + np.sum(a * a)


# ------------------------------------------------------------------ dtypes
def int_table_from_full(x):
    R = np.full(3, 0)
    R[0] = x[0] * 2.3
    T = np.full(3, 0.0)
    T[1] = x[1] * 2.3
    return np.sum(R * x) + np.sum(T * x)


def float_table_from_int_ops(x, idx):
    R = idx / 1
    R[0] = x[0] ** 2
    S = idx * 0.5
    S[1] = x[1] ** 3
    U = idx.astype(float)
    U[2] = x[2] * x[0]
    return np.sum(R) + np.sum(S) + np.sum(U)


def int_table_from_int_param(x, idx):
    R = idx.copy()
    R[0] = x[0] * 10.7
    return np.sum(R * x)


def full_of_differentiable_value(x):
    R = np.full(3, x[0])
    R[1] = x[1] * R[0]
    return np.sum(R ** 2)


def arange_table_int_and_float(x):
    R = np.arange(3)
    R[0] = x[0] * 7.0
    S = np.arange(3.0)
    S[0] = x[0] * 7.0
    return np.sum(R * x) + np.sum(S * x)


def array_literal_int_vs_float(x):
    R = np.array([1, 2, 3])
    R[1] = x[1] * 4.0
    S = np.array([1, 2, 3.0])
    S[1] = x[1] * 4.0
    return np.sum(R * x) + np.sum(S * x)


def zeros_like_with_dtype(x):
    R = np.zeros_like(x, dtype=int)
    R[0] = x[0] * 10.7
    S = np.ones(3, int)
    S[2] = x[2] * 3.0
    return np.sum(R * x) + np.sum(S * x)


def float32_mixed_promotion(x32, y):
    a = x32 * 2.0
    b = x32 * y[0]
    c = x32 + y
    R = np.zeros(3, dtype=np.float32)
    R[0] = np.sum(a * b)
    return np.sum(c * c) + np.sum(R)


def bool_mask_arith(x):
    m = x > 0.0
    return np.sum(x * m) + np.sum(x[m] ** 2) + m.sum() * x[0]


# ------------------------------------------------------------------ index kinds
def fancy_from_int_matrix_row(x):
    idx2 = np.array([[0, 0], [1, 2]])
    i = idx2[0]
    R = np.zeros(3)
    R[i] = x[:2] * 3.0
    return np.sum(R * R)


def list_index_repeated(x):
    R = np.zeros(3)
    R[[0, 0]] = x[:2] * 3.0
    return np.sum(R * R)


def fancy_index_param(x, idx):
    R = np.zeros(4)
    R[idx] = x * 2.0
    R[idx] += x
    return np.sum(R ** 2)


def argsort_index_write(x):
    order = np.argsort(x)
    R = np.zeros(3)
    R[order] = x ** 2
    return np.sum(R * np.arange(3.0))


def integer_scalar_index_numpy(x):
    R = np.zeros(4)
    i = np.argmax(x)
    R[i] = x[i] ** 2
    R[np.int64(3)] = x[0]
    return np.sum(R * np.arange(1.0, 5.0))


def two_d_fancy_and_slices(X):
    R = np.zeros((3, 3))
    R[[0, 2], 1:] = X[:, :2] * 2.0
    R[1, [0, 0]] = X[0, 0] * X[1, 2]
    return np.sum(R ** 2)


def ellipsis_and_none_writes(X):
    R = np.zeros((2, 3))
    R[..., 1] = X[:, 0] ** 2
    R[0, ...] = R[0, ...] + X[0]
    return np.sum(R * X)


def add_at_2d(X):
    R = np.zeros((2, 2))
    np.add.at(R, (np.array([0, 0, 1]), np.array([1, 1, 0])), X[0])
    return np.sum(R ** 2)


# ------------------------------------------------------------------ globals and closures
N_GLOBAL = 3
W_GLOBAL = np.array([1.0, 2.0, 3.0])


def uses_global_size(x):
    R = np.zeros(N_GLOBAL)
    R[: x.shape[0]] = x * W_GLOBAL[: x.shape[0]]
    return np.sum(R ** 2) + np.sum(W_GLOBAL) * x[0]


def closure_of_size(x):
    n = x.shape[0] + 1

    def pad(v):
        R = np.zeros(n)
        R[1:] = v
        return R

    return np.sum(pad(x) ** 2 * np.arange(n)) + np.sum(pad(x * x))


def default_array_helper(a, w=np.array([1.0, 0.5, 0.25])):
    return a * w


def helper_with_array_default(x):
    return np.sum(default_array_helper(x) ** 2) + np.sum(default_array_helper(x, 2.0))


def sized_helper(v, n=2):
    R = np.zeros(n)
    R[0] = v
    return R


def helper_default_int_size(x):
    a = sized_helper(x[0])
    b = sized_helper(x[1], 4)
    c = sized_helper(x[2], n=3)
    return np.sum(a ** 2) + np.sum(b * np.arange(4.0)) + np.sum(c ** 3)


def tuple_helper(v):
    R = np.zeros(2)
    R[1] = v * 2.0
    return R, R[1] * v, len(R)


def helper_returns_table_and_scalar(x):
    R, s, n = tuple_helper(x[0])
    T, u, m = tuple_helper(x[2] * x[1])
    return np.sum(R) * s + n * x[1] + np.sum(T ** 2) + np.sum(u) * m


def plus_then_square(x, y):
    c = x + y
    return np.sum(c * c)


def shared_cotangent(x, y):
    d = y[0] ** 2
    c = x + y
    return np.sum(c * c) + d


def shared_cotangent_one_arg(x):
    y = x * 1.0
    d = y[0] ** 2
    c = x + y
    return np.sum(c * c) + d


def shared_cotangent_through_table(x):
    R = np.zeros(3)
    R[0] = x[0]
    d = R[0] ** 2
    c = x + R
    return np.sum(c * c) + d


def broadcast_param_then_index(x, y):
    return np.sum(x * y) + x[0] ** 2


def column_param_then_index(X, y):
    return np.sum(X * y) + X[0, 0] ** 2 + X[2, 0] * y[1]


def unknown_len_param_then_index(x, y, k):
    t = x[k:]
    return np.sum(t * y) + t[0] ** 2


def ones_table_plus_param(x):
    R = np.zeros((2, 1))
    R[1, 0] = x[0]
    S = R + x
    S[0, 1] = x[2] * 2.0
    return np.sum(S ** 2) + R[1, 0]


def tuple_of_arrays_index_write(X):
    R = np.zeros((2, 2))
    i = np.array([0, 0, 1])
    j = np.array([1, 1, 0])
    R[i, j] = X[0]
    R[i, j] += X[1]
    return np.sum(R ** 2)


def iadd_table_read_in_binop(x):
    R = np.zeros(3)
    s = 0.0
    for i in range(3):
        s = s + np.sum(R * x)
        R[i] += x[i] ** 2
    return s + np.sum(R * R)

def iadd_table_no_loop(x):
    R = np.ones(3)
    s = np.sum(R * x * x)
    R[1] += x[1] * 3.0
    s = s + np.sum(R * x * x)
    R[2] += x[0]
    return s + np.sum(R * R * x)


def add_at_tuple_vars(X):
    R = np.zeros((2, 2))
    i = np.array([0, 0, 1])
    j = np.array([1, 1, 0])
    np.add.at(R, (i, j), X[0])
    return np.sum(R ** 2)
def add_at_tuple_ints(x):
    R = np.zeros((2, 2))
    np.add.at(R, (1, 0), x[0])
    return np.sum(R ** 2)


# ----------------------------------------------------------------------------------------------- cases
x3 = np.array([0.3, -0.7, 1.2])
y3 = np.array([0.5, 0.1, 0.2])
x4 = np.array([0.4, -0.2, 0.9, 0.6])
x5 = np.array([0.1, 0.5, -0.3, 0.8, 0.2])
x6 = np.array([0.2, 0.4, -0.1, 0.7, 0.3, 0.5])
M23 = np.array([[0.3, 0.5, 0.9], [1.1, 0.7, 0.2]])
M33 = np.array([[1.0, 0.2, 0.3], [0.4, 1.5, 0.6], [0.7, 0.8, 1.9]])

G = ("grad", "vg")
ALL = ("grad", "jvp")
FULL = ("grad", "vg", "jvp", "hvp")  # second derivatives too, for the in-place tables

XF = {name: pytest.mark.xfail(strict=True, reason=why) for name, why in {}.items()}

CASES = [
    (alias_then_write, (x3,), {}),
    (alias_written_through_second_name, (x3,), {}),
    (view_kept_then_write, (x3,), {}),
    (transpose_view_kept, (x3,), {}),
    (reshape_view_kept, (x3,), {}),
    (none_view_kept, (x3,), {}),
    (view_read_before_write_only, (x3,), dict(modes=ALL)),
    (appended_to_list_then_written, (x3,), {}),
    (list_of_rows_snapshot, (x3,), dict(modes=ALL)),
    (stored_in_dict, (x3,), {}),
    (stored_in_tuple, (x3,), {}),
    (copy_before_write_keeps_old, (x3,), dict(modes=ALL)),
    (dp_table, (x3,), dict(modes=FULL, more=((x4,),))),
    (rows_read_earlier_rows, (x3,), dict(modes=FULL)),
    (nonlinear_read_then_overwrite, (x3,), dict(modes=FULL)),
    (product_with_table_then_write, (x3,), dict(modes=ALL)),
    (pde_boundary, (x6,), dict(modes=FULL, more=((x5,),))),
    (full_then_write_and_scale, (x3,), dict(modes=ALL)),
    (arithmetic_result_written, (x3,), dict(modes=ALL)),
    (copy_of_param_written, (x3,), dict(modes=ALL)),
    (param_written_directly, (x3,), {}),
    (helper_returns_param_then_written, (x3,), {}),
    (zeros_like_accumulate, (x3,), dict(modes=ALL)),
    (write_in_loop_with_carry_alias, (x3,), {}),
    (int_table_truncates, (x3,), G),
    (float32_table, (x3.astype(np.float32),), dict(more=((x3,),), eps=1e-3)),
    (mask_write_zero, (np.array([0.5, 1.5, -0.8, 1.2]),), dict(modes=ALL)),
    (mask_write_values, (x4,), dict(modes=FULL)),
    (fancy_repeated_set, (x4,), dict(modes=FULL)),
    (fancy_repeated_iadd, (x4,), dict(modes=FULL)),
    (add_at_repeated, (x4,), dict(modes=FULL)),
    (gather_repeated, (x3,), dict(modes=ALL)),
    (list_index_write, (x3,), {}),
    (slice_variable_bounds, (x3, 1), dict(more=((x3, 3), (x3, 0)))),
    (negative_step_slice_write, (x3,), {}),
    (concat_growth, (x4,), dict(modes=FULL, more=((x3,),))),
    (append_growth, (x3,), dict(modes=ALL)),
    (shrink_each_step, (x4,), dict(modes=FULL, more=((x3,),))),
    (shrink_while_data_dependent, (np.array([0.9, 0.5, 0.4, 0.1]),), dict(modes=ALL)),
    (tail_of_unknown_length_broadcast, (x3, 2), dict(more=((x5, 2),))),
    (strip_minus_k, (x4, 1), dict(more=((x4, 0),))),
    (negative_start, (x3,), dict(more=((x6,),))),
    (past_the_end, (x3,), dict(more=((x6,),))),
    (step_two, (x5,), dict(more=((x6,),))),
    (zeros_of_half, (x5,), dict(more=((x4,),))),
    (arange_length, (x4,), dict(more=((x3,),))),
    (reshape_minus_one, (x6,), dict(more=((x4,),))),
    (column_times_row, (x3, x4), dict(wrt=(0, 1))),
    (one_broadcasts_to_many, (np.array([0.7]), x3), dict(wrt=(0, 1), more=((np.array(0.7), x3), (0.7, x3)))),
    (zero_d_param, (np.array(0.4), x3), dict(wrt=(0, 1), more=((np.float64(0.4), x3), (0.4, x3)))),
    (keepdims_sum, (M23 + 1.0,), dict(modes=ALL)),
    (stack_and_transpose, (x3,), dict(modes=ALL)),
    (builtin_sum_of_matrix, (M23,), dict(modes=ALL)),
    (builtin_abs_min_max, (x3,), {}),
    (row_of_matrix_into_math, (M23,), dict(modes=ALL)),
    (matrix_vector, (M33, x3), dict(wrt=(0, 1))),
    (scalar_float_arg_loop, (0.4, 3), dict(modes=ALL, more=((0.4, 0),))),
    (python_int_acc, (x3,), dict(modes=ALL)),
    (int_division_and_true_division, (x4, 3), dict(more=((x4, 2), (x4, 0)))),
    (numpy_scalar_args, (np.float64(0.3), np.float64(1.7)), dict(wrt=(0, 1), more=((0.3, 1.7), (np.array(0.3), 1.7)))),
    (float32_params, (x4.astype(np.float32),), dict(more=((x4,),))),
    (helper_float_then_array, (x3,), dict(modes=ALL)),
    (helper_returns_tuple, (x3,), dict(modes=ALL)),
    (helper_chain, (x3,), dict(modes=ALL)),
    (helper_allocates_table, (x3,), dict(modes=ALL)),
    (helper_writes_its_copy, (x3,), dict(modes=FULL)),
    (helper_called_int_then_float, (np.array([0.6, 1.3, 0.8]),), dict(modes=ALL)),
    (helper_mutates_copy_of_arg, (x3,), dict(modes=ALL)),
    (newton_sqrt, (2.0,), dict(modes=("grad", "vg", "jvp"), more=((np.float64(3.0),),))),
    (while_writes_table, (np.array([0.5, 0.3]),), dict(modes=FULL)),
    (while_with_shrinking_table, (x5,), dict(modes=ALL, more=((x3,),))),
    (int_grows_in_loop, (x3,), dict(modes=ALL)),
    (int_counter_in_while, (np.array([0.5, 0.3, 0.2]),), dict(modes=FULL, more=((np.array([1.7, 0.3, 0.2]),),))),
    (int_set_in_branch, (x3,), dict(more=((-x3,),))),
    (size_arg, (x3, 4), dict(more=((x3, 2), (x3, 5)))),
    (int_arith_shapes, (x5,), dict(more=((x3,), (x4,)))),
    (shape_tuple_unpack, (M23,), dict(modes=ALL, more=((M33,),))),
    (diff_and_cumsum, (M23,), dict(modes=ALL)),
    (diag_both_ways, (x3,), dict(modes=ALL)),
    (vstack_hstack, (x3,), dict(modes=ALL, more=((x4,),))),
    (tile_repeat, (x3,), dict(modes=ALL)),
    (reductions_with_axes, (M23,), dict(modes=ALL)),
    (squeeze_expand, (x3,), dict(modes=ALL)),
    (outer_and_einsum, (x3, x4), dict(wrt=(0, 1))),
    (solve_and_inverse, (M33, x3), dict(wrt=(0, 1))),
    (array_from_scalars, (x3,), dict(modes=ALL)),
    (where_maximum_clip, (np.array([0.3, -0.7, 0.45, 0.8]),), dict(modes=ALL)),
    (scalar_becomes_array_in_loop, (x4,), dict(modes=FULL)),
    (scalar_or_array_by_branch, (x3,), dict(modes=ALL, more=((-x3,),))),
    (one_element_slice_as_scalar, (x3,), dict(modes=ALL)),
    (builtin_sum_of_list_of_arrays, (x3,), dict(modes=ALL)),
    (float_helper_then_array, (x3,), dict(modes=ALL)),
    (math_on_numpy_scalar, (x3,), dict(modes=ALL)),
    (python_float_arg_then_array_arg, (0.4, x3), dict(wrt=(0, 1), more=((x3 * 0.5, x3), (np.float32(0.4), x3)))),
    (int_table_from_full, (x3,), G),
    (float_table_from_int_ops, (x3, np.array([1, 2, 3])), dict(modes=ALL)),
    (int_table_from_int_param, (x3, np.array([1, 2, 3])), dict(modes=G, more=((x3, np.array([1.0, 2.0, 3.0])),))),
    (full_of_differentiable_value, (x3,), dict(modes=ALL)),
    (arange_table_int_and_float, (x3,), G),
    (array_literal_int_vs_float, (x3,), G),
    (zeros_like_with_dtype, (x3,), G),
    (float32_mixed_promotion, (x3.astype(np.float32), x3), dict(wrt=(0, 1), eps=1e-3)),
    (bool_mask_arith, (x3,), dict(modes=ALL)),
    (fancy_from_int_matrix_row, (x3,), dict(modes=ALL)),
    (list_index_repeated, (x3,), dict(modes=ALL)),
    (fancy_index_param, (x3, np.array([1, 3, 1])), dict(more=((x3, np.array([0, 1, 2])),))),
    (argsort_index_write, (x3,), dict(modes=ALL)),
    (integer_scalar_index_numpy, (x3,), dict(modes=ALL)),
    (two_d_fancy_and_slices, (M23,), dict(modes=ALL)),
    (ellipsis_and_none_writes, (M23,), dict(modes=ALL)),
    pytest.param(*(add_at_2d, (M23,), dict(modes=ALL)), id='add_at_2d'),
    (uses_global_size, (x3,), {}),
    (closure_of_size, (x3,), dict(modes=ALL, more=((x4,),))),
    (helper_with_array_default, (x3,), dict(modes=ALL)),
    (helper_default_int_size, (x3,), dict(modes=FULL)),
    (helper_returns_table_and_scalar, (x3,), dict(modes=ALL)),
    pytest.param(*(shared_cotangent, (x3, y3), dict(wrt=(0, 1))), id='shared_cotangent'),
    pytest.param(*(shared_cotangent_one_arg, (x3,), dict(modes=FULL)), id='shared_cotangent_one_arg'),
    (shared_cotangent_through_table, (x3,), dict(modes=ALL)),
    (broadcast_param_then_index, (np.array([0.7]), x3), dict(wrt=(0, 1))),
    (column_param_then_index, (x3.reshape(3, 1), y3), dict(wrt=(0, 1))),
    (unknown_len_param_then_index, (x3, y3, 2), dict(wrt=(0, 1), more=((x3, y3, 0),))),
    (ones_table_plus_param, (x3,), dict(modes=ALL)),
    (tuple_of_arrays_index_write, (M23,), dict(modes=ALL)),
    (iadd_table_read_in_binop, (x3,), dict(modes=ALL)),
    (iadd_table_no_loop, (x3,), dict(modes=FULL)),
    pytest.param(*(add_at_tuple_vars, (M23,), dict(modes=ALL)), id='add_at_tuple_vars'),
]


def _id(case):
    return (case.values if hasattr(case, "marks") else case)[0].__name__


@pytest.mark.parametrize("f, args, kw", CASES, ids=[_id(c) for c in CASES])
def test_adversarial(f, args, kw):
    if isinstance(kw, tuple):
        kw = dict(modes=kw)
    assert check(f, *args, **kw) in ("ok", "refused")


def test_globals_changed_between_calls():
    """Facts of module globals (a size, an array) must not outlive the globals: the same program after
    the globals change shape."""
    global N_GLOBAL, W_GLOBAL
    saved = N_GLOBAL, W_GLOBAL
    try:
        assert check(uses_global_size, x3) == "ok"
        N_GLOBAL, W_GLOBAL = 5, np.array([1.0, 2.0, 3.0, 4.0])
        assert check(uses_global_size, x3) == "ok"
        W_GLOBAL = np.array([1, 2, 3])
        assert check(uses_global_size, x3) == "ok"
    finally:
        N_GLOBAL, W_GLOBAL = saved


def test_gradients_of_two_arguments_are_distinct_arrays():
    """grad with wrt=(0, 1) of `x + y`: the two gradients must not be one array (writing one changes the
    other), and each must be right."""
    f = plus_then_square
    gx, gy = sg.grad(f, wrt=(0, 1))(x3, y3)
    close(gx, 2 * (x3 + y3), 1e-12)
    close(gy, 2 * (x3 + y3), 1e-12)
    gx[0] = 100.0
    assert gy[0] != 100.0
