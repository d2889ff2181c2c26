"""The fact pass (srcgrad/facts.py): what each variable holds, from the call's signature, and the code it
lets the compiler write (checked against finite differences: a wrong fact would be a wrong gradient)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import srcgrad as sg
from srcgrad import facts, pipeline
from srcgrad.facts import TOP, Arr, Num
from srcgrad.runtime.stack import index_add_into, index_update_owned
from tests.srcgrad.util import numeric_grad


def facts_of(fn, known):
    builder = pipeline.Builder()
    info, namer, body, _ = builder.front(fn, lambda info: pipeline.params_of(info.node)[0])
    params = pipeline.params_of(info.node)[1]
    return facts.infer(body[:-1], namer, params, known, numpy_variant=True, callee=builder.callee_facts)


F64 = np.dtype(np.float64)


# ------------------------------------------------------------------------------------------- facts
def slices_and_lengths(x, k):
    n = x.shape[0]
    head = x[:3]
    part = x[k:k + 2]
    table = np.zeros((n + 1, 2))
    mask = x[x > 0]
    s = 0.0
    for i in range(n):
        s = s + x[i]
    return np.sum(head) + np.sum(part) + np.sum(table) + np.sum(mask) + s


def test_shapes_lengths_and_what_depends_on_values():
    fx = facts_of(slices_and_lengths, {"x": Arr(F64, (5,), 1), "k": Num(int)})
    assert fx.get("n") == Num(int, 5)  # a length of an array of known shape: its value is known
    assert fx.get("head") == Arr(F64, (3,), 1)
    assert fx.get("part") == Arr(F64, (None,), 1)  # a bound held in a variable: rank known, length not
    assert fx.get("table") == Arr(F64, (6, 2), 2)  # np.zeros of known values
    mask = fx.get("mask")  # a boolean mask selects a length the values decide: never a known shape
    assert not (isinstance(mask, Arr) and mask.exact)
    assert fx.get("i") == Num(int)
    assert isinstance(fx.get("s"), Arr) and fx.get("s").shape == ()  # 0.0, then NumPy scalars


def unknown_dimension_reaches_results(x, k):
    part = x[k:]
    total = part @ np.ones((3, 2))
    flat = np.reshape(part, (-1,))
    return np.sum(total) + np.sum(flat)


def test_a_dimension_that_is_not_known_stays_not_known_through_operations():
    fx = facts_of(unknown_dimension_reaches_results, {"x": Arr(F64, (4, 3), 2), "k": Num(int)})
    assert fx.get("part") == Arr(F64, (None, 3), 2)
    assert fx.get("total") == Arr(F64, (None, 2), 2)
    flat = fx.get("flat")  # 3 * the unknown length: never taken for a known one
    assert not (isinstance(flat, Arr) and flat.exact)


def helper_returns_pair(a, b, scale=2.0):
    return a * scale, b + 1.0


def calls_a_helper(x, y):
    p, q = helper_returns_pair(x, y)
    return np.sum(p) + q


def test_facts_flow_through_a_helper_at_the_call_signature():
    fx = facts_of(calls_a_helper, {"x": Arr(F64, (3,), 1), "y": Num(float)})
    assert fx.get("p") == Arr(F64, (3,), 1)
    assert fx.get("q") == Num(float)


def test_join_keeps_what_every_assignment_agrees_on():
    assert facts.join(Num(int, 0), Num(int, 1)) == Num(int)
    assert facts.join(Num(int), Num(float)) == Num(float)
    assert facts.join(Arr(F64, (3, 4), 2), Arr(F64, (5, 4), 2)) == Arr(F64, (None, 4), 2)
    assert facts.join(Num(float), Arr(F64, (3,), 1)) == Arr(None, None, None)
    assert facts.join(Num(float), TOP) is TOP


# ------------------------------------------------------------------------------ code from the facts
def implicit_euler(k, y0):
    y = y0
    t = 0.0
    while t < 1.0:
        t = t + 0.1
        z = y
        r = z - y + 0.1 * k * (z ** 3 - math.cos(t))
        while abs(r) > 1e-12:
            z = z - r / (1.0 + 0.3 * k * z * z)
            r = z - y + 0.1 * k * (z ** 3 - math.cos(t))
        y = z
    return y


def test_float_loop_with_inline_math_calls_is_written_with_math():
    g = sg.grad(implicit_euler, wrt=(0, 1))
    got = g(2.0, 0.5)
    want = (numeric_grad(implicit_euler, (2.0, 0.5), 0), numeric_grad(implicit_euler, (2.0, 0.5), 1))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert "unbroadcast" not in g.source and "_stack.push(r)" not in g.source


def spring(x, k, cubic=0.1):
    return -k * x - cubic * x ** 3


def leapfrog(x, v, k):
    for _ in range(50):
        v = v + 0.005 * spring(x, k)
        x = x + 0.01 * v
    return x * x + v * v


def test_a_helper_of_floats_is_specialized_at_its_call():
    import inspect

    g = sg.grad(leapfrog, wrt=(0, 1, 2))
    got = g(1.0, 0.3, 2.0)
    point = np.array([1.0, 0.3, 2.0])
    want = [numeric_grad(leapfrog, tuple(float(v) for v in point), i) for i in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    floats = [req for (_, sig), req in spring.__srcgrad_callees__.items()
              if sig and all(isinstance(f, Num) for _, f in sig)]
    assert floats, "spring was not built for the facts of its float arguments"
    assert all("unbroadcast" not in inspect.getsource(req.adj_fn) for req in floats)


# ----------------------------------------------------------------------------- writes in place
def dp_table(x, y):
    n = x.shape[0]
    m = y.shape[0]
    R = np.full((n + 1, m + 1), 1e3)
    R[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            R[i, j] = (x[i - 1] - y[j - 1]) ** 2 + min(R[i - 1, j - 1], R[i - 1, j], R[i, j - 1])
    return R[n, m]


def test_a_table_the_program_builds_is_written_in_place_and_the_gradient_is_right():
    x, y = np.array([0.1, 0.7, 0.3]), np.array([0.5, 0.2, 0.9, 0.4])
    g = sg.grad(dp_table, wrt=(0, 1))
    gx, gy = g(x, y)
    np.testing.assert_allclose(gx, numeric_grad(dp_table, (x, y), 0), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(gy, numeric_grad(dp_table, (x, y), 1), rtol=1e-5, atol=1e-8)
    assert "R[i, j] = " in g.source  # a table nothing else can see: written directly


def writes_into_its_argument_copy(u, steps=3):
    for _ in range(steps):
        new = u.copy()
        new[1:-1] = u[1:-1] + 0.2 * (u[2:] - 2 * u[1:-1] + u[:-2])
        new[0] = 0.0
        u = new
    return np.sum(u ** 2)


def test_the_users_array_is_never_written():
    u = np.linspace(0.0, 1.0, 7)
    before = u.copy()
    g = sg.grad(writes_into_its_argument_copy)(u)
    np.testing.assert_array_equal(u, before)
    np.testing.assert_allclose(g, numeric_grad(writes_into_its_argument_copy, (u,), 0), rtol=1e-6)


@pytest.mark.parametrize("helper", [index_update_owned, index_add_into])
def test_an_array_another_name_or_saved_value_shares_is_not_written(helper):
    def alone():
        a = np.zeros(3)
        return helper(a, 1.0, index=0) is a

    def aliased():
        a = np.zeros(3)
        b = a
        out = helper(a, 1.0, index=0)
        return out is a or b[0] != 0.0

    def viewed():
        a = np.zeros(3)
        view = a[1:]
        out = helper(a, 1.0, index=1)
        return out is a or view[0] != 0.0

    def saved():
        a = np.zeros(3)
        kept = [a]
        out = helper(a, 1.0, index=0)
        return out is a or kept[0][0] != 0.0

    assert alone()
    assert not aliased() and not viewed() and not saved()



# --- facts through helpers: adapters resolved, int arguments known, recursion keyed once ---------------


def _softmax_rows(s, axis=-1):
    e = np.exp(s - np.max(s, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _shifted(x):
    return (np.roll(x, -1) - np.roll(x, 2)) * np.roll(x, 1) - x


def attention_like(X, W):
    A = _softmax_rows(X @ W)
    return np.sum((A @ X) ** 2) + np.sum(_shifted(X[0]) ** 2)


def _power(x, n):
    return x if n == 0 else x * _power(x, n - 1)


def uses_recursion(x):
    return np.sum(_power(x, 3))


def test_a_helper_with_an_int_default_and_adapters_gives_specialized_caller_code():
    rng = np.random.default_rng(0)
    X, W = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    g = sg.grad(attention_like, wrt=(0, 1))
    gX, gW = g(X, W)
    np.testing.assert_allclose(gX, numeric_grad(attention_like, [X.copy(), W.copy()], 0), rtol=1e-5,
                               atol=1e-8)
    np.testing.assert_allclose(gW, numeric_grad(attention_like, [X.copy(), W.copy()], 1), rtol=1e-5,
                               atol=1e-8)
    # the helpers' results are known arrays: the caller's adjoint needs no unbroadcast
    assert "unbroadcast" not in g.source


def test_a_recursive_helper_with_an_int_argument_is_built_once():
    x = np.array([0.5, 1.5])
    np.testing.assert_allclose(sg.grad(uses_recursion)(x), 4 * x ** 3)  # x * x * x * x
