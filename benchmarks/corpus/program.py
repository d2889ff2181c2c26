"""What one corpus program is: a plain function, its inputs, which arguments to differentiate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

CATEGORIES = (
    "ode_float",    # ODE integrators on Python floats (math), data-dependent stopping
    "ode_array",    # ODE integrators on arrays
    "physics",      # pairwise particle loops
    "pde",          # finite differences with boundary writes
    "root",         # Newton / fixed-point iterations with a tolerance loop
    "optimizer",    # unrolled gradient-descent style inner loops
    "rnn",          # RNN / LSTM / GRU
    "attention",    # softmax attention
    "likelihood",   # mixture, logistic, GLM likelihoods written with loops
    "dp",           # dynamic programming with a table
    "element",      # loops over x[i]
    "helpers",      # helpers calling helpers, defaults omitted
)


@dataclass
class Program:
    """One corpus program.

    forward(*inputs()) returns a scalar; `wrt` are the indices of the arguments to differentiate.
    `math_forward` is set for loops over Python floats: the same computation written with `math`
    (it is `forward` itself when that already uses `math`), the unit the issue's ≤ 4x target uses.
    `group` names a spelling family (programs that compute the same thing written differently).
    `quick_inputs`, when set, replaces `inputs` in quick mode (a smaller n).
    `fd_rtol` is the tolerance of the finite-difference check (tests/benchmarks/test_corpus_programs.py).
    `test_inputs`, when set, is what the gradient check uses (a smaller size, for speed).
    """

    name: str
    category: str
    forward: Callable[..., Any]
    inputs: Callable[[], tuple[Any, ...]]
    wrt: tuple[int, ...]
    description: str = ""
    math_forward: Callable[..., Any] | None = None
    group: str = ""
    quick_inputs: Callable[[], tuple[Any, ...]] | None = None
    test_inputs: Callable[[], tuple[Any, ...]] | None = None
    fd_rtol: float = 1e-5

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"{self.name}: unknown category {self.category!r}")

    @property
    def float_loop(self) -> bool:
        return self.math_forward is not None
