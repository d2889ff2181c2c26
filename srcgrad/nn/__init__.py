"""`srcgrad.nn`: torch.nn's names over the eager runtime (runtime.nn)."""

from srcgrad.nn import functional, init, utils
from srcgrad.runtime.nn import (
    CrossEntropyLoss,
    Dropout,
    Flatten,
    Identity,
    L1Loss,
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
    Softmax,
    Softplus,
    Tanh,
)

__all__ = ["functional", "init", "utils", "Module", "Parameter", "Linear", "Identity", "ReLU", "Tanh",
           "Sigmoid", "Softplus", "Softmax", "LogSoftmax", "Flatten", "Dropout", "Sequential",
           "ModuleList", "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss"]
