"""A small pytree-aware finite-difference harness (float64, central differences)."""

import copy
import dataclasses

import numpy as np
import pytest

import srcgrad as sg


def _is_nt(t):
    return isinstance(t, tuple) and hasattr(t, "_fields")


def leaves(tree, path=()):
    """(path, leaf) for every float leaf (float arrays and Python floats); ints/bools/strings skipped."""
    if isinstance(tree, dict):
        for k in tree:
            yield from leaves(tree[k], path + (("k", k),))
    elif _is_nt(tree):
        for f in tree._fields:
            yield from leaves(getattr(tree, f), path + (("a", f),))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from leaves(v, path + (("i", i),))
    elif isinstance(tree, np.ndarray):
        if np.issubdtype(tree.dtype, np.floating):
            yield path, tree
    elif isinstance(tree, float):
        yield path, tree
    elif isinstance(tree, (bool, int, str, type(None))):
        return
    elif dataclasses.is_dataclass(tree):
        for f in dataclasses.fields(tree):
            yield from leaves(getattr(tree, f.name), path + (("a", f.name),))
    elif hasattr(tree, "__dict__"):
        for k, v in vars(tree).items():
            yield from leaves(v, path + (("a", k),))


def get(tree, path):
    for kind, k in path:
        if kind == "a" and isinstance(tree, dict):     # an object's gradient is a dict of its attributes
            tree = tree[k]
        elif kind == "a":
            tree = getattr(tree, k)
        else:
            tree = tree[k]
    return tree


def replace(tree, path, value):
    """A copy of tree with the leaf at path replaced (containers rebuilt, the rest shared)."""
    if not path:
        return value
    (kind, k), rest = path[0], path[1:]
    if kind == "k":
        out = dict(tree)
        out[k] = replace(tree[k], rest, value)
        return out
    if kind == "i":
        items = list(tree)
        items[k] = replace(tree[k], rest, value)
        return items if isinstance(tree, list) else tuple(items)
    if _is_nt(tree):
        return tree._replace(**{k: replace(getattr(tree, k), rest, value)})
    if dataclasses.is_dataclass(tree):
        return dataclasses.replace(tree, **{k: replace(getattr(tree, k), rest, value)})
    out = copy.copy(tree)
    setattr(out, k, replace(getattr(tree, k), rest, value))
    return out


def fd_leaf(f, tree, path, h=1e-6):
    """d f(tree) / d leaf, by central differences; f may return an array (the Jacobian: out + leaf shape)."""
    leaf = get(tree, path)
    if isinstance(leaf, float):
        up, dn = f(replace(tree, path, leaf + h)), f(replace(tree, path, leaf - h))
        return (np.asarray(up) - np.asarray(dn)) / (2 * h)
    cols = []
    for idx in np.ndindex(leaf.shape):
        vals = []
        for s in (h, -h):
            a = leaf.copy()
            a[idx] += s
            vals.append(np.asarray(f(replace(tree, path, a)), dtype=float))
        cols.append((vals[0] - vals[1]) / (2 * h))
    out_shape = np.shape(cols[0]) if cols else ()
    if not leaf.ndim:
        return np.array(cols[0])
    return np.moveaxis(np.array(cols).reshape(leaf.shape + out_shape), list(range(leaf.ndim)),
                       list(range(len(out_shape), len(out_shape) + leaf.ndim)))


def snapshot(args):
    return copy.deepcopy(args)


def assert_unchanged(before, after):
    for (p, a), (q, b) in zip(leaves(before), leaves(after), strict=True):
        assert p == q
        np.testing.assert_array_equal(a, b, err_msg=f"caller's leaf {p} was modified")


def fd_grad(f, args, argnum, h=1e-6):
    """{path: fd gradient} for the float leaves of args[argnum]."""
    def g(tree):
        a = list(args)
        a[argnum] = tree
        return f(*a)
    return {p: fd_leaf(g, args[argnum], p, h) for p, _ in leaves(args[argnum])}


def check_grad(f, *args, argnums=0, rtol=1e-5, atol=1e-7, h=1e-6, transform=None, **kw):
    """srcgrad's gradient vs central differences, leaf by leaf, in the arguments' structure."""
    before = snapshot(args)
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    g = (transform or sg.grad)(f, argnums=argnums, **kw)(*args)
    assert_unchanged(before, args)
    gs = (g,) if single else g
    assert len(gs) == len(nums)
    for gi, i in zip(gs, nums, strict=True):
        want = fd_grad(f, args, i, h)
        if not want and not isinstance(args[i], (float, np.ndarray)):
            continue
        for p, w in want.items():
            got = get(gi, p)
            assert np.shape(got) == np.shape(w), (p, np.shape(got), np.shape(w))
            np.testing.assert_allclose(got, w, rtol=rtol, atol=atol, err_msg=f"leaf {p}")
    return g


def random_like(tree, rng):
    for p, leaf in list(leaves(tree)):
        tree = replace(tree, p, rng.normal(size=np.shape(leaf)) if isinstance(leaf, np.ndarray)
                       else float(rng.normal()))
    return tree


def axpy(alpha, x, y):
    """y + alpha * x, leafwise, in y's structure."""
    for p, leaf in list(leaves(y)):
        y = replace(y, p, leaf + alpha * get(x, p))
    return y


def bug(reason):
    return pytest.mark.xfail(strict=True, reason="bug: " + reason)


def normal_sampler(seed):
    """`rn(*shape)`: standard normal arrays from a generator of this seed, one per test file, so each
    file's inputs are its own and do not depend on the order other files run in."""
    rng = np.random.default_rng(seed)

    def rn(*shape):
        return rng.normal(size=shape)

    return rn


def flat(out):
    """Every float in an output (array, float, tuple, list or dict by sorted key), as one vector."""
    if isinstance(out, dict):
        return np.concatenate([flat(out[k]) for k in sorted(out)]) if out else np.zeros(0)
    if isinstance(out, (tuple, list)):
        return np.concatenate([flat(o) for o in out]) if out else np.zeros(0)
    return np.atleast_1d(np.asarray(out, dtype=float)).ravel()


def check_jvp(f, *args, argnums=0, h=1e-6, rtol=1e-5, atol=1e-7, seed=3):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    rng = np.random.default_rng(seed)
    ts = [random_like(args[i], rng) for i in nums]
    before = snapshot(args)
    val, tan = sg.jvp(f, argnums=argnums)(*args, ts[0] if single else tuple(ts))
    assert_unchanged(before, args)

    def shifted(s):
        a = list(args)
        for i, t in zip(nums, ts, strict=True):
            a[i] = axpy(s, t, a[i])
        return f(*a)

    want = (flat(shifted(h)) - flat(shifted(-h))) / (2 * h)
    np.testing.assert_allclose(flat(val), flat(f(*args)), rtol=1e-10, atol=1e-12, err_msg="jvp primal")
    np.testing.assert_allclose(flat(tan), want, rtol=rtol, atol=atol, err_msg="jvp tangent")
    return val, tan


def check(f, *args, argnums=0, jvp=True, **kw):
    """grad twice (fresh and cached), then jvp; each against central differences."""
    before = snapshot(args)
    g = check_grad(f, *args, argnums=argnums, **kw)
    check_grad(f, *args, argnums=argnums, **kw)
    if jvp:
        check_jvp(f, *args, argnums=argnums)
    assert_unchanged(before, args)
    return g


def check_vjp(f, *args, argnums=0, h=1e-6, rtol=1e-5, atol=1e-7):
    """vjp with a random cotangent shaped like the output, against the finite-difference Jacobian."""
    out = f(*args)
    ct = random_like(out, np.random.default_rng(5))
    before = snapshot(args)
    val, g = sg.vjp(f, argnums=argnums)(*args, ct)
    assert_unchanged(before, args)
    np.testing.assert_allclose(flat(val), flat(out), rtol=1e-10, atol=1e-12)
    if isinstance(out, dict):
        assert isinstance(val, dict) and sorted(val) == sorted(out)

    def scalar(*a):
        return float(flat(f(*a)) @ flat(ct))

    single = isinstance(argnums, int)
    for gi, i in zip((g,) if single else g, (argnums,) if single else argnums, strict=True):
        want = fd_leaf(lambda z, i=i: scalar(*args[:i], z, *args[i + 1:]), args[i], (), h)
        np.testing.assert_allclose(gi, want, rtol=rtol, atol=atol)
    return g
