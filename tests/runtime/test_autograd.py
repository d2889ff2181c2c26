"""The tape: graph nodes, backward and autograd.grad, double backward, hooks, in-place checks, grad modes."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import srcgrad as torch
from srcgrad.runtime.autograd import SECOND_BACKWARD


def leaf(values, dtype=None):
    return torch.tensor(values, dtype=dtype or torch.float64, requires_grad=True)


# -------------------------------------------------------------------------------------------- the graph
def test_node_names_and_next_functions():
    a = leaf([1.0, 2.0])
    b = a.sin()
    c = b * 2
    d = c + 1
    out = d.pow(2).sum()
    assert [t.grad_fn.name() for t in (b, c, d, out)] == ["SinBackward0", "MulBackward0", "AddBackward0",
                                                          "SumBackward0"]
    assert type(b.grad_fn).__name__ == "SinBackward0"
    assert repr(b.grad_fn).startswith("<SinBackward0 object at 0x")
    assert out.grad_fn.next_functions[0][0].name() == "PowBackward0"
    nf = d.grad_fn.next_functions
    assert nf[0][0] is c.grad_fn and nf[0][1] == 0 and nf[1] == (None, 0)
    acc = b.grad_fn.next_functions[0][0]
    assert acc.name() == "AccumulateGrad" and acc.variable is a and acc.next_functions == ()
    assert a.grad_fn is None and a.is_leaf and not b.is_leaf
    for fn, name in [(lambda x: x - 1, "SubBackward0"), (lambda x: x / 2, "DivBackward0"),
                     (lambda x: x.exp(), "ExpBackward0"), (lambda x: x.tanh(), "TanhBackward0"),
                     (lambda x: x.mean(), "MeanBackward0"), (lambda x: x.reshape(2, 1), "ViewBackward0"),
                     (lambda x: x.relu(), "ReluBackward0"), (lambda x: -x, "NegBackward0"),
                     (lambda x: x.reshape(1, 2) @ x.reshape(2, 1), "MmBackward0"),
                     (lambda x: x.sum(0), "SumBackward1")]:
        assert fn(a).grad_fn.name() == name


def test_requires_grad_settable_on_leaves_only():
    a = torch.ones(2)
    a.requires_grad = True
    assert a.requires_grad and a.requires_grad_(False) is a and not a.requires_grad
    b = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        b.requires_grad = False
    with pytest.raises(RuntimeError, match="only Tensors of floating point and complex dtype can require"):
        torch.tensor([1, 2]).requires_grad_()
    assert not (torch.ones(2) * 3).requires_grad


def test_non_leaf_grad_is_none_with_warning_unless_retained():
    a = leaf([1.0, 2.0])
    c = a * 3
    c.sum().backward()
    with pytest.warns(UserWarning, match="is not a leaf Tensor"):
        assert c.grad is None
    d = a * 3
    d.retain_grad()
    (d * d).sum().backward()
    assert d.retains_grad and d.grad.tolist() == [6.0, 12.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert a.grad is not None


def test_register_hook_on_leaf_and_non_leaf():
    a = leaf([1.0, 2.0])
    seen = []
    h = a.register_hook(lambda g: seen.append(g.tolist()))
    mid = a * 2
    mid.register_hook(lambda g: g * 10)  # replaces the gradient flowing through `mid`
    mid.sum().backward()
    assert seen == [[20.0, 20.0]] and a.grad.tolist() == [20.0, 20.0]
    h.remove()
    (a * 1).sum().backward()
    assert seen == [[20.0, 20.0]]
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        torch.ones(1).register_hook(lambda g: g)


# --------------------------------------------------------------------------------------------- backward
def test_backward_closed_forms():
    x = leaf([0.3, -1.2, 2.0])
    y = (x.sin() * x.exp() + x ** 3 / 2).sum()
    y.backward()
    xn = np.array([0.3, -1.2, 2.0])
    expected = np.cos(xn) * np.exp(xn) + np.sin(xn) * np.exp(xn) + 1.5 * xn ** 2
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_implicit_gradient_only_for_scalar_outputs():
    y = leaf([1.0, 2.0]) * 2
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()
    one = leaf([3.0]) * 2  # one element but not 0-d: allowed, as in PyTorch
    one.backward()


def test_backward_with_gradient_is_shape_checked():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    with pytest.raises(RuntimeError, match=r"Mismatch in shape: grad_output\[0\] has a shape of "
                                           r"srcgrad.Size\(\[2\]\) and output\[0\] has a shape of "
                                           r"srcgrad.Size\(\[3\]\)"):
        y.backward(torch.ones(2))
    y.backward(torch.tensor([0.1, 1.0, 0.0001]))
    np.testing.assert_allclose(x.grad.numpy(), [0.2, 2.0, 0.0002])


def test_no_grad_output_cannot_backward():
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and does not have "
                                           "a grad_fn"):
        torch.ones(2).sum().backward()


def test_gradients_accumulate_across_calls():
    x = leaf([1.0, 2.0])
    for _ in range(3):
        (x * x).sum().backward()
    assert x.grad.tolist() == [6.0, 12.0]


def test_second_backward_raises_and_retain_graph_allows_it():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError) as err:
        y.backward()
    assert str(err.value) == SECOND_BACKWARD and "Specify retain_graph=True" in str(err.value)
    s = torch.tensor(2.0, requires_grad=True)
    z = s.sin() * s
    z.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        z.backward()
    w = (x * x).sum()
    w.backward(retain_graph=True)
    w.backward()
    assert x.grad.tolist() == [2 + 2 + 2, 4 + 4 + 4]
    v = x.sum() * 2  # nodes that saved no tensor values can run again, as in PyTorch
    v.backward()
    v.backward()


def test_saved_values_are_freed_after_backward():
    x = leaf(np.ones(1000))
    y = x.sin()
    y.sum().backward()
    assert y.grad_fn.saved_tensors_freed
    z = x.sin()
    z.sum().backward(retain_graph=True)
    assert not z.grad_fn.saved_tensors_freed


def test_autograd_grad_and_allow_unused():
    x, y = leaf([1.0, 2.0]), leaf([3.0])
    out = (x * x).sum() * 2
    (gx,) = torch.autograd.grad(out, x)
    assert gx.tolist() == [4.0, 8.0] and x.grad is None  # returned, not accumulated
    with pytest.raises(RuntimeError, match="One of the differentiated Tensors appears to not have been "
                                           "used in the graph. Set allow_unused=True"):
        torch.autograd.grad((x * 2).sum(), [x, y])
    gx, gy = torch.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gx.tolist() == [2.0, 2.0] and gy is None
    h = x * 3
    (gh,) = torch.autograd.grad((h * h).sum(), h)  # gradient with respect to a non-leaf
    np.testing.assert_allclose(gh.numpy(), 2 * h.detach().numpy())
    g1, g2 = torch.autograd.grad([(x * 2).sum(), (x * 3).sum()], x, retain_graph=True), None
    assert g1[0].tolist() == [5.0, 5.0] and g2 is None


def test_backward_inputs_only_accumulates_there():
    x, y = leaf([1.0]), leaf([2.0])
    (x * y).sum().backward(inputs=[x])
    assert x.grad.tolist() == [2.0] and y.grad is None


def test_double_backward_and_hessian_by_two_passes():
    x = leaf([0.5, -1.0, 2.0])
    y = (x ** 3).sum() + (x[:-1] * x[1:]).sum()
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    xn = x.detach().numpy()
    np.testing.assert_allclose(g.detach().numpy(), 3 * xn ** 2 + np.r_[xn[1:], 0] + np.r_[0, xn[:-1]])
    rows = [torch.autograd.grad(g[i], x, retain_graph=True)[0].numpy() for i in range(3)]
    np.testing.assert_allclose(np.stack(rows), np.diag(6 * xn) + np.eye(3, k=1) + np.eye(3, k=-1))
    # hvp through backward(create_graph=True), then a second backward accumulates into .grad
    z = leaf([0.3, 0.7])
    (z.sin() * z).sum().backward(create_graph=True)
    gz = z.grad
    assert gz.grad_fn is not None
    z.grad = None
    (gz * torch.tensor([1.0, 0.0], dtype=torch.float64)).sum().backward()
    zn = np.array([0.3, 0.7])
    np.testing.assert_allclose(z.grad.numpy(), [2 * np.cos(zn[0]) - zn[0] * np.sin(zn[0]), 0.0])


def test_third_order():
    x = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    y = x.exp() * x.sin()
    (g1,) = torch.autograd.grad(y, x, create_graph=True)
    (g2,) = torch.autograd.grad(g1, x, create_graph=True)
    (g3,) = torch.autograd.grad(g2, x)
    # d^3/dx^3 e^x sin x = 2 e^x (cos x - sin x)
    assert g3.item() == pytest.approx(2 * np.exp(0.7) * (np.cos(0.7) - np.sin(0.7)))


def test_custom_function():
    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x ** 2

    x = leaf([1.0, 2.0])
    y = Cube.apply(x)
    assert y.grad_fn.name() == "CubeBackward"
    (y * 2).sum().backward()
    assert x.grad.tolist() == [6.0, 24.0]


# --------------------------------------------------------------------------------------------- in place
LEAF_MSG = "a leaf Variable that requires grad is being used in an in-place operation."


@pytest.mark.parametrize("op", [
    lambda a: a.add_(1), lambda a: a.sub_(1), lambda a: a.mul_(2), lambda a: a.div_(2), lambda a: a.zero_(),
    lambda a: a.fill_(3.0), lambda a: a.clamp_(0, 1), lambda a: a.copy_(torch.zeros(3)), lambda a: a.sin_(),
    lambda a: a.exp_(), lambda a: torch.sin_(a), lambda a: a.__setitem__(0, 5.0), lambda a: a.__iadd__(1),
])
def test_inplace_on_leaf_requiring_grad_raises_and_leaves_data(op):
    a = leaf([0.1, 0.2, 0.3], dtype=torch.float32)
    with pytest.raises(RuntimeError) as err:
        op(a)
    assert str(err.value) == LEAF_MSG
    assert a.detach().numpy().tolist() == pytest.approx([0.1, 0.2, 0.3]) and a._version == 0


def test_inplace_methods_values():
    a = torch.tensor([1.0, -2.0, 3.0])
    assert a.add_(1).tolist() == [2, -1, 4] and a.sub_(1, alpha=2).tolist() == [0, -3, 2]
    assert a.mul_(2).tolist() == [0, -6, 4] and a.div_(2).tolist() == [0, -3, 2]
    assert a.clamp_(-1, 1).tolist() == [0, -1, 1] and a.abs_().tolist() == [0, 1, 1]
    assert a.fill_(7).tolist() == [7, 7, 7] and a.zero_().tolist() == [0, 0, 0]
    assert a.copy_(torch.tensor([1.0, 2.0, 3.0])).tolist() == [1, 2, 3]
    a[1] = 9.0
    assert a.tolist() == [1, 9, 3] and a._version == 10
    b = torch.tensor([0.5])
    b.sin_()
    assert b.item() == pytest.approx(np.sin(0.5))
    with torch.no_grad():  # in-place on a leaf that requires grad is allowed without recording
        p = leaf([1.0, 2.0])
        p -= 0.5 * torch.ones(2)
    assert p.tolist() == [0.5, 1.5] and p.is_leaf and p.requires_grad


def test_modified_saved_tensor_is_detected_at_backward():
    x = leaf([1.0, 2.0])
    h = x * 1
    y = h.exp()  # saves its output
    y.add_(1)
    with pytest.raises(RuntimeError, match="one of the variables needed for gradient computation has "
                                           "been modified by an inplace operation") as err:
        y.sum().backward()
    assert "ExpBackward0" in str(err.value) and "version 1; expected version 0" in str(err.value)
    z = x * 2
    w = z.sin()  # saves its input
    z.mul_(3)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*MulBackward0"):
        w.sum().backward()
    q = x.detach()
    r = (x * q).sum()
    q.zero_()  # detach() shares the version counter
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        r.backward()


def test_inplace_on_non_leaf_rewrites_the_graph():
    x = leaf([0.5, 1.5])
    h = x * 2
    h.sin_()
    assert h.grad_fn.name() == "SinBackward0" and h._version == 1
    h.mul_(x)
    h.sum().backward()
    xn = np.array([0.5, 1.5])
    # d/dx [sin(2x) * x] = 2 cos(2x) x + sin(2x)
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(2 * xn) * xn + np.sin(2 * xn))
    y = leaf([1.0, 2.0, 3.0])
    buf = torch.zeros(3)
    buf[1:] = y[:2] * 3  # setitem with a value that requires grad
    assert buf.grad_fn.name() == "CopySlices" and not buf.is_leaf
    (buf * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert y.grad.tolist() == [6.0, 9.0, 0.0]
    z = leaf([1.0, -1.0])
    t = z * 1
    t.relu_()
    t.sum().backward()
    assert z.grad.tolist() == [1.0, 0.0]


# -------------------------------------------------------------------------------------------- grad modes
def test_no_grad_enable_grad_set_grad_enabled():
    x = leaf([1.0])
    with torch.no_grad():
        assert not torch.is_grad_enabled() and (x * 2).grad_fn is None
        with torch.enable_grad():
            assert (x * 2).grad_fn is not None
    assert torch.is_grad_enabled()

    @torch.no_grad()
    def f(t):
        return t * 2

    @torch.no_grad
    def f2(t):
        return t * 2

    @torch.enable_grad()
    def g(t):
        return t * 2

    assert f(x).grad_fn is None and f2(x).grad_fn is None and f.__name__ == "f"
    with torch.no_grad():
        assert g(x).grad_fn is not None
    with torch.set_grad_enabled(False):
        assert (x * 2).grad_fn is None
    assert torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:
        assert not torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(True)
    with torch.inference_mode():
        assert (x * 2).grad_fn is None
    with pytest.raises(ValueError):
        with torch.no_grad():
            raise ValueError
    assert torch.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = {}

    def worker():
        seen["thread"] = torch.is_grad_enabled()

    with torch.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert not torch.is_grad_enabled()
    assert seen["thread"] is True


def test_set_grad_enabled_as_decorator_leaves_mode_alone():
    @torch.set_grad_enabled(False)
    def f(t):
        return t * 2

    assert torch.is_grad_enabled()
    x = leaf([1.0])
    assert f(x).grad_fn is None and (x * 2).grad_fn is not None


# ------------------------------------------------------------------------------------------------ views
def test_inplace_through_an_index_view_rebases_the_base():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    z = y[1:]  # shares y's memory
    z.mul_(3)
    assert y.tolist() == [2.0, 12.0, 18.0]  # the base sees the change, as in PyTorch
    assert y.grad_fn.name() == "CopySlices"
    (y * torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)).sum().backward()
    assert x.grad.tolist() == [2.0, 60.0, 600.0]
    out = torch.zeros(2, 3, dtype=torch.float64)
    w = leaf([1.0, 2.0, 3.0])
    out[1].copy_(w * w)  # a common pattern: fill rows of a buffer in place
    assert out.requires_grad and out.grad_fn.name() == "CopySlices"
    out.sum().backward()
    assert w.grad.tolist() == [2.0, 4.0, 6.0]


def test_views_share_the_version_counter():
    x = leaf([1.0, 2.0])
    y = x.exp()  # saves its output
    with torch.no_grad():
        y[0:1].zero_()  # modifies y through a view
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    a = torch.arange(6.0).reshape(2, 3)
    v = a.t()
    v.add_(1)  # no graph: plain aliasing, as in NumPy and PyTorch
    assert a.tolist() == [[1, 2, 3], [4, 5, 6]] and a._version == v._version == 1


def test_inplace_on_views_of_leaves_and_unsupported_views():
    p = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is being used in "
                                           "an in-place operation."):
        p[0:1].add_(1)
    with torch.no_grad():
        p[0:1].add_(1)
    assert p.tolist() == [2.0, 2.0]
    h = p * 1
    r = h.reshape(2, 1)
    with pytest.raises(RuntimeError, match="cannot record an in-place operation on a view"):
        r.mul_(2)
    assert h.tolist() == [2.0, 2.0]


def test_inplace_change_of_an_input_read_only_for_its_shape_is_fine():
    x = leaf([1.0, 2.0])
    y = x * 1
    z = y + 1  # add's rule reads only the shapes of its inputs
    s = y[0]  # so does indexing's
    y.add_(1)
    (z.sum() + s).backward()
    assert x.grad.tolist() == [2.0, 1.0]


def test_leaf_gradients_never_alias():
    y, z = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    ((y + z) * 3).sum().backward()  # add hands one cotangent array to both inputs
    y.grad.zero_()
    assert z.grad.tolist() == [3.0, 3.0]
    a = leaf([1.0, 1.0])
    g = torch.tensor([5.0, 6.0], dtype=torch.float64)
    (a + 0).backward(g)  # the user's gradient flows to the leaf unchanged
    a.grad.zero_()
    assert g.tolist() == [5.0, 6.0]
    # views: a transposed product held by nobody else is kept; a view of a user's array is copied
    W = leaf(np.arange(6.0).reshape(2, 3))
    x = np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 2.0]])
    (torch.tensor(x, dtype=torch.float64) @ W.t()).sum().backward()  # W's grad: the view (x.T @ g).T
    np.testing.assert_allclose(W.grad.numpy(), np.tile(x.sum(axis=0), (2, 1)))
    W.grad.mul_(0.0)
    assert x.tolist() == [[1.0, 2.0, 0.5], [3.0, -1.0, 2.0]]
    b = leaf([[1.0, 2.0], [3.0, 4.0]])
    v = torch.tensor([[7.0, 8.0], [9.0, 10.0]], dtype=torch.float64)
    b.t().backward(v)  # the cotangent v.T, a view of the user's array, reaches b
    b.grad.zero_()
    assert v.tolist() == [[7.0, 8.0], [9.0, 10.0]]


# ---------------------------------------------------------------------------- the sweep: order and buffers
def test_a_value_read_early_and_late_gets_its_whole_gradient_first():
    """Nodes run newest first: `a` feeds the first and the fiftieth operation of a chain, and its rule
    must run once, after both cotangents arrived (checked against the closed form)."""
    x = leaf([0.3, -0.7])
    a = x * 2.0
    h = a
    for _ in range(50):
        h = h * 0.9
    out = (h * a).sum()
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), 8 * 0.9**50 * x.detach().numpy(), rtol=1e-12)


def test_summing_cotangents_never_writes_into_a_users_array():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 1.0
    z = y + y + y  # the same cotangent object reaches y's buffer three times
    v = np.array([1.0, -2.0, 0.5])
    v_before = v.copy()
    z.backward(torch.from_numpy(v))
    np.testing.assert_array_equal(v, v_before)
    np.testing.assert_allclose(x.grad.numpy(), 3 * v_before)


def test_a_gradient_seen_by_a_hook_is_not_changed_by_later_sums():
    w = leaf(np.ones((3, 2)))
    seen = []
    hs = []
    for t in range(4):
        h = w * float(t + 1)
        h.register_hook(lambda g: seen.append(g))
        hs.append(h)
    out = sum((h * h).sum() for h in hs)
    out.backward()
    for t, g in enumerate(seen[::-1]):  # hooks run newest first
        np.testing.assert_allclose(g.numpy(), 2 * (t + 1) * np.ones((3, 2)))
    np.testing.assert_allclose(w.grad.numpy(), sum(2 * (t + 1) ** 2 for t in range(4)) * np.ones((3, 2)))


def test_a_row_read_by_integer_index_shares_the_version_counter():
    xs = torch.tensor(np.arange(6.0).reshape(3, 2), dtype=torch.float64)
    w = leaf([1.0, 1.0])
    r = xs[1]
    assert r._version == xs._version
    y = (w * r).sum()
    xs.add_(1.0)
    assert r._version == xs._version == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


# ------------------------------------------------------- weights in loops: outer products summed as factors
def _rnn_grads(W_np, U_np, xs_np, mode):
    """Gradients of sum(h_T^2) for h_t = tanh(W x_t + h_{t-1} U) (W @ x: matrix-vector; h @ U: vector-
    matrix), by the tape, and by hand in NumPy."""
    W, U = leaf(W_np), leaf(U_np)
    h = torch.zeros(U_np.shape[0], dtype=torch.float64)
    for x in xs_np:
        h = torch.tanh(W @ torch.tensor(x, dtype=torch.float64) + h @ U)
    out = (h * h).sum()
    if mode == "extra":  # a dense contribution to the same leaves as well
        out = out + (W * W).sum() + (U * 3.0).sum()
    out.backward()
    hs = [np.zeros(U_np.shape[0])]
    for x in xs_np:
        hs.append(np.tanh(W_np @ x + hs[-1] @ U_np))
    dW, dU, dh = np.zeros_like(W_np), np.zeros_like(U_np), 2 * hs[-1]
    for t in reversed(range(len(xs_np))):
        dz = dh * (1 - hs[t + 1] ** 2)
        dW += np.outer(dz, xs_np[t])
        dU += np.outer(hs[t], dz)
        dh = U_np @ dz
    if mode == "extra":
        dW, dU = dW + 2 * W_np, dU + 3.0
    return (W.grad.numpy(), U.grad.numpy()), (dW, dU)


@pytest.mark.parametrize("steps", [1, 3, 40])
@pytest.mark.parametrize("mode", ["plain", "extra"])
def test_loop_weights_get_the_sum_of_their_outer_products(steps, mode):
    rng = np.random.default_rng(steps)
    W, U = rng.standard_normal((5, 3)) * 0.5, rng.standard_normal((5, 5)) * 0.3
    got, want = _rnn_grads(W, U, rng.standard_normal((steps, 3)), mode)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_outer_products_reach_a_non_leaf_weight_and_leaf_hooks_as_arrays():
    rng = np.random.default_rng(0)
    V, x = leaf(rng.standard_normal((4, 3))), rng.standard_normal(3)
    seen = []
    V.register_hook(lambda g: seen.append(type(g).__name__))
    W = V * 2.0  # not a leaf: its MulBackward receives the outer product
    out = (W @ torch.tensor(x, dtype=torch.float64)).sum() + (V @ torch.tensor(x, dtype=torch.float64)).sum()
    out.backward()
    np.testing.assert_allclose(V.grad.numpy(), 3.0 * np.outer(np.ones(4), x))
    assert seen == ["Tensor"]


def test_outer_products_accumulate_across_backward_calls_and_with_retain_graph():
    rng = np.random.default_rng(1)
    W, xs = leaf(rng.standard_normal((3, 2))), rng.standard_normal((6, 2))
    out = sum((W @ torch.tensor(x, dtype=torch.float64)).sum() for x in xs)
    out.backward(retain_graph=True)
    out.backward()
    np.testing.assert_allclose(W.grad.numpy(), 2 * np.outer(np.ones(3), xs.sum(axis=0)))


def test_a_leaf_hook_runs_once_with_the_whole_gradient_when_the_leaf_feeds_several_ops():
    # each first use of w goes through a different recording path, which makes w's AccumulateGrad
    for make in (lambda w: torch.sin(w) + w * 2.0 + torch.where(w > 0, w, w * 0.5),
                 lambda w: torch.stack([w, w * 3.0]).sum(0),
                 lambda w: w * 2.0 + torch.sin(w)):
        w = leaf([0.5, -1.0])
        calls = []
        w.register_hook(lambda g, calls=calls: calls.append(g.numpy().copy()))
        make(w).sum().backward()
        assert len(calls) == 1
        np.testing.assert_allclose(calls[0], w.grad.numpy())


def test_outputs_of_several_input_ops_have_their_own_version_counter():
    a, b = leaf([1.0, -2.0]), leaf([3.0, 4.0])
    c = torch.where(a > 0, a, b)  # recorded by the general (several-argument) path
    c.add_(1.0)
    assert a._version == 0 and b._version == 0 and c._version == 1
    np.testing.assert_allclose(c.detach().numpy(), [2.0, 5.0])
    c.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [1.0, 0.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 1.0])


def test_edges_of_one_two_and_three_input_nodes():
    a, b = leaf([1.0, -2.0]), leaf([3.0, 4.0])
    one, two, three = a.sin(), a * b, torch.where(a > 0, a, b)
    assert [len(t.grad_fn.next_functions) for t in (one, two, three)] == [1, 2, 3]
    acc_a, acc_b = two.grad_fn.next_functions[0][0], two.grad_fn.next_functions[1][0]
    assert acc_a.variable is a and acc_b.variable is b
    assert one.grad_fn.next_functions[0][0] is acc_a
    assert [e for e, _ in three.grad_fn.next_functions] == [None, acc_a, acc_b]


def test_a_recorded_operation_leaves_one_object_for_the_garbage_collector():
    """Long graphs are what CPython's collector rescans while they are recorded: a node, nothing else."""
    import gc

    x = leaf([0.1, 0.2])
    y = x * 1.0
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        for _ in range(500):
            y = torch.sin(y) * 0.5 + y
        gc.collect()
        grown = len(gc.get_objects()) - before
    finally:
        gc.enable()
    assert grown <= 3 * 500 + 50  # three nodes per step (sin, mul, add)
    y.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))


@pytest.mark.parametrize("op, prim", [("__add__", "add"), ("__sub__", "subtract"), ("__mul__", "multiply"),
                                      ("__truediv__", "divide"), ("__pow__", "power"),
                                      ("__matmul__", "matmul")])
def test_operators_record_the_node_the_general_path_records(op, prim):
    """Operators take a two-argument shortcut (`_binary_fast`); it must record what the primitive's
    general path records: the same node class, edges, saved values and version bookkeeping."""
    from srcgrad.runtime import primitives as P

    def cases():
        a = leaf([[1.5, 2.0], [0.5, 3.0]])
        b = leaf([[0.7, 1.2], [2.0, 0.4]]) * 1.0  # a non-leaf
        c = torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64)  # no grad
        return [(a, b), (b, a), (a, c), (c, b), (a, 2.0)] if prim != "matmul" else [(a, b), (b, a), (a, c)]

    for (x, y), (x2, y2) in zip(cases(), cases(), strict=True):
        fast = getattr(x, op)(y)
        general = getattr(P, prim)(x2, y2)
        nf, ng = fast.grad_fn, general.grad_fn
        assert type(nf).__name__ == type(ng).__name__
        assert [type(e).__name__ if e is not None else None for e in nf.edges] == \
               [type(e).__name__ if e is not None else None for e in ng.edges]
        assert [v is None for v in nf.vcs] == [v is None for v in ng.vcs]
        assert nf.vers == ng.vers and nf.nrs == ng.nrs and nf.kwargs == ng.kwargs
        for a, b in zip(nf.args, ng.args, strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(fast.detach().numpy(), general.detach().numpy())
