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
