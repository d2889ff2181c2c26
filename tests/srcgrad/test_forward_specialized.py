"""Forward mode reads the facts of the call's signature, as reverse mode does (srcgrad/stages.py): a jvp
called with Python floats or NumPy arrays runs code specialized to their types and shapes (`math` on
numbers, NumPy subscripts, no shape adapters where shapes agree), checked here against finite
differences and the generic code; tangents of another type than their argument run the generic code."""

import inspect
import math
import warnings

import numpy as np
import pytest

import srcgrad as sg


def pendulum(th, w, g=9.81, L=1.0, dt=0.01, n=50):
    for _ in range(n):
        a = -g / L * math.sin(th)
        w = w + dt * a
        th = th + dt * w
    return th * th + w


def element_loop(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + math.sin(x[i]) * x[i]
    return s


def square(v):
    return v * v


def calls_a_helper(x, y):
    total = 0.0
    for k in range(3):
        total = total + square(x * k - y)
    return total


def rnn(x, W):
    h = np.zeros(W.shape[0])
    for _ in range(4):
        h = np.tanh(np.dot(W, h) + x)
    return np.sum(h ** 2)


def sqrt_shifted(x):
    return np.sqrt(x - 1.0)


def fd(f, args, i, t, eps=1e-6):
    up = list(args)
    down = list(args)
    up[i] = args[i] + eps * t
    down[i] = args[i] - eps * t
    return (f(*up) - f(*down)) / (2 * eps)


def test_float_loop_runs_math_and_keeps_types():
    j = sg.jvp(pendulum)
    v, d = j(0.3, 0.1, 1.0)
    assert type(v) is float and type(d) is float
    assert v == pytest.approx(pendulum(0.3, 0.1), rel=1e-12)
    assert d == pytest.approx(fd(pendulum, (0.3, 0.1), 0, 1.0), rel=1e-6)
    src = inspect.getsource(j)
    assert src == j.source
    assert "= math.sin(th)" in src and "widen" not in src and "tzero" not in src
    assert "= math.sin(" not in j.generic_source


def test_defaults_given_or_omitted_give_the_same_code():
    j = sg.jvp(pendulum)
    v1, d1 = j(0.3, 0.1, 1.0)
    omitted = j.source
    v2, d2 = j(0.3, 0.1, 9.81, 1.0, 0.01, 50, 1.0)
    assert (v1, d1) == (v2, d2)
    assert j.source == omitted


def test_tangent_of_another_type_runs_the_generic_code():
    j = sg.jvp(pendulum)
    v, d = j(0.3, 0.1, np.float64(1.0))
    assert d == pytest.approx(fd(pendulum, (0.3, 0.1), 0, 1.0), rel=1e-6)
    assert j.source == j.generic_source
    _, d32 = sg.jvp(rnn)(np.ones(3), np.eye(3) * 0.3, np.ones(3, dtype=np.float32))
    assert d32 == pytest.approx(fd(rnn, (np.ones(3), np.eye(3) * 0.3), 0, np.ones(3)), rel=1e-4)


def test_element_loop_reads_elements_with_subscripts():
    x = np.linspace(-1.0, 2.0, 7)
    t = np.cos(np.arange(7.0))
    j = sg.jvp(element_loop)
    v, d = j(x, t)
    assert v == pytest.approx(element_loop(x), rel=1e-12)
    assert d == pytest.approx(fd(element_loop, (x,), 0, t), rel=1e-6)
    assert d == pytest.approx(sg.grad(element_loop)(x) @ t, rel=1e-12)
    assert "dx[i]" in j.source and "getitem" not in j.source and "widen" not in j.source


def test_a_helper_is_specialized_to_its_arguments_at_the_call():
    j = sg.jvp(calls_a_helper, wrt=(0, 1))
    v, d = j(0.7, 0.2, (1.0, -0.5))
    expect = fd(calls_a_helper, (0.7, 0.2), 0, 1.0) - 0.5 * fd(calls_a_helper, (0.7, 0.2), 1, 1.0)
    assert v == pytest.approx(calls_a_helper(0.7, 0.2)) and d == pytest.approx(expect, rel=1e-6)


@pytest.mark.parametrize("n", [3, 5])
def test_array_variants_per_shape(n):
    rng = np.random.default_rng(n)
    x, W, t = rng.normal(size=n), rng.normal(size=(n, n)) * 0.3, rng.normal(size=n)
    j = sg.jvp(rnn)
    v, d = j(x, W, t)
    assert v == pytest.approx(rnn(x, W), rel=1e-12)
    assert d == pytest.approx(fd(rnn, (x, W), 0, t), rel=1e-6)
    assert d == pytest.approx(sg.grad(rnn)(x, W) @ t, rel=1e-10)
    assert f"np.zeros(({n},))" in j.source and "widen" not in j.source and "tzero" not in j.source


def log_elements(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + np.log(x[i])
    return s


def reciprocal(x):
    return 1.0 / x


def test_a_math_error_on_an_array_element_gives_numpy_inf_as_the_plain_function():
    """The specialized code runs math.log on x[i], which raises at 0; NumPy's np.log gives -inf with a
    warning: the call runs the generic code (NumPy's semantics), as the plain function computes."""
    j = sg.jvp(log_elements)
    x = np.array([1.0, 0.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        v, d = j(x, np.ones(3))
        plain = log_elements(x)
    assert v == plain == -math.inf and d == math.inf
    v, d = j(np.array([1.0, 4.0]), np.array([1.0, 2.0]))
    assert v == pytest.approx(math.log(4.0)) and d == pytest.approx(1.5)


def test_an_error_python_raises_on_floats_is_raised_as_by_the_plain_function():
    with pytest.raises(ZeroDivisionError):
        reciprocal(0.0)
    with pytest.raises(ZeroDivisionError):
        sg.jvp(reciprocal)(0.0, 1.0)
    assert sg.jvp(reciprocal)(2.0, 1.0) == (0.5, -0.25)


def test_wrt_naming_an_argument_twice_and_a_bool_tangent_are_clear_errors():
    with pytest.raises(sg.TransformError, match="names an argument twice"):
        sg.jvp(calls_a_helper, wrt=(0, 0))
    with pytest.raises(TypeError, match="last positional argument"):
        sg.jvp(pendulum)(0.3, 0.1, False)


def heat_step(u, r):
    for _ in range(5):
        new = u.copy()
        new[1:-1] = u[1:-1] + r * (u[2:] - 2 * u[1:-1] + u[:-2])
        new[0] = 0.0
        u = new
    return np.sum(u ** 2) + np.sum(np.where(u > 0.1, u, 2.0 * u))


def test_a_jointly_linear_primitive_takes_its_operands_tangents_at_once():
    """`new[1:-1] = v` with both new and v carrying tangents: the tangent is the same write of the
    tangents (index_update's record: jointly linear in x and v), one array, not a sum of two."""
    rng = np.random.default_rng(2)
    u, t = rng.normal(size=9), rng.normal(size=9)
    j = sg.jvp(heat_step)
    v, d = j(u, 0.3, t)
    assert v == pytest.approx(heat_step(u, 0.3), rel=1e-12)
    assert d == pytest.approx(fd(heat_step, (u, 0.3), 0, t), rel=1e-6)
    assert d == pytest.approx(sg.grad(heat_step)(u, 0.3) @ t, rel=1e-10)
    assert "index_update_owned(dnew, d_t" in j.source and "0.0 * new" not in j.source
    _, dr = sg.jvp(heat_step, wrt=1)(u, 0.3, 1.0)
    assert dr == pytest.approx(fd(heat_step, (u, 0.3), 1, 1.0), rel=1e-6)


def dp_table(x, y):
    R = np.full((x.shape[0] + 1, y.shape[0] + 1), 1e3)
    R[0, 0] = 0.0
    for i in range(1, x.shape[0] + 1):
        for j in range(1, y.shape[0] + 1):
            R[i, j] = (x[i - 1] - y[j - 1]) ** 2 + min(R[i - 1, j - 1], R[i - 1, j], R[i, j - 1])
    return R[-1, -1]


def test_a_table_and_its_tangent_are_written_in_place_never_the_callers_arrays():
    """A specialized jvp writes a table the function built, and its tangent, in place (as reverse mode's
    forward does): one element per write, not a copy of the table. A copy's tangent is the caller's
    tangent itself (`dnew = du`): its first write makes a new array (the run-time reference count sees
    the caller's), so neither the caller's array nor its tangent changes."""
    rng = np.random.default_rng(3)
    x, y, tx, ty = rng.normal(size=7), rng.normal(size=5), rng.normal(size=7), rng.normal(size=5)
    keep = [a.copy() for a in (x, y, tx, ty)]
    j = sg.jvp(dp_table, wrt=(0, 1))
    v, d = j(x, y, (tx, ty))
    gx, gy = sg.grad(dp_table, wrt=(0, 1))(x, y)
    assert v == pytest.approx(dp_table(x, y), rel=1e-12)
    assert d == pytest.approx(gx @ tx + gy @ ty, rel=1e-10)
    assert d == pytest.approx(fd(lambda a: dp_table(a, y), (x,), 0, tx)
                              + fd(lambda b: dp_table(x, b), (y,), 0, ty), rel=1e-6)
    assert "dR = index_update_owned(dR" in j.source or "dR[i, j] = " in j.source
    for a, k in zip((x, y, tx, ty), keep, strict=True):
        np.testing.assert_array_equal(a, k)
    u, t = rng.normal(size=9), rng.normal(size=9)
    u0, t0 = u.copy(), t.copy()
    for _ in range(2):   # the second call runs the built variant
        _, du = sg.jvp(heat_step)(u, 0.3, t)
        assert du == pytest.approx(sg.grad(heat_step)(u, 0.3) @ t, rel=1e-10)
    np.testing.assert_array_equal(u, u0)
    np.testing.assert_array_equal(t, t0)
