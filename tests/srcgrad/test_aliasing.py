"""NumPy's in-place writes through a second name: generated code never writes into arrays, so where
another name would see the write, srcgrad refuses (a helper writing into its caller's array: at
transform time; two names of one array: a check before the write, at run time) instead of returning
the derivative of a different program. Where no other name sees it, the write is differentiated."""

import numpy as np
import pytest

import srcgrad as sg
from srcgrad import TransformError
from tests.srcgrad.util import numeric_grad


def alias_write(x):
    a = np.zeros(3)
    b = a
    b[0] = x[0] * 2.0
    return np.sum(a * x)


def view_write(x):
    out = np.zeros((2, 3))
    row = out[1]
    row += x
    return np.sum(out * out)


def reshape_view_write(x):
    A = np.outer(x, x)
    v = A.reshape(-1)
    v[0] = 10.0 * x[1]
    return np.sum(A)


def augmented_alias(x):
    y = x * 2.0
    z = y
    y += 1.0
    return np.sum(z * x)


def bc(u):
    u[0] = 0.0
    return u


def helper_result_and_old_value(x):
    u = x * 2.0
    u = bc(u) + 0.1 * u
    return np.sum(u ** 2)


@pytest.mark.parametrize("fn", [alias_write, view_write, reshape_view_write, augmented_alias])
def test_a_write_another_name_sees_is_refused_before_it_happens(fn):
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(TransformError, match="names the same array"):
        sg.grad(fn)(x)
    with pytest.raises(TransformError, match="names the same array"):
        sg.jvp(fn)(x, np.ones(3))


def test_a_helper_whose_result_is_combined_with_the_old_name_is_refused():
    with pytest.raises(TransformError, match="bc writes into its argument u"):
        sg.grad(helper_result_and_old_value)(np.ones(3))


# ---------------------------------------------------------------- the same shapes, nobody else sees
def copied_then_written(x):
    y = x.copy()
    y[0] = 5.0 * x[1]
    return np.sum(y * x)


def fancy_copy_written(x):
    A = np.outer(x, x)
    rows = A[np.array([0, 2])]
    rows[0, 0] = 3.0 * x[1]
    return np.sum(A) + np.sum(rows * rows)


def float_previous_value(x):
    prev = x
    x += 0.5 * x * x
    return x * prev


def loop_rebinds_before_writing(x):
    h = x
    for i in range(3):
        h = h * 1.5
        h[i] = h[i] + x[i]
    return np.sum(h * h)


@pytest.mark.parametrize("fn", [copied_then_written, fancy_copy_written, loop_rebinds_before_writing])
def test_writes_no_other_name_sees_are_differentiated(fn):
    x = np.array([0.5, -1.0, 2.0])
    before = x.copy()
    g = sg.grad(fn)(x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(g, numeric_grad(fn, [x.copy()], 0), rtol=1e-6, atol=1e-8)


def test_a_float_augmented_assignment_is_a_rebinding_not_a_shared_write():
    x = 0.7
    g = sg.grad(float_previous_value)(x)
    h = 1e-6
    fd = (float_previous_value(x + h) - float_previous_value(x - h)) / (2 * h)
    assert g == pytest.approx(fd, rel=1e-6)


# ------------------------------------------------------------ copies stay copies; inputs stay unchanged
def copy_by_adding_zero(w, data):
    d = data + 0.0
    d += 1.0
    return np.sum(w * d)


def copy_by_times_one_then_store(w, data):
    d = data * 1.0
    d[0] = 5.0
    return np.sum(w * d)


def copy_by_method_then_store(w, data):
    d = data.copy()
    d[1] = d[1] * w[0]
    return np.sum(w * d)


def copy_by_np_copy_then_accumulate(w, data):
    d = np.copy(data)
    d *= 2.0
    return np.sum(w * d) + np.sum(data)


@pytest.mark.parametrize("fn", [copy_by_adding_zero, copy_by_times_one_then_store, copy_by_method_then_store,
                                copy_by_np_copy_then_accumulate])
def test_a_copy_is_never_folded_into_the_callers_array(fn):
    w, data = np.array([0.3, -1.2, 2.0]), np.array([1.0, 2.0, 3.0])
    keep = data.copy()
    G = sg.grad(fn)
    first = G(w, data)
    for _ in range(2):  # the same gradient each call, and the caller's data untouched
        np.testing.assert_array_equal(G(w, data), first)
    np.testing.assert_array_equal(data, keep)
    np.testing.assert_allclose(first, numeric_grad(fn, (w, data), 0), rtol=1e-6, atol=1e-8)


def writes_into_its_input(w, data):
    data[0] = 5.0
    return np.sum(w * data)


def test_a_write_into_the_callers_array_is_refused():
    w, data = np.ones(3), np.array([1.0, 2.0, 3.0])
    with pytest.raises(TransformError, match="caller passed as data"):
        sg.grad(writes_into_its_input)(w, data)
    np.testing.assert_array_equal(data, [1.0, 2.0, 3.0])


# ------------------------------------------- second names however they were made: caught at run time
def shared_by_tuple(x):
    a, b = x * 2.0, None
    a, b = a, a
    b[0] = 1.0
    return np.sum(a * x)


def shared_in_branch(x):
    y = x * 2.0
    z = y * 3.0
    if np.sum(x) > 0:
        z = y
    y[0] = 0.0
    return np.sum(z * x)


def shared_in_loop(x):
    y = x * 2.0
    z = x * 1.0
    for _ in range(2):
        z = y
    y += 1.0
    return np.sum(z * x)


def same(v):
    return v


def shared_by_helper(x):
    y = x * 2.0
    z = same(y)
    y[1] = 3.0
    return np.sum(z * x)


def view_by_helper_row(m):
    return m[0]


def shared_by_helper_view(x):
    y = np.outer(x, x)
    r = view_by_helper_row(y)
    y[0, 0] = 0.0
    return np.sum(r * x)


@pytest.mark.parametrize("fn", [shared_by_tuple, shared_in_branch, shared_in_loop, shared_by_helper,
                                shared_by_helper_view])
def test_sharing_through_tuples_branches_loops_and_helpers_is_caught(fn):
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(TransformError, match="names the same array"):
        sg.grad(fn)(x)


def unshared_in_branch(x):
    y = x * 2.0
    z = y * 3.0
    if np.sum(x) < -100.0:
        z = y
    y[0] = 0.0
    return np.sum(z * x) + np.sum(y)


def test_a_branch_not_taken_shares_nothing_and_is_differentiated():
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(sg.grad(unshared_in_branch)(x), numeric_grad(unshared_in_branch, (x,), 0),
                               rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------ calls that write into arrays
def scatter_add(w, dst):
    agg = np.zeros(3)
    np.add.at(agg, dst, w)
    return np.sum(agg ** 2)


def scatter_subtract(w, dst):
    agg = np.ones(3)
    np.subtract.at(agg, dst, w * w)
    return np.sum(agg ** 3)


def embedding_update(E, ids, v):
    E2 = E.copy()
    np.add.at(E2, ids, v)
    return np.sum(np.tanh(E2))


def softmax_in_place(y):
    Z = y - np.max(y)
    np.exp(Z, out=Z)
    Z /= np.sum(Z)
    return np.sum(Z * np.arange(3.0))


def exp_positional_out(y):
    z = y * 2.0
    np.exp(z, z)
    return np.sum(z)


def copy_into(x):
    z = np.zeros(3)
    np.copyto(z, x * 2.0)
    return np.sum(z ** 2)


def put_flat(x):
    z = np.zeros(4)
    np.put(z, [0, 2], x[:2])
    z.put([3], x[2])
    return np.sum(z ** 2 * np.arange(1.0, 5.0))


def sort_and_fill(x):
    y = x * 1.0
    y.sort()
    return np.sum(y * np.arange(3.0))


CALL_WRITES = [(scatter_add, (np.array([1.0, 2.0, 3.0]), np.array([0, 0, 2])), 0),
               (scatter_subtract, (np.array([0.3, 0.4, 0.5]), np.array([1, 1, 2])), 0),
               (embedding_update, (np.arange(6.0).reshape(3, 2) / 6, np.array([0, 2, 0]),
                                   np.ones((3, 2)) * 0.1), 0),
               (embedding_update, (np.arange(6.0).reshape(3, 2) / 6, np.array([0, 2, 0]),
                                   np.ones((3, 2)) * 0.1), 2),
               (softmax_in_place, (np.array([0.2, -0.4, 1.1]),), 0),
               (exp_positional_out, (np.array([0.2, -0.4, 1.1]),), 0),
               (copy_into, (np.array([0.2, -0.4, 1.1]),), 0),
               (put_flat, (np.array([0.2, -0.4, 1.1]),), 0),
               (sort_and_fill, (np.array([0.2, -0.4, 1.1]),), 0)]


@pytest.mark.parametrize("fn, args, i", CALL_WRITES, ids=lambda v: getattr(v, "__name__", ""))
def test_calls_that_write_into_an_array_get_their_derivative(fn, args, i):
    keep = [np.array(a, copy=True) for a in args]
    value, g = sg.value_and_grad(fn, wrt=i)(*args)
    assert value == pytest.approx(fn(*[a.copy() for a in keep]))
    np.testing.assert_allclose(g, numeric_grad(fn, [a.copy() for a in keep], i), rtol=1e-5, atol=1e-7)
    _, jt = sg.jvp(fn, wrt=i)(*args, np.ones_like(args[i]))
    assert jt == pytest.approx(np.sum(g))
    for a, k in zip(args, keep, strict=True):
        np.testing.assert_array_equal(a, k)


# ------------------------------------------------------------- positional arguments bind as in NumPy
def stack_positional_axis(x):
    s = np.stack([x[0:2], x[2:4]], 1)
    return np.sum(s * np.arange(4.0).reshape(2, 2))


def concatenate_positional_axis(x):
    s = np.concatenate([x[0:2].reshape(1, 2), x[2:4].reshape(1, 2)], 0)
    return np.sum(s * np.arange(4.0).reshape(2, 2) ** 2)


@pytest.mark.parametrize("fn", [stack_positional_axis, concatenate_positional_axis])
def test_positional_axis_is_bound_the_way_numpy_binds_it(fn):
    x = np.arange(1.0, 5.0)
    value, g = sg.value_and_grad(fn)(x)
    assert value == pytest.approx(fn(x))
    np.testing.assert_allclose(g, numeric_grad(fn, (x,), 0), rtol=1e-6, atol=1e-8)


# ------------------------------------------------ a helper writing into an argument it returns in a tuple
def _step_in_place(state, x):
    state[0] = np.tanh(state[0] + x)
    state[1] = state[1] * state[0]
    return np.sum(state[1]), state


def _steps_taking_the_state_back(x):
    state = np.ones((2, 3))
    total = 0.0
    for _ in range(3):
        y, state = _step_in_place(state, x)
        total = total + y
    return total


def _steps_dropping_the_state(x):
    state = np.ones((2, 3))
    y, _ = _step_in_place(state, x)
    return y + np.sum(state)


def test_a_helper_writing_into_an_argument_it_returns_in_a_tuple_assigned_back():
    x = np.array([0.1, -0.4, 0.7])
    np.testing.assert_allclose(sg.grad(_steps_taking_the_state_back)(x),
                               numeric_grad(_steps_taking_the_state_back, (x.copy(),), 0), rtol=1e-6)
    with pytest.raises(sg.TransformError, match="writes into its argument state"):
        sg.grad(_steps_dropping_the_state)(x)


# --- a view of other elements of the array being written: NumPy leaves it unchanged --------------------


def rows_written_past_a_view(x):
    state = np.outer(np.ones(4), x)
    h = state[0]
    for i in range(1, 4):
        state[i] = np.sin(h) * (i + 1.0)   # h views row i - 1; row i is written
        h = state[i]
    return np.sum(h * x) + np.sum(state ** 2)


def tuple_of_rows_written_past_a_view(x):
    state = np.outer(np.arange(1.0, 5.0), x)
    h = state[0]
    for i in range(1, 2):
        (state[2 * i], state[2 * i + 1]) = (np.tanh(h) * x, h * 2.0)
        h = state[2 * i]
    return np.sum(h) + np.sum(state * x)


def row_written_through_an_overlapping_view(x):
    state = np.outer(np.ones(3), x)
    h = state[1]
    state[1:, 0] = x[0] * 3.0      # column 0 of rows 1 and 2: h's first element changes too
    return np.sum(h * x)


def element_written_through_fancy_index(x):
    state = np.outer(np.ones(3), x)
    h = state[2]
    state[[0, 1]] = 0.5 * x        # fancy rows 0 and 1: h is untouched, but a copying index is not
    return np.sum(h * x)           # followed, so the check compares the whole array


@pytest.mark.parametrize("fn", [rows_written_past_a_view, tuple_of_rows_written_past_a_view])
def test_a_write_beside_a_view_is_differentiated(fn):
    x = np.array([0.5, -1.0, 2.0])
    before = x.copy()
    expected = numeric_grad(fn, [x.copy()], 0)
    np.testing.assert_allclose(sg.grad(fn)(x), expected, rtol=1e-6, atol=1e-8)
    _, t = sg.jvp(fn)(x, np.ones(3))
    np.testing.assert_allclose(t, expected.sum(), rtol=1e-6)
    assert np.array_equal(x, before)


@pytest.mark.parametrize("fn", [row_written_through_an_overlapping_view, element_written_through_fancy_index])
def test_a_write_into_a_views_elements_or_by_a_copying_index_is_refused(fn):
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(TransformError, match="names the same array"):
        sg.grad(fn)(x)


# --- the checks of writes into an array only the function's own fresh values can see ------------------


def fresh_then_shared(x):
    new = x * 1.0
    u = new
    new[0] = 5.0           # u is new: NumPy changes u too
    return np.sum(u * x)


def fresh_then_viewed(x):
    new = x.copy()
    v = new[1:]
    new[1] = 3.0           # v views new
    return np.sum(v * x[1:])


@pytest.mark.parametrize("fn", [fresh_then_shared, fresh_then_viewed])
def test_a_fresh_array_shared_before_the_write_is_still_checked(fn):
    with pytest.raises(TransformError, match="names the same array"):
        sg.grad(fn)(np.array([0.5, -1.0, 2.0]))
