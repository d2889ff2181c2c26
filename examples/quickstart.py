"""srcgrad in one page: the compiler writes readable derivative code; the eager tape speaks PyTorch.

Run with `make demo`.
"""

import numpy as np

import srcgrad as sg


# 1. Source transformation: sg.grad reads this function and writes its adjoint as Python source.
def loss(w, x):
    """A loop whose trip count depends on the data: halve w·x until it drops below 1."""
    z = np.sum(w * x)
    steps = 0
    while z > 1.0:
        z = z * 0.5
        steps += 1
    return np.tanh(z) + 0.1 * np.sum(w * w)


dloss = sg.grad(loss)                      # gradient with respect to argument 0
w = np.array([0.5, -1.0, 2.0])
x = np.array([3.0, 1.0, 2.0])
print("generated adjoint code, specialized to two float64 arrays of shape (3,):\n")
print(dloss.source_for(w, x))          # inspect.getsource(dloss): the generic variant, for any types
g = dloss(w, x)
fd = np.array([(loss(w + e, x) - loss(w - e, x)) / 2e-6 for e in np.eye(3) * 1e-6])
print("sg.grad(loss)(w, x)  =", g)
print("finite differences   =", fd)
assert np.allclose(g, fd, atol=1e-6)

# 2. The eager runtime: PyTorch's idioms, `import srcgrad as torch` works.
torch = sg
a = torch.linspace(0.0, 2.0 * np.pi, steps=25, requires_grad=True)
b = torch.sin(a)
c = 2 * b + 1
out = c.sum()
out.backward()
print("\ngrad_fn chain:", out.grad_fn, out.grad_fn.next_functions)
print("a.grad == 2 cos(a):", bool(np.allclose(a.grad.numpy(), 2 * np.cos(a.detach().numpy()), atol=1e-5)))
