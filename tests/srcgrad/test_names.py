"""Generated code never gives a name the user's function reads to another object: a user's own global
called `exp` (or `seed_of`) stays the user's, whatever the compiler binds for np.exp."""

import numpy as np

import srcgrad as sg


def exp(v):  # the user's own helper, not np.exp
    return v * 2.0


def seed_of(v):  # shares its name with a runtime helper of generated code
    return v + 1.0


def own_names_after_numpy(x):
    return np.sum(np.exp(x) + exp(x) * seed_of(x))


def own_names_first(x):
    return np.sum(exp(x) * seed_of(x) + np.exp(x))


def test_a_users_global_keeps_its_meaning_next_to_a_primitive_of_the_same_name():
    x = np.array([0.3, -0.4, 1.2])
    want = np.exp(x) + 2.0 * (x + 1.0) + 2.0 * x
    for fn in (own_names_after_numpy, own_names_first):
        np.testing.assert_allclose(sg.grad(fn)(x), want, rtol=1e-13)
        np.testing.assert_allclose(sg.jvp(fn)(x, np.ones(3))[1], want.sum(), rtol=1e-13)
