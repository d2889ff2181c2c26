"""`array_rules.on_arrays`: the rule table's own functions, re-bound to call primitive implementations."""

from __future__ import annotations

import types

import numpy as np
import pytest

from srcgrad.runtime import array_rules, rules
from srcgrad.runtime.primitives import PRIMITIVES, Primitive

from .rule_specs import SPECS


def _rule_cases():
    for name, rule in sorted(rules.RULES.items()):
        for i, f in enumerate(rule.vjp):
            if f is not None:
                yield pytest.param(name, i, f, id=f"{name}-{i}")


@pytest.mark.parametrize("name, i, rule", list(_rule_cases()))
def test_same_code_and_no_primitive_left_in_its_globals(name, i, rule):
    fast = array_rules.on_arrays(rule)
    assert fast.__code__ is rule.__code__  # one set of derivatives: the very same code
    for global_name in rule.__code__.co_names:
        assert not isinstance(fast.__globals__.get(global_name), Primitive), global_name


def test_helpers_are_rebound_too():
    ns = array_rules.on_arrays(rules.RULES["add"].vjp[0]).__globals__
    matmul_vjp_a = ns["matmul_vjp_a"]
    assert isinstance(matmul_vjp_a, types.FunctionType) and matmul_vjp_a.__globals__ is ns


def test_rules_from_elsewhere_and_none_pass_through():
    def custom(g, ans, x):
        return 2 * g

    assert array_rules.on_arrays(custom) is custom
    assert array_rules.on_arrays(None) is None


CASES = [pytest.param(name, case, id=f"{name}-{case.id}") for name, cases in SPECS.items() for case in cases]


@pytest.mark.parametrize("name, case", CASES)
def test_same_values_as_the_rule(name, case):
    """On arrays, the re-bound rule returns exactly what the rule returns, for every rule-test case."""
    rng = np.random.default_rng(0)
    args = case.sample(rng)
    ans = PRIMITIVES[name].impl(*args, **case.kwargs)
    g = rng.standard_normal(np.shape(ans)) if np.ndim(ans) else float(rng.standard_normal())
    rule = rules.RULES[name]
    for i in range(len(args)):
        f = rule.vjp[0] if rule.variadic else (rule.vjp[i] if i < len(rule.vjp) else None)
        if f is None or (case.argnums is not None and i not in case.argnums):
            continue
        extra = {"argnum": i} if rule.variadic else {}
        want = f(g, ans, *args, **extra, **case.kwargs)
        got = array_rules.on_arrays(f)(g, ans, *args, **extra, **case.kwargs)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("gshape, xshape", [((3, 2), (3, 2)), ((3, 2), (2,)), ((3, 2), (1, 2)), ((4,), ()),
                                            ((), ())])
def test_unbroadcast_on_arrays_is_unbroadcast(gshape, xshape):
    rng = np.random.default_rng(1)
    g = rng.standard_normal(gshape) if gshape else float(rng.standard_normal())
    x = rng.standard_normal(xshape) if xshape else 0.5
    fast = array_rules.on_arrays(rules.RULES["add"].vjp[0]).__globals__["unbroadcast"]
    np.testing.assert_array_equal(np.asarray(fast(g, x)), np.asarray(rules.unbroadcast(g, x)))
