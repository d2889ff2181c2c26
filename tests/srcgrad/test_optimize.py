"""The unit-seed fold of NumPy variants: fewer passes over the data, same values, same types, and
never the caller's own array handed back as a gradient."""

import numpy as np

import srcgrad as sg


def elementwise(x):
    return np.sum(np.sin(x) * np.exp(-x ** 2))


def weighted(x, idx):
    return np.sum(x * idx)


def bilinear(x, y):
    return np.sum(x * y)


def test_fold_removes_the_broadcast_seed_and_reuses_forward_products():
    x = np.linspace(-2.0, 2.0, 7)
    g = sg.grad(elementwise)
    got = g(x)
    src = g.source_for(x)
    assert "broadcast_to" not in src and "seed_of" not in src
    np.testing.assert_allclose(got, (np.cos(x) - 2 * x * np.sin(x)) * np.exp(-x ** 2), rtol=1e-12)


def test_integer_factor_keeps_a_float_gradient():
    g = sg.grad(weighted)(np.ones(4), np.arange(4))
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, [0.0, 1.0, 2.0, 3.0])


def test_gradient_is_never_the_callers_array():
    x, y = np.ones(3), np.arange(3.0)
    gx, gy = sg.grad(bilinear, wrt=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, y)
    np.testing.assert_array_equal(gy, x)
    assert not np.shares_memory(gx, y) and not np.shares_memory(gy, x)
