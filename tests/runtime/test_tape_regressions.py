"""Regressions found by differential testing of the eager tape against PyTorch: values and gradients are
checked in closed form, and against PyTorch itself where it is installed."""

from __future__ import annotations

import numpy as np
import pytest

import srcgrad as S
import srcgrad.nn.functional as F
from srcgrad import nn


def _torch():
    return pytest.importorskip("torch")


# ------------------------------------------------------------------------ cross_entropy / nll_loss
def _ce_closed_form(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """cross_entropy of class-index targets in NumPy, for (N, C, d...) or (N, C) input."""
    x = np.moveaxis(x, 1, -1)  # (N, d..., C)
    logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    c = x.shape[-1]
    w = np.ones(c) if weight is None else weight
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    picked = np.take_along_axis(logp, safe[..., None], -1)[..., 0]
    wt = w[safe] * valid
    nll = -picked * wt
    smooth = -(logp * w).sum(-1) * valid
    if reduction == "mean":
        nll, smooth = nll.sum() / wt.sum(), smooth.sum() / (wt.sum() if weight is not None else valid.sum())
    elif reduction == "sum":
        nll, smooth = nll.sum(), smooth.sum()
    return (1 - label_smoothing) * nll + label_smoothing / c * smooth


def _numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


@pytest.mark.parametrize("shape", [(1, 3, 4), (2, 3, 4), (2, 3, 2, 2)])
def test_cross_entropy_spatial_targets(shape):
    rng = np.random.default_rng(0)
    a = rng.normal(size=shape)
    t = rng.integers(0, shape[1], size=(shape[0],) + shape[2:])
    x = S.tensor(a, requires_grad=True)
    loss = F.cross_entropy(x, S.tensor(t))
    loss.backward()
    assert loss.item() == pytest.approx(_ce_closed_form(a, t))
    np.testing.assert_allclose(x.grad.numpy(), _numeric_grad(lambda v: _ce_closed_form(v, t), a), atol=1e-7)


CE_CASES = [
    dict(),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(weight=np.array([1.0, 2.0, 3.0])),
    dict(weight=np.array([1.0, 2.0, 3.0]), reduction="sum"),
    dict(label_smoothing=0.1),
    dict(label_smoothing=0.2, weight=np.array([0.5, 2.0, 1.0])),
    dict(label_smoothing=0.2, weight=np.array([0.5, 2.0, 1.0]), reduction="none"),
    dict(ignore_index=1),
]


@pytest.mark.parametrize("kw", CE_CASES)
@pytest.mark.parametrize("spatial", [False, True])
def test_cross_entropy_options_closed_form(kw, spatial):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 3, 2) if spatial else (4, 3))
    t = np.array([[0, 1], [2, -100], [1, 1], [2, 0]]) if spatial else np.array([0, -100, 1, 2])
    if "ignore_index" in kw:
        t = np.where(t == -100, 2, t)
    w = kw.get("weight")
    kws = {**kw, "weight": None if w is None else S.tensor(w)}
    x = S.tensor(a, requires_grad=True)
    out = F.cross_entropy(x, S.tensor(t), **kws)
    out.sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), _ce_closed_form(a, t, **kw), rtol=1e-12)
    num = _numeric_grad(lambda v: np.sum(_ce_closed_form(v, t, **kw)), a)
    np.testing.assert_allclose(x.grad.numpy(), num, atol=1e-7)


@pytest.mark.parametrize("kw", CE_CASES)
def test_cross_entropy_and_nll_options_against_torch(kw):
    torch = _torch()
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4, 3, 2))
    t = np.array([[0, 1], [2, -100], [1, 1], [2, 0]])
    if "ignore_index" in kw:
        t = np.where(t == -100, 2, t)
    res = []
    for lib in (S, torch):
        w = kw.get("weight")
        kws = {**kw, "weight": None if w is None else lib.tensor(w)}
        x = lib.tensor(a, requires_grad=True)
        ce = lib.nn.functional.cross_entropy(x, lib.tensor(t), **kws)
        kws.pop("label_smoothing", None)
        nll = lib.nn.functional.nll_loss(x, lib.tensor(t), **kws)
        (ce.sum() + 2 * nll.sum()).backward()
        res.append((ce.detach().numpy(), nll.detach().numpy(), x.grad.numpy()))
    for mine, theirs in zip(res[0], res[1], strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)


def test_cross_entropy_unbatched_and_probability_targets_and_module():
    a = np.array([0.3, -1.0, 2.0])
    x = S.tensor(a, requires_grad=True)
    loss = F.cross_entropy(x, S.tensor(2), label_smoothing=0.3)
    assert loss.item() == pytest.approx(_ce_closed_form(a[None], np.array([2]), label_smoothing=0.3))
    p = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    b = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.0]])
    got = F.cross_entropy(S.tensor(b), S.tensor(p), label_smoothing=0.1).item()
    q = p * 0.9 + 0.1 / 3
    logp = b - np.log(np.exp(b).sum(1, keepdims=True))
    assert got == pytest.approx(-(q * logp).sum(1).mean())
    crit = nn.CrossEntropyLoss(weight=S.tensor([1.0, 2.0, 3.0]), ignore_index=0, reduction="sum")
    assert crit(S.tensor(b), S.tensor([0, 2])).item() == pytest.approx(-3.0 * logp[1, 2])
    assert nn.NLLLoss(weight=S.tensor([1.0, 2.0, 3.0]))(S.tensor(b), S.tensor([1, 2])).item() \
        == pytest.approx(-(2 * 0.2 + 3 * 0.0) / 5)


# ------------------------------------------------------------------ in-place changes and views
def test_view_of_nonleaf_sees_inplace_change_of_base():
    x = S.tensor([0.0, 1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    v = y[1:3]
    y.mul_(2)
    (v * S.tensor([1.0, 10.0])).sum().backward()
    assert v.tolist() == [2.0, 4.0]
    assert x.grad.tolist() == [0.0, 2.0, 20.0, 0.0]


def test_sibling_and_nested_views_follow_inplace_changes():
    x = S.tensor([0.5, 1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    v, w = y[1:3], y[0:2]
    v.mul_(3)                      # y = [x0, 3x1, 3x2, x3]; w = [x0, 3x1]
    (w * S.tensor([1.0, 10.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 30.0, 0.0, 0.0]
    x.grad = None
    y = x * 1
    u = y[1:][1:]                  # a view of a view
    t = y.reshape(2, 2).t()        # a reshape/transpose view
    y.mul_(x)                      # y = x**2
    ((u * u).sum() + (t * S.tensor([[1.0, 2.0], [3.0, 4.0]])).sum()).backward()
    # u = x[2:]**2 -> 4 x**3 ; t[i, j] = y[2j + i] with weight [[1,2],[3,4]][i][j]: y weights [1,3,2,4]
    expect = 4 * np.array([0, 0, 2.0, 3.0]) ** 3 + 2 * np.array([0.5, 1, 2, 3]) * np.array([1, 3, 2, 4])
    np.testing.assert_allclose(x.grad.numpy(), expect)


def test_views_against_torch():
    torch = _torch()

    def run(lib):
        x = lib.tensor([0.5, 1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        y = x * 2
        v = y[::2]
        y[1] = 5 * x[0]
        z = y[1:3]
        y.sin_()
        ((v * v).sum() + (z * 3).sum() + y.sum()).backward()
        return x.grad.numpy()

    np.testing.assert_allclose(run(S), run(torch))


def test_retain_grad_follows_inplace_change():
    x = S.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    y.mul_(2)
    (y * y).sum().backward()
    assert y.grad.tolist() == [12.0, 24.0]      # d(y*y)/dy for the new y = 6x
    assert x.grad.tolist() == [72.0, 144.0]


def test_only_the_values_rules_need_are_guarded_against_inplace_changes():
    for op, expect in [(lambda b: b * 3, [3.0, 3.0, 3.0]),
                       (lambda b: 3 * b, [3.0, 3.0, 3.0]),
                       (lambda b: b / 2, [0.5, 0.5, 0.5]),
                       (lambda b: 1 / b, [-1.0, -0.25, -1 / 9]),
                       (lambda b: 2 / b, [-2.0, -0.5, -2 / 9]),
                       (lambda b: S.where(b > 1, b, b * 2), [2.0, 1.0, 1.0])]:
        a = S.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = a * 1
        c = op(b)
        b.add_(1)
        c.sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), expect)
    x = S.tensor([0.1, 0.2], requires_grad=True)
    y = x * 1
    y.div_(2)
    y.clamp_(0.0, 1.6)
    y.sum().backward()
    assert x.grad.tolist() == [0.5, 0.5]
    # a value a rule does need is still guarded
    a = S.tensor([1.0, 2.0], requires_grad=True)
    w = S.tensor([3.0, 4.0], requires_grad=True)
    b = a * 1
    c = b * w
    b.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.sum().backward()


# ------------------------------------------------------------------------------------ max / min
def test_max_min_dim_send_the_gradient_to_the_returned_index():
    x = S.tensor([[7.0, 2.0, 7.0]], requires_grad=True)
    v, i = x.max(dim=1)
    v.sum().backward()
    assert i.tolist() == [0] and x.grad.tolist() == [[1.0, 0.0, 0.0]]
    a = np.array([[[7.0, 2, 7], [1, 1, 0]], [[3, 3, 3], [0, 5, 5]]])
    for op, arg in (("max", np.argmax), ("min", np.argmin)):
        for dim in (0, 1, 2, -1):
            for keepdim in (False, True):
                x = S.tensor(a, requires_grad=True)
                v, i = getattr(S, op)(x, dim, keepdim=keepdim)
                w = np.arange(v.numel(), dtype=float).reshape(tuple(v.shape))
                (v * S.tensor(w)).sum().backward()
                idx = arg(a, axis=dim)
                assert i.tolist() == (np.expand_dims(idx, dim) if keepdim else idx).tolist()
                expect = np.zeros_like(a)
                np.put_along_axis(expect, np.expand_dims(idx, dim),
                                  w if keepdim else np.expand_dims(w, dim), axis=dim)
                np.testing.assert_array_equal(x.grad.numpy(), expect)
    x = S.tensor([3.0, 3.0], requires_grad=True)
    x.max().backward()                   # no dim: the NumPy rule, split evenly across ties
    assert x.grad.tolist() == [0.5, 0.5]


def test_max_dim_against_torch():
    torch = _torch()
    a = np.array([[[7.0, 2, 7], [1, 1, 0]], [[3, 3, 3], [0, 5, 5]]])
    res = []
    for lib in (S, torch):
        x = lib.tensor(a, requires_grad=True)
        v, _ = x.max(1)
        u, _ = lib.min(x, -1, keepdim=True)
        (v.sum() + 2 * u.sum()).backward()
        res.append(x.grad.numpy())
    np.testing.assert_array_equal(res[0], res[1])


# ------------------------------------------------------------------------------------------- dtypes
def test_sum_mean_dtype_and_integer_floor_division():
    i = S.tensor([5, -7, 9])
    m = i.mean(dtype=S.float64)
    assert m.dtype == S.float64 and m.item() == pytest.approx(7 / 3)
    x = S.tensor([1.0, 2.0], dtype=S.float32, requires_grad=True)
    s = x.sum(dtype=S.float64)
    assert s.dtype == S.float64 and s.item() == 3.0
    s.backward()
    assert x.grad.dtype == S.float32 and x.grad.tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="could not infer output dtype"):
        i.mean()
    q = i // 2
    assert q.dtype == S.int64 and q.tolist() == [2, -4, 4]
    assert (17 // S.tensor([5, -5])).tolist() == [3, -4]
    assert (S.tensor([5.0]) // 2).dtype == S.float32


def test_relu_reads_its_output_so_an_inplace_change_of_its_input_is_fine():
    import srcgrad as sgt

    x = sgt.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    b = x * 1.0
    c = b.relu()
    b.add_(1)
    c.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0]


def test_a_reassigned_buffer_is_the_one_state_dict_returns():
    import srcgrad as sgt

    class Counter(sgt.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("count", sgt.zeros(2))

        def forward(self, x):
            self.count = self.count + 1
            return x

    m = Counter()
    m(sgt.ones(2))
    m(sgt.ones(2))
    assert m.state_dict()["count"].tolist() == [2.0, 2.0]
    assert [b.tolist() for b in m.buffers()] == [[2.0, 2.0]]


def test_softplus_module_with_beta_and_threshold():
    import math

    import srcgrad as sgt

    x = sgt.tensor([-1.0, 0.5, 3.0], dtype=sgt.float64, requires_grad=True)
    y = sgt.nn.Softplus(beta=2.0, threshold=5.0)(x)
    want = [math.log1p(math.exp(-2.0)) / 2, math.log1p(math.exp(1.0)) / 2, 3.0]  # 2 * 3 > 5: x itself
    assert y.tolist() == pytest.approx(want, rel=1e-14)
    y.sum().backward()
    assert x.grad.tolist() == pytest.approx([1 / (1 + math.exp(2.0)), 1 / (1 + math.exp(-1.0)), 1.0])
