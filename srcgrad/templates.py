"""The rule table as templates: runtime/rules.py's lambdas, parsed once, inlined into generated code.

The compiler has no derivative rules of its own. It reads the source of `runtime/rules.py` with gast,
finds each `defrule("name", vjp=[...], jvp=[...])`, and keeps each lambda's tree. `instantiate` substitutes
the lambda's parameters by the actual operands (names or constants at the call site, static keywords
from the call or the lambda's defaults) and returns the body as an expression, so the generated line for
`y = sin(x)` reads `bx = by * cos(x)`. Free names in a rule body (primitives, `unbroadcast`, `math`) are
bound through the Namer to the objects in runtime.rules' namespace.
"""

from __future__ import annotations

import builtins
import copy
import inspect
from dataclasses import dataclass
from typing import Any, Callable

import gast

from srcgrad.runtime import rules as rules_module


@dataclass
class Template:
    """One lambda of the table: its parameters and its body."""

    params: list[str]  # g/t, ans, then positional operands
    vararg: str | None  # variadic rules: the *xs name
    kwonly: list[str]  # variadic rules: argnum
    defaults: dict[str, gast.expr]  # static keyword -> default expression
    static: list[str]  # static keyword names, in order
    body: gast.expr


@dataclass
class RuleTemplates:
    name: str
    vjp: list[Template | None]
    jvp: list[Template | None]
    variadic: bool

    def get(self, mode: str, i: int) -> Template | None:
        table = self.vjp if mode == "vjp" else self.jvp
        if self.variadic:
            return table[0]
        if i >= len(table):
            return None
        return table[i]


_TABLE: dict[str, RuleTemplates] | None = None


def _template(lam: gast.expr) -> Template | None:
    if isinstance(lam, gast.Constant) and lam.value is None:
        return None
    if not isinstance(lam, gast.Lambda):
        raise ValueError("rule entries must be lambdas or None")
    a = lam.args
    pos = [p.id for p in a.args]
    n_defaults = len(a.defaults)
    static = pos[len(pos) - n_defaults :] if n_defaults else []
    positional = pos[: len(pos) - n_defaults] if n_defaults else pos
    defaults = dict(zip(static, a.defaults, strict=False))
    kwonly = []
    for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=False):
        if d is None:
            kwonly.append(p.id)
        else:
            static.append(p.id)
            defaults[p.id] = d
    return Template(
        params=positional,
        vararg=a.vararg.id if a.vararg else None,
        kwonly=kwonly,
        defaults=defaults,
        static=static,
        body=lam.body,
    )


def table() -> dict[str, RuleTemplates]:
    """{primitive name: RuleTemplates}, parsed from runtime/rules.py's source on first use."""
    global _TABLE
    if _TABLE is None:
        tree = gast.parse(inspect.getsource(rules_module))
        out: dict[str, RuleTemplates] = {}
        for stmt in tree.body:
            if not (isinstance(stmt, gast.Expr) and isinstance(stmt.value, gast.Call)):
                continue
            call = stmt.value
            if not (isinstance(call.func, gast.Name) and call.func.id == "defrule"):
                continue
            name = call.args[0].value
            kw = {k.arg: k.value for k in call.keywords}
            vjp = [_template(e) for e in kw["vjp"].elts]
            jvp = [_template(e) for e in kw["jvp"].elts]
            variadic = isinstance(kw.get("variadic"), gast.Constant) and bool(kw["variadic"].value)
            out[name] = RuleTemplates(name, vjp, jvp, variadic)
        _TABLE = out
    return _TABLE


def has_rule(prim: str) -> bool:
    return prim in table()


def rules_namespace() -> dict[str, Any]:
    return vars(rules_module)


class _Substitute(gast.NodeTransformer):
    def __init__(
        self, env: dict[str, gast.expr], ref: Callable[[Any, str], str], ns: dict[str, Any], bound: set[str]
    ):
        self.env, self.ref, self.ns, self.bound = env, ref, ns, bound

    def visit_Name(self, node: gast.Name) -> gast.expr:
        if node.id in self.env:
            return copy.deepcopy(self.env[node.id])
        if node.id in self.bound:
            return node
        if node.id in self.ns:
            obj = self.ns[node.id]
        elif hasattr(builtins, node.id):
            obj = getattr(builtins, node.id)
        else:
            raise NameError(f"rule body uses unknown name {node.id!r}")
        return gast.Name(id=self.ref(obj, node.id), ctx=gast.Load(), annotation=None, type_comment=None)


def instantiate(
    tpl: Template,
    first: gast.expr,
    ans: gast.expr,
    operands: list[gast.expr],
    static: dict[str, gast.expr],
    argnum: int,
    ref: Callable[[Any, str], str],
) -> gast.expr:
    """The rule body with its parameters replaced by the actual operands (copies; safe to edit)."""
    env: dict[str, gast.expr] = {}
    params = tpl.params
    env[params[0]] = first
    env[params[1]] = ans
    rest = params[2:]
    if tpl.vararg is not None:
        env[tpl.vararg] = gast.Tuple(elts=[copy.deepcopy(o) for o in operands], ctx=gast.Load())
        for k in tpl.kwonly:
            env[k] = gast.Constant(value=argnum, kind=None)
    else:
        for p, o in zip(rest, operands, strict=False):
            env[p] = o
    for k in tpl.static:
        env[k] = static[k] if k in static else tpl.defaults[k]
    body = copy.deepcopy(tpl.body)
    return _Substitute(env, ref, rules_namespace(), set()).visit(body)
