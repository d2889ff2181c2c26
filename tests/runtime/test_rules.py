"""The generic rule test: every primitive of the rule table, checked from one spec table.

For each case of `rule_specs.SPECS`: the vjp and jvp rules agree with each other (<v, J u> = <J^T v, u>)
and with central finite differences in float64, on NumPy and on array-api-strict (a namespace with
nothing but the standard, so a hidden conversion to NumPy fails here before CuPy ever sees it); and the
rule differentiated by the eager tape agrees with finite differences of the rule (second order).
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
import zlib

import numpy as np
import pytest

from srcgrad.runtime.primitives import PRIMITIVES
from srcgrad.runtime.rules import RULES
from srcgrad.testing import (
    check_rule,
    check_rule_second_order,
    check_vjp_jvp,
    differentiable_argnums,
    eager_available,
    random_like,
)

from .rule_specs import COMPLEX_OUTPUT, NONDIFF, SPECS, STRICT_SKIP

xps = pytest.importorskip("array_api_strict")

CASES = [pytest.param(name, case, id=f"{name}-{case.id}") for name, cases in SPECS.items() for case in cases]
VALUE_CASES = [pytest.param(name, case, id=f"{name}-{case.id or 'default'}")
               for name, cases in NONDIFF.items() for case in cases]
TOL = {"eps": 1e-6, "atol": 1e-6, "rtol": 1e-5}


def _seed(name: str, case_id: str) -> int:
    return zlib.crc32(f"{name}/{case_id}".encode())


def _options(name, case):
    opts = dict(TOL, seed=_seed(name, case.id), direction=case.direction)
    opts.update(case.tol)
    return opts


def _to_strict(a):
    """NumPy arrays (also inside index tuples) as array-api-strict arrays."""
    if isinstance(a, np.ndarray):
        return xps.asarray(a)
    if isinstance(a, tuple):
        return tuple(_to_strict(x) for x in a)
    return a


# ------------------------------------------------------------------------------------------ coverage
def test_every_differentiable_primitive_has_rules():
    missing = [n for n, p in PRIMITIVES.items() if p.differentiable and n not in RULES]
    assert not missing, f"differentiable primitives without vjp/jvp rules: {missing}"
    wrong = [n for n in RULES if not PRIMITIVES[n].differentiable]
    assert not wrong, f"rules for primitives declared non-differentiable: {wrong}"


def test_every_primitive_has_a_spec():
    no_spec = sorted(n for n in RULES if not SPECS.get(n))
    assert not no_spec, f"primitives with rules but no test spec in rule_specs.SPECS: {no_spec}"
    no_values = sorted(n for n, p in PRIMITIVES.items() if not p.differentiable and not NONDIFF.get(n))
    assert not no_values, f"non-differentiable primitives without a value case in NONDIFF: {no_values}"


def test_specs_name_known_primitives():
    unknown = sorted(set(SPECS) - set(RULES)) + sorted(set(NONDIFF) - set(PRIMITIVES))
    unknown += sorted(set(STRICT_SKIP) - set(SPECS))
    assert not unknown, f"specs for unknown (or rule-less) primitives: {unknown}"


def _split_params(fn):
    """(positional names without defaults, {keyword name: default}, has *args) of a function."""
    pos, kw, var = [], {}, False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            var = True
        elif p.default is p.empty and p.kind is not p.KEYWORD_ONLY:
            pos.append(p.name)
        elif p.default is not p.empty:
            kw[p.name] = p.default
    return pos, kw, var


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_signatures_match_the_primitive(name):
    """The compiler inlines rules by parameter name: each lambda must take (g or t, ans, the primitive's
    positional arguments, its static keywords with the same defaults)."""
    pos, kw, var = _split_params(PRIMITIVES[name].impl)
    rule = RULES[name]
    assert rule.variadic == var, f"{name}: variadic rule iff the primitive takes *args"
    if not var:
        assert len(rule.vjp) == len(pos), f"{name}: one vjp entry per positional argument {pos}"
    for kind, lambdas in (("vjp", rule.vjp), ("jvp", rule.jvp)):
        for f in lambdas:
            if f is None:
                continue
            fpos, fkw, fvar = _split_params(f)
            assert fpos[:2] == ["g" if kind == "vjp" else "t", "ans"], f"{name} {kind}: starts {fpos[:2]}"
            if var:
                assert fvar and "argnum" in inspect.signature(f).parameters
            else:
                assert len(fpos) == 2 + len(pos), f"{name} {kind}: positional parameters {fpos}"
            assert fkw == kw, f"{name} {kind}: static keywords {fkw} differ from the primitive's {kw}"


# -------------------------------------------------------------------------------------- first order
@pytest.mark.parametrize("name, case", CASES)
def test_rule_numpy(name, case):
    args = case.sample(np.random.default_rng(_seed(name, case.id)))
    check_rule(name, args, case.kwargs, argnums=case.argnums, **_options(name, case))


@pytest.mark.parametrize("name, case", CASES)
def test_rule_array_api_strict(name, case):
    if name in STRICT_SKIP:
        pytest.skip(STRICT_SKIP[name])
    if case.strict_skip:
        pytest.skip(case.strict_skip)
    args = tuple(_to_strict(a) for a in case.sample(np.random.default_rng(_seed(name, case.id))))
    kwargs = {k: _to_strict(v) for k, v in case.kwargs.items()}
    check_rule(name, args, kwargs, argnums=case.argnums, **_options(name, case))


# ------------------------------------------------------------------------------------- second order
@pytest.mark.parametrize("name, case", CASES)
def test_rule_second_order(name, case):
    if not eager_available():
        pytest.skip("second order runs through the eager tape: srcgrad.tensor / srcgrad.autograd.grad "
                    "do not exist yet")
    if not case.second_order:
        pytest.skip("no second derivative for this case")
    args = case.sample(np.random.default_rng(_seed(name, case.id)))
    opts = _options(name, case)
    opts["atol"], opts["rtol"] = opts["atol"] * 10, opts["rtol"] * 10
    check_rule_second_order(name, args, case.kwargs, argnums=case.argnums, **opts)


# ---------------------------------------------------------------------------------- compiled rules
@pytest.fixture(scope="module")
def case_functions(tmp_path_factory):
    """One module-level `def` per case that calls the primitive, written to a real file so the compiler
    can read its source; the static keywords are module globals (set after import)."""
    lines = ["from srcgrad.runtime.primitives import PRIMITIVES", "total = PRIMITIVES['sum']", ""]
    values, names = {}, {}
    for k, param in enumerate(CASES):
        name, case = param.values
        n = len(case.args)
        params = ", ".join(f"a{i}" for i in range(n))
        kws = []
        for key, value in case.kwargs.items():
            values[f"k{k}_{key}"] = value
            kws.append(f"{key}=k{k}_{key}")
        call = f"prim_{name}({', '.join([params] + kws) if params else ', '.join(kws)})"
        lines += [f"prim_{name} = PRIMITIVES[{name!r}]", f"def f{k}({params}):", f"    return {call}", "",
                  f"def h{k}({params}):", f"    return total({call} * w{k})", ""]
        names[(name, case.id)] = f"f{k}"
        names[("scalar", name, case.id)] = f"h{k}"
        values[f"w{k}"] = None  # the output weights of h{k}: set by the hvp test
    path = tmp_path_factory.mktemp("compiled") / "srcgrad_rule_cases.py"
    path.write_text("\n".join(lines))
    spec = importlib.util.spec_from_file_location("srcgrad_rule_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for key, value in values.items():
        setattr(module, key, value)
    return {key: getattr(module, fname) for key, fname in names.items()}


def _rule_hvp_reference(name, case, args, argnum, w, u, w2, eps):
    """<d/dx_i [vjp rule of x_i at cotangent w], w2> along u, by central differences of the rule
    (which the first-order columns have already checked)."""
    prim, rule = PRIMITIVES[name], RULES[name].vjp_for(argnum)

    def first(a):
        return rule(w, prim(*a, **case.kwargs), *a, **case.kwargs)

    plus, minus = list(args), list(args)
    plus[argnum], minus[argnum] = args[argnum] + eps * u, args[argnum] - eps * u
    return float(np.sum((np.asarray(first(plus)) - np.asarray(first(minus))) / (2 * eps) * w2))


@pytest.mark.parametrize("name, case", CASES)
def test_rule_compiled(name, case, case_functions):
    """The compiler inlines the same rules into generated code: its vjp (and jvp, once it exists) of a
    function calling the primitive must pass the same checks."""
    import srcgrad

    if not callable(getattr(srcgrad, "vjp", None)):
        pytest.skip("the compiler's srcgrad.vjp does not exist yet")
    f = case_functions[(name, case.id)]
    args = case.sample(np.random.default_rng(_seed(name, case.id)))
    argnums = list(case.argnums) if case.argnums is not None else differentiable_argnums(name, args)
    fv = srcgrad.vjp(f, wrt=tuple(argnums))

    def vjp_fn(v):
        _, cts = fv(*args, v)
        return list(cts) if isinstance(cts, (tuple, list)) else [cts]

    jvp_fn = None
    if callable(getattr(srcgrad, "jvp", None)):
        def jvp_fn(i, u):
            return srcgrad.jvp(f, wrt=i)(*args, u)[1]

    opts = _options(name, case)
    check_vjp_jvp(f, args, vjp_fn, jvp_fn, argnums, **opts)


@pytest.mark.parametrize("name, case", CASES)
def test_rule_compiled_hvp(name, case, case_functions):
    """Forward-over-reverse in the compiler: hvp of h(x) = sum(prim(x) * w) against central
    differences of the vjp rule."""
    import srcgrad

    if not callable(getattr(srcgrad, "hvp", None)):
        pytest.skip("the compiler's srcgrad.hvp does not exist yet")
    if not case.second_order:
        pytest.skip("no second derivative for this case")
    h = case_functions[("scalar", name, case.id)]
    rng = np.random.default_rng(_seed(name, case.id))
    args = case.sample(rng)
    argnums = list(case.argnums) if case.argnums is not None else differentiable_argnums(name, args)
    ans = PRIMITIVES[name](*args, **case.kwargs)
    w = random_like(ans, rng)
    h.__globals__[h.__name__.replace("h", "w", 1)] = w
    opts = _options(name, case)
    for i in argnums:
        u, w2 = random_like(args[i], rng), random_like(args[i], rng)
        if case.direction is not None:
            u = case.direction(i, u)
        _, hu = srcgrad.hvp(h, wrt=i)(*args, u)
        analytic = float(np.sum(np.asarray(hu) * w2))
        numeric = _rule_hvp_reference(name, case, args, i, w, u, w2, opts["eps"])
        tol = 10 * (opts["atol"] + opts["rtol"] * abs(numeric))
        assert abs(analytic - numeric) <= tol, f"argument {i}: hvp {analytic!r}, reference {numeric!r}"


# --------------------------------------------------------------------------- non-differentiable values
def _numpy_value(x):
    if isinstance(x, (tuple, int, float, bool)):
        return x
    return np.asarray(x) if isinstance(x, np.ndarray) or np.isscalar(x) else np.from_dlpack(x)


@pytest.mark.parametrize("strict", [False, True], ids=["numpy", "strict"])
@pytest.mark.parametrize("name, case", VALUE_CASES)
def test_nondiff_values(name, case, strict):
    args = tuple(np.asarray(a) if isinstance(a, list) else a for a in case.args)
    expected = case.expected(*args, **case.kwargs)
    if strict:
        args = tuple(_to_strict(a) for a in args)
    got = PRIMITIVES[name](*args, **case.kwargs)
    np.testing.assert_array_equal(_numpy_value(got), expected)


# ------------------------------------------------------------------------- documented conventions
def _vjp(name, args, kwargs, argnum=0):
    prim, rule = PRIMITIVES[name], RULES[name]
    ans = prim(*args, **kwargs)
    return rule.vjp_for(argnum)(np.ones_like(ans) if hasattr(ans, "shape") else 1.0, ans, *args, **kwargs)


def test_max_ties_split_the_gradient_evenly():
    np.testing.assert_allclose(_vjp("max", (np.array([1.0, 3.0, 3.0]),), {}), [0.0, 0.5, 0.5])
    np.testing.assert_allclose(_vjp("min", (np.array([[2.0, 2.0], [1.0, 4.0]]),), {"axis": 1}),
                               [[0.5, 0.5], [1.0, 0.0]])
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(_vjp("maximum", (x, np.array([0.0, 2.0, 4.0])), {}), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(_vjp("maximum", (x, np.array([0.0, 2.0, 4.0])), {}, 1), [0.0, 0.5, 1.0])


def test_prod_gradient_with_zeros_is_exact():
    # d/dx_i prod(x) = product of the others: one zero leaves one nonzero entry, two zeros none
    np.testing.assert_allclose(_vjp("prod", (np.array([0.0, 3.0, 2.0]),), {}), [6.0, 0.0, 0.0])
    np.testing.assert_allclose(_vjp("prod", (np.array([0.0, 0.0, 2.0]),), {}), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(_vjp("cumprod", (np.array([2.0, 0.0, 3.0]),), {"axis": 0}),
                               [1.0 + 0.0 + 0.0, 2.0 + 6.0, 0.0])


def test_norm_gradient_at_zero_is_zero():
    np.testing.assert_array_equal(_vjp("norm", (np.zeros(3),), {}), np.zeros(3))


def test_rules_never_modify_their_inputs():
    for name, cases in SPECS.items():
        for case in cases[:1]:
            args = case.sample(np.random.default_rng(1))
            copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
            with warnings.catch_warnings():
                if name in COMPLEX_OUTPUT:  # paired with real weights on purpose (see rule_specs)
                    warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
                check_rule(name, args, case.kwargs, argnums=case.argnums, **TOL, direction=case.direction)
            for a, c in zip(args, copies, strict=True):
                if isinstance(a, np.ndarray):
                    np.testing.assert_array_equal(a, c, err_msg=f"{name} modified an input")


def test_index_add_refuses_repeats_it_cannot_accumulate():
    """Without add.at a repeated integer index would silently add once: refused instead."""
    x = xps.zeros(4, dtype=xps.float64)
    with pytest.raises(NotImplementedError, match="add.at"):
        PRIMITIVES["index_add"](x, xps.ones(2, dtype=xps.float64), index=xps.asarray([1, 1]))
    np.testing.assert_array_equal(PRIMITIVES["index_add"](np.zeros(4), np.ones(3), index=np.array([1, 1, 3])),
                                  [0.0, 2.0, 0.0, 1.0])


def test_primitive_categories_name_differentiable_primitives():
    from srcgrad.runtime.primitives import ELEMENTWISE, UNARY_MATH

    assert UNARY_MATH <= ELEMENTWISE
    unknown = sorted(n for n in ELEMENTWISE if n not in PRIMITIVES or not PRIMITIVES[n].differentiable)
    assert not unknown, f"category names that are not differentiable primitives: {unknown}"
