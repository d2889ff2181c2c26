"""`srcgrad.nn.init`: torch.nn.init's in-place initialisers (runtime.nn), on srcgrad's generator."""

from srcgrad.runtime.nn import (
    _calculate_fan_in_and_fan_out,
    calculate_gain,
    constant_,
    eye_,
    kaiming_normal_,
    kaiming_uniform_,
    normal_,
    ones_,
    uniform_,
    xavier_normal_,
    xavier_uniform_,
    zeros_,
)

__all__ = ["calculate_gain", "constant_", "eye_", "kaiming_normal_", "kaiming_uniform_", "normal_", "ones_",
           "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_", "_calculate_fan_in_and_fan_out"]
