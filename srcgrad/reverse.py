"""Stage 4: the reverse-mode transform of normalized code.

Given a normalized body, the active variables and the parameters to differentiate, `Reverse` builds

- the **forward sweep**: the primal statements, plus what the adjoint needs recorded on a `Stack`: the
  old value of a variable just before a statement overwrites it (only for variables some adjoint reads),
  and trip counts of loops that `break` or are `while` loops. Branch decisions and ranges are ordinary
  variables (`_c1`, `_r1`), saved by the same rule when a loop overwrites them.
- the **adjoint sweep**: statements in reverse order; each assignment's adjoint is its primitive's rule
  from runtime/rules.py, inlined (templates.instantiate); `if` replays the recorded decision; loops run
  backwards (`for i in reversed(_r1)`, or `for _ in range(_n1)` for a counted loop). After the adjoint of a
  statement that overwrote a saved variable, the old value is popped back, so every adjoint reads exactly
  the values its statement saw.

Adjoint variables are never zero-initialised when that can be avoided: the transform tracks which adjoints
hold a value; the first contribution assigns (`bx = ...`), later ones add (`bx = bx + ...`), and an adjoint
with no value contributes nothing. Zeros appear only where control flow joins paths that disagree (end of
a branch, entry of an adjoint loop), which is the only place a reader would otherwise see an undefined name.

The adjoint is first generated with `Restore` placeholders, then pruned: a placeholder survives only if
an adjoint statement that runs after it reads its variable (before another restore sets it again) and
the forward statement really overwrites a value; control structures
survive only if something inside them does. Then the forward sweep is instrumented with the matching
pushes, so nothing is recorded that the adjoint does not read.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import gast

from srcgrad.analysis import diff_operands, iter_stmts, targets_of
from srcgrad.codegen import Comment
from srcgrad.errors import located
from srcgrad.names import Namer
from srcgrad.normalize import assign, call, const, name
from srcgrad.parse import FunctionInfo, signature_of
from srcgrad.runtime import stack as rt_stack
from srcgrad.runtime.primitives import UNDECLARED
from srcgrad.templates import instantiate, table


class Restore(gast.stmt):
    """Placeholder in the adjoint: pop `var`'s value from before forward statement `src` overwrote it."""

    _fields = ("var",)

    def __init__(self, var: str = "", src: Any = None):
        super().__init__()
        self.var = var
        self.src = src


class Push(gast.stmt):
    _fields = ("var",)


@dataclass
class State:
    init: set[str] = field(default_factory=set)  # primal names whose adjoint currently holds a value


@dataclass
class CalleeRequest:
    """What the forward/adjoint of a call to a user function needs from the builder."""

    fn: Any
    wrt: tuple[str, ...]
    fwd: str = ""
    adj: str = ""
    signature: tuple = ()  # the facts of its parameters at the calls it serves (srcgrad.facts)


class Reverse:
    def __init__(
        self,
        info: FunctionInfo,
        body: list,
        namer: Namer,
        wrt: list[str],
        active: set[str],
        scalars: set[str],
        request_callee: Callable[[Any, tuple[str, ...], Any], CalleeRequest],
    ):
        self.info = info
        self.body = body
        self.numbers: set[str] = set(scalars)  # names that always hold one number (facts: NumPy scalars too)
        self.namer = namer
        self.wrt = wrt
        self.active = active
        self.scalars = scalars
        self.request_callee = request_callee
        self.zero_reset: set[str] = set()
        self.stack_name = "_stack"
        self.stack_used = False
        self.loops: list[Any] = []
        self.callsites: list[tuple[Any, CalleeRequest]] = []

    # ---------------------------------------------------------------------------------------- names
    def adj(self, var: str) -> str:
        return self.namer.adjoint(var)

    def ref(self, obj: Any, preferred: str) -> str:
        return self.namer.ref(obj, preferred)

    def error(self, node: Any, msg: str, hint: str | None = None) -> Exception:
        loc = gast.Pass()
        loc.lineno = getattr(node, "line", getattr(node, "lineno", None))
        return located(self.info, loc, msg, hint)

    # ------------------------------------------------------------------------------------- adjoint
    def tag(self, stmts: list, line: Any) -> list:
        for s in stmts:
            if getattr(s, "line", None) is None:
                s.line = line
        return stmts

    lists: set[str] = frozenset()
    read_lists: set[str] = frozenset()  # lists read by index (their appends are undone in the adjoint)

    def zeros(self, var: str) -> gast.expr:
        if var in self.scalars:
            return const(0.0)
        if var in self.lists:
            return call(name(self.ref(rt_stack.zeros_list, "zeros_list")), [name(var)])
        return call(name(self.ref(rt_stack.zeros_as, "zeros_as")), [name(var)])

    def zero_init(self, var: str, line: Any) -> gast.stmt:
        s = assign(self.adj(var), self.zeros(var))
        s.line = line
        return s

    def simplify(self, e: gast.expr) -> gast.expr:
        return e

    def accumulate(self, var: str, expr: gast.expr, st: State, out: list, line: Any) -> None:
        b = self.adj(var)
        expr = self.simplify(expr)
        if var in st.init:
            s = assign(b, gast.BinOp(left=name(b), op=gast.Add(), right=expr))
        else:
            s = assign(b, expr)
            st.init.add(var)
        s.line = line
        out.append(s)

    def block(self, stmts: list, st: State) -> list:
        out: list = []
        for s in reversed(stmts):
            out.extend(self.stmt(s, st))
        return out

    def refuse_opaque(self, s: Any, op: Any) -> None:
        """An operation with no rule and no source that a derivative must flow through: one name or
        several (`sign, logdet = np.linalg.slogdet(A)`), never a silent zero."""
        what = getattr(op.fn, "__name__", None) or getattr(op, "label", None) or "this operation"
        if what.startswith("the method"):
            raise self.error(
                s,
                f"srcgrad cannot follow {what} called on a local value (a parameter such as self): "
                "it does not know that object's class when it transforms",
                "call a module-level function, or the method on a module-level object "
                "(model.forward(x)), whose source srcgrad then transforms.",
            )
        raise self.error(
            s,
            f"srcgrad has no derivative for {what} (no rule, and no Python source to transform)",
            "write it with numpy functions or operators that have rules, or detach "
            "the value (.data / .detach()) if no gradient should flow through it.",
        )

    def refuse_opaque_in_order(self, body: list, varied: set[str] = frozenset()) -> None:
        """Report the first operation without a rule in the order the user wrote them (the adjoint meets
        them last to first: `F.real` after `F = np.fft.rfft(x)` would be named instead of rfft). A call
        the compiler cannot follow, given a differentiated value and its result dropped
        (`self.forward(x)` that stores what it computes on self), is refused too: what it does with the
        value may reach the output by a way no derivative follows."""
        for s in iter_stmts(body):
            op = getattr(s, "op", None)
            if op is not None and op.kind == "opaque" and any(t in self.active for t in targets_of(s)) \
                    and any(n in self.active for _, n in diff_operands(op)):
                self.refuse_opaque(s, op)
            if op is not None and op.kind == "opaque" and isinstance(s, gast.Expr) \
                    and any(n in varied for _, n in diff_operands(op)):
                self.refuse_opaque(s, op)

    def stmt(self, s: gast.stmt, st: State) -> list:
        if isinstance(s, gast.If):
            return self.if_(s, st)
        if isinstance(s, (gast.For, gast.While)):
            return self.loop(s, st)
        op = getattr(s, "op", None)
        if op is None:
            return []
        line = getattr(s, "line", None)
        out: list = []
        targets = targets_of(s)
        if op.kind == "append":
            lst, item = op.args
            if lst.id not in self.active:
                return out
            if lst.id in st.init:
                pop = call(gast.Attribute(value=name(self.adj(lst.id)), attr="pop", ctx=gast.Load()), [])
                if isinstance(item, gast.Name) and item.id in self.active:
                    self.accumulate(item.id, pop, st, out, line)
                    out[-1].impure = True  # the pop must happen even if nothing reads the value
                else:
                    drop = gast.Expr(value=pop)
                    drop.line = line
                    out.append(drop)
            if lst.id not in self.read_lists:
                return out
            # undo the append, so reads like xs[-1] see the list as it was
            undo = gast.Expr(value=call(gast.Attribute(value=name(lst.id), attr="pop", ctx=gast.Load()), []))
            undo.line = line
            undo.list_undo = lst.id
            out.append(undo)
            return out
        if op.kind == "list_pop":
            # v = stack.pop() (differentiating generated code): the cotangent of v goes back on a cotangent
            # stack, which the adjoint of the matching push pops (kept aligned even when it is zero)
            v = targets[0]
            lst = op.args[0].id
            if lst in self.active:
                g = name(self.adj(v)) if v in st.init else self.zeros(v)
                pushg = gast.Expr(
                    value=call(gast.Attribute(value=name(self.adj(lst)), attr="append", ctx=gast.Load()), [g])
                )
                pushg.line = line
                out.append(pushg)
                if v in self.active:
                    self.reset(v, st, out, line)
            r = Restore(v, s)
            r.line = line
            out.append(r)
            return out
        if op.kind == "list_get" and targets and targets[0] in self.active:
            v = targets[0]
            lst = op.args[0].id
            if v in st.init:
                if lst not in st.init:
                    z = assign(
                        self.adj(lst), call(name(self.ref(rt_stack.zeros_list, "zeros_list")), [name(lst)])
                    )
                    z.line = line
                    out.append(z)
                    st.init.add(lst)
                ix = copy.deepcopy(op.kwargs["index"])
                cell = gast.Subscript(value=name(self.adj(lst)), slice=ix, ctx=gast.Store())
                cur = gast.Subscript(value=name(self.adj(lst)), slice=copy.deepcopy(ix), ctx=gast.Load())
                upd = assign(cell, gast.BinOp(left=cur, op=gast.Add(), right=name(self.adj(v))))
                upd.line = line
                upd.impure = True
                out.append(upd)
                self.reset(v, st, out, line)
            r = Restore(v, s)
            r.line = line
            out.append(r)
            return out
        if (
            op.kind == "pack"
            and isinstance(s.value, (gast.List, gast.Tuple))
            and targets
            and targets[0] in self.active
        ):
            lst = targets[0]
            held = [a.id for a in op.args if isinstance(a, gast.Name) and a.id in self.lists
                    and a.id in self.active]
            if held:
                raise self.error(
                    s,
                    f"srcgrad does not differentiate a tuple or list holding the list {held[0]} yet",
                    f"unpack the call's result into names where it is made ({', '.join(held)}, ... = "
                    "helper(...)), with the helper nested in the function (srcgrad inlines it), or return "
                    "np.stack of each list.",
                )
            if lst in st.init:
                for i, a in enumerate(op.args):
                    if isinstance(a, gast.Name) and a.id in self.active:
                        e = gast.Subscript(value=name(self.adj(lst)), slice=const(i), ctx=gast.Load())
                        self.accumulate(a.id, e, st, out, line)
            # the tuple's earlier value (a loop's previous iteration) starts with a zero adjoint
            self.reset(lst, st, out, line)
            r = Restore(lst, s)
            r.line = line
            out.append(r)
            return out
        if op.kind == "list" and targets and targets[0] in self.active:
            st.init.discard(targets[0])
        if (op.kind in ("call", "opaque") or op.kind in ("nondiff", "const") and len(targets) > 1) \
                and not any(n in self.active for _, n in diff_operands(op)):
            for t in targets:  # a constant as far as derivatives go (np.zeros(n))
                self.reset(t, st, out, line) if t in self.active else None
                r = Restore(t, s)
                r.line = line
                out.append(r)
            return out
        if op.kind == "opaque" and any(t in self.active for t in targets):
            self.refuse_opaque(s, op)
        if op.kind == "call" and any(t in self.active for t in targets):
            out.extend(self.callsite(s, st))
        elif len(targets) == 1 and targets[0] in self.active:
            v = targets[0]
            if op.kind in ("pack", "unpack"):
                raise self.error(
                    s,
                    "srcgrad does not differentiate through tuple or list values yet",
                    "unpack into separate variables (a, b = f(x)) or return them directly.",
                )
            self_ref = op.kind == "prim" and any(isinstance(a, gast.Name) and a.id == v for a in op.args)
            if v in st.init:
                out.extend(self.contributions(s, v, op, st, line, self_ref))
                if self_ref:
                    return out  # the restore was placed before the contributions
            elif self_ref:
                r = Restore(v, s)
                r.line = line
                out.append(r)
                return out
        # restore what this statement overwrote (pruned later when nobody reads it)
        for t in targets:
            r = Restore(t, s)
            r.line = line
            out.append(r)
        return out

    def contributions(self, s: Any, v: str, op: Any, st: State, line: Any, self_ref: bool = False) -> list:
        """The adjoint of `v = op(...)`. When v is also an operand (`y = sin(y)`), the rules need the old
        value as operand and the new one as `ans`: the new value is copied to a temporary if a rule reads
        it, then the old value is restored before the rules run."""
        out: list = []
        g = name(self.adj(v))
        pairs: list[tuple[str, gast.expr]] = []
        ans_name = self.namer.fresh("_ans") if self_ref else v
        if op.kind == "copy":
            a = op.args[0] if op.args else s.value  # a module's data (`x = LIMIT`) has no operand
            if isinstance(a, gast.Name) and a.id in self.active:
                pairs.append((a.id, g))
        elif op.kind == "prim":
            rt = table()[op.prim]
            for i, a in diff_operands(op):
                if a not in self.active:
                    continue
                tpl = rt.get("vjp", i)
                expr = instantiate(
                    tpl,
                    copy.deepcopy(g),
                    name(ans_name),
                    [copy.deepcopy(x) for x in op.args],
                    {k: copy.deepcopy(e) for k, e in op.kwargs.items()},
                    i,
                    self.ref,
                )
                pairs.append((a, self.simplify(expr)))
        if self_ref:
            if any(ans_name in {n.id for n in gast.walk(e) if isinstance(n, gast.Name)} for _, e in pairs):
                keep = assign(ans_name, name(v))
                keep.line = line
                out.append(keep)
            r = Restore(v, s)
            r.line = line
            out.append(r)
        elif op.kind == "stack":
            lst = op.args[0].id
            axis = op.kwargs.get("axis", const(0))
            n = gast.Subscript(
                value=call(name(self.ref(rt_stack.P.shape, "shape")), [name(v)]),
                slice=copy.deepcopy(axis),
                ctx=gast.Load(),
            )
            sizes = op.kwargs.get("sizes")  # concatenate_list: the pieces' lengths, read at the join
            join, cut = ((rt_stack.concatenate_list, rt_stack.unconcatenate) if sizes is not None
                         else (rt_stack.stack_list, rt_stack.unstack))
            if lst in st.init:
                # the list is also read by index (or stacked again) later: its cotangent so far, stacked
                # the same way, adds to g (forward mode then needs no rule beyond stack and unstack)
                so_far = call(name(self.ref(join, join.__name__)), [name(self.adj(lst))],
                              {"axis": copy.deepcopy(axis)})
                g = gast.BinOp(left=g, op=gast.Add(), right=so_far)
            cut_at = copy.deepcopy(sizes) if sizes is not None else n
            expr = call(name(self.ref(cut, cut.__name__)), [g, cut_at], {"axis": copy.deepcopy(axis)})
            st.init.add(lst)
            s2 = assign(self.adj(lst), expr)
            s2.line = line
            out.append(s2)
            self.reset(v, st, out, line)
            return out
        self_pairs = [e for a, e in pairs if a == v]
        for a, e in pairs:
            if a != v:
                self.accumulate(a, e, st, out, line)
        if self_pairs:
            total = self_pairs[0]
            for e in self_pairs[1:]:
                total = gast.BinOp(left=total, op=gast.Add(), right=e)
            s2 = assign(self.adj(v), self.simplify(total))
            s2.line = line
            out.append(s2)
        else:
            self.reset(v, st, out, line)
        return out

    def reset(self, v: str, st: State, out: list, line: Any) -> None:
        """The adjoint of the value `v` had before this statement starts at zero."""
        if v in self.zero_reset:
            out.append(self.zero_init(v, line))
            st.init.add(v)
        else:
            st.init.discard(v)

    def callsite(self, s: Any, st: State) -> list:
        op = s.op
        line = getattr(s, "line", None)
        targets = targets_of(s)
        n_pos = op.kwargs["__pos__"]
        kw_names = op.kwargs["__kw__"]
        pos_args = op.args[:n_pos]
        kw_args = dict(zip(kw_names, op.args[n_pos:], strict=False))
        active_args = {}
        import inspect

        try:
            sig = signature_of(op.fn)
            bound = sig.bind(*pos_args, **kw_args)
        except (TypeError, ValueError) as exc:
            raise self.error(s, f"cannot call {op.fn.__name__} with these arguments: {exc}") from None
        for p, a in bound.arguments.items():
            kind = sig.parameters[p].kind
            packed = a if kind == inspect.Parameter.VAR_POSITIONAL else \
                list(a.values()) if kind == inspect.Parameter.VAR_KEYWORD else [a]
            if any(isinstance(x, gast.Name) and x.id in self.active for x in packed):
                # (an active value packed into *args is the callee's tuple: never silently left out)
                if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                    raise self.error(
                        s,
                        f"srcgrad cannot differentiate through *args/**kwargs of {op.fn.__name__}",
                        "give the function named parameters.",
                    )
                active_args[p] = a.id
        req = self.request_callee(op.fn, tuple(active_args), s)
        if getattr(req, "returns_tuple", False) and not isinstance(s.targets[0], gast.Tuple):
            raise self.error(
                s,
                f"{op.fn.__name__} returns a tuple, which srcgrad differentiates only when unpacked "
                "at the call",
                f"write `a, b = {op.fn.__name__}(...)`.",
            )
        self.callsites.append((s, req))
        out: list = []
        gs = [name(self.adj(t)) if t in st.init else self.zeros(t) for t in targets]
        g = gs[0] if not isinstance(s.targets[0], gast.Tuple) else gast.Tuple(elts=gs, ctx=gast.Load())
        # unpack straight into an adjoint that holds no value yet; into a temporary otherwise
        direct: dict[str, str] = {}
        seen: set[str] = set()
        for p in req.wrt:
            a = active_args[p]
            if a not in st.init and a not in seen and a not in targets:
                direct[p] = self.adj(a)
            seen.add(a)
        temps = [direct.get(p) or self.namer.temp() for p in req.wrt]
        self.stack_used = True
        adj_call = call(name(req.adj), [g, name(self.stack_name)])
        tgt = gast.Tuple(elts=[name(t, store=True) for t in temps], ctx=gast.Store())
        s2 = assign(tgt, adj_call)
        s2.line = line
        s2.impure = True
        out.append(s2)
        for t in targets:
            self.reset(t, st, out, line)
        for p, tmp in zip(req.wrt, temps, strict=False):
            if p in direct:
                st.init.add(active_args[p])
            else:
                self.accumulate(active_args[p], name(tmp), st, out, line)
        return out

    def if_(self, s: gast.If, st: State) -> list:
        s1 = State(set(st.init))
        body = self.block(s.body, s1)
        s2 = State(set(st.init))
        orelse = self.block(s.orelse, s2)
        line = getattr(s, "line", None)
        for v in sorted(s1.init - s2.init):
            orelse.append(self.zero_init(v, line))
        for v in sorted(s2.init - s1.init):
            body.append(self.zero_init(v, line))
        st.init = s1.init | s2.init
        node = gast.If(test=copy.deepcopy(s.test), body=body, orelse=orelse)
        node.line = line
        node.fwd = s
        return [node]

    def recompute_instead_of_restoring(self, loop: gast.For, adjoint_body: list) -> list:
        """The recompute policy: a number the loop body computes afresh each iteration from the loop's
        index and values the loop never changes (`i - 1`, `range(1, m)`, `j * n + k`) is recomputed at
        the top of each adjoint iteration, where the adjoint loop's index is the forward's, instead of
        being saved every iteration and restored. Only for a value assigned once in the whole function,
        at the top level of this loop's body, and read nowhere outside the loop."""
        index = loop.target.id if isinstance(loop.target, gast.Name) else None
        if index is None:
            return adjoint_body
        changed_in_loop = {t for x in iter_stmts(loop.body) for t in targets_of(x)} | {
            n.id for x in iter_stmts(loop.body) for n in gast.walk(x)
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}
        stored_anywhere: dict[str, int] = {}
        for x in iter_stmts(self.body):
            for t in targets_of(x):
                stored_anywhere[t] = stored_anywhere.get(t, 0) + 1
        inside = {id(x) for x in iter_stmts(loop.body)}
        read_outside = {n.id for x in iter_stmts(self.body) if id(x) not in inside and x is not loop
                        for part in _own_parts(x) for n in gast.walk(part)
                        if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}
        recomputed: list = []
        again_names: set[str] = set()
        read_by_adjoint = {n.id for x in adjoint_body for n in gast.walk(x)
                           if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}
        read_so_far: set[str] = set()  # names the body reads before the statement at hand
        for x in loop.body:
            before = read_so_far
            read_so_far = read_so_far | {n.id for n in gast.walk(x) if isinstance(n, gast.Name)
                                         and isinstance(n.ctx, gast.Load)}
            if not (isinstance(x, gast.Assign) and isinstance(x.targets[0], gast.Name)):
                continue
            v = x.targets[0].id
            if v in before:
                continue  # read before it is bound: that read sees the previous iteration's value
            value = x.value
            is_range = isinstance(value, gast.Call) and isinstance(value.func, gast.Name) \
                and self.namer.globals.get(value.func.id) is range and not value.keywords \
                and all(_cheap_number_expression(a) for a in value.args)
            operands = {n.id for n in gast.walk(value) if isinstance(n, gast.Name)
                        and isinstance(n.ctx, gast.Load)} - ({value.func.id} if is_range else set())
            if not (is_range or v in self.numbers and _cheap_number_expression(value, self.math_of_numbers)):
                continue
            # every operand but the index holds one value throughout (bound at most once, outside the
            # loop): the adjoint, running after the whole forward, reads what the forward read
            if v not in read_by_adjoint or stored_anywhere.get(v) != 1 or v in read_outside or v == index \
                    or getattr(x, "mutates", ()) \
                    or any(stored_anywhere.get(o, 0) > 1 or o in changed_in_loop
                           for o in operands - {index} - again_names):
                continue
            again_names.add(v)  # recomputed, so what follows may be computed from it again too
            again = assign(v, copy.deepcopy(value))
            again.line = getattr(x, "line", None)
            again.recomputes = True
            recomputed.append(again)
            adjoint_body = _drop_restores(adjoint_body, v, x)
        return recomputed + adjoint_body

    def recompute_where_read(self, stmts: list, parts: list) -> tuple[list, set[str]]:
        """The adjoint of a loop body (`parts`: each statement with its adjoint, last statement first),
        flattened, with the recompute policy for any loop: a number computed by cheap arithmetic
        (`_t2 = b * prey`) whose operands no statement changes from there up to the last statement that
        reads it is computed again just before that statement's adjoint (where, the adjoint restoring
        what later statements overwrote, its operands hold what they held), instead of being saved
        every iteration and restored. Only for a number bound once in the whole function, at the top
        level of this body, read nowhere outside it and not before it is bound."""
        adjoint_of = {id(x): list(p) for x, p in parts}
        again_names: set[str] = set()
        stored: dict[str, int] = {}
        for x in iter_stmts(self.body):
            for t in targets_of(x):
                stored[t] = stored.get(t, 0) + 1
        inside = {id(x) for x in iter_stmts(stmts)}
        read_outside = {n.id for x in iter_stmts(self.body) if id(x) not in inside
                        for part in _own_parts(x) for n in gast.walk(part)
                        if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}

        def reads(x: Any) -> set[str]:
            return {n.id for n in gast.walk(x) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}

        def writes(x: Any) -> set[str]:
            return {t for y in iter_stmts([x]) for t in targets_of(y)} | {
                n.id for n in gast.walk(x) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}

        # last statement first: a value recomputed from others (`_t7 = _t5 + _t6` before `_t7 ** 0.5`)
        # makes them read there, so they may be recomputed too (`_t5 = x * x`), before it
        for k in reversed(range(len(stmts))):
            x = stmts[k]
            if not (isinstance(x, gast.Assign) and isinstance(x.targets[0], gast.Name)):
                continue
            v = x.targets[0].id
            operands = reads(x.value)
            if v not in self.numbers or stored.get(v) != 1 or v in read_outside \
                    or v in operands or getattr(x, "mutates", ()) or any(v in reads(y) for y in stmts[:k]) \
                    or not _cheap_number_expression(x.value, self.math_of_numbers) \
                    or not any(isinstance(r, Restore) and r.var == v for r in adjoint_of[id(x)]):
                continue
            readers = [j for j in range(k, len(stmts)) if v in {
                n.id for a in adjoint_of[id(stmts[j])] for n in gast.walk(a)
                if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}]
            if not readers:
                continue
            last = max(readers)
            if any(operands & writes(y) for y in stmts[k + 1:last + 1]):
                continue
            again_names.add(v)
            again = assign(v, copy.deepcopy(x.value))
            again.line = getattr(x, "line", None)
            again.recomputes = True
            adjoint_of[id(stmts[last])].insert(0, again)
            adjoint_of[id(x)] = _drop_restores(adjoint_of[id(x)], v, x)
        return [a for x in reversed(stmts) for a in adjoint_of[id(x)]], again_names

    def math_of_numbers(self, call_: gast.Call) -> bool:
        """A primitive with a `math` lowering (sin, exp) on operands that are one number each: a
        `math` call once lowered, cheaper than a push and a pop."""
        f = call_.func
        prim = self.namer.globals.get(f.id) if isinstance(f, gast.Name) else None
        return getattr(prim, "math", None) is not None and getattr(prim, "math", None) is not UNDECLARED \
            and all(isinstance(a, gast.Name) and a.id in self.numbers for a in call_.args)

    def loop(self, s: Any, st: State) -> list:
        line = getattr(s, "line", None)
        is_while = isinstance(s, gast.While)
        counted = is_while or _has_break(s.body)
        entry = set(st.init)
        pre: list[str] = []
        for _ in range(20):
            sb = State(set(entry))
            parts = [(x, self.stmt(x, sb)) for x in reversed(s.body)]
            add_pre = sb.init - entry
            add_zero = {v for v in entry - sb.init if v not in self.zero_reset}
            if not add_pre and not add_zero:
                break
            pre.extend(sorted(add_pre))
            entry |= add_pre
            self.zero_reset |= add_zero
        else:  # pragma: no cover - the sets only grow, so this cannot happen
            raise self.error(s, "internal error: adjoint of this loop did not converge")
        st.init = entry
        saved = [a for _, p in parts for a in p]
        if is_while or counted:  # no index to recompute from: numbers recomputed where they are read
            body = self.recompute_where_read(s.body, parts)[0]
        else:  # recomputed from the index at the top of each iteration
            body = self.recompute_instead_of_restoring(s, saved)
        out: list = [self.zero_init(v, line) for v in pre]
        counter = None
        if counted:
            counter = self.namer.fresh("_n")
            init = assign(counter, const(0))
            init.line = line
            inc = gast.AugAssign(target=name(counter, store=True), op=gast.Add(), value=const(1))
            inc.line = None  # bookkeeping: no provenance comment of its own
            s.counter = (counter, init, inc)
        if is_while:
            it = call(name(self.ref(range, "range")), [name(counter)])
            target = name(self.namer.unique("_"), store=True)
        else:
            rng: gast.expr = copy.deepcopy(s.iter)
            if counted:
                rng = gast.Subscript(
                    value=rng, slice=gast.Slice(lower=None, upper=name(counter), step=None), ctx=gast.Load()
                )
            it = call(name(self.ref(reversed, "reversed")), [rng])
            target = copy.deepcopy(s.target)
        node = gast.For(target=target, iter=it, body=body, orelse=[], type_comment=None)
        node.saved_body = saved  # the recompute policy picks one of the two once restores are pruned
        node.line = line
        node.fwd = s
        out.append(node)
        if not is_while:
            r = Restore(s.target.id, s)
            r.line = line
            out.append(r)
        if counted:
            r = Restore(counter, s.counter[1])
            r.line = line
            out.append(r)
        self.loops.append(s)
        return out


# The recompute policy's prices, measured on CPython 3.11 in generated loops over Python floats: saving
# values costs one push and one pop per iteration (a tuple made and unpacked: about as much as eight
# arithmetic operations), and each value more in that tuple costs about a sixth of one operation. So
# recomputing pays only where it leaves the loop nothing to save at all, and then only while it costs
# no more than the push it removes; where something is saved anyway, every value rides in that push.
PUSH_COST_IN_OPERATIONS = 8


def recompute_pays(body: list) -> bool:
    """The recompute policy, on an adjoint loop body whose unneeded restores are pruned: its recomputed
    statements are worth their operations only where no restore (so no push) remains."""
    if any(isinstance(n, Restore) for s in body for n in _walk_adjoint(s)):
        return False
    operations = sum(1 for s in body for x in _walk_adjoint(s) if getattr(x, "recomputes", False)
                     for n in gast.walk(x)
                     if isinstance(n, (gast.BinOp, gast.UnaryOp, gast.Compare, gast.Call, gast.Subscript)))
    return operations <= PUSH_COST_IN_OPERATIONS


def _walk_adjoint(s: Any) -> Any:
    """Every statement of an adjoint statement, itself included (Restore placeholders too)."""
    yield s
    for field_ in ("body", "orelse"):
        for x in getattr(s, field_, None) or ():
            yield from _walk_adjoint(x)


def _cheap_number_expression(e: Any, cheap_call: Callable[[Any], bool] = lambda c: False) -> bool:
    """Arithmetic and comparisons on names and constants, elements read with such indices
    (`edges[k, 0]`), and calls `cheap_call` accepts (a `math` function of one number): what recomputing
    costs no more than saving and restoring."""
    def cheap(x: Any) -> bool:
        return _cheap_number_expression(x, cheap_call)

    if isinstance(e, (gast.Name, gast.Constant)):
        return True
    if isinstance(e, gast.Subscript) and isinstance(e.value, gast.Name):
        parts = e.slice.elts if isinstance(e.slice, gast.Tuple) else [e.slice]
        return all(cheap(p) for p in parts)
    if isinstance(e, gast.BinOp):
        return cheap(e.left) and cheap(e.right)
    if isinstance(e, gast.UnaryOp):
        return cheap(e.operand)
    if isinstance(e, gast.Compare):
        return all(cheap(x) for x in [e.left, *e.comparators])
    if isinstance(e, gast.Call) and not e.keywords and cheap_call(e):
        return all(cheap(a) for a in e.args)
    return False


def _own_parts(s: Any) -> list:
    """What a statement itself evaluates: a compound statement's test or iterable, not its body."""
    if isinstance(s, (gast.If, gast.While)):
        return [s.test]
    if isinstance(s, gast.For):
        return [s.iter]
    return [s]


def _drop_restores(block: list, var: str, src: Any) -> list:
    """`block` without the restore of `var` that forward statement `src` placed (top level)."""
    return [s for s in block if not (isinstance(s, Restore) and s.var == var and s.src is src)]


def _has_break(body: list) -> bool:
    for s in body:
        if isinstance(s, gast.Break):
            return True
        if isinstance(s, gast.If) and (_has_break(s.body) or _has_break(s.orelse)):
            return True
    return False


# ======================================================================================= pruning & saves
def overwrite_info(body: list, params: set[str]) -> None:
    """Annotate each assignment (and loop) with `ow`: {target: 'def'|'maybe'} when it may overwrite a
    value assigned before (definitely / possibly)."""

    def assigned(stmts: list) -> set[str]:
        out: set[str] = set()
        for s in stmts:
            out.update(targets_of(s))
            if isinstance(s, (gast.If, gast.For, gast.While)):
                out |= assigned(s.body) | assigned(s.orelse)
            if getattr(s, "counter", None) is not None:
                out.add(s.counter[0])
        return out

    def block(stmts: list, maybe: set[str], definite: set[str]) -> tuple[set[str], set[str]]:
        for s in stmts:
            if isinstance(s, gast.If):
                m1, d1 = block(s.body, set(maybe), set(definite))
                m2, d2 = block(s.orelse, set(maybe), set(definite))
                maybe, definite = m1 | m2, d1 & d2
            elif isinstance(s, (gast.For, gast.While)):
                s.ow = {}
                counter = getattr(s, "counter", None)
                if counter is not None:
                    n = counter[0]
                    counter[1].ow = {n: "def" if n in definite else "maybe"} if n in maybe else {}
                    maybe = maybe | {n}
                    definite = definite | {n}
                if isinstance(s, gast.For):
                    t = s.target.id
                    if t in maybe:
                        s.ow[t] = "def" if t in definite else "maybe"
                inner = maybe | assigned(s.body)
                if isinstance(s, gast.For):
                    inner = inner | {s.target.id}
                d_in = set(definite) | ({s.target.id} if isinstance(s, gast.For) else set())
                block(s.body, set(inner), d_in)
                maybe = inner
            else:
                ts = targets_of(s)
                if ts:
                    s.ow = {t: ("def" if t in definite else "maybe") for t in ts if t in maybe}
                    maybe = maybe | set(ts)
                    definite = definite | set(ts)
        return maybe, definite

    block(body, set(params), set(params))


def definitely_assigned(body: list, params: set[str]) -> set[str]:
    def block(stmts: list, definite: set[str]) -> set[str]:
        for s in stmts:
            if isinstance(s, gast.If):
                definite = block(s.body, set(definite)) & block(s.orelse, set(definite))
            elif isinstance(s, (gast.For, gast.While)):
                pass
            elif type(s).__name__ == "Verbatim" and not s.simple:
                pass
            else:
                definite = definite | set(targets_of(s))
        return definite

    return block(body, set(params))


def loads(node: Any) -> set[str]:
    return {n.id for n in gast.walk(node) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}


def prune(adjoint: list) -> tuple[list, set[str]]:
    """Drop restores nobody needs and control structures with nothing inside. Returns (body, reads):
    the pruned adjoint and every name it reads.

    A restore (`x = _stack.pop()`) is needed when some later adjoint statement, in the order the adjoint
    runs, reads `x` before another restore sets it again: backward liveness over the adjoint, with a
    fixpoint for loops (what the next iteration reads is live at the end of the body). A variable the
    adjoint reads only elsewhere (`x, y = y * 0.5, x * 2.0` in a loop, `x * y` after it) is then neither
    pushed in the forward nor popped in the adjoint."""

    def walk(block: list, live: set[str]) -> tuple[list, set[str], bool]:
        out: list = []
        nonempty = False
        for s in reversed(block):
            if isinstance(s, Restore):
                if s.var in live and s.var in getattr(s.src, "ow", {}):
                    out.append(s)
                    live = live - {s.var}
                    nonempty = True
            elif isinstance(s, gast.If):
                b, live_b, n1 = walk(s.body, live)
                o, live_o, n2 = walk(s.orelse, live)
                if n1 or n2:
                    s2 = copy.copy(s)
                    s2.body, s2.orelse = b, o
                    out.append(s2)
                    live = live_b | live_o | loads(s.test)
                    nonempty = True
            elif isinstance(s, gast.For):
                live_after = set(live)
                b, at_head, n1 = loop_body(s.body, live)
                saved = getattr(s, "saved_body", None)
                if saved is not None and saved is not s.body and not recompute_pays(b):
                    b, at_head, n1 = loop_body(saved, live)  # the policy: save rather than recompute
                if n1:
                    s2 = copy.copy(s)
                    s2.body = b
                    out.append(s2)
                    live = at_head | loads(s.iter)
                    if isinstance(s.target, gast.Name) and s.target.id not in live_after:
                        # the loop assigns its index before every iteration reads it: what came before
                        # is read only if something after the loop reads it (an empty loop keeps it)
                        live = live - {s.target.id}
                    nonempty = True
            elif isinstance(s, Comment):
                out.append(s)
            else:
                out.append(s)
                live = (live - stored(s)) | loads(s)
                nonempty = True
        out.reverse()
        return out, live, nonempty

    def loop_body(body: list, live: set[str]) -> tuple[list, set[str], bool]:
        at_head = set(live)
        while True:  # what the next iteration reads is live at the end of the body
            b, live_b, nonempty = walk(body, at_head)
            if live_b <= at_head:
                return b, at_head, nonempty
            at_head |= live_b

    pruned, _, _ = walk(adjoint, set())
    return pruned, loads(gast.Module(body=pruned, type_ignores=[]))


def stored(s: Any) -> set[str]:
    """Names an adjoint statement (an assignment, not a block) sets for sure."""
    if isinstance(s, gast.Assign):
        return {n.id for t in s.targets for n in gast.walk(t) if isinstance(n, gast.Name)
                and isinstance(n.ctx, gast.Store)}
    return set()


def kept_loops(adjoint: list) -> set[int]:
    """ids of forward loops whose adjoint loop survived pruning."""
    out: set[int] = set()
    for n in gast.walk(gast.Module(body=adjoint, type_ignores=[])):
        if isinstance(n, gast.For) and getattr(n, "fwd", None) is not None:
            out.add(id(n.fwd))
    return out


def restores(adjoint: list) -> list[Restore]:
    return [n for n in gast.walk(gast.Module(body=adjoint, type_ignores=[])) if isinstance(n, Restore)]
