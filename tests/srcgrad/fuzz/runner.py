"""Seeds to verdicts: redraw invalid programs, shrink failures, write reproducers, summarize."""

from __future__ import annotations

import ast
import re
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from .generator import GLOBALS, If, Line, Loop, Program, generate, prune_helpers, render_body
from .oracle import Invalid, Outcome, check_program

ATTEMPTS = 10


def run_seed(seed: int, timeout: float = 60.0) -> tuple[Program | None, Outcome | None]:
    """The verdict for `seed`: its first program (attempt 0, 1, ...) that runs at some input point."""
    for attempt in range(ATTEMPTS):
        p = generate(seed, attempt)
        try:
            return p, check_program(p, timeout)
        except Invalid:
            continue
        except Exception as e:  # noqa: BLE001 - the oracle itself failed on what srcgrad returned
            return p, _oracle_failure(seed, e)
    return None, None


def _oracle_failure(seed: int, e: Exception) -> Outcome:
    o = Outcome(seed)
    msg = f"{type(e).__name__}: {e}"
    o.record("crash", "the oracle could not compare the results", msg, msg[:160])
    return o


def failure_key(o: Outcome) -> str:
    """What the minimizer keeps: the verdict and its kind (and for a crash, the exception's message)."""
    if o.status == "crash":
        return f"crash: {o.what}: {o.reason}"
    return o.signature()


# ------------------------------------------------------------------------------------------- shrinking


def _edits(body: list):
    """Every one-step simplification of a statement list, as new lists (the originals stay intact)."""
    for i, s in enumerate(body):
        rest_before, rest_after = body[:i], body[i + 1:]
        if isinstance(s, Line) and s.keep:
            continue
        yield rest_before + rest_after  # drop it
        if isinstance(s, If):
            for _, arm in s.arms:
                yield rest_before + arm + rest_after  # keep one arm, unconditionally
            if s.orelse is not None:
                yield rest_before + s.orelse + rest_after
                yield rest_before + [If(s.arms, None)] + rest_after
            if len(s.arms) > 1:
                for k in range(len(s.arms)):
                    yield rest_before + [If(s.arms[:k] + s.arms[k + 1:], s.orelse)] + rest_after
            for k, (cond, arm) in enumerate(s.arms):
                for new in _edits(arm):
                    arms = list(s.arms)
                    arms[k] = (cond, new)
                    yield rest_before + [If(arms, s.orelse)] + rest_after
            if s.orelse:
                for new in _edits(s.orelse):
                    yield rest_before + [If(s.arms, new or None)] + rest_after
        elif isinstance(s, Loop):
            body_only = [b for b in s.body if not (isinstance(b, Line) and b.text in ("break", "continue"))]
            yield rest_before + s.setup + body_only + rest_after  # once, no loop
            for new in _edits(s.body):
                yield rest_before + [Loop(s.header, new, s.setup)] + rest_after
        elif isinstance(s, Line) and s.text.startswith("return ") and " + " in s.text:
            terms = _split_terms(s.text[len("return "):])
            for k in range(len(terms)):
                kept = terms[:k] + terms[k + 1:]
                yield rest_before + [Line("return " + " + ".join(kept))] + rest_after


def _split_terms(expr: str) -> list[str]:
    """Top-level `+` terms of an expression (outside parentheses and brackets)."""
    terms, depth, start, k = [], 0, 0, 0
    while k < len(expr):
        ch = expr[k]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and expr.startswith(" + ", k):
            terms.append(expr[start:k])
            k += 3
            start = k
            continue
        k += 1
    terms.append(expr[start:])
    return [t.strip() for t in terms if t.strip()]


_VAR = re.compile(r"(?<![.\w])(?:[svdDwk]\d+|[xyabMij])\b")


def _names(text: str) -> set:
    return set(_VAR.findall(text))


def _defined(body: list, defined: set) -> set | None:
    """The names surely bound after `body`, or None if it may read a name before binding it (a shrunk
    program must stay a program whose plain run cannot fail that way)."""
    defined = set(defined)
    for s in body:
        if isinstance(s, Line):
            t = s.text
            m = re.match(r"^([\w, ]+?)\s*([-+*/]?)=\s(.*)$", t)
            if m and "[" not in m.group(1):
                targets = {n.strip() for n in m.group(1).split(",")}
                reads = _names(m.group(3)) | (targets if m.group(2) else set())
                if not reads <= defined:
                    return None
                defined |= targets
            elif not _names(t) <= defined:
                return None
        elif isinstance(s, If):
            outs = []
            for cond, arm in s.arms:
                if not _names(cond) <= defined:
                    return None
                d = _defined(arm, defined)
                if d is None:
                    return None
                outs.append(d)
            d = _defined(s.orelse, defined) if s.orelse is not None else defined
            if d is None:
                return None
            outs.append(d)
            defined = set.intersection(*outs)
        elif isinstance(s, Loop):
            d = _defined(s.setup, defined)
            if d is None:
                return None
            defined = d
            var = re.match(r"for (\w+) in", s.header)
            header_reads = _names(s.header.split(" in ", 1)[1] if var else s.header)
            if not header_reads <= defined:
                return None
            if _defined(s.body, defined | ({var.group(1)} if var else set())) is None:
                return None
    return defined


def well_formed(p: Program) -> bool:
    return _defined(p.body, {n for n, _ in p.params}) is not None


def _expr_edits(text: str):
    """`text` (one statement) with one sub-expression replaced by one of its operands or arguments
    (`np.sin(e)` -> `e`, `(p + q)` -> `p`, `h(e)` -> `e`, `v[::-1]` -> `v`)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return
    stmt = tree.body[0]
    if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Tuple):
        return  # `p, q = h_pair(e, f)` stays a pair
    nodes = [n for r in _roots(stmt) for n in ast.walk(r)]
    for k, node in enumerate(nodes):
        if isinstance(node, ast.Call):
            kids = list(node.args)
        elif isinstance(node, ast.BinOp):
            kids = [node.left, node.right]
        elif isinstance(node, ast.UnaryOp) and not isinstance(node.operand, ast.Constant):
            kids = [node.operand]
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
            kids = [node.value]
        else:
            continue
        for kid in kids:
            new = ast.parse(text)
            target = [n for r in _roots(new.body[0]) for n in ast.walk(r)][k]
            repl = [n for n in ast.walk(target) if ast.dump(n) == ast.dump(kid)]
            if not repl:
                continue
            _replace_node(new, target, repl[0])
            yield ast.unparse(new)


def _roots(stmt):
    if isinstance(stmt, (ast.Assign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return [stmt.value] + [t.slice for t in targets if isinstance(t, ast.Subscript)]
    if isinstance(stmt, ast.Return) and stmt.value is not None:
        return [stmt.value]
    return []


def _replace_node(tree, old, new) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list):
                for i, v in enumerate(value):
                    if v is old:
                        value[i] = new
                        return


def _tape_spelling(text: str) -> str | None:
    m = re.match(r"^(\w+) ([-+*])= (.*)$", text)
    return f"{m.group(1)} = {m.group(1)} {m.group(2)} ({m.group(3)})" if m else None


def _line_edits(body: list):
    """`body` with one Line's expression simplified (nested bodies included)."""
    for i, s in enumerate(body):
        before, after = body[:i], body[i + 1:]
        if isinstance(s, Line) and not s.keep:
            for text in _expr_edits(s.text):
                tape = _tape_spelling(text) if s.tape is not None else None
                yield before + [Line(text, tape)] + after
        elif isinstance(s, If):
            for k, (cond, arm) in enumerate(s.arms):
                for new in _line_edits(arm):
                    arms = list(s.arms)
                    arms[k] = (cond, new)
                    yield before + [If(arms, s.orelse)] + after
            if s.orelse:
                for new in _line_edits(s.orelse):
                    yield before + [If(s.arms, new)] + after
        elif isinstance(s, Loop):
            for new in _line_edits(s.body):
                yield before + [Loop(s.header, new, s.setup)] + after


def _variants(p: Program):
    for edits in (_edits, _line_edits):
        for body in edits(p.body):
            if not body:
                continue
            cand = prune_helpers(replace(p, body=body))
            if well_formed(cand):
                yield cand
    # a parameter nothing reads
    text = "\n".join(render_body(p.body, 0, False))
    for k, (name, _) in enumerate(p.params):
        if len(p.params) > 1 and not _mentions(text, name):
            yield replace(p, params=p.params[:k] + p.params[k + 1:])


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


def size(p: Program) -> int:
    return len(p.module_source())


def minimize(p: Program, o: Outcome, budget_s: float = 60.0,
             timeout: float = 20.0) -> tuple[Program, Outcome]:
    """Greedy shrinking: take any one-step simplification that keeps the failure's key, until none does
    or the time budget is spent."""
    key = failure_key(o)
    best, best_o = prune_helpers(p), o
    deadline = time.monotonic() + budget_s
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for cand in _variants(best):
            if time.monotonic() > deadline:
                break
            if size(cand) >= size(best):
                continue
            try:
                co = check_program(cand, timeout)
            except Invalid:
                continue
            except Exception as e:  # noqa: BLE001
                co = _oracle_failure(cand.seed, e)
            if failure_key(co) == key:
                best, best_o, improved = cand, co, True
                break
    return best, best_o


# ----------------------------------------------------------------------------------------- reproducers


def _literal(v) -> str:
    if isinstance(v, np.ndarray):
        return f"np.array({v.tolist()!r})"
    return repr(v)


def reproducer(p: Program, o: Outcome, note: str = "") -> str:
    """The program as a module plus a `__main__` block that replays what the oracle did and prints
    value, gradient, finite differences, jvp, and whether the inputs changed."""
    names = [n for n, _ in p.params]
    wrt = tuple(range(len(names)))
    head = [f"# srcgrad differential fuzzer reproducer: seed {p.seed}{note}",
            f"# verdict: {o.signature()}"]
    for line in (o.detail or "").splitlines():
        head.append(f"#   {line}")
    head.append("# run: python <this file>   (from the repository root, with srcgrad installed)")
    src = "\n".join(head) + "\n" + p.module_source()
    gb = ", ".join(f"{k}=np.{p.globals_b[k]}" if k == "ACT" else f"{k}={p.globals_b[k]!r}" for k in GLOBALS)
    lines = [
        "",
        "",
        'if __name__ == "__main__":',
        "    import srcgrad as sg",
        "",
        "    def fd(args, h=1e-6):",
        "        out = []",
        "        for i, v in enumerate(args):",
        "            g = np.zeros(np.shape(v))",
        "            for idx in np.ndindex(np.shape(v)):",
        "                up = [np.copy(u) if isinstance(u, np.ndarray) else u for u in args]",
        "                dn = [np.copy(u) if isinstance(u, np.ndarray) else u for u in args]",
        "                if isinstance(v, np.ndarray):",
        "                    up[i][idx] += h",
        "                    dn[i][idx] -= h",
        "                else:",
        "                    up[i] += h",
        "                    dn[i] -= h",
        "                g[idx] = (prog(*up) - prog(*dn)) / (2 * h)",
        "            out.append(g if isinstance(v, np.ndarray) else float(g))",
        "        return out",
        "",
        f"    G = sg.grad(prog, wrt={wrt!r})",
        f"    J = sg.jvp(prog, wrt={wrt!r})",
        "",
        "    def show(args):",
        "        saved = [np.copy(v) if isinstance(v, np.ndarray) else v for v in args]",
        "        fresh = [np.copy(v) if isinstance(v, np.ndarray) else v for v in saved]",
        "        print('value (NumPy)      ', prog(*fresh))",
        "        g = G(*args)",
        "        print('grad               ', g)",
        "        print('finite differences ', fd(saved))",
        "        print('inputs unchanged   ', all(np.array_equal(u, v) for u, v in zip(args, saved)))",
        "        t = tuple(np.ones(np.shape(v)) if isinstance(v, np.ndarray) else 1.0 for v in saved)",
        "        print('jvp (ones tangent) ', J(*saved, t))",
        "        print('grad . ones        ', sum(float(np.sum(x)) for x in g))",
        "",
    ]
    if 0 in o.points:
        lines.append(f"    show([{', '.join(_literal(v) for v in o.points[0])}])")
    if 1 in o.points:
        lines.append("    # the harness changes the module constants; the same G and J are called again")
        lines.append(f"    globals().update({gb})")
        lines.append("    print('after the module constants changed:')")
        lines.append(f"    show([{', '.join(_literal(v) for v in o.points[1])}])")
    return src + "\n".join(lines) + "\n"


def save(out_dir: Path, p: Program, o: Outcome, suffix: str = "", note: str = "") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"seed_{p.seed}{suffix}.py"
    path.write_text(reproducer(p, o, note))
    return path


# ---------------------------------------------------------------------------------------------- summary


def summarize(results: list, minimized: dict, saved: dict, tape_skips: Counter) -> str:
    """`results`: [(seed, Outcome or None)]; `minimized`: failure key -> [(seed, path, Program)];
    `saved`: seed -> reproducer path."""
    counts = Counter(o.status for _, o in results if o is not None)
    n = sum(counts.values())
    head = f"{n} programs, {counts['wrong']} wrong, {counts['crash']} crash, {counts['refused']} refused"
    lines = [head]
    invalid = sum(1 for _, o in results if o is None)
    fd = sum(1 for _, o in results if o is not None and o.fd_checked)
    tape = sum(1 for _, o in results if o is not None and o.tape == "ok")
    lines.append(f"  ({counts['ok']} ok; {fd} checked against finite differences, the rest engine against "
                 f"engine only; the eager tape ran {tape}; {invalid} seeds without a valid program)")
    reasons = Counter(o.reason for _, o in results if o is not None and o.status == "refused")
    if reasons:
        lines.append("refused, by reason:")
        for r, c in reasons.most_common():
            lines.append(f"  {c:6d}  {r}")
    if tape_skips:
        lines.append("eager tape not run (not counted above), by reason:")
        for r, c in tape_skips.most_common(15):
            lines.append(f"  {c:6d}  {r}")
    fails: dict[str, list] = {}
    for seed, o in results:
        if o is not None and o.status in ("wrong", "crash"):
            fails.setdefault(failure_key(o), []).append(seed)
    if fails:
        lines.append("wrong and crash, by kind (seed -> reproducer):")
        for key, seeds in sorted(fails.items(), key=lambda kv: -len(kv[1])):
            lines.append(f"  {len(seeds):6d}  {key}")
            for mseed, mpath, _ in sorted(minimized.get(key, ()), key=lambda m: m[0]):
                lines.append(f"          minimized (seed {mseed}): {mpath}")
            for s in seeds:
                lines.append(f"          seed {s} -> {saved.get(s, '(not saved)')}")
    lines.append(head)
    return "\n".join(lines)
