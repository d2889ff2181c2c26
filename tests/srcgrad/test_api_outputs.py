"""Issue 10, the API's part of "never silently wrong": tuple/list/dict outputs under grad are refused
unless has_aux=True (JAX's meaning), and tangents, hvp's v and cotangents of the wrong shape are refused
at the door instead of being broadcast."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import pytest

import srcgrad as sg
from srcgrad import TransformError

X = np.array([0.3, -1.2, 2.0])


def fd_grad(f, x, eps=1e-6):
    x = np.asarray(x, dtype=float)
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = eps
        g.flat[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


# ----------------------------------------------------------------------- container outputs are refused
def loss_and_metric(x):
    return np.sum(x * x), np.sum(x)


def loss_in_a_list(x):
    return [np.sum(x * x)]


def loss_in_a_dict(x):
    return {"loss": np.sum(x * x)}


def tuple_through_a_name(x):
    out = (np.sum(x * x), np.sum(x))
    return out


@pytest.mark.parametrize("transform", [sg.grad, sg.value_and_grad])
@pytest.mark.parametrize("f, what", [(loss_and_metric, "tuple"), (loss_in_a_list, "list"),
                                     (loss_in_a_dict, "dict"), (tuple_through_a_name, "tuple")])
def test_container_outputs_are_refused_with_the_has_aux_hint(transform, f, what):
    # was: grad(loss_and_metric) gave the gradient of loss + metric, silently
    with pytest.raises(TransformError) as info:
        transform(f)(X)
    msg = str(info.value)
    assert "scalar output" in msg and f.__name__ in msg and what in msg
    assert "has_aux=True" in msg


def test_container_output_error_names_the_line():
    with pytest.raises(TransformError) as info:
        sg.grad(loss_and_metric)
    assert "return np.sum(x * x), np.sum(x)" in str(info.value)


def test_vjp_of_a_tuple_output_still_works():
    (a, b), g = sg.vjp(loss_and_metric)(X, (1.0, 0.0))
    assert a == pytest.approx(np.sum(X * X)) and b == pytest.approx(np.sum(X))
    np.testing.assert_allclose(g, 2 * X)


# ------------------------------------------------------------------------------------------- has_aux
def loss_with_prediction(w, x, scale=2.0):
    pred = w * x * scale
    loss = np.sum(pred * pred)
    return loss, pred


def loss_with_metrics(w, x):
    err = w - x
    loss = np.sum(err * err)
    hits = np.mean(err > 0.0)
    return loss, (hits, np.sum(err), 7)


def test_grad_has_aux_differentiates_the_value_only():
    w = np.array([0.5, -1.0, 2.0])
    g, aux = sg.grad(loss_with_prediction, has_aux=True)(w, X)
    # the aux (the prediction) depends on w; its gradient must not be added in
    np.testing.assert_allclose(g, 2 * (w * X * 2.0) * X * 2.0)
    np.testing.assert_allclose(g, fd_grad(lambda v: loss_with_prediction(v, X)[0], w), rtol=1e-6)
    np.testing.assert_allclose(aux, w * X * 2.0)


def test_value_and_grad_has_aux_returns_value_aux_and_gradient():
    w = np.array([0.5, -1.0, 2.0])
    (value, aux), g = sg.value_and_grad(loss_with_metrics, has_aux=True)(w, X)
    err = w - X
    assert value == pytest.approx(np.sum(err * err))
    hits, total, seven = aux
    assert hits == pytest.approx(np.mean(err > 0)) and total == pytest.approx(np.sum(err)) and seven == 7
    np.testing.assert_allclose(g, 2 * err)


def test_has_aux_with_several_wrt_keywords_and_floats():
    w = np.array([0.5, -1.0, 2.0])
    (gw, gx), aux = sg.grad(loss_with_prediction, wrt=(0, 1), has_aux=True)(w, X, scale=0.5)
    np.testing.assert_allclose(gw, 2 * (w * X * 0.5) * X * 0.5)
    np.testing.assert_allclose(gx, 2 * (w * X * 0.5) * w * 0.5)
    np.testing.assert_allclose(aux, w * X * 0.5)
    g, aux = sg.grad(loss_with_prediction, has_aux=True)(1.5, 2.0)
    assert isinstance(g, float) and g == pytest.approx(2 * (1.5 * 2.0 * 2.0) * 4.0) and aux == 6.0


def test_has_aux_as_a_decorator_and_on_a_method():
    @sg.grad(has_aux=True)
    def f(x):
        return np.sum(np.sin(x)), np.cos(x)

    g, aux = f(X)
    np.testing.assert_allclose(g, np.cos(X))
    np.testing.assert_allclose(aux, np.cos(X))

    class Model:
        def __init__(self):
            self.k = 3.0

        def loss(self, x):
            return np.sum(self.k * x * x), self.k

    g, aux = sg.grad(Model().loss, has_aux=True)(X)
    np.testing.assert_allclose(g, 6.0 * X)
    assert aux == 3.0


def test_has_aux_needs_a_pair():
    def only_loss(x):
        return np.sum(x * x)

    with pytest.raises(TransformError, match="pair"):
        sg.grad(only_loss, has_aux=True)


def test_has_aux_value_must_still_be_a_scalar():
    def vector_value(x):
        return x * 2.0, 1

    with pytest.raises(TransformError, match="scalar output"):
        sg.grad(vector_value, has_aux=True)(X)


def test_vjp_and_jvp_has_aux_follow_jax():
    def f(x):
        y = np.sin(x)
        return y * 2.0, np.sum(y)

    v = np.array([1.0, 0.5, -2.0])
    out, g, aux = sg.vjp(f, has_aux=True)(X, v)
    np.testing.assert_allclose(out, 2 * np.sin(X))
    np.testing.assert_allclose(g, v * 2 * np.cos(X))
    assert aux == pytest.approx(np.sum(np.sin(X)))
    out, t, aux = sg.jvp(f, has_aux=True)(X, v)
    np.testing.assert_allclose(out, 2 * np.sin(X))
    np.testing.assert_allclose(t, 2 * np.cos(X) * v)
    assert aux == pytest.approx(np.sum(np.sin(X)))


# ------------------------------------------------------------------------------ shapes at the door
def vector_fn(x):
    return np.sin(x) * 2.0


def cubic(x):
    return np.sum(x ** 3)


@pytest.mark.parametrize("t", [np.ones(1), 1.0, np.ones(()), np.ones((3, 1))])
def test_jvp_refuses_a_tangent_of_the_wrong_shape(t):
    # was: broadcast silently, giving J @ (1, 1, 1) for a (1,) or scalar tangent
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        sg.jvp(vector_fn)(X, t)


def test_jvp_refuses_an_array_tangent_for_a_float_argument():
    with pytest.raises(ValueError, match="float"):
        sg.jvp(vector_fn)(1.5, np.ones(3))
    value, t = sg.jvp(vector_fn)(1.5, 1.0)
    assert t == pytest.approx(2 * np.cos(1.5))


def test_jvp_refuses_a_wrong_tangent_in_a_tuple():
    def f(x, y):
        return x * y

    with pytest.raises(ValueError, match=r"argument 1 .*shape \(3,\)"):
        sg.jvp(f, wrt=(0, 1))(X, X, (np.ones(3), np.ones(1)))


def test_hvp_refuses_a_vector_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        sg.hvp(cubic)(X, np.ones(1))
    _, hv = sg.hvp(cubic)(X, np.ones(3))
    np.testing.assert_allclose(hv, 6 * X)


def test_vjp_refuses_a_cotangent_of_the_wrong_shape():
    with pytest.raises(ValueError, match="cotangent"):
        sg.vjp(vector_fn)(X, np.ones(1))

    def scalar(x):
        return x ** 3

    with pytest.raises(ValueError, match="cotangent"):
        sg.vjp(scalar)(1.5, np.ones(3))        # a float output takes a float cotangent
    assert sg.vjp(scalar)(1.5, 2.0)[1] == pytest.approx(2.0 * 3 * 1.5 ** 2)


def test_functional_vjp_refuses_v_of_the_wrong_shape():
    from srcgrad.autograd import functional as F

    x = sg.tensor([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="invalid size"):
        F.vjp(lambda_free_sin, x, sg.ones(1))
    with pytest.raises(RuntimeError, match="invalid size"):
        F.jvp(lambda_free_sin, x, sg.ones(1))
    with pytest.raises(RuntimeError, match="invalid size"):
        F.hvp(lambda_free_cube, x, sg.ones(1))


def lambda_free_sin(x):
    return x.sin() * 2


def lambda_free_cube(x):
    return x.pow(3).sum()


# ------------------------------------------------------------- dict literals returned: JAX's structure
def stats(x):
    return {"mean": np.mean(x), "energy": np.sum(x ** 2), "ends": (x[0], x[-1] * 2.0)}


def loss_with_dict_metrics(x, scale=2.0):
    loss = np.sum(np.sin(x) * scale)
    return loss, {"first": x[0] * 3.0, "norm": np.sqrt(np.sum(x * x))}


def test_jvp_and_vjp_of_a_dict_output_come_back_as_dicts():
    t = np.array([1.0, 0.5, -2.0])
    value, tangent = sg.jvp(stats)(X, t)
    assert set(value) == set(tangent) == {"mean", "energy", "ends"}
    assert value["energy"] == pytest.approx(np.sum(X ** 2))
    assert tangent["mean"] == pytest.approx(np.mean(t))
    assert tangent["energy"] == pytest.approx(np.sum(2 * X * t))
    assert tangent["ends"][0] == pytest.approx(t[0]) and tangent["ends"][1] == pytest.approx(2 * t[-1])
    ct = {"mean": 1.0, "energy": 0.5, "ends": (2.0, -1.0)}
    value, g = sg.vjp(stats)(X, ct)
    want = fd_grad(lambda x: (np.mean(x) + 0.5 * np.sum(x ** 2) + 2.0 * x[0] - 2.0 * x[-1]), X)
    np.testing.assert_allclose(g, want, rtol=1e-6)
    J = sg.jacobian(stats)(X)
    np.testing.assert_allclose(J["energy"], 2 * X)
    np.testing.assert_allclose(J["ends"][1], [0.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="keys the function returns"):
        sg.vjp(stats)(X, {"mean": 1.0})


def test_a_dict_aux_comes_back_as_a_dict():
    g, aux = sg.grad(loss_with_dict_metrics, has_aux=True)(X)
    np.testing.assert_allclose(g, 2.0 * np.cos(X))
    assert aux == {"first": pytest.approx(3 * X[0]), "norm": pytest.approx(np.linalg.norm(X))}
    (value, aux2), g2 = sg.value_and_grad(loss_with_dict_metrics, has_aux=True)(X)
    assert value == pytest.approx(np.sum(2.0 * np.sin(X))) and aux2 == aux
    np.testing.assert_allclose(g2, g)
    value, tangent, aux3 = sg.jvp(loss_with_dict_metrics, has_aux=True)(X, np.ones(3))
    assert tangent == pytest.approx(np.sum(2.0 * np.cos(X))) and aux3 == aux
    value, g3, aux4 = sg.vjp(loss_with_dict_metrics, has_aux=True)(X, 1.0)
    np.testing.assert_allclose(g3, g)
    assert aux4 == aux


class Summary(NamedTuple):
    mean: float
    energy: float


@dataclasses.dataclass
class Pair:
    first: float
    rest: np.ndarray


def summary(x):
    return Summary(np.mean(x), energy=np.sum(x ** 2))


def pair_in_a_list(x):
    return [Pair(x[0] * 2.0, x[1:] ** 2), {"s": np.sum(np.sin(x))}]


def test_named_tuple_dataclass_and_list_outputs_keep_their_structure():
    t = np.array([1.0, 0.5, -2.0])
    value, tangent = sg.jvp(summary)(X, t)
    assert isinstance(value, Summary) and isinstance(tangent, Summary)
    assert tangent.mean == pytest.approx(np.mean(t)) and tangent.energy == pytest.approx(2 * X @ t)
    value, g = sg.vjp(summary)(X, Summary(1.0, 0.5))
    np.testing.assert_allclose(g, np.full(3, 1 / 3) + X)
    value, tangent = sg.jvp(pair_in_a_list)(X, t)
    assert isinstance(tangent, list) and isinstance(tangent[0], Pair)
    assert tangent[0].first == pytest.approx(2 * t[0])
    np.testing.assert_allclose(tangent[0].rest, 2 * X[1:] * t[1:])
    assert tangent[1]["s"] == pytest.approx(np.cos(X) @ t)
    with pytest.raises(ValueError, match="must be a Summary"):
        sg.vjp(summary)(X, (1.0, 0.5))
