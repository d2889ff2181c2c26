"""The reverse-mode pipeline, stage by stage: parse -> fence -> normalize -> analysis -> reverse ->
instrument -> optimize -> codegen. `SRCGRAD_DEBUG=1` (or `verbose=True`) prints the code after each stage.

`Builder.reverse(fn, kind, wrt, scalar_mask)` generates one top-level function (forward and adjoint fused
in one frame). Calls to user functions with active arguments are generated as a pair `f_fwd`/`f_adj` that
share the caller's stack (`Builder.callee`); recursion works because a pair is registered before its body
is generated and bound into the namespaces when the whole build is done.
"""

from __future__ import annotations

import copy
import os
import sys
import time
import types
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import gast

from srcgrad import analysis, codegen, facts, normalize, optimize, reverse, stages
from srcgrad.codegen import Comment
from srcgrad.errors import TransformError, located
from srcgrad.names import Namer
from srcgrad.normalize import assign, call, const, name
from srcgrad.parse import FunctionInfo, fence, merge_into_recording, parse_function, recording
from srcgrad.reverse import CalleeRequest, Restore, State
from srcgrad.runtime import primitives as P
from srcgrad.runtime import stack as rt_stack


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


def params_of(node: gast.FunctionDef) -> tuple[list[str], list[str]]:
    a = node.args
    positional = [p.id for p in a.posonlyargs + a.args]
    return positional, positional + [p.id for p in a.kwonlyargs]


# ------------------------------------------------------------------------------------------ the builder
class OwnedCache(dict):
    """A cache kept in a function's own `__dict__` (`cache_on`): it lives exactly as long as the
    function. A global table keyed by the function would keep it alive through the cached values, which
    refer to it: every closure made per training step, with its data, would stay. Copied by
    `functools.wraps` onto another function it is not that function's (`owner`); pickled (cloudpickle
    sends a function's `__dict__`) or copied, it is empty."""

    __slots__ = ("owner",)

    def __reduce__(self) -> tuple:
        return (type(self), ())


_OTHER_CACHES: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def cache_on(fn: Any, attr: str) -> dict:
    """fn's cache named `attr` (for a callable other than a plain function: in a weak table, or a
    throwaway dict when it cannot be a weak key)."""
    if isinstance(fn, types.FunctionType):
        cache = fn.__dict__.get(attr)
        if cache is None or cache.owner() is not fn:
            cache = OwnedCache()
            cache.owner = weakref.ref(fn)
            fn.__dict__[attr] = cache
        return cache
    try:
        return _OTHER_CACHES.setdefault(fn, {}).setdefault(attr, {})
    except TypeError:
        return {}


def _callees_of(fn: Any) -> dict:
    """The generated pairs of callee `fn`, by wrt."""
    return cache_on(fn, "__srcgrad_callees__")


class Builder:
    def __init__(self, verbose: bool | int = False):
        self.verbose = debug_enabled(verbose)
        self.fixups: list[tuple[dict, str, CalleeRequest, str]] = []
        self.refresh: list[tuple[dict, str, Callable]] = []
        self.in_progress: dict[tuple, CalleeRequest] = {}
        self.returns: dict[tuple, Any] = {}  # (callee, signature) -> the facts of what it returns
        self.facts_in_progress: set = set()  # callees whose return facts are being found
        self.building: list = []  # callees whose code is being generated (a call of one is recursive)
        self.numpy_params: set[str] = set()
        self.specialized = False  # building a variant for one signature (never transformed again)

    # ---------------------------------------------------------------------------------- front end
    def front(self, fn: Any, wrt: Any) -> tuple[FunctionInfo, Namer, list, normalize.Normalizer]:
        info = parse_function(fn)
        fence(info)
        if callable(wrt):
            wrt = wrt(info)
        if self.verbose:
            _dump(f"parse: {info.name} ({info.filename}:{info.user_lineno(1)})", "\n".join(info.lines))
        taken = set(info.locals)
        namer = Namer(taken)
        namer.reserved = info.free_names()
        norm = normalize.Normalizer(info, namer, set(wrt))
        norm.refuse_generated_callees = True
        body = norm.run()
        if self.verbose:
            _dump("normalize (one operation per statement)", body_source(body))
        return info, namer, body, norm

    # ---------------------------------------------------------------------------------- callees
    def callee_facts(self, fn: Any, signature: tuple) -> Any:
        """What user function `fn` returns when called with parameters of these facts (the fact pass of
        a caller asks; None: not known, or a call of itself while its facts are being found)."""
        if fn in self.facts_in_progress:
            signature = facts.without_values(signature)  # a recursive call: n - 1, n - 2, ... as one key
        key = (fn, signature)
        if key in self.returns:
            return self.returns[key]
        self.returns[key] = None
        if getattr(fn, "__srcgrad_target__", None) is not None:
            return None
        try:
            # every parameter taken as differentiated: the body is normalized to one operation per
            # statement (with none, an inactive body is kept as written, calls nested in expressions)
            info, namer, body, _ = self.front(fn, lambda info: params_of(info.node)[0])
        except TransformError:
            return None
        ret = body[-1] if body and isinstance(body[-1], gast.Return) else None
        if ret is None:
            return None
        self.facts_in_progress.add(fn)
        try:
            result = self._returned_facts(info, namer, body, ret, signature)
        finally:
            self.facts_in_progress.discard(fn)
        self.returns[key] = result
        return result

    def decided_facts(self, body: list, namer: Namer, params: list, known: dict) -> tuple[list, Any]:
        return stages.decided_facts(body, namer, params, known, self.callee_facts)

    def _returned_facts(self, info: Any, namer: Namer, body: list, ret: Any, signature: tuple) -> Any:
        known = dict(signature)
        params = params_of(info.node)[1]
        # as the callee's own build reads it: adapters that dispatch on rank resolved to their primitive
        fwd_body = optimize.resolve_adapters(body[:-1], namer, known, set(params), self.callee_facts)
        fx = self.decided_facts(fwd_body, namer, params, known)[1]

        def of(e: Any) -> Any:
            if isinstance(e, gast.Name):
                return fx.get(e.id)
            if isinstance(e, gast.Constant):
                return facts.of_value(e.value)
            return facts.TOP

        value = ret.value
        return tuple(of(e) for e in value.elts) if isinstance(value, gast.Tuple) else of(value)

    def callee(self, fn: Any, wrt: tuple[str, ...], site: Any, caller_info: FunctionInfo,
               signature: tuple = ()) -> CalleeRequest:
        target = getattr(fn, "__srcgrad_target__", None)
        if target is not None:
            # a srcgrad transform called inside (dU = sg.grad(U) at module level): its generated code,
            # with the module data it reads refreshed per call
            self.refresh.extend(getattr(fn, "__srcgrad_refresh__", ()))
            fn = target
            signature = ()
        if fn in self.building:
            signature = facts.without_values(signature)  # a recursive call: one build for every depth
        key = (fn, wrt, signature)
        req = self.in_progress.get(key)
        if req is not None:
            return req
        req = _callees_of(fn).get((wrt, signature))
        if req is not None and req.deps.valid():
            # built before: its module data is read again per call, and what it was built from is part
            # of what this build depends on
            self.refresh.extend(req.refresh)
            merge_into_recording(req.deps)
            return req
        req = CalleeRequest(fn=fn, wrt=wrt, signature=signature)
        self.in_progress[key] = req
        first = len(self.refresh)
        self.building.append(fn)
        try:
            with recording() as req.deps:
                self.build_split(req)
            req.refresh = self.refresh[first:]
            merge_into_recording(req.deps)
        except TransformError as exc:
            if (getattr(fn, "__module__", None) or "").endswith("runtime.mapping"):
                # a NumPy/torch spelling whose adapter the compiler cannot follow: say so at the user's line
                spelling = getattr(fn, "__name__", "this function").rstrip("_")
                raise located(
                    caller_info,
                    _at(site),
                    f"srcgrad's compiler does not differentiate {spelling} yet "
                    f"(its adapter: {exc.message.splitlines()[0]})",
                    "write it with functions the compiler supports (np.concatenate / np.stack of a list, "
                    "elementwise functions, reductions, matmul), or use the eager runtime for this part.",
                ) from None
            if exc.filename is None:
                raise located(
                    caller_info,
                    _at(site),
                    f"cannot differentiate the call to {getattr(fn, '__name__', fn)}: {exc.message}",
                    exc.hint,
                ) from None
            raise
        finally:
            self.building.pop()
        return req

    def bind_callee(self, namer: Namer, req: CalleeRequest) -> tuple[str, str]:
        base = getattr(req.fn, "__name__", "fn")
        if not base.isidentifier():
            base = "lambda"  # sq = lambda z: z * z at module level
        fwd = namer.ref(("fwd", id(req)), f"{base}_fwd")
        adj = namer.ref(("adj", id(req)), f"{base}_adj")
        return fwd, adj

    # ---------------------------------------------------------------------------------- the core
    def reverse(
        self, fn: Any, kind: str, wrt_idx: tuple[int, ...], scalar_mask: tuple[bool, ...] | None, single: bool
    ) -> Generated:
        """Generate the fused forward+adjoint function for the top-level transform `kind`
        ('grad', 'value_and_grad', 'vjp')."""
        with recording() as deps:
            gen = self._reverse(fn, kind, wrt_idx, scalar_mask, single)
        gen.deps = deps
        return gen

    def _reverse(
        self, fn: Any, kind: str, wrt_idx: tuple[int, ...], scalar_mask: tuple[bool, ...] | None, single: bool
    ) -> Generated:
        t0 = time.perf_counter()

        def wrt_names(info: FunctionInfo) -> list[str]:
            positional = params_of(info.node)[0]
            return [positional[i] for i in wrt_idx if -len(positional) <= i < len(positional)]

        info, namer, body, norm = self.front(fn, wrt_names)
        positional, params = params_of(info.node)
        for i in wrt_idx:
            if not -len(positional) <= i < len(positional):
                raise TransformError(
                    f"wrt={i} but {info.name} has {len(positional)} positional parameters",
                    filename=info.filename,
                    lineno=info.user_lineno(info.node.lineno),
                    hint="wrt counts positional parameters from 0.",
                )
        wrt = [positional[i] for i in wrt_idx]
        known = stages.signature_facts(positional, scalar_mask)
        self.numpy_params = {p for p, f in known.items() if isinstance(f, facts.Arr)}
        self.specialized = bool(scalar_mask)
        gen = self.generate(info, namer, body, norm, wrt, params, known, mode=kind, single=single)
        self.finish()
        if self.verbose:
            _dump(f"done in {1000 * (time.perf_counter() - t0):.1f} ms", "")
        return gen

    def build_split(self, req: CalleeRequest) -> None:
        info, namer, body, norm = self.front(req.fn, req.wrt)
        positional, params = params_of(info.node)
        self.generate(info, namer, body, norm, list(req.wrt), params, dict(req.signature), mode="split",
                      req=req)

    def finish(self) -> None:
        for ns, nm, req, which in self.fixups:
            ns[nm] = req.fwd_fn if which == "fwd" else req.adj_fn
        for (fn, wrt, signature), req in self.in_progress.items():
            _callees_of(fn)[(wrt, signature)] = req
        self.fixups.clear()

    # ------------------------------------------------------------------------------ generation
    def generate(
        self,
        info: FunctionInfo,
        namer: Namer,
        body: list,
        norm: normalize.Normalizer,
        wrt: list[str],
        params: list[str],
        known: dict,
        mode: str,
        single: bool = True,
        req: CalleeRequest | None = None,
    ) -> Generated:
        ret = body[-1] if body and isinstance(body[-1], gast.Return) else None
        if ret is None:
            raise located(info, info.node, "internal error: normalized function has no final return")
        scalar_params = {p for p, f in known.items() if isinstance(f, facts.Num)}
        ret_value = ret.value
        out_atoms = ret_value.elts if isinstance(ret_value, gast.Tuple) else [ret_value]
        outputs = {a.id for a in out_atoms if isinstance(a, gast.Name)}
        fwd_body, fx = stages.fact_stage(body[:-1], namer, params, known, outputs, self.callee_facts)
        active, varied, useful = analysis.activity(fwd_body, set(wrt), outputs, set(norm.lists))
        scalars = fx.scalars()
        int_params = {p: f.value for p, f in known.items()  # a callee's int arguments are in its key
                      if isinstance(f, facts.Num) and f.type is int and f.value is not None}
        sets = stages.FactSets.of(fx, {v: namer.adjoint(v) for v in active}, int_params)
        nd_all, shp_all = sets.ndims, sets.shapes
        if self.verbose:
            _dump("analysis", f"active: {sorted(active)}\nscalars: {sorted(scalars)}\nfacts: "
                  + ", ".join(f"{v}: {f}" for v, f in sorted(fx.of.items())))

        callee_bindings: list[tuple[Any, CalleeRequest]] = []

        def request(fn: Any, wrt_names: tuple[str, ...], site: Any) -> CalleeRequest:
            signature = facts.site_signature(site.op, fx.get) or ()
            r = self.callee(fn, wrt_names, site, info, signature)
            fwd, adj = self.bind_callee(namer, r)
            bound = CalleeRequest(fn=fn, wrt=r.wrt, fwd=fwd, adj=adj)
            bound.returns_tuple = getattr(r, "returns_tuple", False)
            callee_bindings.append((bound, r))
            return bound

        temp_names = {namer.adjoint(v) for v in active if v.startswith("_t")}
        temp_adjoint = temp_names.__contains__
        rev = reverse.Reverse(info, fwd_body, namer, wrt, active, scalars, request)
        rev.lists = set(norm.lists)
        rev.numbers = fx.immutable()
        rev.read_lists = {
            st_.op.args[0].id
            for st_ in analysis.iter_stmts(fwd_body)
            if getattr(getattr(st_, "op", None), "kind", None) == "list_get"
        }
        rev.simplify = lambda e: sets.specialize(e, namer)
        stack = rev.stack_name = namer.unique("_stack")
        line0 = ret.line if hasattr(ret, "line") else None

        # seeds: the output cotangent
        st = State()
        seed_stmts: list = []
        seed_param = None
        if mode == "split":
            seed_param = namer.unique("b_out")
        elif mode == "vjp":
            seed_param = namer.unique("v")
        for i, a in enumerate(out_atoms):
            if not (isinstance(a, gast.Name) and a.id in active):
                if mode == "grad":
                    # an output no input reaches still has to be a scalar for grad (the check seed_of makes)
                    seed_ref = name(namer.ref(rt_stack.seed_of, "seed_of"))
                    check = gast.Expr(value=call(seed_ref, [copy.deepcopy(a)]))
                    check.line = line0
                    seed_stmts.append(check)
                continue
            if seed_param is not None:
                g = name(seed_param)
                if isinstance(ret_value, gast.Tuple):
                    part = rt_stack.cotangent_part if mode == "vjp" else None
                    g = (call(name(namer.ref(part, "cotangent_part")), [g, const(i), const(len(out_atoms))])
                         if part is not None else gast.Subscript(value=g, slice=const(i), ctx=gast.Load()))
                if mode == "vjp" and a.id not in scalars:
                    # the cotangent must have the output's shape (checked: the adjoint relies on it)
                    g = call(name(namer.ref(rt_stack.cotangent, "cotangent")), [g, name(a.id)])
            elif a.id in scalars:
                g = const(1.0)
            else:
                g = call(name(namer.ref(rt_stack.seed_of, "seed_of")), [name(a.id)])
            rev.accumulate(a.id, g, st, seed_stmts, line0)

        for v in sorted(getattr(norm, "stacks", ())):
            if v in active:  # differentiating generated code: cotangents of popped values wait here
                s0 = assign(namer.adjoint(v), call(name(namer.ref(rt_stack.Stack, "Stack")), []))
                s0.line = line0
                seed_stmts.append(s0)
                st.init.add(v)
        rev.refuse_opaque_in_order(fwd_body, varied)
        adjoint = rev.block(fwd_body, st)
        # zero gradients for inputs the output does not depend on
        tail: list = []
        for p in wrt:
            if p not in st.init:
                tail.append(rev.zero_init(p, line0))
        reverse.overwrite_info(fwd_body, set(params))
        adjoint, reads = reverse.prune(adjoint)
        for s_ in tail:
            reads |= reverse.loads(s_)
        if self.verbose:
            _dump("reverse (adjoint before saves)", body_source(seed_stmts + adjoint + tail))

        kept_loops = reverse.kept_loops(adjoint)
        restores = reverse.restores(adjoint)
        push_map: dict[int, list[str]] = {}
        need_none: set[str] = set()
        for r in restores:
            push_map.setdefault(id(r.src), []).append(r.var)
            if r.src.ow.get(r.var) == "maybe":
                need_none.add(r.var)
        uses_stack = bool(restores) or bool(rev.callsites)

        def pop_stmt(r: Restore) -> gast.stmt:
            s = assign(r.var, call(gast.Attribute(value=name(stack), attr="pop", ctx=gast.Load()), []))
            s.line = r.line
            s.impure = True
            return s

        def replace_restores(block: list) -> list:
            out = []
            for s in block:
                if isinstance(s, Restore):
                    out.append(pop_stmt(s))
                    continue
                if isinstance(s, (gast.If, gast.For)):
                    s.body = replace_restores(s.body)
                    s.orelse = replace_restores(s.orelse)
                out.append(s)
            return out

        adjoint = replace_restores(adjoint)
        callsite_ids = {id(s): r for s, r in rev.callsites}

        def push(var: str, line: Any, changed_in_place: bool = False) -> gast.stmt:
            value: gast.expr = name(var)
            if changed_in_place:  # the statement writes into var's memory: save its values
                value = call(name(namer.ref(P.copy, "copy")), [value])
            pushed = call(gast.Attribute(value=name(stack), attr="push", ctx=gast.Load()), [value])
            s = gast.Expr(value=pushed)
            s.line = line
            s.saves = True  # reads `var`, changes nothing the forward reads
            return s

        def instrument(block: list) -> list:
            out: list = []
            for s in block:
                line = getattr(s, "line", None)
                counter = getattr(s, "counter", None)
                if isinstance(s, (gast.For, gast.While)) and counter is not None and id(s) in kept_loops:
                    cname, init, inc = counter
                    for v in reversed(push_map.get(id(init), [])):
                        out.append(push(v, line))
                    out.append(init)
                    s.body = instrument(s.body)
                    at = getattr(s, "cond_len", 0) if isinstance(s, gast.While) else 0
                    s.body.insert(at, inc)
                else:
                    if isinstance(s, (gast.If, gast.For, gast.While)):
                        s.body = instrument(s.body)
                        s.orelse = instrument(s.orelse)
                # the adjoint pops a statement's saved values in the order push_map lists them: pushed in
                # reverse, so the stack hands them back right (`d, p = pair(a, b)` saves two)
                for v in reversed(push_map.get(id(s), [])):
                    out.append(push(v, line, v in getattr(s, "mutates", ())))
                if id(s) in callsite_ids:
                    r = callsite_ids[id(s)]
                    # the stack goes first, positionally: no clash with the callee's own names
                    s.value = gast.Call(
                        func=name(r.fwd), args=[name(stack)] + s.value.args, keywords=s.value.keywords
                    )
                    s.impure = True
                out.append(s)
            return out

        forward = instrument(fwd_body)

        # the value returned must be the forward's, even if the adjoint restores the variable
        restored_vars = {r.var for r in restores}
        ret_expr = ret_value
        pre_adjoint: list = []
        if any(isinstance(a, gast.Name) and a.id in restored_vars for a in out_atoms):
            value_name = namer.unique("value")
            s = assign(value_name, copy.deepcopy(ret_value))
            s.line = line0
            s.pure = True
            pre_adjoint.append(s)
            ret_expr = name(value_name)

        head: list = []
        if uses_stack and mode != "split":
            s = assign(stack, call(name(namer.ref(rt_stack.Stack, "Stack")), []))
            head.append(s)
        for v in sorted(need_none):
            s = assign(v, const(None))
            s.line = None
            head.append(s)
        if mode != "split":
            # the adjoint of a branch reads the variables the other branch assigns (`bq = zeros_as(q)`):
            # one assigned only on some paths is None on the others (zeros_as(None) is 0.0)
            definite = reverse.definitely_assigned(fwd_body, set(params))
            assigned = {t for st_ in analysis.iter_stmts(fwd_body) for t in analysis.targets_of(st_)}
            for v in sorted((reads & assigned) - definite - need_none - set(params)):
                s = assign(v, const(None))
                s.line = None
                head.append(s)

        grads = []
        for p in wrt:
            g: gast.expr = name(rev.adj(p))
            if p in scalar_params and mode != "split":
                g = call(name(namer.ref(float, "float")), [g])
            grads.append(g)

        def optimize_block(block: list) -> list:
            return sets.optimize_block(block, namer, scalars, lambda s: not getattr(s, "adjoint", False))

        for s in seed_stmts + adjoint + tail:
            _mark_adjoint(s)

        if req is not None:
            req.returns_tuple = isinstance(ret_value, gast.Tuple)
        if mode == "split":
            assert req is not None
            fwd_vars = set(params)
            for st_ in analysis.iter_stmts(forward):
                fwd_vars.update(analysis.targets_of(st_))
                if getattr(st_, "counter", None) is not None:
                    fwd_vars.add(st_.counter[0])
            saved = sorted(v for v in reads if v in fwd_vars)
            definite = reverse.definitely_assigned(fwd_body, set(params))
            for v in saved:
                if v not in definite and v not in need_none:
                    head.append(assign(v, const(None)))
            save_tuple = gast.Tuple(elts=[name(v) for v in saved], ctx=gast.Load())
            fwd_tail = (
                [
                    gast.Expr(
                        value=call(
                            gast.Attribute(value=name(stack), attr="push", ctx=gast.Load()), [save_tuple]
                        )
                    )
                ]
                if saved
                else []
            )
            fwd_fn_name = f"{info.name}_fwd"
            adj_fn_name = f"{info.name}_adj"
            fwd_args = info.signature(namer.ref)
            stack_param = gast.Name(id=stack, ctx=gast.Param(), annotation=None, type_comment=None)
            if fwd_args.posonlyargs:
                fwd_args.posonlyargs = [stack_param] + fwd_args.posonlyargs
            else:
                fwd_args.args = [stack_param] + fwd_args.args
            fwd_def = gast.FunctionDef(
                name=fwd_fn_name,
                args=fwd_args,
                body=optimize_block(head + forward)
                + fwd_tail
                + [gast.Return(value=copy.deepcopy(ret_value))],
                decorator_list=[],
                returns=None,
                type_comment=None,
                type_params=[],
            )
            restore_saved = []
            if saved:
                tgt = gast.Tuple(elts=[name(v, store=True) for v in saved], ctx=gast.Store())
                restore_saved.append(
                    assign(tgt, call(gast.Attribute(value=name(stack), attr="pop", ctx=gast.Load()), []))
                )
                restore_saved[-1].impure = True
            adj_args = gast.arguments(
                args=[name(seed_param, store=False), name(stack, store=False)],
                posonlyargs=[],
                vararg=None,
                kwonlyargs=[],
                kw_defaults=[],
                kwarg=None,
                defaults=[],
            )
            for a in adj_args.args:
                a.ctx = gast.Param()
            ret_grads = gast.Tuple(elts=grads, ctx=gast.Load())
            adj_def = gast.FunctionDef(
                name=adj_fn_name,
                args=adj_args,
                body=restore_saved
                + optimize_block(seed_stmts + adjoint + tail)
                + [gast.Return(value=ret_grads)],
                decorator_list=[],
                returns=None,
                type_comment=None,
                type_params=[],
            )
            run_passes(fwd_def, [
                ("dead code", optimize.dead_code),
                ("nest forward temporaries",
                 lambda f: optimize.nest_forward_temporaries(f, namer.temps.__contains__)),
            ], self.verbose)
            run_passes(adj_def, [
                ("dead code", optimize.dead_code),
                ("propagate adjoints", lambda f: optimize.propagate_adjoints(f, temp_adjoint)),
                ("merge accumulations", optimize.merge_accumulations),
                ("gather numbers", lambda f: optimize.gather_numbers(f, sets.specializer(namer)))
                if nd_all else None,
            ], self.verbose)
            self._comment(info, fwd_def)
            self._comment(info, adj_def, adjoint=True)
            ns = dict(namer.globals)
            for bound, r in callee_bindings:
                self.fixups.append((ns, bound.fwd, r, "fwd"))
                self.fixups.append((ns, bound.adj, r, "adj"))
            for nm, getter in norm.data_refs:
                ns[nm] = getter()
                self.refresh.append((ns, nm, getter))
            src_f = codegen.function_source(
                fwd_def, f"Forward sweep of {info.name}, saving what {adj_fn_name} needs."
            )
            src_a = codegen.function_source(
                adj_def, f"Adjoint of {info.name} with respect to {', '.join(req.wrt) or 'nothing'}."
            )
            source = src_f + "\n\n" + src_a
            if self.verbose:
                _dump(f"codegen: {info.name} (callee)", source)
            label = f"{info.name}"
            req.fwd_fn = codegen.compile_source(source, fwd_fn_name, ns, label, info.filename)
            req.adj_fn = ns[adj_fn_name]
            req.source = source
            return Generated(fn=req.fwd_fn, source=source, info=info)

        # fused top-level function
        fn_args = info.signature(namer.ref)
        if mode == "vjp":
            fn_args.kwonlyargs = fn_args.kwonlyargs + [name(seed_param)]
            fn_args.kwonlyargs[-1].ctx = gast.Param()
            fn_args.kw_defaults = fn_args.kw_defaults + [None]
        grads_expr: gast.expr = grads[0] if single else gast.Tuple(elts=grads, ctx=gast.Load())
        if mode == "grad":
            final = gast.Return(value=grads_expr)
        else:
            final = gast.Return(value=gast.Tuple(elts=[copy.deepcopy(ret_expr), grads_expr], ctx=gast.Load()))
        final.line = line0
        body_all = optimize_block(head + forward + pre_adjoint) + optimize_block(seed_stmts + adjoint + tail)
        fname = {
            "grad": f"grad_{info.name}",
            "value_and_grad": f"value_and_grad_{info.name}",
            "vjp": f"vjp_{info.name}",
        }[mode]
        fdef = gast.FunctionDef(
            name=fname,
            args=fn_args,
            body=body_all + [final],
            decorator_list=[],
            returns=None,
            type_comment=None,
            type_params=[],
        )
        floats = (active - set(params)) | {namer.adjoint(v) for v in active}
        ndim_of = sets.specializer(namer).ndim_of
        run_passes(fdef, [
            ("fold the unit seed", lambda f: optimize.fold_unit_seed(f, namer, shp_all, floats, set(params)))
            if shp_all and mode not in ("vjp", "split") else None,
            ("dead code", optimize.dead_code),
            ("propagate adjoints", lambda f: optimize.propagate_adjoints(f, temp_adjoint)),
            ("merge accumulations", optimize.merge_accumulations),
            ("gather numbers", lambda f: optimize.gather_numbers(f, sets.specializer(namer)))
            if nd_all else None,
            ("defer outer products", lambda f: optimize.defer_outer_products(f, namer, ndim_of))
            if nd_all else None,
            ("nest forward temporaries",
             lambda f: optimize.nest_forward_temporaries(f, namer.temps.__contains__)),
            # the passes below write forms the transforms do not read back: variants for one signature only
            ("write in place", lambda f: optimize.write_in_place(f, namer, fx.ints(), nd_all))
            if self.numpy_params else None,
            ("one save per loop iteration", lambda f: optimize.batch_loop_saves(f, namer, stack))
            if self.specialized and uses_stack else None,
            ("distinct results", lambda f: optimize.distinct_results(f, namer, grads_expr))
            if isinstance(grads_expr, gast.Tuple) else None,
        ], self.verbose)
        self._comment(info, fdef)
        ns = dict(namer.globals)
        for bound, r in callee_bindings:
            self.fixups.append((ns, bound.fwd, r, "fwd"))
            self.fixups.append((ns, bound.adj, r, "adj"))
        refresh = []
        for nm, getter in norm.data_refs:
            ns[nm] = getter()
            refresh.append((ns, nm, getter))
        doc = {
            "grad": "Gradient",
            "value_and_grad": "Value and gradient",
            "vjp": "Value and vector-Jacobian product",
        }[mode] + f" of {info.name} with respect to {', '.join(wrt)}, by srcgrad."
        source = codegen.function_source(fdef, doc)
        if self.verbose:
            _dump(f"codegen: {fname}", source)
        compiled = codegen.compile_source(source, fname, ns, fname, info.filename)
        out_scalar = all(isinstance(a, gast.Name) and a.id in scalars for a in out_atoms)
        return Generated(
            fn=compiled,
            source=source,
            refresh=refresh + self.refresh,
            info=info,
            return_line=getattr(ret, "line", None),
            scalar_out=out_scalar,
        )

    # ------------------------------------------------------------------------------- comments
    def _comment(
        self, info: FunctionInfo, fdef: gast.FunctionDef, adjoint: bool = False
    ) -> None:
        """Insert `# line N: <user source>` before each run of statements from one user line."""
        counter = [0]

        def walk(block: list, in_adjoint: bool, top: bool, last: Any = None) -> list:
            out: list = []
            for s in block:
                adj_here = in_adjoint or getattr(s, "adjoint", False)
                if top:
                    counter[0] += 1
                line = getattr(s, "line", None)
                if line is not None and (line, adj_here) != last and not isinstance(s, gast.Return):
                    text = info.source_line(line).strip()
                    if text:
                        label = "adjoint of line" if adj_here else "line"
                        out.append(Comment(f"{label} {info.user_lineno(line)}: {text}"))
                    last = (line, adj_here)
                if isinstance(s, (gast.If, gast.For, gast.While)):
                    # a body's first statement repeats no comment its header already has
                    s.body = walk(s.body, adj_here, False, last)
                    s.orelse = walk(s.orelse, adj_here, False, last)
                    last = None if any(getattr(x, "line", None) != line for x in s.body + s.orelse) else last
                out.append(s)
            return out

        fdef.body = walk(fdef.body, adjoint, True)


def _mark_adjoint(s: Any) -> None:
    for n in gast.walk(s) if not isinstance(s, Restore) else []:
        if isinstance(n, gast.stmt):
            n.adjoint = True


def _at(site: Any) -> Any:
    loc = gast.Pass()
    loc.lineno = getattr(site, "line", None)
    return loc
