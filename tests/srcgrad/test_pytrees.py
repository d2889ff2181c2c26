"""Pytree arguments (srcgrad/pytrees.py, flatten.py, leafwise.py): dicts, lists, tuples, named tuples,
dataclasses and objects of arrays are differentiated through their leaves, and every transform gives
its result in the arguments' structure. Values are checked against finite differences leaf by leaf."""

import copy
import functools
import typing
from collections import namedtuple
from dataclasses import dataclass

import numpy as np
import pytest

import srcgrad as sg

RNG = np.random.default_rng(7)
W = RNG.normal(size=(3, 2))
B = RNG.normal(size=3)
X = RNG.normal(size=2)


def fd(f, tree, path, h=1e-6):
    """Central difference of f along every element of the leaf at `path` inside `tree` (a copy is made)."""
    def get(t, p):
        for k in p:
            t = t[k] if isinstance(t, (dict, list, tuple)) and not hasattr(t, "_fields") else getattr(t, k)
        return t
    leaf = get(tree, path)
    out = np.zeros_like(leaf, dtype=float)
    for idx in np.ndindex(np.shape(leaf)):
        vals = []
        for s in (h, -h):
            t = copy.deepcopy(tree)
            arr = get(t, path)
            arr[idx] += s
            vals.append(f(t))
        out[idx] = (vals[0] - vals[1]) / (2 * h)
    return out


def mlp(params, x):
    h = np.tanh(params["W"] @ x + params["b"])
    return np.sum(h ** 2)


def test_a_dict_gradient_is_a_dict_of_the_leaves_gradients():
    p = {"W": W.copy(), "b": B.copy()}
    g = sg.grad(mlp)(p, X)
    assert set(g) == {"W", "b"}
    for k in g:
        np.testing.assert_allclose(g[k], fd(lambda t: mlp(t, X), p, (k,)), rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(p["W"], W)  # the caller's arrays are untouched


def layers(ps, x):
    for W_, b_ in ps:
        x = np.tanh(W_ @ x + b_)
    return np.sum(x)


def test_a_list_of_tuples_is_unrolled_and_its_gradient_has_its_structure():
    ps = [(RNG.normal(size=(2, 2)), RNG.normal(size=2)) for _ in range(3)]
    g = sg.grad(layers)(ps, X)
    assert isinstance(g, list) and all(isinstance(t, tuple) and len(t) == 2 for t in g)
    for i in range(3):
        for j in range(2):
            np.testing.assert_allclose(g[i][j], fd(lambda t: layers(t, X), [list(t) for t in ps], (i, j)),
                                       rtol=1e-6, atol=1e-8)


Params = namedtuple("Params", "w c")


def quadratic(p, x):
    return np.sum((p.w * x - p.c) ** 2)


@dataclass
class Config:
    w: np.ndarray
    repeats: int


def scaled(cfg):
    return np.sum(cfg.w ** 2) * cfg.repeats


def test_named_tuples_and_dataclasses_come_back_as_themselves():
    g = sg.grad(quadratic)(Params(X.copy(), 0.5), X)
    assert isinstance(g, Params)
    np.testing.assert_allclose(g.w, 2 * (X * X - 0.5) * X, rtol=1e-12)
    assert g.c == pytest.approx(float(np.sum(-2 * (X * X - 0.5))))
    g = sg.grad(scaled)(Config(X.copy(), 3))
    assert isinstance(g, Config) and g.repeats is None     # an int has no derivative
    np.testing.assert_allclose(g.w, 6 * X, rtol=1e-12)


def penalty(params):
    return sum(np.sum(v ** 2) for v in params.values()) + len(params)


def test_values_items_and_len_resolve_at_transform_time():
    p = {"a": W.copy(), "b": B.copy()}
    g = sg.grad(penalty)(p)
    np.testing.assert_allclose(g["a"], 2 * W)
    np.testing.assert_allclose(g["b"], 2 * B)


def two_args(p, scale):
    return np.sum(p["W"]) * scale


def test_wrt_and_argnums_pick_whole_arguments():
    gp, gs = sg.grad(two_args, argnums=(0, 1))({"W": W}, 2.0)
    np.testing.assert_allclose(gp["W"], np.full_like(W, 2.0))
    assert gs == pytest.approx(float(np.sum(W)))
    assert sg.grad(two_args, wrt=1)({"W": W}, 2.0) == pytest.approx(float(np.sum(W)))
    with pytest.raises(TypeError, match="either wrt or argnums"):
        sg.grad(two_args, wrt=1, argnums=0)


def test_forward_and_second_order_transforms_take_and_give_the_same_structures():
    p = {"W": W.copy(), "b": B.copy()}
    t = {"W": RNG.normal(size=W.shape), "b": RNG.normal(size=B.shape)}
    g = sg.grad(mlp)(p, X)
    value, tangent = sg.jvp(mlp)(p, X, t)
    assert value == pytest.approx(mlp(p, X))
    assert tangent == pytest.approx(float(np.sum(g["W"] * t["W"]) + np.sum(g["b"] * t["b"])), rel=1e-9)
    _, hv = sg.hvp(mlp)(p, X, t)
    assert set(hv) == {"W", "b"} and hv["W"].shape == W.shape
    # H t by finite differences of the gradient along t
    h = 1e-6
    up = sg.grad(mlp)({k: p[k] + h * t[k] for k in p}, X)
    dn = sg.grad(mlp)({k: p[k] - h * t[k] for k in p}, X)
    for k in p:
        np.testing.assert_allclose(hv[k], (up[k] - dn[k]) / (2 * h), rtol=1e-5, atol=1e-7)
    H = sg.hessian(mlp)(p, X)
    assert H["W"]["b"].shape == W.shape + B.shape
    hv_w = np.tensordot(H["W"]["W"], t["W"], axes=2) + np.tensordot(H["W"]["b"], t["b"], axes=1)
    np.testing.assert_allclose(hv_w, hv["W"], rtol=1e-7, atol=1e-9)


class Model:
    def __init__(self):
        self.W = W.copy()
        self.b = B.copy()
        self.name = "tiny"

    def forward(self, x):
        return np.tanh(self.W @ x + self.b)

    def loss(self, x):
        return np.sum(self.forward(x) ** 2)

    def __call__(self, x):
        return self.loss(x)


def model_loss(model, x):
    return model.loss(x)


def test_an_objects_gradient_is_a_dict_of_its_array_attributes():
    m = Model()
    g = sg.grad(model_loss)(m, X)
    assert set(g) == {"W", "b"}         # the name is not a parameter
    want = sg.grad(mlp)({"W": m.W, "b": m.b}, X)
    np.testing.assert_allclose(g["W"], want["W"], rtol=1e-12)
    np.testing.assert_allclose(g["b"], want["b"], rtol=1e-12)


def test_bound_methods_calling_methods_and_callable_instances():
    m = Model()
    t = np.tanh(W @ X + B)
    want = W.T @ (2 * t * (1 - t ** 2))
    np.testing.assert_allclose(sg.grad(m.loss)(X), want, rtol=1e-12)
    np.testing.assert_allclose(sg.grad(m)(X), want, rtol=1e-12)
    g = sg.grad(m.loss)
    m.W = 2 * m.W                       # the object's arrays are read at each call
    t = np.tanh(m.W @ X + B)
    np.testing.assert_allclose(g(X), m.W.T @ (2 * t * (1 - t ** 2)), rtol=1e-12)
    assert sg.jvp(m.loss)(X, np.ones(2))[1] == pytest.approx(float(np.sum(g(X))), rel=1e-12)


def weighted(x, scale, power=2):
    return np.sum(scale * x ** power)


def test_functools_partial_as_the_transformed_function_and_inside_one():
    np.testing.assert_allclose(sg.grad(functools.partial(weighted, scale=3.0))(X), 6 * X, rtol=1e-12)
    np.testing.assert_allclose(sg.grad(functools.partial(weighted, power=3), wrt=0)(X, 2.0), 6 * X ** 2,
                               rtol=1e-12)

    def uses_partial(x):
        cube = functools.partial(weighted, power=3)
        return cube(x, 1.0) + cube(2 * x, 0.5)

    np.testing.assert_allclose(sg.grad(uses_partial)(X), 3 * X ** 2 + 12 * X ** 2, rtol=1e-12)


def reads_a_missing_key(params):
    return np.sum(params["missing"])


def passes_it_to_a_builtin(params):
    return np.sum(params["W"]) + len(str(params))


def builds_a_dict(params):
    q = dict(params)
    return np.sum(q["W"])


def test_what_cannot_be_resolved_is_a_clear_error():
    with pytest.raises(sg.TransformError, match="has no item 'missing'"):
        sg.grad(reads_a_missing_key)({"W": W})
    with pytest.raises(sg.TransformError, match="dict"):
        sg.grad(builds_a_dict)({"W": W})
    with pytest.raises(sg.TransformError, match="passed whole to a call"):
        sg.grad(passes_it_to_a_builtin)({"W": W})


class _Pair(typing.NamedTuple):
    a: np.ndarray
    b: np.ndarray


def test_a_named_tuple_read_by_position():
    """p[0] and p[-1] of a named tuple argument are its fields, as p.a and p.b."""

    def f(p):
        return np.sum(p[0] * p.b) + np.sum(p[-1] ** 2)

    x = np.array([1.0, 2.0, 3.0])
    g = sg.grad(f)(_Pair(x, 2 * x))
    assert isinstance(g, _Pair)
    np.testing.assert_allclose(g.a, 2 * x)
    np.testing.assert_allclose(g.b, x + 4 * x)
