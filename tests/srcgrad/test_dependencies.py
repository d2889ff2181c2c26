"""Generated code reads module data when it runs and is rebuilt when a function or global it was built
from is rebound (parse.Dependencies): a notebook that changes a constant or redefines a helper gets the
derivative of the program as it stands now, from transforms made before the change and after."""

import importlib
import sys
import textwrap

import numpy as np
import pytest

import srcgrad as sg

SOURCE = '''
import numpy as np

SCALE = 2.0
N = 2
act = np.sin


def through_local(x):
    c = SCALE
    return np.sum(x * c)


def in_condition(x):
    if SCALE > 3.0:
        return np.sum(x * 3.0)
    return np.sum(x)


def loop_bound(x):
    s = 0.0
    for i in range(N):
        s = s + np.sum(x * x)
    return s


def helper(x):
    return x * SCALE


def in_helper(x):
    return np.sum(helper(x))


def rebound_function(x):
    return np.sum(act(x))


def helper2(x):
    return x * x


def calls_redefined(x):
    return np.sum(helper2(x))
'''


@pytest.fixture
def mod(tmp_path, monkeypatch):
    name = f"sg_deps_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)


def change(m):
    """What a notebook does: new values, a name bound to another function, a helper defined again."""
    m.SCALE, m.N, m.act = 5.0, 3, np.tanh
    m.helper2 = redefined_helper2


def redefined_helper2(x):
    return 3.0 * x


EXPECTED_AFTER = {
    "through_local": lambda x: np.full_like(x, 5.0),
    "in_condition": lambda x: np.full_like(x, 3.0),
    "loop_bound": lambda x: 6.0 * x,
    "in_helper": lambda x: np.full_like(x, 5.0),
    "rebound_function": lambda x: 1.0 - np.tanh(x) ** 2,
    "calls_redefined": lambda x: np.full_like(x, 3.0),
}


@pytest.mark.parametrize("fname", sorted(EXPECTED_AFTER))
def test_module_changes_reach_old_and_new_transforms(mod, fname):
    x = np.array([0.3, -0.7, 1.1])
    f = getattr(mod, fname)
    g = sg.grad(f)
    g(x)
    _, jt_before = sg.jvp(f)(x, np.ones(3))
    change(mod)
    want = EXPECTED_AFTER[fname](x)
    np.testing.assert_allclose(g(x), want, rtol=1e-12)
    np.testing.assert_allclose(sg.grad(f)(x), want, rtol=1e-12)
    _, jt = sg.jvp(f)(x, np.ones(3))
    assert jt == pytest.approx(np.sum(want))


def test_a_module_constant_assigned_to_a_parameter_has_no_derivative(mod):
    with open(mod.__file__, "a") as fh:
        fh.write("\n\ndef overwrite(x):\n    x = SCALE\n    return x\n")
    m = importlib.reload(mod)
    assert sg.grad(m.overwrite)(0.5) == 0.0
    _, t = sg.jvp(m.overwrite)(0.5, 1.0)
    assert t == 0.0
