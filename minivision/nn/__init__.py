"""``minivision.nn`` -- the network toolkit: layers with hand-written backward passes.

* :mod:`minivision.nn.module` -- ``Parameter``, ``Module``, ``Sequential``: the pattern (forward
  caches, backward consumes, parameter gradients accumulate) and torch's ``state_dict`` names;
* the layers (``Conv2d`` ... ``GroupNorm``), :mod:`~minivision.nn.init` to initialise them,
  :func:`gradcheck` to check a backward pass against central differences;
* :mod:`minivision.nn.functional` -- the array operators the layers are made of (convolution,
  transposed convolution, pooling, unpooling, interpolation), forward and backward;
* :mod:`minivision.nn.losses` and :mod:`minivision.nn.box_losses` -- the generic losses (smooth
  L1, L1, cross-entropy, BCE, focal; GIoU/DIoU/CIoU) with their backward passes;
* :mod:`minivision.nn.optim` and :mod:`minivision.nn.lr_scheduler` -- torch's optimizers and
  learning-rate schedules.

The detectors' multi-task losses (Fast R-CNN, RPN, Mask R-CNN) live in
:mod:`minivision.detection.losses`. DESIGN.md §3 has the conventions.
"""

from . import box_losses, functional, init, losses, lr_scheduler, optim
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
    "losses",
    "box_losses",
    "optim",
    "lr_scheduler",
]
