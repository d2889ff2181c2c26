"""Stage 3: facts about normalized code that the transforms need.

- `activity`: which variables are *active*: they depend on a differentiated input through differentiable
  operations (varied) AND the output depends on them through differentiable operations (useful). Only
  statements that assign an active variable get an adjoint; only active operands receive contributions.
- `scalars`: which variables certainly hold Python numbers, given which parameters do. The transforms
  use it to write scalar code (`math.sin`, no `sum_to`) where that is safe.
- `walk_assigns` and helpers shared by the transforms.

All analyses are flow-insensitive per variable (a variable is active if any assignment makes it so),
which is conservative: it may keep an adjoint that is always zero, never drop one that is not.
"""

from __future__ import annotations

from typing import Any, Iterator

import gast

from srcgrad.runtime import primitives as P
from srcgrad.templates import table

DIFF_KINDS = ("prim", "copy", "call", "opaque", "pack", "unpack", "stack", "list_get", "list_pop")


def iter_stmts(body: list) -> Iterator[gast.stmt]:
    """Every statement, nested ones included, in source order."""
    for s in body:
        yield s
        if isinstance(s, (gast.If, gast.For, gast.While)):
            yield from iter_stmts(s.body)
            yield from iter_stmts(s.orelse)


def targets_of(s: gast.stmt) -> list[str]:
    if type(s).__name__ == "Verbatim":
        return list(s.targets)
    if isinstance(s, gast.Assign):
        t = s.targets[0]
        if isinstance(t, gast.Name):
            return [t.id]
        if isinstance(t, gast.Tuple):
            return [e.id for e in t.elts]
    if isinstance(s, gast.For) and isinstance(s.target, gast.Name):
        return [s.target.id]
    return []


def atom_names(atoms: list) -> list[str]:
    return [a.id for a in atoms if isinstance(a, gast.Name)]


def diff_operands(op: Any) -> list[tuple[int, str]]:
    """(position, name) of the operands an op can pass a derivative to."""
    if op.kind == "prim":
        rt = table().get(op.prim)
        out = []
        for i, a in enumerate(op.args):
            if isinstance(a, gast.Name) and rt is not None and rt.get("vjp", i) is not None:
                out.append((i, a.id))
        return out
    if op.kind in ("copy", "call", "opaque", "pack", "unpack", "stack", "append", "list_get", "list_pop"):
        return [(i, a.id) for i, a in enumerate(op.args) if isinstance(a, gast.Name)]
    return []


def activity(
    body: list, wrt: set[str], outputs: set[str], mutable: set[str] = frozenset()
) -> tuple[set[str], set[str], set[str]]:
    """(active, varied, useful) variable names. `mutable`: local lists/stacks, which a call may fill with
    values it was given (so they vary with them)."""
    stmts = [s for s in iter_stmts(body) if getattr(s, "op", None) is not None]
    varied = set(wrt)
    changed = True
    while changed:
        changed = False
        for s in stmts:
            op = s.op
            if op.kind == "append":
                lst, item = op.args
                if isinstance(item, gast.Name) and item.id in varied and lst.id not in varied:
                    varied.add(lst.id)
                    changed = True
                continue
            if op.kind not in DIFF_KINDS:
                continue
            if any(n in varied for _, n in diff_operands(op)):
                passed = [n for _, n in diff_operands(op) if n in mutable] if op.kind == "call" else []
                for t in targets_of(s) + _mutated_object(s) + passed:
                    if t not in varied:
                        varied.add(t)
                        changed = True
    useful = set(outputs)
    changed = True
    while changed:
        changed = False
        for s in stmts:
            op = s.op
            if op.kind == "append":
                lst, item = op.args
                if lst.id in useful and isinstance(item, gast.Name) and item.id not in useful:
                    useful.add(item.id)
                    changed = True
                continue
            if op.kind not in DIFF_KINDS:
                continue
            if any(t in useful for t in targets_of(s)):
                for _, n in diff_operands(op):
                    if n not in useful:
                        useful.add(n)
                        changed = True
    return varied & useful, varied, useful


# --------------------------------------------------------------------------------------------- scalars
SCALAR_PRIMS = P.ELEMENTWISE | {"sum", "mean"}  # primitives with a Python-scalar (math) variant
SCALAR_CALLS = {"len", "int", "float", "round", "bool"}


def scalars(body: list, scalar_params: set[str], params: set[str], namer: Any) -> set[str]:
    """Names that always hold a Python int/float/bool, given the parameters in `scalar_params`."""
    assigns: dict[str, list] = {}
    for s in iter_stmts(body):
        if isinstance(s, gast.For):
            assigns.setdefault(s.target.id, []).append(("for", s))
        elif isinstance(s, gast.Assign):
            t = s.targets[0]
            if isinstance(t, gast.Name):
                assigns.setdefault(t.id, []).append(("assign", s))
            else:
                for e in t.elts:
                    assigns.setdefault(e.id, []).append(("unknown", s))
    known = set(scalar_params) | (set(assigns) - params)
    for p in params - set(scalar_params):
        known.discard(p)

    def atom_ok(a: Any) -> bool:
        if isinstance(a, gast.Constant):
            return isinstance(a.value, (int, float, bool)) and not isinstance(a.value, complex)
        return isinstance(a, gast.Name) and a.id in known

    def expr_ok(e: Any) -> bool:
        """Arithmetic on scalars (an inactive expression kept as written)."""
        if isinstance(e, (gast.Constant, gast.Name)):
            return atom_ok(e)
        if isinstance(e, gast.BinOp):
            return not isinstance(e.op, gast.MatMult) and expr_ok(e.left) and expr_ok(e.right)
        if isinstance(e, gast.UnaryOp):
            return expr_ok(e.operand)
        return False

    def ok(kind: str, s: Any) -> bool:
        if kind == "unknown":
            return False
        if kind == "for":
            it = s.iter
            return isinstance(it, gast.Name) and it.id.startswith("_r")
        op = getattr(s, "op", None)
        v = s.value
        if op is None:
            return False
        if op.kind == "const":
            return isinstance(v, gast.Constant) and isinstance(v.value, (int, float, bool))
        if op.kind == "copy":
            return atom_ok(v)
        if op.kind == "prim":
            if op.prim == "power" and not (isinstance(op.args[1], gast.Constant)):
                return False  # (-x) ** y may be complex on Python floats
            return op.prim in SCALAR_PRIMS and all(atom_ok(a) for a in op.args)
        if op.kind == "nondiff":
            if isinstance(v, gast.Compare):
                # a comparison of numbers is a bool; of arrays, a boolean array (a mask)
                return all(expr_ok(x) for x in [v.left, *v.comparators])
            if expr_ok(v):
                return True
            if isinstance(v, gast.Call) and isinstance(v.func, gast.Name):
                obj = namer.globals.get(v.func.id)
                return getattr(obj, "__name__", None) in SCALAR_CALLS
            return False
        return False

    changed = True
    while changed:
        changed = False
        for v in list(known):
            if v in scalar_params:
                continue
            for kind, s in assigns.get(v, []):
                if not ok(kind, s):
                    known.discard(v)
                    changed = True
                    break
    return known


# ---------------------------------------------------------------------------------------------- numpy
NUMPY_PRIMS = SCALAR_PRIMS | {
    "max",
    "min",
    "matmul",
    "transpose",
    "reshape",
    "broadcast_to",
    "getitem",
    "square",
    "reciprocal",
    "clip",
    "sum_to",
    "expand_dims",
    "squeeze",
}


def numpy_values(body: list, numpy_params: set[str], scalar_names: set[str], params: set[str]) -> set[str]:
    """Names that always hold NumPy arrays/scalars (or Python numbers), given the NumPy parameters."""
    if not numpy_params:
        return set()
    assigns: dict[str, list] = {}
    for s in iter_stmts(body):
        if isinstance(s, gast.Assign) and isinstance(s.targets[0], gast.Name):
            assigns.setdefault(s.targets[0].id, []).append(s)
        else:
            for t in targets_of(s):
                assigns.setdefault(t, []).append(None)
    known = set(numpy_params) | (set(assigns) - params)

    def atom_ok(a: Any) -> bool:
        if isinstance(a, gast.Constant):
            return isinstance(a.value, (int, float)) and not isinstance(a.value, bool)
        return isinstance(a, gast.Name) and (a.id in known or a.id in scalar_names)

    def ok(s: Any) -> bool:
        op = getattr(s, "op", None) if s is not None else None
        if op is None:
            return False
        if op.kind == "copy":
            return atom_ok(s.value)
        if op.kind == "const":
            return atom_ok(s.value)
        if op.kind == "prim":
            return op.prim in NUMPY_PRIMS and all(atom_ok(a) for a in op.args)
        if op.kind == "nondiff":
            return getattr(s, "const_array", None) is not None or expr_ok(s.value)
        return False

    def expr_ok(e: Any) -> bool:
        if isinstance(e, (gast.Name, gast.Constant)):
            return atom_ok(e)
        if isinstance(e, gast.Subscript):
            return isinstance(e.value, gast.Name) and e.value.id in known
        if isinstance(e, gast.BinOp):
            return expr_ok(e.left) and expr_ok(e.right)
        if isinstance(e, gast.UnaryOp) and not isinstance(e.op, gast.Not):
            return expr_ok(e.operand)
        return False

    changed = True
    while changed:
        changed = False
        for v in list(known):
            if v in numpy_params:
                continue
            if not all(ok(s) for s in assigns.get(v, [None])):
                known.discard(v)
                changed = True
    return known


# ---------------------------------------------------------------------------------------------- ndims
ELEMENTWISE = P.ELEMENTWISE


def ndims(
    body: list, param_ndims: dict[str, int], scalar_names: set[str], numpy_names: set[str]
) -> dict[str, int]:
    """Number of dimensions of NumPy-valued variables, where every assignment agrees on it."""
    out: dict[str, int] = dict(param_ndims)
    for v in scalar_names:
        out.setdefault(v, 0)
    assigns: dict[str, list] = {}
    for s in iter_stmts(body):
        for t in targets_of(s):
            assigns.setdefault(t, []).append(s)

    def atom(a: Any) -> int | None:
        if isinstance(a, gast.Constant):
            return 0 if isinstance(a.value, (int, float)) else None
        if isinstance(a, gast.Name):
            return out.get(a.id)
        return None

    def of(s: Any) -> int | None:
        op = getattr(s, "op", None)
        if op is None or not isinstance(s, gast.Assign) or not isinstance(s.targets[0], gast.Name):
            return None
        if op.kind == "copy":
            return atom(s.value)
        if getattr(s, "const_array", None) is not None:  # np.zeros(64): its shape is known
            return len(s.const_array[0])
        if op.kind == "nondiff" and isinstance(s.value, gast.Subscript):
            return _index_ndim(atom(s.value.value), s.value.slice, scalar_names)
        if op.kind != "prim":
            return None
        ns = [atom(a) for a in op.args]
        if any(n is None for n in ns):
            return None
        p = op.prim
        if p in ELEMENTWISE:
            return max(ns) if ns else None
        if p == "matmul":
            a, b = ns
            if a == 1 and b == 1:
                return 0
            if a == 1 or b == 1:
                return max(a, b) - 1
            return max(a, b)
        if p == "transpose":
            return ns[0]
        if p in ("sum", "mean", "max", "min"):
            axis = op.kwargs.get("axis")
            keep = op.kwargs.get("keepdims")
            if isinstance(keep, gast.Constant) and keep.value:
                return ns[0]
            if axis is None or (isinstance(axis, gast.Constant) and axis.value is None):
                return 0
            if isinstance(axis, gast.Constant) and isinstance(axis.value, int):
                return ns[0] - 1
            return None
        if p == "getitem":
            if isinstance(s.value, gast.Subscript):
                return _index_ndim(ns[0], s.value.slice, scalar_names)
            return None  # written as getitem(x, index=i): the index is a value, its ndim unknown here
        return None

    # optimistic iteration: a variable takes the one ndim its assignments agree on, ignoring those whose
    # operands are not known yet (loop-carried values); a disagreement makes it unknown for good
    bottom: set[str] = set()
    for _ in range(50):
        changed = False
        for v, ss in assigns.items():
            if v in param_ndims or v in bottom or v not in numpy_names:
                continue
            vals = set()
            for s in ss:
                n = of(s)
                if n is not None:  # operands not known yet: wait for them
                    vals.add(n)
            if len(vals) > 1:
                bottom.add(v)
                out.pop(v, None)
                changed = True
            elif len(vals) == 1:
                n = vals.pop()
                if out.get(v) != n:
                    out[v] = n
                    changed = True
        if not changed:
            break
    # verify: every assignment of every kept variable must now produce its ndim
    for v, ss in assigns.items():
        if (
            v in out
            and v not in param_ndims
            and v in numpy_names
            and v not in scalar_names
            and any(of(s) != out[v] for s in ss)
        ):
            out.pop(v)
            return ndims_verify_failed(out, v)
    return out


def _index_ndim(n: int | None, ix: Any, scalar_names: set[str]) -> int | None:
    """ndim after indexing with `ix` (subscript syntax): ints drop an axis, slices keep it."""
    if n is None:
        return None
    parts = ix.elts if isinstance(ix, gast.Tuple) else [ix]
    for q in parts:
        if isinstance(q, gast.Constant) and isinstance(q.value, int) and not isinstance(q.value, bool):
            n -= 1
        elif isinstance(q, gast.Name) and q.id in scalar_names:
            n -= 1
        elif isinstance(q, gast.Slice):
            pass
        else:
            return None
    return n


def ndims_verify_failed(out: dict[str, int], v: str) -> dict[str, int]:
    """An inconsistent result: give up on every inferred ndim rather than risk a wrong inline."""
    return {}


def _mutated_object(s: Any) -> list[str]:
    """`obj.method(v)` as a statement may store v inside obj (a stack, a dict): obj then carries v's
    derivative, so reading it back is active, and (having no rule) refused rather than silently zero."""
    if isinstance(s, gast.Expr) and getattr(s, "op", None) is not None and s.op.kind == "opaque":
        f = s.value.func if isinstance(s.value, gast.Call) else None
        if isinstance(f, gast.Attribute) and isinstance(f.value, gast.Name):
            return [f.value.id]
    return []


# --------------------------------------------------------------------------------------------- shapes
def shapes(body: list, param_shapes: dict, scalar_names: set[str], numpy_names: set[str]) -> dict:
    """Exact shapes of NumPy-valued variables, for a variant keyed on its array arguments' shapes: each
    statement is run at transform time on empty arrays of its operands' shapes (NumPy decides the result
    shape exactly as it will at run time). A variable whose assignments disagree, or whose shape depends
    on values (a mask, a slice bound held in a variable), is left unknown."""
    import numpy as np

    from srcgrad.optimize import NUMPY_FAST

    out: dict[str, tuple] = dict(param_shapes)
    for v in scalar_names:
        out.setdefault(v, ())
    assigns: dict[str, list] = {}
    for s in iter_stmts(body):
        for t in targets_of(s):
            assigns.setdefault(t, []).append(s)

    def dummy(a: Any) -> Any:
        if isinstance(a, gast.Constant):
            if isinstance(a.value, (int, float)) and not isinstance(a.value, bool):
                return np.float64(0.0)
            raise KeyError
        if isinstance(a, gast.Name) and a.id in out:
            return np.empty(out[a.id])
        raise KeyError

    def index_value(ix: Any) -> Any:
        if isinstance(ix, gast.Constant):
            if (
                ix.value is Ellipsis
                or ix.value is None
                or (isinstance(ix.value, int) and not isinstance(ix.value, bool))
            ):
                return ix.value
            raise KeyError
        if isinstance(ix, gast.Name) and ix.id in scalar_names:
            return 0  # an int position: the shape does not depend on which
        if isinstance(ix, gast.Slice):
            parts = []
            for p in (ix.lower, ix.upper, ix.step):
                if p is None:
                    parts.append(None)
                elif isinstance(p, gast.Constant) and isinstance(p.value, int):
                    parts.append(p.value)
                else:
                    raise KeyError  # a bound held in a variable: the length depends on its value
            return slice(*parts)
        if isinstance(ix, gast.Tuple):
            return tuple(index_value(x) for x in ix.elts)
        raise KeyError

    def of(s: Any) -> tuple | None:
        with np.errstate(all="ignore"):  # the operands are uninitialised memory: only shapes matter
            return of_values(s)

    def of_values(s: Any) -> tuple | None:
        op = getattr(s, "op", None)
        if op is None or not isinstance(s, gast.Assign) or not isinstance(s.targets[0], gast.Name):
            return None
        try:
            if getattr(s, "const_array", None) is not None:
                return s.const_array[0]
            if op.kind == "copy":
                return np.shape(dummy(s.value))
            if op.kind == "nondiff" and isinstance(s.value, gast.Subscript):
                return np.shape(dummy(s.value.value)[index_value(s.value.slice)])
            if op.kind != "prim":
                return None
            if op.prim == "getitem":
                return np.shape(dummy(op.args[0])[index_value(s.value.slice)])
            args = [dummy(a) for a in op.args]
            if op.prim in ELEMENTWISE:
                return tuple(np.broadcast_shapes(*[np.shape(a) for a in args]))
            fname = NUMPY_FAST.get(op.prim)
            if fname is None:
                return None
            kws = {k: gast.literal_eval(v) for k, v in op.kwargs.items()}
            return np.shape(getattr(np, fname)(*args, **kws))
        except Exception:
            return None

    bottom: set[str] = set()
    for _ in range(50):
        changed = False
        for v, ss in assigns.items():
            if v in param_shapes or v in bottom or v not in numpy_names or v in scalar_names:
                continue
            vals = {r for r in (of(s) for s in ss) if r is not None}
            if len(vals) > 1:
                bottom.add(v)
                out.pop(v, None)
                changed = True
            elif len(vals) == 1:
                r = vals.pop()
                if out.get(v) != r:
                    out[v] = r
                    changed = True
        if not changed:
            break
    for v, ss in assigns.items():
        if v in out and v not in param_shapes and v not in scalar_names and any(of(s) != out[v] for s in ss):
            return {}
    return out
