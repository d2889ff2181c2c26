"""The reverse-mode pipeline, stage by stage: parse -> fence -> normalize -> analysis -> reverse ->
instrument -> optimize -> codegen. `SRCGRAD_DEBUG=1` (or `verbose=True`) prints the code after each stage.

`Builder.reverse(fn, kind, wrt, scalar_mask)` generates one top-level function (forward and adjoint fused
in one frame). Calls to user functions with active arguments are generated as a pair `f_fwd`/`f_adj` that
share the caller's stack (`Builder.callee`); recursion works because a pair is registered before its body
is generated and bound into the namespaces when the whole build is done.
"""

from __future__ import annotations

import time
import types
import weakref
from typing import Any, Callable

import gast

from srcgrad import facts, normalize, optimize, stages
from srcgrad.codegen import Comment
from srcgrad.errors import TransformError, located
from srcgrad.names import Namer
from srcgrad.parse import FunctionInfo, fence, merge_into_recording, parse_function, recording
from srcgrad.reverse import CalleeRequest
from srcgrad.reverse_build import ReverseBuild
from srcgrad.stages import Generated, _dump, body_source, debug_enabled, run_passes  # noqa: F401


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
    def front(self, fn: Any, wrt: Any, normalizer: Callable | None = None
              ) -> tuple[FunctionInfo, Namer, list, normalize.Normalizer]:
        """The front end, the same for every mode: parse, fence, normalize (one operation per
        statement). `wrt`: the differentiated parameters, or a function of the parsed function giving
        them. `normalizer(info, namer, wrt)`: the mode's normalizer (forward mode's reads generated
        code too); by default reverse mode's, which refuses to differentiate generated code."""
        info = parse_function(fn)
        fence(info)
        if callable(wrt):
            wrt = wrt(info)
        if self.verbose:
            _dump(f"parse: {info.name} ({info.filename}:{info.user_lineno(1)})", "\n".join(info.lines))
        namer = Namer(set(info.locals))
        namer.reserved = info.free_names()
        if normalizer is None:
            norm = normalize.Normalizer(info, namer, set(wrt))
            norm.refuse_generated_callees = True
        else:
            norm = normalizer(info, namer, set(wrt))
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
        """Reverse mode for one normalized function, through the stages (`stages.run_stages`)."""
        return stages.run_stages(ReverseBuild(self, info, namer, body, norm, wrt, params, known, mode,
                                              single, req))

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


def _at(site: Any) -> Any:
    loc = gast.Pass()
    loc.lineno = getattr(site, "line", None)
    return loc
