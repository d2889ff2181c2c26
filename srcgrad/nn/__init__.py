"""`srcgrad.nn`: torch.nn's names over the eager runtime (runtime.nn)."""

from srcgrad.nn import functional, init, utils
from srcgrad.runtime.nn import (
    ELU,
    GELU,
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dropout,
    Embedding,
    Flatten,
    HuberLoss,
    Identity,
    L1Loss,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    Module,
    ModuleList,
    MSELoss,
    NLLLoss,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    SmoothL1Loss,
    Softmax,
    Softplus,
    Tanh,
)

__all__ = ["functional", "init", "utils", "Module", "Parameter", "Linear", "Identity", "ReLU", "Tanh",
           "Sigmoid", "Softplus", "Softmax", "LogSoftmax", "Flatten", "Dropout", "Sequential",
           "ModuleList", "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss", "GELU", "LeakyReLU", "ELU",
           "SiLU", "LayerNorm", "Embedding", "BCELoss", "BCEWithLogitsLoss", "HuberLoss", "SmoothL1Loss"]
