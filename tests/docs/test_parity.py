"""docs/parity.md, written by docs/make_parity.py, claims only names srcgrad has.

`make docs` regenerates the page, so names added to srcgrad's tables since it was committed show up there;
what must never happen is the committed page saying "yes" to a name srcgrad no longer has (or a script
that no longer runs).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "make_parity.py"
ROW = re.compile(r"^\| `([^`]+)` \| (yes|—) \|", re.M)


def _script():
    spec = importlib.util.spec_from_file_location("make_parity", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parity_table_claims_only_what_srcgrad_has() -> None:
    module = _script()
    now = dict(ROW.findall(module.render()))
    committed = dict(ROW.findall(module.OUT.read_text(encoding="utf-8")))
    assert now["torch.sin"] == "yes" and now["Tensor.backward"] == "yes"
    stale = sorted(n for n, mark in committed.items() if mark == "yes" and now.get(n) != "yes")
    assert not stale, (f"docs/parity.md says srcgrad has {stale}, which it no longer has: "
                       "run `.venv/bin/python docs/make_parity.py` (make docs does)")
