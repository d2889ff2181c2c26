"""`srcgrad.optim.lr_scheduler`: torch.optim.lr_scheduler's StepLR, ExponentialLR, CosineAnnealingLR."""

from srcgrad.runtime.optim import CosineAnnealingLR, ExponentialLR, LRScheduler, StepLR

_LRScheduler = LRScheduler

__all__ = ["LRScheduler", "_LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR"]
