"""The public transforms: signatures, wrt, types in/out, caching, inspectability, errors."""

import inspect
import math
import time

import numpy as np
import pytest

import srcgrad as sg
from srcgrad import TransformError
from tests.srcgrad import corpus as C


def poly(x, y, k=2.0):
    return x * y + k * x**3


def vector_out(a):
    return np.sin(a) * 2.0


def pair_out(x, y):
    return x * y, x + y


def test_grad_wrt_int_and_tuple():
    x, y = 1.5, 0.5
    assert sg.grad(poly)(x, y) == pytest.approx(y + 6.0 * x * x)
    assert sg.grad(poly, wrt=1)(x, y) == pytest.approx(x)
    gx, gy = sg.grad(poly, wrt=(0, 1))(x, y)
    assert (gx, gy) == (pytest.approx(y + 6.0 * x * x), pytest.approx(x))


def test_kwargs_and_defaults_pass_through():
    assert sg.grad(poly)(1.0, 2.0, k=5.0) == pytest.approx(2.0 + 15.0)
    assert sg.grad(poly)(1.0, 2.0, 5.0) == pytest.approx(2.0 + 15.0)


def test_value_and_grad():
    v, g = sg.value_and_grad(poly)(1.5, 0.5)
    assert v == pytest.approx(poly(1.5, 0.5))
    assert g == pytest.approx(0.5 + 6.0 * 1.5**2)


def test_types_in_types_out():
    g = sg.grad(C.s_chain)(0.3)
    assert type(g) is float
    a = np.linspace(0.1, 1.0, 4)
    ga = sg.grad(C.a_sum)(a)
    assert isinstance(ga, np.ndarray) and ga.shape == a.shape
    g64 = sg.grad(C.s_chain)(np.float64(0.3))  # NumPy scalar: generic code path
    assert float(g64) == pytest.approx(g)
    g32 = sg.grad(C.a_sum)(a.astype(np.float32))
    assert g32.dtype == np.float32


def test_vjp_array_output():
    a = np.array([0.1, 0.2, 0.3])
    v = np.array([1.0, -2.0, 0.5])
    value, ct = sg.vjp(vector_out)(a, v)
    np.testing.assert_allclose(value, vector_out(a))
    np.testing.assert_allclose(ct, 2.0 * np.cos(a) * v)


def test_vjp_tuple_output():
    value, (gx, gy) = sg.vjp(pair_out, wrt=(0, 1))(2.0, 3.0, (1.0, 10.0))
    assert value == (6.0, 5.0)
    assert gx == pytest.approx(3.0 + 10.0) and gy == pytest.approx(2.0 + 10.0)


def test_grad_of_non_scalar_points_to_vjp():
    with pytest.raises(TransformError) as err:
        sg.grad(vector_out)(np.ones(3))
    msg = str(err.value)
    assert "scalar" in msg and "vjp" in msg and "return np.sin(a) * 2.0" in msg


def test_static_int_argument_cannot_be_differentiated():
    with pytest.raises(TransformError, match="static"):
        sg.grad(C.s_static_int, wrt=1)(1.0, 3)
    assert sg.grad(C.s_static_int)(1.5, 3) == pytest.approx(3 + 3 * 1.5**2)


def test_decorator_forms():
    @sg.grad
    def f(x):
        return x * x

    @sg.grad(wrt=1)
    def h(x, y):
        return x * y * y

    assert f(3.0) == pytest.approx(6.0)
    assert h(2.0, 3.0) == pytest.approx(12.0)


def test_getsource_and_source_attribute():
    g = sg.grad(C.c_while)
    src = inspect.getsource(g)
    assert src == g.source
    assert "def grad_c_while(x):" in src
    assert "by = " in src and "# line" in src


def test_traceback_shows_generated_line():
    def bad(x):
        return np.log(x) * 2.0

    g = sg.grad(bad)
    with pytest.raises(Exception) as err:
        g("not a number")
    tb = err.traceback
    assert any("srcgrad" in str(entry.path) for entry in tb)


def test_cached_per_function_transform_wrt():
    assert sg.grad(C.s_mul) is sg.grad(C.s_mul)
    assert sg.grad(C.s_mul) is not sg.grad(C.s_mul, wrt=1)
    assert sg.grad(C.s_mul) is not sg.value_and_grad(C.s_mul)


def test_redefinition_retransforms():
    def f(x):
        return x * 2.0

    g1 = sg.grad(f)

    def f(x):  # noqa: F811
        return x * 3.0

    g2 = sg.grad(f)
    assert g1(1.0) == 2.0 and g2(1.0) == 3.0


def test_module_global_is_read_at_call_time():
    old = C.SCALE
    try:
        g = sg.grad(C.s_global)
        assert g(1.0) == pytest.approx(2 * old)
        C.SCALE = 3.0
        assert g(1.0) == pytest.approx(6.0)
    finally:
        C.SCALE = old


def test_item_passes_the_derivative_on():
    # scale = np.sum(a).item() is the value of sum(a), derivative included: f = sum(a)**2
    a = np.array([1.0, 2.0, 3.0])
    g = sg.grad(C.nd_detach)(a)
    np.testing.assert_allclose(g, np.full(3, 2 * a.sum()))


def test_user_arrays_never_modified():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    keep = a.copy()
    sg.grad(C.a_no_mutation)(a)
    np.testing.assert_array_equal(a, keep)


def test_zero_gradient_for_unused_input():
    gx, gy = sg.grad(C.s_unused_input, wrt=(0, 1))(2.0, 3.0)
    assert gx == 4.0 and gy == 0.0 and type(gy) is float
    assert sg.grad(C.s_const_output)(1.0) == 0.0


def test_transform_is_fast():
    """A 50-line function with loops, branches, break/continue and two returns: < 100 ms on an idle
    machine (the bound here is loose because tests share the machine)."""
    sg.grad(C.s_mul)  # rule table parsed, modules imported
    t0 = time.perf_counter()
    sg.value_and_grad(C.c_fifty_lines, wrt=(0, 1))
    assert time.perf_counter() - t0 < 2.0   # ~0.09 s measured alone


def test_cached_call_overhead():
    def trivial(x):
        return x * 2.0

    g = sg.grad(trivial)
    g(1.0)
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        g(1.0)
    per_call = (time.perf_counter() - t0) / n
    assert per_call < 20e-6  # the benchmark measures < 5 µs on an idle machine


def test_debug_prints_stages(capsys, monkeypatch):
    monkeypatch.setenv("SRCGRAD_DEBUG", "1")

    def f(x):
        y = np.sin(x) * x
        while y < 3.0:
            y = y * 1.5
        return y

    sg.grad(f)
    err = capsys.readouterr().err
    for stage in ("parse", "normalize", "analysis", "reverse", "codegen"):
        assert f"srcgrad: {stage}" in err
    # the optimize stage prints each pass that changed the code, by name, in both modes
    assert "srcgrad: optimize: dead code" in err or "srcgrad: optimize: propagate adjoints" in err
    sg.jvp(f)(1.0, 1.0)
    err = capsys.readouterr().err
    assert "srcgrad: optimize: " in err and "srcgrad: codegen: jvp_f" in err


def test_grad_of_grad_straight_line():
    def f(x):
        return np.sin(x) * x

    x = 0.7
    assert sg.grad(sg.grad(f))(x) == pytest.approx(2 * math.cos(x) - x * math.sin(x))


def test_grad_of_grad_through_loops_and_stack():
    def h(x):
        y = x
        for i in range(3):  # noqa: B007
            y = y * x
        return y

    assert sg.grad(sg.grad(h))(1.5) == pytest.approx(12 * 1.5**2)


def test_grad_of_grad_with_generated_callees_goes_through_forward_mode():
    # f(x) = sin(x)^2 + x: f'' = 2 cos(2x)
    x = 0.4
    assert sg.grad(sg.grad(C.f_call_helper))(x) == pytest.approx(2 * math.cos(2 * x), rel=1e-12)


class Model:
    def __init__(self) -> None:
        self.w = np.array([0.5, -1.0, 2.0])

    def loss(self, x, scale=1.0):
        return np.sum(np.tanh(self.w * x)) * scale


def test_bound_method_and_keywords():
    m = Model()
    x = np.array([0.1, 0.2, 0.3])
    g = sg.grad(m.loss)(x, scale=2.0)
    np.testing.assert_allclose(g, 2.0 * m.w * (1 - np.tanh(m.w * x) ** 2))


def test_wrt_argument_passed_by_keyword_and_negative_wrt():
    assert sg.grad(poly)(x=1.0, y=2.0) == pytest.approx(2.0 + 6.0)
    assert sg.grad(poly, wrt=-1)(1.0, 2.0) == pytest.approx(1.0)


def test_variants_follow_array_shapes():
    def f(a, b):
        return np.sum(np.tanh(a + b) * a)

    g = sg.grad(f, wrt=(0, 1))
    for shape_a, shape_b in (((3,), (3,)), ((2, 3), (3,)), ((2, 3), (2, 1)), ((4,), ())):
        a = np.linspace(-1, 1, int(np.prod(shape_a))).reshape(shape_a)
        b = np.full(shape_b, 0.3) if shape_b else 0.3
        ga, gb = g(a, b)
        t = np.tanh(a + b)
        np.testing.assert_allclose(ga, t + a * (1 - t * t))
        want_b = a * (1 - t * t)
        lead = want_b.ndim - len(shape_b)
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape_b) if n == 1)
        want_b = want_b.sum(axis=axes, keepdims=True).reshape(shape_b)
        np.testing.assert_allclose(gb, want_b)
        assert np.shape(gb) == np.shape(b)


@pytest.mark.parametrize("name", ["m_concatenate", "m_einsum"])
def test_variadic_numpy_calls(name):
    from tests.srcgrad.util import assert_close, make_args, numeric_grad

    fn = getattr(C, name)
    args = make_args(fn)
    for i, g in enumerate(sg.grad(fn, wrt=(0, 1))(*args)):
        assert_close(g, numeric_grad(fn, args, i), rtol=1e-5, atol=1e-7)


def test_builtin_max_min_and_math_module():
    """max/min of two numbers and math.* go through the mapping (not in the corpus: the tape cannot run
    math.* on Tensors)."""
    from tests.srcgrad.util import numeric_grad

    args = [1.2, 0.7]
    g = sg.grad(C.m_builtins_math, wrt=(0, 1))(*args)
    for i in (0, 1):
        assert g[i] == pytest.approx(numeric_grad(C.m_builtins_math, args, i), rel=1e-5)


def test_vjp_cotangent_must_have_the_output_shape():
    with pytest.raises(ValueError, match="shape"):
        sg.vjp(vector_out)(np.ones(3), 1.0)


def constant_vector(x):
    return np.ones(3) * 2.0


def constant_number(x):
    return 2.0


def test_grad_of_an_output_no_input_reaches_still_needs_a_scalar():
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(sg.TransformError, match="needs a scalar output"):
        sg.grad(constant_vector)(x)
    np.testing.assert_array_equal(sg.grad(constant_number)(x), np.zeros(3))


def sqrt_and_log(a, b):
    return np.sqrt(a - 1.0) + np.log(b)


def root(x):
    return np.sqrt(x)


def x_log_x(x):
    return np.log(x) * x


def reciprocal(x):
    return 1.0 / x + np.exp(x * 1000.0)


def test_python_floats_follow_numpy_where_math_would_raise():
    with np.errstate(all="ignore"):
        v, (ga, gb) = sg.value_and_grad(sqrt_and_log, wrt=(0, 1))(0.5, 0.3)
        assert type(v) is float and np.isnan(v) and np.isnan(ga)
        assert type(gb) is float and gb == pytest.approx(1 / 0.3)
        # Python's own `/` of its floats raises, as the plain function does (jvp the same)
        with pytest.raises(ZeroDivisionError):
            sg.grad(reciprocal)(0.0)
        assert np.isinf(sg.grad(reciprocal)(np.float64(0.0)))  # a NumPy scalar divides as NumPy does
        # np.sqrt / np.log of a Python float follow NumPy in jvp too (nan, as in grad)
        v, d = sg.jvp(sqrt_and_log, wrt=(0, 1))(0.5, 0.3, (1.0, 1.0))
        assert type(v) is float and np.isnan(v) and type(d) is float and np.isnan(d)
        # a division by zero in the derivative only (np.sqrt at 0, whose plain call gives 0.0): inf
        assert sg.grad(root)(0.0) == math.inf and sg.jvp(root)(0.0, 1.0) == (0.0, math.inf)
        # hvp (forward over reverse) reruns the same way, its answer whole (was an internal TypeError)
        with pytest.warns(RuntimeWarning, match="invalid value"):  # NumPy's warning, as np.log(-1.0) gives
            v, hv = sg.hvp(x_log_x)(-1.0, 1.0)
        assert np.isnan(v) and hv == pytest.approx(-1.0) and type(hv) is float
        # the same numbers as np.float64 arguments give
        assert np.isnan(sg.grad(sqrt_and_log)(np.float64(0.5), np.float64(0.3)))
    # where math does not raise, the float variant answers as before
    assert sg.grad(sqrt_and_log)(2.0, 0.3) == pytest.approx(0.5)


def conv_into_float64_buffer(img, k):
    out = np.zeros((2, 3))  # float64, as users often write
    for i in range(2):
        for j in range(3):
            out[i, j] = np.sum(img[i:i + 2, j:j + 2] * k)
    return np.sum(np.tanh(out))


def sine_of_zero_d(x):
    return np.sin(x) * 2.0


def test_gradients_have_their_arguments_dtype_and_rank():
    rng = np.random.default_rng(0)
    img, k = rng.normal(size=(3, 4)), rng.normal(size=(2, 2)) * 0.3
    g64 = sg.grad(conv_into_float64_buffer, wrt=(0, 1))(img, k)
    g32 = sg.grad(conv_into_float64_buffer, wrt=(0, 1))(img.astype(np.float32), k.astype(np.float32))
    for a, b in zip(g32, g64, strict=True):
        assert a.dtype == np.float32 and b.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    g0 = sg.grad(sine_of_zero_d)(np.array(0.5))
    assert type(g0) is np.ndarray and g0.shape == () and g0 == pytest.approx(2 * np.cos(0.5))


def gaussian_log_likelihood(L, x):
    S = L @ L.T + np.eye(3)
    sign, logdet = np.linalg.slogdet(S)
    return -0.5 * (logdet + x @ np.linalg.solve(S, x)) + 0.0 * sign


def eigen_top(A):
    w, V = np.linalg.eigh(A + A.T)
    return w[-1]


def test_slogdet_unpacked_into_sign_and_logdet():
    from tests.srcgrad.util import numeric_grad

    rng = np.random.default_rng(3)
    L, x = rng.normal(size=(3, 3)), rng.normal(size=3)
    g = sg.grad(gaussian_log_likelihood, wrt=(0, 1))(L, x)
    for i in (0, 1):
        np.testing.assert_allclose(g[i], numeric_grad(gaussian_log_likelihood, [L, x], i), rtol=1e-6,
                                   atol=1e-8)


def test_a_decomposition_unpacked_into_several_names_has_its_derivative():
    A = np.array([[2.0, 0.3, 0.1], [0.0, 1.0, 0.2], [0.4, 0.0, -1.0]])
    w, V = np.linalg.eigh(A + A.T)
    # d(top eigenvalue)/dA of A + A.T: 2 v v^T (symmetrised by the + A.T)
    np.testing.assert_allclose(sg.grad(eigen_top)(A), 2 * np.outer(V[:, -1], V[:, -1]), atol=1e-10)


class TinyModel:
    def __init__(self, W):
        self.W = W

    def forward(self, x):
        return np.tanh(self.W @ x)

    def loss(self, x):
        return np.sum(self.forward(x) ** 2)


TINY = TinyModel(np.eye(2) * 0.5)


def calls_a_module_level_objects_method(x):
    return np.sum(TINY.forward(x))


def test_a_method_of_a_module_level_object_is_transformed_like_a_function():
    x = np.array([0.3, 0.4])
    np.testing.assert_allclose(sg.grad(calls_a_module_level_objects_method)(x),
                               0.5 * (1 - np.tanh(0.5 * x) ** 2), rtol=1e-13)
    # the bound method calls self.forward: self is flattened, its W read as a leaf, forward followed
    t = np.tanh(0.5 * x)
    np.testing.assert_allclose(sg.grad(TINY.loss)(x), 2 * t * (1 - t ** 2) * 0.5, rtol=1e-13)


def reads_a_dict(params, x):
    return np.sum(params["w"] * x)


def test_a_dict_argument_gets_a_dict_gradient():
    g = sg.grad(reads_a_dict)({"w": np.ones(2)}, np.array([2.0, 3.0]))
    assert isinstance(g, dict) and set(g) == {"w"}
    np.testing.assert_allclose(g["w"], [2.0, 3.0])
    # read as data (not differentiated), it works
    np.testing.assert_allclose(sg.grad(reads_a_dict, wrt=1)({"w": np.full(2, 3.0)}, np.ones(2)), [3.0, 3.0])


W_DEFAULT = np.array([1.0, 2.0, 3.0])


def global_defaults(x, y=np.array([1.0, 1.0, 1.0]), *, scale=2.0, w=W_DEFAULT):  # noqa: B008 (on purpose)
    return np.sum(np.sin(x) * w * y) * scale


def two_outputs(x):
    return np.sin(x), x * x


def vector_valued(x):
    return np.sin(x) * x


def test_defaults_that_name_globals_or_build_arrays():
    x = np.array([0.3, -0.5, 0.7])
    want = 2.0 * np.cos(x) * W_DEFAULT
    np.testing.assert_allclose(sg.grad(global_defaults)(x), want, rtol=1e-13)
    np.testing.assert_allclose(sg.jvp(global_defaults)(x, np.ones(3))[1], want.sum(), rtol=1e-13)
    np.testing.assert_allclose(np.diag(sg.hessian(global_defaults)(x)), -2.0 * np.sin(x) * W_DEFAULT,
                               rtol=1e-13)
    np.testing.assert_allclose(sg.grad(global_defaults)(x, w=np.ones(3)), 2.0 * np.cos(x), rtol=1e-13)


def test_argument_kinds_and_result_types():
    with pytest.raises(sg.TransformError, match="array of int64"):
        sg.grad(vector_valued)(np.arange(3))
    x = sg.tensor([0.1, 0.2, 0.3], dtype=sg.float64)
    y = np.array([1.0, 2.0, 3.0])
    gx, gy = sg.grad(global_defaults, wrt=(0, 1))(x, y)
    assert isinstance(gx, sg.Tensor) and type(gy) is np.ndarray
    assert type(sg.grad(global_defaults, wrt=1)(x, y)) is np.ndarray
    np.testing.assert_allclose(gy, 2.0 * np.sin([0.1, 0.2, 0.3]) * W_DEFAULT, rtol=1e-13)


def test_clear_errors_for_vector_outputs_and_cotangent_tuples():
    x = np.array([0.3, -0.5, 0.7])
    with pytest.raises(ValueError, match="needs a scalar output"):
        sg.hessian(vector_valued)(x)
    with pytest.raises(ValueError, match="needs a scalar output"):
        sg.hvp(vector_valued)(x, np.ones(3))
    with pytest.raises(ValueError, match="tuple of 2"):
        sg.vjp(two_outputs)(x, (np.ones(3),))
    value, g = sg.vjp(two_outputs)(x, (np.ones(3), np.ones(3)))
    np.testing.assert_allclose(g, np.cos(x) + 2 * x, rtol=1e-13)


def test_jacobian_keeps_float32_after_float64_calls():
    x = np.array([0.1, 0.2, 0.3])
    sg.jacobian(vector_valued)(x)
    assert sg.jacobian(vector_valued)(x.astype(np.float32)).dtype == np.float32


def test_complex_arguments_to_differentiate_are_refused():
    with pytest.raises(sg.TransformError, match="argument 0 is complex"):
        sg.grad(constant_number)(np.array([1.0 + 2.0j]))


def test_reassigned_defaults_are_read_at_the_call():
    """`f.__defaults__ = (5.0,)` after a transform was built: the omitted argument is the new default
    (grad, value_and_grad, jvp, hessian; keyword-only defaults too), as the plain function sees it."""
    x = np.array([1.0, 2.0, 3.0, 4.0])

    def f(x, c=1.0):
        return c * np.sum(x ** 2)

    g, vg, j, h = sg.grad(f), sg.value_and_grad(f), sg.jvp(f), sg.hessian(f)
    np.testing.assert_allclose(g(x), 2 * x)
    f.__defaults__ = (5.0,)
    np.testing.assert_allclose(g(x), 10 * x)
    v, gv = vg(x)
    assert v == pytest.approx(5 * np.sum(x ** 2)) and np.allclose(gv, 10 * x)
    assert j(x, np.ones(4))[1] == pytest.approx(10 * np.sum(x))
    np.testing.assert_allclose(h(x), 10 * np.eye(4))

    def k(x, *, c=1.0):
        return c * np.sum(x ** 2)

    gk = sg.grad(k)
    np.testing.assert_allclose(gk(x), 2 * x)
    k.__kwdefaults__ = {"c": 3.0}
    np.testing.assert_allclose(gk(x), 6 * x)
    np.testing.assert_allclose(sg.grad(k)(x), 6 * x)
