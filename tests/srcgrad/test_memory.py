"""Transforms of functions created per step (a closure rebuilt per training step, as JAX users write):
the build is reused (a lookup and a clone, not a transform), the reused code reads the new closure's
values, and nothing is left behind when the transforms are gone: no linecache entries, no memory, no
functions kept alive."""
# ruff: noqa: B023  (closures over the loop's variables are the point)

from __future__ import annotations

import copy
import functools
import gc
import linecache
import pickle
import sys
import threading
import tracemalloc
import weakref

import numpy as np
import pytest

import srcgrad as sg
from srcgrad import codegen, forward, pipeline, reuse

SCALE = 2.0        # a module global the tests rebind


def _srcgrad_entries() -> int:
    return sum(1 for k in linecache.cache if k.startswith("<srcgrad"))


@pytest.fixture
def builds(monkeypatch):
    """How many times the compiler ran (Builder.reverse) during the test."""
    count = [0]
    real = pipeline.Builder.reverse

    def counting(self, *args, **kwargs):
        count[0] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pipeline.Builder, "reverse", counting)
    return count


def test_rebuilt_closure_reads_the_new_values(builds):
    rng = np.random.default_rng(0)
    for step in range(30):
        n = 5 if step < 20 else 7                    # the closure's array changes shape too
        X_batch = rng.normal(size=n)
        w = rng.normal(size=n)

        def loss(w):
            return np.sum((w * X_batch) ** 2)

        g = sg.grad(loss)
        np.testing.assert_allclose(g(w), 2 * w * X_batch**2, rtol=1e-12)
    # the generic build and one variant per shape of w: the other steps reuse them
    assert builds[0] == 3


def test_rebuilt_closure_scalar_and_value_and_grad(builds):
    for step in range(10):
        c = 0.5 + step

        def loss(w):
            return c * np.sum(np.sin(w))

        w = np.linspace(0.0, 1.0, 4)
        value, grad = sg.value_and_grad(loss)(w)
        np.testing.assert_allclose(value, c * np.sum(np.sin(w)), rtol=1e-12)
        np.testing.assert_allclose(grad, c * np.cos(w), rtol=1e-12)
        out, vjp = sg.vjp(loss)(w, 2.0)
        np.testing.assert_allclose(vjp, 2 * c * np.cos(w), rtol=1e-12)
        np.testing.assert_allclose(sg.grad(loss)(0.3), c * np.cos(0.3), rtol=1e-12)  # Python floats
    assert builds[0] <= 6


def test_a_closure_whose_type_or_function_changes_is_built_again(builds):
    w = np.array([0.1, 0.2, 0.3])
    for act, dact in ((np.sin, np.cos), (np.tanh, lambda x: 1 - np.tanh(x) ** 2), (np.sin, np.cos)):

        def loss(w):
            return np.sum(act(w))

        np.testing.assert_allclose(sg.grad(loss)(w), dact(w), rtol=1e-12)
    for c in (2.0, np.array([1.0, 2.0, 3.0])):      # a float, then an array: another type

        def loss2(w):
            return np.sum(c * w * w)

        np.testing.assert_allclose(sg.grad(loss2)(w), 2 * c * w, rtol=1e-12)


def test_rebuilt_closure_with_a_default_follows_it():
    w = np.array([0.1, 0.2, 0.3])
    for X_batch in (np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.5, 4.0])):

        def loss(w, X=X_batch):
            return np.sum(w * X)

        np.testing.assert_allclose(sg.grad(loss)(w), X_batch, rtol=1e-12)


def test_module_global_rebound_is_honoured_by_reused_builds():
    global SCALE
    w = np.array([0.1, 0.2, 0.3])
    try:
        for step in range(3):
            X = np.full(3, step + 1.0)

            def loss(w):
                return SCALE * np.sum(w * X)

            g = sg.grad(loss)
            np.testing.assert_allclose(g(w), SCALE * X, rtol=1e-12)
            SCALE = SCALE + 1.0                       # rebound between calls: read again
            np.testing.assert_allclose(g(w), SCALE * X, rtol=1e-12)
    finally:
        SCALE = 2.0


def test_closures_alive_together_keep_their_own_values():
    def make(X):
        def loss(w):
            return np.sum(w * X)
        return sg.grad(loss)

    w = np.ones(3)
    gs = [make(np.full(3, float(i))) for i in range(4)]
    for _ in range(2):
        for i, g in enumerate(gs):
            np.testing.assert_allclose(g(w), np.full(3, float(i)))
    errors = []

    def hammer(i):
        for _ in range(200):
            if not np.array_equal(gs[i](w), np.full(3, float(i))):
                errors.append(i)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_transforms_live_as_long_as_the_function():
    def loss(w):
        return np.sum(w * w)

    g = sg.grad(loss)
    assert sg.grad(loss) is g                         # cached on the function
    wrapped = functools.wraps(loss)(lambda w: 2.0 * loss(w))  # noqa: F821 -- copies loss.__dict__
    assert sg.grad(wrapped) is not g
    np.testing.assert_allclose(sg.grad(wrapped)(np.ones(2)), 4.0 * np.ones(2))
    assert pickle.loads(pickle.dumps(loss.__dict__))["__srcgrad_transforms__"] == {}
    assert copy.deepcopy(loss.__dict__)["__srcgrad_transforms__"] == {}
    ref = weakref.ref(loss)
    del loss, g, wrapped
    gc.collect()
    assert ref() is None


def test_no_growth_across_rebuilt_closures():
    rng = np.random.default_rng(1)
    w = rng.normal(size=100)

    def steps(n):
        refs = []
        for _ in range(n):
            X_batch = rng.normal(size=100)

            def loss(w):
                return np.sum((w * X_batch) ** 2)

            g = sg.grad(loss)
            g(w)
            refs.append(weakref.ref(loss))
        del loss, g
        gc.collect()
        return refs

    steps(200)                                        # warm: the build, NumPy's caches
    entries = len(linecache.cache)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        refs = steps(2000)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(linecache.cache) == entries
    assert all(r() is None for r in refs)             # no function (nor its batch) kept
    assert grown < 256 * 1024, f"{grown} bytes kept after 2000 transforms"   # ~28 KB each, before


def test_generated_sources_leave_linecache_with_their_transforms():
    """Functions with code of their own (a notebook cell run again): each transform compiles new
    code, registered with linecache while it is used and released when it is garbage-collected."""
    reuse.clear()
    gc.collect()
    base = _srcgrad_entries()
    w = np.array([0.1, 0.2])
    for i in range(2 * reuse.MAX_CODES + 20):
        name = f"<test_memory fresh {i}>"
        src = f"def loss(w):\n    return np.sum(np.sin(w)) * {i + 1.0}\n"
        linecache.cache[name] = (len(src), None, src.splitlines(True), name)
        ns = {"np": np}
        exec(compile(src, name, "exec"), ns)
        np.testing.assert_allclose(sg.grad(ns["loss"])(w), (i + 1.0) * np.cos(w))
        del linecache.cache[name]
    del ns
    gc.collect()
    # only the kept templates' sources (generic and one variant each) remain
    assert _srcgrad_entries() - base <= 2 * reuse.MAX_CODES
    reuse.clear()
    gc.collect()
    assert _srcgrad_entries() == base


def _bad(w):
    return np.sum(w @ np.ones((4, 4)))                # a shape error for w of length 3


def test_generated_source_visible_in_tracebacks_even_after_clearcache():
    g = sg.grad(_bad)
    with pytest.raises(ValueError):
        g(np.ones(3))                      # builds the variant that raises
    for name in [k for k in linecache.cache if k.startswith("<srcgrad grad__bad")]:
        del linecache.cache[name]          # as linecache.clearcache() would (not called: other tests'
        #                                    live transforms, read back by grad of grad, need theirs)
    with pytest.raises(ValueError) as info:
        g(np.ones(3))
    filename = next(tb.tb_frame.f_code.co_filename for tb in _walk(info.value.__traceback__)
                    if tb.tb_frame.f_code.co_filename.startswith("<srcgrad"))
    assert filename in codegen.SOURCES
    assert linecache.getlines(filename)    # put back for the traceback
    if sys.version_info >= (3, 11):
        assert any("w @ np.ones((4, 4))" in n for n in info.value.__notes__)


def _walk(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


# ------------------------------------------------------------------ forward mode and its compositions
def _forward_kinds():
    """(name, transform-and-call, expected) for a closure over X: loss(w) = sum(sin(w * X) ** 2)."""
    v = np.linspace(-1.0, 1.0, 5)

    def hess(w, X):
        return np.diag(2 * X**2 * np.cos(2 * w * X))

    return [
        ("jvp", lambda loss, w: sg.jvp(loss)(w, v)[1],
         lambda w, X: np.sum(X * np.sin(2 * w * X) * v)),
        ("hvp", lambda loss, w: sg.hvp(loss)(w, v)[1], lambda w, X: hess(w, X) @ v),
        ("hessian", lambda loss, w: sg.hessian(loss)(w), hess),
        ("jacobian", lambda loss, w: sg.jacobian(loss)(w), lambda w, X: X * np.sin(2 * w * X)),
    ]


@pytest.mark.parametrize("kind", [k[0] for k in _forward_kinds()])
def test_forward_transforms_of_rebuilt_closures_follow_the_closure_and_reuse(kind, builds, monkeypatch):
    real = forward.ForwardBuilder.top

    def counting(self, *args, **kwargs):
        builds[0] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(forward.ForwardBuilder, "top", counting)
    _, transform, expected = next(k for k in _forward_kinds() if k[0] == kind)
    rng = np.random.default_rng(2)
    w = rng.normal(size=5)
    for _ in range(20):
        X = rng.normal(size=5)

        def loss(w):
            return np.sum(np.sin(w * X) ** 2)

        np.testing.assert_allclose(transform(loss, w), expected(w, X), rtol=1e-10, atol=1e-12)
    assert builds[0] <= 4           # the first closure's builds only (the gradient code and its transforms)


@pytest.mark.parametrize("kind", [k[0] for k in _forward_kinds()])
def test_no_growth_across_forward_transforms_of_rebuilt_closures(kind):
    _, transform, _ = next(k for k in _forward_kinds() if k[0] == kind)
    rng = np.random.default_rng(3)
    w = rng.normal(size=5)

    def steps(n):
        refs = []
        for _ in range(n):
            X = rng.normal(size=5)

            def loss(w):
                return np.sum(np.sin(w * X) ** 2)

            transform(loss, w)
            refs.append(weakref.ref(loss))
        del loss
        gc.collect()
        return refs

    steps(50)                                          # warm: the builds, NumPy's caches
    entries = len(linecache.cache)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        refs = steps(1000)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(linecache.cache) == entries
    assert all(r() is None for r in refs)              # no function (nor its data) kept
    # before: ~9 KB (jvp), ~38 KB (hvp), ~105 KB (hessian), ~19 KB (jacobian) and 1-6 linecache entries
    # kept per transform
    assert grown < 256 * 1024, f"{grown} bytes kept after 1000 {kind} transforms"


def test_forward_transforms_of_fresh_code_leave_nothing_behind():
    """Functions with code of their own each time (a notebook cell run again): every jvp/hvp/hessian
    builds anew, and its generated sources (the gradient code hvp reads back included) leave linecache
    with it."""
    reuse.clear()
    gc.collect()
    base = _srcgrad_entries()
    w = np.array([0.1, 0.2])
    for i in range(30):
        name = f"<test_memory forward {i}>"
        src = f"def loss(w):\n    return np.sum(np.sin(w)) * {i + 1.0}\n"
        linecache.cache[name] = (len(src), None, src.splitlines(True), name)
        ns = {"np": np}
        exec(compile(src, name, "exec"), ns)
        c = i + 1.0
        np.testing.assert_allclose(sg.jvp(ns["loss"])(w, np.ones(2))[1], c * np.sum(np.cos(w)))
        np.testing.assert_allclose(sg.hvp(ns["loss"])(w, np.ones(2))[1], -c * np.sin(w))
        np.testing.assert_allclose(sg.hessian(ns["loss"])(w), -c * np.diag(np.sin(w)))
        del linecache.cache[name]
    del ns
    reuse.clear()
    gc.collect()
    assert _srcgrad_entries() == base
