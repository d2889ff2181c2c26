"""optim: SGD (momentum, dampening, weight decay, Nesterov) and Adam against their update formulas."""

from __future__ import annotations

import numpy as np
import pytest

import srcgrad as torch


def quadratic_steps(opt_factory, steps=4):
    """Minimise sum(c * x^2) for a few steps; return the iterates and gradients seen."""
    c = np.array([1.0, 3.0, -0.5])
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt = opt_factory([x])
    xs, gs = [x.detach().numpy().copy()], []
    for _ in range(steps):
        opt.zero_grad()
        (torch.tensor(c) * x * x).sum().backward()
        gs.append(x.grad.numpy().copy())
        opt.step()
        xs.append(x.detach().numpy().copy())
    return xs, gs


def test_sgd_plain():
    xs, gs = quadratic_steps(lambda p: torch.optim.SGD(p, lr=0.1))
    for k, g in enumerate(gs):
        np.testing.assert_allclose(xs[k + 1], xs[k] - 0.1 * g)


@pytest.mark.parametrize("momentum,dampening,wd,nesterov", [(0.9, 0.0, 0.0, False), (0.9, 0.3, 0.01, False),
                                                            (0.8, 0.0, 0.1, True)])
def test_sgd_momentum_formula(momentum, dampening, wd, nesterov):
    lr = 0.05
    xs, gs = quadratic_steps(lambda p: torch.optim.SGD(p, lr=lr, momentum=momentum, dampening=dampening,
                                                       weight_decay=wd, nesterov=nesterov))
    buf = None
    for k, g in enumerate(gs):
        d = g + wd * xs[k]
        buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
        step = d + momentum * buf if nesterov else buf
        np.testing.assert_allclose(xs[k + 1], xs[k] - lr * step)


def test_adam_formula():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    xs, gs = quadratic_steps(lambda p: torch.optim.Adam(p, lr=lr))
    m = v = 0
    for k, g in enumerate(gs):
        t = k + 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        np.testing.assert_allclose(xs[k + 1], xs[k] - lr * mhat / (np.sqrt(vhat) + eps), rtol=1e-7)


def test_zero_grad_default_sets_none_and_zero_fill_on_request():
    x = torch.ones(3, requires_grad=True)
    opt = torch.optim.SGD([x], lr=1.0)
    (x * 2).sum().backward()
    g = x.grad
    opt.zero_grad(set_to_none=False)
    assert x.grad is g and x.grad.tolist() == [0.0, 0.0, 0.0]
    opt.zero_grad()
    assert x.grad is None


def test_step_bumps_version_and_skips_missing_grads():
    x, y = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = torch.optim.SGD([{"params": [x]}, {"params": [y], "lr": 0.5}], lr=0.1)
    (x * 3).sum().backward()
    z = x * x  # saved x: stepping invalidates this graph
    opt.step()
    assert x.tolist() == pytest.approx([0.7, 0.7]) and y.tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["lr"] == 0.5


def test_training_reduces_loss():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x = torch.randn(32, 2)
    y = (x[:, :1] * 2 - x[:, 1:]).detach()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
