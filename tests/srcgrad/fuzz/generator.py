"""Random Python/NumPy programs for the differential fuzzer, reproducible from one integer seed.

A program is a module: `import numpy as np`, module constants the harness changes between calls
(`SCALE`, `OFFSET`, `LIMIT`, `NITER`, `ACT`), a few module-level helpers, and `prog(...)` whose
parameters are Python floats (`x`, `y`) and float64 arrays (`a`, `b` of shape (n,), `M` of shape (n, n)).
It returns a scalar.

What the generator writes: branches on data (if/elif/else), data-dependent `while` loops (bounded by a
counter or by a strictly growing variable), `for` over `range` (constant, data-dependent or a module
constant), `break`/`continue`, early returns, subscript reads (`v[i]`, slices) and writes on a local copy
(`d[i] = s`, `d[i:j] = ...`, `d[i] += s`), copies (`data * 1.0`, `data + 0.0`, `np.copy(data)`,
`data.copy()`, ...) followed by in-place updates, augmented assignment, helper calls (also helpers that
return their argument or a view of it, and one that writes into its argument and is assigned back),
tuple unpacking, elementwise math, reductions and matmul/dot.

The one rule that keeps the *plain* program well defined: in-place writes only ever target a "work"
array (`d0`, `d1`, ... and the matrix `D0`), and a work name only ever holds an array the program made
(a fresh result, a copy, or a view/alias of another work array). So the plain program never writes into
its inputs, while work arrays do share memory with each other and with read-only names (`v1 = d0[::-1]`,
`d1 = d0`, `d2, d3 = d0, d0`, `d1 = h_ident(d0)`), which is what a correct compiler must either follow or
refuse.

The program is a small tree (`Line`, `If`, `Loop`), rendered twice: for NumPy (the program under test) and
for the eager tape (`.copy()` is `.clone()`, a scalar `s += e` is `s = s + e`, because on a 0-d Tensor
`+=` is in place and Python floats are not). The minimizer edits the same tree.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------------------------- the tree


@dataclass
class Line:
    text: str
    tape: str | None = None  # the eager-tape spelling when it differs
    keep: bool = False  # a loop's counter or progress: the minimizer never removes it

    def render(self, indent: int, tape: bool) -> list[str]:
        return [" " * indent + (self.tape if tape and self.tape is not None else self.text)]


@dataclass
class If:
    arms: list  # [(condition, body)], the first is `if`, the others `elif`
    orelse: list | None = None

    def render(self, indent: int, tape: bool) -> list[str]:
        out: list[str] = []
        for k, (cond, body) in enumerate(self.arms):
            out.append(" " * indent + ("if " if k == 0 else "elif ") + cond + ":")
            out += render_body(body, indent + 4, tape)
        if self.orelse is not None:
            out.append(" " * indent + "else:")
            out += render_body(self.orelse, indent + 4, tape)
        return out


@dataclass
class Loop:
    header: str  # "for i in range(3)" or "while s2 < 2.0 and k0 < 8"
    body: list
    setup: list = field(default_factory=list)  # lines before the loop (counters)

    def render(self, indent: int, tape: bool) -> list[str]:
        out: list[str] = []
        for s in self.setup:
            out += s.render(indent, tape)
        out.append(" " * indent + self.header + ":")
        out += render_body(self.body, indent + 4, tape)
        return out


def render_body(body: list, indent: int, tape: bool) -> list[str]:
    out: list[str] = []
    for s in body:
        out += s.render(indent, tape)
    return out or [" " * indent + "pass"]


# ------------------------------------------------------------------------------------------- helpers

# name -> (source, kinds it accepts, returns an alias/view of its argument, number of arguments)
HELPERS = {
    "h_ident": ("def h_ident(u):\n    return u\n", ("s", "v"), True, 1),
    "h_view": ("def h_view(u):\n    return u[:]\n", ("v",), True, 1),
    "h_rev": ("def h_rev(u):\n    return u[::-1]\n", ("v",), True, 1),
    "h_affine": ("def h_affine(u):\n    return u * {c1} + np.sin(u) * {c2}\n", ("s", "v"), False, 1),
    "h_branch": (
        "def h_branch(u):\n    if np.sum(u) > {c1}:\n        return u * 2.0\n    return np.tanh(u)\n",
        ("s", "v"), False, 1),
    "h_loop": (
        "def h_loop(u):\n    for k in range(2):\n        u = u * 0.5 + np.cos(u) * {c2}\n    return u\n",
        ("s", "v"), False, 1),
    "h_glob": ("def h_glob(u):\n    return u * SCALE + OFFSET\n", ("s", "v"), False, 1),
    "h_act": ("def h_act(u):\n    return ACT(u) * {c1}\n", ("s", "v"), False, 1),
    "h_early": (
        "def h_early(u):\n    if np.sum(u) > {c1}:\n        return np.sin(u)\n    for k in range(3):\n"
        "        if np.sum(u) > 1.0:\n            break\n        u = u + 0.5\n    return u\n",
        ("s", "v"), True, 1),
    "h_write": (
        "def h_write(u):\n    w = u.copy()\n    w[0] = np.sum(u) * {c2}\n    return w\n", ("v",), False, 1),
    "h_pair": ("def h_pair(u, w):\n    return u + w, u * w\n", ("s", "v"), False, 2),
    # writes into its argument; only ever called on a work array (the plain program owns it)
    "h_inplace": ("def h_inplace(u):\n    u[0] = u[1] * {c1}\n    return u\n", ("v",), True, 1),
}

GLOBALS = ("SCALE", "OFFSET", "LIMIT", "NITER", "ACT")
ACTS = ("sin", "tanh", "cos")


@dataclass
class Program:
    seed: int
    n: int
    params: list  # [(name, kind)] kind in "s" (Python float), "v" (n,), "m" (n, n)
    helpers: dict  # name -> rendered source
    globals_a: dict  # module constants at the first call
    globals_b: dict  # ... and after the harness changes them
    body: list

    def module_source(self, tape: bool = False) -> str:
        lines = ["import numpy as np", ""]
        for k in GLOBALS:
            v = self.globals_a[k]
            lines.append(f"{k} = np.{v}" if k == "ACT" else f"{k} = {v!r}")
        lines.append("")
        for name in sorted(self.helpers):
            lines += ["", self.helpers[name].rstrip("\n"), ""]
        lines += ["", "def prog(" + ", ".join(p for p, _ in self.params) + "):"]
        lines += render_body(self.body, 4, tape)
        text = "\n".join(lines) + "\n"
        return text.replace(".copy()", ".clone()") if tape else text

    def used_helpers(self) -> set:
        text = "\n".join(render_body(self.body, 0, False))
        used = {h for h in self.helpers if h + "(" in text}
        return used


# ------------------------------------------------------------------------------------------ generator


class _Gen:
    def __init__(self, seed: int, attempt: int):
        self.r = random.Random(f"srcgrad-fuzz:{seed}:{attempt}")
        self.seed = seed
        self.n = self.r.choice((3, 4))
        self.counter = 0
        self.helpers: dict[str, str] = {}
        self.stmts_left = self.r.randint(4, 12)

    # --- names -------------------------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, lo: float = -1.5, hi: float = 1.5) -> str:
        return repr(round(self.r.uniform(lo, hi), 2))

    def helper(self, kind: str, alias_ok: bool, nargs: int = 1) -> str | None:
        names = [h for h, (_, kinds, alias, k) in HELPERS.items()
                 if kind in kinds and k == nargs and (alias_ok or not alias) and h != "h_inplace"]
        if not names:
            return None
        h = self.r.choice(names)
        if h not in self.helpers:
            self.helpers[h] = HELPERS[h][0].format(c1=self.const(0.3, 1.5), c2=self.const(0.2, 0.9))
        return h

    # --- expressions: each returns (text, safe); safe = fresh, or a view of work arrays only ---------
    def scalar(self, env: dict, depth: int = 0) -> str:
        r = self.r
        scal = [n for n, k in env.items() if k == "s"]
        vecs = [n for n, k in env.items() if k in ("v", "d")]
        mats = [n for n, k in env.items() if k in ("m", "D")]
        leaf = depth >= 2 or r.random() < 0.3
        if leaf:
            choices = ["const"] * 1 + ["svar"] * (4 if scal else 0) + ["vidx"] * (2 if vecs else 0) + \
                ["glob"] * 1
            c = r.choice(choices)
            if c == "const":
                return self.const()
            if c == "svar":
                return r.choice(scal)
            if c == "vidx":
                return f"{r.choice(vecs)}[{r.randrange(-self.n, self.n)}]"
            return r.choice(("SCALE", "OFFSET"))
        options = ["bin", "bin", "unary", "unary", "glob"]
        if vecs:
            options += ["red", "red", "dot"]
        if mats:
            options += ["mred"]
        options += ["helper", "safe_fn"]
        c = r.choice(options)
        a = self.scalar(env, depth + 1)
        if c == "bin":
            op = r.choice(("+", "-", "*", "+", "*"))
            return f"({a} {op} {self.scalar(env, depth + 1)})"
        if c == "unary":
            return f"np.{r.choice(('sin', 'cos', 'tanh'))}({a})"
        if c == "safe_fn":
            f = r.choice(("exp", "log", "sqrt", "abs"))
            if f == "exp":
                return f"np.exp({a} * 0.3)"
            if f == "log":
                return f"np.log({a} * {a} + 1.0)"
            if f == "sqrt":
                return f"np.sqrt({a} * {a} + 0.5)"
            return f"abs({a})"
        if c == "glob":
            return f"({a} * {r.choice(('SCALE', 'OFFSET'))})"
        if c == "red":
            v = self.vector(env, depth + 1)[0]
            f = r.choice(("sum", "mean", "max", "sum", "slice"))
            if f == "slice":
                i = r.randrange(0, self.n - 1)
                return f"np.sum({v}[{i}:])"
            return f"np.{f}({v})"
        if c == "dot":
            v = self.vector(env, depth + 1)[0]
            w = self.vector(env, depth + 1)[0]
            return r.choice((f"np.dot({v}, {w})", f"({v} @ {w})"))
        if c == "mred":
            m = r.choice(mats)
            return r.choice((f"np.sum({m} * {m})", f"np.sum({m}[{r.randrange(self.n)}])",
                             f"{m}[{r.randrange(self.n)}, {r.randrange(self.n)}]"))
        h = self.helper("s", alias_ok=True)
        return f"{h}({a})"

    def vector(self, env: dict, depth: int = 0) -> tuple[str, bool]:
        r = self.r
        vecs = [n for n, k in env.items() if k in ("v", "d")]
        mats = [n for n, k in env.items() if k in ("m", "D")]
        if not vecs:
            # a fresh vector from scalars
            return f"(np.ones({self.n}) * {self.scalar(env, depth + 1)})", True
        leaf = depth >= 2 or r.random() < 0.35
        if leaf:
            v = r.choice(vecs)
            return v, env[v] == "d"
        c = r.choice(["bin", "bin", "scale", "unary", "unary", "view", "helper", "mat", "glob"])
        if c == "mat" and not mats:
            c = "unary"
        if c == "bin":
            a = self.vector(env, depth + 1)[0]
            b = self.vector(env, depth + 1)[0]
            return f"({a} {r.choice(('+', '-', '*'))} {b})", True
        if c == "scale":
            a = self.vector(env, depth + 1)[0]
            return f"({a} * {self.scalar(env, depth + 1)})", True
        if c == "unary":
            a = self.vector(env, depth + 1)[0]
            f = r.choice(("sin", "cos", "tanh", "tanh", "exp", "log", "sqrt"))
            if f == "exp":
                return f"np.exp(np.tanh({a}))", True
            if f == "log":
                return f"np.log({a} * {a} + 1.0)", True
            if f == "sqrt":
                return f"np.sqrt({a} * {a} + 0.1)", True
            return f"np.{f}({a})", True
        if c == "glob":
            a = self.vector(env, depth + 1)[0]
            return r.choice((f"({a} * SCALE)", f"({a} + OFFSET)", f"ACT({a})")), True
        if c == "view":
            v = r.choice(vecs)
            return f"{v}[::-1]", env[v] == "d"
        if c == "mat":
            m = r.choice(mats)
            a = self.vector(env, depth + 1)[0]
            return r.choice((f"({m} @ {a})", f"np.dot({m}, {a})", f"({a} @ {m})", f"({m}.T @ {a})")), True
        a, safe = self.vector(env, depth + 1)
        h = self.helper("v", alias_ok=True)
        return f"{h}({a})", safe if HELPERS[h][2] else True

    def copy_of(self, env: dict) -> str:
        v = self.vector(env, 2 if self.r.random() < 0.7 else 1)[0]
        return self.r.choice((f"{v} * 1.0", f"{v} + 0.0", f"np.copy({v})", f"{v}.copy()",
                              f"1.0 * {v}", f"{v} / 1.0", f"{v} - 0.0"))

    def cond(self, env: dict) -> str:
        r = self.r
        c = r.random()
        vecs = [n for n, k in env.items() if k in ("v", "d")]
        if c < 0.15:
            return f"{self.scalar(env, 1)} < LIMIT"
        if c < 0.35 and vecs:
            return f"np.sum({self.vector(env, 1)[0]}) > {self.const(-1.0, 1.0)}"
        return f"{self.scalar(env, 1)} > {self.const(-1.0, 1.0)}"

    # --- statements ---------------------------------------------------------------------------------
    def block(self, env: dict, depth: int, loop: str | None, count: int) -> list:
        out: list = []
        for _ in range(count):
            if self.stmts_left <= 0:
                break
            self.stmts_left -= 1
            out += self.stmt(env, depth, loop)
        return out

    def assign_target(self, env: dict, kind: str, depth: int) -> str:
        """An existing name of `kind` or (at the function's top level only) a new one."""
        existing = [n for n, k in env.items() if k == kind and n not in ("a", "b", "M")]
        if existing and (depth > 0 or self.r.random() < 0.5):
            return self.r.choice(existing)
        if depth > 0:
            return ""
        return self.fresh({"s": "s", "v": "v", "d": "d", "D": "D"}[kind])

    def stmt(self, env: dict, depth: int, loop: str | None) -> list:
        r = self.r
        kinds = ["sassign", "sassign", "vassign", "dcopy", "dcopy", "setitem", "setitem", "aug", "aug",
                 "if", "for", "while", "tuple", "alias", "return", "dhelper", "glocal", "mat"]
        if loop:
            kinds += ["break", "continue"]
        k = r.choice(kinds)
        works = [n for n, kk in env.items() if kk == "d"]
        if k in ("setitem", "alias", "dhelper") and not works:
            k = "dcopy"
        if k == "mat" and "M" not in env:
            k = "dcopy"
        if depth >= 2 and k in ("if", "for", "while"):
            k = "sassign"
        if k == "sassign":
            t = self.assign_target(env, "s", depth)
            if not t:
                t = r.choice([n for n, kk in env.items() if kk == "s"] or ["x"])
                if t not in env:
                    return []
            line = Line(f"{t} = {self.scalar(env)}")
            env[t] = "s"
            return [line]
        if k == "glocal":
            t = self.assign_target(env, "s", depth)
            if not t:
                return []
            g = r.choice(("SCALE", "OFFSET", "LIMIT"))
            env[t] = "s"
            return [Line(f"{t} = {g}")]
        if k == "vassign":
            t = self.assign_target(env, "v", depth)
            if not t:
                return []
            line = Line(f"{t} = {self.vector(env)[0]}")
            env[t] = "v"
            return [line]
        if k == "dcopy":
            t = self.assign_target(env, "d", depth)
            if not t:
                return []
            out = [Line(f"{t} = {self.copy_of(env)}")]
            env[t] = "d"
            # a copy is usually followed by an in-place update
            if r.random() < 0.7:
                out += self.inplace(env, t)
            return out
        if k == "setitem":
            return self.inplace(env, r.choice(works), loop)
        if k == "aug":
            if works and r.random() < 0.5:
                return self.inplace(env, r.choice(works), loop, aug_only=True)
            scal = [n for n, kk in env.items() if kk == "s"]
            if not scal:
                return []
            t = r.choice(scal)
            op = r.choice(("+", "-", "*"))
            e = self.scalar(env, 1)
            return [Line(f"{t} {op}= {e}", tape=f"{t} = {t} {op} ({e})")]
        if k == "alias":
            src = r.choice(works)
            how = r.random()
            if how < 0.3:
                t = self.assign_target(env, "d", depth)
                if not t:
                    return []
                env[t] = "d"
                return [Line(f"{t} = {src}")]
            if how < 0.55:
                t1, t2 = self.fresh("d"), self.fresh("d")
                if depth > 0:
                    return []
                env[t1] = env[t2] = "d"
                return [Line(f"{t1}, {t2} = {src}, {src}")]
            if how < 0.8:
                t = self.assign_target(env, "v", depth)
                if not t:
                    return []
                env[t] = "v"
                return [Line(f"{t} = {src}{r.choice(('[::-1]', '[:]', ''))}")]
            t = self.assign_target(env, "d", depth)
            if not t:
                return []
            h = r.choice(("h_ident", "h_view", "h_rev"))
            self.helpers.setdefault(h, HELPERS[h][0])
            env[t] = "d"
            return [Line(f"{t} = {h}({src})")]
        if k == "dhelper":
            src = r.choice(works)
            h = "h_inplace" if r.random() < 0.5 else "h_write"
            self.helpers.setdefault(h, HELPERS[h][0].format(c1=self.const(0.3, 1.5), c2=self.const(0.2, 0.9)))
            t = src if r.random() < 0.7 else self.assign_target(env, "d", depth)
            if not t:
                return []
            env[t] = "d"
            return [Line(f"{t} = {h}({src})")]
        if k == "tuple":
            how = r.random()
            scal = [n for n, kk in env.items() if kk == "s"]
            if how < 0.35 and len(scal) >= 2:
                p, q = r.sample(scal, 2)
                return [Line(f"{p}, {q} = {q}, {p}")]
            t1 = self.assign_target(env, "s", depth)
            t2 = self.assign_target(env, "s", depth)
            if not t1 or not t2 or t1 == t2:
                return []
            if how < 0.7:
                line = Line(f"{t1}, {t2} = {self.scalar(env, 1)}, {self.scalar(env, 1)}")
            else:
                h = self.helper("s", alias_ok=False, nargs=2)
                line = Line(f"{t1}, {t2} = {h}({self.scalar(env, 1)}, {self.scalar(env, 1)})")
            env[t1] = env[t2] = "s"
            return [line]
        if k == "mat":
            Ds = [n for n, kk in env.items() if kk == "D"]
            if not Ds or r.random() < 0.3:
                if depth > 0:
                    return []
                t = self.fresh("D")
                env[t] = "D"
                src = r.choice(("M", "M.T", "np.tanh(M)")) if r.random() < 0.5 else "M"
                copy = r.choice((f"{src} * 1.0", f"np.copy({src})", f"{src}.copy()", f"{src} + 0.0"))
                return [Line(f"{t} = {copy}")] + self.mat_write(env, t)
            return self.mat_write(env, r.choice(Ds))
        if k == "return":
            return [If([(self.cond(env), [Line(f"return {self.scalar(env)}")])])]
        if k in ("break", "continue"):
            return [If([(self.cond(env), [Line(k)])])]
        if k == "if":
            inner = dict(env)
            arms = [(self.cond(env), self.block(inner, depth + 1, loop, r.randint(1, 3)))]
            defined = [inner]
            if r.random() < 0.25:
                e2 = dict(env)
                arms.append((self.cond(env), self.block(e2, depth + 1, loop, r.randint(1, 2))))
                defined.append(e2)
            orelse = None
            if r.random() < 0.6:
                e3 = dict(env)
                orelse = self.block(e3, depth + 1, loop, r.randint(1, 2))
                defined.append(e3)
            else:
                defined.append(dict(env))
            # a name is defined after the if only if every path defines it (same kind)
            for name in set(defined[0]) - set(env):
                if all(d.get(name) == defined[0][name] for d in defined):
                    env[name] = defined[0][name]
            return [If(arms, orelse)]
        if k == "for":
            var = "i" if loop is None else "j"
            if loop is not None and loop.startswith("for j"):
                return []
            c = r.random()
            if c < 0.4:
                header = f"for {var} in range({r.randint(1, self.n)})"
            elif c < 0.75:
                header = f"for {var} in range(int(abs({self.scalar(env, 1)}) * 2.0) % {self.n} + 1)"
            else:
                header = f"for {var} in range(NITER)"
            inner = dict(env)
            inner[var] = "i"
            body = self.block(inner, depth + 1, header, r.randint(1, 3))
            return [Loop(header, body)]
        if k == "while":
            scal = [n for n, kk in env.items() if kk == "s"]
            kc = self.fresh("k")
            c = r.random()
            if c < 0.5 and depth == 0:
                w = self.fresh("w")
                setup = [Line(f"{w} = np.tanh({self.scalar(env, 1)})"), Line(f"{kc} = 0")]
                header = f"while {w} < {self.const(0.5, 2.5)}"
                inner = dict(env)  # the body neither reads nor writes w: it grows by 0.2 or more a trip
                body = [Line(f"{kc} += 1", keep=True),
                        Line(f"{w} = {w} + 0.3 + 0.1 * np.tanh({self.scalar(inner, 1)})", keep=True)]
                body += self.block(inner, depth + 1, header, r.randint(0, 2))
                env[w] = "s"  # defined before the loop
                return [Loop(header, body, setup)]
            if not scal:
                return []
            w = r.choice(scal)
            setup = [Line(f"{kc} = 0")]
            header = f"while {w} < {self.const(0.5, 3.0)} and {kc} < {r.randint(2, 8)}"
            inner = dict(env)
            body = [Line(f"{kc} += 1", keep=True), Line(f"{w} = {w} * 1.2 + 0.3")]
            body += self.block(inner, depth + 1, header, r.randint(0, 2))
            return [Loop(header, body, setup)]
        return []

    def inplace(self, env: dict, t: str, loop: str | None = None, aug_only: bool = False) -> list:
        r = self.r
        n = self.n
        idx_var = None
        if loop and loop.startswith("for ") and r.random() < 0.6:
            idx_var = loop.split()[1]
        idx = f"{idx_var} % {n}" if idx_var else str(r.randrange(-n, n))
        c = r.random()
        if aug_only or c < 0.35:
            op = r.choice(("+", "-", "*"))
            if r.random() < 0.5:
                return [Line(f"{t} {op}= {self.scalar(env, 1)}")]
            if r.random() < 0.5:
                return [Line(f"{t}[{idx}] {op}= {self.scalar(env, 1)}")]
            return [Line(f"{t} {op}= {self.vector(env, 1)[0]}")]
        if c < 0.75:
            return [Line(f"{t}[{idx}] = {self.scalar(env, 1)}")]
        i = r.randrange(0, n - 1)
        j = r.randint(i + 1, n)
        if r.random() < 0.5:
            return [Line(f"{t}[{i}:{j}] = {self.vector(env, 1)[0]}[{i}:{j}]")]
        return [Line(f"{t}[{i}:{j}] = {self.scalar(env, 1)}")]

    def mat_write(self, env: dict, t: str) -> list:
        r = self.r
        n = self.n
        c = r.random()
        if c < 0.4:
            return [Line(f"{t}[{r.randrange(n)}, {r.randrange(n)}] = {self.scalar(env, 1)}")]
        if c < 0.6:
            return [Line(f"{t}[{r.randrange(n)}] = {self.vector(env, 1)[0]}")]
        if c < 0.8:
            return [Line(f"{t}[:, {r.randrange(n)}] = {self.vector(env, 1)[0]}")]
        return [Line(f"{t} += {self.scalar(env, 1)}")]

    def final_return(self, env: dict) -> Line:
        r = self.r
        names = [n for n, k in env.items() if k in ("s", "v", "d", "m", "D")]
        # prefer what the program computed
        local = [n for n in names if n not in ("x", "y", "a", "b", "M")]
        pick = r.sample(local, min(len(local), r.randint(1, 3))) + r.sample(names, 1)
        terms = []
        for nm in dict.fromkeys(pick):
            k = env[nm]
            if k == "s":
                terms.append(nm)
            elif k in ("v", "d"):
                terms.append(r.choice((f"np.sum({nm} * {nm})", f"np.sum(np.sin({nm}))", f"np.sum({nm})",
                                       f"np.max({nm})", f"np.dot({nm}, {nm}[::-1])")))
            else:
                terms.append(f"np.sum({nm} * {nm})")
        return Line("return " + " + ".join(terms))

    def program(self) -> Program:
        r = self.r
        params = []
        for name, kind, p in (("x", "s", 0.5), ("a", "v", 0.8), ("b", "v", 0.4), ("y", "s", 0.3),
                              ("M", "m", 0.25)):
            if r.random() < p:
                params.append((name, kind))
        if not params:
            params = [("a", "v")]
        env = {name: kind for name, kind in params}
        body = []
        while self.stmts_left > 0:
            body += self.block(env, 0, None, 1)
        body.append(self.final_return(env))
        ga = {"SCALE": round(r.uniform(0.5, 1.5), 2), "OFFSET": round(r.uniform(-0.5, 0.5), 2),
              "LIMIT": round(r.uniform(-0.5, 1.0), 2), "NITER": r.randint(1, 3), "ACT": r.choice(ACTS)}
        gb = {"SCALE": round(r.uniform(0.5, 1.5), 2), "OFFSET": round(r.uniform(-0.5, 0.5), 2),
              "LIMIT": round(r.uniform(-0.5, 1.0), 2), "NITER": r.randint(1, 3),
              "ACT": r.choice([a for a in ACTS if a != ga["ACT"]])}
        return Program(self.seed, self.n, params, dict(self.helpers), ga, gb, body)


def generate(seed: int, attempt: int = 0) -> Program:
    """The program for `seed` (the harness moves to `attempt` 1, 2, ... when a program is not valid at
    any of its input points: an overflow, a non-finite value)."""
    return _Gen(seed, attempt).program()


def prune_helpers(p: Program) -> Program:
    used = p.used_helpers()
    # helpers calling helpers: none do today
    return Program(p.seed, p.n, p.params, {h: s for h, s in p.helpers.items() if h in used},
                   p.globals_a, p.globals_b, p.body)


def programs():
    """A hypothesis strategy: programs drawn from integer seeds (shrinking is by seed; use the fuzzer's
    minimizer for small reproducers)."""
    from hypothesis import strategies as st  # noqa: PLC0415

    return st.integers(0, 2**32 - 1).map(generate)
