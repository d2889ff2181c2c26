"""One function through reverse mode's stages: the state of one build, a method per stage.

`stages.run_stages` drives it (the same driver runs forward mode's `forward.ForwardBuild`): facts, then
the transform (seeds and the adjoint of each statement, pruned), then save/restore planning (what the
adjoint reads from the forward: pushes, pops, loop counters), then assembly into the fused function
(`grad_f`, `value_and_grad_f`, `vjp_f`) or a callee's `f_fwd`/`f_adj` pair, then the optimizer's passes
(each printed by SRCGRAD_DEBUG) and codegen.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import gast

from srcgrad import analysis, codegen, facts, normalize, optimize, reverse, stages
from srcgrad.errors import located
from srcgrad.names import Namer
from srcgrad.normalize import assign, call, const, name
from srcgrad.parse import FunctionInfo
from srcgrad.reverse import CalleeRequest, Restore, State
from srcgrad.runtime import primitives as P
from srcgrad.runtime import stack as rt_stack
from srcgrad.stages import Generated, _dump, body_source

if TYPE_CHECKING:
    from srcgrad.pipeline import Builder

_FUSED_NAMES = {"grad": "grad_{}", "value_and_grad": "value_and_grad_{}", "vjp": "vjp_{}"}
_FUSED_DOCS = {"grad": "Gradient", "value_and_grad": "Value and gradient",
               "vjp": "Value and vector-Jacobian product"}


class ReverseBuild:
    """Reverse mode for one normalized function. `mode`: 'grad', 'value_and_grad', 'vjp' (a fused
    function) or 'split' (a callee's pair, for `req`)."""

    def __init__(self, builder: "Builder", info: FunctionInfo, namer: Namer, body: list,
                 norm: normalize.Normalizer, wrt: list[str], params: list[str], known: dict, mode: str,
                 single: bool = True, req: CalleeRequest | None = None):
        self.builder, self.info, self.namer, self.body, self.norm = builder, info, namer, body, norm
        self.wrt, self.params, self.known, self.mode, self.single, self.req = (
            wrt, params, known, mode, single, req)
        self.verbose = builder.verbose
        self.ret = body[-1] if body and isinstance(body[-1], gast.Return) else None
        if self.ret is None:
            raise located(info, info.node, "internal error: normalized function has no final return")
        self.callee_bindings: list[tuple[Any, CalleeRequest]] = []
        self.adjoint_functions: set[str] = set()  # a callee's f_adj (its pair's f_fwd is not one)

    # ------------------------------------------------------------------------------------ facts
    def facts(self) -> None:
        """The fact stage (stages.fact_stage), then activity: which values carry a derivative."""
        namer, known = self.namer, self.known
        self.ret_value = self.ret.value
        self.out_atoms = self.ret_value.elts if isinstance(self.ret_value, gast.Tuple) else [self.ret_value]
        outputs = {a.id for a in self.out_atoms if isinstance(a, gast.Name)}
        self.fwd_body, fx = stages.fact_stage(self.body[:-1], namer, self.params, known, outputs,
                                              self.builder.callee_facts)
        act = analysis.activity(self.fwd_body, set(self.wrt), outputs, mutable=set(self.norm.lists))
        self.active, self.varied = set(act.active), set(act.varied)
        self.fx, self.scalars = fx, fx.scalars()
        int_params = {p: f.value for p, f in known.items()  # a callee's int arguments are in its key
                      if isinstance(f, facts.Num) and f.type is int and f.value is not None}
        self.sets = stages.FactSets.of(fx, {v: namer.adjoint(v) for v in self.active}, int_params)
        if self.verbose:
            _dump("analysis", f"active: {sorted(self.active)}\nscalars: {sorted(self.scalars)}\nfacts: "
                  + ", ".join(f"{v}: {f}" for v, f in sorted(fx.of.items())))

    # -------------------------------------------------------------------------------- transform
    def request(self, fn: Any, wrt_names: tuple[str, ...], site: Any) -> CalleeRequest:
        """The pair a call of user function `fn` runs, built for its arguments' facts at the call."""
        signature = facts.site_signature(site.op, self.fx.get) or ()
        r = self.builder.callee(fn, wrt_names, site, self.info, signature)
        fwd, adj = self.builder.bind_callee(self.namer, r)
        bound = CalleeRequest(fn=fn, wrt=r.wrt, fwd=fwd, adj=adj)
        bound.returns_tuple = getattr(r, "returns_tuple", False)
        self.callee_bindings.append((bound, r))
        return bound

    def transform(self) -> None:
        """The seeds (the output's cotangent), the adjoint of each statement in reverse, the zero
        gradients of inputs the output does not reach; pruned of what nothing reads."""
        namer, mode, fwd_body, active = self.namer, self.mode, self.fwd_body, self.active
        rev = self.rev = reverse.Reverse(self.info, fwd_body, namer, self.wrt, active, self.scalars,
                                         self.request)
        rev.lists = set(self.norm.lists)
        rev.numbers = self.fx.immutable()
        rev.read_lists = {
            st_.op.args[0].id
            for st_ in analysis.iter_stmts(fwd_body)
            if getattr(getattr(st_, "op", None), "kind", None) == "list_get"
        }
        rev.simplify = lambda e: self.sets.specialize(e, namer)
        self.stack = rev.stack_name = namer.unique("_stack")
        line0 = self.line0 = self.ret.line if hasattr(self.ret, "line") else None

        st = State()
        seed_stmts: list = []
        self.seed_param = None
        if mode == "split":
            self.seed_param = namer.unique("b_out")
        elif mode == "vjp":
            self.seed_param = namer.unique("v")
        for i, a in enumerate(self.out_atoms):
            if not (isinstance(a, gast.Name) and a.id in active):
                if mode == "grad":
                    # an output no input reaches still has to be a scalar for grad (the check seed_of makes)
                    seed_ref = name(namer.ref(rt_stack.seed_of, "seed_of"))
                    check = gast.Expr(value=call(seed_ref, [copy.deepcopy(a)]))
                    check.line = line0
                    seed_stmts.append(check)
                continue
            if self.seed_param is not None:
                g = name(self.seed_param)
                if isinstance(self.ret_value, gast.Tuple):
                    part = rt_stack.cotangent_part if mode == "vjp" else None
                    n_out = const(len(self.out_atoms))
                    g = (call(name(namer.ref(part, "cotangent_part")), [g, const(i), n_out])
                         if part is not None else gast.Subscript(value=g, slice=const(i), ctx=gast.Load()))
                if mode == "vjp" and a.id not in self.scalars:
                    # the cotangent must have the output's shape (checked: the adjoint relies on it)
                    g = call(name(namer.ref(rt_stack.cotangent, "cotangent")), [g, name(a.id)])
            elif a.id in self.scalars:
                g = const(1.0)
            else:
                g = call(name(namer.ref(rt_stack.seed_of, "seed_of")), [name(a.id)])
            rev.accumulate(a.id, g, st, seed_stmts, line0)

        for v in sorted(getattr(self.norm, "stacks", ())):
            if v in active:  # differentiating generated code: cotangents of popped values wait here
                s0 = assign(namer.adjoint(v), call(name(namer.ref(rt_stack.Stack, "Stack")), []))
                s0.line = line0
                seed_stmts.append(s0)
                st.init.add(v)
        rev.refuse_opaque_in_order(fwd_body, self.varied)
        adjoint = rev.block(fwd_body, st)
        tail = [rev.zero_init(p, line0) for p in self.wrt if p not in st.init]
        reverse.overwrite_info(fwd_body, set(self.params))
        adjoint, reads = reverse.prune(adjoint)
        for s_ in tail:
            reads |= reverse.loads(s_)
        self.seed_stmts, self.adjoint, self.tail, self.reads = seed_stmts, adjoint, tail, reads
        if self.verbose:
            _dump("reverse (adjoint before saves)", body_source(seed_stmts + adjoint + tail))

    # ---------------------------------------------------------------------- save/restore planning
    def plan_saves(self) -> None:
        """What the adjoint reads that the forward overwrites: each is pushed where the forward
        assigns it and popped where the adjoint restores it; loops the adjoint walks back over count
        their iterations; variables assigned on some paths only start as None."""
        namer, stack, mode, fwd_body = self.namer, self.stack, self.mode, self.fwd_body
        kept_loops = reverse.kept_loops(self.adjoint)
        restores = reverse.restores(self.adjoint)
        push_map: dict[int, list[str]] = {}
        need_none: set[str] = set()
        for r in restores:
            push_map.setdefault(id(r.src), []).append(r.var)
            if r.src.ow.get(r.var) == "maybe":
                need_none.add(r.var)
        self.uses_stack = bool(restores) or bool(self.rev.callsites)

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

        self.adjoint = replace_restores(self.adjoint)
        callsite_ids = {id(s): r for s, r in self.rev.callsites}

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

        self.forward = instrument(fwd_body)

        # the value returned must be the forward's, even if the adjoint restores the variable
        restored_vars = {r.var for r in restores}
        self.ret_expr = self.ret_value
        self.pre_adjoint: list = []
        if any(isinstance(a, gast.Name) and a.id in restored_vars for a in self.out_atoms):
            value_name = namer.unique("value")
            s = assign(value_name, copy.deepcopy(self.ret_value))
            s.line = self.line0
            s.pure = True
            self.pre_adjoint.append(s)
            self.ret_expr = name(value_name)

        head: list = []
        if self.uses_stack and mode != "split":
            head.append(assign(stack, call(name(namer.ref(rt_stack.Stack, "Stack")), [])))
        for v in sorted(need_none):
            s = assign(v, const(None))
            s.line = None
            head.append(s)
        params = set(self.params)
        if mode != "split":
            # the adjoint of a branch reads the variables the other branch assigns (`bq = zeros_as(q)`):
            # one assigned only on some paths is None on the others (zeros_as(None) is 0.0)
            definite = reverse.definitely_assigned(fwd_body, params)
            assigned = {t for st_ in analysis.iter_stmts(fwd_body) for t in analysis.targets_of(st_)}
            for v in sorted((self.reads & assigned) - definite - need_none - params):
                s = assign(v, const(None))
                s.line = None
                head.append(s)
        self.head, self.need_none = head, need_none

        scalar_params = {p for p, f in self.known.items() if isinstance(f, facts.Num)}
        self.grads = []
        for p in self.wrt:
            g: gast.expr = name(self.rev.adj(p))
            if p in scalar_params and mode != "split":
                g = call(name(namer.ref(float, "float")), [g])
            self.grads.append(g)
        for s in self.seed_stmts + self.adjoint + self.tail:
            _mark_adjoint(s)

    # --------------------------------------------------------------------------------- assembly
    def specialized(self, block: list) -> list:
        """`block`, each statement specialized to the facts."""
        return self.sets.optimize_block(block, self.namer, self.scalars,
                                        lambda s: not getattr(s, "adjoint", False))

    def assemble(self) -> list[gast.FunctionDef]:
        """The fused function, or a callee's f_fwd (pushing what f_adj reads) and f_adj."""
        if self.req is not None:
            self.req.returns_tuple = isinstance(self.ret_value, gast.Tuple)
        return self.assemble_pair() if self.mode == "split" else [self.assemble_fused()]

    def assemble_pair(self) -> list[gast.FunctionDef]:
        info, namer, stack = self.info, self.namer, self.stack
        fwd_vars = set(self.params)
        for st_ in analysis.iter_stmts(self.forward):
            fwd_vars.update(analysis.targets_of(st_))
            if getattr(st_, "counter", None) is not None:
                fwd_vars.add(st_.counter[0])
        saved = sorted(v for v in self.reads if v in fwd_vars)
        definite = reverse.definitely_assigned(self.fwd_body, set(self.params))
        for v in saved:
            if v not in definite and v not in self.need_none:
                self.head.append(assign(v, const(None)))
        method = gast.Attribute(value=name(stack), attr="push", ctx=gast.Load())
        save_tuple = gast.Tuple(elts=[name(v) for v in saved], ctx=gast.Load())
        fwd_tail = [gast.Expr(value=call(method, [save_tuple]))] if saved else []
        fwd_args = info.signature(namer.ref)
        stack_param = gast.Name(id=stack, ctx=gast.Param(), annotation=None, type_comment=None)
        if fwd_args.posonlyargs:
            fwd_args.posonlyargs = [stack_param] + fwd_args.posonlyargs
        else:
            fwd_args.args = [stack_param] + fwd_args.args
        fwd_def = _function(f"{info.name}_fwd", fwd_args,
                            self.specialized(self.head + self.forward) + fwd_tail
                            + [gast.Return(value=copy.deepcopy(self.ret_value))])
        restore_saved = []
        if saved:
            tgt = gast.Tuple(elts=[name(v, store=True) for v in saved], ctx=gast.Store())
            restore_saved.append(
                assign(tgt, call(gast.Attribute(value=name(stack), attr="pop", ctx=gast.Load()), [])))
            restore_saved[-1].impure = True
        adj_args = gast.arguments(args=[name(self.seed_param), name(stack)], posonlyargs=[], vararg=None,
                                  kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
        for a in adj_args.args:
            a.ctx = gast.Param()
        adj_def = _function(f"{info.name}_adj", adj_args,
                            restore_saved + self.specialized(self.seed_stmts + self.adjoint + self.tail)
                            + [gast.Return(value=gast.Tuple(elts=self.grads, ctx=gast.Load()))])
        self.adjoint_functions.add(adj_def.name)
        return [fwd_def, adj_def]

    def assemble_fused(self) -> gast.FunctionDef:
        info, namer, mode = self.info, self.namer, self.mode
        fn_args = info.signature(namer.ref)
        if mode == "vjp":
            fn_args.kwonlyargs = fn_args.kwonlyargs + [name(self.seed_param)]
            fn_args.kwonlyargs[-1].ctx = gast.Param()
            fn_args.kw_defaults = fn_args.kw_defaults + [None]
        grads = self.grads
        self.grads_expr = grads[0] if self.single else gast.Tuple(elts=grads, ctx=gast.Load())
        if mode == "grad":
            final = gast.Return(value=self.grads_expr)
        else:
            final = gast.Return(value=gast.Tuple(elts=[copy.deepcopy(self.ret_expr), self.grads_expr],
                                                 ctx=gast.Load()))
        final.line = self.line0
        body = self.specialized(self.head + self.forward + self.pre_adjoint) \
            + self.specialized(self.seed_stmts + self.adjoint + self.tail)
        return _function(_FUSED_NAMES[mode].format(info.name), fn_args, body + [final])

    # ----------------------------------------------------------------------------------- passes
    def passes(self, fdef: gast.FunctionDef) -> list:
        """The optimizer's passes for `fdef`, in order (None: not for this build)."""
        namer, sets, mode = self.namer, self.sets, self.mode
        nd_all, shp_all = sets.ndims, sets.shapes
        temp_names = {namer.adjoint(v) for v in self.active if v.startswith("_t")}
        gather = ("gather numbers", lambda f: optimize.gather_numbers(f, sets.specializer(namer))) \
            if nd_all else None
        nest = ("nest forward temporaries",
                lambda f: optimize.nest_forward_temporaries(f, namer.temps.__contains__))
        adjoint_passes = [
            ("dead code", optimize.dead_code),
            ("propagate adjoints", lambda f: optimize.propagate_adjoints(f, temp_names.__contains__)),
            ("merge accumulations", optimize.merge_accumulations),
            gather,
        ]
        if mode == "split":
            return adjoint_passes if fdef.name in self.adjoint_functions \
                else [("dead code", optimize.dead_code), nest]
        floats = (self.active - set(self.params)) | {namer.adjoint(v) for v in self.active}
        ndim_of = sets.specializer(namer).ndim_of
        grads_expr = self.grads_expr
        return [
            ("fold the unit seed",
             lambda f: optimize.fold_unit_seed(f, namer, shp_all, floats, set(self.params)))
            if shp_all and mode != "vjp" else None,
            *adjoint_passes,
            ("defer outer products", lambda f: optimize.defer_outer_products(f, namer, ndim_of))
            if nd_all else None,
            nest,
            # the passes below write forms the transforms do not read back: variants for one signature only
            ("write in place", lambda f: optimize.write_in_place(f, namer, self.fx.ints(), nd_all))
            if self.builder.numpy_params else None,
            ("one save per loop iteration", lambda f: optimize.batch_loop_saves(f, namer, self.stack))
            if self.builder.specialized and self.uses_stack else None,
            ("distinct results", lambda f: optimize.distinct_results(f, namer, grads_expr))
            if isinstance(grads_expr, gast.Tuple) else None,
        ]

    # ---------------------------------------------------------------------------------- codegen
    def codegen(self, fdefs: list[gast.FunctionDef]) -> Generated:
        """Source with `# line N:` comments, compiled in a namespace binding what it refers to."""
        builder, info, namer = self.builder, self.info, self.namer
        for fdef in fdefs:
            builder._comment(info, fdef, adjoint=fdef.name in self.adjoint_functions)
        ns = dict(namer.globals)
        for bound, r in self.callee_bindings:
            builder.fixups.append((ns, bound.fwd, r, "fwd"))
            builder.fixups.append((ns, bound.adj, r, "adj"))
        refresh = []
        for nm, getter in self.norm.data_refs:
            ns[nm] = getter()
            refresh.append((ns, nm, getter))
        if self.mode == "split":
            builder.refresh.extend(refresh)
            req = self.req
            fwd_def, adj_def = fdefs
            source = codegen.function_source(fwd_def, f"Forward sweep of {info.name}, saving what "
                                                      f"{adj_def.name} needs.") + "\n\n" + \
                codegen.function_source(adj_def, f"Adjoint of {info.name} with respect to "
                                                 f"{', '.join(req.wrt) or 'nothing'}.")
            if self.verbose:
                _dump(f"codegen: {info.name} (callee)", source)
            req.fwd_fn = codegen.compile_source(source, fwd_def.name, ns, info.name, info.filename)
            req.adj_fn = ns[adj_def.name]
            req.source = source
            return Generated(fn=req.fwd_fn, source=source, info=info)
        (fdef,) = fdefs
        doc = f"{_FUSED_DOCS[self.mode]} of {info.name} with respect to {', '.join(self.wrt)}, by srcgrad."
        source = codegen.function_source(fdef, doc)
        if self.verbose:
            _dump(f"codegen: {fdef.name}", source)
        compiled = codegen.compile_source(source, fdef.name, ns, fdef.name, info.filename)
        return Generated(
            fn=compiled,
            source=source,
            refresh=refresh + builder.refresh,
            info=info,
            return_line=getattr(self.ret, "line", None),
            scalar_out=all(isinstance(a, gast.Name) and a.id in self.scalars for a in self.out_atoms),
        )


def _mark_adjoint(s: Any) -> None:
    """The optimizer keeps NumPy's types for the user's values only: an adjoint's statements say so."""
    for n in gast.walk(s) if not isinstance(s, Restore) else []:
        if isinstance(n, gast.stmt):
            n.adjoint = True


def _function(fname: str, args: gast.arguments, body: list) -> gast.FunctionDef:
    return gast.FunctionDef(name=fname, args=args, body=body, decorator_list=[], returns=None,
                            type_comment=None, type_params=[])
