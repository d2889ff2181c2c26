"""Spelling invariance (issue 11, item 5): equivalent spellings of one computation get the same
specialized code, or, where the forward must differ (`x ** 2` is not `x * x` as written), an adjoint
with the same number of NumPy calls and operators.

What is compared is `g.source` after a call with NumPy arrays (or Python floats): the variant that
ran. Comments (they quote the user's line) and the function's own name are normalized away."""

import ast

import numpy as np
import pytest

import srcgrad as sg

T, H, I = 12, 6, 4


# ------------------------------------------------------------------------------ matrix products
def rnn_at(Wxh, Whh, b, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(Wxh @ xs[t] + Whh @ h + b)
    return np.sum(h * h)


def rnn_np_dot(Wxh, Whh, b, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, h) + b)
    return np.sum(h * h)


def rnn_method_dot(Wxh, Whh, b, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(Wxh.dot(xs[t]) + Whh.dot(h) + b)
    return np.sum(h * h)


def rnn_np_matmul(Wxh, Whh, b, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(np.matmul(Wxh, xs[t]) + np.matmul(Whh, h) + b)
    return np.sum(h * h)


def rnn_zeros_at(Wxh, Whh, b, xs):
    h = np.zeros(6)
    for t in range(xs.shape[0]):
        h = np.tanh(Wxh @ xs[t] + Whh @ h + b)
    return np.sum(h * h)


def rnn_zeros_dot(Wxh, Whh, b, xs):
    h = np.zeros(6)
    for t in range(xs.shape[0]):
        h = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, h) + b)
    return np.sum(h * h)


def mm_at(A, B):
    return np.sum(np.sin(A @ B))


def mm_dot(A, B):
    return np.sum(np.sin(np.dot(A, B)))


def mm_method(A, B):
    return np.sum(np.sin(A.dot(B)))


def mm_matmul(A, B):
    return np.sum(np.sin(np.matmul(A, B)))


def vv_at(u, v):
    return np.tanh(u @ v)


def vv_dot(u, v):
    return np.tanh(np.dot(u, v))


def vv_method(u, v):
    return np.tanh(u.dot(v))


# ------------------------------------------------------------------------------ squares
def sq_pow(x, y):
    return np.sum(np.sin(x ** 2) * y)


def sq_mul(x, y):
    return np.sum(np.sin(x * x) * y)


def sq_np(x, y):
    return np.sum(np.sin(np.square(x)) * y)


# ------------------------------------------------------------------------------ defaults
def damped(x, c=0.5, k=2.0):
    y = x
    for _ in range(5):
        y = y - c * np.sin(k * y)
    return np.sum(y * y)


def damped_float(x, c=0.5, k=2.0):
    y = x
    for _ in range(5):
        y = y - c * np.sin(k * y)
    return y * y


def _rnn_args():
    r = np.random.default_rng(0)
    return (r.standard_normal((H, I)) / 2, r.standard_normal((H, H)) / 3, 0.1 * r.standard_normal(H),
            r.standard_normal((T, I)))


def _normalized(source: str, name: str) -> str:
    """The code without comments (but one marker where the adjoint begins) and docstring, the function's
    own name replaced by F."""
    lines = [
        ln.split("#")[0] + "# adjoint" if ln.strip().startswith("# adjoint of line") else ln
        for ln in source.splitlines()
        if ('"""' not in ln and not ln.strip().startswith("#")) or ln.strip().startswith("# adjoint of line")
    ]
    return "\n".join(lines).replace(name, "F")


def _ran(f, args, wrt, kind=sg.grad, **kw):
    g = kind(f, wrt=wrt)
    out = g(*args, **kw)
    return _normalized(g.source, f.__name__), out


def _adjoint_counts(source: str) -> tuple[int, int]:
    """(NumPy calls, arithmetic operators) in the adjoint: the statements after the first
    `# adjoint of line` comment."""
    text = source.split("# adjoint", 1)[1]
    body = "\n".join(ln.strip() for ln in text.splitlines()[1:] if not ln.strip().startswith("#"))
    tree = ast.parse(body)
    calls = sum(
        1 for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        and isinstance(n.func.value, ast.Name) and n.func.value.id in ("np", "math")
    )
    ops = sum(1 for n in ast.walk(tree) if isinstance(n, (ast.BinOp, ast.UnaryOp)))
    return calls, ops


# ------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("spelling", [rnn_np_dot, rnn_method_dot, rnn_np_matmul])
def test_rnn_products_give_the_code_of_at(spelling):
    args = (*_rnn_args(), np.zeros(H))
    want, g_want = _ran(rnn_at, args, (0, 1, 2))
    got, g_got = _ran(spelling, args, (0, 1, 2))
    assert got == want
    assert "dot_" not in got and "_fwd" not in got
    for a, b in zip(g_got, g_want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


def test_rnn_state_from_zeros_differs_only_in_its_start():
    args = _rnn_args()
    at, _ = _ran(rnn_zeros_at, args, (0, 1, 2))
    dot, _ = _ran(rnn_zeros_dot, args, (0, 1, 2))
    assert at == dot
    passed, _ = _ran(rnn_at, (*args, np.zeros(H)), (0, 1, 2))
    # the one difference: `h = h0` against `h = np.zeros(6)` (and the parameter list)
    diff = [(a, b) for a, b in zip(passed.splitlines(), at.splitlines(), strict=True) if a != b]
    assert [b.strip() for _, b in diff] == ["def grad_F(Wxh, Whh, b, xs):", "h = np.zeros(6)"]


@pytest.mark.parametrize("spelling", [mm_dot, mm_method, mm_matmul])
def test_matrix_products(spelling):
    r = np.random.default_rng(1)
    A, B = r.standard_normal((3, 4)), r.standard_normal((4, 5))
    want, _ = _ran(mm_at, (A, B), (0, 1))
    got, _ = _ran(spelling, (A, B), (0, 1))
    assert got == want


@pytest.mark.parametrize("spelling", [vv_dot, vv_method])
def test_vector_dot_products(spelling):
    r = np.random.default_rng(2)
    u, v = r.standard_normal(5), r.standard_normal(5)
    want, _ = _ran(vv_at, (u, v), (0, 1))
    got, _ = _ran(spelling, (u, v), (0, 1))
    assert got == want


def test_dot_of_floats_is_a_product():
    def dot_floats(a, b):
        return np.dot(a, b) * a

    def mul_floats(a, b):
        return a * b * a

    got, g1 = _ran(dot_floats, (0.3, 1.7), (0, 1))
    want, g2 = _ran(mul_floats, (0.3, 1.7), (0, 1))
    assert got == want
    assert g1 == pytest.approx(g2)


def test_dot_of_a_higher_rank_operand_keeps_its_meaning():
    """np.dot of a 3-d and a 2-d array is a tensordot, not matmul: the call stays as it was."""
    def f(A, B):
        return np.sum(np.dot(A, B) ** 2)

    r = np.random.default_rng(3)
    A, B = r.standard_normal((2, 3, 4)), r.standard_normal((4, 5))
    g = sg.grad(f, wrt=(0, 1))
    gA, gB = g(A, B)
    C = np.dot(A, B)
    np.testing.assert_allclose(gA, np.einsum("ijl,kl->ijk", 2 * C, B), rtol=1e-12)
    np.testing.assert_allclose(gB, np.einsum("ijk,ijl->kl", A, 2 * C), rtol=1e-12)


def test_rank_changing_state_keeps_the_call():
    """h starts as a matrix and the product's rank would change under a wrong guess: the verified ranks
    decide, and the gradient is right."""
    def f(W, h0):
        h = h0
        for _ in range(3):
            h = np.tanh(np.dot(W, h))
        return np.sum(h)

    r = np.random.default_rng(4)
    W, h0 = r.standard_normal((3, 3)) / 2, r.standard_normal((3, 2))
    gW = sg.grad(f)(W, h0)
    eps = 1e-6
    num = np.zeros_like(W)
    for i in range(3):
        for j in range(3):
            d = np.zeros_like(W)
            d[i, j] = eps
            num[i, j] = (f(W + d, h0) - f(W - d, h0)) / (2 * eps)
    np.testing.assert_allclose(gW, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("spelling", [sq_mul, sq_np])
def test_squares_numpy(spelling):
    r = np.random.default_rng(5)
    x, y = r.standard_normal(7), r.standard_normal(7)
    for kind in (sg.grad, sg.value_and_grad):
        want, w = _ran(sq_pow, (x, y), (0, 1), kind)
        got, g = _ran(spelling, (x, y), (0, 1), kind)
        assert _adjoint_counts(got) == _adjoint_counts(want), (got, want)
        # one forward line differs at most: `x ** 2`, `x * x` or `np.square(x)`
        diff = [a for a, b in zip(got.splitlines(), want.splitlines(), strict=True) if a != b]
        assert len(diff) <= 2, (got, want)
        np.testing.assert_allclose(np.asarray(g[-1] if kind is sg.grad else g[1], dtype=object).tolist(),
                                   np.asarray(w[-1] if kind is sg.grad else w[1], dtype=object).tolist())


@pytest.mark.parametrize("spelling", [sq_mul, sq_np])
def test_squares_python_floats(spelling):
    want, w = _ran(sq_pow, (0.3, 1.2), (0, 1))
    got, g = _ran(spelling, (0.3, 1.2), (0, 1))
    assert _adjoint_counts(got) == _adjoint_counts(want)
    assert "square(" not in got and "broadcast_to" not in got and "shape(" not in got
    assert g == pytest.approx(w, rel=1e-14)


def test_defaults_given_or_omitted_numpy():
    x = np.linspace(-1.0, 1.0, 5)
    omitted, g1 = _ran(damped, (x,), 0)
    given, g2 = _ran(damped, (x, 0.5, 2.0), 0)
    assert omitted == given
    np.testing.assert_array_equal(g1, g2)


def test_defaults_given_or_omitted_floats():
    omitted, g1 = _ran(damped_float, (0.4,), 0)
    given, g2 = _ran(damped_float, (0.4, 0.5, 2.0), 0)
    keyword, g3 = _ran(damped_float, (0.4,), 0, k=2.0)
    assert omitted == given == keyword
    assert "math.sin" in omitted and "unbroadcast" not in omitted
    assert g1 == g2 == g3


def _ran_jvp(f, args, wrt, tangents):
    j = sg.jvp(f, wrt=wrt)
    out = j(*args, tangents)
    return _normalized(j.source, f.__name__), out


@pytest.mark.parametrize("spelling", [rnn_np_dot, rnn_method_dot, rnn_np_matmul])
def test_rnn_products_give_the_forward_mode_code_of_at(spelling):
    """Forward mode reads the same facts (srcgrad/stages.py): its specialized code is spelling-invariant
    too, and its tangent is the gradient's product with the same direction."""
    args = (*_rnn_args(), np.zeros(H))
    r = np.random.default_rng(5)
    tangents = tuple(r.standard_normal(np.shape(a)) for a in args[:3])
    want, (v_want, t_want) = _ran_jvp(rnn_at, args, (0, 1, 2), tangents)
    got, (v_got, t_got) = _ran_jvp(spelling, args, (0, 1, 2), tangents)
    assert got == want
    assert "dot_" not in got and "_jvp" not in got and "widen" not in got
    assert v_got == pytest.approx(v_want, rel=1e-13) and t_got == pytest.approx(t_want, rel=1e-12)
    grads = sg.grad(rnn_at, wrt=(0, 1, 2))(*args)
    assert t_want == pytest.approx(sum(np.sum(g * t) for g, t in zip(grads, tangents, strict=True)),
                                   rel=1e-10)
