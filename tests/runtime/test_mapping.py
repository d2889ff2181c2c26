"""The mapping: each adapter gives the value NumPy (or PyTorch, for Tensor spellings) gives."""

from __future__ import annotations

import numpy as np
import pytest

from srcgrad.runtime import mapping as M

rng = np.random.default_rng(0)
A = rng.standard_normal((3, 4))
B = rng.standard_normal((4, 2))
C = rng.standard_normal((2, 3, 4))
S = rng.standard_normal((3, 3)) + 3 * np.eye(3)
SPD = S @ S.T
V = rng.standard_normal(4)

# (numpy function, args, kwargs): the adapter must return what the function returns
NUMPY_CASES = [
    (np.sin, (A,), {}), (np.add, (A, V), {}), (np.power, (np.abs(A), 2.5), {}),
    (np.sum, (C,), {"axis": (0, 2), "keepdims": True}), (np.mean, (A,), {"axis": 1}),
    (np.max, (A,), {"axis": 0}), (np.argmax, (A,), {"axis": 1}),
    (np.prod, (A,), {"axis": 1}), (np.prod, (A,), {}), (np.var, (A,), {"axis": 0, "ddof": 1}),
    (np.std, (C,), {"axis": (1, 2), "keepdims": True}), (np.cumsum, (A,), {}),
    (np.cumsum, (A,), {"axis": 1}), (np.cumprod, (A,), {"axis": 0}),
    (np.linalg.norm, (A,), {}), (np.linalg.norm, (V,), {"ord": 1}), (np.linalg.norm, (V,), {"ord": np.inf}),
    (np.linalg.norm, (A,), {"axis": 1, "keepdims": True}), (np.linalg.norm, (A,), {"ord": "fro"}),
    (np.linalg.norm, (C,), {"axis": (1, 2)}), (np.linalg.norm, (A,), {"ord": 3, "axis": 0}),
    (np.any, (A > 1,), {"axis": 0}), (np.all, (A > -5,), {}),
    (np.matmul, (C, B), {}), (np.dot, (A, B), {}), (np.dot, (A, V), {}), (np.dot, (V, V), {}),
    (np.dot, (2.0, A), {}), (np.dot, (C, B), {}), (np.dot, (C, rng.standard_normal((2, 4, 5))), {}),
    (np.vdot, (A, A), {}), (np.inner, (A, C), {}), (np.outer, (A[0], B), {}),
    (np.einsum, ("ij,jk->ik", A, B), {}), (np.einsum, ("ij,jk", A, B), {}),
    (np.einsum, ("...j,jk->...k", C, B), {}), (np.einsum, ("bij->j", C), {}),
    (np.einsum, ("i,i", V, V), {}),
    (np.tensordot, (C, rng.standard_normal((3, 4, 5))), {}),
    (np.tensordot, (C, rng.standard_normal((4, 2))), {"axes": ([2], [0])}),
    (np.tensordot, (A, B), {"axes": 1}),
    (np.trace, (A,), {}), (np.trace, (C,), {"offset": 1, "axis1": 1, "axis2": 2}),
    (np.diagonal, (C,), {"offset": -1, "axis1": 2, "axis2": 0}), (np.diag, (V,), {}),
    (np.diag, (V,), {"k": 1}), (np.diag, (V,), {"k": -2}), (np.diag, (A,), {"k": 1}),
    (np.tril, (A,), {}), (np.triu, (A,), {"k": 1}),
    (np.linalg.inv, (S,), {}), (np.linalg.solve, (S, A), {}), (np.linalg.solve, (S, A[:, 0]), {}),
    (np.linalg.det, (S,), {}), (np.linalg.cholesky, (SPD,), {}),
    (np.concatenate, ([A, A[:1]],), {}), (np.concatenate, ((A, B.T),), {"axis": None}),
    (np.concatenate, ([A, A],), {"axis": -1}), (np.stack, ([A, A],), {"axis": 1}),
    (np.vstack, ([V, V],), {}), (np.hstack, ([A, A],), {}), (np.hstack, ([V, V],), {}),
    (np.flip, (A,), {}), (np.flip, (C,), {"axis": (0, 2)}), (np.roll, (A, 2), {}),
    (np.roll, (A, (1, -1)), {"axis": (0, 1)}), (np.tile, (A, (2, 1, 2)), {}), (np.tile, (V, 2), {}),
    (np.repeat, (A, 2), {}), (np.repeat, (A, 3), {"axis": 1}),
    (np.pad, (A, 1), {}), (np.pad, (A, ((1, 0), (2, 3))), {"constant_values": 1.5}),
    (np.pad, (A, (1, 2)), {}), (np.ravel, (C,), {}), (np.moveaxis, (C, 0, -1), {}),
    (np.moveaxis, (C, (0, 1), (2, 0)), {}), (np.transpose, (C, (1, 2, 0)), {}), (np.swapaxes, (C, 0, 2), {}),
    (np.reshape, (A, (2, 6)), {}), (np.expand_dims, (A, (0, 3)), {}), (np.clip, (A, -0.5, 0.5), {}),
]


@pytest.mark.parametrize("fn, args, kwargs", NUMPY_CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(NUMPY_CASES)])
def test_numpy_function(fn, args, kwargs):
    before = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    got = M.NUMPY_FUNCTIONS[fn](*args, **kwargs)
    np.testing.assert_allclose(got, fn(*args, **kwargs), rtol=1e-12, atol=1e-12)
    for a, b in zip(args, before, strict=True):  # no user array is ever modified
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)


def test_split_functions():
    for got, want in zip(M.NUMPY_FUNCTIONS[np.split](A, 2, axis=1), np.split(A, 2, axis=1), strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(M.NUMPY_FUNCTIONS[np.split](A, [1, 3], axis=1), np.split(A, [1, 3], axis=1),
                         strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(M.NUMPY_FUNCTIONS[np.array_split](A, 3, axis=1), np.array_split(A, 3, axis=1),
                         strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="equal division"):
        M.NUMPY_FUNCTIONS[np.split](A, 3, axis=1)


def test_slogdet_returns_sign_and_logabsdet():
    sign, logabs = M.NUMPY_FUNCTIONS[np.linalg.slogdet](-S)
    want = np.linalg.slogdet(-S)
    assert sign == want[0] and np.isclose(logabs, want[1])
    assert M.NUMPY_FUNCTIONS[np.linalg.slogdet](S).logabsdet == pytest.approx(np.linalg.slogdet(S)[1])


def test_matrix_norms_are_numpys():
    m = np.cos(np.arange(24.0)).reshape(2, 3, 4)
    norm = M.NUMPY_FUNCTIONS[np.linalg.norm]
    for ord_ in (1, -1, 2, -2, np.inf, -np.inf, "nuc", "fro"):
        for axis, keepdims in (((1, 2), False), ((-1, -2), True)):
            np.testing.assert_allclose(norm(m, ord=ord_, axis=axis, keepdims=keepdims),
                                       np.linalg.norm(m, ord=ord_, axis=axis, keepdims=keepdims), rtol=1e-12,
                                       atol=1e-12)
    np.testing.assert_allclose(norm(m, ord=1, axis=(0, 2)), np.linalg.norm(m, ord=1, axis=(0, 2)))
    with pytest.raises(NotImplementedError, match="last two axes"):
        norm(m, ord=2, axis=(0, 2))  # singular values over other axes: not taken
    with pytest.raises(ValueError, match="Invalid norm order"):
        norm(m, ord=3, axis=(1, 2))


def test_python_floats_stay_floats():
    assert isinstance(M.NUMPY_FUNCTIONS[np.sin](0.5), float)
    assert M.NUMPY_FUNCTIONS[np.sin](0.5) == np.sin(0.5)


# (method name, args, kwargs): METHODS (ndarray meaning) against the ndarray method
NDARRAY_METHOD_CASES = [
    ("sum", (1,), {}), ("mean", (), {"axis": 0, "keepdims": True}), ("prod", (1,), {}), ("var", (), {}),
    ("std", (0,), {"ddof": 1}), ("cumsum", (), {}), ("cumsum", (1,), {}), ("cumprod", (0,), {}),
    ("dot", (B,), {}), ("trace", (), {}), ("diagonal", (1,), {}), ("flatten", (), {}), ("ravel", (), {}),
    ("repeat", (2,), {"axis": 0}), ("transpose", (), {}), ("transpose", (1, 0), {}), ("reshape", (2, 6), {}),
    ("reshape", ((6, 2),), {}), ("max", (), {"axis": 1}), ("argmin", (0,), {}), ("clip", (-0.1, 0.1), {}),
    ("any", (), {}), ("swapaxes", (0, 1), {}),
]


@pytest.mark.parametrize("name, args, kwargs", NDARRAY_METHOD_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(NDARRAY_METHOD_CASES)])
def test_ndarray_method(name, args, kwargs):
    np.testing.assert_allclose(M.METHODS[name](A, *args, **kwargs), getattr(A, name)(*args, **kwargs))


def test_attributes():
    assert M.ATTRIBUTES["shape"](A) == (3, 4) and M.ATTRIBUTES["ndim"](C) == 3
    assert M.ATTRIBUTES["size"](A) == 12
    np.testing.assert_array_equal(M.ATTRIBUTES["T"](A), A.T)
    np.testing.assert_array_equal(M.ATTRIBUTES["mT"](C), np.swapaxes(C, -1, -2))


# --------------------------------------------------------------------------- Tensor / torch meanings
def test_tensor_methods_where_torch_differs_from_numpy():
    T = M.TENSOR_METHODS
    np.testing.assert_array_equal(T["repeat"](A, 2, 1), np.tile(A, (2, 1)))  # torch repeat = np.tile
    np.testing.assert_array_equal(T["repeat"](A, (1, 2, 1)), np.tile(A, (1, 2, 1)))
    np.testing.assert_array_equal(M.METHODS["repeat"](A, 2), np.repeat(A, 2))  # ndarray keeps NumPy's
    np.testing.assert_array_equal(T["repeat_interleave"](A, 2, dim=1), np.repeat(A, 2, axis=1))
    np.testing.assert_array_equal(T["transpose"](C, 0, 2), np.swapaxes(C, 0, 2))
    assert T["var"](A) == pytest.approx(np.var(A, ddof=1))  # unbiased by default
    assert T["std"](A, 1, unbiased=False)[0] == pytest.approx(np.std(A[0]))
    np.testing.assert_allclose(T["std"](A, dim=0, correction=0), np.std(A, axis=0))
    assert T["size"](A) == (3, 4) and T["size"](A, 1) == 4
    values, indices = T["max"](A, 1)
    np.testing.assert_array_equal(values, A.max(1))
    np.testing.assert_array_equal(indices, A.argmax(1))
    assert T["max"](A, dim=0, keepdim=True).values.shape == (1, 4)
    assert T["max"](A) == A.max()
    np.testing.assert_array_equal(T["max"](A, A[::-1]), np.maximum(A, A[::-1]))
    np.testing.assert_array_equal(T["min"](A, 0).indices, A.argmin(0))
    assert set(M.TENSOR_OVERRIDES) <= set(M.TENSOR_METHODS)


def test_tensor_only_methods():
    T = M.TENSOR_METHODS
    np.testing.assert_allclose(T["mm"](A, B), A @ B)
    np.testing.assert_allclose(T["norm"](A), np.sqrt((A * A).sum()))
    np.testing.assert_allclose(T["norm"](C, p=1, dim=(1, 2)), np.abs(C).sum((1, 2)))
    np.testing.assert_allclose(T["norm"](A, 2, 1, True), np.linalg.norm(A, axis=1, keepdims=True))
    e = np.exp(A - A.max(1, keepdims=True))
    np.testing.assert_allclose(T["softmax"](A, 1), e / e.sum(1, keepdims=True))
    np.testing.assert_allclose(T["log_softmax"](A, dim=1), np.log(e / e.sum(1, keepdims=True)))
    np.testing.assert_allclose(T["logsumexp"](A, 0), np.log(np.exp(A).sum(0)))
    np.testing.assert_array_equal(T["unsqueeze"](A, 1).shape, (3, 1, 4))
    np.testing.assert_array_equal(T["expand"](A[:1], 5, -1), np.broadcast_to(A[:1], (5, 4)))
    np.testing.assert_array_equal(T["expand"](V, (2, 3, 4)).shape, (2, 3, 4))
    assert T["flatten"](C).shape == (24,) and T["flatten"](C, 1).shape == (2, 12)
    assert T["flatten"](C, 0, 1).shape == (6, 4)
    np.testing.assert_array_equal(T["flip"](C, (0, 2)), np.flip(C, (0, 2)))
    np.testing.assert_array_equal(T["roll"](A, 1, 0), np.roll(A, 1, 0))
    pieces = T["split"](C, 3, dim=2)
    assert [p.shape[2] for p in pieces] == [3, 1]
    assert [p.shape[1] for p in T["split"](C, [1, 2], 1)] == [1, 2]
    assert [p.shape[1] for p in T["chunk"](C, 2, 1)] == [2, 1]
    np.testing.assert_allclose(T["inverse"](S), np.linalg.inv(S))
    np.testing.assert_allclose(T["logdet"](SPD), np.log(np.linalg.det(SPD)))


def test_torch_functions():
    F = M.TORCH_FUNCTIONS
    np.testing.assert_array_equal(F["cat"]((A, A), dim=1), np.concatenate([A, A], 1))
    np.testing.assert_array_equal(F["stack"]([A, A], 0), np.stack([A, A]))
    np.testing.assert_allclose(F["bmm"](C, np.swapaxes(C, 1, 2)), C @ np.swapaxes(C, 1, 2))
    np.testing.assert_allclose(F["outer"](V, V), np.outer(V, V))
    np.testing.assert_allclose(F["einsum"]("ij,jk->ik", [A, B]), A @ B)
    np.testing.assert_allclose(F["linalg.solve"](S, A), np.linalg.solve(S, A))
    np.testing.assert_allclose(F["linalg.cholesky"](SPD), np.linalg.cholesky(SPD))
    np.testing.assert_allclose(F["linalg.vector_norm"](A, ord=np.inf), np.abs(A).max())
    np.testing.assert_allclose(F["linalg.norm"](A, dim=1), np.linalg.norm(A, axis=1))
    np.testing.assert_allclose(F["nn.functional.pad"](A, (1, 2)), np.pad(A, ((0, 0), (1, 2))))
    np.testing.assert_allclose(F["nn.functional.pad"](A, (1, 2, 3, 0), value=1.0),
                               np.pad(A, ((3, 0), (1, 2)), constant_values=1.0))
    np.testing.assert_allclose(F["tile"](A, (2,)), np.tile(A, 2))
    np.testing.assert_allclose(F["diag"](V), np.diag(V))
    assert set(M.TENSOR_METHODS) - {"__abs__", "__neg__", "__matmul__", "__rmatmul__"} <= set(F)


def test_against_torch_when_installed():
    torch = pytest.importorskip("torch")
    t = torch.tensor(C)
    T = M.TENSOR_METHODS
    np.testing.assert_allclose(T["repeat"](C, 2, 1, 3), t.repeat(2, 1, 3).numpy())
    np.testing.assert_allclose(T["transpose"](C, 0, 2), t.transpose(0, 2).numpy())
    np.testing.assert_allclose(T["var"](C, 1), t.var(1).numpy())
    np.testing.assert_allclose(T["std"](C, (0, 2), keepdim=True), t.std((0, 2), keepdim=True).numpy())
    np.testing.assert_allclose(T["norm"](C, p=3), t.norm(p=3).numpy())
    np.testing.assert_allclose(T["flatten"](C, 1, 2), t.flatten(1, 2).numpy())
    for got, want in zip(T["split"](C, 3, 2), t.split(3, 2), strict=True):
        np.testing.assert_allclose(got, want.numpy())
    for got, want in zip(T["chunk"](C, 3, 2), t.chunk(3, 2), strict=True):
        np.testing.assert_allclose(got, want.numpy())
    np.testing.assert_allclose(M.TORCH_FUNCTIONS["nn.functional.pad"](C, (1, 0, 0, 2)),
                               torch.nn.functional.pad(t, (1, 0, 0, 2)).numpy())
    values, indices = T["max"](C, 1, True)
    tv, ti = t.max(1, keepdim=True)
    np.testing.assert_allclose(values, tv.numpy())
    np.testing.assert_array_equal(indices, ti.numpy())


def test_einsum_subscripts_are_made_explicit():
    assert M._explicit_subscripts("ij,jk", (A, B)) == "ij,jk->ik"
    assert M._explicit_subscripts("...j,jk->...k", (C, B)) == "abj,jk->abk"
    with pytest.raises(ValueError, match="operands"):
        M._explicit_subscripts("ij,jk", (A,))


def test_lookup_function():
    assert M.lookup_function(np.sin) is not None
    assert M.lookup_function(abs) is not None
    assert M.lookup_function(len) is None
    assert M.lookup_function([]) is None  # unhashable


# ------------------------------------------------------------------- builtin max / min of two numbers
def _max_scaled(x, y):
    return max(x, y) * 2.0 + min(x, y)


@pytest.mark.parametrize("x, y", [(1.0, float("nan")), (float("nan"), 1.0), (2.0, 2.0), (-1.0, 3.0),
                                  (3.0, -1.0), (float("inf"), 1.0)])
def test_builtin_max_and_min_of_two_numbers_choose_as_python_does(x, y):
    """max(a, b) is b only where b > a (a nan second is never chosen, the first of equal ones is):
    the compiled value is the plain function's, the derivative goes to the number chosen."""
    import math

    import srcgrad as sg

    plain = _max_scaled(x, y)
    value, grads = sg.value_and_grad(_max_scaled, wrt=(0, 1))(x, y)
    assert value == plain or (math.isnan(value) and math.isnan(plain))
    picks_max_y = y > x
    picks_min_y = y < x
    want = (2.0 * (not picks_max_y) + (not picks_min_y), 2.0 * picks_max_y + picks_min_y)
    if not math.isnan(plain):
        assert grads == pytest.approx(want)
    jv = sg.jvp(_max_scaled, wrt=(0, 1))(x, y, (1.0, 0.0))
    assert jv[0] == plain or (math.isnan(jv[0]) and math.isnan(plain))


def test_array_like_positions_read_numpys_own_signatures():
    assert M.array_like_positions(np.sum) == (0,)
    assert M.array_like_positions(np.dot) == (0, 1)
    assert M.array_like_positions(np.maximum) == (0, 1)      # a ufunc's inputs
    assert M.array_like_positions(np.where) == (0, 1, 2)
    assert M.array_like_positions(np.linalg.norm) == (0,)
    assert M.array_like_positions(np.zeros) == ()            # a shape, not an array
    assert M.array_like_positions(np.take) == (0,)           # indices stay what they are
    assert M.array_like_positions(max) == ()                 # Python's max([a, b]): the largest item
    for joiner in (np.stack, np.concatenate, np.hstack, np.vstack):
        assert M.lookup_function(joiner).array_sequences == ("arrays",)


def test_no_derivative_attributes_follow_their_records():
    assert {"shape", "ndim", "size"} <= M.NO_DERIVATIVE_ATTRIBUTES
    assert not {"T", "real", "imag", "mT"} & M.NO_DERIVATIVE_ATTRIBUTES
