"""Derivative checkers: compare analytic derivatives with central finite differences.

`gradcheck` is the public entry point, in the spirit of `torch.autograd.gradcheck`: it builds the
numeric Jacobian of `f` column by column and compares it with the analytic one, taken from the eager
tape when the inputs are Tensors that require grad, from the compiler (`srcgrad.vjp`) otherwise.

The numeric core does not care which engine produced the derivatives: `check_vjp_jvp` takes a vjp and
a jvp as plain callables and checks them against each other (the identity <v, J u> = <J^T v, u>) and
against central differences, along random directions. That is cheap (a few evaluations of f, whatever
the sizes) and catches any wrong Jacobian with probability one. `check_rule` applies it to one
primitive's entry in the rule table, and `check_rule_second_order` to the rule differentiated by the
tape: the generic rule test is built from those two.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from srcgrad.runtime import backend

__all__ = ["GradcheckError", "gradcheck", "check_vjp_jvp", "check_rule", "check_rule_second_order",
           "differentiable_argnums", "eager_available", "numeric_jacobian", "random_like"]


class GradcheckError(AssertionError):
    """An analytic derivative disagrees with finite differences (or with the other mode)."""


# --------------------------------------------------------------------------------- array plumbing
def _is_float_value(x: Any) -> bool:
    if isinstance(x, float):
        return True
    dt = getattr(x, "dtype", None)
    return dt is not None and "float" in str(dt)


def _to_numpy(x: Any) -> np.ndarray:
    """A float64 NumPy copy of an array of any namespace (test-side only: the library never does this)."""
    if isinstance(x, (int, float, bool)):
        return np.asarray(float(x))
    if backend.is_cupy(x):
        return np.asarray(x.get(), dtype=np.float64)
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # a Tensor
        return _to_numpy(x.detach().numpy())
    try:
        return np.asarray(x, dtype=np.float64)
    except Exception:  # array-API arrays without __array__: go through a DLPack copy
        return np.from_dlpack(x).astype(np.float64)


def _from_numpy(a: np.ndarray, like: Any) -> Any:
    """`a` in the namespace (and on the device) of `like`; a Python float when `like` is one."""
    if isinstance(like, (int, float)):
        return float(a)
    xp = backend.namespace(like)
    if xp is np:
        return np.asarray(a, dtype=like.dtype)
    if backend.is_cupy(like):
        return xp.asarray(a, dtype=like.dtype)
    return xp.asarray(a, dtype=like.dtype, device=getattr(like, "device", None))


def random_like(x: Any, rng: np.random.Generator) -> Any:
    """A standard normal array shaped like x, in x's namespace (a Python float for a float)."""
    return _from_numpy(rng.standard_normal(np.shape(_to_numpy(x))), x)


def _inner(a: Any, b: Any) -> float:
    """<a, b> as a Python float, computed in float64 NumPy so every engine is judged alike."""
    return float(np.sum(_to_numpy(a) * _to_numpy(b)))


def _perturbed(args: Sequence[Any], i: int, u: Any, h: float) -> list:
    out = list(args)
    out[i] = args[i] + h * u
    return out


def _close(a: float, b: float, atol: float, rtol: float) -> bool:
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


def _shape(x: Any) -> tuple:
    return () if isinstance(x, (int, float)) else tuple(x.shape)


# ----------------------------------------------------------------------------- the engine-free core
def check_vjp_jvp(f: Callable[..., Any], args: Sequence[Any],
                  vjp_fn: Callable[[Any], Sequence[Any]] | None = None,
                  jvp_fn: Callable[[int, Any], Any] | None = None,
                  argnums: Sequence[int] | None = None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, seed: int = 0,
                  direction: Callable[[int, Any], Any] | None = None,
                  check_namespace: bool = True) -> dict:
    """Check a vjp and a jvp of `f` at `args` along random directions; raise GradcheckError if wrong.

    vjp_fn(v) -> one cotangent per entry of argnums (None: zero); jvp_fn(i, u) -> the output tangent
    when argument i moves along u. Either may be None. For each argument, with random u and v:
    <v, jvp(u)>, <vjp(v), u> and <v, (f(x+eps u) - f(x-eps u)) / 2 eps> must agree. `direction(i, u)`
    may restrict the directions (e.g. to symmetric matrices). Shapes are checked too, and with
    `check_namespace` that a derivative lives in its argument's namespace (no hidden conversions).
    Returns the three numbers per argument, for reports.
    """
    rng = np.random.default_rng(seed)
    argnums = list(range(len(args))) if argnums is None else list(argnums)
    out = f(*args)
    v = random_like(out, rng)
    cotangents = list(vjp_fn(v)) if vjp_fn is not None else None
    report = {}
    for k, i in enumerate(argnums):
        u = random_like(args[i], rng)
        if direction is not None:
            u = direction(i, u)
        fd = (_to_numpy(f(*_perturbed(args, i, u, eps))) - _to_numpy(f(*_perturbed(args, i, u, -eps))))
        numeric = float(np.sum(fd / (2 * eps) * _to_numpy(v)))
        row = {"numeric": numeric}
        if jvp_fn is not None:
            t = jvp_fn(i, u)
            _check_result("jvp", i, t, out, check_namespace)
            row["jvp"] = _inner(v, t)
        if cotangents is not None:
            ct = cotangents[k]
            if ct is None:
                ct = 0.0 * _to_numpy(args[i])
            else:
                _check_result("vjp", i, ct, args[i], check_namespace)
            row["vjp"] = _inner(ct, u)
        for name in ("jvp", "vjp"):
            if name in row and not _close(row[name], numeric, atol, rtol):
                raise GradcheckError(f"argument {i}: {name} gives {row[name]!r} but finite differences "
                                     f"give {numeric!r} (<v, J u> along a random u)")
        if "jvp" in row and "vjp" in row and not _close(row["jvp"], row["vjp"], atol, rtol):
            raise GradcheckError(f"argument {i}: <v, jvp(u)> = {row['jvp']!r} but <vjp(v), u> = "
                                 f"{row['vjp']!r}: the two rules are not transposes of each other")
        report[i] = row
    return report


def _check_result(kind: str, i: int, value: Any, like: Any, check_namespace: bool) -> None:
    """A derivative must have the shape (and the namespace) of what it stands for."""
    if _shape(value) != _shape(like):
        raise GradcheckError(f"argument {i}: {kind} result has shape {_shape(value)}, "
                             f"expected {_shape(like)}")
    if check_namespace and not isinstance(like, (int, float)) and not isinstance(value, (int, float)):
        want, got = backend.namespace(like), backend.namespace(value)
        if want is not got:
            raise GradcheckError(f"argument {i}: {kind} result lives in {getattr(got, '__name__', got)}, "
                                 f"its argument in {getattr(want, '__name__', want)}")


# ------------------------------------------------------------------------------------ the rule table
def _rule_parts(name: str, args: Sequence[Any], kwargs: dict | None,
                argnums: Sequence[int] | None) -> tuple:
    from srcgrad.runtime.primitives import PRIMITIVES  # noqa: PLC0415
    from srcgrad.runtime.rules import RULES  # noqa: PLC0415

    if name not in PRIMITIVES:
        raise KeyError(f"unknown primitive {name!r}")
    if name not in RULES:
        raise GradcheckError(f"primitive {name!r} has no derivative rules")
    prim, rule, kwargs = PRIMITIVES[name], RULES[name], dict(kwargs or {})
    if argnums is None:
        argnums = [i for i, a in enumerate(args) if rule.vjp_for(i) is not None and _is_float_value(a)]
    return prim, rule, kwargs, list(argnums)


def differentiable_argnums(name: str, args: Sequence[Any]) -> list[int]:
    """The positions of `args` that primitive `name` differentiates: float values with a rule."""
    return _rule_parts(name, args, None, None)[3]


def check_rule(name: str, args: Sequence[Any], kwargs: dict | None = None,
               argnums: Sequence[int] | None = None, **options: Any) -> dict:
    """Check primitive `name`'s vjp and jvp rules at `args` (every float argument with a rule, unless
    `argnums` says which): against each other and against finite differences of the primitive."""
    prim, rule, kwargs, argnums = _rule_parts(name, args, kwargs, argnums)
    ans = prim(*args, **kwargs)

    def vjp_fn(v: Any) -> list:
        return [rule.vjp_for(i)(v, ans, *args, **kwargs) for i in argnums]

    def jvp_fn(i: int, u: Any) -> Any:
        return rule.jvp_for(i)(u, ans, *args, **kwargs)

    return check_vjp_jvp(lambda *a: prim(*a, **kwargs), args, vjp_fn, jvp_fn, argnums, **options)


def eager_available() -> bool:
    """True once the eager runtime provides `srcgrad.tensor` and `srcgrad.autograd.grad`."""
    try:
        import srcgrad  # noqa: PLC0415
        import srcgrad.autograd  # noqa: PLC0415
    except Exception:
        return False
    return callable(getattr(srcgrad, "tensor", None)) and callable(getattr(srcgrad.autograd, "grad", None))


def check_rule_second_order(name: str, args: Sequence[Any], kwargs: dict | None = None,
                            argnums: Sequence[int] | None = None, *, eps: float = 1e-6,
                            atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0,
                            direction: Callable[[int, Any], Any] | None = None) -> dict:
    """Check the rule differentiated by itself: the eager tape computes g = d<prim(x), v>/dx with
    create_graph=True, then d<g_i, w>/dx_j along u_j; finite differences of the first-order vjp rule
    (on plain arrays) must agree. NumPy arrays only (the tape's Tensors wrap them)."""
    import srcgrad  # noqa: PLC0415
    from srcgrad.runtime import primitives as P  # noqa: PLC0415

    prim, rule, kwargs, argnums = _rule_parts(name, args, kwargs, argnums)
    rng = np.random.default_rng(seed + 1)
    ans = prim(*args, **kwargs)
    v = random_like(ans, rng)

    def first(*a: Any) -> list:  # the first-order rule on plain arrays, one cotangent per argnum
        ans_ = prim(*a, **kwargs)
        return [rule.vjp_for(i)(v, ans_, *a, **kwargs) for i in argnums]

    firsts = first(*args)
    ws = [random_like(c, rng) for c in firsts]
    xs = [srcgrad.tensor(np.asarray(a), requires_grad=True) if k in argnums else a
          for k, a in enumerate(args)]
    out = prim(*xs, **kwargs)
    gs = srcgrad.autograd.grad(P.sum(P.multiply(out, v)), [xs[i] for i in argnums], create_graph=True)
    scalar = None
    for g, w in zip(gs, ws, strict=True):
        term = P.sum(P.multiply(g, w))
        scalar = term if scalar is None else P.add(scalar, term)
    if getattr(scalar, "requires_grad", False):
        hs = srcgrad.autograd.grad(scalar, [xs[i] for i in argnums], allow_unused=True)
    else:  # the first derivative does not depend on the inputs (a linear primitive): the second is 0
        hs = [None] * len(argnums)
    report = {}
    for i, h in zip(argnums, hs, strict=True):
        u = random_like(args[i], rng)
        if direction is not None:
            u = direction(i, u)
        plus, minus = first(*_perturbed(args, i, u, eps)), first(*_perturbed(args, i, u, -eps))
        numeric = builtins_sum((_inner(p, w) - _inner(m, w)) / (2 * eps)
                               for p, m, w in zip(plus, minus, ws, strict=True))
        analytic = 0.0 if h is None else _inner(h, u)
        if not _close(analytic, numeric, atol, rtol):
            raise GradcheckError(f"argument {i}: second derivative through the tape gives {analytic!r}, "
                                 f"finite differences of the vjp rule give {numeric!r}")
        report[i] = {"numeric": numeric, "tape": analytic}
    return report


def builtins_sum(values: Any) -> float:
    total = 0.0
    for x in values:
        total += x
    return total


# ------------------------------------------------------------------------------------------ gradcheck
def numeric_jacobian(f: Callable[..., Any], args: Sequence[Any], i: int, eps: float = 1e-6) -> np.ndarray:
    """d f / d args[i] by central differences, as a float64 array of shape out.shape + arg.shape."""
    x = _to_numpy(args[i])
    out_shape = _to_numpy(f(*args)).shape
    jac = np.zeros(out_shape + x.shape)
    for idx in np.ndindex(*x.shape):
        e = np.zeros(x.shape)
        e[idx] = 1.0
        u = _from_numpy(e, args[i])
        diff = _to_numpy(f(*_perturbed(args, i, u, eps))) - _to_numpy(f(*_perturbed(args, i, u, -eps)))
        jac[(Ellipsis,) + idx] = diff / (2 * eps)
    return jac


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "requires_grad") and hasattr(x, "detach")


def _analytic_jacobian(f: Callable[..., Any], args: Sequence[Any], argnums: list) -> list[np.ndarray]:
    """Rows of the Jacobian from reverse mode, one output element at a time."""
    if any(_is_tensor(a) for a in args):
        import srcgrad  # noqa: PLC0415
        import srcgrad.autograd  # noqa: PLC0415

        def vjp(v_np: np.ndarray) -> list:
            out = f(*args)
            seed = srcgrad.tensor(_from_numpy(v_np, _raw(out)))
            grads = srcgrad.autograd.grad([out], [args[i] for i in argnums], grad_outputs=[seed],
                                          allow_unused=True)
            return [None if g is None else _to_numpy(g) for g in grads]
        out_np = _to_numpy(f(*args))
    else:
        try:
            import srcgrad  # noqa: PLC0415

            compiled = srcgrad.vjp(f, wrt=tuple(argnums))
        except Exception as err:
            raise NotImplementedError(
                "gradcheck on plain arrays needs the compiler's srcgrad.vjp, which is not available: "
                f"{err}") from err
        out_np = _to_numpy(f(*args))

        def vjp(v_np: np.ndarray) -> list:
            _, grads = compiled(*args, _from_numpy(v_np, f(*args)))
            grads = grads if isinstance(grads, tuple) else (grads,)
            return [None if g is None else _to_numpy(g) for g in grads]

    jacs = [np.zeros(out_np.shape + _to_numpy(args[i]).shape) for i in argnums]
    for idx in np.ndindex(*out_np.shape):
        v = np.zeros(out_np.shape)
        v[idx] = 1.0
        for jac, g in zip(jacs, vjp(v), strict=True):
            if g is not None:
                jac[idx] = g
    return jacs


def _raw(x: Any) -> Any:
    """The array inside a Tensor (for building a matching grad_outputs), or x itself."""
    if _is_tensor(x):
        return x.detach().numpy()
    return x


def gradcheck(f: Callable[..., Any], inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Compare the analytic Jacobian of `f` at `inputs` with central finite differences.

    inputs: one value or a tuple of them (float64 recommended). Tensors that require grad are
    differentiated by the eager tape (`srcgrad.autograd.grad`) and only they are checked; with plain
    arrays or floats every float input is checked through the compiler's `srcgrad.vjp`. Returns True
    when every entry agrees within atol + rtol * |numeric|; otherwise raises GradcheckError (or
    returns False when raise_exception is False).
    """
    args = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    if any(_is_tensor(a) for a in args):
        argnums = [i for i, a in enumerate(args) if _is_tensor(a) and a.requires_grad]

        def numeric_f(*a: Any) -> Any:
            import srcgrad  # noqa: PLC0415

            wrapped = [srcgrad.tensor(x) if k in argnums else x for k, x in enumerate(a)]
            return _raw(f(*wrapped))
        numeric_args = [_raw(a) if k in argnums else a for k, a in enumerate(args)]
    else:
        argnums = [i for i, a in enumerate(args) if _is_float_value(a)]
        numeric_f, numeric_args = f, list(args)
    try:
        analytic = _analytic_jacobian(f, args, argnums)
        for i, jac in zip(argnums, analytic, strict=True):
            numeric = numeric_jacobian(numeric_f, numeric_args, i, eps)
            bad = np.abs(jac - numeric) > atol + rtol * np.abs(numeric)
            if bad.any():
                where = tuple(int(k) for k in np.argwhere(bad)[0])
                raise GradcheckError(
                    f"Jacobian mismatch for output 0 with respect to input {i},\n"
                    f"numerical:{numeric}\nanalytical:{jac}\nfirst mismatch at index {where}: "
                    f"numerical {numeric[where]!r}, analytical {jac[where]!r}")
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


