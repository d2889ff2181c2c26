"""Transforms of functions whose differentiated arguments are pytrees, through their leaves.

`sg.grad(loss)(params, x)` with `params = {"W": W, "b": b}` runs the gradient of loss's flat variant
(srcgrad/flatten.py: one parameter per leaf) with respect to every floating leaf, and puts the leaves'
gradients back into `params`'s structure: `{"W": dW, "b": db}`, as JAX does. A leaf that cannot carry a
derivative (an int, an integer array, a string) gets None in its place. Tangents (jvp, hvp) come in the
arguments' structure and are flattened the same way.

One `Leafwise` per transform; it builds and caches one flat transform per combination of structures.
Reading a structure (a Node per container, its leaves, the cache key) costs more per call than a tiny
model's generated code, so each call read that way also makes a plan (`Leafwise.serve`): straight-line
code that checks a later call's arguments against that call's structure, one comparison per container,
and runs the flat transform and puts the gradient back into the structure with no Node, key or loop.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from srcgrad.codegen import compile_source
from srcgrad.flatten import flat_function
from srcgrad.pytrees import (
    Node,
    NotQuick,
    QuickReader,
    differentiable,
    gradient_source,
    is_object,
    is_structured,
    leaves,
    rebuild,
    structure_and_leaves,
)

MISS = QuickReader.MISS  # what `Leafwise.serve` returns where no differentiated argument is a pytree
# per Leafwise and positions: the plans tried in turn before the arguments are read the slow way (the
# least recently used one makes way for a new one), and how many are made at most (a program calling
# with ever new structures reads them the slow way from then on, and makes no code per call)
_MAX_PLANS = 8
_MAX_MADE = 32


class Trees(dict):
    """Position -> Node of the differentiated arguments that are pytrees; `leaves` keeps each one's
    leaves, read in the same pass."""

    def __init__(self) -> None:
        super().__init__()
        self.leaves: dict[int, list] = {}


def structured(args: tuple, wrt_idx: tuple[int, ...]) -> Trees:
    """The differentiated positions holding pytrees (or objects of arrays), with their structures."""
    out = Trees()
    for i in wrt_idx:
        if i < len(args):
            a = args[i]
            if isinstance(a, (dict, list, tuple)) or (
                    not _plain_leaf(a) and (is_structured(a) or is_object(a))):
                node, found = structure_and_leaves(a, objects=True)
                if node.kind not in ("leaf", "static") and node.n_leaves > 0:
                    out[i] = node
                    out.leaves[i] = found
    return out


def _plain_leaf(a: Any) -> bool:
    return isinstance(a, (np.ndarray, float, int, np.generic)) or (
        hasattr(a, "shape") and hasattr(a, "dtype"))


_differentiable = differentiable


class Leafwise:
    """Calls `make(flat_fn, flat_wrt)`'s transform with the leaves and restructures what it returns.

    kind: 'grad', 'value_and_grad', 'vjp' (the last argument is the output's cotangent, not flattened),
    'jvp' (the last argument is the tangent, structured like the differentiated arguments), 'hvp'
    (likewise the direction; H v comes back in the arguments' structure)."""

    def __init__(self, f: Callable, kind: str, wrt_idx: tuple[int, ...], single: bool,
                 make: Callable[[Callable, Any], Callable]):
        self.f, self.kind, self.wrt_idx, self.single, self.make = f, kind, wrt_idx, single, make
        self.cache: dict[tuple, tuple[Callable, list]] = {}
        # per tuple of positions read for structure: the plans made so far, most recently used first
        self.plans: dict[tuple[int, ...], list[Callable]] = {}
        self.unplanned: set = set()  # (positions, key) of calls no plan can read (not a quick nest)
        self.made = 0

    def serve(self, args: tuple, kwargs: dict, positions: tuple[int, ...], extra: Any = None) -> Any:
        """The transform's result for a call whose arguments at `positions` may be pytrees, or `MISS`
        where none is. A call whose arguments are structured as an earlier call's were (the same dict
        keys, lengths, object attributes, leaf types) runs that call's plan: generated code that checks
        the structure, reads the leaves, calls the flat transform and builds the gradient's structure
        in one function (`_plan`). Any other call reads its arguments the slow way (`structured`), and
        makes a plan for the next."""
        plans = self.plans.get(positions)
        if plans:
            for k, plan in enumerate(plans):
                out = plan(args, kwargs, extra)
                if out is not MISS:
                    if k:  # a new list, not changed in place: another thread may be reading this one
                        self.plans[positions] = [plan, *plans[:k], *plans[k + 1:]]
                    return out
        trees = structured(args, positions)
        if not trees:
            return MISS
        return self(args, kwargs, trees, extra, positions)

    def __call__(self, args: tuple, kwargs: dict, trees: dict[int, Node], extra: Any = None,
                 positions: tuple[int, ...] | None = None) -> Any:
        flat_args: list = []
        spans: dict[int, tuple[int, int]] = {}
        for i, a in enumerate(args):
            if i in trees:
                start = len(flat_args)
                known = getattr(trees, "leaves", {}).get(i)
                flat_args.extend(known if known is not None else leaves(a, trees[i]))
                spans[i] = (start, len(flat_args))
            else:
                spans[i] = (len(flat_args), len(flat_args) + 1)
                flat_args.append(a)
        diff = tuple(j for i in self.wrt_idx for j in range(*spans[i]) if _differentiable(flat_args[j]))
        key = (tuple(sorted(trees.items(), key=lambda kv: kv[0])), diff)
        hit = self.cache.get(key)
        if hit is None:
            if not diff:
                raise TypeError(f"{getattr(self.f, '__name__', 'f')}: the differentiated arguments hold "
                                "no floating-point leaves")
            flat = flat_function(self.f, trees)
            hit = self.cache[key] = (self.make(flat, diff if len(diff) > 1 else diff[0]), list(diff))
        transform, diff_list = hit
        if positions is not None and self.made < _MAX_MADE and (positions, key) not in self.unplanned:
            try:
                plan = self._plan(args, positions, trees, spans, diff_list, transform, flat_args)
            except NotQuick:
                self.unplanned.add((positions, key))
            else:
                self.made += 1
                self.plans[positions] = [plan, *self.plans.get(positions, ())][:_MAX_PLANS]
        if self.kind in ("jvp", "hvp"):
            tangent = self.flat_tangents(extra, trees, spans, diff_list)
            out = transform(*flat_args, tangent, **kwargs)
        elif self.kind == "vjp":
            out = transform(*flat_args, extra, **kwargs)
        else:
            out = transform(*flat_args, **kwargs)
        return self.restructure(out, trees, spans, diff_list, len(flat_args))

    def _plan(self, args: tuple, positions: tuple[int, ...], trees: dict[int, Node], spans: dict,
              diff: list, transform: Callable, flat_args: list) -> Callable:
        """A function `plan(args, kwargs, extra)` serving calls whose arguments are structured as `args`
        are (see `QuickReader`), or returning MISS for others. Raises NotQuick where `args` holds a
        structure `QuickReader` does not read."""
        reader = QuickReader()
        wrt = set(self.wrt_idx)
        names = [f"_a{i}" for i in range(len(args))]
        flat: list[str] = []
        for i, a in enumerate(args):
            if i in trees:
                reader.value(a, names[i], True, i in wrt, flat)
            else:
                if i in positions:
                    reader.passed(a, names[i], i in wrt)
                flat.append(names[i])
        n_flat = len(flat_args)
        if len(flat) != n_flat:
            raise NotQuick
        body = [f"if len(args) != {len(args)}: return _MISS"]
        if args:
            body.append(f"{', '.join(names)}, = args")
        body += reader.lines
        ns = reader.namespace
        ns.update(_transform=transform, _self=self, _trees=trees, _spans=spans, _diff=diff)
        call = ", ".join(flat)
        if self.kind in ("jvp", "hvp"):
            tangent = self._tangent_lines(trees, spans, diff, reader, body)
            body.append(f"_out = _transform({call}, {tangent}, **kwargs)")
        elif self.kind == "vjp":
            body.append(f"_out = _transform({call}, extra, **kwargs)")
        else:
            owner, plain, complete = getattr(transform, "__srcgrad_plain__", (None, None, None))
            if owner is transform and (complete is None or len(complete(tuple(flat_args), {})[0]) == n_flat):
                # a transform of srcgrad's own (api._make): past its check for pytrees, which the leaves
                # are not, to the code for these leaves (unless keywords are to be bound first)
                ns["_plain"] = plain
                body.append(f"_out = _plain(({call},), kwargs) if not kwargs else "
                            f"_transform({call}, **kwargs)")
            else:
                body.append(f"_out = _transform({call}, **kwargs)")
        # the gradient's structure built inline where `restructure` would regroup the gradients
        inline = type(self).restructure is Leafwise.restructure and self.kind in (
            "grad", "value_and_grad", "vjp", "hvp")
        if not inline:
            body.append(f"return _self.restructure(_out, _trees, _spans, _diff, {n_flat})")
        else:
            grads = [f"_g{j}" for j in diff]
            at = dict(zip(diff, grads, strict=True))
            parts = []
            for i in self.wrt_idx:
                start, stop = spans[i]
                parts.append(gradient_source(trees[i], [at.get(j) for j in range(start, stop)], reader.const)
                             if i in trees else at.get(start) or "None")
            result = parts[0] if self.single else f"({''.join(p + ', ' for p in parts)})"
            if self.kind == "grad":
                body.append(f"{', '.join(grads)}, = " + ("(_out,)" if len(diff) == 1 else "_out"))
                body.append(f"return {result}")
            else:
                body.append("_value, _grads = _out")
                body.append(f"{', '.join(grads)}, = " + ("(_grads,)" if len(diff) == 1 else "_grads"))
                body.append(f"return _value, {result}")
        source = "def _plan(args, kwargs, extra):\n" + "".join(f"    {line}\n" for line in body)
        return compile_source(source, "_plan", ns, f"plan of {getattr(self.f, '__name__', 'f')}")

    def _tangent_lines(self, trees: dict[int, Node], spans: dict, diff: list, reader: QuickReader,
                       body: list[str]) -> str:
        """Lines reading the tangent (`extra`) as `flat_tangents` does, appended to `body`, and the
        expression of the flat tangent(s); `flat_tangents` itself where an object or a dataclass is
        differentiated (its tangent may be given as the object or as a dict of its attributes)."""
        generic = "_self.flat_tangents(extra, _trees, _spans, _diff)"
        lines: list[str] = []
        at: dict[int, str] = {}

        def read(n: Node, var: str, start: int) -> int:
            if n.kind == "leaf":
                at[start] = var
                return start + 1
            names = [reader.fresh() for _ in n.children]
            if n.kind == "dict":
                lines.extend(f"{c} = {var}[{reader.key(k)}]" for c, k in zip(names, n.keys, strict=True))
            elif n.kind in ("list", "tuple", "namedtuple"):
                lines.append(f"{''.join(c + ', ' for c in names)}= {var}" if names else f"() = {var}")
            else:
                raise NotQuick
            for c, child in zip(names, n.children, strict=True):
                start = read(child, c, start)
            return start

        parts = [reader.fresh() for _ in self.wrt_idx]
        lines.append(f"{parts[0]} = extra" if self.single else f"{''.join(p + ', ' for p in parts)}= extra")
        try:
            for i, part in zip(self.wrt_idx, parts, strict=True):
                if i in trees:
                    read(trees[i], part, spans[i][0])
                else:
                    at[spans[i][0]] = part
            chosen = [at[j] for j in diff]
        except (NotQuick, KeyError):
            return generic
        body.extend(lines)
        return chosen[0] if len(chosen) == 1 else f"({''.join(c + ', ' for c in chosen)})"

    def flat_tangents(self, t: Any, trees: dict[int, Node], spans: dict, diff: list) -> Any:
        """The tangent(s) given in the arguments' structure, as one per differentiated leaf."""
        parts = (t,) if self.single else tuple(t)
        by_position: dict[int, Any] = {}
        for i, part in zip(self.wrt_idx, parts, strict=True):
            if i in trees:
                flat = leaves(part, trees[i])
                for k, v in enumerate(flat):
                    by_position[spans[i][0] + k] = v
            else:
                by_position[spans[i][0]] = part
        chosen = tuple(by_position[j] for j in diff)
        return chosen[0] if len(chosen) == 1 else chosen

    def regroup(self, grads: Any, trees: dict[int, Node], spans: dict, diff: list) -> Any:
        g = (grads,) if len(diff) == 1 else tuple(grads)
        at = dict(zip(diff, g, strict=True))
        out = []
        for i in self.wrt_idx:
            start, stop = spans[i]
            if i in trees:
                out.append(rebuild(trees[i], [at.get(j) for j in range(start, stop)], gradient=True))
            else:
                out.append(at.get(start))
        return out[0] if self.single else tuple(out)

    def restructure(self, out: Any, trees: dict, spans: dict, diff: list, n_flat: int) -> Any:
        if self.kind == "grad":
            return self.regroup(out, trees, spans, diff)
        if self.kind in ("value_and_grad", "vjp", "hvp"):
            value, grads = out
            return value, self.regroup(grads, trees, spans, diff)
        if self.kind == "jacobian":
            return self.regroup(out, trees, spans, diff)
        if self.kind == "hessian":  # blocks H[a][b] over the leaves: nested in the arguments' structure
            rows = (out,) if len(diff) == 1 else tuple(out)
            return self.regroup(tuple(self.regroup(r, trees, spans, diff) if len(diff) > 1 else r
                                      for r in rows) if len(diff) > 1 else rows[0], trees, spans, diff)
        return out  # jvp: (value, tangent of the output), in the output's own structure
