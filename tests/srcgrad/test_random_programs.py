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

UNARY = ["np.sin({})", "np.cos({})", "np.tanh({})", "({} * {} * 0.5)", "math.sin({})", "(-{})"]
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
            lines.append(f"        w = w * 1.4 + 0.05 * {draw(st.sampled_from(names))} * {draw(st.sampled_from(names))}")
            names.append("w")
    out = " + ".join(draw(st.lists(st.sampled_from(names), min_size=1, max_size=3)))
    lines.append(f"    return {out}")
    return "def prog(x, y):\n" + "\n".join(lines) + "\n"


def load(src):
    path = _DIR / f"prog_{next(_COUNTER)}.py"
    path.write_text("import math\nimport numpy as np\n\n\n" + src)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.prog


def central(f, x, y, i, h):
    if i == 0:
        return (f(x + h, y) - f(x - h, y)) / (2 * h)
    return (f(x, y + h) - f(x, y - h)) / (2 * h)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.floats(-1.2, 1.2), st.floats(-1.2, 1.2))
def test_random_program_gradients(src, x, y):
    f = load(src)
    try:
        value = f(x, y)
    except (OverflowError, ZeroDivisionError, ValueError):
        assume(False)
    assume(math.isfinite(value) and abs(value) < 1e6)
    gx, gy = sg.grad(f, wrt=(0, 1))(x, y)
    for i, g in enumerate((gx, gy)):
        d1 = central(f, x, y, i, 1e-6)
        d2 = central(f, x, y, i, 1e-5)
        assume(abs(d1 - d2) <= 1e-4 * (1 + abs(d1)))          # smooth here
        h = 1e-6
        fx = f(x, y)
        fwd = (f(x + h, y) - fx) / h if i == 0 else (f(x, y + h) - fx) / h
        bwd = (fx - f(x - h, y)) / h if i == 0 else (fx - f(x, y - h)) / h
        assume(abs(fwd - bwd) <= 1e-3 * (1 + abs(d1)))        # no kink (abs, max) at this point
        assert abs(g - d1) <= 1e-4 * (1 + abs(d1)), f"{src}\nd/d arg{i}: compiled {g}, numeric {d1}"
    # the generic (NumPy scalar) path agrees with the Python-float path
    gx64, gy64 = sg.grad(f, wrt=(0, 1))(np.float64(x), np.float64(y))
    assert abs(float(gx64) - gx) <= 1e-9 * (1 + abs(gx)) and abs(float(gy64) - gy) <= 1e-9 * (1 + abs(gy))
