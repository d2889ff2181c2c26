"""Issue 10, the eager runtime's part: non-numeric data is refused by `tensor`, and `b[i:j] op= v` on a
non-leaf runs backward with the right gradient where PyTorch does (its error kept where a value a rule
needs was really changed). `.item()` / `float()` keep PyTorch's meaning: they detach."""

from __future__ import annotations

import numpy as np
import pytest

import srcgrad as torch


@pytest.mark.parametrize("data", ["abc", ["a", "b"], [1.0, "x"], b"ab", np.array(["a", "b"]),
                                  [["1.0"], ["2.0"]]])
def test_tensor_refuses_non_numeric_data(data):
    with pytest.raises(TypeError, match="invalid data type"):
        torch.tensor(data)


def test_tensor_refuses_objects_and_strings_with_a_dtype():
    with pytest.raises(TypeError):
        torch.tensor(object())
    with pytest.raises(TypeError, match="invalid data type 'str'"):
        torch.tensor("1.5", dtype=torch.float32)
    with pytest.raises(TypeError, match="invalid data type"):
        torch.as_tensor(np.array(["a"]))


def test_tensor_still_takes_numbers():
    assert torch.tensor([1.5, True]).tolist() == [1.5, 1.0]
    assert torch.tensor(3).item() == 3 and torch.tensor([[1, 2]]).shape == (1, 2)


def fd(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


X0, Y0 = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, -1.0])


def reference(op):
    def loss(xv, yv):
        a = xv * 2
        if op == "add":
            a[1:3] += yv
        elif op == "sub":
            a[1:3] -= yv
        elif op == "mul":
            a[1:3] *= yv
        elif op == "div":
            a[1:3] /= yv
        elif op == "step":
            a[::2] += yv * yv
        return np.sum(a * a)

    return fd(lambda v: loss(v, Y0), X0.copy()), fd(lambda v: loss(X0, v), Y0.copy())


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "step"])
def test_in_place_update_of_a_slice_of_a_non_leaf(op):
    # was: backward raised "modified by an inplace operation" (PyTorch runs these)
    x = torch.tensor(X0, requires_grad=True)
    y = torch.tensor(Y0, requires_grad=True)
    a = x * 2
    if op == "add":
        a[1:3] += y
    elif op == "sub":
        a[1:3] -= y
    elif op == "mul":
        a[1:3] *= y
    elif op == "div":
        a[1:3] /= y
    elif op == "step":
        a[::2] += y * y
    (a * a).sum().backward()
    gx, gy = reference(op)
    np.testing.assert_allclose(x.grad.numpy(), gx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.grad.numpy(), gy, rtol=1e-5, atol=1e-6)


def test_slice_add_closed_form():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = torch.tensor([0.5, -1.0], requires_grad=True)
    a = x * 2
    a[1:3] += y
    (a * a).sum().backward()
    a_val = np.array([2.0, 4.5, 5.0, 8.0])
    np.testing.assert_allclose(x.grad.numpy(), 4 * a_val)       # d/dx sum(a^2) = 2a * 2
    np.testing.assert_allclose(y.grad.numpy(), 2 * a_val[1:3])


def test_in_place_update_through_a_kept_view_then_of_the_base():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = torch.tensor([0.5, -1.0], requires_grad=True)
    a = x * 2
    v = a[1:3]
    v += y
    a += 1.0               # CopySlices needs only the base's shape: PyTorch runs this too
    (a * a).sum().backward()
    a_val = np.array([3.0, 5.5, 6.0, 9.0])
    np.testing.assert_allclose(x.grad.numpy(), 4 * a_val)
    np.testing.assert_allclose(y.grad.numpy(), 2 * a_val[1:3])


def test_a_value_a_rule_needs_still_raises():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = torch.tensor([0.5, -1.0], requires_grad=True)
    b = (x * 2).exp()          # exp saves its output
    b[1:3] += y
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (b * b).sum().backward()
    a = x * 2
    s = (a * a).sum()          # mul saved a
    a[1:3] += y
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        s.backward()


def test_item_and_float_still_detach():
    x = torch.tensor([2.0], requires_grad=True)
    y = x * 3
    assert y.item() == 6.0 and float(y) == 6.0
    z = x * y.item() + float(y)       # constants: the gradient is 6, not 6 + 3x
    z.sum().backward()
    assert x.grad.tolist() == [6.0]


def test_an_in_place_op_whose_operand_views_the_same_memory():
    # d *= d[::-1]: the reversed view is read before the write, as NumPy does; its saved copy keeps that
    import numpy as np

    import srcgrad as torch

    v = np.array([0.82, 0.42, 0.31, -0.47])
    b = torch.tensor(v, requires_grad=True)
    d = b * 1.0
    d *= d[::-1]
    d.sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), 2 * v[::-1], rtol=1e-12)
