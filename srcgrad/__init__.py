"""srcgrad: differentiate Python programs by source transformation, or eagerly with a PyTorch-style tape."""

from srcgrad.runtime import backend as _backend
from srcgrad.runtime.primitives import PRIMITIVES as _PRIMITIVES  # noqa: F401

__version__ = "0.1.0"
