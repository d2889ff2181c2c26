"""The autograd tutorial's "Advanced Topic: the High-Level API" cells and the examples of PyTorch's
`torch.autograd.functional.hvp` reference page, run through `srcgrad.autograd.functional`.

The functions are written for Tensors, as in PyTorch; srcgrad source-transforms them and runs the
generated code on the Tensors' arrays (`functional.last_engine` says "compiled"), so the data-dependent
`while` of `do_some_doubling` costs what the loop costs. Run: `python examples/functional_api.py`.
"""

import srcgrad as torch
from srcgrad.autograd import functional as F


def exp_adder(x, y):
    return 2 * x.exp() + 3 * y


def do_some_doubling(x):
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    return y


def pow_reducer(x):
    return x.pow(3).sum()


def pow_adder_reducer(x, y):
    return (2 * x.pow(2) + 3 * y.pow(2)).sum()


def show(label, value):
    print(f"{label} [{F.last_engine}]")
    print(value)
    return value


def main():
    torch.manual_seed(0)
    results = {}

    # --- the tutorial: Jacobians of exp_adder, single-element and 3-element inputs
    inputs = (torch.rand(1), torch.rand(1))
    print(inputs)
    results["jac1"] = show("jacobian(exp_adder, two 1-element inputs)", F.jacobian(exp_adder, inputs))
    results["jac1_inputs"] = inputs
    inputs = (torch.rand(3), torch.rand(3))
    print(inputs)
    results["jac3"] = show("jacobian(exp_adder, two 3-element inputs)", F.jacobian(exp_adder, inputs))
    results["jac3_inputs"] = inputs

    # --- the tutorial: vector-Jacobian product through a data-dependent loop
    inputs = torch.randn(3)
    my_gradients = torch.tensor([0.1, 1.0, 0.0001])
    results["vjp"] = show("vjp(do_some_doubling)", F.vjp(do_some_doubling, inputs, v=my_gradients))
    results["vjp_inputs"] = (inputs, my_gradients)
    results["jvp"] = show("jvp(do_some_doubling)", F.jvp(do_some_doubling, inputs, v=my_gradients))

    # --- the hvp reference page
    inputs = torch.rand(2, 2)
    v = torch.ones(2, 2)
    results["hvp"] = show("hvp(pow_reducer)", F.hvp(pow_reducer, inputs, v))
    results["hvp_graph"] = show("hvp(pow_reducer, create_graph=True)",
                                F.hvp(pow_reducer, inputs, v, create_graph=True))
    results["hvp_inputs"] = inputs
    inputs2 = (torch.rand(2), torch.rand(2))
    v2 = (torch.zeros(2), torch.ones(2))
    results["hvp2"] = show("hvp(pow_adder_reducer)", F.hvp(pow_adder_reducer, inputs2, v2))
    results["hvp2_inputs"] = inputs2
    results["vhp"] = show("vhp(pow_reducer)", F.vhp(pow_reducer, inputs, v))
    results["hessian"] = show("hessian(pow_adder_reducer)", F.hessian(pow_adder_reducer, inputs2))
    return results


if __name__ == "__main__":
    main()
