"""The spec table of the generic rule test: for every primitive, cases that sample inputs in its domain.

A case is built from samplers (functions of a NumPy random generator returning a float64 array or a
Python float), static keyword arguments, and optional notes: a restriction of the test directions
(`direction`, for cholesky's symmetric inputs), a reason the case cannot run on array-api-strict
(`strict_skip`), or looser tolerances. `STRICT_SKIP` names whole primitives that cannot exist there.
`NONDIFF` gives value cases for the non-differentiable primitives, against NumPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

Sampler = Callable[[np.random.Generator], Any]


@dataclass
class Case:
    args: tuple
    kwargs: dict = field(default_factory=dict)
    id: str = ""
    direction: Callable[[int, Any], Any] | None = None
    strict_skip: str | None = None
    second_order: bool = True
    tol: dict = field(default_factory=dict)
    argnums: tuple | None = None

    def sample(self, rng: np.random.Generator) -> tuple:
        return tuple(a(rng) if callable(a) else a for a in self.args)


# ------------------------------------------------------------------------------------------- samplers
def real(*shape: int) -> Sampler:
    """Standard normal values; a Python float when no shape is given."""
    if not shape:
        return lambda r: float(r.standard_normal())
    return lambda r: r.standard_normal(shape)


def arr0() -> Sampler:
    """A 0-d float64 array (not a Python float)."""
    return lambda r: np.asarray(r.standard_normal())


def uniform(lo: float, hi: float, *shape: int) -> Sampler:
    if not shape:
        return lambda r: float(r.uniform(lo, hi))
    return lambda r: r.uniform(lo, hi, shape)


def pos(*shape: int) -> Sampler:
    return uniform(0.5, 2.0, *shape)


def away(*shape: int) -> Sampler:
    """Values with |x| in [0.3, 2] and random signs: away from kinks at 0."""
    def s(r: np.random.Generator) -> Any:
        mag = r.uniform(0.3, 2.0, shape) * r.choice([-1.0, 1.0], shape)
        return float(mag) if not shape else mag
    return s


def distinct(*shape: int) -> Sampler:
    """Values whose pairwise gaps are at least 0.1: max/min without ties (ties are not differentiable)."""
    n = math.prod(shape)
    return lambda r: (r.permutation(n) * 0.3 + r.uniform(0, 0.1, n)).reshape(shape) - 0.15 * n


def well_conditioned(*shape: int) -> Sampler:
    """Square matrices (batched) with a dominant diagonal: invertible, det of either sign unlikely 0."""
    n = shape[-1]
    return lambda r: r.standard_normal(shape) + 3.0 * np.eye(n)


def full_rank(*shape: int) -> Sampler:
    """Matrices (batched, any m x n) with a dominant leading diagonal: full rank, well conditioned."""
    return lambda r: r.standard_normal(shape) + 3.0 * np.eye(shape[-2], shape[-1])


def spd(*shape: int) -> Sampler:
    n = shape[-1]

    def s(r: np.random.Generator) -> Any:
        a = r.standard_normal(shape)
        return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)
    return s


def fixed(value: Any) -> Sampler:
    return lambda r: np.array(value, dtype=np.float64)


def mask(*shape: int) -> Sampler:
    return lambda r: r.random(shape) > 0.5


def symmetric(i: int, u: Any) -> Any:
    """Cholesky reads a symmetric matrix: test along symmetric perturbations only."""
    return 0.5 * (u + u.mT) if hasattr(u, "mT") else 0.5 * (u + np.swapaxes(u, -1, -2))


# Primitives with complex outputs: the generic harness pairs them with real weights, its float64 copies
# keeping the real part on purpose; tests/runtime/conftest.py silences that ComplexWarning for them only.
COMPLEX_OUTPUT = frozenset({"fft", "ifft", "rfft"})


# ------------------------------------------------------------------------------------- spec builders
def unary(sampler: Callable[..., Sampler], scalar: bool = True) -> list[Case]:
    """Elementwise unary: a matrix, a 0-d array, and (when the rule allows) a Python float."""
    cases = [Case((sampler(3, 4),), id="2d"), Case((lambda r: np.asarray(sampler(1)(r)[0]),), id="0d")]
    if scalar:
        cases.append(Case((sampler(),), id="float"))
    return cases


def binary(sx: Callable[..., Sampler], sy: Callable[..., Sampler]) -> list[Case]:
    """Elementwise binary: same shapes, broadcasting both ways, and Python floats."""
    return [
        Case((sx(3, 4), sy(3, 4)), id="same"),
        Case((sx(2, 3, 4), sy(3, 1)), id="bcast-y"),
        Case((sx(4,), sy(3, 1)), id="bcast-both"),
        Case((sx(3, 4), sy()), id="float-y"),
        Case((sx(), sy(2, 3)), id="float-x"),
        Case((sx(), sy()), id="floats"),
    ]


def reduction(sampler: Callable[..., Sampler], zero_d: bool = True, **extra: Any) -> list[Case]:
    """Reductions: all axes, one axis, several axes with keepdims, a negative axis, and a 0-d array."""
    cases = [
        Case((sampler(3, 4),), dict(extra), id="all"),
        Case((sampler(3, 4),), dict(extra, axis=0), id="axis0"),
        Case((sampler(2, 3, 4),), dict(extra, axis=(0, 2), keepdims=True), id="axes02-keep"),
        Case((sampler(2, 3, 4),), dict(extra, axis=-1), id="axis-1"),
    ]
    if zero_d:
        cases.append(Case((lambda r: np.asarray(sampler(1)(r)[0]),), dict(extra), id="0d"))
    return cases


LINALG_TOL = {"atol": 1e-5, "rtol": 1e-4}
NO_ADD_AT = ("repeated integer indices must accumulate (add.at), which the standard lacks: index_add "
             "refuses them there rather than add once")
NO_FANCY_SETITEM = "the standard has no assignment through integer-array indices"

SPECS: dict[str, list[Case]] = {
    # ------------------------------------------------------------------------------ elementwise, unary
    "copy": unary(real), "neg": unary(real),
    "item": [Case((real(1, 1),), id="1x1"), Case((real(),), id="float")],
    "to_float": [Case((real(1, 1),), id="1x1"), Case((real(),), id="float")],
    "abs": unary(away), "exp": unary(real), "expm1": unary(real),
    "log": unary(pos), "log1p": unary(pos), "log2": unary(pos), "log10": unary(pos),
    "sqrt": unary(pos), "square": unary(real), "reciprocal": unary(away), "sin": unary(real),
    "cos": unary(real), "tan": unary(lambda *s: uniform(-1.2, 1.2, *s)),
    "arcsin": unary(lambda *s: uniform(-0.9, 0.9, *s)), "arccos": unary(lambda *s: uniform(-0.9, 0.9, *s)),
    "arctan": unary(real), "sinh": unary(real), "cosh": unary(real), "tanh": unary(real),
    "arcsinh": unary(real), "arccosh": unary(lambda *s: uniform(1.2, 3.0, *s)),
    "arctanh": unary(lambda *s: uniform(-0.9, 0.9, *s)), "sigmoid": unary(real), "relu": unary(away),
    "softplus": unary(real), "erf": unary(real), "cbrt": unary(away),
    "lgamma": [Case((pos(3, 4),), id="pos"), Case((uniform(2.0, 30.0),), id="float"),
               Case((uniform(-0.9, -0.1, 5),), id="negative")],
    "polygamma": [Case((pos(3, 4),), id="digamma"),  # psi'' (n = 2) is nan at x < 0: first order there
                  Case((uniform(-0.9, -0.1, 4),), id="digamma-negative", second_order=False),
                  Case((pos(5),), {"n": 1}, id="trigamma"), Case((uniform(1.0, 20.0),), {"n": 2}, id="n2")],
    "astype": [Case((real(3, 4),), {"dtype": np.float64}, id="f64"),
               Case((real(3, 4),), {"dtype": np.float32}, id="f32",
                    tol={"eps": 1e-2, "atol": 1e-4, "rtol": 1e-4}, second_order=False),
               Case((real(3, 4),), {"dtype": "int64"}, id="to-int")],
    # ----------------------------------------------------------------------------- elementwise, binary
    "add": binary(real, real), "subtract": binary(real, real), "multiply": binary(real, real),
    "divide": binary(real, away), "power": binary(pos, real) + [
        Case((real(3, 4), 3.0), id="negative-base-int-exponent", argnums=(0,))],
    # ties are not differentiable: independent normals tie with probability 0; 0.2 is >= 0.1 from
    # every value distinct() draws
    "maximum": [Case((real(3, 4), real(3, 4)), id="same"), Case((real(2, 3, 4), real(3, 1)), id="bcast"),
                Case((distinct(2, 3), 0.2), id="float-y")],
    "minimum": [Case((real(3, 4), real(3, 4)), id="same"), Case((0.2, distinct(2, 3)), id="float-x")],
    "arctan2": binary(away, away), "hypot": binary(away, away),
    "logaddexp": binary(real, real) + [Case((fixed([-800.0, 0.0, 800.0]), fixed([-799.0, 1.0, 801.0])),
                                            id="far-from-zero")],
    # away from the jumps at multiples of y: x in [0.3, 2] * sign, y in [0.7, 0.9] (or negative)
    "remainder": [Case((away(3, 4), uniform(0.7, 0.9, 3, 4)), id="same"),
                  Case((away(2, 3, 4), uniform(-0.9, -0.7, 3, 1)), id="bcast-negative-y"),
                  Case((away(3, 4), 0.75), id="float-y"), Case((1.9, uniform(0.7, 0.9, 2, 3)), id="float-x"),
                  Case((-1.2, 0.7), id="floats")],
    # fmod takes the sign of x: negative x and negative y both
    "fmod": [Case((away(3, 4), uniform(0.7, 0.9, 3, 4)), id="same"),
             Case((away(2, 3, 4), uniform(-0.9, -0.7, 3, 1)), id="bcast-negative-y"),
             Case((away(3, 4), 0.75), id="float-y"), Case((-1.9, uniform(0.7, 0.9, 2, 3)), id="float-x"),
             Case((-1.2, 0.7), id="floats")],
    "where": [Case((mask(3, 4), real(3, 4), real(3, 4)), id="same"),
              Case((mask(3, 4), real(4), real(3, 1)), id="bcast"),
              Case((mask(3, 4), real(3, 4), 0.5), id="float-y")],
    "clip": [Case((real(3, 4),), {"min": -0.5, "max": 0.5}, id="both"),
             Case((real(3, 4),), {"min": 0.1}, id="min-only"),
             Case((real(),), {"max": 0.2}, id="float")],
    # ------------------------------------------------------------------------------------- reductions
    "sum": reduction(real) + [Case((real(),), id="float")],
    "mean": reduction(real) + [Case((real(),), id="float")],
    "prod": reduction(real) + [
        Case((fixed([[1.5, 0.0, 2.0], [0.5, 1.2, -0.7]]),), {"axis": 1}, id="one-zero"),
        Case((fixed([[1.5, 0.0, 0.0], [0.0, 1.2, -0.7]]),), {}, id="two-zeros-all"),
        Case((fixed([[0.0, 0.0, 2.0, 3.0], [1.0, 0.0, 0.5, 0.0]]),), {"axis": -1}, id="two-zeros-row")],
    "max": reduction(distinct), "min": reduction(distinct),
    "var": reduction(real) + [Case((real(3, 4),), {"axis": 1, "ddof": 1}, id="ddof1"),
                              Case((real(2, 3, 4),), {"axis": (0, 1), "ddof": 1, "keepdims": True},
                                   id="ddof1-keep")],
    "std": reduction(real, zero_d=False) + [Case((real(3, 4),), {"axis": 0, "ddof": 1}, id="ddof1")],
    "norm": reduction(real) + [
        Case((away(3, 4),), {"ord": 1, "axis": 1}, id="ord1"),
        Case((distinct(3, 4),), {"ord": math.inf, "axis": 0}, id="inf"),
        Case((distinct(12),), {"ord": -math.inf}, id="-inf"),
        Case((away(2, 3, 4),), {"ord": 3, "axis": (1, 2), "keepdims": True}, id="ord3"),
        Case((real(3, 4),), {"axis": (0, 1)}, id="frobenius"),
        Case((away(),), {}, id="float")],
    "logsumexp": reduction(real),
    "softmax": [Case((real(3, 4),), {"axis": -1}, id="last"), Case((real(2, 3, 4),), {"axis": 1}, id="mid")],
    "log_softmax": [Case((real(3, 4),), {"axis": -1}, id="last"),
                    Case((real(2, 3, 4),), {"axis": 0}, id="first")],
    "sort": [Case((distinct(6),), id="1d"), Case((distinct(3, 4),), {"axis": 0}, id="axis0"),
             Case((distinct(2, 3, 4),), {"axis": -1}, id="last")],
    "cumsum": [Case((real(5),), {"axis": 0}, id="1d"), Case((real(2, 3, 4),), {"axis": 1}, id="mid"),
               Case((real(3, 4),), {"axis": -1}, id="last")],
    "cumprod": [Case((real(5),), {"axis": 0}, id="1d"), Case((real(2, 3, 4),), {"axis": 1}, id="mid"),
                Case((fixed([[1.5, 0.0, 2.0, 0.7], [0.0, 0.0, 1.3, -2.0]]),), {"axis": 1}, id="zeros"),
                Case((fixed([[1.5, 0.0], [0.5, 2.0], [0.0, 3.0]]),), {"axis": 0}, id="zeros-axis0")],
    # --------------------------------------------------------------------------------- linear algebra
    "matmul": [Case((real(3, 4), real(4, 2)), id="2d"), Case((real(4), real(4, 2)), id="1d-2d"),
               Case((real(3, 4), real(4)), id="2d-1d"), Case((real(4), real(4)), id="1d-1d"),
               Case((real(2, 3, 4), real(4, 2)), id="batched-bcast"),
               Case((real(2, 1, 3, 4), real(5, 4, 2)), id="batched-both"),
               Case((real(4), real(2, 4, 3)), id="1d-batched"),
               Case((real(2, 3, 4), real(4)), id="batched-1d")],
    "einsum": [Case((real(3, 4), real(4, 2)), {"subscripts": "ij,jk->ik"}, id="matmul"),
               Case((real(3, 4), real(4, 2)), {"subscripts": "ij,jk->i"}, id="summed-out"),
               Case((real(2, 3), real(3), real(3, 2)), {"subscripts": "ab,b,bc->ac"}, id="three"),
               Case((real(2, 3, 4),), {"subscripts": "abc->ca"}, id="unary"),
               Case((real(3, 4), real(5)), {"subscripts": "ij,k->ik"}, id="outer-summed"),
               Case((real(3, 3),), {"subscripts": "ii->"}, id="trace"),
               Case((real(3, 3),), {"subscripts": "ii->i"}, id="diagonal"),
               Case((real(3, 2, 3), real(2, 4)), {"subscripts": "iji,jk->ik"}, id="repeated-apart"),
               Case((real(2, 2, 3, 2),), {"subscripts": "aaba->b"}, id="thrice-and-summed")],
    "diagonal": [Case((real(3, 4),), id="main"), Case((real(3, 4),), {"offset": 1}, id="offset1"),
                 Case((real(4, 3),), {"offset": -2}, id="offset-2"),
                 Case((real(2, 3, 4),), {"offset": -1, "axis1": 2, "axis2": 1}, id="3d-swapped")],
    "tril": [Case((real(3, 4),), id="k0"), Case((real(2, 3, 3),), {"k": -1}, id="batched-k-1")],
    "triu": [Case((real(3, 4),), {"k": 1}, id="k1"), Case((real(2, 3, 3),), id="batched")],
    "inv": [Case((well_conditioned(3, 3),), id="2d"), Case((well_conditioned(2, 3, 3),), id="batched")],
    "solve": [Case((well_conditioned(3, 3), real(3)), id="vector"),
              Case((well_conditioned(3, 3), real(3, 2)), id="matrix"),
              Case((well_conditioned(2, 3, 3), real(2, 3, 2)), id="batched"),
              Case((well_conditioned(2, 3, 3), real(3, 2)), id="batched-a-bcast"),
              Case((well_conditioned(2, 3, 3), real(3)), id="batched-vector")],
    "det": [Case((well_conditioned(3, 3),), id="2d"), Case((well_conditioned(2, 3, 3),), id="batched"),
            Case((lambda r: -well_conditioned(3, 3)(r),), id="negative")],
    "logabsdet": [Case((well_conditioned(3, 3),), id="2d"), Case((well_conditioned(2, 3, 3),), id="batched"),
                  Case((lambda r: -well_conditioned(3, 3)(r),), id="negative-det")],
    "eigvalsh": [Case((spd(3, 3),), direction=symmetric, id="2d", tol=LINALG_TOL),
                 Case((spd(2, 3, 3),), direction=symmetric, id="batched", tol=LINALG_TOL)],
    "eigvecsh": [Case((spd(3, 3),), direction=symmetric, id="2d", tol=LINALG_TOL),
                 Case((spd(2, 3, 3),), direction=symmetric, id="batched", tol=LINALG_TOL)],
    "cholesky": [Case((spd(3, 3),), direction=symmetric, id="2d", tol=LINALG_TOL),
                 Case((spd(2, 3, 3),), direction=symmetric, id="batched", tol=LINALG_TOL)],
    # svd and qr: random matrices have distinct nonzero singular values (almost surely), full rank
    "svd_s": [Case((real(4, 3),), id="tall", tol=LINALG_TOL), Case((real(3, 4),), id="wide", tol=LINALG_TOL),
              Case((real(2, 3, 3),), id="batched", tol=LINALG_TOL)],
    "svd_u": [Case((real(4, 3),), id="tall", tol=LINALG_TOL), Case((real(3, 4),), id="wide", tol=LINALG_TOL),
              Case((real(2, 3, 3),), id="batched", tol=LINALG_TOL)],
    "svd_vh": [Case((real(4, 3),), id="tall", tol=LINALG_TOL), Case((real(3, 4),), id="wide", tol=LINALG_TOL),
               Case((real(2, 3, 3),), id="batched", tol=LINALG_TOL)],
    "qr_q": [Case((full_rank(4, 3),), id="tall", tol=LINALG_TOL), Case((full_rank(3, 3),), id="square",
                                                                        tol=LINALG_TOL),
             Case((full_rank(2, 4, 3),), id="batched", tol=LINALG_TOL)],
    "qr_r": [Case((full_rank(4, 3),), id="tall", tol=LINALG_TOL), Case((full_rank(3, 3),), id="square",
                                                                        tol=LINALG_TOL),
             Case((full_rank(2, 4, 3),), id="batched", tol=LINALG_TOL)],
    # ------------------------------------------------------------------------ complex values and the FFT
    # The generic harness differentiates float inputs along real directions and pairs complex outputs
    # with real weights (their real parts); complex inputs and directions are checked in
    # test_complex_fft.py, with the complex pairing Re(sum(ct * u)).
    "real": unary(real), "imag": [Case((real(3, 4),), id="2d")], "conj": [Case((real(3, 4),), id="2d")],
    "fft": [Case((real(6),), id="1d"), Case((real(2, 5),), {"n": 7, "norm": "ortho"}, id="pad-ortho"),
            Case((real(3, 6),), {"n": 4, "axis": 0, "norm": "forward"}, id="crop-axis0")],
    "ifft": [Case((real(6),), id="1d"), Case((real(2, 5),), {"n": 3, "norm": "ortho"}, id="crop-ortho"),
             Case((real(4, 3),), {"n": 6, "axis": 0, "norm": "forward"}, id="pad-axis0")],
    "rfft": [Case((real(6),), id="even"), Case((real(2, 7),), {"norm": "ortho"}, id="odd-ortho"),
             Case((real(5, 3),), {"n": 8, "axis": 0, "norm": "forward"}, id="pad-axis0"),
             Case((real(9),), {"n": 5}, id="crop")],
    "irfft": [Case((real(4),), id="even"), Case((real(2, 5),), {"n": 9, "norm": "ortho"}, id="odd-ortho"),
              Case((real(3, 4),), {"n": 4, "axis": 0, "norm": "forward"}, id="crop-axis0"),
              Case((real(3),), {"n": 10}, id="pad")],
    # ------------------------------------------------------------------------------ shapes and indices
    "reshape": [Case((real(3, 4),), {"shape": (2, 6)}, id="2d"),
                Case((real(3, 4),), {"shape": (-1,)}, id="flat"),
                Case((arr0(),), {"shape": (1, 1)}, id="0d")],
    "broadcast_to": [Case((real(3, 1),), {"shape": (2, 3, 4)}, id="expand"),
                     Case((real(),), {"shape": (2, 3)}, id="float")],
    "sum_to": [Case((real(2, 3, 4),), {"shape": (3, 1)}, id="reduce"),
               Case((real(3, 4),), {"shape": (3, 4)}, id="same")],
    "expand_dims": [Case((real(3, 4),), {"axis": 1}, id="one"),
                    Case((real(3, 4),), {"axis": (0, -1)}, id="two")],
    "squeeze": [Case((real(3, 1, 4, 1),), id="all"), Case((real(3, 1, 4, 1),), {"axis": 1}, id="one")],
    "transpose": [Case((real(3, 4),), id="2d"), Case((real(2, 3, 4),), {"axes": (1, 2, 0)}, id="perm")],
    "concatenate": [Case((real(2, 3), real(4, 3)), {"axis": 0}, id="axis0"),
                    Case((real(2, 3), real(2, 1), real(2, 2)), {"axis": -1}, id="three-last")],
    "stack": [Case((real(2, 3), real(2, 3)), {"axis": 0}, id="axis0"),
              Case((real(2, 3), real(2, 3), real(2, 3)), {"axis": -1}, id="three-last")],
    "flip": [Case((real(3, 4),), id="all"), Case((real(2, 3, 4),), {"axis": (0, 2)}, id="axes")],
    "roll": [Case((real(3, 4),), {"shift": 2}, id="flat"),
             Case((real(3, 4),), {"shift": (1, -1), "axis": (0, 1)}, id="axes")],
    "tile": [Case((real(2, 3),), {"reps": (2, 1)}, id="2d"), Case((real(3),), {"reps": (2, 2)}, id="promote"),
             Case((real(2, 3),), {"reps": (2,)}, id="short-reps")],
    "repeat": [Case((real(2, 3),), {"repeats": 2}, id="flat"),
               Case((real(2, 3),), {"repeats": 3, "axis": 1}, id="axis1")],
    "pad": [Case((real(2, 3),), {"pad_width": ((1, 0), (2, 1))}, id="pairs"),
            Case((real(2, 3),), {"pad_width": 1, "value": 2.5}, id="int-value")],
    "getitem": [
        Case((real(3, 4),), {"index": 1}, id="int",
             strict_skip="an int alone indexing a 2-d array is NumPy's flat indexing, not the standard's"),
        Case((real(3, 4),), {"index": (1, Ellipsis)}, id="int-ellipsis"),
        Case((real(3, 4),), {"index": (slice(None), slice(1, 3))}, id="slice"),
        Case((real(2, 3, 4),), {"index": (Ellipsis, 1)}, id="ellipsis"),
        Case((real(3, 4),), {"index": (None, slice(None), 2)}, id="newaxis"),
        Case((real(3, 4),), {"index": (slice(None, None, -2), Ellipsis)}, id="negative-step"),
        Case((real(3, 4),), {"index": np.array([[True, False, True, False]] * 3)}, id="bool-mask"),
        Case((real(3, 4),), {"index": (np.array([True, False, True]), Ellipsis)}, id="bool-rows",
             strict_skip="the standard allows a boolean mask only as the sole index"),
        Case((real(4, 3),), {"index": np.array([0, 2, 0, 0])}, id="repeated-ints",
             strict_skip=NO_ADD_AT)],
    "index_update": [
        Case((real(3, 4), real(4)), {"index": (1, Ellipsis)}, id="row"),
        Case((real(3, 4), real()), {"index": (slice(None), 2)}, id="float-bcast"),
        Case((real(3, 4), real(2, 1)), {"index": (slice(0, 2), slice(1, 4))}, id="block-bcast"),
        Case((real(5), real(4)), {"index": np.array([0, 2, 0, 0])}, id="repeated-last-wins",
             strict_skip=NO_FANCY_SETITEM),
        Case((real(5), real()), {"index": np.array([3, 1, 3])}, id="repeated-float-v",
             strict_skip=NO_FANCY_SETITEM)],
    "index_add": [
        Case((real(3, 4), real(4)), {"index": (1, Ellipsis)}, id="row"),
        Case((real(5,), real(4)), {"index": np.array([0, 2, 0, 0])}, id="repeated",
             strict_skip=NO_ADD_AT)],
}

# Primitives that cannot exist on array-api-strict (a namespace with only the standard's functions).
STRICT_SKIP: dict[str, str] = {
    "erf": "the array API standard has no erf",
    "fmod": "the array API standard has no fmod (only remainder)",
    "einsum": "the array API standard has no einsum",
}


# ------------------------------------------------------------------------ non-differentiable primitives
@dataclass
class ValueCase:
    args: tuple
    kwargs: dict
    expected: Callable[..., Any]
    id: str = ""


_A = [[1.5, -2.0, 0.0], [2.5, -0.5, 3.0]]
_B = [[1.5, 1.0, 0.0], [0.0, -0.5, 4.0]]
_M = [[2.0, 1.0], [1.0, -3.0]]

NONDIFF: dict[str, list[ValueCase]] = {
    "equal": [ValueCase((_A, _B), {}, np.equal)], "not_equal": [ValueCase((_A, _B), {}, np.not_equal)],
    "less": [ValueCase((_A, _B), {}, np.less)], "less_equal": [ValueCase((_A, _B), {}, np.less_equal)],
    "greater": [ValueCase((_A, _B), {}, np.greater)],
    "greater_equal": [ValueCase((_A, _B), {}, np.greater_equal)],
    "logical_and": [ValueCase((np.array(_A) > 0, np.array(_B) > 0), {}, np.logical_and)],
    "logical_or": [ValueCase((np.array(_A) > 0, np.array(_B) > 0), {}, np.logical_or)],
    "logical_not": [ValueCase((np.array(_A) > 0,), {}, np.logical_not)],
    "sign": [ValueCase((_A,), {}, np.sign), ValueCase((-2.5,), {}, np.sign, id="float")],
    "floor": [ValueCase((_A,), {}, np.floor)], "ceil": [ValueCase((_A,), {}, np.ceil)],
    "round": [ValueCase((_A,), {}, np.round),
              ValueCase(([[1.2345, -2.5678]],), {"decimals": 2}, lambda x, decimals: np.round(x, decimals),
                        id="decimals")],
    "isfinite": [ValueCase(([1.0, np.inf, np.nan],), {}, np.isfinite)],
    "signbit": [ValueCase(([1.0, -0.0, 0.0, -np.inf, -np.nan, np.nan, -2.5],), {}, np.signbit),
                ValueCase((-0.0,), {}, np.signbit, id="float")],
    "holds_floats": [ValueCase((_A,), {}, lambda x: 1.0), ValueCase((-2.5,), {}, lambda x: 1.0, id="float"),
                     ValueCase((np.array([1, 2]),), {}, lambda x: 0.0, id="int")],
    "argmax": [ValueCase((_A,), {}, np.argmax), ValueCase((_A,), {"axis": 1}, np.argmax, id="axis"),
               ValueCase((_A,), {"axis": 0, "keepdims": True}, np.argmax, id="keep")],
    "argmin": [ValueCase((_A,), {"axis": 1}, np.argmin)],
    "argsort": [ValueCase((_A,), {}, np.argsort), ValueCase((_A,), {"axis": 0}, np.argsort, id="axis0"),
                ValueCase(([[1.0, 0.0, 1.0, 0.0, 1.0]],), {}, lambda x: np.argsort(x, kind="stable"),
                          id="stable")],
    "flat_along_axis": [ValueCase((np.argsort(_A, axis=0),), {"axis": 0}, lambda o, axis: np.take_along_axis(
        np.arange(o.size).reshape(o.shape), o, axis), id="axis0"),
                        ValueCase((np.array([[0, 3], [2, 1]]),), {"axis": 1, "shape": (3, 4)},
                                  lambda o, axis, shape: np.take_along_axis(
                                      np.arange(12).reshape(shape)[:2], o, axis), id="gather")],
    "shape": [ValueCase((_A,), {}, np.shape)], "size": [ValueCase((_A,), {}, np.size)],
    "ndim": [ValueCase((_A,), {}, np.ndim)],
    "zeros_like": [ValueCase((_A,), {}, np.zeros_like)], "ones_like": [ValueCase((_A,), {}, np.ones_like)],
    "any": [ValueCase((np.array(_A) > 2,), {"axis": 1}, np.any)],
    "all": [ValueCase((np.array(_A) > -3,), {}, np.all)],
    "slogdet_sign": [ValueCase((_M,), {}, lambda m: np.linalg.slogdet(m)[0])],
    "searchsorted": [ValueCase(([0.0, 1.0, 1.0, 3.0], [-1.0, 1.0, 2.0, 5.0]), {}, np.searchsorted),
                     ValueCase(([0.0, 1.0, 1.0, 3.0], [1.0, 2.5]), {"side": "right"},
                               lambda a, v, side: np.searchsorted(a, v, side=side), id="right")],
    "is_complex": [ValueCase((_A,), {}, lambda a: False),
                   ValueCase((np.array([1.0 + 2.0j]),), {}, lambda a: True, id="complex")],
    "eye_like": [ValueCase((_A,), {"n": 2, "m": 3, "k": 1}, lambda a, n, m, k: np.eye(n, m, k))],
}
