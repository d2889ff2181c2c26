"""`srcgrad.nn.functional`: torch.nn.functional's names over the eager runtime."""

from srcgrad.runtime.nn import (
    cross_entropy,
    dropout,
    l1_loss,
    linear,
    log_softmax,
    mse_loss,
    nll_loss,
    pad,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)

__all__ = ["linear", "relu", "tanh", "sigmoid", "softplus", "softmax", "log_softmax", "mse_loss", "l1_loss",
           "nll_loss", "cross_entropy", "dropout", "pad"]
