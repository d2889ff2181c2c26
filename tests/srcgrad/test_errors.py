"""TransformError: raised at transform time, naming file, line, source text and what to do instead."""

import numpy as np
import pytest

import srcgrad as sg
from srcgrad import TransformError


def uses_try(x):
    try:
        y = x * 2.0
    except ValueError:
        y = x
    return y


def generator(x):
    yield x * 2.0


def writes_global(x):
    global COUNT
    COUNT = x
    return x


def no_rule(x):
    return np.i0(x) * 2.0


def apply_to(fn, a):
    return fn(a)


def nested_helper_as_value(a):
    def square(v):
        return v * v
    kept = {"f": square}
    return np.sum(kept["f"](a))


def list_write(a):
    xs = [a, a]
    xs[0] = a * 2.0
    return np.sum(xs[0])


def loop_else(x):
    for i in range(3):  # noqa: B007
        x = x * 2.0
    else:
        x = x + 1.0
    return x


def set_first(u, val):
    u[0] = val * val


def add_first(buf, x):
    buf[0] += x[0]
    return buf


def helper_writes_caller_array(x, k):
    u = x * 1.0
    set_first(u, k)
    return np.sum(u * u)


def helper_writes_result_dropped(x):
    buf = np.zeros(3)
    add_first(buf, x)
    return np.sum(buf * x)


def chained_subscript_write(x):
    A = np.zeros((2, 2))
    A[0][1] = 3.0 * x[0]
    return np.sum(A * A)


def transposed_write(x):
    A = np.zeros((2, 2))
    A.T[0] += x
    return np.sum(A * A)


def split_kept_whole(a):
    parts = np.split(a, 2)
    return np.sum(parts[0])


def split_miscounted(a):
    p, q = np.split(a, 3)
    return np.sum(p * q)


def split_by_variable(a, k):
    p, q = np.split(a, k)
    return np.sum(p * q)


@pytest.mark.parametrize(
    "fn, text, line",
    [
        (uses_try, "try/except", "try:"),
        (writes_global, "global", "global COUNT"),
        (no_rule, "no derivative for i0", "return np.i0(x) * 2.0"),
        (nested_helper_as_value, "nested function used other than by calling it", "def square(v):"),
        (loop_else, "else clause", "for i in range(3):"),
        (split_kept_whole, "unpacked at once", "parts = np.split(a, 2)"),
        (chained_subscript_write, "write through a view of A", "A[0][1] = 3.0 * x[0]"),
        (transposed_write, "write through a view of A", "A.T[0] += x"),
        (helper_writes_caller_array, "set_first writes into its argument u", "set_first(u, k)"),
        (helper_writes_result_dropped, "add_first writes into its argument buf", "add_first(buf, x)"),
        (split_miscounted, "gives 3 pieces here, unpacked into 2", "p, q = np.split(a, 3)"),
        (split_by_variable, "unpacked at once", "p, q = np.split(a, k)"),
    ],
)
def test_rejected_at_transform_time(fn, text, line):
    with pytest.raises(TransformError) as err:
        sg.grad(fn)
    e = err.value
    assert text in str(e)
    assert e.filename.endswith("test_errors.py")
    assert e.source_line.strip().startswith(line)
    assert e.lineno is not None and e.hint


def test_generator_rejected():
    with pytest.raises(TransformError, match="generator"):
        sg.grad(generator)


def test_error_message_is_readable():
    with pytest.raises(TransformError) as err:
        sg.grad(no_rule)
    msg = str(err.value)
    assert 'File "' in msg and "line" in msg and "Instead:" in msg


def test_builtin_without_source():
    with pytest.raises(TransformError, match="Python functions"):
        sg.grad(np.sin)


def test_wrt_out_of_range():
    def f(x):
        return x

    with pytest.raises(TransformError, match="wrt"):
        sg.grad(f, wrt=3)


def zipped(a, b):
    s = 0.0
    for p in zip(a, b, strict=False):
        s = s + p[0] * p[1]
    return s


def test_value_passing_builtins_are_refused_not_zero():
    # (sorted() has a derivative now: tests/srcgrad/test_desugar.py)
    with pytest.raises(TransformError):
        sg.grad(zipped)(np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))


def _pair(u):
    return u * 2.0, u * 3.0


def tuple_result_indexed(x):
    out = _pair(x)
    return out[0] * out[1]


def test_tuple_result_must_be_unpacked():
    with pytest.raises(TransformError, match="unpack"):
        sg.grad(tuple_result_indexed)


def torch_style_in_place(x):
    y = x * 1.0
    y.mul_(x)
    return np.sum(np.exp(y))


def numpy_fill_in_place(a):
    b = a * 2.0
    b.fill(1.0)
    return np.sum(b * a)


def test_in_place_torch_methods_are_refused_not_dropped():
    with pytest.raises(TransformError, match="in-place method \\.mul_\\(\\)"):
        sg.grad(torch_style_in_place)(np.ones(3))


def test_ndarray_fill_is_differentiated_as_the_new_array():
    a = np.array([0.5, -1.0, 2.0])
    # b.fill(1.0) makes b all ones: the loss is sum(a), its gradient ones (nothing flows through b)
    np.testing.assert_allclose(sg.grad(numpy_fill_in_place)(a), np.ones(3))


def fft_power(x):
    F = np.spacing(x)
    return np.sum(F.real ** 2 + F.imag ** 2)


def test_the_first_operation_without_a_rule_is_the_one_named():
    with pytest.raises(TransformError, match="no derivative for spacing") as err:
        sg.grad(fft_power)(np.ones(8))
    assert err.value.source_line.strip() == "F = np.spacing(x)"


def _inner_loss(w):
    return np.sum(np.sin(w))


_d_inner = sg.grad(_inner_loss)


def test_a_transform_made_inside_the_function_says_to_name_it_at_module_level():
    def meta(w):
        return np.sum(sg.grad(_inner_loss)(w) ** 2)

    with pytest.raises(sg.TransformError, match="made by a call inside the function") as info:
        sg.grad(meta)(np.ones(3))
    assert "module level" in str(info.value)

    def named(w):
        return np.sum(_d_inner(w) ** 2)

    np.testing.assert_allclose(sg.grad(named)(np.ones(3)), -2 * np.cos(1.0) * np.sin(1.0) * np.ones(3))


def _table_of_lists(a):
    table = [[0.0] * 3 for _ in range(3)]
    for i in range(1, 3):
        table[i][0] = table[i - 1][0] + a[i - 1] ** 2
    return table[2][0]


def test_a_write_into_a_list_of_lists_says_to_keep_the_table_in_an_array():
    with pytest.raises(TransformError, match="an item of table, a list") as err:
        sg.grad(_table_of_lists)(np.array([1.0, 2.0]))
    assert "table = np.zeros((n, m)), then table[i, j] = v" in str(err.value)


def _scaled(k, y0):
    return k * y0


@pytest.mark.parametrize("args", [(0.7, 2.0, 1.0, 0.0), (0.7,)])
def test_a_jvp_function_called_with_the_wrong_count_says_its_convention(args):
    convention = r"jvp of _scaled takes _scaled's arguments \(k, y0\), then the tangent last"
    with pytest.raises(TypeError, match=convention):
        sg.jvp(_scaled)(*args)
    assert sg.jvp(_scaled)(0.7, 2.0, 1.0) == pytest.approx((1.4, 2.0))
