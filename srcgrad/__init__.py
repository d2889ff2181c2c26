"""srcgrad: differentiate Python programs by source transformation, or eagerly with a PyTorch-style tape.

    import srcgrad as sg
    df = sg.grad(f)                 # generated adjoint code: inspect.getsource(df)

    import srcgrad as torch         # the eager runtime speaks PyTorch's names
    x = torch.ones(3, requires_grad=True)
"""

from srcgrad import testing  # noqa: F401,E402
from srcgrad.api import *  # noqa: F403 -- compiler transforms: grad, value_and_grad, vjp, ...
from srcgrad.eager import *  # noqa: F403 -- Tensor, factories, torch-named functions, grad modes, devices
from srcgrad.higher import *  # noqa: F403 -- forward mode and compositions: jvp, jacobian, hessian, hvp

__version__ = "0.1.0"
