"""Every case of the corpus, in one list."""

from tests.srcgrad.language import cases_functions

ALL_CASES = [*cases_functions.CASES]
