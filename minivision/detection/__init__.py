"""``minivision.detection`` -- the pieces of ``torchvision.models.detection``.

* anchors: :class:`AnchorGenerator` (Faster R-CNN) and :class:`DefaultBoxGenerator` (SSD);
* :class:`BoxCoder` -- box deltas (R-CNN's parametrisation) and their clamp;
* :class:`Matcher`, :func:`balanced_sample`, :class:`BalancedPositiveNegativeSampler` -- IoU
  matching with the low-quality rule, and balanced sampling;
* :func:`rpn_proposals` -- the region proposal network's filter (lesson 06);
* the multi-task losses of the R-CNN family, :func:`fastrcnn_loss` and :func:`rpn_loss`
  (lesson 08), and Mask R-CNN's mask targets, loss and pasting (``masks``).
"""

from .anchors import AnchorGenerator, DefaultBoxGenerator
from .box_coder import BoxCoder
from .masks import (
    maskrcnn_loss,
    maskrcnn_loss_backward,
    paste_masks_in_image,
    project_masks_on_boxes,
)
from .matcher import BalancedPositiveNegativeSampler, Matcher, balanced_sample
from .rpn import concat_box_prediction_layers, rpn_proposals, top_k

__all__ = [
    "AnchorGenerator",
    "DefaultBoxGenerator",
    "BoxCoder",
    "Matcher",
    "BalancedPositiveNegativeSampler",
    "balanced_sample",
    "rpn_proposals",
    "concat_box_prediction_layers",
    "top_k",
    "project_masks_on_boxes",
    "maskrcnn_loss",
    "maskrcnn_loss_backward",
    "paste_masks_in_image",
]
