# ruff: noqa: B007, E501 -- user-style code: loop counters that only count, long lines as written
"""ODE integrators on Python floats, written with `math` as a user would, most with a `while t < T` stop."""

import math

import numpy as np

from benchmarks.corpus.program import Program


def pendulum_rk4(c, L):
    g = 9.81
    dt = 0.01
    t = 0.0
    th = 1.2
    om = 0.0
    while t < 8.0:
        k1t = om
        k1o = -g / L * math.sin(th) - c * om
        k2t = om + 0.5 * dt * k1o
        k2o = -g / L * math.sin(th + 0.5 * dt * k1t) - c * (om + 0.5 * dt * k1o)
        k3t = om + 0.5 * dt * k2o
        k3o = -g / L * math.sin(th + 0.5 * dt * k2t) - c * (om + 0.5 * dt * k2o)
        k4t = om + dt * k3o
        k4o = -g / L * math.sin(th + dt * k3t) - c * (om + dt * k3o)
        th = th + dt / 6.0 * (k1t + 2.0 * k2t + 2.0 * k3t + k4t)
        om = om + dt / 6.0 * (k1o + 2.0 * k2o + 2.0 * k3o + k4o)
        t = t + dt
    return th * th + om * om


# The spelling many users start from: np.sin on Python floats. Its `math` twin is the unit.
def pendulum_np(damping, length):
    theta = 1.0
    omega = 0.0
    dt = 0.01
    for step in range(1500):
        acc = -(9.81 / length) * np.sin(theta) - damping * omega
        theta = theta + dt * omega
        omega = omega + dt * acc
    return theta


def pendulum_np_math(damping, length):
    theta = 1.0
    omega = 0.0
    dt = 0.01
    for step in range(1500):
        acc = -(9.81 / length) * math.sin(theta) - damping * omega
        theta = theta + dt * omega
        omega = omega + dt * acc
    return theta


def projectile_drag(v0, angle, k):
    x = 0.0
    y = 0.0
    vx = v0 * math.cos(angle)
    vy = v0 * math.sin(angle)
    dt = 0.001
    while y >= 0.0:
        speed = math.sqrt(vx * vx + vy * vy)
        ax = -k * speed * vx
        ay = -9.81 - k * speed * vy
        x += dt * vx
        y += dt * vy
        vx += dt * ax
        vy += dt * ay
    return (x - 20.0) ** 2


def lotka_volterra(a, b, c, d):
    prey = 10.0
    pred = 5.0
    t = 0.0
    dt = 0.005
    while t < 12.0:
        dprey = a * prey - b * prey * pred
        dpred = d * prey * pred - c * pred
        # midpoint rule
        mprey = prey + 0.5 * dt * dprey
        mpred = pred + 0.5 * dt * dpred
        prey = prey + dt * (a * mprey - b * mprey * mpred)
        pred = pred + dt * (d * mprey * mpred - c * mpred)
        t += dt
    return (prey - 8.0) ** 2 + (pred - 6.0) ** 2


def sir_epidemic(beta, gamma):
    s = 0.99
    i = 0.01
    r = 0.0
    t = 0.0
    dt = 0.1
    burden = 0.0
    while t < 160.0:
        new_inf = beta * s * i
        new_rec = gamma * i
        s = s - dt * new_inf
        i = i + dt * (new_inf - new_rec)
        r = r + dt * new_rec
        burden = burden + dt * i
        t = t + dt
    return burden + 10.0 * r * r


def van_der_pol(mu, x0=2.0, v0=0.0, dt=0.005, t_end=10.0):
    x = x0
    v = v0
    t = 0.0
    while t < t_end:
        a = mu * (1.0 - x**2) * v - x
        x_half = x + 0.5 * dt * v
        v_half = v + 0.5 * dt * a
        a_half = mu * (1.0 - x_half**2) * v_half - x_half
        x = x + dt * v_half
        v = v + dt * a_half
        t = t + dt
    return x * x + v * v


def spring_verlet(k, m):
    x = 1.0
    v = 0.0
    dt = 0.002
    acc = -(k * x + 0.3 * x**3) / m
    for n in range(2500):
        x = x + v * dt + 0.5 * acc * dt * dt
        new_acc = -(k * x + 0.3 * x**3) / m
        v = v + 0.5 * (acc + new_acc) * dt
        acc = new_acc
    energy = 0.5 * m * v * v + 0.5 * k * x * x + 0.075 * x**4
    return energy


def kepler_orbit(e):
    x = 1.0 - e
    y = 0.0
    vx = 0.0
    vy = math.sqrt((1.0 + e) / (1.0 - e))
    t = 0.0
    dt = 0.002
    while t < 2.0 * math.pi:
        r3 = (x * x + y * y) ** 1.5
        ax = -x / r3
        ay = -y / r3
        vx = vx + dt * ax
        vy = vy + dt * ay
        x = x + dt * vx
        y = y + dt * vy
        t = t + dt
    return x * x + 2.0 * y


PROGRAMS = [
    Program("pendulum_rk4", "ode_float", pendulum_rk4, lambda: (0.15, 1.3), (0, 1),
            "damped pendulum, RK4 on floats, while t < 8 (800 steps)", math_forward=pendulum_rk4),
    Program("pendulum_np", "ode_float", pendulum_np, lambda: (0.1, 1.0), (0, 1),
            "Euler pendulum, np.sin on Python floats (1500 steps)", math_forward=pendulum_np_math),
    Program("projectile_drag", "ode_float", projectile_drag, lambda: (20.0, 0.7, 0.02), (0, 1, 2),
            "projectile with quadratic drag until it lands (while y >= 0)", math_forward=projectile_drag,
            fd_rtol=1e-4),
    Program("lotka_volterra", "ode_float", lotka_volterra, lambda: (1.1, 0.4, 0.4, 0.1), (0, 1, 2, 3),
            "predator-prey, midpoint rule, while t < 12", math_forward=lotka_volterra),
    Program("sir_epidemic", "ode_float", sir_epidemic, lambda: (0.3, 0.1), (0, 1),
            "SIR model, Euler, while t < 160", math_forward=sir_epidemic),
    Program("van_der_pol", "ode_float", van_der_pol, lambda: (1.5,), (0,),
            "Van der Pol oscillator, midpoint, four defaults omitted", math_forward=van_der_pol),
    Program("spring_verlet", "ode_float", spring_verlet, lambda: (2.0, 0.5), (0, 1),
            "anharmonic spring, velocity Verlet, 2500 steps", math_forward=spring_verlet),
    Program("kepler_orbit", "ode_float", kepler_orbit, lambda: (0.3,), (0,),
            "two-body orbit, symplectic Euler, while t < 2 pi", math_forward=kepler_orbit),
]
