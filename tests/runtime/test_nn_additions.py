"""nn/optim additions: GELU, LeakyReLU, ELU, SiLU, LayerNorm, Embedding, BCE/BCEWithLogits/Huber/SmoothL1
losses, AdamW, RMSprop, Adagrad and lr_scheduler, checked against closed forms and (float64) PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import srcgrad as torch
import srcgrad.nn.functional as F
from srcgrad import nn, optim


def _t(a, grad=True):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _np(t):
    return t.detach().numpy()


def _run(fn, *arrays):
    """Value and gradients of sum(fn(*tensors) * w) for a fixed random cotangent w."""
    xs = [_t(a) for a in arrays]
    out = fn(*xs)
    w = np.random.default_rng(7).standard_normal(tuple(out.shape))
    (out * torch.tensor(w)).sum().backward()
    return _np(out), [_np(x.grad) for x in xs]


def _run_torch(tt, fn, *arrays):
    xs = [tt.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*xs)
    w = np.random.default_rng(7).standard_normal(tuple(out.shape))
    (out * tt.tensor(w)).sum().backward()
    return out.detach().numpy(), [x.grad.numpy() for x in xs]


def _check_against_torch(fn_ours, fn_torch, *arrays, tol=1e-10):
    tt = pytest.importorskip("torch")
    v, gs = _run(fn_ours, *arrays)
    tv, tgs = _run_torch(tt, fn_torch, *arrays)
    np.testing.assert_allclose(v, tv, rtol=tol, atol=tol)
    for g, tg in zip(gs, tgs, strict=True):
        np.testing.assert_allclose(g, tg, rtol=tol, atol=tol)


X = np.random.default_rng(0).standard_normal((3, 5)) * 2.0


# ============================================================================================ activations
def test_activations_closed_form():
    x = np.array([-3.0, -1.0, -0.5, 0.5, 1.0, 3.0])
    erf = np.vectorize(math.erf)
    v, (g,) = _run(F.gelu, x)
    w = np.random.default_rng(7).standard_normal(x.shape)
    np.testing.assert_allclose(v, 0.5 * x * (1 + erf(x / math.sqrt(2))), rtol=1e-12)
    pdf = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(g, w * (0.5 * (1 + erf(x / math.sqrt(2))) + x * pdf), rtol=1e-12)
    v, (g,) = _run(lambda t: F.leaky_relu(t, 0.2), x)
    np.testing.assert_allclose(v, np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(g, w * np.where(x > 0, 1.0, 0.2))
    v, (g,) = _run(lambda t: F.elu(t, 1.5), x)
    np.testing.assert_allclose(v, np.where(x > 0, x, 1.5 * np.expm1(x)), rtol=1e-12)
    np.testing.assert_allclose(g, w * np.where(x > 0, 1.0, 1.5 * np.exp(x)), rtol=1e-12)
    s = 1 / (1 + np.exp(-x))
    v, (g,) = _run(F.silu, x)
    np.testing.assert_allclose(v, x * s, rtol=1e-12)
    np.testing.assert_allclose(g, w * (s + x * s * (1 - s)), rtol=1e-12)


def test_elu_large_input_has_finite_gradient():
    x = _t([1000.0, -1000.0])
    F.elu(x).sum().backward()
    np.testing.assert_array_equal(_np(x.grad), [1.0, 0.0])


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "leaky_relu", "elu", "silu"])
def test_activations_match_torch(name):
    tt = pytest.importorskip("torch")
    ours = {"gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"), "leaky_relu": nn.LeakyReLU(0.1),
            "elu": nn.ELU(alpha=0.7), "silu": nn.SiLU()}[name]
    theirs = {"gelu": tt.nn.GELU(), "gelu_tanh": tt.nn.GELU(approximate="tanh"),
              "leaky_relu": tt.nn.LeakyReLU(0.1), "elu": tt.nn.ELU(alpha=0.7), "silu": tt.nn.SiLU()}[name]
    x = np.concatenate([X.ravel(), [0.0]])
    _check_against_torch(ours, theirs, x)


# ================================================================================== LayerNorm, Embedding
def test_layer_norm_closed_form():
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    ln = nn.LayerNorm(4, eps=1e-6).double()
    out = _np(ln(_t(x)))
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(out, (x - mu) / np.sqrt(var + 1e-6), rtol=1e-12)
    assert [n for n, _ in ln.named_parameters()] == ["weight", "bias"]
    assert list(nn.LayerNorm([3, 4], elementwise_affine=False).parameters()) == []


@pytest.mark.parametrize("shape", [4, (3, 4)])
def test_layer_norm_matches_torch(shape):
    tt = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4))
    nshape = (shape,) if isinstance(shape, int) else shape
    w, b = rng.standard_normal(nshape), rng.standard_normal(nshape)
    _check_against_torch(lambda x, w, b: F.layer_norm(x, shape, w, b, 1e-5),
                         lambda x, w, b: tt.nn.functional.layer_norm(x, nshape, w, b, 1e-5), x, w, b)
    ours, theirs = nn.LayerNorm(shape).double(), tt.nn.LayerNorm(shape).double()
    ours.load_state_dict({"weight": torch.tensor(w), "bias": torch.tensor(b)})
    theirs.load_state_dict({"weight": tt.tensor(w), "bias": tt.tensor(b)})
    np.testing.assert_allclose(_np(ours(_t(x))), theirs(tt.tensor(x)).detach().numpy(), rtol=1e-10,
                               atol=1e-12)


def test_embedding_scatter_adds_gradient():
    emb = nn.Embedding(5, 3).double()
    idx = torch.tensor([[0, 1, 1], [4, 1, 0]])
    out = emb(idx)
    assert tuple(out.shape) == (2, 3, 3)
    np.testing.assert_array_equal(_np(out), _np(emb.weight)[np.array([[0, 1, 1], [4, 1, 0]])])
    out.sum().backward()
    counts = np.array([[2.0], [3.0], [0.0], [0.0], [1.0]])
    np.testing.assert_array_equal(_np(emb.weight.grad), counts * np.ones(3))
    pad = nn.Embedding(4, 2, padding_idx=1)
    np.testing.assert_array_equal(_np(pad.weight)[1], [0.0, 0.0])
    pad(torch.tensor([1, 2, 1])).sum().backward()
    np.testing.assert_array_equal(_np(pad.weight.grad), [[0, 0], [0, 0], [1, 1], [0, 0]])


def test_embedding_matches_torch():
    tt = pytest.importorskip("torch")
    w = np.random.default_rng(3).standard_normal((6, 4))
    idx = np.array([[1, 5, 1], [0, 2, 5]])
    _check_against_torch(lambda w: F.embedding(torch.tensor(idx), w, padding_idx=5),
                         lambda w: tt.nn.functional.embedding(tt.tensor(idx), w, padding_idx=5), w)
    e = nn.Embedding.from_pretrained(torch.tensor(w), freeze=True)
    assert not e.weight.requires_grad and tuple(e(torch.tensor([2])).shape) == (1, 4)


# ================================================================================================= losses
P_ = 1 / (1 + np.exp(-X))
TGT = (np.random.default_rng(4).random(X.shape) > 0.5).astype(np.float64) * 0.8 + 0.1


def test_losses_closed_form():
    x, t = np.array([0.2, 0.7]), np.array([0.0, 1.0])
    v = float(F.binary_cross_entropy(_t(x), _t(t, False)))
    assert v == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2, rel=1e-12)
    z = np.array([-50.0, 0.0, 50.0])
    v = _np(F.binary_cross_entropy_with_logits(_t(z), _t([1.0, 1.0, 0.0], False), reduction="none"))
    np.testing.assert_allclose(v, [50.0, math.log(2), 50.0], rtol=1e-12)
    d = np.array([0.5, 3.0])
    zero = _t([0.0, 0.0], False)
    np.testing.assert_allclose(_np(F.huber_loss(_t(d), zero, reduction="none", delta=2.0)),
                               [0.125, 2.0 * (3.0 - 1.0)])
    np.testing.assert_allclose(_np(F.smooth_l1_loss(_t(d), zero, reduction="none", beta=2.0)),
                               [0.0625, 2.0])
    assert float(nn.SmoothL1Loss(reduction="sum", beta=0.0)(_t(d), _t([0.0, 0.0]))) == 3.5


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_losses_match_torch(reduction):
    tt = pytest.importorskip("torch")
    tf = tt.nn.functional
    t, tw = torch.tensor(TGT), tt.tensor(TGT)
    wt = np.random.default_rng(5).random(X.shape[1])
    pw = np.random.default_rng(6).random(X.shape[1]) * 3
    _check_against_torch(lambda x: nn.BCELoss(reduction=reduction)(x, t),
                         lambda x: tt.nn.BCELoss(reduction=reduction)(x, tw), P_)
    _check_against_torch(lambda x: F.binary_cross_entropy(x, t, torch.tensor(wt), reduction=reduction),
                         lambda x: tf.binary_cross_entropy(x, tw, tt.tensor(wt), reduction=reduction), P_)
    _check_against_torch(
        lambda x: nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=torch.tensor(pw),
                                       weight=torch.tensor(wt))(x, t),
        lambda x: tt.nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=tt.tensor(pw),
                                          weight=tt.tensor(wt))(x, tw), X * 10)
    _check_against_torch(lambda x: F.binary_cross_entropy_with_logits(x, t, reduction=reduction),
                         lambda x: tf.binary_cross_entropy_with_logits(x, tw, reduction=reduction), X)
    for delta in (0.5, 1.0, 2.5):
        _check_against_torch(nn.HuberLoss(reduction=reduction, delta=delta),
                             tt.nn.HuberLoss(reduction=reduction, delta=delta), X, TGT)
        _check_against_torch(nn.SmoothL1Loss(reduction=reduction, beta=delta),
                             tt.nn.SmoothL1Loss(reduction=reduction, beta=delta), X, TGT)
    _check_against_torch(lambda x, y: F.smooth_l1_loss(x, y, reduction=reduction, beta=0.0),
                         lambda x, y: tf.smooth_l1_loss(x, y, reduction=reduction, beta=0.0), X, TGT)


# ============================================================================================= optimizers
def _quad_steps(make_opt, steps=6, tt=None):
    """Parameters after `steps` optimizer steps on sum((A p - b)^2) + sum(q^2)."""
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal(4)
    p0, q0 = rng.standard_normal(3), rng.standard_normal(2)
    lib = torch if tt is None else tt
    p = lib.tensor(p0.copy(), requires_grad=True)
    q = lib.tensor(q0.copy(), requires_grad=True)
    A, B = lib.tensor(a), lib.tensor(b)
    opt = make_opt(lib, [{"params": [p]}, {"params": [q], "lr": 0.03}])
    for _ in range(steps):
        opt.zero_grad()
        r = A @ p - B
        ((r * r).sum() + (q * q).sum()).backward()
        opt.step()
    return p.detach().numpy(), q.detach().numpy()


OPTIMIZERS = {
    "adamw": lambda lib, ps: lib.optim.AdamW(ps, lr=0.1, weight_decay=0.2),
    "adamw_amsgrad": lambda lib, ps: lib.optim.AdamW(ps, lr=0.1, amsgrad=True),
    "rmsprop": lambda lib, ps: lib.optim.RMSprop(ps, lr=0.01),
    "rmsprop_full": lambda lib, ps: lib.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1,
                                                      momentum=0.5, centered=True),
    "adagrad": lambda lib, ps: lib.optim.Adagrad(ps, lr=0.1),
    "adagrad_full": lambda lib, ps: lib.optim.Adagrad(ps, lr=0.1, lr_decay=0.05, weight_decay=0.1,
                                                      initial_accumulator_value=0.3),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_match_torch(name):
    tt = pytest.importorskip("torch")
    ours = _quad_steps(OPTIMIZERS[name])
    theirs = _quad_steps(OPTIMIZERS[name], tt=tt)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_adamw_decay_is_decoupled_and_adagrad_first_step():
    p = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    opt = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    p.grad = torch.tensor([0.0], dtype=torch.float64)
    opt.step()  # zero gradient: Adam moves nothing, the decay alone shrinks p by lr * wd
    assert float(p) == pytest.approx(2.0 * (1 - 0.05), rel=1e-12)
    assert opt.param_groups[0]["weight_decay"] == 0.5
    q = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    q.grad = torch.tensor([3.0, -0.5], dtype=torch.float64)
    optim.Adagrad([q], lr=0.1).step()  # first step moves each entry by lr * sign(g)
    np.testing.assert_allclose(_np(q), [0.9, -0.9], rtol=1e-9)


# ========================================================================================== lr_scheduler
def _lrs(lib, make, n=12):
    p = lib.zeros(1, requires_grad=True)
    opt = lib.optim.SGD([{"params": [p]}, {"params": [lib.zeros(1, requires_grad=True)], "lr": 0.5}], lr=0.1)
    sched = make(lib, opt)
    out = [sched.get_last_lr()]
    for _ in range(n):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == out[-1]
    return np.array(out)


SCHEDULERS = {
    "step": lambda lib, o: lib.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    "exp": lambda lib, o: lib.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
    "cosine": lambda lib, o: lib.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
}


def test_schedulers_closed_form():
    step = _lrs(torch, SCHEDULERS["step"])
    np.testing.assert_allclose(step[:, 0], [0.1 * 0.5 ** (e // 3) for e in range(13)], rtol=1e-12)
    exp = _lrs(torch, SCHEDULERS["exp"])
    np.testing.assert_allclose(exp[:, 1], [0.5 * 0.9 ** e for e in range(13)], rtol=1e-12)
    cos = _lrs(torch, SCHEDULERS["cosine"], n=5)
    np.testing.assert_allclose(cos[[0, 5], 0], [0.1, 0.01], rtol=1e-12)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_schedulers_match_torch(name):
    tt = pytest.importorskip("torch")
    np.testing.assert_allclose(_lrs(torch, SCHEDULERS[name]), _lrs(tt, SCHEDULERS[name]), rtol=1e-10,
                               atol=1e-14)
