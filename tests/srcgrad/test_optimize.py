"""The unit-seed fold of NumPy variants: fewer passes over the data, same values, same types, and
never the caller's own array handed back as a gradient. Nesting forward temporaries: the user's
expression written back as one line where nothing else reads its parts, and never reordered past a
statement that changes what it reads."""

import math

import numpy as np
import pytest

import srcgrad as sg
from tests.srcgrad.util import numeric_grad


def elementwise(x):
    return np.sum(np.sin(x) * np.exp(-x ** 2))


def weighted(x, idx):
    return np.sum(x * idx)


def bilinear(x, y):
    return np.sum(x * y)


def test_fold_removes_the_broadcast_seed_and_reuses_forward_products():
    x = np.linspace(-2.0, 2.0, 7)
    g = sg.grad(elementwise)
    got = g(x)
    src = g.source_for(x)
    assert "broadcast_to" not in src and "seed_of" not in src
    np.testing.assert_allclose(got, (np.cos(x) - 2 * x * np.sin(x)) * np.exp(-x ** 2), rtol=1e-12)


def test_integer_factor_keeps_a_float_gradient():
    g = sg.grad(weighted)(np.ones(4), np.arange(4))
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, [0.0, 1.0, 2.0, 3.0])


def test_gradient_is_never_the_callers_array():
    x, y = np.ones(3), np.arange(3.0)
    gx, gy = sg.grad(bilinear, wrt=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, y)
    np.testing.assert_array_equal(gy, x)
    assert not np.shares_memory(gx, y) and not np.shares_memory(gy, x)


# ------------------------------------------------------------------ nesting forward temporaries
def tanh_scaled(x):
    return np.sum(np.tanh(x * 2.0))


def sin_scaled(x):
    return np.sum(np.sin(x * 2.0))


def swap_loop(x, y):
    for _ in range(3):
        x, y = y * 0.5, x * 2.0 + 1.0
    return np.sum(x * y * y)


def forward_lines(src: str) -> list[str]:
    body = src.split("# adjoint of")[0]
    return [ln.strip() for ln in body.splitlines()[2:] if ln.strip() and not ln.strip().startswith("#")]


def test_a_chain_nobody_else_reads_is_written_back_as_one_expression():
    x = np.linspace(-2.0, 2.0, 7)
    g = sg.grad(elementwise)
    got = g(x)
    assert forward_lines(g.source_for(x)) == ["_t4 = np.exp(-x ** 2)", "_t5 = np.sin(x) * _t4"]
    np.testing.assert_allclose(got, (np.cos(x) - 2 * x * np.sin(x)) * np.exp(-x ** 2), rtol=1e-12)


def test_a_temporary_the_adjoint_reads_keeps_its_name():
    x = np.linspace(-1.0, 1.0, 5)
    # tanh's derivative needs only its output, so `x * 2.0` is nested; sin's needs its input
    g_tanh, g_sin = sg.grad(tanh_scaled), sg.grad(sin_scaled)
    assert forward_lines(g_tanh.source_for(x))[0] == "_t2 = np.tanh(x * 2.0)"
    assert forward_lines(g_sin.source_for(x))[0] == "_t1 = x * 2.0"
    np.testing.assert_allclose(g_tanh(x), 2.0 / np.cosh(2.0 * x) ** 2, rtol=1e-12)
    np.testing.assert_allclose(g_sin(x), 2.0 * np.cos(2.0 * x), rtol=1e-12)


def test_a_temporary_never_moves_past_a_statement_that_rebinds_what_it_reads():
    # `x, y = y * 0.5, x * 2.0 + 1.0`: `x * 2.0` must be taken before x is rebound
    def closed_form(x, y):
        for _ in range(3):
            x, y = y * 0.5, x * 2.0 + 1.0
        return x, y

    x0, y0 = np.array([0.3, -1.2]), np.array([0.7, 0.4])
    g = sg.grad(swap_loop, wrt=(0, 1))
    gx, gy = g(x0, y0)
    # the loop's adjoint reads neither x nor y (only the line after the loop does): nothing is saved
    assert "_stack" not in g.source_for(x0, y0)
    eps = 1e-6
    for i in range(2):
        for arg, got in ((0, gx), (1, gy)):
            hi = [x0.copy(), y0.copy()]
            lo = [x0.copy(), y0.copy()]
            hi[arg][i] += eps
            lo[arg][i] -= eps
            fd = (np.sum(np.prod([*closed_form(*hi), closed_form(*hi)[1]], axis=0))
                  - np.sum(np.prod([*closed_form(*lo), closed_form(*lo)[1]], axis=0))) / (2 * eps)
            np.testing.assert_allclose(got[i], fd, rtol=1e-6)


# ------------------------------------------------------------------ scaled unit seeds
def cube(x):
    return np.sum(x ** 3)


def scaled_sin(a):
    return np.sum(2 * np.sin(a) + 1)


def column_cubes(x):
    return np.sum(x ** 3, axis=0)


def test_a_scaled_seed_folds_into_a_number_and_the_unused_forward_goes():
    x = np.linspace(-1.0, 1.0, 6)
    g_cube, g_sin = sg.grad(cube), sg.grad(scaled_sin)
    def code(src: str) -> str:
        return "\n".join(ln for ln in src.splitlines() if not ln.strip().startswith("#"))

    src_cube, src_sin = code(g_cube.source_for(x)), code(g_sin.source_for(x))
    # the gradient needs no forward value here: neither the sum nor the seed is computed
    assert "3.0 * x ** 2.0" in src_cube and "np.sum" not in src_cube and "seed_of" not in src_cube
    assert "2.0 * np.cos(a)" in src_sin and "np.sum" not in src_sin
    np.testing.assert_allclose(g_cube(x), 3 * x ** 2, rtol=1e-15)
    np.testing.assert_allclose(g_sin(x), 2 * np.cos(x), rtol=1e-15)


def test_the_scaled_fold_keeps_float32_and_the_value_of_value_and_grad():
    x = np.linspace(-1.0, 1.0, 6).astype(np.float32)
    g = sg.grad(cube)(x)
    assert g.dtype == np.float32
    v, g64 = sg.value_and_grad(cube)(x.astype(np.float64))
    assert v == pytest.approx(np.sum(x.astype(np.float64) ** 3))
    np.testing.assert_allclose(g64, 3 * x.astype(np.float64) ** 2, rtol=1e-15)


def test_a_non_scalar_output_is_still_refused():
    with pytest.raises(sg.TransformError, match="scalar"):
        sg.grad(column_cubes)(np.ones((3, 2)))


# ------------------------------------------------------------------ merged accumulations
def square_of_tanh(x):
    h = np.tanh(x)
    return np.sum(h * h)


def test_two_contributions_of_one_line_are_one_statement():
    x = np.linspace(-1.0, 1.0, 5)
    g = sg.grad(square_of_tanh)
    src = g.source_for(x)
    # bh = h; bh = bh + h (the rule of h * h, seed folded): one statement, one pass
    assert "bh = 2 * h\n" in src and "bh = bh +" not in src
    t = np.tanh(x)
    np.testing.assert_allclose(g(x), 2 * t * (1 - t * t), rtol=1e-13)


def tanh_terms(x):
    h = np.tanh(x)
    return np.sum(h * h + h * x)


def test_the_seed_folds_through_the_copies_a_sum_of_terms_makes():
    x = np.linspace(-1.0, 1.0, 5)
    g = sg.grad(tanh_terms)
    assert "    bx = h\n" in g.source_for(x)  # seed * h, the seed reached through b_t2 = b_t3
    t = np.tanh(x)
    np.testing.assert_allclose(g(x), (2 * t + x) * (1 - t * t) + t, rtol=1e-13)


def _heat(u0, r):
    u = u0
    for _ in range(5):
        new = u.copy()
        new[1:-1] = u[1:-1] + r * (u[2:] - 2 * u[1:-1] + u[:-2])
        new[0] = 0.0
        new[-1] = 0.0
        u = new
    return np.sum(u ** 2)


def test_a_buffer_handed_to_another_name_is_released_and_written_in_place():
    from tests.srcgrad.util import numeric_grad

    u0 = np.linspace(0.1, 1.0, 8) ** 2
    before = u0.copy()
    g = sg.grad(_heat, wrt=(0, 1))
    gu, gr = g(u0, 0.3)
    np.testing.assert_allclose(gu, numeric_grad(_heat, [u0.copy(), 0.3], 0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gr, numeric_grad(_heat, [u0.copy(), 0.3], 1), rtol=1e-6)
    np.testing.assert_array_equal(u0, before)
    # `bnew = bu`, bu assigned afresh below and read nowhere before: released, so bnew is written in place
    assert "del bu" in g.source
    # writes into the fresh copy `new` carry no run-time alias check (optimize.drop_fresh_alias_checks)
    assert "refuse_shared" not in g.source


# ------------------------------------------------- numbers read from arrays, and what the facts decide


def softmin_table(x, y, gamma):
    """A soft-DTW table: elements read and written one at a time, a helper on NumPy scalars."""
    n, m = x.shape[0], y.shape[0]
    D = (x[:, None] - y[None, :]) ** 2
    R = np.full((n + 1, m + 1), 1e10)
    R[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            R[i, j] = D[i - 1, j - 1] + _softmin(R[i - 1, j - 1], R[i - 1, j], R[i, j - 1], gamma)
    return R[n, m]


def _softmin(a, b, c, gamma):
    lo = min(a, b, c)
    s = math.exp(-(a - lo) / gamma) + math.exp(-(b - lo) / gamma) + math.exp(-(c - lo) / gamma)
    return lo - gamma * math.log(s)


def running_logsumexp(x):
    acc = x[0]
    total = 0.0
    for i in range(1, x.shape[0]):
        hi = max(acc, x[i])
        acc = hi + math.log(math.exp(acc - hi) + math.exp(x[i] - hi))
        total += acc
    return total / x.shape[0]


def test_a_table_loop_on_numpy_scalars_runs_math_and_saves_only_what_it_must():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=6), rng.normal(size=5)
    g = sg.grad(softmin_table, wrt=(0, 1, 2))
    for _ in range(2):  # the second call runs the variant built for these shapes
        gx, gy, gg = g(x, y, 0.7)
    for i, got in enumerate((gx, gy, gg)):
        np.testing.assert_allclose(got, numeric_grad(softmin_table, [x, y, 0.7], i), rtol=1e-6, atol=1e-8)
    src = g.source_for(x, y, 0.7)
    assert "j - 1" in src and "_stack.push" not in src.split("def ")[1].split("# line 26")[0].split(
        "for j in")[1]  # the index arithmetic is recomputed in the adjoint, never saved
    assert "j = _stack.pop()" not in src  # an inner loop's index is never restored
    assert "R[i, j] = " in src  # the table the function built is written in place


def test_max_of_two_numbers_has_no_branch_for_the_one_argument_form():
    def f(a, b):
        m = max(a, b)
        return m * math.exp(a - m)

    g = sg.grad(f, wrt=(0, 1))
    for a, b in ((1.0, 2.0), (2.5, -1.0), (1.5, 1.5)):
        got = g(a, b)
        got = g(a, b)
        if a != b:
            np.testing.assert_allclose(got, [numeric_grad(f, [a, b], i) for i in (0, 1)], rtol=1e-6)
        else:  # a tie: Python's max returns a, so dm/da = 1, dm/db = 0 (as PyTorch's eager max(a, b))
            np.testing.assert_allclose(got, [1.0, 0.0])
    src = g.source_for(1.0, 2.0)
    assert "is None" not in src and "maximum" not in src


def test_math_on_elements_stays_math_and_keeps_the_value():
    x = np.linspace(-1.0, 2.0, 9)
    g = sg.value_and_grad(running_logsumexp)
    for _ in range(2):
        value, grad = g(x)
    assert value == running_logsumexp(x)
    np.testing.assert_allclose(grad, numeric_grad(running_logsumexp, [x], 0), rtol=1e-6)
    src = g.source_for(x)
    assert "np.exp" not in src and "math.exp" in src and "refuse_shared" not in src


def test_maximum_and_minimum_of_numbers_let_nan_win_as_numpy_does():
    from srcgrad.runtime import primitives as P
    for a, b in ((math.nan, 1.0), (1.0, math.nan)):
        assert math.isnan(P.maximum(a, b)) and math.isnan(P.minimum(a, b))
        assert np.isnan(np.maximum(a, b))


def _lse(a, axis=None):
    amax = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - amax), axis=axis, keepdims=True)) + amax
    return np.squeeze(out, axis=axis) if axis is not None else out.item()


def hmm(log_A, alpha0, steps):
    alpha = alpha0
    for _ in range(steps):
        alpha = _lse(alpha[:, None] + log_A, axis=0)
    return -_lse(alpha)


def test_a_helper_called_with_two_signatures_is_specialized_for_each():
    rng = np.random.default_rng(5)
    log_A, alpha0 = rng.normal(size=(4, 4)), rng.normal(size=4)
    g = sg.grad(hmm, wrt=(0, 1))
    for _ in range(2):
        gA, ga = g(log_A, alpha0, 3)
    np.testing.assert_allclose(gA, numeric_grad(hmm, [log_A, alpha0, 3], 0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ga, numeric_grad(hmm, [log_A, alpha0, 3], 1), rtol=1e-6, atol=1e-9)


def student(mu, log_scale, nu, data):
    s = np.exp(log_scale)
    r = (data - mu) / s
    return np.sum(0.5 * (nu + 1) * np.log1p(r * r / nu) + log_scale)


def test_numbers_scale_a_sum_instead_of_every_element():
    data = np.random.default_rng(2).standard_t(4.0, size=50)
    g = sg.grad(student, wrt=(0, 1, 2))
    for _ in range(2):
        got = g(0.3, -0.2, 4.0, data)
    for i in range(3):
        np.testing.assert_allclose(got[i], numeric_grad(student, [0.3, -0.2, 4.0, data], i), rtol=1e-6)
    src = g.source_for(0.3, -0.2, 4.0, data)
    assert "np.sum(br) / -s" in src  # -np.sum(br / s): one pass over br, not three


def test_an_accumulator_that_is_a_zero_d_array_keeps_its_check():
    def f(x, acc):
        for i in range(x.shape[0]):
            acc += x[i] * x[i]
        return acc * 1.0

    x, acc = np.arange(3.0), np.array(0.0)
    g = sg.grad(f)
    for _ in range(2):
        np.testing.assert_allclose(g(x, acc), 2 * x)
    assert acc == 0.0  # the caller's array is never written
    assert "refuse_shared(acc" in g.source_for(x, acc)  # a 0-d array may share memory: still checked


def root_of_sum(x):
    total = 0.0
    for i in range(x.shape[0]):
        total = total + np.sqrt(x[i])
    return total, np.sqrt(np.sum(x))


def root_total(x):
    total = 0.0
    for i in range(x.shape[0]):
        total = total + np.sqrt(x[i])
    return total


def test_numbers_computed_with_math_keep_numpys_types_and_semantics():
    x = np.array([1.0, 4.0, 9.0])
    g = sg.value_and_grad(root_of_sum, has_aux=True)
    for _ in range(2):
        (value, aux), grad = g(x)
    want_value, want_aux = root_of_sum(x)
    assert type(value) is type(want_value) and value == want_value
    assert type(aux) is type(want_aux) and aux == want_aux
    np.testing.assert_allclose(grad, 0.5 / np.sqrt(x))
    h = sg.value_and_grad(root_total)
    for _ in range(2):
        value, grad = h(x)
    assert type(value) is np.float64 and value == root_total(x)
    assert "math.sqrt" in h.source_for(x)
    # where math raises (a negative element), the call runs again as NumPy computes: nan, and warnings
    y = np.array([1.0, -4.0, 9.0])
    with pytest.warns(RuntimeWarning):
        value, grad = h(y)
    assert np.isnan(value) and np.isnan(grad[1]) and grad[0] == 0.5


def _squash(z):
    return 1 / (1 + np.exp(-z))


def gated(W, xs):
    h = np.zeros(W.shape[1])
    for t in range(xs.shape[0]):
        h = _squash(np.dot(W, h) + xs[t])  # h's rank comes from a helper's facts
    return np.sum(h)


def test_a_rank_dispatching_call_is_resolved_through_a_helpers_facts():
    rng = np.random.default_rng(9)
    W, xs = rng.normal(size=(4, 4)) / 2, rng.normal(size=(5, 4))
    g = sg.grad(gated)
    for _ in range(2):
        got = g(W, xs)
    np.testing.assert_allclose(got, numeric_grad(gated, [W, xs], 0), rtol=1e-6, atol=1e-9)
    src = g.source_for(W, xs)
    assert "W @ h" in src and "dot_" not in src


def repeats_what_it_returns(x, y):
    x += y * 0.86
    y *= x + x
    return x + x  # the same number as `x + x` above: the name returned is never renamed away


def test_a_repeated_number_that_is_returned_keeps_its_name():
    g = sg.grad(repeats_what_it_returns, wrt=(0, 1))
    for _ in range(2):
        assert g(-0.5, 0.25) == (2.0, 2.0 * 0.86)


def predator_prey(a, b):
    prey, pred, t = 10.0, 5.0, 0.0
    while t < 2.0:
        dprey = a * prey - b * prey * pred
        dpred = 0.1 * prey * pred - 0.4 * pred
        mprey = prey + 0.0025 * dprey
        prey = prey + 0.005 * (a * mprey - b * mprey * pred)
        pred = pred + 0.005 * dpred
        t += 0.005
    return (prey - 8.0) ** 2 + pred


def test_where_a_loop_saves_anyway_its_numbers_ride_in_that_push():
    # the recompute policy's prices: one push per iteration costs about eight operations, each value
    # more in it a fraction of one; prey and pred are saved every iteration, so the products are too
    g = sg.grad(predator_prey, wrt=(0, 1))
    for _ in range(2):
        got = g(1.1, 0.4)
    np.testing.assert_allclose(got, [numeric_grad(predator_prey, [1.1, 0.4], i) for i in (0, 1)], rtol=1e-6)
    src = g.source_for(1.1, 0.4)
    adjoint = "\n".join(ln for ln in src.split("for _ in range(_n1):")[1].splitlines()
                        if not ln.strip().startswith("#"))
    assert "b * prey" not in adjoint and " dprey =" not in adjoint  # popped, not computed again
    assert src.count("_stack.push(") == 1 and src.count("_stack.pop()") == 1  # one push per iteration


def sine_weighted(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + np.sin(x[i]) * x[i]
    return s


def test_where_recomputing_leaves_nothing_to_save_a_loop_recomputes():
    x = np.linspace(-2.0, 2.0, 7)
    g = sg.grad(sine_weighted)
    for _ in range(2):
        got = g(x)
    np.testing.assert_allclose(got, np.sin(x) + x * np.cos(x), rtol=1e-12)
    src = g.source_for(x)
    assert "_stack" not in src  # x[i] and sin(x[i]) are computed again from the index: no push at all
    adjoint = "\n".join(ln for ln in src.split("for i in reversed(")[1].splitlines()
                        if not ln.strip().startswith("#"))
    assert "math.sin(_t2)" in adjoint and "x[i]" in adjoint


def rebinds_a_parameter_to_a_repeated_number(x, y):
    v2 = x * 0.7 + x * 0.2
    x -= np.sin(y)
    v2 *= y + y
    y = y + y  # the number `y + y` above, but y is read before, as the parameter
    return v2 + y + y + x


def test_a_repeated_number_bound_to_a_parameter_is_not_shared():
    g = sg.grad(rebinds_a_parameter_to_a_repeated_number, wrt=(0, 1))
    for _ in range(2):
        got = g(-0.5, 0.3)
    want = [numeric_grad(rebinds_a_parameter_to_a_repeated_number, [-0.5, 0.3], i) for i in (0, 1)]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def running_minimum(x):
    best = math.inf
    for i in range(x.shape[0]):
        best = min(best, x[i] ** 2)
    return best + min(x[0], np.inf)


def test_a_minimum_started_at_infinity_has_a_finite_gradient():
    """sign(inf) is 1, as NumPy's: the adjoint of min against an infinite operand is not nan (found by
    a helper writing its own programs)."""
    x = np.array([0.5, -1.0, 2.0])
    g = sg.grad(running_minimum)
    for _ in range(2):
        np.testing.assert_array_equal(g(x), [2.0, 0.0, 0.0])
    assert sg.grad(lambda v: min(v, np.inf))(1.0) == 1.0


def _pairwise_energy(x):
    d = x[:, None, :] - x[None, :, :]
    r2 = np.sum(d ** 2, axis=-1) + 0.1
    return np.sum(1.0 / r2) + np.sum(np.log(r2)[:, :, None] * x[None, :, :])


def test_the_adjoint_of_a_reshaping_index_is_a_reshape():
    """Reading `x[:, None, :]` selects every element in order: in a variant that knows the shapes, its
    adjoint is `np.reshape(g, x.shape)`, not a scatter into new zeros; values as by differences."""
    x = np.random.default_rng(4).normal(size=(5, 3))
    g = sg.grad(_pairwise_energy)
    gx = g(x)
    assert "np.reshape(" in g.source and "index_add(np.zeros" not in g.source
    np.testing.assert_allclose(gx, numeric_grad(_pairwise_energy, [x], 0), rtol=1e-5, atol=1e-7)
    t = np.random.default_rng(5).normal(size=x.shape)
    assert sg.jvp(_pairwise_energy)(x, t)[1] == pytest.approx(np.sum(gx * t), rel=1e-10)


def _times_own_part(x):
    y = x * 1.0
    y[1:] *= x[:2]
    return np.sum(y ** 2)


def _column_times_element(x):
    y = np.zeros((3, 2)) + x
    y[:, 0] *= np.sin(x[1])
    return np.sum(y ** 2)


def _column_times_vector(x):
    y = np.zeros((2, 2)) + x
    y[:, 1] *= 2.0 * x
    return np.sum(y ** 3)


@pytest.mark.parametrize("fn", [_times_own_part, _column_times_element, _column_times_vector])
def test_an_array_a_saved_view_shares_is_not_written_in_place(fn):
    # `y[1:] *= v` saves the view `y[1:]` for its adjoint: writing the product into y's own memory would
    # change that saved value under it (the gradient then multiplied by the new values). The write is
    # left to the run-time check, which sees the view and makes a new array.
    x = np.array([0.5, -1.5, 0.8]) if fn is _times_own_part else np.array([0.5, -1.5])
    x0 = x.copy()
    g = sg.grad(fn)
    for _ in range(2):
        got = g(x)
        np.testing.assert_allclose(got, numeric_grad(fn, [x], 0), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(x, x0)
    _, tangent = sg.jvp(fn)(x, np.ones_like(x))
    np.testing.assert_allclose(tangent, np.sum(got), rtol=1e-9)
