"""Pytrees: dict, list, tuple, NamedTuple and dataclass arguments and return values, nested; wrt and
argnums; jvp / vjp / jacobian / hessian / hvp on them; tuple unpacking into subscripts and attributes."""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tests.srcgrad.language.harness import Case

ALL = ("reverse", "forward", "tape")


def mlp_dict_loss(params, X, y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    pred = h @ params["w2"] + params["b2"]
    return ((pred - y) ** 2).mean()


def deep_list(weights, x):
    for W in weights:
        x = np.tanh(W @ x)
    return (x ** 2).sum()


def affine_tuple(wb, X, y):
    W, b = wb
    r = X @ W + b - y
    return (r * r).sum()


class Gaussian(NamedTuple):
    mu: np.ndarray
    log_sigma: np.ndarray


def gaussian_nll(p, x):
    z = (x - p.mu) / np.exp(p.log_sigma)
    return (0.5 * z ** 2 + p.log_sigma).sum()


@dataclass
class Pendulum:
    length: float
    damping: float


def pendulum_final_angle(pend, theta0):
    theta, omega = theta0, 0.0
    for _ in range(20):
        alpha = -9.81 / pend.length * np.sin(theta) - pend.damping * omega
        omega = omega + 0.05 * alpha
        theta = theta + 0.05 * omega
    return theta ** 2


def nested_tree(params, x):
    h = x
    for W, b in params["layers"]:
        h = np.tanh(h @ W + b)
    return params["scale"] * (h ** 2).sum()


def moments(x):
    return {"mean": x.mean(), "spread": ((x - x.mean()) ** 2).sum()}


def polar(xy):
    r = np.sqrt(xy[0] ** 2 + xy[1] ** 2)
    return r, np.arctan2(xy[1], xy[0])


def two_groups(params, shift):
    return (np.sin(params["a"] + shift) ** 2).sum() + params["c"] * (shift ** 2).sum()


def weighted_sse(X, w, y):
    return ((X @ w - y) ** 2).sum()


def small_dict_energy(p):
    return (p["a"] ** 2 * p["b"]).sum() + np.sin(p["b"]) * (p["a"] ** 3).sum()


def stacked_tuple(uv):
    u, v = uv
    return np.concatenate([u * v[0], np.sin(u) + v[1]])


def rotate(a, b, angle):
    c, s = np.cos(angle), np.sin(angle)
    return c * a - s * b, s * a + c * b


def givens_sweep(x, theta):
    s = x.copy()
    for i in range(len(s) - 1):
        (s[i], s[i + 1]) = rotate(s[i], s[i + 1], theta[i])
    return np.sum(s * np.arange(1.0, len(s) + 1))


class State:
    pass


def leapfrog(q, p, h):
    p = p - 0.5 * h * np.sin(q)
    q = q + h * p
    p = p - 0.5 * h * np.sin(q)
    return q, p


def hamiltonian_flow(q0, p0):
    st = State()
    st.q, st.p = q0, p0
    for _ in range(5):
        (st.q, st.p) = leapfrog(st.q, st.p, 0.2)
    return np.sum(st.q ** 2 + st.p)


def _mlp_params(r):
    return {"W1": r.normal(size=(3, 4)), "b1": r.normal(size=4), "w2": r.normal(size=4), "b2": 0.1}


CASES = [
    Case("dict_params", mlp_dict_loss, lambda r: (_mlp_params(r), r.normal(size=(5, 3)), r.normal(size=5)),
         checks=ALL),
    Case("list_params", deep_list,
         lambda r: ([r.normal(size=(3, 3)), r.normal(size=(2, 3))], r.normal(size=3)),
         checks=ALL),
    Case("tuple_params", affine_tuple,
         lambda r: ((r.normal(size=(3, 2)), r.normal(size=2)), r.normal(size=(4, 3)), r.normal(size=(4, 2))),
         checks=ALL),
    Case("namedtuple_params", gaussian_nll,
         lambda r: (Gaussian(r.normal(size=3), 0.1 * r.normal(size=3)), r.normal(size=3)),
         checks=ALL),
    Case("dataclass_params", pendulum_final_angle, lambda r: (Pendulum(1.2, 0.3), 0.5)),
    Case("nested_pytree", nested_tree,
         lambda r: ({"layers": [(r.normal(size=(2, 3)), r.normal(size=3)), (r.normal(size=(3, 2)),
                                                                             r.normal(size=2))],
                     "scale": 1.3}, r.normal(size=2)),
         checks=ALL),
    Case("dict_output", moments, lambda r: (r.normal(size=4),), checks=("forward", "vjp", "jacobian")),
    Case("tuple_output", polar, lambda r: (np.array([0.8, 0.6]),), checks=("forward", "vjp", "jacobian")),
    Case("tuple_output_two_inputs", rotate, lambda r: (r.normal(size=3), r.normal(size=3), 0.4),
         wrt=(0, 1, 2), checks=("forward", "vjp", "jacobian")),
    Case("wrt_dict_and_array", two_groups,
         lambda r: ({"a": r.normal(size=3), "c": 0.7}, r.normal(size=3)), wrt=(0, 1),
         checks=ALL),
    Case("argnums", weighted_sse, lambda r: (r.normal(size=(4, 3)), r.normal(size=3), r.normal(size=4)),
         wrt=1, argnums=True, checks=("reverse", "forward", "vjp")),
    Case("dict_hessian_hvp", small_dict_energy, lambda r: ({"a": r.normal(size=2), "b": 0.4},),
         checks=("reverse", "forward", "tape", "hessian", "hvp")),
    Case("tuple_jacobian", stacked_tuple, lambda r: ((r.normal(size=3), r.normal(size=2)),),
         checks=("forward", "vjp", "jacobian")),
    Case("unpack_into_subscripts", givens_sweep, lambda r: (r.normal(size=5), r.normal(size=4)), wrt=(0, 1)),
    Case("unpack_into_attributes", hamiltonian_flow, lambda r: (r.normal(size=3), r.normal(size=3)),
         wrt=(0, 1)),
]
