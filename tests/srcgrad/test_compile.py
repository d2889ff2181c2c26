"""@sg.compile: a compiled function on Tensors that require grad is one eager-graph node whose backward
is the generated adjoint; otherwise it runs as written."""

import numpy as np

import srcgrad as sg


@sg.compile
def step(h, W, x):
    k = 0
    while k < 3:
        h = np.tanh(W @ h + x)
        k += 1
    return h


def plain(h, W, x):
    for i in range(3):  # noqa: B007
        h = (W @ h + x).tanh()
    return h


def test_one_node_and_tape_agreement():
    rng = np.random.default_rng(0)
    W0, h0, x0 = rng.normal(size=(4, 4)) * 0.5, rng.normal(size=4), rng.normal(size=4)
    W = sg.tensor(W0, dtype=sg.float64, requires_grad=True)
    h = sg.tensor(h0, dtype=sg.float64, requires_grad=True)
    x = sg.tensor(x0, dtype=sg.float64)
    y = step(h, W, x)
    assert y.grad_fn.name() == "StepCompiledBackward"
    # one node: its inputs are the leaves directly
    assert {type(n).__name__ for n, _ in y.grad_fn.next_functions if n is not None} == {"AccumulateGrad"}
    (y * y).sum().backward()
    W2 = sg.tensor(W0, dtype=sg.float64, requires_grad=True)
    h2 = sg.tensor(h0, dtype=sg.float64, requires_grad=True)
    (plain(h2, W2, x) ** 2).sum().backward()
    np.testing.assert_allclose(W.grad.numpy(), W2.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(h.grad.numpy(), h2.grad.numpy(), rtol=1e-12)
    assert x.grad is None


def test_runs_as_written_without_grad():
    rng = np.random.default_rng(1)
    W0, h0, x0 = rng.normal(size=(4, 4)), rng.normal(size=4), rng.normal(size=4)
    np.testing.assert_allclose(step(h0, W0, x0), plain(sg.tensor(h0), sg.tensor(W0), sg.tensor(x0)).numpy())
    with sg.no_grad():
        y = step(sg.tensor(h0, requires_grad=True), sg.tensor(W0), sg.tensor(x0))
    assert y.grad_fn is None


def test_backward_twice_with_retain_graph():
    W = sg.tensor(np.eye(3) * 0.3, dtype=sg.float64, requires_grad=True)
    h = sg.tensor(np.ones(3), dtype=sg.float64)
    loss = step(h, W, h).sum()
    loss.backward(retain_graph=True)
    first = W.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(W.grad.numpy(), 2 * first)
