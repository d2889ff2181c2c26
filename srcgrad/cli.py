"""`python -m srcgrad`: see generated code, ship it, check it, without writing Python.

    python -m srcgrad show examples/compiled_loop.py:steps_to_escape --wrt 0,1,2 \
        --signature "float, float, float"
    python -m srcgrad export mymodule:f --signature "float64[3]" -o grad_f.py
    python -m srcgrad check mymodule:f --signature "float64[3], float"

`module:function` names a function by importable module (`pkg.mod:f`) or by file (`path/to/file.py:f`);
`Class.method` after the colon reaches a static or class-level function. A signature lists argument
types: `float` and `int` are Python numbers, `float64[3]` / `float32[2, 3]` NumPy arrays (`float64[]` is
0-d); example arguments are drawn at random from it.

Built on argparse: three subcommands with a handful of options each need nothing a CLI library adds, and
the standard library keeps srcgrad's dependencies at numpy and gast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import linecache
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from srcgrad.errors import TransformError
from srcgrad.export import MODES as EXPORT_MODES
from srcgrad.export import ExportError, example_args, export_source, parse_signature

SHOW_MODES = ("grad", "value_and_grad", "vjp", "jvp", "hvp", "hessian")


class CliError(Exception):
    """A mistake on the command line (bad target, bad signature): printed without a traceback."""


# ------------------------------------------------------------------------------------------- targets
def load_target(target: str) -> Callable:
    """The function `module:function` names (`file.py:function` loads the file as a module). What the
    module prints while it loads (a script's top-level demo) goes to stderr: stdout carries the code
    `show` prints and the module `export -o -` writes."""
    with contextlib.redirect_stdout(sys.stderr):
        return _load_target(target)


def _load_target(target: str) -> Callable:
    module_part, sep, attr_path = target.rpartition(":")
    if not sep or not module_part or not attr_path:
        raise CliError(f"{target!r}: name a function as module:function (or path/to/file.py:function)")
    if module_part.endswith(".py") or os.sep in module_part or "/" in module_part:
        path = Path(module_part)
        if not path.is_file():
            raise CliError(f"{module_part}: no such file")
        name = path.stem
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise CliError(f"{module_part}: cannot load it as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules.setdefault(name, module)
        sys.path.insert(0, str(path.resolve().parent))   # its own imports of sibling modules
        spec.loader.exec_module(module)
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise CliError(f"cannot import {module_part}: {exc}") from None
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(f"{module_part} has no {attr_path}") from None
    if not callable(obj):
        raise CliError(f"{target} is a {type(obj).__name__}, not a function")
    return obj


def parse_wrt(text: str | None) -> int | tuple[int, ...]:
    """'0' -> 0 (one gradient); '0,1' -> (0, 1) (a tuple of gradients), as the API's wrt."""
    if text is None or not text.strip():
        return 0
    try:
        parts = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise CliError(f"--wrt {text!r}: write argument positions, like 0 or 0,1") from None
    if not parts:
        raise CliError(f"--wrt {text!r}: no argument position")
    return parts[0] if len(parts) == 1 and "," not in text else tuple(parts)


def _signature_args(text: str | None) -> tuple | None:
    if text is None:
        return None
    try:
        return example_args(parse_signature(text))
    except ValueError as exc:
        raise CliError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- show
def generated_source(f: Callable, mode: str, wrt: int | tuple[int, ...],
                     args: tuple | None) -> tuple[str, str]:
    """(source, note): the generated code `srcgrad.<mode>(f, wrt)` runs on `args` (None: the generic
    variant, which runs on any argument types), and a one-line note on which variant it is."""
    import srcgrad as sg  # noqa: PLC0415

    transform = getattr(sg, mode)(f, wrt=wrt)
    if mode in ("grad", "value_and_grad", "vjp"):
        if args is None:
            return transform.source, ("generic variant (any argument types); --signature shows the "
                                      "specialized one")
        call = args + (None,) if mode == "vjp" else args       # vjp's source_for takes a cotangent slot
        return transform.source_for(*call), "specialized to the signature's types and shapes"
    source = getattr(transform, "source", None)
    if source is None:
        raise CliError(f"{mode} keeps no generated source")
    if mode == "jvp":
        return source, "the forward code that runs for every argument type (jvp has one variant)"
    if args is not None:
        # hvp and hessian choose their code inside the call: run it once and show what ran
        try:
            ran = _sources_run(lambda: transform(*args, *_directions(mode, args, wrt)))
        except _TookTooLong:
            ran = []
            note = f"generic variant: the call on random arguments ran over {RUN_SECONDS} s"
        except Exception as exc:       # the user's code at random arguments: show the generic variant
            ran = []
            note = f"generic variant: the call on random arguments raised {type(exc).__name__}: {exc}"
        if len(ran) == 1:
            return ran[0], "the code that ran on random arguments of the signature"
        if ran:
            return "\n\n".join(f"# ---- {i + 1} of {len(ran)}\n{text}" for i, text in enumerate(ran)), (
                f"the {len(ran)} pieces of generated code that ran, in order, on random arguments of the "
                "signature")
        return source, note
    return source, (f"generic variant (any argument types); --signature shows the code srcgrad.{mode} runs "
                    "on it")


RUN_SECONDS = 5


class _TookTooLong(Exception):
    pass


def _directions(mode: str, args: tuple, wrt: int | tuple[int, ...]) -> tuple:
    """The extra arguments of jvp (tangents) and hvp (a vector): ones shaped like each wrt argument."""
    if mode not in ("jvp", "hvp"):
        return ()

    def ones(i: int) -> Any:
        a = args[i]
        return np.ones_like(a) if isinstance(a, np.ndarray) else 1.0

    if isinstance(wrt, int):
        return (ones(wrt),)
    return (tuple(ones(i) for i in wrt),)


def _sources_run(call: Callable[[], Any]) -> list[str]:
    """Run `call`, and return the source of each piece of generated code entered from outside generated
    code (the variants the transform chose, not the helpers they call), in the order first entered."""
    from srcgrad import codegen  # noqa: PLC0415

    entered: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event != "call":
            return
        name = frame.f_code.co_filename
        if not name.startswith("<srcgrad") or name in entered:
            return
        caller = frame.f_back
        if caller is not None and caller.f_code.co_filename.startswith("<srcgrad"):
            return
        entered.append(name)

    def too_long(signum: int, frame: Any) -> None:
        raise _TookTooLong

    # a loop whose trip count depends on the data may not end at random arguments: give up after a while
    alarm = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if alarm:
        old_handler = signal.signal(signal.SIGALRM, too_long)
        signal.alarm(RUN_SECONDS)
    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            call()
    finally:
        sys.setprofile(previous)
        if alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old_handler)
    return [codegen.SOURCES.get(n) or "".join(linecache.getlines(n)) for n in entered]


def highlight(source: str, stream: Any, color: str) -> str:
    """Python syntax colors for a terminal, with pygments or rich when installed (never required)."""
    if color == "never" or (color == "auto" and not (hasattr(stream, "isatty") and stream.isatty())):
        return source
    if color == "auto" and os.environ.get("NO_COLOR"):
        return source
    try:
        from pygments import highlight as pyg_highlight  # noqa: PLC0415
        from pygments.formatters import TerminalFormatter  # noqa: PLC0415
        from pygments.lexers import PythonLexer  # noqa: PLC0415

        return pyg_highlight(source, PythonLexer(), TerminalFormatter())
    except ImportError:
        pass
    try:
        from rich.console import Console  # noqa: PLC0415
        from rich.syntax import Syntax  # noqa: PLC0415

        console = Console(force_terminal=True, width=200)
        with console.capture() as cap:
            console.print(Syntax(source, "python", theme="ansi_dark", background_color="default"))
        return cap.get()
    except ImportError:
        return source


def cmd_show(ns: argparse.Namespace) -> int:
    f = load_target(ns.target)
    wrt = parse_wrt(ns.wrt)
    args = _signature_args(ns.signature)
    source, note = generated_source(f, ns.mode, wrt, args)
    sig = f" for ({ns.signature})" if ns.signature else ""
    header = f"# srcgrad {ns.mode} of {ns.target}, wrt={wrt}{sig}: {note}\n"
    sys.stdout.write(highlight(header + source, sys.stdout, ns.color))
    return 0


# -------------------------------------------------------------------------------------------- export
def cmd_export(ns: argparse.Namespace) -> int:
    f = load_target(ns.target)
    wrt = parse_wrt(ns.wrt)
    try:
        specs = parse_signature(ns.signature)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    text = export_source(f, ns.mode, wrt, specs=specs, name=ns.name)
    if ns.output == "-":
        sys.stdout.write(text)
    else:
        Path(ns.output).write_text(text)
        print(f"wrote {ns.output}: {ns.mode} of {ns.target} for ({ns.signature}), NumPy only",
              file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------------- check
def check(f: Callable, signature: str, trials: int = 3, seed: int = 0, atol: float = 1e-5,
          rtol: float = 1e-3, eps: float = 1e-6, out: Any = None) -> bool:
    """`srcgrad.testing.gradcheck` at `trials` random points of `signature`: prints one line per point
    (pass/fail, the largest |analytic - numeric| entry) and returns whether every point passed."""
    from srcgrad import testing  # noqa: PLC0415

    out = out or sys.stdout
    try:
        specs = parse_signature(signature)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    argnums = [i for i, s in enumerate(specs) if s.kind == "array" and np.dtype(s.dtype).kind == "f"
               or s.kind == "float"]
    if not argnums:
        raise CliError(f"({signature}) has no float argument to differentiate")
    all_ok = True
    for t in range(trials):
        args = example_args(specs, seed=seed + t)
        ok = testing.gradcheck(f, args, eps=eps, atol=atol, rtol=rtol, raise_exception=False)
        worst, worst_at = 0.0, ""
        analytic = testing._analytic_jacobian(f, args, argnums)
        for i, jac in zip(argnums, analytic, strict=True):
            numeric = testing.numeric_jacobian(f, args, i, eps)
            err = np.abs(jac - numeric)
            if err.size and float(err.max()) >= worst:
                worst, worst_at = float(err.max()), f"argument {i}"
        all_ok &= ok
        print(f"{'pass' if ok else 'FAIL'}  point {t + 1}/{trials} (seed {seed + t}): "
              "max |analytic - numeric| = "
              f"{worst:.3g} at {worst_at} (tolerance {atol:g} + {rtol:g}·|numeric|)", file=out)
    print(f"gradcheck {'passed' if all_ok else 'FAILED'} for ({signature}) at {trials} random points",
          file=out)
    return all_ok


def cmd_check(ns: argparse.Namespace) -> int:
    f = load_target(ns.target)
    ok = check(f, ns.signature, trials=ns.trials, seed=ns.seed, atol=ns.atol, rtol=ns.rtol, eps=ns.eps)
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m srcgrad",
        description="See, export and check the derivative code srcgrad generates.",
        epilog='example: python -m srcgrad show mymodule:f --signature "float64[3]"')
    sub = parser.add_subparsers(dest="command", required=True, metavar="{show,export,check}")

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("target", help="module:function or path/to/file.py:function")

    def wrt(p: argparse.ArgumentParser) -> None:
        p.add_argument("--wrt", default=None, help="argument positions to differentiate: 0 (default) or 0,1")

    sig_help = 'argument types, e.g. "float64[3], float" (float, int, DTYPE[shape])'
    show = sub.add_parser("show", help="print the generated code", description="Print the generated code, "
                          "specialized to the signature's types and shapes when one is given.")
    target(show)
    show.add_argument("--mode", choices=SHOW_MODES, default="grad", help="which transform (default: grad)")
    wrt(show)
    show.add_argument("--signature", default=None, help=sig_help)
    show.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                      help="syntax colors (auto: on a terminal, with pygments or rich installed)")
    show.set_defaults(run=cmd_show)

    export = sub.add_parser("export", help="write a NumPy-only module computing the derivative",
                            description="Write a standalone module (NumPy and the standard library only) "
                            "holding the generated code for one signature and the runtime helpers it calls.")
    target(export)
    export.add_argument("-o", "--output", required=True, help="the .py file to write ('-' for stdout)")
    export.add_argument("--mode", choices=EXPORT_MODES, default="grad",
                        help="which transform (default: grad)")
    wrt(export)
    export.add_argument("--signature", required=True, help=sig_help)
    export.add_argument("--name", default=None, help="the entry point's name (default: grad_<function>)")
    export.set_defaults(run=cmd_export)

    chk = sub.add_parser("check", help="gradcheck at random inputs of a signature",
                         description="Compare srcgrad's derivatives with central finite differences at "
                         "random inputs (srcgrad.testing.gradcheck); exit status 1 on a mismatch.")
    target(chk)
    chk.add_argument("--signature", required=True, help=sig_help)
    chk.add_argument("--trials", type=int, default=3, help="random points (default 3)")
    chk.add_argument("--seed", type=int, default=0, help="seed of the first point (default 0)")
    chk.add_argument("--atol", type=float, default=1e-5)
    chk.add_argument("--rtol", type=float, default=1e-3)
    chk.add_argument("--eps", type=float, default=1e-6, help="finite-difference step")
    chk.set_defaults(run=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a usage or transform error)."""
    ns = build_parser().parse_args(argv)
    try:
        return ns.run(ns)
    except (CliError, ExportError) as exc:
        print(f"python -m srcgrad {ns.command}: {exc}", file=sys.stderr)
        return 2
    except TransformError as exc:
        print(f"python -m srcgrad {ns.command}: srcgrad cannot differentiate this:\n{exc}", file=sys.stderr)
        return 2
