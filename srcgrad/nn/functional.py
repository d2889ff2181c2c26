"""`srcgrad.nn.functional`: torch.nn.functional's names over the eager runtime."""

from srcgrad.runtime.nn import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    dropout,
    elu,
    embedding,
    gelu,
    huber_loss,
    l1_loss,
    layer_norm,
    leaky_relu,
    linear,
    log_softmax,
    mse_loss,
    nll_loss,
    pad,
    relu,
    sigmoid,
    silu,
    smooth_l1_loss,
    softmax,
    softplus,
    tanh,
)

__all__ = ["linear", "relu", "tanh", "sigmoid", "softplus", "softmax", "log_softmax", "mse_loss", "l1_loss",
           "nll_loss", "cross_entropy", "dropout", "pad", "gelu", "leaky_relu", "elu", "silu", "layer_norm",
           "embedding", "binary_cross_entropy", "binary_cross_entropy_with_logits", "huber_loss",
           "smooth_l1_loss"]
