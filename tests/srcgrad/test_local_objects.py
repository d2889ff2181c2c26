"""Objects made inside a differentiated function to hold values (srcgrad/local_objects.py): their
attributes are differentiated as variables, checked against finite differences on reverse and forward
mode; objects that are more than their values are left as written."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import srcgrad as sg
from tests.srcgrad.util import numeric_grad


class Carry:
    pass


@dataclass
class Particle:
    pos: np.ndarray
    vel: np.ndarray
    drag: float = 0.1


class WithConstant:
    gain = 3.0


def integrate_empty_record(q0, p0):
    st = Carry()
    st.q, st.p = q0, p0
    for _ in range(4):
        (st.q, st.p) = (st.q + 0.1 * st.p, st.p - 0.1 * np.sin(st.q))
    st.energy = np.sum(st.p ** 2) + np.sum(np.cos(st.q))
    return st.energy


def integrate_dataclass(x, v):
    s = Particle(x, vel=v)
    for _ in range(3):
        s.vel = s.vel * (1.0 - s.drag) - 0.2 * s.pos
        s.pos = s.pos + 0.2 * s.vel
    return np.sum(s.pos ** 2) + 0.5 * np.sum(s.vel)


def uses_a_class_attribute(x):
    w = WithConstant()
    w.value = x * 2.0
    return np.sum(w.value * w.gain)


@pytest.mark.parametrize("fn", [integrate_empty_record, integrate_dataclass])
def test_attributes_of_a_local_record_are_differentiated_as_variables(fn):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=3), rng.normal(size=3)
    ga, gb = sg.grad(fn, wrt=(0, 1))(a, b)
    np.testing.assert_allclose(ga, numeric_grad(fn, [a.copy(), b.copy()], 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gb, numeric_grad(fn, [a.copy(), b.copy()], 1), rtol=1e-6, atol=1e-8)
    ta, tb = rng.normal(size=3), rng.normal(size=3)
    _, t = sg.jvp(fn, wrt=(0, 1))(a, b, (ta, tb))
    np.testing.assert_allclose(t, ga @ ta + gb @ tb, rtol=1e-6)


def test_generated_code_reads_the_attributes_as_variables():
    g = sg.grad(integrate_empty_record, wrt=(0, 1))
    g(np.ones(3), np.ones(3))
    code = [ln for ln in g.source.splitlines() if not ln.strip().startswith("#")]
    assert not any("st.q" in ln for ln in code) and any("st_q" in ln for ln in code)


def test_a_class_attribute_is_read_from_the_class():
    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(sg.grad(uses_a_class_attribute)(x), numeric_grad(uses_a_class_attribute,
                                                                                 [x.copy()], 0))
