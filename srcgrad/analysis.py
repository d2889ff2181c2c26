"""Stage 3: facts about normalized code that the transforms need.

- `activity`: which variables are *active*: they depend on a differentiated input through differentiable
  operations (varied) AND the output depends on them through differentiable operations (useful). Only
  statements that assign an active variable get an adjoint; only active operands receive contributions.
- What each variable holds (Python number, NumPy array of which shape) is the fact pass's
  (`srcgrad.facts`).
- `walk_assigns` and helpers shared by the transforms.

All analyses are flow-insensitive per variable (a variable is active if any assignment makes it so),
which is conservative: it may keep an adjoint that is always zero, never drop one that is not.
"""

from __future__ import annotations

from typing import Any, Iterator

import gast

from srcgrad.templates import table

DIFF_KINDS = ("prim", "copy", "call", "opaque", "pack", "unpack", "stack", "list_get", "list_pop")


def iter_stmts(body: list) -> Iterator[gast.stmt]:
    """Every statement, nested ones included, in source order."""
    for s in body:
        yield s
        if isinstance(s, (gast.If, gast.For, gast.While)):
            yield from iter_stmts(s.body)
            yield from iter_stmts(s.orelse)


def rewrite_statements(body: list, rewrite: Any) -> list:
    """`body` with each simple statement, nested ones included, replaced by the list `rewrite(s)`
    returns (`[s]` keeps it, `[]` drops it); the bodies of if/for/while are rewritten in place."""
    out: list = []
    for s in body:
        if isinstance(s, (gast.If, gast.For, gast.While)):
            s.body = rewrite_statements(s.body, rewrite)
            s.orelse = rewrite_statements(s.orelse, rewrite)
            out.append(s)
        else:
            out.extend(rewrite(s))
    return out


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




def _mutated_object(s: Any) -> list[str]:
    """`obj.method(v)` as a statement may store v inside obj (a stack, a dict): obj then carries v's
    derivative, so reading it back is active, and (having no rule) refused rather than silently zero."""
    if isinstance(s, gast.Expr) and getattr(s, "op", None) is not None and s.op.kind == "opaque":
        f = s.value.func if isinstance(s.value, gast.Call) else None
        if isinstance(f, gast.Attribute) and isinstance(f.value, gast.Name):
            return [f.value.id]
    return []
