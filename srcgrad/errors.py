"""TransformError: what the compiler cannot differentiate, said in terms of the user's code.

Every error names the file, the line, the source text of that line, what went wrong and what to write
instead, so a user never has to read generated code to learn why a transform refused their function.
"""

from __future__ import annotations

from typing import Any


class TransformError(Exception):
    """The compiler cannot (or will not) differentiate this code.

    Raised at transform time wherever the problem can be known then (unsupported syntax, a call with
    neither a rule nor source), at call time otherwise (grad of a non-scalar output). A wrong gradient is
    worse than an error, so every case the compiler is unsure of ends here.
    """

    def __init__(
        self,
        message: str,
        *,
        filename: str | None = None,
        lineno: int | None = None,
        source_line: str | None = None,
        hint: str | None = None,
        function: str | None = None,
    ):
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.source_line = source_line
        self.hint = hint
        self.function = function
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.message]
        if self.filename is not None or self.lineno is not None:
            where = f'  File "{self.filename}", line {self.lineno}'
            if self.function:
                where += f", in {self.function}"
            parts.append(where)
        if self.source_line:
            parts.append("    " + self.source_line.strip())
        if self.hint:
            parts.append("Instead: " + self.hint)
        return "\n".join(parts)


def located(info: Any, node: Any, message: str, hint: str | None = None) -> TransformError:
    """A TransformError pointing at `node` (a gast node carrying `lineno`) inside function `info`."""
    lineno = getattr(node, "lineno", None)
    if info is None:
        return TransformError(message, hint=hint, lineno=lineno)
    user_line = info.user_lineno(lineno) if lineno is not None else None
    filename_of = getattr(info, "filename_of", None)
    return TransformError(
        message,
        filename=filename_of(lineno) if filename_of is not None else info.filename,
        lineno=user_line,
        source_line=info.source_line(lineno) if lineno is not None else None,
        hint=hint,
        function=info.name,
    )
