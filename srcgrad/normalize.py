"""Stage 2: user code -> normal form: one operation per statement, explicit temporaries, one exit.

Two passes:

1. `restructure` rewrites control flow so the reverse transform only ever sees structured code: several
   `return`s become assignments to one result variable; `break`/`continue`/`return` always end their
   block (the statements after an `if` that may exit move into the branches that fall through); a
   `continue` that ends a loop body is dropped; a `return` inside a loop sets a flag and breaks.
2. `Normalizer` flattens every expression into statements `name = <one operation on names/constants>`
   and resolves what each call *is*: a primitive, a mapping adapter (inlined when it is one expression),
   a user function, or an opaque call. Each assignment carries an `Op` (in `stmt.op`) telling later
   stages which primitive it applies to which operands, and `stmt.line`, the user line it comes from.

Subscript writes become `a = index_update(a, v, index=...)` (a new array: user arrays are never
written), augmented assignments become plain ones, `for x in array` becomes a loop over an index,
conditional expressions become `if` statements, and `x.T`, `x.sum(axis=0)`, `np.sin(x)`, `math.sin(x)`
go through runtime/mapping.py, the one table of user spellings.
"""

from __future__ import annotations

import builtins
import copy
import inspect
import os
import sys
import textwrap
import types
from dataclasses import dataclass, field
from typing import Any

import gast
import numpy as np

from srcgrad.analysis import targets_of
from srcgrad.errors import TransformError, located
from srcgrad.facts import hashable as _hashable
from srcgrad.mutation import (
    alias_guards,
    argument_writes,
    definitely_bound,
    passed_arrays,
    refuse_array_argument,
    refuse_shared,
    written_in_place,
)
from srcgrad.names import Namer
from srcgrad.parse import LOCAL, UNBOUND, FunctionInfo, parse_function, record, signature_of
from srcgrad.runtime import mapping
from srcgrad.runtime import primitives as P
from srcgrad.runtime.primitives import Primitive

RET = "_return"  # the single result variable when a function has several returns


# ============================================================================================== helpers
def name(id_: str, store: bool = False) -> gast.Name:
    return gast.Name(id=id_, ctx=gast.Store() if store else gast.Load(), annotation=None, type_comment=None)


def const(value: Any) -> gast.Constant:
    return gast.Constant(value=value, kind=None)


def assign(target: str | gast.expr, value: gast.expr) -> gast.Assign:
    t = name(target, store=True) if isinstance(target, str) else target
    return gast.Assign(targets=[t], value=value, type_comment=None)


def call(func: gast.expr, args: list, keywords: dict | None = None) -> gast.Call:
    kws = [gast.keyword(arg=k, value=v) for k, v in (keywords or {}).items()]
    return gast.Call(func=func, args=list(args), keywords=kws)


def is_atom(e: gast.expr) -> bool:
    return isinstance(e, (gast.Name, gast.Constant))


def names_in(e: Any) -> set[str]:
    if e is None:
        return set()
    return {n.id for n in gast.walk(e) if isinstance(n, gast.Name)}


def _takes_floats(fn: Any, adapter: Any) -> bool:
    """Whether `fn` is a function of Python's `math` module that converts its arguments to float
    (all but the integer-valued ones, whose adapters carry no derivative: floor, ceil)."""
    return isinstance(fn, types.BuiltinFunctionType) and getattr(fn, "__module__", None) == "math" \
        and getattr(adapter, "differentiable", True)


@dataclass
class Op:
    """What a normalized assignment computes, for analysis and the transforms.

    kind: 'prim' (a primitive on positional operands `args` with static keywords `kwargs`), 'copy'
    (`v = a`), 'const' (no operands), 'nondiff' (a value that carries no derivative: comparisons,
    shapes, ranges, detach), 'call' (a user function `fn`, transformed recursively when active),
    'opaque' (a callable without rule or source: fine while inactive), 'list' (`xs = []`),
    'append' (`xs.append(v)`), 'stack' (`np.stack(xs)` of a list variable), 'pack' / 'unpack' (tuples).
    """

    kind: str
    prim: str | None = None
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    fn: Any = None
    style: str = "call"  # how the forward line is written: 'call', 'binop', 'unary', 'subscript'


BINOPS = {getattr(gast, op): prim for op, prim in P.BINARY_OPERATORS.items()}  # from the records
_OPERATORS = {prim: getattr(gast, op) for op, prim in P.BINARY_OPERATORS.items()}
NONDIFF_BINOPS = (gast.FloorDiv, gast.BitAnd, gast.BitOr, gast.BitXor, gast.LShift, gast.RShift)

# builtins and attributes whose result carries no derivative: spelling facts, kept with the others in
# runtime/mapping.py (the attributes' derived from their primitives' records)
NONDIFF_BUILTINS = mapping.NO_DERIVATIVE_BUILTINS
DETACH_METHODS = {"detach", "numpy"}  # no derivative flows through these (explicit stops)
# methods that turn a value into Python numbers: .item() passes the derivative on (see mapping's item);
# .tolist() of a value that carries one is refused (a list of numbers cannot carry it)
IDENTITY_METHODS = {"cpu", "contiguous"}  # the value itself (no copy, as in PyTorch), derivative included
NONDIFF_ATTRS = mapping.NO_DERIVATIVE_ATTRIBUTES


def is_static_value(v: Any) -> bool:
    return (
        v is None
        or isinstance(v, (bool, int, float, complex, str, slice, type(Ellipsis)))
        or (isinstance(v, tuple) and all(is_static_value(x) for x in v))
    )


def to_node(v: Any) -> gast.expr | None:
    """A constant node for a static Python value, or None."""
    if isinstance(v, tuple):
        elts = [to_node(x) for x in v]
        if any(e is None for e in elts):
            return None
        return gast.Tuple(elts=elts, ctx=gast.Load())
    if v is None or isinstance(v, (bool, int, float, str)) or v is Ellipsis:
        return const(v)
    return None


# ======================================================================================== restructure
class _Flags:
    def __init__(self) -> None:
        self.returns = 0
        self.loop_flags = 0


def _exits(stmt: gast.stmt) -> bool:
    return isinstance(stmt, (gast.Return, gast.Break, gast.Continue))


def _may_exit(block: list, in_loop: bool) -> bool:
    """Does `block` contain a return, or a break/continue of the enclosing loop?"""
    for s in block:
        if isinstance(s, gast.Return):
            return True
        if in_loop and isinstance(s, (gast.Break, gast.Continue)):
            return True
        if isinstance(s, gast.If) and (_may_exit(s.body, in_loop) or _may_exit(s.orelse, in_loop)):
            return True
        if isinstance(s, (gast.For, gast.While)) and any(isinstance(n, gast.Return) for n in gast.walk(s)):
            return True
    return False


def _append_rest(block: list, rest: list) -> list:
    """Append `rest` to every path through `block` that falls through (does not exit)."""
    if not rest:
        return block
    if block and _exits(block[-1]):
        return block
    if block and isinstance(block[-1], gast.If) and getattr(block[-1], "_may_exit", False):
        last = block[-1]
        last.body = _append_rest(last.body, copy.deepcopy(rest))
        last.orelse = _append_rest(last.orelse, copy.deepcopy(rest))
        return block
    if block and isinstance(block[-1], gast.If) and getattr(block[-1], "_loop_return", False):
        last = block[-1]
        last.orelse = _append_rest(last.orelse, copy.deepcopy(rest))
        return block
    return block + rest


def restructure(block: list, in_loop: bool, flags: _Flags, loop_flag: str | None) -> list:
    out: list = []
    for i, s in enumerate(block):
        rest = block[i + 1 :]
        if isinstance(s, gast.Return):
            flags.returns += 1
            if loop_flag is not None:
                # return inside a loop: keep the value, raise the flag, leave the loop
                s.value = s.value if s.value is not None else const(None)
                out.append(s)
                s._in_loop = True
                set_flag = assign(loop_flag, const(True))
                gast.copy_location(set_flag, s)
                brk = gast.Break()
                gast.copy_location(brk, s)
                out.extend([set_flag, brk])
            else:
                out.append(s)
            return out
        if isinstance(s, (gast.Break, gast.Continue)):
            out.append(s)
            return out
        if isinstance(s, gast.If):
            s.body = restructure(s.body, in_loop, flags, loop_flag)
            s.orelse = restructure(s.orelse, in_loop, flags, loop_flag)
            if _may_exit(s.body, in_loop) or _may_exit(s.orelse, in_loop):
                s._may_exit = True
                out.append(s)
                rest_r = restructure(rest, in_loop, flags, loop_flag)
                _append_rest(out, rest_r)
                return out
            out.append(s)
            continue
        if isinstance(s, (gast.For, gast.While)):
            has_return = any(isinstance(n, gast.Return) for n in gast.walk(s))
            if has_return:
                flag = f"_returned{flags.loop_flags + 1}"
                flags.loop_flags += 1
                init = assign(flag, const(False))
                gast.copy_location(init, s)
                out.append(init)
                s.body = restructure(s.body, True, flags, flag)
                s.body = _drop_trailing_continue(s.body)
                out.append(s)
                # after the loop: a raised flag means the function has returned
                done = gast.Return(value=None)
                done._done = True
                gast.copy_location(done, s)
                guard = gast.If(test=name(flag), body=[done], orelse=[])
                gast.copy_location(guard, s)
                guard._loop_return = True
                if loop_flag is not None:
                    # nested: leave the enclosing loop too
                    set_outer = assign(loop_flag, const(True))
                    brk = gast.Break()
                    gast.copy_location(set_outer, s)
                    gast.copy_location(brk, s)
                    guard.body = [set_outer, brk]
                    guard._loop_return = False
                    guard._may_exit = True
                rest_r = restructure(rest, in_loop, flags, loop_flag)
                guard.orelse = rest_r
                out.append(guard)
                return out
            s.body = restructure(s.body, True, flags, None)
            s.body = _drop_trailing_continue(s.body)
            out.append(s)
            continue
        out.append(s)
    return out


def _drop_trailing_continue(block: list) -> list:
    """After restructuring, a `continue` always ends a path to the end of the body: a no-op."""
    if not block:
        return block
    last = block[-1]
    if isinstance(last, gast.Continue):
        return block[:-1]
    if isinstance(last, gast.If):
        last.body = _drop_trailing_continue(last.body)
        last.orelse = _drop_trailing_continue(last.orelse)
    return block


def _strip_continues(block: list) -> None:
    for s in block:
        if isinstance(s, gast.If):
            _strip_continues(s.body)
            _strip_continues(s.orelse)


# ========================================================================================== normalizer
class Normalizer:
    """ANF with resolved calls. `run()` returns the normalized body (a list of gast statements)."""

    def __init__(self, info: FunctionInfo, namer: Namer, wrt: set[str] | None = None):
        self.info = info
        self.namer = namer
        self.wrt = set(wrt or ())
        self.varied: set[str] = set()
        self.lists: set[str] = set()  # local names bound to Python lists
        self.list_names: dict[str, set[str]] = {}  # a list's name -> every name bound to the same list
        self.appended: set[str] = set()  # names the function appends to (`xs.append(v)`)
        self.list_items: dict[str, set[int]] = {}  # a tuple's name -> the positions holding lists
        self.named_results: dict[str, tuple] = {}  # `r = svd(A)` -> (fields, the parts' names)
        self.stacks: set[str] = set()  # lists that are generated code's Stack (pop gives values back)
        # reverse mode over generated code cannot yet follow a stack handed to generated callees
        self.refuse_generated_callees = False
        self.line = info.node.lineno
        self.data_refs: list[tuple[str, Any]] = []  # (ref name, getter) refreshed on every call
        self.multi_return = False
        self.assigning: tuple | None = None  # (name, value) of the assignment being normalized
        # writes kept in place are checked against the caller's arrays (a callee's parameters may be
        # written when its caller assigns the result back: `u = apply_bc(u)`)
        self.guard_inputs = True

    # -------------------------------------------------------------------------------- entry point
    def run(self) -> list:
        fn = self.info.node
        flags = _Flags()
        body = [s for s in fn.body]
        if (
            body
            and isinstance(body[0], gast.Expr)
            and isinstance(body[0].value, gast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]  # docstring
        body = restructure(body, False, flags, None)
        for n in gast.walk(gast.Module(body=body, type_ignores=[])):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store):
                self.info.locals.add(n.id)
                self.namer.taken.add(n.id)
        self.varied = self.varied_names(body)
        params = _param_names(fn)
        self.guards: dict[int, list] = {}
        self.copies_before: dict[int, list] = {}
        for g in alias_guards(body, params, self.call_write_targets, lambda st: not self.inactive_stmt(st)):
            self.guards.setdefault(id(g.before), []).append(g)
            if g.read_before and g.changed not in self.varied:
                self.copies_before.setdefault(id(g.write), []).append(g)
        self.bound_at = definitely_bound(body, params)
        self.params = params
        self.inputs_name: str | None = None
        self.none_init: set[str] = set()
        if (
            not body
            or not isinstance(body[-1], gast.Return)
            or getattr(body[-1], "_done", False)
            or _contains_nonfinal_return(body)
        ):
            self.multi_return = True
        if self.multi_return:
            self.namer.taken.add(RET)
            self.info.locals.add(RET)
        for n in gast.walk(fn):
            f = n.func if isinstance(n, gast.Call) else None
            if isinstance(f, gast.Attribute) and f.attr == "append" and isinstance(f.value, gast.Name):
                self.appended.add(f.value.id)
            if isinstance(n, gast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], gast.Name):
                if isinstance(n.value, (gast.List, gast.Tuple)):  # tuples read by index like lists
                    self.lists.add(n.targets[0].id)
                elif isinstance(n.value, gast.Call) and self.resolve_func(n.value.func) is _runtime_stack():
                    # generated code being differentiated again: its stack is a list of saved values
                    self.lists.add(n.targets[0].id)
                    self.stacks.add(n.targets[0].id)
        out: list = []
        self.block(body, out, top=True)
        head: list = []
        if self.inputs_name is not None:
            ins = sorted(self.params)
            ref = name(self.namer.ref(passed_arrays, "passed_arrays"))
            self.emit(head, assign(self.inputs_name, call(ref, [name(p) for p in ins])),
                      Op("nondiff", args=[]))
        for v in sorted(self.none_init):
            self.emit(head, assign(v, const(None)), Op("const"))
        for st in head:
            st.line = None  # set-up, from no line of the user's
        if self.multi_return and not (fn.body and isinstance(fn.body[-1], gast.Return)):
            # the end may be reached without a return: the function returns None there, as in Python
            self.emit(head, assign(RET, const(None)), Op("const"))
        out = head + out
        if self.multi_return:
            r = gast.Return(value=name(RET))
            r.line = self.info.user_lineno(fn.lineno)
            out.append(r)
        return out

    def error(self, node: Any, msg: str, hint: str | None = None) -> Exception:
        return located(self.info, node, msg, hint)

    # ------------------------------------------------------------------------------- statements
    def emit(self, out: list, stmt: gast.stmt, op: Op | None = None) -> gast.stmt:
        stmt.line = self.line
        if op is not None:
            stmt.op = op
            if op.kind == "nondiff" and isinstance(stmt, gast.Assign) and isinstance(stmt.value, gast.Call):
                known = self.constant_array(stmt.value)
                if known is not None:
                    stmt.const_array = known
            if op.kind not in ("nondiff", "const", "list") and isinstance(stmt, gast.Assign):
                # whatever a derivative may flow into is varied (temporaries included), so later code
                # that reads it, an inlined adapter say, is differentiated and never kept as static code
                for n in gast.walk(stmt.targets[0]):
                    if isinstance(n, gast.Name):
                        self.varied.add(n.id)
        out.append(stmt)
        return stmt

    def block(self, stmts: list, out: list, top: bool = False) -> None:
        for s in stmts:
            self.line = getattr(s, "lineno", self.line)
            self.stmt(s, out, top and s is stmts[-1])

    def stmt(self, s: gast.stmt, out: list, last_top: bool) -> None:
        self.check_unshared(s, out)
        if self.inactive_stmt(s):
            self.insert_nested_guards(s)
            self.verbatim(s, out)
            return
        self.reject_exprs(s)
        if isinstance(s, (gast.Assign, gast.AugAssign, gast.Expr)):
            # the arrays NumPy changes in place here: the normalized statements that rebind them to the
            # new array (`a = index_update(a, v, index=i)`) are marked, for passes that reason about
            # which names share memory (in NumPy the array stays the one other names may see)
            changed = set(written_in_place(s, self.call_write_targets))
            start = len(out)
            self.simple_stmt(s, out, last_top)
            for t in out[start:]:
                if changed & set(targets_of(t)):
                    t.in_place = True
            return
        self.simple_stmt(s, out, last_top)

    def simple_stmt(self, s: gast.stmt, out: list, last_top: bool) -> None:
        if isinstance(s, gast.Assign):
            self.assign_stmt(s.targets[0], s.value, out)
        elif isinstance(s, gast.AnnAssign):
            if s.value is not None:
                self.assign_stmt(s.target, s.value, out)
        elif isinstance(s, gast.AugAssign):
            self.augassign(s, out)
        elif isinstance(s, gast.Return):
            if getattr(s, "_done", False):
                return
            value = s.value if s.value is not None else const(None)
            if not self.multi_return and last_top:
                r = gast.Return(value=self.return_value(value, out))
                self.emit(out, r)
            else:
                self.assign_to(RET, value, out)
        elif isinstance(s, gast.If):
            test = self.atom(s.test, out, prefix="_c")
            if isinstance(test, gast.Name) and test.id in {
                    n.id for b in s.body + s.orelse for n in gast.walk(b)
                    if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}:
                # `if flag: ... else: flag = ...`: the adjoint decides the branch after the branch ran,
                # so it reads the test from a copy the branch cannot change
                held = self.namer.fresh("_c")
                self.emit(out, assign(held, name(test.id)), Op("nondiff", args=[name(test.id)]))
                test = name(held)
            body: list = []
            orelse: list = []
            self.block(s.body, body)
            self.block(s.orelse, orelse)
            self.line = getattr(s, "lineno", self.line)
            self.emit(out, gast.If(test=test, body=body, orelse=orelse))
        elif isinstance(s, gast.For):
            self.for_stmt(s, out)
        elif isinstance(s, gast.While):
            self.while_stmt(s, out)
        elif isinstance(s, (gast.Break, gast.Continue, gast.Pass)):
            self.emit(out, type(s)())
        elif isinstance(s, gast.Expr):
            self.expr_stmt(s, out)
        elif isinstance(s, (gast.Assert, gast.Raise)):
            s2 = self.rewrite_static(s)
            self.emit(out, s2)
        else:
            raise self.error(s, f"srcgrad cannot differentiate a {type(s).__name__} statement")

    # ------------------------------------------------------------------- inactive code, verbatim
    def varied_names(self, body: list) -> set[str]:
        """Names that may carry a derivative of the differentiated parameters (conservative)."""
        varied = set(self.wrt)
        module = gast.Module(body=body, type_ignores=[])
        changed = True
        while changed:
            changed = False
            for n in gast.walk(module):
                targets: list = []
                hot = False
                if isinstance(n, gast.Assign):
                    targets, hot = n.targets, self.expr_varied(n.value, varied)
                elif isinstance(n, (gast.AugAssign, gast.AnnAssign)) and n.value is not None:
                    targets, hot = [n.target], self.expr_varied(n.value, varied)
                elif isinstance(n, gast.For):
                    targets, hot = [n.target], self.expr_varied(n.iter, varied)
                elif (
                    isinstance(n, gast.Expr)
                    and isinstance(n.value, gast.Call)
                    and isinstance(n.value.func, gast.Attribute)
                    and isinstance(n.value.func.value, gast.Name)
                ):
                    targets = [n.value.func.value]
                    hot = any(self.expr_varied(a, varied) for a in n.value.args)
                elif isinstance(n, gast.Return) and n.value is not None:
                    targets, hot = [name(RET, store=True)], self.expr_varied(n.value, varied)
                if isinstance(n, (gast.Assign, gast.Expr)) and isinstance(n.value, gast.Call):
                    # np.add.at(a, i, v), np.exp(y, out=z): the array written into takes the derivative
                    written = self.call_write_targets(n.value)
                    if written:
                        c = n.value
                        hot = hot or any(self.expr_varied(a, varied) for a in c.args) or any(
                            self.expr_varied(k.value, varied) for k in c.keywords)
                        targets = list(targets) + [name(w, store=True) for w in written]
                if not hot:
                    continue
                for t in targets:
                    for sub in gast.walk(t):
                        if isinstance(sub, gast.Name) and sub.id not in varied:
                            varied.add(sub.id)
                            changed = True
        return varied

    def expr_varied(self, e: Any, varied: set[str] | None = None) -> bool:
        varied = self.varied if varied is None else varied
        if e is None or isinstance(e, gast.Constant):
            return False
        if isinstance(e, gast.Name):
            return e.id in varied
        if isinstance(e, gast.Attribute):
            if e.attr in NONDIFF_ATTRS or e.attr == "data":
                return False
            return self.expr_varied(e.value, varied)
        if isinstance(e, (gast.Compare,)):
            return False
        if isinstance(e, gast.UnaryOp) and isinstance(e.op, gast.Not):
            return False
        if isinstance(e, gast.Call):
            f = e.func
            if isinstance(f, gast.Attribute) and self.resolve_chain(f.value) is LOCAL:
                if f.attr in DETACH_METHODS:
                    return False
                return (
                    self.expr_varied(f.value, varied)
                    or any(self.expr_varied(a, varied) for a in e.args)
                    or any(self.expr_varied(k.value, varied) for k in e.keywords)
                )
            obj = self.resolve_func(f)
            if obj is not None and _is_nondiff_callable(obj):
                return False
            return any(self.expr_varied(a, varied) for a in e.args) or any(
                self.expr_varied(k.value, varied) for k in e.keywords
            )
        if isinstance(e, (gast.Tuple, gast.List)):
            return any(self.expr_varied(x, varied) for x in e.elts)
        if isinstance(e, gast.BinOp):
            return self.expr_varied(e.left, varied) or self.expr_varied(e.right, varied)
        if isinstance(e, gast.UnaryOp):
            return self.expr_varied(e.operand, varied)
        if isinstance(e, gast.IfExp):
            return self.expr_varied(e.body, varied) or self.expr_varied(e.orelse, varied)
        if isinstance(e, gast.Subscript):
            return self.expr_varied(e.value, varied)
        if isinstance(e, gast.BoolOp):
            return any(self.expr_varied(x, varied) for x in e.values)
        return any(isinstance(n, gast.Name) and n.id in varied for n in gast.walk(e))

    def inactive_stmt(self, s: gast.stmt) -> bool:
        """A statement no derivative flows through: emitted as written (names bound to references)."""
        if isinstance(s, gast.Assign):
            t = s.targets[0]
            if isinstance(t, gast.Name) and isinstance(s.value, gast.List) and not s.value.elts:
                return False
            return not self.expr_varied(s.value) and not any(
                isinstance(n, gast.Name) and n.id in self.varied for n in gast.walk(t)
            )
        if isinstance(s, gast.AugAssign):
            return not self.expr_varied(s.value) and not any(
                isinstance(n, gast.Name) and n.id in self.varied for n in gast.walk(s.target)
            )
        if isinstance(s, gast.Expr):
            return not self.expr_varied(s.value) and not (
                isinstance(s.value, gast.Call)
                and isinstance(s.value.func, gast.Attribute)
                and isinstance(s.value.func.value, gast.Name)
                and s.value.func.value.id in self.lists
            )
        if isinstance(s, (gast.For, gast.While)):
            for n in self.walk_carrying(s):
                if isinstance(n, (gast.Return,)):
                    return False
                if isinstance(n, gast.Name) and n.id in self.varied:
                    return False
            return not _escapes(s)
        return False

    def walk_carrying(self, node: Any) -> Any:
        """gast.walk, without the statements that call a function whose result carries no derivative and
        whose value is dropped (the run-time checks in front of in-place writes): what they read does
        not make a loop around them differentiated."""
        todo = [node]
        while todo:
            n = todo.pop()
            if isinstance(n, gast.Expr) and isinstance(n.value, gast.Call) and n is not node:
                try:
                    obj = self.resolve_func(n.value.func)
                except Exception:  # noqa: BLE001 -- unresolvable: walked as usual
                    obj = None
                if obj is not None and _is_nondiff_callable(obj):
                    continue
            yield n
            todo.extend(gast.iter_child_nodes(n))

    def verbatim(self, s: gast.stmt, out: list) -> None:
        # arrays this statement changes in place (kept as written): a value of them the adjoint needs
        # must be saved as a copy, not a reference to memory about to change
        mutates = {m for inner in gast.walk(s) if isinstance(inner, gast.stmt)
                   and not isinstance(inner, (gast.If, gast.For, gast.While))
                   for m in written_in_place(inner, self.call_write_targets)}
        s2 = self.rewrite_static(s)
        if isinstance(s2, gast.Assign) and all(
            isinstance(n, gast.Name)
            for n in (s2.targets[0].elts if isinstance(s2.targets[0], gast.Tuple) else [s2.targets[0]])
        ):
            self.emit(out, s2, Op("nondiff", args=[])).mutates = mutates
            return
        v = Verbatim(body=[s2])
        v.mutates = mutates
        v.targets = sorted(_assigned_in([s2]) | _mutated_in([s2]) | mutates)
        v.simple = not isinstance(s2, (gast.For, gast.While))
        self.emit(out, v, Op("nondiff", args=[]))

    def constant_array(self, e: Any) -> tuple | None:
        """(shape, dtype) of `np.zeros(64)`, `np.ones((3, 4))`, `np.eye(5)`, ...: a NumPy constructor
        (mapping.SHAPE_FROM_CONSTANTS) called with constants only, evaluated once here on small sizes, so
        the variants for NumPy arrays know the state a loop starts from (`h = np.zeros(64)`)."""
        if not isinstance(e, gast.Call):
            return None
        fn = self.resolve_func(e.func)
        if not (_hashable(fn) and fn in mapping.SHAPE_FROM_CONSTANTS):
            return None
        try:
            args = [gast.literal_eval(a) for a in e.args]
            kws = {k.arg: gast.literal_eval(k.value) for k in e.keywords if k.arg is not None}
        except ValueError:
            return None
        if any(isinstance(a, int) and a > 10 ** 7 for a in args):
            return None
        try:
            value = fn(*args, **kws)
        except Exception:  # noqa: BLE001 -- the call fails at run time too, and says so there
            return None
        if not isinstance(value, np.ndarray) or value.size > 10 ** 7:
            return None
        return value.shape, value.dtype

    def reject_exprs(self, s: gast.stmt) -> None:
        from srcgrad.parse import EXPR_REJECT

        if isinstance(s, (gast.If, gast.For, gast.While)):
            parts = [s.test] if not isinstance(s, gast.For) else [s.target, s.iter]
        else:
            parts = [s]
        for p in parts:
            for n in gast.walk(p):
                kind = EXPR_REJECT.get(type(n))
                if kind is not None:
                    raise self.error(s, f"srcgrad cannot differentiate through {kind[0]}", kind[1])

    def return_value(self, value: gast.expr, out: list) -> gast.expr:
        if isinstance(value, gast.Tuple):
            atoms = [self.atom(e, out) for e in value.elts]
            held = [a.id for a in atoms if isinstance(a, gast.Name) and a.id in self.lists]
            if held:
                raise self.error(
                    value,
                    f"srcgrad does not differentiate a tuple holding the list {held[0]} yet",
                    "nest this helper inside the function that unpacks its result (srcgrad inlines it "
                    "there), or return np.stack of each list.",
                )
            return gast.Tuple(elts=atoms, ctx=gast.Load())
        return self.atom(value, out)

    def assign_stmt(self, target: gast.expr, value: gast.expr, out: list) -> None:
        if isinstance(target, gast.Name):
            self.assign_to(target.id, value, out)
        elif isinstance(target, (gast.Tuple, gast.List)):
            self.unpack(target, value, out)
        elif isinstance(target, gast.Subscript):
            self.setitem(target, self.atom(value, out), out)
        else:
            raise self.error(target, "srcgrad cannot assign to this target")

    def assign_to(self, var: str, value: gast.expr, out: list) -> None:
        fields = self.result_fields(value)
        if fields and self.assigned_once(var):
            # `r = np.linalg.svd(A)`: one name per field, `r[1]` and `r.S` read that name
            parts = [self.namer.fresh(f"{var}_{f}") for f in fields]
            self.unpack(gast.Tuple(elts=[name(p, store=True) for p in parts], ctx=gast.Store()), value, out)
            self.named_results[var] = (fields, parts)
            self.emit(out, assign(var, gast.Tuple(elts=[name(p) for p in parts], ctx=gast.Load())),
                      Op("pack", args=[name(p) for p in parts]))
            return
        self.assigning = (var, value)
        try:
            rhs, op = self.rhs(value, out)
        finally:
            self.assigning = None
        if isinstance(value, gast.List) and not value.elts:
            self.lists.add(var)
        if op.kind == "call" and op.fn is _runtime_list_maker():
            self.lists.add(var)  # the cotangents of a list, in a transform of generated code
        group = self.list_names.pop(var, None)
        if group is not None:
            group.discard(var)  # var now names another value
        if op.kind == "copy" and isinstance(rhs, gast.Name) and rhs.id in self.lists and rhs.id != var \
                and rhs.id not in self.namer.temps:
            # `q = ps`: one list under two names (an append through either is seen through both; a
            # temporary holding a new list, `q = list(ps)`'s, is read only here)
            group = self.list_names.setdefault(rhs.id, {rhs.id})
            group.add(var)
            self.list_names[var] = group
        if op.kind == "copy" and isinstance(rhs, gast.Name) and rhs.id in self.lists:
            self.lists.add(var)  # `result = items`: a helper's list, returned
        if op.kind == "copy" and isinstance(rhs, gast.Name) and rhs.id in self.list_items:
            self.list_items[var] = self.list_items[rhs.id]
        if op.kind == "pack":
            held = {i for i, a in enumerate(op.args) if isinstance(a, gast.Name) and a.id in self.lists}
            if held:
                self.list_items[var] = held
        self.emit(out, assign(var, rhs), op)

    def unpack(self, target: gast.expr, value: gast.expr, out: list) -> None:
        if (
            isinstance(value, (gast.Tuple, gast.List))
            and len(value.elts) == len(target.elts)
            and all(isinstance(t, (gast.Name, gast.Subscript)) for t in target.elts)
            and any(isinstance(t, gast.Subscript) for t in target.elts)
        ):
            # `a[0], a[1] = a[1], a[0]`: every value is read before anything is written
            atoms = []
            for e in value.elts:
                a = self.atom(e, out)
                if isinstance(a, gast.Name):
                    tmp = self.namer.temp()
                    self.emit(out, assign(tmp, a), Op("copy", args=[a]))
                    a = name(tmp)
                atoms.append(a)
            for t, a in zip(target.elts, atoms, strict=True):
                self.assign_stmt(t, a, out)
            return
        for t in target.elts:
            if not isinstance(t, gast.Name):
                raise self.error(
                    target,
                    "srcgrad unpacks tuples into plain names only",
                    "unpack into names, then assign the subscripts on their own lines.",
                )
        names = [t.id for t in target.elts]
        if isinstance(value, (gast.Tuple, gast.List)):
            if len(value.elts) != len(names):
                raise self.error(target, "tuple unpacking with a different number of values")
            empty = [(n_, e) for n_, e in zip(names, value.elts, strict=True)
                     if isinstance(e, gast.List) and not e.elts]
            if empty:
                # `Rs, ts = [], []`: each a new list, like `Rs = []` (nothing on the right reads them)
                rest = [(t, e) for t, e in zip(target.elts, value.elts, strict=True)
                        if not (isinstance(e, gast.List) and not e.elts)]
                for n_, e in empty:
                    self.assign_to(n_, e, out)
                if len(rest) == 1:
                    self.assign_stmt(rest[0][0], rest[0][1], out)
                elif rest:
                    self.unpack(gast.Tuple(elts=[t for t, _ in rest], ctx=gast.Store()),
                                gast.Tuple(elts=[e for _, e in rest], ctx=gast.Load()), out)
                return
            atoms = [self.atom(e, out) for e in value.elts]
            # a name read on the right and written earlier on the left must be read first
            for i, a in enumerate(atoms):
                if isinstance(a, gast.Name) and a.id in names[:i]:
                    tmp = self.namer.temp()
                    self.emit(out, assign(tmp, a), Op("copy", args=[a]))
                    atoms[i] = name(tmp)
            for n_, a in zip(names, atoms, strict=False):
                if isinstance(a, gast.Name) and a.id in self.lists:
                    self.lists.add(n_)
                self.emit(
                    out, assign(n_, a), Op("copy", args=[a]) if isinstance(a, gast.Name) else Op("const")
                )
            return
        if (isinstance(value, gast.Call) and self.resolve_chain(value.func) is np.linalg.slogdet
                and len(names) == 2 and len(value.args) == 1 and not value.keywords):
            # `sign, logdet = np.linalg.slogdet(A)`: the two single-output primitives it is made of
            a = self.atom(value.args[0], out)
            for var, prim in zip(names, (P.slogdet_sign, P.logabsdet), strict=True):
                self.emit(out, assign(var, call(name(self.namer.ref(prim, prim.name)), [a])),
                          Op("nondiff" if not prim.differentiable else "prim", prim.name, [a], {}, fn=prim))
            return
        if isinstance(value, gast.Call) and self.resolve_chain(value.func) is np.split:
            args, kws = value.args, {k.arg: k.value for k in value.keywords}
            n = self.split_sections(args, kws)
            if n is not None:
                if n != len(names):
                    raise self.error(
                        target,
                        f"np.split gives {n} pieces here, unpacked into {len(names)} names",
                        f"unpack into {n} names.",
                    )
                self.split_into(names, args, kws, out)
                return
        self.assigning = (tuple(names), value)
        try:
            rhs, op = self.rhs(value, out)
        finally:
            self.assigning = None
        if op.kind in ("call", "opaque", "nondiff"):
            tgt = gast.Tuple(elts=[name(n_, store=True) for n_ in names], ctx=gast.Store())
            self.emit(out, assign(tgt, rhs), op)
            return
        # unpack a tuple-valued variable element by element
        src = rhs if isinstance(rhs, gast.Name) else None
        if src is None:
            tmp = self.namer.temp()
            self.emit(out, assign(tmp, rhs), op)
            src = name(tmp)
        for i, n_ in enumerate(names):
            if i in self.list_items.get(src.id, ()):
                self.lists.add(n_)  # `Rs, ts = helper()` where the helper returned two lists
            self.emit(
                out,
                assign(n_, gast.Subscript(value=src, slice=const(i), ctx=gast.Load())),
                Op("list_get", args=[src], kwargs={"index": const(i)})
                if src.id in self.lists
                else Op("unpack", args=[src], kwargs={"index": const(i)}),
            )

    def augassign(self, s: gast.AugAssign, out: list) -> None:
        if isinstance(s.target, gast.Name):
            value = gast.BinOp(left=name(s.target.id), op=s.op, right=s.value)
            self.assign_to(s.target.id, value, out)
        elif isinstance(s.target, gast.Subscript):
            self.refuse_view_write(s.target)
            base = self.atom(s.target.value, out)
            index = self.index(s.target.slice, out)
            cur = self.namer.temp()
            self.emit(
                out,
                assign(cur, gast.Subscript(value=base, slice=index, ctx=gast.Load())),
                Op("prim", "getitem", [base], {"index": self.index_expr(index)}, style="subscript"),
            )
            new = self.atom(gast.BinOp(left=name(cur), op=s.op, right=s.value), out)
            self.setitem_atoms(base, index, new, out, s.target)
        else:
            raise self.error(s, "srcgrad cannot differentiate this augmented assignment")

    def refuse_view_write(self, target: gast.Subscript) -> None:
        """`A[0][1] = v` and `A.T[1] = v` write through a view into A in NumPy; in generated code the
        write would land in a temporary, and A would keep its old value. A write into a module's or a
        closure's array changes state that outlives the call: refused too."""
        base = target.value
        while isinstance(base, (gast.Subscript, gast.Attribute)):
            base = base.value
        if isinstance(base, gast.Name) and self.info.resolve(base.id) is not LOCAL:
            raise self.error(
                target,
                f"srcgrad cannot differentiate a write into {base.id}, an array of the module (or a "
                "closure): the change would outlive the call, and generated code never writes into arrays",
                f"copy it into a local first ({base.id.lower()}_local = {base.id}.copy()) and change that.",
            )
        if isinstance(target.value, (gast.Subscript, gast.Attribute)):
            base = target.value
            while isinstance(base, (gast.Subscript, gast.Attribute)):
                base = base.value
            what = base.id if isinstance(base, gast.Name) else "the array"
            if isinstance(base, gast.Name) and base.id in self.lists:  # a list of lists (a table)
                raise self.error(
                    target,
                    f"srcgrad cannot differentiate a write into an item of {what}, a list (a chained "
                    "subscript writes into the inner list)",
                    f"keep the table in an array: {what} = np.zeros((n, m)), then {what}[i, j] = v.",
                )
            raise self.error(
                target,
                f"srcgrad cannot differentiate a write through a view of {what} (a chained subscript or "
                "an attribute before the [...])",
                f"index {what} once: write {what}[i, j] = v instead of {what}[i][j] = v.",
            )

    def setitem(self, target: gast.Subscript, value: gast.expr, out: list) -> None:
        self.refuse_view_write(target)
        base = self.atom(target.value, out)
        index = self.index(target.slice, out)
        self.setitem_atoms(base, index, value, out, target)

    def setitem_atoms(
        self, base: gast.expr, index: gast.expr, value: gast.expr, out: list, node: Any
    ) -> None:
        if not isinstance(base, gast.Name):
            raise self.error(node, "srcgrad can only write into a subscript of a local variable")
        if base.id in self.lists:
            raise self.error(
                node,
                "srcgrad cannot differentiate writes into a list",
                "build the list with append, or use an array and index_update.",
            )
        ix = self.index_expr(index)
        ref = name(self.namer.ref(P.index_update, "index_update"))
        self.emit(
            out,
            assign(base.id, call(ref, [base, value], {"index": ix})),
            Op("prim", "index_update", [base, value], {"index": ix}),
        )

    def expr_stmt(self, s: gast.Expr, out: list) -> None:
        v = s.value
        if isinstance(v, gast.Constant):
            return  # a string or number on its own line: nothing to do
        if (
            isinstance(v, gast.Call)
            and isinstance(v.func, gast.Attribute)
            and v.func.attr in ("append", "push")
            and isinstance(v.func.value, gast.Name)
            and v.func.value.id in self.lists
        ):
            if len(v.args) != 1 or v.keywords:
                raise self.error(s, "list.append takes one value")
            others = sorted(self.list_names.get(v.func.value.id, set()) - {v.func.value.id})
            if others:
                raise self.error(
                    s, f"the list {v.func.value.id} is appended to while {others[0]} names the same list: "
                    "srcgrad follows a list's items through one name, so the other would miss them",
                    f"append and read through one name, or make a copy first ({v.func.value.id} = "
                    f"list({others[0]})), as a list you change apart from the first.")
            item = self.atom(v.args[0], out)
            if isinstance(item, gast.Name) and item.id in self.lists:
                # a list appended to a list (a nested comprehension's rows): kept as the array it stacks
                # to, which indexes, measures and stacks as the rows do
                rows = self.namer.temp()
                stacked, op = self.stack_call(np.stack, [item], {}, v, out)
                self.emit(out, assign(rows, stacked), op)
                item = name(rows)
            lst = name(v.func.value.id)
            self.emit(
                out,
                gast.Expr(value=call(gast.Attribute(value=lst, attr="append", ctx=gast.Load()), [item])),
                Op("append", args=[lst, item]),
            )
            return
        rhs, op = self.rhs(v, out)
        if op.kind in ("prim", "copy", "const", "nondiff"):
            return  # a pure expression whose value is dropped
        self.emit(out, gast.Expr(value=rhs), op)

    def for_stmt(self, s: gast.For, out: list) -> None:
        if isinstance(s.iter, gast.Call) and len(s.iter.args) == 1 and len(s.iter.keywords) == 1 \
                and s.iter.keywords[0].arg == "start" and self.resolve_func(s.iter.func) is enumerate:
            # enumerate(xs, start=1) is enumerate(xs, 1)
            s.iter.args.append(s.iter.keywords.pop().value)
        if (
            isinstance(s.target, gast.Tuple)
            and len(s.target.elts) == 2
            and isinstance(s.target.elts[0], gast.Name)
            and isinstance(s.target.elts[1], gast.Tuple)
            and all(isinstance(t, gast.Name) for t in s.target.elts[1].elts)
            and isinstance(s.iter, gast.Call)
            and not s.iter.keywords
            and len(s.iter.args) in (1, 2)
            and self.resolve_func(s.iter.func) is enumerate
            and isinstance(s.iter.args[0], gast.Call)
            and _zip_strictness(s.iter.args[0]) is not None
            and self.resolve_func(s.iter.args[0].func) is zip
            and len(s.iter.args[0].args) == len(s.target.elts[1].elts)
        ):
            # `for i, (a, b) in enumerate(zip(xs, ys))`: one index loop over xs and ys, counting with i
            start = s.iter.args[1] if len(s.iter.args) == 2 else None
            return self.for_indexed(s, list(s.iter.args[0].args), s.target.elts[1].elts, s.target.elts[0],
                                    start, out, strict=_zip_strictness(s.iter.args[0]))
        if (
            isinstance(s.target, gast.Tuple)
            and isinstance(s.iter, gast.Call)
            and all(isinstance(t, gast.Name) for t in s.target.elts)
            and (not s.iter.keywords or _zip_strictness(s.iter) is not None)
        ):
            fn = self.resolve_func(s.iter.func)
            if fn is enumerate and len(s.iter.args) in (1, 2) and len(s.target.elts) == 2 \
                    and not s.iter.keywords:
                return self.for_indexed(
                    s,
                    [s.iter.args[0]],
                    s.target.elts[1:],
                    s.target.elts[0],
                    s.iter.args[1] if len(s.iter.args) == 2 else None,
                    out,
                )
            if fn is zip and len(s.iter.args) == len(s.target.elts) and s.iter.args:
                return self.for_indexed(s, list(s.iter.args), s.target.elts, None, None, out,
                                        strict=_zip_strictness(s.iter))
        if not isinstance(s.target, gast.Name):
            if isinstance(s.target, gast.Tuple):
                raise self.error(
                    s,
                    "srcgrad loops over one name at a time",
                    "loop over an index (for i in range(n)) and unpack inside the body.",
                )
            raise self.error(s, "srcgrad cannot use this loop target")
        it = s.iter
        rng = None
        if isinstance(it, gast.Call) and self.resolve_func(it.func) is range and not it.keywords:
            args = [self.atom(a, out) for a in it.args]
            r = self.namer.fresh("_r")
            ref = name(self.namer.ref(range, "range"))
            self.emit(out, assign(r, call(ref, args)), Op("nondiff", args=args))
            rng = name(r)
            body: list = []
            self.block(s.body, body)
            self.line = s.lineno
            self.emit(
                out,
                gast.For(
                    target=name(s.target.id, store=True), iter=rng, body=body, orelse=[], type_comment=None
                ),
            )
            return
        if isinstance(it, gast.Call) and not self.expr_varied(it):
            # an iterable no derivative flows through (reversed(r), zip of indices, a dict's keys):
            # materialized once, so the adjoint can walk it backwards
            r = self.namer.fresh("_r")
            ref_list = name(self.namer.ref(list, "list"))
            self.emit(out, assign(r, call(ref_list, [self.rewrite_static(it)])), Op("nondiff", args=[]))
            body = []
            self.block(s.body, body)
            self.line = s.lineno
            self.emit(
                out,
                gast.For(
                    target=name(s.target.id, store=True),
                    iter=name(r),
                    body=body,
                    orelse=[],
                    type_comment=None,
                ),
            )
            return
        # for x in <array or list>: loop over an index, read the element at the top of the body
        seq = self.atom(it, out)
        if isinstance(it, (gast.List, gast.Tuple)) and isinstance(seq, gast.Name):
            self.lists.add(seq.id)  # `for W in [W1, W2]`: a list (its items may differ in shape)
        if isinstance(it, gast.Call) and isinstance(seq, gast.Name) and seq.id not in self.lists:
            # an iterator from a call (reversed(...), a generator): materialized as a list first, so it
            # can be indexed, measured and, in the adjoint, walked backwards
            lst = self.namer.temp()
            self.emit(
                out,
                assign(lst, call(name(self.namer.ref(list, "list")), [seq])),
                Op("opaque", args=[seq], fn=list),
            )
            self.lists.add(lst)
            seq = name(lst)
        if isinstance(seq, gast.Name) and seq.id in _assigned_in(s.body):
            tmp = self.namer.temp()
            self.emit(out, assign(tmp, seq), Op("copy", args=[seq]))
            seq = name(tmp)
        r = self.namer.fresh("_r")
        i = self.namer.fresh("_i")
        ref_range = name(self.namer.ref(range, "range"))
        ref_len = name(self.namer.ref(len, "len"))
        self.emit(out, assign(r, call(ref_range, [call(ref_len, [seq])])), Op("nondiff", args=[seq]))
        body = []
        kind_list = isinstance(seq, gast.Name) and seq.id in self.lists
        elem = gast.Subscript(value=seq, slice=name(i), ctx=gast.Load())
        if kind_list:
            self.emit(body, assign(s.target.id, elem), Op("list_get", args=[seq], kwargs={"index": name(i)}))
        else:
            self.emit(
                body,
                assign(s.target.id, elem),
                Op("prim", "getitem", [seq], {"index": name(i)}, style="subscript"),
            )
        self.block(s.body, body)
        self.line = s.lineno
        self.emit(
            out, gast.For(target=name(i, store=True), iter=name(r), body=body, orelse=[], type_comment=None)
        )

    def for_indexed(
        self, s: gast.For, seqs: list, targets: list, counter: Any, start: Any, out: list,
        strict: bool | None = False,
    ) -> None:
        """`for i, x in enumerate(xs)` / `for a, b in zip(xs, ys)`: one index loop reading each sequence
        (`zip(..., strict=True)`: Python's ValueError first where the lengths differ)."""
        atoms = []
        for q in seqs:
            a = self.atom(q, out)
            if isinstance(q, (gast.List, gast.Tuple)) and isinstance(a, gast.Name):
                self.lists.add(a.id)
            if isinstance(a, gast.Name) and a.id in _assigned_in(s.body):
                tmp = self.namer.temp()
                self.emit(out, assign(tmp, a), Op("copy", args=[a]))
                a = name(tmp)
            atoms.append(a)
        if strict and len(atoms) > 1:
            same = name(self.namer.ref(same_lengths, "same_lengths"))
            check = gast.Expr(value=call(same, list(atoms)))
            self.emit(out, check, Op("nondiff", args=[]))
        ref_len = name(self.namer.ref(len, "len"))
        lengths = [call(ref_len, [a]) for a in atoms]
        n = lengths[0] if len(lengths) == 1 else call(name(self.namer.ref(min, "min")), lengths)
        r = self.namer.fresh("_r")
        self.emit(out, assign(r, call(name(self.namer.ref(range, "range")), [n])), Op("nondiff", args=atoms))
        i = self.namer.fresh("_i")
        body: list = []
        if counter is not None:
            if start is None:
                self.emit(body, assign(counter.id, name(i)), Op("nondiff", args=[]))
            else:
                st = self.rewrite_static(start)
                self.emit(
                    body,
                    assign(counter.id, gast.BinOp(left=name(i), op=gast.Add(), right=st)),
                    Op("nondiff", args=[]),
                )
        for a, t in zip(atoms, targets, strict=True):
            elem = gast.Subscript(value=a, slice=name(i), ctx=gast.Load())
            if isinstance(a, gast.Name) and a.id in self.lists:
                op = Op("list_get", args=[a], kwargs={"index": name(i)})
            else:
                op = Op("prim", "getitem", [a], {"index": name(i)}, style="subscript")
            self.emit(body, assign(t.id, elem), op)
        self.block(s.body, body)
        self.line = s.lineno
        self.emit(
            out, gast.For(target=name(i, store=True), iter=name(r), body=body, orelse=[], type_comment=None)
        )

    def while_stmt(self, s: gast.While, out: list) -> None:
        pre: list = []
        test, op = self.rhs(s.test, pre)
        body: list = []
        if not pre and op.kind in ("nondiff", "copy", "const"):
            self.block(s.body, body)
            self.line = s.lineno
            self.emit(out, gast.While(test=test, body=body, orelse=[]))
            return
        if op.kind not in ("copy", "const") or not is_atom(test):
            tmp = self.namer.fresh("_c")
            self.emit(pre, assign(tmp, test), op)
            test = name(tmp)
        # the condition needs statements: evaluate it at the top of each iteration
        brk = gast.Break()
        brk.line = self.line
        guard = gast.If(test=gast.UnaryOp(op=gast.Not(), operand=test), body=[brk], orelse=[])
        guard.line = self.line
        self.block(s.body, body)
        loop = gast.While(test=const(True), body=pre + [guard] + body, orelse=[])
        loop.cond_len = len(pre) + 1  # statements that only compute the condition
        self.line = s.lineno
        self.emit(out, loop)

    # ----------------------------------------------------------------------------- expressions
    def atom(self, e: gast.expr, out: list, prefix: str = "_t") -> gast.expr:
        """Normalize `e` and return a Name or Constant holding its value."""
        if isinstance(e, gast.Constant):
            return const(e.value)
        if (
            isinstance(e, gast.UnaryOp)
            and isinstance(e.op, gast.USub)
            and isinstance(e.operand, gast.Constant)
            and isinstance(e.operand.value, (int, float))
            and not isinstance(e.operand.value, bool)
        ):
            return const(-e.operand.value)  # -1 is a constant, not an operation
        if isinstance(e, gast.Name):
            if e.id in self.namer.taken or e.id in self.namer.globals:
                return name(e.id)
        rhs, op = self.rhs(e, out)
        if is_atom(rhs) and (isinstance(rhs, gast.Constant) or op.kind in ("const",)):
            return rhs
        if isinstance(rhs, gast.Name) and op.kind == "copy":
            return rhs
        tmp = self.namer.fresh(prefix)
        self.emit(out, assign(tmp, rhs), op)
        if op.kind not in ("nondiff", "const"):
            # a temporary holding a value a derivative may flow through is varied like its source
            # (so an inlined adapter that reads it is differentiated, never kept as static code)
            self.varied.add(tmp)
        return name(tmp)

    def global_ref(self, node: gast.expr, obj: Any, preferred: str) -> tuple[gast.expr, Op]:
        """A reference to a non-local value: library constants inline, data globals refreshed per call."""
        if isinstance(obj, (bool, int, float)) and isinstance(node, gast.Attribute) and \
                _is_library(self.resolve_func(node.value)):
            return const(obj), Op("const")  # np.pi, math.e
        data = not isinstance(
            obj, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type, Primitive, np.ufunc))
        ref = self.namer.ref(obj, preferred, key=("data", _dotted(node)) if data else None)
        if data:
            getter = self._getter(node)
            if getter is not None and all(n != ref for n, _ in self.data_refs):
                self.data_refs.append((ref, getter))
        return name(ref), Op("copy" if isinstance(obj, (np.ndarray, float, int)) else "const", args=[])

    def _getter(self, node: gast.expr) -> Any:
        if isinstance(node, gast.Attribute):
            base = self.resolve_func(node.value)
            if isinstance(base, types.ModuleType):
                attr = node.attr
                return lambda: getattr(base, attr)
            return None
        if isinstance(node, gast.Name):
            if node.id in self.info.closure:
                cell = self.info.closure[node.id]
                return lambda: cell.cell_contents
            g = self.info.globals
            key = node.id
            return lambda: g[key]
        return None

    def resolve_chain(self, e: gast.expr) -> Any:
        """The object a Name/Attribute chain rooted at a non-local name denotes, or UNBOUND/LOCAL."""
        if isinstance(e, gast.Name):
            if e.id in self.namer.globals and self.info.resolve(e.id) is not LOCAL:
                return self.namer.globals[e.id]
            return self.info.resolve(e.id)
        if isinstance(e, gast.Attribute):
            base = self.resolve_chain(e.value)
            if base is LOCAL or base is UNBOUND:
                return base
            value = getattr(base, e.attr, UNBOUND)
            if isinstance(base, types.ModuleType) and not _is_library(base):
                record(base, e.attr, value)  # cfg.SCALE, helpers.act: the user's module may rebind it
            return value
        return LOCAL

    def resolve_func(self, f: gast.expr) -> Any:
        r = self.resolve_chain(f)
        return None if r is LOCAL or r is UNBOUND else r

    def rhs(self, e: gast.expr, out: list) -> tuple[gast.expr, Op]:
        """Normalize `e` into one operation on atoms (statements for its operands go to `out`)."""
        if isinstance(e, gast.Constant):
            return const(e.value), Op("const")
        if (
            isinstance(e, (gast.BinOp, gast.UnaryOp, gast.Compare, gast.Call, gast.BoolOp, gast.Subscript))
            and not self.expr_varied(e)
            and not _has_list_ref(e, self.lists)
        ):
            # no derivative flows through it: keep the expression as the user wrote it
            return self.rewrite_static(e), Op("nondiff", args=[])
        if isinstance(e, gast.Name):
            r = self.info.resolve(e.id)
            if r is LOCAL or e.id in self.namer.taken:
                return name(e.id), Op("copy", args=[name(e.id)])
            if e.id in self.namer.globals:
                return name(e.id), Op("const")
            if r is UNBOUND:
                raise self.error(e, f"name {e.id!r} is not defined")
            return self.global_ref(e, r, e.id)
        if isinstance(e, gast.BinOp):
            left = self.atom(e.left, out)
            right = self.atom(e.right, out)
            node = gast.BinOp(left=left, op=type(e.op)(), right=right)
            prim = BINOPS.get(type(e.op))
            if prim is not None:
                return node, Op("prim", prim, [left, right], style="binop")
            if isinstance(e.op, NONDIFF_BINOPS):
                return node, Op("nondiff", args=[left, right])
            return node, Op("opaque", args=[left, right])  # %: no rule
        if isinstance(e, gast.UnaryOp):
            operand = self.atom(e.operand, out)
            node = gast.UnaryOp(op=type(e.op)(), operand=operand)
            if isinstance(e.op, gast.USub):
                return node, Op("prim", "neg", [operand], style="unary")
            if isinstance(e.op, gast.UAdd):
                return operand, Op("copy", args=[operand]) if isinstance(operand, gast.Name) else Op("const")
            return node, Op("nondiff", args=[operand])
        if isinstance(e, gast.Compare):
            if len(e.ops) == 1:
                left = self.atom(e.left, out)
                right = self.atom(e.comparators[0], out)
                return gast.Compare(left=left, ops=[type(e.ops[0])()], comparators=[right]), Op(
                    "nondiff", args=[left, right]
                )
            return self.rewrite_static(e), Op("nondiff", args=[])
        if isinstance(e, gast.BoolOp):
            return self.rewrite_static(e), Op("nondiff", args=[])
        if isinstance(e, gast.IfExp):
            test = self.atom(e.test, out, prefix="_c")
            tmp = self.namer.temp()
            body: list = []
            orelse: list = []
            self.assign_to(tmp, e.body, body)
            self.assign_to(tmp, e.orelse, orelse)
            self.emit(out, gast.If(test=test, body=body, orelse=orelse))
            return name(tmp), Op("copy", args=[name(tmp)])
        if isinstance(e, gast.Tuple):
            elts = [self.atom(x, out) for x in e.elts]
            return gast.Tuple(elts=elts, ctx=gast.Load()), Op("pack", args=elts)
        if isinstance(e, gast.List):
            if not e.elts:
                return gast.List(elts=[], ctx=gast.Load()), Op("list")
            elts = [self.atom(x, out) for x in e.elts]
            return gast.List(elts=elts, ctx=gast.Load()), Op("pack", args=elts)
        if isinstance(e, gast.Subscript):
            return self.subscript(e, out)
        if isinstance(e, gast.Attribute):
            return self.attribute(e, out)
        if isinstance(e, gast.Call):
            return self.call(e, out)
        if isinstance(e, gast.Slice):
            return self.index(e, out), Op("nondiff")
        raise self.error(e, f"srcgrad cannot differentiate a {type(e).__name__} expression")

    def rewrite_static(self, e: Any) -> Any:
        """A copy of `e` with every non-local name bound to a global reference (no differentiation)."""
        e = copy.deepcopy(e)
        for n in gast.walk(e):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load):
                r = self.info.resolve(n.id)
                if r is LOCAL or n.id in self.namer.globals or n.id in self.namer.taken:
                    continue
                if r is UNBOUND:
                    raise self.error(e, f"name {n.id!r} is not defined")
                n.id = self.global_ref(n, r, n.id)[0].id  # data (numbers too) read again on every call
        return e

    # --------------------------------------------------------------------------------- subscripts
    def index(self, s: gast.expr, out: list) -> gast.expr:
        """An index with atoms for every part (slices kept as slice syntax)."""
        if isinstance(s, gast.Slice):
            return gast.Slice(
                lower=None if s.lower is None else self.atom(s.lower, out),
                upper=None if s.upper is None else self.atom(s.upper, out),
                step=None if s.step is None else self.atom(s.step, out),
            )
        if isinstance(s, gast.Tuple):
            return gast.Tuple(elts=[self.index(x, out) for x in s.elts], ctx=gast.Load())
        if isinstance(s, gast.Constant):
            return const(s.value)
        return self.atom(s, out)

    def index_expr(self, ix: gast.expr) -> gast.expr:
        """The index as a value (slice syntax -> slice(...)), to pass as `index=` to primitives."""
        if isinstance(ix, gast.Slice):
            ref = name(self.namer.ref(slice, "slice"))
            parts = [
                copy.deepcopy(p) if p is not None else const(None) for p in (ix.lower, ix.upper, ix.step)
            ]

            # Shortest equivalent spelling: slice(lo, hi, None) -> slice(lo, hi); slice(None, hi) ->
            # slice(hi). Never slice(lo) for slice(lo, None): one argument means the *stop*.
            def is_none(p: gast.expr) -> bool:
                return isinstance(p, gast.Constant) and p.value is None

            if is_none(parts[2]):
                parts.pop()
                if is_none(parts[0]):
                    parts.pop(0)
            return call(ref, parts)
        if isinstance(ix, gast.Tuple):
            return gast.Tuple(elts=[self.index_expr(x) for x in ix.elts], ctx=gast.Load())
        return copy.deepcopy(ix)

    def assigned_once(self, var: str) -> bool:
        return sum(isinstance(n, gast.Name) and n.id == var and isinstance(n.ctx, gast.Store)
                   for n in gast.walk(self.info.node)) == 1

    def named_part(self, e: Any) -> str | None:
        """`r[1]` / `r.S` where r holds a named result unpacked at its assignment: the part's name."""
        if not (isinstance(e.value, gast.Name) and e.value.id in self.named_results):
            return None
        fields, parts = self.named_results[e.value.id]
        if isinstance(e, gast.Attribute):
            return parts[fields.index(e.attr)] if e.attr in fields else None
        if isinstance(e.slice, gast.Constant) and isinstance(e.slice.value, int) \
                and -len(parts) <= e.slice.value < len(parts):
            return parts[e.slice.value]
        return None

    def subscript(self, e: gast.Subscript, out: list) -> tuple[gast.expr, Op]:
        part = self.named_part(e)
        if part is not None:
            return name(part), Op("copy", args=[name(part)])
        fields = self.result_fields(e.value)
        if fields and isinstance(e.slice, gast.Constant) and isinstance(e.slice.value, int) \
                and -len(fields) <= e.slice.value < len(fields):
            return self.result_field(e.value, fields, e.slice.value, out)
        base = self.atom(e.value, out)
        index = self.index(e.slice, out)
        node = gast.Subscript(value=base, slice=index, ctx=gast.Load())
        if isinstance(base, gast.Name) and base.id in self.lists:
            return node, Op("list_get", args=[base], kwargs={"index": self.index_expr(index)})
        return node, Op("prim", "getitem", [base], {"index": self.index_expr(index)}, style="subscript")

    # --------------------------------------------------------------------------------- attributes
    def result_fields(self, e: gast.expr) -> tuple[str, ...] | None:
        """The field names of the named tuple a call returns (`np.linalg.svd(A)`: U, S, Vh), where the
        call's adapter returns one; None for anything else."""
        if not isinstance(e, gast.Call):
            return None
        obj = self.resolve_chain(e.func)
        if obj is LOCAL or obj is UNBOUND or not _hashable(obj):
            return None
        adapter = mapping.lookup_function(obj)
        fields = _named_result(adapter)
        unless = getattr(adapter, "tuple_unless", None)
        if fields is None and unless is not None:
            # `svd(A, full_matrices=False)` returns its named tuple unless compute_uv is passed (then one
            # array, read as an array): the adapter names the arguments that change what it returns
            params = list(inspect.signature(adapter).parameters)
            first = min(params.index(u) for u in unless)
            if len(e.args) <= first and not any(k.arg in unless for k in e.keywords):
                fields = _named_result(adapter, by_default=True)
        return fields

    def result_field(self, e: gast.Call, fields: tuple, i: int, out: list) -> tuple[gast.expr, Op]:
        """`np.linalg.svd(A)[1]`, `np.linalg.slogdet(K).logabsdet`: the call unpacked into one name per
        field (each a primitive of its own), and the one asked for."""
        parts = [self.namer.temp() for _ in fields]
        self.unpack(gast.Tuple(elts=[name(p, store=True) for p in parts], ctx=gast.Store()), e, out)
        picked = name(parts[i])
        return picked, Op("copy", args=[picked])

    def attribute(self, e: gast.Attribute, out: list) -> tuple[gast.expr, Op]:
        part = self.named_part(e)
        if part is not None:
            return name(part), Op("copy", args=[name(part)])
        fields = self.result_fields(e.value)
        if fields and e.attr in fields:
            return self.result_field(e.value, fields, fields.index(e.attr), out)
        obj = self.resolve_chain(e)
        if obj is not LOCAL and obj is not UNBOUND:
            return self.global_ref(e, obj, e.attr)
        base = self.atom(e.value, out)
        if e.attr == "T":
            ref = name(self.namer.ref(P.transpose, "transpose"))
            return call(ref, [base]), Op("prim", "transpose", [base])
        if e.attr == "mT":
            return self.inline_adapter(mapping.ATTRIBUTES["mT"], [base], {}, e, out)
        if e.attr == "data":
            ref = name(self.namer.ref(detach, "detach"))
            return call(ref, [base]), Op("nondiff", args=[base])
        node = gast.Attribute(value=base, attr=e.attr, ctx=gast.Load())
        if e.attr in NONDIFF_ATTRS:
            return node, Op("nondiff", args=[base])
        adapter = mapping.ATTRIBUTES.get(e.attr)
        if adapter is not None:
            # z.real, z.imag: the attribute's primitive (one record: the mapping's ATTRIBUTES)
            return self.call_adapter(adapter, [base], {}, e, out)
        return node, Op("opaque", args=[base])

    # -------------------------------------------------------------------------------------- calls
    def call(self, e: gast.Call, out: list) -> tuple[gast.expr, Op]:
        for a in e.args:
            if isinstance(a, gast.Starred):
                raise self.error(e, "srcgrad cannot differentiate a call with *args", "pass each argument.")
        for k in e.keywords:
            if k.arg is None:
                raise self.error(e, "srcgrad cannot differentiate a call with **kwargs", "pass each keyword.")
        f = e.func
        # a method call on a local value: x.sum(axis=0), xs.append(v), y.detach()
        if isinstance(f, gast.Attribute) and self.resolve_chain(f.value) in (LOCAL,):
            return self.method_call(e, out)
        obj = self.resolve_chain(f)
        if obj is UNBOUND:
            raise self.error(
                e,
                f"cannot resolve the function {_dotted(f)!r}",
                "define it (or import it) before transforming.",
            )
        if obj is LOCAL:
            made_here = isinstance(f, gast.Call)
            raise self.error(
                e,
                "srcgrad cannot call a function " + ("made by a call inside the function (a transform such "
                                                     "as sg.grad(inner), or a factory)" if made_here
                                                     else "stored in a local variable"),
                "make it once at module level and call it by name (`dinner = sg.grad(inner)`, then "
                "`dinner(w)` inside: srcgrad differentiates a transform called by name), or call "
                "module-level functions by name.",
            )
        return self.call_object(obj, e.args, {k.arg: k.value for k in e.keywords}, e, out)

    def method_call(self, e: gast.Call, out: list) -> tuple[gast.expr, Op]:
        f = e.func
        meth = f.attr
        base = self.atom(f.value, out)
        if meth in IDENTITY_METHODS and not e.args and not e.keywords:
            return base, Op("copy", args=[base]) if isinstance(base, gast.Name) else Op("const")
        if meth == "item" and not e.args and not e.keywords:
            return self.call_primitive(P.item, [base], {}, e, out)
        if meth == "tolist" and not e.args and not e.keywords:
            what = _dotted(f.value) if isinstance(f.value, (gast.Name, gast.Attribute)) else "the value"
            raise self.error(e, f"srcgrad cannot pass a derivative through {what}.tolist(): a list of Python "
                             "numbers cannot carry one",
                             f"keep it an array ({what}[i] reads one element), or use {what}.item() for a "
                             "one-element value.")
        if meth in DETACH_METHODS and not e.args and not e.keywords:
            if meth == "detach":
                return call(name(self.namer.ref(detach, "detach")), [base]), Op("nondiff", args=[base])
            return call(gast.Attribute(value=base, attr=meth, ctx=gast.Load()), []), Op(
                "nondiff", args=[base]
            )
        if isinstance(base, gast.Name) and base.id in self.stacks and meth == "pop" and not e.args:
            return call(gast.Attribute(value=base, attr="pop", ctx=gast.Load()), []), Op(
                "list_pop", args=[base]
            )
        if isinstance(base, gast.Name) and base.id in self.lists:
            raise self.error(
                e,
                f"srcgrad supports only append on lists (not .{meth})",
                "build the list with append, then np.stack it.",
            )
        if meth in mapping.INPLACE_METHODS and mapping.INPLACE_METHODS[meth] is not None \
                and isinstance(base, gast.Name):
            # a.fill(v), a.sort(), a.put(i, v): the new array, rebound to a
            return self.call_writing(mapping.INPLACE_METHODS[meth], [base] + list(e.args),
                                     {k.arg: k.value for k in e.keywords}, e, out, f"the method .{meth}()")
        if (meth.endswith("_") and not meth.startswith("_") and meth != "requires_grad_") \
                or meth in mapping.INPLACE_METHODS:
            # y.mul_(x), y.add_(1), a.fill(0), a.sort(): generated code would drop the change
            what = _dotted(f.value) if isinstance(f.value, (gast.Name, gast.Attribute)) else "the value"
            hint = (f"assign a new value: {what} = {what}.{meth[:-1]}(...) (or the operator, "
                    f"{what} = {what} * x for .mul_(x))." if meth.endswith("_") else
                    f"make a new array (np.full_like({what}, v) for .fill(v), np.sort({what}) "
                    "for .sort()).")
            raise self.error(
                e,
                f"srcgrad cannot differentiate the in-place method .{meth}(), which changes {what} in "
                "place: generated code never writes into arrays",
                hint,
            )
        adapter = mapping.METHODS.get(meth)
        if adapter is None:
            args = [self.atom(a, out) for a in e.args]
            kws = {k.arg: self.atom(k.value, out) for k in e.keywords}
            node = call(gast.Attribute(value=base, attr=meth, ctx=gast.Load()), args, kws)
            op = Op("opaque", args=[base] + args + list(kws.values()))
            op.label = f"the method .{meth}()"
            return node, op
        return self.call_adapter(adapter, [base] + list(e.args), {k.arg: k.value for k in e.keywords}, e, out)

    def call_object(self, obj: Any, args: list, kws: dict, e: Any, out: list) -> tuple[gast.expr, Op]:
        if (isinstance(obj, types.MethodType) and isinstance(obj.__func__, types.FunctionType)
                and isinstance(e, gast.Call) and isinstance(e.func, gast.Attribute)):
            # model.forward(x) on an object the function reads: the method's function, model first
            return self.call_object(obj.__func__, [e.func.value, *args], kws, e, out)
        if obj in (builtins.tuple, builtins.list) and len(args) == 1 and not kws and \
                isinstance(args[0], gast.Name) and args[0].id in self.lists:
            # list(xs) / tuple(xs) of a list variable: a new list, as in Python (a change made through
            # one name is not seen through the other)
            return self.copy_of_list(args[0], e, out)
        if obj in (builtins.tuple, builtins.list) and len(args) == 1 and not kws and \
                isinstance(args[0], (gast.List, gast.Tuple)):
            # tuple([a, b]) / list((a, b)): the literal itself, read the same way
            return self.rhs(args[0], out)
        literal_list = bool(args) and isinstance(args[0], (gast.List, gast.Tuple))
        # Python's sum of an iterable, whatever its spelling (sum, math.fsum): the spelling's adapter says
        pythons_sum = _hashable(obj) and mapping.lookup_function(obj) is mapping.builtin_sum
        if pythons_sum and len(args) == 1 and not kws and literal_list and args[0].elts:
            # sum([a, b, c]) is a + b + c
            total = args[0].elts[0]
            for item in args[0].elts[1:]:
                total = gast.BinOp(left=total, op=gast.Add(), right=item)
            return self.rhs(total, out)
        list_variable = bool(args) and isinstance(args[0], gast.Name) and args[0].id in self.lists
        if pythons_sum and list_variable and (len(args) == 1 and set(kws) <= {"start"} or
                                              len(args) == 2 and not kws):
            return self.sum_of_list(args[0], args[1] if len(args) == 2 else kws.get("start", const(0)), e,
                                    out)
        lists_at = [k for k in mapping.array_like_positions(obj) if k < len(args) and self.is_list(args[k])] \
            if _hashable(obj) else []
        if lists_at:
            # np.sum([a, b]), np.linalg.norm(xs), np.dot([a, b], w): a list where NumPy takes an array is
            # the array np.array makes of it (NumPy's own reading)
            args = [self.array_item(a, e, out) if k in lists_at else a for k, a in enumerate(args)]
            return self.call_object(obj, args, kws, e, out)
        if isinstance(obj, np.ufunc) and _ufunc_outputs(obj, args, kws):
            return self.ufunc_into(obj, args, kws, e, out)
        if "out" in kws and not (isinstance(kws["out"], gast.Constant) and kws["out"].value is None) \
                and _hashable(obj) and mapping.lookup_function(obj) is not None:
            # np.dot(a, b, out=c), np.sum(x, axis=0, out=s): the result, written into out's array
            return self.result_into(obj, args, kws, e, out)
        if _hashable(obj) and getattr(mapping.lookup_function(obj), "writes_into", None) is not None:
            return self.call_writing(mapping.lookup_function(obj), args, kws, e, out, obj)
        if isinstance(obj, Primitive):
            return self.call_primitive(obj, args, kws, e, out)
        joiner = (mapping.lookup_function(obj) or obj) if _hashable(obj) and len(args) > 1 else None
        if joiner is not None and _array_sequence_positions(joiner) == {0}:
            # np.stack(xs, 1), np.concatenate(xs, 0), torch.cat(xs, 1): a function taking one sequence of
            # arrays (its adapter's `array_sequences`), its other arguments bound the way NumPy binds them
            bound = _bind_syntax(joiner, args, kws)
            if bound is None:
                raise self.error(e, f"bad arguments for np.{obj.__name__}")
            first = next(iter(bound))
            return self.call_object(obj, [bound.pop(first)], bound, e, out)
        if (obj is np.stack or obj is np.array or obj is np.asarray) and args:
            return self.stack_call(obj, args, kws, e, out)
        if len(args) == 1 and _hashable(obj) and mapping.concatenate_ in (obj, mapping.lookup_function(obj)):
            joined = self.concatenate_call(args[0], kws, e, out)
            if joined is not None:
                return joined
        joins = getattr(mapping.lookup_function(obj), "joins", None) if _hashable(obj) else None
        if joins is not None and len(args) == 1 and not kws \
                and isinstance(args[0], (gast.List, gast.Tuple)) and args[0].elts:
            return self.joined_call(joins, args[0].elts, e, out)
        if obj is np.split:
            raise self.error(
                e,
                "srcgrad differentiates np.split only when its pieces are unpacked at once",
                "write `p, q = np.split(x, 2)` (sections, or a list of split indices, written as "
                "constants), or slice x yourself.",
            )
        if (
            obj is np.einsum
            and args
            and isinstance(args[0], gast.Constant)
            and isinstance(args[0].value, str)
            and not kws
        ):
            # subscripts written out: the variadic primitive, subscripts static (an implicit output is
            # NumPy's: the letters that appear once, in alphabetical order)
            items = [self.atom(x, out) for x in args[1:]]
            subscripts = args[0].value.replace(" ", "")
            if "..." in subscripts:  # the letters '...' stands for follow the operands' ranks
                helper = mapping.STATIC_HELPERS[mapping.explicit_subscripts]
                explicit = self.namer.temp()
                self.emit(out, assign(explicit, call(name(self.namer.ref(helper, "explicit_subscripts")),
                                                     [const(subscripts), *items])),
                          Op("nondiff", args=list(items)))
                k = {"subscripts": name(explicit)}
            else:  # written out here, by the same rule (no operand's rank is read)
                k = {"subscripts": const(mapping.explicit_subscripts(subscripts, *items))}
            return call(name(self.namer.ref(P.einsum, "einsum")), items, k), Op(
                "prim", "einsum", items, k, fn=P.einsum
            )
        adapter = mapping.lookup_function(obj) if _hashable(obj) else None
        if adapter is not None:
            return self.call_adapter(adapter, list(args), kws, e, out, original=obj)
        if (
            self.refuse_generated_callees
            and isinstance(obj, types.FunctionType)
            and obj.__code__.co_filename.startswith("<srcgrad ")
            and obj.__name__.endswith(("_fwd", "_adj"))
        ):
            raise self.error(
                e,
                "srcgrad does not yet differentiate generated code that calls other generated "
                f"functions ({obj.__name__}) in reverse mode",
                "for second derivatives use sg.hvp / sg.hessian (forward over reverse), or "
                "inline the helper function into the differentiated one.",
            )
        if (
            isinstance(obj, types.FunctionType)
            and (obj.__module__ or "").endswith("runtime.rules")  # generated code has no module
            and _adapter_expression(obj) is not None
        ):
            # a one-expression rule helper (unbroadcast, balance, ...) met when differentiating generated
            # code: inlined like an adapter, so its primitives get their own rules
            return self.inline_adapter(obj, list(args), kws, e, out)
        if (obj in NONDIFF_BUILTINS or obj in _runtime_nondiff()) if _hashable(obj) else False:
            a = [self.atom(x, out) for x in args]
            k = {kk: self.atom(v, out) for kk, v in kws.items()}
            ref = name(self.namer.ref(obj, getattr(obj, "__name__", "fn")))
            return call(ref, a, k), Op("nondiff", args=a + list(k.values()))
        if isinstance(obj, types.FunctionType):
            self.refuse_argument_writes(obj, args, kws, e, out)
            users = not (obj.__module__ or "").startswith("srcgrad")  # (generated code's helpers take lists)
            for x in [*args, *kws.values()] if users else ():
                if isinstance(x, gast.Name) and x.id in self.lists and x.id in self.appended \
                        and x.id in self.varied and x.id not in self.stacks:
                    raise self.error(
                        e, f"the list {x.id}, built with append, is passed to {obj.__name__}: srcgrad "
                        "follows a list of unknown length only in the function that builds it",
                        f"pass the arrays as one (np.stack({x.id}) or np.concatenate({x.id})), or build the "
                        f"list inside {obj.__name__}.")
            a = [self.atom(x, out) for x in args]
            k = {kk: self.atom(v, out) for kk, v in kws.items()}
            ref = name(self.namer.ref(obj, obj.__name__))
            return call(ref, a, k), Op(
                "call", args=a + list(k.values()), fn=obj, kwargs={"__pos__": len(a), "__kw__": list(k)}
            )
        a = [self.atom(x, out) for x in args]
        k = {kk: self.atom(v, out) for kk, v in kws.items()}
        ref = name(self.namer.ref(obj, getattr(obj, "__name__", "fn")))
        return call(ref, a, k), Op("opaque", args=a + list(k.values()), fn=obj)

    def check_unshared(self, s: gast.stmt, out: list) -> None:
        """The run-time checks (mutation.alias_guards) that go in front of `s`: no other live name, and
        for a write kept in place none of the caller's arrays, shares the memory about to change."""
        for g in self.guards.get(id(s), ()):
            stmt = self.guard_stmt(g, out)
            if stmt is not None:
                out.append(stmt)
        for g in self.copies_before.get(id(s), ()):
            out.append(self.copy_stmt(g))

    def copy_stmt(self, g: Any) -> gast.stmt:
        """`m = copy(m)` before a write kept in place into an array a differentiated statement read
        earlier: that statement's rule may hold the array itself (saved on the stack, or inside a
        callee), so the write goes into a copy and the saved values stay what they were."""
        stmt = assign(g.changed, call(name(self.namer.ref(P.copy, "copy")), [name(g.changed)]))
        stmt.line = self.line
        stmt.op = Op("nondiff", args=[])
        return stmt

    def written_regions(self, g: Any, out: list | None) -> gast.Tuple | None:
        """The indices a check placed right before the write `m[i] = v` (or `m[i] += v`, or a tuple of
        such targets) passes, so that it compares only the elements about to change: `x = state[k]`
        stays valid while `state[k + 2]` is written, as in NumPy. None where the write is not plain
        subscript stores into the array, or the check sits before a loop (the index varies). With `out`
        the indices are normalized into it; without, they are copied into code kept as written."""
        if g.before is not g.write or not isinstance(g.write, (gast.Assign, gast.AugAssign)):
            return None
        targets = g.write.targets if isinstance(g.write, gast.Assign) else [g.write.target]
        flat: list = []
        for t in targets:
            flat.extend(t.elts if isinstance(t, (gast.Tuple, gast.List)) else [t])
        indices = []
        for t in flat:
            writes_m = any(isinstance(n, gast.Name) and n.id == g.changed for n in gast.walk(t))
            if not writes_m:
                continue
            if not (isinstance(t, gast.Subscript) and isinstance(t.value, gast.Name)
                    and t.value.id == g.changed):
                return None
            if any(isinstance(n, gast.Call) for n in gast.walk(t.slice)):
                return None  # evaluated once more for the check: only plain arithmetic on names
            ix = self.index(t.slice, out) if out is not None else copy.deepcopy(t.slice)
            indices.append(self.index_expr(ix))
        return gast.Tuple(elts=indices, ctx=gast.Load()) if indices else None

    def guard_stmt(self, g: Any, out: list | None = None) -> gast.stmt | None:
        partners = [p for p in g.partners if self.info.resolve(p) is LOCAL]
        for p in partners:
            if p not in self.bound_at.get(id(g.before), self.params):
                self.none_init.add(p)
        where = f"{os.path.basename(self.info.filename)}, line {self.info.user_lineno(g.write.lineno)}"
        module = self.module_arrays()  # `y = W; y += x` changes the module's W in NumPy
        args = [name(g.changed),
                gast.Tuple(elts=[name(p) for p in partners] + [name(r) for _, r in module], ctx=gast.Load()),
                gast.Tuple(elts=[const(p) for p in partners] + [const(n) for n, _ in module],
                           ctx=gast.Load()),
                const(where)]
        in_place = self.guard_inputs and g.changed not in self.varied
        if not partners and not module and not in_place:
            return None
        if in_place:  # kept in place: never the caller's arrays
            if self.inputs_name is None:
                self.inputs_name = self.namer.unique("inputs")
            args += [name(self.inputs_name), gast.Tuple(elts=[const(p) for p in sorted(self.params)],
                                                         ctx=gast.Load())]
        regions = self.written_regions(g, out) if partners or module else None
        stmt = gast.Expr(value=call(name(self.namer.ref(refuse_shared, "refuse_shared")), args,
                                    {} if regions is None else {"regions": regions}))
        stmt.line = self.line
        return stmt

    def module_arrays(self) -> list[tuple[str, str]]:
        """(name, generated reference) of the module's and closure's arrays the function reads."""
        if getattr(self, "_module_arrays", None) is None:
            found = []
            for n, obj in sorted(self.info.free_names().items()):
                kind = type(obj)
                if kind.__name__ == "ndarray" and kind.__module__.startswith(("numpy", "cupy")):
                    found.append((n, self.global_ref(name(n), obj, n)[0].id))
            # an array default (def f(x, buf=np.zeros(4))) outlives the call too: NumPy would carry a
            # change into the next call
            fn = getattr(self.info.fn, "__func__", self.info.fn)
            params = [a.id for a in self.info.node.args.args]
            defaults = dict(zip(params[len(params) - len(fn.__defaults__ or ()):], fn.__defaults__ or (),
                                strict=True)) | dict(getattr(fn, "__kwdefaults__", None) or {})
            for p, obj in sorted(defaults.items()):
                kind = type(obj)
                if kind.__name__ == "ndarray" and kind.__module__.startswith(("numpy", "cupy")):
                    found.append((f"the default of {p}", self.namer.ref(obj, f"{p}_default")))
            self._module_arrays = found
        return self._module_arrays

    def insert_nested_guards(self, s: gast.stmt) -> None:
        """A compound statement kept as written: its checks go inside it, where they must run."""
        for part in ("body", "orelse"):
            block = getattr(s, part, None)
            if not isinstance(block, list):
                continue
            new: list = []
            for inner in block:
                for g in self.guards.get(id(inner), ()):
                    stmt = self.guard_stmt(g)
                    if stmt is not None:
                        new.append(stmt)
                for g in self.copies_before.get(id(inner), ()):
                    new.append(self.copy_stmt(g))
                self.insert_nested_guards(inner)
                new.append(inner)
            setattr(s, part, new)

    def call_write_targets(self, c: gast.Call) -> list[str]:
        """The local variables whose arrays the call `c` writes into: a ufunc's `out=`, an adapter that
        records `writes_into` (np.add.at, np.copyto, np.put), an ndarray method that changes its array
        (a.fill(v), a.sort())."""
        f = c.func
        found: list = []
        if isinstance(f, gast.Attribute) and self.resolve_chain(f.value) is LOCAL:
            if f.attr in mapping.INPLACE_METHODS:
                found.append(f.value)
        else:
            try:
                obj = self.resolve_func(f)
            except Exception:  # noqa: BLE001 -- unresolvable: the call itself reports it
                obj = None
            if isinstance(obj, np.ufunc):
                found += _ufunc_outputs(obj, c.args, {k.arg: k.value for k in c.keywords})
            if isinstance(obj, types.FunctionType) and not (obj.__module__ or "").startswith("srcgrad"):
                # a helper that writes into an argument (u = apply_bc(u)): the array passed is changed
                writes = self.argument_writes_of(obj)
                if writes:
                    bound = _bind_syntax(obj, c.args, {k.arg: k.value for k in c.keywords}) or {}
                    found += [bound.get(p) for p, w in writes.items() if not w.appends]
            adapter = mapping.lookup_function(obj) if _hashable(obj) else None
            position = getattr(adapter, "writes_into", None)
            if position is not None:
                bound = _bind_syntax(adapter, c.args, {k.arg: k.value for k in c.keywords})
                target = None if bound is None else bound.get(list(inspect.signature(adapter).parameters)[
                    position])
                found.append(target)
        out = []
        for t in found:
            while isinstance(t, (gast.Subscript, gast.Attribute)):
                t = t.value
            if isinstance(t, gast.Name):
                out.append(t.id)
        return out

    def refuse_argument_writes(self, fn: Any, args: list, kws: dict, e: Any, out: list) -> None:
        """A helper that writes into an array its caller passes (`set_first(u, k)` with `u[0] = ...`
        inside) changes the caller's array in NumPy; generated code never writes into arrays, so the
        caller would not see the change: refused, unless the call's result is assigned back to that same
        variable by the whole statement (`u = apply_bc(u)`; not `u = bc(u) + u`, whose second read sees
        the change; a second name for u is caught at run time, see call_write_targets) or the argument is
        a temporary nobody else sees. A view passed (`bc(u[:2])`) is refused the same way. A helper's
        `z *= 2.0` changes an array in place but rebinds a number: checked at run time."""
        writes = self.argument_writes_of(fn)
        if not writes:
            return
        try:
            params = list(signature_of(fn).parameters)
        except (TypeError, ValueError):
            return
        passed = dict(zip(params, args, strict=False)) | kws
        for p, w in writes.items():
            arg = passed.get(p)
            if w.appends:
                assigned_back = self.assigning is not None and self.assigning[1] is e and \
                    isinstance(arg, gast.Name) and self.assigning[0] == arg.id
                if isinstance(arg, gast.Name) and arg.id in self.lists and not assigned_back:
                    raise self.error(
                        e, f"{fn.__name__} adds items to its argument {p} ({w.source_line!r}, line "
                        f"{w.lineno}), the list {arg.id} here: srcgrad follows a list's items where the "
                        "list is made, not items a helper adds to its caller's list",
                        f"return the new item from {fn.__name__} and append it here "
                        f"({arg.id}.append({fn.__name__}(...))), or have {fn.__name__} build the list and "
                        "return it.")
                continue
            base = arg
            while isinstance(base, (gast.Subscript, gast.Attribute)):
                base = base.value
            if not isinstance(base, gast.Name) or self.info.resolve(base.id) is not LOCAL:
                continue  # a temporary (an expression's value): nobody else sees it
            assigned_back = (self.assigning is not None and self.assigning[1] is e and arg is base
                             and (self.assigning[0] == base.id
                                  or self.returned_into(fn, p, self.assigning[0], base.id)))
            if assigned_back:
                continue
            what = base.id if arg is base else f"a view of {base.id}"
            message = (f"{fn.__name__} writes into its argument {p} in place ({w.source_line!r}, line "
                       f"{w.lineno}), which changes {what} here in NumPy; srcgrad's generated code never "
                       "writes into arrays, so it would differentiate a different program")
            hint = (f"return the new array from {fn.__name__} and assign it: `{base.id} = {fn.__name__}(...)`"
                    + (f", or pass a copy ({fn.__name__}({base.id}.copy()))." if arg is base else
                       ", passing the whole array."))
            if not w.arrays_only:
                raise self.error(e, message, hint)
            check = gast.Expr(value=call(name(self.namer.ref(refuse_array_argument, "refuse_array_argument")),
                                         [self.atom(arg, out), const(message), const(hint)]))
            check.line = self.line
            out.append(check)

    def returned_into(self, fn: Any, param: str, names: Any, var: str) -> bool:
        """`ypred, state = step(w, state)` where every `return` of step is a tuple whose item at state's
        position is the parameter step wrote into: the caller takes the written array back, as with
        `state = step(state)`."""
        if not isinstance(names, tuple) or names.count(var) != 1:
            return False
        k = names.index(var)
        try:
            tree = parse_function(fn).node
        except TransformError:
            return False
        returns = [n for n in gast.walk(tree) if isinstance(n, gast.Return)]
        return bool(returns) and all(
            isinstance(r.value, gast.Tuple) and len(r.value.elts) == len(names)
            and isinstance(r.value.elts[k], gast.Name) and r.value.elts[k].id == param for r in returns)

    def argument_writes_of(self, fn: Any) -> dict:
        try:
            return argument_writes(fn)
        except TransformError:
            return {}  # no source: the call itself reports that

    def call_primitive(
        self, prim: Primitive, args: list, kws: dict, e: Any, out: list
    ) -> tuple[gast.expr, Op]:
        a = [self.atom(x, out) for x in args]
        k = {kk: self.static(v) for kk, v in kws.items()}
        op_type = _OPERATORS.get(prim.name)
        if op_type is not None and len(a) == 2 and not k:
            # np.multiply(x, y), a divide() inside an adapter: written as the operator, same primitive
            return gast.BinOp(left=a[0], op=op_type(), right=a[1]), Op("prim", prim.name, a, style="binop")
        ref = name(self.namer.ref(prim, prim.name))
        kind = "prim" if prim.differentiable else "nondiff"
        if kind == "prim" and prim.name not in _rule_names():
            kind = "opaque"
        return call(ref, a, k), Op(kind, prim.name, a, k, fn=prim)

    def static(self, e: gast.expr) -> gast.expr:
        """A static (never differentiated) keyword argument: kept as written, names resolved."""
        if isinstance(e, (gast.Constant, gast.Name)) and (
            isinstance(e, gast.Constant) or self.info.resolve(e.id) is LOCAL or e.id in self.namer.globals
        ):
            return copy.deepcopy(e)
        return self.rewrite_static(e)

    def is_list(self, x: Any) -> bool:
        """A list or tuple written in the source, or a list variable this function builds."""
        return isinstance(x, (gast.List, gast.Tuple)) or isinstance(x, gast.Name) and x.id in self.lists

    def array_item(self, x: Any, e: Any, out: list) -> gast.expr:
        """An operand NumPy reads as an array (an item of np.concatenate's sequence, an array_like
        parameter): a list there (`np.concatenate([x, [1.0]])`, `np.dot(xs, w)`) is the array NumPy makes
        of it, as np.array of it."""
        if not self.is_list(x):
            return self.atom(x, out)
        value, op = self.stack_call(np.array, [x], {}, e, out)
        tmp = self.namer.temp()
        self.emit(out, assign(tmp, value), op)
        return name(tmp)

    def joined_call(self, joins: tuple, elts: list, e: Any, out: list) -> tuple[gast.expr, Op]:
        """np.hstack / vstack / column_stack / dstack of a list or tuple literal: each operand reshaped
        to the form the function gives it (a number as a vector, a vector as a row or a column), then
        one concatenate, along the axis the first reshaped operand says; shapes are known only at run
        time, so the reshapes and the axis are static helpers of the adapter's record (`joins`)."""
        shape_of, axis_of = joins
        items = []
        for a in [self.array_item(x, e, out) for x in elts]:
            k = {"shape": call(name(self.namer.ref(shape_of, shape_of.__name__)), [a])}
            tmp = self.namer.temp()
            self.emit(out, assign(tmp, call(name(self.namer.ref(P.reshape, "reshape")), [a], k)),
                      Op("prim", "reshape", [a], k, fn=P.reshape))
            self.varied.add(tmp)
            items.append(name(tmp))
        k = {"axis": call(name(self.namer.ref(axis_of, "join_axis")), [items[0]])}
        return call(name(self.namer.ref(P.concatenate, "concatenate")), items, k), Op(
            "prim", "concatenate", items, k, fn=P.concatenate
        )

    @staticmethod
    def split_sections(args: list, kws: dict) -> int | None:
        """How many pieces `np.split(x, sections_or_indices[, axis])` gives, when the source says (an int
        constant, or a list literal of split indices); None otherwise."""
        if len(args) == 3 and "axis" not in kws:
            kws = {**kws, "axis": args[2]}
            args = args[:2]
        if len(args) == 1 and "indices_or_sections" in kws:
            args = [args[0], kws["indices_or_sections"]]
            kws = {k: v for k, v in kws.items() if k != "indices_or_sections"}
        if len(args) != 2 or set(kws) - {"axis"}:
            return None
        sec = args[1]
        if isinstance(sec, gast.Constant) and type(sec.value) is int and sec.value > 0:
            return sec.value
        if isinstance(sec, (gast.List, gast.Tuple)) and all(
            isinstance(i, gast.Constant) and type(i.value) is int for i in sec.elts
        ):
            return len(sec.elts) + 1
        return None

    def split_into(self, names: list[str], args: list, kws: dict, out: list) -> None:
        """`p, q = np.split(x, 2)` / `a, b, c = np.split(x, [1, 3], axis=1)`: one getitem per piece,
        each straight into its name (the index, from x's shape, is static)."""
        axis = args[2] if len(args) == 3 else kws.get("axis", const(0))
        sec = args[1] if len(args) > 1 else kws["indices_or_sections"]
        x = self.atom(args[0], out)
        if isinstance(x, gast.Name) and x.id in names:  # `x, y = np.split(x, 2)`: read x before writing
            tmp = self.namer.temp()
            self.emit(out, assign(tmp, x), Op("copy", args=[x]))
            x = name(tmp)
        for i, var in enumerate(names):
            index = call(name(self.namer.ref(mapping.split_index, "split_index")),
                         [x, self.static(sec), const(i), self.static(axis)])
            k = {"index": index}
            self.emit(out, assign(var, call(name(self.namer.ref(P.getitem, "getitem")), [x], k)),
                      Op("prim", "getitem", [x], k, fn=P.getitem))

    def stack_call(self, obj: Any, args: list, kws: dict, e: Any, out: list) -> tuple[gast.expr, Op]:
        """np.stack / np.array of a list literal or of a list variable built with append."""
        seq = args[0]
        if isinstance(seq, gast.Call) and self.resolve_chain(seq.func) in (builtins.tuple, builtins.list) \
                and len(seq.args) == 1 and not seq.keywords:
            seq = seq.args[0]  # np.stack(tuple(xs)): the list itself
        axis = kws.get("axis", const(0))
        if obj is not np.stack and (len(args) > 1 or set(kws) - {"dtype"}):
            return self.call_adapter_or_opaque(obj, args, kws, e, out)
        if isinstance(seq, (gast.List, gast.Tuple)):
            items = [self.array_item(x, e, out) for x in seq.elts]
            ref = name(self.namer.ref(P.stack, "stack"))
            k = {"axis": self.static(axis)}
            return call(ref, items, k), Op("prim", "stack", items, k, fn=P.stack)
        if isinstance(seq, gast.Name) and seq.id in self.lists:
            lst = name(seq.id)
            ref = name(self.namer.ref(stack_list, "stack_list"))
            k = {"axis": self.static(axis)}
            return call(ref, [lst], k), Op("stack", args=[lst], kwargs=k)
        if obj is np.stack:
            return self.call_adapter_or_opaque(obj, args, kws, e, out)
        # np.array(x) of an array: a copy (np.asarray(x): x itself, the same memory, as in NumPy)
        a = self.atom(seq, out)
        if obj is np.array:
            return self.call_primitive(P.copy, [a], {}, e, out)
        return a, Op("copy", args=[a]) if isinstance(a, gast.Name) else Op("const")

    def copy_of_list(self, lst: gast.Name, e: Any, out: list) -> tuple[gast.expr, Op]:
        """`list(xs)` of a list variable: a new list holding xs's items, written as the loop that fills it
        (each item's derivative followed as an append's is)."""
        new, item = self.namer.temp(), self.namer.temp()
        self.lists.add(new)
        append = gast.Expr(value=call(gast.Attribute(value=name(new), attr="append", ctx=gast.Load()),
                                      [name(item)]))
        self.loop_over_list(e, out, gast.Assign(targets=[name(new, store=True)], type_comment=None,
                                                value=gast.List(elts=[], ctx=gast.Load())),
                            gast.For(target=name(item, store=True), iter=name(lst.id), body=[append],
                                     orelse=[], type_comment=None))
        return name(new), Op("copy", args=[name(new)])

    def sum_of_list(self, lst: gast.Name, start: Any, e: Any, out: list) -> tuple[gast.expr, Op]:
        """Builtin `sum(xs)` of a list variable is what Python computes: `start`, then each item added in
        order (items of different shapes broadcast; an empty list gives `start`), written as that loop."""
        total, item = self.namer.temp(), self.namer.temp()
        add = gast.Assign(targets=[name(total, store=True)], type_comment=None,
                          value=gast.BinOp(left=name(total), op=gast.Add(), right=name(item)))
        self.loop_over_list(e, out, gast.Assign(targets=[name(total, store=True)], value=start,
                                                type_comment=None),
                            gast.For(target=name(item, store=True), iter=name(lst.id), body=[add], orelse=[],
                                     type_comment=None))
        return name(total), Op("copy", args=[name(total)])

    def loop_over_list(self, e: Any, out: list, first: gast.stmt, loop: gast.For) -> None:
        """Normalize `first` then `loop`, statements written for the user's expression `e` (its line)."""
        for st in (first, loop, *loop.body):
            gast.copy_location(st, e)
            gast.fix_missing_locations(st)
        self.stmt(first, out, False)
        self.stmt(loop, out, False)

    def concatenate_call(self, seq: Any, kws: dict, e: Any, out: list) -> tuple[gast.expr, Op] | None:
        """np.concatenate / torch.cat of one sequence with one axis (`axis=k` or `dim=k`): a list written in
        the call is the variadic primitive on its arrays, a list variable this function builds is joined
        as a list (`concatenate_list`); anything else is refused, saying what to write. None: other
        keywords (axis=None, out=), which the adapter reads."""
        axis = next(iter(kws.values()), const(0))
        if len(kws) > 1 or not set(kws) <= {"axis", "dim"} or (isinstance(axis, gast.Constant)
                                                              and axis.value is None):
            return None
        if isinstance(seq, (gast.List, gast.Tuple)):
            items = [self.array_item(x, e, out) for x in seq.elts]
            k = {"axis": self.static(axis)}
            return call(name(self.namer.ref(P.concatenate, "concatenate")), items, k), Op(
                "prim", "concatenate", items, k, fn=P.concatenate)
        if isinstance(seq, gast.Name) and seq.id in self.lists:
            return self.concatenate_list(seq, axis, out)
        raise self.error(
            e, "srcgrad joins with np.concatenate a list written in the call or a list variable this "
            "function builds; this argument is neither (a parameter, a slice or sum of lists, a list "
            "held in another)",
            "build the list in this function (parts = [...], or parts.append(...)) and pass it, or "
            "write the pieces in the call: np.concatenate([a, b], axis=k).")

    def concatenate_list(self, lst: gast.Name, axis: Any, out: list) -> tuple[gast.expr, Op]:
        """np.concatenate(parts, axis) / torch.cat(parts, dim) of a list variable: the pieces' lengths
        along the axis, read at the join (its adjoint cuts the cotangent back at them), then the join,
        an operation on the list as np.stack of it is."""
        k = {"axis": self.static(axis)}
        sizes = self.namer.temp()
        self.emit(out, assign(sizes, call(name(self.namer.ref(piece_sizes, "piece_sizes")), [name(lst.id)],
                                          {"axis": copy.deepcopy(k["axis"])})),
                  Op("nondiff", args=[name(lst.id)]))
        k["sizes"] = name(sizes)
        ref = name(self.namer.ref(concatenate_list, "concatenate_list"))
        return call(ref, [name(lst.id)], k), Op("stack", args=[name(lst.id)], kwargs=k)

    def ufunc_into(self, uf: np.ufunc, args: list, kws: dict, e: Any, out: list) -> tuple[gast.expr, Op]:
        """`np.exp(z, out=z)`, `np.add(a, b, z)`: the result, then written into the output variable the
        way a subscript store is (`z[...] = result`: z keeps its shape and dtype)."""
        (target,) = _ufunc_outputs(uf, args, kws) or [None]
        if not (isinstance(target, gast.Name) and self.info.resolve(target.id) is LOCAL):
            raise self.error(e, f"srcgrad takes np.{uf.__name__}(..., out=...) only with a local variable as "
                             "out", f"write `z = np.{uf.__name__}(...)` instead.")
        inputs = list(args[:uf.nin])
        rest = {k: v for k, v in kws.items() if k != "out"}
        value = self.atom_of_call(uf, inputs, rest, e, out)
        self.setitem_atoms(target, const(Ellipsis), value, out, e)
        return name(target.id), Op("copy", args=[name(target.id)])

    def result_into(self, obj: Any, args: list, kws: dict, e: Any, out: list) -> tuple[gast.expr, Op]:
        """A NumPy function's `out=` array: the result computed, then stored into it as `out[...] = r`
        would (its shape and dtype kept)."""
        target = kws["out"]
        if not (isinstance(target, gast.Name) and self.info.resolve(target.id) is LOCAL):
            raise self.error(e, f"srcgrad takes out= only with a local array variable ({_spelling(obj)})",
                             "assign the result instead: `c = ...`.")
        value = self.atom_of_call(obj, args, {k: v for k, v in kws.items() if k != "out"}, e, out)
        self.setitem_atoms(target, const(Ellipsis), value, out, e)
        return name(target.id), Op("copy", args=[name(target.id)])

    def atom_of_call(self, obj: Any, args: list, kws: dict, e: Any, out: list, adapter: bool = False
                     ) -> gast.expr:
        rhs, op = (self.call_adapter(obj, list(args), kws, e, out) if adapter
                   else self.call_object(obj, args, kws, e, out))
        if is_atom(rhs) and op.kind in ("copy", "const"):
            return rhs
        tmp = self.namer.temp()
        self.emit(out, assign(tmp, rhs), op)
        return name(tmp)

    def call_writing(self, adapter: Any, args: list, kws: dict, e: Any, out: list,
                     original: Any) -> tuple[gast.expr, Op]:
        """A call that writes into one of its arguments (np.add.at(a, i, v), np.copyto(a, v), a.fill(v)):
        the adapter computes the new array, and the variable that named the old one is rebound to it."""
        bound = _bind_syntax(adapter, args, kws)
        what = original if isinstance(original, str) else _spelling(original)
        if bound is None:
            raise self.error(e, f"bad arguments for {what}")
        target = bound.get(list(inspect.signature(adapter).parameters)[adapter.writes_into])
        if not (isinstance(target, gast.Name) and self.info.resolve(target.id) is LOCAL) \
                or target.id in self.lists:
            raise self.error(e, f"srcgrad takes {what} only when the array it writes into is a local "
                             "array variable", "name the array first: `a = ...`, then call it on a.")
        value = self.atom_of_call(adapter, args, kws, e, out, adapter=True)
        self.emit(out, assign(target.id, value), Op("copy", args=[value]))
        if adapter.returns_target:
            return name(target.id), Op("copy", args=[name(target.id)])
        return const(None), Op("const")

    def call_adapter_or_opaque(self, obj, args, kws, e, out):
        adapter = mapping.lookup_function(obj)
        if adapter is not None:
            return self.call_adapter(adapter, list(args), kws, e, out, original=obj)
        a = [self.atom(x, out) for x in args]
        ref = name(self.namer.ref(obj, getattr(obj, "__name__", "fn")))
        return call(ref, a), Op("opaque", args=a, fn=obj)

    def call_adapter(
        self, adapter: Any, args: list, kws: dict, e: Any, out: list, original: Any = None
    ) -> tuple[gast.expr, Op]:
        if _takes_floats(original, adapter) and not kws:
            # math.exp(x) is math.exp(float(x)): the function converts its arguments first, so what it
            # returns, and all that follows from it, is a Python float even where x is a NumPy scalar
            ref = self.namer.ref(float, "float")
            args = [gast.copy_location(gast.Call(func=name(ref), args=[a], keywords=[]), e) for a in args]
        if isinstance(adapter, Primitive):
            return self.call_primitive(adapter, args, kws, e, out)
        return self.inline_adapter(adapter, args, kws, e, out, original)

    def inline_adapter(
        self, adapter: Any, args: list, kws: dict, e: Any, out: list, original: Any = None
    ) -> tuple[gast.expr, Op]:
        """Inline a one-expression mapping adapter; otherwise call it as a user function."""
        args = list(args)
        if getattr(adapter, "pairwise", False) and len(args) > 2 and original is not None and not kws:
            # max(a, b, c) is max(max(a, b), c): the adapter takes two, the rest fold from the left
            inner = gast.Call(func=name(self.namer.ref(original, getattr(original, "__name__", "fn"))),
                              args=args[:-1], keywords=[])
            args = [gast.copy_location(inner, e), args[-1]]
        sequences = _array_sequence_positions(adapter)
        for i, x in enumerate(args):
            listed = isinstance(x, gast.List) or (isinstance(x, gast.Tuple) and i in sequences)
            if listed and x.elts and not all(is_atom(v) and isinstance(
                    v, gast.Constant) for v in x.elts):
                # np.column_stack([a, b ** 2]): the list named first, as if the user had (an adapter's
                # parameter may be read several times); a tuple stays a tuple (np.add.at(R, (i, j), v)
                # indexes with it, where a list of arrays would be one fancy index) unless the adapter
                # says the parameter is a sequence of arrays (`array_sequences`: np.column_stack((a, b)))
                tmp = self.namer.temp()
                self.assign_to(tmp, gast.List(elts=[], ctx=gast.Load()), out)
                for item in x.elts:
                    append = gast.Attribute(value=name(tmp), attr="append", ctx=gast.Load())
                    self.expr_stmt(gast.copy_location(gast.Expr(value=call(append, [item])), x), out)
                args[i] = name(tmp)
        atoms = [self.atom(x, out) for x in args]
        katoms = {
            k: (self.atom(v, out) if not _is_static_syntax(v) else self.static(v)) for k, v in kws.items()
        }
        body = _adapter_expression(adapter)
        if body is None:
            a = atoms
            k = katoms
            target = adapter
            ref = name(self.namer.ref(target, getattr(target, "__name__", "adapter")))
            return call(ref, a, k), Op(
                "call", args=a + list(k.values()), fn=target, kwargs={"__pos__": len(a), "__kw__": list(k)}
            )
        params, expr, ns = body
        try:
            bound = inspect.signature(adapter).bind(*atoms, **katoms)
        except TypeError as exc:
            raise self.error(
                e, f"bad arguments for {getattr(original or adapter, '__name__', 'call')}: {exc}"
            ) from None
        bound.apply_defaults()
        env: dict[str, gast.expr] = {}
        for p, v in bound.arguments.items():
            kind = inspect.signature(adapter).parameters[p].kind
            if kind == inspect.Parameter.VAR_POSITIONAL:
                env[p] = gast.Tuple(elts=list(v), ctx=gast.Load())
            elif kind == inspect.Parameter.VAR_KEYWORD:
                if v:
                    return self._adapter_as_call(adapter, atoms, katoms)
                env[p] = gast.Dict(keys=[], values=[])
            elif isinstance(v, gast.AST):
                env[p] = v
            else:
                node = to_node(v)
                if node is None:
                    return self._adapter_as_call(adapter, atoms, katoms)
                env[p] = node
        inlined = _Inline(env, ns, self).visit(copy.deepcopy(expr))
        inlined = _fold(inlined, self.namer)
        return self.rhs_resolved(inlined, out, e)

    def _adapter_as_call(self, adapter, atoms, katoms):
        ref = name(self.namer.ref(adapter, getattr(adapter, "__name__", "adapter")))
        return call(ref, atoms, katoms), Op(
            "call",
            args=atoms + list(katoms.values()),
            fn=adapter,
            kwargs={"__pos__": len(atoms), "__kw__": list(katoms)},
        )

    def rhs_resolved(self, e: gast.expr, out: list, origin: Any) -> tuple[gast.expr, Op]:
        """Normalize an inlined adapter body: its calls are references the namer already knows."""
        if (
            isinstance(e, gast.Call)
            and isinstance(e.func, gast.Name)
            and e.func.id in self.namer.globals
            and self.info.resolve(e.func.id) is not LOCAL
        ):
            obj = self.namer.globals[e.func.id]
            if isinstance(obj, Primitive):
                a = [self.atom_resolved(x, out, origin) for x in e.args]
                k = {kw.arg: kw.value for kw in e.keywords}
                op_type = _OPERATORS.get(obj.name)
                if op_type is not None and len(a) == 2 and not k:
                    return gast.BinOp(left=a[0], op=op_type(), right=a[1]), Op(
                        "prim", obj.name, a, style="binop"
                    )
                kind = (
                    "prim"
                    if obj.differentiable and obj.name in _rule_names()
                    else ("nondiff" if not obj.differentiable else "opaque")
                )
                return call(name(e.func.id), a, k), Op(kind, obj.name, a, k, fn=obj)
            return self.call_object(obj, list(e.args), {kw.arg: kw.value for kw in e.keywords}, origin, out)
        return self.rhs(e, out)

    def atom_resolved(self, e: gast.expr, out: list, origin: Any) -> gast.expr:
        if is_atom(e):
            return e
        rhs, op = self.rhs_resolved(e, out, origin)
        if is_atom(rhs) and op.kind in ("copy", "const"):
            return rhs
        tmp = self.namer.temp()
        self.emit(out, assign(tmp, rhs), op)
        return name(tmp)


def _zip_strictness(c: gast.Call) -> bool | None:
    """zip's `strict=` keyword as a constant (False when absent); None when the call has other keywords
    or a strictness held in a variable."""
    if not c.keywords:
        return False
    if len(c.keywords) == 1 and c.keywords[0].arg == "strict" \
            and isinstance(c.keywords[0].value, gast.Constant):
        return bool(c.keywords[0].value.value)
    return None


class Verbatim(gast.stmt):
    """Inactive user statements kept as written (a loop over shapes, a comprehension of axes)."""

    _fields = ("body",)

    def __init__(self, body: list | None = None):
        super().__init__()
        self.body = body or []
        self.targets: list[str] = []


def _has_list_ref(e: Any, lists: set[str]) -> bool:
    return any(isinstance(n, gast.Name) and n.id in lists for n in gast.walk(e))


def _is_nondiff_callable(obj: Any) -> bool:
    if isinstance(obj, Primitive):
        return not obj.differentiable
    if not _hashable(obj):
        return False
    if obj in NONDIFF_BUILTINS or obj in _runtime_nondiff():
        return True
    adapter = mapping.lookup_function(obj)
    return isinstance(adapter, Primitive) and not adapter.differentiable


def _escapes(loop: Any) -> bool:
    """Does a return, or a break/continue of an enclosing loop, occur inside `loop`?"""

    def walk(block: list, depth: int) -> bool:
        for s in block:
            if isinstance(s, gast.Return):
                return True
            if isinstance(s, (gast.Break, gast.Continue)) and depth == 0:
                return True
            if isinstance(s, gast.If) and (walk(s.body, depth) or walk(s.orelse, depth)):
                return True
            if isinstance(s, (gast.For, gast.While)) and walk(s.body, depth + 1):
                return True
        return False

    return walk(loop.body, 1)


def _mutated_in(block: list) -> set[str]:
    out: set[str] = set()
    for s in block:
        for n in gast.walk(s):
            if isinstance(n, gast.Subscript) and isinstance(n.ctx, gast.Store):
                base = n.value
                while isinstance(base, gast.Subscript):
                    base = base.value
                if isinstance(base, gast.Name):
                    out.add(base.id)
    return out


def _is_static_syntax(e: gast.expr) -> bool:
    if isinstance(e, gast.Constant):
        return True
    if isinstance(e, gast.Tuple):
        return all(_is_static_syntax(x) for x in e.elts)
    return False



def _dotted(e: gast.expr) -> str:
    if isinstance(e, gast.Name):
        return e.id
    if isinstance(e, gast.Attribute):
        return _dotted(e.value) + "." + e.attr
    return "<expression>"


def _assigned_in(block: list) -> set[str]:
    out: set[str] = set()
    for s in block:
        for n in gast.walk(s):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store):
                out.add(n.id)
    return out


def _contains_nonfinal_return(body: list) -> bool:
    returns = [n for n in gast.walk(gast.Module(body=body, type_ignores=[])) if isinstance(n, gast.Return)]
    return len(returns) > 1 or (len(returns) == 1 and body[-1] is not returns[0])


_RULE_NAMES: set[str] | None = None


def _rule_names() -> set[str]:
    global _RULE_NAMES
    if _RULE_NAMES is None:
        from srcgrad.templates import table

        _RULE_NAMES = set(table())
    return _RULE_NAMES


# ------------------------------------------------------------------------------------ adapter inlining
_ADAPTER_CACHE: dict[Any, Any] = {}


def _adapter_expression(adapter: Any) -> tuple[list[str], gast.expr, dict] | None:
    """(parameters, returned expression, globals) of a one-expression `def` adapter, else None."""
    key = adapter
    if key in _ADAPTER_CACHE:
        return _ADAPTER_CACHE[key]
    result = None
    fn = adapter
    if isinstance(fn, types.FunctionType) and fn.__name__ != "<lambda>":
        try:
            src = textwrap.dedent(inspect.getsource(fn))
            node = gast.parse(src).body[0]
            body = node.body
            if body and isinstance(body[0], gast.Expr) and isinstance(body[0].value, gast.Constant):
                body = body[1:]
            if len(body) == 1 and isinstance(body[0], gast.Return) and body[0].value is not None:
                params = [a.id for a in node.args.args + node.args.kwonlyargs]
                result = (params, body[0].value, fn.__globals__)
        except (OSError, TypeError, SyntaxError):
            result = None
    _ADAPTER_CACHE[key] = result
    return result


class _Inline(gast.NodeTransformer):
    """Substitute an adapter's parameters; bind its other names to references."""

    def __init__(self, env: dict, ns: dict, norm: Normalizer):
        self.env, self.ns, self.norm = env, ns, norm

    def visit_Name(self, node: gast.Name) -> gast.expr:
        if node.id in self.env:
            return copy.deepcopy(self.env[node.id])
        obj = self.ns.get(node.id, getattr(builtins, node.id, UNBOUND))
        if obj is UNBOUND:
            raise NameError(node.id)
        return name(
            self.norm.namer.ref(
                obj, getattr(obj, "__name__", node.id) if not isinstance(obj, types.ModuleType) else node.id
            )
        )

    def visit_Attribute(self, node: gast.Attribute) -> gast.expr:
        chain = []
        cur: Any = node
        while isinstance(cur, gast.Attribute):
            chain.append(cur.attr)
            cur = cur.value
        if isinstance(cur, gast.Name) and cur.id not in self.env:
            obj = self.ns.get(cur.id, getattr(builtins, cur.id, UNBOUND))
            for a in reversed(chain):
                obj = getattr(obj, a, UNBOUND)
            if obj is not UNBOUND:
                pref = obj.name if isinstance(obj, Primitive) else chain[0]
                return name(self.norm.namer.ref(obj, pref))
        self.generic_visit(node)
        return node


def _fold(e: gast.expr, namer: Namer) -> gast.expr:
    """Evaluate, at transform time, the parts of an inlined adapter whose inputs are all constants."""

    class Fold(gast.NodeTransformer):
        def generic_visit(self, node):  # noqa: ANN001
            super().generic_visit(node)
            return node

        def visit_BoolOp(self, node):  # noqa: ANN001
            self.generic_visit(node)
            if all(isinstance(v, gast.Constant) for v in node.values):
                vals = [v.value for v in node.values]
                if isinstance(node.op, gast.Or):
                    r = next((v for v in vals if v), vals[-1])
                else:
                    r = next((v for v in vals if not v), vals[-1])
                return const(r)
            return node

        def visit_IfExp(self, node):  # noqa: ANN001
            self.generic_visit(node)
            if isinstance(node.test, gast.Constant):
                return node.body if node.test.value else node.orelse
            return node

        def visit_Compare(self, node):  # noqa: ANN001
            self.generic_visit(node)
            if (
                isinstance(node.left, gast.Constant)
                and len(node.ops) == 1
                and isinstance(node.comparators[0], gast.Constant)
                and isinstance(node.ops[0], (gast.Is, gast.IsNot))
            ):
                r = node.left.value is node.comparators[0].value
                return const(r if isinstance(node.ops[0], gast.Is) else not r)
            return node

        def visit_Call(self, node):  # noqa: ANN001
            self.generic_visit(node)
            if isinstance(node.func, gast.Name) and node.func.id in namer.globals:
                obj = namer.globals[node.func.id]
                if isinstance(obj, Primitive) or obj in (range, len):
                    return node
                if (
                    all(_is_static_syntax(a) for a in node.args)
                    and all(_is_static_syntax(k.value) for k in node.keywords)
                    and callable(obj)
                ):
                    try:
                        args = [gast.literal_eval(a) for a in node.args]
                        kws = {k.arg: gast.literal_eval(k.value) for k in node.keywords}
                        value = obj(*args, **kws)
                    except Exception:
                        return node
                    folded = to_node(value)
                    if folded is not None:
                        return folded
            return node

    return Fold().visit(e)


# ------------------------------------------------------------------------------------ runtime helpers
from srcgrad.runtime.stack import (  # noqa: E402
    concatenate_list,
    detach,
    piece_sizes,
    same_lengths,
    stack_list,
)


def _runtime_nondiff() -> set:
    """Helpers of generated code whose result carries no derivative (for transforms of generated code)."""
    return P.runtime_nondiff() | {refuse_shared, passed_arrays, refuse_array_argument}


_NAMED_RESULTS: dict = {}


def _array_sequence_positions(adapter: Any) -> set[int]:
    """The positions of an adapter's parameters that take a sequence of arrays (its `array_sequences`
    fact), where a tuple literal is read like a list."""
    names = getattr(adapter, "array_sequences", ())
    if not names:
        return set()
    params = list(inspect.signature(adapter).parameters)
    return {params.index(n) for n in names if n in params}


def _named_result(adapter: Any, by_default: bool = False) -> tuple[str, ...] | None:
    """The fields of the named tuple `adapter` returns (read from its `return Result(...)` statements),
    or None where it returns anything else. `by_default`: also `return Result(...) if flag else x`, the
    named tuple being what the adapter returns with its default arguments."""
    if not isinstance(adapter, types.FunctionType):
        return None
    if by_default:
        try:
            tree = gast.parse(textwrap.dedent(inspect.getsource(adapter)))
        except (OSError, TypeError, SyntaxError):
            return None
        returns = [n.value for n in gast.walk(tree) if isinstance(n, gast.Return)]
        if len(returns) == 1 and isinstance(returns[0], gast.IfExp) \
                and isinstance(returns[0].body, gast.Call) and isinstance(returns[0].body.func, gast.Name):
            cls = adapter.__globals__.get(returns[0].body.func.id)
            if isinstance(cls, type) and hasattr(cls, "_fields"):
                return tuple(cls._fields)
        return None
    if adapter not in _NAMED_RESULTS:
        found = None
        try:
            tree = gast.parse(textwrap.dedent(inspect.getsource(adapter)))
        except (OSError, TypeError, SyntaxError):
            tree = None
        returns = [n for n in gast.walk(tree) if isinstance(n, gast.Return)] if tree is not None else []
        kinds = set()
        for r in returns:
            f = r.value.func if isinstance(r.value, gast.Call) else None
            cls = adapter.__globals__.get(f.id) if isinstance(f, gast.Name) else None
            kinds.add(tuple(cls._fields) if isinstance(cls, type) and hasattr(cls, "_fields") else None)
        if len(kinds) == 1:
            found = kinds.pop()
        _NAMED_RESULTS[adapter] = found
    return _NAMED_RESULTS[adapter]


def _runtime_list_maker() -> Any:
    from srcgrad.runtime.stack import zeros_list

    return zeros_list


def _runtime_stack() -> Any:
    from srcgrad.runtime.stack import Stack

    return Stack


def _param_names(fn: gast.FunctionDef) -> set[str]:
    a = fn.args
    names = [p.id for p in a.posonlyargs + a.args + a.kwonlyargs]
    names += [p.id for p in (a.vararg, a.kwarg) if p is not None]
    return set(names)


def _ufunc_outputs(uf: np.ufunc, args: list, kws: dict) -> list:
    """The expressions a ufunc call writes its result into: `out=` (an array or a one-element tuple) or
    the positional arguments after its inputs (`np.exp(z, z)`)."""
    outs = list(args[uf.nin:])
    if "out" in kws:
        o = kws["out"]
        outs += list(o.elts) if isinstance(o, gast.Tuple) else [o]
    return [o for o in outs if not (isinstance(o, gast.Constant) and o.value is None)]


def _bind_syntax(adapter: Any, args: list, kws: dict) -> dict | None:
    """The call's argument expressions by the adapter's parameter names (adapters take their arguments
    exactly as NumPy does), or None where they do not bind."""
    try:
        return dict(inspect.signature(adapter).bind(*args, **kws).arguments)
    except TypeError:
        return None


def _spelling(obj: Any) -> str:
    """How users write a NumPy callable: np.add.at, np.copyto."""
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, np.ufunc):
        return f"np.{owner.__name__}.{obj.__name__}"
    return f"np.{getattr(obj, '__name__', 'function')}"


def _is_library(module: Any) -> bool:
    """NumPy, math and the standard library: modules whose functions and constants users do not rebind,
    so generated code may resolve them once (a user's own module is read again, see parse.record)."""
    if not isinstance(module, types.ModuleType):
        return False
    root = module.__name__.split(".")[0]
    return root in _LIBRARY_ROOTS or root in sys.stdlib_module_names


_LIBRARY_ROOTS = frozenset({"numpy", "cupy", "scipy", "srcgrad", "torch", "jax", "dask", "builtins"})
