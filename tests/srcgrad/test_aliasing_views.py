"""Writes through views, for every spelling that may make one: the compiler keeps no list of
view-returning names (its alias checks compare the objects and their memory at run time), so each
spelling is checked against NumPy itself. Where NumPy's result shares the array's memory, an in-place
write into either name, with the other read later, is refused before it happens; where it does not, the
write is differentiated like any other. The spellings are those of the list the compiler used to keep
(`mutation.VIEW_METHODS` / `VIEW_FUNCTIONS`), in both spellings, through module aliases and
`from numpy import`, and others that view (slices, flips, array-API names) or copy."""

import linecache

import numpy as np
import pytest
from numpy import reshape as np_reshape
from numpy import transpose as np_transpose

import srcgrad as sg
from srcgrad import TransformError
from tests.srcgrad.util import numeric_grad

# what the functions below see as globals: `import numpy as np`, `import numpy as xp`, and
# `from numpy import reshape, transpose`
GLOBALS = {"np": np, "xp": np, "reshape": np_reshape, "transpose": np_transpose}

OLD_METHODS = ["A.reshape(9)", "A.ravel()", "A.view()", "A.transpose()", "A.swapaxes(0, 1)", "A.squeeze()",
               "A.T", "A.mT", "A.real", "A.imag", "A.diagonal()"]
OLD_FUNCTIONS = ["np.reshape(A, 9)", "np.ravel(A)", "np.transpose(A)", "np.swapaxes(A, 0, 1)",
                 "np.moveaxis(A, 0, 1)", "np.squeeze(A)", "np.expand_dims(A, 0)", "np.asarray(A)",
                 "np.broadcast_to(A, (2, 3, 3))", "np.atleast_1d(A)", "np.atleast_2d(A)", "np.diagonal(A)",
                 "np.real(A)", "np.imag(A)"]
OTHERS = ["xp.reshape(A, 9)", "reshape(A, 9)", "transpose(A)", "xp.diagonal(A)", "np.flip(A, 0)",
          "A[::-1]", "A[1:]", "A[0]", "np.permute_dims(A)", "np.matrix_transpose(A)", "np.atleast_3d(A)",
          "A.astype(np.float64, copy=False)",
          # copies: the write is differentiated
          "A.flatten()", "A.copy()", "np.copy(A)", "np.array(A)", "A + 0.0", "A.astype(np.float64)"]

# v = <spelling of a view of A>, then a write into one name while the other is read afterwards
TEMPLATES = {
    "write_into_the_array": "def f(x):\n    A = np.outer(x, x)\n    v = {e}\n    A *= x[1]\n"
                            "    return np.sum(v * v) + np.sum(A)\n",
    "write_into_the_view": "def f(x):\n    A = np.outer(x, x)\n    v = {e}\n    v *= x[1]\n"
                           "    return np.sum(A * A) + np.sum(v)\n",
}
X = np.array([0.5, -1.0, 2.0])


def _function(spelling: str, write: str):
    src = TEMPLATES[write].format(e=spelling)
    filename = f"<test_aliasing_views {write}: {spelling}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)  # for the compiler
    ns = dict(GLOBALS)
    exec(compile(src, filename, "exec"), ns)
    return ns["f"]


def _numpy_shares(spelling: str) -> bool:
    A = np.outer(X, X)
    return bool(np.shares_memory(eval(spelling, {**GLOBALS, "A": A}), A))


@pytest.mark.parametrize("write", sorted(TEMPLATES))
@pytest.mark.parametrize("spelling", OLD_METHODS + OLD_FUNCTIONS + OTHERS)
def test_a_write_through_a_view_is_refused_exactly_where_numpy_shares_memory(spelling, write):
    f = _function(spelling, write)
    if _numpy_shares(spelling):
        with pytest.raises(TransformError, match="names the same array"):
            sg.grad(f)(X.copy())
        with pytest.raises(TransformError, match="names the same array"):
            sg.jvp(f)(X.copy(), np.ones(3))
        return
    try:
        f(X.copy())
    except ValueError:  # NumPy refuses the write itself (A.imag of a real array is a read-only copy)
        pytest.skip("NumPy cannot run this program")
    x = X.copy()
    expected = numeric_grad(f, [X.copy()], 0)
    np.testing.assert_allclose(sg.grad(f)(x), expected, rtol=1e-6, atol=1e-8)
    _, t = sg.jvp(f)(x, np.ones(3))
    np.testing.assert_allclose(t, expected.sum(), rtol=1e-6, atol=1e-8)
    assert np.array_equal(x, X)


def test_every_old_name_is_covered_in_both_spellings():
    """The names the compiler's hand-kept tables held, each spelled here as the tables allowed it."""
    old_methods = {"reshape", "ravel", "view", "transpose", "swapaxes", "squeeze", "T", "mT", "real",
                   "imag", "diagonal"}
    old_functions = {"reshape", "ravel", "transpose", "swapaxes", "moveaxis", "squeeze", "expand_dims",
                     "asarray", "broadcast_to", "atleast_1d", "atleast_2d", "diagonal", "real", "imag"}
    assert {e[2:].split("(")[0] for e in OLD_METHODS} == old_methods
    assert {e[3:].split("(")[0] for e in OLD_FUNCTIONS} == old_functions
