"""Issue 12's speed check: code written the way users write it (comprehensions, nested helpers, lambdas
given to an integrator, pytree parameters, methods) against the same program rewritten by hand into the
forms srcgrad took before (loops that append, module-level helpers, separate array arguments). Each pair
is timed in one run, gradient by srcgrad, median of repeats; the ratio should be about 1.

    .venv/bin/python -m benchmarks.rewritten_forms
"""

from __future__ import annotations

import time

import numpy as np

import srcgrad as sg

RNG = np.random.default_rng(0)
X = RNG.normal(size=64)
W1, B1 = 0.3 * RNG.normal(size=(32, 16)), RNG.normal(size=32)
W2, B2 = 0.3 * RNG.normal(size=(4, 32)), RNG.normal(size=4)
INPUT = RNG.normal(size=16)
LAYERS = 0.3 * RNG.normal(size=(6, 16, 16))


# --- a comprehension against a loop that appends ------------------------------------------------------
def energy_comprehension(x):
    return sum(np.sin(x[i]) * x[i + 1] for i in range(len(x) - 1))


def energy_loop(x):
    terms = []
    for i in range(len(x) - 1):
        terms.append(np.sin(x[i]) * x[i + 1])
    return sum(terms)


# --- a nested helper closing over a value against a module-level helper -------------------------------
def smooth_nested(x, c):
    def huber(v):
        return np.where(np.abs(v) < c, 0.5 * v * v, c * (np.abs(v) - 0.5 * c))
    return np.sum(huber(x)) + np.sum(huber(2.0 * x))


def _huber(v, c):
    return np.where(np.abs(v) < c, 0.5 * v * v, c * (np.abs(v) - 0.5 * c))


def smooth_module(x, c):
    return np.sum(_huber(x, c)) + np.sum(_huber(2.0 * x, c))


# --- a lambda given to an integrator against the integrator written out -------------------------------
def rk4(f, y, h, n):
    for _ in range(n):
        k1 = f(y)
        k2 = f(y + 0.5 * h * k1)
        k3 = f(y + 0.5 * h * k2)
        k4 = f(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def decay_lambda(y0, k):
    return np.sum(rk4(lambda y: -k * y * y, y0, 0.01, 50))


def decay_written_out(y0, k):
    y = y0
    for _ in range(50):
        k1 = -k * y * y
        y1 = y + 0.005 * k1
        k2 = -k * y1 * y1
        y2 = y + 0.005 * k2
        k3 = -k * y2 * y2
        y3 = y + 0.01 * k3
        k4 = -k * y3 * y3
        y = y + 0.01 / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return np.sum(y)


# --- pytree parameters against separate arrays ---------------------------------------------------------
def mlp_dict(params, x):
    h = np.tanh(params["l1"]["W"] @ x + params["l1"]["b"])
    return np.sum((params["l2"]["W"] @ h + params["l2"]["b"]) ** 2)


def mlp_arrays(W1, b1, W2, b2, x):
    h = np.tanh(W1 @ x + b1)
    return np.sum((W2 @ h + b2) ** 2)


# --- a model object calling its own methods against functions of arrays -------------------------------
class Model:
    def __init__(self):
        self.W1, self.b1, self.W2, self.b2 = W1, B1, W2, B2

    def hidden(self, x):
        return np.tanh(self.W1 @ x + self.b1)

    def loss(self, x):
        return np.sum((self.W2 @ self.hidden(x) + self.b2) ** 2)


def _hidden(W1, b1, x):
    return np.tanh(W1 @ x + b1)


def model_functions(x, W1, b1, W2, b2):
    return np.sum((W2 @ _hidden(W1, b1, x) + b2) ** 2)


# --- an object made to hold the state against plain variables ------------------------------------------
class Carry:
    pass


def leapfrog_object(q0, p0):
    st = Carry()
    st.q, st.p = q0, p0
    for _ in range(20):
        st.p = st.p - 0.05 * np.sin(st.q)
        (st.q, st.p) = (st.q + 0.1 * st.p, st.p - 0.05 * np.sin(st.q + 0.1 * st.p))
    return np.sum(st.q ** 2 + st.p)


def leapfrog_variables(q0, p0):
    q, p = q0, p0
    for _ in range(20):
        p = p - 0.05 * np.sin(q)
        (q, p) = (q + 0.1 * p, p - 0.05 * np.sin(q + 0.1 * p))
    return np.sum(q ** 2 + p)


# --- rows of a state array written past a view of the previous row, against copies ---------------------
def layers_view(x, W):
    state = np.zeros((W.shape[0] + 1, x.shape[0]))
    state[0] = x
    h = state[0]
    for i in range(W.shape[0]):
        state[i + 1] = np.tanh(W[i] @ h)
        h = state[i + 1]
    return np.sum(h ** 2)


def layers_copy(x, W):
    state = np.zeros((W.shape[0] + 1, x.shape[0]))
    state[0] = x
    h = state[0].copy()
    for i in range(W.shape[0]):
        state[i + 1] = np.tanh(W[i] @ h)
        h = state[i + 1].copy()
    return np.sum(h ** 2)


# --- a dict returned, under jvp, against a tuple -------------------------------------------------------
def moments_dict(x):
    m = np.mean(x)
    return {"mean": m, "var": np.mean((x - m) ** 2)}


def moments_tuple(x):
    m = np.mean(x)
    return m, np.mean((x - m) ** 2)


def _time(fn, *args, repeats: int = 30) -> float:
    fn(*args)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def pairs() -> list[tuple[str, float, float]]:
    params = {"l1": {"W": W1, "b": B1}, "l2": {"W": W2, "b": B2}}
    model = Model()
    y0 = np.linspace(0.5, 1.5, 8)
    rows = [
        ("comprehension vs loop", _time(sg.grad(energy_comprehension), X), _time(sg.grad(energy_loop), X)),
        ("nested helper vs module helper", _time(sg.grad(smooth_nested), X, 0.5),
         _time(sg.grad(smooth_module), X, 0.5)),
        ("lambda to rk4 vs written out", _time(sg.grad(decay_lambda), y0, 0.7),
         _time(sg.grad(decay_written_out), y0, 0.7)),
        ("dict params vs arrays", _time(sg.grad(mlp_dict), params, INPUT),
         _time(sg.grad(mlp_arrays, wrt=(0, 1, 2, 3)), W1, B1, W2, B2, INPUT)),
        ("bound method vs functions", _time(sg.grad(model.loss), INPUT),
         _time(sg.grad(model_functions), INPUT, W1, B1, W2, B2)),
        ("object attributes vs variables", _time(sg.grad(leapfrog_object, wrt=(0, 1)), X, X),
         _time(sg.grad(leapfrog_variables, wrt=(0, 1)), X, X)),
        ("rows past a view vs copies", _time(sg.grad(layers_view), INPUT, LAYERS),
         _time(sg.grad(layers_copy), INPUT, LAYERS)),
        ("dict output vs tuple (jvp)", _time(sg.jvp(moments_dict), X, X),
         _time(sg.jvp(moments_tuple), X, X)),
    ]
    return rows


def main() -> None:
    print(f"{'program':34s} {'as written':>12s} {'rewritten':>12s} {'ratio':>7s}")
    for label, written, rewritten in pairs():
        print(f"{label:34s} {written * 1e6:10.1f}us {rewritten * 1e6:10.1f}us {written / rewritten:7.2f}")


if __name__ == "__main__":
    main()
