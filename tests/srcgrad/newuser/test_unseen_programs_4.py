"""New-user programs, round 4: eager PyTorch-style API against real PyTorch, and source transforms
on scientific NumPy programs checked against central finite differences or closed forms."""
import math

import numpy as np
import pytest

import srcgrad as sg


def fd(f, x, eps=1e-6):
    x = np.asarray(x, float)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp = x.copy()
        xm = x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def fd_jac(f, x, n, eps=1e-6):
    return np.array([fd(lambda z, k=k: f(z)[k], x, eps) for k in range(n)])


# ----------------------------------------------------------------------------- eager API vs torch

def _both(prog, *arrs):
    T = pytest.importorskip("torch")
    a = [sg.tensor(x, requires_grad=True) for x in arrs]
    b = [T.tensor(x, requires_grad=True) for x in arrs]
    ra = prog(sg, *a)
    rb = prog(T, *b)
    ra.backward()
    rb.backward()
    assert np.allclose(float(ra.detach().numpy()), float(rb.detach().numpy()))
    for p, q in zip(a, b, strict=True):
        assert np.allclose(p.grad.numpy(), q.grad.numpy())


X0 = np.array([[0.5, -1.0, 2.0], [0.3, 0.8, -0.4]])


def _p_where(t, x):
    y = t.where(x > 0, x ** 2, -x)
    z = t.cumsum(y, dim=1)
    return (z.norm(dim=0) + t.logsumexp(x, dim=1).sum()).sum()


def _p_clamp_expand(t, x):
    y = x.clone()
    y[:, 0] = y[:, 1] * 2
    y.clamp_(min=-0.5, max=1.5)
    y = y.unsqueeze(0).expand(3, 2, 3)
    return (y * t.arange(3.0, dtype=x.dtype).view(3, 1, 1)).sum() + x.std()


def _p_view_inplace(t, x):
    y = x * 1.0
    v = y[0]
    v.mul_(3.0)
    return (y ** 2).sum()


def _p_split_cat(t, x):
    a, b = x.split(1, dim=0)
    c = t.cat([a * b, a + b, t.stack([a.sum(), b.max()]).reshape(1, 2)[:, :1].expand(1, 3)], dim=0)
    return t.sigmoid(c).prod() + c.abs().amax()


def _p_index_add(t, x):
    idx = t.tensor([2, 0, 2])
    s = t.zeros(2, 3, dtype=x.dtype).index_add(1, idx, x[:, idx])
    return (s * s).sum() + t.gather(x, 1, t.tensor([[0, 0], [2, 1]])).sum()


def _p_linalg(t, x):
    m = x @ x.T
    eye = t.eye(2, dtype=x.dtype)
    return t.linalg.det(m + eye) + t.linalg.inv(m + 2 * eye).sum() + t.trace(m)


def _p_functional(t, x):
    F = t.nn.functional
    return (F.softplus(x).sum() + F.relu(x).pow(2).sum() + F.mse_loss(x, t.zeros_like(x))
            + F.log_softmax(x, dim=0).sum())


@pytest.mark.parametrize("prog", [_p_where, _p_clamp_expand, _p_view_inplace, _p_split_cat,
                                  _p_index_add, _p_linalg, _p_functional])
def test_eager_programs_match_torch(prog):
    _both(prog, X0)


def test_eager_inplace_on_clone_and_mask_match_torch():
    T = pytest.importorskip("torch")

    def prog(t, x):
        y = x * 2
        z = y.clone()
        z[1] = 0.0
        z.mul_(3)
        z.add_(x)
        w = x.clone()
        w[w < 0] = 0.0
        w.pow_(2)
        return (z * z).sum() + (w * x).sum()

    x0 = [1.0, -2.0, 3.0]
    x = sg.tensor(x0, requires_grad=True)
    xt = T.tensor(x0, dtype=T.float64, requires_grad=True)
    g, = sg.autograd.grad(prog(sg, x), x)
    gt, = T.autograd.grad(prog(T, xt), xt)
    assert np.allclose(g.detach().numpy(), gt.numpy())


def test_eager_no_grad_detach_hooks_and_errors():
    x = sg.tensor([1.0, 2.0], requires_grad=True)
    with sg.no_grad():
        y = x * 3
    assert not y.requires_grad
    (x.detach() * x).sum().backward()
    assert np.allclose(x.grad.numpy(), [1.0, 2.0])
    with pytest.raises(RuntimeError):
        x.add_(1.0)                      # leaf that requires grad
    z = sg.tensor([1.0, 2.0], requires_grad=True)
    z.register_hook(lambda g: g * 10)
    (z * z).sum().backward()
    assert np.allclose(z.grad.numpy(), [20.0, 40.0])
    a = sg.tensor([1.0, 2.0], requires_grad=True)
    e = a.exp()
    w = (e * e).sum()
    e.add_(1.0)
    with pytest.raises(RuntimeError):
        w.backward()                     # saved tensor modified in place
    b = sg.tensor([1.0, 2.0], requires_grad=True)
    s = b.exp().sum()
    s.backward()
    with pytest.raises(RuntimeError):
        s.backward()                     # graph freed
    c = sg.tensor([3.0], requires_grad=True)
    c.detach().add_(1.0)                 # detach shares storage
    assert float(c.detach().numpy()[0]) == 4.0


def test_eager_double_backward_and_accumulation():
    T = pytest.importorskip("torch")
    x = sg.tensor([0.5, 1.5], requires_grad=True)
    g, = sg.autograd.grad((x ** 3).sum(), x, create_graph=True)
    (g * g).sum().backward()
    xt = T.tensor([0.5, 1.5], dtype=T.float64, requires_grad=True)
    gt, = T.autograd.grad((xt ** 3).sum(), xt, create_graph=True)
    (gt * gt).sum().backward()
    assert np.allclose(x.grad.numpy(), xt.grad.numpy())
    x.grad.zero_()
    for _ in range(2):
        (x * x).sum().backward()
    assert np.allclose(x.grad.numpy(), 4 * np.array([0.5, 1.5]))
    u = sg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = u ** 2
    gy = sg.autograd.grad(y, u, grad_outputs=sg.ones_like(y), retain_graph=True)[0]
    assert np.allclose(gy.numpy(), [2.0, 4.0, 6.0])
    unused = sg.tensor([1.0], requires_grad=True)
    g3 = sg.autograd.grad((u * 2).sum(), [u, unused], allow_unused=True)
    assert g3[1] is None and np.allclose(g3[0].numpy(), 2.0)


def test_eager_retain_grad_matches_torch():
    T = pytest.importorskip("torch")
    vals = [[1.0, 2.0], [3.0, 4.0]]
    x = sg.tensor(vals, requires_grad=True)
    y = x.t() @ x
    y.retain_grad()
    (y.trace() + y.max()).backward()
    xt = T.tensor(vals, dtype=T.float64, requires_grad=True)
    yt = xt.t() @ xt
    yt.retain_grad()
    (yt.trace() + yt.max()).backward()
    assert np.allclose(x.grad.numpy(), xt.grad.numpy())
    assert np.allclose(y.grad.numpy(), yt.grad.numpy())


def test_eager_cross_entropy_and_softmax_match_torch():
    T = pytest.importorskip("torch")
    vals = [[0.2, 0.5, -1.0], [1.0, 2.0, 0.1]]
    x = sg.tensor(vals, requires_grad=True)
    sg.nn.functional.cross_entropy(x, sg.tensor([2, 0])).backward()
    xt = T.tensor(vals, dtype=T.float64, requires_grad=True)
    T.nn.functional.cross_entropy(xt, T.tensor([2, 0])).backward()
    assert np.allclose(x.grad.numpy(), xt.grad.numpy(), atol=1e-6)
    assert np.allclose(sg.softmax(x, dim=-1).detach().numpy(), T.softmax(xt, dim=-1).detach().numpy())


def _net(t):
    class Net(t.nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = t.nn.Linear(3, 4)
            self.l2 = t.nn.Linear(4, 2)
            self.scale = t.nn.Parameter(t.ones(2))

        def forward(self, x):
            return self.l2(t.relu(self.l1(x))) * self.scale
    return Net()


def test_eager_module_training_matches_torch():
    T = pytest.importorskip("torch")
    n1 = _net(sg)
    n2 = _net(T).double()
    n2.load_state_dict({k: T.tensor(np.asarray(v.detach().numpy())) for k, v in n1.state_dict().items()})
    X = np.random.RandomState(0).randn(5, 3)
    Y = np.array([0, 1, 1, 0, 1])
    o1 = sg.optim.SGD(n1.parameters(), lr=0.1, momentum=0.5)
    o2 = T.optim.SGD(n2.parameters(), lr=0.1, momentum=0.5)
    for _ in range(10):
        o1.zero_grad()
        o2.zero_grad()
        l1 = sg.nn.CrossEntropyLoss()(n1(sg.tensor(X)), sg.tensor(Y))
        l2 = T.nn.CrossEntropyLoss()(n2(T.tensor(X)), T.tensor(Y))
        l1.backward()
        l2.backward()
        o1.step()
        o2.step()
    assert np.allclose(l1.item(), l2.item(), rtol=1e-6)
    for (k, v), (k2, v2) in zip(n1.named_parameters(), n2.named_parameters(), strict=True):
        assert k == k2 and np.allclose(v.detach().numpy(), v2.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_eager_sequential_adam_fits_and_grads_match_torch():
    T = pytest.importorskip("torch")
    sg.manual_seed(0)
    model = sg.nn.Sequential(sg.nn.Linear(2, 8), sg.nn.Tanh(), sg.nn.Linear(8, 1))
    opt = sg.optim.Adam(model.parameters(), lr=0.05)
    X = sg.tensor(np.random.RandomState(0).randn(32, 2))
    Y = X[:, 0:1] * X[:, 1:2]
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = ((model(X) - Y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0]
    tm = T.nn.Sequential(T.nn.Linear(2, 8), T.nn.Tanh(), T.nn.Linear(8, 1)).double()
    with T.no_grad():
        for p, q in zip(tm.parameters(), model.parameters(), strict=True):
            p.copy_(T.tensor(np.asarray(q.detach().numpy())))
    model.zero_grad()
    ((model(X) - Y) ** 2).mean().backward()
    Xt = T.tensor(np.asarray(X.numpy()))
    ((tm(Xt) - Xt[:, 0:1] * Xt[:, 1:2]) ** 2).mean().backward()
    for p, q in zip(tm.parameters(), model.parameters(), strict=True):
        assert np.allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_eager_optimizers_match_torch(name):
    T = pytest.importorskip("torch")
    w = sg.tensor([1.0, -2.0], requires_grad=True)
    wt = T.tensor([1.0, -2.0], requires_grad=True, dtype=T.float64)
    kw = dict(lr=0.1)
    if name == "SGD":
        kw.update(momentum=0.9, nesterov=True, weight_decay=0.01)
    o = getattr(sg.optim, name)([w], **kw)
    ot = getattr(T.optim, name)([wt], **kw)
    for _ in range(5):
        o.zero_grad()
        ot.zero_grad()
        ((w - 3.0) ** 2 * sg.tensor([1.0, 4.0])).sum().backward()
        ((wt - 3.0) ** 2 * T.tensor([1.0, 4.0], dtype=T.float64)).sum().backward()
        o.step()
        ot.step()
    assert np.allclose(w.detach().numpy(), wt.detach().numpy(), rtol=1e-5)


def test_eager_functional_api_matches_torch():
    T = pytest.importorskip("torch")
    AF, AT = sg.autograd.functional, T.autograd.functional
    x0 = np.array([0.3, 0.7, -0.2])
    v0 = np.array([1.0, -2.0, 0.5])

    def f(x):
        return x.sin() * x.sum()

    def g(x):
        return (x ** 3).sum() * x.cos().sum()

    assert np.allclose(AF.jacobian(f, sg.tensor(x0)).numpy(), AT.jacobian(f, T.tensor(x0)).numpy())
    assert np.allclose(AF.hessian(g, sg.tensor(x0)).numpy(), AT.hessian(g, T.tensor(x0)).numpy())
    assert np.allclose(AF.vjp(f, sg.tensor(x0), sg.tensor(v0))[1].numpy(),
                       AT.vjp(f, T.tensor(x0), T.tensor(v0))[1].numpy())
    assert np.allclose(AF.jvp(f, sg.tensor(x0), sg.tensor(v0))[1].numpy(),
                       AT.jvp(f, T.tensor(x0), T.tensor(v0))[1].numpy())
    o, hv = AF.hvp(g, sg.tensor(x0), sg.tensor(v0))
    ot, hvt = AT.hvp(g, T.tensor(x0), T.tensor(v0))
    assert np.allclose(hv.numpy(), hvt.numpy()) and np.allclose(float(o), float(ot))

    def h(a, b):
        return (a * b.exp()).sum()

    H = AF.hessian(h, (sg.tensor(x0), sg.tensor(v0)))
    Ht = AT.hessian(h, (T.tensor(x0), T.tensor(v0)))
    for i in range(2):
        for j in range(2):
            assert np.allclose(H[i][j].numpy(), Ht[i][j].numpy())

    def two(x, y):
        return (x * y.sin(), (x ** 2).sum() + y.sum())

    a0, b0 = np.array([0.4, 1.2]), np.array([-0.5, 2.0])
    J = AF.jacobian(two, (sg.tensor(a0), sg.tensor(b0)))
    Jt = AT.jacobian(two, (T.tensor(a0), T.tensor(b0)))
    for i in range(2):
        for j in range(2):
            assert np.allclose(np.asarray(J[i][j].numpy()), Jt[i][j].numpy())

    def e(x):
        return (x.exp() * x).sum()

    xs = sg.tensor([0.1, 0.2], requires_grad=True)
    AF.hessian(e, xs, create_graph=True).sum().backward()
    xt = T.tensor([0.1, 0.2], dtype=T.float64, requires_grad=True)
    AT.hessian(e, xt, create_graph=True).sum().backward()
    assert np.allclose(xs.grad.numpy(), xt.grad.numpy())


# ----------------------------------------------------------------------------- source transforms

def rk4_decay(k, y0):
    t = 0.0
    y = y0
    h = 0.01
    while t < 1.0 - 1e-12:
        k1 = -k * y
        k2 = -k * (y + 0.5 * h * k1)
        k3 = -k * (y + 0.5 * h * k2)
        k4 = -k * (y + h * k3)
        y = y + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        t = t + h
    return y


def test_rk4_float_while_closed_form():
    g = sg.grad(rk4_decay, argnums=(0, 1))(0.7, 2.0)
    assert np.allclose(g, (-2.0 * math.exp(-0.7), math.exp(-0.7)), rtol=1e-7)
    v, _ = sg.value_and_grad(rk4_decay)(0.7, 2.0)
    assert abs(v - 2 * math.exp(-0.7)) < 1e-8


def euler_forced(k, y0):
    t = 0.0
    y = y0
    h = 0.01
    while t < 1.0 - 1e-12:
        y = y + h * (-k * y + math.sin(t))
        t = t + h
    return y


def test_euler_float_jvp_and_jacobian_of_jvp():
    e = 1e-5
    v, d = sg.jvp(euler_forced)(0.7, 2.0, 1.0)
    assert abs(v - euler_forced(0.7, 2.0)) < 1e-12
    assert abs(d - (euler_forced(0.7 + e, 2.0) - euler_forced(0.7 - e, 2.0)) / (2 * e)) < 1e-8
    _, d2 = sg.jvp(euler_forced, argnums=(0, 1))(0.7, 2.0, (1.0, 0.5))
    ref = d + 0.5 * (euler_forced(0.7, 2.0 + e) - euler_forced(0.7, 2.0 - e)) / (2 * e)
    assert abs(d2 - ref) < 1e-8
    jv, jd = sg.jacobian(sg.jvp(euler_forced))(0.7, 2.0, 1.0)
    assert abs(jv - d) < 1e-12
    assert abs(jd - sg.grad(sg.grad(euler_forced))(0.7, 2.0)) < 1e-8


def pendulum(theta0, L):
    th = theta0
    om = 0.0
    dt = 0.01
    g = 9.81
    n = 0
    while True:
        om = om - dt * g / L * math.sin(th)
        th = th + dt * om
        n += 1
        if n >= 150:
            break
    return th * th + 0.5 * om * om


def test_pendulum_break_grad_and_hessian():
    e = 1e-6
    g = sg.grad(pendulum, argnums=(0, 1))(0.4, 1.3)
    ref = ((pendulum(0.4 + e, 1.3) - pendulum(0.4 - e, 1.3)) / (2 * e),
           (pendulum(0.4, 1.3 + e) - pendulum(0.4, 1.3 - e)) / (2 * e))
    assert np.allclose(g, ref, rtol=1e-6)
    dp = sg.grad(pendulum)
    h = sg.grad(sg.grad(pendulum))(0.4, 1.3)
    assert abs(h - (dp(0.4 + e, 1.3) - dp(0.4 - e, 1.3)) / (2 * e)) < 1e-5 * abs(h)
    H = sg.hessian(pendulum, argnums=(0, 1))(0.4, 1.3)
    assert abs(H[0][0] - h) < 1e-8 and abs(H[0][1] - H[1][0]) < 1e-8


def newton_cbrt(a, x0):
    x = x0
    it = 0
    while abs(x * x * x - a) > 1e-13 and it < 50:
        x = x - (x * x * x - a) / (3 * x * x)
        it += 1
    return x


def test_newton_while_closed_form():
    assert abs(sg.grad(newton_cbrt)(2.0, 1.0) - (1 / 3) * 2.0 ** (-2 / 3)) < 1e-8


def lj_energy(pos):
    n = pos.shape[0]
    E = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            d = pos[i] - pos[j]
            r2 = np.dot(d, d)
            inv6 = 1.0 / r2 ** 3
            E = E + 4.0 * (inv6 * inv6 - inv6)
    return E


def test_lennard_jones_pairwise_grad_hessian():
    rng = np.random.RandomState(1)
    pos = np.array([[0, 0, 0], [1.1, 0, 0], [0, 1.2, 0], [0.1, 0.2, 1.3]], float) + 0.01 * rng.randn(4, 3)
    p0 = pos.copy()
    g = sg.grad(lj_energy)(pos)
    assert np.array_equal(pos, p0)
    assert np.allclose(g, fd(lj_energy, pos), rtol=1e-5, atol=1e-6)
    assert np.allclose(g.sum(0), 0, atol=1e-9)
    H = sg.hessian(lj_energy)(pos)
    assert H.shape == (4, 3, 4, 3)
    assert np.allclose(H[1, 0], fd(lambda p: sg.grad(lj_energy)(p)[1, 0], pos), rtol=1e-4, atol=1e-5)


def coulomb(X, q):
    E = 0.0
    n = X.shape[0]
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            r = np.sqrt(np.sum((X[i] - X[j]) ** 2) + 0.01)
            E += q[i] * q[j] / r
    return 0.5 * E


def test_coulomb_continue_grad_and_hessian():
    X = np.array([[0., 0.], [1., 0.2], [0.3, 1.]])
    q = np.array([1.0, -1.0, 0.5])
    gX, gq = sg.grad(coulomb, argnums=(0, 1))(X, q)
    assert np.allclose(gX, fd(lambda z: coulomb(z, q), X), rtol=1e-6)
    assert np.allclose(gq, fd(lambda z: coulomb(X, z), q), rtol=1e-6)
    H = sg.hessian(coulomb, argnums=1)(X, q)
    assert np.allclose(H, fd_jac(lambda z: sg.grad(coulomb, argnums=1)(X, z), q, 3), rtol=1e-5, atol=1e-7)


def heat1d(u0, kappa):
    u = u0.copy()
    for _ in range(20):
        new = u.copy()
        new[1:-1] = u[1:-1] + kappa * (u[2:] - 2 * u[1:-1] + u[:-2])
        new[0] = 0.0
        new[-1] = new[-2]
        u = new
    return np.sum(u ** 2)


def test_heat_boundary_writes():
    u0 = np.sin(np.linspace(0, 3, 12))
    c = u0.copy()
    g = sg.grad(heat1d)(u0, 0.2)
    assert np.array_equal(u0, c)
    assert np.allclose(g, fd(lambda u: heat1d(u, 0.2), u0), rtol=1e-6, atol=1e-8)
    gk = sg.grad(heat1d, argnums=1)(u0, 0.2)
    fk = (heat1d(u0, 0.2 + 1e-6) - heat1d(u0, 0.2 - 1e-6)) / 2e-6
    assert abs(gk - fk) < 1e-5 * abs(fk) + 1e-8


def heat_inplace(u, kappa):
    for _ in range(3):
        lap = u[2:] - 2 * u[1:-1] + u[:-2]
        u[1:-1] += kappa * lap
        u[0] = u[1]
    return np.sum(u ** 3)


def shift_inplace(u):
    u[1:] = u[1:] * u[:-1]
    u += 1.0
    return u


def test_inplace_on_argument_never_touches_caller():
    u0 = np.cos(np.linspace(0, 2, 6))
    c = u0.copy()
    g = sg.grad(heat_inplace)(u0, 0.1)
    assert np.array_equal(u0, c)
    assert np.allclose(g, fd(lambda u: heat_inplace(u.copy(), 0.1), c), rtol=1e-6)
    H = sg.hessian(heat_inplace)(u0, 0.1)
    assert np.array_equal(u0, c)
    assert np.allclose(H, fd_jac(lambda z: sg.grad(heat_inplace)(z, 0.1), c, 6), rtol=1e-5, atol=1e-7)
    sg.vjp(heat_inplace)(u0, 0.1, 1.0)
    sg.value_and_grad(heat_inplace)(u0, 0.1)
    assert np.array_equal(u0, c)
    Jf = fd_jac(lambda z: shift_inplace(z.copy()), c, 6)
    assert np.allclose(sg.jacobian(shift_inplace)(u0), Jf, rtol=1e-6, atol=1e-8)
    y, jt = sg.jvp(shift_inplace)(u0, np.ones(6))
    assert np.allclose(jt, Jf.sum(1), rtol=1e-6) and np.allclose(y, shift_inplace(c.copy()))
    y, vj = sg.vjp(shift_inplace)(u0, np.ones(6))
    assert np.allclose(vj, Jf.sum(0), rtol=1e-6)
    assert np.array_equal(u0, c)


def wave2d(u0, c):
    u = u0.copy()
    up = u0.copy()
    for _ in range(6):
        lap = (np.roll(u, 1, axis=0) + np.roll(u, -1, axis=0) + np.roll(u, 1, axis=1)
               + np.roll(u, -1, axis=1) - 4 * u)
        un = 2 * u - up + c * c * lap
        un[0, :] = 0.0
        un[:, -1] = un[:, -2]
        un[-1, 1:3] = 0.5 * un[-2, 1:3]
        up = u
        u = un
    return np.sum(u * np.exp(-u))


def test_wave2d_roll_and_boundary_writes():
    u0 = np.random.RandomState(5).rand(5, 6)
    c0 = u0.copy()
    g = sg.grad(wave2d)(u0, 0.3)
    assert np.array_equal(u0, c0)
    assert np.allclose(g, fd(lambda u: wave2d(u, 0.3), u0), rtol=1e-6, atol=1e-8)
    gc = sg.grad(wave2d, argnums=1)(u0, 0.3)
    f = (wave2d(u0, .3 + 1e-6) - wave2d(u0, .3 - 1e-6)) / 2e-6
    assert abs(gc - f) < 1e-6 * abs(f) + 1e-8


def soft_dtw(a, b, gamma):
    n = a.shape[0]
    m = b.shape[0]
    R = np.full((n + 1, m + 1), 1e10)
    R[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            c = (a[i - 1] - b[j - 1]) ** 2
            r = np.array([R[i - 1, j - 1], R[i - 1, j], R[i, j - 1]])
            mn = np.min(r)
            R[i, j] = c - gamma * np.log(np.sum(np.exp(-(r - mn) / gamma))) + mn
    return R[n, m]


def test_soft_dtw_table():
    a = np.array([0.1, 0.5, 0.9, 0.3])
    b = np.array([0.2, 0.8, 0.4])
    ga, gb = sg.grad(soft_dtw, argnums=(0, 1))(a, b, 0.5)
    assert np.allclose(ga, fd(lambda x: soft_dtw(x, b, 0.5), a), rtol=1e-5, atol=1e-8)
    assert np.allclose(gb, fd(lambda x: soft_dtw(a, x, 0.5), b), rtol=1e-5, atol=1e-8)


def lse_softmax(x, w):
    m = np.max(x, axis=-1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))
    p = np.exp(x - lse)
    return np.sum(p * w) + np.sum(lse)


def test_handwritten_logsumexp_softmax_grad_and_hessian_row():
    rng = np.random.RandomState(2)
    x = rng.randn(3, 4)
    w = rng.randn(3, 4)
    dl = sg.grad(lse_softmax)
    assert np.allclose(dl(x, w), fd(lambda z: lse_softmax(z, w), x), rtol=1e-6, atol=1e-8)
    J = sg.jacobian(dl)(x, w)
    assert np.allclose(J[1, 2], fd(lambda z: dl(z, w)[1, 2], x), rtol=1e-5, atol=1e-6)


def einsum_prog(A, B, x):
    y = np.einsum('...ij,...jk->...ik', A, B)
    z = np.einsum('bij,j->bi', y, x)
    return (np.sum(np.einsum('...i,...i->...', z, z)) + np.einsum('ii', A[0])
            + np.sum(np.einsum('...ii->...', A)))


def test_einsum_ellipsis():
    rng = np.random.RandomState(3)
    A, B, x = rng.randn(2, 3, 3), rng.randn(2, 3, 3), rng.randn(3)
    gA, gB, gx = sg.grad(einsum_prog, argnums=(0, 1, 2))(A, B, x)
    assert np.allclose(gA, fd(lambda a: einsum_prog(a, B, x), A), rtol=1e-6, atol=1e-7)
    assert np.allclose(gB, fd(lambda b: einsum_prog(A, b, x), B), rtol=1e-6, atol=1e-7)
    assert np.allclose(gx, fd(lambda v: einsum_prog(A, B, v), x), rtol=1e-6, atol=1e-7)


def lists_prog(x):
    out = []
    for i in range(3):
        out.append(x * (i + 1.0))
    s = np.stack(out)
    c = np.concatenate(out)
    tot = sum(out)
    first, *rest = x
    return np.sum(s ** 2) + np.sum(np.sin(c)) + np.sum(tot) * first + sum(rest)


def star_prog(x):
    first, *mid, last = x
    tot = 0.0
    for r in mid:
        tot = tot + r * first
    a, *rest = x
    return tot + last ** 2 + a * np.sum(np.array(rest))


def star_rows(M):
    top, *others = M
    return np.sum(top * others[0]) + np.sum(top * sum(others))


def test_lists_append_stack_concat_and_starred():
    x = np.array([0.3, -0.4, 1.1])
    assert np.allclose(sg.grad(lists_prog)(x), fd(lists_prog, x), rtol=1e-6, atol=1e-8)
    x = np.array([0.5, 1.5, -2.0, 0.7, 1.1])
    assert np.allclose(sg.grad(star_prog)(x), fd(star_prog, x), rtol=1e-6, atol=1e-8)
    M = np.arange(12.0).reshape(4, 3) / 7
    assert np.allclose(sg.grad(star_rows)(M), fd(star_rows, M), rtol=1e-6, atol=1e-8)


def diff_trapz(y, x):
    return (np.trapezoid(y ** 2, x) + np.sum(np.diff(y, n=2) ** 2) + np.sum(np.diff(y * x, axis=0))
            + np.sum(np.append(y, [1.0, 2.0]) * np.arange(y.size + 2))
            + np.sum(np.cumsum(np.append(y, y[0] * 3.0)) ** 2) + np.trapezoid(y, dx=0.1))


def test_diff_trapezoid_append():
    y = np.array([0.3, 0.1, 0.7, 0.2, 0.5])
    x = np.array([0.0, 0.2, 0.5, 0.6, 1.0])
    gy, gx = sg.grad(diff_trapz, argnums=(0, 1))(y, x)
    assert np.allclose(gy, fd(lambda z: diff_trapz(z, x), y), rtol=1e-6, atol=1e-8)
    assert np.allclose(gx, fd(lambda z: diff_trapz(y, z), x), rtol=1e-6, atol=1e-8)


def piecewise(x):
    y = np.clip(x, -0.5, 0.8)
    z = np.maximum(x, 0.1) * np.where(x > 0.2, x ** 2, np.sin(x))
    w = np.sort(x)[::-1]
    ip = np.interp(0.35, np.linspace(0, 1, x.size), x)
    return (np.sum(y * z) + np.sum(w * np.arange(x.size)) + ip + np.linalg.norm(x, ord=3)
            + np.prod(x[:3]))


def test_piecewise_sort_interp():
    x = np.array([0.9, -0.3, 0.4, 0.15, 1.2])
    assert np.allclose(sg.grad(piecewise)(x), fd(piecewise, x), rtol=1e-6, atol=1e-8)


def newton_solve(A, b):
    x = np.zeros_like(b)
    for _ in range(3):
        r = A @ x - b + 0.1 * np.tanh(x)
        Jm = A + 0.1 * np.diag(1 - np.tanh(x) ** 2)
        x = x - np.linalg.solve(Jm, r)
    return np.sum(x ** 2)


def test_newton_linear_solve():
    rng = np.random.RandomState(0)
    A = rng.randn(3, 3) + 4 * np.eye(3)
    b = rng.randn(3)
    gA, gb = sg.grad(newton_solve, argnums=(0, 1))(A, b)
    assert np.allclose(gA, fd(lambda z: newton_solve(z, b), A), rtol=1e-6, atol=1e-8)
    assert np.allclose(gb, fd(lambda z: newton_solve(A, z), b), rtol=1e-6, atol=1e-8)


def damped_traj(y0, p):
    y = y0.copy()
    t = 0.0
    h = 0.05
    traj = []
    while t < 1.0:
        y = y + h * np.array([y[1], -p[0] * y[0] - p[1] * y[1]])
        traj.append(y)
        t += h
    Y = np.stack(traj)
    return np.sum(Y[:, 0] ** 2) + np.trapezoid(Y[:, 1], dx=h)


def test_vector_ode_trajectory_stack_and_jacobian_of_grad():
    y0 = np.array([1.0, 0.0])
    p = np.array([4.0, 0.3])
    g0, g1 = sg.grad(damped_traj, argnums=(0, 1))(y0, p)
    assert np.allclose(g0, fd(lambda z: damped_traj(z, p), y0), rtol=1e-6)
    assert np.allclose(g1, fd(lambda z: damped_traj(y0, z), p), rtol=1e-6)
    dp = sg.grad(damped_traj, argnums=1)
    J = sg.jacobian(dp, argnums=1)(y0, p)
    assert np.allclose(J, fd_jac(lambda z: dp(y0, z), p, 2), rtol=1e-5)


def vecfield(x):
    return np.array([x[0] * x[1], np.sin(x[2]) * x[0], x[1] ** 2])


def test_vector_field_vjp_jvp_jacobian_and_compositions():
    x = np.array([0.5, 1.5, -0.3])
    t = np.array([1.0, 0.2, 0.3])
    J = fd_jac(vecfield, x, 3)
    assert np.allclose(sg.jacobian(vecfield)(x), J, rtol=1e-6)
    assert np.allclose(sg.vjp(vecfield)(x, t)[1], t @ J, rtol=1e-6)
    assert np.allclose(sg.jvp(vecfield)(x, t)[1], J @ t, rtol=1e-6)
    J0, J1 = sg.jacobian(sg.jvp(vecfield))(x, t)
    assert np.allclose(J0, J, rtol=1e-6)
    assert np.allclose(J1, fd_jac(lambda z: fd_jac(vecfield, z, 3) @ t, x, 3, 1e-4), rtol=1e-4, atol=1e-6)
    Jx, Jt = sg.jacobian(sg.jvp(vecfield), argnums=1)(x, t)
    assert np.allclose(Jx, 0) and np.allclose(Jt, J, rtol=1e-6)
    (_, jt), (_, tHt) = sg.jvp(sg.jvp(vecfield))(x, t, t)
    assert np.allclose(jt, J @ t, rtol=1e-6)
    ref = np.array([2 * t[0] * t[1],
                    2 * t[0] * t[2] * np.cos(x[2]) - x[0] * np.sin(x[2]) * t[2] ** 2,
                    2 * t[1] ** 2])
    assert np.allclose(tHt, ref)


def scatter_dup(x, idx):
    y = np.zeros(4)
    y[idx] += x                     # NumPy: duplicate indices keep the last write
    x[0] = 5.0
    x *= 2.0
    return np.sum(y ** 2) + np.sum(x ** 2)


def test_fancy_index_augassign_duplicates_and_argument_writes():
    x = np.array([1.0, 2.0, 3.0])
    c = x.copy()
    idx = np.array([0, 2, 0])
    g = sg.grad(scatter_dup)(x, idx)
    assert np.array_equal(x, c)
    assert np.allclose(g, fd(lambda z: scatter_dup(z.copy(), idx), c), rtol=1e-6)
