"""`srcgrad.export`: a derivative written as a NumPy-only module gives srcgrad's numbers (to 1e-12) in a
process where srcgrad cannot be imported, refuses arguments it was not specialized to, and says what it
cannot copy."""

import ast
import json
import math
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import srcgrad as sg
from srcgrad.export import ArgSpec, ExportError, example_args, export_source, parse_signature

SCALE = np.array([1.0, -2.0])


def doubling_loop(x):
    """A loop whose trip count depends on the data."""
    y = x * 2.0
    while np.linalg.norm(y) < 1000.0:
        y = y * 2.0
    return np.sum(np.sin(y))


def matrix_fn(A, b):
    """Matrix-vector products, a reduction over an axis and module data (SCALE)."""
    h = np.tanh(A @ b) * SCALE
    return np.sum(h ** 2) + np.sum(np.mean(A * A, axis=0))


def newton_sqrt(a, x0):
    """Newton's iteration on Python floats until converged: a data-dependent stop, scalar code."""
    x = x0
    for _ in range(50):
        nxt = 0.5 * (x + a / x)
        if abs(nxt - x) < 1e-12:
            break
        x = nxt
    return math.sin(x) * a


def helper(u, w):
    return u * w + np.exp(-u)


def calls_helper(x, w):
    """A call to another user function: its generated forward/adjoint pair is exported too."""
    s = 0.0
    for i in range(3):
        s = s + np.sum(helper(x, w)) * (i + 1)
    return s


def writes_in_place(x):
    """In-place writes: the exported module carries the run-time checks that guard them."""
    y = np.zeros(3)
    y[0] = x[1] * 2.0
    z = y * 1.0
    z += x
    return np.sum(z * z)


# Runs in a child process: srcgrad made unimportable, the exported module loaded from its file, its result
# printed as JSON (floats by repr: exact).
CHILD = textwrap.dedent("""
    import importlib.abc, importlib.util, json, sys

    class NoSrcgrad(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "srcgrad" or name.startswith("srcgrad."):
                raise ImportError("srcgrad is not importable here")
            return None

    sys.meta_path.insert(0, NoSrcgrad())
    try:
        import srcgrad  # noqa: F401
        sys.exit("srcgrad was importable")
    except ImportError:
        pass
    import numpy as np

    spec = importlib.util.spec_from_file_location("exported", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = [np.array(a) if isinstance(a, list) else a for a in json.loads(sys.argv[3])]
    out = getattr(mod, sys.argv[2])(*args)

    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        return np.asarray(v, dtype=float).tolist()

    print(json.dumps({"out": plain(out), "srcgrad": [m for m in sys.modules if m.startswith("srcgrad")]}))
""")


def run_isolated(module_path, entry, args, tmp_path):
    """The exported module's result, computed by `python -I` in an empty directory without srcgrad."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run(
        [sys.executable, "-I", str(script), str(module_path), entry,
         json.dumps([a.tolist() if isinstance(a, np.ndarray) else a for a in args])],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["srcgrad"] == []
    return result["out"]


def imported_modules(text):
    """The top-level modules a module's source imports (anywhere in it)."""
    out = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add((node.module or ".").split(".")[0])
    return out


def assert_same(got, want):
    if isinstance(want, tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same(g, w)
        return
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float),
                               rtol=1e-12, atol=1e-12)


CASES = [
    (doubling_loop, "grad", 0, "float64[3]"),
    (matrix_fn, "grad", (0, 1), "float64[2, 3], float64[3]"),
    (newton_sqrt, "grad", (0, 1), "float, float"),
    (calls_helper, "value_and_grad", (0, 1), "float64[4], float64[4]"),
    (writes_in_place, "grad", 0, "float64[3]"),
]


@pytest.mark.parametrize(("fn", "mode", "wrt", "signature"), CASES, ids=[c[0].__name__ for c in CASES])
def test_exported_module_matches_srcgrad_without_srcgrad(fn, mode, wrt, signature, tmp_path):
    specs = parse_signature(signature)
    args = example_args(specs, seed=3)
    if fn is newton_sqrt:
        args = (2.0, 1.5)
    text = export_source(fn, mode, wrt, specs=specs)
    assert imported_modules(text) <= {"numpy", "__future__", "math", "builtins", "sys"}  # sys: refcounts
    path = tmp_path / f"{mode}_{fn.__name__}.py"
    path.write_text(text)
    got = run_isolated(path, f"{mode}_{fn.__name__}", args, tmp_path)
    want = getattr(sg, mode)(fn, wrt=wrt)(*args)
    assert_same(got, want)


def test_gradient_values_are_right(tmp_path):
    """The exported doubling loop against the closed form: d/dx sum(sin(2^k x)) = 2^k cos(2^k x)."""
    x = np.array([0.1, 0.2, 0.3])
    ns: dict = {}
    exec(compile(export_source(doubling_loop, args=(x,)), "grad_doubling_loop.py", "exec"), ns)
    k = 1
    while np.linalg.norm(2.0 ** k * x) < 1000.0:
        k += 1
    np.testing.assert_allclose(ns["grad_doubling_loop"](x), 2.0 ** k * np.cos(2.0 ** k * x), rtol=1e-13)


def test_vjp_export(tmp_path):
    def vec(x):
        return np.sin(x) * x[::-1]

    x = np.array([0.3, -1.2, 2.0])
    v = np.array([1.0, 2.0, -1.0])
    ns: dict = {}
    exec(compile(export_source(vec, "vjp", 0, args=(x,)), "vjp_vec.py", "exec"), ns)
    value, vjp = ns["vjp_vec"](x, v)
    want_value, want = sg.vjp(vec)(x, v)
    assert_same((value, vjp), (want_value, want))


def test_user_lines_are_comments_and_module_is_numpy_only():
    text = export_source(doubling_loop, args=(np.ones(3),))
    assert re.search(r"# line \d+: y = x \* 2\.0", text)                  # generated code's provenance
    assert "#     while np.linalg.norm(y) < 1000.0:" in text        # the user's function, as written
    assert imported_modules(text) <= {"numpy", "__future__", "math", "builtins", "sys"}  # sys: refcounts


def test_entry_point_refuses_other_shapes():
    ns: dict = {}
    exec(compile(export_source(doubling_loop, args=(np.ones(3),)), "g.py", "exec"), ns)
    with pytest.raises(ValueError, match=r"float64\[4\].*exported for.*float64\[3\]"):
        ns["grad_doubling_loop"](np.ones(4))
    with pytest.raises(ValueError, match="exported for"):
        ns["grad_doubling_loop"](np.ones(3, dtype=np.float32))


def test_signature_parsing():
    assert parse_signature("float64[3], float, int, float32[2, 3], float64[]") == [
        ArgSpec("array", "float64", (3,)), ArgSpec("float"), ArgSpec("int"),
        ArgSpec("array", "float32", (2, 3)), ArgSpec("array", "float64", ()),
    ]
    with pytest.raises(ValueError, match="not a NumPy dtype"):
        parse_signature("floot[3]")
    with pytest.raises(ValueError, match="needs a shape"):
        parse_signature("float64")


def test_forward_modes_are_refused_by_name():
    with pytest.raises(ExportError, match="jvp"):
        export_source(doubling_loop, "jvp", args=(np.ones(3),))


def test_tensor_arguments_are_refused_by_name():
    with pytest.raises(ExportError, match="not Tensor"):
        export_source(doubling_loop, args=(sg.ones(3),))
