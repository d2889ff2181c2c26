"""`srcgrad.nn.utils`: gradient clipping (runtime.nn)."""

from srcgrad.runtime.nn import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_"]
