"""`srcgrad.optim`: torch.optim's optimizers (runtime.optim) and lr_scheduler."""

from srcgrad.optim import lr_scheduler
from srcgrad.runtime.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
