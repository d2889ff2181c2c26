"""The generic record test: every primitive's record (and every helper's) holds the facts the stages need,
and each fact agrees with what the primitive computes.

A primitive's facts live in its record only (`runtime/primitives.py`, see docs/rules.md "Adding a
primitive"); the stages read views computed from the records. So this file is where a missing or wrong
fact shows up: a new elementwise primitive that forgot its `math` lowering, a `linear` flag its rules
contradict, a `numpy` lowering that computes something else, a node name the tape cannot use. The inputs
come from the rule test's spec table (`rule_specs.SPECS`), so a primitive with a spec is covered here at
once.
"""

from __future__ import annotations

import ast
import inspect
import operator
import warnings
import zlib

import numpy as np
import pytest

from srcgrad.runtime import primitives as P
from srcgrad.runtime import rules as R
from srcgrad.runtime.primitives import FACTS, HELPERS, PRIMITIVES, UNDECLARED

from .rule_specs import NONDIFF, SPECS

DIFFERENTIABLE = sorted(n for n, p in PRIMITIVES.items() if p.differentiable)
BATCHING_KINDS = {"lift", "swap", "loop"}
# ast operator class name -> the Python function that applies it
PYTHON_OPERATORS = {"Add": operator.add, "Sub": operator.sub, "Mult": operator.mul, "Div": operator.truediv,
                    "Pow": operator.pow, "MatMult": operator.matmul, "Mod": operator.mod,
                    "USub": operator.neg}


def _rng(*parts: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("/".join(parts).encode()))


def _cases(name: str) -> list:
    return SPECS.get(name, [])


def _close(a, b, err: str) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-10, err_msg=err)


# ------------------------------------------------------------------------------------ completeness
def test_every_fact_has_a_value_of_its_kind():
    """No record holds a fact outside FACTS, and unknown facts are refused where they are declared."""
    with pytest.raises(TypeError, match="unknown facts"):
        P.Primitive("nothing", lambda x: x, linaer=((0,),))
    for n, p in PRIMITIVES.items():
        for fact in FACTS:
            assert hasattr(p, fact), f"{n} has no {fact!r}"


def test_every_differentiable_primitive_has_its_rules_on_its_record():
    for n, p in PRIMITIVES.items():
        if p.differentiable:
            assert p.rule is not None, f"{n}: differentiable but no defrule in rules.py"
            assert p.rule is R.RULES[n], f"{n}: the record's rule is not the rule table's"
        else:
            assert p.rule is None, f"{n}: non-differentiable but has rules"


def test_every_elementwise_primitive_says_how_it_lowers_on_floats():
    """An elementwise primitive names its `math` function or operator, or says math=None explicitly."""
    for n, p in PRIMITIVES.items():
        if not p.elementwise:
            continue
        assert p.math is not UNDECLARED or p.operator, \
            f"{n}: elementwise, so declare math='<math function>', operator='<ast op>' or math=None"
        if p.math:
            assert callable(p.math_function), f"{n}: math={p.math!r} names no function of math or builtins"


def test_every_differentiable_primitive_says_how_it_batches():
    for n in DIFFERENTIABLE:
        p = PRIMITIVES[n]
        assert p.batching in BATCHING_KINDS, f"{n}: batching={p.batching!r}, not one of {BATCHING_KINDS}"
        assert (p.batching == "lift") == p.elementwise, \
            f"{n}: 'lift' is the batching of elementwise primitives, and theirs only"


def test_swap_batching_has_batched_variants_for_what_it_applies_to_the_tangent():
    """A "swap" rule is inlined as written with the primitives applied to the tangent swapped for their
    batched variants: each primitive its jvp applies to the tangent must have one, be elementwise, or be
    "swap"-batched itself without one (it acts on trailing axes and broadcasts leading ones: tril,
    solve), never a "loop" one, whose rule cannot see a leading basis axis."""
    from srcgrad import batching

    tree = ast.parse(inspect.getsource(R))
    jvps: dict[str, list] = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "defrule"
                and isinstance(node.args[0], ast.Constant)):
            for kw in node.keywords:
                if kw.arg == "jvp":
                    jvps[node.args[0].value] = [e for e in kw.value.elts if isinstance(e, ast.Lambda)]
    missing = []
    for n in DIFFERENTIABLE:
        if PRIMITIVES[n].batching != "swap":
            continue
        for lam in jvps[n]:
            t = lam.args.args[0].arg
            for call in ast.walk(lam.body):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                    continue
                callee = call.func.id
                if callee in PRIMITIVES and any(isinstance(a, ast.Name) and a.id == t for a in call.args) \
                        and callee not in batching.BATCHED_PRIMS and \
                        PRIMITIVES[callee].batching not in ("lift", "swap"):
                    missing.append(f"{n}: {callee}")
    assert not missing, f"'swap' rules applying a 'loop'-batched primitive to the tangent: {missing}"


def test_node_names_are_the_classes_the_tape_builds():
    from srcgrad.runtime.autograd import node_class

    for n in DIFFERENTIABLE:
        name = PRIMITIVES[n].node_name
        assert name.isidentifier() and (name.endswith(("Backward0", "Backward1")) or name == "CopySlices"), \
            f"{n}: node name {name!r}"
        assert node_class(n).__name__ == name


def test_no_primitive_writes_into_an_argument():
    """The compiler assumes a primitive call leaves its arguments alone (generated code owns only what
    it allocates): a primitive that wrote would have to say so, and none does."""
    for n, p in PRIMITIVES.items():
        assert p.writes == (), f"{n} declares writes={p.writes}"
        for case in _cases(n)[:2]:
            args = case.sample(_rng(n, case.id, "writes"))
            copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p(*args, **case.kwargs)
            for a, c in zip(args, copies, strict=True):
                if isinstance(a, np.ndarray):
                    np.testing.assert_array_equal(a, c, err_msg=f"{n} wrote into an argument")


# ---------------------------------------------------------------------------- facts agree with values
@pytest.mark.parametrize("name", sorted(n for n, p in PRIMITIVES.items() if p.numpy))
def test_numpy_lowering_computes_the_primitive(name):
    p = PRIMITIVES[name]
    f = getattr(np, p.numpy, None)
    assert callable(f), f"{name}: numpy={p.numpy!r} is not a NumPy function"
    cases = _cases(name) or [None]
    for case in cases:
        if case is None:  # a non-differentiable primitive with no spec: a plain float array
            args, kwargs = (np.linspace(-1.0, 1.0, 6).reshape(2, 3),), {}
        else:
            args, kwargs = case.sample(_rng(name, case.id, "numpy")), case.kwargs
        with np.errstate(all="ignore"):
            want = p(*args, **kwargs)
            got = f(*args, **kwargs)
        _close(got, want, f"np.{p.numpy} differs from primitive {name}")


@pytest.mark.parametrize("name", sorted(n for n, p in PRIMITIVES.items() if p.math or p.operator))
def test_float_lowering_computes_the_primitive(name):
    p = PRIMITIVES[name]
    lowerings = []
    if p.math:
        lowerings.append((f"math {p.math}", p.math_function))
    if p.operator:
        assert p.operator in PYTHON_OPERATORS, f"{name}: operator={p.operator!r} is no Python operator"
        lowerings.append((f"operator {p.operator}", PYTHON_OPERATORS[p.operator]))
    float_cases = [c for c in _cases(name) if not c.kwargs]
    for case in float_cases:
        args = case.sample(_rng(name, case.id, "math"))
        floats = tuple(float(np.ravel(a)[0]) if isinstance(a, np.ndarray) else a for a in args)
        if not all(isinstance(a, float) for a in floats) or p.operator == "MatMult":
            continue
        want = p(*floats)
        for what, f in lowerings:
            _close(f(*floats), want, f"{name}: {what}")


def _linear_groups(name: str, n_args: int) -> list[tuple[int, ...]]:
    lin = PRIMITIVES[name].linear
    if lin == "all":
        return [tuple(range(n_args))]
    if lin == "each":
        return [(i,) for i in range(n_args)]
    return list(lin)


LINEAR = sorted(n for n, p in PRIMITIVES.items() if p.linear)


@pytest.mark.parametrize("name", LINEAR)
def test_linear_flags_hold_numerically_and_agree_with_the_rules(name):
    """For each group G the record calls linear: f(a x + b y) = a f(x) + b f(y) over the arguments in G
    (the others fixed), and the jvp rules summed over G give f applied to the tangents."""
    p = PRIMITIVES[name]
    assert p.differentiable, f"{name}: linear but not differentiable"
    assert _cases(name), f"{name}: linear, so it needs a spec in rule_specs.SPECS to be checked"
    from srcgrad.testing import random_like

    for case in _cases(name):
        rng = _rng(name, case.id, "linear")
        args = case.sample(rng)
        for group in _linear_groups(name, len(args)):
            x = list(args)
            y = list(args)
            for i in group:
                y[i] = random_like(args[i], rng)
            a, b = 0.7, -1.3
            mixed = list(args)
            for i in group:
                mixed[i] = a * x[i] + b * y[i]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
                lhs = p(*mixed, **case.kwargs)
                rhs = a * np.asarray(p(*x, **case.kwargs)) + b * np.asarray(p(*y, **case.kwargs))
                _close(lhs, rhs, f"{name} is not linear in {group} ({case.id})")
                ans = p(*args, **case.kwargs)
                total = None
                for i in group:
                    term = p.rule.jvp_for(i)(y[i], ans, *args, **case.kwargs)
                    total = term if total is None else total + term
                _close(total, p(*y, **case.kwargs), f"{name}: the jvp rules over {group} are not f itself")


@pytest.mark.parametrize("name", sorted(n for n, p in PRIMITIVES.items() if p.shape_only))
def test_shape_only_arguments_are_read_for_their_shape_only(name):
    """Changing the values (not the shape or dtype) of a shape-only argument leaves the result alone."""
    p = PRIMITIVES[name]
    cases = [(c.args, c.kwargs) for c in NONDIFF.get(name, [])] or \
        [(c.sample(_rng(name, c.id, "shape")), c.kwargs) for c in _cases(name)]
    assert cases, f"{name}: shape_only, so it needs a case in rule_specs to be checked"
    for args, kwargs in cases:
        positions = range(len(args)) if p.shape_only is True else p.shape_only
        for i in positions:
            if not isinstance(args[i], (np.ndarray, float)):
                continue
            other = list(args)
            changed = args[i] * 3 + 1  # other values, the same shape and dtype
            other[i] = changed.astype(args[i].dtype) if isinstance(args[i], np.ndarray) else changed
            _close(p(*other, **kwargs), p(*args, **kwargs), f"{name}: argument {i} changed the result")


# ------------------------------------------------------------------------------------------ helpers
def test_helper_records_are_consistent():
    """Positions name parameters the helper has; a zero-derivative helper is not linear; only a helper
    that says so writes (the gradient buffer generated code allocated); batching 'axis' says where."""
    for fn, h in HELPERS.items():
        where = getattr(fn, "__name__", fn)
        if isinstance(fn, type) or not inspect.isfunction(fn):
            continue
        n = len(inspect.signature(fn).parameters)
        for fact in ("linear", "static", "writes") + (() if h.shape_only is True else ("shape_only",)):
            assert all(0 <= i < n for i in getattr(h, fact)), f"{where}: {fact} {getattr(h, fact)}"
        assert not (h.zero and h.linear), f"{where}: both zero-derivative and linear"
        assert h.batching in (None, "as_is", "axis"), f"{where}: batching {h.batching!r}"
        assert (h.batching == "axis") == (h.axis_at is not None), f"{where}: batching 'axis' needs axis_at"
    writers = {getattr(h.fn, "__name__", "") for h in HELPERS.values() if h.writes}
    assert writers == {"index_add_into", "index_update_owned"}


def test_every_rule_helper_called_from_generated_code_has_a_record_or_is_transformed():
    """forward mode handles a helper by its record (linear, zero) or by a hand-written tangent, and
    otherwise transforms its source: that source must then be a plain function of rules.py."""
    from srcgrad import forward

    for fn, (tfn, takes) in forward.SPECIAL.items():
        assert callable(tfn) and all(isinstance(i, int) for i in takes)
        assert fn not in forward.LINEAR and fn not in forward.ZERO, f"{fn.__name__}: two tangents"


# ------------------------------------------------------------------------------------------- views
def test_views_are_the_tables_the_stages_read():
    """Each view has the contents of the table it replaces; where a stage still defines its own table
    (until it imports the view), the two must agree. A table a stage has deleted is not compared."""
    from srcgrad import analysis, batching, forward, normalize, optimize

    assert P.UNARY_MATH <= P.ELEMENTWISE <= P.SCALAR_PRIMS <= P.NUMPY_PRIMS
    pairs = [(optimize, "MATH_FAST", P.MATH_FAST), (optimize, "NUMPY_FAST", P.NUMPY_FAST),
             (analysis, "SCALAR_PRIMS", P.SCALAR_PRIMS), (analysis, "NUMPY_PRIMS", P.NUMPY_PRIMS),
             (analysis, "ELEMENTWISE", P.ELEMENTWISE)]
    for module, table, view in pairs:
        if hasattr(module, table):
            assert getattr(module, table) == view, f"{module.__name__}.{table} differs from its view"
    own = {normalize.refuse_shared, normalize.passed_arrays, normalize.refuse_array_argument}
    assert normalize._runtime_nondiff() == P.runtime_nondiff() | own
    gast = pytest.importorskip("gast")
    assert normalize.BINOPS == {getattr(gast, k): v for k, v in P.BINARY_OPERATORS.items()}
    assert batching.ELEMENTWISE == {n for n in PRIMITIVES if PRIMITIVES[n].batching == "lift"}
    assert set(forward.NUMPY_DIRECT) >= set(P.NUMPY_FAST)
    assert all(callable(f) for f in forward.NUMPY_DIRECT.values())


@pytest.mark.parametrize("name", sorted(n for n, p in P.PRIMITIVES.items() if p.fresh))
def test_a_fresh_primitive_returns_memory_no_argument_shares(name):
    """`fresh` lets the compiler drop alias checks: the result must never share an argument's memory."""
    prim = P.PRIMITIVES[name]
    x = np.linspace(0.5, 1.5, 6).reshape(2, 3)
    args = {"index_update": (x, 2.0), "index_add": (x, 2.0)}.get(name)
    kwargs = {"index": 0} if name in ("index_update", "index_add") else {}
    array_cases = [c for c in _cases(name) if not c.kwargs]
    if args is None and array_cases:  # the rule spec's own operands (matmul's must agree in shape)
        args = tuple(a for a in array_cases[0].sample(_rng(name, "fresh")))
        if not any(isinstance(a, np.ndarray) and a.ndim for a in args):
            args = None
    if args is None:
        n = len([p for p in inspect.signature(prim.impl).parameters.values()
                 if p.default is inspect.Parameter.empty])
        args = (x, x[::-1].copy())[:n] if n else (x,)
    out = prim(*args, **kwargs)
    assert isinstance(out, np.ndarray)
    assert not any(np.shares_memory(out, a) for a in args if isinstance(a, np.ndarray))



def _numpy_spellings() -> list:
    """(label, NumPy's call, srcgrad's adapter) for every NumPy function, ndarray method and ndarray
    attribute the mapping tables spell."""
    from srcgrad.runtime import mapping as M  # noqa: PLC0415

    x = np.ones((2, 3))
    out = [(f"np.{f.__name__}", f, ad) for f, ad in M.NUMPY_FUNCTIONS.items()
           if not isinstance(f, type) and hasattr(f, "__name__")]  # (result classes are not calls)
    out += [(f"ndarray.{n}", lambda a, *e, n=n: getattr(a, n)(*e), ad)
            for n, ad in M.METHODS.items() if callable(getattr(x, n, None))]
    out += [(f"ndarray.{n}", operator.attrgetter(n), ad)
            for n, ad in M.ATTRIBUTES.items() if hasattr(x, n) and not callable(getattr(x, n))]
    return sorted(out, key=lambda t: t[0])


# generic operands to try in turn after the array (a test's sampling, not a list of facts)
_VIEW_OPERANDS = [(), (0,), (0, 1), (-1,), ((-1,),), ((2, 2, 3, 3),)]


@pytest.mark.parametrize("label, numpy_call, adapter",
                         [pytest.param(*t, id=t[0]) for t in _numpy_spellings()])
def test_where_numpy_returns_a_view_srcgrad_does_too(label, numpy_call, adapter):
    """The compiler keeps no list of view-returning names: its alias checks compare memory at run time,
    so a spelling whose NumPy result shares its argument's memory must share it in srcgrad too (a copy,
    as diagonal once returned, keeps the old values where NumPy sees a later write: a different program
    that no check sees). Each spelling runs on the first operands NumPy accepts."""
    a0 = np.linspace(0.5, 2.0, 18).reshape(2, 3, 3)
    for extra in _VIEW_OPERANDS:
        a = a0.copy()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = numpy_call(a, *extra)
        except Exception:  # noqa: BLE001 - not these operands: try the next
            continue
        break
    else:
        pytest.skip(f"{label} takes none of the generic operands")
    parts = expected if isinstance(expected, (list, tuple)) else [expected]
    if not any(isinstance(p, np.ndarray) and np.shares_memory(p, a) for p in parts):
        return  # NumPy copies: nothing to match
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = adapter(a, *extra)
    parts = got if isinstance(got, (list, tuple)) else [got]
    assert any(isinstance(p, np.ndarray) and np.shares_memory(p, a) for p in parts), \
        f"{label}{extra}: NumPy returns a view of its argument, srcgrad a copy"

SCALAR_EXPRESSIONS = sorted(n for n, p in PRIMITIVES.items() if p.scalar_expression)
_NUMBERS = (-1.5, 0.0, 0.25, 2.0, float("nan"), float("inf"), -float("inf"))


@pytest.mark.parametrize("name", SCALAR_EXPRESSIONS)
def test_scalar_expression_computes_the_primitive(name):
    """A record's scalar expression gives what the primitive gives on one-element operands: Python
    floats and NumPy float64 scalars, ties, signs and nan included, and of the same kind (a NumPy
    scalar stays one, so the user's forward values keep their type)."""
    p = PRIMITIVES[name]
    n_args = p.scalar_expression.count("{") and 1 + max(
        int(c) for c in p.scalar_expression if c.isdigit() and "{" + c + "}" in p.scalar_expression)
    tree = ast.parse(p.scalar_expression.format(*[f"a{i}" for i in range(n_args)]), mode="eval")
    code = compile(tree, name, "eval")
    for values in np.array(np.meshgrid(*[_NUMBERS] * n_args)).reshape(n_args, -1).T:
        for kind in (float, np.float64):
            args = [kind(v) for v in values]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = p(*args)
                if name == "sign":  # and NumPy's own sign, which the primitive follows
                    assert np.sign(args[0]) == want or np.isnan(want) and np.isnan(np.sign(args[0]))
                got = eval(code, {}, {f"a{i}": a for i, a in enumerate(args)})  # noqa: S307 -- a record's own text
            assert (np.isnan(got) and np.isnan(want)) or got == want, f"{name}{tuple(args)}: {got} != {want}"
            if isinstance(want, np.generic):
                assert isinstance(got, np.generic), f"{name}{tuple(args)}: {type(got)} for {type(want)}"


SHAPED_LIKE = sorted((h for h in HELPERS.values() if h.shaped_like), key=lambda h: h.fn.__name__)


@pytest.mark.parametrize("record", SHAPED_LIKE, ids=lambda h: h.fn.__name__)
def test_shaped_like_helpers_bring_their_first_argument_to_the_second_shape(record):
    """The optimizer drops a `shaped_like` helper where the facts say its two shapes agree: it must
    then return its first argument itself, and otherwise a value of its second argument's shape (summed
    down or broadcast up, whichever the shapes call for)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3))
    assert record.fn(x, np.empty((2, 3))) is x
    shapes = []
    for other in (rng.standard_normal((4, 2, 3)), rng.standard_normal(3)):  # to sum down, to broadcast up
        try:
            shapes.append(np.shape(record.fn(other, x)))
        except ValueError:  # the direction this helper does not go
            continue
    assert shapes and all(s == (2, 3) for s in shapes)
    assert record.fn(1.5, 2.5) == 1.5


def test_folding_helpers_are_static_values_of_static_arguments():
    """A `folds` helper is computed at build time where its arguments are literals: it must have a zero
    derivative (its value depends on static values only) and give equal values for equal arguments."""
    folding = [h for h in HELPERS.values() if h.folds]
    assert {h.fn for h in folding} >= {R.inverse_permutation, R.kept_shape, P.normalize_axis}
    for h in folding:
        assert h.zero, h
    assert R.inverse_permutation((2, 0, 1), 3) == R.inverse_permutation((2, 0, 1), 3) == (1, 2, 0)
    assert P.normalize_axis(-1, 3) == P.normalize_axis(-1, 3) == (2,)


@pytest.mark.parametrize("prim", [p for p in P.PRIMITIVES.values() if p.as_index is not None],
                         ids=lambda p: p.name)
def test_as_index_computes_the_primitive_as_a_view(prim):
    """A record's `as_index(axis, ndim, shape)` is a basic index giving the primitive's value, as a view,
    for every axis it accepts, and None where the primitive refuses the axis for that shape; on arrays of
    0 to 3 dimensions."""
    rng = np.random.default_rng(0)
    for ndim in range(4):
        for shape in ([1] * ndim, [2, 1, 3][:ndim]):
            x = rng.normal(size=tuple(shape))
            for axis in range(-ndim - 2, ndim + 2):
                ix = prim.as_index(axis, ndim, x.shape)
                try:
                    expected = prim(x, axis=axis)
                except Exception:
                    assert ix is None, (prim.name, shape, axis)
                    continue
                if ix is None:
                    continue
                got = x[ix]
                assert got.shape == np.shape(expected), (prim.name, shape, axis)
                np.testing.assert_array_equal(got, expected)
                assert np.shares_memory(got, x) or x.size == 0
