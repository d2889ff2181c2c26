"""jacobian and hessian: shapes out.shape + in.shape, values against closed forms and finite differences,
and the batched engine (one call of generated code for all basis vectors)."""

import numpy as np
import pytest

import srcgrad as sg
from srcgrad import batching
from tests.srcgrad.corpus import CORPUS
from tests.srcgrad.util import assert_close, diff_positions, make_args


def cube_chain(x):
    return np.sum(x ** 3) + np.sum(x[:-1] * x[slice(1, None)])


def test_hessian_closed_form():
    x = np.random.default_rng(0).normal(size=7)
    n = x.shape[0]
    want = np.diag(6 * x) + np.eye(n, k=1) + np.eye(n, k=-1)
    assert_close(sg.hessian(cube_chain)(x), want, rtol=1e-12, atol=1e-12)


def mixed(x, M):
    return np.tanh(M @ x) * x[0]


def _numeric_jacobian(f, args, i, eps=1e-6):
    x = args[i]
    cols = []
    for e in np.eye(x.size):
        up, dn = list(args), list(args)
        up[i], dn[i] = x + eps * e.reshape(x.shape), x - eps * e.reshape(x.shape)
        cols.append(np.ravel((f(*up) - f(*dn)) / (2 * eps)))
    out = np.shape(f(*args))
    return np.array(cols).T.reshape(out + x.shape)


def test_jacobian_forward_columns_and_reverse_rows():
    rng = np.random.default_rng(1)
    x = rng.normal(size=3)
    M = rng.normal(size=(5, 3))
    J = sg.jacobian(mixed)(x, M)                      # 3 inputs < 5 outputs: forward columns
    assert J.shape == (5, 3)
    assert_close(J, _numeric_jacobian(mixed, (x, M), 0), rtol=1e-6, atol=1e-8)
    x6 = rng.normal(size=6)
    M2 = rng.normal(size=(2, 6))
    J2 = sg.jacobian(mixed)(x6, M2)                   # 6 inputs > 2 outputs: reverse rows
    assert J2.shape == (2, 6)
    assert_close(J2, _numeric_jacobian(mixed, (x6, M2), 0), rtol=1e-6, atol=1e-8)


def matrix_fn(A):
    return np.sum(A * A, axis=1) + A[:, 0] * A[:, 1]


def test_jacobian_of_a_matrix_input():
    A = np.random.default_rng(2).normal(size=(4, 2))
    J = sg.jacobian(matrix_fn)(A)
    assert J.shape == (4, 4, 2)
    assert_close(J, _numeric_jacobian(matrix_fn, (A,), 0), rtol=1e-6, atol=1e-8)


def test_batched_jacobian_runs_the_generated_code_once(monkeypatch):
    """The basis travels as one leading axis: ONE call of the batched forward function."""
    calls = []
    real = batching.batch_size

    def counting(t):
        calls.append(1)
        return real(t)

    monkeypatch.setattr(batching, "batch_size", counting)
    x = np.random.default_rng(3).normal(size=4)
    jac = sg.jacobian(elementwise)                   # built after the patch: binds `counting`
    jac(x)                                           # first call: also learns the output's shape
    calls.clear()
    J = jac(x)
    assert_close(J, np.diag(np.cos(x) * 2.0 + 1.0), rtol=1e-12)
    assert len(calls) == 1   # the generated function ran once, for all 4 basis vectors


def elementwise(x):
    return np.sin(x) * 2.0 + x


def test_batched_hessian_is_one_call_with_a_basis_axis():
    x = np.random.default_rng(4).normal(size=5)
    H = sg.hessian(cube_chain)
    src = H.source
    assert "_nb = batch_size(dx)" in src            # the batch of basis vectors enters once
    assert "for " not in src                         # no loop over basis vectors: one vectorized call
    assert H(x).shape == (5, 5)


def hess_corpus_ids(fn):
    return fn.__name__


HESS_REFUSED: set[str] = set()


@pytest.mark.parametrize("fn", [f for f in CORPUS if f.__name__ not in HESS_REFUSED], ids=hess_corpus_ids)
def test_hessian_matches_differences_of_the_gradient_on_the_corpus(fn):
    args = make_args(fn, seed=6)
    for i in diff_positions(args):
        H = np.asarray(sg.hessian(fn, wrt=i)(*args))
        g = sg.grad(fn, wrt=i)
        x, eps = args[i], 1e-5
        cols = []
        for e in np.eye(np.size(x)):
            e = e.reshape(np.shape(x)) if isinstance(x, np.ndarray) else float(e[0])
            up, dn = list(args), list(args)
            up[i], dn[i] = x + eps * e, x - eps * e
            cols.append(np.ravel((np.asarray(g(*up)) - np.asarray(g(*dn))) / (2 * eps)))
        want = np.array(cols).T.reshape(np.shape(x) + np.shape(x))
        assert_close(H, want, rtol=1e-4, atol=1e-4, what=f"hessian wrt {i}")


def two_args(x, y):
    return np.sum(x * x * y) + np.sum(np.sin(y))


def test_hessian_blocks_for_a_tuple_wrt():
    x = np.array([0.3, -0.4])
    y = np.array([1.2, 0.7])
    (hxx, hxy), (hyx, hyy) = sg.hessian(two_args, wrt=(0, 1))(x, y)
    assert_close(hxx, np.diag(2 * y))
    assert_close(hxy, np.diag(2 * x))
    assert_close(hyx, np.diag(2 * x))
    assert_close(hyy, np.diag(-np.sin(y)))


def rowwise(X):
    return np.sum(np.sum(X ** 2, axis=1) * np.arange(1.0, 4.0)) + np.sum(X.T @ X)


def test_batched_rules_for_reductions_transposes_and_matmul():
    X = np.random.default_rng(5).normal(size=(3, 2))
    H = sg.hessian(rowwise)(X)
    assert H.shape == (3, 2, 3, 2)
    g = sg.grad(rowwise)
    want = np.zeros((3, 2, 3, 2))
    for a in range(3):
        for b in range(2):
            e = np.zeros((3, 2))
            e[a, b] = 1e-5
            want[a, b] = (g(X + e) - g(X - e)) / 2e-5
    assert_close(H, want, rtol=1e-5, atol=1e-6)


def test_shift_axis_and_lift():
    assert batching.shift_axis(0) == 1 and batching.shift_axis(-1) == -1
    assert batching.shift_axis((0, 2)) == (1, 3)
    t = np.ones((4, 3))
    assert batching.lift(t, np.ones((2, 3))).shape == (4, 1, 3)
    assert batching.bsum(np.ones((4, 2, 3)), axis=0).shape == (4, 3)
    assert batching.bsum_to(np.ones((4, 5, 2, 3)), shape=(1, 3)).shape == (4, 1, 3)


def tiled(x):
    return np.tile(x, 2) * np.roll(np.tile(x, 2), 1)


def test_rules_without_a_leading_axis_form_loop_and_say_so():
    x = np.array([0.5, -1.2, 0.8])
    J = sg.jacobian(tiled)(x)
    assert_close(J, _numeric_jacobian(tiled, (x,), 0), rtol=1e-6, atol=1e-8)
    from srcgrad.forward import ForwardBuilder
    gen = ForwardBuilder(batched=True).top(tiled, (0,))
    # np.tile's adapter is a callee: its generated function is bound in the top-level code's namespace
    sources = [getattr(v, "source", "") for v in gen.fn.__globals__.values() if callable(v)]
    assert any("# batched: the jvp rule of tile has no leading-axis form; it loops over the basis" in src
               for src in sources)


def mats(x, A, B, w):
    return A @ x + (x @ B) * w + (A.T @ (A @ x)) * (w @ x)


def test_batched_matmul_with_vectors_and_matrices_on_either_side():
    rng = np.random.default_rng(8)
    x, w = rng.normal(size=3), rng.normal(size=3)
    A, B = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    for i in (0, 3):
        J = sg.jacobian(mats, wrt=i)(x, A, B, w)
        assert_close(J, _numeric_jacobian(mats, (x, A, B, w), i), rtol=1e-6, atol=1e-8)


def batch_mm(X, W):
    return np.sum(np.tanh(X @ W) ** 2) + np.sum(W.T @ W)


def test_hessian_of_a_matmul_network_in_both_arguments():
    rng = np.random.default_rng(9)
    X, W = rng.normal(size=(4, 3)), rng.normal(size=(3, 2))
    H = sg.hessian(batch_mm, wrt=1)(X, W)
    g = sg.grad(batch_mm, wrt=1)
    want = np.zeros((3, 2, 3, 2))
    for a in range(3):
        for b in range(2):
            e = np.zeros((3, 2))
            e[a, b] = 1e-5
            want[a, b] = (g(X, W + e) - g(X, W - e)) / 2e-5
    assert_close(H, want, rtol=1e-5, atol=1e-6)


def scalar_out(x, M):
    return np.sum(np.sin(M @ x) * x[0])


def test_reverse_rows_are_batched_too():
    """More inputs than outputs: the vjp's forward transform along its seed, the output's basis as the
    batched tangent, gives all rows from one call (a scalar output: the gradient)."""
    rng = np.random.default_rng(10)
    x, M = rng.normal(size=5), rng.normal(size=(3, 5))
    J = sg.jacobian(scalar_out)(x, M)
    assert J.shape == (5,)
    assert_close(J, sg.grad(scalar_out)(x, M), rtol=1e-12, atol=1e-12)
    M2 = rng.normal(size=(2, 5))
    J2 = sg.jacobian(mixed)(x, M2)                         # 2 outputs < 5 inputs
    assert_close(J2, _numeric_jacobian(mixed, (x, M2), 0), rtol=1e-6, atol=1e-8)


def test_python_floats_in_give_python_floats_out():
    """Types in, types out, as `grad` does: a Jacobian or Hessian block over Python floats is a float,
    with the closed form's value."""
    import math

    def f(x):
        return math.sin(x) * x ** 3

    x = 0.7
    d1 = math.cos(x) * x ** 3 + 3 * x ** 2 * math.sin(x)
    d2 = -math.sin(x) * x ** 3 + 6 * x ** 2 * math.cos(x) + 6 * x * math.sin(x)
    jac, hess = sg.jacobian(f)(x), sg.hessian(f)(x)
    assert type(jac) is float and type(hess) is float
    assert jac == pytest.approx(d1, rel=1e-12) and hess == pytest.approx(d2, rel=1e-12)

    def g(x, y):
        return x * y ** 2

    h = sg.hessian(g, wrt=(0, 1))(1.0, 2.0)
    assert h == ((0.0, 4.0), (4.0, 2.0)) and all(type(b) is float for row in h for b in row)
    j = sg.jacobian(g, wrt=(0, 1))(1.0, 2.0)
    assert j == (4.0, 4.0) and all(type(b) is float for b in j)
    # an array in keeps arrays out (a 0-d block of a 1-element array stays an array)
    assert type(sg.hessian(lambda v: np.sum(v ** 3))(np.array([2.0]))) is np.ndarray


# ------------------------------------------------------------------ transforms of a jvp function
def _wave(x):
    return np.sin(x) * x[0] + x ** 3 * 0.1


def _columns(fn, x, h=1e-6):
    return np.stack([(fn(x + h * e) - fn(x - h * e)) / (2 * h) for e in np.eye(x.size)], -1)


def test_a_jvp_function_is_transformed_as_the_user_calls_it():
    # sg.jvp(f) takes (x, t), the tangent last and positional: jacobian, jvp and vjp of it read it so
    # (its generated code takes the tangent by keyword; they transform generated code that calls it)
    x, v, w = np.array([0.3, -0.7, 0.5]), np.array([1.0, 0.5, 0.0]), np.array([0.2, 0.1, 1.0])
    jf = sg.jvp(_wave)
    along_v = lambda y: sg.jvp(_wave)(y, v)[1]  # noqa: E731
    jac_value, jac_tangent = sg.jacobian(jf)(x, v)
    np.testing.assert_allclose(jac_value, _columns(_wave, x), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(jac_tangent, _columns(along_v, x), rtol=1e-7, atol=1e-8)
    (_, _), (dvalue, dtangent) = sg.jvp(jf)(x, v, w)
    np.testing.assert_allclose(dvalue, _columns(_wave, x) @ w, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(dtangent, _columns(along_v, x) @ w, rtol=1e-7, atol=1e-8)
    ct = (np.ones(3), np.array([1.0, -2.0, 0.5]))
    _, back = sg.vjp(jf)(x, v, ct)
    np.testing.assert_allclose(back, _columns(_wave, x).T @ ct[0] + _columns(along_v, x).T @ ct[1],
                               rtol=1e-7, atol=1e-8)


def test_a_jacobian_or_hessian_transformed_again_is_refused_by_name():
    x = np.array([0.3, -0.7, 0.5])
    for outer, inner in [(sg.jacobian, sg.jacobian), (sg.jvp, sg.jacobian), (sg.jacobian, sg.hessian)]:
        with pytest.raises(sg.TransformError, match=r"sg\.(jacobian|hessian)\(\.\.\.\) itself") as err:
            built = outer(inner(lambda y: np.sum(np.sin(y) * y ** 3)))
            built(x, x) if outer is sg.jvp else built(x)
        assert "sg.jacobian(sg.grad(f))" in str(err.value)


def test_a_jvp_function_of_two_arguments_takes_its_tangents_as_a_tuple_when_transformed():
    def f(x, y):
        return np.sin(x) * y ** 2

    x, y = np.array([0.3, -0.7]), np.array([1.5, 0.5])
    tx, ty = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    jf = sg.jvp(f, wrt=(0, 1))
    d_value, d_tangent = sg.jacobian(jf)(x, y, (tx, ty))
    np.testing.assert_allclose(d_value, np.diag(np.cos(x) * y ** 2), rtol=1e-12)
    np.testing.assert_allclose(d_tangent, np.diag(-np.sin(x) * y ** 2 * tx + np.cos(x) * 2 * y * ty),
                               rtol=1e-12)
