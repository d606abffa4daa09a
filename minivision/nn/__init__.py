"""Layers with hand-written backward passes: ``Parameter``, ``Module``, ``Sequential`` and friends.

See :mod:`minivision.nn.module` for the pattern (forward caches, backward consumes, parameter
gradients accumulate) and DESIGN.md §3 for the conventions. ``nn.init`` initialises parameters,
``nn.functional`` holds the functional ops with their backward passes, ``nn.gradcheck`` checks a
backward pass against central differences.
"""

from . import functional, init
from .activation import Dropout, LeakyReLU, ReLU, Sigmoid
from .container import Sequential
from .gradcheck import GradcheckError, gradcheck
from .layers import Conv2d, ConvTranspose2d, Flatten, Linear
from .module import Module, Parameter
from .norm import BatchNorm2d, GroupNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, MaxUnpool2d, Upsample

__all__ = [
    "Parameter",
    "Module",
    "Sequential",
    "Linear",
    "Conv2d",
    "ConvTranspose2d",
    "Flatten",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Dropout",
    "MaxPool2d",
    "MaxUnpool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "Upsample",
    "BatchNorm2d",
    "GroupNorm",
    "init",
    "functional",
    "gradcheck",
    "GradcheckError",
]
