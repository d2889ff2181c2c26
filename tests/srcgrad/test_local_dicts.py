"""Dicts a function builds from literals with constant keys (srcgrad/flatten.py `localize_dicts`): one
variable per key, checked against finite differences in reverse and forward mode."""

from __future__ import annotations

import numpy as np
import pytest

import srcgrad as sg
from srcgrad import TransformError
from tests.srcgrad.util import numeric_grad


def swap_in_a_loop(x):
    d = {"a": x * 2.0, "b": np.sin(x)}
    d["c"] = d["a"] * d["b"]              # a new key
    for _ in range(3):
        d = {"a": d["b"], "b": d["a"] + 1.0, "c": d["c"] * 0.5}   # rebound with the same keys
    total = 0.0
    for k, v in d.items():
        total = total + np.sum(v ** 2) * (2.0 if k == "c" else 1.0)
    return total


def built_by_key(x):
    acc = {"lin": 0.0, "sq": 0.0}
    for i in range(x.shape[0]):
        acc["lin"] = acc["lin"] + x[i]
        acc["sq"] = acc["sq"] + x[i] ** 2
    return acc["sq"] - acc["lin"] ** 2 / x.shape[0] + sum(acc.values())


def _pair(d):
    return d["a"] * d["b"]


def passed_to_a_helper(x):
    d = {"a": x, "b": np.cos(x)}
    return np.sum(_pair(d))


def new_key_in_a_loop(x):
    d = {"a": x}
    for i in range(2):
        d["b"] = x * i
    return np.sum(d["a"] + d["b"])


def new_key_in_a_loop_of_n(x, n):
    d = {"a": x}
    for i in range(n):   # may run no pass: whether d has "b" after it is not known
        d["b"] = x * i
    return np.sum(d["a"] + d["b"])


def returned(x):
    out = {}
    out["mean"] = np.mean(x)
    out["energy"] = np.sum(x ** 2)
    return out


def keys_added_in_loops_of_known_items(x):
    d = {"a": x}
    for i in range(2):                     # range(2) runs: its first pass adds "b", written out
        d["b"] = x * i + d["a"]
    for k in ("c", "e"):                   # a key per item: the loop written out
        d[k] = np.sin(d["b"]) * d["a"]
        d["a"] = d["a"] * 0.5 + d[k]
    for i in range(3):                     # int keys from a range of constant bounds
        d[i] = d["c"] * i + d["e"]
    return np.sum(d["a"] * d["b"] + d["c"] * d["e"]) + np.sum(d[0] * d[1] + d[2])


@pytest.mark.parametrize("fn", [swap_in_a_loop, built_by_key, passed_to_a_helper, new_key_in_a_loop,
                                keys_added_in_loops_of_known_items])
def test_a_local_dict_is_differentiated_by_key(fn):
    x = np.array([0.3, -0.7, 1.1])
    g = sg.grad(fn)(x)
    np.testing.assert_allclose(g, numeric_grad(fn, [x.copy()], 0), rtol=1e-6, atol=1e-8)
    t = np.array([0.2, 0.5, -1.0])
    _, d = sg.jvp(fn)(x, t)
    np.testing.assert_allclose(d, g @ t, rtol=1e-6)


def test_a_key_added_inside_a_loop_is_refused_with_what_to_write():
    with pytest.raises(TransformError, match="new key 'b' added to d inside a loop"):
        sg.grad(new_key_in_a_loop_of_n)(np.ones(2), 2)


def test_a_local_dict_returned_comes_back_as_a_dict_under_jvp():
    x = np.array([1.0, 2.0, 4.0])
    value, tangent = sg.jvp(returned)(x, np.array([1.0, 0.0, 0.0]))
    assert value == {"mean": pytest.approx(7 / 3), "energy": pytest.approx(21.0)}
    assert tangent == {"mean": pytest.approx(1 / 3), "energy": pytest.approx(2.0)}


# ----------------------------------------------------------------------------------------------------
# a helper's returned dict read where it is called (`step(s)["q"]`): unpacked just before the statement


def _step(s):
    return {"q": s * 2.0, "p": np.sin(s)}


def _nested(s):
    return {"inner": {"w": s * s, "c": np.cos(s)}, "b": np.exp(-s)}


def _measure(x):
    return np.sum(x ** 2), {"acc": np.tanh(x), "n": x * 0.5}


def read_at_the_call(x):
    return np.sum(_step(x)["q"] * _step(x * 0.5)["p"])


def nested_read_at_the_call(x):
    y = _nested(x)["inner"]["w"] + _nested(x * 0.5)["b"] * _measure(x)[0]
    return np.sum(y * _measure(x)[1]["acc"]) + np.sum(_measure(x)[-1]["n"])


def looped_over_at_the_call(x):
    t = 0.0
    for k, v in _step(x).items():
        t = t + np.sum(v) * (2.0 if k == "q" else 1.0)
    for v in _nested(x)["inner"].values():
        t = t + np.sum(v ** 2)
    for _ in range(2):
        x = _step(x)["p"] + 0.1 * x          # in a loop: unpacked on every pass, where it runs
    if np.sum(_step(x)["q"]) > -100.0:       # an if test: made once, before the branch
        t = t + 1.0
    return t + np.sum(x) * len(_step(x))


@pytest.mark.parametrize("fn", [read_at_the_call, nested_read_at_the_call, looped_over_at_the_call])
def test_a_returned_dict_read_at_the_call(fn):
    x = np.array([0.3, -0.7, 1.1])
    g = sg.grad(fn)(x)
    np.testing.assert_allclose(g, numeric_grad(fn, [x.copy()], 0), rtol=1e-6, atol=1e-8)
    t = np.array([0.2, 0.5, -1.0])
    value, d = sg.jvp(fn)(x, t)
    np.testing.assert_allclose(value, fn(x), rtol=1e-12)
    np.testing.assert_allclose(d, g @ t, rtol=1e-6)


_CALLS = {"n": 0}


def _counted(x):
    _CALLS["n"] += 1
    return x


def read_after_a_user_call(x):
    return np.sum(_counted(x) * _step(x)["q"])   # _counted runs first: the read cannot move before it


def read_in_a_while_test(x):
    while np.sum(_step(x)["q"]) < 10.0:         # read on every pass
        x = x * 2.0
    return np.sum(x)


def read_in_a_conditional_expression(x):
    return np.sum(x if x[0] > 100.0 else _step(x)["q"])


@pytest.mark.parametrize("fn, match", [
    (read_after_a_user_call, "after a call in the same statement that may change what it reads"),
    (read_in_a_while_test, "the dict that _step returns .* read where it is called"),
    (read_in_a_conditional_expression, "the dict that _step returns .* read where it is called"),
])
def test_a_returned_dict_read_at_the_call_where_the_call_cannot_move_is_refused(fn, match):
    with pytest.raises(TransformError, match=match) as info:
        sg.grad(fn)(np.array([0.3, -0.7, 1.1]))
    assert "s = _step(...)" in str(info.value)   # what to write instead
