"""srcgrad's differential fuzzer.

- `generator.py`: random Python/NumPy programs from an integer seed (also a hypothesis strategy).
- `oracle.py`: one program through `sg.grad`, `sg.jvp`, the eager tape and central finite differences, in
  two phases (module constants changed in between), every input checked unchanged after every call;
  verdict ok / wrong / crash / refused.
- `runner.py`: redraws invalid programs, shrinks failures, writes runnable reproducers, summarizes.
- `python -m tests.srcgrad.fuzz --programs N --workers W` (`make fuzz`: 10,000 programs); `--seed S` runs,
  shrinks and saves one program. `tests/srcgrad/test_fuzz.py` is the short profile `make test` runs.
"""
