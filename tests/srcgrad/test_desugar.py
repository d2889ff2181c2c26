"""The front end's lowering of Python sugar (srcgrad/desugar.py): comprehensions, generator expressions,
map, nested helpers and local lambdas become loops, appends and inlined statements. Each case is checked
against finite differences in reverse and forward mode; the generated code is checked for what a reader
should see (the user's names, no closure machinery)."""

import inspect

import numpy as np
import pytest

import srcgrad as sg
from tests.srcgrad.util import numeric_grad

X = np.array([0.3, 0.7, 1.1])


def comprehension_into_name(x):
    ys = [np.sin(a) * 2 for a in x]
    return sum(ys)


def nested_generators_with_condition(x):
    return sum(a * b for a in x for b in x if b > 0.5)


def array_of_comprehension(x):
    return np.sum(np.array([x[i] ** 2 for i in range(3)]))


def stack_of_comprehension(x):
    return np.sum(np.stack([x * k for k in range(1, 4)]))


def helper_called_twice(x):
    def sq(v):
        return v * v
    return np.sum(sq(x) + sq(2 * x))


def closure_lambda_and_default(x):
    w = 3.0
    scale = lambda v: w * v  # noqa: E731
    def f(v, p=2):
        if np.sum(v) > 100:
            return v
        z = scale(v) ** p
        return z
    return np.sum(f(x)) + np.sum(f(x, p=3))


def triangular_from_vector(x):
    n = 3
    def tri(v):
        L = np.zeros((n, n))
        k = 0
        for i in range(n):
            for j in range(i + 1):
                L[i, j] = v[k] if k < len(v) else 1.0
                k += 1
        return L
    L = tri(np.concatenate([x, x]))
    return np.sum(L @ L.T)


def map_of_lambda(x):
    return sum(map(lambda a: a ** 3, x))


def nonlocal_counter(x):
    calls = 0
    def f(v):
        nonlocal calls
        calls += 1
        return np.sin(v)
    s = f(x) + f(x * 2)
    return np.sum(s) * calls


def comprehension_in_one_branch(x):
    return np.sum(np.sum([a * a for a in x]) if x[0] > 0 else x)


def comprehension_in_while_test(x):
    y = x
    while sum(a * a for a in y) < 100.0:
        y = y * 1.5
    return np.sum(y)


def short_circuit_helper(x):
    def big(v):
        return np.sum(v * v) > 1.0
    return np.sum(x * 2.0) if (x[0] > 0 and big(x)) else np.sum(x)


def lists_made_in_one_line(theta):
    Rs, ts = [], []
    for i in range(2):
        Rs.append(theta[i] * 2.0)
        ts.append(theta[i] * 3.0)
    return Rs[0] + Rs[1] + ts[1]


def helper_returns_a_list(theta):
    def absolute():
        Rs = []
        for i in range(2):
            Rs.append(theta[i] * np.eye(2))
        return Rs
    return np.sum(absolute()[1])


def nested_comprehension_rows(x):
    return np.sum(np.array([[(a - b) ** 2 for b in x] for a in x]))


def comprehension_variable_shadows(x):
    a = 2.0
    s = sum(a * a for a in x)  # the comprehension's a is its own
    return s * a


CASES = [comprehension_into_name, nested_generators_with_condition, array_of_comprehension,
         stack_of_comprehension, helper_called_twice, closure_lambda_and_default, triangular_from_vector,
         map_of_lambda, nonlocal_counter, comprehension_in_one_branch, comprehension_in_while_test,
         short_circuit_helper, lists_made_in_one_line, helper_returns_a_list, nested_comprehension_rows,
         comprehension_variable_shadows]


@pytest.mark.parametrize("fn", CASES, ids=lambda f: f.__name__)
def test_lowered_code_has_the_right_derivative(fn):
    x = X.copy()
    want = numeric_grad(fn, [x.copy()], 0)
    np.testing.assert_allclose(sg.grad(fn)(x), want, rtol=1e-6, atol=1e-8)
    t = np.array([0.5, -1.0, 2.0])
    _, tangent = sg.jvp(fn)(x, t)
    assert tangent == pytest.approx(float(want @ t), rel=1e-6, abs=1e-8)
    np.testing.assert_array_equal(x, X)  # the caller's array is untouched


def test_inlined_helpers_read_as_the_user_wrote_them():
    g = sg.grad(closure_lambda_and_default)
    g(X)
    src = inspect.getsource(g)
    assert "f_z = scale_value ** 2" in src and "f_z_1 = scale_value_1 ** 3" in src
    code = [ln for ln in src.splitlines() if not ln.strip().startswith("#")]
    assert not any("lambda v" in ln for ln in code)
    src = sg.grad(comprehension_into_name).source
    assert "ys = []" in src and "ys.append(" in src


def test_a_nested_function_stored_as_a_value_is_refused_with_its_line():
    def f(x):
        def sq(v):
            return v * v
        table = [sq, sq]
        return np.sum(table[0](x))

    with pytest.raises(sg.TransformError, match="nested function used other than by calling it") as e:
        sg.grad(f)(X)
    assert e.value.source_line.strip() == "def sq(v):"


# ------------------------------------------------------------------ functions passed to other functions
def rk4(f, y, h, n):
    for _ in range(n):
        k1 = f(y)
        k2 = f(y + 0.5 * h * k1)
        k3 = f(y + 0.5 * h * k2)
        k4 = f(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def right_hand_side(y):
    return np.sin(y)


def decay_by_lambda(x):
    k = x[0]
    return np.sum(rk4(lambda y: -k * y, x, 0.1, 6))


def integrate_a_module_function(x):
    return np.sum(rk4(right_hand_side, x, 0.1, 4))


def integrate_a_nested_closure(x):
    c = np.sum(x)

    def f(y):
        return c * np.cos(y)
    return np.sum(rk4(f, x, 0.1, 4))


@pytest.mark.parametrize("fn", [decay_by_lambda, integrate_a_module_function, integrate_a_nested_closure],
                         ids=lambda f: f.__name__)
def test_a_function_given_a_function_is_inlined_with_it(fn):
    test_lowered_code_has_the_right_derivative(fn)


def test_inlined_code_keeps_the_lines_of_the_function_it_came_from():
    src = sg.grad(decay_by_lambda).source
    assert "# line 5: k1 = f(y)" not in src  # rk4's own line numbers, not this file's numbering from 1
    line = rk4.__code__.co_firstlineno + 2
    assert f"# line {line}: k1 = f(y)" in src


# ------------------------------------------------------------------------- generators consumed whole
def windows(x, k):
    for i in range(len(x) - k + 1):
        yield x[i:i + k]


def sliding_products(x):
    total = 0.0
    for w in windows(x, 2):
        total = total + np.prod(w)
    return total


def discounted_sum(x):
    def discounted(values):
        g = 1.0
        for v in values:
            yield g * v
            g = g * 0.5
    return sum(discounted(np.tanh(x)))


def stacked_windows(x):
    return np.sum(np.stack(list(windows(x, 2))) ** 2)


@pytest.mark.parametrize("fn", [sliding_products, discounted_sum, stacked_windows], ids=lambda f: f.__name__)
def test_a_generator_consumed_whole_is_its_list_of_values(fn):
    test_lowered_code_has_the_right_derivative(fn)


def counts_forever(x):
    n = 0
    while True:
        yield x * n
        n += 1


def takes_three(x):
    total = 0.0
    for i, v in enumerate(counts_forever(x)):
        if i == 3:
            break
        total = total + np.sum(v)
    return total


def test_a_generator_with_a_while_loop_is_refused_not_run_forever():
    with pytest.raises(sg.TransformError, match="generator"):
        sg.grad(takes_three)(X)


# --- sorted(), settings stored on objects, objects held in a closure -----------------------------------

def sorted_trim(x):
    s = sorted(x)
    return sum(s[1:-1]) * s[-1]


def sorted_list_reversed(x):
    vals = [np.sin(x[i]) for i in range(len(x))]
    s = sorted(vals, reverse=True)
    return s[0] - 2.0 * s[1]


def sorted_in_comprehension(x):
    return sum(v * (i + 1) for i, v in enumerate(sorted(x ** 2)))


@pytest.mark.parametrize("fn", [sorted_trim, sorted_list_reversed, sorted_in_comprehension])
def test_sorted_of_values_has_the_derivative_of_the_sort(fn):
    x = np.array([0.3, -1.2, 2.1, 0.7, -0.4])
    np.testing.assert_allclose(sg.grad(fn)(x), numeric_grad(fn, [x], 0), rtol=1e-6, atol=1e-8)
    _, t = sg.jvp(fn)(x, np.ones(5))
    np.testing.assert_allclose(t, numeric_grad(fn, [x], 0).sum(), rtol=1e-6)


def sorted_by_key(x):
    return sum(sorted(x, key=abs))


def test_sorted_with_a_key_function_is_refused_with_its_line():
    with pytest.raises(sg.TransformError, match="key=") as err:
        sg.grad(sorted_by_key)(np.array([1.0, -2.0]))
    assert "line" in str(err.value) and "argsort" in str(err.value)


class Counted:
    def __init__(self, k):
        self.k = k
        self.calls = 0

    def energy(self, x):
        self.calls += 1
        self.n = x.shape[0]
        return self.k * np.sum(x ** 3)

    def keeps_state(self, x):
        self.h = np.tanh(x)          # a value with a derivative: refused
        return np.sum(self.h)


def counted_loss(obj, x):
    return obj.energy(x)


def test_a_counter_on_self_is_stored_and_the_gradient_is_right():
    obj = Counted(2.0)
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(sg.grad(obj.energy)(x), 6.0 * x ** 2)
    assert obj.calls == 1 and obj.n == 3
    sg.jvp(obj.energy)(x, np.ones(3))
    assert obj.calls == 2
    g = sg.grad(counted_loss, wrt=(0, 1))(obj, x)      # the object differentiated too
    np.testing.assert_allclose(g[0]["k"], np.sum(x ** 3))
    np.testing.assert_allclose(g[1], 6.0 * x ** 2)
    assert obj.calls == 3


def test_storing_a_differentiated_value_on_a_differentiated_object_is_refused():
    obj = Counted(2.0)
    with pytest.raises(sg.TransformError, match=r"writes into self\.h"):
        sg.grad(lambda o, x: o.keeps_state(x), wrt=(0, 1))(obj, np.ones(3))


class Layer:
    def __init__(self, W):
        self.W = W

    def __call__(self, h):
        return np.tanh(h @ self.W)


class Stack:
    def __init__(self, layers):
        self.layers = layers

    def forward(self, h):
        for layer in self.layers:
            h = layer(h)
        return h


def test_a_model_held_in_a_closure_is_followed_and_rebuilt_when_its_structure_changes():
    rng = np.random.default_rng(5)
    model = Stack([Layer(rng.normal(size=(3, 3)))])

    def loss(x):
        return np.sum(model.forward(x) ** 2)

    g = sg.grad(loss)
    x = rng.normal(size=(2, 3))
    np.testing.assert_allclose(g(x), numeric_grad(loss, [x], 0), rtol=1e-6, atol=1e-8)
    model.layers.append(Layer(rng.normal(size=(3, 2))))          # a new layer: built again
    np.testing.assert_allclose(g(x), numeric_grad(loss, [x], 0), rtol=1e-6, atol=1e-8)
    model.layers[0].W = 2.0 * model.layers[0].W                  # new values: read when the call runs
    np.testing.assert_allclose(g(x), numeric_grad(loss, [x], 0), rtol=1e-6, atol=1e-8)


def rosen2(a, b):
    return (1 - a) ** 2 + 10 * (b - a ** 2) ** 2


def spread_too_short(x):
    return rosen2(*x[:1])


def test_a_starred_argument_of_the_wrong_length_raises_as_python_does():
    with pytest.raises(TypeError, match="rosen2"):
        sg.grad(spread_too_short)(np.array([0.5, 1.0]))


def head_times_rest(x):
    a, *rest = x
    return a * np.sum(np.array(rest) ** 2)


def first_middle_last(x):
    first, *middle, last = [x[0], np.sin(x[1]), x[2], x[3]]
    return first * last + middle[0] * middle[1]


def rows_unpacked(m):
    top, *others = m
    _, *tail = top
    return np.sum(top * others[-1]) + sum(tail)


@pytest.mark.parametrize("fn, x", [
    (head_times_rest, np.array([0.3, -0.7, 0.5, 1.2])),
    (first_middle_last, np.array([0.3, -0.7, 0.5, 1.2])),
    (rows_unpacked, np.arange(6.0).reshape(3, 2) / 5.0 + 0.1),
], ids=lambda v: getattr(v, "__name__", ""))
def test_starred_unpacking_binds_what_python_binds(fn, x):
    for _ in range(2):
        np.testing.assert_allclose(sg.grad(fn)(x), numeric_grad(fn, [x.copy()], 0), rtol=1e-6, atol=1e-9)
    value, tangent = sg.jvp(fn)(x, np.ones_like(x))
    assert value == pytest.approx(fn(x))
    assert tangent == pytest.approx(np.sum(numeric_grad(fn, [x.copy()], 0)), rel=1e-6)


def test_starred_unpacking_of_too_short_a_sequence_raises_as_python_does():
    with pytest.raises(ValueError, match="not enough values to unpack"):
        sg.grad(first_middle_last_of)(np.array([1.0]))


def first_middle_last_of(x):
    a, *r, b = x
    return a * b + np.sum(r)
