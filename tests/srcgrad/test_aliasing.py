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
