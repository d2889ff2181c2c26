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

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Activity:
    """Which values carry a derivative: `varied` (they depend on a differentiated input through
    differentiable operations), `useful` (the output depends on them so), `active` (both)."""

    active: frozenset[str]
    varied: frozenset[str]
    useful: frozenset[str]


def activity(body: list, wrt: set[str], outputs: set[str], mutable: set[str] = frozenset(),
             stacks: set[str] = frozenset(), never: set[str] = frozenset()) -> Activity:
    """Activity of a normalized body, the one analysis both modes read (reverse mode: the adjoint of
    each active statement; forward mode: the tangent of each).

    Each statement is an edge from the names its differentiable operands read to the names it binds:
    `lst.append(v)` flows v into lst; `obj.method(v)` as a statement may store v in obj (`_mutated_object`);
    a call may fill the `mutable` lists (local lists and stacks) it is given. `stacks` are the stacks of
    code srcgrad generated (forward over reverse): always active (they carry tangents), `S.push(v)` flows
    v into S, and a pop restores a value the same variable had before, so it makes the variable active
    only through its other assignments: only a name that nothing but pops assigns (the saved values an
    `f_adj` restores) takes its activity from the stack. Names in `never` carry no derivative whatever
    flows into them (the ranges an adjoint loop walks back over)."""
    edges: list[tuple[list[str], list[str]]] = []      # (targets, sources)
    assigned_other: set[str] = set()
    for s in iter_stmts(body):
        if not (isinstance(s, gast.Assign) and stack_method(s.value, stacks, ("pop", "pop2"))):
            assigned_other.update(targets_of(s))
    for s in iter_stmts(body):
        op = getattr(s, "op", None)
        if op is None:
            continue
        if op.kind == "append":
            lst, item = op.args
            if isinstance(item, gast.Name):
                edges.append(([lst.id], [item.id]))
            continue
        if op.kind not in DIFF_KINDS:
            continue
        srcs = [n for _, n in diff_operands(op)]
        if op.kind == "list_pop":
            srcs = [op.args[0].id]
        tgts = list(targets_of(s)) + _mutated_object(s)
        if isinstance(s, gast.Assign) and stack_method(s.value, stacks, ("pop", "pop2")):
            tgts = [t for t in tgts if t not in assigned_other]
        if op.kind == "call":
            tgts += [n for n in srcs if n in mutable or n in stacks]
        if isinstance(s, gast.Expr):
            push = stack_method(s.value, stacks, ("push", "append"))
            if push is not None:
                tgts = [push]
        edges.append((tgts, srcs))
    varied = _closure(set(wrt) | set(stacks), edges, forward=True, never=set(never))
    useful = _closure(set(outputs) | set(stacks), edges, forward=False, never=set())
    return Activity(frozenset(varied & useful), frozenset(varied), frozenset(useful))


def _closure(start: set[str], edges: list, forward: bool, never: set[str]) -> set[str]:
    """The names reached from `start` along `edges` (sources to targets, or back with forward=False)."""
    reached = set(start)
    changed = True
    while changed:
        changed = False
        for tgts, srcs in edges:
            frm, to = (srcs, tgts) if forward else (tgts, srcs)
            if any(n in reached for n in frm):
                for t in to:
                    if t not in reached and t not in never:
                        reached.add(t)
                        changed = True
    return reached


def stack_method(e: Any, stacks: set[str], meth: str | tuple[str, ...]) -> str | None:
    """The stack's name if `e` is `S.<meth>(...)` for a stack S."""
    meths = (meth,) if isinstance(meth, str) else meth
    if isinstance(e, gast.Call) and isinstance(e.func, gast.Attribute) and e.func.attr in meths and \
            isinstance(e.func.value, gast.Name) and e.func.value.id in stacks:
        return e.func.value.id
    return None


def _mutated_object(s: Any) -> list[str]:
    """`obj.method(v)` as a statement may store v inside obj (a stack, a dict): obj then carries v's
    derivative, so reading it back is active, and (having no rule) refused rather than silently zero."""
    if isinstance(s, gast.Expr) and getattr(s, "op", None) is not None and s.op.kind == "opaque":
        f = s.value.func if isinstance(s.value, gast.Call) else None
        if isinstance(f, gast.Attribute) and isinstance(f.value, gast.Name):
            return [f.value.id]
    return []
