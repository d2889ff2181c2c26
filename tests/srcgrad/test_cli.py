"""`python -m srcgrad show|export|check`: the code it prints is the specialized code that runs, the module
it writes computes the gradient, and check's verdict and exit status follow gradcheck."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import srcgrad as sg
from srcgrad.cli import main, parse_wrt

ROOT = Path(__file__).resolve().parents[2]

USER_MODULE = textwrap.dedent("""
    import numpy as np


    def f(x):
        y = x * 2.0
        while np.linalg.norm(y) < 1000.0:   # trip count depends on the data
            y = y * 2.0
        return np.sum(np.sin(y))


    def two(x, s):
        return np.sum(np.tanh(x) * s) + s * s


    def cube(x):
        return np.sum(x ** 3)
""")


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "usermod_cli.py"
    path.write_text(USER_MODULE)
    return path


def test_show_prints_the_specialized_code(user_file, capsys):
    assert main(["show", f"{user_file}:f", "--signature", "float64[3]"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# srcgrad grad of ")
    assert "def grad_f(x):" in out
    assert "shape=(3,)" in out                      # the shape is folded in: the specialized variant
    assert "\x1b[" not in out                       # not a terminal: no colors
    compile(out, "shown.py", "exec")                # what is printed is Python


def test_show_without_signature_prints_the_generic_code(user_file, capsys):
    assert main(["show", f"{user_file}:f"]) == 0
    out = capsys.readouterr().out
    assert "generic variant" in out and "def grad_f(x):" in out and "shape=(3,)" not in out


def test_show_source_is_what_srcgrad_runs(user_file, capsys):
    main(["show", f"{user_file}:two", "--wrt", "0,1", "--signature", "float64[2], float"])
    out = capsys.readouterr().out
    from srcgrad.cli import load_target

    two = load_target(f"{user_file}:two")
    x = np.array([0.5, -1.0])
    assert out.split("\n", 1)[1] == sg.grad(two, wrt=(0, 1)).source_for(x, 1.5)


@pytest.mark.parametrize("mode", ["value_and_grad", "vjp", "jvp", "hvp", "hessian"])
def test_show_every_mode(user_file, capsys, mode):
    assert main(["show", f"{user_file}:two", "--mode", mode, "--signature", "float64[2], float"]) == 0
    out = capsys.readouterr().out
    assert f"# srcgrad {mode} of" in out and "def " in out


def test_show_colors_on_request(user_file, capsys):
    pytest.importorskip("pygments", reason="syntax colors need pygments or rich (optional)")
    main(["show", f"{user_file}:f", "--color", "always"])
    assert "\x1b[" in capsys.readouterr().out


def test_export_writes_a_module_computing_the_gradient(user_file, tmp_path, capsys):
    out = tmp_path / "grad_two.py"
    assert main(["export", f"{user_file}:two", "--wrt", "0,1", "--signature", "float64[2], float",
                 "-o", str(out)]) == 0
    ns: dict = {}
    exec(compile(out.read_text(), str(out), "exec"), ns)
    x = np.array([0.5, -1.0])
    gx, gs = ns["grad_two"](x, 1.5)
    np.testing.assert_allclose(gx, 1.5 / np.cosh(x) ** 2, rtol=1e-14)
    assert gs == pytest.approx(np.sum(np.tanh(x)) + 3.0, rel=1e-14)


def test_check_passes_and_reports_the_error(user_file, capsys):
    assert main(["check", f"{user_file}:two", "--signature", "float64[3], float", "--trials", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("pass  point") == 2 and "max |analytic - numeric| = " in out
    worst = max(float(line.split("= ")[1].split()[0]) for line in out.splitlines() if line.startswith("pass"))
    assert worst < 1e-6


def test_check_fails_with_exit_status_1(user_file, capsys):
    # central differences with a step of 0.5 are off by h^2 = 0.25 on x**3: gradcheck must say so
    assert main(["check", f"{user_file}:cube", "--signature", "float64[2]", "--eps", "0.5",
                 "--trials", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "gradcheck FAILED" in out
    assert float(out.split("= ")[1].split()[0]) == pytest.approx(0.25, rel=1e-6)


def test_errors_are_one_line_and_exit_2(user_file, capsys):
    assert main(["show", f"{user_file}:nope"]) == 2
    assert "has no nope" in capsys.readouterr().err
    assert main(["show", "no_such_module_xyz:f"]) == 2
    assert "cannot import no_such_module_xyz" in capsys.readouterr().err
    assert main(["check", f"{user_file}:f", "--signature", "float64"]) == 2
    assert "needs a shape" in capsys.readouterr().err
    assert main(["export", f"{user_file}:f", "--signature", "float64[3]", "--mode", "vjp", "-o", "-",
                 "--wrt", "7"]) == 2
    assert "wrt=7" in capsys.readouterr().err


def test_parse_wrt():
    assert parse_wrt("0") == 0
    assert parse_wrt("0,1") == (0, 1)
    assert parse_wrt("1,") == (1,)
    assert parse_wrt(None) == 0


def test_python_dash_m_on_an_example():
    proc = subprocess.run(
        [sys.executable, "-m", "srcgrad", "show", "examples/compiled_loop.py:steps_to_escape",
         "--wrt", "0,1,2",
         "--signature", "float, float, float"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "def grad_steps_to_escape(x, y, stretch):" in proc.stdout
    assert "math." in proc.stdout or "while x * x + y * y < 1.0:" in proc.stdout


def test_show_keeps_stdout_for_the_code_when_the_module_prints(capsys):
    """examples/quickstart.py prints a demo at import: that goes to stderr, stdout is the code alone."""
    assert main(["show", str(ROOT / "examples" / "quickstart.py") + ":loss",
                 "--signature", "float64[3], float64[3]"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("# srcgrad grad of ")
    compile(captured.out, "shown.py", "exec")
    assert "finite differences" in captured.err


@pytest.mark.parametrize("mode", ["hvp", "hessian"])
def test_show_hvp_and_hessian_print_the_code_that_ran(user_file, capsys, mode):
    assert main(["show", f"{user_file}:two", "--mode", mode, "--wrt", "0", "--signature",
                 "float64[2], float"]) == 0
    out = capsys.readouterr().out
    assert "ran" in out.splitlines()[0] and "def " in out
    compile(out, "shown.py", "exec")
    main(["show", f"{user_file}:two", "--mode", mode, "--wrt", "0"])
    generic = capsys.readouterr().out
    assert "generic variant" in generic.splitlines()[0]


def test_show_wrt_two_arguments_in_every_mode(user_file, capsys):
    for mode in ("grad", "vjp", "jvp", "hvp", "hessian"):
        assert main(["show", f"{user_file}:two", "--mode", mode, "--wrt", "0,1", "--signature",
                     "float64[3], float"]) == 0, mode
        out = capsys.readouterr().out
        assert "wrt=(0, 1)" in out.splitlines()[0]
        compile(out, "shown.py", "exec")


def test_show_gives_up_running_a_call_that_does_not_end(tmp_path, capsys, monkeypatch):
    from srcgrad import cli

    monkeypatch.setattr(cli, "RUN_SECONDS", 1)
    path = tmp_path / "spins_cli.py"
    path.write_text("import numpy as np\n\n\ndef spin(x):\n    while np.sum(x * x) >= 0.0:\n"
                    "        x = x * 1.0\n    return np.sum(x * x)\n")
    assert main(["show", f"{path}:spin", "--mode", "hvp", "--signature", "float64[2]"]) == 0
    out = capsys.readouterr().out
    assert "ran over 1 s" in out.splitlines()[0] and "def " in out


def test_show_is_plain_without_pygments_or_rich(user_file, capsys, monkeypatch):
    for name in ("pygments", "pygments.formatters", "pygments.lexers", "rich", "rich.console",
                 "rich.syntax"):
        monkeypatch.setitem(sys.modules, name, None)       # import raises ImportError
    assert main(["show", f"{user_file}:f", "--color", "always"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out and "def grad_f(x):" in out
