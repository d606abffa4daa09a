"""minivision: the classical R-CNN family from scratch, on NumPy and CuPy from one source.

The public functions mirror ``torchvision.ops`` (names, argument order, semantics); each module
is one algorithm and one lesson (see ``lessons/README.md``).
"""

from .detection.anchors import AnchorGenerator, DefaultBoxGenerator
from .detection.box_coder import BoxCoder
from .detection.losses import (
    fastrcnn_loss,
    fastrcnn_loss_and_grad,
    fastrcnn_loss_backward,
    rpn_loss,
    rpn_loss_backward,
)
from .detection.masks import (
    maskrcnn_loss,
    maskrcnn_loss_backward,
    paste_masks_in_image,
    project_masks_on_boxes,
)
from .detection.matcher import BalancedPositiveNegativeSampler, Matcher, balanced_sample
from .detection.rpn import concat_box_prediction_layers, rpn_proposals, top_k
from .eval import (
    average_recall,
    best_overlap,
    coco_evaluate,
    confusion_matrix,
    evaluate_segmentation,
    mabo,
    proposal_recall,
    segmentation_scores,
    voc_ap,
    voc_evaluate,
)
from .nn.box_losses import (
    complete_box_iou_loss,
    complete_box_iou_loss_backward,
    distance_box_iou_loss,
    distance_box_iou_loss_backward,
    generalized_box_iou_loss,
    generalized_box_iou_loss_backward,
)
from .nn.functional.conv import conv2d, conv2d_backward
from .nn.functional.conv_transpose import conv_transpose2d, conv_transpose2d_backward
from .nn.functional.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .nn.losses import (
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_backward,
    cross_entropy,
    cross_entropy_backward,
    l1_loss,
    l1_loss_backward,
    sigmoid_focal_loss,
    sigmoid_focal_loss_backward,
    smooth_l1_loss,
    smooth_l1_loss_backward,
)
from .ops import (
    infer_scale,
    level_mapper,
    multiscale_roi_align,
    ps_roi_align,
    ps_roi_align_backward,
    roi_align,
    roi_align_backward,
    roi_pool,
    roi_pool_backward,
)
from .ops.boxes import (
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
from .ops.nms import batched_nms, nms, soft_nms
from .proposals.felzenszwalb import felzenszwalb
from .proposals.selective_search import selective_search
from .weights import load_pretrained

__version__ = "0.1.0"

__all__ = [
    "load_pretrained",
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
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "felzenszwalb",
    "roi_pool",
    "roi_pool_backward",
    "roi_align",
    "roi_align_backward",
    "ps_roi_align",
    "ps_roi_align_backward",
    "multiscale_roi_align",
    "level_mapper",
    "infer_scale",
    "selective_search",
    "AnchorGenerator",
    "DefaultBoxGenerator",
    "BoxCoder",
    "Matcher",
    "BalancedPositiveNegativeSampler",
    "balanced_sample",
    "rpn_proposals",
    "concat_box_prediction_layers",
    "top_k",
    "smooth_l1_loss",
    "smooth_l1_loss_backward",
    "l1_loss",
    "l1_loss_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward",
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_backward",
    "generalized_box_iou_loss",
    "generalized_box_iou_loss_backward",
    "distance_box_iou_loss",
    "distance_box_iou_loss_backward",
    "complete_box_iou_loss",
    "complete_box_iou_loss_backward",
    "fastrcnn_loss",
    "fastrcnn_loss_backward",
    "fastrcnn_loss_and_grad",
    "rpn_loss",
    "rpn_loss_backward",
    "project_masks_on_boxes",
    "maskrcnn_loss",
    "maskrcnn_loss_backward",
    "paste_masks_in_image",
    "voc_ap",
    "voc_evaluate",
    "confusion_matrix",
    "segmentation_scores",
    "evaluate_segmentation",
    "best_overlap",
    "proposal_recall",
    "average_recall",
    "mabo",
    "coco_evaluate",
]
