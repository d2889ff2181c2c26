"""The stages reverse and forward mode share, between the front end and their own transform.

Both compilers run the same pipeline (docs/compiler.md, "The stages"):

    front end (parse, fence, normalize)         pipeline.Builder.front
    facts of the call's signature               `signature_facts`, then `fact_stage`
    transform                                   reverse.Reverse / forward.Forward
    save/restore planning                       reverse mode only
    assemble, each statement specialized        `FactSets.optimize_block`
    optimize passes (printed by SRCGRAD_DEBUG)  `run_passes`
    codegen                                     codegen.function_source / compile_source

`run_stages` is the driver, on one screen, for a `Build` (reverse_build.ReverseBuild,
forward.ForwardBuild: one function in one mode, a method per stage). This module also holds what both
modes read: what a call's signature says about each parameter, the fact pass with the rewrites its facts
decide, and the facts as the optimizer's `Specialize` reads them, extended from each value to its derived
value (an adjoint in reverse mode, a tangent in forward mode: each has its value's type and shape).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import gast
import numpy as np

from srcgrad import codegen, facts, optimize
from srcgrad.names import Namer
from srcgrad.parse import FunctionInfo


class Build(Protocol):
    """One function in one mode (reverse_build.ReverseBuild, forward.ForwardBuild), a method per stage."""

    verbose: bool

    def facts(self) -> None: ...
    def transform(self) -> None: ...
    def plan_saves(self) -> None: ...
    def assemble(self) -> list[gast.FunctionDef]: ...
    def passes(self, fdef: gast.FunctionDef) -> list: ...
    def codegen(self, fdefs: list[gast.FunctionDef]) -> Any: ...


def run_stages(build: Build) -> Any:
    """The stages after the front end, the same for reverse and forward mode. SRCGRAD_DEBUG prints the
    code after each."""
    build.facts()                       # what each value is (stages.fact_stage), what carries a derivative
    build.transform()                   # the adjoint or tangent of each statement
    build.plan_saves()                  # what the adjoint reads from the forward: pushes and pops
    functions = build.assemble()        # the generated functions, each statement specialized to the facts
    for fdef in functions:
        run_passes(fdef, build.passes(fdef), build.verbose)   # the optimizer, pass by pass
    return build.codegen(functions)     # source with `# line N:` comments, compiled


def debug_enabled(verbose: bool | int) -> bool:
    return bool(verbose) or os.environ.get("SRCGRAD_DEBUG", "") not in ("", "0")


def _dump(stage: str, text: str) -> None:
    print(f"---- srcgrad: {stage} " + "-" * max(0, 70 - len(stage)), file=sys.stderr)
    print(text.rstrip(), file=sys.stderr)


def body_source(body: list) -> str:
    lines: list[str] = []
    codegen.emit_block(body, 0, lines)
    return "\n".join(lines)


Pass = tuple[str, Callable[[gast.FunctionDef], Any]]


def run_passes(fdef: gast.FunctionDef, passes: list[Pass | None], verbose: bool | int) -> None:
    """The optimize stage: each named pass rewrites `fdef` in place, in order (None: a pass this variant
    skips). With SRCGRAD_DEBUG each pass prints the code it left, under its name ("no change" where it
    changed nothing)."""
    before = body_source(fdef.body) if verbose else ""
    for step in passes:
        if step is None:
            continue
        label, rewrite = step
        rewrite(fdef)
        if verbose:
            after = body_source(fdef.body)
            _dump(f"optimize: {label} ({fdef.name})", after if after != before else "(no change)")
            before = after


@dataclass
class Generated:
    """A compiled generated function and what the caller of it must do per call."""

    fn: Callable
    source: str
    refresh: list = field(default_factory=list)  # (namespace, name, getter)
    info: FunctionInfo | None = None
    return_line: int | None = None
    scalar_out: bool = False
    deps: Any = None  # parse.Dependencies: valid while what the build read is unchanged





def call_signature(args: tuple, wrt_idx: tuple = (), tangents: tuple | None = None) -> tuple | None:
    """What a build may be specialized to from a call's positional arguments: per argument, its number
    type (`facts.NUMBER_KEYS`), an array's `("n", ndim, shape, dtype)`, or None (anything else). None
    when it says nothing, or where `tangents` (of the arguments at `wrt_idx`) do not each have their
    argument's type (a float for a float, an array of its shape and floating dtype): the facts of a
    value are then not those of its tangent."""
    signature = tuple(facts.NUMBER_KEYS[type(a)] if type(a) in facts.NUMBER_KEYS
                      else ("n", a.ndim, a.shape, a.dtype.str) if type(a) is np.ndarray else None
                      for a in args)
    if not any(signature):
        return None
    for i, t in zip(wrt_idx, tangents or (), strict=False):
        if not (isinstance(i, int) and -len(args) <= i < len(args)):
            return None
        a = args[i]
        if type(t) is not type(a) or type(a) is not float and not (
                type(a) is np.ndarray and a.dtype.kind == "f" and t.shape == a.shape and t.dtype == a.dtype):
            return None
    return signature


def signature_facts(positional: list[str], signature: tuple | None) -> dict[str, facts.Fact]:
    """The facts a call's signature gives its positional parameters: a number type per `NUMBER_KEYS`
    key, or an array's `("n", ndim, shape, dtype)`; None (or no signature) says nothing."""
    known: dict[str, facts.Fact] = {}
    for p, m in zip(positional, signature or (), strict=False):
        if m in facts.NUMBER_TYPES:
            known[p] = facts.Num(facts.NUMBER_TYPES[m])
        elif isinstance(m, tuple):
            known[p] = facts.Arr(np.dtype(m[3]) if len(m) > 3 else None, m[2], m[1])
    return known


def decided_facts(body: list, namer: Namer, params: list, known: dict,
                  callee: Callable | None) -> tuple[list, Any]:
    """The facts of `body`, and `body` without the branches they decide (`b is None` where b is known
    to be a number or an array), the facts found again without them."""
    numpy_variant = any(isinstance(f, facts.Arr) for f in known.values())
    fx = facts.infer(body, namer, params, known, numpy_variant=numpy_variant, callee=callee)
    body, decided = optimize.fold_known_tests(body, lambda v: facts.never_none(fx.get(v)), fx.known_ints())
    if decided:
        fx = facts.infer(body, namer, params, known, numpy_variant=numpy_variant, callee=callee)
    return body, fx


def fact_stage(body: list, namer: Namer, params: list, known: dict, outputs: set[str],
               callee: Callable | None) -> tuple[list, Any]:
    """The normalized body (its final return left out) rewritten by what the facts decide, and the
    facts: rank-dispatching adapters resolved to their primitive, loop invariants hoisted, decided
    tests folded, `float(x)` of a Python float dropped, equal number expressions computed once, and the
    run-time alias checks of values that cannot alias (numbers, fresh arrays) dropped."""
    body = optimize.resolve_adapters(body, namer, known, set(params), callee)
    body = optimize.hoist_loop_invariants(body, set(params))
    body, fx = decided_facts(body, namer, params, known, callee)
    body = optimize.drop_float_of_floats(body, fx.python_floats())
    body = optimize.common_numbers(body, fx.immutable(), namer, kept=outputs)
    body = optimize.drop_number_alias_checks(body, fx.immutable(), namer)
    body = optimize.drop_fresh_alias_checks(body, namer)
    return body, fx


@dataclass
class FactSets:
    """The facts as `optimize.Specialize` reads them, by name, for the values and their derived names."""

    scalars: set[str] = field(default_factory=set)         # Python numbers (shape ())
    numpy: set[str] = field(default_factory=set)           # NumPy arrays and scalars
    ndims: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, tuple] = field(default_factory=dict)
    floats: set[str] = field(default_factory=set)          # floating-point values
    float64: set[str] = field(default_factory=set)         # float64 arrays and scalars
    python_floats: set[str] = field(default_factory=set)   # always a Python float
    constants: dict[str, int] = field(default_factory=dict)  # int parameters the build is keyed on

    @classmethod
    def of(cls, fx: Any, derived: dict[str, str], constants: dict[str, int] | None = None) -> "FactSets":
        """`fx`'s sets, each value's derived name (`derived[v]`: its adjoint or tangent) with its facts."""

        def both(names: set[str]) -> set[str]:
            return set(names) | {derived[v] for v in names if v in derived}

        def both_map(values: dict) -> dict:
            out = dict(values)
            out.update({derived[v]: x for v, x in values.items() if v in derived})
            return out

        return cls(scalars=both(fx.scalars()), numpy=both(fx.numpy_names()), ndims=both_map(fx.ndims()),
                   shapes=both_map(fx.shapes()), floats=both(fx.floats()), float64=both(fx.float64()),
                   python_floats=both(fx.python_floats()), constants=dict(constants or {}))

    def specializer(self, namer: Namer) -> optimize.Specialize:
        return optimize.Specialize(namer, self.scalars, self.numpy, self.ndims, self.shapes, self.floats,
                                   self.float64, self.python_floats, self.constants)

    def specialize(self, e: Any, namer: Namer, keep_numpy_types: bool = False) -> Any:
        """`e` specialized to the facts, then folded."""
        return optimize.fold(self.specialize_only(e, namer, keep_numpy_types))

    def specialize_only(self, e: Any, namer: Namer, keep_numpy_types: bool = False) -> Any:
        return optimize.specialize(e, namer, self.scalars, self.numpy, self.ndims, self.shapes, self.floats,
                                   self.float64, self.python_floats, self.constants,
                                   keep_numpy_types=keep_numpy_types)

    def optimize_block(self, block: list, namer: Namer, test_scalars: set[str],
                       user_values: Callable[[Any], bool] = lambda s: True) -> list:
        """Each statement of `block` (nested blocks too) specialized to the facts and folded, in place.
        A statement computing a value of the user's function (`user_values(s)`) keeps NumPy's types (a
        NumPy scalar stays one) and may fold a copy of a fresh value; a loop or branch test is
        specialized by the numbers it reads (`test_scalars`)."""
        for s in block:
            if isinstance(s, (gast.If, gast.For, gast.While)):
                s.test = optimize.specialize(s.test, namer, test_scalars) if hasattr(s, "test") else None
                self.optimize_block(s.body, namer, test_scalars, user_values)
                self.optimize_block(s.orelse, namer, test_scalars, user_values)
                continue
            if isinstance(s, (gast.Assign, gast.Expr)):
                value = user_values(s)
                s.value = optimize.fold(self.specialize_only(s.value, namer, value), fresh=value)
        return block
