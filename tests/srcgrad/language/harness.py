"""One record per corpus function (`Case`) and the checks every record runs against central finite
differences in float64.

Checks (a case names the ones that apply):

- ``reverse``: ``sg.value_and_grad(f, wrt=...)`` (or ``argnums=``): the value is f's, the gradient has the
  argument's structure (a dict for a dict, a NamedTuple for a NamedTuple, a dict keyed by attribute name
  for a plain object holding arrays) and agrees with finite differences leaf by leaf;
- ``forward``: ``sg.jvp(f, wrt=...)`` with a random tangent shaped like the argument: the product has the
  output's structure and agrees with the directional finite difference;
- ``tape``: the leaves become ``requires_grad`` Tensors (in the same structure), ``f(...).backward()``, and
  each leaf's ``.grad`` agrees with finite differences (only for functions that run on Tensors);
- ``vjp``, ``jacobian``, ``hessian``, ``hvp``: the other transforms, on the same structures.

Pytrees are dict, list, tuple, NamedTuple, dataclass and plain objects (their ``__dict__``); leaves are
floats and float arrays; ints, strings and None are static.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import srcgrad as sg

H1 = 1e-6        # first-order central differences
H2 = 1e-4        # second-order central differences
RTOL = 1e-5

CHECKS = ("reverse", "forward", "tape", "vjp", "jacobian", "hessian", "hvp")


@dataclass
class Case:
    """A corpus function and how to call it.

    ``args(rng)`` returns the positional arguments; ``wrt`` picks the differentiated ones (an int or a
    tuple); ``checks`` are the checks that apply; ``xfail`` maps a check (or ``"*"`` for all) to the
    feature it needs today (strict: an XPASS fails, so the mark comes off when the feature lands)."""

    name: str
    fn: Callable
    args: Callable[[np.random.Generator], tuple]
    wrt: int | tuple = 0
    checks: tuple = ("reverse", "forward")
    xfail: dict | str | None = None
    argnums: bool = False          # pass wrt as JAX's `argnums=`
    rtol: float = RTOL

    def __post_init__(self) -> None:
        unknown = set(self.checks) - set(CHECKS)
        assert not unknown, f"{self.name}: unknown checks {unknown}"
        if isinstance(self.xfail, dict):
            bad = set(self.xfail) - set(self.checks) - {"*"}
            assert not bad, f"{self.name}: xfail for checks it does not run: {bad}"

    def reason(self, check: str) -> str | None:
        if self.xfail is None:
            return None
        if isinstance(self.xfail, str):
            return self.xfail
        return self.xfail.get(check, self.xfail.get("*"))

    @property
    def wrt_tuple(self) -> tuple:
        return self.wrt if isinstance(self.wrt, tuple) else (self.wrt,)

    def transform_kwargs(self) -> dict:
        return {"argnums": self.wrt} if self.argnums else {"wrt": self.wrt}


def compiled(reason: str) -> dict:
    """An xfail for the compiled checks only (the tape already runs the function)."""
    return {"reverse": reason, "forward": reason}


# --------------------------------------------------------------------------------------------- pytrees

def _is_namedtuple(t: Any) -> bool:
    return isinstance(t, tuple) and hasattr(type(t), "_fields")


def _is_tensor(t: Any) -> bool:
    return type(t).__name__ == "Tensor" and hasattr(t, "requires_grad")


def is_leaf(t: Any) -> bool:
    if isinstance(t, (bool, int, str)) or t is None:
        return False
    if isinstance(t, (float, np.floating)) or _is_tensor(t):
        return True
    return isinstance(t, np.ndarray) and np.issubdtype(t.dtype, np.floating)


def children(t: Any) -> tuple[list, list, Callable[[list], Any]] | None:
    """(keys, values, rebuild) of a container; None for a leaf or a static value."""
    if isinstance(t, dict):
        keys = list(t)
        return keys, [t[k] for k in keys], lambda vals: type(t)(zip(keys, vals, strict=True))
    if _is_namedtuple(t):
        return list(t._fields), list(t), lambda vals: type(t)(*vals)
    if isinstance(t, (list, tuple)):
        return list(range(len(t))), list(t), lambda vals: type(t)(vals)
    if dataclasses.is_dataclass(t) and not isinstance(t, type):
        names = [f.name for f in dataclasses.fields(t)]
        return names, [getattr(t, n) for n in names], \
            lambda vals: dataclasses.replace(t, **dict(zip(names, vals, strict=True)))
    if is_leaf(t) or isinstance(t, (bool, int, str, np.ndarray)) or t is None or callable(t):
        return None
    if hasattr(t, "__dict__"):          # a plain object holding arrays: its attributes
        names = list(vars(t))

        def rebuild(vals: list) -> Any:
            new = copy.copy(t)
            for n, v in zip(names, vals, strict=True):
                setattr(new, n, v)
            return new

        return names, [getattr(t, n) for n in names], rebuild
    return None


def tree_map(fn: Callable[[Any], Any], t: Any) -> Any:
    if is_leaf(t):
        return fn(t)
    ch = children(t)
    if ch is None:
        return t
    _, vals, rebuild = ch
    return rebuild([tree_map(fn, v) for v in vals])


def leaves_with_paths(t: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    if is_leaf(t):
        return [(path, t)]
    ch = children(t)
    if ch is None:
        return []
    keys, vals, _ = ch
    out = []
    for k, v in zip(keys, vals, strict=True):
        out.extend(leaves_with_paths(v, path + (k,)))
    return out


def get_path(t: Any, path: tuple) -> Any:
    for k in path:
        if isinstance(t, dict) or isinstance(t, (list, tuple)) and not isinstance(k, str):
            t = t[k]
        else:
            t = getattr(t, k)
    return t


def to_numpy(x: Any) -> np.ndarray:
    if _is_tensor(x):
        x = x.detach().numpy()
    return np.asarray(x, dtype=float)


def ravel(t: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """The float leaves of t as one vector, and the function that puts a vector back into t's shape."""
    leaves = leaves_with_paths(t)
    arrays = [to_numpy(v) for _, v in leaves]
    sizes = [a.size for a in arrays]
    vec = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0)

    def unravel(v: np.ndarray) -> Any:
        it = iter(np.split(np.asarray(v, dtype=float), np.cumsum(sizes)[:-1]) if sizes else [])
        shapes = iter(arrays)
        originals = iter(v0 for _, v0 in leaves)

        def put(leaf: Any) -> Any:
            piece, like, orig = next(it), next(shapes), next(originals)
            if isinstance(orig, (float, np.floating)):
                return float(piece[0])
            return piece.reshape(like.shape).copy()

        return tree_map(put, t)

    return vec, unravel


def copy_tree(t: Any) -> Any:
    return tree_map(lambda v: v.copy() if isinstance(v, np.ndarray) else v, t)


def assert_structure(got: Any, like: Any, what: str) -> None:
    """got has like's structure: the same container types and keys, a float for a float, an array of
    the same shape for an array. A plain object's gradient is a dict keyed by attribute name."""
    if is_leaf(like):
        if isinstance(like, (float, np.floating)) and not isinstance(like, np.ndarray):
            ok = isinstance(got, (float, np.floating)) or (isinstance(got, np.ndarray) and got.shape == ())
            assert ok, f"{what}: a float argument, a {type(got).__name__} derivative"
        elif _is_tensor(like):
            assert _is_tensor(got), f"{what}: a Tensor argument, a {type(got).__name__} derivative"
            assert tuple(got.shape) == tuple(like.shape), f"{what}: shape {tuple(got.shape)} != {like.shape}"
        else:
            assert isinstance(got, np.ndarray), \
                f"{what}: an array argument, a {type(got).__name__} derivative"
            assert got.shape == like.shape, f"{what}: shape {got.shape} != {like.shape}"
        return
    ch = children(like)
    if ch is None:
        return
    keys, vals, _ = ch
    plain_object = not isinstance(like, (dict, list, tuple)) and not dataclasses.is_dataclass(like)
    if plain_object:
        assert isinstance(got, dict), f"{what}: a {type(like).__name__} argument, a {type(got).__name__} " \
            "derivative (want a dict keyed by attribute name)"
        for k, v in zip(keys, vals, strict=True):
            if leaves_with_paths(v):
                assert k in got, f"{what}: no derivative for attribute {k!r}"
                assert_structure(got[k], v, f"{what}.{k}")
        return
    assert type(got) is type(like), \
        f"{what}: a {type(like).__name__} argument, a {type(got).__name__} derivative"
    gch = children(got)
    assert gch is not None and list(gch[0]) == list(keys), f"{what}: keys {gch and gch[0]} != {keys}"
    for k, g, v in zip(keys, gch[1], vals, strict=True):
        assert_structure(g, v, f"{what}[{k!r}]")


def grad_vector(g: Any, like: Any) -> np.ndarray:
    """A derivative shaped like `like` as one vector, in `like`'s leaf order (a dict for an object)."""
    parts = []
    for path, v in leaves_with_paths(like):
        node = g
        for k in path:
            by_index = isinstance(node, dict) or (isinstance(node, (list, tuple)) and isinstance(k, int))
            node = node[k] if by_index else getattr(node, k)
        parts.append(to_numpy(node).reshape(np.shape(to_numpy(v))).ravel())
    return np.concatenate(parts) if parts else np.zeros(0)


def assert_close(got: np.ndarray, want: np.ndarray, what: str, rtol: float = RTOL,
                 atol: float = 1e-6) -> None:
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    err = np.abs(got - want)
    ok = np.all(err <= atol * scale + rtol * np.abs(want))
    assert ok, f"{what}: max error {err.max():.3g}\n got  {got}\n want {want}"


# --------------------------------------------------------------------------------- finite differences

def scalar(out: Any) -> float:
    return float(to_numpy(out).sum()) if not np.ndim(to_numpy(out)) == 0 else float(to_numpy(out))


def _with(args: tuple, i: int, value: Any) -> list:
    new = [copy_tree(a) for a in args]
    new[i] = value
    return new


def fd_grad(f: Callable, args: tuple, i: int, h: float = H1) -> np.ndarray:
    vec, unravel = ravel(args[i])
    g = np.zeros_like(vec)
    for j in range(vec.size):
        e = np.zeros_like(vec)
        e[j] = h
        up = scalar(f(*_with(args, i, unravel(vec + e))))
        down = scalar(f(*_with(args, i, unravel(vec - e))))
        g[j] = (up - down) / (2 * h)
    return g


def fd_hessian(f: Callable, args: tuple, i: int, h: float = H2) -> np.ndarray:
    vec, unravel = ravel(args[i])
    n = vec.size
    H = np.zeros((n, n))

    def at(d: np.ndarray) -> float:
        return scalar(f(*_with(args, i, unravel(vec + d))))

    for a in range(n):
        for b in range(a, n):
            ea = np.zeros(n)
            eb = np.zeros(n)
            ea[a] = h
            eb[b] = h
            H[a, b] = H[b, a] = (at(ea + eb) - at(ea - eb) - at(eb - ea) + at(-ea - eb)) / (4 * h * h)
    return H


def fd_directional(f: Callable, args: tuple, wrt: tuple, tangents: tuple, h: float = H1) -> np.ndarray:
    def moved(sign: float) -> list:
        new = [copy_tree(a) for a in args]
        for i, t in zip(wrt, tangents, strict=True):
            vec, unravel = ravel(args[i])
            new[i] = unravel(vec + sign * h * ravel(t)[0])
        return new

    return (ravel(f(*moved(1.0)))[0] - ravel(f(*moved(-1.0)))[0]) / (2 * h)


def random_like(t: Any, rng: np.random.Generator) -> Any:
    vec, unravel = ravel(t)
    return unravel(rng.normal(size=vec.shape))


# ----------------------------------------------------------------------------------------------- checks

def run_check(case: Case, check: str, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    args = tuple(case.args(rng))
    {"reverse": check_reverse, "forward": check_forward, "tape": check_tape, "vjp": check_vjp,
     "jacobian": check_jacobian, "hessian": check_hessian, "hvp": check_hvp}[check](case, args, rng)


def _grads_tuple(case: Case, g: Any) -> tuple:
    return g if isinstance(case.wrt, tuple) else (g,)


def check_reverse(case: Case, args: tuple, rng: np.random.Generator) -> None:
    snapshot = [copy_tree(a) for a in args]
    value, g = sg.value_and_grad(case.fn, **case.transform_kwargs())(*args)
    want_value = case.fn(*[copy_tree(a) for a in snapshot])
    assert_close(scalar(value), scalar(want_value), "value", rtol=1e-12, atol=1e-12)
    grads = _grads_tuple(case, g)
    assert len(grads) == len(case.wrt_tuple), f"{len(grads)} gradients for wrt={case.wrt}"
    for i, gi in zip(case.wrt_tuple, grads, strict=True):
        assert_structure(gi, snapshot[i], f"d/d arg {i}")
        assert_close(grad_vector(gi, snapshot[i]), fd_grad(case.fn, snapshot, i), f"d/d arg {i}", case.rtol)
    for a, s in zip(args, snapshot, strict=True):     # the caller's arrays are not written into
        assert np.array_equal(ravel(a)[0], ravel(s)[0]), "an argument was modified"


def check_forward(case: Case, args: tuple, rng: np.random.Generator) -> None:
    tangents = tuple(random_like(args[i], rng) for i in case.wrt_tuple)
    t = tangents if isinstance(case.wrt, tuple) else tangents[0]
    value, jt = sg.jvp(case.fn, **case.transform_kwargs())(*args, t)
    want = case.fn(*[copy_tree(a) for a in args])
    if not is_leaf(want):
        assert_structure(jt, want, "J t")
    assert_close(ravel(value)[0], ravel(want)[0], "value", rtol=1e-12, atol=1e-12)
    assert_close(ravel(jt)[0], fd_directional(case.fn, args, case.wrt_tuple, tangents), "J t", case.rtol)


def check_tape(case: Case, args: tuple, rng: np.random.Generator) -> None:
    leaves: dict[int, Any] = {}
    targs = list(args)
    for i in case.wrt_tuple:
        targs[i] = tree_map(lambda v: sg.tensor(np.asarray(v, dtype=float), dtype=sg.float64,
                                                requires_grad=True), args[i])
        leaves[i] = targs[i]
    out = case.fn(*targs)
    out.backward()
    for i, lt in leaves.items():
        got = np.concatenate([
            (np.zeros(np.size(to_numpy(t))) if t.grad is None else to_numpy(t.grad).ravel())
            for _, t in leaves_with_paths(lt)
        ])
        assert_close(got, fd_grad(case.fn, args, i), f"tape d/d arg {i}", case.rtol)


def check_vjp(case: Case, args: tuple, rng: np.random.Generator) -> None:
    out = case.fn(*[copy_tree(a) for a in args])
    v = random_like(out, rng)
    value, ct = sg.vjp(case.fn, **case.transform_kwargs())(*args, v)
    assert_close(ravel(value)[0], ravel(out)[0], "value", rtol=1e-12, atol=1e-12)
    vvec = ravel(v)[0]

    def contracted(*a: Any) -> float:
        return float(ravel(case.fn(*a))[0] @ vvec)

    for i, ci in zip(case.wrt_tuple, _grads_tuple(case, ct), strict=True):
        assert_structure(ci, args[i], f"vjp arg {i}")
        assert_close(grad_vector(ci, args[i]), fd_grad(contracted, args, i), f"vjp arg {i}", case.rtol)


def _jacobian_matrix(J: Any, like: Any, out_size: int) -> np.ndarray:
    cols = []
    for path, _leaf in leaves_with_paths(like):
        block = to_numpy(get_path(J, path)) if path else to_numpy(J)
        cols.append(block.reshape(out_size, -1))
    return np.concatenate(cols, axis=1)


def check_jacobian(case: Case, args: tuple, rng: np.random.Generator) -> None:
    J = sg.jacobian(case.fn, **case.transform_kwargs())(*args)
    out = case.fn(*[copy_tree(a) for a in args])
    out_size = ravel(out)[0].size
    if isinstance(out, tuple) and isinstance(case.wrt, tuple):
        # a tuple of outputs, several inputs: J[k][i] (JAX's structure), read here per input
        assert isinstance(J, tuple) and len(J) == len(out), "jacobian: one entry per output"
        J = tuple(tuple(Jk[n] for Jk in J) for n in range(len(case.wrt)))
    if isinstance(out, dict) and not isinstance(case.wrt, tuple):
        # a dict of outputs (JAX's structure: J[key] per output), its rows stacked in the output's order
        assert isinstance(J, dict) and list(J) == list(out), "jacobian: one entry per output key"
        J = np.concatenate([to_numpy(J[k]).reshape(np.size(to_numpy(out[k])), -1) for k in out], axis=0)
    for i, Ji in zip(case.wrt_tuple, _grads_tuple(case, J), strict=True):
        got = _jacobian_matrix(Ji, args[i], out_size)
        vec, unravel = ravel(args[i])
        want = np.zeros((out_size, vec.size))
        for j in range(vec.size):
            e = np.zeros_like(vec)
            e[j] = 1.0
            want[:, j] = fd_directional(case.fn, args, (i,), (unravel(e),))
        assert_close(got, want, f"jacobian arg {i}", case.rtol)


def check_hessian(case: Case, args: tuple, rng: np.random.Generator) -> None:
    assert not isinstance(case.wrt, tuple), "hessian checks take a single wrt"
    i = case.wrt
    H = sg.hessian(case.fn, **case.transform_kwargs())(*args)
    like = args[i]
    rows = []
    n = ravel(like)[0].size
    for path, leaf in leaves_with_paths(like):
        outer = get_path(H, path) if path else H
        rows.append(_jacobian_matrix(outer, like, np.size(to_numpy(leaf))) if path else
                    to_numpy(outer).reshape(n, n))
    got = np.concatenate(rows, axis=0)
    assert_close(got, fd_hessian(case.fn, args, i), "hessian", 1e-4, atol=1e-5)


def check_hvp(case: Case, args: tuple, rng: np.random.Generator) -> None:
    assert not isinstance(case.wrt, tuple), "hvp checks take a single wrt"
    i = case.wrt
    v = random_like(args[i], rng)
    value, hv = sg.hvp(case.fn, **case.transform_kwargs())(*args, v)
    assert_close(scalar(value), scalar(case.fn(*[copy_tree(a) for a in args])), "value", 1e-12, 1e-12)
    assert_structure(hv, args[i], "H v")
    want = fd_hessian(case.fn, args, i) @ ravel(v)[0]
    assert_close(grad_vector(hv, args[i]), want, "H v", 1e-4, atol=1e-5)
