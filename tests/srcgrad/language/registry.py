"""Every case of the corpus, in one list."""

from tests.srcgrad.language import (
    cases_benchmarks,
    cases_comprehensions,
    cases_functions,
    cases_numpy,
    cases_objects,
    cases_pytrees,
)

ALL_CASES = [
    *cases_functions.CASES,
    *cases_comprehensions.CASES,
    *cases_objects.CASES,
    *cases_pytrees.CASES,
    *cases_numpy.CASES,
    *cases_benchmarks.CASES,
]
