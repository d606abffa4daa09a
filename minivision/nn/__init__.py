"""``minivision.nn`` -- the network toolkit: differentiable operators and losses.

* :mod:`minivision.nn.functional` -- convolution, transposed convolution and pooling, forward and
  backward;
* :mod:`minivision.nn.losses` -- the generic losses with their backward passes: smooth L1, L1,
  cross-entropy, binary cross-entropy, the focal loss and the IoU losses.

The detectors' multi-task losses (Fast R-CNN, RPN, Mask R-CNN) live in
:mod:`minivision.detection.losses`.
"""

from . import functional, losses

__all__ = ["functional", "losses"]
