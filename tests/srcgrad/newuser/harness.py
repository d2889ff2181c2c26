"""A small pytree-aware finite-difference harness (float64, central differences)."""

import copy
import dataclasses

import numpy as np

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
