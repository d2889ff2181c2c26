"""srcgrad.autograd.functional: PyTorch's signatures and return conventions, values vs closed forms."""

import numpy as np
import pytest

import srcgrad as torch
from srcgrad.autograd import functional as F


def exp_adder(x, y):
    return 2 * x.exp() + 3 * y


def do_some_doubling(x):
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    return y


def pow_reducer(x):
    return x.pow(3).sum()


def pow_adder_reducer(x, y):
    return (2 * x.pow(2) + 3 * y.pow(2)).sum()


def arr(t):
    return np.asarray(t.detach().numpy(), dtype=np.float64)


def test_jacobian_of_two_single_element_inputs_is_a_tuple_of_1x1():
    x, y = torch.rand(1), torch.rand(1)
    jx, jy = F.jacobian(exp_adder, (x, y))
    assert tuple(jx.shape) == (1, 1) and tuple(jy.shape) == (1, 1)
    np.testing.assert_allclose(arr(jx), 2 * np.exp(arr(x))[:, None], rtol=1e-5)
    np.testing.assert_allclose(arr(jy), [[3.0]])


def test_jacobian_of_vectors_is_diagonal():
    x, y = torch.rand(3), torch.rand(3)
    jx, jy = F.jacobian(exp_adder, (x, y))
    np.testing.assert_allclose(arr(jx), np.diag(2 * np.exp(arr(x))), rtol=1e-5)
    np.testing.assert_allclose(arr(jy), 3 * np.eye(3))


def test_jacobian_single_input_single_output_is_a_tensor_of_out_by_in_shape():
    x = torch.rand(2, 3, dtype=torch.float64)
    j = F.jacobian(lambda a: a.sin().sum(dim=1), x)
    assert tuple(j.shape) == (2, 2, 3)
    expected = np.zeros((2, 2, 3))
    for i in range(2):
        expected[i, i] = np.cos(arr(x)[i])
    np.testing.assert_allclose(arr(j), expected)


def test_jacobian_rejects_unknown_strategy_and_forward_without_vectorize():
    with pytest.raises(ValueError, match="strategy"):
        F.jacobian(pow_reducer, torch.rand(2), strategy="sideways")
    with pytest.raises(NotImplementedError, match="vectorize=True"):
        F.jacobian(pow_reducer, torch.rand(2), strategy="forward-mode")


def test_vjp_through_data_dependent_loop_gives_powers_of_two():
    torch.manual_seed(0)
    x = torch.randn(3, dtype=torch.float64)
    v = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float64)
    out, g = F.vjp(do_some_doubling, x, v=v)
    scale = arr(out)[0] / arr(x)[0]
    assert scale == 2 ** round(np.log2(scale))
    np.testing.assert_allclose(arr(g), scale * arr(v))
    assert out.grad_fn is None and g.grad_fn is None


def test_jvp_matches_the_jacobian():
    x = torch.rand(3, dtype=torch.float64)
    v = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    f = lambda a: (a.sin() * a).cumsum(0)  # noqa: E731
    _, jv = F.jvp(f, x, v)
    np.testing.assert_allclose(arr(jv), arr(F.jacobian(f, x)) @ arr(v), rtol=1e-10)


def test_hvp_and_vhp_of_pow_reducer():
    x = torch.rand(2, 2, dtype=torch.float64)
    v = torch.ones(2, 2, dtype=torch.float64)
    for op in (F.hvp, F.vhp):
        value, hv = op(pow_reducer, x, v)
        np.testing.assert_allclose(arr(value), (arr(x) ** 3).sum())
        np.testing.assert_allclose(arr(hv), 6 * arr(x))


def test_hvp_with_create_graph_carries_grad_fn():
    x = torch.rand(2, 2, dtype=torch.float64)
    value, hv = F.hvp(pow_reducer, x, torch.ones(2, 2, dtype=torch.float64), create_graph=True)
    assert value.grad_fn is not None and hv.grad_fn is not None


def test_hvp_of_two_inputs_returns_a_tuple():
    inputs = (torch.rand(2), torch.rand(2))
    _, (hx, hy) = F.hvp(pow_adder_reducer, inputs, (torch.zeros(2), torch.ones(2)))
    np.testing.assert_allclose(arr(hx), [0.0, 0.0])
    np.testing.assert_allclose(arr(hy), [6.0, 6.0])


def test_hessian_nesting_and_values():
    h = F.hessian(pow_adder_reducer, (torch.rand(2), torch.rand(2)))
    np.testing.assert_allclose(arr(h[0][0]), 4 * np.eye(2))
    np.testing.assert_allclose(arr(h[0][1]), np.zeros((2, 2)))
    np.testing.assert_allclose(arr(h[1][1]), 6 * np.eye(2))
    x = torch.rand(3, dtype=torch.float64)
    np.testing.assert_allclose(arr(F.hessian(pow_reducer, x)), np.diag(6 * arr(x)))


def test_v_may_be_omitted_only_for_single_element_inputs():
    _, g = F.vjp(lambda a: a.exp(), torch.tensor([0.5], dtype=torch.float64))
    np.testing.assert_allclose(arr(g), np.exp([0.5]))
    with pytest.raises(RuntimeError, match="single element"):
        F.vjp(lambda a: a.exp(), torch.rand(3))
    with pytest.raises(RuntimeError, match="single element"):
        F.hvp(pow_reducer, torch.rand(3))


def test_v_with_the_wrong_shape_is_rejected():
    with pytest.raises(RuntimeError, match="invalid size"):
        F.vjp(lambda a: a.exp(), torch.rand(3), v=torch.ones(4))


def test_inputs_must_be_tensors():
    with pytest.raises(TypeError, match="Tensor or a tuple of Tensors"):
        F.vjp(lambda a: a, [1.0, 2.0])


def test_strict_raises_for_an_independent_input_and_zeros_otherwise():
    f = lambda a, b: a.exp()  # noqa: E731
    inputs = (torch.rand(2), torch.rand(2))
    _, (ga, gb) = F.vjp(f, inputs, v=torch.ones(2))
    np.testing.assert_allclose(arr(gb), [0.0, 0.0])
    with pytest.raises(RuntimeError, match="independent of input 1"):
        F.vjp(f, inputs, v=torch.ones(2), strict=True)


# ----------------------------------------------------------------------------- the compiled engine
def unbiased_spread(x):
    return x.var() + x.std()       # Tensor meanings: unbiased (ddof=1), unlike ndarray.var


def test_compiled_engine_serves_functions_with_source():
    x = torch.randn(4, dtype=torch.float64)
    v = torch.ones(4, dtype=torch.float64)
    F.vjp(do_some_doubling, x, v=v)
    assert F.last_engine == "compiled"
    for call in (lambda: F.jvp(exp_adder, (x, x), (v, v)), lambda: F.hvp(pow_reducer, x, v),
                 lambda: F.vhp(pow_reducer, x, v), lambda: F.jacobian(exp_adder, (x, x)),
                 lambda: F.hessian(pow_adder_reducer, (x, x))):
        call()
        assert F.last_engine == "compiled"


def test_results_are_tensors_without_a_graph_and_keep_the_dtype():
    x = torch.randn(3, dtype=torch.float64)
    out, g = F.vjp(do_some_doubling, x, v=torch.ones(3, dtype=torch.float64))
    assert isinstance(out, torch.Tensor) and isinstance(g, torch.Tensor)
    assert out.grad_fn is None and g.grad_fn is None and not g.requires_grad
    assert g.dtype == torch.float64


def test_tensor_meanings_of_methods():
    x = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
    a = arr(x)
    n = a.size
    _, g = F.vjp(unbiased_spread, x)
    assert F.last_engine == "compiled"
    mean = a.mean()
    std = np.sqrt(((a - mean) ** 2).sum() / (n - 1))
    want = 2 * (a - mean) / (n - 1) + (a - mean) / ((n - 1) * std)
    np.testing.assert_allclose(arr(g), want, rtol=1e-10)


def test_create_graph_runs_the_generated_code_on_tensors():
    x = torch.rand(3, dtype=torch.float64, requires_grad=True)
    _, g = F.vjp(pow_reducer, x, create_graph=True)
    assert F.last_engine == "compiled" and g.grad_fn is not None
    (gg,) = torch.autograd.grad((g.sum(),), (x,))
    np.testing.assert_allclose(arr(gg), 6 * arr(x))         # d/dx sum(3x^2) through the recorded graph


def test_no_source_falls_back_to_the_tape_with_one_warning():
    f = eval("lambda a: (a * a).sum()")           # noqa: S307 -- a function with no source file
    x = torch.rand(3, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="using the eager tape"):
        _, g = F.vjp(f, x)
    assert F.last_engine == "tape"
    np.testing.assert_allclose(arr(g), 2 * arr(x))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # the second call does not warn again
        F.vjp(f, x)


def test_strict_uses_the_tape():
    x = torch.rand(2, dtype=torch.float64)
    F.vjp(pow_reducer, x, strict=True)
    assert F.last_engine == "tape"


def test_compiled_and_tape_agree_on_the_loop():
    x = torch.randn(3, dtype=torch.float64)
    v = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    compiled = F.vjp(do_some_doubling, x, v=v)[1]
    tape = F.vjp(do_some_doubling, x, v=v, strict=True)[1]
    np.testing.assert_allclose(arr(compiled), arr(tape))


def test_functional_api_example_runs_compiled_with_the_stated_values(capsys):
    """examples/functional_api.py: the tutorial's High-Level API cells and the hvp reference page."""
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "functional_api.py"
    module = runpy.run_path(str(path))
    r = module["main"]()
    printed = capsys.readouterr().out
    assert "[tape]" not in printed and printed.count("[compiled]") == 9
    (x1, _), (x3, _) = r["jac1_inputs"], r["jac3_inputs"]
    jx, jy = r["jac1"]
    assert tuple(jx.shape) == (1, 1) and tuple(jy.shape) == (1, 1)
    np.testing.assert_allclose(arr(jx), 2 * np.exp(arr(x1))[:, None], rtol=1e-6)
    np.testing.assert_allclose(arr(jy), [[3.0]])
    jx, jy = r["jac3"]
    np.testing.assert_allclose(arr(jx), np.diag(2 * np.exp(arr(x3))), rtol=1e-6)
    np.testing.assert_allclose(arr(jy), 3 * np.eye(3))
    (x, v), (out, g) = r["vjp_inputs"], r["vjp"]
    scale = arr(out)[0] / arr(x)[0]
    assert np.linalg.norm(arr(out)) >= 1000 and scale == 2 ** round(np.log2(scale))
    np.testing.assert_allclose(arr(g), scale * arr(v), rtol=1e-6)
    np.testing.assert_allclose(arr(r["jvp"][1]), scale * arr(v), rtol=1e-6)
    xh = arr(r["hvp_inputs"])
    for key in ("hvp", "hvp_graph", "vhp"):
        value, hv = r[key]
        np.testing.assert_allclose(arr(value), (xh ** 3).sum(), rtol=1e-6)
        np.testing.assert_allclose(arr(hv), 6 * xh, rtol=1e-6)
    value, hv = r["hvp_graph"]
    assert value.grad_fn is not None and hv.grad_fn is not None
    assert "grad_fn=<SumBackward0>" in printed and "grad_fn=<MulBackward0>" in printed
    _, (hx, hy) = r["hvp2"]
    np.testing.assert_allclose(arr(hx), [0.0, 0.0])
    np.testing.assert_allclose(arr(hy), [6.0, 6.0])
    (hxx, hxy), (hyx, hyy) = r["hessian"]
    np.testing.assert_allclose(arr(hxx), 4 * np.eye(2))
    np.testing.assert_allclose(arr(hyy), 6 * np.eye(2))
    np.testing.assert_allclose(arr(hxy), np.zeros((2, 2)))
