"""examples/autograd_tutorial.py runs every eager cell of PyTorch's autograd tutorial with
`import srcgrad as torch`; here we check what the tutorial says about the values it prints."""

from __future__ import annotations

import contextlib
import io
import runpy
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "autograd_tutorial.py"


@pytest.fixture(scope="module")
def run():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ns = runpy.run_path(str(EXAMPLE), run_name="__main__")
    return ns["RESULTS"], out.getvalue()


def test_linspace_and_graph_printout(run):
    results, text = run
    assert "tensor([0.0000, 0.2618, 0.5236, 0.7854, 1.0472, 1.3090, 1.5708, 1.8326, 2.0944,\n" in text
    assert "requires_grad=True)" in text
    # the tutorial's exact float32 values (linspace computed as PyTorch does)
    assert "-8.7423e-08" in text and "1.7485e-07" in text and "grad_fn=<SinBackward0>" in text
    assert "tensor(25., grad_fn=<SumBackward0>)" in text
    assert results["simple"]["names"] == ("AddBackward0", "MulBackward0", "SinBackward0", "SumBackward0")
    assert "((<MulBackward0 object at 0x" in text and "(None, 0))" in text
    assert "((<AccumulateGrad object at 0x" in text
    assert "\na:\nNone\n" in text


def test_a_grad_is_two_cos_a(run):
    results, _ = run
    a, grad = results["simple"]["a"], results["simple"]["a.grad"]
    np.testing.assert_allclose(grad, 2 * np.cos(a.astype(np.float64)), atol=1e-6)


def test_layer2_gradient_matches_closed_form(run):
    results, text = run
    tr = results["training"]
    assert tr["grad_before"] is None
    p, x, y = tr["params"], tr["input"].astype(np.float64), tr["ideal"].astype(np.float64)
    W1, b1, W2, b2 = (p[k].astype(np.float64) for k in ("layer1.weight", "layer1.bias", "layer2.weight",
                                                          "layer2.bias"))
    h = np.maximum(x @ W1.T + b1, 0.0)
    pred = h @ W2.T + b2
    assert tr["loss"] == pytest.approx(np.sum((y - pred) ** 2), rel=1e-4)
    dpred = -2.0 * (y - pred)
    np.testing.assert_allclose(tr["grad"], dpred.T @ h, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tr["grads"]["layer2.bias"], dpred.sum(0), rtol=1e-4, atol=1e-4)
    dh = (dpred @ W2) * (h > 0)
    np.testing.assert_allclose(tr["grads"]["layer1.weight"], dh.T @ x, rtol=1e-3, atol=1e-4)
    # backward does not move the weights
    np.testing.assert_array_equal(tr["weight_after_backward"], p["layer2.weight"])
    assert "grad_fn=<SliceBackward0>" in text


def test_sgd_moves_weights_by_minus_lr_grad(run):
    tr = run[0]["training"]
    np.testing.assert_allclose(tr["weight_after_step"], tr["params"]["layer2.weight"] - 0.001 * tr["grad"],
                               rtol=1e-6, atol=1e-7)


def test_gradients_accumulate_then_zero_grad(run):
    tr = run[0]["training"]
    # five more backward passes without zero_grad: the first gradient plus five at the new weights
    assert np.abs(tr["grad_accumulated"]).sum() > 3 * np.abs(tr["grad"]).sum()
    assert tr["grad_zeroed"].shape == tr["grad"].shape
    assert not tr["grad_zeroed"].any()


def test_grad_modes(run):
    results, _ = run
    b1_fn, b2_fn = results["flag"]
    assert b1_fn.name() == "MulBackward0" and b2_fn is None
    c1, c2, c2_rg, c3 = results["no_grad_context"]
    assert c1.name() == "AddBackward0" and c2 is None and not c2_rg and c3.name() == "MulBackward0"
    c1, c2, c2_rg = results["no_grad_decorator"]
    assert c1.name() == "AddBackward0" and c2 is None and not c2_rg
    assert results["detach"] == (True, False, None)


def test_inplace_on_leaf_raises_and_leaves_data(run):
    results, _ = run
    assert results["inplace_error"] == ("a leaf Variable that requires grad is being used in an in-place "
                                        "operation.")
    assert results["inplace_untouched"]


def test_profiler_table(run):
    table = run[0]["profiler_table"]
    lines = table.splitlines()
    assert lines[1].split()[:4] == ["Name", "Self", "CPU", "%"]
    rows = {line.split()[0]: line for line in lines if line.startswith(("divide", "multiply"))}
    assert set(rows) == {"divide", "multiply"}
    assert all(r.split()[-1] == "1000" for r in rows.values())
    assert any(line.startswith("Self CPU time total:") for line in lines[-2:])
    if "Self CUDA" in lines[1]:  # on a GPU machine the tutorial profiles with use_cuda=True
        assert lines[-1].startswith("Self CUDA time total:")


def test_backward_with_vector(run):
    r = run[0]["backward_v"]
    k = round(np.log2(np.abs(r["y"][0] / r["x"][0])))
    assert np.linalg.norm(r["x"] * 2.0 ** k) >= 1000 > np.linalg.norm(r["x"] * 2.0 ** (k - 1))
    np.testing.assert_allclose(r["x.grad"], r["v"] * 2.0 ** k, rtol=1e-6)


def test_high_level_api_cells_run_compiled_with_the_stated_values(run):
    """The tutorial's Advanced Topic functional cells and the hvp reference page, inside the tutorial."""
    results, text = run
    f = results["functional"]
    assert "[tape]" not in text and "[compiled]" in text
    _, (hx, hy) = f["hvp2"]
    np.testing.assert_allclose(hx.numpy(), [0.0, 0.0])
    np.testing.assert_allclose(hy.numpy(), [6.0, 6.0])
    xi = np.asarray(f["hvp_inputs"].numpy(), dtype=np.float64)
    value, hv = f["hvp"]
    np.testing.assert_allclose(value.item(), (xi ** 3).sum(), rtol=1e-5)
    np.testing.assert_allclose(hv.numpy(), 6 * xi, rtol=1e-5)
    hess = f["hessian"]
    np.testing.assert_allclose(hess[0][0].numpy(), 4 * np.eye(2))
    np.testing.assert_allclose(hess[1][1].numpy(), 6 * np.eye(2))
