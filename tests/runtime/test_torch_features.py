"""Tutorial-level PyTorch features: gather/scatter, sort/topk/argsort, masked_fill, index_select,
amax/amin, isnan/isinf/isfinite, isclose/allclose, add/sub(alpha=), nn.utils clipping, nn.init and
grad_fn names. Values and gradients against PyTorch (skipped without it) and closed forms (always)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import srcgrad as sg

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4))  # no ties
IDX = np.array([[0, 1, 2, 0], [2, 2, 1, 0]])


def _torch():
    return pytest.importorskip("torch")


def _both(f, *arrays, w=None):
    """(value, grads) of f on srcgrad and on PyTorch, the backward seeded with w (random by default)."""
    torch = _torch()
    out = []
    for lib in (sg, torch):
        xs = [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays]
        y = f(lib, *xs)
        seed = np.random.default_rng(1).standard_normal(tuple(y.shape)) if w is None else w
        (y * lib.tensor(seed, dtype=lib.float64)).sum().backward()
        out.append((y.detach().numpy(), [x.grad.numpy() for x in xs]))
    return out


def _check(f, *arrays):
    (v, gs), (tv, tgs) = _both(f, *arrays)
    np.testing.assert_allclose(v, tv, rtol=1e-12, atol=1e-12)
    for g, tg in zip(gs, tgs, strict=True):
        np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------- gather/scatter
def test_gather_closed_form():
    x = sg.tensor(X, requires_grad=True)
    y = sg.gather(x, 0, sg.tensor(IDX))
    np.testing.assert_allclose(y.detach().numpy(), np.take_along_axis(X, IDX, 0))
    y.sum().backward()
    expect = np.zeros_like(X)
    np.add.at(expect, (IDX, np.arange(4)[None, :]), 1.0)  # repeats accumulate
    np.testing.assert_allclose(x.grad.numpy(), expect)


@pytest.mark.parametrize("dim,idx", [(0, IDX), (1, np.array([[3, 0], [1, 1], [0, 2]])),
                                     (1, np.array([[3], [1]])), (-1, np.array([[0, 0, 3, 3, 1]] * 3))])
def test_gather_torch(dim, idx):
    _check(lambda lib, x: lib.gather(x, dim, lib.tensor(idx)), X)
    _check(lambda lib, x: x.gather(dim, lib.tensor(idx)), X)


def test_scatter_torch():
    idx = np.array([[0, 1, 2, 0], [2, 0, 1, 1]])  # no position written twice
    src = RNG.standard_normal((2, 5))
    _check(lambda lib, x, s: x.scatter(0, lib.tensor(idx), s), X, src[:, :4])
    _check(lambda lib, x, s: lib.scatter(x, 1, lib.tensor(idx[:, :2]), s), X[:2], src[:, :2])
    _check(lambda lib, x: x.scatter(0, lib.tensor(idx), 2.5), X)
    rep = np.array([[0, 0, 2, 0], [0, 0, 1, 0]])  # scatter_add: repeats accumulate
    _check(lambda lib, x, s: x.scatter_add(0, lib.tensor(rep), s), X, src[:, :4])
    _check(lambda lib, x, s: lib.scatter_add(x, 1, lib.tensor(rep[:, :2]), s), X[:2], src[:, :2])


def test_scatter_add_closed_form():
    x = sg.zeros(3)
    y = x.scatter_add(0, sg.tensor([0, 0, 2]), sg.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(y.numpy(), [3.0, 0.0, 3.0])
    np.testing.assert_array_equal(x.numpy(), [0.0, 0.0, 0.0])  # out of place
    s = sg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)  # src larger than index
    z = sg.zeros(2, 2).scatter(1, sg.tensor([[1], [0]]), s)
    np.testing.assert_array_equal(z.detach().numpy(), [[0.0, 1.0], [4.0, 0.0]])
    z.sum().backward()
    np.testing.assert_array_equal(s.grad.numpy(), [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])


# ----------------------------------------------------------------------------------- sort/topk/argsort
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_torch(dim, descending):
    torch = _torch()
    _check(lambda lib, x: lib.sort(x, dim=dim, descending=descending).values, X)
    _check(lambda lib, x: x.sort(dim, descending).values, X)
    s, t = sg.sort(sg.tensor(X), dim, descending), torch.sort(torch.tensor(X), dim, descending)
    np.testing.assert_array_equal(s.indices.numpy(), t.indices.numpy())
    np.testing.assert_array_equal(sg.argsort(sg.tensor(X), dim=dim, descending=descending).numpy(),
                                  torch.argsort(torch.tensor(X), dim=dim, descending=descending).numpy())


def test_sort_closed_form_and_ties():
    v, i = sg.sort(sg.tensor([3.0, 1.0, 2.0, 1.0]), descending=True)
    np.testing.assert_array_equal(v.numpy(), [3.0, 2.0, 1.0, 1.0])
    np.testing.assert_array_equal(i.numpy(), [0, 2, 1, 3])  # ties keep their order (stable)
    x = sg.tensor([3.0, 1.0, 2.0], requires_grad=True)
    (sg.sort(x).values * sg.tensor([1.0, 10.0, 100.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [100.0, 1.0, 10.0])


@pytest.mark.parametrize("k,dim,largest", [(2, -1, True), (1, 0, True), (3, 1, False), (3, 0, False)])
def test_topk_torch(k, dim, largest):
    torch = _torch()
    _check(lambda lib, x: lib.topk(x, k, dim=dim, largest=largest).values, X)
    _check(lambda lib, x: x.topk(k, dim, largest).values, X)
    np.testing.assert_array_equal(sg.topk(sg.tensor(X), k, dim, largest).indices.numpy(),
                                  torch.topk(torch.tensor(X), k, dim, largest).indices.numpy())


def test_topk_closed_form():
    v, i = sg.topk(sg.tensor([1.0, 5.0, 3.0, 4.0]), 2)
    np.testing.assert_array_equal(v.numpy(), [5.0, 4.0])
    np.testing.assert_array_equal(i.numpy(), [1, 3])


# -------------------------------------------------------------------------- masks, selection, amax/amin
def test_masked_fill_torch():
    m = X > 0
    _check(lambda lib, x: x.masked_fill(lib.tensor(m), -1.5), X)
    _check(lambda lib, x: x.masked_fill(lib.tensor(m[0]), float("-inf")).exp(), X)  # broadcast mask
    x = sg.tensor([1.0, 2.0], requires_grad=True)
    x.masked_fill(sg.tensor([True, False]), 0.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0])
    assert sg.tensor([1, 2]).masked_fill(sg.tensor([True, False]), 7).dtype == sg.int64


def test_index_select_torch():
    idx = np.array([2, 0, 2])
    _check(lambda lib, x: lib.index_select(x, 0, lib.tensor(idx)), X)
    _check(lambda lib, x: x.index_select(1, lib.tensor(idx)), X)
    x = sg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    sg.index_select(x, 0, sg.tensor([2, 2])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 2.0])


@pytest.mark.parametrize("fn", ["amax", "amin"])
@pytest.mark.parametrize("dim,keepdim", [((), False), (0, False), (1, True), ((0, 1), True), (-1, False)])
def test_amax_amin_torch(fn, dim, keepdim):
    tied = np.array([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, -4.0, -4.0], [2.0, 2.0, 2.0, 2.0]])
    _check(lambda lib, x: getattr(lib, fn)(x, dim=dim, keepdim=keepdim), tied)
    _check(lambda lib, x: getattr(x, fn)(dim, keepdim), X)


def test_amax_ties_closed_form():
    x = sg.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    sg.amax(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.5, 0.5, 0.0])


# ------------------------------------------------------------------------------------------ tests
def test_isnan_isinf_isfinite():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 0.0])
    x = sg.tensor(a)
    np.testing.assert_array_equal(sg.isnan(x).numpy(), np.isnan(a))
    np.testing.assert_array_equal(sg.isinf(x).numpy(), np.isinf(a))
    np.testing.assert_array_equal(sg.isfinite(x).numpy(), np.isfinite(a))
    np.testing.assert_array_equal(x.isnan().numpy(), np.isnan(a))
    assert not sg.isnan(sg.tensor([1, 2])).any()


def test_isclose_allclose():
    a = np.array([1.0, 1.0 + 1e-9, np.inf, np.nan, 1.0])
    b = np.array([1.0, 1.0, np.inf, np.nan, 1.1])
    np.testing.assert_array_equal(sg.isclose(sg.tensor(a), sg.tensor(b)).numpy(), np.isclose(a, b))
    np.testing.assert_array_equal(sg.isclose(sg.tensor(a), sg.tensor(b), equal_nan=True).numpy(),
                                  np.isclose(a, b, equal_nan=True))
    assert sg.allclose(sg.tensor([1.0, 2.0]), sg.tensor([1.0, 2.0 + 1e-7]))
    assert not sg.allclose(sg.tensor([1.0, 2.0]), sg.tensor([1.0, 2.1]))
    assert sg.tensor([1.0]).allclose(sg.tensor([1.0 + 1e-4]), rtol=1e-3)
    torch = _torch()
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.2, "atol": 0.0}):
        np.testing.assert_array_equal(sg.isclose(sg.tensor(a), sg.tensor(b), **kw).numpy(),
                                      torch.isclose(torch.tensor(a), torch.tensor(b), **kw).numpy())


def test_add_sub_alpha():
    y = RNG.standard_normal((3, 4))
    x_, y_ = sg.tensor(X, requires_grad=True), sg.tensor(y, requires_grad=True)
    sg.add(x_, y_, alpha=2.0).sum().backward()
    np.testing.assert_allclose(y_.grad.numpy(), np.full((3, 4), 2.0))
    np.testing.assert_allclose(sg.sub(sg.tensor(X), sg.tensor(y), alpha=3).numpy(), X - 3 * y)
    _check(lambda lib, a, b: lib.add(a, b, alpha=-0.5), X, y)
    _check(lambda lib, a, b: lib.sub(a, b, alpha=2.0) + a.sub(b, alpha=3) + a.add(b, alpha=4), X, y)


# -------------------------------------------------------------------------------------------- nn
def _model():
    sg.manual_seed(0)
    return sg.nn.Sequential(sg.nn.Linear(3, 4), sg.nn.Tanh(), sg.nn.Linear(4, 2))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm(norm_type):
    m = _model()
    m(sg.tensor(RNG.standard_normal((5, 3)), dtype=sg.float32)).pow(2).sum().backward()
    grads = [p.grad.numpy().copy() for p in m.parameters()]
    flat = np.concatenate([g.ravel() for g in grads])
    total = np.max(np.abs(flat)) if math.isinf(norm_type) else \
        np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    ids = [id(p.grad) for p in m.parameters()]
    out = sg.nn.utils.clip_grad_norm_(m.parameters(), 0.1, norm_type=norm_type)
    np.testing.assert_allclose(float(out), total, rtol=1e-5)
    coef = min(0.1 / (total + 1e-6), 1.0)
    for p, g, i in zip(m.parameters(), grads, ids, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-5)
        assert id(p.grad) == i  # in place
    big = sg.nn.utils.clip_grad_norm_(m.parameters(), 1e6, norm_type=norm_type)  # no clipping above
    np.testing.assert_allclose(float(big), min(total, 0.1), rtol=1e-4)
    torch = _torch()
    ts = [torch.tensor(g) for g in grads]
    ps = [torch.zeros_like(t, requires_grad=True) for t in ts]
    for p, t in zip(ps, ts, strict=True):
        p.grad = t.clone()
    np.testing.assert_allclose(float(torch.nn.utils.clip_grad_norm_(ps, 0.1, norm_type)), total, rtol=1e-5)
    for p, q in zip(ps, m.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5)


def test_clip_grad_value():
    p = sg.nn.Parameter(sg.zeros(3))
    p.grad = sg.tensor([-2.0, 0.05, 3.0])
    sg.nn.utils.clip_grad_value_([p], 0.1)
    np.testing.assert_allclose(p.grad.numpy(), [-0.1, 0.05, 0.1])


def test_nn_init():
    init = sg.nn.init
    lin = sg.nn.Linear(200, 300)
    w = lin.weight
    for f, args, check in [
        (init.zeros_, (), lambda a: np.all(a == 0)), (init.ones_, (), lambda a: np.all(a == 1)),
        (init.constant_, (0.3,), lambda a: np.allclose(a, 0.3)),
        (init.uniform_, (-2.0, 2.0), lambda a: a.min() >= -2 and a.max() <= 2 and abs(a.mean()) < 0.05),
        (init.normal_, (1.0, 0.5), lambda a: abs(a.mean() - 1) < 0.01 and abs(a.std() - 0.5) < 0.01),
        (init.xavier_uniform_, (), lambda a: np.abs(a).max() <= math.sqrt(6 / 500)
         and abs(a.std() - math.sqrt(2 / 500)) < 0.003),
        (init.kaiming_uniform_, (math.sqrt(5),), lambda a: np.abs(a).max() <= 1 / math.sqrt(200)
         and np.abs(a).max() > 0.9 / math.sqrt(200)),
        (init.kaiming_uniform_, (), lambda a: abs(a.std() - math.sqrt(2 / 200)) < 0.003),
    ]:
        out = f(w, *args)
        assert out is w and w.requires_grad and w.grad_fn is None and w.dtype == sg.float32
        assert check(w.detach().numpy()), f.__name__
    sg.manual_seed(3)
    a = init.normal_(sg.nn.Parameter(sg.zeros(4))).detach().numpy().copy()
    sg.manual_seed(3)
    np.testing.assert_array_equal(init.normal_(sg.nn.Parameter(sg.zeros(4))).detach().numpy(), a)
    (lin(sg.ones(1, 200)).sum()).backward()  # still trains after init
    assert lin.weight.grad is not None
    assert init.calculate_gain("relu") == math.sqrt(2.0)
    torch = _torch()
    for nl, p in [("tanh", None), ("leaky_relu", 0.2), ("sigmoid", None), ("linear", None)]:
        assert math.isclose(init.calculate_gain(nl, p), torch.nn.init.calculate_gain(nl, p))


# ------------------------------------------------------------------------------------------ grad_fn
def test_grad_fn_names():
    x = sg.randn(2, 3, requires_grad=True)
    assert type(x.t().grad_fn).__name__ == "TBackward0"
    assert type(x.transpose(0, 1).grad_fn).__name__ == "TransposeBackward0"
    assert type(x.mT.grad_fn).__name__ == "TransposeBackward0"
    assert type(x.permute(1, 0).grad_fn).__name__ == "PermuteBackward0"
    assert type(x.clone().grad_fn).__name__ == "CloneBackward0"
    assert type(x.double().grad_fn).__name__ == "ToCopyBackward0"
    y = x.clone()
    (y * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))
    (x.t() * sg.tensor([[1.0, 2.0]])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.array([[3.0] * 3, [4.0] * 3]))


def test_inplace_forms():
    x = sg.zeros(2, 3)
    x.scatter_(1, sg.tensor([[2], [0]]), 1.0)  # one-hot
    np.testing.assert_array_equal(x.numpy(), [[0, 0, 1], [1, 0, 0]])
    x.scatter_add_(1, sg.tensor([[2], [2]]), sg.ones(2, 1))
    np.testing.assert_array_equal(x.numpy(), [[0, 0, 2], [1, 0, 1]])
    x.masked_fill_(x > 1, -1.0)
    np.testing.assert_array_equal(x.numpy(), [[0, 0, -1], [1, 0, 1]])
    w = sg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = w * 1.0
    y.masked_fill_(sg.tensor([False, True, False]), 0.0)
    (y * sg.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 0.0, 3.0])


def test_clamp_min_and_clamp_max():
    """torch.clamp_min / clamp_max and their Tensor methods, on the tape and in compiled code."""
    import srcgrad as torch

    a = torch.tensor([1.0, -1.0, 0.5], requires_grad=True)
    (a.clamp_min(0.0) * 2 + torch.clamp_max(a, 0.7) ** 2).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [2.0, -2.0, 3.0])

    def f(x):
        return np.sum(torch.clamp_min(x, 0.0) ** 2) + np.sum(torch.clamp_max(x, 0.7))

    np.testing.assert_allclose(torch.grad(f)(np.array([1.0, -1.0, 0.5])), [2.0, 1.0, 2.0])


def test_index_add_accumulates_repeated_positions_times_alpha():
    import srcgrad as torch

    xa = np.arange(12.0).reshape(4, 3) / 7.0
    sa = np.cos(np.arange(9.0)).reshape(3, 3)
    x = torch.tensor(xa, requires_grad=True)
    s = torch.tensor(sa, requires_grad=True)
    out = x.index_add(0, torch.tensor([0, 2, 0]), s, alpha=2.0)
    want = xa.copy()
    np.add.at(want, [0, 2, 0], 2.0 * sa)
    np.testing.assert_allclose(out.detach().numpy(), want)
    (out ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * want)
    np.testing.assert_allclose(s.grad.numpy(), 2.0 * 2.0 * want[[0, 2, 0]])


def test_linalg_matrix_norm_orders():
    import srcgrad as torch

    a = np.cos(np.arange(18.0)).reshape(2, 3, 3) + np.eye(3)
    m = torch.tensor(a, requires_grad=True)
    for ord_, want in [("fro", np.sqrt(np.sum(a ** 2, axis=(1, 2)))),
                       ("nuc", np.sum(np.linalg.svd(a, compute_uv=False), axis=-1)),
                       (1, np.max(np.sum(np.abs(a), axis=1), axis=-1)),
                       (float("inf"), np.max(np.sum(np.abs(a), axis=2), axis=-1))]:
        m.grad = None
        n = torch.linalg.matrix_norm(m, ord=ord_)
        np.testing.assert_allclose(n.detach().numpy(), want, rtol=1e-12)
        n.sum().backward()
        assert m.grad is not None and m.grad.shape == (2, 3, 3)
    m.grad = None
    torch.linalg.matrix_norm(m).sum().backward()  # Frobenius: a / ||a||
    np.testing.assert_allclose(m.grad.numpy(), a / np.sqrt(np.sum(a ** 2, axis=(1, 2)))[:, None, None])
