"""`srcgrad.optim`: torch.optim's SGD and Adam over the eager runtime (runtime.optim)."""

from srcgrad.runtime.optim import SGD, Adam, Optimizer

__all__ = ["Optimizer", "SGD", "Adam"]
