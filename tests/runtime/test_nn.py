"""nn: Module registration and traversal, Linear's initialisation, activations, losses, functional."""

from __future__ import annotations

import math

import numpy as np
import pytest

import srcgrad as torch
import srcgrad.nn.functional as F
from srcgrad import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(3, 2, bias=False)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


def test_parameter_is_a_leaf_that_requires_grad():
    p = nn.Parameter(torch.zeros(2))
    assert isinstance(p, torch.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\ntensor([0., 0.], requires_grad=True)")
    assert not nn.Parameter(torch.zeros(1), requires_grad=False).requires_grad


def test_module_registration_and_traversal():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "fc2.weight"]
    assert len(list(net.parameters())) == 4
    assert [type(m).__name__ for m in net.children()] == ["Linear", "Tanh", "Linear"]
    assert [type(m).__name__ for m in net.modules()] == ["Net", "Linear", "Tanh", "Linear"]
    assert net.fc2.bias is None
    assert net.training and not net.eval().training and not net.fc1.training and net.train().fc1.training
    assert repr(net) == ("Net(\n  (fc1): Linear(in_features=4, out_features=3, bias=True)\n  (act): Tanh()\n"
                         "  (fc2): Linear(in_features=3, out_features=2, bias=False)\n)")


def test_state_dict_roundtrip_and_errors():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert list(sd) == ["scale", "fc1.weight", "fc1.bias", "fc2.weight"]
    assert not sd["fc1.weight"].requires_grad
    w_before = b.fc1.weight
    b.load_state_dict(sd)
    assert b.fc1.weight is w_before  # loaded in place: optimizers keep their parameters
    np.testing.assert_array_equal(b.fc1.weight.detach().numpy(), a.fc1.weight.detach().numpy())
    with pytest.raises(RuntimeError, match="Missing key"):
        b.load_state_dict({"scale": torch.ones(1)})
    bad = dict(sd)
    bad["scale"] = torch.ones(2)
    with pytest.raises(RuntimeError, match="size mismatch for scale"):
        b.load_state_dict(bad)


def test_zero_grad():
    net = Net()
    net(torch.randn(5, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_linear_default_initialisation_bounds():
    torch.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    assert w.shape == (300, 400) and b.shape == (300,) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # uniform on [-bound, bound]: variance bound^2 / 3 (kaiming_uniform with a = sqrt(5))
    assert w.var() == pytest.approx(bound ** 2 / 3, rel=0.05) and abs(w.mean()) < 0.01 * bound


def test_linear_forward_and_gradients():
    lin = nn.Linear(3, 2).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    y = lin(x)
    W, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), x.numpy() @ W.T + b)
    g = np.arange(8.0).reshape(4, 2)
    y.backward(torch.tensor(g))
    np.testing.assert_allclose(lin.weight.grad.numpy(), g.T @ x.numpy())
    np.testing.assert_allclose(lin.bias.grad.numpy(), g.sum(0))


def test_activations_and_sequential():
    x = torch.tensor([-1.0, 0.5, 2.0])
    assert nn.ReLU()(x).tolist() == [0.0, 0.5, 2.0]
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh(x.numpy()), rtol=1e-6)
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp(-x.numpy())), rtol=1e-6)
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and seq(torch.randn(2, 3)).shape == (2, 1)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_losses_and_functional():
    pred = torch.tensor([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([2, 1])
    logits = pred.detach().numpy()
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -(logp[0, 2] + logp[1, 1]) / 2
    loss = nn.CrossEntropyLoss()(pred, target)
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    soft = np.exp(logp)
    onehot = np.zeros_like(soft)
    onehot[0, 2] = onehot[1, 1] = 1
    np.testing.assert_allclose(pred.grad.numpy(), (soft - onehot) / 2)
    assert F.cross_entropy(pred, target, reduction="sum").item() == pytest.approx(2 * expected)
    t = torch.zeros(2, 3, dtype=torch.float64)
    assert nn.MSELoss()(pred, t).item() == pytest.approx((logits ** 2).mean())
    assert F.mse_loss(pred, t, reduction="sum").item() == pytest.approx((logits ** 2).sum())
    np.testing.assert_allclose(F.softmax(pred, dim=1).detach().numpy(), soft)
    np.testing.assert_allclose(F.log_softmax(pred, dim=1).detach().numpy(), logp)
    assert F.relu(torch.tensor([-1.0, 1.0])).tolist() == [0.0, 1.0]
    np.testing.assert_allclose(F.tanh(pred).detach().numpy(), np.tanh(logits))
    np.testing.assert_allclose(F.sigmoid(pred).detach().numpy(), 1 / (1 + np.exp(-logits)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CuPy and a GPU")
def test_training_step_on_cuda():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).cuda()
    assert all(p.is_cuda for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(8, 3, device="cuda"), torch.randn(8, 1, device="cuda")
    loss = F.mse_loss(model(x), y)
    loss.backward()
    w0 = model[0].weight.detach().cpu().numpy().copy()
    g0 = model[0].weight.grad.cpu().numpy()
    opt.step()
    np.testing.assert_allclose(model[0].weight.detach().cpu().numpy(), w0 - 0.1 * g0, rtol=1e-5, atol=1e-6)
    assert model[0].weight.grad.is_cuda


def test_deepcopy_keeps_dtypes_and_values():
    import copy

    net = nn.Linear(2, 2).double()
    twin = copy.deepcopy(net)
    assert twin.weight.dtype == torch.float64 and twin.weight is not net.weight
    np.testing.assert_array_equal(twin.weight.detach().numpy(), net.weight.detach().numpy())
    t = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    c = copy.deepcopy(t)
    assert c.dtype == torch.float64 and c.requires_grad and c.is_leaf
