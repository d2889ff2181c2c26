"""Every corpus function: compiled gradients against central finite differences, types in = types out."""

import numpy as np
import pytest

import srcgrad as sg
from tests.srcgrad.corpus import CORPUS
from tests.srcgrad.util import assert_close, diff_positions, make_args, numeric_grad


def test_corpus_is_large():
    assert len(CORPUS) >= 80


@pytest.mark.parametrize("fn", CORPUS, ids=lambda f: f.__name__)
def test_gradient_matches_finite_differences(fn):
    args = make_args(fn)
    snapshot = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    wrt = diff_positions(args)
    value, grads = sg.value_and_grad(fn, wrt=wrt)(*args)
    assert_close(value, fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in snapshot]),
                 what="value")
    for i, g in zip(wrt, grads):
        assert type(g) is type(args[i]) or (isinstance(args[i], np.ndarray) and isinstance(g, np.ndarray)), \
            f"argument {i}: {type(args[i]).__name__} in, {type(g).__name__} out"
        want = numeric_grad(fn, snapshot, i)
        assert_close(g, want, rtol=1e-4, atol=1e-5, what=f"d/d arg {i}")
    for a, s in zip(args, snapshot):  # generated code never writes into user arrays
        if isinstance(a, np.ndarray):
            assert np.array_equal(a, s)


@pytest.mark.parametrize("fn", CORPUS, ids=lambda f: f.__name__)
def test_single_wrt_and_grad(fn):
    args = make_args(fn, seed=1)
    wrt = diff_positions(args)
    g = sg.grad(fn, wrt=wrt[0])(*args)
    want = numeric_grad(fn, args, wrt[0])
    assert_close(g, want, rtol=1e-4, atol=1e-5)


class PlainArray(np.ndarray):
    """An ndarray subclass: not exactly np.ndarray, so the generic (primitive-dispatch) variant runs."""


@pytest.mark.parametrize("fn", CORPUS, ids=lambda f: f.__name__)
def test_generic_variant(fn):
    args = make_args(fn, seed=2)
    generic = [a.view(PlainArray) if isinstance(a, np.ndarray) else (np.float64(a) if isinstance(a, float)
                                                                      else a) for a in args]
    wrt = diff_positions(args)
    grads = sg.grad(fn, wrt=wrt)(*generic)
    for i, g in zip(wrt, grads):
        assert_close(g, numeric_grad(fn, args, i), rtol=1e-4, atol=1e-5, what=f"d/d arg {i}")
