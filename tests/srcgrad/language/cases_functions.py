"""Functions as users write them: lambdas, nested defs closing over active values, counters kept by
helpers, functools.partial, decorators with *args/**kwargs wrappers, *args signatures, starred calls."""

import functools

import numpy as np

from tests.srcgrad.language.harness import Case


def _vec(n):
    return lambda r: (r.normal(size=n),)


# --- lambdas -------------------------------------------------------------------------------------------

smooth_l1 = lambda w: (np.sqrt(1.0 + w ** 2) - 1.0).sum()

# two lambdas on one line: the compiler must tell them apart by position
kinetic, potential = lambda v: 0.5 * (v * v).sum(), lambda q: (1.0 - np.cos(q)).sum()

# a lambda spanning lines inside a call (the Case below)
_ridge_case = Case(
    "lambda_multiline_in_call",
    lambda w: (np.log1p(np.exp(-w)).sum()
               + 0.05 * (w ** 2).sum()),
    _vec(5),
    checks=("reverse", "forward", "tape"),
)


def softplus_regression(w, X, y):
    act = lambda z: np.log1p(np.exp(z))
    pred = act(X @ w)
    return np.sum((pred - y) ** 2)


def trapezoid(fn, a, b, n):
    t = np.linspace(a, b, n)
    vals = fn(t)
    return (t[1] - t[0]) * (np.sum(vals) - 0.5 * (vals[0] + vals[-1]))


def gaussian_mass(k, c):
    # a lambda closing over the differentiated k and c, passed to a user function
    return trapezoid(lambda t: np.exp(-k * (t - c) ** 2), 0.0, 2.0, 41)


def apply_twice(fn, x):
    return fn(fn(x))


def damped_map(x, gamma):
    step = lambda v: v - gamma * np.sin(v)
    return (apply_twice(step, x) ** 2).sum()


# --- nested defs ---------------------------------------------------------------------------------------

def exp_decay_fit(theta, t, y):
    def model(s):
        return theta[0] * np.exp(-theta[1] * s) + theta[2]

    resid = model(t) - y
    return 0.5 * np.sum(resid ** 2)


def rk4_oscillator(omega, x0):
    def rhs(state):
        return np.array([state[1], -omega ** 2 * state[0]])

    def rk4_step(state, h):
        k1 = rhs(state)
        k2 = rhs(state + 0.5 * h * k1)
        k3 = rhs(state + 0.5 * h * k2)
        k4 = rhs(state + h * k3)
        return state + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)

    s = x0
    for _ in range(10):
        s = rk4_step(s, 0.1)
    return s[0] ** 2 + s[1]


def newton_sqrt_counted(a):
    # a nested helper that counts its own calls with nonlocal
    calls = 0

    def newton(x):
        nonlocal calls
        calls += 1
        return 0.5 * (x + a / x)

    x = a
    for _ in range(6):
        x = newton(x)
    return x * calls / 6.0


def penalized_energy(x):
    # a nested helper that keeps a counter in an attribute
    def residual(v):
        residual.count += 1
        return np.tanh(v) - 0.3 * v

    residual.count = 0
    r1 = residual(x)
    r2 = residual(2.0 * x)
    return np.sum(r1 ** 2 + r2 ** 2) + 0.0 * residual.count


def nested_twice(x, s):
    def outer(v):
        def inner(u):
            return np.sin(s * u)

        return inner(v) * v

    return np.sum(outer(x))


# --- functools.partial ---------------------------------------------------------------------------------

def huber(r, delta):
    a = np.abs(r)
    return np.sum(np.where(a < delta, 0.5 * r ** 2, delta * (a - 0.5 * delta)))


def robust_fit(w, X, y, delta):
    return huber(X @ w - y, delta)


def leaky_relu(z, slope):
    return np.where(z > 0, z, slope * z)


def leaky_mlp(w, x):
    act = functools.partial(leaky_relu, slope=0.1)
    h = act(w[:4] * x)
    return np.sum(act(h * w[4:]))


# --- decorators whose wrappers take *args, **kwargs ---------------------------------------------------

def count_calls(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        wrapper.calls += 1
        return fn(*args, **kwargs)

    wrapper.calls = 0
    return wrapper


def scaled(factor):
    def decorate(fn):
        def wrapper(*args, **kwargs):
            return factor * fn(*args, **kwargs)

        return wrapper

    return decorate


@count_calls
def spring_energy(x, k=2.0):
    d = np.diff(x)
    return 0.5 * k * np.sum((d - 1.0) ** 2)


@scaled(0.5)
def log_barrier(x):
    return -np.sum(np.log(x))


# --- *args signatures and starred calls ---------------------------------------------------------------

def total_elastic(*springs):
    e = 0.0
    for s in springs:
        e = e + np.sum(s ** 2) / len(springs)
    return e


def rosen3(a, b, c):
    return (1 - a) ** 2 + 100 * (b - a ** 2) ** 2 + (1 - b) ** 2 + 100 * (c - b ** 2) ** 2


def starred_rosen(x):
    return rosen3(*x)


def starred_list_call(x):
    # a list of known length spread into a call, after a positional argument
    scaled = [x[0] * 2.0, x[1]]
    return rosen3(x[2], *scaled)


def cell_energy(x, y):
    return np.sum(x * y) + np.sum(np.tanh(x))


def starred_tuple_call(p):
    pair = (p[:3], p[3:])
    return cell_energy(*pair)


def kw_forward(w, x):
    opts = {"slope": 0.2}
    return np.sum(leaky_relu(w * x, **opts) ** 2)


LAMBDA_ARG = "lambda argument of a user function, closing over active values"
NESTED = "nested def closing over active values"

CASES = [
    Case("lambda_simple", smooth_l1, _vec(5), checks=("reverse", "forward", "tape")),
    Case("lambda_pair_first", kinetic, _vec(4), checks=("reverse", "forward", "tape")),
    Case("lambda_pair_second", potential, _vec(4), checks=("reverse", "forward", "tape")),
    _ridge_case,
    Case("lambda_local_activation", softplus_regression,
         lambda r: (r.normal(size=3), r.normal(size=(6, 3)), r.normal(size=6))),
    Case("lambda_closure_to_integrator", gaussian_mass, lambda r: (1.3, 0.8), wrt=(0, 1)),
    Case("lambda_closure_higher_order", damped_map, lambda r: (r.normal(size=4), 0.4), wrt=(0, 1),
         checks=("reverse", "forward", "tape")),
    Case("nested_def_model", exp_decay_fit,
         lambda r: (np.array([2.0, 0.7, 0.1]), np.linspace(0, 3, 8), r.normal(size=8))),
    Case("nested_def_rk4", rk4_oscillator, lambda r: (1.3, np.array([1.0, 0.2])), wrt=(0, 1)),
    Case("nested_def_nonlocal_counter", newton_sqrt_counted, lambda r: (2.5,),
         checks=("reverse", "forward", "tape")),
    Case("nested_def_attribute_counter", penalized_energy, _vec(4)),
    Case("nested_def_two_levels", nested_twice, lambda r: (r.normal(size=4), 0.9), wrt=(0, 1)),
    Case("partial_of_objective", functools.partial(robust_fit, delta=0.5),
         lambda r: (r.normal(size=3), r.normal(size=(7, 3)), r.normal(size=7))),
    Case("partial_inside", leaky_mlp, lambda r: (r.normal(size=8), r.normal(size=4))),
    Case("decorator_counting_wrapper", spring_energy, _vec(5)),
    Case("decorator_scaling_wrapper", log_barrier, lambda r: (r.uniform(0.5, 2.0, size=4),)),
    Case("star_args_signature", total_elastic, lambda r: (r.normal(size=3), r.normal(size=2)), wrt=(0, 1)),
    Case("starred_call_scalars", starred_rosen, lambda r: (np.array([0.9, 1.1, 1.2]),),
         checks=("reverse", "forward", "tape")),
    Case("starred_call_of_list", starred_list_call, lambda r: (np.array([0.9, 1.1, 1.2]),)),
    Case("starred_call_tuple", starred_tuple_call, _vec(6)),
    Case("double_star_call", kw_forward, lambda r: (r.normal(size=4), r.normal(size=4))),
]
