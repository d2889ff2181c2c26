"""Forward mode (`srcgrad.jvp`) and forward-over-reverse (`srcgrad.hvp`), checked against finite
differences and against the eager tape, on the whole reverse-mode corpus and on focused cases."""

import inspect
import math

import numpy as np
import pytest

import srcgrad as sg
from srcgrad import TransformError
from tests.srcgrad.corpus import CORPUS
from tests.srcgrad.util import assert_close, diff_positions, make_args, numeric_grad

EPS = 1e-6

# Functions whose hvp the compiler refuses (TransformError, asserted below); none at present: the
# reverse code's list mutations (`vals.pop()`, `bvals[i] = ...`) are read back as list_pop/list_set.
HVP_REFUSED: set[str] = set()


def _direction(a, rng):
    return rng.normal(size=np.shape(a)) if isinstance(a, np.ndarray) else float(rng.uniform(0.5, 1.5))


def _shift(args, i, t, eps):
    out = list(args)
    out[i] = args[i] + eps * t
    return out


def _tape_grads(fn, args, i):
    """Gradient and the gradient's derivative machinery on the eager tape, or None when fn does not run
    on Tensors (it calls NumPy functions)."""
    leaves = [sg.tensor(a, dtype=sg.float64, requires_grad=True) if j == i else a for j, a in enumerate(args)]
    try:
        out = fn(*leaves)
        if not isinstance(out, sg.Tensor):
            return None
        (g,) = sg.autograd.grad((out,), (leaves[i],), create_graph=True)
    except Exception:  # noqa: BLE001 -- "where the tape applies": NumPy calls on Tensors do not
        return None
    return leaves, g


@pytest.mark.parametrize("fn", CORPUS, ids=lambda f: f.__name__)
def test_four_ways_agree(fn):
    """Reverse (grad), forward (jvp), forward-over-reverse (hvp) and the tape give one derivative."""
    args = make_args(fn, seed=5)
    rng = np.random.default_rng(7)
    for i in diff_positions(args):
        t = _direction(args[i], rng)
        value = fn(*args)
        # reverse
        g = sg.grad(fn, wrt=i)(*args)
        assert_close(g, numeric_grad(fn, args, i), rtol=1e-4, atol=1e-5, what="reverse")
        # forward: J t against central differences along t, and against <grad, t>
        v, jt = sg.jvp(fn, wrt=i)(*args, t)
        assert_close(v, value, what="jvp value")
        fd = (fn(*_shift(args, i, t, EPS)) - fn(*_shift(args, i, t, -EPS))) / (2 * EPS)
        assert_close(jt, fd, rtol=1e-4, atol=1e-5, what="forward vs differences")
        assert_close(jt, np.sum(np.asarray(g) * t), rtol=1e-8, atol=1e-10, what="forward vs reverse")
        # forward-over-reverse: H t against central differences of the compiled gradient
        if fn.__name__ in HVP_REFUSED:
            with pytest.raises(TransformError):
                sg.hvp(fn, wrt=i)
        else:
            gf = sg.grad(fn, wrt=i)
            v2, ht = sg.hvp(fn, wrt=i)(*args, t)
            assert_close(v2, value, what="hvp value")
            eps = 1e-5
            up, dn = gf(*_shift(args, i, t, eps)), gf(*_shift(args, i, t, -eps))
            want = (np.asarray(up) - np.asarray(dn)) / (2 * eps)
            assert_close(ht, want, rtol=1e-4, atol=1e-4, what="forward-over-reverse vs differences")
        # the tape, where the function runs on Tensors
        tape = _tape_grads(fn, args, i)
        if tape is not None:
            leaves, tg = tape
            assert_close(tg.detach().numpy(), g, rtol=1e-9, atol=1e-11, what="tape vs reverse")
            if fn.__name__ not in HVP_REFUSED and tg.requires_grad:
                tt = sg.tensor(t, dtype=sg.float64)
                (th,) = sg.autograd.grad(((tg * tt).sum(),), (leaves[i],), allow_unused=True)
                th = np.zeros(np.shape(args[i])) if th is None else th.detach().numpy()
                assert_close(th, ht, rtol=1e-7, atol=1e-9, what="tape hvp vs forward-over-reverse")


def test_the_tape_column_runs_on_part_of_the_corpus():
    ran = sum(1 for fn in CORPUS for i in diff_positions(make_args(fn))
              if _tape_grads(fn, make_args(fn), i) is not None)
    assert ran >= 15


# ----------------------------------------------------------------------------------- the language
def doubling(x):
    y = x * 2.0
    while np.sum(y * y) < 1000.0:
        y = y * 2.0
    return y


def loop_break_continue(x, n):
    s = 0.0
    for i in range(n):
        if i == 1:
            continue
        s = s + np.sin(x * i)
        if s > 2.0:
            break
    return s


def early_return(x):
    if x > 1.0:
        return x * x
    y = np.exp(x)
    return y * 3.0


def setitem_loop(a):
    b = np.zeros(4)
    for i in range(4):
        b[i] = a[i] * a[(i + 1) % 4]
    b[1:3] += a[0]
    return b


def detached(x):
    scale = x.data if hasattr(x, "data") and not isinstance(x, np.ndarray) else x
    return x * np.sin(scale)


def sq(u):
    return u * u


def calls(x):
    return sq(sq(x) + 1.0) + sq(x)


def fact(u, m):
    if m == 0:
        return 1.0
    return u * fact(u, m - 1)


def pair(x, y):
    return x * y, x + np.sin(y)


def _fd(fn, args, i, t):
    return (np.asarray(fn(*_shift(args, i, t, EPS))) - np.asarray(fn(*_shift(args, i, t, -EPS)))) / (2 * EPS)


@pytest.mark.parametrize("fn, args", [
    (doubling, (np.array([0.7, -1.3, 0.4]),)),
    (loop_break_continue, (0.8, 6)),
    (early_return, (0.5,)), (early_return, (1.5,)),
    (setitem_loop, (np.array([0.3, -1.0, 2.0, 0.5]),)),
    (calls, (0.6,)),
    (fact, (1.3, 4)),
], ids=lambda v: getattr(v, "__name__", None) or "")
def test_jvp_constructs_match_differences(fn, args):
    t = np.ones_like(args[0]) * 0.7 if isinstance(args[0], np.ndarray) else 0.7
    v, jt = sg.jvp(fn)(*args, t)
    assert_close(v, fn(*args))
    assert_close(jt, _fd(fn, args, 0, t), rtol=1e-5, atol=1e-6)


def test_data_dependent_while_needs_no_stack():
    src = sg.jvp(doubling).source
    assert "while" in src and "Stack" not in src and "_stack" not in src
    x = np.array([0.7, -1.3, 0.4])
    n = 0
    y = x * 2.0
    while np.sum(y * y) < 1000.0:
        y, n = y * 2.0, n + 1
    _, jt = sg.jvp(doubling)(x, np.array([1.0, 0.0, 0.0]))
    assert_close(jt, [2.0 ** (n + 1), 0.0, 0.0])


def test_types_in_types_out():
    v, d = sg.jvp(early_return)(0.5, 1.0)
    assert type(v) is float and type(d) is float
    v, d = sg.jvp(doubling)(np.array([0.5, 0.1]), np.array([1.0, 1.0]))
    assert isinstance(v, np.ndarray) and isinstance(d, np.ndarray) and d.shape == (2,)


def test_tuple_wrt_and_tuple_output():
    x, y = 0.4, 1.1
    (vx, vy), (dx, dy) = sg.jvp(pair, wrt=(0, 1))(x, y, (1.0, 0.5))
    assert (vx, vy) == pytest.approx(pair(x, y))
    assert dx == pytest.approx(y * 1.0 + x * 0.5)
    assert dy == pytest.approx(1.0 + math.cos(y) * 0.5)


def test_generated_source_is_readable_and_inspectable():
    fj = sg.jvp(early_return)
    src = inspect.getsource(fj)
    assert src == fj.source
    assert "def jvp_early_return(x, *, dx):" in src
    assert "dy = " in src                         # tangent names: d + the variable
    assert "# line " in src and "y = np.exp(x)" in src    # comments naming the user line
    assert "exp(x)" in src


def test_detach_passes_through():
    x = np.array([0.5, -0.2])
    t = np.array([1.0, 1.0])
    _, jt = sg.jvp(detached)(x, t)
    assert_close(jt, _fd(detached, (x,), 0, t), rtol=1e-5, atol=1e-6)


def opaque(x):
    return np.spacing(x) * x


def test_refuses_what_it_cannot_differentiate():
    with pytest.raises(TransformError):
        sg.jvp(opaque)


# ------------------------------------------------------------------------------------ hvp and vhp
def quartic(a):
    return np.sum(a ** 4) + np.sum(np.sin(a) * a[0])


def test_hvp_closed_form_and_vhp():
    a = np.array([0.3, -0.7, 1.1])
    v = np.array([1.0, 2.0, -0.5])
    H = np.diag(12 * a ** 2 - np.sin(a) * a[0])
    H[0, :] += np.cos(a)
    H[:, 0] += np.cos(a)
    value, hv = sg.hvp(quartic)(a, v)
    assert value == pytest.approx(quartic(a))
    assert_close(hv, H @ v, rtol=1e-12, atol=1e-12)
    assert_close(sg.vhp(quartic)(a, v)[1], v @ H, rtol=1e-12, atol=1e-12)


def test_hvp_through_a_loop_with_a_stack():
    x = np.array([0.7, -1.3, 0.4])
    h = sg.hvp(lambda_free_loss)
    v = np.array([0.2, 1.0, -0.3])
    _, hv = h(x, v)
    g = sg.grad(lambda_free_loss)
    want = (g(x + 1e-5 * v) - g(x - 1e-5 * v)) / 2e-5
    assert_close(hv, want, rtol=1e-5, atol=1e-6)
    assert "PairStack" in h.source and "pop2" in h.source


def lambda_free_loss(x):
    y = x
    while np.sum(y * y) < 30.0:
        y = y * 1.5 + np.sin(y)
    return np.sum(y ** 3)


def test_second_and_third_derivatives_compose():
    def f(x):
        return x ** 4 + math.sin(x)
    f = _module_level(f)
    x = 0.7
    d2 = sg.jvp(sg.grad(f))(x, 1.0)[1]
    assert d2 == pytest.approx(12 * x ** 2 - math.sin(x))
    d3 = sg.jvp(sg.jvp(sg.grad(f)))(x, 1.0, 1.0)[1][1]
    assert d3 == pytest.approx(24 * x - math.cos(x))


def quart_sin(x):
    return x ** 4 + math.sin(x)


def _module_level(_f):
    return quart_sin


def test_hvp_numpy_variant_and_generic_agree_and_show_their_source():
    a = np.array([0.3, -0.7, 1.1])
    v = np.array([1.0, 2.0, -0.5])
    h = sg.hvp(quartic)
    fast = h(a, v)[1]                                        # NumPy arrays: direct NumPy calls
    generic = h(sg.tensor(a, dtype=sg.float64), sg.tensor(v, dtype=sg.float64))[1]
    assert_close(fast, generic.detach().numpy(), rtol=1e-13, atol=1e-13)
    assert "def jvp_value_and_grad_quartic(a, *, da):" in inspect.getsource(h)


def test_third_derivative_through_a_loop_with_a_stack():
    """jvp(jvp(grad(f))): the second forward pass reads the first one's PairStack (as PairStack2)."""
    x = np.array([0.7, -1.3, 0.4])
    u = np.array([0.2, 1.0, -0.3])
    w = np.array([1.0, 0.5, 2.0])
    d2 = sg.jvp(sg.grad(lambda_free_loss))            # x, u -> (grad, H u)
    d3 = sg.jvp(d2)                                    # x, u, w: along w, with u held fixed
    assert "PairStack2()" in d3.source and "pop2_t()" in d3.source
    (_, hu), (_, dhu) = d3(x, u, w)
    assert_close(hu, d2(x, u)[1], rtol=1e-12, atol=1e-12)
    eps = 1e-5
    want = (d2(x + eps * w, u)[1] - d2(x - eps * w, u)[1]) / (2 * eps)
    assert_close(dhu, want, rtol=1e-5, atol=1e-6)


def test_integer_arguments_are_static():
    with pytest.raises(TransformError, match="static"):
        sg.jvp(fact)(3, 2, 1.0)
    with pytest.raises(TransformError, match="static"):
        sg.hvp(quart_sin)(1, 1.0)
