"""Every ```python block in README.md and docs/**/*.md runs, as written, and its stated output is checked.

The conventions (also in docs/contributing.md):

- The blocks of one Markdown file run in order in one namespace, as a reader pasting them into one session
  would. Each block is compiled under its own file name (`docs/language.md:120`, the line of its opening
  fence) so srcgrad can read the source of the functions it defines; line numbers count from the block's
  first line, as if the block alone were saved as a file.
- **Stated output**: a ```text block that follows a ```python block with nothing but blank lines between
  them is what the python block prints (stdout). It is compared line by line, trailing spaces ignored.
  In the output, a block's file name reads `example.py`, as if the reader had saved the block under that
  name (so tracebacks and error messages in the docs show `File "example.py", line 3, in f`).
- **Markers**: an HTML comment on the line(s) just before a fence changes how it is run:

  - `<!-- no-run: reason -->` the block is not executed (shell-like pseudo-code, placeholders, a cluster).
    The reason is required.
  - `<!-- raises: TransformError -->` the block must raise this exception (by class name); the stated
    output, if any, is its stdout followed by the line(s) `TransformError: message`. Put the raising
    statement last: what follows it does not run.
  - `<!-- xfail: reason -->` the block fails today because of a srcgrad bug, named in the reason; the test
    is a strict xfail, so it fails as soon as the bug is fixed and the marker must go.

- Every fence carries a language. `py`, `python3`, `pycon` and `ipython` are refused so that no Python
  block escapes the test under another name; write ```python.
- A block must not emit warnings (a reader would see them as breakage).

Set SRCGRAD_DOCS_UPDATE=1 to rewrite stated outputs that differ with what the blocks print now (then read
the diff before committing it).
"""

from __future__ import annotations

import contextlib
import io
import linecache
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
SHOWN_NAME = "example.py"
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>[\w-]+)\s*:?\s*(?P<arg>.*?)\s*-->\s*$")
MARKER_KINDS = ("no-run", "raises", "xfail")
PYTHON_ALIASES = ("py", "python3", "pycon", "ipython", "py3")
# modules of optional extras: a block that needs one that is not installed is skipped, saying which
OPTIONAL_MODULES = ("dask", "distributed", "matplotlib", "torch", "jax", "autograd", "cupy")
UPDATE = os.environ.get("SRCGRAD_DOCS_UPDATE") == "1"


@dataclass
class Block:
    path: Path
    line: int            # 1-based line of the opening fence
    lang: str
    code: str
    end: int             # 1-based line of the closing fence
    marker: tuple[str, str] | None = None
    marker_line: int = 0
    output: Block | None = None     # the ```text block stating this block's output

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    @property
    def filename(self) -> str:
        return f"{self.rel}:{self.line}"


@dataclass
class Doc:
    path: Path
    blocks: list[Block] = field(default_factory=list)
    stray_markers: list[tuple[int, str]] = field(default_factory=list)
    unclosed: int = 0

    @property
    def python(self) -> list[Block]:
        return [b for b in self.blocks if b.lang == "python"]


def parse(path: Path) -> Doc:
    """The fenced blocks of a Markdown file, with their markers and stated outputs."""
    doc = Doc(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    pending: tuple[int, tuple[str, str]] | None = None
    previous: Block | None = None     # the last block, while only blank lines follow it
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        if m is None:
            mk = MARKER.match(line)
            if mk is not None and mk.group("kind") in MARKER_KINDS:
                if pending is not None:
                    doc.stray_markers.append((pending[0], "a marker followed by another marker"))
                pending = (i + 1, (mk.group("kind"), mk.group("arg")))
            elif line.strip():
                if pending is not None:
                    doc.stray_markers.append((pending[0], "a marker not followed by a fenced block"))
                    pending = None
                previous = None
            i += 1
            continue
        indent, fence, info = m.group("indent"), m.group("fence"), m.group("info").strip()
        lang = info.split()[0].lower() if info else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            close = FENCE.match(lines[j])
            if close and close.group("fence").startswith(fence) and not close.group("info").strip():
                break
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        else:
            doc.unclosed = i + 1
        block = Block(path, i + 1, lang, "\n".join(body) + "\n", j + 1)
        if pending is not None:
            block.marker_line, block.marker = pending
            pending = None
        if (lang == "text" and block.marker is None and previous is not None and previous.lang == "python"
                and previous.output is None):
            previous.output = block
        doc.blocks.append(block)
        previous = block
        i = j + 1
    if pending is not None:
        doc.stray_markers.append((pending[0], "a marker at the end of the file"))
    return doc


DOCS = [parse(p) for p in DOC_FILES]


def shown(text: str, blocks: list[Block]) -> str:
    """Output as the docs state it: block file names read example.py; trailing spaces and lines dropped."""
    for b in sorted(blocks, key=lambda b: len(b.filename), reverse=True):  # md:432 before md:43
        text = text.replace(b.filename, SHOWN_NAME)
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def missing_optional(exc: BaseException) -> str | None:
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] in OPTIONAL_MODULES:
        return exc.name.split(".")[0]
    return None


class Session:
    """One file's namespace, run block by block in this process (xdist may give a file's blocks to
    different workers: each runs the blocks before the one it tests itself)."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self.ns: dict = {"__name__": "__main__", "__builtins__": __builtins__}
        self.done = 0              # index into doc.python of the next block to run

    def run(self, block: Block) -> tuple[str, BaseException | None, list]:
        """Run one block; (stdout, exception or None, warnings)."""
        source = block.code
        linecache.cache[block.filename] = (len(source), None, source.splitlines(True), block.filename)
        out = io.StringIO()
        exc: BaseException | None = None
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
            warnings.simplefilter("always")
            try:
                exec(compile(source, block.filename, "exec"), self.ns)
            except Exception as e:  # noqa: BLE001 -- the caller decides what an exception means
                exc = e
        return out.getvalue(), exc, list(caught)


_sessions: dict[Path, Session] = {}


def session_before(doc: Doc, index: int) -> Session:
    """A session of `doc` in which the python blocks before `index` have run (those not marked no-run)."""
    s = _sessions.get(doc.path)
    if s is None or s.done > index:
        s = _sessions[doc.path] = Session(doc)
    while s.done < index:
        b = doc.python[s.done]
        s.done += 1
        if b.marker and b.marker[0] == "no-run":
            continue
        _, exc, _ = s.run(b)
        if exc is None or (b.marker and b.marker[0] in ("raises", "xfail")):
            continue
        if missing_optional(exc):
            pytest.skip(f"needs {missing_optional(exc)} (an earlier block of {b.rel} imports it)")
        pytest.fail(f"an earlier block ({b.filename}) failed: {type(exc).__name__}: {exc}", pytrace=False)
    return s


_shifts: dict[Path, list[tuple[int, int]]] = {}    # SRCGRAD_DOCS_UPDATE: lines added after a line, per file


def update_output(block: Block, actual: str) -> None:
    """SRCGRAD_DOCS_UPDATE=1: write what the block printed into its stated-output block (run without -n)."""
    assert block.output is not None
    lines = block.path.read_text(encoding="utf-8").splitlines(True)
    o = block.output
    shift = sum(d for after, d in _shifts.get(block.path, []) if after < o.line)
    start, end = o.line + shift, o.end + shift
    indent = FENCE.match(lines[start - 1]).group("indent")
    new = [indent + line + "\n" if line else "\n" for line in actual.splitlines()]
    block.path.write_text("".join(lines[:start] + new + lines[end - 1:]), encoding="utf-8")
    _shifts.setdefault(block.path, []).append((o.line, len(new) - (end - start - 1)))


def _cases() -> list:
    cases = []
    for doc in DOCS:
        for k, b in enumerate(doc.python):
            if b.marker and b.marker[0] == "no-run":
                continue        # not a test (test_markup checks its reason): a skip would be noise
            marks = []
            if b.marker and b.marker[0] == "xfail":
                marks.append(pytest.mark.xfail(strict=True, reason=b.marker[1]))
            cases.append(pytest.param(doc, k, id=f"{b.rel}:{b.line}", marks=marks))
    return cases


@pytest.mark.parametrize("doc, index", _cases())
def test_block(doc: Doc, index: int) -> None:
    block = doc.python[index]
    s = session_before(doc, index)
    stdout, exc, caught = s.run(block)
    s.done = index + 1
    expected = block.marker[1] if block.marker and block.marker[0] == "raises" else None
    if exc is not None and missing_optional(exc):
        pytest.skip(f"needs {missing_optional(exc)} (not installed)")
    if expected is None and exc is not None:
        raise exc
    if expected is not None:
        assert exc is not None, f"{block.filename}: expected {expected}, nothing was raised"
        names = [c.__name__ for c in type(exc).__mro__]
        if expected not in names:
            raise AssertionError(f"{block.filename}: expected {expected}, got {type(exc).__name__}") from exc
        stdout += f"{type(exc).__name__}: {exc}\n"
    assert not caught, f"{block.filename} warns: " + "; ".join(
        f"{w.category.__name__}: {w.message}" for w in caught)
    if block.output is not None:
        actual, stated = shown(stdout, doc.python), shown(block.output.code, [])
        if actual != stated and UPDATE:
            update_output(block, actual)
            pytest.skip("stated output rewritten (SRCGRAD_DOCS_UPDATE=1)")
        assert actual == stated, (
            f"{block.filename}: the output stated at {block.rel}:{block.output.line} differs from what the "
            f"block prints (SRCGRAD_DOCS_UPDATE=1 rewrites it)\n--- stated\n{stated}\n--- printed\n{actual}")


@pytest.mark.parametrize("doc", DOCS, ids=[d.path.relative_to(ROOT).as_posix() for d in DOCS])
def test_markup(doc: Doc) -> None:
    """Every fence is closed and names its language; every marker has a reason and sits on a fence."""
    rel = doc.path.relative_to(ROOT).as_posix()
    problems = [f"{rel}:{line}: {why}" for line, why in doc.stray_markers]
    if doc.unclosed:
        problems.append(f"{rel}:{doc.unclosed}: a fence that is never closed")
    for b in doc.blocks:
        where = f"{rel}:{b.line}"
        if not b.lang:
            problems.append(f"{where}: a fence without a language (```python, ```text, ```sh, ...)")
        elif b.lang in PYTHON_ALIASES:
            problems.append(f"{where}: ```{b.lang} escapes the snippet test; write ```python")
        if b.marker is None:
            continue
        kind, arg = b.marker
        if b.lang != "python":
            problems.append(f"{where}: a <!-- {kind} --> marker on a ```{b.lang} block (only python runs)")
        if kind in ("no-run", "xfail") and len(arg.split()) < 3:
            problems.append(f"{rel}:{b.marker_line}: <!-- {kind}: ... --> needs a reason (a few words)")
        if kind == "raises" and not re.fullmatch(r"[A-Za-z_][\w.]*", arg):
            problems.append(f"{rel}:{b.marker_line}: <!-- raises: ExceptionName --> names no exception")
    assert not problems, "\n".join(problems)


def test_snippets_are_found() -> None:
    """The test sees the files (a moved docs folder must not make it pass with nothing to run)."""
    assert any(d.path.name == "README.md" and d.python for d in DOCS)
    assert sum(len(d.python) for d in DOCS) >= 10
