"""The eager Tensor: metadata, conversions, printing, factories, dtypes, operators, indexing, methods."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import srcgrad as torch
from srcgrad.runtime import backend


def fd_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of scalar f at float64 array x."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def check_grad(fn, *shapes, seed=0, positive=False, atol=1e-6):
    """Autograd gradient of sum(fn(*tensors) * w) against finite differences, every input."""
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(s) for s in shapes]
    if positive:
        xs = [np.abs(x) + 0.5 for x in xs]
    out0 = fn(*[torch.tensor(x, dtype=torch.float64) for x in xs])
    w = rng.standard_normal(tuple(out0.shape))
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    (fn(*ts) * torch.tensor(w)).sum().backward()
    for i, x in enumerate(xs):
        def scalar(xi, i=i):
            args = [torch.tensor(v, dtype=torch.float64) for v in xs]
            args[i] = torch.tensor(xi, dtype=torch.float64)
            return float((fn(*args) * torch.tensor(w)).sum())
        np.testing.assert_allclose(ts[i].grad.numpy(), fd_grad(scalar, x), atol=atol, rtol=1e-5)


# ------------------------------------------------------------------------------------------- metadata
def test_metadata():
    t = torch.zeros(2, 3)
    assert t.shape == (2, 3) and t.size() == (2, 3) and t.size(1) == 3 and t.size(-1) == 3
    assert repr(t.shape) == "srcgrad.Size([2, 3])"
    assert t.ndim == 2 and t.dim() == 2 and t.numel() == 6 and len(t) == 2
    assert t.dtype == torch.float32 and t.dtype is torch.float and repr(t.dtype) == "srcgrad.float32"
    assert t.device == torch.device("cpu") and str(t.device) == "cpu" and not t.is_cuda
    assert t.is_leaf and not t.requires_grad and t.grad_fn is None and t.grad is None


def test_item_tolist_numpy_array():
    t = torch.tensor([[1.5, 2.0], [3.0, 4.0]])
    assert t.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert torch.tensor(2.5).item() == 2.5 and isinstance(torch.tensor(2.5).item(), float)
    assert float(torch.tensor([3.0])) == 3.0 and int(torch.tensor(7)) == 7
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        t.item()
    n = t.numpy()
    n[0, 0] = 9.0  # numpy() shares memory
    assert t[0, 0].item() == 9.0
    np.testing.assert_array_equal(np.asarray(t), n)


def test_numpy_and_array_refuse_tensors_that_require_grad():
    x = torch.ones(3, requires_grad=True)
    msg = r"Can't call numpy\(\) on Tensor that requires grad. Use tensor.detach\(\).numpy\(\) instead."
    with pytest.raises(RuntimeError, match=msg):
        x.numpy()
    with pytest.raises(RuntimeError, match=msg):
        np.asarray(x)
    np.testing.assert_array_equal(np.asarray(x.detach()), np.ones(3))


def test_len_and_iter_for_plotting():
    x = torch.linspace(0, 1, 5, requires_grad=True)
    rows = list(x.detach())
    assert len(rows) == 5 and all(isinstance(r, torch.Tensor) and r.ndim == 0 for r in rows)
    assert [r.item() for r in x.detach()] == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    with pytest.raises(TypeError):
        len(torch.tensor(1.0))
    with pytest.raises(TypeError):
        iter(torch.tensor(1.0))


def test_to_float_double_clone_detach_data():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    d = x.double()
    assert d.dtype == torch.float64 and d.grad_fn is not None
    d.sum().backward()
    assert x.grad.dtype == torch.float32 and x.grad.tolist() == [1.0, 1.0]
    assert x.to(torch.float64).dtype == torch.float64 and x.to("cpu") is x
    assert torch.tensor([1, 2]).float().dtype == torch.float32
    assert x.long().dtype == torch.int64 and x.cpu() is x
    c = x.clone()
    assert c.grad_fn is not None and c.tolist() == x.tolist()
    det = x.detach()
    assert not det.requires_grad and det.grad_fn is None
    det[0] = 5.0  # detach shares memory (and the version counter)
    assert x[0].item() == 5.0 and x._version == det._version == 1
    dat = x.data
    assert isinstance(dat, torch.Tensor) and not dat.requires_grad
    x.data = torch.tensor([7.0, 8.0])
    assert x.tolist() == [7.0, 8.0] and x.requires_grad


@pytest.mark.skipif(backend.cuda_is_available(), reason="checks the CPU-only error")
def test_cuda_without_gpu_is_a_clear_error():
    assert torch.cuda.is_available() is False
    assert torch.device("cuda").type == "cuda"
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.ones(2).cuda()
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.zeros(2, device="cuda")


@pytest.mark.skipif(not backend.cuda_is_available(), reason="needs CuPy and a GPU")
def test_cuda_roundtrip_and_gradient():
    x = torch.tensor([0.5, 1.0, 2.0], device="cuda", requires_grad=True)
    assert x.is_cuda and str(x.device) == "cuda:0" and "device='cuda:0'" in repr(x)
    y = (x.sin() * x).sum()
    y.backward()
    assert x.grad.is_cuda
    xs = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    np.testing.assert_allclose(x.grad.cpu().numpy(), np.cos(xs) * xs + np.sin(xs), rtol=1e-5)
    z = torch.ones(3, requires_grad=True)
    (z.cuda() * 2).sum().backward()
    assert not z.grad.is_cuda and z.grad.tolist() == [2.0, 2.0, 2.0]


# --------------------------------------------------------------------------------------------- printing
def test_repr_follows_pytorch_layout():
    assert repr(torch.tensor([1.0, 2.0, 3.0])) == "tensor([1., 2., 3.])"
    assert repr(torch.tensor(25.0)) == "tensor(25.)"
    assert repr(torch.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(torch.tensor([1.0, 2.0], dtype=torch.float64)) == \
        "tensor([1., 2.], dtype=srcgrad.float64)"
    assert repr(torch.tensor([0.1, 1.0, 0.0001])) == "tensor([1.0000e-01, 1.0000e+00, 1.0000e-04])"
    assert repr(torch.tensor([0.5, 0.25], requires_grad=True)) == \
        "tensor([0.5000, 0.2500], requires_grad=True)"
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x.sin()) == "tensor([0.8415, 0.9093], grad_fn=<SinBackward0>)"
    assert repr(torch.ones(2, 3)) == "tensor([[1., 1., 1.],\n        [1., 1., 1.]])"
    assert repr(torch.zeros(0)) == "tensor([])"
    big = repr(torch.arange(2000))
    assert "..." in big and big.startswith("tensor([   0,    1,    2,  ..., 1997, 1998, 1999])")
    assert str(torch.tensor([True, False])) == "tensor([ True, False])"


# -------------------------------------------------------------------------------------------- factories
def test_factories_and_dtypes():
    assert torch.tensor([1.0]).dtype == torch.float32
    assert torch.tensor(np.array([1.0])).dtype == torch.float64  # float64 data stays float64
    assert torch.tensor([1, 2]).dtype == torch.int64 and torch.tensor([True]).dtype == torch.bool
    assert torch.zeros(2, 3).tolist() == [[0.0] * 3] * 2 and torch.ones((2,)).tolist() == [1.0, 1.0]
    assert torch.full((2,), 3.0).tolist() == [3.0, 3.0] and torch.full((1,), 3).dtype == torch.int64
    assert torch.empty(2, 2).shape == (2, 2)
    assert torch.arange(4).tolist() == [0, 1, 2, 3] and torch.arange(4).dtype == torch.int64
    assert torch.arange(0, 1, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert torch.linspace(0, 1, 3).tolist() == [0.0, 0.5, 1.0]
    assert torch.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    x = torch.ones(2, 3, dtype=torch.float64)
    for like in (torch.zeros_like, torch.ones_like, torch.empty_like, torch.rand_like, torch.randn_like):
        y = like(x)
        assert y.shape == x.shape and y.dtype == torch.float64
    assert torch.full_like(x, 2.0).tolist() == [[2.0] * 3] * 2
    assert torch.randint(0, 5, (100,)).max().item() < 5 and torch.randint_like(x, 3).shape == (2, 3)
    assert torch.zeros_like(x, requires_grad=True).requires_grad
    assert torch.linspace(0, 1, 5, requires_grad=True).requires_grad
    assert torch.float is torch.float32 and torch.double is torch.float64 and torch.long is torch.int64
    a = np.arange(3.0)
    t = torch.from_numpy(a)
    a[0] = 7.0
    assert t[0].item() == 7.0
    assert torch.as_tensor(t) is t


def test_default_dtype():
    try:
        torch.set_default_dtype(torch.float64)
        assert torch.tensor([1.0]).dtype == torch.float64 and torch.zeros(1).dtype == torch.float64
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(torch.float32)
    assert torch.tensor([1.0]).dtype == torch.float32


def test_manual_seed_reproducible():
    torch.manual_seed(3)
    a, b = torch.rand(4), torch.randn(2, 2)
    torch.manual_seed(3)
    assert torch.rand(4).tolist() == a.tolist() and torch.randn(2, 2).tolist() == b.tolist()
    assert 0.0 <= a.min().item() and a.max().item() < 1.0


# --------------------------------------------------------------------------------------------- operators
def test_operators_with_scalars_on_either_side_keep_dtype():
    x = torch.tensor([1.0, 2.0, 4.0])
    assert (x + 1).tolist() == [2, 3, 5] and (1 + x).tolist() == [2, 3, 5]
    assert (x - 1).tolist() == [0, 1, 3] and (1 - x).tolist() == [0, -1, -3]
    assert (x * 2).tolist() == [2, 4, 8] and (2 * x).tolist() == [2, 4, 8]
    assert (x / 2).tolist() == [0.5, 1, 2] and (4 / x).tolist() == [4, 2, 1]
    assert (x ** 2).tolist() == [1, 4, 16] and (2 ** x).tolist() == [2, 4, 16]
    assert (-x).tolist() == [-1, -2, -4] and abs(-x).tolist() == [1, 2, 4]
    assert (x // 3).tolist() == [0, 0, 1] and (x % 3).tolist() == [1, 2, 1]
    for r in (x + 1, 1 + x, 2 * x, x / 2, 4 / x, x ** 2, 2.5 - x):
        assert r.dtype == torch.float32
    assert (torch.tensor([1, 2]) / 2).dtype == torch.float32  # true division of ints: default dtype
    assert (x > 1).tolist() == [False, True, True] and (x == 2).tolist() == [False, True, False]
    assert (np.ones(3) * x).tolist() == [1, 2, 4] and isinstance(np.ones(3) + x, torch.Tensor)
    m = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert (m @ m).tolist() == [[7, 10], [15, 22]] and m.mm(m).tolist() == (m @ m).tolist()
    assert m.t().tolist() == [[1, 3], [2, 4]] and m.T.tolist() == [[1, 3], [2, 4]]


@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
    lambda a, b: 2.0 * a - b / 3.0, lambda a, b: 1.0 / (a * a + b * b + 1.0),
])
def test_binary_operator_gradients_with_broadcasting(op):
    check_grad(op, (3, 4), (4,))


def test_power_gradients():
    check_grad(lambda a, b: a ** b, (3,), (3,), positive=True)
    check_grad(lambda a: a.pow(3), (4,))
    check_grad(lambda a: 2.0 ** a, (4,))


@pytest.mark.parametrize("name", ["sin", "cos", "tan", "exp", "tanh", "sigmoid", "relu", "abs", "sinh",
                                  "cosh", "atan", "square", "neg", "erf", "expm1"])
def test_unary_method_gradients(name):
    check_grad(lambda a: getattr(a, name)(), (5,), seed=1)
    check_grad(lambda a: getattr(torch, name)(a), (2, 3), seed=2)


@pytest.mark.parametrize("name", ["log", "sqrt", "log1p", "reciprocal", "log2", "log10"])
def test_unary_gradients_positive_domain(name):
    check_grad(lambda a: getattr(a, name)(), (5,), positive=True)


def test_reductions_with_dim_and_keepdim():
    x = torch.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    assert x.sum().item() == 21 and x.sum(0).tolist() == [5, 7, 9] and x.sum(dim=1).tolist() == [9, 12]
    assert x.sum(1, keepdim=True).shape == (2, 1) and x.mean(dim=0).tolist() == [2.5, 3.5, 4.5]
    vals, idx = x.max(dim=1)
    assert vals.tolist() == [5, 6] and idx.tolist() == [1, 2] and idx.dtype == torch.int64
    r = torch.max(x, 0)
    assert r.values.tolist() == [4, 5, 6] and r.indices.tolist() == [1, 0, 1]
    assert x.max().item() == 6 and x.min().item() == 1 and x.min(dim=0)[0].tolist() == [1, 2, 3]
    assert torch.max(x, torch.full((2, 3), 3.5)).tolist() == [[3.5, 5, 3.5], [4, 3.5, 6]]
    assert x.argmax().item() == 5 and x.argmax(dim=0).tolist() == [1, 0, 1]
    assert x.prod(dim=1).tolist() == [15, 48]
    assert x.norm().item() == pytest.approx(math.sqrt(91))
    assert x.std(dim=1).tolist() == pytest.approx([2.0, 2.0]) and x.var().item() == pytest.approx(3.5)
    check_grad(lambda a: a.sum(dim=1, keepdim=True), (3, 4))
    check_grad(lambda a: a.mean(0), (3, 4))
    check_grad(lambda a: a.max(dim=1)[0], (3, 4))
    check_grad(lambda a: a.norm(), (3, 4))
    check_grad(lambda a: a.var(dim=0), (3, 4))


def test_shape_methods_and_their_gradients():
    x = torch.arange(6.0)
    assert x.reshape(2, 3).shape == (2, 3) and x.view(3, 2).shape == (3, 2) and x.view(-1, 2).shape == (3, 2)
    assert x.reshape(2, 3).t().shape == (3, 2) and x.unsqueeze(0).shape == (1, 6)
    assert x.reshape(1, 6).squeeze().shape == (6,) and x.reshape(2, 3).permute(1, 0).shape == (3, 2)
    assert x.reshape(2, 3).transpose(0, 1).shape == (3, 2) and x.reshape(2, 3).flatten().shape == (6,)
    assert x.reshape(2, 3).expand(4, 2, 3).shape == (4, 2, 3) if hasattr(x, "expand") else True
    check_grad(lambda a: a.reshape(3, 2).t() * torch.arange(6.0, dtype=torch.float64).reshape(2, 3), (6,))
    check_grad(lambda a: a.unsqueeze(1).squeeze(1).permute(1, 0), (2, 3))
    check_grad(lambda a, b: torch.cat([a, b], dim=0), (2, 3), (1, 3))
    check_grad(lambda a, b: torch.stack([a, b], dim=1), (2, 3), (2, 3))
    check_grad(lambda a, b: a @ b, (3, 4), (4, 2))
    check_grad(lambda a, b: a.mm(b), (2, 2), (2, 3))
    check_grad(lambda a, b: torch.matmul(a, b), (3,), (3, 2))
    check_grad(lambda a: a.softmax(dim=1), (2, 4))
    check_grad(lambda a: a.log_softmax(dim=-1), (2, 4))
    check_grad(lambda a: a.clamp(-0.5, 0.5), (6,))


def test_indexing_and_slicing_with_gradients():
    x = torch.arange(12.0).reshape(3, 4)
    assert x[1].tolist() == [4, 5, 6, 7] and x[:, 1].tolist() == [1, 5, 9] and x[1, 2].item() == 6
    assert x[0][0:2].tolist() == [0, 1] and x[torch.tensor([0, 2])].shape == (2, 4)
    assert x[x > 9].tolist() == [10, 11] and x[..., -1].tolist() == [3, 7, 11]
    w = torch.ones(3, 4, requires_grad=True)
    assert w[0].grad_fn.name() == "SelectBackward0" and w[0][0:2].grad_fn.name() == "SliceBackward0"
    assert w[[0, 0]].grad_fn.name() == "IndexBackward0"
    (w[1:, ::2].sum() + w[0, 0] * 3 + w[[2, 2]].sum()).backward()
    expected = np.zeros((3, 4))
    expected[1:, ::2] += 1
    expected[0, 0] += 3
    expected[2] += 2  # index 2 picked twice: gradients accumulate
    np.testing.assert_array_equal(w.grad.numpy(), expected)
    check_grad(lambda a: a[1:, :2] * 2 + a[0, 1], (3, 4))


def test_torch_functions_from_the_mapping_table():
    x = torch.tensor([[1.0, -2.0], [3.0, 4.0]])
    for name in ("sin", "exp", "abs", "tanh", "sum", "mean", "matmul", "cat", "stack", "where", "clamp",
                 "softmax", "maximum", "sqrt", "transpose", "reshape", "squeeze", "unsqueeze"):
        assert callable(getattr(torch, name)), name
    np.testing.assert_allclose(torch.sin(x).numpy(), np.sin(x.numpy()), rtol=1e-6)
    assert torch.where(x > 0, x, torch.zeros_like(x)).tolist() == [[1, 0], [3, 4]]
    assert torch.clamp(x, min=0.0).tolist() == [[1, 0], [3, 4]]
    assert torch.cat([x, x]).shape == (4, 2) and torch.stack([x, x]).shape == (2, 2, 2)
    assert torch.numel(x) == 4 and torch.is_tensor(x)
    assert torch.linalg.norm is not None


def test_pickle_and_bool():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = pickle.loads(pickle.dumps(x))
    assert y.tolist() == [1.0, 2.0] and y.requires_grad
    assert bool(torch.tensor(1.0)) and not bool(torch.tensor(0.0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(torch.ones(2))


def test_tensor_constructor_uses_default_float():
    assert torch.Tensor([1, 2]).dtype == torch.float32 and torch.Tensor([1, 2]).tolist() == [1.0, 2.0]
    assert torch.Tensor(2, 3).shape == (2, 3) and isinstance(torch.tensor(1.0), torch.Tensor)
