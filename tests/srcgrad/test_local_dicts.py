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
    _grad_and_jvp_agree(fn)


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
    _grad_and_jvp_agree(fn)


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


# ----------------------------------------------------------------------------------------------------
# a dict placed whole inside another (`outer = {"inner": inner}`): the two share their items, as the one
# dict object does in Python


def nested_whole(x):
    inner = {"w": x * 2.0, "c": 1.0}
    outer = {"inner": inner, "b": np.sin(x)}
    return np.sum(outer["inner"]["w"] * outer["b"]) + outer["inner"]["c"]


def nested_whole_written_through_both_names(x):
    inner = {"w": x * 2.0}
    outer = {"inner": inner, "b": np.sin(x)}
    inner["w"] = inner["w"] * outer["b"]            # seen through outer["inner"] too
    outer["inner"]["w"] = outer["inner"]["w"] + x ** 2   # and this through inner
    for _ in range(2):
        outer["b"] = outer["b"] * 0.5 + inner["w"]
        inner["w"] += outer["b"]
    top = {"o": outer, "extra": {"v": inner}}
    inner = {"w": x}                                # a new dict: outer keeps the old one
    return np.sum(top["o"]["inner"]["w"] * top["extra"]["v"]["w"] + inner["w"] * outer["b"])


def nested_whole_by_key(x):
    inner = {"w": x * 2.0}
    outer = {}
    outer["inner"] = inner
    before = np.sum(outer["inner"]["w"])
    inner["w"] = inner["w"] * 3.0
    return before + np.sum(outer["inner"]["w"] ** 2)


def _scaled(d, s):
    return {"inner": d["inner"], "s": d["s"] * s}


def nested_whole_through_a_helper(x):
    inner = {"w": np.tanh(x)}
    state = {"inner": inner, "s": 1.0}
    state = _scaled(state, 2.0)                     # the helper returns the inner dict whole
    return np.sum(state["inner"]["w"]) * state["s"]


@pytest.mark.parametrize("fn", [nested_whole, nested_whole_written_through_both_names, nested_whole_by_key,
                                nested_whole_through_a_helper])
def test_a_dict_placed_whole_inside_another(fn):
    _grad_and_jvp_agree(fn)


def new_key_into_a_shared_dict(x):
    inner = {"w": x}
    outer = {"inner": inner}
    inner["new"] = x * 2.0          # Python's outer["inner"] has it too
    return np.sum(outer["inner"]["w"])


def shared_dict_rebound_in_a_loop(x):
    inner = {"w": x}
    outer = {"inner": inner}
    for _ in range(2):
        inner = {"w": inner["w"] * 2.0}   # outer keeps the first dict
    return np.sum(outer["inner"]["w"] + inner["w"])


def shared_item_replaced_by_a_new_dict(x):
    inner = {"w": x}
    outer = {"inner": inner}
    outer["inner"] = {"w": x * 3.0}       # inner keeps its own
    return np.sum(outer["inner"]["w"] + inner["w"])


def placed_whole_in_a_loop(x):
    inner = {"w": x}
    for _ in range(2):
        outer = {"inner": inner}
    return np.sum(outer["inner"]["w"])


@pytest.mark.parametrize("fn, match", [
    (new_key_into_a_shared_dict, "new key or a new dict written into inner, a dict that holds another"),
    (shared_dict_rebound_in_a_loop, "a loop or branch binding again inner"),
    (shared_item_replaced_by_a_new_dict, "new key or a new dict written into outer"),
    (placed_whole_in_a_loop, r"placed whole inside another dict \(outer\['inner'\]\) inside a loop"),
])
def test_a_dict_placed_whole_where_sharing_cannot_be_kept_is_refused(fn, match):
    with pytest.raises(TransformError, match=match) as info:
        sg.grad(fn)(np.array([0.3, -0.7, 1.1]))
    assert "Instead:" in str(info.value) and "test_local_dicts.py" in str(info.value)


def argument_dict_placed_whole(p, x):
    outer = {"p": p, "x": x}
    return np.sum(np.tanh(outer["p"]["w"] * outer["x"]))


def argument_dict_placed_whole_and_written(p, x):
    outer = {"p": p}
    outer["p"]["w"] = x                   # would change the caller's dict
    return np.sum(outer["p"]["w"])


def test_an_argument_dict_placed_whole_is_read_and_not_written():
    p, x = {"w": np.array([0.4, -1.2, 0.8])}, np.array([0.3, -0.7, 1.1])
    gp, gx = sg.grad(argument_dict_placed_whole, argnums=(0, 1))(p, x)
    np.testing.assert_allclose(gp["w"], numeric_grad(lambda w: argument_dict_placed_whole({"w": w}, x),
                                                     [p["w"].copy()], 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gx, numeric_grad(argument_dict_placed_whole, [p, x.copy()], 1),
                               rtol=1e-6, atol=1e-8)
    with pytest.raises(TransformError, match="write into"):
        sg.grad(argument_dict_placed_whole_and_written, argnums=(0, 1))(p, x)
    assert np.array_equal(p["w"], [0.4, -1.2, 0.8])


# ----------------------------------------------------------------------------------------------------
# another name for a dict (`e = d`, a loop variable over its items) while the dict is bound again in a
# loop: the loop carries the new values in the variables both names read


def alias_rebound_in_a_loop(x):
    d = {"a": x}
    e = d
    for _ in range(2):
        e = {"a": e["a"] * 2.0}            # Python leaves d the first dict
    return np.sum(d["a"] + e["a"])


def item_variable_read_after_the_dict_is_rebound(x):
    net = {"l1": {"w": x}, "l2": {"w": x * 2.0}}
    total = 0.0
    for _, layer in net.items():
        total = total + np.sum(layer["w"])
    for _ in range(2):
        net = {"l1": {"w": net["l1"]["w"] * 2.0}, "l2": {"w": net["l2"]["w"] * 3.0}}
    return total + np.sum(layer["w"] + net["l1"]["w"])   # layer: the first l2 dict


def alias_copied_before_the_loop(x):
    d = {"a": x}
    e = d
    e = {"a": e["a"]}                      # a new dict of the items: its own variables
    for _ in range(2):
        e = {"a": e["a"] * 2.0}
    return np.sum(d["a"] + e["a"] ** 2)


def alias_not_read_after(x):
    d = {"a": np.sin(x)}
    e = d
    for _ in range(2):
        e = {"a": e["a"] * 2.0}
    return np.sum(e["a"] * x)


@pytest.mark.parametrize("fn", [alias_rebound_in_a_loop, item_variable_read_after_the_dict_is_rebound])
def test_a_dict_rebound_in_a_loop_while_another_name_holds_it_is_refused(fn):
    # these gave wrong gradients silently before (the other name saw the loop's values)
    with pytest.raises(TransformError, match="bound again inside a loop or branch, where .* is another "
                       "name for the dict") as info:
        sg.grad(fn)(np.array([0.3, -0.7, 1.1]))
    assert "a new dict literal of the items before the loop" in str(info.value)


@pytest.mark.parametrize("fn", [alias_copied_before_the_loop, alias_not_read_after])
def test_a_dict_rebound_in_a_loop_after_an_alias_that_is_not_read_after(fn):
    x = np.array([0.3, -0.7, 1.1])
    g = sg.grad(fn)(x)
    np.testing.assert_allclose(g, numeric_grad(fn, [x.copy()], 0), rtol=1e-6, atol=1e-8)
    t = np.array([0.2, 0.5, -1.0])
    _, d = sg.jvp(fn)(x, t)
    np.testing.assert_allclose(d, g @ t, rtol=1e-6)


# a helper's returned dict passed whole to another helper: loss(forward(p, x))


def _forward(p, x):
    h = np.tanh(p["W"] @ x)
    return {"h": h, "out": p["v"] @ h}


def _loss(o):
    return o["out"] ** 2 + 0.1 * np.sum(o["h"] ** 2)


def composed(p, x):
    return _loss(_forward(p, x))


def _energy(d):
    return np.sum(d["q"] * d["p"])


def passed_whole_after_a_read(x):
    return np.sum(_step(x)["q"]) + _energy(_step(x * 0.5))


def passed_whole_after_a_user_call(x):
    return _energy(_step(x)) + np.sum(_step(x)["q"])   # _energy runs before the second _step


def test_a_returned_dict_passed_whole_to_a_helper():
    rng = np.random.default_rng(3)
    p, x = {"W": rng.normal(size=(3, 3)), "v": rng.normal(size=3)}, rng.normal(size=3)
    gp, gx = sg.grad(composed, argnums=(0, 1))(p, x)
    for k in p:
        want = numeric_grad(lambda a, k=k: composed({**p, k: a}, x), [p[k].copy()], 0)
        np.testing.assert_allclose(gp[k], want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gx, numeric_grad(composed, [p, x.copy()], 1), rtol=1e-6, atol=1e-8)
    t = rng.normal(size=3)
    _, d = sg.jvp(composed, argnums=1)(p, x, t)
    np.testing.assert_allclose(d, gx @ t, rtol=1e-6)
    x = np.array([0.3, -0.7, 1.1])
    g = sg.grad(passed_whole_after_a_read)(x)
    want = numeric_grad(passed_whole_after_a_read, [x.copy()], 0)
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-8)
    with pytest.raises(TransformError, match="after a call in the same statement"):
        sg.grad(passed_whole_after_a_user_call)(x)


def _grad_and_jvp_agree(fn):
    """fn's gradient against finite differences, its jvp's value against fn and its product against
    the gradient's."""
    x = np.array([0.3, -0.7, 1.1])
    g = sg.grad(fn)(x)
    np.testing.assert_allclose(g, numeric_grad(fn, [x.copy()], 0), rtol=1e-6, atol=1e-8)
    t = np.array([0.2, 0.5, -1.0])
    value, d = sg.jvp(fn)(x, t)
    np.testing.assert_allclose(value, fn(x), rtol=1e-12)
    np.testing.assert_allclose(d, g @ t, rtol=1e-6)
