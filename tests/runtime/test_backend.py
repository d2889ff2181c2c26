"""backend: which namespace owns a value, devices, transfers; CuPy is optional and never required."""

from __future__ import annotations

import math

import numpy as np
import pytest

from srcgrad.runtime import backend


def test_namespace_of_python_numbers_is_math():
    assert backend.namespace(1.5) is backend.scalar_ns
    assert backend.namespace(3) is backend.scalar_ns
    assert backend.scalar_ns.sin(0.5) == math.sin(0.5)
    assert backend.array_ns(1.5) is np  # for what math cannot do


def test_namespace_of_numpy_values():
    assert backend.namespace(np.ones(3)) is np
    assert backend.namespace(np.float64(2.0)) is np
    assert backend.namespace([1.0, 2.0]) is np


def test_namespace_of_array_api_arrays():
    xp = pytest.importorskip("array_api_strict")
    a = xp.asarray([1.0, 2.0])
    assert backend.namespace(a) is xp
    assert backend.common_namespace(2.0, a) is xp


def test_namespace_of_unknown_type_is_a_clear_error():
    with pytest.raises(TypeError, match="which array namespace"):
        backend.namespace(object())


def test_common_namespace_skips_python_scalars():
    assert backend.common_namespace(1.0, np.ones(2)) is np
    assert backend.common_namespace(1.0, 2) is backend.scalar_ns
    assert backend.is_scalar(1.0) and not backend.is_scalar(np.ones(1))


@pytest.mark.parametrize("text, parsed", [("cpu", ("cpu", None)), ("cuda", ("cuda", None)),
                                          ("cuda:1", ("cuda", 1))])
def test_parse_device(text, parsed):
    assert backend.parse_device(text) == parsed


def test_parse_device_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="cpu, cuda"):
        backend.parse_device("tpu:0")


@pytest.fixture
def no_cupy(monkeypatch):
    """Pretend CuPy is not installed, whatever this machine has."""
    monkeypatch.setattr(backend, "_CUPY_TRIED", True)
    monkeypatch.setattr(backend, "_CUPY", None)


def test_cuda_unavailable_without_cupy(no_cupy):
    assert backend.cupy_module() is None
    assert backend.cuda_is_available() is False
    assert backend.cuda_device_count() == 0
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        backend.require_cuda()
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        backend.to_device(np.ones(2), "cuda")


def test_cuda_is_available_never_raises():
    assert backend.cuda_is_available() in (True, False)


def test_cpu_round_trip_keeps_the_array():
    x = np.arange(6.0).reshape(2, 3)
    y = backend.to_device(x, "cpu")
    assert y is x  # nothing to move: no copy
    assert backend.device_of(x) == "cpu"
    assert backend.device_of(1.0) == "cpu"


@pytest.mark.skipif(not backend.cuda_is_available(), reason="needs CuPy and a CUDA GPU")
def test_cuda_round_trip():
    x = np.arange(6.0).reshape(2, 3)
    g = backend.to_device(x, "cuda:0")
    assert backend.is_cupy(g) and backend.device_of(g) == "cuda:0"
    assert backend.namespace(g) is backend.cupy_module()
    back = backend.to_device(g, "cpu")
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, x)
