"""The benchmark corpus: programs of the kinds users write, each a plain module-level function.

`load()` returns every program (a `Program`: forward, inputs, wrt, category, and for loops over Python
floats the same computation written with `math`), in a stable order. `python -m benchmarks.corpus_run`
times them; tests/benchmarks/test_corpus_programs.py checks each gradient against finite differences.
"""

from __future__ import annotations

import importlib

from benchmarks.corpus.program import CATEGORIES, Program

MODULES = ("ode_float", "ode_array", "physics", "pde", "roots", "optim", "rnn", "attention", "likelihood",
           "dp", "element", "helpers")

__all__ = ["CATEGORIES", "MODULES", "Program", "load"]


def load() -> list[Program]:
    """All corpus programs; names are unique."""
    programs: list[Program] = []
    for m in MODULES:
        programs += importlib.import_module(f"benchmarks.corpus.{m}").PROGRAMS
    names = [p.name for p in programs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"duplicate corpus program names: {sorted(dup)}")
    return programs
