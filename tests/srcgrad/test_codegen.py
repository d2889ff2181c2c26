"""Errors raised inside generated code name the user's file, line and statement (a note on the
exception), through callees, in reverse and forward mode."""

import inspect
import sys

import numpy as np
import pytest

import srcgrad as sg
from tests.srcgrad import user_idioms as U

W, XS = np.ones((4, 4)), np.ones((2, 3))
pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes need Python 3.11")


def _line_of(fn, text):
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, ln in enumerate(lines) if text in ln)


@pytest.mark.parametrize("call", [lambda: sg.grad(U.shape_bug_in_loop)(W, XS),
                                  lambda: sg.vjp(U.shape_bug_in_loop)(W, XS, 1.0),
                                  lambda: sg.jvp(U.shape_bug_in_loop)(W, XS, W)])
def test_a_shape_error_in_a_loop_body_names_the_users_line(call):
    with pytest.raises(ValueError) as err:
        call()
    note = "\n".join(getattr(err.value, "__notes__", []))
    line = _line_of(U.shape_bug_in_loop, "h = np.tanh(W @ h + xs[t])")
    assert f"{U.__file__}, line {line}: h = np.tanh(W @ h + xs[t])" in note
    assert "generated line" in note


def test_the_note_points_into_the_callee_where_it_failed():
    with pytest.raises(ValueError) as err:
        sg.grad(U.shape_bug)(W, XS)
    note = "\n".join(err.value.__notes__)
    assert f"line {_line_of(U.shape_bug_helper, 'return A @ v')}: return A @ v" in note
