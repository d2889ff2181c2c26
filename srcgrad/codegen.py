"""Stage 6: generated trees -> readable source text -> a live function.

The emitter writes one statement per line with four-space indentation and turns `Comment` nodes into
`# ...` lines (Python's own unparser drops comments). `compile_source` compiles the text under a unique
pseudo-filename registered in `linecache`, so `inspect.getsource` works on the result and a traceback
inside generated code shows the generated line.
"""

from __future__ import annotations

import ast
import hashlib
import linecache
import types
import weakref
from typing import Any

import gast


class Comment(gast.stmt):
    """A `# text` line in generated code (provenance: which user line a block comes from)."""

    _fields = ("text",)

    def __init__(self, text: str = ""):
        super().__init__()
        self.text = text


def expr_source(e: gast.expr) -> str:
    node = gast.gast_to_ast(e)
    return ast.unparse(ast.fix_missing_locations(node))


def stmt_source(s: gast.stmt) -> str:
    node = gast.gast_to_ast(s)
    if not hasattr(node, "lineno"):
        node.lineno = 1
    return ast.unparse(ast.fix_missing_locations(node))


def emit_block(body: list, indent: int, lines: list[str]) -> None:
    pad = "    " * indent
    n_before = len(lines)
    for s in body:
        if isinstance(s, Comment):
            lines.append(f"{pad}# {s.text}")
        elif isinstance(s, gast.If):
            lines.append(f"{pad}if {expr_source(s.test)}:")
            emit_block(s.body, indent + 1, lines)
            orelse = s.orelse
            while len(orelse) == 1 and isinstance(orelse[0], gast.If) and getattr(orelse[0], "elif_", False):
                lines.append(f"{pad}elif {expr_source(orelse[0].test)}:")
                emit_block(orelse[0].body, indent + 1, lines)
                orelse = orelse[0].orelse
            if orelse and any(not isinstance(x, Comment) for x in orelse):
                lines.append(f"{pad}else:")
                emit_block(orelse, indent + 1, lines)
        elif isinstance(s, gast.For):
            lines.append(f"{pad}for {expr_source(s.target)} in {expr_source(s.iter)}:")
            emit_block(s.body, indent + 1, lines)
        elif isinstance(s, gast.While):
            lines.append(f"{pad}while {expr_source(s.test)}:")
            emit_block(s.body, indent + 1, lines)
        elif type(s).__name__ == "Restore":
            lines.append(f"{pad}{s.var} = <restored if saved>")
        elif type(s).__name__ == "Verbatim":
            emit_block(s.body, indent, lines)
        elif isinstance(s, gast.FunctionDef):
            emit_function(s, indent, lines)
        else:
            lines.append(pad + stmt_source(s))
    if all(lines[i].lstrip().startswith("#") for i in range(n_before, len(lines))):
        lines.append(f"{pad}pass")


def emit_function(fn: gast.FunctionDef, indent: int, lines: list[str], doc: str | None = None) -> None:
    pad = "    " * indent
    header = gast.FunctionDef(
        name=fn.name,
        args=fn.args,
        body=[gast.Pass()],
        decorator_list=[],
        returns=None,
        type_comment=None,
        type_params=[],
    )
    text = stmt_source(header).splitlines()[0]
    lines.append(pad + text)
    if doc:
        lines.append(f'{pad}    """{doc}"""')
    emit_block(fn.body, indent + 1, lines)


def function_source(fn: gast.FunctionDef, doc: str | None = None) -> str:
    lines: list[str] = []
    emit_function(fn, 0, lines, doc)
    return "\n".join(lines) + "\n"


_COUNTER: dict[str, int] = {}


# generated pseudo-filename -> the user's file its `# line N: ...` comments refer to
USER_FILES: dict[str, str] = {}
# generated pseudo-filename -> its source, while code compiled from it is alive (see `_keep_source`)
SOURCES: dict[str, str] = {}


def compile_source(source: str, fname: str, namespace: dict, label: str, user_file: str | None = None) -> Any:
    """Compile `source` (defining `fname`) into `namespace`; register it with linecache (and, for the
    notes on tracebacks, the user file its line comments refer to) for as long as code compiled from it
    is alive."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:8]
    n = _COUNTER.get(label, 0) + 1
    _COUNTER[label] = n
    filename = f"<srcgrad {label} #{n} {digest}>"
    code = compile(source, filename, "exec")
    _keep_source(code, filename, source, user_file)
    exec(code, namespace)
    fn = namespace[fname]
    fn.source = source
    return fn


def _keep_source(code: types.CodeType, filename: str, source: str, user_file: str | None) -> None:
    """Register `source` under `filename` in linecache (tracebacks and `inspect.getsource` read it there)
    and release it when the last function compiled from it is garbage-collected: a transform of a
    function created per training step must not leave its generated text behind. The entry lives as long
    as the code objects of the functions the source defines (a function cloned from one, a frame or a
    traceback holding one, keeps them alive)."""
    SOURCES[filename] = source
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    if user_file is not None:
        USER_FILES[filename] = user_file
    functions = [c for c in code.co_consts if isinstance(c, types.CodeType)]
    if not functions:
        return
    alive = [len(functions)]

    def release() -> None:
        alive[0] -= 1
        if alive[0] == 0:
            SOURCES.pop(filename, None)
            USER_FILES.pop(filename, None)
            entry = linecache.cache.get(filename)
            if entry is not None and len(entry) == 4 and entry[3] == filename and entry[1] is None:
                del linecache.cache[filename]

    for c in functions:
        weakref.finalize(c, release)


def ensure_registered(filename: str) -> bool:
    """Put a live generated source back into linecache if something cleared it (`linecache.clearcache`),
    so a traceback printed now shows the generated line. False when `filename` is no live source."""
    source = SOURCES.get(filename)
    if source is None:
        return False
    if filename not in linecache.cache:
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    return True


def user_location(tb: Any) -> tuple[str, int, str, str, int] | None:
    """For a traceback through generated code: the innermost generated frame's user statement, as
    (user file, user line, user source text, generated filename, generated line), read from the
    `# line N: text` comment above the generated line. None when no generated frame is on it."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename in USER_FILES:
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    if found is None:
        return None
    filename, lineno = found
    ensure_registered(filename)
    lines = linecache.getlines(filename)
    for i in range(min(lineno, len(lines)) - 1, -1, -1):
        text = lines[i].strip()
        for prefix in ("# adjoint of line ", "# line "):
            if text.startswith(prefix):
                number, _, user_text = text[len(prefix):].partition(": ")
                if number.isdigit():
                    return USER_FILES[filename], int(number), user_text, filename, lineno
    return None


def annotate(exc: BaseException) -> None:
    """Add a note to an exception raised inside generated code: the user's file, line and statement it
    came from, and the generated line (shown under the traceback; Python 3.11+)."""
    where = user_location(exc.__traceback__)
    if where is None or not hasattr(exc, "add_note") or getattr(exc, "_srcgrad_noted", False):
        return
    user_file, user_line, user_text, gen_file, gen_line = where
    generated = linecache.getline(gen_file, gen_line).strip()
    exc.add_note(f"srcgrad: raised by the code generated for {user_file}, line {user_line}: {user_text}\n"
                 f"         (generated line {gen_line}: {generated})")
    exc._srcgrad_noted = True
