"""A new user's programs, written without reading srcgrad (physics loops, NumPy idioms, Python structure,
higher order, the eager tape), each checked against central finite differences, called twice with other
shapes or values, and with the caller's arrays checked unchanged. Only passing programs live here."""

import functools
import math
from dataclasses import dataclass

import numpy as np
import pytest

import srcgrad as sg
import srcgrad as torch

from .harness import assert_unchanged, check, check_vjp, fd_leaf, normal_sampler, snapshot

rn = normal_sampler(7007)


def hessian_vs_fd(f, x, rtol=1e-4, atol=1e-6):
    before = snapshot((x,))
    H = sg.hessian(f)(x)
    assert_unchanged(before, (x,))
    np.testing.assert_allclose(H, fd_leaf(sg.grad(f), x, (), 1e-5), rtol=rtol, atol=atol)
    return H


# ----------------------------------------------------------------------------------------------------
# physics and ODE loops


def flight_range(v0, angle, k=0.1, dt=0.01):
    x, y = 0.0, 0.0
    vx = v0 * math.cos(angle)
    vy = v0 * math.sin(angle)
    while y >= 0.0:
        speed = math.sqrt(vx * vx + vy * vy)
        x += vx * dt
        y += vy * dt
        vx += -k * speed * vx * dt
        vy += (-9.81 - k * speed * vy) * dt
    return x


def test_projectile_with_drag_on_floats_while_until_ground():
    check(flight_range, 10.0, 0.7, argnums=(0, 1), rtol=1e-4)
    check(lambda a: flight_range(12.0, a, k=0.05), 0.5, rtol=1e-4)


def leapfrog_energy(q0, p0, m, n_steps):
    q = q0.copy()
    p = p0.copy()
    dt = 0.05
    for _ in range(n_steps):
        p -= 0.5 * dt * q * m
        q += dt * p / m
        p -= 0.5 * dt * q * m
    return np.sum(0.5 * p ** 2 / m + 0.5 * m * q ** 2) + np.sum(q)


def test_leapfrog_in_place_on_copies_two_shapes():
    check(leapfrog_energy, rn(3), rn(3), 1.0 + np.abs(rn(3)), 20, argnums=(0, 1, 2))
    check(leapfrog_energy, rn(2), rn(2), 1.0 + np.abs(rn(2)), 7, argnums=(0, 1, 2), jvp=False)


def newton_sqrt(a):
    x = a
    while abs(x * x - a) > 1e-12 * a:
        x = 0.5 * (x + a / x)
    return x


def test_newton_sqrt_data_dependent_stop():
    for a in (2.0, 17.0):
        np.testing.assert_allclose(sg.grad(newton_sqrt)(a), 0.5 / math.sqrt(a), rtol=1e-8)


def rhs(t, y, k):
    return np.array([y[1], -k * y[0] - 0.1 * y[1]])


def adaptive_heun(y0, k, T=1.0):
    t, y, h = 0.0, y0, 0.1
    while t < T:
        if t + h > T:
            h = T - t
        k1 = rhs(t, y, k)
        k2 = rhs(t + h, y + h * k1, k)
        y_new = y + 0.5 * h * (k1 + k2)
        err = np.max(np.abs(0.5 * h * (k2 - k1)))
        if err < 1e-3:
            t = t + h
            y = y_new
            h = h * 1.5
        else:
            h = h * 0.5
    return y[0] ** 2 + y[1]


def test_adaptive_step_ode_with_helper_building_arrays():
    check(adaptive_heun, np.array([1.0, 0.0]), 2.0, argnums=(0, 1), rtol=1e-4)
    check(adaptive_heun, np.array([0.5, 0.3]), 5.0, 2.0, argnums=(0, 1), rtol=1e-4, jvp=False)


def heat(u0, alpha):
    u = u0.copy()
    for _ in range(30):
        lap = np.zeros_like(u)
        lap[1:-1] = u[2:] - 2 * u[1:-1] + u[:-2]
        u = u + alpha * lap
        u[0] = 0.0
        u[-1] = 0.0
    return np.sum(u ** 2)


def test_heat_equation_slice_writes_two_sizes():
    u0 = np.sin(np.linspace(0, 3, 12))
    check(heat, u0, 0.2, argnums=(0, 1))
    check(heat, u0[:8].copy(), 0.1, argnums=(0, 1), jvp=False)


def nbody(pos, masses, steps=10, dt=0.01):
    vel = np.zeros_like(pos)
    n = pos.shape[0]
    for _ in range(steps):
        acc = np.zeros_like(pos)
        for i in range(n):
            for j in range(n):
                if i != j:
                    d = pos[j] - pos[i]
                    r = np.sqrt(np.sum(d * d) + 0.01)
                    acc[i] += masses[j] * d / r ** 3
        vel = vel + dt * acc
        pos = pos + dt * vel
    return np.sum(pos[0] ** 2)


def test_nbody_row_accumulation_two_shapes():
    check(nbody, rn(3, 2), np.array([1.0, 2.0, 0.5]), argnums=(0, 1), jvp=False)
    check(nbody, rn(2, 3), np.array([1.0, 2.0]), 3, argnums=(0, 1), jvp=False)


def gaussian_elim_det(M):
    A = M.copy()
    n = A.shape[0]
    for k in range(n):
        for i in range(k + 1, n):
            f = A[i, k] / A[k, k]
            A[i, k:] = A[i, k:] - f * A[k, k:]
    return np.prod(np.diag(A))


def test_gaussian_elimination_determinant():
    for n in (3, 4):
        M = rn(n, n) + n * np.eye(n)
        check(gaussian_elim_det, M)
        np.testing.assert_allclose(sg.grad(gaussian_elim_det)(M), np.linalg.det(M) * np.linalg.inv(M).T,
                                   rtol=1e-8)


def bounce(h0, v0):
    h, v = h0, v0
    bounces = 0
    for _ in range(300):
        v = v - 9.81 * 0.01
        h = h + v * 0.01
        if h < 0:
            h = -h
            v = -0.9 * v
            bounces += 1
    return h + 0.1 * v + bounces


def test_bouncing_ball_branch_in_loop():
    check(bounce, 1.0, 0.0, argnums=(0, 1), rtol=1e-3, atol=1e-5)


def fixed_point(a):
    x = 0.0
    x_new = 0.0
    for _ in range(1000):
        x_new = math.cos(a * x)
        if abs(x_new - x) < 1e-12:
            break
        x = x_new
    return x_new


def test_fixed_point_iteration_with_break():
    for a in (0.8, 1.2):
        np.testing.assert_allclose(sg.grad(fixed_point)(a), fd_leaf(fixed_point, a, ()), rtol=1e-5)


# ----------------------------------------------------------------------------------------------------
# NumPy idioms


def axis_positional(x):
    return np.sum(np.max(x, 1) ** 2) + np.sum(np.mean(x, 0, keepdims=True) * x)


def test_positional_axis_and_keepdims_two_shapes():
    check(axis_positional, rn(4, 5))
    check(axis_positional, rn(3, 2), jvp=False)


def add_at(x, idx):
    out = np.zeros(3)
    np.add.at(out, idx, x)
    return np.sum(out ** 2)


def test_add_at_with_repeated_indices():
    check(add_at, rn(5), np.array([0, 2, 2, 1, 0]))
    check(add_at, rn(3), np.array([1, 1, 1]), jvp=False)


def test_ufunc_out_positional_and_keyword():
    def f(x):
        y = np.empty_like(x)
        np.multiply(x, x, out=y)
        np.exp(y, y)
        return np.sum(y)
    check(f, 0.5 * rn(4))


def masked(x):
    m = x > 0.1
    y = x.copy()
    y[m] = y[m] ** 3
    y[~m] *= 2.0
    return np.sum(y) + np.sum(x[m])


def test_boolean_mask_reads_and_writes_1d_and_2d():
    check(masked, rn(7))
    check(masked, rn(2, 3), jvp=False)


def dup_setitem(x, v):
    y = x.copy()
    y[np.array([0, 2, 0])] = v          # last write wins for index 0
    return np.sum(y * np.arange(1.0, 5.0))


def dup_iadd(x, v):
    y = x.copy()
    y[[1, 1, 3]] += v                   # buffered: one add per distinct index
    return np.sum(y ** 2)


def test_fancy_writes_with_duplicate_indices():
    check(dup_setitem, rn(4), rn(3), argnums=(0, 1))
    check(dup_iadd, rn(4), rn(3), argnums=(0, 1))


def overlap(x):
    y = x.copy()
    y[1:] = y[:-1] * 2
    z = x.copy()
    z[:-1] += z[1:]
    w = x.copy()
    w[0], w[1] = w[1], w[0] * 3
    return np.sum(y * np.arange(1.0, len(x) + 1)) + np.sum(z ** 2) + np.sum(w * x)


def test_overlapping_slice_writes_and_swap():
    check(overlap, rn(4))
    check(overlap, rn(3), jvp=False)


def shape_ops(x):
    a = np.diff(x, axis=0)
    b = np.roll(x, 2, axis=1)
    c = np.tile(x[0], 3)
    d = np.repeat(x[:, :1], 2, axis=1)
    e = np.flip(x, 0)
    f = np.tril(x) + np.triu(x, 1) * 2
    return (np.sum(a ** 2) + np.sum(b * x) + np.sum(c ** 3) + np.sum(d * d[::-1]) + np.sum(e * x)
            + np.sum(f ** 2))


def test_shape_manipulation_calls():
    check(shape_ops, rn(3, 4), jvp=False)


def reshape_chain(x):
    y = x.reshape(2, 3, 2).transpose(1, 0, 2).reshape(3, -1)
    z = np.swapaxes(y, 0, 1).T.ravel()
    return np.sum(z * np.arange(z.size)) + y[1, 2] * 3.0


def test_reshape_transpose_chain_from_1d_and_2d():
    check(reshape_chain, rn(12))
    check(reshape_chain, rn(3, 4), jvp=False)


def linalg_mix(M, b):
    x = np.linalg.solve(M, b)
    return (np.sum(x ** 2) + np.log(np.abs(np.linalg.det(M))) + np.trace(np.linalg.inv(M))
            + np.linalg.norm(M))


def test_linalg_solve_det_inv_norm():
    check(linalg_mix, rn(3, 3) + 3 * np.eye(3), rn(3), argnums=(0, 1))


def decompositions(A):
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    Q, R = np.linalg.qr(A)
    w, V = np.linalg.eigh(A.T @ A)
    return np.sum(s ** 2) + s[0] + np.sum(R ** 3) + np.sum(V[:, -1] ** 4) + w[0]


def test_svd_qr_eigh_together():
    check(decompositions, rn(4, 3), jvp=False)


def test_batched_solve_det_inv():
    def f(A, b):
        return (np.sum(np.linalg.solve(A, b[..., None]) ** 2) + np.sum(np.linalg.det(A) ** 2)
                + np.sum(np.linalg.inv(A)))
    check(f, rn(2, 3, 3) + 3 * np.eye(3), rn(2, 3), argnums=(0, 1))


def test_prod_and_cumprod_with_zeros_exact():
    x = np.array([2.0, 0.0, 3.0])
    np.testing.assert_allclose(sg.grad(lambda x: np.prod(x))(x), [0.0, 6.0, 0.0])
    np.testing.assert_allclose(sg.grad(lambda x: np.prod(x))(np.array([2.0, 0.0, 0.0, 3.0])), np.zeros(4))
    np.testing.assert_allclose(sg.hessian(lambda x: np.prod(x))(x), [[0, 3, 0], [3, 0, 2], [0, 2, 0]])
    f = lambda x: np.sum(np.cumprod(x))  # noqa: E731
    np.testing.assert_allclose(sg.grad(f)(x), fd_leaf(f, x, ()), rtol=1e-7)


def test_max_ties_split_like_central_differences():
    np.testing.assert_allclose(sg.grad(lambda x: np.max(x))(np.array([1.0, 3.0, 3.0])), [0.0, 0.5, 0.5])
    np.testing.assert_allclose(sg.grad(lambda x: np.sum(np.maximum(x, 0.0)))(np.array([0.0, 1.0, -1.0])),
                               [0.5, 1.0, 0.0])


def test_np_reductions_of_python_lists_and_builtins():
    def f(x):
        return (np.sum([x[0], x[1] ** 2, 3.0]) + np.mean([x[0], x[2]]) + np.max([x[1], x[2] * 2])
                + max(x) + min(x) * 2 + sorted(x)[1] * 3 + sum(x) * sum(x ** 2))
    check(f, rn(4))


def attention(Wq, Wk, Wv, X):
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    S = Q @ K.T / np.sqrt(Q.shape[-1])
    S = S - S.max(axis=-1, keepdims=True)
    A = np.exp(S)
    A /= A.sum(-1, keepdims=True)
    A = A * np.tril(np.ones_like(A))
    return np.sum((A @ V) ** 2)


def test_causal_attention_head():
    check(attention, rn(3, 2), rn(3, 2), rn(3, 2), rn(4, 3), argnums=(0, 1, 2), jvp=False)


def test_einsum_products_and_batched_matmul():
    def f(a, B):
        return (a @ a + a.dot(B[0]) + np.inner(a, B[1]) + np.vdot(a, a) + np.sum(np.outer(a, B[2]))
                + np.sum(np.tensordot(B, B, axes=([1], [1]))) + np.einsum('i,ij,j->', a, B, a)
                + np.sum(np.einsum('ij,jk->ik', B, B) ** 2))
    check(f, rn(3), rn(3, 3), argnums=(0, 1), jvp=False)

    def g(A, B):
        return np.sum(np.matmul(A, B) ** 2) + np.sum(A @ B[0]) + np.sum(np.einsum('bij,bjk->bik', A, B))
    check(g, rn(2, 3, 4), rn(2, 4, 2), argnums=(0, 1), jvp=False)


def test_float32_inputs_keep_dtype_and_match_numpy_value():
    W64 = rn(3, 3)

    def f(x):
        y = x.copy()
        y[0] = y[1] * 2.5
        return np.sum(y ** 2) / len(x) + np.linalg.norm(x) + np.std(x)
    x = rn(4).astype(np.float32)
    v, g = sg.value_and_grad(f)(x)
    assert g.dtype == np.float32 and np.asarray(v).dtype == np.float32
    np.testing.assert_allclose(v, f(x), rtol=1e-6)
    np.testing.assert_allclose(g, fd_leaf(f, x.astype(float), ()), rtol=1e-3, atol=1e-4)
    g2 = sg.grad(lambda x: np.sum(np.tanh(W64 @ x) ** 2))(x[:3])
    assert g2.dtype == np.float32


def test_zero_d_and_empty_arrays():
    x = np.array(0.7)
    g = sg.grad(lambda x: np.sin(x) * x ** 2)(x)
    assert isinstance(g, np.ndarray) and g.shape == ()
    np.testing.assert_allclose(g, np.cos(0.7) * 0.49 + 1.4 * np.sin(0.7))
    assert sg.grad(lambda x: np.sum(x ** 2) + 1.0)(np.zeros(0)).shape == (0,)
    ga, gb = sg.grad(lambda a, b: np.sum(a @ b) + np.sum(b), argnums=(0, 1))(np.zeros((0, 3)), rn(3, 2))
    assert ga.shape == (0, 3)
    np.testing.assert_allclose(gb, np.ones((3, 2)))


def test_writes_into_caller_arrays_leave_them_alone():
    def f(x):
        x[0] = x[1] * 2
        x[1] = x[0] * 3
        return np.sum(x ** 2)

    def g(x):
        x *= 2.0
        y = x + 1
        x[0] = y[1]
        return np.sum(x * y)

    def h(x):
        y = np.asarray(x)                  # y is x: NumPy would change both
        y[0] = 0.0
        return np.sum(y * x)
    for fn in (f, g):
        x = rn(3)
        before = x.copy()
        got = sg.grad(fn)(x)
        np.testing.assert_array_equal(x, before)
        want = fd_leaf(lambda z, fn=fn: fn(z.copy()), before, ())
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    x = rn(3)
    before = x.copy()
    with pytest.raises(sg.TransformError, match="same array"):
        sg.grad(h)(x)
    np.testing.assert_array_equal(x, before)


def test_integer_arguments_are_static():
    with pytest.raises(sg.TransformError, match="static"):
        sg.grad(lambda x: x * x)(3)

    def f(x, n):
        y = x
        for _ in range(n):
            y = y * x
        return np.sum(y)
    x = rn(2)
    g = sg.grad(f)
    for n in (0, 1, 3, 2):
        np.testing.assert_allclose(g(x, n), (n + 1) * x ** n)


# ----------------------------------------------------------------------------------------------------
# Python structure


SCALE = 2.0
W0 = np.array([1.0, -1.0, 0.5])
LAYERS = [np.eye(3) * 0.5]
CFG = {"scale": 1.0, "bias": np.zeros(3)}
ACT = np.tanh


def module_const(x):
    return SCALE * np.sum(x * W0) ** 2


def module_net(x):
    h = x
    for W in LAYERS:
        h = ACT(W @ h + CFG["bias"])
    return CFG["scale"] * np.sum(h ** 2)


def test_module_values_reread_on_every_call():
    global SCALE, W0, ACT
    x = rn(3)
    g = sg.grad(module_const)
    try:
        for scale, w0 in ((2.0, W0), (5.0, W0), (5.0, np.array([0.0, 1.0, 2.0]))):
            SCALE, W0 = scale, w0
            np.testing.assert_allclose(g(x), 2 * SCALE * np.sum(x * W0) * W0)
        W0[0] = 3.0
        np.testing.assert_allclose(g(x), 2 * SCALE * np.sum(x * W0) * W0)

        gn = sg.grad(module_net)
        np.testing.assert_allclose(gn(x), fd_leaf(module_net, x, ()), rtol=1e-5, atol=1e-8)
        LAYERS.append(rn(3, 3) * 0.5)
        CFG["scale"], CFG["bias"] = 3.0, np.ones(3)
        np.testing.assert_allclose(gn(x), fd_leaf(module_net, x, ()), rtol=1e-5, atol=1e-8)
        ACT = np.sin
        np.testing.assert_allclose(gn(x), fd_leaf(module_net, x, ()), rtol=1e-5, atol=1e-8)
        hessian_vs_fd(module_net, x)
    finally:
        SCALE, W0, ACT = 2.0, np.array([1.0, -1.0, 0.5]), np.tanh
        del LAYERS[1:]
        CFG.update(scale=1.0, bias=np.zeros(3))


def test_closures_rebound_and_mutated():
    k = 1.0
    state = {"c": 1.0}
    W = np.ones((2, 3))

    def loss(x):
        return k * state["c"] * np.sum((W @ x) ** 2)
    g = sg.grad(loss)
    x = rn(3)
    np.testing.assert_allclose(g(x), 2 * W.T @ (W @ x))
    k = 3.0
    state["c"] = 2.0
    W = rn(4, 3)
    np.testing.assert_allclose(g(x), 12 * W.T @ (W @ x))


def test_argument_variants_flags_strings_keywords():
    def f(x, kind, use_sq=False, scale=1.0):
        if kind == "l1":
            return np.sum(np.abs(x)) * scale
        elif use_sq:
            return np.sum(x ** 2) * scale
        return np.max(x) * scale
    x = np.array([1.0, -2.0, 0.5])
    g = sg.grad(f)
    np.testing.assert_allclose(g(x, "l1"), np.sign(x))
    np.testing.assert_allclose(g(x, "l2", True), 2 * x)
    np.testing.assert_allclose(g(x, "l2", use_sq=True, scale=3.0), 6 * x)
    np.testing.assert_allclose(g(x, "max"), [1, 0, 0])
    np.testing.assert_allclose(g(x, "l1", scale=2.0), 2 * np.sign(x))


def layer(W, b, h):
    return np.tanh(W @ h + b)


def mlp(params, x):
    h = x
    for W, b in params["layers"]:
        h = layer(W, b, h)
    return np.sum(h ** 2) + params["reg"] * sum(np.sum(W ** 2) for W, _ in params["layers"])


def test_mlp_dict_of_list_of_tuples():
    params = {"layers": [(rn(4, 3), rn(4)), (rn(2, 4), rn(2))], "reg": 0.1}
    check(mlp, params, rn(3), jvp=False)


class Model:
    def __init__(self, w, b):
        self.w = w
        self.b = b

    def predict(self, x):
        return self.act(x @ self.w + self.b)

    def act(self, z):
        return np.log1p(np.exp(z))

    def loss(self, x, y):
        return np.mean((self.predict(x) - y) ** 2)


def test_object_parameters_and_bound_method():
    m = Model(rn(3), 0.3)
    X, Y = rn(5, 3), rn(5)
    check(lambda m, x, y: m.loss(x, y), m, X, Y, jvp=False)
    check(m.loss, X, Y, jvp=False)


@dataclass
class Params:
    w: np.ndarray
    b: float
    name: str = "p"


def test_dataclass_parameters():
    check(lambda p, x: np.sum(np.tanh(x @ p.w + p.b) ** 2), Params(rn(3), 0.2), rn(4, 3))


class Quad:
    def __init__(self, A):
        self.A = A

    def __call__(self, x):
        return 0.5 * x @ self.A @ x


def test_callable_instance_attribute_changes_between_calls():
    A = rn(3, 3)
    A = A + A.T
    q = Quad(A)
    x = rn(3)
    np.testing.assert_allclose(sg.grad(q)(x), A @ x, rtol=1e-12)
    q.A = 2 * A
    np.testing.assert_allclose(sg.grad(q)(x), 2 * A @ x, rtol=1e-12)
    np.testing.assert_allclose(sg.hessian(q)(x), 2 * A, rtol=1e-12)


def pow_rec(x, n):
    if n == 0:
        return 1.0
    return x * pow_rec(x, n - 1)


def test_recursion_two_depths():
    check(pow_rec, 1.3, 4)
    check(pow_rec, 0.9, 2, jvp=False)


def test_comprehensions_generators_zip_enumerate():
    def gen(x):
        for i in range(3):
            yield x * i

    def f(x, y):
        parts = [x[i] * x[i + 1] for i in range(len(x) - 1)]
        s = sum(parts) + max(parts)
        for i, v in enumerate(x):
            s = s + i * v
        for a, b in zip(x, y):  # noqa: B905
            s = s + a * b
        for i, (a, b) in enumerate(zip(x, x[1:])):  # noqa: B905
            s = s + i * a * b
        for v in gen(x):
            s = s + np.sum(np.sin(v))
        return s
    check(f, rn(5), rn(5), argnums=(0, 1), jvp=False)
    check(f, rn(3), rn(3), argnums=(0, 1), jvp=False)


def test_dict_comprehension_items_sorted():
    def f(p):
        q = {k: v * 2 for k, v in p.items()}
        tot = sum(np.sum(q[k] ** 2) for k in q)
        for k in sorted(p):
            tot = tot + np.sum(p[k]) * len(k)
        return tot
    check(f, {"b": rn(2), "aa": rn(3), "c": 1.5})


def test_kw_only_defaults_partial_and_keyword_calls():
    def inner(x, scale=1.0, power=2):
        return np.sum((x * scale) ** power)

    def f(x, *, p=2.0, shift=0.0):
        return np.sum(np.abs(x - shift) ** p) + inner(scale=2.0, x=x) + inner(x, 3.0)
    check(f, rn(3))
    check(functools.partial(f, p=3.0, shift=0.5), rn(3), jvp=False)


def test_nonlocal_counter_and_lambda_to_helper():
    def rk4(f, y, h, n):
        for _ in range(n):
            k1 = f(y)
            k2 = f(y + 0.5 * h * k1)
            k3 = f(y + 0.5 * h * k2)
            k4 = f(y + h * k3)
            y = y + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        return y

    def decay(k, y0):
        c = 0

        def bump(v):
            nonlocal c
            c += 1
            return v * c
        return np.sum(rk4(lambda y: -k * y * y, y0, 0.1, 10)) + np.sum(bump(y0) + bump(y0) ** 2)
    check(decay, 0.7, np.array([1.0, 2.0]), argnums=(0, 1))
    check(decay, 0.3, np.array([1.0, 2.0, 0.5]), argnums=(0, 1), jvp=False)


def test_user_names_that_look_like_generated_ones():
    def f(x, y):
        by = x * 2.0
        bx = np.sin(y)
        _t1 = by * bx
        _stack = _t1 + 1.0
        b_t1 = _stack ** 2
        _r1 = range(2)
        for _i in _r1:
            b_t1 = b_t1 * y
        sum = 0.0  # noqa: A001
        for v in x:
            sum += v
        return np.sum(b_t1) + np.sum(by * y) + sum
    check(f, rn(3), rn(3), argnums=(0, 1))


def test_print_and_float_inside_loss():
    def f(x):
        loss = np.sum(x ** 2)
        if float(loss) < 0:
            print(f"loss={loss:.3f}")
        return loss
    check(f, rn(3))


def test_unrolled_optimizers_inside_the_loss():
    X, y = rn(6, 3), rn(6)

    def inner_loss(w):
        return np.mean((X @ w - y) ** 2)

    def gd(lr, w):
        for _ in range(3):
            w = w - lr * 2 * X.T @ (X @ w - y) / len(y)
        return inner_loss(w)

    def adam(lr, w):
        m = np.zeros_like(w)
        v = np.zeros_like(w)
        for t in range(1, 4):
            g = 2 * (w - 1.0)
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            w = w - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        return np.sum((w - 1.0) ** 2)
    check(gd, 0.1, rn(3), argnums=(0, 1))
    check(adam, 0.05, rn(3), argnums=(0, 1))


def rnn(params, xs):
    h = np.zeros(params["Wh"].shape[0])
    hs = []
    for x in xs:
        h = np.tanh(params["Wh"] @ h + params["Wx"] @ x + params["b"])
        hs.append(h)
    H = np.stack(hs)
    return np.sum(H[-1] ** 2) + 0.1 * np.sum(H)


def test_rnn_appending_states_then_stacking():
    p = {"Wh": 0.5 * rn(3, 3), "Wx": rn(3, 2), "b": rn(3)}
    check(rnn, p, rn(4, 2))
    check(rnn, p, rn(2, 2), jvp=False)


def test_gmm_negative_log_likelihood():
    def nll(params, X):
        mu, logs, logits = params["mu"], params["logs"], params["logits"]
        w = np.exp(logits - np.max(logits))
        w = w / np.sum(w)
        ll = (-0.5 * ((X[:, None] - mu[None, :]) / np.exp(logs)[None, :]) ** 2 - logs[None, :]
              - 0.5 * np.log(2 * np.pi))
        m = np.max(ll + np.log(w), axis=1, keepdims=True)
        return -np.sum(m[:, 0] + np.log(np.sum(np.exp(ll + np.log(w) - m), axis=1)))
    check(nll, {"mu": rn(3), "logs": 0.1 * rn(3), "logits": rn(3)}, rn(8), jvp=False)


# ----------------------------------------------------------------------------------------------------
# forward mode, Hessians, Jacobians, nesting


def f_while(x):
    s = np.sum(x ** 2)
    while s > 0.01:
        s = s * 0.5 + np.sum(np.sin(x)) * 1e-3
    return s * np.sum(np.exp(x))


def f_inplace(x):
    y = x.copy()
    y[1:] = y[1:] * y[:-1]
    y[0] = np.exp(y[0])
    return np.sum(y ** 3)


def f_linalg(x):
    A = np.outer(x, x) + np.eye(len(x)) * 2
    return np.sum(np.linalg.solve(A, x)) + np.log(np.linalg.det(A))


@pytest.mark.parametrize("f", [f_while, f_inplace, f_linalg], ids=lambda f: f.__name__)
def test_hessian_hvp_jvp_agree(f):
    for n in ((3, 4) if f is f_inplace else (3,)):
        x = 0.5 * rn(n)
        H = hessian_vs_fd(f, x)
        v = rn(n)
        _, hv = sg.hvp(f)(x, v)
        np.testing.assert_allclose(hv, H @ v, rtol=1e-6, atol=1e-9)
        val, jt = sg.jvp(f)(x, v)
        np.testing.assert_allclose(jt, sg.grad(f)(x) @ v, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(val, f(x), rtol=1e-12)


def jac_inplace(x):
    y = x.copy()
    y[0] = y[1] * y[2]
    y[1:] += x[:-1] ** 2
    y[y > 0.5] *= 2.0
    return y


def jac_views(X):
    A = X.reshape(2, 2, 2)
    return (A @ A).ravel() + np.swapaxes(A, -1, -2).ravel() + X.reshape(2, 4).T.ravel() * X[0]


@pytest.mark.parametrize("f,shape", [(jac_inplace, (4,)), (jac_views, (8,))], ids=["inplace", "views"])
def test_jacobian_and_hessian_of_vector_programs(f, shape):
    x = rn(*shape)
    before = x.copy()
    np.testing.assert_allclose(sg.jacobian(f)(x), fd_leaf(f, x, ()), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(x, before)
    hessian_vs_fd(lambda z: np.sum(np.sin(f(z))), x)


def test_pytree_hessian_jvp_vjp_structures():
    def f(p):
        return np.sum(p["a"] ** 2 * p["b"]) + p["b"][0] ** 3
    p = {"a": rn(2), "b": rn(2)}
    H = sg.hessian(f)(p)
    a, b = p["a"], p["b"]
    np.testing.assert_allclose(H["a"]["a"], np.diag(2 * b))
    np.testing.assert_allclose(H["a"]["b"], np.diag(2 * a))
    np.testing.assert_allclose(H["b"]["b"], np.diag([6 * b[0], 0.0]))

    def g(p):
        return {"y": p["w"] * p["s"], "z": np.sum(p["w"] ** 2)}
    q = {"w": rn(3), "s": 1.5}
    t = {"w": rn(3), "s": 0.5}
    _, tan = sg.jvp(g)(q, t)
    np.testing.assert_allclose(tan["y"], t["w"] * q["s"] + q["w"] * t["s"])
    np.testing.assert_allclose(tan["z"], 2 * q["w"] @ t["w"])
    _, ct = sg.vjp(g)(q, {"y": np.ones(3), "z": 2.0})
    np.testing.assert_allclose(ct["w"], q["s"] + 4 * q["w"])
    np.testing.assert_allclose(ct["s"], np.sum(q["w"]))


def test_nested_scalar_derivatives_and_module_level_grad_in_a_loss():
    def f(a, b):
        return a ** 2 * b ** 3 + math.sin(a * b)
    gab = sg.grad(sg.grad(f, argnums=0), argnums=1)
    for a, b in ((0.4, 1.3), (1.1, -0.3)):
        np.testing.assert_allclose(gab(a, b), 6 * a * b ** 2 + math.cos(a * b) - a * b * math.sin(a * b),
                                   rtol=1e-10)
    g3 = sg.grad(sg.grad(sg.grad(lambda x: x ** 4 + math.sin(x))))
    np.testing.assert_allclose(g3(0.7), 24 * 0.7 - math.cos(0.7), rtol=1e-10)
    check(meta_lr, 0.1, rn(3), argnums=(0, 1))


MX, MY = np.arange(18.0).reshape(6, 3) / 10, np.linspace(-1, 1, 6)


def meta_inner(w):
    return np.mean((MX @ w - MY) ** 2)


d_meta_inner = sg.grad(meta_inner)


def meta_lr(lr, w0):
    w = w0
    for _ in range(3):
        w = w - lr * d_meta_inner(w)
    return meta_inner(w)


def test_jacobian_of_grad_is_the_hessian():
    def f(x):
        return np.sum(np.sin(x) * x[0])
    x = rn(3)
    np.testing.assert_allclose(sg.jacobian(sg.grad(f))(x), sg.hessian(f)(x), rtol=1e-10, atol=1e-12)
    check_vjp(lambda x: np.sin(x) * x[::-1], rn(3))


# ----------------------------------------------------------------------------------------------------
# the eager tape


def tape_grad(build, a):
    x = torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)
    build(x).backward()
    return x.grad.numpy()


@pytest.mark.parametrize("build,ref", [
    (lambda x: x.max(dim=1)[0].sum() + x.max(1).values.sum() * 2, lambda a: 3 * a.max(1).sum()),
    (lambda x: x.gather(1, torch.tensor([[0], [2], [3]])).pow(2).sum(),
     lambda a: (a[[0, 1, 2], [0, 2, 3]] ** 2).sum()),
    (lambda x: x.index_select(0, torch.tensor([2, 0, 2])).sum() + x.masked_fill(x > 0, 0.0).pow(2).sum(),
     lambda a: a[[2, 0, 2]].sum() + (np.where(a > 0, 0, a) ** 2).sum()),
    (lambda x: x.logsumexp(dim=1).sum() + x.cumsum(dim=0).pow(2).sum(),
     lambda a: np.log(np.exp(a).sum(1)).sum() + (np.cumsum(a, 0) ** 2).sum()),
    (lambda x: torch.nn.functional.cross_entropy(x, torch.tensor([0, 3, 1])),
     lambda a: -np.mean(np.log(np.exp(a) / np.exp(a).sum(1, keepdims=True))[[0, 1, 2], [0, 3, 1]])),
    (lambda x: x.var() + x.std(dim=0).sum() + x.var(1, unbiased=False).sum(),
     lambda a: a.var(ddof=1) + a.std(0, ddof=1).sum() + a.var(1).sum()),
    (lambda x: sum((c ** 2).sum() * (i + 1) for i, c in enumerate(x.chunk(2, dim=1))),
     lambda a: (a[:, :2] ** 2).sum() + 2 * (a[:, 2:] ** 2).sum()),
], ids=["max_dim", "gather", "index_select_masked_fill", "logsumexp_cumsum", "cross_entropy", "var_std",
        "chunk"])
def test_tape_ops_against_finite_differences(build, ref):
    a = rn(3, 4)
    np.testing.assert_allclose(tape_grad(build, a), fd_leaf(ref, a, ()), rtol=1e-5, atol=1e-7)


def test_tape_accumulation_hooks_retain_grad_and_double_backward():
    x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.register_hook(lambda g: g * 10)
    z = y.exp().sum()
    z.backward(retain_graph=True)
    np.testing.assert_allclose(y.grad.numpy(), np.exp([1.0, -2.0, 4.0]))
    np.testing.assert_allclose(x.grad.numpy(), 20 * np.exp([1.0, -2.0, 4.0]))
    x.grad.zero_()
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad((w ** 3).sum(), w, create_graph=True)
    (g2,) = torch.autograd.grad(g.sum(), w)
    np.testing.assert_allclose(g2.numpy(), [6.0, 12.0])
    gx, gy = torch.autograd.grad((w ** 2).sum(), [w, torch.ones(2, requires_grad=True)], allow_unused=True)
    assert gy is None
    np.testing.assert_allclose(gx.numpy(), [2.0, 4.0])


def test_tape_in_place_on_non_leaf_and_clone_setitem():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.clone()
    y[0] = y[1] * 5
    z = x * 1.0
    z.mul_(2).add_(1)
    (y.sum() + z.pow(2).sum()).backward()
    want = np.array([0.0, 6.0, 1.0]) + 4 * (2 * np.array([1.0, 2, 3]) + 1)
    np.testing.assert_allclose(x.grad.numpy(), want)
    with pytest.raises(RuntimeError):
        torch.tensor([1.0], requires_grad=True).add_(1)


def test_tape_float32_promotion_like_pytorch():
    a = torch.ones(3, dtype=torch.float32, requires_grad=True)
    assert (a * 2.5).dtype == torch.float32
    c = a * torch.ones(3, dtype=torch.float64)
    assert c.dtype == torch.float64
    c.sum().backward()
    assert a.grad.dtype == torch.float32
