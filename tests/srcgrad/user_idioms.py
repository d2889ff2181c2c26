"""User functions for test_user_idioms.py (module level: srcgrad reads their source)."""

import functools
import time

import numpy as np

from srcgrad import grad


def scaled(f):
    @functools.wraps(f)
    def w(*a):
        return 3.0 * f(*a)
    return w


def logged(f):
    @functools.wraps(f)
    def w(*args, **kwargs):
        t0 = time.perf_counter()
        out = f(*args, **kwargs)
        _ = time.perf_counter() - t0
        return out
    return w


def penalised(f):
    @functools.wraps(f)
    def w(x):
        return f(x) + 0.5 * np.sum(x * x)
    return w


@scaled
def scaled_loss(x):
    return np.sum(x ** 2)


@logged
def logged_loss(x):
    return np.sum(x ** 2)


@penalised
def penalised_loss(x):
    return np.sum(np.sin(x))


@penalised
def penalised_helper(x):
    return np.sum(x ** 3)


def calls_decorated_helper(x):
    return penalised_helper(x) * 2.0


def through_item(x):
    return (x[0] * x[1]).item() + x[2]


def through_float(x):
    return float(np.sum(x * x)) * x[0]


def through_tolist(x):
    return sum(x.tolist())


def early_return_or_loop(x):
    s = np.sum(x)
    if s > 0:
        return np.sum(x * x)
    q = np.sum(x)
    for _ in range(2):
        q = s
    return q


def _stack(x):  # a user name generated code also uses
    return x * 2.0


def uses_generated_names(x):
    _stack_ = _stack(x)
    b_out = np.sum(_stack_ ** 2)
    _t1 = b_out * 1.0
    return _t1


def no_return(x):
    _ = x * 2.0


def returns_str(x):
    return "x"


def sum_of_list(x):
    a = np.sum(x)
    return np.sum([1.0, a * a, 2.0])


def cube_sum(x):
    return np.sum(x ** 3)


d_cube_sum = grad(cube_sum)


def calls_a_gradient(x):
    return np.sum(d_cube_sum(x) * x)


def pendulum(c, L, g=9.81, dt=0.01, steps=50, theta0=1.0, omega0=0.0):
    theta, omega = theta0, omega0
    for _ in range(steps):
        omega = omega - dt * (g / L) * np.sin(theta) - dt * c * omega
        theta = theta + dt * omega
    return theta


def element_loop(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + np.sin(x[i]) * x[i]
    return s


def gather_loop(x, idx):
    s = 0.0
    for k in range(idx.shape[0]):
        s = s + x[idx[k]] ** 2 * (k + 1.0)
    return s


def element_loop_returning_buffer_twice(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + x[i] * x[i]
    return s


def rnn_state_passed(W, U, xs, h):
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
    return np.sum(h * h)


def rnn_state_zeros(W, U, xs):
    h = np.zeros(4)
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
    return np.sum(h * h)


def shape_bug_helper(A, v):
    return A @ v


def shape_bug(W, xs):
    h = np.zeros(3)
    for t in range(xs.shape[0]):
        h = np.tanh(shape_bug_helper(W, h) + xs[t])
    return np.sum(h)


def shape_bug_in_loop(W, xs):
    h = np.zeros(3)
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
    return np.sum(h)


# ---- found by testing as a new user would (each was silently wrong or crashed)
SCALE_A = 0.99
SCALE_B = 0.99  # the same number object as SCALE_A: one name must not serve both


def equal_constants(x):
    if SCALE_A > 5.0:
        return x
    return SCALE_B * x


def pair(u, w):
    return u + w, u * w


def overwritten_by_a_constant_pair(y):
    z = y * 2.0
    y, _ = pair(0.5, 0.2)
    return np.sum(y + z)


def writes_first(u):
    u[0] = u[1] * 0.63
    return u


def assigned_back_but_shared(b):
    d1 = b * 1.0
    d3 = d1
    d1 = writes_first(d1)
    return np.dot(d3, d3)


def assigned_back(b):
    d1 = b * 1.0
    d1 = writes_first(d1)
    return np.dot(d1, d1)


def doubles_in_place(z):
    z *= 2.0
    return np.sum(z)


def helper_scales_callers_array(x):
    y = x * 1.0
    return doubles_in_place(y) + np.sum(y)


def helper_scales_a_number(x):
    y = np.sum(x)
    return doubles_in_place(y) + y


def sets_first(z):
    z[0] = 9.0
    return np.sum(z)


def helper_writes_a_view(x):
    y = x * 1.0
    return sets_first(y[:1]) + np.sum(y * x)


def prescale(fn):
    @functools.wraps(fn)
    def wrapper(x):
        x = x * 2.0
        return fn(x)
    return wrapper


@prescale
def prescaled(x):
    return np.sum(x ** 2)


square = lambda z: z * z  # noqa: E731 -- a module-level lambda called as a helper


def calls_module_lambda(x):
    return np.sum(square(x))


def array_default(x, w=np.ones(3)):  # noqa: B008 -- an array default, as users write it
    return np.sum(x * w)


MODULE_W = np.array([1.0, 2.0, 3.0])


def writes_module_array_through_a_name(x):
    y = MODULE_W
    y += x
    return np.sum(y * x)


def writes_module_array(x):
    MODULE_W[:] = x
    return np.sum(MODULE_W ** 2)


def dot_into(x):
    C = np.zeros((3, 3))
    np.dot(np.outer(x, x), np.diag(x), out=C)
    return np.sum(C)


def array_copy_then_write(x):
    y = np.array(x)
    y[1] = 5.0 * x[0]
    return np.sum(y * x)


def int_array_written_with_floats(x):
    y = np.zeros(2, dtype=int)
    y[:] = x[:2] * 10.0
    return np.sum(y * 1.0) + np.sum(x)


def view_with_no_arguments(x):
    return np.sum(x.view() ** 2)


def flatten_then_write(x):
    y = x.flatten()
    y[1] = 3.0 * x[0]
    return np.sum(y * x)


def astype_without_copy(x):
    return np.sum(x.astype(float, copy=False) ** 2)


def einsum_implicit_output(x):
    return np.einsum("i,i", x, x) + np.sum(np.einsum("ij,jk", np.outer(x, x), np.outer(x, x)))


MODULE_A = np.array([[1.0, 2.0, 0.5], [3.0, 4.0, -1.0], [0.0, 1.0, 2.0]])


def einsum_with_a_module_array(x):
    return np.sum(np.einsum("ij,j->i", MODULE_A, x) ** 2)


def helper_writes_into_a_saved_array(M):
    d1 = np.ones(4)
    s3 = np.sum(np.dot(M, d1))
    d1 = writes_first(d1)
    return s3 + np.sum(d1)


def write_after_a_differentiated_read(M):
    y = np.ones(4)
    s = np.sum(np.dot(M, y))
    y[0] = 5.0
    return s + np.sum(y * y)


def aliased_augmented_twice(x, a):
    d1 = a / 1.0
    d4 = d1
    d4 -= x
    d1 += a
    return np.sum(d4)


def helper_writes_a_saved_array_in_a_loop(M):
    d1 = np.ones(4)
    s3 = np.sum(np.dot(M, d1))
    for _ in range(2):
        d1 = writes_first(d1)
    return s3


def accumulates_into_its_default(x, buf=np.zeros(3)):  # noqa: B008 -- the mutable-default idiom
    buf += x
    return np.sum(buf ** 2)


def astype_shares_then_write(x):
    y = x.astype(float, copy=False)
    y[1] = 4.0 * x[0]
    return np.sum(y * x)


def astype_copies_then_write(x):
    y = x.astype(float)
    y[1] = 4.0 * x[0]
    return np.sum(y * x)
