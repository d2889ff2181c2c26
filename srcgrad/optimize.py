"""Stage 5: make generated code lean and readable without changing what it computes.

- `fold`: constant folding and algebraic identities that rule templates leave behind when an operand is a
  constant (`g * 1.0`, `x ** (2 - 1.0)`, `e + 0.0`, `-(-e)`).
- `specialize`: where analysis proved operands are Python numbers, call `math.sin` instead of the generic
  primitive and drop `unbroadcast`/`sum_to`/`widen` (nothing to broadcast on a scalar).
- `dead_code`: remove pure assignments whose value nobody reads (forward or adjoint), repeatedly.
"""

from __future__ import annotations

import builtins
import copy
import math
import operator
import types
from typing import Any

import gast
import numpy as np

from srcgrad.facts import COMPARISONS, hashable
from srcgrad.inline import PartialEvaluator
from srcgrad.names import Namer
from srcgrad.runtime import mapping
from srcgrad.runtime import primitives as P
from srcgrad.runtime import rules as R
from srcgrad.runtime.primitives import MATH_FAST, NUMPY_FAST, SCALAR_PRIMS, Primitive
from srcgrad.runtime.stack import sum_like, zeros_as

_ARITH = {
    gast.Add: operator.add,
    gast.Sub: operator.sub,
    gast.Mult: operator.mul,
    gast.Div: operator.truediv,
    gast.Pow: operator.pow,
}



def shaped_like(obj: Any) -> bool:
    """`obj` is a helper whose value is its first argument brought to its second's shape (its record's
    `shaped_like` fact: unbroadcast, sum_like, widen): the first argument where the shapes agree."""
    record = P.HELPERS.get(obj) if hashable(obj) else None
    return record is not None and record.shaped_like
# the `math` functions that differentiable primitives lower to: each returns a Python float
_FLOAT_MATH = {p.math for p in P.PRIMITIVES.values() if p.math and p.differentiable and p.math != "abs"}



def _num(e: Any) -> Any:
    if isinstance(e, gast.Constant) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool):
        return e.value
    if isinstance(e, gast.UnaryOp) and isinstance(e.op, gast.USub):
        v = _num(e.operand)
        return None if v is None else -v
    return None


def _const(v: Any) -> gast.expr:
    if isinstance(v, (int, float)) and v < 0:
        return gast.UnaryOp(op=gast.USub(), operand=gast.Constant(value=-v, kind=None))
    return gast.Constant(value=v, kind=None)


class Fold(gast.NodeTransformer):
    def visit_BinOp(self, node: gast.BinOp) -> gast.expr:
        self.generic_visit(node)
        a, b = _num(node.left), _num(node.right)
        op = type(node.op)
        if a is not None and b is not None and op in _ARITH:
            try:
                v = _ARITH[op](a, b)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    return _const(v)
            except (ArithmeticError, ValueError):
                pass
        if op is gast.Mult and b is not None:
            # (-e) * c -> e * -c ;  (e * c1) * c2 -> e * (c1 * c2): one pass over an array, not two
            left = node.left
            if isinstance(left, gast.UnaryOp) and isinstance(left.op, gast.USub) and _num(left) is None:
                return self.visit_BinOp(gast.BinOp(left=left.operand, op=gast.Mult(), right=_const(-b)))
            if (
                isinstance(left, gast.BinOp)
                and isinstance(left.op, gast.Mult)
                and _num(left.right) is not None
            ):
                return self.visit_BinOp(
                    gast.BinOp(left=left.left, op=gast.Mult(), right=_const(_num(left.right) * b))
                )
        if op is gast.Mult:
            if b == 1:
                return node.left
            if a == 1:
                return node.right
            if b == -1:
                return gast.UnaryOp(op=gast.USub(), operand=node.left)
            if a == -1:
                return gast.UnaryOp(op=gast.USub(), operand=node.right)
        if op is gast.Div and b == 1:
            return node.left
        if op is gast.Add:
            if b == 0 and isinstance(b, float):
                return node.left
            if a == 0 and isinstance(a, float):
                return node.right
        if op is gast.Sub and b == 0 and isinstance(b, float):
            return node.left
        if op is gast.Pow and b == 1:
            return node.left
        return node

    def visit_Compare(self, node: gast.Compare) -> gast.expr:
        self.generic_visit(node)
        if len(node.ops) == 1 and type(node.ops[0]) in COMPARISONS:
            a, b = _num(node.left), _num(node.comparators[0])
            if a is not None and b is not None:
                return gast.Constant(value=COMPARISONS[type(node.ops[0])](a, b), kind=None)
        return node

    def visit_IfExp(self, node: gast.IfExp) -> gast.expr:
        self.generic_visit(node)
        if isinstance(node.test, gast.Constant) and isinstance(node.test.value, bool):
            return node.body if node.test.value else node.orelse  # `0.0 if 2.0 == 0 else 2.0`: 2.0
        return node

    def visit_UnaryOp(self, node: gast.UnaryOp) -> gast.expr:
        self.generic_visit(node)
        if (
            isinstance(node.op, gast.USub)
            and isinstance(node.operand, gast.UnaryOp)
            and isinstance(node.operand.op, gast.USub)
        ):
            return node.operand.operand
        if isinstance(node.op, gast.USub) and isinstance(node.operand, gast.BinOp) \
                and isinstance(node.operand.op, gast.Mult):
            # -(c * e) -> -c * e: the sign rides on the number, not on a second pass over an array
            left, right = node.operand.left, node.operand.right
            if _num(left) is not None:
                return gast.BinOp(left=_const(-_num(left)), op=gast.Mult(), right=right)
            if _num(right) is not None:
                return gast.BinOp(left=left, op=gast.Mult(), right=_const(-_num(right)))
        return node


def fold(e: Any, fresh: bool = False) -> Any:
    """Fold `e`. With `fresh` (a forward statement's value: the user's program gets a new array there),
    an identity that would leave a bare name or view (`data * 1.0` -> `data`) is not folded: a later
    in-place write into the result must not reach the operand's memory."""
    if not fresh or is_alias(e):
        return Fold().visit(e)
    before = copy.deepcopy(e)
    after = Fold().visit(e)
    return before if is_alias(after) else after


def is_alias(e: Any) -> bool:
    """A name, or a subscript/attribute of one: an expression that may be the memory of another name."""
    while isinstance(e, (gast.Subscript, gast.Attribute)):
        e = e.value
    return isinstance(e, gast.Name)


class Specialize(gast.NodeTransformer):
    """Scalar fast paths where operands are known Python numbers (shape ())."""

    def __init__(
        self,
        namer: Namer,
        scalar_names: set[str],
        numpy_names: set[str] = frozenset(),
        ndims: dict[str, int] | None = None,
        shapes: dict[str, tuple] | None = None,
        floats: set[str] = frozenset(),
        float64: set[str] = frozenset(),
        python_floats: set[str] = frozenset(),
        constants: dict[str, int] | None = None,
    ):
        self.namer = namer
        # the forward's values are the user's: `np.sqrt` of a NumPy scalar stays a NumPy scalar
        self.keep_numpy_types = False
        self.constants = constants or {}  # parameters whose int value the variant is keyed on (axis=0)
        self.python_floats = python_floats  # names that always hold a Python float (not an int)
        self.float64 = float64  # names of float64 arrays (exactly that dtype)
        self.floats = floats  # names the facts say hold floating-point values (numbers, float arrays)
        self.scalars = scalar_names
        self.numpy = numpy_names
        self.ndims = ndims or {}
        self.shapes = shapes or {}  # exact shapes, in a variant keyed on its arrays' shapes

    def as_subscript(self, ix: Any) -> Any:
        """An index value as subscript syntax: `slice(1, -1)` is written `1:-1`."""
        if isinstance(ix, gast.Tuple):
            return gast.Tuple(elts=[self.as_subscript(x) for x in ix.elts], ctx=gast.Load())
        if isinstance(ix, gast.Call) and isinstance(ix.func, gast.Name) \
                and self.is_builtin_slice(ix.func.id) and not ix.keywords and 1 <= len(ix.args) <= 3:
            none = gast.Constant(value=None, kind=None)
            parts = list(ix.args) if len(ix.args) > 1 else [none, ix.args[0]]
            parts += [None] * (3 - len(parts))
            lower, upper, step = [None if isinstance(p, gast.Constant) and p.value is None else p
                                  for p in parts]
            return gast.Slice(lower=lower, upper=upper, step=step)
        return ix

    def is_getitem(self, ident: str) -> bool:
        return self.namer.globals.get(ident) is P.getitem

    def is_builtin_slice(self, ident: str) -> bool:
        return self.namer.globals.get(ident, getattr(builtins, ident, None)) is slice

    def ndim_of(self, e: Any) -> int | None:
        if isinstance(e, gast.Constant):
            return 0 if isinstance(e.value, (int, float)) else None
        if isinstance(e, gast.Name):
            return 0 if e.id in self.scalars else self.ndims.get(e.id)
        if isinstance(e, gast.IfExp):
            a, b = self.ndim_of(e.body), self.ndim_of(e.orelse)
            return a if a == b else None
        if isinstance(e, gast.Compare):
            sides = [self.ndim_of(x) for x in [e.left, *e.comparators]]
            return None if None in sides else max(sides)
        if isinstance(e, gast.BinOp) and not isinstance(e.op, gast.MatMult):
            a, b = self.ndim_of(e.left), self.ndim_of(e.right)
            return None if a is None or b is None else max(a, b)
        if isinstance(e, gast.UnaryOp):
            return self.ndim_of(e.operand)
        if isinstance(e, gast.Subscript) and isinstance(e.slice, gast.Name) and e.slice.id in self.scalars:
            n = self.ndim_of(e.value)
            return None if not n else n - 1  # x[i], i a number
        if isinstance(e, gast.Subscript) and isinstance(e.slice, gast.Tuple):
            n = self.ndim_of(e.value)
            if n is None:
                return None
            for q in e.slice.elts:
                if isinstance(q, gast.Name) and q.id in self.scalars:
                    n -= 1
                    continue
                if isinstance(q, gast.Constant) and q.value is None:
                    n += 1
                elif (
                    isinstance(q, gast.Constant)
                    and isinstance(q.value, int)
                    and not isinstance(q.value, bool)
                ):
                    n -= 1
                elif not (
                    isinstance(q, gast.Slice) or (isinstance(q, gast.Constant) and q.value is Ellipsis)
                ):
                    return None
            return n
        if isinstance(e, gast.Call):
            f = e.func
            fobj = self.namer.globals.get(f.id) if isinstance(f, gast.Name) else None
            if shaped_like(fobj) and len(e.args) == 2:
                return self.ndim_of(e.args[1])
            if isinstance(f, gast.Attribute) and f.attr == "matmul" and len(e.args) == 2:
                a, b = self.ndim_of(e.args[0]), self.ndim_of(e.args[1])
                if a is None or b is None:
                    return None
                if a == 1 and b == 1:
                    return 0
                return max(a, b) - 1 if (a == 1 or b == 1) else max(a, b)
        return None

    def scatter_as_reshape(self, node: gast.Call) -> gast.expr | None:
        """`index_add(np.zeros(S), v, index=(slice(None), None))`, the adjoint of reading `x[:, None]`:
        an index of only full slices, None and Ellipsis selects every element in order, so the scatter
        into zeros is `np.reshape(v, S)` where v has exactly the indexed shape (the facts say so), with no
        zeros made and no scatter (nbody's `x[:, None, :]`, a log-sum-exp's `alpha[:, None]`)."""
        if len(node.args) != 2 or len(node.keywords) != 1 or node.keywords[0].arg != "index":
            return None
        base, v = node.args
        f = base.func if isinstance(base, gast.Call) else None
        if not (isinstance(f, gast.Attribute) and f.attr == "zeros" and isinstance(f.value, gast.Name)
                and self.namer.globals.get(f.value.id) is np and len(base.args) == 1 and not base.keywords):
            return None
        try:
            shape = tuple(gast.literal_eval(base.args[0]))
            index = _literal_index(node.keywords[0].value)
        except Exception:
            return None
        parts = index if isinstance(index, tuple) else (index,)
        if not all(p is None or p is Ellipsis or p == slice(None) for p in parts) or \
                sum(p is Ellipsis for p in parts) > 1:
            return None
        f = v.func if isinstance(v, gast.Call) else None
        if isinstance(f, gast.Name) and shaped_like(self.namer.globals.get(f.id)) and len(v.args) == 2:
            v_shape = _shape_of(v.args[1], self.shapes, self.is_getitem)
        else:
            v_shape = _shape_of(v, self.shapes, self.is_getitem)
        try:
            if v_shape is None or tuple(v_shape) != np.empty(shape)[index].shape:
                return None
        except Exception:
            return None
        numpy = gast.Name(id=self.namer.ref(np, "np"), ctx=gast.Load(), annotation=None, type_comment=None)
        return gast.Call(func=gast.Attribute(value=numpy, attr="reshape", ctx=gast.Load()),
                         args=[v, _literal_node(shape)], keywords=[])

    def is_numpy(self, e: Any) -> bool:
        """A NumPy array or scalar, or a Python number (NumPy functions accept all three)."""
        if self.is_scalar(e):
            return True
        if isinstance(e, gast.Name):
            return e.id in self.numpy
        if isinstance(e, gast.IfExp):
            return self.is_numpy(e.body) and self.is_numpy(e.orelse)
        if isinstance(e, gast.BinOp):
            return self.is_numpy(e.left) and self.is_numpy(e.right)
        if isinstance(e, gast.UnaryOp):
            return self.is_numpy(e.operand)
        if isinstance(e, gast.Call):
            f = e.func
            if (
                isinstance(f, gast.Attribute)
                and isinstance(f.value, gast.Name)
                and self.namer.globals.get(f.value.id) is np
                and f.attr in NUMPY_FAST.values()
            ):
                return all(self.is_numpy(a) for a in e.args)
            if isinstance(f, gast.Name) and shaped_like(self.namer.globals.get(f.id)):
                return self.is_numpy(e.args[0]) and self.is_numpy(e.args[1])
            if isinstance(f, gast.Name) and getattr(self.namer.globals.get(f.id), "__module__", "").endswith(
                "runtime.rules"
            ):
                # rule helpers return values of their operands' namespace
                return all(
                    self.is_numpy(a) or (isinstance(a, gast.Constant) and a.value in (None, True, False))
                    for a in e.args
                )
        if isinstance(e, gast.Subscript):
            return self.is_numpy(e.value)
        return False

    def is_float64_number(self, e: Any) -> bool:
        """A float64 value of shape () (`x[i]` of a float64 array): `math` computes on it what NumPy
        does, in the same precision (a math error, where NumPy would give nan or inf, makes the call
        run again by the generic variant: api's `_with_numpy_floats`)."""
        return isinstance(e, gast.Name) and e.id in self.float64 and self.ndims.get(e.id) == 0

    def is_one_number(self, e: Any) -> bool:
        """A Python number, or a NumPy value of shape () (an element read from an array)."""
        return self.is_scalar(e) or bool(self.ndims) and self.ndim_of(e) == 0

    def is_python_float(self, e: Any) -> bool:
        """Whether `e` always gives a Python float (not an int, not a NumPy scalar): a name the facts say
        holds one, a float constant, arithmetic with one float operand and one Python number, a `math`
        function (they return floats)."""
        if isinstance(e, gast.Constant):
            return type(e.value) is float
        if isinstance(e, gast.Name):
            return e.id in self.python_floats
        if isinstance(e, gast.BinOp) and not isinstance(e.op, gast.MatMult):
            sides = (e.left, e.right)
            return all(self.is_scalar(x) for x in sides) and any(self.is_python_float(x) for x in sides) \
                or isinstance(e.op, gast.Div) and all(self.is_scalar(x) for x in sides)
        if isinstance(e, gast.UnaryOp) and isinstance(e.op, (gast.USub, gast.UAdd)):
            return self.is_python_float(e.operand)
        if isinstance(e, gast.Call) and isinstance(e.func, gast.Attribute) \
                and isinstance(e.func.value, gast.Name) and self.namer.globals.get(e.func.value.id) is math:
            return e.func.attr in _FLOAT_MATH
        return False

    def is_scalar(self, e: Any) -> bool:
        if isinstance(e, gast.Constant):
            return (
                isinstance(e.value, (int, float))
                and not isinstance(e.value, bool)
                or isinstance(e.value, bool)
            )
        if isinstance(e, gast.Name):
            return e.id in self.scalars
        if isinstance(e, gast.IfExp):
            return self.is_scalar(e.body) and self.is_scalar(e.orelse)
        if isinstance(e, gast.BinOp):
            return not isinstance(e.op, gast.MatMult) and self.is_scalar(e.left) and self.is_scalar(e.right)
        if isinstance(e, gast.UnaryOp):
            return self.is_scalar(e.operand)
        if isinstance(e, gast.Compare):
            return self.is_scalar(e.left) and all(self.is_scalar(c) for c in e.comparators)
        if isinstance(e, gast.Call):
            f = e.func
            if (
                isinstance(f, gast.Attribute)
                and isinstance(f.value, gast.Name)
                and self.namer.globals.get(f.value.id) is math
            ):
                return all(self.is_scalar(a) for a in e.args)
            if isinstance(f, gast.Name):
                obj = self.namer.globals.get(f.id)
                if isinstance(obj, Primitive) and obj.name in SCALAR_PRIMS | {
                    "sign",
                    "ones_like",
                    "zeros_like",
                }:
                    return all(self.is_scalar(a) for a in e.args)
                if obj in (R.balance, R.inside):
                    return self.is_scalar(e.args[0])
                if obj is abs:
                    return all(self.is_scalar(a) for a in e.args)
        return False

    def _scalar_shape(self, e: Any) -> bool:
        """`()` or `shape(v)` of a Python number."""
        if isinstance(e, gast.Tuple) and not e.elts:
            return True
        if isinstance(e, gast.Call) and isinstance(e.func, gast.Name) and len(e.args) == 1:
            return self.namer.globals.get(e.func.id) is P.shape and self.is_scalar(e.args[0])
        return False

    def visit_Name(self, node: gast.Name) -> gast.expr:
        if isinstance(node.ctx, gast.Load) and node.id in self.constants:
            return gast.Constant(value=self.constants[node.id], kind=None)
        return node

    def visit_Compare(self, node: gast.Compare) -> gast.expr:
        self.generic_visit(node)
        if len(node.ops) == 1 and isinstance(node.ops[0], (gast.Is, gast.IsNot)) \
                and isinstance(node.left, gast.Constant) and isinstance(node.comparators[0], gast.Constant):
            same = node.left.value is node.comparators[0].value  # `axis is None` with axis=0 known: False
            return gast.Constant(value=same if isinstance(node.ops[0], gast.Is) else not same, kind=None)
        return node

    def visit_BinOp(self, node: gast.BinOp) -> gast.expr:
        left = node.left
        if isinstance(node.op, gast.Add) and isinstance(left, gast.Call) \
                and isinstance(left.func, gast.Name) \
                and self.namer.globals.get(left.func.id) in (P.zeros_like, zeros_as) and len(left.args) == 1 \
                and self.is_one_number(left.args[0]) and self.is_one_number(node.right):
            return self.visit(node.right)  # zeros of one number's shape plus a number: the number
        self.generic_visit(node)
        if self.ndims and not isinstance(node.op, gast.MatMult):
            # a number reshaped to (1, ..., 1) against an operand of at least that rank: the number
            # (broadcasting adds the same axes), so `keep(g)` of a full reduction costs nothing
            for side, other in (("left", node.right), ("right", node.left)):
                inner = self.number_given_shape(getattr(node, side), P.reshape)
                if inner is not None and inner[1] and set(inner[1]) == {1} \
                        and (self.ndim_of(other) or 0) >= len(inner[1]):
                    setattr(node, side, inner[0])
                spread = self.number_given_shape(getattr(node, side), P.broadcast_to)
                if spread is not None and _shape_of(other, self.shapes, self.is_getitem) == spread[1]:
                    setattr(node, side, spread[0])  # the other operand broadcasts the number itself
        return node

    def number_given_shape(self, e: Any, prim: Primitive) -> tuple[Any, tuple] | None:
        """(a, shape) for `prim(a, shape=S)`, or the NumPy function it lowers to (`np.reshape`,
        `np.broadcast_to`), of one number a to a literal shape S."""
        if not (isinstance(e, gast.Call) and len(e.args) == 1 and len(e.keywords) == 1
                and e.keywords[0].arg == "shape" and self.ndim_of(e.args[0]) == 0):
            return None
        f = e.func
        if not (isinstance(f, gast.Attribute) and f.attr == prim.numpy and isinstance(f.value, gast.Name)
                and self.namer.globals.get(f.value.id) is np
                or isinstance(f, gast.Name) and self.namer.globals.get(f.id) is prim):
            return None
        try:
            shape = gast.literal_eval(e.keywords[0].value)
        except ValueError:
            return None
        return (e.args[0], tuple(shape)) if isinstance(shape, tuple) else None

    def floating(self, e: Any) -> bool:
        """Every name `e` reads holds floating-point values (reordering a product is then exact up to
        rounding: no integer overflow or truncation moves)."""
        return all(n.id in self.floats for n in gast.walk(e) if isinstance(n, gast.Name)
                   and isinstance(n.ctx, gast.Load) and n.id not in self.namer.globals)

    def scalar_factors(self, e: Any) -> tuple[Any, int] | None:
        """A product/quotient of arrays and numbers, its numbers gathered: (build, n) where n is how many
        operations on the array the numbers cost as written, and build(reduce) writes
        `reduce(arrays) * (numbers)`, `reduce` a reduction to apply to the array part first (np.sum: its
        numbers then multiply one number instead of every element), None for none. None where `e`
        has no array factor, or reads a value not known to be floating-point."""
        arrays: list = []
        num: list = []
        den: list = []
        sign = [False]

        def walk(x: Any) -> None:
            if isinstance(x, gast.BinOp) and isinstance(x.op, gast.Mult):
                walk(x.left)
                walk(x.right)
            elif isinstance(x, gast.BinOp) and isinstance(x.op, gast.Div) and self.is_one_number(x.right):
                walk(x.left)
                den.append(x.right)
            elif isinstance(x, gast.UnaryOp) and isinstance(x.op, gast.USub):
                sign[0] = not sign[0]
                walk(x.operand)
            elif self.is_one_number(x):
                num.append(x)
            else:
                arrays.append(x)

        walk(e)
        if not arrays or not self.floating(e):
            return None
        cost = len(num) + len(den) + (1 if sign[0] else 0)

        def product(parts: list, op: Any = gast.Mult) -> Any:
            out = parts[0]
            for p in parts[1:]:
                out = gast.BinOp(left=out, op=op(), right=p)
            return out

        def build(reduce: Any) -> Any:
            body = product([copy.deepcopy(a) for a in arrays])
            if reduce is not None:
                body = reduce(body)
            if num:
                coef = product([copy.deepcopy(x) for x in num])
                for d in den:
                    coef = gast.BinOp(left=coef, op=gast.Div(), right=copy.deepcopy(d))
                if sign[0]:
                    coef = gast.UnaryOp(op=gast.USub(), operand=coef)
                return gast.BinOp(left=body, op=gast.Mult(), right=coef)
            if den:
                divisor = product([copy.deepcopy(d) for d in den])
                if sign[0]:
                    divisor = gast.UnaryOp(op=gast.USub(), operand=divisor)
                return gast.BinOp(left=body, op=gast.Div(), right=divisor)
            return gast.UnaryOp(op=gast.USub(), operand=body) if sign[0] else body

        return build, cost

    def visit_Call(self, node: gast.Call) -> gast.expr:
        f = node.func
        obj = self.namer.globals.get(f.id) if isinstance(f, gast.Name) else None
        if (
            isinstance(obj, Primitive)
            and obj.name == "broadcast_to"
            and node.args
            and isinstance(node.args[0], gast.Call)
            and isinstance(node.args[0].func, gast.Name)
            and self.namer.globals.get(node.args[0].func.id) is R.keep
            and len(node.args[0].args) == 4
            and isinstance(node.args[0].args[2], gast.Constant)
            and node.args[0].args[2].value is None
        ):
            # keep(g, x, None, k) only re-inserts size-1 axes, which broadcast_to adds anyway
            node.args[0] = node.args[0].args[0]
        self.generic_visit(node)
        if not isinstance(f, gast.Name):
            return node
        if obj is None:
            return node
        if obj is P.index_add:
            reshaped = self.scatter_as_reshape(node)
            if reshaped is not None:
                return reshaped
        if (obj is P.zeros_like or obj is zeros_as) and len(node.args) == 1 and not node.keywords \
                and isinstance(node.args[0], gast.Name) and node.args[0].id in self.float64 \
                and self.shapes.get(node.args[0].id):
            # zeros of a float64 array whose shape this variant knows: built from the shape, so the
            # array itself is not read (and an adjoint that needs only its zeros does not save it)
            m = self.namer.ref(np, "np")
            return gast.Call(func=gast.Attribute(value=gast.Name(id=m, ctx=gast.Load(), annotation=None,
                                                                 type_comment=None),
                                                 attr="zeros", ctx=gast.Load()),
                             args=[_literal_node(tuple(self.shapes[node.args[0].id]))], keywords=[])
        if obj is P.getitem and len(node.args) == 1 and len(node.keywords) == 1 \
                and node.keywords[0].arg == "index" and self.numpy and self.is_numpy(node.args[0]) \
                and self.ndim_of(node.args[0]):
            # a NumPy array indexed: NumPy's own subscript (the primitive dispatches to the same)
            return gast.Subscript(value=node.args[0], slice=self.as_subscript(node.keywords[0].value),
                                  ctx=gast.Load())
        if obj is P.holds_floats and len(node.args) == 1 and isinstance(node.args[0], gast.Name) \
                and node.args[0].id in self.floats:
            return gast.Constant(value=1.0, kind=None)  # written into a float array: nothing truncated
        if obj is R.surviving and len(node.args) == 3 \
                and _plain_index(node.args[2], self.is_scalar, self.is_builtin_slice):
            return node.args[0]  # ints and slices name each position once: every write survives
        if obj is P.shape and len(node.args) == 1 and self.shapes:
            known = _shape_of(node.args[0], self.shapes)
            if known is not None:
                return _literal_node(tuple(known))  # a shape this variant was built for
        if obj is P.ndim and len(node.args) == 1 and self.ndim_of(node.args[0]) is not None:
            return gast.Constant(value=self.ndim_of(node.args[0]), kind=None)
        if hashable(obj) and (_folds(obj) or obj in mapping.STATIC_HELPERS) and not node.keywords \
                and all(_is_literal(a) for a in node.args):
            try:
                value = obj(*[gast.literal_eval(a) for a in node.args])
                return _literal_node(value)
            except Exception:
                pass
        if isinstance(obj, Primitive) and obj.scalar_expression and not node.keywords \
                and all(self.is_one_number(a) and _cheap_to_repeat(a) for a in node.args):
            return _instantiate(obj.scalar_expression, node.args)
        if (
            isinstance(obj, Primitive)
            and obj.name in MATH_FAST
            and not node.keywords
            and all(self.is_scalar(a) or self.is_float64_number(a)
                    or obj.math_any_number and self.ndim_of(a) == 0 for a in node.args)
        ):
            fast = MATH_FAST[obj.name]
            if fast is float and self.is_python_float(node.args[0]):
                return node.args[0]  # float(x) of a Python float: x
            if getattr(fast, "__module__", None) == "builtins":  # abs(x), float(x)
                return gast.Call(
                    func=gast.Name(
                        id=self.namer.ref(fast, fast.__name__), ctx=gast.Load(), annotation=None,
                        type_comment=None),
                    args=node.args,
                    keywords=[],
                )
            m = self.namer.ref(math, "math")
            lowered = gast.Call(
                func=gast.Attribute(
                    value=gast.Name(id=m, ctx=gast.Load(), annotation=None, type_comment=None),
                    attr=fast.__name__,
                    ctx=gast.Load(),
                ),
                args=node.args,
                keywords=[],
            )
            if self.keep_numpy_types and not all(self.is_scalar(a) for a in node.args):
                # np.sqrt of a NumPy scalar is a NumPy scalar: the user's value keeps its type
                f64 = gast.Attribute(value=gast.Name(id=self.namer.ref(np, "np"), ctx=gast.Load(),
                                                     annotation=None, type_comment=None),
                                     attr="float64", ctx=gast.Load())
                return gast.Call(func=f64, args=[lowered], keywords=[])
            return lowered
        if shaped_like(obj) and len(node.args) == 2 and not node.keywords \
                and self.ndim_of(node.args[0]) == 0 and self.ndim_of(node.args[1]) == 0:
            return node.args[0]  # one number to one number's shape: nothing to sum or broadcast
        if (
            isinstance(obj, Primitive)
            and obj.name == "square"
            and len(node.args) == 1
            and not node.keywords
            and isinstance(node.args[0], (gast.Name, gast.Constant))
            and self.is_scalar(node.args[0])
        ):
            # a Python number squared: `x * x`, the operator (np.square of a float is the same product)
            return gast.BinOp(left=node.args[0], op=gast.Mult(), right=copy.deepcopy(node.args[0]))
        if (
            isinstance(obj, Primitive)
            and obj.name == "broadcast_to"
            and len(node.args) == 1
            and self.is_scalar(node.args[0])
            and len(node.keywords) == 1
            and node.keywords[0].arg == "shape"
            and self._scalar_shape(node.keywords[0].value)
        ):
            return node.args[0]  # a number broadcast to a number's shape, (): the number
        if (
            isinstance(obj, types.FunctionType)
            and obj.__module__.endswith("runtime.rules")
            and (self.ndims or node.args and all(self.is_scalar(a) for a in node.args))
            and obj is not R.unbroadcast
        ):
            inlined = PartialEvaluator(self.namer.ref, self.ndim_of).inline(obj, node)
            if inlined is not None:
                return self.visit(inlined)
        if not self.numpy:
            return node
        if (
            (obj is R.unbroadcast or obj is sum_like)
            and len(node.args) == 2
            and (self.is_scalar(node.args[1]) or self.ndim_of(node.args[1]) == 0)
            and self.is_numpy(node.args[0])
            and (self.ndim_of(node.args[0]) or 0) > 0
        ):
            # an array summed down to a Python number's shape, (): the sum of everything (a 0-d value
            # keeps sum_like, which hands it back without NumPy's reduction machinery)
            m = self.namer.ref(np, "np")
            return gast.Call(
                func=gast.Attribute(
                    value=gast.Name(id=m, ctx=gast.Load(), annotation=None, type_comment=None),
                    attr="sum",
                    ctx=gast.Load(),
                ),
                args=[node.args[0]],
                keywords=[],
            )
        if (
            isinstance(obj, Primitive)
            and obj.as_index is not None
            and len(node.args) == 1
            and self.is_numpy(node.args[0])
            and self.ndim_of(node.args[0]) is not None
        ):
            # the record's view as an index (`g[..., None]`, `g[..., 0, :]`) where the axis is a constant
            axis = next((_num(k.value) for k in node.keywords if k.arg == "axis"), None)
            shape = self.shapes.get(node.args[0].id) if isinstance(node.args[0], gast.Name) else None
            fast = obj.as_index(axis, self.ndim_of(node.args[0]), shape)
            if fast is not None:
                return gast.Subscript(value=node.args[0], slice=_index_node(fast), ctx=gast.Load())
        if isinstance(obj, Primitive) and obj.name in NUMPY_FAST and all(self.is_numpy(a) for a in node.args):
            m = self.namer.ref(np, "np")
            return gast.Call(
                func=gast.Attribute(
                    value=gast.Name(id=m, ctx=gast.Load(), annotation=None, type_comment=None),
                    attr=NUMPY_FAST[obj.name],
                    ctx=gast.Load(),
                ),
                args=node.args,
                keywords=node.keywords,
            )
        if shaped_like(obj) and len(node.args) == 2 and self.shapes:
            a = _shape_of(node.args[0], self.shapes, self.is_getitem)
            b = _shape_of(node.args[1], self.shapes, self.is_getitem)
            if a is not None and a == b:
                return node.args[0]  # the shapes agree: nothing to sum or broadcast
        if obj is R.unbroadcast and len(node.args) == 2 and all(self.is_numpy(a) for a in node.args):
            node.func = gast.Name(
                id=self.namer.ref(sum_like, "sum_like"), ctx=gast.Load(), annotation=None, type_comment=None
            )
        return node


def _cheap_to_repeat(e: Any) -> bool:
    """A name, a number, or arithmetic on those: an operand a scalar expression may read twice."""
    if isinstance(e, (gast.Name, gast.Constant)):
        return True
    if isinstance(e, gast.BinOp) and not isinstance(e.op, gast.MatMult):
        return _cheap_to_repeat(e.left) and _cheap_to_repeat(e.right)
    if isinstance(e, gast.UnaryOp):
        return _cheap_to_repeat(e.operand)
    if isinstance(e, gast.Compare):
        return all(_cheap_to_repeat(x) for x in [e.left, *e.comparators])
    return False


def _instantiate(template: str, args: list) -> gast.expr:
    """A record's scalar expression with its operands in place of `{0}`, `{1}` (parenthesized by the
    syntax tree itself: each operand is substituted as a node)."""
    holes = [f"__operand{i}__" for i in range(len(args))]
    tree = gast.parse(template.format(*holes), mode="eval").body

    class Fill(gast.NodeTransformer):
        def visit_Name(self, n: gast.Name) -> Any:
            if n.id in holes:
                return copy.deepcopy(args[holes.index(n.id)])
            return n

    return Fill().visit(tree)


def _plain_index(ix: Any, is_int: Any, is_slice: Any) -> bool:
    """An index written with ints (numbers) and constant slices only: no integer array, so no position
    repeats (what `surviving` checks at run time)."""
    parts = ix.elts if isinstance(ix, gast.Tuple) else [ix]
    for p in parts:
        if isinstance(p, gast.Constant) and (type(p.value) is int or p.value is None or p.value is Ellipsis):
            continue
        if isinstance(p, gast.Name) and is_int(p):
            continue  # a number: an int at run time (a float index fails in the forward already)
        if isinstance(p, gast.UnaryOp) and isinstance(p.operand, gast.Constant):
            continue
        if isinstance(p, gast.Call) and isinstance(p.func, gast.Name) and is_slice(p.func.id) \
                and all(isinstance(a, (gast.Constant, gast.UnaryOp)) or is_int(a) for a in p.args):
            continue
        return False
    return True


def specialize(
    e: Any,
    namer: Namer,
    scalar_names: set[str],
    numpy_names: set[str] = frozenset(),
    ndims: dict[str, int] | None = None,
    shapes: dict[str, tuple] | None = None,
    floats: set[str] = frozenset(),
    float64: set[str] = frozenset(),
    python_floats: set[str] = frozenset(),
    constants: dict[str, int] | None = None,
    keep_numpy_types: bool = False,
) -> Any:
    if not scalar_names and not numpy_names:
        return e
    spec = Specialize(namer, scalar_names, numpy_names, ndims, shapes, floats, float64, python_floats,
                      constants)
    spec.keep_numpy_types = keep_numpy_types
    return spec.visit(e)


# ------------------------------------------------------------------------------------------ dead code
PURE_KINDS = ("prim", "copy", "const", "nondiff", "pack")


def _loads(node: Any) -> list[str]:
    out = [n.id for n in gast.walk(node) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)]
    out += [
        n.target.id
        for n in gast.walk(node)
        if isinstance(n, gast.AugAssign) and isinstance(n.target, gast.Name)
    ]
    return out


def _is_pure(s: Any) -> bool:
    if not isinstance(s, gast.Assign) or not isinstance(s.targets[0], (gast.Name, gast.Tuple)):
        return False
    if getattr(s, "impure", False):
        return False
    if getattr(s, "pure", False):
        return True
    op = getattr(s, "op", None)
    if op is not None:
        return op.kind in PURE_KINDS
    return getattr(s, "adjoint", False)


def dead_code(fn: gast.FunctionDef) -> None:
    """Remove pure assignments to names nobody reads, until nothing changes."""
    while True:
        counts: dict[str, int] = {}
        for n in _loads(fn):
            counts[n] = counts.get(n, 0) + 1
        removed = False

        def sweep(block: list) -> list:
            nonlocal removed
            out = []
            for s in block:
                if isinstance(s, (gast.If, gast.For, gast.While)):
                    s.body = sweep(s.body)
                    s.orelse = sweep(s.orelse)
                    if (
                        isinstance(s, gast.If)
                        and not s.body
                        and not s.orelse
                        and isinstance(s.test, (gast.Name, gast.Constant))
                    ):
                        removed = True
                        continue
                    out.append(s)
                    continue
                if _is_pure(s):
                    t = s.targets[0]
                    names = [t.id] if isinstance(t, gast.Name) else [e.id for e in t.elts]
                    if not any(counts.get(x, 0) for x in names):  # noqa: B023 -- used at once
                        removed = True
                        continue
                out.append(s)
            return out

        fn.body = sweep(fn.body)
        if not removed:
            _drop_self_assign(fn)
            return


def _drop_self_assign(fn: gast.FunctionDef) -> None:
    """`bs = bs` (what a rule leaves after scalar specialization) does nothing."""

    def sweep(block: list) -> list:
        out = []
        for s in block:
            if isinstance(s, (gast.If, gast.For, gast.While)):
                s.body = sweep(s.body)
                s.orelse = sweep(s.orelse)
            elif (
                isinstance(s, gast.Assign)
                and isinstance(s.targets[0], gast.Name)
                and isinstance(s.value, gast.Name)
                and s.value.id == s.targets[0].id
            ):
                continue
            out.append(s)
        return out

    fn.body = sweep(fn.body)


# ------------------------------------------------------------------------------- adjoint temporaries
def _stores(node: Any) -> set[str]:
    out = {n.id for n in gast.walk(node) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}
    out |= {
        n.target.id
        for n in gast.walk(node)
        if isinstance(n, gast.AugAssign) and isinstance(n.target, gast.Name)
    }
    return out


def _node_count(e: Any) -> int:
    """How big an expression is (what keeps a substituted line readable)."""
    return sum(1 for _ in gast.walk(e))


def _use_counts(fn: gast.FunctionDef) -> tuple[dict[str, int], dict[str, int]]:
    """How many times each name is read and written in `fn`."""
    loads: dict[str, int] = {}
    for n in _loads(fn):
        loads[n] = loads.get(n, 0) + 1
    stores: dict[str, int] = {}
    for n in gast.walk(fn):
        if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store):
            stores[n.id] = stores.get(n.id, 0) + 1
    return loads, stores


def propagate_adjoints(fn: gast.FunctionDef, is_temp_adjoint: Any) -> None:
    """Substitute an adjoint temporary used exactly once into its use (`b_t2 = -b_t3` then
    `bx = b_t2 * 2 * x` becomes `bx = b_t3 * -2 * x`): fewer lines and, on arrays, fewer passes."""
    loads, stores = _use_counts(fn)

    def sweep(block: list) -> list:
        i = 0
        while i < len(block):
            s = block[i]
            if isinstance(s, (gast.If, gast.For, gast.While)):
                s.body = sweep(s.body)
                s.orelse = sweep(s.orelse)
                i += 1
                continue
            if not (
                isinstance(s, gast.Assign)
                and getattr(s, "adjoint", False)
                and not getattr(s, "impure", False)
                and isinstance(s.targets[0], gast.Name)
            ):
                i += 1
                continue
            t = s.targets[0].id
            if (
                is_temp_adjoint(t)
                and stores.get(t, 0) == 1
                and loads.get(t, 0) > 1
                and isinstance(s.value, (gast.Name, gast.Constant))
                and _substitute_all(block, i, t, s.value, loads[t])
            ):
                del block[i]
                continue
            if not is_temp_adjoint(t) or loads.get(t, 0) != 1 or stores.get(t, 0) != 1 \
                    or _node_count(s.value) > 14:
                i += 1
                continue
            reads = set(_loads(s.value))
            done = False
            for j in range(i + 1, len(block)):
                u = block[j]
                if isinstance(u, (gast.Assign, gast.Expr)) and t in _loads(u):
                    if isinstance(u, gast.Assign) and t in _loads(u.targets[0]):
                        break

                    class Sub(gast.NodeTransformer):
                        def visit_Name(self, node):  # noqa: ANN001
                            return s.value if node.id == t and isinstance(node.ctx, gast.Load) else node  # noqa: B023

                    u.value = fold(Sub().visit(u.value))
                    del block[i]
                    done = True
                    break
                if isinstance(u, (gast.If, gast.For, gast.While)) or (_stores(u) & (reads | {t})):
                    break
            if not done:
                i += 1
        return block

    fn.body = sweep(fn.body)


def nest_forward_temporaries(fn: gast.FunctionDef, is_temp: Any) -> None:
    """Write a forward temporary read exactly once, by a later statement from the same user line in the
    same block, into that read (`_t2 = x ** 2; _t3 = -_t2; _t4 = np.exp(_t3)` becomes
    `_t4 = np.exp(-x ** 2)`). Nothing else reads it (the adjoint does not need it), so the user's
    expression comes back as written, and on arrays NumPy can compute the chain in the inner result's
    own buffer (its temporary elision) instead of allocating, and keeping alive, one array per step.

    Only pure assignments move, and only across pure assignments that rebind none of the names they
    read (or the pushes that save a value for the adjoint), so the value computed is the same; a line's
    statements keep their order otherwise."""
    loads, stores = _use_counts(fn)

    def movable(s: Any) -> str | None:
        if not (isinstance(s, gast.Assign) and not getattr(s, "adjoint", False) and _is_pure(s)
                and isinstance(s.targets[0], gast.Name)):
            return None
        t = s.targets[0].id
        return t if is_temp(t) and loads.get(t, 0) == 1 and stores.get(t, 0) == 1 else None

    def sweep(block: list) -> list:
        i = 0
        while i < len(block):
            s = block[i]
            if isinstance(s, (gast.If, gast.For, gast.While)):
                s.body = sweep(s.body)
                s.orelse = sweep(s.orelse)
            t = movable(s)
            if t is None or _node_count(s.value) > 14:
                i += 1
                continue
            reads = set(_loads(s.value))
            for j in range(i + 1, len(block)):
                u = block[j]
                if getattr(u, "saves", False):  # `_stack.push(v)`: keeps v's value, changes nothing
                    continue
                if not (isinstance(u, gast.Assign) and _is_pure(u) and not getattr(u, "adjoint", False)):
                    break
                if t in _loads(u.value):
                    if getattr(u, "line", None) == getattr(s, "line", None):
                        u.value = _replace_name(u.value, t, s.value)
                        del block[i]
                        i -= 1
                    break
                if _stores(u) & (reads | {t}):
                    break
            i += 1
        return block

    fn.body = sweep(fn.body)


def _replace_name(e: Any, t: str, value: Any) -> Any:
    """`e` with its load of `t` replaced by `value`."""

    class Sub(gast.NodeTransformer):
        def visit_Name(self, node: gast.Name) -> Any:
            return value if node.id == t and isinstance(node.ctx, gast.Load) else node

    return Sub().visit(e)


def merge_accumulations(fn: gast.FunctionDef) -> None:
    """`bx = e1` followed at once by `bx = bx + e2` (the adjoint gathering two contributions of one
    user line) becomes `bx = e1 + e2`: one statement, and on arrays NumPy adds into the temporary
    `e1` made instead of allocating again; `bx = e; bx = bx + e` (the rule of `x * x`) is `2 * e`. Only
    when e2 does not read bx, and never across user lines."""

    def sweep(block: list) -> list:
        out: list = []
        for s in block:
            if isinstance(s, (gast.If, gast.For, gast.While)):
                s.body = sweep(s.body)
                s.orelse = sweep(s.orelse)
            prev = out[-1] if out else None
            if (
                prev is not None
                and _is_accumulation_start(prev)
                and isinstance(s, gast.Assign)
                and getattr(s, "adjoint", False)
                and not getattr(s, "impure", False)
                and getattr(s, "line", None) == getattr(prev, "line", None)
                and isinstance(s.targets[0], gast.Name)
                and s.targets[0].id == prev.targets[0].id
                and isinstance(s.value, gast.BinOp)
                and isinstance(s.value.op, gast.Add)
                and isinstance(s.value.left, gast.Name)
                and s.value.left.id == prev.targets[0].id
                and (
                    prev.targets[0].id not in _loads(s.value.right)
                    or _is_name(s.value.right, prev.targets[0].id)  # `bx = e; bx = bx + bx`: `2 * e`
                )
            ):
                if _is_name(s.value.right, prev.targets[0].id):
                    s.value.right = copy.deepcopy(prev.value)
                if gast.dump(prev.value) == gast.dump(s.value.right):
                    # the two contributions of `x * x` are one expression: `2 * e` (exact), one pass
                    prev.value = gast.BinOp(left=gast.Constant(value=2, kind=None), op=gast.Mult(),
                                            right=prev.value)
                else:
                    prev.value = gast.BinOp(left=prev.value, op=gast.Add(), right=s.value.right)
                continue
            out.append(s)
        return out

    fn.body = sweep(fn.body)


def _is_name(e: Any, ident: str) -> bool:
    return isinstance(e, gast.Name) and e.id == ident


def _is_accumulation_start(s: Any) -> bool:
    return (
        isinstance(s, gast.Assign)
        and getattr(s, "adjoint", False)
        and not getattr(s, "impure", False)
        and len(s.targets) == 1
        and isinstance(s.targets[0], gast.Name)
    )


def _substitute_all(block: list, i: int, t: str, value: Any, uses: int) -> bool:
    """Replace every later load of `t` in `block` by `value` (a name or constant), if all `uses` are
    reached before `t` or `value` is reassigned and none sits inside a nested block."""
    reads = set(_loads(value))
    plan = []
    found = 0
    for j in range(i + 1, len(block)):
        u = block[j]
        n = _loads(u).count(t)
        if n:
            if not isinstance(u, (gast.Assign, gast.Expr)):
                return False
            plan.append(u)
            found += n
        if found == uses:
            break
        if isinstance(u, (gast.If, gast.For, gast.While)) or (_stores(u) & (reads | {t})):
            return False
    if found != uses:
        return False

    class Sub(gast.NodeTransformer):
        def visit_Name(self, node):  # noqa: ANN001
            if node.id == t and isinstance(node.ctx, gast.Load):
                return (
                    gast.Name(id=value.id, ctx=gast.Load(), annotation=None, type_comment=None)
                    if isinstance(value, gast.Name)
                    else gast.Constant(value=value.value, kind=None)
                )
            return node

    for u in plan:
        u.value = fold(Sub().visit(u.value))
    return True


def _index_node(ix: tuple) -> gast.Tuple:
    """A basic index of None, Ellipsis, full slices and ints, as subscript syntax."""
    return gast.Tuple(elts=[gast.Slice(lower=None, upper=None, step=None) if isinstance(p, slice)
                            else gast.Constant(value=p, kind=None) for p in ix], ctx=gast.Load())


def _folds(obj: Any) -> bool:
    """A helper whose record says it is pure, of static values only (`folds`): computed at build time
    where its arguments are literals."""
    record = P.HELPERS.get(obj)
    return record is not None and record.folds


def _is_literal(e: Any) -> bool:
    try:
        gast.literal_eval(e)
        return True
    except Exception:
        return False


def _literal_node(v: Any) -> gast.expr:
    if isinstance(v, tuple):
        return gast.Tuple(elts=[_literal_node(x) for x in v], ctx=gast.Load())
    if v is None or isinstance(v, (bool, int, float)):
        return _const(v)
    raise ValueError(v)


# ------------------------------------------------------------------------- deferred outer products
def _is_call_to(e: Any, namer: Namer, obj: Any) -> bool:
    return isinstance(e, gast.Call) and isinstance(e.func, gast.Name) and namer.globals.get(e.func.id) is obj


def _outer_parts(e: Any) -> tuple[Any, Any] | None:
    """`u[..., None] * v` -> (u, v)."""
    if not (isinstance(e, gast.BinOp) and isinstance(e.op, gast.Mult)):
        return None
    left = e.left
    if not (
        isinstance(left, gast.Subscript) and isinstance(left.slice, gast.Tuple) and len(left.slice.elts) == 2
    ):
        return None
    a, b = left.slice.elts
    if not (
        isinstance(a, gast.Constant)
        and a.value is Ellipsis
        and isinstance(b, gast.Constant)
        and b.value is None
    ):
        return None
    return left.value, e.right


def defer_outer_products(fn: gast.FunctionDef, namer: Namer, ndim_of: Any) -> None:
    """In a loop, `acc = acc + sum_like(u[..., None] * v, W)` with u, v vectors and `acc` touched nowhere
    else in the loop sums outer products one step at a time. Collect u and v instead and form the sum
    after the loop as one matrix product, `array(us).T @ array(vs)`: the same value (a sum of outer
    products is a product of the stacked vectors), one BLAS call instead of one allocation per step.
    (The recurrent weights of an RNN are the typical case.)"""

    def names_in(node: Any) -> list[tuple[str, bool]]:
        out = []
        for n in gast.walk(node):
            if isinstance(n, gast.Name):
                out.append((n.id, isinstance(n.ctx, gast.Store)))
        return out

    def candidate(s: Any) -> tuple[str, Any, Any, Any] | None:
        if not (isinstance(s, gast.Assign) and isinstance(s.targets[0], gast.Name)):
            return None
        acc = s.targets[0].id
        v = s.value
        if not (
            isinstance(v, gast.BinOp)
            and isinstance(v.op, gast.Add)
            and isinstance(v.left, gast.Name)
            and v.left.id == acc
        ):
            return None
        term = v.right
        where = None
        if _is_call_to(term, namer, sum_like) or _is_call_to(term, namer, R.unbroadcast):
            where = term.args[1]
            term = term.args[0]
        parts = _outer_parts(term)
        if parts is None:
            return None
        u, w = parts
        if ndim_of(u) != 1 or ndim_of(w) != 1:
            return None
        return acc, u, w, where

    def visit(block: list) -> list:
        out = []
        for s in block:
            if isinstance(s, (gast.If, gast.While)):
                s.body = visit(s.body)
                s.orelse = visit(s.orelse)
                out.append(s)
                continue
            if not isinstance(s, gast.For):
                out.append(s)
                continue
            s.body = visit(s.body)
            before, after = [], []
            uses: dict[str, int] = {}
            for n, _ in names_in(s):
                uses[n] = uses.get(n, 0) + 1
            stores = {n for n, st in names_in(s) if st}

            def rewrite(body: list, uses: dict, stores: set, before: list, after: list) -> list:
                new = []
                for t in body:
                    if isinstance(t, (gast.If, gast.While, gast.For)):
                        t.body = rewrite(t.body, uses, stores, before, after)
                        t.orelse = rewrite(t.orelse, uses, stores, before, after)
                        new.append(t)
                        continue
                    c = candidate(t)
                    # acc appears exactly twice in the loop (this store and this load); W is not reassigned
                    if (
                        c is None
                        or uses.get(c[0], 0) != 2
                        or (isinstance(c[3], gast.Name) and c[3].id in stores)
                    ):
                        new.append(t)
                        continue
                    acc, u, w, where = c
                    us, vs = namer.fresh("_us"), namer.fresh("_vs")
                    for lst, val in ((us, u), (vs, w)):
                        e = gast.Expr(
                            value=gast.Call(
                                func=gast.Attribute(value=_name(lst), attr="append", ctx=gast.Load()),
                                args=[val],
                                keywords=[],
                            )
                        )
                        e.line = getattr(t, "line", None)
                        e.adjoint = True
                        new.append(e)
                    for lst in (us, vs):
                        init = gast.Assign(
                            targets=[_name(lst, True)],
                            value=gast.List(elts=[], ctx=gast.Load()),
                            type_comment=None,
                        )
                        init.line, init.adjoint, init.impure = getattr(t, "line", None), True, True
                        before.append(init)
                    m = _name(namer.ref(np, "np"))
                    stacked = [  # np.array of a list of vectors: np.stack's result at half its cost
                        gast.Call(
                            func=gast.Attribute(value=m, attr="array", ctx=gast.Load()),
                            args=[_name(lst)],
                            keywords=[],
                        )
                        for lst in (us, vs)
                    ]
                    total: Any = gast.BinOp(
                        left=gast.Attribute(value=stacked[0], attr="T", ctx=gast.Load()),
                        op=gast.MatMult(),
                        right=stacked[1],
                    )
                    if where is not None:
                        total = gast.Call(
                            func=_name(namer.ref(sum_like, "sum_like")), args=[total, where], keywords=[]
                        )
                    upd = gast.Assign(
                        targets=[_name(acc, True)],
                        value=gast.BinOp(left=_name(acc), op=gast.Add(), right=total),
                        type_comment=None,
                    )
                    upd.line, upd.adjoint = getattr(t, "line", None), True
                    guard = gast.If(test=_name(us), body=[upd], orelse=[])
                    guard.line, guard.adjoint = getattr(t, "line", None), True
                    after.append(guard)
                return new

            s.body = rewrite(s.body, uses, stores, before, after)
            out.extend(before)
            out.append(s)
            out.extend(after)
        return out

    fn.body = visit(fn.body)


def _name(id_: str, store: bool = False) -> gast.Name:
    return gast.Name(id=id_, ctx=gast.Store() if store else gast.Load(), annotation=None, type_comment=None)


def _shape_of(e: Any, shapes: dict, getitem_ref: Any = lambda ident: False) -> tuple | None:
    """The exact shape of an expression over variables of known shape (None when not known).
    `getitem_ref(name)`: whether a called name is the getitem primitive."""
    if isinstance(e, gast.Name):
        return shapes.get(e.id)
    if isinstance(e, gast.Constant):
        return () if isinstance(e.value, (int, float)) and not isinstance(e.value, bool) else None
    if isinstance(e, gast.BinOp) and not isinstance(e.op, gast.MatMult):
        a, b = _shape_of(e.left, shapes, getitem_ref), _shape_of(e.right, shapes, getitem_ref)
        if a is None or b is None:
            return None
        try:
            return tuple(np.broadcast_shapes(a, b))
        except ValueError:
            return None
    if isinstance(e, gast.UnaryOp) and isinstance(e.op, gast.USub):
        return _shape_of(e.operand, shapes, getitem_ref)
    if isinstance(e, gast.IfExp):  # `(0.0 if False else 2)`, as a scalar `where` reads before Fold
        if isinstance(e.test, gast.Constant):
            return _shape_of(e.body if e.test.value else e.orelse, shapes, getitem_ref)
        a, b = _shape_of(e.body, shapes, getitem_ref), _shape_of(e.orelse, shapes, getitem_ref)
        return a if a == b else None
    try:
        if isinstance(e, gast.Subscript):
            base = _shape_of(e.value, shapes, getitem_ref)
            if base is None:
                return None
            return np.shape(np.empty(base)[_literal_index(e.slice)])
        if isinstance(e, gast.Call) and isinstance(e.func, gast.Name) and getitem_ref(e.func.id) \
                and len(e.args) == 1 and len(e.keywords) == 1 and e.keywords[0].arg == "index":
            base = _shape_of(e.args[0], shapes, getitem_ref)  # getitem(g, index=-1), as adjoints write it
            if base is None:
                return None
            return np.shape(np.empty(base)[_literal_index(e.keywords[0].value)])
        if (
            isinstance(e, gast.Call)
            and isinstance(e.func, gast.Attribute)
            and isinstance(e.func.value, gast.Name)
            and e.func.value.id == "np"
            and e.func.attr in NUMPY_FAST.values()
        ):
            arg_shapes = [_shape_of(a, shapes, getitem_ref) for a in e.args]
            if any(x is None for x in arg_shapes):
                return None
            kws = {k.arg: gast.literal_eval(k.value) for k in e.keywords}
            with np.errstate(all="ignore"):  # uninitialised operands: only the shape matters
                return np.shape(getattr(np, e.func.attr)(*[np.empty(x) for x in arg_shapes], **kws))
    except Exception:
        return None
    return None


def _literal_index(ix: Any) -> Any:
    if isinstance(ix, gast.Slice):
        return slice(*[None if p is None else gast.literal_eval(p) for p in (ix.lower, ix.upper, ix.step)])
    if isinstance(ix, gast.Call) and isinstance(ix.func, gast.Name) and ix.func.id == "slice" \
            and not ix.keywords and len(ix.args) <= 3:
        return slice(*[gast.literal_eval(p) for p in ix.args])  # slice(1, -1), as adjoints write it
    if isinstance(ix, gast.Tuple):
        return tuple(_literal_index(x) for x in ix.elts)
    return gast.literal_eval(ix)


def fold_unit_seed(fn: gast.FunctionDef, namer: Namer, shapes: dict, floats: set[str],
                   params: set[str]) -> None:
    """NumPy variants of `grad`: the cotangent of a full reduction is the seed 1 broadcast to the
    reduced shape (`b = np.broadcast_to(seed_of(y), shape=S)`); a product `b * e` with `e` already of
    shape S is just `e`. Folding it saves one full pass over the data per product, and then a product
    of two forward values the function already holds (`_t1 * _t4`, computed as `_t5`) is read back
    instead of recomputed. The seed times a number (`b * 3`, from the rule of `x ** 3`) folds the same
    way into a float number: `(b * 3) * e` is `3.0 * e`. When every use of the seed folds, the forward
    value it was taken from is dead too, and the gradient skips the forward (`bx = 3.0 * x ** 2.0`).
    Top-level (straight-line) statements only; shapes must be known exactly, and
    the other factor must be a name in `floats` (an active value or an adjoint: floating point), so that
    dropping the float seed never turns an integer array's product into an integer result, and never a
    parameter or a copy of one (`params`): a gradient must not be the caller's own array object."""
    from srcgrad.runtime.stack import seed_of  # noqa: PLC0415

    ones: dict[str, tuple] = {}
    scaled: dict[str, tuple] = {}  # `b = np.broadcast_to(seed_of(y), shape=S) * 3`: name -> (S, 3)
    units: set[str] = set()  # names holding the seed itself (`b_y = seed_of(y)`)
    aliases: dict[str, str] = {}  # `b = a` copies, so products are recognised through them
    products: dict[tuple[str, str], str] = {}

    def is_unit(e: Any) -> bool:
        return _is_call_to(e, namer, seed_of) or isinstance(e, gast.Name) and e.id in units

    def is_seed_broadcast(v: Any) -> tuple | None:
        if not (isinstance(v, gast.Call) and v.args and is_unit(v.args[0])):
            return None
        f = v.func
        if not (isinstance(f, gast.Attribute) and f.attr == "broadcast_to"
                or _is_call_to(v, namer, P.broadcast_to)):
            return None
        shape = [k.value for k in v.keywords if k.arg == "shape"] or v.args[1:2]
        try:
            return tuple(gast.literal_eval(shape[0])) if shape else None
        except ValueError:
            return None

    def unit_scale(e: Any) -> tuple | None:
        """(S, c) when `e` is the seed broadcast to shape S times the number c (c = 1: the seed)."""
        if isinstance(e, gast.Name):
            nm = aliases.get(e.id, e.id)
            if nm in ones:
                return ones[nm], 1
            return scaled.get(nm)
        shape = is_seed_broadcast(e)
        if shape is not None:
            return shape, 1
        if isinstance(e, gast.BinOp) and isinstance(e.op, gast.Mult):
            for u, c in ((e.left, e.right), (e.right, e.left)):
                if isinstance(c, gast.Constant) and type(c.value) in (int, float):
                    inner = unit_scale(u)
                    if inner is not None:
                        return inner[0], inner[1] * c.value
        return None

    class Fold(gast.NodeTransformer):
        def visit_BinOp(self, node: gast.BinOp) -> Any:
            self.generic_visit(node)
            if not isinstance(node.op, gast.Mult):
                return node
            for unit, other in ((node.left, node.right), (node.right, node.left)):
                unit_name = aliases.get(unit.id, unit.id) if isinstance(unit, gast.Name) else None
                if unit_name in ones and isinstance(other, gast.Name) \
                        and other.id in floats and aliases.get(other.id, other.id) not in params \
                        and _shape_of(other, shapes) == ones[unit_name]:
                    return other
                us = unit_scale(unit)
                if us is not None and us[1] != 1 and not isinstance(other, gast.Constant) \
                        and unit_scale(other) is None and _shape_of(other, shapes) == us[0]:
                    # (seed * 3) * e is 3.0 * e: a float number, so the product stays floating point
                    # (and is a new array, never e itself)
                    return gast.BinOp(left=gast.Constant(value=float(us[1]), kind=None), op=gast.Mult(),
                                      right=other)
            if isinstance(node.left, gast.Name) and isinstance(node.right, gast.Name):
                a = aliases.get(node.left.id, node.left.id)
                b = aliases.get(node.right.id, node.right.id)
                known = products.get((a, b)) or products.get((b, a))
                if known is not None:
                    return _name(known)
            return node

    written: set[str] = set()
    for s in fn.body:
        if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name):
            forward = not getattr(s, "adjoint", False)
            before = copy.deepcopy(s.value) if forward and not is_alias(s.value) else None
            s.value = fold(Fold().visit(s.value))
            if before is not None and is_alias(s.value):
                s.value = before  # a new array in the user's program stays one
            target = s.targets[0].id
            shape = is_seed_broadcast(s.value)
            # a name written twice no longer means one value: forget what was known of it
            for key in [k for k, v in products.items() if target in k or v == target]:
                del products[key]
            ones.pop(target, None)
            scaled.pop(target, None)
            units.discard(target)
            aliases.pop(target, None)
            for k in [k for k, v in aliases.items() if v == target]:
                del aliases[k]
            if target in written:
                continue
            written.add(target)
            if shape is not None:
                ones[target] = shape
            else:
                us = unit_scale(s.value)
                if us is not None and us[1] != 1:
                    scaled[target] = us
            v = s.value
            if _is_call_to(v, namer, seed_of):
                units.add(target)
            if isinstance(v, gast.Name):
                aliases[target] = aliases.get(v.id, v.id)
            if isinstance(v, gast.BinOp) and isinstance(v.op, gast.Mult) and \
                    isinstance(v.left, gast.Name) and isinstance(v.right, gast.Name):
                products[(v.left.id, v.right.id)] = target
        else:
            # anything else (a loop, a branch) may rebind names: stop folding here
            for n in _stores(s):
                written.add(n)
                ones.pop(n, None)
                scaled.pop(n, None)
                units.discard(n)
                aliases.pop(n, None)
            aliases = {k: v for k, v in aliases.items() if v not in _stores(s)}
            products = {k: v for k, v in products.items() if not (set(k) | {v}) & _stores(s)}


def _alias_check(s: Any, namer: Namer) -> gast.Call | None:
    """The call of statement `s` if it is a run-time alias check (`refuse_shared(...)`), else None."""
    from srcgrad.mutation import refuse_shared  # noqa: PLC0415

    c = s.value if isinstance(s, gast.Expr) and isinstance(s.value, gast.Call) else None
    if c is not None and isinstance(c.func, gast.Name) and namer.globals.get(c.func.id) is refuse_shared:
        return c
    return None


def drop_number_alias_checks(body: list, numbers: set[str], namer: Namer) -> list:
    """The run-time alias checks (`refuse_shared`) less what the facts show cannot share memory: a
    check of a variable that holds a number is dropped (`steps += 1`), and numbers leave the lists of
    names a changed array is compared with."""
    from srcgrad.analysis import rewrite_statements  # noqa: PLC0415

    def rewrite(s: Any) -> list:
        check = _alias_check(s, namer)
        if check is None or len(check.args) < 3:
            return [s]
        changed, others, names = check.args[:3]
        if isinstance(changed, gast.Name) and changed.id in numbers:
            return []
        if isinstance(others, gast.Tuple) and isinstance(names, gast.Tuple) \
                and len(others.elts) == len(names.elts):
            keep = [i for i, e in enumerate(others.elts)
                    if not (isinstance(e, gast.Name) and e.id in numbers)]
            others.elts = [others.elts[i] for i in keep]
            names.elts = [names.elts[i] for i in keep]
        return [s]

    return rewrite_statements(body, rewrite)


_CONSTRUCTORS = mapping.SHAPE_FROM_CONSTANTS | mapping.SHAPE_FROM_ARGUMENT
# calls whose result is new memory, from the records' `fresh` fact: the primitive, and the NumPy function
# generated code calls for it (np.matmul for matmul)
_FRESH_CALLS = {p for p in P.PRIMITIVES.values() if p.fresh} | {
    getattr(np, p.numpy) for p in P.PRIMITIVES.values() if p.fresh and p.numpy and hasattr(np, p.numpy)}


def drop_fresh_alias_checks(body: list, namer: Namer) -> list:
    """The run-time alias checks (`refuse_shared`) of writes into an array no other name can share: one
    a primitive whose record says `fresh` (a copy, arithmetic) or a NumPy constructor made, in the same
    block, with the name
    read since only by the checks, by other `fresh` primitives and by the user's in-place writes
    (`new = u.copy(); new[1:-1] = ...; new[0] = 0.0` in a PDE step). An in-place write (marked
    `in_place` by the normalizer: `a[i] = v`, `a += v`) leaves its array's sharing as it was, as NumPy
    does; any other read (`u = new`, a view, a call, a tuple) may share it; a loop or branch starts and
    ends with nothing known."""

    def fresh_result(s: Any) -> bool:
        if not (isinstance(s, gast.Assign) and isinstance(s.targets[0], gast.Name)):
            return False
        op = getattr(s, "op", None)
        prim = P.PRIMITIVES.get(op.prim) if op is not None and op.kind == "prim" and op.prim else None
        if prim is not None:
            return prim.fresh
        c = s.value
        # NumPy's constructors (np.zeros(n), np.full_like(u, 0.0)) always allocate
        f = c.func if isinstance(c, gast.Call) else None
        obj = namer.globals.get(f.id) if isinstance(f, gast.Name) else getattr(
            namer.globals.get(f.value.id), f.attr, None) if isinstance(f, gast.Attribute) and isinstance(
            f.value, gast.Name) else None
        return hashable(obj) and obj in _CONSTRUCTORS

    def check_of(s: Any) -> Any:
        c = _alias_check(s, namer)
        return c.args[0].id if c is not None and c.args and isinstance(c.args[0], gast.Name) else None

    def block(stmts: list) -> list:
        out: list = []
        alone: set[str] = set()
        for s in stmts:
            if isinstance(s, (gast.If, gast.For, gast.While)):
                s.body = block(s.body)
                s.orelse = block(s.orelse)
                alone = set()
                out.append(s)
                continue
            changed = check_of(s)
            if changed is not None:
                if changed not in alone:
                    out.append(s)
                continue
            out.append(s)
            if getattr(s, "in_place", False) and fresh_result(s):
                continue  # `a[i] = v`: NumPy writes v's values into a, whose sharing stays as it was
            fresh = fresh_result(s)
            if not fresh:
                alone -= {n.id for n in gast.walk(s) if isinstance(n, gast.Name)}
            stores = set(_stores(s)) if type(s).__name__ != "Verbatim" else set(getattr(s, "targets", ()))
            alone -= stores
            if fresh:
                alone |= stores
        return out

    return block(body)


def batch_loop_saves(fn: gast.FunctionDef, namer: Namer, stack: str) -> None:
    """One push per loop iteration instead of one per saved value: a loop body that saves n values at
    its top level (`_stack.push(prey)`, ... eight per step of an ODE integrator) keeps each in a local
    where it was saved (`_k3 = prey`) and pushes the tuple of them once, at the end of the body; its
    adjoint pops the tuple once, first, and hands each value back where its pop was (`prey = _s3`).
    What the body saves inside branches, nested loops or callees stays on the stack as it was: those
    are pushed before the tuple and popped after it, in stack order. Only for a body with no `break` or
    `continue` (the end of the body runs every iteration), whose adjoint loop pops exactly those values,
    in reverse, at its own top level; and for variants never transformed again (the tuple is not a form
    the transforms read back)."""
    adjoint_of = {id(n.fwd): n for n in gast.walk(fn) if isinstance(n, gast.For) and hasattr(n, "fwd")}

    def stack_call(s: Any, method: str) -> gast.Call | None:
        c = s.value if isinstance(s, (gast.Expr, gast.Assign)) else None
        ok = isinstance(c, gast.Call) and isinstance(c.func, gast.Attribute) and c.func.attr == method \
            and isinstance(c.func.value, gast.Name) and c.func.value.id == stack and not c.keywords
        return c if ok else None

    def saved_name(e: Any) -> str | None:
        if isinstance(e, gast.Name):
            return e.id
        if isinstance(e, gast.Call) and len(e.args) == 1 and isinstance(e.args[0], gast.Name):
            return e.args[0].id  # copy(x): a value the statement changes in place
        return None

    def batch(loop: Any) -> None:
        adj = adjoint_of.get(id(loop))
        if adj is None or any(isinstance(n, (gast.Break, gast.Continue)) for s in loop.body
                              for n in gast.walk(s)):
            return
        saves = [(k, s.value.args[0]) for k, s in enumerate(loop.body) if isinstance(s, gast.Expr)
                 and (c := stack_call(s, "push")) is not None and len(c.args) == 1
                 and saved_name(c.args[0]) is not None]
        if len(saves) < 2:
            return
        pops = [s for s in adj.body if isinstance(s, gast.Assign) and stack_call(s, "pop") is not None
                and not stack_call(s, "pop").args and isinstance(s.targets[0], gast.Name)]
        if [s.targets[0].id for s in pops] != [saved_name(e) for _, e in saves][::-1]:
            return
        kept = [namer.fresh("_k") for _ in saves]
        held = [namer.fresh("_s") for _ in saves]
        for (k, e), name_ in zip(saves, kept, strict=True):
            line = getattr(loop.body[k], "line", None)
            loop.body[k] = assign_name(name_, e)
            loop.body[k].line = line
        pushed = gast.Expr(value=call_attr(stack, "push", [gast.Tuple(elts=[_name(v) for v in kept],
                                                                      ctx=gast.Load())]))
        pushed.line = None
        pushed.saves = True
        loop.body.append(pushed)
        for s, h in zip(pops, held[::-1], strict=True):
            s.value = _name(h)
        popped = gast.Assign(targets=[gast.Tuple(elts=[_name(h, store=True) for h in held],
                                                 ctx=gast.Store())],
                             value=call_attr(stack, "pop", []), type_comment=None)
        popped.line = None
        popped.impure = True
        adj.body = [popped] + adj.body

    for n in list(gast.walk(fn)):
        if isinstance(n, (gast.For, gast.While)):
            batch(n)


def assign_name(v: str, value: Any) -> gast.Assign:
    return gast.Assign(targets=[_name(v, store=True)], value=value, type_comment=None)


def call_attr(obj: str, attr: str, args: list) -> gast.Call:
    return gast.Call(func=gast.Attribute(value=_name(obj), attr=attr, ctx=gast.Load()), args=args,
                     keywords=[])


def write_in_place(fn: gast.FunctionDef, namer: Namer, ints: set[str] = frozenset(),
                   ndims: dict[str, int] | None = None) -> None:
    """Writes into arrays generated code allocated itself happen in place, so element loops are linear:
    `X = index_update(X, v, index=i)` (the user's `R[i, j] = ...` on a table it built, a PDE's boundary)
    becomes `index_update_owned`, and `b = b + index_add(zeros(...), v, index=i) + ...` (the adjoint of
    reading `x[i]`) becomes one `b = index_add_into(b, v, index=i)` per term.

    Only for a name every assignment of which makes a new array (a constructor, arithmetic, a
    functional update of itself, a value it saved itself popped back): never a parameter, never a copy
    of another name, never a call's result that may be its argument. Whether another name, a saved
    value or a view shares the array when the write happens is checked at run time by its reference
    count (runtime.stack._writable_alone); where one does, the helper makes a new array as before."""
    from srcgrad.analysis import rewrite_statements  # noqa: PLC0415
    from srcgrad.runtime.stack import Stack, index_add_into, index_update_owned  # noqa: PLC0415

    fresh = {np.zeros, np.ones, np.full, np.empty, np.zeros_like, np.ones_like, np.copy, zeros_as,
             index_add_into, index_update_owned} | _FRESH_CALLS
    zeros = (np.zeros, np.zeros_like, P.zeros_like, zeros_as)

    def call_of(e: Any) -> Any:
        if isinstance(e, gast.Call):
            f = e.func
            if isinstance(f, gast.Name):
                return namer.globals.get(f.id)
            if isinstance(f, gast.Attribute) and isinstance(f.value, gast.Name):
                module = namer.globals.get(f.value.id)
                if module is np:
                    return getattr(np, f.attr, None)
        return None

    stmts = [n for n in gast.walk(fn) if isinstance(n, gast.stmt) and n is not fn]
    stacks = {s.targets[0].id for s in stmts if isinstance(s, gast.Assign)
              and isinstance(s.targets[0], gast.Name) and call_of(s.value) is Stack}

    def makes_new(s: gast.Assign) -> bool:
        v = s.value
        if isinstance(v, (gast.BinOp, gast.UnaryOp)):
            return True
        if isinstance(v, gast.Call) and isinstance(v.func, gast.Attribute) and v.func.attr == "pop" \
                and isinstance(v.func.value, gast.Name) and v.func.value.id in stacks:
            return True  # a value this name held before, saved by this function
        return hashable(call_of(v)) and call_of(v) in fresh

    owned: set[str] = set()
    not_owned = {a.id for a in fn.args.args} | {a.id for a in fn.args.kwonlyargs}
    copies: list[tuple[str, str]] = []  # `a = b`: a is owned only if b is (a user's array never is)
    for s in stmts:
        if isinstance(s, (gast.If, gast.While)):
            continue
        if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name):
            if isinstance(s.value, gast.Name):
                copies.append((s.targets[0].id, s.value.id))
                owned.add(s.targets[0].id)
            else:
                (owned if makes_new(s) else not_owned).add(s.targets[0].id)
        else:
            not_owned |= _stores(s.target) if isinstance(s, gast.For) else _stores(s)
    # A copy `a = b` keeps a owned even where b is not (`dnew = du`, a copy's tangent): the run-time
    # reference count of the helpers sees b's reference and makes a new array at the first write, and the
    # writes after it go into that array (one copy per step, not one per write). A copy is never private
    # (below), so no write into it skips that check.
    owned -= not_owned
    if not owned:
        return
    update_ref = _name(namer.ref(index_update_owned, "index_update_owned"))
    add_ref = _name(namer.ref(index_add_into, "index_add_into"))

    def terms(e: Any) -> list:
        if isinstance(e, gast.BinOp) and isinstance(e.op, gast.Add):
            return terms(e.left) + terms(e.right)
        return [e]

    def rewrite(s: Any) -> list:
        if not (isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name)
                and s.targets[0].id in owned):
            return [s]
        x = s.targets[0].id
        v = s.value
        if call_of(v) is P.index_update and len(v.args) == 2 and _is_name(v.args[0], x):
            # (a value that is a view of x itself holds x: the run-time check then makes a new array)
            v.func = copy.deepcopy(update_ref)
            return [s]
        parts = terms(v)
        if any(_is_name(n, x) for p in parts if not _is_name(p, x) for n in gast.walk(p)
               if not (call_of(p) is P.index_update and n is p.args[0])):
            # a term reads x itself (`bu = index_update(bu, 0.0, index=k) + bu[::-1]`, the adjoint of
            # u[::-1] = u): every term must see x as it was, so nothing is written into it here
            return [s]
        # x = index_update(x, v, index=i) + index_add(zeros, w, index=j): the update, then the adds
        updates = [p for p in parts if call_of(p) is P.index_update and len(p.args) == 2
                   and _is_name(p.args[0], x)]
        if len(updates) == 1 and len(parts) > 1:
            first = copy.copy(s)
            first.value = updates[0]
            rest = copy.copy(s)
            rest.value = _sum_of([p if p is not updates[0] else _name(x) for p in parts])
            return rewrite(first) + rewrite(rest)
        mine = [p for p in parts if _is_name(p, x)]
        adds = [p for p in parts if not _is_name(p, x)]
        if len(parts) < 2 or len(mine) > 1 or not all(
                call_of(p) is P.index_add and len(p.args) == 2 and hashable(call_of(p.args[0]))
                and call_of(p.args[0]) in zeros for p in adds):
            return [s]
        out = []
        if not mine:  # x = index_add(zeros, a) + index_add(zeros, b): the first makes x, the rest add into it
            first = copy.copy(s)
            first.value = adds.pop(0)
            out.append(first)
        for p in adds:
            s2 = copy.copy(s)
            s2.targets = [_name(x, store=True)]
            s2.value = gast.Call(func=copy.deepcopy(add_ref), args=[_name(x), p.args[1]], keywords=p.keywords)
            out.append(s2)
        return out

    fn.body = rewrite_statements(fn.body, rewrite)

    # buffers no other name can see: every read of them is the target of an accumulation, an
    # arithmetic operand, or the return value
    def accumulation(s: Any) -> Any:
        if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name) \
                and isinstance(s.value, gast.Call) and call_of(s.value) is index_add_into \
                and _is_name(s.value.args[0], s.targets[0].id) and len(s.value.keywords) == 1:
            return s
        return None

    def update(s: Any) -> Any:
        if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name) \
                and isinstance(s.value, gast.Call) and call_of(s.value) is index_update_owned \
                and _is_name(s.value.args[0], s.targets[0].id) and len(s.value.args) == 2 \
                and len(s.value.keywords) == 1:
            return s
        return None

    def one_element(x: str, ix: Any) -> bool:
        """An int for every axis of x: reading it gives a number, never a view that could see a
        later write (`state[i]` of a matrix is a row, a view)."""
        parts = ix.elts if isinstance(ix, gast.Tuple) else [ix]
        return len(parts) == (ndims or {}).get(x) and all(
            isinstance(q, gast.Name) and q.id in ints
            or isinstance(q, gast.Constant) and type(q.value) is int for q in parts)

    writes = {id(n.value) for n in gast.walk(fn) if accumulation(n) is not None or update(n) is not None}

    def seen_elsewhere(node: Any, in_return: bool = False) -> Any:
        """The names read where their array may be kept (`_t1 = y[1:]`, a view; a call's argument):
        every read but an arithmetic operand, the return value, the buffer of an accumulation or update,
        and an element read. Read per occurrence, not per node object: the optimizer's substitutions
        may share one Name node between a harmless and a harmful place."""
        in_return = in_return or isinstance(node, gast.Return)
        for field_, value in gast.iter_fields(node):
            for k, child in enumerate(value if isinstance(value, list) else [value]):
                if isinstance(child, gast.Name):
                    if isinstance(child.ctx, gast.Load) and not (
                            in_return or isinstance(node, gast.BinOp)
                            or id(node) in writes and field_ == "args" and k == 0
                            or isinstance(node, gast.Subscript) and field_ == "value"
                            and isinstance(node.ctx, gast.Load) and one_element(child.id, node.slice)):
                        yield child.id
                elif isinstance(child, gast.AST):
                    yield from seen_elsewhere(child, in_return)

    # (a copy `by = bc` shares its array with another name: never private, whatever is read later)
    private = set(owned) - {a for a, _ in copies} - set(seen_elsewhere(fn))

    def plain(ix: Any) -> bool:
        return _plain_index(ix, lambda e: isinstance(e, gast.Name) and e.id in ints,
                            lambda ident: namer.globals.get(ident, getattr(builtins, ident, None)) is slice)

    def direct(s: Any) -> list:
        written = accumulation(s) or update(s)
        if written is None or s.targets[0].id not in private or not plain(s.value.keywords[0].value):
            return [s]
        b = s.targets[0].id
        place = gast.Subscript(value=_name(b), slice=s.value.keywords[0].value, ctx=gast.Store())
        if update(s) is not None:  # x = index_update_owned(x, v, index=i): x[i] = v
            aug = gast.Assign(targets=[place], value=s.value.args[1], type_comment=None)
        else:
            aug = gast.AugAssign(target=place, op=gast.Add(), value=s.value.args[1])
        for attr in ("line", "adjoint"):
            if hasattr(s, attr):
                setattr(aug, attr, getattr(s, attr))
        return [aug]

    fn.body = rewrite_statements(fn.body, direct)
    _release_copied_names(fn, owned, {update_ref.id, add_ref.id})


def _release_copied_names(fn: gast.FunctionDef, owned: set[str], writers: set[str]) -> None:
    """`bnew = bu` (buffers generated code allocated), with bu next assigned afresh further down the
    same block and read nowhere in between, while bnew is written in place: `del bu` after the copy,
    so the run-time reference count finds bnew alone and writes into it instead of copying it (the
    adjoint of a PDE step, whose buffer is handed from name to name every iteration)."""

    def names(node: Any) -> set[str]:
        return {n.id for n in gast.walk(node) if isinstance(n, gast.Name)}

    def loads(node: Any) -> set[str]:
        return {n.id for n in gast.walk(node) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}

    def written_in_place(node: Any, x: str) -> bool:
        return any(isinstance(n, gast.Call) and isinstance(n.func, gast.Name) and n.func.id in writers
                   and n.args and _is_name(n.args[0], x) for n in gast.walk(node))

    def block(stmts: list) -> list:
        out: list = []
        for i, st in enumerate(stmts):
            for field in ("body", "orelse"):
                if isinstance(getattr(st, field, None), list):
                    setattr(st, field, block(getattr(st, field)))
            out.append(st)
            if not (isinstance(st, gast.Assign) and len(st.targets) == 1
                    and isinstance(st.targets[0], gast.Name) and isinstance(st.value, gast.Name)
                    and st.targets[0].id in owned and st.value.id in owned
                    and st.targets[0].id != st.value.id):
                continue
            x, y = st.targets[0].id, st.value.id
            rest = stmts[i + 1:]
            first = next((k for k, r in enumerate(rest) if y in names(r)), None)
            if first is None:
                continue
            between, renew = rest[:first], rest[first]
            if not (isinstance(renew, gast.Assign) and y in _stores(renew) and y not in loads(renew)) \
                    or any(isinstance(n, (gast.Break, gast.Continue, gast.Return))
                           for r in between for n in gast.walk(r)) \
                    or not any(written_in_place(r, x) for r in between):
                continue
            release = gast.Delete(targets=[_name(y, store=False)])
            release.targets[0].ctx = gast.Del()
            release.line = None
            out.append(release)
        return out

    fn.body = block(fn.body)


def distinct_results(fn: gast.FunctionDef, namer: Namer, grads: gast.Tuple) -> None:
    """Gradients returned together are distinct arrays, as PyTorch's and JAX's are: where two of them
    may be one array (`bx = bc; by = bc`), the later is returned as a copy, so that changing one in place
    (`gx *= 0.5`) does not change the other."""
    parent: dict[str, str] = {}

    def root(v: str) -> str:
        while parent.get(v, v) != v:
            v = parent[v]
        return v

    for n in gast.walk(fn):
        if isinstance(n, gast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], gast.Name) \
                and isinstance(n.value, gast.Name):
            a, b = root(n.targets[0].id), root(n.value.id)
            if a != b:
                parent[a] = b
    seen: set[str] = set()
    for i, e in enumerate(grads.elts):
        if not isinstance(e, gast.Name):
            continue
        r = root(e.id)
        if r in seen:
            grads.elts[i] = gast.Call(func=_name(namer.ref(P.copy, "copy")), args=[e], keywords=[])
        seen.add(r)


def _sum_of(parts: list) -> gast.expr:
    out = parts[0]
    for p in parts[1:]:
        out = gast.BinOp(left=out, op=gast.Add(), right=p)
    return out



def _plain_arithmetic(e: Any) -> bool:
    """+, -, * and division by a nonzero constant, on names and number constants only (`0.5 * dt` kept
    as written): pure, cheap, and raising nowhere the loop would not."""
    if isinstance(e, gast.Name):
        return True
    if isinstance(e, gast.Constant):
        return isinstance(e.value, (int, float)) and not isinstance(e.value, bool)
    if isinstance(e, gast.BinOp):
        # nothing that can raise when the loop would not have run (`1.0 / n` with n == 0)
        safe = isinstance(e.op, (gast.Add, gast.Sub, gast.Mult)) or (
            isinstance(e.op, gast.Div) and isinstance(e.right, gast.Constant)
            and _num(e.right) not in (None, 0)
        )
        return safe and _plain_arithmetic(e.left) and _plain_arithmetic(e.right)
    if isinstance(e, gast.UnaryOp):
        return isinstance(e.op, (gast.USub, gast.UAdd)) and _plain_arithmetic(e.operand)
    return False


def hoist_loop_invariants(body: list, params: set[str]) -> list:
    """Move out of a loop each straight-line assignment at the top of its body whose operands the loop
    never changes (`g / L`, `dt * c` in an integrator's step): computed once instead of every iteration,
    and, in reverse mode, never saved per iteration (the adjoint accumulates its cotangent across the
    loop instead). Only pure operations (primitives, copies, constants), whose target nothing reads
    outside the loop or before it in the body, and that the loop assigns nowhere else; nested loops are
    hoisted from the inside out."""
    from srcgrad.analysis import iter_stmts, targets_of  # noqa: PLC0415

    def stores(stmts: list) -> set[str]:
        out: set[str] = set()
        for s in iter_stmts(stmts):
            out.update(targets_of(s))
            if isinstance(s, gast.For):
                out.update(n.id for n in gast.walk(s.target) if isinstance(n, gast.Name))
            out.update(n.id for n in gast.walk(s) if isinstance(n, gast.Name)
                       and isinstance(n.ctx, gast.Store))
        return out

    def reads(node: Any) -> set[str]:
        return {n.id for n in gast.walk(node) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}

    def hoist(block: list, outside_reads: set[str]) -> list:
        out: list = []
        for i, s in enumerate(block):
            if not isinstance(s, (gast.For, gast.While)):
                if isinstance(s, gast.If):
                    rest = outside_reads | reads(s.test) | {r for x in block if x is not s for r in reads(x)}
                    s.body = hoist(s.body, rest)
                    s.orelse = hoist(s.orelse, rest)
                out.append(s)
                continue
            elsewhere = outside_reads | {r for j, x in enumerate(block) if j != i for r in reads(x)}
            s.body = hoist(s.body, elsewhere | reads(getattr(s, "test", None) or s.iter))
            changed = stores(s.body) | stores([s]) if isinstance(s, gast.For) else stores(s.body)
            moved: list = []
            seen_reads: set[str] = set(reads(getattr(s, "test", None) or gast.Pass()))
            kept: list = []
            for inner in s.body:
                t = targets_of(inner)
                op = getattr(inner, "op", None)
                movable = (
                    isinstance(inner, gast.Assign) and len(t) == 1 and isinstance(inner.targets[0], gast.Name)
                    and op is not None
                    and (op.kind in ("prim", "copy", "const")
                         or op.kind == "nondiff" and _plain_arithmetic(inner.value))
                    and not getattr(inner, "impure", False)
                    and not (reads(inner) & changed)
                    and t[0] not in seen_reads and t[0] not in elsewhere and t[0] not in params
                    and sum(t[0] in targets_of(x) for x in iter_stmts(s.body)) == 1
                )
                if movable:
                    moved.append(inner)
                    changed.discard(t[0])  # computed once now: what reads it may move out too
                    continue
                seen_reads |= reads(inner)
                kept.append(inner)
                if isinstance(inner, (gast.If, gast.For, gast.While)):
                    break  # past a compound statement, order within the body matters too much
            if moved:
                s.body = kept + s.body[len(kept) + len(moved):]
                if not s.body:
                    s.body = [gast.Pass()]
            out.extend(moved)
            out.append(s)
        return out

    return hoist(body, set())


# ------------------------------------------------------------------------------ rank-dispatching adapters
def _adapter_candidates(body: list) -> list:
    """Statements `v = adapter(a, b)` calling a mapping adapter that the front end kept as a call
    (np.dot's `dot_` branches on its operands' ranks, so it is not one expression)."""
    from srcgrad.analysis import iter_stmts  # noqa: PLC0415

    out = []
    for s in iter_stmts(body):
        op = getattr(s, "op", None)
        if (
            op is not None
            and op.kind == "call"
            and isinstance(s, gast.Assign)
            and isinstance(s.value, gast.Call)
            and (getattr(op.fn, "__module__", None) or "").endswith("runtime.mapping")
            and all(isinstance(a, (gast.Name, gast.Constant)) for a in s.value.args)
            and all(isinstance(k.value, (gast.Name, gast.Constant)) for k in s.value.keywords)
        ):
            out.append(s)
    return out


def resolve_adapters(body: list, namer: Namer, known: dict, params: set[str], callee: Any = None) -> list:
    """In a variant that knows its arguments' ranks (Python floats, NumPy arrays keyed on ndim), turn a
    call of a rank-dispatching adapter into the one primitive its branching comes to: `np.dot(W, h)` and
    `W.dot(h)` with a matrix and a vector become `W @ h`, the very statement `@` normalizes to, so every
    later stage (facts, rules, saves, fast paths) treats the spellings alike.

    The ranks of loop-carried values depend on what these calls return, so the pass guesses (each call
    resolved with the ranks known so far, an unknown operand taken as a vector), re-infers every rank
    from the rewritten body (the fact pass, from the parameters' facts `known`), and keeps a
    rewrite only where the verified ranks resolve the call to the same primitive; a call whose guess
    does not hold is put back and the inference redone, until nothing changes."""
    from srcgrad import facts as fact_pass  # noqa: PLC0415
    from srcgrad.normalize import _OPERATORS, Op, _rule_names  # noqa: PLC0415

    cands = _adapter_candidates(body)
    if not cands or not known:
        return body
    original = {id(s): (s.value, s.op) for s in cands}
    arrays = any(isinstance(f, fact_pass.Arr) for f in known.values())

    def facts() -> dict[str, int]:
        fx = fact_pass.infer(body, namer, params, known, numpy_variant=arrays, callee=callee)
        nd = fx.ndims()
        for v in fx.scalars():
            nd.setdefault(v, 0)
        return nd

    def resolution(s: Any, nd: dict[str, int], guess: bool) -> tuple | None:
        fn = original[id(s)][1].fn

        def ndim_of(e: gast.expr) -> int | None:
            if isinstance(e, gast.Constant):
                return 0 if isinstance(e.value, (int, float)) and not isinstance(e.value, bool) else None
            n = nd.get(e.id) if isinstance(e, gast.Name) else None
            return 1 if n is None and guess else n

        call = original[id(s)][0]
        res = PartialEvaluator(namer.ref, ndim_of).resolve_primitive(fn, call)
        if res is None:
            return None
        prim, args, kws = res
        if not prim.differentiable or prim.name not in _rule_names():
            return None
        if any(not isinstance(v, (int, float, str, tuple, bool)) and v is not None for v in kws.values()):
            return None
        return prim, args, kws

    def key(r: tuple | None) -> Any:
        if r is None:
            return None
        prim, args, kws = r
        return (prim.name, tuple(gast.dump(a) for a in args), tuple(sorted(kws.items())))

    def apply(s: Any, r: tuple | None) -> None:
        if r is None:
            s.value, s.op = original[id(s)]
            return
        prim, args, kws = r
        op_type = _OPERATORS.get(prim.name)
        if op_type is not None and len(args) == 2 and not kws:
            s.value = gast.BinOp(left=args[0], op=op_type(), right=args[1])
            s.op = Op("prim", prim.name, list(args), style="binop")
            return
        k = {n: _const(v) if not isinstance(v, tuple) else gast.Tuple(
            elts=[_const(x) for x in v], ctx=gast.Load()) for n, v in kws.items()}
        s.value = gast.Call(
            func=gast.Name(id=namer.ref(prim, prim.name), ctx=gast.Load(), annotation=None,
                           type_comment=None),
            args=list(args),
            keywords=[gast.keyword(arg=n, value=v) for n, v in k.items()],
        )
        s.op = Op("prim", prim.name, list(args), dict(k), fn=prim)

    nd = facts()
    current = {id(s): resolution(s, nd, guess=True) for s in cands}
    for _ in range(len(cands) + 2):
        for s in cands:
            apply(s, current[id(s)])
        nd = facts()
        changed = False
        for s in cands:
            got = resolution(s, nd, guess=False)
            if key(got) != key(current[id(s)]):
                current[id(s)] = None if current[id(s)] is not None else got
                changed = True
        if not changed:
            return body
    for s in cands:  # no agreement: everything as the front end wrote it
        apply(s, None)
    return body


# --------------------------------------------------------------------------- tests the facts decide
def _none_test(e: Any) -> tuple[str, bool] | None:
    """`x is None` / `x is not None` as (x, True for `is`), else None."""
    if isinstance(e, gast.Compare) and len(e.ops) == 1 and isinstance(e.left, gast.Name) \
            and isinstance(e.ops[0], (gast.Is, gast.IsNot)) and isinstance(e.comparators[0], gast.Constant) \
            and e.comparators[0].value is None:
        return e.left.id, isinstance(e.ops[0], gast.Is)
    return None


def _known_comparison(e: Any, ints: dict[str, int]) -> bool | None:
    """`na == 0` where na's value is known (a rank, a length): its outcome, else None; `and`/`or`
    of such, decided where every part is."""
    if isinstance(e, gast.BoolOp):
        parts = [_known_comparison(v, ints) for v in e.values]
        if None in parts:
            return None
        return all(parts) if isinstance(e.op, gast.And) else any(parts)
    if not (isinstance(e, gast.Compare) and len(e.ops) == 1 and type(e.ops[0]) in COMPARISONS):
        return None

    def value(x: Any) -> int | None:
        if isinstance(x, gast.Constant) and type(x.value) is int:
            return x.value
        return ints.get(x.id) if isinstance(x, gast.Name) else None

    a, b = value(e.left), value(e.comparators[0])
    return None if a is None or b is None else COMPARISONS[type(e.ops[0])](a, b)


def fold_known_tests(body: list, is_value: Any, ints: dict[str, int] | None = None) -> tuple[list, bool]:
    """Decide `x is None` where the facts say what x holds (`is_value(x)`: a number, an array, a range,
    never None), and drop the branch of every `if` whose test that decides. An adapter written for
    several call forms (`max(xs)` or `max(a, b)`: `b is None` picks one) then keeps only the form the
    program calls, so neither the branch nor its test's flag is computed, saved or replayed.
    Returns the new body and whether anything changed (the caller then finds the facts again)."""
    from srcgrad.analysis import iter_stmts, targets_of  # noqa: PLC0415
    from srcgrad.normalize import Op  # noqa: PLC0415

    assigned: dict[str, int] = {}
    for s in iter_stmts(body):
        for t in targets_of(s):
            assigned[t] = assigned.get(t, 0) + 1
    decided: dict[str, bool] = {}
    for s in iter_stmts(body):
        if isinstance(s, gast.Assign) and isinstance(s.targets[0], gast.Name):
            test = _none_test(s.value)
            outcome_ = None
            if test is not None and is_value(test[0]):
                outcome_ = not test[1]
            elif ints:
                outcome_ = _known_comparison(s.value, ints)  # `na == 0` of a known rank
            if outcome_ is not None and assigned.get(s.targets[0].id) == 1:
                decided[s.targets[0].id] = outcome_
                s.value = gast.Constant(value=outcome_, kind=None)
                s.op = Op("const")
    if not decided:
        return body, False

    def outcome(test: Any) -> bool | None:
        if isinstance(test, gast.Name):
            return decided.get(test.id)
        if isinstance(test, gast.Constant) and isinstance(test.value, bool):
            return test.value
        return None

    def prune(block: list) -> list:
        out: list = []
        for s in block:
            if isinstance(s, gast.If) and outcome(s.test) is not None:
                out.extend(prune(s.body if outcome(s.test) else s.orelse))
                continue
            if isinstance(s, (gast.If, gast.For, gast.While)):
                s.body = prune(s.body)
                s.orelse = prune(s.orelse)
            out.append(s)
        return out

    return prune(body), True


def drop_float_of_floats(body: list, python_floats: set[str]) -> list:
    """`_t = float(x); y = math.sin(_t)` where x is already a Python float: `y = math.sin(x)`. The
    normalizer writes `math.f(x)` as `math.f(float(x))` (what the function does to its argument), which
    is a copy when the facts say x is a float; the copy would be saved and restored as a variable of
    its own. Only for a converted value read once, by the next statement."""
    reads: dict[str, int] = {}
    for n in gast.walk(gast.Module(body=body, type_ignores=[])):
        if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load):
            reads[n.id] = reads.get(n.id, 0) + 1

    def conversion(s: Any) -> tuple[str, Any] | None:
        op = getattr(s, "op", None)
        if isinstance(s, gast.Assign) and isinstance(s.targets[0], gast.Name) and op is not None \
                and op.kind == "prim" and op.prim == "to_float" and len(op.args) == 1 \
                and isinstance(op.args[0], gast.Name) and op.args[0].id in python_floats \
                and reads.get(s.targets[0].id) == 1:
            return s.targets[0].id, op.args[0]
        return None

    def block(stmts: list) -> list:
        out: list = []
        pending: tuple[str, Any, Any] | None = None
        for s in stmts:
            if isinstance(s, (gast.If, gast.For, gast.While)):
                s.body, s.orelse = block(s.body), block(s.orelse)
            if pending is not None:
                v, x, conv = pending
                pending = None
                uses = [n for part in (s, *getattr(getattr(s, "op", None), "args", ()))
                        for n in gast.walk(part) if isinstance(n, gast.Name) and n.id == v]
                if uses and not isinstance(s, (gast.If, gast.For, gast.While)):
                    for n in uses:
                        n.id = x.id
                else:
                    out.append(conv)
            found = conversion(s)
            if found is not None:
                pending = (*found, s)
                continue
            out.append(s)
        if pending is not None:
            out.append(pending[2])
        return out

    return block(body)


def gather_numbers(fn: gast.FunctionDef, spec: Specialize) -> None:
    """In the adjoint (never the user's forward, whose values must stay bit for bit): a product of arrays
    and numbers multiplies its numbers together first (`2 * (g / nu * r)`: `g * r * (2 / nu)`), and a
    sum scales its total instead of every element (`np.sum(-g * r / s)`: `np.sum(g * r) / -s`). Runs
    after the adjoints are propagated into one another, when whole products are in one expression.
    `spec` answers which operands are numbers and which hold floating-point values."""

    class Gather(gast.NodeTransformer):
        def visit_BinOp(self, node: gast.BinOp) -> Any:
            self.generic_visit(node)
            if isinstance(node.op, (gast.Mult, gast.Div)):
                split = spec.scalar_factors(node)
                if split is not None and split[1] >= 2:
                    return split[0](None)
            return node

        def visit_Call(self, node: gast.Call) -> Any:
            self.generic_visit(node)
            f = node.func
            if isinstance(f, gast.Attribute) and f.attr == "sum" and isinstance(f.value, gast.Name) \
                    and spec.namer.globals.get(f.value.id) is np and len(node.args) == 1 \
                    and not node.keywords:
                split = spec.scalar_factors(node.args[0])
                if split is not None and split[1] >= 1:
                    return split[0](lambda body: gast.Call(func=f, args=[body], keywords=[]))
            return node

    for s in gast.walk(fn):
        if isinstance(s, (gast.Assign, gast.AugAssign)) and getattr(s, "adjoint", False):
            s.value = Gather().visit(s.value)


def _pure_number_expression(e: Any) -> bool:
    """Names, constants, arithmetic, comparisons and subscripts of names: an expression whose value is
    decided by the names it reads (no call that could have effects or allocate)."""
    if isinstance(e, (gast.Name, gast.Constant)):
        return True
    if isinstance(e, gast.Subscript):
        return isinstance(e.value, gast.Name) and _pure_number_expression(e.slice)
    if isinstance(e, gast.Tuple):
        return all(_pure_number_expression(x) for x in e.elts)
    if isinstance(e, gast.BinOp):
        return not isinstance(e.op, gast.MatMult) and _pure_number_expression(e.left) \
            and _pure_number_expression(e.right)
    if isinstance(e, gast.UnaryOp):
        return _pure_number_expression(e.operand)
    return False


def common_numbers(body: list, numbers: set[str], namer: Namer, kept: set[str] = frozenset()) -> list:
    """`_t2 = x[i]` and, later in the same block, `_t4 = x[i]` (a user line reading x[i] twice): the
    second is the first, so neither the forward nor the adjoint reads the element twice, and the loop
    saves or recomputes one value. Only for numbers (one value each, facts) assigned once in the whole
    function, the expression read-only (elements, arithmetic), nothing it reads bound between the two,
    and the second name read nowhere between them."""
    from srcgrad.analysis import iter_stmts, targets_of  # noqa: PLC0415

    stored: dict[str, int] = {}
    first_read: dict[str, int] = {}  # position (source order) of the first statement reading a name
    position: dict[int, int] = {}
    for k, s in enumerate(iter_stmts(body)):
        position[id(s)] = k
        for t in targets_of(s):
            stored[t] = stored.get(t, 0) + 1
        parts = [s.test] if isinstance(s, (gast.If, gast.While)) else [s.iter] if isinstance(s, gast.For) \
            else [s]
        for n in (n for part in parts for n in gast.walk(part)):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load):
                first_read.setdefault(n.id, k)
    renames: dict[str, str] = {}

    def expression(s: Any) -> Any:
        if not (isinstance(s, gast.Assign) and isinstance(s.targets[0], gast.Name)):
            return None
        v = s.targets[0].id
        value = s.value
        if isinstance(value, gast.Call) and isinstance(value.func, gast.Name) \
                and namer.globals.get(value.func.id) is P.getitem and len(value.args) == 1 \
                and len(value.keywords) == 1 and value.keywords[0].arg == "index":
            value = gast.Subscript(value=value.args[0], slice=value.keywords[0].value, ctx=gast.Load())
        if v not in numbers or v in kept or stored.get(v) != 1 or not _pure_number_expression(value) \
                or first_read.get(v, len(position)) <= position[id(s)]:
            # (`kept`: names read where this pass does not rename, the return; a name read before
            # its statement, a parameter or a value carried round a loop, holds something else there)
            return None
        return value

    def names_in(node: Any, ctx: type) -> set[str]:
        return {n.id for n in gast.walk(node) if isinstance(n, gast.Name) and isinstance(n.ctx, ctx)}

    def block(stmts: list) -> None:
        seen: list[tuple[str, str, set[str], int]] = []  # (dump, name, operands, position)
        for k, s in enumerate(stmts):
            if isinstance(s, (gast.If, gast.For, gast.While)):
                block(s.body)
                block(s.orelse)
            value = expression(s)
            if value is not None:
                key = gast.dump(value)
                operands = names_in(value, gast.Load)
                for dump, first, ops, at in seen:
                    between = stmts[at + 1:k]
                    if dump == key and not any(
                            (set(targets_of(x)) | names_in(x, gast.Store)) & (ops | {first})
                            for b in between for x in iter_stmts([b])) \
                            and not any(s.targets[0].id in names_in(b, gast.Load) for b in between):
                        renames[s.targets[0].id] = first
                        break
                else:
                    seen.append((key, s.targets[0].id, operands, k))

    block(body)
    if not renames:
        return body

    def rename(node: Any) -> None:
        for n in gast.walk(node):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load) and n.id in renames:
                n.id = renames[n.id]

    def drop(stmts: list) -> list:
        out = []
        for s in stmts:
            if isinstance(s, gast.Assign) and isinstance(s.targets[0], gast.Name) \
                    and s.targets[0].id in renames:
                continue
            if isinstance(s, (gast.If, gast.For, gast.While)):
                s.body, s.orelse = drop(s.body), drop(s.orelse)
            rename(s)
            op = getattr(s, "op", None)
            for a in list(getattr(op, "args", ())) + list(getattr(op, "kwargs", {}).values()):
                if isinstance(a, gast.AST):
                    rename(a)
            out.append(s)
        return out

    return drop(body)
