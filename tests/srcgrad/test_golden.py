"""Golden files pin the generated source of a few functions (names, comments, saves, layout).

Regenerate after an intended change with `SRCGRAD_UPDATE_GOLDEN=1 pytest tests/srcgrad/test_golden.py`
and review the diff: it is the product users read.
"""

import os
import pathlib

import numpy as np
import pytest

import srcgrad as sg
from tests.srcgrad import corpus as C
from tests.srcgrad import user_idioms as U

GOLDEN = pathlib.Path(__file__).parent / "golden"

CASES = {
    "s_overwrite_float": (sg.grad, C.s_overwrite, 0, (1.0,)),
    "c_while_float": (sg.grad, C.c_while, 0, (1.0,)),
    "c_break_float": (sg.value_and_grad, C.c_break, 0, (1.0,)),
    "c_loop_branch_float": (sg.grad, C.c_loop_branch, 0, (1.0, 3)),
    "a_setitem_array": (sg.grad, C.a_setitem, 0, (np.ones(4),)),
    "a_tanh_chain_array": (sg.grad, C.a_tanh_chain, (0, 1), (np.ones(4), np.eye(3))),
    "c_list_append_stack_array": (sg.grad, C.c_list_append_stack, 0, (np.ones(4), 3)),
    "f_call_helper_generic": (sg.vjp, C.f_call_helper, 0, None),
    "element_loop_array": (sg.grad, U.element_loop, 0, (np.ones(6),)),
    "pendulum_defaults_float": (sg.grad, U.pendulum, (0, 1), (0.1, 1.0, 9.81, 0.01, 50, 1.0, 0.0)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case):
    transform, fn, wrt, args = CASES[case]
    g = transform(fn, wrt=wrt)
    text = g.source if args is None else g.source_for(*args)
    path = GOLDEN / f"{case}.py.txt"
    if os.environ.get("SRCGRAD_UPDATE_GOLDEN") or not path.exists():
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()
