"""Forward mode by source transformation: tangent code interleaved with the primal.

The front end is the reverse compiler's (parse -> fence -> normalize, `Builder.front`), so forward mode
accepts the same language. `Forward` walks the normalized body once, in order: after each statement
`v = prim(a, b)` it writes `dv = <jvp rule of a at da> + <jvp rule of b at db>`, the rule bodies from
runtime/rules.py inlined with `templates.instantiate` exactly as reverse mode inlines the vjp rules.
Control flow is copied as it is: forward mode records nothing, so a `while` with a data-dependent trip
count needs no stack.

Tangents are tracked like the reverse transform tracks adjoints: a variable's tangent `dv` exists only
once something non-zero flowed into it; zeros are written only where control flow joins paths that
disagree (the end of a branch, a loop's back edge or a `break`).

Generated code is itself differentiable, so forward-over-reverse is this transform applied to the
reverse compiler's generated function. Its `Stack` (what the forward sweep records for the adjoint)
becomes a `PairStack`: a transformed `push` records `(value, tangent)`; a plain `push` records
`(value, None)` (no tangent: the value carried no derivative), and `pop2` hands back a zero tangent
for those. Calls to rule helpers that are linear in their cotangent argument (`unbroadcast`, `keep`,
...) get the helper applied to the tangent; helpers whose value is piecewise constant (`balance`,
`argmax_share`, ...) get no tangent; every other Python function is transformed recursively.

Batched mode (`batched=True`) gives every tangent a leading axis (the basis vectors of a Jacobian or
Hessian), so one call of the generated code computes all columns; see `srcgrad.batching`.
"""

from __future__ import annotations

import copy
import inspect
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import gast
import numpy as np

from srcgrad import batching, codegen, facts, optimize, stages
from srcgrad.analysis import activity, diff_operands, iter_stmts, stack_method, targets_of
from srcgrad.codegen import Comment
from srcgrad.errors import TransformError, located
from srcgrad.facts import hashable as _hashable
from srcgrad.names import Namer
from srcgrad.normalize import Normalizer, Op, Verbatim, assign, call, const, name
from srcgrad.parse import (
    FunctionInfo,
    merge_into_recording,
    parse_function,
    recording,
    signature_of,
)
from srcgrad.pipeline import Builder, _dump, body_source, cache_on, debug_enabled, params_of
from srcgrad.runtime import primitives as P
from srcgrad.runtime import rules as R
from srcgrad.runtime import stack as rt_stack
from srcgrad.runtime.backend import is_scalar
from srcgrad.runtime.primitives import Primitive
from srcgrad.templates import instantiate, table


# ================================================================================== runtime helpers
def tzero(x: Any) -> Any:
    """A zero tangent for x: 0.0 for Python numbers, zeros for arrays, elementwise for tuples and lists,
    None for None (a variable the reverse code pre-declares as None before its loop)."""
    if x is None:
        return None
    t = type(x)
    if t is float or t is int or t is bool:
        return 0.0
    if t is range or t is str or t is slice:
        return None
    if t is tuple or t is list:
        return t(tzero(v) for v in x)
    return P.zeros_like(x)


def pack_tangent(ts: Any, xs: Any) -> Any:
    """The tangent of a list or tuple literal that an array primitive reads as an array (the rows of
    `np.array([[2 * p[0], p[1]], [1.0, -p[1]]])` are `stack` operands): the tangents of the elements,
    each broadcast to its element's shape (a constant's tangent is a bare 0.0), stacked like the
    primal. A tangent that is already an array is returned as it is."""
    if not isinstance(ts, (list, tuple)):
        return ts
    parts = []
    for t, x in zip(ts, xs, strict=True):
        t = pack_tangent(t, x)
        shape = tuple(P.shape(x))
        parts.append(t if tuple(P.shape(t)) == shape else P.broadcast_to(t, shape=shape))
    return P.stack(*parts, axis=0)


def list_pop(xs: list) -> Any:
    """`xs.pop()` of a list in generated reverse code (the undo of an append), as a call forward mode
    can pair with the same pop of the list of tangents."""
    return xs.pop()


def list_set(xs: list, i: Any, v: Any) -> list:
    """`xs[i] = v` of a list in generated reverse code (a list of cotangents), as a call."""
    xs[i] = v
    return xs


class PairStack(list):
    """The reverse code's `Stack`, in forward-transformed code: entries are (value, tangent or None).

    `push`/`pop` keep their plain meaning (used by statements that carry no derivative), so plain and
    transformed statements can share one stack; `pop2` returns (value, tangent) with a zero tangent for
    a value pushed without one."""

    __slots__ = ()

    def push(self, v: Any) -> None:
        self.append((v, None))

    def pop(self) -> Any:  # type: ignore[override]
        return list.pop(self)[0]

    def pop2(self) -> tuple[Any, Any]:
        v, d = list.pop(self)
        return v, (tzero(v) if d is None else d)

    def pop2b(self, nb: int) -> tuple[Any, Any]:
        """`pop2` for batched tangents (a zero tangent has the batch axis too)."""
        v, d = list.pop(self)
        return v, (batching.bzero(v, nb) if d is None else d)


class PairStack2(PairStack):
    """The stack of forward-transformed code (a `PairStack`), in code transformed once more (third
    derivatives: jvp(jvp(grad(f)))). Entries are (PairStack entry, its tangent or None); the PairStack
    methods keep their meaning for statements left as they are, the `_t` methods carry the new tangent."""

    __slots__ = ()

    def push(self, v: Any) -> None:
        list.append(self, ((v, None), None))

    def pop(self) -> Any:  # type: ignore[override]
        return list.pop(self)[0][0]

    def append(self, e: Any) -> None:  # type: ignore[override]
        list.append(self, (e, None))

    def pop2(self) -> tuple[Any, Any]:
        (v, d), _ = list.pop(self)
        return v, (tzero(v) if d is None else d)

    def push_t(self, v: Any, dv: Any) -> None:
        list.append(self, ((v, None), (dv, None)))

    def pop_t(self) -> tuple[Any, Any]:
        (v, _), t = list.pop(self)
        return v, (tzero(v) if t is None or t[0] is None else t[0])

    def append_t(self, e: Any, de: Any) -> None:
        list.append(self, (e, de))

    def pop2_t(self) -> tuple[Any, Any]:
        (v, d), t = list.pop(self)
        d = tzero(v) if d is None else d
        if t is None:
            return (v, d), (tzero(v), tzero(d))
        return (v, d), (tzero(v) if t[0] is None else t[0], tzero(d) if t[1] is None else t[1])


STACK_CLASSES = (rt_stack.Stack, PairStack)     # the stack of code at transform level 0, 1


# Rule helpers called from generated reverse code, by how their value depends on their arguments: views
# of the helpers' records (`primitives.HELPERS`, declared in runtime/rules.py), computed once below.
# LINEAR: fn -> (positions the value is linear in, positions used only for their shape/static value).
# ZERO: functions whose value has zero derivative (piecewise constant, shapes, seeds, detach).
P.helper(tzero, zero=True)
LINEAR: dict[Any, tuple[tuple[int, ...], tuple[int, ...]]] = {
    h.fn: (h.linear, tuple(sorted({*(() if h.shape_only is True else h.shape_only), *h.static})))
    for h in P.HELPERS.values() if h.linear}
ZERO: set[Any] = {h.fn for h in P.HELPERS.values() if h.zero}

# Helpers with a hand-written tangent: fn -> (tangent function, positions whose tangents it takes),
# filled by `tangent_of` where each tangent function is defined.
SPECIAL: dict[Any, tuple[Any, tuple[int, ...]]] = {}


def tangent_of(helper_fn: Callable, takes: tuple[int, ...]) -> Callable[[Callable], Callable]:
    """Decorator: the function below is the hand-written tangent of rule helper `helper_fn`, taking the
    helper's arguments and then the tangents of the arguments at positions `takes` (None: no tangent)."""

    def register(tfn: Callable) -> Callable:
        SPECIAL[helper_fn] = (tfn, tuple(takes))
        return tfn

    return register


@tangent_of(R.einsum_vjp, takes=(0, 1))
def einsum_vjp_tangent(g: Any, xs: tuple, i: int, subscripts: str, dg: Any, dxs: Any) -> Any:
    """The tangent of `einsum_vjp(g, xs, i, subscripts)`: it is linear in g and in each operand but
    operand i (which it only reads for its shape)."""
    total = None if dg is None else R.einsum_vjp(dg, xs, i, subscripts)
    if dxs is not None:
        for j in range(len(xs)):
            if j != i and dxs[j] is not None:  # None: an operand without a tangent (a module's array)
                term = R.einsum_vjp(g, R.replace_at(xs, j, dxs[j]), i, subscripts)
                total = term if total is None else total + term
    return tzero(R.einsum_vjp(g, xs, i, subscripts)) if total is None else total


def tape_jvp(fn: Callable, args: tuple, i: int, t: Any) -> Any:
    """J t of `fn` at `args` along argument i, on the eager tape by the double-vjp construction: exact,
    slow; for the few rule helpers whose tangent has no closed form here."""
    from srcgrad.runtime.tensor import Tensor, grad

    x = Tensor(args[i], requires_grad=True)
    y = fn(*args[:i], x, *args[i + 1:])
    u = Tensor(P.zeros_like(y._array), requires_grad=True)
    (g,) = grad((y,), (x,), (u,), create_graph=True)          # u -> J^T u, linear in u
    (jv,) = grad((g,), (u,), (Tensor(t),))
    return jv._array


@tangent_of(R.prod_others, takes=(0,))
def prod_others_tangent(x: Any, axis: Any, dx: Any, _daxis: Any = None) -> Any:
    """The tangent of `prod_others(x, axis)` (d prod(x)/dx): without zeros, po * (sum(dx/x) - dx/x);
    with zeros, exactly through the tape."""
    if dx is None:
        return tzero(R.prod_others(x, axis))
    if is_scalar(x):
        return 0.0 * dx
    if not R.has_zero(x):
        r = dx / x
        return R.prod_others(x, axis) * (P.sum(r, axis=axis, keepdims=True) - r)
    return tape_jvp(R.prod_others, (x, axis), 0, dx)


# ============================================================== the NumPy variant (numpy=True builds)
# Where every value is NumPy, a primitive is called as the NumPy function its record names (`numpy`
# fact), or as the faster variant below registered for it by `numpy_variant_of`; a rule helper as its
# registered NumPy variant.
NUMPY_DIRECT: dict[str, Any] = {}
NUMPY_HELPERS: dict[Any, Any] = {}


def numpy_variant_of(target: Any) -> Callable[[Callable], Callable]:
    """Decorator: the function below is the NumPy-only variant of `target`, a primitive's name or a rule
    helper, with the same calling convention."""

    def register(f: Callable) -> Callable:
        (NUMPY_DIRECT if isinstance(target, str) else NUMPY_HELPERS)[target] = f
        return f

    return register


@numpy_variant_of("index_add")
def np_index_add(x: Any, v: Any, index: Any = None) -> Any:
    """index_add for NumPy arrays: `+=` on a copy where no position can repeat (np.add.at otherwise)."""
    if R.has_int_array(index):
        return P.index_add(x, v, index=index)
    out = np.array(x, dtype=np.result_type(x, v), copy=True)
    out[index] += v
    return out


@numpy_variant_of(R.unbroadcast)
def np_unbroadcast(g: Any, x: Any) -> Any:
    """unbroadcast (sum a cotangent down to x's shape) with the common case, equal shapes, free."""
    if np.shape(g) == np.shape(x):
        return g
    return P.sum_to(g, shape=np.shape(x))


@numpy_variant_of("broadcast_to")
def np_broadcast_to(x: Any, shape: Any = None) -> Any:
    """broadcast_to, without NumPy's Python-level machinery for the two common cases."""
    xs = x.shape if hasattr(x, "shape") else ()
    shape = tuple(shape)
    if xs == shape:
        return x
    if xs == () or (type(x) is np.ndarray and x.size == 1 and len(xs) <= len(shape)):
        out = np.empty(shape, dtype=x.dtype if hasattr(x, "dtype") else np.float64)
        out.fill(x if xs == () else x.reshape(()))
        return out
    return np.broadcast_to(x, shape)


@numpy_variant_of(R.keep)
def np_keep(g: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """keep (a reduction's cotangent with the reduced axes put back) for NumPy values."""
    if keepdims:
        return g
    if axis is None and type(x) is np.ndarray:
        return np.reshape(g, (1,) * x.ndim)
    return R.keep(g, x, axis, keepdims)


@numpy_variant_of("sum")
def np_sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    if type(x) is np.ndarray:
        return x.sum(axis=axis, keepdims=keepdims)
    return np.sum(x, axis=axis, keepdims=keepdims)


@numpy_variant_of("mean")
def np_mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    if type(x) is np.ndarray:
        return x.mean(axis=axis, keepdims=keepdims)
    return np.mean(x, axis=axis, keepdims=keepdims)


for _p in P.PRIMITIVES.values():
    if _p.numpy and _p.name not in NUMPY_DIRECT:
        NUMPY_DIRECT[_p.name] = getattr(np, _p.numpy)


@numpy_variant_of(R.widen)
def np_widen(t: Any, ans: Any) -> Any:
    """widen (a tangent broadcast to the output's shape) with the common case, equal shapes, free."""
    if np.shape(t) == np.shape(ans):
        return t
    return R.widen(t, ans)


def numpy_variant(fdef: gast.FunctionDef, namer: Namer) -> None:
    """Where every value is a NumPy array (or number), call NumPy directly instead of the primitives'
    namespace dispatch: the same functions, one Python call less per operation."""
    for n in gast.walk(fdef):
        if isinstance(n, gast.Call) and isinstance(n.func, gast.Name):
            obj = namer.globals.get(n.func.id)
            repl = None
            if isinstance(obj, Primitive):
                repl = NUMPY_DIRECT.get(obj.name)
            elif _hashable(obj):
                repl = NUMPY_HELPERS.get(obj)
            if repl is not None:
                n.func = name(namer.ref(repl, getattr(repl, "__name__", "fn")))



# ================================================================================== the transform
@dataclass
class St:
    init: set[str] = field(default_factory=set)      # active names whose tangent holds a value
    defined: set[str] = field(default_factory=set)   # names certainly assigned here
    dead: bool = False                                # after break/continue: no fall-through

    def copy(self) -> "St":
        return St(set(self.init), set(self.defined), self.dead)


@dataclass
class JvpCallee:
    """A user (or rule helper) function called with active arguments: its generated `f_jvp`."""

    fn: Any
    wrt: tuple[str, ...]                 # parameters with tangents (stacks included: they carry them)
    tparams: dict[str, str]              # parameter -> keyword name of its tangent in f_jvp
    batched: bool = False
    compiled: Any = None
    source: str = ""
    n_out: int | None = None             # the number of values when it returns a tuple literal
    signature: tuple = ()                # its parameters' facts at the call (specialized builds)


def is_stack_param(p: str) -> bool:
    return p.startswith("_stack")


def tangent_param_names(info: FunctionInfo, wrt: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    used = set(info.locals)
    for p in wrt:
        if is_stack_param(p):
            continue
        nm = "d" + p
        while nm in used:
            nm = "d" + nm
        used.add(nm)
        out[p] = nm
    return out


def pop_only(body: list, stacks: set[str]) -> set[str]:
    """Names that nothing but a stack pop assigns."""
    popped: set[str] = set()
    other: set[str] = set()
    for s in iter_stmts(body):
        if isinstance(s, gast.Assign) and stack_method(s.value, stacks, ("pop", "pop2")):
            popped.update(targets_of(s))
        else:
            other.update(targets_of(s))
    return popped - other


def lst_is_stack(op: Any, stacks: set[str]) -> bool:
    return isinstance(op.args[0], gast.Name) and op.args[0].id in stacks


class Forward:
    def __init__(self, info: FunctionInfo, namer: Namer, active: set[str], stacks: set[str],
                 request: Callable[[Any, tuple[str, ...], Any], JvpCallee], batched: bool = False):
        self.info = info
        self.namer = namer
        self.active = active
        self.stacks = stacks
        self.request = request
        self.batched = batched
        self.level = 0          # 1 when the code is itself forward-transformed code (its stack pairs)
        self.tan: dict[str, str] = {}
        # names only a stack pop assigns (an f_adj's saved values): active because they may carry a
        # tangent. The reverse code applies no opaque operation to a value with a derivative (the reverse
        # transform would have refused), so an opaque use of one of these gets a zero tangent.
        self.maybe: set[str] = set()
        self.loop_notes: list[str] = []     # batched mode: rules that loop over the basis (commented)
        self.numbers: set[str] = set()      # names the facts say always hold a Python number
        self.float_arrays: set[str] = set()  # ... a floating-point NumPy array or scalar
        self.packs: set[str] = set()        # names a list/tuple literal assigns: a list of tangents
        self.as_array: dict[str, str] = {}  # while one primitive is built: operand -> its tangent as an array
        self.depth = 0
        self.loop_entry: list[set[str]] = []
        self.loop_exits: list[list[set[str]]] = []

    # --------------------------------------------------------------------------------- helpers
    def d(self, v: str) -> str:
        n = self.tan.get(v)
        if n is None:
            n = self.tan[v] = self.namer.unique("d" + v)
        return n

    def ref(self, obj: Any, preferred: str) -> str:
        return self.namer.ref(obj, preferred)

    def error(self, node: Any, msg: str, hint: str | None = None) -> Exception:
        loc = gast.Pass()
        loc.lineno = getattr(node, "line", getattr(node, "lineno", None))
        return located(self.info, loc, msg, hint)

    def notes(self, out: list) -> None:
        """Emit the batched-mode comments collected while building the last tangent."""
        for text in dict.fromkeys(self.loop_notes):
            out.append(Comment(text))
        self.loop_notes.clear()

    def tassign(self, v: str, expr: gast.expr, line: Any) -> gast.stmt:
        s = assign(self.d(v), optimize.fold(expr))
        s.line = line
        s.pure = True
        s.tangent = True  # computes a tangent, not a value of the user's function
        return s

    def zero_expr(self, v: str, st: St) -> gast.expr:
        if self.batched:
            return call(name(self.ref(batching.bzero, "bzero")), [name(v) if v in st.defined else const(None),
                                                                   name(batching.NB)])
        if v not in st.defined:
            return const(None)
        if v in self.numbers:
            return const(0.0)  # a Python number's tangent (tzero's value, without the call)
        if v in self.float_arrays:  # tzero's value for an array, which the optimizer reads
            return call(name(self.ref(P.zeros_like, "zeros_like")), [name(v)])
        return call(name(self.ref(tzero, "tzero")), [name(v)])

    def zero(self, v: str, st: St, line: Any) -> gast.stmt:
        st.init.add(v)
        return self.tassign(v, self.zero_expr(v, st), line)

    def set_zero(self, v: str, st: St, out: list, line: Any, assigned: bool = True) -> None:
        """v was just assigned a value with no derivative. Inside a loop its tangent becomes a zero
        shaped like the value (`tzero(v)`: v holds a value now, unless `assigned` is False), never a
        bare None that a later tangent statement, joined from another branch, would compute with."""
        if v not in self.active or v not in st.init:
            return
        if assigned:
            st.defined.add(v)
        if self.depth > 0:
            out.append(self.zero(v, st, line))
        else:
            st.init.discard(v)

    def tan_of(self, a: gast.expr, st: St) -> gast.expr:
        """The tangent of an operand (a zero when it has none)."""
        if isinstance(a, gast.Name) and a.id in self.active and a.id in st.init:
            return name(self.d(a.id))
        if isinstance(a, gast.Name):
            return self.zero_expr(a.id, st)
        return const(0.0) if not self.batched else call(name(self.ref(batching.bzero, "bzero")),
                                                         [copy.deepcopy(a), name(batching.NB)])

    def has_tan(self, a: Any, st: St) -> bool:
        return isinstance(a, gast.Name) and a.id in self.active and a.id in st.init

    # ------------------------------------------------------------------------------- blocks
    def block(self, stmts: list, st: St) -> list:
        out: list = []
        for s in stmts:
            if st.dead:
                break
            self.stmt(s, st, out)
        return out

    def stmt(self, s: Any, st: St, out: list) -> None:
        line = getattr(s, "line", None)
        if isinstance(s, gast.If):
            self.if_(s, st, out)
        elif isinstance(s, (gast.For, gast.While)):
            self.loop(s, st, out)
        elif isinstance(s, (gast.Break, gast.Continue)):
            entry = self.loop_entry[-1]
            for v in sorted(entry - st.init):
                out.append(self.zero(v, st, line))
            self.loop_exits[-1].append(set(st.init))
            out.append(s)
            st.dead = True
        elif isinstance(s, Verbatim):
            out.append(s)
            for t in s.targets:
                self.set_zero(t, st, out, line, assigned=s.simple)
            if s.simple:
                st.defined.update(s.targets)
        elif isinstance(s, gast.Assign):
            self.assign_(s, st, out)
            st.defined.update(targets_of(s))
        elif isinstance(s, gast.Expr):
            self.expr_(s, st, out)
        else:
            out.append(s)

    def if_(self, s: gast.If, st: St, out: list) -> None:
        line = getattr(s, "line", None)
        s1 = st.copy()
        body = self.block(s.body, s1)
        s2 = st.copy()
        orelse = self.block(s.orelse, s2)
        if not s1.dead and not s2.dead:
            for v in sorted(s1.init - s2.init):
                orelse.append(self.zero(v, s2, line))
            for v in sorted(s2.init - s1.init):
                body.append(self.zero(v, s1, line))
        live = [x for x in (s1, s2) if not x.dead]
        if live:
            st.init = set.union(*[x.init for x in live])
            st.defined = set.intersection(*[x.defined for x in live])
        else:
            st.dead = True
        node = gast.If(test=copy.deepcopy(s.test), body=body, orelse=orelse)
        node.line = line
        if getattr(s, "elif_", False):
            node.elif_ = True
        out.append(node)

    def loop(self, s: Any, st: St, out: list) -> None:
        line = getattr(s, "line", None)
        before = set(st.init)
        entry = set(st.init)
        is_for = isinstance(s, gast.For)
        if is_for and isinstance(s.target, gast.Name) and s.target.id in self.active:
            raise self.error(s, "internal error: a differentiated loop variable")
        for _ in range(50):
            self.loop_entry.append(entry)
            self.loop_exits.append([])
            self.depth += 1
            sb = St(set(entry), set(st.defined) | ({s.target.id} if is_for else set()))
            body = self.block(s.body, sb)
            self.depth -= 1
            self.loop_entry.pop()
            exits = self.loop_exits.pop()
            if not sb.dead:
                exits.append(set(sb.init))
            new = set().union(*exits) - entry if exits else set()
            if not new:
                break
            entry |= new
        else:  # pragma: no cover - the sets only grow
            raise self.error(s, "internal error: tangents of this loop did not converge")
        if not sb.dead:
            for v in sorted(entry - sb.init):
                body.append(self.zero(v, sb, line))
        for v in sorted(entry - before):
            # a variable first assigned inside the loop needs no tangent before it: every path that
            # reads its tangent assigned the variable (and so its tangent) earlier in the loop
            if v in st.defined:
                out.append(self.zero(v, st, line))
        node = copy.copy(s)
        node.body = body
        node.orelse = []
        out.append(node)
        st.init = set(entry)

    # ------------------------------------------------------------------------------- statements
    def expr_(self, s: gast.Expr, st: St, out: list) -> None:
        op = getattr(s, "op", None)
        line = getattr(s, "line", None)
        if op is None:
            out.append(s)
            return
        if op.kind == "append" and lst_is_stack(op, self.stacks):
            # the normalizer reads a Stack's push as a list append: push (value, tangent)
            lst, item = op.args
            pair = gast.Tuple(elts=[copy.deepcopy(item), name(self.d(item.id)) if self.has_tan(item, st)
                                    else const(None)], ctx=gast.Load())
            s2 = gast.Expr(value=call(gast.Attribute(value=name(lst.id), attr="append", ctx=gast.Load()),
                                      [pair]))
            s2.line = line
            out.append(s2)
            return
        if op.kind == "append":
            lst, item = op.args
            out.append(s)
            if lst.id in self.active and lst.id in st.init:
                e = call(gast.Attribute(value=name(self.d(lst.id)), attr="append", ctx=gast.Load()),
                         [self.tan_of(item, st)])
                s2 = gast.Expr(value=e)
                s2.line = line
                out.append(s2)
            return
        push = stack_method(s.value, self.stacks, ("push", "append") if self.level else "push")
        if push is not None and self.level:
            (v,) = s.value.args
            if self.has_tan(v, st):
                meth = "push_t" if s.value.func.attr == "push" else "append_t"
                s2 = gast.Expr(value=call(gast.Attribute(value=name(push), attr=meth, ctx=gast.Load()),
                                          [copy.deepcopy(v), name(self.d(v.id))]))
                s2.line = line
                out.append(s2)
            else:
                out.append(s)
            return
        if push is not None:
            (v,) = s.value.args
            if self.has_tan(v, st):
                pair = gast.Tuple(elts=[copy.deepcopy(v), name(self.d(v.id))], ctx=gast.Load())
                s2 = gast.Expr(value=call(gast.Attribute(value=name(push), attr="append", ctx=gast.Load()),
                                          [pair]))
                s2.line = line
                out.append(s2)
            else:
                out.append(s)
            return
        if op.kind == "call":
            self.callsite(s, [], st, out)
            return
        if op.kind == "opaque" and any(self.has_tan(a, st) for a in op.args if isinstance(a, gast.Name)):
            raise self.no_rule(s, op)
        out.append(s)

    def no_rule(self, s: Any, op: Any) -> Exception:
        what = getattr(op.fn, "__name__", None) or "this operation"
        return self.error(s, f"srcgrad has no derivative for {what} (no rule, and no Python source to "
                             "transform)", "write it with numpy functions or operators that have rules, "
                                           "or detach the value (.data / .detach()).")

    def assign_(self, s: gast.Assign, st: St, out: list) -> None:
        op = getattr(s, "op", None)
        line = getattr(s, "line", None)
        targets = targets_of(s)
        if op is None:
            out.append(s)
            for t in targets:
                self.set_zero(t, st, out, line)
            return
        s = self._stack_ctor(s)
        kind = op.kind
        act = [t for t in targets if t in self.active]
        if kind == "call":
            self.callsite(s, targets, st, out)
            return
        if not act:
            out.append(s)
            return
        if kind == "opaque":
            self.opaque(s, targets, st, out)
            return
        v = targets[0]
        if kind == "prim":
            self.prim(s, v, st, out)
        elif kind == "copy":
            out.append(s)
            a = op.args[0] if op.args else s.value
            if self.has_tan(a, st):
                out.append(self.tassign(v, name(self.d(a.id)), line))
                st.init.add(v)
            else:
                self.set_zero(v, st, out, line)
        elif kind == "list":
            out.append(s)
            lst = gast.List(elts=[], ctx=gast.Load())
            out.append(self.tassign(v, lst, line))
            st.init.add(v)
        elif kind == "pack":
            out.append(s)
            self.packs.add(v)
            if any(self.has_tan(a, st) for a in op.args):
                elts = [self.tan_of(a, st) for a in op.args]
                ctor = gast.Tuple(elts=elts, ctx=gast.Load()) if isinstance(s.value, gast.Tuple) else \
                    gast.List(elts=elts, ctx=gast.Load())
                out.append(self.tassign(v, ctor, line))
                st.init.add(v)
            else:
                self.set_zero(v, st, out, line)
        elif kind in ("unpack", "list_get"):
            out.append(s)
            src = op.args[0]
            if self.has_tan(src, st):
                e = gast.Subscript(value=name(self.d(src.id)), slice=copy.deepcopy(op.kwargs["index"]),
                                   ctx=gast.Load())
                out.append(self.tassign(v, e, line))
                st.init.add(v)
            else:
                self.set_zero(v, st, out, line)
        elif kind == "stack":
            out.append(s)
            lst = op.args[0]
            if self.has_tan(lst, st):
                e = copy.deepcopy(s.value)
                e.args[0] = name(self.d(lst.id))
                if self.batched:
                    e.keywords = [gast.keyword(arg="axis", value=call(
                        name(self.ref(batching.shift_axis, "shift_axis")),
                        [k.value for k in e.keywords if k.arg == "axis"] or [const(0)]))]
                out.append(self.tassign(v, e, line))
                st.init.add(v)
            else:
                self.set_zero(v, st, out, line)
        elif kind == "list_pop":
            lst = op.args[0]
            if lst.id in self.stacks:
                self.opaque(s, targets, st, out)
            else:
                out.append(s)
                if self.has_tan(lst, st):
                    e = call(gast.Attribute(value=name(self.d(lst.id)), attr="pop", ctx=gast.Load()), [])
                    s2 = assign(self.d(v), e)
                    s2.line = line
                    s2.impure = True
                    out.append(s2)
                    st.init.add(v)
                else:
                    self.set_zero(v, st, out, line)
        elif kind in ("const", "nondiff"):
            out.append(s)
            for t in targets:
                self.set_zero(t, st, out, line)
        else:
            raise self.error(s, f"internal error: forward mode does not know operations of kind {kind!r}",
                             "report this: the normalizer has a new kind of statement.")

    def _stack_ctor(self, s: gast.Assign) -> gast.Assign:
        """`_stack = Stack()` -> `_stack = PairStack()` (and PairStack -> PairStack2 one level up)."""
        v = s.value
        if isinstance(v, gast.Call) and isinstance(v.func, gast.Name) and \
                self.namer.globals.get(v.func.id) is STACK_CLASSES[self.level]:
            new = (PairStack, PairStack2)[self.level]
            s2 = copy.copy(s)
            s2.value = call(name(self.ref(new, new.__name__)), [])
            return s2
        return s

    def prim(self, s: gast.Assign, v: str, st: St, out: list) -> None:
        op = s.op
        line = getattr(s, "line", None)
        contribs = [(i, a) for i, a in diff_operands(op) if a in self.active and a in st.init]
        rt = table()[op.prim]
        contribs = [(i, a) for i, a in contribs if rt.get("jvp", i) is not None]
        if not contribs:
            out.append(s)
            self.set_zero(v, st, out, line)
            return
        self_ref = any(isinstance(a, gast.Name) and a.id == v for a in op.args)
        self.as_array = self.packed_operands(contribs, line, out)

        def build(ans: str) -> gast.expr:
            if op.prim in ("add", "subtract") and len(contribs) == 2:
                # d(x ± y) = dx ± dy: the sum broadcasts to the output's shape by itself, and reading no
                # `ans` lets the optimizer drop primal values only a shape was wanted from
                d0, d1 = (name(self.tan_name(a)) for _, a in contribs)
                if self.batched:
                    fn = batching.badd if op.prim == "add" else batching.bsub
                    return call(name(self.ref(fn, fn.__name__)), [d0, d1])
                return gast.BinOp(left=d0, op=gast.Add() if op.prim == "add" else gast.Sub(), right=d1)
            joint = None if self.batched else self.jointly_linear(s, contribs)
            if joint is not None:
                return joint
            total = None
            for i, a in contribs:
                e = self.rule(op, i, a, ans)
                total = e if total is None else gast.BinOp(left=total, op=gast.Add(), right=e)
            return total

        expr = build(v)
        if self_ref and v in {n.id for n in gast.walk(expr) if isinstance(n, gast.Name)}:
            tmp = self.namer.fresh("_ans")
            s1 = assign(tmp, copy.deepcopy(s.value))
            s1.line = line
            s1.op = op
            out.append(s1)
            e2 = build(tmp)
            self.notes(out)
            out.append(self.tassign(v, e2, line))
            s3 = assign(v, name(tmp))
            s3.line = line
            out.append(s3)
        else:
            out.append(s)
            self.notes(out)
            out.append(self.tassign(v, expr, line))
        st.init.add(v)

    def jointly_linear(self, s: gast.Assign, contribs: list) -> gast.expr | None:
        """The tangent of a primitive jointly linear in the operands that carry one (its record's
        `linear` group holds exactly their positions, two or more): the primitive applied to their
        tangents, `index_update(dx, dv, index=i)` for `x[i] = v`, not a sum of one term per operand
        (`index_update(dx, 0.0, index=i) + index_update(0.0 * x, dv, index=i)`). None where that
        does not hold, or an operand is also read elsewhere in the statement."""
        op = s.op
        positions = {i for i, _ in contribs}
        groups = P.PRIMITIVES[op.prim].linear
        if len(positions) < 2 or not isinstance(groups, tuple) \
                or not any(set(g) == positions for g in groups):
            return None
        names = {a for _, a in contribs}
        elsewhere = [a for i, a in enumerate(op.args) if i not in positions] + list(op.kwargs.values())
        if any(isinstance(a, gast.Name) and a.id in names for a in elsewhere):
            return None
        expr = copy.deepcopy(s.value)
        for n in gast.walk(expr):
            if isinstance(n, gast.Name) and n.id in names:
                n.id = self.tan_name(n.id)
        return expr

    def packed_operands(self, contribs: list, line: Any, out: list) -> dict[str, str]:
        """A primitive reading a list literal (`stack([2 * p[0], p[1]], ...)` from an inline matrix) reads
        it as an array, but the literal's tangent is a list of its elements' tangents: convert it into a
        fresh name first (`pack_tangent`), leaving the list itself for the literal's other readers."""
        conv: dict[str, str] = {}
        for _, a in contribs:
            if a in self.packs and a not in conv:
                fn = batching.bpack_tangent if self.batched else pack_tangent
                conv[a] = self.namer.fresh("_dpack")
                s = assign(conv[a], call(name(self.ref(fn, fn.__name__)), [name(self.d(a)), name(a)]))
                s.line = line
                s.pure = True
                out.append(s)
        return conv

    def tan_name(self, a: str) -> str:
        """The tangent of operand `a` of the primitive being built (see `packed_operands`)."""
        return self.as_array.get(a) or self.d(a)

    def rule(self, op: Any, i: int, a: str, ans: str) -> gast.expr:
        """The jvp rule of operand i of `op`, inlined, at tangent d<a>."""
        tpl = table()[op.prim].get("jvp", i)
        args = [copy.deepcopy(x) for x in op.args]
        kwargs = {k: copy.deepcopy(e) for k, e in op.kwargs.items()}
        if op.prim in ("index_add", "index_update") and i == 1 and isinstance(op.args[0], gast.Name):
            ans = op.args[0].id     # the rule reads ans only for its shape, which the base array has
        if self.batched:
            return batching.batched_rule(self, op, i, tpl, name(self.tan_name(a)), name(ans), args, kwargs)
        return instantiate(tpl, name(self.tan_name(a)), name(ans), args, kwargs, i, self.ref)

    def opaque(self, s: gast.Assign, targets: list[str], st: St, out: list) -> None:
        v = s.value
        line = getattr(s, "line", None)
        stack = stack_method(v, self.stacks, ("pop", "pop2") if self.level else "pop")
        if stack is not None:
            tgt = s.targets[0]
            dummy = self.namer.unique("_")

            def tan_target(e: Any) -> Any:
                if isinstance(e, gast.Tuple):
                    return gast.Tuple(elts=[tan_target(x) for x in e.elts], ctx=gast.Store())
                if e.id in self.active:
                    st.init.add(e.id)
                    return name(self.d(e.id), store=True)
                return name(dummy, store=True)

            rebuild: list = []
            if isinstance(tgt, gast.Tuple) and not self.level:
                # a tuple an f_adj restores (`_t1, u, w = _stack.pop()`): pop the value and its tangent
                # into names, then unpack each (code transformed again unpacks into plain names only)
                pv, pd = self.namer.fresh("_popped"), self.namer.fresh("_dpopped")
                for target, src in ((tgt, pv), (tan_target(tgt), pd)):
                    u = assign(target, name(src))
                    u.line = line
                    rebuild.append(u)
                pair = gast.Tuple(elts=[name(pv, store=True), name(pd, store=True)], ctx=gast.Store())
            else:
                pair = gast.Tuple(elts=[copy.deepcopy(tgt), tan_target(tgt)], ctx=gast.Store())
            if self.level:
                meth = "pop_t" if v.func.attr == "pop" else "pop2_t"
                e = call(gast.Attribute(value=name(stack), attr=meth, ctx=gast.Load()), [])
            elif self.batched:
                e = call(gast.Attribute(value=name(stack), attr="pop2b", ctx=gast.Load()),
                         [name(batching.NB)])
            else:
                e = call(gast.Attribute(value=name(stack), attr="pop2", ctx=gast.Load()), [])
            s2 = assign(pair, e)
            s2.line = line
            s2.impure = True
            out.append(s2)
            out.extend(rebuild)
            return
        # a list's pop (reverse code pops cotangents off lists built by unstack)
        if isinstance(v, gast.Call) and isinstance(v.func, gast.Attribute) and v.func.attr == "pop" and \
                isinstance(v.func.value, gast.Name) and self.has_tan(v.func.value, st) and not v.args and \
                len(targets) == 1:
            out.append(s)
            e = call(gast.Attribute(value=name(self.d(v.func.value.id)), attr="pop", ctx=gast.Load()), [])
            s2 = assign(self.d(targets[0]), e)
            s2.line = line
            s2.impure = True
            out.append(s2)
            st.init.add(targets[0])
            return
        # an element of a list: the same element of the list's tangent
        if isinstance(v, gast.Subscript) and isinstance(v.value, gast.Name) and len(targets) == 1:
            out.append(s)
            if self.has_tan(v.value, st):
                e = gast.Subscript(value=name(self.d(v.value.id)), slice=copy.deepcopy(v.slice),
                                   ctx=gast.Load())
                out.append(self.tassign(targets[0], e, line))
                st.init.add(targets[0])
            else:
                self.set_zero(targets[0], st, out, line)
            return
        live = [a for a in s.op.args if self.has_tan(a, st)]
        if any(a.id not in self.maybe for a in live):
            raise self.no_rule(s, s.op)
        out.append(s)
        for t in targets:
            self.set_zero(t, st, out, line)

    # ------------------------------------------------------------------------------------ calls
    def callsite(self, s: Any, targets: list[str], st: St, out: list) -> None:
        op = s.op
        line = getattr(s, "line", None)
        fn = op.fn
        n_pos = op.kwargs["__pos__"]
        kw_names = op.kwargs["__kw__"]
        pos_args = op.args[:n_pos]
        kw_args = dict(zip(kw_names, op.args[n_pos:], strict=True))
        if _hashable(fn) and (fn in ZERO or fn in LINEAR) and isinstance(s, gast.Assign):
            s.pure = True          # rule helpers compute a value and nothing else: dead when unread

        def live(a: Any) -> bool:
            return isinstance(a, gast.Name) and a.id in self.active and (
                a.id in st.init or a.id in self.stacks)

        if fn is list_pop:
            (lst,) = pos_args
            out.append(s)
            if self.has_tan(lst, st):
                e = call(copy.deepcopy(s.value.func), [name(self.d(lst.id))])
                if targets and targets[0] in self.active:
                    s2 = assign(self.d(targets[0]), e)
                    st.init.add(targets[0])
                else:
                    s2 = gast.Expr(value=e)
                s2.line = line
                s2.impure = True
                out.append(s2)
            elif targets:
                self.set_zero(targets[0], st, out, line)
            return
        if fn is list_set:
            lst, ix, val = pos_args
            out.append(s)
            if lst.id in self.active and (self.has_tan(lst, st) or self.has_tan(val, st)):
                if not self.has_tan(lst, st):
                    out.append(self.zero(lst.id, st, line))
                e = call(copy.deepcopy(s.value.func), [name(self.d(lst.id)), copy.deepcopy(ix),
                                                        self.tan_of(val, st)])
                s2 = assign(self.d(lst.id), e)
                s2.line = line
                s2.impure = True
                out.append(s2)
                st.init.add(lst.id)
            return

        if not any(live(a) for a in op.args) or not any(t in self.active for t in targets) and not any(
                isinstance(a, gast.Name) and a.id in self.stacks for a in op.args):
            out.append(s)
            for t in targets:
                self.set_zero(t, st, out, line)
            return
        if _hashable(fn) and fn in ZERO:
            out.append(s)
            for t in targets:
                self.set_zero(t, st, out, line)
            return
        if _hashable(fn) and fn in LINEAR and not any(live(a) for a in kw_args.values()) and \
                len(targets) == 1:
            lin, shape_only = LINEAR[fn]
            live_pos = [i for i, a in enumerate(pos_args) if live(a)]
            if all(i in lin or i in shape_only for i in live_pos):
                terms = []
                for i in live_pos:
                    if i in shape_only:
                        continue
                    args = [copy.deepcopy(a) for a in pos_args]
                    args[i] = name(self.d(pos_args[i].id))
                    e = gast.Call(func=copy.deepcopy(s.value.func), args=args,
                                  keywords=copy.deepcopy(s.value.keywords))
                    terms.append(batching.linear_call(self, fn, e, i) if self.batched else e)
                out.append(s)
                self.notes(out)
                if terms:
                    total = terms[0]
                    for e in terms[1:]:
                        total = gast.BinOp(left=total, op=gast.Add(), right=e)
                    out.append(self.tassign(targets[0], total, line))
                    st.init.add(targets[0])
                else:
                    self.set_zero(targets[0], st, out, line)
                return
        if _hashable(fn) and fn in SPECIAL and len(targets) == 1 and not kw_args:
            tfn, tpos = SPECIAL[fn]
            extra = [name(self.d(pos_args[i].id)) if i < len(pos_args) and live(pos_args[i]) else const(None)
                     for i in tpos]
            out.append(s)
            if self.batched:
                out.append(Comment(f"batched: the tangent of {fn.__name__} loops over the basis"))
                e = call(name(self.ref(batching.batch_loop_special, "batch_loop_special")),
                         [name(self.ref(tfn, tfn.__name__)), const(len(pos_args))] +
                         [copy.deepcopy(a) for a in pos_args] + extra)
            else:
                e = call(name(self.ref(tfn, tfn.__name__)), [copy.deepcopy(a) for a in pos_args] + extra)
            out.append(self.tassign(targets[0], e, line))
            st.init.add(targets[0])
            return
        try:
            sig = signature_of(fn)
            bound = sig.bind(*pos_args, **kw_args)
        except (TypeError, ValueError) as exc:
            raise self.error(s, f"cannot call {getattr(fn, '__name__', fn)} with these arguments: {exc}") \
                from None
        wrt = []
        for p, a in bound.arguments.items():
            if live(a):
                kind = sig.parameters[p].kind
                if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                    raise self.error(s, f"srcgrad cannot differentiate through *args/**kwargs of "
                                        f"{fn.__name__}", "give the function named parameters.")
                wrt.append(p)
        req = self.request(fn, tuple(wrt), s)
        base = getattr(fn, "__name__", "fn")
        fname = self.namer.ref(req, f"{base if base.isidentifier() else 'lambda'}_jvp")
        kws = [gast.keyword(arg=k, value=copy.deepcopy(a)) for k, a in kw_args.items()]
        for p in wrt:
            if p in req.tparams:
                kws.append(gast.keyword(arg=req.tparams[p], value=name(self.d(bound.arguments[p].id))))
        if self.batched:
            kws.append(gast.keyword(arg=batching.NB, value=name(batching.NB)))
        e = gast.Call(func=name(fname), args=[copy.deepcopy(a) for a in pos_args], keywords=kws)
        dummy = self.namer.unique("_")

        def tan_target(t: Any) -> Any:
            if isinstance(t, gast.Tuple):
                return gast.Tuple(elts=[tan_target(x) for x in t.elts], ctx=gast.Store())
            if t.id in self.active:
                st.init.add(t.id)
                return name(self.d(t.id), store=True)
            return name(dummy, store=True)

        if isinstance(s, gast.Assign) and isinstance(s.targets[0], gast.Name) and req.n_out is not None:
            self.kept_tuple(s, req, e, st, out)
            return
        if isinstance(s, gast.Assign) and isinstance(s.targets[0], gast.Tuple) and req.n_out is None:
            self.unpacked_whole(s, e, tan_target, out)
            return
        if isinstance(s, gast.Assign):
            # the callee returns its values then their tangents, flat (see `ForwardBuilder.generate`)
            tgt = s.targets[0]
            elts = list(tgt.elts) if isinstance(tgt, gast.Tuple) else [tgt]
            if not all(isinstance(t, gast.Name) for t in elts):
                raise self.error(s, "internal error: a call's result unpacked into other than names")
            s2 = assign(gast.Tuple(elts=[copy.deepcopy(t) for t in elts] + [tan_target(t) for t in elts],
                                   ctx=gast.Store()), e)
        else:
            s2 = gast.Expr(value=e)
        s2.line = line
        s2.impure = True
        out.append(s2)


    def unpacked_whole(self, s: gast.Assign, e: gast.Call, tan_target: Any, out: list) -> None:
        """`U, S, Vh = f(x)` where f returns one value that is a tuple on some paths only (not one tuple
        literal on every path): its f_jvp returns the value and its tangent, each unpacked here."""
        line = getattr(s, "line", None)
        value, tangent = self.namer.fresh("_t"), self.namer.fresh("_dt")
        tgt = s.targets[0]
        for stmt in (assign(gast.Tuple(elts=[name(value, store=True), name(tangent, store=True)],
                                       ctx=gast.Store()), e),
                     assign(copy.deepcopy(tgt), name(value)),
                     assign(tan_target(tgt), name(tangent))):
            stmt.line = line
            stmt.impure = True
            out.append(stmt)

    def kept_tuple(self, s: gast.Assign, req: JvpCallee, e: gast.Call, st: St, out: list) -> None:
        """`r = pair(x)` with pair returning a tuple kept whole: its f_jvp returns the values then the
        tangents, flat, so they are unpacked into fresh names and packed again, `r` into a tuple of the
        values and `dr` into a tuple of their tangents (read like any tuple: `r[0]`, `dr[0]`)."""
        v = s.targets[0].id
        vals = [self.namer.fresh("_t") for _ in range(req.n_out)]
        tans = [self.namer.fresh("_dt") for _ in range(req.n_out)]
        s2 = assign(gast.Tuple(elts=[name(n, store=True) for n in vals + tans], ctx=gast.Store()), e)
        s2.line = getattr(s, "line", None)
        s2.impure = True
        s3 = assign(v, gast.Tuple(elts=[name(n) for n in vals], ctx=gast.Load()))
        s3.line = s2.line
        out.extend([s2, s3])
        self.packs.add(v)
        if v in self.active:
            out.append(self.tassign(v, gast.Tuple(elts=[name(n) for n in tans], ctx=gast.Load()), s2.line))
            st.init.add(v)


# ================================================================================== dead chains
_PURE_KINDS = ("prim", "copy", "const", "nondiff", "pack")


def _pure(s: Any) -> bool:
    if not isinstance(s, gast.Assign) or getattr(s, "impure", False):
        return False
    if getattr(s, "pure", False):
        return True
    op = getattr(s, "op", None)
    return op is not None and op.kind in _PURE_KINDS


def _drop_self_chains(fdef: gast.FunctionDef) -> bool:
    """Remove variables whose only readers are their own updates (`bx = bx + g` when nothing else
    reads bx: an accumulated gradient whose value the caller does not want). optimize.dead_code counts
    the update's own read as a use and keeps the chain."""
    assigns: dict[str, list] = {}
    escapes: set[str] = set()

    def loads(node: Any) -> set[str]:
        return {n.id for n in gast.walk(node) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}

    for s in gast.walk(fdef):
        if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name):
            v = s.targets[0].id
            assigns.setdefault(v, []).append(s)
            escapes |= loads(s.value) - {v}
            if not _pure(s):
                escapes.add(v)
        elif isinstance(s, gast.stmt) and not isinstance(s, (gast.If, gast.For, gast.While,
                                                              gast.FunctionDef)):
            escapes |= loads(s)
            for n in gast.walk(s):
                if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store):
                    escapes.add(n.id)
        elif isinstance(s, (gast.If, gast.While)):
            escapes |= loads(s.test)
        elif isinstance(s, gast.For):
            escapes |= loads(s.iter) | loads(s.target)
    dead = {v for v in assigns if v not in escapes}
    if not dead:
        return False

    def sweep(block: list) -> list:
        out = []
        for s in block:
            if isinstance(s, (gast.If, gast.For, gast.While)):
                s.body = sweep(s.body)
                s.orelse = sweep(s.orelse)
            elif isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name) \
                    and s.targets[0].id in dead:
                continue
            out.append(s)
        return out

    fdef.body = sweep(fdef.body)
    return True


# ================================================================================== the front end
_LIST_POP = "__srcgrad_list_pop"
_LIST_SET = "__srcgrad_list_set"


_LIST_MAKERS = tuple(f for f in (getattr(rt_stack, "zeros_list", None), rt_stack.unstack) if f is not None)


def _generated_lists(info: FunctionInfo) -> set[str]:
    """In generated reverse code, lists of values and of cotangents are mutated (`vals.pop()` undoes an
    append, `bvals[i] = bvals[i] + g` accumulates): rewrite those into `list_pop`/`list_set` calls that
    the normalizer takes and forward mode pairs with the same operation on the tangents. Returns the
    list names (the normalizer must read their elements as list elements)."""
    if not info.filename.startswith("<srcgrad "):
        return set()
    lists: set[str] = set()
    for n in gast.walk(info.node):
        if isinstance(n, gast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], gast.Name):
            v = n.value
            # a list literal, or a helper that returns a list (the cotangents of a list, `zeros_list`;
            # the slices of a stacked list's cotangent, `unstack`, written into by `bQ[i] = bQ[i] + bq`
            # when the loop reads the list it appends to)
            if isinstance(v, gast.List) or (isinstance(v, gast.Call) and isinstance(v.func, gast.Name) and
                                            any(info.resolve(v.func.id) is m for m in _LIST_MAKERS)):
                lists.add(n.targets[0].id)
    if not lists:
        return lists
    info.globals.setdefault(_LIST_POP, list_pop)
    info.globals.setdefault(_LIST_SET, list_set)

    class Rewrite(gast.NodeTransformer):
        def visit_Call(self, node: gast.Call) -> Any:
            self.generic_visit(node)
            f = node.func
            if isinstance(f, gast.Attribute) and f.attr == "pop" and not node.args and \
                    isinstance(f.value, gast.Name) and f.value.id in lists:
                return gast.Call(func=name(_LIST_POP), args=[f.value], keywords=[])
            return node

        def visit_Assign(self, node: gast.Assign) -> Any:
            self.generic_visit(node)
            t = node.targets[0]
            if isinstance(t, gast.Subscript) and isinstance(t.value, gast.Name) and t.value.id in lists:
                ix = t.slice
                new = gast.Assign(targets=[name(t.value.id, store=True)],
                                  value=gast.Call(func=name(_LIST_SET),
                                                  args=[name(t.value.id), ix, node.value], keywords=[]),
                                  type_comment=None)
                return gast.copy_location(new, node)
            return node

    Rewrite().visit(info.node)
    info.locals = info.locals | lists
    return lists


class ForwardNormalizer(Normalizer):
    """The reverse compiler's normalizer, except that calls to generated `f_fwd`/`f_adj` pairs are
    ordinary calls to Python functions with source (the normalizer refuses them because reverse mode
    cannot differentiate them yet; forward mode transforms them recursively like any callee)."""

    def call_object(self, obj: Any, args: list, kws: dict, e: Any, out: list) -> tuple[gast.expr, Any]:
        if isinstance(obj, types.FunctionType) and obj.__code__.co_filename.startswith("<srcgrad ") and \
                obj.__name__.endswith(("_fwd", "_adj")):
            a = [self.atom(x, out) for x in args]
            k = {kk: self.atom(v, out) for kk, v in kws.items()}
            ref = name(self.namer.ref(obj, self._callee_name(obj, e)))
            return call(ref, a, k), Op("call", args=a + list(k.values()), fn=obj,
                                       kwargs={"__pos__": len(a), "__kw__": list(k)})
        return super().call_object(obj, args, kws, e, out)

    def _callee_name(self, obj: Any, e: Any) -> str:
        """The name the caller's source uses for the pair (`h_fwd_1`), not its `__name__` (`h_fwd`): two
        variants of one helper share a `__name__`, and the normalizer resolves a name bound in its namer
        before the source's globals, so referring to variant #2 as `h_fwd` would make a later call of the
        source's own `h_fwd` (variant #1) resolve to variant #2."""
        func = getattr(e, "func", None)
        if isinstance(func, gast.Name) and self.info.resolve(func.id) is obj:
            return func.id
        return obj.__name__


def forward_normalizer(info: FunctionInfo, namer: Namer, wrt: set[str]) -> Normalizer:
    """Forward mode's normalizer for `Builder.front`, with one rewrite first: the reverse code's
    `for i in reversed(_r1)` becomes `for i in _r1[::-1]` (a range again), which the normalizer loops
    over by index; it does not take `reversed(...)`, an iterator without a length."""
    ranges: set[str] = set()
    for n in gast.walk(info.node):
        it = n.iter if isinstance(n, gast.For) else None
        if isinstance(it, gast.Call) and isinstance(it.func, gast.Name) and len(it.args) == 1 and \
                not it.keywords and info.resolve(it.func.id) is reversed:
            base = it.args[0].value if isinstance(it.args[0], gast.Subscript) else it.args[0]
            if isinstance(base, gast.Name) and info.filename.startswith("<srcgrad "):
                # an adjoint loop walks back over its forward loop's range (or list of indices): a value
                # with no derivative, even where an f_adj restores it from the stack with the values
                # that have one
                ranges.add(base.id)
            back = gast.Slice(lower=None, upper=None, step=const(-1))
            n.iter = gast.Subscript(value=it.args[0], slice=back, ctx=gast.Load())
    # A Stack of generated reverse code carries tangents (values pushed in the forward sweep come back
    # in the adjoint): the normalizer must treat it as varied, or statements that only pass the stack
    # (`ba, = f_adj(seed_of(y), _stack)`) would be kept verbatim, without a tangent.
    carriers = set(wrt)
    for n in gast.walk(info.node):
        if isinstance(n, gast.Assign) and isinstance(n.value, gast.Call) and \
                isinstance(n.value.func, gast.Name) and info.resolve(n.value.func.id) in STACK_CLASSES:
            carriers.update(t.id for t in n.targets if isinstance(t, gast.Name))
    norm = ForwardNormalizer(info, namer, carriers)
    norm.lists |= _generated_lists(info)
    norm.no_tangent = ranges
    return norm


# ================================================================================== the builder
def _jvp_callees(fn: Any) -> dict:
    """The generated `f_jvp`s of callee `fn`, by (wrt, batched, numpy), kept on fn itself
    (`pipeline.cache_on`): a callee made per step (generated code, a closure) is freed with them, as its
    reverse pairs are (`pipeline._callees_of`)."""
    return cache_on(fn, "__srcgrad_jvp_callees__")


@dataclass
class GeneratedJvp:
    fn: Callable
    source: str
    tparams: list[str]            # keyword names of the tangents, in wrt order
    refresh: list = field(default_factory=list)
    info: FunctionInfo | None = None
    deps: Any = None  # parse.Dependencies: valid while what the build read is unchanged


class ForwardBuilder:
    """Builds `jvp_<f>` (top level) and `<g>_jvp` (every function it calls with active arguments)."""

    def __init__(self, verbose: bool | int = False, batched: bool = False, numpy: bool = False,
                 signature: tuple | None = None):
        """`signature`: the top-level call's, as `stages.signature_facts` reads it (a build specialized
        to it, whose tangents have their values' types and shapes: the caller checks they do); None
        builds the generic code."""
        self.verbose = debug_enabled(verbose)
        self.batched = batched
        self.numpy = numpy
        self.signature = signature
        self.specialized = signature is not None
        self.front_end = Builder(verbose)
        self.in_progress: dict[tuple, JvpCallee] = {}
        self.fixups: list[tuple[dict, str, JvpCallee]] = []
        self.refresh: list = []
        self.keep: tuple | None = None

    def request(self, fn: Any, wrt: tuple[str, ...], site: Any, caller: FunctionInfo,
                signature: tuple = ()) -> JvpCallee:
        target = getattr(fn, "__srcgrad_target__", None)
        if target is not None:  # a srcgrad transform called inside: its generated code
            self.refresh.extend(getattr(fn, "__srcgrad_refresh__", ()))
            fn = target
            signature = ()
        key = (fn, wrt, self.batched, self.numpy, self.specialized, signature)
        req = self.in_progress.get(key)
        if req is not None:
            return req
        req = _jvp_callees(fn).get(key[1:])
        if req is not None and req.deps.valid():
            self.refresh.extend(req.refresh)
            merge_into_recording(req.deps)
            return req
        try:
            info = parse_function(fn)
        except TransformError as exc:
            raise located(caller, _at(site), f"cannot differentiate the call to "
                                             f"{getattr(fn, '__name__', fn)}: {exc.message}",
                          exc.hint) from None
        req = JvpCallee(fn=fn, wrt=wrt, tparams=tangent_param_names(info, wrt), batched=self.batched,
                        signature=signature)
        self.in_progress[key] = req
        first = len(self.refresh)
        try:
            with recording() as req.deps:
                self.generate(fn, list(wrt), req)
            req.refresh = self.refresh[first:]
            merge_into_recording(req.deps)
        except TransformError as exc:
            if exc.filename is None:
                raise located(caller, _at(site), f"cannot differentiate the call to "
                                                 f"{getattr(fn, '__name__', fn)}: {exc.message}",
                              exc.hint) from None
            raise
        return req

    def top(self, fn: Any, wrt_idx: tuple[int, ...],
            keep: tuple[tuple[bool, ...], tuple[bool, ...]] | None = None) -> GeneratedJvp:
        """`keep` = (primal outputs, tangent outputs) to compute, for a function returning a tuple: the
        others are returned as None, so the code that only they need is dead and removed (hvp needs
        the value and the gradient's tangent, not the gradient)."""
        self.keep = keep
        with recording() as deps:
            gen = self.generate(fn, wrt_idx, None)
        gen.deps = deps
        for ns, nm, req in self.fixups:
            ns[nm] = req.compiled
        for key, req in self.in_progress.items():
            _jvp_callees(key[0])[key[1:]] = req
        self.fixups.clear()
        return gen

    def generate(self, fn: Any, wrt: Any, req: JvpCallee | None) -> GeneratedJvp:
        """Forward mode for `fn` (the top-level function when `req` is None, its `wrt` positions; else
        the callee `req`), through the front end and then the stages (`stages.run_stages`)."""
        top = req is None
        if top:
            wrt_idx = wrt

            def wrt_names(info: FunctionInfo) -> list[str]:
                positional, every = params_of(info.node)
                for i in wrt_idx:
                    if isinstance(i, str):          # a parameter by name (a vjp's keyword-only seed)
                        if i not in every:
                            raise TransformError(f"{info.name} has no parameter {i!r}")
                        continue
                    if not -len(positional) <= i < len(positional):
                        raise TransformError(f"wrt={i} but {info.name} has {len(positional)} positional "
                                             f"parameters", filename=info.filename,
                                             lineno=info.user_lineno(info.node.lineno),
                                             hint="wrt counts positional parameters from 0.")
                return [i if isinstance(i, str) else positional[i] for i in wrt_idx]
            info, namer, body, norm = _front(fn, wrt_names, self.front_end)
            wrt = wrt_names(info)
            tparams = tangent_param_names(info, tuple(wrt))
        else:
            info, namer, body, norm = _front(fn, list(wrt), self.front_end)
            tparams = req.tparams
        return stages.run_stages(ForwardBuild(self, info, namer, body, norm, list(wrt), tparams, req))


class ForwardBuild:
    """Forward mode for one normalized function, a method per stage (`stages.run_stages`): `jvp_f`
    (top level: returns the value and its tangent) or a callee's `f_jvp` (returns its values, then
    their tangents, flat)."""

    def __init__(self, builder: ForwardBuilder, info: FunctionInfo, namer: Namer, body: list,
                 norm: Normalizer, wrt: list[str], tparams: dict[str, str], req: JvpCallee | None):
        self.builder, self.info, self.namer, self.body, self.norm = builder, info, namer, body, norm
        self.wrt, self.tparams, self.req, self.top = wrt, tparams, req, req is None
        self.verbose = builder.verbose
        self.positional, self.params = params_of(info.node)
        self.level = getattr(info.fn, "__srcgrad_stack_level__", 0)
        self.ret = body[-1] if body and isinstance(body[-1], gast.Return) else None
        if self.ret is None:
            raise located(info, info.node, "internal error: normalized function has no final return")

    def facts(self) -> None:
        """The fact stage for user code (stages.fact_stage), then activity (stacks included)."""
        builder, namer, params, ret, req = self.builder, self.namer, self.params, self.ret, self.req
        self.known = known = stages.signature_facts(self.positional, builder.signature) if self.top \
            else dict(req.signature)
        returned = ret.value.elts if isinstance(ret.value, gast.Tuple) else [ret.value]
        if self.level == 0:
            fwd_body, fx = stages.fact_stage(self.body[:-1], namer, params, known,
                                             {a.id for a in returned if isinstance(a, gast.Name)},
                                             builder.front_end.callee_facts)
        else:  # code srcgrad generated (forward over reverse): its stack's values are not followed
            fwd_body = optimize.drop_fresh_alias_checks(self.body[:-1], namer)
            fx = facts.infer([], namer, params, {})  # no facts: the generic code
        ret_value = ret.value
        if req is not None and isinstance(ret_value, gast.Name):
            ret_value = _unpack_returned_tuple(fwd_body, ret, namer)
        self.out_atoms = ret_value.elts if isinstance(ret_value, gast.Tuple) else [ret_value]
        if req is not None and isinstance(ret_value, gast.Tuple):
            req.n_out = len(self.out_atoms)      # known before the body, for a recursive call to read
        outputs = {a.id for a in self.out_atoms if isinstance(a, gast.Name)}
        stacks = {p for p in params if is_stack_param(p)}
        for s in iter_stmts(fwd_body):
            if isinstance(s, gast.Assign) and isinstance(s.value, gast.Call) and \
                    isinstance(s.value.func, gast.Name) and \
                    namer.globals.get(s.value.func.id) is STACK_CLASSES[min(self.level, 1)]:
                stacks.update(targets_of(s))
        if stacks and self.level >= 2:
            raise TransformError(f"srcgrad does not differentiate {self.info.name} again: it is a derivative "
                                 f"of a derivative and records values on a stack",
                                 hint=_ONCE_MORE_HINT)
        seeds = {p for p in self.wrt if not is_stack_param(p)}
        self.active = set(activity(fwd_body, seeds, outputs, stacks=stacks,
                                   never=getattr(self.norm, "no_tangent", set())).active)
        if self.verbose:
            _dump("forward analysis", f"active: {sorted(self.active)}\nstacks: {sorted(stacks)}\nfacts: "
                  + ", ".join(f"{v}: {f}" for v, f in sorted(fx.of.items())))
        self.fwd_body, self.fx, self.stacks, self.ret_value = fwd_body, fx, stacks, ret_value

    def request(self, f: Any, w: tuple[str, ...], site: Any) -> JvpCallee:
        """The `f_jvp` a call runs; in a specialized build, built for its arguments' facts at the call."""
        builder = self.builder
        signature = (facts.site_signature(site.op, self.fx.get) or ()) if builder.specialized else ()
        return builder.request(f, w, site, self.info, signature)

    def transform(self) -> None:
        """Each statement followed by its tangent's."""
        builder, namer, fx = self.builder, self.namer, self.fx
        for t in self.tparams.values():
            namer.taken.add(t)
        fw = self.fw = Forward(self.info, namer, self.active, self.stacks, self.request,
                               batched=builder.batched)
        fw.level = min(self.level, 1)
        fw.numbers = fx.scalars()
        fw.float_arrays = {v for v, f in fx.of.items()
                           if isinstance(f, facts.Arr) and f.dtype is not None and f.dtype.kind == "f"}
        fw.maybe = pop_only(self.fwd_body, self.stacks) & self.active
        st = St(set(), set(self.params))
        for p, t in self.tparams.items():
            fw.tan[p] = t
            if p in self.active:
                st.init.add(p)
        head: list = []
        if builder.batched:
            if self.top:
                first = self.tparams[self.wrt[0]]
                head.append(assign(batching.NB, call(name(namer.ref(batching.batch_size, "batch_size")),
                                                     [name(first)])))
            namer.taken.add(batching.NB)
        self.new_body = head + fw.block(self.fwd_body, st)
        self.tangents = [fw.tan_of(a, st) for a in self.out_atoms]

    def plan_saves(self) -> None:
        """Forward mode saves nothing: each tangent is computed beside its value."""

    def assemble(self) -> list[gast.FunctionDef]:
        """The function, each statement specialized to the facts: each tangent has its value's type
        and shape where the tangents passed in have theirs (a specialized build: the caller checks)."""
        builder, namer, info, ret_value = self.builder, self.namer, self.info, self.ret_value
        known = self.known
        int_params = {p: f.value for p, f in known.items()
                      if isinstance(f, facts.Num) and f.type is int and f.value is not None}
        sets = stages.FactSets.of(self.fx, dict(self.fw.tan) if builder.specialized else {}, int_params)
        sets.optimize_block(self.new_body, namer, self.fx.scalars(),
                            lambda s: not getattr(s, "tangent", False))
        tangents = self.tangents
        primal_ret = copy.deepcopy(ret_value)
        if self.top and builder.keep is not None and isinstance(ret_value, gast.Tuple):
            keep_p, keep_t = builder.keep
            primal_ret.elts = [e if k else const(None) for e, k in zip(primal_ret.elts, keep_p, strict=True)]
            tangents = [e if k else const(None) for e, k in zip(tangents, keep_t, strict=True)]
        if self.top:
            tan_expr = gast.Tuple(elts=tangents, ctx=gast.Load()) if isinstance(ret_value, gast.Tuple) \
                else tangents[0]
            final = gast.Return(value=gast.Tuple(elts=[primal_ret, tan_expr], ctx=gast.Load()))
        else:
            # a callee returns one flat tuple, its values then their tangents (`return (ba, bb, dba, dbb)`,
            # unpacked at the call as `x, y, dx, dy = f_jvp(...)`): code transformed again unpacks into
            # plain names only, and the nesting would grow by one level per transform
            prim = primal_ret.elts if isinstance(ret_value, gast.Tuple) else [primal_ret]
            final = gast.Return(value=gast.Tuple(elts=prim + tangents, ctx=gast.Load()))
        final.line = getattr(self.ret, "line", None)
        args = info.signature(namer.ref)
        for p in self.wrt:
            if p in self.tparams:
                args.kwonlyargs.append(gast.Name(id=self.tparams[p], ctx=gast.Param(), annotation=None,
                                                 type_comment=None))
                args.kw_defaults.append(None)
        if builder.batched and not self.top:
            args.kwonlyargs.append(gast.Name(id=batching.NB, ctx=gast.Param(), annotation=None,
                                             type_comment=None))
            args.kw_defaults.append(None)
        prefix = "jvp_batched" if builder.batched else "jvp"
        fname = f"{prefix}_{info.name}" if self.top else f"{info.name}_{prefix}"
        return [gast.FunctionDef(name=fname, args=args, body=self.new_body + [final], decorator_list=[],
                                 returns=None, type_comment=None, type_params=[])]

    def passes(self, fdef: gast.FunctionDef) -> list:
        builder = self.builder
        return [
            ("dead code", optimize.dead_code),
            ("drop self chains", lambda f: _drop_self_chains(f) and optimize.dead_code(f)),
            ("NumPy variant", lambda f: numpy_variant(f, self.namer)) if builder.numpy else None,
            # a variant for one signature (never transformed again): a table the function built, and its
            # tangent, are written in place, as reverse mode's forward writes them
            ("write in place", lambda f: optimize.write_in_place(f, self.namer, self.fx.ints(),
                                                                 self.fx.ndims()))
            if builder.specialized and not builder.batched else None,
        ]

    def codegen(self, fdefs: list[gast.FunctionDef]) -> GeneratedJvp:
        builder, info, namer, req = self.builder, self.info, self.namer, self.req
        (fdef,) = fdefs
        builder.front_end._comment(info, fdef)
        ns = dict(namer.globals)
        for nm, obj in list(ns.items()):
            if isinstance(obj, JvpCallee):
                builder.fixups.append((ns, nm, obj))
        refresh = []
        for nm, getter in self.norm.data_refs:
            ns[nm] = getter()
            refresh.append((ns, nm, getter))
        builder.refresh.extend(refresh)
        what = "batched Jacobian-vector products (tangents carry a leading axis)" if builder.batched \
            else "value and Jacobian-vector product"
        along = ", ".join(self.tparams.values()) or "nothing"
        doc = f"{what[0].upper()}{what[1:]} of {info.name} along {along}, by srcgrad."
        source = codegen.function_source(fdef, doc)
        if self.verbose:
            _dump(f"codegen: {fdef.name}", source)
        compiled = codegen.compile_source(source, fdef.name, ns, fdef.name,
                                          None if info.filename.startswith("<srcgrad ") else info.filename)
        compiled.__srcgrad_stack_level__ = self.level + 1
        if not self.top:
            req.compiled = compiled
            req.source = source
        return GeneratedJvp(fn=compiled, source=source,
                            tparams=[self.tparams[p] for p in self.wrt if p in self.tparams],
                            refresh=builder.refresh, info=info)


def _unpack_returned_tuple(body: list, ret: gast.Return, namer: Namer) -> gast.expr:
    """A callee whose returns the normalizer merged into one result variable (`_return = (a, b)` on
    each path, then `return _return`) returns a tuple all the same, and its caller unpacks the flat
    `values + tangents` of a tuple (`a, b, da, db = f_jvp(...)`). When some path assigns the variable a
    tuple literal, unpack it element by element at the end (`_r1 = _return[0]`, ...) and return the
    elements, as if the function ended with `return _r1, _r2`. Returns the new return value (the name
    unchanged when it holds no tuple literal, or not a tuple literal of one size on every path)."""
    v = ret.value.id
    writes = [s for s in iter_stmts(body) if isinstance(s, gast.Assign) and targets_of(s) == [v]]
    sizes = {len(s.value.elts) if isinstance(s.value, gast.Tuple) and
             getattr(getattr(s, "op", None), "kind", None) == "pack" else None for s in writes}
    if len(sizes) != 1 or None in sizes:
        # a tuple on one path and something else on another (`svd` returns (U, S, Vh) or S alone, by
        # its arguments): returned whole, and a caller that unpacks it does so itself
        return ret.value
    (n,) = sizes
    line = getattr(ret, "line", None)
    elts = []
    for i in range(n):
        r = namer.fresh("_r")
        s = assign(r, gast.Subscript(value=name(v), slice=const(i), ctx=gast.Load()))
        s.op = Op("unpack", args=[name(v)], kwargs={"index": const(i)})
        s.line = line
        body.append(s)
        elts.append(name(r))
    return gast.Tuple(elts=elts, ctx=gast.Load())


_ONCE_MORE_HINT = "third derivatives work as jvp(jvp(grad(f))); go no higher with loops that save values."


def _front(fn: Any, wrt: Any, front_end: Builder) -> tuple[FunctionInfo, Namer, list, Normalizer]:
    """The shared front end with forward mode's normalizer, saying what it met when it reads code
    transformed twice that records values on a stack (its pops unpack nested pairs, which the
    normalizer refuses)."""
    try:
        return front_end.front(fn, wrt, forward_normalizer)
    except TransformError as exc:
        if getattr(fn, "__srcgrad_stack_level__", 0) >= 2 and "plain names only" in exc.message:
            raise TransformError(f"srcgrad does not differentiate {fn.__name__} again: it is a derivative of "
                                 f"a derivative and records values on a stack",
                                 hint=_ONCE_MORE_HINT) from None
        raise


def _at(site: Any) -> Any:
    loc = gast.Pass()
    loc.lineno = getattr(site, "line", None)
    return loc


__all__ = ["ForwardBuilder", "GeneratedJvp", "PairStack", "tzero", "body_source"]
