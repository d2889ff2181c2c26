"""The differential fuzzer's short profile: fixed seeds, each one random program (branches, data-dependent
loops, break/continue, early returns, subscript reads and writes, copies and in-place updates, helpers,
tuple unpacking, module constants changed between calls) through `sg.grad`, `sg.jvp`, the eager tape and
central finite differences, every input checked unchanged. A refusal (`TransformError`) passes; a wrong
value, a wrong derivative, a modified input or any other exception fails.

`make fuzz` runs 10,000 programs; `python -m tests.srcgrad.fuzz --seed S` shows one, shrinks it and
writes a runnable reproducer.
"""

import pytest

from tests.srcgrad.fuzz.runner import run_seed

# Add a seed here if a compiler change makes it fail and the fix has to wait, and take it out with the fix
# (`python -m tests.srcgrad.fuzz --seed S` prints the program, shrinks it and writes a reproducer).
PENDING: set[int] = set()
SEEDS = [s for s in range(150) if s not in PENDING]


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzz_program(seed):
    p, o = run_seed(seed, timeout=30.0)
    if p is None:
        pytest.skip("no valid program for this seed")
    assert o.status in ("ok", "refused"), (
        f"seed {seed}: {o.signature()}\n{o.detail}\n\n{p.module_source()}\n"
        f"reproduce: python -m tests.srcgrad.fuzz --seed {seed}"
    )
