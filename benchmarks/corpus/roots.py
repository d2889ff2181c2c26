# ruff: noqa: B007, E501 -- user-style code: loop counters that only count, long lines as written
"""Root finders: Newton and fixed-point iterations that stop at a tolerance."""

import math

import numpy as np

from benchmarks.corpus.program import Program


def newton_sqrt_each(a):
    total = 0.0
    for i in range(a.shape[0]):
        c = a[i]
        x = c
        while abs(x * x - c) > 1e-12 * c:
            x = 0.5 * (x + c / x)
        total = total + x * math.log(c)
    return total


def kepler_newton(M, e):
    E = M + e * np.sin(M)
    resid = E - e * np.sin(E) - M
    while np.max(np.abs(resid)) > 1e-12:
        E = E - resid / (1.0 - e * np.cos(E))
        resid = E - e * np.sin(E) - M
    return np.sum(np.cos(E)) + np.sum(E**2)


def implicit_euler_newton(k, y0):
    # stiff y' = -k (y^3 - cos t), each backward-Euler step solved by Newton
    y = y0
    t = 0.0
    h = 0.05
    while t < 10.0:
        t = t + h
        z = y
        r = z - y + h * k * (z**3 - math.cos(t))
        while abs(r) > 1e-12:
            z = z - r / (1.0 + 3.0 * h * k * z * z)
            r = z - y + h * k * (z**3 - math.cos(t))
        y = z
    return y


def fixed_point_cos(a):
    x = np.zeros_like(a)
    delta = 1.0
    while delta > 1e-12:
        x_new = np.cos(a * x)
        delta = np.max(np.abs(x_new - x))
        x = x_new
    return np.sum(x * a)


PROGRAMS = [
    Program("newton_sqrt_each", "root", newton_sqrt_each,
            lambda: (np.random.default_rng(30).uniform(0.5, 50.0, 60),), (0,),
            "Newton square root of each a[i] (math.log, abs, while tolerance), 60 values", fd_rtol=1e-4),
    Program("kepler_newton", "root", kepler_newton,
            lambda: (np.linspace(0.1, 6.0, 2000), 0.6), (0, 1),
            "Kepler's equation for 2000 mean anomalies, vectorized Newton until max residual < 1e-12"),
    Program("implicit_euler_newton", "root", implicit_euler_newton, lambda: (20.0, 0.5), (0, 1),
            "stiff ODE on floats, backward Euler with an inner Newton loop", math_forward=implicit_euler_newton),
    Program("fixed_point_cos", "root", fixed_point_cos,
            lambda: (np.random.default_rng(31).uniform(0.2, 0.9, 500),), (0,),
            "x = cos(a x) to a fixed point, vectorized over 500 a"),
]
