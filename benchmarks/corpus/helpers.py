# ruff: noqa: B007, E501 -- user-style code: loop counters that only count, long lines as written
"""Helpers calling helpers, and defaults omitted in calls: the pendulum with seven parameters called with
two or with all seven, a small network built from layer helpers, a float integrator whose step is a
helper returning a tuple."""

import math

import numpy as np

from benchmarks.corpus.program import Program


def pendulum7(c, L, g=9.81, dt=0.01, steps=2000, theta0=1.0, omega0=0.0):
    theta = theta0
    omega = omega0
    for _ in range(steps):
        alpha = -(g / L) * np.sin(theta) - c * omega
        theta = theta + dt * omega
        omega = omega + dt * alpha
    return theta


def pendulum7_math(c, L, g=9.81, dt=0.01, steps=2000, theta0=1.0, omega0=0.0):
    theta = theta0
    omega = omega0
    for _ in range(steps):
        alpha = -(g / L) * math.sin(theta) - c * omega
        theta = theta + dt * omega
        omega = omega + dt * alpha
    return theta


def relu(z):
    return np.maximum(z, 0.0)


def dense(x, W, b, scale=1.0):
    return scale * (x @ W + b)


def predict(params_W1, params_b1, params_W2, params_b2, X):
    h = relu(dense(X, params_W1, params_b1))
    return dense(h, params_W2, params_b2)


def mse(pred, target):
    return np.mean(np.square(pred - target))


def mlp_helpers(W1, b1, W2, b2, X, Y):
    return mse(predict(W1, b1, W2, b2, X), Y) + 1e-4 * (np.sum(W1 * W1) + np.sum(W2**2))


def spring_force(x, k, cubic=0.1):
    return -k * x - cubic * x**3


def leapfrog_step(x, v, k, dt=0.005):
    v_half = v + 0.5 * dt * spring_force(x, k)
    x_new = x + dt * v_half
    v_new = v_half + 0.5 * dt * spring_force(x_new, k)
    return x_new, v_new


def energy(x, v, k):
    return 0.5 * v * v + 0.5 * k * x * x + 0.025 * x**4


def leapfrog_helpers(x0, v0, k):
    x = x0
    v = v0
    t = 0.0
    while t < 10.0:
        x, v = leapfrog_step(x, v, k)
        t += 0.005
    return energy(x, v, k) + math.cos(x)


def rosen_term(a, b, scale=100.0):
    return scale * (b - a * a) ** 2 + (1 - a) ** 2


def rosen_chain(x):
    total = 0.0
    for i in range(x.shape[0] - 1):
        total += rosen_term(x[i], x[i + 1])
    return total


def _mlp_inputs():
    r = np.random.default_rng(100)
    return (r.standard_normal((64, 128)) / 8, np.zeros(128), r.standard_normal((128, 10)) / 11, np.zeros(10),
            r.standard_normal((256, 64)), r.standard_normal((256, 10)))


PROGRAMS = [
    Program("pendulum7_omitted", "helpers", pendulum7, lambda: (0.1, 1.0), (0, 1),
            "Euler pendulum, np.sin on floats, 2000 steps, called with 2 of its 7 parameters",
            math_forward=pendulum7_math, group="pendulum7"),
    Program("pendulum7_passed", "helpers", pendulum7, lambda: (0.1, 1.0, 9.81, 0.01, 2000, 1.0, 0.0), (0, 1),
            "the same, all 7 passed", math_forward=pendulum7_math, group="pendulum7"),
    Program("mlp_helpers", "helpers", mlp_helpers, _mlp_inputs, (0, 1, 2, 3),
            "64->128->10 ReLU net from relu/dense/predict/mse helpers, default scale omitted"),
    Program("leapfrog_helpers", "helpers", leapfrog_helpers, lambda: (1.0, 0.0, 2.0), (0, 1, 2),
            "float leapfrog, step helper returning a tuple and calling a force helper, while t < 10",
            math_forward=leapfrog_helpers),
    Program("rosen_chain", "helpers", rosen_chain,
            lambda: (np.random.default_rng(101).uniform(0.5, 1.5, 1500),), (0,),
            "chained Rosenbrock over 1,500 elements, helper on x[i], x[i + 1] with a default"),
]
