"""Layers with hand-written backward passes: ``Parameter``, ``Module``, ``Sequential`` and friends.

See :mod:`minivision.nn.module` for the pattern (forward caches, backward consumes, parameter
gradients accumulate) and DESIGN.md §3 for the conventions.
"""

from . import init
from .layers import Conv2d, ConvTranspose2d, Flatten, Linear
from .module import Module, Parameter, Sequential

__all__ = [
    "Parameter",
    "Module",
    "Sequential",
    "Linear",
    "Conv2d",
    "ConvTranspose2d",
    "Flatten",
    "init",
]
