"""A new user's programs (small ML models, physics, statistics) against central finite differences.

Each program is written the way a JAX / HIPS-autograd / PyTorch user would write it. Programs that
expose srcgrad bugs are strict xfails with a one-line reason."""

import functools
import math
from collections import namedtuple
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pytest

import srcgrad as sg

from .harness import (
    assert_unchanged,
    axpy,
    check_grad,
    fd_grad,
    fd_leaf,
    get,
    leaves,
    random_like,
    snapshot,
)

RNG = np.random.default_rng(20240601)


def rn(*shape):
    return RNG.normal(size=shape)


# ----------------------------------------------------------------------------------------------------
# pytrees: dicts


def mlp2(params, x):
    h = np.tanh(params["l1"]["W"] @ x + params["l1"]["b"])
    out = params["l2"]["W"] @ h + params["l2"]["b"]
    return np.sum(out ** 2)


def test_nested_dict_mlp():
    p = {"l1": {"W": rn(4, 3), "b": rn(4)}, "l2": {"W": rn(2, 4), "b": rn(2)}}
    g = check_grad(mlp2, p, rn(3))
    assert set(g) == {"l1", "l2"} and set(g["l1"]) == {"W", "b"}


def ridge(params, X, y, lam):
    pred = X @ params["w"] + params["b"]
    return np.mean((pred - y) ** 2) + lam * np.sum(params["w"] ** 2)


def test_dict_with_argnums_tuple_mixed_with_arrays_and_floats():
    p = {"w": rn(3), "b": 0.3}
    X, y = rn(8, 3), rn(8)
    g = check_grad(ridge, p, X, y, 0.1, argnums=(0, 3))
    assert isinstance(g, tuple) and isinstance(g[0]["b"], float | np.floating | np.ndarray)


def test_dict_argnums_picks_the_data_not_the_params():
    p = {"w": rn(3), "b": 0.3}
    check_grad(ridge, p, rn(8, 3), rn(8), 0.1, argnums=1)


def softmax_xent(hidden, head, x, labels):
    h = x
    for W, b in hidden:
        h = np.maximum(h @ W + b, 0.0)
    logits = h @ head[0] + head[1]
    logits = logits - np.max(logits, axis=1, keepdims=True)
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(labels.shape[0]), labels])


def test_list_of_tuples_classifier_with_integer_labels():
    hidden = [(rn(3, 5), rn(5)), (rn(5, 5), rn(5))]
    head = (rn(5, 4), rn(4))
    x = rn(6, 3)
    labels = np.array([0, 3, 1, 2, 2, 0])
    g = check_grad(softmax_xent, hidden, head, x, labels, argnums=(0, 1))
    assert isinstance(g[0], list) and all(isinstance(t, tuple) for t in g[0]) and isinstance(g[1], tuple)


def all_but_last(layers, x):
    for W, b in layers[:-1]:
        x = np.tanh(W @ x + b)
    return np.sum(x)


def unpack_one_layer(layers, x):
    W, b = layers[1]
    return np.sum(W @ x + b)


def index_by_loop_var(layers, x):
    for i in range(len(layers)):
        x = np.tanh(layers[i][0] @ x + layers[i][1])
    return np.sum(x)


@pytest.mark.parametrize("f", [all_but_last, unpack_one_layer])
def test_refused_list_of_layers_idioms(f):
    layers = [(rn(2, 2), rn(2)), (rn(2, 2), rn(2))]
    with pytest.raises(sg.TransformError):
        sg.grad(f)(layers, rn(2))


def test_list_of_layers_indexed_by_the_loop_variable_of_a_range_of_its_length():
    # range(len(layers)) has constant bounds: the loop is written out, layers[i] read by constant keys
    layers = [(rn(2, 2), rn(2)), (rn(2, 2), rn(2))]
    g = check_grad(index_by_loop_var, layers, rn(2), argnums=(0, 1))
    assert isinstance(g[0], list) and all(isinstance(t, tuple) for t in g[0])
    x, t = rn(2), rn(2)
    _, tangent = sg.jvp(index_by_loop_var, argnums=1)(layers, x, t)
    want = fd_leaf(lambda z: index_by_loop_var(layers, z), x, ()) @ t
    np.testing.assert_allclose(tangent, want, rtol=1e-5, atol=1e-8)


class LinParams(NamedTuple):
    w: np.ndarray
    b: float


def linreg(p, X, y):
    r = X @ p.w + p.b - y
    return 0.5 * np.dot(r, r)


def test_typing_namedtuple_params():
    g = check_grad(linreg, LinParams(rn(3), 0.2), rn(5, 3), rn(5))
    assert isinstance(g, LinParams)


def test_typing_namedtuple_jvp():
    p = LinParams(rn(3), 0.2)
    X, y = rn(5, 3), rn(5)
    t = LinParams(rn(3), 0.7)
    v, tan = sg.jvp(linreg)(p, X, y, t)
    g = fd_grad(linreg, (p, X, y), 0)
    want = sum(float(np.sum(g[path] * get(t, path))) for path in g)
    assert v == pytest.approx(linreg(p, X, y))
    assert tan == pytest.approx(want, rel=1e-6)


@dataclass
class Oscillator:
    k: np.ndarray       # spring constants
    damping: float
    steps: int


def simulate(osc, x0):
    x, v = x0, np.zeros_like(x0)
    dt = 0.05
    for _ in range(osc.steps):
        a = -osc.k * x - osc.damping * v
        v = v + dt * a
        x = x + dt * v
    return np.sum(x ** 2)


def test_dataclass_with_int_field_controlling_a_loop():
    osc = Oscillator(np.array([1.0, 2.0, 0.5]), 0.1, 20)
    g = check_grad(simulate, osc, np.array([1.0, -0.5, 0.3]))
    assert isinstance(g, Oscillator)


def test_dataclass_hessian_wrt_initial_state_and_argnums_both():
    osc = Oscillator(np.array([1.0, 2.0, 0.5]), 0.1, 10)
    check_grad(simulate, osc, np.array([1.0, -0.5, 0.3]), argnums=(0, 1))


def weird_keys(p):
    return np.sum(p["layer-1/W"] ** 2) + p[0] * np.sum(p["x"]) + p["with space"] + p[-1.5] * p[True]


def test_keys_that_are_not_identifiers():
    p = {"layer-1/W": rn(2, 2), 0: 1.5, "x": rn(3), "with space": 0.25, -1.5: 2.0, True: 0.5}
    g = check_grad(weird_keys, p)
    assert set(g) == set(p)


def tuple_key(p):
    return np.sum(p[("enc", 1)] ** 2)


def test_a_tuple_key():
    check_grad(tuple_key, {("enc", 1): rn(3)})


def with_empties(p, x):
    return np.sum(np.tanh(p["W"] @ x)) + len(p["extra"]) + len(p["hist"])


def test_empty_containers_inside_the_tree():
    p = {"W": rn(2, 3), "extra": {}, "hist": []}
    g = check_grad(with_empties, p, rn(3))
    assert g["extra"] == {} and g["hist"] == []


def with_int_leaves(p, x):
    h = x
    for _ in range(p["depth"]):
        h = np.tanh(p["W"] @ h)
    return np.sum(h) * p["scale"]


def test_integer_leaves_get_no_gradient():
    p = {"W": 0.5 * rn(3, 3), "depth": 3, "scale": 2.0}
    g = check_grad(with_int_leaves, p, rn(3))
    assert g["depth"] is None or np.all(np.asarray(g["depth"]) == 0)


def gaussian_nll(theta, data):
    mu, log_sigma = theta["mu"], theta["log_sigma"]
    sigma = np.exp(log_sigma)
    z = (data - mu) / sigma
    return np.sum(0.5 * z ** 2 + log_sigma) + 0.5 * data.shape[0] * math.log(2 * math.pi)


def test_dict_of_python_floats_gaussian_nll():
    theta = {"mu": 0.3, "log_sigma": -0.2}
    g = check_grad(gaussian_nll, theta, rn(20))
    assert isinstance(g, dict)


def test_dict_of_floats_hessian_is_fisher_information():
    theta = {"mu": 0.3, "log_sigma": -0.2}
    data = rn(20)
    H = sg.hessian(gaussian_nll)(theta, data)

    def grad_k(k):
        return lambda th: sg.grad(gaussian_nll)(th, data)[k]
    for a in theta:
        for b in theta:
            want = fd_leaf(grad_k(a), theta, (("k", b),))
            assert float(np.asarray(H[a][b])) == pytest.approx(float(want), rel=1e-5, abs=1e-6)


def sum_over_items(params):
    total = 0.0
    for _name, v in params.items():
        total = total + np.sum(np.sin(v))
    return total + sum(np.sum(v) for v in params.values())


def test_iterating_items_values():
    check_grad(sum_over_items, {"a": rn(3), "b": rn(2, 2), "c": rn(1)})


def index_by_key_loop(params):
    total = 0.0
    for k in params:
        total = total + np.sum(params[k] ** 2)
    return total


def test_loop_over_keys_and_index():
    check_grad(index_by_key_loop, {"a": rn(3), "b": rn(2, 2)})


def dict_comp_l2(params):
    sq = {k: np.sum(v ** 2) for k, v in params.items()}
    return sq["a"] + 2.0 * sq["b"]


def test_dict_comprehension_over_params():
    check_grad(dict_comp_l2, {"a": rn(3), "b": rn(2)})


def tuple_arg(ab, x):
    a, b = ab
    return np.sum((a * x + b) ** 2)


def test_plain_tuple_argument():
    g = check_grad(tuple_arg, (rn(3), rn(3)), rn(3))
    assert isinstance(g, tuple)


def deep(tree):
    return np.sum(tree[0]["w"][1][0] ** 2) + tree[1][0] * np.sum(tree[0]["w"][0])


def test_list_of_dict_of_list_of_tuple():
    tree = [{"w": [rn(2), (rn(3), 4)]}, (0.5, "name")]
    check_grad(deep, tree)


def test_value_and_grad_and_vjp_and_has_aux_with_a_dict():
    p = {"l1": {"W": rn(4, 3), "b": rn(4)}, "l2": {"W": rn(2, 4), "b": rn(2)}}
    x = rn(3)
    v, g = sg.value_and_grad(mlp2)(p, x)
    assert v == pytest.approx(mlp2(p, x))
    want = fd_grad(mlp2, (p, x), 0)
    for path in want:
        np.testing.assert_allclose(get(g, path), want[path], rtol=1e-5, atol=1e-7)
    v2, g2 = sg.vjp(mlp2)(p, x, 1.0)
    assert v2 == pytest.approx(v)
    for path in want:
        np.testing.assert_allclose(get(g2, path), want[path], rtol=1e-5, atol=1e-7)


def mlp2_aux(params, x):
    loss = mlp2(params, x)
    return loss, np.linalg.norm(params["l1"]["W"])


def test_has_aux_with_a_dict():
    p = {"l1": {"W": rn(4, 3), "b": rn(4)}, "l2": {"W": rn(2, 4), "b": rn(2)}}
    x = rn(3)
    g, aux = sg.grad(mlp2_aux, has_aux=True)(p, x)
    assert aux == pytest.approx(np.linalg.norm(p["l1"]["W"]))
    want = fd_grad(mlp2, (p, x), 0)
    for path in want:
        np.testing.assert_allclose(get(g, path), want[path], rtol=1e-5, atol=1e-7)


def test_hvp_with_a_nested_dict():
    p = {"l1": {"W": rn(4, 3), "b": rn(4)}, "l2": {"W": rn(2, 4), "b": rn(2)}}
    x = rn(3)
    t = random_like(p, RNG)
    before = snapshot((p, x, t))
    _, hv = sg.hvp(mlp2)(p, x, t)
    assert_unchanged(before, (p, x, t))
    h = 1e-6
    up = sg.grad(mlp2)(axpy(h, t, p), x)
    dn = sg.grad(mlp2)(axpy(-h, t, p), x)
    for path, _ in leaves(p):
        want = (get(up, path) - get(dn, path)) / (2 * h)
        np.testing.assert_allclose(get(hv, path), want, rtol=1e-5, atol=1e-6)


def test_jvp_with_a_list_of_tuples():
    hidden, head = [(rn(3, 5), rn(5))], (rn(5, 4), rn(4))
    x, labels = rn(6, 3), np.array([0, 3, 1, 2, 2, 0])
    t = random_like(hidden, RNG)
    v, tan = sg.jvp(softmax_xent)(hidden, head, x, labels, t)
    h = 1e-6
    want = (softmax_xent(axpy(h, t, hidden), head, x, labels)
            - softmax_xent(axpy(-h, t, hidden), head, x, labels)) / (2 * h)
    assert tan == pytest.approx(want, rel=1e-5)


def predict(params, X):
    return np.tanh(X @ params["w"] + params["b"])


def test_jacobian_of_a_vector_output_wrt_a_dict():
    p = {"w": rn(3), "b": 0.1}
    X = rn(4, 3)
    J = sg.jacobian(predict)(p, X)
    assert set(J) == {"w", "b"}
    fw = fd_leaf(lambda q: predict(q, X), p, (("k", "w"),))
    fb = fd_leaf(lambda q: predict(q, X), p, (("k", "b"),))
    np.testing.assert_allclose(J["w"], fw, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(J["b"]).reshape(4), fb, rtol=1e-5, atol=1e-7)


def stacked_out(layers, x):
    (W1, b1), (W2, b2) = layers
    return W2 @ np.tanh(W1 @ x + b1) + b2


def test_jacobian_wrt_a_list_of_tuples_wide_and_tall():
    layers = [(rn(2, 3), rn(2)), (rn(5, 2), rn(5))]
    x = rn(3)
    J = sg.jacobian(stacked_out)(layers, x)
    for path, _ in leaves(layers):
        np.testing.assert_allclose(get(J, path), fd_leaf(lambda q: stacked_out(q, x), layers, path),
                                   rtol=1e-5, atol=1e-7)
    Jx = sg.jacobian(stacked_out, argnums=1)(layers, x)
    np.testing.assert_allclose(Jx, fd_leaf(lambda z: stacked_out(layers, z), x, ()), rtol=1e-5, atol=1e-7)


def pair_energy(xy):
    a, b = xy
    return np.sum(a ** 2 * b) + np.sum(np.sin(a)) * np.sum(b ** 3)


def test_hessian_of_a_tuple_of_arrays():
    xy = (rn(2), rn(2))
    H = sg.hessian(pair_energy)(xy)
    for i in range(2):
        for j in range(2):
            want = fd_leaf(lambda t, i=i: sg.grad(pair_energy)(t)[i], xy, (("i", j),))
            np.testing.assert_allclose(H[i][j], want, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------------
# objects, methods, callable instances, properties, sub-models


class Linear:
    def __init__(self, n_in, n_out):
        self.W = 0.5 * rn(n_out, n_in)
        self.b = 0.1 * rn(n_out)
        self.name = "linear"

    def __call__(self, x):
        return self.W @ x + self.b


class MLP:
    def __init__(self):
        self.l1 = Linear(3, 4)
        self.l2 = Linear(4, 2)
        self.activation = "tanh"

    def hidden(self, x):
        return np.tanh(self.l1(x))

    def forward(self, x):
        return self.l2(self.hidden(x))

    def loss(self, x, y):
        return np.sum((self.forward(x) - y) ** 2)

    def __call__(self, x, y):
        return self.loss(x, y)


def mlp_obj_loss(model, x, y):
    return model.loss(x, y)


def test_object_holding_submodules_in_attributes_grad_wrt_model():
    m = MLP()
    x, y = rn(3), rn(2)
    g = check_grad(mlp_obj_loss, m, x, y)
    assert set(g) == {"l1", "l2"}


def test_bound_method_calling_methods_and_submodules_wrt_input():
    m = MLP()
    x, y = rn(3), rn(2)
    g = sg.grad(m.loss)(x, y)
    np.testing.assert_allclose(g, fd_leaf(lambda z: m.loss(z, y), x, ()), rtol=1e-5, atol=1e-7)
    g1 = sg.grad(m.loss, argnums=1)(x, y)
    np.testing.assert_allclose(g1, fd_leaf(lambda z: m.loss(x, z), y, ()), rtol=1e-5, atol=1e-7)


def test_callable_instance_with_submodules():
    m = MLP()
    x, y = rn(3), rn(2)
    np.testing.assert_allclose(sg.grad(m)(x, y), fd_leaf(lambda z: m(z, y), x, ()), rtol=1e-5, atol=1e-7)


class Sequential:
    def __init__(self, sizes):
        self.layers = [Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]

    def __call__(self, x):
        for layer in self.layers:
            x = np.tanh(layer(x))
        return x


def seq_loss(model, x):
    return np.sum(model(x) ** 2)


def test_model_holding_submodels_in_a_list():
    m = Sequential([3, 4, 4, 2])
    g = check_grad(seq_loss, m, rn(3))
    assert len(g["layers"]) == 3


def test_model_holding_submodels_in_a_list_wrt_input_through_bound_call():
    m = Sequential([3, 4, 2])
    x = rn(3)
    f = lambda z: np.sum(m(z) ** 2)  # noqa: E731
    np.testing.assert_allclose(sg.grad(f)(x), fd_leaf(f, x, ()), rtol=1e-5, atol=1e-7)


class PositiveScale:
    def __init__(self):
        self.log_w = rn(3)

    @property
    def w(self):
        return np.exp(self.log_w)

    def energy(self, x):
        return np.sum(self.w * x ** 2)


def prop_loss(obj, x):
    return obj.energy(x) + np.sum(obj.w)


def test_property_on_a_differentiated_object():
    check_grad(prop_loss, PositiveScale(), rn(3))


def test_property_in_a_bound_method_wrt_input():
    o = PositiveScale()
    x = rn(3)
    np.testing.assert_allclose(sg.grad(o.energy)(x), 2 * np.exp(o.log_w) * x, rtol=1e-12)


class Helpers:
    @staticmethod
    def softplus(z):
        return np.log1p(np.exp(z))

    def __init__(self):
        self.w = rn(3)

    def loss(self, x, margin=1.0):
        return np.sum(Helpers.softplus(margin - self.w * x))

    def loss_via_self(self, x):
        return np.sum(self.softplus(self.w * x))


def helpers_loss(h, x):
    return h.loss(x) + h.loss(x, margin=0.5)


def test_staticmethod_by_class_name_and_default_argument_in_a_method():
    check_grad(helpers_loss, Helpers(), rn(3))
    check_grad(helpers_loss, Helpers(), rn(3), argnums=(0, 1))


def test_method_of_an_undifferentiated_object_argument():
    check_grad(helpers_loss, Helpers(), rn(3), argnums=1)


def test_staticmethod_called_through_self():
    h = Helpers()
    x = rn(3)
    check_grad(h.loss_via_self, x)


class Base:
    def __init__(self):
        self.w = rn(3)

    def features(self, x):
        return self.w * x

    def score(self, x):
        return np.sum(np.tanh(self.features(x)))


class Child(Base):
    def features(self, x):
        return self.w * x ** 2


def test_overridden_method_dispatches_on_the_subclass():
    c = Child()
    x = rn(3)
    np.testing.assert_allclose(sg.grad(c.score)(x), fd_leaf(c.score, x, ()), rtol=1e-5, atol=1e-7)
    check_grad(lambda m, z: m.score(z), c, x)


class FlatMLP:
    def __init__(self):
        self.W1, self.b1 = 0.5 * rn(4, 3), 0.1 * rn(4)
        self.W2, self.b2 = 0.5 * rn(2, 4), 0.1 * rn(2)
        self.name = "flat"

    def hidden(self, x):
        return np.tanh(self.W1 @ x + self.b1)

    def forward(self, x):
        return self.W2 @ self.hidden(x) + self.b2

    def loss(self, x, y):
        return np.sum((self.forward(x) - y) ** 2)

    def __call__(self, x, y):
        return self.loss(x, y)


def flat_loss(model, x, y):
    return model.loss(x, y)


def test_flat_model_methods_calling_methods_all_ways():
    m = FlatMLP()
    x, y = rn(3), rn(2)
    g = check_grad(flat_loss, m, x, y)
    assert set(g) == {"W1", "b1", "W2", "b2"}
    check_grad(flat_loss, m, x, y, argnums=(0, 2))
    np.testing.assert_allclose(sg.grad(m)(x, y), fd_leaf(lambda z: m(z, y), x, ()), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sg.grad(m.loss, argnums=1)(x, y), fd_leaf(lambda z: m.loss(x, z), y, ()),
                               rtol=1e-5, atol=1e-7)


def test_jvp_and_hessian_of_a_bound_method():
    m = FlatMLP()
    x, y, t = rn(3), rn(2), rn(3)
    v, tan = sg.jvp(m.loss)(x, y, t)
    assert v == pytest.approx(m.loss(x, y))
    assert tan == pytest.approx(float(fd_leaf(lambda z: m.loss(z, y), x, ()) @ t), rel=1e-5)
    H = sg.hessian(m.loss)(x, y)
    want = fd_leaf(lambda z: sg.grad(m.loss)(z, y), x, ())
    np.testing.assert_allclose(H, want, rtol=1e-5, atol=1e-6)


def test_hvp_and_hessian_wrt_an_object():
    m = FlatMLP()
    x, y = rn(3), rn(2)
    keys = ("W1", "b1", "W2", "b2")
    t = {k: rn(*getattr(m, k).shape) for k in keys}
    tangent = FlatMLP()
    for k in keys:
        setattr(tangent, k, t[k])
    _, hv = sg.hvp(flat_loss)(m, x, y, tangent)
    h = 1e-6

    def moved(s):
        m2 = FlatMLP()
        for k in keys:
            setattr(m2, k, getattr(m, k) + s * t[k])
        return m2
    up = sg.grad(flat_loss)(moved(h), x, y)
    dn = sg.grad(flat_loss)(moved(-h), x, y)
    for k in keys:
        np.testing.assert_allclose(hv[k], (up[k] - dn[k]) / (2 * h), rtol=1e-5, atol=1e-6)
    H = sg.hessian(flat_loss)(m, x, y)
    for k in keys:
        got = sum(np.tensordot(H[k][j], t[j], axes=t[j].ndim) for j in keys)
        np.testing.assert_allclose(got, hv[k], rtol=1e-7, atol=1e-9)


def test_hvp_wrt_an_object_with_a_gradient_shaped_tangent():
    m = FlatMLP()
    x, y = rn(3), rn(2)
    g = sg.grad(flat_loss)(m, x, y)
    _, hv = sg.hvp(flat_loss)(m, x, y, g)
    assert set(hv) == set(g)


class SideEffect:
    def __init__(self):
        self.W = rn(2, 2)

    def forward(self, x):
        self.h = np.tanh(self.W @ x)     # stored on self, read by the caller

    def loss(self, x):
        self.forward(x)
        return np.sum(self.h ** 2)


def test_method_storing_an_intermediate_on_self_is_refused_not_zero():
    m = SideEffect()
    x = rn(2)
    with pytest.raises(sg.TransformError, match=r"writes into self\.h"):
        sg.grad(m.loss)(x)


def test_tied_weights_same_array_under_two_keys():
    W = rn(3, 3)
    check_grad(lambda p, x: np.sum(p["dec"] @ np.tanh(p["enc"] @ x)), {"enc": W, "dec": W}, rn(3))


def dense_p(p, x):
    return np.tanh(p["W"] @ x + p["b"])


def get_w(p):
    return p["W"]


def helper_twice(p, x):
    return np.sum(dense_p(p, dense_p(p, x))) + np.sum(get_w(p) ** 2)


def test_dict_passed_to_helpers_twice_and_a_getter():
    check_grad(helper_twice, {"W": rn(3, 3), "b": rn(3)}, rn(3))


def sgd_step(p, lr):
    return {"W": p["W"] - lr * p["W"] ** 2}


def returns_a_dict(p, x):
    return np.sum(sgd_step(p, 0.1)["W"] @ x)


def nt_index(p):
    return np.sum(p[0] * p.b)


def test_helper_returning_a_dict_read_at_the_call():
    check_grad(returns_a_dict, {"W": rn(2, 2)}, rn(2), argnums=(0, 1))


def test_namedtuple_by_position():
    """p[0] of a named tuple is its first field (was refused: "no item 0")."""
    check_grad(nt_index, Params2(rn(2), rn(2)))


Params2 = namedtuple("Params2", "a b")


def bilinear(p, A):
    return np.sum(p["W"] * A) ** 2 + np.sum(p["W"] ** 3)


def test_hessian_with_argnums_mixing_a_dict_and_an_array():
    p, A = {"W": rn(2, 2)}, rn(2, 2)
    H = sg.hessian(bilinear, argnums=(0, 1))(p, A)
    np.testing.assert_allclose(H[0]["W"][1], fd_leaf(lambda z: sg.grad(bilinear)(p, z)["W"], A, ()),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(H[1][0]["W"], fd_leaf(lambda q: sg.grad(bilinear, argnums=1)(q, A), p,
                                                     (("k", "W"),)), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------------
# comprehensions, generators, map, nested defs, lambdas, nonlocal, partial


def poly_features(x, coeffs):
    return np.sum(np.array([coeffs[k] * x ** k for k in range(4)]), axis=0)


def test_list_comprehension_polynomial():
    check_grad(lambda x, c: np.sum(poly_features(x, c) ** 2), rn(5), rn(4), argnums=(0, 1))


def filtered_sum(x):
    return sum([x[i] ** 2 for i in range(x.shape[0]) if i % 2 == 0]) + sum(v * 3.0 for v in x if True)


def test_comprehension_with_condition_and_generator_over_an_array():
    check_grad(filtered_sum, rn(5))


def pairwise_energy(pos):
    n = pos.shape[0]
    return sum(1.0 / np.linalg.norm(pos[i] - pos[j]) for i in range(n) for j in range(i + 1, n))


def test_double_generator_coulomb_energy():
    check_grad(pairwise_energy, rn(4, 3))


def gram(x):
    K = np.array([[np.exp(-(x[i] - x[j]) ** 2) for j in range(3)] for i in range(3)])
    return np.sum(K @ K)


def test_nested_list_comprehension_builds_a_matrix():
    check_grad(gram, rn(3))


def zip_dot(a, b):
    return sum(u * v for u, v in zip(a, b))  # noqa: B905 + sum(i * u for i, u in enumerate(a))


def test_zip_and_enumerate_in_generators():
    check_grad(zip_dot, rn(4), rn(4), argnums=(0, 1))


def map_squares(x):
    return sum(map(lambda v: v ** 2, x)) + sum(map(np.sin, x))


def test_map_with_lambda_and_numpy_function():
    check_grad(map_squares, rn(4))


def layer_norms(ws):
    return sum(map(lambda w: np.sum(w ** 2), ws))


def test_map_over_a_list_pytree():
    check_grad(layer_norms, [rn(2, 2), rn(3)])


def rk4(theta, y0):
    def f(y):
        return np.array([y[1], -theta * np.sin(y[0])])

    def step(y, h):
        k1 = f(y)
        k2 = f(y + 0.5 * h * k1)
        k3 = f(y + 0.5 * h * k2)
        k4 = f(y + h * k3)
        return y + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)

    y = y0
    for _ in range(10):
        y = step(y, 0.1)
    return y[0] ** 2 + y[1]


def test_pendulum_rk4_with_nested_defs_closing_over_theta():
    check_grad(rk4, 1.3, np.array([0.4, 0.0]), argnums=(0, 1))


def local_lambdas(w, x):
    act = lambda z: np.tanh(w * z)  # noqa: E731
    sq = lambda z: z * z  # noqa: E731
    return np.sum(sq(act(x)) + act(sq(x)))


def test_local_lambdas_closing_over_a_parameter():
    check_grad(local_lambdas, 0.7, rn(4), argnums=(0, 1))


def nonlocal_counter(x):
    calls = 0
    acc = 0.0

    def visit(v):
        nonlocal calls, acc
        calls += 1
        acc = acc + v ** 2 * calls

    for i in range(x.shape[0]):
        visit(x[i])
    return acc / calls


def test_nonlocal_counter_and_accumulator():
    check_grad(nonlocal_counter, rn(4))


def huber_sum(r, delta):
    def huber(v):
        if abs(v) <= delta:
            return 0.5 * v * v
        return delta * (abs(v) - 0.5 * delta)
    return sum(huber(r[i]) for i in range(r.shape[0]))


def test_early_return_in_a_nested_helper():
    check_grad(huber_sum, np.array([0.3, -2.0, 1.5, 0.05]), 1.0, argnums=(0, 1))


def nested_nested(x):
    def outer(a):
        def inner(b):
            return b * a
        return inner(a + 1.0) + inner(2.0)
    return np.sum(outer(x) ** 2)


def test_nested_def_inside_nested_def():
    check_grad(nested_nested, rn(3))


def loop_closure(x):
    total = 0.0
    for k in range(3):
        def scaled(v):
            return v * (k + 1)  # noqa: B023
        total = total + np.sum(scaled(x) ** 2)
    return total


def test_nested_def_redefined_in_a_loop_reads_the_loop_variable():
    check_grad(loop_closure, rn(3))


def mse(w, X, y, lam=0.0):
    return np.mean((X @ w - y) ** 2) + lam * np.sum(w ** 2)


def test_functools_partial_binding_the_data():
    X, y = rn(6, 3), rn(6)
    loss = functools.partial(mse, X=X, y=y, lam=0.1)
    w = rn(3)
    np.testing.assert_allclose(sg.grad(loss)(w), fd_leaf(loss, w, ()), rtol=1e-5, atol=1e-7)
    v, g = sg.value_and_grad(loss)(w)
    assert v == pytest.approx(loss(w))


def test_functools_partial_with_positional_binding_and_argnums():
    X, y = rn(6, 3), rn(6)
    loss = functools.partial(mse, rn(3))       # w bound positionally: argnums counts from X
    g = sg.grad(loss, argnums=1)(X, y)
    np.testing.assert_allclose(g, fd_leaf(lambda z: loss(X, z), y, ()), rtol=1e-5, atol=1e-7)


def uses_partial_inside(w, X, y):
    reg = functools.partial(mse, X=X, y=y)
    return reg(w) + reg(2.0 * w, lam=0.5)


def test_functools_partial_inside_the_function():
    check_grad(uses_partial_inside, rn(3), rn(6, 3), rn(6))


def test_hessian_and_jvp_of_a_partial():
    X, y = rn(6, 3), rn(6)
    loss = functools.partial(mse, X=X, y=y)
    w = rn(3)
    H = sg.hessian(loss)(w)
    np.testing.assert_allclose(H, 2 * X.T @ X / 6, rtol=1e-10)
    t = rn(3)
    _, tan = sg.jvp(loss)(w, t)
    assert tan == pytest.approx(float(sg.grad(loss)(w) @ t), rel=1e-10)


# ----------------------------------------------------------------------------------------------------
# NumPy calls added for issue 12


def spd(n):
    A = rn(n, n)
    return A @ A.T + n * np.eye(n)


def nuclear_norm(A):
    return np.sum(np.linalg.svd(A, compute_uv=False))


def test_svd_nuclear_norm():
    check_grad(nuclear_norm, rn(4, 3))


def svdvals_top(A):
    return np.linalg.svdvals(A)[0] ** 2


def test_svdvals_spectral_norm_squared():
    check_grad(svdvals_top, rn(3, 5))


def rank1_approx_error(A):
    U, S, Vh = np.linalg.svd(A, full_matrices=False)
    A1 = S[0] * np.outer(U[:, 0], Vh[0])
    return np.sum((A - A1) ** 2)


def test_svd_rank_one_approximation_error():
    check_grad(rank1_approx_error, rn(5, 3))


def svd_indexed(A):
    S = np.linalg.svd(A)[1]
    return np.sum(S ** 3)


def test_svd_result_indexed():
    check_grad(svd_indexed, rn(3, 3))


def svd_attr(A):
    res = np.linalg.svd(A, full_matrices=False)
    return np.sum(res.S) + np.sum((res.U * res.S) @ res.Vh)


def test_svd_result_by_attribute():
    check_grad(svd_attr, rn(4, 3))


def pca_projection(X):
    Xc = X - X.mean(axis=0)
    U, S, Vh = np.linalg.svd(Xc, full_matrices=False)
    v = Vh[0]
    return np.sum((Xc @ v) ** 2) / X.shape[0]


def test_pca_first_component_variance():
    check_grad(pca_projection, rn(8, 3))


def qr_logdet(A):
    Q, R = np.linalg.qr(A)
    return np.sum(np.log(np.abs(np.diag(R)))) + np.sum(Q[:, 0] * R[0, 0])


def test_qr_logabsdet_and_first_column():
    check_grad(qr_logdet, rn(5, 3))


def qr_least_squares(A, b):
    Q, R = np.linalg.qr(A)
    x = np.linalg.solve(R, Q.T @ b)
    return np.sum(x ** 2)


def test_qr_least_squares():
    check_grad(qr_least_squares, rn(6, 3), rn(6), argnums=(0, 1))


def qr_mode_r(A):
    return np.sum(np.linalg.qr(A, mode="r") ** 2)


def test_qr_mode_r():
    check_grad(qr_mode_r, rn(4, 3))


def eigh_energy(A):
    S = 0.5 * (A + A.T)
    w, V = np.linalg.eigh(S)
    return w[-1] + np.sum(V[:, 0] ** 4)


def test_eigh_top_eigenvalue_and_eigenvector():
    check_grad(eigh_energy, spd(4))


def eigh_attr(A):
    S = 0.5 * (A + A.T)
    return np.sum(np.linalg.eigh(S).eigenvalues ** 2) + np.linalg.eigh(S)[0][0]


def test_eigh_result_attribute_and_index():
    check_grad(eigh_attr, spd(3))


def eigvalsh_logdet(A):
    S = A @ A.T + np.eye(A.shape[0])
    return np.sum(np.log(np.linalg.eigvalsh(S)))


def test_eigvalsh_logdet_matches_slogdet():
    check_grad(eigvalsh_logdet, rn(3, 3))


def gp_nll(log_ell, x, y):
    ell = np.exp(log_ell)
    d = x[:, None] - x[None, :]
    K = np.exp(-0.5 * d ** 2 / ell ** 2) + 0.1 * np.eye(x.shape[0])
    alpha = np.linalg.solve(K, y)
    return 0.5 * y @ alpha + 0.5 * np.linalg.slogdet(K)[1]


def test_gaussian_process_marginal_likelihood_slogdet():
    check_grad(gp_nll, 0.2, np.linspace(0, 3, 6), np.sin(np.linspace(0, 3, 6)), argnums=(0, 1, 2))


def power_spectrum(x):
    X = np.fft.rfft(x)
    w = np.linspace(1.0, 2.0, X.shape[0])
    return np.sum(w * np.abs(X) ** 2)


def test_rfft_weighted_power_spectrum():
    check_grad(power_spectrum, rn(8))


def fft_conv(x, h):
    return np.sum(np.real(np.fft.ifft(np.fft.fft(x) * np.fft.fft(h))) ** 2)


def test_fft_circular_convolution():
    check_grad(fft_conv, rn(8), rn(8), argnums=(0, 1))


def lowpass(x):
    X = np.fft.rfft(x, norm="ortho")
    mask = np.arange(X.shape[0]) < 3
    y = np.fft.irfft(X * mask, n=x.shape[0], norm="ortho")
    return np.sum(y ** 3)


def test_rfft_irfft_lowpass():
    check_grad(lowpass, rn(10))


def complex_parts(x):
    Z = np.fft.fft(x)
    return (np.sum(np.imag(Z) ** 2) + np.sum(np.real(np.conj(Z)) * np.linspace(0, 1, 6))
            + np.sum(np.angle(Z[1:3])))


def test_real_imag_conj_angle():
    check_grad(complex_parts, rn(6))


def fft_padded(x):
    return np.sum(np.abs(np.fft.fft(x, n=8)) ** 2) + np.sum(np.abs(np.fft.fft(x, n=3)))


def test_fft_with_n_pad_and_crop():
    check_grad(fft_padded, rn(5))


def fft2d_axis(X):
    return np.sum(np.abs(np.fft.rfft(X, axis=0)) ** 2)


def test_rfft_along_axis_0():
    check_grad(fft2d_axis, rn(6, 3))


def misc_calls(x, w):
    a = np.full_like(x, 2.0) * w + np.full(3, w)
    b = np.atleast_2d(x)
    cols = [x, a]
    c = np.column_stack(cols)
    d = np.dstack(cols) ** 2
    e = np.exp2(x) + np.kron(x, a)[:3]
    return np.sum(a) + np.sum(b ** 2) + np.sum(c ** 3) + np.sum(np.sin(d)) + np.sum(e)


def test_full_atleast_column_stack_dstack_exp2_kron():
    check_grad(misc_calls, rn(3), 0.7, argnums=(0, 1))


def stack_list_var(x):
    parts = []
    for i in range(3):
        parts.append(x * (i + 1))
    return np.sum(np.hstack(parts) ** 2) + np.sum(np.vstack(parts) * x)


def test_hstack_vstack_of_a_list_variable():
    check_grad(stack_list_var, rn(4))


def gather_scatter(x, idx):
    g = np.take_along_axis(x, idx, axis=1)
    y = np.zeros_like(x)
    np.put_along_axis(y, idx, g ** 2, axis=1)
    return np.sum(g * 3.0) + np.sum(y * x)


def test_take_along_axis_and_put_along_axis():
    check_grad(gather_scatter, rn(3, 4), np.array([[0, 2], [1, 3], [3, 0]]))


def empty_fill(x):
    y = np.empty_like(x)
    for i in range(x.shape[0]):
        y[i] = x[i] ** 2
    return np.sum(y * x)


def test_empty_like_filled_in_a_loop():
    check_grad(empty_fill, rn(4))


def interp_loss(x, xp, fp):
    return np.sum(np.interp(x, xp, fp) ** 2)


def test_interp_in_all_three_arguments():
    check_grad(interp_loss, np.array([0.15, 0.55, 1.3, -0.4, 2.5]), np.array([0.0, 0.5, 1.0, 2.0]),
               rn(4), argnums=(0, 1, 2))


def conv_modes(a, v):
    return (np.sum(np.convolve(a, v) ** 2) + np.sum(np.convolve(a, v, mode="same") * a)
            + np.sum(np.correlate(a, v, mode="valid") ** 3))


def test_convolve_and_correlate_modes():
    check_grad(conv_modes, rn(6), rn(3), argnums=(0, 1))


def gamma_stuff(a):
    return math.lgamma(a) + math.gamma(a) * 0.1 + math.log(a)


def test_math_gamma_lgamma():
    check_grad(gamma_stuff, 2.3)


def dirichlet_logpdf(alpha, x):
    s = 0.0
    for i in range(alpha.shape[0]):
        s = s + (alpha[i] - 1.0) * math.log(x[i]) - math.lgamma(alpha[i])
    return s + math.lgamma(float(np.sum(alpha)))


def test_dirichlet_log_density_with_lgamma():
    check_grad(dirichlet_logpdf, np.array([1.5, 2.0, 0.7]), np.array([0.2, 0.5, 0.3]))


def searchsorted_pw(x, knots, vals):
    i = np.searchsorted(knots, x)
    return np.sum(vals[i] * x ** 2)


def test_searchsorted_is_piecewise_constant():
    check_grad(searchsorted_pw, np.array([0.1, 0.6, 0.9]), np.array([0.0, 0.5, 1.0]), rn(3), argnums=(0, 2))


def test_jvp_and_hessian_through_svd_and_eigh():
    A = rn(3, 3)
    t = rn(3, 3)
    _, tan = sg.jvp(nuclear_norm)(A, t)
    h = 1e-6
    assert tan == pytest.approx((nuclear_norm(A + h * t) - nuclear_norm(A - h * t)) / (2 * h), rel=1e-5)
    B = spd(3)
    H = sg.hessian(eigvalsh_logdet)(B)
    np.testing.assert_allclose(H, fd_leaf(sg.grad(eigvalsh_logdet), B, ()), rtol=1e-4, atol=1e-6)


def test_jacobian_of_fft_magnitudes():
    f = lambda x: np.abs(np.fft.rfft(x))  # noqa: E731
    x = rn(6)
    np.testing.assert_allclose(sg.jacobian(f)(x), fd_leaf(f, x, ()), rtol=1e-5, atol=1e-7)


def test_hvp_through_qr():
    A, V = rn(4, 3), rn(4, 3)
    _, hv = sg.hvp(qr_logdet)(A, V)
    h = 1e-6
    want = (sg.grad(qr_logdet)(A + h * V) - sg.grad(qr_logdet)(A - h * V)) / (2 * h)
    np.testing.assert_allclose(hv, want, rtol=1e-4, atol=1e-6)


def svd_stored_then_indexed(A):
    res = np.linalg.svd(A)
    return np.sum(res[1] ** 2)


def eigh_stored_then_indexed(A):
    r = np.linalg.eigh(0.5 * (A + A.T))  # eigh reads one triangle; srcgrad's rule takes A as symmetric
    return np.sum(r[0] ** 2)


def test_svd_result_stored_then_indexed():
    check_grad(svd_stored_then_indexed, rn(3, 3))


def test_eigh_result_stored_then_indexed():
    check_grad(eigh_stored_then_indexed, spd(3))


def qr_stored_then_indexed(A):
    r = np.linalg.qr(A)
    return np.sum(r[1] ** 2) + np.sum(r[0][:, 0] * np.arange(4.0))


def test_qr_result_stored_then_indexed():
    check_grad(qr_stored_then_indexed, rn(4, 3))


def qr_stored_r_only(A):
    r = np.linalg.qr(A)
    return np.sum(r[1] ** 2)


def test_qr_result_stored_then_one_element_read_square():
    check_grad(qr_stored_r_only, rn(3, 3))


def test_qr_result_stored_then_one_element_read_tall():
    check_grad(qr_stored_r_only, rn(4, 3))


def qr_stored_attribute(A):
    r = np.linalg.qr(A)
    return np.sum(r.Q[:, 0] * np.arange(4.0))


def test_qr_result_stored_then_attribute():
    check_grad(qr_stored_attribute, rn(4, 3))


def svd_u_attr(A):
    return np.sum(np.linalg.svd(A).U[:, 0] ** 2 * np.arange(3.0))


def test_svd_u_attribute():
    check_grad(svd_u_attr, rn(3, 3))


def column_stack_literal(x):
    return np.sum(np.column_stack([x, x ** 2]) ** 3)


def test_column_stack_of_a_list_literal():
    check_grad(column_stack_literal, rn(3))
