# ruff: noqa: B007, E501 -- user-style code: loop counters that only count, long lines as written
"""ODE integrators on NumPy arrays: fixed horizons (while t < T) and stopping when a norm is small."""

import numpy as np

from benchmarks.corpus.program import Program


def _rng(seed):
    return np.random.default_rng(seed)


def lorenz96_rhs(x, F):
    return (np.roll(x, -1) - np.roll(x, 2)) * np.roll(x, 1) - x + F


def lorenz96_rk4(x0, F):
    x = x0
    t = 0.0
    dt = 0.01
    while t < 0.6:
        k1 = lorenz96_rhs(x, F)
        k2 = lorenz96_rhs(x + 0.5 * dt * k1, F)
        k3 = lorenz96_rhs(x + 0.5 * dt * k2, F)
        k4 = lorenz96_rhs(x + dt * k3, F)
        x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t += dt
    return np.mean(x**2)


def damped_chain_until_rest(x0, k, c):
    # masses on a line, springs to both neighbours, run until the energy is small
    x = x0
    v = np.zeros_like(x0)
    dt = 0.05
    energy = 1.0
    steps = 0
    while energy > 1e-3 and steps < 3000:
        lap = np.zeros_like(x)
        lap[1:-1] = x[2:] - 2.0 * x[1:-1] + x[:-2]
        lap[0] = x[1] - 2.0 * x[0]
        lap[-1] = x[-2] - 2.0 * x[-1]
        a = k * lap - c * v
        v = v + dt * a
        x = x + dt * v
        energy = 0.5 * np.sum(v * v) + 0.5 * k * np.sum(np.diff(x) ** 2)
        steps += 1
    return np.sum(x * np.arange(x.shape[0]))


def linear_ode_euler(A, y0):
    y = y0
    t = 0.0
    h = 0.002
    while t < 1.0:
        y = y + h * (A @ y)
        t = t + h
    return np.sum(np.square(y))


def brusselator_1d(u0, v0, a, b):
    u = u0
    v = v0
    D = 0.02
    dt = 0.01
    for it in range(300):
        lap_u = np.roll(u, 1) + np.roll(u, -1) - 2 * u
        lap_v = np.roll(v, 1) + np.roll(v, -1) - 2 * v
        uuv = u * u * v
        u = u + dt * (a - (b + 1) * u + uuv + D * lap_u / 0.01)
        v = v + dt * (b * u - uuv + D * lap_v / 0.01)
    return np.sum(u) + 0.5 * np.sum(v ** 2)


def gradient_flow(x0, Q, b):
    x = x0
    g = Q @ x - b
    while np.linalg.norm(g) > 1e-8:
        x = x - 0.2 * g
        g = Q @ x - b
    return np.dot(x, x) + np.sum(np.sin(x))


def neural_ode(W1, b1, W2, y0):
    y = y0
    t = 0.0
    dt = 0.05
    while t < 1.0:
        k1 = W2 @ np.tanh(W1 @ y + b1)
        k2 = W2 @ np.tanh(W1 @ (y + dt * k1 / 2) + b1)
        k3 = W2 @ np.tanh(W1 @ (y + dt * k2 / 2) + b1)
        k4 = W2 @ np.tanh(W1 @ (y + dt * k3) + b1)
        y = y + dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        t = t + dt
    return np.sum((y - 1.0) ** 2)


def _lorenz_inputs():
    return (8.0 + _rng(1).standard_normal(40), 8.0)


def _chain_inputs():
    x0 = np.sin(np.linspace(0, 3 * np.pi, 60))
    return (x0, 1.5, 0.4)


def _linear_inputs():
    r = _rng(2)
    A = r.standard_normal((30, 30)) / np.sqrt(30) - 0.5 * np.eye(30)
    return (A, r.standard_normal(30))


def _bruss_inputs():
    r = _rng(3)
    return (1.0 + 0.1 * r.standard_normal(64), 3.0 + 0.1 * r.standard_normal(64), 1.0, 2.5)


def _flow_inputs():
    r = _rng(4)
    M = r.standard_normal((12, 12))
    Q = M @ M.T / 12 + np.eye(12)
    Q = Q / np.linalg.eigvalsh(Q).max() * 2.0
    return (r.standard_normal(12), Q, r.standard_normal(12))


def _node_inputs():
    r = _rng(5)
    return (r.standard_normal((32, 8)) / 3, 0.1 * r.standard_normal(32), r.standard_normal((8, 32)) / 6,
            r.standard_normal(8))


PROGRAMS = [
    Program("lorenz96_rk4", "ode_array", lorenz96_rk4, _lorenz_inputs, (0, 1),
            "Lorenz-96, 40 variables, RK4 with np.roll, while t < 0.6"),
    Program("damped_chain_until_rest", "ode_array", damped_chain_until_rest, _chain_inputs, (0, 1, 2),
            "spring chain with boundary writes, until energy < 1e-3", fd_rtol=1e-4),
    Program("linear_ode_euler", "ode_array", linear_ode_euler, _linear_inputs, (0, 1),
            "y' = A y, 30x30, Euler, while t < 1 (np.square)"),
    Program("brusselator_1d", "ode_array", brusselator_1d, _bruss_inputs, (0, 1, 2, 3),
            "reaction-diffusion on a ring of 64 cells, 300 Euler steps"),
    Program("gradient_flow", "ode_array", gradient_flow, _flow_inputs, (0, 1, 2),
            "gradient flow on a quadratic until the gradient norm < 1e-8"),
    Program("neural_ode", "ode_array", neural_ode, _node_inputs, (0, 1, 2, 3),
            "neural ODE (8 -> 32 -> 8 tanh field), RK4, while t < 1"),
]
