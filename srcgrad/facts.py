"""Stage 3: the one fact pass. What each variable of the normalized function holds: a Python number, a
NumPy array of known dtype and shape (or known rank), or something this pass does not know.

Abstract interpretation from the call's signature (the variant's key: which parameters are Python numbers,
which NumPy arrays of which shape) through every statement, to a fixpoint through loops and joined over
every assignment of a variable (flow-insensitive: one fact per variable, true wherever it is read).

How a statement's result is found: its expression is *run* on representatives. A Python number of type
T is represented by a harmless value of that type; an array by a zero-strided array of its dtype and
shape (no memory), so NumPy itself decides broadcasting, reductions, indexing and dtype promotion exactly
as it will at run time. Elementwise primitives and operators on large operands are run on one-element
stand-ins and their shape taken from the broadcast, so the pass costs next to nothing. A representative's
*value* is never trusted: every place where a result's shape could depend on a value (a slice bound or
an axis held in a variable, a boolean mask, `np.arange(n)`, a call this pass cannot see into) makes the
result unknown. Unknown is always safe: the code for it is the generic code.

The facts replace three older per-purpose inferences (Python scalars, NumPy values, ranks, exact shapes)
that had drifted apart; `Facts.scalars()`, `.numpy_names()`, `.ndims()` and `.shapes()` are the views
the transforms and the optimizer read.
"""

from __future__ import annotations

import builtins
import math
import operator
import types
from dataclasses import dataclass
from typing import Any, Iterable

import gast
import numpy as np

from srcgrad.analysis import iter_stmts
from srcgrad.parse import signature_of
from srcgrad.runtime import primitives as P
from srcgrad.runtime.mapping import SHAPE_FROM_ARGUMENT, SHAPE_FROM_CONSTANTS, STATIC_HELPERS
from srcgrad.runtime.primitives import Primitive


# ------------------------------------------------------------------------------------------- the lattice
@dataclass(frozen=True)
class Num:
    """A Python number (never a NumPy scalar). `type` is float, int or bool; None: one of them.
    `value`: the int it always holds, where that is known (a constant, a length of an array whose shape
    the variant is keyed on, arithmetic on those), so `np.zeros(n + 1)` and `x[:n]` have known shapes."""

    type: type | None
    value: int | None = None


@dataclass(frozen=True)
class Arr:
    """A NumPy array or NumPy scalar. None in a field: not known. `shape` holds None for a dimension
    that is not known (a slice with a bound held in a variable, a length that changes in a loop)."""

    dtype: np.dtype | None
    shape: tuple | None
    ndim: int | None
    scalar: bool = False  # a NumPy scalar (x[i], a reduction, arithmetic on those): never a 0-d array,
    #                       so never written in place

    @property
    def exact(self) -> bool:
        return self.shape is not None and None not in self.shape


@dataclass(frozen=True)
class Range:
    """What `range(...)` returns: iterating it gives Python ints."""


class _Top:
    def __repr__(self) -> str:
        return "TOP"


TOP = _Top()  # not known: a list, an object, a CuPy array, a value whose shape depends on values
Fact = Num | Arr | Range | _Top

_WIDER = {bool: 0, int: 1, float: 2}


def never_none(fact: Fact) -> bool:
    """Whether a variable with this fact always holds a value (so `x is None` is False)."""
    return isinstance(fact, (Num, Arr, Range))


def join(a: Fact | None, b: Fact | None) -> Fact | None:
    """The least fact true of both (None: no assignment seen yet)."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    if a is TOP or b is TOP:
        return TOP
    if isinstance(a, Num) and isinstance(b, Num):
        if a.type is b.type and a.value != b.value:
            return Num(a.type)
        if a.type is None or b.type is None:
            return Num(None)
        return Num(max(a.type, b.type, key=_WIDER.__getitem__))
    if isinstance(a, Num) and isinstance(b, Arr) or isinstance(a, Arr) and isinstance(b, Num):
        arr = a if isinstance(a, Arr) else b
        if arr.shape == ():  # `s = 0.0` then `s = s + np.sum(x)`: a number or a NumPy scalar
            return Arr(None, (), 0, arr.scalar)
        return Arr(None, None, None)  # `acc = 0.0` then `acc = acc + x`: broadcasts, rank unknown
    if isinstance(a, Arr) and isinstance(b, Arr):
        same_rank = a.ndim is not None and a.ndim == b.ndim
        shape = None
        if same_rank and a.shape is not None and b.shape is not None:
            shape = tuple(x if x == y else None for x, y in zip(a.shape, b.shape, strict=True))
        return Arr(a.dtype if a.dtype == b.dtype else None, shape, a.ndim if same_rank else None,
                   a.scalar and b.scalar)
    return TOP


# ------------------------------------------------------------------------------------------ representatives
class _Unknown(Exception):
    """The expression's result is not known (or could depend on a value)."""


class _Pending(Exception):
    """An operand has no fact yet (a loop-carried value on the first round)."""


_NUMBER_VALUE = {float: 0.5, int: 1, bool: True, None: 0.5}
_SMALL = 4096  # operands up to this size are run as they are; larger elementwise ones on stand-ins


class _Number(float):
    """The representative of a Python number whose type is not known (int, float or bool)."""


# An unknown dimension is run at two sizes; a result dimension that differs between the runs depends on
# it and is unknown, one that agrees does not. Large primes, so that no constant bound or known dimension
# is taken for them (an array sliced with a constant bound is handled apart: `Subscript` below).
SENTINELS = (997, 1009)


def representative(fact: Fact, sentinel: int = SENTINELS[0]) -> Any:
    if isinstance(fact, Num):
        if fact.value is not None:
            return fact.value
        if fact.type is None:
            return _Number(0.5)
        return _NUMBER_VALUE[fact.type]
    if isinstance(fact, Arr) and fact.shape is not None:
        dtype = fact.dtype if fact.dtype is not None else np.dtype(np.float64)
        if fact.shape == ():
            return dtype.type(1) if fact.scalar else np.ones((), dtype)
        shape = tuple(sentinel if d is None else d for d in fact.shape)
        return np.lib.stride_tricks.as_strided(np.ones(1, dtype), shape, (0,) * len(shape))
    if isinstance(fact, Range):
        return range(1)
    raise _Unknown


def abstract(value: Any, dtype_known: bool = True) -> Fact:
    """The fact of a representative result."""
    t = type(value)
    if t is _Number:
        return Num(None)
    if t in (float, int, bool):
        return Num(t)
    if isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.kind not in "biufc":
            return TOP
        return Arr(value.dtype if dtype_known else None, tuple(value.shape), value.ndim,
                   isinstance(value, np.generic))
    if isinstance(value, range):
        return Range()
    return TOP


# ---------------------------------------------------------------------------------------------- the pass
_EXACT_OPS = {gast.Add: operator.add, gast.Sub: operator.sub, gast.Mult: operator.mul,
              gast.FloorDiv: operator.floordiv, gast.Mod: operator.mod}
_MATH_BUILTINS = (abs, min, max, round, int, float, bool)
_CALLABLE_BUILTINS = _MATH_BUILTINS + (range, len, slice)
_UNARY = {gast.USub: operator.neg, gast.UAdd: operator.pos, gast.Invert: operator.invert,
          gast.Not: operator.not_}
_BINARY = {gast.Add: operator.add, gast.Sub: operator.sub, gast.Mult: operator.mul,
           gast.Div: operator.truediv, gast.FloorDiv: operator.floordiv, gast.Mod: operator.mod,
           gast.Pow: operator.pow, gast.MatMult: operator.matmul, gast.BitAnd: operator.and_,
           gast.BitOr: operator.or_, gast.BitXor: operator.xor, gast.LShift: operator.lshift,
           gast.RShift: operator.rshift}
# the comparison operators (read by the fact pass, and by optimize where the facts decide a test)
COMPARISONS = {gast.Eq: operator.eq, gast.NotEq: operator.ne, gast.Lt: operator.lt, gast.LtE: operator.le,
               gast.Gt: operator.gt, gast.GtE: operator.ge}
_ARRAY_ATTRIBUTES = {"shape", "ndim", "size", "dtype", "T", "real", "imag"}


@dataclass
class Facts:
    """The fact of every variable of one normalized function (absent: never assigned, not a parameter)."""

    of: dict[str, Fact]
    numpy_variant: bool = False  # built for NumPy arguments: the NumPy views below apply

    def get(self, name: str) -> Fact:
        return self.of.get(name, TOP)

    def immutable(self) -> set[str]:
        """Names that always hold a Python number or a NumPy scalar: nothing writes into them in place
        (`s += v` binds a new value), so nothing they share memory with can change."""
        return {v for v, f in self.of.items() if isinstance(f, Num) or isinstance(f, Arr) and f.scalar}

    def scalars(self) -> set[str]:
        """Names that always hold a Python int/float/bool."""
        return {v for v, f in self.of.items() if isinstance(f, Num)}

    def numpy_names(self) -> set[str]:
        """Names that always hold a NumPy array or scalar, or a Python number (NumPy takes all three)."""
        if not self.numpy_variant:
            return set()
        return {v for v, f in self.of.items() if isinstance(f, (Num, Arr))}

    def floats(self) -> set[str]:
        """Names that always hold floating-point values: Python numbers (an int reads as exact here)
        and arrays of a floating dtype."""
        return {v for v, f in self.of.items()
                if isinstance(f, Num) or isinstance(f, Arr) and f.dtype is not None and f.dtype.kind == "f"}

    def known_ints(self) -> dict[str, int]:
        """Names that always hold one int this variant knows (a rank, a length, a constant)."""
        return {v: f.value for v, f in self.of.items() if isinstance(f, Num) and f.value is not None}

    def python_floats(self) -> set[str]:
        """Names that always hold a Python float (float(x) of one is x itself)."""
        return {v for v, f in self.of.items() if isinstance(f, Num) and f.type is float}

    def ints(self) -> set[str]:
        """Names that always hold an integer that indexes one position: a Python int (a loop counter, a
        length) or a NumPy integer scalar (`i = edges[k, 0]`)."""
        return {v for v, f in self.of.items() if isinstance(f, Num) and f.type is int
                or isinstance(f, Arr) and f.shape == () and f.dtype is not None and f.dtype.kind in "iu"}

    def float64(self) -> set[str]:
        """Names of NumPy arrays of dtype float64."""
        return {v for v, f in self.of.items() if isinstance(f, Arr) and f.dtype == np.float64}

    def ndims(self) -> dict[str, int]:
        """Ranks, where known."""
        if not self.numpy_variant:
            return {}
        out = {}
        for v, f in self.of.items():
            if isinstance(f, Num):
                out[v] = 0
            elif isinstance(f, Arr) and f.ndim is not None:
                out[v] = f.ndim
        return out

    def shapes(self) -> dict[str, tuple]:
        if not self.numpy_variant:
            return {}
        out = {}
        for v, f in self.of.items():
            if isinstance(f, Num):
                out[v] = ()
            elif isinstance(f, Arr) and f.exact:
                out[v] = f.shape
        return out


# A Python number's entry in a variant's key (api) and the fact it stands for (pipeline): its type,
# since an int indexes and a float does not, and float(x) of a float is x; "s" alone, from callers that do
# not say which, may be any.
NUMBER_KEYS = {float: "f", int: "i", bool: "b"}
NUMBER_TYPES = {"s": None, "f": float, "i": int, "b": bool}


def of_value(value: Any) -> Fact:
    """The fact of a concrete value (a default argument, a constant)."""
    if type(value) is int:
        return Num(int, value)  # an int default or constant (an axis, a count) is known exactly
    if type(value) in (float, bool):
        return Num(type(value))
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "biufc":
        return Arr(value.dtype, tuple(value.shape), value.ndim, isinstance(value, np.generic))
    return TOP


def without_values(signature: tuple) -> tuple:
    """`signature` with the int values it holds forgotten (their types kept): the key of a recursive
    call, which would otherwise be specialized once per depth (`cheb(x, n - 1)`)."""
    return tuple((n, Num(f.type) if isinstance(f, Num) else f) for n, f in signature)


def call_signature(fn: Any, positional: list[Fact], keywords: dict[str, Fact]) -> tuple | None:
    """The facts of `fn`'s parameters at one call, defaults included, in parameter order: the key a
    callee is specialized on (None: the call cannot be bound, or has *args/**kwargs)."""

    try:
        sig = signature_of(fn)
        bound = sig.bind(*positional, **keywords)
    except (TypeError, ValueError):
        return None
    out = []
    for name, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            return None
        if name in bound.arguments:
            out.append((name, bound.arguments[name]))
        else:
            out.append((name, of_value(param.default)))
    return tuple(out)


def site_signature(op: Any, fact_of: Any) -> tuple | None:
    """The callee's signature at a normalized call (`op.kind == 'call'`), its arguments' facts read
    with `fact_of(name)`."""
    if "__pos__" not in op.kwargs:
        return None
    facts = [of_value(a.value) if isinstance(a, gast.Constant)
             else fact_of(a.id) if isinstance(a, gast.Name) else TOP for a in op.args]
    n = op.kwargs["__pos__"]
    return call_signature(op.fn, facts[:n], dict(zip(op.kwargs["__kw__"], facts[n:], strict=False)))


def infer(body: list, namer: Any, params: Iterable[str], known: dict[str, Fact],
          numpy_variant: bool = False, callee: Any = None) -> Facts:
    """The facts of every variable of `body`, given those of some parameters (`known`; every other
    parameter is not known). `callee(fn, signature)`, where given, says what a call to user function
    `fn` returns (a fact, or a tuple of facts for a tuple), so facts flow through helpers."""
    return _Pass(body, namer, set(params), known, numpy_variant, callee).run()


class _Pass:
    def __init__(self, body: list, namer: Any, params: set[str], known: dict[str, Fact],
                 numpy_variant: bool, callee: Any = None):
        self.namer = namer
        self.callee = callee
        self.numpy_variant = numpy_variant
        self.stmts = list(iter_stmts(body))
        self.assigned: set[str] = set()
        self.unknowable: set[str] = set()
        for s in self.stmts:
            self.assigned |= _stores(s)
            self.unknowable |= _reshaped_in_place(s)
        self.locals = self.assigned | params
        self.facts: dict[str, Fact | None] = {p: known.get(p, TOP) for p in params}
        for v in self.unknowable:
            self.facts[v] = TOP
        self.cache: dict[tuple, Any] = {}
        self.sentinel, self.top, self.loose = SENTINELS[0], None, set()

    # ------------------------------------------------------------------------------------ fixpoint
    def run(self) -> Facts:
        for _ in range(100):
            self.fixpoint()
            # a variable still without a fact is only ever computed from itself or from other such
            # variables (read before any assignment on some path): not known, and round again
            pending = [v for v in self.assigned if self.facts.get(v) is None]
            if not pending:
                break
            for v in pending:
                self.facts[v] = TOP
        final = {v: f for v, f in self.facts.items() if f is not None}
        return Facts(final, self.numpy_variant)

    def fixpoint(self) -> None:
        for _ in range(200):
            changed = False
            for s in self.stmts:
                for target, fact in self.transfer(s):
                    old = self.facts.get(target)
                    new = join(old, fact)
                    if new != old:
                        self.facts[target] = new
                        changed = True
            if not changed:
                return
        for v in self.assigned:  # no fixpoint (it always exists: the lattice is finite; a guard)
            self.facts[v] = TOP

    def transfer(self, s: Any) -> list[tuple[str, Fact]]:
        """(target, fact) pairs this statement assigns; [] while an operand has no fact yet."""
        stores = _stores(s)
        if not stores:
            return []
        try:
            if isinstance(s, gast.For):
                return [(s.target.id, self.element_of(self.value(s.iter)))] if isinstance(
                    s.target, gast.Name) else [(v, TOP) for v in stores]
            number = self.kept_augmented_number(s)
            if number is not None:
                return number
            if not isinstance(s, gast.Assign) or getattr(s, "op", None) is None:
                return [(v, TOP) for v in stores]
            if isinstance(s.value, gast.Constant) and s.value.value is None:
                # `a = None` before a loop that assigns a: a placeholder no arithmetic reads (it would
                # fail there); the facts are those of the values a holds where it is computed with
                return []
            target = s.targets[0]
            known_array = getattr(s, "const_array", None)
            if known_array is not None and isinstance(target, gast.Name):
                shape, dtype = known_array
                return [(target.id, Arr(dtype, tuple(shape), len(shape)))]
            if getattr(s, "mutates", None):
                return [(v, TOP) for v in stores]
            if s.op.kind == "call":
                result = self.call_result(s)
            else:
                result = self.value(s.value)
            if isinstance(target, gast.Name):
                if result == Num(int):
                    value = self.exact_int(s.value)
                    if value is not None:
                        result = Num(int, value)
                return [(target.id, TOP if isinstance(result, tuple) else result)]
            if (isinstance(target, gast.Tuple) and isinstance(result, tuple)
                    and len(result) == len(target.elts)
                    and all(isinstance(e, gast.Name) for e in target.elts)):
                parts = s.value.elts if isinstance(s.value, gast.Tuple) \
                    and len(s.value.elts) == len(result) else [None] * len(result)
                result = tuple(Num(int, self.exact_int(p)) if f == Num(int) and p is not None
                               and self.exact_int(p) is not None else f
                               for f, p in zip(result, parts, strict=True))
                return [(e.id, f) for e, f in zip(target.elts, result, strict=True)]
            return [(v, TOP) for v in stores]
        except _Pending:
            return []
        except _Unknown:
            return [(v, TOP) for v in stores]

    def kept_augmented_number(self, s: Any) -> list | None:
        """`t += dt` kept as written (no derivative flows through it): the fact of `t + dt` where that
        is a Python number (an array's `+=` may write in place: left not known)."""
        body = getattr(s, "body", None) if type(s).__name__ == "Verbatim" else None
        if not body or len(body) != 1 or not isinstance(body[0], gast.AugAssign) \
                or not isinstance(body[0].target, gast.Name) \
                or not set(getattr(s, "mutates", None) or ()) <= {body[0].target.id}:
            return None  # (`t += dt` is marked as changing t in place: so it does, were t an array)
        aug = body[0]
        if not hasattr(s, "as_binop"):  # one node per statement: results are cached by node
            s.as_binop = gast.BinOp(left=gast.Name(id=aug.target.id, ctx=gast.Load(), annotation=None,
                                                   type_comment=None), op=aug.op, right=aug.value)
        result = self.value(s.as_binop)
        return [(aug.target.id, result)] if isinstance(result, Num) else None

    def call_result(self, s: Any) -> Any:
        """What a call to a user function returns, from the callee's own facts at this signature."""
        if self.callee is None:
            raise _Unknown
        sig = site_signature(s.op, lambda a: self.fact_of_name(a) if a in self.locals else TOP)
        if sig is None:
            raise _Unknown
        result = self.callee(s.op.fn, sig)
        if result is None or result is TOP:
            raise _Unknown
        return result

    def exact_int(self, e: Any) -> int | None:
        """The int `e` always evaluates to, where it is made of constants, ints whose value is known and
        lengths of arrays of known shape (never a value read from an array: those are stand-ins)."""
        if isinstance(e, gast.Constant):
            return e.value if type(e.value) is int else None
        if isinstance(e, gast.Name):
            f = self.facts.get(e.id) if e.id in self.locals else None
            return f.value if isinstance(f, Num) else None
        if isinstance(e, gast.UnaryOp) and isinstance(e.op, gast.USub):
            v = self.exact_int(e.operand)
            return None if v is None else -v
        if isinstance(e, gast.BinOp) and type(e.op) in _EXACT_OPS:
            a, b = self.exact_int(e.left), self.exact_int(e.right)
            if a is None or b is None or (b == 0 and type(e.op) in (gast.FloorDiv, gast.Mod)):
                return None
            return _EXACT_OPS[type(e.op)](a, b)
        if isinstance(e, gast.Subscript) and isinstance(e.slice, gast.Constant):
            shape = self.exact_shape(e.value)
            if shape is not None and type(e.slice.value) is int and -len(shape) <= e.slice.value < len(shape):
                return shape[e.slice.value]
            return None
        if isinstance(e, gast.Attribute) and e.attr in ("ndim", "size"):
            shape = self.exact_shape(gast.Attribute(value=e.value, attr="shape", ctx=gast.Load()))
            if shape is None:
                return None
            return len(shape) if e.attr == "ndim" else int(np.prod(shape))
        if isinstance(e, gast.Call) and len(e.args) == 1 and not e.keywords:
            try:
                fn = self.rep(e.func)
            except (_Unknown, _Pending):
                return None
            if fn is P.ndim or fn is np.ndim:  # the rank is known where the shape is not
                f = self.facts.get(e.args[0].id) if isinstance(e.args[0], gast.Name) \
                    and e.args[0].id in self.locals else None
                if isinstance(f, Arr) and f.ndim is not None:
                    return f.ndim
                if isinstance(f, Num):
                    return 0
            if fn is len or fn is P.size or fn is P.ndim:
                shape = self.exact_shape(gast.Attribute(value=e.args[0], attr="shape", ctx=gast.Load()))
                if not shape and fn is len:
                    return None
                return None if shape is None else (shape[0] if fn is len else len(shape) if fn is P.ndim
                                                   else int(np.prod(shape)))
        return None

    def exact_shape(self, e: Any) -> tuple | None:
        """The shape `x.shape` / `shape(x)` reads, where x's shape is known exactly."""
        base = None
        if isinstance(e, gast.Attribute) and e.attr == "shape":
            base = e.value
        elif isinstance(e, gast.Call) and len(e.args) == 1 and not e.keywords:
            try:
                if self.rep(e.func) is P.shape:
                    base = e.args[0]
            except (_Unknown, _Pending):
                return None
        if isinstance(base, gast.Name) and base.id in self.locals:
            f = self.facts.get(base.id)
            if isinstance(f, Arr) and f.exact:
                return f.shape
        return None

    def element_of(self, fact: Any) -> Fact:
        if isinstance(fact, Range):
            return Num(int)
        if isinstance(fact, Arr) and fact.ndim:
            shape = fact.shape[1:] if fact.shape is not None else None
            return Arr(fact.dtype, shape, fact.ndim - 1, fact.ndim == 1)
        return TOP

    # -------------------------------------------------------------------------------- expressions
    def value(self, e: Any) -> Any:
        """The fact of expression `e` (a tuple of facts for a tuple expression)."""
        key = self.key(e)
        if key is not None and key in self.cache:
            return self.cache[key]
        try:
            out = self.evaluate(e)
        except _Unknown:
            out = TOP
        if key is not None:
            self.cache[key] = out
        if out is TOP:
            raise _Unknown
        return out

    def key(self, e: Any) -> tuple | None:
        """What the fact of `e` depends on: its code and its names' facts (results are cached on it)."""
        names = sorted({n.id for n in gast.walk(e) if isinstance(n, gast.Name) and n.id in self.locals})
        facts = []
        for n in names:
            f = self.facts.get(n)
            if f is None:
                raise _Pending
            facts.append(f)
        return (id(e), tuple(facts))

    def fact(self, e: gast.Name) -> Fact:
        if e.id not in self.locals:
            raise _Unknown
        return self.fact_of_name(e.id)

    def fact_of_name(self, ident: str) -> Fact:
        if ident in self.locals:
            f = self.facts.get(ident)
            if f is None:
                raise _Pending
            return f
        raise _Unknown

    def evaluate(self, e: Any) -> Any:
        if isinstance(e, gast.Tuple):
            return tuple(self.fact_or_top(x) for x in e.elts)
        known_dtypes = self.dtypes_known(e)
        runs = []
        for sentinel in SENTINELS if self.has_unknown_dims(e) else SENTINELS[:1]:
            self.sentinel, self.top, self.loose = sentinel, e, set()
            out = abstract(self.rep(e), known_dtypes)
            if isinstance(out, Arr) and self.loose:
                out = Arr(out.dtype, tuple(None if i in self.loose else d for i, d in enumerate(out.shape)),
                          out.ndim, out.scalar)
            runs.append(out)
        first = runs[0]
        for other in runs[1:]:
            if isinstance(first, Arr) and isinstance(other, Arr) and first.ndim == other.ndim:
                first = join(first, other)  # a dimension that differs between the runs: not known
            elif first != other:
                raise _Unknown
        return first

    def has_unknown_dims(self, e: Any) -> bool:
        for n in gast.walk(e):
            if isinstance(n, gast.Name) and n.id in self.locals:
                f = self.facts.get(n.id)
                if isinstance(f, Arr) and f.shape is not None and None in f.shape:
                    return True
        return False

    def fact_or_top(self, e: Any) -> Fact:
        try:
            return self.value(e)
        except _Unknown:
            return TOP

    def dtypes_known(self, e: Any) -> bool:
        for n in gast.walk(e):
            if isinstance(n, gast.Name) and n.id in self.locals:
                f = self.facts.get(n.id)
                if isinstance(f, Arr) and f.dtype is None or isinstance(f, Num) and f.type is None:
                    return False
        return True

    def rep(self, e: Any) -> Any:
        """A representative of the value of `e` (raises _Unknown where it may depend on a value)."""
        if isinstance(e, gast.Constant):
            if isinstance(e.value, (bool, int, float)) or e.value is None:
                return e.value
            raise _Unknown
        if isinstance(e, gast.Name):
            if e.id in self.locals:
                return representative(self.fact_of_name(e.id), self.sentinel)
            return self.global_object(e.id)
        if isinstance(e, gast.BinOp):
            return self.elementwise(_BINARY.get(type(e.op)), [self.rep(e.left), self.rep(e.right)],
                                    matmul=isinstance(e.op, gast.MatMult))
        if isinstance(e, gast.UnaryOp):
            return self.elementwise(_UNARY.get(type(e.op)), [self.rep(e.operand)])
        if isinstance(e, gast.Compare) and len(e.ops) == 1:
            compare = COMPARISONS.get(type(e.ops[0]))
            return self.elementwise(compare, [self.rep(e.left), self.rep(e.comparators[0])])
        if isinstance(e, gast.Subscript):
            return self.subscript(e.value, e.slice, e is self.top)
        if isinstance(e, gast.Attribute):
            base = self.rep(e.value)
            if isinstance(base, types.ModuleType):
                return getattr(base, e.attr, None) or _raise()
            if isinstance(base, (np.ndarray, np.generic)) and e.attr in _ARRAY_ATTRIBUTES:
                return getattr(base, e.attr)
            raise _Unknown
        if isinstance(e, gast.Call):
            return self.call(e)
        raise _Unknown

    def global_object(self, ident: str) -> Any:
        obj = self.namer.globals.get(ident, _MISSING)
        if obj is _MISSING:
            obj = getattr(builtins, ident, _MISSING)
        if isinstance(obj, (types.ModuleType, Primitive)) or any(obj is f for f in _CALLABLE_BUILTINS) \
                or _is_math_function(obj) or hashable(obj) and obj in STATIC_HELPERS:
            return obj
        raise _Unknown  # a module global or closure value: read when the call runs, so not a fact here

    def call(self, e: gast.Call) -> Any:
        fn = self.rep(e.func)
        if isinstance(fn, Primitive):
            keywords = {k.arg: k.value for k in e.keywords}
            if fn is P.getitem and len(e.args) == 1 and set(keywords) == {"index"}:
                return self.subscript(e.args[0], keywords["index"], e is self.top)
            args = [self.rep(a) for a in e.args]
            kwargs = {k: self.static(v, index=k == "index") for k, v in keywords.items()}
            if _has_variable_slice(kwargs.get("index")):
                # a slice of a length not known: run with two lengths; a result whose shape does not
                # follow (index_update, index_add: x's shape) is known, one whose shape does is not
                index = kwargs["index"]
                whole = self.apply(fn.impl, args, {**kwargs, "index": _plain_index(index)})
                one = self.apply(fn.impl, args, {**kwargs, "index": _plain_index(index, slice(0, 1))})
                if np.shape(whole) != np.shape(one):
                    raise _Unknown
                return whole
            if fn.name in P.ELEMENTWISE and not kwargs:
                return self.elementwise(fn.impl, args)
            return self.apply(fn.impl, args, kwargs)
        if hashable(fn) and fn in SHAPE_FROM_CONSTANTS:
            return self.construct(fn, e)
        if hashable(fn) and fn in SHAPE_FROM_ARGUMENT and e.args:
            # np.zeros_like(u): u's shape and dtype (its values, stand-ins here, are never read)
            args = [self.rep(e.args[0])] + [self.exact_value(a) for a in e.args[1:]]
            return self.apply(fn, args, {k.arg: self.exact_value(k.value) for k in e.keywords})
        if isinstance(fn, np.ufunc) and not e.keywords:
            # np.sqrt(n), np.exp(x) kept as written: NumPy's own ufunc on the stand-ins (shape and
            # dtype follow the operands', never their values)
            return self.elementwise(fn, [self.rep(a) for a in e.args])
        if e.keywords:
            raise _Unknown
        args = [self.rep(a) for a in e.args]
        if fn is range:
            if all(type(a) in (int, bool, _Number) for a in args):
                return range(1)
            raise _Unknown
        if fn is len:
            if args and isinstance(args[0], np.ndarray) and args[0].ndim:
                return 1
            raise _Unknown
        if any(fn is f for f in _MATH_BUILTINS) or _is_math_function(fn):
            if any(type(a) is _Number for a in args):
                # int(x), round(x): an int whatever x is; math functions: a float; abs/min/max keep it
                if fn is int or fn is round:
                    return 1
                if fn is float or _is_math_function(fn):
                    return 0.5
                if fn is bool:
                    return True
                return _Number(0.5)
            return self.apply(fn, args)
        raise _Unknown

    def construct(self, fn: Any, e: gast.Call) -> Any:
        """`np.zeros((n + 1, m))`, `np.full(...)`, `np.arange(n)`: a NumPy constructor whose arguments are
        all known values (its shape depends on them), run at a representative's cost."""
        args = [self.exact_value(a) for a in e.args]
        kwargs = {k.arg: self.exact_value(k.value) for k in e.keywords}
        sizes = [a for a in list(args) + list(kwargs.values()) if isinstance(a, (int, tuple))]
        if any(np.prod(a) > 10 ** 6 if isinstance(a, tuple) else a > 10 ** 6 for a in sizes
               if not isinstance(a, tuple) or all(type(x) is int for x in a)):
            raise _Unknown  # too large to build here: not known (the generic code is right)
        return self.apply(fn, args, kwargs)

    def exact_value(self, e: Any) -> Any:
        if isinstance(e, gast.Constant) and (e.value is None or type(e.value) in (int, float, bool, str)):
            return e.value
        if isinstance(e, gast.Tuple):
            return tuple(self.exact_value(x) for x in e.elts)
        if isinstance(e, gast.Attribute):  # a dtype: np.float64
            value = self.rep(e)
            if isinstance(value, type) or isinstance(value, np.dtype):
                return value
            raise _Unknown
        if _negated_constant(e):
            return -e.operand.value
        value = self.exact_int(e)
        if value is None:
            raise _Unknown
        return value

    def static(self, e: Any, index: bool) -> Any:
        """A static keyword's value (axis, shape, index): known only where it is written as constants
        (a number variable is fine as an integer index: the result's shape does not depend on which)."""
        if index:
            return self.index(e)
        try:
            return gast.literal_eval(e)
        except ValueError:
            pass
        if isinstance(e, gast.Name) and e.id in self.locals:
            f = self.fact_of_name(e.id)
            if isinstance(f, Num) and f.type is int and f.value is not None:
                return f.value  # axis=axis of a parameter whose int value the signature holds
        if isinstance(e, gast.Call):
            fn = self.rep(e.func)
            if hashable(fn) and fn in STATIC_HELPERS:  # axis=_axis(axis, None): run on known values
                try:
                    return fn(*[self.static(a, False) for a in e.args],
                              **{k.arg: self.static(k.value, False) for k in e.keywords})
                except _Unknown:
                    raise
                except Exception:  # noqa: BLE001 -- the helper refuses these values: not a fact
                    raise _Unknown from None
            if fn is P.shape and len(e.args) == 1:  # shape=shape(x) of an array whose shape is known
                base = self.rep(e.args[0])
                if isinstance(base, (np.ndarray, np.generic, int, float)):
                    return np.shape(base)
        raise _Unknown

    def index(self, e: Any) -> Any:
        if isinstance(e, gast.Constant):
            if e.value is None or e.value is Ellipsis or type(e.value) is int:
                return e.value
            raise _Unknown
        if _negated_constant(e):
            return -self.index(e.operand)
        if isinstance(e, gast.Name):
            if e.id not in self.locals:
                raise _Unknown
            f = self.fact_of_name(e.id)
            if isinstance(f, Num) and f.value is not None:
                return f.value
            if isinstance(f, Num) and f.type is int:
                return 0  # an integer position: which one does not change the result's shape
            if isinstance(f, Arr) and f.exact and f.dtype is not None and f.dtype.kind in "iu":
                return np.zeros(f.shape, np.intp)  # fancy indexing: the index's shape decides
            raise _Unknown  # a boolean mask, a float, a tuple held in a variable
        if isinstance(e, gast.Slice):
            bounds = (e.lower, e.upper, e.step)
            if all(b is None or isinstance(b, gast.Constant) or _negated_constant(b) for b in bounds):
                return slice(*[None if b is None else self.index(b) for b in bounds])
            exact = [None if b is None else self.exact_int(b) for b in bounds]
            if all(b is None or v is not None for b, v in zip(bounds, exact, strict=True)):
                return slice(*exact)  # bounds held in variables whose values are known
            for b in bounds:  # a bound held in a variable: a number (else the slice fails), not known
                if b is not None and not (isinstance(b, gast.Constant) or _negated_constant(b)
                                          or isinstance(b, gast.Name) and isinstance(self.fact(b), Num)):
                    raise _Unknown
            return _VariableSlice()
        if isinstance(e, gast.Tuple):
            return tuple(self.index(x) for x in e.elts)
        if isinstance(e, gast.Call) and len(e.args) <= 3 and not e.keywords:
            fn = self.rep(e.func)
            if fn is slice:
                return self.index(gast.Slice(*(list(e.args) + [None] * (3 - len(e.args)))))
        if isinstance(e, gast.Call) and not e.keywords:
            fn = self.rep(e.func)
            if isinstance(fn, Primitive):
                fn = fn.impl  # a static helper as generated code names it (mapping.STATIC_HELPERS)
            if hashable(fn) and fn in STATIC_HELPERS:
                # np.diff's index, _diff_index(x, -1, True): a helper of the shape of x and constants
                args = [self.exact_argument(a) for a in e.args]
                return self.apply(fn, args)
        raise _Unknown

    def exact_argument(self, e: Any) -> Any:
        """An argument whose value is known exactly: a constant, an int of known value, or an array of
        known shape (a static helper reads only its shape)."""
        if isinstance(e, gast.Name) and e.id in self.locals:
            f = self.fact_of_name(e.id)
            if isinstance(f, Arr) and f.exact:
                return representative(f)
        return self.exact_value(e)

    def subscript(self, value: Any, index: Any, whole: bool) -> Any:
        """`x[...]`: NumPy indexes the representative; an axis cut by a slice whose length is not known
        (a bound held in a variable; any slice but `:` of an axis whose length is not known) is marked
        not known, which only a statement's whole value can carry (nested deeper: not known at all)."""
        base = self.rep(value)
        ix = self.index(index)
        parts = ix if isinstance(ix, tuple) else (ix,)
        if not isinstance(base, (np.ndarray, np.generic)):
            if any(isinstance(p, _VariableSlice) for p in parts):
                raise _Unknown
            return self.apply(operator.getitem, [base, ix])
        loose: set[int] = set()
        if not any(isinstance(p, np.ndarray) for p in parts):
            consumed = sum(1 for p in parts if p is not None and p is not Ellipsis)
            axis = out = 0
            for p in parts:
                if p is Ellipsis:
                    skip = base.ndim - consumed
                    axis, out = axis + skip, out + skip
                elif p is None:
                    out += 1
                elif isinstance(p, (slice, _VariableSlice)):
                    full = (isinstance(p, slice) and p.start is None and p.stop is None
                            and p.step in (None, 1, -1))
                    cut_unknown = axis < base.ndim and base.shape[axis] == self.sentinel and not full
                    if isinstance(p, _VariableSlice) or cut_unknown:
                        loose.add(out)
                    axis, out = axis + 1, out + 1
                else:
                    axis += 1
        elif any(isinstance(p, _VariableSlice) for p in parts):
            raise _Unknown
        if loose and not whole:
            raise _Unknown
        self.loose |= loose
        plain = tuple(slice(None) if isinstance(p, _VariableSlice) else p for p in parts)
        return self.apply(operator.getitem, [base, plain if isinstance(ix, tuple) else plain[0]])

    def elementwise(self, op: Any, args: list, matmul: bool = False) -> Any:
        if op is None:
            raise _Unknown
        if matmul or not any(isinstance(a, np.ndarray) and a.size > _SMALL for a in args):
            return self.apply(op, args)
        # large operands: run on one-element stand-ins of each rank for the dtype, broadcast the shapes
        shapes = [np.shape(a) for a in args]
        try:
            shape = np.broadcast_shapes(*shapes)
        except ValueError:
            raise _Unknown from None
        small = [a.reshape(-1)[:1].reshape((1,) * a.ndim) if isinstance(a, np.ndarray) else a for a in args]
        out = self.apply(op, small)
        if not isinstance(out, (np.ndarray, np.generic)):
            raise _Unknown
        return np.lib.stride_tricks.as_strided(np.ones(1, out.dtype), shape, (0,) * len(shape))

    def apply(self, fn: Any, args: list, kwargs: dict | None = None) -> Any:
        if any(type(a) is _Number for a in args):
            # a number of unknown type: the result's type is not known either (unless the call is
            # elementwise on an array, which gives an array; left unknown here for simplicity)
            args = [0.5 if type(a) is _Number else a for a in args]
            out = self._run(fn, args, kwargs)
            if type(out) in (float, int, bool):
                return _Number(0.5)
            return out
        return self._run(fn, args, kwargs)

    @staticmethod
    def _run(fn: Any, args: list, kwargs: dict | None) -> Any:
        try:
            with np.errstate(all="ignore"):
                return fn(*args, **(kwargs or {}))
        except Exception:  # noqa: BLE001 -- it fails on the stand-in: not known (never a wrong fact)
            raise _Unknown from None


_MISSING = object()


def hashable(obj: Any) -> bool:
    """Whether `obj` can be looked up in a set or dict (a function, a type: yes; an array: no)."""
    try:
        hash(obj)
    except TypeError:
        return False
    return True


class _VariableSlice:
    """A slice with a bound held in a variable: it keeps its axis, of a length not known."""


def _has_variable_slice(ix: Any) -> bool:
    return isinstance(ix, _VariableSlice) or isinstance(ix, tuple) and any(isinstance(p, _VariableSlice)
                                                                          for p in ix)


def _plain_index(ix: Any, length: slice = slice(None)) -> Any:
    """The index with each slice of a variable bound replaced by `length` (a stand-in slice)."""
    if isinstance(ix, tuple):
        return tuple(_plain_index(p, length) for p in ix)
    return length if isinstance(ix, _VariableSlice) else ix


def _raise() -> Any:
    raise _Unknown


def _negated_constant(e: Any) -> bool:
    return (isinstance(e, gast.UnaryOp) and isinstance(e.op, gast.USub)
            and isinstance(e.operand, gast.Constant))


def _is_math_function(obj: Any) -> bool:
    return isinstance(obj, types.BuiltinFunctionType) and getattr(obj, "__module__", None) == "math" \
        and getattr(math, obj.__name__, None) is obj


def _stores(s: Any) -> set[str]:
    """Names a statement (not its nested blocks) assigns."""
    if type(s).__name__ == "Verbatim":
        return set(s.targets) | set(getattr(s, "mutates", ()) or ())
    if isinstance(s, gast.For):
        return {n.id for n in gast.walk(s.target) if isinstance(n, gast.Name)}
    if isinstance(s, (gast.If, gast.While)):
        return set()
    out = {n.id for n in gast.walk(s) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}
    out |= set(getattr(s, "mutates", ()) or ())
    return out


def _reshaped_in_place(s: Any) -> set[str]:
    """Names whose shape a statement may change in place (`x.resize(...)`, `x.shape = ...`)."""
    if isinstance(s, (gast.If, gast.For, gast.While)):
        parts = [s.test] if not isinstance(s, gast.For) else [s.iter]
    else:
        parts = [s]
    out = set()
    for part in parts:
        for n in gast.walk(part):
            if isinstance(n, gast.Attribute) and isinstance(n.value, gast.Name) and (
                    isinstance(n.ctx, gast.Store) or n.attr == "resize"):
                out.add(n.value.id)
    return out
