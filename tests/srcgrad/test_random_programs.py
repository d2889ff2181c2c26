"""Hypothesis writes random programs (straight-line code, branches, loops with data-dependent trip counts,
while loops); their compiled gradients must match central finite differences wherever the program is
smooth around the point (a branch or a trip count that flips inside the difference step is skipped)."""

import importlib.util
import itertools
import math
import pathlib
import tempfile

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import srcgrad as sg

_DIR = pathlib.Path(tempfile.mkdtemp(prefix="srcgrad_random_"))
_COUNTER = itertools.count()

UNARY = [
    "np.sin({})",
    "np.cos({})",
    "np.tanh({})",
    "({} * {} * 0.5)",
    "math.sin({})",
    "(-{})",
    "helper_scalar({})",
]


def helper_scalar(u):
    """A user function with a branch and a data-dependent loop, called from random programs."""
    if u > 0.2:
        u = np.sin(u) * 1.5
    for i in range(int(abs(u) * 2.0) % 3):  # noqa: B007
        u = u * 0.9 + 0.1 * np.cos(u)
    return u


BINARY = ["({} + {})", "({} - {})", "({} * {})", "({} * 0.7 + {} * 0.2)"]


@st.composite
def programs(draw):
    names = ["x", "y"]
    lines = []
    depth = draw(st.integers(2, 7))

    def expr():
        kind = draw(st.sampled_from(["unary", "binary", "const"]))
        a = draw(st.sampled_from(names))
        if kind == "unary":
            u = draw(st.sampled_from(UNARY))
            return u.format(*([a] * u.count("{}")))
        if kind == "binary":
            b = draw(st.sampled_from(names))
            return draw(st.sampled_from(BINARY)).format(a, b)
        c = draw(st.floats(-1.5, 1.5).map(lambda v: round(v, 2)))
        return f"({a} * {c})"

    def assign(indent):
        target = draw(st.sampled_from(names + [f"v{len(names)}"]))
        lines.append(" " * indent + f"{target} = {expr()}")
        if target not in names:
            names.append(target)

    for _ in range(depth):
        kind = draw(st.sampled_from(["assign", "assign", "if", "for", "while", "augassign"]))
        if kind == "assign":
            assign(4)
        elif kind == "augassign":
            t = draw(st.sampled_from(names))
            op = draw(st.sampled_from(["+=", "-=", "*="]))
            lines.append(f"    {t} {op} {expr()}")
        elif kind == "if":
            c = draw(st.sampled_from(names))
            lines.append(f"    if {c} > {draw(st.sampled_from(['0.0', '0.5', '-0.3']))}:")
            t = draw(st.sampled_from(names))
            lines.append(f"        {t} = {expr()}")
            if draw(st.booleans()):
                lines.append("    else:")
                lines.append(f"        {t} = {expr()}")
        elif kind == "for":
            c = draw(st.sampled_from(names))
            t = draw(st.sampled_from(names))
            lines.append(f"    for i in range(int(abs({c}) * 3.0) % 4 + 1):")
            lines.append(f"        {t} = {t} * 0.8 + {expr()} * 0.3")
            if draw(st.booleans()):
                lines.append(f"        if {t} > 1.0:")
                lines.append("            break")
        else:
            c = draw(st.sampled_from(names))
            lines.append(f"    w = abs({c}) + 0.3")
            lines.append("    while w < 2.0:")
            p, q = draw(st.sampled_from(names)), draw(st.sampled_from(names))
            lines.append(f"        w = w * 1.4 + 0.05 * {p} * {q}")
            names.append("w")
    out = " + ".join(draw(st.lists(st.sampled_from(names), min_size=1, max_size=3)))
    lines.append(f"    return {out}")
    return "def prog(x, y):\n" + "\n".join(lines) + "\n"


def load(src):
    path = _DIR / f"prog_{next(_COUNTER)}.py"
    path.write_text(
        "import math\nimport numpy as np\nfrom tests.srcgrad.test_random_programs import helper_scalar\n\n\n"
        + src
    )
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.prog


def central(f, x, y, i, h):
    if i == 0:
        return (f(x + h, y) - f(x - h, y)) / (2 * h)
    return (f(x, y + h) - f(x, y - h)) / (2 * h)


@settings(
    max_examples=int(__import__("os").environ.get("SRCGRAD_EXAMPLES", 60)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(programs(), st.floats(-1.2, 1.2), st.floats(-1.2, 1.2))
def test_random_program_gradients(src, x, y):
    f = load(src)
    try:
        value = f(x, y)
    except (OverflowError, ZeroDivisionError, ValueError):
        assume(False)
    assume(math.isfinite(value) and abs(value) < 1e6)
    gx, gy = sg.grad(f, wrt=(0, 1))(x, y)
    # a derivative that jumps exactly here (a trip count that changes at this very point while the value
    # stays continuous) is not what finite differences can check
    nx, ny = sg.grad(f, wrt=(0, 1))(x + 1e-7, y + 1e-7)
    px, py = sg.grad(f, wrt=(0, 1))(x - 1e-7, y - 1e-7)
    assume(all(abs(a - b) <= 1e-4 * (1 + abs(a)) for a, b in ((gx, nx), (gy, ny), (gx, px), (gy, py))))
    for i, g in enumerate((gx, gy)):
        d1 = central(f, x, y, i, 1e-6)
        d2 = central(f, x, y, i, 1e-5)
        assume(abs(d1 - d2) <= 1e-4 * (1 + abs(d1)))  # smooth here
        h = 1e-6
        fx = f(x, y)
        fwd = (f(x + h, y) - fx) / h if i == 0 else (f(x, y + h) - fx) / h
        bwd = (fx - f(x - h, y)) / h if i == 0 else (fx - f(x, y - h)) / h
        assume(abs(fwd - bwd) <= 2e-5 * (1 + abs(d1)))  # no kink (abs, max) at this point
        assert abs(g - d1) <= 1e-4 * (1 + abs(d1)), f"{src}\nd/d arg{i}: compiled {g}, numeric {d1}"
    # the generic (NumPy scalar) path agrees with the Python-float path
    gx64, gy64 = sg.grad(f, wrt=(0, 1))(np.float64(x), np.float64(y))
    assert abs(float(gx64) - gx) <= 1e-9 * (1 + abs(gx)) and abs(float(gy64) - gy) <= 1e-9 * (1 + abs(gy))


def helper_mix(u, w):
    return np.tanh(u) * 0.5 + w * 0.3


@st.composite
def array_programs(draw):
    """Programs on arrays of shape (3,): elementwise math, reductions, subscript reads and writes (also
    in loops), calls to a helper, lists built with append and stacked."""
    names = ["a", "b"]
    lines = []

    def expr():
        a = draw(st.sampled_from(names))
        b = draw(st.sampled_from(names))
        return draw(
            st.sampled_from(
                [
                    f"np.sin({a}) * {b}",
                    f"{a} * 0.5 + {b}",
                    f"np.tanh({a} - {b})",
                    f"helper_mix({a}, {b})",
                    f"{a} * np.sum({b}) * 0.1",
                    f"np.cos({a})[::-1] * 1.0",
                    f"{a} * {a} * 0.3",
                ]
            )
        )

    for _ in range(draw(st.integers(2, 6))):
        kind = draw(st.sampled_from(["assign", "setitem", "loop_setitem", "if", "while", "list"]))
        if kind == "assign":
            t = draw(st.sampled_from(names + [f"v{len(names)}"]))
            lines.append(f"    {t} = {expr()}")
            if t not in names:
                names.append(t)
        elif kind == "setitem":
            t = draw(st.sampled_from(names))
            i = draw(st.integers(0, 2))
            lines.append(f"    {t} = {t} * 1.0")
            lines.append(f"    {t}[{i}] = np.sum({draw(st.sampled_from(names))}) * 0.2")
        elif kind == "loop_setitem":
            t = draw(st.sampled_from(names))
            s = draw(st.sampled_from(names))
            lines.append(f"    for i in range(int(abs({s}[0]) * 2.0) % 3 + 1):")
            lines.append(f"        {t}[i] = {t}[i] * 0.8 + {s}[2 - i] * 0.3")
        elif kind == "if":
            c = draw(st.sampled_from(names))
            t = draw(st.sampled_from(names))
            lines.append(f"    if np.sum({c}) > 0.0:")
            lines.append(f"        {t} = {expr()}")
            lines.append("    else:")
            lines.append(f"        {t} = {t} * 0.5")
        elif kind == "while":
            t = draw(st.sampled_from(names))
            lines.append(f"    {t} = {t} * 0.1 + 0.05")
            lines.append(f"    while np.sum({t} * {t}) < 1.0:")
            lines.append(f"        {t} = {t} * 1.5 + 0.02 * np.sin({draw(st.sampled_from(names))})")
        else:
            t = draw(st.sampled_from(names))
            lines.append("    hs = []")
            lines.append("    for j in range(2):")
            lines.append(f"        {t} = np.sin({t}) + {draw(st.sampled_from(names))} * 0.1")
            lines.append(f"        hs.append({t})")
            lines.append(f"    {t} = np.sum(np.stack(hs), axis=0)")
    out = draw(st.sampled_from(names))
    lines.append(f"    return np.sum({out} * {out}) + np.sum(a)")
    return "def prog(a, b):\n" + "\n".join(lines) + "\n"


def load_arrays(src):
    path = _DIR / f"aprog_{next(_COUNTER)}.py"
    path.write_text(
        "import numpy as np\nfrom tests.srcgrad.test_random_programs import helper_mix\n\n\n" + src
    )
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.prog


@settings(
    max_examples=int(__import__("os").environ.get("SRCGRAD_EXAMPLES", 40)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(array_programs(), st.integers(0, 10_000))
def test_random_array_program_gradients(src, seed):
    f = load_arrays(src)
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=3), rng.normal(size=3)
    a0, b0 = a.copy(), b.copy()
    try:
        value = f(a.copy(), b.copy())
    except (OverflowError, ZeroDivisionError, ValueError, FloatingPointError):
        assume(False)
    assume(np.isfinite(value) and abs(value) < 1e6)
    ga, gb = sg.grad(f, wrt=(0, 1))(a, b)
    assert np.array_equal(a, a0) and np.array_equal(b, b0), "generated code wrote into an input"
    for arg, g in ((0, ga), (1, gb)):
        for k in range(3):
            for h in (1e-6, 1e-5):
                up = [a.copy(), b.copy()]
                dn = [a.copy(), b.copy()]
                up[arg][k] += h
                dn[arg][k] -= h
                d = (f(*up) - f(*dn)) / (2 * h)
                if h == 1e-6:
                    d1 = d
            assume(abs(d1 - d) <= 1e-4 * (1 + abs(d1)))
            assert abs(g[k] - d1) <= 1e-4 * (1 + abs(d1)), f"{src}\nd/d arg{arg}[{k}]: {g[k]} vs {d1}"
