# ruff: noqa: B007, E501 -- user-style code: loop counters that only count, long lines as written
"""Finite-difference PDEs: interior updates plus boundary writes on a new array each step."""

import numpy as np

from benchmarks.corpus.program import Program


def heat_dirichlet(u0, alpha, steps=300):
    u = u0
    r = 0.4 * alpha
    for _ in range(steps):
        new = u.copy()
        new[1:-1] = u[1:-1] + r * (u[2:] - 2 * u[1:-1] + u[:-2])
        new[0] = 0.0
        new[-1] = 0.0
        u = new
    return np.sum(u**2)


def heat_neumann(u0, kappa):
    u = u0
    for n in range(300):
        un = np.zeros_like(u)
        un[1:-1] = u[1:-1] + kappa * (u[2:] - 2.0 * u[1:-1] + u[:-2])
        un[0] = un[1]
        un[-1] = un[-2]
        u = un
    return np.sum(u * u) + u[10]


def wave_leapfrog(u0, c):
    n = u0.shape[0]
    courant2 = (c * 0.5) ** 2
    u_prev = u0
    u = u0
    for step in range(250):
        u_next = np.zeros(n)
        u_next[1:-1] = 2 * u[1:-1] - u_prev[1:-1] + courant2 * (u[2:] - 2 * u[1:-1] + u[:-2])
        u_next[0] = 0.0
        u_next[-1] = 0.0
        u_prev = u
        u = u_next
    return np.sum(np.square(u - u_prev)) + np.sum(np.square(u[1:] - u[:-1]))


def burgers_upwind(u0, nu):
    u = u0
    dx = 1.0 / u0.shape[0]
    dt = 0.002
    t = 0.0
    while t < 0.3:
        back = (u - np.roll(u, 1)) / dx
        fwd = (np.roll(u, -1) - u) / dx
        adv = np.where(u > 0, u * back, u * fwd)
        diff = (np.roll(u, -1) - 2 * u + np.roll(u, 1)) / dx**2
        u = u + dt * (nu * diff - adv)
        t += dt
    return np.sum(u**2) * dx


def poisson_jacobi(f, u_left):
    n = f.shape[0]
    h2 = 1.0 / (n - 1) ** 2
    u = np.zeros((n, n))
    change = 1.0
    it = 0
    while change > 1e-4 and it < 150:
        new = np.zeros((n, n))
        new[1:-1, 1:-1] = 0.25 * (u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:] + u[1:-1, :-2] + h2 * f[1:-1, 1:-1])
        new[:, 0] = u_left
        change = np.max(np.abs(new - u))
        u = new
        it = it + 1
    return np.sum(u * f) * h2


def heat_2d(u0, alpha):
    u = u0
    for step in range(80):
        lap = u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:] + u[1:-1, :-2] - 4 * u[1:-1, 1:-1]
        u = u.copy()
        u[1:-1, 1:-1] = u[1:-1, 1:-1] + alpha * 0.2 * lap
        u[0, :] = 0.0
        u[-1, :] = 0.0
        u[:, 0] = 1.0
        u[:, -1] = 0.5 * u[:, -2]
    return np.mean(u**2)


def _x(n):
    return np.linspace(0, 1, n)


PROGRAMS = [
    Program("heat_dirichlet", "pde", heat_dirichlet,
            lambda: (np.sin(np.pi * _x(100)) + 0.3 * np.sin(7 * np.pi * _x(100)), 1.0), (0, 1),
            "1-D heat, u.copy() then interior and u[0], u[-1] writes, 300 steps (default omitted)"),
    Program("heat_neumann", "pde", heat_neumann,
            lambda: (np.exp(-50 * (_x(80) - 0.3) ** 2), 0.3), (0, 1),
            "1-D heat, zero-flux boundaries un[0] = un[1] on np.zeros_like, 300 steps"),
    Program("wave_leapfrog", "pde", wave_leapfrog,
            lambda: (np.exp(-200 * (_x(120) - 0.5) ** 2), 1.0), (0, 1),
            "1-D wave equation, leapfrog, np.zeros(n) each step with boundary writes, np.square"),
    Program("burgers_upwind", "pde", burgers_upwind,
            lambda: (0.5 + np.sin(2 * np.pi * _x(128)), 0.01), (0, 1),
            "viscous Burgers, periodic np.roll, upwind np.where, while t < 0.3"),
    Program("poisson_jacobi", "pde", poisson_jacobi,
            lambda: (np.outer(np.sin(np.pi * _x(24)), np.sin(np.pi * _x(24))) * 10.0, 0.5), (0, 1),
            "2-D Poisson, Jacobi until max change < 1e-4 (or 150 sweeps), column boundary write"),
    Program("heat_2d", "pde", heat_2d,
            lambda: (np.random.default_rng(20).uniform(0, 1, (40, 40)), 1.0), (0, 1),
            "2-D heat, 40x40, copy then row/column boundary writes, 80 steps"),
]
