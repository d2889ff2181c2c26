"""Idioms users write that srcgrad once got wrong or crashed on (issue "Never silently wrong"): each
gives the right derivative (checked against finite differences or a closed form) or a clear
TransformError naming what to write instead."""

import numpy as np
import pytest

import srcgrad as sg
from srcgrad import TransformError
from tests.srcgrad import user_idioms as U
from tests.srcgrad.util import numeric_grad

X = np.array([0.4, -1.3, 2.1])


def check(fn, x=X):
    g = sg.grad(fn)(x)
    np.testing.assert_allclose(g, numeric_grad(fn, (x.copy(),), 0), rtol=1e-6, atol=1e-8)
    _, jt = sg.jvp(fn)(x, np.ones_like(x))
    assert jt == pytest.approx(np.sum(g), rel=1e-9, abs=1e-12)
    return g


# ----------------------------------------------------------------------------------------- decorators
@pytest.mark.parametrize("fn", [U.logged_loss, U.penalised_loss, U.calls_decorated_helper])
def test_a_decorator_is_differentiated_as_the_code_it_is(fn):
    check(fn)


def test_a_value_changing_wrapper_with_star_args_is_differentiated_as_it_is():
    # w(*a) returns 3.0 * f(*a): its *a is expanded per call, and the factor is in the gradient
    np.testing.assert_allclose(sg.grad(U.scaled_loss)(X), 3.0 * sg.grad(U.scaled_loss.__wrapped__)(X),
                               rtol=1e-12)
    check(U.scaled_loss)


def test_the_penalty_a_decorator_adds_is_in_the_gradient():
    np.testing.assert_allclose(sg.grad(U.penalised_loss)(X), np.cos(X) + X, rtol=1e-12)


# ------------------------------------------------------------------------------- item, float, tolist
def test_item_and_float_pass_the_derivative_on():
    np.testing.assert_allclose(check(U.through_item), [X[1], X[0], 1.0], rtol=1e-12)
    check(U.through_float)


def test_tolist_of_a_value_with_a_derivative_is_refused():
    with pytest.raises(TransformError, match="tolist"):
        sg.grad(U.through_tolist)(X)


# ------------------------------------------------------------------ crashes that became right answers
def test_an_early_return_beside_a_loop_that_reassigns():
    for x in (X, -X):
        check(U.early_return_or_loop, x)


def test_user_names_that_generated_code_also_uses():
    check(U.uses_generated_names)
    np.testing.assert_allclose(sg.hessian(U.uses_generated_names)(X), 8.0 * np.eye(3), atol=1e-12)
    _, hv = sg.hvp(U.uses_generated_names)(X, np.ones(3))
    np.testing.assert_allclose(hv, np.full(3, 8.0), rtol=1e-12)


def test_a_list_literal_reduced_by_numpy():
    check(U.sum_of_list)


def test_a_module_level_gradient_called_inside():
    np.testing.assert_allclose(check(U.calls_a_gradient), 9 * X ** 2, rtol=1e-12)
    _, hv = sg.hvp(U.calls_a_gradient)(X, np.ones(3))
    np.testing.assert_allclose(hv, 18 * X, rtol=1e-12)


@pytest.mark.parametrize("fn, what", [(U.no_return, "returned None"), (U.returns_str, "returned str")])
def test_outputs_that_are_not_numbers_are_refused(fn, what):
    with pytest.raises(TransformError, match=what):
        sg.grad(fn)(X)


# --------------------------------------------------------------- defaults and keywords specialize too
def test_defaults_and_keywords_choose_the_same_specialized_code():
    g = sg.grad(U.pendulum, wrt=(0, 1))
    full = g(0.1, 1.0, 9.81, 0.01, 50, 1.0, 0.0)
    source_full = g.source
    assert "math.sin" in source_full  # Python floats throughout: the float variant ran
    for call in (lambda: g(0.1, 1.0), lambda: g(0.1, L=1.0), lambda: g(0.1, 1.0, steps=50, dt=0.01)):
        assert call() == pytest.approx(full, rel=1e-14)
        assert g.source == source_full
    assert "math.sin" not in g.generic_source
    h = 1e-6
    fd = (U.pendulum(0.1 + h, 1.0) - U.pendulum(0.1 - h, 1.0)) / (2 * h)
    assert full[0] == pytest.approx(fd, rel=1e-6)


# -------------------------------------------------- element loops accumulate into their own buffer
def test_an_element_loop_adds_into_its_gradient_buffer():
    x = np.linspace(-1.0, 2.0, 7)
    g = sg.grad(U.element_loop)
    np.testing.assert_allclose(g(x), np.cos(x) * x + np.sin(x), rtol=1e-12)
    assert "bx[i] += " in g.source  # one element per step, into its own buffer, not a copy of it
    first = g(x)
    second = g(x)
    assert first is not second and np.array_equal(first, second)  # a new buffer per call


def test_a_repeated_gather_index_accumulates_every_time():
    x = np.array([0.5, -1.0, 2.0])
    idx = np.array([0, 2, 0, 0])
    want = np.zeros(3)
    for k, j in enumerate(idx):
        want[j] += 2 * x[j] * (k + 1.0)
    np.testing.assert_allclose(sg.grad(U.gather_loop)(x, idx), want, rtol=1e-12)


def test_vjp_never_writes_into_the_callers_cotangent():
    x = np.linspace(-1.0, 2.0, 5)
    v = 1.5
    _, g = sg.vjp(U.element_loop_returning_buffer_twice)(x, v)
    np.testing.assert_allclose(g, 3.0 * x, rtol=1e-12)


# ------------------------------------------------- state started with np.zeros specializes as passed
def test_state_from_np_zeros_gets_the_code_of_state_passed_in():
    rng = np.random.default_rng(3)
    W, U_, xs = rng.standard_normal((4, 4)) * 0.5, rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    g_zeros = sg.grad(U.rnn_state_zeros, wrt=(0, 1))
    g_passed = sg.grad(U.rnn_state_passed, wrt=(0, 1))
    for a, b in zip(g_zeros(W, U_, xs), g_passed(W, U_, xs, np.zeros(4)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # the same specialized adjoint loop (the line comments aside)
    def loop(src):
        body = src.split("for t in reversed(_r1):", 1)[1]
        return [ln for ln in body.splitlines() if "# " not in ln]
    assert loop(g_zeros.source) == loop(g_passed.source)
    assert "unbroadcast" not in g_zeros.source and "np.tanh" in g_zeros.source
    h = 1e-6
    E = np.zeros_like(W)
    E[1, 2] = h
    fd = (U.rnn_state_zeros(W + E, U_, xs) - U.rnn_state_zeros(W - E, U_, xs)) / (2 * h)
    assert g_zeros(W, U_, xs)[0][1, 2] == pytest.approx(fd, rel=1e-6)


# ------------------------------------------------------------------------------------------- lambdas
def test_lambdas_as_users_write_them():
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(sg.grad(lambda x: np.sum(np.sin(x) * x))(x), np.cos(x) * x + np.sin(x),
                               rtol=1e-12)
    f, g = (lambda a: np.sum(a ** 2)), (lambda b: np.sum(b ** 3))  # two on one line
    np.testing.assert_allclose(sg.grad(f)(x), 2 * x, rtol=1e-12)
    np.testing.assert_allclose(sg.grad(g)(x), 3 * x ** 2, rtol=1e-12)
    spanning = sg.grad(lambda x:
                       np.sum(x ** 4),
                       wrt=0)
    np.testing.assert_allclose(spanning(x), 4 * x ** 3, rtol=1e-12)
    k = 3.0  # a closure
    assert sg.jvp(lambda x: np.sum(k * x))(x, np.ones(3))[1] == pytest.approx(9.0)
    np.testing.assert_allclose(sg.hessian(lambda x: np.sum(x ** 3))(x), np.diag(6 * x), atol=1e-12)
    value, (du, dv) = sg.value_and_grad(lambda u, v: u * v + np.sin(u), wrt=(0, 1))(0.3, 2.0)
    assert (value, du, dv) == pytest.approx((0.6 + np.sin(0.3), 2.0 + np.cos(0.3), 0.3))


def test_a_lambda_without_source_is_a_clear_error():
    f = eval("lambda x: x * 2.0")  # noqa: S307 -- no file holds its source
    with pytest.raises(TransformError, match="source"):
        sg.grad(f)(1.0)


# -------------------------------------------- found by the fuzzer and by testing as a new user would
RIGHT = [U.overwritten_by_a_constant_pair, U.assigned_back, U.helper_scales_a_number, U.prescaled,
         U.calls_module_lambda, U.array_default, U.dot_into, U.array_copy_then_write,
         U.view_with_no_arguments, U.flatten_then_write, U.astype_without_copy, U.einsum_implicit_output,
         U.einsum_with_a_module_array, U.astype_copies_then_write]


@pytest.mark.parametrize("fn", RIGHT, ids=lambda f: f.__name__)
def test_now_differentiated_right(fn):
    x = X.copy()
    check(fn, x)
    _, hv = sg.hvp(fn)(x, np.ones(3))
    g = lambda z: sg.grad(fn)(z)  # noqa: E731
    h = 1e-5
    np.testing.assert_allclose(hv, (g(x + h) - g(x - h)) / (2 * h), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(x, X)


REFUSED = [(U.assigned_back_but_shared, "d3 names the same array"),
           (U.helper_scales_callers_array, "writes into its argument z"),
           (U.helper_writes_a_view, "a view of y"),
           (U.writes_module_array_through_a_name, "MODULE_W names the same array"),
           (U.writes_module_array, "write into MODULE_W"),
           (U.accumulates_into_its_default, "the default of buf names the same array"),
           (U.astype_shares_then_write, "x names the same array")]


@pytest.mark.parametrize("fn, what", REFUSED, ids=lambda v: getattr(v, "__name__", ""))
def test_now_refused_with_the_reason(fn, what):
    keep = U.MODULE_W.copy()
    with pytest.raises(TransformError, match=what):
        sg.grad(fn)(X.copy())
    np.testing.assert_array_equal(U.MODULE_W, keep)


def test_two_module_constants_holding_one_number_object_stay_two():
    g, j = sg.grad(U.equal_constants), sg.jvp(U.equal_constants)
    assert g(2.0) == pytest.approx(0.99) and j(2.0, 1.0)[1] == pytest.approx(0.99)
    old = U.SCALE_A, U.SCALE_B
    try:
        U.SCALE_A, U.SCALE_B = 1.0, 0.5
        assert g(2.0) == pytest.approx(0.5) and j(2.0, 1.0) == pytest.approx((1.0, 0.5))
    finally:
        U.SCALE_A, U.SCALE_B = old


def test_a_value_truncated_into_an_integer_array_has_no_derivative():
    # y[:] = 10 x with y integer: piecewise constant in x; only + sum(x) is left
    np.testing.assert_allclose(sg.grad(U.int_array_written_with_floats)(X), np.ones(3))
    assert sg.jvp(U.int_array_written_with_floats)(X, np.ones(3))[1] == pytest.approx(3.0)


@pytest.mark.parametrize("fn", [U.helper_writes_into_a_saved_array, U.write_after_a_differentiated_read,
                                U.helper_writes_a_saved_array_in_a_loop],
                         ids=lambda f: f.__name__)
def test_an_array_a_rule_saved_is_not_changed_under_it(fn):
    M = np.arange(16.0).reshape(4, 4) / 10
    np.testing.assert_allclose(sg.grad(fn)(M), numeric_grad(fn, (M.copy(),), 0), rtol=1e-6, atol=1e-8)


def test_an_augmented_assignment_reads_its_target_for_the_alias_check():
    with pytest.raises(TransformError, match="d1 names the same array"):
        sg.grad(U.aliased_augmented_twice, wrt=(0, 1))(-0.85, np.array([0.67, -1.91, -0.37]))


def zip_strict_loss(w, X, y):
    total = 0.0
    for xi, yi in zip(X, y, strict=True):
        total = total + np.log1p(np.exp(-yi * (xi @ w)))
    return total


def test_zip_strict_loops_are_differentiated_and_keep_pythons_length_check():
    r = np.random.default_rng(0)
    w, X, y = r.normal(size=3), r.normal(size=(5, 3)), np.sign(r.normal(size=5))
    g = sg.grad(zip_strict_loss)(w, X, y)
    np.testing.assert_allclose(g, numeric_grad(zip_strict_loss, (w, X, y), 0), rtol=1e-6)
    with pytest.raises(ValueError, match="zip\\(\\) argument 2 is shorter than argument 1"):
        sg.grad(zip_strict_loss)(w, X, y[:4])


def test_enumerate_with_a_start_keyword():
    """`enumerate(xs, start=1)` reads as `enumerate(xs, 1)` (a loop and a comprehension)."""

    def weighted(x):
        s = 0.0
        for i, v in enumerate(x, start=1):
            s = s + i * v ** 2
        return s + sum([j * v for j, v in enumerate(x, start=2)])

    x = np.array([1.0, 2.0, 3.0, 4.0])
    expected = 2 * np.arange(1, 5) * x + np.arange(2, 6)
    np.testing.assert_allclose(sg.grad(weighted)(x), expected)


def test_a_function_stored_on_self_is_refused_clearly():
    """`self.act = np.tanh` called in a method: a TransformError naming the line, not a RecursionError
    from flattening the object again and again."""

    class Net:
        def __init__(self):
            self.W = np.eye(3)
            self.act = np.tanh

        def loss(self, x):
            return np.sum(self.act(self.W @ x))

    with pytest.raises(sg.TransformError, match="act"):
        sg.grad(Net().loss)(np.ones(3))


def _append_double(ps, v):
    ps.append(v * 2.0)


def test_lists_under_two_names_and_helpers_adding_to_a_callers_list():
    """`q = list(ps)` is a new list, as in Python (was the same list: a wrong value and gradient); an
    append through a second name of one list (`q = ps`), or by a helper into its caller's list, is
    refused naming the line (the items were silently left without a derivative)."""
    x = np.array([1.0, 2.0, 3.0])

    def copied(x):
        ps = [x]
        q = list(ps)
        q.append(x ** 2)
        return np.sum(np.stack(ps) ** 2) + np.sum(np.stack(q))

    assert sg.value_and_grad(copied)(x)[0] == pytest.approx(copied(x))
    np.testing.assert_allclose(sg.grad(copied)(x), 4 * x + 1)

    def second_name(x):
        ps = [x]
        q = ps
        q.append(x ** 2)
        return np.sum(np.stack(ps) ** 2)

    with pytest.raises(TransformError, match="names the same list"):
        sg.grad(second_name)(x)

    def by_helper(x):
        ps = [x, x]
        _append_double(ps, x ** 2)
        return np.sum(np.concatenate(ps) ** 2)

    with pytest.raises(TransformError, match="adds items to its argument ps"):
        sg.grad(by_helper)(x)
    with pytest.raises(TransformError, match="adds items to its argument ps"):
        sg.jvp(by_helper)(x, np.ones(3))

    def renamed_for_return(x):   # a second name only read: fine
        ps = []
        for k in range(3):
            ps.append(x * k)
        out = ps
        return np.sum(np.stack(out) ** 2)

    np.testing.assert_allclose(sg.grad(renamed_for_return)(x), 10 * x)
