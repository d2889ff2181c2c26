"""The differential oracle: one generated program through every engine, compared with each other and with
central finite differences, with every input checked unchanged after every call.

Engines: `sg.grad` (compiled reverse), `sg.jvp` (compiled forward, against the gradient dotted with a
random tangent), the eager tape (the same program with `np` bound to a thin namespace over srcgrad's
Tensor functions, inputs as float64 Tensors that require grad, then `backward()`), and central finite
differences of the plain NumPy program at two step sizes (a point where they disagree is on or near a
kink or a jump: a flipped branch, `max`, `abs`, a trip count; another input point is drawn, and where none
is smooth only the engines are compared with each other).

Each program runs in two phases: with the module constants it was written with, then (same compiled
`G`/`J` objects, and a freshly built `sg.grad`) after the harness changed them, so a value frozen at
build time shows as a wrong gradient or value.

Verdicts: `ok`; `wrong` (a value or derivative that disagrees, or an input array modified); `crash` (an
exception from srcgrad that is not `TransformError`, while the plain program runs fine there, or a run
past the time limit); `refused` (`TransformError`; `reason` is its message's first line with the user's
names normalized, to group them). `invalid` programs (the plain program fails or overflows at every
input point) are redrawn by the harness and never counted. The tape only ever adds `wrong` (a value or
gradient that disagrees); where it cannot run a program (a NumPy spelling Tensors lack, PyTorch's own
in-place rules) the reason is recorded under `tape_skip`.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
import re
import signal
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import srcgrad as sg
from srcgrad import TransformError

from .generator import Program

STATUS_ORDER = {"ok": 0, "refused": 1, "crash": 2, "wrong": 3}
FD_STEPS = (1e-6, 1e-5)
POINTS = 4  # input points tried per phase before settling for engine-vs-engine checks only

_DIR: Path | None = None
_COUNTER = itertools.count()


def _tmpdir() -> Path:
    global _DIR
    if _DIR is None:
        _DIR = Path(tempfile.mkdtemp(prefix=f"srcgrad_fuzz_{os.getpid()}_"))
        sys.path.insert(0, str(_DIR))
    return _DIR


class Timeout(Exception):
    pass


@dataclass
class Outcome:
    seed: int
    status: str = "ok"
    what: str = ""  # the failure's kind, e.g. "grad vs finite differences" (the minimizer keeps it)
    detail: str = ""  # expected vs got, the phase, the inputs
    reason: str = ""  # a refusal's or crash's first line, names normalized (grouping key)
    fd_checked: bool = False
    tape: str = "ok"  # "ok" or "skip: <reason>"
    events: list = field(default_factory=list)
    points: dict = field(default_factory=dict)  # phase -> the input point's arguments
    phase: int = 0

    def signature(self) -> str:
        return f"{self.status}: {self.what}" if self.status in ("wrong", "crash") else self.status

    def record(self, status: str, what: str, detail: str = "", reason: str = "") -> None:
        if status == "wrong" and self.phase:
            what += " (after the module constants changed)"
        self.events.append((status, what, detail))
        if STATUS_ORDER[status] > STATUS_ORDER[self.status]:
            self.status, self.what, self.detail, self.reason = status, what, detail, reason


class Invalid(Exception):
    """The plain program fails or overflows at every input point."""


# ------------------------------------------------------------------------------------------- loading


def load(src: str, tag: str = "p") -> Any:
    """Write `src` to a fresh .py file and import it as a fresh module (srcgrad reads source with
    inspect)."""
    d = _tmpdir()
    name = f"fz_{tag}_{os.getpid()}_{next(_COUNTER)}"
    path = d / f"{name}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def unload(mod: Any) -> None:
    sys.modules.pop(mod.__name__, None)
    try:
        os.unlink(mod.__file__)
    except OSError:
        pass


def _unary(name: str, x: Any) -> Any:
    return getattr(sg, name)(x) if isinstance(x, sg.Tensor) else getattr(np, name)(x)


class TapeNP:
    """`np` for the tape's copy of a program: Tensor arguments go to srcgrad's functions."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def _t(*xs: Any) -> bool:
        return any(isinstance(x, sg.Tensor) for x in xs)

    sin = staticmethod(lambda x: _unary("sin", x))
    cos = staticmethod(lambda x: _unary("cos", x))
    tanh = staticmethod(lambda x: _unary("tanh", x))
    exp = staticmethod(lambda x: _unary("exp", x))
    log = staticmethod(lambda x: _unary("log", x))
    sqrt = staticmethod(lambda x: _unary("sqrt", x))
    abs = staticmethod(lambda x: _unary("abs", x))

    @staticmethod
    def sum(x: Any) -> Any:
        return x.sum() if isinstance(x, sg.Tensor) else np.sum(x)

    @staticmethod
    def mean(x: Any) -> Any:
        return x.mean() if isinstance(x, sg.Tensor) else np.mean(x)

    @staticmethod
    def max(x: Any) -> Any:
        return x.max() if isinstance(x, sg.Tensor) else np.max(x)

    @staticmethod
    def dot(a: Any, b: Any) -> Any:
        return a @ b if TapeNP._t(a, b) else np.dot(a, b)

    @staticmethod
    def copy(x: Any) -> Any:
        return x.clone() if isinstance(x, sg.Tensor) else np.copy(x)

    @staticmethod
    def ones(n: Any) -> Any:
        return sg.ones(n, dtype=sg.float64)


TAPE_NP = TapeNP()


def set_globals(mod: Any, values: dict, tape: bool = False) -> None:
    for k, v in values.items():
        if k == "ACT":
            v = getattr(TAPE_NP if tape else np, v)
        setattr(mod, k, v)


# -------------------------------------------------------------------------------------------- helpers


def first_line(e: BaseException) -> str:
    msg = getattr(e, "message", None) if isinstance(e, TransformError) else None
    text = msg if isinstance(msg, str) else str(e)
    return (text.strip().splitlines() or [""])[0]


def normalize(text: str) -> str:
    """Group messages that differ only in the program's names, numbers and file paths."""
    text = re.sub(r"/\S+\.py", "<file>", text)
    text = re.sub(r"fz_\w+", "<mod>", text)
    text = re.sub(r"\b[svdDwk]\d+\b", "<name>", text)
    text = re.sub(r"\b[xyabM]\b", "<name>", text)
    text = re.sub(r"\b\d+(\.\d+)?\b", "<n>", text)
    return text[:160]


def copy_args(args: list) -> list:
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


_IN_PLAIN = [False]


def plain(f: Any, args: list) -> float:
    _IN_PLAIN[0] = True
    try:
        with np.errstate(all="ignore"):
            v = f(*copy_args(args))
    finally:
        _IN_PLAIN[0] = False
    return float(np.asarray(v))


def finite_differences(f: Any, args: list, h: float) -> list:
    out = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            g = np.zeros_like(a)
            for idx in np.ndindex(a.shape):
                up, dn = copy_args(args), copy_args(args)
                up[i][idx] += h
                dn[i][idx] -= h
                g[idx] = (plain(f, up) - plain(f, dn)) / (2 * h)
            out.append(g)
        else:
            up, dn = list(args), list(args)
            up[i] = a + h
            dn[i] = a - h
            out.append((plain(f, up) - plain(f, dn)) / (2 * h))
    return out


def flat(gs: Any) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(g, dtype=float)) for g in gs]) if len(gs) else np.zeros(0)


def close(got: Any, want: Any, rtol: float, atol: float = 0.0) -> bool:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return False
    scale = 1.0 + (np.max(np.abs(want)) if want.size else 0.0)
    return bool(np.all(np.abs(got - want) <= rtol * scale + atol))


def fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(fmt(x) for x in v) + ")"
    if isinstance(v, np.ndarray):
        return np.array2string(v, precision=6, separator=", ", max_line_width=200)
    try:
        return f"{float(v):.6g}"
    except (TypeError, ValueError):
        return repr(v)


def args_literal(params: list, args: list) -> str:
    parts = []
    for (name, _), a in zip(params, args, strict=False):
        if isinstance(a, np.ndarray):
            parts.append(f"{name}=np.array({a.tolist()!r})")
        else:
            parts.append(f"{name}={a!r}")
    return ", ".join(parts)


def draw_point(p: Program, k: int) -> list:
    rng = np.random.default_rng([p.seed, k, 7])
    out = []
    for _, kind in p.params:
        if kind == "s":
            out.append(round(float(rng.uniform(-1.5, 1.5)), 2))
        elif kind == "v":
            out.append(np.round(rng.normal(size=p.n), 2))
        else:
            out.append(np.round(rng.normal(size=(p.n, p.n)) * 0.6, 2))
    return out


def tangent(p: Program, args: list) -> list:
    rng = np.random.default_rng([p.seed, 11])
    return [rng.normal(size=a.shape) if isinstance(a, np.ndarray) else float(rng.normal()) for a in args]


# ---------------------------------------------------------------------------------------------- phases


@dataclass
class Point:
    args: list
    value: float
    fd: list | None  # None where no smooth point was found


def choose_point(p: Program, f: Any, phase: int) -> Point:
    valid = None
    for k in range(POINTS):
        args = draw_point(p, 10 * phase + k)
        probe = copy_args(args)
        try:
            v = plain(f, args)
            with np.errstate(all="ignore"):
                f(*probe)  # on these very arrays: the plain program must leave them as they were
        except (Timeout, Invalid):
            raise
        except Exception:  # noqa: BLE001 - the plain program fails here: another point
            continue
        if not math.isfinite(v) or abs(v) > 1e6:
            continue
        fds = []
        try:
            for h in FD_STEPS:
                fds.append(finite_differences(f, args, h))
        except (Timeout, Invalid):
            raise
        except Exception:  # noqa: BLE001
            continue
        a, b = flat(fds[0]), flat(fds[1])
        if not np.all(np.isfinite(a)):
            continue
        if not all(np.array_equal(x, y) for x, y in zip(args, probe, strict=False)):
            # the generator never writes such programs; a shrinking step that drops a copy does
            raise Invalid("the plain program modified its input")
        valid = valid or Point(args, v, None)
        if close(a, b, 1e-6) and np.max(np.abs(a), initial=0.0) < 1e6:
            return Point(args, v, fds[0])
    if valid is None:
        raise Invalid("no input point where the plain program runs")
    return valid


def _call(out: Outcome, engine: str, phase_note: str, fn: Any, *args: Any) -> tuple[bool, Any]:
    """Run one engine call; a TransformError is `refused`, anything else raised is `crash`."""
    try:
        with np.errstate(all="ignore"):
            return True, fn(*args)
    except Timeout:
        raise
    except TransformError as e:
        out.record("refused", engine, f"{engine}{phase_note}: {first_line(e)}", normalize(first_line(e)))
    except Exception as e:  # noqa: BLE001
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        msg = f"{type(e).__name__}: {first_line(e)}"
        out.record("crash", f"{engine} raised {type(e).__name__}",
                   f"{engine}{phase_note}: {msg} (at {where})", normalize(f"{engine}: {msg}"))
    return False, None


def run_phase(p: Program, mod: Any, tmod: Any, G: Any, J: Any, wrt: tuple, phase: int, out: Outcome) -> None:
    f = mod.prog
    note = " after the module constants changed" if phase else ""
    pt = choose_point(p, f, phase)
    args = pt.args
    where = f"{note} at ({args_literal(p.params, args)})"
    out.points[phase] = copy_args(args)
    if pt.fd is not None:
        out.fd_checked = True

    def unchanged(engine: str, before: list, after: list) -> None:
        for (name, _), x, y in zip(p.params, before, after, strict=False):
            if isinstance(x, np.ndarray) and not np.array_equal(x, y):
                out.record("wrong", f"input modified by {engine}",
                           f"{engine}{where}: argument {name} was {fmt(x)}, after the call {fmt(y)}")

    # compiled reverse, twice on the same arrays (a second call must give the same answer)
    grads = None
    for call in (1, 2) if G is not None else ():
        call_args = copy_args(args)
        ok, g = _call(out, "grad", note, G, *call_args)
        unchanged("grad", args, call_args)
        if not ok:
            break
        if not isinstance(g, tuple) or len(g) != len(args):
            out.record("wrong", "grad result shape", f"grad{where}: got {fmt(g)}")
            break
        for (name, _), gi, ai in zip(p.params, g, args, strict=False):
            if np.shape(gi) != np.shape(ai):
                out.record("wrong", "grad result shape",
                           f"grad{where}: d/d{name} has shape {np.shape(gi)}, {name} has {np.shape(ai)}")
                g = None
        if g is None:
            break
        if call == 1:
            grads = g
            if pt.fd is not None and not close(flat(g), flat(pt.fd), 1e-5):
                out.record("wrong", "grad vs finite differences",
                           f"grad{where}: expected (finite differences) {fmt(pt.fd)}, got {fmt(g)}")
        elif not close(flat(g), flat(grads), 1e-9):
            out.record("wrong", "grad differs between calls",
                       f"grad{where}: first call {fmt(grads)}, second call {fmt(g)}")
    if phase:
        # a transform built now must see the module as it is now
        call_args = copy_args(args)
        ok, g2 = _call(out, "grad (fresh)", note, lambda *a: sg.grad(f, wrt=wrt)(*a), *call_args)
        unchanged("grad", args, call_args)
        if ok and grads is not None and not close(flat(g2), flat(grads), 1e-9):
            out.record("wrong", "fresh grad vs cached grad",
                       f"grad{where}: sg.grad built after the change {fmt(g2)}, the one built before "
                       f"{fmt(grads)}")

    # compiled forward against the gradient (or finite differences) dotted with a tangent
    t = tangent(p, args)
    call_args = copy_args(args)
    ok, res = _call(out, "jvp", note, J, *call_args, tuple(t)) if J is not None else (False, None)
    unchanged("jvp", args, call_args)
    if ok:
        try:
            val, jt = res
        except (TypeError, ValueError):
            out.record("wrong", "jvp result shape", f"jvp{where}: got {fmt(res)}")
        else:
            if not close(val, pt.value, 1e-9):
                out.record("wrong", "jvp value", f"jvp{where}: expected value {pt.value!r}, got {fmt(val)}")
            ref = grads if grads is not None else pt.fd
            if ref is not None and flat(ref).size == flat(t).size:
                want = float(np.dot(flat(ref), flat(t)))
                src = "gradient" if grads is not None else "finite differences"
                if jt is None:
                    out.record("wrong", "jvp tangent is None",
                               f"jvp{where}: tangent {fmt(t)}: expected ({src}·tangent) {want!r}, got None")
                elif np.shape(jt) != () or not close(jt, want, 1e-5 if grads is None else 1e-7):
                    out.record("wrong", f"jvp vs {src}",
                               f"jvp{where}: tangent {fmt(t)}: expected ({src}·tangent) {want!r}, "
                               f"got {fmt(jt)}")

    # the eager tape
    run_tape(p, tmod, args, pt, grads, where, out)


def run_tape(p: Program, tmod: Any, args: list, pt: Point, grads: Any, where: str, out: Outcome) -> None:
    if not out.tape.startswith("ok"):
        return
    ts = [sg.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in args]
    stage = "forward"
    try:
        with np.errstate(all="ignore"):
            y = tmod.prog(*ts)
            stage = "backward"
            if not isinstance(y, sg.Tensor):
                out.tape = "skip: the result is not a Tensor (no input reaches it)"
                return
            y.backward()
    except Timeout:
        raise
    except Exception as e:  # noqa: BLE001
        out.tape = f"skip: {stage}: {type(e).__name__}: {normalize(first_line(e))}"
        return
    for (name, _), t, a in zip(p.params, ts, args, strict=False):
        if not np.array_equal(t.detach().numpy(), np.asarray(a)):
            out.record("wrong", "input modified by tape", f"tape{where}: argument {name} changed")
    val = float(y.item())
    if not close(val, pt.value, 1e-9):
        out.record("wrong", "tape value", f"tape{where}: expected value {pt.value!r}, got {val!r}")
    tg = [np.zeros(np.shape(a)) if t.grad is None else t.grad.detach().numpy().reshape(np.shape(a))
          for t, a in zip(ts, args, strict=False)]
    ref, src, tol = (grads, "grad", 1e-7) if grads is not None else (pt.fd, "finite differences", 1e-5)
    if ref is not None and flat(ref).size == flat(tg).size and not close(flat(tg), flat(ref), tol):
        out.record("wrong", f"tape vs {src}", f"tape{where}: expected ({src}) {fmt(ref)}, got {fmt(tg)}")


def _alarm(signum: int, frame: Any) -> None:
    if _IN_PLAIN[0]:
        raise Invalid("the plain program does not finish")  # a generator bug, never counted
    raise Timeout()


def check_program(p: Program, timeout: float = 60.0) -> Outcome:
    """Every engine on program `p`, both phases. Raises `Invalid` if the program has no valid point."""
    out = Outcome(p.seed)
    mod = load(p.module_source())
    tmod = load(p.module_source(tape=True), "t")
    tmod.np = TAPE_NP
    set_globals(tmod, p.globals_a, tape=True)
    wrt = tuple(range(len(p.params)))
    use_alarm = timeout and hasattr(signal, "SIGALRM")
    if use_alarm:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        G = _call(out, "grad", " (building it)", sg.grad, mod.prog, wrt)[1]
        J = _call(out, "jvp", " (building it)", sg.jvp, mod.prog, wrt)[1]
        run_phase(p, mod, tmod, G, J, wrt, 0, out)  # Invalid here: the harness draws another program
        set_globals(mod, p.globals_b)
        set_globals(tmod, p.globals_b, tape=True)
        out.phase = 1
        try:
            run_phase(p, mod, tmod, G, J, wrt, 1, out)
        except Invalid:
            out.events.append(("note", "no valid point after the module constants changed", ""))
    except Timeout:
        out.record("crash", "timeout", f"no answer within {timeout:.0f} s", "timeout")
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        unload(mod)
        unload(tmod)
    return out
