"""`srcgrad.viz.make_dot` on the graphs of the PyTorch autograd tutorial (the seed document, and
examples/autograd_tutorial.py): one box per grad_fn under PyTorch's names, edges as values flow,
AccumulateGrad fed by the leaf (with its shape and parameter name), saved values' shapes on request."""

import re
from collections import Counter

import numpy as np
import pytest

import srcgrad as torch
from srcgrad import viz
from srcgrad.viz import Dot, make_dot

NODE = re.compile(r'^\s*"?(\w+)"?\s*\[(.*)\]\s*$')
EDGE = re.compile(r'^\s*"?(\w+)"?\s*->\s*"?(\w+)"?\s*(?:\[(.*)\])?\s*$')
LABEL = re.compile(r'label=(?:"((?:[^"\\]|\\.)*)"|(\w+))', re.S)
COLOR = re.compile(r'fillcolor="?(\w+)"?')


def parse(source):
    """(nodes: id -> (label, fillcolor or None), edges: list of (tail, head, attrs)) of DOT text."""
    nodes, edges = {}, []
    text = re.sub(r'"((?:[^"\\]|\\.)*)"', lambda m: '"' + m.group(1).replace("\n", "\\n") + '"', source)
    for line in text.splitlines():
        if (m := EDGE.match(line)) is not None:
            edges.append((m.group(1), m.group(2), m.group(3) or ""))
        elif (m := NODE.match(line)) is not None and m.group(1) not in ("graph", "node", "edge"):
            lab = LABEL.search(m.group(2))
            color = COLOR.search(m.group(2))
            label = (lab.group(1) if lab.group(1) is not None else lab.group(2)).replace("\\n", "\n")
            nodes[m.group(1)] = (label, color.group(1) if color else None)
    return nodes, edges


def by_label(nodes):
    return {label: nid for nid, (label, _) in nodes.items()}


@pytest.fixture(params=["dot", "graphviz"])
def backend(request, monkeypatch):
    """Both results: the DOT text without the graphviz package, and graphviz.Digraph when installed."""
    if request.param == "graphviz":
        pytest.importorskip("graphviz", reason="graphviz (optional) renders make_dot's graphs")
    else:
        monkeypatch.setattr(viz, "_new_graph",
                            lambda: Dot(graph_attr=viz.GRAPH_ATTR, node_attr=viz.NODE_ATTR))
    return request.param


def tutorial_chain():
    a = torch.linspace(0.0, 2.0 * np.pi, steps=25, requires_grad=True)
    b = torch.sin(a)
    c = 2 * b
    d = c + 1
    out = d.sum()
    return a, out


def test_tutorial_chain(backend):
    """The tutorial's d.grad_fn walk: Sum <- Add <- Mul <- Sin <- AccumulateGrad <- a (25)."""
    a, out = tutorial_chain()
    dot = make_dot(out, params={"a": a})
    nodes, edges = parse(dot.source)
    ids = by_label(nodes)
    chain = ["a\n (25)", "AccumulateGrad", "SinBackward0", "MulBackward0", "AddBackward0", "SumBackward0",
             "\n ()"]
    assert sorted(label for label, _ in nodes.values()) == sorted(chain)
    assert sorted((t, h) for t, h, _ in edges) == sorted(
        (ids[x], ids[y]) for x, y in zip(chain, chain[1:], strict=False))
    assert nodes[ids["a\n (25)"]][1] == "lightblue" and nodes[ids["\n ()"]][1] == "darkolivegreen1"
    # the picture is of a working graph: the gradient the tutorial prints, 2 cos(a)
    out.backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * np.cos(a.detach().numpy()), rtol=1e-5, atol=1e-6)


def test_saved_values_have_their_shapes(backend):
    a, out = tutorial_chain()
    nodes, edges = parse(make_dot(out, show_saved=True).source)
    saved = [(nodes[t], nodes[h][0]) for t, h, attrs in edges if "none" in attrs]
    # sin(a) and 2 * sin(a) keep their input, shaped like a
    assert sorted(head for _, head in saved) == ["MulBackward0", "SinBackward0"]
    assert all(color == "orange" and label.endswith("\n (25)") for (label, color), _ in saved)
    # without show_saved there is none
    nodes, edges = parse(make_dot(out).source)
    assert not any("none" in attrs for *_, attrs in edges)


class TinyModel(torch.nn.Module):
    """The tutorial's model (smaller): Linear, ReLU, Linear."""

    def __init__(self):
        super().__init__()
        self.layer1 = torch.nn.Linear(20, 8)
        self.relu = torch.nn.ReLU()
        self.layer2 = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.layer2(self.relu(self.layer1(x)))


def test_tutorial_model_names_its_parameters(backend):
    torch.manual_seed(0)
    model = TinyModel()
    x = torch.randn(4, 20)
    ideal = torch.randn(4, 3)
    loss = (ideal - model(x)).pow(2).sum()
    nodes, edges = parse(make_dot(loss, params=dict(model.named_parameters())).source)
    labels = Counter(label for label, _ in nodes.values())
    assert labels["AccumulateGrad"] == 4
    for name, p in model.named_parameters():
        leaf = f"{name}\n ({', '.join(map(str, p.shape))})"
        assert labels[leaf] == 1
        leaf_id = by_label(nodes)[leaf]
        (head,) = [h for t, h, _ in edges if t == leaf_id]       # a leaf feeds its AccumulateGrad only
        assert nodes[head][0] == "AccumulateGrad"
    assert {"PowBackward0", "SumBackward0", "SubBackward0", "ReluBackward0"} <= set(labels)
    # every edge joins drawn nodes, every grad_fn box but the last feeds something
    assert all(t in nodes and h in nodes for t, h, _ in edges)
    tails = {t for t, _, _ in edges}
    assert all(nid in tails for nid, (label, color) in nodes.items() if color is None)
    # the graph matches what backward computes: layer2.bias gets d loss/d prediction summed over the batch
    loss.backward()
    pred = model(x).detach().numpy()
    np.testing.assert_allclose(model.layer2.bias.grad.numpy(), (2 * (pred - ideal.numpy())).sum(0), rtol=1e-4,
                               atol=1e-5)


def test_a_value_used_twice_has_one_box_and_two_edges():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    nodes, edges = parse(make_dot(y).source)
    ids = by_label(nodes)
    assert Counter((t, h) for t, h, _ in edges)[(ids["AccumulateGrad"], ids["MulBackward0"])] == 2


def test_several_outputs_and_save(tmp_path):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    dot = make_dot((x.exp().sum(), x.sin().sum()))
    nodes, _ = parse(dot.source)
    labels = Counter(label for label, _ in nodes.values())
    assert labels["\n ()"] == 2 and labels["AccumulateGrad"] == 1 and labels["\n (2)"] == 1
    if isinstance(dot, Dot):
        path = dot.save(tmp_path / "g.dot")
        assert open(path).read() == dot.source == str(dot)


def test_refuses_what_is_not_a_tensor():
    with pytest.raises(TypeError, match="not of a ndarray"):
        make_dot(np.ones(3))
