"""srcgrad's compiler on a loop whose trip count depends on the data.

`steps_to_escape` keeps rotating and stretching a point until it leaves the unit disc, so how many times
the loop runs depends on the input. JAX's compiled mode cannot differentiate such a `while` in reverse;
srcgrad generates plain Python for the forward sweep (recording the trip count and the overwritten values)
and the adjoint (replaying the loop backwards). This script prints that generated code, then checks the
gradient against central finite differences.

    python examples/compiled_loop.py
"""

import numpy as np

import srcgrad as sg


def steps_to_escape(x, y, stretch):
    """Rotate-and-stretch (x, y) until it leaves the unit disc; return a smooth score of the last point."""
    n = 0
    while x * x + y * y < 1.0:
        x, y = stretch * (0.8 * x - 0.6 * y), stretch * (0.6 * x + 0.8 * y)
        n += 1
    return np.sin(x) * y + n


def main() -> None:
    grad = sg.grad(steps_to_escape, wrt=(0, 1, 2))
    args = (0.11, 0.07, 1.3)
    print("Generated adjoint (Python floats in: scalar code, math.* calls, no NumPy per operation):\n")
    print(grad.source_for(*args))

    value = steps_to_escape(*args)
    gx, gy, gs = grad(*args)
    h = 1e-6
    numeric = []
    for i in range(3):
        up = list(args)
        dn = list(args)
        up[i] += h
        dn[i] -= h
        numeric.append((steps_to_escape(*up) - steps_to_escape(*dn)) / (2 * h))
    print(f"f{args} = {value:.6f}")
    print(f"{'':12}{'compiled':>14}{'finite diff.':>16}")
    for label, g, d in zip(("d/dx", "d/dy", "d/dstretch"), (gx, gy, gs), numeric, strict=False):
        print(f"{label:12}{g:14.8f}{d:16.8f}")
    assert np.allclose([gx, gy, gs], numeric, rtol=1e-5, atol=1e-7), "gradient check failed"
    print("gradient check: ok")


if __name__ == "__main__":
    main()
