"""The Python users write (issue 12): lambdas, nested functions, comprehensions, objects, pytrees, the
NumPy calls programs make, and objectives written for HIPS autograd, each checked against finite
differences on compiled reverse, compiled forward and the eager tape where it applies.

`python -m tests.srcgrad.language.survey` prints how each case and check fares today."""
