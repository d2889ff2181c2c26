"""The corpus of issue 12 as one generic test: every (case, check) against finite differences. A case's
xfail names the feature it needs; the marks are strict, so a feature that lands turns its cases into
failures until the marks come off."""

import pytest

from tests.srcgrad.language.harness import run_check
from tests.srcgrad.language.registry import ALL_CASES


def _params():
    for case in ALL_CASES:
        for check in case.checks:
            reason = case.reason(check)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(case, check, id=f"{case.name}-{check}", marks=marks)


@pytest.mark.parametrize("case,check", list(_params()))
def test_language(case, check):
    run_check(case, check)


def test_corpus_is_large_and_names_are_unique():
    names = [c.name for c in ALL_CASES]
    assert len(names) >= 60
    assert len(set(names)) == len(names)
