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

from srcgrad.templates import table

DIFF_KINDS = ("prim", "copy", "call", "opaque", "pack", "unpack", "stack")


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
    if op.kind in ("copy", "call", "opaque", "pack", "unpack", "stack", "append"):
        return [(i, a.id) for i, a in enumerate(op.args) if isinstance(a, gast.Name)]
    return []


def activity(body: list, wrt: set[str], outputs: set[str]) -> tuple[set[str], set[str], set[str]]:
    """(active, varied, useful) variable names."""
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
                for t in targets_of(s):
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
SCALAR_PRIMS = {
    "neg", "abs", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "square", "reciprocal", "sin",
    "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh",
    "sigmoid", "relu", "softplus", "erf", "add", "subtract", "multiply", "divide", "power", "maximum",
    "minimum", "arctan2", "hypot", "where", "sum", "mean",
}
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
            if isinstance(v, gast.Compare) or expr_ok(v):
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
NUMPY_PRIMS = SCALAR_PRIMS | {"max", "min", "matmul", "transpose", "reshape", "broadcast_to", "getitem",
                              "square", "reciprocal", "clip", "sum_to", "expand_dims", "squeeze"}


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
