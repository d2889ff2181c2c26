"""How each case and check fares today, without pytest:

    .venv/bin/python -m tests.srcgrad.language.survey [name-substring ...]

One line per (case, check): ok, or TransformError / wrong (an assertion of the harness: a wrong value or
structure) / internal (another exception), with the message's first line, and whether it is marked xfail."""

from __future__ import annotations

import sys
import traceback

from srcgrad import TransformError
from tests.srcgrad.language.harness import run_check
from tests.srcgrad.language.registry import ALL_CASES


def outcome(case, check) -> tuple[str, str]:
    try:
        run_check(case, check)
    except TransformError as exc:
        return "TransformError", str(exc).splitlines()[0][:160]
    except AssertionError as exc:
        return "wrong", (str(exc).splitlines() or [""])[0][:160]
    except Exception as exc:  # noqa: BLE001 -- the survey reports every kind of failure
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        return "internal", f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''} " \
            f"[{tb.filename.split('/')[-1]}:{tb.lineno}]"
    return "ok", ""


def main(filters: list[str]) -> None:
    for case in ALL_CASES:
        if filters and not any(f in case.name for f in filters):
            continue
        for check in case.checks:
            kind, msg = outcome(case, check)
            marked = case.reason(check)
            flag = ""
            if kind == "ok" and marked:
                flag = "  XPASS!"
            elif kind != "ok" and not marked:
                flag = "  UNMARKED"
            print(f"{case.name:40s} {check:9s} {kind:15s} {msg}{flag}"
                  + (f"  [xfail: {marked}]" if marked else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
