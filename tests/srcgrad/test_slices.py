"""Slice syntax in user code: every spelling of a slice read and write differentiates correctly.

A regression guard: `x[1:]` was once normalized to `slice(1)`, which means `x[:1]`."""

import numpy as np
import pytest

import srcgrad as sg


def lower_only(x):
    return np.sum(x[1:] ** 2)


def upper_only(x):
    return np.sum(x[:-1] ** 2)


def both(x):
    return np.sum(x[1:-1] ** 3)


def shifted_product(x):
    return np.sum(x[:-1] * x[1:])


def step_only(x):
    return np.sum(np.sin(x[::2]))


def lower_and_step(x):
    return np.sum(x[1::2] * x[1::2])


def negative_step(x):
    return np.sum(x[::-1] * np.arange(x.shape[0]))


def full_slice(x):
    return np.sum(x[:] ** 2)


def two_d(x):
    m = np.reshape(x, (2, 3))
    return np.sum(m[1:, :2] ** 2) + np.sum(m[:, 1:])


def write_tail(x):
    y = x * 1.0
    y[2:] = x[:-2] * 3.0
    return np.sum(y ** 2)


def add_into_head(x):
    y = x * 2.0
    y[:3] += np.sin(x[3:])
    return np.sum(y * y)


def in_loop(x):
    y = x * 1.0
    for i in range(1, x.shape[0]):
        y[i:] = y[i:] + 0.5 * y[i - 1]
    return np.sum(y ** 2)


FUNCTIONS = [lower_only, upper_only, both, shifted_product, step_only, lower_and_step, negative_step,
             full_slice, two_d, write_tail, add_into_head, in_loop]


def finite_differences(f, x, eps=1e-6):
    return np.array([(f(x + e) - f(x - e)) / (2 * eps) for e in np.eye(x.size) * eps])


@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.__name__)
def test_slice_gradients_match_finite_differences(f):
    x = np.linspace(0.3, 1.7, 6)
    before = x.copy()
    np.testing.assert_allclose(sg.grad(f)(x), finite_differences(f, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.__name__)
def test_slice_tangents_match_finite_differences(f):
    x = np.linspace(0.3, 1.7, 6)
    t = np.linspace(-1.0, 1.0, 6)
    _, jt = sg.jvp(f)(x, t)
    np.testing.assert_allclose(jt, finite_differences(f, x) @ t, rtol=1e-6, atol=1e-7)
