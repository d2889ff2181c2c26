"""The primitive operations: namespace-generic, one output each, and ONE RECORD per primitive.

A primitive's positional arguments are the values it may be differentiated with respect to (arrays or
Python numbers); its keyword arguments are static parameters (axis, shape, index, ...) that are never
differentiated. Each primitive dispatches on its arguments' namespace (`backend.namespace`), so NumPy
arrays stay NumPy, CuPy arrays stay on the GPU, and Python floats run on `math`.

A traced value (the eager runtime's Tensor) registers its type with `register_trace_type`; a primitive
called with one hands the call to the tracer, which records it and calls the primitive again on plain
arrays. That is how the derivative rules, written in primitives, run under `create_graph=True`.

The `Primitive` object is the primitive's record: every fact a stage needs about it is declared where the
primitive is defined (`@primitive(elementwise=True, math="sin", numpy="sin", ...)`, see `FACTS`) and read
from there, so the stages cannot drift apart. Its vjp and jvp are written in `rules.py` (the compiler
parses that file's source, so the rules keep its format there) and `defrule` attaches them to the record
(`PRIMITIVES["sin"].rule`). The tables the stages used to keep by hand (`ELEMENTWISE`, `NUMPY_FAST`,
`MATH_FAST`, `NODE_NAMES`, ...) are views computed from the records at the end of this module.
Functions of the rule table and of `stack.py` that generated code calls are not primitives; their facts
(linear in which arguments, zero derivative, read only for shapes) are `Helper` records (`helper`).
`docs/rules.md` ("Adding a primitive") says what a record holds; `tests/runtime/test_records.py` fails
when a record lacks a fact a stage needs.
"""

from __future__ import annotations

import ast
import builtins
import math
from typing import Any, Callable
from weakref import ref as _weakref

import numpy as np

from .backend import array_ns, common_namespace, is_scalar, namespace, scalar_ns

PRIMITIVES: dict[str, "Primitive"] = {}

_trace_types: tuple[type, ...] = ()
_trace_handler: Callable[..., Any] | None = None


class _Untraced:
    """Never instantiated: what `Primitive.__call__` checks against while no trace type is registered."""


# isinstance's second argument in `Primitive.__call__`: the one trace type itself (cheaper than a
# one-element tuple on this hot path), a tuple of several, or a class nothing is an instance of.
_trace_check: type | tuple[type, ...] = _Untraced


def register_trace_type(cls: type, handler: Callable[..., Any]) -> None:
    """Route primitive calls that receive an instance of `cls` to `handler(prim, args, kwargs)`."""
    global _trace_types, _trace_handler, _trace_check
    _trace_types = tuple(set(_trace_types) | {cls})
    _trace_check = _trace_types[0] if len(_trace_types) == 1 else _trace_types
    _trace_handler = handler


class _Undeclared:
    """The value of a fact a record has not declared. Distinct from None, which declares "none": an
    elementwise primitive must say which `math` function lowers it, or say None, so that forgetting the
    fact fails `test_records` instead of silently losing the Python-float fast path."""

    def __repr__(self) -> str:
        return "UNDECLARED"

    def __bool__(self) -> bool:
        return False


UNDECLARED: Any = _Undeclared()

# The facts a record holds, with their defaults (see docs/rules.md, "Adding a primitive"):
FACTS: dict[str, Any] = {
    # linear: groups of positional arguments in which the primitive is jointly linear while the other
    # positional arguments (and the static keywords, at their defaults) are held fixed: add ((0, 1),),
    # multiply ((0,), (1,)) (bilinear), matmul likewise. Variadic primitives say "all" (jointly linear in
    # every operand: concatenate) or "each" (linear in each operand alone: einsum). Checked numerically.
    "linear": (),
    # shape_only: positional arguments read only for their shape/dtype/namespace (True: all of them). A
    # rule that passes a saved input only to such calls does not need its values (autograd).
    "shape_only": (),
    # writes: positional arguments the call writes into. No primitive does (they return new arrays).
    "writes": (),
    # elementwise: the result broadcasts its positional arguments elementwise, and the compiler treats it
    # so (shapes broadcast, the Python-float variant, batching by lifting the tangent).
    "elementwise": False,
    # scalar: on Python numbers it returns a Python number (the compiler's float analysis follows it);
    # implied by elementwise.
    "scalar": False,
    # keeps_numpy: on NumPy arrays or numbers it returns NumPy arrays or numbers (the NumPy analysis
    # follows it); implied by scalar.
    "keeps_numpy": False,
    # math: the Python-float lowering, the name of a function of `math` (or a builtin: "abs"); None: it
    # has none. An elementwise primitive must declare it, or an `operator`.
    "math": UNDECLARED,
    # scalar_expression: its lowering on one-element operands (Python numbers, NumPy scalars) as a Python
    # expression over them, `{0}`, `{1}` (`{0} if {0} >= {1} ... else {1}`: maximum without NumPy's call
    # overhead); it must give what the primitive gives on such operands, and may read each more than once.
    "scalar_expression": None,
    # math_any_number: its `math` lowering gives what the primitive gives for any one-element operand (a
    # NumPy scalar or 0-d array too, not only a Python number): a conversion such as float(x).
    "math_any_number": False,
    # operator: the Python operator that spells it, as the `ast` class name ("Add", "USub"): both how
    # users write it and its lowering on Python numbers.
    "operator": None,
    # numpy: the NumPy function with the primitive's calling convention (keywords included), called
    # directly where every operand is known to be NumPy: "sin", "negative" for neg.
    "numpy": None,
    # fresh: the result is a new array sharing memory with none of the arguments (never a view), so a
    # name bound to it shares with nothing until it is bound elsewhere (the compiler drops the run-time
    # alias checks of writes into it). Declared where the implementation always allocates.
    "fresh": False,
    # as_index: `as_index(axis, ndim, shape)` gives the basic index that computes the primitive on a NumPy
    # array of `ndim` dimensions (of `shape`, where known) as a view, or None (expand_dims: `x[..., None]`);
    # the compiler writes a call with a constant int axis that way, without the function's overhead.
    "as_index": None,
    # node: the eager graph node's class name (PyTorch's, e.g. "MulBackward0"); None: CamelCase of the
    # name + "Backward0".
    "node": None,
    # batching: how batched forward mode (Jacobians, Hessians) inlines its jvp rule for a tangent with
    # a leading basis axis: "lift" (elementwise: lift the tangent to the output's rank), "swap" (the
    # rule as written, primitives applied to the tangent swapped for their batched variants), "loop"
    # (call the rule once per basis vector). A differentiable primitive must declare it.
    "batching": UNDECLARED,
}


class Primitive:
    """A named operation with one implementation: the record of every fact about it (see FACTS).

    Facts are attributes (`PRIMITIVES["sin"].math == "sin"`); `rule` is its vjp/jvp (`rules.Rule`, None
    for a non-differentiable primitive), set by `rules.defrule`."""

    __slots__ = ("name", "impl", "differentiable", "rule", "__name__", "__qualname__", "__dict__",
                 *FACTS)

    def __init__(self, name: str, impl: Callable[..., Any], differentiable: bool = True, **facts: Any):
        unknown = set(facts) - set(FACTS)
        if unknown:
            raise TypeError(f"primitive {name!r}: unknown facts {sorted(unknown)} (known: {sorted(FACTS)})")
        self.name = name
        self.impl = impl
        self.differentiable = differentiable
        self.rule = None
        for k, default in FACTS.items():
            setattr(self, k, facts.get(k, default))
        self.__doc__ = impl.__doc__
        self.__name__ = name
        self.__qualname__ = name
        self.__module__ = __name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for a in args:
            if isinstance(a, _trace_check):
                return _trace_handler(self, args, kwargs)
        if kwargs:
            return self.impl(*args, **kwargs)
        return self.impl(*args)

    def __repr__(self) -> str:
        return f"<srcgrad primitive {self.name}>"

    def __reduce__(self) -> str:
        return self.name

    # ------------------------------------------------------------------------------- derived facts
    @property
    def node_name(self) -> str:
        """The eager node's class name: the declared one, else `CamelCaseBackward0`."""
        return self.node or "".join(p[:1].upper() + p[1:] for p in self.name.split("_")) + "Backward0"

    @property
    def math_function(self) -> Callable[..., Any] | None:
        """The function the `math` fact names (`math.sin`; the builtin `abs`), or None."""
        if not self.math:
            return None
        return getattr(math, self.math, None) or getattr(builtins, self.math)

    @property
    def static_params(self) -> tuple[str, ...]:
        """The static keyword parameters (those with defaults) of the implementation."""
        code = getattr(self.impl, "__code__", None)
        if code is None:
            return ()
        names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
        n_defaults = len(self.impl.__defaults__ or ()) + len(self.impl.__kwdefaults__ or {})
        return tuple(names[len(names) - n_defaults:]) if n_defaults else ()

    @property
    def spellings(self) -> tuple[str, ...]:
        """How users write it: its operator and the NumPy/ndarray/PyTorch names `mapping` sends straight
        to it (adapters that compose primitives are `mapping`'s, not a primitive's)."""
        from . import mapping  # noqa: PLC0415 -- mapping imports this module

        out = [f"operator {self.operator}"] if self.operator else []
        for f, a in mapping.NUMPY_FUNCTIONS.items():
            if a is self:
                out.append(f"{getattr(f, '__module__', None) or 'numpy'}.{getattr(f, '__name__', f)}")
        out += [f"x.{m}" for m, a in mapping.METHODS.items() if a is self]
        out += [f"torch.{m}" for m, a in mapping.TORCH_FUNCTIONS.items() if a is self]
        return tuple(out)


def primitive(fn: Callable[..., Any] | None = None, *, name: str | None = None,
              differentiable: bool = True, **facts: Any) -> Any:
    """Decorator: register `fn` (named `_name`) as the implementation of primitive `name`, with the
    record's facts as keywords (`@primitive(elementwise=True, math="sin")`)."""

    def wrap(f: Callable[..., Any]) -> Primitive:
        pname = name or f.__name__.lstrip("_")
        prim = Primitive(pname, f, differentiable, **facts)
        PRIMITIVES[pname] = prim
        return prim

    return wrap(fn) if fn is not None else wrap


def nondiff(fn: Callable[..., Any] | None = None, **facts: Any) -> Any:
    """A primitive whose output carries no derivative (comparisons, rounding, indices, shapes)."""
    return primitive(fn, differentiable=False, **facts)


# ------------------------------------------------------------------------------------------ helpers
class Helper:
    """The record of a function generated code calls that is not a primitive: a helper of the rule
    table (`unbroadcast`, `keep`, ...) or of `stack.py` (`seed_of`, `unstack`, ...). Forward mode reads
    how its value depends on its arguments; the tape reads which arguments it reads only for shapes.

    linear      positions it is linear in, each alone (multilinear: matmul_vjp_a is linear in g and in b)
    shape_only  positions read only for their shape/dtype/namespace (True: all)
    static      positions that are static values (an axis, a count, an index): never a derivative
    zero        its value has zero derivative (piecewise constant, shapes, seeds, detach)
    nondiff     the compiler treats a call as a non-differentiable operation when it transforms
                generated code (the value passes through untouched)
    writes      positions it writes into (index_add_into writes the buffer generated code allocated)
    batching    batched forward mode: "as_is" (already right on a leading basis axis) or "axis" (its
                `axis` argument, at position `axis_at`, shifts past the basis axis); None: a variant or a
                loop (srcgrad.batching)
    axis_at     where its axis argument is, for batching "axis"
    shaped_like its value is its first argument brought to the shape of its second (summed down or
                broadcast up): the first argument itself where the two shapes agree, which the
                optimizer drops where the facts say they do
    folds       pure, of static values only: a call whose arguments are all literals is computed when
                the code is built (`inverse_permutation((1, 0), 2)` is written `(1, 0)`)
    """

    __slots__ = ("fn", "linear", "shape_only", "static", "zero", "nondiff", "writes", "batching", "axis_at",
                 "shaped_like", "folds")

    def __init__(self, fn: Callable[..., Any], linear: tuple = (), shape_only: tuple | bool = (),
                 static: tuple = (), zero: bool = False, nondiff: bool = False, writes: tuple = (),
                 batching: str | None = None, axis_at: int | None = None, shaped_like: bool = False,
                 folds: bool = False):
        self.fn, self.linear, self.shape_only, self.static = fn, tuple(linear), shape_only, tuple(static)
        self.zero, self.nondiff, self.writes = zero, nondiff, tuple(writes)
        self.batching, self.axis_at, self.shaped_like, self.folds = batching, axis_at, shaped_like, folds

    def __repr__(self) -> str:
        return f"<srcgrad helper {getattr(self.fn, '__name__', self.fn)}>"


HELPERS: dict[Any, Helper] = {}


def helper(fn: Callable[..., Any], **facts: Any) -> Callable[..., Any]:
    """Declare the record of helper `fn` (see `Helper`); returns `fn` itself, unchanged."""
    HELPERS[fn] = Helper(fn, **facts)
    return fn


# ------------------------------------------------------------------------------------ namespace helpers
_FN_CACHE: dict[tuple[int, str], Any] = {}


def fn(xp: Any, *names: str) -> Any:
    """The first of `names` that namespace `xp` defines (array-API names first, NumPy names second)."""
    key = (id(xp), names[0])
    f = _FN_CACHE.get(key)
    if f is None:
        for n in names:
            obj = xp
            for part in n.split("."):
                obj = getattr(obj, part, None)
                if obj is None:
                    break
            if obj is not None:
                f = obj
                break
        if f is None:
            raise NotImplementedError(f"namespace {getattr(xp, '__name__', xp)} has none of {names}")
        _FN_CACHE[key] = f
    return f


def _elementwise(*names: str) -> Callable[[Any], Any]:
    """The implementation of a unary elementwise primitive: the function of x's own namespace named
    `names[0]` (array API) or `names[1]` (NumPy), looked up once per argument type. This is the hot
    path of scalar and small-array code, so it costs one dict lookup over calling NumPy directly."""
    by_type: dict[type, Any] = {}

    def impl(x: Any) -> Any:
        f = by_type.get(type(x))
        if f is None:
            f = by_type[type(x)] = fn(namespace(x), *names)
        return f(x)

    impl.__name__ = names[0]
    return impl


def _zero_like_scalar(x: Any) -> Any:
    return 0.0 if isinstance(x, float) else 0


def _ns2(x: Any, y: Any) -> Any:
    return common_namespace(x, y)


def _device(x: Any) -> Any:
    """x's device for an array-API constructor; None (the default) where the array has no `.device`
    (Dask arrays live wherever their chunks are computed)."""
    return getattr(x, "device", None)


# ===================================================================================== elementwise, unary
@primitive(linear=((0,),), elementwise=True, operator="USub", fresh=True, numpy="negative",
           node="NegBackward0", batching="lift")
def _neg(x):
    return -x


@primitive(elementwise=True, math="abs", numpy="abs", node="AbsBackward0", batching="lift")
def _abs(x):
    return builtins.abs(x)


exp = primitive(_elementwise("exp"), name="exp",
                elementwise=True, math="exp", numpy="exp", node="ExpBackward0", batching="lift", fresh=True)


expm1 = primitive(_elementwise("expm1"), name="expm1",
                elementwise=True, math="expm1", numpy="expm1", node="Expm1Backward0", batching="lift",
                fresh=True)


log = primitive(_elementwise("log"), name="log",
                elementwise=True, math="log", numpy="log", node="LogBackward0", batching="lift", fresh=True)


log1p = primitive(_elementwise("log1p"), name="log1p",
                elementwise=True, math="log1p", numpy="log1p", node="Log1PBackward0", batching="lift",
                fresh=True)


log2 = primitive(_elementwise("log2"), name="log2",
                elementwise=True, math="log2", numpy="log2", node="Log2Backward0", batching="lift",
                fresh=True)


log10 = primitive(_elementwise("log10"), name="log10",
                elementwise=True, math="log10", numpy="log10", node="Log10Backward0", batching="lift",
                fresh=True)


sqrt = primitive(_elementwise("sqrt"), name="sqrt",
                elementwise=True, math="sqrt", numpy="sqrt", node="SqrtBackward0", batching="lift",
                fresh=True)


@primitive(elementwise=True, math=None, keeps_numpy=True, numpy="square", node="PowBackward0",
           batching="lift")
def _square(x):
    return x * x


@primitive(elementwise=True, math=None, keeps_numpy=True, numpy="reciprocal", node="ReciprocalBackward0",
           batching="lift")
def _reciprocal(x):
    return 1.0 / x


sin = primitive(_elementwise("sin"), name="sin",
                elementwise=True, math="sin", numpy="sin", node="SinBackward0", batching="lift", fresh=True)


cos = primitive(_elementwise("cos"), name="cos",
                elementwise=True, math="cos", numpy="cos", node="CosBackward0", batching="lift", fresh=True)


tan = primitive(_elementwise("tan"), name="tan",
                elementwise=True, math="tan", numpy="tan", node="TanBackward0", batching="lift", fresh=True)


arcsin = primitive(_elementwise("asin", "arcsin"), name="arcsin",
                elementwise=True, math="asin", numpy="arcsin", node="AsinBackward0", batching="lift",
                fresh=True)


arccos = primitive(_elementwise("acos", "arccos"), name="arccos",
                elementwise=True, math="acos", numpy="arccos", node="AcosBackward0", batching="lift",
                fresh=True)


arctan = primitive(_elementwise("atan", "arctan"), name="arctan",
                elementwise=True, math="atan", numpy="arctan", node="AtanBackward0", batching="lift",
                fresh=True)


sinh = primitive(_elementwise("sinh"), name="sinh",
                elementwise=True, math="sinh", numpy="sinh", node="SinhBackward0", batching="lift",
                fresh=True)


cosh = primitive(_elementwise("cosh"), name="cosh",
                elementwise=True, math="cosh", numpy="cosh", node="CoshBackward0", batching="lift",
                fresh=True)


tanh = primitive(_elementwise("tanh"), name="tanh",
                elementwise=True, math="tanh", numpy="tanh", node="TanhBackward0", batching="lift",
                fresh=True)


arcsinh = primitive(_elementwise("asinh", "arcsinh"), name="arcsinh",
                elementwise=True, math="asinh", numpy="arcsinh", node="AsinhBackward0", batching="lift",
                fresh=True)


arccosh = primitive(_elementwise("acosh", "arccosh"), name="arccosh",
                elementwise=True, math="acosh", numpy="arccosh", node="AcoshBackward0", batching="lift",
                fresh=True)


arctanh = primitive(_elementwise("atanh", "arctanh"), name="arctanh",
                elementwise=True, math="atanh", numpy="arctanh", node="AtanhBackward0", batching="lift",
                fresh=True)


# math.cbrt is Python 3.11+
_scalar_cbrt = getattr(math, "cbrt", lambda v: math.copysign(builtins.abs(v) ** (1.0 / 3.0), v))


@primitive(elementwise=True, math=None, numpy="cbrt", batching="lift")
def _cbrt(x):
    """The real cube root (negative for negative x, unlike x ** (1/3))."""
    if is_scalar(x):
        return _scalar_cbrt(x)
    xp = namespace(x)
    if hasattr(xp, "cbrt"):
        return xp.cbrt(x)
    return fn(xp, "sign")(x) * builtins.abs(x) ** (1.0 / 3.0)  # namespaces without cbrt (array API)


@primitive(elementwise=True, math=None, node="SigmoidBackward0", batching="lift")
def _sigmoid(x):
    # tanh form: stable for large |x| in both directions and exact on Python floats
    xp = namespace(x)
    return 0.5 * (fn(xp, "tanh")(0.5 * x) + 1.0)


@primitive(elementwise=True, math=None, node="ReluBackward0", batching="lift")
def _relu(x):
    if is_scalar(x):
        return x if x > 0 else 0.0 * x
    xp = namespace(x)
    return xp.where(x > 0, x, xp.zeros_like(x))


@primitive(elementwise=True, math=None, node="SoftplusBackward0", batching="lift")
def _softplus(x):
    # log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|)
    if is_scalar(x):
        return builtins.max(x, 0.0) + math.log1p(math.exp(-builtins.abs(x)))
    xp = namespace(x)
    return xp.where(x > 0, x, xp.zeros_like(x)) + fn(xp, "log1p")(fn(xp, "exp")(-builtins.abs(x)))


def _erf_numpy(x: Any) -> Any:
    try:  # SciPy is optional: use it when present, math.erf elementwise otherwise
        from scipy.special import erf  # noqa: PLC0415

        return erf(x)
    except ImportError:
        out = np.frompyfunc(math.erf, 1, 1)(x)
        return np.asarray(out, dtype=np.result_type(x, np.float64) if np.asarray(x).dtype.kind != "f"
                          else np.asarray(x).dtype)[()]


@primitive(elementwise=True, math="erf", node="ErfBackward0", batching="lift")
def _erf(x):
    xp = namespace(x)
    if xp is scalar_ns:
        return math.erf(x)
    if xp is np:
        return _erf_numpy(x)
    if getattr(xp, "__name__", "") == "cupy":
        import cupyx.scipy.special  # noqa: PLC0415

        return cupyx.scipy.special.erf(x)
    return fn(xp, "erf")(x)


# ==================================================================================== elementwise, binary
@primitive(linear=((0, 1),), elementwise=True, operator="Add", node="AddBackward0", batching="lift",
           fresh=True)
def _add(x, y):
    return x + y


@primitive(linear=((0, 1),), elementwise=True, operator="Sub", node="SubBackward0", batching="lift",
           fresh=True)
def _subtract(x, y):
    return x - y


@primitive(linear=((0,), (1,)), elementwise=True, operator="Mult", node="MulBackward0", batching="lift",
           fresh=True)
def _multiply(x, y):
    return x * y


@primitive(linear=((0,),), elementwise=True, operator="Div", node="DivBackward0", batching="lift",
           fresh=True)
def _divide(x, y):
    return x / y


@primitive(elementwise=True, operator="Pow", node="PowBackward0", batching="lift", fresh=True)
def _power(x, y):
    # Small integer exponents as products: NumPy's general pow is ~10x slower than a multiply.
    if type(y) is int or type(y) is float:
        if y == 2:
            return x * x
        if y == 3:
            return x * x * x
    return x ** y


@primitive(elementwise=True, math=None, numpy="maximum", node="MaximumBackward0", batching="lift",
           scalar_expression="{0} if {0} >= {1} or {0} != {0} else {1}")
def _maximum(x, y):
    if is_scalar(x) and is_scalar(y):
        return x if x >= y or x != x else y  # a nan wins, as in NumPy
    return fn(_ns2(x, y), "maximum")(x, y)


@primitive(elementwise=True, math=None, numpy="minimum", node="MinimumBackward0", batching="lift",
           scalar_expression="{0} if {0} <= {1} or {0} != {0} else {1}")
def _minimum(x, y):
    if is_scalar(x) and is_scalar(y):
        return x if x <= y or x != x else y  # a nan wins, as in NumPy
    return fn(_ns2(x, y), "minimum")(x, y)


@primitive(elementwise=True, math="atan2", numpy="arctan2", node="Atan2Backward0", batching="lift")
def _arctan2(y, x):
    return fn(_ns2(y, x), "atan2", "arctan2")(y, x)


@primitive(elementwise=True, math="hypot", numpy="hypot", node="HypotBackward0", batching="lift")
def _hypot(x, y):
    return fn(_ns2(x, y), "hypot")(x, y)


@primitive(elementwise=True, math=None, batching="lift")
def _logaddexp(x, y):
    """log(exp(x) + exp(y)) without overflow."""
    if is_scalar(x) and is_scalar(y):
        hi = builtins.max(x, y)
        if hi == -math.inf:
            return hi * 1.0
        return hi + math.log1p(math.exp(-builtins.abs(x - y)))
    return fn(_ns2(x, y), "logaddexp")(x, y)


@primitive(elementwise=True, operator="Mod", batching="lift")
def _remainder(x, y):
    """x mod y with the sign of y: NumPy's remainder, Python's `%`."""
    if is_scalar(x) and is_scalar(y):
        return x % y
    return fn(_ns2(x, y), "remainder")(x, y)


@primitive(elementwise=True, math=None, numpy="fmod", batching="lift", fresh=True)
def _fmod(x, y):
    """C's fmod: x - k y with k = trunc(x / y), so the sign of x (NumPy's fmod, torch.fmod, math.fmod;
    `remainder` takes the sign of y). nan where y is 0 or x infinite, as NumPy (math.fmod would raise)."""
    if is_scalar(x) and is_scalar(y):
        if type(x) is int and type(y) is int:
            r = builtins.abs(x) % builtins.abs(y)
            return -r if x < 0 else r
        try:
            return math.fmod(x, y)
        except ValueError:
            return math.nan
    return fn(_ns2(x, y), "fmod")(x, y)


@primitive(linear=((1, 2),), elementwise=True, math=None, numpy="where", node="WhereBackward0",
           batching="lift", scalar_expression="{1} if {0} else {2}")
def _where(cond, x, y):
    if is_scalar(cond) and is_scalar(x) and is_scalar(y):
        return x if cond else y
    xp = common_namespace(cond, x, y)
    if xp is scalar_ns:
        xp = array_ns(cond)
    return xp.where(cond, x, y)


@primitive(elementwise=True, math=None, keeps_numpy=True, node="ClampBackward1", batching="lift")
def _clip(x, min=None, max=None):
    if is_scalar(x):
        if min is not None and x < min:
            return min * 1.0
        if max is not None and x > max:
            return max * 1.0
        return x
    return fn(namespace(x), "clip")(x, min, max)


# ========================================================================== non-differentiable, elementwise
def _cmp(name: str, op: Callable[[Any, Any], Any], symbol: str) -> Primitive:
    return primitive(lambda x, y: op(x, y), name=name, differentiable=False,
                     scalar_expression="{0} " + symbol + " {1}")


equal = _cmp("equal", lambda x, y: x == y, "==")
not_equal = _cmp("not_equal", lambda x, y: x != y, "!=")
less = _cmp("less", lambda x, y: x < y, "<")
less_equal = _cmp("less_equal", lambda x, y: x <= y, "<=")
greater = _cmp("greater", lambda x, y: x > y, ">")
greater_equal = _cmp("greater_equal", lambda x, y: x >= y, ">=")


@nondiff
def _logical_and(x, y):
    if is_scalar(x) and is_scalar(y):
        return bool(x) and bool(y)
    return fn(_ns2(x, y), "logical_and")(x, y)


@nondiff
def _logical_or(x, y):
    if is_scalar(x) and is_scalar(y):
        return bool(x) or bool(y)
    return fn(_ns2(x, y), "logical_or")(x, y)


@nondiff
def _logical_not(x):
    if is_scalar(x):
        return not x
    return fn(namespace(x), "logical_not")(x)


@nondiff(numpy="sign", scalar_expression="(({0} > 0) * 2.0 - 1.0) * ({0} != 0) if {0} == {0} else {0}")
def _sign(x):
    if is_scalar(x):  # np.float64 stays one; a nan stays nan and an inf is +-1, as NumPy's sign gives
        return ((x > 0) * 2.0 - 1.0) * (x != 0) if x == x else x
    return fn(namespace(x), "sign")(x)


@nondiff
def _floor(x):
    if is_scalar(x):
        return float(math.floor(x))
    return fn(namespace(x), "floor")(x)


@nondiff
def _ceil(x):
    if is_scalar(x):
        return float(math.ceil(x))
    return fn(namespace(x), "ceil")(x)


@nondiff
def _round(x, decimals=0):
    if is_scalar(x):
        return float(builtins.round(x, decimals))
    xp = namespace(x)
    if decimals == 0:
        return fn(xp, "round")(x)
    return fn(xp, "round")(x * 10.0 ** decimals) / 10.0 ** decimals


@nondiff
def _isfinite(x):
    if is_scalar(x):
        return math.isfinite(x)
    return fn(namespace(x), "isfinite")(x)


@nondiff(numpy="signbit")
def _signbit(x):
    """Whether the sign bit is set: True for -0.0 and a negative nan too (np.signbit, torch.signbit)."""
    if is_scalar(x):
        return math.copysign(1.0, x) < 0
    return fn(namespace(x), "signbit")(x)


@nondiff
def _argmax(x, axis=None, keepdims=False):
    return fn(array_ns(x), "argmax")(x, axis=axis, keepdims=keepdims)


@nondiff
def _argmin(x, axis=None, keepdims=False):
    return fn(array_ns(x), "argmin")(x, axis=axis, keepdims=keepdims)


@nondiff
def _argsort(x, axis=-1):
    """Stable (ties keep their order, as the array API's argsort and PyTorch's sort(stable=True))."""
    xp = array_ns(x)
    if _is_np_like(xp):
        return xp.argsort(x, axis=axis, kind="stable")
    return fn(xp, "argsort")(x, axis=axis)


@nondiff
def _flat_along_axis(order, axis=-1, shape=None):
    """Flat positions that gather along `axis` by the integer array `order`: `reshape(x, (-1,))[pos]` is
    NumPy's take_along_axis(x, order, axis), as one index into the flattened array. `shape` is x's shape
    where it differs from order's (torch.gather/scatter: order no larger than x off `axis`); the
    positions keep order's shape."""
    xp = array_ns(order)
    oshape = tuple(order.shape)
    shape = oshape if shape is None else tuple(shape)
    nd = len(oshape)
    a = axis % nd
    pos, stride = 0, 1
    for d in reversed(range(nd)):
        grid = order if d == a else xp.reshape(xp.arange(oshape[d]), tuple(n if k == d else 1
                                                                             for k, n in enumerate(oshape)))
        pos = pos + grid * stride
        stride *= shape[d]
    return pos


@nondiff(shape_only=True, numpy="shape")
def _shape(x):
    if type(x) is np.ndarray:  # the hot case (every `unbroadcast`): NumPy's shape is a tuple already
        return x.shape
    if is_scalar(x):
        return ()
    own = getattr(namespace(x), "shape_of", None)  # a namespace's own: Dask's carries the chunks too
    return own(x) if own is not None else tuple(x.shape)


@nondiff(shape_only=True)
def _size(x):
    if is_scalar(x):
        return 1
    return math.prod(x.shape)


@nondiff(shape_only=True, numpy="ndim")
def _ndim(x):
    if type(x) is np.ndarray:
        return x.ndim
    return 0 if is_scalar(x) else len(x.shape)


@nondiff(shape_only=(0,))
def _holds_floats(x):
    """1.0 where x holds floating-point values (a number counts), 0.0 for an integer or boolean array:
    a value written into one is truncated, a piecewise constant function of it (y[:] = 10 * x)."""
    if is_scalar(x):
        return 1.0
    return 1.0 if "float" in str(x.dtype) else 0.0


@nondiff(shape_only=True, numpy="zeros_like", fresh=True)
def _zeros_like(x):
    if is_scalar(x):
        return 0.0
    return namespace(x).zeros_like(x)


@nondiff(shape_only=True, numpy="ones_like")
def _ones_like(x):
    if is_scalar(x):
        return 1.0
    return namespace(x).ones_like(x)


@primitive(linear=((0,),), node="CloneBackward0", batching="loop", fresh=True)
def _copy(x):
    """A new array with x's values (np.copy, ndarray.copy, Tensor.clone): never the same memory as x, so
    a later in-place write into the copy leaves x alone. A Python number is its own copy."""
    if is_scalar(x):
        return x
    xp = array_ns(x)
    return np.array(x, copy=True) if xp is np else fn(xp, "asarray")(x, copy=True)


@primitive(linear=((0,),), node="ItemBackward0", batching="loop")
def _item(x):
    """The Python number a one-element array holds (`x.item()`, `float(x)`); a number is itself. The
    derivative passes through: the value is the element."""
    if type(x) in (float, int, bool, complex):
        return x
    if isinstance(x, np.generic):
        return x.item()  # a NumPy scalar (an element read from an array): its Python number, as NumPy
    if math.prod(x.shape) != 1:
        raise ValueError(f"can only convert an array of size 1 to a Python scalar (shape {tuple(x.shape)})")
    if hasattr(x, "item"):
        return x.item()
    return float(fn(array_ns(x), "reshape")(x, ()))  # the array API's way: a 0-d array's __float__


@primitive(linear=((0,),), scalar=True, math="float", math_any_number=True, node="ToCopyBackward0",
           batching="loop")
def _to_float(x):
    """float(x): the Python float a one-element value holds (a number, a NumPy scalar, a one-element
    array). What `math` functions do to their arguments first, so `math.exp(x[i])` is
    `math.exp(to_float(x[i]))`, a Python float from there on, as in the user's program."""
    if type(x) is float:
        return x
    if isinstance(x, (int, np.generic)):
        return float(x)
    return float(_item(x))


@primitive(elementwise=True, math=None, node="ToCopyBackward0", batching="lift")
def _astype(x, dtype=None, copy=True):
    """Cast to `dtype`; differentiable between floating dtypes (the gradient is cast back). With
    copy=False, x itself where no cast is needed (the same memory, as in NumPy)."""
    if is_scalar(x):
        return float(x) if np.dtype(dtype).kind == "f" else np.dtype(dtype).type(x).item()
    xp = namespace(x)
    if not _is_np_like(xp):
        dtype = _dtype_in(xp, dtype)
    if hasattr(xp, "astype"):
        return fn(xp, "astype")(x, dtype) if copy else fn(xp, "astype")(x, dtype, copy=False)
    return x.astype(dtype) if copy else x.astype(dtype, copy=False)


def _dtype_in(xp: Any, dtype: Any) -> Any:
    """A NumPy spelling of a dtype (np.float32, 'float32', float) as namespace xp's own dtype object,
    so user code written with NumPy dtypes runs on any array-API namespace."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        return dtype  # already the namespace's own dtype
    return getattr(xp, name, dtype)


# ============================================================================================= reductions
def _reduce(name: str, x: Any, axis: Any, keepdims: bool, **kw: Any) -> Any:
    if type(x) is np.ndarray:  # the method skips np.sum's dispatch layers (about 1 us of 2 on small arrays)
        return getattr(x, name)(axis=axis, keepdims=keepdims, **kw)
    xp = array_ns(x)
    out = fn(xp, name)(x, axis=axis, keepdims=keepdims, **kw)
    return out


@primitive(linear=((0,),), scalar=True, numpy="sum", node="SumBackward0", batching="swap")
def _sum(x, axis=None, keepdims=False):
    if is_scalar(x):
        return x
    return _reduce("sum", x, axis, keepdims)


@primitive(linear=((0,),), scalar=True, numpy="mean", node="MeanBackward0", batching="swap")
def _mean(x, axis=None, keepdims=False):
    if is_scalar(x):
        return x
    return _reduce("mean", x, axis, keepdims)


@primitive(node="ProdBackward0", batching="swap")
def _prod(x, axis=None, keepdims=False):
    if is_scalar(x):
        return x
    return _reduce("prod", x, axis, keepdims)


@primitive(keeps_numpy=True, numpy="max", node="MaxBackward1", batching="swap")
def _max(x, axis=None, keepdims=False):
    if is_scalar(x):
        return x
    return _reduce("max", x, axis, keepdims)


@primitive(keeps_numpy=True, numpy="min", node="MinBackward1", batching="swap")
def _min(x, axis=None, keepdims=False):
    if is_scalar(x):
        return x
    return _reduce("min", x, axis, keepdims)


# ============================================================================= shapes and broadcasting
def normalize_axis(axis: Any, ndim: int) -> tuple[int, ...]:
    """Axis argument -> sorted tuple of non-negative axes (None means all axes)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim if ndim else a for a in axis))


@primitive(linear=((0,),), keeps_numpy=True, numpy="reshape", node="ViewBackward0", batching="swap")
def _reshape(x, shape=None):
    if is_scalar(x) and tuple(shape) == ():
        return x
    xp = array_ns(x)
    return fn(xp, "reshape")(x, tuple(shape) if not isinstance(shape, int) else (shape,))


@primitive(linear=((0,),), keeps_numpy=True, numpy="broadcast_to", node="ExpandBackward0", batching="swap")
def _broadcast_to(x, shape=None):
    if not isinstance(shape, tuple):  # a tuple subclass is kept: Dask's shape(x) carries x's chunks
        shape = tuple(shape)
    if is_scalar(x):
        if shape == ():
            return x
        xp = getattr(shape, "namespace", None)  # the shape of a lazy array: broadcast there, not in NumPy
        if xp is not None:
            return fn(xp, "broadcast_to")(xp.asarray(x), shape)
        return np.full(shape, x, dtype=np.result_type(x, np.float64) if isinstance(x, float) else None)
    if tuple(x.shape) == shape:
        return x
    return fn(namespace(x), "broadcast_to")(x, shape)


@primitive(linear=((0,),), keeps_numpy=True, node="SumBackward1", batching="swap")
def _sum_to(x, shape=None):
    """Sum `x` down to `shape`: the adjoint of broadcasting (the identity when shapes already agree)."""
    if type(x) is np.ndarray and type(shape) is tuple and x.shape == shape:  # hot: nothing to sum
        return x
    shape = tuple(shape)
    xshape = () if is_scalar(x) else tuple(x.shape)
    if xshape == shape:
        return x
    lead = len(xshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and xshape[i + lead] != 1)
    xp = array_ns(x)
    out = fn(xp, "sum")(x, axis=axes, keepdims=True) if axes else x
    out = fn(xp, "reshape")(out, shape)
    return out


def _axis_as_index(marker: Any) -> Callable[[Any, int], tuple | None]:
    """`as_index` of expand_dims (marker None: a new axis) and squeeze (marker 0: the axis dropped)."""

    def as_index(axis: Any, ndim: int, shape: tuple | None = None) -> tuple | None:
        out_ndim = ndim + 1 if marker is None else ndim
        if type(axis) is not int or not -out_ndim <= axis < out_ndim:
            return None
        if marker is not None and shape is not None and shape[axis] != 1:
            return None  # squeeze of an axis longer than 1: NumPy's error, from the call itself
        if axis < 0:
            return (Ellipsis, marker) + (slice(None),) * (-axis - 1)
        return (slice(None),) * axis + (marker, Ellipsis)

    return as_index


@primitive(linear=((0,),), keeps_numpy=True, numpy="expand_dims", node="UnsqueezeBackward0", batching="swap",
           as_index=_axis_as_index(None))
def _expand_dims(x, axis=0):
    if type(x) is np.ndarray and type(axis) is int:  # the hot case (matmul's rules), as below
        if axis == -1:
            return x[..., None]
        shape = list(x.shape)
        shape.insert(axis % (len(shape) + 1), 1)
        return x.reshape(tuple(shape))
    xp = array_ns(x)
    if is_scalar(x):
        x = xp.asarray(x)
    shape = list(x.shape)
    if type(axis) is int:  # the common case, without sorting
        shape.insert(axis % (len(shape) + 1), 1)
        return fn(xp, "reshape")(x, tuple(shape))
    out_ndim = len(shape) + len(axis)
    for a in sorted(a % out_ndim for a in axis):
        shape.insert(a, 1)
    return fn(xp, "reshape")(x, tuple(shape))


@primitive(linear=((0,),), keeps_numpy=True, numpy="squeeze", node="SqueezeBackward0", batching="swap",
           as_index=_axis_as_index(0))
def _squeeze(x, axis=None):
    xp = array_ns(x)
    if axis is None:
        axis = tuple(i for i, n in enumerate(x.shape) if n == 1)
    return fn(xp, "squeeze")(x, axis=axis)


@primitive(linear=((0,),), keeps_numpy=True, numpy="transpose", node="PermuteBackward0", batching="swap")
def _transpose(x, axes=None):
    if is_scalar(x):
        return x
    if axes is None:
        axes = tuple(reversed(range(len(x.shape))))
    return fn(array_ns(x), "permute_dims", "transpose")(x, tuple(axes))


@primitive(linear=((0,),), keeps_numpy=True, node="IndexBackward0", batching="swap")
def _getitem(x, index=None):
    return x[index]


def _without_newaxis(out: Any, index: Any, v: Any, xp: Any) -> tuple[Any, Any]:
    """Array-API namespaces refuse None (newaxis) in an assignment index: drop it, and reshape v to
    the shape the remaining index selects (None only inserts axes of size 1)."""
    idx = index if isinstance(index, tuple) else (index,)
    if xp is np or not builtins.any(i is None for i in idx):
        return index, v
    full = tuple(out[index].shape)
    idx = tuple(i for i in idx if i is not None)
    if not is_scalar(v):
        v = fn(xp, "reshape")(fn(xp, "broadcast_to")(v, full), tuple(out[idx].shape))
    return idx, v


_LINEAGE: dict[int, tuple] = {}  # id(new array) -> (weakref to it, weakref to the array it updates)


def _record_lineage(out: Any, x: Any) -> None:
    """`out` is `x` updated (a user's `x[i] = v`, which NumPy does in place and generated code may do
    on a new array): the run-time alias checks read it back with `lineage`, so a name that views x
    (`a = x[0]`) is still seen to share the array NumPy would write. Weak on both sides: an array no
    name holds can be viewed by none."""
    if type(x).__name__ != "ndarray":
        return
    _LINEAGE[id(out)] = (_weakref(out), _weakref(x))
    if len(_LINEAGE) > 4096:
        for k in [k for k, (o, _) in _LINEAGE.items() if o() is None]:
            del _LINEAGE[k]


def lineage(a: Any) -> list:
    """`a` and the arrays it was made from by updates (`_record_lineage`) that are still alive, newest
    first: the one array NumPy's in-place writes would have kept."""
    out = [a]
    while True:
        hit = _LINEAGE.get(id(out[-1]))
        if hit is None or hit[0]() is not out[-1]:
            return out
        prev = hit[1]()
        if prev is None or builtins.any(prev is o for o in out):
            return out
        out.append(prev)


@primitive(linear=((0, 1),), node="CopySlices", batching="swap", fresh=True)
def _index_update(x, v, index=None):
    """`x` with `x[index] = v`, as a new array: the user's array is never written."""
    if isinstance(x, (dict, list)):
        raise TypeError(
            f"srcgrad differentiates writes into arrays, and this one changes an item of a "
            f"{type(x).__name__} (`d[k] += v` on a {type(x).__name__} argument, which would change the "
            f"caller's {type(x).__name__}): build a new {type(x).__name__}, or take the array out and change "
            "a copy (w = d[k].copy(); w += v)")
    xp = _seq_ns((x, v))  # v's namespace when it is lazy and x is NumPy: NumPy would compute it
    out = fn(xp, "asarray")(x, copy=True) if xp is not np else np.array(x, copy=True)
    index, v = _without_newaxis(out, index, v, xp)
    out[index] = v
    _record_lineage(out, x)
    return out


def _positions_once(index) -> bool:
    parts = index if type(index) is tuple else (index,)
    return builtins.all(type(p) is int or type(p) is slice or p is Ellipsis or isinstance(p, np.integer)
                        for p in parts)


@primitive(linear=((0, 1),), node="IndexPutBackward0", batching="swap", fresh=True)
def _index_add(x, v, index=None):
    """`x` with `v` added at `index`, repeated integer indices accumulating (like numpy.add.at)."""
    xp = _seq_ns((x, v))
    if xp is np:
        out = np.array(x, copy=True)
        if _positions_once(index):
            out[index] += v  # ints and slices name each position once: no need for add.at's slow path
        else:
            np.add.at(out, index, v)
        _record_lineage(out, x)
        return out
    if getattr(xp, "__name__", "") == "cupy":
        out = x.copy()
        xp.add.at(out, index, v)
        return out
    parts = index if isinstance(index, tuple) else (index,)
    if builtins.any(isinstance(p, list) or (len(getattr(p, "shape", ())) > 0 and "int" in str(p.dtype))
                    for p in parts):
        raise NotImplementedError(
            f"index_add with integer-array indices needs an unbuffered add (add.at), which "
            f"{getattr(xp, '__name__', xp)} lacks: repeated indices would silently not accumulate")
    out = fn(xp, "asarray")(x, copy=True)
    if builtins.any(n is None or n != n for n in out[index].shape):  # unknown length: None, or NaN (Dask)
        raise NotImplementedError(
            f"index_add through a boolean mask on a lazy {getattr(xp, '__name__', xp)} array: the "
            f"selection's length is unknown until computed, so its values cannot be placed back")
    index, v = _without_newaxis(out, index, v, xp)
    out[index] = out[index] + v  # basic indices and masks: no position repeats
    return out


# ================================================================================== more reductions
def _is_np_like(xp: Any) -> bool:
    """NumPy and CuPy spell keyword arguments the NumPy way (ddof, axis1); the array API differs."""
    return xp is np or getattr(xp, "__name__", "") == "cupy"


def _moments(name: str, x: Any, axis: Any, ddof: Any, keepdims: bool) -> Any:
    xp = array_ns(x)
    if _is_np_like(xp):
        return fn(xp, name)(x, axis=axis, ddof=ddof, keepdims=keepdims)
    return fn(xp, name)(x, axis=axis, correction=ddof, keepdims=keepdims)


@primitive(node="VarBackward0", batching="swap")
def _var(x, axis=None, ddof=0, keepdims=False):
    """Variance with NumPy's `ddof` (PyTorch's `correction`): sum((x - mean)^2) / (N - ddof)."""
    if is_scalar(x):
        return 0.0 * x
    return _moments("var", x, axis, ddof, keepdims)


@primitive(node="StdBackward0", batching="swap")
def _std(x, axis=None, ddof=0, keepdims=False):
    if is_scalar(x):
        return 0.0 * x
    return _moments("std", x, axis, ddof, keepdims)


@primitive(node="LinalgVectorNormBackward0", batching="swap")
def _norm(x, ord=2, axis=None, keepdims=False):
    """The vector p-norm over `axis` (all elements when None), like `torch.linalg.vector_norm`.

    ord: any p > 0, inf or -inf. ord=2 over a matrix's two axes is the Frobenius norm. Matrix norms with
    other orders are not vector norms; `mapping` refuses them rather than answer wrongly.
    """
    if is_scalar(x):
        return builtins.abs(x) * 1.0
    xp = array_ns(x)
    a = builtins.abs(x)
    if ord == 2:
        return fn(xp, "sqrt")(fn(xp, "sum")(x * x, axis=axis, keepdims=keepdims))
    if ord == 1:
        return fn(xp, "sum")(a, axis=axis, keepdims=keepdims)
    if ord == math.inf:
        return fn(xp, "max")(a, axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return fn(xp, "min")(a, axis=axis, keepdims=keepdims)
    if not ord > 0:
        raise ValueError(f"norm: ord must be > 0, inf or -inf, got {ord!r}")
    return fn(xp, "sum")(a ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


def _logsumexp_impl(x: Any, axis: Any, keepdims: bool) -> Any:
    xp = array_ns(x)
    m = fn(xp, "max")(x, axis=axis, keepdims=True)
    m = xp.where(fn(xp, "isfinite")(m), m, xp.zeros_like(m))  # all -inf: log(0) + 0 = -inf
    out = fn(xp, "log")(fn(xp, "sum")(fn(xp, "exp")(x - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return out
    return fn(xp, "reshape")(out, tuple(n for i, n in enumerate(x.shape)
                                       if i not in normalize_axis(axis, len(x.shape))))


@primitive(node="LogsumexpBackward0", batching="swap")
def _logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) computed as max + log(sum(exp(x - max))): no overflow."""
    if is_scalar(x):
        return x
    return _logsumexp_impl(x, axis, keepdims)


@primitive(node="SoftmaxBackward0", batching="swap")
def _softmax(x, axis=-1):
    xp = array_ns(x)
    e = fn(xp, "exp")(x - fn(xp, "max")(x, axis=axis, keepdims=True))
    return e / fn(xp, "sum")(e, axis=axis, keepdims=True)


@primitive(node="LogSoftmaxBackward0", batching="swap")
def _log_softmax(x, axis=-1):
    return x - _logsumexp_impl(x, axis, True)


@primitive(linear=((0,),), node="CumsumBackward0", batching="swap")
def _cumsum(x, axis=0):
    """Running sum along one axis (the mapping flattens first where NumPy's axis=None asks for it)."""
    return fn(array_ns(x), "cumulative_sum", "cumsum")(x, axis=axis)


@primitive(node="CumprodBackward0", batching="loop")
def _cumprod(x, axis=0):
    return fn(array_ns(x), "cumulative_prod", "cumprod")(x, axis=axis)


# ================================================================================== linear algebra
@primitive(linear=((0,), (1,)), operator="MatMult", keeps_numpy=True, numpy="matmul", node="MmBackward0",
           batching="swap", fresh=True)
def _matmul(a, b):
    """NumPy's matmul: 1-d operands are vectors, leading (batch) axes broadcast."""
    return a @ b


@primitive(linear="each", node="EinsumBackward0", batching="loop")
def _einsum(*operands, subscripts=None):
    """einsum with explicit output (`'ij,jk->ik'`); the subscripts are static, the operands arrays."""
    xp = common_namespace(*operands)
    if xp is scalar_ns:
        xp = np
    return fn(xp, "einsum")(subscripts, *operands)


def _diag_last(x: Any, axis1: int, axis2: int) -> Any:
    """`x` with axis1 and axis2 moved to the end (in that order), the other axes kept in order."""
    n = len(x.shape)
    a1, a2 = axis1 % n, axis2 % n
    perm = tuple(i for i in range(n) if i not in (a1, a2)) + (a1, a2)
    return fn(array_ns(x), "permute_dims", "transpose")(x, perm)


@primitive(linear=((0,),), node="DiagonalBackward0", batching="swap")
def _diagonal(x, offset=0, axis1=0, axis2=1):
    """NumPy's diagonal: the diagonal becomes the last axis. On NumPy it is NumPy's (read-only) view, as
    the user's program has it: a later write into x changes it, and only a view lets the compiler's
    run-time alias check see that (a copy kept the old values, a silently different program)."""
    xp = array_ns(x)
    if _is_np_like(xp):
        return xp.diagonal(x, offset, axis1, axis2)
    return fn(xp, "linalg.diagonal")(_diag_last(x, axis1, axis2), offset=offset)


@primitive(linear=((0,),), node="TrilBackward0", batching="swap")
def _tril(x, k=0):
    return fn(array_ns(x), "tril")(x, k=k)


@primitive(linear=((0,),), node="TriuBackward0", batching="swap")
def _triu(x, k=0):
    return fn(array_ns(x), "triu")(x, k=k)


@primitive(node="LinalgInvExBackward0", batching="swap")
def _inv(a):
    return fn(array_ns(a), "linalg.inv")(a)


@primitive(linear=((1,),), node="LinalgSolveExBackward0", batching="swap")
def _solve(a, b):
    """Solve a @ x = b; b is a vector only when it is 1-d (NumPy 2 and array-API semantics).

    Batch dimensions are broadcast here, explicitly, because CuPy's solve does not broadcast them."""
    xp = common_namespace(a, b)
    solve = fn(xp, "linalg.solve")
    vector = len(b.shape) == 1
    if vector:
        b = fn(xp, "reshape")(b, (b.shape[0], 1))
    batch = np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    if tuple(a.shape[:-2]) != batch:
        a = xp.broadcast_to(a, batch + tuple(a.shape[-2:]))
    if tuple(b.shape[:-2]) != batch:
        b = xp.broadcast_to(b, batch + tuple(b.shape[-2:]))
    x = solve(a, b)
    return x[..., 0] if vector else x


@primitive(node="LinalgDetBackward0", batching="swap")
def _det(a):
    return fn(array_ns(a), "linalg.det")(a)


@primitive(node="LinalgSlogdetBackward0", batching="swap")
def _logabsdet(a):
    """log|det a|: slogdet's differentiable half (its sign is the non-differentiable `slogdet_sign`)."""
    return fn(array_ns(a), "linalg.slogdet")(a)[1]


@nondiff
def _slogdet_sign(a):
    return fn(array_ns(a), "linalg.slogdet")(a)[0]


@primitive(node="LinalgCholeskyExBackward0", batching="swap")
def _cholesky(a):
    """The lower Cholesky factor of a symmetric positive definite matrix (batched)."""
    return fn(array_ns(a), "linalg.cholesky")(a)


@primitive(batching="loop")
def _eigvalsh(a):
    """The eigenvalues of a symmetric matrix (batched), ascending: np.linalg.eigvalsh / eigh's first."""
    return fn(array_ns(a), "linalg.eigvalsh")(a)


@primitive(batching="loop")
def _eigvecsh(a):
    """The eigenvectors of a symmetric matrix (batched), as columns in eigvalsh's order: eigh's second.
    Each is defined up to its sign; the derivative is that of the vectors the solver returns."""
    return fn(array_ns(a), "linalg.eigh")(a)[1]



def _refuse_complex(name: str, a: Any) -> None:
    """svd and qr here: real matrices (their rules are for real input), not lazy Dask arrays (dask.array's
    decompositions take one 2-d tall-and-skinny array only)."""
    if "complex" in str(getattr(a, "dtype", "")):
        raise NotImplementedError(f"{name} of a complex matrix is not supported (its rules are for real "
                                  "input)")
    if hasattr(a, "rechunk"):
        raise NotImplementedError(f"{name} of a Dask array is not supported (dask.array's takes one 2-d "
                                  "tall-and-skinny array)")


def _svd(a: Any) -> Any:
    _refuse_complex("svd", a)
    return fn(array_ns(a), "linalg.svd")(a, full_matrices=False)


@primitive(batching="loop")
def _svd_u(a):
    """The left singular vectors of a (batched, (..., m, k), k = min(m, n)): np.linalg.svd(a,
    full_matrices=False)'s first. Each column is defined up to its sign (shared with Vh's row); the
    derivative is that of the vectors the solver returns, and needs distinct nonzero singular values."""
    return _svd(a)[0]


@primitive(batching="loop")
def _svd_s(a):
    """The singular values of a (batched, (..., k)), descending: np.linalg.svd's second, svdvals."""
    return _svd(a)[1]


@primitive(batching="loop")
def _svd_vh(a):
    """The right singular vectors of a as rows ((..., k, n)): np.linalg.svd(a, full_matrices=False)'s
    third."""
    return _svd(a)[2]


def _qr(a: Any) -> Any:
    _refuse_complex("qr", a)
    return fn(array_ns(a), "linalg.qr")(a)


@primitive(batching="loop")
def _qr_q(a):
    """Q of the reduced QR decomposition a = Q R (batched, (..., m, k), k = min(m, n))."""
    return _qr(a)[0]


@primitive(batching="loop")
def _qr_r(a):
    """R of the reduced QR decomposition (batched, (..., k, n), upper triangular)."""
    return _qr(a)[1]


# ================================================================================== complex values, FFT
def _holds_complex(x: Any) -> bool:
    if isinstance(x, complex):
        return True
    return "complex" in str(getattr(x, "dtype", ""))


@nondiff
def _is_complex(x):
    """True where x holds complex values (a Python complex, a complex array or Tensor)."""
    return _holds_complex(x)


@primitive(linear=((0,),), batching="loop")
def _real(x):
    """The real part (np.real); a real x is returned as it is."""
    if not _holds_complex(x):
        return x
    if isinstance(x, complex):  # a Python or NumPy complex number
        return x.real
    return fn(array_ns(x), "real")(x)


@primitive(linear=((0,),), batching="loop")
def _imag(x):
    """The imaginary part (np.imag); zeros for a real x."""
    if not _holds_complex(x):
        return 0.0 if is_scalar(x) else namespace(x).zeros_like(x)
    if isinstance(x, complex):  # a Python or NumPy complex number
        return x.imag
    return fn(array_ns(x), "imag")(x)


@primitive(linear=((0,),), batching="loop")
def _conj(x):
    """The complex conjugate (np.conj); a real x is returned as it is."""
    if not _holds_complex(x):
        return x
    if isinstance(x, complex):  # a Python or NumPy complex number
        return x.conjugate()
    return fn(array_ns(x), "conj")(x)


def _fft_call(name: str, x: Any, n: Any, axis: int, norm: Any) -> Any:
    xp = array_ns(x)
    if hasattr(x, "rechunk"):  # Dask transforms one chunk along the axis: rechunk it, lazily
        x = x.rechunk({axis % len(x.shape): -1})
    if name != "rfft" and not _is_np_like(xp) and not _holds_complex(x):  # the standard takes complex
        x = fn(xp, "astype")(x, getattr(xp, "complex64" if "32" in str(x.dtype) else "complex128"))
    return fn(xp, "fft." + name)(x, n=n, axis=axis, norm="backward" if norm is None else norm)


@primitive(linear=((0,),), batching="loop")
def _fft(x, n=None, axis=-1, norm=None):
    """np.fft.fft along one axis (n: crop or zero-pad to n first; norm None/'backward', 'ortho',
    'forward'): complex values."""
    return _fft_call("fft", x, n, axis, norm)


@primitive(linear=((0,),), batching="loop")
def _ifft(x, n=None, axis=-1, norm=None):
    """np.fft.ifft along one axis."""
    return _fft_call("ifft", x, n, axis, norm)


@primitive(linear=((0,),), batching="loop")
def _rfft(x, n=None, axis=-1, norm=None):
    """np.fft.rfft of real values along one axis: the n // 2 + 1 non-negative frequencies."""
    if _holds_complex(x):
        raise TypeError("rfft takes real values (np.fft.fft transforms complex ones)")
    return _fft_call("rfft", x, n, axis, norm)


@primitive(linear=((0,),), batching="loop")
def _irfft(x, n=None, axis=-1, norm=None):
    """np.fft.irfft: the real signal of length n (2 (m - 1) by default) whose rfft is x; the imaginary
    parts of x's zero (and, n even, n / 2) frequency are ignored, as NumPy does."""
    return _fft_call("irfft", x, n, axis, norm)

# ================================================================================== shape, more
def _seq_ns(arrays: Any) -> Any:
    xp = common_namespace(*arrays)
    return np if xp is scalar_ns else xp


@primitive(linear="all", node="CatBackward0", batching="swap")
def _concatenate(*arrays, axis=0):
    return fn(_seq_ns(arrays), "concat", "concatenate")(list(arrays), axis=axis)


@primitive(linear="all", node="StackBackward0", batching="swap")
def _stack(*arrays, axis=0):
    xp = _seq_ns(arrays)
    if xp is not np:
        arrays = [xp.asarray(a) if is_scalar(a) else a for a in arrays]
    return fn(xp, "stack")(list(arrays), axis=axis)


@primitive(batching="loop")
def _sort(x, axis=-1):
    return fn(array_ns(x), "sort")(x, axis=axis)


@primitive(linear=((0,),), node="FlipBackward0", batching="swap")
def _flip(x, axis=None):
    if is_scalar(x):
        return x
    return fn(array_ns(x), "flip")(x, axis=axis)


@primitive(linear=((0,),), node="RollBackward0", batching="loop")
def _roll(x, shift=0, axis=None):
    return fn(array_ns(x), "roll")(x, shift, axis=axis)


@primitive(linear=((0,),), node="RepeatBackward0", batching="loop")
def _tile(x, reps=()):
    """NumPy's tile (PyTorch's `Tensor.repeat`): the whole array repeated `reps[i]` times along axis i."""
    xp = array_ns(x)
    if is_scalar(x):
        x = xp.asarray(x)
    return fn(xp, "tile")(x, tuple(reps))


@primitive(linear=((0,),), node="RepeatInterleaveBackward0", batching="loop")
def _repeat(x, repeats=1, axis=None):
    """NumPy's repeat (PyTorch's `repeat_interleave`): each element `repeats` times; axis=None flattens.

    `repeats` is one int: the vjp then folds the repeats with a reshape and a sum."""
    xp = array_ns(x)
    if is_scalar(x):
        x = xp.asarray(x)
    if not _is_np_like(xp) and axis is None:
        x, axis = fn(xp, "reshape")(x, (-1,)), 0
    return fn(xp, "repeat")(x, repeats, axis=axis)


def pad_pairs(pad_width: Any, ndim: int) -> tuple:
    """NumPy's pad_width spellings (n, (n,), (a, b), ((a0, b0), ...)) -> one (before, after) per axis."""
    if isinstance(pad_width, int):
        return ((pad_width, pad_width),) * ndim
    pw = tuple(pad_width)
    if pw and isinstance(pw[0], int):
        pair = (pw[0], pw[0]) if len(pw) == 1 else (pw[0], pw[1])
        return (pair,) * ndim
    if len(pw) == 1:
        return (tuple(pw[0]),) * ndim
    return tuple((int(a), int(b)) for a, b in pw)


@primitive(node="ConstantPadNdBackward0", batching="swap")
def _pad(x, pad_width=0, value=0.0):
    """Constant padding: `pad_width` as NumPy spells it, `value` the fill (static, not differentiated)."""
    xp = array_ns(x)
    pairs = pad_pairs(pad_width, len(x.shape))
    if _is_np_like(xp):
        return xp.pad(x, pairs, mode="constant", constant_values=value)
    shape = tuple(a + n + b for (a, b), n in zip(pairs, x.shape, strict=False))
    out = xp.full(shape, value, dtype=x.dtype, device=_device(x))
    out[tuple(slice(a, a + n) for (a, _), n in zip(pairs, x.shape, strict=False))] = x
    return out


# ================================================================================ non-differentiable, more
@nondiff
def _any(x, axis=None, keepdims=False):
    if is_scalar(x):
        return bool(x)
    return fn(array_ns(x), "any")(x, axis=axis, keepdims=keepdims)


@nondiff
def _all(x, axis=None, keepdims=False):
    if is_scalar(x):
        return bool(x)
    return fn(array_ns(x), "all")(x, axis=axis, keepdims=keepdims)


@nondiff(shape_only=(0,))
def _eye_like(x, n=None, m=None, k=0):
    """An (n, m) identity (ones on diagonal k) with x's namespace, float dtype and device: a constant."""
    xp = array_ns(x)
    dtype = x.dtype if hasattr(x, "dtype") and getattr(x.dtype, "kind", "f") == "f" else None
    if xp is np:
        return np.eye(n, m, k, dtype=dtype or np.float64)
    if _is_np_like(xp):
        return xp.eye(n, m, k, dtype=dtype)
    if dtype is None or not str(dtype).startswith("float"):
        dtype = xp.float64
    return xp.eye(n, m, k=k, dtype=dtype, device=_device(x))


# ============================================================================ special functions, search
@nondiff
def _searchsorted(a, v, side="left"):
    """Where v's values would go in the sorted 1-d a (np.searchsorted): integer positions."""
    xp = array_ns(a)
    if is_scalar(v):
        v = xp.asarray(v)
    return fn(xp, "searchsorted")(a, v, side=side)


_SHIFT = 10  # special functions: the recurrence lifts the argument by this much before the series
# Stirling's series for lgamma and the asymptotic series of the polygamma functions, from the Bernoulli
# numbers B2k (k = 1..6): at arguments >= 10 the first terms left out are below 1e-13.
_BERNOULLI = (1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66, -691.0 / 2730)


def _ops(x: Any) -> tuple[Any, Any, Any, Any]:
    """(namespace, log, tan, where) for x: Python's math for numbers, x's namespace for arrays."""
    if is_scalar(x):
        return None, math.log, math.tan, lambda c, a, b: a if c else b
    xp = array_ns(x)
    return xp, fn(xp, "log"), fn(xp, "tan"), fn(xp, "where")


def _lgamma_series(x: Any) -> Any:
    """log|Gamma(x)| for x > 0 by the recurrence and Stirling's series; any namespace."""
    _, log, _, _ = _ops(x)
    y = x + _SHIFT
    out = (y - 0.5) * log(y) - y + 0.5 * math.log(2 * math.pi)
    for k, b in enumerate(_BERNOULLI, start=1):
        out = out + b / (2 * k * (2 * k - 1)) * y ** (1 - 2 * k)
    for k in range(_SHIFT):
        out = out - log(x + k)
    return out


@primitive(batching="loop")
def _lgamma(x):
    """log|Gamma(x)| (math.lgamma, scipy.special.gammaln). Python numbers and NumPy use math.lgamma;
    other namespaces the recurrence, Stirling's series and the reflection formula for x < 0."""
    if is_scalar(x):
        return math.lgamma(x)
    xp = array_ns(x)
    if xp is np:
        out = np.frompyfunc(math.lgamma, 1, 1)(x)
        return np.asarray(out, dtype=np.result_type(x, np.float64))[()]
    _, log, _, where = _ops(x)
    pos = x > 0
    z = where(pos, x, 1.0 - x)
    core = _lgamma_series(z)
    sin = fn(xp, "sin")
    refl = math.log(math.pi) - log(fn(xp, "abs")(sin(math.pi * x))) - core
    return where(pos, core, refl)


def _polygamma_pos(x: Any, n: int) -> Any:
    """psi^(n)(x) for x > 0: the recurrence psi^(n)(x) = psi^(n)(x + N) - (-1)^n n! sum (x + k)^-(n+1),
    then the asymptotic series at x + N."""
    _, log, _, _ = _ops(x)
    y = x + _SHIFT
    if n == 0:
        out = log(y) - 0.5 / y
        for k, b in enumerate(_BERNOULLI, start=1):
            out = out - b / (2 * k) * y ** (-2 * k)
    else:
        sign = -1.0 if n % 2 == 0 else 1.0  # (-1)^(n+1)
        s = math.factorial(n - 1) * y ** (-n) + math.factorial(n) / 2 * y ** (-n - 1)
        for k, b in enumerate(_BERNOULLI, start=1):
            s = s + b * math.factorial(2 * k + n - 1) / math.factorial(2 * k) * y ** (-2 * k - n)
        out = sign * s
    c = (-1.0) ** n * math.factorial(n)
    for k in range(_SHIFT):
        out = out - c * (x + k) ** (-n - 1)
    return out


@primitive(batching="loop")
def _polygamma(x, n=0):
    """The polygamma function psi^(n)(x): digamma (n = 0, the derivative of lgamma) and its
    derivatives, each the derivative of the one before. n = 0 and 1 take x < 0 by the reflection
    formula; n >= 2 is nan at x <= 0 (not answered from a wrong branch)."""
    xp, _, tan, where = _ops(x)
    if xp is None:
        if x > 0:
            return _polygamma_pos(x, n)
        if n == 0 and x != math.floor(x):
            return _polygamma_pos(1.0 - x, 0) - math.pi / tan(math.pi * x)
        if n == 1 and x != math.floor(x):
            return (math.pi / math.sin(math.pi * x)) ** 2 - _polygamma_pos(1.0 - x, 1)
        return math.nan
    pos = x > 0
    z = where(pos, x, 1.0 - x)
    core = _polygamma_pos(z, n)
    if n == 0:
        return where(pos, core, core - math.pi / tan(math.pi * x))
    if n == 1:
        return where(pos, core, (math.pi / fn(xp, "sin")(math.pi * x)) ** 2 - core)
    return where(pos, core, math.nan * z)


# ====================================================================== views derived from the records
# The tables the stages read, computed from the records above (never written by hand): adding a
# primitive with its facts updates every one of them. Each keeps the name, type and contents of the hand
# kept table it replaces; tests/runtime/test_records.py holds them to that.
def _positional(p: Primitive) -> int:
    """How many positional (differentiable) parameters the implementation takes."""
    code = p.impl.__code__
    return code.co_argcount - len(p.impl.__defaults__ or ())


# Elementwise primitives whose every parameter is an operand (no static keyword: astype and clip have
# some): what the shape, ndim and Python-float analyses broadcast.
ELEMENTWISE = frozenset(p.name for p in PRIMITIVES.values()
                        if p.elementwise and p.differentiable and not p.static_params)
# The unary ones among them that NumPy has a function for (np.negative for neg).
UNARY_MATH = frozenset(n for n in ELEMENTWISE if PRIMITIVES[n].numpy and _positional(PRIMITIVES[n]) == 1)
# primitives with a Python-scalar variant: on Python numbers they return Python numbers
SCALAR_PRIMS = ELEMENTWISE | {p.name for p in PRIMITIVES.values() if p.scalar}
# primitives whose result on NumPy values (or Python numbers) is a NumPy value (or a Python number)
NUMPY_PRIMS = SCALAR_PRIMS | {p.name for p in PRIMITIVES.values() if p.keeps_numpy}
# primitive -> the `math` function (or builtin) of its Python-float lowering
MATH_FAST = {p.name: p.math_function for p in PRIMITIVES.values() if p.math}
# primitive -> the NumPy function name of the same calling convention
NUMPY_FAST = {p.name: p.numpy for p in PRIMITIVES.values() if p.numpy}
# primitive -> the eager node's class name, where it is not `CamelCaseBackward0`
NODE_NAMES = {p.name: p.node for p in PRIMITIVES.values() if p.node}
# binary operator (the `ast` class name: "Add") -> primitive
BINARY_OPERATORS = {p.operator: p.name for p in PRIMITIVES.values()
                    if p.operator and issubclass(getattr(ast, p.operator), ast.operator)}


def shape_only_calls() -> dict[str, tuple[int, ...] | None]:
    """Callee name -> the positional arguments it reads only for their shape/dtype (None: all), over the
    primitives and the helpers (autograd's `_SHAPE_ONLY_CALLS`: a rule that passes a saved input only to
    these does not need its values). `rules` declares the helpers' records, so it is imported here."""
    from . import rules  # noqa: F401, PLC0415 -- declares the helpers' records

    out: dict[str, tuple[int, ...] | None] = {}
    for name, rec in [(p.name, p) for p in PRIMITIVES.values()] + \
            [(getattr(h.fn, "__name__", ""), h) for h in HELPERS.values()]:
        if rec.shape_only is True:
            out[name] = None
        elif rec.shape_only:
            out[name] = tuple(rec.shape_only)
    return out


def runtime_nondiff() -> set:
    """The runtime helpers the compiler treats as non-differentiable operations when it transforms
    generated code (normalize's `_runtime_nondiff`, less normalize's own three helpers).

    `stack.cotangent_part` is added by hand: its record says it is linear in its cotangent (forward
    mode's tangent of it), but normalize has always treated it as non-differentiable, which forward mode
    then never reaches; kept so that behaviour does not change. Drop it once normalize reads the record
    (forward-over-vjp would then carry the cotangent's tangent)."""
    from . import rules, stack  # noqa: F401, PLC0415 -- rules declares the helpers' records

    return {h.fn for h in HELPERS.values() if h.nondiff} | {stack.cotangent_part}


# Export every primitive under its own name (`sin`, `sum`, `max`, ...) for the rule table and the
# compiler. Done last, so the implementations above keep seeing Python's builtins.
globals().update(PRIMITIVES)
__all__ = sorted(PRIMITIVES) + ["Primitive", "PRIMITIVES", "normalize_axis", "fn"]
