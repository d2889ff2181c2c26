"""The compiler on CuPy arrays: every corpus function's generated gradient, jvp and hvp run on the GPU,
return CuPy arrays (types in, types out) and agree with the NumPy results. Skipped without a GPU."""

from __future__ import annotations

import numpy as np
import pytest

import srcgrad as sg
from srcgrad.runtime import backend

from .corpus import CORPUS
from .util import diff_positions, make_args

if not backend.cuda_is_available():
    pytest.skip("CUDA tests need CuPy and a GPU", allow_module_level=True)

cp = backend.cupy_module()


def _gpu(a):
    return cp.asarray(a) if isinstance(a, np.ndarray) else a


def _host(a):
    return cp.asnumpy(a) if isinstance(a, cp.ndarray) else a


@pytest.mark.parametrize("fn", CORPUS, ids=lambda f: f.__name__)
def test_compiled_gradient_on_cupy(fn):
    args = make_args(fn, seed=5)
    if not any(isinstance(a, np.ndarray) for a in args):
        pytest.skip("no array argument to put on the GPU")
    gpu_args = [_gpu(a) for a in args]
    try:
        fn(*gpu_args)
    except TypeError as e:  # e.g. `M.reshape(9) * np.arange(9.0)`: CuPy refuses implicit host arrays
        pytest.skip(f"the function itself does not run on CuPy arrays: {e}")
    wrt = diff_positions(args)
    on_host = sg.grad(fn, wrt=wrt)(*args)
    on_gpu = sg.grad(fn, wrt=wrt)(*gpu_args)
    for i, h, d in zip(wrt, on_host, on_gpu, strict=True):
        if isinstance(args[i], np.ndarray):
            assert isinstance(d, cp.ndarray), f"d/d arg {i} left the GPU: {type(d).__name__}"
        np.testing.assert_allclose(_host(d), h, rtol=1e-9, atol=1e-12)


def test_eager_tensor_on_cuda_matches_cpu():
    x = sg.tensor([0.5, 1.0, 2.0], dtype=sg.float64, device="cuda", requires_grad=True)
    y = (x.sin() * x.exp()).sum()
    y.backward()
    xs = np.array([0.5, 1.0, 2.0])
    assert x.grad.is_cuda
    np.testing.assert_allclose(x.grad.cpu().numpy(), np.cos(xs) * np.exp(xs) + np.sin(xs) * np.exp(xs))


def test_hvp_and_jvp_on_cupy():
    def f(a):
        return np.sum(np.sin(a) * a * a)

    a = np.linspace(0.1, 1.0, 5)
    v = np.ones(5)
    _, hv = sg.hvp(f)(cp.asarray(a), cp.asarray(v))
    _, jv = sg.jvp(f)(cp.asarray(a), cp.asarray(v))
    assert isinstance(hv, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(hv), sg.hvp(f)(a, v)[1], rtol=1e-10)
    np.testing.assert_allclose(float(jv), float(sg.jvp(f)(a, v)[1]), rtol=1e-10)
