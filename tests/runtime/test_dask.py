"""srcgrad on Dask arrays: the rule table run lazily, and compiled transforms on a real cluster.

Two parts. The rule table: every case of `rule_specs.SPECS` runs its primitive, vjp and jvp on Dask
arrays under a scheduler that refuses to compute, so a rule that reads a chunk behind the user's back
fails here; values are then checked against the same rules on NumPy. A rule marked `not_lazy` in its
record may compute (or refuse); every other rule must not.

The cluster: a `dask.distributed.LocalCluster` with two worker processes (one thread each, a memory
limit) started and closed by this module, on which gradients of a logistic loss, a two-layer
network's loss and a Gaussian mixture's log-likelihood over a chunked dataset, a vjp, a jvp and an
hvp are checked against NumPy; gradients with respect to NumPy parameters come back as NumPy from
one read of the data, those with respect to Dask arrays stay lazy with the input's chunks; and a
dataset larger than both workers' memory limits together is differentiated with the workers' peak
memory under their limit.

Skipped when the dask extra (dask[array], distributed, array-api-compat) is not installed.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
pytest.importorskip("array_api_compat")

import srcgrad as sg  # noqa: E402
from srcgrad.runtime import backend  # noqa: E402
from srcgrad.runtime.dask_support import dask_namespace, peak_memory, reset_peak_memory  # noqa: E402
from srcgrad.runtime.primitives import PRIMITIVES  # noqa: E402
from srcgrad.runtime.rules import RULES  # noqa: E402
from srcgrad.testing import differentiable_argnums  # noqa: E402

from .rule_specs import NONDIFF, SPECS  # noqa: E402

MIB = 2 ** 20
WORKER_MEMORY = 400 * MIB


class Computed(AssertionError):
    """Raised by `_forbid` when something asks the scheduler for a value."""


def _forbid(dsk, keys, **kwargs):
    raise Computed("a Dask value was computed")


def _chunked(a, parts=2):
    """A NumPy float array as a Dask array split in `parts` along each axis (a value passes through)."""
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return da.from_array(a, chunks=tuple(max(1, -(-n // parts)) for n in a.shape))
    return a


def _like(value, ref):
    """A cotangent or tangent: a Dask array chunked like `ref` when ref is one, else NumPy or float.
    (Where ref's length is unknown, after a boolean mask, the cotangent is built from ref itself.)"""
    if isinstance(ref, da.Array) and any(n != n for n in ref.shape):
        return ref * 0.0 + 1.0
    if isinstance(ref, da.Array):
        return da.from_array(np.asarray(value), chunks=ref.chunks)
    return value if np.ndim(value) else float(value)


# ------------------------------------------------------------------------------------------- rules
# Cases whose primitive itself is outside what dask.array does (not a rule's doing).
DASK_SKIP = {
    "reshape-2d": "dask.array.reshape only merges or splits axes ((3, 4) -> (2, 6) does neither)",
}
CASES = [pytest.param(name, case, id=f"{name}-{case.id}") for name, cases in SPECS.items() for case in cases]


@pytest.mark.parametrize("name, case", CASES)
def test_rule_runs_lazily_on_dask(name, case):
    key = f"{name}-{case.id}"
    if key in DASK_SKIP:
        pytest.skip(DASK_SKIP[key])
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    args = case.sample(rng)
    prim, rule = PRIMITIVES[name], RULES[name]
    argnums = list(case.argnums or differentiable_argnums(name, args))
    ans_np = prim(*args, **case.kwargs)
    v = rng.standard_normal(np.shape(ans_np))
    us = [rng.standard_normal(np.shape(args[i])) for i in argnums]
    want = [ans_np]
    for k, i in enumerate(argnums):
        want.append(rule.vjp_for(i)(_like(v, None), ans_np, *args, **case.kwargs))
        want.append(rule.jvp_for(i)(_like(us[k], None), ans_np, *args, **case.kwargs))
    dargs = tuple(_chunked(a) for a in args)

    def run():
        ans = prim(*dargs, **case.kwargs)
        outs = [ans]
        for k, i in enumerate(argnums):
            outs.append(rule.vjp_for(i)(_like(v, ans), ans, *dargs, **case.kwargs))
            outs.append(rule.jvp_for(i)(_like(us[k], dargs[i]), ans, *dargs, **case.kwargs))
        return outs

    try:
        with dask.config.set(scheduler=_forbid):
            outs = run()
    except (Computed, NotImplementedError) as exc:
        if rule.not_lazy is None:
            raise AssertionError(f"{name}: its rules are not marked not_lazy, but on Dask: {exc}") from exc
        if isinstance(exc, NotImplementedError):
            return  # refused, as its record says (the message names what is missing)
        with dask.config.set(scheduler="sync"):
            outs = run()  # it computes a value, as its record says: still the right answer
    if any(isinstance(a, da.Array) for a in dargs):
        for o in outs:
            assert isinstance(o, (da.Array, float)), f"{name}: a {type(o).__name__} came out of Dask inputs"
    with dask.config.set(scheduler="sync"):
        got = dask.compute(*outs)
    for j, (g, w) in enumerate(zip(got, want, strict=True)):
        assert np.shape(g) == np.shape(w), f"{name}: result {j} is {np.shape(g)}, NumPy's {np.shape(w)}"
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-10, err_msg=f"{name}: result {j}")


@pytest.mark.parametrize("name, case", [pytest.param(n, c, id=f"{n}-{c.id or 'default'}")
                                        for n, cs in NONDIFF.items() for c in cs])
def test_nondiff_primitive_runs_lazily_on_dask(name, case):
    args = tuple(np.asarray(a) if isinstance(a, list) else a for a in case.args)
    expected = case.expected(*args, **case.kwargs)
    dargs = tuple(da.from_array(a, chunks=1) if isinstance(a, np.ndarray) else a for a in args)
    with dask.config.set(scheduler=_forbid):
        got = PRIMITIVES[name](*dargs, **case.kwargs)
    if any(isinstance(a, da.Array) for a in dargs) and name not in ("shape", "size", "ndim", "holds_floats",
                                                                               "is_complex"):
        assert isinstance(got, da.Array)
    with dask.config.set(scheduler="sync"):
        np.testing.assert_array_equal(np.asarray(dask.compute(got)[0]), expected)


def test_the_rule_records_name_what_cannot_run_lazily():
    marked = {n for n, r in RULES.items() if r.not_lazy}
    assert {"prod", "cumprod", "sort", "getitem", "index_add"} <= marked
    for n in marked:
        assert len(RULES[n].not_lazy) > 20, f"{n}: not_lazy should say why"


def test_dask_arrays_get_the_dask_namespace_and_numpy_yields_to_it():
    x = da.ones((4, 3), chunks=2)
    assert backend.namespace(x) is dask_namespace()
    assert backend.common_namespace(np.ones(3), x) is dask_namespace()
    assert backend.common_namespace(np.ones(3), 2.0) is np


def test_numpy_array_written_with_a_dask_value_stays_lazy():
    x, v = np.zeros((3, 4)), da.ones(4, chunks=2)
    with dask.config.set(scheduler=_forbid):
        out = PRIMITIVES["index_update"](x, v, index=(1, Ellipsis))
    assert isinstance(out, da.Array)
    with dask.config.set(scheduler="sync"):
        np.testing.assert_array_equal(out.compute(), np.array([[0.0] * 4, [1.0] * 4, [0.0] * 4]))


def test_eager_tensor_refuses_dask_arrays_with_what_to_do():
    x = da.ones((4, 3), chunks=2)
    with pytest.raises(TypeError, match="compiled transforms"):
        sg.tensor(x)
    t = sg.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TypeError, match="srcgrad.grad"):
        t * da.ones(3, chunks=1)
    with pytest.raises(TypeError, match="Dask"):
        sg.sin(t) + da.ones(3, chunks=1)


# ----------------------------------------------------------------------------------------- cluster
@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit=WORKER_MEMORY, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        yield c


def logistic(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z)


def two_layer(W1, b1, W2, b2, X, y):
    h = np.tanh(X @ W1 + b1)
    out = h @ W2 + b2
    return np.mean((out - y) ** 2)


def gmm_loglik(means, log_sigma, logits, X):
    """Log-likelihood of an isotropic Gaussian mixture: sum over points of logsumexp over components."""
    d = X.shape[1]
    log_weights = logits - np.log(np.sum(np.exp(logits)))
    diff = X[:, None, :] - means[None, :, :]                       # (n, K, d)
    sq = np.sum(diff * diff, axis=2)                               # (n, K)
    sigma2 = np.exp(2.0 * log_sigma)
    log_comp = log_weights - 0.5 * sq / sigma2 - d * log_sigma - 0.5 * d * np.log(2.0 * np.pi)
    m = np.max(log_comp, axis=1, keepdims=True)
    return np.sum(np.log(np.sum(np.exp(log_comp - m), axis=1)) + m[:, 0])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(13)
    n, d = 2000, 5
    Xn = rng.standard_normal((n, d))
    yn = (Xn @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n) > 0).astype(float)
    return Xn, yn, da.from_array(Xn, chunks=(500, d)), da.from_array(yn, chunks=500)


def _data_reads(stream, name):
    """How many tasks computed a chunk of the array whose graph name is `name`."""
    return sum(1 for t in stream.data if str(t["key"]).startswith(f"('{name}'"))


def test_logistic_gradient_is_numpy_from_one_read_of_the_data(client, data):
    Xn, yn, X, y = data
    w = np.linspace(-0.5, 0.5, 5)
    # a graph of its own, so counting its chunk tasks counts reads of the data
    Xg = X.map_blocks(np.multiply, 1.0, dtype=X.dtype)
    with distributed.get_task_stream(client) as stream:
        value, g = sg.value_and_grad(logistic)(w, Xg, y)
    assert type(g) is np.ndarray and g.dtype == np.float64 and isinstance(value, np.floating)
    assert _data_reads(stream, Xg.name) == X.npartitions, "the data was read more than once"
    v_np, g_np = sg.value_and_grad(logistic)(w, Xn, yn)
    np.testing.assert_allclose(g, g_np, rtol=1e-12)
    np.testing.assert_allclose(value, v_np, rtol=1e-12)
    np.testing.assert_allclose(sg.grad(logistic)(w, X, y), g_np, rtol=1e-12)


def test_two_layer_network_gradients(client, data):
    Xn, yn, X, y = data
    rng = np.random.default_rng(1)
    params = (0.5 * rng.standard_normal((5, 8)), 0.1 * rng.standard_normal(8),
              0.5 * rng.standard_normal(8), 0.2)
    g = sg.grad(two_layer, wrt=(0, 1, 2, 3))(*params, X, y)
    g_np = sg.grad(two_layer, wrt=(0, 1, 2, 3))(*params, Xn, yn)
    assert [type(x) for x in g] == [np.ndarray, np.ndarray, np.ndarray, float]
    for a, b in zip(g, g_np, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_gaussian_mixture_log_likelihood_gradients(client, data):
    Xn, _, X, _ = data
    rng = np.random.default_rng(2)
    means = rng.standard_normal((3, 5))
    log_sigma, logits = np.array([0.1, -0.2, 0.3]), np.array([0.5, 0.0, -0.5])
    value, g = sg.value_and_grad(gmm_loglik, wrt=(0, 1, 2))(means, log_sigma, logits, X)
    value_np, g_np = sg.value_and_grad(gmm_loglik, wrt=(0, 1, 2))(means, log_sigma, logits, Xn)
    np.testing.assert_allclose(value, value_np, rtol=1e-12)
    for a, b in zip(g, g_np, strict=True):
        assert type(a) is np.ndarray
        np.testing.assert_allclose(a, b, rtol=1e-9)


def predictions(w, X):
    return np.tanh(X @ w)


def test_vjp_of_a_data_shaped_output(client, data):
    Xn, _, X, _ = data
    w = np.array([0.3, -0.2, 0.1, 0.4, -0.5])
    vn = np.cos(np.arange(Xn.shape[0]))
    out, ct = sg.vjp(predictions)(w, X, da.from_array(vn, chunks=500))
    out_np, ct_np = sg.vjp(predictions)(w, Xn, vn)
    assert isinstance(out, da.Array), "an output shaped by the data stays lazy"
    assert type(ct) is np.ndarray
    np.testing.assert_allclose(ct, ct_np, rtol=1e-12)
    np.testing.assert_allclose(out.compute(), out_np, rtol=1e-12)


def test_hvp_and_jvp_with_numpy_parameters(client, data):
    Xn, yn, X, y = data
    w, v = np.linspace(-0.5, 0.5, 5), np.array([1.0, 0.0, -1.0, 0.5, 2.0])
    value, hv = sg.hvp(logistic)(w, X, y, v)
    value_np, hv_np = sg.hvp(logistic)(w, Xn, yn, v)
    assert type(hv) is np.ndarray
    np.testing.assert_allclose(hv, hv_np, rtol=1e-10)
    np.testing.assert_allclose(value, value_np, rtol=1e-12)
    value, tangent = sg.jvp(logistic)(w, X, y, v)
    assert isinstance(tangent, np.floating)
    np.testing.assert_allclose(tangent, sg.jvp(logistic)(w, Xn, yn, v)[1], rtol=1e-10)


def test_gradients_with_respect_to_dask_arrays_stay_lazy_with_their_chunks(client, data):
    Xn, yn, X, y = data
    w = np.linspace(-0.5, 0.5, 5)
    wd = da.from_array(w, chunks=2)
    with dask.config.set(scheduler=_forbid):
        g_w, g_X = sg.grad(logistic, wrt=(0, 1))(wd, X, y)
    assert isinstance(g_w, da.Array) and g_w.chunks == wd.chunks
    assert isinstance(g_X, da.Array) and g_X.chunks == X.chunks
    g_w_np, g_X_np = sg.grad(logistic, wrt=(0, 1))(w, Xn, yn)
    got_w, got_X = dask.compute(g_w, g_X)
    np.testing.assert_allclose(got_w, g_w_np, rtol=1e-12)
    np.testing.assert_allclose(got_X, g_X_np, rtol=1e-12)
    # mixed: the NumPy parameter's gradient is computed, the data's stays lazy
    g_w, g_X = sg.grad(logistic, wrt=(0, 1))(w, X, y)
    assert type(g_w) is np.ndarray and isinstance(g_X, da.Array)
    np.testing.assert_allclose(g_w, g_w_np, rtol=1e-12)


def test_jacobian_and_hessian_are_lazy_and_right(client, data):
    Xn, yn, X, y = data
    w = np.linspace(-0.5, 0.5, 5)
    J, H = sg.jacobian(logistic), sg.hessian(logistic)
    j, h = J(w, X, y), H(w, X, y)
    assert isinstance(j, da.Array) and isinstance(h, da.Array)
    j_np, h_np = J(w, Xn, yn), H(w, Xn, yn)    # after a Dask call: NumPy in, NumPy out
    assert type(j_np) is np.ndarray and type(h_np) is np.ndarray
    got_j, got_h = dask.compute(j, h)
    np.testing.assert_allclose(got_j, j_np, rtol=1e-10)
    np.testing.assert_allclose(got_h, h_np, rtol=1e-10)


def scaled_until_large(s, X):
    y = X * s
    while np.sum(y * y) < 1.0e4:   # the condition reads a Dask value: computed, each trip
        y = y * 2.0
    return np.mean(np.sin(y))


def test_a_data_dependent_loop_computes_only_its_condition(client, data):
    Xn, _, X, _ = data
    g = sg.grad(scaled_until_large)(0.01, X)
    assert type(g) is float
    np.testing.assert_allclose(g, sg.grad(scaled_until_large)(0.01, Xn), rtol=1e-10)


def test_out_of_core_gradient_stays_under_the_worker_memory_limit(client):
    """2.5 times one worker's memory limit of data (more than both workers hold together), generated
    lazily; the gradient's graph streams it through the workers chunk by chunk. The peak resident
    memory of each worker process stays under its limit (a worker over it would be restarted by its
    nanny, failing the compute). float32 data: the same bytes in half the elements, so half the time
    spent generating them. (The example, examples/dask_logistic_regression.py, runs 4x the limit.)"""
    d = 32
    n = -(-5 * WORKER_MEMORY // (2 * 4 * d))
    rng = da.random.default_rng(0)
    X = rng.random((n, d), dtype=np.float32, chunks=(n // 128, d)) - np.float32(0.5)
    y = (rng.random(n, chunks=n // 128) > 0.5).astype(np.float32)
    assert X.nbytes >= 2.5 * WORKER_MEMORY
    w = np.zeros(d)
    client.run(reset_peak_memory)
    value, g = sg.value_and_grad(logistic)(w, X, y)
    np.testing.assert_allclose(value, np.log(2.0), rtol=1e-6)   # z = 0: log(1 + e^0) for every row
    assert type(g) is np.ndarray and g.shape == (d,) and np.all(np.isfinite(g))
    peaks = client.run(peak_memory)
    assert all(p < WORKER_MEMORY for p in peaks.values()), f"peak worker memory {peaks} over the limit"
