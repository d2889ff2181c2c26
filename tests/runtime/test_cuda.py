"""The rule table on CuPy arrays: every spec case runs on the GPU, stays on the GPU, and agrees with
NumPy. Skipped (cleanly, at collection) where CuPy or a GPU is missing, as on CI."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from srcgrad.runtime import backend
from srcgrad.runtime.primitives import PRIMITIVES
from srcgrad.testing import check_rule

from .rule_specs import SPECS

if not backend.cuda_is_available():
    pytest.skip("CUDA tests need CuPy and a GPU", allow_module_level=True)

cp = backend.cupy_module()

# Cases CuPy cannot run as NumPy does, keyed "primitive-case", with the reason.
CUPY_SKIP: dict[str, str] = {
    "index_update-repeated-last-wins": "CuPy leaves unspecified which write wins when an index repeats",
}

CASES = [pytest.param(name, case, id=f"{name}-{case.id}") for name, cases in SPECS.items() for case in cases]


def _seed(name: str, case_id: str) -> int:
    return zlib.crc32(f"{name}/{case_id}".encode())


def _to_gpu(a):
    return cp.asarray(a) if isinstance(a, np.ndarray) else a


@pytest.mark.parametrize("name, case", CASES)
def test_rule_on_cupy(name, case):
    if f"{name}-{case.id}" in CUPY_SKIP:
        pytest.skip(CUPY_SKIP[f"{name}-{case.id}"])
    host = case.sample(np.random.default_rng(_seed(name, case.id)))
    dev = tuple(_to_gpu(a) for a in host)
    out = PRIMITIVES[name](*dev, **case.kwargs)
    if any(isinstance(a, cp.ndarray) for a in dev):
        assert isinstance(out, cp.ndarray), f"{name} left the GPU: returned {type(out).__name__}"
    np.testing.assert_allclose(cp.asnumpy(out), np.asarray(PRIMITIVES[name](*host, **case.kwargs)),
                               rtol=1e-10, atol=1e-12)
    opts = {"eps": 1e-6, "atol": 1e-6, "rtol": 1e-5, "seed": _seed(name, case.id),
            "direction": case.direction}
    opts.update(case.tol)
    check_rule(name, dev, case.kwargs, argnums=case.argnums, **opts)
