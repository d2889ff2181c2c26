"""PyTorch's "The Fundamentals of Autograd" tutorial, every eager cell, run by srcgrad.

The only change to the tutorial's code is the import: `import srcgrad as torch`. Plots are drawn when
matplotlib is installed (on a non-interactive backend) and skipped otherwise; the cell that the tutorial
says raises an error is run inside try/except so the script goes on. `RESULTS` keeps a few values for
tests/runtime/test_tutorial.py, which checks what the tutorial states about them. The "Advanced Topic"
high-level API (torch.autograd.functional) is covered by examples of its own.

    python examples/autograd_tutorial.py
"""

# %matplotlib inline
import math

import srcgrad as torch

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker as ticker  # noqa: F401 -- imported by the tutorial
except ImportError:  # plotting is optional: the tensors are what matter here
    plt = None

RESULTS = {}  # values the tests check against the tutorial's statements


def plot(*args):
    """plt.plot when matplotlib is there (it converts detached tensors through __array__)."""
    if plt is not None:
        print(plt.plot(*args))


def cell(title):
    print(f"\n# ---- {title}")


# ======================================================================================= A Simple Example
cell("a = linspace(0, 2pi, 25, requires_grad=True)")
a = torch.linspace(0., 2. * math.pi, steps=25, requires_grad=True)
print(a)

cell("b = sin(a)")
b = torch.sin(a)
plot(a.detach(), b.detach())
print(b)

cell("c = 2 * b; d = c + 1")
c = 2 * b
print(c)
d = c + 1
print(d)

cell("out = d.sum()")
out = d.sum()
print(out)

cell("walking grad_fn.next_functions")
print('d:')
print(d.grad_fn)
print(d.grad_fn.next_functions)
print(d.grad_fn.next_functions[0][0].next_functions)
print(d.grad_fn.next_functions[0][0].next_functions[0][0].next_functions)
print(d.grad_fn.next_functions[0][0].next_functions[0][0].next_functions[0][0].next_functions)
print('\nc:')
print(c.grad_fn)
print('\nb:')
print(b.grad_fn)
print('\na:')
print(a.grad_fn)

cell("out.backward(); a.grad")
out.backward()
print(a.grad)
plot(a.detach(), a.grad.detach())
RESULTS["simple"] = {"a": a.detach().numpy().copy(), "a.grad": a.grad.numpy().copy(),
                     "names": (d.grad_fn.name(), c.grad_fn.name(), b.grad_fn.name(), out.grad_fn.name())}

# ===================================================================================== Autograd in Training
cell("TinyModel")
BATCH_SIZE = 16
DIM_IN = 1000
HIDDEN_SIZE = 100
DIM_OUT = 10


class TinyModel(torch.nn.Module):

    def __init__(self):
        super(TinyModel, self).__init__()

        self.layer1 = torch.nn.Linear(1000, 100)
        self.relu = torch.nn.ReLU()
        self.layer2 = torch.nn.Linear(100, 10)

    def forward(self, x):
        x = self.layer1(x)
        x = self.relu(x)
        x = self.layer2(x)
        return x


some_input = torch.randn(BATCH_SIZE, DIM_IN, requires_grad=False)
ideal_output = torch.randn(BATCH_SIZE, DIM_OUT, requires_grad=False)

model = TinyModel()

cell("layer2 weights before training")
print(model.layer2.weight[0][0:10])  # just a small slice
print(model.layer2.weight.grad)
RESULTS["training"] = {"grad_before": model.layer2.weight.grad,
                       "params": {k: v.numpy().copy() for k, v in model.state_dict().items()},
                       "input": some_input.numpy().copy(), "ideal": ideal_output.numpy().copy()}

cell("one training batch: loss")
optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
prediction = model(some_input)

loss = (ideal_output - prediction).pow(2).sum()
print(loss)
RESULTS["training"]["loss"] = loss.item()

cell("loss.backward()")
loss.backward()
print(model.layer2.weight[0][0:10])
print(model.layer2.weight.grad[0][0:10])
RESULTS["training"]["weight_after_backward"] = model.layer2.weight.detach().numpy().copy()
RESULTS["training"]["grad"] = model.layer2.weight.grad.numpy().copy()
RESULTS["training"]["grads"] = {k: p.grad.numpy().copy() for k, p in model.named_parameters()}

cell("optimizer.step()")
optimizer.step()
print(model.layer2.weight[0][0:10])
print(model.layer2.weight.grad[0][0:10])
RESULTS["training"]["weight_after_step"] = model.layer2.weight.detach().numpy().copy()

cell("gradients accumulate without zero_grad")
print(model.layer2.weight.grad[0][0:10])

for i in range(0, 5):  # noqa: B007 -- the tutorial's loop
    prediction = model(some_input)
    loss = (ideal_output - prediction).pow(2).sum()
    loss.backward()

print(model.layer2.weight.grad[0][0:10])
RESULTS["training"]["grad_accumulated"] = model.layer2.weight.grad.numpy().copy()

optimizer.zero_grad(set_to_none=False)

print(model.layer2.weight.grad[0][0:10])
RESULTS["training"]["grad_zeroed"] = model.layer2.weight.grad.numpy().copy()

# ============================================================================= Turning Autograd Off and On
cell("requires_grad = False")
a = torch.ones(2, 3, requires_grad=True)
print(a)

b1 = 2 * a
print(b1)

a.requires_grad = False
b2 = 2 * a
print(b2)
RESULTS["flag"] = (b1.grad_fn, b2.grad_fn)

cell("torch.no_grad() as a context manager")
a = torch.ones(2, 3, requires_grad=True) * 2
b = torch.ones(2, 3, requires_grad=True) * 3

c1 = a + b
print(c1)

with torch.no_grad():
    c2 = a + b

print(c2)

c3 = a * b
print(c3)
RESULTS["no_grad_context"] = (c1.grad_fn, c2.grad_fn, c2.requires_grad, c3.grad_fn)

cell("torch.no_grad() as a decorator")


def add_tensors1(x, y):
    return x + y


@torch.no_grad()
def add_tensors2(x, y):
    return x + y


a = torch.ones(2, 3, requires_grad=True) * 2
b = torch.ones(2, 3, requires_grad=True) * 3

c1 = add_tensors1(a, b)
print(c1)

c2 = add_tensors2(a, b)
print(c2)
RESULTS["no_grad_decorator"] = (c1.grad_fn, c2.grad_fn, c2.requires_grad)

cell("detach()")
x = torch.rand(5, requires_grad=True)
y = x.detach()

print(x)
print(y)
RESULTS["detach"] = (x.requires_grad, y.requires_grad, y.grad_fn)

# ========================================================================= Autograd and In-place Operations
cell("in-place operation on a leaf that requires grad (the tutorial says: this raises)")
a = torch.linspace(0., 2. * math.pi, steps=25, requires_grad=True)
before = a.detach().numpy().copy()
try:
    torch.sin_(a)
except RuntimeError as err:
    print(f"RuntimeError: {err}")
    RESULTS["inplace_error"] = str(err)
RESULTS["inplace_untouched"] = bool((a.detach().numpy() == before).all())

# ======================================================================================== Autograd Profiler
cell("autograd profiler")
device = torch.device('cpu')
run_on_gpu = False
if torch.cuda.is_available():
    device = torch.device('cuda')
    run_on_gpu = True

x = torch.randn(2, 3, requires_grad=True)
y = torch.rand(2, 3, requires_grad=True)
z = torch.ones(2, 3, requires_grad=True)

with torch.autograd.profiler.profile(use_cuda=run_on_gpu) as prf:
    for _ in range(1000):
        z = (z / x) * y

table = prf.key_averages().table(sort_by='self_cpu_time_total')
print(table)
RESULTS["profiler_table"] = table

# ============================================================== Advanced Topic: backward with a vector
cell("y = x * 2 doubled until its norm reaches 1000")
x = torch.randn(3, requires_grad=True)

y = x * 2
while y.data.norm() < 1000:
    y = y * 2

print(y)

cell("y.backward(v)")
v = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float)  # stand-in for gradients
y.backward(v)

print(x.grad)
RESULTS["backward_v"] = {"x": x.detach().numpy().copy(), "y": y.detach().numpy().copy(),
                         "v": v.numpy().copy(), "x.grad": x.grad.numpy().copy()}

# ================================================ Advanced Topic: the High-Level API (functional)
# The tutorial's jacobian/vjp/jvp/hvp/vhp/hessian cells and the hvp reference page's examples run through
# srcgrad.autograd.functional, which source-transforms the functions (generated code, no tape). They live
# in examples/functional_api.py, runnable on its own; here they run as the tutorial's last cells.
cell("torch.autograd.functional: jacobian, vjp, jvp, hvp, vhp, hessian")
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import functional_api  # noqa: E402

RESULTS["functional"] = functional_api.main()
