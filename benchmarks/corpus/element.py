# ruff: noqa: B007, E501 -- user-style code: loop counters that only count, long lines as written
"""Element loops: Python loops that read x[i] one element at a time (n of several thousand)."""

import math

import numpy as np

from benchmarks.corpus.program import Program


def elem_loop(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + np.sin(x[i]) * x[i]
    return s


def _elem_inputs(n):
    return lambda: (np.random.default_rng(90).uniform(-2, 2, n),)


def elem_recurrence(x, a):
    y = 0.0
    s = 0.0
    for i in range(len(x)):
        y = a * y + x[i]
        s += y * y
    return s / len(x)


def elem_total_variation(x):
    tv = 0.0
    for i in range(1, x.shape[0]):
        d = x[i] - x[i - 1]
        tv = tv + math.sqrt(d * d + 1e-4)
    return tv


def elem_horner(c, t):
    # a polynomial with coefficients c evaluated at a Python float by Horner's rule
    p = 0.0
    for k in range(c.shape[0] - 1, -1, -1):
        p = p * t + c[k]
    return p


def elem_running_logsumexp(x):
    acc = x[0]
    total = 0.0
    for i in range(1, x.shape[0]):
        hi = max(acc, x[i])
        acc = hi + math.log(math.exp(acc - hi) + math.exp(x[i] - hi))
        total = total + acc
    return total / x.shape[0]


PROGRAMS = [
    Program("elem_loop_4k", "element", elem_loop, _elem_inputs(4000), (0,),
            "s = s + np.sin(x[i]) * x[i], n = 4,000", group="elem_loop"),
    Program("elem_loop_8k", "element", elem_loop, _elem_inputs(8000), (0,),
            "the same, n = 8,000", group="elem_loop"),
    Program("elem_loop_64k", "element", elem_loop, _elem_inputs(64000), (0,),
            "the same, n = 64,000 (the issue's case; skipped when n = 8,000 is too slow, see corpus_run)",
            group="elem_loop", quick_inputs=_elem_inputs(4000), test_inputs=_elem_inputs(500)),
    Program("elem_recurrence", "element", elem_recurrence,
            lambda: (np.random.default_rng(91).standard_normal(3000), 0.9), (0, 1),
            "y = a y + x[i]; s += y * y over 3,000 elements, len(x)"),
    Program("elem_total_variation", "element", elem_total_variation,
            lambda: (np.cumsum(np.random.default_rng(92).standard_normal(3000)) * 0.1,), (0,),
            "smoothed total variation of 3,000 points with math.sqrt of x[i] - x[i - 1]"),
    Program("elem_horner", "element", elem_horner,
            lambda: (np.random.default_rng(93).standard_normal(3000) / 50, 0.999), (0, 1),
            "Horner's rule over 3,000 coefficients c[k], reversed range"),
    Program("elem_running_logsumexp", "element", elem_running_logsumexp,
            lambda: (np.random.default_rng(94).standard_normal(2000),), (0,),
            "running log-sum-exp over 2,000 elements with max() and math.exp/log"),
]
