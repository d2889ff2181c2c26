"""Issue 12: a new user's programs in many Python styles, checked against central finite differences.

Each program is written as a JAX / HIPS-autograd / PyTorch user would write it: lambdas handed to
helpers, closures, partials, decorators, comprehensions and generators, module-like classes, local
state objects, pytrees, a spread of NumPy calls, and arrays written through row views. Every check
compares `grad` (or `vjp`) with central differences, `jvp` with the directional difference, makes sure
the caller's arrays are untouched, and calls the transform twice. Programs that expose srcgrad bugs are
strict xfails with a one-line reason."""

import functools
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pytest

import srcgrad as sg

from .harness import (
    assert_unchanged,
    axpy,
    check,
    check_jvp,
    check_vjp,
    fd_leaf,
    normal_sampler,
    random_like,
    snapshot,
)

rn = normal_sampler(12)


# ----------------------------------------------------------------------------------------------------
# lambdas: passed to sg.grad directly, to user helpers, several on one line

X_DATA = rn(7, 3)
Y_DATA = rn(7)


def test_lambda_ridge_passed_to_grad_directly():
    w = rn(3)
    loss = lambda w: np.mean((X_DATA @ w - Y_DATA) ** 2) + 0.05 * w @ w  # noqa: E731
    g = sg.grad(loss)(w)
    np.testing.assert_allclose(g, fd_leaf(loss, w, ()), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sg.grad(loss)(w), g)
    check(loss, w)


def test_two_lambdas_on_one_line_given_to_grad():
    ga, gb = sg.grad(lambda x: np.sum(x ** 3)), sg.grad(lambda x: np.sum(np.sin(x)))
    x = rn(4)
    np.testing.assert_allclose(ga(x), 3 * x ** 2, rtol=1e-12)
    np.testing.assert_allclose(gb(x), np.cos(x), rtol=1e-12)


def test_two_lambdas_on_one_line_same_arg_name_in_a_list():
    fs = [lambda v: np.sum(np.exp(v)), lambda v: np.sum(v ** 2) * 0.5]
    x = rn(3)
    np.testing.assert_allclose(sg.grad(fs[0])(x), np.exp(x), rtol=1e-12)
    np.testing.assert_allclose(sg.grad(fs[1])(x), x, rtol=1e-12)


def euler(rhs, y0, h, n):
    y = y0
    for i in range(n):
        y = y + h * rhs(i * h, y)
    return y


def decay_fit(k, y0):
    y = euler(lambda t, y: -k * y + 0.3 * np.sin(t), y0, 0.05, 20)
    return np.sum((y - 0.2) ** 2)


def test_lambda_closing_over_the_parameter_given_to_an_integrator():
    check(decay_fit, 0.8, rn(3), argnums=(0, 1))


def apply_each(fn, xs):
    return [fn(x) for x in xs]


def lambda_into_map_helper(w, xs):
    outs = apply_each(lambda r: np.tanh(r @ w), xs)
    return sum(o ** 2 for o in outs)


def test_lambda_into_a_user_map_helper():
    check(lambda_into_map_helper, rn(3), rn(4, 3))


def two_lambdas_one_line(a, x):
    act, sq = lambda z: np.tanh(a * z), lambda z: z * z  # noqa: E731
    return np.sum(sq(act(x)) - act(sq(x)))


def test_two_local_lambdas_assigned_on_one_line():
    check(two_lambdas_one_line, 0.6, rn(4), argnums=(0, 1))


def compose(*fns):
    def run(x):
        for fn in fns:
            x = fn(x)
        return x
    return run


def pipeline(s, x):
    f = compose(lambda z: z * s, np.tanh, lambda z: z ** 2)
    return np.sum(f(x))


def test_lambdas_composed_by_a_helper_returning_a_closure():
    check(pipeline, 1.3, rn(4), argnums=(0, 1))


def cube(z):
    return z ** 3


def softplus(z):
    return np.log1p(np.exp(z))


def three_defs_composed(w, x):
    f = compose(cube, np.sin, softplus)
    g = compose(lambda z: w * z)
    return np.sum(f(g(x))) + np.sum(compose(np.tanh, cube)(w * x))


def test_def_functions_composed_by_a_helper_and_the_closure_called_at_once():
    check(three_defs_composed, 0.7, rn(4), argnums=(0, 1))


def make_scaler(c):
    def scale(z):
        return c * z
    return scale


def scaler_factory_inside(c, x):
    half, by_c = make_scaler(0.5), make_scaler(c)
    c = 2.0 * c  # the closure read c when it was made: make_scaler's own parameter, not this variable
    return np.sum(half(by_c(x)) ** 2) + c


def test_a_factory_returning_a_closure_called_inside():
    check(scaler_factory_inside, 1.3, rn(3), argnums=(0, 1))


def composed_returned(x):
    return compose(np.tanh, np.sin)


def last_of_fns(*fns):
    return fns[-1]


def picks_a_lambda(x):
    return np.sum(last_of_fns(np.sin, lambda z: z * 2.0)(x))


def test_a_function_picked_from_star_args_is_called():
    check(picks_a_lambda, rn(3))


def listed_fns(*fns):
    return list(fns)


def keeps_lambdas_in_a_list(x):
    return np.sum(listed_fns(lambda z: z * 2.0)[0](x))


def test_functions_used_as_values_are_refused_with_the_line():
    with pytest.raises(sg.TransformError, match=r"(?s)used as a value.*test_issue12_styles.py.*"
                       r"return compose\(np.tanh, np.sin\)"):
        sg.grad(composed_returned)(rn(3))
    with pytest.raises(sg.TransformError, match=r"(?s)holds functions.*return list\(fns\)"):
        sg.grad(keeps_lambdas_in_a_list)(rn(3))


# ----------------------------------------------------------------------------------------------------
# nested defs, partial, decorators


def damped_energy(log_omega, gamma, q0):
    omega = np.exp(log_omega)

    def accel(q, p):
        return -(omega ** 2) * q - gamma * p

    q, p = q0, 0.0 * q0
    for _ in range(15):
        p = p + 0.05 * accel(q, p)
        q = q + 0.05 * p
    return np.sum(0.5 * p ** 2 + 0.5 * omega ** 2 * q ** 2)


def test_nested_def_closing_over_a_differentiated_value():
    check(damped_energy, 0.2, 0.1, rn(3), argnums=(0, 1, 2))


def make_loss(X, y):
    def loss(w, b):
        return np.mean(np.log1p(np.exp(-y * (X @ w + b))))
    return loss


def test_closure_returned_by_a_factory_is_differentiated():
    X, y = rn(6, 2), np.sign(rn(6))
    loss = make_loss(X, y)
    check(loss, rn(2), 0.1, argnums=(0, 1))


def gauss_nll(x, mu, log_sigma, weight=1.0):
    s = np.exp(log_sigma)
    return weight * np.sum(0.5 * ((x - mu) / s) ** 2 + log_sigma)


def test_partial_binding_data_positionally_and_weight_by_keyword():
    x = rn(5)
    nll = functools.partial(gauss_nll, x, weight=0.5)
    check(nll, 0.3, -0.2, argnums=(0, 1))


def partial_inside(mu, x):
    parts = [functools.partial(gauss_nll, xi, weight=float(i + 1)) for i, xi in enumerate(x)]
    return sum(p(mu, 0.1) for p in parts)


def test_partials_kept_in_a_list_are_refused_cleanly():
    with pytest.raises(sg.TransformError, match="function stored in a local variable"):
        sg.grad(partial_inside)(0.4, rn(3))


def partial_bound_inside(mu, x):
    nll = functools.partial(gauss_nll, x, weight=2.0)
    return nll(mu, 0.1) + nll(mu * 0.5, log_sigma=-0.3)


def test_partial_bound_inside_with_keyword_call():
    check(partial_bound_inside, 0.4, rn(3), argnums=(0, 1))


def scaled_by(c):
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return c * fn(*args, **kwargs)
        return wrapper
    return deco


@scaled_by(3.0)
def quad_form(x, A, shift=0.0):
    return (x - shift) @ A @ (x - shift)


def test_decorator_factory_whose_wrapper_scales_the_result():
    A = rn(3, 3)
    check(quad_form, rn(3), A, argnums=(0, 1))


def test_decorated_function_with_keyword_through_the_wrapper():
    A = rn(3, 3)
    x = rn(3)
    f = functools.partial(quad_form, shift=0.5)
    g = sg.grad(f)(x, A)
    np.testing.assert_allclose(g, fd_leaf(lambda z: f(z, A), x, ()), rtol=1e-5, atol=1e-7)


def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        value = fn(*args, **kwargs)
        return 1.0 * value
    return wrapper


@logged
def huber(r, *, delta=1.0):
    a = np.abs(r)
    return np.sum(np.where(a < delta, 0.5 * r ** 2, delta * (a - 0.5 * delta)))


def robust_fit(w, X, y):
    r = X @ w - y
    return huber(r, delta=0.3) + 0.1 * huber(w)


def test_a_wrapper_forwarding_kwargs_to_a_keyword_only_parameter():
    w, X, y = rn(3), rn(6, 3), rn(6)
    check(robust_fit, w, X, y, argnums=(0, 1))
    g = sg.grad(huber)(w, delta=0.2)
    np.testing.assert_allclose(g, fd_leaf(lambda z: huber(z, delta=0.2), w, ()), rtol=1e-5, atol=1e-7)


def sum_of_squares(*xs, scale=1.0):
    total = 0.0
    for v in xs:
        total = total + np.sum(v ** 2)
    return scale * total / len(xs)


def starred_tuple_built_here(a, b):
    pair = (a, np.tanh(b))
    opts = {"scale": 2.0}
    return sum_of_squares(*pair, **opts) + sum_of_squares(a, b, a * b)


def test_a_starred_call_of_a_tuple_built_locally_into_a_star_args_helper():
    check(starred_tuple_built_here, rn(3), rn(3), argnums=(0, 1))


def timed(fn):
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        return out
    return wrapper


@timed
def layer(W, x):
    return np.tanh(W @ x)


def two_layers(W1, W2, x):
    return np.sum(layer(W2, layer(W1, x)) ** 2)


def test_decorated_helper_called_inside_the_differentiated_function():
    check(two_layers, rn(3, 3), rn(2, 3), rn(3), argnums=(0, 1, 2))


# ----------------------------------------------------------------------------------------------------
# comprehensions and generators


def windows(x, k):
    for i in range(x.shape[0] - k + 1):
        yield x[i:i + k]


def moving_average_loss(x):
    total = 0.0
    for w in windows(x, 3):
        total = total + np.mean(w) ** 2
    return total


def test_generator_function_consumed_by_a_for_loop():
    check(moving_average_loss, rn(6))


def pairs(xs):
    for i in range(len(xs) - 1):
        yield xs[i], xs[i + 1]


def chain_energy(pos):
    return sum(np.sum((b - a) ** 2) for a, b in pairs(pos))


def test_generator_of_tuples_consumed_by_sum():
    check(chain_energy, rn(5, 2))


def poly_kernel(x, z):
    K = np.stack([np.array([(1.0 + xi @ zj) ** 2 for zj in z]) for xi in x])
    return np.sum(K ** 2) + np.trace(K)


def test_np_stack_of_nested_comprehensions():
    check(poly_kernel, rn(3, 2), rn(3, 2), argnums=(0, 1))


def weighted_features(x):
    feats = {f"p{k}": x ** k for k in range(1, 4)}
    return sum(np.sum(v) * (i + 1) for i, v in enumerate(feats.values()))


def test_dict_comprehension_not_over_a_pytree_is_refused_as_documented():
    with pytest.raises(sg.TransformError, match="dict comprehension"):
        sg.grad(weighted_features)(rn(4))


def sgd_step(params, grads, lr):
    return {k: params[k] - lr * grads[k] for k in params}


def unrolled_meta(params, data):
    for _ in range(2):
        grads = {k: 2.0 * (v - data) for k, v in params.items()}
        params = sgd_step(params, grads, 0.1)
    return np.sum(params["w"] ** 2) + np.sum(params["b"] ** 2)


def test_dict_comprehension_over_a_pytree_in_a_helper_loop():
    check(unrolled_meta, {"w": rn(3), "b": 0.5}, rn(3))


def sgd_step_filled(params, grads, lr):
    new = {}
    for k in params:
        new[k] = params[k] - lr * grads[k]
    return new


def unrolled_meta_filled(params, data):
    for _ in range(2):
        grads = {k: 2.0 * (v - data) for k, v in params.items()}
        params = sgd_step_filled(params, grads, 0.1)
    return np.sum(params["w"] ** 2) + np.sum(params["b"] ** 2)


def test_helper_filling_a_new_dict_in_a_loop_over_the_pytree():
    check(unrolled_meta_filled, {"w": rn(3), "b": 0.5}, rn(3))


def update_layer(layer, x, lr):
    return {k: v - lr * np.tanh(v * x[0]) for k, v in layer.items()}


def update_net(net, x):
    return {name: update_layer(layer, x, 0.1) for name, layer in net.items()}


def net_after_updates(net, x):
    for _ in range(3):
        net = update_net(net, x)
    h = np.tanh(net["l1"]["w"] * x + net["l1"]["b"])
    return np.sum(net["l2"]["w"] * h) + net["l2"]["b"]


def test_nested_dict_param_updated_in_a_loop_by_helpers_over_items():
    net = {"l1": {"w": rn(3), "b": 0.3}, "l2": {"w": rn(3), "b": 0.1}}
    check(net_after_updates, net, rn(3))
    check(net_after_updates, net, rn(3), argnums=1)


def adam_like(params, x):
    state = {k: {"m": 0.0 * v, "v": 0.0 * v + 1.0} for k, v in params.items()}
    for _ in range(2):
        g = {k: 2.0 * v * x for k, v in params.items()}
        state = {k: {"m": 0.9 * state[k]["m"] + 0.1 * g[k], "v": 0.9 * state[k]["v"] + 0.1 * g[k] ** 2}
                 for k in params}
        params = {k: params[k] - 0.1 * state[k]["m"] / np.sqrt(state[k]["v"]) for k in params}
    return sum(np.sum(v ** 2) for v in params.values())


def test_nested_optimizer_state_built_by_dict_comprehensions():
    check(adam_like, {"w": rn(3), "b": 0.4}, rn(3))


def inline_sgd(params, data):
    for _ in range(3):
        params = {k: v - 0.1 * (v - data) ** 2 for k, v in params.items()}
    return sum(np.sum(v ** 2) for v in params.values())


def test_dict_comprehension_over_a_pytree_rebinding_it_in_a_loop():
    check(inline_sgd, {"w": rn(3), "b": 0.5}, rn(3))


def local_dict_literal(params, data):
    grads = {"w": 2 * (params["w"] - data), "b": params["b"] * 1.0}
    return sum(np.sum(g ** 2) for g in grads.values()) + grads["b"] * params["b"]


def test_local_dict_literal_of_gradients():
    check(local_dict_literal, {"w": rn(3), "b": 0.5}, rn(3))


def gen_list_sum(x):
    squares = list(v * v for v in x)
    evens = [s for i, s in enumerate(squares) if i % 2 == 0]
    return sum(evens) + max(squares) + min(v for v in x)


def test_list_of_a_generator_filtered_comprehension_and_builtin_max_min():
    check(gen_list_sum, np.array([0.3, -1.2, 0.8, 2.1, -0.4]))


# ----------------------------------------------------------------------------------------------------
# classes: module-like models, callables, counters, local state objects


class Dense:
    def __init__(self, W, b):
        self.W = W
        self.b = b

    def __call__(self, x):
        return np.tanh(x @ self.W + self.b)


class MLP:
    def __init__(self, sizes, rng):
        self.layers = [Dense(rng.normal(size=(m, n)) * 0.5, rng.normal(size=n) * 0.1)
                       for m, n in zip(sizes[:-1], sizes[1:], strict=True)]
        self.calls = 0

    def forward(self, x):
        for lyr in self.layers:
            x = lyr(x)
        return x

    def loss(self, x, y):
        self.calls += 1
        return np.mean((self.forward(x) - y) ** 2)


def test_module_like_model_grad_wrt_input_through_bound_method():
    m = MLP([3, 4, 2], np.random.default_rng(1))
    x, y = rn(5, 3), rn(5, 2)
    check(m.loss, x, y, argnums=0)
    assert m.calls >= 1


def model_loss(model, x, y):
    return model.loss(x, y)


def test_module_like_model_grad_wrt_the_model():
    m = MLP([3, 4, 2], np.random.default_rng(2))
    x, y = rn(5, 3), rn(5, 2)
    g = sg.grad(model_loss)(m, x, y)
    W0 = m.layers[0].W
    want = fd_leaf(lambda W: _with_w0(m, W, x, y), W0, ())
    np.testing.assert_allclose(g["layers"][0]["W"], want, rtol=1e-5, atol=1e-7)


def _with_w0(m, W, x, y):
    old = m.layers[0].W
    m.layers[0].W = W
    try:
        return m.loss(x, y)
    finally:
        m.layers[0].W = old


class RBFNet:
    def __init__(self, centers, width):
        self.centers = centers
        self.width = width
        self.evals = 0

    def features(self, x):
        d2 = np.sum((x[:, None, :] - self.centers[None, :, :]) ** 2, axis=-1)
        return np.exp(-d2 / (2 * self.width ** 2))

    def __call__(self, x, w):
        self.evals += 1
        return self.features(x) @ w


def test_callable_instance_with_a_counter_on_self():
    net = RBFNet(rn(4, 2), 0.8)
    x, w = rn(6, 2), rn(4)
    f = lambda x, w: np.sum(net(x, w) ** 2)  # noqa: E731
    check(f, x, w, argnums=(0, 1))
    before = net.evals
    sg.grad(net.__call__, argnums=1)  # building does not run it
    assert net.evals == before


@dataclass
class Particle:
    q: np.ndarray
    p: np.ndarray


def leapfrog(q0, p0, k):
    s = Particle(q0, p0)
    for _ in range(10):
        s.p = s.p - 0.05 * k * s.q
        s.q, s.p = s.q + 0.1 * s.p, s.p - 0.05 * k * (s.q + 0.1 * s.p)
    return np.sum(s.q ** 2) + np.sum(s.p * s.q)


def test_local_dataclass_state_with_tuple_unpacking_into_attributes():
    check(leapfrog, rn(2), rn(2), 1.7, argnums=(0, 1, 2))


class Box:
    pass


def running_stats(xs):
    st = Box()
    st.mean, st.m2, st.n = 0.0, 0.0, 0
    for x in xs:
        st.n += 1
        delta = x - st.mean
        st.mean = st.mean + delta / st.n
        st.m2 = st.m2 + delta * (x - st.mean)
    return st.m2 / (st.n - 1) + st.mean ** 2


def test_local_plain_object_welford_variance():
    check(running_stats, rn(6))


class Scaler:
    def __init__(self, mu, sd):
        self.mu = mu
        self.sd = sd

    def transform(self, x):
        return (x - self.mu) / self.sd

    def inverse(self, z):
        return z * self.sd + self.mu


class Regressor:
    def __init__(self, scaler):
        self.scaler = scaler

    def predict(self, w, x):
        z = self.scaler.transform(x)
        return self.scaler.inverse(np.tanh(z * w))

    def loss(self, w, x, y):
        return np.sum((self.predict(w, x) - y) ** 2)


def test_method_calling_a_submodule_s_methods():
    r = Regressor(Scaler(0.3, 1.7))
    check(r.loss, rn(4), rn(4), rn(4), argnums=(0, 1))


class Base:
    def act(self, z):
        return np.tanh(z)

    def score(self, w, x):
        return np.sum(self.act(x @ w) ** 2)


class Soft(Base):
    def act(self, z):
        return np.log1p(np.exp(z))

    def score(self, w, x):
        return super().score(w, x) + 0.1 * np.sum(w ** 2)


def test_subclass_calling_super_method():
    check(Soft().score, rn(3), rn(5, 3), argnums=(0, 1))


# ----------------------------------------------------------------------------------------------------
# pytrees


class Gaussian(NamedTuple):
    mu: np.ndarray
    log_sd: np.ndarray


@dataclass
class VAEParams:
    enc: dict
    prior: Gaussian
    layers: list = field(default_factory=list)


def elbo_like(p, x, eps):
    h = np.tanh(p.enc["W"] @ x + p.enc["b"])
    for W in p.layers:
        h = np.tanh(W @ h)
    z = h + np.exp(p.prior.log_sd) * eps
    kl = np.sum(0.5 * (z - p.prior.mu) ** 2 * np.exp(-2 * p.prior.log_sd) + p.prior.log_sd)
    return kl + np.sum(z ** 2)


def test_dataclass_with_dict_namedtuple_and_list_fields():
    p = VAEParams({"W": rn(2, 3), "b": rn(2)}, Gaussian(rn(2), rn(2) * 0.1), [rn(2, 2), rn(2, 2)])
    g = check(elbo_like, p, rn(3), rn(2))
    assert isinstance(g, VAEParams) and isinstance(g.prior, Gaussian) and len(g.layers) == 2


def tuple_layers(layers, x, scale):
    for W, b in layers:
        x = np.maximum(W @ x + b, 0.0) + 0.01 * (W @ x + b)
    return scale * np.sum(x ** 2)


def test_list_of_tuples_and_a_float_with_argnums():
    layers = [(rn(3, 3), rn(3)), (rn(2, 3), rn(2))]
    check(tuple_layers, layers, rn(3), 0.7, argnums=(0, 2))


def stats(x):
    m = np.mean(x)
    return {"mean": m, "var": np.mean((x - m) ** 2), "max": np.max(x) * 1.0}


def test_function_returning_a_dict_under_jvp_vjp_and_jacobian():
    x, t = np.array([0.3, 1.2, -0.5, 0.9]), rn(4)
    before = x.copy()
    val, tan = sg.jvp(stats)(x, t)
    h = 1e-6
    for k in ("mean", "var", "max"):
        want = (stats(x + h * t)[k] - stats(x - h * t)[k]) / (2 * h)
        np.testing.assert_allclose(tan[k], want, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(val[k], stats(x)[k])
    ct = {"mean": 0.5, "var": -1.0, "max": 2.0}
    _, g = sg.vjp(stats)(x, ct)
    f = lambda z: sum(ct[k] * stats(z)[k] for k in ct)  # noqa: E731
    np.testing.assert_allclose(g, fd_leaf(f, x, ()), rtol=1e-5, atol=1e-7)
    J = sg.jacobian(stats)(x)
    np.testing.assert_allclose(J["var"], fd_leaf(lambda z: stats(z)["var"], x, ()), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(x, before)


def stats_nested_args(p, x):
    z = p["w"] * x + p["b"]
    return {"loss": np.sum(z ** 2), "pred": z}


def test_dict_output_jvp_wrt_a_dict_argument():
    p, x = {"w": rn(3), "b": 0.2}, rn(3)
    check_jvp(stats_nested_args, p, x)


def loss_with_dict_aux(w, X, y):
    r = X @ w - y
    loss = np.mean(r ** 2)
    return loss, {"residual_norm": np.linalg.norm(r), "n": X.shape[0], "pred": X @ w}


def test_has_aux_dict_under_grad_value_and_grad_and_vjp():
    w, X, y = rn(3), rn(6, 3), rn(6)
    g, aux = sg.grad(loss_with_dict_aux, has_aux=True)(w, X, y)
    want = fd_leaf(lambda z: loss_with_dict_aux(z, X, y)[0], w, ())
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-7)
    assert aux["n"] == 6 and np.allclose(aux["pred"], X @ w)
    (v, aux2), g2 = sg.value_and_grad(loss_with_dict_aux, has_aux=True)(w, X, y)
    np.testing.assert_allclose(g2, want, rtol=1e-5, atol=1e-7)
    assert v == pytest.approx(loss_with_dict_aux(w, X, y)[0])
    out, gv, aux3 = sg.vjp(loss_with_dict_aux, has_aux=True)(w, X, y, 2.0)
    np.testing.assert_allclose(gv, 2 * want, rtol=1e-5, atol=1e-7)
    assert aux3["residual_norm"] == pytest.approx(np.linalg.norm(X @ w - y))


def test_has_aux_dict_with_a_dict_argument_and_argnums_tuple():
    def loss(p, x, y):
        pred = x @ p["w"] + p["b"]
        return np.mean((pred - y) ** 2), {"pred": pred}

    p, x, y = {"w": rn(3), "b": 0.1}, rn(5, 3), rn(5)
    (gp, gx), aux = sg.grad(loss, argnums=(0, 1), has_aux=True)(p, x, y)
    np.testing.assert_allclose(gp["w"], fd_leaf(lambda w: loss({"w": w, "b": 0.1}, x, y)[0], p["w"], ()),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gx, fd_leaf(lambda z: loss(p, z, y)[0], x, ()), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------------------------------
# NumPy calls


def copies(x):
    a = x.copy()
    b = np.copy(x)
    a[0] = a[0] * 3.0
    b[-1] += a[0]
    return np.sum(a * b)


def test_copy_and_np_copy_then_written():
    check(copies, rn(4))


def full_from_value(s, x):
    a = np.full(x.shape, s)
    b = np.full_like(x, s * 2.0)
    c = np.full((2, 3), s ** 2)
    return np.sum(a * x) + np.sum(b ** 2) + np.sum(c)


def test_full_and_full_like_with_a_differentiated_fill_value():
    check(full_from_value, 0.7, rn(3), argnums=(0, 1))


def full_array_fill(v):
    return np.sum(np.full((3, 2), v) ** 2)


def test_full_with_an_array_fill_value_broadcast():
    check(full_array_fill, rn(2))


def atleast(x, s):
    a = np.atleast_1d(s)
    b = np.atleast_2d(x)
    c = np.atleast_3d(x)
    return np.sum(a * x) + np.sum(b.T @ b) + np.sum(c ** 3) + np.sum(np.atleast_2d(s) ** 2)


def test_atleast_1d_2d_3d_of_array_and_float():
    check(atleast, rn(3), 0.4, argnums=(0, 1))


def stacking(a, b):
    cs = np.column_stack([a, b, a * b])
    h = np.hstack((a, b))
    v = np.vstack((a, b))
    d = np.dstack([a, b])
    return np.sum(cs @ np.ones(3)) + np.sum(h ** 2) + np.sum(v.T @ v) + np.sum(np.sin(d))


def test_column_stack_dstack_of_lists_hstack_vstack_of_tuples():
    check(stacking, rn(4), rn(4), argnums=(0, 1))


def stacking_tuples(a, b):
    return np.sum(np.column_stack((a, b, a * b)) ** 2) + np.sum(np.cos(np.dstack((a, b))))


def test_column_stack_and_dstack_of_tuple_literals():
    check(stacking_tuples, rn(4), rn(4), argnums=(0, 1))


def positional_axis(a, b):
    c = np.concatenate([a, b], 1)
    s = np.stack([a, b], 2)
    s0 = np.stack((a, b), -1)
    return np.sum(c ** 2) + np.sum(s[:, :, 0] * s[:, :, 1]) + np.sum(s0 ** 3)


def test_concatenate_and_stack_with_positional_axis():
    check(positional_axis, rn(2, 3), rn(2, 3), argnums=(0, 1))


def conv_all(a, v):
    full = np.convolve(a, v, "full")
    same = np.convolve(v, a, mode="same")
    valid = np.convolve(a, v, mode="valid")
    cf = np.correlate(a, v, "full")
    cs = np.correlate(a, v, mode="same")
    cv = np.correlate(v, a)
    return (np.sum(full ** 2) + np.sum(same * np.arange(same.shape[0])) + np.sum(valid ** 3)
            + np.sum(cf * cf[::-1]) + np.sum(cs ** 2) + np.sum(cv))


def test_convolve_and_correlate_every_mode_positional_and_swapped():
    check(conv_all, rn(7), rn(3), argnums=(0, 1))


def conv_even_kernel(a, v):
    return np.sum(np.convolve(a, v, mode="same") ** 2) + np.sum(np.correlate(a, v, mode="same") ** 2)


def test_convolve_same_with_an_even_kernel():
    check(conv_even_kernel, rn(6), rn(4), argnums=(0, 1))


def test_convolve_same_with_kernel_longer_than_signal():
    check(conv_even_kernel, rn(3), rn(5), argnums=(0, 1))


def interp_curve(knots_y, x):
    xp = np.linspace(0.0, 1.0, knots_y.shape[0])
    return np.sum(np.interp(x, xp, knots_y) ** 2) + np.interp(0.33, xp, knots_y)


def test_interp_of_learned_knots_and_a_scalar_query():
    check(interp_curve, rn(5), np.array([0.1, 0.45, 0.62, 0.97]), argnums=(0, 1))


def kron_exp2(A, b):
    K = np.kron(A, b[:, None])
    return np.sum(np.exp2(K) * 0.1) + np.sum(np.kron(b, b) ** 2)


def test_kron_matrix_column_and_vectors_with_exp2():
    check(kron_exp2, rn(2, 2), rn(3), argnums=(0, 1))


def top2_gather(logits):
    idx = np.argsort(-logits, axis=1)[:, :2]
    top = np.take_along_axis(logits, idx, axis=1)
    masked = np.zeros_like(logits)
    np.put_along_axis(masked, idx, np.exp(top), axis=1)
    return np.sum(masked * logits) + np.sum(top ** 2)


def test_take_along_axis_put_along_axis_top_k():
    check(top2_gather, rn(3, 5))


def linalg_mix(A):
    S = A @ A.T + 3.0 * np.eye(3)
    w, V = np.linalg.eigh(S)
    U, s, Vt = np.linalg.svd(A)
    Q, R = np.linalg.qr(A)
    sign, logdet = np.linalg.slogdet(S)
    ld = np.linalg.slogdet(S).logabsdet
    return (w[-1] + np.sum(V[:, 0] ** 4) + s[0] ** 2 + np.sum(np.abs(np.diag(R)))
            + logdet + 0.5 * ld + np.linalg.slogdet(S)[1])


def test_eigh_svd_qr_slogdet_indexed_and_logabsdet():
    check(linalg_mix, rn(3, 3))


def slogdet_only_attribute(A):
    return np.linalg.slogdet(A @ A.T + np.eye(2)).logabsdet


def test_slogdet_logabsdet_directly():
    check(slogdet_only_attribute, rn(2, 2))


def spectral(x):
    X = np.fft.fft(x)
    back = np.fft.ifft(X * np.exp(-np.arange(x.shape[0]) * 0.1)).real
    R = np.fft.rfft(x)
    y = np.fft.irfft(R * 0.5, n=x.shape[0])
    return np.sum(np.abs(X) ** 2) + np.sum(back ** 2) + np.sum(y * x) + np.sum(R.real)


def test_fft_ifft_rfft_irfft():
    check(spectral, rn(8))


def test_fft_program_called_again_with_another_length():
    check(spectral, rn(8))
    check(spectral, rn(6))


def special_math(a, b):
    return math.lgamma(a) + math.gamma(b) + math.erf(a - b) + math.erf(0.5 * a) ** 2


def test_math_lgamma_gamma_erf_scalars():
    check(special_math, 1.7, 2.4, argnums=(0, 1))


def beta_loglik(alpha, x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + math.lgamma(alpha + 1.0) - math.lgamma(alpha) + alpha * math.log(x[i])
    return s + math.erf(alpha / 3.0)


def test_math_functions_of_array_elements_in_a_loop():
    check(beta_loglik, 1.3, np.array([0.2, 0.7, 0.5]), argnums=(0, 1))


def order_stats(x):
    s = sorted(x)
    top = sum(s[-2:])
    squares = list(map(lambda v: v ** 2, x))
    return top + max(squares) - min(x[0], x[1], 0.5 * x[2]) + max(np.abs(x)) + sum(map(np.tanh, x))


def test_sorted_map_and_builtin_max_min():
    check(order_stats, np.array([0.3, -1.1, 0.8, 1.9]))


def max_of_several(a, b, c):
    return max(a * b, b + c, c ** 2) + min(a, b) * min([a, b, c])


def test_builtin_max_min_of_scalars_and_list():
    check(max_of_several, 0.9, 1.3, -0.4, argnums=(0, 1, 2))


# ----------------------------------------------------------------------------------------------------
# arrays written through views and rows


def trajectory(x0, k):
    state = np.zeros((8, x0.shape[0]))
    state[0] = x0
    for i in range(7):
        x = state[i]
        state[i + 1] = x - 0.1 * k * x ** 3
    return np.sum(state[-1] ** 2) + np.sum(state)


def test_row_view_read_then_next_row_written():
    check(trajectory, rn(3), 0.8, argnums=(0, 1))
    check(trajectory, rn(5), 0.8, argnums=(0, 1))


def heat(u0, kappa):
    U = np.zeros((6, u0.shape[0]))
    U[0, :] = u0
    for t in range(5):
        u = U[t]
        lap = np.zeros_like(u)
        lap[1:-1] = u[:-2] - 2 * u[1:-1] + u[2:]
        U[t + 1] = u + kappa * lap
    return np.sum(U[-1] ** 2) + 0.1 * np.sum(U[:, 2])


def test_heat_equation_rows_written_through_views():
    check(heat, rn(6), 0.2, argnums=(0, 1))


def rnn_states(x, W, U):
    H = np.zeros((x.shape[0] + 1, W.shape[0]))
    for t in range(x.shape[0]):
        h = H[t]
        H[t + 1] = np.tanh(W @ h + U @ x[t])
    return np.sum(H[1:] ** 2)


def test_rnn_hidden_states_in_a_preallocated_array():
    check(rnn_states, rn(4, 2), rn(3, 3) * 0.5, rn(3, 2), argnums=(0, 1, 2))


def cumulative_rows(x):
    out = np.empty((x.shape[0], x.shape[1]))
    out[0] = x[0]
    for i in range(1, x.shape[0]):
        prev = out[i - 1]
        out[i] = prev * 0.9 + x[i]
    return np.sum(out ** 2)


def test_empty_buffer_with_previous_row_view():
    check(cumulative_rows, rn(4, 3))


def row_inplace_update(x):
    buf = np.array(x)
    row = buf[1]
    row *= 2.0
    return np.sum(buf ** 2)


def test_in_place_update_of_a_row_view_of_a_local_copy():
    x = rn(3, 2)
    try:
        g = sg.grad(row_inplace_update)(x)
    except sg.TransformError:
        return                                     # refusing is fine
    want = fd_leaf(row_inplace_update, x, ())
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-7)


def view_write_no_copy(x):
    y = x * 1.0
    r = y[0]
    r[0] = 5.0
    return np.sum(y ** 2)


def test_write_through_a_row_view_of_a_temporary():
    x = rn(2, 3)
    before = x.copy()
    try:
        g = sg.grad(view_write_no_copy)(x)
    except sg.TransformError:
        return
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(g, fd_leaf(view_write_no_copy, x, ()), rtol=1e-5, atol=1e-7)


def state_swap(x):
    state = np.zeros((3, 2))
    state[0] = x
    a = state[0]
    state[1] = a * 2.0
    state[0] = state[1] + 1.0
    return np.sum(state * np.arange(6.0).reshape(3, 2)) + np.sum(a ** 2)


def test_overwriting_the_row_a_view_was_taken_from():
    # `a` is a view: after `state[0] = ...`, a sees the new row (NumPy semantics), which generated code
    # (a new array per write) would not: refused, even after another row was written in between
    x = rn(2)
    with pytest.raises(sg.TransformError, match="names the same array"):
        sg.value_and_grad(state_swap)(x)


def predictor_corrector(x0, k):
    state = np.zeros((4, x0.shape[0]))
    state[0] = x0
    total = 0.0
    for i in range(3):
        x = state[i]
        state[i + 1] = x - k * x ** 3               # predictor
        state[i] = 0.5 * (x + state[i + 1])         # corrector rewrites the row x views
        total = total + np.sum(x ** 2)              # NumPy: x is now the corrected row
    return total + np.sum(state[-1])


def test_predictor_corrector_rewriting_the_viewed_row():
    x0 = rn(3)
    # x views the row the corrector rewrites: NumPy changes x, generated code would not: refused
    with pytest.raises(sg.TransformError, match="names the same array"):
        sg.value_and_grad(predictor_corrector, argnums=(0, 1))(x0, 0.3)


# ----------------------------------------------------------------------------------------------------
# more lambdas, helpers taking functions, maps


def fixed_point(fn, x0, tol=1e-12, max_iter=200):
    x = x0
    for _ in range(max_iter):
        x_new = fn(x)
        if np.max(np.abs(x_new - x)) < tol:
            return x_new
        x = x_new
    return x


def contraction_solution(theta, b):
    x = fixed_point(lambda z: 0.5 * np.tanh(theta * z) + b, np.zeros_like(b))
    return np.sum(x ** 2)


def test_lambda_given_to_a_fixed_point_solver_with_early_return():
    check(contraction_solution, 0.7, rn(3), argnums=(0, 1), rtol=1e-4)


def scaled_lambdas(x, coeffs):
    fns = [lambda z, c=c: c * z ** 2 for c in (1.0, 2.0, 3.0)]
    return sum(np.sum(fn(x) * coeffs[i]) for i, fn in enumerate(fns))


def test_lambdas_with_default_capture_built_in_a_comprehension():
    x, c = rn(3), rn(3)
    try:
        sg.grad(scaled_lambdas)(x, c)
    except sg.TransformError:
        return                                     # refusing is fine
    check(scaled_lambdas, x, c, argnums=(0, 1))


def map_two_iterables(x, y):
    prods = list(map(lambda a, b: a * b + np.sin(a), x, y))
    return sum(prods) + sum(map(lambda a: a ** 3, y))


def test_map_of_a_two_argument_lambda_over_two_arrays():
    check(map_two_iterables, rn(4), rn(4), argnums=(0, 1))


def trapz_integrate(fn, a, b, n):
    h = (b - a) / n
    total = 0.5 * (fn(a) + fn(b))
    for i in range(1, n):
        total = total + fn(a + i * h)
    return total * h


def gaussian_mass(mu, sigma):
    return trapz_integrate(lambda t: math.exp(-0.5 * ((t - mu) / sigma) ** 2), -1.0, 2.0, 40)


def test_lambda_of_python_floats_given_to_a_quadrature_helper():
    check(gaussian_mass, 0.3, 0.8, argnums=(0, 1))


def test_value_and_grad_hessian_of_a_lambda_on_one_line():
    f = lambda v: np.sum(np.log1p(v ** 2)) + v[0] * v[1]  # noqa: E731
    x = rn(2)
    (val, g), H = sg.value_and_grad(f)(x), sg.hessian(f)(x)
    assert val == pytest.approx(f(x))
    np.testing.assert_allclose(g, fd_leaf(f, x, ()), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(H, fd_leaf(lambda z: sg.grad(f)(z), x, ()), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------------
# more generators and comprehensions


def minibatches(X, y, size):
    for i in range(0, X.shape[0], size):
        yield X[i:i + size], y[i:i + size]


def unrolled_sgd(w, X, y):
    for batch in minibatches(X, y, 2):
        xb, yb = batch
        g = 2 * xb.T @ (xb @ w - yb) / xb.shape[0]
        w = w - 0.1 * g
    return np.sum((X @ w - y) ** 2)


def test_generator_of_minibatches_unpacked_in_the_body():
    check(unrolled_sgd, rn(3), rn(6, 3), rn(6), argnums=(0, 1))


def harmonics(x, n):
    k = 1
    for _ in range(n):
        yield np.sin(k * x) / k
        k += 1


def fourier_series(x, amp):
    terms = list(harmonics(x, 4))
    return np.sum(amp * np.stack(terms)) + sum(np.sum(t) for t in harmonics(x, 2))


def test_generator_with_state_consumed_by_list_and_by_sum():
    check(fourier_series, rn(5), 1.3, argnums=(0, 1))


def rotation_stack(angles):
    Rs = np.array([[[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]] for a in angles])
    v = np.array([1.0, 0.5])
    for R in Rs:
        v = R @ v
    return v[0] ** 2 + 3 * v[1]


def test_np_array_of_a_3d_comprehension_of_rotations():
    check(rotation_stack, rn(3))


def sum_with_start(x):
    return sum((xi ** 2 for xi in x), 1.5 * x[0]) + sum([np.exp(-xi) for xi in x], 0.0)


def test_sum_with_a_start_value():
    check(sum_with_start, rn(4))


# ----------------------------------------------------------------------------------------------------
# more classes


@dataclass
class Poly:
    c: np.ndarray
    offset: float

    def __call__(self, x):
        return sum(self.c[k] * x ** k for k in range(self.c.shape[0])) + self.offset


def poly_fit(poly, x, y):
    return np.mean((poly(x) - y) ** 2)


def test_callable_dataclass_model_grad_wrt_the_model():
    poly = Poly(rn(3), 0.2)
    check(poly_fit, poly, rn(5), rn(5), argnums=0, jvp=False)


class PlainPoly:
    def __init__(self, c):
        self.c = c

    def __call__(self, x):
        return self.c[0] + self.c[1] * x + self.c[2] * x ** 2


def test_callable_plain_model_grad_wrt_the_model():
    check(poly_fit, PlainPoly(rn(3)), rn(5), rn(5), argnums=0, jvp=False)


def test_callable_plain_model_as_an_argument_grad_wrt_the_data():
    check(poly_fit, PlainPoly(rn(3)), rn(5), rn(5), argnums=1)


def test_map_of_a_plain_callable_instance_held_by_a_closure():
    poly = PlainPoly(rn(3))
    check(lambda xs: sum_model_map(poly, xs), rn(4))


class Accumulator:
    def __init__(self):
        self.steps = 0

    def step(self, w, x):
        self.steps += 1
        return w - 0.1 * np.tanh(w * x)

    def run(self, w, xs):
        for x in xs:
            w = self.step(w, x)
        return np.sum(w ** 2)


def test_counter_on_self_across_calls():
    acc = Accumulator()
    w, xs = rn(3), rn(4, 3)
    check(acc.run, w, xs, argnums=(0, 1))
    n = acc.steps
    sg.grad(acc.run)(w, xs)
    assert acc.steps == n + 4


def sum_model_map(model, xs):
    return sum(map(model, xs))


def test_map_of_a_callable_instance():
    poly = Poly(rn(3), 0.1)
    check(lambda xs: sum_model_map(poly, xs), rn(4))


@dataclass
class AffineModel:
    W: np.ndarray
    b: np.ndarray
    gain: float = 1.0
    label: str = "affine"  # not an array: read through the model, no gradient

    def features(self, x):
        return np.tanh(self.W @ x + self.b)

    def __call__(self, x):
        return self.gain * np.sum(self.features(x) ** 2)


class PlainAffineModel:
    def __init__(self, W, b, gain):
        self.W, self.b, self.gain = W, b, gain
        self.label = "affine"

    def features(self, x):
        return np.tanh(self.W @ x + self.b)

    def __call__(self, x):
        return self.gain * np.sum(self.features(x) ** 2)


def apply_model(model, x):
    return model(x)


def model_features(model, x):
    return model.features(x)


@pytest.mark.parametrize("make", [AffineModel, PlainAffineModel])
def test_model_whose_call_calls_another_method(make):
    model, x = make(rn(2, 3), rn(2), 0.7), rn(3)
    g = check(apply_model, model, x, argnums=(0, 1))    # reverse twice and jvp, wrt the model and x
    check(apply_model, model, x, argnums=1)             # the model a plain argument
    check_vjp(model_features, model, x, argnums=1)
    np.testing.assert_allclose(sg.grad(model)(x), g[1], rtol=1e-12)   # the instance itself transformed
    if make is AffineModel:   # a dataclass's gradient is an instance of its class, None where no array
        assert isinstance(g[0], AffineModel) and g[0].label is None
    else:                     # an object's, a dict of its array attributes
        assert sorted(g[0]) == ["W", "b", "gain"]


@dataclass
class DenseModel:
    W: np.ndarray
    b: np.ndarray

    def __call__(self, x):
        return np.tanh(self.W @ x + self.b)


def run_layers(layers, x):
    for layer in layers:
        x = layer(x)
    return np.sum(x ** 2)


def test_list_of_callable_dataclass_models():
    layers = [DenseModel(rn(3, 3), rn(3)), DenseModel(rn(2, 3), rn(2))]
    g = check(run_layers, layers, rn(3), argnums=(0, 1))
    assert isinstance(g[0], list) and all(isinstance(gl, DenseModel) for gl in g[0])
    check(run_layers, layers, rn(3), argnums=1)


def test_list_of_models_held_by_a_closure():
    layers = [DenseModel(rn(3, 3), rn(3)), DenseModel(rn(2, 3), rn(2))]
    check(lambda x: run_layers(layers, x), rn(3))


def test_tuple_of_models_held_by_a_closure():
    layers = (DenseModel(rn(3, 3), rn(3)), DenseModel(rn(2, 3), rn(2)))
    check(lambda x: run_layers(layers, x), rn(3))


def run_named(models, x):
    for k in ("enc", "dec"):       # constant keys: the loop is written out
        x = models[k](x)
    return np.sum(x ** 2)


def test_dict_of_models_held_by_a_closure_called_by_constant_keys():
    models = {"enc": DenseModel(rn(3, 3), rn(3)), "dec": DenseModel(rn(2, 3), rn(2))}
    check(lambda x: run_named(models, x), rn(3))
    check(run_named, models, rn(3), argnums=(0, 1))   # the dict an argument, differentiated too


def test_list_of_plain_functions_held_by_a_closure():
    fns = [np.sin, cube, np.tanh]
    check(lambda x: run_layers(fns, x), rn(3))


HELD_LAYERS = [DenseModel(rn(3, 3), rn(3)), DenseModel(rn(3, 3), rn(3))]


def held_layers_in_the_body(x, s):
    for layer in HELD_LAYERS:           # a module-level list of models, looped over in the body
        x = layer(s * x)
    return np.sum(HELD_LAYERS[0](x) * HELD_LAYERS[-1](x))


def test_module_list_of_models_looped_over_and_indexed_in_the_body():
    check(held_layers_in_the_body, rn(3), 0.7, argnums=(0, 1))


HELD_MODELS = {"a": DenseModel(rn(3, 3), rn(3)), "b": DenseModel(rn(3, 3), rn(3))}
HELD_TUPLE = (DenseModel(rn(3, 3), rn(3)), DenseModel(rn(2, 3), rn(2)))


def held_in_comprehensions(x):
    outs = [m(x) for m in HELD_TUPLE]                        # a list comprehension over held models
    t = sum(np.sum(m(x) ** 2) for m in HELD_MODELS.values())  # a generator over a held dict's values
    for k, m in HELD_MODELS.items():
        t = t + np.sum(m(outs[0])) * (2.0 if k == "a" else 1.0)
    return t + np.sum(outs[1])


def test_held_models_in_comprehensions_and_items():
    check(held_in_comprehensions, rn(3))


def test_held_list_of_models_changed_between_calls_is_read_again():
    layers = [DenseModel(rn(3, 3), rn(3)), DenseModel(rn(2, 3), rn(2))]
    f = sg.grad(lambda x: run_layers(layers, x))
    x = rn(3)
    f(x)
    layers[1] = DenseModel(rn(2, 3), rn(2))                      # a new model, same structure
    np.testing.assert_allclose(f(x), fd_leaf(lambda z: run_layers(layers, z), x, ()), rtol=1e-5, atol=1e-7)
    layers.append(DenseModel(rn(4, 2), rn(4)))                  # another structure: built again
    np.testing.assert_allclose(f(x), fd_leaf(lambda z: run_layers(layers, z), x, ()), rtol=1e-5, atol=1e-7)


class AffineParams(NamedTuple):
    W: np.ndarray
    b: np.ndarray


@dataclass
class ParamsModel:
    params: AffineParams
    gain: float

    def __call__(self, x):
        return self.gain * np.sum(np.tanh(self.params.W @ x + self.params.b) ** 2)


def test_callable_model_holding_a_namedtuple_of_params():
    model = ParamsModel(AffineParams(rn(2, 3), rn(2)), 0.5)
    g = check(apply_model, model, rn(3), argnums=(0, 1))
    assert isinstance(g[0], ParamsModel) and isinstance(g[0].params, AffineParams)
    check(apply_model, model, rn(3), argnums=1)


class CallableParams(NamedTuple):
    W: np.ndarray
    b: np.ndarray

    def __call__(self, x):
        return np.sum(np.tanh(self.W @ x + self.b) ** 2)


def test_calling_a_namedtuple_of_params_is_refused_cleanly():
    with pytest.raises(sg.TransformError, match="flattened named tuple used as a whole value") as exc:
        sg.grad(apply_model)(CallableParams(rn(2, 3), rn(2)), rn(3))
    assert "apply_model" in str(exc.value) and "return model(x)" in str(exc.value)


class Trajectory:
    pass


def with_object_buffers(x0, k):
    tr = Trajectory()
    tr.xs = np.zeros((5, x0.shape[0]))
    tr.xs[0] = x0
    for i in range(4):
        tr.xs[i + 1] = tr.xs[i] * (1 - k) + 0.1 * np.sin(tr.xs[i])
    return np.sum(tr.xs ** 2)


def test_local_object_holding_a_buffer_written_by_row():
    try:
        sg.grad(with_object_buffers)(rn(3), 0.2)
    except sg.TransformError:
        return
    check(with_object_buffers, rn(3), 0.2, argnums=(0, 1))


# ----------------------------------------------------------------------------------------------------
# more pytrees and output structures


class Layer(NamedTuple):
    W: np.ndarray
    b: np.ndarray


def nt_net(layers, x):
    for lyr in layers:
        x = np.tanh(lyr.W @ x + lyr.b)
    return np.sum(x)


def test_jacobian_and_hvp_wrt_a_list_of_namedtuples():
    layers = [Layer(rn(3, 2), rn(3)), Layer(rn(2, 3), rn(2))]
    x = rn(2)
    check(nt_net, layers, x, argnums=(0, 1))
    v = random_like(layers, np.random.default_rng(9))
    _, hv = sg.hvp(nt_net)(layers, x, v)
    h = 1e-5
    gp = sg.grad(nt_net)(axpy(h, v, layers), x)
    gm = sg.grad(nt_net)(axpy(-h, v, layers), x)
    for i in range(2):
        np.testing.assert_allclose(hv[i].W, (gp[i].W - gm[i].W) / (2 * h), rtol=1e-5, atol=1e-6)


def two_outputs(W, x):
    h = np.tanh(W @ x)
    return h, np.sum(h ** 2)


def test_vjp_of_a_tuple_output_with_tuple_cotangent():
    check_vjp(two_outputs, rn(3, 2), rn(2), argnums=1)


def test_jacobian_of_a_tuple_output():
    W, x = rn(3, 2), rn(2)
    J = sg.jacobian(two_outputs, argnums=1)(W, x)
    np.testing.assert_allclose(J[0], fd_leaf(lambda z: two_outputs(W, z)[0], x, ()), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(J[1], fd_leaf(lambda z: two_outputs(W, z)[1], x, ()), rtol=1e-5, atol=1e-7)


def dict_fit(p, x):
    return {"loss": np.sum((p["w"] * x - p["b"]) ** 2), "pred": np.tanh(p["w"] * x + p["b"]) * p["w"][0]}


def test_jacobian_dict_in_dict_out_is_output_outer_as_in_jax():
    p, x = {"w": rn(3), "b": 0.4}, rn(3)
    J = sg.jacobian(dict_fit)(p, x)
    out = dict_fit(p, x)
    assert list(J) == ["loss", "pred"]             # J[out_key][in_key], as jax.jacobian nests it
    for ok in J:
        assert sorted(J[ok]) == ["b", "w"]
        for ik in ("w", "b"):
            got = np.asarray(J[ok][ik])
            assert got.shape == np.shape(out[ok]) + np.shape(p[ik]), (ok, ik, got.shape)
            want = fd_leaf(lambda q, ok=ok: dict_fit(q, x)[ok], p, (("k", ik),))
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=f"J[{ok!r}][{ik!r}]")


def tuple_in_array_out(wb, x):
    W, b = wb
    return np.tanh(W @ x + b)


def test_jacobian_tuple_in_array_out_has_the_input_s_structure():
    wb, x = (rn(2, 3), rn(2)), rn(3)
    J = sg.jacobian(tuple_in_array_out)(wb, x)
    assert isinstance(J, tuple) and len(J) == 2
    for i in range(2):
        assert J[i].shape == (2,) + wb[i].shape
        want = fd_leaf(lambda q: tuple_in_array_out(q, x), wb, (("i", i),))
        np.testing.assert_allclose(J[i], want, rtol=1e-5, atol=1e-7)


def pair_of_outputs(p, x):
    h = np.tanh(p["W"] @ x)
    return np.sum(h ** 2) * p["c"], h


def test_jacobian_dict_and_array_in_tuple_out_is_output_outer():
    p, x = {"W": rn(2, 3), "c": 1.3}, rn(3)
    J = sg.jacobian(pair_of_outputs, argnums=(0, 1))(p, x)
    out = pair_of_outputs(p, x)
    assert isinstance(J, tuple) and len(J) == 2      # J[k][argnum], the dict's keys innermost
    for k in range(2):
        for ik in ("W", "c"):
            want = fd_leaf(lambda q, k=k: pair_of_outputs(q, x)[k], p, (("k", ik),))
            assert np.shape(J[k][0][ik]) == np.shape(out[k]) + np.shape(p[ik])
            np.testing.assert_allclose(J[k][0][ik], want, rtol=1e-5, atol=1e-7)
        want = fd_leaf(lambda z, k=k: pair_of_outputs(p, z)[k], x, ())
        np.testing.assert_allclose(J[k][1], want, rtol=1e-5, atol=1e-7)


def jvp_aux(x):
    y = np.cumsum(x ** 2)
    return y, {"last": y[-1], "n": x.shape[0]}


def test_jvp_with_has_aux_dict():
    x, t = rn(4), rn(4)
    y, ty, aux = sg.jvp(jvp_aux, has_aux=True)(x, t)
    h = 1e-6
    np.testing.assert_allclose(ty, (jvp_aux(x + h * t)[0] - jvp_aux(x - h * t)[0]) / (2 * h), rtol=1e-5,
                               atol=1e-7)
    assert aux["n"] == 4 and aux["last"] == pytest.approx(np.sum(x ** 2))


# ----------------------------------------------------------------------------------------------------
# more NumPy


def gp_predict(log_ls, Xtr, ytr, Xte):
    ls = np.exp(log_ls)
    d = lambda A, B: np.sum((A[:, None, :] - B[None, :, :]) ** 2, axis=-1)  # noqa: E731
    K = np.exp(-0.5 * d(Xtr, Xtr) / ls ** 2) + 0.1 * np.eye(Xtr.shape[0])
    Ks = np.exp(-0.5 * d(Xte, Xtr) / ls ** 2)
    alpha = np.linalg.solve(K, ytr)
    sign, logdet = np.linalg.slogdet(K)
    return np.sum((Ks @ alpha) ** 2) + 0.5 * ytr @ alpha + 0.5 * logdet


def test_gp_with_solve_slogdet_and_a_distance_lambda():
    check(gp_predict, 0.1, rn(5, 2), rn(5), rn(3, 2), argnums=(0, 1, 2))


def eig_attrs(A):
    S = A.T @ A + np.eye(3)
    res = np.linalg.eigh(S)
    top = res.eigenvectors[:, -1]
    svd = np.linalg.svd(A, full_matrices=False)
    return res.eigenvalues[0] + np.sum(top * np.abs(top)) + svd.S[-1] + svd.U[:, 0] @ A @ svd.Vh[0]


def test_eigh_and_svd_result_attributes():
    check(eig_attrs, rn(4, 3))


def fft_2d_axes(X):
    F = np.fft.rfft(X, axis=1)
    G = np.fft.fft(X, n=6, axis=0)
    back = np.fft.irfft(F, n=X.shape[1], axis=1)
    return np.sum(np.abs(F) ** 2) + np.sum(G.real * G.imag) + np.sum(back * X)


def test_fft_along_axes_with_n():
    check(fft_2d_axes, rn(4, 5))


def irfft_odd(x):
    R = np.fft.rfft(x)
    return np.sum(np.fft.irfft(R * np.exp(-0.2 * np.arange(R.shape[0])), n=x.shape[0]) ** 2)


def test_irfft_odd_length_filter():
    check(irfft_odd, rn(7))


def softsort_loss(x, w):
    order = sorted(float(i) for i in range(3))
    s = sorted([x[0] * w, x[1] + w, x[2] ** 2])
    return s[0] * order[1] + s[-1] * 2.0 + max(s) * min(s)


def test_sorted_of_a_list_literal_of_scalars():
    check(softsort_loss, np.array([0.4, -0.9, 1.3]), 0.7, argnums=(0, 1))


def exp2_log2(x):
    return np.sum(np.exp2(x) * np.log2(1.0 + x ** 2)) + np.sum(2.0 ** x)


def test_exp2_log2_and_power_of_two():
    check(exp2_log2, rn(4))


def interp_clamped(x, fp):
    xp = np.array([0.0, 1.0, 2.0, 3.0])
    return np.sum(np.interp(x, xp, fp, left=0.0, right=fp[-1] * 2.0) ** 2)


def test_interp_with_left_right_outside_the_knots():
    check(interp_clamped, np.array([-0.5, 0.3, 1.7, 3.5]), rn(4), argnums=(0, 1))


def kron_grid(a, b):
    return np.sum(np.kron(np.outer(a, b), np.eye(2)) @ np.ones(2 * b.shape[0])) + np.sum(np.kron(a, b) ** 2)


def test_kron_of_outer_product_and_identity():
    check(kron_grid, rn(2), rn(3), argnums=(0, 1))


def full_like_shapes(x):
    return np.sum(np.full_like(x, x[0]) * x) + np.sum(np.full(x.shape, np.max(x)) ** 2)


def test_full_like_with_an_element_of_the_input():
    check(full_like_shapes, rn(4))
    check(full_like_shapes, rn(2, 3))


def copy_then_write_rows(A):
    B = np.copy(A)
    for i in range(1, B.shape[0]):
        B[i] = B[i] - 0.5 * B[i - 1]
    C = np.empty_like(B)
    C[:] = B ** 2
    return np.sum(C)


def test_copy_then_row_recurrence_and_empty_like_slice_fill():
    check(copy_then_write_rows, rn(4, 2))
    check(copy_then_write_rows, rn(3, 5))


# ----------------------------------------------------------------------------------------------------
# the caller's arrays inside pytrees


def masked_loss(w, batch):
    batch["x"][:, 0] = 0.0                          # mask a feature in place (data, not differentiated)
    return np.mean((batch["x"] @ w - batch["y"]) ** 2)


def test_writing_into_a_leaf_of_a_data_dict_is_not_done_to_the_caller():
    w, batch = rn(3), {"x": rn(5, 3), "y": rn(5)}
    before = snapshot(batch)
    with pytest.raises(sg.TransformError, match="the caller passed"):
        sg.grad(masked_loss)(w, batch)
    assert_unchanged(before, batch)


def clamp_first(ws, x):
    ws[0][0] = 1.0
    return np.sum(np.tanh(ws[0] * x)) + np.sum(ws[1] * x)


def test_writing_into_a_list_leaf_is_not_done_to_the_caller():
    ws, x = [rn(3), rn(3)], rn(3)
    before = snapshot(ws)
    with pytest.raises(sg.TransformError, match="the caller passed"):
        sg.grad(clamp_first, argnums=1)(ws, x)
    assert_unchanged(before, ws)


def plain_arg_write(x, buf):
    buf[0] = 1.0
    return np.sum(buf * x)


def test_writing_into_a_plain_array_argument_is_refused():
    x, buf = rn(3), rn(3)
    before = buf.copy()
    with pytest.raises(sg.TransformError, match="never writes into its inputs"):
        sg.grad(plain_arg_write)(x, buf)
    np.testing.assert_array_equal(buf, before)
