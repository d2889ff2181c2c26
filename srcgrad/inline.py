"""Partial evaluation of rule helpers (part of the optimize stage).

Rules call shape-generic helpers such as `matmul_vjp_a(g, a, b)`, which branch on `ndim(a)` at run time
and go through several primitive calls to get there. In the NumPy-specialized variant the compiler knows
each array's number of dimensions (the variant is keyed on them), so it can run the helper's branching at
transform time and inline the one `return` expression that applies:

    bW = matmul_vjp_a(b_t5, W, h)      ->      bW = sum_like(np.expand_dims(b_t5, axis=-1) * h, W)

The helper's code is read from runtime/rules.py, never rewritten by hand: the derivative stays in one
place. Anything the evaluator cannot decide statically (a shape, a value) leaves the call as it was.
"""

from __future__ import annotations

import builtins
import copy
import inspect
import math
import textwrap
import types
from typing import Any, Callable

import gast

from srcgrad.parse import signature_of
from srcgrad.runtime import primitives as P
from srcgrad.runtime import rules as R
from srcgrad.runtime.mapping import STATIC_HELPERS

_FAIL = object()
_CACHE: dict[Any, Any] = {}
# pure functions the evaluator may call on constants
_PURE = {
    tuple,
    range,
    len,
    reversed,
    list,
    int,
    float,
    bool,
    abs,
    min,
    max,
    sorted,
    enumerate,
    zip,
    P.normalize_axis,
    math.prod,
    isinstance,
    R.inverse_permutation,
}


def _helper_tree(fn: Any) -> gast.FunctionDef | None:
    if fn in _CACHE:
        return _CACHE[fn]
    tree = None
    if isinstance(fn, types.FunctionType):
        try:
            tree = gast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
        except (OSError, TypeError, SyntaxError):
            tree = None
    _CACHE[fn] = tree
    return tree


class _Abort(Exception):
    pass


class PartialEvaluator:
    def __init__(self, ref: Callable[[Any, str], str], ndim_of: Callable[[gast.expr], int | None]):
        self.ref = ref
        self.ndim_of = ndim_of

    def inline(self, fn: Any, call: gast.Call) -> gast.expr | None:
        tree = _helper_tree(fn)
        if tree is None or call.keywords and any(k.arg is None for k in call.keywords):
            return None
        try:
            sig = signature_of(fn)
            bound = sig.bind(*call.args, **{k.arg: k.value for k in call.keywords})
        except TypeError:
            return None
        bound.apply_defaults()
        static: dict[str, Any] = {}
        sym: dict[str, gast.expr] = {}
        for p, v in bound.arguments.items():
            if isinstance(v, gast.Constant):
                static[p] = v.value
            elif isinstance(v, gast.AST):
                sym[p] = v
            else:
                static[p] = v
        self.ns = fn.__globals__
        try:
            out = self.block(tree.body, static, sym)
        except _Abort:
            return None
        return out

    def resolve_primitive(self, fn: Any, call: gast.Call) -> tuple[Any, list, dict] | None:
        """The one primitive an adapter's branching comes to for these operands' ndims, or None.

        `dot_(W, h)` with ndim(W) == 2 and ndim(h) == 1 runs `return P.matmul(a, b)`: the result is
        (P.matmul, [W, h], {}), the operands being the call's own atoms, keywords static values. Anything
        else (a return that is not one primitive call on the parameters, a branch on a value) is None."""
        self.raw = True
        try:
            out = self.inline(fn, call)
        finally:
            self.raw = False
        return out if isinstance(out, tuple) else None

    def _raw_return(self, e: gast.expr, static: dict, sym: dict) -> tuple:
        if not isinstance(e, gast.Call) or any(k.arg is None for k in e.keywords):
            raise _Abort
        prim = self.callee(e.func, static, sym)
        if not isinstance(prim, P.Primitive):
            raise _Abort
        args: list = []
        for a in e.args:
            if isinstance(a, gast.Name) and a.id in sym:
                node = sym[a.id]
                if not isinstance(node, (gast.Name, gast.Constant)):
                    raise _Abort
                args.append(copy.deepcopy(node))
            else:
                args.append(_to_node(self.eval(a, static, sym)))
        kws = {k.arg: self.eval(k.value, static, sym) for k in e.keywords}
        return prim, args, kws

    # ------------------------------------------------------------------------------ statements
    def block(self, body: list, static: dict, sym: dict) -> gast.expr:
        out = self.run(body, static, sym)
        if out is None:
            raise _Abort
        return out

    def run(self, body: list, static: dict, sym: dict) -> gast.expr | None:
        """Execute statements at transform time; the returned expression, or None on fall-through."""
        for s in body:
            if isinstance(s, gast.Expr) and isinstance(s.value, gast.Constant):
                continue
            if isinstance(s, gast.Return):
                if s.value is None:
                    raise _Abort
                if getattr(self, "raw", False):
                    return self._raw_return(s.value, static, sym)  # type: ignore[return-value]
                return self.subst(s.value, static, sym)
            if isinstance(s, gast.If):
                branch = s.body if self.eval(s.test, static, sym) else s.orelse
                out = self.run(branch, static, sym)
                if out is not None:
                    return out
                continue
            if isinstance(s, gast.Assign) and len(s.targets) == 1:
                t = s.targets[0]
                if isinstance(t, gast.Tuple) and isinstance(s.value, gast.Tuple):
                    pairs = list(zip(t.elts, s.value.elts, strict=False))
                else:
                    pairs = [(t, s.value)]
                for tt, vv in pairs:
                    if not isinstance(tt, gast.Name):
                        raise _Abort
                    try:
                        static[tt.id] = self.eval(vv, static, sym)
                        sym.pop(tt.id, None)
                    except _Abort:
                        sym[tt.id] = self.subst(vv, static, sym)
                        static.pop(tt.id, None)
                continue
            raise _Abort
        return None

    # ----------------------------------------------------------------------------- expressions
    def lookup(self, name: str) -> Any:
        if name in self.ns:
            return self.ns[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise _Abort

    def callee(self, f: gast.expr, static: dict, sym: dict) -> Any:
        """What a call's function names: a global or builtin, or a module's attribute (`P.ndim`)."""
        if isinstance(f, gast.Name):
            if f.id in static or f.id in sym:
                raise _Abort
            return self.lookup(f.id)
        if isinstance(f, gast.Attribute) and isinstance(f.value, gast.Name):
            base = self.callee(f.value, static, sym)
            if isinstance(base, types.ModuleType) and hasattr(base, f.attr):
                return getattr(base, f.attr)
        raise _Abort

    def eval(self, e: gast.expr, static: dict, sym: dict) -> Any:
        if isinstance(e, gast.Constant):
            return e.value
        if isinstance(e, gast.Name):
            if e.id in static:
                return static[e.id]
            if e.id in sym:
                raise _Abort
            obj = self.lookup(e.id)
            if isinstance(obj, (int, float, str, tuple, type)) or obj is None:
                return obj  # (a type: the second argument of isinstance)
            raise _Abort
        if isinstance(e, gast.Call):
            fn = self.callee(e.func, static, sym)
            if fn is P.ndim and len(e.args) == 1 and isinstance(e.args[0], gast.Name) and e.args[0].id in sym:
                n = self.ndim_of(sym[e.args[0].id])
                if n is None:
                    raise _Abort
                return n
            if fn not in _PURE and fn not in STATIC_HELPERS:  # (mapping's helpers on static arguments)
                raise _Abort
            args = [self.eval(a, static, sym) for a in e.args]
            kws = {k.arg: self.eval(k.value, static, sym) for k in e.keywords}
            try:
                return fn(*args, **kws)
            except Exception:
                raise _Abort from None
        if isinstance(e, gast.BinOp):
            a, b = self.eval(e.left, static, sym), self.eval(e.right, static, sym)
            return _binop(e.op, a, b)
        if isinstance(e, gast.UnaryOp):
            v = self.eval(e.operand, static, sym)
            if isinstance(e.op, gast.Not):
                return not v
            if isinstance(e.op, gast.USub):
                return -v
            raise _Abort
        if isinstance(e, gast.BoolOp):  # short-circuits as Python does (`a and len(a) == 2`)
            value = None
            for v in e.values:
                value = self.eval(v, static, sym)
                if bool(value) != isinstance(e.op, gast.And):
                    return value
            return value
        if isinstance(e, gast.Compare):
            left = self.eval(e.left, static, sym)
            for op, c in zip(e.ops, e.comparators, strict=False):
                right = self.eval(c, static, sym)
                if not _compare(op, left, right):
                    return False
                left = right
            return True
        if isinstance(e, gast.Tuple):
            return tuple(self.eval(x, static, sym) for x in e.elts)
        if isinstance(e, gast.IfExp):
            return self.eval(e.body if self.eval(e.test, static, sym) else e.orelse, static, sym)
        raise _Abort

    def subst(self, e: gast.expr, static: dict, sym: dict) -> gast.expr:
        ev = self
        uses: dict[str, int] = {}
        for n in gast.walk(e):
            if isinstance(n, gast.Name) and n.id in sym:
                uses[n.id] = uses.get(n.id, 0) + 1
        for k, n in uses.items():
            if n > 1 and not isinstance(sym[k], (gast.Name, gast.Constant)):
                raise _Abort     # inlining would compute the same expression twice: keep the call

        class Sub(gast.NodeTransformer):
            def visit_Name(self, node: gast.Name) -> gast.expr:
                if node.id in sym:
                    return copy.deepcopy(sym[node.id])
                if node.id in static:
                    return _to_node(static[node.id])
                obj = ev.lookup(node.id)
                return gast.Name(id=ev.ref(obj, node.id), ctx=gast.Load(), annotation=None, type_comment=None)

        # fold what is static inside the returned expression (ndim(a) - 1, tuple(range(0)) + (1, 0))
        class Fold(gast.NodeTransformer):
            def generic_visit(self, node):  # noqa: ANN001
                if isinstance(node, gast.expr) and not isinstance(node, (gast.Name, gast.Constant)):
                    try:
                        value = ev.eval(node, static, sym)
                        return _to_node(value)
                    except _Abort:
                        pass
                return super().generic_visit(node)

        return Sub().visit(Fold().visit(copy.deepcopy(e)))


def _to_node(v: Any) -> gast.expr:
    if isinstance(v, tuple):
        return gast.Tuple(elts=[_to_node(x) for x in v], ctx=gast.Load())
    if v is None or isinstance(v, (bool, int, float, str)):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
            return gast.UnaryOp(op=gast.USub(), operand=gast.Constant(value=-v, kind=None))
        return gast.Constant(value=v, kind=None)
    raise _Abort


def _binop(op: gast.operator, a: Any, b: Any) -> Any:
    import operator as o

    table = {
        gast.Add: o.add,
        gast.Sub: o.sub,
        gast.Mult: o.mul,
        gast.Div: o.truediv,
        gast.FloorDiv: o.floordiv,
        gast.Mod: o.mod,
        gast.Pow: o.pow,
    }
    f = table.get(type(op))
    if f is None:
        raise _Abort
    try:
        return f(a, b)
    except Exception:
        raise _Abort from None


def _compare(op: gast.cmpop, a: Any, b: Any) -> bool:
    import operator as o

    table = {
        gast.Eq: o.eq,
        gast.NotEq: o.ne,
        gast.Lt: o.lt,
        gast.LtE: o.le,
        gast.Gt: o.gt,
        gast.GtE: o.ge,
        gast.Is: o.is_,
        gast.IsNot: o.is_not,
        gast.In: lambda x, y: x in y,
        gast.NotIn: lambda x, y: x not in y,
    }
    f = table.get(type(op))
    if f is None:
        raise _Abort
    return bool(f(a, b))
