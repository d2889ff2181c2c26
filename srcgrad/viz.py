"""Pictures of eager graphs, in the style users know from torchviz.

    from srcgrad.viz import make_dot
    loss = model(x).pow(2).sum()
    make_dot(loss, params=dict(model.named_parameters()))          # a graphviz.Digraph, or DOT text

One box per grad_fn (`MulBackward0`, `SumBackward0`, ...), named as PyTorch names it; an
`AccumulateGrad` box for each leaf that receives a gradient, fed by a light-blue box with the leaf's
shape (and its name, from `params`); the output in green; with `show_saved=True`, the values each node
keeps for its backward in orange, with their shapes. Edges run the way values flow (input to output),
as in torchviz.

With the `graphviz` Python package installed the result is a `graphviz.Digraph` (renders in Jupyter,
`.render()` writes an image); without it, a `Dot` that holds the same DOT text in `.source` and writes
it with `.save(path)` (`dot -Tsvg graph.dot` draws it). Node ids number the nodes in the order they are
met, so the text is the same from run to run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = ["make_dot", "Dot"]

# torchviz's look
NODE_ATTR = {"style": "filled", "shape": "box", "align": "left", "fontsize": "10", "ranksep": "0.1",
             "height": "0.2", "fontname": "monospace"}
GRAPH_ATTR = {"size": "12,12"}
OUTPUT_COLOR = "darkolivegreen1"
LEAF_COLOR = "lightblue"
SAVED_COLOR = "orange"


def _quote(text: str) -> str:
    """A DOT string literal (newlines kept as DOT's \\n escapes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(attrs: Mapping[str, str]) -> str:
    return " ".join(f"{k}={_quote(v)}" for k, v in attrs.items())


class Dot:
    """DOT text of a graph (what `make_dot` returns when the graphviz package is not installed).

    Offers the part of `graphviz.Digraph` that needs no Graphviz binaries: `node`, `edge`, `.source`,
    `.save(path)`; `str(dot)` is the text too."""

    def __init__(self, name: str = "", graph_attr: Mapping[str, str] | None = None,
                 node_attr: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.graph_attr = dict(graph_attr or {})
        self.node_attr = dict(node_attr or {})
        self.body: list[str] = []

    def node(self, name: str, label: str | None = None, **attrs: str) -> None:
        if label is not None:
            attrs = {"label": label, **attrs}
        self.body.append(f"\t{_quote(name)} [{_attrs(attrs)}]" if attrs else f"\t{_quote(name)}")

    def edge(self, tail: str, head: str, **attrs: str) -> None:
        tail_head = f"{_quote(tail)} -> {_quote(head)}"
        self.body.append(f"\t{tail_head} [{_attrs(attrs)}]" if attrs else f"\t{tail_head}")

    @property
    def source(self) -> str:
        lines = [f"digraph {_quote(self.name)} {{" if self.name else "digraph {"]
        if self.graph_attr:
            lines.append(f"\tgraph [{_attrs(self.graph_attr)}]")
        if self.node_attr:
            lines.append(f"\tnode [{_attrs(self.node_attr)}]")
        lines += self.body
        lines.append("}")
        return "\n".join(lines) + "\n"

    def save(self, filename: str | Path) -> str:
        """Write the DOT text to `filename`; returns the path (as graphviz.Digraph.save does)."""
        Path(filename).write_text(self.source)
        return str(filename)

    def __str__(self) -> str:
        return self.source


def _new_graph() -> Any:
    try:
        import graphviz  # noqa: PLC0415 -- optional
    except ImportError:
        return Dot(graph_attr=GRAPH_ATTR, node_attr=NODE_ATTR)
    return graphviz.Digraph(node_attr=NODE_ATTR, graph_attr=GRAPH_ATTR)


def _size(shape: Iterable[int]) -> str:
    return "(" + ", ".join(str(int(n)) for n in shape) + ")"


def _shape_of(value: Any) -> tuple | None:
    shape = getattr(value, "shape", None)
    return None if shape is None else tuple(shape)


def _saved(fn: Any) -> list[tuple[str, tuple]]:
    """(name, shape) of the array values a grad_fn keeps for its backward: the inputs and the output its
    rules read (PrimNode), or what a custom Function saved with ctx.save_for_backward."""
    out: list[tuple[str, tuple]] = []
    args = getattr(fn, "args", None)
    if isinstance(args, tuple):
        names = tuple(getattr(fn, "param_names", ()) or ())
        uses = tuple(getattr(fn, "uses_arg", ()) or ())
        for i, a in enumerate(args):
            shape = _shape_of(a)
            if shape is None or (i < len(uses) and not uses[i]):
                continue
            out.append((names[i] if i < len(names) else f"arg{i}", shape))
        if getattr(fn, "uses_ans", False) and _shape_of(getattr(fn, "ans", None)) is not None:
            out.append(("result", _shape_of(fn.ans)))
        return out
    ctx = getattr(fn, "ctx", None)
    for i, t in enumerate(getattr(ctx, "saved_tensors", ()) or ()):
        if _shape_of(t) is not None:
            out.append((f"saved{i}", _shape_of(t)))
    return out


def make_dot(var: Any, params: Mapping[str, Any] | None = None, show_saved: bool = False) -> Any:
    """The eager graph that produced `var` (a Tensor, or a tuple/list of them) as a DOT picture.

    params: names for leaf tensors, e.g. `dict(model.named_parameters())`; a leaf's box shows its name
    and shape. show_saved: also draw the values each node saved for backward (orange), with shapes.
    Returns a `graphviz.Digraph` when the graphviz package is installed, else a `Dot` (`.source`,
    `.save(path)`).
    """
    names = {id(v): k for k, v in (params or {}).items()}
    dot = _new_graph()
    ids: dict[int, str] = {}
    alive: list[Any] = []             # ids stay unique while the objects they name are held here

    def node_id(obj: Any) -> tuple[str, bool]:
        key = id(obj)
        if key in ids:
            return ids[key], False
        ids[key] = f"n{len(ids)}"
        alive.append(obj)
        return ids[key], True

    def var_label(v: Any, name: str | None = None) -> str:
        if name is None:
            name = names.get(id(v), "")
        return f"{name}\n {_size(_shape_of(v) or ())}"

    def add_fn(fn: Any) -> str:
        nid, new = node_id(fn)
        if not new:
            return nid
        dot.node(nid, fn.name() if hasattr(fn, "name") else type(fn).__name__)
        variable = getattr(fn, "variable", None)
        if variable is not None:                      # AccumulateGrad: the leaf it fills
            vid, vnew = node_id(variable)
            if vnew:
                dot.node(vid, var_label(variable), fillcolor=LEAF_COLOR)
            dot.edge(vid, nid)
        if show_saved:
            for k, (name, shape) in enumerate(_saved(fn)):
                sid = f"{nid}_saved{k}"
                dot.node(sid, f"{name}\n {_size(shape)}", fillcolor=SAVED_COLOR)
                dot.edge(sid, nid, dir="none")
        for nxt, _ in getattr(fn, "next_functions", ()):
            if nxt is not None:
                dot.edge(add_fn(nxt), nid)
        return nid

    def add_output(v: Any) -> None:
        vid, new = node_id(v)
        if not new:
            return
        dot.node(vid, var_label(v), fillcolor=OUTPUT_COLOR)
        grad_fn = getattr(v, "grad_fn", None)
        if grad_fn is not None:
            dot.edge(add_fn(grad_fn), vid)

    outputs = var if isinstance(var, (tuple, list)) else (var,)
    for v in outputs:
        if not hasattr(v, "grad_fn"):
            raise TypeError(f"make_dot draws the graph of a Tensor, not of a {type(v).__name__}")
        add_output(v)
    return dot
