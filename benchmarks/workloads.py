"""The benchmark workloads, each written once as plain NumPy Python.

A workload's `fn` is ordinary NumPy code in the language srcgrad's compiler reads (loops, `while`, `if`,
`np.*` calls, `x.T`, `@`), so the `compiled` adapter hands that very source to `srcgrad.grad/vjp/hvp/hessian`,
the `numpy` adapter times it as the unit, and HIPS autograd and JAX run it with `np` rebound to their own
NumPy (`rebind`). Engines with another idiom get their own version of the same computation: `torch_fn`
(Tensor methods, global `torch`: PyTorch, or srcgrad's eager tape with `torch` rebound to srcgrad) and
`jax_fn` (lax loops, so `jit` compiles one loop body instead of unrolling thousands of steps).

Every workload carries a closed-form reference for what the engines must return (hand-written adjoints,
checked against finite differences by tests/benchmarks/test_harness.py); an engine's answer is compared
with it before any of its timings count.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

# Bound by `rebind` to PyTorch or to srcgrad when a `torch_fn` runs; None here so the module imports
# without either installed.
torch: Any = None

KINDS = ("grad", "vjp", "hvp", "hessian")


@dataclass
class Workload:
    """One computation to differentiate, with its inputs and the answer every engine must give.

    kind: "grad" (gradients of a scalar wrt `wrt`), "vjp" (vᵀJ wrt args[0]), "hvp" (H·v wrt args[0]) or
    "hessian" (the full Hessian wrt args[0]). Results are always compared as a tuple of float64 arrays,
    one per differentiated argument.
    """

    name: str
    kind: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    wrt: tuple[int, ...]
    reference: Callable[[Workload], tuple[np.ndarray, ...]]
    description: str
    v: np.ndarray | None = None
    torch_fn: Callable[..., Any] | None = None
    jax_fn: Callable[..., Any] | None = None
    # A loop whose trip count depends on array values: jax.jit cannot differentiate it in reverse.
    data_dependent: bool = False
    # Issue 5 measures srcgrad.autograd.functional (Tensor in, Tensor out) on this workload.
    functional: bool = False
    rtol: float = 1e-6
    _expected: tuple[np.ndarray, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown workload kind {self.kind!r}")

    def expected(self) -> tuple[np.ndarray, ...]:
        """The reference result, computed once."""
        if self._expected is None:
            self._expected = tuple(np.asarray(r, dtype=np.float64) for r in self.reference(self))
        return self._expected


def rebind(fn: Callable[..., Any], **names: Any) -> Callable[..., Any]:
    """A copy of `fn` whose module globals `names` are replaced (`np` -> autograd.numpy, `torch` -> srcgrad).

    The copy shares `fn`'s code object, so it is the same source running on another library.
    """
    env = dict(fn.__globals__)
    env.update(names)
    new = types.FunctionType(fn.__code__, env, fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__doc__ = fn.__doc__
    return new


# --------------------------------------------------------------------------------------------- tiny
def tiny(a):
    return np.sum(2 * np.sin(a) + 1)


def tiny_torch(a):
    return (2 * torch.sin(a) + 1).sum()


def _tiny_ref(w: Workload) -> tuple[np.ndarray, ...]:
    return (2 * np.cos(w.args[0]),)


# ---------------------------------------------------------------------------------------------- mlp
def mlp(W1, b1, W2, b2, x, y):
    h = np.maximum(x @ W1.T + b1, 0.0)
    out = h @ W2.T + b2
    return np.sum((y - out) ** 2)


def mlp_torch(W1, b1, W2, b2, x, y):
    h = torch.relu(x @ W1.t() + b1)
    out = h @ W2.t() + b2
    return (y - out).pow(2).sum()


def _mlp_ref(w: Workload) -> tuple[np.ndarray, ...]:
    W1, b1, W2, b2, x, y = w.args
    z1 = x @ W1.T + b1
    h = np.maximum(z1, 0.0)
    out = h @ W2.T + b2
    dout = -2.0 * (y - out)
    dz1 = (dout @ W2) * (z1 > 0)
    return dz1.T @ x, dz1.sum(axis=0), dout.T @ h, dout.sum(axis=0)


# ----------------------------------------------------------------------------------------- doubling
def doubling(x):
    y = x * 2
    while np.linalg.norm(y) < 1000:
        y = y * 2
    return y


def doubling_torch(x):
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    return y


def _doubling_ref(w: Workload) -> tuple[np.ndarray, ...]:
    x = w.args[0]
    k = 1
    while np.linalg.norm(x * 2.0**k) < 1000:
        k += 1
    return (w.v * 2.0**k,)


# ---------------------------------------------------------------------------------------------- rnn
def rnn(Wxh, Whh, b, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(Wxh @ xs[t] + Whh @ h + b)
    return np.sum(h * h)


def rnn_torch(Wxh, Whh, b, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = torch.tanh(Wxh @ xs[t] + Whh @ h + b)
    return (h * h).sum()


def rnn_jax(Wxh, Whh, b, xs, h0):
    def step(h, x):
        return np.tanh(Wxh @ x + Whh @ h + b), None

    h, _ = jax_lax().scan(step, h0, xs)
    return np.sum(h * h)


def _rnn_ref(w: Workload) -> tuple[np.ndarray, ...]:
    Wxh, Whh, b, xs, h0 = w.args
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(Wxh @ xs[t] + Whh @ hs[-1] + b))
    dWxh, dWhh, db = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(b)
    dh = 2 * hs[-1]
    for t in reversed(range(xs.shape[0])):
        dz = dh * (1 - hs[t + 1] ** 2)
        dWxh += np.outer(dz, xs[t])
        dWhh += np.outer(dz, hs[t])
        db += dz
        dh = Whh.T @ dz
    return dWxh, dWhh, db


# ----------------------------------------------------------------------------------------- pendulum
PENDULUM_STEPS = 2000


def pendulum(damping, length):
    theta = 1.0
    omega = 0.0
    for _ in range(2000):
        alpha = -(9.81 / length) * np.sin(theta) - damping * omega
        theta = theta + 0.01 * omega
        omega = omega + 0.01 * alpha
    return theta


def pendulum_torch(damping, length):
    theta = torch.tensor(1.0, dtype=torch.float64)
    omega = torch.tensor(0.0, dtype=torch.float64)
    for _ in range(2000):
        alpha = -(9.81 / length) * torch.sin(theta) - damping * omega
        theta = theta + 0.01 * omega
        omega = omega + 0.01 * alpha
    return theta


def pendulum_jax(damping, length):
    def step(_, state):
        theta, omega = state
        alpha = -(9.81 / length) * np.sin(theta) - damping * omega
        return theta + 0.01 * omega, omega + 0.01 * alpha

    theta, _ = jax_lax().fori_loop(0, 2000, step, (np.asarray(1.0), np.asarray(0.0)))
    return theta


def _pendulum_ref(w: Workload) -> tuple[np.ndarray, ...]:
    c, L = w.args
    g, dt = 9.81, 0.01
    thetas, omegas = [1.0], [0.0]
    for _ in range(PENDULUM_STEPS):
        th, om = thetas[-1], omegas[-1]
        alpha = -(g / L) * math.sin(th) - c * om
        thetas.append(th + dt * om)
        omegas.append(om + dt * alpha)
    b_th, b_om, b_c, b_L = 1.0, 0.0, 0.0, 0.0
    for k in reversed(range(PENDULUM_STEPS)):
        th, om = thetas[k], omegas[k]
        b_alpha = dt * b_om
        b_c -= b_alpha * om
        b_L += b_alpha * (g / L**2) * math.sin(th)
        b_th, b_om = b_th - b_alpha * (g / L) * math.cos(th), b_om + dt * b_th - c * b_alpha
    return np.float64(b_c), np.float64(b_L)


# -------------------------------------------------------------------------------------- elementwise
def elementwise(x):
    return np.sum(np.sin(x) * np.exp(-x**2))


def elementwise_torch(x):
    return (torch.sin(x) * torch.exp(-x.pow(2))).sum()


def _elementwise_ref(w: Workload) -> tuple[np.ndarray, ...]:
    x = w.args[0]
    return ((np.cos(x) - 2 * x * np.sin(x)) * np.exp(-x**2),)


# ---------------------------------------------------------------------------------------------- hvp
def cube_sum(x):
    return np.sum(x**3)


def cube_sum_torch(x):
    return x.pow(3).sum()


def _cube_ref(w: Workload) -> tuple[np.ndarray, ...]:
    return (3 * w.args[0] ** 2,)


def _hvp_ref(w: Workload) -> tuple[np.ndarray, ...]:
    return (6 * w.args[0] * w.v,)


# ------------------------------------------------------------------------------------------ hessian
def cube_chain(x):
    return np.sum(x**3) + np.sum(x[:-1] * x[1:])


def cube_chain_torch(x):
    return x.pow(3).sum() + (x[:-1] * x[1:]).sum()


def _hessian_ref(w: Workload) -> tuple[np.ndarray, ...]:
    x = w.args[0]
    n = x.shape[0]
    return (np.diag(6 * x) + np.eye(n, k=1) + np.eye(n, k=-1),)


# ----------------------------------------------------------------------------------------- longloop
LONGLOOP_STEP = 1e-3


def longloop(x):
    y = x
    while np.linalg.norm(y) < 17.4:
        y = y + 0.001 * np.tanh(y)
    return y


def longloop_torch(x):
    y = x
    while y.data.norm() < 17.4:
        y = y + 0.001 * torch.tanh(y)
    return y


def _longloop_ref(w: Workload) -> tuple[np.ndarray, ...]:
    ys = [w.args[0]]
    while np.linalg.norm(ys[-1]) < 17.4:
        ys.append(ys[-1] + LONGLOOP_STEP * np.tanh(ys[-1]))
    b = w.v
    for y in reversed(ys[:-1]):
        b = b * (1 + LONGLOOP_STEP * (1 - np.tanh(y) ** 2))
    return (b,)


def longloop_trips(x: np.ndarray) -> int:
    """How many times `longloop`'s while runs for this input (about 10,000 for the benchmark's)."""
    y, n = x, 0
    while np.linalg.norm(y) < 17.4:
        y, n = y + LONGLOOP_STEP * np.tanh(y), n + 1
    return n


# ----------------------------------------------------------------------------------------- overhead
def trivial(x):
    return x * 2.0


def trivial_torch(x):
    return x * 2.0


def _trivial_ref(w: Workload) -> tuple[np.ndarray, ...]:
    return (np.float64(2.0),)


def jax_lax() -> Any:
    """jax.lax, imported only when a jax_fn runs."""
    from jax import lax

    return lax


# ------------------------------------------------------------------------------------------ registry
def make_workloads(*, small: bool = False) -> dict[str, Workload]:
    """All workloads, keyed by name, in table order. `small=True` shrinks the sizes (for fast tests);
    the benchmark always uses the full sizes of issue 2."""
    rng = np.random.default_rng(0)

    def randn(*shape: int, scale: float = 1.0) -> np.ndarray:
        return rng.standard_normal(shape) * scale

    d_in, d_hid, d_out, batch = (20, 8, 3, 4) if small else (1000, 100, 10, 16)
    T, H, I = (12, 6, 4) if small else (200, 64, 32)
    n_elem = 1000 if small else 4_000_000
    n_hvp = 30 if small else 1000
    n_hess = 8 if small else 50
    x_hvp = randn(n_hvp)

    ws = [
        Workload("tiny", "grad", tiny, (np.linspace(0, 2 * np.pi, 25),), (0,), _tiny_ref,
                 "sum(2 sin a + 1), a = linspace(0, 2pi, 25)", torch_fn=tiny_torch),
        Workload("mlp", "grad", mlp,
                 (randn(d_hid, d_in, scale=d_in**-0.5), randn(d_hid, scale=0.1),
                  randn(d_out, d_hid, scale=d_hid**-0.5), randn(d_out, scale=0.1),
                  randn(batch, d_in), randn(batch, d_out)),
                 (0, 1, 2, 3), _mlp_ref,
                 f"{d_in}->{d_hid}->{d_out} ReLU net, batch {batch}, squared error, grad of all 4 parameters",
                 torch_fn=mlp_torch),
        Workload("doubling", "vjp", doubling, (np.array([0.7, -1.3, 0.4]),), (0,), _doubling_ref,
                 "tutorial's `while y.data.norm() < 1000: y = y * 2`, vjp with v",
                 v=np.array([0.1, 1.0, 0.0001]), torch_fn=doubling_torch, data_dependent=True),
        Workload("rnn", "grad", rnn,
                 (randn(H, I, scale=I**-0.5), randn(H, H, scale=0.9 * H**-0.5), randn(H, scale=0.1),
                  randn(T, I), np.zeros(H)),
                 (0, 1, 2), _rnn_ref, f"tanh RNN, T={T}, hidden {H}, input {I}, grad of Wxh, Whh, b",
                 torch_fn=rnn_torch, jax_fn=rnn_jax),
        Workload("pendulum", "grad", pendulum, (0.1, 1.0), (0, 1), _pendulum_ref,
                 "explicit Euler, 2000 steps on Python floats, grad wrt damping and length",
                 torch_fn=pendulum_torch, jax_fn=pendulum_jax),
        Workload("elementwise", "grad", elementwise, (randn(n_elem),), (0,), _elementwise_ref,
                 f"sum(sin x * exp(-x^2)), {n_elem:,} float64", torch_fn=elementwise_torch),
        Workload("cube", "grad", cube_sum, (x_hvp,), (0,), _cube_ref,
                 f"gradient of sum(x^3), n={n_hvp}: the hvp workload's first-order baseline",
                 torch_fn=cube_sum_torch),
        Workload("hvp", "hvp", cube_sum, (x_hvp,), (0,), _hvp_ref,
                 f"Hessian-vector product of sum(x^3), n={n_hvp}", v=randn(n_hvp), torch_fn=cube_sum_torch),
        Workload("hessian", "hessian", cube_chain, (randn(n_hess),), (0,), _hessian_ref,
                 f"full Hessian of sum(x^3) + sum(x[:-1] x[1:]), n={n_hess}", torch_fn=cube_chain_torch),
        Workload("longloop", "vjp", longloop, (np.array([0.5, -0.8, 0.3]),), (0,), _longloop_ref,
                 "functional vjp of a while whose trip count (~10,000) depends on the data",
                 v=np.array([1.0, -0.5, 0.25]), torch_fn=longloop_torch, data_dependent=True,
                 functional=True),
        Workload("overhead", "grad", trivial, (3.0,), (0,), _trivial_ref,
                 "call overhead: cached gradient of x * 2.0 on a Python float (compiled target < 5 us)",
                 torch_fn=trivial_torch),
    ]
    return {w.name: w for w in ws}
