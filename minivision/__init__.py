"""minivision: the classical R-CNN family from scratch, on NumPy and CuPy from one source.

The public functions mirror ``torchvision.ops`` (names, argument order, semantics); each module
is one algorithm and one lesson (see ``lessons/README.md``).
"""

from .anchors import AnchorGenerator, DefaultBoxGenerator
from .box_coder import BoxCoder
from .boxes import (
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    complete_box_iou,
    distance_box_iou,
    generalized_box_iou,
    masks_to_boxes,
    remove_small_boxes,
)
from .matcher import BalancedPositiveNegativeSampler, Matcher, balanced_sample
from .nms import batched_nms, nms, soft_nms
from .rpn import concat_box_prediction_layers, rpn_proposals, top_k

__version__ = "0.1.0"

__all__ = [
    "box_area",
    "box_convert",
    "box_iou",
    "clip_boxes_to_image",
    "complete_box_iou",
    "distance_box_iou",
    "generalized_box_iou",
    "masks_to_boxes",
    "remove_small_boxes",
    "nms",
    "batched_nms",
    "soft_nms",
    "AnchorGenerator",
    "DefaultBoxGenerator",
    "BoxCoder",
    "Matcher",
    "BalancedPositiveNegativeSampler",
    "balanced_sample",
    "rpn_proposals",
    "concat_box_prediction_layers",
    "top_k",
]
