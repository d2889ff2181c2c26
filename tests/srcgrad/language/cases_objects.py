"""Objects: methods calling other methods, callable instances, an nn.Module-like class holding NumPy
parameters, counters written to self, and gradients with respect to an object's array attributes."""

import numpy as np

from tests.srcgrad.language.harness import Case


class GaussianProcess:
    """Exact GP regression with an RBF kernel; the objective is a method calling other methods."""

    def __init__(self, X, y):
        self.X = X
        self.y = y

    def kernel(self, log_ell, log_sf):
        d2 = (self.X[:, None, 0] - self.X[None, :, 0]) ** 2
        return np.exp(2.0 * log_sf) * np.exp(-0.5 * d2 / np.exp(2.0 * log_ell))

    def log_likelihood(self, theta):
        K = self.kernel(theta[0], theta[1]) + 0.1 * np.eye(len(self.y))
        alpha = np.linalg.solve(K, self.y)
        return -0.5 * self.y @ alpha - 0.5 * np.log(np.linalg.det(K))

    def neg_log_likelihood(self, theta):
        return -self.log_likelihood(theta)


class Quadratic:
    """A callable instance: f(x) = 1/2 x'Ax - b'x."""

    def __init__(self, A, b):
        self.A = A
        self.b = b

    def __call__(self, x):
        return 0.5 * x @ self.A @ x - self.b @ x


class Dense:
    def __init__(self, W, b):
        self.W = W
        self.b = b

    def __call__(self, h):
        return np.tanh(h @ self.W + self.b)


class MLP:
    """nn.Module-like: parameters as array attributes, forward() and loss() methods, an eval counter."""

    def __init__(self, rng):
        self.W1 = rng.normal(size=(3, 4)) * 0.5
        self.b1 = np.zeros(4)
        self.W2 = rng.normal(size=(4, 1)) * 0.5
        self.n_forward = 0

    def forward(self, X):
        self.n_forward += 1
        h = np.tanh(X @ self.W1 + self.b1)
        return (h @ self.W2)[:, 0]

    def loss(self, X, y):
        return np.mean((self.forward(X) - y) ** 2)


def mlp_loss(model, X, y):
    # gradients with respect to the model's array attributes: a dict keyed by attribute name
    return model.loss(X, y)


class Sequential:
    def __init__(self, layers):
        self.layers = layers

    def __call__(self, h):
        for layer in self.layers:
            h = layer(h)
        return h


_rng = np.random.default_rng(7)
_net = Sequential([Dense(_rng.normal(size=(3, 3)), np.zeros(3)),
                   Dense(_rng.normal(size=(3, 2)), np.zeros(2))])


def sequential_input_saliency(x):
    return np.sum(_net(x) ** 2)


class Solver:
    """Counts its energy evaluations in an attribute."""

    def __init__(self, k):
        self.k = k
        self.n_evals = 0

    def energy(self, x):
        self.n_evals += 1
        self.last_size = x.shape[0]
        return 0.5 * self.k * np.sum(np.diff(x) ** 2) + np.sum(np.cos(x))


class Softplus:
    @staticmethod
    def _softplus(z):
        return np.log1p(np.exp(z))

    def __init__(self, beta):
        self.beta = beta

    @property
    def inv_beta(self):
        return 1.0 / self.beta

    def apply(self, x):
        return self.inv_beta * self._softplus(self.beta * x)

    def loss(self, x):
        return np.sum(self.apply(x) ** 2)


class Base:
    def features(self, x):
        return np.sin(x)

    def score(self, x):
        return np.sum(self.features(x) * x)


class Derived(Base):
    def features(self, x):
        return super().features(x) + 0.5 * np.cos(2.0 * x)


_gp = GaussianProcess(np.linspace(0, 2, 5)[:, None], np.sin(np.linspace(0, 2, 5)))
_quad = Quadratic(np.array([[3.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.5]]), np.array([1.0, -0.5, 0.2]))
_mlp_rng = np.random.default_rng(3)
_model = MLP(_mlp_rng)
_solver = Solver(1.5)
_softplus = Softplus(2.0)
_derived = Derived()


def _make_closure_loss():
    # JAX/PyTorch style: the model is built once and held by the loss function's closure; the gradient is
    # with respect to the loss's arguments, the model's arrays are constants
    model = MLP(np.random.default_rng(11))
    net = Sequential([Dense(np.random.default_rng(12).normal(size=(3, 3)), np.zeros(3))])

    def loss(X, y):
        return np.mean((model.forward(net(X)) - y) ** 2)

    def forward_loss(X):
        return np.sum(model.forward(X) ** 2) + np.sum(net.layers[0](X))

    def param_penalty(W):
        # the closure object's arrays read directly, next to a method call
        return np.sum((W - model.W1) ** 2) + np.sum(net(W.T[:, :3]))

    return loss, forward_loss, param_penalty


_closure_loss, _closure_forward_loss, _closure_param_penalty = _make_closure_loss()


class CountingEnergy:
    """Counters and sizes (values that carry no derivative) written to self in a method."""

    def __init__(self, k):
        self.k = k
        self.calls = 0
        self.last_n = None
        self.flags = 0

    def energy(self, x):
        self.calls += 1
        self.last_n = x.shape[0]
        self.flags = self.flags + (len(x) > 3)
        return self.k * np.sum(np.cos(x) * x) + self.calls * 0.0


_counting = CountingEnergy(0.7)


def _data(r):
    return r.normal(size=(5, 3)), r.normal(size=5)


CASES = [
    Case("method_calls_methods", _gp.neg_log_likelihood, lambda r: (np.array([-0.2, 0.1]),)),
    Case("callable_instance", _quad, lambda r: (r.normal(size=3),), checks=("reverse", "forward", "tape")),
    Case("module_method_wrt_input", _model.loss, lambda r: _data(r)),
    Case("module_params_as_dict", mlp_loss, lambda r: (MLP(r), *_data(r))),
    Case("callable_layers_in_list", sequential_input_saliency, lambda r: (r.normal(size=(2, 3)),)),
    Case("method_counter_on_self", _solver.energy, lambda r: (r.normal(size=5),)),
    Case("staticmethod_and_property", _softplus.loss, lambda r: (r.normal(size=4),)),
    Case("inherited_super_call", _derived.score, lambda r: (r.normal(size=4),)),
    Case("model_in_closure", _closure_loss, lambda r: (r.normal(size=(5, 3)), r.normal(size=5)), wrt=(0, 1)),
    Case("model_method_in_closure", _closure_forward_loss, lambda r: (r.normal(size=(5, 3)),)),
    Case("closure_model_params_read", _closure_param_penalty, lambda r: (r.normal(size=(3, 4)),)),
    Case("counter_and_size_on_self", _counting.energy, lambda r: (r.normal(size=5),),
         checks=("reverse", "forward", "vjp", "hessian", "hvp")),
]
