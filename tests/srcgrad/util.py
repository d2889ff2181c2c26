"""Inputs by parameter name, and a finite-difference check of compiled gradients."""

import inspect

import numpy as np


def make_args(fn, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.default is not inspect.Parameter.empty:
            continue
        n = p.name
        if n in ("x", "y", "z"):
            out.append(float(rng.uniform(0.6, 1.4)))
        elif n in ("a", "b", "c"):
            out.append(rng.normal(size=4))
        elif n in ("M", "N"):
            out.append(rng.normal(size=(3, 3)))
        elif n == "v":
            out.append(rng.normal(size=3))
        elif n == "xs":
            out.append(rng.normal(size=(5, 3)))
        elif n in ("n", "k"):
            out.append(3)
        else:
            raise ValueError(f"no input rule for parameter {n!r}")
    return out


def diff_positions(args):
    return tuple(i for i, a in enumerate(args) if isinstance(a, (float, np.ndarray)))


def numeric_grad(f, args, i, h=1e-6):
    a = args[i]
    if isinstance(a, float):
        up = list(args)
        dn = list(args)
        up[i] = a + h
        dn[i] = a - h
        return (float(f(*up)) - float(f(*dn))) / (2 * h)
    g = np.zeros_like(a, dtype=float)
    for idx in np.ndindex(a.shape):
        up = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
        dn = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
        up[i][idx] += h
        dn[i][idx] -= h
        g[idx] = (float(np.sum(f(*up))) - float(np.sum(f(*dn)))) / (2 * h)
    return g


def assert_close(got, want, rtol=1e-5, atol=1e-6, what=""):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.allclose(got, want, rtol=rtol, atol=atol), f"{what}: got {got}, want {want}"
