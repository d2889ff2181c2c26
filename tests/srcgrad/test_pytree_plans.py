"""The per-call path of transforms given pytrees (srcgrad/leafwise.py `Leafwise.serve`): a call structured
as an earlier one runs that call's plan, generated code that checks the structure, reads the leaves and
builds the gradient's structure. Whatever changes between calls (keys added, removed or reordered, a leaf
that becomes an array or an int, a named tuple where a tuple was, an object's attribute that becomes a
parameter, a global rebound) must give the right result: each call is checked against a closed form,
after calls of other structures have made their plans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pytest

import srcgrad as sg
from srcgrad import codegen

RNG = np.random.default_rng(12)


def _plans(name: str) -> int:
    return sum(f"plan of {name} " in k for k in codegen.SOURCES)


def _close(a: Any, b: Any) -> None:
    """a and b of the same structure (the same container types, keys and order), leaves equal."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _close(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif a is None:
        assert b is None
    else:
        assert np.shape(a) == np.shape(b)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ a dict whose keys change between calls
def weighted(p, x):
    total = 0.0
    for i, v in enumerate(p.values()):
        total = total + (i + 1.0) * np.sum(v * v * x)
    return total


def weighted_grad(p, x):
    return {k: 2.0 * (i + 1.0) * v * x for i, (k, v) in enumerate(p.items())}


def test_dict_keys_added_removed_reordered_between_calls():
    g = sg.grad(weighted)
    x = RNG.normal(size=3)
    a, b, c = (RNG.normal(size=3) for _ in range(3))
    calls = [{"a": a, "b": b}, {"a": a, "b": b, "c": c}, {"b": b, "a": a}, {"a": a}, {"a": a, "b": b},
             {"c": c, "a": a, "b": b}, {"b": b, "a": a}, {"a": a, "b": b, "c": c}]
    for p in calls * 2:
        _close(g(p, x), weighted_grad(p, x))
    assert _plans("weighted") >= 1


def test_dict_values_change_shape_and_leaf_kind_between_calls():
    g = sg.grad(weighted)
    x = 1.5
    for p in [{"a": np.ones(3), "b": np.arange(2.0)}, {"a": np.ones((2, 2)), "b": np.arange(2.0)},
              {"a": 0.5, "b": np.arange(2.0)}, {"a": np.ones(3), "b": np.arange(2.0)},
              {"a": np.ones(3, dtype=np.float32), "b": np.arange(2.0)}, {"a": 0.5, "b": 2.0}] * 2:
        got = g(p, x)
        _close(got, {k: (type(v)(e) if isinstance(v, float) else e.astype(v.dtype))
                     for (k, v), e in zip(p.items(), weighted_grad(p, x).values(), strict=True)})
        assert type(got["a"]) is type(p["a"])


def test_a_leaf_that_becomes_an_integer_has_no_gradient_and_back():
    def f(p):
        return np.sum(p["w"] * 2.0) + np.sum(p["n"] * p["w"])

    g = sg.grad(f)
    w = RNG.normal(size=4)
    for n in [3, 3.0, 3, np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 2, 3, 4]), 3.0]:
        got = g({"w": w, "n": n})
        assert np.allclose(got["w"], 2.0 + n * np.ones(4))
        if isinstance(n, float):
            assert type(got["n"]) is float and got["n"] == pytest.approx(np.sum(w))
        elif isinstance(n, np.ndarray) and n.dtype.kind == "f":
            assert np.allclose(got["n"], w)
        else:
            assert got["n"] is None


def test_nested_dict_whose_inner_structure_changes():
    def f(p, x):
        return np.sum(np.tanh(p["l1"]["W"] @ x + p["l1"]["b"]) ** 2)

    g = sg.grad(f)
    W, b, x = RNG.normal(size=(4, 3)), RNG.normal(size=4), RNG.normal(size=3)

    def expected(b_leaf):
        h = np.tanh(W @ x + b_leaf)
        d = 2 * h * (1 - h * h)
        return np.outer(d, x), d

    for p in [{"l1": {"W": W, "b": b}}, {"l1": {"b": b, "W": W}}, {"l1": {"W": W, "b": b, "s": "tag"}},
              {"l1": {"W": W, "b": b}, "extra": 1.0}, {"l1": {"W": W, "b": b}}] * 2:
        got = g(p, x)
        dW, db = expected(b)
        assert np.allclose(got["l1"]["W"], dW) and np.allclose(got["l1"]["b"], db)
        assert list(got) == list(p) and list(got["l1"]) == list(p["l1"])
        if "extra" in p:
            assert got["extra"] == 0.0


def test_list_whose_length_changes():
    def f(ws, x):
        total = 0.0
        for w in ws:
            total = total + np.sum(np.sin(w) * x)
        return total

    g = sg.grad(f)
    x = RNG.normal(size=2)
    for n in [2, 3, 1, 2, 3]:
        ws = [RNG.normal(size=2) for _ in range(n)]
        got = g(ws, x)
        assert type(got) is list and len(got) == n
        for w, gw in zip(ws, got, strict=True):
            assert np.allclose(gw, np.cos(w) * x)
        got_t = g(tuple(ws), x)
        assert type(got_t) is tuple and len(got_t) == n


# ------------------------------------------------------------------ a named tuple against a tuple
class Pair(NamedTuple):
    a: Any
    b: Any


class Other(NamedTuple):
    p: Any
    q: Any


def product(t):
    a, b = t
    return np.sum(a * np.exp(b))


def test_named_tuple_against_tuple_of_the_same_length():
    g = sg.grad(product)
    a, b = RNG.normal(size=3), RNG.normal(size=3)
    for t in [(a, b), Pair(a, b), (a, b), Other(a, b), Pair(a, b), [a, b]] * 2:
        got = g(t)
        assert type(got) is type(t)
        assert np.allclose(got[0], np.exp(b)) and np.allclose(got[1], a * np.exp(b))
    vg = sg.value_and_grad(product)
    for t in [(a, b), Pair(a, b)]:
        value, got = vg(t)
        assert value == pytest.approx(product(t)) and type(got) is type(t)


# ------------------------------------------------------------------ dataclasses and objects
@dataclass
class Params:
    w: Any
    b: Any


def affine(p, x):
    return np.sum(p.w * x + p.b * p.b)


def test_dataclass_field_changes_from_float_to_array():
    g = sg.grad(affine)
    x = RNG.normal(size=3)
    b = RNG.normal(size=3)
    for w in [2.0, RNG.normal(size=3), 0.5, np.ones((1, 3)), 2.0]:
        got = g(Params(w, b), x)
        assert type(got) is Params
        if isinstance(w, float):
            assert type(got.w) is float and got.w == pytest.approx(np.sum(x))
        else:
            assert got.w.shape == w.shape and np.allclose(got.w, np.broadcast_to(x, w.shape))
        assert np.allclose(got.b, 2 * b)


@dataclass
class Twin:  # Params's fields under another class: its gradient is a Twin
    w: Any
    b: Any


@dataclass
class Holder:
    w: Any
    layer: Any  # an object: read the slow way, below a dataclass


def test_dataclass_against_another_with_the_same_fields_and_nested():
    g = sg.grad(affine)
    x, w, b = RNG.normal(size=3), RNG.normal(size=3), RNG.normal(size=3)
    for cls in [Params, Twin, Params, Twin]:
        got = g(cls(w, b), x)
        assert type(got) is cls and np.allclose(got.w, x) and np.allclose(got.b, 2 * b)

    def nested(p, x):
        return np.sum(p["pair"].a * x) + np.sum(p["rec"].w ** 2) + p["rec"].b

    gn = sg.grad(nested)
    for b_leaf in [1.0, 2.0, 1.0]:
        got = gn({"pair": Pair(w, b), "rec": Params(w, b_leaf)}, x)
        assert type(got["pair"]) is Pair and np.allclose(got["pair"].a, x) and np.allclose(got["pair"].b, 0)
        assert type(got["rec"]) is Params and np.allclose(got["rec"].w, 2 * w) and got["rec"].b == 1.0


def held(h, x):
    return np.sum(h.w * x) + h.layer.scale * np.sum(np.sin(h.layer.w * x))


def test_dataclass_holding_an_object():
    g = sg.grad(held)
    x, w = RNG.normal(size=3), RNG.normal(size=3)
    for scale in [2.0, 3.0, 2.0]:
        got = g(Holder(w, Layer(w, scale)), x)
        assert np.allclose(got.w, x)
        assert np.allclose(got.layer["w"], scale * np.cos(w * x) * x)


class Layer:
    def __init__(self, w, scale):
        self.w, self.scale = w, scale

    def __call__(self, x):
        return self.scale * np.sum(np.sin(self.w * x))


def use_layer(layer, x):
    return layer(x)


def test_object_attribute_changes_from_setting_to_parameter_and_shape():
    g = sg.grad(use_layer)
    x = RNG.normal(size=3)
    for w, scale in [(RNG.normal(size=3), 2), (RNG.normal(size=3), 2.0), (0.7, 2.0),
                     (RNG.normal(size=3), 2), (RNG.normal(size=(2, 3)), 2.0), (RNG.normal(size=3), 2)]:
        layer = Layer(w, scale)
        got = g(layer, x)
        expected = scale * np.cos(w * x) * x
        assert np.allclose(got["w"], np.sum(expected) if isinstance(w, float) else expected)
        if isinstance(scale, float):   # a float attribute is a parameter; an int one is a setting
            assert got["scale"] == pytest.approx(np.sum(np.sin(w * x)))
        else:
            assert "scale" not in got


def test_object_given_a_new_attribute_between_calls():
    g = sg.grad(use_layer)
    x = RNG.normal(size=3)
    w = RNG.normal(size=3)
    plain = Layer(w, 3.0)
    tagged = Layer(w, 3.0)
    tagged.note = "seen"
    extra = Layer(w, 3.0)
    extra.unused = np.ones(2)
    for layer in [plain, tagged, extra, plain, extra, tagged]:
        got = g(layer, x)
        assert np.allclose(got["w"], 3.0 * np.cos(w * x) * x)
        if layer is extra:
            assert np.allclose(got["unused"], 0.0)
        else:
            assert "unused" not in got


class Model:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def hidden(self, x):
        return np.tanh(self.W @ x + self.b)

    def loss(self, x):
        return np.sum(self.hidden(x) ** 2)


def test_bound_method_whose_object_changes_between_calls():
    x = RNG.normal(size=3)
    model = Model(RNG.normal(size=(4, 3)), RNG.normal(size=4))
    g = sg.grad(model.loss)
    for W, b in [(model.W, model.b), (RNG.normal(size=(2, 3)), RNG.normal(size=2)), (model.W, 0.3),
                 (RNG.normal(size=(4, 3)), RNG.normal(size=4))] * 2:
        model.W, model.b = W, b
        h = np.tanh(W @ x + b)
        assert np.allclose(g(x), W.T @ (2 * h * (1 - h * h)))


# ------------------------------------------------------------------ keywords, globals, other transforms
def test_keyword_arguments_and_defaults():
    def f(p, x, scale=2.0):
        return scale * np.sum(p["w"] * x)

    g = sg.grad(f)
    w, x = RNG.normal(size=3), RNG.normal(size=3)
    for _ in range(2):
        assert np.allclose(g({"w": w}, x)["w"], 2.0 * x)
        assert np.allclose(g({"w": w}, x, 3.0)["w"], 3.0 * x)
        assert np.allclose(g({"w": w}, x, scale=4.0)["w"], 4.0 * x)
        assert np.allclose(g(p={"w": w}, x=x)["w"], 2.0 * x)


_ACT = np.tanh


def activated(p):
    return np.sum(_ACT(p["w"]))


def test_a_global_rebound_after_plans_are_made():
    global _ACT
    g = sg.grad(activated)
    w = RNG.normal(size=3)
    for _ in range(2):
        assert np.allclose(g({"w": w})["w"], 1 - np.tanh(w) ** 2)
    try:
        _ACT = np.sin
        for _ in range(2):
            assert np.allclose(g({"w": w})["w"], np.cos(w))
    finally:
        _ACT = np.tanh
    assert np.allclose(g({"w": w})["w"], 1 - np.tanh(w) ** 2)


def test_many_structures_in_turn():
    g = sg.grad(weighted)
    x = 0.5
    trees = [{f"k{j}": np.full(2, float(j + 1)) for j in range(n)} for n in range(1, 13)]
    for _ in range(3):
        for p in trees:
            _close(g(p, x), weighted_grad(p, x))


def mlp(p, x):
    return np.tanh(p["W"] @ x + p["b"])


def test_jvp_vjp_jacobian_hvp_repeated_calls():
    W, b, x = RNG.normal(size=(3, 2)), RNG.normal(size=3), RNG.normal(size=2)
    p = {"W": W, "b": b}
    t = {"W": RNG.normal(size=(3, 2)), "b": RNG.normal(size=3)}
    d = 1 - np.tanh(W @ x + b) ** 2
    v = RNG.normal(size=3)
    for q in [p, {"b": b, "W": W}, p]:
        value, tangent = sg.jvp(mlp)(q, x, t)
        assert np.allclose(value, np.tanh(W @ x + b))
        assert np.allclose(tangent, d * (t["W"] @ x + t["b"]))
        value, ct = sg.vjp(mlp)(q, x, v)
        assert list(ct) == list(q)
        assert np.allclose(ct["W"], np.outer(v * d, x)) and np.allclose(ct["b"], v * d)
        J = sg.jacobian(mlp)(q, x)
        assert np.allclose(J["b"], np.diag(d)) and J["W"].shape == (3, 3, 2)

    def energy(q):
        return np.sum(q["a"] ** 3) + q["c"] * np.sum(q["a"])

    q = {"a": RNG.normal(size=3), "c": 2.0}
    for _ in range(3):
        value, hv = sg.hvp(energy)(q, {"a": np.ones(3), "c": 1.0})
        assert np.allclose(hv["a"], 6 * q["a"] + 1.0) and hv["c"] == pytest.approx(3.0)


def test_structure_errors_stay_clear():
    g = sg.grad(weighted)
    x = 1.0
    g({"a": np.ones(2)}, x)
    with pytest.raises(TypeError, match="no floating-point leaves"):
        g({"a": np.arange(2)}, x)
    assert np.allclose(g({"a": np.ones(2)}, x)["a"], 2.0)
    with pytest.raises(TypeError, match="no floating-point leaves"):
        g({"a": np.ones(2) + 1j}, x)
    assert np.allclose(g({"a": np.ones(2)}, x)["a"], 2.0)


def chain(ws, x):
    h = x
    for w in ws:
        h = np.sin(w * h)
    return np.sum(h)


def test_jvp_of_several_arguments_with_structured_tangents_and_bad_tangents():
    ws, x = [RNG.normal(size=3), RNG.normal(size=3)], RNG.normal(size=3)
    tw, tx = [RNG.normal(size=3), RNG.normal(size=3)], RNG.normal(size=3)
    eps = 1e-6

    def moved(s):
        return chain([w + s * t for w, t in zip(ws, tw, strict=True)], x + s * tx)

    expected = (moved(eps) - moved(-eps)) / (2 * eps)
    j = sg.jvp(chain, wrt=(0, 1))
    for tangent in [(tw, tx), (tuple(tw), tx), [tw, tx]] * 2:
        value, dot = j(ws, x, tangent)
        assert value == pytest.approx(chain(ws, x)) and dot == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError):
        j(ws, x, (tw[:1], tx))
    with pytest.raises(ValueError):
        j(ws, x, (tw,))
    jd = sg.jvp(weighted)
    p = {"a": RNG.normal(size=2), "b": RNG.normal(size=2)}
    for _ in range(2):
        _, dot = jd(p, 1.0, {"b": np.ones(2), "a": np.zeros(2)})
        assert dot == pytest.approx(np.sum(4.0 * p["b"]))
    with pytest.raises(KeyError):
        jd(p, 1.0, {"a": np.ones(2)})
