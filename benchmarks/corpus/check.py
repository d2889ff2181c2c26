"""A program's gradient against central finite differences along random directions.

For each direction, the gradient's dot product with it is compared with a central difference of the
forward along it, at three step sizes: a loop that stops on the data may change its trip count within
one step, so one size that agrees is enough; a wrong gradient agrees at none.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.corpus.program import Program

STEPS = (1e-6, 1e-7, 1e-5)


def direction(value: Any, rng: np.random.Generator) -> Any:
    """A random direction scaled to the argument's size (a learning rate of 1e-4 moves by ~1e-4)."""
    if np.ndim(value) == 0:
        return float(rng.standard_normal() * (abs(float(value)) + 1e-3))
    v = np.asarray(value, dtype=float)
    return rng.standard_normal(v.shape) * (np.sqrt(np.mean(v * v)) + 1e-3)


def _moved(args: tuple[Any, ...], wrt: tuple[int, ...], dirs: list[Any], t: float) -> list[Any]:
    a = list(args)
    for i, d in zip(wrt, dirs, strict=True):
        a[i] = a[i] + t * d
    return a


def gradient_error(p: Program, args: tuple[Any, ...], grads: tuple[Any, ...], trials: int = 2,
                   seed: int = 0) -> str | None:
    """None when `grads` (one per `p.wrt`) agree with finite differences, else what disagrees."""
    value = float(p.forward(*args))
    for i, g in zip(p.wrt, grads, strict=True):
        if np.shape(g) != np.shape(args[i]):
            return f"gradient {i} has shape {np.shape(g)}, argument {np.shape(args[i])}"
        if not np.all(np.isfinite(g)):
            return f"gradient {i} is not finite"
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        dirs = [direction(args[i], rng) for i in p.wrt]
        analytic = sum(float(np.sum(np.asarray(g) * d)) for g, d in zip(grads, dirs, strict=True))
        seen = []
        for t in STEPS:
            fd = (float(p.forward(*_moved(args, p.wrt, dirs, t)))
                  - float(p.forward(*_moved(args, p.wrt, dirs, -t)))) / (2 * t)
            # relative tolerance plus the round-off of a central difference of a value of this size
            allowed = p.fd_rtol * max(abs(fd), abs(analytic)) + 1e-12 * (abs(value) + 1) / t
            if abs(fd - analytic) <= allowed:
                break
            seen.append(f"h={t:g}: fd {fd:.9g}")
        else:
            return f"along direction {trial}: srcgrad {analytic:.9g}, " + "; ".join(seen)
    return None
